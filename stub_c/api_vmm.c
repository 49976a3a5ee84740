/* api_vmm.c - the client stub's hand-written entry points for virtual memory management and managed-range
 * attributes. Reserved and mapped addresses are the worker's, the same on both sides (unified
 * addressing): a successful cuMemMap teaches the stub's device map the range (cuMemcpy classification,
 * pointer attributes), cuMemUnmap takes it back. Shareable handles: a fabric handle travels anywhere; a
 * POSIX file descriptor is the worker's own descriptor of the allocation, handed to this process over the
 * Unix socket (SCM_RIGHTS) at export and sent back with an import (same host only; the worker applies the
 * IPC policy: same allocation); a Win32 handle, or a POSIX fd over TCP/TLS, is refused with the reason logged.
 * IPC memory pools share their POSIX descriptor the same way (cuMemPoolExportToShareableHandle / Import...).
 * Managed-memory hints of the stub's managed regions are kept and answered here (see below).
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; the list of areas is in stub.h.
 */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

CUresult tfs_cuMemMap(CUdeviceptr_v2 ptr, size_t size, size_t offset, CUmemGenericAllocationHandle_v1 handle,
                      unsigned long long flags)
{
    NEED_INIT();
    CUresult rc = rpc_cuMemMap(ptr, size, offset, handle, flags);
    if (rc != CUDA_SUCCESS) return rc;
    /* the range belongs to its physical allocation's device (CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL), not to the
     * current one: asked once here, as the handle may be imported */
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    int dev = rpc_cuMemGetAllocationPropertiesFromHandle(&prop, handle) == CUDA_SUCCESS &&
              prop.location.type == CU_MEM_LOCATION_TYPE_DEVICE ? prop.location.id : tf_current_device();
    tf_devmap_add_mapping(ptr, size, dev);
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemUnmap(CUdeviceptr_v2 ptr, size_t size)
{
    NEED_INIT();
    CUresult rc = rpc_cuMemUnmap(ptr, size);
    if (rc != CUDA_SUCCESS) return rc;
    /* the worker accepted it: [ptr, ptr+size) was whole, adjacent mappings */
    for (CUdeviceptr a = ptr; a < ptr + size;) {
        CUdeviceptr base = 0;
        size_t n = 0;
        if (!tf_devmap_find(a, &base, &n) || base != a || n == 0) break;
        tf_devmap_del(base);
        a = base + n;
    }
    return CUDA_SUCCESS;
}

/* fabric: whether CU_MEM_HANDLE_TYPE_FABRIC would travel instead (VMM allocations: yes; memory pools: no) */
static CUresult refuse_handle_type(const char *call, CUmemAllocationHandleType t, int fabric)
{
    static int logged;
    if (!__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED)) {
        if (t == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
            tf_log("%s: a POSIX file descriptor of the GPU worker reaches this process only over a Unix socket "
                   "(the worker on this host)%s", call, fabric ? "; over TCP/TLS use CU_MEM_HANDLE_TYPE_FABRIC" : "");
        else
            tf_log("%s: handle type %d is a descriptor of the GPU host's process and cannot reach this one; %s",
                   call, (int)t, fabric ? "CU_MEM_HANDLE_TYPE_FABRIC (and a POSIX fd on the same host) travel through "
                                          "the remote stub" : "a POSIX fd on the same host (Unix socket) travels");
    }
    return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult tfs_cuMemExportToShareableHandle(void *shareableHandle, CUmemGenericAllocationHandle_v1 handle,
                                          CUmemAllocationHandleType handleType, unsigned long long flags)
{
    NEED_INIT();
    if (!shareableHandle) return CUDA_ERROR_INVALID_VALUE;
    if (handleType == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
        if (!tf_conn_is_unix()) return refuse_handle_type("cuMemExportToShareableHandle", handleType, 1);
        tfc_call c;
        int fd = -1;
        CUresult rc = enc_tfMemExportToFd(&c, handle, flags);
        if (rc == CUDA_SUCCESS) rc = tfc_sync_take_fd(&c, &fd);
        if (rc == CUDA_SUCCESS) *(int *)shareableHandle = fd;
        return rc;
    }
    if (handleType != CU_MEM_HANDLE_TYPE_FABRIC) return refuse_handle_type("cuMemExportToShareableHandle", handleType, 1);
    return rpc_cuMemExportToShareableHandle(shareableHandle, handle, handleType, flags);
}

CUresult tfs_cuMemImportFromShareableHandle(CUmemGenericAllocationHandle_v1 *handle, void *osHandle,
                                            CUmemAllocationHandleType shHandleType)
{
    NEED_INIT();
    if (!handle) return CUDA_ERROR_INVALID_VALUE;
    if (shHandleType == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
        int fd = (int)(intptr_t)osHandle;   /* the descriptor itself, passed as a pointer-sized value */
        if (fd < 0 || fcntl(fd, F_GETFD) < 0) return CUDA_ERROR_INVALID_VALUE;
        if (!tf_conn_is_unix()) return refuse_handle_type("cuMemImportFromShareableHandle", shHandleType, 1);
        tfc_call c;
        CUresult rc = enc_tfMemImportFromFd(&c, handle);
        return rc == CUDA_SUCCESS ? tfc_sync_fd(&c, fd) : rc;
    }
    if (!osHandle) return CUDA_ERROR_INVALID_VALUE;
    if (shHandleType != CU_MEM_HANDLE_TYPE_FABRIC)
        return refuse_handle_type("cuMemImportFromShareableHandle", shHandleType, 1);
    return rpc_cuMemImportFromShareableHandle(handle, osHandle, shHandleType);
}

/* IPC memory pools: the pool's POSIX descriptor crosses as a VMM allocation's does (above; the worker applies
 * the same IPC policy), the 64 bytes of pointer export data are plain data, and an imported pointer joins the
 * device map with the size and device the worker reports (freed with cuMemFree / cuMemFreeAsync as any allocation). */
CUresult tfs_cuMemPoolExportToShareableHandle(void *handle_out, CUmemoryPool pool, CUmemAllocationHandleType handleType,
                                              unsigned long long flags)
{
    NEED_INIT();
    if (!handle_out) return CUDA_ERROR_INVALID_VALUE;
    if (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR || !tf_conn_is_unix())
        return refuse_handle_type("cuMemPoolExportToShareableHandle", handleType, 0);
    tfc_call c;
    int fd = -1;
    CUresult rc = enc_tfMemPoolExportToFd(&c, pool, flags);
    if (rc == CUDA_SUCCESS) rc = tfc_sync_take_fd(&c, &fd);
    if (rc == CUDA_SUCCESS) *(int *)handle_out = fd;
    return rc;
}

CUresult tfs_cuMemPoolImportFromShareableHandle(CUmemoryPool *pool_out, void *handle, CUmemAllocationHandleType handleType,
                                                unsigned long long flags)
{
    NEED_INIT();
    if (!pool_out) return CUDA_ERROR_INVALID_VALUE;
    if (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return refuse_handle_type("cuMemPoolImportFromShareableHandle", handleType, 0);
    int fd = (int)(intptr_t)handle;   /* the descriptor itself, passed as a pointer-sized value */
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) return CUDA_ERROR_INVALID_VALUE;
    if (!tf_conn_is_unix()) return refuse_handle_type("cuMemPoolImportFromShareableHandle", handleType, 0);
    tfc_call c;
    CUresult rc = enc_tfMemPoolImportFromFd(&c, pool_out, flags);
    return rc == CUDA_SUCCESS ? tfc_sync_fd(&c, fd) : rc;
}

CUresult tfs_cuMemPoolImportPointer(CUdeviceptr_v2 *ptr_out, CUmemoryPool pool, CUmemPoolPtrExportData_v1 *shareData)
{
    NEED_INIT();
    if (!ptr_out || !shareData) return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr p = 0;
    size_t size = 0;
    int dev = -1;   /* the pool's device, as the worker's driver knows it */
    CUresult rc = rpc_tfMemPoolImportPointer(&p, &size, &dev, pool, shareData);
    if (rc == CUDA_SUCCESS) {
        tf_devmap_add_on(p, size, dev >= 0 ? dev : tf_current_device());
        *ptr_out = p;
    }
    return rc;
}

/* One round trip per attribute, as the driver documents it: the same as cuMemRangeGetAttribute each. */
CUresult tfs_cuMemRangeGetAttributes(void **data, size_t *dataSizes, CUmem_range_attribute *attributes,
                                     size_t numAttributes, CUdeviceptr_v2 devPtr, size_t count)
{
    NEED_INIT();
    if (!data || !dataSizes || !attributes || numAttributes == 0) return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < numAttributes; i++) {
        CUresult rc = tfs_cuMemRangeGetAttribute(data[i], dataSizes[i], attributes[i], devPtr, count);
        if (rc != CUDA_SUCCESS) return rc;
    }
    return CUDA_SUCCESS;
}

/* ---- managed-memory hints ----
 * A managed region is host memory on the worker, so the worker's driver cannot hold its advice: the
 * stub keeps it per region (whole-region granularity: the range asked about must lie in one region)
 * and answers cuMemRangeGetAttribute(s) from it. Prefetches of a region are hints whose data movement
 * the coherence of api_memory.c already does; the stub records where to, for the attribute. Ranges
 * that are not managed regions travel to the worker (device memory: the backend answers). */
#define TF_MAX_HINTED 256
#define TF_MAX_ACCESSORS 8
typedef struct {
    CUdeviceptr base;
    int read_mostly;
    CUmemLocation preferred;           /* type CU_MEM_LOCATION_TYPE_INVALID: none */
    CUmemLocation last_prefetch;
    CUmemLocation accessed_by[TF_MAX_ACCESSORS];
    int naccessed;
} hints;
static hints g_hints[TF_MAX_HINTED];
static int g_nhints;
static pthread_mutex_t g_hints_mu = PTHREAD_MUTEX_INITIALIZER;

/* the hints of region `base`, created if new; NULL if the table is full. Call with g_hints_mu held. */
static hints *hints_of(CUdeviceptr base)
{
    for (int i = 0; i < g_nhints; i++)
        if (g_hints[i].base == base) return &g_hints[i];
    if (g_nhints == TF_MAX_HINTED) return NULL;
    hints *h = &g_hints[g_nhints++];
    memset(h, 0, sizeof *h);
    h->base = base;
    return h;
}

void tf_managed_hints_forget(CUdeviceptr base)
{
    pthread_mutex_lock(&g_hints_mu);
    for (int i = 0; i < g_nhints; i++)
        if (g_hints[i].base == base) g_hints[i] = g_hints[--g_nhints];
    pthread_mutex_unlock(&g_hints_mu);
}

/* a location the session can name: the host, or one of its devices */
static int location_ok(CUmemLocation l)
{
    if (l.type == CU_MEM_LOCATION_TYPE_HOST || l.type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
        l.type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT)
        return 1;
    return l.type == CU_MEM_LOCATION_TYPE_DEVICE && l.id >= 0 && l.id < tf_session()->dev_count;
}

static CUmemLocation location_of_device(CUdevice d)
{
    CUmemLocation l;
    memset(&l, 0, sizeof l);
    if (d == CU_DEVICE_CPU) l.type = CU_MEM_LOCATION_TYPE_HOST;
    else { l.type = CU_MEM_LOCATION_TYPE_DEVICE; l.id = d; }
    return l;
}

/* the legacy int form of a location: a device ordinal, CU_DEVICE_CPU, or CU_DEVICE_INVALID for none */
static int device_of_location(CUmemLocation l)
{
    if (l.type == CU_MEM_LOCATION_TYPE_DEVICE) return l.id;
    if (l.type == CU_MEM_LOCATION_TYPE_INVALID) return (int)CU_DEVICE_INVALID;
    return (int)CU_DEVICE_CPU;
}

static int same_location(CUmemLocation a, CUmemLocation b)
{
    return a.type == b.type && (a.type != CU_MEM_LOCATION_TYPE_DEVICE || a.id == b.id);
}

static CUresult advise_managed(CUdeviceptr base, CUmem_advise advice, CUmemLocation l)
{
    int needs_location = advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION || advice == CU_MEM_ADVISE_SET_ACCESSED_BY ||
                         advice == CU_MEM_ADVISE_UNSET_ACCESSED_BY;
    if (advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY) return CUDA_ERROR_INVALID_VALUE;
    if (needs_location && !location_ok(l)) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_hints_mu);
    hints *h = hints_of(base);
    CUresult rc = h ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
    if (h) {
        switch (advice) {
        case CU_MEM_ADVISE_SET_READ_MOSTLY: h->read_mostly = 1; break;
        case CU_MEM_ADVISE_UNSET_READ_MOSTLY: h->read_mostly = 0; break;
        case CU_MEM_ADVISE_SET_PREFERRED_LOCATION: h->preferred = l; break;
        case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION: memset(&h->preferred, 0, sizeof h->preferred); break;
        case CU_MEM_ADVISE_SET_ACCESSED_BY: {
            int i = 0;
            while (i < h->naccessed && !same_location(h->accessed_by[i], l)) i++;
            if (i == h->naccessed && h->naccessed < TF_MAX_ACCESSORS) h->accessed_by[h->naccessed++] = l;
            break;
        }
        case CU_MEM_ADVISE_UNSET_ACCESSED_BY:
            for (int i = 0; i < h->naccessed; i++)
                if (same_location(h->accessed_by[i], l)) h->accessed_by[i--] = h->accessed_by[--h->naccessed];
            break;
        }
    }
    pthread_mutex_unlock(&g_hints_mu);
    return rc;
}

