/* ptx_jit.c - the PTX JIT's driver side: engine choice (TF_EMU_ENGINE=interp|jit), the compile cache
 * (in memory, keyed by a hash of the decoded kernel), LLVM ORC (LLJIT through the C API, code for the
 * host CPU), the block runner that ptx_exec.c calls instead of its interpreter loop, and the runtime
 * helpers generated code calls (slow memory paths, atomics, clocks). IR generation: ptx_jit_ir.c.
 * Contract: ptx_jit.h. Built without LLVM (no llvm-config-14), every kernel runs on the interpreter.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ptx_jit.h"

#ifdef TF_EMU_HAVE_LLVM
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassManagerBuilder.h>
#endif

typedef int32_t (*kern_fn)(ptx_jit_blk *J, uint64_t *R, int32_t *pcs, int32_t warp, int32_t mode);

struct ptx_jit_fn {
    kern_fn fn;
};

typedef struct centry {
    uint64_t hash;
    struct centry *next;
    ptx_jit_fn f;       /* f.fn NULL: the interpreter runs this kernel */
    double compile_ms;
} centry;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static centry *g_cache;
static int g_engine = -1; /* 0 interp, 1 jit */
static int g_trace;

static uint64_t now_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pick_engine(void) {
    const char *e = getenv("TF_EMU_ENGINE");
    const char *tr = getenv("TF_EMU_TRACE");
    g_trace = tr && *tr && strcmp(tr, "0");
    if (!e || !*e || !strcmp(e, "interp")) g_engine = 0;
    else if (!strcmp(e, "jit")) g_engine = 1;
    else {
        fprintf(stderr, "tf-emu: TF_EMU_ENGINE=%s is neither interp nor jit; using the interpreter\n", e);
        g_engine = 0;
    }
}

/* FNV-1a over the decoded program: what the generated code depends on. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}
static uint64_t kernel_hash(const ptx_kernel *k) {
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, &k->ncode, sizeof(k->ncode));
    h = fnv(h, &k->nslots, sizeof(k->nslots));
    for (int i = 0; i < k->ncode; i++) {
        const ptx_ins *in = &k->code[i];
        uint8_t f[12] = {(uint8_t)in->op, (uint8_t)(in->op >> 8), in->t, in->t2, in->space, in->vec, in->rm, in->sub,
                         in->bop, in->flags, in->pneg, in->esize};
        h = fnv(h, f, sizeof(f));
        h = fnv(h, &in->wsync, 1);
        int32_t r[11] = {in->pred, in->d, in->d2, in->a, in->b, in->c, in->e, in->v[0], in->v[1], in->v[2], in->v[3]};
        h = fnv(h, r, sizeof(r));
        h = fnv(h, &in->imm, sizeof(in->imm));
    }
    for (int c = 0; c < k->nconsts; c++) {
        h = fnv(h, &k->consts[c].slot, sizeof(int32_t));
        h = fnv(h, &k->consts[c].bits, sizeof(uint64_t));
    }
    for (int s = 0; s < k->nspecials; s++) {
        h = fnv(h, &k->specials[s].slot, sizeof(int32_t));
        h = fnv(h, &k->specials[s].sreg, sizeof(int32_t));
    }
    return h;
}

#ifdef TF_EMU_HAVE_LLVM
static LLVMOrcLLJITRef g_jit;
static int g_jit_ok = -1;
static LLVMTargetMachineRef g_tm_opt; /* for the optimizer's cost model */
static unsigned g_serial;

