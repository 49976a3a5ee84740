/* api_memory.c - the client stub's hand-written entry points for device, managed and pinned host memory, pointer
 * attributes.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
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
 * registered at the same address A (tfMemAllocAt*), which the device addresses as A (unified addressing),
 * so one pointer works on both sides.
 * Same host (the shared-memory window is on): the memory is a memfd both processes map (tfMemAllocAtFd),
 * so host and device touch the same bytes - no copies, and host and device atomics on it are atomic with
 * each other (atomicAdd_system next to __sync_fetch_and_add), as on a GPU with hostNativeAtomicSupported.
 * Otherwise (TCP, TF_SHM=0) the two copies are kept coherent by whole-region copies where CUDA hands
 * memory between host and device: before a forwarded call, regions the host owns are pushed and the
 * device owns them (a snapshot of what was pushed is kept); after a synchronous call returns, regions the
 * device owns are pulled back and merged byte by byte: a byte the device changed since the push takes the
 * device's value, any other keeps the host's (which the host may have written meanwhile: host and device
 * writing different bytes between two sync points both survive). The same byte written by both sides is a
 * race in CUDA too; system-wide atomics need the same-host path. Correct, not fast: every synchronous call
 * moves every copied region, so programs that care about speed use device memory. */
#define TF_MAX_MANAGED 256
typedef struct {
    CUdeviceptr base;
    size_t size;       /* page-rounded */
    size_t asked;      /* the bytesize of cuMemAllocManaged */
    int device_owns;
    int shared;        /* memfd mapped by both processes: never copied */
    uint8_t *pushed;   /* the bytes last pushed (valid while the device owns the region) */
    uint8_t *scratch;  /* where a pull lands before the merge; both kept for the region's life */
} managed_region;
static managed_region g_managed[TF_MAX_MANAGED];
static int g_nmanaged, g_ncopied;
static pthread_mutex_t g_managed_mu = PTHREAD_MUTEX_INITIALIZER;

int tf_managed_active(void) { return __atomic_load_n(&g_ncopied, __ATOMIC_RELAXED) > 0; }

/* Pulls a device-owned region: device bytes that differ from what was pushed win, the rest stay the host's. */
static CUresult managed_pull(managed_region *m)
{
    if (!m->pushed || !m->scratch) return tfs_cuMemcpyDtoH_v2((void *)(uintptr_t)m->base, m->base, m->size);
    uint8_t *dev = m->scratch;
    CUresult rc = tfs_cuMemcpyDtoH_v2(dev, m->base, m->size);
    if (rc == CUDA_SUCCESS) {
        uint8_t *host = (uint8_t *)(uintptr_t)m->base;
        for (size_t off = 0; off < m->size; off += 64) {
            size_t k = m->size - off < 64 ? m->size - off : 64;
            if (memcmp(dev + off, m->pushed + off, k) == 0) continue;   /* the device left this block alone */
            for (size_t i = off; i < off + k; i++)
                if (dev[i] != m->pushed[i]) host[i] = dev[i];
        }
    }
    return rc;
}

/* Moves every copied region owned by the other side to `to_device`'s side (tfc_sync/tfc_async call this). */
CUresult tf_managed_sync(int to_device)
{
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&g_managed_mu);
    for (int i = 0; i < g_nmanaged && rc == CUDA_SUCCESS; i++) {
        managed_region *m = &g_managed[i];
        if (m->shared || m->device_owns == to_device) continue;
        if (to_device) {
            if (!m->pushed) m->pushed = malloc(m->size);   /* without a snapshot the pull is device-wins */
            if (!m->scratch) m->scratch = malloc(m->size);
            if (m->pushed) memcpy(m->pushed, (const void *)(uintptr_t)m->base, m->size);
            rc = tfs_cuMemcpyHtoD_v2(m->base, m->pushed ? m->pushed : (const void *)(uintptr_t)m->base, m->size);
        } else {
            rc = managed_pull(m);
        }
        if (rc == CUDA_SUCCESS) m->device_owns = to_device;
    }
    pthread_mutex_unlock(&g_managed_mu);
    return rc;
}

/* Same host: a sealed memfd mapped here and, at the same address, by the worker. Not CUDA_SUCCESS (*host unset)
 * when the worker cannot take it; the caller then makes private memory. */
