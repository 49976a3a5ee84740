/* emu_memory.c - memory of the emulated device: the allocation table (every device, host-mapped,
 * registered, managed and module-global range), cuMemAlloc* / free / info / address range / pointer
 * attributes, memcpy in all directions (1D, 2D, 3D, async), memset D8/D16/D32 (+2D, async), stream-
 * ordered allocation and free (pools: emu_mempool.c), the checks of access lists (VMM, pools, graph
 * memory nodes). Device pointers are host addresses; a copy that touches
 * a "device" address outside any live allocation is CUDA_ERROR_INVALID_VALUE, and kernels ask
 * emu_mem_check() (ptx_env.check_global) before each access.
 */
#include <stdlib.h>
#include <string.h>

#include "tf_memcpy3d_peer.h"
#include "emu_internal.h"

typedef struct mem_rec {
    uint64_t base;
    size_t size;
    int kind;
    unsigned flags;
    const void *owner; /* context current at allocation (freed with it); NULL for module globals */
    int dev;           /* the device it belongs to (charged to): CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL */
    const void *pool;  /* the plain mem pool it came from (its access list), else NULL */
    void *advice;      /* managed memory: its pages' cuMemAdvise/prefetch state (emu_managed_advice.c), or NULL */
} mem_rec;

static pthread_rwlock_t g_mem_lock = PTHREAD_RWLOCK_INITIALIZER;
static mem_rec *g_recs;
static size_t g_nrecs, g_caprecs;
static atomic_ulong g_mem_gen = 1; /* bumped on every free: invalidates per-thread lookup caches */