static int jit_init(void) {
    if (g_jit_ok >= 0) return g_jit_ok;
    g_jit_ok = 0;
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) return 0;
    /* The generated functions are few, big basic blocks of wide vectors: LLVM's instruction schedulers
     * spend ~40% of llc-14 -O2 time on them (matmul: 6.6 s -> 3.9 s of CPU) for no measurable gain here. */
    const char *opts[] = {"tf-emu", "-enable-misched=false", "-post-RA-scheduler=false"};
    LLVMParseCommandLineOptions(3, opts, NULL);
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    LLVMTargetRef T;
    char *err = NULL;
    int ok = 0;
    if (!LLVMGetTargetFromTriple(triple, &T, &err)) {
        LLVMTargetMachineRef tm = LLVMCreateTargetMachine(T, triple, cpu, feat, LLVMCodeGenLevelAggressive, LLVMRelocDefault,
                                                          LLVMCodeModelJITDefault);
        g_tm_opt = LLVMCreateTargetMachine(T, triple, cpu, feat, LLVMCodeGenLevelAggressive, LLVMRelocDefault,
                                           LLVMCodeModelJITDefault);
        if (tm && g_tm_opt) {
            LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
            LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
            LLVMErrorRef e = LLVMOrcCreateLLJIT(&g_jit, b);
            if (e) {
                char *m = LLVMGetErrorMessage(e);
                fprintf(stderr, "tf-emu: LLVM JIT unavailable: %s\n", m);
                LLVMDisposeErrorMessage(m);
            } else {
                ok = 1;
            }
        }
    } else {
        fprintf(stderr, "tf-emu: LLVM JIT unavailable: %s\n", err ? err : "no native target");
        LLVMDisposeMessage(err);
    }
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    g_jit_ok = ok;
    return ok;
}

/* Kernels longer than this run on the interpreter: LLVM's code generation for 32-lane vectors costs
 * 10-30 ms of CPU per PTX instruction on these cores, so CUB's multi-thousand-instruction sorting
 * kernels would spend minutes compiling (measured: tests/emu thrust sort + CUB scan took 3m47s on the
 * JIT, against the interpreter's seconds). */
#define PTX_JIT_MAX_INSTRUCTIONS 400

/* Compiles k; fn NULL with a reason in why when it cannot. */
static kern_fn compile(const ptx_kernel *k, char *why, size_t whylen) {
    if (k->ncode > PTX_JIT_MAX_INSTRUCTIONS) {
        snprintf(why, whylen, "%d instructions, above the JIT's limit of %d (compile time)", k->ncode, PTX_JIT_MAX_INSTRUCTIONS);
        return NULL;
    }
    if (!jit_init()) { snprintf(why, whylen, "LLVM JIT unavailable"); return NULL; }
    char name[32];
    snprintf(name, sizeof(name), "tfk%u", g_serial++);
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef cx = LLVMOrcThreadSafeContextGetContext(tsc);
    LLVMModuleRef m = ptx_jit_build_ir(k, cx, name, why, whylen);
    if (!m) { LLVMOrcDisposeThreadSafeContext(tsc); return NULL; }
    LLVMSetTarget(m, LLVMOrcLLJITGetTripleString(g_jit));
    LLVMSetDataLayout(m, LLVMOrcLLJITGetDataLayoutStr(g_jit));
    char *verr = NULL;
    if (getenv("TF_EMU_JIT_VERIFY") && LLVMVerifyModule(m, LLVMReturnStatusAction, &verr)) {
        snprintf(why, whylen, "generated IR does not verify: %.150s", verr ? verr : "?");
        LLVMDisposeMessage(verr);
        LLVMDisposeModule(m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        return NULL;
    }
    if (verr) LLVMDisposeMessage(verr);
    const char *dumpraw = getenv("TF_EMU_JIT_DUMP_RAW");
    if (dumpraw) { char fn[256]; snprintf(fn, sizeof(fn), "%s/%s.ll", dumpraw, k->name); LLVMPrintModuleToFile(m, fn, NULL); }
    LLVMPassManagerRef pm = LLVMCreatePassManager();
    LLVMAddAnalysisPasses(g_tm_opt, pm);
    LLVMPassManagerBuilderRef pmb = LLVMPassManagerBuilderCreate();
    LLVMPassManagerBuilderSetOptLevel(pmb, 2);
    LLVMPassManagerBuilderPopulateModulePassManager(pmb, pm);
    LLVMRunPassManager(pm, m);
    LLVMPassManagerBuilderDispose(pmb);
    LLVMDisposePassManager(pm);
    if (getenv("TF_EMU_JIT_DUMP")) LLVMDumpModule(m);
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(g_jit, LLVMOrcLLJITGetMainJITDylib(g_jit), tsm);
    LLVMOrcExecutorAddress addr = 0;
    if (!e) e = LLVMOrcLLJITLookup(g_jit, &addr, name);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        snprintf(why, whylen, "LLVM: %.150s", msg);
        LLVMDisposeErrorMessage(msg);
        return NULL;
    }
    return (kern_fn)(uintptr_t)addr;
}
#else
static kern_fn compile(const ptx_kernel *k, char *why, size_t whylen) {
    (void)k;
    snprintf(why, whylen, "built without LLVM (llvm-14-dev)");
    return NULL;
}
#endif

