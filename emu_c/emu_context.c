/* emu_context.c - contexts of the emulated devices: each device's primary context (retain/release/reset/
 * state/flags), explicit contexts (cuCtxCreate v2/v3/v4, destroy), the per-thread current-context stack
 * (push/pop/set/get), limits, cache config, the sticky launch error that every call in a context returns
 * once a kernel faulted (as on a GPU, until the context is destroyed or reset), and peer access between
 * the contexts of distinct devices (TF_EMU_DEVICES > 1: recorded here, enforced on kernels' accesses by
 * emu_env_check in emu_memory.c).
 */
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h" /* first: it selects cuda.h's internal (all-versions) view */
#include "cudart_export_tables.h"

#define EMU_CTX_STACK 64
static __thread emu_ctx *t_stack[EMU_CTX_STACK];
static __thread int t_depth;

static void ctx_defaults(emu_ctx *c)
{
    c->sticky = CUDA_SUCCESS;
    memset(c->limits, 0, sizeof(c->limits));
    c->limits[CU_LIMIT_STACK_SIZE] = 1024;
    c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20;
    c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
    c->limits[CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2;
    c->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
    c->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64;
    c->cache_config = CU_FUNC_CACHE_PREFER_NONE;
}

void emu_primary_reset_state(int dev)
{
    ctx_defaults(&g_emu.primary[dev]);
    g_emu.primary[dev].flags = g_emu.primary_flags[dev];
    g_emu.primary[dev].peers = 0; /* peer access goes with the context (CUDA: until it is destroyed) */
}

emu_ctx *emu_ctx_current(void)
{
    emu_jit_exit_fence();
    return t_depth > 0 ? t_stack[t_depth - 1] : NULL;
}

int emu_cur_dev(void)
{
    emu_ctx *c = emu_ctx_current();
    return c ? c->dev : 0;
}

static int ctx_live(const emu_ctx *c)
{
    if (!c || !emu_handle_is(c, EMU_K_CTX))
        return 0;
    return !c->is_primary || g_emu.primary_refs[c->dev] > 0;
}

/* The error of a call whose current context c is not live: a created context destroyed while current to
 * this thread through another one is CUDA_ERROR_CONTEXT_IS_DESTROYED (cuCtxDestroy: "attempting to access
 * ctx from those threads"); none, or an inactive primary context, CUDA_ERROR_INVALID_CONTEXT. */
static CUresult current_ctx_error(const emu_ctx *c)
{
    const uintptr_t a = (uintptr_t)c, first = (uintptr_t)&g_emu.primary[0];
    const int primary = a >= first && a < first + sizeof(g_emu.primary);
    return c && !primary ? CUDA_ERROR_CONTEXT_IS_DESTROYED : CUDA_ERROR_INVALID_CONTEXT;
}

CUresult emu_enter(emu_ctx **out)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    emu_ctx *c = emu_ctx_current();
    if (!ctx_live(c))
        return current_ctx_error(c);
    if (c->sticky)
        return c->sticky;
    *out = c;
    return CUDA_SUCCESS;
}

int emu_is_sticky_error(CUresult rc)
{
    switch (rc) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
        return 1;
    default:
        return 0;
    }
}

void emu_ctx_bind_thread(emu_ctx *c)
{
    t_stack[0] = c;
    t_depth = c ? 1 : 0;
}

void emu_ctx_set_sticky(emu_ctx *c, CUresult err)
{
    emu_lock();
    if (c && c->sticky == CUDA_SUCCESS)
        c->sticky = err;
    emu_unlock();
}

/* ---- primary context ---- */
EMU_API CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if ((rc = emu_check_device(dev)) != CUDA_SUCCESS)
        return rc;
    emu_lock();
    if (g_emu.primary_refs[dev]++ == 0)
        emu_primary_reset_state(dev);
    emu_unlock();
    *pctx = (CUcontext)&g_emu.primary[dev];
    return CUDA_SUCCESS;
}

