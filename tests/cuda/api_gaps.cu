// api_gaps.cu - driver calls that used to answer CUDA_ERROR_NOT_SUPPORTED on the emulated device or through
// the stub: user objects (a destructor runs once, on a thread of the driver's, after the graph launch that
// holds it finished), graph edge queries in every version, kernel node attributes, cuCtxSetFlags,
// cuFuncIsLoaded/cuFuncLoad, the occupancy calculators with flags and for clusters, managed-memory range
// attributes. For tests/stub/test_api_gaps.py, which runs it on the emulated device (both PTX engines) and
// through the remote stub and compares the answers. Prints "key=value" lines (CUresult numbers unless said).
#include <cuda.h>
#include <cuda_runtime.h>
#include <pthread.h>

#include <atomic>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RC(key, call) printf("%s=%d\n", key, (int)(call))

__global__ void k_add(int *p, int n, int v)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] += v;
}

static void *proc(const char *name, int version)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult q;
    if (cuGetProcAddress(name, &fn, version, CU_GET_PROC_ADDRESS_DEFAULT, &q) != CUDA_SUCCESS) return NULL;
    return fn;
}

// ---- user objects: what the destructor saw when it ran ----
static std::atomic<int> g_destroyed;       // times the destructor ran
static std::atomic<int> g_host_node_ran;   // the graph's host node (after its kernel node) ran
static std::atomic<int> g_saw_launch_done; // the host node had run when the destructor ran
static std::atomic<int> g_on_main_thread;  // the destructor ran on the program's main thread
static pthread_t g_main;

static void CUDA_CB destroy(void *p)
{
    g_saw_launch_done.store(g_host_node_ran.load());
    g_on_main_thread.store(pthread_equal(pthread_self(), g_main) != 0);
    static_cast<std::atomic<int> *>(p)->fetch_add(1);
}

static void CUDA_CB host_node(void *p)
{
    usleep(200 * 1000);  // the launch is still running well after cuGraphExecDestroy returned
    static_cast<std::atomic<int> *>(p)->store(1);
}

static CUgraphNode kernel_node(CUgraph g, const CUgraphNode *deps, size_t ndeps, CUfunction f, int *dptr, int n, int v)
{
    void *args[] = {&dptr, &n, &v};
    CUDA_KERNEL_NODE_PARAMS kp;
    memset(&kp, 0, sizeof kp);
    kp.func = f;
    kp.gridDimX = (n + 127) / 128, kp.gridDimY = kp.gridDimZ = 1;
    kp.blockDimX = 128, kp.blockDimY = kp.blockDimZ = 1;
    kp.kernelParams = args;
    CUgraphNode nd = NULL;
    RC("add_kernel_node", cuGraphAddKernelNode(&nd, g, deps, ndeps, &kp));
    return nd;
}

