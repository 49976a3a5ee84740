/* ptx_exec.c - runs launches of pre-decoded PTX kernels (ptx_launch from ptx.h); called by the
 * emulated driver's launch path (emu_launch.c).
 *
 * Model: host worker threads take blocks from an atomic counter (a persistent pool, woken only
 * when a launch outlasts a short solo budget on the calling thread; cooperative launches get one
 * thread per block so grid.sync() can spin). A block runs all its threads as warps of 32 lanes;
 * each warp keeps one PC per lane and always executes the group of lanes with the lowest PC, so
 * divergent paths reconverge where they meet again. Warp-synchronous instructions (shfl/vote/
 * match/redux .sync, bar.warp.sync, wmma/mma) also wait until every lane of their membermask has
 * arrived, which covers branches that rejoin at a lower PC. Warps run one after another until
 * bar.sync or exit. Barriers (bar/barrier, 16 per block: bar_arrive_warp) count warps: a warp arrives when
 * all its non-exited lanes wait at one; a barrier of the whole block completes when every warp not exited
 * has arrived, one with a smaller thread count at its count of warps.
 * Registers are 64-bit slots stored register-major per warp (R[slot*32 + lane]) so an instruction
 * is one tight (vectorizable) loop over the active lanes.
 *
 * Memory: global addresses are host pointers checked with env->check_global (each worker caches
 * whole allocations it has learned); shared, local and kernel-param generic addresses carry the
 * window tags of ptx_internal.h; every access is bounds-checked -> CUDA_ERROR_ILLEGAL_ADDRESS: loads and
 * stores once per warp when every active lane falls inside one allocation or window (warp_span), else per
 * lane (which finds the lane the fault names).
 */
/* The interpreter's per-instruction lane loops and warp-wide address checks are written to vectorize; GCC's -O2
 * cost model leaves most of them scalar (measured with callgrind on the cuda-samples kernels: -O3 runs 10-30%
 * fewer instructions per warp instruction). Sanitizer builds (the unit tests) keep their own level. */
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include <fenv.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ptx_internal.h"
#include "ptx_texture.h"
#include "ptx_jit.h"
#include "ptx_mem.h"
#include "ptx_mma.h"

#define FULL 0xffffffffu
#define YIELD_BACK_BRANCHES 4096

typedef struct warp_st {
    uint64_t *R;
    int32_t pc[32];
    uint32_t live, exited, atbar;
    uint32_t counted;    /* lanes of atbar whose warp's arrival is counted: they wait for their barrier to complete */
    uint32_t arriving;   /* lanes of atbar, not counted yet, that executed bar.arrive (they go on at the arrival) */
    uint16_t fresh_ids;  /* the barriers the lanes of atbar not counted yet name (bits) */
    uint16_t counted_ids; /* the barriers the counted lanes wait for (bits) */
    uint8_t bar_of[32];  /* per lane of atbar: its barrier's number */
    uint32_t wsync;      /* lanes parked at a warp-synchronous instruction (pc[] holds it) */
    int force_sync_pc;   /* run the parked group at this pc without waiting (nothing else can come) */
    int cur_pc;
    uint32_t cur_mask;
    int min_wait;
} warp_st;

typedef struct launch launch;

/* One of a block's 16 barriers (bar/barrier): the warps arrived in its current phase, the thread count they
 * named (0: the whole block), whether a bar.arrive is among them, and bar.red's reduction: accumulated over
 * the phase, published at its completion for OP_BAR_RED_READ. */
typedef struct bar_st {
    uint32_t warps, count, arrives;
    uint32_t red_count, red_and, red_or;
    uint32_t out_count, out_and, out_or;
} bar_st;

typedef struct blk {
    launch *L;
    const ptx_kernel *k;
    const ptx_launch_cfg *cfg;
    const ptx_env *env;
    int worker;
    unsigned nthreads, nwarps;
    unsigned bid[3];
    uint64_t *R;
    warp_st *w;
    ptx_memview mv;      /* shared/local memory, the global-allocation cache (ptx_mem.h) */
    uint64_t gcw[8];     /* mv.gc */
    uint64_t icount;
    uint64_t writes;           /* st/atom/red executed: a warp slice that wrote nothing is spinning */
    int yield_backs;           /* back branches a warp runs before returning to the block runner */
    unsigned spin_us;          /* cooperative launches: current sleep of a spinning block (0: none) */
    bar_st bars[16];
    uint32_t bars_arrived;     /* the barriers with arrivals in their current phase (bits) */
    uint64_t tex_h;            /* last texture/surface handle resolved, and its descriptor */
    int tex_surf;
    const ptx_texdesc *tex_d;
    ptx_jit_blk J;       /* blocks of a JIT-compiled kernel run through here (ptx_jit.h) */
    const ptx_jit_fn *jit; /* this worker's engine for its next blocks: the compiled kernel, or NULL (interpreter) */
} blk;

struct launch {
    const ptx_kernel *k;
    const ptx_launch_cfg *cfg;
    const ptx_env *env;
    uint64_t nblocks;
    uint64_t next;
    int err;
    char *log;
    size_t loglen;
    pthread_mutex_t mu;
    uint64_t icount;
    uint64_t coop_ws;
    int coop_crowded;      /* cooperative, with more blocks (host threads) than online CPUs: spinning blocks pause */
    const ptx_jit_fn *jit; /* compiled kernel when the launch started, or NULL: the interpreter runs its first blocks */
    int interp_only;       /* a barrier's thread count is not the block's: the JIT (whole-block barriers) never runs it */
};

static void fail(blk *B, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(blk *B, int code, const char *fmt, ...) {
    launch *L = B->L;
    pthread_mutex_lock(&L->mu);
    if (!L->err) {
        L->err = code;
        if (L->log && L->loglen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(L->log, L->loglen, fmt, ap);
            va_end(ap);
        }
    }
    pthread_mutex_unlock(&L->mu);
}

/* ------------------------------------------------------------------ value helpers */
static inline float F(uint64_t v) { union { uint32_t u; float f; } x = {(uint32_t)v}; return x.f; }
static inline uint64_t UF(float f) { union { float f; uint32_t u; } x = {.f = f}; return x.u; }
static inline double D(uint64_t v) { union { uint64_t u; double d; } x = {v}; return x.d; }
static inline uint64_t UD(double d) { union { double d; uint64_t u; } x = {.d = d}; return x.u; }

static inline int is_signed_t(int t) { return t == T_S8 || t == T_S16 || t == T_S32 || t == T_S64; }
static inline int bits_of(int t) {
    switch (t) {
    case T_U8: case T_S8: return 8;
    case T_U16: case T_S16: case T_F16: case T_BF16: return 16;
    case T_U32: case T_S32: case T_F32: case T_F16X2: case T_BF16X2: return 32;
    case T_PRED: return 1;
    default: return 64;
    }
}
static inline int64_t sext(uint64_t v, int bits) {
    if (bits >= 64) return (int64_t)v;
    int sh = 64 - bits;
    return (int64_t)(v << sh) >> sh;
}
static inline uint64_t zext(uint64_t v, int bits) { return bits >= 64 ? v : v & ((1ull << bits) - 1); }

/* Float value of a register of float type t, as double (exact). */
static inline double fval(uint64_t v, int t) {
    switch (t) {
    case T_F32: return F(v);
    case T_F64: return D(v);
    case T_F16: return ptx_f16_to_f64((uint16_t)v);
    case T_BF16: return ptx_bf16_to_f64((uint16_t)v);
    default: return 0;
    }
}

static inline int directed(int rm) { return rm == RM_RZ || rm == RM_RM || rm == RM_RP; }
static int fe_mode(int rm) {
    switch (rm) {
    case RM_RZ: case RM_RZI: return FE_TOWARDZERO;
    case RM_RM: case RM_RMI: return FE_DOWNWARD;
    case RM_RP: case RM_RPI: return FE_UPWARD;
    default: return FE_TONEAREST;
    }
}

static inline float ftz32(float f) { return (fpclassify(f) == FP_SUBNORMAL) ? copysignf(0.0f, f) : f; }

/* min/max of floats as the PTX ISA defines them (every width: f16/bf16/f32 values are exact in a double): a NaN
 * input gives the other input, two NaNs the canonical NaN (all ones, sign clear: narrowing it to f32 gives
 * 0x7fffffff), and -0.0 is below +0.0 whatever the operand order (libm's fmin/fmax and LLVM's minnum may return
 * either zero). */
static inline double min_max_num(int mx, double x, double y) {
    if (isnan(x) && isnan(y)) {
        const uint64_t canonical = 0x7fffffffffffffffull;
        double n;
        memcpy(&n, &canonical, sizeof(n));
        return n;
    }
    if (isnan(x)) return y;
    if (isnan(y)) return x;
    if (x == y) return (signbit(x) != 0) == mx ? y : x; /* equal values differ at most in the zero's sign */
    return (x < y) != mx ? x : y;
}
static inline uint64_t min_max_f32(int mx, uint64_t a, uint64_t b) { return UF((float)min_max_num(mx, F(a), F(b))); }

/* Result of a float op on doubles, encoded into type t with rounding rm and modifiers. */
static uint64_t fenc(double r, int t, int rm, unsigned flags) {
    if (flags & IF_SAT) r = isnan(r) ? 0.0 : r < 0 ? 0.0 : r > 1 ? 1.0 : r;
    if ((flags & IF_RELU) && (r < 0 || isnan(r))) r = isnan(r) ? NAN : 0.0;
    switch (t) {
    case T_F16: return ptx_f64_to_f16(r, rm);
    case T_BF16: return ptx_f64_to_bf16(r, rm);
    case T_F32: {
        float f = F(ptx_f64_to_f32_bits(r, rm));
        if (flags & IF_FTZ) f = ftz32(f);
        return UF(f);
    }
    default: return UD(r);
    }
}

/* Set while a whole warp instruction runs fop_slow (add/sub/mul/fma/div, rcp/sqrt through unary_float) or
 * int_to_float (cvt from an integer) under a directed rounding mode that fe_hold already set (one fesetround pair
 * per instruction instead of one per lane: the switch cost half of `interval`'s time). */
static __thread int t_fe_held __attribute__((tls_model("initial-exec")));

/* Float binary/ternary ops outside the fast path: half types, directed rounding, ftz, sat.
 * f32/f64 with directed rounding run under fesetround (this function is compiled with
 * rounding-math so nothing is moved across the mode switch), unless fe_hold set it for the warp. */
__attribute__((noinline, optimize("rounding-math"))) static uint64_t fop_slow(int op, int t, uint64_t a, uint64_t b,
                                                                              uint64_t c, int rm, unsigned flags) {
    if (t == T_F16X2 || t == T_BF16X2) {
        int ht = t == T_F16X2 ? T_F16 : T_BF16;
        uint64_t lo = fop_slow(op, ht, a & 0xffff, b & 0xffff, c & 0xffff, rm, flags);
        uint64_t hi = fop_slow(op, ht, (a >> 16) & 0xffff, (b >> 16) & 0xffff, (c >> 16) & 0xffff, rm, flags);
        return (lo & 0xffff) | ((hi & 0xffff) << 16);
    }
    if (t == T_F32 || t == T_F64) {
        int mode = fe_mode(rm);
        int d = directed(rm) && !t_fe_held;
        if (d) fesetround(mode);
        uint64_t out;
        if (t == T_F32) {
            volatile float x = F(a), y = F(b), z = F(c);
            float xx = x, yy = y, zz = z;
            if (flags & IF_FTZ) { xx = ftz32(xx); yy = ftz32(yy); zz = ftz32(zz); }
            float r;
            switch (op) {
            case OP_ADD: r = xx + yy; break;
            case OP_SUB: r = xx - yy; break;
            case OP_MUL_LO: r = xx * yy; break;
            case OP_FMA: r = fmaf(xx, yy, zz); break;
            case OP_DIV: r = xx / yy; break;
            case OP_SQRT: r = sqrtf(xx); break;
            case OP_RCP: r = 1.0f / xx; break;
            case OP_MIN: case OP_MAX: r = (float)min_max_num(op == OP_MAX, xx, yy); break;
            default: r = 0; break;
            }
            volatile float rv = r;
            r = rv;
            if (d) fesetround(FE_TONEAREST);
            if (flags & IF_FTZ) r = ftz32(r);
            if (flags & IF_SAT) r = isnan(r) ? 0.0f : r < 0 ? 0.0f : r > 1 ? 1.0f : r;
            if ((flags & IF_RELU) && r < 0) r = 0;
            out = UF(r);
        } else {
            volatile double x = D(a), y = D(b), z = D(c);
            double xx = x, yy = y, zz = z, r;
            switch (op) {
            case OP_ADD: r = xx + yy; break;
            case OP_SUB: r = xx - yy; break;
            case OP_MUL_LO: r = xx * yy; break;
            case OP_FMA: r = fma(xx, yy, zz); break;
            case OP_DIV: r = xx / yy; break;
            case OP_SQRT: r = sqrt(xx); break;
            case OP_RCP: r = 1.0 / xx; break;
            case OP_MIN: case OP_MAX: r = min_max_num(op == OP_MAX, xx, yy); break;
            default: r = 0; break;
            }
            volatile double rv = r;
            r = rv;
            if (d) fesetround(FE_TONEAREST);
            if (flags & IF_SAT) r = isnan(r) ? 0.0 : r < 0 ? 0.0 : r > 1 ? 1.0 : r;
            out = UD(r);
        }
        return out;
    }
    /* f16 / bf16: exact inputs in double, one rounding into the narrow format */
    double x = fval(a, t), y = fval(b, t), z = fval(c, t), r;
    switch (op) {
    case OP_ADD: r = x + y; break;
    case OP_SUB: r = x - y; break;
    case OP_MUL_LO: r = x * y; break;
    case OP_FMA: r = fma(x, y, z); break;
    case OP_DIV: r = x / y; break;
    case OP_SQRT: r = sqrt(x); break;
    case OP_RCP: r = 1.0 / x; break;
    case OP_MIN: case OP_MAX: r = min_max_num(op == OP_MAX, x, y); break;
    default: r = 0; break;
    }
    return fenc(r, t, rm == RM_NONE ? RM_RN : rm, flags & ~IF_FTZ);
}

/* fe_hold/fe_release bracket one warp instruction's lane loop of fop_slow with f32/f64 directed rounding. */
static inline int fe_hold(int t, int rm) {
    if ((t != T_F32 && t != T_F64) || !directed(rm)) return 0;
    fesetround(fe_mode(rm));
    t_fe_held = 1;
    return 1;
}
static inline void fe_release(int held) {
    if (!held) return;
    t_fe_held = 0;
    fesetround(FE_TONEAREST);
}

static double rint_mode(double x, int rm) {
    switch (rm) {
    case RM_RZI: return trunc(x);
    case RM_RMI: return floor(x);
    case RM_RPI: return ceil(x);
    default: {
        double fl = floor(x), diff = x - fl;
        if (diff > 0.5 || (diff == 0.5 && fmod(fl, 2.0) != 0.0)) fl += 1;
        return fl;
    }
    }
}

__attribute__((noinline, optimize("rounding-math"))) static uint64_t int_to_float(uint64_t v, int st, int dt, int rm) {
    int s = is_signed_t(st);
    int64_t iv = sext(v, bits_of(st));
    uint64_t uv = zext(v, bits_of(st));
    if (dt == T_F16 || dt == T_BF16) {
        double d = s ? (double)iv : (double)uv; /* exact for every value that does not overflow */
        return dt == T_F16 ? ptx_f64_to_f16(d, rm) : ptx_f64_to_bf16(d, rm);
    }
    int dm = directed(rm) && !t_fe_held;
    if (dm) fesetround(fe_mode(rm));
    uint64_t out;
    if (dt == T_F32) {
        volatile float f = s ? (float)iv : (float)uv;
        out = UF(f);
    } else {
        volatile double d = s ? (double)iv : (double)uv;
        out = UD(d);
    }
    if (dm) fesetround(FE_TONEAREST);
    return out;
}

/* cvt for one value. */
static uint64_t cvt1(uint64_t v, int dt, int st, int rm, unsigned flags) {
    int dfl = dt == T_F16 || dt == T_BF16 || dt == T_F32 || dt == T_F64;
    int sfl = st == T_F16 || st == T_BF16 || st == T_F32 || st == T_F64;
    int db = bits_of(dt);
    if (!dfl && !sfl) {
        int ds = is_signed_t(dt);
        if (flags & IF_SAT) {
            /* clamp the source value into the destination range */
            if (is_signed_t(st)) {
                int64_t x = sext(v, bits_of(st));
                int64_t lo = ds ? (db >= 64 ? INT64_MIN : -(1ll << (db - 1))) : 0;
                int64_t hi = ds ? (db >= 64 ? INT64_MAX : (1ll << (db - 1)) - 1) : (db >= 63 ? INT64_MAX : (int64_t)((1ull << db) - 1));
                if (x < lo) x = lo;
                if (x > hi) x = hi;
                v = (uint64_t)x;
            } else {
                uint64_t x = zext(v, bits_of(st));
                uint64_t hi = ds ? (uint64_t)(db >= 64 ? INT64_MAX : (1ll << (db - 1)) - 1) : (db >= 64 ? UINT64_MAX : (1ull << db) - 1);
                if (x > hi) x = hi;
                v = x;
            }
        } else {
            v = is_signed_t(st) ? (uint64_t)sext(v, bits_of(st)) : zext(v, bits_of(st));
        }
        return ds ? (uint64_t)sext(v, db) : zext(v, db);
    }
    if (!sfl) {
        uint64_t r = int_to_float(v, st, dt, rm == RM_NONE ? RM_RN : rm);
        if (flags & IF_SAT) r = fenc(fval(r, dt), dt, RM_RN, IF_SAT);
        return r;
    }
    double x = fval(v, st);
    if ((flags & IF_FTZ) && st == T_F32) x = ftz32((float)x);
    if (!dfl) {
        /* float -> int: round to integral, saturate to the destination range, NaN -> 0 */
        if (isnan(x)) return 0;
        double r = rint_mode(x, rm == RM_NONE ? RM_RZI : rm);
        int ds = is_signed_t(dt);
        if (ds) {
            int64_t lo = db >= 64 ? INT64_MIN : -(1ll << (db - 1));
            int64_t hi = db >= 64 ? INT64_MAX : (1ll << (db - 1)) - 1;
            int64_t iv;
            if (r <= (double)lo) iv = lo;
            else if (r >= (double)hi) iv = hi; /* (double)INT64_MAX rounds up: >= catches it */
            else iv = (int64_t)r;
            return zext((uint64_t)iv, db) | (iv < 0 ? ~zext(~0ull, db) : 0);
        }
        uint64_t hi = db >= 64 ? UINT64_MAX : (1ull << db) - 1;
        if (r <= 0) return 0;
        if (r >= (double)hi) return hi;
        return (uint64_t)r;
    }
    /* float -> float */
    if (rm >= RM_RNI) x = rint_mode(x, rm);
    if (dt == T_F64) {
        if (flags & IF_SAT) x = isnan(x) ? 0.0 : x < 0 ? 0.0 : x > 1 ? 1.0 : x;
        return UD(x);
    }
    int nrm = rm >= RM_RNI || rm == RM_NONE ? RM_RN : rm;
    return fenc(x, dt, nrm, flags);
}

static int cmp_int(int op, int64_t x, int64_t y, uint64_t ux, uint64_t uy, int sgn) {
    switch (op) {
    case CMP_EQ: return ux == uy;
    case CMP_NE: return ux != uy;
    case CMP_LT: return sgn ? x < y : ux < uy;
    case CMP_LE: return sgn ? x <= y : ux <= uy;
    case CMP_GT: return sgn ? x > y : ux > uy;
    case CMP_GE: return sgn ? x >= y : ux >= uy;
    case CMP_LO: return ux < uy;
    case CMP_LS: return ux <= uy;
    case CMP_HI: return ux > uy;
    case CMP_HS: return ux >= uy;
    default: return 0;
    }
}

static inline int cmp_flt(int op, double x, double y) {
    int un = isnan(x) || isnan(y);
    switch (op) {
    case CMP_EQ: return !un && x == y;
    case CMP_NE: return !un && x != y;
    case CMP_LT: return !un && x < y;
    case CMP_LE: return !un && x <= y;
    case CMP_GT: return !un && x > y;
    case CMP_GE: return !un && x >= y;
    case CMP_EQU: return un || x == y;
    case CMP_NEU: return un || x != y;
    case CMP_LTU: return un || x < y;
    case CMP_LEU: return un || x <= y;
    case CMP_GTU: return un || x > y;
    case CMP_GEU: return un || x >= y;
    case CMP_NUM: return !un;
    case CMP_NAN: return un;
    default: return 0;
    }
}

static int compare(const ptx_ins *in, uint64_t a, uint64_t b) {
    int t = in->t2 ? in->t2 : in->t;
    if (t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16) {
        double x = fval(a, t), y = fval(b, t);
        if ((in->flags & IF_FTZ) && t == T_F32) { x = ftz32((float)x); y = ftz32((float)y); }
        return cmp_flt(in->sub, x, y);
    }
    int bits = bits_of(t);
    return cmp_int(in->sub, sext(a, bits), sext(b, bits), zext(a, bits), zext(b, bits), is_signed_t(t));
}

/* ------------------------------------------------------------------ memory */
static inline uint8_t *gaddr(blk *B, uint64_t a, uint64_t n) { return ptx_mem_global(&B->mv, a, n); }

/* Host address of n bytes at a in a state space, NULL when outside it (not recursive, so it inlines into the
 * load/store loops). */
static inline uint8_t *resolve(blk *B, unsigned tid, int space, uint64_t a, uint64_t n) {
    return ptx_mem_resolve(&B->mv, tid, space, a, n);
}

/* One check for a whole warp's access: when every lane in em reads or writes tot bytes at A[l] + off inside one
 * region of the state space (one global allocation, the block's shared memory, the parameter buffer, the
 * thread's local memory) and tot-aligned as the per-lane path requires, returns the shape of the access with
 * the lane's host address A[l] + off + *d + l * *stride (stride: local memory, one slice per thread):
 * SPAN_UNIFORM (a full warp, every lane at one address), SPAN_CONTIG (a full warp at consecutive elements:
 * lane l at A[0] + l * tot), SPAN_HALVES (each half-warp one of those two) or SPAN_GATHER; else SPAN_NONE, and
 * the per-lane path runs (it finds and reports the faulting lane). The full-warp pass is branch-free 64-bit arithmetic the compiler vectorizes. */
enum { SPAN_NONE, SPAN_GATHER, SPAN_UNIFORM, SPAN_CONTIG, SPAN_HALVES, SPAN_OTHER };

/* Over a full warp's 32 addresses: *ors = OR of all, *uni = 0 iff all equal A[0], *con = 0 iff A[l] = A[0] + l*tot. */
static inline __attribute__((always_inline)) void warp_shape(const uint64_t *A, unsigned tot, uint64_t *ors, uint64_t *uni,
                                                             uint64_t *con) {
#ifdef __SSE2__
    const __m128i a0 = _mm_set1_epi64x((long long)A[0]), step = _mm_set1_epi64x(2ll * tot);
    __m128i e = _mm_set_epi64x((long long)(A[0] + tot), (long long)A[0]);
    __m128i o = _mm_setzero_si128(), u = o, c = o;
    for (int l = 0; l < 32; l += 2) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(A + l));
        o = _mm_or_si128(o, v);
        u = _mm_or_si128(u, _mm_xor_si128(v, a0));
        c = _mm_or_si128(c, _mm_xor_si128(v, e));
        e = _mm_add_epi64(e, step);
    }
    uint64_t t[6];
    _mm_storeu_si128((__m128i *)t, o);
    _mm_storeu_si128((__m128i *)(t + 2), u);
    _mm_storeu_si128((__m128i *)(t + 4), c);
    *ors = t[0] | t[1];
    *uni = t[2] | t[3];
    *con = t[4] | t[5];
