/* ptx_jit.h - the contract between the PTX executor (ptx_exec.c) and the PTX JIT, and between the
 * JIT's two halves. In libcuda.so.1 (no LLVM): ptx_jit.c (engine choice, in-memory cache, the
 * background compile thread, plugin loading, block runner, runtime helpers) and ptx_jit_cache.c (the
 * on-disk cache of compiled objects); ptx_jit_key.c (a kernel's program as bytes and back). In the plugin
 * build/emu/libtf-emu-jit.so, which ptx_jit.c dlopens when it first has compiled code to link (so
 * libLLVM-14 loads only into processes that run JIT code): ptx_jit_llvm.c (LLVM ORC, object code) and
 * ptx_jit_ir.c (decoded PTX -> LLVM IR). The same two files, linked with ptx_jitc.c, are the compiler
 * process build/emu/tf-emu-jitc, where every compile runs (so a program never waits for one at exit).
 * ptx_exec.c keeps launches, the worker pool and blocks; for a kernel the JIT compiled it hands each
 * block to ptx_jit_run_block instead of its interpreter loop.
 *
 * Generated code reads the block's state from ptx_jit_blk.f[] (64-bit words, JF_* indices) and calls
 * the runtime helpers below (by address) for slow memory paths, atomics and dynamic special registers.
 * A generated kernel function is
 *     int32_t fn(ptx_jit_blk *J, uint64_t *R, int32_t *pcs, int32_t *state)
 * running the block's warps (f[JF_NWARPS]) in rounds, as the interpreter's run_block does: R holds each
 * warp's register save area (warp w, slot s, lane l at R[(w*nslots + s)*32 + l]), pcs each warp's 32 lane PCs
 * (w*32 + l), state each warp's word (>= 0: the mode of its next run; -1: done; ST_WAIT(r) = -1 - r: waiting
 * at a barrier since its run returned r, which the release turns into mode r). It returns 0 when every warp
 * is done, 2 after a round in which a warp yielded (the caller checks the launch's error word and calls
 * again), -1 on a fault (reported) or when it found the launch's error word set at a barrier's release. Inside,
 * one warp's run is a call of the internal warp function
 *     int32_t warp(ptx_jit_blk *J, uint64_t *R, int32_t *pcs, int32_t warp, int32_t mode)
 * with R and pcs that warp's: pcs are its lanes' PTX instruction indices (PTX_JIT_PC_EXITED for lanes that
 * exited or do not exist; | PTX_JIT_PC_ATBAR for lanes waiting at bar.sync). mode: 0 = start, 1 = resume
 * after a barrier (the function clears its lanes' PTX_JIT_PC_ATBAR), 2 = resume after a yield,
 * PTX_JIT_BAR_AT + i = resume after the barrier at instruction i, where it returned that value. Returns 0
 * (every lane exited), 1 (every remaining lane waits at a barrier), 2 (yielded at a backward branch so other
 * warps can run), PTX_JIT_BAR_AT + i (every lane that has not exited waits at the bar.sync at instruction i:
 * after the release, the call with that mode resumes at i + 1 straight away), -1 (fault, reported).
 */
#ifndef TF_EMU_PTX_JIT_H
#define TF_EMU_PTX_JIT_H

#include <stdint.h>
#include "ptx_internal.h"
#include "ptx_mem.h"

#define PTX_JIT_PC_EXITED 0x7fffffff
#define PTX_JIT_PC_ATBAR  0x40000000
#define PTX_JIT_YIELD_BACK_BRANCHES 4096
#define PTX_JIT_BAR_AT 3

/* Software stride prefetch (ptx_jit_ir.c, gen_stride_prefetch). Warps run one after another on a host
 * thread, so a warp's load that misses the caches waits alone (a GPU runs other warps meanwhile); a tile
 * loop's loads of one site usually step by a constant across the warps of a block and its iterations (a
 * 32x32 sgemm's rows of B: 8 KiB, a new page each). The first PTX_JIT_PREFETCH_SITES whole-warp linear
 * global loads of a kernel keep, per block runner (J: one worker thread's blocks of a launch, all their
 * warps), the last lane-0 address and the step from the one before (J->f[JF_PREFETCH + 2 * site], + 1);
 * when a step of at least PTX_JIT_PREFETCH_MIN_STEP bytes (either way) repeats, the 4 chunks' addresses
 * PTX_JIT_PREFETCH_STRIDES steps ahead are prefetched. Shorter steps are left to the CPU's own prefetchers,
 * which follow a stride within a page (prefetching a 256^3 sgemm's L2-resident 1 KiB-step rows cost ~10%). A
 * prefetch never faults and changes no value: only which lines are in the caches. */