/* The primary context dies: at its last release (CUDA: "automatically reset once the last reference to it is
 * released") and at a reset. Its queued work runs (faulted work is skipped, running kernels finish), cudart
 * tears its per-context state (context-local storage) down while the context lives, every allocation made
 * in it is freed, its state returns to the defaults, other devices' primary contexts lose their access to it.
 * A reset also clears the flags and leaves its retains to be released (they succeed: primary_reset_refs). */
static void primary_destroy(int dev, int is_reset)
{
    emu_ctx *pc = &g_emu.primary[dev];
    (void)emu_sq_sync_ctx(pc);
    emu_printf_flush();
    tf_export_tables_ctx_destroyed((CUcontext)pc);
    emu_lock();
    emu_mem_release_owner(pc);
    if (is_reset) {
        g_emu.primary_reset_refs[dev] += g_emu.primary_refs[dev];
        g_emu.primary_flags[dev] = 0;
    }
    g_emu.primary_refs[dev] = 0;
    emu_primary_reset_state(dev);
    for (int i = 0; i < g_emu.ndev; i++)
        g_emu.primary[i].peers &= ~(1u << dev);
    emu_unlock();
}

EMU_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    emu_lock();
    if (g_emu.primary_refs[dev] <= 0) {
        /* never retained: CUDA_ERROR_INVALID_CONTEXT; retained before a reset: "safe ... even after resetting" */
        rc = g_emu.primary_reset_refs[dev] > 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
        if (rc == CUDA_SUCCESS)
            g_emu.primary_reset_refs[dev]--;
        emu_unlock();
        return rc;
    }
    int last = g_emu.primary_refs[dev] == 1;
    if (!last)
        g_emu.primary_refs[dev]--;
    emu_unlock();
    if (last)
        primary_destroy(dev, 0);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }

EMU_API CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (flags & ~(unsigned)(CU_CTX_SCHED_MASK | CU_CTX_LMEM_RESIZE_TO_MAX | CU_CTX_MAP_HOST | CU_CTX_SYNC_MEMOPS))
        return CUDA_ERROR_INVALID_VALUE;
    emu_lock();
    g_emu.primary_flags[dev] = flags;
    g_emu.primary[dev].flags = flags;
    emu_unlock();
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    return cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}

EMU_API CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!flags || !active)
        return CUDA_ERROR_INVALID_VALUE;
    emu_lock();
    *flags = g_emu.primary_flags[dev];
    *active = g_emu.primary_refs[dev] > 0;
    emu_unlock();
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    primary_destroy(dev, 1);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return cuDevicePrimaryCtxReset_v2(dev); }

/* ---- explicit contexts ---- */
static CUresult ctx_create(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if ((rc = emu_check_device(dev)) != CUDA_SUCCESS)
        return rc;
    if (t_depth >= EMU_CTX_STACK)
        return CUDA_ERROR_OUT_OF_MEMORY;
    emu_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ctx_defaults(c);
    c->flags = flags;
    c->dev = dev;
    c->id = atomic_fetch_add(&g_emu.next_id, 1);
    if (emu_handle_add(c, EMU_K_CTX)) {
        free(c);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    t_stack[t_depth++] = c;
    *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

EMU_API CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
                                unsigned int flags, CUdevice dev)
{
    if (numParams < 0 || (numParams > 0 && !paramsArray))
        return CUDA_ERROR_INVALID_VALUE;
    return ctx_create(pctx, flags, dev); /* exec affinity (SM partitioning) is not emulated */
}

EMU_API CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags,
                                CUdevice dev)
{
    (void)ctxCreateParams;
    return ctx_create(pctx, flags, dev);
}

