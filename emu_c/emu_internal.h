/* emu_internal.h - state shared by the emulated driver's files (emu_*.c, fatbin.c).
 *
 * The emulated device is one CUDA device (ordinal 0) whose "device memory" is host memory: device
 * pointers are host addresses (see ptx.h). Kernels run on the CPU through the PTX executor (ptx.h).
 * Stream work is asynchronous: each stream's operations run in order on a host thread of its own
 * (emu_stream_queue.c); the API calls that issue work append to the stream's queue and return.
 */
#ifndef TF_EMU_INTERNAL_H
#define TF_EMU_INTERNAL_H

#define __CUDA_API_VERSION_INTERNAL 1 /* declare the unversioned + _v2 + _ptsz names, no macros */
#include <cuda.h>
/* cuda.h leaves these version macros defined even in internal mode; we define both versions */
#undef cuDevicePrimaryCtxRelease
#undef cuDevicePrimaryCtxReset
#undef cuDevicePrimaryCtxSetFlags
#undef cuDeviceGetUuid
#undef cuGetProcAddress
#undef cuMemAdvise
#undef cuMemPrefetchAsync
#undef cuEventElapsedTime
#undef cuStreamGetCaptureInfo
#undef cuStreamBeginCapture
#undef cuGraphInstantiate
#undef cuStreamWaitValue32
#undef cuStreamWaitValue64
#undef cuStreamWriteValue32
#undef cuStreamWriteValue64
#undef cuStreamBatchMemOp
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ptx.h"

#define EMU_API __attribute__((visibility("default")))
#define EMU_DRIVER_VERSION 13020 /* a CUDA 13.2 driver: it JIT-compiles PTX ISA up to 9.2 (EMU_PTX_ISA_MAX), which CuPy 14's prebuilt kernels need */
#define EMU_DEVICE_NAME "TensorFusion Emulated GPU (CPU)"
/* The device's facts, chosen once from TF_EMU_CC (emu_device.c; default 12.1, see README): the
 * compute capability and the limits a real part of that capability reports. */
typedef struct emu_devfacts {
    int cc_major, cc_minor;
    const char *part;            /* the real part the figures come from */
    int sm_count;
    int max_threads_per_sm;
    int max_blocks_per_sm;
    int shared_per_sm;           /* bytes */
    int shared_per_block_optin;  /* bytes */
    int clock_khz, mem_clock_khz, bus_width_bits;
    int l2_bytes, persisting_l2_bytes;
} emu_devfacts;
const emu_devfacts *emu_dev(void);
#define EMU_CC_MAJOR (emu_dev()->cc_major)
#define EMU_CC_MINOR (emu_dev()->cc_minor)
#define EMU_CC (EMU_CC_MAJOR * 10 + EMU_CC_MINOR)
#define EMU_MAX_SHARED_PER_BLOCK (48 * 1024)
#define EMU_MAX_SHARED_PER_BLOCK_OPTIN ((size_t)emu_dev()->shared_per_block_optin)
#define EMU_SM_COUNT (emu_dev()->sm_count)
/* A bad launch configuration (zero or oversized grid/block). cuda.h has no name for 9, but it is what
 * cudart maps to cudaErrorInvalidConfiguration ("invalid configuration argument"), the error a GPU
 * program sees; cuGetErrorName knows it as CUDA_ERROR_INVALID_CONFIGURATION. */
#define EMU_ERROR_INVALID_CONFIGURATION ((CUresult)9)

/* stderr line with the "tf-emu: " prefix. */
void emu_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, but only the first time `flag` is seen 0 (flag is a static int of the caller). */
#define emu_log_once(flag, ...)                                                                    \
    do {                                                                                           \
        if (!atomic_exchange(&(flag), 1))                                                          \
            emu_log(__VA_ARGS__);                                                                  \
    } while (0)

/* The cuda.h functions the emulator does not implement (build/emu/gen/emu_surface.c, from
 * gen_surface.py): each answers CUDA_ERROR_NOT_SUPPORTED through emu_unsupported, which logs the name
 * once per function; cuGetProcAddress serves them from this table (ends with a NULL api). */
typedef struct emu_surface_proc {
    const char *api;
    int version;
    void *fn;
} emu_surface_proc;
extern const emu_surface_proc emu_surface_procs[];
CUresult emu_unsupported(const char *name, int *logged);

