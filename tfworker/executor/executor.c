/* executor.c - the native executor's session: frame loop over the client socket, handle and device-
 * pointer registries (every value from the client is checked before the backend sees it), and the
 * calls proto/calls.tbl marks exec=hand (module images, kernel parameter layouts, launches, hello).
 * Called by main.c (tf-executor --fd N) and by the frame fuzz harness (tests/fuzz_frames.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "executor.h"
#include "tf_limiter_hostmap.h"
#include "tf_log_line.h"
#include "tf_spin_wait.h"

#define MAX_PARAMS TF_MAX_PARAMS
#define ARGBUF_BYTES (64u << 10)

void tfx_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tf_log_line("tf-executor", 1, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ reader / writer */
int tf_get(tf_rd *r, void *dst, size_t n)
{
    if (r->n - r->off < n) return -1;
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return 0;
}

const void *tf_take(tf_rd *r, uint64_t n)
{
    size_t off = tf_pad8(r->off);
    if (off > r->n || n > r->n - off) return NULL;
    r->off = off + (size_t)n;
    return r->p + off;
}

int tf_done(const tf_rd *r) { return tf_pad8(r->off) == r->n; }

size_t tf_reserve(tf_wr *w, size_t n)
{
    if (w->failed) return 0;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n) cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) { w->failed = 1; return 0; }
        w->buf = b;
        w->cap = cap;
    }
    size_t off = w->len;
    w->len += n;
    return off;
}

/* ---------------------------------------------------------------------------- registries */
/* Handles are keyed by (kind, value): NVIDIA's driver hands out texture and surface objects as small integers
 * that can equal each other or another kind's value, so a value alone names no object. */
static size_t bucket_of(const tfx *x, uint64_t key, int kind)
{
    return (size_t)(((key ^ ((uint64_t)kind << 56)) * 0x9E3779B97F4A7C15ull) >> 20) & (x->nbuckets - 1);
}

tf_reg_entry *tf_reg_get(tfx *x, uint64_t key, int kind)
{
    for (tf_reg_entry *e = x->buckets[bucket_of(x, key, kind)]; e; e = e->next)
        if (e->key == key && e->kind == kind) return e;
    return NULL;
}

int tf_reg_has(tfx *x, uint64_t key, int kind)
{
    return key && tf_reg_get(x, key, kind) != NULL;
}