const ptx_jit_fn *ptx_jit_get(const ptx_kernel *k, const ptx_launch_cfg *cfg) {
    if (g_engine < 0) {
        pthread_mutex_lock(&g_mu);
        if (g_engine < 0) pick_engine();
        pthread_mutex_unlock(&g_mu);
    }
    if (g_engine != 1 || cfg->cooperative) return NULL;
    centry *ce = __atomic_load_n((centry **)&((ptx_kernel *)k)->jit, __ATOMIC_ACQUIRE);
    if (!ce) {
        uint64_t h = kernel_hash(k);
        pthread_mutex_lock(&g_mu);
        for (centry *c = g_cache; c; c = c->next) if (c->hash == h) { ce = c; break; }
        if (!ce) {
            ce = calloc(1, sizeof(*ce));
            if (!ce) { pthread_mutex_unlock(&g_mu); return NULL; }
            char why[256] = "";
            uint64_t t0 = now_ns(CLOCK_MONOTONIC);
            ce->f.fn = compile(k, why, sizeof(why));
            ce->compile_ms = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e6;
            ce->hash = h;
            ce->next = g_cache;
            g_cache = ce;
            if (g_trace) {
                if (ce->f.fn) fprintf(stderr, "tf-emu: jit: kernel %s compiled in %.1f ms (%d instructions)\n", k->name, ce->compile_ms, k->ncode);
                else fprintf(stderr, "tf-emu: jit: kernel %s runs on the interpreter: %s\n", k->name, why);
            }
        }
        __atomic_store_n((centry **)&((ptx_kernel *)k)->jit, ce, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&g_mu);
    }
    return ce->f.fn ? &ce->f : NULL;
}

double ptx_jit_compile_ms(const ptx_kernel *k) {
    centry *ce = __atomic_load_n((centry **)&((ptx_kernel *)k)->jit, __ATOMIC_ACQUIRE);
    return ce && ce->f.fn ? ce->compile_ms : -1;
}

/* ------------------------------------------------------------------ block runner */
void ptx_jit_blk_setup(ptx_jit_blk *J, uint8_t *smem, uint64_t smem_size, int worker, uint64_t coop_ws) {
    const ptx_launch_cfg *cfg = J->cfg;
    memset(J->f, 0, sizeof(J->f));
    J->f[JF_SMEM] = (uint64_t)(uintptr_t)smem;
    J->f[JF_SMEM_SIZE] = smem_size;
    J->f[JF_NTID_X] = cfg->block[0];
    J->f[JF_NTID_Y] = cfg->block[1];
    J->f[JF_NTID_Z] = cfg->block[2];
    J->f[JF_NCTAID_X] = cfg->grid[0];
    J->f[JF_NCTAID_Y] = cfg->grid[1];
    J->f[JF_NCTAID_Z] = cfg->grid[2];
    J->f[JF_NWARPS] = J->nwarps;
    J->f[JF_SMID] = (uint64_t)worker;
    J->f[JF_NSMID] = (uint64_t)(cfg->worker_threads > 0 ? cfg->worker_threads : 1);
    J->f[JF_ENVREG1] = coop_ws >> 32;
    J->f[JF_ENVREG2] = coop_ws & 0xffffffffu;
    J->f[JF_DYN_SMEM] = cfg->dynamic_shared_bytes;
    J->f[JF_TOTAL_SMEM] = smem_size;
}

