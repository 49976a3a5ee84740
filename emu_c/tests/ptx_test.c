/* ptx_test.c - unit tests of the PTX engine (ptx_parse.c + ptx_exec.c) on PTX that nvcc generated
 * from tests/cuda/ptx_kernels.cu (committed as emu_c/tests/ptx_kernels.ptx) plus small hand-written
 * PTX. Every test launches through ptx.h with a tiny driver stand-in (tracked malloc'd buffers) and
 * compares with a C reference. Run by emu_c's `make test` (under ASan by `make asan-test`) and by
 * tests/emu/test_ptx_engine.py. Usage: ptx_test [path/to/ptx_kernels.ptx] [test-name ...]
 */
#include <fenv.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../ptx.h"
#include "../ptx_texture.h"
#include "../ptx_jit.h"

/* ------------------------------------------------------------------ driver stand-in */
#define MAX_ALLOCS 256
static struct { uint64_t addr, len; } allocs[MAX_ALLOCS];
static int nallocs;
static pthread_mutex_t amu = PTHREAD_MUTEX_INITIALIZER;

static void *dev_alloc(void *ctx, size_t n) {
    (void)ctx;
    void *p = calloc(1, n ? n : 1);
    if (!p) return NULL;
    pthread_mutex_lock(&amu);
    if (nallocs < MAX_ALLOCS) {
        allocs[nallocs].addr = (uint64_t)(uintptr_t)p;
        allocs[nallocs].len = n;
        nallocs++;
    }
    pthread_mutex_unlock(&amu);
    return p;
}

static void dev_free(void *ctx, void *p) {
    (void)ctx;
    pthread_mutex_lock(&amu);
    for (int i = 0; i < nallocs; i++)
        if (allocs[i].addr == (uint64_t)(uintptr_t)p) { allocs[i] = allocs[--nallocs]; break; }
    pthread_mutex_unlock(&amu);
    free(p);
}

static int dev_check(void *ctx, uint64_t a, uint64_t n) {
    (void)ctx;
    int ok = 0;
    pthread_mutex_lock(&amu);
    for (int i = 0; i < nallocs; i++)
        if (a >= allocs[i].addr && a + n <= allocs[i].addr + allocs[i].len && a + n >= a) ok = 1;
    pthread_mutex_unlock(&amu);
    return ok;
}

static ptx_env ENV = {NULL, dev_alloc, dev_free, dev_check, NULL, dev_alloc, dev_free};

/* ------------------------------------------------------------------ helpers */
static int failures;
static const char *cur_test;
#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            failures++;                                                                       \
            fprintf(stderr, "FAIL %s:%d [%s]: ", __FILE__, __LINE__, cur_test);               \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            return;                                                                           \
        }                                                                                     \
    } while (0)

static ptx_module *MOD;
static char *PTX_TEXT;
static size_t PTX_LEN;

typedef struct pbuf {
    uint8_t b[256];
    size_t n;
} pbuf;

static void pput(pbuf *p, const void *v, size_t sz) {
    p->n = (p->n + sz - 1) / sz * sz;
    memcpy(p->b + p->n, v, sz);
    p->n += sz;
}
static void pptr(pbuf *p, const void *v) { uint64_t a = (uint64_t)(uintptr_t)v; pput(p, &a, 8); }
static void pint(pbuf *p, int v) { pput(p, &v, 4); }
static void pflt(pbuf *p, float v) { pput(p, &v, 4); }

/* Launches kernel k with the given shape and parameters (p NULL: none); ptx_launch's result. */
static int launch_k(const ptx_kernel *k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                    size_t dyn, const pbuf *p, int workers, int coop, char *log, size_t loglen, uint64_t *icount) {
    ptx_launch_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.grid[0] = gx; cfg.grid[1] = gy; cfg.grid[2] = gz;
    cfg.block[0] = bx; cfg.block[1] = by; cfg.block[2] = bz;
    cfg.dynamic_shared_bytes = dyn;
    cfg.param_buffer = p ? p->b : NULL;
    cfg.param_buffer_size = p ? p->n : 0;
    cfg.worker_threads = workers;
    cfg.cooperative = coop;
    return ptx_launch(k, &cfg, &ENV, icount, log, loglen);
}
/* The same for kernel `name` of module m. */
static int launch_in(ptx_module *m, const char *name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                     unsigned bz, size_t dyn, const pbuf *p, int workers, int coop, char *log, size_t loglen,
                     uint64_t *icount) {
    const ptx_kernel *k = ptx_module_get_kernel(m, name);
    if (!k) {
        snprintf(log, loglen, "no kernel %s", name);
        return -1;
    }
    return launch_k(k, gx, gy, gz, bx, by, bz, dyn, p, workers, coop, log, loglen, icount);
}
/* The same in the test kernels' module (MOD). */
static int launch(const char *name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                  size_t dyn, const pbuf *p, int workers, int coop, char *log, size_t loglen, uint64_t *icount) {
    return launch_in(MOD, name, gx, gy, gz, bx, by, bz, dyn, p, workers, coop, log, loglen, icount);
}

#define LAUNCH_OK(name, gx, bx, dyn, p, workers)                                              \
    do {                                                                                      \
        char log_[512] = "";                                                                  \
        int r_ = launch(name, gx, 1, 1, bx, 1, 1, dyn, p, workers, 0, log_, sizeof(log_), NULL); \
        CHECK(r_ == 0, "launch %s -> %d (%s)", name, r_, log_);                              \
    } while (0)

static uint32_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state ^ (rng_state >> 13);
}

static float fbits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bitsf(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* 0 when the JIT should have compiled kernel `name` of m but did not: with TF_EMU_ENGINE=jit (the default)
 * and TF_EMU_JIT_SYNC=1 (make test, tests/emu) every launch waits for its kernel's code; else 1 (and for a
 * kernel above the JIT's size limit, as ptx_kernels.cu built with nvcc -G makes them). */
static int jit_compiled(ptx_module *m, const char *name) {
    const char *e = getenv("TF_EMU_ENGINE"), *sy = getenv("TF_EMU_JIT_SYNC");
    const ptx_kernel *k = ptx_module_get_kernel(m, name);
    if ((e && *e && strcmp(e, "jit")) || !sy || strcmp(sy, "1") || (k && k->ncode > PTX_JIT_MAX_INSTRUCTIONS)) return 1;
    return ptx_jit_compile_ms(k) >= 0;
}

/* ------------------------------------------------------------------ tests */
static void test_vadd(void) {
    int n = 1000;
    float *a = dev_alloc(0, n * 4), *b = dev_alloc(0, n * 4), *c = dev_alloc(0, n * 4);
    for (int i = 0; i < n; i++) { a[i] = (float)i * 0.5f; b[i] = (float)(n - i); }
    pbuf p = {{0}, 0};
    pptr(&p, a); pptr(&p, b); pptr(&p, c); pint(&p, n);
    LAUNCH_OK("vadd", (n + 127) / 128, 128, 0, &p, 2);
    for (int i = 0; i < n; i++) CHECK(c[i] == a[i] + b[i], "c[%d]=%f", i, c[i]);
    dev_free(0, a); dev_free(0, b); dev_free(0, c);
}

static void test_saxpy(void) {
    int n = 3000;
    float *x = dev_alloc(0, n * 4), *y = dev_alloc(0, n * 4), *ref = malloc(n * 4);
    float *ref2 = malloc(n * 4); /* nvcc -G does not contract a*x+y into fma */
    for (int i = 0; i < n; i++) {
        x[i] = (float)(rnd() % 1000) / 7.0f;
        y[i] = (float)(rnd() % 1000) / 3.0f;
        ref[i] = fmaf(2.5f, x[i], y[i]);
        volatile float prod = 2.5f * x[i];
        ref2[i] = prod + y[i];
    }
    pbuf p = {{0}, 0};
    pflt(&p, 2.5f); pptr(&p, x); pptr(&p, y); pint(&p, n);
    LAUNCH_OK("saxpy", 4, 256, 0, &p, 2);
    int bad = -1;
    for (int i = 0; i < n && bad < 0; i++) if (y[i] != ref[i] && y[i] != ref2[i]) bad = i;
    float got = bad >= 0 ? y[bad] : 0, want = bad >= 0 ? ref[bad] : 0;
    dev_free(0, x); dev_free(0, y); free(ref); free(ref2);
    CHECK(bad < 0, "y[%d]=%.9g want %.9g", bad, got, want);
}

static void test_matmul(void) {
    int n = 48;
    float *A = dev_alloc(0, n * n * 4), *B = dev_alloc(0, n * n * 4), *C = dev_alloc(0, n * n * 4);
    for (int i = 0; i < n * n; i++) { A[i] = (float)(rnd() % 17) - 8; B[i] = (float)(rnd() % 13) - 6; }
    pbuf p = {{0}, 0};
    pptr(&p, A); pptr(&p, B); pptr(&p, C); pint(&p, n);
    char log[512];
    int r = launch("matmul", n / 16, n / 16, 1, 16, 16, 1, 0, &p, 2, 0, log, sizeof(log), NULL);
    CHECK(r == 0, "launch %d %s", r, log);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0;
            for (int k = 0; k < n; k++) acc += A[i * n + k] * B[k * n + j];
            CHECK(C[i * n + j] == acc, "C[%d][%d]=%f want %f", i, j, C[i * n + j], acc);
        }
    dev_free(0, A); dev_free(0, B); dev_free(0, C);
}

static void test_reduce(void) {
    int n = 5000;
    float *x = dev_alloc(0, n * 4), *out = dev_alloc(0, 4);
    double ref = 0;
    for (int i = 0; i < n; i++) { x[i] = (float)(i % 10); ref += x[i]; }
    pbuf p = {{0}, 0};
    pptr(&p, x); pptr(&p, out); pint(&p, n);
    LAUNCH_OK("reduce_sum", 5, 256, 0, &p, 2);
    CHECK(*out == (float)ref, "sum %f want %f", *out, ref);
    dev_free(0, x); dev_free(0, out);
}

static void test_histogram(void) {
    int n = 20000;
    unsigned char *d = dev_alloc(0, n);
    unsigned *h = dev_alloc(0, 256 * 4);
    unsigned ref[256] = {0};
    for (int i = 0; i < n; i++) { d[i] = (unsigned char)(rnd() % 251); ref[d[i]]++; }
    pbuf p = {{0}, 0};
    pptr(&p, d); pptr(&p, h); pint(&p, n);
    LAUNCH_OK("histogram", 8, 192, 256 * 4, &p, 2);
    for (int i = 0; i < 256; i++) CHECK(h[i] == ref[i], "h[%d]=%u want %u", i, h[i], ref[i]);
    dev_free(0, d); dev_free(0, h);
}

static uint32_t brev32(uint32_t x) {
    uint32_t r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1) << (31 - i);
    return r;
}
static uint32_t prmt_ref(uint32_t a, uint32_t b, uint32_t s) {
    uint8_t by[8];
    for (int i = 0; i < 4; i++) { by[i] = (uint8_t)(a >> (8 * i)); by[4 + i] = (uint8_t)(b >> (8 * i)); }
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        uint32_t sel = (s >> (4 * i)) & 0xf;
        uint32_t v = by[sel & 7];
        if (sel & 8) v = (v & 0x80) ? 0xff : 0;
        r |= v << (8 * i);
    }
    return r;
}

static void test_intops(void) {
    enum { T = 64 };
    unsigned *in = dev_alloc(0, T * 2 * 4), *out = dev_alloc(0, T * 16 * 4);
    unsigned long long *o64 = dev_alloc(0, T * 2 * 8);
    static const unsigned special[] = {0, 1, 0xffffffffu, 0x80000000u, 0x7fffffffu, 31, 32, 33};
    for (int i = 0; i < T * 2; i++) in[i] = i < 16 ? special[i % 8] + (unsigned)(i / 8) : rnd();
    pbuf p = {{0}, 0};
    pptr(&p, in); pptr(&p, out); pptr(&p, o64);
    LAUNCH_OK("intops", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        unsigned a = in[2 * t], b = in[2 * t + 1];
        int sa = (int)a, sb = (int)b;
        unsigned *o = out + 16 * t;
        unsigned fl = (unsigned)(((((unsigned long long)b << 32) | a) << (t & 31)) >> 32);
        unsigned fr = (unsigned)((((unsigned long long)b << 32) | a) >> (t & 31));
        unsigned want[16] = {
            a + b, a - b, a * b, (unsigned)(((unsigned long long)a * b) >> 32),
            (unsigned)(((long long)sa * sb) >> 32), (unsigned)(sa >> (b & 31)), a >> (b & 31),
            (unsigned)__builtin_popcount(a) + 100u * (unsigned)(b ? __builtin_clz(b) : 32), brev32(a),
            prmt_ref(a, b, 0x5140u + (unsigned)(t & 7)), b ? a / b : 0, b ? a % b : 0,
            (sb != 0 && !(sa == (int)0x80000000 && sb == -1)) ? (unsigned)(sa / sb) : 0,
            (unsigned)(sa < sb ? sa : sb) ^ (a > b ? a : b), fl ^ fr,
            (unsigned)__builtin_ffs(sa) + ((unsigned)(sb < 0 ? -(long long)sb : sb) << 8)};
        for (int k = 0; k < 16; k++) CHECK(o[k] == want[k], "thread %d result %d: %#x want %#x (a=%#x b=%#x)", t, k, o[k], want[k], a, b);
        unsigned long long w0 = (unsigned long long)a * b + ((unsigned long long)b << 33);
        unsigned long long x = ((unsigned long long)a << 32) | b;
        unsigned long long w1 = (unsigned long long)(((unsigned __int128)x * 0x9E3779B97F4A7C15ull) >> 64) ^ (unsigned long long)((long long)sa * sb);
        CHECK(o64[2 * t] == w0 && o64[2 * t + 1] == w1, "thread %d 64-bit results", t);
    }
    dev_free(0, in); dev_free(0, out); dev_free(0, o64);
}

static float rmode_f(int mode, float a, float b, int op) {
    volatile float x = a, y = b, r;
    fesetround(mode);
    r = op == 0 ? x + y : op == 1 ? x * y : x / y;
    fesetround(FE_TONEAREST);
    return r;
}
static double rmode_d(int mode, double a, double b, double c, int op) {
    volatile double x = a, y = b, z = c, r;
    fesetround(mode);
    r = op == 0 ? x + y : op == 1 ? x * y : op == 2 ? x / y : fma(x, y, z);
    fesetround(FE_TONEAREST);
    return r;
}
static float d2f_mode(int mode, double d) {
    volatile double x = d;
    volatile float r;
    fesetround(mode);
    r = (float)x;
    fesetround(FE_TONEAREST);
    return r;
}

static int same_f(float a, float b) { return bitsf(a) == bitsf(b) || (isnan(a) && isnan(b)); }
static int same_d(double a, double b) { return memcmp(&a, &b, 8) == 0 || (isnan(a) && isnan(b)); }

static void test_fround(void) {
    enum { T = 96 };
    float *x = dev_alloc(0, T * 4), *y = dev_alloc(0, T * 4), *o = dev_alloc(0, T * 12 * 4);
    double *dx = dev_alloc(0, T * 8), *dy = dev_alloc(0, T * 8), *od = dev_alloc(0, T * 4 * 8);
    for (int i = 0; i < T; i++) {
        x[i] = fbits(0x3f800000u + (rnd() & 0x7fffff)) * (float)((int)(rnd() % 2000) - 1000);
        y[i] = fbits(0x3e000000u + (rnd() & 0x3ffffff)) * ((rnd() & 1) ? -1.0f : 1.0f);
        dx[i] = (double)x[i] * (1.0 + 1e-9 * (double)(rnd() % 1000)) + 1e-12;
        dy[i] = (double)y[i] / 3.0;
    }
    x[0] = 1e-40f; y[0] = 3.0f;
    pbuf p = {{0}, 0};
    pptr(&p, x); pptr(&p, y); pptr(&p, o); pptr(&p, dx); pptr(&p, dy); pptr(&p, od);
    LAUNCH_OK("fround", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        float a = x[t], b = y[t];
        float want[12] = {a + b, rmode_f(FE_TOWARDZERO, a, b, 0), rmode_f(FE_DOWNWARD, a, b, 0), rmode_f(FE_UPWARD, a, b, 0),
                          rmode_f(FE_TOWARDZERO, a, b, 1), rmode_f(FE_UPWARD, a, b, 1), a / b, rmode_f(FE_TOWARDZERO, a, b, 2),
                          fmaf(a, b, 1.0f), sqrtf(fabsf(a)), d2f_mode(FE_TOWARDZERO, dx[t]), d2f_mode(FE_UPWARD, dx[t])};
        for (int k = 0; k < 12; k++)
            CHECK(same_f(o[t * 12 + k], want[k]), "thread %d f32 result %d: %.9g (%#x) want %.9g (%#x)", t, k, o[t * 12 + k],
                  bitsf(o[t * 12 + k]), want[k], bitsf(want[k]));
        double da = dx[t], db = dy[t];
        double wd[4] = {rmode_d(FE_TOWARDZERO, da, db, 0, 0), rmode_d(FE_UPWARD, da, db, 0, 1), da / db,
                        rmode_d(FE_DOWNWARD, da, db, 1.0, 3)};
        for (int k = 0; k < 4; k++) CHECK(same_d(od[t * 4 + k], wd[k]), "thread %d f64 result %d: %.17g want %.17g", t, k, od[t * 4 + k], wd[k]);
    }
    dev_free(0, x); dev_free(0, y); dev_free(0, o); dev_free(0, dx); dev_free(0, dy); dev_free(0, od);
}

static int f2i_sat(double r) { return r != r ? 0 : r >= 2147483647.0 ? 2147483647 : r <= -2147483648.0 ? (int)0x80000000 : (int)r; }

static void test_fconv(void) {
    enum { T = 64 };
    float *x = dev_alloc(0, T * 4), *of = dev_alloc(0, T * 2 * 4);
    int *oi = dev_alloc(0, T * 6 * 4);
    for (int i = 0; i < T; i++) x[i] = ((float)((int)(rnd() % 20001) - 10000)) / 8.0f;
    x[0] = 2.5f; x[1] = -2.5f; x[2] = 3.5f; x[3] = 1e20f; x[4] = -1e20f; x[5] = NAN; x[6] = -0.5f; x[7] = 0.5f;
    pbuf p = {{0}, 0};
    pptr(&p, x); pptr(&p, oi); pptr(&p, of);
    LAUNCH_OK("fconv", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        float a = x[t];
        double ll = (double)(a * 1e10f);
        long long llz = ll != ll ? 0 : ll >= 9.2233720368547758e18 ? 0x7fffffffffffffffll : ll <= -9.2233720368547758e18 ? (long long)0x8000000000000000ull : (long long)trunc(ll);
        double u = truncf(a);
        unsigned uz = a != a ? 0 : u <= 0 ? 0 : u >= 4294967295.0 ? 0xffffffffu : (unsigned)u;
        int want[6] = {f2i_sat(nearbyint(a)), f2i_sat(truncf(a)), f2i_sat(floorf(a)), f2i_sat(ceilf(a)), (int)uz, (int)llz};
        for (int k = 0; k < 6; k++) CHECK(oi[6 * t + k] == want[k], "thread %d conv %d of %g: %d want %d", t, k, a, oi[6 * t + k], want[k]);
        int i1 = (int)((unsigned)want[1] * 1234567u + 7u);
        fesetround(FE_TOWARDZERO);
        volatile float w0 = (float)(volatile int){i1};
        fesetround(FE_UPWARD);
        volatile float w1 = (float)(volatile unsigned){(unsigned)want[1] * 2654435761u};
        fesetround(FE_TONEAREST);
        CHECK(same_f(of[2 * t], w0) && same_f(of[2 * t + 1], w1), "thread %d int->float %g %g want %g %g", t, of[2 * t], of[2 * t + 1], w0, w1);
    }
    dev_free(0, x); dev_free(0, oi); dev_free(0, of);
}

