/* stub_local.c - the client stub's hand-written driver entry points: the rows of proto/calls.tbl marked
 * `local` (answered without a round trip: versions, errors, cuGetProcAddress, device facts cached at
 * cuInit, the per-thread context stack, pinned host memory, pointer attributes) and `stub=hand` (special
 * marshalling: module images measured here, kernel parameters packed from a per-function layout cached
 * here, launch configs checked here, big copies split into chunks, host callbacks run here).
 * Exported under the CUDA names through the tfs_* prototypes of the generated stub_calls.h.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stub.h"
#include "stub_calls.h"
#ifdef TF_HAVE_EXPORT_TABLES
#include "cudart_export_tables.h"
#endif

#define NEED_INIT()                                                         \
    do {                                                                    \
        if (!tf_session()->connected) return CUDA_ERROR_NOT_INITIALIZED;    \
    } while (0)

/* ------------------------------------------------------------------------ init / versions */
static pthread_once_t g_export_once = PTHREAD_ONCE_INIT;
#ifndef TF_HAVE_EXPORT_TABLES
/* Without emu_c/cudart_export_tables.c in the tree: cudart gets NOT_SUPPORTED for every table. */
static void tf_export_tables_ctx_destroyed(CUcontext ctx) { (void)ctx; }
static CUresult tf_export_table_get(const void **table, const CUuuid *id)
{
    (void)id;
    *table = NULL;
    return CUDA_ERROR_NOT_SUPPORTED;
}
static void export_init(void) {}
#else
static void export_init(void)
{
    static const tf_export_hooks hooks = {
        .primary_ctx_retain = tfs_cuDevicePrimaryCtxRetain,
        .ctx_get_current = tfs_cuCtxGetCurrent,
        .driver_version = tfs_cuDriverGetVersion,
        .device_count = tfs_cuDeviceGetCount,
        .device_uuid = tfs_cuDeviceGetUuid_v2,
        .device_attr = tfs_cuDeviceGetAttribute,
        .log_prefix = "tf-stub",
    };
    tf_export_tables_init(&hooks);
}
#endif

CUresult tfs_cuInit(unsigned int Flags)
{
    if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    pthread_once(&g_export_once, export_init);
    return tf_connect_once();
}

CUresult tfs_cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = CUDA_VERSION;  /* the API this stub implements; the worker's driver may be newer */
    return CUDA_SUCCESS;
}

CUresult tfs_cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    if (!ppExportTable || !pExportTableId) return CUDA_ERROR_INVALID_VALUE;
    pthread_once(&g_export_once, export_init);
    return tf_export_table_get(ppExportTable, pExportTableId);
}