#else
    uint64_t o = 0, u = 0, c = 0, e = A[0];
    for (int l = 0; l < 32; l++, e += tot) {
        o |= A[l];
        u |= A[l] ^ A[0];
        c |= A[l] ^ e;
    }
    *ors = o;
    *uni = u;
    *con = c;
#endif
}

/* Over the 16 addresses H[0..15] of a half-warp: *uni = 0 iff all equal H[0], *con = 0 iff H[i] = H[0] + i*tot.
 * (A 16x16 thread block reads one row or two rows per warp: the halves are where one address or consecutive
 * elements show.) */
static inline __attribute__((always_inline)) void half_shape(const uint64_t *H, unsigned tot, uint64_t *uni, uint64_t *con) {
#ifdef __SSE2__
    const __m128i a0 = _mm_set1_epi64x((long long)H[0]), step = _mm_set1_epi64x(2ll * tot);
    __m128i e = _mm_set_epi64x((long long)(H[0] + tot), (long long)H[0]);
    __m128i u = _mm_setzero_si128(), c = u;
#pragma GCC unroll 8
    for (int l = 0; l < 16; l += 2) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(H + l));
        u = _mm_or_si128(u, _mm_xor_si128(v, a0));
        c = _mm_or_si128(c, _mm_xor_si128(v, e));
        e = _mm_add_epi64(e, step);
    }
    u = _mm_or_si128(u, _mm_unpackhi_epi64(u, u));
    c = _mm_or_si128(c, _mm_unpackhi_epi64(c, c));
    *uni = (uint64_t)_mm_cvtsi128_si64(u);
    *con = (uint64_t)_mm_cvtsi128_si64(c);
#else
    uint64_t u = 0, c = 0, e = H[0];
    for (int l = 0; l < 16; l++, e += tot) {
        u |= H[l] ^ H[0];
        c |= H[l] ^ e;
    }
    *uni = u;
    *con = c;
#endif
}

/* lazy: a full warp whose addresses are neither one, nor consecutive, nor one or consecutive per half-warp returns
 * SPAN_OTHER unchecked (the caller has a cheaper checked pass of its own for those). SPAN_HALVES: each half-warp
 * h is one address (bit h of *halves clear) or consecutive elements (bit h set) from A[16h] + off + *d. */
static inline __attribute__((always_inline)) int warp_span(blk *B, int sp, const uint64_t *A, uint32_t em, uint64_t off,
                                                           unsigned tot, unsigned tid0, uint64_t *d, uint64_t *stride,
                                                           int lazy, unsigned *halves) {
    uint64_t lo = ~0ull, hi = 0, ors = 0;
    int kind = SPAN_GATHER;
    *stride = 0;
    *halves = 0;
    if (em == FULL) {
        const uint64_t a0 = A[0];
        uint64_t uni, con, uh[2] = {0, 0}, ch[2] = {0, 0};
        int hshape = 0;
        warp_shape(A, tot, &ors, &uni, &con);
        if (uni && con) {
            /* neither shape over the warp: per half-warp (only here, so the common shapes pay nothing more) */
            half_shape(A, tot, &uh[0], &ch[0]);
            half_shape(A + 16, tot, &uh[1], &ch[1]);
            hshape = !((uh[0] && ch[0]) || (uh[1] && ch[1]));
        }
        if (uni && con && lazy && !hshape) return SPAN_OTHER;
        if (!uni) {
            lo = hi = a0 + off;
            kind = SPAN_UNIFORM;
        } else if (!con) {
            lo = a0 + off;
            hi = lo + 31ull * tot;
            if (hi < lo) return SPAN_NONE;
            kind = SPAN_CONTIG;
        } else if (hshape) {
            for (int h = 0; h < 2; h++) {
                const uint64_t l0 = A[16 * h] + off, h0 = l0 + (uh[h] ? 15ull * tot : 0);
                if (h0 < l0) return SPAN_NONE;
                lo = l0 < lo ? l0 : lo;
                hi = h0 > hi ? h0 : hi;
                if (uh[h]) *halves |= 1u << h;
            }
            kind = SPAN_HALVES;
        } else {
            for (int l = 0; l < 32; l++) {
                const uint64_t a = A[l] + off;
                lo = a < lo ? a : lo;
                hi = a > hi ? a : hi;
            }
        }
        /* every lane's a = A[l] + off is tot-aligned iff (A[l] | off) has no low bits set when tot is a
         * power of two; otherwise check each lane as the per-lane path does */
        if (tot & (tot - 1)) {
            uint64_t mis = 0;
            for (int l = 0; l < 32; l++) mis |= (A[l] + off) & (tot - 1);
            if (mis) return SPAN_NONE;
        } else if ((ors | off) & (tot - 1)) {
            return SPAN_NONE;
        }
    } else {
        if (!em) { *d = 0; return SPAN_GATHER; }
        for (uint32_t m = em; m; m &= m - 1) {
            const uint64_t a = A[__builtin_ctz(m)] + off;
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
            ors |= a & (tot - 1);
        }
        if (ors) return SPAN_NONE;
    }
    if (hi + tot < hi) return SPAN_NONE;
    const ptx_memview *v = &B->mv;
    uint64_t base = 0;
    switch (sp) {
    case SP_GLOBAL:
    case SP_CONST:
        goto global;
    case SP_SHARED:
        goto shared;
    case SP_KPARAM:
        goto kparam;
    case SP_LOCAL:
        goto local;
    default:
        if (hi < PTX_SHARED_BASE) goto global;
        if (lo >= PTX_SHARED_BASE && hi < PTX_SHARED_BASE + PTX_WIN_SIZE) { base = PTX_SHARED_BASE; goto shared; }
        if (lo >= PTX_LOCAL_BASE && hi < PTX_LOCAL_BASE + PTX_WIN_SIZE) { base = PTX_LOCAL_BASE; goto local; }
        if (lo >= PTX_PARAM_BASE && hi < PTX_PARAM_BASE + PTX_WIN_SIZE) { base = PTX_PARAM_BASE; goto kparam; }
        return SPAN_NONE;
    }
global:
    if (!ptx_mem_global(v, lo, hi - lo + tot)) return SPAN_NONE;
    *d = 0;
    return kind;
shared:
    if (!ptx_mem_shared(v, hi - base, tot)) return SPAN_NONE;
    *d = (uint64_t)(uintptr_t)v->smem - base;
    return kind;
kparam:
    if (!ptx_mem_kparam(v, hi - base, tot)) return SPAN_NONE;
    *d = (uint64_t)(uintptr_t)v->cfg->param_buffer - base;
    return kind;
local:
    if (!ptx_mem_local(v, tid0, hi - base, tot)) return SPAN_NONE;
    *d = (uint64_t)(uintptr_t)v->lmem + (uint64_t)tid0 * v->lsize - base;
    *stride = v->lsize;
    return SPAN_GATHER; /* a slice per thread: neither one address nor consecutive */
}
#define SPAN_PTR(l) ((uint8_t *)(uintptr_t)(S(ia) + (uint64_t)off + sd + (uint64_t)(l) * sst))

static const char *space_name(int sp) {
    static const char *n[] = {"generic", "global", "shared", "local", "const", "param"};
    return sp >= 0 && sp < 6 ? n[sp] : "?";
}

static void thread_coords(const blk *B, unsigned tid, unsigned *x, unsigned *y, unsigned *z) {
    const unsigned *b = B->cfg->block;
    *x = tid % b[0];
    *y = (tid / b[0]) % b[1];
    *z = tid / (b[0] * b[1]);
}

static void fault(blk *B, const ptx_ins *in, unsigned tid, uint64_t a, uint64_t n, int misaligned) {
    unsigned x, y, z;
    thread_coords(B, tid, &x, &y, &z);
    fail(B, misaligned ? PTXE_MISALIGNED_ADDRESS : PTXE_ILLEGAL_ADDRESS,
         "%s %s address 0x%llx (%llu bytes, %s) in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
         misaligned ? "misaligned" : "illegal", in->op == OP_ST ? "store to" : in->op == OP_LD ? "load from" : "access to",
         (unsigned long long)a, (unsigned long long)n, space_name(in->space), B->k->name, in->line, B->bid[0], B->bid[1],
         B->bid[2], x, y, z);
}

