/* exec_graph_host.c - graph copies between the CLIENT's host memory and the device (memcpy nodes on host
 * memory, cuMemcpyHtoDAsync/DtoHAsync captured on a capturing stream): the rows tfGraphAddHostCopyNode,
 * tfMemcpyHostCaptured, tfGraphHostRanges, tfGraphLaunchHost and tfGraphFetch of proto/calls.tbl, plus the
 * bookkeeping that graph/exec destroy, clone, child-graph nodes and instantiation need (exec_graph.c and the
 * generated dispatch call in here).
 *
 * The client's memory is not in this process. Each such copy becomes a node that copies between the device
 * and a staging buffer of the worker (pinned host memory of the backend); the staging buffer stands for the
 * client's range [client, client + len). The stub sends, at each launch, the client's source bytes and the
 * current bytes of the destination ranges (so a destination a node did not write keeps the client's bytes)
 * and writes the destination ranges back at its next synchronous call that finds the launch finished
 * (tfGraphFetch) - as a pageable copy would, the bytes are those of the client's memory in stream order at
 * every point where the client can look. A capture keeps the range, never the bytes at capture time.
 *
 * Records: a staging buffer is shared by the graph that made it, its clones and every executable graph
 * instantiated from them (refs); a launch first waits for the last launch that used each of its buffers.
 * Each buffer counts against the session's VRAM cap while it lives (stage_new; limiter_c/README.md). A buffer
 * is pinned memory of the context current when it was made: it goes with that context (destroy, reset, last
 * release of a primary context: tfx_graph_host_ctx_gone), and so do its charge and bytes, while its record
 * stays with the graphs that name it; launching or fetching an executable graph that names such a buffer is
 * then CUDA_ERROR_CONTEXT_IS_DESTROYED.
 * Limits: a graph with such copies cannot become a child graph node, nor can such a copy be a node of a
 * conditional node's body (CUDA_ERROR_NOT_SUPPORTED, logged); at most TF_MAX_HOST_RANGES ranges per
 * executable graph.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

typedef struct hstage {
    uint8_t *buf;          /* NULL once its context went (tfx_graph_host_ctx_gone) */
    CUcontext ctx;         /* the context it was made in */
    uint64_t len, client;
    int to_device;
    int refs;
    CUevent busy;          /* the event of the last launch that used the buffer (owned by that exec), or NULL */
} hstage;

typedef struct href {      /* one use of a staging buffer: by a graph (node may be 0) or an executable graph */
    uint64_t owner;
    int is_exec;
    uint64_t node;
    hstage *st;
    struct href *next;
} href;

typedef struct hexec {     /* per executable graph with host ranges: the event of its last launch */
    uint64_t exec;
    CUevent done;          /* NULL once its context went */
    CUcontext ctx;         /* the context current at its instantiation, where `done` lives */
    int launched;
    struct hexec *next;
} hexec;

static href *g_refs;       /* newest first; lists are read back oldest first (payload order) */
static hexec *g_execs;

static struct {
    CUresult (*ev_create)(CUevent *, unsigned);
    CUresult (*ev_destroy)(CUevent);
    CUresult (*ev_record)(CUevent, CUstream);
    CUresult (*ev_sync)(CUevent);
    CUresult (*ev_query)(CUevent);
    CUresult (*h2d_async)(CUdeviceptr, const void *, size_t, CUstream);
    CUresult (*d2h_async)(void *, CUdeviceptr, size_t, CUstream);
    CUresult (*capture_info_v2)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, CUgraph *, const CUgraphNode **,
                                size_t *);
    CUresult (*ctx_get)(CUcontext *);
    CUresult (*memcpy_get)(CUgraphNode, CUDA_MEMCPY3D *);
    CUresult (*node_set)(CUgraphNode, CUgraphNodeParams *);
} hb;

void tfx_graph_host_load(void *lib)
{
    memset(&hb, 0, sizeof hb);
    if (!lib) return;
    *(void **)&hb.ev_create = dlsym(lib, "cuEventCreate");
    *(void **)&hb.ev_destroy = dlsym(lib, "cuEventDestroy_v2");
    *(void **)&hb.ev_record = dlsym(lib, "cuEventRecord");
    *(void **)&hb.ev_sync = dlsym(lib, "cuEventSynchronize");
    *(void **)&hb.ev_query = dlsym(lib, "cuEventQuery");
    *(void **)&hb.h2d_async = dlsym(lib, "cuMemcpyHtoDAsync_v2");
    *(void **)&hb.d2h_async = dlsym(lib, "cuMemcpyDtoHAsync_v2");
    *(void **)&hb.capture_info_v2 = dlsym(lib, "cuStreamGetCaptureInfo_v2");
    *(void **)&hb.ctx_get = dlsym(lib, "cuCtxGetCurrent");
    *(void **)&hb.memcpy_get = dlsym(lib, "cuGraphMemcpyNodeGetParams");
    *(void **)&hb.node_set = dlsym(lib, "cuGraphNodeSetParams");
}

