/* ptx_mma.c - the warp matrix instructions of the PTX interpreter, run for the whole warp at once: wmma.load /
 * wmma.store / wmma.mma, mma.sync (m16n8k8, m16n8k16) and ldmatrix. Called by run_warp (ptx_exec.c) through
 * ptx_mma.h.
 *
 * A matrix instruction gathers the warp's fragments once into dense tiles (fragment layouts: wmma_elem in
 * ptx_internal.h for wmma, the PTX ISA's for mma.sync), converts the inputs exactly (f16, bf16 -> f32; tf32:
 * the f32 with its low 13 mantissa bits ignored; s8/u8 -> s32), multiplies in a tight loop over the output
 * row (AVX2/FMA when the host has it, picked once like ptx_exec.c's fma32_warp; otherwise the same operations
 * in portable C) and scatters D. Every output element is C + sum over k of A*B as a chain of fused
 * multiply-adds in increasing k (f32 for f16/bf16/tf32 inputs, f64 for f64; s8/u8 products summed exactly in
 * 32-bit wrap-around, or saturated with .satfinite), so both code paths give the same bits.
 *
 * The f64 m8n8k4 shape skips the dense tiles: its one-register A and B fragments are their tiles as they lie
 * in the register file, so the product reads the slots directly and its loads fill them directly.
 *
 * wmma.load/store move a tile a memory line (row, or column for .col) at a time when the whole warp gives one
 * address and stride and every line resolves; anything else (divergent or per-lane addresses, local memory, a
 * fault) takes the per-element path, which reports the first failing lane and element as before.
 *
 * cp.async (the copies that stage the tiles in shared memory) is here too, for both engines: a run of lanes
 * whose pieces are consecutive in both spaces is one copy, any other lane its own.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <immintrin.h>

#include "ptx_mma.h"

#define FULL 0xffffffffu
#define REG(s, l) R[(size_t)(s) * 32 + (unsigned)(l)]

static inline float f32_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t bits_of_f32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* f16 -> f32, exact (subnormals are m * 2^-24; inf and NaN keep sign and payload). */
static inline float h2f(uint16_t h) {
    const uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return f32_of(s | 0x7f800000u | m << 13);
    if (e) return f32_of(s | (e + 112) << 23 | m << 13);
    const float v = (float)m * 0x1p-24f;
    return s ? -v : v;
}
static inline float bf2f(uint16_t h) { return f32_of((uint32_t)h << 16); }

/* ------------------------------------------------------------------ fragments <-> dense arrays */

/* The warp's fragment as one array in fragment order (lane l's element i at index l*n + i): n elements of es
 * bytes per lane, packed low first into 32-bit registers (64-bit elements one per register). As 32-bit words,
 * lane l's word j is at l*nw + j; always_inline with a constant nw so the transposes unroll. */
static inline __attribute__((always_inline)) void gather_w(const uint64_t *R, const int32_t *list, unsigned nw,
                                                          uint32_t *W) {
    for (unsigned j = 0; j < nw; j++) {
        const uint64_t *r = R + (size_t)list[j] * 32;
        _Pragma("GCC unroll 32") for (unsigned l = 0; l < 32; l++) W[l * nw + j] = (uint32_t)r[l];
    }
}
/* E: the bytes of a uint64_t[256] (64-bit elements are stored as such) */
static void frag_gather(const uint64_t *R, const int32_t *list, unsigned n, unsigned es, uint8_t *E) {
    if (es == 8) { /* f64: one element per register, n = 1 (A, B) or 2 (C) */
        uint64_t *W = (uint64_t *)(void *)E;
        if (n == 1) memcpy(W, &REG(list[0], 0), 32 * 8);
        else
            for (unsigned i = 0; i < n; i++) {
                const uint64_t *r = R + (size_t)list[i] * 32;
                for (unsigned l = 0; l < 32; l++) W[l * n + i] = r[l];
            }
        return;
    }
    uint32_t W[256];
    const unsigned nw = n * es / 4;
    switch (nw) {
    case 1: gather_w(R, list, 1, W); break;
    case 2: gather_w(R, list, 2, W); break;
    case 4: gather_w(R, list, 4, W); break;
    case 8: gather_w(R, list, 8, W); break;
    default: gather_w(R, list, nw, W); break;
    }
    memcpy(E, W, 4 * (size_t)nw * 32);
}

static inline __attribute__((always_inline)) void scatter_w(uint64_t *R, const int32_t *list, unsigned nw,
                                                           const uint32_t *W, uint32_t em) {
    for (unsigned j = 0; j < nw; j++) {
        uint64_t *r = R + (size_t)list[j] * 32;
        if (em == FULL)
            _Pragma("GCC unroll 32") for (unsigned l = 0; l < 32; l++) r[l] = W[l * nw + j];
        else
            for (uint32_t m = em; m; m &= m - 1) r[__builtin_ctz(m)] = W[(unsigned)__builtin_ctz(m) * nw + j];
    }
}

/* The inverse for the lanes in em, into nregs registers per lane (registers past the fragment's data get 0:
 * the f16 A/B fragments have 8 registers for 8 elements). */