#define PTX_JIT_PREFETCH_SITES 16
#define PTX_JIT_PREFETCH_MIN_STEP 4096
#define PTX_JIT_PREFETCH_STRIDES 8 /* benchmarks/RESULTS.md, "stride prefetch": 8 beat 2, 4, 12 and 16 */

/* Words of ptx_jit_blk.f the generated code reads (and JF_ICOUNT, which it adds to). */
enum {
    JF_SMEM, JF_SMEM_SIZE,
    JF_GC0_LO, JF_GC0_HI, JF_GC1_LO, JF_GC1_HI, JF_GC2_LO, JF_GC2_HI, JF_GC3_LO, JF_GC3_HI,
    JF_ICOUNT,
    JF_NTID_X, JF_NTID_Y, JF_NTID_Z, JF_CTAID_X, JF_CTAID_Y, JF_CTAID_Z,
    JF_NCTAID_X, JF_NCTAID_Y, JF_NCTAID_Z, JF_NWARPS, JF_SMID, JF_NSMID,
    JF_ENVREG1, JF_ENVREG2, JF_DYN_SMEM, JF_TOTAL_SMEM,
    JF_PARAM, JF_PARAM_SIZE, /* the launch's parameter buffer (ld.param of a constant offset reads it inline) */
    JF_CUR_WARP,             /* the warp running now (generated code sets it; the helpers' thread indices) */
    JF_ERR,                  /* the address of the launch's error word (an int; generated code reads it at releases) */
    JF_RED_COUNT, JF_RED_AND, JF_RED_OR,             /* bar.red's reductions so far (the runner starts them: 0, 1, 0) */
    JF_RED_OUT_COUNT, JF_RED_OUT_AND, JF_RED_OUT_OR, /* ... at the last release (what bar.red's destination reads) */
    JF_PREFETCH,             /* 2 words per prefetch site: last lane-0 address, last step (zeroed per launch) */
    JF_COUNT = JF_PREFETCH + 2 * PTX_JIT_PREFETCH_SITES
};

typedef struct ptx_jit_fn ptx_jit_fn; /* a compiled kernel (owned by the JIT's cache, never freed) */

typedef struct ptx_jit_blk {
    uint64_t f[JF_COUNT];
    /* filled by ptx_exec.c */
    const ptx_kernel *k;
    const ptx_launch_cfg *cfg;
    const ptx_env *env;
    unsigned bid[3];
    unsigned nthreads, nwarps;
    uint64_t *R;        /* nwarps * nslots * 32 */
    uint8_t *lmem;
    uint64_t lsize;     /* per thread */
    int *err;           /* the launch's error word: stop early when set */
    void *owner;
    void (*fail)(void *owner, int code, const char *msg);
    /* set by ptx_jit_blk_setup: the memory the runtime helpers resolve addresses in (ptx_mem.h; its
     * global-allocation cache is f[JF_GC0_LO..JF_GC3_HI], which generated code checks inline) */
    ptx_memview mv;
    /* the runner's own (allocated on first use, freed by ptx_jit_blk_free) */
    int32_t *pcs;
    int32_t *state;
} ptx_jit_blk;

/* How a kernel's length decides its compile (benchmarks/RESULTS.md, "the PTX JIT's kernel size limit"):
 * LLVM's -O2 promotes every register slot (a <32 x i32/i64> vector) to SSA values whose live ranges span
 * the whole dispatcher, and code generation (greedy register allocation, live intervals, instruction
 * selection) grows faster than the kernel: 0.9 s of CPU at 237 instructions, 6 s at 516, 17 s at 620, 49 s
 * and 600 MB at 939. Kept in memory (no mem2reg/SROA: only CFG simplification, early CSE and instcombine),
 * the same kernels compile in 0.9-4.2 s and 110-240 MB, growing with the kernel's length. So kernels up to
 * PTX_JIT_FULL_OPT_INSTRUCTIONS get -O2, longer ones the light pipeline, and kernels longer than
 * PTX_JIT_MAX_INSTRUCTIONS (which the light pipeline would still take tens of seconds and gigabytes for)
 * stay on the interpreter. */
#ifndef PTX_JIT_FULL_OPT_INSTRUCTIONS
#define PTX_JIT_FULL_OPT_INSTRUCTIONS 400
#endif
#ifndef PTX_JIT_MAX_INSTRUCTIONS
#define PTX_JIT_MAX_INSTRUCTIONS 8000
#endif