/* ------------------------------------------------------------------------------- errors */
typedef struct { CUresult code; const char *name, *text; } err_row;
#define TF_CU_ERROR(NAME, TEXT) {NAME, #NAME, TEXT},
static const err_row g_errors[] = {
#ifdef TF_HAVE_CU_ERRORS
#include "cu_errors.h"
#else
    TF_CU_ERROR(CUDA_SUCCESS, "no error")
    TF_CU_ERROR(CUDA_ERROR_INVALID_VALUE, "invalid argument")
    TF_CU_ERROR(CUDA_ERROR_OUT_OF_MEMORY, "out of memory")
    TF_CU_ERROR(CUDA_ERROR_NOT_INITIALIZED, "initialization error")
    TF_CU_ERROR(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected")
    TF_CU_ERROR(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle")
    TF_CU_ERROR(CUDA_ERROR_NOT_PERMITTED, "operation not permitted")
    TF_CU_ERROR(CUDA_ERROR_NOT_SUPPORTED, "operation not supported")
#endif
    /* what a driver answers for a bad launch configuration, unnamed in cuda.h */
    {(CUresult)9, "CUDA_ERROR_INVALID_CONFIGURATION", "invalid configuration argument"},
};
#undef TF_CU_ERROR

static const err_row *find_error(CUresult e)
{
    for (size_t i = 0; i < sizeof g_errors / sizeof g_errors[0]; i++)
        if (g_errors[i].code == e) return &g_errors[i];
    return NULL;
}

CUresult tfs_cuGetErrorName(CUresult error, const char **pStr)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    const err_row *r = find_error(error);
    *pStr = r ? r->name : NULL;
    return r ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tfs_cuGetErrorString(CUresult error, const char **pStr)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    const err_row *r = find_error(error);
    *pStr = r ? r->text : NULL;
    return r ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* -------------------------------------------------------------------------- proc address */
static CUresult proc_lookup(const char *symbol, void **pfn, int version, cuuint64_t flags,
                            CUdriverProcAddressQueryResult *status)
{
    if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    const tf_proc_entry *best = NULL, *best_ptds = NULL;
    int seen = 0;
    for (size_t i = 0; i < tf_proc_count; i++) {
        const tf_proc_entry *e = &tf_proc_table[i];
        if (strcmp(e->api, symbol) != 0) continue;
        seen = 1;
        if (e->version > version) continue;
        const tf_proc_entry **slot = e->ptds ? &best_ptds : &best;
        if (!*slot || (*slot)->version < e->version) *slot = e;
    }
    if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && best_ptds) best = best_ptds;
    if (!best) {
        if (status) *status = seen ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        tf_debug("cuGetProcAddress(%s, %d, %llu): %s", symbol, version, (unsigned long long)flags,
                 seen ? "version not sufficient" : "not provided");
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = best->fn;
    if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

CUresult tfs_cuGetProcAddress(const char *symbol, void **pfn, int driverVersion, cuuint64_t flags)
{
    return proc_lookup(symbol, pfn, driverVersion, flags, NULL);
}

CUresult tfs_cuGetProcAddress_v2(const char *symbol, void **pfn, int driverVersion, cuuint64_t flags,
                                 CUdriverProcAddressQueryResult *symbolFound)
{
    return proc_lookup(symbol, pfn, driverVersion, flags, symbolFound);
}

/* ------------------------------------------------------------------------------- devices */
static const tf_dev_info *dev_info(CUdevice dev)
{
    const tf_session_info *s = tf_session();
    return (dev >= 0 && dev < s->dev_count) ? &s->devs[dev] : NULL;
}

CUresult tfs_cuDeviceGet(CUdevice *device, int ordinal)
{
    NEED_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (!dev_info(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetCount(int *count)
{
    NEED_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = tf_session()->dev_count;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetName(char *name, int len, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = dev_info(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    size_t n = strnlen(d->name, sizeof d->name);
    if (n >= (size_t)len) n = (size_t)len - 1;
    memcpy(name, d->name, n);
    name[n] = 0;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = dev_info(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = (size_t)d->total_mem;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = dev_info(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!pi || (int)attrib <= 0 || (int)attrib >= TF_MAX_ATTR || !d->attr_ok[attrib]) return CUDA_ERROR_INVALID_VALUE;
    *pi = d->attr[attrib];
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = dev_info(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    *uuid = d->uuid;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return tfs_cuDeviceGetUuid(uuid, dev); }

/* ------------------------------------------------------------------------------ contexts */
/* Contexts the worker handed out, so a bogus cuCtxSetCurrent fails at once, as the driver's does. */
static pthread_mutex_t g_ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static CUcontext g_known_ctx[64];
static int g_nknown;

static void ctx_remember(CUcontext c)
{
    pthread_mutex_lock(&g_ctx_mu);
    int have = 0;
    for (int i = 0; i < g_nknown; i++) have |= g_known_ctx[i] == c;
    if (!have && g_nknown < 64) g_known_ctx[g_nknown++] = c;
    pthread_mutex_unlock(&g_ctx_mu);
}

static void ctx_drop(CUcontext c)
{
    pthread_mutex_lock(&g_ctx_mu);
    for (int i = 0; i < g_nknown; i++)
        if (g_known_ctx[i] == c) g_known_ctx[i--] = g_known_ctx[--g_nknown];
    pthread_mutex_unlock(&g_ctx_mu);
}

static int ctx_known(CUcontext c)
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
        ctx_remember(*pctx);
        pthread_mutex_lock(&g_ctx_mu);
        if (dev >= 0 && dev < TF_MAX_DEVICES) {
            g_primary[dev] = *pctx;
            g_primary_refs[dev]++;
        }
        pthread_mutex_unlock(&g_ctx_mu);
    }
    return rc;
}

CUresult tfs_cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    CUresult rc = rpc_cuDevicePrimaryCtxRelease_v2(dev);
    if (rc != CUDA_SUCCESS || dev < 0 || dev >= TF_MAX_DEVICES) return rc;
    pthread_mutex_lock(&g_ctx_mu);
    CUcontext dead = (g_primary_refs[dev] > 0 && --g_primary_refs[dev] == 0) ? g_primary[dev] : NULL;
    pthread_mutex_unlock(&g_ctx_mu);
    if (dead) tf_export_tables_ctx_destroyed(dead);
    return rc;
}

CUresult tfs_cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    CUcontext prim = NULL;
    if (dev >= 0 && dev < TF_MAX_DEVICES) {
        pthread_mutex_lock(&g_ctx_mu);
        prim = g_primary[dev];
        pthread_mutex_unlock(&g_ctx_mu);
    }
    if (prim) tf_export_tables_ctx_destroyed(prim);  /* cudart tears its state down while the context lives */
    CUresult rc = rpc_cuDevicePrimaryCtxReset_v2(dev);
    if (rc == CUDA_SUCCESS) {
        if (prim) {
            pthread_mutex_lock(&g_ctx_mu);
            g_primary_refs[dev] = 0;
            pthread_mutex_unlock(&g_ctx_mu);
        }
        tf_ctx_remote_unknown();
    }
    return rc;
}

CUresult tfs_cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    CUresult rc = rpc_cuCtxCreate_v2(pctx, flags, dev);
    if (rc == CUDA_SUCCESS && pctx) {
        ctx_remember(*pctx);
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
    CUresult rc = rpc_cuCtxDestroy_v2(ctx);
    if (rc == CUDA_SUCCESS) {
        tf_export_tables_ctx_destroyed(ctx);
        ctx_drop(ctx);
        tf_ctx_forget(ctx);
        tf_ctx_remote_unknown();
    }
    return rc;
}

CUresult tfs_cuCtxSetCurrent(CUcontext ctx)
{
    NEED_INIT();
    if (ctx && !ctx_known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
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
    if (!ctx || !ctx_known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
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

/* --------------------------------------------------------------------------- device memory */
CUresult tfs_cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    CUresult rc = rpc_cuMemAlloc_v2(dptr, bytesize);
    if (rc == CUDA_SUCCESS && dptr) tf_devmap_add(*dptr, bytesize);
    return rc;
}

CUresult tfs_cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height,
                                unsigned int ElementSizeBytes)
{
    CUresult rc = rpc_cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    if (rc == CUDA_SUCCESS && dptr && pPitch) tf_devmap_add(*dptr, (size_t)tf_mul(*pPitch, Height));
    return rc;
}

/* ---- managed memory ----
 * A managed allocation is memory of this process at address A and, on the worker, host memory mapped and
 * registered at the same address A (tfMemAllocAt), which the device addresses as A (unified addressing),
 * so one pointer works on both sides. They are kept coherent by whole-region copies where CUDA hands
 * memory between host and device: before a forwarded call, regions the host owns are pushed and the
 * device owns them; after a synchronous call returns, regions the device owns are pulled back. A host
 * access while device work runs is a race in CUDA too. Correct, not fast: every synchronous call moves
 * every managed region, so programs that care about speed use device memory. */
#define TF_MAX_MANAGED 256
typedef struct { CUdeviceptr base; size_t size; int device_owns; } managed_region;
static managed_region g_managed[TF_MAX_MANAGED];
static int g_nmanaged;
static pthread_mutex_t g_managed_mu = PTHREAD_MUTEX_INITIALIZER;

int tf_managed_active(void) { return __atomic_load_n(&g_nmanaged, __ATOMIC_RELAXED) > 0; }

/* Moves every region owned by the other side to `to_device`'s side (tfc_sync/tfc_async call this). */
CUresult tf_managed_sync(int to_device)
{
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_managed_mu);
    for (int i = 0; i < g_nmanaged && rc == CUDA_SUCCESS; i++) {
        managed_region *m = &g_managed[i];
        if (m->device_owns == to_device) continue;
        rc = to_device ? tfs_cuMemcpyHtoD_v2(m->base, (const void *)(uintptr_t)m->base, m->size)
                       : tfs_cuMemcpyDtoH_v2((void *)(uintptr_t)m->base, m->base, m->size);
        if (rc == CUDA_SUCCESS) m->device_owns = to_device;
    }
    pthread_mutex_unlock(&g_managed_mu);
    return rc;
}

CUresult tfs_cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    NEED_INIT();
    if (!dptr || !bytesize || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), size = (bytesize + page - 1) / page * page;
    void *host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (host == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    /* no lock held across the calls: every forwarded call takes g_managed_mu to push/pull regions */
    CUdeviceptr got = 0;
    CUresult rc = rpc_tfMemAllocAt(&got, (unsigned long long)(uintptr_t)host, size);
    if (rc == CUDA_SUCCESS && got != (CUdeviceptr)(uintptr_t)host) {   /* the worker could not use A */
        rpc_tfMemFreeAt(got);
        rc = CUDA_ERROR_NOT_SUPPORTED;
    }
    if (rc == CUDA_SUCCESS) {
        pthread_mutex_lock(&g_managed_mu);
        int added = g_nmanaged < TF_MAX_MANAGED;
        if (added) g_managed[g_nmanaged++] = (managed_region){got, size, 0};
        pthread_mutex_unlock(&g_managed_mu);
        if (added) {
            tf_devmap_add(got, size);
            *dptr = got;
        } else {
            rpc_tfMemFreeAt(got);
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    if (rc != CUDA_SUCCESS) {
        munmap(host, size);
        if (rc == CUDA_ERROR_NOT_SUPPORTED) tf_log("managed memory: the worker cannot map %zu bytes at %p", size, host);
    }
    return rc;
}

/* 1 and the region freed if dptr is a managed allocation, 0 if it is not one. */
static int managed_free(CUdeviceptr dptr, CUresult *rc)
{
    pthread_mutex_lock(&g_managed_mu);
    int i = 0;
    while (i < g_nmanaged && g_managed[i].base != dptr) i++;
    if (i == g_nmanaged) {
        pthread_mutex_unlock(&g_managed_mu);
        return 0;
    }
    managed_region m = g_managed[i];
    g_managed[i] = g_managed[--g_nmanaged];
    pthread_mutex_unlock(&g_managed_mu);
    *rc = rpc_tfMemFreeAt(dptr);
    tf_devmap_del(dptr);
    munmap((void *)(uintptr_t)m.base, m.size);
    return 1;
}

CUresult tfs_cuMemFree_v2(CUdeviceptr dptr)
{
    CUresult rc;
    if (managed_free(dptr, &rc)) return rc;
    rc = rpc_cuMemFree_v2(dptr);
    if (rc == CUDA_SUCCESS) tf_devmap_del(dptr);
    return rc;
}

CUresult tfs_cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    CUresult rc = rpc_cuMemAllocAsync(dptr, bytesize, hStream);
    if (rc == CUDA_SUCCESS && dptr) tf_devmap_add(*dptr, bytesize);
    return rc;
}

CUresult tfs_cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream)
{
    CUresult rc = rpc_cuMemAllocFromPoolAsync(dptr, bytesize, pool, hStream);
    if (rc == CUDA_SUCCESS && dptr) tf_devmap_add(*dptr, bytesize);
    return rc;
}

CUresult tfs_cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    CUresult rc = rpc_cuMemFreeAsync(dptr, hStream);
    tf_devmap_del(dptr);
    return rc;
}

/* ------------------------------------------------------------------------------- copies */
/* Copies bigger than one frame go in TF_COPY_CHUNK pieces: host-to-device pieces are queued on the
 * legacy stream (no reply, sent from the caller's memory) and the last one waits. */
CUresult tfs_cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
    CUresult shm_rc;
    if (srcHost && tf_shm_copy(1, dstDevice, (void *)(uintptr_t)srcHost, ByteCount, NULL, &shm_rc)) return shm_rc;
    const uint8_t *src = srcHost;
    while (ByteCount > TF_COPY_CHUNK && src) {
        CUresult rc = rpc_cuMemcpyHtoDAsync_v2(dstDevice, src, TF_COPY_CHUNK, CU_STREAM_LEGACY);
        if (rc) return rc;
        dstDevice += TF_COPY_CHUNK;
        src += TF_COPY_CHUNK;
        ByteCount -= TF_COPY_CHUNK;
    }
    return rpc_cuMemcpyHtoD_v2(dstDevice, src, ByteCount);
}

CUresult tfs_cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
    CUresult shm_rc;
    if (dstHost && tf_shm_copy(0, srcDevice, dstHost, ByteCount, NULL, &shm_rc)) return shm_rc;
    if (dstHost && ByteCount > TF_COPY_CHUNK) return tf_pipelined_dtoh(dstHost, srcDevice, ByteCount, NULL, 0);
    return rpc_cuMemcpyDtoH_v2(dstHost, srcDevice, ByteCount);
}

CUresult tfs_cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream)
{
    CUresult shm_rc;
    if (srcHost && tf_shm_copy(1, dstDevice, (void *)(uintptr_t)srcHost, ByteCount, hStream, &shm_rc))
        return shm_rc;
    const uint8_t *src = srcHost;
    while (ByteCount > TF_COPY_CHUNK && src) {
        CUresult rc = rpc_cuMemcpyHtoDAsync_v2(dstDevice, src, TF_COPY_CHUNK, hStream);
        if (rc) return rc;
        dstDevice += TF_COPY_CHUNK;
        src += TF_COPY_CHUNK;
        ByteCount -= TF_COPY_CHUNK;
    }
    return rpc_cuMemcpyHtoDAsync_v2(dstDevice, src, ByteCount, hStream);
}

/* Device-to-host results must land in the caller's memory, so the async form waits like the sync one. */
CUresult tfs_cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
{
    CUresult shm_rc;
    if (dstHost && tf_shm_copy(0, srcDevice, dstHost, ByteCount, hStream, &shm_rc)) return shm_rc;
    if (dstHost && ByteCount > TF_COPY_CHUNK) return tf_pipelined_dtoh(dstHost, srcDevice, ByteCount, hStream, 1);
    return rpc_cuMemcpyDtoHAsync_v2(dstHost, srcDevice, ByteCount, hStream);
}

/* Unified copies: which side is the device is decided from the stub's own allocation map. */
CUresult tfs_cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
    int dd = tf_devmap_find(dst, NULL, NULL), sd = tf_devmap_find(src, NULL, NULL);
    if (dd && sd) return rpc_cuMemcpyDtoD_v2(dst, src, ByteCount);
    if (dd) return tfs_cuMemcpyHtoD_v2(dst, (const void *)(uintptr_t)src, ByteCount);
    if (sd) return tfs_cuMemcpyDtoH_v2((void *)(uintptr_t)dst, src, ByteCount);
    NEED_INIT();
    if (ByteCount && (!dst || !src)) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = tfc_flush();
    if (rc) return rc;
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, ByteCount);
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream)
{
    int dd = tf_devmap_find(dst, NULL, NULL), sd = tf_devmap_find(src, NULL, NULL);
    if (dd && sd) return rpc_cuMemcpyDtoDAsync_v2(dst, src, ByteCount, hStream);
    if (dd) return tfs_cuMemcpyHtoDAsync_v2(dst, (const void *)(uintptr_t)src, ByteCount, hStream);
    if (sd) return tfs_cuMemcpyDtoHAsync_v2((void *)(uintptr_t)dst, src, ByteCount, hStream);
    /* host to host: order it after the stream's earlier work */
    CUresult rc = tfs_cuStreamSynchronize(hStream);
    if (rc) return rc;
    if (ByteCount && (!dst || !src)) return CUDA_ERROR_INVALID_VALUE;
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, ByteCount);
    return CUDA_SUCCESS;
}

