/* graph_add_node.h - the dispatch of the generic CUgraphNodeParams calls (cuGraphAddNode, cuGraphNodeSetParams,
 * cuGraphExecNodeSetParams), shared by both libcuda.so.1 builds of this project (the emulated device,
 * emu_c/emu_graph.c, and the client stub, stub_c/api_graph.c) as cudart_export_tables.c is: one
 * CUgraphNodeParams goes to the call that adds or updates that node kind, through a table of callees each
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

/* The per-kind set calls: hGraphExec NULL sets the graph node's own parameters (cuGraph*NodeSetParams,
 * cuGraphEvent*NodeSetEvent), else the executable graph's copy of it (cuGraphExec*NodeSetParams/SetEvent).
 * A NULL callee answers CUDA_ERROR_NOT_SUPPORTED. */
typedef struct tf_graph_set_calls {
    CUresult (*kernel)(CUgraphExec, CUgraphNode, const CUDA_KERNEL_NODE_PARAMS *);
    CUresult (*memcpy)(CUgraphExec, CUgraphNode, const CUDA_MEMCPY3D *, CUcontext);
    CUresult (*memset)(CUgraphExec, CUgraphNode, const CUDA_MEMSET_NODE_PARAMS *, CUcontext);
    CUresult (*host)(CUgraphExec, CUgraphNode, const CUDA_HOST_NODE_PARAMS *);
    CUresult (*child_graph)(CUgraphExec, CUgraphNode, CUgraph);
    CUresult (*event_record)(CUgraphExec, CUgraphNode, CUevent);
    CUresult (*event_wait)(CUgraphExec, CUgraphNode, CUevent);
} tf_graph_set_calls;

/* cuGraphNodeSetParams (hGraphExec NULL) and cuGraphExecNodeSetParams after the library's own argument
 * checks: each node kind to its set call (a node of another kind is that call's CUDA_ERROR_INVALID_VALUE);
 * memory alloc/free and conditional nodes cannot be updated (CUDA_ERROR_NOT_SUPPORTED, as the driver's
 * table of allowed changes says), nor can kinds without a callee. */
CUresult tf_graph_set_node(const tf_graph_set_calls *c, CUgraphExec hGraphExec, CUgraphNode hNode,
                           const CUgraphNodeParams *nodeParams);

#endif