/* The compiled kernel for k; NULL (the interpreter runs this launch) when the engine is the
 * interpreter (TF_EMU_ENGINE=interp, the default), the plugin or LLVM is missing, k uses something the
 * JIT does not translate (TF_EMU_TRACE=1 logs why, once per kernel), or k's code is not ready yet: the
 * first launch queues k for the compile thread and returns at once, so launches run on the
 * interpreter until the code is ready and switch at a block boundary (ptx_jit_ready). TF_EMU_JIT_SYNC=1 compiles
 * in the launching thread instead (deterministic tests, benchmarks that time the compile). */
const ptx_jit_fn *ptx_jit_get(const ptx_kernel *k, const ptx_launch_cfg *cfg);
/* k's compiled code if it is ready now, else NULL; never queues or waits (a launch running on the interpreter
 * asks between its blocks). */
const ptx_jit_fn *ptx_jit_ready(const ptx_kernel *k);
/* Blocks this process ran on compiled code so far (tests: which engine ran a launch's blocks). */
uint64_t ptx_jit_blocks_run(void);
/* k is being freed (module unload): drops it from the compile queue (a compile under way reads only a copy). */
void ptx_jit_forget(const ptx_kernel *k);
/* Waits until k's compile (queued by a launch) finished; 1 if compiled code is ready, else 0. */
int ptx_jit_wait(const ptx_kernel *k);
/* Tests: 1 stops the compile thread before its next compile, 0 lets it go on. */
void ptx_jit_hold(int on);
/* Called by the driver's calls (emu_internal.h: emu_jit_exit_fence), cheap after a thread's first call:
 * in the process's main thread it registers the exit fence (ptx_jit.c: exit waits for a start-up of LLVM
 * under way before any exit handler runs, libLLVM's destructors included). */
void ptx_jit_exit_fence(void);
/* Runs one block (J->bid set, J->f filled by ptx_jit_blk_setup); 0 or -1 (reported through J->fail). */
int ptx_jit_run_block(const ptx_jit_fn *fn, ptx_jit_blk *J);
void ptx_jit_blk_setup(ptx_jit_blk *J, uint8_t *smem, uint64_t smem_size, int worker, uint64_t coop_ws);
void ptx_jit_blk_free(ptx_jit_blk *J);
/* Milliseconds the JIT took to make k's code (IR, optimisation, machine code; or, from the disk
 * cache, reading and linking the object); -1 if it did not. *from_disk (may be NULL): 1 for a hit. */
double ptx_jit_compile_ms(const ptx_kernel *k);
double ptx_jit_compile_info(const ptx_kernel *k, int *from_disk);

/* Runtime helpers generated code calls (ptx_jit.c). addr/vals/b/c/out: 32 lanes each (vals: vec*32). */
/* Host address of each executing lane's access (any state space) into ptrs, or -1 with the fault reported. */
int ptx_jit_xlate(ptx_jit_blk *J, int32_t insidx, const uint64_t *addr, uint32_t mask, uint64_t *ptrs);
int ptx_jit_atom(ptx_jit_blk *J, int32_t insidx, const uint64_t *addr, const uint64_t *b, const uint64_t *c,
                 uint32_t mask, uint64_t *out);
/* cp.async insidx (done at once, as the interpreter does) on each lane of mask: a = shared destination,
 * b = global source, c = source size (when the instruction has one). 0, or -1 (fault reported). */
int ptx_jit_cpasync(ptx_jit_blk *J, int32_t insidx, const uint64_t *a, const uint64_t *b, const uint64_t *c, uint32_t mask);
/* tex/tld4 insidx on each lane of mask: ops holds 32-lane vectors in the order ptx_jit_tex_ops gives (handle,
 * coordinates, offsets, lod, gradients); out[k*32 + l] = lane l's element k. 0, or -1 (no live texture: reported). */
int ptx_jit_tex(ptx_jit_blk *J, int32_t insidx, const uint64_t *ops, uint32_t mask, uint64_t *out);
/* The register slots a tex/tld4 reads, in ptx_jit_tex's order (at most 14); their count. lists: the kernel's. */
static inline int ptx_jit_tex_ops(const ptx_ins *in, const int32_t *lists, int nlists, int *slots) {
    int n = 0;
    slots[n++] = in->a;
    for (int k = 0; k < in->esize && k < 4; k++) slots[n++] = in->c + k < nlists && in->c >= 0 ? lists[in->c + k] : -1;
    if (in->b >= 0) for (int k = 0; k < 3; k++) slots[n++] = in->b + k < nlists ? lists[in->b + k] : -1;
    if (in->op == OP_TEX && in->bop == 1) slots[n++] = in->e;
    if (in->op == OP_TEX && in->bop == 2) for (int k = 0; k < 6; k++) slots[n++] = in->imm + k < nlists && in->imm >= 0 ? lists[in->imm + k] : -1;
    return n;
}
/* Instruction insidx (ptx_alu_lane_covers) on each lane of mask: operands a, b, c, e; out[l] = d, out[32 + l] = d2. */
void ptx_jit_alu(ptx_jit_blk *J, int32_t insidx, const uint64_t *a, const uint64_t *b, const uint64_t *c, const uint64_t *e,
                 uint32_t mask, uint64_t *out);