/* index of the last record with base <= addr, or -1 */
static long rec_floor(uint64_t addr)
{
    long lo = 0, hi = (long)g_nrecs - 1, ans = -1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (g_recs[mid].base <= addr) {
            ans = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return ans;
}

int emu_mem_add(uint64_t base, size_t size, int kind, unsigned flags)
{
    return emu_mem_add_dev(base, size, kind, flags, emu_cur_dev());
}

int emu_mem_add_dev(uint64_t base, size_t size, int kind, unsigned flags, int dev)
{
    pthread_rwlock_wrlock(&g_mem_lock);
    long i = rec_floor(base);
    /* refuse overlaps (e.g. registering the same host range twice) */
    if ((i >= 0 && g_recs[i].base + g_recs[i].size > base) ||
        ((size_t)(i + 1) < g_nrecs && g_recs[i + 1].base < base + size)) {
        pthread_rwlock_unlock(&g_mem_lock);
        return -2;
    }
    if (g_nrecs == g_caprecs) {
        size_t ncap = g_caprecs ? g_caprecs * 2 : 64;
        mem_rec *n = realloc(g_recs, ncap * sizeof(*n));
        if (!n) {
            pthread_rwlock_unlock(&g_mem_lock);
            return -1;
        }
        g_recs = n;
        g_caprecs = ncap;
    }
    size_t at = (size_t)(i + 1);
    memmove(&g_recs[at + 1], &g_recs[at], (g_nrecs - at) * sizeof(*g_recs));
    g_recs[at] = (mem_rec){base, size, kind, flags, kind == EMU_MEM_MODULE ? NULL : emu_ctx_current(), dev, NULL, NULL};
    g_nrecs++;
    pthread_rwlock_unlock(&g_mem_lock);
    return 0;
}

int emu_mem_find(uint64_t addr, uint64_t *base, size_t *size, int *kind, unsigned *flags)
{
    pthread_rwlock_rdlock(&g_mem_lock);
    long i = rec_floor(addr);
    int found = i >= 0 && addr < g_recs[i].base + g_recs[i].size;
    if (found) {
        if (base)
            *base = g_recs[i].base;
        if (size)
            *size = g_recs[i].size;
        if (kind)
            *kind = g_recs[i].kind;
        if (flags)
            *flags = g_recs[i].flags;
    }
    pthread_rwlock_unlock(&g_mem_lock);
    return found;
}

int emu_mem_dev(uint64_t addr)
{
    pthread_rwlock_rdlock(&g_mem_lock);
    long i = rec_floor(addr);
    int dev = i >= 0 && addr < g_recs[i].base + g_recs[i].size ? g_recs[i].dev : -1;
    pthread_rwlock_unlock(&g_mem_lock);
    return dev;
}

void emu_mem_set_pool(uint64_t base, const void *pool)
{
    pthread_rwlock_wrlock(&g_mem_lock);
    long i = rec_floor(base);
    if (i >= 0 && g_recs[i].base == base)
        g_recs[i].pool = pool;
    pthread_rwlock_unlock(&g_mem_lock);
}

static const void *mem_owner(uint64_t addr)
{
    pthread_rwlock_rdlock(&g_mem_lock);
    long i = rec_floor(addr);
    const void *o = i >= 0 && addr < g_recs[i].base + g_recs[i].size ? g_recs[i].owner : NULL;
    pthread_rwlock_unlock(&g_mem_lock);
    return o;
}

CUresult emu_mem_managed_do(uint64_t addr, size_t len, CUresult (*fn)(void **advice, uint64_t base, size_t size, void *arg),
                            void *arg)
{
    pthread_rwlock_wrlock(&g_mem_lock);
    long i = rec_floor(addr);
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    if (i >= 0 && g_recs[i].kind == EMU_MEM_MANAGED && len && addr + len >= addr &&
        addr + len <= g_recs[i].base + g_recs[i].size)
        rc = fn(&g_recs[i].advice, g_recs[i].base, g_recs[i].size, arg);
    pthread_rwlock_unlock(&g_mem_lock);
    return rc;
}

int emu_mem_remove(uint64_t base, int *kind, size_t *size)
{
    pthread_rwlock_wrlock(&g_mem_lock);
    long i = rec_floor(base);
    int found = i >= 0 && g_recs[i].base == base;
    if (found) {
        if (kind)
            *kind = g_recs[i].kind;
        if (size)
            *size = g_recs[i].size;
        free(g_recs[i].advice);
        memmove(&g_recs[i], &g_recs[i + 1], (g_nrecs - (size_t)i - 1) * sizeof(*g_recs));
        g_nrecs--;
        atomic_fetch_add(&g_mem_gen, 1);
    }
    pthread_rwlock_unlock(&g_mem_lock);
    return found;
}

/* Hot path for kernels: a per-thread cache of the last allocation hit, valid until any free. */
static __thread uint64_t t_cache_base, t_cache_end;
static __thread unsigned long t_cache_gen;

int emu_location_is_device(const CUmemLocation *loc)
{
    return loc && loc->type == CU_MEM_LOCATION_TYPE_DEVICE && loc->id >= 0 && loc->id < g_emu.ndev;
}

CUresult emu_access_list_check(const CUmemAccessDesc *desc, size_t count, unsigned allowed, CUresult bad_location)
{
    for (size_t i = 0; i < count; i++) {
        if (!emu_location_is_device(&desc[i].location))
            return bad_location;
        if ((unsigned)desc[i].flags >= 32 || !(allowed & EMU_ACCESS_FLAG(desc[i].flags)))
            return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

int emu_mem_check(uint64_t addr, uint64_t len)
{
    if (addr + len < addr)
        return 0;
    unsigned long gen = atomic_load_explicit(&g_mem_gen, memory_order_acquire);
    if (t_cache_gen == gen && addr >= t_cache_base && addr + len <= t_cache_end)
        return 1;
    uint64_t base;
    size_t size;
    if (!emu_mem_find(addr, &base, &size, NULL, NULL) || addr + len > base + size)
        return 0;
    t_cache_base = base;
    t_cache_end = base + size;
    t_cache_gen = gen;
    return 1;
}

static int counts_as_vram(int kind) { return kind == EMU_MEM_DEVICE || kind == EMU_MEM_MANAGED || kind == EMU_MEM_MODULE; }

CUresult emu_vram_charge_dev(int dev, size_t bytes)
{
    atomic_size_t *u = &g_emu.vram_used[dev];
    size_t used = atomic_load(u);
    do {
        if (bytes > g_emu.vram_total || used > g_emu.vram_total - bytes)
            return CUDA_ERROR_OUT_OF_MEMORY;
    } while (!atomic_compare_exchange_weak(u, &used, used + bytes));
    return CUDA_SUCCESS;
}

void emu_vram_uncharge_dev(int dev, size_t bytes) { atomic_fetch_sub(&g_emu.vram_used[dev], bytes); }

/* Allocations start on 512 bytes: CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, which a texture over linear memory
 * (cuTexObjectCreate) requires of its address, as cudaMalloc'd memory on a GPU satisfies. */
CUresult emu_dev_alloc(uint64_t *out, size_t bytes, int kind, unsigned flags)
{
    return emu_dev_alloc_on(emu_cur_dev(), out, bytes, kind, flags);
}

CUresult emu_dev_alloc_on(int dev, uint64_t *out, size_t bytes, int kind, unsigned flags)
{
    if (!out || bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    *out = 0;
    size_t rounded = (bytes + 255) & ~(size_t)255;
    if (rounded < bytes)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (counts_as_vram(kind) && emu_vram_charge_dev(dev, rounded) != CUDA_SUCCESS)
        return CUDA_ERROR_OUT_OF_MEMORY;
    void *p = NULL;
    if (kind == EMU_MEM_DEVICE && (flags & EMU_MEMF_SHAREABLE)) {
        flags &= ~EMU_MEMF_SHAREABLE;
        if (emu_ipc_alloc(rounded, &p) != 0)
            p = NULL; /* out of descriptors: private memory, which cuIpcGetMemHandle refuses */
    }
    if (!p && (posix_memalign(&p, 512, rounded) != 0 || !p)) {
        if (counts_as_vram(kind))
            emu_vram_uncharge_dev(dev, rounded);
        return kind == EMU_MEM_HOST ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (emu_mem_add_dev((uint64_t)(uintptr_t)p, rounded, kind, flags, dev) != 0) {
        if (!emu_ipc_free((uint64_t)(uintptr_t)p))
            free(p);
        if (counts_as_vram(kind))
            emu_vram_uncharge_dev(dev, rounded);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = (uint64_t)(uintptr_t)p;
    return CUDA_SUCCESS;
}

static CUresult free_kind(uint64_t p, int want1, int want2)
{
    int kind;
    size_t size;
    uint64_t base;
    unsigned flags;
    if (!emu_mem_find(p, &base, NULL, &kind, &flags) || base != p || (kind != want1 && kind != want2))
        return CUDA_ERROR_INVALID_VALUE;
    if (kind == EMU_MEM_DEVICE && (flags & EMU_MEMF_POOL))
        return emu_pool_free(p) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; /* an IPC pool's arena */
    int dev = emu_mem_dev(p);
    if (!emu_mem_remove(p, &kind, &size))
        return CUDA_ERROR_INVALID_VALUE;
    if (counts_as_vram(kind) && dev >= 0)
        emu_vram_uncharge_dev(dev, size);
    if (!emu_ipc_free(p))
        free((void *)(uintptr_t)p);
    return CUDA_SUCCESS;
}

CUresult emu_dev_free(uint64_t p) { return free_kind(p, EMU_MEM_DEVICE, EMU_MEM_MANAGED); }

/* cuCtxDestroy / cuDevicePrimaryCtxReset: free what was allocated in that context, as a GPU driver
 * does (module globals stay with their modules; registered host ranges are just forgotten). */
void emu_mem_release_owner(const void *owner)
{
    for (;;) {
        uint64_t victim = 0;
        int vkind = 0;
        pthread_rwlock_rdlock(&g_mem_lock);
        for (size_t i = 0; i < g_nrecs; i++) {
            if (g_recs[i].owner == owner && g_recs[i].kind != EMU_MEM_MODULE && g_recs[i].kind != EMU_MEM_VMM) {
                victim = g_recs[i].base;
                vkind = g_recs[i].kind;
                break;
            }
        }
        pthread_rwlock_unlock(&g_mem_lock);
        if (!victim)
            return;
        if (vkind == EMU_MEM_REGISTERED)
            emu_mem_remove(victim, NULL, NULL);
        else
            free_kind(victim, vkind, vkind);
    }
}

/* ---- ptx_env services ---- */
void *emu_env_alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    uint64_t p;
    if (emu_dev_alloc(&p, bytes ? bytes : 1, EMU_MEM_MODULE, 0) != CUDA_SUCCESS)
        return NULL;
    memset((void *)(uintptr_t)p, 0, bytes); /* .global/.const without initializer are zero */
    return (void *)(uintptr_t)p;
}

void emu_env_free(void *ctx, void *p)
{
    (void)ctx;
    if (p)
        free_kind((uint64_t)(uintptr_t)p, EMU_MEM_MODULE, EMU_MEM_MODULE);
}

/* A kernel's malloc(): a block of the device heap, whose size is the device's CU_LIMIT_MALLOC_HEAP_SIZE (8 MiB
 * unless set), as on a GPU; NULL once it is used up. Not zeroed (CUDA does not either). ctx: as for
 * emu_env_check (NULL: device 0). */
void *emu_env_heap_alloc(void *ctx, size_t bytes)
{
    int dev = ctx ? ((const emu_ctx *)ctx)->dev : 0;
    size_t rounded = (bytes + 255) & ~(size_t)255;
    if (rounded < bytes)
        return NULL;
    size_t limit = atomic_load(&g_emu.heap_limit[dev]);
    size_t used = atomic_load(&g_emu.heap_used[dev]);
    do {
        if (used > limit || rounded > limit - used)
            return NULL;
    } while (!atomic_compare_exchange_weak(&g_emu.heap_used[dev], &used, used + rounded));
    uint64_t p;
    if (emu_dev_alloc_on(dev, &p, rounded, EMU_MEM_MODULE, EMU_MEMF_HEAP) != CUDA_SUCCESS) {
        atomic_fetch_sub(&g_emu.heap_used[dev], rounded);
        return NULL;
    }
    return (void *)(uintptr_t)p;
}

/* A kernel's free(): releases a block emu_env_heap_alloc gave, ignores any other address. */
void emu_env_heap_free(void *ctx, void *p)
{
    (void)ctx;
    uint64_t base = 0;
    size_t size = 0;
    int kind = 0;
    unsigned flags = 0;
    if (!emu_mem_find((uint64_t)(uintptr_t)p, &base, &size, &kind, &flags) || base != (uint64_t)(uintptr_t)p ||
        kind != EMU_MEM_MODULE || !(flags & EMU_MEMF_HEAP))
        return;
    int dev = emu_mem_dev(base);
    if (free_kind(base, EMU_MEM_MODULE, EMU_MEM_MODULE) == CUDA_SUCCESS && dev >= 0)
        atomic_fetch_sub(&g_emu.heap_used[dev], size);
}

/* ctx: NULL (one device: any live allocation), or the launching context (several devices): device memory of
 * another device needs that device's peer access enabled in the context, or access granted by its pool
 * (IPC pools: emu_pool_of; plain pools: the record's). Managed, host, module and VMM memory is every
 * device's. */
int emu_env_check(void *ctx, uint64_t addr, uint64_t len)
{
    if (!ctx)
        return emu_mem_check(addr, len);
    const emu_ctx *c = ctx;
    if (addr + len < addr)
        return 0;
    pthread_rwlock_rdlock(&g_mem_lock);
    long i = rec_floor(addr);
    mem_rec r = {0};
    int found = i >= 0 && addr + len <= g_recs[i].base + g_recs[i].size;
    if (found)
        r = g_recs[i];
    pthread_rwlock_unlock(&g_mem_lock);
    if (!found)
        return 0;
    if (r.kind != EMU_MEM_DEVICE || r.dev == c->dev || ((c->peers >> r.dev) & 1u))
        return 1;
    const void *pool = (r.flags & EMU_MEMF_POOL) ? (const void *)emu_pool_of(addr) : r.pool;
    return pool && emu_pool_grants(pool, c->dev);
}

const ptx_env g_ptx_env = {NULL, emu_env_alloc, emu_env_free, emu_env_check, NULL, emu_env_heap_alloc,
                            emu_env_heap_free};

const ptx_env *emu_launch_env(emu_ctx *c, ptx_env *buf)
{
    if (g_emu.ndev == 1 || !c)
        return &g_ptx_env; /* one device: every allocation is the device's */
    *buf = g_ptx_env;
    buf->ctx = c;
    return buf;
}

/* ---- allocation API ---- */
EMU_API CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
    EMU_ENTER(c);
    if (!free_bytes || !total)
        return CUDA_ERROR_INVALID_VALUE;
    size_t used = atomic_load(&g_emu.vram_used[c->dev]); /* the current context's device */
    *total = g_emu.vram_total;
    *free_bytes = used < g_emu.vram_total ? g_emu.vram_total - used : 0;
    return CUDA_SUCCESS;
}

static CUresult mem_alloc(CUdeviceptr *dptr, size_t bytesize)
{
    EMU_ENTER(c);
    (void)c;
    if (!dptr)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t p;
    CUresult rc = emu_dev_alloc(&p, bytesize, EMU_MEM_DEVICE, EMU_MEMF_SHAREABLE);
    if (rc == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)p;
    return rc;
}

EMU_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    CUresult rc = emu_capture_unsafe_call(); /* prohibited during a capture, per capture mode */
    return rc ? rc : mem_alloc(dptr, bytesize);
}

EMU_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height,
                                    unsigned int ElementSizeBytes)
{
    EMU_ENTER(c);
    (void)c;
    if (!dptr || !pPitch || WidthInBytes == 0 || Height == 0 ||
        (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch = (WidthInBytes + 511) & ~(size_t)511;
    if (Height > (size_t)-1 / pitch)
        return CUDA_ERROR_OUT_OF_MEMORY;
    uint64_t p;
    CUresult rc = emu_dev_alloc(&p, pitch * Height, EMU_MEM_DEVICE, EMU_MEMF_SHAREABLE);
    if (rc == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr)p;
        *pPitch = pitch;
    }
    return rc;
}

EMU_API CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    EMU_ENTER(c);
    (void)c;
    if (dptr == 0)
        return CUDA_SUCCESS;
    emu_sq_idle_all(); /* as cudaFree: queued work that may use it runs first */
    if (emu_graph_mem_is(dptr)) {
        emu_graph_mem_release(dptr); /* graph memory stays for the graph's next launch (a GPU maps it again) */
        return CUDA_SUCCESS;
    }
    return emu_dev_free(dptr);
}

EMU_API CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    EMU_ENTER(c);
    (void)c;
    if (!dptr || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t p;
    CUresult rc = emu_dev_alloc(&p, bytesize, EMU_MEM_MANAGED, flags);
    if (rc == CUDA_SUCCESS)
        *dptr = (CUdeviceptr)p;
    return rc;
}

EMU_API CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    EMU_ENTER(c);
    (void)c;
    uint64_t base;
    size_t size;
    if (!emu_mem_find(dptr, &base, &size, NULL, NULL))
        return CUDA_ERROR_NOT_FOUND;
    if (pbase)
        *pbase = (CUdeviceptr)base;
    if (psize)
        *psize = size;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    EMU_ENTER(c);
    (void)c;
    if (!pp || (Flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED)))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t p;
    CUresult rc = emu_dev_alloc(&p, bytesize, EMU_MEM_HOST, Flags);
    *pp = rc == CUDA_SUCCESS ? (void *)(uintptr_t)p : NULL;
    return rc;
}

