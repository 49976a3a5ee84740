/* emu_graph.c - CUDA graphs on the emulated device: graphs built explicitly (kernel, memcpy, memset,
 * host, empty, event record/wait nodes) or by stream capture (work issued to a capturing stream
 * becomes nodes; streams join a capture by waiting on an event recorded in it), instantiation (a deep
 * copy) and launch. A node can only depend on nodes added before it, so insertion order is a valid
 * topological order: cuGraphLaunch replays the nodes in that order, synchronously, each through the
 * ordinary driver entry point on the NULL stream (so replays get the same checks as direct calls).
 */
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"

enum { N_KERNEL = 1, N_COPY, N_COPY3D, N_MEMSET, N_HOST, N_EMPTY, N_EVENT_RECORD, N_EVENT_WAIT };

typedef struct gnode {
    int type;
    struct emu_graph *graph;
    union {
        struct {
            emu_func *f;
            unsigned grid[3], block[3];
            size_t shmem, len;
            uint8_t *params;
            int cooperative;
        } k;
        struct {
            int kind;
            CUdeviceptr dst, src;
            size_t n;
        } c;
        CUDA_MEMCPY3D c3;
        struct {
            CUdeviceptr dst;
            size_t pitch, width, height;
            unsigned value, elem;
        } m;
        CUDA_HOST_NODE_PARAMS h;
        CUevent ev;
    } u;
} gnode;

typedef struct emu_graph {
    gnode **nodes;
    size_t n, cap;
    int capturing;
    unsigned long long capture_id;
    CUstreamCaptureMode mode;
} emu_graph;

typedef struct gexec {
    gnode *nodes; /* deep copies */
    size_t n;
} gexec;

static void node_free_payload(gnode *nd)
{
    if (nd->type == N_KERNEL)
        free(nd->u.k.params);
}

static CUresult graph_add(emu_graph *g, gnode *tmpl, CUgraphNode *out)
{
    gnode *nd = malloc(sizeof(*nd));
    if (!nd)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *nd = *tmpl;
    nd->graph = g;
    emu_lock();
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 16;
        gnode **nn = realloc(g->nodes, ncap * sizeof(*nn));
        if (!nn) {
            emu_unlock();
            free(nd);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        g->nodes = nn;
        g->cap = ncap;
    }
    g->nodes[g->n++] = nd;
    emu_unlock();
    if (emu_handle_add(nd, EMU_K_GNODE)) {
        emu_lock();
        g->n--;
        emu_unlock();
        free(nd);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (out)
        *out = (CUgraphNode)nd;
    return CUDA_SUCCESS;
}

static void graph_free(emu_graph *g)
{
    for (size_t i = 0; i < g->n; i++) {
        emu_handle_del(g->nodes[i]);
        node_free_payload(g->nodes[i]);
        free(g->nodes[i]);
    }
    free(g->nodes);
    free(g);
}

/* Dependencies only need to be nodes of this graph: insertion order already respects them. */
static CUresult add_prologue(CUgraph hGraph, const CUgraphNode *deps, size_t ndeps, CUgraphNode *out)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!out || (ndeps && !deps))
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    for (size_t i = 0; i < ndeps; i++)
        if (!emu_handle_is(deps[i], EMU_K_GNODE) || ((gnode *)deps[i])->graph != (emu_graph *)hGraph)
            return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!phGraph || flags)
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph *g = calloc(1, sizeof(*g));
    if (!g || emu_handle_add(g, EMU_K_GRAPH)) {
        free(g);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *phGraph = (CUgraph)g;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphDestroy(CUgraph hGraph)
{
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_graph *g = (emu_graph *)hGraph;
    if (g->capturing)
        return CUDA_ERROR_ILLEGAL_STATE;
    emu_handle_del(g);
    graph_free(g);
    return CUDA_SUCCESS;
}

static CUresult kernel_node(gnode *nd, const CUDA_KERNEL_NODE_PARAMS *p)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    emu_func *f = emu_func_from_handle(p->func ? (const void *)p->func : (const void *)p->kern);
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    memset(nd, 0, sizeof(*nd));
    nd->type = N_KERNEL;
    nd->u.k.f = f;
    nd->u.k.grid[0] = p->gridDimX, nd->u.k.grid[1] = p->gridDimY, nd->u.k.grid[2] = p->gridDimZ;
    nd->u.k.block[0] = p->blockDimX, nd->u.k.block[1] = p->blockDimY, nd->u.k.block[2] = p->blockDimZ;
    nd->u.k.shmem = p->sharedMemBytes;
    return emu_kernel_pack(f, p->kernelParams, p->extra, &nd->u.k.params, &nd->u.k.len);
}

