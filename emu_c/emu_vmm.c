/* emu_vmm.c - the CUDA virtual memory management API on the emulated device: cuMemAddressReserve
 * reserves host address space (PROT_NONE), cuMemCreate makes a "physical" allocation (a memfd, charged
 * to device memory like cuMemAlloc), cuMemMap maps it into a reservation (MAP_FIXED|MAP_SHARED, so
 * several mappings of one handle alias), cuMemUnmap / cuMemRelease / cuMemAddressFree undo that.
 * Mapped ranges join the allocation table, so copies and kernels may use them as device memory.
 * cuMemExportToShareableHandle gives the memfd as a POSIX file descriptor (CU_MEM_HANDLE_TYPE_POSIX_
 * FILE_DESCRIPTOR, if cuMemCreate asked for it); cuMemImportFromShareableHandle turns such a
 * descriptor - in this process, or passed to another one on this host (SCM_RIGHTS, inheritance,
 * pidfd_getfd) - back into an allocation handle whose mappings alias the exporter's memory.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu_internal.h"

#define EMU_VMM_GRANULARITY ((size_t)2 << 20) /* what GPUs report for CU_MEM_ALLOC_GRANULARITY_* */
#define EMU_VMM_MEMFD "tf-emu-vmm"

/* ---- POSIX-fd shareable handles, one mechanism for VMM allocations (below) and IPC memory pools
 * (emu_mempool.c): the export is a new descriptor of the object's memfd, the import takes a descriptor -
 * of this process, or received from another one - of a memfd this driver made with that name (the kernel
 * keeps the name across SCM_RIGHTS), so a descriptor of anything else, or of the other kind of object,
 * is refused. */
CUresult emu_shareable_export(int fd, void *out)
{
    int copy = dup(fd); /* the caller owns (and closes, or passes on) its own descriptor */
    if (copy < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *(int *)out = copy;
    return CUDA_SUCCESS;
}

CUresult emu_shareable_import(void *osHandle, CUmemAllocationHandleType type, const char *memfd_name, int *fd_out,
                              struct stat *st)
{
    if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return CUDA_ERROR_NOT_SUPPORTED; /* Win32 and fabric handles do not exist here */
    int src = (int)(intptr_t)osHandle; /* the descriptor itself, passed as a pointer-sized value */
    char link[64], want[64], path[40];
    snprintf(path, sizeof path, "/proc/self/fd/%d", src);
    int wn = snprintf(want, sizeof want, "/memfd:%s (deleted)", memfd_name);
    ssize_t n = src < 0 ? -1 : readlink(path, link, sizeof link);
    if (src < 0 || fstat(src, st) != 0 || !S_ISREG(st->st_mode) || st->st_size <= 0 || n != wn ||
        memcmp(link, want, (size_t)n) != 0)
        return CUDA_ERROR_INVALID_VALUE; /* not a descriptor this driver exported (for this kind of object) */
    int fd = fcntl(src, F_DUPFD_CLOEXEC, 0); /* the caller may close its descriptor after the import */
    if (fd < 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *fd_out = fd;
    return CUDA_SUCCESS;
}

typedef struct vmm_handle {
    int fd;
    int imported; /* from cuMemImportFromShareableHandle: the exporter's memory, not charged again */
    size_t size;
    int refs; /* the handle itself + one per mapping */
    CUmemAllocationProp prop;
} vmm_handle;

typedef struct vmm_map {
    uint64_t ptr;
    size_t size;
    vmm_handle *h;
    struct vmm_map *next;
} vmm_map;

typedef struct vmm_reserve {
    uint64_t ptr;
    size_t size;
    void *raw; /* the over-sized mmap that provides the alignment */
    size_t raw_size;
    struct vmm_reserve *next;
} vmm_reserve;

static vmm_map *g_maps;
static vmm_reserve *g_reserves;

static void handle_unref(vmm_handle *h)
{
    if (--h->refs > 0)
        return;
    close(h->fd);
    if (!h->imported)
        emu_vram_uncharge_dev(h->prop.location.id, h->size);
    emu_handle_del(h);
    free(h);
}

static int prop_ok(const CUmemAllocationProp *prop)
{
    return prop && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED && emu_location_is_device(&prop->location);
}

EMU_API CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                               CUmemAllocationGranularity_flags option)
{
    (void)option;
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!granularity || !prop_ok(prop))
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = EMU_VMM_GRANULARITY;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                     unsigned long long flags)
{
    (void)addr; /* a hint only */
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!ptr || size == 0 || size % EMU_VMM_GRANULARITY || flags || (alignment & (alignment - 1)))
        return CUDA_ERROR_INVALID_VALUE;
    size_t align = alignment > EMU_VMM_GRANULARITY ? alignment : EMU_VMM_GRANULARITY;
    size_t raw_size = size + align;
    if (raw_size < size)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *raw = mmap(NULL, raw_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    vmm_reserve *r = calloc(1, sizeof(*r));
    if (!r) {
        munmap(raw, raw_size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    r->raw = raw;
    r->raw_size = raw_size;
    r->ptr = ((uint64_t)(uintptr_t)raw + align - 1) & ~(uint64_t)(align - 1);
    r->size = size;
    emu_lock();
    r->next = g_reserves;
    g_reserves = r;
    emu_unlock();
    *ptr = (CUdeviceptr)r->ptr;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    emu_lock();
    for (vmm_reserve **link = &g_reserves; *link; link = &(*link)->next) {
        vmm_reserve *r = *link;
        if (r->ptr != ptr || r->size != size)
            continue;
        for (vmm_map *m = g_maps; m; m = m->next) {
            if (m->ptr >= r->ptr && m->ptr < r->ptr + r->size) {
                emu_unlock();
                return CUDA_ERROR_INVALID_VALUE; /* still mapped: unmap first */
            }
        }
        *link = r->next;
        emu_unlock();
        munmap(r->raw, r->raw_size);
        free(r);
        return CUDA_SUCCESS;
    }
    emu_unlock();
    return CUDA_ERROR_INVALID_VALUE;
}

EMU_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                             unsigned long long flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!handle || size == 0 || size % EMU_VMM_GRANULARITY || flags || !prop_ok(prop))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_vram_charge_dev(prop->location.id, size) != CUDA_SUCCESS) /* the device it is made on */
        return CUDA_ERROR_OUT_OF_MEMORY;
    vmm_handle *h = calloc(1, sizeof(*h));
    int fd = memfd_create(EMU_VMM_MEMFD, MFD_CLOEXEC);
    if (!h || fd < 0 || ftruncate(fd, (off_t)size) != 0 || emu_handle_add(h, EMU_K_VMM)) {
        if (fd >= 0)
            close(fd);
        free(h);
        emu_vram_uncharge_dev(prop->location.id, size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    h->fd = fd;
    h->size = size;
    h->refs = 1;
    h->prop = *prop;
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)h;
    return CUDA_SUCCESS;
}

