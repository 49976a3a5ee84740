/* emu_mempool.c - memory pools of the emulated device: the default pool, created pools (cuMemPoolCreate,
 * attributes, access, cuDeviceSetMemPool) and cuMemAllocFromPoolAsync; cuMemAllocAsync / cuMemFreeAsync
 * are in emu_memory.c. A plain pool's allocations are ordinary device memory.
 *
 * IPC pools (CUmemPoolProps::handleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, what
 * CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES reports; NVIDIA's streamOrderedAllocationIPC): the pool
 * is one sparse memfd, the arena, ftruncated to the pool's reserve (maxSize, else the device's memory) and
 * mapped shared; its allocations are page-aligned extents of it (first fit; a free punches the pages out,
 * so they return to the system as a GPU pool trims). cuMemPoolExportToShareableHandle gives a descriptor
 * of the memfd (emu_vmm.c's mechanism, shared with VMM allocations: emu_shareable_export / _import);
 * cuMemPoolImportFromShareableHandle, in another process on this host, maps the same file. The pointer
 * export data (64 bytes) names the file (device and inode) and the extent (offset, size):
 * cuMemPoolImportPointer refuses data of another pool (CUDA_ERROR_INVALID_VALUE, which the sample relies
 * on to find each pool's pointer) and enters [its mapping + offset, + size) in the allocation table as
 * device memory that is not charged to this process (the exporter's), of the pool's device. Page 0 of the
 * arena is a header (magic, reserve, handle types, the pool's device) an importer checks and takes the device from
 * (the devices of both processes are the same parts in the same order). A pool destroyed with allocations or imports
 * outstanding lives on until the last one is freed, as cuMemPoolDestroy documents.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu_internal.h"

#define POOL_MEMFD "tf-emu-pool"
#define POOL_MAGIC "TFEMUPL2"
#define PTR_MAGIC "TFEMUPX1"

typedef struct { uint64_t off, size; } extent;

typedef struct emu_pool {
    int reuse[3];          /* CU_MEMPOOL_ATTR_REUSE_* (1..3), on by default */
    cuuint64_t threshold;  /* CU_MEMPOOL_ATTR_RELEASE_THRESHOLD */
    /* IPC pools only (fd >= 0); guarded by g_arena_mu */
    int fd;                /* the arena memfd */
    int imported;          /* from cuMemPoolImportFromShareableHandle: makes no allocations */
    unsigned handle_types; /* CUmemPoolProps::handleTypes, as its header says */
    uint64_t dev, ino;     /* the file's identity: pointer export data names it */
    uint8_t *base;         /* this process's mapping of the whole arena */
    size_t size;           /* arena bytes (the file's size) */
    size_t used;           /* bytes allocated (exporter) or imported */
    int refs;              /* the handle (until cuMemPoolDestroy) + one per allocation or import */
    extent *holes;         /* exporter: free extents, sorted by offset */
    size_t nholes, capholes;
    struct emu_pool *next;
    int owner;             /* the device it allocates on (CUmemPoolProps::location.id) */
    unsigned access;       /* other devices granted read-write access (cuMemPoolSetAccess), one bit each */
} emu_pool;

typedef struct {
    char magic[8];
    uint64_t size, handle_types;
    uint64_t device; /* the pool's device (CUmemPoolProps::location.id): an importer's pointers are that device's */
} arena_header;

typedef struct {
    char magic[8];
    uint64_t dev, ino, off, size;
    uint8_t pad[24];
} ptr_wire;
_Static_assert(sizeof(ptr_wire) == sizeof(CUmemPoolPtrExportData), "pointer export data is 64 bytes");

/* Each device's default pool (its address is the handle) and current pool (NULL: the default). */
#define DEFAULT_POOL(d) {.reuse = {1, 1, 1}, .fd = -1, .owner = (d)}
static emu_pool g_default_pool[EMU_MAX_DEVICES] = {DEFAULT_POOL(0), DEFAULT_POOL(1), DEFAULT_POOL(2), DEFAULT_POOL(3),
                                                   DEFAULT_POOL(4), DEFAULT_POOL(5), DEFAULT_POOL(6), DEFAULT_POOL(7)};
_Static_assert(EMU_MAX_DEVICES == 8, "one default pool per device");
static CUmemoryPool g_current_pool[EMU_MAX_DEVICES];

static CUmemoryPool current_pool(int dev)
{
    return g_current_pool[dev] ? g_current_pool[dev] : (CUmemoryPool)&g_default_pool[dev];
}