EMU_API CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                         size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    gnode nd;
    rc = kernel_node(&nd, nodeParams);
    if (rc)
        return rc;
    rc = graph_add((emu_graph *)hGraph, &nd, phGraphNode);
    if (rc)
        free(nd.u.k.params);
    return rc;
}

EMU_API CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hNode, EMU_K_GNODE) || ((gnode *)hNode)->type != N_KERNEL)
        return CUDA_ERROR_INVALID_VALUE;
    const gnode *nd = (const gnode *)hNode;
    memset(nodeParams, 0, sizeof(*nodeParams));
    nodeParams->func = (CUfunction)nd->u.k.f;
    nodeParams->gridDimX = nd->u.k.grid[0], nodeParams->gridDimY = nd->u.k.grid[1];
    nodeParams->gridDimZ = nd->u.k.grid[2];
    nodeParams->blockDimX = nd->u.k.block[0], nodeParams->blockDimY = nd->u.k.block[1];
    nodeParams->blockDimZ = nd->u.k.block[2];
    nodeParams->sharedMemBytes = (unsigned)nd->u.k.shmem;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                      size_t numDependencies, const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    (void)ctx;
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    if (!copyParams)
        return CUDA_ERROR_INVALID_VALUE;
    gnode nd = {.type = N_COPY3D};
    nd.u.c3 = *copyParams;
    return graph_add((emu_graph *)hGraph, &nd, phGraphNode);
}

EMU_API CUresult cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                      size_t numDependencies, const CUDA_MEMSET_NODE_PARAMS *p, CUcontext ctx)
{
    (void)ctx;
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    if (!p || (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4))
        return CUDA_ERROR_INVALID_VALUE;
    gnode nd = {.type = N_MEMSET};
    nd.u.m.dst = p->dst, nd.u.m.pitch = p->pitch ? p->pitch : p->width * p->elementSize;
    nd.u.m.value = p->value, nd.u.m.elem = p->elementSize, nd.u.m.width = p->width, nd.u.m.height = p->height;
    return graph_add((emu_graph *)hGraph, &nd, phGraphNode);
}

EMU_API CUresult cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                    size_t numDependencies, const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    if (!nodeParams || !nodeParams->fn)
        return CUDA_ERROR_INVALID_VALUE;
    gnode nd = {.type = N_HOST};
    nd.u.h = *nodeParams;
    return graph_add((emu_graph *)hGraph, &nd, phGraphNode);
}

EMU_API CUresult cuGraphAddEmptyNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                     size_t numDependencies)
{
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    gnode nd = {.type = N_EMPTY};
    return graph_add((emu_graph *)hGraph, &nd, phGraphNode);
}

static CUresult event_node(CUgraphNode *out, CUgraph g, const CUgraphNode *deps, size_t n, CUevent e, int type)
{
    CUresult rc = add_prologue(g, deps, n, out);
    if (rc)
        return rc;
    if (!emu_handle_is(e, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    gnode nd = {.type = type};
    nd.u.ev = e;
    return graph_add((emu_graph *)g, &nd, out);
}

EMU_API CUresult cuGraphAddEventRecordNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                           size_t numDependencies, CUevent event)
{
    return event_node(phGraphNode, hGraph, dependencies, numDependencies, event, N_EVENT_RECORD);
}

EMU_API CUresult cuGraphAddEventWaitNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                         size_t numDependencies, CUevent event)
{
    return event_node(phGraphNode, hGraph, dependencies, numDependencies, event, N_EVENT_WAIT);
}