EMU_API CUresult cuMemAllocHost_v2(void **pp, size_t bytesize) { return cuMemHostAlloc(pp, bytesize, 0); }

EMU_API CUresult cuMemFreeHost(void *p)
{
    EMU_ENTER(c);
    (void)c;
    if (!p)
        return CUDA_SUCCESS; /* free(NULL), as NVIDIA's driver (cudaFreeHost(NULL) sends it here) */
    emu_sq_idle_all();
    return free_kind((uint64_t)(uintptr_t)p, EMU_MEM_HOST, EMU_MEM_HOST);
}

EMU_API CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    EMU_ENTER(c);
    (void)c;
    int kind;
    if (!pdptr || Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_mem_find((uint64_t)(uintptr_t)p, NULL, NULL, &kind, NULL) ||
        (kind != EMU_MEM_HOST && kind != EMU_MEM_REGISTERED))
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = (CUdeviceptr)(uintptr_t)p; /* host memory is directly addressable by kernels */
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
    EMU_ENTER(c);
    (void)c;
    int kind;
    unsigned flags;
    if (!pFlags || !emu_mem_find((uint64_t)(uintptr_t)p, NULL, NULL, &kind, &flags) ||
        (kind != EMU_MEM_HOST && kind != EMU_MEM_REGISTERED))
        return CUDA_ERROR_INVALID_VALUE;
    *pFlags = flags;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    EMU_ENTER(c);
    (void)c;
    if (!p || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    int rc = emu_mem_add((uint64_t)(uintptr_t)p, bytesize, EMU_MEM_REGISTERED, Flags);
    if (rc == -2)
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    return rc ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

EMU_API CUresult cuMemHostUnregister(void *p)
{
    EMU_ENTER(c);
    (void)c;
    int kind;
    uint64_t base;
    if (!p)
        return CUDA_ERROR_INVALID_VALUE; /* unlike cuMemFreeHost, NULL is no no-op here (NVIDIA's driver agrees) */
    if (!emu_mem_find((uint64_t)(uintptr_t)p, &base, NULL, &kind, NULL) || kind != EMU_MEM_REGISTERED ||
        base != (uint64_t)(uintptr_t)p)
        return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    emu_sq_idle_all();
    emu_mem_remove(base, NULL, NULL);
    return CUDA_SUCCESS;
}

/* ---- pointer attributes ---- */
static CUresult pointer_attr(void *data, CUpointer_attribute attribute, CUdeviceptr ptr, int lenient)
{
    uint64_t base = 0;
    size_t size = 0;
    int kind = 0;
    unsigned flags = 0;
    int known = emu_mem_find(ptr, &base, &size, &kind, &flags);
    if (!known && !lenient)
        return CUDA_ERROR_INVALID_VALUE;
    int is_host = kind == EMU_MEM_HOST || kind == EMU_MEM_REGISTERED;
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: { /* the context it was allocated in, while that lives */
        const void *o = known ? mem_owner(ptr) : NULL;
        *(CUcontext *)data = !known ? NULL : o && emu_handle_is(o, EMU_K_CTX) ? (CUcontext)o : (CUcontext)emu_ctx_current();
        break;
    }
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned *)data = !known ? 0 : is_host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (attribute == CU_POINTER_ATTRIBUTE_HOST_POINTER && known && !is_host && kind != EMU_MEM_MANAGED) {
            if (!lenient)
                return CUDA_ERROR_INVALID_VALUE;
            *(void **)data = NULL;
            break;
        }
        *(void **)data = known ? (void *)(uintptr_t)ptr : NULL;
        break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
        *(int *)data = kind == EMU_MEM_MANAGED;
        break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
        *(int *)data = known ? emu_mem_dev(ptr) : -2;
        break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        *(unsigned long long *)data = base;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        *(CUdeviceptr *)data = (CUdeviceptr)base;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        *(size_t *)data = size;
        break;
    case CU_POINTER_ATTRIBUTE_MAPPED:
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
        *(int *)data = known;
        break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        *(unsigned *)data = known ? 0x3 : 0; /* CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE */
        break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: /* cuMemAlloc'd (shared) memory */
        *(int *)data = known && kind == EMU_MEM_DEVICE && emu_ipc_exportable(base);
        break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        *(void **)data = known && (flags & EMU_MEMF_POOL) ? (void *)emu_pool_of(ptr) : NULL;
        break;
    default:
        *(unsigned long long *)data = 0; /* handle types / compression: not supported -> 0 */
        break;
    }
    return CUDA_SUCCESS;
}

