/* emu_graph.c - CUDA graphs on the emulated device: graphs built explicitly (kernel, memcpy, memset,
 * host, empty, event record/wait nodes) or by stream capture (work issued to a capturing stream
 * becomes nodes; streams join a capture by waiting on an event recorded in it), instantiation (a deep
 * copy) and launch. A node can only depend on nodes added before it, so insertion order is a valid
 * topological order: cuGraphLaunch queues one operation on its stream (emu_stream_queue.c) that replays
 * the nodes in that order on the stream's thread, each through the ordinary driver entry point on the
 * NULL stream (so replays get the same checks as direct calls; issued from a stream thread, they run
 * inline there). Node parameters can be read back and set, in a graph and in an executable graph (whose
 * nodes are found by the graph node they were made from, also after cuGraphExecUpdate; an update waits for
 * queued launches first), and an executable graph's kernel, memcpy and memset nodes can be disabled (they
 * run as empty nodes).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"
#include "graph_add_node.h"

enum { N_KERNEL = 1, N_COPY, N_COPY3D, N_MEMSET, N_HOST, N_EMPTY, N_EVENT_RECORD, N_EVENT_WAIT, N_CHILD, N_MEM_ALLOC,
       N_MEM_FREE, N_COND };

/* Conditional handles (cuGraphConditionalHandleCreate): a value kernels set with cudaGraphSetConditional
 * (PTX: a call of the extern function cudaGraphSetConditional, served by ptx_graph_set_conditional) and
 * conditional nodes read; reset to its default at each launch with CU_GRAPH_COND_ASSIGN_DEFAULT. */
typedef struct emu_cond {
    unsigned value, def, flags;
    struct emu_graph *graph;
} emu_cond;
struct gexec;

/* Graph memory (alloc and free nodes: cuGraphAddMemAllocNode / cuGraphAddMemFreeNode, or cuMemAllocAsync /
 * cuMemFreeAsync captured): allocated when the alloc node is made, at the address it returns, and kept
 * while any graph or executable graph holding that alloc node lives; a free node, and cuMemFreeAsync of
 * graph memory outside a capture, leave it for the next launch (a GPU maps the same address again at
 * each launch). Device graph-memory attributes follow a GPU's footprint (what NVIDIA's graphMemoryFootprint
 * sample shows): an allocation's memory is associated with graphs from the first launch of its alloc node
 * on, whether the graph frees it or not, and cuDeviceGraphMemTrim gives back the memory of allocations
 * that are not outstanding (freed in the graph, or by cuMemFree(Async) after it); USED and RESERVED both
 * report that memory (the emulator itself backs an allocation from the node's creation). */
typedef struct gmem {
    uint64_t p;
    int refs;
    size_t size;
    int live;                /* allocated by a launched alloc node, not freed since */
    int mapped;              /* associated with graphs: launched since the last trim that released it */
    CUmemPoolProps props;    /* what cuGraphMemAllocNodeGetParams gives back */
    CUmemAccessDesc *descs;
    size_t ndescs;
    struct gmem *next;
} gmem;
static gmem *g_gmem; /* emu_lock */
static uint64_t g_gm_used_high, g_gm_reserved_high; /* emu_lock */

typedef struct gnode {
    int type;
    struct emu_graph *graph;
    struct gnode **deps; /* edges: this node runs after each of these (nodes of the same graph) */
    size_t ndeps, depcap;
    const struct gnode *origin; /* the node this one is a copy of (clone, executable graph) */
    size_t idx;                 /* scratch: position while ordering */
    int disabled;               /* executable graphs' nodes: cuGraphNodeSetEnabled(0) made it an empty node */
    size_t *dep_at, ndep_at;    /* executable graphs' nodes: where the copies of the node's dependencies are in
                                   the executable graph, in edge order (a child graph node: its first node's
                                   place); what cuGraphExecUpdate compares (a child graph node's own edges
                                   are not kept) */
    union {
        struct {
            emu_func *f;
            CUfunction func;    /* the handles the node was made with, given back as they came */
            CUkernel kern;
            CUcontext ctx;
            unsigned grid[3], block[3];
            size_t shmem, len;
            uint8_t *params;
            void **kptrs;       /* kernelParams handed out by cuGraphKernelNodeGetParams (into params) */
            int cooperative;
            CUlaunchAttributeValue *attrs; /* set by cuGraphKernelNodeSetAttribute: CU_LAUNCH_ATTRIBUTE_MAX of
                                              them, indexed by id (NULL until one is set); cooperative above */
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
        struct emu_graph *child; /* owned copy of the child graph */
        gmem *mem;               /* N_MEM_ALLOC: a reference to the allocation */
        CUdeviceptr freed;       /* N_MEM_FREE */
        struct {
            emu_cond *h;
            int type;            /* CU_GRAPH_COND_TYPE_* */
            unsigned size;
            struct emu_graph **bodies; /* graph nodes: the body graphs (owned) */
            struct gexec *xs;          /* executable copies: the bodies flattened, size of them */
        } cond;
    } u;
} gnode;

typedef struct emu_graph {
    gnode **nodes;
    size_t n, cap;
    int capturing;
    int invalidated;      /* an unsupported call was made during the capture: it ends in an error */
    int user_graph;       /* captured into by cuStreamBeginCaptureToGraph: not freed by an invalidation */
    int node_owned;       /* a child graph's copy or a conditional body: lives and dies with its node */
    unsigned long long capture_id;
    CUstreamCaptureMode mode;
    pthread_t owner;      /* thread that began the capture */
    emu_uref_set urefs;   /* user-object references the graph owns (emu_user_object.c) */
} emu_graph;

typedef struct gexec {
    gnode *nodes; /* flattened (child graphs inlined), in an order that respects every edge */
    size_t n;
    unsigned long long flags;
    emu_uref_set urefs; /* of the graph, its child graphs and conditional bodies, taken at instantiation */
} gexec;

static void graph_free(emu_graph *g);
static CUresult graph_clone(const emu_graph *src, emu_graph **out);
static gnode *exec_node(struct gexec *x, CUgraphNode hNode);

/* The executable graph's copy of graph node hNode, for the calls that update an executable graph: a bogus
 * executable graph is CUDA_ERROR_INVALID_HANDLE, a node that is not one of its source graph's
 * CUDA_ERROR_INVALID_VALUE. */
static CUresult exec_target(CUgraphExec hGraphExec, CUgraphNode hNode, gnode **out)
{
    if (!emu_handle_is(hGraphExec, EMU_K_GEXEC))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    *out = exec_node((struct gexec *)hGraphExec, hNode);
    return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static void gmem_ref(gmem *m, int delta)
{
    emu_lock();
    m->refs += delta;
    int dead = m->refs == 0;
    if (dead)
        for (gmem **pp = &g_gmem; *pp; pp = &(*pp)->next)
            if (*pp == m) {
                *pp = m->next;
                break;
            }
    emu_unlock();
    if (dead) {
        emu_dev_free(m->p);
        free(m->descs);
        free(m);
    }
}

/* Current graph-memory totals (emu_lock held), and the high-water marks brought up to them. */
static void gm_totals(uint64_t *used, uint64_t *reserved)
{
    uint64_t u = 0, r = 0;
    for (gmem *m = g_gmem; m; m = m->next)
        if (m->mapped)
            u += m->size, r += m->size;
    if (u > g_gm_used_high)
        g_gm_used_high = u;
    if (r > g_gm_reserved_high)
        g_gm_reserved_high = r;
    *used = u;
    *reserved = r;
}

static void gm_set_live(uint64_t p, int live)
{
    uint64_t u, r;
    emu_lock();
    for (gmem *m = g_gmem; m; m = m->next)
        if (m->p == p) {
            m->live = live;
            m->mapped |= live;
        }
    gm_totals(&u, &r);
    emu_unlock();
}

/* cuMemFree(Async) of graph memory outside a graph (emu_memory.c): no longer in use until the next launch. */
void emu_graph_mem_release(CUdeviceptr p) { gm_set_live(p, 0); }

/* A new graph allocation of `bytes` on device `dev` (one reference: the alloc node's). */
static CUresult gmem_new(int dev, size_t bytes, gmem **out)
{
    gmem *m = calloc(1, sizeof(*m));
    if (!m)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = emu_dev_alloc_on(dev, &m->p, bytes, EMU_MEM_DEVICE, 0);
    if (rc) {
        free(m);
        return rc;
    }
    m->refs = 1;
    m->size = bytes;
    m->props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    m->props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    m->props.location.id = dev;
    uint64_t u, r;
    emu_lock();
    m->next = g_gmem;
    g_gmem = m;
    gm_totals(&u, &r);
    emu_unlock();
    *out = m;
    return CUDA_SUCCESS;
}

static void graph_destroy(struct emu_graph *g);
static void exec_free_nodes(gnode *nodes, size_t n);

static void payload_free(gnode *nd)
{
    if (nd->type == N_COND) {
        for (unsigned i = 0; nd->u.cond.bodies && i < nd->u.cond.size; i++)
            if (nd->u.cond.bodies[i])
                graph_destroy(nd->u.cond.bodies[i]);
        free(nd->u.cond.bodies);
        for (unsigned i = 0; nd->u.cond.xs && i < nd->u.cond.size; i++)
            exec_free_nodes(nd->u.cond.xs[i].nodes, nd->u.cond.xs[i].n);
        free(nd->u.cond.xs);
        return;
    }
    if (nd->type == N_MEM_ALLOC)
        gmem_ref(nd->u.mem, -1);
    if (nd->type == N_KERNEL) {
        free(nd->u.k.params);
        free(nd->u.k.kptrs);
        free(nd->u.k.attrs);
    }
    else if (nd->type == N_CHILD && nd->u.child)
        graph_free(nd->u.child);
}

/* Deep copy of a node's parameters (kernel arguments, child graph). */
static CUresult payload_copy(gnode *dst, const gnode *src)
{
    dst->type = src->type;
    dst->u = src->u;
    if (src->type == N_KERNEL) {
        dst->u.k.kptrs = NULL;
        dst->u.k.attrs = NULL;
        dst->u.k.params = malloc(src->u.k.len ? src->u.k.len : 1);
        if (!dst->u.k.params)
            return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(dst->u.k.params, src->u.k.params, src->u.k.len);
        if (src->u.k.attrs) {
            dst->u.k.attrs = malloc(CU_LAUNCH_ATTRIBUTE_MAX * sizeof(*dst->u.k.attrs));
            if (!dst->u.k.attrs)
                return CUDA_ERROR_OUT_OF_MEMORY;
            memcpy(dst->u.k.attrs, src->u.k.attrs, CU_LAUNCH_ATTRIBUTE_MAX * sizeof(*dst->u.k.attrs));
        }
    } else if (src->type == N_CHILD) {
        dst->u.child = NULL;
        CUresult rc = graph_clone(src->u.child, &dst->u.child);
        if (dst->u.child)
            dst->u.child->node_owned = 1;
        return rc;
    } else if (src->type == N_MEM_ALLOC) {
        gmem_ref(src->u.mem, 1);
    } else if (src->type == N_COND) {
        dst->u.cond.xs = NULL;
        dst->u.cond.bodies = calloc(src->u.cond.size, sizeof(*dst->u.cond.bodies));
        if (!dst->u.cond.bodies)
            return CUDA_ERROR_OUT_OF_MEMORY;
        for (unsigned i = 0; i < src->u.cond.size; i++) {
            CUresult rc = graph_clone(src->u.cond.bodies[i], &dst->u.cond.bodies[i]);
            if (dst->u.cond.bodies[i])
                dst->u.cond.bodies[i]->node_owned = 1;
            if (rc)
                return rc;  /* the caller frees what was made (payload_free) */
        }
    }
    return CUDA_SUCCESS;
}

static CUresult dep_add(gnode *nd, gnode *dep)
{
    for (size_t i = 0; i < nd->ndeps; i++)
        if (nd->deps[i] == dep)
            return CUDA_ERROR_INVALID_VALUE; /* the edge exists already */
    if (nd->ndeps == nd->depcap) {
        size_t ncap = nd->depcap ? nd->depcap * 2 : 4;
        gnode **d = realloc(nd->deps, ncap * sizeof(*d));
        if (!d)
            return CUDA_ERROR_OUT_OF_MEMORY;
        nd->deps = d;
        nd->depcap = ncap;
    }
    nd->deps[nd->ndeps++] = dep;
    return CUDA_SUCCESS;
}

/* Adds a node made from tmpl (its payload now belongs to the graph) after the given dependencies. */
static CUresult graph_add(emu_graph *g, gnode *tmpl, gnode *const *deps, size_t ndeps, CUgraphNode *out)
{
    gnode *nd = calloc(1, sizeof(*nd));
    if (!nd)
        return CUDA_ERROR_OUT_OF_MEMORY;
    nd->type = tmpl->type;
    nd->u = tmpl->u;
    nd->origin = tmpl->origin;
    nd->graph = g;
    CUresult rc = CUDA_SUCCESS;
    for (size_t i = 0; i < ndeps && rc == CUDA_SUCCESS; i++)
        rc = dep_add(nd, deps[i]);
    if (rc == CUDA_SUCCESS && emu_handle_add(nd, EMU_K_GNODE))
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        free(nd->deps);
        free(nd);
        return rc;
    }
    emu_lock();
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 16;
        gnode **nn = realloc(g->nodes, ncap * sizeof(*nn));
        if (!nn) {
            emu_unlock();
            emu_handle_del(nd);
            free(nd->deps);
            free(nd);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        g->nodes = nn;
        g->cap = ncap;
    }
    g->nodes[g->n++] = nd;
    emu_unlock();
    if (out)
        *out = (CUgraphNode)nd;
    return CUDA_SUCCESS;
}

static void graph_free(emu_graph *g)
{
    for (size_t i = 0; i < g->n; i++) {
        emu_handle_del(g->nodes[i]);
        payload_free(g->nodes[i]);
        free(g->nodes[i]->deps);
        free(g->nodes[i]);
    }
    free(g->nodes);
    emu_urefs_clear(&g->urefs);
    free(g);
}

static emu_graph *graph_new(void)
{
    emu_graph *g = calloc(1, sizeof(*g));
    if (g && emu_handle_add(g, EMU_K_GRAPH)) {
        free(g);
        g = NULL;
    }
    return g;
}

static void graph_destroy(emu_graph *g)
{
    emu_handle_del(g);
    graph_free(g);
}

/* Copies every node (payloads deep-copied) and edge; each copy's origin is its source node. */
static CUresult graph_clone(const emu_graph *src, emu_graph **out)
{
    emu_graph *g = graph_new();
    if (!g)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CUDA_SUCCESS;
    for (size_t i = 0; i < src->n && rc == CUDA_SUCCESS; i++) {
        gnode tmpl;
        memset(&tmpl, 0, sizeof(tmpl));
        rc = payload_copy(&tmpl, src->nodes[i]);
        tmpl.origin = src->nodes[i];
        if (rc == CUDA_SUCCESS) {
            rc = graph_add(g, &tmpl, NULL, 0, NULL);
            if (rc)
                payload_free(&tmpl);
        }
        src->nodes[i]->idx = i;
    }
    for (size_t i = 0; i < src->n && rc == CUDA_SUCCESS; i++)
        for (size_t d = 0; d < src->nodes[i]->ndeps && rc == CUDA_SUCCESS; d++)
            rc = dep_add(g->nodes[i], g->nodes[src->nodes[i]->deps[d]->idx]);
    if (rc == CUDA_SUCCESS)
        rc = emu_urefs_copy(&g->urefs, &src->urefs); /* a clone owns the references its original owns */
    if (rc) {
        graph_destroy(g);
        return rc;
    }
    *out = g;
    return CUDA_SUCCESS;
}

static int node_of(const void *h, const emu_graph *g)
{
    return emu_handle_is(h, EMU_K_GNODE) && ((const gnode *)h)->graph == g;
}

/* Dependencies must be nodes of this graph. */
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
        if (!node_of(deps[i], (emu_graph *)hGraph))
            return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

static CUresult add_node(CUgraphNode *out, CUgraph hGraph, const CUgraphNode *deps, size_t ndeps, gnode *tmpl)
{
    return graph_add((emu_graph *)hGraph, tmpl, (gnode *const *)deps, ndeps, out);
}

EMU_API CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!phGraph || flags)
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph *g = graph_new();
    if (!g)
        return CUDA_ERROR_OUT_OF_MEMORY;
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
    if (g->node_owned)
        return CUDA_ERROR_INVALID_VALUE; /* owned by its node: destroying the node (or its graph) frees it */
    graph_destroy(g);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphClone(CUgraph *phGraphClone, CUgraph originalGraph)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!phGraphClone)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(originalGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_graph *g;
    rc = graph_clone((const emu_graph *)originalGraph, &g);
    if (rc == CUDA_SUCCESS)
        *phGraphClone = (CUgraph)g;
    return rc;
}

