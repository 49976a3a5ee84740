/* emu_launch.c - kernel launches, streams and events of the emulated device.
 *
 * Execution model: launches, host functions, callbacks and event records are operations on their
 * stream's queue (emu_stream_queue.c): the call checks its arguments, queues the work and returns; the
 * stream's thread runs it. Synchronize calls wait; queries answer CUDA_ERROR_NOT_READY while work is
 * pending. A kernel fault (ILLEGAL_ADDRESS, ILLEGAL_INSTRUCTION, LAUNCH_FAILED, ...) is sticky for
 * the context and reported by the calls after it. Kernels run on TF_EMU_THREADS host threads
 * (default: number of CPUs) inside ptx_launch; kernels of different streams run at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"

extern __typeof__(ptx_launch) ptx_launch __attribute__((weak));
extern __typeof__(ptx_kernel_param_count) ptx_kernel_param_count __attribute__((weak));
extern __typeof__(ptx_kernel_param_info) ptx_kernel_param_info __attribute__((weak));
extern __typeof__(ptx_kernel_param_buffer_size) ptx_kernel_param_buffer_size __attribute__((weak));
void emu_kernel_attrs(const emu_func *f, ptx_kernel_attrs *a); /* emu_module.c */

/* ---- device printf: the FIFO between two flushes ----
 * One process-wide buffer (one device; kernels run on worker threads that have no current context), its
 * size the CU_LIMIT_PRINTF_FIFO_SIZE of the context of the last launch. A printf that does not fit is
 * dropped whole, as a GPU drops records once its FIFO is full (the GPU counts records - format pointer and
 * arguments - where this counts the formatted text). */
static pthread_mutex_t g_printf_mu = PTHREAD_MUTEX_INITIALIZER;
static char *g_printf_buf;
static size_t g_printf_len, g_printf_cap;
static size_t g_printf_limit = 1 << 20;

static void printf_append(const char *text, size_t len)
{
    pthread_mutex_lock(&g_printf_mu);
    if (g_printf_len + len <= g_printf_limit) {
        if (g_printf_len + len > g_printf_cap) {
            size_t cap = g_printf_cap ? g_printf_cap : 4096;
            while (cap < g_printf_len + len)
                cap *= 2;
            char *b = realloc(g_printf_buf, cap);
            if (b) {
                g_printf_buf = b;
                g_printf_cap = cap;
            }
        }
        if (g_printf_len + len <= g_printf_cap) {
            memcpy(g_printf_buf + g_printf_len, text, len);
            g_printf_len += len;
        }
    }
    pthread_mutex_unlock(&g_printf_mu);
}

void emu_printf_flush(void)
{
    pthread_mutex_lock(&g_printf_mu);
    if (g_printf_len) {
        /* stdio's stdout, as NVIDIA's driver: the program's own buffered output stays in order */
        flockfile(stdout);
        fwrite(g_printf_buf, 1, g_printf_len, stdout);
        fflush(stdout);
        funlockfile(stdout);
        g_printf_len = 0;
    }
    pthread_mutex_unlock(&g_printf_mu);
}

/* A program that ends without a synchronize still shows its kernels' output (cudart's teardown
 * destroys the context, which flushes, on a GPU). */
__attribute__((destructor)) static void printf_at_exit(void) { emu_printf_flush(); }

static void printf_limit_from(const emu_ctx *c)
{
    pthread_mutex_lock(&g_printf_mu);
    g_printf_limit = c->limits[CU_LIMIT_PRINTF_FIFO_SIZE];
    ptx_device_print = printf_append;
    pthread_mutex_unlock(&g_printf_mu);
}

CUresult emu_stream_check(CUstream s)
{
    if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD)
        return CUDA_SUCCESS;
    return emu_handle_is(s, EMU_K_STREAM) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* The context of a checked stream: a created stream's; the NULL, legacy and per-thread streams are the
 * current context's (cur). */
static const emu_ctx *stream_ctx(CUstream s, const emu_ctx *cur)
{
    if (emu_handle_is(s, EMU_K_STREAM) && ((emu_stream *)s)->ctx)
        return ((emu_stream *)s)->ctx;
    return cur;
}

static int stream_dev(CUstream s, const emu_ctx *cur) { return stream_ctx(s, cur)->dev; }

int emu_stream_dev(CUstream s)
{
    const emu_ctx *cur = emu_ctx_current();
    return cur ? stream_dev(s, cur) : 0;
}

typedef struct launch_req {
    emu_func *f;
    unsigned grid[3], block[3];
    size_t shmem;
    CUstream stream;
    void **params;
    void **extra;
    int cooperative;
    CUresult bad_dims; /* the answer to a bad grid/block: INVALID_VALUE, or 9 for cudart (rt_* entries) */
} launch_req;