EMU_API CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    EMU_ENTER(c);
    (void)c;
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    return pointer_attr(data, attribute, ptr, 0);
}

EMU_API CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes, void **data,
                                        CUdeviceptr ptr)
{
    EMU_ENTER(c);
    (void)c;
    if (!attributes || !data)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numAttributes; i++) {
        if (!data[i])
            continue;
        CUresult rc = pointer_attr(data[i], attributes[i], ptr, 1);
        if (rc)
            return rc;
    }
    return CUDA_SUCCESS;
}

CUresult emu_alloc_async(CUdeviceptr *dptr, size_t bytesize, CUstream hStream, int plain)
{
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (dptr && bytesize && emu_capture_of(hStream))
        return emu_capture_alloc(hStream, dptr, bytesize); /* an alloc node: legal in any capture mode */
    if (!plain && dptr && bytesize && emu_pool_alloc_current(dptr, bytesize, &rc))
        return rc;
    rc = mem_alloc(dptr, bytesize);
    if (rc == CUDA_SUCCESS && !plain)
        emu_mem_set_pool(*dptr, emu_pool_current(emu_cur_dev()));
    return rc;
}

EMU_API CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return emu_alloc_async(dptr, bytesize, hStream, 0); /* from the device's current pool */
}

typedef struct free_op {
    CUdeviceptr p;
    int graph_mem;
} free_op;

