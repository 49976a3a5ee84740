/* api_context.c - the client stub's hand-written entry points for primary and created contexts, the per-thread
 * current-context stack.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"
#include "cudart_export_tables.h"

/* ------------------------------------------------------------------------------ contexts */
/* Contexts the worker handed out, so a bogus cuCtxSetCurrent fails at once, as the driver's does. */
/* With each its device, so that calls answered per device (pointer ordinals, a launch into a stream of
 * another device) answer for the current context's device. */
static pthread_mutex_t g_ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static CUcontext g_known_ctx[64];
static int g_known_dev[64];
static int g_nknown;

static void ctx_remember(CUcontext c, CUdevice dev)
{
    pthread_mutex_lock(&g_ctx_mu);
    int have = 0;
    for (int i = 0; i < g_nknown; i++) have |= g_known_ctx[i] == c;
    if (!have && g_nknown < 64) {
        g_known_ctx[g_nknown] = c;
        g_known_dev[g_nknown++] = dev;
    }
    pthread_mutex_unlock(&g_ctx_mu);
}

static void ctx_drop(CUcontext c)
{
    pthread_mutex_lock(&g_ctx_mu);
    for (int i = 0; i < g_nknown; i++) {
        if (g_known_ctx[i] == c) {
            g_nknown--;
            g_known_ctx[i] = g_known_ctx[g_nknown];
            g_known_dev[i--] = g_known_dev[g_nknown];
        }
    }
    pthread_mutex_unlock(&g_ctx_mu);
}

int tf_ctx_device(CUcontext c)
{
    pthread_mutex_lock(&g_ctx_mu);
    int dev = -1;
    for (int i = 0; c && i < g_nknown; i++)
        if (g_known_ctx[i] == c) dev = g_known_dev[i];
    pthread_mutex_unlock(&g_ctx_mu);
    return dev;
}

int tf_ctx_known(CUcontext c)
{
    pthread_mutex_lock(&g_ctx_mu);
    int have = 0;
    for (int i = 0; i < g_nknown; i++) have |= g_known_ctx[i] == c;
    pthread_mutex_unlock(&g_ctx_mu);
    return have;
}

/* Primary contexts as the driver counts them: cudart keeps per-context state in the export tables'
 * context-local storage, which must be torn down when a primary context dies (last release, reset). */
static CUcontext g_primary[TF_MAX_DEVICES];
static int g_primary_refs[TF_MAX_DEVICES];

CUresult tfs_cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    CUresult rc = rpc_cuDevicePrimaryCtxRetain(pctx, dev);
    if (rc == CUDA_SUCCESS && pctx) {
        ctx_remember(*pctx, dev);
        pthread_mutex_lock(&g_ctx_mu);
        if (dev >= 0 && dev < TF_MAX_DEVICES) {
            g_primary[dev] = *pctx;
            g_primary_refs[dev]++;
        }
        pthread_mutex_unlock(&g_ctx_mu);
    }
    return rc;
}

/* Device dev's primary context `prim` (NULL: never retained here) ends by `end`, its reset or its last release
 * (CUDA: the context is reset once its last reference is released): cudart tears its per-context state down
 * while the context lives; the managed regions made in it leave the list around the call and are forgotten
 * when it succeeds, its pinned blocks are no longer mapped by the worker (which drops its side, executor.c),
 * and the calling thread's streams of it and the owners recorded for its streams and events are forgotten. */
static CUresult primary_end(CUdevice dev, CUcontext prim, CUresult (*end)(CUdevice))
{
    if (prim) tf_export_tables_ctx_destroyed(prim);
    tf_memory_ctx_ending(prim);
    CUresult rc = end(dev);
    tf_memory_ctx_ended(prim, rc == CUDA_SUCCESS);
    if (rc != CUDA_SUCCESS) return rc;
    if (prim) {
        pthread_mutex_lock(&g_ctx_mu);
        g_primary_refs[dev] = 0;
        pthread_mutex_unlock(&g_ctx_mu);
        tf_thread_streams_forget(prim);
    }
    tf_owners_ctx_gone(prim);
    tf_ctx_remote_unknown();
    return rc;
}

