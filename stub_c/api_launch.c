/* api_launch.c - the client stub's hand-written entry points for kernel launches (parameters packed from a per-
 * function layout cached here). Host functions and stream callbacks: api_hostcalls.c.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------------ launches */
/* Kernel parameter layout per function, asked of the worker once (tfFuncGetParamLayout), with the
 * function's launch limits (TF_FUNC_LIMIT_*, -1 = unknown). The limits only ever refuse a launch after
 * they were asked again (refresh_limits): a stale cache costs a round trip, never a wrong answer. */
typedef struct layout {
    uint64_t fn;
    unsigned count;
    uint32_t total;
    uint32_t off[256], size[256];
    int limits[TF_FUNC_NLIMITS];   /* read and written with __atomic: launches run in many threads */
    struct layout *next;
} layout;
#define LAYOUT_BUCKETS 1024
static layout *g_layouts[LAYOUT_BUCKETS];
static pthread_mutex_t g_layout_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t layout_bucket(uint64_t key) { return (size_t)((key >> 4) * 0x9E3779B97F4A7C15ull >> 54) % LAYOUT_BUCKETS; }

static layout *layout_find(uint64_t key)
{
    pthread_mutex_lock(&g_layout_mu);
    layout *l = g_layouts[layout_bucket(key)];
    while (l && l->fn != key) l = l->next;
    pthread_mutex_unlock(&g_layout_mu);
    return l;
}

static CUresult get_layout(CUfunction f, layout **out)
{
    uint64_t key = (uint64_t)(uintptr_t)f;
    layout *l = layout_find(key);
    if (l) { *out = l; return CUDA_SUCCESS; }
    unsigned count = 0;
    unsigned long long pairs[256];
    int limits[TF_FUNC_NLIMITS];
    CUresult rc = rpc_tfFuncGetParamLayout(f, &count, pairs, limits);
    if (rc) return rc;
    if (count > 256) return CUDA_ERROR_INVALID_VALUE;
    l = calloc(1, sizeof *l);
    if (!l) return CUDA_ERROR_OUT_OF_MEMORY;
    l->fn = key;
    l->count = count;
    memcpy(l->limits, limits, sizeof limits);
    for (unsigned i = 0; i < count; i++) {
        l->off[i] = (uint32_t)(pairs[i] >> 32);
        l->size[i] = (uint32_t)pairs[i];
        if (l->off[i] + l->size[i] > l->total) l->total = l->off[i] + l->size[i];
    }
    size_t b = layout_bucket(key);
    pthread_mutex_lock(&g_layout_mu);
    l->next = g_layouts[b];
    g_layouts[b] = l;
    pthread_mutex_unlock(&g_layout_mu);
    *out = l;
    return CUDA_SUCCESS;
}

static void refresh_limits(CUfunction f, layout *l)
{
    unsigned count = 0;
    unsigned long long pairs[256];
    int limits[TF_FUNC_NLIMITS];
    if (rpc_tfFuncGetParamLayout(f, &count, pairs, limits) != CUDA_SUCCESS) return;
    for (int i = 0; i < TF_FUNC_NLIMITS; i++) __atomic_store_n(&l->limits[i], limits[i], __ATOMIC_RELAXED);
}

/* cuFuncSetAttribute / cuKernelSetAttribute succeeded: keep the cached limit of that handle current (a
 * function got from that kernel is refreshed when a launch of it would be refused). */
static void limits_set(const void *h, CUfunction_attribute attrib, int value)
{
    layout *l = layout_find((uint64_t)(uintptr_t)h);
    if (l && attrib == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)
        __atomic_store_n(&l->limits[TF_FUNC_LIMIT_MAX_DYNAMIC_SHARED], value, __ATOMIC_RELAXED);
}

/* What the device refuses at the launch of this function: more threads than it may run per block
 * (LAUNCH_OUT_OF_RESOURCES, as a GPU answers for registers/.maxntid) or more dynamic shared memory than
 * its limit (48 KiB - static unless raised by cuFuncSetAttribute; INVALID_VALUE). */
static CUresult limits_refuse(const layout *l, uint64_t threads, unsigned shmem)
{
    int mt = __atomic_load_n(&l->limits[TF_FUNC_LIMIT_MAX_THREADS], __ATOMIC_RELAXED);
    int md = __atomic_load_n(&l->limits[TF_FUNC_LIMIT_MAX_DYNAMIC_SHARED], __ATOMIC_RELAXED);
    if (mt >= 0 && threads > (uint64_t)mt) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    if (md >= 0 && shmem > (unsigned)md) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

static CUresult check_limits(CUfunction f, layout *l, const unsigned *d, unsigned shmem)
{
    uint64_t threads = (uint64_t)d[3] * d[4] * d[5];
    if (limits_refuse(l, threads, shmem) == CUDA_SUCCESS) return CUDA_SUCCESS;
    refresh_limits(f, l);
    return limits_refuse(l, threads, shmem);
}

/* Unloading may free function handles the worker will hand out again for other kernels. Forgotten
 * layouts are retired, not freed: a launch in another thread may still be reading one. */
static layout *g_retired;
void tf_layouts_forget_all(void)
{
    pthread_mutex_lock(&g_layout_mu);
    for (size_t b = 0; b < LAYOUT_BUCKETS; b++) {
        for (layout *l = g_layouts[b], *n; l; l = n) {
            n = l->next;
            l->next = g_retired;
            g_retired = l;
        }
        g_layouts[b] = NULL;
    }
    pthread_mutex_unlock(&g_layout_mu);
}

CUresult tfs_cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    CUresult rc = rpc_cuFuncSetAttribute(hfunc, attrib, value);
    if (rc == CUDA_SUCCESS) limits_set(hfunc, attrib, value);
    return rc;
}