static CUresult run_free(void *a, CUresult status)
{
    const free_op *f = a;
    (void)status; /* memory is returned even after a fault */
    if (f->graph_mem) {
        emu_graph_mem_release(f->p); /* graph memory stays for the graph's next launch */
        return CUDA_SUCCESS;
    }
    return emu_dev_free(f->p);
}

EMU_API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (emu_capture_of(hStream))
        return emu_capture_free(hStream, dptr); /* a free node */
    EMU_ENTER(c);
    (void)c;
    if (dptr == 0)
        return CUDA_SUCCESS;
    uint64_t base;
    int kind;
    free_op op = {dptr, emu_graph_mem_is(dptr)};
    if (!op.graph_mem && (!emu_mem_find(dptr, &base, NULL, &kind, NULL) || base != dptr ||
                          (kind != EMU_MEM_DEVICE && kind != EMU_MEM_MANAGED)))
        return CUDA_ERROR_INVALID_VALUE;
    return emu_sq_submit(hStream, run_free, NULL, &op, sizeof(op), EMU_SQ_ASYNC); /* freed in stream order */
}

/* Nothing moves (managed memory is one copy both sides reach); what a prefetch or an advice asked for is
 * kept for cuMemRangeGetAttribute(s) (emu_managed_advice.c). */
static CUresult prefetch(CUdeviceptr devPtr, size_t count, CUmemLocation loc, CUstream hStream)
{
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!emu_mem_check(devPtr, count))
        return CUDA_ERROR_INVALID_VALUE;
    return emu_advice_prefetch(devPtr, count, loc);
}

EMU_API CUresult cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream)
{
    return prefetch(devPtr, count, emu_advice_location_of(dstDevice), hStream);
}

EMU_API CUresult cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location, unsigned int flags,
                                       CUstream hStream)
{
    (void)flags;
    return prefetch(devPtr, count, location, hStream);
}

static CUresult advise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation loc)
{
    EMU_ENTER(c);
    (void)c;
    if (!emu_mem_check(devPtr, count))
        return CUDA_ERROR_INVALID_VALUE;
    return emu_advice_apply(devPtr, count, advice, loc);
}

EMU_API CUresult cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device)
{
    return advise(devPtr, count, advice, emu_advice_location_of(device));
}

EMU_API CUresult cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation location)
{
    return advise(devPtr, count, advice, location);
}

/* ---- copies ---- */
/* A "device" side must lie inside one allocation; a unified pointer may also be plain host memory. */
static int dev_ok(uint64_t p, size_t n) { return n == 0 || emu_mem_check(p, n); }

static int unified_ok(uint64_t p, size_t n)
{
    uint64_t base;
    size_t size;
    if (!emu_mem_find(p, &base, &size, NULL, NULL))
        return p != 0; /* pageable host memory */
    return p + n <= base + size;
}

#define COPY_PROLOGUE(stream)                                                                      \
    EMU_ENTER(c);                                                                                  \
    (void)c;                                                                                       \
    do {                                                                                           \
        CUresult s_rc_ = emu_stream_check(stream);                                                 \
        if (s_rc_)                                                                                 \
            return s_rc_;                                                                          \
    } while (0)

/* ---- copies as stream operations ----
 * When the calling thread waits, per CUDA's "API synchronization behavior": a synchronous copy returns
 * once done unless both sides are device memory (no host-side synchronization for device to device);
 * an asynchronous copy returns at once unless a host side is pageable memory (not allocated or
 * registered through the driver), which the caller may reuse when the call returns: a 1D copy from
 * pageable memory runs in the caller when its stream is idle, else it is staged (the bytes are copied
 * aside at the call, as the driver stages them into pinned memory), any other copy with a pageable side
 * waits (the driver's "might be synchronous"). */
static int host_pageable(const void *p)
{
    return p && !emu_mem_find((uint64_t)(uintptr_t)p, NULL, NULL, NULL, NULL);
}

static int device_memory(const void *p)
{
    int kind;
    return emu_mem_find((uint64_t)(uintptr_t)p, NULL, NULL, &kind, NULL) &&
           (kind == EMU_MEM_DEVICE || kind == EMU_MEM_VMM || kind == EMU_MEM_MODULE);
}

/* width bytes x height rows x depth slices, already checked */
typedef struct copy_op {
    uint8_t *dst;
    const uint8_t *src;
    size_t d_pitch, d_slice, s_pitch, s_slice, width, height, depth;
    void *staged; /* owned copy of the source (freed with the operation) */
} copy_op;