static void frag_scatter(uint64_t *R, const int32_t *list, unsigned n, unsigned es, unsigned nregs, const uint8_t *E,
                         uint32_t em) {
    unsigned nw;
    if (es == 8) {
        const uint64_t *W = (const uint64_t *)(const void *)E;
        nw = n;
        for (unsigned j = 0; j < n; j++) {
            uint64_t *r = R + (size_t)list[j] * 32;
            if (em == FULL)
                for (unsigned l = 0; l < 32; l++) r[l] = W[l * n + j];
            else
                for (uint32_t m = em; m; m &= m - 1) r[__builtin_ctz(m)] = W[(unsigned)__builtin_ctz(m) * n + j];
        }
    } else {
        uint32_t W[256];
        nw = n * es / 4;
        memcpy(W, E, 4 * (size_t)nw * 32);
        switch (nw) {
        case 1: scatter_w(R, list, 1, W, em); break;
        case 2: scatter_w(R, list, 2, W, em); break;
        case 4: scatter_w(R, list, 4, W, em); break;
        case 8: scatter_w(R, list, 8, W, em); break;
        default: scatter_w(R, list, nw, W, em); break;
        }
    }
    for (unsigned j = nw; j < nregs; j++) {
        if (em == FULL) memset(&REG(list[j], 0), 0, 32 * sizeof(uint64_t));
        else
            for (uint32_t m = em; m; m &= m - 1) REG(list[j], __builtin_ctz(m)) = 0;
    }
}

/* ------------------------------------------------------------------ tile products */

/* acc (M x N, row-major, holding C) += A (M x K) x B (K x N), each element a chain of fmaf in increasing k. */
typedef void gemm_f32_fn(unsigned M, unsigned N, unsigned K, const float *A, const float *B, float *acc);
typedef void gemm_f64_fn(unsigned M, unsigned N, unsigned K, const double *A, const double *B, double *acc);
/* acc += A x B in 32-bit wrap-around. */
typedef void gemm_u32_fn(unsigned M, unsigned N, unsigned K, const uint32_t *A, const uint32_t *B, uint32_t *acc);
/* n f16 values -> f32 */
typedef void h2f_fn(const uint16_t *h, float *f, unsigned n);

static void gemm_f32_c(unsigned M, unsigned N, unsigned K, const float *A, const float *B, float *acc) {
    for (unsigned m = 0; m < M; m++)
        for (unsigned k = 0; k < K; k++) {
            const float a = A[m * K + k];
            for (unsigned n = 0; n < N; n++) acc[m * N + n] = fmaf(a, B[k * N + n], acc[m * N + n]);
        }
}
static void gemm_f64_c(unsigned M, unsigned N, unsigned K, const double *A, const double *B, double *acc) {
    for (unsigned m = 0; m < M; m++)
        for (unsigned k = 0; k < K; k++) {
            const double a = A[m * K + k];
            for (unsigned n = 0; n < N; n++) acc[m * N + n] = fma(a, B[k * N + n], acc[m * N + n]);
        }
}
static void gemm_u32_c(unsigned M, unsigned N, unsigned K, const uint32_t *A, const uint32_t *B, uint32_t *acc) {
    for (unsigned m = 0; m < M; m++)
        for (unsigned k = 0; k < K; k++) {
            const uint32_t a = A[m * K + k];
            for (unsigned n = 0; n < N; n++) acc[m * N + n] += a * B[k * N + n];
        }
}
static void h2f_c(const uint16_t *h, float *f, unsigned n) {
    for (unsigned i = 0; i < n; i++) f[i] = h2f(h[i]);
}

/* AVX2 + FMA (+ F16C): 8 output columns per vector (f64: 4), four rows at a time so that 4 x N/8 independent
 * k chains hide the FMA latency; one function per output width (N = 16 or 8: every shape here) so the
 * accumulators stay in registers. Other widths take the portable loop. */
#define GEMM_AVX2(NAME, T, V, LOAD, STORE, SET1, OP, NC)                                                   \
    __attribute__((target("avx2,fma"))) static void NAME(unsigned M, unsigned K, const T *A, const T *B, T *acc) { \
        enum { W = 32 / sizeof(T), NV = NC / W };                                                             \
        for (unsigned m = 0; m < M; m += 4) {                                                                 \
            V d[4][NV];                                                                                       \
            _Pragma("GCC unroll 4") for (unsigned r = 0; r < 4; r++)                                          \
                _Pragma("GCC unroll 4") for (unsigned v = 0; v < NV; v++) d[r][v] = LOAD(acc + (m + r) * NC + v * W); \
            for (unsigned k = 0; k < K; k++)                                                                  \
                _Pragma("GCC unroll 4") for (unsigned v = 0; v < NV; v++) {                                   \
                    const V b = LOAD(B + k * NC + v * W);                                                     \
                    _Pragma("GCC unroll 4") for (unsigned r = 0; r < 4; r++)                                  \
                        d[r][v] = OP(SET1(A[(m + r) * K + k]), b, d[r][v]);                                   \
                }                                                                                             \
            _Pragma("GCC unroll 4") for (unsigned r = 0; r < 4; r++)                                          \
                _Pragma("GCC unroll 4") for (unsigned v = 0; v < NV; v++) STORE(acc + (m + r) * NC + v * W, d[r][v]); \
        }                                                                                                     \
    }
