/* exec_graph.c - the executor's hand-written calls of stream capture and CUDA graphs (the rows of the
 * graphs section of proto/calls.tbl marked exec=hand): kernel nodes (parameters arrive packed, as for
 * tfLaunch, and the kernelParams array is rebuilt here), memset/memcpy nodes (device ranges checked, on add
 * and on every set), host nodes' parameters (the client's fn/userData in trampoline records), event nodes'
 * events as values,
 * capture info with its dependency list, the per-call capture mode, .dot text, and the refusal of
 * host-memory copies on a capturing stream.
 * Called by the generated dispatch (build/executor/gen/exec_calls.c) and by executor.c.
 *
 * Capture modes: the executor runs the calls of every client thread on its one thread, so the backend
 * sees one thread that began every capture. The stub works out, per calling client thread, whether the
 * driver would prohibit its potentially unsafe calls (CUDA's Global / ThreadLocal / Relaxed rules over
 * the captures each client thread began) and sends tfSetCaptureMode before a call when the answer
 * changes: GLOBAL when prohibited (the executor thread has a non-relaxed capture under way, so the
 * backend prohibits and invalidates exactly as it would), RELAXED when not.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "executor.h"

/* Backend entry points of hand-written graph calls that the table does not carry (internal rows). */
static struct {
    CUresult (*add_kernel)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, const CUDA_KERNEL_NODE_PARAMS *);
    CUresult (*get_kernel)(CUgraphNode, CUDA_KERNEL_NODE_PARAMS *);
    CUresult (*set_kernel)(CUgraphNode, const CUDA_KERNEL_NODE_PARAMS *);
    CUresult (*exec_set_kernel)(CUgraphExec, CUgraphNode, const CUDA_KERNEL_NODE_PARAMS *);
    CUresult (*capture_info_v3)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, CUgraph *, const CUgraphNode **,
                                const CUgraphEdgeData **, size_t *);
    CUresult (*capture_info_v2)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, CUgraph *, const CUgraphNode **,
                                size_t *);
    CUresult (*exchange_mode)(CUstreamCaptureMode *);
    CUresult (*dot_print)(CUgraph, const char *, unsigned int);
    CUresult (*add_host)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, const CUDA_HOST_NODE_PARAMS *);
    CUresult (*get_host)(CUgraphNode, CUDA_HOST_NODE_PARAMS *);
    CUresult (*set_host)(CUgraphNode, const CUDA_HOST_NODE_PARAMS *);
    CUresult (*exec_set_host)(CUgraphExec, CUgraphNode, const CUDA_HOST_NODE_PARAMS *);
    CUresult (*get_record_event)(CUgraphNode, CUevent *);
    CUresult (*get_wait_event)(CUgraphNode, CUevent *);
    CUresult (*launch_host_func)(CUstream, CUhostFn, void *);
} gb;

void tfx_graph_load(void *lib)
{
    memset(&gb, 0, sizeof gb);
    if (!lib) {
        tfx_graph_host_load(NULL);
        tfx_graph_mem_load(NULL);
        return;
    }
    *(void **)&gb.add_kernel = dlsym(lib, "cuGraphAddKernelNode_v2");
    *(void **)&gb.get_kernel = dlsym(lib, "cuGraphKernelNodeGetParams_v2");
    *(void **)&gb.set_kernel = dlsym(lib, "cuGraphKernelNodeSetParams_v2");
    *(void **)&gb.exec_set_kernel = dlsym(lib, "cuGraphExecKernelNodeSetParams_v2");
    *(void **)&gb.capture_info_v3 = dlsym(lib, "cuStreamGetCaptureInfo_v3");
    *(void **)&gb.capture_info_v2 = dlsym(lib, "cuStreamGetCaptureInfo_v2");
    *(void **)&gb.exchange_mode = dlsym(lib, "cuThreadExchangeStreamCaptureMode");
    *(void **)&gb.dot_print = dlsym(lib, "cuGraphDebugDotPrint");
    *(void **)&gb.add_host = dlsym(lib, "cuGraphAddHostNode");
    *(void **)&gb.get_host = dlsym(lib, "cuGraphHostNodeGetParams");
    *(void **)&gb.set_host = dlsym(lib, "cuGraphHostNodeSetParams");
    *(void **)&gb.exec_set_host = dlsym(lib, "cuGraphExecHostNodeSetParams");
    *(void **)&gb.get_record_event = dlsym(lib, "cuGraphEventRecordNodeGetEvent");
    *(void **)&gb.get_wait_event = dlsym(lib, "cuGraphEventWaitNodeGetEvent");
    *(void **)&gb.launch_host_func = dlsym(lib, "cuLaunchHostFunc");
    tfx_graph_host_load(lib);
    tfx_graph_mem_load(lib);
}

