/* ptx_mma.h - the warp matrix instructions of the PTX interpreter (ptx_mma.c): wmma.load / wmma.store /
 * wmma.mma, mma.sync and ldmatrix, each run for the whole warp at once, and cp.async (the copies that stage
 * their tiles). run_warp (ptx_exec.c) calls these at its OP_WMMA_LOAD, OP_WMMA_STORE, OP_WMMA_MMA, OP_MMA,
 * OP_LDMATRIX and OP_CP_ASYNC cases and reports a fault itself; nothing else here touches the interpreter's
 * block or warp state.
 *
 * Registers are the interpreter's: slot s of lane l is R[s * 32 + l]. lists is the kernel's register-list
 * array (ptx_kernel.lists) that the instruction's fragment operands index (encoding: compile_wmma and
 * compile_mma in ptx_parse.c).
 */
#ifndef TF_EMU_PTX_MMA_H
#define TF_EMU_PTX_MMA_H

#include <stdint.h>

#include "ptx_internal.h"
#include "ptx_mem.h"

/* A failed access: the lane (0-31) whose access failed first in lane/element order, its address and
 * size in bytes, and whether the address was mapped (so the fault is a misalignment) or not. */
typedef struct ptx_mma_fault {
    unsigned lane;
    uint64_t addr, bytes;
    int misaligned;
} ptx_mma_fault;

/* wmma.load / wmma.store for the lanes in em (tid0: the warp's first thread index, for local memory).
 * 0, or -1 with *f set (nothing past the failing element was transferred). */
int ptx_mma_wmma_ldst(const ptx_ins *in, const int32_t *lists, uint64_t *R, const ptx_memview *mv, unsigned tid0,
                      uint32_t em, ptx_mma_fault *f);

/* wmma.mma: D = A x B + C over the warp's fragments; D is written for the lanes in em. */
void ptx_mma_wmma_mma(const ptx_ins *in, const int32_t *lists, uint64_t *R, uint32_t em);

/* mma.sync.aligned.m16n8k{8,16}.row.col (f16/bf16 inputs): the same, in the ISA's fragment layouts. */
void ptx_mma_mma(const ptx_ins *in, const int32_t *lists, uint64_t *R, uint32_t em);

/* ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].b16 for the lanes in em. 0, or -1 with *f set. */
int ptx_mma_ldmatrix(const ptx_ins *in, const int32_t *lists, uint64_t *R, const ptx_memview *mv, unsigned tid0,
                     uint32_t em, ptx_mma_fault *f);

/* cp.async.{ca,cg}.shared.global for the lanes in em: each lane's copy completes at once (the copies a
 * later cp.async.wait_group / wait_all waits for are already done). dst, src: the 32 lanes' shared and
 * global address registers (before the instruction's offsets), srcsize the source-size register's or NULL;
 * both engines pass their own register vectors. 0, or -1 with *f set (the lanes before the failing one in
 * lane order have copied). */
int ptx_mma_cp_async(const ptx_ins *in, const uint64_t *dst, const uint64_t *src, const uint64_t *srcsize,
                     const ptx_memview *mv, uint32_t em, ptx_mma_fault *f);

#endif