static void reg_grow(tfx *x)
{
    size_t nb = x->nbuckets * 2;
    tf_reg_entry **b = calloc(nb, sizeof *b);
    if (!b) return;  /* keep the old table: longer chains, still correct */
    tf_reg_entry **old = x->buckets;
    size_t on = x->nbuckets;
    x->buckets = b;
    x->nbuckets = nb;
    for (size_t i = 0; i < on; i++) {
        for (tf_reg_entry *e = old[i], *n; e; e = n) {
            n = e->next;
            size_t k = bucket_of(x, e->key, e->kind);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(old);
}

void tf_reg_add(tfx *x, uint64_t key, int kind, uint64_t parent, int parent_kind)
{
    if (!key) return;
    tf_reg_entry *e = tf_reg_get(x, key, kind);
    if (e) {  /* the value came back for a new object of the same kind (the old one died unseen) */
        e->parent = parent;
        e->parent_kind = parent_kind;
        return;
    }
    e = calloc(1, sizeof *e);
    if (!e) return;
    e->key = key;
    e->kind = kind;
    e->parent = parent;
    e->parent_kind = parent_kind;
    size_t b = bucket_of(x, key, kind);
    e->next = x->buckets[b];
    x->buckets[b] = e;
    if (++x->nentries > x->nbuckets) reg_grow(x);
}

void tf_reg_add_beside(tfx *x, uint64_t key, int kind, uint64_t sibling, int sibling_kind)
{
    const tf_reg_entry *s = tf_reg_get(x, sibling, sibling_kind);
    if (s) tf_reg_add(x, key, kind, s->parent, s->parent_kind);
}

void tf_reg_del(tfx *x, uint64_t key, int kind)
{
    tf_reg_entry **pe = &x->buckets[bucket_of(x, key, kind)];
    for (; *pe; pe = &(*pe)->next) {
        if ((*pe)->key != key || (*pe)->kind != kind) continue;
        tf_reg_entry *e = *pe;
        *pe = e->next;
        free(e->aux);
        free(e);
        x->nentries--;
        if (kind == TFK_MOD || kind == TFK_LIB || kind == TFK_KERNEL || kind == TFK_GRAPH || kind == TFK_GNODE ||
            kind == TFK_MIPMAP || kind == TFK_ARRAY) {
            /* children (functions of a module, kernels of a library, nodes of a graph, the graph a child graph
             * node owns, levels of a mipmapped array, planes of an array) die with it */
            for (size_t i = 0; i < x->nbuckets; i++) {
                for (tf_reg_entry *c = x->buckets[i]; c; c = c->next) {
                    if (c->parent == key && c->parent_kind == kind) {
                        uint64_t ck = c->key;
                        int cknd = c->kind;
                        tf_reg_del(x, ck, cknd);
                        i = (size_t)-1;  /* the table changed: rescan */
                        break;
                    }
                }
            }
        }
        return;
    }
}

static size_t dev_upper(const tfx *x, uint64_t p)  /* first index with base > p */
{
    size_t lo = 0, hi = x->ndev;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x->dev[mid].base <= p) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

void tf_dev_add(tfx *x, uint64_t base, uint64_t size)
{
    if (!base) return;
    size_t i = dev_upper(x, base);
    if (i > 0 && x->dev[i - 1].base == base) { x->dev[i - 1].size = size; return; }
    if (x->ndev == x->devcap) {
        size_t cap = x->devcap ? x->devcap * 2 : 256;
        void *d = realloc(x->dev, cap * sizeof *x->dev);
        if (!d) return;
        x->dev = d;
        x->devcap = cap;
    }
    memmove(&x->dev[i + 1], &x->dev[i], (x->ndev - i) * sizeof *x->dev);
    x->dev[i].base = base;
    x->dev[i].size = size;
    x->ndev++;
}

void tf_dev_del(tfx *x, uint64_t base)
{
    size_t i = dev_upper(x, base);
    if (i > 0 && x->dev[i - 1].base == base) {
        memmove(&x->dev[i - 1], &x->dev[i], (x->ndev - i) * sizeof *x->dev);
        x->ndev--;
    }
}

int tf_dev_ok(tfx *x, uint64_t p, uint64_t len)
{
    size_t i = dev_upper(x, p);
    if (i == 0) return 0;
    uint64_t off = p - x->dev[i - 1].base;
    return off <= x->dev[i - 1].size && len <= x->dev[i - 1].size - off;
}

int tf_dev_is_base(tfx *x, uint64_t p)
{
    size_t i = dev_upper(x, p);
    return i > 0 && x->dev[i - 1].base == p;
}

/* ---------------------------------------------------------------------- hand-written calls */
/* A client thread's current context (a handle value, checked here: a registered context, or one cuCtxDestroy
 * destroyed). A destroyed one stays current to the other threads it was current to in CUDA: this thread then
 * has none in the backend (its stack emptied: the stub sends the next context it wants), and the backend's
 * CUDA_ERROR_INVALID_CONTEXT is answered as CUDA_ERROR_CONTEXT_IS_DESTROYED (tf_session_feed). */
CUresult ex_tfCtxSetCurrent(tfx *x, unsigned long long ctx)
{
    if (!x->bx.cuCtxSetCurrent) return CUDA_ERROR_NOT_SUPPORTED;
    x->cur_ctx_destroyed = 0;
    if (!ctx || tf_reg_has(x, ctx, TFK_CTX)) return x->bx.cuCtxSetCurrent((CUcontext)(uintptr_t)ctx);
    for (unsigned i = 0; i < x->ndead && i < 16; i++) x->cur_ctx_destroyed |= x->dead_ctx[i] == ctx;
    if (!x->cur_ctx_destroyed) return CUDA_ERROR_INVALID_CONTEXT;
    CUcontext cur = NULL;
    for (int i = 0; i < 64 && x->bx.cuCtxGetCurrent && x->bx.cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur; i++)
        if (x->bx.cuCtxSetCurrent(NULL) != CUDA_SUCCESS) break;
    return CUDA_SUCCESS;
}

/* Images are copied and kept until unload: a backend may read them lazily (the emulator does). */
CUresult ex_tfModuleLoadImage(tfx *x, CUmodule *module, const void *image, size_t len)
{
    if (!x->bx.cuModuleLoadData) return CUDA_ERROR_NOT_SUPPORTED;
    if (!image || len == 0) return CUDA_ERROR_INVALID_VALUE;
    void *copy = malloc(len + 1);
    if (!copy) return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(copy, image, len);
    ((char *)copy)[len] = 0;  /* PTX text stays terminated whatever the client sent */
    CUresult rc = x->bx.cuModuleLoadData(module, copy);
    if (rc != CUDA_SUCCESS) { free(copy); return rc; }
    tf_reg_add(x, (uint64_t)(uintptr_t)*module, TFK_MOD, 0, TFK_NONE);
    tf_reg_entry *e = tf_reg_get(x, (uint64_t)(uintptr_t)*module, TFK_MOD);
    if (e) { free(e->aux); e->aux = copy; } else free(copy);
    return CUDA_SUCCESS;
}

CUresult ex_tfLibraryLoadImage(tfx *x, CUlibrary *library, const void *image, size_t len)
{
    if (!x->bx.cuLibraryLoadData) return CUDA_ERROR_NOT_SUPPORTED;
    if (!image || len == 0) return CUDA_ERROR_INVALID_VALUE;
    void *copy = malloc(len + 1);
    if (!copy) return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(copy, image, len);
    ((char *)copy)[len] = 0;
    CUresult rc = x->bx.cuLibraryLoadData(library, copy, NULL, NULL, 0, NULL, NULL, 0);
    if (rc != CUDA_SUCCESS) { free(copy); return rc; }
    tf_reg_add(x, (uint64_t)(uintptr_t)*library, TFK_LIB, 0, TFK_NONE);
    tf_reg_entry *e = tf_reg_get(x, (uint64_t)(uintptr_t)*library, TFK_LIB);
    if (e) { free(e->aux); e->aux = copy; } else free(copy);
    return CUDA_SUCCESS;
}

typedef tf_param_layout param_layout;

/* The parameter layout of a function or kernel, asked of the backend once and kept with its handle. */
CUresult tf_layout_of(tfx *x, CUfunction f, const param_layout **out)
{
    /* a function, or a kernel used as one (CUkernel is usable where CUfunction is) */
    tf_reg_entry *e = tf_reg_get(x, (uint64_t)(uintptr_t)f, TFK_FUNC);
    if (!e) e = tf_reg_get(x, (uint64_t)(uintptr_t)f, TFK_KERNEL);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    if (e->aux) { *out = e->aux; return CUDA_SUCCESS; }
    param_layout *l = calloc(1, sizeof *l);
    if (!l) return CUDA_ERROR_OUT_OF_MEMORY;
    for (unsigned i = 0; i < MAX_PARAMS; i++) {
        size_t off = 0, size = 0;
        CUresult rc;
        if (e->kind == TFK_KERNEL)
            rc = x->be.f_cuKernelGetParamInfo ? x->be.f_cuKernelGetParamInfo((CUkernel)f, i, &off, &size)
                                              : CUDA_ERROR_NOT_SUPPORTED;
        else
            rc = x->be.f_cuFuncGetParamInfo ? x->be.f_cuFuncGetParamInfo(f, i, &off, &size)
                                            : CUDA_ERROR_NOT_SUPPORTED;
        if (rc == CUDA_ERROR_INVALID_VALUE) break;  /* past the last parameter */
        if (rc != CUDA_SUCCESS) { free(l); return rc; }
        if (off > ARGBUF_BYTES || size > ARGBUF_BYTES - off) { free(l); return CUDA_ERROR_INVALID_VALUE; }
        l->off[i] = (uint32_t)off;
        l->size[i] = (uint32_t)size;
        if (off + size > l->total) l->total = (uint32_t)(off + size);
        l->count = i + 1;
    }
    e->aux = l;
    *out = l;
    return CUDA_SUCCESS;
}

CUresult ex_tfFuncGetParamLayout(tfx *x, CUfunction f, unsigned int *count, unsigned long long *layout, int *limits)
{
    const param_layout *l;
    CUresult rc = tf_layout_of(x, f, &l);
    if (rc) return rc;
    if (limits) tfx_func_limits(x, f, tf_reg_has(x, (uint64_t)(uintptr_t)f, TFK_KERNEL), limits);
    *count = l->count;
    if (layout)
        for (unsigned i = 0; i < l->count; i++) {  /* reply outputs are packed: layout may be unaligned */
            unsigned long long v = ((unsigned long long)l->off[i] << 32) | l->size[i];
            memcpy((char *)layout + i * sizeof v, &v, sizeof v);
        }
    return CUDA_SUCCESS;
}

/* Launch attributes: plain values pass, the two that name an event pass when it is one of the session's,
 * the rest (graph-only, unknown) are refused. */
static int attr_allowed(tfx *x, const CUlaunchAttribute *a)
{
    switch (a->id) {
    case CU_LAUNCH_ATTRIBUTE_IGNORE:
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
    case CU_LAUNCH_ATTRIBUTE_NVLINK_UTIL_CENTRIC_SCHEDULING:
        return 1;
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
        return tf_reg_has(x, (uint64_t)(uintptr_t)a->value.programmaticEvent.event, TFK_EVENT);
    case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT:
        return tf_reg_has(x, (uint64_t)(uintptr_t)a->value.launchCompletionEvent.event, TFK_EVENT);
    default:
        return 0;
    }
}

CUresult ex_tfLaunch(tfx *x, CUfunction f, const unsigned int *dims, unsigned int sharedMemBytes, CUstream hStream,
                     unsigned int argBytes, const void *args, unsigned int numAttrs, const CUlaunchAttribute *attrs)
{
    const param_layout *l;
    CUresult rc = tf_layout_of(x, f, &l);
    if (rc) return rc;
    if (!dims || argBytes < l->total || argBytes > ARGBUF_BYTES || (argBytes && !args)) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numAttrs; i++)
        if (!attr_allowed(x, &attrs[i])) return CUDA_ERROR_INVALID_VALUE;
    memcpy(x->argbuf, args, argBytes);  /* 16-aligned: vector parameters need it */
    void *params[MAX_PARAMS];
    for (unsigned i = 0; i < l->count; i++) params[i] = x->argbuf + l->off[i];
    if (numAttrs == 0) {
        if (!x->bx.cuLaunchKernel) return CUDA_ERROR_NOT_SUPPORTED;
        return x->bx.cuLaunchKernel(f, dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], sharedMemBytes, hStream,
                                    params, NULL);
    }
    if (!x->bx.cuLaunchKernelEx) return CUDA_ERROR_NOT_SUPPORTED;
    CUlaunchConfig cfg = {
        .gridDimX = dims[0], .gridDimY = dims[1], .gridDimZ = dims[2],
        .blockDimX = dims[3], .blockDimY = dims[4], .blockDimZ = dims[5],
        .sharedMemBytes = sharedMemBytes, .hStream = hStream,
        .attrs = (CUlaunchAttribute *)(uintptr_t)attrs, .numAttrs = numAttrs,
    };
    return x->bx.cuLaunchKernelEx(&cfg, f, params, NULL);
}