void ptx_jit_blk_free(ptx_jit_blk *J) {
    free(J->pcs);
    free(J->state);
    J->pcs = NULL;
    J->state = NULL;
}

enum { ST_DONE = -1, ST_BAR = -2 }; /* else: the mode to call the warp with */

int ptx_jit_run_block(const ptx_jit_fn *fn, ptx_jit_blk *J) {
    const unsigned nw = J->nwarps;
    const size_t nslots = (size_t)(J->k->nslots > 0 ? J->k->nslots : 1);
    if (!J->pcs) {
        J->pcs = malloc((size_t)nw * 32 * sizeof(int32_t));
        J->state = malloc(nw);
        if (!J->pcs || !J->state) {
            J->fail(J->owner, PTXE_OUT_OF_MEMORY, "out of host memory for a block");
            return -1;
        }
    }
    J->f[JF_CTAID_X] = J->bid[0];
    J->f[JF_CTAID_Y] = J->bid[1];
    J->f[JF_CTAID_Z] = J->bid[2];
    const ptx_launch_cfg *cfg = J->cfg;
    for (unsigned w = 0; w < nw; w++) {
        unsigned n = J->nthreads - w * 32;
        for (unsigned l = 0; l < 32; l++) J->pcs[w * 32 + l] = l < n ? 0 : PTX_JIT_PC_EXITED;
        J->state[w] = 0;
        uint64_t *R = J->R + (size_t)w * nslots * 32;
        for (int s = 0; s < J->k->nspecials; s++) {
            uint64_t *v = R + (size_t)J->k->specials[s].slot * 32;
            const int sr = J->k->specials[s].sreg;
            for (unsigned l = 0; l < 32; l++) {
                const unsigned tid = w * 32 + l;
                uint64_t x;
                switch (sr) {
                case SR_TID_X: x = tid % cfg->block[0]; break;
                case SR_TID_Y: x = (tid / cfg->block[0]) % cfg->block[1]; break;
                case SR_TID_Z: x = tid / (cfg->block[0] * cfg->block[1]); break;
                case SR_NTID_X: x = cfg->block[0]; break;
                case SR_NTID_Y: x = cfg->block[1]; break;
                case SR_NTID_Z: x = cfg->block[2]; break;
                case SR_CTAID_X: x = J->bid[0]; break;
                case SR_CTAID_Y: x = J->bid[1]; break;
                case SR_CTAID_Z: x = J->bid[2]; break;
                case SR_NCTAID_X: x = cfg->grid[0]; break;
                case SR_NCTAID_Y: x = cfg->grid[1]; break;
                case SR_NCTAID_Z: x = cfg->grid[2]; break;
                case SR_LANEID: x = l; break;
                case SR_WARPID: x = w; break;
                case SR_NWARPID: x = nw; break;
                case SR_SMID: x = J->f[JF_SMID]; break;
                case SR_NSMID: x = J->f[JF_NSMID]; break;
                case SR_LANEMASK_EQ: x = 1u << l; break;
                case SR_LANEMASK_LT: x = (1u << l) - 1; break;
                case SR_LANEMASK_LE: x = l == 31 ? 0xffffffffu : (2u << l) - 1; break;
                case SR_LANEMASK_GT: x = l == 31 ? 0 : (uint32_t)~((2u << l) - 1); break;
                case SR_LANEMASK_GE: x = (uint32_t)~((1u << l) - 1); break;
                case SR_ENVREG1: x = J->f[JF_ENVREG1]; break;
                case SR_ENVREG2: x = J->f[JF_ENVREG2]; break;
                case SR_DYN_SMEM: x = J->f[JF_DYN_SMEM]; break;
                case SR_TOTAL_SMEM: x = J->f[JF_TOTAL_SMEM]; break;
                default: x = ptx_jit_sreg(J, sr); break;
                }
                v[l] = x;
            }
        }
    }
    for (;;) {
        int any_run = 0, any_bar = 0;
        for (unsigned w = 0; w < nw; w++) {
            if (J->state[w] < 0) continue;
            J->cur_warp = w;
            int r = fn->fn(J, J->R + (size_t)w * nslots * 32, J->pcs + w * 32, (int32_t)w, J->state[w]);
            if (r < 0) return -1;
            J->state[w] = r == 0 ? ST_DONE : r == 1 ? ST_BAR : 2;
            if (r == 2) any_run = 1;
            if (__atomic_load_n(J->err, __ATOMIC_RELAXED)) return -1;
        }
        if (any_run) continue;
        for (unsigned w = 0; w < nw; w++) if (J->state[w] == ST_BAR) any_bar = 1;
        if (!any_bar) return 0;
        for (unsigned w = 0; w < nw; w++) {
            if (J->state[w] != ST_BAR) continue;
            for (unsigned l = 0; l < 32; l++)
                if (J->pcs[w * 32 + l] != PTX_JIT_PC_EXITED) J->pcs[w * 32 + l] &= ~PTX_JIT_PC_ATBAR;
            J->state[w] = 1;
        }
    }
}

