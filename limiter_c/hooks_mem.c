/* hooks_mem.c - VRAM and context hooks: every device allocation is charged to the ledger BEFORE the driver sees
 * it (over the cap: CUDA_ERROR_OUT_OF_MEMORY, nothing allocated), bound to its pointer/handle on
 * success, refunded by the matching free; cuMemGetInfo / cuDeviceTotalMem / NVML report the cap.
 * Sizes are the logical bytes asked for (pitch: the real pitch; arrays: width*height*depth*channels*
 * element size per level), not the driver's internal rounding. Wrappers listed in hooks.h. */
#include <stdatomic.h>
#include <stdlib.h>
#include "hooks.h"
#include "limiter.h"
#include "tf_limiter_hostmap.h"

/* Charges `bytes` against the current cap, in the allocation's total (all its processes, one CAS) and
 * in this process's ledger; 0 on success. */
static int charge(tfl_state *st, uint64_t bytes)
{
    if (st->broken) return -1;
    tfl_limits l;
    tfl_limits_read(st, &l);
    if (tfl_vram_charge(st, bytes, l.vram_limit) != 0) return -1;
    if (pthread_mutex_lock(&st->lock) != 0) { tfl_vram_return(st, bytes); return -1; }
    tfl_status s = tfl_ledger_reserve(&st->ledger, bytes, 0);
    pthread_mutex_unlock(&st->lock);
    if (s != TFL_OK) tfl_vram_return(st, bytes);
    return s == TFL_OK ? 0 : -1;
}

static void uncharge(tfl_state *st, uint64_t bytes)
{
    if (pthread_mutex_lock(&st->lock) != 0) return;
    tfl_ledger_cancel(&st->ledger, bytes);
    pthread_mutex_unlock(&st->lock);
    tfl_vram_return(st, bytes);
}

/* The context an allocation lives in (its owner in the ledger): destroying the context frees it. */
static uint64_t current_ctx(void)
{
    typedef CUresult (*get_fn)(CUcontext *);
    static _Atomic(get_fn) fn;
    get_fn f = atomic_load_explicit(&fn, memory_order_relaxed);
    if (!f) {
        f = (get_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuCtxGetCurrent");
        atomic_store_explicit(&fn, f, memory_order_relaxed);
    }
    CUcontext c = NULL;
    return f && f(&c) == CUDA_SUCCESS ? (uint64_t)(uintptr_t)c : 0;
}

/* Binds a charged allocation to its key. A key already present means the driver freed the old one
 * behind our back (context destroyed) and reused the address: the stale charge is dropped. Returns -1
 * if the ledger cannot record it (out of host memory): the caller frees the allocation. */
static int bind(tfl_state *st, int kind, uint64_t key, uint64_t bytes)
{
    /* Owned by the context (refunded when it is destroyed): what the driver frees with it. VMM memory belongs to
     * the device; a worker's host mapping outlives any context (tf_limiter_hostmap.h); module globals and the
     * heap stay charged until unloaded / replaced, since the emulated device keeps them past their context
     * (on a GPU that over-charges a destroyed context's: fails closed). */
    uint64_t owner = kind == TFL_KEY_PTR || kind == TFL_KEY_ARRAY || kind == TFL_KEY_MIPMAP || kind == TFL_KEY_GRAPHMEM
                         ? current_ctx() : 0;
    if (pthread_mutex_lock(&st->lock) != 0) { uncharge(st, bytes); return -1; }
    uint64_t stale = 0;
    tfl_status s = tfl_ledger_commit_owned(&st->ledger, kind, key, bytes, owner);
    if (s == TFL_DUPLICATE) {
        stale = tfl_ledger_release(&st->ledger, kind, key);
        s = tfl_ledger_commit_owned(&st->ledger, kind, key, bytes, owner);
    }
    if (s != TFL_OK) tfl_ledger_cancel(&st->ledger, bytes);
    pthread_mutex_unlock(&st->lock);
    tfl_vram_return(st, stale + (s == TFL_OK ? 0 : bytes));
    tfl_publish_usage(st);
    return s == TFL_OK ? 0 : -1;
}

static void refund(tfl_state *st, int kind, uint64_t key)
{
    if (pthread_mutex_lock(&st->lock) != 0) return;
    uint64_t b = tfl_ledger_release(&st->ledger, kind, key);
    pthread_mutex_unlock(&st->lock);
    if (b) {
        tfl_vram_return(st, b);
        tfl_publish_usage(st);
    }
}

/* The common shape of a pointer allocation: charge, call, bind or undo. `call` is an expression
 * using `real` that returns CUresult and fills *dptr. */
#define ALLOC_PTR(sym, bytes, dptr, call) do { \
        TFL_REAL(sym); \
        if (!real) return CUDA_ERROR_NOT_INITIALIZED; \
        if (tfl_depth) return (call); \
        tfl_state *st = tfl_state_get(); \
        uint64_t b_ = (bytes); \
        if (charge(st, b_) != 0) return CUDA_ERROR_OUT_OF_MEMORY; \
        tfl_depth++; \
        CUresult r_ = (call); \
        tfl_depth--; \
        if (r_ != CUDA_SUCCESS || !(dptr)) { uncharge(st, b_); return r_; } \
        if (bind(st, TFL_KEY_PTR, (uint64_t)*(dptr), b_) != 0) { free_ptr(*(dptr)); return CUDA_ERROR_OUT_OF_MEMORY; } \
        return r_; \
    } while (0)