/* ---- handle registry: every handle given out is registered, so bogus ones are rejected ---- */
enum emu_kind {
    EMU_K_CTX = 1, EMU_K_STREAM, EMU_K_EVENT, EMU_K_MODULE, EMU_K_FUNC, EMU_K_LIBRARY, EMU_K_POOL,
    EMU_K_GRAPH, EMU_K_GNODE, EMU_K_GEXEC, EMU_K_VMM, EMU_K_LINK, EMU_K_COND, EMU_K_ARRAY, EMU_K_MIPMAP,
    EMU_K_TEXOBJ, EMU_K_SURFOBJ
};
int emu_handle_add(const void *p, int kind); /* 0 ok, -1 out of memory */
void emu_handle_del(const void *p);
int emu_handle_is(const void *p, int kind);
size_t emu_handle_capacity(void); /* slots in the registry (for tests) */

/* ---- contexts ---- */
typedef struct emu_queue emu_queue;
typedef struct emu_ctx {
    int is_primary;
    unsigned flags;
    unsigned long long id;
    CUresult sticky;          /* first launch error; every later call in this context returns it */
    size_t limits[CU_LIMIT_MAX];
    CUfunc_cache cache_config;
    emu_queue *legacy_q;      /* its legacy NULL stream (emu_stream_queue.c), made at first use */
} emu_ctx;

typedef struct emu_state {
    pthread_mutex_t lock;     /* recursive: guards contexts, modules, streams, events */
    atomic_int initialized;
    size_t vram_total;
    atomic_size_t vram_used;
    emu_ctx primary;
    int primary_refs;
    unsigned primary_flags;
    atomic_ullong busy_ns;    /* unused; busy time lives in emu_init.c (emu_busy_enter/exit) */
    atomic_ullong next_id;
    int worker_threads;
} emu_state;

extern emu_state g_emu;

void emu_lock(void);
void emu_unlock(void);
uint64_t emu_now_ns(void);
int emu_trace_launches(void); /* TF_EMU_TRACE=2: log every kernel launch */

/* Wall-clock ns the device spent in kernels since cuInit (exported for the limiter, which finds it
 * with dlsym(RTLD_DEFAULT, "tfEmuGetBusyTime")). */
CUresult tfEmuGetBusyTime(unsigned long long *busy_ns);
/* Bracket kernel execution: busy time is the union of the intervals in which at least one kernel
 * runs (concurrent launches from several host threads are not double-counted), and includes the
 * part of a kernel still running when it is read. */
void emu_busy_enter(void);
void emu_busy_exit(void);

/* Current context of the calling thread; NOT_INITIALIZED / INVALID_CONTEXT / its sticky error. */
CUresult emu_enter(emu_ctx **out);
#define EMU_ENTER(c)                                                                               \
    emu_ctx *c = NULL;                                                                             \
    do {                                                                                           \
        CUresult enter_rc_ = emu_enter(&c);                                                        \
        if (enter_rc_ != CUDA_SUCCESS)                                                             \
            return enter_rc_;                                                                      \
    } while (0)
CUresult emu_check_init(void);
/* emu_check_init(), then CUDA_ERROR_INVALID_DEVICE unless dev is the emulated device (ordinal 0). */
CUresult emu_check_device(CUdevice dev);
emu_ctx *emu_ctx_current(void);
void emu_ctx_set_sticky(emu_ctx *c, CUresult err);
int emu_is_sticky_error(CUresult rc); /* a kernel fault that makes the context unusable */
/* Makes c the calling thread's only current context (a stream thread, emu_stream_queue.c). */
void emu_ctx_bind_thread(emu_ctx *c);
void emu_primary_reset_state(void);

/* ---- memory: allocation table (device, host-mapped, registered, managed, module globals) ---- */
/* EMU_MEM_VMM: a cuMemMap'ed range (charged once, at cuMemCreate, so not counted again here). */
enum emu_mem_kind { EMU_MEM_DEVICE = 1, EMU_MEM_HOST, EMU_MEM_REGISTERED, EMU_MEM_MANAGED, EMU_MEM_MODULE, EMU_MEM_VMM };
int emu_mem_add(uint64_t base, size_t size, int kind, unsigned flags);
/* flags of a record: EMU_MEMF_SHAREABLE asks emu_dev_alloc for a memfd another process may map (cuMemAlloc);
 * EMU_MEMF_IPC marks an EMU_MEM_VMM range cuIpcOpenMemHandle mapped from another process. */
#define EMU_MEMF_SHAREABLE 0x40000000u
#define EMU_MEMF_IPC 0x80000000u
/* emu_ipc.c: a shared, exportable device range (0, or -1 when the process cannot make one), its release
 * (1 if base was one). */
