/* stub.h - internals of the client stub (build/stub/libcuda.so.1), shared by its C files:
 *   transport.c      connection to the worker (handshake, framing, batching, error latching) - tfc_* API;
 *   tls.c            the TLS client of TF_WORKER=tls: (OpenSSL loaded with dlopen on first use)
 *                    knows frames, never a particular driver call
 *   build/stub/gen/stub_calls.c  generated marshallers (rpc_*) and exports of every calls.tbl row
 *   hand-written entry points (calls.tbl rows `local` / `stub=hand`), one file per area:
 *     api_init.c     cuInit, versions, error strings, cuGetProcAddress, cudart's export tables
 *     api_device.c   device facts cached at cuInit
 *     api_context.c  primary/created contexts, the per-thread current-context stack
 *     api_memory.c   device, managed and pinned host memory, pointer attributes
 *     api_copy.c     unified, chunked, shared-memory-window and 2D/3D copies
 *     api_copy_deferred.c asynchronous device-to-host copies to page-locked memory the worker does not map
 *     api_module.c   module and library images
 *     api_launch.c   kernel launches
 *     api_hostcalls.c host functions and stream callbacks (run by a thread of the stub's, over a channel)
 *     api_graph.c    stream capture and graphs (run in the GPU worker process)
 *     api_user_objects.c user objects (their references live in the worker; destructors run here)
 *     api_streams.c  each client thread's per-thread default stream; waits that let other threads' calls in
 *     api_vmm.c      virtual memory management (mapped ranges join the device map), range attributes
 *     api_occupancy.c occupancy calculators (the blockSizeToDynamicSMemSize search runs here)
 *     api_link.c     JIT linking (the linked image comes back), function and kernel names
 *     api_ipc.c      CUDA IPC: handles opened by this process's worker, opened ranges, interprocess events
 *     api_surface.c  the generated NOT_SUPPORTED answer of every other cuda.h function
 *     api_owners.c   the device of each stream, event and pool (checks and answers per device, several GPUs)
 * All process-wide state lives in one struct (tf_stub, the session) owned by transport.c.
 */
#ifndef TF_STUB_H
#define TF_STUB_H

#include <pthread.h>
#include <stdint.h>
#include <sys/uio.h>
#include <cuda.h>
#include "calls_wire.h"

#define TFC_MAX_FIXED 256
#define TFC_MAX_IOV 8

/* One call being marshalled: fixed-size arguments, variable buffers (sent raw, 8-aligned) and the
 * places the reply's outputs land (read straight into the caller's memory). */
enum { TFC_SCOPE_NONE, TFC_SCOPE_STREAM, TFC_SCOPE_CTX };
typedef struct tfc_call {
    tf_req_hdr hdr;
    int scope;        /* which latched errors this call returns: none, its stream's, or any (ctx sync) */
    uint64_t stream;
    uint8_t fixed[TFC_MAX_FIXED];
    size_t nfixed;
    struct iovec var[TFC_MAX_IOV];
    int nvar;
    struct iovec out[TFC_MAX_IOV];
    int nout;
    size_t out_len;
    int overflow;
} tfc_call;

void tfc_begin(tfc_call *c, uint16_t call);
void tfc_put(tfc_call *c, const void *p, size_t n);
void tfc_var(tfc_call *c, const void *p, size_t n);
void tfc_out(tfc_call *c, void *p, size_t n);
/* Sends (flushing the batch first, in the same write) and waits for the reply. */
CUresult tfc_sync(tfc_call *c);
/* Queues into the batch (no reply); returns an error latched earlier on its stream, if any. */
CUresult tfc_async(tfc_call *c);
/* A synchronous call and, right behind it without waiting, n more (their results in more_rc; NOT_READY for one
 * not sent): one round trip for all (api_copy_deferred.c reads finished copies with a synchronize). */
/* count synchronous calls with two in flight (the worker starts on the next while this side reads a reply):
 * encode(arg, i, c) builds call i (run with the transport's lock held), landed(arg, i), if set, runs once call
 * i answered CUDA_SUCCESS; no call is sent after one that failed. -> the first failure (transport.c). */
