/* parse.c - parses the limiter's env values: byte sizes and TFLOPS (Kubernetes quantities, as
 * tfclient/quantity.py reads `--vram` and `--tflops`, so `TF_VRAM_LIMIT=2G` and `--vram 2G` mean the same bytes;
 * tests/limiter/test_limiter_env.py checks both on one table), HAMi's sizes, plain numbers. Pure; called by
 * limiter.c (local mode). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "tfl_core.h"

/* A Kubernetes quantity (k8s.io/apimachinery resource.Quantity; quantity.py's _QUANTITY): a signed number
 * ("12", "1.5", ".5", "1."), then nothing, an exponent ("e3", "E-2": folded into *num, *suffix = ""), or one
 * case-sensitive suffix (Ki Mi Gi Ti Pi Ei, m k M G T P E: *suffix points at it, *mul is its value). No blanks. */
static int split_quantity(const char *s, double *num, const char **suffix, double *mul)
{
    static const struct { const char *suf; double mul; } suffixes[] = {
        {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
        {"Pi", 1125899906842624.0}, {"Ei", 1152921504606846976.0},
        {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
    };
    if (!s) return -1;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    size_t digits = 0;
    while (isdigit((unsigned char)*p)) { p++; digits++; }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) { p++; digits++; }
    }
    if (digits == 0) return -1;
    const char *rest = p;
    *suffix = "";
    *mul = 1.0;
    if (*rest == 'e' || *rest == 'E') {     /* an exponent if digits follow to the end; else "E" may be exa */
        const char *q = rest + 1;
        if (*q == '+' || *q == '-') q++;
        const char *d0 = q;
        while (isdigit((unsigned char)*q)) q++;
        if (q > d0 && !*q) rest = q;
    }
    if (*rest) {
        size_t i, n = sizeof suffixes / sizeof suffixes[0];
        for (i = 0; i < n && strcmp(rest, suffixes[i].suf) != 0; i++) {}
        if (i == n) return -1;
        *suffix = suffixes[i].suf;
        *mul = suffixes[i].mul;
    }
    char numbuf[64];
    size_t nlen = (size_t)(rest - s);       /* the number and its exponent (rest == p when there is none) */
    if (nlen >= sizeof numbuf) return -1;
    memcpy(numbuf, s, nlen);
    numbuf[nlen] = 0;
    /* sign, digits, '.', exponent only: strtod reads it whole in the C locale's notation */
    char *end = NULL;
    double v = strtod(numbuf, &end);
    if (!end || *end || isnan(v)) return -1;
    *num = v;
    return 0;
}

/* HAMi's sizes and plain numbers: "  <number> <unit> " with the unit in any case, as HAMi-core reads them:
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
    /* HAMi-core's meaning of CUDA_DEVICE_MEMORY_LIMIT: single letters are binary ("1g" = 2^30, as the
     * HAMi device plugin writes "<MiB>m"); the binary spellings mean the same; decimal "GB" is refused
     * (HAMi never accepted it and it would mean something else than "G" here). */
    static const struct { const char *suf; double mul; } hami_units[] = {
        {"", 1}, {"b", 1},
        {"k", 1024.0}, {"m", 1048576.0}, {"g", 1073741824.0}, {"t", 1099511627776.0},
        {"ki", 1024.0}, {"kib", 1024.0}, {"mi", 1048576.0}, {"mib", 1048576.0},
        {"gi", 1073741824.0}, {"gib", 1073741824.0}, {"ti", 1099511627776.0}, {"tib", 1099511627776.0},
    };
    double v, b = -1;
    if (!out) return -1;
    if (dialect == TFL_UNITS_HAMI) {
        char unit[16];
        if (split_number(s, &v, unit) != 0) return -1;
        for (size_t i = 0; i < sizeof hami_units / sizeof hami_units[0]; i++)
            if (strcasecmp(unit, hami_units[i].suf) == 0) b = ceil(v * hami_units[i].mul);
    } else {
        /* a Kubernetes quantity of bytes (a bare number too; quantity.py: MiB, see tfl_core.h); "m" would be
         * thousandths of a byte: refused, as quantity.py refuses it */
        const char *suffix;
        double mul;
        if (split_quantity(s, &v, &suffix, &mul) != 0 || strcmp(suffix, "m") == 0 || v < 0) return -1;
        b = ceil(v * mul); /* fractional bytes round up, as quantity.py rounds MiB up */
    }
    if (!(b >= 0 && b < 18446744073709551616.0)) return -1;
    *out = (uint64_t)b;
    return 0;
}

int tfl_parse_tflops(const char *s, double *out)
{
    double v, mul;
    const char *suffix;
    if (!out || split_quantity(s, &v, &suffix, &mul) != 0 || v < 0 || !isfinite(v * mul)) return -1;
    *out = v * mul; /* a Kubernetes quantity of TFLOPS: "10", "2.5", "500m" = 0.5 */
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