uint64_t ptx_jit_sreg(ptx_jit_blk *J, int32_t sr);

/* Generated code names the helpers above by these symbols (the plugin defines them at the addresses
 * ptx_jit_host gives), so compiled objects hold no process addresses and can be cached on disk. */
#define PTX_JIT_SYM_XLATE "tf_emu_jit_xlate"
#define PTX_JIT_SYM_ATOM  "tf_emu_jit_atom"
#define PTX_JIT_SYM_SREG  "tf_emu_jit_sreg"
#define PTX_JIT_SYM_ALU   "tf_emu_jit_alu"
#define PTX_JIT_SYM_TEX   "tf_emu_jit_tex"
#define PTX_JIT_SYM_CPASYNC "tf_emu_jit_cpasync"

/* Translator (ptx_jit_ir.c, in the plugin). Returns NULL and a reason in why when k uses something it
 * does not translate; otherwise an LLVMModuleRef (as void *) in context cx holding function `name`. */
void *ptx_jit_build_ir(const ptx_kernel *k, void *cx, const char *name, char *why, size_t whylen);
/* Bump when ptx_jit_ir.c generates different code for the same program: it is part of the disk key. */
#define PTX_JIT_GENERATOR_VERSION 25

/* ---- the plugin's interface (libtf-emu-jit.so exports one symbol, PTX_JIT_PLUGIN_ENTRY) ---- */
#define PTX_JIT_PLUGIN_ABI 4
#define PTX_JIT_PLUGIN_FILE "libtf-emu-jit.so"
#define PTX_JIT_PLUGIN_ENTRY "tf_emu_jit_plugin"
typedef struct ptx_jit_host {
    int abi;
    const char *(*op_name)(int op);
    void *xlate, *atom, *sreg, *alu, *tex, *cpasync; /* ptx_jit_xlate, _atom, _sreg, _alu, _tex, _cpasync */
} ptx_jit_host;
typedef struct ptx_jit_plugin {
    int abi;
    /* Starts LLVM for the host CPU (once): 0, or -1 with the reason. */
    int (*init)(const ptx_jit_host *host, char *why, size_t whylen);
    /* What compiled code depends on besides the program: LLVM version, triple, CPU name and features. */
    const char *(*target_id)(void);
    /* k -> optimised object code defining function `name` (*obj: malloc'ed, the caller frees);
     * 0, or -1 with the reason (k uses something the JIT does not translate, LLVM failed). */
    int (*compile)(const ptx_kernel *k, const char *name, void **obj, size_t *objlen, char *why, size_t whylen);
    /* Links an object compile made (now or in an earlier process) and returns the address of `name`. */
    int (*load)(const void *obj, size_t objlen, const char *name, void **fn, char *why, size_t whylen);
} ptx_jit_plugin;
typedef const ptx_jit_plugin *(*ptx_jit_plugin_entry_fn)(void);

/* ---- the key: a kernel's decoded program as bytes and back (ptx_jit_key.c) ---- */
typedef struct ptx_jit_buf {
    uint8_t *p;
    size_t n, cap;
    int oom; /* set when an append failed; p holds what came before */
} ptx_jit_buf;
void ptx_jit_buf_put(ptx_jit_buf *b, const void *v, size_t n);
/* Appends everything ptx_jit_ir.c reads of k (not names or PTX line numbers, which the runtime reads
 * from the kernel itself): the in-memory key, and the program the compiler process rebuilds. */
void ptx_jit_key_program(ptx_jit_buf *b, const ptx_kernel *k);
/* The disk key's head before the program: generator version and the plugin's target_id. Its length, or -1. */
int ptx_jit_key_head(char *out, size_t n, const char *target_id);
/* The kernel ptx_jit_key_program wrote (only what the translator reads is set), or NULL when the bytes
 * are not such a program; freed by ptx_jit_key_kernel_free. */
ptx_kernel *ptx_jit_key_kernel(const void *p, size_t n);
void ptx_jit_key_kernel_free(ptx_kernel *k);