#define LD_PS(p) _mm256_loadu_ps(p)
#define ST_PS(p, v) _mm256_storeu_ps(p, v)
#define LD_PD(p) _mm256_loadu_pd(p)
#define ST_PD(p, v) _mm256_storeu_pd(p, v)
#define LD_SI(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define ST_SI(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), v)
#define SET1_U32(x) _mm256_set1_epi32((int)(x))
#define MADD_U32(a, b, c) _mm256_add_epi32(c, _mm256_mullo_epi32(a, b))
GEMM_AVX2(gemm_f32_avx2_16, float, __m256, LD_PS, ST_PS, _mm256_set1_ps, _mm256_fmadd_ps, 16)
GEMM_AVX2(gemm_f32_avx2_8, float, __m256, LD_PS, ST_PS, _mm256_set1_ps, _mm256_fmadd_ps, 8)
GEMM_AVX2(gemm_f64_avx2_8, double, __m256d, LD_PD, ST_PD, _mm256_set1_pd, _mm256_fmadd_pd, 8)
GEMM_AVX2(gemm_u32_avx2_16, uint32_t, __m256i, LD_SI, ST_SI, SET1_U32, MADD_U32, 16)
static void gemm_f32_avx2(unsigned M, unsigned N, unsigned K, const float *A, const float *B, float *acc) {
    if (M % 4 == 0 && N == 16) gemm_f32_avx2_16(M, K, A, B, acc);
    else if (M % 4 == 0 && N == 8) gemm_f32_avx2_8(M, K, A, B, acc);
    else gemm_f32_c(M, N, K, A, B, acc);
}
static void gemm_f64_avx2(unsigned M, unsigned N, unsigned K, const double *A, const double *B, double *acc) {
    if (M % 4 == 0 && N == 8) gemm_f64_avx2_8(M, K, A, B, acc);
    else gemm_f64_c(M, N, K, A, B, acc);
}
static void gemm_u32_avx2(unsigned M, unsigned N, unsigned K, const uint32_t *A, const uint32_t *B, uint32_t *acc) {
    if (M % 4 == 0 && N == 16) gemm_u32_avx2_16(M, K, A, B, acc);
    else gemm_u32_c(M, N, K, A, B, acc);
}
__attribute__((target("avx2,f16c"))) static void h2f_f16c(const uint16_t *h, float *f, unsigned n) {
    unsigned i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) f[i] = h2f(h[i]);
}

/* n (a multiple of 8) bf16 -> f32, and n f32 with the low 13 mantissa bits cleared (tf32) */
typedef void widen_fn(const uint8_t *E, float *f, unsigned n);
static void bf2f_c(const uint8_t *E, float *f, unsigned n) {
    uint16_t h[256];
    uint32_t u[256];
    memcpy(h, E, 2 * (size_t)n);
    for (unsigned i = 0; i < n; i++) u[i] = (uint32_t)h[i] << 16;
    memcpy(f, u, 4 * (size_t)n);
}
static void tf32_c(const uint8_t *E, float *f, unsigned n) {
    uint32_t u[256];
    memcpy(u, E, 4 * (size_t)n);
    for (unsigned i = 0; i < n; i++) u[i] &= ~0x1fffu;
    memcpy(f, u, 4 * (size_t)n);
}
__attribute__((target("avx2"))) static void bf2f_avx2(const uint8_t *E, float *f, unsigned n) {
    for (unsigned i = 0; i < n; i += 8) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(E + 2 * i)));
        _mm256_storeu_ps(f + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
}
__attribute__((target("avx2"))) static void tf32_avx2(const uint8_t *E, float *f, unsigned n) {
    const __m256i keep = _mm256_set1_epi32((int)~0x1fffu);
    for (unsigned i = 0; i < n; i += 8) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(E + 4 * i));
        _mm256_storeu_ps(f + i, _mm256_castsi256_ps(_mm256_and_si256(w, keep)));
    }
}

/* wmma.mma.m8n8k4.f64 straight on the register slots (the samples' DGEMM issues 2e9 of them): A's one slot
 * holds the 8x4 tile row-major (lane 4m + k), B's the 4x8 tile column-major (lane 4n + k), and C/D slot i
 * lane l holds element (l / 4, 2 (l % 4) + i): so four consecutive lanes of a C/D slot share the row m and
 * need the B columns i, i + 2, i + 4, i + 6, the lanes 4i + k + 8j of B's slot (j = 0..3). Each element is
 * C + the fma chain over k in increasing order, as gemm_f64. D0, D1 may be any of the inputs' slots (D1 is
 * written last where D0 is D1). */
typedef void mma_f64_fn(const uint64_t *A, const uint64_t *B, const uint64_t *C0, const uint64_t *C1, uint64_t *D0,
                        uint64_t *D1);
