/* executor.h - internals of the native executor (build/bin/tf-executor), the GPU worker process of one
 * client session. main.c starts it (tls_start.c first, on a TLS listener); conn.c moves the bytes (plain
 * socket or TLS); executor.c reads frames, runs the generated dispatch
 * (build/executor/gen/exec_calls.c) against the backend libcuda and keeps the registries every handle
 * and device pointer from the client is checked against; the fuzz harness (tests/fuzz_frames.c) drives
 * tf_session_feed() with made-up frames.
 */
#ifndef TF_EXECUTOR_H
#define TF_EXECUTOR_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <cuda.h>
#include "calls_wire.h"
#include "exec_calls.h"

enum { TFK_NONE, TFK_CTX, TFK_MOD, TFK_FUNC, TFK_LIB, TFK_KERNEL, TFK_STREAM, TFK_EVENT, TFK_POOL, TFK_LINK,
       TFK_GRAPH, TFK_GNODE, TFK_GEXEC, TFK_ARRAY, TFK_MIPMAP, TFK_TEXOBJ, TFK_SURFOBJ };

/* Request body reader: fixed fields in order, then 8-aligned variable buffers. */
struct tf_rd { const uint8_t *p; size_t n, off; };
/* Reply payload writer (space reserved before the backend call, filled after). */
struct tf_wr { uint8_t *buf; size_t len, cap; int failed; };

typedef struct tf_reg_entry {
    uint64_t key;
    int kind;              /* (kind, key) names the object: values of different kinds may be equal */
    uint64_t parent;
    int parent_kind;
    void *aux;             /* owned: module image copy, kernel parameter layout */
    struct tf_reg_entry *next;
} tf_reg_entry;

/* Backend entry points the dispatch table does not carry (session setup, hand-written calls). */
typedef struct tf_be_extra {
    CUresult (*cuInit)(unsigned);
    CUresult (*cuDriverGetVersion)(int *);
    CUresult (*cuDeviceGetCount)(int *);
    CUresult (*cuDeviceGet)(CUdevice *, int);
    CUresult (*cuDeviceGetName)(char *, int, CUdevice);
    CUresult (*cuDeviceTotalMem_v2)(size_t *, CUdevice);
    CUresult (*cuDeviceGetUuid)(CUuuid *, CUdevice);
    CUresult (*cuDeviceGetAttribute)(int *, CUdevice_attribute, CUdevice);
    CUresult (*cuCtxSetCurrent)(CUcontext);
    CUresult (*cuCtxGetCurrent)(CUcontext *);
    CUresult (*cuCtxPushCurrent_v2)(CUcontext);
    CUresult (*cuCtxPopCurrent_v2)(CUcontext *);
    CUresult (*cuModuleLoadData)(CUmodule *, const void *);
    CUresult (*cuLibraryLoadData)(CUlibrary *, const void *, CUjit_option *, void **, unsigned, CUlibraryOption *,
                                  void **, unsigned);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                               CUstream, void **, void **);
    CUresult (*cuLaunchKernelEx)(const CUlaunchConfig *, CUfunction, void **, void **);
    CUresult (*cuMemcpy2DUnaligned_v2)(const CUDA_MEMCPY2D *);
    CUresult (*cuMemcpy2DAsync_v2)(const CUDA_MEMCPY2D *, CUstream);
    CUresult (*cuMemcpy3D_v2)(const CUDA_MEMCPY3D *);                  /* array copies (exec_array.c) */
    CUresult (*cuMemcpy3DAsync_v2)(const CUDA_MEMCPY3D *, CUstream);
    CUresult (*cuMemHostRegister_v2)(void *, size_t, unsigned);        /* managed memory (tfMemAllocAt) */
    CUresult (*cuMemHostGetDevicePointer_v2)(CUdeviceptr *, void *, unsigned);
    CUresult (*cuMemHostUnregister)(void *);
    CUresult (*cuMemGetAddressRange_v2)(CUdeviceptr *, size_t *, CUdeviceptr);
    CUresult (*cuIpcOpenMemHandle_v2)(CUdeviceptr *, CUipcMemHandle, unsigned);   /* exec_ipc.c */
    CUresult (*cuIpcCloseMemHandle)(CUdeviceptr);
    CUresult (*cuIpcOpenEventHandle)(CUevent *, CUipcEventHandle);
    CUresult (*cuIpcGetMemHandle)(CUipcMemHandle *, CUdeviceptr);
    CUresult (*cuIpcGetEventHandle)(CUipcEventHandle *, CUevent);
    CUresult (*cuMemPoolExportToShareableHandle)(void *, CUmemoryPool, CUmemAllocationHandleType,
                                                 unsigned long long);   /* IPC pools (exec_vmm.c) */
    CUresult (*cuMemPoolImportFromShareableHandle)(CUmemoryPool *, void *, CUmemAllocationHandleType,
                                                   unsigned long long);
    CUresult (*cuMemPoolImportPointer)(CUdeviceptr *, CUmemoryPool, CUmemPoolPtrExportData *);
    CUresult (*cuPointerGetAttribute)(void *, CUpointer_attribute, CUdeviceptr);   /* an import's device */
} tf_be_extra;