/* 2D copies: the struct names client pointers, so host rows are packed here (pieces of at most
 * TF_COPY_CHUNK bytes) and the worker sees contiguous rows of WidthInBytes. Arrays are not forwarded. */
static int side_is_device(CUmemorytype t, const void *host, CUdeviceptr dev, int *is_dev)
{
    switch (t) {
    case CU_MEMORYTYPE_HOST: *is_dev = 0; return 0;
    case CU_MEMORYTYPE_DEVICE: *is_dev = 1; return 0;
    case CU_MEMORYTYPE_UNIFIED: *is_dev = tf_devmap_find(dev ? dev : (CUdeviceptr)(uintptr_t)host, NULL, NULL); return 0;
    default: return -1;  /* arrays */
    }
}

static CUresult memcpy2d(const CUDA_MEMCPY2D *c, CUstream hStream, int async)
{
    NEED_INIT();
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    int sdev, ddev;
    if (side_is_device(c->srcMemoryType, c->srcHost, c->srcDevice, &sdev) ||
        side_is_device(c->dstMemoryType, c->dstHost, c->dstDevice, &ddev))
        return CUDA_ERROR_NOT_SUPPORTED;
    size_t w = c->WidthInBytes, h = c->Height;
    if (w == 0 || h == 0) return CUDA_SUCCESS;
    if ((c->srcPitch && w > c->srcPitch) || (c->dstPitch && w > c->dstPitch) || w > TF_COPY_CHUNK)
        return CUDA_ERROR_INVALID_VALUE;
    /* unified pointers may come in either field */
    uint64_t sbase = c->srcMemoryType == CU_MEMORYTYPE_UNIFIED && !c->srcDevice ? (uint64_t)(uintptr_t)c->srcHost
                     : sdev ? c->srcDevice : (uint64_t)(uintptr_t)c->srcHost;
    uint64_t dbase = c->dstMemoryType == CU_MEMORYTYPE_UNIFIED && !c->dstDevice ? (uint64_t)(uintptr_t)c->dstHost
                     : ddev ? c->dstDevice : (uint64_t)(uintptr_t)c->dstHost;
    sbase += c->srcY * c->srcPitch + c->srcXInBytes;
    dbase += c->dstY * c->dstPitch + c->dstXInBytes;
    if (sdev && ddev) {
        CUresult rc = rpc_tfMemcpy2DDtoD(dbase, c->dstPitch, sbase, c->srcPitch, w, h, hStream);
        return (rc == CUDA_SUCCESS && !async) ? tfs_cuStreamSynchronize(hStream) : rc;
    }
    if (!sdev && !ddev) {  /* host to host, after the stream's earlier work */
        CUresult rc = tfs_cuStreamSynchronize(hStream);
        for (size_t r = 0; rc == CUDA_SUCCESS && r < h; r++)
            memmove((uint8_t *)(uintptr_t)dbase + r * c->dstPitch, (const uint8_t *)(uintptr_t)sbase + r * c->srcPitch, w);
        return rc;
    }
    size_t rows_per = TF_COPY_CHUNK / w;
    uint8_t *buf = malloc(rows_per < h ? rows_per * w : h * w);
    if (!buf) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CUDA_SUCCESS;
    for (size_t r0 = 0; rc == CUDA_SUCCESS && r0 < h; r0 += rows_per) {
        size_t n = h - r0 < rows_per ? h - r0 : rows_per;
        if (ddev) {
            for (size_t r = 0; r < n; r++)
                memcpy(buf + r * w, (const uint8_t *)(uintptr_t)sbase + (r0 + r) * c->srcPitch, w);
            CUdeviceptr d = dbase + r0 * c->dstPitch;
            rc = async ? rpc_tfMemcpy2DHtoDAsync(d, c->dstPitch, w, n, buf, hStream)
                       : rpc_tfMemcpy2DHtoD(d, c->dstPitch, w, n, buf, hStream);
        } else {
            rc = rpc_tfMemcpy2DDtoH(buf, sbase + r0 * c->srcPitch, c->srcPitch, w, n, async ? hStream : NULL);
            for (size_t r = 0; rc == CUDA_SUCCESS && r < n; r++)
                memcpy((uint8_t *)(uintptr_t)dbase + (r0 + r) * c->dstPitch, buf + r * w, w);
        }
    }
    free(buf);
    return rc;
}