static int loaded(void)
{
    return hb.ev_create && hb.ev_destroy && hb.ev_record && hb.ev_sync &&
           hb.ev_query && hb.h2d_async && hb.d2h_async && hb.capture_info_v2 && hb.ctx_get;
}

/* A staging buffer is host memory this process pins for the client: charged against the session's VRAM
 * cap like the client's mapped memory (tfx_stage_alloc, keyed by the record's address) before it is made,
 * over the cap CUDA_ERROR_OUT_OF_MEMORY; refunded when it is freed (stage_free), with the process
 * otherwise. */
static CUresult stage_new(uint64_t client, uint64_t len, int to_device, hstage **out)
{
    if (!loaded()) return CUDA_ERROR_NOT_SUPPORTED;
    if (len == 0 || len > TF_MAX_FRAME) return CUDA_ERROR_INVALID_VALUE;
    hstage *st = calloc(1, sizeof *st);
    if (!st) return CUDA_ERROR_OUT_OF_MEMORY;
    void *buf = NULL;
    CUresult rc = hb.ctx_get(&st->ctx);
    if (rc == CUDA_SUCCESS) rc = tfx_stage_alloc((uint64_t)(uintptr_t)st, (size_t)len, &buf);
    if (rc) {
        free(st);
        return rc;
    }
    st->buf = buf;
    st->len = len;
    st->client = client;
    st->to_device = to_device;
    *out = st;
    return CUDA_SUCCESS;
}

static void stage_free(hstage *st)
{
    tfx_stage_free((uint64_t)(uintptr_t)st, st->buf);
    free(st);
}

void tfx_graph_host_ctx_gone(CUcontext ctx)
{
    for (hexec *he = g_execs; he; he = he->next)
        if (he->done && he->ctx == ctx) {
            for (href *r = g_refs; r; r = r->next)
                if (r->st->busy == he->done) r->st->busy = NULL;
            he->done = NULL;   /* destroyed by the backend with its context */
            he->launched = 0;
        }
    for (href *r = g_refs; r; r = r->next) {
        hstage *st = r->st;
        if (!st->buf || st->ctx != ctx) continue;
        st->buf = NULL;    /* freed by the backend with its context */
        st->busy = NULL;   /* so was the event of its last launch */
        tfx_hostmap_refund((uint64_t)(uintptr_t)st);
    }
}

/* 1 if one of the k buffers went with its context. */
static int any_gone(href *const *list, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (!list[i]->st->buf) return 1;
    return 0;
}

static CUresult ref_add(uint64_t owner, int is_exec, uint64_t node, hstage *st)
{
    href *r = calloc(1, sizeof *r);
    if (!r) return CUDA_ERROR_OUT_OF_MEMORY;
    *r = (href){owner, is_exec, node, st, g_refs};
    st->refs++;
    g_refs = r;
    return CUDA_SUCCESS;
}

static int has_refs(uint64_t owner, int is_exec)
{
    for (href *r = g_refs; r; r = r->next)
        if (r->owner == owner && r->is_exec == is_exec) return 1;
    return 0;
}

/* Drops every use by `owner`; a buffer nobody uses any more is freed. */
static void refs_drop(uint64_t owner, int is_exec)
{
    for (href **pp = &g_refs; *pp;) {
        href *r = *pp;
        if (r->owner != owner || r->is_exec != is_exec) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (--r->st->refs == 0) stage_free(r->st);
        free(r);
    }
}

/* The uses of `owner`, oldest first (the order of the launch payload). */
static size_t refs_of(uint64_t owner, int is_exec, href **out, size_t cap)
{
    size_t n = 0;
    for (href *r = g_refs; r; r = r->next)
        if (r->owner == owner && r->is_exec == is_exec) {
            if (n < cap) out[n] = r;
            n++;
        }
    for (size_t i = 0; i < n / 2 && n <= cap; i++) {
        href *t = out[i];
        out[i] = out[n - 1 - i];
        out[n - 1 - i] = t;
    }
    return n;
}

static hexec *hexec_get(uint64_t exec)
{
    for (hexec *e = g_execs; e; e = e->next)
        if (e->exec == exec) return e;
    return NULL;
}