static vmm_handle *handle_of(CUmemGenericAllocationHandle handle)
{
    void *p = (void *)(uintptr_t)handle;
    return emu_handle_is(p, EMU_K_VMM) ? (vmm_handle *)p : NULL;
}

EMU_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    emu_lock();
    vmm_handle *h = handle_of(handle);
    if (!h) {
        emu_unlock();
        return CUDA_ERROR_INVALID_VALUE;
    }
    handle_unref(h); /* physical memory lives on while mapped */
    emu_unlock();
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop, CUmemGenericAllocationHandle handle)
{
    vmm_handle *h = handle_of(handle);
    if (!prop || !h)
        return CUDA_ERROR_INVALID_VALUE;
    *prop = h->prop;
    return CUDA_SUCCESS;
}

static int in_reservation(uint64_t ptr, size_t size)
{
    for (vmm_reserve *r = g_reserves; r; r = r->next)
        if (ptr >= r->ptr && ptr + size <= r->ptr + r->size)
            return 1;
    return 0;
}

EMU_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                          unsigned long long flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (flags || size == 0 || ptr % EMU_VMM_GRANULARITY || size % EMU_VMM_GRANULARITY || offset % EMU_VMM_GRANULARITY)
        return CUDA_ERROR_INVALID_VALUE;
    emu_lock();
    vmm_handle *h = handle_of(handle);
    vmm_map *m = calloc(1, sizeof(*m));
    if (!h || !m || offset > h->size || size > h->size - offset || !in_reservation(ptr, size) ||
        emu_mem_find(ptr, NULL, NULL, NULL, NULL) || emu_mem_find(ptr + size - 1, NULL, NULL, NULL, NULL)) {
        emu_unlock();
        free(m);
        return h && m ? CUDA_ERROR_INVALID_VALUE : !m ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_HANDLE;
    }
    void *p = mmap((void *)(uintptr_t)ptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, h->fd, (off_t)offset);
    if (p == MAP_FAILED || emu_mem_add_dev(ptr, size, EMU_MEM_VMM, 0, h->prop.location.id) != 0) {
        if (p != MAP_FAILED)
            mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        emu_unlock();
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    m->ptr = ptr;
    m->size = size;
    m->h = h;
    h->refs++;
    m->next = g_maps;
    g_maps = m;
    emu_unlock();
    return CUDA_SUCCESS;
}