CUresult tfs_cuMemAdvise(CUdeviceptr_v2 devPtr, size_t count, CUmem_advise advice, CUdevice_v1 device)
{
    NEED_INIT();
    CUdeviceptr base;
    if (tf_managed_range(devPtr, count, &base)) return advise_managed(base, advice, location_of_device(device));
    return rpc_cuMemAdvise(devPtr, count, advice, device);
}

CUresult tfs_cuMemAdvise_v2(CUdeviceptr_v2 devPtr, size_t count, CUmem_advise advice, CUmemLocation_v1 location)
{
    NEED_INIT();
    CUdeviceptr base;
    if (tf_managed_range(devPtr, count, &base)) return advise_managed(base, advice, location);
    return rpc_cuMemAdvise_v2(devPtr, count, advice, location);
}

/* A prefetch is stream-ordered (queued, no reply), but CUDA refuses a range that is not memory of the
 * context at the call: checked here against the device map (managed regions are in it). */
static int range_known(CUdeviceptr p, size_t n)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    return n && tf_devmap_find(p, &base, &size) && p - base <= size && n <= size - (p - base);
}

static CUresult prefetch_managed(CUdeviceptr base, CUmemLocation l)
{
    if (!location_ok(l)) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&g_hints_mu);
    hints *h = hints_of(base);
    if (h) h->last_prefetch = l;
    pthread_mutex_unlock(&g_hints_mu);
    return h ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult tfs_cuMemPrefetchAsync(CUdeviceptr_v2 devPtr, size_t count, CUdevice_v1 dstDevice, CUstream hStream)
{
    NEED_INIT();
    CUdeviceptr base;
    if (tf_managed_range(devPtr, count, &base)) return prefetch_managed(base, location_of_device(dstDevice));
    if (!range_known(devPtr, count)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_cuMemPrefetchAsync(devPtr, count, dstDevice, hStream);
}

CUresult tfs_cuMemPrefetchAsync_v2(CUdeviceptr_v2 devPtr, size_t count, CUmemLocation_v1 location, unsigned int flags,
                                   CUstream hStream)
{
    NEED_INIT();
    CUdeviceptr base;
    if (tf_managed_range(devPtr, count, &base)) return flags ? CUDA_ERROR_INVALID_VALUE : prefetch_managed(base, location);
    if (!range_known(devPtr, count)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_cuMemPrefetchAsync_v2(devPtr, count, location, flags, hStream);
}

CUresult tfs_cuMemRangeGetAttribute(void *data, size_t dataSize, CUmem_range_attribute attribute, CUdeviceptr_v2 devPtr,
                                    size_t count)
{
    NEED_INIT();
    CUdeviceptr base;
    if (!tf_managed_range(devPtr, count, &base)) return rpc_cuMemRangeGetAttribute(data, dataSize, attribute, devPtr, count);
    if (!data) return CUDA_ERROR_INVALID_VALUE;
    int *out = data;
    if (attribute == CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY ? dataSize == 0 || dataSize % 4 : dataSize != 4)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_hints_mu);
    hints none, *h = NULL;
    for (int i = 0; i < g_nhints && !h; i++)
        if (g_hints[i].base == base) h = &g_hints[i];
    if (!h) { memset(&none, 0, sizeof none); h = &none; }
    CUresult rc = CUDA_SUCCESS;
    switch (attribute) {
    case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY: *out = h->read_mostly; break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION: *out = device_of_location(h->preferred); break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION: *out = device_of_location(h->last_prefetch); break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE: *out = (int)h->preferred.type; break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID: *out = h->preferred.id; break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE: *out = (int)h->last_prefetch.type; break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID: *out = h->last_prefetch.id; break;
    case CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY:
        for (size_t i = 0; i < dataSize / 4; i++)
            out[i] = (int)i < h->naccessed ? device_of_location(h->accessed_by[i]) : (int)CU_DEVICE_INVALID;
        break;
    default: rc = CUDA_ERROR_INVALID_VALUE;
    }
    pthread_mutex_unlock(&g_hints_mu);
    return rc;
}