/* ---- occupancy: NVIDIA's occupancy calculator (cuda_occupancy.h: cudaOccMaxActiveBlocksPerMultiprocessor)
 * for this device (compute capability 8.0: 4 sub-partitions, registers allocated per warp in units of 256,
 * shared memory in units of 128 bytes plus the reserved 1 KiB per block, carveouts 0/8/16/32/64/100/132/164
 * KiB), fed with the function's own attributes: registers, static shared memory, .maxntid, the dynamic
 * shared memory limit (cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES) and the preferred carveout. */
static int dev_attr(CUdevice_attribute a, int fallback)
{
    int v = 0;
    return cuDeviceGetAttribute(&v, a, 0) == CUDA_SUCCESS && v > 0 ? v : fallback;
}

static size_t carveout_align(size_t size) /* cudaOccAlignUpShmemSizeVoltaPlus, CC 8.0 */
{
    static const size_t steps[] = {0, 8, 16, 32, 64, 100, 132, 164};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (size <= steps[i] * 1024)
            return steps[i] * 1024;
    return 0; /* above the largest carveout: no block fits */
}

int emu_occupancy(const emu_func *f, int block, size_t dyn)
{
    ptx_kernel_attrs a;
    emu_kernel_attrs(f, &a);
    if (block <= 0 || block > a.max_threads_per_block)
        return 0;
    const int warp = dev_attr(CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32);
    const int warps = (block + warp - 1) / warp;
    /* warps */
    int by_warps = dev_attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 2048) / warp / warps;
    /* registers (per warp, granularity 256, 4 sub-partitions) */
    int by_regs = INT32_MAX;
    if (a.num_regs > 0) {
        const int per_warp = (a.num_regs * warp + 255) / 256 * 256, subparts = 4;
        const int per_block = dev_attr(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 65536);
        const int assumed = per_warp * ((warps + subparts - 1) / subparts * subparts);
        if (per_block < assumed || per_block < per_warp * warps || a.num_regs > 256)
            by_regs = 0;
        else
            by_regs = dev_attr(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, 65536) / subparts / per_warp *
                      subparts / warps;
    }
    /* shared memory */
    const size_t reserved = (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK, 1024);
    const size_t per_sm = (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 167936);
    const size_t per_block = (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 48 * 1024);
    const size_t optin = (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 163 * 1024);
    const size_t stat = a.static_shared_bytes + reserved;
    const size_t alloc = (stat + dyn + 127) / 128 * 128;
    const size_t max_use = stat + (size_t)f->max_dynamic_shared;
    const size_t limit = (max_use > per_block ? optin : per_block) + reserved;
    int by_smem;
    if (dyn > (size_t)f->max_dynamic_shared || alloc > limit) {
        by_smem = 0;
    } else {
        int pref = f->carveout;
        if (pref < 0)
            pref = f->cache == CU_FUNC_CACHE_PREFER_L1 ? 0 : f->cache == CU_FUNC_CACHE_PREFER_SHARED ? 100
                 : f->cache == CU_FUNC_CACHE_PREFER_EQUAL ? 50 : -1;
        size_t smem = carveout_align(pref < 0 ? per_sm : (size_t)pref * per_sm / 100);
        if (smem < alloc)
            smem = carveout_align(alloc);
        by_smem = alloc ? (int)(smem / alloc) : INT32_MAX;
    }
    int n = dev_attr(CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR, 32);
    if (by_warps < n)
        n = by_warps;
    if (by_regs < n)
        n = by_regs;
    if (by_smem < n)
        n = by_smem;
    return n;
}

/* cudaOccAvailableDynamicSMemPerBlock: the dynamic shared memory each of numBlocks blocks of `block`
 * threads may use when they share an SM; INVALID_VALUE when numBlocks such blocks never fit at once. */
CUresult emu_occupancy_available_dynamic(const emu_func *f, int numBlocks, int block, size_t *out)
{
    ptx_kernel_attrs a;
    emu_kernel_attrs(f, &a);
    if (numBlocks <= 0 || block <= 0 || emu_occupancy(f, block, 0) < numBlocks)
        return CUDA_ERROR_INVALID_VALUE;
    const size_t reserved = (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK, 1024);
    const size_t per_sm = (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 167936);
    const size_t per_block = (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 48 * 1024);
    const size_t optin = (size_t)dev_attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 163 * 1024);
    const size_t limit = (per_sm > per_block ? optin : per_block) + reserved;
    size_t smem;
    if (numBlocks == 1) {
        smem = limit;
    } else {
        int pref = f->carveout;
        if (pref < 0)
            pref = f->cache == CU_FUNC_CACHE_PREFER_L1 ? 0 : f->cache == CU_FUNC_CACHE_PREFER_SHARED ? 100
                 : f->cache == CU_FUNC_CACHE_PREFER_EQUAL ? 50 : -1;
        smem = carveout_align(pref < 0 ? per_sm : (size_t)pref * per_sm / 100);
        if (!smem)
            smem = carveout_align(1);
    }
    size_t avail = smem / (size_t)numBlocks / 128 * 128;
    if (avail > limit)
        avail = limit;
    avail = avail > a.static_shared_bytes ? avail - a.static_shared_bytes : 0;
    if (avail > (size_t)f->max_dynamic_shared)
        avail = (size_t)f->max_dynamic_shared;
    *out = avail;
    return CUDA_SUCCESS;
}

