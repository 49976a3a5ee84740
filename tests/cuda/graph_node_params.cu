// graph_node_params.cu - the parameters of graph nodes read back and changed, in graphs and in executable
// graphs: host, memset, memcpy, event record/wait and child graph nodes (cudaGraph*NodeGetParams/SetParams,
// cudaGraphEvent*NodeGetEvent/SetEvent, cudaGraphChildGraphNodeGetGraph, cudaGraphExec*NodeSetParams/SetEvent),
// the generic cudaGraphNodeSetParams / cudaGraphExecNodeSetParams (a child graph node takes a copy of a new graph), and cudaGraphNodeSetEnabled/GetEnabled;
// each call's success and its error answers (a node of another kind, a node of another graph, parameters the
// driver refuses), and launches after each update computing the new values.
// Usage: graph_node_params N. stdout: key=value lines (error names, values read back after launches).
#include "tf_test_io.h"
#include <cstring>

__global__ void fill(int *p, int v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = v;
}

static const char *name(cudaError_t e) { return cudaGetErrorName(e); }

static int host_a, host_b;
static void CUDART_CB count_a(void *p) { ++*(int *)p; }
static void CUDART_CB count_b(void *p) { *(int *)p += 10; }

static int n_g;
static dim3 grid_g, block_g;

// Every element of the device array p (n_g of them), if they are all the same, else -1.
static int uniform(const int *p) { return device_uniform(p, n_g); }

static cudaKernelNodeParams fill_params(void **args)
{
    cudaKernelNodeParams k = {};
    k.func = (void *)fill;
    k.gridDim = grid_g;
    k.blockDim = block_g;
    k.kernelParams = args;
    return k;
}

static cudaMemsetParams memset_params(int *dst, int value)
{
    cudaMemsetParams m = {};
    m.dst = dst;
    m.value = value;
    m.elementSize = 4;
    m.width = n_g;
    m.height = 1;
    return m;
}