EMU_API CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    if (!numNodes)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_graph *g = (emu_graph *)hGraph;
    if (nodes)
        for (size_t i = 0; i < *numNodes && i < g->n; i++)
            nodes[i] = (CUgraphNode)g->nodes[i];
    if (!nodes || *numNodes > g->n)
        *numNodes = g->n;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type)
{
    if (!type)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_HANDLE;
    switch (((gnode *)hNode)->type) {
    case N_KERNEL: *type = CU_GRAPH_NODE_TYPE_KERNEL; break;
    case N_COPY:
    case N_COPY3D: *type = CU_GRAPH_NODE_TYPE_MEMCPY; break;
    case N_MEMSET: *type = CU_GRAPH_NODE_TYPE_MEMSET; break;
    case N_HOST: *type = CU_GRAPH_NODE_TYPE_HOST; break;
    case N_EVENT_RECORD: *type = CU_GRAPH_NODE_TYPE_EVENT_RECORD; break;
    case N_EVENT_WAIT: *type = CU_GRAPH_NODE_TYPE_WAIT_EVENT; break;
    default: *type = CU_GRAPH_NODE_TYPE_EMPTY; break;
    }
    return CUDA_SUCCESS;
}

/* ---- instantiate / launch ---- */
static CUresult instantiate(CUgraphExec *out, CUgraph hGraph)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_graph *g = (emu_graph *)hGraph;
    gexec *x = calloc(1, sizeof(*x));
    if (!x)
        return CUDA_ERROR_OUT_OF_MEMORY;
    x->nodes = calloc(g->n ? g->n : 1, sizeof(gnode));
    if (!x->nodes) {
        free(x);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < g->n; i++) {
        x->nodes[i] = *g->nodes[i];
        x->n = i + 1;
        if (x->nodes[i].type == N_KERNEL) {
            size_t len = x->nodes[i].u.k.len;
            uint8_t *copy = malloc(len ? len : 1);
            if (!copy) {
                x->nodes[i].u.k.params = NULL;
                rc = CUDA_ERROR_OUT_OF_MEMORY;
                break;
            }
            memcpy(copy, g->nodes[i]->u.k.params, len);
            x->nodes[i].u.k.params = copy;
        }
    }
    if (rc == CUDA_SUCCESS && emu_handle_add(x, EMU_K_GEXEC))
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        for (size_t i = 0; i < x->n; i++)
            node_free_payload(&x->nodes[i]);
        free(x->nodes);
        free(x);
        return rc;
    }
    *out = (CUgraphExec)x;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    (void)flags; /* auto-free-on-launch, upload, device launch, priority: nothing to do here */
    return instantiate(phGraphExec, hGraph);
}

EMU_API CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                                    char *logBuffer, size_t bufferSize)
{
    if (phErrorNode)
        *phErrorNode = NULL;
    if (logBuffer && bufferSize)
        logBuffer[0] = 0;
    return instantiate(phGraphExec, hGraph);
}

EMU_API CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                                       char *logBuffer, size_t bufferSize)
{
    return cuGraphInstantiate(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize);
}

EMU_API CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                              CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    CUresult rc = instantiate(phGraphExec, hGraph);
    if (instantiateParams) {
        instantiateParams->result_out = rc == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
        instantiateParams->hErrNode_out = NULL;
    }
    return rc;
}