/* ---------------------------------------------------------------------------- explicit nodes */
static CUresult body_refused(const char *call)
{
    tfx_log("%s: a copy of client host memory cannot be a node of a conditional node's body graph here "
            "(CUDA_ERROR_NOT_SUPPORTED: a launch carries the host ranges of its top graph only)", call);
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* A copy between one host range (normalised by the stub: offsets 0, hostLen bytes) and device memory of the
 * session; *src_host: which side is the client's. */
static CUresult host_copy_check(tfx *x, const CUDA_MEMCPY3D *copyParams, unsigned long long hostAddr, size_t hostLen,
                                int *src_host_out)
{
    const CUDA_MEMCPY3D *c = copyParams;
    if (!c || !hostAddr || c->WidthInBytes == 0 || c->Height == 0) return CUDA_ERROR_INVALID_VALUE;
    int src_host = c->srcMemoryType == CU_MEMORYTYPE_HOST, dst_host = c->dstMemoryType == CU_MEMORYTYPE_HOST;
    if (src_host == dst_host) return CUDA_ERROR_INVALID_VALUE;  /* exactly one side is the client's */
    /* the host side arrives normalised by the stub: offsets 0, hostLen bytes from hostAddr */
    uint64_t pitch = src_host ? (c->srcPitch ? c->srcPitch : c->WidthInBytes)
                              : (c->dstPitch ? c->dstPitch : c->WidthInBytes);
    uint64_t height = src_host ? (c->srcHeight ? c->srcHeight : c->Height) : (c->dstHeight ? c->dstHeight : c->Height);
    uint64_t depth = c->Depth ? c->Depth : 1, rows, need;
    if (__builtin_mul_overflow(depth - 1, height, &rows) || __builtin_add_overflow(rows, (uint64_t)c->Height, &rows) ||
        __builtin_mul_overflow(rows - 1, pitch, &need) || __builtin_add_overflow(need, (uint64_t)c->WidthInBytes, &need))
        return CUDA_ERROR_INVALID_VALUE;
    if ((src_host ? c->srcXInBytes || c->srcY || c->srcZ : c->dstXInBytes || c->dstY || c->dstZ) || need != hostLen)
        return CUDA_ERROR_INVALID_VALUE;
    /* the other side: an array of the session (the backend checks its offsets), or within one of its allocations */
    CUmemorytype other = src_host ? c->dstMemoryType : c->srcMemoryType;
    if (other == CU_MEMORYTYPE_ARRAY) {
        if (!tf_reg_has(x, (uint64_t)(uintptr_t)(src_host ? c->dstArray : c->srcArray), TFK_ARRAY))
            return CUDA_ERROR_INVALID_HANDLE;
        *src_host_out = src_host;
        return CUDA_SUCCESS;
    }
    CUdeviceptr dev = src_host ? c->dstDevice : c->srcDevice;
    uint64_t dpitch = src_host ? (c->dstPitch ? c->dstPitch : c->WidthInBytes) : (c->srcPitch ? c->srcPitch : c->WidthInBytes);
    uint64_t dheight = src_host ? (c->dstHeight ? c->dstHeight : c->Height) : (c->srcHeight ? c->srcHeight : c->Height);
    uint64_t dx = src_host ? c->dstXInBytes : c->srcXInBytes, dy = src_host ? c->dstY : c->srcY;
    uint64_t dz = src_host ? c->dstZ : c->srcZ, start, dbytes, drows;
    if (__builtin_mul_overflow(dz, dheight, &start) || __builtin_add_overflow(start, dy, &start) ||
        __builtin_mul_overflow(start, dpitch, &start) || __builtin_add_overflow(start, dx, &start) ||
        __builtin_add_overflow(start, (uint64_t)dev, &start) || __builtin_mul_overflow(depth - 1, dheight, &drows) ||
        __builtin_add_overflow(drows, (uint64_t)c->Height - 1, &drows) || __builtin_mul_overflow(drows, dpitch, &dbytes) ||
        __builtin_add_overflow(dbytes, (uint64_t)c->WidthInBytes, &dbytes))
        return CUDA_ERROR_INVALID_VALUE;
    if ((src_host ? c->dstMemoryType : c->srcMemoryType) != CU_MEMORYTYPE_DEVICE || !tf_dev_ok(x, start, dbytes))
        return CUDA_ERROR_INVALID_VALUE;
    *src_host_out = src_host;
    return CUDA_SUCCESS;
}

/* The copy the worker's node makes: the client's side is staging buffer st, the fields that mean nothing here
 * (the other side's host pointer, array handles of a side that is no array, reserved) cleared. */
static CUDA_MEMCPY3D staged_copy(const CUDA_MEMCPY3D *c, int src_host, const hstage *st)
{
    CUDA_MEMCPY3D q = *c;
    q.reserved0 = NULL, q.reserved1 = NULL;
    if (q.srcMemoryType != CU_MEMORYTYPE_ARRAY) q.srcArray = NULL;
    if (q.dstMemoryType != CU_MEMORYTYPE_ARRAY) q.dstArray = NULL;
    q.srcHost = src_host ? st->buf : NULL;
    q.dstHost = src_host ? NULL : st->buf;
    return q;
}

CUresult ex_tfGraphAddHostCopyNode(tfx *x, CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                   size_t numDependencies, const CUDA_MEMCPY3D *copyParams, CUcontext ctx,
                                   unsigned long long hostAddr, size_t hostLen)
{
    if (!x->be.f_cuGraphAddMemcpyNode) return CUDA_ERROR_NOT_SUPPORTED;
    if (ctx && !tf_reg_has(x, (uint64_t)(uintptr_t)ctx, TFK_CTX)) return CUDA_ERROR_INVALID_CONTEXT;
    if (tfx_graph_is_body(hGraph)) return body_refused("cuGraphAddMemcpyNode");
    int src_host;
    CUresult crc = host_copy_check(x, copyParams, hostAddr, hostLen, &src_host);
    if (crc) return crc;
    hstage *st;
    CUresult rc = stage_new(hostAddr, hostLen, src_host, &st);
    if (rc) return rc;
    CUDA_MEMCPY3D q = staged_copy(copyParams, src_host, st);
    rc = x->be.f_cuGraphAddMemcpyNode(phGraphNode, hGraph, dependencies, numDependencies, &q, ctx);
    if (rc == CUDA_SUCCESS) rc = ref_add((uint64_t)(uintptr_t)hGraph, 0, (uint64_t)(uintptr_t)*phGraphNode, st);
    if (st->refs == 0) stage_free(st);
    return rc;
}

/* The graph's use of a staging buffer by graph node `node`, or NULL. */
static href **node_ref(uint64_t node)
{
    for (href **pp = &g_refs; *pp; pp = &(*pp)->next)
        if (!(*pp)->is_exec && node && (*pp)->node == node) return pp;
    return NULL;
}

/* The node no longer copies client host memory (its parameters changed): its graph's use of the buffer ends. */
void tfx_graph_host_node_unstaged(CUgraphNode hNode)
{
    href **pp = node_ref((uint64_t)(uintptr_t)hNode);
    if (!pp) return;
    href *r = *pp;
    *pp = r->next;
    if (--r->st->refs == 0) stage_free(r->st);
    free(r);
}

/* cuGraphMemcpyNodeGetParams: the node's parameters with the side on client host memory given back as the
 * client's address (*hostAddr; 0 if no side is), never this process's staging buffer. */
CUresult ex_tfGraphMemcpyNodeGetParams(tfx *x, CUgraphNode hNode, CUDA_MEMCPY3D *params, unsigned long long *hostAddr)
{
    (void)x;
    if (!hb.memcpy_get) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = hb.memcpy_get(hNode, params);
    if (rc) return rc;
    href **pp = node_ref((uint64_t)(uintptr_t)hNode);
    *hostAddr = pp ? (*pp)->st->client : 0;
    params->srcHost = NULL, params->dstHost = NULL, params->reserved0 = NULL, params->reserved1 = NULL;
    return CUDA_SUCCESS;
}

/* cuGraphMemcpyNodeSetParams with a side on client host memory: the graph's node copies a new staging buffer
 * for the new range (the old one stays with the executable graphs and clones that use it). */
CUresult ex_tfGraphHostCopyNodeSetParams(tfx *x, CUgraphNode hNode, const CUDA_MEMCPY3D *copyParams,
                                         unsigned long long hostAddr, size_t hostLen)
{
    if (!x->be.f_cuGraphMemcpyNodeSetParams) return CUDA_ERROR_NOT_SUPPORTED;
    tf_reg_entry *e = tf_reg_get(x, (uint64_t)(uintptr_t)hNode, TFK_GNODE);
    if (!e || e->parent_kind != TFK_GRAPH) return CUDA_ERROR_INVALID_VALUE;
    if (tfx_graph_is_body((CUgraph)(uintptr_t)e->parent)) return body_refused("cuGraphMemcpyNodeSetParams");
    int src_host;
    CUresult rc = host_copy_check(x, copyParams, hostAddr, hostLen, &src_host);
    if (rc) return rc;
    hstage *st;
    rc = stage_new(hostAddr, hostLen, src_host, &st);
    if (rc) return rc;
    CUDA_MEMCPY3D q = staged_copy(copyParams, src_host, st);
    rc = x->be.f_cuGraphMemcpyNodeSetParams(hNode, &q);
    if (rc == CUDA_SUCCESS) {
        tfx_graph_host_node_unstaged(hNode);
        rc = ref_add(e->parent, 0, (uint64_t)(uintptr_t)hNode, st);
    }
    if (st->refs == 0) stage_free(st);
    return rc;
}

/* ----------------------------------------------------------------------------- captured copies */
CUresult ex_tfMemcpyHostCaptured(tfx *x, CUstream hStream, CUdeviceptr dev, unsigned long long hostAddr, size_t n,
                                 int toDevice, int *captured)
{
    *captured = 0;
    if ((uintptr_t)hStream > 2 && !tf_reg_has(x, (uint64_t)(uintptr_t)hStream, TFK_STREAM))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!tfx_stream_capturing(x, hStream)) return CUDA_SUCCESS;  /* the stub copies as usual */
    if (!hostAddr || !n || !tf_dev_ok(x, dev, n)) return CUDA_ERROR_INVALID_VALUE;
    if (!loaded()) return CUDA_ERROR_NOT_SUPPORTED;
    CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
    cuuint64_t id = 0;
    CUgraph g = NULL;
    const CUgraphNode *deps = NULL;
    size_t nd = 0;
    CUresult rc = hb.capture_info_v2(hStream, &cs, &id, &g, &deps, &nd);
    if (rc) return rc;
    if (cs != CU_STREAM_CAPTURE_STATUS_ACTIVE || !g) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    if (tfx_graph_is_body(g)) return body_refused("cuMemcpy*Async captured");
    hstage *st;
    rc = stage_new(hostAddr, n, toDevice != 0, &st);
    if (rc) return rc;
    rc = toDevice ? hb.h2d_async(dev, st->buf, n, hStream) : hb.d2h_async(st->buf, dev, n, hStream);
    uint64_t node = 0;
    if (rc == CUDA_SUCCESS && hb.capture_info_v2(hStream, &cs, &id, &g, &deps, &nd) == CUDA_SUCCESS && nd == 1)
        node = (uint64_t)(uintptr_t)deps[0];  /* the copy's node is now the stream's only dependency */
    if (rc == CUDA_SUCCESS) rc = ref_add((uint64_t)(uintptr_t)g, 0, node, st);
    if (st->refs == 0) stage_free(st);
    if (rc == CUDA_SUCCESS) *captured = 1;
    return rc;
}