static void mma_f64_m8n8k4_c(const uint64_t *A, const uint64_t *B, const uint64_t *C0, const uint64_t *C1, uint64_t *D0,
                             uint64_t *D1) {
    double a[32], b[32], c[2][32];
    memcpy(a, A, sizeof a);
    memcpy(b, B, sizeof b);
    memcpy(c[0], C0, sizeof c[0]);
    memcpy(c[1], C1, sizeof c[1]);
    for (unsigned i = 0; i < 2; i++)
        for (unsigned l = 0; l < 32; l++) {
            const unsigned m = l / 4, n = 2 * (l % 4) + i;
            for (unsigned k = 0; k < 4; k++) c[i][l] = fma(a[4 * m + k], b[4 * n + k], c[i][l]);
        }
    memcpy(D0, c[0], sizeof c[0]);
    memcpy(D1, c[1], sizeof c[1]);
}
/* The B columns slot i of a row needs, as 4 vectors over k: r_j = B column 2j + i (k = 0..3) transposed,
 * bk[k] = {B[k][i], B[k][i + 2], B[k][i + 4], B[k][i + 6]}. B's slot was just written by its load 16 bytes at a
 * time: 16-byte reads, which store forwarding serves. */
__attribute__((target("avx2,fma"), always_inline)) static inline void b_columns_avx2(const double *b, __m256d bk[4]) {
#define LD2(p) _mm256_insertf128_pd(_mm256_castpd128_pd256(_mm_loadu_pd(p)), _mm_loadu_pd((p) + 2), 1)
    const __m256d r0 = LD2(b), r1 = LD2(b + 8), r2 = LD2(b + 16), r3 = LD2(b + 24);
#undef LD2
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    bk[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    bk[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    bk[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    bk[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
__attribute__((target("avx2,fma"))) static void mma_f64_m8n8k4_avx2(const uint64_t *A, const uint64_t *B, const uint64_t *C0,
                                                                   const uint64_t *C1, uint64_t *D0, uint64_t *D1) {
    const double *a = (const double *)(const void *)A, *b = (const double *)(const void *)B;
    const double *c0 = (const double *)(const void *)C0, *c1 = (const double *)(const void *)C1;
    double *d0 = (double *)(void *)D0, *d1 = (double *)(void *)D1;
    __m256d b0[4], b1[4];
    b_columns_avx2(b, b0);
    b_columns_avx2(b + 4, b1);
    /* row m reads only lanes 4m..4m+3 of A, C0, C1 (B is in registers), then writes those of D0, D1: D may be any
     * of the inputs' registers */
    _Pragma("GCC unroll 8") for (unsigned m = 0; m < 8; m++) {
        __m256d acc0 = _mm256_loadu_pd(c0 + 4 * m), acc1 = _mm256_loadu_pd(c1 + 4 * m);
        _Pragma("GCC unroll 4") for (unsigned k = 0; k < 4; k++) {
            const __m256d x = _mm256_broadcast_sd(a + 4 * m + k);
            acc0 = _mm256_fmadd_pd(x, b0[k], acc0);
            acc1 = _mm256_fmadd_pd(x, b1[k], acc1);
        }
        _mm256_storeu_pd(d0 + 4 * m, acc0);
        _mm256_storeu_pd(d1 + 4 * m, acc1);
    }
}

static widen_fn *bf2f_n = bf2f_c, *tf32_n = tf32_c;
static gemm_f32_fn *gemm_f32 = gemm_f32_c;
static gemm_f64_fn *gemm_f64 = gemm_f64_c;
static gemm_u32_fn *gemm_u32 = gemm_u32_c;
static mma_f64_fn *mma_f64_m8n8k4 = mma_f64_m8n8k4_c;
static h2f_fn *h2f_n = h2f_c;
static pthread_once_t pick_once = PTHREAD_ONCE_INIT;
static void pick(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        gemm_f32 = gemm_f32_avx2;
        gemm_f64 = gemm_f64_avx2;
        gemm_u32 = gemm_u32_avx2;
        mma_f64_m8n8k4 = mma_f64_m8n8k4_avx2;
        bf2f_n = bf2f_avx2;
        tf32_n = tf32_avx2;
        if (__builtin_cpu_supports("f16c")) h2f_n = h2f_f16c;
    }
}

/* n elements of type t (f16, bf16, tf32 given as T_F32 with tf32 set, f32) from raw bytes into f32. */
static void to_f32(const uint8_t *E, int t, int tf32, unsigned n, float *out) {
    if (t == T_F16) {
        uint16_t h[256];
        memcpy(h, E, 2 * (size_t)n);
        h2f_n(h, out, n);
    } else if (t == T_BF16) {
        (n % 8 ? bf2f_c : bf2f_n)(E, out, n);
    } else if (!tf32) {
        memcpy(out, E, 4 * (size_t)n);
    } else {
        (n % 8 ? tf32_c : tf32_n)(E, out, n);
    }
}

static unsigned elem_bytes(int t) {
    switch (t) {
    case T_S8: case T_U8: return 1;
    case T_F16: case T_BF16: return 2;
    case T_F64: return 8;
    default: return 4;
    }
}

/* ------------------------------------------------------------------ wmma */

void ptx_mma_wmma_mma(const ptx_ins *in, const int32_t *lists, uint64_t *R, uint32_t em) {
    pthread_once(&pick_once, pick);
    const int32_t *ld = lists + in->d, *la = lists + in->a, *lb = lists + in->b, *lc = lists + in->c;
    if ((in->imm & 15) == WS_M8N8K4 && in->v[0] == 2) { /* f64: no gather, the slots are the tiles */
        if (em == FULL) {
            mma_f64_m8n8k4(&REG(la[0], 0), &REG(lb[0], 0), &REG(lc[0], 0), &REG(lc[1], 0), &REG(ld[0], 0), &REG(ld[1], 0));
            return;
        }
        uint64_t D[2][32];
        mma_f64_m8n8k4(&REG(la[0], 0), &REG(lb[0], 0), &REG(lc[0], 0), &REG(lc[1], 0), D[0], D[1]);
        for (unsigned i = 0; i < 2; i++)
            for (uint32_t m = em; m; m &= m - 1) REG(ld[i], __builtin_ctz(m)) = D[i][__builtin_ctz(m)];
        return;
    }
    const int at = in->t2, bt = in->space, ct = in->esize, dt = in->t, shape = (int)(in->imm & 15);
    const int tf32 = (in->imm & 16) != 0, satf = (in->imm & 32) != 0;
    unsigned M, N, K, dummy;
    wmma_dims(shape, 2, &M, &N);
    wmma_dims(shape, 0, &dummy, &K);
    const unsigned na = M * K / 32, nb = K * N / 32, nc = M * N / 32, nd = (unsigned)in->v[0];
    /* fragment order is the matrix's row-major order, except B of m8n8k4 (column-major) */
    uint64_t bufA[256], bufB[256], bufC[256], bufD[256]; /* 64-bit objects, viewed as bytes */
    uint8_t *EA = (uint8_t *)bufA, *EB = (uint8_t *)bufB, *EC = (uint8_t *)bufC, *ED = (uint8_t *)bufD;
    frag_gather(R, la, na, elem_bytes(at), EA);
    frag_gather(R, lb, nb, elem_bytes(bt), EB);
    frag_gather(R, lc, nc, elem_bytes(ct), EC);
    if (dt == T_F64) {
        double A[32], Bm[32], acc[64];
        memcpy(A, EA, sizeof(double) * M * K);
        for (unsigned k = 0; k < K; k++)
            for (unsigned n = 0; n < N; n++) memcpy(&Bm[k * N + n], EB + 8 * (n * K + k), 8);
        memcpy(acc, EC, sizeof(double) * M * N);
        gemm_f64(M, N, K, A, Bm, acc);
        memcpy(ED, acc, sizeof(double) * M * N);
        frag_scatter(R, ld, nc, 8, nd, ED, em);
        return;
    }
    if (dt == T_S32) {
        uint32_t A[256], Bm[256]; /* s8/u8 widened to s32, kept as their 32-bit patterns */
        if (at == T_S8) for (unsigned i = 0; i < M * K; i++) A[i] = (uint32_t)(int32_t)(int8_t)EA[i];
        else for (unsigned i = 0; i < M * K; i++) A[i] = EA[i];
        if (bt == T_S8) for (unsigned i = 0; i < K * N; i++) Bm[i] = (uint32_t)(int32_t)(int8_t)EB[i];
        else for (unsigned i = 0; i < K * N; i++) Bm[i] = EB[i];
        uint32_t acc[256];
        memcpy(acc, EC, 4 * (size_t)M * N);
        if (satf) { /* the exact sum, clamped to s32 */
            for (unsigned m = 0; m < M; m++)
                for (unsigned n = 0; n < N; n++) {
                    int64_t s = (int32_t)acc[m * N + n];
                    for (unsigned k = 0; k < K; k++) s += (int64_t)(int32_t)A[m * K + k] * (int32_t)Bm[k * N + n];
                    acc[m * N + n] = (uint32_t)(int32_t)(s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s);
                }
        } else {
            gemm_u32(M, N, K, A, Bm, acc);
        }
        memcpy(ED, acc, 4 * (size_t)M * N);
        frag_scatter(R, ld, nc, 4, nd, ED, em);
        return;
    }
    _Alignas(32) float A[256], Bm[256], acc[256];
    to_f32(EA, at, tf32, M * K, A);
    to_f32(EB, bt, tf32, K * N, Bm);
    to_f32(EC, ct, 0, M * N, acc);
    gemm_f32(M, N, K, A, Bm, acc);
    if (dt == T_F32) {
        memcpy(ED, acc, 4 * (size_t)M * N);
        frag_scatter(R, ld, nc, 4, nd, ED, em);
    } else {
        for (unsigned i = 0; i < M * N; i++) {
            const uint16_t h = ptx_f64_to_f16(acc[i], RM_RN);
            memcpy(ED + 2 * i, &h, 2);
        }
        frag_scatter(R, ld, nc, 2, nd, ED, em);
    }
}

/* Per element, per lane, in lane order: any address pattern, any state space; the first failing element
 * stops the instruction. */
static int wmma_ldst_slow(const ptx_ins *in, const int32_t *regs, uint64_t *R, const ptx_memview *mv, unsigned tid0,
                          uint32_t em, ptx_mma_fault *f) {
    const int isload = in->op == OP_WMMA_LOAD, col = in->bop, nr = in->vec, shape = in->e, mat = in->sub;
    const int sp = in->space;
    const unsigned es = in->esize, epr = es >= 4 ? 1 : 4 / es;
    unsigned R_, C_;
    wmma_dims(shape, mat, &R_, &C_);
    const unsigned n = R_ * C_ / 32;
    const uint64_t msk = es == 8 ? ~0ull : (1ull << (8 * es)) - 1;
    for (uint32_t m = em; m; m &= m - 1) {
        const unsigned l = (unsigned)__builtin_ctz(m);
        const uint64_t base = REG(in->a, l) + (uint64_t)in->imm, ldm = (uint32_t)REG(in->b, l);
        uint64_t frag[8] = {0};
        if (!isload)
            for (int k = 0; k < nr; k++) frag[k] = REG(regs[k], l);
        for (unsigned i = 0; i < n; i++) {
            unsigned r, cc;
            wmma_elem(shape, mat, l * n + i, &r, &cc);
            const uint64_t a = base + es * (col ? (uint64_t)cc * ldm + r : (uint64_t)r * ldm + cc);
            uint8_t *p = ptx_mem_resolve(mv, tid0 + l, sp, a, es);
            if (!p || (a & (es - 1))) {
                f->lane = l;
                f->addr = a;
                f->bytes = es;
                f->misaligned = p != NULL;
                return -1;
            }
            const unsigned sh = 8 * es * (i % epr);
            if (isload) {
                uint64_t v = 0;
                memcpy(&v, p, es);
                frag[i / epr] |= (v & msk) << sh;
            } else {
                const uint64_t v = (frag[i / epr] >> sh) & msk;
                memcpy(p, &v, es);
            }
        }
        if (isload)
            for (int k = 0; k < nr; k++) REG(regs[k], l) = frag[k];
    }
    return 0;
}

/* Nonzero when a register's 32 lanes differ in the bits of mask (two lanes per SSE2 compare, no early exit). */
static inline uint64_t lanes_differ(const uint64_t *r, uint64_t mask) {
    const __m128i first = _mm_set1_epi64x((long long)r[0]), m = _mm_set1_epi64x((long long)mask);
    __m128i acc = _mm_setzero_si128();
    for (unsigned l = 0; l < 32; l += 2) acc = _mm_or_si128(acc, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(r + l)), first));
    acc = _mm_and_si128(acc, m);
    return (uint64_t)_mm_cvtsi128_si64(acc) | (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc));
}

/* Memory line j (len elements of es bytes) <-> its elements' places in fragment order when the line runs
 * across it (element t of line j at t * nlines + j); always_inline with a constant es: one move each. */
static inline __attribute__((always_inline)) void transpose_line(uint8_t *E, uint8_t *line, unsigned j, unsigned nlines,
                                                                unsigned len, unsigned es, int isload) {
    for (unsigned t = 0; t < len; t++) {
        uint8_t *e = E + ((size_t)t * nlines + j) * es;
        if (isload) memcpy(e, line + (size_t)t * es, es);
        else memcpy(line + (size_t)t * es, e, es);
    }
}

int ptx_mma_wmma_ldst(const ptx_ins *in, const int32_t *lists, uint64_t *R, const ptx_memview *mv, unsigned tid0,
                      uint32_t em, ptx_mma_fault *f) {
    const int32_t *regs = lists + in->c;
    const int isload = in->op == OP_WMMA_LOAD, col = in->bop, shape = in->e, mat = in->sub, sp = in->space;
    const unsigned es = in->esize;
    if (em != FULL || sp == SP_LOCAL || sp == SP_KPARAM) return wmma_ldst_slow(in, regs, R, mv, tid0, em, f);
    const uint64_t base = REG(in->a, 0) + (uint64_t)in->imm;
    const uint32_t ldm = (uint32_t)REG(in->b, 0);
    if (lanes_differ(&REG(in->a, 0), ~0ull) | lanes_differ(&REG(in->b, 0), 0xffffffffu))
        return wmma_ldst_slow(in, regs, R, mv, tid0, em, f);
    if (base & (es - 1) || (sp == SP_GENERIC && base >= PTX_SHARED_BASE + PTX_WIN_SIZE))
        return wmma_ldst_slow(in, regs, R, mv, tid0, em, f);
    unsigned Rr, Cc;
    wmma_dims(shape, mat, &Rr, &Cc);
    /* memory lines: rows (row-major) or columns (.col) of the tile */
    const unsigned nlines = col ? Cc : Rr, len = col ? Rr : Cc;
    if (ldm < len) return wmma_ldst_slow(in, regs, R, mv, tid0, em, f); /* overlapping lines: element order matters */
    /* fragment order: row-major, except B of m8n8k4 (column-major); a line is contiguous in it when both agree */
    const int fcol = shape == WS_M8N8K4 && mat == 1;
    /* the whole tile's span in one piece when it resolves so (shared memory, one allocation), else line by line */
    uint8_t *span = ptx_mem_resolve(mv, tid0, sp, base, (uint64_t)es * ((uint64_t)(nlines - 1) * ldm + len));
    if (span && es == 8 && in->vec == 1 && col == fcol) {
        /* a one-register f64 fragment (A, B of m8n8k4) is its slot, 8 lines of 4 elements in fragment order */
        uint8_t *slot = (uint8_t *)&REG(regs[0], 0);
        for (unsigned j = 0; j < 8; j++) {
            uint8_t *line = span + (size_t)8 * j * ldm;
            if (isload) memcpy(slot + 32 * j, line, 32);
            else memcpy(line, slot + 32 * j, 32);
        }
        return 0;
    }
    uint8_t *line[16];
    for (unsigned j = 0; j < nlines; j++) {
        line[j] = span ? span + (size_t)es * j * ldm : ptx_mem_resolve(mv, tid0, sp, base + (uint64_t)es * j * ldm, (uint64_t)len * es);
        if (!line[j]) return wmma_ldst_slow(in, regs, R, mv, tid0, em, f);
    }
    const unsigned n = Rr * Cc / 32;
    uint64_t buf[256]; /* 64-bit objects, viewed as bytes */
    uint8_t *E = (uint8_t *)buf;
    if (!isload) frag_gather(R, regs, n, es, E);
    const size_t lb = (size_t)len * es;
    for (unsigned j = 0; j < nlines; j++) {
        if (col == fcol) {
            uint8_t *dst = isload ? E + j * lb : line[j];
            const uint8_t *src = isload ? line[j] : E + j * lb;
            switch (lb) { /* constant sizes: inline moves instead of a memcpy call per line */
            case 16: memcpy(dst, src, 16); break;
            case 32: memcpy(dst, src, 32); break;
            case 64: memcpy(dst, src, 64); break;
            default: memcpy(dst, src, lb); break;
            }
        } else {
            switch (es) {
            case 1: transpose_line(E, line[j], j, nlines, len, 1, isload); break;
            case 2: transpose_line(E, line[j], j, nlines, len, 2, isload); break;
            case 4: transpose_line(E, line[j], j, nlines, len, 4, isload); break;
            default: transpose_line(E, line[j], j, nlines, len, 8, isload); break;
            }
        }
    }
    if (isload) frag_scatter(R, regs, n, es, (unsigned)in->vec, E, FULL);
    return 0;
}

/* ------------------------------------------------------------------ mma.sync, ldmatrix */

void ptx_mma_mma(const ptx_ins *in, const int32_t *lists, uint64_t *R, uint32_t em) {
    pthread_once(&pick_once, pick);
    const int32_t *ld = lists + in->d, *la = lists + in->a, *lb = lists + in->b, *lc = lists + in->c;
    const int at = in->t2, ct = in->esize, dt = in->t;
    const unsigned K = in->sub ? 16 : 8;
    /* ISA layouts, lane l = 4 g + tg: A (16 x K, .row) element i at row g + 8 ((i >> 1) & 1), column
     * 2 tg + (i & 1) + 8 (i >> 2); B (K x 8, .col) element i at row 2 tg + (i & 1) + 8 (i >> 1), column g;
     * C/D (16 x 8) element i at row g + 8 (i >> 1), column 2 tg + (i & 1). f16/bf16 two per register. */
    uint16_t ha[16 * 16], hb[16 * 8];
    _Alignas(32) float A[16 * 16], Bm[16 * 8], acc[16 * 8];
    for (unsigned l = 0; l < 32; l++) {
        const unsigned g = l >> 2, tg = l & 3;
        for (unsigned i = 0; i < K / 2; i++)
            ha[(g + ((i >> 1) & 1) * 8) * K + tg * 2 + (i & 1) + (i >> 2) * 8] = (uint16_t)(REG(la[i / 2], l) >> (16 * (i % 2)));
        for (unsigned i = 0; i < K / 4; i++) hb[(tg * 2 + (i & 1) + (i >> 1) * 8) * 8 + g] = (uint16_t)(REG(lb[i / 2], l) >> (16 * (i % 2)));
        for (unsigned i = 0; i < 4; i++) {
            const unsigned at_ = (g + (i >> 1) * 8) * 8 + tg * 2 + (i & 1);
            acc[at_] = ct == T_F32 ? f32_of((uint32_t)REG(lc[i], l)) : h2f((uint16_t)(REG(lc[i / 2], l) >> (16 * (i % 2))));
        }
    }
    if (at == T_F16) {
        h2f_n(ha, A, 16 * K);
        h2f_n(hb, Bm, K * 8);
    } else {
        for (unsigned i = 0; i < 16 * K; i++) A[i] = bf2f(ha[i]);
        for (unsigned i = 0; i < K * 8; i++) Bm[i] = bf2f(hb[i]);
    }
    gemm_f32(16, 8, K, A, Bm, acc);
    for (uint32_t m = em; m; m &= m - 1) {
        const unsigned l = (unsigned)__builtin_ctz(m), g = l >> 2, tg = l & 3;
        uint64_t frag[4] = {0};
        for (unsigned i = 0; i < 4; i++) {
            const float v = acc[(g + (i >> 1) * 8) * 8 + tg * 2 + (i & 1)];
            if (dt == T_F32) frag[i] = bits_of_f32(v);
            else frag[i / 2] |= (uint64_t)ptx_f64_to_f16(v, RM_RN) << (16 * (i % 2));
        }
        for (unsigned k = 0; k < (dt == T_F32 ? 4u : 2u); k++) REG(ld[k], l) = frag[k];
    }
}

int ptx_mma_ldmatrix(const ptx_ins *in, const int32_t *lists, uint64_t *R, const ptx_memview *mv, unsigned tid0,
                     uint32_t em, ptx_mma_fault *f) {
    /* lanes 8j..8j+7 give the row addresses of 8x8 b16 matrix j; lane l receives row l/4, columns 2(l%4),
     * 2(l%4)+1 of each matrix (.trans: the transposed element pair) */
    const int32_t *regs = lists + in->c;
    const int num = in->vec, trans = in->bop, sp = in->space;
    uint64_t rows[32];
    for (unsigned l = 0; l < 32; l++) rows[l] = REG(in->a, l) + (uint64_t)in->imm;
    for (uint32_t m = em; m; m &= m - 1) {
        const unsigned l = (unsigned)__builtin_ctz(m);
        for (int j = 0; j < num; j++) {
            uint32_t v = 0;
            for (unsigned h = 0; h < 2; h++) {
                const unsigned r = trans ? (l % 4) * 2 + h : l / 4, cc = trans ? l / 4 : (l % 4) * 2 + h;
                const unsigned src = (unsigned)j * 8 + r;
                const uint64_t a = rows[src] + 2 * cc;
                const uint8_t *p = ptx_mem_resolve(mv, tid0 + src, sp, a, 2);
                if (!p || (rows[src] & 15)) {
                    f->lane = src;
                    f->addr = a;
                    f->bytes = 2;
                    f->misaligned = p != NULL;
                    return -1;
                }
                uint16_t x;
                memcpy(&x, p, 2);
                v |= (uint32_t)x << (16 * h);
            }
            REG(regs[j], l) = v;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ cp.async */

/* One lane's copy: 0, or -1 with *f set. */
static inline int cp_async_lane(unsigned l, uint64_t da, uint64_t sa, unsigned sz, unsigned n, const ptx_memview *mv,
                                ptx_mma_fault *f) {
    if (n > sz) n = sz;
    uint8_t *dp = ptx_mem_shared(mv, da, sz);
    const uint8_t *sp = n ? ptx_mem_global(mv, sa, n) : dp;
    if (!dp || !sp || (da & (sz - 1))) {
        f->lane = l;
        f->addr = dp ? sa : da;
        f->bytes = sz;
        f->misaligned = dp && sp;
        return -1;
    }
    if (n == sz) {
        switch (sz) { /* constant sizes: inline moves instead of a memcpy call per lane */
        case 16: memcpy(dp, sp, 16); break;
        case 8: memcpy(dp, sp, 8); break;
        case 4: memcpy(dp, sp, 4); break;
        default: memcpy(dp, sp, sz); break;
        }
    } else {
        memcpy(dp, sp, n);
        memset(dp + n, 0, sz - n);
    }
    return 0;
}

int ptx_mma_cp_async(const ptx_ins *in, const uint64_t *dst, const uint64_t *src, const uint64_t *srcsize,
                     const ptx_memview *mv, uint32_t em, ptx_mma_fault *f) {
    const unsigned sz = in->esize;
    const uint64_t doff = (uint64_t)in->imm, soff = (uint64_t)(int64_t)in->e;
#define WHOLE(l) (!srcsize || (uint32_t)srcsize[l] >= sz) /* the lane copies sz bytes, no zero fill */
    uint32_t m = em;
    while (m) {
        /* a run of consecutive lanes copying whole, consecutive sz-byte pieces (a tile row, as the samples
         * issue it) is one copy; a lane the run cannot take goes alone, in lane order */
        const unsigned l0 = (unsigned)__builtin_ctz(m);
        const uint64_t da = dst[l0] + doff, sa = src[l0] + soff;
        unsigned l = l0;
        if (WHOLE(l0))
            while (l < 31 && (m >> (l + 1) & 1) && WHOLE(l + 1) && dst[l + 1] + doff == da + (uint64_t)(l + 1 - l0) * sz &&
                   src[l + 1] + soff == sa + (uint64_t)(l + 1 - l0) * sz)
                l++;
        const uint64_t bytes = (uint64_t)(l + 1 - l0) * sz;
        uint8_t *dp;
        const uint8_t *sp;
        if (l > l0 && !(da & (sz - 1)) && (dp = ptx_mem_shared(mv, da, bytes)) && (sp = ptx_mem_global(mv, sa, bytes))) {
            memcpy(dp, sp, bytes);
            m = l == 31 ? 0u : m & ~0u << (l + 1);
            continue;
        }
        if (cp_async_lane(l0, da, sa, sz, srcsize ? (unsigned)srcsize[l0] : sz, mv, f)) return -1;
        m &= m - 1;
    }
#undef WHOLE
    return 0;
}