static CUresult managed_alloc_shared(void **host, size_t size, CUdeviceptr *got)
{
    int fd = memfd_create("tf-managed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return CUDA_ERROR_NOT_SUPPORTED;
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    tfc_call c;
    CUresult rc = enc_tfMemAllocAtFd(&c, got, (unsigned long long)(uintptr_t)p, size);
    if (rc == CUDA_SUCCESS) rc = tfc_sync_fd(&c, fd);
    close(fd);
    if (rc == CUDA_SUCCESS && *got != (CUdeviceptr)(uintptr_t)p) {   /* the worker could not use A */
        rpc_tfMemFreeAt(*got);
        rc = CUDA_ERROR_NOT_SUPPORTED;
    }
    if (rc != CUDA_SUCCESS) munmap(p, size);
    else *host = p;
    return rc;
}

CUresult tfs_cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    NEED_INIT();
    if (!dptr || !bytesize || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), size = (bytesize + page - 1) / page * page;
    /* no lock held across the calls: every forwarded call takes g_managed_mu to push/pull regions */
    CUdeviceptr got = 0;
    void *host = NULL;
    int shared = tf_same_host_shm();
    CUresult rc = shared ? managed_alloc_shared(&host, size, &got) : CUDA_ERROR_NOT_SUPPORTED;
    if (rc == CUDA_ERROR_OUT_OF_MEMORY) return rc;
    if (rc != CUDA_SUCCESS) {
        if (shared) tf_debug("managed memory: the worker did not map a shared region (%d); copies keep it coherent", rc);
        shared = 0;
        host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (host == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
        rc = rpc_tfMemAllocAt(&got, (unsigned long long)(uintptr_t)host, size);
        if (rc == CUDA_SUCCESS && got != (CUdeviceptr)(uintptr_t)host) {   /* the worker could not use A */
            rpc_tfMemFreeAt(got);
            rc = CUDA_ERROR_NOT_SUPPORTED;
        }
        if (rc != CUDA_SUCCESS) {
            munmap(host, size);
            if (rc == CUDA_ERROR_NOT_SUPPORTED) tf_log("managed memory: the worker cannot map %zu bytes at %p", size, host);
            return rc;
        }
    }
    pthread_mutex_lock(&g_managed_mu);
    int added = g_nmanaged < TF_MAX_MANAGED;
    if (added) {
        g_managed[g_nmanaged++] = (managed_region){got, size, bytesize, 0, shared, NULL, NULL};
        if (!shared) __atomic_add_fetch(&g_ncopied, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&g_managed_mu);
    if (!added) {
        rpc_tfMemFreeAt(got);
        munmap(host, size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    tf_devmap_add(got, size);
    *dptr = got;
    return CUDA_SUCCESS;
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

/* cuStreamAttachMemAsync: dptr in a managed allocation, length 0 or the whole allocation, flags one of
 * CUmemAttach_flags (SINGLE not on the NULL / legacy / per-thread stream), a live stream. The association
 * itself changes nothing here: coherence moves whole regions at every call. */
CUresult tfs_cuStreamAttachMemAsync(CUstream hStream, CUdeviceptr dptr, size_t length, unsigned int flags)
{
    NEED_INIT();
    if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST && flags != CU_MEM_ATTACH_SINGLE)
        return CUDA_ERROR_INVALID_VALUE;
    int global_stream = hStream == NULL || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD;
    if (flags == CU_MEM_ATTACH_SINGLE && global_stream) return CUDA_ERROR_INVALID_VALUE;
    int ok = 0;
    pthread_mutex_lock(&g_managed_mu);
    for (int i = 0; i < g_nmanaged && !ok; i++) {
        managed_region *m = &g_managed[i];
        ok = dptr >= m->base && dptr - m->base < m->asked && (length == 0 || (dptr == m->base && length == m->asked));
    }
    pthread_mutex_unlock(&g_managed_mu);
    if (!ok) return CUDA_ERROR_INVALID_VALUE;   /* not managed memory, or a part of an allocation */
    if (global_stream) return CUDA_SUCCESS;
    unsigned int sflags;
    return rpc_cuStreamGetFlags(hStream, &sflags);   /* a stream the worker knows (else INVALID_HANDLE) */
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
    if (!m.shared) __atomic_sub_fetch(&g_ncopied, 1, __ATOMIC_RELAXED);
    free(m.pushed);
    free(m.scratch);
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