CUresult tfs_cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy) { return memcpy2d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy) { return memcpy2d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream) { return memcpy2d(pCopy, hStream, 1); }

/* 3D copies of pitched memory: one 2D copy per slice (arrays are not forwarded). */
static CUresult memcpy3d(const CUDA_MEMCPY3D *c, CUstream hStream, int async)
{
    NEED_INIT();
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY || c->dstMemoryType == CU_MEMORYTYPE_ARRAY || c->srcLOD || c->dstLOD)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (c->Depth > 1 && (!c->srcHeight || !c->dstHeight)) return CUDA_ERROR_INVALID_VALUE;
    for (size_t z = 0; z < c->Depth; z++) {
        size_t sz = (c->srcZ + z) * c->srcPitch * c->srcHeight, dz = (c->dstZ + z) * c->dstPitch * c->dstHeight;
        CUDA_MEMCPY2D s = {
            .srcXInBytes = c->srcXInBytes, .srcY = c->srcY, .srcMemoryType = c->srcMemoryType,
            .srcHost = c->srcHost ? (const uint8_t *)c->srcHost + sz : NULL,
            .srcDevice = c->srcDevice ? c->srcDevice + sz : 0, .srcPitch = c->srcPitch,
            .dstXInBytes = c->dstXInBytes, .dstY = c->dstY, .dstMemoryType = c->dstMemoryType,
            .dstHost = c->dstHost ? (uint8_t *)c->dstHost + dz : NULL,
            .dstDevice = c->dstDevice ? c->dstDevice + dz : 0, .dstPitch = c->dstPitch,
            .WidthInBytes = c->WidthInBytes, .Height = c->Height,
        };
        CUresult rc = memcpy2d(&s, hStream, async);
        if (rc) return rc;
    }
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemcpy3D_v2(const CUDA_MEMCPY3D *pCopy) { return memcpy3d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *pCopy, CUstream hStream) { return memcpy3d(pCopy, hStream, 1); }