EMU_API CUresult cuGraphNodeFindInClone(CUgraphNode *phNode, CUgraphNode hOriginalNode, CUgraph hClonedGraph)
{
    if (!phNode || !emu_handle_is(hOriginalNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hClonedGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    const emu_graph *g = (const emu_graph *)hClonedGraph;
    for (size_t i = 0; i < g->n; i++) {
        if (g->nodes[i]->origin == (const gnode *)hOriginalNode) {
            *phNode = (CUgraphNode)g->nodes[i];
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_INVALID_VALUE;
}

EMU_API CUresult cuGraphDestroyNode(CUgraphNode hNode)
{
    if (!emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    gnode *nd = (gnode *)hNode;
    emu_graph *g = nd->graph;
    if (g->capturing)
        return CUDA_ERROR_ILLEGAL_STATE;
    emu_lock();
    size_t j = 0;
    for (size_t i = 0; i < g->n; i++) {
        gnode *o = g->nodes[i];
        if (o == nd)
            continue;
        size_t e = 0;
        for (size_t d = 0; d < o->ndeps; d++)
            if (o->deps[d] != nd)
                o->deps[e++] = o->deps[d];
        o->ndeps = e;
        g->nodes[j++] = o;
    }
    g->n--;
    emu_unlock();
    emu_handle_del(nd);
    payload_free(nd);
    free(nd->deps);
    free(nd);
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
    nd->u.k.func = p->func, nd->u.k.kern = p->kern, nd->u.k.ctx = p->ctx;
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
    rc = add_node(phGraphNode, hGraph, dependencies, numDependencies, &nd);
    if (rc)
        free(nd.u.k.params);
    return rc;
}

/* kernelParams point into the node's own argument block: valid until the node's parameters change. */
EMU_API CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hNode, EMU_K_GNODE) || ((gnode *)hNode)->type != N_KERNEL)
        return CUDA_ERROR_INVALID_VALUE;
    const gnode *nd = (const gnode *)hNode;
    memset(nodeParams, 0, sizeof(*nodeParams));
    nodeParams->func = nd->u.k.func || nd->u.k.kern ? nd->u.k.func : (CUfunction)nd->u.k.f;
    nodeParams->kern = nd->u.k.kern;
    nodeParams->ctx = nd->u.k.ctx;
    nodeParams->gridDimX = nd->u.k.grid[0], nodeParams->gridDimY = nd->u.k.grid[1];
    nodeParams->gridDimZ = nd->u.k.grid[2];
    nodeParams->blockDimX = nd->u.k.block[0], nodeParams->blockDimY = nd->u.k.block[1];
    nodeParams->blockDimZ = nd->u.k.block[2];
    nodeParams->sharedMemBytes = (unsigned)nd->u.k.shmem;
    gnode *w = (gnode *)hNode;
    if (!w->u.k.kptrs) {
        size_t off, size, cnt = 0;
        while (cuFuncGetParamInfo((CUfunction)w->u.k.f, cnt, &off, &size) == CUDA_SUCCESS)
            cnt++;
        w->u.k.kptrs = calloc(cnt ? cnt : 1, sizeof(void *));
        if (!w->u.k.kptrs)
            return CUDA_ERROR_OUT_OF_MEMORY;
        for (size_t i = 0; i < cnt; i++) {
            if (cuFuncGetParamInfo((CUfunction)w->u.k.f, i, &off, &size) != CUDA_SUCCESS || off + size > w->u.k.len)
                return CUDA_ERROR_UNKNOWN;
            w->u.k.kptrs[i] = w->u.k.params + off;
        }
    }
    nodeParams->kernelParams = w->u.k.kptrs;
    return CUDA_SUCCESS;
}

/* New parameters for a kernel node (of a graph, or of an executable graph: exec_node). */
static CUresult kernel_set(gnode *nd, const CUDA_KERNEL_NODE_PARAMS *p)
{
    if (nd->type != N_KERNEL)
        return CUDA_ERROR_INVALID_VALUE;
    gnode fresh;
    CUresult rc = kernel_node(&fresh, p);
    if (rc)
        return rc;
    free(nd->u.k.params);
    free(nd->u.k.kptrs);
    fresh.u.k.cooperative = nd->u.k.cooperative;
    fresh.u.k.attrs = nd->u.k.attrs; /* attributes are not parameters: they stay */
    nd->u.k = fresh.u.k;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphKernelNodeSetParams_v2(CUgraphNode hNode, const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    if (!emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    return kernel_set((gnode *)hNode, nodeParams);
}

/* ---- kernel node attributes (cuGraphKernelNode{Get,Set,Copy}Attribute(s)) ----
 * The launch attributes cuda.h calls valid for graph nodes. Cooperative is honoured (the node launches as
 * cuLaunchCooperativeKernel does, with its residency check); priority is kept in the device's range, as a
 * stream's (cuCtxGetStreamPriorityRange); access-policy windows, memory synchronization domains, cluster
 * dimensions and scheduling hints are kept and given back, with no effect on the emulated device (as on a
 * launch, emu_launch.c). Refused: other ids and out-of-range values (INVALID_VALUE), and a device-updatable
 * node (CUDA_ERROR_NOT_SUPPORTED: device-side graph updates are not emulated). */
static int node_attr_id(CUkernelNodeAttrID id)
{
    switch (id) {
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
    case CU_LAUNCH_ATTRIBUTE_NVLINK_UTIL_CENTRIC_SCHEDULING:
        return 1;
    default:
        return 0;
    }
}

static gnode *kernel_node_of(CUgraphNode hNode, CUresult *rc)
{
    *rc = !emu_handle_is(hNode, EMU_K_GNODE) ? CUDA_ERROR_INVALID_HANDLE
        : ((gnode *)hNode)->type != N_KERNEL ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    return *rc ? NULL : (gnode *)hNode;
}

EMU_API CUresult cuGraphKernelNodeGetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                               CUkernelNodeAttrValue *value_out)
{
    CUresult rc;
    gnode *nd = kernel_node_of(hNode, &rc);
    if (!nd)
        return rc;
    if (!value_out || !node_attr_id(attr))
        return CUDA_ERROR_INVALID_VALUE;
    emu_lock();
    if (nd->u.k.attrs)
        *value_out = nd->u.k.attrs[attr];
    else
        memset(value_out, 0, sizeof(*value_out));
    if (attr == CU_LAUNCH_ATTRIBUTE_COOPERATIVE)
        value_out->cooperative = nd->u.k.cooperative;
    emu_unlock();
    return CUDA_SUCCESS;
}

/* The value as the node keeps it, or INVALID_VALUE / NOT_SUPPORTED. */
static CUresult node_attr_value(CUkernelNodeAttrID attr, const CUkernelNodeAttrValue *in, CUkernelNodeAttrValue *v)
{
    int lo = 0, hi = 0;
    *v = *in;
    switch (attr) {
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW: {
        int max_window = 0;
        if (cuDeviceGetAttribute(&max_window, CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE, emu_cur_dev()) ||
            !(in->accessPolicyWindow.hitRatio >= 0.0f && in->accessPolicyWindow.hitRatio <= 1.0f) || /* NaN too */
            in->accessPolicyWindow.num_bytes > (size_t)max_window ||
            in->accessPolicyWindow.hitProp > CU_ACCESS_PROPERTY_PERSISTING ||
            in->accessPolicyWindow.missProp > CU_ACCESS_PROPERTY_PERSISTING)
            return CUDA_ERROR_INVALID_VALUE;
        return CUDA_SUCCESS;
    }
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
        v->cooperative = in->cooperative != 0;
        return CUDA_SUCCESS;
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        return in->clusterSchedulingPolicyPreference > CU_CLUSTER_SCHEDULING_POLICY_LOAD_BALANCING
                   ? CUDA_ERROR_INVALID_VALUE
                   : CUDA_SUCCESS;
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
        if (cuCtxGetStreamPriorityRange(&lo, &hi))
            return CUDA_ERROR_INVALID_CONTEXT;
        v->priority = in->priority < hi ? hi : in->priority > lo ? lo : in->priority;
        return CUDA_SUCCESS;
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
        return in->memSyncDomain > CU_LAUNCH_MEM_SYNC_DOMAIN_REMOTE ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
        if (in->deviceUpdatableKernelNode.deviceUpdatable)
            return CUDA_ERROR_NOT_SUPPORTED;
        memset(v, 0, sizeof(*v));
        return CUDA_SUCCESS;
    default:
        return CUDA_SUCCESS;
    }
}

EMU_API CUresult cuGraphKernelNodeSetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                               const CUkernelNodeAttrValue *value)
{
    CUresult rc;
    gnode *nd = kernel_node_of(hNode, &rc);
    if (!nd)
        return rc;
    if (!value || !node_attr_id(attr))
        return CUDA_ERROR_INVALID_VALUE;
    CUkernelNodeAttrValue v;
    rc = node_attr_value(attr, value, &v);
    if (rc)
        return rc;
    emu_lock();
    if (!nd->u.k.attrs)
        nd->u.k.attrs = calloc(CU_LAUNCH_ATTRIBUTE_MAX, sizeof(*nd->u.k.attrs));
    if (nd->u.k.attrs) {
        nd->u.k.attrs[attr] = v;
        if (attr == CU_LAUNCH_ATTRIBUTE_COOPERATIVE)
            nd->u.k.cooperative = v.cooperative;
    }
    emu_unlock();
    return nd->u.k.attrs ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

/* Every attribute of src (cooperative included) replaces dst's; both must be kernel nodes of one context
 * (a bogus node: INVALID_HANDLE, as for the other two calls and through the stub). */
EMU_API CUresult cuGraphKernelNodeCopyAttributes(CUgraphNode dst, CUgraphNode src)
{
    CUresult rc;
    gnode *d = kernel_node_of(dst, &rc), *s = d ? kernel_node_of(src, &rc) : NULL;
    if (!s)
        return rc;
    if (d->u.k.ctx != s->u.k.ctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (d == s)
        return CUDA_SUCCESS;
    emu_lock();
    if (s->u.k.attrs && !d->u.k.attrs)
        d->u.k.attrs = malloc(CU_LAUNCH_ATTRIBUTE_MAX * sizeof(*d->u.k.attrs));
    rc = s->u.k.attrs && !d->u.k.attrs ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    if (rc == CUDA_SUCCESS) {
        if (s->u.k.attrs)
            memcpy(d->u.k.attrs, s->u.k.attrs, CU_LAUNCH_ATTRIBUTE_MAX * sizeof(*d->u.k.attrs));
        else if (d->u.k.attrs)
            memset(d->u.k.attrs, 0, CU_LAUNCH_ATTRIBUTE_MAX * sizeof(*d->u.k.attrs));
        d->u.k.cooperative = s->u.k.cooperative;
    }
    emu_unlock();
    return rc;
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
    return add_node(phGraphNode, hGraph, dependencies, numDependencies, &nd);
}

/* A memcpy node's parameters as CUDA_MEMCPY3D (a captured 1D copy is one row of a 3D copy). */
static CUresult copy_params_of(const gnode *nd, CUDA_MEMCPY3D *out)
{
    if (nd->type == N_COPY3D) {
        *out = nd->u.c3;
        return CUDA_SUCCESS;
    }
    if (nd->type != N_COPY)
        return CUDA_ERROR_INVALID_VALUE;
    memset(out, 0, sizeof(*out));
    static const CUmemorytype src_t[] = {CU_MEMORYTYPE_UNIFIED, CU_MEMORYTYPE_HOST, CU_MEMORYTYPE_DEVICE,
                                         CU_MEMORYTYPE_DEVICE};
    static const CUmemorytype dst_t[] = {CU_MEMORYTYPE_UNIFIED, CU_MEMORYTYPE_DEVICE, CU_MEMORYTYPE_HOST,
                                         CU_MEMORYTYPE_DEVICE};
    int k = nd->u.c.kind >= EMU_COPY_UNIFIED && nd->u.c.kind <= EMU_COPY_DTOD ? nd->u.c.kind : EMU_COPY_UNIFIED;
    out->srcMemoryType = src_t[k];
    out->dstMemoryType = dst_t[k];
    if (out->srcMemoryType == CU_MEMORYTYPE_HOST)
        out->srcHost = (const void *)(uintptr_t)nd->u.c.src;
    else
        out->srcDevice = nd->u.c.src;
    if (out->dstMemoryType == CU_MEMORYTYPE_HOST)
        out->dstHost = (void *)(uintptr_t)nd->u.c.dst;
    else
        out->dstDevice = nd->u.c.dst;
    out->WidthInBytes = nd->u.c.n;
    out->Height = out->Depth = 1;
    return CUDA_SUCCESS;
}

static int is_copy(const gnode *nd) { return nd->type == N_COPY || nd->type == N_COPY3D; }

EMU_API CUresult cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D *nodeParams)
{
    if (!nodeParams || !emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    return copy_params_of((const gnode *)hNode, nodeParams);
}

EMU_API CUresult cuGraphMemcpyNodeSetParams(CUgraphNode hNode, const CUDA_MEMCPY3D *nodeParams)
{
    if (!nodeParams || !emu_handle_is(hNode, EMU_K_GNODE) || !is_copy((const gnode *)hNode) ||
        nodeParams->WidthInBytes == 0 || nodeParams->Height == 0 || nodeParams->Depth == 0)
        return CUDA_ERROR_INVALID_VALUE;
    gnode *nd = (gnode *)hNode;
    nd->type = N_COPY3D;
    nd->u.c3 = *nodeParams;
    return CUDA_SUCCESS;
}

/* The executable graph's copy of a memcpy node takes new operands; the node kind and the direction stay
 * (the driver's rule: the memory of the new operands comes from the same places as the old). */
EMU_API CUresult cuGraphExecMemcpyNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    (void)ctx;
    gnode *nd;
    CUresult rc = exec_target(hGraphExec, hNode, &nd);
    if (rc)
        return rc;
    CUDA_MEMCPY3D old;
    if (!copyParams || copyParams->WidthInBytes == 0 || copyParams->Height == 0 || copyParams->Depth == 0 ||
        copy_params_of(nd, &old) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_VALUE;
    int host_src = old.srcMemoryType == CU_MEMORYTYPE_HOST, host_dst = old.dstMemoryType == CU_MEMORYTYPE_HOST;
    if ((copyParams->srcMemoryType == CU_MEMORYTYPE_HOST) != host_src ||
        (copyParams->dstMemoryType == CU_MEMORYTYPE_HOST) != host_dst)
        return CUDA_ERROR_INVALID_VALUE;
    emu_sq_idle_all(); /* launches already queued use the old parameters */
    nd->type = N_COPY3D;
    nd->u.c3 = *copyParams;
    return CUDA_SUCCESS;
}

/* A memset node's parameters into *nd (of a new node, or replacing a memset node's: the kind is the caller's
 * check); a pitch of 0 is the width of one row. */
static CUresult memset_params(gnode *nd, const CUDA_MEMSET_NODE_PARAMS *p)
{
    if (!p || (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4))
        return CUDA_ERROR_INVALID_VALUE;
    nd->type = N_MEMSET;
    nd->u.m.dst = p->dst, nd->u.m.pitch = p->pitch ? p->pitch : p->width * p->elementSize;
    nd->u.m.value = p->value, nd->u.m.elem = p->elementSize, nd->u.m.width = p->width, nd->u.m.height = p->height;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphAddMemsetNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                      size_t numDependencies, const CUDA_MEMSET_NODE_PARAMS *p, CUcontext ctx)
{
    (void)ctx;
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    gnode nd = {.type = N_MEMSET};
    rc = memset_params(&nd, p);
    return rc ? rc : add_node(phGraphNode, hGraph, dependencies, numDependencies, &nd);
}

/* The node hNode of a graph if it is of kind `type`, else NULL (the driver's CUDA_ERROR_INVALID_VALUE). */
static gnode *node_of_type(CUgraphNode hNode, int type)
{
    return emu_handle_is(hNode, EMU_K_GNODE) && ((gnode *)hNode)->type == type ? (gnode *)hNode : NULL;
}

EMU_API CUresult cuGraphMemsetNodeGetParams(CUgraphNode hNode, CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
    const gnode *nd = node_of_type(hNode, N_MEMSET);
    if (!nodeParams || !nd)
        return CUDA_ERROR_INVALID_VALUE;
    memset(nodeParams, 0, sizeof(*nodeParams));
    nodeParams->dst = nd->u.m.dst, nodeParams->pitch = nd->u.m.pitch, nodeParams->value = nd->u.m.value;
    nodeParams->elementSize = nd->u.m.elem, nodeParams->width = nd->u.m.width, nodeParams->height = nd->u.m.height;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphMemsetNodeSetParams(CUgraphNode hNode, const CUDA_MEMSET_NODE_PARAMS *nodeParams)
{
    gnode *nd = node_of_type(hNode, N_MEMSET);
    return nd ? memset_params(nd, nodeParams) : CUDA_ERROR_INVALID_VALUE;
}

/* New parameters for a host node (of a graph, or of an executable graph: exec_target). */
static CUresult host_set(gnode *nd, const CUDA_HOST_NODE_PARAMS *p)
{
    if (nd->type != N_HOST || !p || !p->fn)
        return CUDA_ERROR_INVALID_VALUE;
    nd->u.h = *p;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphHostNodeGetParams(CUgraphNode hNode, CUDA_HOST_NODE_PARAMS *nodeParams)
{
    const gnode *nd = node_of_type(hNode, N_HOST);
    if (!nodeParams || !nd)
        return CUDA_ERROR_INVALID_VALUE;
    *nodeParams = nd->u.h;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphHostNodeSetParams(CUgraphNode hNode, const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    if (!emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    return host_set((gnode *)hNode, nodeParams);
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
    return add_node(phGraphNode, hGraph, dependencies, numDependencies, &nd);
}

EMU_API CUresult cuGraphAddEmptyNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                     size_t numDependencies)
{
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    gnode nd = {.type = N_EMPTY};
    return add_node(phGraphNode, hGraph, dependencies, numDependencies, &nd);
}

/* The child graph is copied into the node (later changes to it do not reach the parent). */
EMU_API CUresult cuGraphAddChildGraphNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                          size_t numDependencies, CUgraph childGraph)
{
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    if (!emu_handle_is(childGraph, EMU_K_GRAPH) || childGraph == hGraph)
        return CUDA_ERROR_INVALID_VALUE;
    gnode nd = {.type = N_CHILD};
    rc = graph_clone((const emu_graph *)childGraph, &nd.u.child);
    if (nd.u.child)
        nd.u.child->node_owned = 1;
    if (rc)
        return rc;
    rc = add_node(phGraphNode, hGraph, dependencies, numDependencies, &nd);
    if (rc)
        graph_destroy(nd.u.child);
    return rc;
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
    return add_node(out, g, deps, n, &nd);
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

/* A new event for an event record or wait node (`type`) of a graph or an executable graph. */
static CUresult event_set(gnode *nd, int type, CUevent e)
{
    if (nd->type != type)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(e, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    nd->u.ev = e;
    return CUDA_SUCCESS;
}

static CUresult event_get(CUgraphNode hNode, int type, CUevent *out)
{
    const gnode *nd = node_of_type(hNode, type);
    if (!out || !nd)
        return CUDA_ERROR_INVALID_VALUE;
    *out = nd->u.ev;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphEventRecordNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
    return event_get(hNode, N_EVENT_RECORD, event_out);
}

EMU_API CUresult cuGraphEventWaitNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
    return event_get(hNode, N_EVENT_WAIT, event_out);
}

EMU_API CUresult cuGraphEventRecordNodeSetEvent(CUgraphNode hNode, CUevent event)
{
    if (!emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    return event_set((gnode *)hNode, N_EVENT_RECORD, event);
}

EMU_API CUresult cuGraphEventWaitNodeSetEvent(CUgraphNode hNode, CUevent event)
{
    if (!emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    return event_set((gnode *)hNode, N_EVENT_WAIT, event);
}

/* The driver's array protocol: with an array, fill up to *count entries and say how many there are only
 * when fewer were asked for (or none); without one, say how many. */
static void fill_count(size_t have, size_t *count, int with_array)
{
    if (!with_array || *count > have)
        *count = have;
}

/* ---- conditional nodes ---- */
static int cond_of(CUgraphConditionalHandle h)
{
    return h && emu_handle_is((void *)(uintptr_t)h, EMU_K_COND);
}

/* cudaGraphSetConditional from a kernel (ptx_exec.c): 0, or -1 for a value that is not a handle. */
static int set_conditional(uint64_t handle, unsigned value)
{
    if (!cond_of(handle))
        return -1;
    __atomic_store_n(&((emu_cond *)(uintptr_t)handle)->value, value, __ATOMIC_RELEASE);
    return 0;
}

EMU_API CUresult cuGraphConditionalHandleCreate(CUgraphConditionalHandle *pHandle_out, CUgraph hGraph, CUcontext ctx,
                                                unsigned int defaultLaunchValue, unsigned int flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!pHandle_out || (flags & ~(unsigned)CU_GRAPH_COND_ASSIGN_DEFAULT))
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    (void)ctx;
    ptx_graph_set_conditional = set_conditional;
    emu_cond *c = calloc(1, sizeof(*c));
    if (!c)
        return CUDA_ERROR_OUT_OF_MEMORY;
    c->value = c->def = defaultLaunchValue;
    c->flags = flags;
    c->graph = (emu_graph *)hGraph;
    if (emu_handle_add(c, EMU_K_COND)) {
        free(c);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pHandle_out = (CUgraphConditionalHandle)(uintptr_t)c; /* lives as long as the process (like its graph's) */
    return CUDA_SUCCESS;
}

static CUresult add_conditional(CUgraphNode *out, CUgraph hGraph, const CUgraphNode *deps, size_t ndeps,
                                CUDA_CONDITIONAL_NODE_PARAMS *p)
{
    if (!cond_of(p->handle))
        return CUDA_ERROR_INVALID_VALUE;
    unsigned t = (unsigned)p->type;
    if (t > CU_GRAPH_COND_TYPE_SWITCH || p->size == 0 || (t == CU_GRAPH_COND_TYPE_WHILE && p->size != 1) ||
        (t == CU_GRAPH_COND_TYPE_IF && p->size > 2) || p->size > 4096)
        return CUDA_ERROR_INVALID_VALUE;
    gnode nd = {.type = N_COND};
    nd.u.cond.h = (emu_cond *)(uintptr_t)p->handle;
    nd.u.cond.type = (int)t;
    nd.u.cond.size = p->size;
    nd.u.cond.bodies = calloc(p->size, sizeof(*nd.u.cond.bodies));
    CUresult rc = nd.u.cond.bodies ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
    for (unsigned i = 0; rc == CUDA_SUCCESS && i < p->size; i++)
        if (!(nd.u.cond.bodies[i] = graph_new()))
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        else
            nd.u.cond.bodies[i]->node_owned = 1;
    if (rc == CUDA_SUCCESS)
        rc = add_node(out, hGraph, deps, ndeps, &nd);
    if (rc) {
        payload_free(&nd);
        return rc;
    }
    p->phGraph_out = (CUgraph *)((gnode *)*out)->u.cond.bodies; /* owned by the node */
    return CUDA_SUCCESS;
}

/* cuGraphAddNode: every node kind through one entry point (the dispatch is graph_add_node.c, shared with
 * the client stub); edges other than plain ones are refused. */
static const tf_graph_add_calls g_add_calls = {
    .kernel = cuGraphAddKernelNode_v2, .memcpy = cuGraphAddMemcpyNode, .memset = cuGraphAddMemsetNode,
    .host = cuGraphAddHostNode, .child_graph = cuGraphAddChildGraphNode, .empty = cuGraphAddEmptyNode,
    .event_record = cuGraphAddEventRecordNode, .event_wait = cuGraphAddEventWaitNode,
    .mem_alloc = cuGraphAddMemAllocNode, .mem_free = cuGraphAddMemFreeNode, .conditional = add_conditional,
};

EMU_API CUresult cuGraphAddNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                   const CUgraphEdgeData *dependencyData, size_t numDependencies,
                                   CUgraphNodeParams *nodeParams)
{
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    if (!nodeParams)
        return CUDA_ERROR_INVALID_VALUE;
    return tf_graph_add_node(&g_add_calls, phGraphNode, hGraph, dependencies, dependencyData, numDependencies,
                             nodeParams);
}

EMU_API CUresult cuGraphAddNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                size_t numDependencies, CUgraphNodeParams *nodeParams)
{
    return cuGraphAddNode_v2(phGraphNode, hGraph, dependencies, NULL, numDependencies, nodeParams);
}

/* ---- memory alloc / free nodes ---- */
static CUresult alloc_params_check(const CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    if (!p || p->bytesize == 0 || (p->accessDescCount && !p->accessDescs))
        return CUDA_ERROR_INVALID_VALUE;
    const CUmemPoolProps *pp = &p->poolProps;
    if (pp->allocType != CU_MEM_ALLOCATION_TYPE_PINNED || !emu_location_is_device(&pp->location) ||
        pp->handleTypes != CU_MEM_HANDLE_TYPE_NONE)
        return CUDA_ERROR_INVALID_VALUE;
    return emu_access_list_check(p->accessDescs, p->accessDescCount,
                                 EMU_ACCESS_FLAG(CU_MEM_ACCESS_FLAGS_PROT_READWRITE) |
                                     EMU_ACCESS_FLAG(CU_MEM_ACCESS_FLAGS_PROT_READ),
                                 CUDA_ERROR_INVALID_VALUE);
}

EMU_API CUresult cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                        size_t numDependencies, CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc == CUDA_SUCCESS)
        rc = alloc_params_check(nodeParams);
    if (rc)
        return rc;
    gmem *m;
    rc = gmem_new(nodeParams->poolProps.location.id, nodeParams->bytesize, &m); /* the node's device */
    if (rc)
        return rc;
    m->props = nodeParams->poolProps;
    if (nodeParams->accessDescCount) {
        m->descs = malloc(nodeParams->accessDescCount * sizeof(*m->descs));
        if (!m->descs) {
            gmem_ref(m, -1);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        memcpy(m->descs, nodeParams->accessDescs, nodeParams->accessDescCount * sizeof(*m->descs));
        m->ndescs = nodeParams->accessDescCount;
    }
    gnode nd = {.type = N_MEM_ALLOC};
    nd.u.mem = m;
    rc = add_node(phGraphNode, hGraph, dependencies, numDependencies, &nd);
    if (rc) {
        gmem_ref(m, -1);
        return rc;
    }
    nodeParams->dptr = (CUdeviceptr)m->p;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphMemAllocNodeGetParams(CUgraphNode hNode, CUDA_MEM_ALLOC_NODE_PARAMS *params_out)
{
    if (!params_out || !emu_handle_is(hNode, EMU_K_GNODE) || ((gnode *)hNode)->type != N_MEM_ALLOC)
        return CUDA_ERROR_INVALID_VALUE;
    const gmem *m = ((gnode *)hNode)->u.mem;
    memset(params_out, 0, sizeof(*params_out));
    params_out->poolProps = m->props;
    params_out->accessDescs = m->descs;
    params_out->accessDescCount = m->ndescs;
    params_out->bytesize = m->size;
    params_out->dptr = (CUdeviceptr)m->p;
    return CUDA_SUCCESS;
}

/* dptr must be graph memory (an alloc node's address); freeing it once per graph is the caller's rule. */
EMU_API CUresult cuGraphAddMemFreeNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                       size_t numDependencies, CUdeviceptr dptr)
{
    CUresult rc = add_prologue(hGraph, dependencies, numDependencies, phGraphNode);
    if (rc)
        return rc;
    if (!emu_graph_mem_is(dptr))
        return CUDA_ERROR_INVALID_VALUE;
    gnode nd = {.type = N_MEM_FREE};
    nd.u.freed = dptr;
    return add_node(phGraphNode, hGraph, dependencies, numDependencies, &nd);
}

EMU_API CUresult cuGraphMemFreeNodeGetParams(CUgraphNode hNode, CUdeviceptr *dptr_out)
{
    if (!dptr_out || !emu_handle_is(hNode, EMU_K_GNODE) || ((gnode *)hNode)->type != N_MEM_FREE)
        return CUDA_ERROR_INVALID_VALUE;
    *dptr_out = ((gnode *)hNode)->u.freed;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGraphMemTrim(CUdevice device)
{
    CUresult rc = emu_check_device(device);
    if (rc)
        return rc;
    uint64_t u, r;
    emu_lock();
    for (gmem *m = g_gmem; m; m = m->next)
        if (!m->live)
            m->mapped = 0; /* not outstanding: its memory goes back (the next launch maps it again) */
    gm_totals(&u, &r);
    emu_unlock();
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
    CUresult rc = emu_check_device(device);
    if (rc)
        return rc;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t used, reserved, v;
    emu_lock();
    gm_totals(&used, &reserved);
    switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT: v = used; break;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH: v = g_gm_used_high; break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT: v = reserved; break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH: v = g_gm_reserved_high; break;
    default: rc = CUDA_ERROR_INVALID_VALUE; break;
    }
    emu_unlock();
    if (rc == CUDA_SUCCESS)
        *(cuuint64_t *)value = v;
    return rc;
}

/* Only the high-water marks can be set, and only to 0 (they restart from the current value). */
EMU_API CUresult cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
    CUresult rc = emu_check_device(device);
    if (rc)
        return rc;
    if (!value || *(const cuuint64_t *)value != 0 ||
        (attr != CU_GRAPH_MEM_ATTR_USED_MEM_HIGH && attr != CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH))
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t used, reserved;
    emu_lock();
    if (attr == CU_GRAPH_MEM_ATTR_USED_MEM_HIGH)
        g_gm_used_high = 0;
    else
        g_gm_reserved_high = 0;
    gm_totals(&used, &reserved);
    emu_unlock();
    return CUDA_SUCCESS;
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
    fill_count(g->n, numNodes, nodes != NULL);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode *rootNodes, size_t *numRootNodes)
{
    if (!numRootNodes)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_graph *g = (emu_graph *)hGraph;
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->nodes[i]->ndeps)
            continue;
        if (rootNodes && k < *numRootNodes)
            rootNodes[k] = (CUgraphNode)g->nodes[i];
        k++;
    }
    fill_count(k, numRootNodes, rootNodes != NULL);
    return CUDA_SUCCESS;
}

/* Every edge query (cuGraphGetEdges, cuGraphNodeGetDependencies, cuGraphNodeGetDependentNodes, each
 * version): the edges of g into `into` (when not NULL) and out of `outof` (when not NULL), in the order
 * of the nodes then of their dependencies. With from/to (either may be NULL when the caller does not want
 * that end), up to *count edges are written, the rest of the *count entries NULL, and *count becomes the
 * number written; without both, *count becomes the number of edges. Edge data: every edge is a default
 * one here (cuGraphAddDependencies_v2 refuses others), so the data is zero and no query is lossy. */
static void edge_query(const emu_graph *g, const gnode *into, const gnode *outof, CUgraphNode *from,
                       CUgraphNode *to, CUgraphEdgeData *edgeData, size_t *count)
{
    const int fill = from || to;
    size_t k = 0;
    emu_lock();
    for (size_t i = 0; i < g->n; i++) {
        const gnode *nd = g->nodes[i];
        if (into && nd != into)
            continue;
        for (size_t d = 0; d < nd->ndeps; d++) {
            if (outof && nd->deps[d] != outof)
                continue;
            if (fill && k < *count) {
                if (from)
                    from[k] = (CUgraphNode)nd->deps[d];
                if (to)
                    to[k] = (CUgraphNode)nd;
                if (edgeData)
                    memset(&edgeData[k], 0, sizeof(edgeData[k]));
            }
            k++;
        }
    }
    emu_unlock();
    for (size_t j = k; fill && j < *count; j++) {
        if (from)
            from[j] = NULL;
        if (to)
            to[j] = NULL;
        if (edgeData)
            memset(&edgeData[j], 0, sizeof(edgeData[j]));
    }
    if (!fill || *count > k)
        *count = k;
}

EMU_API CUresult cuGraphGetEdges_v2(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, CUgraphEdgeData *edgeData,
                                    size_t *numEdges)
{
    if (!numEdges || (!from) != (!to) || (edgeData && !from))
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    edge_query((const emu_graph *)hGraph, NULL, NULL, from, to, edgeData, numEdges);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, size_t *numEdges)
{
    return cuGraphGetEdges_v2(hGraph, from, to, NULL, numEdges);
}

/* The edges into (dependents 0) or out of (1) one node. A bogus node is INVALID_HANDLE, as cuGraphNodeGetType's,
 * and as the GPU worker's handle check answers through the stub (cuda.h lists INVALID_VALUE only). */
static CUresult node_edges(CUgraphNode hNode, int dependents, CUgraphNode *nodes, CUgraphEdgeData *edgeData,
                           size_t *count)
{
    if (!emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!count || (edgeData && !nodes))
        return CUDA_ERROR_INVALID_VALUE;
    const gnode *nd = (const gnode *)hNode;
    if (dependents)
        edge_query(nd->graph, NULL, nd, NULL, nodes, edgeData, count);
    else
        edge_query(nd->graph, nd, NULL, nodes, NULL, edgeData, count);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphNodeGetDependencies_v2(CUgraphNode hNode, CUgraphNode *dependencies,
                                               CUgraphEdgeData *edgeData, size_t *numDependencies)
{
    return node_edges(hNode, 0, dependencies, edgeData, numDependencies);
}

EMU_API CUresult cuGraphNodeGetDependencies(CUgraphNode hNode, CUgraphNode *dependencies, size_t *numDependencies)
{
    return node_edges(hNode, 0, dependencies, NULL, numDependencies);
}

EMU_API CUresult cuGraphNodeGetDependentNodes_v2(CUgraphNode hNode, CUgraphNode *dependentNodes,
                                                 CUgraphEdgeData *edgeData, size_t *numDependentNodes)
{
    return node_edges(hNode, 1, dependentNodes, edgeData, numDependentNodes);
}

EMU_API CUresult cuGraphNodeGetDependentNodes(CUgraphNode hNode, CUgraphNode *dependentNodes, size_t *numDependentNodes)
{
    return node_edges(hNode, 1, dependentNodes, NULL, numDependentNodes);
}

/* Only default edges exist here: edge data must be absent or all zero. */
static int plain_edges(const CUgraphEdgeData *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        if (e[i].from_port || e[i].to_port || e[i].type)
            return 0;
    return 1;
}

static CUresult deps_change(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                            const CUgraphEdgeData *edgeData, size_t n, int add)
{
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_graph *g = (emu_graph *)hGraph;
    if (n && (!from || !to))
        return CUDA_ERROR_INVALID_VALUE;
    if (!plain_edges(edgeData, n))
        return CUDA_ERROR_NOT_SUPPORTED;
    for (size_t i = 0; i < n; i++)
        if (!node_of(from[i], g) || !node_of(to[i], g) || from[i] == to[i])
            return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < n; i++) {
        gnode *t = (gnode *)to[i];
        if (add) {
            CUresult rc = dep_add(t, (gnode *)from[i]);
            if (rc)
                return rc;
            continue;
        }
        size_t d = 0;
        while (d < t->ndeps && t->deps[d] != (gnode *)from[i])
            d++;
        if (d == t->ndeps)
            return CUDA_ERROR_INVALID_VALUE; /* no such edge */
        memmove(&t->deps[d], &t->deps[d + 1], (t->ndeps - d - 1) * sizeof(t->deps[0]));
        t->ndeps--;
    }
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphAddDependencies_v2(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                                           const CUgraphEdgeData *edgeData, size_t numDependencies)
{
    return deps_change(hGraph, from, to, edgeData, numDependencies, 1);
}

EMU_API CUresult cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                                        size_t numDependencies)
{
    return deps_change(hGraph, from, to, NULL, numDependencies, 1);
}

EMU_API CUresult cuGraphRemoveDependencies_v2(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                                              const CUgraphEdgeData *edgeData, size_t numDependencies)
{
    return deps_change(hGraph, from, to, edgeData, numDependencies, 0);
}

EMU_API CUresult cuGraphRemoveDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                                           size_t numDependencies)
{
    return deps_change(hGraph, from, to, NULL, numDependencies, 0);
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
    case N_CHILD: *type = CU_GRAPH_NODE_TYPE_GRAPH; break;
    case N_MEM_ALLOC: *type = CU_GRAPH_NODE_TYPE_MEM_ALLOC; break;
    case N_MEM_FREE: *type = CU_GRAPH_NODE_TYPE_MEM_FREE; break;
    case N_COND: *type = CU_GRAPH_NODE_TYPE_CONDITIONAL; break;
    default: *type = CU_GRAPH_NODE_TYPE_EMPTY; break;
    }
    return CUDA_SUCCESS;
}

/* cuGraphNodeSetParams of a child graph node: the node owns a copy of the new graph; the copy it owned (the
 * graph cuGraphChildGraphNodeGetGraph gave out) dies. */
static CUresult child_set(gnode *nd, CUgraph childGraph)
{
    if (nd->type != N_CHILD || !emu_handle_is(childGraph, EMU_K_GRAPH) || (emu_graph *)childGraph == nd->graph ||
        (emu_graph *)childGraph == nd->u.child)
        return CUDA_ERROR_INVALID_VALUE;
    emu_graph *copy;
    CUresult rc = graph_clone((const emu_graph *)childGraph, &copy);
    if (rc)
        return rc;
    copy->node_owned = 1;
    graph_destroy(nd->u.child);
    nd->u.child = copy;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphChildGraphNodeGetGraph(CUgraphNode hNode, CUgraph *phGraph)
{
    if (!phGraph || !emu_handle_is(hNode, EMU_K_GNODE) || ((gnode *)hNode)->type != N_CHILD)
        return CUDA_ERROR_INVALID_VALUE;
    *phGraph = (CUgraph)((gnode *)hNode)->u.child;
    return CUDA_SUCCESS;
}

static const char *type_name(int t)
{
    static const char *const names[] = {"?", "KERNEL", "MEMCPY", "MEMCPY", "MEMSET", "HOST", "EMPTY",
                                        "EVENT_RECORD", "WAIT_EVENT", "GRAPH", "MEM_ALLOC", "MEM_FREE",
                                        "CONDITIONAL"};
    return t > 0 && t <= N_COND ? names[t] : "?";
}

static void dot_nodes(FILE *f, const emu_graph *g, const char *prefix)
{
    for (size_t i = 0; i < g->n; i++) {
        const gnode *nd = g->nodes[i];
        if (nd->type == N_KERNEL)
            fprintf(f, "  \"%s%zu\" [label=\"%zu KERNEL %s <<<(%u,%u,%u),(%u,%u,%u)>>>\"];\n", prefix, i, i,
                    nd->u.k.f->name, nd->u.k.grid[0], nd->u.k.grid[1], nd->u.k.grid[2], nd->u.k.block[0],
                    nd->u.k.block[1], nd->u.k.block[2]);
        else
            fprintf(f, "  \"%s%zu\" [label=\"%zu %s\"];\n", prefix, i, i, type_name(nd->type));
        g->nodes[i]->idx = i;
    }
    for (size_t i = 0; i < g->n; i++)
        for (size_t d = 0; d < g->nodes[i]->ndeps; d++)
            fprintf(f, "  \"%s%zu\" -> \"%s%zu\";\n", prefix, g->nodes[i]->deps[d]->idx, prefix, i);
}

EMU_API CUresult cuGraphDebugDotPrint(CUgraph hGraph, const char *path, unsigned int flags)
{
    (void)flags;
    if (!path)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    FILE *f = fopen(path, "w");
    if (!f)
        return CUDA_ERROR_OPERATING_SYSTEM;
    fprintf(f, "digraph emu_graph {\n");
    dot_nodes(f, (const emu_graph *)hGraph, "n");
    fprintf(f, "}\n");
    return fclose(f) ? CUDA_ERROR_OPERATING_SYSTEM : CUDA_SUCCESS;
}

/* ---- instantiate / launch ---- */
/* The next node of x, zeroed (x->nodes grows by doubling; *cap is its capacity), or NULL without memory. */
static gnode *exec_slot(gexec *x, size_t *cap)
{
    if (x->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        gnode *nn = realloc(x->nodes, ncap * sizeof(*nn));
        if (!nn)
            return NULL;
        x->nodes = nn;
        *cap = ncap;
    }
    gnode *c = &x->nodes[x->n];
    memset(c, 0, sizeof(*c));
    return c;
}

/* c's dep_at: the places of nd's dependencies' copies (first: by node index, set as flatten places them). */
static CUresult dep_places(gnode *c, const gnode *nd, const size_t *first)
{
    if (nd->ndeps == 0)
        return CUDA_SUCCESS;
    c->dep_at = malloc(nd->ndeps * sizeof(*c->dep_at));
    if (!c->dep_at)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t d = 0; d < nd->ndeps; d++)
        c->dep_at[d] = first[nd->deps[d]->idx];
    c->ndep_at = nd->ndeps;
    return CUDA_SUCCESS;
}

/* Kahn's order over the edges, ties in insertion order; child graphs are inlined. Each copy's origin is
 * the node it was made from (how an executable graph's node is found from a graph node). */
static CUresult flatten(const emu_graph *g, gexec *x, size_t *cap, int depth)
{
    if (depth > 16)
        return CUDA_ERROR_INVALID_VALUE;
    size_t n = g->n, placed = 0;
    size_t *indeg = calloc(n ? n : 1, sizeof(*indeg));
    size_t *queue = calloc(n ? n : 1, sizeof(*queue));
    size_t *first = calloc(n ? n : 1, sizeof(*first)); /* where each node's (first) copy went */
    CUresult rc = indeg && queue && first ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < n; i++)
        g->nodes[i]->idx = i;
    for (size_t i = 0; rc == CUDA_SUCCESS && i < n; i++)
        indeg[i] = g->nodes[i]->ndeps;
    size_t head = 0, tail = 0;
    for (size_t i = 0; rc == CUDA_SUCCESS && i < n; i++)
        if (indeg[i] == 0)
            queue[tail++] = i;
    while (rc == CUDA_SUCCESS && head < tail) {
        const gnode *nd = g->nodes[queue[head++]];
        placed++;
        first[nd->idx] = x->n;
        if (nd->type == N_CHILD) {
            rc = flatten(nd->u.child, x, cap, depth + 1);
        } else if (nd->type == N_COND) {
            gnode *c = exec_slot(x, cap);
            if (!c) {
                rc = CUDA_ERROR_OUT_OF_MEMORY;
                break;
            }
            c->type = N_COND;
            c->u.cond = nd->u.cond;
            c->u.cond.bodies = NULL;
            c->u.cond.xs = calloc(nd->u.cond.size, sizeof(*c->u.cond.xs));
            c->origin = nd;
            x->n++;
            if (!c->u.cond.xs || dep_places(c, nd, first) != CUDA_SUCCESS) {
                rc = CUDA_ERROR_OUT_OF_MEMORY;
                break;
            }
            for (unsigned b = 0; b < nd->u.cond.size && rc == CUDA_SUCCESS; b++) {
                size_t bcap = 0;
                rc = flatten(nd->u.cond.bodies[b], &c->u.cond.xs[b], &bcap, depth + 1);
            }
        } else {
            gnode *c = exec_slot(x, cap);
            if (!c) {
                rc = CUDA_ERROR_OUT_OF_MEMORY;
                break;
            }
            rc = payload_copy(c, nd);
            c->origin = nd;
            x->n++;
            if (rc == CUDA_SUCCESS)
                rc = dep_places(c, nd, first);
            if (rc)
                break;
        }
        /* release the nodes that wait on this one (n^2 only in the number of edges scanned) */
        for (size_t i = 0; i < n; i++)
            for (size_t d = 0; d < g->nodes[i]->ndeps; d++)
                if (g->nodes[i]->deps[d] == nd && --indeg[i] == 0)
                    queue[tail++] = i;
    }
    if (rc == CUDA_SUCCESS && placed != n)
        rc = CUDA_ERROR_INVALID_VALUE; /* a cycle */
    free(indeg);
    free(queue);
    free(first);
    return rc;
}