CUresult tfc_pipelined(size_t count, CUresult (*encode)(void *arg, size_t i, tfc_call *c),
                       void (*landed)(void *arg, size_t i), void *arg);
#define TFC_THEN_MAX 8   /* calls behind one synchronous call (more are answered NOT_READY, not sent) */
CUresult tfc_sync_then(tfc_call *c, tfc_call *more, int n, CUresult *more_rc);
/* Sends the queued batch now. */
CUresult tfc_flush(void);

/* The caller's host memory of a copy: width bytes x height rows x depth slices, rows `pitch` bytes and
 * slices `slice` bytes apart (a 1D copy: one row). */
typedef struct tf_host_box {
    uint8_t *base;
    size_t width, height, depth, pitch, slice;
} tf_host_box;
/* A piece of a host box: bytes [x, x+w) of rows [y, y+h) of slices [z, z+d). */
typedef struct tf_box_piece {
    size_t x, y, z, w, h, d;
} tf_box_piece;
/* Encodes the request that moves piece p of a copy through the shared-memory window, its bytes packed (rows
 * of p->w bytes, p->h rows a slice) in the window at slot_off; `far` describes the other side (the caller's).
 * The request is sent from the memory its inputs point to: an input built here goes in `scratch`
 * (TF_SHM_SCRATCH bytes, alive until the request is sent). */
#define TF_SHM_SCRATCH 256
typedef CUresult (*tf_shm_piece_fn)(tfc_call *c, const void *far, int to_device, const tf_box_piece *p,
                                    uint64_t slot_off, CUstream hStream, void *scratch);
/* Same-host copy through the shared-memory window, in pieces that fit its slots; returns 0 if the window
 * is not usable for it (TCP, TF_SHM=0, a small host-to-device copy the caller can send without waiting:
 * async), else 1 with the copy's result in *rc. */
int tf_shm_copy(int to_device, const tf_host_box *box, tf_shm_piece_fn enc, const void *far, CUstream hStream,
                int async, CUresult *rc);

/* Asynchronous device-to-host copies to page-locked memory the worker does not map (api_copy_deferred.c): queued
 * by the worker into its own staging buffer, the bytes written into the caller's box after the next synchronous
 * call that finds them done (tf_deferred_collect, run by transport.c after every synchronous call).
 * tf_deferred_dtoh_3d: far is the copy with its host destination blank. CUDA_ERROR_OUT_OF_MEMORY: the worker
 * could not stage it (copy synchronously instead). tf_deferred_forget: [p, p+n) is freed, its copies dropped. */
CUresult tf_deferred_dtoh_3d(const CUDA_MEMCPY3D *far, const tf_host_box *box, CUstream hStream);
CUresult tf_deferred_atoh(void *dst, CUarray a, size_t off, size_t n, CUstream hStream);
CUresult tf_deferred_collect(void);
/* tfc_sync's call while copies are pending: the first piece of each of the oldest ones is read right behind it. */
CUresult tf_deferred_sync(tfc_call *c);
int tf_deferred_pending(void);
void tf_deferred_forget(const void *p, size_t n);
/* Before a copy reads [p, p+n): pending copies into it land first (waits for them). */
CUresult tf_deferred_settle(const void *p, size_t n);
/* Page-locked host memory (api_memory.c): 0 if [p, p+n) is not inside one page-locked block, else 1 if the
 * worker does not map it, 2 if it does (same host: the worker can copy into it at the same address). */
enum { TF_HOST_PAGEABLE, TF_HOST_PINNED, TF_HOST_PINNED_MAPPED };
int tf_host_pinned(const void *p, size_t n);

/* Device-to-host copy in chunks with two requests in flight (the socket path for big copies). */
CUresult tf_pipelined_dtoh(void *host, CUdeviceptr dev, size_t n, CUstream hStream, int async);

/* Device memory the worker handed out, tracked to classify unified pointers (cuMemcpy) and answer pointer
 * attributes locally. tf_devmap_add records the calling thread's current context and its device as the
 * allocation's; tf_devmap_add_on names the device (a pool's allocation belongs to the pool's device).
 * tf_devmap_ctx_gone forgets a destroyed or reset context's allocations (the driver freed them) but VMM
 * mappings (tf_devmap_add_mapping), which belong to no context. */