EMU_API CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    emu_ctx *c = (emu_ctx *)ctx;
    if (!c || !emu_handle_is(c, EMU_K_CTX) || c->is_primary)
        return CUDA_ERROR_INVALID_CONTEXT;
    emu_sq_ctx_destroyed(c); /* its queued work runs (or is skipped) before anything is freed */
    emu_printf_flush();
    tf_export_tables_ctx_destroyed(ctx);
    emu_mem_release_owner(c);
    emu_handle_del(c);
    /* drop it from this thread's stack (other threads find it gone through the registry) */
    int j = 0;
    for (int i = 0; i < t_depth; i++)
        if (t_stack[i] != c)
            t_stack[j++] = t_stack[i];
    t_depth = j;
    free(c);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!ctx_live((emu_ctx *)ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (t_depth >= EMU_CTX_STACK)
        return CUDA_ERROR_OUT_OF_MEMORY;
    t_stack[t_depth++] = (emu_ctx *)ctx;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (t_depth == 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    emu_ctx *c = t_stack[--t_depth];
    if (pctx)
        *pctx = (CUcontext)c;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxSetCurrent(CUcontext ctx)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!ctx) {
        if (t_depth > 0)
            t_depth--;
        return CUDA_SUCCESS;
    }
    if (!emu_handle_is(ctx, EMU_K_CTX))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (t_depth == 0)
        t_depth = 1;
    t_stack[t_depth - 1] = (emu_ctx *)ctx;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)emu_ctx_current();
    return CUDA_SUCCESS;
}