static void exec_free_nodes(gnode *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        payload_free(&nodes[i]);
        free(nodes[i].dep_at);
    }
    free(nodes);
}

/* The user-object references of g and of the graphs inside its nodes (child graphs, conditional bodies),
 * taken anew into out: what an executable graph of g holds. */
static CUresult graph_urefs_collect(const emu_graph *g, emu_uref_set *out)
{
    CUresult rc = emu_urefs_copy(out, &g->urefs);
    for (size_t i = 0; i < g->n && rc == CUDA_SUCCESS; i++) {
        const gnode *nd = g->nodes[i];
        if (nd->type == N_CHILD)
            rc = graph_urefs_collect(nd->u.child, out);
        for (unsigned b = 0; nd->type == N_COND && b < nd->u.cond.size && rc == CUDA_SUCCESS; b++)
            rc = graph_urefs_collect(nd->u.cond.bodies[b], out);
    }
    return rc;
}

emu_uref_set *emu_graph_urefs(CUgraph hGraph)
{
    return emu_handle_is(hGraph, EMU_K_GRAPH) ? &((emu_graph *)hGraph)->urefs : NULL;
}

static CUresult instantiate(CUgraphExec *out, CUgraph hGraph, unsigned long long flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    gexec *x = calloc(1, sizeof(*x));
    if (!x)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t cap = 0;
    emu_lock();
    rc = flatten((const emu_graph *)hGraph, x, &cap, 0);
    if (rc == CUDA_SUCCESS)
        rc = graph_urefs_collect((const emu_graph *)hGraph, &x->urefs);
    emu_unlock();
    x->flags = flags;
    if (rc == CUDA_SUCCESS && emu_handle_add(x, EMU_K_GEXEC))
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        exec_free_nodes(x->nodes, x->n);
        emu_urefs_clear(&x->urefs);
        free(x);
        return rc;
    }
    *out = (CUgraphExec)x;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    /* auto-free-on-launch, upload, device launch, priority: nothing to do here */
    return instantiate(phGraphExec, hGraph, flags);
}