CUmemoryPool emu_pool_current(int dev) { return current_pool(dev); }

/* Read by kernels' access checks (emu_env_check): a pool destroyed meanwhile is no longer a handle. */
int emu_pool_grants(const void *pool, int dev)
{
    const emu_pool *p = pool;
    int ok = 0;
    emu_lock();
    int live = emu_handle_is(pool, EMU_K_POOL);
    for (int d = 0; d < EMU_MAX_DEVICES; d++)
        live |= pool == (const void *)&g_default_pool[d];
    if (live)
        ok = p->owner == dev || ((p->access >> dev) & 1u);
    emu_unlock();
    return ok;
}
static pthread_mutex_t g_arena_mu = PTHREAD_MUTEX_INITIALIZER;
static emu_pool *g_arenas; /* live IPC pools (destroyed ones too, until their last allocation goes) */

static int pool_ok(CUmemoryPool pool)
{
    for (int d = 0; d < g_emu.ndev; d++)
        if (pool == (CUmemoryPool)&g_default_pool[d])
            return 1;
    return emu_handle_is(pool, EMU_K_POOL);
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* Drops a reference; the last one unmaps and closes the arena. Call with g_arena_mu held. */
static void arena_unref(emu_pool *p)
{
    if (--p->refs > 0)
        return;
    for (emu_pool **pp = &g_arenas; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    munmap(p->base, p->size);
    close(p->fd);
    free(p->holes);
    free(p);
}

/* Maps arena fd (size bytes) into p and lists it. */
static int arena_attach(emu_pool *p, int fd, size_t size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (m == MAP_FAILED)
        return -1;
    p->fd = fd;
    p->base = m;
    p->size = size;
    p->dev = (uint64_t)st.st_dev;
    p->ino = (uint64_t)st.st_ino;
    p->refs = 1;
    pthread_mutex_lock(&g_arena_mu);
    p->next = g_arenas;
    g_arenas = p;
    pthread_mutex_unlock(&g_arena_mu);
    return 0;
}

/* The IPC pool whose arena holds addr. Call with g_arena_mu held. */
static emu_pool *arena_of(uint64_t addr)
{
    for (emu_pool *p = g_arenas; p; p = p->next)
        if (addr >= (uint64_t)(uintptr_t)p->base && addr - (uint64_t)(uintptr_t)p->base < p->size)
            return p;
    return NULL;
}

CUmemoryPool emu_pool_of(uint64_t addr)
{
    pthread_mutex_lock(&g_arena_mu);
    emu_pool *p = arena_of(addr);
    pthread_mutex_unlock(&g_arena_mu);
    return (CUmemoryPool)p;
}

static CUresult arena_create(emu_pool *p, const CUmemPoolProps *props)
{
    size_t page = page_size(), reserve = props->maxSize ? props->maxSize : g_emu.vram_total;
    reserve = (reserve + page - 1) / page * page;
    size_t size = page + reserve; /* page 0: the header */
    int fd = memfd_create(POOL_MEMFD, MFD_CLOEXEC);
    arena_header h = {.magic = POOL_MAGIC, .size = size, .handle_types = (uint64_t)props->handleTypes,
                      .device = (uint64_t)props->location.id};
    p->holes = malloc(sizeof *p->holes);
    if (fd < 0 || !p->holes || ftruncate(fd, (off_t)size) != 0 || pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
        arena_attach(p, fd, size) != 0) {
        if (fd >= 0)
            close(fd);
        free(p->holes);
        p->holes = NULL;
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    p->holes[0] = (extent){page, reserve};
    p->nholes = p->capholes = 1;
    p->handle_types = (unsigned)props->handleTypes;
    return CUDA_SUCCESS;
}

/* First fit of `size` (page multiple) bytes; the extent's offset, or 0 (page 0 is the header). */
static uint64_t arena_take(emu_pool *p, size_t size)
{
    for (size_t i = 0; i < p->nholes; i++) {
        if (p->holes[i].size < size)
            continue;
        uint64_t off = p->holes[i].off;
        p->holes[i].off += size;
        p->holes[i].size -= size;
        if (p->holes[i].size == 0) {
            memmove(&p->holes[i], &p->holes[i + 1], (p->nholes - i - 1) * sizeof *p->holes);
            p->nholes--;
        }
        return off;
    }
    return 0;
}

/* Returns [off, off+size) to the free extents (merged with its neighbours); -1 if out of memory. */
static int arena_give(emu_pool *p, uint64_t off, size_t size)
{
    size_t i = 0;
    while (i < p->nholes && p->holes[i].off < off)
        i++;
    int prev = i > 0 && p->holes[i - 1].off + p->holes[i - 1].size == off;
    int next = i < p->nholes && off + size == p->holes[i].off;
    if (prev && next) {
        p->holes[i - 1].size += size + p->holes[i].size;
        memmove(&p->holes[i], &p->holes[i + 1], (p->nholes - i - 1) * sizeof *p->holes);
        p->nholes--;
    } else if (prev) {
        p->holes[i - 1].size += size;
    } else if (next) {
        p->holes[i].off = off;
        p->holes[i].size += size;
    } else {
        if (p->nholes == p->capholes) {
            size_t ncap = p->capholes * 2;
            extent *n = realloc(p->holes, ncap * sizeof *n);
            if (!n)
                return -1;
            p->holes = n;
            p->capholes = ncap;
        }
        memmove(&p->holes[i + 1], &p->holes[i], (p->nholes - i) * sizeof *p->holes);
        p->holes[i] = (extent){off, size};
        p->nholes++;
    }
    return 0;
}

static CUresult arena_alloc(emu_pool *p, size_t bytes, CUdeviceptr *out)
{
    size_t page = page_size(), size = (bytes + page - 1) / page * page;
    if (size < bytes || emu_vram_charge_dev(p->owner, size) != CUDA_SUCCESS)
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&g_arena_mu);
    uint64_t off = arena_take(p, size);
    uint64_t addr = (uint64_t)(uintptr_t)p->base + off;
    if (off && emu_mem_add_dev(addr, size, EMU_MEM_DEVICE, EMU_MEMF_POOL, p->owner) != 0) {
        if (arena_give(p, off, size) != 0) { /* leaks the extent's address range, not memory */
        }
        off = 0;
    }
    if (off) {
        p->used += size;
        p->refs++;
    }
    pthread_mutex_unlock(&g_arena_mu);
    if (!off) {
        emu_vram_uncharge_dev(p->owner, size);
        return CUDA_ERROR_OUT_OF_MEMORY; /* the pool's reserve (maxSize) is used up */
    }
    *out = (CUdeviceptr)addr;
    return CUDA_SUCCESS;
}

int emu_pool_free(uint64_t addr)
{
    uint64_t base;
    size_t size;
    int kind;
    unsigned flags;
    pthread_mutex_lock(&g_arena_mu);
    emu_pool *p = arena_of(addr);
    if (!p || !emu_mem_find(addr, &base, &size, &kind, &flags) || base != addr || !(flags & EMU_MEMF_POOL) ||
        !emu_mem_remove(addr, NULL, NULL)) {
        pthread_mutex_unlock(&g_arena_mu);
        return 0;
    }
    uint64_t off = addr - (uint64_t)(uintptr_t)p->base;
    p->used -= size;
    if (!(flags & EMU_MEMF_IPC)) { /* the exporter's allocation: its pages go back to the system */
        if (fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)size) != 0) {
            /* the pages stay until the pool goes: harmless */
        }
        if (arena_give(p, off, size) != 0) { /* leaks the extent's address range, not memory */
        }
        emu_vram_uncharge_dev(p->owner, size);
    }
    arena_unref(p);
    pthread_mutex_unlock(&g_arena_mu);
    return 1;
}

