/* calls_wire.h - wire format of the remote data path, shared by the client stub (stub_c/) and the native
 * executor (tfworker/executor/). The per-call argument layout is generated from proto/calls.tbl by
 * proto/gen_calls.py; this file holds what is common to every call: the connection handshake, the frame
 * headers, the session-hello payload and the small length helpers the table's expressions use.
 *
 * Frames (after the handshake, both directions little endian, native struct layout of x86-64/aarch64):
 *   request  tf_req_hdr + body (body length `len` is a multiple of 8; bulk bytes follow raw, 8-aligned)
 *   reply    tf_rep_hdr + outputs in parameter order (only when result == CUDA_SUCCESS)
 *            + nlatched tf_latched entries + nconsole bytes of tf_console records
 * A request with TF_REQ_NOREPLY gets no reply; a failure is latched by the executor with the stream the
 * call named (first failure per stream) and sent with the next reply; the stub returns it at the next
 * call on that stream, or at the next context-wide synchronize.
 */
#ifndef TF_WIRE_H
#define TF_WIRE_H

#include <stdint.h>
#include <stddef.h>
#include <cuda.h>

/* ---- handshake (contract with the daemon, tfworker/dataplane.py) ---- */
#define TF_HELLO_MAGIC "TFH1"
#define TF_REPLY_MAGIC "TFR1"
#define TF_HELLO_VERSION 1u
#define TF_MAX_TOKEN 4096u
typedef struct tf_hello_hdr {
    char magic[4];
    uint32_t version;
    uint32_t token_len;
    uint32_t reserved;
} tf_hello_hdr;
typedef struct tf_hello_reply {
    char magic[4];
    int32_t status;
    uint32_t msg_len;
    uint32_t reserved;
} tf_hello_reply;

/* ---- frames ---- */
#define TF_REQ_NOREPLY 0x1u
typedef struct tf_req_hdr {
    uint32_t len;   /* body bytes after this header */
    uint16_t call;  /* TF_CALL_* from the generated table */
    uint16_t flags; /* TF_REQ_* */
} tf_req_hdr;
typedef struct tf_rep_hdr {
    uint32_t len;      /* payload bytes after this header (outputs, the latched entries, console records) */
    int32_t result;    /* CUresult of the call */
    uint32_t nlatched; /* tf_latched entries after the outputs */
    uint32_t nconsole; /* bytes of tf_console records at the end of the payload */
} tf_rep_hdr;
/* Console output of the GPU worker process since the last reply, whatever the call: device printf (the
 * backend writes it to the process's stdout where CUDA flushes its printf FIFO, so it rides on the reply
 * of the flushing call) and diagnostics written to its stderr. The stub writes each record's bytes to
 * its own stdout (fd 1) or stderr (fd 2), in order, before the call returns. */
typedef struct tf_console {
    uint32_t fd;       /* 1 = stdout, 2 = stderr */
    uint32_t len;      /* bytes that follow, then padding to 8 */
} tf_console;
/* A reply header whose `nconsole` is TF_REP_HOST_CALL (above TF_MAX_FRAME, so never a byte count) is not a
 * reply but a request from the worker, sent while the client waits for tfGraphLaunchServe: run the client's
 * host function (payload: u64 fn, u64 userData) and answer with the 8 bytes TF_HOST_CALL_DONE; the real
 * reply follows later. When the launch is a tfGraphLaunchHost, the payload goes on with the current bytes of
 * the graph's host destination ranges (as tfGraphFetch returns them), written to the client's memory before
 * the function runs. */
#define TF_REP_HOST_CALL 0x4c4c4143u  /* "CALL" */
#define TF_HOST_CALL_DONE "TFHD\0\0\0\0"
/* The host-call channel (tfHostChannelAttach, a socketpair of the client's): the worker sends one
 * tf_host_call_msg when a stream reaches a function of the client's - kind TF_HOST_CALL_QUEUED: the host
 * function or callback the client queued as `id` (status: the stream's error status, for callbacks);
 * kind TF_HOST_CALL_NODE: a graph host node, run fn(data) (the client's own values, given at
 * cuGraphAddHostNode) - and holds that stream until the client writes back the 8 bytes of `id` after the
 * function returned. Each side reads the other's messages whole, in order. */