EMU_API CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                                    char *logBuffer, size_t bufferSize)
{
    if (phErrorNode)
        *phErrorNode = NULL;
    if (logBuffer && bufferSize)
        logBuffer[0] = 0;
    return instantiate(phGraphExec, hGraph, 0);
}

EMU_API CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                                       char *logBuffer, size_t bufferSize)
{
    return cuGraphInstantiate(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize);
}

EMU_API CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                              CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    CUresult rc = instantiate(phGraphExec, hGraph, instantiateParams ? instantiateParams->flags : 0);
    if (instantiateParams) {
        instantiateParams->result_out = rc == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
        instantiateParams->hErrNode_out = NULL;
    }
    return rc;
}

EMU_API CUresult cuGraphExecGetFlags(CUgraphExec hGraphExec, cuuint64_t *flags)
{
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hGraphExec, EMU_K_GEXEC))
        return CUDA_ERROR_INVALID_HANDLE;
    *flags = ((gexec *)hGraphExec)->flags;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    if (!emu_handle_is(hGraphExec, EMU_K_GEXEC))
        return CUDA_ERROR_INVALID_HANDLE;
    gexec *x = (gexec *)hGraphExec;
    emu_sq_idle_all(); /* a queued launch of it runs first, so do its user objects' destructors */
    emu_handle_del(x);
    exec_free_nodes(x->nodes, x->n);
    emu_urefs_clear(&x->urefs);
    free(x);
    return CUDA_SUCCESS;
}

