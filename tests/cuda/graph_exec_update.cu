// graph_exec_update.cu - cudaGraphExecUpdate as CUDA documents it: after an update the executable graph still
// answers to the nodes of the graph it was instantiated from (cudaGraphExec*NodeSetParams,
// cudaGraphExecNodeSetParams, cudaGraphNodeSetEnabled/GetEnabled take "a node from the graph which was used to
// instantiate graphExec"; a node of the update's graph is refused); the updates that fail
// (cudaGraphExecUpdateErrorTopologyChanged: another node count with errorNode NULL, another number of
// dependencies, a dependency on another node with errorFromNode that dependency; NodeTypeChanged;
// ParametersChanged: a 2D memset's shape) with errorNode the update graph's node, leaving the executable graph
// as it was; a kernel's function may change; and the user-object references of the update's graph replace the
// executable graph's (CUDA Programming Guide, "CUDA User Objects"). Launches after each step compute the values.
// Usage: graph_exec_update N. stdout: key=value lines.
#include "tf_test_io.h"
#include <atomic>
#include <unistd.h>

__global__ void fill(int *p, int v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = v;
}

__global__ void fill_plus_100(int *p, int v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = v + 100;
}

static int n_g;
static std::atomic<int> g_destroyed_a{0}, g_destroyed_b{0};
static void CUDART_CB destroy_a(void *) { g_destroyed_a++; }
static void CUDART_CB destroy_b(void *) { g_destroyed_b++; }
static void CUDART_CB host_fn(void *) {}

static const char *name(cudaError_t e) { return cudaGetErrorName(e); }

static const char *result_name(cudaGraphExecUpdateResult r)
{
    switch (r) {
    case cudaGraphExecUpdateSuccess: return "Success";
    case cudaGraphExecUpdateError: return "Error";
    case cudaGraphExecUpdateErrorTopologyChanged: return "TopologyChanged";
    case cudaGraphExecUpdateErrorNodeTypeChanged: return "NodeTypeChanged";
    case cudaGraphExecUpdateErrorFunctionChanged: return "FunctionChanged";
    case cudaGraphExecUpdateErrorParametersChanged: return "ParametersChanged";
    case cudaGraphExecUpdateErrorNotSupported: return "NotSupported";
    case cudaGraphExecUpdateErrorUnsupportedFunctionChange: return "UnsupportedFunctionChange";
    case cudaGraphExecUpdateErrorAttributesChanged: return "AttributesChanged";
    }
    return "?";
}

// Every element of the device array p (n_g of them), if they are all the same, else -1.
static int uniform(const int *p) { return device_uniform(p, n_g); }

static cudaKernelNodeParams kernel_params(void *func, void **args)
{
    cudaKernelNodeParams k = {};
    k.func = func;
    k.gridDim = dim3((n_g + 127) / 128);
    k.blockDim = dim3(128);
    k.kernelParams = args;
    return k;
}

static cudaMemsetParams memset_params(int *dst, int value, size_t width, size_t height)
{
    cudaMemsetParams m = {};
    m.dst = dst;
    m.value = value;
    m.elementSize = 4;
    m.width = width;
    m.height = height;
    m.pitch = width * 4;
    return m;
}

// A graph: memset of d1 to v1, then (depending on it) a kernel filling d2 with v2.
struct pair_graph {
    cudaGraph_t g;
    cudaGraphNode_t ms, k;
    int *d2, v2, n;
    void *args[3];
};

static void make_pair(pair_graph *p, int *d1, int v1, int *d2, int v2)
{
    CK(cudaGraphCreate(&p->g, 0));
    cudaMemsetParams m = memset_params(d1, v1, n_g, 1);
    CK(cudaGraphAddMemsetNode(&p->ms, p->g, nullptr, 0, &m));
    p->d2 = d2;
    p->v2 = v2;
    p->n = n_g;
    p->args[0] = &p->d2;
    p->args[1] = &p->v2;
    p->args[2] = &p->n;
    cudaKernelNodeParams k = kernel_params((void *)fill, p->args);
    CK(cudaGraphAddKernelNode(&p->k, p->g, &p->ms, 1, &k));
}