/* 2D copies with the host side packed (rows of `width` bytes back to back in the frame or reply). */
static CUresult copy2d(tfx *x, CUDA_MEMCPY2D *c, CUstream hStream, int async)
{
    if (c->WidthInBytes == 0 || c->Height == 0) return CUDA_SUCCESS;
    if (async) return x->bx.cuMemcpy2DAsync_v2 ? x->bx.cuMemcpy2DAsync_v2(c, hStream) : CUDA_ERROR_NOT_SUPPORTED;
    return x->bx.cuMemcpy2DUnaligned_v2 ? x->bx.cuMemcpy2DUnaligned_v2(c) : CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult h2d_2d(tfx *x, CUdeviceptr dst, size_t dstPitch, size_t width, size_t height, const void *data,
                       CUstream hStream, int async)
{
    CUDA_MEMCPY2D c = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = data, .srcPitch = width,
                       .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = dst, .dstPitch = dstPitch,
                       .WidthInBytes = width, .Height = height};
    return copy2d(x, &c, hStream, async);
}

CUresult ex_tfMemcpy2DHtoD(tfx *x, CUdeviceptr dst, size_t dstPitch, size_t width, size_t height, const void *data,
                           CUstream hStream)
{
    return h2d_2d(x, dst, dstPitch, width, height, data, hStream, 0);
}

CUresult ex_tfMemcpy2DHtoDAsync(tfx *x, CUdeviceptr dst, size_t dstPitch, size_t width, size_t height,
                                const void *data, CUstream hStream)
{
    return h2d_2d(x, dst, dstPitch, width, height, data, hStream, 1);
}

CUresult ex_tfMemcpy2DDtoH(tfx *x, void *data, CUdeviceptr src, size_t srcPitch, size_t width, size_t height,
                           CUstream hStream)
{
    if (!data && width && height) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY2D c = {.srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = src, .srcPitch = srcPitch,
                       .dstMemoryType = CU_MEMORYTYPE_HOST, .dstHost = data, .dstPitch = width,
                       .WidthInBytes = width, .Height = height};
    CUresult rc = copy2d(x, &c, hStream, hStream != NULL);
    if (rc == CUDA_SUCCESS && hStream && x->be.f_cuStreamSynchronize) rc = x->be.f_cuStreamSynchronize(hStream);
    return rc;
}

CUresult ex_tfMemcpy2DDtoD(tfx *x, CUdeviceptr dst, size_t dstPitch, CUdeviceptr src, size_t srcPitch, size_t width,
                           size_t height, CUstream hStream)
{
    CUDA_MEMCPY2D c = {.srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = src, .srcPitch = srcPitch,
                       .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = dst, .dstPitch = dstPitch,
                       .WidthInBytes = width, .Height = height};
    return copy2d(x, &c, hStream, 1);
}

/* ------------------------------------------------------------------- shared-memory copies */
#define SHM_MAX (1ull << 30)

CUresult ex_tfShmAttach(tfx *x, unsigned long long size)
{
    int fd = x->rx_fd;
    x->rx_fd = -1;
    if (fd < 0) return CUDA_ERROR_INVALID_VALUE;
    struct stat st;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    int seals = fcntl(fd, F_GET_SEALS);  /* a window the client could shrink would fault us */
    if (size && size <= SHM_MAX && seals >= 0 && (seals & F_SEAL_SHRINK) && fstat(fd, &st) == 0 &&
        (unsigned long long)st.st_size >= size) {
        void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            if (x->shm) munmap(x->shm, x->shm_size);
            x->shm = p;
            x->shm_size = (size_t)size;
            rc = CUDA_SUCCESS;
        }
    }
    close(fd);
    return rc;
}

static int shm_range_ok(const tfx *x, unsigned long long off, size_t len)
{
    return x->shm && off <= x->shm_size && len <= x->shm_size - off;
}

uint8_t *tfx_shm_at(tfx *x, unsigned long long off, size_t len)
{
    return shm_range_ok(x, off, len) ? x->shm + off : NULL;
}