/* The executable graph's copy of graph node hNode (NULL if it has none). */
static gnode *exec_node(gexec *x, CUgraphNode hNode)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->nodes[i].origin == (const gnode *)hNode)
            return &x->nodes[i];
    return NULL;
}

EMU_API CUresult cuGraphExecKernelNodeSetParams_v2(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                   const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    gnode *nd;
    CUresult rc = exec_target(hGraphExec, hNode, &nd);
    if (rc)
        return rc;
    emu_sq_idle_all(); /* launches already queued use the old parameters */
    return kernel_set(nd, nodeParams);
}

EMU_API CUresult cuGraphExecHostNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                              const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    gnode *nd;
    CUresult rc = exec_target(hGraphExec, hNode, &nd);
    if (rc)
        return rc;
    emu_sq_idle_all(); /* launches already queued use the old parameters */
    return host_set(nd, nodeParams);
}

/* Whether an executable graph's memset node old may take fresh's parameters (the driver's rules, for
 * cuGraphExecMemsetNodeSetParams and cuGraphExecUpdate): the address and the value may change; a 2D memset
 * keeps its shape, a 1D one stays 1D (its height cannot change). */
static int memset_update_ok(const gnode *old, const gnode *fresh)
{
    int shape_kept = fresh->u.m.width == old->u.m.width && fresh->u.m.height == old->u.m.height &&
                     fresh->u.m.elem == old->u.m.elem && fresh->u.m.pitch == old->u.m.pitch;
    return old->u.m.height > 1 ? shape_kept : fresh->u.m.height == 1;
}