/* Reference f16 rounding: exhaustive search over the ordered positive f16 encodings. */
static double h2d(uint16_t h) {
    _Float16 f;
    memcpy(&f, &h, 2);
    return (double)f;
}
static uint16_t f2h_mode(float f, int mode) {
    if (isnan(f)) return 0x7fff;
    if (mode == 0) { _Float16 h = (_Float16)f; uint16_t u; memcpy(&u, &h, 2); return u; }
    int neg = signbit(f) != 0;
    double a = fabs((double)f);
    /* largest encoding <= a, smallest >= a */
    uint16_t lo = 0, hi = 0x7c00;
    for (uint16_t b = 0; b <= 0x7c00; b++) { if (h2d(b) <= a) lo = b; else break; }
    for (uint16_t b = 0; b <= 0x7c00; b++) if (h2d(b) >= a) { hi = b; break; }
    int up = mode == 1 ? 0 : (mode == 2 ? neg : !neg); /* 1 rz, 2 rd, 3 ru: magnitude rounds up? */
    uint16_t m = up ? hi : lo;
    if (isinf(a)) m = 0x7c00;
    return (uint16_t)(m | (neg ? 0x8000 : 0));
}
static uint16_t f2bf_rn(float f) {
    uint32_t u = bitsf(f);
    if (isnan(f)) return 0x7fff;
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static void test_halfconv(void) {
    enum { T = 128 };
    float *x = dev_alloc(0, T * 4), *back = dev_alloc(0, T * 2 * 4);
    unsigned short *o = dev_alloc(0, T * 6 * 2);
    for (int i = 0; i < T; i++) x[i] = fbits(0x33000000u + rnd() % 0x0e000000u) * ((rnd() & 1) ? -1.f : 1.f);
    x[0] = 65504.f; x[1] = 65519.f; x[2] = 65520.f; x[3] = 1e-8f; x[4] = -1e-8f; x[5] = 5.96e-8f; x[6] = INFINITY; x[7] = NAN;
    x[8] = 1.00048828125f; /* exact tie between two f16 values */
    x[9] = 3.0e38f;
    pbuf p = {{0}, 0};
    pptr(&p, x); pptr(&p, o); pptr(&p, back);
    LAUNCH_OK("halfconv", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        float a = x[t];
        uint16_t want[5] = {f2h_mode(a, 0), f2h_mode(a, 1), f2h_mode(a, 2), f2h_mode(a, 3), f2bf_rn(a)};
        for (int k = 0; k < 5; k++) {
            if (isnan(a) && (o[6 * t + k] & 0x7c00) == 0x7c00 && (o[6 * t + k] & 0x3ff)) continue;
            if (isnan(a) && k == 4 && (o[6 * t + k] & 0x7f80) == 0x7f80 && (o[6 * t + k] & 0x7f)) continue;
            CHECK(o[6 * t + k] == want[k], "thread %d conv %d of %.9g: %#x want %#x", t, k, a, o[6 * t + k], want[k]);
        }
        _Float16 h, one = (_Float16)1.0f, s;
        memcpy(&h, &want[0], 2);
        s = (_Float16)((float)h + (float)one);
        uint16_t sw;
        memcpy(&sw, &s, 2);
        if (!isnan(a)) CHECK(o[6 * t + 5] == sw, "thread %d hadd %#x want %#x", t, o[6 * t + 5], sw);
        CHECK(same_f(back[2 * t], (float)h), "thread %d half->float", t);
        uint32_t bw = (uint32_t)want[4] << 16;
        CHECK(same_f(back[2 * t + 1], fbits(bw)), "thread %d bf16->float", t);
    }
    dev_free(0, x); dev_free(0, o); dev_free(0, back);
}

static void test_warpops(void) {
    enum { T = 64 };
    int *in = dev_alloc(0, T * 4), *out = dev_alloc(0, T * 10 * 4);
    for (int i = 0; i < T; i++) in[i] = (int)(rnd() % 200) - 50;
    in[40] = 77;
    pbuf p = {{0}, 0};
    pptr(&p, in); pptr(&p, out);
    LAUNCH_OK("warpops", 1, T, 0, &p, 1);
    CHECK(jit_compiled(MOD, "warpops"), "the JIT did not compile warpops (TF_EMU_TRACE=1 says why)");
    for (int t = 0; t < T; t++) {
        int w = t & ~31, l = t & 31;
        const int *v = in + w;
        int want[10];
        want[0] = v[(t * 7) & 31];
        want[1] = l >= 3 ? v[l - 3] : v[l];
        want[2] = (l & 15) + 5 <= 15 ? v[l + 5] : v[l];
        want[3] = v[l ^ 9];
        unsigned ball = 0, anyeq = 0, allodd = 1, allbig = 1;
        int sum = 0, mx = -1000000, mn = 1000000;
        unsigned match = 0;
        for (int j = 0; j < 32; j++) {
            if (v[j] & 1) ball |= 1u << j;
            else allodd = 0;
            if (v[j] == 77) anyeq = 1;
            if (!(v[j] > -1000)) allbig = 0;
            sum += v[j];
            if (v[j] > mx) mx = v[j];
            if (v[j] < mn) mn = v[j];
            if ((v[j] & 3) == (v[l] & 3)) match |= 1u << j;
        }
        want[4] = (int)ball;
        want[5] = (int)(allbig + 2 * anyeq + 4 * allodd);
        want[6] = sum;
        want[7] = (int)match;
        want[8] = (l & 1) ? (int)0xaaaaaaaau : (int)(0x55555555u | 0x10000000u);
        want[9] = mx ^ mn;
        for (int k = 0; k < 10; k++) CHECK(out[10 * t + k] == want[k], "thread %d result %d: %#x want %#x", t, k, out[10 * t + k], want[k]);
    }
    dev_free(0, in); dev_free(0, out);
}

/* .sync warp operations honour each lane's member mask (labeled groups at one pc): reference in C. */
static void test_warpgroups(void) {
    enum { T = 64 };
    int *in = dev_alloc(0, T * 4), *out = dev_alloc(0, T * 8 * 4);
    for (int i = 0; i < T; i++) in[i] = (int)(rnd() % 200) - 50;
    in[40] = 77;
    for (int i = 2; i < 32; i += 3) in[32 + i] |= 1; /* one group of warp 1 all odd */
    CHECK(strstr(PTX_TEXT, "WARP_SZ") != NULL, "warpSize should compile to WARP_SZ");
    pbuf p = {{0}, 0};
    pptr(&p, in); pptr(&p, out);
    LAUNCH_OK("warpgroups", 1, T, 0, &p, 1);
    CHECK(jit_compiled(MOD, "warpgroups"), "the JIT did not compile warpgroups (TF_EMU_TRACE=1 says why)");
    for (int t = 0; t < T; t++) {
        int w = t & ~31, l = t & 31;
        const int *v = in + w;
        unsigned g = 0, ball = 0, match = 0, orv = 0;
        int sum = 0, mx = -1000000, anyeq = 0, allodd = 1, allbig = 1, alleq = 1;
        for (int j = l % 3; j < 32; j += 3) {
            g |= 1u << j;
            sum += v[j];
            if (v[j] > mx) mx = v[j];
            orv |= (unsigned)v[j];
            if (v[j] & 1) ball |= 1u << j;
            else allodd = 0;
            if (v[j] == 77) anyeq = 1;
            if (!(v[j] > -1000)) allbig = 0;
            if ((v[j] & 3) == (v[l] & 3)) match |= 1u << j;
            if (v[j] != v[l % 3]) alleq = 0;
        }
        if (l % 3 == 2) alleq = 1;
        int want[8] = {sum, mx ^ (int)orv, (int)ball, allbig + 2 * anyeq + 4 * allodd, (int)match,
                       alleq ? (int)g + 1 : 0, v[l % 3] + 32 * 1000, 1};
        for (int k = 0; k < 8; k++) CHECK(out[8 * t + k] == want[k], "thread %d result %d: %#x want %#x", t, k, out[8 * t + k], want[k]);
    }
    dev_free(0, in); dev_free(0, out);
}

/* mbarrier: arrival counts, phases (token and parity waits), transaction counts, arrive_drop,
 * generic addressing and cp.async.mbarrier.arrive, across two warps (simpleAWBarrier's pattern:
 * one thread writes, all arrive, all wait, all read). */
static const char MBAR_PTX[] =
    ".version 8.0\n.target sm_90\n.address_size 64\n"
    ".visible .entry mbar(.param .u64 out)\n{\n"
    ".reg .pred %p<8>;\n.reg .b32 %r<20>;\n.reg .b64 %rd<20>;\n"
    ".shared .align 8 .b64 bar;\n.shared .align 8 .b64 bar2;\n.shared .align 4 .b32 data;\n"
    "ld.param.u64 %rd1, [out];\nmov.u32 %r1, %tid.x;\nsetp.ne.u32 %p1, %r1, 0;\n"
    "@%p1 bra SKIP_INIT;\nmbarrier.init.shared::cta.b64 [bar], 64;\nmbarrier.init.shared.b64 [bar2], 2;\n"
    "SKIP_INIT:\nbar.sync 0;\n"
    "setp.ne.u32 %p2, %r1, 40;\n@%p2 bra NOWRITE;\nmov.u32 %r2, 1234;\nst.shared.u32 [data], %r2;\n"
    "NOWRITE:\nmbarrier.arrive.shared.b64 %rd2, [bar];\n"
    "WAIT0:\nmbarrier.test_wait.shared.b64 %p3, [bar], %rd2;\n@!%p3 bra WAIT0;\n"
    "ld.shared.u32 %r3, [data];\ncvt.u64.u32 %rd3, %r1;\nshl.b64 %rd3, %rd3, 2;\nadd.s64 %rd4, %rd1, %rd3;\n"
    "st.global.u32 [%rd4], %r3;\n"
    "mbarrier.arrive.release.cta.shared::cta.b64 %rd5, [bar];\n"
    "WAIT1:\nmbarrier.try_wait.parity.acquire.cta.shared::cta.b64 %p4, [bar], 1;\n@!%p4 bra WAIT1;\n"
    "bar.sync 0;\n@%p1 bra DONE;\n"
    "mbarrier.arrive.expect_tx.shared.b64 %rd6, [bar2], 16;\nmbarrier.pending_count.b64 %r4, %rd6;\n"
    "st.global.u32 [%rd1+256], %r4;\n"
    "mbarrier.arrive.shared.b64 %rd7, [bar2];\nmbarrier.test_wait.shared.b64 %p5, [bar2], %rd6;\n"
    "selp.u32 %r5, 1, 0, %p5;\nst.global.u32 [%rd1+260], %r5;\n"
    "mbarrier.complete_tx.shared.b64 [bar2], 16;\nmbarrier.test_wait.shared.b64 %p5, [bar2], %rd6;\n"
    "selp.u32 %r5, 1, 0, %p5;\nst.global.u32 [%rd1+264], %r5;\n"
    "mbarrier.arrive_drop.shared.b64 %rd8, [bar2];\nmbarrier.test_wait.parity.shared.b64 %p6, [bar2], 1;\n"
    "selp.u32 %r6, 1, 0, %p6;\nst.global.u32 [%rd1+268], %r6;\n"
    "mbarrier.arrive.shared.b64 %rd9, [bar2];\nmbarrier.test_wait.parity.shared.b64 %p6, [bar2], 1;\n"
    "selp.u32 %r6, 1, 0, %p6;\nst.global.u32 [%rd1+272], %r6;\n"
    "mbarrier.expect_tx.relaxed.cta.shared.b64 [bar2], 8;\nmbarrier.arrive.shared.b64 %rd10, [bar2];\n"
    "mbarrier.test_wait.shared.b64 %p7, [bar2], %rd10;\nselp.u32 %r7, 1, 0, %p7;\nst.global.u32 [%rd1+276], %r7;\n"
    "mbarrier.complete_tx.shared.b64 [bar2], 8;\nmbarrier.test_wait.shared.b64 %p7, [bar2], %rd10;\n"
    "selp.u32 %r7, 1, 0, %p7;\nst.global.u32 [%rd1+280], %r7;\n"
    "mov.u64 %rd11, bar2;\ncvta.shared.u64 %rd11, %rd11;\nmbarrier.arrive.b64 %rd12, [%rd11];\n"
    "mbarrier.test_wait.b64 %p7, [%rd11], %rd12;\nselp.u32 %r7, 1, 0, %p7;\nst.global.u32 [%rd1+284], %r7;\n"
    "mbarrier.inval.shared.b64 [bar2];\nmbarrier.init.shared.b64 [bar2], 3;\n"
    "cp.async.mbarrier.arrive.noinc.shared.b64 [bar2];\ncp.async.mbarrier.arrive.shared.b64 [bar2];\n"
    "mbarrier.arrive.noComplete.shared.b64 %rd13, [bar2], 1;\nmbarrier.pending_count.b64 %r8, %rd13;\n"
    "st.global.u32 [%rd1+288], %r8;\n"
    "mbarrier.arrive.shared.b64 %rd14, [bar2];\nmbarrier.test_wait.shared.b64 %p7, [bar2], %rd13;\n"
    "selp.u32 %r7, 1, 0, %p7;\nst.global.u32 [%rd1+292], %r7;\n"
    "DONE:\nret;\n}\n";

static void test_mbarrier(void) {
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(MBAR_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    unsigned *out = dev_alloc(0, 80 * 4);
    pbuf p = {{0}, 0};
    pptr(&p, out);
    int r = launch_in(m, "mbar", 1, 1, 1, 64, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    ptx_module_free(m);
    unsigned got[80];
    memcpy(got, out, sizeof(got));
    dev_free(0, out);
    CHECK(r == 0, "launch %d %s", r, log);
    for (int i = 0; i < 64; i++) CHECK(got[i] == 1234, "thread %d read %u before the phase completed", i, got[i]);
    /* pending 1; tx outstanding; tx done; drop leaves 1 of 1; completes; tx again; done; generic;
     * noComplete leaves 1 pending; then the last arrival completes */
    const unsigned want[10] = {1, 0, 1, 0, 1, 0, 1, 1, 1, 1};
    for (int i = 0; i < 10; i++) CHECK(got[64 + i] == want[i], "result %d: %u want %u", i, got[64 + i], want[i]);
}

/* griddepcontrol (programmatic dependent launch, as CUB 3's kernels emit it): .wait sees every
 * write of the grid launched before it (stream order), .launch_dependents changes nothing; the
 * malformed forms are illegal instructions (715 at launch, as every unsupported form) */
static const char GRIDDEP_PTX[] =
    ".version 8.0\n.target sm_90\n.address_size 64\n"
    ".visible .entry produce(.param .u64 p)\n{\n.reg .b32 %r<3>;\n.reg .b64 %rd<4>;\n"
    "ld.param.u64 %rd1, [p];\nmov.u32 %r1, %tid.x;\nmul.wide.u32 %rd2, %r1, 4;\nadd.s64 %rd3, %rd1, %rd2;\n"
    "mul.lo.u32 %r2, %r1, 3;\nst.global.u32 [%rd3], %r2;\ngriddepcontrol.launch_dependents;\nret;\n}\n"
    ".visible .entry consume(.param .u64 p, .param .u64 q)\n{\n.reg .b32 %r<3>;\n.reg .b64 %rd<6>;\n"
    "griddepcontrol.wait;\nld.param.u64 %rd1, [p];\nld.param.u64 %rd4, [q];\nmov.u32 %r1, %tid.x;\n"
    "mul.wide.u32 %rd2, %r1, 4;\nadd.s64 %rd3, %rd1, %rd2;\nld.global.u32 %r2, [%rd3];\nadd.u32 %r2, %r2, 1;\n"
    "add.s64 %rd5, %rd4, %rd2;\nst.global.u32 [%rd5], %r2;\nret;\n}\n";

static void test_griddepcontrol(void) {
    int err = 0;
    char log[512] = "";
    ptx_module *m = ptx_module_load(GRIDDEP_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    enum { N = 96 };
    unsigned *a = dev_alloc(0, N * 4), *b = dev_alloc(0, N * 4);
    pbuf p1 = {{0}, 0}, p2 = {{0}, 0};
    pptr(&p1, a);
    pptr(&p2, a); pptr(&p2, b);
    int r1 = launch_in(m, "produce", 1, 1, 1, N, 1, 1, 0, &p1, 2, 0, log, sizeof(log), NULL);
    int r2 = r1 ? r1 : launch_in(m, "consume", 1, 1, 1, N, 1, 1, 0, &p2, 2, 0, log, sizeof(log), NULL);
    ptx_module_free(m);
    unsigned got[N];
    memcpy(got, b, sizeof(got));
    dev_free(0, a); dev_free(0, b);
    CHECK(r1 == 0 && r2 == 0, "launches %d %d: %s", r1, r2, log);
    for (unsigned i = 0; i < N; i++) CHECK(got[i] == i * 3 + 1, "thread %u: %u, want %u", i, got[i], i * 3 + 1);
    static const char *bad[] = {"griddepcontrol;", "griddepcontrol.wait.launch_dependents;", "griddepcontrol.wait %r1;",
                                "griddepcontrol.sync;"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), ".version 8.0\n.target sm_90\n.address_size 64\n"
                 ".visible .entry k()\n{\n.reg .b32 %%r<2>;\n%s\nret;\n}\n", bad[i]);
        err = 0;
        ptx_module *mb = ptx_module_load(text, 0, &ENV, &err, log, sizeof(log));
        CHECK(mb != NULL, "'%s': load %d %s", bad[i], err, log);
        int rb = launch_in(mb, "k", 1, 1, 1, 1, 1, 1, 0, NULL, 2, 0, log, sizeof(log), NULL);
        ptx_module_free(mb);
        CHECK(rb == 715 && strstr(log, "griddepcontrol"), "'%s' -> %d (%s), want 715", bad[i], rb, log);
    }
}

/* virtual calls through vtables, device new/delete, a table of function pointers */
static void test_virtuals(void) {
    enum { T = 48 };
    float *in = dev_alloc(0, T * 4), *area = dev_alloc(0, T * 4);
    int *sides = dev_alloc(0, T * 4), *ops = dev_alloc(0, T * 4);
    for (int i = 0; i < T; i++) in[i] = (float)(i % 7) + 0.5f;
    CHECK(strstr(PTX_TEXT, "_ZTV6Square") != NULL && strstr(PTX_TEXT, "op_table") != NULL, "expected vtables in the PTX");
    pbuf p = {{0}, 0};
    pptr(&p, in); pptr(&p, area); pptr(&p, sides); pptr(&p, ops);
    LAUNCH_OK("virtuals", 1, T, 0, &p, 1);
    for (int i = 0; i < T; i++) {
        float x = in[i];
        float wa = i % 3 == 0 ? x * x : i % 3 == 1 ? 0.5f * x * x : 3.0f * x * x;
        int ws = i % 3 == 0 ? 4 : i % 3 == 1 ? 3 : 0;
        CHECK(area[i] == wa && sides[i] == ws, "thread %d: area %g sides %d, want %g %d", i, area[i], sides[i], wa, ws);
        CHECK(ops[i] == ((i & 1) ? i * 3 : i + 3), "thread %d: op %d", i, ops[i]);
    }
    dev_free(0, in); dev_free(0, area); dev_free(0, sides); dev_free(0, ops);
}

static void test_atomics(void) {
    int blocks = 6, threads = 96, total = blocks * threads;
    int *gi = dev_alloc(0, 6 * 4), *order = dev_alloc(0, (size_t)total * 4);
    unsigned *gu = dev_alloc(0, 5 * 4);
    float *gf = dev_alloc(0, 4);
    double *gd = dev_alloc(0, 8);
    unsigned long long *gll = dev_alloc(0, 16);
    gi[1] = 0x7fffffff; gi[2] = -5; gi[5] = -1;
    gu[2] = 0; gu[4] = 0xffffffffu;
    pbuf p = {{0}, 0};
    pptr(&p, gi); pptr(&p, gu); pptr(&p, gf); pptr(&p, gd); pptr(&p, gll); pptr(&p, order);
    LAUNCH_OK("atomics", (unsigned)blocks, (unsigned)threads, 0, &p, 2);
    int sumt = threads * (threads - 1) / 2, x = 0;
    for (int b = 0; b < blocks; b++) x ^= 0 ^ b; /* per-block xor of 0..threads-1 is 0 for threads % 4 == 0 */
    CHECK(gi[0] == blocks * sumt, "add %d", gi[0]);
    CHECK(gi[1] == 1, "min %d", gi[1]);
    CHECK(gi[2] == threads - 1 + blocks - 1, "max %d", gi[2]);
    CHECK(gi[3] == x, "xor %d want %d", gi[3], x);
    CHECK(gf[0] == 0.5f * (float)total, "float add %f", gf[0]);
    CHECK(gu[0] == (unsigned)total, "u add %u", gu[0]);
    CHECK(gu[1] == (unsigned)(total % 100), "inc %u", gu[1]);
    /* dec from 0 with limit 1000: 0 -> 1000 -> 999 ... */
    unsigned dv = 0;
    for (int i = 0; i < total; i++) dv = (dv == 0 || dv > 1000) ? 1000 : dv - 1;
    CHECK(gu[2] == dv, "dec %u want %u", gu[2], dv);
    CHECK(gu[3] == 0xffffffffu && gu[4] == 0, "or/and %#x %#x", gu[3], gu[4]);
    CHECK(*gd == 0.25 * total, "double add %f", *gd);
    CHECK(gll[0] == (unsigned long long)total << 33 && gll[1] == 5, "u64 add/cas");
    CHECK(gi[4] == total, "counter %d", gi[4]);
    /* exch chain: every slot's old value is some earlier slot, each value appears once */
    char *seen = calloc((size_t)total + 1, 1);
    for (int i = 0; i < total; i++) {
        int v = order[i];
        CHECK(v >= -1 && v < total && !seen[v + 1], "exch chain value %d", v);
        seen[v + 1] = 1;
    }
    free(seen);
    dev_free(0, gi); dev_free(0, order); dev_free(0, gu); dev_free(0, gf); dev_free(0, gd); dev_free(0, gll);
}

static void test_diverge(void) {
    enum { T = 200 };
    int *in = dev_alloc(0, T * 4), *out = dev_alloc(0, 2 * T * 4);
    int acc[T];
    for (int t = 0; t < T; t++) {
        in[t] = (int)rnd();
        int a = 0;
        for (int i = 0; i < (in[t] & 15); i++) {
            if (i & 1) a += i * t;
            else a ^= i + t;
            if (a > 100000) break;
        }
        acc[t] = a;
    }
    pbuf p = {{0}, 0};
    pptr(&p, in); pptr(&p, out);
    LAUNCH_OK("diverge", 1, T, 0, &p, 1);
    CHECK(jit_compiled(MOD, "diverge"), "the JIT did not compile diverge (bar.red; TF_EMU_TRACE=1 says why)");
    int cnt = 0;
    for (int t = 0; t < T; t++) cnt += acc[t] & 1;
    for (int t = 0; t < T; t++) {
        int want = acc[(t + 1) % T] + ((t >= 192) ? 1000000 : 0);
        CHECK(out[t] == want, "thread %d: %d want %d", t, out[t], want);
        CHECK(out[T + t] == cnt + 1000 + 10000, "thread %d barrier reductions %d want %d", t, out[T + t], cnt + 11000);
    }
    dev_free(0, in); dev_free(0, out);
}

static void test_localarr(void) {
    enum { T = 100 };
    int *idx = dev_alloc(0, T * 4), *out = dev_alloc(0, T * 4);
    for (int t = 0; t < T; t++) idx[t] = (int)(rnd() % 1000);
    pbuf p = {{0}, 0};
    pptr(&p, idx); pptr(&p, out);
    LAUNCH_OK("localarr", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        int a[24];
        for (int i = 0; i < 24; i++) a[i] = i * t + (i ^ 5);
        for (int i = 0; i < 8; i++) a[(idx[t] + i * 5) % 24] += i;
        int want = a[idx[t] % 24] + a[(idx[t] * 7) % 24];
        CHECK(out[t] == want, "thread %d: %d want %d", t, out[t], want);
    }
    dev_free(0, idx); dev_free(0, out);
}

static void test_globals(void) {
    enum { T = 40 };
    float *out = dev_alloc(0, T * 4);
    uint64_t addr;
    size_t sz;
    CHECK(ptx_module_get_global(MOD, "gcounter", &addr, &sz) == 0 && sz == 4, "gcounter lookup");
    int *gc = (int *)(uintptr_t)addr;
    int before = *gc;
    CHECK(ptx_module_get_global(MOD, "ctab", &addr, &sz) == 0 && sz == 16, "ctab lookup");
    const float *ct = (const float *)(uintptr_t)addr;
    CHECK(ct[0] == 1.5f && ct[3] == 100.0f, "ctab initializer");
    CHECK(ptx_module_get_global(MOD, "nosuch", &addr, &sz) != 0, "missing global");
    pbuf p = {{0}, 0};
    pptr(&p, out);
    LAUNCH_OK("globals", 1, T, 0, &p, 1);
    static const float ctab[4] = {1.5f, -2.0f, 3.25f, 100.0f};
    static const int gtab[3] = {7, 8, 9};
    for (int t = 0; t < T; t++) {
        float x = (float)t * 0.5f, r = 0;
        for (int i = 0; i < 4; i++) r = fmaf(r, x, ctab[(i + t) & 3]);
        float r2 = 0;
        for (int i = 0; i < 4; i++) r2 = r2 * x + ctab[(i + t) & 3];
        float want = r + (float)gtab[t % 3], want2 = r2 + (float)gtab[t % 3];
        CHECK(out[t] == want || out[t] == want2, "thread %d: %f want %f", t, out[t], want);
    }
    CHECK(*gc == before + 2, "gcounter %d", *gc);
    dev_free(0, out);
}

static void test_printf(void) {
    fflush(stdout);
    char path[] = "/tmp/ptx_test_printf_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    int saved = dup(1);
    dup2(fd, 1);
    pbuf p = {{0}, 0};
    pint(&p, 3);
    char log[256];
    int r = launch("printer", 1, 1, 1, 8, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char buf[512] = {0};
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unlink(path);
    CHECK(r == 0, "launch %d %s", r, log);
    CHECK(n > 0 && strcmp(buf, "thread 0 k=3 f=3.75 s=ok c=A x=0xff ll=-5\nthread 1 k=3 f=3.75 s=ok c=B x=0xff ll=-5\n") == 0,
          "printf output: '%s'", buf);
}

static void test_assert(void) {
    pbuf p = {{0}, 0};
    pint(&p, 5);
    char log[512];
    int r = launch("asserter", 2, 1, 1, 32, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 710, "assert -> %d (%s)", r, log);
    CHECK(strstr(log, "threadIdx.x") != NULL, "log names the assertion: %s", log);
    pbuf q = {{0}, 0};
    pint(&q, 999);
    r = launch("asserter", 2, 1, 1, 32, 1, 1, 0, &q, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 0, "no assert -> %d", r);
}

static void test_oob(void) {
    int *buf = dev_alloc(0, 64 * 4);
    pbuf p = {{0}, 0};
    pptr(&p, buf); pint(&p, 1);
    LAUNCH_OK("oob", 1, 64, 0, &p, 1);
    pbuf q = {{0}, 0};
    pptr(&q, buf); pint(&q, 1000);
    char log[512];
    int r = launch("oob", 1, 1, 1, 64, 1, 1, 0, &q, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 700, "oob -> %d (%s)", r, log);
    CHECK(strstr(log, "oob") && strstr(log, "illegal"), "log: %s", log);
    pbuf z = {{0}, 0};
    pptr(&z, NULL); pint(&z, 0);
    r = launch("oob", 1, 1, 1, 1, 1, 1, 0, &z, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 700, "null store -> %d (%s)", r, log);
    dev_free(0, buf);
}

static void test_coop(void) {
    int nb = 6;
    int *buf = dev_alloc(0, 4), *out = dev_alloc(0, (size_t)nb * 4);
    pbuf p = {{0}, 0};
    pptr(&p, buf); pptr(&p, out);
    char log[512];
    int r = launch("coop_sum", (unsigned)nb, 1, 1, 64, 1, 1, 0, &p, 2, 1, log, sizeof(log), NULL);
    CHECK(r == 0, "coop -> %d (%s)", r, log);
    for (int b = 0; b < nb; b++) CHECK(out[b] == nb * (nb + 1) / 2, "block %d saw %d", b, out[b]);
    /* without a cooperative launch grid.sync() traps, as on a GPU */
    r = launch("coop_sum", (unsigned)nb, 1, 1, 64, 1, 1, 0, &p, 2, 0, log, sizeof(log), NULL);
    CHECK(r == 719, "non-coop grid sync -> %d (%s)", r, log);
    dev_free(0, buf); dev_free(0, out);
}

static void test_idx3d(void) {
    unsigned g[3] = {3, 2, 2}, b[3] = {5, 3, 4};
    int total = 3 * 2 * 2 * 5 * 3 * 4;
    int *out = dev_alloc(0, (size_t)total * 4);
    pbuf p = {{0}, 0};
    pptr(&p, out);
    char log[256];
    int r = launch("idx3d", g[0], g[1], g[2], b[0], b[1], b[2], 0, &p, 2, 0, log, sizeof(log), NULL);
    CHECK(r == 0, "launch %d %s", r, log);
    int i = 0;
    for (unsigned bz = 0; bz < g[2]; bz++)
        for (unsigned by = 0; by < g[1]; by++)
            for (unsigned bx = 0; bx < g[0]; bx++)
                for (unsigned tz = 0; tz < b[2]; tz++)
                    for (unsigned ty = 0; ty < b[1]; ty++)
                        for (unsigned tx = 0; tx < b[0]; tx++, i++) {
                            int want = (int)(tx | (ty << 8) | (tz << 16) | (bx << 20) | (by << 24) | (bz << 28));
                            CHECK(out[i] == want, "index %d: %#x want %#x", i, out[i], want);
                        }
    dev_free(0, out);
}

static void test_launch_config_errors(void) {
    char log[256];
    int r = launch("empty", 1, 1, 1, 2048, 1, 1, 0, NULL, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 1, "block too big -> %d", r);
    r = launch("empty", 0, 1, 1, 32, 1, 1, 0, NULL, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 1, "empty grid -> %d", r);
    r = launch("empty", 1, 1, 1, 32, 1, 1, 1 << 20, NULL, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 701, "too much shared -> %d", r);
    r = launch("vadd", 1, 1, 1, 32, 1, 1, 0, NULL, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 1, "missing params -> %d", r);
    uint64_t ic = 0;
    r = launch("empty", 3, 1, 1, 64, 1, 1, 0, NULL, 2, 0, log, sizeof(log), &ic);
    CHECK(r == 0 && ic == 3 * 2, "empty kernel: %d, %llu instructions", r, (unsigned long long)ic);
}

/* Hand-written PTX: semantics nvcc would not emit from defined C, and failure paths. */
static const char *HAND_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry edge(.param .u64 out)\n{\n"
    "  .reg .b32 %r<20>; .reg .b64 %rd<4>; .reg .pred %p<3>;\n"
    "  ld.param.u64 %rd1, [out];\n"
    "  mov.u32 %r1, 7; mov.u32 %r2, 0;\n"
    "  div.u32 %r3, %r1, %r2;\n"          /* x / 0 */
    "  rem.u32 %r4, %r1, %r2;\n"
    "  mov.u32 %r5, 40;\n"
    "  shl.b32 %r6, %r1, %r5;\n"          /* shift >= width clamps to 0 */
    "  mov.u32 %r7, -8;\n"
    "  shr.s32 %r8, %r7, %r5;\n"          /* arithmetic shift clamps to sign fill */
    "  bfe.u32 %r9, %r7, 4, 8;\n"
    "  bfe.s32 %r10, %r7, 2, 3;\n"
    "  bfi.b32 %r11, %r1, %r2, 4, 3;\n"
    "  add.cc.u32 %r12, %r7, %r5;\n addc.u32 %r13, %r2, %r2;\n"
    "  min.s32 %r14, %r7, %r1;\n"
    "  setp.lt.u32 %p1, %r7, %r1;\n selp.b32 %r15, 1, 2, %p1;\n"
    "  lop3.b32 %r16, %r1, %r7, %r5, 0x96;\n"
    "  st.global.v4.u32 [%rd1], {%r3, %r4, %r6, %r8};\n"
    "  st.global.v4.u32 [%rd1+16], {%r9, %r10, %r11, %r12};\n"
    "  st.global.v4.u32 [%rd1+32], {%r13, %r14, %r15, %r16};\n"
    "  ret;\n}\n"
    ".visible .entry bad(.param .u64 out)\n{\n"
    "  .reg .b32 %r<4>; .reg .b64 %rd<2>;\n"
    "  ld.param.u64 %rd1, [out];\n"
    "  mov.u32 %r1, 1;\n"
    "  frobnicate.b32 %r2, %r1;\n"
    "  st.global.u32 [%rd1], %r2;\n"
    "  ret;\n}\n"
    /* the else-block sits after the join point: min-PC order alone would run the shfl with half a warp */
    ".visible .entry latejoin(.param .u64 out)\n{\n"
    "  .reg .b32 %r<8>; .reg .b64 %rd<4>; .reg .pred %p<2>;\n"
    "  ld.param.u64 %rd1, [out];\n"
    "  mov.u32 %r1, %laneid;\n"
    "  setp.lt.u32 %p1, %r1, 16;\n"
    "  @%p1 bra ELSE;\n"
    "  mul.lo.u32 %r2, %r1, 2;\n"
    "JOIN:\n"
    "  mov.u32 %r3, 31; sub.u32 %r4, %r3, %r1;\n"
    "  shfl.sync.idx.b32 %r5, %r2, %r4, 31, -1;\n"
    "  vote.sync.ballot.b32 %r6, %p1, -1;\n"
    "  mul.wide.u32 %rd2, %r1, 8; add.s64 %rd3, %rd1, %rd2;\n"
    "  st.global.v2.u32 [%rd3], {%r5, %r6};\n"
    "  ret;\n"
    "ELSE:\n"
    "  mul.lo.u32 %r2, %r1, 3;\n"
    "  bra JOIN;\n}\n"
    /* cache policies and proxy fences have no effect here but must not fail */
    ".visible .entry hints(.param .u64 out)\n{\n"
    "  .reg .b32 %r<4>; .reg .b64 %rd<4>;\n"
    "  ld.param.u64 %rd1, [out];\n"
    "  createpolicy.fractional.L2::evict_last.b64 %rd2, 1.0;\n"
    "  ld.global.L2::cache_hint.u32 %r1, [%rd1], %rd2;\n"
    "  fence.proxy.async.shared::cta;\n fence.acq_rel.gpu;\n membar.sys;\n"
    "  add.u32 %r1, %r1, 5;\n"
    "  st.global.L2::cache_hint.u32 [%rd1], %r1, %rd2;\n"
    "  ret;\n}\n"
    /* a per-thread .local array indexed past its end */
    ".visible .entry localoob(.param .u32 i)\n{\n"
    "  .local .align 4 .b8 arr[16]; .reg .b32 %r<4>; .reg .b64 %rd<4>;\n"
    "  ld.param.u32 %r1, [i];\n"
    "  mov.u64 %rd1, arr; mul.wide.u32 %rd2, %r1, 4; add.s64 %rd3, %rd1, %rd2;\n"
    "  st.local.u32 [%rd3], %r1;\n"
    "  ret;\n}\n"
    /* .ptr parameters: the .align after .ptr is the pointee's, the u64 still sits at offset 8 */
    ".visible .entry ptrparam(.param .u32 n, .param .u64 .ptr .global .align 1 out)\n{\n"
    "  .reg .b32 %r<2>; .reg .b64 %rd<2>;\n"
    "  ld.param.u32 %r1, [n]; ld.param.u64 %rd1, [out];\n"
    "  st.global.u32 [%rd1], %r1;\n"
    "  ret;\n}\n"
    ".visible .entry sharedoob()\n{\n"
    "  .reg .b32 %r<4>; .shared .align 4 .b8 sm[64];\n"
    "  mov.u32 %r1, sm; mov.u32 %r2, %tid.x; shl.b32 %r2, %r2, 2; add.s32 %r1, %r1, %r2;\n"
    "  st.shared.u32 [%r1], %r2;\n"
    "  ret;\n}\n";

/* Textures and surfaces (ptx_texture.c through tex/tld4/txq/suld/sust): a 4x2 float texture
 * T = {{0, 10, 20, 30}, {40, 50, 60, 70}} behind handles 1 (texture) and 2 (surface); expected values
 * computed by hand from the programming guide's texture-fetching formulas (9-bit linear fractions). */
static const char *TEX_PTX =
    ".version 7.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry texk(.param .u64 t, .param .u64 out, .param .f32 x, .param .f32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .f32 %f<8>;\n"
    " ld.param.u64 %rd1, [t];\n ld.param.u64 %rd2, [out];\n ld.param.f32 %f1, [x];\n ld.param.f32 %f2, [y];\n"
    " tex.2d.v4.f32.f32 {%f3, %f4, %f5, %f6}, [%rd1, {%f1, %f2}];\n"
    " st.global.v4.f32 [%rd2], {%f3, %f4, %f5, %f6};\n ret;\n}\n"
    ".visible .entry gat(.param .u64 t, .param .u64 out, .param .f32 x, .param .f32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .f32 %f<8>;\n"
    " ld.param.u64 %rd1, [t];\n ld.param.u64 %rd2, [out];\n ld.param.f32 %f1, [x];\n ld.param.f32 %f2, [y];\n"
    " tld4.r.2d.v4.f32.f32 {%f3, %f4, %f5, %f6}, [%rd1, {%f1, %f2}];\n"
    " st.global.v4.f32 [%rd2], {%f3, %f4, %f5, %f6};\n ret;\n}\n"
    ".visible .entry sul(.param .u64 s, .param .u64 out, .param .u32 x, .param .u32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .b32 %r<8>;\n"
    " ld.param.u64 %rd1, [s];\n ld.param.u64 %rd2, [out];\n ld.param.u32 %r1, [x];\n ld.param.u32 %r2, [y];\n"
    " suld.b.2d.b32.zero {%r3}, [%rd1, {%r1, %r2}];\n suld.b.2d.b32.clamp {%r4}, [%rd1, {%r1, %r2}];\n"
    " st.global.v2.u32 [%rd2], {%r3, %r4};\n ret;\n}\n"
    ".visible .entry sutrap(.param .u64 s, .param .u64 out, .param .u32 x, .param .u32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .b32 %r<8>;\n"
    " ld.param.u64 %rd1, [s];\n ld.param.u64 %rd2, [out];\n ld.param.u32 %r1, [x];\n ld.param.u32 %r2, [y];\n"
    " suld.b.2d.b32.trap {%r3}, [%rd1, {%r1, %r2}];\n st.global.u32 [%rd2], %r3;\n ret;\n}\n"
    ".visible .entry sst(.param .u64 s, .param .u64 v, .param .u32 x, .param .u32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .b32 %r<8>;\n"
    " ld.param.u64 %rd1, [s];\n ld.param.u32 %r3, [v];\n ld.param.u32 %r1, [x];\n ld.param.u32 %r2, [y];\n"
    " sust.b.2d.b32.zero [%rd1, {%r1, %r2}], {%r3};\n ret;\n}\n"
    ".visible .entry lvl(.param .u64 t, .param .u64 out, .param .f32 x, .param .f32 lod)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .f32 %f<8>;\n"
    " ld.param.u64 %rd1, [t];\n ld.param.u64 %rd2, [out];\n ld.param.f32 %f1, [x];\n ld.param.f32 %f2, [lod];\n"
    " mov.f32 %f7, 0f3E800000;\n"
    " tex.level.2d.v4.f32.f32 {%f3, %f4, %f5, %f6}, [%rd1, {%f1, %f7}], %f2;\n"
    " st.global.v4.f32 [%rd2], {%f3, %f4, %f5, %f6};\n ret;\n}\n"
    ".visible .entry cube(.param .u64 t, .param .u64 out, .param .f32 x, .param .f32 z)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .f32 %f<8>;\n"
    " ld.param.u64 %rd1, [t];\n ld.param.u64 %rd2, [out];\n ld.param.f32 %f1, [x];\n ld.param.f32 %f2, [z];\n"
    " mov.f32 %f7, 0f3E4CCCCD;\n"
    " tex.cube.v4.f32.f32 {%f3, %f4, %f5, %f6}, [%rd1, {%f1, %f7, %f2, %f2}];\n"
    " st.global.v4.f32 [%rd2], {%f3, %f4, %f5, %f6};\n ret;\n}\n"
    ".visible .entry tq(.param .u64 t, .param .u64 out)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .b32 %r<8>;\n"
    " ld.param.u64 %rd1, [t];\n ld.param.u64 %rd2, [out];\n"
    " txq.width.b32 %r1, [%rd1];\n txq.height.b32 %r2, [%rd1];\n st.global.v2.u32 [%rd2], {%r1, %r2};\n ret;\n}\n"
    /* refused forms: a depth-compare operand (CUDA sets no compare function), an op/type pair the ISA does not
     * allow for sured (.and is .b32 only), and sured.p on a float surface (the ISA defines it on integer data) */
    ".visible .entry depthcmp(.param .u64 t, .param .u64 out, .param .f32 x, .param .f32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .f32 %f<8>;\n"
    " ld.param.u64 %rd1, [t];\n ld.param.u64 %rd2, [out];\n ld.param.f32 %f1, [x];\n ld.param.f32 %f2, [y];\n"
    " tex.2d.v4.f32.f32 {%f3, %f4, %f5, %f6}, [%rd1, {%f1, %f2}], {0, 0}, %f1;\n"
    " st.global.v4.f32 [%rd2], {%f3, %f4, %f5, %f6};\n ret;\n}\n"
    ".visible .entry suredbad(.param .u64 s, .param .u64 out, .param .u32 x, .param .u32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .b32 %r<8>;\n"
    " ld.param.u64 %rd1, [s];\n ld.param.u32 %r1, [x];\n ld.param.u32 %r2, [y];\n"
    " sured.b.and.2d.u32.trap [%rd1, {%r1, %r2}], %r1;\n ret;\n}\n"
    ".visible .entry suredp(.param .u64 s, .param .u64 out, .param .u32 x, .param .u32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .b32 %r<8>;\n"
    " ld.param.u64 %rd1, [s];\n ld.param.u32 %r1, [x];\n ld.param.u32 %r2, [y];\n"
    " sured.p.add.2d.b32.trap [%rd1, {%r1, %r2}], %r1;\n ret;\n}\n"
    ".visible .entry suredb(.param .u64 s, .param .u64 out, .param .u32 x, .param .u32 y)\n{\n"
    " .reg .u64 %rd<4>;\n .reg .b32 %r<8>;\n"
    " ld.param.u64 %rd1, [s];\n ld.param.u32 %r1, [x];\n ld.param.u32 %r2, [y];\n mov.u32 %r3, 0x00400000;\n"
    " sured.b.or.2d.b32.zero [%rd1, {%r1, %r2}], %r3;\n ret;\n}\n";

static ptx_texdesc TEXD[2];
static const ptx_texdesc *tex_resolve(uint64_t h, int surf) {
    if (h == 1 && !surf) return &TEXD[0];
    if (h == 2 && surf) return &TEXD[1];
    return NULL;
}

static int tex_run(ptx_module *m, const char *k, uint64_t h, void *out, uint32_t a, uint32_t b, char *log) {
    pbuf p = {{0}, 0};
    uint64_t hv = h;
    pput(&p, &hv, 8);
    pptr(&p, out);
    pput(&p, &a, 4);
    pput(&p, &b, 4);
    return launch_in(m, k, 1, 1, 1, 1, 1, 1, 0, &p, 1, 0, log, 256, NULL);
}

/* One tex.2d at (x, y) under the given sampler; returns component 0 (NAN on a launch failure). */
static float tex_at(ptx_module *m, float *out, int filter, int addr, int normalized, float border, float x, float y) {
    char log[256];
    TEXD[0].filter = filter;
    TEXD[0].addr[0] = TEXD[0].addr[1] = addr;
    TEXD[0].normalized = normalized;
    for (int c = 0; c < 4; c++) TEXD[0].border[c] = border;
    if (tex_run(m, "texk", 1, out, bitsf(x), bitsf(y), log)) return NAN;
    return out[0];
}

static void test_textures(void) {
    static float T[8] = {0, 10, 20, 30, 40, 50, 60, 70};
    memset(TEXD, 0, sizeof(TEXD));
    for (int k = 0; k < 2; k++) {
        TEXD[k].fmt = PTXTF_F32, TEXD[k].nch = 1, TEXD[k].esize = 4, TEXD[k].nlevels = 1;
        TEXD[k].lv[0] = (ptx_texlevel){(uint8_t *)T, 4, 2, 1, 16, 32};
    }
    TEXD[1].is_surface = 1;
    const ptx_texdesc *(*saved)(uint64_t, int) = ptx_tex_resolve;
    ptx_tex_resolve = tex_resolve;
    int err = 0;
    char log[256];
    ptx_module *m = ptx_module_load(TEX_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    float *out = dev_alloc(0, 16);
    /* linear at (1.8, 0.5): xB = 1.3, i = 1, a = frac 0.3 held as 77/256 -> 10 + 10 * 77/256 */
    float lin = tex_at(m, out, PTXTF_LINEAR, PTXTA_CLAMP, 0, 0, 1.8f, 0.5f);
    /* bilinear at (2, 1): the mean of T[0][1], T[0][2], T[1][1], T[1][2] */
    float bil = tex_at(m, out, PTXTF_LINEAR, PTXTA_CLAMP, 0, 0, 2.0f, 1.0f);
    float bord = tex_at(m, out, PTXTF_POINT, PTXTA_BORDER, 0, 5.0f, -0.5f, 0.5f);
    float alpha = out[3]; /* border colour in every component */
    float clampd = tex_at(m, out, PTXTF_POINT, PTXTA_CLAMP, 0, 0, 9.0f, -3.0f); /* -> T[0][3] */
    float wrap = tex_at(m, out, PTXTF_POINT, PTXTA_WRAP, 1, 0, 1.25f, 0.75f); /* u 5 -> 1, v 1.5 -> 1: T[1][1] */
    float mirror = tex_at(m, out, PTXTF_POINT, PTXTA_MIRROR, 1, 0, 1.1f, 0.25f); /* u 4.4 -> 4 -> 3: T[0][3] */
    float wrap_unnorm = tex_at(m, out, PTXTF_POINT, PTXTA_WRAP, 0, 0, 5.5f, 0.5f); /* wrap is clamp unnormalized */
    float one_ch_alpha = (tex_at(m, out, PTXTF_POINT, PTXTA_CLAMP, 0, 0, 0.5f, 0.5f), out[3]);
    TEXD[0].filter = PTXTF_POINT, TEXD[0].normalized = 0, TEXD[0].addr[0] = TEXD[0].addr[1] = PTXTA_CLAMP;
    int rg = tex_run(m, "gat", 1, out, bitsf(2.0f), bitsf(1.0f), log);
    float g[4] = {out[0], out[1], out[2], out[3]};
    uint32_t *u = (uint32_t *)out;
    int rs = tex_run(m, "sul", 2, out, 16, 1, log); /* x = 16 bytes: one past the row */
    uint32_t zero = u[0], clampv = u[1];
    int rin = tex_run(m, "sul", 2, out, 8, 1, log);
    uint32_t in0 = u[0];
    int rt = tex_run(m, "sutrap", 2, out, 0, 2, log);
    char traplog[256];
    memcpy(traplog, log, sizeof(traplog));
    int rw = tex_run(m, "sst", 2, (void *)(uintptr_t)bitsf(99.0f), 4, 0, log); /* "out" slot carries v */
    float wrote = T[1];
    int rwz = tex_run(m, "sst", 2, (void *)(uintptr_t)bitsf(1.0f), 4, 7, log); /* .zero: dropped */
    int rq = tex_run(m, "tq", 1, out, 0, 0, log);
    uint32_t qw = u[0], qh = u[1];
    /* mipmaps: level 1 is 2x1 {100, 200}; tex.level at normalized (0.75, 0.25) reads T[0][3] = 30 on level 0
     * and 200 on level 1; point mip filtering rounds the lod, linear blends the two levels */
    static float L1[2] = {100, 200};
    ptx_texdesc saved0 = TEXD[0];
    TEXD[0].nlevels = 2, TEXD[0].lv[1] = (ptx_texlevel){(uint8_t *)L1, 2, 1, 1, 8, 8};
    TEXD[0].normalized = 1, TEXD[0].filter = PTXTF_POINT, TEXD[0].max_lod = 1.0f;
    float mip[4];
    int rm = 0;
    const float lods[4] = {1.0f, 0.6f, 0.5f, 0.5f};
    for (int k = 0; k < 4; k++) {
        TEXD[0].mip_filter = k == 2 ? PTXTF_LINEAR : PTXTF_POINT;
        if (k == 3) TEXD[0].max_lod = 0.0f; /* maxMipmapLevelClamp 0 keeps level 0 */
        rm |= tex_run(m, "lvl", 1, out, bitsf(0.75f), bitsf(lods[k]), log);
        mip[k] = out[0];
    }
    /* cubemap of 1x1 faces holding 10 * face: -x is face 1, -z face 5 */
    static float F[6] = {0, 10, 20, 30, 40, 50};
    TEXD[0] = saved0;
    TEXD[0].cubemap = 1, TEXD[0].normalized = 1, TEXD[0].lv[0] = (ptx_texlevel){(uint8_t *)F, 1, 1, 6, 4, 4};
    int rc1 = tex_run(m, "cube", 1, out, bitsf(-1.0f), bitsf(0.1f), log);
    float negx = out[0];
    int rc2 = tex_run(m, "cube", 1, out, bitsf(0.1f), bitsf(-3.0f), log);
    float negz = out[0];
    TEXD[0] = saved0;
    char dlog[256], blog[256], plog[256];
    int rdepth = tex_run(m, "depthcmp", 1, out, 0, 0, dlog);
    int rsbad = tex_run(m, "suredbad", 2, out, 0, 0, blog);
    int rsp = tex_run(m, "suredp", 2, out, 0, 0, plog); /* TEXD[1] is a float surface */
    /* sured.b.or.b32 of 0x00400000 into T[0][2] (8 bytes in, row 0): 20.0f = 0x41A00000 -> 0x41E00000 = 28.0f;
     * .zero past the row drops */
    int rsb = tex_run(m, "suredb", 2, out, 8, 0, log);
    float ored = T[2];
    int rsbz = tex_run(m, "suredb", 2, out, 16, 0, log);
    int rbad = tex_run(m, "texk", 3, out, 0, 0, log);
    int rkind = tex_run(m, "sul", 1, out, 0, 0, log); /* a texture handle is no surface */
    /* tex / tld4 are translated (ptx_jit_tex): these ran as compiled code, the bogus handle's fault included */
    const char *notjit = !jit_compiled(m, "texk") ? "texk" : !jit_compiled(m, "gat") ? "gat" : !jit_compiled(m, "lvl") ? "lvl"
                         : !jit_compiled(m, "cube") ? "cube" : NULL;
    ptx_module_free(m);
    dev_free(0, out);
    ptx_tex_resolve = saved;
    CHECK(lin == 10.0f + 10.0f * 77.0f / 256.0f, "linear with a 9-bit fraction: %.9g want %.9g", lin, 10.0f + 770.0f / 256.0f);
    CHECK(bil == 35.0f, "bilinear %g want 35", bil);
    CHECK(bord == 5.0f && alpha == 5.0f, "border %g/%g want 5", bord, alpha);
    CHECK(clampd == 30.0f, "clamp %g want 30", clampd);
    CHECK(wrap == 50.0f, "wrap %g want 50", wrap);
    CHECK(mirror == 30.0f, "mirror %g want 30", mirror);
    CHECK(wrap_unnorm == 30.0f, "wrap with unnormalized coordinates clamps: %g want 30", wrap_unnorm);
    CHECK(one_ch_alpha == 1.0f, "a one-channel texture reads alpha 1, got %g", one_ch_alpha);
    CHECK(rg == 0 && g[0] == 50 && g[1] == 60 && g[2] == 20 && g[3] == 10, "tld4 -> %d {%g %g %g %g} want {50 60 20 10}",
          rg, g[0], g[1], g[2], g[3]);
    CHECK(rs == 0 && zero == 0 && fbits(clampv) == 70.0f, "suld past the row: zero %#x, clamp %g want 0, 70", zero,
          fbits(clampv));
    CHECK(rin == 0 && fbits(in0) == 60.0f, "suld (8 bytes, 1) %g want 60", fbits(in0));
    CHECK(rt == 719 && strstr(traplog, "trap") != NULL, "suld.trap out of range -> %d (%s), want 719", rt, traplog);
    CHECK(rw == 0 && wrote == 99.0f && rwz == 0, "sust -> %d, T[1] = %g want 99; .zero past the end -> %d", rw, wrote, rwz);
    CHECK(rq == 0 && qw == 4 && qh == 2, "txq width/height %u/%u want 4/2", qw, qh);
    CHECK(rm == 0 && mip[0] == 200.0f && mip[1] == 200.0f && mip[2] == 115.0f && mip[3] == 30.0f,
          "tex.level -> %d: lod 1 %g, 0.6 point %g, 0.5 linear %g, clamped to 0 %g; want 200 200 115 30", rm, mip[0],
          mip[1], mip[2], mip[3]);
    CHECK(rc1 == 0 && rc2 == 0 && negx == 10.0f && negz == 50.0f, "cubemap -x %g want 10, -z %g want 50", negx, negz);
    CHECK(rdepth == 715 && strstr(dlog, "depth-compare"), "tex with a depth-compare operand -> %d (%s), want 715", rdepth, dlog);
    CHECK(rsbad == 715 && strstr(blog, "sured"), "sured.b.and.u32 -> %d (%s), want 715", rsbad, blog);
    CHECK(rsp == 715 && strstr(plog, "sured.p"), "sured.p on a float surface -> %d (%s), want 715", rsp, plog);
    CHECK(rsb == 0 && rsbz == 0 && ored == 28.0f, "sured.b.or -> %d/%d, T[0][2] = %g want 28", rsb, rsbz, ored);
    CHECK(rbad == 700 && rkind == 700, "bogus texture handle -> %d, texture as surface -> %d, want 700", rbad, rkind);
    CHECK(!notjit, "the JIT did not compile %s (TF_EMU_TRACE=1 says why)", notjit);
}

static void test_hand_ptx(void) {
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(HAND_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    unsigned *out = dev_alloc(0, 12 * 4);
    pbuf p = {{0}, 0};
    pptr(&p, out);
    int r = launch_in(m, "edge", 1, 1, 1, 1, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    if (r) { ptx_module_free(m); dev_free(0, out); }
    CHECK(r == 0, "edge launch %d %s", r, log);
    unsigned want[12] = {0xffffffffu, 7, 0, 0xffffffffu, 0xff, 0xfffffffeu, 0x70, 32, 1, (unsigned)-8, 2, 7u ^ 0xfffffff8u ^ 40u};
    for (int i = 0; i < 12; i++)
        if (out[i] != want[i]) { ptx_module_free(m); dev_free(0, out); CHECK(0, "edge result %d: %#x want %#x", i, out[i], want[i]); }
    unsigned *lj = dev_alloc(0, 64 * 4);
    pbuf q = {{0}, 0};
    pptr(&q, lj);
    r = launch_in(m, "latejoin", 1, 1, 1, 32, 1, 1, 0, &q, 1, 0, log, sizeof(log), NULL);
    int lj_bad = r ? -2 : -1;
    for (int l = 0; l < 32 && lj_bad == -1; l++) {
        unsigned j = 31u - (unsigned)l;
        if (lj[2 * l] != (j < 16 ? j * 3 : j * 2) || lj[2 * l + 1] != 0xffffu) lj_bad = l;
    }
    dev_free(0, lj);
    out[0] = 37;
    r = launch_in(m, "hints", 1, 1, 1, 1, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    int hints_ok = r == 0 && out[0] == 42;
    pbuf li = {{0}, 0};
    pint(&li, 3);
    int rl_in = launch_in(m, "localoob", 1, 1, 1, 1, 1, 1, 0, &li, 1, 0, log, sizeof(log), NULL);
    pbuf lo = {{0}, 0};
    pint(&lo, 4);
    int rl_out = launch_in(m, "localoob", 1, 1, 1, 1, 1, 1, 0, &lo, 1, 0, log, sizeof(log), NULL);
    r = launch_in(m, "bad", 1, 1, 1, 1, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    int bad_ok = r == 715 && strstr(log, "frobnicate") != NULL;
    int r2 = launch_in(m, "sharedoob", 1, 1, 1, 17, 1, 1, 0, NULL, 1, 0, log, sizeof(log), NULL);
    int r3 = launch_in(m, "sharedoob", 1, 1, 1, 16, 1, 1, 0, NULL, 1, 0, log, sizeof(log), NULL);
    size_t ptr_off = 0, ptr_sz = 0;
    ptx_kernel_param_info(ptx_module_get_kernel(m, "ptrparam"), 1, &ptr_off, &ptr_sz);
    ptx_module_free(m);
    dev_free(0, out);
    CHECK(bad_ok, "unsupported instruction -> %d (%s)", r, log);
    CHECK(ptr_off == 8, "a .ptr .align 1 u64 parameter after a u32 is at offset %zu, want 8", ptr_off);
    CHECK(hints_ok, "cache hints / fences failed");
    CHECK(rl_in == 0 && rl_out == 700, "local array in bounds -> %d, past its end -> %d", rl_in, rl_out);
    CHECK(lj_bad == -1, "late join: warp shuffle/vote ran before the warp reconverged (lane %d)", lj_bad);
    CHECK(r2 == 700 && r3 == 0, "shared oob -> %d, in bounds -> %d", r2, r3);
    /* malformed text fails the load cleanly */
    m = ptx_module_load(".version 8.0\n.target sm_80\n.entry x( {\n", 0, &ENV, &err, log, sizeof(log));
    CHECK(!m && err == 218, "malformed PTX -> %p %d", (void *)m, err);
}

/* Float min/max and testp on the values where implementations differ, against the PTX ISA: a NaN input gives the
 * other input, two NaNs the canonical NaN (all ones, sign clear), -0.0 is below +0.0 whatever the operand order
 * (min.f32 inline in the JIT, .ftz, f64 and f16 through the interpreter's code); testp's six tests, both zeros
 * counting as normal numbers. Kernel fminmax (f32 min/max only) must compile on the JIT; fspecial may run there
 * through ptx_jit_alu. */
static const char *FSPECIAL_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry fminmax(.param .u64 o, .param .u64 a, .param .u64 b)\n{\n"
    " .reg .b32 %r<8>; .reg .f32 %f<6>; .reg .b64 %rd<10>;\n"
    " ld.param.u64 %rd1, [o]; ld.param.u64 %rd2, [a]; ld.param.u64 %rd3, [b];\n"
    " mov.u32 %r1, %tid.x; mul.wide.u32 %rd4, %r1, 4; add.s64 %rd5, %rd2, %rd4; add.s64 %rd6, %rd3, %rd4;\n"
    " ld.global.f32 %f1, [%rd5]; ld.global.f32 %f2, [%rd6];\n"
    " min.f32 %f3, %f1, %f2; max.f32 %f4, %f1, %f2;\n"
    " mul.wide.u32 %rd7, %r1, 8; add.s64 %rd8, %rd1, %rd7;\n"
    " st.global.f32 [%rd8], %f3; st.global.f32 [%rd8+4], %f4;\n"
    " ret;\n}\n"
    ".visible .entry fspecial(.param .u64 o, .param .u64 a, .param .u64 b, .param .u64 a64, .param .u64 b64,"
    " .param .u64 a16, .param .u64 b16)\n{\n"
    " .reg .b32 %r<20>; .reg .f32 %f<8>; .reg .f64 %fd<6>; .reg .b16 %h<6>; .reg .b64 %rd<20>; .reg .pred %p<8>;\n"
    " ld.param.u64 %rd1, [o]; ld.param.u64 %rd2, [a]; ld.param.u64 %rd3, [b]; ld.param.u64 %rd9, [a64];\n"
    " ld.param.u64 %rd10, [b64]; ld.param.u64 %rd11, [a16]; ld.param.u64 %rd12, [b16];\n"
    " mov.u32 %r1, %tid.x; mul.wide.u32 %rd4, %r1, 4; add.s64 %rd5, %rd2, %rd4; add.s64 %rd6, %rd3, %rd4;\n"
    " ld.global.f32 %f1, [%rd5]; ld.global.f32 %f2, [%rd6];\n"
    " mul.wide.u32 %rd13, %r1, 8; add.s64 %rd14, %rd9, %rd13; add.s64 %rd15, %rd10, %rd13;\n"
    " ld.global.f64 %fd1, [%rd14]; ld.global.f64 %fd2, [%rd15];\n"
    " mul.wide.u32 %rd16, %r1, 2; add.s64 %rd17, %rd11, %rd16; add.s64 %rd18, %rd12, %rd16;\n"
    " ld.global.b16 %h1, [%rd17]; ld.global.b16 %h2, [%rd18];\n"
    " mul.wide.u32 %rd7, %r1, 64; add.s64 %rd8, %rd1, %rd7;\n"
    " min.ftz.f32 %f3, %f1, %f2; max.ftz.f32 %f4, %f1, %f2; st.global.f32 [%rd8], %f3; st.global.f32 [%rd8+4], %f4;\n"
    " min.f64 %fd3, %fd1, %fd2; max.f64 %fd4, %fd1, %fd2; st.global.f64 [%rd8+8], %fd3; st.global.f64 [%rd8+16], %fd4;\n"
    " min.f16 %h3, %h1, %h2; max.f16 %h4, %h1, %h2; st.global.b16 [%rd8+24], %h3; st.global.b16 [%rd8+26], %h4;\n"
    " testp.finite.f32 %p1, %f1; testp.infinite.f32 %p2, %f1; testp.number.f32 %p3, %f1;\n"
    " testp.notanumber.f32 %p4, %f1; testp.normal.f32 %p5, %f1; testp.subnormal.f32 %p6, %f1;\n"
    " selp.u32 %r2, 1, 0, %p1; selp.u32 %r3, 2, 0, %p2; selp.u32 %r4, 4, 0, %p3; selp.u32 %r5, 8, 0, %p4;\n"
    " selp.u32 %r6, 16, 0, %p5; selp.u32 %r7, 32, 0, %p6;\n"
    " or.b32 %r2, %r2, %r3; or.b32 %r2, %r2, %r4; or.b32 %r2, %r2, %r5; or.b32 %r2, %r2, %r6; or.b32 %r2, %r2, %r7;\n"
    " st.global.u32 [%rd8+28], %r2;\n"
    " testp.finite.f64 %p1, %fd1; testp.infinite.f64 %p2, %fd1; testp.number.f64 %p3, %fd1;\n"
    " testp.notanumber.f64 %p4, %fd1; testp.normal.f64 %p5, %fd1; testp.subnormal.f64 %p6, %fd1;\n"
    " selp.u32 %r2, 1, 0, %p1; selp.u32 %r3, 2, 0, %p2; selp.u32 %r4, 4, 0, %p3; selp.u32 %r5, 8, 0, %p4;\n"
    " selp.u32 %r6, 16, 0, %p5; selp.u32 %r7, 32, 0, %p6;\n"
    " or.b32 %r2, %r2, %r3; or.b32 %r2, %r2, %r4; or.b32 %r2, %r2, %r5; or.b32 %r2, %r2, %r6; or.b32 %r2, %r2, %r7;\n"
    " st.global.u32 [%rd8+32], %r2;\n"
    " ret;\n}\n";

/* The ISA's answers, from the bits (not from libm). */
static uint64_t isa_min_max(int mx, uint64_t a, uint64_t b, int bits) {
    const int mbits = bits == 16 ? 10 : bits == 32 ? 23 : 52;
    const uint64_t sign = 1ull << (bits - 1), mag = sign - 1, inf = mag & ~((1ull << mbits) - 1);
    const int na = (a & mag) > inf, nb = (b & mag) > inf;
    if (na && nb) return mag; /* canonical NaN */
    if (na) return b;
    if (nb) return a;
    if (!(a & mag) && !(b & mag)) return mx ? (a & b) : (a | b); /* two zeros */
    /* order of sign-magnitude values: flip negatives into a two's-complement order */
    const int64_t ka = (a & sign) ? -(int64_t)(a & mag) : (int64_t)a, kb = (b & sign) ? -(int64_t)(b & mag) : (int64_t)b;
    return (ka < kb) != mx ? a : b;
}
static unsigned isa_testp(uint64_t a, int bits) {
    const int mbits = bits == 32 ? 23 : 52;
    const uint64_t mag = (1ull << (bits - 1)) - 1, inf = mag & ~((1ull << mbits) - 1);
    const uint64_t m = a & mag;
    const int nan = m > inf, isinf_ = m == inf, sub = m && m < (1ull << mbits);
    return (!nan && !isinf_ ? 1u : 0u) | (isinf_ ? 2u : 0u) | (!nan ? 4u : 0u) | (nan ? 8u : 0u) |
           (!nan && !isinf_ && !sub ? 16u : 0u) | (sub ? 32u : 0u);
}
static uint32_t ftz_bits32(uint32_t a) { return (a & 0x7f800000u) == 0 ? a & 0x80000000u : a; }

static void test_fspecial(void) {
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(FSPECIAL_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    /* pairs: both zeros in every order, NaNs (quiet, signalling, negative), infinities, subnormals, equal values */
    static const uint32_t A[32] = {0x80000000u, 0x00000000u, 0x80000000u, 0x00000000u, 0x7fc00000u, 0x3f800000u,
                                   0x7fc00001u, 0xffc00000u, 0x3f800000u, 0x40000000u, 0xff800000u, 0x7f800000u,
                                   0x00000001u, 0x80000001u, 0x7f7fffffu, 0xbf800000u, 0x40400000u, 0x7f800001u,
                                   0x00000000u, 0x807fffffu, 0xc0000000u, 0x80000000u, 0x00800000u, 0x7fffffffu};
    static const uint32_t B[32] = {0x00000000u, 0x80000000u, 0x80000000u, 0x00000000u, 0x3f800000u, 0x7fc00000u,
                                   0xffc00002u, 0x00000000u, 0x40000000u, 0x3f800000u, 0x7f800000u, 0x7fc00000u,
                                   0x80000000u, 0x00000000u, 0x7f800000u, 0x80000000u, 0x40400000u, 0x00000000u,
                                   0x7f800001u, 0x00000000u, 0x80000000u, 0xc0000000u, 0x80000000u, 0x7fc00000u};
    uint32_t a[32], b[32];
    uint64_t a64[32], b64[32];
    uint16_t a16[32], b16[32];
    static const uint16_t H[12][2] = {{0x8000, 0x0000}, {0x0000, 0x8000}, {0x7e00, 0x3c00}, {0x3c00, 0x7e00},
                                      {0x7e01, 0xfe00}, {0x3c00, 0x4000}, {0xc000, 0x8000}, {0x0001, 0x8000},
                                      {0x7c00, 0xfc00}, {0x8000, 0x8000}, {0x7d00, 0x0000}, {0x4000, 0x4000}};
    for (int l = 0; l < 32; l++) {
        a[l] = l < 24 ? A[l] : rnd();
        b[l] = l < 24 ? B[l] : rnd();
        /* f64: the same values widened, bit for bit in sign/exponent class, plus f64 subnormals */
        double da, db;
        da = (double)fbits(a[l]);
        db = (double)fbits(b[l]);
        memcpy(&a64[l], &da, 8);
        memcpy(&b64[l], &db, 8);
        if ((a[l] & 0x7f800000u) == 0x7f800000u && (a[l] & 0x7fffffu)) a64[l] = ((uint64_t)(a[l] & 0x80000000u) << 32) | 0x7ff8000000000000ull | l;
        if ((b[l] & 0x7f800000u) == 0x7f800000u && (b[l] & 0x7fffffu)) b64[l] = ((uint64_t)(b[l] & 0x80000000u) << 32) | 0x7ff8000000000000ull | (l + 64);
        if (l == 12) a64[l] = 1; /* smallest f64 subnormal against -0 */
        if (l == 13) a64[l] = 0x800fffffffffffffull;
        a16[l] = H[l % 12][0];
        b16[l] = H[l % 12][1];
    }
    uint32_t *da = dev_alloc(0, sizeof(a)), *db = dev_alloc(0, sizeof(b));
    uint64_t *da64 = dev_alloc(0, sizeof(a64)), *db64 = dev_alloc(0, sizeof(b64));
    uint16_t *da16 = dev_alloc(0, sizeof(a16)), *db16 = dev_alloc(0, sizeof(b16));
    uint32_t *o1 = dev_alloc(0, 32 * 8);
    uint8_t *o2 = dev_alloc(0, 32 * 64);
    memcpy(da, a, sizeof(a));
    memcpy(db, b, sizeof(b));
    memcpy(da64, a64, sizeof(a64));
    memcpy(db64, b64, sizeof(b64));
    memcpy(da16, a16, sizeof(a16));
    memcpy(db16, b16, sizeof(b16));
    pbuf p = {{0}, 0};
    pptr(&p, o1); pptr(&p, da); pptr(&p, db);
    int r1 = launch_in(m, "fminmax", 1, 1, 1, 32, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    pbuf q = {{0}, 0};
    pptr(&q, o2); pptr(&q, da); pptr(&q, db); pptr(&q, da64); pptr(&q, db64); pptr(&q, da16); pptr(&q, db16);
    int r2 = r1 ? r1 : launch_in(m, "fspecial", 1, 1, 1, 32, 1, 1, 0, &q, 1, 0, log, sizeof(log), NULL);
    int jit_ok = jit_compiled(m, "fminmax");
    char bad[256] = "";
    for (int l = 0; l < 32 && !r2 && !bad[0]; l++) {
        const uint8_t *o = o2 + 64 * l;
        uint32_t f32[4], t32, t64;
        uint64_t f64[2];
        uint16_t f16[2];
        memcpy(f32, o, 8);
        memcpy(f64, o + 8, 16);
        memcpy(f16, o + 24, 4);
        memcpy(&t32, o + 28, 4);
        memcpy(&t64, o + 32, 4);
        const uint32_t fa = ftz_bits32(a[l]), fb = ftz_bits32(b[l]);
        if (o1[2 * l] != isa_min_max(0, a[l], b[l], 32) || o1[2 * l + 1] != isa_min_max(1, a[l], b[l], 32))
            snprintf(bad, sizeof(bad), "lane %d: min/max.f32(%#x, %#x) = %#x/%#x, want %#x/%#x", l, a[l], b[l], o1[2 * l],
                     o1[2 * l + 1], (unsigned)isa_min_max(0, a[l], b[l], 32), (unsigned)isa_min_max(1, a[l], b[l], 32));
        else if (f32[0] != ftz_bits32((uint32_t)isa_min_max(0, fa, fb, 32)) || f32[1] != ftz_bits32((uint32_t)isa_min_max(1, fa, fb, 32)))
            snprintf(bad, sizeof(bad), "lane %d: min/max.ftz.f32(%#x, %#x) = %#x/%#x", l, a[l], b[l], f32[0], f32[1]);
        else if (f64[0] != isa_min_max(0, a64[l], b64[l], 64) || f64[1] != isa_min_max(1, a64[l], b64[l], 64))
            snprintf(bad, sizeof(bad), "lane %d: min/max.f64(%#llx, %#llx) = %#llx/%#llx", l, (unsigned long long)a64[l],
                     (unsigned long long)b64[l], (unsigned long long)f64[0], (unsigned long long)f64[1]);
        else if (f16[0] != isa_min_max(0, a16[l], b16[l], 16) || f16[1] != isa_min_max(1, a16[l], b16[l], 16))
            snprintf(bad, sizeof(bad), "lane %d: min/max.f16(%#x, %#x) = %#x/%#x", l, a16[l], b16[l], f16[0], f16[1]);
        else if (t32 != isa_testp(a[l], 32) || t64 != isa_testp(a64[l], 64))
            snprintf(bad, sizeof(bad), "lane %d: testp f32 %#x -> %#x want %#x, f64 %#llx -> %#x want %#x", l, a[l], t32,
                     isa_testp(a[l], 32), (unsigned long long)a64[l], t64, isa_testp(a64[l], 64));
    }
    ptx_module_free(m);
    dev_free(0, da); dev_free(0, db); dev_free(0, da64); dev_free(0, db64); dev_free(0, da16); dev_free(0, db16);
    dev_free(0, o1); dev_free(0, o2);
    CHECK(r1 == 0 && r2 == 0, "launch fminmax -> %d, fspecial -> %d (%s)", r1, r2, log);
    CHECK(!bad[0], "%s", bad);
    CHECK(jit_ok, "the JIT did not compile fminmax (TF_EMU_TRACE=1 says why)");
}

/* Loads and stores whose lanes form the shapes the executor checks once per warp (one address, consecutive
 * elements, any order, two allocations in one warp, per half-warp one address or consecutive elements) give each
 * lane its own element, and a lane outside the allocation or the shared array is still the one the fault names. */
static const char *SHAPES_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry shapes(.param .u64 o, .param .u64 a, .param .u64 b, .param .u32 mode)\n{\n"
    " .reg .b32 %r<12>; .reg .b64 %rd<10>; .reg .pred %p<3>;\n"
    " .shared .align 4 .b32 sm[64];\n"
    " ld.param.u64 %rd1, [o]; ld.param.u64 %rd2, [a]; ld.param.u64 %rd3, [b]; ld.param.u32 %r1, [mode];\n"
    " mov.u32 %r2, %tid.x; mov.u32 %r3, %r2;\n"
    " setp.eq.u32 %p1, %r1, 1; selp.b32 %r3, 0, %r3, %p1;\n"
    " setp.eq.u32 %p1, %r1, 2; sub.u32 %r4, 31, %r2; selp.b32 %r3, %r4, %r3, %p1;\n"
    " setp.eq.u32 %p1, %r1, 4; add.u32 %r4, %r2, 1; selp.b32 %r3, %r4, %r3, %p1;\n"
    " setp.eq.u32 %p1, %r1, 3; setp.ge.u32 %p2, %r2, 16; and.pred %p1, %p1, %p2; selp.b64 %rd4, %rd3, %rd2, %p1;\n"
    " setp.eq.u32 %p1, %r1, 7; and.b32 %r4, %r2, 15; selp.b32 %r3, %r4, %r3, %p1;\n"
    " setp.eq.u32 %p1, %r1, 8; shr.u32 %r4, %r2, 4; mul.lo.u32 %r4, %r4, 5; selp.b32 %r3, %r4, %r3, %p1;\n"
    " mul.wide.u32 %rd5, %r3, 4; add.s64 %rd6, %rd4, %rd5; ld.global.u32 %r5, [%rd6];\n"
    " shl.b32 %r6, %r2, 2; mov.u32 %r7, sm; add.u32 %r8, %r7, %r6; mul.lo.u32 %r9, %r2, 3; st.shared.u32 [%r8], %r9;\n"
    " bar.sync 0;\n"
    " mov.u32 %r10, %r3;\n"
    " setp.eq.u32 %p1, %r1, 5; add.u32 %r4, %r2, 33; selp.b32 %r10, %r4, %r10, %p1;\n"
    " setp.eq.u32 %p1, %r1, 6; sub.u32 %r4, 64, %r2; selp.b32 %r10, %r4, %r10, %p1;\n"
    " setp.eq.u32 %p1, %r1, 9; and.b32 %r4, %r2, 15; setp.ge.u32 %p2, %r2, 16; selp.b32 %r11, 49, 0, %p2;\n"
    " add.u32 %r4, %r4, %r11; selp.b32 %r10, %r4, %r10, %p1;\n"
    " shl.b32 %r6, %r10, 2; add.u32 %r8, %r7, %r6; ld.shared.u32 %r9, [%r8];\n"
    " add.u32 %r5, %r5, %r9;\n"
    " mul.wide.u32 %rd7, %r2, 4; add.s64 %rd8, %rd1, %rd7; st.global.u32 [%rd8], %r5;\n"
    " ret;\n}\n";

static void test_warp_shapes(void) {
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(SHAPES_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    unsigned *o = dev_alloc(0, 32 * 4), *a = dev_alloc(0, 32 * 4), *b = dev_alloc(0, 32 * 4);
    for (unsigned i = 0; i < 32; i++) { a[i] = 1000 + i; b[i] = 5000 + i; }
    int bad_mode = -1, bad_lane = -1, rc[10] = {0};
    char logs[10][512];
    for (int mode = 0; mode < 10; mode++) {
        pbuf p = {{0}, 0};
        pptr(&p, o); pptr(&p, a); pptr(&p, b); pint(&p, mode);
        memset(o, 0, 32 * 4);
        rc[mode] = launch_in(m, "shapes", 1, 1, 1, 32, 1, 1, 0, &p, 1, 0, logs[mode], sizeof(logs[mode]), NULL);
        if (mode > 3 && mode != 7 && mode != 8) continue;
        for (unsigned l = 0; l < 32 && bad_mode < 0; l++) {
            unsigned idx = mode == 1 ? 0 : mode == 2 ? 31 - l : mode == 7 ? (l & 15) : mode == 8 ? (l >> 4) * 5 : l;
            unsigned want = (mode == 3 && l >= 16 ? b[idx] : a[idx]) + 3 * idx;
            if (rc[mode] || o[l] != want) { bad_mode = mode; bad_lane = (int)l; }
        }
    }
    ptx_module_free(m);
    dev_free(0, o); dev_free(0, a); dev_free(0, b);
    CHECK(bad_mode < 0, "mode %d lane %d: wrong value (rc %d %s)", bad_mode, bad_lane, bad_mode >= 0 ? rc[bad_mode] : 0,
          bad_mode >= 0 ? logs[bad_mode] : "");
    CHECK(rc[4] == 700 && strstr(logs[4], "load from") && strstr(logs[4], "global") && strstr(logs[4], "thread (31,0,0)"),
          "lane 31 past the allocation -> %d (%s)", rc[4], logs[4]);
    CHECK(rc[5] == 700 && strstr(logs[5], "shared") && strstr(logs[5], "thread (31,0,0)"),
          "lane 31 past the shared array (consecutive) -> %d (%s)", rc[5], logs[5]);
    CHECK(rc[6] == 700 && strstr(logs[6], "shared") && strstr(logs[6], "thread (0,0,0)"),
          "lane 0 past the shared array (reversed) -> %d (%s)", rc[6], logs[6]);
    CHECK(rc[9] == 700 && strstr(logs[9], "shared") && strstr(logs[9], "thread (31,0,0)"),
          "lane 31 past the shared array (consecutive per half-warp) -> %d (%s)", rc[9], logs[9]);
}

/* rcp/sqrt and cvt from integers with directed rounding, whose rounding mode the executor sets once per warp
 * instruction: each lane against the C operation under fesetround, on full and partial warps (lanes 50-63 off). */
static const char *DIRRND_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry dirrnd(.param .u64 px, .param .u64 pdx, .param .u64 pix, .param .u64 po, .param .u64 pod, .param .u32 n)\n{\n"
    " .reg .b32 %r<4>; .reg .b64 %rd<16>; .reg .f32 %f<12>; .reg .f64 %fd<8>; .reg .pred %p<2>;\n"
    " ld.param.u64 %rd1, [px]; ld.param.u64 %rd2, [pdx]; ld.param.u64 %rd3, [pix]; ld.param.u64 %rd4, [po];\n"
    " ld.param.u64 %rd5, [pod]; ld.param.u32 %r1, [n]; mov.u32 %r2, %tid.x; setp.ge.u32 %p1, %r2, %r1; @%p1 bra DONE;\n"
    " mul.wide.u32 %rd6, %r2, 4; add.s64 %rd7, %rd1, %rd6; ld.global.f32 %f1, [%rd7];\n"
    " mul.wide.u32 %rd8, %r2, 8; add.s64 %rd9, %rd2, %rd8; ld.global.f64 %fd1, [%rd9]; add.s64 %rd10, %rd3, %rd8; ld.global.u64 %rd11, [%rd10];\n"
    " rcp.rz.f32 %f2, %f1; rcp.rp.f32 %f3, %f1; sqrt.rm.f32 %f4, %f1; sqrt.rp.f32 %f5, %f1;\n"
    " cvt.rz.f32.s64 %f6, %rd11; cvt.rp.f32.u64 %f7, %rd11; cvt.u32.u64 %r3, %rd11; cvt.rm.f32.s32 %f8, %r3;\n"
    " cvt.rp.f32.f64 %f9, %fd1; cvt.rm.f32.f64 %f10, %fd1;\n"
    " mul.wide.u32 %rd12, %r2, 36; add.s64 %rd13, %rd4, %rd12;\n"
    " st.global.f32 [%rd13], %f2; st.global.f32 [%rd13+4], %f3; st.global.f32 [%rd13+8], %f4; st.global.f32 [%rd13+12], %f5;\n"
    " st.global.f32 [%rd13+16], %f6; st.global.f32 [%rd13+20], %f7; st.global.f32 [%rd13+24], %f8;\n"
    " st.global.f32 [%rd13+28], %f9; st.global.f32 [%rd13+32], %f10;\n"
    " rcp.rm.f64 %fd2, %fd1; sqrt.rp.f64 %fd3, %fd1; cvt.rp.f64.s64 %fd4, %rd11; cvt.rz.f64.u64 %fd5, %rd11;\n"
    " mul.wide.u32 %rd14, %r2, 32; add.s64 %rd15, %rd5, %rd14;\n"
    " st.global.f64 [%rd15], %fd2; st.global.f64 [%rd15+8], %fd3; st.global.f64 [%rd15+16], %fd4; st.global.f64 [%rd15+24], %fd5;\n"
    "DONE:\n ret;\n}\n";

static float mode_f(int mode, int op, float x, long long i, double d) {
    volatile float a = x, r;
    volatile long long vi = i;
    volatile double vd = d;
    fesetround(mode);
    switch (op) {
    case 0: r = 1.0f / a; break;
    case 1: r = sqrtf(a); break;
    case 2: r = (float)vi; break;
    case 3: r = (float)(unsigned long long)vi; break;
    case 4: r = (float)(int)(unsigned)(unsigned long long)vi; break;
    default: r = (float)vd; break;
    }
    fesetround(FE_TONEAREST);
    return r;
}
static double mode_d(int mode, int op, double x, long long i) {
    volatile double a = x, r;
    volatile long long vi = i;
    fesetround(mode);
    switch (op) {
    case 0: r = 1.0 / a; break;
    case 1: r = sqrt(a); break;
    case 2: r = (double)vi; break;
    default: r = (double)(unsigned long long)vi; break;
    }
    fesetround(FE_TONEAREST);
    return r;
}

static void test_directed_rounding_per_warp(void) {
    enum { T = 64, N = 50 };
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(DIRRND_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    float *x = dev_alloc(0, T * 4), *o = dev_alloc(0, T * 9 * 4);
    double *dx = dev_alloc(0, T * 8), *od = dev_alloc(0, T * 4 * 8);
    long long *ix = dev_alloc(0, T * 8);
    for (int i = 0; i < T; i++) {
        x[i] = fbits(0x3f800000u + (rnd() & 0x7fffff)) * (float)(1 + rnd() % 1000);
        dx[i] = (double)x[i] * (1.0 + 1e-9 * (double)(1 + rnd() % 1000)) / 3.0;
        ix[i] = (long long)(((unsigned long long)rnd() << 32 | rnd()) | 0x10000001ull) * ((i & 1) ? -1 : 1);
    }
    memset(o, 0, T * 9 * 4);
    memset(od, 0, T * 4 * 8);
    pbuf p = {{0}, 0};
    pptr(&p, x); pptr(&p, dx); pptr(&p, ix); pptr(&p, o); pptr(&p, od); pint(&p, N);
    int rc = launch_in(m, "dirrnd", 1, 1, 1, T, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    CHECK(rc == 0, "launch: %d %s", rc, log);
    static const int fm[9] = {FE_TOWARDZERO, FE_UPWARD, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO, FE_UPWARD, FE_DOWNWARD,
                              FE_UPWARD, FE_DOWNWARD};
    static const int fo[9] = {0, 0, 1, 1, 2, 3, 4, 5, 5};
    static const int dm[4] = {FE_DOWNWARD, FE_UPWARD, FE_UPWARD, FE_TOWARDZERO};
    int differs_f[9] = {0}, differs_d[4] = {0};
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < 9; k++) {
            float want = t < N ? mode_f(fm[k], fo[k], x[t], ix[t], dx[t]) : 0.0f;
            CHECK(same_f(o[t * 9 + k], want), "thread %d f32 result %d: %.9g (%#x) want %.9g (%#x)", t, k, o[t * 9 + k],
                  bitsf(o[t * 9 + k]), want, bitsf(want));
            if (t < N && !same_f(want, mode_f(FE_TONEAREST, fo[k], x[t], ix[t], dx[t]))) differs_f[k] = 1;
        }
        for (int k = 0; k < 4; k++) {
            double want = t < N ? mode_d(dm[k], k, dx[t], ix[t]) : 0.0;
            CHECK(same_d(od[t * 4 + k], want), "thread %d f64 result %d: %.17g want %.17g", t, k, od[t * 4 + k], want);
            if (t < N && !same_d(want, mode_d(FE_TONEAREST, k, dx[t], ix[t]))) differs_d[k] = 1;
        }
    }
    for (int k = 0; k < 9; k++) CHECK(differs_f[k], "f32 result %d: no input where the mode changes the result", k);
    for (int k = 0; k < 4; k++) CHECK(differs_d[k], "f64 result %d: no input where the mode changes the result", k);
    ptx_module_free(m);
    dev_free(0, x); dev_free(0, o); dev_free(0, dx); dev_free(0, od); dev_free(0, ix);
}

/* Shared-memory accesses through 32-bit address registers as a 16x2 tile kernel makes them (one warp: lanes
 * 0-15 and 16-31 are two rows), which the JIT checks once per warp from the register's min/max and low bits:
 * a row (uniform per half-warp), a column (consecutive per half-warp), a negative offset under a predicate,
 * an 8-byte vector load, parameters read as a .v2 at a constant offset; then a misaligned offset and an
 * offset below the shared window, whose faults must name the interpreter's lane and kind. */
static const char *STILE_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry stile(.param .u64 o, .param .u32 mode, .param .u32 k)\n{\n"
    " .reg .b32 %r<24>; .reg .b64 %rd<4>; .reg .pred %p<4>;\n"
    " .shared .align 8 .b32 sm[64];\n"
    " ld.param.u64 %rd1, [o]; ld.param.v2.u32 {%r1, %r2}, [mode];\n"
    " mov.u32 %r3, %tid.x; mov.u32 %r4, %tid.y; shl.b32 %r5, %r4, 4; add.u32 %r6, %r5, %r3;\n"
    " mov.u32 %r7, sm; shl.b32 %r8, %r6, 2; add.u32 %r9, %r7, %r8;\n"          /* lin: sm + tid*4 */
    " shl.b32 %r10, %r4, 6; add.u32 %r11, %r7, %r10;\n"                        /* row: sm + ty*64 */
    " shl.b32 %r12, %r3, 2; add.u32 %r13, %r7, %r12;\n"                        /* col: sm + tx*4 */
    " mul.lo.u32 %r14, %r6, 7; add.u32 %r14, %r14, %r2; st.shared.u32 [%r9], %r14;\n"
    " bar.sync 0;\n"
    " setp.eq.u32 %p1, %r1, 1; @%p1 ld.shared.u32 %r15, [%r13+2];\n"
    " setp.eq.u32 %p1, %r1, 2; @%p1 ld.shared.u32 %r15, [%r13+-4];\n"
    " ld.shared.u32 %r15, [%r11+4]; ld.shared.u32 %r16, [%r13+64];\n"
    " mov.u32 %r17, 0; setp.ne.u32 %p2, %r6, 0; @%p2 ld.shared.u32 %r17, [%r9+-4];\n"
    " and.b32 %r18, %r8, -8; add.u32 %r18, %r7, %r18; ld.shared.v2.u32 {%r19, %r20}, [%r18];\n"
    " mad.lo.u32 %r21, %r16, 1000, %r15; mad.lo.u32 %r21, %r17, 1000000, %r21; add.u32 %r21, %r21, %r19;\n"
    " add.u32 %r21, %r21, %r20;\n"
    " mul.wide.u32 %rd2, %r6, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r21;\n"
    " ret;\n}\n";

static void test_shared_tiles(void) {
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(STILE_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    unsigned *o = dev_alloc(0, 32 * 4);
    int rc[3];
    char logs[3][512];
    const unsigned k = 5;
    for (int mode = 0; mode < 3; mode++) {
        pbuf p = {{0}, 0};
        pptr(&p, o); pint(&p, mode); pint(&p, (int)k);
        memset(o, 0, 32 * 4);
        rc[mode] = launch_in(m, "stile", 1, 1, 1, 16, 2, 1, 0, &p, 1, 0, logs[mode], sizeof(logs[mode]), NULL);
        if (mode) continue;
        int bad = -1;
        for (unsigned t = 0; t < 32 && bad < 0; t++) {
            unsigned tx = t % 16, ty = t / 16;
#define SM(i) ((unsigned)(i) * 7 + k)
            unsigned want = SM(ty * 16 + 1) + 1000 * SM(16 + tx) + (t ? 1000000 * SM(t - 1) : 0) + SM(t & ~1u) + SM((t & ~1u) + 1);
#undef SM
            if (o[t] != want) bad = (int)t;
        }
        CHECK(rc[0] == 0 && bad < 0, "tile loads: rc %d (%s), thread %d got %u", rc[0], logs[0], bad, bad >= 0 ? o[bad] : 0);
    }
    ptx_module_free(m);
    dev_free(0, o);
    CHECK(rc[1] == 716 && strstr(logs[1], "misaligned load from") && strstr(logs[1], "shared") && strstr(logs[1], "thread (0,0,0)"),
          "misaligned shared offset -> %d (%s)", rc[1], logs[1]);
    CHECK(rc[2] == 700 && strstr(logs[2], "illegal load from") && strstr(logs[2], "shared") && strstr(logs[2], "thread (0,0,0)"),
          "offset below the shared array -> %d (%s)", rc[2], logs[2]);
}

static void test_determinism_threads(void) {
    int n = 4096;
    float *x = dev_alloc(0, n * 4), *y1 = dev_alloc(0, n * 4), *y2 = dev_alloc(0, n * 4);
    for (int i = 0; i < n; i++) { x[i] = (float)i; y1[i] = y2[i] = 1.0f; }
    pbuf p = {{0}, 0};
    pflt(&p, 0.5f); pptr(&p, x); pptr(&p, y1); pint(&p, n);
    LAUNCH_OK("saxpy", 16, 64, 0, &p, 1);
    pbuf q = {{0}, 0};
    pflt(&q, 0.5f); pptr(&q, x); pptr(&q, y2); pint(&q, n);
    LAUNCH_OK("saxpy", 16, 64, 0, &q, 4);
    CHECK(memcmp(y1, y2, (size_t)n * 4) == 0, "1 vs 4 workers differ");
    dev_free(0, x); dev_free(0, y1); dev_free(0, y2);
}

static int close_f(float got, double want, double rel, double abs_) {
    if (isnan(want)) return isnan(got);
    return fabs((double)got - want) <= abs_ + rel * fabs(want);
}

static void test_fmath(void) {
    enum { T = 64 };
    float *x = dev_alloc(0, T * 4), *o = dev_alloc(0, T * 16 * 4);
    double *dx = dev_alloc(0, T * 8), *od = dev_alloc(0, T * 8 * 8);
    for (int i = 0; i < T; i++) {
        x[i] = (float)((int)(rnd() % 20001) - 10000) / 1000.0f;
        dx[i] = (double)((int)(rnd() % 2000001) - 1000000) / 1000.0 / 7.0;
    }
    x[0] = 0; x[1] = 2.5f; x[2] = -2.5f; x[3] = 0.5f;
    pbuf p = {{0}, 0};
    pptr(&p, x); pptr(&p, o); pptr(&p, dx); pptr(&p, od);
    LAUNCH_OK("fmath", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        float a = x[t];
        double d = dx[t];
        double want[16] = {sin(a), cos(a), exp(a), log(fabs(a) + 1.0), pow(fabs(a), 1.3), tanh(a), sin(a), exp(a),
                           1.0 / sqrt(fabs(a) + 1.0), atan2(a, 2.0), erf(a), fmod(a, 3.0), a / 3.7, a / 3.7, cbrt(a),
                           truncf(a) + roundf(a) * 10 + floorf(a) * 100 + ceilf(a) * 1000 + rintf(a) * 10000};
        for (int k = 0; k < 16; k++) {
            double rel = (k == 6 || k == 7) ? 2e-5 : 4e-6, ab = (k == 6) ? 1e-5 : 1e-6;
            if (k == 15) { rel = 0; ab = 0; }
            CHECK(close_f(o[16 * t + k], want[k], rel, ab), "thread %d fn %d of %.9g: %.9g want %.9g", t, k, a, o[16 * t + k], want[k]);
        }
        double wd[8] = {sin(d), exp(d), log(fabs(d) + 1), sqrt(fabs(d)), d / 7.0, pow(fabs(d), 0.7), (double)(long long)(d * 1e6), fma(d, d, 1.0)};
        for (int k = 0; k < 8; k++) {
            int exact = k == 3 || k == 4 || k == 6 || k == 7;
            double g = od[8 * t + k];
            CHECK(exact ? same_d(g, wd[k]) : fabs(g - wd[k]) <= 1e-14 * fabs(wd[k]) + 1e-300, "thread %d f64 fn %d of %.17g: %.17g want %.17g", t, k, d, g, wd[k]);
        }
    }
    dev_free(0, x); dev_free(0, o); dev_free(0, dx); dev_free(0, od);
}

static uint16_t h16(double v) { _Float16 h = (_Float16)v; uint16_t u; memcpy(&u, &h, 2); return u; }
static float bf2f(uint16_t b) { return fbits((uint32_t)b << 16); }

static void test_half2(void) {
    enum { T = 64 };
    uint16_t *a = dev_alloc(0, T * 4), *b = dev_alloc(0, T * 4), *o = dev_alloc(0, T * 4 * 4), *ob = dev_alloc(0, 2 * T * 4);
    float *f = dev_alloc(0, 3 * T * 4);
    for (int i = 0; i < 2 * T; i++) {
        a[i] = h16((double)((int)(rnd() % 20001) - 10000) / 97.0);
        b[i] = h16((double)((int)(rnd() % 20001) - 10000) / 89.0);
    }
    for (int i = 0; i < T + 1; i++) f[i] = (float)((int)(rnd() % 200001) - 100000) / 77.0f;
    float fin[T + 1];
    memcpy(fin, f, sizeof(fin));
    pbuf p = {{0}, 0};
    pptr(&p, a); pptr(&p, b); pptr(&p, o); pptr(&p, ob); pptr(&p, f);
    LAUNCH_OK("half2ops", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < 2; h++) {
            double x = h2d(a[2 * t + h]), y = h2d(b[2 * t + h]);
            uint16_t want[4] = {h16(x + y), h16(x * y), h16(fma(x, y, x)), h16(h ? fin[t + 1] : fin[t])};
            for (int k = 0; k < 4; k++) CHECK(o[8 * t + 2 * k + h] == want[k], "thread %d half %d op %d: %#x want %#x", t, h, k, o[8 * t + 2 * k + h], want[k]);
        }
        uint16_t lo = f2bf_rn(fin[t]), hi = f2bf_rn(2 * fin[t]);
        CHECK(ob[2 * t] == lo && ob[2 * t + 1] == hi, "thread %d bf16x2 %#x %#x want %#x %#x", t, ob[2 * t], ob[2 * t + 1], lo, hi);
        uint16_t sl = f2bf_rn(bf2f(lo) * bf2f(lo)), sh = f2bf_rn(bf2f(hi) * bf2f(hi));
        CHECK(ob[2 * (T + t)] == sl && ob[2 * (T + t) + 1] == sh, "thread %d bf16 mul %#x %#x want %#x %#x", t, ob[2 * (T + t)], ob[2 * (T + t) + 1], sl, sh);
        float lx = (float)h2d(a[2 * t]), hy = (float)h2d(b[2 * t + 1]);
        float wf = lx + hy + (lx < hy ? 1000.f : 0.f);
        CHECK(f[t + 128] == wf, "thread %d mixed %.9g want %.9g", t, f[t + 128], wf);
    }
    dev_free(0, a); dev_free(0, b); dev_free(0, o); dev_free(0, ob); dev_free(0, f);
}

static uint64_t brev64(uint64_t x) {
    uint64_t r = 0;
    for (int i = 0; i < 64; i++) r |= ((x >> i) & 1) << (63 - i);
    return r;
}

static void test_ints64(void) {
    enum { T = 64 };
    long long *p64 = dev_alloc(0, 4 * T * 8);
    unsigned long long *q = dev_alloc(0, 2 * T * 8);
    signed char *c = dev_alloc(0, T);
    short *s = dev_alloc(0, T * 2);
    long long in[2 * T];
    signed char c0[T];
    short s0[T];
    for (int i = 0; i < 2 * T; i++) {
        in[i] = (long long)(((uint64_t)rnd() << 32) | rnd()) >> (rnd() % 40);
        if (i % 9 == 0) in[i] = 0;
        p64[i] = in[i];
    }
    for (int i = 0; i < T; i++) { c[i] = c0[i] = (signed char)rnd(); s[i] = s0[i] = (short)rnd(); }
    pbuf p = {{0}, 0};
    pptr(&p, p64); pptr(&p, q); pptr(&p, c); pptr(&p, s);
    LAUNCH_OK("ints64", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        long long a = in[t], b = in[t + 64];
        CHECK(p64[t + 128] == (b ? a / b : 0), "thread %d div", t);
        CHECK(q[t] == (b ? (unsigned long long)a % (unsigned long long)b : 0), "thread %d urem", t);
        signed char cw = (signed char)(c0[t] * 3 + s0[t]);
        short sw = (short)((s0[t] * cw) >> 2);
        CHECK(c[t] == cw && s[t] == sw, "thread %d small ints %d %d want %d %d", t, c[t], s[t], cw, sw);
        long long hi = (long long)(((__int128)a * b) >> 64);
        long long w = hi + (long long)brev64((uint64_t)a) + __builtin_popcountll((uint64_t)a) + (b ? __builtin_clzll((uint64_t)b) : 64) + __builtin_ffsll(a);
        CHECK(p64[t + 192] == w, "thread %d bits %lld want %lld", t, p64[t + 192], w);
        unsigned long long w2 = (unsigned long long)(a >> (t & 63)) ^ ((unsigned long long)b >> (t & 63)) ^ ((unsigned long long)a << (t & 63));
        CHECK(q[t + 64] == w2, "thread %d shifts", t);
    }
    dev_free(0, p64); dev_free(0, q); dev_free(0, c); dev_free(0, s);
}

static void test_vecs(void) {
    enum { T = 48 };
    float *a = dev_alloc(0, T * 16), *b = dev_alloc(0, T * 16);
    double *c = dev_alloc(0, T * 16), *d = dev_alloc(0, T * 16);
    signed char *e = dev_alloc(0, T * 4);
    int *f = dev_alloc(0, T * 4);
    for (int i = 0; i < T * 4; i++) { a[i] = (float)(rnd() % 1000) / 8.0f; e[i] = (signed char)rnd(); }
    for (int i = 0; i < T * 2; i++) c[i] = (double)(rnd() % 100000) / 3.0;
    pbuf p = {{0}, 0};
    pptr(&p, a); pptr(&p, b); pptr(&p, c); pptr(&p, d); pptr(&p, e); pptr(&p, f);
    LAUNCH_OK("vecs", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        CHECK(b[4 * t] == a[4 * t] + a[4 * t + 3] && b[4 * t + 1] == a[4 * t + 1] && b[4 * t + 2] == a[4 * t + 2] && b[4 * t + 3] == a[4 * t + 3], "float4 %d", t);
        CHECK(d[2 * t] == c[2 * t] && d[2 * t + 1] == c[2 * t + 1] * c[2 * t], "double2 %d", t);
        CHECK(f[t] == e[4 * t] + e[4 * t + 1] * e[4 * t + 2] - e[4 * t + 3], "char4 %d", t);
    }
    dev_free(0, a); dev_free(0, b); dev_free(0, c); dev_free(0, d); dev_free(0, e); dev_free(0, f);
}

static void test_byval(void) {
    int *o = dev_alloc(0, 32 * 4);
    pbuf p = {{0}, 0};
    for (int i = 0; i < 8; i++) pint(&p, 100 + i * i);
    pflt(&p, 7.9f);
    pptr(&p, o);
    pint(&p, 3);
    LAUNCH_OK("byval", 1, 32, 0, &p, 1);
    for (int t = 0; t < 32; t++) CHECK(o[t] == 100 + ((3 + t) & 7) * ((3 + t) & 7) + 7, "thread %d: %d", t, o[t]);
    dev_free(0, o);
}

static int cmp_int(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }

static void test_cub(void) {
    enum { NB = 3 };
    int *in = dev_alloc(0, NB * 128 * 4), *out = dev_alloc(0, NB * 128 * 4), *agg = dev_alloc(0, NB * 4);
    for (int i = 0; i < NB * 128; i++) in[i] = (int)(rnd() % 1000) - 300;
    pbuf p = {{0}, 0};
    pptr(&p, in); pptr(&p, out); pptr(&p, agg);
    LAUNCH_OK("cub_reduce_scan", NB, 128, 0, &p, 2);
    CHECK(jit_compiled(MOD, "cub_reduce_scan"), "the JIT did not compile cub_reduce_scan (TF_EMU_TRACE=1 says why)");
    for (int b = 0; b < NB; b++) {
        int run = 0;
        for (int t = 0; t < 128; t++) {
            CHECK(out[b * 128 + t] == run, "block %d scan[%d]=%d want %d", b, t, out[b * 128 + t], run);
            run += in[b * 128 + t];
        }
        CHECK(agg[b] == run, "block %d sum %d want %d", b, agg[b], run);
    }
    int *keys = dev_alloc(0, NB * 256 * 4), ref[NB * 256];
    for (int i = 0; i < NB * 256; i++) ref[i] = keys[i] = (int)rnd();
    pbuf q = {{0}, 0};
    pptr(&q, keys);
    LAUNCH_OK("cub_sort", NB, 64, 0, &q, 2);
    for (int b = 0; b < NB; b++) qsort(ref + b * 256, 256, 4, cmp_int);
    for (int i = 0; i < NB * 256; i++) CHECK(keys[i] == ref[i], "sorted[%d]=%d want %d", i, keys[i], ref[i]);
    dev_free(0, in); dev_free(0, out); dev_free(0, agg); dev_free(0, keys);
}

/* Mutated PTX must load or fail cleanly, never crash or leak (ASan checks both). */
static void test_fuzz_parser(void) {
    static const char alphabet[] = "{}[]();,.%<>|@!+-_:0123456789abcdefxXfd \n\t\"";
    char *buf = malloc(PTX_LEN + 1);
    CHECK(buf != NULL, "malloc");
    int loaded = 0;
    int iters = PTX_LEN > 400000 ? 30 : 120; /* -G PTX is large: fewer loads keep the test quick */
    for (int it = 0; it < iters; it++) {
        memcpy(buf, PTX_TEXT, PTX_LEN + 1);
        size_t len = PTX_LEN;
        int kind = it % 4;
        if (kind == 0) {
            for (int k = 0; k < 1 + (int)(rnd() % 8); k++) buf[rnd() % len] = alphabet[rnd() % (sizeof(alphabet) - 1)];
        } else if (kind == 1) {
            len = rnd() % len;
            buf[len] = 0;
        } else if (kind == 2) {
            size_t a = rnd() % len, n = rnd() % 200;
            if (a + n > len) n = len - a;
            memmove(buf + a, buf + a + n, len - a - n + 1);
            len -= n;
        } else {
            size_t a = rnd() % len;
            buf[a] = (char)(rnd() & 0xff);
            if (!buf[a]) buf[a] = '~';
        }
        int err = 0;
        char log[256];
        ptx_module *m = ptx_module_load(buf, len, &ENV, &err, log, sizeof(log));
        if (m) {
            loaded++;
            for (int i = 0; i < ptx_module_kernel_count(m); i++) {
                ptx_kernel_attrs at;
                ptx_kernel_get_attrs(ptx_module_kernel_at(m, i), &at);
            }
            ptx_module_free(m);
        } else if (err == 0) {
            free(buf);
            CHECK(0, "load failed without an error code");
        }
    }
    free(buf);
    CHECK(loaded > 0, "no mutation loaded at all");
}

static void test_cpasync(void) {
    float *g = dev_alloc(0, 512 * 4), *o = dev_alloc(0, 256 * 4);
    for (int i = 0; i < 512; i++) g[i] = (float)(i % 300);
    pbuf p = {{0}, 0};
    pptr(&p, g); pptr(&p, o);
    LAUNCH_OK("cpasync", 1, 256, 0, &p, 1);
    for (int t = 0; t < 256; t++) CHECK(o[t] == g[255 - t] + 1000.0f * g[256 + t], "thread %d: %f", t, o[t]);
    CHECK(jit_compiled(MOD, "cpasync"), "the JIT did not compile cpasync (TF_EMU_TRACE=1 says why)");
    dev_free(0, g); dev_free(0, o);
}

static void test_halfatomics(void) {
    enum { T = 64 };
    uint16_t *p2 = dev_alloc(0, 4), *q = dev_alloc(0, 4), *a = dev_alloc(0, (T + 1) * 4), *c = dev_alloc(0, 2 * T * 4);
    for (int i = 0; i < 2 * (T + 1); i++) a[i] = h16((double)((int)(rnd() % 64) - 32) / 4.0); /* sums stay exact */
    pbuf p = {{0}, 0};
    pptr(&p, p2); pptr(&p, q); pptr(&p, a); pptr(&p, c);
    LAUNCH_OK("halfatomics", 1, T, 0, &p, 1);
    double s0 = 0, s1 = 0;
    for (int t = 0; t < T; t++) { s0 += h2d(a[2 * t]); s1 += h2d(a[2 * t + 1]); }
    CHECK(p2[0] == h16(s0) && p2[1] == h16(s1), "half2 atomic sum %#x %#x want %#x %#x", p2[0], p2[1], h16(s0), h16(s1));
    CHECK(q[1] == h16(s0) && q[0] == 0, "half atomic sum %#x want %#x (neighbour %#x)", q[1], h16(s0), q[0]);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < 2; h++) {
            double x = h2d(a[2 * t + h]), y = h2d(a[2 * (t + 1) + h]);
            CHECK(c[2 * t + h] == (x < y ? 0x3c00 : 0), "thread %d hlt2 half %d: %#x", t, h, c[2 * t + h]);
            CHECK(c[2 * (T + t) + h] == h16(x > y ? x : y), "thread %d hmax2 half %d", t, h);
        }
    dev_free(0, p2); dev_free(0, q); dev_free(0, a); dev_free(0, c);
}

static void test_devmalloc(void) {
    enum { T = 40 };
    uint64_t *ptrs = dev_alloc(0, T * 8);
    int *sum = dev_alloc(0, T * 4);
    int before = nallocs;
    pbuf p = {{0}, 0};
    pptr(&p, ptrs);
    LAUNCH_OK("devmalloc", 1, T, 0, &p, 1);
    CHECK(nallocs == before + T, "device mallocs %d", nallocs - before);
    pbuf q = {{0}, 0};
    pptr(&q, ptrs); pptr(&q, sum);
    LAUNCH_OK("devfree", 1, T, 0, &q, 1);
    for (int t = 0; t < T; t++) CHECK(sum[t] == 16 * t + 120, "thread %d sum %d", t, sum[t]);
    CHECK(nallocs == before, "device frees %d left", nallocs - before);
    dev_free(0, ptrs); dev_free(0, sum);
}

static void test_wmma(void) {
    uint16_t *a = dev_alloc(0, 512), *b = dev_alloc(0, 512), *d = dev_alloc(0, 512);
    float *c = dev_alloc(0, 1024), c0[256];
    for (int i = 0; i < 256; i++) {
        a[i] = h16((double)((int)(rnd() % 17) - 8) / 4.0);
        b[i] = h16((double)((int)(rnd() % 13) - 6) / 2.0);
        c[i] = c0[i] = (float)((int)(rnd() % 100) - 50);
    }
    pbuf p = {{0}, 0};
    pptr(&p, a); pptr(&p, b); pptr(&p, c); pptr(&p, d);
    LAUNCH_OK("wmma_f16", 1, 32, 0, &p, 1);
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < 16; k++) {
            double acc = 0; /* b is col-major: B[i][k] = b[k*16 + i] */
            for (int i = 0; i < 16; i++) acc += h2d(a[r * 16 + i]) * h2d(b[k * 16 + i]);
            CHECK(c[r * 16 + k] == (float)(2.0 * (acc + c0[r * 16 + k])), "f32 acc [%d][%d]=%g want %g", r, k, c[r * 16 + k], 2.0 * (acc + c0[r * 16 + k]));
            CHECK(d[k * 16 + r] == h16(acc), "f16 acc [%d][%d]=%#x want %#x", r, k, d[k * 16 + r], h16(acc));
        }
    uint16_t *ba = dev_alloc(0, 512), *bb = dev_alloc(0, 512);
    for (int i = 0; i < 256; i++) { ba[i] = f2bf_rn((float)((int)(rnd() % 9) - 4)); bb[i] = f2bf_rn((float)((int)(rnd() % 7) - 3) * 0.5f); }
    pbuf q = {{0}, 0};
    pptr(&q, ba); pptr(&q, bb); pptr(&q, c);
    LAUNCH_OK("wmma_bf16", 1, 32, 0, &q, 1);
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < 16; k++) {
            double acc = 1.0;
            for (int i = 0; i < 16; i++) acc += (double)bf2f(ba[r * 16 + i]) * bf2f(bb[i * 16 + k]);
            CHECK(c[k * 16 + r] == (float)acc, "bf16 [%d][%d]=%g want %g", r, k, c[k * 16 + r], acc);
        }
    dev_free(0, a); dev_free(0, b); dev_free(0, c); dev_free(0, d); dev_free(0, ba); dev_free(0, bb);
}

static float tf32_rna(float f) { /* __float_to_tf32: round to nearest, ties away, 10 mantissa bits */
    uint32_t u = bitsf(f);
    if ((u & 0x1fffu) >= 0x1000u) u += 0x2000u;
    return fbits(u & ~0x1fffu);
}

/* WMMA f64 m8n8k4, s8 -> s32 m16n16k16, tf32 m16n16k8 against C references. */
static void test_wmma_more(void) {
    double *da = dev_alloc(0, 32 * 8), *db = dev_alloc(0, 32 * 8), *dc = dev_alloc(0, 64 * 8), dc0[64];
    signed char *ia = dev_alloc(0, 256);
    signed char *ib = dev_alloc(0, 256);
    int *ic = dev_alloc(0, 256 * 4);
    float *fa = dev_alloc(0, 128 * 4), *fb = dev_alloc(0, 128 * 4), *fc = dev_alloc(0, 256 * 4);
    for (int i = 0; i < 32; i++) { da[i] = (double)((int)(rnd() % 2001) - 1000) / 7.0; db[i] = (double)((int)(rnd() % 2001) - 1000) / 3.0; }
    for (int i = 0; i < 64; i++) dc[i] = dc0[i] = (double)((int)(rnd() % 100) - 50) / 9.0;
    for (int i = 0; i < 256; i++) { ia[i] = (signed char)(rnd() & 0xff); ib[i] = (signed char)(rnd() & 0xff); }
    for (int i = 0; i < 128; i++) { fa[i] = fbits((rnd() & 0x807fffffu) | 0x3f000000u); fb[i] = fbits((rnd() & 0x807fffffu) | 0x3f800000u); }
    pbuf p = {{0}, 0};
    pptr(&p, da); pptr(&p, db); pptr(&p, dc); pptr(&p, ia); pptr(&p, ib); pptr(&p, ic); pptr(&p, fa); pptr(&p, fb); pptr(&p, fc);
    LAUNCH_OK("wmma_more", 1, 32, 0, &p, 1);
    /* f64: A 8x4 row-major (ld 4), B 4x8 col-major (B[k][n] = db[n*4+k]), C row-major in, D col-major out */
    for (int r = 0; r < 8; r++)
        for (int n = 0; n < 8; n++) {
            double acc = dc0[r * 8 + n];
            for (int k = 0; k < 4; k++) acc = fma(da[r * 4 + k], db[n * 4 + k], acc);
            CHECK(dc[n * 8 + r] == acc, "f64 [%d][%d]=%.17g want %.17g", r, n, dc[n * 8 + r], acc);
        }
    /* s8: A col-major (A[m][k] = ia[k*16+m]), B row-major, C = 7, then -1 elementwise */
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            int acc = 7;
            for (int k = 0; k < 16; k++) acc += (int)ia[k * 16 + m] * (int)ib[k * 16 + n];
            CHECK(ic[m * 16 + n] == acc - 1, "s8 [%d][%d]=%d want %d", m, n, ic[m * 16 + n], acc - 1);
        }
    /* tf32: A 16x8 row-major, B 8x16 col-major (B[k][n] = fb[n*8+k]), inputs rounded, f32 accumulate */
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float acc = 0.5f;
            for (int k = 0; k < 8; k++) acc = fmaf(tf32_rna(fa[m * 8 + k]), tf32_rna(fb[n * 8 + k]), acc);
            CHECK(fabsf(fc[m * 16 + n] - acc) <= 1e-5f * fabsf(acc) + 1e-6f, "tf32 [%d][%d]=%.9g want %.9g", m, n, fc[m * 16 + n], acc);
        }
    dev_free(0, da); dev_free(0, db); dev_free(0, dc); dev_free(0, ia); dev_free(0, ib); dev_free(0, ic);
    dev_free(0, fa); dev_free(0, fb); dev_free(0, fc);
}

/* A random double for the f64 products: any sign, mantissa bits everywhere (inexact products and sums), exponents
 * near 1 with now and then a zero of either sign or a subnormal. */
static double rnd_f64(void) {
    const uint32_t r = rnd();
    if (r % 16 == 0) return r & 16 ? -0.0 : 0.0;
    uint64_t u = (uint64_t)rnd() << 32 | rnd();
    u = (u & 0x800fffffffffffffull) | (r % 16 == 1 ? 0 : (uint64_t)(1023 - 4 + r % 9) << 52);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* f64 m8n8k4 the way dmmaTensorCoreGemm runs it (ptx_mma.c's f64 product on the register slots, the one-register
 * fragment loads, cp.async runs with a zero-filling lane), then products whose D registers overlap A or C: every
 * element bit for bit against the fma chain in increasing k. */
static void test_wmma_f64_tile(void) {
    double *A = dev_alloc(0, 128 * 8), *Bt = dev_alloc(0, 128 * 8), *C = dev_alloc(0, 64 * 8), *e = dev_alloc(0, 128 * 8);
    double As[128], C0[64], ref[64];
    for (int i = 0; i < 128; i++) { A[i] = As[i] = rnd_f64(); Bt[i] = rnd_f64(); }
    for (int i = 0; i < 64; i++) C[i] = C0[i] = rnd_f64();
    As[1 * 16 + 11] = 0.0; /* piece 13 (row 1, columns 10-11) copies 8 bytes and zero-fills the rest */
    pbuf p = {{0}, 0};
    pptr(&p, A); pptr(&p, Bt); pptr(&p, C); pptr(&p, e);
    LAUNCH_OK("wmma_f64_tile", 1, 32, 0, &p, 1);
    for (int m = 0; m < 8; m++)
        for (int n = 0; n < 8; n++) {
            double acc = C0[m * 8 + n];
            for (int k = 0; k < 16; k++) acc = fma(As[m * 16 + k], Bt[n * 16 + k], acc);
            ref[m * 8 + n] = acc;
            CHECK(same_d(C[m * 8 + n], acc), "D[%d][%d]=%a want %a", m, n, C[m * 8 + n], acc);
        }
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 2; i++) { /* slot i of lane l: element (l / 4, 2 (l % 4) + i); the last K step's A, B */
            const int m = l / 4, n = 2 * (l % 4) + i;
            double d = ref[m * 8 + n], s = ref[m * 8 + 2 * (l % 4) + 1 - i];
            for (int k = 12; k < 16; k++) {
                d = fma(As[m * 16 + k], Bt[n * 16 + k], d);
                s = fma(As[m * 16 + k], Bt[n * 16 + k], s);
            }
            CHECK(same_d(e[4 * l + i], d), "D0 = A: lane %d slot %d=%a want %a", l, i, e[4 * l + i], d);
            CHECK(same_d(e[4 * l + 2 + i], s), "D = C swapped: lane %d slot %d=%a want %a", l, i, e[4 * l + 2 + i], s);
        }
    dev_free(0, A); dev_free(0, Bt); dev_free(0, C); dev_free(0, e);
}

/* ptx_regpool.c's rules on a hand-made kernel: fragments whose live ranges do not overlap share a slot; a
 * fragment named outside the fragment lists, one whose range a branch enters, one first written under a guard
 * and one first read keep their own. */
static void test_regpool(void) {
    enum { NS = 40 };
    ptx_ins code[14];
    memset(code, 0, sizeof code);
    for (int i = 0; i < 14; i++) {
        code[i].op = OP_NOP;
        code[i].pred = code[i].d = code[i].d2 = code[i].a = code[i].b = code[i].c = code[i].e = -1;
        for (int j = 0; j < 4; j++) code[i].v[j] = -1;
        code[i].imm = -1;
    }
    int32_t lists[32];
    int nl = 0;
#define LOADF(i, reg) (code[i].op = OP_WMMA_LOAD, code[i].a = 1, code[i].b = 2, code[i].e = 1, code[i].c = nl, code[i].vec = 1, code[i].imm = 0, lists[nl++] = (reg))
#define MMAF(i, d0, d1, ra, rb, c0, c1)                                                                  \
    (code[i].op = OP_WMMA_MMA, code[i].e = 3, code[i].imm = 1, code[i].d = nl, lists[nl++] = (d0), lists[nl++] = (d1), \
     code[i].a = nl, lists[nl++] = (ra), code[i].b = nl, lists[nl++] = (rb), code[i].c = nl, lists[nl++] = (c0),        \
     lists[nl++] = (c1), code[i].v[0] = 2, code[i].v[1] = 1, code[i].v[2] = 1, code[i].v[3] = 2)
    LOADF(0, 10);                      /* a0: 0-2 */
    LOADF(1, 11);                      /* b0: 1-2 */
    MMAF(2, 12, 13, 10, 11, 30, 31);   /* D0 12,13: 2-5; C 30,31 read first: kept */
    LOADF(3, 14);                      /* a1: 3-5, may take a0's slot */
    LOADF(4, 15);                      /* b1: 4-5, may take b0's slot */
    MMAF(5, 16, 17, 14, 15, 12, 13);   /* D1 16,17: 5-11 (stored at 11) */
    LOADF(6, 18); code[6].pred = 5;    /* guarded first write: kept */
    LOADF(7, 19);                      /* 19: 7-9, but instruction 8 is a branch target: kept */
    code[9].op = OP_WMMA_STORE; code[9].a = 1; code[9].b = 2; code[9].e = 1; code[9].c = nl; code[9].vec = 1; code[9].imm = 0; lists[nl++] = 19;
    code[10].op = OP_BRA; code[10].imm = 8;
    LOADF(11, 20); code[11].op = OP_WMMA_STORE; code[11].vec = 1; lists[nl - 1] = 16;
    lists[nl++] = 21;                  /* 20: a list entry no fragment instruction claims (another instruction's) */
    LOADF(8, 21);                      /* 21: 21 loaded: kept for the entry above */
    MMAF(12, 24, 25, 26, 27, 24, 28);  /* 22-27: 24 written and read by its first instruction: kept */
    ptx_kernel k;
    memset(&k, 0, sizeof k);
    k.code = code; k.ncode = 14; k.nslots = NS; k.lists = lists; k.nlists = nl;
    int32_t before[32];
    memcpy(before, lists, sizeof(int32_t) * (size_t)nl);
    ptx_pool_fragment_slots(&k);
    /* list positions: 0 a0, 1 b0, 2-7 mma0 (D 12 13, A, B, C 30 31), 8 a1, 9 b1, 10-15 mma1 (D 16 17, A, B, C), 16
     * (18), 17 (19), 18 the store of 19, 19 the store of 16, 20 the unclaimed 21, 21 the load of 21, 22-27 mma12 */
    CHECK(lists[8] == lists[0] && lists[4] == lists[0], "a1 shares a0's slot: %d %d", lists[8], lists[0]);
    CHECK(lists[9] == lists[1] && lists[5] == lists[1], "b1 shares b0's slot: %d %d", lists[9], lists[1]);
    CHECK(lists[12] == lists[8] && lists[13] == lists[9], "mma1 reads a1, b1 where they were put");
    CHECK(lists[2] != lists[0] && lists[2] != lists[1] && lists[3] != lists[0] && lists[3] != lists[1] && lists[2] != lists[3],
          "D0 overlaps a0/b0's ranges");
    CHECK(lists[6] == 30 && lists[7] == 31 && lists[14] == lists[2] && lists[15] == lists[3], "C read first is kept, D0 renamed consistently");
    for (int e = 10; e <= 11; e++) /* D1 (live to 11) shares no slot in use at 5 */
        CHECK(lists[e] != lists[8] && lists[e] != lists[9] && lists[e] != lists[2] && lists[e] != lists[3], "D1 slot %d", lists[e]);
    CHECK(lists[19] == lists[10], "the store of D1 reads where D1 was put");
    CHECK(lists[16] == 18 && lists[17] == 19 && lists[18] == 19, "guarded and entered registers kept");
    CHECK(lists[20] == 21 && lists[21] == 21, "a register of another instruction's list kept");
    CHECK(lists[22] == 24 && lists[26] == 24, "a register read by its first instruction kept");
    int pooled = 0;
    for (int e = 0; e < nl; e++) pooled += lists[e] != before[e];
    CHECK(pooled > 0, "nothing shared a slot");
#undef LOADF
#undef MMAF
}

/* A cp.async lane with a bad source fails the launch and is the lane named, inside a run of lanes or alone. */
static void test_cpasync_fault(void) {
    double *g = dev_alloc(0, 64 * 8), *o = dev_alloc(0, 32 * 8);
    for (int i = 0; i < 64; i++) g[i] = i;
    pbuf ok = {{0}, 0};
    pptr(&ok, g); pptr(&ok, o); pint(&ok, -1);
    LAUNCH_OK("cpasync_fault", 1, 32, 0, &ok, 1);
    for (int l = 0; l < 32; l++) CHECK(o[l] == 4 * l + 1, "lane %d: %g", l, o[l]);
    const int bad[] = {0, 5, 31};
    for (int i = 0; i < 3; i++) {
        pbuf p = {{0}, 0};
        pptr(&p, g); pptr(&p, o); pint(&p, bad[i]);
        char log[512] = "", want[48];
        int r = launch("cpasync_fault", 1, 1, 1, 32, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
        snprintf(want, sizeof want, "thread (%d,0,0)", bad[i]);
        CHECK(r == 700 && strstr(log, "illegal") && strstr(log, want), "bad lane %d -> %d (%s)", bad[i], r, log);
    }
    dev_free(0, g); dev_free(0, o);
}

static void test_mma_ldmatrix(void) {
    uint16_t *A = dev_alloc(0, 512), *Bt = dev_alloc(0, 256), *Br = dev_alloc(0, 256);
    float *C = dev_alloc(0, 512), *D = dev_alloc(0, 512), *D2 = dev_alloc(0, 512);
    for (int i = 0; i < 256; i++) A[i] = h16((double)((int)(rnd() % 17) - 8) / 2.0);
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 8; n++) Bt[n * 16 + k] = Br[k * 8 + n] = h16((double)((int)(rnd() % 11) - 5));
    for (int i = 0; i < 128; i++) C[i] = (float)((int)(rnd() % 40) - 20);
    pbuf p = {{0}, 0};
    pptr(&p, A); pptr(&p, Bt); pptr(&p, Br); pptr(&p, C); pptr(&p, D); pptr(&p, D2);
    LAUNCH_OK("mma_ldmatrix", 1, 32, 0, &p, 1);
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 8; n++) {
            double acc = C[m * 8 + n];
            for (int k = 0; k < 16; k++) acc += h2d(A[m * 16 + k]) * h2d(Br[k * 8 + n]);
            CHECK(D[m * 8 + n] == (float)acc && D2[m * 8 + n] == (float)acc, "D[%d][%d]=%g / %g want %g", m, n, D[m * 8 + n], D2[m * 8 + n], acc);
        }
    dev_free(0, A); dev_free(0, Bt); dev_free(0, Br); dev_free(0, C); dev_free(0, D); dev_free(0, D2);
}

/* A random finite f16 (any sign, exponent 0-30: subnormals included). */
static uint16_t rnd_f16(void) {
    for (;;) {
        uint16_t h = (uint16_t)rnd();
        if (((h >> 10) & 0x1f) != 0x1f) return h;
    }
}
static float h2f_ref(uint16_t h) { return (float)h2d(h); }

/* The warp matrix instructions bit for bit against C references (f32 accumulation is a chain of fmaf in
 * increasing k, starting from C): f16 over its whole finite range with an f16 C, tf32 with the low 13 bits
 * ignored, u8 saturating and s8 wrapping near INT_MAX; a store past its allocation fails the launch. */
static void test_wmma_exact(void) {
    uint16_t *a = dev_alloc(0, 512), *b = dev_alloc(0, 512), *c = dev_alloc(0, 512);
    float *d = dev_alloc(0, 1024), *ta = dev_alloc(0, 512), *tb = dev_alloc(0, 512), *td = dev_alloc(0, 1024);
    unsigned char *ua = dev_alloc(0, 256), *ub = dev_alloc(0, 256);
    signed char *sa = dev_alloc(0, 256), *sb = dev_alloc(0, 256);
    int *ud = dev_alloc(0, 1024), *sd = dev_alloc(0, 1024);
    for (int i = 0; i < 256; i++) {
        a[i] = rnd_f16(); b[i] = rnd_f16(); c[i] = rnd_f16();
        ua[i] = (unsigned char)rnd(); ub[i] = (unsigned char)rnd(); sa[i] = (signed char)rnd(); sb[i] = (signed char)rnd();
    }
    for (int i = 0; i < 128; i++) { ta[i] = fbits((rnd() & 0x807fffffu) | 0x3f000000u); tb[i] = fbits((rnd() & 0x807fffffu) | 0x3f800000u); }
    pbuf p = {{0}, 0};
    pptr(&p, a); pptr(&p, b); pptr(&p, c); pptr(&p, d); pptr(&p, ta); pptr(&p, tb); pptr(&p, td);
    pptr(&p, ua); pptr(&p, ub); pptr(&p, ud); pptr(&p, sa); pptr(&p, sb); pptr(&p, sd);
    LAUNCH_OK("wmma_exact", 1, 32, 0, &p, 1);
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) { /* A row-major, B col-major (B[k][n] = b[n*16+k]), C col-major, D row-major */
            float acc = h2f_ref(c[n * 16 + m]);
            for (int k = 0; k < 16; k++) acc = fmaf(h2f_ref(a[m * 16 + k]), h2f_ref(b[n * 16 + k]), acc);
            CHECK(bitsf(d[m * 16 + n]) == bitsf(acc), "f16 [%d][%d]=%a want %a", m, n, d[m * 16 + n], acc);
        }
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) { /* A col-major (A[m][k] = ta[k*16+m]), B row-major, D col-major */
            float acc = -0.25f;
            for (int k = 0; k < 8; k++)
                acc = fmaf(fbits(bitsf(ta[k * 16 + m]) & ~0x1fffu), fbits(bitsf(tb[k * 16 + n]) & ~0x1fffu), acc);
            CHECK(bitsf(td[n * 16 + m]) == bitsf(acc), "tf32 [%d][%d]=%a want %a", m, n, td[n * 16 + m], acc);
        }
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            int64_t su = 2147483647 - 1000000, ss = 2147483647 - 100000;
            for (int k = 0; k < 16; k++) {
                su += (int64_t)ua[m * 16 + k] * ub[n * 16 + k]; /* B col-major */
                ss += (int64_t)sa[m * 16 + k] * sb[k * 16 + n]; /* B row-major */
            }
            const int want_u = su > INT32_MAX ? INT32_MAX : (int)su, want_s = (int)(uint32_t)(uint64_t)ss;
            CHECK(ud[m * 16 + n] == want_u, "u8 satfinite [%d][%d]=%d want %d", m, n, ud[m * 16 + n], want_u);
            CHECK(sd[n * 16 + m] == want_s, "s8 wrap [%d][%d]=%d want %d", m, n, sd[n * 16 + m], want_s);
        }
    pbuf q = {{0}, 0};
    pptr(&q, d); pint(&q, 16);
    LAUNCH_OK("wmma_store_ld", 1, 32, 0, &q, 1);
    for (int i = 0; i < 256; i++) CHECK(d[i] == 3.0f, "store [%d]=%g", i, d[i]);
    pbuf z = {{0}, 0};
    pptr(&z, d); pint(&z, 1000);
    char log[512] = "";
    int r = launch("wmma_store_ld", 1, 1, 1, 32, 1, 1, 0, &z, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 700 && strstr(log, "illegal"), "store past the allocation -> %d (%s)", r, log);
    dev_free(0, a); dev_free(0, b); dev_free(0, c); dev_free(0, d); dev_free(0, ta); dev_free(0, tb); dev_free(0, td);
    dev_free(0, ua); dev_free(0, ub); dev_free(0, sa); dev_free(0, sb); dev_free(0, ud); dev_free(0, sd);
}

/* mma.sync m16n8k8 bf16 -> f32 and m16n8k16 f16 -> f16 (f16 C) in the PTX ISA's fragment layouts: lane
 * l = 4g + t; A element i at row g + 8((i >> 1) & 1), column 2t + (i & 1) + 8(i >> 2); B element i at row
 * 2t + (i & 1) + 8(i >> 1), column g; C/D element i at row g + 8(i >> 1), column 2t + (i & 1). */
static void test_mma_more(void) {
    uint32_t *a = dev_alloc(0, 256), *b = dev_alloc(0, 128), *ha = dev_alloc(0, 512), *hb = dev_alloc(0, 256);
    uint32_t *hc = dev_alloc(0, 256), *hd = dev_alloc(0, 256);
    float *c = dev_alloc(0, 512), *d = dev_alloc(0, 512);
    float A[16][16], Bm[16][8], C[16][8];
    uint16_t HA[16][16], HB[16][8], HC[16][8];
    for (int l = 0; l < 32; l++) {
        const int g = l >> 2, t = l & 3;
        uint16_t e[8];
        for (int i = 0; i < 4; i++) e[i] = f2bf_rn((float)((int)(rnd() % 2001) - 1000) / 64.0f);
        for (int i = 0; i < 4; i++) A[g + 8 * ((i >> 1) & 1)][2 * t + (i & 1)] = bf2f(e[i]);
        a[2 * l] = e[0] | (uint32_t)e[1] << 16; a[2 * l + 1] = e[2] | (uint32_t)e[3] << 16;
        for (int i = 0; i < 2; i++) e[i] = f2bf_rn(fbits((rnd() & 0x807fffffu) | 0x3f000000u));
        for (int i = 0; i < 2; i++) Bm[2 * t + i][g] = bf2f(e[i]);
        b[l] = e[0] | (uint32_t)e[1] << 16;
        for (int i = 0; i < 4; i++) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = c[4 * l + i] = (float)((int)(rnd() % 200) - 100) / 3.0f;
        /* f16 m16n8k16 */
        for (int i = 0; i < 8; i++) e[i] = h16((double)((int)(rnd() % 4001) - 2000) / 256.0);
        for (int i = 0; i < 8; i++) HA[g + 8 * ((i >> 1) & 1)][2 * t + (i & 1) + 8 * (i >> 2)] = e[i];
        for (int j = 0; j < 4; j++) ha[4 * l + j] = e[2 * j] | (uint32_t)e[2 * j + 1] << 16;
        for (int i = 0; i < 4; i++) e[i] = h16((double)((int)(rnd() % 4001) - 2000) / 128.0);
        for (int i = 0; i < 4; i++) HB[2 * t + (i & 1) + 8 * (i >> 1)][g] = e[i];
        for (int j = 0; j < 2; j++) hb[2 * l + j] = e[2 * j] | (uint32_t)e[2 * j + 1] << 16;
        for (int i = 0; i < 4; i++) e[i] = h16((double)((int)(rnd() % 2001) - 1000) / 8.0);
        for (int i = 0; i < 4; i++) HC[g + 8 * (i >> 1)][2 * t + (i & 1)] = e[i];
        for (int j = 0; j < 2; j++) hc[2 * l + j] = e[2 * j] | (uint32_t)e[2 * j + 1] << 16;
    }
    pbuf p = {{0}, 0};
    pptr(&p, a); pptr(&p, b); pptr(&p, c); pptr(&p, d); pptr(&p, ha); pptr(&p, hb); pptr(&p, hc); pptr(&p, hd);
    LAUNCH_OK("mma_more", 1, 32, 0, &p, 1);
    for (int l = 0; l < 32; l++) {
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; i++) {
            const int m = g + 8 * (i >> 1), n = 2 * t + (i & 1);
            float acc = C[m][n], hacc = h2f_ref(HC[m][n]);
            for (int k = 0; k < 8; k++) acc = fmaf(A[m][k], Bm[k][n], acc);
            for (int k = 0; k < 16; k++) hacc = fmaf(h2f_ref(HA[m][k]), h2f_ref(HB[k][n]), hacc);
            CHECK(bitsf(d[4 * l + i]) == bitsf(acc), "bf16 m16n8k8 lane %d [%d][%d]=%a want %a", l, m, n, d[4 * l + i], acc);
            const uint16_t got = (uint16_t)(hd[2 * l + i / 2] >> (16 * (i % 2)));
            CHECK(got == h16((double)hacc), "f16 m16n8k16 lane %d [%d][%d]=%#x want %#x", l, m, n, got, h16((double)hacc));
        }
    }
    dev_free(0, a); dev_free(0, b); dev_free(0, c); dev_free(0, d); dev_free(0, ha); dev_free(0, hb); dev_free(0, hc);
    dev_free(0, hd);
}

/* cvt.{rna,rn,rz}{.relu}.tf32.f32 on both engines against a C model, over ties,
 * carries into the exponent, infinities, NaN, zeros and negatives. */
static const char *TF32_PTX =
    ".version 7.8\n.target sm_80\n.address_size 64\n"
    ".visible .entry tf32cvt(.param .u64 pin, .param .u64 pout)\n{\n"
    " .reg .b32 %r<12>;\n .reg .b64 %rd<6>;\n .reg .f32 %f<2>;\n"
    " ld.param.u64 %rd1, [pin];\n ld.param.u64 %rd2, [pout];\n"
    " mov.u32 %r1, %tid.x;\n mul.wide.u32 %rd3, %r1, 4;\n add.s64 %rd4, %rd1, %rd3;\n"
    " ld.global.f32 %f1, [%rd4];\n"
    " cvt.rna.tf32.f32 %r2, %f1;\n cvt.rn.tf32.f32 %r3, %f1;\n cvt.rz.tf32.f32 %r4, %f1;\n"
    " cvt.rna.relu.tf32.f32 %r5, %f1;\n cvt.rn.relu.tf32.f32 %r6, %f1;\n"
    " mul.wide.u32 %rd3, %r1, 32;\n add.s64 %rd5, %rd2, %rd3;\n"
    " st.global.v4.u32 [%rd5], {%r2, %r3, %r4, %r5};\n st.global.u32 [%rd5+16], %r6;\n"
    " ret;\n}\n";
static uint32_t tf32_model(uint32_t u, int rm, int relu) { /* rm: 0 rna, 1 rn, 2 rz */
    uint32_t o;
    if ((u & 0x7f800000u) == 0x7f800000u) o = (u & 0x7fffffu) ? 0x7fffffffu : u;
    else {
        const uint32_t low = u & 0x1fffu;
        o = u & ~0x1fffu;
        if (rm == 1) { if (low > 0x1000u || (low == 0x1000u && (o & 0x2000u))) o += 0x2000u; }
        else if (rm == 0 && low >= 0x1000u) o += 0x2000u;
    }
    if (relu && (o & 0x80000000u)) o = (o & 0x7fffffffu) > 0x7f800000u ? 0x7fffffffu : 0;
    return o;
}
static void test_cvt_tf32(void) {
    enum { T = 64 };
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(TF32_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    uint32_t *in = dev_alloc(0, T * 4), *out = dev_alloc(0, T * 32);
    const uint32_t edge[] = {0x3f801000u, 0x3f803000u, 0x3f800fffu, 0xbf801000u, 0x3fffffffu, 0x7f7fffffu, 0x7f800000u,
                             0xff800000u, 0x7fc00001u, 0xff800001u, 0x00000000u, 0x80000000u, 0x00001000u, 0x80001fffu};
    for (int i = 0; i < T; i++) in[i] = i < (int)(sizeof(edge) / 4) ? edge[i] : rnd();
    pbuf p = {{0}, 0};
    pptr(&p, in); pptr(&p, out);
    int rc = launch_in(m, "tf32cvt", 1, 1, 1, T, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    CHECK(rc == 0, "launch: %d %s", rc, log);
    CHECK(jit_compiled(m, "tf32cvt"), "the JIT did not compile tf32cvt (TF_EMU_TRACE=1 says why)");
    for (int i = 0; i < T; i++) {
        const uint32_t want[5] = {tf32_model(in[i], 0, 0), tf32_model(in[i], 1, 0), tf32_model(in[i], 2, 0),
                                  tf32_model(in[i], 0, 1), tf32_model(in[i], 1, 1)};
        for (int f = 0; f < 5; f++)
            CHECK(out[8 * i + f] == want[f], "input %#x form %d: %#x, want %#x", in[i], f, out[8 * i + f], want[f]);
    }
    dev_free(0, in); dev_free(0, out);
    ptx_module_free(m);
}

/* The JIT's checks once per block and per warp (ptx_jit_ir.c: the fast copy of a block with shared_groups, the
 * whole-warp global path from 4 chunk addresses) at their edges, on both engines: one warp; 4 linear shared
 * stores through one register; a global load at a byte offset gsh after one that learns the allocation (g:
 * 40 words), and a warp-uniform one at gu; then, for lanes below lim, a linear group ([r14], [r14+256], a store
 * at [r14+4]) and a broadcast group ([r15+8], [r15-8]), r14 = sm + 4*tid + sh, r15 = sm + sh + 64*tid.y (one
 * address per warp in a 32x1 block, one per half-warp in 16x2: the two fast copies), and a global store (to
 * an allocation stored to before, so the runtime knows it). Each fault mode must fail as the interpreter does (kind, instruction, first lane): an offset past the
 * end of shared memory, one below it, a misaligned register; a global access past the allocation's end (the
 * warp's last lane), before its start, misaligned, a uniform one at its end, and a warp whose addresses wrap
 * around past 2^64 (its chunks' first lanes near 2^64, its last lanes at 0). lim < 32 (a partial warp)
 * must leave the lanes that do not run untouched. */
static const char *FASTBLK_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry fastblk(.param .u64 o, .param .u64 g, .param .u32 sh, .param .u32 gsh, .param .u32 lim, .param .u32 gu,\n"
    " .param .u64 wild)\n{\n"
    " .reg .b32 %r<40>; .reg .b64 %rd<16>; .reg .pred %p<4>;\n"
    " .shared .align 16 .b32 sm[128];\n"
    " ld.param.u64 %rd1, [o]; ld.param.u64 %rd2, [g];\n"
    " ld.param.u32 %r2, [sh]; ld.param.u32 %r30, [gsh]; ld.param.u32 %r31, [lim]; ld.param.u32 %r32, [gu];\n"
    " mov.u32 %r3, %tid.x; mov.u32 %r4, %tid.y; mov.u32 %r5, %ntid.x; mad.lo.u32 %r3, %r4, %r5, %r3;\n"
    " mov.u32 %r7, sm; shl.b32 %r8, %r3, 2; add.u32 %r9, %r7, %r8; shl.b32 %r6, %r4, 6;\n"
    " mul.lo.u32 %r10, %r3, 7; add.u32 %r10, %r10, 1;\n"
    " st.shared.u32 [%r9], %r10; add.u32 %r11, %r10, 1000; st.shared.u32 [%r9+128], %r11;\n"
    " add.u32 %r11, %r10, 2000; st.shared.u32 [%r9+256], %r11; add.u32 %r11, %r10, 3000; st.shared.u32 [%r9+384], %r11;\n"
    " bar.sync 0;\n"
    " mul.wide.u32 %rd3, %r3, 4; add.s64 %rd4, %rd2, %rd3; ld.global.u32 %r12, [%rd4];\n"
    " cvt.s64.s32 %rd5, %r30; add.s64 %rd6, %rd4, %rd5;\n"
    " ld.global.u32 %r13, [%rd6];\n"
    " cvt.s64.s32 %rd9, %r32; add.s64 %rd9, %rd2, %rd9;\n"
    " ld.global.u32 %r22, [%rd9];\n"    " ld.param.u64 %rd10, [wild]; add.s64 %rd10, %rd10, %rd3;\n"
    " ld.global.u32 %r23, [%rd10];\n"
    " add.u32 %r14, %r9, %r2; add.u32 %r15, %r7, %r2; add.u32 %r15, %r15, %r6; add.s64 %rd7, %rd1, %rd3;\n"
    " st.global.u32 [%rd7], %r12; mov.u32 %r16, 0; mov.u32 %r17, 0; mov.u32 %r18, 0; mov.u32 %r19, 0;\n"
    " setp.ge.u32 %p1, %r3, %r31; @%p1 bra SKIP;\n"
    " ld.shared.u32 %r16, [%r14];\n"
    " ld.shared.u32 %r17, [%r14+256];\n"
    " ld.shared.u32 %r18, [%r15+8];\n"
    " ld.shared.u32 %r19, [%r15+-8];\n"
    " add.u32 %r20, %r16, %r18; st.shared.u32 [%r14+4], %r20; st.global.u32 [%rd7+896], %r20;\n"
    "SKIP:\n"
    " bar.sync 0;\n"
    " ld.shared.u32 %r21, [%r9];\n"
    " st.global.u32 [%rd7+128], %r13; st.global.u32 [%rd7+256], %r16;\n"
    " st.global.u32 [%rd7+384], %r17; st.global.u32 [%rd7+512], %r18; st.global.u32 [%rd7+640], %r19;\n"
    " st.global.u32 [%rd7+768], %r21; st.global.u32 [%rd7+1024], %r22; st.global.u32 [%rd7+1152], %r23;\n"
    " ret;\n}\n";
/* the PTX line (1-based) of the first line of text holding needle */
static unsigned ptx_line_of(const char *text, const char *needle) {
    const char *at = strstr(text, needle);
    unsigned line = 1;
    for (const char *c = text; at && c < at; c++) line += *c == '\n';
    return at ? line : 0;
}
static void test_jit_fast_checks(void) {
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(FASTBLK_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    uint32_t *o = dev_alloc(0, 10 * 32 * 4), *gm = dev_alloc(0, 40 * 4);
    for (int i = 0; i < 40; i++) gm[i] = 0x1000u + 3u * (unsigned)i;
#define SMV(w) ((uint32_t)((w) % 32) * 7u + 1u + 1000u * (uint32_t)((w) / 32))
    /* block width bx (x 32/bx); sh, gsh, lim, gu, wild (0: g; else g's lanes at 2^64 - wild, the last ones wrapped
     * around to 0); then rc, kind, space, the faulting instruction, thread */
    static const struct { int bx, sh, gsh, lim, gu, wild, rc; const char *kind, *space, *ins; int thread; } C[] = {
        {32, 8, 4, 32, 156, 0, 0, NULL, NULL, NULL, 0},
        {32, 8, 4, 20, 156, 0, 0, NULL, NULL, NULL, 0},
        {32, 136, 4, 32, 156, 0, 700, "illegal load from", "shared", "[%r14+256]", 30},
        {32, 4, 4, 32, 156, 0, 700, "illegal load from", "shared", "[%r15+-8]", 0},
        {32, 10, 4, 32, 156, 0, 716, "misaligned load from", "shared", "%r16, [%r14];", 0},
        {32, 8, 36, 32, 156, 0, 700, "illegal load from", "global", "[%rd6]", 31},
        {32, 8, -8, 32, 156, 0, 700, "illegal load from", "global", "[%rd6]", 0},
        {32, 8, 2, 32, 156, 0, 716, "misaligned load from", "global", "[%rd6]", 0},
        {32, 8, 4, 32, 160, 0, 700, "illegal load from", "global", "[%rd9]", 0},
        {16, 8, 4, 32, 156, 0, 0, NULL, NULL, NULL, 0},
        {16, 8, 4, 24, 156, 0, 0, NULL, NULL, NULL, 0},
        {16, 4, 4, 32, 156, 0, 700, "illegal load from", "shared", "[%r15+-8]", 0},
        {32, 8, 4, 32, 156, 100, 700, "illegal load from", "global", "[%rd10]", 0},
    };
    for (size_t c = 0; c < sizeof(C) / sizeof(C[0]); c++) {
        for (int i = 0; i < 10 * 32; i++) o[i] = 0xdeadbeefu;
        pbuf p = {{0}, 0};
        pptr(&p, o); pptr(&p, gm); pint(&p, C[c].sh); pint(&p, C[c].gsh); pint(&p, C[c].lim); pint(&p, C[c].gu);
        const uint64_t wild = C[c].wild ? 0 - (uint64_t)C[c].wild : (uint64_t)(uintptr_t)gm;
        pput(&p, &wild, 8);
        const int bx = C[c].bx;
        int rc = launch_in(m, "fastblk", 1, 1, 1, (unsigned)bx, 32u / (unsigned)bx, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
        CHECK(rc == C[c].rc, "case %zu: rc %d, want %d (%s)", c, rc, C[c].rc, log);
        if (rc) {
            char line[32], thread[48];
            snprintf(line, sizeof(line), "PTX line %u,", ptx_line_of(FASTBLK_PTX, C[c].ins));
            snprintf(thread, sizeof(thread), "thread (%d,0,0)", C[c].thread);
            CHECK(strstr(log, C[c].kind) && strstr(log, C[c].space) && strstr(log, line) && strstr(log, thread),
                  "case %zu: %s, want %s %s at %s %s", c, log, C[c].kind, C[c].space, line, thread);
            continue;
        }
        for (int t = 0; t < 32; t++) {
            /* lane t - sh/4 - 1 stored word t; r15's word is sh/4 + 16*ty */
            const int run = t < C[c].lim, w = t + C[c].sh / 4, b = C[c].sh / 4 + 16 * (t / bx);
            const int src = t - C[c].sh / 4 - 1, bsrc = C[c].sh / 4 + 16 * (src / bx);
            const uint32_t r16 = run ? SMV(w) : 0, r18 = run ? SMV(b + 2) : 0;
            const uint32_t want[10] = {0x1000u + 3u * (unsigned)t, 0x1000u + 3u * (unsigned)(t + 1), r16, run ? SMV(w + 64) : 0, r18,
                                      run ? SMV(b - 2) : 0,
                                      src >= 0 && src < C[c].lim ? SMV(t - 1) + SMV(bsrc + 2) : SMV(t),
                                      run ? r16 + r18 : 0xdeadbeefu, 0x1000u + 3u * 39u, 0x1000u + 3u * (unsigned)t};
            for (int k = 0; k < 10; k++)
                CHECK(o[k * 32 + t] == want[k], "case %zu lane %d word %d: %#x, want %#x", c, t, k, o[k * 32 + t], want[k]);
        }
    }
#undef SMV
    CHECK(jit_compiled(m, "fastblk"), "the JIT did not compile fastblk (TF_EMU_TRACE=1 says why)");
    dev_free(0, o); dev_free(0, gm);
    ptx_module_free(m);
}

/* The JIT's stride prefetch (ptx_jit_ir.c, gen_stride_prefetch) changes no value and skips no check, on both
 * engines: a block of 32 x W threads loops iters times over two whole-warp global loads, warp w of iteration i
 * reading the 32 words at row i*W + w of g (step bytes per row: the rows' lane-0 addresses one linear sequence
 * over the warps and iterations, as a tiled sgemm's rows of B) and of h (step2: another site, another
 * direction), with bar.sync between iterations so the warps interleave; lane l of the block stores sum over
 * the rows of (g word * (i + 1) + h word). The prefetches run up to PTX_JIT_PREFETCH_STRIDES rows past the
 * last row read (beyond the allocation's end, or below its start for a negative step) and must not fault; a
 * row past the end after the steps repeated (iters one too many) must fail as the interpreter does (kind,
 * instruction, first thread); a block of grid 3 on 2 workers (one runner's state carried over blocks)
 * must give the same sums. */
static const char *PFSTRIDE_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry pfstride(.param .u64 o, .param .u64 g, .param .u64 h, .param .u64 step, .param .u64 step2,\n"
    " .param .u32 iters)\n{\n"
    " .reg .b32 %r<16>; .reg .b64 %rd<16>; .reg .pred %p<2>;\n"
    " ld.param.u64 %rd1, [o]; ld.param.u64 %rd2, [g]; ld.param.u64 %rd9, [h];\n"
    " ld.param.u64 %rd3, [step]; ld.param.u64 %rd10, [step2]; ld.param.u32 %r1, [iters];\n"
    " mov.u32 %r2, %tid.x; mov.u32 %r3, %tid.y; mov.u32 %r4, %ntid.y; mov.u32 %r5, 0; mov.u32 %r6, 0;\n"
    " mul.wide.u32 %rd4, %r2, 4; add.s64 %rd5, %rd2, %rd4; add.s64 %rd11, %rd9, %rd4;\n"
    "LOOP:\n"
    " mad.lo.u32 %r7, %r5, %r4, %r3; cvt.u64.u32 %rd6, %r7;\n"
    " mul.lo.s64 %rd7, %rd6, %rd3; add.s64 %rd8, %rd5, %rd7;\n"
    " ld.global.u32 %r8, [%rd8];\n"
    " mul.lo.s64 %rd12, %rd6, %rd10; add.s64 %rd13, %rd11, %rd12;\n"
    " ld.global.u32 %r9, [%rd13];\n"
    " add.u32 %r10, %r5, 1; mad.lo.u32 %r6, %r8, %r10, %r6; add.u32 %r6, %r6, %r9;\n"
    " bar.sync 0;\n"
    " add.u32 %r5, %r5, 1; setp.lt.u32 %p1, %r5, %r1; @%p1 bra LOOP;\n"
    " mad.lo.u32 %r11, %r3, 32, %r2; mul.wide.u32 %rd14, %r11, 4; add.s64 %rd15, %rd1, %rd14;\n"
    " st.global.u32 [%rd15], %r6;\n"
    " ret;\n}\n";
static void test_jit_prefetch(void) {
    enum { W = 4, ROWS = 96 };
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(PFSTRIDE_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    /* row strides (bytes, multiples of 4 >= 128): +-4160 puts every row on a page of its own and is prefetched
     * (>= PTX_JIT_PREFETCH_MIN_STEP), +-256 and 128 are not */
    /* grows: g's rows (h has ROWS) */
    static const struct { int64_t step, step2; int iters, grows, grid, workers, rc; } C[] = {
        {256, -256, ROWS / W, ROWS, 1, 1, 0},
        {4160, 128, ROWS / W, ROWS, 1, 1, 0},
        {-4160, 4160, ROWS / W, ROWS, 1, 1, 0},
        {256, -4160, ROWS / W, ROWS, 3, 2, 0},
        {4160, 256, ROWS / W + 1, ROWS, 1, 1, 700},      /* g's row ROWS: past the end (warp 0 first) */
        {256, -4160, ROWS / W + 1, ROWS + W, 1, 1, 700}, /* h's row ROWS: below the start */
    };
    for (size_t c = 0; c < sizeof(C) / sizeof(C[0]); c++) {
        const uint64_t gbytes = (uint64_t)(C[c].step < 0 ? -C[c].step : C[c].step) * (uint64_t)(C[c].grows - 1) + 128;
        const uint64_t hbytes = (uint64_t)(C[c].step2 < 0 ? -C[c].step2 : C[c].step2) * (ROWS - 1) + 128;
        uint8_t *g = dev_alloc(0, gbytes), *h = dev_alloc(0, hbytes);
        uint32_t *o = dev_alloc(0, 32 * W * 4);
        CHECK(g && h && o, "alloc");
        /* row r's word l: r * 1000 + l (g), r * 7 + 3 * l (h) */
        uint8_t *g0 = C[c].step < 0 ? g + gbytes - 128 : g, *h0 = C[c].step2 < 0 ? h + hbytes - 128 : h;
        for (int r = 0; r < C[c].grows; r++)
            for (int l = 0; l < 32; l++) {
                uint32_t gv = (uint32_t)(r * 1000 + l), hv = (uint32_t)(r * 7 + 3 * l);
                memcpy(g0 + (int64_t)r * C[c].step + 4 * l, &gv, 4);
                if (r < ROWS) memcpy(h0 + (int64_t)r * C[c].step2 + 4 * l, &hv, 4);
            }
        for (int i = 0; i < 32 * W; i++) o[i] = 0xdeadbeefu;
        pbuf p = {{0}, 0};
        pptr(&p, o); pptr(&p, g0); pptr(&p, h0); pput(&p, &C[c].step, 8); pput(&p, &C[c].step2, 8); pint(&p, C[c].iters);
        int rc = launch_in(m, "pfstride", (unsigned)C[c].grid, 1, 1, 32, W, 1, 0, &p, C[c].workers, 0, log, sizeof(log), NULL);
        CHECK(rc == C[c].rc, "case %zu: rc %d, want %d (%s)", c, rc, C[c].rc, log);
        if (rc) {
            char line[32];
            snprintf(line, sizeof(line), "PTX line %u,", ptx_line_of(PFSTRIDE_PTX, c == 4 ? "[%rd8]" : "[%rd13]"));
            CHECK(strstr(log, "illegal load from") && strstr(log, "global") && strstr(log, line) && strstr(log, "thread (0,0,0)"),
                  "case %zu: %s, want an illegal global load at %s thread (0,0,0)", c, log, line);
        } else {
            for (int t = 0; t < 32 * W; t++) {
                const int l = t % 32, w = t / 32;
                uint32_t want = 0;
                for (int i = 0; i < C[c].iters; i++) {
                    const int r = i * W + w;
                    want += (uint32_t)(r * 1000 + l) * (uint32_t)(i + 1) + (uint32_t)(r * 7 + 3 * l);
                }
                CHECK(o[t] == want, "case %zu thread %d: %#x, want %#x", c, t, o[t], want);
            }
        }
        dev_free(0, g); dev_free(0, h); dev_free(0, o);
    }
    CHECK(jit_compiled(m, "pfstride"), "the JIT did not compile pfstride (TF_EMU_TRACE=1 says why)");
    ptx_module_free(m);
}

/* PTX that would exhaust host memory fails the load with a message instead. */
static void test_hostile_ptx(void) {
    static const char *cases[] = {
        ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{\n .reg .b32 %r<2000000000>;\n ret;\n}\n",
        ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{\n .local .b8 big[4000000000];\n ret;\n}\n",
        ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{\n .shared .b8 s[65536][65536][65536];\n ret;\n}\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int err = 0;
        char log[256] = "";
        ptx_module *m = ptx_module_load(cases[i], 0, &ENV, &err, log, sizeof(log));
        if (m) ptx_module_free(m);
        CHECK(!m && err == 218 && log[0], "case %zu: loaded=%d err=%d log=%s", i, m != NULL, err, log);
    }
    /* calls that double at every level: inlining would need 2^24 copies */
    char *text = malloc(64 * 1024);
    CHECK(text != NULL, "malloc");
    size_t n = (size_t)sprintf(text, ".version 8.0\n.target sm_80\n.address_size 64\n.func f24()\n{\n ret;\n}\n");
    for (int lvl = 23; lvl >= 0; lvl--)
        n += (size_t)sprintf(text + n, ".func f%d()\n{\n call.uni f%d;\n call.uni f%d;\n ret;\n}\n", lvl, lvl + 1, lvl + 1);
    n += (size_t)sprintf(text + n, ".visible .entry k()\n{\n call.uni f0;\n ret;\n}\n");
    int err = 0;
    char log[256] = "";
    ptx_module *m = ptx_module_load(text, n, &ENV, &err, log, sizeof(log));
    free(text);
    if (m) ptx_module_free(m);
    CHECK(!m && strstr(log, "too many instructions"), "exponential inlining: loaded=%d log=%s", m != NULL, log);
}

/* Lazy loading (ptx_module_open): a module opens with its variables and every kernel's name and parameters, no
 * body decoded; a body is decoded at ptx_kernel_decode (once; a failure is remembered with its reason), and a
 * header error still fails the open. */
static void test_lazy_open(void) {
    static const char text[] =
        ".version 8.0\n.target sm_80\n.address_size 64\n"
        ".global .align 4 .u32 g = 7;\n"
        ".func (.param .b32 r) twice(.param .b32 x)\n{\n .reg .b32 %t<2>;\n ld.param.b32 %t0, [x];\n"
        " add.u32 %t1, %t0, %t0;\n st.param.b32 [r], %t1;\n ret;\n}\n"
        ".visible .entry good(.param .u64 p, .param .u32 v)\n{\n .reg .u64 %rd<2>;\n .reg .u32 %r<3>;\n"
        " ld.param.u64 %rd1, [p];\n ld.param.u32 %r1, [v];\n ld.global.u32 %r2, [g];\n add.u32 %r1, %r1, %r2;\n"
        " {\n .param .b32 pa;\n st.param.b32 [pa], %r1;\n .param .b32 pr;\n call.uni (pr), twice, (pa);\n"
        " ld.param.b32 %r1, [pr];\n }\n st.global.u32 [%rd1], %r1;\n ret;\n}\n"
        ".visible .entry bad()\n{\n bra.uni NOWHERE;\n ret;\n}\n";
    int err = -1;
    char log[256] = "";
    ptx_module *m = ptx_module_open(text, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "open -> %p %d %s", (void *)m, err, log);
    if (!m) return;
    CHECK(ptx_module_kernel_count(m) == 2, "kernels %d", ptx_module_kernel_count(m));
    const ptx_kernel *good = ptx_module_get_kernel(m, "good"), *bad = ptx_module_get_kernel(m, "bad");
    CHECK(good && bad && !ptx_kernel_is_decoded(good) && !ptx_kernel_is_decoded(bad), "nothing decoded at open");
    size_t off = 0, sz = 0;
    CHECK(ptx_kernel_param_count(good) == 2 && ptx_kernel_param_info(good, 1, &off, &sz) == 0 && off == 8 && sz == 4 &&
          ptx_kernel_param_buffer_size(good) == 12, "parameters from the header: off %zu size %zu", off, sz);
    uint64_t gaddr = 0;
    size_t gbytes = 0;
    CHECK(ptx_module_get_global(m, "g", &gaddr, &gbytes) == 0 && gbytes == 4 && *(uint32_t *)(uintptr_t)gaddr == 7,
          "a variable is allocated and initialized at open");
    CHECK(ptx_kernel_decode(bad, log, sizeof(log)) == 218 && strstr(log, "NOWHERE"), "bad body -> %s", log);
    log[0] = 0;
    CHECK(ptx_kernel_decode(bad, log, sizeof(log)) == 218 && strstr(log, "NOWHERE"), "remembered -> %s", log);
    CHECK(!ptx_kernel_is_decoded(bad), "a failed kernel is not decoded");
    CHECK(ptx_kernel_decode(good, log, sizeof(log)) == 0 && ptx_kernel_is_decoded(good), "good -> %s", log);
    CHECK(ptx_kernel_decode(good, log, sizeof(log)) == 0, "decoding twice is a no-op");
    uint32_t *out = dev_alloc(0, 4);
    *(uint32_t *)(uintptr_t)gaddr = 5;
    pbuf p = {{0}, 0};
    pptr(&p, out);
    pint(&p, 10);
    int r = launch_k(good, 1, 1, 1, 1, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 0 && *out == 30, "lazily decoded kernel ran: rc %d out %u (%s)", r, *out, log);
    dev_free(0, out);
    ptx_module_free(m);
    /* the eager load of the same text fails on the bad body; a bad header fails the open itself */
    m = ptx_module_load(text, 0, &ENV, &err, log, sizeof(log));
    CHECK(!m && err == 218, "eager load of a bad body -> %p %d", (void *)m, err);
    if (m) ptx_module_free(m);
    m = ptx_module_open(".version 8.0\n.target sm_80\n.entry x( {\n", 0, &ENV, &err, log, sizeof(log));
    CHECK(!m && err == 218 && log[0], "bad header -> %p %d %s", (void *)m, err, log);
    if (m) ptx_module_free(m);
}

static void test_recursion(void) {
    int *n = dev_alloc(0, 32 * 4), *out = dev_alloc(0, 32 * 4);
    static const int fibs[] = {0, 1, 1, 2, 3, 5, 8, 13};
    for (int t = 0; t < 32; t++) n[t] = t % 8;
    pbuf p = {{0}, 0};
    pptr(&p, n); pptr(&p, out);
    LAUNCH_OK("recursive", 1, 32, 0, &p, 1);
    for (int t = 0; t < 32; t++) CHECK(out[t] == fibs[t % 8], "fib(%d)=%d", t % 8, out[t]);
    n[5] = 20;
    char log[512];
    int r = launch("recursive", 1, 1, 1, 32, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 715 && strstr(log, "recursion"), "deep recursion -> %d (%s)", r, log);
    dev_free(0, n); dev_free(0, out);
}

static void test_video(void) {
    enum { T = 64 };
    unsigned *a = dev_alloc(0, T * 4), *b = dev_alloc(0, T * 4), *o = dev_alloc(0, T * 16);
    for (int i = 0; i < T; i++) { a[i] = rnd(); b[i] = rnd(); }
    pbuf p = {{0}, 0};
    pptr(&p, a); pptr(&p, b); pptr(&p, o);
    LAUNCH_OK("video", 1, T, 0, &p, 1);
    for (int t = 0; t < T; t++) {
        unsigned du = 0, su = 0, ds = 0, ss = 0;
        for (int k = 0; k < 4; k++) {
            int xu = (int)((a[t] >> (8 * k)) & 0xff), yu = (int)((b[t] >> (8 * k)) & 0xff);
            int xs = (int)(signed char)(a[t] >> (8 * k)), ys = (int)(signed char)(b[t] >> (8 * k));
            unsigned eu = (unsigned)abs(xu - yu), es = (unsigned)abs(xs - ys);
            du |= (eu & 0xff) << (8 * k);
            ds |= (es & 0xff) << (8 * k);
            su += eu;
            ss += es;
        }
        CHECK(o[4 * t] == du && o[4 * t + 1] == su && o[4 * t + 2] == ds && o[4 * t + 3] == ss,
              "thread %d: %#x %u %#x %u want %#x %u %#x %u", t, o[4 * t], o[4 * t + 1], o[4 * t + 2], o[4 * t + 3], du, su, ds, ss);
    }
    dev_free(0, a); dev_free(0, b); dev_free(0, o);
}

/* Instructions the JIT runs through the interpreter's own lane function (ptx_alu_lane via ptx_jit_alu),
 * each compared with a C reference on both engines; with TF_EMU_ENGINE=jit the kernel must have been
 * compiled (not left to the interpreter). NaNs, negative zeros and a guarded (divergent) instruction
 * included: the helper must write only the executing lanes. */
static const char *JALU_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry jalu(.param .u64 pf, .param .u64 pd, .param .u64 pu, .param .u64 po)\n{\n"
    " .reg .b16 %h<4>; .reg .b32 %r<40>; .reg .f32 %f<30>; .reg .f64 %fd<12>; .reg .b64 %rd<20>; .reg .pred %p<4>;\n"
    " ld.param.u64 %rd1, [pf]; ld.param.u64 %rd2, [pd]; ld.param.u64 %rd3, [pu]; ld.param.u64 %rd4, [po];\n"
    " mov.u32 %r1, %tid.x;\n"
    " mul.wide.u32 %rd5, %r1, 8; add.s64 %rd6, %rd1, %rd5; ld.global.v2.f32 {%f1, %f2}, [%rd6];\n"
    " mul.wide.u32 %rd7, %r1, 16; add.s64 %rd8, %rd2, %rd7; ld.global.v2.f64 {%fd1, %fd2}, [%rd8];\n"
    " add.s64 %rd9, %rd3, %rd5; ld.global.v2.u32 {%r2, %r3}, [%rd9];\n"
    " mul.wide.u32 %rd10, %r1, 224; add.s64 %rd11, %rd4, %rd10;\n"
    " max.f64 %fd3, %fd1, %fd2; st.global.f64 [%rd11], %fd3;\n"
    " min.f64 %fd4, %fd1, %fd2; st.global.f64 [%rd11+8], %fd4;\n"
    " rcp.approx.f32 %f3, %f1; st.global.f32 [%rd11+16], %f3;\n"
    " ex2.approx.f32 %f4, %f1; st.global.f32 [%rd11+24], %f4;\n"
    " abs.f32 %f5, %f2; lg2.approx.f32 %f6, %f5; st.global.f32 [%rd11+32], %f6;\n"
    " sqrt.rn.f32 %f7, %f5; st.global.f32 [%rd11+40], %f7;\n"
    " sin.approx.f32 %f8, %f1; st.global.f32 [%rd11+48], %f8;\n"
    " and.b32 %r4, %r3, 31; shr.u32 %r5, %r3, 5; and.b32 %r5, %r5, 31;\n"
    " mov.u32 %r6, 7; and.b32 %r7, %r1, 1; setp.eq.u32 %p1, %r7, 1;\n"
    " @%p1 bfe.u32 %r6, %r2, %r4, %r5; st.global.u32 [%rd11+56], %r6;\n"
    " bfe.s32 %r8, %r2, %r4, %r5; st.global.u32 [%rd11+64], %r8;\n"
    " bfi.b32 %r9, %r2, %r3, %r4, %r5; st.global.u32 [%rd11+72], %r9;\n"
    " prmt.b32 %r10, %r2, %r3, %r3; st.global.u32 [%rd11+80], %r10;\n"
    " slct.u32.f32 %r11, 1, 0, %f1; st.global.u32 [%rd11+88], %r11;\n"
    " set.lt.u32.f32 %r12, %f1, %f2; st.global.u32 [%rd11+96], %r12;\n"
    " mad.hi.u32 %r13, %r2, %r3, %r2; st.global.u32 [%rd11+104], %r13;\n"
    " mul24.lo.s32 %r14, %r2, %r3; st.global.u32 [%rd11+112], %r14;\n"
    " sad.u32 %r15, %r2, %r3, %r1; st.global.u32 [%rd11+120], %r15;\n"
    " add.sat.s32 %r16, %r2, %r3; st.global.u32 [%rd11+128], %r16;\n"
    " dp4a.u32.u32 %r17, %r2, %r3, %r1; st.global.u32 [%rd11+136], %r17;\n"
    " bfind.u32 %r18, %r2; st.global.u32 [%rd11+144], %r18;\n"
    " copysign.f32 %f9, %f2, %f1; st.global.f32 [%rd11+152], %f9;\n"
    " rsqrt.approx.f64 %fd5, %fd1; st.global.f64 [%rd11+160], %fd5;\n"
    " setp.lt.ftz.f32 %p3, %f1, %f2; selp.u32 %r19, 1, 0, %p3; st.global.u32 [%rd11+168], %r19;\n"
    " mul.rz.f32 %f10, %f1, %f2; st.global.f32 [%rd11+176], %f10;\n"
    " mov.b64 %rd12, {%r2, %r3}; st.global.u64 [%rd11+184], %rd12;\n"
    " mov.b64 {%r20, %r21}, %rd12; st.global.u32 [%rd11+192], %r21;\n"
    " mov.b32 {%h1, %h2}, %r2; mov.b32 %r22, {%h2, %h1}; st.global.u32 [%rd11+200], %r22;\n"
    " div.u16 %h3, %h1, %h2; cvt.u32.u16 %r23, %h3; st.global.u32 [%rd11+208], %r23;\n"
    " rem.s16 %h3, %h1, %h2; cvt.u32.u16 %r24, %h3; st.global.u32 [%rd11+216], %r24;\n"
    " ret;\n}\n";

static uint32_t bfe_ref(uint32_t a, uint32_t pos, uint32_t len, int sg) {
    uint32_t d = 0, sbit = 0;
    if (sg && len) sbit = (a >> (pos + len - 1 > 31 ? 31 : pos + len - 1)) & 1;
    for (uint32_t i = 0; i < 32; i++) d |= (i < len && pos + i <= 31 ? (a >> (pos + i)) & 1 : sbit) << i;
    return d;
}

/* Barriers on both engines (the JIT runs a block's warps in rounds inside its generated code, ptx_jit.h):
 * jbar_spin: warp 0 spins on a shared flag that warp 1 sets before its barrier (warp 0 yields while warp 1
 * waits; a release before warp 0 arrives reads its values unwritten), then a named barrier with a count;
 * jbar_div: a warp's even and odd lanes wait at two different bar.sync (no converged warp: the dispatcher's
 * resume); jbar_exit: lanes that exited before the barrier and a partial last warp; jbar_red: bar.red's
 * popc/or/and over a partial warp with exited lanes and a negated predicate; jbar_err: block 0 keeps the
 * launching thread 3 ms (past ptx_exec.c's solo budget, so the second worker joins), then of blocks 1 and 2 (one
 * per worker) the first loops on bar.sync forever and the second waits for it, then faults: a loop with a
 * barrier never yields, so the launch ends (with the fault) only if the release reads the launch's error word. */
static const char *JBAR_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".shared .align 4 .b32 flag;\n.shared .align 4 .b32 sv[64];\n"
    ".visible .entry jbar_spin(.param .u64 out)\n{\n.reg .pred %p<4>;\n.reg .b32 %r<16>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; cvta.to.global.u64 %rd1, %rd1;\n"
    " mov.u32 %r1, %tid.x; mov.u32 %r2, sv; shl.b32 %r3, %r1, 2; add.u32 %r4, %r2, %r3;\n"
    " mul.lo.u32 %r5, %r1, 7; add.u32 %r5, %r5, 3;\n"
    " setp.lt.u32 %p1, %r1, 32;\n @%p1 bra SPIN;\n"
    " st.shared.u32 [%r4], %r5; st.shared.u32 [flag], 1;\n bra BAR;\n"
    "SPIN:\n ld.volatile.shared.u32 %r6, [flag]; setp.eq.u32 %p3, %r6, 0; @%p3 bra SPIN;\n"
    " st.shared.u32 [%r4], %r5;\n"
    "BAR:\n bar.sync 0;\n"
    " xor.b32 %r7, %r1, 32; shl.b32 %r8, %r7, 2; add.u32 %r9, %r2, %r8; ld.shared.u32 %r10, [%r9];\n"
    " bar.sync 1, 64;\n st.shared.u32 [%r4], %r10;\n barrier.sync.aligned 0;\n"
    " xor.b32 %r11, %r1, 1; shl.b32 %r12, %r11, 2; add.u32 %r13, %r2, %r12; ld.shared.u32 %r14, [%r13];\n"
    " mul.wide.u32 %rd2, %r1, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r14;\n"
    " ret;\n}\n"
    ".visible .entry jbar_div(.param .u64 out)\n{\n.reg .pred %p<4>;\n.reg .b32 %r<16>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; cvta.to.global.u64 %rd1, %rd1;\n"
    " mov.u32 %r1, %tid.x; mov.u32 %r2, sv; shl.b32 %r3, %r1, 2; add.u32 %r4, %r2, %r3;\n"
    " mul.lo.u32 %r5, %r1, 13; add.u32 %r5, %r5, 1; st.shared.u32 [%r4], %r5;\n"
    " and.b32 %r6, %r1, 1; setp.eq.u32 %p1, %r6, 1; mov.u32 %r7, 100;\n"
    " @%p1 bra ODD;\n bar.sync 0;\n mov.u32 %r7, 200;\n bra JOIN;\n"
    "ODD:\n bar.sync 0;\n add.u32 %r7, %r7, 300;\n"
    "JOIN:\n xor.b32 %r8, %r1, 1; shl.b32 %r9, %r8, 2; add.u32 %r10, %r2, %r9; ld.shared.u32 %r11, [%r10];\n"
    " add.u32 %r11, %r11, %r7;\n"
    " mul.wide.u32 %rd2, %r1, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r11;\n"
    " ret;\n}\n"
    ".visible .entry jbar_exit(.param .u64 out)\n{\n.reg .pred %p<4>;\n.reg .b32 %r<16>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; cvta.to.global.u64 %rd1, %rd1;\n"
    " mov.u32 %r1, %tid.x; mov.u32 %r12, %ntid.x; mov.u32 %r2, sv; shl.b32 %r3, %r1, 2; add.u32 %r4, %r2, %r3;\n"
    " rem.u32 %r5, %r1, 5; setp.eq.u32 %p1, %r5, 0; @%p1 exit;\n"
    " mov.u32 %r13, 0;\n"
    "LOOP:\n mad.lo.u32 %r6, %r1, 11, %r13; st.shared.u32 [%r4], %r6;\n bar.sync 0;\n"
    " add.u32 %r7, %r1, 1; rem.u32 %r7, %r7, %r12; rem.u32 %r8, %r7, 5; setp.eq.u32 %p2, %r8, 0;\n"
    " @%p2 add.u32 %r7, %r7, 1; rem.u32 %r7, %r7, %r12;\n"
    " shl.b32 %r9, %r7, 2; add.u32 %r10, %r2, %r9; ld.shared.u32 %r11, [%r10];\n"
    " mul.lo.u32 %r14, %r13, 64; add.u32 %r14, %r14, %r1; mul.wide.u32 %rd2, %r14, 4; add.s64 %rd3, %rd1, %rd2;\n"
    " st.global.u32 [%rd3], %r11;\n bar.sync 0;\n"
    " add.u32 %r13, %r13, 1; setp.lt.u32 %p3, %r13, 3; @%p3 bra LOOP;\n"
    " ret;\n}\n"
    ".visible .entry jbar_red(.param .u64 out)\n{\n.reg .pred %p<6>;\n.reg .b32 %r<12>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; cvta.to.global.u64 %rd1, %rd1;\n"
    " mov.u32 %r1, %tid.x; rem.u32 %r2, %r1, 7; setp.eq.u32 %p1, %r2, 0; @%p1 exit;\n"
    " and.b32 %r3, %r1, 3; setp.eq.u32 %p2, %r3, 1;\n"
    " bar.red.popc.u32 %r4, 0, %p2;\n bar.red.or.pred %p3, 0, !%p2;\n bar.red.and.pred %p4, 0, !%p2;\n"
    " setp.lt.u32 %p5, %r1, 1000;\n barrier.red.and.pred %p5, 0, %p5;\n"
    " selp.u32 %r5, 100, 0, %p3; selp.u32 %r6, 1000, 0, %p4; selp.u32 %r7, 10000, 0, %p5;\n"
    " add.u32 %r8, %r4, %r5; add.u32 %r8, %r8, %r6; add.u32 %r8, %r8, %r7;\n"
    " mul.wide.u32 %rd2, %r1, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r8;\n"
    " ret;\n}\n"
    ".shared .align 4 .b32 ticket;\n"
    ".visible .entry jbar_err(.param .u64 flagp)\n{\n.reg .pred %p<6>;\n.reg .b32 %r<8>;\n.reg .b64 %rd<8>;\n"
    " ld.param.u64 %rd1, [flagp];\n"
    " mov.u32 %r1, %ctaid.x; mov.u32 %r2, %tid.x; setp.ne.u32 %p1, %r1, 0;\n @%p1 bra ROLE;\n"
    " mov.u64 %rd4, %globaltimer;\n"
    "WAIT0:\n mov.u64 %rd5, %globaltimer; sub.u64 %rd6, %rd5, %rd4; setp.lt.u64 %p2, %rd6, 3000000; @%p2 bra WAIT0;\n ret;\n"
    "ROLE:\n setp.eq.u32 %p3, %r2, 0;\n @%p3 atom.global.add.u32 %r3, [%rd1+8], 1;\n @%p3 st.shared.u32 [ticket], %r3;\n"
    " bar.sync 0;\n ld.shared.u32 %r3, [ticket]; setp.ne.u32 %p4, %r3, 0; @%p4 bra FAULT;\n"
    " mov.u32 %r5, 1; st.volatile.global.u32 [%rd1+4], %r5;\n"
    "LOOP:\n bar.sync 0;\n ld.volatile.global.u32 %r4, [%rd1]; setp.eq.u32 %p2, %r4, 0; @%p2 bra LOOP;\n ret;\n"
    "FAULT:\n ld.volatile.global.u32 %r6, [%rd1+4]; setp.eq.u32 %p2, %r6, 0; @%p2 bra FAULT;\n"
    " bar.sync 0;\n mov.u64 %rd2, 8;\n @%p3 ld.global.u32 %r7, [%rd2];\n bar.sync 0;\n ret;\n}\n";

static void jbar_err_hung(int sig) {
    (void)sig;
    static const char msg[] = "FAIL jit_bar: jbar_err still runs after 120 s (the block looping on bar.sync missed the fault)\n";
    if (write(2, msg, sizeof(msg) - 1) < 0) _exit(3);
    _exit(1);
}

static void test_jit_bar(void) {
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(JBAR_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    if (!m) return;
    uint32_t *o = dev_alloc(0, 3 * 64 * 4), *fl = dev_alloc(0, 12);
    pbuf p = {{0}, 0};
    pptr(&p, o);
    memset(o, 0xee, 3 * 64 * 4);
    CHECK(launch_in(m, "jbar_spin", 1, 1, 1, 64, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL) == 0, "jbar_spin: %s", log);
    for (uint32_t t = 0; t < 64; t++) {
        const uint32_t u = t ^ 1, want = (u ^ 32) * 7 + 3;
        CHECK(o[t] == want, "jbar_spin thread %u: %u want %u", t, o[t], want);
    }
    memset(o, 0xee, 3 * 64 * 4);
    CHECK(launch_in(m, "jbar_div", 1, 1, 1, 64, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL) == 0, "jbar_div: %s", log);
    for (uint32_t t = 0; t < 64; t++) {
        const uint32_t want = (t ^ 1) * 13 + 1 + ((t & 1) ? 400 : 200);
        CHECK(o[t] == want, "jbar_div thread %u: %u want %u", t, o[t], want);
    }
    const uint32_t T = 48;
    memset(o, 0xee, 3 * 64 * 4);
    CHECK(launch_in(m, "jbar_exit", 2, 1, 1, T, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL) == 0, "jbar_exit: %s", log);
    for (uint32_t it = 0; it < 3; it++)
        for (uint32_t t = 0; t < 64; t++) {
            uint32_t nx = (t + 1) % T;
            if (nx % 5 == 0) nx = (nx + 1) % T;
            const uint32_t want = t >= T || t % 5 == 0 ? 0xeeeeeeeeu : nx * 11 + it;
            CHECK(o[it * 64 + t] == want, "jbar_exit step %u thread %u: %u want %u", it, t, o[it * 64 + t], want);
        }
    memset(o, 0xee, 3 * 64 * 4);
    CHECK(launch_in(m, "jbar_red", 1, 1, 1, T, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL) == 0, "jbar_red: %s", log);
    {
        uint32_t cnt = 0, any_not = 0, all_not = 1;
        for (uint32_t t = 0; t < T; t++)
            if (t % 7) { cnt += (t & 3) == 1; any_not |= (t & 3) != 1; all_not &= (t & 3) != 1; }
        for (uint32_t t = 0; t < 64; t++) {
            const uint32_t want = t >= T || t % 7 == 0 ? 0xeeeeeeeeu : cnt + 100 * any_not + 1000 * all_not + 10000;
            CHECK(o[t] == want, "jbar_red thread %u: %u want %u", t, o[t], want);
        }
    }
    fl[0] = fl[1] = fl[2] = 0;
    pbuf q = {{0}, 0};
    pptr(&q, fl);
    signal(SIGALRM, jbar_err_hung);
    alarm(120);
    int r = launch_in(m, "jbar_err", 3, 1, 1, 64, 1, 1, 0, &q, 2, 0, log, sizeof(log), NULL);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    CHECK(r == 700 && strstr(log, "jbar_err"), "jbar_err -> %d (%s)", r, log);
    const char *names[] = {"jbar_spin", "jbar_div", "jbar_exit", "jbar_red", "jbar_err"};
    for (int i = 0; i < 5; i++) CHECK(jit_compiled(m, names[i]), "the JIT did not compile %s (TF_EMU_TRACE=1 says why)", names[i]);
    dev_free(0, o);
    dev_free(0, fl);
    ptx_module_free(m);
}

/* Named barriers (bar / barrier, 16 per block) with thread counts and bar.arrive, as the PTX ISA gives them:
 * nb_pc: warps 0-1 produce into a shared buffer and warps 2-3 consume it, each side waiting (bar.sync) on the
 * barrier the other side only arrives at (bar.arrive 1 / 2, 128: "full" and "empty"), and the consumers swap
 * values among themselves over barrier 3 of 64 threads, which the producers never touch; nb_red: two bar.red
 * of 64 threads at once on barriers 4 and 5, each half counting its own predicate; nb_reg: barrier number and
 * count from registers (halves on barriers 7 and 8); nb_exit: a count of the whole block where lanes 0-15 exited
 * (the warp arrives with the lanes it has: the JIT runs this one too); nb_dead: a count above the block's
 * threads, which would hang a GPU: the launch fails instead. Bad forms are refused at load. */
static const char *NB_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".shared .align 4 .b32 nbuf[64];\n.shared .align 4 .b32 nx[128];\n"
    ".visible .entry nb_pc(.param .u64 out)\n{\n.reg .pred %p<4>;\n.reg .b32 %r<24>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; cvta.to.global.u64 %rd1, %rd1;\n"
    " mov.u32 %r1, %tid.x; mov.u32 %r2, nbuf; mov.u32 %r3, 0; mov.u32 %r20, 0;\n"
    " setp.ge.u32 %p1, %r1, 64; @%p1 bra CONS;\n"
    "PROD:\n bar.sync 2, 128;\n"
    " mad.lo.u32 %r4, %r3, 1000, %r1; mul.lo.u32 %r4, %r4, 3; shl.b32 %r5, %r1, 2; add.u32 %r6, %r2, %r5;\n"
    " st.shared.u32 [%r6], %r4;\n bar.arrive 1, 128;\n"
    " add.u32 %r3, %r3, 1; setp.lt.u32 %p2, %r3, 4; @%p2 bra PROD;\n ret;\n"
    "CONS:\n sub.u32 %r7, %r1, 64; mov.u32 %r8, nx;\n"
    "CLOOP:\n barrier.cta.arrive.aligned 2, 128;\n barrier.sync 1, 128;\n"
    " xor.b32 %r9, %r7, 5; shl.b32 %r10, %r9, 2; add.u32 %r11, %r2, %r10; ld.shared.u32 %r12, [%r11];\n"
    " shl.b32 %r13, %r7, 2; add.u32 %r14, %r8, %r13; st.shared.u32 [%r14], %r12;\n bar.sync 3, 64;\n"
    " xor.b32 %r15, %r7, 32; shl.b32 %r16, %r15, 2; add.u32 %r17, %r8, %r16; ld.shared.u32 %r18, [%r17];\n"
    " bar.cta.sync 3, 64;\n mad.lo.u32 %r20, %r20, 7, %r18;\n"
    " add.u32 %r3, %r3, 1; setp.lt.u32 %p2, %r3, 4; @%p2 bra CLOOP;\n"
    " mul.wide.u32 %rd2, %r7, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r20;\n ret;\n}\n"
    ".visible .entry nb_red(.param .u64 out)\n{\n.reg .pred %p<6>;\n.reg .b32 %r<12>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; cvta.to.global.u64 %rd1, %rd1;\n mov.u32 %r1, %tid.x;\n"
    " setp.ge.u32 %p1, %r1, 64; @%p1 bra HI;\n"
    " rem.u32 %r2, %r1, 3; setp.eq.u32 %p2, %r2, 0;\n bar.red.popc.u32 %r3, 4, 64, %p2;\n"
    " bar.red.and.pred %p3, 4, 64, %p2;\n selp.u32 %r4, 1000, 0, %p3; add.u32 %r3, %r3, %r4;\n bra OUT;\n"
    "HI:\n rem.u32 %r2, %r1, 5; setp.eq.u32 %p2, %r2, 0;\n barrier.red.popc.aligned.u32 %r3, 5, 64, %p2;\n"
    " barrier.red.or.pred %p3, 5, 64, !%p2;\n selp.u32 %r4, 2000, 0, %p3; add.u32 %r3, %r3, %r4;\n"
    "OUT:\n mul.wide.u32 %rd2, %r1, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r3;\n ret;\n}\n"
    ".visible .entry nb_reg(.param .u64 out)\n{\n.reg .b32 %r<16>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; cvta.to.global.u64 %rd1, %rd1;\n"
    " mov.u32 %r1, %tid.x; mov.u32 %r2, nx; shl.b32 %r3, %r1, 2; add.u32 %r4, %r2, %r3;\n"
    " mad.lo.u32 %r5, %r1, 9, 1; st.shared.u32 [%r4], %r5;\n"
    " shr.u32 %r6, %r1, 6; add.u32 %r6, %r6, 7; mov.u32 %r7, 64;\n bar.sync %r6, %r7;\n"
    " xor.b32 %r8, %r1, 33; shl.b32 %r9, %r8, 2; add.u32 %r10, %r2, %r9; ld.shared.u32 %r11, [%r10];\n"
    " mul.wide.u32 %rd2, %r1, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r11;\n ret;\n}\n"
    ".visible .entry nb_exit(.param .u64 out)\n{\n.reg .pred %p<2>;\n.reg .b32 %r<16>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; cvta.to.global.u64 %rd1, %rd1;\n"
    " mov.u32 %r1, %tid.x; setp.lt.u32 %p1, %r1, 16; @%p1 exit;\n"
    " mov.u32 %r2, nx; shl.b32 %r3, %r1, 2; add.u32 %r4, %r2, %r3; add.u32 %r5, %r1, 5; st.shared.u32 [%r4], %r5;\n"
    " bar.sync 1, 64;\n"
    " add.u32 %r6, %r1, 8; rem.u32 %r6, %r6, 48; add.u32 %r6, %r6, 16; shl.b32 %r7, %r6, 2; add.u32 %r8, %r2, %r7;\n"
    " ld.shared.u32 %r9, [%r8];\n mul.wide.u32 %rd2, %r1, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r9;\n ret;\n}\n"
    ".visible .entry nb_dead()\n{\n bar.sync 1, 96;\n ret;\n}\n";

static void test_named_barriers(void) {
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(NB_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    uint32_t *o = dev_alloc(0, 128 * 4);
    pbuf p = {{0}, 0};
    pptr(&p, o);
    memset(o, 0xee, 128 * 4);
    CHECK(launch_in(m, "nb_pc", 3, 1, 1, 128, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL) == 0, "nb_pc: %s", log);
    for (uint32_t c = 0; c < 64; c++) {
        uint32_t acc = 0;
        for (uint32_t k = 0; k < 4; k++) acc = acc * 7 + (k * 1000 + ((c ^ 32) ^ 5)) * 3;
        CHECK(o[c] == acc, "nb_pc consumer %u: %u want %u", c, o[c], acc);
    }
    memset(o, 0xee, 128 * 4);
    CHECK(launch_in(m, "nb_red", 2, 1, 1, 128, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL) == 0, "nb_red: %s", log);
    for (uint32_t t = 0; t < 128; t++) {
        const uint32_t want = t < 64 ? 22 : 13 + 2000; /* 0,3,..,63; 65,70,..,125 (the or of !p is true) */
        CHECK(o[t] == want, "nb_red thread %u: %u want %u", t, o[t], want);
    }
    memset(o, 0xee, 128 * 4);
    CHECK(launch_in(m, "nb_reg", 2, 1, 1, 128, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL) == 0, "nb_reg: %s", log);
    for (uint32_t t = 0; t < 128; t++) CHECK(o[t] == (t ^ 33) * 9 + 1, "nb_reg thread %u: %u want %u", t, o[t], (t ^ 33) * 9 + 1);
    memset(o, 0xee, 128 * 4);
    CHECK(launch_in(m, "nb_exit", 2, 1, 1, 64, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL) == 0, "nb_exit: %s", log);
    for (uint32_t t = 0; t < 64; t++) {
        const uint32_t want = t < 16 ? 0xeeeeeeeeu : 16 + (t + 8) % 48 + 5;
        CHECK(o[t] == want, "nb_exit thread %u: %u want %u", t, o[t], want);
    }
    CHECK(jit_compiled(m, "nb_exit"), "the JIT did not compile nb_exit (TF_EMU_TRACE=1 says why)");
    int r = launch_in(m, "nb_dead", 1, 1, 1, 64, 1, 1, 0, NULL, 1, 0, log, sizeof(log), NULL);
    CHECK(r == 719 && strstr(log, "barrier deadlock"), "nb_dead -> %d (%s)", r, log);
    dev_free(0, o);
    ptx_module_free(m);
    static const char *bad[] = {"bar.arrive 1;", "barrier.arrive 2, 0;", "bar.sync 16;", "bar.sync 1, 48;", "bar.red.popc.u32 %r1, 1, 2, 3, %p1;"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char src[512];
        snprintf(src, sizeof(src), ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{\n.reg .pred %%p<2>;\n.reg .b32 %%r<2>;\n %s\n ret;\n}\n", bad[i]);
        ptx_module *bm = ptx_module_load(src, 0, &ENV, &err, log, sizeof(log));
        const ptx_kernel *bk = bm ? ptx_module_get_kernel(bm, "k") : NULL;
        int refused = !bm || !bk;
        if (bk) refused = launch_k(bk, 1, 1, 1, 32, 1, 1, 0, NULL, 1, 0, log, sizeof(log), NULL) != 0 && strstr(log, "bar");
        if (bm) ptx_module_free(bm);
        CHECK(refused, "'%s' was not refused (%d: %s)", bad[i], err, log);
    }
}

/* A kernel above PTX_JIT_FULL_OPT_INSTRUCTIONS: the JIT compiles it with its light pipeline (register slots
 * in memory, ptx_jit.h), which must give the interpreter's results: a divergent loop (per-thread trip
 * count) around a long chain, values live across a bar.sync and a shared-memory exchange. */
enum { JLONG_STEPS = 90, JLONG_T = 64 };
static char *jlong_ptx(void) {
    size_t cap = 1 << 16, n = 0;
    char *t = malloc(cap);
    if (!t) return NULL;
#define JP(...) (n += (size_t)snprintf(t + n, cap - n, __VA_ARGS__))
    JP(".version 8.0\n.target sm_80\n.address_size 64\n.shared .align 4 .b32 sh[%d];\n"
       ".visible .entry jlong(.param .u64 out)\n{\n.reg .pred %%p<3>;\n.reg .b32 %%r<16>;\n.reg .b64 %%rd<4>;\n"
       " ld.param.u64 %%rd1, [out]; cvta.to.global.u64 %%rd1, %%rd1;\n"
       " mov.u32 %%r1, %%tid.x; mov.u32 %%r2, 0; mov.u32 %%r3, %%r1; xor.b32 %%r4, %%r1, 0x5bd1e995;\n"
       " and.b32 %%r5, %%r1, 3; add.u32 %%r5, %%r5, 1;\n"
       "LOOP:\n", JLONG_T);
    for (int i = 0; i < JLONG_STEPS; i++)
        JP(" mad.lo.u32 %%r3, %%r3, 1664525, %u; shr.u32 %%r6, %%r3, %d; xor.b32 %%r4, %%r4, %%r6; add.u32 %%r3, %%r3, %%r4;\n",
           1013904223u ^ (uint32_t)i, i % 13 + 1);
    JP(" add.u32 %%r2, %%r2, 1; setp.lt.u32 %%p1, %%r2, %%r5; @%%p1 bra LOOP;\n"
       " mov.u32 %%r7, sh; shl.b32 %%r8, %%r1, 2; add.u32 %%r9, %%r7, %%r8; st.shared.u32 [%%r9], %%r3;\n"
       " bar.sync 0;\n"
       " add.u32 %%r10, %%r1, 1; and.b32 %%r10, %%r10, %d; shl.b32 %%r10, %%r10, 2; add.u32 %%r10, %%r7, %%r10;\n"
       " ld.shared.u32 %%r11, [%%r10]; xor.b32 %%r3, %%r3, %%r11;\n", JLONG_T - 1);
    for (int i = 0; i < JLONG_STEPS; i++)
        JP(" mad.lo.u32 %%r3, %%r3, 1664525, %u; shr.u32 %%r6, %%r3, %d; xor.b32 %%r4, %%r4, %%r6; add.u32 %%r3, %%r3, %%r4;\n",
           1013904223u ^ (uint32_t)i, i % 13 + 1);
    JP(" mul.wide.u32 %%rd2, %%r1, 8; add.s64 %%rd3, %%rd1, %%rd2; st.global.u32 [%%rd3], %%r3; st.global.u32 [%%rd3+4], %%r4;\n"
       " ret;\n}\n");
#undef JP
    return t;
}
static void test_jit_long(void) {
    char *src = jlong_ptx(), log[512];
    int err = 0;
    CHECK(src, "out of memory");
    if (!src) return;
    ptx_module *m = ptx_module_load(src, 0, &ENV, &err, log, sizeof(log));
    free(src);
    CHECK(m && err == 0, "load: %d %s", err, log);
    if (!m) return;
    const ptx_kernel *k = ptx_module_get_kernel(m, "jlong");
    CHECK(k && k->ncode > PTX_JIT_FULL_OPT_INSTRUCTIONS && k->ncode <= PTX_JIT_MAX_INSTRUCTIONS,
          "jlong has %d instructions, not between the JIT's tiers", k ? k->ncode : -1);
    uint32_t *o = dev_alloc(0, JLONG_T * 8);
    memset(o, 0, JLONG_T * 8);
    pbuf p = {{0}, 0};
    pptr(&p, o);
    int rc = launch_k(k, 1, 1, 1, JLONG_T, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    CHECK(rc == 0, "launch: %d %s", rc, log);
    CHECK(jit_compiled(m, "jlong"), "the JIT did not compile jlong (TF_EMU_TRACE=1 says why)");
    uint32_t x[JLONG_T], y[JLONG_T];
    for (int t = 0; t < JLONG_T; t++) {
        x[t] = (uint32_t)t;
        y[t] = (uint32_t)t ^ 0x5bd1e995u;
        for (int it = 0; it < (t & 3) + 1; it++)
            for (int i = 0; i < JLONG_STEPS; i++) {
                x[t] = x[t] * 1664525u + (1013904223u ^ (uint32_t)i);
                y[t] ^= x[t] >> (i % 13 + 1);
                x[t] += y[t];
            }
    }
    for (int t = 0; t < JLONG_T; t++) {
        uint32_t a = x[t] ^ x[(t + 1) % JLONG_T], b = y[t];
        for (int i = 0; i < JLONG_STEPS; i++) {
            a = a * 1664525u + (1013904223u ^ (uint32_t)i);
            b ^= a >> (i % 13 + 1);
            a += b;
        }
        CHECK(o[2 * t] == a && o[2 * t + 1] == b, "thread %d: %#x %#x, want %#x %#x", t, o[2 * t], o[2 * t + 1], a, b);
    }
    dev_free(0, o);
    ptx_module_free(m);
}

static void test_jit_alu(void) {
    enum { T = 64, K = 28 };
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(JALU_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    float *xf = dev_alloc(0, T * 8);
    double *xd = dev_alloc(0, T * 16);
    uint32_t *xu = dev_alloc(0, T * 8);
    uint64_t *o = dev_alloc(0, (size_t)T * K * 8);
    for (int i = 0; i < T; i++) {
        xf[2 * i] = (float)((int)(rnd() % 2001) - 1000) / 97.0f;
        xf[2 * i + 1] = (float)((int)(rnd() % 2001) - 1000) / 13.0f;
        xd[2 * i] = (double)(rnd() % 100000) / 7.0 + 0.5;
        xd[2 * i + 1] = (double)((int)(rnd() % 200001) - 100000) / 3.0;
        xu[2 * i] = rnd();
        xu[2 * i + 1] = rnd();
    }
    xf[0] = NAN; xd[0] = NAN; xd[3] = NAN; xd[4] = -0.0; xd[5] = 0.0; xf[3] = -0.0f;
    xu[2] = 0x80000000u; xu[3] = 0x7fffffffu; xu[4] = 0; /* add.sat overflow; bfind of 0 */
    xu[6] = 0xffff8001u; xu[8] = 0x00001234u; /* 16-bit div/rem by -1 and by 0 */
    memset(o, 0, (size_t)T * K * 8);
    pbuf p = {{0}, 0};
    pptr(&p, xf); pptr(&p, xd); pptr(&p, xu); pptr(&p, o);
    int rc = launch_in(m, "jalu", 1, 1, 1, T, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
    CHECK(rc == 0, "launch: %d %s", rc, log);
    CHECK(jit_compiled(m, "jalu"), "the JIT did not compile jalu (TF_EMU_TRACE=1 says why)");
    for (int t = 0; t < T; t++) {
        const float x = xf[2 * t], y = xf[2 * t + 1];
        const double dx = xd[2 * t], dy = xd[2 * t + 1];
        const uint32_t u = xu[2 * t], v = xu[2 * t + 1], pos = v & 31, len = (v >> 5) & 31;
        const uint64_t *r = o + (size_t)t * K;
        double gd[K];
        float gf[K];
        uint32_t gu[K];
        for (int k = 0; k < K; k++) { memcpy(&gd[k], &r[k], 8); memcpy(&gf[k], &r[k], 4); memcpy(&gu[k], &r[k], 4); }
        uint64_t bx, by;
        memcpy(&bx, &dx, 8);
        memcpy(&by, &dy, 8);
        CHECK(r[0] == isa_min_max(1, bx, by, 64) && r[1] == isa_min_max(0, bx, by, 64), "thread %d max/min.f64 %g %g of %g %g", t, gd[0], gd[1], dx, dy);
        CHECK(same_f(gf[2], 1.0f / x), "thread %d rcp.approx %g", t, gf[2]);
        CHECK(same_f(gf[3], (float)exp2((double)x)), "thread %d ex2.approx %g", t, gf[3]);
        CHECK(same_f(gf[4], (float)log2((double)fabsf(y))), "thread %d lg2.approx %g", t, gf[4]);
        CHECK(same_f(gf[5], sqrtf(fabsf(y))), "thread %d sqrt.rn %g", t, gf[5]);
        CHECK(same_f(gf[6], (float)sin((double)x)), "thread %d sin.approx %g", t, gf[6]);
        CHECK(gu[7] == ((t & 1) ? bfe_ref(u, pos, len, 0) : 7u), "thread %d guarded bfe.u32 %#x", t, gu[7]);
        CHECK(gu[8] == bfe_ref(u, pos, len, 1), "thread %d bfe.s32 %#x want %#x", t, gu[8], bfe_ref(u, pos, len, 1));
        uint32_t bfi = v;
        for (uint32_t i = 0; i < len && pos + i <= 31; i++) bfi = (bfi & ~(1u << (pos + i))) | (((u >> i) & 1) << (pos + i));
        CHECK(gu[9] == bfi, "thread %d bfi %#x want %#x", t, gu[9], bfi);
        uint64_t bytes = (uint64_t)u | ((uint64_t)v << 32);
        uint32_t prmt = 0;
        for (int i = 0; i < 4; i++) {
            uint32_t sel = (v >> (4 * i)) & 0xf, byte = (uint32_t)(bytes >> (8 * (sel & 7))) & 0xff;
            if (sel & 8) byte = (byte & 0x80) ? 0xff : 0;
            prmt |= byte << (8 * i);
        }
        CHECK(gu[10] == prmt, "thread %d prmt %#x want %#x", t, gu[10], prmt);
        CHECK(gu[11] == (uint32_t)(x >= 0.0f), "thread %d slct.f32 %u", t, gu[11]);
        CHECK(gu[12] == (x < y ? 0xffffffffu : 0u), "thread %d set.lt %#x", t, gu[12]);
        CHECK(gu[13] == (uint32_t)((((uint64_t)u * v) >> 32) + u), "thread %d mad.hi %#x", t, gu[13]);
        int64_t s24u = (int64_t)((int32_t)(u << 8) >> 8), s24v = (int64_t)((int32_t)(v << 8) >> 8);
        CHECK(gu[14] == (uint32_t)(s24u * s24v), "thread %d mul24.lo %#x", t, gu[14]);
        CHECK(gu[15] == (u > v ? u - v : v - u) + (uint32_t)t, "thread %d sad %#x", t, gu[15]);
        int64_t sat = (int64_t)(int32_t)u + (int32_t)v;
        sat = sat > INT32_MAX ? INT32_MAX : sat < INT32_MIN ? INT32_MIN : sat;
        CHECK(gu[16] == (uint32_t)sat, "thread %d add.sat %#x", t, gu[16]);
        uint32_t dp = (uint32_t)t;
        for (int i = 0; i < 4; i++) dp += ((u >> (8 * i)) & 0xff) * ((v >> (8 * i)) & 0xff);
        CHECK(gu[17] == dp, "thread %d dp4a %#x want %#x", t, gu[17], dp);
        CHECK(gu[18] == (u ? (uint32_t)(31 - __builtin_clz(u)) : 0xffffffffu), "thread %d bfind %#x", t, gu[18]);
        CHECK(same_f(gf[19], copysignf(x, y)), "thread %d copysign %g", t, gf[19]);
        CHECK(same_d(gd[20], 1.0 / sqrt(dx)), "thread %d rsqrt.approx.f64 %g", t, gd[20]);
        CHECK(gu[21] == (uint32_t)(x < y), "thread %d setp.lt.ftz %u", t, gu[21]);
        volatile float vx = x, vy = y, rz;
        fesetround(FE_TOWARDZERO);
        rz = vx * vy;
        fesetround(FE_TONEAREST);
        CHECK(same_f(gf[22], rz), "thread %d mul.rz.f32 %g want %g", t, gf[22], rz);
        CHECK(r[23] == ((uint64_t)v << 32 | u) && gu[24] == v, "thread %d mov.b64 pack/unpack %#llx %#x", t,
              (unsigned long long)r[23], gu[24]);
        CHECK(gu[25] == (u >> 16 | u << 16), "thread %d mov.b32 of two b16 %#x", t, gu[25]);
        const uint16_t lo = (uint16_t)u, hi = (uint16_t)(u >> 16);
        CHECK(gu[26] == (hi ? (uint32_t)(lo / hi) : 0xffffu), "thread %d div.u16 %#x", t, gu[26]);
        const int16_t sl = (int16_t)lo, sh = (int16_t)hi;
        const uint32_t srem = sh == 0 ? lo : sh == -1 ? 0 : (uint16_t)(sl % sh);
        CHECK(gu[27] == srem, "thread %d rem.s16 %#x want %#x", t, gu[27], srem);
    }
    ptx_module_free(m);
    dev_free(0, xf); dev_free(0, xd); dev_free(0, xu); dev_free(0, o);
}

/* Warp-synchronous instructions in divergent warps, on both engines (the JIT compiles them: checked), for a
 * full and a partial second warp: lanes that reach a shfl.sync at a lower pc wait there for the rest of its
 * member mask; two groups at two pcs with their own masks; vote.uni and the non-.sync vote/shfl; a guarded
 * shfl with a sub-warp clamp and its predicate; match.any.b64 and match.all; redux min/and/xor/max over
 * per-lane masks; exited lanes left out of a full mask; and the interpreter's rule when two groups each wait
 * for the other at different instructions (ptx_exec.c resched: the lowest goes ahead with the lanes it has). */
static const char *JWARP_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry jwarp(.param .u64 pin, .param .u64 pout)\n{\n"
    " .reg .b32 %r<40>; .reg .b64 %rd<12>; .reg .pred %p<16>;\n"
    " ld.param.u64 %rd1, [pin]; ld.param.u64 %rd2, [pout];\n"
    " mov.u32 %r1, %tid.x; and.b32 %r2, %r1, 31;\n"
    " mul.wide.u32 %rd3, %r1, 4; add.s64 %rd4, %rd1, %rd3; ld.global.u32 %r10, [%rd4];\n"
    " mul.wide.u32 %rd5, %r1, 64; add.s64 %rd6, %rd2, %rd5;\n"
    " and.b32 %r3, %r2, 1; setp.eq.u32 %p1, %r3, 1;\n"
    " mov.u32 %r4, %r10;\n"
    " @%p1 bra ODD;\n"
    "SYNC:\n"
    " shfl.sync.bfly.b32 %r5, %r4, 1, 31, -1;\n"
    " bra DONE;\n"
    "ODD:\n"
    " add.s32 %r4, %r4, 100;\n"
    " bra SYNC;\n"
    "DONE:\n"
    " st.global.u32 [%rd6], %r5;\n"
    " xor.b32 %r7, %r2, 2; setp.gt.s32 %p2, %r10, 0;\n"
    " @%p1 bra ODD2;\n"
    " shfl.sync.idx.b32 %r6, %r10, %r7, 31, 0x55555555;\n"
    " vote.sync.ballot.b32 %r8, %p2, 0x55555555;\n"
    " bra J2;\n"
    "ODD2:\n"
    " shfl.sync.idx.b32 %r6, %r10, %r7, 31, 0xaaaaaaaa;\n"
    " vote.sync.ballot.b32 %r8, %p2, 0xaaaaaaaa;\n"
    "J2:\n"
    " st.global.u32 [%rd6+4], %r6; st.global.u32 [%rd6+8], %r8;\n"
    " setp.lt.s32 %p3, %r10, 1000;\n"
    " vote.sync.uni.pred %p4, %p2, -1; selp.u32 %r11, 1, 0, %p4;\n"
    " vote.sync.uni.pred %p5, %p3, -1; selp.u32 %r12, 2, 0, %p5; or.b32 %r11, %r11, %r12;\n"
    " vote.any.pred %p6, %p2; selp.u32 %r12, 4, 0, %p6; or.b32 %r11, %r11, %r12;\n"
    " st.global.u32 [%rd6+12], %r11;\n"
    " shfl.up.b32 %r13|%p7, %r10, 2, 0; selp.u32 %r14, 0x10000, 0, %p7; xor.b32 %r13, %r13, %r14;\n"
    " st.global.u32 [%rd6+16], %r13;\n"
    " mov.u32 %r15, 7; setp.ne.u32 %p8, %r2, %r2;\n"
    " @%p1 shfl.sync.down.b32 %r15|%p8, %r10, 2, 0x100f, 0xaaaaaaaa;\n"
    " selp.u32 %r16, 0x40000000, 0, %p8; xor.b32 %r15, %r15, %r16;\n"
    " st.global.u32 [%rd6+20], %r15;\n"
    " cvt.u64.u32 %rd7, %r10; and.b64 %rd7, %rd7, 3; shl.b64 %rd8, %rd7, 33; or.b64 %rd8, %rd8, %rd7;\n"
    " match.any.sync.b64 %r17, %rd8, -1; st.global.u32 [%rd6+24], %r17;\n"
    " setp.lt.u32 %p13, %r2, 16; selp.u32 %r30, 0xffff, 0xffff0000, %p13;\n"
    " and.b32 %r18, %r2, 16; setp.eq.u32 %p14, %r2, 21; selp.u32 %r19, 1, 0, %p14; or.b32 %r18, %r18, %r19;\n"
    " match.all.sync.b32 %r19|%p9, %r18, %r30; selp.u32 %r20, 1, 0, %p9; add.s32 %r19, %r19, %r20;\n"
    " st.global.u32 [%rd6+28], %r19;\n"
    " redux.sync.min.u32 %r21, %r10, %r30; st.global.u32 [%rd6+32], %r21;\n"
    " redux.sync.and.b32 %r22, %r10, %r30; redux.sync.xor.b32 %r23, %r10, %r30; xor.b32 %r22, %r22, %r23;\n"
    " st.global.u32 [%rd6+36], %r22;\n"
    " redux.sync.max.u32 %r24, %r10, %r30; st.global.u32 [%rd6+40], %r24;\n"
    " mov.u32 %r25, 0x1234;\n"
    " st.global.u32 [%rd6+44], %r25; st.global.u32 [%rd6+48], %r25; st.global.u32 [%rd6+52], %r25; st.global.u32 [%rd6+56], %r25;\n"
    " setp.ge.u32 %p10, %r2, 24;\n"
    " @%p10 exit;\n"
    " vote.sync.ballot.b32 %r26, %p2, -1; st.global.u32 [%rd6+44], %r26;\n"
    " redux.sync.add.u32 %r27, %r10, -1; st.global.u32 [%rd6+48], %r27;\n"
    " activemask.b32 %r28; st.global.u32 [%rd6+52], %r28;\n"
    " setp.lt.u32 %p11, %r2, 8; setp.eq.u32 %p12, %r2, %r2;\n"
    " @%p11 bra LOW;\n"
    " vote.sync.ballot.b32 %r29, %p12, -1;\n"
    " bra J3;\n"
    "LOW:\n"
    " vote.sync.ballot.b32 %r29, %p12, -1;\n"
    "J3:\n"
    " st.global.u32 [%rd6+56], %r29;\n"
    " ret;\n}\n";

/* lanes lo..hi (inclusive) of 32 as a mask */
static uint32_t lane_range(int lo, int hi) {
    uint32_t m = 0;
    for (int j = lo; j <= hi && j < 32; j++) m |= 1u << j;
    return m;
}

static void test_jit_warp(void) {
    enum { TMAX = 64, K = 16 };
    int err = 0;
    char log[512];
    ptx_module *m = ptx_module_load(JWARP_PTX, 0, &ENV, &err, log, sizeof(log));
    CHECK(m && err == 0, "load: %d %s", err, log);
    const ptx_kernel *kw = ptx_module_get_kernel(m, "jwarp");
    int32_t *in = dev_alloc(0, TMAX * 4);
    uint32_t *o = dev_alloc(0, TMAX * K * 4);
    for (int i = 0; i < TMAX; i++) in[i] = (int32_t)(rnd() % 2001) - 700;
    in[5] = 2000; /* one lane of warp 0 fails v < 1000: vote.uni false there */
    const int sizes[2] = {64, 48}; /* the second: warp 1 has lanes 0..15 */
    for (int run = 0; run < 2; run++) {
        const int T = sizes[run];
        memset(o, 0xee, TMAX * K * 4);
        pbuf p = {{0}, 0};
        pptr(&p, in); pptr(&p, o);
        int rc = launch_k(kw, 1, 1, 1, (unsigned)T, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
        CHECK(rc == 0, "launch: %d %s", rc, log);
        for (int t = 0; t < T; t++) {
            const int w = t & ~31, l = t & 31, n = T - w < 32 ? T - w : 32;
            const int32_t *v = in + w;
            const uint32_t exist = lane_range(0, n - 1), par = (l & 1) ? 0xaaaaaaaau : 0x55555555u;
            uint32_t want[K];
            const int pl = l ^ 1;
            want[0] = (uint32_t)(v[pl] + ((pl & 1) ? 100 : 0));
            want[1] = (uint32_t)v[l ^ 2];
            uint32_t pos = 0, small = 0;
            for (int j = 0; j < n; j++) { if (v[j] > 0) pos |= 1u << j; if (v[j] < 1000) small |= 1u << j; }
            want[2] = pos & par & exist;
            want[3] = (uint32_t)(pos == 0 || pos == exist) + 2u * (small == 0 || small == exist) + 4u * (pos != 0);
            want[4] = l >= 2 ? (uint32_t)v[l - 2] ^ 0x10000u : (uint32_t)v[l];
            if (l & 1) {
                const int j = l + 2, maxl = (l & 16) | 15;
                want[5] = j <= maxl ? (uint32_t)v[j] ^ 0x40000000u : (uint32_t)v[l];
            } else {
                want[5] = 7;
            }
            uint32_t same = 0;
            for (int j = 0; j < n; j++) if ((v[j] & 3) == (v[l] & 3)) same |= 1u << j;
            want[6] = same;
            const uint32_t g = (l < 16 ? 0xffffu : 0xffff0000u) & exist;
            int alleq = 1;
            uint32_t mn = 0xffffffffu, an = 0xffffffffu, xr = 0, mx = 0;
            for (int j = 0; j < 32; j++) {
                if (!((g >> j) & 1)) continue;
                if (((j & 16) | (j == 21)) != ((l & 16) | (l == 21))) alleq = 0;
                const uint32_t u = (uint32_t)v[j];
                mn = u < mn ? u : mn; mx = u > mx ? u : mx; an &= u; xr ^= u;
            }
            want[7] = (alleq ? g : 0) + (uint32_t)alleq;
            want[8] = mn; want[9] = an ^ xr; want[10] = mx;
            const uint32_t stay = exist & lane_range(0, 23);
            uint32_t sum = 0;
            for (int j = 0; j < 32; j++) if ((stay >> j) & 1) sum += (uint32_t)v[j];
            if (l >= 24) {
                want[11] = want[12] = want[13] = want[14] = 0x1234;
            } else {
                want[11] = pos & stay; want[12] = sum; want[13] = stay;
                want[14] = l < 8 ? stay & 0xffu : stay & ~0xffu;
            }
            for (int k = 0; k < 15; k++)
                CHECK(o[t * K + k] == want[k], "%d threads: thread %d result %d: %#x want %#x", T, t, k, o[t * K + k], want[k]);
        }
    }
    CHECK(jit_compiled(m, "jwarp"), "the JIT did not compile jwarp (TF_EMU_TRACE=1 says why)");
    ptx_module_free(m);
    dev_free(0, in); dev_free(0, o);
}

/* ------------------------------------------------------------------ the JIT's compile thread and disk cache */
/* A kernel of its own (so no earlier test compiled it): out[i] = in[i] * 3 + K. */
static const char *BG_PTX_FMT =
    ".version 7.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry bg(.param .u64 pin, .param .u64 pout, .param .u32 pn)\n{\n"
    "  .reg .pred %%p<2>;\n  .reg .b32 %%r<8>;\n  .reg .b64 %%rd<8>;\n"
    "  ld.param.u64 %%rd1, [pin];\n  ld.param.u64 %%rd2, [pout];\n  ld.param.u32 %%r1, [pn];\n"
    "  mov.u32 %%r2, %%ctaid.x;\n  mov.u32 %%r3, %%ntid.x;\n  mov.u32 %%r4, %%tid.x;\n"
    "  mad.lo.s32 %%r5, %%r2, %%r3, %%r4;\n  setp.ge.s32 %%p1, %%r5, %%r1;\n  @%%p1 bra DONE;\n"
    "  mul.wide.s32 %%rd3, %%r5, 4;\n  add.s64 %%rd4, %%rd1, %%rd3;\n  add.s64 %%rd5, %%rd2, %%rd3;\n"
    "  ld.global.u32 %%r6, [%%rd4];\n  mad.lo.s32 %%r7, %%r6, 3, %d;\n  st.global.u32 [%%rd5], %%r7;\n"
    "DONE:\n  ret;\n}\n";

static int bg_launch(ptx_module *m, const unsigned *in, unsigned *out, int n, char *log, size_t loglen) {
    pbuf p = {{0}, 0};
    pptr(&p, in); pptr(&p, out); pint(&p, n);
    memset(out, 0, (size_t)n * 4);
    return launch_in(m, "bg", (unsigned)(n + 63) / 64, 1, 1, 64, 1, 1, 0, &p, 2, 0, log, loglen, NULL);
}

/* With the JIT, a kernel's launches run on the interpreter while its compile is pending (held here),
 * give the same results, and run compiled code from the first launch after it is ready; a module
 * freed while its kernel waits in the compile queue leaves the queue. */
static void test_jit_background(void) {
    const char *e = getenv("TF_EMU_ENGINE");
    if (!e || strcmp(e, "jit")) return; /* the interpreter has no compile thread */
    char text[2048], log[512];
    int err = 0, n = 200;
    snprintf(text, sizeof(text), BG_PTX_FMT, 1234567);
    unsigned *in = dev_alloc(0, (size_t)n * 4), *out = dev_alloc(0, (size_t)n * 4);
    for (int i = 0; i < n; i++) in[i] = (unsigned)i * 7u;
    ptx_jit_hold(1);
    ptx_module *m = ptx_module_load(text, 0, &ENV, &err, log, sizeof(log));
    int bad = !m;
    for (int round = 0; round < 3 && !bad; round++) {
        if (bg_launch(m, in, out, n, log, sizeof(log))) bad = 1;
        for (int i = 0; i < n && !bad; i++) if (out[i] != in[i] * 3u + 1234567u) bad = 2;
        if (!bad && ptx_jit_compile_ms(ptx_module_get_kernel(m, "bg")) >= 0) bad = 3; /* ran before its code existed */
    }
    ptx_jit_hold(0);
    if (!bad && !ptx_jit_wait(ptx_module_get_kernel(m, "bg"))) bad = 4;
    if (!bad && bg_launch(m, in, out, n, log, sizeof(log))) bad = 5;
    for (int i = 0; i < n && !bad; i++) if (out[i] != in[i] * 3u + 1234567u) bad = 6;
    if (m) ptx_module_free(m);
    /* freed while queued */
    ptx_module *m2 = NULL;
    if (!bad) {
        snprintf(text, sizeof(text), BG_PTX_FMT, 7654321);
        ptx_jit_hold(1);
        m2 = ptx_module_load(text, 0, &ENV, &err, log, sizeof(log));
        if (!m2 || bg_launch(m2, in, out, n, log, sizeof(log))) bad = 7;
        if (m2) ptx_module_free(m2);
        ptx_jit_hold(0);
    }
    dev_free(0, in);
    dev_free(0, out);
    CHECK(!bad, "step %d failed (%s)", bad, log);
}

/* A launch that starts before its kernel's code is ready (the compile held) runs its first block on the
 * interpreter and, once the code is ready, its other blocks on the JIT, with the same results: block 0 spins
 * until a host thread has released the compile and seen the code ready. */
static const char *SW_PTX_FMT =
    ".version 7.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry sw(.param .u64 pf, .param .u64 pout)\n{\n"
    "  .reg .pred %%p<3>;\n  .reg .b32 %%r<8>;\n  .reg .b64 %%rd<6>;\n"
    "  ld.param.u64 %%rd1, [pf];\n  ld.param.u64 %%rd2, [pout];\n"
    "  mov.u32 %%r1, %%ctaid.x;\n  mov.u32 %%r2, %%ntid.x;\n  mov.u32 %%r3, %%tid.x;\n  mad.lo.s32 %%r4, %%r1, %%r2, %%r3;\n"
    "  mul.wide.u32 %%rd3, %%r4, 4;\n  add.s64 %%rd4, %%rd2, %%rd3;\n  mad.lo.s32 %%r5, %%r4, 3, %d;\n  st.global.u32 [%%rd4], %%r5;\n"
    "  or.b32 %%r6, %%r1, %%r3;\n  setp.ne.u32 %%p1, %%r6, 0;\n  @%%p1 bra DONE;\n"
    "  mov.u32 %%r7, 1;\n  st.volatile.global.u32 [%%rd1], %%r7;\n"
    "SPIN:\n  ld.volatile.global.u32 %%r7, [%%rd1+4];\n  setp.eq.u32 %%p2, %%r7, 0;\n  @%%p2 bra SPIN;\n"
    "DONE:\n  ret;\n}\n";

typedef struct sw_release {
    unsigned *flags;
    const ptx_kernel *k;
    int ready;
} sw_release;

static void *sw_release_main(void *arg) {
    sw_release *s = arg;
    while (!__atomic_load_n(&s->flags[0], __ATOMIC_ACQUIRE)) usleep(100);
    ptx_jit_hold(0);
    s->ready = ptx_jit_wait(s->k);
    __atomic_store_n(&s->flags[1], 1u, __ATOMIC_RELEASE);
    return NULL;
}

static void test_jit_switch_mid_launch(void) {
    const char *e = getenv("TF_EMU_ENGINE");
    if (!e || strcmp(e, "jit")) return; /* the interpreter has no compile thread */
    enum { NB = 8, NT = 32 };
    char text[2048], log[512] = "";
    int err = 0;
    snprintf(text, sizeof(text), SW_PTX_FMT, 2345671);
    unsigned *flags = dev_alloc(0, 8), *out = dev_alloc(0, NB * NT * 4);
    ptx_jit_hold(1);
    ptx_module *m = ptx_module_load(text, 0, &ENV, &err, log, sizeof(log));
    sw_release s = {flags, m ? ptx_module_get_kernel(m, "sw") : NULL, 0};
    pthread_t th;
    int started = m && pthread_create(&th, NULL, sw_release_main, &s) == 0;
    int r = -1;
    uint64_t jit0 = ptx_jit_blocks_run();
    if (started) {
        pbuf p = {{0}, 0};
        pptr(&p, flags); pptr(&p, out);
        r = launch_k(s.k, NB, 1, 1, NT, 1, 1, 0, &p, 1, 0, log, sizeof(log), NULL);
        pthread_join(th, NULL);
    } else {
        ptx_jit_hold(0);
    }
    const uint64_t on_jit = ptx_jit_blocks_run() - jit0;
    int wrong = -1;
    unsigned got = 0;
    for (int i = 0; i < NB * NT && r == 0 && wrong < 0; i++) if (out[i] != (unsigned)i * 3u + 2345671u) { wrong = i; got = out[i]; }
    if (m) ptx_module_free(m);
    dev_free(0, flags);
    dev_free(0, out);
    CHECK(started && r == 0, "launch -> %d (%s)", r, log);
    CHECK(s.ready, "the compile did not finish");
    CHECK(wrong < 0, "thread %d wrote %u", wrong, got);
    CHECK(on_jit == NB - 1, "%llu of the %d blocks after the first ran on the JIT", (unsigned long long)on_jit, NB - 1);
}

/* The disk cache returns exactly what was stored under exactly that key, and nothing for a foreign
 * key, a damaged object or a truncated file; a rewrite replaces a damaged entry. */
static void test_jit_disk_cache(void) {
    char dir[] = "/tmp/ptx_test_jitcache.XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    const char key[] = "generator 2\nLLVM 14 test-cpu +feat\nprogram bytes", other[] = "generator 2\nLLVM 14 test-cpu +feat\nprogram bytez";
    uint8_t obj[3000];
    for (size_t i = 0; i < sizeof(obj); i++) obj[i] = (uint8_t)(i * 31 + 7);
    size_t n = 0;
    int bad = ptx_jit_cache_read(dir, key, sizeof(key), &n) != NULL; /* absent */
    if (!bad && ptx_jit_cache_write(dir, key, sizeof(key), obj, sizeof(obj))) bad = 2;
    uint8_t *got = bad ? NULL : ptx_jit_cache_read(dir, key, sizeof(key), &n);
    if (!bad && (!got || n != sizeof(obj) || memcmp(got, obj, n))) bad = 3;
    free(got);
    if (!bad && ptx_jit_cache_read(dir, other, sizeof(other), &n)) bad = 4; /* another key: a miss */
    /* damage the one entry's object bytes, then truncate it */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "f=$(ls %s/*.tfjit) && printf 'X' | dd of=$f bs=1 seek=2000 conv=notrunc 2>/dev/null", dir);
    if (!bad && system(cmd)) bad = 5;
    if (!bad && ptx_jit_cache_read(dir, key, sizeof(key), &n)) bad = 6;
    if (!bad && ptx_jit_cache_write(dir, key, sizeof(key), obj, sizeof(obj))) bad = 7;
    got = bad ? NULL : ptx_jit_cache_read(dir, key, sizeof(key), &n);
    if (!bad && (!got || n != sizeof(obj) || memcmp(got, obj, n))) bad = 8;
    free(got);
    snprintf(cmd, sizeof(cmd), "f=$(ls %s/*.tfjit) && truncate -s 1000 $f", dir);
    if (!bad && system(cmd)) bad = 9;
    if (!bad && ptx_jit_cache_read(dir, key, sizeof(key), &n)) bad = 10;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) bad = bad ? bad : 11;
    CHECK(!bad, "step %d failed", bad);
}

typedef struct test {
    const char *name;
    void (*fn)(void);
} test;

static const test TESTS[] = {
    {"vadd", test_vadd}, {"saxpy", test_saxpy}, {"matmul", test_matmul}, {"reduce", test_reduce},
    {"histogram", test_histogram}, {"intops", test_intops}, {"fround", test_fround}, {"fconv", test_fconv},
    {"halfconv", test_halfconv}, {"warpops", test_warpops}, {"warpgroups", test_warpgroups}, {"mbarrier", test_mbarrier}, {"virtuals", test_virtuals}, {"atomics", test_atomics}, {"diverge", test_diverge},
    {"localarr", test_localarr}, {"globals", test_globals}, {"printf", test_printf}, {"assert", test_assert},
    {"oob", test_oob}, {"coop", test_coop}, {"griddepcontrol", test_griddepcontrol}, {"idx3d", test_idx3d}, {"launch_config_errors", test_launch_config_errors},
    {"hand_ptx", test_hand_ptx}, {"fspecial", test_fspecial}, {"warp_shapes", test_warp_shapes}, {"directed_rounding_per_warp", test_directed_rounding_per_warp}, {"shared_tiles", test_shared_tiles}, {"determinism_threads", test_determinism_threads}, {"fmath", test_fmath},
    {"half2", test_half2}, {"ints64", test_ints64}, {"vecs", test_vecs}, {"byval", test_byval}, {"cub", test_cub},
    {"fuzz_parser", test_fuzz_parser}, {"cpasync", test_cpasync}, {"halfatomics", test_halfatomics},
    {"devmalloc", test_devmalloc}, {"wmma", test_wmma}, {"wmma_more", test_wmma_more}, {"mma_ldmatrix", test_mma_ldmatrix},
    {"wmma_exact", test_wmma_exact}, {"wmma_f64_tile", test_wmma_f64_tile}, {"regpool", test_regpool}, {"cpasync_fault", test_cpasync_fault}, {"mma_more", test_mma_more}, {"cvt_tf32", test_cvt_tf32},
    {"hostile_ptx", test_hostile_ptx}, {"lazy_open", test_lazy_open}, {"recursion", test_recursion},
    {"video", test_video}, {"textures", test_textures}, {"jit_background", test_jit_background}, {"jit_switch_mid_launch", test_jit_switch_mid_launch},
    {"jit_disk_cache", test_jit_disk_cache}, {"jit_alu", test_jit_alu},
    {"jit_long", test_jit_long}, {"jit_warp", test_jit_warp}, {"jit_fast_checks", test_jit_fast_checks}, {"jit_prefetch", test_jit_prefetch},
    {"jit_bar", test_jit_bar}, {"named_barriers", test_named_barriers},
};

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; *len = (size_t)n; }
    return b;
}

#include <time.h>
static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* The spin kernel's math written lanes-inner for this CPU (one host thread): the baseline "one core's
 * vectorized speed" the PTX engines are measured against (4 flops per thread-iteration). */
#if defined(__x86_64__)
__attribute__((target("avx2,fma"), optimize("O3")))
#endif
static void spin_native(float *out, unsigned blocks, unsigned threads, int iters) {
    float a[256], b[256];
    unsigned h[256];
    for (unsigned blk = 0; blk < blocks; blk++) {
        for (unsigned t = 0; t < threads; t++) { a[t] = (float)t * 0.001f; b[t] = 1.0001f; h[t] = t; }
        for (int i = 0; i < iters; i++)
            for (unsigned t = 0; t < threads; t++) {
                a[t] = __builtin_fmaf(a[t], b[t], 0.5f);
                h[t] = h[t] * 1664525u + 1013904223u;
                b[t] = b[t] - (float)(h[t] & 1) * 1e-7f;
            }
        for (unsigned t = 0; t < threads; t++) out[blk * threads + t] = a[t] + (float)(h[t] & 0xff);
    }
}

/* The same math one thread at a time (each thread's loop to completion, scalar): the best the other
 * execution model a JIT could use, "each thread a loop iteration between barriers", can do here. */
#if defined(__x86_64__)
__attribute__((target("avx2,fma"), optimize("O3")))
#endif
static void spin_thread_loop(float *out, unsigned blocks, unsigned threads, int iters) {
    for (unsigned blk = 0; blk < blocks; blk++)
        for (unsigned t = 0; t < threads; t++) {
            float a = (float)t * 0.001f, b = 1.0001f;
            unsigned h = t;
            for (int i = 0; i < iters; i++) {
                a = __builtin_fmaf(a, b, 0.5f);
                h = h * 1664525u + 1013904223u;
                b = b - (float)(h & 1) * 1e-7f;
            }
            out[blk * threads + t] = a + (float)(h & 0xff);
        }
}

/* The barrier's own cost: 8 warps per block that do almost nothing but bar.sync (a loop of n). */
static const char *BARLOOP_PTX =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry barloop(.param .u64 out, .param .u32 n)\n{\n.reg .pred %p<2>;\n.reg .b32 %r<8>;\n.reg .b64 %rd<4>;\n"
    " ld.param.u64 %rd1, [out]; ld.param.u32 %r1, [n]; cvta.to.global.u64 %rd1, %rd1;\n"
    " mov.u32 %r2, %tid.x; mov.u32 %r3, %ctaid.x; mov.u32 %r4, 0; mov.u32 %r5, %r2;\n"
    "LOOP:\n bar.sync 0;\n add.u32 %r5, %r5, %r4; add.u32 %r4, %r4, 1; setp.lt.u32 %p1, %r4, %r1; @%p1 bra LOOP;\n"
    " mad.lo.u32 %r6, %r3, 256, %r2; mul.wide.u32 %rd2, %r6, 4; add.s64 %rd3, %rd1, %rd2; st.global.u32 [%rd3], %r5;\n"
    " ret;\n}\n";

/* `ptx_test --bench [workers]`: engine throughput without the driver, one line of key=value per figure. */
static int bench(int workers) {
    float *out = dev_alloc(0, 64 * 256 * 4);
    pbuf p = {{0}, 0};
    pptr(&p, out);
    pint(&p, 2000);
    char log[256];
    uint64_t ic = 0;
    /* one small launch of each timed kernel first: with TF_EMU_ENGINE=jit it compiles them, and the
     * compile time is reported on its own line instead of inside the rates */
    {
        int n0 = 16;
        float *A0 = dev_alloc(0, (size_t)n0 * n0 * 4), *B0 = dev_alloc(0, (size_t)n0 * n0 * 4), *C0 = dev_alloc(0, (size_t)n0 * n0 * 4);
        pbuf w0 = {{0}, 0};
        pptr(&w0, out); pint(&w0, 1);
        pbuf w1 = {{0}, 0};
        pptr(&w1, A0); pptr(&w1, B0); pptr(&w1, C0); pint(&w1, n0);
        pbuf w2 = {{0}, 0};
        pptr(&w2, A0); pptr(&w2, B0); pptr(&w2, C0); pint(&w2, 1);
        if (launch("spin", 1, 1, 1, 32, 1, 1, 0, &w0, workers, 0, log, sizeof(log), NULL) ||
            launch("matmul", 1, 1, 1, 16, 16, 1, 0, &w1, workers, 0, log, sizeof(log), NULL) ||
            launch("empty", 1, 1, 1, 32, 1, 1, 0, NULL, workers, 0, log, sizeof(log), NULL) ||
            launch("vadd", 1, 1, 1, 32, 1, 1, 0, &w2, workers, 0, log, sizeof(log), NULL)) {
            fprintf(stderr, "bench warm-up: %s\n", log);
            return 1;
        }
        /* compiles run in the background: wait for them, so the timed launches run compiled code */
        const char *names[] = {"spin", "matmul", "empty", "vadd"};
        for (int i = 0; i < 4; i++) ptx_jit_wait(ptx_module_get_kernel(MOD, names[i]));
        int disk_spin = 0, disk_matmul = 0;
        double ms_spin = ptx_jit_compile_info(ptx_module_get_kernel(MOD, "spin"), &disk_spin);
        double ms_matmul = ptx_jit_compile_info(ptx_module_get_kernel(MOD, "matmul"), &disk_matmul);
        printf("jit_compile spin_ms=%.1f matmul_ms=%.1f spin_from_disk=%d matmul_from_disk=%d\n", ms_spin, ms_matmul,
               disk_spin, disk_matmul);
        dev_free(0, A0); dev_free(0, B0); dev_free(0, C0);
    }
    double t0 = now_s();
    int r = launch("spin", 64, 1, 1, 256, 1, 1, 0, &p, workers, 0, log, sizeof(log), &ic);
    double t1 = now_s();
    if (r) { fprintf(stderr, "bench spin: %d %s\n", r, log); return 1; }
    printf("spin workers=%d warp_instructions=%llu seconds=%.3f warp_instr_per_s=%.3g thread_instr_per_s=%.3g gflops=%.3g\n",
           workers, (unsigned long long)ic, t1 - t0, (double)ic / (t1 - t0), 32.0 * (double)ic / (t1 - t0),
           4.0 * 64 * 256 * 2000 / (t1 - t0) * 1e-9);
    {
        float *nat = malloc(64 * 256 * sizeof(float));
        if (!nat) return 1;
        double n0 = now_s();
        spin_native(nat, 64, 256, 2000);
        double n1 = now_s();
        int same = !memcmp(nat, out, 64 * 256 * sizeof(float));
        printf("spin_native seconds=%.3f gflops=%.3g same_bits=%d\n", n1 - n0, 4.0 * 64 * 256 * 2000 / (n1 - n0) * 1e-9, same);
        n0 = now_s();
        spin_thread_loop(nat, 64, 256, 2000);
        n1 = now_s();
        same = !memcmp(nat, out, 64 * 256 * sizeof(float));
        printf("spin_thread_loop seconds=%.3f gflops=%.3g same_bits=%d\n", n1 - n0, 4.0 * 64 * 256 * 2000 / (n1 - n0) * 1e-9, same);
        free(nat);
    }
    int n = 256;
    float *A = dev_alloc(0, (size_t)n * n * 4), *B = dev_alloc(0, (size_t)n * n * 4), *C = dev_alloc(0, (size_t)n * n * 4);
    pbuf q = {{0}, 0};
    pptr(&q, A); pptr(&q, B); pptr(&q, C); pint(&q, n);
    t0 = now_s();
    r = launch("matmul", (unsigned)n / 16, (unsigned)n / 16, 1, 16, 16, 1, 0, &q, workers, 0, log, sizeof(log), &ic);
    t1 = now_s();
    if (r) { fprintf(stderr, "bench matmul: %d %s\n", r, log); return 1; }
    printf("matmul256 workers=%d warp_instructions=%llu seconds=%.3f warp_instr_per_s=%.3g gflops=%.3g\n", workers,
           (unsigned long long)ic, t1 - t0, (double)ic / (t1 - t0), 2.0 * n * n * n / (t1 - t0) * 1e-9);
    {
        /* the same launch repeated, timed in this process's CPU time (every worker's): on a machine other
         * programs load, one launch's wall time says little; PTX_BENCH_MATMUL_LAUNCHES sets the count */
        const char *ev = getenv("PTX_BENCH_MATMUL_LAUNCHES");
        const int reps = ev && atoi(ev) > 0 ? atoi(ev) : 10;
        uint64_t icr = 0, ic1 = 0;
        const double c0 = cpu_s();
        for (int i = 0; i < reps; i++, icr += ic1)
            if (launch("matmul", (unsigned)n / 16, (unsigned)n / 16, 1, 16, 16, 1, 0, &q, workers, 0, log, sizeof(log), &ic1)) {
                fprintf(stderr, "bench matmul: %s\n", log);
                return 1;
            }
        const double c1 = cpu_s();
        printf("matmul256_cpu workers=%d launches=%d cpu_ms_per_launch=%.3f warp_instr_per_cpu_s=%.4g\n", workers, reps,
               (c1 - c0) * 1e3 / reps, (double)icr / (c1 - c0));
    }
    {
        /* barloop: 16 blocks of 8 warps x 2000 bar.sync, in CPU time per warp's arrival at a barrier */
        int err = 0;
        ptx_module *bm = ptx_module_load(BARLOOP_PTX, 0, &ENV, &err, log, sizeof(log));
        if (!bm) { fprintf(stderr, "bench barloop: %s\n", log); return 1; }
        const ptx_kernel *bk = ptx_module_get_kernel(bm, "barloop");
        uint32_t *bo = dev_alloc(0, 16 * 256 * 4);
        pbuf bp = {{0}, 0};
        pptr(&bp, bo); pint(&bp, 1);
        if (launch_in(bm, "barloop", 1, 1, 1, 256, 1, 1, 0, &bp, workers, 0, log, sizeof(log), NULL)) return 1;
        ptx_jit_wait(bk);
        const char *bi = getenv("PTX_BENCH_BARLOOP_ITERS");
        const int iters = bi && atoi(bi) > 0 ? atoi(bi) : 2000;
        pbuf bq = {{0}, 0};
        pptr(&bq, bo); pint(&bq, iters);
        const double c0 = cpu_s();
        if (launch_in(bm, "barloop", 16, 1, 1, 256, 1, 1, 0, &bq, workers, 0, log, sizeof(log), &ic)) {
            fprintf(stderr, "bench barloop: %s\n", log);
            return 1;
        }
        const double c1 = cpu_s();
        const double arrivals = 16.0 * 8 * iters;
        printf("barloop_cpu workers=%d warp_arrivals=%.0f cpu_ns_per_warp_arrival=%.2f warp_instructions=%llu\n", workers,
               arrivals, (c1 - c0) * 1e9 / arrivals, (unsigned long long)ic);
        dev_free(0, bo);
        ptx_module_free(bm);
    }
    int launches = 2000;
    t0 = now_s();
    for (int i = 0; i < launches; i++)
        if (launch("empty", 1, 1, 1, 32, 1, 1, 0, NULL, workers, 0, log, sizeof(log), NULL)) return 1;
    t1 = now_s();
    printf("empty_launch workers=%d launches_per_s=%.3g\n", workers, launches / (t1 - t0));
    {
        int nv = 5000;
        float *a = dev_alloc(0, (size_t)nv * 4), *b = dev_alloc(0, (size_t)nv * 4), *c = dev_alloc(0, (size_t)nv * 4);
        pbuf v = {{0}, 0};
        pptr(&v, a); pptr(&v, b); pptr(&v, c); pint(&v, nv);
        t0 = now_s();
        for (int i = 0; i < 500; i++)
            if (launch("vadd", (unsigned)(nv + 255) / 256, 1, 1, 256, 1, 1, 0, &v, workers, 0, log, sizeof(log), NULL)) return 1;
        t1 = now_s();
        printf("vadd5000_launch workers=%d launches_per_s=%.3g\n", workers, 500 / (t1 - t0));
        dev_free(0, a); dev_free(0, b); dev_free(0, c);
    }
    dev_free(0, out); dev_free(0, A); dev_free(0, B); dev_free(0, C);
    return 0;
}

int main(int argc, char **argv) {
    const char *cands[] = {argc > 1 && strstr(argv[1], ".ptx") ? argv[1] : NULL, getenv("PTX_TEST_PTX"),
                           "tests/ptx_kernels.ptx", "emu_c/tests/ptx_kernels.ptx", "../emu_c/tests/ptx_kernels.ptx"};
    char *text = NULL;
    size_t len = 0;
    const char *used = NULL;
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]) && !text; i++)
        if (cands[i] && (text = read_file(cands[i], &len))) used = cands[i];
    if (!text) {
        fprintf(stderr, "ptx_test: cannot find ptx_kernels.ptx (pass its path or set PTX_TEST_PTX)\n");
        return 2;
    }
    int err = 0;
    char log[512];
    MOD = ptx_module_load(text, len, &ENV, &err, log, sizeof(log));
    PTX_TEXT = text;
    PTX_LEN = len;
    if (!MOD) {
        free(text);
        fprintf(stderr, "ptx_test: loading %s failed: %d %s\n", used, err, log);
        return 1;
    }
    if (argc > 1 && !strcmp(argv[argc > 2 && strstr(argv[1], ".ptx") ? 2 : 1], "--bench")) {
        int w = atoi(argv[argc - 1]);
        int r = bench(w > 0 ? w : 1);
        ptx_module_free(MOD);
        free(text);
        return r;
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof(TESTS) / sizeof(TESTS[0]); i++) {
        int want = argc <= 1 || (argc == 2 && strstr(argv[1], ".ptx"));
        for (int a = 1; a < argc; a++) if (!strcmp(argv[a], TESTS[i].name)) want = 1;
        if (!want) continue;
        cur_test = TESTS[i].name;
        int before = failures;
        TESTS[i].fn();
        ran++;
        printf("%s %s\n", failures == before ? "ok  " : "FAIL", TESTS[i].name);
    }
    ptx_module_free(MOD);
    free(text);
    printf("ptx_test: %d tests, %d failed\n", ran, failures);
    return failures ? 1 : 0;
}