/* ------------------------------------------------------------------------- host memory */
/* Pinned host memory is client memory: plain page-aligned allocations, tracked for their flags. */
static pthread_mutex_t g_host_mu = PTHREAD_MUTEX_INITIALIZER;
typedef struct host_block { void *p; size_t n; unsigned flags; struct host_block *next; } host_block;
static host_block *g_host;

static host_block *host_find(const void *p)
{
    for (host_block *b = g_host; b; b = b->next)
        if ((const uint8_t *)p >= (uint8_t *)b->p && (const uint8_t *)p < (uint8_t *)b->p + b->n) return b;
    return NULL;
}

CUresult tfs_cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    NEED_INIT();
    if (!pp || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
    host_block *b = calloc(1, sizeof *b);
    if (!b) return CUDA_ERROR_OUT_OF_MEMORY;
    if (posix_memalign(&b->p, 4096, bytesize)) { free(b); return CUDA_ERROR_OUT_OF_MEMORY; }
    b->n = bytesize;
    b->flags = Flags;
    pthread_mutex_lock(&g_host_mu);
    b->next = g_host;
    g_host = b;
    pthread_mutex_unlock(&g_host_mu);
    *pp = b->p;
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemAllocHost_v2(void **pp, size_t bytesize) { return tfs_cuMemHostAlloc(pp, bytesize, 0); }

CUresult tfs_cuMemFreeHost(void *p)
{
    NEED_INIT();
    pthread_mutex_lock(&g_host_mu);
    for (host_block **pb = &g_host; *pb; pb = &(*pb)->next) {
        if ((*pb)->p == p) {
            host_block *b = *pb;
            *pb = b->next;
            pthread_mutex_unlock(&g_host_mu);
            free(b->p);
            free(b);
            return CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&g_host_mu);
    return CUDA_ERROR_INVALID_VALUE;
}

CUresult tfs_cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    (void)Flags;
    NEED_INIT();
    return (p && bytesize) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tfs_cuMemHostUnregister(void *p)
{
    NEED_INIT();
    return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tfs_cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
    NEED_INIT();
    if (!pFlags) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_host_mu);
    host_block *b = host_find(p);
    if (b) *pFlags = b->flags;
    pthread_mutex_unlock(&g_host_mu);
    return b ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tfs_cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    (void)pdptr, (void)p, (void)Flags;
    return CUDA_ERROR_NOT_SUPPORTED;  /* client memory cannot be mapped into a remote device */
}

/* ------------------------------------------------------------------------ pointer attributes */
static CUresult pointer_attr(void *data, CUpointer_attribute a, CUdeviceptr ptr, int lenient)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    int dev = tf_devmap_find(ptr, &base, &size);
    pthread_mutex_lock(&g_host_mu);
    host_block *hb = dev ? NULL : host_find((void *)(uintptr_t)ptr);
    if (hb) { base = (CUdeviceptr)(uintptr_t)hb->p; size = hb->n; }
    pthread_mutex_unlock(&g_host_mu);
    if (!dev && !hb) {
        if (!lenient) return CUDA_ERROR_INVALID_VALUE;
        if (a == CU_POINTER_ATTRIBUTE_MEMORY_TYPE) *(unsigned *)data = 0;
        else if (a == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) *(int *)data = -2;
        else if (a == CU_POINTER_ATTRIBUTE_CONTEXT) *(CUcontext *)data = NULL;
        else if (a == CU_POINTER_ATTRIBUTE_IS_MANAGED || a == CU_POINTER_ATTRIBUTE_MAPPED) *(int *)data = 0;
        else if (a == CU_POINTER_ATTRIBUTE_DEVICE_POINTER || a == CU_POINTER_ATTRIBUTE_HOST_POINTER) *(void **)data = NULL;
        return CUDA_SUCCESS;
    }
    switch (a) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: *(unsigned *)data = dev ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST; break;
    case CU_POINTER_ATTRIBUTE_CONTEXT: *(CUcontext *)data = tf_ctx_current(); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: *(CUdeviceptr *)data = dev ? ptr : 0; break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER: *(void **)data = dev ? NULL : (void *)(uintptr_t)ptr; break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *(int *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data = 0; break;
    case CU_POINTER_ATTRIBUTE_MAPPED: *(int *)data = 1; break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *(CUdeviceptr *)data = base; break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *(size_t *)data = size; break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: *(unsigned long long *)data = (unsigned long long)base; break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *(int *)data = 1; break;
    default: return lenient ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult tfs_cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    NEED_INIT();
    if (!data) return CUDA_ERROR_INVALID_VALUE;
    return pointer_attr(data, attribute, ptr, 0);
}

CUresult tfs_cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes, void **data,
                                    CUdeviceptr ptr)
{
    NEED_INIT();
    if (!attributes || !data) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numAttributes; i++) {
        if (!data[i]) continue;
        CUresult rc = pointer_attr(data[i], attributes[i], ptr, 1);
        if (rc) return rc;
    }
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------- module images */
#define FATBIN_WRAPPER_MAGIC 0x466243b1u
#define FATBIN_MAGIC 0xBA55ED50u