static CUresult check_config(const launch_req *r)
{
    ptx_kernel_attrs a;
    emu_kernel_attrs(r->f, &a);
    if (!r->grid[0] || !r->grid[1] || !r->grid[2] || !r->block[0] || !r->block[1] || !r->block[2])
        return r->bad_dims;
    if (r->grid[0] > 2147483647u || r->grid[1] > 65535 || r->grid[2] > 65535)
        return r->bad_dims;
    if (r->block[0] > 1024 || r->block[1] > 1024 || r->block[2] > 64)
        return r->bad_dims;
    unsigned long long threads = (unsigned long long)r->block[0] * r->block[1] * r->block[2];
    if (threads > 1024)
        return r->bad_dims;
    if (threads > (unsigned long long)a.max_threads_per_block) /* .maxntid smaller than the block */
        return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    /* dynamic shared memory above the function's limit (48 KiB - static unless raised with
     * cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)) is an invalid argument, as on a GPU */
    if (r->shmem > (size_t)r->f->max_dynamic_shared || a.static_shared_bytes + r->shmem > EMU_MAX_SHARED_PER_BLOCK_OPTIN)
        return CUDA_ERROR_INVALID_VALUE;
    if (r->cooperative) {
        /* every block must be resident at once: the occupancy of this configuration on every SM (at
         * least one block: a configuration that launches at all runs one block per SM here) */
        unsigned long long blocks = (unsigned long long)r->grid[0] * r->grid[1] * r->grid[2];
        int per_sm = emu_occupancy(r->f, (int)threads, r->shmem);
        if (blocks > (unsigned long long)(per_sm > 0 ? per_sm : 1) * EMU_SM_COUNT)
            return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
    }
    return CUDA_SUCCESS;
}

/* Packs kernelParams (or takes the `extra` buffer) into the layout ptx_kernel_param_info gives. */
static CUresult pack_params(const launch_req *r, uint8_t **buf, size_t *len, int *owned)
{
    const ptx_kernel *k = r->f->k;
    size_t need = ptx_kernel_param_buffer_size(k);
    *owned = 0;
    if (r->extra) {
        void *ptr = NULL;
        size_t size = 0;
        int have_size = 0;
        for (int i = 0; i < 64 && r->extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (r->extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
                ptr = r->extra[i + 1];
            } else if (r->extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) {
                if (!r->extra[i + 1])
                    return CUDA_ERROR_INVALID_VALUE;
                size = *(size_t *)r->extra[i + 1];
                have_size = 1;
            } else {
                return CUDA_ERROR_INVALID_VALUE;
            }
        }
        if (r->params || (need && (!ptr || !have_size || size < need)))
            return CUDA_ERROR_INVALID_VALUE;
        *buf = ptr;
        *len = size;
        return CUDA_SUCCESS;
    }
    int n = ptx_kernel_param_count(k);
    if (n > 0 && !r->params)
        return CUDA_ERROR_INVALID_VALUE;
    uint8_t *b = calloc(need ? need : 1, 1);
    if (!b)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (int i = 0; i < n; i++) {
        size_t off, sz;
        if (ptx_kernel_param_info(k, i, &off, &sz) != 0 || off + sz > need || !r->params[i]) {
            free(b);
            return CUDA_ERROR_INVALID_VALUE;
        }
        memcpy(b + off, r->params[i], sz);
    }
    *buf = b;
    *len = need;
    *owned = 1;
    return CUDA_SUCCESS;
}

CUresult emu_kernel_pack(emu_func *f, void **params, void **extra, uint8_t **buf, size_t *len)
{
    if (!f || !ptx_kernel_param_count || !ptx_kernel_param_info || !ptx_kernel_param_buffer_size)
        return CUDA_ERROR_INVALID_HANDLE;
    launch_req r = {f, {1, 1, 1}, {1, 1, 1}, 0, NULL, params, extra, 0, CUDA_ERROR_INVALID_VALUE};
    uint8_t *b;
    int owned;
    CUresult rc = pack_params(&r, &b, len, &owned);
    if (rc)
        return rc;
    if (owned) {
        *buf = b;
        return CUDA_SUCCESS;
    }
    *buf = malloc(*len ? *len : 1);
    if (!*buf)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(*buf, b, *len);
    return CUDA_SUCCESS;
}