int emu_pool_alloc_current(CUdeviceptr *dptr, size_t bytes, CUresult *rc)
{
    emu_pool *p = (emu_pool *)current_pool(emu_cur_dev());
    if (p->fd < 0)
        return 0;
    emu_ctx *c = NULL;
    *rc = emu_enter(&c);
    if (*rc == CUDA_SUCCESS)
        *rc = arena_alloc(p, bytes, dptr);
    return 1;
}

EMU_API CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!pool_out)
        return CUDA_ERROR_INVALID_VALUE;
    if ((rc = emu_check_device(dev)) != CUDA_SUCCESS)
        return rc;
    *pool_out = (CUmemoryPool)&g_default_pool[dev];
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CUresult rc = cuDeviceGetDefaultMemPool(pool, dev);
    if (rc == CUDA_SUCCESS)
        *pool = current_pool(dev);
    return rc;
}

EMU_API CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!pool_ok(pool) || ((emu_pool *)pool)->imported)
        return CUDA_ERROR_INVALID_VALUE; /* an imported pool makes no allocations */
    if (((emu_pool *)pool)->owner != dev)
        return CUDA_ERROR_INVALID_DEVICE; /* a pool of another device */
    g_current_pool[dev] = pool;
    return CUDA_SUCCESS;
}

