/* api_vmm.c - the client stub's hand-written entry points for virtual memory management and managed-range
 * attributes. Reserved and mapped addresses are the worker's, the same on both sides (unified
 * addressing): a successful cuMemMap teaches the stub's device map the range (cuMemcpy classification,
 * pointer attributes), cuMemUnmap takes it back. Shareable handles: only a fabric handle means anything
 * on another host; a POSIX file descriptor or Win32 handle is refused here, with the reason logged.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; the list of areas is in stub.h.
 */
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

CUresult tfs_cuMemMap(CUdeviceptr_v2 ptr, size_t size, size_t offset, CUmemGenericAllocationHandle_v1 handle,
                      unsigned long long flags)
{
    NEED_INIT();
    CUresult rc = rpc_cuMemMap(ptr, size, offset, handle, flags);
    if (rc == CUDA_SUCCESS) tf_devmap_add(ptr, size);
    return rc;
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

static CUresult refuse_handle_type(const char *call, CUmemAllocationHandleType t)
{
    static int logged;
    if (!__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED))
        tf_log("%s: handle type %d is a descriptor of the GPU host's process and cannot reach this one; "
               "only CU_MEM_HANDLE_TYPE_FABRIC travels through the remote stub", call, (int)t);
    return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult tfs_cuMemExportToShareableHandle(void *shareableHandle, CUmemGenericAllocationHandle_v1 handle,
                                          CUmemAllocationHandleType handleType, unsigned long long flags)
{
    NEED_INIT();
    if (!shareableHandle) return CUDA_ERROR_INVALID_VALUE;
    if (handleType != CU_MEM_HANDLE_TYPE_FABRIC) return refuse_handle_type("cuMemExportToShareableHandle", handleType);
    return rpc_cuMemExportToShareableHandle(shareableHandle, handle, handleType, flags);
}

CUresult tfs_cuMemImportFromShareableHandle(CUmemGenericAllocationHandle_v1 *handle, void *osHandle,
                                            CUmemAllocationHandleType shHandleType)
{
    NEED_INIT();
    if (!handle || !osHandle) return CUDA_ERROR_INVALID_VALUE;
    if (shHandleType != CU_MEM_HANDLE_TYPE_FABRIC)
        return refuse_handle_type("cuMemImportFromShareableHandle", shHandleType);
    return rpc_cuMemImportFromShareableHandle(handle, osHandle, shHandleType);
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

/* A prefetch is stream-ordered (queued, no reply), but CUDA refuses a range that is not memory of the
 * context at the call: checked here against the device map (managed regions are in it). */
static int range_known(CUdeviceptr p, size_t n)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    return n && tf_devmap_find(p, &base, &size) && p - base <= size && n <= size - (p - base);
}

CUresult tfs_cuMemPrefetchAsync(CUdeviceptr_v2 devPtr, size_t count, CUdevice_v1 dstDevice, CUstream hStream)
{
    NEED_INIT();
    if (!range_known(devPtr, count)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_cuMemPrefetchAsync(devPtr, count, dstDevice, hStream);
}

CUresult tfs_cuMemPrefetchAsync_v2(CUdeviceptr_v2 devPtr, size_t count, CUmemLocation_v1 location, unsigned int flags,
                                   CUstream hStream)
{
    NEED_INIT();
    if (!range_known(devPtr, count)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_cuMemPrefetchAsync_v2(devPtr, count, location, flags, hStream);
}