EMU_API CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    if (!emu_handle_is(hGraphExec, EMU_K_GEXEC))
        return CUDA_ERROR_INVALID_HANDLE;
    gexec *x = (gexec *)hGraphExec;
    emu_handle_del(x);
    for (size_t i = 0; i < x->n; i++)
        node_free_payload(&x->nodes[i]);
    free(x->nodes);
    free(x);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    return emu_handle_is(hGraphExec, EMU_K_GEXEC) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult run_node(const gnode *nd)
{
    switch (nd->type) {
    case N_KERNEL: {
        size_t len = nd->u.k.len;
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, nd->u.k.params, CU_LAUNCH_PARAM_BUFFER_SIZE, &len,
                         CU_LAUNCH_PARAM_END};
        const unsigned *g = nd->u.k.grid, *b = nd->u.k.block;
        if (nd->u.k.cooperative) {
            CUlaunchAttribute attr = {.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE, .value.cooperative = 1};
            CUlaunchConfig cfg = {g[0], g[1], g[2], b[0], b[1], b[2], (unsigned)nd->u.k.shmem, NULL, &attr, 1};
            return cuLaunchKernelEx(&cfg, (CUfunction)nd->u.k.f, NULL, extra);
        }
        return cuLaunchKernel((CUfunction)nd->u.k.f, g[0], g[1], g[2], b[0], b[1], b[2], (unsigned)nd->u.k.shmem,
                              NULL, NULL, extra);
    }
    case N_COPY:
        switch (nd->u.c.kind) {
        case EMU_COPY_HTOD: return cuMemcpyHtoD_v2(nd->u.c.dst, (const void *)(uintptr_t)nd->u.c.src, nd->u.c.n);
        case EMU_COPY_DTOH: return cuMemcpyDtoH_v2((void *)(uintptr_t)nd->u.c.dst, nd->u.c.src, nd->u.c.n);
        case EMU_COPY_DTOD: return cuMemcpyDtoD_v2(nd->u.c.dst, nd->u.c.src, nd->u.c.n);
        default: return cuMemcpy(nd->u.c.dst, nd->u.c.src, nd->u.c.n);
        }
    case N_COPY3D:
        return cuMemcpy3D_v2(&nd->u.c3);
    case N_MEMSET:
        switch (nd->u.m.elem) {
        case 1: return cuMemsetD2D8_v2(nd->u.m.dst, nd->u.m.pitch, (unsigned char)nd->u.m.value, nd->u.m.width, nd->u.m.height);
        case 2: return cuMemsetD2D16_v2(nd->u.m.dst, nd->u.m.pitch, (unsigned short)nd->u.m.value, nd->u.m.width, nd->u.m.height);
        default: return cuMemsetD2D32_v2(nd->u.m.dst, nd->u.m.pitch, nd->u.m.value, nd->u.m.width, nd->u.m.height);
        }
    case N_HOST:
        nd->u.h.fn(nd->u.h.userData);
        return CUDA_SUCCESS;
    case N_EVENT_RECORD:
        return cuEventRecord(nd->u.ev, NULL);
    default:
        return CUDA_SUCCESS; /* empty, event wait: ordering is already sequential */
    }
}

EMU_API CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!emu_handle_is(hGraphExec, EMU_K_GEXEC))
        return CUDA_ERROR_INVALID_HANDLE;
    if (emu_capture_of(hStream))
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* child-graph capture is not emulated */
    const gexec *x = (const gexec *)hGraphExec;
    for (size_t i = 0; i < x->n; i++) {
        rc = run_node(&x->nodes[i]);
        if (rc)
            return rc;
    }
    return CUDA_SUCCESS;
}

/* ---- stream capture ---- */
emu_graph *emu_capture_of(CUstream s)
{
    if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD || !emu_handle_is(s, EMU_K_STREAM))
        return NULL;
    emu_stream *st = (emu_stream *)s;
    emu_graph *g = st->capture;
    if (g && (!emu_handle_is(g, EMU_K_GRAPH) || !g->capturing || g->capture_id != st->capture_id)) {
        st->capture = NULL; /* the capture it joined has ended */
        st->capture_origin = 0;
        g = NULL;
    }
    return g;
}

static CUresult capture_add(CUstream s, gnode *nd)
{
    emu_graph *g = emu_capture_of(s);
    return g ? graph_add(g, nd, NULL) : CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
}

CUresult emu_capture_kernel(CUstream s, emu_func *f, const unsigned grid[3], const unsigned block[3], size_t shmem,
                            const void *params, size_t len, int cooperative)
{
    gnode nd = {.type = N_KERNEL};
    nd.u.k.f = f;
    memcpy(nd.u.k.grid, grid, sizeof(nd.u.k.grid));
    memcpy(nd.u.k.block, block, sizeof(nd.u.k.block));
    nd.u.k.shmem = shmem;
    nd.u.k.len = len;
    nd.u.k.cooperative = cooperative;
    nd.u.k.params = malloc(len ? len : 1);
    if (!nd.u.k.params)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(nd.u.k.params, params, len);
    CUresult rc = capture_add(s, &nd);
    if (rc)
        free(nd.u.k.params);
    return rc;
}

CUresult emu_capture_copy(CUstream s, int kind, CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    gnode nd = {.type = N_COPY};
    nd.u.c.kind = kind, nd.u.c.dst = dst, nd.u.c.src = src, nd.u.c.n = n;
    return capture_add(s, &nd);
}

CUresult emu_capture_copy3d(CUstream s, const CUDA_MEMCPY3D *p)
{
    gnode nd = {.type = N_COPY3D};
    nd.u.c3 = *p;
    return capture_add(s, &nd);
}

