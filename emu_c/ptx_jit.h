/* ptx_jit.h - the contract between the PTX executor (ptx_exec.c) and the PTX JIT (ptx_jit.c: engine
 * choice, compile cache, LLVM ORC, block runner and runtime helpers; ptx_jit_ir.c: decoded PTX ->
 * LLVM IR). ptx_exec.c keeps launches, the worker pool and blocks; for a kernel the JIT compiled it
 * hands each block to ptx_jit_run_block instead of its interpreter loop.
 *
 * Generated code reads the block's state from ptx_jit_blk.f[] (64-bit words, JF_* indices) and calls
 * the runtime helpers below (by address) for slow memory paths, atomics and dynamic special registers.
 * A generated kernel function is
 *     int32_t fn(ptx_jit_blk *J, uint64_t *R, int32_t *pcs, int32_t warp, int32_t mode)
 * running warp `warp` of the block: R is that warp's register save area (slot s, lane l at
 * R[s*32+l]), pcs its 32 lane PCs (PTX instruction index; PTX_JIT_PC_EXITED for lanes that exited or
 * do not exist; | PTX_JIT_PC_ATBAR for lanes waiting at bar.sync). mode: 0 = start, 1 = resume
 * after a barrier, 2 = resume after a yield. Returns 0 (every lane exited), 1 (every remaining lane
 * waits at a barrier), 2 (yielded at a backward branch so other warps can run), -1 (fault, reported).
 */
#ifndef TF_EMU_PTX_JIT_H
#define TF_EMU_PTX_JIT_H

#include <stdint.h>
#include "ptx_internal.h"

#define PTX_JIT_PC_EXITED 0x7fffffff
#define PTX_JIT_PC_ATBAR  0x40000000
#define PTX_JIT_YIELD_BACK_BRANCHES 4096

/* Words of ptx_jit_blk.f the generated code reads (and JF_ICOUNT, which it adds to). */
enum {
    JF_SMEM, JF_SMEM_SIZE,
    JF_GC0_LO, JF_GC0_HI, JF_GC1_LO, JF_GC1_HI, JF_GC2_LO, JF_GC2_HI, JF_GC3_LO, JF_GC3_HI,
    JF_ICOUNT,
    JF_NTID_X, JF_NTID_Y, JF_NTID_Z, JF_CTAID_X, JF_CTAID_Y, JF_CTAID_Z,
    JF_NCTAID_X, JF_NCTAID_Y, JF_NCTAID_Z, JF_NWARPS, JF_SMID, JF_NSMID,
    JF_ENVREG1, JF_ENVREG2, JF_DYN_SMEM, JF_TOTAL_SMEM,
    JF_COUNT
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
    /* the runner's own (allocated on first use, freed by ptx_jit_blk_free) */
    int32_t *pcs;
    int8_t *state;
    unsigned cur_warp;  /* the warp running now (for the helpers' thread indices) */
} ptx_jit_blk;

/* The compiled kernel for k, compiling it at its first launch; NULL when the engine is the
 * interpreter (TF_EMU_ENGINE=interp, the default), LLVM is missing, or k uses something the JIT does
 * not translate (then the interpreter runs it; TF_EMU_TRACE=1 logs why, once per kernel). */
const ptx_jit_fn *ptx_jit_get(const ptx_kernel *k, const ptx_launch_cfg *cfg);
/* Runs one block (J->bid set, J->f filled by ptx_jit_blk_setup); 0 or -1 (reported through J->fail). */
int ptx_jit_run_block(const ptx_jit_fn *fn, ptx_jit_blk *J);
void ptx_jit_blk_setup(ptx_jit_blk *J, uint8_t *smem, uint64_t smem_size, int worker, uint64_t coop_ws);
void ptx_jit_blk_free(ptx_jit_blk *J);
/* Milliseconds the JIT took to compile k (IR, optimisation, machine code); -1 if it did not. */
double ptx_jit_compile_ms(const ptx_kernel *k);

/* Runtime helpers generated code calls (ptx_jit.c). addr/vals/b/c/out: 32 lanes each (vals: vec*32). */
/* Host address of each executing lane's access (any state space) into ptrs, or -1 with the fault reported. */
int ptx_jit_xlate(ptx_jit_blk *J, int32_t insidx, const uint64_t *addr, uint32_t mask, uint64_t *ptrs);
int ptx_jit_atom(ptx_jit_blk *J, int32_t insidx, const uint64_t *addr, const uint64_t *b, const uint64_t *c,
                 uint32_t mask, uint64_t *out);
uint64_t ptx_jit_sreg(ptx_jit_blk *J, int32_t sr);

/* Translator (ptx_jit_ir.c). Returns NULL and a reason in why when k uses something it does not
 * translate; otherwise an LLVMModuleRef (as void *) in context cx holding function `name`. */
void *ptx_jit_build_ir(const ptx_kernel *k, void *cx, const char *name, char *why, size_t whylen);

/* From ptx_exec.c: one atomic read-modify-write as the interpreter does it (returns the old value). */
uint64_t ptx_atom_do(uint8_t *p, int es, int op, int t, uint64_t b, uint64_t c);

#endif
