/* api_memory.c - the client stub's hand-written entry points for device, managed and pinned host memory, pointer
 * attributes.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stub.h"
#include "stub_calls.h"

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

int tf_managed_range(CUdeviceptr p, size_t n, CUdeviceptr *base)
{
    int found = 0;
    pthread_mutex_lock(&g_managed_mu);
    for (int i = 0; i < g_nmanaged && !found; i++) {
        managed_region *m = &g_managed[i];
        if (n && p >= m->base && p - m->base <= m->size && n <= m->size - (p - m->base)) {
            found = 1;
            if (base) *base = m->base;
        }
    }
    pthread_mutex_unlock(&g_managed_mu);
    return found;
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
    tf_managed_hints_forget(dptr);
    munmap((void *)(uintptr_t)m.base, m.size);
    return 1;
}

CUresult tfs_cuMemFree_v2(CUdeviceptr dptr)
{
    CUresult rc;
    NEED_INIT();
    if (dptr == 0) return CUDA_SUCCESS;  /* no operation, as the driver does (cudart's cudaFree(0) sends it) */
    if (managed_free(dptr, &rc)) return rc;
    if (tf_graph_mem_free(dptr, NULL, 0, &rc)) return rc;  /* graph memory (api_graph.c) */
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
    CUresult rc;
    if (tf_graph_mem_free(dptr, hStream, 1, &rc)) return rc;  /* graph memory (api_graph.c) */
    rc = rpc_cuMemFreeAsync(dptr, hStream);
    tf_devmap_del(dptr);
    return rc;
}

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
    if (!p) return CUDA_SUCCESS;  /* free(NULL): NVIDIA's driver answers success (cudaFreeHost(NULL) sends it) */
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