CUresult emu_capture_memset(CUstream s, CUdeviceptr dst, size_t pitch, unsigned value, unsigned elem, size_t width,
                            size_t height)
{
    gnode nd = {.type = N_MEMSET};
    nd.u.m.dst = dst, nd.u.m.pitch = pitch, nd.u.m.value = value, nd.u.m.elem = elem;
    nd.u.m.width = width, nd.u.m.height = height;
    return capture_add(s, &nd);
}

CUresult emu_capture_host(CUstream s, CUhostFn fn, void *data)
{
    gnode nd = {.type = N_HOST};
    nd.u.h.fn = fn, nd.u.h.userData = data;
    return capture_add(s, &nd);
}

CUresult emu_capture_event(CUstream s, emu_event *e)
{
    gnode nd = {.type = N_EVENT_RECORD};
    nd.u.ev = (CUevent)e;
    emu_graph *g = emu_capture_of(s);
    e->capture = g;
    e->capture_id = g ? g->capture_id : 0;
    return capture_add(s, &nd);
}

/* A stream waiting on an event recorded inside a live capture joins that capture (fork/join). */
CUresult emu_capture_wait(CUstream s, emu_event *e)
{
    emu_graph *g = e->capture;
    if (!g || !emu_handle_is(g, EMU_K_GRAPH) || !g->capturing || g->capture_id != e->capture_id)
        return CUDA_SUCCESS; /* an ordinary event: all prior work already ran */
    if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD)
        return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
    emu_stream *st = (emu_stream *)s;
    emu_graph *cur = emu_capture_of(s);
    if (cur && cur != g)
        return CUDA_ERROR_STREAM_CAPTURE_MERGE;
    st->capture = g;
    st->capture_id = g->capture_id;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!hStream || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* the legacy default stream cannot capture */
    emu_stream *st = (emu_stream *)hStream;
    if (emu_capture_of(hStream))
        return CUDA_ERROR_ILLEGAL_STATE;
    CUgraph g;
    rc = cuGraphCreate(&g, 0);
    if (rc)
        return rc;
    emu_graph *eg = (emu_graph *)g;
    eg->capturing = 1;
    eg->capture_id = atomic_fetch_add(&g_emu.next_id, 1);
    eg->mode = mode;
    st->capture = eg;
    st->capture_origin = 1;
    st->capture_id = eg->capture_id;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamBeginCapture(CUstream hStream) { return cuStreamBeginCapture_v2(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL); }

EMU_API CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!phGraph)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hStream, EMU_K_STREAM))
        return CUDA_ERROR_ILLEGAL_STATE;
    emu_stream *st = (emu_stream *)hStream;
    emu_graph *g = emu_capture_of(hStream);
    if (!g)
        return CUDA_ERROR_ILLEGAL_STATE;
    if (!st->capture_origin)
        return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
    /* streams that joined through events notice the end lazily (emu_capture_of) */
    g->capturing = 0;
    st->capture = NULL;
    st->capture_origin = 0;
    *phGraph = (CUgraph)g;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    if (!captureStatus)
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph *g = emu_capture_of(hStream);
    *captureStatus = g && g->capturing ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out)
{
    CUresult rc = cuStreamIsCapturing(hStream, captureStatus_out);
    if (rc == CUDA_SUCCESS && id_out) {
        emu_graph *g = emu_capture_of(hStream);
        *id_out = g && g->capturing ? g->capture_id : 0;
    }
    return rc;
}

EMU_API CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                           cuuint64_t *id_out, CUgraph *graph_out,
                                           const CUgraphNode **dependencies_out, size_t *numDependencies_out)
{
    CUresult rc = cuStreamGetCaptureInfo(hStream, captureStatus_out, id_out);
    if (rc == CUDA_SUCCESS) {
        emu_graph *g = emu_capture_of(hStream);
        if (graph_out)
            *graph_out = g && g->capturing ? (CUgraph)g : NULL;
        if (dependencies_out)
            *dependencies_out = NULL;
        if (numDependencies_out)
            *numDependencies_out = 0;
    }
    return rc;
}

EMU_API CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                           cuuint64_t *id_out, CUgraph *graph_out,
                                           const CUgraphNode **dependencies_out, const CUgraphEdgeData **edgeData_out,
                                           size_t *numDependencies_out)
{
    if (edgeData_out)
        *edgeData_out = NULL;
    return cuStreamGetCaptureInfo_v2(hStream, captureStatus_out, id_out, graph_out, dependencies_out,
                                     numDependencies_out);
}