static void drop_copy(void *a) { free(((copy_op *)a)->staged); }

static CUresult run_copy(void *a, CUresult status)
{
    const copy_op *o = a;
    if (status)
        return status;
    for (size_t z = 0; z < o->depth; z++)
        for (size_t y = 0; y < o->height; y++)
            memmove(o->dst + z * o->d_slice + y * o->d_pitch, o->src + z * o->s_slice + y * o->s_pitch, o->width);
    return CUDA_SUCCESS;
}

/* Queues the copy; `wait` as above; a blocking copy flushes device printf once done. */
static CUresult submit_copy(CUstream s, const copy_op *o, int wait, int sync)
{
    if (!o->width || !o->height || !o->depth)
        return CUDA_SUCCESS;
    if (sync && !wait)
        emu_printf_flush();
    size_t bytes = o->width * o->height * o->depth;
    int mode = wait ? EMU_SQ_WAIT : bytes <= EMU_SQ_SHORT_BYTES ? EMU_SQ_SHORT : EMU_SQ_ASYNC;
    CUresult rc = emu_sq_submit(s, run_copy, drop_copy, (void *)o, sizeof(*o), mode);
    if (sync && wait)
        emu_printf_flush();
    return rc;
}

/* A queued 1D copy from pageable memory takes its own copy of the source (emu_sq_submit_staged). */
static int stage_copy(void *a)
{
    copy_op *o = a;
    o->staged = malloc(o->width);
    if (!o->staged)
        return -1;
    memcpy(o->staged, o->src, o->width);
    o->src = o->staged;
    return 0;
}

CUresult emu_copy_bytes(CUstream s, void *dst, const void *src, size_t n, int sync, int arrays)
{
    copy_op o = {dst, src, n, 0, n, 0, n, 1, 1, NULL};
    int dst_array = arrays & EMU_COPY_DST_ARRAY, src_array = arrays & EMU_COPY_SRC_ARRAY;
    int dst_pageable = !dst_array && host_pageable(dst), src_pageable = !src_array && host_pageable(src);
    if (!sync && n && src_pageable && !dst_pageable) /* run here when idle, else staged */
        return emu_sq_submit_staged(s, run_copy, drop_copy, stage_copy, &o, sizeof(o));
    int wait = sync ? !((dst_array || device_memory(dst)) && (src_array || device_memory(src))) : dst_pageable || src_pageable;
    return submit_copy(s, &o, wait, sync);
}

static CUresult copy_htod(CUdeviceptr dst, const void *src, size_t n, CUstream s, int sync)
{
    COPY_PROLOGUE(s);
    if (n && (!src || !dev_ok(dst, n)))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(s))
        return emu_capture_copy(s, EMU_COPY_HTOD, dst, (CUdeviceptr)(uintptr_t)src, n);
    return emu_copy_bytes(s, (void *)(uintptr_t)dst, src, n, sync, 0);
}

static CUresult copy_dtoh(void *dst, CUdeviceptr src, size_t n, CUstream s, int sync)
{
    COPY_PROLOGUE(s);
    if (n && (!dst || !dev_ok(src, n)))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(s))
        return emu_capture_copy(s, EMU_COPY_DTOH, (CUdeviceptr)(uintptr_t)dst, src, n);
    return emu_copy_bytes(s, dst, (const void *)(uintptr_t)src, n, sync, 0);
}

static CUresult copy_dtod(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int sync)
{
    COPY_PROLOGUE(s);
    if (n && (!dev_ok(dst, n) || !dev_ok(src, n)))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(s))
        return emu_capture_copy(s, EMU_COPY_DTOD, dst, src, n);
    return emu_copy_bytes(s, (void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n, sync, 0);
}

static CUresult copy_unified(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s, int sync)
{
    COPY_PROLOGUE(s);
    if (n && (!unified_ok(dst, n) || !unified_ok(src, n)))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(s))
        return emu_capture_copy(s, EMU_COPY_UNIFIED, dst, src, n);
    return emu_copy_bytes(s, (void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n, sync, 0);
}

EMU_API CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) { return copy_htod(d, s, n, NULL, 1); }
EMU_API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, CUstream st) { return copy_htod(d, s, n, st, 0); }
EMU_API CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n) { return copy_dtoh(d, s, n, NULL, 1); }
EMU_API CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, CUstream st) { return copy_dtoh(d, s, n, st, 0); }
EMU_API CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { return copy_dtod(d, s, n, NULL, 1); }
EMU_API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return copy_dtod(d, s, n, st, 0); }
EMU_API CUresult cuMemcpy(CUdeviceptr d, CUdeviceptr s, size_t n) { return copy_unified(d, s, n, NULL, 1); }
EMU_API CUresult cuMemcpyAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return copy_unified(d, s, n, st, 0); }

/* Peer copies (cuMemcpyPeer*, cuMemcpy3DPeer*): between the memory of two contexts, which need not have
 * peer access enabled (CUDA stages such copies through the host; here every device's memory is host memory,
 * so the copy is a device-to-device copy on the current context's stream). */
EMU_API CUresult cuMemcpyPeer(CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n)
{
    if (!emu_handle_is(dc, EMU_K_CTX) || !emu_handle_is(sc, EMU_K_CTX))
        return CUDA_ERROR_INVALID_CONTEXT;
    return copy_dtod(d, s, n, NULL, 1);
}

EMU_API CUresult cuMemcpyPeerAsync(CUdeviceptr d, CUcontext dc, CUdeviceptr s, CUcontext sc, size_t n, CUstream st)
{
    if (!emu_handle_is(dc, EMU_K_CTX) || !emu_handle_is(sc, EMU_K_CTX))
        return CUDA_ERROR_INVALID_CONTEXT;
    return copy_dtod(d, s, n, st, 0);
}

/* One side of a 2D/3D copy resolved to a base address; `dev` = must be inside an allocation; `arr` = a CUDA
 * array, whose own row pitch and rows per slice replace the descriptor's and which bounds the copy. */
typedef struct side {
    uint8_t *base;
    int dev;
    int unified;
    int arr;
    size_t apitch, aheight, abytes;
} side;