/* A queued launch: the packed parameters are its own. */
typedef struct kernel_op {
    emu_func *f;
    unsigned grid[3], block[3];
    size_t shmem;
    uint8_t *buf;
    size_t len;
    int cooperative;
    emu_ctx *ctx;
} kernel_op;

static void drop_kernel(void *a) { free(((kernel_op *)a)->buf); }

static CUresult run_kernel(void *a, CUresult status)
{
    const kernel_op *r = a;
    if (status)
        return status; /* the context faulted: later work does not run */
    ptx_launch_cfg cfg = {
        .grid = {r->grid[0], r->grid[1], r->grid[2]},
        .block = {r->block[0], r->block[1], r->block[2]},
        .dynamic_shared_bytes = r->shmem,
        .param_buffer = r->buf,
        .param_buffer_size = r->len,
        .worker_threads = g_emu.worker_threads,
        .cooperative = r->cooperative,
    };
    char log[512] = "";
    int trace = emu_trace_launches();
    ptx_launch_prepare(r->f->k, &cfg); /* before the busy mark: a compile the launch waits for is host time */
    uint64_t t0 = trace ? emu_now_ns() : 0, c0 = trace ? emu_process_cpu_ns() : 0, icount = 0;
    emu_busy_enter();
    ptx_env env_buf; /* several devices: the launching context decides which memory is its to access */
    const ptx_env *env = emu_launch_env(r->ctx ? r->ctx : emu_ctx_current(), &env_buf);
    int lrc = ptx_launch(r->f->k, &cfg, env, trace ? &icount : NULL, log, sizeof(log));
    emu_busy_exit();
    if (trace)
        emu_log("launch %s grid (%u,%u,%u) block (%u,%u,%u) shmem %zu%s: %.3f ms (process CPU %.3f ms), %llu warp "
                "instructions, rc %d",
                r->f->name, r->grid[0], r->grid[1], r->grid[2], r->block[0], r->block[1], r->block[2], r->shmem,
                r->cooperative ? " cooperative" : "", (double)(emu_now_ns() - t0) / 1e6,
                (double)(emu_process_cpu_ns() - c0) / 1e6, (unsigned long long)icount, lrc);
    if (lrc != CUDA_SUCCESS) {
        const char *name = "?";
        cuGetErrorName((CUresult)lrc, &name);
        emu_log("kernel %s failed: %s%s%s", r->f->name, name ? name : "?", log[0] ? ": " : "", log);
        if (emu_is_sticky_error((CUresult)lrc))
            emu_ctx_set_sticky(r->ctx, (CUresult)lrc);
    }
    return (CUresult)lrc;
}

static CUresult launch(const launch_req *r)
{
    static atomic_int warned_no_exec;
    EMU_ENTER(c);
    CUresult rc = emu_stream_check(r->stream);
    if (rc)
        return rc;
    if (!r->f)
        return CUDA_ERROR_INVALID_HANDLE;
    if (g_emu.ndev > 1 && stream_dev(r->stream, c) != c->dev)
        return CUDA_ERROR_INVALID_HANDLE; /* a stream of another device (cudart: cudaErrorInvalidResourceHandle) */
    if (!ptx_launch || !ptx_kernel_param_count || !ptx_kernel_param_info || !ptx_kernel_param_buffer_size) {
        emu_log_once(warned_no_exec, "launch: this build has no PTX executor (ptx_*.c not linked)");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    rc = emu_func_load(r->f); /* lazy loading: the kernel is decoded at its first launch */
    if (rc)
        return rc;
    rc = check_config(r);
    if (rc)
        return rc;
    emu_printf_flush(); /* a launch flushes the output of the work before it, as on a GPU */
    printf_limit_from(c);
    uint8_t *buf;
    size_t len;
    int owned;
    rc = pack_params(r, &buf, &len, &owned);
    if (rc)
        return rc;
    if (emu_capture_of(r->stream)) {
        rc = emu_capture_kernel(r->stream, r->f, r->grid, r->block, r->shmem, buf, len, r->cooperative);
        if (owned)
            free(buf);
        return rc;
    }
    kernel_op op = {r->f, {r->grid[0], r->grid[1], r->grid[2]}, {r->block[0], r->block[1], r->block[2]},
                    r->shmem, buf, len, r->cooperative, c};
    if (!owned) { /* the `extra` buffer is the caller's: the queued launch keeps its own copy */
        op.buf = malloc(len ? len : 1);
        if (!op.buf)
            return CUDA_ERROR_OUT_OF_MEMORY;
        if (len)
            memcpy(op.buf, buf, len);
    }
    return emu_sq_submit(r->stream, run_kernel, drop_kernel, &op, sizeof(op), EMU_SQ_ASYNC);
}

static CUresult launch_kernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                              unsigned bz, unsigned sharedMemBytes, CUstream hStream, void **kernelParams,
                              void **extra, int cooperative, CUresult bad_dims)
{
    launch_req r = {emu_func_from_handle(f), {gx, gy, gz}, {bx, by, bz}, sharedMemBytes, hStream, kernelParams, extra,
                    cooperative, bad_dims};
    return launch(&r);
}