/* The session: one per process. */
struct tfx {
    tf_backend be;
    tf_be_extra bx;
    int has_backend;
    /* handle registry (chained hash) */
    tf_reg_entry **buckets;
    size_t nbuckets, nentries;
    /* device allocations, sorted by base */
    struct { uint64_t base, size; } *dev;
    size_t ndev, devcap;
    tf_latched latched[TF_MAX_LATCHED]; /* first failure per stream of NOREPLY calls since the last reply */
    uint32_t nlatched;
    uint64_t cur_stream;   /* stream named by the frame being run (set by the generated decoders) */
    struct tf_wr w;
    uint8_t *argbuf;       /* 16-aligned copy of kernel parameters */
    int verbose;
    int direct_host;       /* device pointers are host addresses of this process (the emulator) */
    int rx_fd;             /* last descriptor the client passed (SCM_RIGHTS), -1 if none */
    int tx_fd;             /* a descriptor for the client, sent (SCM_RIGHTS) and closed with the next reply */
    int fd;                /* the client's socket (host nodes call back through it, exec_graph.c) */
    struct ssl_st *ssl;    /* the TLS session over fd (tls_start.c), NULL on a plain connection */
    uint8_t *shm;          /* the client's shared-memory copy window (tfShmAttach) */
    struct tf_vmm *vmm;    /* reserved / mapped VA and allocation handles (exec_vmm.c) */
    size_t shm_size;
    /* contexts cuCtxDestroy destroyed, the last TF_DEAD_CTXS: a client thread may still have one current (CUDA
     * keeps it current to the other threads it was current to), and then its calls that need the context get
     * CUDA_ERROR_CONTEXT_IS_DESTROYED (cur_ctx_destroyed; ex_tfCtxSetCurrent) */
    uint64_t dead_ctx[16];
    unsigned ndead;
    int cur_ctx_destroyed;
    /* host memory mapped for the client (tfMemAllocAt*), with the context it was made in */
    struct { uint64_t addr, size, ctx; } *hostmaps;
    size_t nhostmaps, hostmapcap;
};

/* tf_rd helpers used by the generated decoders. */
int tf_get(tf_rd *r, void *dst, size_t n);
const void *tf_take(tf_rd *r, uint64_t n);
int tf_done(const tf_rd *r);
size_t tf_reserve(tf_wr *w, size_t n);

/* Registries. */
/* The handle registry, keyed by (kind, value). parent/parent_kind: the object whose destruction takes this one
 * with it (0, TFK_NONE: none). */
int tf_reg_has(tfx *x, uint64_t key, int kind);
void tf_reg_add(tfx *x, uint64_t key, int kind, uint64_t parent, int parent_kind);
/* tf_reg_add with the parent `sibling` (a live handle of sibling_kind) has: graph nodes found through another node. */
void tf_reg_add_beside(tfx *x, uint64_t key, int kind, uint64_t sibling, int sibling_kind);
tf_reg_entry *tf_reg_get(tfx *x, uint64_t key, int kind);
void tf_reg_del(tfx *x, uint64_t key, int kind);
void tf_dev_add(tfx *x, uint64_t base, uint64_t size);
void tf_dev_del(tfx *x, uint64_t base);
int tf_dev_ok(tfx *x, uint64_t p, uint64_t len);
int tf_dev_is_base(tfx *x, uint64_t p);
/* The client's shared-memory window at [off, off+len) (executor.c); NULL when it is not all inside it. */
uint8_t *tfx_shm_at(tfx *x, unsigned long long off, size_t len);

/* The limiter's charge for host memory this process maps or pins for the client (tf_limiter_hostmap.h),
 * keyed by `addr` (executor.c): over the VRAM cap CUDA_ERROR_OUT_OF_MEMORY; no limiter: nothing charged. */
CUresult tfx_hostmap_charge(uint64_t addr, size_t bytes);
void tfx_hostmap_refund(uint64_t addr);
/* A staging buffer for a client's copy (executor.c): `len` bytes of the backend's page-locked host memory,
 * charged under `key` (tfx_hostmap_charge) before it is made: over the cap CUDA_ERROR_OUT_OF_MEMORY, no backend
 * entry point CUDA_ERROR_NOT_SUPPORTED, *buf NULL on any failure (nothing charged). tfx_stage_free frees it and
 * refunds the charge (buf NULL: nothing). */
CUresult tfx_stage_alloc(uint64_t key, size_t len, void **buf);
void tfx_stage_free(uint64_t key, void *buf);

/* Session life. tf_session_init loads the backend from `lib` (NULL = none: every call NOT_SUPPORTED,
 * used by the fuzz harness); tf_session_feed runs one complete frame (header + body) and writes the
 * reply (if any) through `out`; tf_serve loops over a socket until the client leaves. */
int tf_session_init(tfx *x, void *lib);
void tf_session_free(tfx *x);
typedef int (*tf_out_fn)(void *ctx, const void *a, size_t an, const void *b, size_t bn);
int tf_session_feed(tfx *x, const tf_req_hdr *h, const uint8_t *body, tf_out_fn out, void *octx);
int tf_serve(tfx *x, int fd);