static void edges(CUgraphNode k, CUgraphNode k2, CUgraphNode h, CUgraph g)
{
    size_t n = 0;
    CUgraphNode nodes[3] = {NULL, NULL, NULL};
    CUgraphEdgeData ed[3];
    memset(ed, 0xff, sizeof ed);
    RC("deps_count_rc", cuGraphNodeGetDependencies(h, NULL, NULL, &n));
    printf("deps_count=%zu\n", n);
    n = 3;
    RC("deps_rc", cuGraphNodeGetDependencies(h, nodes, ed, &n));
    printf("deps_n=%zu\ndeps_first=%s\ndeps_rest_null=%d\n", n, nodes[0] == k ? "k" : nodes[0] == k2 ? "k2" : "?",
           nodes[2] == NULL);
    printf("deps_second=%s\n", nodes[1] == k ? "k" : nodes[1] == k2 ? "k2" : "?");
    printf("deps_edge_data_zero=%d\n", ed[0].type == 0 && ed[0].from_port == 0 && ed[0].to_port == 0 && ed[1].type == 0);
    n = 1;
    RC("deps_short_rc", cuGraphNodeGetDependencies(h, nodes, NULL, &n));
    printf("deps_short_n=%zu\n", n);
    RC("deps_null_count", cuGraphNodeGetDependencies(h, nodes, NULL, NULL));
    n = 3;
    RC("deps_data_without_nodes", cuGraphNodeGetDependencies(h, NULL, ed, &n));
    n = 3;
    nodes[0] = nodes[1] = nodes[2] = NULL;
    RC("dependents_rc", cuGraphNodeGetDependentNodes(k, nodes, NULL, &n));
    printf("dependents_n=%zu\ndependents_first=%s\n", n, nodes[0] == h ? "h" : "?");
    n = 5;
    RC("dependents_of_leaf_rc", cuGraphNodeGetDependentNodes(h, NULL, NULL, &n));
    printf("dependents_of_leaf=%zu\n", n);
    RC("deps_bogus_node", cuGraphNodeGetDependencies((CUgraphNode)(uintptr_t)0x1234, NULL, NULL, &n));
    // the CUDA 10 forms (no edge data), as cuGetProcAddress serves them
    typedef CUresult (*deps_v1)(CUgraphNode, CUgraphNode *, size_t *);
    deps_v1 dv1 = (deps_v1)proc("cuGraphNodeGetDependencies", 10000);
    deps_v1 dnv1 = (deps_v1)proc("cuGraphNodeGetDependentNodes", 10000);
    n = 3;
    if (dv1) RC("deps_v1_rc", dv1(h, nodes, &n)); else printf("deps_v1_rc=absent\n");
    printf("deps_v1_n=%zu\n", n);
    n = 3;
    if (dnv1) RC("dependents_v1_rc", dnv1(k2, nodes, &n)); else printf("dependents_v1_rc=absent\n");
    printf("dependents_v1_n=%zu\ndependents_v1_first=%s\n", n, nodes[0] == h ? "h" : "?");
    n = 0;
    RC("edges_rc", cuGraphGetEdges(g, NULL, NULL, NULL, &n));
    printf("edges=%zu\n", n);
}

static void attributes(CUgraphNode k, CUgraphNode k2, CUgraphNode h)
{
    CUkernelNodeAttrValue v;
    memset(&v, 0x55, sizeof v);
    RC("attr_get_priority", cuGraphKernelNodeGetAttribute(k, CU_LAUNCH_ATTRIBUTE_PRIORITY, &v));
    printf("attr_priority_default=%d\n", v.priority);
    memset(&v, 0, sizeof v);
    v.priority = -3;
    RC("attr_set_priority", cuGraphKernelNodeSetAttribute(k, CU_LAUNCH_ATTRIBUTE_PRIORITY, &v));
    memset(&v, 0, sizeof v);
    cuGraphKernelNodeGetAttribute(k, CU_LAUNCH_ATTRIBUTE_PRIORITY, &v);
    printf("attr_priority=%d\n", v.priority);
    memset(&v, 0, sizeof v);
    v.cooperative = 1;
    RC("attr_set_cooperative", cuGraphKernelNodeSetAttribute(k, CU_LAUNCH_ATTRIBUTE_COOPERATIVE, &v));
    memset(&v, 0, sizeof v);
    cuGraphKernelNodeGetAttribute(k, CU_LAUNCH_ATTRIBUTE_COOPERATIVE, &v);
    printf("attr_cooperative=%d\n", v.cooperative);
    memset(&v, 0, sizeof v);
    v.memSyncDomain = CU_LAUNCH_MEM_SYNC_DOMAIN_REMOTE;
    RC("attr_set_sync_domain", cuGraphKernelNodeSetAttribute(k, CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN, &v));
    v.accessPolicyWindow.hitRatio = 2.0f;  // above 1
    RC("attr_set_bad_window", cuGraphKernelNodeSetAttribute(k, CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW, &v));
    memset(&v, 0, sizeof v);
    v.memSyncDomain = (CUlaunchMemSyncDomain)7;
    RC("attr_set_bad_domain", cuGraphKernelNodeSetAttribute(k, CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN, &v));
    memset(&v, 0, sizeof v);
    v.programmaticStreamSerializationAllowed = 1;  // valid for launches only
    RC("attr_set_launch_only", cuGraphKernelNodeSetAttribute(k, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, &v));
    memset(&v, 0, sizeof v);
    v.deviceUpdatableKernelNode.deviceUpdatable = 1;
    RC("attr_set_device_updatable", cuGraphKernelNodeSetAttribute(k, CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE, &v));
    RC("attr_set_on_host_node", cuGraphKernelNodeSetAttribute(h, CU_LAUNCH_ATTRIBUTE_PRIORITY, &v));
    RC("attr_get_null", cuGraphKernelNodeGetAttribute(k, CU_LAUNCH_ATTRIBUTE_PRIORITY, NULL));
    RC("attr_get_bogus_node", cuGraphKernelNodeGetAttribute((CUgraphNode)(uintptr_t)0x1234, CU_LAUNCH_ATTRIBUTE_PRIORITY, &v));
    RC("attr_copy", cuGraphKernelNodeCopyAttributes(k2, k));
    memset(&v, 0, sizeof v);
    cuGraphKernelNodeGetAttribute(k2, CU_LAUNCH_ATTRIBUTE_PRIORITY, &v);
    printf("attr_copied_priority=%d\n", v.priority);
    memset(&v, 0, sizeof v);
    cuGraphKernelNodeGetAttribute(k2, CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN, &v);
    printf("attr_copied_sync_domain=%d\n", (int)v.memSyncDomain);
    RC("attr_copy_from_host_node", cuGraphKernelNodeCopyAttributes(k2, h));
    memset(&v, 0, sizeof v);  // back to an ordinary launch for the graph's run
    RC("attr_unset_cooperative", cuGraphKernelNodeSetAttribute(k, CU_LAUNCH_ATTRIBUTE_COOPERATIVE, &v));
}