static CUresult launch_ex(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra,
                          CUresult bad_dims)
{
    static atomic_int warned_cluster;
    if (!config || (config->numAttrs && !config->attrs))
        return CUDA_ERROR_INVALID_VALUE;
    launch_req r = {emu_func_from_handle(f),
                    {config->gridDimX, config->gridDimY, config->gridDimZ},
                    {config->blockDimX, config->blockDimY, config->blockDimZ},
                    config->sharedMemBytes, config->hStream, kernelParams, extra, 0, bad_dims};
    for (unsigned i = 0; i < config->numAttrs; i++) {
        const CUlaunchAttribute *a = &config->attrs[i];
        if (a->id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE)
            r.cooperative = a->value.cooperative != 0;
        else if (a->id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION)
            emu_log_once(warned_cluster, "cuLaunchKernelEx: cluster dimensions are ignored by the emulated device");
        /* priority, access policy, memory sync domains, programmatic serialization: no effect here */
    }
    return launch(&r);
}

/* A graph's kernel node (emu_graph.c): the launch without going through an exported entry point, which a
 * limiter interposes: it charges a graph launch once for all its nodes, and the nodes now run on the
 * stream's thread, where its reentrancy guard (per thread) does not see the graph launch. */
CUresult emu_launch_node(CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shmem, void **extra,
                         int cooperative)
{
    return launch_kernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], shmem, NULL, NULL, extra,
                         cooperative, CUDA_ERROR_INVALID_VALUE);
}

/* The exported launch calls answer a bad grid or block with CUDA_ERROR_INVALID_VALUE, as NVIDIA's driver
 * does for a program calling cuLaunchKernel. cudart makes no check of its own (it calls the launch entry
 * it got from cuGetProcAddress and passes the answer on), yet reports cudaErrorInvalidConfiguration on a
 * GPU: the emu_rt_* entries, which cuGetProcAddress hands out (emu_api.h), answer the code cudart maps
 * to it (EMU_ERROR_INVALID_CONFIGURATION). Everything else is the same call. */
EMU_API CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                unsigned int by, unsigned int bz, unsigned int sharedMemBytes, CUstream hStream,
                                void **kernelParams, void **extra)
{
    return launch_kernel(f, gx, gy, gz, bx, by, bz, sharedMemBytes, hStream, kernelParams, extra, 0,
                         CUDA_ERROR_INVALID_VALUE);
}

CUresult emu_rt_cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                               unsigned int by, unsigned int bz, unsigned int sharedMemBytes, CUstream hStream,
                               void **kernelParams, void **extra)
{
    return launch_kernel(f, gx, gy, gz, bx, by, bz, sharedMemBytes, hStream, kernelParams, extra, 0,
                         EMU_ERROR_INVALID_CONFIGURATION);
}

EMU_API CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                           unsigned int bx, unsigned int by, unsigned int bz,
                                           unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
{
    return launch_kernel(f, gx, gy, gz, bx, by, bz, sharedMemBytes, hStream, kernelParams, NULL, 1,
                         CUDA_ERROR_INVALID_VALUE);
}

CUresult emu_rt_cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                          unsigned int bx, unsigned int by, unsigned int bz,
                                          unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
{
    return launch_kernel(f, gx, gy, gz, bx, by, bz, sharedMemBytes, hStream, kernelParams, NULL, 1,
                         EMU_ERROR_INVALID_CONFIGURATION);
}

EMU_API CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    return launch_ex(config, f, kernelParams, extra, CUDA_ERROR_INVALID_VALUE);
}

CUresult emu_rt_cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    return launch_ex(config, f, kernelParams, extra, EMU_ERROR_INVALID_CONFIGURATION);
}

/* The per-thread default stream variants of the launch entries cudart gets (cuGetProcAddress with
 * CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, emu_init.c); the cuda.h ones are generated
 * (gen_surface.py). */
static CUresult rt_launch_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                               unsigned int by, unsigned int bz, unsigned int sharedMemBytes, CUstream hStream,
                               void **kernelParams, void **extra)
{
    emu_ptds_enter();
    CUresult rc = emu_rt_cuLaunchKernel(f, gx, gy, gz, bx, by, bz, sharedMemBytes, hStream, kernelParams, extra);
    emu_ptds_leave();
    return rc;
}