/* Finds the bytes of a module image (fatbin, fatbin wrapper, cubin ELF or PTX text) and their length. */
static int measure_image(const void *image, const void **data, size_t *len)
{
    if (!image) return -1;
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic == FATBIN_WRAPPER_MAGIC) {
        const void *inner;
        memcpy(&inner, (const uint8_t *)image + 8, sizeof inner);
        if (!inner) return -1;
        image = inner;
        memcpy(&magic, image, 4);
    }
    if (magic == FATBIN_MAGIC) {
        uint16_t hsize;
        uint64_t fsize;
        memcpy(&hsize, (const uint8_t *)image + 6, 2);
        memcpy(&fsize, (const uint8_t *)image + 8, 8);
        if (fsize > TF_MAX_FRAME) return -1;
        *data = image;
        *len = (size_t)hsize + (size_t)fsize;
        return 0;
    }
    if (memcmp(image, ELFMAG, SELFMAG) == 0) {
        Elf64_Ehdr eh;
        memcpy(&eh, image, sizeof eh);
        uint64_t end = eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize;
        uint64_t pend = eh.e_phoff + (uint64_t)eh.e_phnum * eh.e_phentsize;
        if (pend > end) end = pend;
        if (end > TF_MAX_FRAME || end < sizeof eh) return -1;
        *data = image;
        *len = (size_t)end;
        return 0;
    }
    size_t n = strnlen(image, TF_MAX_FRAME);  /* PTX text */
    if (n >= TF_MAX_FRAME) return -1;
    *data = image;
    *len = n + 1;
    return 0;
}

CUresult tfs_cuModuleLoadData(CUmodule *module, const void *image)
{
    const void *data;
    size_t len;
    if (!module || measure_image(image, &data, &len)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_tfModuleLoadImage(module, data, len);
}

/* Module files are read here (client side) and travel as images. */
static CUresult read_file(const char *fname, void **data, size_t *len)
{
    if (!fname) return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(fname, "rb");
    if (!f) return CUDA_ERROR_FILE_NOT_FOUND;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            if (cap > TF_MAX_FRAME) { free(buf); fclose(f); return CUDA_ERROR_INVALID_VALUE; }
            uint8_t *b = realloc(buf, cap);
            if (!b) { free(buf); fclose(f); return CUDA_ERROR_OUT_OF_MEMORY; }
            buf = b;
        }
        size_t k = fread(buf + n, 1, 65536, f);
        n += k;
        if (k < 65536) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err || n == 0) { free(buf); return CUDA_ERROR_INVALID_IMAGE; }
    buf[n] = 0;  /* PTX files are text without a terminator */
    *data = buf;
    *len = n + 1;
    return CUDA_SUCCESS;
}

CUresult tfs_cuModuleLoad(CUmodule *module, const char *fname)
{
    void *data;
    size_t len;
    if (!module) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = read_file(fname, &data, &len);
    if (rc) return rc;
    rc = rpc_tfModuleLoadImage(module, data, len);
    free(data);
    return rc;
}

CUresult tfs_cuLibraryLoadFromFile(CUlibrary *library, const char *fileName, CUjit_option *jitOptions,
                                   void **jitOptionsValues, unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                                   void **libraryOptionValues, unsigned int numLibraryOptions)
{
    (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions;
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    void *data;
    size_t len;
    if (!library) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = read_file(fileName, &data, &len);
    if (rc) return rc;
    rc = rpc_tfLibraryLoadImage(library, data, len);
    free(data);
    return rc;
}

CUresult tfs_cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin) { return tfs_cuModuleLoadData(module, fatCubin); }

