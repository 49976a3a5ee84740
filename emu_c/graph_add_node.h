/* graph_add_node.h - cuGraphAddNode's dispatch, shared by both libcuda.so.1 builds of this project (the
 * emulated device, emu_c/emu_graph.c, and the client stub, stub_c/api_graph.c) as cudart_export_tables.c
 * is: one CUgraphNodeParams goes to the call that adds that node kind, through a table of callees each
 * library fills with its own functions. Depends only on cuda.h.
 */
#ifndef TF_GRAPH_ADD_NODE_H
#define TF_GRAPH_ADD_NODE_H

#include <stddef.h>
#include <cuda.h>

/* The per-kind add calls (the cuGraphAdd*Node signatures minus the common first four arguments' names). */
typedef struct tf_graph_add_calls {
    CUresult (*kernel)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, const CUDA_KERNEL_NODE_PARAMS *);
    CUresult (*memcpy)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, const CUDA_MEMCPY3D *, CUcontext);
    CUresult (*memset)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, const CUDA_MEMSET_NODE_PARAMS *, CUcontext);
    CUresult (*host)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, const CUDA_HOST_NODE_PARAMS *);
    CUresult (*child_graph)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUgraph);
    CUresult (*empty)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t);
    CUresult (*event_record)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUevent);
    CUresult (*event_wait)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUevent);
    CUresult (*mem_alloc)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUDA_MEM_ALLOC_NODE_PARAMS *);
    CUresult (*mem_free)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUdeviceptr);
    /* sets p->phGraph_out (an array owned by the node) on success */
    CUresult (*conditional)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUDA_CONDITIONAL_NODE_PARAMS *p);
    /* says why a call answers CUDA_ERROR_NOT_SUPPORTED (edges with ports or types, other node kinds); NULL: quiet */
    void (*refused)(const char *why);
} tf_graph_add_calls;

/* The body of cuGraphAddNode_v2 after the library's own argument checks: edges other than plain ones and
 * node kinds without a callee (external semaphores, batched memory operations) answer
 * CUDA_ERROR_NOT_SUPPORTED; a memory-allocation node's address comes back in nodeParams->alloc.dptr. */
CUresult tf_graph_add_node(const tf_graph_add_calls *c, CUgraphNode *phGraphNode, CUgraph hGraph,
                           const CUgraphNode *dependencies, const CUgraphEdgeData *dependencyData,
                           size_t numDependencies, CUgraphNodeParams *nodeParams);

#endif