#define TF_HOST_CHANNEL_VERSION 1u
#define TF_HOST_CALL_QUEUED 0u
#define TF_HOST_CALL_NODE 1u
typedef struct tf_host_call_msg {
    uint64_t id;
    int32_t status;
    uint32_t kind;
    uint64_t fn, data;  /* TF_HOST_CALL_NODE only */
} tf_host_call_msg;
typedef struct tf_latched {
    uint64_t stream;   /* the stream the failed NOREPLY call named (0 if none) */
    int32_t error;
    uint32_t reserved;
} tf_latched;
#define TF_MAX_LATCHED 32

/* Largest body either side accepts (big enough for a library's whole fatbin); the stub splits bigger
 * copies into chunks. */
#define TF_MAX_FRAME (256u << 20)
#define TF_COPY_CHUNK (4u << 20)

/* Graphs: most dependencies a capture-info reply carries, largest packed kernel-node parameter block
 * (CUDA allows 32764 bytes), largest .dot text of cuGraphDebugDotPrint. */
#define TF_MAX_CAPTURE_DEPS 256
#define TF_MAX_KPARAM_BYTES 32768
#define TF_MAX_DOT_BYTES (1u << 20)
/* Most client host ranges (memcpy nodes on host memory) one executable graph may have. */
#define TF_MAX_HOST_RANGES 256
/* Most access descriptors of a graph memory alloc node (one per device that may access it). */
#define TF_MAX_ACCESS_DESCS 64
/* Most body graphs of a conditional node (a switch node's size) one reply carries. */
#define TF_MAX_COND_BODIES 1024
static inline uint64_t tf_cond_bodies(const CUDA_CONDITIONAL_NODE_PARAMS *p)
{
    return p && p->size <= TF_MAX_COND_BODIES ? p->size : 0;
}

/* ---- session hello: what the stub caches and answers locally ---- */
#define TF_MAX_DEVICES 8
#define TF_MAX_ATTR 160
typedef struct tf_dev_info {
    char name[256];
    uint64_t total_mem;
    CUuuid uuid;
    int32_t attr[TF_MAX_ATTR];       /* CUdevice_attribute values */
    uint8_t attr_ok[TF_MAX_ATTR];    /* 1 = the backend answered */
} tf_dev_info;

/* ---- a function's launch limits (tfFuncGetParamLayout), -1 where the backend did not say ---- */
enum {
    TF_FUNC_LIMIT_MAX_DYNAMIC_SHARED, /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: more is INVALID_VALUE */
    TF_FUNC_LIMIT_MAX_THREADS,        /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: more is LAUNCH_OUT_OF_RESOURCES */
    TF_FUNC_LIMIT_STATIC_SHARED,      /* CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES */
    TF_FUNC_LIMIT_NUM_REGS,           /* CU_FUNC_ATTRIBUTE_NUM_REGS */
    TF_FUNC_NLIMITS
};

/* ---- helpers used in the table's length expressions (saturate instead of wrapping) ---- */
static inline uint64_t tf_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}
static inline uint64_t tf_2d(uint64_t pitch, uint64_t width, uint64_t height)
{
    if (height == 0 || width == 0) return 0;
    uint64_t rows = tf_mul(pitch, height - 1);
    return rows > UINT64_MAX - width ? UINT64_MAX : rows + width;
}
/* bytes of a cuMemPoolGet/SetAttribute value: the reuse policies are ints, the thresholds and
 * counters cuuint64_t (an unknown attribute travels as 8 bytes; the backend rejects it) */
static inline uint64_t tf_pool_attr_size(int attr)
{
    return attr >= 1 && attr <= 3 ? sizeof(int) : sizeof(unsigned long long);
}
static inline size_t tf_pad8(size_t n) { return (n + 7u) & ~(size_t)7u; }

#endif