int emu_ipc_alloc(size_t size, void **out);
int emu_ipc_free(uint64_t base);
int emu_ipc_exportable(uint64_t base); /* 1 if base is such a range */
/* Allocation containing addr: 1 found (fills the outputs that are non-NULL), 0 not. */
int emu_mem_find(uint64_t addr, uint64_t *base, size_t *size, int *kind, unsigned *flags);
int emu_mem_remove(uint64_t base, int *kind, size_t *size); /* 1 removed, 0 no allocation at base */
int emu_mem_check(uint64_t addr, uint64_t len);             /* 1 if inside one live allocation */
CUresult emu_dev_alloc(uint64_t *out, size_t bytes, int kind, unsigned flags);
CUresult emu_dev_free(uint64_t p);
void emu_mem_release_owner(const void *owner); /* frees every allocation made in that context */
void *emu_env_alloc(void *ctx, size_t bytes);
void emu_env_free(void *ctx, void *p);
int emu_env_check(void *ctx, uint64_t addr, uint64_t len);
extern const ptx_env g_ptx_env;

/* ---- modules / functions ---- */
typedef struct emu_module emu_module;
typedef struct emu_func {
    emu_module *mod;
    const ptx_kernel *k;
    char *name;
    int max_dynamic_shared;   /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES */
    int carveout;
    CUfunc_cache cache;
} emu_func;

struct emu_module {
    ptx_module *pm;
    int nfuncs;
    emu_func *funcs;
    void *library;            /* owning emu_library, NULL for cuModuleLoad* modules */
    int ptx_target;           /* .target sm_XY of its PTX as XY (CU_FUNC_ATTRIBUTE_PTX_VERSION) */
};

emu_func *emu_func_from_handle(const void *h); /* CUfunction or CUkernel; NULL if not one */
/* Device printf (emu_launch.c): kernels append to the printf FIFO (through ptx.h's ptx_device_print), at most
 * CU_LIMIT_PRINTF_FIFO_SIZE bytes between two flushes (the rest is dropped, as on a GPU); a flush writes
 * it to stdout where CUDA flushes: launches, synchronizes, blocking copies, module load/unload, context
 * destruction, stream callbacks, and process exit. */
void emu_printf_flush(void);
/* Blocks of f that fit on one SM at once (emu_launch.c: NVIDIA's occupancy calculator for this device). */
int emu_occupancy(const emu_func *f, int block, size_t dyn);
CUresult emu_occupancy_available_dynamic(const emu_func *f, int numBlocks, int block, size_t *out);
/* The launch entries cuGetProcAddress hands cudart (emu_launch.c). */
CUresult emu_rt_cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                               unsigned int by, unsigned int bz, unsigned int sharedMemBytes, CUstream hStream,
                               void **kernelParams, void **extra);
CUresult emu_rt_cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                          unsigned int bx, unsigned int by, unsigned int bz,
                                          unsigned int sharedMemBytes, CUstream hStream, void **kernelParams);
CUresult emu_rt_cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra);

/* ---- streams / events ---- */
struct emu_graph;
typedef struct emu_stream {
    emu_ctx *ctx;
    unsigned flags;
    int priority;
    unsigned long long id;
    struct emu_graph *capture; /* stream capture in progress into this graph (emu_graph.c) */
    int capture_origin;        /* began the capture (vs joined it through an event) */
    unsigned long long capture_id; /* of that capture: a joined stream leaves when it has ended */
    void *cap_deps;            /* graph nodes the next captured work depends on (emu_graph.c) */
    size_t cap_ndeps;
    emu_queue *q;              /* its work queue (emu_stream_queue.c) */
} emu_stream;

typedef struct emu_event {
    unsigned flags;
    int recorded;
    uint64_t t_ns;             /* when its last record ran (written by the record operation) */
    int refs;                  /* the handle's and each pending record operation's (g_mu of emu_stream_queue.c) */
    uint64_t gen;              /* records issued: only the latest one's operation writes t_ns */
    emu_queue *q;              /* queue and sequence number of the last record; NULL: already complete */
    uint64_t seq;
    struct emu_graph *capture; /* recorded inside this capture: a stream waiting on it joins */
    unsigned long long capture_id;
    void *cap_deps;            /* the recording stream's capture dependencies at the record */
    size_t cap_ndeps;
} emu_event;

CUresult emu_stream_check(CUstream s); /* 0 for NULL / legacy / per-thread / a live stream */

/* ---- asynchronous stream work (emu_stream_queue.c) ----
 * An operation is run(arg, status) on the stream's thread, in stream order; `status` is the context's
 * sticky error (or CONTEXT_IS_DESTROYED) when it runs: an operation that is not a host callback does
 * nothing and returns it then. drop(arg) (may be NULL) releases what arg holds, whether run ran or not.
 * A sticky error returned by run marks the context; another error is latched on the stream. */