static CUcontext primary_of(CUdevice dev, int only_last_ref)
{
    if (dev < 0 || dev >= TF_MAX_DEVICES) return NULL;
    pthread_mutex_lock(&g_ctx_mu);
    CUcontext prim = only_last_ref && g_primary_refs[dev] != 1 ? NULL : g_primary[dev];
    pthread_mutex_unlock(&g_ctx_mu);
    return prim;
}

CUresult tfs_cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    CUcontext last = primary_of(dev, 1);
    if (last) return primary_end(dev, last, rpc_cuDevicePrimaryCtxRelease_v2);
    CUresult rc = rpc_cuDevicePrimaryCtxRelease_v2(dev);
    if (rc == CUDA_SUCCESS && dev >= 0 && dev < TF_MAX_DEVICES) {
        pthread_mutex_lock(&g_ctx_mu);
        if (g_primary_refs[dev] > 0) g_primary_refs[dev]--;
        pthread_mutex_unlock(&g_ctx_mu);
    }
    return rc;
}

CUresult tfs_cuDevicePrimaryCtxReset_v2(CUdevice dev) { return primary_end(dev, primary_of(dev, 0), rpc_cuDevicePrimaryCtxReset_v2); }

CUresult tfs_cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    CUresult rc = rpc_cuCtxCreate_v2(pctx, flags, dev);
    if (rc == CUDA_SUCCESS && pctx) {
        ctx_remember(*pctx, dev);
        if (tf_ctx_push(*pctx)) return CUDA_ERROR_OUT_OF_MEMORY;
        tf_ctx_remote_unknown();
    }
    return rc;
}

/* Execution-affinity and CIG parameters describe the worker's GPU partitioning: not forwarded. */
CUresult tfs_cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams, unsigned int flags,
                            CUdevice dev)
{
    (void)paramsArray;
    if (numParams > 0) return CUDA_ERROR_NOT_SUPPORTED;
    return tfs_cuCtxCreate_v2(pctx, flags, dev);
}

CUresult tfs_cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags, CUdevice dev)
{
    if (ctxCreateParams && (ctxCreateParams->numExecAffinityParams > 0 || ctxCreateParams->cigParams))
        return CUDA_ERROR_NOT_SUPPORTED;
    return tfs_cuCtxCreate_v2(pctx, flags, dev);
}

CUresult tfs_cuCtxDestroy_v2(CUcontext ctx)
{
    tf_memory_ctx_ending(ctx);
    CUresult rc = rpc_cuCtxDestroy_v2(ctx);
    tf_memory_ctx_ended(ctx, rc == CUDA_SUCCESS);
    if (rc == CUDA_SUCCESS) {
        tf_export_tables_ctx_destroyed(ctx);
        ctx_drop(ctx);
        tf_ctx_forget(ctx);
        tf_thread_streams_forget(ctx);
        tf_owners_ctx_gone(ctx);
        tf_ctx_remote_unknown();
    }
    return rc;
}

CUresult tfs_cuCtxSetCurrent(CUcontext ctx)
{
    NEED_INIT();
    if (ctx && !tf_ctx_known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    tf_ctx_set(ctx);
    return CUDA_SUCCESS;
}

CUresult tfs_cuCtxGetCurrent(CUcontext *pctx)
{
    NEED_INIT();
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    *pctx = tf_ctx_current();
    return CUDA_SUCCESS;
}

CUresult tfs_cuCtxPushCurrent_v2(CUcontext ctx)
{
    NEED_INIT();
    if (!ctx || !tf_ctx_known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    return tf_ctx_push(ctx) ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

CUresult tfs_cuCtxPopCurrent_v2(CUcontext *pctx)
{
    NEED_INIT();
    if (!tf_ctx_current()) return CUDA_ERROR_INVALID_CONTEXT;
    CUcontext c = tf_ctx_pop();
    if (pctx) *pctx = c;
    return CUDA_SUCCESS;
}
