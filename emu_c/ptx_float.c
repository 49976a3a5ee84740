/* ptx_float.c - exact conversions between double and the narrow float formats PTX uses
 * (f16, bf16), with every PTX rounding mode. Called by the parser (immediates of half type)
 * and by the executor (cvt, half-precision arithmetic).
 *
 * Narrowing is done by scaling to the target format's quantum, rounding that integer in the
 * requested mode and re-encoding, so one routine covers every format and mode exactly.
 */
#include <math.h>
#include <stdint.h>

#include "ptx_internal.h"

/* Rounds x to a binary float with `mbits` stored mantissa bits and `ebits` exponent bits;
 * returns the encoding. NaN becomes the canonical NaN (all ones, sign clear). */
static uint32_t narrow_bits(double x, int mbits, int ebits, int rm) {
    const uint32_t expmask = (1u << ebits) - 1;
    const uint32_t mantmask = (1u << mbits) - 1;
    const int bias = (int)(expmask >> 1);
    const int emin = 1 - bias;
    if (isnan(x)) return (expmask << mbits) | mantmask;
    uint32_t sign = signbit(x) ? 1u : 0u;
    uint32_t sbit = sign << (ebits + mbits);
    double a = fabs(x);
    if (isinf(a)) return sbit | (expmask << mbits);
    if (a == 0) return sbit;
    int e;
    (void)frexp(a, &e);
    int ue = e - 1;
    if (ue < emin) ue = emin;
    double n = ldexp(a, mbits - ue); /* exact: power-of-two scaling */
    double fl = floor(n), r;
    switch (rm) {
    case RM_RZ: case RM_RZI: r = fl; break;
    case RM_RM: case RM_RMI: r = sign ? ceil(n) : fl; break;
    case RM_RP: case RM_RPI: r = sign ? fl : ceil(n); break;
    default: {
        double diff = n - fl;
        r = fl;
        if (diff > 0.5 || (diff == 0.5 && fmod(fl, 2.0) != 0.0)) r = fl + 1;
        break;
    }
    }
    if (r > 1e18) r = 1e18; /* beyond any format here: forces overflow below */
    uint64_t m = (uint64_t)r;
    int64_t be = (int64_t)ue + bias;
    if (m >= (2ull << mbits)) { m >>= 1; be++; }
    if (m < (1ull << mbits)) be = 0;
    if (be >= (int64_t)expmask) {
        int to_inf = rm == RM_RN || rm == RM_NONE || rm == RM_RNI || ((rm == RM_RP || rm == RM_RPI) && !sign) ||
                     ((rm == RM_RM || rm == RM_RMI) && sign);
        if (to_inf) return sbit | (expmask << mbits);
        return sbit | ((expmask - 1) << mbits) | mantmask;
    }
    return sbit | ((uint32_t)be << mbits) | ((uint32_t)m & mantmask);
}

static double widen_bits(uint32_t h, int mbits, int ebits) {
    const uint32_t expmask = (1u << ebits) - 1;
    const int bias = (int)(expmask >> 1);
    uint32_t sign = (h >> (ebits + mbits)) & 1;
    uint32_t ex = (h >> mbits) & expmask;
    uint32_t man = h & ((1u << mbits) - 1);
    double v;
    if (ex == expmask) v = man ? NAN : INFINITY;
    else if (ex == 0) v = ldexp((double)man, 1 - bias - mbits);
    else v = ldexp((double)(man | (1u << mbits)), (int)ex - bias - mbits);
    return sign ? -v : v;
}

uint16_t ptx_f64_to_f16(double x, int rm) { return (uint16_t)narrow_bits(x, 10, 5, rm); }
uint16_t ptx_f64_to_bf16(double x, int rm) { return (uint16_t)narrow_bits(x, 7, 8, rm); }
double ptx_f16_to_f64(uint16_t h) { return widen_bits(h, 10, 5); }
double ptx_bf16_to_f64(uint16_t h) { return widen_bits(h, 7, 8); }

uint32_t ptx_f64_to_f32_bits(double x, int rm) { return narrow_bits(x, 23, 8, rm); }