typedef CUresult (*emu_op_run)(void *arg, CUresult status);
typedef void (*emu_op_drop)(void *arg);
/* Queues the operation (arg: len bytes, copied) on stream s of the current context. wait: returns once
 * it has run, with the context's sticky error if any. Inline (TF_EMU_SYNC_STREAMS=1, or called from a
 * stream thread): runs it now and returns run's result. */
CUresult emu_sq_submit(CUstream s, emu_op_run run, emu_op_drop drop, void *arg, size_t len, int wait);
int emu_sq_inline(void);       /* 1: stream work issued by this thread runs inline */
int emu_sq_abandoned(void);    /* 1: the process is exiting and queued work is abandoned */
emu_queue *emu_sq_new(emu_ctx *c, unsigned stream_flags); /* a created stream's queue; NULL: no memory */
void emu_sq_release(emu_queue *q); /* its stream is destroyed: the queue drains, then ends */
/* Wait for the work issued so far; return (and clear) a latched asynchronous error. The NULL stream's
 * synchronize and query cover the blocking streams' work too (the legacy default stream's rule). */
CUresult emu_sq_sync_stream(CUstream s);
CUresult emu_sq_query_stream(CUstream s); /* CUDA_ERROR_NOT_READY while work is pending */
CUresult emu_sq_sync_ctx(emu_ctx *c);     /* every stream of c (NULL: of every context) */
void emu_sq_idle_all(void);               /* the device idle: before freeing what queued work may use */
void emu_sq_ctx_destroyed(emu_ctx *c);    /* drains c's streams; their later work is skipped */
CUresult emu_sq_record(struct emu_event *e, CUstream s);
CUresult emu_sq_event_query(struct emu_event *e); /* CUDA_ERROR_NOT_READY until its last record ran */
void emu_sq_event_sync(struct emu_event *e);
void emu_sq_event_release(struct emu_event *e);   /* drops a reference; frees it at the last */
CUresult emu_sq_wait_event(CUstream s, struct emu_event *e); /* s's later work waits for e's record */
/* A checked copy of n bytes as an operation of stream s (emu_memory.c): sync = a synchronous API call;
 * waits as CUDA's "API synchronization behavior" says (see emu_memory.c). */
CUresult emu_copy_bytes(CUstream s, void *dst, const void *src, size_t n, int sync);

/* ---- stream capture (emu_graph.c): work issued to a capturing stream becomes graph nodes ---- */
struct emu_graph *emu_capture_of(CUstream s); /* NULL: not capturing */
CUresult emu_capture_kernel(CUstream s, emu_func *f, const unsigned grid[3], const unsigned block[3],
                            size_t shmem, const void *params, size_t len, int cooperative);
CUresult emu_capture_copy(CUstream s, int kind, CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult emu_capture_copy3d(CUstream s, const CUDA_MEMCPY3D *p);
CUresult emu_capture_memset(CUstream s, CUdeviceptr dst, size_t pitch, unsigned value, unsigned elem,
                            size_t width, size_t height);
CUresult emu_capture_host(CUstream s, CUhostFn fn, void *data);
CUresult emu_capture_event(CUstream s, emu_event *e);
CUresult emu_capture_wait(CUstream s, emu_event *e);
/* An unsupported call was made on capturing stream s: its capture ends in INVALIDATED. */
void emu_capture_invalidate(CUstream s);
/* Capture-mode rules for a potentially unsafe call of this thread (cuMemAlloc, cuCtxSynchronize):
 * CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, and the prohibiting captures invalidated, when it is refused. */
CUresult emu_capture_unsafe_call(void);
/* cuMemAllocAsync / cuMemFreeAsync on a capturing stream: graph memory (alloc and free nodes). */
CUresult emu_capture_alloc(CUstream s, CUdeviceptr *dptr, size_t bytes);
CUresult emu_capture_free(CUstream s, CUdeviceptr p);
int emu_graph_mem_is(CUdeviceptr p); /* p is graph memory, kept for the graph's next launch */
void emu_graph_mem_release(CUdeviceptr p);
enum { EMU_COPY_UNIFIED, EMU_COPY_HTOD, EMU_COPY_DTOH, EMU_COPY_DTOD };
/* Packs kernel arguments (kernelParams or `extra`) into a malloc'd buffer (emu_launch.c). */
CUresult emu_kernel_pack(emu_func *f, void **params, void **extra, uint8_t **buf, size_t *len);

/* ---- CUDA arrays (emu_array.c) ---- */
/* 0 and a live array's dense storage (row pitch, rows per slice, total bytes), -1 if h is no array. */
int emu_array_layout(CUarray h, uint8_t **data, size_t *pitch, size_t *height, size_t *bytes);

/* ---- fatbin (fatbin.c) ---- */
#include "fatbin.h"

#endif