static void launch(cudaGraphExec_t x, cudaStream_t s)
{
    CK(cudaGraphLaunch(x, s));
    CK(cudaStreamSynchronize(s));
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: graph_node_params N\n");
        return 2;
    }
    n_g = atoi(argv[1]);
    grid_g = dim3((n_g + 127) / 128);
    block_g = dim3(128);
    const size_t bytes = n_g * sizeof(int);
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    int *d1, *d2, *d3;
    CK(cudaMalloc(&d1, bytes));
    CK(cudaMalloc(&d2, bytes));
    CK(cudaMalloc(&d3, bytes));
    CK(cudaMemset(d1, 0, bytes));
    CK(cudaMemset(d2, 0, bytes));
    CK(cudaMemset(d3, 0, bytes));

    // a node of another graph, for the "not in this graph" answers
    cudaGraph_t other;
    cudaGraphNode_t foreign;
    CK(cudaGraphCreate(&other, 0));
    CK(cudaGraphAddEmptyNode(&foreign, other, nullptr, 0));

    // ---- host nodes
    cudaGraph_t g;
    CK(cudaGraphCreate(&g, 0));
    cudaHostNodeParams hp = {count_a, &host_a};
    cudaGraphNode_t hn, en;
    CK(cudaGraphAddHostNode(&hn, g, nullptr, 0, &hp));
    CK(cudaGraphAddEmptyNode(&en, g, &hn, 1));
    cudaHostNodeParams got = {};
    CK(cudaGraphHostNodeGetParams(hn, &got));
    printf("host_get_ok=%d\n", got.fn == count_a && got.userData == &host_a);
    cudaHostNodeParams hb = {count_b, &host_b};
    printf("host_set=%s\n", name(cudaGraphHostNodeSetParams(hn, &hb)));
    CK(cudaGraphHostNodeGetParams(hn, &got));
    printf("host_get_after_set_ok=%d\n", got.fn == count_b && got.userData == &host_b);
    cudaHostNodeParams no_fn = {nullptr, &host_a};
    printf("host_set_null_fn=%s\n", name(cudaGraphHostNodeSetParams(hn, &no_fn)));
    printf("host_get_wrong_kind=%s\n", name(cudaGraphHostNodeGetParams(en, &got)));
    printf("host_set_wrong_kind=%s\n", name(cudaGraphHostNodeSetParams(en, &hb)));
    cudaGraphExec_t x;
    CK(cudaGraphInstantiate(&x, g, 0));
    launch(x, s);
    printf("host_launch=%d,%d\n", host_a, host_b);  // count_b ran: 0,10
    printf("exec_host_set=%s\n", name(cudaGraphExecHostNodeSetParams(x, hn, &hp)));
    launch(x, s);
    printf("exec_host_launch=%d,%d\n", host_a, host_b);  // count_a ran: 1,10
    CK(cudaGraphHostNodeGetParams(hn, &got));
    printf("exec_host_node_unchanged=%d\n", got.fn == count_b);
    printf("exec_host_wrong_kind=%s\n", name(cudaGraphExecHostNodeSetParams(x, en, &hp)));
    printf("exec_host_foreign_node=%s\n", name(cudaGraphExecHostNodeSetParams(x, foreign, &hp)));
    printf("exec_host_null_fn=%s\n", name(cudaGraphExecHostNodeSetParams(x, hn, &no_fn)));
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));

    // ---- memset nodes
    CK(cudaGraphCreate(&g, 0));
    cudaMemsetParams mp = memset_params(d1, 7);
    cudaGraphNode_t mn;
    CK(cudaGraphAddMemsetNode(&mn, g, nullptr, 0, &mp));
    CK(cudaGraphAddEmptyNode(&en, g, &mn, 1));
    cudaMemsetParams mg = {};
    CK(cudaGraphMemsetNodeGetParams(mn, &mg));
    printf("memset_get=%d,%u,%u,%zu,%zu\n", mg.dst == d1, mg.value, mg.elementSize, mg.width, mg.height);
    mp.value = 9;
    printf("memset_set=%s\n", name(cudaGraphMemsetNodeSetParams(mn, &mp)));
    CK(cudaGraphMemsetNodeGetParams(mn, &mg));
    printf("memset_get_after_set=%u\n", mg.value);
    cudaMemsetParams bad = mp;
    bad.elementSize = 3;
    printf("memset_set_bad_elem=%s\n", name(cudaGraphMemsetNodeSetParams(mn, &bad)));
    printf("memset_get_wrong_kind=%s\n", name(cudaGraphMemsetNodeGetParams(en, &mg)));
    printf("memset_set_wrong_kind=%s\n", name(cudaGraphMemsetNodeSetParams(en, &mp)));
    CK(cudaGraphInstantiate(&x, g, 0));
    launch(x, s);
    printf("memset_launch=%d\n", uniform(d1));  // 9
    cudaMemsetParams mx = memset_params(d2, 11);
    printf("exec_memset_set=%s\n", name(cudaGraphExecMemsetNodeSetParams(x, mn, &mx)));
    CK(cudaMemset(d1, 0, bytes));
    launch(x, s);
    printf("exec_memset_launch=%d,%d\n", uniform(d1), uniform(d2));  // 0,11: the new address and value
    CK(cudaGraphMemsetNodeGetParams(mn, &mg));
    printf("exec_memset_node_unchanged=%d\n", mg.dst == d1 && mg.value == 9);
    bad = mx;
    bad.height = 2;
    bad.pitch = bytes;
    printf("exec_memset_1d_to_2d=%s\n", name(cudaGraphExecMemsetNodeSetParams(x, mn, &bad)));
    bad = mx;
    bad.width = 0;
    printf("exec_memset_zero_width=%s\n", name(cudaGraphExecMemsetNodeSetParams(x, mn, &bad)));
    printf("exec_memset_wrong_kind=%s\n", name(cudaGraphExecMemsetNodeSetParams(x, en, &mx)));
    printf("exec_memset_foreign_node=%s\n", name(cudaGraphExecMemsetNodeSetParams(x, foreign, &mx)));
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));

    // ---- memcpy nodes (device to device)
    CK(cudaMemset(d1, 0, bytes));
    CK(cudaMemset(d2, 0, bytes));
    CK(cudaMemset(d3, 0, bytes));
    CK(cudaGraphCreate(&g, 0));
    cudaGraphNode_t fn1, cn;
    int v3 = 3, v4 = 4;
    void *a3[] = {&d1, &v3, &n_g};
    cudaKernelNodeParams kp = fill_params(a3);
    CK(cudaGraphAddKernelNode(&fn1, g, nullptr, 0, &kp));
    CK(cudaGraphAddMemcpyNode1D(&cn, g, &fn1, 1, d2, d1, bytes, cudaMemcpyDeviceToDevice));
    cudaMemcpy3DParms cp = {};
    CK(cudaGraphMemcpyNodeGetParams(cn, &cp));
    printf("memcpy_get_ok=%d\n", cp.srcPtr.ptr == d1 && cp.dstPtr.ptr == d2 && cp.extent.width == bytes &&
                                     cp.extent.height == 1 && cp.extent.depth == 1);
    cp.dstPtr.ptr = d3;
    printf("memcpy_set=%s\n", name(cudaGraphMemcpyNodeSetParams(cn, &cp)));
    CK(cudaGraphMemcpyNodeGetParams(cn, &cp));
    printf("memcpy_get_after_set_ok=%d\n", cp.dstPtr.ptr == d3);
    CK(cudaGraphAddEmptyNode(&en, g, &cn, 1));
    printf("memcpy_get_wrong_kind=%s\n", name(cudaGraphMemcpyNodeGetParams(en, &cp)));
    CK(cudaGraphInstantiate(&x, g, 0));
    launch(x, s);
    printf("memcpy_launch=%d,%d\n", uniform(d2), uniform(d3));  // 0,3

    // memcpy nodes on host memory: the node names the host range (through the stub too: the client's)
    cudaGraph_t hg;
    cudaGraphNode_t hcn;
    cudaGraphExec_t hx;
    std::vector<int> six(n_g, 6), eight(n_g, 8);
    CK(cudaGraphCreate(&hg, 0));
    CK(cudaGraphAddMemcpyNode1D(&hcn, hg, nullptr, 0, d1, six.data(), bytes, cudaMemcpyHostToDevice));
    CK(cudaGraphMemcpyNodeGetParams(hcn, &cp));
    printf("memcpy_host_get_ok=%d\n", cp.srcPtr.ptr == six.data() && cp.dstPtr.ptr == d1);
    CK(cudaGraphMemcpyNodeSetParams1D(hcn, d1, eight.data(), bytes, cudaMemcpyHostToDevice));
    CK(cudaGraphMemcpyNodeGetParams(hcn, &cp));
    printf("memcpy_host_get_after_set_ok=%d\n", cp.srcPtr.ptr == eight.data());
    CK(cudaGraphInstantiate(&hx, hg, 0));
    launch(hx, s);
    printf("memcpy_host_launch=%d\n", uniform(d1));  // 8
    printf("exec_memcpy_host_set=%s\n",
           name(cudaGraphExecMemcpyNodeSetParams1D(hx, hcn, d1, six.data(), bytes, cudaMemcpyHostToDevice)));
    launch(hx, s);
    printf("exec_memcpy_host_launch=%d\n", uniform(d1));  // 6
    CK(cudaGraphExecDestroy(hx));
    CK(cudaGraphDestroy(hg));
    CK(cudaMemset(d1, 0, bytes));

    // ---- enabled / disabled nodes (the same executable graph: kernel -> memcpy -> empty)
    unsigned on = 7;
    CK(cudaGraphNodeGetEnabled(x, fn1, &on));
    printf("enabled_initially=%u\n", on);
    printf("disable_kernel=%s\n", name(cudaGraphNodeSetEnabled(x, fn1, 0)));
    CK(cudaGraphNodeGetEnabled(x, fn1, &on));
    printf("enabled_after_disable=%u\n", on);
    CK(cudaMemset(d1, 0, bytes));
    CK(cudaMemset(d3, 0, bytes));
    launch(x, s);
    printf("disabled_kernel_launch=%d,%d\n", uniform(d1), uniform(d3));  // 0,0: the copy ran, the kernel not
    CK(cudaGraphNodeSetEnabled(x, fn1, 1));
    CK(cudaGraphNodeSetEnabled(x, cn, 0));
    launch(x, s);
    printf("disabled_memcpy_launch=%d,%d\n", uniform(d1), uniform(d3));  // 3,0
    CK(cudaGraphNodeSetEnabled(x, cn, 1));
    launch(x, s);
    printf("reenabled_launch=%d,%d\n", uniform(d1), uniform(d3));  // 3,3
    printf("enable_empty_node=%s\n", name(cudaGraphNodeSetEnabled(x, en, 1)));
    printf("get_enabled_empty_node=%s\n", name(cudaGraphNodeGetEnabled(x, en, &on)));
    printf("enable_foreign_node=%s\n", name(cudaGraphNodeSetEnabled(x, foreign, 1)));
    printf("get_enabled_null=%s\n", name(cudaGraphNodeGetEnabled(x, fn1, nullptr)));
    // kernel parameters through the generic calls: the graph's node, then the executable graph's copy
    void *a4[] = {&d1, &v4, &n_g};
    cudaGraphNodeParams np = {};
    np.type = cudaGraphNodeTypeKernel;
    np.kernel.func = (void *)fill;
    np.kernel.gridDim = grid_g;
    np.kernel.blockDim = block_g;
    np.kernel.kernelParams = a4;
    printf("exec_node_set_kernel=%s\n", name(cudaGraphExecNodeSetParams(x, fn1, &np)));
    launch(x, s);
    printf("exec_node_set_kernel_launch=%d\n", uniform(d3));  // 4
    np.type = cudaGraphNodeTypeMemset;
    printf("exec_node_set_kind_mismatch=%s\n", name(cudaGraphExecNodeSetParams(x, fn1, &np)));
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));

    // ---- event record / wait nodes
    cudaEvent_t e0, e1, e2, e3;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaEventCreate(&e2));
    CK(cudaEventCreate(&e3));
    CK(cudaGraphCreate(&g, 0));
    cudaGraphNode_t rn, wn;
    CK(cudaGraphAddEventRecordNode(&rn, g, nullptr, 0, e1));
    CK(cudaGraphAddEventWaitNode(&wn, g, &rn, 1, e1));
    cudaEvent_t ev = nullptr;
    CK(cudaGraphEventRecordNodeGetEvent(rn, &ev));
    printf("record_get_ok=%d\n", ev == e1);
    printf("record_set=%s\n", name(cudaGraphEventRecordNodeSetEvent(rn, e2)));
    CK(cudaGraphEventRecordNodeGetEvent(rn, &ev));
    printf("record_get_after_set_ok=%d\n", ev == e2);
    CK(cudaGraphEventWaitNodeGetEvent(wn, &ev));
    printf("wait_get_ok=%d\n", ev == e1);
    printf("wait_set=%s\n", name(cudaGraphEventWaitNodeSetEvent(wn, e2)));
    CK(cudaGraphEventWaitNodeGetEvent(wn, &ev));
    printf("wait_get_after_set_ok=%d\n", ev == e2);
    printf("record_get_wrong_kind=%s\n", name(cudaGraphEventRecordNodeGetEvent(wn, &ev)));
    printf("record_set_wrong_kind=%s\n", name(cudaGraphEventRecordNodeSetEvent(wn, e1)));
    printf("wait_get_wrong_kind=%s\n", name(cudaGraphEventWaitNodeGetEvent(rn, &ev)));
    printf("wait_set_wrong_kind=%s\n", name(cudaGraphEventWaitNodeSetEvent(rn, e1)));
    CK(cudaGraphInstantiate(&x, g, 0));
    printf("exec_record_set=%s\n", name(cudaGraphExecEventRecordNodeSetEvent(x, rn, e3)));
    printf("exec_wait_set=%s\n", name(cudaGraphExecEventWaitNodeSetEvent(x, wn, e3)));
    printf("exec_record_wrong_kind=%s\n", name(cudaGraphExecEventRecordNodeSetEvent(x, wn, e3)));
    printf("exec_wait_wrong_kind=%s\n", name(cudaGraphExecEventWaitNodeSetEvent(x, rn, e3)));
    printf("exec_record_foreign_node=%s\n", name(cudaGraphExecEventRecordNodeSetEvent(x, foreign, e3)));
    CK(cudaEventRecord(e0, s));
    launch(x, s);
    float ms = 0;
    printf("exec_record_launch=%s\n", name(cudaEventElapsedTime(&ms, e0, e3)));  // e3 was recorded
    CK(cudaGraphEventRecordNodeGetEvent(rn, &ev));
    printf("exec_record_node_unchanged=%d\n", ev == e2);
    // the generic calls on event nodes
    np = {};
    np.type = cudaGraphNodeTypeEventRecord;
    np.eventRecord.event = e1;
    printf("node_set_record=%s\n", name(cudaGraphNodeSetParams(rn, &np)));
    CK(cudaGraphEventRecordNodeGetEvent(rn, &ev));
    printf("node_set_record_get_ok=%d\n", ev == e1);
    np.type = cudaGraphNodeTypeWaitEvent;
    np.eventWait.event = e1;
    printf("exec_node_set_wait=%s\n", name(cudaGraphExecNodeSetParams(x, wn, &np)));
    launch(x, s);
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));

    // ---- child graph nodes: the executable graph's copy takes a new graph of the same shape
    cudaGraph_t child, child2, child3, child4;
    CK(cudaGraphCreate(&child, 0));
    void *a1[] = {&d1, &v3, &n_g};
    kp = fill_params(a1);
    cudaGraphNode_t k;
    CK(cudaGraphAddKernelNode(&k, child, nullptr, 0, &kp));
    CK(cudaGraphCreate(&child2, 0));
    void *a5[] = {&d2, &v4, &n_g};
    kp = fill_params(a5);
    CK(cudaGraphAddKernelNode(&k, child2, nullptr, 0, &kp));
    CK(cudaGraphCreate(&child3, 0));  // two nodes: another topology
    CK(cudaGraphAddKernelNode(&k, child3, nullptr, 0, &kp));
    CK(cudaGraphAddKernelNode(&k, child3, &k, 1, &kp));
    CK(cudaGraphCreate(&child4, 0));  // a memset instead of a kernel: another node kind
    mp = memset_params(d2, 5);
    CK(cudaGraphAddMemsetNode(&k, child4, nullptr, 0, &mp));
    CK(cudaGraphCreate(&g, 0));
    cudaGraphNode_t chn;
    CK(cudaGraphAddChildGraphNode(&chn, g, nullptr, 0, child));
    CK(cudaGraphAddEmptyNode(&en, g, &chn, 1));
    cudaGraph_t owned = nullptr;
    CK(cudaGraphChildGraphNodeGetGraph(chn, &owned));
    size_t cnt = 0;
    CK(cudaGraphGetNodes(owned, nullptr, &cnt));
    printf("child_get_graph_nodes=%zu\n", cnt);
    printf("child_get_graph_wrong_kind=%s\n", name(cudaGraphChildGraphNodeGetGraph(en, &owned)));
    CK(cudaMemset(d1, 0, bytes));
    CK(cudaMemset(d2, 0, bytes));
    CK(cudaGraphInstantiate(&x, g, 0));
    launch(x, s);
    printf("child_launch=%d,%d\n", uniform(d1), uniform(d2));  // 3,0
    printf("exec_child_set=%s\n", name(cudaGraphExecChildGraphNodeSetParams(x, chn, child2)));
    CK(cudaMemset(d1, 0, bytes));
    launch(x, s);
    printf("exec_child_launch=%d,%d\n", uniform(d1), uniform(d2));  // 0,4
    printf("exec_child_other_topology=%s\n", name(cudaGraphExecChildGraphNodeSetParams(x, chn, child3)));
    printf("exec_child_other_kind=%s\n", name(cudaGraphExecChildGraphNodeSetParams(x, chn, child4)));
    printf("exec_child_wrong_kind=%s\n", name(cudaGraphExecChildGraphNodeSetParams(x, en, child2)));
    np = {};
    np.type = cudaGraphNodeTypeGraph;
    np.graph.graph = child;
    printf("exec_node_set_child=%s\n", name(cudaGraphExecNodeSetParams(x, chn, &np)));
    CK(cudaMemset(d2, 0, bytes));
    launch(x, s);
    printf("exec_node_set_child_launch=%d,%d\n", uniform(d1), uniform(d2));  // 3,0
    // the graph's child graph node takes a copy of another graph (any shape); the executable graph keeps its own
    np.graph.graph = child3;
    printf("node_set_child=%s\n", name(cudaGraphNodeSetParams(chn, &np)));
    CK(cudaGraphChildGraphNodeGetGraph(chn, &owned));
    CK(cudaGraphGetNodes(owned, nullptr, &cnt));
    printf("node_set_child_nodes=%zu\n", cnt);  // 2
    CK(cudaMemset(d1, 0, bytes));
    launch(x, s);
    printf("node_set_child_old_exec_launch=%d,%d\n", uniform(d1), uniform(d2));  // 3,0
    cudaGraphExec_t x2;
    CK(cudaGraphInstantiate(&x2, g, 0));
    CK(cudaMemset(d1, 0, bytes));
    launch(x2, s);
    printf("node_set_child_new_exec_launch=%d,%d\n", uniform(d1), uniform(d2));  // 0,4
    CK(cudaGraphExecDestroy(x2));
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));

    // ---- the generic calls on memset and host nodes, and kinds that cannot be updated
    CK(cudaGraphCreate(&g, 0));
    mp = memset_params(d1, 21);
    CK(cudaGraphAddMemsetNode(&mn, g, nullptr, 0, &mp));
    CK(cudaGraphAddHostNode(&hn, g, &mn, 1, &hp));
    np = {};
    np.type = cudaGraphNodeTypeMemset;
    np.memset.dst = d1;
    np.memset.value = 22;
    np.memset.elementSize = 4;
    np.memset.width = n_g;
    np.memset.height = 1;
    printf("node_set_memset=%s\n", name(cudaGraphNodeSetParams(mn, &np)));
    CK(cudaGraphMemsetNodeGetParams(mn, &mg));
    printf("node_set_memset_get=%u\n", mg.value);
    np = {};
    np.type = cudaGraphNodeTypeHost;
    np.host.fn = count_b;
    np.host.userData = &host_b;
    printf("node_set_host=%s\n", name(cudaGraphNodeSetParams(hn, &np)));
    printf("node_set_kind_mismatch=%s\n", name(cudaGraphNodeSetParams(mn, &np)));
    CK(cudaGraphInstantiate(&x, g, 0));
    np = {};
    np.type = cudaGraphNodeTypeMemset;
    np.memset.dst = d1;
    np.memset.value = 23;
    np.memset.elementSize = 4;
    np.memset.width = n_g;
    np.memset.height = 1;
    printf("exec_node_set_memset=%s\n", name(cudaGraphExecNodeSetParams(x, mn, &np)));
    np = {};
    np.type = cudaGraphNodeTypeHost;
    np.host.fn = count_a;
    np.host.userData = &host_a;
    printf("exec_node_set_host=%s\n", name(cudaGraphExecNodeSetParams(x, hn, &np)));
    host_a = host_b = 0;
    launch(x, s);
    printf("exec_node_set_launch=%d,%d,%d\n", uniform(d1), host_a, host_b);  // 23,1,0
    printf("exec_node_set_foreign_node=%s\n", name(cudaGraphExecNodeSetParams(x, foreign, &np)));
    np = {};
    np.type = cudaGraphNodeTypeGraph;
    np.graph.graph = child;
    printf("node_set_child_wrong_kind=%s\n", name(cudaGraphNodeSetParams(hn, &np)));
    // memory alloc / free nodes cannot be updated
    cudaGraphNodeParams ap = {};
    ap.type = cudaGraphNodeTypeMemAlloc;
    ap.alloc.poolProps.allocType = cudaMemAllocationTypePinned;
    ap.alloc.poolProps.location.type = cudaMemLocationTypeDevice;
    ap.alloc.bytesize = bytes;
    cudaGraphNode_t an;
    CK(cudaGraphAddNode(&an, other, nullptr, nullptr, 0, &ap));
    printf("node_set_mem_alloc=%s\n", name(cudaGraphNodeSetParams(an, &ap)));
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));
    CK(cudaGraphDestroy(other));
    CK(cudaGraphDestroy(child));
    CK(cudaGraphDestroy(child2));
    CK(cudaGraphDestroy(child3));
    CK(cudaGraphDestroy(child4));
    printf("sync_after=%s\n", name(cudaStreamSynchronize(s)));
    printf("done=1\n");
    return 0;
}