void tf_devmap_add(CUdeviceptr p, size_t n);
void tf_devmap_add_on(CUdeviceptr p, size_t n, int dev);
void tf_devmap_add_mapping(CUdeviceptr p, size_t n, int dev);
void tf_devmap_ctx_gone(CUcontext ctx);
void tf_devmap_del(CUdeviceptr p);
/* 1 if p lies in a device allocation; the base and size of it when asked. */
int tf_devmap_find(CUdeviceptr p, CUdeviceptr *base, size_t *size);
/* 1 if p lies in a device allocation; the context and device it was allocated in (-1: not known). */
int tf_devmap_owner(CUdeviceptr p, CUcontext *ctx, int *dev);

/* The device each context, stream, event and pool of this process belongs to (api_context.c, api_owners.c);
 * -1 where the stub does not know it (the worker then checks). */
int tf_ctx_device(CUcontext c);
int tf_current_device(void);
int tf_stream_device(CUstream s);
int tf_pool_device(CUmemoryPool p);
void tf_stream_owner_set(CUstream s);
void tf_owners_ctx_gone(CUcontext ctx);
/* 0 when the stream (a launch's) belongs to another device than the current context, or the event to another
 * context than the stream (cuEventRecord): CUDA's CUDA_ERROR_INVALID_HANDLE. 1 when unknown. */
int tf_stream_on_current_device(CUstream s);
int tf_event_on_stream_context(CUevent e, CUstream s);

/* Session facts cached at cuInit (answered locally). */
typedef struct tf_session_info {
    int connected;
    int driver_version;
    int dev_count;
    tf_dev_info devs[TF_MAX_DEVICES];
} tf_session_info;
const tf_session_info *tf_session(void);
/* Connects, handshakes and says hello; idempotent (the first result is kept). */
CUresult tf_connect_once(void);

/* Entry points that need a session return NOT_INITIALIZED before cuInit connected. */
#define NEED_INIT()                                                         \
    do {                                                                    \
        if (!tf_session()->connected) return CUDA_ERROR_NOT_INITIALIZED;    \
    } while (0)

/* The cached facts of device `dev`, NULL if there is no such device (api_device.c). */
const tf_dev_info *tf_dev_info_of(CUdevice dev);

/* Module unload may free function handles the worker hands out again: forget cached parameter
 * layouts (api_launch.c). */
void tf_layouts_forget_all(void);
/* Kernel parameters packed by the function's layout (or taken from `extra`); *out is `small` or malloc'd
 * (free it when it is neither `small` nor the caller's extra buffer). The layout itself, cached. */
CUresult tf_pack_params(CUfunction f, void **kernelParams, void **extra, uint8_t *small, size_t smallcap,
                        const uint8_t **out, size_t *len);
CUresult tf_param_layout(CUfunction f, unsigned *count, const uint32_t **off, const uint32_t **size);

/* Stream capture (api_graph.c): the capture mode the executor thread must be in for the calling
 * thread's next call (transport.c sends tfSetCaptureMode when it changes), -1 when no capture is live. */
int tf_capture_mode_wanted(void);
/* 1 if a capture this process began on stream s is live (streams that joined one are not known). */
int tf_capture_live_on(CUstream s);
/* Graph launches: 1 when host nodes can call back over the host-call channel (api_hostcalls.c). */
int tf_host_channel_ready(void);
/* cuLaunchHostFunc while a capture is live: *handled = 1 when the worker captured it (or failed). */
CUresult tf_capture_host_func(CUstream hStream, CUhostFn fn, void *userData, int *handled);
/* Graph copies of this process's host memory (api_graph.c): captured copies, write-back after synchronous
 * calls (transport.c), destination bytes that come with a host node's call. */
CUresult tf_capture_host_copy(int to_device, CUdeviceptr dev, const void *host, size_t n, CUstream hStream,
                              int *handled);