CUresult tfs_cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options,
                                void **optionValues)
{
    (void)numOptions, (void)options, (void)optionValues;  /* JIT options stay on the client: not forwarded */
    return tfs_cuModuleLoadData(module, image);
}

CUresult tfs_cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues,
                               unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                               void **libraryOptionValues, unsigned int numLibraryOptions)
{
    (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions;
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    const void *data;
    size_t len;
    if (!library || measure_image(code, &data, &len)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_tfLibraryLoadImage(library, data, len);
}

/* ------------------------------------------------------------------------------ launches */
/* Kernel parameter layout per function, asked of the worker once (tfFuncGetParamLayout). */
typedef struct layout {
    uint64_t fn;
    unsigned count;
    uint32_t total;
    uint32_t off[256], size[256];
    struct layout *next;
} layout;
#define LAYOUT_BUCKETS 1024
static layout *g_layouts[LAYOUT_BUCKETS];
static pthread_mutex_t g_layout_mu = PTHREAD_MUTEX_INITIALIZER;

static CUresult get_layout(CUfunction f, const layout **out)
{
    uint64_t key = (uint64_t)(uintptr_t)f;
    size_t b = (size_t)((key >> 4) * 0x9E3779B97F4A7C15ull >> 54) % LAYOUT_BUCKETS;
    pthread_mutex_lock(&g_layout_mu);
    for (layout *l = g_layouts[b]; l; l = l->next)
        if (l->fn == key) { pthread_mutex_unlock(&g_layout_mu); *out = l; return CUDA_SUCCESS; }
    pthread_mutex_unlock(&g_layout_mu);
    unsigned count = 0;
    unsigned long long pairs[256];
    CUresult rc = rpc_tfFuncGetParamLayout(f, &count, pairs);
    if (rc) return rc;
    if (count > 256) return CUDA_ERROR_INVALID_VALUE;
    layout *l = calloc(1, sizeof *l);
    if (!l) return CUDA_ERROR_OUT_OF_MEMORY;
    l->fn = key;
    l->count = count;
    for (unsigned i = 0; i < count; i++) {
        l->off[i] = (uint32_t)(pairs[i] >> 32);
        l->size[i] = (uint32_t)pairs[i];
        if (l->off[i] + l->size[i] > l->total) l->total = l->off[i] + l->size[i];
    }
    pthread_mutex_lock(&g_layout_mu);
    l->next = g_layouts[b];
    g_layouts[b] = l;
    pthread_mutex_unlock(&g_layout_mu);
    *out = l;
    return CUDA_SUCCESS;
}

/* Unloading may free function handles the worker will hand out again for other kernels. Forgotten
 * layouts are retired, not freed: a launch in another thread may still be reading one. */
static layout *g_retired;
static void layouts_forget_all(void)
{
    pthread_mutex_lock(&g_layout_mu);
    for (size_t b = 0; b < LAYOUT_BUCKETS; b++) {
        for (layout *l = g_layouts[b], *n; l; l = n) {
            n = l->next;
            l->next = g_retired;
            g_retired = l;
        }
        g_layouts[b] = NULL;
    }
    pthread_mutex_unlock(&g_layout_mu);
}

CUresult tfs_cuModuleUnload(CUmodule hmod)
{
    CUresult rc = rpc_cuModuleUnload(hmod);
    if (rc == CUDA_SUCCESS) layouts_forget_all();
    return rc;
}

CUresult tfs_cuLibraryUnload(CUlibrary library)
{
    CUresult rc = rpc_cuLibraryUnload(library);
    if (rc == CUDA_SUCCESS) layouts_forget_all();
    return rc;
}

/* The checks a driver makes at the launch call itself (the rest comes back latched). The driver's
 * answer to a bad grid or block is 9, which cuda.h does not name; cudart reports it as
 * cudaErrorInvalidConfiguration. */
#define TF_ERROR_INVALID_CONFIGURATION ((CUresult)9)
static CUresult check_dims(const unsigned *d)
{
    const tf_dev_info *di = dev_info(0);
    if (!di) return CUDA_ERROR_INVALID_CONTEXT;
    for (int i = 0; i < 6; i++)
        if (d[i] == 0) return TF_ERROR_INVALID_CONFIGURATION;
    static const CUdevice_attribute lim[6] = {
        CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z,
        CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z};
    for (int i = 0; i < 6; i++)
        if (di->attr_ok[lim[i]] && d[i] > (unsigned)di->attr[lim[i]]) return TF_ERROR_INVALID_CONFIGURATION;
    uint64_t threads = (uint64_t)d[3] * d[4] * d[5];
    if (di->attr_ok[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK] &&
        threads > (uint64_t)di->attr[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK])
        return TF_ERROR_INVALID_CONFIGURATION;
    return CUDA_SUCCESS;
}

static CUresult launch(CUfunction f, const unsigned *dims, unsigned shmem, CUstream hStream, void **kernelParams,
                       void **extra, unsigned numAttrs, const CUlaunchAttribute *attrs)
{
    NEED_INIT();
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    CUresult rc = check_dims(dims);
    if (rc) return rc;
    const void *args = NULL;
    size_t argBytes = 0;
    uint8_t small[4096];
    uint8_t *packed = NULL;
    if (extra) {
        void *buf = NULL;
        size_t *sz = NULL;
        for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) buf = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) sz = extra[i + 1];
            else return CUDA_ERROR_INVALID_VALUE;
        }
        if (kernelParams || !buf || !sz) return CUDA_ERROR_INVALID_VALUE;
        args = buf;
        argBytes = *sz;
    } else {
        const layout *l;
        if ((rc = get_layout(f, &l))) return rc;
        if (l->count && !kernelParams) return CUDA_ERROR_INVALID_VALUE;
        argBytes = l->total;
        packed = argBytes <= sizeof small ? small : malloc(argBytes);
        if (!packed) return CUDA_ERROR_OUT_OF_MEMORY;
        memset(packed, 0, argBytes);
        for (unsigned i = 0; i < l->count; i++) {
            if (!kernelParams[i]) { rc = CUDA_ERROR_INVALID_VALUE; goto done; }
            memcpy(packed + l->off[i], kernelParams[i], l->size[i]);
        }
        args = packed;
    }
    if (argBytes > TF_MAX_FRAME) { rc = CUDA_ERROR_INVALID_VALUE; goto done; }
    rc = rpc_tfLaunch(f, dims, shmem, hStream, (unsigned)argBytes, args, numAttrs, attrs);