static void user_objects(CUfunction f)
{
    CUuserObject bad = NULL, o = NULL;
    RC("uo_create_no_flag", cuUserObjectCreate(&bad, &g_destroyed, destroy, 1, 0));
    RC("uo_create_zero_refs", cuUserObjectCreate(&bad, &g_destroyed, destroy, 0, CU_USER_OBJECT_NO_DESTRUCTOR_SYNC));
    RC("uo_create_no_destructor", cuUserObjectCreate(&bad, &g_destroyed, NULL, 1, CU_USER_OBJECT_NO_DESTRUCTOR_SYNC));
    RC("uo_create", cuUserObjectCreate(&o, &g_destroyed, destroy, 1, CU_USER_OBJECT_NO_DESTRUCTOR_SYNC));
    RC("uo_retain", cuUserObjectRetain(o, 2));
    RC("uo_retain_zero", cuUserObjectRetain(o, 0));
    RC("uo_release", cuUserObjectRelease(o, 2));
    RC("uo_release_bogus", cuUserObjectRelease((CUuserObject)(uintptr_t)0x1234, 1));

    int n = 256, *d = NULL;
    cudaMalloc(&d, n * sizeof(int));
    cudaMemset(d, 0, n * sizeof(int));
    CUgraph g;
    RC("graph_create", cuGraphCreate(&g, 0));
    RC("uo_graph_retain_bad_flags", cuGraphRetainUserObject(g, o, 1, 2));
    RC("uo_graph_retain_bogus_graph", cuGraphRetainUserObject((CUgraph)(uintptr_t)0x1234, o, 1, 0));
    RC("uo_graph_retain_move", cuGraphRetainUserObject(g, o, 1, CU_GRAPH_USER_OBJECT_MOVE));  // ours now the graph's
    RC("uo_graph_retain", cuGraphRetainUserObject(g, o, 1, 0));
    RC("uo_graph_release_too_many", cuGraphReleaseUserObject(g, o, 3));
    RC("uo_graph_release", cuGraphReleaseUserObject(g, o, 1));
    printf("uo_destroyed_while_held=%d\n", g_destroyed.load());

    CUgraphNode k = kernel_node(g, NULL, 0, f, d, n, 5);
    CUgraphNode k2 = kernel_node(g, NULL, 0, f, d, n, 7);
    CUDA_HOST_NODE_PARAMS hp = {host_node, &g_host_node_ran};
    CUgraphNode h = NULL, deps[2] = {k, k2};
    RC("add_host_node", cuGraphAddHostNode(&h, g, deps, 2, &hp));
    edges(k, k2, h, g);
    attributes(k, k2, h);

    CUgraphExec x;
    CUstream s;
    RC("instantiate", cuGraphInstantiate(&x, g, 0));
    RC("graph_destroy", cuGraphDestroy(g));  // the executable graph still holds the object
    RC("stream_create", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    RC("graph_launch", cuGraphLaunch(x, s));
    RC("exec_destroy", cuGraphExecDestroy(x));  // the launch may still run: the destructor waits for it
    for (int i = 0; i < 400 && g_destroyed.load() == 0; i++) usleep(10 * 1000);
    usleep(100 * 1000);  // a second run would show by now
    printf("uo_destroyed=%d\nuo_destroyed_after_launch=%d\nuo_destroyed_on_main_thread=%d\n", g_destroyed.load(),
           g_saw_launch_done.load(), g_on_main_thread.load());
    RC("stream_sync", cuStreamSynchronize(s));
    int out[2] = {0, 0};
    cudaMemcpy(out, d, sizeof out, cudaMemcpyDeviceToHost);
    printf("graph_result=%d\n", out[0]);  // 5 + 7
    cuStreamDestroy(s);
    cudaFree(d);
}

static void context_and_functions(CUfunction f)
{
    unsigned flags = 0;
    RC("ctx_set_flags", cuCtxSetFlags(CU_CTX_SCHED_BLOCKING_SYNC));
    RC("ctx_get_flags", cuCtxGetFlags(&flags));
    printf("ctx_flags_sched=%u\n", flags & CU_CTX_SCHED_MASK);
    cuCtxSetFlags(CU_CTX_SCHED_AUTO);
    CUfunctionLoadingState st = CU_FUNCTION_LOADING_STATE_MAX;
    RC("func_load", cuFuncLoad(f));
    RC("func_is_loaded", cuFuncIsLoaded(&st, f));
    printf("func_loaded=%d\n", st == CU_FUNCTION_LOADING_STATE_LOADED);
    RC("func_is_loaded_null", cuFuncIsLoaded(NULL, f));
    RC("func_load_bogus", cuFuncLoad((CUfunction)(uintptr_t)0x1234));
}

static void occupancy(CUfunction f)
{
    int grid = 0, block = 0, grid0 = -1, block0 = -1;
    RC("occ_plain", cuOccupancyMaxPotentialBlockSize(&grid0, &block0, f, NULL, 0, 0));
    RC("occ_flags", cuOccupancyMaxPotentialBlockSizeWithFlags(&grid, &block, f, NULL, 0, 0,
                                                              CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE));
    printf("occ_flags_same=%d\nocc_block=%d\nocc_grid=%d\n", grid == grid0 && block == block0, block, grid);
    RC("occ_bad_flags", cuOccupancyMaxPotentialBlockSizeWithFlags(&grid, &block, f, NULL, 0, 0, 2));
    CUlaunchConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDimX = 16, cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 128, cfg.blockDimY = cfg.blockDimZ = 1;
    int cs = -1, nc = -1;
    RC("cluster_size_rc", cuOccupancyMaxPotentialClusterSize(&cs, f, &cfg));
    printf("cluster_size=%d\n", cs);
    RC("active_clusters_no_size", cuOccupancyMaxActiveClusters(&nc, f, &cfg));
    CUlaunchAttribute at;
    memset(&at, 0, sizeof at);
    at.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    at.value.clusterDim.x = 2, at.value.clusterDim.y = at.value.clusterDim.z = 1;
    cfg.attrs = &at, cfg.numAttrs = 1;
    RC("active_clusters_rc", cuOccupancyMaxActiveClusters(&nc, f, &cfg));
    printf("active_clusters=%d\n", nc);
    at.value.clusterDim.x = 16;  // above the portable 8
    RC("active_clusters_too_big", cuOccupancyMaxActiveClusters(&nc, f, &cfg));
    at.value.clusterDim.x = 3;   // does not divide the grid
    RC("active_clusters_not_dividing", cuOccupancyMaxActiveClusters(&nc, f, &cfg));
}

static void range_attributes(void)
{
    int n = 1 << 14, *m = NULL, *dev = NULL;
    cudaMallocManaged(&m, n * sizeof(int));
    cudaMalloc(&dev, n * sizeof(int));
    CUdeviceptr p = (CUdeviceptr)m;
    size_t bytes = n * sizeof(int);
    int v = 7, acc[3] = {7, 7, 7};
    CUmemLocation dev0 = {CU_MEM_LOCATION_TYPE_DEVICE, 0}, host = {CU_MEM_LOCATION_TYPE_HOST, 0};
    RC("range_fresh_rc", cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION, p, bytes));
    printf("range_fresh_preferred=%d\n", v);
    RC("range_advise_read_mostly", cuMemAdvise(p, bytes, CU_MEM_ADVISE_SET_READ_MOSTLY, dev0));
    RC("range_advise_preferred", cuMemAdvise(p, bytes, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, dev0));
    RC("range_advise_accessed_by", cuMemAdvise(p, bytes, CU_MEM_ADVISE_SET_ACCESSED_BY, dev0));
    RC("range_prefetch_host", cuMemPrefetchAsync(p, bytes, host, 0, 0));
    cuCtxSynchronize();
    RC("range_read_mostly_rc", cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, p, bytes));
    printf("range_read_mostly=%d\n", v);
    cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION, p, bytes);
    printf("range_preferred=%d\n", v);
    cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, p, bytes);
    printf("range_last_prefetch=%d\n", v);
    cuMemRangeGetAttribute(acc, sizeof acc, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, p, bytes);
    printf("range_accessed_by=%d,%d,%d\n", acc[0], acc[1], acc[2]);
    CUmemLocationType t = CU_MEM_LOCATION_TYPE_INVALID;
    RC("range_preferred_type_rc", cuMemRangeGetAttribute(&t, sizeof t, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE, p, bytes));
    printf("range_preferred_type=%d\n", (int)t);
    int rm = 7, pref = 7;
    void *datas[2] = {&rm, &pref};
    size_t sizes[2] = {4, 4};
    CUmem_range_attribute attrs[2] = {CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION};
    cuMemAdvise(p, bytes, CU_MEM_ADVISE_UNSET_READ_MOSTLY, dev0);
    RC("range_attrs_rc", cuMemRangeGetAttributes(datas, sizes, attrs, 2, p, bytes));
    printf("range_attrs=%d,%d\n", rm, pref);
    RC("range_bad_size", cuMemRangeGetAttribute(&v, 8, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, p, bytes));
    RC("range_null_data", cuMemRangeGetAttribute(NULL, 4, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, p, bytes));
    RC("range_device_memory", cuMemRangeGetAttribute(&v, 4, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, (CUdeviceptr)dev, 64));
    cudaFree(dev);
    cudaFree(m);
}

int main()
{
    g_main = pthread_self();
    if (cudaFree(0) != cudaSuccess || cuInit(0) != CUDA_SUCCESS) {
        printf("FAIL init\n");
        return 1;
    }
    CUfunction f = NULL;
    if (cudaGetFuncBySymbol((cudaFunction_t *)&f, (const void *)k_add) != cudaSuccess) {
        printf("FAIL function\n");
        return 1;
    }
    context_and_functions(f);
    occupancy(f);
    user_objects(f);
    range_attributes();
    printf("done=1\n");
    return 0;
}