/* ------------------------------------------------------------------------------ capture */
int tfx_stream_capturing(tfx *x, CUstream s)
{
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    if (!x->be.f_cuStreamIsCapturing) return 0;
    return x->be.f_cuStreamIsCapturing(s, &st) == CUDA_SUCCESS && st != CU_STREAM_CAPTURE_STATUS_NONE;
}

/* A copy between client host memory and the device cannot become a graph node: the host side is a buffer
 * of this process that is gone when the call returns (the client's memory is on another machine). It is
 * refused as the driver refuses an unsupported call during capture: the capture is invalidated (a
 * synchronize of a capturing stream does that) and the call answers STREAM_CAPTURE_UNSUPPORTED. */
CUresult tfx_refuse_captured_host_copy(tfx *x, CUstream s, const char *call)
{
    static int said;
    if (said++ < 4)
        tfx_log("%s: a copy between client host memory and the device cannot be captured into a graph "
                "(the client's memory is not in the GPU worker): capture invalidated, "
                "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", call);
    if (x->be.f_cuStreamSynchronize) (void)x->be.f_cuStreamSynchronize(s);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

CUresult ex_tfSetCaptureMode(tfx *x, CUstreamCaptureMode mode)
{
    (void)x;
    if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
        mode != CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    if (!gb.exchange_mode) return CUDA_ERROR_NOT_SUPPORTED;
    CUstreamCaptureMode m = mode;
    return gb.exchange_mode(&m);
}

/* Captures into a graph of the client's (cuStreamBeginCaptureToGraph): an invalidated one leaves that graph
 * alive, while the graph of an ordinary capture dies with the invalidation and must leave the registry. */
#define MAX_TO_GRAPH 64
static struct { CUstream s; CUgraph g; } g_to_graph[MAX_TO_GRAPH];

static int to_graph_find(CUstream s)
{
    for (int i = 0; i < MAX_TO_GRAPH; i++)
        if (g_to_graph[i].g && g_to_graph[i].s == s) return i;
    return -1;
}

CUresult ex_cuStreamBeginCaptureToGraph(tfx *x, CUstream hStream, CUgraph hGraph, const CUgraphNode *dependencies,
                                        const CUgraphEdgeData *dependencyData, size_t numDependencies,
                                        CUstreamCaptureMode mode)
{
    if (!x->be.f_cuStreamBeginCaptureToGraph) return CUDA_ERROR_NOT_SUPPORTED;
    int free_slot = -1;
    for (int i = 0; i < MAX_TO_GRAPH && free_slot < 0; i++)
        if (!g_to_graph[i].g) free_slot = i;
    if (free_slot < 0 || to_graph_find(hStream) >= 0) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = x->be.f_cuStreamBeginCaptureToGraph(hStream, hGraph, dependencies, dependencyData, numDependencies,
                                                      mode);
    if (rc == CUDA_SUCCESS) {
        g_to_graph[free_slot].s = hStream;
        g_to_graph[free_slot].g = hGraph;
    }
    return rc;
}

CUresult ex_cuStreamEndCapture(tfx *x, CUstream hStream, CUgraph *phGraph)
{
    if (!x->be.f_cuStreamEndCapture) return CUDA_ERROR_NOT_SUPPORTED;
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    cuuint64_t id = 0;
    CUgraph cg = NULL;
    const CUgraphNode *d = NULL;
    size_t nd = 0;
    if (!gb.capture_info_v2 || gb.capture_info_v2(hStream, &st, &id, &cg, &d, &nd) != CUDA_SUCCESS) cg = NULL;
    CUresult rc = x->be.f_cuStreamEndCapture(hStream, phGraph);
    int tg = to_graph_find(hStream);
    if (rc != CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD && rc != CUDA_ERROR_STREAM_CAPTURE_UNMATCHED && tg >= 0)
        g_to_graph[tg].g = NULL, g_to_graph[tg].s = NULL;
    /* the graph of an invalidated ordinary capture is gone (nodes too): forget it if the client saw it */
    if (rc == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED && cg && tg < 0) tf_reg_del(x, (uint64_t)(uintptr_t)cg, TFK_GRAPH);
    return rc;
}

CUresult ex_tfStreamGetCaptureInfo(tfx *x, CUstream hStream, CUstreamCaptureStatus *status, cuuint64_t *id,
                                   CUgraph *graph, size_t *numDeps, unsigned long long *deps, CUgraphEdgeData *edges)
{
    (void)x;
    const CUgraphNode *d = NULL;
    const CUgraphEdgeData *e = NULL;
    size_t n = 0;
    CUresult rc;
    if (gb.capture_info_v3)
        rc = gb.capture_info_v3(hStream, status, id, graph, &d, &e, &n);
    else if (gb.capture_info_v2)
        rc = gb.capture_info_v2(hStream, status, id, graph, &d, &n);
    else
        return CUDA_ERROR_NOT_SUPPORTED;
    if (rc) return rc;
    if (*status != CU_STREAM_CAPTURE_STATUS_ACTIVE) {
        *graph = NULL;
        n = 0;
    }
    if (n > TF_MAX_CAPTURE_DEPS) {
        tfx_log("cuStreamGetCaptureInfo: %zu dependencies, more than the %u one reply carries", n,
                (unsigned)TF_MAX_CAPTURE_DEPS);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (n && !d) return CUDA_ERROR_UNKNOWN;
    *numDeps = n;
    for (size_t i = 0; i < n; i++) {  /* reply outputs are packed back to back: no alignment */
        unsigned long long v = (unsigned long long)(uintptr_t)d[i];
        memcpy((char *)deps + i * sizeof v, &v, sizeof v);
        if (e) memcpy((char *)edges + i * sizeof *e, &e[i], sizeof *e);
        tf_reg_add(x, v, TFK_GNODE, (uint64_t)(uintptr_t)*graph, TFK_GRAPH);
    }
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------- kernel nodes */
/* The node's parameters as the backend takes them: kernelParams rebuilt over a copy of the packed block
 * (the backend copies the values when the node is made or set), handles in the struct checked. */
static CUresult kernel_params(tfx *x, const CUDA_KERNEL_NODE_PARAMS *in, unsigned argBytes, const void *args,
                              CUDA_KERNEL_NODE_PARAMS *out, void **params, uint8_t *buf)
{
    if (!in || (argBytes && !args) || argBytes > TF_MAX_KPARAM_BYTES) return CUDA_ERROR_INVALID_VALUE;
    if (in->ctx && !tf_reg_has(x, (uint64_t)(uintptr_t)in->ctx, TFK_CTX)) return CUDA_ERROR_INVALID_CONTEXT;
    if (in->kern && !tf_reg_has(x, (uint64_t)(uintptr_t)in->kern, TFK_KERNEL)) return CUDA_ERROR_INVALID_HANDLE;
    CUfunction f = in->func ? in->func : (CUfunction)in->kern;
    const tf_param_layout *l;
    CUresult rc = tf_layout_of(x, f, &l);  /* also checks that f is one of the session's */
    if (rc) return rc;
    if (argBytes < l->total) return CUDA_ERROR_INVALID_VALUE;
    memcpy(buf, args, argBytes);
    for (unsigned i = 0; i < l->count; i++) params[i] = buf + l->off[i];
    *out = *in;
    out->kernelParams = params;
    out->extra = NULL;
    return CUDA_SUCCESS;
}

CUresult ex_tfGraphAddKernelNode(tfx *x, CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                 size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS *nodeParams,
                                 unsigned int argBytes, const void *args)
{
    if (!gb.add_kernel) return CUDA_ERROR_NOT_SUPPORTED;
    _Alignas(16) uint8_t buf[TF_MAX_KPARAM_BYTES];
    void *params[TF_MAX_PARAMS];
    CUDA_KERNEL_NODE_PARAMS p;
    CUresult rc = kernel_params(x, nodeParams, argBytes, args, &p, params, buf);
    if (rc) return rc;
    return gb.add_kernel(phGraphNode, hGraph, dependencies, numDependencies, &p);
}

CUresult ex_tfGraphKernelNodeSetParams(tfx *x, CUgraphExec hGraphExec, CUgraphNode hNode,
                                       const CUDA_KERNEL_NODE_PARAMS *nodeParams, unsigned int argBytes,
                                       const void *args)
{
    if (!(hGraphExec ? (void *)gb.exec_set_kernel : (void *)gb.set_kernel)) return CUDA_ERROR_NOT_SUPPORTED;
    _Alignas(16) uint8_t buf[TF_MAX_KPARAM_BYTES];
    void *params[TF_MAX_PARAMS];
    CUDA_KERNEL_NODE_PARAMS p;
    CUresult rc = kernel_params(x, nodeParams, argBytes, args, &p, params, buf);
    if (rc) return rc;
    return hGraphExec ? gb.exec_set_kernel(hGraphExec, hNode, &p) : gb.set_kernel(hNode, &p);
}

/* The node's parameters with the argument values packed by the function's layout (the stub points
 * kernelParams into its own copy); pointers of this process never go back. */
CUresult ex_tfGraphKernelNodeGetParams(tfx *x, CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS *nodeParams,
                                       unsigned int *argBytes, void *args)
{
    if (!gb.get_kernel) return CUDA_ERROR_NOT_SUPPORTED;
    CUDA_KERNEL_NODE_PARAMS p;
    memset(&p, 0, sizeof p);
    CUresult rc = gb.get_kernel(hNode, &p);
    if (rc) return rc;
    CUfunction f = p.func ? p.func : (CUfunction)p.kern;
    const tf_param_layout *l;
    rc = tf_layout_of(x, f, &l);
    if (rc) {
        tfx_log("cuGraphKernelNodeGetParams: the node's function %p is not one the client knows", (void *)f);
        return rc;
    }
    if (l->total > TF_MAX_KPARAM_BYTES) return CUDA_ERROR_INVALID_VALUE;
    if (p.kernelParams) {
        for (unsigned i = 0; i < l->count; i++) {
            if (!p.kernelParams[i]) return CUDA_ERROR_UNKNOWN;
            memcpy((uint8_t *)args + l->off[i], p.kernelParams[i], l->size[i]);
        }
    } else if (p.extra) {
        const void *b = NULL;
        size_t sz = 0;
        for (size_t i = 0; p.extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (p.extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) b = p.extra[i + 1];
            else if (p.extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && p.extra[i + 1]) sz = *(size_t *)p.extra[i + 1];
        }
        if (!b || sz < l->total) return CUDA_ERROR_UNKNOWN;
        memcpy(args, b, l->total);
    } else if (l->count) {
        return CUDA_ERROR_UNKNOWN;
    }
    *argBytes = l->total;
    *nodeParams = p;
    nodeParams->kernelParams = NULL;
    nodeParams->extra = NULL;
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------- memset / memcpy nodes */
/* Bytes spanned by `rows` rows of `width` bytes `pitch` apart; 0 on overflow. */
static uint64_t span(uint64_t pitch, uint64_t width, uint64_t rows)
{
    uint64_t r;
    if (rows == 0 || width == 0) return 0;
    if (__builtin_mul_overflow(pitch, rows - 1, &r) || __builtin_add_overflow(r, width, &r)) return 0;
    return r;
}

/* A memset node's operands (add, set, executable graph set): its context one of the session's, every byte it
 * writes inside one of the session's allocations. */
static CUresult memset_operands(tfx *x, const CUDA_MEMSET_NODE_PARAMS *m, CUcontext ctx)
{
    if (ctx && !tf_reg_has(x, (uint64_t)(uintptr_t)ctx, TFK_CTX)) return CUDA_ERROR_INVALID_CONTEXT;
    if (!m || (m->elementSize != 1 && m->elementSize != 2 && m->elementSize != 4)) return CUDA_ERROR_INVALID_VALUE;
    uint64_t width;
    if (__builtin_mul_overflow((uint64_t)m->width, (uint64_t)m->elementSize, &width)) return CUDA_ERROR_INVALID_VALUE;
    uint64_t bytes = span(m->height > 1 ? m->pitch : width, width, m->height);
    if (bytes == 0 || !tf_dev_ok(x, m->dst, bytes)) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult ex_cuGraphAddMemsetNode(tfx *x, CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                 size_t numDependencies, const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
    if (!x->be.f_cuGraphAddMemsetNode) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = memset_operands(x, memsetParams, ctx);
    return rc ? rc : x->be.f_cuGraphAddMemsetNode(phGraphNode, hGraph, dependencies, numDependencies, memsetParams, ctx);
}

CUresult ex_cuGraphMemsetNodeSetParams(tfx *x, CUgraphNode hNode, const CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
    if (!x->be.f_cuGraphMemsetNodeSetParams) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = memset_operands(x, nodeParams, NULL);
    return rc ? rc : x->be.f_cuGraphMemsetNodeSetParams(hNode, nodeParams);
}

CUresult ex_cuGraphExecMemsetNodeSetParams(tfx *x, CUgraphExec hGraphExec, CUgraphNode hNode,
                                          const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
    if (!x->be.f_cuGraphExecMemsetNodeSetParams) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = memset_operands(x, memsetParams, ctx);
    return rc ? rc : x->be.f_cuGraphExecMemsetNodeSetParams(hGraphExec, hNode, memsetParams, ctx);
}

/* One side of a 3D copy: device memory of the session, whole extent checked. */
static CUresult copy_side(tfx *x, CUmemorytype type, CUdeviceptr dev, CUarray arr, size_t xb, size_t y, size_t z,
                          size_t pitch, size_t height, const CUDA_MEMCPY3D *c)
{
    if (type == CU_MEMORYTYPE_ARRAY)  /* the backend checks offsets and extents against the array */
        return tf_reg_has(x, (uint64_t)(uintptr_t)arr, TFK_ARRAY) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
    if (type != CU_MEMORYTYPE_DEVICE) {
        tfx_log("cuGraphAddMemcpyNode: only device memory and arrays can be copied by a graph node here (memory "
                "type %d: client host memory is not in the GPU worker)", (int)type);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    uint64_t p = pitch ? pitch : c->WidthInBytes, h = height ? height : c->Height, depth = c->Depth ? c->Depth : 1;
    uint64_t start, rows, off;
    if (__builtin_mul_overflow((uint64_t)z, h, &rows) || __builtin_add_overflow(rows, (uint64_t)y, &rows) ||
        __builtin_mul_overflow(rows, p, &off) || __builtin_add_overflow(off, (uint64_t)xb, &off) ||
        __builtin_add_overflow((uint64_t)dev, off, &start))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t nrows;
    if (__builtin_mul_overflow(depth - 1, h, &nrows) || __builtin_add_overflow(nrows, (uint64_t)c->Height, &nrows))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t bytes = span(p, c->WidthInBytes, nrows);
    if (bytes == 0 || !tf_dev_ok(x, start, bytes)) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

/* A memcpy node's operands (cuGraphAddMemcpyNode, cuGraphExecMemcpyNodeSetParams): both sides checked, *q
 * the copy with its host fields, and the array fields of a side that is no array, cleared (they mean
 * nothing here). */
static CUresult memcpy_node_operands(tfx *x, const CUDA_MEMCPY3D *c, CUDA_MEMCPY3D *q)
{
    if (!c || c->WidthInBytes == 0 || c->Height == 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = copy_side(x, c->srcMemoryType, c->srcDevice, c->srcArray, c->srcXInBytes, c->srcY, c->srcZ,
                            c->srcPitch, c->srcHeight, c);
    if (rc == CUDA_SUCCESS)
        rc = copy_side(x, c->dstMemoryType, c->dstDevice, c->dstArray, c->dstXInBytes, c->dstY, c->dstZ, c->dstPitch,
                       c->dstHeight, c);
    if (rc) return rc;
    *q = *c;
    q->srcHost = NULL, q->dstHost = NULL, q->reserved0 = NULL, q->reserved1 = NULL;
    if (q->srcMemoryType != CU_MEMORYTYPE_ARRAY) q->srcArray = NULL;
    if (q->dstMemoryType != CU_MEMORYTYPE_ARRAY) q->dstArray = NULL;
    return CUDA_SUCCESS;
}

CUresult ex_cuGraphAddMemcpyNode(tfx *x, CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                 size_t numDependencies, const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    if (!x->be.f_cuGraphAddMemcpyNode) return CUDA_ERROR_NOT_SUPPORTED;
    if (ctx && !tf_reg_has(x, (uint64_t)(uintptr_t)ctx, TFK_CTX)) return CUDA_ERROR_INVALID_CONTEXT;
    CUDA_MEMCPY3D q;
    CUresult rc = memcpy_node_operands(x, copyParams, &q);
    if (rc) return rc;
    return x->be.f_cuGraphAddMemcpyNode(phGraphNode, hGraph, dependencies, numDependencies, &q, ctx);
}

/* New device (or array) operands for a graph's memcpy node: if it copied client host memory, it no longer does. */
CUresult ex_cuGraphMemcpyNodeSetParams(tfx *x, CUgraphNode hNode, const CUDA_MEMCPY3D *nodeParams)
{
    if (!x->be.f_cuGraphMemcpyNodeSetParams) return CUDA_ERROR_NOT_SUPPORTED;
    CUDA_MEMCPY3D q;
    CUresult rc = memcpy_node_operands(x, nodeParams, &q);
    if (rc == CUDA_SUCCESS) rc = x->be.f_cuGraphMemcpyNodeSetParams(hNode, &q);
    if (rc == CUDA_SUCCESS) tfx_graph_host_node_unstaged(hNode);
    return rc;
}

CUresult ex_cuGraphExecMemcpyNodeSetParams(tfx *x, CUgraphExec hGraphExec, CUgraphNode hNode,
                                          const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    if (!x->be.f_cuGraphExecMemcpyNodeSetParams) return CUDA_ERROR_NOT_SUPPORTED;
    if (ctx && !tf_reg_has(x, (uint64_t)(uintptr_t)ctx, TFK_CTX)) return CUDA_ERROR_INVALID_CONTEXT;
    if (!tf_reg_has(x, (uint64_t)(uintptr_t)hNode, TFK_GNODE)) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D q;
    CUresult rc = memcpy_node_operands(x, copyParams, &q);
    if (rc) return rc;
    return x->be.f_cuGraphExecMemcpyNodeSetParams(hGraphExec, hNode, &q, ctx);
}

/* ----------------------------------------------------------------------------- instantiate */
CUresult ex_cuGraphInstantiateWithParams(tfx *x, CUgraphExec *phGraphExec, CUgraph hGraph,
                                         CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    if (!x->be.f_cuGraphInstantiateWithParams) return CUDA_ERROR_NOT_SUPPORTED;
    if (!instantiateParams) return CUDA_ERROR_INVALID_VALUE;
    CUstream s = instantiateParams->hUploadStream;
    if ((uintptr_t)s > 2 && !tf_reg_has(x, (uint64_t)(uintptr_t)s, TFK_STREAM)) return CUDA_ERROR_INVALID_HANDLE;
    instantiateParams->hErrNode_out = NULL;
    CUresult rc = x->be.f_cuGraphInstantiateWithParams(phGraphExec, hGraph, instantiateParams);
    if (instantiateParams->hErrNode_out)
        tf_reg_add(x, (uint64_t)(uintptr_t)instantiateParams->hErrNode_out, TFK_GNODE, (uint64_t)(uintptr_t)hGraph, TFK_GRAPH);
    if (rc == CUDA_SUCCESS && (rc = tfx_graph_host_instantiated(*phGraphExec, hGraph)) != CUDA_SUCCESS &&
        x->be.f_cuGraphExecDestroy)
        (void)ex_cuGraphExecDestroy(x, *phGraphExec);
    return rc;
}

/* ------------------------------------------------------------------------------- .dot text */
CUresult ex_tfGraphDebugDotPrint(tfx *x, CUgraph hGraph, unsigned int flags, unsigned int *len, char *text)
{
    (void)x;
    if (!gb.dot_print) return CUDA_ERROR_NOT_SUPPORTED;
    char path[] = "/tmp/tf-graph-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
    close(fd);
    CUresult rc = gb.dot_print(hGraph, path, flags);
    FILE *f = rc == CUDA_SUCCESS ? fopen(path, "rb") : NULL;
    if (rc == CUDA_SUCCESS && !f) rc = CUDA_ERROR_OPERATING_SYSTEM;
    if (f) {
        size_t n = fread(text, 1, TF_MAX_DOT_BYTES, f);
        if (ferror(f)) rc = CUDA_ERROR_OPERATING_SYSTEM;
        else if (n == TF_MAX_DOT_BYTES && fgetc(f) != EOF) rc = CUDA_ERROR_NOT_SUPPORTED;  /* too big to carry */
        *len = (unsigned)n;
        fclose(f);
    }
    unlink(path);
    return rc;
}

/* ------------------------------------------------------------------------------- host nodes */
/* A host node of the client's: the backend runs host_trampoline, which has the client run fn(userData)
 * and waits for it: over the host-call channel (exec_host_calls.c) when the launch is not served - the stub
 * launches graphs without host-memory copies asynchronously once the channel is up (Unix sockets) - else
 * while the client waits in tfGraphLaunchServe (TCP/TLS, or a graph with host copies, whose destination
 * bytes go with the call); the trampoline may run on a driver thread while this thread waits for the
 * stream in ex_tfGraphLaunchServe. Records live as long as the session. */
typedef struct host_rec {
    uint64_t fn, data;
    struct host_rec *next;
} host_rec;
static host_rec *g_host_recs;
static pthread_mutex_t g_host_mu = PTHREAD_MUTEX_INITIALIZER;
static tfx *g_serve_x; /* the session (its client connection) while a tfGraphLaunchServe waits, else NULL */
static CUgraphExec g_serve_exec; /* the graph being served; its host destination bytes go with each call */

static void CUDA_CB host_trampoline(void *p)
{
    const host_rec *r = p;
    pthread_mutex_lock(&g_host_mu);
    tfx *x = g_serve_x;
    if (!x) {
        pthread_mutex_unlock(&g_host_mu);
        if (tfx_host_call_node(r->fn, r->data) == 0) return;  /* over the host-call channel (exec_host_calls.c) */
        pthread_mutex_lock(&g_host_mu);
        static int said;
        if (said++ < 4)
            tfx_log("a host node ran outside a launch the client waits for (graph launched from a graph or "
                    "another stream?): its function was not run");
        pthread_mutex_unlock(&g_host_mu);
        return;
    }
    /* the graph's host destinations as they are now, so the function sees what the nodes before it wrote
     * (exec_graph_host.c) */
    size_t extra = g_serve_exec ? tfx_graph_host_d2h(g_serve_exec, NULL) : 0;
    uint8_t *dbytes = extra ? malloc(extra) : NULL;
    if (extra && !dbytes) goto fail;
    if (extra) tfx_graph_host_d2h(g_serve_exec, dbytes);
    struct { tf_rep_hdr h; uint64_t fn, data; } req = {{.len = 16 + (uint32_t)extra, .result = 0, .nlatched = 0,
                                                        .nconsole = TF_REP_HOST_CALL}, r->fn, r->data};
    char ack[8];
    struct iovec v[2] = {{&req, sizeof req}, {dbytes, extra}};
    errno = 0;
    int werr = tf_conn_writev(x, v, extra ? 2 : 1);
    free(dbytes);
    if (werr || tf_conn_read_exact(x, ack, sizeof ack)) goto fail;
    if (memcmp(ack, TF_HOST_CALL_DONE, sizeof ack) != 0) goto fail;
    pthread_mutex_unlock(&g_host_mu);
    return;
fail:
    tfx_log("host node: the client did not answer the call of its host function (%s): ending the session",
            strerror(errno ? errno : EPROTO));
    g_serve_x = NULL;
    shutdown(x->fd, SHUT_RDWR);  /* the stream is out of step: the session cannot go on */
    pthread_mutex_unlock(&g_host_mu);
}

static host_rec *host_rec_new(unsigned long long fn, unsigned long long data)
{
    host_rec *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fn = fn;
    r->data = data;
    pthread_mutex_lock(&g_host_mu);
    r->next = g_host_recs;
    g_host_recs = r;
    pthread_mutex_unlock(&g_host_mu);
    return r;
}

CUresult ex_tfGraphAddHostNode(tfx *x, CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                               size_t numDependencies, unsigned long long fn, unsigned long long userData)
{
    (void)x;
    if (!gb.add_host) return CUDA_ERROR_NOT_SUPPORTED;
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    host_rec *r = host_rec_new(fn, userData);
    if (!r) return CUDA_ERROR_OUT_OF_MEMORY;
    CUDA_HOST_NODE_PARAMS p = {.fn = host_trampoline, .userData = r};
    return gb.add_host(phGraphNode, hGraph, dependencies, numDependencies, &p);
}

/* A host node's parameters: the client's function and argument its trampoline record holds. */
CUresult ex_tfGraphHostNodeGetParams(tfx *x, CUgraphNode hNode, unsigned long long *fn, unsigned long long *userData)
{
    (void)x;
    if (!gb.get_host) return CUDA_ERROR_NOT_SUPPORTED;
    CUDA_HOST_NODE_PARAMS p;
    CUresult rc = gb.get_host(hNode, &p);
    if (rc) return rc;
    if (p.fn != host_trampoline || !p.userData) return CUDA_ERROR_UNKNOWN;  /* every host node here is one */
    const host_rec *r = p.userData;
    *fn = r->fn;
    *userData = r->data;
    return CUDA_SUCCESS;
}

/* New parameters for a host node of a graph (hGraphExec NULL) or of an executable graph: a new record. */
CUresult ex_tfGraphHostNodeSetParams(tfx *x, CUgraphExec hGraphExec, CUgraphNode hNode, unsigned long long fn,
                                     unsigned long long userData)
{
    (void)x;
    if (!(hGraphExec ? (void *)gb.exec_set_host : (void *)gb.set_host)) return CUDA_ERROR_NOT_SUPPORTED;
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    host_rec *r = host_rec_new(fn, userData);
    if (!r) return CUDA_ERROR_OUT_OF_MEMORY;
    CUDA_HOST_NODE_PARAMS p = {.fn = host_trampoline, .userData = r};
    return hGraphExec ? gb.exec_set_host(hGraphExec, hNode, &p) : gb.set_host(hNode, &p);
}

/* An event record (wait = 0) or wait node's event, as a value: it is one of the client's already. */
CUresult ex_tfGraphEventNodeGetEvent(tfx *x, CUgraphNode hNode, int wait, unsigned long long *event)
{
    (void)x;
    CUresult (*get)(CUgraphNode, CUevent *) = wait ? gb.get_wait_event : gb.get_record_event;
    if (!get) return CUDA_ERROR_NOT_SUPPORTED;
    CUevent e = NULL;
    CUresult rc = get(hNode, &e);
    if (rc == CUDA_SUCCESS) *event = (unsigned long long)(uintptr_t)e;
    return rc;
}

/* cuLaunchHostFunc on a stream that may be capturing: captured as a trampoline host node if it is
 * (*captured = 1); otherwise nothing happens here and the stub runs the function itself. */
CUresult ex_tfLaunchHostFuncCaptured(tfx *x, CUstream hStream, unsigned long long fn, unsigned long long userData,
                                     int *captured)
{
    *captured = 0;
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    if (!tfx_stream_capturing(x, hStream)) return CUDA_SUCCESS;
    if (!gb.launch_host_func) return CUDA_ERROR_NOT_SUPPORTED;
    host_rec *r = host_rec_new(fn, userData);
    if (!r) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = gb.launch_host_func(hStream, host_trampoline, r);
    if (rc == CUDA_SUCCESS) *captured = 1;
    return rc;
}

/* A graph launch the client waits for: its host nodes can call back until the graph is done. */
CUresult tfx_graph_launch_served(tfx *x, CUgraphExec hGraphExec, CUstream hStream)
{
    if (!x->be.f_cuGraphLaunch || !x->be.f_cuStreamSynchronize) return CUDA_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&g_host_mu);
    g_serve_x = x;
    g_serve_exec = hGraphExec;
    pthread_mutex_unlock(&g_host_mu);
    CUresult rc = x->be.f_cuGraphLaunch(hGraphExec, hStream);
    if (rc == CUDA_SUCCESS) rc = x->be.f_cuStreamSynchronize(hStream);
    pthread_mutex_lock(&g_host_mu);
    g_serve_x = NULL;
    g_serve_exec = NULL;
    pthread_mutex_unlock(&g_host_mu);
    return rc;
}

CUresult ex_tfGraphLaunchServe(tfx *x, CUgraphExec hGraphExec, CUstream hStream)
{
    return tfx_graph_launch_served(x, hGraphExec, hStream);
}