static vmm_map **map_at(uint64_t ptr) /* the link to the mapping that starts at ptr, else NULL; lock held */
{
    for (vmm_map **link = &g_maps; *link; link = &(*link)->next)
        if ((*link)->ptr == ptr)
            return link;
    return NULL;
}

/* CUDA: the range must be whole mappings (cuMemUnmap cannot unmap part of one), possibly several adjacent
 * ones (vectorAddMMAP maps one stripe per device side by side and unmaps them in one call). */
EMU_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (size == 0 || ptr + size < ptr)
        return CUDA_ERROR_INVALID_VALUE;
    emu_sq_idle_all(); /* queued work may still use the range (emu_stream_queue.c) */
    emu_lock();
    uint64_t a = ptr;
    for (vmm_map **link; a < ptr + size && (link = map_at(a)) != NULL;)
        a += (*link)->size;
    if (a != ptr + size) {
        emu_unlock();
        return CUDA_ERROR_INVALID_VALUE;
    }
    for (a = ptr; a < ptr + size;) {
        vmm_map **link = map_at(a), *m = *link;
        *link = m->next;
        emu_mem_remove(m->ptr, NULL, NULL);
        /* back to reserved-but-inaccessible address space */
        mmap((void *)(uintptr_t)m->ptr, m->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
             -1, 0);
        a += m->size;
        handle_unref(m->h);
        free(m);
    }
    emu_unlock();
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!desc || count == 0 || size == 0 || ptr + size < ptr)
        return CUDA_ERROR_INVALID_VALUE;
    for (uint64_t a = ptr; a < ptr + size; a += EMU_VMM_GRANULARITY) /* may span several mappings */
        if (!emu_mem_check(a, 1))
            return CUDA_ERROR_INVALID_VALUE;
    /* mappings are read-write from the start, for every device: nothing to grant once the list is valid */
    return emu_access_list_check(desc, count, EMU_ACCESS_FLAG(CU_MEM_ACCESS_FLAGS_PROT_NONE) |
                                                  EMU_ACCESS_FLAG(CU_MEM_ACCESS_FLAGS_PROT_READ) |
                                                  EMU_ACCESS_FLAG(CU_MEM_ACCESS_FLAGS_PROT_READWRITE),
                                 CUDA_ERROR_INVALID_DEVICE);
}

EMU_API CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location, CUdeviceptr ptr)
{
    if (!flags || !location)
        return CUDA_ERROR_INVALID_VALUE;
    *flags = emu_mem_check(ptr, 1) && emu_location_is_device(location)
                 ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                 : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    if (!handle)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t a = (uint64_t)(uintptr_t)addr;
    emu_lock();
    for (vmm_map *m = g_maps; m; m = m->next) {
        if (a >= m->ptr && a < m->ptr + m->size) {
            m->h->refs++;
            *handle = (CUmemGenericAllocationHandle)(uintptr_t)m->h;
            emu_unlock();
            return CUDA_SUCCESS;
        }
    }
    emu_unlock();
    return CUDA_ERROR_INVALID_VALUE;
}

EMU_API CUresult cuMemExportToShareableHandle(void *shareableHandle, CUmemGenericAllocationHandle handle,
                                              CUmemAllocationHandleType handleType, unsigned long long flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!shareableHandle || flags)
        return CUDA_ERROR_INVALID_VALUE;
    if (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return CUDA_ERROR_NOT_SUPPORTED; /* Win32 and fabric handles do not exist here */
    emu_lock();
    vmm_handle *h = handle_of(handle);
    if (!h || !(h->prop.requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)) {
        emu_unlock();
        return CUDA_ERROR_INVALID_VALUE; /* as the driver: the type must have been requested at creation */
    }
    rc = emu_shareable_export(h->fd, shareableHandle);
    emu_unlock();
    return rc;
}

EMU_API CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle, void *osHandle,
                                                CUmemAllocationHandleType shHandleType)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!handle)
        return CUDA_ERROR_INVALID_VALUE;
    int fd = -1;
    struct stat st;
    rc = emu_shareable_import(osHandle, shHandleType, EMU_VMM_MEMFD, &fd, &st);
    if (rc)
        return rc;
    vmm_handle *h = NULL;
    if ((size_t)st.st_size % EMU_VMM_GRANULARITY)
        rc = CUDA_ERROR_INVALID_VALUE;
    else if (!(h = calloc(1, sizeof(*h))) || emu_handle_add(h, EMU_K_VMM))
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        close(fd);
        free(h);
        return rc;
    }
    h->fd = fd;
    h->imported = 1;
    h->size = (size_t)st.st_size;
    h->refs = 1;
    h->prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    h->prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    h->prop.location.id = 0;
    h->prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)h;
    return CUDA_SUCCESS;
}