static CUresult rt_coop_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                             unsigned int by, unsigned int bz, unsigned int sharedMemBytes, CUstream hStream,
                             void **kernelParams)
{
    emu_ptds_enter();
    CUresult rc = emu_rt_cuLaunchCooperativeKernel(f, gx, gy, gz, bx, by, bz, sharedMemBytes, hStream, kernelParams);
    emu_ptds_leave();
    return rc;
}

static CUresult rt_ex_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    emu_ptds_enter();
    CUresult rc = emu_rt_cuLaunchKernelEx(config, f, kernelParams, extra);
    emu_ptds_leave();
    return rc;
}

const emu_ptds_proc emu_rt_ptds_procs[] = {
    {(void *)(uintptr_t)&emu_rt_cuLaunchKernel, (void *)(uintptr_t)&rt_launch_ptsz},
    {(void *)(uintptr_t)&emu_rt_cuLaunchCooperativeKernel, (void *)(uintptr_t)&rt_coop_ptsz},
    {(void *)(uintptr_t)&emu_rt_cuLaunchKernelEx, (void *)(uintptr_t)&rt_ex_ptsz},
    {0, 0},
};

/* A host function (cuLaunchHostFunc) or stream callback (cuStreamAddCallback) runs on the stream's
 * thread, never the caller's, after the stream's earlier work; it must not call CUDA (cuda.h). Device
 * printf output of earlier work is flushed before it runs. A host function is not called once the
 * context faulted; a callback is, with the error. */
typedef struct host_op {
    union {
        CUhostFn fn;
        CUstreamCallback cb;
    } u;
    void *data;
    CUstream stream;
    int is_callback;
} host_op;

static CUresult run_host(void *a, CUresult status)
{
    const host_op *h = a;
    emu_printf_flush();
    if (h->is_callback)
        h->u.cb(h->stream, status, h->data);
    else if (status == CUDA_SUCCESS)
        h->u.fn(h->data);
    return status;
}

EMU_API CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!fn)
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(hStream))
        return emu_capture_host(hStream, fn, userData);
    host_op op = {{.fn = fn}, userData, hStream, 0};
    return emu_sq_submit(hStream, run_host, NULL, &op, sizeof(op), EMU_SQ_ASYNC);
}