/* The window is pageable memory: an async copy from it has been staged when the call returns. */
CUresult ex_tfShmHtoD(tfx *x, CUdeviceptr dst, unsigned long long off, size_t len, CUstream hStream)
{
    if (!shm_range_ok(x, off, len)) return CUDA_ERROR_INVALID_VALUE;
    if (hStream)
        return x->be.f_cuMemcpyHtoDAsync_v2 ? x->be.f_cuMemcpyHtoDAsync_v2(dst, x->shm + off, len, hStream)
                                            : CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuMemcpyHtoD_v2 ? x->be.f_cuMemcpyHtoD_v2(dst, x->shm + off, len) : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult ex_tfShmDtoH(tfx *x, unsigned long long off, CUdeviceptr src, size_t len, CUstream hStream)
{
    if (!shm_range_ok(x, off, len)) return CUDA_ERROR_INVALID_VALUE;
    if (!hStream)
        return x->be.f_cuMemcpyDtoH_v2 ? x->be.f_cuMemcpyDtoH_v2(x->shm + off, src, len) : CUDA_ERROR_NOT_SUPPORTED;
    if (!x->be.f_cuMemcpyDtoHAsync_v2 || !x->be.f_cuStreamSynchronize) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuMemcpyDtoHAsync_v2(x->shm + off, src, len, hStream);
    return rc ? rc : x->be.f_cuStreamSynchronize(hStream);  /* the slot is read when we answer */
}

/* 1D copies with an array (cuMemcpyHtoA/AtoH and their Async forms, which wait for their reply): as those
 * calls, from / into the slot; an asynchronous one into the slot is read when we answer. */
CUresult ex_tfShmArray1D(tfx *x, CUarray a, size_t aOff, unsigned long long off, size_t len, int toArray,
                         CUstream hStream)
{
    if (!shm_range_ok(x, off, len)) return CUDA_ERROR_INVALID_VALUE;
    void *slot = x->shm + off;
    if (toArray) {
        if (!hStream)
            return x->be.f_cuMemcpyHtoA_v2 ? x->be.f_cuMemcpyHtoA_v2(a, aOff, slot, len) : CUDA_ERROR_NOT_SUPPORTED;
        return x->be.f_cuMemcpyHtoAAsync_v2 ? x->be.f_cuMemcpyHtoAAsync_v2(a, aOff, slot, len, hStream)
                                            : CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!hStream)
        return x->be.f_cuMemcpyAtoH_v2 ? x->be.f_cuMemcpyAtoH_v2(slot, a, aOff, len) : CUDA_ERROR_NOT_SUPPORTED;
    if (!x->be.f_cuMemcpyAtoHAsync_v2 || !x->be.f_cuStreamSynchronize) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuMemcpyAtoHAsync_v2(slot, a, aOff, len, hStream);
    return rc ? rc : x->be.f_cuStreamSynchronize(hStream);
}

/* A worker driver older than 12.8 only has the first version (same meaning for completed events). */
CUresult ex_cuEventElapsedTime_v2(tfx *x, float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    if (x->be.f_cuEventElapsedTime_v2) return x->be.f_cuEventElapsedTime_v2(pMilliseconds, hStart, hEnd);
    if (x->be.f_cuEventElapsedTime) return x->be.f_cuEventElapsedTime(pMilliseconds, hStart, hEnd);
    return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult ex_cuCtxSynchronize_v2(tfx *x, CUcontext ctx)
{
    if (x->be.f_cuCtxSynchronize_v2) return x->be.f_cuCtxSynchronize_v2(ctx);
    if (!x->be.f_cuCtxSynchronize) return CUDA_ERROR_NOT_SUPPORTED;
    if (!ctx) return x->be.f_cuCtxSynchronize();
    if (!x->bx.cuCtxPushCurrent_v2 || !x->bx.cuCtxPopCurrent_v2) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->bx.cuCtxPushCurrent_v2(ctx);
    if (rc) return rc;
    rc = x->be.f_cuCtxSynchronize();
    CUcontext popped;
    CUresult rc2 = x->bx.cuCtxPopCurrent_v2(&popped);
    return rc ? rc : rc2;
}

CUresult ex_cuCtxGetDevice_v2(tfx *x, CUdevice *device, CUcontext ctx)
{
    if (x->be.f_cuCtxGetDevice_v2) return x->be.f_cuCtxGetDevice_v2(device, ctx);
    if (!x->be.f_cuCtxGetDevice) return CUDA_ERROR_NOT_SUPPORTED;
    if (!ctx) return x->be.f_cuCtxGetDevice(device);
    if (!x->bx.cuCtxPushCurrent_v2 || !x->bx.cuCtxPopCurrent_v2) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->bx.cuCtxPushCurrent_v2(ctx);
    if (rc) return rc;
    rc = x->be.f_cuCtxGetDevice(device);
    CUcontext popped;
    CUresult rc2 = x->bx.cuCtxPopCurrent_v2(&popped);
    return rc ? rc : rc2;
}

CUresult ex_tfHello(tfx *x, unsigned int tableHash, int *driverVersion, int *devCount, tf_dev_info *devs)
{
    if (tableHash != TF_TABLE_HASH) {
        tfx_log("client call table 0x%08x != ours 0x%08x: rebuild the stub and the executor together",
                tableHash, TF_TABLE_HASH);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!x->has_backend || !x->bx.cuDeviceGetCount || !x->bx.cuDeviceGetAttribute) return CUDA_ERROR_NO_DEVICE;
    int n = 0;
    CUresult rc = x->bx.cuDeviceGetCount(&n);
    if (rc) return rc;
    if (n > TF_MAX_DEVICES) n = TF_MAX_DEVICES;
    *devCount = n;
    *driverVersion = 0;
    if (x->bx.cuDriverGetVersion) x->bx.cuDriverGetVersion(driverVersion);
    for (int d = 0; d < n && devs; d++) {
        tf_dev_info *di = &devs[d];
        memset(di, 0, sizeof *di);
        CUdevice dev = d;
        if (x->bx.cuDeviceGet && (rc = x->bx.cuDeviceGet(&dev, d))) return rc;
        if (x->bx.cuDeviceGetName) x->bx.cuDeviceGetName(di->name, sizeof di->name - 1, dev);
        size_t total = 0;
        if (x->bx.cuDeviceTotalMem_v2 && x->bx.cuDeviceTotalMem_v2(&total, dev) == CUDA_SUCCESS) di->total_mem = total;
        if (x->bx.cuDeviceGetUuid) x->bx.cuDeviceGetUuid(&di->uuid, dev);
        for (int a = 1; a < TF_MAX_ATTR && a < CU_DEVICE_ATTRIBUTE_MAX; a++) {
            int v = 0;
            if (x->bx.cuDeviceGetAttribute(&v, (CUdevice_attribute)a, dev) == CUDA_SUCCESS) {
                di->attr[a] = v;
                di->attr_ok[a] = 1;
            }
        }
    }
    return CUDA_SUCCESS;
}

static void stage_load(void *lib);

/* -------------------------------------------------------------------------------- session */
int tf_session_init(tfx *x, void *lib)
{
    memset(x, 0, sizeof *x);
    x->nbuckets = 1024;
    x->buckets = calloc(x->nbuckets, sizeof *x->buckets);
    x->argbuf = aligned_alloc(16, ARGBUF_BYTES);
    if (!x->buckets || !x->argbuf) return -1;
    x->verbose = getenv("TF_EXECUTOR_DEBUG") != NULL;
    /* set by tfworker/gpu_process.py for the emulated device, whose device pointers are host addresses */
    const char *dh = getenv("TF_EXECUTOR_HOST_DEVICE_MEMORY");
    x->direct_host = dh && strcmp(dh, "1") == 0;
    x->rx_fd = -1;
    x->tx_fd = -1;
    x->fd = -1;
    stage_load(lib);
    if (!lib) return 0;
    tf_backend_load(&x->be, lib);
    tfx_graph_load(lib);
    tfx_host_calls_load(lib);
#define LOAD(name) *(void **)&x->bx.name = dlsym(lib, #name)
    LOAD(cuInit);
    LOAD(cuDriverGetVersion);
    LOAD(cuDeviceGetCount);
    LOAD(cuDeviceGet);
    LOAD(cuDeviceGetName);
    LOAD(cuDeviceTotalMem_v2);
    LOAD(cuDeviceGetAttribute);
    LOAD(cuCtxSetCurrent);
    LOAD(cuCtxGetCurrent);
    LOAD(cuCtxPushCurrent_v2);
    LOAD(cuCtxPopCurrent_v2);
    LOAD(cuModuleLoadData);
    LOAD(cuLibraryLoadData);
    LOAD(cuLaunchKernel);
    LOAD(cuLaunchKernelEx);
    LOAD(cuMemcpy2DUnaligned_v2);
    LOAD(cuMemcpy2DAsync_v2);
    LOAD(cuMemcpy3D_v2);
    LOAD(cuMemcpy3DAsync_v2);
    LOAD(cuMemHostRegister_v2);
    LOAD(cuMemHostGetDevicePointer_v2);
    LOAD(cuMemHostUnregister);
    LOAD(cuMemGetAddressRange_v2);
    LOAD(cuIpcOpenMemHandle_v2);
    LOAD(cuIpcCloseMemHandle);
    LOAD(cuIpcOpenEventHandle);
    LOAD(cuIpcGetMemHandle);
    LOAD(cuIpcGetEventHandle);
    LOAD(cuMemPoolExportToShareableHandle);
    LOAD(cuMemPoolImportFromShareableHandle);
    LOAD(cuMemPoolImportPointer);
    LOAD(cuPointerGetAttribute);
#undef LOAD
    *(void **)&x->bx.cuDeviceGetUuid = dlsym(lib, "cuDeviceGetUuid_v2");
    if (!x->bx.cuDeviceGetUuid) *(void **)&x->bx.cuDeviceGetUuid = dlsym(lib, "cuDeviceGetUuid");
    if (!x->bx.cuInit) return -1;
    CUresult rc = x->bx.cuInit(0);
    if (rc != CUDA_SUCCESS) {
        tfx_log("backend cuInit failed: %d", rc);
        return -1;
    }
    x->has_backend = 1;
    return 0;
}

void tf_session_free(tfx *x)
{
    for (size_t i = 0; i < x->nbuckets; i++) {
        for (tf_reg_entry *e = x->buckets[i], *n; e; e = n) {
            n = e->next;
            free(e->aux);
            free(e);
        }
    }
    free(x->buckets);
    tfx_copy_deferred_free(x);
    if (x->shm) munmap(x->shm, x->shm_size);
    tf_vmm_free(x);
    if (x->rx_fd >= 0) close(x->rx_fd);
    if (x->tx_fd >= 0) close(x->tx_fd);
    free(x->dev);
    free(x->hostmaps);
    free(x->w.buf);
    free(x->argbuf);
    memset(x, 0, sizeof *x);
    x->rx_fd = -1;
    x->tx_fd = -1;
}

/* Keeps the first failure per stream of calls nobody waits for (until the next reply carries it). */
static void latch(tfx *x, uint64_t stream, CUresult rc)
{
    for (uint32_t i = 0; i < x->nlatched; i++)
        if (x->latched[i].stream == stream) return;
    if (x->nlatched < TF_MAX_LATCHED)
        x->latched[x->nlatched++] = (tf_latched){.stream = stream, .error = rc};
}

/* Appends the latched entries and the console records to the reply payload in w and fills the header. */
static void finish_reply(tfx *x, tf_wr *w, CUresult rc, tf_rep_hdr *rep)
{
    if (x->nlatched) {
        size_t off = tf_reserve(w, x->nlatched * sizeof(tf_latched));
        if (!w->failed) memcpy(w->buf + off, x->latched, x->nlatched * sizeof(tf_latched));
    }
    const uint8_t *con;
    size_t ncon = tfx_console_take(&con);
    if (ncon && !w->failed) {
        size_t off = tf_reserve(w, ncon);
        if (!w->failed) memcpy(w->buf + off, con, ncon);
    }
    *rep = (tf_rep_hdr){.len = (uint32_t)w->len, .result = rc, .nlatched = w->failed ? 0 : x->nlatched,
                        .nconsole = w->failed ? 0 : (uint32_t)ncon};
    if (w->failed) rep->len = 0;
    x->nlatched = 0;
}

int tf_session_feed(tfx *x, const tf_req_hdr *h, const uint8_t *body, tf_out_fn out, void *octx)
{
    tf_rd r = {body, h->len, 0};
    x->w.len = 0;
    x->w.failed = 0;
    x->cur_stream = 0;
    CUresult rc;
    if (h->call < TF_N_CALLS) {
        rc = tf_dispatch[h->call](x, &r, &x->w);
        if (rc == CUDA_ERROR_INVALID_CONTEXT && x->cur_ctx_destroyed) rc = CUDA_ERROR_CONTEXT_IS_DESTROYED;
        if (x->verbose) tfx_log("%s -> %d", tf_call_names[h->call], rc);
    } else {
        static int logged;
        rc = CUDA_ERROR_NOT_SUPPORTED;
        if (logged++ < 3) tfx_log("unknown call id %u (client built from another call table?)", h->call);
    }
    if (rc != CUDA_SUCCESS) x->w.len = 0;
    if (rc != CUDA_SUCCESS && x->tx_fd >= 0) { close(x->tx_fd); x->tx_fd = -1; }
    x->w.failed = 0;
    if (h->flags & TF_REQ_NOREPLY) {
        if (rc != CUDA_SUCCESS) latch(x, x->cur_stream, rc);
        return 0;
    }
    tf_rep_hdr rep;
    finish_reply(x, &x->w, rc, &rep);
    return out(octx, &rep, sizeof rep, x->w.buf, rep.len);
}

static int sock_out(void *ctx, const void *a, size_t an, const void *b, size_t bn)
{
    struct iovec iov[2] = {{(void *)(uintptr_t)a, an}, {(void *)(uintptr_t)b, bn}};
    return tf_conn_writev(ctx, iov, bn ? 2 : 1);
}

/* Receive buffer of the frame loop: frames are consumed whole, so `start` stays 8-aligned. */
typedef struct rbuf { uint8_t *buf; size_t cap, start, end; } rbuf;

/* Makes n bytes from rb->start available. 1 = ok, 0 = clean EOF before any byte, -1 = error. */
static int rb_need(tfx *x, rbuf *rb, size_t n)
{
    while (rb->end - rb->start < n) {
        if (rb->start + n > rb->cap) {  /* make room: slide down, grow if the frame is bigger */
            memmove(rb->buf, rb->buf + rb->start, rb->end - rb->start);
            rb->end -= rb->start;
            rb->start = 0;
            if (n > rb->cap) {
                size_t ncap = rb->cap;
                while (ncap < n) ncap *= 2;
                uint8_t *nb = aligned_alloc(16, ncap);
                if (!nb) return -1;
                memcpy(nb, rb->buf, rb->end);
                free(rb->buf);
                rb->buf = nb;
                rb->cap = ncap;
            }
        }
        if (rb->end == rb->start) tf_conn_wait_readable(x);   /* idle: the next request is usually close */
        ssize_t k = tf_conn_read(x, rb->buf + rb->end, rb->cap - rb->end, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0 && rb->end == rb->start) return 0;
        if (k <= 0) {
            tfx_log("connection closed mid-frame or failed (%s)", k ? strerror(errno) : "eof");
            return -1;
        }
        rb->end += (size_t)k;
    }
    return 1;
}

/* A reply whose payload lives elsewhere (device memory): header, payload, the latched entries, then the
 * console records. */
int tfx_send_reply(tfx *x, CUresult rc, const void *payload, size_t n)
{
    tf_latched lat[TF_MAX_LATCHED];
    uint32_t nl = x->nlatched;
    memcpy(lat, x->latched, nl * sizeof *lat);
    x->nlatched = 0;
    const uint8_t *con;
    size_t ncon = tfx_console_take(&con);
    tf_rep_hdr rep = {.len = (uint32_t)(n + nl * sizeof *lat + ncon), .result = rc, .nlatched = nl,
                      .nconsole = (uint32_t)ncon};
    struct iovec iov[4] = {{&rep, sizeof rep}, {(void *)(uintptr_t)payload, n}, {lat, nl * sizeof *lat},
                           {(void *)(uintptr_t)con, ncon}};
    return tf_conn_writev(x, iov, 4);
}

#define DIRECT_MIN (64u << 10)

/* Waits for the work a copy must follow (direct copies bypass the backend's copy engine). */
static CUresult order_before_copy(tfx *x, int async, CUstream s)
{
    if (async) return x->be.f_cuStreamSynchronize ? x->be.f_cuStreamSynchronize(s) : CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuCtxSynchronize ? x->be.f_cuCtxSynchronize() : CUDA_ERROR_NOT_SUPPORTED;
}

/* Host-to-device copy streamed from the socket straight into device memory, when device memory is host
 * memory of this process (the emulator): no staging copy. Only the header and the fixed part are
 * buffered. Returns 1 handled, 0 not applicable (the generic path answers), -1 session error. */
static int direct_h2d(tfx *x, rbuf *rb, const tf_req_hdr *h, size_t fixed)
{
    int async = h->call == TF_CALL_cuMemcpyHtoDAsync_v2;
    tf_rd r = {rb->buf + rb->start + sizeof *h, fixed, 0};
    CUdeviceptr_v2 dst;
    uint8_t present;
    size_t count;
    CUstream s = NULL;
    if (tf_get(&r, &dst, sizeof dst) || tf_get(&r, &present, 1) || tf_get(&r, &count, sizeof count) ||
        (async && tf_get(&r, &s, sizeof s)))
        return 0;
    if (present != 1 || count < DIRECT_MIN || tf_pad8(count) != h->len - fixed || !tf_dev_ok(x, dst, count)) return 0;
    if (async && (uintptr_t)s > 2 && !tf_reg_has(x, (uint64_t)(uintptr_t)s, TFK_STREAM)) return 0;
    if (async && tfx_stream_capturing(x, s)) return 0;  /* the generic path refuses it (exec_graph.c) */
    CUresult rc = order_before_copy(x, async, s);
    uint8_t *dev = (uint8_t *)(uintptr_t)dst;
    size_t total = tf_pad8(count), got = 0;
    rb->start += sizeof *h + fixed;
    size_t take = rb->end - rb->start < total ? rb->end - rb->start : total;
    if (rc == CUDA_SUCCESS) memcpy(dev, rb->buf + rb->start, take < count ? take : count);
    rb->start += take;
    got = take;
    if (rb->start == rb->end) rb->start = rb->end = 0;
    while (got < total) {
        ssize_t k;
        if (got < count && rc == CUDA_SUCCESS) {
            k = tf_conn_read(x, dev + got, count - got, 0);
        } else {  /* padding, or a payload we must drain after a failure */
            uint8_t sink[4096];
            k = tf_conn_read(x, sink, total - got < sizeof sink ? total - got : sizeof sink, 0);
        }
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            tfx_log("connection closed inside a copy (%s)", k ? strerror(errno) : "eof");
            return -1;
        }
        got += (size_t)k;
    }
    if (h->flags & TF_REQ_NOREPLY) {
        if (rc != CUDA_SUCCESS) latch(x, (uint64_t)(uintptr_t)s, rc);
        return 1;
    }
    return tfx_send_reply(x, rc, NULL, 0) ? -1 : 1;
}

/* Device-to-host copy sent from device memory itself (same condition as direct_h2d). */
static int direct_d2h(tfx *x, const tf_req_hdr *h, const uint8_t *body)
{
    int async = h->call == TF_CALL_cuMemcpyDtoHAsync_v2;
    tf_rd r = {body, h->len, 0};
    uint8_t present;
    CUdeviceptr_v2 src;
    size_t count;
    CUstream s = NULL;
    if (tf_get(&r, &present, 1) || tf_get(&r, &src, sizeof src) || tf_get(&r, &count, sizeof count) ||
        (async && tf_get(&r, &s, sizeof s)) || !tf_done(&r))
        return 0;
    if ((h->flags & TF_REQ_NOREPLY) || present != 1 || count < DIRECT_MIN || count > TF_MAX_FRAME ||
        !tf_dev_ok(x, src, count))
        return 0;
    if (async && (uintptr_t)s > 2 && !tf_reg_has(x, (uint64_t)(uintptr_t)s, TFK_STREAM)) return 0;
    if (async && tfx_stream_capturing(x, s)) return 0;
    CUresult rc = order_before_copy(x, async, s);
    if (rc != CUDA_SUCCESS) return tfx_send_reply(x, rc, NULL, 0) ? -1 : 1;
    return tfx_send_reply(x, CUDA_SUCCESS, (const void *)(uintptr_t)src, count) ? -1 : 1;
}

/* Buffered frame loop: one read() often brings a whole batch of queued calls. Returns 0 when the
 * client closed the connection cleanly, -1 on a protocol or I/O error (the session ends either way). */
int tf_serve(tfx *x, int fd)
{
    x->fd = fd;
    rbuf rb = {.cap = 1u << 20};
    rb.buf = aligned_alloc(16, rb.cap);
    if (!rb.buf) return -1;
    int ret = -1;
    /* TF_EXECUTOR_RECORD=FILE keeps every request frame: how tests/fuzz/ corpus files are made */
    const char *rec_path = getenv("TF_EXECUTOR_RECORD");
    FILE *rec = rec_path ? fopen(rec_path, "ab") : NULL;
    for (;;) {
        tf_req_hdr h;
        int k = rb_need(x, &rb, sizeof h);
        if (k == 0) { ret = 0; break; }
        if (k < 0) break;
        memcpy(&h, rb.buf + rb.start, sizeof h);
        if (h.len > TF_MAX_FRAME || h.len % 8) {
            tfx_log("bad frame (len %u, call %u): closing the session", h.len, h.call);
            break;
        }
        if (x->direct_host && !rec && (h.call == TF_CALL_cuMemcpyHtoD_v2 || h.call == TF_CALL_cuMemcpyHtoDAsync_v2)) {
            size_t fixed = tf_pad8(h.call == TF_CALL_cuMemcpyHtoD_v2 ? TF_FIXED_cuMemcpyHtoD_v2
                                                                    : TF_FIXED_cuMemcpyHtoDAsync_v2);
            if (h.len >= fixed + DIRECT_MIN) {
                if (rb_need(x, &rb, sizeof h + fixed) <= 0) break;
                int d = direct_h2d(x, &rb, &h, fixed);
                if (d < 0) break;
                if (d > 0) continue;
            }
        }
        if (rb_need(x, &rb, sizeof h + h.len) <= 0) break;
        const uint8_t *body = rb.buf + rb.start + sizeof h;
        if (rec && fwrite(rb.buf + rb.start, 1, sizeof h + h.len, rec) != sizeof h + h.len) {
            fclose(rec);
            rec = NULL;
        }
        int d = 0;
        if (x->direct_host && (h.call == TF_CALL_cuMemcpyDtoH_v2 || h.call == TF_CALL_cuMemcpyDtoHAsync_v2))
            d = direct_d2h(x, &h, body);
        else if (h.call == TF_CALL_tfDeferredRead)
            d = tfx_deferred_read_direct(x, &h, body);
        if (d < 0) break;
        if (d == 0 && tf_session_feed(x, &h, body, sock_out, x)) {
            tfx_log("reply failed: %s", strerror(errno));
            break;
        }
        rb.start += sizeof h + h.len;
        if (rb.start == rb.end) rb.start = rb.end = 0;
    }
    if (rec) fclose(rec);
    free(rb.buf);
    return ret;
}

/* ------------------------------------------------------------------- managed memory */
/* The limiter's charge for host memory this process maps for the client (tf_limiter_hostmap.h): the
 * limiter is LD_PRELOADed here by the worker daemon, so these are found in the process; absent (no
 * limiter), nothing is charged, as for device allocations. */
CUresult tfx_hostmap_charge(uint64_t addr, size_t bytes)
{
    tf_limiter_charge_hostmap_fn f = (tf_limiter_charge_hostmap_fn)dlsym(RTLD_DEFAULT, TF_LIMITER_CHARGE_HOSTMAP);
    return f ? f(addr, bytes) : CUDA_SUCCESS;
}

void tfx_hostmap_refund(uint64_t addr)
{
    tf_limiter_refund_hostmap_fn f = (tf_limiter_refund_hostmap_fn)dlsym(RTLD_DEFAULT, TF_LIMITER_REFUND_HOSTMAP);
    if (f) f(addr);
}

/* Staging buffers (graph host copies, deferred device-to-host copies): page-locked host memory of the backend,
 * so its copies stay asynchronous; local calls of the stub, so not in x->be. */
static struct {
    CUresult (*alloc_host)(void **, size_t);
    CUresult (*free_host)(void *);
} g_stage;

static void stage_load(void *lib)
{
    g_stage.alloc_host = NULL;
    g_stage.free_host = NULL;
    if (!lib) return;
    *(void **)&g_stage.alloc_host = dlsym(lib, "cuMemAllocHost_v2");
    *(void **)&g_stage.free_host = dlsym(lib, "cuMemFreeHost");
}

CUresult tfx_stage_alloc(uint64_t key, size_t len, void **buf)
{
    *buf = NULL;
    if (!g_stage.alloc_host || !g_stage.free_host) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = tfx_hostmap_charge(key, len);
    if (rc) return rc;
    rc = g_stage.alloc_host(buf, len);
    if (rc) {
        *buf = NULL;
        tfx_hostmap_refund(key);
    }
    return rc;
}

void tfx_stage_free(uint64_t key, void *buf)
{
    if (!buf) return;
    if (g_stage.free_host(buf) != CUDA_SUCCESS) tfx_log("freeing a staging buffer failed");
    tfx_hostmap_refund(key);
}

/* The mappings made (x->hostmaps), each with the context current when it was made: CUDA frees host memory
 * registered in a context with it, so cuCtxDestroy / cuDevicePrimaryCtxReset drop that context's mappings. */
static int hostmap_record(tfx *x, uint64_t addr, uint64_t size)
{
    CUcontext ctx = NULL;
    if (x->bx.cuCtxGetCurrent && x->bx.cuCtxGetCurrent(&ctx) != CUDA_SUCCESS) ctx = NULL;
    if (x->nhostmaps == x->hostmapcap) {
        size_t cap = x->hostmapcap ? 2 * x->hostmapcap : 16;
        void *n = realloc(x->hostmaps, cap * sizeof *x->hostmaps);
        if (!n) return -1;
        x->hostmaps = n;
        x->hostmapcap = cap;
    }
    x->hostmaps[x->nhostmaps].addr = addr;
    x->hostmaps[x->nhostmaps].size = size;
    x->hostmaps[x->nhostmaps].ctx = (uint64_t)(uintptr_t)ctx;
    x->nhostmaps++;
    return 0;
}

static void hostmap_forget(tfx *x, size_t i) { x->hostmaps[i] = x->hostmaps[--x->nhostmaps]; }

/* The backend has destroyed or reset `ctx` (its registrations are gone with it): unmaps and refunds the
 * host memory mapped in it. */
static void hostmaps_drop_ctx(tfx *x, CUcontext ctx)
{
    for (size_t i = 0; i < x->nhostmaps;) {
        if (x->hostmaps[i].ctx != (uint64_t)(uintptr_t)ctx) {
            i++;
            continue;
        }
        if (munmap((void *)(uintptr_t)x->hostmaps[i].addr, x->hostmaps[i].size) == 0) tfx_hostmap_refund(x->hostmaps[i].addr);
        else tfx_log("unmapping %#llx after its context went: %s", (unsigned long long)x->hostmaps[i].addr, strerror(errno));
        hostmap_forget(x, i);
    }
}

/* The backend destroyed or reset `ctx`: what this process made for the client in it (host mappings, graph
 * copies' staging buffers) went with it; the records and VRAM charges follow. */
static void ctx_gone(tfx *x, CUcontext ctx)
{
    hostmaps_drop_ctx(x, ctx);
    tfx_graph_host_ctx_gone(ctx);
    tfx_copy_deferred_ctx_gone(ctx);
}

CUresult ex_cuCtxDestroy_v2(tfx *x, CUcontext ctx)
{
    if (!x->be.f_cuCtxDestroy_v2) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuCtxDestroy_v2(ctx);
    if (rc == CUDA_SUCCESS) {
        ctx_gone(x, ctx);
        x->dead_ctx[x->ndead++ % 16] = (uint64_t)(uintptr_t)ctx;
    }
    return rc;
}

/* Device dev's primary context when it is active, else NULL (an inactive one holds nothing): its handle
 * comes from a retain + release pair, no net change. */
static CUcontext primary_if_active(tfx *x, CUdevice dev)
{
    CUcontext prim = NULL;
    unsigned flags = 0;
    int active = 0;
    if (!x->be.f_cuDevicePrimaryCtxGetState || !x->be.f_cuDevicePrimaryCtxRetain || !x->be.f_cuDevicePrimaryCtxRelease_v2 ||
        x->be.f_cuDevicePrimaryCtxGetState(dev, &flags, &active) != CUDA_SUCCESS || !active ||
        x->be.f_cuDevicePrimaryCtxRetain(&prim, dev) != CUDA_SUCCESS)
        return NULL;
    if (x->be.f_cuDevicePrimaryCtxRelease_v2(dev) != CUDA_SUCCESS)
        tfx_log("primary context of device %d: release after retain failed", (int)dev);
    return prim;
}

CUresult ex_cuDevicePrimaryCtxReset_v2(tfx *x, CUdevice dev)
{
    if (!x->be.f_cuDevicePrimaryCtxReset_v2) return CUDA_ERROR_NOT_SUPPORTED;
    CUcontext prim = primary_if_active(x, dev);
    CUresult rc = x->be.f_cuDevicePrimaryCtxReset_v2(dev);
    if (rc == CUDA_SUCCESS && prim) ctx_gone(x, prim);
    return rc;
}

/* The last release destroys the primary context (CUDA: it is reset once its last reference is released):
 * inactive after the release means it went. */
CUresult ex_cuDevicePrimaryCtxRelease_v2(tfx *x, CUdevice dev)
{
    if (!x->be.f_cuDevicePrimaryCtxRelease_v2) return CUDA_ERROR_NOT_SUPPORTED;
    CUcontext prim = primary_if_active(x, dev);
    CUresult rc = x->be.f_cuDevicePrimaryCtxRelease_v2(dev);
    if (rc == CUDA_SUCCESS && prim && !primary_if_active(x, dev)) ctx_gone(x, prim);
    return rc;
}

/* The client's managed allocation at address `addr`: host memory of this process mapped at the same
 * address and registered with the device, whose unified address is then also `addr`. fd < 0: private
 * memory (the stub keeps the two copies coherent); else the client's memfd, mapped shared, so both
 * processes address the same bytes. The stub makes its pinned host memory the same way. It lives on the
 * GPU host, pinned for the client, so it is charged against the allocation's VRAM cap before it is made
 * (over the cap: CUDA_ERROR_OUT_OF_MEMORY); this process's exit gives it back with the rest. Any other
 * outcome frees what was made, refunds the charge and tells the client. */
static CUresult managed_map_at(tfx *x, CUdeviceptr *dptr, unsigned long long addr, size_t bytesize, int fd)
{
    if (!x->bx.cuMemHostRegister_v2 || !x->bx.cuMemHostGetDevicePointer_v2 || !x->bx.cuMemHostUnregister)
        return CUDA_ERROR_NOT_SUPPORTED;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!addr || addr % page || !bytesize || bytesize % page) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = tfx_hostmap_charge(addr, bytesize);
    if (rc) return rc;
    void *want = (void *)(uintptr_t)addr;
    void *p = fd < 0 ? mmap(want, bytesize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
                     : mmap(want, bytesize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
    rc = CUDA_ERROR_NOT_SUPPORTED;
    if (p != MAP_FAILED && p != want)   /* kernels without MAP_FIXED_NOREPLACE treat it as a hint */
        munmap(p, bytesize);
    if (p == want) {
        rc = x->bx.cuMemHostRegister_v2(p, bytesize, CU_MEMHOSTREGISTER_DEVICEMAP);
        if (rc) munmap(p, bytesize);
    }
    if (rc) {
        tfx_hostmap_refund(addr);
        return rc;
    }
    CUdeviceptr d = 0;
    rc = x->bx.cuMemHostGetDevicePointer_v2(&d, p, 0);
    if (rc == CUDA_SUCCESS && d != (CUdeviceptr)addr) rc = CUDA_ERROR_NOT_SUPPORTED;
    if (rc == CUDA_SUCCESS && hostmap_record(x, addr, bytesize)) rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        x->bx.cuMemHostUnregister(p);
        munmap(p, bytesize);
        tfx_hostmap_refund(addr);
        return rc;
    }
    *dptr = d;
    return CUDA_SUCCESS;
}

CUresult ex_tfMemAllocAt(tfx *x, CUdeviceptr *dptr, unsigned long long addr, size_t bytesize)
{
    return managed_map_at(x, dptr, addr, bytesize, -1);
}

/* The memfd must come with the frame and be sealed against shrinking (a client that shrank it would
 * make this process fault when a kernel touches the range). */
CUresult ex_tfMemAllocAtFd(tfx *x, CUdeviceptr *dptr, unsigned long long addr, size_t bytesize)
{
    int fd = x->rx_fd;
    x->rx_fd = -1;
    if (fd < 0) return CUDA_ERROR_INVALID_VALUE;
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    if (seals >= 0 && (seals & F_SEAL_SHRINK) && fstat(fd, &st) == 0 && (unsigned long long)st.st_size >= bytesize)
        rc = managed_map_at(x, dptr, addr, bytesize, fd);
    close(fd);
    return rc;
}

CUresult ex_tfMemFreeAt(tfx *x, CUdeviceptr dptr)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    if (!x->bx.cuMemGetAddressRange_v2 || !x->bx.cuMemHostUnregister) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->bx.cuMemGetAddressRange_v2(&base, &size, dptr);
    if (rc == CUDA_SUCCESS && base != dptr) rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) rc = x->bx.cuMemHostUnregister((void *)(uintptr_t)dptr);
    if (rc == CUDA_SUCCESS && munmap((void *)(uintptr_t)dptr, size) == 0) tfx_hostmap_refund(dptr);
    for (size_t i = 0; rc == CUDA_SUCCESS && i < x->nhostmaps; i++)
        if (x->hostmaps[i].addr == dptr) hostmap_forget(x, i);
    return rc;
}
