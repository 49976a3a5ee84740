/* graph_add_node.c - the dispatch from CUgraphNodeParams to the per-kind add calls (cuGraphAddNode) and set
 * calls (cuGraphNodeSetParams, cuGraphExecNodeSetParams), compiled into both libcuda.so.1 builds
 * (emu_c/emu_graph.c and stub_c/api_graph.c call it with their callee tables; see graph_add_node.h).
 * Self-contained: cuda.h and libc only.
 */
#include <stdio.h>
#include <string.h>

#include "graph_add_node.h"

static CUresult refuse(const tf_graph_add_calls *c, const char *why)
{
    if (c->refused) c->refused(why);
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* The per-kind structs a CUgraphNodeParams member stands for. */
static CUDA_KERNEL_NODE_PARAMS kernel_of(const CUgraphNodeParams *p)
{
    CUDA_KERNEL_NODE_PARAMS k;
    memset(&k, 0, sizeof k);
    k.func = p->kernel.func, k.kern = p->kernel.kern, k.ctx = p->kernel.ctx;
    k.gridDimX = p->kernel.gridDimX, k.gridDimY = p->kernel.gridDimY, k.gridDimZ = p->kernel.gridDimZ;
    k.blockDimX = p->kernel.blockDimX, k.blockDimY = p->kernel.blockDimY, k.blockDimZ = p->kernel.blockDimZ;
    k.sharedMemBytes = p->kernel.sharedMemBytes, k.kernelParams = p->kernel.kernelParams;
    k.extra = p->kernel.extra;
    return k;
}

static CUDA_MEMSET_NODE_PARAMS memset_of(const CUgraphNodeParams *p)
{
    CUDA_MEMSET_NODE_PARAMS m = {p->memset.dst, p->memset.pitch, p->memset.value, p->memset.elementSize,
                                 p->memset.width, p->memset.height};
    return m;
}

CUresult tf_graph_add_node(const tf_graph_add_calls *c, CUgraphNode *phGraphNode, CUgraph hGraph,
                           const CUgraphNode *dependencies, const CUgraphEdgeData *dependencyData,
                           size_t numDependencies, CUgraphNodeParams *nodeParams)
{
    for (size_t i = 0; dependencyData && i < numDependencies; i++)
        if (dependencyData[i].from_port || dependencyData[i].to_port || dependencyData[i].type)
            return refuse(c, "cuGraphAddNode: edges with ports or types are not supported (CUDA_ERROR_NOT_SUPPORTED)");
    CUgraphNodeParams *p = nodeParams;
    CUgraphNode *out = phGraphNode;
    CUgraph g = hGraph;
    const CUgraphNode *d = dependencies;
    size_t n = numDependencies;
    switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS k = kernel_of(p);
        return c->kernel(out, g, d, n, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        return c->memcpy(out, g, d, n, &p->memcpy.copyParams, p->memcpy.copyCtx);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS m = memset_of(p);
        return c->memset(out, g, d, n, &m, p->memset.ctx);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
        CUDA_HOST_NODE_PARAMS h = {p->host.fn, p->host.userData};
        return c->host(out, g, d, n, &h);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
        return c->child_graph(out, g, d, n, p->graph.graph);
    case CU_GRAPH_NODE_TYPE_EMPTY:
        return c->empty(out, g, d, n);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return c->event_record(out, g, d, n, p->eventRecord.event);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return c->event_wait(out, g, d, n, p->eventWait.event);
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: {
        CUDA_MEM_ALLOC_NODE_PARAMS a = {p->alloc.poolProps, p->alloc.accessDescs, p->alloc.accessDescCount,
                                        p->alloc.bytesize, 0};
        CUresult rc = c->mem_alloc(out, g, d, n, &a);
        if (rc == CUDA_SUCCESS) p->alloc.dptr = a.dptr;
        return rc;
    }
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
        return c->mem_free(out, g, d, n, p->free.dptr);
    case CU_GRAPH_NODE_TYPE_CONDITIONAL:
        return c->conditional(out, g, d, n, &p->conditional);
    default: {
        char why[96];
        snprintf(why, sizeof why, "cuGraphAddNode: node type %d is not supported (CUDA_ERROR_NOT_SUPPORTED)",
                 (int)p->type);
        return refuse(c, why);
    }
    }
}

CUresult tf_graph_set_node(const tf_graph_set_calls *c, CUgraphExec hGraphExec, CUgraphNode hNode,
                           const CUgraphNodeParams *nodeParams)
{
    const CUgraphNodeParams *p = nodeParams;
    CUgraphExec x = hGraphExec;
    CUgraphNode n = hNode;
    switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
        CUDA_KERNEL_NODE_PARAMS k = kernel_of(p);
        return c->kernel ? c->kernel(x, n, &k) : CUDA_ERROR_NOT_SUPPORTED;
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
        return c->memcpy ? c->memcpy(x, n, &p->memcpy.copyParams, p->memcpy.copyCtx) : CUDA_ERROR_NOT_SUPPORTED;
    case CU_GRAPH_NODE_TYPE_MEMSET: {
        CUDA_MEMSET_NODE_PARAMS m = memset_of(p);
        return c->memset ? c->memset(x, n, &m, p->memset.ctx) : CUDA_ERROR_NOT_SUPPORTED;
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
        CUDA_HOST_NODE_PARAMS h = {p->host.fn, p->host.userData};
        return c->host ? c->host(x, n, &h) : CUDA_ERROR_NOT_SUPPORTED;
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
        return c->child_graph ? c->child_graph(x, n, p->graph.graph) : CUDA_ERROR_NOT_SUPPORTED;
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
        return c->event_record ? c->event_record(x, n, p->eventRecord.event) : CUDA_ERROR_NOT_SUPPORTED;
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
        return c->event_wait ? c->event_wait(x, n, p->eventWait.event) : CUDA_ERROR_NOT_SUPPORTED;
    default:
        return CUDA_ERROR_NOT_SUPPORTED; /* memory alloc/free, conditional, kinds this project has no nodes of */
    }
}