/* ------------------------------------------------------------------ runtime helpers */
/* as the interpreter's gslow: validate, then learn the whole allocation (grow, then bisect) */
static uint8_t *gslow(ptx_jit_blk *J, uint64_t a, uint64_t n) {
    if (a >= PTX_SHARED_BASE || n == 0 || a + n < a) return NULL;
    const ptx_env *env = J->env;
    if (!env->check_global || !env->check_global(env->ctx, a, n)) return NULL;
    uint64_t lo = a, hi = a + n, step = 64;
    while (hi + step < PTX_SHARED_BASE && env->check_global(env->ctx, lo, hi + step - lo)) { hi += step; step <<= 1; }
    while (step > 1) { step >>= 1; if (hi + step < PTX_SHARED_BASE && env->check_global(env->ctx, lo, hi + step - lo)) hi += step; }
    step = 64;
    while (lo >= step && env->check_global(env->ctx, lo - step, hi - (lo - step))) { lo -= step; step <<= 1; }
    while (step > 1) { step >>= 1; if (lo >= step && env->check_global(env->ctx, lo - step, hi - (lo - step))) lo -= step; }
    memmove(&J->f[JF_GC1_LO], &J->f[JF_GC0_LO], 6 * sizeof(uint64_t));
    J->f[JF_GC0_LO] = lo;
    J->f[JF_GC0_HI] = hi;
    return (uint8_t *)(uintptr_t)a;
}

static uint8_t *gaddr(ptx_jit_blk *J, uint64_t a, uint64_t n) {
    for (int i = 0; i < 4; i++)
        if (a >= J->f[JF_GC0_LO + 2 * i] && a + n <= J->f[JF_GC0_HI + 2 * i] && a + n >= a) return (uint8_t *)(uintptr_t)a;
    return gslow(J, a, n);
}

static uint8_t *resolve(ptx_jit_blk *J, unsigned tid, int space, uint64_t a, uint64_t n) {
    const uint64_t ssz = J->f[JF_SMEM_SIZE];
    switch (space) {
    case SP_GLOBAL:
    case SP_CONST:
        return gaddr(J, a, n);
    case SP_SHARED:
        return (a <= ssz && n <= ssz - a) ? (uint8_t *)(uintptr_t)J->f[JF_SMEM] + a : NULL;
    case SP_LOCAL:
        return (a <= J->lsize && n <= J->lsize - a) ? J->lmem + (size_t)tid * J->lsize + a : NULL;
    case SP_KPARAM:
        return (a <= J->cfg->param_buffer_size && n <= J->cfg->param_buffer_size - a)
                   ? (uint8_t *)(uintptr_t)J->cfg->param_buffer + a : NULL;
    default:
        if (a < PTX_SHARED_BASE) return gaddr(J, a, n);
        if (a < PTX_SHARED_BASE + PTX_WIN_SIZE) return resolve(J, tid, SP_SHARED, a - PTX_SHARED_BASE, n);
        if (a >= PTX_LOCAL_BASE && a < PTX_LOCAL_BASE + PTX_WIN_SIZE) return resolve(J, tid, SP_LOCAL, a - PTX_LOCAL_BASE, n);
        if (a >= PTX_PARAM_BASE && a < PTX_PARAM_BASE + PTX_WIN_SIZE) return resolve(J, tid, SP_KPARAM, a - PTX_PARAM_BASE, n);
        return NULL;
    }
}

