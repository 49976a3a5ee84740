/* api_launch.c - the client stub's hand-written entry points for kernel launches (parameters packed from a per-
 * function layout cached here), host callbacks.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------------ launches */
/* Kernel parameter layout per function, asked of the worker once (tfFuncGetParamLayout). */
typedef struct layout {
    uint64_t fn;
    unsigned count;
    uint32_t total;
    uint32_t off[256], size[256];
    struct layout *next;
} layout;
#define LAYOUT_BUCKETS 1024
static layout *g_layouts[LAYOUT_BUCKETS];
static pthread_mutex_t g_layout_mu = PTHREAD_MUTEX_INITIALIZER;

static CUresult get_layout(CUfunction f, const layout **out)
{
    uint64_t key = (uint64_t)(uintptr_t)f;
    size_t b = (size_t)((key >> 4) * 0x9E3779B97F4A7C15ull >> 54) % LAYOUT_BUCKETS;
    pthread_mutex_lock(&g_layout_mu);
    for (layout *l = g_layouts[b]; l; l = l->next)
        if (l->fn == key) { pthread_mutex_unlock(&g_layout_mu); *out = l; return CUDA_SUCCESS; }
    pthread_mutex_unlock(&g_layout_mu);
    unsigned count = 0;
    unsigned long long pairs[256];
    CUresult rc = rpc_tfFuncGetParamLayout(f, &count, pairs);
    if (rc) return rc;
    if (count > 256) return CUDA_ERROR_INVALID_VALUE;
    layout *l = calloc(1, sizeof *l);
    if (!l) return CUDA_ERROR_OUT_OF_MEMORY;
    l->fn = key;
    l->count = count;
    for (unsigned i = 0; i < count; i++) {
        l->off[i] = (uint32_t)(pairs[i] >> 32);
        l->size[i] = (uint32_t)pairs[i];
        if (l->off[i] + l->size[i] > l->total) l->total = l->off[i] + l->size[i];
    }
    pthread_mutex_lock(&g_layout_mu);
    l->next = g_layouts[b];
    g_layouts[b] = l;
    pthread_mutex_unlock(&g_layout_mu);
    *out = l;
    return CUDA_SUCCESS;
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

/* The checks a driver makes at the launch call itself (the rest comes back latched). The driver's
 * answer to a bad grid or block is 9, which cuda.h does not name; cudart reports it as
 * cudaErrorInvalidConfiguration. */
#define TF_ERROR_INVALID_CONFIGURATION ((CUresult)9)
static CUresult check_dims(const unsigned *d)
{
    const tf_dev_info *di = tf_dev_info_of(0);
    if (!di) return CUDA_ERROR_INVALID_CONTEXT;
    for (int i = 0; i < 6; i++)
        if (d[i] == 0) return TF_ERROR_INVALID_CONFIGURATION;
    static const CUdevice_attribute lim[6] = {
        CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z,
        CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z};
    for (int i = 0; i < 6; i++)
        if (di->attr_ok[lim[i]] && d[i] > (unsigned)di->attr[lim[i]]) return TF_ERROR_INVALID_CONFIGURATION;
    uint64_t threads = (uint64_t)d[3] * d[4] * d[5];
    if (di->attr_ok[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK] &&
        threads > (uint64_t)di->attr[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK])
        return TF_ERROR_INVALID_CONFIGURATION;
    return CUDA_SUCCESS;
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
    const layout *l;
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
    const layout *l;
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
    CUresult rc = check_dims(dims);
    if (rc) return rc;
    const uint8_t *args = NULL;
    size_t argBytes = 0;
    uint8_t small[4096];
    if ((rc = tf_pack_params(f, kernelParams, extra, small, sizeof small, &args, &argBytes))) return rc;
    rc = rpc_tfLaunch(f, dims, shmem, hStream, (unsigned)argBytes, args, numAttrs, attrs);
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

/* Host functions run in the client, after the stream's earlier work is done: the stub waits for the
 * stream and calls them in place, which keeps stream order (later work is not queued yet). */
CUresult tfs_cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    int captured;  /* into a graph, as a host node that calls back here (api_graph.c) */
    CUresult rc = tf_capture_host_func(hStream, fn, userData, &captured);
    if (captured || rc) return rc;
    rc = tfs_cuStreamSynchronize(hStream);
    if (rc) return rc;
    fn(userData);
    return CUDA_SUCCESS;
}

CUresult tfs_cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData, unsigned int flags)
{
    if (!callback || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = tfs_cuStreamSynchronize(hStream);
    if (rc == CUDA_ERROR_INVALID_HANDLE || rc == CUDA_ERROR_INVALID_CONTEXT || rc == CUDA_ERROR_NOT_INITIALIZED)
        return rc;
    callback(hStream, rc, userData);
    return CUDA_SUCCESS;
}