static int device_location(const CUmemLocation *loc, CUmemAllocationType type)
{
    return emu_location_is_device(loc) && type == CU_MEM_ALLOCATION_TYPE_PINNED;
}

EMU_API CUresult cuMemGetDefaultMemPool(CUmemoryPool *pool_out, CUmemLocation *location, CUmemAllocationType type)
{
    if (!device_location(location, type))
        return CUDA_ERROR_NOT_SUPPORTED; /* host / managed pools are not emulated */
    return cuDeviceGetDefaultMemPool(pool_out, location->id);
}

EMU_API CUresult cuMemGetMemPool(CUmemoryPool *pool, CUmemLocation *location, CUmemAllocationType type)
{
    if (!device_location(location, type))
        return CUDA_ERROR_NOT_SUPPORTED;
    return cuDeviceGetMemPool(pool, location->id);
}

EMU_API CUresult cuMemSetMemPool(CUmemLocation *location, CUmemAllocationType type, CUmemoryPool pool)
{
    if (!device_location(location, type))
        return CUDA_ERROR_NOT_SUPPORTED;
    return cuDeviceSetMemPool(location->id, pool);
}

EMU_API CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!pool || !poolProps || poolProps->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        poolProps->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
        (poolProps->handleTypes & ~(unsigned)(CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR | CU_MEM_HANDLE_TYPE_WIN32 |
                                              CU_MEM_HANDLE_TYPE_WIN32_KMT | CU_MEM_HANDLE_TYPE_FABRIC)))
        return CUDA_ERROR_INVALID_VALUE;
    if (poolProps->location.id < 0 || poolProps->location.id >= g_emu.ndev)
        return CUDA_ERROR_INVALID_DEVICE;
    if (poolProps->handleTypes & ~(unsigned)CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return CUDA_ERROR_NOT_SUPPORTED; /* Win32 and fabric handles do not exist here (the device attribute says so) */
    emu_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return CUDA_ERROR_OUT_OF_MEMORY;
    p->reuse[0] = p->reuse[1] = p->reuse[2] = 1;
    p->fd = -1;
    p->owner = poolProps->location.id;
    rc = poolProps->handleTypes ? arena_create(p, poolProps) : CUDA_SUCCESS;
    if (rc == CUDA_SUCCESS && emu_handle_add(p, EMU_K_POOL)) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        if (p->fd >= 0) {
            pthread_mutex_lock(&g_arena_mu);
            arena_unref(p); /* frees p */
            pthread_mutex_unlock(&g_arena_mu);
            return rc;
        }
    }
    if (rc) {
        free(p);
        return rc;
    }
    *pool = (CUmemoryPool)p;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    if (!emu_handle_is(pool, EMU_K_POOL))
        return CUDA_ERROR_INVALID_VALUE;
    for (int d = 0; d < EMU_MAX_DEVICES; d++)
        if (g_current_pool[d] == pool)
            g_current_pool[d] = NULL;
    emu_handle_del(pool);
    emu_pool *p = (emu_pool *)pool;
    if (p->fd < 0) {
        free(p);
        return CUDA_SUCCESS;
    }
    pthread_mutex_lock(&g_arena_mu);
    arena_unref(p); /* outstanding allocations keep the arena until they are freed */
    pthread_mutex_unlock(&g_arena_mu);
    return CUDA_SUCCESS;
}

/* CUDA (cuMemPoolSetAccess): the pool's own device always has read-write access; another device gets
 * read-write (CU_MEM_ACCESS_FLAGS_PROT_READWRITE) or none (PROT_NONE); read-only is not supported for pools
 * (INVALID_VALUE), a location that is not a device of this host INVALID_DEVICE. Kernels of a device without
 * access fault on the pool's memory (emu_env_check), unless their context enabled peer access. */