/* memset_update_ok's rules; zero-sized memsets are refused. */
EMU_API CUresult cuGraphExecMemsetNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                const CUDA_MEMSET_NODE_PARAMS *memsetParams, CUcontext ctx)
{
    (void)ctx;
    gnode *nd;
    CUresult rc = exec_target(hGraphExec, hNode, &nd);
    if (rc)
        return rc;
    gnode fresh = {.type = N_MEMSET};
    if (nd->type != N_MEMSET || memset_params(&fresh, memsetParams) != CUDA_SUCCESS || fresh.u.m.width == 0 ||
        fresh.u.m.height == 0 || !memset_update_ok(nd, &fresh))
        return CUDA_ERROR_INVALID_VALUE;
    emu_sq_idle_all(); /* launches already queued use the old parameters */
    nd->u.m = fresh.u.m;
    return CUDA_SUCCESS;
}

static CUresult exec_event_set(CUgraphExec hGraphExec, CUgraphNode hNode, int type, CUevent e)
{
    gnode *nd;
    CUresult rc = exec_target(hGraphExec, hNode, &nd);
    if (rc)
        return rc;
    emu_sq_idle_all(); /* launches already queued use the old event */
    return event_set(nd, type, e);
}

EMU_API CUresult cuGraphExecEventRecordNodeSetEvent(CUgraphExec hGraphExec, CUgraphNode hNode, CUevent event)
{
    return exec_event_set(hGraphExec, hNode, N_EVENT_RECORD, event);
}

EMU_API CUresult cuGraphExecEventWaitNodeSetEvent(CUgraphExec hGraphExec, CUgraphNode hNode, CUevent event)
{
    return exec_event_set(hGraphExec, hNode, N_EVENT_WAIT, event);
}

/* Whether fresh[0..n) can take the place of old[0..n) in an executable graph: cuGraphExecUpdate's rules that
 * the emulator keeps, topology first (pairs in flatten's order: the same number of dependencies, paired in
 * edge order, at the same places; old's places are `base` further on), then each pair: the same node kind,
 * a memset's shape kept (memset_update_ok; a kernel's function may change, CUDA 11.2 on). On a failure
 * info->errorNode is fresh's node (a graph node of the new graph) and, for a dependency that does not match,
 * info->errorFromNode that dependency. */
static CUgraphExecUpdateResult exec_compare(const gnode *old, const gnode *fresh, size_t n, size_t base,
                                            CUgraphExecUpdateResultInfo *info)
{
    info->errorNode = info->errorFromNode = NULL;
    for (size_t i = 0; i < n; i++) {
        const gnode *origin = fresh[i].origin;
        info->errorNode = (CUgraphNode)origin;
        if (fresh[i].ndep_at != old[i].ndep_at)
            return CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
        for (size_t d = 0; d < fresh[i].ndep_at; d++)
            if (fresh[i].dep_at[d] + base != old[i].dep_at[d]) {
                info->errorFromNode = (CUgraphNode)origin->deps[d];
                return CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
            }
    }
    for (size_t i = 0; i < n; i++) {
        int ot = old[i].type == N_COPY ? N_COPY3D : old[i].type, ft = fresh[i].type == N_COPY ? N_COPY3D : fresh[i].type;
        info->errorNode = (CUgraphNode)fresh[i].origin;
        if (ot != ft)
            return CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED;
        if (ot == N_MEMSET && !memset_update_ok(&old[i], &fresh[i]))
            return CU_GRAPH_EXEC_UPDATE_ERROR_PARAMETERS_CHANGED;
    }
    info->errorNode = NULL;
    return CU_GRAPH_EXEC_UPDATE_SUCCESS;
}

/* Moves fresh's payloads into old[0..n) (the old ones freed, fresh's emptied); each node keeps its origin (it
 * still answers to the node of the graph it was instantiated from), its enabled state and its edges. */
static void exec_take(gnode *old, gnode *fresh, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        payload_free(&old[i]);
        old[i].type = fresh[i].type;
        old[i].u = fresh[i].u;
        fresh[i].type = N_EMPTY;
    }
}

/* The nodes of hNode's child graph are inlined in the executable graph, in the order flatten gives them: the
 * run of the executable graph's nodes made from them takes the parameters of childGraph's nodes, whose
 * topology and insertion order must match (CUDA_ERROR_INVALID_VALUE otherwise). */