CUresult tf_graph_host_sync(int wait);
int tf_graph_mem_free(CUdeviceptr p, CUstream hStream, int async, CUresult *rc);
int tf_graph_host_call_bytes(const uint8_t *bytes, size_t len);
/* Forgets the latched error of a stream (a refused call of a capture that ended invalidated). */
void tfc_drop_pending(uint64_t stream);

/* The launch entry cuGetProcAddress hands out for `fn` (api_launch.c): cudart's flavour of the launch
 * calls answers a bad grid/block with the code cudart reports as cudaErrorInvalidConfiguration. */
void *tf_launch_entry_for_runtime(void *fn);

/* Calling thread's current context (a small per-thread stack, as the driver keeps). */
CUcontext tf_ctx_current(void);
void tf_ctx_set(CUcontext c);
int tf_ctx_push(CUcontext c);
CUcontext tf_ctx_pop(void);
/* The executor's current context is no longer known (after cuCtxDestroy of it): resend next time. */
void tf_ctx_remote_unknown(void);
void tf_ctx_forget(CUcontext c);
/* 1 if the worker handed out context c (a primary or created context of this process). */
int tf_ctx_known(CUcontext c);

/* stderr logging with the "tf-stub:" prefix; tf_debug only when TF_STUB_DEBUG is set. */
void tf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tf_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 if [p, p+n) lies inside one managed region (its base in *base) (api_memory.c). */
int tf_managed_range(CUdeviceptr p, size_t n, CUdeviceptr *base);
/* The hints (cuMemAdvise, prefetch) recorded for a managed region are dropped with it (api_vmm.c). */
void tf_managed_hints_forget(CUdeviceptr base);
/* Around cuCtxDestroy / cuDevicePrimaryCtxReset of ctx (api_memory.c): _ending before the call (its managed
 * regions leave the coherence copies), _ended after it, gone = it succeeded: its managed memory is gone and
 * the worker no longer maps its pinned memory; else all is as before. Every _ending has one _ended. */
void tf_memory_ctx_ending(CUcontext ctx);
void tf_memory_ctx_ended(CUcontext ctx, int gone);

/* The answer of a cuda.h function no calls.tbl row serves (generated exports call it): logs the
 * name once (*logged guards it) and returns CUDA_ERROR_NOT_SUPPORTED (api_surface.c). */
CUresult tf_unsupported(const char *name, int *logged);

/* A synchronous call whose frame carries descriptor `fd` (SCM_RIGHTS); 1 when such descriptors reach a
 * worker that maps them (same host, shared-memory window on) (transport.c). */
CUresult tfc_sync_fd(tfc_call *c, int fd);
int tf_same_host_shm(void);
/* A synchronous call whose reply brings a descriptor of the worker (SCM_RIGHTS): *fd, owned by the caller
 * (-1 unless CUDA_SUCCESS); 1 from tf_conn_is_unix when descriptors can travel at all (transport.c). */
CUresult tfc_sync_take_fd(tfc_call *c, int *fd);
int tf_conn_is_unix(void);

/* Per-thread default streams (api_streams.c): tf_stream_wire, called by the generated marshalling for every
 * CUstream parameter, puts the calling thread's own worker stream in place of CU_STREAM_PER_THREAD (made at
 * its first use in a context); tf_stream_key is that stream if it exists, else hStream unchanged (never a
 * round trip: for keys of the stub's own tables); tf_thread_streams_forget(ctx) after ctx was destroyed or
 * reset. tfc_threads_seen (transport.c): how many threads have called a forwarded function.
 * tf_capture_any_live (api_graph.c): a capture this process began is live. */
CUresult tf_thread_stream(CUstream *hStream);
static inline CUresult tf_stream_wire(CUstream *hStream)
{
    return *hStream == CU_STREAM_PER_THREAD ? tf_thread_stream(hStream) : CUDA_SUCCESS;
}
CUstream tf_stream_key(CUstream hStream);
void tf_thread_streams_forget(CUcontext ctx);
int tfc_threads_seen(void);
int tf_capture_any_live(void);

/* Managed memory coherence (api_memory.c), driven by transport.c around every forwarded call. */
int tf_managed_active(void);
CUresult tf_managed_sync(int to_device);

#endif