/* ---- the compiler process (ptx_jitc.c, build/emu/tf-emu-jitc next to the LLVM plugin) ----
 * libcuda.so.1's compile thread starts one per process at its first compile, with a socket as its stdin
 * and stdout (stderr: /dev/null; no other descriptor; no environment but the test knob), and sends it one
 * request after another, each answered in turn; at exit kernels still queued go to a second one whose
 * stdin is a memory file of requests. For each request it builds the disk key (ptx_jit_key_head of its
 * own LLVM + the program), answers from the disk cache on a hit, else compiles, stores the object there
 * (when a directory is given) and only then answers: a parent that exited meanwhile still leaves the
 * entry behind. It exits at the end of its stdin.
 *   request = "TFJITQ01" | u32 namelen | u32 dirlen | u64 proglen | name | dir | program (ptx_jit_key_program)
 *   answer  = "TFJITA01" | u32 status (PTX_JITC_*) | u64 len | object, or the reason it was not compiled
 * TF_EMU_JIT_COMPILE_GATE=FILE (tests only): each compile waits until FILE exists (at most 10 minutes),
 * so a test can end a program while its compile is under way. */
#define PTX_JITC_FILE "tf-emu-jitc"
/* argv[1] "--background" (launches do not wait for it: TF_EMU_JIT_SYNC unset, or the exit hand-off):
 * the process runs at this nice value */
#define PTX_JITC_NICE 10
#define PTX_JITC_REQ "TFJITQ01"
#define PTX_JITC_ANS "TFJITA01"
enum { PTX_JITC_COMPILED = 0, PTX_JITC_REFUSED = 1, PTX_JITC_FROM_DISK = 2 };

/* ---- the disk cache (ptx_jit_cache.c) ---- */
/* The cache directory: $TF_EMU_JIT_CACHE, else $XDG_CACHE_HOME/tensorfusion/jit, else
 * $HOME/.cache/tensorfusion/jit; TF_EMU_JIT_CACHE=off (or 0) disables it. NULL when disabled/unknown. */
const char *ptx_jit_cache_dir(void);
/* The entry for key (the exact bytes compiled code depends on): its object bytes (malloc'ed) or NULL
 * when absent, unreadable, foreign (another key, another format) or corrupt (checksum). */
void *ptx_jit_cache_read(const char *dir, const void *key, size_t keylen, size_t *objlen);
/* Stores obj under key: a temporary file renamed into place (readers see a whole entry or none); 0 or -1. */
int ptx_jit_cache_write(const char *dir, const void *key, size_t keylen, const void *obj, size_t objlen);

/* From ptx_exec.c: one atomic read-modify-write as the interpreter does it (returns the old value). */
uint64_t ptx_atom_do(uint8_t *p, int es, int op, int t, uint64_t b, uint64_t c);
/* From ptx_exec.c: one lane of an instruction ptx_alu_lane_covers accepts, as the interpreter computes
 * it (d; *d2: setp's second destination). */
uint64_t ptx_alu_lane(const ptx_ins *in, uint64_t a, uint64_t b, uint64_t c, uint64_t e, uint64_t *d2);

/* Whether ptx_alu_lane computes in: a per-lane operation with no state but its operands (a, b, c, e) and
 * one or two destinations (d, setp's d2). Both halves read it: ptx_jit_ir.c translates such an instruction
 * it does not generate inline into a call of ptx_jit_alu (which runs ptx_alu_lane on each executing lane). */
static inline int ptx_alu_lane_covers(const ptx_ins *in) {
    const int t = in->t;
    const int flt = t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16 || t == T_F16X2 || t == T_BF16X2;
    if (in->wsync) return 0;
    switch (in->op) {
    case OP_ADD: case OP_SUB:
        return flt || ((in->flags & IF_SAT) && t == T_S32 && !(in->flags & (IF_CC | IF_USE_CC)));
    case OP_MUL_LO: case OP_FMA: case OP_DIV: case OP_MIN: case OP_MAX: case OP_ABS: case OP_NEG:
        return flt;
    case OP_MAD_HI: return !(in->flags & (IF_CC | IF_USE_CC));
    case OP_RCP: case OP_SQRT: case OP_RSQRT: case OP_SIN: case OP_COS: case OP_EX2: case OP_LG2: case OP_TANH:
    case OP_BFIND: case OP_BFE: case OP_BFI: case OP_PRMT: case OP_TESTP: case OP_COPYSIGN:
    case OP_MUL24_LO: case OP_MAD24_LO: case OP_SAD: case OP_DP4A: case OP_DP2A:
    case OP_SET: case OP_SLCT: case OP_CVT: case OP_CVT_PACK: case OP_SETP:
        return 1;
    default:
        return 0;
    }
}

#endif