/* ---- streams ---- */
static CUresult stream_create(CUstream *ph, unsigned int flags, int priority)
{
    EMU_ENTER(c);
    if (!ph || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
        return CUDA_ERROR_INVALID_VALUE;
    emu_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return CUDA_ERROR_OUT_OF_MEMORY;
    s->ctx = c;
    s->flags = flags;
    s->priority = priority > 0 ? 0 : priority < -5 ? -5 : priority; /* clamp to [greatest, least] */
    s->id = atomic_fetch_add(&g_emu.next_id, 1);
    s->q = emu_sq_new(c, flags);
    if (!s->q || emu_handle_add(s, EMU_K_STREAM)) {
        emu_sq_release(s->q);
        free(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *ph = (CUstream)s;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags) { return stream_create(phStream, Flags, 0); }

EMU_API CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    return stream_create(phStream, flags, priority);
}

EMU_API CUresult cuStreamDestroy_v2(CUstream hStream)
{
    EMU_ENTER(c);
    (void)c;
    if (!emu_handle_is(hStream, EMU_K_STREAM))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_handle_del(hStream);
    emu_sq_release(((emu_stream *)hStream)->q); /* returns at once; queued work still runs */
    free(((emu_stream *)hStream)->cap_deps);
    free(hStream);
    return CUDA_SUCCESS;
}

/* Stream handle -> its record; a per-thread stream has its thread's (emu_stream_canon), the NULL and
 * legacy streams a shared default record. */
static CUresult stream_get(CUstream h, const emu_stream **out)
{
    static const emu_stream k_default = {0};
    CUresult rc = emu_stream_check(h);
    if (rc)
        return rc;
    h = emu_stream_canon(h);
    *out = emu_handle_is(h, EMU_K_STREAM) ? (const emu_stream *)h : &k_default;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamGetPriority(CUstream hStream, int *priority)
{
    const emu_stream *s;
    CUresult rc = stream_get(hStream, &s);
    if (rc)
        return rc;
    if (!priority)
        return CUDA_ERROR_INVALID_VALUE;
    *priority = s->priority;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags)
{
    const emu_stream *s;
    CUresult rc = stream_get(hStream, &s);
    if (rc)
        return rc;
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    *flags = s->flags;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId)
{
    const emu_stream *s;
    CUresult rc = stream_get(hStream, &s);
    if (rc)
        return rc;
    if (!streamId)
        return CUDA_ERROR_INVALID_VALUE;
    *streamId = s->id ? s->id : (unsigned long long)(uintptr_t)hStream; /* 0, 1 (legacy), 2 (per-thread) */
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx)
{
    const emu_stream *s;
    CUresult rc = stream_get(hStream, &s);
    if (rc)
        return rc;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)(s->ctx ? s->ctx : emu_ctx_current());
    return *pctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

/* What cuGetProcAddress("cuStreamGetCtx") serves from CUDA 12.5 on (cudart 13.1+ asks for that version):
 * also the stream's green context, always NULL here (the emulated device has none). */
EMU_API CUresult cuStreamGetCtx_v2(CUstream hStream, CUcontext *pCtx, CUgreenCtx *pGreenCtx)
{
    if (!pCtx || !pGreenCtx)
        return CUDA_ERROR_INVALID_VALUE;
    *pGreenCtx = NULL;
    return cuStreamGetCtx(hStream, pCtx);
}

EMU_API CUresult cuStreamGetDevice(CUstream hStream, CUdevice *device)
{
    const emu_stream *s;
    CUresult rc = stream_get(hStream, &s);
    if (rc)
        return rc;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    *device = s->ctx ? s->ctx->dev : emu_cur_dev(); /* the NULL and per-thread streams: the current context's */
    return CUDA_SUCCESS;
}

/* Waits for the stream's work, flushes device printf, reports the context's sticky error or the
 * stream's latched asynchronous error. */
EMU_API CUresult cuStreamSynchronize(CUstream hStream)
{
    CUresult err = CUDA_SUCCESS;
    emu_ctx *cur = emu_ctx_current();
    if (cur && emu_check_init() == CUDA_SUCCESS && emu_stream_check(hStream) == CUDA_SUCCESS) {
        if (emu_capture_of(hStream)) {
            if (!cur->sticky) {
                emu_capture_invalidate(hStream); /* as on a GPU: the capture cannot survive it */
                return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
            }
        } else {
            err = emu_sq_sync_stream(hStream);
        }
    }
    emu_printf_flush();
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(hStream);
    return rc ? rc : err;
}

EMU_API CUresult cuStreamQuery(CUstream hStream)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(hStream);
    if (rc == CUDA_SUCCESS && emu_capture_of(hStream))
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    return rc ? rc : emu_sq_query_stream(hStream);
}

EMU_API CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!emu_handle_is(hEvent, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    if (Flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    rc = emu_capture_wait(hStream, (emu_event *)hEvent); /* joins a capture if the event is in one */
    if (rc || emu_capture_of(hStream))
        return rc;
    return emu_sq_wait_event(hStream, (emu_event *)hEvent);
}

EMU_API CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData, unsigned int flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    emu_ctx *c = emu_ctx_current();
    if (!c)
        return CUDA_ERROR_INVALID_CONTEXT;
    rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!callback || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(hStream))
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* as on a GPU: use cuLaunchHostFunc */
    host_op op = {{.cb = callback}, userData, hStream, 1};
    rc = emu_sq_submit(hStream, run_host, NULL, &op, sizeof(op), EMU_SQ_ASYNC);
    return rc == c->sticky ? CUDA_SUCCESS : rc; /* inline: the callback was told about a faulted context */
}

/* As the driver checks it: managed memory (cuMemAllocManaged or a __managed__ variable), length 0 or the
 * whole allocation (records are 256-byte rounded: the asked size is within the last 256 bytes), flags one of
 * CUmemAttach_flags, SINGLE not on the NULL (virtual global) stream. Memory is always coherent here. */
EMU_API CUresult cuStreamAttachMemAsync(CUstream hStream, CUdeviceptr dptr, size_t length, unsigned int flags)
{
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST && flags != CU_MEM_ATTACH_SINGLE)
        return CUDA_ERROR_INVALID_VALUE;
    if (flags == CU_MEM_ATTACH_SINGLE && (hStream == NULL || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t base;
    size_t size;
    int kind;
    if (!emu_mem_find(dptr, &base, &size, &kind, NULL) || (kind != EMU_MEM_MANAGED && kind != EMU_MEM_MODULE))
        return CUDA_ERROR_INVALID_VALUE;
    if (length && (dptr != base || length > size || (kind == EMU_MEM_MANAGED && length + 256 <= size)))
        return CUDA_ERROR_INVALID_VALUE; /* a part of a managed allocation cannot change association */
    return CUDA_SUCCESS;
}

/* ---- events: a record is an operation of its stream; it takes the wall-clock time when it runs, i.e.
 * when the stream's earlier work has ended ---- */
EMU_API CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    EMU_ENTER(c);
    (void)c;
    if (!phEvent || (Flags & ~(unsigned)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS)))
        return CUDA_ERROR_INVALID_VALUE;
    emu_event *e = calloc(1, sizeof(*e));
    if (!e)
        return CUDA_ERROR_OUT_OF_MEMORY;
    e->flags = Flags;
    e->refs = 1;
    e->ipc_fd = -1;
    e->dev = c->dev;
    e->ctx = c;
    if ((Flags & CU_EVENT_INTERPROCESS) && emu_ipc_event_create(e) != 0) {
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (emu_handle_add(e, EMU_K_EVENT)) {
        emu_ipc_event_free(e);
        free(e);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *phEvent = (CUevent)e;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuEventDestroy_v2(CUevent hEvent)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!emu_handle_is(hEvent, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_handle_del(hEvent);
    emu_sq_event_release((emu_event *)hEvent); /* a pending record keeps it until it has run */
    return CUDA_SUCCESS;
}

EMU_API CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    EMU_ENTER(c);
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!emu_handle_is(hEvent, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    emu_event *e = (emu_event *)hEvent;
    if (stream_ctx(hStream, c) != e->ctx)
        return CUDA_ERROR_INVALID_HANDLE; /* cuEventRecord: the event and the stream must be of one context */
    if (emu_capture_of(hStream))
        return emu_capture_event(hStream, e);
    return emu_sq_record(e, hStream);
}

EMU_API CUresult cuEventRecord(CUevent hEvent, CUstream hStream) { return cuEventRecordWithFlags(hEvent, hStream, 0); }

EMU_API CUresult cuEventQuery(CUevent hEvent)
{
    EMU_ENTER(c);
    (void)c;
    if (!emu_handle_is(hEvent, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    return emu_sq_event_query((emu_event *)hEvent);
}

EMU_API CUresult cuEventSynchronize(CUevent hEvent)
{
    CUresult rc = emu_check_init();
    if (rc == CUDA_SUCCESS && emu_ctx_current() && emu_handle_is(hEvent, EMU_K_EVENT))
        emu_sq_event_sync((emu_event *)hEvent);
    emu_printf_flush();
    EMU_ENTER(c);
    (void)c;
    return emu_handle_is(hEvent, EMU_K_EVENT) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

EMU_API CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    EMU_ENTER(c);
    (void)c;
    if (!pMilliseconds)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hStart, EMU_K_EVENT) || !emu_handle_is(hEnd, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    const emu_event *a = (const emu_event *)hStart, *b = (const emu_event *)hEnd;
    if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING)
        return CUDA_ERROR_INVALID_HANDLE;
    if (a->dev != b->dev)
        return CUDA_ERROR_INVALID_HANDLE; /* the Programming Guide: it fails for events of two devices */
    if (!a->recorded || !b->recorded)
        return CUDA_ERROR_INVALID_HANDLE;
    if (emu_sq_event_query((emu_event *)hStart) || emu_sq_event_query((emu_event *)hEnd))
        return CUDA_ERROR_NOT_READY; /* a record has not run yet */
    *pMilliseconds = (float)((double)((int64_t)(b->t_ns - a->t_ns)) / 1e6);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return cuEventElapsedTime_v2(pMilliseconds, hStart, hEnd);
}

/* Stream attributes (access-policy windows, synchronization policy, priority): kept per stream only
 * as far as priority goes (which does not order work between streams here); the rest has no effect on a
 * CPU device and reads back as 0. */
EMU_API CUresult cuStreamGetAttribute(CUstream hStream, CUstreamAttrID attr, CUstreamAttrValue *value)
{
    const emu_stream *s;
    CUresult rc = stream_get(hStream, &s);
    if (rc)
        return rc;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    memset(value, 0, sizeof(*value));
    if (attr == CU_LAUNCH_ATTRIBUTE_PRIORITY)
        value->priority = s->priority;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamSetAttribute(CUstream hStream, CUstreamAttrID attr, const CUstreamAttrValue *value)
{
    const emu_stream *s;
    CUresult rc = stream_get(hStream, &s);
    if (rc)
        return rc;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    if (attr == CU_LAUNCH_ATTRIBUTE_PRIORITY && emu_handle_is(hStream, EMU_K_STREAM))
        ((emu_stream *)hStream)->priority = value->priority > 0 ? 0 : value->priority < -5 ? -5 : value->priority;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamCopyAttributes(CUstream dst, CUstream src)
{
    const emu_stream *d, *s;
    CUresult rc = stream_get(dst, &d);
    if (!rc)
        rc = stream_get(src, &s);
    if (!rc && emu_handle_is(dst, EMU_K_STREAM))
        ((emu_stream *)dst)->priority = s->priority;
    return rc;
}