static CUresult resolve_side(CUmemorytype t, const void *host, CUdeviceptr devp, CUarray array, side *out)
{
    switch (t) {
    case CU_MEMORYTYPE_HOST:
        *out = (side){(uint8_t *)(uintptr_t)host, 0, 0, 0, 0, 0, 0};
        return host ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_MEMORYTYPE_DEVICE:
        *out = (side){(uint8_t *)(uintptr_t)devp, 1, 0, 0, 0, 0, 0};
        return devp ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_MEMORYTYPE_UNIFIED:
        *out = (side){(uint8_t *)(uintptr_t)devp, 0, 1, 0, 0, 0, 0};
        return devp ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_MEMORYTYPE_ARRAY:
        *out = (side){NULL, 0, 0, 1, 0, 0, 0};
        return emu_array_layout(array, &out->base, &out->apitch, &out->aheight, &out->abytes) ? CUDA_ERROR_INVALID_HANDLE
                                                                                                 : CUDA_SUCCESS;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static int side_range_ok(const side *s, size_t first, size_t span)
{
    uint64_t p = (uint64_t)(uintptr_t)s->base + first;
    if (s->arr)
        return first <= s->abytes && span <= s->abytes - first;
    if (s->dev)
        return dev_ok(p, span);
    if (s->unified)
        return unified_ok(p, span);
    return 1;
}

/* A side's host memory, for the waiting rules above: 1 pageable, 0 driver-known or device memory. */
static int side_pageable(const side *s) { return !s->dev && !s->arr && host_pageable(s->base); }
static int side_device(const side *s) { return s->arr || s->dev || (s->unified && device_memory(s->base)); }

/* width bytes x height rows x depth slices; pitches in bytes, slice strides = pitch * height */
static CUresult copy_3d(side src, size_t s_off, size_t s_pitch, size_t s_slice, side dst, size_t d_off,
                        size_t d_pitch, size_t d_slice, size_t width, size_t height, size_t depth, CUstream s,
                        int sync)
{
    if (width == 0 || height == 0 || depth == 0)
        return CUDA_SUCCESS;
    if ((height > 1 && (width > s_pitch || width > d_pitch)) || (depth > 1 && (s_slice < s_pitch * height || d_slice < d_pitch * height)))
        return CUDA_ERROR_INVALID_VALUE;
    /* an array's rows do not run into the next row: x + width stays within one row */
    if ((src.arr && s_off % s_pitch + width > s_pitch) || (dst.arr && d_off % d_pitch + width > d_pitch))
        return CUDA_ERROR_INVALID_VALUE;
    size_t s_span = (depth - 1) * s_slice + (height - 1) * s_pitch + width;
    size_t d_span = (depth - 1) * d_slice + (height - 1) * d_pitch + width;
    if (!side_range_ok(&src, s_off, s_span) || !side_range_ok(&dst, d_off, d_span))
        return CUDA_ERROR_INVALID_VALUE;
    copy_op o = {dst.base + d_off, src.base + s_off, d_pitch, d_slice, s_pitch, s_slice, width, height, depth, NULL};
    int wait = sync ? !(side_device(&src) && side_device(&dst)) : side_pageable(&src) || side_pageable(&dst);
    return submit_copy(s, &o, wait, sync);
}

static CUresult copy2d(const CUDA_MEMCPY2D *p, CUstream s, int sync)
{
    COPY_PROLOGUE(s);
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    side src, dst;
    CUresult rc = resolve_side(p->srcMemoryType, p->srcHost, p->srcDevice, p->srcArray, &src);
    if (!rc)
        rc = resolve_side(p->dstMemoryType, p->dstHost, p->dstDevice, p->dstArray, &dst);
    if (rc)
        return rc;
    size_t spitch = src.arr ? src.apitch : p->srcPitch ? p->srcPitch : p->WidthInBytes;
    size_t dpitch = dst.arr ? dst.apitch : p->dstPitch ? p->dstPitch : p->WidthInBytes;
    if (emu_capture_of(s)) {
        CUDA_MEMCPY3D p3;
        memset(&p3, 0, sizeof(p3));
        p3.srcXInBytes = p->srcXInBytes, p3.srcY = p->srcY, p3.srcMemoryType = p->srcMemoryType;
        p3.srcHost = p->srcHost, p3.srcDevice = p->srcDevice, p3.srcArray = p->srcArray, p3.srcPitch = spitch;
        p3.srcHeight = src.arr ? src.aheight : p->Height;
        p3.dstXInBytes = p->dstXInBytes, p3.dstY = p->dstY, p3.dstMemoryType = p->dstMemoryType;
        p3.dstHost = p->dstHost, p3.dstDevice = p->dstDevice, p3.dstArray = p->dstArray, p3.dstPitch = dpitch;
        p3.dstHeight = dst.arr ? dst.aheight : p->Height;
        p3.WidthInBytes = p->WidthInBytes, p3.Height = p->Height, p3.Depth = 1;
        return emu_capture_copy3d(s, &p3);
    }
    return copy_3d(src, p->srcY * spitch + p->srcXInBytes, spitch, 0, dst, p->dstY * dpitch + p->dstXInBytes,
                   dpitch, 0, p->WidthInBytes, p->Height, 1, s, sync);
}

static CUresult copy3d(const CUDA_MEMCPY3D *p, CUstream s, int sync)
{
    COPY_PROLOGUE(s);
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    side src, dst;
    CUresult rc = resolve_side(p->srcMemoryType, p->srcHost, p->srcDevice, p->srcArray, &src);
    if (!rc)
        rc = resolve_side(p->dstMemoryType, p->dstHost, p->dstDevice, p->dstArray, &dst);
    if (rc)
        return rc;
    if (p->srcLOD || p->dstLOD)
        return CUDA_ERROR_INVALID_VALUE; /* "must be set to 0" */
    size_t sp = src.arr ? src.apitch : p->srcPitch ? p->srcPitch : p->WidthInBytes;
    size_t dp = dst.arr ? dst.apitch : p->dstPitch ? p->dstPitch : p->WidthInBytes;
    size_t sh = src.arr ? src.aheight : p->srcHeight ? p->srcHeight : p->Height;
    size_t dh = dst.arr ? dst.aheight : p->dstHeight ? p->dstHeight : p->Height;
    if (emu_capture_of(s))
        return emu_capture_copy3d(s, p);
    return copy_3d(src, (p->srcZ * sh + p->srcY) * sp + p->srcXInBytes, sp, sp * sh, dst,
                   (p->dstZ * dh + p->dstY) * dp + p->dstXInBytes, dp, dp * dh, p->WidthInBytes, p->Height,
                   p->Depth, s, sync);
}

EMU_API CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *p) { return copy2d(p, NULL, 1); }
EMU_API CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *p) { return copy2d(p, NULL, 1); }
EMU_API CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *p, CUstream s) { return copy2d(p, s, 0); }
EMU_API CUresult cuMemcpy3D_v2(const CUDA_MEMCPY3D *p) { return copy3d(p, NULL, 1); }
EMU_API CUresult cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *p, CUstream s) { return copy3d(p, s, 0); }

