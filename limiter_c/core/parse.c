/* parse.c - parses the limiter's env values (sizes with units, numbers). Pure; called by limiter.c. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "tfl_core.h"

int tfl_parse_double(const char *s, double *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) return -1;
    while (*end == ' ') end++;
    if (*end) return -1;
    *out = v;
    return 0;
}

int tfl_parse_bytes(const char *s, uint64_t *out)
{
    static const struct { const char *suf; double mul; } units[] = {
        {"", 1}, {"b", 1},
        {"k", 1024.0}, {"m", 1048576.0}, {"g", 1073741824.0}, {"t", 1099511627776.0},
        {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0}, {"tib", 1099511627776.0},
        {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
    };
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) return -1;
    while (*end == ' ') end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suf) == 0) {
            double b = v * units[i].mul;
            if (b >= 18446744073709551615.0) return -1;
            *out = (uint64_t)b;
            return 0;
        }
    }
    return -1;
}