CUresult tfs_cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev)
{
    CUresult rc = rpc_cuKernelSetAttribute(attrib, val, kernel, dev);
    if (rc == CUDA_SUCCESS) limits_set(kernel, attrib, val);
    return rc;
}

/* Grid and block dimensions the device cannot run. NVIDIA's driver answers CUDA_ERROR_INVALID_VALUE to a
 * program calling cuLaunchKernel; cudart (which makes no check of its own: it calls cuLaunchKernel and
 * passes the answer on) reports cudaErrorInvalidConfiguration, so the entry points cuGetProcAddress hands
 * cudart answer 9, the code cudart maps to it (t_runtime_entry, see tf_launch_entry_for_runtime). */
#define TF_ERROR_INVALID_CONFIGURATION ((CUresult)9)
static __thread int t_runtime_entry;

static CUresult check_dims(const unsigned *d)
{
    const tf_dev_info *di = tf_dev_info_of(0);
    if (!di) return CUDA_ERROR_INVALID_CONTEXT;
    CUresult bad = t_runtime_entry ? TF_ERROR_INVALID_CONFIGURATION : CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < 6; i++)
        if (d[i] == 0) return bad;
    static const CUdevice_attribute lim[6] = {
        CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z,
        CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z};
    for (int i = 0; i < 6; i++)
        if (di->attr_ok[lim[i]] && d[i] > (unsigned)di->attr[lim[i]]) return bad;
    uint64_t threads = (uint64_t)d[3] * d[4] * d[5];
    if (di->attr_ok[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK] &&
        threads > (uint64_t)di->attr[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK])
        return bad;
    return CUDA_SUCCESS;
}

static int is_cooperative(unsigned numAttrs, const CUlaunchAttribute *attrs)
{
    for (unsigned i = 0; i < numAttrs; i++)
        if (attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE && attrs[i].value.cooperative) return 1;
    return 0;
}

/* Packs a launch's parameters: kernelParams by the function's cached layout, or the `extra` buffer.
 * *out is `small` when it fits, else malloc'd (the caller frees it when != small). Shared with graph
 * kernel nodes (api_graph.c). */
CUresult tf_pack_params(CUfunction f, void **kernelParams, void **extra, uint8_t *small, size_t smallcap,
                        const uint8_t **out, size_t *len)
{
    CUresult rc;
    if (extra) {
        void *buf = NULL;
        size_t *sz = NULL;
        for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) buf = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) sz = extra[i + 1];
            else return CUDA_ERROR_INVALID_VALUE;
        }
        if (kernelParams || !buf || !sz) return CUDA_ERROR_INVALID_VALUE;
        if (*sz > TF_MAX_FRAME) return CUDA_ERROR_INVALID_VALUE;
        *out = buf;
        *len = *sz;
        return CUDA_SUCCESS;
    }
    layout *l;
    if ((rc = get_layout(f, &l))) return rc;
    if (l->count && !kernelParams) return CUDA_ERROR_INVALID_VALUE;
    uint8_t *packed = l->total <= smallcap ? small : malloc(l->total);
    if (!packed) return CUDA_ERROR_OUT_OF_MEMORY;
    memset(packed, 0, l->total);
    for (unsigned i = 0; i < l->count; i++) {
        if (!kernelParams[i]) {
            if (packed != small) free(packed);
            return CUDA_ERROR_INVALID_VALUE;
        }
        memcpy(packed + l->off[i], kernelParams[i], l->size[i]);
    }
    *out = packed;
    *len = l->total;
    return CUDA_SUCCESS;
}

CUresult tf_param_layout(CUfunction f, unsigned *count, const uint32_t **off, const uint32_t **size)
{
    layout *l;
    CUresult rc = get_layout(f, &l);
    if (rc) return rc;
    *count = l->count;
    *off = l->off;
    *size = l->size;
    return CUDA_SUCCESS;
}