static inline uint64_t load_elem(const uint8_t *p, int t) {
    switch (t) {
    case T_U8: return p[0];
    case T_S8: return (uint64_t)(int64_t)(int8_t)p[0];
    case T_PRED: return p[0] & 1;
    case T_U16: case T_F16: case T_BF16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case T_S16: { int16_t v; memcpy(&v, p, 2); return (uint64_t)(int64_t)v; }
    case T_U32: case T_F32: case T_F16X2: case T_BF16X2: { uint32_t v; memcpy(&v, p, 4); return v; }
    case T_S32: { int32_t v; memcpy(&v, p, 4); return (uint64_t)(int64_t)v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static inline void store_elem(uint8_t *p, uint64_t v, unsigned es) {
    switch (es) {
    case 1: p[0] = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

/* Reads a NUL-terminated string at a generic address into buf (truncated). */
static int read_cstr(blk *B, unsigned tid, uint64_t a, char *buf, size_t cap) {
    size_t i = 0;
    for (; i + 1 < cap; i++) {
        const uint8_t *p = resolve(B, tid, SP_GENERIC, a + i, 1);
        if (!p) { buf[i] = 0; return -1; }
        buf[i] = (char)*p;
        if (!*p) return 0;
    }
    buf[i] = 0;
    return 0;
}

static uint64_t local_u64(blk *B, unsigned tid, int64_t off) {
    const uint8_t *p = resolve(B, tid, SP_LOCAL, (uint64_t)off, 8);
    uint64_t v = 0;
    if (p) memcpy(&v, p, 8);
    return v;
}

void (*ptx_device_print)(const char *text, size_t len);
int (*ptx_graph_set_conditional)(uint64_t handle, unsigned value);

/* printf from a kernel: formats vprintf's (format, packed argument buffer) pair. */
static int do_printf(blk *B, const ptx_ins *in, unsigned tid) {
    char fmt[2048], out[8192], sval[2048];
    uint64_t fa = local_u64(B, tid, in->imm);
    uint64_t args = local_u64(B, tid, in->b);
    if (read_cstr(B, tid, fa, fmt, sizeof(fmt))) return -1;
    size_t o = 0, ao = 0;
    int nargs = 0;
    for (const char *p = fmt; *p && o < sizeof(out) - 1;) {
        if (*p != '%') { out[o++] = *p++; continue; }
        if (p[1] == '%') { out[o++] = '%'; p += 2; continue; }
        char spec[64];
        size_t sl = 0;
        spec[sl++] = *p++;
        int longs = 0, star_vals[2], nstar = 0;
        while (*p && strchr("-+ #0123456789.*hlLqjzt", *p) && sl < sizeof(spec) - 4) {
            if (*p == 'l' || *p == 'L' || *p == 'q' || *p == 'j' || *p == 'z' || *p == 't') { longs++; p++; continue; }
            if (*p == 'h') { p++; continue; }
            if (*p == '*' && nstar < 2) {
                ao = (ao + 3) & ~(size_t)3;
                const uint8_t *q = resolve(B, tid, SP_GENERIC, args + ao, 4);
                int v = 0;
                if (q) memcpy(&v, q, 4);
                ao += 4;
                star_vals[nstar++] = v;
            }
            spec[sl++] = *p++;
        }
        char conv = *p ? *p++ : 0;
        if (!conv) break;
        int n = 0;
        size_t room = sizeof(out) - o;
        nargs++;
        if (strchr("diouxXc", conv)) {
            size_t sz = longs ? 8 : 4;
            ao = (ao + sz - 1) & ~(sz - 1);
            const uint8_t *q = resolve(B, tid, SP_GENERIC, args + ao, sz);
            uint64_t v = 0;
            if (q) memcpy(&v, q, sz);
            ao += sz;
            spec[sl++] = 'l';
            spec[sl++] = 'l';
            spec[sl++] = conv;
            spec[sl] = 0;
            long long sv = sz == 8 ? (long long)v : (strchr("di", conv) ? (long long)(int32_t)v : (long long)(uint32_t)v);
            if (conv == 'c') { spec[sl - 3] = 'c'; spec[sl - 2] = 0; }
            if (conv == 'c') n = nstar == 1 ? snprintf(out + o, room, spec, star_vals[0], (int)sv) : snprintf(out + o, room, spec, (int)sv);
            else if (nstar == 1) n = snprintf(out + o, room, spec, star_vals[0], sv);
            else if (nstar == 2) n = snprintf(out + o, room, spec, star_vals[0], star_vals[1], sv);
            else n = snprintf(out + o, room, spec, sv);
        } else if (strchr("feEgGaAF", conv)) {
            ao = (ao + 7) & ~(size_t)7;
            const uint8_t *q = resolve(B, tid, SP_GENERIC, args + ao, 8);
            double v = 0;
            if (q) memcpy(&v, q, 8);
            ao += 8;
            spec[sl++] = conv;
            spec[sl] = 0;
            if (nstar == 1) n = snprintf(out + o, room, spec, star_vals[0], v);
            else if (nstar == 2) n = snprintf(out + o, room, spec, star_vals[0], star_vals[1], v);
            else n = snprintf(out + o, room, spec, v);
        } else if (conv == 's' || conv == 'p') {
            ao = (ao + 7) & ~(size_t)7;
            const uint8_t *q = resolve(B, tid, SP_GENERIC, args + ao, 8);
            uint64_t v = 0;
            if (q) memcpy(&v, q, 8);
            ao += 8;
            if (conv == 's') {
                if (!v) snprintf(sval, sizeof(sval), "(null)");
                else if (read_cstr(B, tid, v, sval, sizeof(sval))) snprintf(sval, sizeof(sval), "(bad pointer)");
                spec[sl++] = 's';
                spec[sl] = 0;
                if (nstar == 1) n = snprintf(out + o, room, spec, star_vals[0], sval);
                else if (nstar == 2) n = snprintf(out + o, room, spec, star_vals[0], star_vals[1], sval);
                else n = snprintf(out + o, room, spec, sval);
            } else {
                n = snprintf(out + o, room, "0x%llx", (unsigned long long)v);
            }
        } else {
            n = snprintf(out + o, room, "%%%c", conv);
        }
        if (n > 0) o += (size_t)n < room ? (size_t)n : room - 1;
    }
    out[o < sizeof(out) ? o : sizeof(out) - 1] = 0;
    if (ptx_device_print) {
        ptx_device_print(out, strlen(out));
    } else {
        flockfile(stdout);
        fputs(out, stdout);
        fflush(stdout);
        funlockfile(stdout);
    }
    if (in->c >= 0) {
        uint8_t *r = resolve(B, tid, SP_LOCAL, (uint64_t)in->c, 4);
        int32_t v = nargs;
        if (r) memcpy(r, &v, 4);
    }
    return 0;
}

static void do_assert(blk *B, const ptx_ins *in, unsigned tid) {
    char msg[512], file[512], func[512];
    uint64_t mp = local_u64(B, tid, in->a), fp = local_u64(B, tid, in->b), fnp = local_u64(B, tid, in->e);
    uint32_t line = (uint32_t)local_u64(B, tid, in->c);
    if (read_cstr(B, tid, mp, msg, sizeof(msg))) snprintf(msg, sizeof(msg), "?");
    if (read_cstr(B, tid, fp, file, sizeof(file))) snprintf(file, sizeof(file), "?");
    if (read_cstr(B, tid, fnp, func, sizeof(func))) snprintf(func, sizeof(func), "?");
    unsigned x, y, z;
    thread_coords(B, tid, &x, &y, &z);
    fprintf(stderr, "%s:%u: %s: block: [%u,%u,%u], thread: [%u,%u,%u] Assertion `%s` failed.\n", file, line, func,
            B->bid[0], B->bid[1], B->bid[2], x, y, z, msg);
    fail(B, PTXE_ASSERT, "device-side assert in kernel %s: %s:%u: Assertion `%s` failed", B->k->name, file, line, msg);
}

/* ------------------------------------------------------------------ atomics */
static uint64_t atom_apply(int op, int t, uint64_t old, uint64_t b, uint64_t c) {
    int bits = bits_of(t);
    switch (op) {
    case AT_ADD:
        if (t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2) return fop_slow(OP_ADD, t, old, b, 0, RM_RN, 0);
        if (t == T_F32) return UF(F(old) + F(b));
        if (t == T_F64) return UD(D(old) + D(b));
        return old + b;
    case AT_MIN:
    case AT_MAX: {
        int mx = op == AT_MAX;
        if (t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2) return fop_slow(mx ? OP_MAX : OP_MIN, t, old, b, 0, RM_RN, 0);
        if (t == T_F32) return min_max_f32(mx, old, b);
        if (t == T_F64) return UD(min_max_num(mx, D(old), D(b)));
        if (is_signed_t(t)) {
            int64_t x = sext(old, bits), y = sext(b, bits);
            return (uint64_t)((mx ? x > y : x < y) ? x : y);
        }
        uint64_t x = zext(old, bits), y = zext(b, bits);
        return (mx ? x > y : x < y) ? x : y;
    }
    case AT_INC: { uint64_t x = zext(old, bits), y = zext(b, bits); return x >= y ? 0 : x + 1; }
    case AT_DEC: { uint64_t x = zext(old, bits), y = zext(b, bits); return (x == 0 || x > y) ? y : x - 1; }
    case AT_AND: return old & b;
    case AT_OR: return old | b;
    case AT_XOR: return old ^ b;
    case AT_EXCH: return b;
    case AT_CAS: return zext(old, bits) == zext(b, bits) ? c : old;
    default: return old;
    }
}

static uint64_t atom_do(uint8_t *p, int es, int op, int t, uint64_t b, uint64_t c);
uint64_t ptx_atom_do(uint8_t *p, int es, int op, int t, uint64_t b, uint64_t c) { return atom_do(p, es, op, t, b, c); }
static uint64_t atom_do(uint8_t *p, int es, int op, int t, uint64_t b, uint64_t c) {
    if (es == 2) {
        /* 16-bit atomics: compare-and-swap on the aligned 32-bit word holding the half */
        uintptr_t a = (uintptr_t)p;
        uint32_t *q = (uint32_t *)(a & ~(uintptr_t)3);
        int sh = (int)(a & 2) * 8;
        uint32_t old = __atomic_load_n(q, __ATOMIC_RELAXED);
        for (;;) {
            uint16_t o16 = (uint16_t)(old >> sh);
            uint16_t n16 = (uint16_t)atom_apply(op, t, o16, b & 0xffff, c & 0xffff);
            uint32_t nv = (old & ~(0xffffu << sh)) | ((uint32_t)n16 << sh);
            if (__atomic_compare_exchange_n(q, &old, nv, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return o16;
        }
    }
    if (es == 4) {
        uint32_t *q = (uint32_t *)p;
        if (op == AT_ADD && t != T_F32 && t != T_F16X2 && t != T_BF16X2) return __atomic_fetch_add(q, (uint32_t)b, __ATOMIC_SEQ_CST);
        if (op == AT_EXCH) return __atomic_exchange_n(q, (uint32_t)b, __ATOMIC_SEQ_CST);
        if (op == AT_CAS) {
            uint32_t exp = (uint32_t)b;
            __atomic_compare_exchange_n(q, &exp, (uint32_t)c, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
            return exp;
        }
        uint32_t old = __atomic_load_n(q, __ATOMIC_RELAXED);
        for (;;) {
            uint32_t nv = (uint32_t)atom_apply(op, t, old, b, c);
            if (__atomic_compare_exchange_n(q, &old, nv, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return old;
        }
    }
    uint64_t *q = (uint64_t *)p;
    if (op == AT_ADD && t != T_F64) return __atomic_fetch_add(q, b, __ATOMIC_SEQ_CST);
    if (op == AT_EXCH) return __atomic_exchange_n(q, b, __ATOMIC_SEQ_CST);
    if (op == AT_CAS) {
        uint64_t exp = b;
        __atomic_compare_exchange_n(q, &exp, c, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        return exp;
    }
    uint64_t old = __atomic_load_n(q, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t nv = atom_apply(op, t, old, b, c);
        if (__atomic_compare_exchange_n(q, &old, nv, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return old;
    }
}

/* ------------------------------------------------------------------ special registers */
static uint64_t now_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

unsigned ptx_sm_clock_khz;

/* %clock64 = host CLOCK_MONOTONIC scaled to the reported SM clock: ns * kHz / 1e6 (128-bit product: no
 * overflow after months of uptime); %clock and %clock_hi are its low and high halves, as on the part. */
uint64_t ptx_sreg_time(int sr) {
    unsigned khz = __atomic_load_n(&ptx_sm_clock_khz, __ATOMIC_RELAXED);
    switch (sr) {
    case SR_CLOCK:
    case SR_CLOCK_HI:
    case SR_CLOCK64: {
        uint64_t ns = now_ns(CLOCK_MONOTONIC);
        uint64_t c = khz ? (uint64_t)((unsigned __int128)ns * khz / 1000000u) : ns;
        return sr == SR_CLOCK64 ? c : sr == SR_CLOCK ? (uint32_t)c : (uint32_t)(c >> 32);
    }
    case SR_GTIMER: return now_ns(CLOCK_REALTIME);
    case SR_GTIMER_LO: return (uint32_t)now_ns(CLOCK_REALTIME);
    case SR_GTIMER_HI: return (uint32_t)(now_ns(CLOCK_REALTIME) >> 32);
    default: return 0;
    }
}

static uint64_t sreg_value(const blk *B, int sr, unsigned w, unsigned l) {
    const ptx_launch_cfg *cfg = B->cfg;
    unsigned tid = w * 32 + l;
    switch (sr) {
    case SR_TID_X: return tid % cfg->block[0];
    case SR_TID_Y: return (tid / cfg->block[0]) % cfg->block[1];
    case SR_TID_Z: return tid / (cfg->block[0] * cfg->block[1]);
    case SR_NTID_X: return cfg->block[0];
    case SR_NTID_Y: return cfg->block[1];
    case SR_NTID_Z: return cfg->block[2];
    case SR_CTAID_X: return B->bid[0];
    case SR_CTAID_Y: return B->bid[1];
    case SR_CTAID_Z: return B->bid[2];
    case SR_NCTAID_X: return cfg->grid[0];
    case SR_NCTAID_Y: return cfg->grid[1];
    case SR_NCTAID_Z: return cfg->grid[2];
    case SR_LANEID: return l;
    case SR_WARPID: return w;
    case SR_NWARPID: return B->nwarps;
    case SR_SMID: return (uint64_t)B->worker;
    case SR_NSMID: return (uint64_t)(cfg->worker_threads > 0 ? cfg->worker_threads : 1);
    case SR_GRIDID: return 0;
    case SR_LANEMASK_EQ: return 1u << l;
    case SR_LANEMASK_LT: return (1u << l) - 1;
    case SR_LANEMASK_LE: return l == 31 ? FULL : (2u << l) - 1;
    case SR_LANEMASK_GT: return l == 31 ? 0 : ~((2u << l) - 1);
    case SR_LANEMASK_GE: return ~((1u << l) - 1);
    case SR_ENVREG1: return B->L->coop_ws >> 32;
    case SR_ENVREG2: return B->L->coop_ws & 0xffffffffu;
    case SR_DYN_SMEM: return cfg->dynamic_shared_bytes;
    case SR_TOTAL_SMEM: return B->mv.smem_size;
    default: return ptx_sreg_time(sr);
    }
}

/* Special registers whose value changes from one block of a launch to the next (the others are filled once
 * per launch and host thread, in blk_init). */
static inline int sreg_per_block(int sr) { return sr == SR_CTAID_X || sr == SR_CTAID_Y || sr == SR_CTAID_Z; }

/* The 32 lanes of special register sr for warp w at the start of a block (every block of every launch does
 * this, so no per-lane switch or division: thread indices step through the block shape incrementally, and the
 * registers that do not depend on the lane are computed once). */
static void fill_special(const blk *B, int sr, unsigned w, uint64_t *R) {
    const ptx_launch_cfg *cfg = B->cfg;
    switch (sr) {
    case SR_TID_X: case SR_TID_Y: case SR_TID_Z: {
        const unsigned bx = cfg->block[0], by = cfg->block[1], t0 = w * 32;
        unsigned x = t0 % bx, y = (t0 / bx) % by, z = t0 / (bx * by);
        for (unsigned l = 0; l < 32; l++) {
            R[l] = sr == SR_TID_X ? x : sr == SR_TID_Y ? y : z;
            if (++x == bx) {
                x = 0;
                if (++y == by) y = 0, z++;
            }
        }
        return;
    }
    case SR_LANEID: case SR_LANEMASK_EQ: case SR_LANEMASK_LT: case SR_LANEMASK_LE: case SR_LANEMASK_GT:
    case SR_LANEMASK_GE:
        for (unsigned l = 0; l < 32; l++) R[l] = sreg_value(B, sr, w, l);
        return;
    default: {
        const uint64_t v = sreg_value(B, sr, w, 0);
        for (unsigned l = 0; l < 32; l++) R[l] = v;
        return;
    }
    }
}

/* Full-warp f32 fma with the FMA instruction when the host has it (fmaf() is a libm call). */
__attribute__((target("fma"))) static void fma32_warp_hw(uint64_t *d, const uint64_t *a, const uint64_t *b, const uint64_t *c) {
    for (int l = 0; l < 32; l++) d[l] = UF(__builtin_fmaf(F(a[l]), F(b[l]), F(c[l])));
}
static void fma32_warp_sw(uint64_t *d, const uint64_t *a, const uint64_t *b, const uint64_t *c) {
    for (int l = 0; l < 32; l++) d[l] = UF(fmaf(F(a[l]), F(b[l]), F(c[l])));
}
static void (*fma32_warp)(uint64_t *, const uint64_t *, const uint64_t *, const uint64_t *);
static pthread_once_t fma_once = PTHREAD_ONCE_INIT;
static void pick_fma(void) {
    __builtin_cpu_init();
    fma32_warp = __builtin_cpu_supports("fma") ? fma32_warp_hw : fma32_warp_sw;
}

/* ------------------------------------------------------------------ scheduling */
static void resched(warp_st *W) {
    uint32_t act = W->live & ~W->exited & ~W->atbar & ~W->wsync;
    W->cur_mask = 0;
    W->min_wait = INT_MAX;
    if (!act && (W->wsync & ~W->atbar & ~W->exited)) {
        /* every runnable lane waits at a warp sync whose other members cannot arrive (exited or
         * blocked elsewhere): let the lowest parked group go ahead with the lanes it has */
        uint32_t ws = W->wsync & ~W->atbar & ~W->exited;
        int mn = INT_MAX;
        for (uint32_t m = ws; m; m &= m - 1) if (W->pc[__builtin_ctz(m)] < mn) mn = W->pc[__builtin_ctz(m)];
        for (uint32_t m = ws; m; m &= m - 1) if (W->pc[__builtin_ctz(m)] == mn) W->wsync &= ~(1u << __builtin_ctz(m));
        W->force_sync_pc = mn;
        act = W->live & ~W->exited & ~W->atbar & ~W->wsync;
    }
    if (!act) return;
    /* the common case, a converged warp: every runnable lane at one pc (one SSE2 compare per 4 lanes) */
    const int p0 = W->pc[__builtin_ctz(act)];
    uint32_t eq = 0;
#ifdef __SSE2__
    const __m128i pv = _mm_set1_epi32(p0);
    for (int i = 0; i < 8; i++)
        eq |= (uint32_t)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(W->pc + 4 * i)), pv)))
              << (4 * i);
#else
    for (int l = 0; l < 32; l++) eq |= (uint32_t)(W->pc[l] == p0) << l;
#endif
    if (!(act & ~eq)) {
        W->cur_pc = p0;
        W->cur_mask = act;
        W->min_wait = INT_MAX;
        return;
    }
    int mn = INT_MAX;
    for (uint32_t m = act; m; m &= m - 1) {
        int l = __builtin_ctz(m);
        if (W->pc[l] < mn) mn = W->pc[l];
    }
    uint32_t cm = 0;
    int mw = INT_MAX;
    for (uint32_t m = act; m; m &= m - 1) {
        int l = __builtin_ctz(m);
        if (W->pc[l] == mn) cm |= 1u << l;
        else if (W->pc[l] < mw) mw = W->pc[l];
    }
    W->cur_pc = mn;
    W->cur_mask = cm;
    W->min_wait = mw;
}

/* Bit l = bit 0 of predicate register lane P[l]: the guard of every predicated instruction. SSE2: the low dwords
 * shifted so bit 0 is the sign, packed with signed saturation (which keeps the sign) to bytes, one movemask per
 * half-warp (~40 host instructions instead of ~100 for the shift-or loop). */
static inline uint32_t pred_mask(const uint64_t *P) {
#ifdef __SSE2__
    uint32_t m = 0;
    for (int h = 0; h < 2; h++) {
        const uint64_t *Q = P + 16 * h;
        __m128i d[4];
        for (int k = 0; k < 4; k++) {
            const __m128 x = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)(Q + 4 * k)));
            const __m128 y = _mm_castsi128_ps(_mm_loadu_si128((const __m128i *)(Q + 4 * k + 2)));
            d[k] = _mm_slli_epi32(_mm_castps_si128(_mm_shuffle_ps(x, y, _MM_SHUFFLE(2, 0, 2, 0))), 31);
        }
        const __m128i b = _mm_packs_epi16(_mm_packs_epi32(d[0], d[1]), _mm_packs_epi32(d[2], d[3]));
        m |= (uint32_t)_mm_movemask_epi8(b) << (16 * h);
    }
    return m;
#else
    uint32_t m = 0;
    for (int l = 0; l < 32; l++) m |= (uint32_t)(P[l] & 1) << l;
    return m;
#endif
}

static inline void store_pcs(warp_st *W, int pc, uint32_t cm) {
    if (cm == FULL) {
        for (int l = 0; l < 32; l++) W->pc[l] = pc; /* vectorized */
        return;
    }
    for (uint32_t m = cm; m; m &= m - 1) W->pc[__builtin_ctz(m)] = pc;
}

#define S(x) R[(size_t)(x) * 32 + l]
#define LOOP(...)                                                                             \
    do {                                                                                      \
        if (em == FULL) {                                                                     \
            _Pragma("GCC ivdep") for (int l = 0; l < 32; l++) { __VA_ARGS__; }               \
        } else {                                                                              \
            for (uint32_t m_ = em; m_; m_ &= m_ - 1) {                                        \
                const int l = __builtin_ctz(m_);                                              \
                __VA_ARGS__;                                                                  \
            }                                                                                 \
        }                                                                                     \
    } while (0)
/* LOOP of fop_slow with the rounding mode of f32/f64 directed rounding set once for the warp. */
#define FOP_LOOP(t, rm, ...)                                                                  \
    do {                                                                                      \
        const int held_ = fe_hold((t), (rm));                                                 \
        LOOP(__VA_ARGS__);                                                                    \
        fe_release(held_);                                                                    \
    } while (0)

/* Integer binary op over the three widths; X and Y are the operands, EXPR the result. */
#define INT_BIN(EXPR)                                                                         \
    switch (in->t) {                                                                          \
    case T_U16: case T_S16: case T_U8: case T_S8:                                             \
        LOOP(uint16_t X = (uint16_t)S(ia); uint16_t Y = (uint16_t)S(ib); S(id) = (uint16_t)(EXPR)); break; \
    case T_U32: case T_S32:                                                                   \
        LOOP(uint32_t X = (uint32_t)S(ia); uint32_t Y = (uint32_t)S(ib); S(id) = (uint32_t)(EXPR)); break; \
    default:                                                                                  \
        LOOP(uint64_t X = S(ia); uint64_t Y = S(ib); S(id) = (uint64_t)(EXPR)); break;        \
    }

static inline uint64_t mulhi_u64(uint64_t a, uint64_t b) { return (uint64_t)(((unsigned __int128)a * b) >> 64); }
static inline uint64_t mulhi_s64(uint64_t a, uint64_t b) { return (uint64_t)(((__int128)(int64_t)a * (int64_t)b) >> 64); }

static uint64_t int_div(int t, uint64_t a, uint64_t b, int rem) {
    int bits = bits_of(t);
    if (is_signed_t(t)) {
        int64_t x = sext(a, bits), y = sext(b, bits);
        if (y == 0) return rem ? zext((uint64_t)x, bits) : zext(~0ull, bits);
        if (y == -1) return rem ? 0 : zext((uint64_t)0 - (uint64_t)x, bits);
        return zext((uint64_t)(rem ? x % y : x / y), bits);
    }
    uint64_t x = zext(a, bits), y = zext(b, bits);
    if (y == 0) return rem ? x : zext(~0ull, bits);
    return rem ? x % y : x / y;
}

static uint64_t bfe1(int t, uint64_t a, uint32_t pos, uint32_t len) {
    int msb = bits_of(t) - 1;
    pos &= 0xff;
    len &= 0xff;
    int sgn = is_signed_t(t);
    uint64_t sbit = 0;
    if (sgn && len) {
        uint32_t top = pos + len - 1;
        if (top > (uint32_t)msb) top = (uint32_t)msb;
        sbit = (a >> top) & 1;
    }
    uint64_t d = 0;
    for (int i = 0; i <= msb; i++) {
        uint64_t bit = ((uint32_t)i < len && pos + (uint32_t)i <= (uint32_t)msb) ? (a >> (pos + (uint32_t)i)) & 1 : sbit;
        d |= bit << i;
    }
    return d;
}

static uint64_t bfi1(int t, uint64_t a, uint64_t b, uint32_t pos, uint32_t len) {
    int msb = bits_of(t) - 1;
    pos &= 0xff;
    len &= 0xff;
    uint64_t d = zext(b, msb + 1);
    for (uint32_t i = 0; i < len && pos + i <= (uint32_t)msb; i++) {
        d &= ~(1ull << (pos + i));
        d |= ((a >> i) & 1) << (pos + i);
    }
    return d;
}

static uint32_t prmt1(uint32_t a, uint32_t b, uint32_t c) {
    uint64_t bytes = (uint64_t)a | ((uint64_t)b << 32);
    uint32_t d = 0;
    for (int i = 0; i < 4; i++) {
        uint32_t sel = (c >> (4 * i)) & 0xf;
        uint32_t byte = (uint32_t)(bytes >> (8 * (sel & 7))) & 0xff;
        if (sel & 8) byte = (byte & 0x80) ? 0xff : 0;
        d |= byte << (8 * i);
    }
    return d;
}

static uint64_t lop3_1(uint64_t a, uint64_t b, uint64_t c, unsigned lut) {
    uint64_t r = 0;
    for (int i = 0; i < 8; i++) {
        if (!((lut >> i) & 1)) continue;
        uint64_t x = (i & 4) ? a : ~a, y = (i & 2) ? b : ~b, z = (i & 1) ? c : ~c;
        r |= x & y & z;
    }
    return r;
}

static uint64_t unary_int(int op, int t, uint64_t a, int sub) {
    int bits = bits_of(t);
    uint64_t x = zext(a, bits);
    switch (op) {
    case OP_ABS: { int64_t v = sext(a, bits); return zext(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, bits); }
    case OP_NEG: return zext((uint64_t)0 - x, bits);
    case OP_NOT: return t == T_PRED ? !(a & 1) : zext(~x, bits);
    case OP_CNOT: return x == 0 ? 1 : 0;
    case OP_POPC: return (uint64_t)__builtin_popcountll(x);
    case OP_CLZ: return x == 0 ? (uint64_t)bits : (uint64_t)(__builtin_clzll(x) - (64 - bits));
    case OP_BREV: {
        uint64_t r = 0;
        for (int i = 0; i < bits; i++) r |= ((x >> i) & 1) << (bits - 1 - i);
        return r;
    }
    case OP_BFIND: {
        int pos = -1;
        if (is_signed_t(t)) {
            int64_t v = sext(a, bits);
            uint64_t y = zext(v < 0 ? ~(uint64_t)v : (uint64_t)v, bits);
            if (y) pos = 63 - __builtin_clzll(y);
        } else if (x) {
            pos = 63 - __builtin_clzll(x);
        }
        if (pos < 0) return 0xffffffffu;
        return sub ? (uint64_t)(bits - 1 - pos) : (uint64_t)pos;
    }
    default: return 0;
    }
}

static uint64_t unary_float(int op, int t, uint64_t a, int rm, unsigned flags) {
    if (t == T_F16X2 || t == T_BF16X2) {
        int ht = t == T_F16X2 ? T_F16 : T_BF16;
        return (unary_float(op, ht, a & 0xffff, rm, flags) & 0xffff) | ((unary_float(op, ht, (a >> 16) & 0xffff, rm, flags) & 0xffff) << 16);
    }
    if (op == OP_ABS || op == OP_NEG) {
        int bits = bits_of(t);
        uint64_t sb = 1ull << (bits - 1);
        uint64_t v = zext(a, bits);
        if (flags & IF_FTZ && t == T_F32) v = UF(ftz32(F(v)));
        return op == OP_ABS ? v & ~sb : v ^ sb;
    }
    double x = fval(a, t);
    if ((flags & IF_FTZ) && t == T_F32) x = ftz32((float)x);
    double r;
    int approx = (flags & IF_APPROX) != 0;
    switch (op) {
    case OP_RCP:
        if (!approx && (t == T_F32 || t == T_F64) && rm != RM_NONE && rm != RM_RN) return fop_slow(OP_RCP, t, a, 0, 0, rm, flags);
        r = 1.0 / x;
        break;
    case OP_SQRT:
        if (!approx && (t == T_F32 || t == T_F64) && rm != RM_NONE && rm != RM_RN) return fop_slow(OP_SQRT, t, a, 0, 0, rm, flags);
        if (t == T_F32) return fenc(sqrtf((float)x), t, RM_RN, flags);
        r = sqrt(x);
        break;
    case OP_RSQRT: r = 1.0 / sqrt(x); break;
    case OP_SIN: r = sin(x); break;
    case OP_COS: r = cos(x); break;
    case OP_EX2: r = exp2(x); break;
    case OP_LG2: r = log2(x); break;
    case OP_TANH: r = tanh(x); break;
    default: r = 0; break;
    }
    if (t == T_F32 && (op == OP_RCP)) return fenc((float)(1.0f / (float)x), t, RM_RN, flags);
    return fenc(r, t, RM_RN, flags);
}

/* testp.{finite, infinite, number, notanumber, normal, subnormal} (which, the parser's order); the ISA counts
 * both zeros as normal numbers. */
static int testp1(int which, int t, uint64_t a) {
    double x = fval(a, t);
    int c = fpclassify(x);
    if (t == T_F32) c = fpclassify(F(a));
    switch (which) {
    case 0: return isfinite(x);
    case 1: return isinf(x);
    case 2: return !isnan(x);
    case 3: return isnan(x) ? 1 : 0;
    case 4: return c == FP_NORMAL || c == FP_ZERO;
    case 5: return c == FP_SUBNORMAL;
    default: return 0;
    }
}

/* ------------------------------------------------------------------ one lane, for the JIT */
/* Lane value of d (and *d2 for setp's second destination) for one instruction ptx_alu_lane_covers
 * (ptx_jit.h) accepts, with the expressions of run_warp's cases (directed rounding: fop_slow and
 * int_to_float set the mode themselves when fe_hold did not). The JIT runs the forms it does not
 * generate inline through it (ptx_jit_alu), so both engines give the same bits. */
uint64_t ptx_alu_lane(const ptx_ins *in, uint64_t a, uint64_t b, uint64_t c, uint64_t e, uint64_t *d2) {
    const int t = in->t;
    switch (in->op) {
    case OP_ADD: case OP_SUB:
        if (t == T_S32 && (in->flags & IF_SAT) && !(t == T_F32 || t == T_F64)) {
            int64_t s = in->op == OP_ADD ? (int64_t)(int32_t)a + (int32_t)b : (int64_t)(int32_t)a - (int32_t)b;
            s = s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s;
            return (uint32_t)s;
        }
        __attribute__((fallthrough)); /* float */
    case OP_MUL_LO:
        if (t == T_F32 && !in->flags && in->rm <= RM_RN)
            return in->op == OP_ADD ? UF(F(a) + F(b)) : in->op == OP_SUB ? UF(F(a) - F(b)) : UF(F(a) * F(b));
        if (t == T_F64 && !in->flags && in->rm <= RM_RN)
            return in->op == OP_ADD ? UD(D(a) + D(b)) : in->op == OP_SUB ? UD(D(a) - D(b)) : UD(D(a) * D(b));
        return fop_slow(in->op, t, a, b, 0, in->rm, in->flags);
    case OP_FMA:
        if (t == T_F32 && !in->flags && in->rm <= RM_RN) return UF(fmaf(F(a), F(b), F(c)));
        if (t == T_F64 && !in->flags && in->rm <= RM_RN) return UD(fma(D(a), D(b), D(c)));
        return fop_slow(OP_FMA, t, a, b, c, in->rm, in->flags);
    case OP_DIV:
        if (t == T_F32 && !(in->flags & ~IF_APPROX) && in->rm <= RM_RN) return UF(F(a) / F(b));
        if (t == T_F64 && !in->flags && in->rm <= RM_RN) return UD(D(a) / D(b));
        return fop_slow(OP_DIV, t, a, b, 0, in->rm, in->flags & ~IF_APPROX);
    case OP_MIN: case OP_MAX:
        if (t == T_F32 && !in->flags) return min_max_f32(in->op == OP_MAX, a, b);
        return fop_slow(in->op, t, a, b, 0, RM_RN, in->flags);
    case OP_ABS: case OP_NEG:
    case OP_RCP: case OP_SQRT: case OP_RSQRT: case OP_SIN: case OP_COS: case OP_EX2: case OP_LG2: case OP_TANH:
        return unary_float(in->op, t, a, in->rm, in->flags);
    case OP_BFIND: return unary_int(in->op, t, a, in->sub);
    case OP_BFE: return bfe1(t, a, (uint32_t)b, (uint32_t)c);
    case OP_BFI: return bfi1(t, a, b, (uint32_t)c, (uint32_t)e);
    case OP_PRMT: return prmt1((uint32_t)a, (uint32_t)b, (uint32_t)c);
    case OP_TESTP: return (uint64_t)testp1(in->sub, t, a);
    case OP_COPYSIGN: {
        const int bits = bits_of(t);
        const uint64_t sb = 1ull << (bits - 1);
        return (zext(b, bits) & ~sb) | (a & sb);
    }
    case OP_MAD_HI:
        switch (t) {
        case T_U16: return (uint16_t)((((uint32_t)(uint16_t)a * (uint16_t)b) >> 16) + c);
        case T_S16: return (uint16_t)((uint32_t)(((int32_t)(int16_t)a * (int16_t)b) >> 16) + (uint32_t)c);
        case T_U32: return (uint32_t)((((uint64_t)(uint32_t)a * (uint32_t)b) >> 32) + c);
        case T_S32:
            if (in->flags & IF_SAT) {
                int64_t s = (((int64_t)(int32_t)a * (int32_t)b) >> 32) + (int32_t)c;
                s = s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s;
                return (uint32_t)s;
            }
            return (uint32_t)((uint64_t)(((int64_t)(int32_t)a * (int32_t)b) >> 32) + c);
        case T_U64: return mulhi_u64(a, b) + c;
        default: return mulhi_s64(a, b) + c;
        }
    case OP_MUL24_LO: case OP_MAD24_LO: {
        const int add = in->op == OP_MAD24_LO;
        if (t == T_S32) { int64_t x = sext(a, 24), y = sext(b, 24); return (uint32_t)((uint64_t)(x * y) + (add ? c : 0)); }
        uint64_t x = a & 0xffffff, y = b & 0xffffff;
        return (uint32_t)(x * y + (add ? c : 0));
    }
    case OP_SAD: {
        const int bits = bits_of(t);
        uint64_t diff = is_signed_t(t) ? (sext(a, bits) > sext(b, bits) ? (uint64_t)(sext(a, bits) - sext(b, bits))
                                                                         : (uint64_t)(sext(b, bits) - sext(a, bits)))
                                       : (zext(a, bits) > zext(b, bits) ? zext(a, bits) - zext(b, bits) : zext(b, bits) - zext(a, bits));
        return zext(diff + c, bits);
    }
    case OP_DP4A: {
        const int sa = is_signed_t(t), sb = is_signed_t(in->t2);
        uint32_t x = (uint32_t)a, y = (uint32_t)b;
        int64_t acc = (sa || sb) ? (int64_t)(int32_t)c : (int64_t)(uint32_t)c;
        for (int k = 0; k < 4; k++) {
            int64_t p = sa ? (int8_t)(x >> (8 * k)) : (uint8_t)(x >> (8 * k));
            int64_t q = sb ? (int8_t)(y >> (8 * k)) : (uint8_t)(y >> (8 * k));
            acc += p * q;
        }
        return (uint32_t)acc;
    }
    case OP_DP2A: {
        const int sa = is_signed_t(t), sb = is_signed_t(in->t2), hi = in->sub;
        uint32_t x = (uint32_t)a, y = (uint32_t)b;
        int64_t acc = (sa || sb) ? (int64_t)(int32_t)c : (int64_t)(uint32_t)c;
        for (int k = 0; k < 2; k++) {
            int64_t p = sa ? (int16_t)(x >> (16 * k)) : (uint16_t)(x >> (16 * k));
            int sh = 8 * (k + (hi ? 2 : 0));
            int64_t q = sb ? (int8_t)(y >> sh) : (uint8_t)(y >> sh);
            acc += p * q;
        }
        return (uint32_t)acc;
    }
    case OP_SETP: case OP_SET: {
        const int bop = in->bop, cb = (int)(c & 1) ^ ((in->flags & IF_NEG_C) != 0);
        if (in->t2 == T_F16X2 || in->t2 == T_BF16X2) {
            ptx_ins h = *in;
            h.t2 = in->t2 == T_F16X2 ? T_F16 : T_BF16;
            int lo = compare(&h, a & 0xffff, b & 0xffff), hi = compare(&h, (a >> 16) & 0xffff, (b >> 16) & 0xffff);
            if (bop) { lo = bop == 1 ? (lo & cb) : bop == 2 ? (lo | cb) : (lo ^ cb); hi = bop == 1 ? (hi & cb) : bop == 2 ? (hi | cb) : (hi ^ cb); }
            if (in->op == OP_SETP) { *d2 = (uint64_t)hi; return (uint64_t)lo; }
            const uint64_t one = t == T_F16X2 ? 0x3c00 : t == T_BF16X2 ? 0x3f80 : 0xffff;
            return (lo ? one : 0) | ((hi ? one : 0) << 16);
        }
        int r = compare(in, a, b), nr = !r;
        if (bop) {
            if (bop == 1) { r &= cb; nr &= cb; } else if (bop == 2) { r |= cb; nr |= cb; } else { r ^= cb; nr ^= cb; }
        }
        if (in->op == OP_SETP) { *d2 = (uint64_t)nr; return (uint64_t)r; }
        return t == T_F32 ? (r ? UF(1.0f) : 0) : (r ? zext(~0ull, bits_of(t)) : 0);
    }
    case OP_SLCT:
        if (in->t2 == T_F32) return F(c) >= 0.0f ? a : b;
        return (int32_t)c >= 0 ? a : b;
    case OP_CVT: {
        const int st = in->t2;
        if (t == T_U64 && st == T_U32) return (uint32_t)a;
        if (t == T_S64 && st == T_S32) return (uint64_t)(int64_t)(int32_t)a;
        if ((t == T_U32 || t == T_S32) && (st == T_U64 || st == T_S64) && !in->flags) return (uint32_t)a;
        if (t == T_F32 && st == T_S32 && in->rm <= RM_RN && !in->flags) return UF((float)(int32_t)a);
        if (t == T_F32 && st == T_U32 && in->rm <= RM_RN && !in->flags) return UF((float)(uint32_t)a);
        if (t == T_F64 && st == T_F32 && !in->flags) return UD((double)F(a));
        return cvt1(a, t, st, in->rm, in->flags);
    }
    case OP_CVT_PACK: {
        const int ht = t == T_F16X2 ? T_F16 : T_BF16;
        return ((cvt1(a, ht, T_F32, in->rm, in->flags) & 0xffff) << 16) | (cvt1(b, ht, T_F32, in->rm, in->flags) & 0xffff);
    }
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ barriers (bar / barrier) */
/* The PTX ISA's bar: a thread waits until all non-exited threads of its warp execute a barrier, which
 * marks the warp's arrival; bar.sync / bar.red then wait for the barrier to complete, bar.arrive goes on.
 * Completion: `count` threads (its multiple of 32 as warps) have arrived, or without a count every warp not
 * exited. A count of exactly the block's warps is read the second way as well (the warps that exited do not
 * come); one above them never completes (a GPU hangs: bar_settle fails the launch). */
static unsigned bar_warps_needed(const blk *B, const bar_st *br) {
    const unsigned want = br->count ? (br->count + 31) / 32 : B->nwarps;
    if (want != B->nwarps) return want;
    unsigned n = 0;
    for (unsigned w = 0; w < B->nwarps; w++) n += (B->w[w].live & ~B->w[w].exited) != 0;
    return n;
}

/* The barriers named by W's lanes in m (bits); one bit in ids (the usual case) needs no look at the lanes. */
static uint32_t bar_ids_of(const warp_st *W, uint32_t m, uint32_t ids) {
    if (!m || !(ids & (ids - 1))) return m ? ids : 0;
    uint32_t r = 0;
    for (; m; m &= m - 1) r |= 1u << W->bar_of[__builtin_ctz(m)];
    return r;
}

/* Completes barrier id if its arrivals suffice: publishes bar.red's reduction and releases its waiting lanes
 * (the warps other than `cur`, the one running, are rescheduled; cur's lanes run at its next reschedule).
 * 1 if it completed. */
static int bar_complete(blk *B, unsigned id, warp_st *cur) {
    bar_st *br = &B->bars[id];
    if (!br->warps || br->warps < bar_warps_needed(B, br)) return 0;
    br->out_count = br->red_count;
    br->out_and = br->red_and;
    br->out_or = br->red_or;
    br->red_count = 0;
    br->red_and = 1;
    br->red_or = 0;
    br->warps = br->count = br->arrives = 0;
    B->bars_arrived &= ~(1u << id);
    for (unsigned w = 0; w < B->nwarps; w++) {
        warp_st *W = &B->w[w];
        if (!(W->counted_ids & (1u << id))) continue;
        uint32_t rel = W->counted;
        if (W->counted_ids != 1u << id) {
            rel = 0;
            for (uint32_t m = W->counted; m; m &= m - 1)
                if (W->bar_of[__builtin_ctz(m)] == id) rel |= 1u << __builtin_ctz(m);
        }
        W->atbar &= ~rel;
        W->counted &= ~rel;
        W->counted_ids = (uint16_t)bar_ids_of(W, W->counted, W->counted_ids & ~(1u << id));
        if (W != cur && !W->cur_mask) resched(W);
    }
    return 1;
}

/* Counts W's arrival if every non-exited lane waits at a barrier and some of them are not counted yet: its
 * bar.arrive lanes go on at once. A barrier arrived at completes here when warps outside it may still run
 * (a count below the block's, or a bar.arrive among the arrivals: a producer that arrives and then spins);
 * a whole-block barrier of bar.sync / bar.red alone completes when no warp can run (bar_settle), as the
 * JIT's block function does, so both engines run the warps in one order. */
static void bar_arrive_warp(blk *B, warp_st *W) {
    const uint32_t fresh = W->atbar & ~W->counted;
    if (!fresh || (W->live & ~W->exited & ~W->atbar)) return;
    const uint32_t ids = W->fresh_ids, arriving = W->arriving & fresh;
    const uint32_t arrive_ids = bar_ids_of(W, arriving, ids);
    W->counted |= fresh & ~arriving;
    W->counted_ids |= (uint16_t)bar_ids_of(W, fresh & ~arriving, ids);
    W->atbar &= ~arriving;
    W->arriving = 0;
    W->fresh_ids = 0;
    B->bars_arrived |= ids;
    for (uint32_t m = ids; m; m &= m - 1) {
        bar_st *br = &B->bars[__builtin_ctz(m)];
        br->warps++;
        if (arrive_ids & (m & -m)) br->arrives = 1;
    }
    for (uint32_t m = ids; m; m &= m - 1) {
        const unsigned id = (unsigned)__builtin_ctz(m);
        const bar_st *br = &B->bars[id];
        if (br->arrives || (br->count && (br->count + 31) / 32 != B->nwarps)) bar_complete(B, id, W);
    }
}

/* No warp can run: counts the warps whose last running lanes exited, completes what can complete. 1 if some
 * warp can run again, 0 if every warp is done, -1 (the launch failed) if warps wait at barriers that
 * cannot complete: a deadlock, where a GPU hangs. */
static int bar_settle(blk *B) {
    for (unsigned w = 0; w < B->nwarps; w++) bar_arrive_warp(B, &B->w[w]);
    for (uint32_t m = B->bars_arrived; m; m &= m - 1) bar_complete(B, (unsigned)__builtin_ctz(m), NULL);
    int waiting = 0;
    for (unsigned w = 0; w < B->nwarps; w++) {
        if (B->w[w].cur_mask) return 1;
        if (B->w[w].atbar) waiting = 1;
    }
    if (!waiting) return 0;
    const unsigned id = B->bars_arrived ? (unsigned)__builtin_ctz(B->bars_arrived) : 0;
    fail(B, PTXE_LAUNCH_FAILED, "barrier deadlock in kernel %s, block (%u,%u,%u): threads wait at barrier %u (%u warps arrived, "
         "%u needed) and nothing else can run", B->k->name, B->bid[0], B->bid[1], B->bid[2], id, B->bars[id].warps,
         bar_warps_needed(B, &B->bars[id]));
    return -1;
}

/* Runs one warp until it has no runnable lanes (exit/barrier), yields, or fails.
 * Returns 0 (blocked or done), 1 (yielded) or -1 (error). */
/* Descriptor behind handle h (cached per block: kernels mostly use one or two objects). */
static const ptx_texdesc *tex_of(blk *B, uint64_t h, int surf) {
    if (B->tex_d && B->tex_h == h && B->tex_surf == surf) return B->tex_d;
    const ptx_texdesc *d = ptx_tex_resolve ? ptx_tex_resolve(h, surf) : NULL;
    if (d) { B->tex_h = h; B->tex_surf = surf; B->tex_d = d; }
    return d;
}

static float f32_of(uint64_t v) { union { uint32_t u; float f; } x = {(uint32_t)v}; return x.f; }

/* sured.b / sured.p for lane l at (c3[0], c3[1], z): an atomic reduction into the surface element. .b: x in
 * bytes, the instruction's type; .p: x in texels of a 32-bit integer format whose texel is the instruction's
 * size, signed when the format is (SINT -> .s32/.s64, else unsigned), as the ISA says. Out of range: .trap
 * fails the launch, .clamp moves the access, .zero drops it. */
static int sured_one(blk *B, const ptx_ins *in, uint64_t *R, const ptx_texdesc *d, int l, unsigned tid0, int geom,
                     const int64_t c3[3], int64_t z) {
    const unsigned n = in->esize;
    int t = in->t;
    unsigned x, y, zz;
    if (in->bop) {
        if (d->esize != n || (d->fmt != PTXTF_U32 && d->fmt != PTXTF_S32)) {
            thread_coords(B, tid0 + (unsigned)l, &x, &y, &zz);
            fail(B, PTXE_ILLEGAL_INSTRUCTION, "sured.p.b%u on a surface of %u-byte texels of format %d (needs 32-bit integer channels, %u bytes a texel) in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
                 8 * n, d->esize, d->fmt, n, B->k->name, in->line, B->bid[0], B->bid[1], B->bid[2], x, y, zz);
            return -1;
        }
        t = d->fmt == PTXTF_S32 ? (n == 8 ? T_S64 : T_S32) : (n == 8 ? T_U64 : T_U32);
    }
    int trap = 0;
    uint8_t *p = ptx_surf_addr(d, geom, in->bop ? c3[0] * (int64_t)d->esize : c3[0], c3[1], z, n, in->rm, &trap);
    if (trap) {
        thread_coords(B, tid0 + (unsigned)l, &x, &y, &zz);
        fail(B, PTXE_LAUNCH_FAILED, "sured out of range (.trap) at (%lld, %lld, %lld) in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
             (long long)c3[0], (long long)c3[1], (long long)z, B->k->name, in->line, B->bid[0], B->bid[1], B->bid[2], x, y, zz);
        return -1;
    }
    if (!p) return 0;
    if ((uintptr_t)p % n) {
        thread_coords(B, tid0 + (unsigned)l, &x, &y, &zz);
        fail(B, PTXE_MISALIGNED_ADDRESS, "sured at byte %lld is not %u-byte aligned in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
             (long long)c3[0], n, B->k->name, in->line, B->bid[0], B->bid[1], B->bid[2], x, y, zz);
        return -1;
    }
    atom_do(p, (int)n, (int)in->imm, t, S(in->v[0]), 0);
    return 0;
}

/* tex, tld4, txq/suq, suld, sust, sured over the lanes in em (encoding: compile_texinst in ptx_parse.c). */
static int exec_tex(blk *B, const ptx_ins *in, uint64_t *R, uint32_t em, unsigned tid0) {
    const int32_t *co = in->op == OP_TXQ ? NULL : B->k->lists + in->c;
    const int surf = in->op == OP_SULD || in->op == OP_SUST || in->op == OP_SURED || (in->op == OP_TXQ && in->bop);
    for (uint32_t m_ = em; m_; m_ &= m_ - 1) {
        const int l = __builtin_ctz(m_);
        uint64_t h = S(in->a);
        const ptx_texdesc *d = tex_of(B, h, surf);
        if (!d) {
            unsigned x, y, z;
            thread_coords(B, tid0 + (unsigned)l, &x, &y, &z);
            fail(B, PTXE_ILLEGAL_ADDRESS, "%s: 0x%llx is no live %s object, in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
                 ptx_op_name(in->op), (unsigned long long)h, surf ? "surface" : "texture", B->k->name, in->line, B->bid[0],
                 B->bid[1], B->bid[2], x, y, z);
            return -1;
        }
        if (in->op == OP_TXQ) {
            S(in->d) = ptx_tex_query(d, in->sub, in->b >= 0 ? (int)(int32_t)S(in->b) : 0);
            continue;
        }
        const int geom = in->sub;
        const int arrayed = geom == PTXG_A1D || geom == PTXG_A2D || geom == PTXG_ACUBE;
        const int first = arrayed ? 1 : 0;
        if (in->op == OP_TEX || in->op == OP_TLD4) {
            float fc[3] = {0, 0, 0};
            int32_t ic[3] = {0, 0, 0};
            const int nco = in->esize;
            for (int k = 0; k < 3 && first + k < nco; k++) {
                uint64_t v = S(co[first + k]);
                fc[k] = f32_of(v);
                ic[k] = (int32_t)v;
            }
            const int int_coords = in->t2 == T_S32;
            if (int_coords) for (int k = 0; k < 3; k++) fc[k] = (float)ic[k];
            int layer = arrayed ? (int32_t)S(co[0]) : 0;
            uint32_t out[4];
            int32_t off[3];
            if (in->b >= 0) {
                const int32_t *ol = B->k->lists + in->b;
                for (int k = 0; k < 3; k++) off[k] = (int32_t)S(ol[k]);
            }
            const int32_t *offp = in->b >= 0 ? off : NULL;
            if (in->op == OP_TLD4) {
                ptx_tex_gather(d, geom, fc, layer, in->rm, offp, in->t == T_F32, out);
            } else {
                float lod = in->bop == 1 ? f32_of(S(in->e)) : 0.0f, gx[3] = {0, 0, 0}, gy[3] = {0, 0, 0};
                if (in->bop == 2) {
                    const int32_t *g = B->k->lists + in->imm;
                    for (int k = 0; k < 3; k++) { gx[k] = f32_of(S(g[k])); gy[k] = f32_of(S(g[3 + k])); }
                }
                ptx_tex_sample(d, geom, fc, ic, int_coords, layer, in->bop, lod, gx, gy, offp, in->t == T_F32, out);
            }
            for (int k = 0; k < 4; k++) S(in->v[k]) = out[k];
            continue;
        }
        /* suld / sust: x in bytes; layer first for .a1d/.a2d */
        int64_t c3[3] = {0, 0, 0};
        for (int k = 0; k < 3 && first + k < in->t2; k++) c3[k] = (int32_t)S(co[first + k]);
        int64_t z = arrayed ? (int32_t)S(co[0]) : (geom == PTXG_3D ? c3[2] : 0);
        if (geom == PTXG_A1D) c3[1] = 0;
        if (in->op == OP_SURED) {
            if (sured_one(B, in, R, d, l, tid0, geom, c3, z)) return -1;
            continue;
        }
        const unsigned es = in->esize, nv = in->vec, tot = in->bop ? d->esize : es * nv;
        int trap = 0;
        uint8_t *p = ptx_surf_addr(d, geom, in->bop ? c3[0] * (int64_t)d->esize : c3[0], c3[1], z, tot, in->rm, &trap);
        if (trap) {
            unsigned x, y, zz;
            thread_coords(B, tid0 + (unsigned)l, &x, &y, &zz);
            fail(B, PTXE_LAUNCH_FAILED, "%s out of range (.trap) at (%lld, %lld, %lld) in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
                 ptx_op_name(in->op), (long long)c3[0], (long long)c3[1], (long long)z, B->k->name, in->line, B->bid[0],
                 B->bid[1], B->bid[2], x, y, zz);
            return -1;
        }
        if (in->op == OP_SULD) {
            for (unsigned k = 0; k < nv; k++) S(in->v[k]) = p ? load_elem(p + k * es, in->t) : 0;
        } else if (p && in->bop) {
            uint32_t vals[4] = {0, 0, 0, 0};
            for (unsigned k = 0; k < nv && k < 4; k++) vals[k] = (uint32_t)S(in->v[k]);
            ptx_surf_pack(d, vals, d->fmt == PTXTF_F32 || d->fmt == PTXTF_F16 || d->fmt >= PTXTF_UNORM8, p);
        } else if (p) {
            for (unsigned k = 0; k < nv; k++) store_elem(p + k * es, S(in->v[k]), es);
        }
    }
    return 0;
}

static int run_warp(blk *B, warp_st *W, unsigned wi) {
    const ptx_ins *code = B->k->code;
    uint64_t *R = W->R;
    int pc = W->cur_pc;
    uint32_t cm = W->cur_mask;
    int minw = W->min_wait;
    uint64_t cnt = 0;
    int backs = 0;
    int ret = 0;
    const unsigned tid0 = wi * 32;
    for (;;) {
        const ptx_ins *in = &code[pc];
        if (in->wsync) {
            /* shfl/vote/match/redux .sync and bar.warp.sync: wait for the membermask's lanes */
            /* lanes at the same pc may name different member masks (one per labeled group): wait
             * for the union; each lane computes over its own mask below. A whole warp running
             * together has every member there (the warp matrix instructions' case: no mask to read) */
            uint32_t here = 0;
            for (uint32_t m = W->wsync; m; m &= m - 1) if (W->pc[__builtin_ctz(m)] == pc) here |= 1u << __builtin_ctz(m);
            if (cm != FULL) {
                uint32_t mk = 0;
                for (uint32_t m = cm; m; m &= m - 1) mk |= (uint32_t)R[(size_t)in->e * 32 + (unsigned)__builtin_ctz(m)];
                const uint32_t need = mk & W->live & ~W->exited;
                if ((need & ~(cm | here)) && W->force_sync_pc != pc) {
                    store_pcs(W, pc, cm);
                    W->wsync |= cm;
                    goto reschedule;
                }
            }
            W->force_sync_pc = -1;
            if (here) {
                W->wsync &= ~here;
                cm |= here;
                minw = INT_MAX;
                for (uint32_t m = W->live & ~W->exited & ~W->atbar & ~W->wsync & ~cm; m; m &= m - 1)
                    if (W->pc[__builtin_ctz(m)] < minw) minw = W->pc[__builtin_ctz(m)];
            }
        }
        cnt++;
        uint32_t em = cm;
        if (in->pred >= 0) {
            const uint32_t pm = pred_mask(R + (size_t)in->pred * 32);
            em = in->pneg ? cm & ~pm : cm & pm;
        }
        int next = pc + 1;
        const int id = in->d, ia = in->a, ib = in->b, ic = in->c;
        const int t = in->t;
        switch (in->op) {
        case OP_NOP:
            break;
        case OP_MOV:
            if (t == T_U32 || t == T_S32 || t == T_F32) LOOP(S(id) = (uint32_t)S(ia));
            else if (t == T_U16 || t == T_S16 || t == T_F16 || t == T_BF16) LOOP(S(id) = (uint16_t)S(ia));
            else if (t == T_PRED) LOOP(S(id) = S(ia) & 1);
            else LOOP(S(id) = S(ia));
            break;
        case OP_PACK: {
            const unsigned eb = in->esize * 8u;
            LOOP(uint64_t v = 0; for (int k = in->vec - 1; k >= 0; k--) v = (v << eb) | zext(S(in->v[k]), (int)eb); S(id) = v);
            break;
        }
        case OP_UNPACK: {
            const unsigned eb = in->esize * 8u;
            LOOP(uint64_t v = S(ia); for (int k = 0; k < in->vec; k++) { S(in->v[k]) = zext(v, (int)eb); v = eb >= 64 ? 0 : v >> eb; });
            break;
        }
        case OP_SREG: {
            if (in->sub >= SR_FIRST_DYNAMIC) { /* %clock*, %globaltimer*: read now */
                uint64_t v = sreg_value(B, in->sub, wi, 0);
                LOOP(S(id) = v);
            }
            break;
        }
        case OP_ADD:
            if (t == T_F32 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UF(F(S(ia)) + F(S(ib))));
            else if (t == T_F64 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UD(D(S(ia)) + D(S(ib))));
            else if ((t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2))
                FOP_LOOP(t, in->rm, S(id) = fop_slow(OP_ADD, t, S(ia), S(ib), 0, in->rm, in->flags));
            else if (in->flags & (IF_CC | IF_USE_CC)) {
                const int ie = in->e, use = (in->flags & IF_USE_CC) != 0, set = (in->flags & IF_CC) != 0;
                if (bits_of(t) == 32) LOOP(uint64_t s = (uint64_t)(uint32_t)S(ia) + (uint32_t)S(ib) + (use ? (S(ie) & 1) : 0);
                                           S(id) = (uint32_t)s; if (set) S(ie) = s >> 32);
                else LOOP(unsigned __int128 s = (unsigned __int128)S(ia) + S(ib) + (use ? (S(ie) & 1) : 0);
                          S(id) = (uint64_t)s; if (set) S(ie) = (uint64_t)(s >> 64));
            } else if ((in->flags & IF_SAT) && t == T_S32) {
                LOOP(int64_t s = (int64_t)(int32_t)S(ia) + (int32_t)S(ib); s = s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s;
                     S(id) = (uint32_t)s);
            } else {
                INT_BIN(X + Y);
            }
            break;
        case OP_SUB:
            if (t == T_F32 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UF(F(S(ia)) - F(S(ib))));
            else if (t == T_F64 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UD(D(S(ia)) - D(S(ib))));
            else if (t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2)
                FOP_LOOP(t, in->rm, S(id) = fop_slow(OP_SUB, t, S(ia), S(ib), 0, in->rm, in->flags));
            else if (in->flags & (IF_CC | IF_USE_CC)) {
                const int ie = in->e, use = (in->flags & IF_USE_CC) != 0, set = (in->flags & IF_CC) != 0;
                if (bits_of(t) == 32) LOOP(uint64_t x = (uint32_t)S(ia), y = (uint64_t)(uint32_t)S(ib) + (use ? (S(ie) & 1) : 0);
                                           S(id) = (uint32_t)(x - y); if (set) S(ie) = x < y);
                else LOOP(unsigned __int128 x = S(ia), y = (unsigned __int128)S(ib) + (use ? (S(ie) & 1) : 0);
                          S(id) = (uint64_t)(x - y); if (set) S(ie) = x < y);
            } else if ((in->flags & IF_SAT) && t == T_S32) {
                LOOP(int64_t s = (int64_t)(int32_t)S(ia) - (int32_t)S(ib); s = s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s;
                     S(id) = (uint32_t)s);
            } else {
                INT_BIN(X - Y);
            }
            break;
        case OP_MUL_LO:
            if (t == T_F32 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UF(F(S(ia)) * F(S(ib))));
            else if (t == T_F64 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UD(D(S(ia)) * D(S(ib))));
            else if (t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2)
                FOP_LOOP(t, in->rm, S(id) = fop_slow(OP_MUL_LO, t, S(ia), S(ib), 0, in->rm, in->flags));
            else if (t == T_U16 || t == T_S16) LOOP(S(id) = (uint16_t)((uint32_t)(uint16_t)S(ia) * (uint16_t)S(ib)));
            else INT_BIN(X * Y);
            break;
        case OP_MUL_HI:
            switch (t) {
            case T_U16: LOOP(S(id) = ((uint32_t)(uint16_t)S(ia) * (uint16_t)S(ib)) >> 16); break;
            case T_S16: LOOP(S(id) = (uint16_t)(((int32_t)(int16_t)S(ia) * (int16_t)S(ib)) >> 16)); break;
            case T_U32: LOOP(S(id) = ((uint64_t)(uint32_t)S(ia) * (uint32_t)S(ib)) >> 32); break;
            case T_S32: LOOP(S(id) = (uint32_t)(((int64_t)(int32_t)S(ia) * (int32_t)S(ib)) >> 32)); break;
            case T_U64: LOOP(S(id) = mulhi_u64(S(ia), S(ib))); break;
            default: LOOP(S(id) = mulhi_s64(S(ia), S(ib))); break;
            }
            break;
        case OP_MUL_WIDE:
            switch (t) {
            case T_U16: LOOP(S(id) = (uint32_t)(uint16_t)S(ia) * (uint16_t)S(ib)); break;
            case T_S16: LOOP(S(id) = (uint32_t)((int32_t)(int16_t)S(ia) * (int16_t)S(ib))); break;
            case T_U32: LOOP(S(id) = (uint64_t)(uint32_t)S(ia) * (uint32_t)S(ib)); break;
            default: LOOP(S(id) = (uint64_t)((int64_t)(int32_t)S(ia) * (int32_t)S(ib))); break;
            }
            break;
        case OP_MAD_LO:
            if (in->flags & (IF_CC | IF_USE_CC)) {
                const int ie = in->e, use = (in->flags & IF_USE_CC) != 0, set = (in->flags & IF_CC) != 0;
                if (bits_of(t) == 32) LOOP(uint64_t s = (uint64_t)(uint32_t)((uint32_t)S(ia) * (uint32_t)S(ib)) + (uint32_t)S(ic) + (use ? (S(ie) & 1) : 0);
                                           S(id) = (uint32_t)s; if (set) S(ie) = s >> 32);
                else LOOP(unsigned __int128 s = (unsigned __int128)(S(ia) * S(ib)) + S(ic) + (use ? (S(ie) & 1) : 0);
                          S(id) = (uint64_t)s; if (set) S(ie) = (uint64_t)(s >> 64));
                break;
            }
            switch (t) {
            case T_U16: case T_S16: LOOP(S(id) = (uint16_t)((uint32_t)(uint16_t)S(ia) * (uint16_t)S(ib) + (uint16_t)S(ic))); break;
            case T_U32: case T_S32: LOOP(S(id) = (uint32_t)((uint32_t)S(ia) * (uint32_t)S(ib) + (uint32_t)S(ic))); break;
            default: LOOP(S(id) = S(ia) * S(ib) + S(ic)); break;
            }
            break;
        case OP_MAD_HI:
            if (in->flags & (IF_CC | IF_USE_CC)) {
                const int ie = in->e, use = (in->flags & IF_USE_CC) != 0, set = (in->flags & IF_CC) != 0;
                if (bits_of(t) == 32) {
                    if (t == T_S32) LOOP(uint64_t h = (uint32_t)(((int64_t)(int32_t)S(ia) * (int32_t)S(ib)) >> 32);
                                         uint64_t s = h + (uint32_t)S(ic) + (use ? (S(ie) & 1) : 0); S(id) = (uint32_t)s; if (set) S(ie) = s >> 32);
                    else LOOP(uint64_t h = ((uint64_t)(uint32_t)S(ia) * (uint32_t)S(ib)) >> 32;
                              uint64_t s = h + (uint32_t)S(ic) + (use ? (S(ie) & 1) : 0); S(id) = (uint32_t)s; if (set) S(ie) = s >> 32);
                } else {
                    LOOP(uint64_t h = t == T_S64 ? mulhi_s64(S(ia), S(ib)) : mulhi_u64(S(ia), S(ib));
                         unsigned __int128 s = (unsigned __int128)h + S(ic) + (use ? (S(ie) & 1) : 0);
                         S(id) = (uint64_t)s; if (set) S(ie) = (uint64_t)(s >> 64));
                }
                break;
            }
            switch (t) {
            case T_U16: LOOP(S(id) = (uint16_t)((((uint32_t)(uint16_t)S(ia) * (uint16_t)S(ib)) >> 16) + S(ic))); break;
            case T_S16: LOOP(S(id) = (uint16_t)((uint32_t)(((int32_t)(int16_t)S(ia) * (int16_t)S(ib)) >> 16) + (uint32_t)S(ic))); break;
            case T_U32: LOOP(S(id) = (uint32_t)((((uint64_t)(uint32_t)S(ia) * (uint32_t)S(ib)) >> 32) + S(ic))); break;
            case T_S32:
                if (in->flags & IF_SAT)
                    LOOP(int64_t s = (((int64_t)(int32_t)S(ia) * (int32_t)S(ib)) >> 32) + (int32_t)S(ic);
                         s = s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s; S(id) = (uint32_t)s);
                else LOOP(S(id) = (uint32_t)((uint64_t)(((int64_t)(int32_t)S(ia) * (int32_t)S(ib)) >> 32) + S(ic)));
                break;
            case T_U64: LOOP(S(id) = mulhi_u64(S(ia), S(ib)) + S(ic)); break;
            default: LOOP(S(id) = mulhi_s64(S(ia), S(ib)) + S(ic)); break;
            }
            break;
        case OP_MAD_WIDE:
            switch (t) {
            case T_U16: LOOP(S(id) = (uint32_t)((uint32_t)(uint16_t)S(ia) * (uint16_t)S(ib) + (uint32_t)S(ic))); break;
            case T_S16: LOOP(S(id) = (uint32_t)((uint32_t)((int32_t)(int16_t)S(ia) * (int16_t)S(ib)) + (uint32_t)S(ic))); break;
            case T_U32: LOOP(S(id) = (uint64_t)(uint32_t)S(ia) * (uint32_t)S(ib) + S(ic)); break;
            default: LOOP(S(id) = (uint64_t)((int64_t)(int32_t)S(ia) * (int32_t)S(ib)) + S(ic)); break;
            }
            break;
        case OP_MUL24_LO:
        case OP_MAD24_LO: {
            const int add = in->op == OP_MAD24_LO;
            if (t == T_S32) LOOP(int64_t x = sext(S(ia), 24), y = sext(S(ib), 24); S(id) = (uint32_t)((uint64_t)(x * y) + (add ? S(ic) : 0)));
            else LOOP(uint64_t x = S(ia) & 0xffffff, y = S(ib) & 0xffffff; S(id) = (uint32_t)(x * y + (add ? S(ic) : 0)));
            break;
        }
        case OP_SAD: {
            const int bits = bits_of(t), sg = is_signed_t(t);
            LOOP(uint64_t diff = sg ? (sext(S(ia), bits) > sext(S(ib), bits) ? (uint64_t)(sext(S(ia), bits) - sext(S(ib), bits))
                                                                                : (uint64_t)(sext(S(ib), bits) - sext(S(ia), bits)))
                                    : (zext(S(ia), bits) > zext(S(ib), bits) ? zext(S(ia), bits) - zext(S(ib), bits)
                                                                              : zext(S(ib), bits) - zext(S(ia), bits));
                 S(id) = zext(diff + S(ic), bits));
            break;
        }
        case OP_FMA:
            if (t == T_F32 && !in->flags && in->rm <= RM_RN && em == FULL) fma32_warp(R + (size_t)id * 32, R + (size_t)ia * 32, R + (size_t)ib * 32, R + (size_t)ic * 32);
            else if (t == T_F32 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UF(fmaf(F(S(ia)), F(S(ib)), F(S(ic)))));
            else if (t == T_F64 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UD(fma(D(S(ia)), D(S(ib)), D(S(ic)))));
            else FOP_LOOP(t, in->rm, S(id) = fop_slow(OP_FMA, t, S(ia), S(ib), S(ic), in->rm, in->flags));
            break;
        case OP_DIV:
            if (t == T_F32 && !(in->flags & ~IF_APPROX) && in->rm <= RM_RN) LOOP(S(id) = UF(F(S(ia)) / F(S(ib))));
            else if (t == T_F64 && !in->flags && in->rm <= RM_RN) LOOP(S(id) = UD(D(S(ia)) / D(S(ib))));
            else if (t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2)
                FOP_LOOP(t, in->rm, S(id) = fop_slow(OP_DIV, t, S(ia), S(ib), 0, in->rm, in->flags & ~IF_APPROX));
            else if (t == T_U32) LOOP(uint32_t y = (uint32_t)S(ib); S(id) = y ? (uint32_t)S(ia) / y : 0xffffffffu);
            else LOOP(S(id) = int_div(t, S(ia), S(ib), 0));
            break;
        case OP_REM:
            if (t == T_U32) LOOP(uint32_t y = (uint32_t)S(ib); S(id) = y ? (uint32_t)S(ia) % y : (uint32_t)S(ia));
            else LOOP(S(id) = int_div(t, S(ia), S(ib), 1));
            break;
        case OP_MIN:
        case OP_MAX: {
            const int mx = in->op == OP_MAX;
            if (t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2) {
                if (t == T_F32 && !in->flags) LOOP(S(id) = min_max_f32(mx, S(ia), S(ib)));
                else LOOP(S(id) = fop_slow(in->op, t, S(ia), S(ib), 0, RM_RN, in->flags));
            } else if (t == T_S32) {
                LOOP(int32_t x = (int32_t)S(ia), y = (int32_t)S(ib); int32_t r = mx ? (x > y ? x : y) : (x < y ? x : y);
                     if ((in->flags & IF_RELU) && r < 0) r = 0; S(id) = (uint32_t)r);
            } else if (t == T_U32) {
                LOOP(uint32_t x = (uint32_t)S(ia), y = (uint32_t)S(ib); S(id) = mx ? (x > y ? x : y) : (x < y ? x : y));
            } else {
                const int bits = bits_of(t), sg = is_signed_t(t);
                LOOP(uint64_t r; if (sg) { int64_t x = sext(S(ia), bits), y = sext(S(ib), bits); r = zext((uint64_t)(mx ? (x > y ? x : y) : (x < y ? x : y)), bits); }
                     else { uint64_t x = zext(S(ia), bits), y = zext(S(ib), bits); r = mx ? (x > y ? x : y) : (x < y ? x : y); }
                     S(id) = r);
            }
            break;
        }
        case OP_ABS:
        case OP_NEG:
            if (t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2)
                LOOP(S(id) = unary_float(in->op, t, S(ia), in->rm, in->flags));
            else LOOP(S(id) = unary_int(in->op, t, S(ia), in->sub));
            break;
        case OP_NOT: case OP_CNOT: case OP_POPC: case OP_CLZ: case OP_BREV: case OP_BFIND:
            LOOP(S(id) = unary_int(in->op, t, S(ia), in->sub));
            break;
        case OP_RCP: case OP_SQRT: case OP_RSQRT: case OP_SIN: case OP_COS: case OP_EX2: case OP_LG2: case OP_TANH:
            if ((in->op == OP_RCP || in->op == OP_SQRT) && !(in->flags & IF_APPROX))
                FOP_LOOP(t, in->rm, S(id) = unary_float(in->op, t, S(ia), in->rm, in->flags)); /* directed: fop_slow */
            else
                LOOP(S(id) = unary_float(in->op, t, S(ia), in->rm, in->flags));
            break;
        case OP_AND:
            if (t == T_PRED) LOOP(S(id) = S(ia) & S(ib) & 1);
            else INT_BIN(X & Y);
            break;
        case OP_OR:
            if (t == T_PRED) LOOP(S(id) = (S(ia) | S(ib)) & 1);
            else INT_BIN(X | Y);
            break;
        case OP_XOR:
            if (t == T_PRED) LOOP(S(id) = (S(ia) ^ S(ib)) & 1);
            else INT_BIN(X ^ Y);
            break;
        case OP_SHL: {
            const int bits = bits_of(t);
            if (bits == 32) LOOP(uint32_t s = (uint32_t)S(ib); S(id) = s >= 32 ? 0 : (uint32_t)((uint32_t)S(ia) << s));
            else LOOP(uint32_t s = (uint32_t)S(ib); S(id) = s >= (uint32_t)bits ? 0 : zext(S(ia) << s, bits));
            break;
        }
        case OP_SHR: {
            const int bits = bits_of(t);
            if (t == T_S32) LOOP(uint32_t s = (uint32_t)S(ib); S(id) = (uint32_t)((int32_t)S(ia) >> (s > 31 ? 31 : s)));
            else if (t == T_U32) LOOP(uint32_t s = (uint32_t)S(ib); S(id) = s >= 32 ? 0 : (uint32_t)S(ia) >> s);
            else if (is_signed_t(t)) LOOP(uint32_t s = (uint32_t)S(ib); S(id) = zext((uint64_t)(sext(S(ia), bits) >> (s > (uint32_t)bits - 1 ? (uint32_t)bits - 1 : s)), bits));
            else LOOP(uint32_t s = (uint32_t)S(ib); S(id) = s >= (uint32_t)bits ? 0 : zext(S(ia), bits) >> s);
            break;
        }
        case OP_LOP3: {
            const unsigned lut = (unsigned)in->imm;
            const int bits = bits_of(t);
            LOOP(S(id) = zext(lop3_1(S(ia), S(ib), S(ic), lut), bits));
            break;
        }
        case OP_SHF_L:
        case OP_SHF_R: {
            const int left = in->op == OP_SHF_L, clampm = (in->flags & IF_SHIFT_CLAMP) != 0;
            LOOP(uint32_t n = (uint32_t)S(ic); n = clampm ? (n > 32 ? 32 : n) : (n & 31);
                 uint64_t v = ((uint64_t)(uint32_t)S(ib) << 32) | (uint32_t)S(ia);
                 S(id) = left ? (uint32_t)((v << n) >> 32) : (uint32_t)(v >> n));
            break;
        }
        case OP_BMSK: {
            const int clampm = (in->flags & IF_SHIFT_CLAMP) != 0;
            LOOP(uint32_t a = (uint32_t)S(ia), b = (uint32_t)S(ib);
                 if (clampm) { a = a > 32 ? 32 : a; b = b > 32 ? 32 : b; } else { a &= 31; b &= 31; }
                 uint64_t hi = (uint64_t)a + b >= 32 ? 0xffffffffull : ((1ull << (a + b)) - 1);
                 S(id) = (uint32_t)(hi & (0xffffffffull << a)));
            break;
        }
        case OP_SZEXT: {
            const int clampm = (in->flags & IF_SHIFT_CLAMP) != 0, sg = is_signed_t(t);
            LOOP(uint32_t b = (uint32_t)S(ib); b = clampm ? (b > 32 ? 32 : b) : (b & 31);
                 uint64_t a = (uint32_t)S(ia);
                 S(id) = b == 0 ? 0 : b >= 32 ? a : (uint32_t)(sg ? (uint64_t)sext(a, (int)b) : zext(a, (int)b)));
            break;
        }
        case OP_BFE: LOOP(S(id) = bfe1(t, S(ia), (uint32_t)S(ib), (uint32_t)S(ic))); break;
        case OP_BFI: { const int ie = in->e; LOOP(S(id) = bfi1(t, S(ia), S(ib), (uint32_t)S(ic), (uint32_t)S(ie))); break; }
        case OP_PRMT: LOOP(S(id) = prmt1((uint32_t)S(ia), (uint32_t)S(ib), (uint32_t)S(ic))); break;
        case OP_DP4A: {
            const int sa = is_signed_t(t), sb = is_signed_t(in->t2);
            LOOP(uint32_t x = (uint32_t)S(ia), y = (uint32_t)S(ib); int64_t acc = (sa || sb) ? (int64_t)(int32_t)S(ic) : (int64_t)(uint32_t)S(ic);
                 for (int k = 0; k < 4; k++) { int64_t p = sa ? (int8_t)(x >> (8 * k)) : (uint8_t)(x >> (8 * k));
                                               int64_t q = sb ? (int8_t)(y >> (8 * k)) : (uint8_t)(y >> (8 * k)); acc += p * q; }
                 S(id) = (uint32_t)acc);
            break;
        }
        case OP_DP2A: {
            const int sa = is_signed_t(t), sb = is_signed_t(in->t2), hi = in->sub;
            LOOP(uint32_t x = (uint32_t)S(ia), y = (uint32_t)S(ib); int64_t acc = (sa || sb) ? (int64_t)(int32_t)S(ic) : (int64_t)(uint32_t)S(ic);
                 for (int k = 0; k < 2; k++) { int64_t p = sa ? (int16_t)(x >> (16 * k)) : (uint16_t)(x >> (16 * k));
                                               int sh = 8 * (k + (hi ? 2 : 0));
                                               int64_t q = sb ? (int8_t)(y >> sh) : (uint8_t)(y >> sh); acc += p * q; }
                 S(id) = (uint32_t)acc);
            break;
        }
        case OP_VSIMD: {
            const int op = in->sub, lanes = in->vec, add = in->bop, sat = (in->flags & IF_SAT) != 0;
            const int sa = is_signed_t(in->t2), sb = is_signed_t(in->esize), sd = is_signed_t(t);
            const int w = 32 / lanes;
            LOOP(uint32_t x = (uint32_t)S(ia), y = (uint32_t)S(ib), cv = (uint32_t)S(ic), r = 0; int64_t sum = 0;
                 for (int k = 0; k < lanes; k++) {
                     uint64_t ex = (x >> (k * w)) & ((1u << w) - 1), ey = (y >> (k * w)) & ((1u << w) - 1);
                     int64_t p = sa ? sext(ex, w) : (int64_t)ex, q = sb ? sext(ey, w) : (int64_t)ey, v;
                     switch (op) {
                     case 0: v = p + q; break;
                     case 1: v = p - q; break;
                     case 2: v = p > q ? p - q : q - p; break;
                     case 3: v = p < q ? p : q; break;
                     default: v = p > q ? p : q; break;
                     }
                     if (add) { sum += v; continue; }
                     if (sat) {
                         int64_t lo = sd ? -(1ll << (w - 1)) : 0, hi = sd ? (1ll << (w - 1)) - 1 : (1ll << w) - 1;
                         v = v < lo ? lo : v > hi ? hi : v;
                     }
                     r |= (uint32_t)((uint64_t)v & ((1u << w) - 1)) << (k * w);
                 }
                 S(id) = add ? (uint32_t)((int64_t)(sd ? (int64_t)(int32_t)cv : (int64_t)cv) + sum) : r);
            break;
        }
        case OP_TESTP: LOOP(S(id) = (uint64_t)testp1(in->sub, t, S(ia))); break;
        case OP_COPYSIGN: {
            const int bits = bits_of(t);
            const uint64_t sb = 1ull << (bits - 1);
            LOOP(S(id) = (zext(S(ib), bits) & ~sb) | (S(ia) & sb));
            break;
        }
        case OP_SETP: {
            const int id2 = in->d2, bop = in->bop, negc = (in->flags & IF_NEG_C) != 0;
            if (in->t2 == T_F16X2 || in->t2 == T_BF16X2) {
                /* packed: the low halves set d, the high halves set d2 */
                ptx_ins h = *in;
                h.t2 = in->t2 == T_F16X2 ? T_F16 : T_BF16;
                LOOP(int lo = compare(&h, S(ia) & 0xffff, S(ib) & 0xffff), hi = compare(&h, (S(ia) >> 16) & 0xffff, (S(ib) >> 16) & 0xffff);
                     if (bop) { int c = (int)(S(ic) & 1) ^ negc;
                                lo = bop == 1 ? (lo & c) : bop == 2 ? (lo | c) : (lo ^ c); hi = bop == 1 ? (hi & c) : bop == 2 ? (hi | c) : (hi ^ c); }
                     S(id) = (uint64_t)lo; if (id2 >= 0) S(id2) = (uint64_t)hi);
                break;
            }
            if (!(in->flags & IF_FTZ) && (!bop || ic != id) &&
                (((t == T_S32 || t == T_U32 || t == T_S64 || t == T_U64) && in->sub <= CMP_HS) || t == T_F32 || t == T_F64) &&
                (!in->t2 || in->t2 == t)) {
                /* the common types without compare()'s per-lane type dispatch; the boolean operand and the
                 * negated second destination are applied in a second pass (ic != id: it still holds c) */
                const int op = in->sub;
#define SETP_I(TY)                                                                            \
    switch (op) {                                                                             \
    case CMP_EQ: LOOP(S(id) = (TY)S(ia) == (TY)S(ib)); break;                                 \
    case CMP_NE: LOOP(S(id) = (TY)S(ia) != (TY)S(ib)); break;                                 \
    case CMP_LT: case CMP_LO: LOOP(S(id) = (TY)S(ia) < (TY)S(ib)); break;                     \
    case CMP_LE: case CMP_LS: LOOP(S(id) = (TY)S(ia) <= (TY)S(ib)); break;                    \
    case CMP_GT: case CMP_HI: LOOP(S(id) = (TY)S(ia) > (TY)S(ib)); break;                     \
    default: LOOP(S(id) = (TY)S(ia) >= (TY)S(ib)); break;                                     \
    }
#define SETP_F(TY, CONV)                                                                      \
    LOOP(TY x = CONV(S(ia)), y = CONV(S(ib)); S(id) = (uint64_t)cmp_flt(op, x, y));
                if (t == T_S32) { if (op >= CMP_LO) SETP_I(uint32_t) else SETP_I(int32_t) }
                else if (t == T_U32) SETP_I(uint32_t)
                else if (t == T_S64) { if (op >= CMP_LO) SETP_I(uint64_t) else SETP_I(int64_t) }
                else if (t == T_U64) SETP_I(uint64_t)
                else if (t == T_F32) SETP_F(float, F)
                else SETP_F(double, D)
#undef SETP_I
#undef SETP_F
                if (bop || id2 >= 0)
                    LOOP(int r = (int)S(id); int nr = !r;
                         if (bop) { int c = (int)(S(ic) & 1) ^ negc;
                                    if (bop == 1) { r = r & c; nr = nr & c; } else if (bop == 2) { r = r | c; nr = nr | c; } else { r ^= c; nr ^= c; } }
                         S(id) = (uint64_t)r; if (id2 >= 0) S(id2) = (uint64_t)nr);
                break;
            }
            LOOP(int r = compare(in, S(ia), S(ib)); int nr = !r;
                 if (bop) { int c = (int)(S(ic) & 1) ^ negc;
                            if (bop == 1) { r = r & c; nr = nr & c; } else if (bop == 2) { r = r | c; nr = nr | c; } else { r ^= c; nr ^= c; } }
                 S(id) = (uint64_t)r; if (id2 >= 0) S(id2) = (uint64_t)nr);
            break;
        }
        case OP_SET: {
            const int bop = in->bop, negc = (in->flags & IF_NEG_C) != 0;
            if (in->t2 == T_F16X2 || in->t2 == T_BF16X2) {
                ptx_ins h = *in;
                h.t2 = in->t2 == T_F16X2 ? T_F16 : T_BF16;
                const uint64_t one = t == T_F16X2 ? 0x3c00 : t == T_BF16X2 ? 0x3f80 : 0xffff;
                LOOP(int lo = compare(&h, S(ia) & 0xffff, S(ib) & 0xffff), hi = compare(&h, (S(ia) >> 16) & 0xffff, (S(ib) >> 16) & 0xffff);
                     if (bop) { int c = (int)(S(ic) & 1) ^ negc;
                                lo = bop == 1 ? (lo & c) : bop == 2 ? (lo | c) : (lo ^ c); hi = bop == 1 ? (hi & c) : bop == 2 ? (hi | c) : (hi ^ c); }
                     S(id) = (lo ? one : 0) | ((hi ? one : 0) << 16));
                break;
            }
            LOOP(int r = compare(in, S(ia), S(ib));
                 if (bop) { int c = (int)(S(ic) & 1) ^ negc; r = bop == 1 ? (r & c) : bop == 2 ? (r | c) : (r ^ c); }
                 S(id) = t == T_F32 ? (r ? UF(1.0f) : 0) : (r ? zext(~0ull, bits_of(t)) : 0));
            break;
        }
        case OP_SELP: {
            const int negc = (in->flags & IF_NEG_C) != 0;
            LOOP(S(id) = ((S(ic) & 1) ^ (uint64_t)negc) ? S(ia) : S(ib));
            break;
        }
        case OP_SLCT:
            if (in->t2 == T_F32) LOOP(S(id) = F(S(ic)) >= 0.0f ? S(ia) : S(ib));
            else LOOP(S(id) = (int32_t)S(ic) >= 0 ? S(ia) : S(ib));
            break;
        case OP_CVT: {
            const int st = in->t2;
            if (t == T_U64 && st == T_U32) LOOP(S(id) = (uint32_t)S(ia));
            else if (t == T_S64 && st == T_S32) LOOP(S(id) = (uint64_t)(int64_t)(int32_t)S(ia));
            else if ((t == T_U32 || t == T_S32) && (st == T_U64 || st == T_S64) && !in->flags) LOOP(S(id) = (uint32_t)S(ia));
            else if (t == T_F32 && st == T_S32 && in->rm <= RM_RN && !in->flags) LOOP(S(id) = UF((float)(int32_t)S(ia)));
            else if (t == T_F32 && st == T_U32 && in->rm <= RM_RN && !in->flags) LOOP(S(id) = UF((float)(uint32_t)S(ia)));
            else if (t == T_F64 && st == T_F32 && !in->flags) LOOP(S(id) = UD((double)F(S(ia))));
            else if (st >= T_U8 && st <= T_S64 && (t == T_F32 || t == T_F64))
                FOP_LOOP(t, in->rm, S(id) = cvt1(S(ia), t, st, in->rm, in->flags)); /* directed: int_to_float */
            else LOOP(S(id) = cvt1(S(ia), t, st, in->rm, in->flags));
            break;
        }
        case OP_CVT_PACK: {
            const int ht = t == T_F16X2 ? T_F16 : T_BF16;
            LOOP(S(id) = ((cvt1(S(ia), ht, T_F32, in->rm, in->flags) & 0xffff) << 16) | (cvt1(S(ib), ht, T_F32, in->rm, in->flags) & 0xffff));
            break;
        }
        case OP_CVTA_SHARED: LOOP(S(id) = S(ia) + PTX_SHARED_BASE); break;
        case OP_CVTA_TO_SHARED: LOOP(S(id) = S(ia) - PTX_SHARED_BASE); break;
        case OP_CVTA_LOCAL: LOOP(S(id) = S(ia) + PTX_LOCAL_BASE); break;
        case OP_CVTA_TO_LOCAL: LOOP(S(id) = S(ia) - PTX_LOCAL_BASE); break;
        case OP_CVTA_PARAM: LOOP(S(id) = S(ia) + PTX_PARAM_BASE); break;
        case OP_CVTA_TO_PARAM: LOOP(S(id) = S(ia) - PTX_PARAM_BASE); break;
        case OP_ISSPACEP: {
            const int sp = in->space;
            LOOP(uint64_t a = S(ia); int r;
                 switch (sp) {
                 case SP_SHARED: r = a >= PTX_SHARED_BASE && a < PTX_SHARED_BASE + PTX_WIN_SIZE; break;
                 case SP_LOCAL: r = a >= PTX_LOCAL_BASE && a < PTX_LOCAL_BASE + PTX_WIN_SIZE; break;
                 case SP_KPARAM: r = a >= PTX_PARAM_BASE && a < PTX_PARAM_BASE + PTX_WIN_SIZE; break;
                 case SP_CONST: {
                     r = 0;
                     const ptx_module *mm = B->k->mod;
                     for (int v = 0; v < mm->nvars; v++)
                         if (mm->vars[v].space == SP_CONST && a >= mm->vars[v].addr && a < mm->vars[v].addr + mm->vars[v].bytes) r = 1;
                     break;
                 }
                 default: r = a < PTX_SHARED_BASE; break;
                 }
                 S(id) = (uint64_t)r);
            break;
        }
        case OP_LD: {
            const int sp = in->space, et = in->t, nv = in->vec;
            const unsigned es = in->esize, tot = es * (unsigned)nv;
            const int64_t off = in->imm;
            uint64_t sd = 0, sst = 0;
            unsigned halves;
            const int lazy = em == FULL && nv == 1 && tot == 4 && sp == SP_SHARED && in->v[0] != ia && B->mv.smem_size >= 4 &&
                             (et == T_U32 || et == T_F32);
            int kind = warp_span(B, sp, R + (size_t)ia * 32, em, (uint64_t)off, tot, tid0, &sd, &sst, lazy, &halves);
            if (kind == SPAN_OTHER) {
                /* a full warp's 32-bit shared load in one branch-free pass: an out-of-range or misaligned lane
                 * reads word 0 instead and sets bad, and the per-lane path below then redoes the load and reports
                 * the lane (loads have no side effects; the address register is not the destination) */
                const uint64_t lim = B->mv.smem_size - 4;
                const uint8_t *sm = B->mv.smem;
                const uint64_t *A = R + (size_t)ia * 32;
                uint64_t *D0 = R + (size_t)in->v[0] * 32, bad = 0;
                for (int l = 0; l < 32; l++) {
                    const uint64_t a = A[l] + (uint64_t)off;
                    const uint64_t b = (a > lim) | (a & 3);
                    bad |= b;
                    uint32_t x;
                    memcpy(&x, sm + (b ? 0 : a), 4);
                    D0[l] = x;
                }
                if (!bad) break;
                kind = SPAN_NONE;
            }
            if (kind == SPAN_UNIFORM && nv == 1) {
                const uint64_t x = load_elem((const uint8_t *)(uintptr_t)(R[(size_t)ia * 32] + (uint64_t)off + sd), et);
                uint64_t *D0 = R + (size_t)in->v[0] * 32;
                for (int l = 0; l < 32; l++) D0[l] = x;
            } else if (kind == SPAN_CONTIG && nv == 1 && tot == 4 && (et == T_U32 || et == T_F32 || et == T_F16X2 || et == T_BF16X2)) {
                const uint8_t *p0 = (const uint8_t *)(uintptr_t)(R[(size_t)ia * 32] + (uint64_t)off + sd);
                uint32_t x[32];
                memcpy(x, p0, sizeof(x));
                uint64_t *D0 = R + (size_t)in->v[0] * 32;
                for (int l = 0; l < 32; l++) D0[l] = x[l];
            } else if (kind == SPAN_CONTIG && nv == 1 && tot == 8) {
                memcpy(R + (size_t)in->v[0] * 32, (const uint8_t *)(uintptr_t)(R[(size_t)ia * 32] + (uint64_t)off + sd), 256);
            } else if (kind == SPAN_CONTIG && nv > 1 &&
                       ((es == 4 && (et == T_U32 || et == T_F32 || et == T_F16X2 || et == T_BF16X2)) || es == 8)) {
                /* a full warp's .v2/.v4 of consecutive elements (uint4, float2 arrays): one pass per vector element */
                const uint8_t *p0 = (const uint8_t *)(uintptr_t)(R[(size_t)ia * 32] + (uint64_t)off + sd);
                for (int k = 0; k < nv; k++) {
                    uint64_t *Dk = R + (size_t)in->v[k] * 32;
                    const uint8_t *pk = p0 + (size_t)k * es;
                    if (es == 4)
                        for (int l = 0; l < 32; l++) { uint32_t x; memcpy(&x, pk + (size_t)l * tot, 4); Dk[l] = x; }
                    else
                        for (int l = 0; l < 32; l++) memcpy(&Dk[l], pk + (size_t)l * tot, 8);
                }
            } else if (kind == SPAN_HALVES && nv == 1 && tot == 4 && (et == T_U32 || et == T_F32 || et == T_F16X2 || et == T_BF16X2)) {
                /* per half-warp: one word broadcast, or 16 consecutive words (a 16x16 block's tile rows) */
                uint64_t *D0 = R + (size_t)in->v[0] * 32;
                for (int h = 0; h < 2; h++) {
                    const uint8_t *p0 = (const uint8_t *)(uintptr_t)(R[(size_t)ia * 32 + 16 * h] + (uint64_t)off + sd);
                    uint32_t x[16];
                    if (halves >> h & 1) {
                        memcpy(x, p0, sizeof(x));
                    } else {
                        memcpy(&x[0], p0, 4);
                        for (int l = 1; l < 16; l++) x[l] = x[0];
                    }
                    for (int l = 0; l < 16; l++) D0[16 * h + l] = x[l];
                }
            } else if (kind) {
                const int v0 = in->v[0];
                if (nv == 1 && tot == 4 && (et == T_U32 || et == T_F32 || et == T_F16X2 || et == T_BF16X2))
                    LOOP(uint32_t x; memcpy(&x, SPAN_PTR(l), 4); S(v0) = x);
                else if (nv == 1 && tot == 8)
                    LOOP(uint64_t x; memcpy(&x, SPAN_PTR(l), 8); S(v0) = x);
                else if (nv == 1)
                    LOOP(S(v0) = load_elem(SPAN_PTR(l), et));
                else if (et == T_U32 || et == T_F32)
                    LOOP(const uint8_t *p = SPAN_PTR(l); for (int k = 0; k < nv; k++) { uint32_t x; memcpy(&x, p + 4 * k, 4); S(in->v[k]) = x; });
                else
                    LOOP(const uint8_t *p = SPAN_PTR(l); for (int k = 0; k < nv; k++) S(in->v[k]) = load_elem(p + (unsigned)k * es, et));
            } else if (nv == 1 && sp == SP_SHARED && B->mv.smem_size >= tot) {
                const uint64_t lim = B->mv.smem_size - tot;
                const uint8_t *sm = B->mv.smem;
                if (tot == 4 && (et == T_U32 || et == T_F32))
                    LOOP(uint64_t a = S(ia) + (uint64_t)off; if (a > lim || (a & 3)) { fault(B, in, tid0 + (unsigned)l, a, tot, a <= lim); ret = -1; goto out; }
                         uint32_t v; memcpy(&v, sm + a, 4); S(in->v[0]) = v);
                else
                    LOOP(uint64_t a = S(ia) + (uint64_t)off; if (a > lim || (a & (tot - 1))) { fault(B, in, tid0 + (unsigned)l, a, tot, a <= lim); ret = -1; goto out; }
                         S(in->v[0]) = load_elem(sm + a, et));
            } else if (nv == 1 && (sp == SP_GLOBAL || sp == SP_GENERIC) && tot == 4 && (et == T_U32 || et == T_F32)) {
                LOOP(uint64_t a = S(ia) + (uint64_t)off; const uint8_t *p = (sp == SP_GLOBAL || a < PTX_SHARED_BASE) ? gaddr(B, a, 4) : resolve(B, tid0 + (unsigned)l, sp, a, 4);
                     if (!p || (a & 3)) { fault(B, in, tid0 + (unsigned)l, a, tot, p != NULL); ret = -1; goto out; }
                     uint32_t v; memcpy(&v, p, 4); S(in->v[0]) = v);
            } else if (nv == 1) {
                LOOP(uint64_t a = S(ia) + (uint64_t)off; const uint8_t *p = resolve(B, tid0 + (unsigned)l, sp, a, tot);
                     if (!p || (a & (tot - 1))) { fault(B, in, tid0 + (unsigned)l, a, tot, p != NULL); ret = -1; goto out; }
                     S(in->v[0]) = load_elem(p, et));
            } else {
                LOOP(uint64_t a = S(ia) + (uint64_t)off; const uint8_t *p = resolve(B, tid0 + (unsigned)l, sp, a, tot);
                     if (!p || (a & (tot - 1))) { fault(B, in, tid0 + (unsigned)l, a, tot, p != NULL); ret = -1; goto out; }
                     for (int k = 0; k < nv; k++) S(in->v[k]) = load_elem(p + (unsigned)k * es, et));
            }
            break;
        }
        case OP_ST: {
            B->writes++;
            const int sp = in->space, nv = in->vec;
            const unsigned es = in->esize, tot = es * (unsigned)nv;
            const int64_t off = in->imm;
            uint64_t sd = 0, sst = 0;
            unsigned halves;
            const int kind = warp_span(B, sp, R + (size_t)ia * 32, em, (uint64_t)off, tot, tid0, &sd, &sst, 0, &halves);
            (void)halves; /* SPAN_HALVES stores run the checked per-lane loop below (lane order kept for same-address lanes) */
            if (kind == SPAN_CONTIG && nv == 1 && es == 4) {
                uint8_t *p0 = (uint8_t *)(uintptr_t)(R[(size_t)ia * 32] + (uint64_t)off + sd);
                const uint64_t *V0 = R + (size_t)in->v[0] * 32;
                uint32_t x[32];
                for (int l = 0; l < 32; l++) x[l] = (uint32_t)V0[l];
                memcpy(p0, x, sizeof(x));
            } else if (kind == SPAN_CONTIG && nv == 1 && es == 8) {
                memcpy((uint8_t *)(uintptr_t)(R[(size_t)ia * 32] + (uint64_t)off + sd), R + (size_t)in->v[0] * 32, 256);
            } else if (kind == SPAN_CONTIG && nv > 1 && (es == 4 || es == 8)) {
                /* .v2/.v4 of consecutive elements: one pass per vector element (no two lanes share a byte) */
                uint8_t *p0 = (uint8_t *)(uintptr_t)(R[(size_t)ia * 32] + (uint64_t)off + sd);
                for (int k = 0; k < nv; k++) {
                    const uint64_t *Vk = R + (size_t)in->v[k] * 32;
                    uint8_t *pk = p0 + (size_t)k * es;
                    if (es == 4)
                        for (int l = 0; l < 32; l++) { const uint32_t x = (uint32_t)Vk[l]; memcpy(pk + (size_t)l * tot, &x, 4); }
                    else
                        for (int l = 0; l < 32; l++) memcpy(pk + (size_t)l * tot, &Vk[l], 8);
                }
            } else if (kind) {
                const int v0 = in->v[0];
                if (nv == 1 && es == 4) LOOP(uint32_t x = (uint32_t)S(v0); memcpy(SPAN_PTR(l), &x, 4));
                else if (nv == 1 && es == 8) LOOP(uint64_t x = S(v0); memcpy(SPAN_PTR(l), &x, 8));
                else if (nv == 1) LOOP(store_elem(SPAN_PTR(l), S(v0), es));
                else if (es == 4) LOOP(uint8_t *p = SPAN_PTR(l); for (int k = 0; k < nv; k++) { uint32_t x = (uint32_t)S(in->v[k]); memcpy(p + 4 * k, &x, 4); });
                else LOOP(uint8_t *p = SPAN_PTR(l); for (int k = 0; k < nv; k++) store_elem(p + (unsigned)k * es, S(in->v[k]), es));
            } else if (nv == 1 && sp == SP_SHARED && tot == 4 && B->mv.smem_size >= 4) {
                const uint64_t lim = B->mv.smem_size - 4;
                uint8_t *sm = B->mv.smem;
                LOOP(uint64_t a = S(ia) + (uint64_t)off; if (a > lim || (a & 3)) { fault(B, in, tid0 + (unsigned)l, a, tot, a <= lim); ret = -1; goto out; }
                     uint32_t v = (uint32_t)S(in->v[0]); memcpy(sm + a, &v, 4));
            } else if (nv == 1 && sp == SP_GLOBAL && tot == 4) {
                LOOP(uint64_t a = S(ia) + (uint64_t)off; uint8_t *p = gaddr(B, a, 4);
                     if (!p || (a & 3)) { fault(B, in, tid0 + (unsigned)l, a, tot, p != NULL); ret = -1; goto out; }
                     uint32_t v = (uint32_t)S(in->v[0]); memcpy(p, &v, 4));
            } else {
                LOOP(uint64_t a = S(ia) + (uint64_t)off; uint8_t *p = resolve(B, tid0 + (unsigned)l, sp, a, tot);
                     if (!p || (a & (tot - 1))) { fault(B, in, tid0 + (unsigned)l, a, tot, p != NULL); ret = -1; goto out; }
                     for (int k = 0; k < nv; k++) store_elem(p + (unsigned)k * es, S(in->v[k]), es));
            }
            break;
        }
        case OP_CP_ASYNC: {
            ptx_mma_fault mf;
            if (ptx_mma_cp_async(in, R + (size_t)ia * 32, R + (size_t)ib * 32, ic >= 0 ? R + (size_t)ic * 32 : NULL, &B->mv, em, &mf)) {
                fault(B, in, tid0 + mf.lane, mf.addr, mf.bytes, mf.misaligned);
                ret = -1;
                goto out;
            }
            break;
        }
        case OP_MBAR: {
            /* barrier word: bits 0-20 expected arrivals, 21-41 pending arrivals of the current phase,
             * 42-62 transaction count (signed), 63 phase parity. A phase completes when its pending
             * arrivals and its transaction count both reach zero. The lanes of a block run in one
             * host thread, so the shared word needs no atomics. */
            const int sub = in->sub, ib2 = in->b, ic2 = in->c, nocomplete = (in->flags & IF_SAT) != 0;
            const int64_t off = in->imm;
            if (sub == MB_PENDING) {
                LOOP(S(id) = (S(ib2) >> 21) & 0x1fffff);
                break;
            }
            for (uint32_t m_ = em; m_; m_ &= m_ - 1) {
                const int l = __builtin_ctz(m_);
                uint64_t a = S(ia) + (uint64_t)off;
                int sp = in->space;
                if (sp == SP_GENERIC && !(a >= PTX_SHARED_BASE && a < PTX_SHARED_BASE + PTX_WIN_SIZE)) sp = -1;
                uint8_t *p = sp < 0 ? NULL : resolve(B, tid0 + (unsigned)l, sp, a, 8);
                if (!p || (a & 7)) { fault(B, in, tid0 + (unsigned)l, a, 8, p != NULL); ret = -1; goto out; }
                uint64_t w;
                memcpy(&w, p, 8);
                uint64_t expct = w & 0x1fffff, pend = (w >> 21) & 0x1fffff, phase = w >> 63;
                int64_t tx = (int64_t)((w >> 42) & 0x1fffff);
                if (tx & 0x100000) tx -= 0x200000;
                int complete_check = 0;
                switch (sub) {
                case MB_INIT: expct = pend = S(ib2) & 0xfffff; tx = 0; phase = 0; break;
                case MB_INVAL: expct = pend = 0; tx = 0; phase = 0; break;
                case MB_ARRIVE:
                case MB_ARRIVE_DROP:
                case MB_CPASYNC_ARRIVE_NOINC: {
                    uint64_t n = ib2 >= 0 ? (uint32_t)S(ib2) : 1;
                    if (ic2 >= 0) tx += (int64_t)(uint32_t)S(ic2);
                    uint64_t token = phase << 63;
                    pend = n > pend ? 0 : pend - n;
                    if (sub == MB_ARRIVE_DROP) expct = n > expct ? 0 : expct - n;
                    if (id >= 0) S(id) = token | (pend << 21);
                    complete_check = !nocomplete;
                    break;
                }
                case MB_CPASYNC_ARRIVE: break; /* +1 pending then an arrive when the (finished) copies land */
                case MB_EXPECT_TX: tx += (int64_t)(uint32_t)S(ib2); break;
                case MB_COMPLETE_TX: tx -= (int64_t)(uint32_t)S(ib2); complete_check = 1; break;
                case MB_TEST_WAIT: S(id) = phase != (S(ib2) >> 63); break;
                default: S(id) = phase != (S(ib2) & 1); break; /* MB_TEST_PARITY */
                }
                if (complete_check && pend == 0 && tx == 0) {
                    phase ^= 1;
                    pend = expct;
                }
                if (tx > 0xfffff) tx = 0xfffff;
                if (tx < -0xfffff) tx = -0xfffff;
                w = expct | (pend << 21) | (((uint64_t)tx & 0x1fffff) << 42) | (phase << 63);
                memcpy(p, &w, 8);
            }
            break;
        }
        case OP_ATOM:
        case OP_RED: {
            const int sp = in->space, es = in->esize, op = in->sub;
            const int64_t off = in->imm;
            const int isatom = in->op == OP_ATOM;
            B->writes++;
            LOOP(uint64_t a = S(ia) + (uint64_t)off; uint8_t *p = resolve(B, tid0 + (unsigned)l, sp, a, (uint64_t)es);
                 if (!p || (a & (uint64_t)(es - 1))) { fault(B, in, tid0 + (unsigned)l, a, (uint64_t)es, p != NULL); ret = -1; goto out; }
                 uint64_t old = atom_do(p, es, op, t, S(ib), ic >= 0 ? S(ic) : 0);
                 if (isatom) S(id) = is_signed_t(t) ? (uint64_t)sext(old, es * 8) : old);
            break;
        }
        case OP_BRA: {
            const int tgt = (int)in->imm;
            if (em == cm) {
                if (tgt <= pc && ++backs >= B->yield_backs && (B->nwarps > 1 || B->L->coop_ws)) {
                    backs = 0;
                    pc = tgt;
                    ret = 1;
                    goto out;
                }
                next = tgt;
            } else if (em) {
                for (uint32_t m = em; m; m &= m - 1) W->pc[__builtin_ctz(m)] = tgt;
                for (uint32_t m = cm & ~em; m; m &= m - 1) W->pc[__builtin_ctz(m)] = pc + 1;
                goto reschedule;
            }
            break;
        }
        case OP_EXIT:
            W->exited |= em;
            if (W->atbar) bar_arrive_warp(B, W); /* its lanes at a barrier were waiting for these */
            if (!(W->live & ~W->exited))         /* one warp fewer for whole-block barriers */
                for (uint32_t m = B->bars_arrived; m; m &= m - 1)
                    if (B->bars[__builtin_ctz(m)].arrives) bar_complete(B, (unsigned)__builtin_ctz(m), W);
            if (em == cm) goto reschedule;
            cm &= ~em;
            break;
        case OP_BAR:
        case OP_BAR_RED: {
            if (!em) break;
            const unsigned l0 = (unsigned)__builtin_ctz(em); /* a and b are the warp's (.aligned) */
            const uint64_t idv = in->imm >= 0 ? (uint64_t)(in->imm & 0xff) : R[(size_t)ia * 32 + l0];
            const uint32_t cnt = in->imm >= 0 ? (uint32_t)(in->imm >> 8) : ib >= 0 ? (uint32_t)R[(size_t)ib * 32 + l0] : 0;
            const int arrive = in->op == OP_BAR && in->sub == BAR_ARRIVE;
            if (idv > 15 || (arrive && !cnt)) {
                unsigned x, y, z;
                thread_coords(B, tid0 + l0, &x, &y, &z);
                fail(B, PTXE_ILLEGAL_INSTRUCTION, "%s with barrier %llu and thread count %u in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
                     arrive ? "bar.arrive" : "bar", (unsigned long long)idv, cnt, B->k->name, in->line, B->bid[0], B->bid[1], B->bid[2], x, y, z);
                ret = -1;
                goto out;
            }
            bar_st *br = &B->bars[idv];
            br->count = cnt;
            if (in->op == OP_BAR_RED) {
                const int negc = (in->flags & IF_NEG_C) != 0;
                for (uint32_t m = em; m; m &= m - 1) {
                    int l = __builtin_ctz(m);
                    uint32_t v = (uint32_t)((S(ic) & 1) ^ (uint64_t)negc);
                    br->red_count += v;
                    br->red_and &= v;
                    br->red_or |= v;
                }
            }
            store_pcs(W, pc + 1, cm);
            W->atbar |= em;
            W->fresh_ids |= (uint16_t)(1u << idv);
            if (arrive) W->arriving |= em;
            if (em == FULL) memset(W->bar_of, (int)idv, sizeof(W->bar_of));
            else for (uint32_t m = em; m; m &= m - 1) W->bar_of[__builtin_ctz(m)] = (uint8_t)idv;
            bar_arrive_warp(B, W);
            goto reschedule;
        }
        case OP_BAR_RED_READ: {
            const bar_st *br = &B->bars[in->imm >= 0 ? in->imm & 15 : em ? R[(size_t)ia * 32 + (unsigned)__builtin_ctz(em)] & 15 : 0];
            uint64_t v = in->sub == 0 ? br->out_count : in->sub == 1 ? br->out_and : br->out_or;
            LOOP(S(id) = v);
            break;
        }
        case OP_TEX: case OP_TLD4: case OP_TXQ: case OP_SULD: case OP_SUST: case OP_SURED:
            if (exec_tex(B, in, R, em, tid0)) { ret = -1; goto out; }
            break;
        case OP_TRAP: {
            unsigned x, y, z;
            thread_coords(B, tid0 + (unsigned)__builtin_ctz(em ? em : 1), &x, &y, &z);
            if (!em) break;
            fail(B, PTXE_LAUNCH_FAILED, "trap executed in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
                 B->k->name, in->line, B->bid[0], B->bid[1], B->bid[2], x, y, z);
            ret = -1;
            goto out;
        }
        case OP_SHFL: {
            uint32_t vals[32];
            for (int l = 0; l < 32; l++) vals[l] = (uint32_t)S(ia);
            const int mode = in->sub, id2 = in->d2;
            LOOP(uint32_t bval = (uint32_t)S(ib) & 31, cval = (uint32_t)S(ic);
                 uint32_t clampv = cval & 31, segmask = (cval >> 8) & 31;
                 uint32_t lane = (uint32_t)l, maxl = (lane & segmask) | (clampv & ~segmask), minl = lane & segmask;
                 int32_t j; int pval;
                 switch (mode) {
                 case SH_UP: j = (int32_t)lane - (int32_t)bval; pval = j >= (int32_t)maxl; break;
                 case SH_DOWN: j = (int32_t)(lane + bval); pval = j <= (int32_t)maxl; break;
                 case SH_BFLY: j = (int32_t)(lane ^ bval); pval = j <= (int32_t)maxl; break;
                 default: j = (int32_t)(minl | (bval & ~segmask)); pval = j <= (int32_t)maxl; break;
                 }
                 if (!pval) j = (int32_t)lane;
                 S(id) = vals[j & 31]; if (id2 >= 0) S(id2) = (uint64_t)pval);
            break;
        }
        case OP_VOTE: {
            /* over the lanes of each lane's member mask (.sync) that execute it, else the active ones */
            const int negc = (in->flags & IF_NEG_C) != 0, ie = in->wsync ? in->e : -1;
            uint32_t ball = 0;
            for (uint32_t m = em; m; m &= m - 1) {
                int l = __builtin_ctz(m);
                if ((S(ia) & 1) ^ (uint64_t)negc) ball |= 1u << l;
            }
            const int sub = in->sub;
            LOOP(uint32_t g = ie >= 0 ? (uint32_t)S(ie) & em : em; uint32_t b = ball & g; uint64_t v;
                 switch (sub) {
                 case VO_ALL: v = b == g; break;
                 case VO_ANY: v = b != 0; break;
                 case VO_UNI: v = b == 0 || b == g; break;
                 default: v = b; break;
                 }
                 S(id) = v);
            break;
        }
        case OP_ACTIVEMASK: {
            const uint32_t v = cm;
            LOOP(S(id) = v);
            break;
        }
        case OP_MATCH: {
            const int bits = bits_of(t), all = in->sub, id2 = in->d2, ie = in->wsync ? in->e : -1;
            uint64_t vals[32];
            for (int l = 0; l < 32; l++) vals[l] = zext(S(ia), bits);
            LOOP(uint32_t g = ie >= 0 ? (uint32_t)S(ie) & em : em; uint32_t same = 0;
                 for (uint32_t m2 = g; m2; m2 &= m2 - 1) { int j = __builtin_ctz(m2); if (vals[j] == vals[l]) same |= 1u << j; }
                 int alleq = same == g; uint32_t mk = all ? (alleq ? g : 0) : same;
                 S(id) = mk; if (id2 >= 0) S(id2) = (uint64_t)alleq);
            break;
        }
        case OP_REDUX: {
            /* each lane reduces over the lanes of its own member mask (labeled groups at one pc) */
            const int op = in->sub, sg = is_signed_t(t), ie = in->e;
            uint32_t vals[32];
            for (int l = 0; l < 32; l++) vals[l] = (uint32_t)S(ia);
            LOOP(uint32_t g = ie >= 0 ? (uint32_t)S(ie) & em : em; uint32_t acc = 0; int first = 1;
                 for (uint32_t m = g; m; m &= m - 1) {
                     uint32_t v = vals[__builtin_ctz(m)];
                     if (first) { acc = v; first = 0; continue; }
                     switch (op) {
                     case AT_ADD: acc += v; break;
                     case AT_MIN: acc = sg ? (uint32_t)((int32_t)v < (int32_t)acc ? (int32_t)v : (int32_t)acc) : (v < acc ? v : acc); break;
                     case AT_MAX: acc = sg ? (uint32_t)((int32_t)v > (int32_t)acc ? (int32_t)v : (int32_t)acc) : (v > acc ? v : acc); break;
                     case AT_AND: acc &= v; break;
                     case AT_OR: acc |= v; break;
                     default: acc ^= v; break;
                     }
                 }
                 S(id) = acc);
            break;
        }
        case OP_WMMA_LOAD:
        case OP_WMMA_STORE: {
            ptx_mma_fault mf;
            if (ptx_mma_wmma_ldst(in, B->k->lists, R, &B->mv, tid0, em, &mf)) {
                fault(B, in, tid0 + mf.lane, mf.addr, mf.bytes, mf.misaligned);
                ret = -1;
                goto out;
            }
            break;
        }
        case OP_WMMA_MMA:
            ptx_mma_wmma_mma(in, B->k->lists, R, em);
            break;
        case OP_CVT_TF32: {
            /* cvt.{rna,rn,rz}{.satfinite}{.relu}.tf32.f32: round the f32 to 10 mantissa bits (the low
             * 13 bits become zero); NaN stays NaN */
            const int rm = in->rm, relu = (in->flags & IF_RELU) != 0;
            LOOP(uint32_t u = (uint32_t)S(ia); uint32_t o;
                 if ((u & 0x7f800000u) == 0x7f800000u) o = (u & 0x7fffffu) ? 0x7fffffffu : u;
                 else {
                     uint32_t low = u & 0x1fffu;
                     o = u & ~0x1fffu;
                     if (rm == RM_RN) { if (low > 0x1000u || (low == 0x1000u && (o & 0x2000u))) o += 0x2000u; }
                     else if (rm != RM_RZ) { if (low >= 0x1000u) o += 0x2000u; } /* rna: ties away */
                 }
                 if (relu && (o & 0x80000000u)) o = (o & 0x7fffffffu) > 0x7f800000u ? 0x7fffffffu : 0;
                 S(id) = o);
            break;
        }
        case OP_LDMATRIX: {
            ptx_mma_fault mf;
            if (ptx_mma_ldmatrix(in, B->k->lists, R, &B->mv, tid0, em, &mf)) {
                fault(B, in, tid0 + mf.lane, mf.addr, mf.bytes, mf.misaligned);
                ret = -1;
                goto out;
            }
            break;
        }
        case OP_MMA:
            ptx_mma_mma(in, B->k->lists, R, em);
            break;
        case OP_PRINTF:
            for (uint32_t m = em; m; m &= m - 1) {
                if (do_printf(B, in, tid0 + (unsigned)__builtin_ctz(m))) {
                    fail(B, PTXE_ILLEGAL_ADDRESS, "printf with a bad format pointer in kernel %s at PTX line %u", B->k->name, in->line);
                    ret = -1;
                    goto out;
                }
            }
            break;
        case OP_MALLOC:
        case OP_FREE:
            /* lane order, one at a time: deterministic addresses for a deterministic kernel */
            for (uint32_t m = em; m; m &= m - 1) {
                unsigned tid = tid0 + (unsigned)__builtin_ctz(m);
                uint64_t arg = local_u64(B, tid, in->a);
                if (in->op == OP_FREE) {
                    if (arg && B->env->heap_free) B->env->heap_free(B->env->ctx, (void *)(uintptr_t)arg);
                    continue;
                }
                void *ptr = arg && B->env->heap_alloc ? B->env->heap_alloc(B->env->ctx, (size_t)arg) : NULL;
                uint8_t *r = resolve(B, tid, SP_LOCAL, (uint64_t)in->c, 8);
                uint64_t v = (uint64_t)(uintptr_t)ptr;
                if (r) memcpy(r, &v, 8);
            }
            break;
        case OP_SETCOND:
            /* lane order: the last active lane's value is the one the node sees */
            for (uint32_t m = em; m; m &= m - 1) {
                unsigned tid = tid0 + (unsigned)__builtin_ctz(m);
                uint64_t h = local_u64(B, tid, in->a);
                uint8_t *vp = resolve(B, tid, SP_LOCAL, (uint64_t)in->b, 4);
                uint32_t v = 0;
                if (vp) memcpy(&v, vp, 4);
                if (!ptx_graph_set_conditional || ptx_graph_set_conditional(h, v) != 0) {
                    fail(B, PTXE_ILLEGAL_ADDRESS, "cudaGraphSetConditional with a value that is not a conditional "
                         "handle in kernel %s at PTX line %u", B->k->name, in->line);
                    ret = -1;
                    goto out;
                }
            }
            break;
        case OP_ASSERTFAIL:
            if (em) {
                do_assert(B, in, tid0 + (unsigned)__builtin_ctz(em));
                ret = -1;
                goto out;
            }
            break;
        case OP_ILLEGAL:
            if (!em) break;
            fail(B, PTXE_ILLEGAL_INSTRUCTION, "unsupported PTX instruction in kernel %s at line %u: %s", B->k->name, in->line,
                 in->text ? in->text : "?");
            ret = -1;
            goto out;
        default:
            fail(B, PTXE_ILLEGAL_INSTRUCTION, "unimplemented decoded op %s in kernel %s at line %u", ptx_op_name(in->op),
                 B->k->name, in->line);
            ret = -1;
            goto out;
        }
        pc = next;
        if (pc >= minw) {
            store_pcs(W, pc, cm);
            goto reschedule;
        }
        continue;
    reschedule:
        resched(W);
        pc = W->cur_pc;
        cm = W->cur_mask;
        minw = W->min_wait;
        if (!cm) {
            ret = 0;
            goto out_saved;
        }
    }
out:
    W->cur_pc = pc;
    W->cur_mask = cm;
    W->min_wait = minw;
out_saved:
    B->icount += cnt;
    return ret;
}

/* ------------------------------------------------------------------ blocks and launches */
static void jit_fail(void *owner, int code, const char *msg) { fail((blk *)owner, code, "%s", msg); }

/* A host thread's block buffers, kept from one launch to the next: allocating them fresh per launch
 * (calloc of a 1024-thread block's registers is megabytes) cost page faults and zeroing that
 * dominated short launches. Shared, local memory and warp state are zeroed again at each launch, as
 * calloc did; registers are not (PTX registers are undefined until written, and a kernel's register
 * file is megabytes for a 1024-thread block). Threads that end (a
 * launch's own threads) release theirs with blk_cache_release. */
typedef struct blk_cache {
    void *p[4];
    size_t cap[4];
} blk_cache;
static __thread blk_cache t_cache;

static void *cache_take(int i, size_t n, int zero) {
    blk_cache *c = &t_cache;
    if (c->cap[i] < n) {
        free(c->p[i]);
        /* 64-byte aligned: the JIT's code reads and writes the register save area (cache 0) and the lane PCs as
         * whole 64-byte vectors, which cost two accesses each when they straddle a cache line */
        const size_t n64 = (n + 63) & ~(size_t)63;
        c->p[i] = aligned_alloc(64, n64 ? n64 : 64);
        if (c->p[i] && zero) memset(c->p[i], 0, n);
        c->cap[i] = c->p[i] ? n : 0;
        return c->p[i];
    }
    if (zero) memset(c->p[i], 0, n);
    return c->p[i];
}

static void blk_cache_release(void) {
    for (int i = 0; i < 4; i++) {
        free(t_cache.p[i]);
        t_cache.p[i] = NULL;
        t_cache.cap[i] = 0;
    }
}

void ptx_thread_release(void) { blk_cache_release(); }

static int blk_init(blk *B, launch *L, int worker, const ptx_jit_fn *jit) {
    memset(B, 0, sizeof(*B));
    B->jit = jit;
    const ptx_kernel *k = L->k;
    const ptx_launch_cfg *cfg = L->cfg;
    B->L = L;
    B->k = k;
    B->cfg = cfg;
    B->env = L->env;
    B->mv.gc = B->gcw;
    B->mv.cfg = cfg;
    B->mv.env = L->env;
    B->worker = worker;
    B->yield_backs = YIELD_BACK_BRANCHES;
    B->nthreads = cfg->block[0] * cfg->block[1] * cfg->block[2];
    B->nwarps = (B->nthreads + 31) / 32;
    size_t nslots = (size_t)(k->nslots > 0 ? k->nslots : 1);
    B->R = cache_take(0, (size_t)B->nwarps * nslots * 32 * sizeof(uint64_t), 0);
    B->w = cache_take(1, B->nwarps * sizeof(warp_st), 1);
    B->mv.smem_size = k->shared_static + cfg->dynamic_shared_bytes;
    B->mv.smem = cache_take(2, B->mv.smem_size ? B->mv.smem_size : 1, 1);
    B->mv.lsize = k->local_bytes;
    B->mv.lmem = cache_take(3, (size_t)B->nthreads * (B->mv.lsize ? B->mv.lsize : 1), 1);
    if (!B->R || !B->w || !B->mv.smem || !B->mv.lmem) return -1;
    if (jit) {
        B->J.k = k;
        B->J.cfg = cfg;
        B->J.env = L->env;
        B->J.nthreads = B->nthreads;
        B->J.nwarps = B->nwarps;
        B->J.R = B->R;
        B->J.lmem = B->mv.lmem;
        B->J.lsize = B->mv.lsize;
        B->J.err = &L->err;
        B->J.owner = B;
        B->J.fail = jit_fail;
        ptx_jit_blk_setup(&B->J, B->mv.smem, B->mv.smem_size, worker, L->coop_ws);
    }
    for (unsigned w = 0; w < B->nwarps; w++) {
        B->w[w].R = B->R + (size_t)w * nslots * 32;
        for (int c = 0; c < k->nconsts; c++) {
            uint64_t *s = B->w[w].R + (size_t)k->consts[c].slot * 32;
            for (int l = 0; l < 32; l++) s[l] = k->consts[c].bits;
        }
        /* the special registers that are the same in every block of the launch (all but %ctaid:
         * run_block fills those) */
        for (int s = 0; s < k->nspecials; s++)
            if (!jit && !sreg_per_block(k->specials[s].sreg))
                fill_special(B, k->specials[s].sreg, w, B->w[w].R + (size_t)k->specials[s].slot * 32);
    }
    return 0;
}

static void blk_free(blk *B) { ptx_jit_blk_free(&B->J); } /* the buffers stay in t_cache */

/* Cooperative launches run one host thread per block, often more threads than cores (coop_crowded); a block
 * waiting in grid.sync() spins on a global word (ld.acquire in a loop) that only other blocks
 * change. A pass over the block's warps that ended at the back-branch budget without a store or
 * atomic is such a spin: it sleeps (20 us doubling to 1 ms) and its warps then return after a
 * few back branches, so spinning blocks leave the cores to the blocks still working. Any write
 * restores the full budget. */
#define SPIN_BACKS 16
#define SPIN_MIN_US 20u
#define SPIN_MAX_US 1000u
static void coop_pause(blk *B, int spinning) {
    if (!spinning) {
        B->spin_us = 0;
        B->yield_backs = YIELD_BACK_BRANCHES;
        sched_yield();
        return;
    }
    B->spin_us = B->spin_us ? (B->spin_us * 2 > SPIN_MAX_US ? SPIN_MAX_US : B->spin_us * 2) : SPIN_MIN_US;
    B->yield_backs = SPIN_BACKS;
    struct timespec ts = {0, (long)B->spin_us * 1000};
    nanosleep(&ts, NULL);
}

static int run_block(blk *B, uint64_t bid) {
    const ptx_launch_cfg *cfg = B->cfg;
    const ptx_kernel *k = B->k;
    B->bid[0] = (unsigned)(bid % cfg->grid[0]);
    B->bid[1] = (unsigned)((bid / cfg->grid[0]) % cfg->grid[1]);
    B->bid[2] = (unsigned)(bid / ((uint64_t)cfg->grid[0] * cfg->grid[1]));
    if (B->jit) {
        memcpy(B->J.bid, B->bid, sizeof(B->bid));
        int r = ptx_jit_run_block(B->jit, &B->J);
        B->icount += B->J.f[JF_ICOUNT];
        B->J.f[JF_ICOUNT] = 0;
        return r;
    }
    for (int i = 0; i < 16; i++) {
        memset(&B->bars[i], 0, sizeof(B->bars[i]));
        B->bars[i].red_and = 1;
    }
    B->bars_arrived = 0;
    for (unsigned w = 0; w < B->nwarps; w++) {
        warp_st *W = &B->w[w];
        unsigned n = B->nthreads - w * 32;
        W->live = n >= 32 ? FULL : ((1u << n) - 1);
        W->exited = W->atbar = W->counted = W->arriving = W->wsync = 0;
        W->fresh_ids = W->counted_ids = 0;
        W->force_sync_pc = -1;
        memset(W->pc, 0, sizeof(W->pc));
        W->cur_pc = 0;
        W->cur_mask = W->live;
        W->min_wait = INT_MAX;
        for (int s = 0; s < k->nspecials; s++)
            if (sreg_per_block(k->specials[s].sreg)) fill_special(B, k->specials[s].sreg, w, W->R + (size_t)k->specials[s].slot * 32);
    }
    B->spin_us = 0;
    B->yield_backs = YIELD_BACK_BRANCHES;
    for (;;) {
        int any_runnable = 0;
        uint64_t writes0 = B->writes;
        for (unsigned w = 0; w < B->nwarps; w++) {
            warp_st *W = &B->w[w];
            if (!W->cur_mask) continue;
            int r = run_warp(B, W, w);
            if (r < 0) return -1;
            if (r == 1) any_runnable = 1;
            if (__atomic_load_n(&B->L->err, __ATOMIC_RELAXED)) return -1;
        }
        if (any_runnable) {
            if (B->L->coop_crowded) coop_pause(B, B->writes == writes0);
            continue;
        }
        /* every warp is blocked at a barrier or done */
        int r = bar_settle(B);
        if (r <= 0) return r;
    }
}

typedef struct wctx {
    launch *L;
    int worker;
    int fixed_block; /* cooperative: this thread runs exactly this block */
    int own_thread;  /* a thread started for this launch only: frees its block buffers at the end */
    uint64_t budget_ns; /* stop taking blocks after this long (0: run until none are left) */
} wctx;

/* A launch that started before its kernel's code was ready (its first launch, with the compile running in the
 * background) takes its next blocks on the JIT as soon as the code is there: one launch of many blocks (e.g. 65535
 * blocks of a long loop) otherwise stays on the interpreter to its end. Blocks are independent and both engines
 * give the same bits, so the switch is at any block boundary. Returns 0 when out of host memory (reported). */
static int switch_to_jit(blk *B, int worker) {
    const ptx_jit_fn *jit = B->L->interp_only ? NULL : ptx_jit_ready(B->k);
    if (!jit) return 1;
    launch *L = B->L;
    const uint64_t icount = B->icount;
    blk_free(B);
    if (blk_init(B, L, worker, jit)) {
        blk_free(B);
        fail(B, PTXE_OUT_OF_MEMORY, "out of host memory for a block of kernel %s", L->k->name);
        return 0;
    }
    B->icount = icount;
    return 1;
}

static void *worker_main(void *arg) {
    wctx *wc = arg;
    launch *L = wc->L;
    blk B;
    if (blk_init(&B, L, wc->worker, L->jit)) {
        blk_free(&B);
        fail(&B, PTXE_OUT_OF_MEMORY, "out of host memory for a block of kernel %s", L->k->name);
        return NULL;
    }
    if (wc->fixed_block >= 0) {
        run_block(&B, (uint64_t)wc->fixed_block);
    } else {
        uint64_t t0 = wc->budget_ns ? now_ns(CLOCK_MONOTONIC) : 0;
        for (;;) {
            if (__atomic_load_n(&L->err, __ATOMIC_RELAXED)) break;
            if (wc->budget_ns && now_ns(CLOCK_MONOTONIC) - t0 >= wc->budget_ns) break;
            if (!B.jit && !switch_to_jit(&B, wc->worker)) break;
            uint64_t bid = __atomic_fetch_add(&L->next, 1, __ATOMIC_RELAXED);
            if (bid >= L->nblocks) break;
            if (run_block(&B, bid)) break;
        }
    }
    __atomic_fetch_add(&L->icount, B.icount, __ATOMIC_RELAXED);
    blk_free(&B);
    if (wc->own_thread) blk_cache_release();
    return NULL;
}

/* Persistent helper threads for multi-worker launches (creating threads per launch costs more
 * than a small kernel). One launch uses the pool at a time; a concurrent launch (another stream)
 * falls back to threads of its own. Reset in a forked child, which inherits no threads. */
#define POOL_MAX 256
static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    int nthreads, busy, pending, job_n;
    uint64_t gen;
    wctx *job;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, NULL};

static void pool_atfork_child(void) {
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.work, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.nthreads = pool.busy = pool.pending = pool.job_n = 0;
    pool.job = NULL;
}
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static void pool_init_once(void) { pthread_atfork(NULL, NULL, pool_atfork_child); }

static void *pool_main(void *arg) {
    int idx = (int)(intptr_t)arg; /* serves job slot idx (>= 1) */
    pthread_mutex_lock(&pool.mu);
    /* Created while generation g (>= 1) is being posted, which cannot finish without this
     * thread: starting from 0 makes it take that generation first. */
    uint64_t seen = 0;
    for (;;) {
        while (pool.gen == seen) pthread_cond_wait(&pool.work, &pool.mu);
        seen = pool.gen;
        if (idx >= pool.job_n) continue;
        wctx *w = &pool.job[idx];
        pthread_mutex_unlock(&pool.mu);
        worker_main(w);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* Runs wc[0..n) with the pool; returns 0, or -1 if the pool is busy or cannot grow. */
static int pool_run(wctx *wc, int n) {
    pthread_once(&pool_once, pool_init_once);
    pthread_mutex_lock(&pool.mu);
    if (pool.busy || n > POOL_MAX) {
        pthread_mutex_unlock(&pool.mu);
        return -1;
    }
    while (pool.nthreads < n - 1) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, pool_main, (void *)(intptr_t)(pool.nthreads + 1));
        pthread_attr_destroy(&at);
        if (rc) break;
        pool.nthreads++;
    }
    if (pool.nthreads < n - 1) {
        pthread_mutex_unlock(&pool.mu);
        return -1;
    }
    pool.busy = 1;
    pool.job = wc;
    pool.job_n = n;
    pool.pending = n - 1;
    pool.gen++;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    worker_main(&wc[0]);
    pthread_mutex_lock(&pool.mu);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.mu);
    pool.busy = 0;
    pool.job = NULL;
    pool.job_n = 0;
    pthread_mutex_unlock(&pool.mu);
    return 0;
}

#define MAX_SHARED_BYTES (227u * 1024u)
#define SOLO_BUDGET_NS 500000ull
#define MAX_COOP_BLOCKS 1024u

void ptx_launch_prepare(const ptx_kernel *k, const ptx_launch_cfg *cfg) { (void)ptx_jit_get(k, cfg); }

int ptx_launch(const ptx_kernel *k, const ptx_launch_cfg *cfg, const ptx_env *env, uint64_t *instructions_executed,
               char *log, size_t loglen) {
    if (log && loglen) log[0] = 0;
    if (instructions_executed) *instructions_executed = 0;
    if (!k || !cfg || !env) return PTXE_INVALID_VALUE;
    uint64_t nthreads = (uint64_t)cfg->block[0] * cfg->block[1] * cfg->block[2];
    uint64_t nblocks = (uint64_t)cfg->grid[0] * cfg->grid[1] * cfg->grid[2];
    if (!nthreads || !nblocks || cfg->block[0] > 1024 || cfg->block[1] > 1024 || cfg->block[2] > 64 ||
        nthreads > (uint64_t)k->maxntid || cfg->grid[1] > 65535 || cfg->grid[2] > 65535) {
        if (log) snprintf(log, loglen, "invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u) for kernel %s",
                          cfg->grid[0], cfg->grid[1], cfg->grid[2], cfg->block[0], cfg->block[1], cfg->block[2], k->name);
        return PTXE_INVALID_VALUE;
    }
    if (k->param_bytes && (!cfg->param_buffer || cfg->param_buffer_size < k->param_bytes)) {
        if (log) snprintf(log, loglen, "kernel %s needs %zu bytes of parameters, got %zu", k->name, k->param_bytes,
                          cfg->param_buffer_size);
        return PTXE_INVALID_VALUE;
    }
    if (k->shared_static + cfg->dynamic_shared_bytes > MAX_SHARED_BYTES) {
        if (log) snprintf(log, loglen, "kernel %s needs %zu bytes of shared memory (limit %u)", k->name,
                          k->shared_static + cfg->dynamic_shared_bytes, MAX_SHARED_BYTES);
        return PTXE_LAUNCH_OUT_OF_RESOURCES;
    }
    launch L;
    memset(&L, 0, sizeof(L));
    L.k = k;
    L.cfg = cfg;
    L.env = env;
    L.nblocks = nblocks;
    L.log = log;
    L.loglen = loglen;
    pthread_mutex_init(&L.mu, NULL);
    pthread_once(&fma_once, pick_fma);
    const uint64_t block_threads = (uint64_t)cfg->block[0] * cfg->block[1] * cfg->block[2];
    const uint64_t block_warps = (block_threads + 31) / 32;
    L.interp_only = k->bar_warps_lo && (k->bar_warps_lo != block_warps || k->bar_warps_hi != block_warps);
    L.jit = L.interp_only ? NULL : ptx_jit_get(k, cfg);
    void *ws = NULL;
    int nw = cfg->worker_threads > 0 ? cfg->worker_threads : 1;
    if (cfg->cooperative) {
        if (nblocks > MAX_COOP_BLOCKS) {
            if (log) snprintf(log, loglen, "cooperative launch of %llu blocks exceeds %u", (unsigned long long)nblocks, MAX_COOP_BLOCKS);
            pthread_mutex_destroy(&L.mu);
            return PTXE_COOPERATIVE_LAUNCH_TOO_LARGE;
        }
        /* grid.sync() counts arrivals in a workspace whose address the kernel reads from %envreg1/2 */
        ws = env->alloc_device ? env->alloc_device(env->ctx, 64) : NULL;
        if (!ws) {
            if (log) snprintf(log, loglen, "cannot allocate the cooperative-launch workspace");
            pthread_mutex_destroy(&L.mu);
            return PTXE_OUT_OF_MEMORY;
        }
        memset(ws, 0, 64);
        L.coop_ws = (uint64_t)(uintptr_t)ws;
        /* With a core per block nothing needs the cores back: a block that only computes (no stores
         * for a while) must not be mistaken for one spinning in grid.sync() and put to sleep. */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        L.coop_crowded = ncpu > 0 && nblocks > (uint64_t)ncpu;
        nw = (int)nblocks;
    }
    if ((uint64_t)nw > nblocks) nw = (int)nblocks;
    wctx *wc = calloc((size_t)nw, sizeof(wctx));
    pthread_t *th = calloc((size_t)nw, sizeof(pthread_t));
    int started = 0;
    if (!wc || !th) {
        L.err = PTXE_OUT_OF_MEMORY;
    } else {
        for (int i = 0; i < nw; i++) {
            wc[i].L = &L;
            wc[i].worker = i;
            wc[i].fixed_block = cfg->cooperative ? i : -1;
        }
        if (nw > 1 && !cfg->cooperative) {
            /* Small launches finish faster on the calling thread alone than it takes to wake
             * helpers: run blocks here first and bring in the others only past a time budget. */
            wc[0].budget_ns = SOLO_BUDGET_NS;
            worker_main(&wc[0]);
            wc[0].budget_ns = 0;
            if (__atomic_load_n(&L.next, __ATOMIC_RELAXED) >= nblocks || L.err) nw = 1;
        }
        if (nw == 1) {
            if (wc[0].budget_ns == 0 && __atomic_load_n(&L.next, __ATOMIC_RELAXED) < nblocks && !L.err) worker_main(&wc[0]);
        } else if (pool_run(wc, nw) == 0) {
            /* ran on the pool (a cooperative launch too: each pool thread serves one slot, so all
             * its blocks run at once) */
        } else {
        for (int i = 1; i < nw; i++) {
            wc[i].own_thread = 1;
            if (pthread_create(&th[i], NULL, worker_main, &wc[i])) {
                if (cfg->cooperative) {
                    pthread_mutex_lock(&L.mu);
                    if (!L.err) {
                        L.err = PTXE_COOPERATIVE_LAUNCH_TOO_LARGE;
                        if (log) snprintf(log, loglen, "cannot start a host thread per block for a cooperative launch");
                    }
                    pthread_mutex_unlock(&L.mu);
                }
                break;
            }
            started = i;
        }
        if (!(cfg->cooperative && L.err)) worker_main(&wc[0]);
        for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
        }
    }
    free(wc);
    free(th);
    if (ws && env->free_device) env->free_device(env->ctx, ws);
    pthread_mutex_destroy(&L.mu);
    if (instructions_executed) *instructions_executed = L.icount;
    return L.err;
}
