/* exec_graph_mem.c - the executor's graph-memory and conditional-node calls (rows tfGraphAddMemAllocNode,
 * tfGraphMemAllocNodeGetParams, tfDeviceGetGraphMemAttribute, tfDeviceSetGraphMemAttribute,
 * tfGraphAddConditionalNode of proto/calls.tbl): alloc-node parameters rebuilt with their access
 * descriptors (which travel as an array), device attributes as cuuint64_t, conditional nodes made with
 * cuGraphAddNode and their body graphs handed back.
 * The address an alloc node returns is registered as device memory by the generated dispatch (alloc()).
 * Called by the generated dispatch (build/executor/gen/exec_calls.c).
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

static struct {
    CUresult (*add_alloc)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUDA_MEM_ALLOC_NODE_PARAMS *);
    CUresult (*get_alloc)(CUgraphNode, CUDA_MEM_ALLOC_NODE_PARAMS *);
    CUresult (*get_attr)(CUdevice, CUgraphMem_attribute, void *);
    CUresult (*set_attr)(CUdevice, CUgraphMem_attribute, void *);
    CUresult (*add_node)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUgraphNodeParams *);
} mb;

void tfx_graph_mem_load(void *lib)
{
    memset(&mb, 0, sizeof mb);
    if (!lib) return;
    *(void **)&mb.add_alloc = dlsym(lib, "cuGraphAddMemAllocNode");
    *(void **)&mb.get_alloc = dlsym(lib, "cuGraphMemAllocNodeGetParams");
    *(void **)&mb.get_attr = dlsym(lib, "cuDeviceGetGraphMemAttribute");
    *(void **)&mb.set_attr = dlsym(lib, "cuDeviceSetGraphMemAttribute");
    *(void **)&mb.add_node = dlsym(lib, "cuGraphAddNode");
}

CUresult ex_tfGraphAddMemAllocNode(tfx *x, CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                   size_t numDependencies, const CUDA_MEM_ALLOC_NODE_PARAMS *params, size_t ndescs,
                                   const CUmemAccessDesc *descs, CUdeviceptr *dptr)
{
    (void)x;
    if (!mb.add_alloc) return CUDA_ERROR_NOT_SUPPORTED;
    if (!params || ndescs > TF_MAX_ACCESS_DESCS || (ndescs && !descs)) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEM_ALLOC_NODE_PARAMS p = *params;
    p.accessDescs = ndescs ? descs : NULL;
    p.accessDescCount = ndescs;
    p.dptr = 0;
    CUresult rc = mb.add_alloc(phGraphNode, hGraph, dependencies, numDependencies, &p);
    if (rc == CUDA_SUCCESS) *dptr = p.dptr;
    return rc;
}

CUresult ex_tfGraphMemAllocNodeGetParams(tfx *x, CUgraphNode hNode, CUDA_MEM_ALLOC_NODE_PARAMS *params,
                                         unsigned int *ndescs, CUmemAccessDesc *descs)
{
    (void)x;
    if (!mb.get_alloc) return CUDA_ERROR_NOT_SUPPORTED;
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    memset(&p, 0, sizeof p);
    CUresult rc = mb.get_alloc(hNode, &p);
    if (rc) return rc;
    if (p.accessDescCount > TF_MAX_ACCESS_DESCS || (p.accessDescCount && !p.accessDescs)) return CUDA_ERROR_NOT_SUPPORTED;
    for (size_t i = 0; i < p.accessDescCount; i++)  /* reply outputs are packed: no alignment */
        memcpy((char *)descs + i * sizeof *descs, &p.accessDescs[i], sizeof *descs);
    *ndescs = (unsigned)p.accessDescCount;
    *params = p;
    params->accessDescs = NULL;  /* a pointer of this process never goes back */
    return CUDA_SUCCESS;
}

CUresult ex_tfDeviceGetGraphMemAttribute(tfx *x, CUdevice device, CUgraphMem_attribute attr, cuuint64_t *value)
{
    (void)x;
    if (!mb.get_attr) return CUDA_ERROR_NOT_SUPPORTED;
    return mb.get_attr(device, attr, value);
}

CUresult ex_tfDeviceSetGraphMemAttribute(tfx *x, CUdevice device, CUgraphMem_attribute attr, cuuint64_t value)
{
    (void)x;
    if (!mb.set_attr) return CUDA_ERROR_NOT_SUPPORTED;
    return mb.set_attr(device, attr, &value);
}

/* ---------------------------------------------------------------------------- conditional nodes */
/* Body graphs of conditional nodes (for the lifetime of the session): a copy of client host memory cannot
 * be a node of one (exec_graph_host.c), since a launch carries only its top graph's host ranges. */
static uint64_t *g_bodies;
static size_t g_nbodies, g_bodycap;

int tfx_graph_is_body(CUgraph g)
{
    for (size_t i = 0; i < g_nbodies; i++)
        if (g_bodies[i] == (uint64_t)(uintptr_t)g) return 1;
    return 0;
}

static int body_add(CUgraph g)
{
    if (g_nbodies == g_bodycap) {
        size_t cap = g_bodycap ? g_bodycap * 2 : 64;
        uint64_t *n = realloc(g_bodies, cap * sizeof *n);
        if (!n) return -1;
        g_bodies = n;
        g_bodycap = cap;
    }
    g_bodies[g_nbodies++] = (uint64_t)(uintptr_t)g;
    return 0;
}

/* The body graphs the backend made for the node go back as handles (registered by the generated
 * dispatch); the struct's pointer fields are this process's business. */
CUresult ex_tfGraphAddConditionalNode(tfx *x, CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                      size_t numDependencies, const CUDA_CONDITIONAL_NODE_PARAMS *params,
                                      CUgraph *bodies)
{
    if (!mb.add_node) return CUDA_ERROR_NOT_SUPPORTED;
    if (!params || params->size == 0 || params->size > TF_MAX_COND_BODIES) return CUDA_ERROR_INVALID_VALUE;
    if (params->ctx && !tf_reg_has(x, (uint64_t)(uintptr_t)params->ctx, TFK_CTX)) return CUDA_ERROR_INVALID_CONTEXT;
    CUgraphNodeParams p;
    memset(&p, 0, sizeof p);
    p.type = CU_GRAPH_NODE_TYPE_CONDITIONAL;
    p.conditional = *params;
    p.conditional.phGraph_out = NULL;
    CUresult rc = mb.add_node(phGraphNode, hGraph, dependencies, numDependencies, &p);
    if (rc) return rc;
    if (!p.conditional.phGraph_out) return CUDA_ERROR_UNKNOWN;
    for (unsigned i = 0; i < params->size; i++) {  /* reply outputs are packed: no alignment */
        memcpy((char *)bodies + i * sizeof *bodies, &p.conditional.phGraph_out[i], sizeof *bodies);
        if (body_add(p.conditional.phGraph_out[i])) return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
}

/* A free of graph memory outside its graph: the backend's free (which only ends its use until the graph's
 * next launch); the address stays registered, since the next launch allocates it again. */
CUresult ex_tfGraphMemFree(tfx *x, CUdeviceptr dptr, CUstream hStream, int async)
{
    if ((uintptr_t)hStream > 2 && !tf_reg_has(x, (uint64_t)(uintptr_t)hStream, TFK_STREAM))
        return CUDA_ERROR_INVALID_HANDLE;
    if (async) return x->be.f_cuMemFreeAsync ? x->be.f_cuMemFreeAsync(dptr, hStream) : CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuMemFree_v2 ? x->be.f_cuMemFree_v2(dptr) : CUDA_ERROR_NOT_SUPPORTED;
}
