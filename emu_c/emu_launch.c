/* emu_launch.c - kernel launches, streams and events of the emulated device.
 *
 * Execution model: every piece of stream work (kernel, copy, memset, host function, callback, event
 * record) runs synchronously in the calling thread, in call order. That is legal CUDA semantics -
 * asynchronous work may complete before the call that queued it returns - and makes every stream
 * trivially ordered, so stream/event synchronization only reports errors. A kernel fault
 * (ILLEGAL_ADDRESS, ILLEGAL_INSTRUCTION, LAUNCH_FAILED, ...) is sticky for the context.
 * Kernels run on TF_EMU_THREADS host threads (default: number of CPUs) inside ptx_launch.
 */
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"

extern __typeof__(ptx_launch) ptx_launch __attribute__((weak));
extern __typeof__(ptx_kernel_param_count) ptx_kernel_param_count __attribute__((weak));
extern __typeof__(ptx_kernel_param_info) ptx_kernel_param_info __attribute__((weak));
extern __typeof__(ptx_kernel_param_buffer_size) ptx_kernel_param_buffer_size __attribute__((weak));
void emu_kernel_attrs(const emu_func *f, ptx_kernel_attrs *a); /* emu_module.c */

CUresult emu_stream_check(CUstream s)
{
    if (s == NULL || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD)
        return CUDA_SUCCESS;
    return emu_handle_is(s, EMU_K_STREAM) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

static int is_sticky_error(int rc)
{
    switch (rc) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
        return 1;
    default:
        return 0;
    }
}

typedef struct launch_req {
    emu_func *f;
    unsigned grid[3], block[3];
    size_t shmem;
    CUstream stream;
    void **params;
    void **extra;
    int cooperative;
} launch_req;

