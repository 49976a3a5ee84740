/* hooks_launch.c - compute hooks: every kind of launch (plain, Ex, cooperative, graph) takes tokens
 * from the bucket before it reaches the driver; an empty bucket makes the launching thread sleep
 * (bounded, see limiter.c), it never fails a launch. A graph launch costs the sum of its kernel nodes,
 * computed once when the graph is instantiated (HAMi-core lets graphs and cooperative launches run
 * unlimited). Wrappers listed in hooks.h. */
#include <stdlib.h>
#include "hooks.h"
#include "limiter.h"

#define LAUNCH(sym, cost, call) do { \
        TFL_REAL(sym); \
        if (!real) return CUDA_ERROR_NOT_INITIALIZED; \
        tfl_before_launch(tfl_state_get(), (cost)); \
        return (call); \
    } while (0)

TFL_EXPORT CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                           unsigned bz, unsigned shmem, CUstream s, void **params, void **extra)
{
    LAUNCH(cuLaunchKernel, tfl_launch_cost(gx, gy, gz, bx, by, bz), real(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra));
}

TFL_EXPORT CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                                unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                                void **extra)
{
    LAUNCH(cuLaunchKernel_ptsz, tfl_launch_cost(gx, gy, gz, bx, by, bz),
           real(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra));
}

TFL_EXPORT CUresult CUDAAPI cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                                      unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params)
{
    LAUNCH(cuLaunchCooperativeKernel, tfl_launch_cost(gx, gy, gz, bx, by, bz),
           real(f, gx, gy, gz, bx, by, bz, shmem, s, params));
}

TFL_EXPORT CUresult CUDAAPI cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                                           unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                                           CUstream s, void **params)
{
    LAUNCH(cuLaunchCooperativeKernel_ptsz, tfl_launch_cost(gx, gy, gz, bx, by, bz),
           real(f, gx, gy, gz, bx, by, bz, shmem, s, params));
}

static double config_cost(const CUlaunchConfig *c)
{
    return c ? tfl_launch_cost(c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY, c->blockDimZ) : 1;
}

TFL_EXPORT CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **params, void **extra)
{
    LAUNCH(cuLaunchKernelEx, config_cost(config), real(config, f, params, extra));
}

TFL_EXPORT CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **params, void **extra)
{
    LAUNCH(cuLaunchKernelEx_ptsz, config_cost(config), real(config, f, params, extra));
}

/* ---- graphs -------------------------------------------------------------------------------------- */
typedef CUresult (*get_nodes_fn)(CUgraph, CUgraphNode *, size_t *);
typedef CUresult (*node_type_fn)(CUgraphNode, CUgraphNodeType *);
typedef CUresult (*kernel_params_fn)(CUgraphNode, CUDA_KERNEL_NODE_PARAMS *);
typedef CUresult (*child_graph_fn)(CUgraphNode, CUgraph *);

#define GRAPH_MAX_NODES 65536
#define GRAPH_MAX_DEPTH 8

