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
    CUcontext ctx;     /* the context it was made in: it dies with it (tf_memory_ctx_ended) */
} managed_region;
static managed_region g_managed[TF_MAX_MANAGED];
static int g_nmanaged, g_ncopied;
static pthread_mutex_t g_managed_mu = PTHREAD_MUTEX_INITIALIZER;
/* regions of a context being destroyed or reset, out of g_managed until the call's outcome (tf_memory_ctx_ending);
 * g_nleaving changes under both locks: g_managed_mu keeps room for them in g_managed */
static managed_region g_leaving[TF_MAX_MANAGED];   /* g_ctx_end_mu */
static int g_nleaving;
static pthread_mutex_t g_ctx_end_mu = PTHREAD_MUTEX_INITIALIZER;

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
    int added = g_nmanaged + g_nleaving < TF_MAX_MANAGED;   /* room for regions back from a failed context end */
    if (added) {
        g_managed[g_nmanaged++] = (managed_region){got, size, bytesize, 0, shared, NULL, NULL, tf_ctx_current()};
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

/* Takes region i out of the list (g_managed_mu held) into *m, its copies freed. */
static void managed_take(int i, managed_region *m)
{
    *m = g_managed[i];
    g_managed[i] = g_managed[--g_nmanaged];
    if (!m->shared) __atomic_sub_fetch(&g_ncopied, 1, __ATOMIC_RELAXED);
    free(m->pushed);
    free(m->scratch);
}

/* This side of a region taken out of the list: its address ranges and this process's memory. */
static void managed_forget(const managed_region *m)
{
    tf_devmap_del(m->base);
    tf_managed_hints_forget(m->base);
    munmap((void *)(uintptr_t)m->base, m->size);
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
    managed_region m;
    managed_take(i, &m);
    pthread_mutex_unlock(&g_managed_mu);
    *rc = rpc_tfMemFreeAt(dptr);
    managed_forget(&m);
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
    if (rc == CUDA_SUCCESS && dptr) tf_devmap_add_on(*dptr, bytesize, tf_stream_device(hStream));
    return rc;
}

CUresult tfs_cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream)
{
    CUresult rc = rpc_cuMemAllocFromPoolAsync(dptr, bytesize, pool, hStream);
    if (rc == CUDA_SUCCESS && dptr) tf_devmap_add_on(*dptr, bytesize, tf_pool_device(pool));
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
/* Pinned host memory is client memory. On a GPU with unified addressing every page-locked allocation is
 * also device memory at the same address (cuMemHostGetDevicePointer answers the host pointer), and kernels
 * read and write it while the host does (flags, latches, zero-copy buffers). Same host (the shared-memory
 * window is on): a cuMemHostAlloc block is a sealed memfd mapped here and, at the same address, registered
 * by the GPU worker process (tfMemAllocAtFd, as for managed memory), so both sides touch the same bytes.
 * cuMemHostRegister does the same to the pages around the caller's range: their contents move into a memfd
 * mapped over them (MAP_FIXED) and the worker maps that memfd; cuMemHostUnregister turns them back into
 * private memory with the same contents (bytes of other objects on those pages keep their values). A range
 * whose pages another mapped registration already uses stays unmapped, as does everything over TCP or
 * with TF_SHM=0: there the device cannot see client memory, CAN_MAP_HOST_MEMORY reads 0 and
 * cuMemHostGetDevicePointer answers CUDA_ERROR_NOT_SUPPORTED with a reason. What the worker maps it pins on
 * the GPU host, so it counts against the session's VRAM cap (limiter_c/README.md); a block the worker
 * refuses (over the cap: CUDA_ERROR_OUT_OF_MEMORY) stays client memory, unmapped, as over TCP: the
 * allocation or registration still succeeds, as it does locally where pinned memory is not charged. Cost: one memfd and one round
 * trip per allocation or registration. A child forked without exec shares mapped pages with its parent
 * (MAP_SHARED), and another thread writing to those pages while they are swapped may lose that write.
 * Each block belongs to the context current at its allocation or registration (its pointer attributes
 * answer that context and its device) and ends with it, as the driver frees it: an allocated block is
 * unmapped, a registered range turns back into private memory, and neither is known any longer. */
static pthread_mutex_t g_host_mu = PTHREAD_MUTEX_INITIALIZER;
typedef struct host_block {
    void *p;
    size_t n;
    unsigned flags;
    int registered;   /* cuMemHostRegister (the caller's memory), else cuMemHostAlloc (ours) */
    void *map_base;   /* the whole pages around [p, p+n) the worker maps at the same address ... */
    size_t mapped;    /* ... and their length, 0 if none */
    CUcontext ctx;    /* the context current when it was made: the block (and the worker's mapping) ends with it */
    int dev;          /* that context's device (CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) */
    struct host_block *next;
} host_block;
static host_block *g_host;

static host_block *host_find(const void *p)
{
    for (host_block *b = g_host; b; b = b->next)
        if ((const uint8_t *)p >= (uint8_t *)b->p && (const uint8_t *)p < (uint8_t *)b->p + b->n) return b;
    return NULL;
}

static void host_add(host_block *b)
{
    pthread_mutex_lock(&g_host_mu);
    b->next = g_host;
    g_host = b;
    pthread_mutex_unlock(&g_host_mu);
}

/* Takes the block starting at p of the given kind out of the list; NULL if there is none. */
static host_block *host_take(const void *p, int registered)
{
    host_block *b = NULL;
    pthread_mutex_lock(&g_host_mu);
    for (host_block **pb = &g_host; *pb; pb = &(*pb)->next) {
        if ((*pb)->p == p && (*pb)->registered == registered) {
            b = *pb;
            *pb = b->next;
            break;
        }
    }
    pthread_mutex_unlock(&g_host_mu);
    return b;
}

int tf_host_pinned(const void *p, size_t n)
{
    pthread_mutex_lock(&g_host_mu);
    host_block *b = host_find(p);
    int kind = !b || n > (size_t)((uint8_t *)b->p + b->n - (const uint8_t *)p) ? TF_HOST_PAGEABLE
             : b->mapped ? TF_HOST_PINNED_MAPPED : TF_HOST_PINNED;
    pthread_mutex_unlock(&g_host_mu);
    return kind;
}

static size_t host_pages(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

static int pages_private_again(void *a, size_t len);

/* Ends a block taken out of the list: the worker's mapping first (worker_maps: it has not dropped it with the
 * block's context), then an allocation's pages are unmapped, a registration's become private pages again. */
static CUresult host_release(host_block *b, int worker_maps)
{
    tf_deferred_forget(b->p, b->n);
    CUresult rc = CUDA_SUCCESS;
    if (b->mapped && worker_maps) rc = rpc_tfMemFreeAt((CUdeviceptr)(uintptr_t)b->map_base);
    if (!b->registered) munmap(b->p, b->mapped ? b->mapped : host_pages(b->n));
    else if (b->mapped && pages_private_again(b->map_base, b->mapped)) rc = CUDA_ERROR_OPERATING_SYSTEM;
    free(b);
    return rc;
}

CUresult tfs_cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    NEED_INIT();
    if (!pp || bytesize == 0 ||
        (Flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED)))
        return CUDA_ERROR_INVALID_VALUE;
    host_block *b = calloc(1, sizeof *b);
    if (!b) return CUDA_ERROR_OUT_OF_MEMORY;
    size_t size = host_pages(bytesize);
    if (tf_same_host_shm()) {
        CUdeviceptr got = 0;
        CUresult rc = managed_alloc_shared(&b->p, size, &got);
        if (rc == CUDA_SUCCESS) b->map_base = b->p, b->mapped = size;
        else tf_debug("pinned memory: the worker did not map %zu bytes (%d); the device cannot reach them", size, rc);
    }
    if (!b->mapped) {   /* pages of our own: unmapped when freed, as a driver unmaps pinned memory */
        b->p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b->p == MAP_FAILED) {
            free(b);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    b->n = bytesize;
    b->flags = Flags;
    b->ctx = tf_ctx_current();
    b->dev = tf_current_device();
    host_add(b);
    *pp = b->p;
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemAllocHost_v2(void **pp, size_t bytesize) { return tfs_cuMemHostAlloc(pp, bytesize, 0); }

CUresult tfs_cuMemFreeHost(void *p)
{
    NEED_INIT();
    if (!p) return CUDA_SUCCESS;  /* free(NULL): NVIDIA's driver answers success (cudaFreeHost(NULL) sends it) */
    host_block *b = host_take(p, 0);
    return b ? host_release(b, 1) : CUDA_ERROR_INVALID_VALUE;
}

/* Private anonymous pages with the current contents at [a, a+len) (what a registration's memfd replaced).
 * The copy in between is a mapping of its own, never heap memory: the heap may own [a, a+len) itself (a
 * registered std::vector), and a malloc'd copy could then lie inside the range it saves. */
static int pages_private_again(void *a, size_t len)
{
    void *tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (tmp == MAP_FAILED) return -1;
    memcpy(tmp, a, len);
    void *q = mmap(a, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (q != MAP_FAILED) memcpy(a, tmp, len);
    munmap(tmp, len);
    return q == MAP_FAILED ? -1 : 0;
}

/* Moves the caller's pages [a, a+len) into a sealed memfd mapped over them and has the worker map it at
 * the same address. CUDA_SUCCESS, or the pages are as they were. */
static CUresult pages_shared(void *a, size_t len)
{
    int fd = memfd_create("tf-registered", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return CUDA_ERROR_NOT_SUPPORTED;
    size_t done = 0;
    if (ftruncate(fd, (off_t)len) == 0)
        while (done < len) {
            ssize_t k = pwrite(fd, (uint8_t *)a + done, len - done, (off_t)done);
            if (k <= 0) break;
            done += (size_t)k;
        }
    if (done < len || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
        mmap(a, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        close(fd);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    tfc_call c;
    CUdeviceptr got = 0;
    CUresult rc = enc_tfMemAllocAtFd(&c, &got, (unsigned long long)(uintptr_t)a, len);
    if (rc == CUDA_SUCCESS) rc = tfc_sync_fd(&c, fd);
    close(fd);
    if (rc == CUDA_SUCCESS && got != (CUdeviceptr)(uintptr_t)a) {
        rpc_tfMemFreeAt(got);
        rc = CUDA_ERROR_NOT_SUPPORTED;
    }
    if (rc != CUDA_SUCCESS && pages_private_again(a, len)) return CUDA_ERROR_OPERATING_SYSTEM;
    return rc;
}

CUresult tfs_cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    NEED_INIT();
    if (!p || bytesize == 0 || (Flags & ~(unsigned)(CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                                                    CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY)))
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_host_mu);
    int overlap = 0;
    for (host_block *b = g_host; b && !overlap; b = b->next)
        overlap = (uint8_t *)p < (uint8_t *)b->p + b->n && (uint8_t *)b->p < (uint8_t *)p + bytesize;
    pthread_mutex_unlock(&g_host_mu);
    if (overlap) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    host_block *b = calloc(1, sizeof *b);
    if (!b) return CUDA_ERROR_OUT_OF_MEMORY;
    *b = (host_block){.p = p, .n = bytesize, .flags = Flags, .registered = 1, .ctx = tf_ctx_current(),
                      .dev = tf_current_device()};
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *a = (uint8_t *)((uintptr_t)p / page * page);
    uint8_t *e = (uint8_t *)(((uintptr_t)p + bytesize + page - 1) / page * page);
    pthread_mutex_lock(&g_host_mu);   /* held to the end: no other registration may take these pages meanwhile */
    int pages_taken = 0;
    for (host_block *o = g_host; o && !pages_taken; o = o->next)
        pages_taken = o->mapped && a < (uint8_t *)o->map_base + o->mapped && (uint8_t *)o->map_base < e;
    if (tf_same_host_shm() && !pages_taken && !(Flags & (CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY))) {
        CUresult rc = pages_shared(a, (size_t)(e - a));
        if (rc == CUDA_ERROR_OPERATING_SYSTEM) {
            pthread_mutex_unlock(&g_host_mu);
            free(b);
            return rc;
        }
        if (rc == CUDA_SUCCESS) b->map_base = a, b->mapped = (size_t)(e - a);
        else tf_debug("registered memory: the worker did not map %zu bytes at %p (%d)", (size_t)(e - a), (void *)a, rc);
    }
    b->next = g_host;
    g_host = b;
    pthread_mutex_unlock(&g_host_mu);
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemHostUnregister(void *p)
{
    NEED_INIT();
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    host_block *b = host_take(p, 1);
    return b ? host_release(b, 1) : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;   /* the memory stays the caller's */
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
    NEED_INIT();
    if (!pdptr || Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_host_mu);
    host_block *b = host_find(p);
    int known = b != NULL, mapped = b && b->mapped;
    pthread_mutex_unlock(&g_host_mu);
    if (!known) return CUDA_ERROR_INVALID_VALUE;   /* not page-locked memory */
    if (!mapped) {
        static int logged;
        if (!__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED))
            tf_log("cuMemHostGetDevicePointer: the device reaches page-locked memory of this process only when the "
                   "worker is on this host (unix: socket, TF_SHM on)");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    *pdptr = (CUdeviceptr)(uintptr_t)p;   /* unified addressing: the same address on both sides */
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------ pointer attributes */
static CUresult pointer_attr(void *data, CUpointer_attribute a, CUdeviceptr ptr, int lenient)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    int dev = tf_devmap_find(ptr, &base, &size);
    CUcontext owner_ctx = NULL;   /* the context and device it was allocated or registered in */
    int owner_dev = -1;
    if (dev) tf_devmap_owner(ptr, &owner_ctx, &owner_dev);
    pthread_mutex_lock(&g_host_mu);
    host_block *hb = dev ? NULL : host_find((void *)(uintptr_t)ptr);
    int hmapped = hb && hb->mapped;
    if (hb) { base = (CUdeviceptr)(uintptr_t)hb->p; size = hb->n; owner_ctx = hb->ctx; owner_dev = hb->dev; }
    pthread_mutex_unlock(&g_host_mu);
    if (!owner_ctx) owner_ctx = tf_ctx_current();   /* not recorded: the current one's */
    if (owner_dev < 0) owner_dev = tf_current_device();
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
    case CU_POINTER_ATTRIBUTE_CONTEXT: *(CUcontext *)data = owner_ctx; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: *(CUdeviceptr *)data = dev || hmapped ? ptr : 0; break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER: *(void **)data = dev ? NULL : (void *)(uintptr_t)ptr; break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *(int *)data = dev && tf_managed_range(ptr, 1, NULL); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data = owner_dev >= 0 ? owner_dev : 0; break;
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

/* ---- a context's end ----
 * cuCtxDestroy / cuDevicePrimaryCtxReset free what was allocated in the context, and the worker drops its
 * mappings of that context's managed and pinned memory (executor.c). Before the call, the context's managed
 * regions leave the list (no copy may touch them around the call: the device side is gone after it); after
 * it, they are forgotten and unmapped (their pointers are dead, as locally), or back in the list if the call
 * failed. So are the context's device allocations (the device map) and page-locked blocks (a later
 * cuMemFreeHost or cuMemHostUnregister of one is refused, as by the driver). */

void tf_memory_ctx_ending(CUcontext ctx)
{
    pthread_mutex_lock(&g_ctx_end_mu);
    pthread_mutex_lock(&g_managed_mu);
    for (int i = 0; ctx && i < g_nmanaged;) {
        if (g_managed[i].ctx != ctx) {
            i++;
            continue;
        }
        g_leaving[g_nleaving] = g_managed[i];   /* kept whole (its copies too) until the call's outcome */
        g_managed[i] = g_managed[--g_nmanaged];
        if (!g_leaving[g_nleaving].shared) __atomic_sub_fetch(&g_ncopied, 1, __ATOMIC_RELAXED);
        g_nleaving++;
    }
    pthread_mutex_unlock(&g_managed_mu);
}

void tf_memory_ctx_ended(CUcontext ctx, int gone)
{
    for (int i = 0; gone && i < g_nleaving; i++) {
        free(g_leaving[i].pushed);
        free(g_leaving[i].scratch);
        managed_forget(&g_leaving[i]);
    }
    pthread_mutex_lock(&g_managed_mu);
    for (int i = 0; !gone && i < g_nleaving; i++) {
        g_managed[g_nmanaged++] = g_leaving[i];
        if (!g_leaving[i].shared) __atomic_add_fetch(&g_ncopied, 1, __ATOMIC_RELAXED);
    }
    g_nleaving = 0;
    pthread_mutex_unlock(&g_managed_mu);
    pthread_mutex_unlock(&g_ctx_end_mu);
    if (gone && ctx) tf_devmap_ctx_gone(ctx);
    host_block *ended = NULL;
    pthread_mutex_lock(&g_host_mu);
    for (host_block **pb = &g_host; gone && ctx && *pb;) {
        host_block *b = *pb;
        if (b->ctx != ctx) {
            pb = &b->next;
            continue;
        }
        *pb = b->next;
        b->next = ended;
        ended = b;
    }
    pthread_mutex_unlock(&g_host_mu);
    while (ended) {
        host_block *b = ended;
        ended = b->next;
        host_release(b, 0);   /* the worker dropped its mappings with the context */
    }
}