/* conn.c: I/O on the client connection, plain or TLS (x->fd, x->ssl). read returns >0, 0 at a clean
 * end, -1 with errno; take_fds keeps a descriptor the client passed (plain Unix sockets only). writev
 * sends every byte or returns -1 (it may modify v). */
ssize_t tf_conn_read(tfx *x, void *p, size_t n, int take_fds);
int tf_conn_read_exact(tfx *x, void *p, size_t n);
int tf_conn_writev(tfx *x, struct iovec *v, int n);
void tf_conn_wait_readable(tfx *x);

/* exec_vmm.c: frees the VMM bookkeeping (tf_session_free). */
void tf_vmm_free(tfx *x);
/* The IPC policy (exec_ipc.c): an export leaves a mark of its key (handle bytes, or a descriptor's identity)
 * in the allocation's scope folder; an import whose key has no mark there is CUDA_ERROR_NOT_PERMITTED. */
CUresult tfx_ipc_mark_export(tfx *x, const void *key, size_t n);
CUresult tfx_ipc_check_import(const void *key, size_t n);

void tfx_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Kernel parameter layout of a function or kernel (executor.c), shared with graph kernel nodes. */
#define TF_MAX_PARAMS 256
typedef struct tf_param_layout {
    unsigned count;
    uint32_t total;
    uint32_t off[TF_MAX_PARAMS], size[TF_MAX_PARAMS];
} tf_param_layout;
CUresult tf_layout_of(tfx *x, CUfunction f, const tf_param_layout **out);

/* Graphs and stream capture (exec_graph.c): backend entry points the table does not carry, loaded at
 * session start; whether a stream is capturing (host-memory copies are refused then, see calls.tbl). */
void tfx_graph_load(void *lib);
/* Graph copies of client host memory (exec_graph_host.c) and the served graph launch (exec_graph.c). */
void tfx_graph_host_load(void *lib);
void tfx_graph_mem_load(void *lib); /* exec_graph_mem.c */
int tfx_graph_is_body(CUgraph g);    /* a conditional node's body graph (exec_graph_mem.c) */
CUresult tfx_graph_host_instantiated(CUgraphExec e, CUgraph g);
size_t tfx_graph_host_d2h(CUgraphExec e, uint8_t *out);
void tfx_graph_host_node_unstaged(CUgraphNode hNode); /* a memcpy node no longer copies client host memory */
/* The backend destroyed ctx: the staging buffers made in it are gone; their charges are refunded. */
void tfx_graph_host_ctx_gone(CUcontext ctx);
CUresult tfx_graph_launch_served(tfx *x, CUgraphExec hGraphExec, CUstream hStream);
int tfx_stream_capturing(tfx *x, CUstream s);
CUresult tfx_refuse_captured_host_copy(tfx *x, CUstream s, const char *call);

/* Host functions and stream callbacks run by the client over the host-call channel (exec_host_calls.c):
 * backend entry points loaded at session start. */
void tfx_host_calls_load(void *lib);
/* A graph host node outside a served launch: the client runs fn(data) over the channel; -1 if none. */
int tfx_host_call_node(uint64_t fn, uint64_t data);

/* The process's console (console.c): start captures fd 1 and fd 2 (main.c); take returns the tf_console
 * records gathered since the last take (0 and NULL if not started), valid until the next take. */
int tfx_console_start(void);
size_t tfx_console_take(const uint8_t **records);

/* One side of a device/array copy: an array of this session, or [first byte, last byte] of the copy inside its
 * device allocations; else INVALID_HANDLE / INVALID_VALUE (exec_array.c). */
CUresult tfx_copy_side_check(tfx *x, CUmemorytype t, CUarray a, CUdeviceptr d, size_t xb, size_t y, size_t z,
                             size_t pitch, size_t height, const CUDA_MEMCPY3D *c);
/* Device-to-host copies to client memory this process does not map, staged here until the stub reads them
 * (exec_copy_deferred.c): the records freed with the session. */
void tfx_copy_deferred_free(tfx *x);
/* tfDeferredRead answered from the staging buffer itself (no copy into the reply; tf_serve): 1 answered, 0 not
 * handled (the generic path answers), -1 the reply could not be sent (exec_copy_deferred.c). */
int tfx_deferred_read_direct(tfx *x, const tf_req_hdr *h, const uint8_t *body);
/* A reply whose payload lives elsewhere: header, payload, latched errors, console records (executor.c).
 * 0, or -1 when it could not be sent. */
int tfx_send_reply(tfx *x, CUresult rc, const void *payload, size_t n);
/* ctx was destroyed (or reset) with its staging buffers and events: its spare records are forgotten. */
void tfx_copy_deferred_ctx_gone(CUcontext ctx);

/* A function's launch limits, TF_FUNC_LIMIT_* (exec_launch_limits.c). */
void tfx_func_limits(tfx *x, CUfunction f, int is_kernel, int *limits);

#endif