EMU_API CUresult cuGraphExecChildGraphNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode, CUgraph childGraph)
{
    if (!emu_handle_is(hGraphExec, EMU_K_GEXEC))
        return CUDA_ERROR_INVALID_HANDLE;
    const gnode *nd = node_of_type(hNode, N_CHILD);
    if (!nd || !emu_handle_is(childGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_VALUE;
    gexec *x = (gexec *)hGraphExec, cur = {0}, fresh = {0};
    size_t ccap = 0, fcap = 0;
    emu_lock();
    CUresult rc = flatten(nd->u.child, &cur, &ccap, 1);
    if (rc == CUDA_SUCCESS)
        rc = flatten((const emu_graph *)childGraph, &fresh, &fcap, 1);
    emu_unlock();
    size_t at = 0;
    while (rc == CUDA_SUCCESS && cur.n && at < x->n && x->nodes[at].origin != cur.nodes[0].origin)
        at++;
    CUgraphExecUpdateResultInfo info;
    if (rc == CUDA_SUCCESS && (fresh.n != cur.n || (cur.n && at + cur.n > x->n) ||
                               exec_compare(&x->nodes[at], fresh.nodes, fresh.n, at, &info) != CU_GRAPH_EXEC_UPDATE_SUCCESS))
        rc = CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; rc == CUDA_SUCCESS && i < cur.n; i++)
        if (x->nodes[at + i].origin != cur.nodes[i].origin)
            rc = CUDA_ERROR_INVALID_VALUE; /* not this executable graph's child graph node */
    if (rc == CUDA_SUCCESS) {
        emu_sq_idle_all(); /* launches already queued use the old parameters */
        exec_take(&x->nodes[at], fresh.nodes, fresh.n);
    }
    exec_free_nodes(fresh.nodes, fresh.n);
    exec_free_nodes(cur.nodes, cur.n);
    return rc;
}

/* Only kernel, memcpy and memset nodes can be disabled (the driver's note); a disabled one runs as an empty
 * node until enabled again, its parameters kept. */
static CUresult enable_target(CUgraphExec hGraphExec, CUgraphNode hNode, gnode **out)
{
    CUresult rc = exec_target(hGraphExec, hNode, out);
    if (rc)
        return rc;
    int t = (*out)->type;
    return t == N_KERNEL || t == N_COPY || t == N_COPY3D || t == N_MEMSET ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EMU_API CUresult cuGraphNodeSetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode, unsigned int isEnabled)
{
    gnode *nd;
    CUresult rc = enable_target(hGraphExec, hNode, &nd);
    if (rc)
        return rc;
    emu_sq_idle_all(); /* launches already queued run as they were */
    nd->disabled = !isEnabled;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuGraphNodeGetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode, unsigned int *isEnabled)
{
    gnode *nd;
    CUresult rc = enable_target(hGraphExec, hNode, &nd);
    if (rc)
        return rc;
    if (!isEnabled)
        return CUDA_ERROR_INVALID_VALUE;
    *isEnabled = !nd->disabled;
    return CUDA_SUCCESS;
}

/* cuGraphNodeSetParams / cuGraphExecNodeSetParams: each kind to its set call (graph_add_node.c). */
static CUresult set_kernel(CUgraphExec x, CUgraphNode n, const CUDA_KERNEL_NODE_PARAMS *p)
{
    return x ? cuGraphExecKernelNodeSetParams_v2(x, n, p) : cuGraphKernelNodeSetParams_v2(n, p);
}

static CUresult set_memcpy(CUgraphExec x, CUgraphNode n, const CUDA_MEMCPY3D *p, CUcontext ctx)
{
    return x ? cuGraphExecMemcpyNodeSetParams(x, n, p, ctx) : cuGraphMemcpyNodeSetParams(n, p);
}

static CUresult set_memset(CUgraphExec x, CUgraphNode n, const CUDA_MEMSET_NODE_PARAMS *p, CUcontext ctx)
{
    return x ? cuGraphExecMemsetNodeSetParams(x, n, p, ctx) : cuGraphMemsetNodeSetParams(n, p);
}

static CUresult set_host(CUgraphExec x, CUgraphNode n, const CUDA_HOST_NODE_PARAMS *p)
{
    return x ? cuGraphExecHostNodeSetParams(x, n, p) : cuGraphHostNodeSetParams(n, p);
}

static CUresult set_child(CUgraphExec x, CUgraphNode n, CUgraph g)
{
    return x ? cuGraphExecChildGraphNodeSetParams(x, n, g) : child_set((gnode *)n, g);
}

static CUresult set_event_record(CUgraphExec x, CUgraphNode n, CUevent e)
{
    return x ? cuGraphExecEventRecordNodeSetEvent(x, n, e) : cuGraphEventRecordNodeSetEvent(n, e);
}

static CUresult set_event_wait(CUgraphExec x, CUgraphNode n, CUevent e)
{
    return x ? cuGraphExecEventWaitNodeSetEvent(x, n, e) : cuGraphEventWaitNodeSetEvent(n, e);
}

static const tf_graph_set_calls g_set_calls = {
    .kernel = set_kernel, .memcpy = set_memcpy, .memset = set_memset, .host = set_host, .child_graph = set_child,
    .event_record = set_event_record, .event_wait = set_event_wait,
};

EMU_API CUresult cuGraphNodeSetParams(CUgraphNode hNode, CUgraphNodeParams *nodeParams)
{
    if (!nodeParams || !emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    return tf_graph_set_node(&g_set_calls, NULL, hNode, nodeParams);
}

EMU_API CUresult cuGraphExecNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode, CUgraphNodeParams *nodeParams)
{
    if (!emu_handle_is(hGraphExec, EMU_K_GEXEC))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!nodeParams || !emu_handle_is(hNode, EMU_K_GNODE))
        return CUDA_ERROR_INVALID_VALUE;
    return tf_graph_set_node(&g_set_calls, hGraphExec, hNode, nodeParams);
}

/* exec_compare's rules (node counts first: a different count fails with errorNode NULL): hGraph's parameters
 * replace the executable graph's in place, its nodes still answering to the graph it was instantiated from
 * (CUDA pairs hGraph's nodes with them by topology), and hGraph's user-object references replace the ones
 * it held (CUDA Programming Guide, "CUDA User Objects"); on a failure nothing changes. */
EMU_API CUresult cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph, CUgraphExecUpdateResultInfo *resultInfo)
{
    if (!resultInfo)
        return CUDA_ERROR_INVALID_VALUE;
    memset(resultInfo, 0, sizeof(*resultInfo));
    if (!emu_handle_is(hGraphExec, EMU_K_GEXEC) || !emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    gexec *x = (gexec *)hGraphExec;
    gexec fresh = {0};
    emu_uref_set urefs = {0};
    size_t cap = 0;
    emu_sq_idle_all(); /* launches already queued use the old parameters */
    emu_lock();
    CUresult rc = flatten((const emu_graph *)hGraph, &fresh, &cap, 0);
    if (rc == CUDA_SUCCESS)
        rc = graph_urefs_collect((const emu_graph *)hGraph, &urefs);
    emu_unlock();
    if (rc) {
        exec_free_nodes(fresh.nodes, fresh.n);
        emu_urefs_clear(&urefs);
        resultInfo->result = CU_GRAPH_EXEC_UPDATE_ERROR;
        return rc;
    }
    CUgraphExecUpdateResult why = CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
    if (fresh.n == x->n)
        why = exec_compare(x->nodes, fresh.nodes, x->n, 0, resultInfo);
    resultInfo->result = why;
    if (why == CU_GRAPH_EXEC_UPDATE_SUCCESS) {
        exec_take(x->nodes, fresh.nodes, x->n);
        emu_urefs_clear(&x->urefs);
        x->urefs = urefs;
    } else {
        emu_urefs_clear(&urefs);
    }
    exec_free_nodes(fresh.nodes, fresh.n);
    return why == CU_GRAPH_EXEC_UPDATE_SUCCESS ? CUDA_SUCCESS : CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
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
        return emu_launch_node((CUfunction)nd->u.k.f, nd->u.k.grid, nd->u.k.block, (unsigned)nd->u.k.shmem, extra,
                               nd->u.k.cooperative);
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
    case N_MEM_ALLOC:
        gm_set_live(nd->u.mem->p, 1);
        return CUDA_SUCCESS;
    case N_MEM_FREE:
        gm_set_live(nd->u.freed, 0);
        return CUDA_SUCCESS;
    default:
        return CUDA_SUCCESS; /* empty, event wait: ordering is already sequential */
    }
}

static CUresult run_exec(const gexec *x);

static CUresult run_cond(const gnode *nd)
{
    const emu_cond *h = nd->u.cond.h;
    unsigned v = __atomic_load_n(&h->value, __ATOMIC_ACQUIRE);
    switch (nd->u.cond.type) {
    case CU_GRAPH_COND_TYPE_IF:
        if (v)
            return run_exec(&nd->u.cond.xs[0]);
        return nd->u.cond.size == 2 ? run_exec(&nd->u.cond.xs[1]) : CUDA_SUCCESS;
    case CU_GRAPH_COND_TYPE_WHILE:
        while (__atomic_load_n(&h->value, __ATOMIC_ACQUIRE)) {
            CUresult rc = run_exec(&nd->u.cond.xs[0]);
            if (rc)
                return rc;
        }
        return CUDA_SUCCESS;
    default: /* switch: body v if there is one */
        return v < nd->u.cond.size ? run_exec(&nd->u.cond.xs[v]) : CUDA_SUCCESS;
    }
}

static CUresult run_exec(const gexec *x)
{
    for (size_t i = 0; i < x->n; i++) {
        if (x->nodes[i].disabled)
            continue; /* an empty node */
        CUresult rc = x->nodes[i].type == N_COND ? run_cond(&x->nodes[i]) : run_node(&x->nodes[i]);
        if (rc)
            return rc;
    }
    return CUDA_SUCCESS;
}

/* CU_GRAPH_COND_ASSIGN_DEFAULT handles of every conditional node, bodies included, start each launch at
 * their default. */
static void reset_conds(const gexec *x)
{
    for (size_t i = 0; i < x->n; i++) {
        const gnode *nd = &x->nodes[i];
        if (nd->type != N_COND)
            continue;
        if (nd->u.cond.h->flags & CU_GRAPH_COND_ASSIGN_DEFAULT)
            __atomic_store_n(&nd->u.cond.h->value, nd->u.cond.h->def, __ATOMIC_RELEASE);
        for (unsigned b = 0; b < nd->u.cond.size; b++)
            reset_conds(&nd->u.cond.xs[b]);
    }
}

/* A graph launch is one operation of its stream: the stream's thread runs the nodes in order (the work
 * they issue runs inline there, emu_stream_queue.c). The exec stays valid while queued: destroying or
 * updating one waits for the device first. */
typedef struct graph_op {
    const gexec *x;
} graph_op;

static CUresult run_graph(void *a, CUresult status)
{
    const gexec *x = ((const graph_op *)a)->x;
    if (status)
        return status;
    reset_conds(x);
    return run_exec(x);
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
    graph_op op = {(const gexec *)hGraphExec};
    return emu_sq_submit(hStream, run_graph, NULL, &op, sizeof(op), EMU_SQ_ASYNC);
}

/* ---- stream capture ----
 * Each capturing stream (and each event recorded in a capture) carries the capture's current
 * dependency set: the nodes the next captured work runs after. New work depends on the set and
 * becomes it; a stream that waits on such an event joins the capture and takes the event's set. */
static __thread CUstreamCaptureMode t_capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
static emu_graph *g_live[256]; /* captures under way (emu_lock) */
static size_t g_nlive;

static void live_add(emu_graph *g)
{
    emu_lock();
    if (g_nlive < sizeof(g_live) / sizeof(g_live[0]))
        g_live[g_nlive++] = g;
    emu_unlock();
}

static void live_del(emu_graph *g)
{
    emu_lock();
    for (size_t i = 0; i < g_nlive; i++)
        if (g_live[i] == g)
            g_live[i--] = g_live[--g_nlive];
    emu_unlock();
}

static CUresult set_deps(gnode ***deps, size_t *n, gnode *const *from, size_t k)
{
    gnode **d = NULL;
    if (k) {
        d = malloc(k * sizeof(*d));
        if (!d)
            return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(d, from, k * sizeof(*d));
    }
    free(*deps);
    *deps = d;
    *n = k;
    return CUDA_SUCCESS;
}

emu_graph *emu_capture_of(CUstream s)
{
    s = emu_stream_canon(s);
    if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD || !emu_handle_is(s, EMU_K_STREAM))
        return NULL;
    emu_stream *st = (emu_stream *)s;
    emu_graph *g = st->capture;
    if (g && (!emu_handle_is(g, EMU_K_GRAPH) || !g->capturing || g->capture_id != st->capture_id)) {
        st->capture = NULL; /* the capture it joined has ended */
        st->capture_origin = 0;
        set_deps((gnode ***)&st->cap_deps, &st->cap_ndeps, NULL, 0);
        g = NULL;
    }
    return g;
}

/* An unsupported call during a capture invalidates it: later captured work fails, the capture ends in
 * CUDA_ERROR_STREAM_CAPTURE_INVALIDATED. */
void emu_capture_invalidate(CUstream s)
{
    emu_graph *g = emu_capture_of(s);
    if (g)
        g->invalidated = 1;
}

/* The capture-mode rules for a potentially unsafe call (cuMemAlloc, cuCtxSynchronize, ...) made by this
 * thread: prohibited if it began a non-relaxed capture, or, in GLOBAL mode, if another thread began a
 * GLOBAL one; the captures that prohibit it are invalidated. */
CUresult emu_capture_unsafe_call(void)
{
    if (t_capture_mode == CU_STREAM_CAPTURE_MODE_RELAXED || g_nlive == 0)
        return CUDA_SUCCESS;
    int prohibited = 0;
    pthread_t self = pthread_self();
    emu_lock();
    for (size_t i = 0; i < g_nlive; i++) {
        emu_graph *g = g_live[i];
        int mine = pthread_equal(g->owner, self);
        if ((mine && g->mode != CU_STREAM_CAPTURE_MODE_RELAXED) ||
            (!mine && t_capture_mode == CU_STREAM_CAPTURE_MODE_GLOBAL && g->mode == CU_STREAM_CAPTURE_MODE_GLOBAL)) {
            g->invalidated = 1;
            prohibited = 1;
        }
    }
    emu_unlock();
    return prohibited ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

EMU_API CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    if (!mode || (*mode != CU_STREAM_CAPTURE_MODE_GLOBAL && *mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
                  *mode != CU_STREAM_CAPTURE_MODE_RELAXED))
        return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode old = t_capture_mode;
    t_capture_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}