/* ------------------------------------------------------------------ graph and exec bookkeeping */
CUresult ex_cuGraphDestroy(tfx *x, CUgraph hGraph)
{
    if (!x->be.f_cuGraphDestroy) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuGraphDestroy(hGraph);
    if (rc == CUDA_SUCCESS) refs_drop((uint64_t)(uintptr_t)hGraph, 0);
    return rc;
}

CUresult ex_cuGraphClone(tfx *x, CUgraph *phGraphClone, CUgraph originalGraph)
{
    if (!x->be.f_cuGraphClone) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuGraphClone(phGraphClone, originalGraph);
    if (rc) return rc;
    href *list[TF_MAX_HOST_RANGES];
    size_t n = refs_of((uint64_t)(uintptr_t)originalGraph, 0, list, TF_MAX_HOST_RANGES);
    for (size_t i = 0; i < n && i < TF_MAX_HOST_RANGES && rc == CUDA_SUCCESS; i++)
        rc = ref_add((uint64_t)(uintptr_t)*phGraphClone, 0, 0, list[i]->st);  /* same buffers: same node params */
    return rc;
}

/* A graph that copies client host memory cannot be a child graph: a launch carries its top graph's ranges. */
static CUresult child_refused(const char *call, CUgraph childGraph)
{
    if (!has_refs((uint64_t)(uintptr_t)childGraph, 0)) return CUDA_SUCCESS;
    tfx_log("%s: the child graph copies client host memory; such a graph cannot be a child graph node here "
            "(CUDA_ERROR_NOT_SUPPORTED: add its nodes to the parent instead)", call);
    return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult ex_cuGraphAddChildGraphNode(tfx *x, CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                     size_t numDependencies, CUgraph childGraph)
{
    if (!x->be.f_cuGraphAddChildGraphNode) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = child_refused("cuGraphAddChildGraphNode", childGraph);
    return rc ? rc : x->be.f_cuGraphAddChildGraphNode(phGraphNode, hGraph, dependencies, numDependencies, childGraph);
}

CUresult ex_cuGraphExecChildGraphNodeSetParams(tfx *x, CUgraphExec hGraphExec, CUgraphNode hNode, CUgraph childGraph)
{
    if (!x->be.f_cuGraphExecChildGraphNodeSetParams) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = child_refused("cuGraphExecChildGraphNodeSetParams", childGraph);
    return rc ? rc : x->be.f_cuGraphExecChildGraphNodeSetParams(hGraphExec, hNode, childGraph);
}

/* The node's new child graph is a copy of childGraph; the graph it owned (and its nodes) die. */
CUresult ex_tfGraphChildGraphNodeSetGraph(tfx *x, CUgraphNode hNode, CUgraph childGraph)
{
    if (!hb.node_set || !x->be.f_cuGraphChildGraphNodeGetGraph) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = child_refused("cuGraphNodeSetParams", childGraph);
    if (rc) return rc;
    CUgraph old = NULL;
    if (x->be.f_cuGraphChildGraphNodeGetGraph(hNode, &old) != CUDA_SUCCESS) old = NULL;
    CUgraphNodeParams p;
    memset(&p, 0, sizeof p);
    p.type = CU_GRAPH_NODE_TYPE_GRAPH;
    p.graph.graph = childGraph;
    rc = hb.node_set(hNode, &p);
    if (rc == CUDA_SUCCESS && old) tf_reg_del(x, (uint64_t)(uintptr_t)old, TFK_GRAPH);
    return rc;
}

static void exec_forget(uint64_t e);

/* After a successful instantiation: the executable graph uses the graph's staging buffers. */
CUresult tfx_graph_host_instantiated(CUgraphExec e, CUgraph g)
{
    href *list[TF_MAX_HOST_RANGES + 1];
    size_t n = refs_of((uint64_t)(uintptr_t)g, 0, list, TF_MAX_HOST_RANGES + 1);
    if (n == 0) return CUDA_SUCCESS;
    if (n > TF_MAX_HOST_RANGES) {
        tfx_log("cuGraphInstantiate: the graph copies %zu client host ranges, more than the %u supported", n,
                (unsigned)TF_MAX_HOST_RANGES);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    hexec *he = calloc(1, sizeof *he);
    if (!he) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = hb.ctx_get(&he->ctx);
    if (rc == CUDA_SUCCESS) rc = hb.ev_create(&he->done, CU_EVENT_DISABLE_TIMING);
    if (rc) {
        free(he);
        return rc;
    }
    he->exec = (uint64_t)(uintptr_t)e;
    he->next = g_execs;
    g_execs = he;
    for (size_t i = 0; i < n && rc == CUDA_SUCCESS; i++) rc = ref_add(he->exec, 1, list[i]->node, list[i]->st);
    return rc;
}

/* cuGraphExecUpdate: the executable graph's nodes now carry hGraph's parameters, staging buffers included,
 * so it uses hGraph's buffers from now on (after its last launch is done with the old ones). An update the
 * driver refused (CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE) is answered CUDA_SUCCESS so that resultInfo, which
 * says why, comes back (a reply carries outputs on success only); the stub turns it back into the failure. */
CUresult ex_cuGraphExecUpdate_v2(tfx *x, CUgraphExec hGraphExec, CUgraph hGraph, CUgraphExecUpdateResultInfo *resultInfo)
{
    if (!x->be.f_cuGraphExecUpdate_v2) return CUDA_ERROR_NOT_SUPPORTED;
    uint64_t e = (uint64_t)(uintptr_t)hGraphExec;
    href *list[TF_MAX_HOST_RANGES + 1];
    if (refs_of((uint64_t)(uintptr_t)hGraph, 0, list, TF_MAX_HOST_RANGES + 1) > TF_MAX_HOST_RANGES)
        return CUDA_ERROR_NOT_SUPPORTED;
    hexec *he = hexec_get(e);
    if (he && he->launched) {
        CUresult rc = hb.ev_sync(he->done);
        if (rc) return rc;
    }
    CUresult rc = x->be.f_cuGraphExecUpdate_v2(hGraphExec, hGraph, resultInfo);
    if (rc == CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE && resultInfo->result != CU_GRAPH_EXEC_UPDATE_SUCCESS)
        return CUDA_SUCCESS;
    if (rc) return rc;
    exec_forget(e);
    return tfx_graph_host_instantiated(hGraphExec, hGraph);
}

static void exec_forget(uint64_t e)
{
    for (hexec **pp = &g_execs; *pp; pp = &(*pp)->next) {
        hexec *he = *pp;
        if (he->exec != e) continue;
        if (he->launched) (void)hb.ev_sync(he->done);
        href *list[TF_MAX_HOST_RANGES];
        size_t n = refs_of(e, 1, list, TF_MAX_HOST_RANGES);
        for (size_t i = 0; i < n && i < TF_MAX_HOST_RANGES; i++)
            if (he->done && list[i]->st->busy == he->done) list[i]->st->busy = NULL;
        if (he->done) (void)hb.ev_destroy(he->done);
        *pp = he->next;
        free(he);
        break;
    }
    refs_drop(e, 1);
}

CUresult ex_cuGraphInstantiateWithFlags(tfx *x, CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    if (!x->be.f_cuGraphInstantiateWithFlags) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuGraphInstantiateWithFlags(phGraphExec, hGraph, flags);
    if (rc) return rc;
    CUresult hr = tfx_graph_host_instantiated(*phGraphExec, hGraph);
    if (hr) {
        exec_forget((uint64_t)(uintptr_t)*phGraphExec);
        if (x->be.f_cuGraphExecDestroy) (void)x->be.f_cuGraphExecDestroy(*phGraphExec);
    }
    return hr;
}

CUresult ex_cuGraphExecDestroy(tfx *x, CUgraphExec hGraphExec)
{
    if (!x->be.f_cuGraphExecDestroy) return CUDA_ERROR_NOT_SUPPORTED;
    exec_forget((uint64_t)(uintptr_t)hGraphExec);  /* waits for its last launch: the buffers may be reused */
    return x->be.f_cuGraphExecDestroy(hGraphExec);
}

/* ------------------------------------------------------------------------------ launch and fetch */
CUresult ex_tfGraphHostRanges(tfx *x, CUgraphExec hGraphExec, unsigned int *n, unsigned long long *ranges)
{
    if (!tf_reg_has(x, (uint64_t)(uintptr_t)hGraphExec, TFK_GEXEC)) return CUDA_ERROR_INVALID_HANDLE;
    href *list[TF_MAX_HOST_RANGES];
    size_t k = refs_of((uint64_t)(uintptr_t)hGraphExec, 1, list, TF_MAX_HOST_RANGES);
    if (k > TF_MAX_HOST_RANGES) return CUDA_ERROR_NOT_SUPPORTED;
    for (size_t i = 0; i < k; i++) {
        unsigned long long v[3] = {list[i]->st->client, list[i]->st->len, (unsigned long long)list[i]->st->to_device};
        memcpy((char *)ranges + i * sizeof v, v, sizeof v);
    }
    *n = (unsigned)k;
    return CUDA_SUCCESS;
}

/* Bytes of the executable graph's destination (device-to-host) ranges, in payload order. */
size_t tfx_graph_host_d2h(CUgraphExec e, uint8_t *out)
{
    href *list[TF_MAX_HOST_RANGES];
    size_t k = refs_of((uint64_t)(uintptr_t)e, 1, list, TF_MAX_HOST_RANGES), total = 0;
    for (size_t i = 0; i < k && i < TF_MAX_HOST_RANGES; i++) {
        if (list[i]->st->to_device) continue;
        if (out && list[i]->st->buf) memcpy(out + total, list[i]->st->buf, list[i]->st->len);
        total += list[i]->st->len;
    }
    return total;
}

CUresult ex_tfGraphLaunchHost(tfx *x, CUgraphExec hGraphExec, CUstream hStream, int serve, size_t len,
                              const void *bytes)
{
    if (!tf_reg_has(x, (uint64_t)(uintptr_t)hGraphExec, TFK_GEXEC)) return CUDA_ERROR_INVALID_HANDLE;
    if ((uintptr_t)hStream > 2 && !tf_reg_has(x, (uint64_t)(uintptr_t)hStream, TFK_STREAM))
        return CUDA_ERROR_INVALID_HANDLE;
    hexec *he = hexec_get((uint64_t)(uintptr_t)hGraphExec);
    if (!he || !x->be.f_cuGraphLaunch) return he ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
    href *list[TF_MAX_HOST_RANGES];
    size_t k = refs_of(he->exec, 1, list, TF_MAX_HOST_RANGES), total = 0;
    for (size_t i = 0; i < k && i < TF_MAX_HOST_RANGES; i++) total += list[i]->st->len;
    if (k > TF_MAX_HOST_RANGES || total != len || (len && !bytes)) return CUDA_ERROR_INVALID_VALUE;
    if (any_gone(list, k) || !he->done) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    /* a buffer still read or written by an earlier launch is not touched until that launch is done */
    for (size_t i = 0; i < k; i++) {
        CUevent b = list[i]->st->busy;
        if (b) {
            CUresult rc = hb.ev_sync(b);
            if (rc) return rc;
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < k; i++) {
        memcpy(list[i]->st->buf, (const uint8_t *)bytes + off, list[i]->st->len);
        off += list[i]->st->len;
    }
    CUresult rc = serve ? tfx_graph_launch_served(x, hGraphExec, hStream) : x->be.f_cuGraphLaunch(hGraphExec, hStream);
    if (rc) return rc;
    rc = hb.ev_record(he->done, hStream);
    if (rc) return rc;
    he->launched = 1;
    for (size_t i = 0; i < k; i++) list[i]->st->busy = he->done;
    return CUDA_SUCCESS;
}

CUresult ex_tfGraphFetch(tfx *x, CUgraphExec hGraphExec, int wait, size_t cap, int *done, void *bytes)
{
    if (!tf_reg_has(x, (uint64_t)(uintptr_t)hGraphExec, TFK_GEXEC)) return CUDA_ERROR_INVALID_HANDLE;
    hexec *he = hexec_get((uint64_t)(uintptr_t)hGraphExec);
    if (!he) return CUDA_ERROR_INVALID_VALUE;
    *done = 0;
    if (tfx_graph_host_d2h(hGraphExec, NULL) != cap) return CUDA_ERROR_INVALID_VALUE;
    href *list[TF_MAX_HOST_RANGES];
    size_t k = refs_of(he->exec, 1, list, TF_MAX_HOST_RANGES);
    if (any_gone(list, k < TF_MAX_HOST_RANGES ? k : TF_MAX_HOST_RANGES)) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    if (he->launched) {
        CUresult rc = wait ? hb.ev_sync(he->done) : hb.ev_query(he->done);
        if (rc == CUDA_ERROR_NOT_READY) return CUDA_SUCCESS;
        if (rc) return rc;
    }
    tfx_graph_host_d2h(hGraphExec, bytes);
    *done = 1;
    return CUDA_SUCCESS;
}

/* cuGraphExecMemcpyNodeSetParams on a node that copies client host memory: this executable graph alone gets a
 * new staging buffer for the new range (the old one may be shared with its graph and other executable
 * graphs), after its last launch. */
CUresult ex_tfGraphExecHostCopySetParams(tfx *x, CUgraphExec hGraphExec, CUgraphNode hNode,
                                         const CUDA_MEMCPY3D *copyParams, CUcontext ctx, unsigned long long hostAddr,
                                         size_t hostLen)
{
    if (!x->be.f_cuGraphExecMemcpyNodeSetParams) return CUDA_ERROR_NOT_SUPPORTED;
    if (!tf_reg_has(x, (uint64_t)(uintptr_t)hGraphExec, TFK_GEXEC)) return CUDA_ERROR_INVALID_HANDLE;
    if (ctx && !tf_reg_has(x, (uint64_t)(uintptr_t)ctx, TFK_CTX)) return CUDA_ERROR_INVALID_CONTEXT;
    href *r = NULL;
    for (href *p = g_refs; p && !r; p = p->next)
        if (p->owner == (uint64_t)(uintptr_t)hGraphExec && p->is_exec && p->node && p->node == (uint64_t)(uintptr_t)hNode)
            r = p;
    if (!r) return CUDA_ERROR_INVALID_VALUE;  /* not a node of this executable graph that copies host memory */
    int src_host;
    CUresult rc = host_copy_check(x, copyParams, hostAddr, hostLen, &src_host);
    if (rc) return rc;
    if (src_host != r->st->to_device) return CUDA_ERROR_INVALID_VALUE;  /* the direction cannot change */
    hexec *he = hexec_get((uint64_t)(uintptr_t)hGraphExec);
    if (he && he->launched && (rc = hb.ev_sync(he->done)) != CUDA_SUCCESS) return rc;
    hstage *st;
    rc = stage_new(hostAddr, hostLen, src_host, &st);
    if (rc) return rc;
    CUDA_MEMCPY3D q = staged_copy(copyParams, src_host, st);
    rc = x->be.f_cuGraphExecMemcpyNodeSetParams(hGraphExec, hNode, &q, ctx);
    if (rc) {
        stage_free(st);
        return rc;
    }
    hstage *old = r->st;
    st->refs = 1;
    r->st = st;
    if (--old->refs == 0) stage_free(old);
    return CUDA_SUCCESS;
}