EMU_API CUresult cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc *map, size_t count)
{
    if (!pool_ok(pool) || (count && !map))
        return CUDA_ERROR_INVALID_VALUE;
    emu_pool *p = (emu_pool *)pool;
    CUresult rc = emu_access_list_check(map, count, EMU_ACCESS_FLAG(CU_MEM_ACCESS_FLAGS_PROT_READWRITE) |
                                                        EMU_ACCESS_FLAG(CU_MEM_ACCESS_FLAGS_PROT_NONE),
                                        CUDA_ERROR_INVALID_DEVICE);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++)
        if (map[i].location.id == p->owner && map[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
            return CUDA_ERROR_INVALID_VALUE; /* its own device keeps read-write access */
    emu_lock();
    for (size_t i = 0; i < count; i++) {
        unsigned bit = 1u << map[i].location.id;
        if (map[i].location.id != p->owner)
            p->access = map[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? p->access | bit : p->access & ~bit;
    }
    emu_unlock();
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemPoolGetAccess(CUmemAccess_flags *flags, CUmemoryPool memPool, CUmemLocation *location)
{
    if (!flags || !location || !pool_ok(memPool))
        return CUDA_ERROR_INVALID_VALUE;
    const emu_pool *p = (const emu_pool *)memPool;
    int d = location->id;
    *flags = emu_location_is_device(location) && (d == p->owner || ((p->access >> d) & 1u))
                 ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                 : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    (void)minBytesToKeep;
    return pool_ok(pool) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EMU_API CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    if (!pool_ok(pool) || !value)
        return CUDA_ERROR_INVALID_VALUE;
    emu_pool *p = (emu_pool *)pool;
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        p->reuse[attr - 1] = *(int *)value != 0;
        return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
        p->threshold = *(cuuint64_t *)value;
        return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: /* may only be reset */
        return *(cuuint64_t *)value == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

EMU_API CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    if (!pool_ok(pool) || !value)
        return CUDA_ERROR_INVALID_VALUE;
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        *(int *)value = ((emu_pool *)pool)->reuse[attr - 1];
        break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
        *(cuuint64_t *)value = ((emu_pool *)pool)->threshold;
        break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
        if (((emu_pool *)pool)->fd >= 0) { /* an IPC pool counts its own allocations */
            pthread_mutex_lock(&g_arena_mu);
            *(cuuint64_t *)value = ((emu_pool *)pool)->used;
            pthread_mutex_unlock(&g_arena_mu);
        } else {
            *(cuuint64_t *)value = atomic_load(&g_emu.vram_used[((emu_pool *)pool)->owner]);
        }
        break;
    default:
        *(cuuint64_t *)value = 0;
        break;
    }
    return CUDA_SUCCESS;
}


EMU_API CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream)
{
    if (!pool_ok(pool) || ((emu_pool *)pool)->imported)
        return CUDA_ERROR_INVALID_VALUE; /* an imported pool makes no allocations */
    emu_pool *p = (emu_pool *)pool;
    if (p->fd < 0 && dptr && bytesize && !emu_capture_of(hStream) && p->owner != emu_cur_dev()) {
        CUresult rc = emu_stream_check(hStream); /* plain memory of another device's pool: on that device */
        if (rc)
            return rc;
        EMU_ENTER(c);
        (void)c;
        uint64_t a;
        rc = emu_dev_alloc_on(p->owner, &a, bytesize, EMU_MEM_DEVICE, EMU_MEMF_SHAREABLE);
        if (rc == CUDA_SUCCESS) {
            *dptr = (CUdeviceptr)a;
            emu_mem_set_pool(a, pool);
        }
        return rc;
    }
    if (p->fd < 0 || !dptr || !bytesize || emu_capture_of(hStream))
    {
        CUresult rc = emu_alloc_async(dptr, bytesize, hStream, 1); /* plain memory; captured: graph memory */
        if (rc == CUDA_SUCCESS && dptr && bytesize && !emu_capture_of(hStream))
            emu_mem_set_pool(*dptr, pool);
        return rc;
    }
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    EMU_ENTER(c);
    (void)c;
    return arena_alloc(p, bytesize, dptr); /* ready at once: the stream order is kept trivially */
}

/* ---- IPC: the pool's descriptor, pointer export data ---- */
EMU_API CUresult cuMemPoolExportToShareableHandle(void *handle_out, CUmemoryPool pool,
                                                  CUmemAllocationHandleType handleType, unsigned long long flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!handle_out || flags || !pool_ok(pool))
        return CUDA_ERROR_INVALID_VALUE;
    emu_pool *p = (emu_pool *)pool;
    /* as the driver: the pool must have been created with that handle type (a pool without one is no IPC pool) */
    if (p->fd < 0 || !(p->handle_types & (unsigned)handleType) || handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
        return CUDA_ERROR_INVALID_VALUE;
    return emu_shareable_export(p->fd, handle_out);
}

EMU_API CUresult cuMemPoolImportFromShareableHandle(CUmemoryPool *pool_out, void *handle,
                                                    CUmemAllocationHandleType handleType, unsigned long long flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!pool_out || flags)
        return CUDA_ERROR_INVALID_VALUE;
    int fd = -1;
    struct stat st;
    rc = emu_shareable_import(handle, handleType, POOL_MEMFD, &fd, &st);
    if (rc)
        return rc;
    arena_header h;
    emu_pool *p = NULL;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h.magic, POOL_MAGIC, sizeof h.magic) != 0 ||
        h.size != (uint64_t)st.st_size)
        rc = CUDA_ERROR_INVALID_VALUE; /* not an arena this driver made */
    else if (!(p = calloc(1, sizeof *p)) || arena_attach(p, fd, (size_t)h.size) != 0)
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        close(fd);
        free(p);
        return rc;
    }
    p->reuse[0] = p->reuse[1] = p->reuse[2] = 1;
    p->imported = 1;
    p->owner = h.device < (uint64_t)g_emu.ndev ? (int)h.device : emu_cur_dev(); /* the exporter's device */
    p->handle_types = (unsigned)h.handle_types;
    if (emu_handle_add(p, EMU_K_POOL)) {
        pthread_mutex_lock(&g_arena_mu);
        arena_unref(p);
        pthread_mutex_unlock(&g_arena_mu);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pool_out = (CUmemoryPool)p;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemPoolExportPointer(CUmemPoolPtrExportData *shareData_out, CUdeviceptr ptr)
{
    EMU_ENTER(c);
    (void)c;
    uint64_t base;
    size_t size;
    int kind;
    unsigned flags;
    if (!shareData_out || !emu_mem_find(ptr, &base, &size, &kind, &flags) || base != ptr || kind != EMU_MEM_DEVICE ||
        !(flags & EMU_MEMF_POOL))
        return CUDA_ERROR_INVALID_VALUE; /* the start of an allocation from an IPC pool */
    pthread_mutex_lock(&g_arena_mu);
    emu_pool *p = arena_of(ptr);
    ptr_wire w = {.magic = PTR_MAGIC};
    if (p) {
        w.dev = p->dev;
        w.ino = p->ino;
        w.off = ptr - (uint64_t)(uintptr_t)p->base;
        w.size = size;
    }
    pthread_mutex_unlock(&g_arena_mu);
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(shareData_out->reserved, &w, sizeof w);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemPoolImportPointer(CUdeviceptr *ptr_out, CUmemoryPool pool, CUmemPoolPtrExportData *shareData)
{
    EMU_ENTER(c);
    (void)c;
    if (!ptr_out || !shareData || !emu_handle_is(pool, EMU_K_POOL))
        return CUDA_ERROR_INVALID_VALUE;
    emu_pool *p = (emu_pool *)pool;
    ptr_wire w;
    memcpy(&w, shareData->reserved, sizeof w);
    size_t page = page_size();
    /* data of this pool's file, naming whole pages inside the arena (not its header) */
    if (!p->imported || memcmp(w.magic, PTR_MAGIC, sizeof w.magic) != 0 || w.dev != p->dev || w.ino != p->ino ||
        w.off < page || w.off % page || w.size == 0 || w.size % page || w.off > p->size || w.size > p->size - w.off)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t addr = (uint64_t)(uintptr_t)p->base + w.off, base;
    size_t size;
    pthread_mutex_lock(&g_arena_mu);
    CUresult rc = CUDA_SUCCESS;
    if (emu_mem_find(addr, &base, &size, NULL, NULL)) /* imported before: the same mapping */
        rc = base == addr && size == w.size ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    else if (emu_mem_add_dev(addr, w.size, EMU_MEM_DEVICE, EMU_MEMF_POOL | EMU_MEMF_IPC, p->owner) != 0)
        rc = CUDA_ERROR_INVALID_VALUE; /* overlaps an import of other data (the exporter reused the range) */
    else {
        p->used += w.size;
        p->refs++;
    }
    pthread_mutex_unlock(&g_arena_mu);
    if (rc == CUDA_SUCCESS)
        *ptr_out = (CUdeviceptr)addr;
    return rc;
}
