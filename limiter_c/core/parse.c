/* parse.c - parses the limiter's env values: byte sizes with units, TFLOPS, plain numbers. Pure; called by
 * limiter.c (local mode). The spellings and units are tfclient/quantity.py's, so `TF_VRAM_LIMIT=2G` and
 * `--vram 2G` mean the same bytes (tests/limiter/test_limiter_env.py checks both on one table). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "tfl_core.h"

/* Splits "  <number> <unit> " as quantity.py's _NUM does:
 *   ^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$
 * (no sign, no "inf"/"nan", no hex). The unit is copied to `unit` (NUL-terminated, at most 15 letters). */
static int split_number(const char *s, double *num, char unit[16])
{
    if (!s) return -1;
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    const char *n0 = p;
    size_t int_digits = 0, frac_digits = 0;
    while (isdigit((unsigned char)*p)) { p++; int_digits++; }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) { p++; frac_digits++; }
        if (frac_digits == 0) return -1; /* "1." is not in the grammar */
    }
    if (int_digits + frac_digits == 0) return -1;
    if (*p == 'e' || *p == 'E') { /* an exponent only if digits follow; else 'e' starts no unit we know */
        const char *q = p + 1;
        if (*q == '+' || *q == '-') q++;
        if (isdigit((unsigned char)*q)) {
            while (isdigit((unsigned char)*q)) q++;
            p = q;
        }
    }
    char numbuf[64];
    size_t nlen = (size_t)(p - n0);
    if (nlen >= sizeof numbuf) return -1;
    memcpy(numbuf, n0, nlen);
    numbuf[nlen] = 0;
    /* the text is digits, '.', 'e', sign only: strtod reads it whole in the C locale's notation */
    char *end = NULL;
    double v = strtod(numbuf, &end);
    if (!end || *end || !isfinite(v) || v < 0) return -1;
    while (isspace((unsigned char)*p)) p++;
    size_t ulen = 0;
    while (isalpha((unsigned char)*p)) {
        if (ulen >= 15) return -1;
        unit[ulen++] = *p++;
    }
    unit[ulen] = 0;
    while (isspace((unsigned char)*p)) p++;
    if (*p) return -1;
    *num = v;
    return 0;
}

int tfl_parse_bytes(const char *s, int dialect, uint64_t *out)
{
    /* quantity.py's _VRAM_UNITS (case-insensitive), bare number = bytes (quantity.py: MiB, see header) */
    static const struct { const char *suf; double mul; } tf_units[] = {
        {"", 1}, {"b", 1},
        {"ki", 1024.0}, {"kib", 1024.0}, {"mi", 1048576.0}, {"mib", 1048576.0},
        {"gi", 1073741824.0}, {"gib", 1073741824.0}, {"ti", 1099511627776.0}, {"tib", 1099511627776.0},
        {"k", 1e3}, {"kb", 1e3}, {"m", 1e6}, {"mb", 1e6}, {"g", 1e9}, {"gb", 1e9}, {"t", 1e12}, {"tb", 1e12},
    };
    /* HAMi-core's meaning of CUDA_DEVICE_MEMORY_LIMIT: single letters are binary ("1g" = 2^30, as the
     * HAMi device plugin writes "<MiB>m"); the binary spellings mean the same; decimal "GB" is refused
     * (HAMi never accepted it and it would mean something else than "G" here). */
    static const struct { const char *suf; double mul; } hami_units[] = {
        {"", 1}, {"b", 1},
        {"k", 1024.0}, {"m", 1048576.0}, {"g", 1073741824.0}, {"t", 1099511627776.0},
        {"ki", 1024.0}, {"kib", 1024.0}, {"mi", 1048576.0}, {"mib", 1048576.0},
        {"gi", 1073741824.0}, {"gib", 1073741824.0}, {"ti", 1099511627776.0}, {"tib", 1099511627776.0},
    };
    double v;
    char unit[16];
    if (!out || split_number(s, &v, unit) != 0) return -1;
    size_t n = dialect == TFL_UNITS_HAMI ? sizeof hami_units / sizeof hami_units[0]
                                         : sizeof tf_units / sizeof tf_units[0];
    for (size_t i = 0; i < n; i++) {
        const char *suf = dialect == TFL_UNITS_HAMI ? hami_units[i].suf : tf_units[i].suf;
        double mul = dialect == TFL_UNITS_HAMI ? hami_units[i].mul : tf_units[i].mul;
        if (strcasecmp(unit, suf) != 0) continue;
        double b = ceil(v * mul); /* fractional bytes round up, as quantity.py rounds MiB up */
        if (!(b < 18446744073709551616.0)) return -1;
        *out = (uint64_t)b;
        return 0;
    }
    return -1;
}

int tfl_parse_tflops(const char *s, double *out)
{
    double v;
    char unit[16];
    if (!out || split_number(s, &v, unit) != 0) return -1;
    double mul;
    if (strcmp(unit, "m") == 0) mul = 1e-3; /* k8s milli: lower case only, "M" is refused */
    else if (!*unit || !strcasecmp(unit, "t") || !strcasecmp(unit, "tflops")) mul = 1;
    else if (!strcasecmp(unit, "g") || !strcasecmp(unit, "gflops")) mul = 1e-3;
    else return -1;
    *out = v * mul;
    return 0;
}

int tfl_parse_double(const char *s, double *out)
{
    double v;
    char unit[16];
    if (!out || split_number(s, &v, unit) != 0 || *unit) return -1;
    *out = v;
    return 0;
}