/* The peer form's contexts name where each side lives; a side that is not an array needs a context. */
static CUresult peer3d(const CUDA_MEMCPY3D_PEER *p, CUDA_MEMCPY3D *out)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    if ((p->srcMemoryType != CU_MEMORYTYPE_ARRAY && !emu_handle_is(p->srcContext, EMU_K_CTX)) ||
        (p->dstMemoryType != CU_MEMORYTYPE_ARRAY && !emu_handle_is(p->dstContext, EMU_K_CTX)))
        return CUDA_ERROR_INVALID_CONTEXT;
    *out = tf_memcpy3d_of_peer(p);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER *p)
{
    CUDA_MEMCPY3D q;
    CUresult rc = emu_check_init();
    if (rc == CUDA_SUCCESS)
        rc = peer3d(p, &q);
    return rc ? rc : copy3d(&q, NULL, 1);
}

EMU_API CUresult cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER *p, CUstream s)
{
    CUDA_MEMCPY3D q;
    CUresult rc = emu_check_init();
    if (rc == CUDA_SUCCESS)
        rc = peer3d(p, &q);
    return rc ? rc : copy3d(&q, s, 0);
}

/* ---- memset ----
 * A stream operation; the synchronous calls (on the NULL stream) return at once for device memory and
 * once done for host-mapped or managed memory ("asynchronous with respect to the host except when the
 * target is pinned host memory or a Unified Memory region"). */
typedef struct memset_op {
    uint8_t *dst;
    size_t pitch, width, height;
    uint32_t value;
    unsigned elem;
} memset_op;

static CUresult run_memset(void *a, CUresult status)
{
    const memset_op *o = a;
    if (status)
        return status;
    for (size_t y = 0; y < o->height; y++) {
        uint8_t *row = o->dst + y * o->pitch;
        if (o->elem == 1) {
            memset(row, (int)(o->value & 0xff), o->width);
        } else if (o->elem == 2) {
            uint16_t v = (uint16_t)o->value;
            for (size_t i = 0; i < o->width; i++)
                memcpy(row + 2 * i, &v, 2);
        } else {
            for (size_t i = 0; i < o->width; i++)
                memcpy(row + 4 * i, &o->value, 4);
        }
    }
    return CUDA_SUCCESS;
}

static CUresult memset2d(CUdeviceptr dst, size_t pitch, uint32_t value, unsigned elem, size_t width, size_t height,
                         CUstream s, int sync)
{
    COPY_PROLOGUE(s);
    if (width == 0 || height == 0)
        return CUDA_SUCCESS;
    if ((dst % elem) != 0 || (height > 1 && pitch < width * elem))
        return CUDA_ERROR_INVALID_VALUE;
    size_t span = (height - 1) * pitch + width * elem;
    if (!dev_ok(dst, span))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(s))
        return emu_capture_memset(s, dst, pitch, value, elem, width, height);
    memset_op o = {(uint8_t *)(uintptr_t)dst, pitch, width, height, value, elem};
    int mode = sync && !device_memory(o.dst) ? EMU_SQ_WAIT
               : height * width * elem <= EMU_SQ_SHORT_BYTES ? EMU_SQ_SHORT : EMU_SQ_ASYNC;
    return emu_sq_submit(s, run_memset, NULL, &o, sizeof(o), mode);
}

EMU_API CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { return memset2d(d, n, v, 1, n, 1, NULL, 1); }
EMU_API CUresult cuMemsetD16_v2(CUdeviceptr d, unsigned short v, size_t n) { return memset2d(d, 2 * n, v, 2, n, 1, NULL, 1); }
EMU_API CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned int v, size_t n) { return memset2d(d, 4 * n, v, 4, n, 1, NULL, 1); }
EMU_API CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) { return memset2d(d, n, v, 1, n, 1, s, 0); }
EMU_API CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream s) { return memset2d(d, 2 * n, v, 2, n, 1, s, 0); }
EMU_API CUresult cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s) { return memset2d(d, 4 * n, v, 4, n, 1, s, 0); }
EMU_API CUresult cuMemsetD2D8_v2(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h) { return memset2d(d, p, v, 1, w, h, NULL, 1); }
EMU_API CUresult cuMemsetD2D16_v2(CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h) { return memset2d(d, p, v, 2, w, h, NULL, 1); }
EMU_API CUresult cuMemsetD2D32_v2(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h) { return memset2d(d, p, v, 4, w, h, NULL, 1); }
EMU_API CUresult cuMemsetD2D8Async(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h, CUstream s) { return memset2d(d, p, v, 1, w, h, s, 0); }
EMU_API CUresult cuMemsetD2D16Async(CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h, CUstream s) { return memset2d(d, p, v, 2, w, h, s, 0); }
EMU_API CUresult cuMemsetD2D32Async(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h, CUstream s) { return memset2d(d, p, v, 4, w, h, s, 0); }