static void free_ptr(CUdeviceptr p)
{
    TFL_REAL(cuMemFree_v2);
    if (real) { tfl_depth++; (void)real(p); tfl_depth--; }
}

TFL_EXPORT CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    ALLOC_PTR(cuMemAlloc_v2, bytesize, dptr, real(dptr, bytesize));
}

TFL_EXPORT CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    /* managed memory may live on the device: charged like device memory (as HAMi-core does) */
    ALLOC_PTR(cuMemAllocManaged, bytesize, dptr, real(dptr, bytesize, flags));
}

/* Stream-ordered allocations: on a capturing stream the allocation becomes graph memory (an alloc node),
 * which lives as long as the graph, whatever the captured free does: it is re-keyed as graph memory
 * (graph_mem_adopt, below). */
static void graph_mem_adopt(CUstream s, CUdeviceptr p);
static CUresult alloc_async(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    ALLOC_PTR(cuMemAllocAsync, bytesize, dptr, real(dptr, bytesize, hStream));
}
static CUresult alloc_async_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    ALLOC_PTR(cuMemAllocAsync_ptsz, bytesize, dptr, real(dptr, bytesize, hStream));
}
static CUresult alloc_pool(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream)
{
    ALLOC_PTR(cuMemAllocFromPoolAsync, bytesize, dptr, real(dptr, bytesize, pool, hStream));
}
static CUresult alloc_pool_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream)
{
    ALLOC_PTR(cuMemAllocFromPoolAsync_ptsz, bytesize, dptr, real(dptr, bytesize, pool, hStream));
}

TFL_EXPORT CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    int outer = tfl_depth == 0;
    CUresult r = alloc_async(dptr, bytesize, hStream);
    if (r == CUDA_SUCCESS && outer) graph_mem_adopt(hStream, *dptr);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    int outer = tfl_depth == 0;
    CUresult r = alloc_async_ptsz(dptr, bytesize, hStream);
    if (r == CUDA_SUCCESS && outer) graph_mem_adopt(hStream, *dptr);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream)
{
    int outer = tfl_depth == 0;
    CUresult r = alloc_pool(dptr, bytesize, pool, hStream);
    if (r == CUDA_SUCCESS && outer) graph_mem_adopt(hStream, *dptr);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                                         CUstream hStream)
{
    int outer = tfl_depth == 0;
    CUresult r = alloc_pool_ptsz(dptr, bytesize, pool, hStream);
    if (r == CUDA_SUCCESS && outer) graph_mem_adopt(hStream, *dptr);
    return r;
}

#define PITCH_ALIGN 512 /* estimate before the call; corrected with the pitch the driver returns */