/* Context named by a _v2 "ctx" argument: NULL = current. Sticky errors are reported. */
static CUresult ctx_arg(CUcontext ctx, emu_ctx **out)
{
    if (!ctx)
        return emu_enter(out);
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!ctx_live((emu_ctx *)ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    *out = (emu_ctx *)ctx;
    return (*out)->sticky;
}

/* The same for metadata queries (API version, device, id, flags): these still answer in a faulted
 * context - cudaDeviceReset asks them before it resets, and must be able to recover from a fault. */
static CUresult ctx_query(CUcontext ctx, emu_ctx **out)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    emu_ctx *c = ctx ? (emu_ctx *)ctx : emu_ctx_current();
    if (!ctx_live(c))
        return ctx ? CUDA_ERROR_INVALID_CONTEXT : current_ctx_error(c);
    *out = c;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxGetFlags(unsigned int *flags)
{
    emu_ctx *c;
    CUresult rc = ctx_query(NULL, &c);
    if (rc)
        return rc;
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    *flags = c->flags;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxSetFlags(unsigned int flags)
{
    EMU_ENTER(c);
    c->flags = flags;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    emu_ctx *c;
    CUresult rc = ctx_query(ctx, &c);
    if (rc)
        return rc;
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    *version = 3020; /* the context API version every CUDA >= 3.2 context reports */
    return CUDA_SUCCESS;
}

/* ctx NULL: the current context */
static CUresult ctx_device(CUcontext ctx, CUdevice *device)
{
    emu_ctx *c;
    CUresult rc = ctx_query(ctx, &c);
    if (rc)
        return rc;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    *device = c->dev;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxGetDevice(CUdevice *device) { return ctx_device(NULL, device); }

EMU_API CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx) { return ctx_device(ctx, device); }

EMU_API CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId)
{
    emu_ctx *c;
    CUresult rc = ctx_query(ctx, &c);
    if (rc)
        return rc;
    if (!ctxId)
        return CUDA_ERROR_INVALID_VALUE;
    *ctxId = c->id;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit)
{
    EMU_ENTER(c);
    if (!pvalue || (int)limit < 0 || limit >= CU_LIMIT_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    *pvalue = c->limits[limit];
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
    EMU_ENTER(c);
    if ((int)limit < 0 || limit >= CU_LIMIT_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    c->limits[limit] = value;
    if (limit == CU_LIMIT_MALLOC_HEAP_SIZE)
        atomic_store(&g_emu.heap_limit[c->dev], value); /* what a kernel's malloc() may take (emu_env_heap_alloc) */
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxGetCacheConfig(CUfunc_cache *pconfig)
{
    EMU_ENTER(c);
    if (!pconfig)
        return CUDA_ERROR_INVALID_VALUE;
    *pconfig = c->cache_config;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxSetCacheConfig(CUfunc_cache config)
{
    EMU_ENTER(c);
    if ((int)config < 0 || config > CU_FUNC_CACHE_PREFER_EQUAL)
        return CUDA_ERROR_INVALID_VALUE;
    c->cache_config = config;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxGetSharedMemConfig(CUsharedconfig *pConfig)
{
    EMU_ENTER(c);
    (void)c;
    if (!pConfig)
        return CUDA_ERROR_INVALID_VALUE;
    *pConfig = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxSetSharedMemConfig(CUsharedconfig config)
{
    EMU_ENTER(c);
    (void)c;
    return (int)config < 0 || config > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE ? CUDA_ERROR_INVALID_VALUE
                                                                                  : CUDA_SUCCESS;
}

EMU_API CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    EMU_ENTER(c);
    (void)c;
    if (leastPriority)
        *leastPriority = 0;
    if (greatestPriority)
        *greatestPriority = -5;
    return CUDA_SUCCESS;
}

/* Waits for the work of every stream of the context, flushes device printf, and reports the sticky
 * error (or a latched error of an asynchronous operation). */
EMU_API CUresult cuCtxSynchronize(void)
{
    emu_ctx *c = emu_ctx_current();
    CUresult err = CUDA_SUCCESS;
    if (c && emu_check_init() == CUDA_SUCCESS && ctx_live(c)) {
        if (!c->sticky) {
            CUresult rc = emu_capture_unsafe_call(); /* prohibited during a capture, per capture mode */
            if (rc)
                return rc;
        }
        err = emu_sq_sync_ctx(c);
    }
    emu_printf_flush();
    EMU_ENTER(after);
    (void)after;
    return err;
}

EMU_API CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
    emu_ctx *c = ctx ? (emu_ctx *)ctx : emu_ctx_current();
    CUresult err = CUDA_SUCCESS;
    if (c && emu_check_init() == CUDA_SUCCESS && ctx_live(c))
        err = emu_sq_sync_ctx(c);
    emu_printf_flush();
    CUresult rc = ctx_arg(ctx, &c);
    return rc ? rc : err;
}

EMU_API CUresult cuCtxResetPersistingL2Cache(void)
{
    EMU_ENTER(c);
    (void)c;
    return CUDA_SUCCESS;
}

/* Peer access (CUDA: cuCtxEnablePeerAccess, "Peer Context Memory Access"): the current context may access
 * the memory of peerContext's device once enabled. Between two contexts of one device it is
 * CUDA_ERROR_INVALID_DEVICE (cuDeviceCanAccessPeer(d, d) is 0), as it is with a single device. Enabled
 * access is recorded per (context, peer device): without it the context's kernels fault on the peer's
 * device memory (emu_env_check). */
EMU_API CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags)
{
    EMU_ENTER(c);
    emu_ctx *p = (emu_ctx *)peerContext;
    if (!ctx_live(p))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (Flags)
        return CUDA_ERROR_INVALID_VALUE;
    if (p->dev == c->dev)
        return CUDA_ERROR_INVALID_DEVICE;
    emu_lock();
    int already = (c->peers >> p->dev) & 1u;
    c->peers |= 1u << p->dev;
    emu_unlock();
    return already ? CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED : CUDA_SUCCESS;
}

EMU_API CUresult cuCtxDisablePeerAccess(CUcontext peerContext)
{
    EMU_ENTER(c);
    emu_ctx *p = (emu_ctx *)peerContext;
    if (!ctx_live(p))
        return CUDA_ERROR_INVALID_CONTEXT;
    emu_lock();
    int enabled = p->dev != c->dev && ((c->peers >> p->dev) & 1u);
    c->peers &= ~(1u << p->dev);
    emu_unlock();
    return enabled ? CUDA_SUCCESS : CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
}