done:
    if (packed && packed != small) free(packed);
    return rc;
}

CUresult tfs_cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                            unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                            unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra)
{
    unsigned dims[6] = {gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ};
    return launch(f, dims, sharedMemBytes, hStream, kernelParams, extra, 0, NULL);
}

CUresult tfs_cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                       unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                       unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                       void **kernelParams)
{
    unsigned dims[6] = {gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ};
    CUlaunchAttribute coop;
    memset(&coop, 0, sizeof coop);
    coop.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
    coop.value.cooperative = 1;
    return launch(f, dims, sharedMemBytes, hStream, kernelParams, NULL, 1, &coop);
}

CUresult tfs_cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    if (!config || (config->numAttrs && !config->attrs)) return CUDA_ERROR_INVALID_VALUE;
    unsigned dims[6] = {config->gridDimX, config->gridDimY, config->gridDimZ,
                        config->blockDimX, config->blockDimY, config->blockDimZ};
    return launch(f, dims, config->sharedMemBytes, config->hStream, kernelParams, extra, config->numAttrs,
                  config->attrs);
}

/* Per-thread default stream variant: the stream lives in the config. */
CUresult tfs_cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    if (!config || config->hStream) return tfs_cuLaunchKernelEx(config, f, kernelParams, extra);
    CUlaunchConfig c = *config;
    c.hStream = CU_STREAM_PER_THREAD;
    return tfs_cuLaunchKernelEx(&c, f, kernelParams, extra);
}

/* Host functions run in the client, after the stream's earlier work is done: the stub waits for the
 * stream and calls them in place, which keeps stream order (later work is not queued yet). */
CUresult tfs_cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = tfs_cuStreamSynchronize(hStream);
    if (rc) return rc;
    fn(userData);
    return CUDA_SUCCESS;
}

CUresult tfs_cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData, unsigned int flags)
{
    if (!callback || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = tfs_cuStreamSynchronize(hStream);
    if (rc == CUDA_ERROR_INVALID_HANDLE || rc == CUDA_ERROR_INVALID_CONTEXT || rc == CUDA_ERROR_NOT_INITIALIZED)
        return rc;
    callback(hStream, rc, userData);
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------- stream capture */
/* Capture (and graphs) are not forwarded, so no stream is ever capturing; PyTorch and cudart ask often. */
CUresult tfs_cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    (void)hStream;
    NEED_INIT();
    if (!captureStatus) return CUDA_ERROR_INVALID_VALUE;
    *captureStatus = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
}

CUresult tfs_cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out)
{
    CUresult rc = tfs_cuStreamIsCapturing(hStream, captureStatus_out);
    if (rc == CUDA_SUCCESS && id_out) *id_out = 0;
    return rc;
}

CUresult tfs_cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out,
                                       CUgraph *graph_out, const CUgraphNode **dependencies_out,
                                       size_t *numDependencies_out)
{
    CUresult rc = tfs_cuStreamGetCaptureInfo(hStream, captureStatus_out, id_out);
    if (rc) return rc;
    if (graph_out) *graph_out = NULL;
    if (dependencies_out) *dependencies_out = NULL;
    if (numDependencies_out) *numDependencies_out = 0;
    return CUDA_SUCCESS;
}

CUresult tfs_cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out,
                                       CUgraph *graph_out, const CUgraphNode **dependencies_out,
                                       const CUgraphEdgeData **edgeData_out, size_t *numDependencies_out)
{
    CUresult rc = tfs_cuStreamGetCaptureInfo_v2(hStream, captureStatus_out, id_out, graph_out, dependencies_out,
                                                numDependencies_out);
    if (rc == CUDA_SUCCESS && edgeData_out) *edgeData_out = NULL;
    return rc;
}

CUresult tfs_cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    static __thread CUstreamCaptureMode t_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode old = t_mode;
    t_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}

/* Capture and graphs would need the graph to live on the worker: answered plainly, said once. */
static CUresult graphs_not_forwarded(void)
{
    static int said;
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        tf_log("stream capture and CUDA graphs are not forwarded to the worker (CUDA_ERROR_NOT_SUPPORTED)");
    return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult tfs_cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    (void)hStream, (void)mode;
    return graphs_not_forwarded();
}

CUresult tfs_cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    (void)hStream, (void)phGraph;
    return CUDA_ERROR_ILLEGAL_STATE;  /* never capturing */
}

CUresult tfs_cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    (void)phGraph, (void)flags;
    return graphs_not_forwarded();
}

/* __managed__ variables live at an address the worker's module chose, which this process cannot map
 * reliably: refused with an error (cudart then fails the program's CUDA calls cleanly) instead of
 * handing out an address the host would fault on. cudaMallocManaged memory works (see above). */
CUresult tfs_cuLibraryGetManaged(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    (void)dptr, (void)bytes, (void)library;
    NEED_INIT();
    tf_log("__managed__ variable %s: not supported through the remote stub (use cudaMallocManaged)",
           name ? name : "?");
    return CUDA_ERROR_NOT_SUPPORTED;
}