static CUresult capture_add(CUstream s, gnode *nd)
{
    s = emu_stream_canon(s);
    emu_graph *g = emu_capture_of(s);
    if (!g || g->invalidated)
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    emu_stream *st = (emu_stream *)s;
    CUgraphNode node;
    CUresult rc = graph_add(g, nd, (gnode *const *)st->cap_deps, st->cap_ndeps, &node);
    if (rc == CUDA_SUCCESS) {
        gnode *one = (gnode *)node;
        rc = set_deps((gnode ***)&st->cap_deps, &st->cap_ndeps, &one, 1);
    }
    return rc;
}

CUresult emu_capture_kernel(CUstream s, emu_func *f, const unsigned grid[3], const unsigned block[3], size_t shmem,
                            const void *params, size_t len, int cooperative)
{
    gnode nd = {.type = N_KERNEL};
    nd.u.k.f = f;
    nd.u.k.func = (CUfunction)f;
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

CUresult emu_capture_alloc(CUstream s, CUdeviceptr *dptr, size_t bytes)
{
    emu_graph *g = emu_capture_of(s);
    if (!g || g->invalidated)
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    gmem *m;
    CUresult rc = gmem_new(emu_stream_dev(s), bytes, &m); /* the capturing stream's device */
    if (rc)
        return rc;
    gnode nd = {.type = N_MEM_ALLOC};
    nd.u.mem = m;
    rc = capture_add(s, &nd);
    if (rc) {
        gmem_ref(m, -1);
        return rc;
    }
    *dptr = (CUdeviceptr)m->p;
    return CUDA_SUCCESS;
}

int emu_graph_mem_is(CUdeviceptr p)
{
    int found = 0;
    emu_lock();
    for (gmem *m = g_gmem; m && !found; m = m->next)
        found = m->p == p;
    emu_unlock();
    return found;
}

CUresult emu_capture_free(CUstream s, CUdeviceptr p)
{
    if (!emu_graph_mem_is(p) && !emu_mem_check(p, 1))
        return CUDA_ERROR_INVALID_VALUE;
    gnode nd = {.type = N_MEM_FREE};
    nd.u.freed = p;
    return capture_add(s, &nd);
}

CUresult emu_capture_host(CUstream s, CUhostFn fn, void *data)
{
    gnode nd = {.type = N_HOST};
    nd.u.h.fn = fn, nd.u.h.userData = data;
    return capture_add(s, &nd);
}

/* An event recorded in a capture is a join point, not a node: it keeps the stream's dependency set. */
CUresult emu_capture_event(CUstream s, emu_event *e)
{
    s = emu_stream_canon(s);
    emu_graph *g = emu_capture_of(s);
    if (!g || g->invalidated)
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    emu_stream *st = (emu_stream *)s;
    CUresult rc = set_deps((gnode ***)&e->cap_deps, &e->cap_ndeps, (gnode *const *)st->cap_deps, st->cap_ndeps);
    if (rc)
        return rc;
    e->capture = g;
    e->capture_id = g->capture_id;
    return CUDA_SUCCESS;
}

/* A stream waiting on an event recorded inside a live capture joins that capture (fork/join): its next
 * work depends on the event's nodes as well. */
CUresult emu_capture_wait(CUstream s, emu_event *e)
{
    s = emu_stream_canon(s);
    emu_graph *g = e->capture;
    if (!g || !emu_handle_is(g, EMU_K_GRAPH) || !g->capturing || g->capture_id != e->capture_id)
        return CUDA_SUCCESS; /* an ordinary event: all prior work already ran */
    if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD)
        return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
    emu_stream *st = (emu_stream *)s;
    emu_graph *cur = emu_capture_of(s);
    if (cur && cur != g)
        return CUDA_ERROR_STREAM_CAPTURE_MERGE;
    gnode **ed = (gnode **)e->cap_deps;
    if (!cur) {
        CUresult rc = set_deps((gnode ***)&st->cap_deps, &st->cap_ndeps, ed, e->cap_ndeps);
        if (rc)
            return rc;
    } else {
        for (size_t i = 0; i < e->cap_ndeps; i++) {
            gnode **d = (gnode **)st->cap_deps;
            size_t k = 0;
            while (k < st->cap_ndeps && d[k] != ed[i])
                k++;
            if (k < st->cap_ndeps)
                continue;
            d = realloc(d, (st->cap_ndeps + 1) * sizeof(*d));
            if (!d)
                return CUDA_ERROR_OUT_OF_MEMORY;
            d[st->cap_ndeps++] = ed[i];
            st->cap_deps = d;
        }
    }
    st->capture = g;
    st->capture_id = g->capture_id;
    return CUDA_SUCCESS;
}

static CUresult begin_capture(CUstream hStream, emu_graph *into, const CUgraphNode *deps, size_t ndeps,
                              CUstreamCaptureMode mode)
{
    CUresult rc = emu_check_init(); /* the stream names its context: none need be current */
    if (rc)
        return rc;
    rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    hStream = emu_stream_canon(hStream); /* a thread's per-thread stream captures like any other */
    if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
        mode != CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    if (!hStream || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* the legacy NULL stream cannot capture */
    emu_stream *st = (emu_stream *)hStream;
    if (emu_capture_of(hStream))
        return CUDA_ERROR_ILLEGAL_STATE;
    emu_graph *eg = into;
    if (eg) {
        if (eg->capturing)
            return CUDA_ERROR_ILLEGAL_STATE;
        for (size_t i = 0; i < ndeps; i++)
            if (!node_of(deps[i], eg))
                return CUDA_ERROR_INVALID_VALUE;
        eg->user_graph = 1;
    } else {
        eg = graph_new();
        if (!eg)
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rc = set_deps((gnode ***)&st->cap_deps, &st->cap_ndeps, (gnode *const *)deps, ndeps);
    if (rc) {
        if (!into)
            graph_destroy(eg);
        return rc;
    }
    eg->capturing = 1;
    eg->invalidated = 0;
    eg->capture_id = atomic_fetch_add(&g_emu.next_id, 1);
    eg->mode = mode;
    eg->owner = pthread_self();
    st->capture = eg;
    st->capture_origin = 1;
    st->capture_id = eg->capture_id;
    live_add(eg);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    return begin_capture(hStream, NULL, NULL, 0, mode);
}

EMU_API CUresult cuStreamBeginCapture(CUstream hStream) { return cuStreamBeginCapture_v2(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL); }

EMU_API CUresult cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph, const CUgraphNode *dependencies,
                                             const CUgraphEdgeData *dependencyData, size_t numDependencies,
                                             CUstreamCaptureMode mode)
{
    if (!emu_handle_is(hGraph, EMU_K_GRAPH))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((numDependencies && !dependencies) || !plain_edges(dependencyData, numDependencies))
        return CUDA_ERROR_INVALID_VALUE;
    return begin_capture(hStream, (emu_graph *)hGraph, dependencies, numDependencies, mode);
}

EMU_API CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    hStream = emu_stream_canon(hStream);
    if (!emu_handle_is(hStream, EMU_K_STREAM))
        return CUDA_ERROR_ILLEGAL_STATE;
    emu_stream *st = (emu_stream *)hStream;
    emu_graph *g = emu_capture_of(hStream);
    if (!g)
        return CUDA_ERROR_ILLEGAL_STATE;
    CUgraph unused;
    if (!phGraph && !g->user_graph)
        return CUDA_ERROR_INVALID_VALUE;
    if (!phGraph)
        phGraph = &unused; /* cuStreamBeginCaptureToGraph: the graph is the caller's already */
    if (!st->capture_origin)
        return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
    if (g->mode != CU_STREAM_CAPTURE_MODE_RELAXED && !pthread_equal(g->owner, pthread_self()))
        return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    /* streams that joined through events notice the end lazily (emu_capture_of) */
    g->capturing = 0;
    live_del(g);
    st->capture = NULL;
    st->capture_origin = 0;
    set_deps((gnode ***)&st->cap_deps, &st->cap_ndeps, NULL, 0);
    if (g->invalidated) {
        g->invalidated = 0;
        if (!g->user_graph)
            graph_destroy(g);
        *phGraph = NULL;
        return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
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
    *captureStatus = !g ? CU_STREAM_CAPTURE_STATUS_NONE
                     : g->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out)
{
    CUresult rc = cuStreamIsCapturing(hStream, captureStatus_out);
    if (rc == CUDA_SUCCESS && id_out) {
        emu_graph *g = emu_capture_of(hStream);
        *id_out = g ? g->capture_id : 0;
    }
    return rc;
}

EMU_API CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                           cuuint64_t *id_out, CUgraph *graph_out,
                                           const CUgraphNode **dependencies_out, const CUgraphEdgeData **edgeData_out,
                                           size_t *numDependencies_out)
{
    CUresult rc = cuStreamGetCaptureInfo(hStream, captureStatus_out, id_out);
    if (rc)
        return rc;
    hStream = emu_stream_canon(hStream);
    emu_graph *g = emu_capture_of(hStream);
    int active = g && *captureStatus_out == CU_STREAM_CAPTURE_STATUS_ACTIVE;
    const emu_stream *st = active ? (const emu_stream *)hStream : NULL;
    if (graph_out)
        *graph_out = active ? (CUgraph)g : NULL;
    if (dependencies_out)
        *dependencies_out = st && st->cap_ndeps ? (const CUgraphNode *)st->cap_deps : NULL;
    if (edgeData_out)
        *edgeData_out = NULL; /* all edges are plain ones */
    if (numDependencies_out)
        *numDependencies_out = st ? st->cap_ndeps : 0;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                           cuuint64_t *id_out, CUgraph *graph_out,
                                           const CUgraphNode **dependencies_out, size_t *numDependencies_out)
{
    return cuStreamGetCaptureInfo_v3(hStream, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
                                     numDependencies_out);
}

EMU_API CUresult cuStreamUpdateCaptureDependencies_v2(CUstream hStream, CUgraphNode *dependencies,
                                                      const CUgraphEdgeData *dependencyData, size_t numDependencies,
                                                      unsigned int flags)
{
    CUresult rc = emu_stream_check(hStream);
    if (rc)
        return rc;
    hStream = emu_stream_canon(hStream);
    emu_graph *g = emu_capture_of(hStream);
    if (!g)
        return CUDA_ERROR_ILLEGAL_STATE;
    if ((numDependencies && !dependencies) || !plain_edges(dependencyData, numDependencies) ||
        (flags != CU_STREAM_ADD_CAPTURE_DEPENDENCIES && flags != CU_STREAM_SET_CAPTURE_DEPENDENCIES))
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < numDependencies; i++)
        if (!node_of(dependencies[i], g))
            return CUDA_ERROR_INVALID_VALUE;
    emu_stream *st = (emu_stream *)hStream;
    if (flags == CU_STREAM_SET_CAPTURE_DEPENDENCIES)
        return set_deps((gnode ***)&st->cap_deps, &st->cap_ndeps, (gnode *const *)dependencies, numDependencies);
    for (size_t i = 0; i < numDependencies; i++) {
        gnode **d = (gnode **)st->cap_deps;
        size_t k = 0;
        while (k < st->cap_ndeps && d[k] != (gnode *)dependencies[i])
            k++;
        if (k < st->cap_ndeps)
            continue;
        d = realloc(d, (st->cap_ndeps + 1) * sizeof(*d));
        if (!d)
            return CUDA_ERROR_OUT_OF_MEMORY;
        d[st->cap_ndeps++] = (gnode *)dependencies[i];
        st->cap_deps = d;
    }
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamUpdateCaptureDependencies(CUstream hStream, CUgraphNode *dependencies, size_t numDependencies,
                                                   unsigned int flags)
{
    return cuStreamUpdateCaptureDependencies_v2(hStream, dependencies, NULL, numDependencies, flags);
}
