/* tf_limiter_hostmap.h - the limiter's exported charge for host memory a GPU worker process maps and
 * registers for its remote client (tfMemAllocAt / tfMemAllocAtFd: managed memory, and pinned host memory
 * made through the stub; the staging buffers of graph copies of client host memory,
 * tfworker/executor/exec_graph_host.c). That memory lives on the GPU host, pinned by the worker for the client, so it
 * counts against the allocation's VRAM cap like device memory, in the limiter's one ledger. Implemented
 * in limiter_c/hooks_mem.c (exported by libtflimiter.so, LD_PRELOADed into the GPU worker process);
 * looked up by tfworker/executor/executor.c with dlsym(RTLD_DEFAULT, ...): without a limiter loaded
 * nothing is charged, as for the executor's device allocations. */
#ifndef TF_LIMITER_HOSTMAP_H
#define TF_LIMITER_HOSTMAP_H
#include <stddef.h>
#include <cuda.h>

/* Charges `bytes` for the mapping at `addr` BEFORE it is made: CUDA_ERROR_OUT_OF_MEMORY over the cap. */
#define TF_LIMITER_CHARGE_HOSTMAP "tfLimiterChargeHostMap"
typedef CUresult (*tf_limiter_charge_hostmap_fn)(unsigned long long addr, size_t bytes);
/* Refunds what was charged for `addr` (the mapping is gone, or was never made); unknown: nothing. */
#define TF_LIMITER_REFUND_HOSTMAP "tfLimiterRefundHostMap"
typedef void (*tf_limiter_refund_hostmap_fn)(unsigned long long addr);

#endif
