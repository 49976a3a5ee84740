/* api_owners.c - which device (and context) each stream, event and memory pool of this process belongs to,
 * so that the calls CUDA answers or refuses per device give the driver's answers locally: a launch into a
 * stream of another device, or an event recorded on a stream of another context, is CUDA_ERROR_INVALID_HANDLE
 * at once (not a latched error of the stream later), and a pool allocation's CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL is its pool's device.
 * Hand-written create/destroy rows of proto/calls.tbl (stub=hand) record and forget the owners; api_launch.c,
 * api_ipc.c and api_memory.c ask. A handle not recorded here (created before a reconnect, or by a call that
 * does not record it) has no known device: the check is left to the worker, as before.
 */
#include <stdlib.h>

#include "stub.h"
#include "stub_calls.h"

#define OWNER_BUCKETS 1024

typedef struct owner {
    uint64_t handle;
    CUcontext ctx;   /* the context current at creation (NULL for a pool) */
    int dev;
    struct owner *next;
} owner;

static owner *g_owners[OWNER_BUCKETS];
static pthread_mutex_t g_owner_mu = PTHREAD_MUTEX_INITIALIZER;

static owner **bucket(uint64_t h) { return &g_owners[(size_t)((h >> 4) * 0x9E3779B97F4A7C15ull >> 54)]; }  /* 2^10 */

static void owner_set(uint64_t h, CUcontext ctx, int dev)
{
    pthread_mutex_lock(&g_owner_mu);
    owner **b = bucket(h), *o = *b;
    while (o && o->handle != h) o = o->next;
    if (!o && (o = malloc(sizeof *o))) {   /* without memory the handle stays unknown: the worker checks it */
        o->handle = h;
        o->next = *b;
        *b = o;
    }
    if (o) o->ctx = ctx, o->dev = dev;
    pthread_mutex_unlock(&g_owner_mu);
}

static void owner_forget(uint64_t h)
{
    pthread_mutex_lock(&g_owner_mu);
    for (owner **p = bucket(h); *p; p = &(*p)->next) {
        if ((*p)->handle == h) {
            owner *o = *p;
            *p = o->next;
            free(o);
            break;
        }
    }
    pthread_mutex_unlock(&g_owner_mu);
}

/* A context's end ends its streams and events: their handles may come back as other objects' */
void tf_owners_ctx_gone(CUcontext ctx)
{
    pthread_mutex_lock(&g_owner_mu);
    for (size_t i = 0; ctx && i < OWNER_BUCKETS; i++) {
        for (owner **p = &g_owners[i]; *p;) {
            owner *o = *p;
            if (o->ctx != ctx) {
                p = &o->next;
                continue;
            }
            *p = o->next;
            free(o);
        }
    }
    pthread_mutex_unlock(&g_owner_mu);
}

/* The handle's device (-1 when not recorded) and, if ctx is not NULL, its context (NULL when not recorded). */
static int owner_of(uint64_t h, CUcontext *ctx)
{
    pthread_mutex_lock(&g_owner_mu);
    owner *o = *bucket(h);
    while (o && o->handle != h) o = o->next;
    int dev = o ? o->dev : -1;
    if (ctx) *ctx = o ? o->ctx : NULL;
    pthread_mutex_unlock(&g_owner_mu);
    return dev;
}

static int owner_dev(uint64_t h) { return owner_of(h, NULL); }

/* NULL, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD are the current context's */
static int stream_is_current(CUstream s) { return (uintptr_t)s <= (uintptr_t)CU_STREAM_PER_THREAD; }

int tf_current_device(void) { return tf_ctx_device(tf_ctx_current()); }

int tf_stream_device(CUstream s)
{
    return stream_is_current(s) ? tf_current_device() : owner_dev((uint64_t)(uintptr_t)s);
}

static CUcontext stream_context(CUstream s)
{
    CUcontext c = NULL;
    if (stream_is_current(s)) return tf_ctx_current();
    owner_of((uint64_t)(uintptr_t)s, &c);
    return c;
}

int tf_pool_device(CUmemoryPool p) { return owner_dev((uint64_t)(uintptr_t)p); }

/* 0 only when both devices are known and differ: an unknown one leaves the check to the worker. */
static int devices_match(int a, int b) { return a < 0 || b < 0 || a == b; }

/* With one device (the common case) nothing is looked up. */
int tf_stream_on_current_device(CUstream s)
{
    return tf_session()->dev_count <= 1 || devices_match(tf_stream_device(s), tf_current_device());
}

/* Two contexts of one device are told apart too (cuCtxCreate beside the primary one). */
int tf_event_on_stream_context(CUevent e, CUstream s)
{
    CUcontext ec = NULL, sc = stream_context(s);
    owner_of((uint64_t)(uintptr_t)e, &ec);
    return !ec || !sc || ec == sc;
}

void tf_stream_owner_set(CUstream s) { owner_set((uint64_t)(uintptr_t)s, tf_ctx_current(), tf_current_device()); }

/* ---- the rows that create and destroy these handles ---- */
CUresult tfs_cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    CUresult rc = rpc_cuStreamCreate(phStream, Flags);
    if (rc == CUDA_SUCCESS && phStream) tf_stream_owner_set(*phStream);
    return rc;
}

CUresult tfs_cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    CUresult rc = rpc_cuStreamCreateWithPriority(phStream, flags, priority);
    if (rc == CUDA_SUCCESS && phStream) tf_stream_owner_set(*phStream);
    return rc;
}

CUresult tfs_cuStreamDestroy_v2(CUstream hStream)
{
    CUresult rc = rpc_cuStreamDestroy_v2(hStream);
    if (rc == CUDA_SUCCESS) owner_forget((uint64_t)(uintptr_t)hStream);
    return rc;
}

CUresult tfs_cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    CUresult rc = rpc_cuEventCreate(phEvent, Flags);
    if (rc == CUDA_SUCCESS && phEvent) owner_set((uint64_t)(uintptr_t)*phEvent, tf_ctx_current(), tf_current_device());
    return rc;
}

CUresult tfs_cuEventDestroy_v2(CUevent hEvent)
{
    CUresult rc = rpc_cuEventDestroy_v2(hEvent);
    if (rc == CUDA_SUCCESS) owner_forget((uint64_t)(uintptr_t)hEvent);
    return rc;
}

CUresult tfs_cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    CUresult rc = rpc_cuDeviceGetDefaultMemPool(pool_out, dev);
    if (rc == CUDA_SUCCESS && pool_out) owner_set((uint64_t)(uintptr_t)*pool_out, NULL, dev);
    return rc;
}

CUresult tfs_cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CUresult rc = rpc_cuDeviceGetMemPool(pool, dev);
    if (rc == CUDA_SUCCESS && pool) owner_set((uint64_t)(uintptr_t)*pool, NULL, dev);
    return rc;
}

CUresult tfs_cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
    CUresult rc = rpc_cuMemPoolCreate(pool, poolProps);
    if (rc == CUDA_SUCCESS && pool && poolProps && poolProps->location.type == CU_MEM_LOCATION_TYPE_DEVICE)
        owner_set((uint64_t)(uintptr_t)*pool, NULL, poolProps->location.id);
    return rc;
}

CUresult tfs_cuMemPoolDestroy(CUmemoryPool pool)
{
    CUresult rc = rpc_cuMemPoolDestroy(pool);
    if (rc == CUDA_SUCCESS) owner_forget((uint64_t)(uintptr_t)pool);
    return rc;
}