static CUresult check_config(const launch_req *r)
{
    ptx_kernel_attrs a;
    emu_kernel_attrs(r->f, &a);
    if (!r->grid[0] || !r->grid[1] || !r->grid[2] || !r->block[0] || !r->block[1] || !r->block[2])
        return EMU_ERROR_INVALID_CONFIGURATION;
    if (r->grid[0] > 2147483647u || r->grid[1] > 65535 || r->grid[2] > 65535)
        return EMU_ERROR_INVALID_CONFIGURATION;
    if (r->block[0] > 1024 || r->block[1] > 1024 || r->block[2] > 64)
        return EMU_ERROR_INVALID_CONFIGURATION;
    unsigned long long threads = (unsigned long long)r->block[0] * r->block[1] * r->block[2];
    if (threads > 1024)
        return EMU_ERROR_INVALID_CONFIGURATION;
    if (threads > (unsigned long long)a.max_threads_per_block) /* .maxntid smaller than the block */
        return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    /* dynamic shared memory above the function's limit (48 KiB unless raised with
     * cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)) is an invalid argument, as on a GPU */
    if (r->shmem > (size_t)r->f->max_dynamic_shared || a.static_shared_bytes + r->shmem > EMU_MAX_SHARED_PER_BLOCK_OPTIN)
        return CUDA_ERROR_INVALID_VALUE;
    if (r->cooperative) {
        unsigned long long blocks = (unsigned long long)r->grid[0] * r->grid[1] * r->grid[2];
        if (blocks > 32ull * EMU_SM_COUNT)
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
    launch_req r = {f, {1, 1, 1}, {1, 1, 1}, 0, NULL, params, extra, 0};
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

static CUresult launch(const launch_req *r)
{
    static atomic_int warned_no_exec;
    EMU_ENTER(c);
    CUresult rc = emu_stream_check(r->stream);
    if (rc)
        return rc;
    if (!r->f)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!ptx_launch || !ptx_kernel_param_count || !ptx_kernel_param_info || !ptx_kernel_param_buffer_size) {
        emu_log_once(warned_no_exec, "launch: this build has no PTX executor (ptx_*.c not linked)");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    rc = check_config(r);
    if (rc)
        return rc;
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
    ptx_launch_cfg cfg = {
        .grid = {r->grid[0], r->grid[1], r->grid[2]},
        .block = {r->block[0], r->block[1], r->block[2]},
        .dynamic_shared_bytes = r->shmem,
        .param_buffer = buf,
        .param_buffer_size = len,
        .worker_threads = g_emu.worker_threads,
        .cooperative = r->cooperative,
    };
    char log[512] = "";
    emu_busy_enter();
    int lrc = ptx_launch(r->f->k, &cfg, &g_ptx_env, NULL, log, sizeof(log));
    emu_busy_exit();
    if (owned)
        free(buf);
    if (lrc != CUDA_SUCCESS) {
        const char *name = "?";
        cuGetErrorName((CUresult)lrc, &name);
        emu_log("kernel %s failed: %s%s%s", r->f->name, name ? name : "?", log[0] ? ": " : "", log);
        if (is_sticky_error(lrc))
            emu_ctx_set_sticky(c, (CUresult)lrc);
    }
    return (CUresult)lrc;
}

EMU_API CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                unsigned int by, unsigned int bz, unsigned int sharedMemBytes, CUstream hStream,
                                void **kernelParams, void **extra)
{
    launch_req r = {emu_func_from_handle(f), {gx, gy, gz}, {bx, by, bz}, sharedMemBytes, hStream, kernelParams, extra, 0};
    return launch(&r);
}

EMU_API CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                           unsigned int bx, unsigned int by, unsigned int bz,
                                           unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
{
    launch_req r = {emu_func_from_handle(f), {gx, gy, gz}, {bx, by, bz}, sharedMemBytes, hStream, kernelParams, NULL, 1};
    return launch(&r);
}

EMU_API CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    static atomic_int warned_cluster;
    if (!config || (config->numAttrs && !config->attrs))
        return CUDA_ERROR_INVALID_VALUE;
    launch_req r = {emu_func_from_handle(f),
                    {config->gridDimX, config->gridDimY, config->gridDimZ},
                    {config->blockDimX, config->blockDimY, config->blockDimZ},
                    config->sharedMemBytes, config->hStream, kernelParams, extra, 0};
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
    fn(userData);
    return CUDA_SUCCESS;
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
    if (emu_handle_add(s, EMU_K_STREAM)) {
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
    free(((emu_stream *)hStream)->cap_deps);
    free(hStream);
    return CUDA_SUCCESS;
}

/* Stream handle -> its record; the NULL / legacy / per-thread streams have a shared default record. */
static CUresult stream_get(CUstream h, const emu_stream **out)
{
    static const emu_stream k_default = {0};
    CUresult rc = emu_stream_check(h);
    if (rc)
        return rc;
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
    *device = 0;
    return CUDA_SUCCESS;
}

/* Work already ran; synchronizing a stream only reports the context's sticky error. */
EMU_API CUresult cuStreamSynchronize(CUstream hStream)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(hStream);
    if (rc == CUDA_SUCCESS && emu_capture_of(hStream)) {
        emu_capture_invalidate(hStream); /* as on a GPU: the capture cannot survive it */
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    return rc;
}

EMU_API CUresult cuStreamQuery(CUstream hStream) { return cuStreamSynchronize(hStream); }

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
    return emu_capture_wait(hStream, (emu_event *)hEvent); /* joins a capture, else nothing to wait for */
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
    callback(hStream, c->sticky, userData); /* the callback is told about a faulted context */
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamAttachMemAsync(CUstream hStream, CUdeviceptr dptr, size_t length, unsigned int flags)
{
    (void)length;
    (void)flags;
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    return emu_mem_check(dptr, 1) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- events: a record takes the wall-clock time at which all prior work (already done) ended ---- */
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
    if (emu_handle_add(e, EMU_K_EVENT)) {
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
    free(((emu_event *)hEvent)->cap_deps);
    free(hEvent);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!emu_handle_is(hEvent, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    emu_event *e = (emu_event *)hEvent;
    if (emu_capture_of(hStream))
        return emu_capture_event(hStream, e);
    e->t_ns = emu_now_ns();
    e->recorded = 1;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuEventRecord(CUevent hEvent, CUstream hStream) { return cuEventRecordWithFlags(hEvent, hStream, 0); }

EMU_API CUresult cuEventQuery(CUevent hEvent)
{
    EMU_ENTER(c);
    (void)c;
    return emu_handle_is(hEvent, EMU_K_EVENT) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

EMU_API CUresult cuEventSynchronize(CUevent hEvent) { return cuEventQuery(hEvent); }

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
    if (!a->recorded || !b->recorded)
        return CUDA_ERROR_INVALID_HANDLE;
    *pMilliseconds = (float)((double)((int64_t)(b->t_ns - a->t_ns)) / 1e6);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return cuEventElapsedTime_v2(pMilliseconds, hStart, hEnd);
}

/* Stream attributes (access-policy windows, synchronization policy, priority): kept per stream only
 * as far as priority goes; the rest has no effect on a synchronous CPU device and reads back as 0. */
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
