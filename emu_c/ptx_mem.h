/* ptx_mem.h - the one address resolver of both PTX engines: the interpreter (ptx_exec.c, per lane of
 * every memory instruction) and the JIT's runtime helpers (ptx_jit.c, the accesses generated code does
 * not check inline). A kernel address in a state space, or a generic address in one of the windows
 * (ptx_internal.h: shared, local, param), becomes a host pointer, or NULL when it is outside what that
 * space holds. Each engine's block keeps a ptx_memview of its memory; static inline because the
 * interpreter calls it per lane.
 */
#ifndef TF_EMU_PTX_MEM_H
#define TF_EMU_PTX_MEM_H

#include <stdint.h>
#include <string.h>

#include "ptx_internal.h"

typedef struct ptx_memview {
    uint64_t *gc;            /* 8 words: [lo, hi) of the 4 global allocations learned last, newest first
                              * (the JIT's generated code reads the same words: ptx_jit_blk.f[JF_GC0_LO..]) */
    uint8_t *smem;
    uint64_t smem_size;
    uint8_t *lmem;           /* local memory: lsize bytes per thread */
    uint64_t lsize;
    const ptx_launch_cfg *cfg;
    const ptx_env *env;
} ptx_memview;

/* Cache miss: validate the access, then learn the whole allocation around it (the contract only
 * offers a yes/no check, so grow [lo, hi) exponentially and refine by bisection: ~2 log2(size)
 * calls once per allocation per block runner instead of one call per lane access). */
static __attribute__((noinline, unused)) uint8_t *ptx_mem_gslow(const ptx_memview *v, uint64_t a, uint64_t n) {
    if (a >= PTX_SHARED_BASE || n == 0 || a + n < a) return NULL;
    const ptx_env *env = v->env;
    if (!env->check_global || !env->check_global(env->ctx, a, n)) return NULL;
    uint64_t lo = a, hi = a + n, step = 64;
    while (hi + step < PTX_SHARED_BASE && env->check_global(env->ctx, lo, hi + step - lo)) { hi += step; step <<= 1; }
    while (step > 1) { step >>= 1; if (hi + step < PTX_SHARED_BASE && env->check_global(env->ctx, lo, hi + step - lo)) hi += step; }
    step = 64;
    while (lo >= step && env->check_global(env->ctx, lo - step, hi - (lo - step))) { lo -= step; step <<= 1; }
    while (step > 1) { step >>= 1; if (lo >= step && env->check_global(env->ctx, lo - step, hi - (lo - step))) lo -= step; }
    memmove(&v->gc[2], &v->gc[0], 6 * sizeof(uint64_t));
    v->gc[0] = lo;
    v->gc[1] = hi;
    return (uint8_t *)(uintptr_t)a;
}

static inline uint8_t *ptx_mem_global(const ptx_memview *v, uint64_t a, uint64_t n) {
    for (int i = 0; i < 4; i++)
        if (a >= v->gc[2 * i] && a + n <= v->gc[2 * i + 1] && a + n >= a) return (uint8_t *)(uintptr_t)a;
    return ptx_mem_gslow(v, a, n);
}

static inline uint8_t *ptx_mem_shared(const ptx_memview *v, uint64_t a, uint64_t n) {
    return (a <= v->smem_size && n <= v->smem_size - a) ? v->smem + a : NULL;
}
static inline uint8_t *ptx_mem_local(const ptx_memview *v, unsigned tid, uint64_t a, uint64_t n) {
    return (a <= v->lsize && n <= v->lsize - a) ? v->lmem + (size_t)tid * v->lsize + a : NULL;
}
static inline uint8_t *ptx_mem_kparam(const ptx_memview *v, uint64_t a, uint64_t n) {
    return (a <= v->cfg->param_buffer_size && n <= v->cfg->param_buffer_size - a)
               ? (uint8_t *)(uintptr_t)v->cfg->param_buffer + a : NULL;
}

/* Host address of n bytes at a in space (SP_*; SP_GENERIC: by window) for thread tid, or NULL. Not
 * recursive, so it inlines into the interpreter's load/store loops. */
static inline uint8_t *ptx_mem_resolve(const ptx_memview *v, unsigned tid, int space, uint64_t a, uint64_t n) {
    switch (space) {
    case SP_GLOBAL:
    case SP_CONST:
        return ptx_mem_global(v, a, n);
    case SP_SHARED:
        return ptx_mem_shared(v, a, n);
    case SP_LOCAL:
        return ptx_mem_local(v, tid, a, n);
    case SP_KPARAM:
        return ptx_mem_kparam(v, a, n);
    default:
        if (a < PTX_SHARED_BASE) return ptx_mem_global(v, a, n);
        if (a < PTX_SHARED_BASE + PTX_WIN_SIZE) return ptx_mem_shared(v, a - PTX_SHARED_BASE, n);
        if (a >= PTX_LOCAL_BASE && a < PTX_LOCAL_BASE + PTX_WIN_SIZE) return ptx_mem_local(v, tid, a - PTX_LOCAL_BASE, n);
        if (a >= PTX_PARAM_BASE && a < PTX_PARAM_BASE + PTX_WIN_SIZE) return ptx_mem_kparam(v, a - PTX_PARAM_BASE, n);
        return NULL;
    }
}

#endif