/* the interpreter's fault() message, word for word */
static void fault(ptx_jit_blk *J, const ptx_ins *in, unsigned tid, uint64_t a, uint64_t n, int misaligned) {
    static const char *sn[] = {"generic", "global", "shared", "local", "const", "param"};
    const unsigned *b = J->cfg->block;
    unsigned x = tid % b[0], y = (tid / b[0]) % b[1], z = tid / (b[0] * b[1]);
    char msg[512];
    snprintf(msg, sizeof(msg),
             "%s %s address 0x%llx (%llu bytes, %s) in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
             misaligned ? "misaligned" : "illegal", in->op == OP_ST ? "store to" : in->op == OP_LD ? "load from" : "access to",
             (unsigned long long)a, (unsigned long long)n, in->space < 6 ? sn[in->space] : "?", J->k->name, in->line,
             J->bid[0], J->bid[1], J->bid[2], x, y, z);
    J->fail(J->owner, misaligned ? PTXE_MISALIGNED_ADDRESS : PTXE_ILLEGAL_ADDRESS, msg);
}

int ptx_jit_xlate(ptx_jit_blk *J, int32_t insidx, const uint64_t *addr, uint32_t mask, uint64_t *ptrs) {
    const ptx_ins *in = &J->k->code[insidx];
    const unsigned tot = (unsigned)in->esize * in->vec;
    for (unsigned l = 0; l < 32; l++) {
        ptrs[l] = 0;
        if (!((mask >> l) & 1)) continue;
        const unsigned tid = J->cur_warp * 32 + l;
        uint64_t a = addr[l];
        uint8_t *p = resolve(J, tid, in->space, a, tot);
        if (!p || (a & (tot - 1))) { fault(J, in, tid, a, tot, p != NULL); return -1; }
        ptrs[l] = (uint64_t)(uintptr_t)p;
    }
    return 0;
}

int ptx_jit_atom(ptx_jit_blk *J, int32_t insidx, const uint64_t *addr, const uint64_t *b, const uint64_t *c, uint32_t mask,
                 uint64_t *out) {
    const ptx_ins *in = &J->k->code[insidx];
    const int es = in->esize;
    for (uint32_t m = mask; m; m &= m - 1) {
        const unsigned l = (unsigned)__builtin_ctz(m);
        const unsigned tid = J->cur_warp * 32 + l;
        uint64_t a = addr[l];
        uint8_t *p = resolve(J, tid, in->space, a, (uint64_t)es);
        if (!p || (a & (uint64_t)(es - 1))) { fault(J, in, tid, a, (uint64_t)es, p != NULL); return -1; }
        uint64_t old = ptx_atom_do(p, es, in->sub, in->t, b[l], c[l]);
        int sg = in->t == T_S8 || in->t == T_S16 || in->t == T_S32 || in->t == T_S64;
        out[l] = sg && es < 8 ? (uint64_t)((int64_t)(old << (64 - 8 * es)) >> (64 - 8 * es)) : old;
    }
    return 0;
}

uint64_t ptx_jit_sreg(ptx_jit_blk *J, int32_t sr) {
    (void)J;
    switch (sr) {
    case SR_CLOCK: return (uint32_t)now_ns(CLOCK_MONOTONIC);
    case SR_CLOCK64: return now_ns(CLOCK_MONOTONIC);
    case SR_GTIMER: return now_ns(CLOCK_REALTIME);
    case SR_GTIMER_LO: return (uint32_t)now_ns(CLOCK_REALTIME);
    case SR_GTIMER_HI: return (uint32_t)(now_ns(CLOCK_REALTIME) >> 32);
    default: return 0;
    }
}