static CUresult launch(CUfunction f, const unsigned *dims, unsigned shmem, CUstream hStream, void **kernelParams,
                       void **extra, unsigned numAttrs, const CUlaunchAttribute *attrs)
{
    NEED_INIT();
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (!tf_stream_on_current_device(hStream))
        return CUDA_ERROR_INVALID_HANDLE;   /* a stream of another device (cudart: cudaErrorInvalidResourceHandle) */
    CUresult rc = check_dims(dims);
    if (rc) return rc;
    layout *l;
    if ((rc = get_layout(f, &l))) return rc;
    if ((rc = check_limits(f, l, dims, shmem))) return rc;
    const uint8_t *args = NULL;
    size_t argBytes = 0;
    uint8_t small[4096];
    if ((rc = tf_pack_params(f, kernelParams, extra, small, sizeof small, &args, &argBytes))) return rc;
    if (is_cooperative(numAttrs, attrs)) {
        /* whether the grid fits on the device at once (else COOPERATIVE_LAUNCH_TOO_LARGE) is the
         * backend's occupancy answer: a cooperative launch waits for it, as the driver's call does */
        tfc_call c;
        rc = enc_tfLaunch(&c, f, dims, shmem, hStream, (unsigned)argBytes, args, numAttrs, attrs);
        if (rc == CUDA_SUCCESS) rc = tfc_sync(&c);
    } else {
        rc = rpc_tfLaunch(f, dims, shmem, hStream, (unsigned)argBytes, args, numAttrs, attrs);
    }
    if (args != small && !extra) free((void *)args);
    return rc;
}

CUresult tfs_cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                            unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                            unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra)
{
    unsigned dims[6] = {gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ};
    return launch(f, dims, sharedMemBytes, hStream, kernelParams, extra, 0, NULL);
}

CUresult tfs_cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                       unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                       unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                       void **kernelParams)
{
    unsigned dims[6] = {gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ};
    CUlaunchAttribute coop;
    memset(&coop, 0, sizeof coop);
    coop.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
    coop.value.cooperative = 1;
    return launch(f, dims, sharedMemBytes, hStream, kernelParams, NULL, 1, &coop);
}

CUresult tfs_cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    if (!config || (config->numAttrs && !config->attrs)) return CUDA_ERROR_INVALID_VALUE;
    unsigned dims[6] = {config->gridDimX, config->gridDimY, config->gridDimZ,
                        config->blockDimX, config->blockDimY, config->blockDimZ};
    return launch(f, dims, config->sharedMemBytes, config->hStream, kernelParams, extra, config->numAttrs,
                  config->attrs);
}

/* Per-thread default stream variant: the stream lives in the config. */
CUresult tfs_cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    if (!config || config->hStream) return tfs_cuLaunchKernelEx(config, f, kernelParams, extra);
    CUlaunchConfig c = *config;
    c.hStream = CU_STREAM_PER_THREAD;
    return tfs_cuLaunchKernelEx(&c, f, kernelParams, extra);
}

/* The launch entry points cuGetProcAddress hands out (cudart resolves every call through it): the same
 * functions, answering a bad grid or block the way cudart expects of its driver (see check_dims). */
#define RT_ENTRY(ret_call)          \
    do {                            \
        t_runtime_entry = 1;        \
        CUresult rc_ = (ret_call);  \
        t_runtime_entry = 0;        \
        return rc_;                 \
    } while (0)
static CUresult rt_cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                  unsigned bz, unsigned shmem, CUstream s, void **params, void **extra)
{
    RT_ENTRY(tfs_cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra));
}
static CUresult rt_cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                       unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                       void **extra)
{
    RT_ENTRY(tfs_cuLaunchKernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra));
}
static CUresult rt_cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **params, void **extra)
{
    RT_ENTRY(tfs_cuLaunchKernelEx(config, f, params, extra));
}
static CUresult rt_cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **params, void **extra)
{
    RT_ENTRY(tfs_cuLaunchKernelEx_ptsz(config, f, params, extra));
}
static CUresult rt_cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                             unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params)
{
    RT_ENTRY(tfs_cuLaunchCooperativeKernel(f, gx, gy, gz, bx, by, bz, shmem, s, params));
}
static CUresult rt_cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                                  unsigned by, unsigned bz, unsigned shmem, CUstream s,
                                                  void **params)
{
    RT_ENTRY(tfs_cuLaunchCooperativeKernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, s, params));
}
#undef RT_ENTRY

void *tf_launch_entry_for_runtime(void *fn)
{
    static const struct { void *exported, *runtime; } map[] = {
        {(void *)&tfs_cuLaunchKernel, (void *)&rt_cuLaunchKernel},
        {(void *)&tfs_cuLaunchKernel_ptsz, (void *)&rt_cuLaunchKernel_ptsz},
        {(void *)&tfs_cuLaunchKernelEx, (void *)&rt_cuLaunchKernelEx},
        {(void *)&tfs_cuLaunchKernelEx_ptsz, (void *)&rt_cuLaunchKernelEx_ptsz},
        {(void *)&tfs_cuLaunchCooperativeKernel, (void *)&rt_cuLaunchCooperativeKernel},
        {(void *)&tfs_cuLaunchCooperativeKernel_ptsz, (void *)&rt_cuLaunchCooperativeKernel_ptsz},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].exported == fn) return map[i].runtime;
    return fn;
}