TFL_EXPORT CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes, size_t Height,
                                               unsigned int ElementSizeBytes)
{
    TFL_REAL(cuMemAllocPitch_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    if (tfl_depth || !dptr || !pPitch) return real(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    tfl_state *st = tfl_state_get();
    uint64_t est = ((uint64_t)WidthInBytes + PITCH_ALIGN - 1) / PITCH_ALIGN * PITCH_ALIGN * (uint64_t)Height;
    if (charge(st, est) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    tfl_depth++;
    CUresult r = real(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
    tfl_depth--;
    if (r != CUDA_SUCCESS) { uncharge(st, est); return r; }
    uint64_t actual = (uint64_t)*pPitch * (uint64_t)Height;
    if (actual > est && charge(st, actual - est) != 0) {
        uncharge(st, est);
        free_ptr(*dptr);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (actual < est) uncharge(st, est - actual);
    if (bind(st, TFL_KEY_PTR, (uint64_t)*dptr, actual) != 0) { free_ptr(*dptr); return CUDA_ERROR_OUT_OF_MEMORY; }
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                                        unsigned long long flags)
{
    TFL_REAL(cuMemCreate);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    if (tfl_depth || !handle) return real(handle, size, prop, flags);
    /* host-located VMM memory (CU_MEM_LOCATION_TYPE_HOST*) costs no device memory */
    int on_device = !prop || prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
    tfl_state *st = tfl_state_get();
    uint64_t b = on_device ? size : 0;
    if (charge(st, b) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    tfl_depth++;
    CUresult r = real(handle, size, prop, flags);
    tfl_depth--;
    if (r != CUDA_SUCCESS) { uncharge(st, b); return r; }
    if (b && bind(st, TFL_KEY_VMM, (uint64_t)*handle, b) != 0) {
        TFL_REAL(cuMemRelease);
        if (real) (void)real(*handle);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return r;
}

/* ---- arrays ------------------------------------------------------------------------------------- */
static unsigned format_bytes(CUarray_format f)
{
    switch ((unsigned)f) {
    case 0x01: case 0x08: case 0xc0: case 0xc6: case 0xb0: return 1;  /* 8-bit, NV12 (luma byte) */
    case 0x02: case 0x09: case 0x10: case 0xc1: case 0xc3: case 0xc7: case 0xc9: return 2;
    case 0x03: case 0x0a: case 0x20: case 0xc2: case 0xc4: case 0xc8: case 0xca: return 4;
    case 0xc5: case 0xcb: return 8;
    default: return 4; /* block-compressed / video formats: an upper bound per channel */
    }
}

static uint64_t array_bytes(size_t w, size_t h, size_t d, CUarray_format f, unsigned channels)
{
    return (uint64_t)(w ? w : 1) * (h ? h : 1) * (d ? d : 1) * (channels ? channels : 1) * format_bytes(f);
}

static CUresult array_done(tfl_state *st, CUresult r, int kind, uint64_t key, uint64_t b)
{
    if (r != CUDA_SUCCESS) { uncharge(st, b); return r; }
    if (bind(st, kind, key, b) != 0) {
        if (kind == TFL_KEY_MIPMAP) { TFL_REAL(cuMipmappedArrayDestroy); if (real) (void)real((CUmipmappedArray)(uintptr_t)key); }
        else { TFL_REAL(cuArrayDestroy); if (real) (void)real((CUarray)(uintptr_t)key); }
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *d)
{
    TFL_REAL(cuArrayCreate_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    if (tfl_depth || !pHandle || !d) return real(pHandle, d);
    tfl_state *st = tfl_state_get();
    uint64_t b = array_bytes(d->Width, d->Height, 1, d->Format, d->NumChannels);
    if (charge(st, b) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    tfl_depth++;
    CUresult r = real(pHandle, d);
    tfl_depth--;
    return array_done(st, r, TFL_KEY_ARRAY, r == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*pHandle : 0, b);
}

TFL_EXPORT CUresult CUDAAPI cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d)
{
    TFL_REAL(cuArray3DCreate_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    if (tfl_depth || !pHandle || !d) return real(pHandle, d);
    tfl_state *st = tfl_state_get();
    uint64_t b = array_bytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels);
    if (charge(st, b) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    tfl_depth++;
    CUresult r = real(pHandle, d);
    tfl_depth--;
    return array_done(st, r, TFL_KEY_ARRAY, r == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*pHandle : 0, b);
}

TFL_EXPORT CUresult CUDAAPI cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d,
                                                   unsigned int numMipmapLevels)
{
    TFL_REAL(cuMipmappedArrayCreate);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    if (tfl_depth || !pHandle || !d) return real(pHandle, d, numMipmapLevels);
    tfl_state *st = tfl_state_get();
    uint64_t b = 0;
    size_t w = d->Width, h = d->Height, z = d->Depth;
    for (unsigned i = 0; i < (numMipmapLevels ? numMipmapLevels : 1) && i < 64; i++) {
        b += array_bytes(w, h, z, d->Format, d->NumChannels);
        w = w > 1 ? w / 2 : 1; h = h > 1 ? h / 2 : h; z = z > 1 ? z / 2 : z;
    }
    if (charge(st, b) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    tfl_depth++;
    CUresult r = real(pHandle, d, numMipmapLevels);
    tfl_depth--;
    return array_done(st, r, TFL_KEY_MIPMAP, r == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*pHandle : 0, b);
}

/* ---- frees: refund only what the driver really freed --------------------------------------------- */
#define FREE_KEY(sym, kind, key, call) do { \
        TFL_REAL(sym); \
        if (!real) return CUDA_ERROR_NOT_INITIALIZED; \
        if (tfl_depth) return (call); \
        tfl_depth++; \
        CUresult r_ = (call); \
        tfl_depth--; \
        if (r_ == CUDA_SUCCESS) refund(tfl_state_get(), kind, (uint64_t)(key)); \
        return r_; \
    } while (0)

TFL_EXPORT CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr) { FREE_KEY(cuMemFree_v2, TFL_KEY_PTR, dptr, real(dptr)); }
TFL_EXPORT CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream s)
{
    FREE_KEY(cuMemFreeAsync, TFL_KEY_PTR, dptr, real(dptr, s));
}
TFL_EXPORT CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream s)
{
    FREE_KEY(cuMemFreeAsync_ptsz, TFL_KEY_PTR, dptr, real(dptr, s));
}
TFL_EXPORT CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle h) { FREE_KEY(cuMemRelease, TFL_KEY_VMM, h, real(h)); }
TFL_EXPORT CUresult CUDAAPI cuArrayDestroy(CUarray a) { FREE_KEY(cuArrayDestroy, TFL_KEY_ARRAY, (uintptr_t)a, real(a)); }
TFL_EXPORT CUresult CUDAAPI cuMipmappedArrayDestroy(CUmipmappedArray a)
{
    FREE_KEY(cuMipmappedArrayDestroy, TFL_KEY_MIPMAP, (uintptr_t)a, real(a));
}

/* ---- host memory a GPU worker process maps for its remote client (include/tf_limiter_hostmap.h) --- */
TFL_EXPORT CUresult tfLimiterChargeHostMap(unsigned long long addr, size_t bytes)
{
    tfl_state *st = tfl_state_get();
    if (charge(st, bytes) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    return bind(st, TFL_KEY_HOSTMAP, addr, bytes) == 0 ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

TFL_EXPORT void tfLimiterRefundHostMap(unsigned long long addr) { refund(tfl_state_get(), TFL_KEY_HOSTMAP, addr); }

/* ---- what the program is told ----------------------------------------------------------------------- */
static void cap_info(tfl_state *st, uint64_t *total, uint64_t *free_b)
{
    tfl_limits l;
    tfl_limits_read(st, &l);
    if (!l.vram_limit) return;
    uint64_t used = tfl_vram_used(st); /* the allocation's, all its processes */
    if (*total > l.vram_limit) *total = l.vram_limit;
    uint64_t room = l.vram_limit > used ? l.vram_limit - used : 0;
    if (*free_b > room) *free_b = room;
}

TFL_EXPORT CUresult CUDAAPI cuMemGetInfo_v2(size_t *free_b, size_t *total)
{
    TFL_REAL(cuMemGetInfo_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(free_b, total);
    if (r != CUDA_SUCCESS || !free_b || !total || tfl_depth) return r;
    uint64_t t = *total, f = *free_b;
    cap_info(tfl_state_get(), &t, &f);
    *total = (size_t)t;
    *free_b = (size_t)f;
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    TFL_REAL(cuDeviceTotalMem_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(bytes, dev);
    if (r != CUDA_SUCCESS || !bytes || tfl_depth) return r;
    uint64_t t = *bytes, f = UINT64_MAX;
    cap_info(tfl_state_get(), &t, &f);
    *bytes = (size_t)t;
    return r;
}

/* NVML reports the whole device; with a cap it reports the cap and this session's usage instead
 * (what nvidia-smi / pynvml inside a local vGPU should see). */
TFL_EXPORT tfl_nvmlReturn_t nvmlDeviceGetMemoryInfo(tfl_nvmlDevice_t dev, tfl_nvmlMemory_t *mem)
{
    TFL_REAL(nvmlDeviceGetMemoryInfo);
    if (!real) return 1; /* NVML_ERROR_UNINITIALIZED */
    tfl_nvmlReturn_t r = real(dev, mem);
    if (r != 0 || !mem) return r;
    tfl_state *st = tfl_state_get();
    uint64_t t = mem->total, f = mem->free;
    cap_info(st, &t, &f);
    if (t != mem->total) { mem->total = t; mem->free = f; mem->used = t - f; }
    return r;
}

TFL_EXPORT tfl_nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(tfl_nvmlDevice_t dev, tfl_nvmlMemory_v2_t *mem)
{
    TFL_REAL(nvmlDeviceGetMemoryInfo_v2);
    if (!real) return 1;
    tfl_nvmlReturn_t r = real(dev, mem);
    if (r != 0 || !mem) return r;
    tfl_state *st = tfl_state_get();
    uint64_t t = mem->total, f = mem->free;
    cap_info(st, &t, &f);
    if (t != mem->total) { mem->total = t; mem->free = f; mem->used = t - f; mem->reserved = 0; }
    return r;
}

/* ---- module globals ----
 * A module's .global/.const variables (a static __device__ array, of any size) are device memory the driver
 * allocates at load: charged after it by the drop of the device's free memory across the load (loads are
 * serialized here; on a GPU another process's allocations in between skew the figure), and over the cap the
 * module is unloaded again (CUDA_ERROR_OUT_OF_MEMORY). When the free memory cannot be read after the load, all
 * of what was free is charged (fails closed). Refunded at unload only (not with the context: see bind). A
 * library the driver loads lazily (cuLibraryLoad* on a GPU with CUDA_MODULE_LOADING=LAZY) allocates its
 * globals later, in cuLibraryGet*: those are not charged. */
static pthread_mutex_t g_load_mu = PTHREAD_MUTEX_INITIALIZER;

static CUresult device_free(size_t *free_b)
{
    TFL_REAL(cuMemGetInfo_v2);
    size_t total = 0;
    *free_b = 0;
    return real ? real(free_b, &total) : CUDA_ERROR_NOT_INITIALIZED;
}

/* `call` loads into *(out) using `real`; `unload` undoes it. */
#define LOAD_CHARGED(sym, kind, out, call, unload) do { \
        TFL_REAL(sym); \
        if (!real) return CUDA_ERROR_NOT_INITIALIZED; \
        if (tfl_depth || !(out)) return (call); \
        tfl_state *st = tfl_state_get(); \
        if (pthread_mutex_lock(&g_load_mu) != 0) return CUDA_ERROR_OPERATING_SYSTEM; \
        size_t before_ = 0, after_ = 0; \
        CUresult r_ = device_free(&before_); \
        if (r_ == CUDA_SUCCESS) { tfl_depth++; r_ = (call); tfl_depth--; } \
        if (r_ == CUDA_SUCCESS && device_free(&after_) != CUDA_SUCCESS) after_ = 0; \
        pthread_mutex_unlock(&g_load_mu); \
        if (r_ != CUDA_SUCCESS) return r_; \
        uint64_t b_ = before_ > after_ ? before_ - after_ : 0; \
        if (b_ && (charge(st, b_) != 0 || bind(st, kind, (uint64_t)(uintptr_t)*(out), b_) != 0)) { \
            tfl_depth++; (void)(unload); tfl_depth--; \
            return CUDA_ERROR_OUT_OF_MEMORY; \
        } \
        return r_; \
    } while (0)

TFL_EXPORT CUresult CUDAAPI cuModuleUnload(CUmodule m)
{
    TFL_REAL(cuModuleUnload);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(m);
    if (r == CUDA_SUCCESS && !tfl_depth) refund(tfl_state_get(), TFL_KEY_MODULE, (uint64_t)(uintptr_t)m);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuLibraryUnload(CUlibrary l)
{
    TFL_REAL(cuLibraryUnload);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(l);
    if (r == CUDA_SUCCESS && !tfl_depth) refund(tfl_state_get(), TFL_KEY_LIBRARY, (uint64_t)(uintptr_t)l);
    return r;
}

static void unload_module(CUmodule m)
{
    TFL_REAL(cuModuleUnload);
    if (real) (void)real(m);
}

static void unload_library(CUlibrary l)
{
    TFL_REAL(cuLibraryUnload);
    if (real) (void)real(l);
}

TFL_EXPORT CUresult CUDAAPI cuModuleLoad(CUmodule *m, const char *fname)
{
    LOAD_CHARGED(cuModuleLoad, TFL_KEY_MODULE, m, real(m, fname), unload_module(*m));
}

TFL_EXPORT CUresult CUDAAPI cuModuleLoadData(CUmodule *m, const void *image)
{
    LOAD_CHARGED(cuModuleLoadData, TFL_KEY_MODULE, m, real(m, image), unload_module(*m));
}

TFL_EXPORT CUresult CUDAAPI cuModuleLoadDataEx(CUmodule *m, const void *image, unsigned int n, CUjit_option *options,
                                               void **values)
{
    LOAD_CHARGED(cuModuleLoadDataEx, TFL_KEY_MODULE, m, real(m, image, n, options, values), unload_module(*m));
}

TFL_EXPORT CUresult CUDAAPI cuModuleLoadFatBinary(CUmodule *m, const void *fatbin)
{
    LOAD_CHARGED(cuModuleLoadFatBinary, TFL_KEY_MODULE, m, real(m, fatbin), unload_module(*m));
}

TFL_EXPORT CUresult CUDAAPI cuLibraryLoadData(CUlibrary *l, const void *code, CUjit_option *jit_options,
                                              void **jit_values, unsigned int njit, CUlibraryOption *lib_options,
                                              void **lib_values, unsigned int nlib)
{
    LOAD_CHARGED(cuLibraryLoadData, TFL_KEY_LIBRARY, l,
                 real(l, code, jit_options, jit_values, njit, lib_options, lib_values, nlib), unload_library(*l));
}

TFL_EXPORT CUresult CUDAAPI cuLibraryLoadFromFile(CUlibrary *l, const char *fname, CUjit_option *jit_options,
                                                  void **jit_values, unsigned int njit, CUlibraryOption *lib_options,
                                                  void **lib_values, unsigned int nlib)
{
    LOAD_CHARGED(cuLibraryLoadFromFile, TFL_KEY_LIBRARY, l,
                 real(l, fname, jit_options, jit_values, njit, lib_options, lib_values, nlib), unload_library(*l));
}

/* ---- the kernels' malloc() heap ----
 * CU_LIMIT_MALLOC_HEAP_SIZE is device memory set aside for kernels' malloc(): a size set is charged like an
 * allocation of it, keyed by its context (a new size replaces the old charge; both count while it changes), and
 * refused over the cap (CUDA_ERROR_OUT_OF_MEMORY, the limit unchanged). The charge stays when the context goes
 * (fails closed: the emulated device keeps blocks kernels took until the process ends, so a refund would let a
 * tenant set and fill a new heap beside them). The driver's default heap (8 MiB) is not charged. */
TFL_EXPORT CUresult CUDAAPI cuCtxSetLimit(CUlimit limit, size_t value)
{
    TFL_REAL(cuCtxSetLimit);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    if (tfl_depth || limit != CU_LIMIT_MALLOC_HEAP_SIZE) return real(limit, value);
    typedef CUresult (*get_limit_fn)(size_t *, CUlimit);
    get_limit_fn get = (get_limit_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuCtxGetLimit");
    size_t old = 0;
    if (!get || get(&old, limit) != CUDA_SUCCESS) return CUDA_ERROR_NOT_INITIALIZED;
    tfl_state *st = tfl_state_get();
    if (charge(st, value) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    tfl_depth++;
    CUresult r = real(limit, value);
    tfl_depth--;
    if (r != CUDA_SUCCESS) {
        uncharge(st, value);
        return r;
    }
    if (bind(st, TFL_KEY_HEAP, current_ctx(), value) != 0) {   /* cannot account for it: the old size back */
        tfl_depth++;
        (void)real(limit, old);
        tfl_depth--;
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return r;
}

/* ---- contexts: the driver frees a destroyed context's memory; refund it ------------------------ */
static void drop_context(CUcontext ctx)
{
    if (!ctx) return;
    tfl_state *st = tfl_state_get();
    uint64_t b = 0;
    if (pthread_mutex_lock(&st->lock) == 0) {
        b = tfl_ledger_release_owner(&st->ledger, (uint64_t)(uintptr_t)ctx);
        pthread_mutex_unlock(&st->lock);
    }
    if (b) {
        tfl_vram_return(st, b);
        tfl_publish_usage(st);
    }
}

static int primary_active(CUdevice dev)
{
    typedef CUresult (*state_fn)(CUdevice, unsigned int *, int *);
    state_fn f = (state_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuDevicePrimaryCtxGetState");
    unsigned flags = 0;
    int active = 0;
    return f && f(dev, &flags, &active) == CUDA_SUCCESS && active;
}

/* The handle of dev's primary context if it is active (a retain + release pair: no net change). */
static CUcontext primary_of(CUdevice dev)
{
    typedef CUresult (*retain_fn)(CUcontext *, CUdevice);
    retain_fn retain = (retain_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuDevicePrimaryCtxRetain");
    TFL_REAL(cuDevicePrimaryCtxRelease_v2);
    CUcontext c = NULL;
    if (!retain || !real || !primary_active(dev) || retain(&c, dev) != CUDA_SUCCESS) return NULL;
    (void)real(dev);
    return c;
}

TFL_EXPORT CUresult CUDAAPI cuCtxDestroy_v2(CUcontext ctx)
{
    TFL_REAL(cuCtxDestroy_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(ctx);
    if (r == CUDA_SUCCESS) drop_context(ctx);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    TFL_REAL(cuDevicePrimaryCtxRelease_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUcontext pctx = primary_of(dev);
    CUresult r = real(dev);
    if (r == CUDA_SUCCESS && pctx && !primary_active(dev)) drop_context(pctx);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    TFL_REAL(cuDevicePrimaryCtxReset_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUcontext pctx = primary_of(dev);
    CUresult r = real(dev);
    if (r == CUDA_SUCCESS && pctx) drop_context(pctx);
    return r;
}

/* ---- graph memory ----
 * An alloc node (cuGraphAddMemAllocNode) is charged when it is made, before the driver sees it (over the
 * cap: CUDA_ERROR_OUT_OF_MEMORY, no node): the emulated device backs it from then on, a GPU at
 * instantiation or launch, so the cap holds no later than the driver would run out. Its memory lives as
 * long as some graph or executable graph holds the node, whatever free nodes or cuMemFreeAsync do
 * between launches, so it is keyed apart from ordinary pointers (TFL_KEY_GRAPHMEM: cuMemFreeAsync of
 * the address refunds nothing) and refunded once the address is no longer an allocation, checked after
 * each graph or executable graph is destroyed (tfl_graph_mem_sweep). */
#define TFL_MAX_GRAPHMEM 1024
static uint64_t g_graphmem[TFL_MAX_GRAPHMEM]; /* st->lock */
static int g_ngraphmem;

TFL_EXPORT CUresult CUDAAPI cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t n,
                                                  CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    TFL_REAL(cuGraphAddMemAllocNode);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    if (tfl_depth || !p || !node) return real(node, g, deps, n, p);
    tfl_state *st = tfl_state_get();
    uint64_t b = p->bytesize;
    if (charge(st, b) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
    tfl_depth++;
    CUresult r = real(node, g, deps, n, p);
    tfl_depth--;
    if (r != CUDA_SUCCESS) {
        uncharge(st, b);
        return r;
    }
    int tracked = 0;
    if (bind(st, TFL_KEY_GRAPHMEM, (uint64_t)p->dptr, b) == 0 && pthread_mutex_lock(&st->lock) == 0) {
        if (g_ngraphmem < TFL_MAX_GRAPHMEM) g_graphmem[g_ngraphmem++] = (uint64_t)p->dptr, tracked = 1;
        pthread_mutex_unlock(&st->lock);
        if (!tracked) refund(st, TFL_KEY_GRAPHMEM, (uint64_t)p->dptr);
    }
    if (!tracked) {  /* cannot account for it: the node goes, as if the allocation failed */
        typedef CUresult (*destroy_node_fn)(CUgraphNode);
        destroy_node_fn dn = (destroy_node_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuGraphDestroyNode");
        if (dn) { tfl_depth++; (void)dn(*node); tfl_depth--; }
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

void tfl_graph_mem_sweep(void)
{
    typedef CUresult (*attr_fn)(void *, CUpointer_attribute, CUdeviceptr);
    static _Atomic(attr_fn) fn;
    attr_fn f = atomic_load_explicit(&fn, memory_order_relaxed);
    if (!f) {
        f = (attr_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuPointerGetAttribute");
        atomic_store_explicit(&fn, f, memory_order_relaxed);
    }
    tfl_state *st = tfl_state_get();
    if (!f || pthread_mutex_lock(&st->lock) != 0) return;
    uint64_t gone[TFL_MAX_GRAPHMEM];
    int ngone = 0;
    for (int i = 0; i < g_ngraphmem;) {
        CUdeviceptr base = 0;
        tfl_depth++;
        CUresult r = f(&base, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, (CUdeviceptr)g_graphmem[i]);
        tfl_depth--;
        if (r == CUDA_ERROR_INVALID_VALUE) {
            gone[ngone++] = g_graphmem[i];
            g_graphmem[i] = g_graphmem[--g_ngraphmem];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&st->lock);
    for (int i = 0; i < ngone; i++) refund(st, TFL_KEY_GRAPHMEM, gone[i]);
}

/* A stream-ordered allocation made on a capturing stream: its charge moves from the pointer key to the
 * graph-memory key (refunded by tfl_graph_mem_sweep when the memory is gone, not by the captured free). */
static void graph_mem_adopt(CUstream s, CUdeviceptr p)
{
    typedef CUresult (*capturing_fn)(CUstream, CUstreamCaptureStatus *);
    static _Atomic(capturing_fn) fn;
    capturing_fn f = atomic_load_explicit(&fn, memory_order_relaxed);
    if (!f) {
        f = (capturing_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuStreamIsCapturing");
        atomic_store_explicit(&fn, f, memory_order_relaxed);
    }
    CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
    tfl_depth++;
    CUresult r = f ? f(s, &cs) : CUDA_ERROR_NOT_SUPPORTED;
    tfl_depth--;
    if (r != CUDA_SUCCESS || cs != CU_STREAM_CAPTURE_STATUS_ACTIVE) return;
    tfl_state *st = tfl_state_get();
    if (pthread_mutex_lock(&st->lock) != 0) return;
    uint64_t owner = current_ctx();
    uint64_t b = tfl_ledger_release(&st->ledger, TFL_KEY_PTR, (uint64_t)p);
    int moved = b && g_ngraphmem < TFL_MAX_GRAPHMEM && tfl_ledger_reserve(&st->ledger, b, 0) == TFL_OK;
    if (moved && tfl_ledger_commit_owned(&st->ledger, TFL_KEY_GRAPHMEM, (uint64_t)p, b, owner) == TFL_OK) {
        g_graphmem[g_ngraphmem++] = (uint64_t)p;
    } else if (moved) {
        tfl_ledger_cancel(&st->ledger, b);
        moved = 0;
    }
    if (b && !moved && tfl_ledger_reserve(&st->ledger, b, 0) == TFL_OK)  /* back under its pointer key */
        (void)tfl_ledger_commit_owned(&st->ledger, TFL_KEY_PTR, (uint64_t)p, b, owner);
    pthread_mutex_unlock(&st->lock);
}