/* Sum of kernel-node costs of a graph (child graphs included); < 0 if the driver cannot tell us. */
static double graph_cost(CUgraph g, int depth)
{
    get_nodes_fn get_nodes = (get_nodes_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuGraphGetNodes");
    node_type_fn node_type = (node_type_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuGraphNodeGetType");
    kernel_params_fn kparams = (kernel_params_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuGraphKernelNodeGetParams_v2");
    child_graph_fn child = (child_graph_fn)tfl_lib_sym(TFL_LIB_CUDA, "cuGraphChildGraphNodeGetGraph");
    if (!get_nodes || !node_type || !kparams || depth > GRAPH_MAX_DEPTH) return -1;
    size_t n = 0;
    if (get_nodes(g, NULL, &n) != CUDA_SUCCESS || n > GRAPH_MAX_NODES) return -1;
    if (n == 0) return 0;
    CUgraphNode *nodes = calloc(n, sizeof *nodes);
    if (!nodes) return -1;
    double total = 0;
    if (get_nodes(g, nodes, &n) != CUDA_SUCCESS) { free(nodes); return -1; }
    for (size_t i = 0; i < n && total >= 0; i++) {
        CUgraphNodeType t;
        if (node_type(nodes[i], &t) != CUDA_SUCCESS) continue;
        if (t == CU_GRAPH_NODE_TYPE_KERNEL) {
            CUDA_KERNEL_NODE_PARAMS p;
            if (kparams(nodes[i], &p) == CUDA_SUCCESS)
                total += tfl_launch_cost(p.gridDimX, p.gridDimY, p.gridDimZ, p.blockDimX, p.blockDimY, p.blockDimZ);
        } else if (t == CU_GRAPH_NODE_TYPE_GRAPH && child) {
            CUgraph sub;
            double c = child(nodes[i], &sub) == CUDA_SUCCESS ? graph_cost(sub, depth + 1) : -1;
            total = c < 0 ? -1 : total + c;
        }
    }
    free(nodes);
    return total;
}

static void remember_exec(CUgraphExec exec, CUgraph g)
{
    tfl_state *st = tfl_state_get();
    double c = graph_cost(g, 0);
    uint64_t tokens = c < 1 ? 1 : (uint64_t)c;
    if (pthread_mutex_lock(&st->lock) != 0) return;
    tfl_ledger_release(&st->graphs, TFL_KEY_PTR, (uint64_t)(uintptr_t)exec);
    (void)tfl_ledger_commit(&st->graphs, TFL_KEY_PTR, (uint64_t)(uintptr_t)exec, tokens);
    st->graphs.used = 0; /* the map's byte counters mean nothing here */
    pthread_mutex_unlock(&st->lock);
}

static double exec_cost(tfl_state *st, CUgraphExec exec)
{
    uint64_t c = 0;
    if (pthread_mutex_lock(&st->lock) == 0) {
        c = tfl_ledger_lookup(&st->graphs, TFL_KEY_PTR, (uint64_t)(uintptr_t)exec);
        pthread_mutex_unlock(&st->lock);
    }
    return c ? (double)c : 1; /* instantiated out of our sight: still paced, at the cost of one token */
}

static CUresult graph_launch(CUresult (*real)(CUgraphExec, CUstream), CUgraphExec exec, CUstream s)
{
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    tfl_state *st = tfl_state_get();
    if (!tfl_depth) {
        atomic_fetch_add_explicit(&st->launches, 1, memory_order_relaxed);
        if (atomic_load_explicit(&st->compute_on, memory_order_relaxed)) tfl_throttle(st, exec_cost(st, exec));
    }
    tfl_depth++; /* the driver may run the kernel nodes through cuLaunchKernel: already paid */
    CUresult r = real(exec, s);
    tfl_depth--;
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuGraphLaunch(CUgraphExec exec, CUstream s)
{
    TFL_REAL(cuGraphLaunch);
    return graph_launch(real, exec, s);
}

TFL_EXPORT CUresult CUDAAPI cuGraphLaunch_ptsz(CUgraphExec exec, CUstream s)
{
    TFL_REAL(cuGraphLaunch_ptsz);
    return graph_launch(real, exec, s);
}

TFL_EXPORT CUresult CUDAAPI cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph g, unsigned long long flags)
{
    TFL_REAL(cuGraphInstantiateWithFlags);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(exec, g, flags);
    if (r == CUDA_SUCCESS && exec) remember_exec(*exec, g);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuGraphInstantiateWithParams(CUgraphExec *exec, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    TFL_REAL(cuGraphInstantiateWithParams);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(exec, g, p);
    if (r == CUDA_SUCCESS && exec) remember_exec(*exec, g);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuGraphInstantiateWithParams_ptsz(CUgraphExec *exec, CUgraph g,
                                                              CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    TFL_REAL(cuGraphInstantiateWithParams_ptsz);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(exec, g, p);
    if (r == CUDA_SUCCESS && exec) remember_exec(*exec, g);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuGraphExecUpdate_v2(CUgraphExec exec, CUgraph g, CUgraphExecUpdateResultInfo *info)
{
    TFL_REAL(cuGraphExecUpdate_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(exec, g, info);
    if (r == CUDA_SUCCESS) remember_exec(exec, g);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec exec)
{
    TFL_REAL(cuGraphExecDestroy);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(exec);
    if (r == CUDA_SUCCESS) {
        tfl_state *st = tfl_state_get();
        if (pthread_mutex_lock(&st->lock) == 0) {
            tfl_ledger_release(&st->graphs, TFL_KEY_PTR, (uint64_t)(uintptr_t)exec);
            st->graphs.used = 0;
            pthread_mutex_unlock(&st->lock);
        }
        tfl_graph_mem_sweep();
    }
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuGraphDestroy(CUgraph g)
{
    TFL_REAL(cuGraphDestroy);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(g);
    if (r == CUDA_SUCCESS) tfl_graph_mem_sweep();  /* its alloc nodes' memory may be gone with it */
    return r;
}