static void launch(cudaGraphExec_t x, cudaStream_t s)
{
    CK(cudaGraphLaunch(x, s));
    CK(cudaStreamSynchronize(s));
}

// Prints an update's answer: the error, the result and which nodes it names (as names given by the caller).
static void update(const char *key, cudaGraphExec_t x, cudaGraph_t g, int nnodes, const cudaGraphNode_t *nodes,
                   const char *const *names)
{
    cudaGraphExecUpdateResultInfo info;
    memset(&info, 0xab, sizeof info);
    cudaError_t e = cudaGraphExecUpdate(x, g, &info);
    const char *err = info.errorNode ? "other" : "null", *from = info.errorFromNode ? "other" : "null";
    for (int i = 0; i < nnodes; i++) {
        if (info.errorNode == nodes[i])
            err = names[i];
        if (info.errorFromNode == nodes[i])
            from = names[i];
    }
    printf("%s=%s\n%s_result=%s\n%s_error_node=%s\n%s_error_from_node=%s\n", key, name(e), key,
           result_name(info.result), key, err, key, from);
    (void)cudaGetLastError();
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: graph_exec_update N\n");
        return 2;
    }
    n_g = atoi(argv[1]);
    const size_t bytes = n_g * sizeof(int);
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    int *d1, *d2, *d3;
    CK(cudaMalloc(&d1, bytes));
    CK(cudaMalloc(&d2, bytes));
    CK(cudaMalloc(&d3, bytes));

    // ---- 1. an update to a graph of the same shape: the new values, the old nodes
    pair_graph a, b;
    make_pair(&a, d1, 1, d2, 2);
    make_pair(&b, d1, 3, d2, 4);
    cudaGraphExec_t x;
    CK(cudaGraphInstantiate(&x, a.g, 0));
    launch(x, s);
    printf("first_d1=%d\nfirst_d2=%d\n", uniform(d1), uniform(d2));
    const cudaGraphNode_t ab[] = {a.ms, a.k, b.ms, b.k};
    const char *const ab_names[] = {"a_memset", "a_kernel", "b_memset", "b_kernel"};
    update("update_same_shape", x, b.g, 4, ab, ab_names);
    launch(x, s);
    printf("updated_d1=%d\nupdated_d2=%d\n", uniform(d1), uniform(d2));

    // ---- 2. the per-node calls take the instantiation graph's nodes, not the update graph's
    int v = 5, *dst = d2, n = n_g;
    void *args[] = {&dst, &v, &n};
    cudaKernelNodeParams kp = kernel_params((void *)fill, args);
    printf("exec_kernel_set_original_node=%s\n", name(cudaGraphExecKernelNodeSetParams(x, a.k, &kp)));
    printf("exec_kernel_set_update_node=%s\n", name(cudaGraphExecKernelNodeSetParams(x, b.k, &kp)));
    (void)cudaGetLastError();
    cudaMemsetParams mp = memset_params(d1, 6, n_g, 1);
    printf("exec_memset_set_original_node=%s\n", name(cudaGraphExecMemsetNodeSetParams(x, a.ms, &mp)));
    printf("exec_memset_set_update_node=%s\n", name(cudaGraphExecMemsetNodeSetParams(x, b.ms, &mp)));
    (void)cudaGetLastError();
    launch(x, s);
    printf("set_d1=%d\nset_d2=%d\n", uniform(d1), uniform(d2));
    cudaGraphNodeParams np = {};
    np.type = cudaGraphNodeTypeMemset;
    np.memset.dst = d1;
    np.memset.value = 7;
    np.memset.elementSize = 4;
    np.memset.width = n_g;
    np.memset.height = 1;
    printf("exec_node_set_original_node=%s\n", name(cudaGraphExecNodeSetParams(x, a.ms, &np)));
    printf("exec_node_set_update_node=%s\n", name(cudaGraphExecNodeSetParams(x, b.ms, &np)));
    (void)cudaGetLastError();
    printf("enable_original_node=%s\n", name(cudaGraphNodeSetEnabled(x, a.k, 0)));
    printf("enable_update_node=%s\n", name(cudaGraphNodeSetEnabled(x, b.k, 1)));
    (void)cudaGetLastError();
    unsigned on = 99;
    printf("get_enabled_original_node=%s\n", name(cudaGraphNodeGetEnabled(x, a.k, &on)));
    printf("get_enabled_original_value=%u\n", on);
    printf("get_enabled_update_node=%s\n", name(cudaGraphNodeGetEnabled(x, b.k, &on)));
    (void)cudaGetLastError();
    CK(cudaMemset(d2, 0, bytes));
    launch(x, s);
    printf("disabled_d1=%d\ndisabled_d2=%d\n", uniform(d1), uniform(d2));
    CK(cudaGraphNodeSetEnabled(x, a.k, 1));

    // ---- 3. updates that fail, naming the update graph's nodes; the executable graph stays as it was
    cudaGraph_t c;  // three nodes
    cudaGraphNode_t c_nodes[3];
    CK(cudaGraphCreate(&c, 0));
    for (int i = 0; i < 3; i++)
        CK(cudaGraphAddEmptyNode(&c_nodes[i], c, nullptr, 0));
    const char *const c_names[] = {"c0", "c1", "c2"};
    update("update_node_count", x, c, 3, c_nodes, c_names);

    cudaGraph_t t;  // a host node in the kernel's place
    cudaGraphNode_t t_nodes[2];
    CK(cudaGraphCreate(&t, 0));
    cudaMemsetParams m8 = memset_params(d1, 8, n_g, 1);
    CK(cudaGraphAddMemsetNode(&t_nodes[0], t, nullptr, 0, &m8));
    cudaHostNodeParams hp = {host_fn, nullptr};
    CK(cudaGraphAddHostNode(&t_nodes[1], t, &t_nodes[0], 1, &hp));
    const char *const t_names[] = {"t_memset", "t_host"};
    update("update_node_type", x, t, 2, t_nodes, t_names);
    launch(x, s);
    printf("after_failures_d1=%d\nafter_failures_d2=%d\n", uniform(d1), uniform(d2));

    // a kernel's function may change (CUDA 11.2 on): the update's kernel runs
    pair_graph f;
    make_pair(&f, d1, 9, d2, 10);
    cudaKernelNodeParams fk = kernel_params((void *)fill_plus_100, f.args);
    CK(cudaGraphKernelNodeSetParams(f.k, &fk));
    update("update_function", x, f.g, 0, nullptr, nullptr);
    launch(x, s);
    printf("function_d1=%d\nfunction_d2=%d\n", uniform(d1), uniform(d2));

    // edges: empty nodes p0, p1, p2 with p2 after p0; the updates put p2 after p1, or after both
    cudaGraphNode_t n0[3], n1[3], n2[3];
    cudaGraph_t eg[3];
    cudaGraphNode_t *en[] = {n0, n1, n2};
    for (int gi = 0; gi < 3; gi++) {
        CK(cudaGraphCreate(&eg[gi], 0));
        for (int i = 0; i < 2; i++)
            CK(cudaGraphAddEmptyNode(&en[gi][i], eg[gi], nullptr, 0));
        cudaGraphNode_t *deps = gi == 1 ? &en[gi][1] : &en[gi][0];
        CK(cudaGraphAddEmptyNode(&en[gi][2], eg[gi], deps, gi == 2 ? 2 : 1));
    }
    cudaGraphExec_t xe;
    CK(cudaGraphInstantiate(&xe, eg[0], 0));
    const char *const e_names[] = {"p0", "p1", "p2"};
    update("update_other_dependency", xe, eg[1], 3, n1, e_names);
    update("update_more_dependencies", xe, eg[2], 3, n2, e_names);
    update("update_same_edges", xe, eg[0], 3, n0, e_names);
    CK(cudaGraphExecDestroy(xe));

    // a 2D memset keeps its shape: its value may change, not its width
    cudaGraph_t m0, m1, m2;
    cudaGraphNode_t mn0, mn1, mn2;
    cudaMemsetParams q0 = memset_params(d3, 11, n_g / 2, 2), q1 = memset_params(d3, 12, n_g / 2, 2),
                     q2 = memset_params(d3, 13, n_g / 4, 2);
    CK(cudaGraphCreate(&m0, 0));
    CK(cudaGraphCreate(&m1, 0));
    CK(cudaGraphCreate(&m2, 0));
    CK(cudaGraphAddMemsetNode(&mn0, m0, nullptr, 0, &q0));
    CK(cudaGraphAddMemsetNode(&mn1, m1, nullptr, 0, &q1));
    CK(cudaGraphAddMemsetNode(&mn2, m2, nullptr, 0, &q2));
    cudaGraphExec_t xm;
    CK(cudaGraphInstantiate(&xm, m0, 0));
    const char *const m_names[] = {"m0", "m1", "m2"};
    const cudaGraphNode_t m_nodes[] = {mn0, mn1, mn2};
    update("update_memset_2d_value", xm, m1, 3, m_nodes, m_names);
    update("update_memset_2d_width", xm, m2, 3, m_nodes, m_names);
    launch(xm, s);
    printf("memset_2d_d3=%d\n", uniform(d3));
    CK(cudaGraphExecDestroy(xm));

    // ---- 4. user objects: the update graph's references replace the executable graph's
    cudaUserObject_t oa, ob;
    CK(cudaUserObjectCreate(&oa, nullptr, destroy_a, 1, cudaUserObjectNoDestructorSync));
    CK(cudaUserObjectCreate(&ob, nullptr, destroy_b, 1, cudaUserObjectNoDestructorSync));
    pair_graph ua, ub;
    make_pair(&ua, d1, 14, d2, 15);
    make_pair(&ub, d1, 16, d2, 17);
    CK(cudaGraphRetainUserObject(ua.g, oa, 1, cudaGraphUserObjectMove));
    CK(cudaGraphRetainUserObject(ub.g, ob, 1, cudaGraphUserObjectMove));
    cudaGraphExec_t xu;
    CK(cudaGraphInstantiate(&xu, ua.g, 0));
    CK(cudaGraphDestroy(ua.g));  // the executable graph holds a's object now, alone
    launch(xu, s);
    usleep(100 * 1000);
    printf("uo_a_destroyed_before_update=%d\n", g_destroyed_a.load());
    update("update_user_objects", xu, ub.g, 0, nullptr, nullptr);
    for (int i = 0; i < 400 && g_destroyed_a.load() == 0; i++)
        usleep(10 * 1000);
    printf("uo_a_destroyed_after_update=%d\n", g_destroyed_a.load());
    CK(cudaGraphDestroy(ub.g));  // b's object is the executable graph's now, alone
    launch(xu, s);
    printf("uo_launch_d1=%d\nuo_launch_d2=%d\n", uniform(d1), uniform(d2));
    usleep(100 * 1000);
    printf("uo_b_destroyed_before_exec_destroy=%d\n", g_destroyed_b.load());
    CK(cudaGraphExecDestroy(xu));
    for (int i = 0; i < 400 && g_destroyed_b.load() == 0; i++)
        usleep(10 * 1000);
    usleep(100 * 1000);  // a second run would show by now
    printf("uo_a_destroyed=%d\nuo_b_destroyed=%d\n", g_destroyed_a.load(), g_destroyed_b.load());

    CK(cudaGraphExecDestroy(x));
    for (cudaGraph_t g : {a.g, b.g, c, t, f.g, eg[0], eg[1], eg[2], m0, m1, m2})
        CK(cudaGraphDestroy(g));
    CK(cudaFree(d1));
    CK(cudaFree(d2));
    CK(cudaFree(d3));
    printf("sync_after=%s\n", name(cudaDeviceSynchronize()));
    printf("done=1\n");
    return 0;
}
