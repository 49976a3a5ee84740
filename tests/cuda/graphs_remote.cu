// graphs_remote.cu - CUDA graphs as a remote GPU can run them (device memory only inside graphs), the same
// program on the emulated device and through the stub: stream capture (fork/join over two streams,
// kernels, memset, device-to-device copy) instantiated once and launched repeatedly with new inputs;
// capture-mode rules (a cudaMalloc during capture in Global / Relaxed / ThreadLocal-in-another-thread);
// cudaStreamBeginCaptureToGraph; graph memory (cudaMallocAsync/cudaFreeAsync captured); an explicit graph (memset -> kernel -> memcpy D2D, + empty, child graph)
// with its nodes/edges queried, cudaGraphExecKernelNodeSetParams, cudaGraphKernelNodeGetParams,
// clone + cudaGraphExecUpdate, cudaGraphDebugDotPrint; and what a remote GPU must refuse (host memory in a
// graph, host nodes) reported as error names for the test to check per backend.
// I/O contract: graphs_remote N LAUNCHES in.bin out.bin
//   in.bin = x[N] float32. Launch r (0-based) of the captured graph takes x + r (copied in before the
//   launch, outside the graph) and computes y = (x+r)*2+1 (first half, stream 1) / (x+r)*2-1 (second
//   half, stream 2), z = y*3 (after a memset of z), w = copy of z. out.bin = w of the last launch.
//   stdout: key=value lines (see the printf calls).
#include <cstring>
#include <string>
#include <thread>
#include <atomic>
#include "tf_test_io.h"

__global__ void affine(const float *x, float *y, int n, float a, float b)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = x[i] * a + b;
}

__global__ void add_k(int *p, int n, int k)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] += k;
}

static bool all_eq(const int *d, int n, int v)
{
    std::vector<int> h(n);
    CK(cudaMemcpy(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        if (h[i] != v)
            return false;
    return true;
}

static const char *name(cudaError_t e) { return cudaGetErrorName(e); }

static int g_host_calls;
static void CUDART_CB count_call(void *arg) { g_host_calls += *(int *)arg; }

int main(int argc, char **argv)
{
    if (argc < 5) {
        printf("usage: graphs_remote N LAUNCHES in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]), launches = atoi(argv[2]), half = n / 2;
    FILE *in = open_or_die(argv[3], "rb");
    std::vector<float> x = read_array<float>(in, n);
    fclose(in);
    float *dx, *dy, *dz, *dw;
    CK(cudaMalloc(&dx, n * sizeof(float)));
    CK(cudaMalloc(&dy, n * sizeof(float)));
    CK(cudaMalloc(&dz, n * sizeof(float)));
    CK(cudaMalloc(&dw, n * sizeof(float)));
    cudaStream_t s1, s2;
    CK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    cudaEvent_t fork, join;
    CK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));

    // ---- 1. stream capture -> instantiate -> launch repeatedly
    cudaStreamCaptureStatus before, during, after;
    CK(cudaStreamIsCapturing(s1, &before));
    CK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    CK(cudaStreamIsCapturing(s1, &during));
    CK(cudaEventRecord(fork, s1));
    CK(cudaStreamWaitEvent(s2, fork, 0));
    affine<<<(half + 127) / 128, 128, 0, s1>>>(dx, dy, half, 2.0f, 1.0f);
    affine<<<(n - half + 127) / 128, 128, 0, s2>>>(dx + half, dy + half, n - half, 2.0f, -1.0f);
    CK(cudaGetLastError());
    CK(cudaEventRecord(join, s2));
    CK(cudaStreamWaitEvent(s1, join, 0));
    CK(cudaMemsetAsync(dz, 0, n * sizeof(float), s1));
    cudaStreamCaptureStatus info_status;
    unsigned long long capture_id = 0;
    const cudaGraphNode_t *deps = nullptr;
    size_t ndeps = 0;
    CK(cudaStreamGetCaptureInfo(s1, &info_status, &capture_id, nullptr, &deps, nullptr, &ndeps));
    affine<<<(n + 255) / 256, 256, 0, s1>>>(dy, dz, n, 3.0f, 0.0f);
    CK(cudaMemcpyAsync(dw, dz, n * sizeof(float), cudaMemcpyDeviceToDevice, s1));
    cudaGraph_t graph;
    CK(cudaStreamEndCapture(s1, &graph));
    CK(cudaStreamIsCapturing(s1, &after));
    size_t nodes = 0, edges = 0;
    CK(cudaGraphGetNodes(graph, nullptr, &nodes));
    CK(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &edges));
    cudaGraphExec_t exec;
    CK(cudaGraphInstantiate(&exec, graph, 0));
    CK(cudaGraphDestroy(graph)); // the executable graph stays valid
    int good = 0;
    std::vector<float> hx(n), hw(n);
    for (int r = 0; r < launches; r++) {
        for (int i = 0; i < n; i++)
            hx[i] = x[i] + (float)r;
        CK(cudaMemcpyAsync(dx, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice, s1));
        CK(cudaGraphLaunch(exec, s1));
        CK(cudaMemcpyAsync(hw.data(), dw, n * sizeof(float), cudaMemcpyDeviceToHost, s1));
        CK(cudaStreamSynchronize(s1));
        bool ok = true;
        for (int i = 0; i < n; i++) {
            float y = (x[i] + (float)r) * 2.0f + (i < half ? 1.0f : -1.0f);
            float d = hw[i] - y * 3.0f;
            ok = ok && d < 1e-3f && d > -1e-3f;
        }
        good += ok;
    }
    FILE *f = open_or_die(argv[4], "wb");
    write_array(f, hw);
    fclose(f);
    CK(cudaGraphExecDestroy(exec));
    printf("status_before=%d\nstatus_during=%d\nstatus_after=%d\ninfo_status=%d\ncapture_id_nonzero=%d\n"
           "capture_deps=%zu\nnodes=%zu\nedges=%zu\nlaunch_ok=%d\n",
           (int)before, (int)during, (int)after, (int)info_status, capture_id != 0, ndeps, nodes, edges, good);

    // ---- 2. capture modes: an unsafe call (cudaMalloc) during a capture
    void *tmp = nullptr;
    cudaGraph_t gbad = nullptr;
    CK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    cudaError_t e_global = cudaMalloc(&tmp, 256);
    cudaStreamCaptureStatus st_inval;
    CK(cudaStreamIsCapturing(s1, &st_inval));
    cudaError_t e_end = cudaStreamEndCapture(s1, &gbad);
    (void)cudaGetLastError();
    printf("malloc_global=%s\nstatus_invalidated=%d\nend_invalidated=%s\ngraph_null=%d\n", name(e_global),
           (int)st_inval, name(e_end), gbad == nullptr);

    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    CK(cudaThreadExchangeStreamCaptureMode(&mode));
    CK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    cudaError_t e_relaxed = cudaMalloc(&tmp, 256);
    CK(cudaThreadExchangeStreamCaptureMode(&mode)); // back to Global
    affine<<<1, 32, 0, s1>>>(dx, dy, 32, 1.0f, 0.0f);
    cudaGraph_t gok = nullptr;
    cudaError_t e_end_relaxed = cudaStreamEndCapture(s1, &gok);
    printf("malloc_relaxed=%s\nend_relaxed=%s\n", name(e_relaxed), name(e_end_relaxed));
    if (e_relaxed == cudaSuccess)
        CK(cudaFree(tmp));
    if (gok)
        CK(cudaGraphDestroy(gok));

    // another thread captures: ThreadLocal does not bind this thread, Global does
    for (int round = 0; round < 2; round++) {
        cudaStreamCaptureMode other = round == 0 ? cudaStreamCaptureModeThreadLocal : cudaStreamCaptureModeGlobal;
        std::atomic<int> phase{0};
        cudaError_t e_begin = cudaSuccess, e_end_other = cudaSuccess;
        std::thread t([&] {
            cudaSetDevice(0); // makes the device's context current in this thread
            e_begin = cudaStreamBeginCapture(s2, other);
            phase = 1;
            while (phase != 2)
                std::this_thread::yield();
            affine<<<1, 32, 0, s2>>>(dx, dy, 32, 1.0f, 0.0f);
            cudaGraph_t g = nullptr;
            e_end_other = cudaStreamEndCapture(s2, &g);
            if (g)
                cudaGraphDestroy(g);
        });
        while (phase != 1)
            std::this_thread::yield();
        void *p = nullptr;
        cudaError_t e = cudaMalloc(&p, 256);
        phase = 2;
        t.join();
        (void)cudaGetLastError();
        if (e == cudaSuccess)
            CK(cudaFree(p));
        printf("%s_begin=%s\nmalloc_other_%s=%s\n%s_end=%s\n", round ? "global" : "threadlocal", name(e_begin),
               round ? "global" : "threadlocal", name(e), round ? "global" : "threadlocal", name(e_end_other));
    }

    // ---- 3. capture into an existing graph, after one of its nodes
    int *dq;
    const int nq = 300;
    CK(cudaMalloc(&dq, nq * sizeof(int)));
    cudaGraph_t g3;
    CK(cudaGraphCreate(&g3, 0));
    cudaMemsetParams mp = {};
    mp.dst = dq;
    mp.value = 5;
    mp.elementSize = 4;
    mp.width = nq;
    mp.height = 1;
    cudaGraphNode_t nset3;
    CK(cudaGraphAddMemsetNode(&nset3, g3, nullptr, 0, &mp));
    CK(cudaStreamBeginCaptureToGraph(s1, g3, &nset3, nullptr, 1, cudaStreamCaptureModeGlobal));
    const cudaGraphNode_t *deps3 = nullptr;
    size_t ndeps3 = 0;
    cudaGraph_t cap3 = nullptr;
    CK(cudaStreamGetCaptureInfo(s1, &info_status, nullptr, &cap3, &deps3, nullptr, &ndeps3));
    bool deps3_ok = cap3 == g3 && ndeps3 == 1 && deps3[0] == nset3;
    cudaError_t e_update = cudaStreamUpdateCaptureDependencies(s1, &nset3, nullptr, 1, cudaStreamSetCaptureDependencies);
    add_k<<<(nq + 127) / 128, 128, 0, s1>>>(dq, nq, 1);
    cudaGraph_t g3out = nullptr;
    CK(cudaStreamEndCapture(s1, &g3out));
    cudaGraphExec_t e3;
    CK(cudaGraphInstantiate(&e3, g3, 0));
    CK(cudaGraphLaunch(e3, s1));
    CK(cudaStreamSynchronize(s1));
    size_t n3 = 0, e3n = 0;
    CK(cudaGraphGetNodes(g3, nullptr, &n3));
    CK(cudaGraphGetEdges(g3, nullptr, nullptr, nullptr, &e3n));
    printf("capture_to_graph=%s\ncapture_to_graph_same=%d\ncapture_to_graph_nodes=%zu\ncapture_to_graph_edges=%zu\n"
           "capture_to_graph_deps=%s\nupdate_capture_deps=%s\n",
           all_eq(dq, nq, 6) ? "ok" : "bad", g3out == g3, n3, e3n, deps3_ok ? "ok" : "bad", name(e_update));
    CK(cudaGraphExecDestroy(e3));
    CK(cudaGraphDestroy(g3));

    // ---- 4. an explicit graph: memset -> kernel -> memcpy D2D (+ an empty node after the copy)
    int *di, *dj;
    const int ni = 256;
    CK(cudaMalloc(&di, ni * sizeof(int)));
    CK(cudaMalloc(&dj, ni * sizeof(int)));
    cudaGraph_t g4;
    CK(cudaGraphCreate(&g4, 0));
    mp.dst = di;
    mp.value = 7;
    mp.width = ni;
    cudaGraphNode_t nset, nker, ncopy, nempty;
    CK(cudaGraphAddMemsetNode(&nset, g4, nullptr, 0, &mp));
    int cnt = ni, k = 1;
    void *kargs[] = {&di, &cnt, &k};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)add_k;
    kp.gridDim = dim3(2);
    kp.blockDim = dim3(128);
    kp.kernelParams = kargs;
    CK(cudaGraphAddKernelNode(&nker, g4, &nset, 1, &kp));
    CK(cudaGraphAddMemcpyNode1D(&ncopy, g4, &nker, 1, dj, di, ni * sizeof(int), cudaMemcpyDeviceToDevice));
    CK(cudaGraphAddEmptyNode(&nempty, g4, &ncopy, 1));
    size_t n4 = 0, e4 = 0, r4 = 0;
    CK(cudaGraphGetNodes(g4, nullptr, &n4));
    CK(cudaGraphGetEdges(g4, nullptr, nullptr, nullptr, &e4));
    CK(cudaGraphGetRootNodes(g4, nullptr, &r4));
    cudaGraphNode_t roots[4];
    size_t r4n = 4;
    CK(cudaGraphGetRootNodes(g4, roots, &r4n));
    cudaGraphNodeType t_root, t_ker, t_copy;
    CK(cudaGraphNodeGetType(roots[0], &t_root));
    CK(cudaGraphNodeGetType(nker, &t_ker));
    CK(cudaGraphNodeGetType(ncopy, &t_copy));
    cudaGraphExec_t x4;
    CK(cudaGraphInstantiate(&x4, g4, 0));
    CK(cudaGraphLaunch(x4, s1));
    CK(cudaStreamSynchronize(s1));
    bool built = all_eq(dj, ni, 8);
    // the executable graph's kernel node gets k = 5: relaunch gives 7 + 5
    int k5 = 5;
    void *kargs5[] = {&di, &cnt, &k5};
    kp.kernelParams = kargs5;
    CK(cudaGraphExecKernelNodeSetParams(x4, nker, &kp));
    CK(cudaGraphLaunch(x4, s1));
    CK(cudaStreamSynchronize(s1));
    bool exec_set = all_eq(dj, ni, 12);
    // the graph's own node still has k = 1
    cudaKernelNodeParams got = {};
    CK(cudaGraphKernelNodeGetParams(nker, &got));
    bool get_ok = got.kernelParams && *(int *)got.kernelParams[2] == 1 && *(int *)got.kernelParams[1] == ni &&
                  got.gridDim.x == 2 && got.blockDim.x == 128;
    // a clone with k = 40 on its kernel node, pushed into the executable graph by cudaGraphExecUpdate
    cudaGraph_t g4c;
    CK(cudaGraphClone(&g4c, g4));
    cudaGraphNode_t nker_c;
    CK(cudaGraphNodeFindInClone(&nker_c, nker, g4c));
    int k40 = 40;
    void *kargs40[] = {&di, &cnt, &k40};
    kp.kernelParams = kargs40;
    CK(cudaGraphKernelNodeSetParams(nker_c, &kp));
    cudaGraphExecUpdateResultInfo ui;
    CK(cudaGraphExecUpdate(x4, g4c, &ui));
    CK(cudaGraphLaunch(x4, s1));
    CK(cudaStreamSynchronize(s1));
    bool updated = all_eq(dj, ni, 47);
    // a child graph node: the whole of g4 inside g5, after a memset of dj to 0
    cudaGraph_t g5;
    CK(cudaGraphCreate(&g5, 0));
    cudaGraphNode_t nchild;
    CK(cudaGraphAddChildGraphNode(&nchild, g5, nullptr, 0, g4));
    cudaGraphExec_t x5;
    CK(cudaGraphInstantiate(&x5, g5, 0));
    CK(cudaGraphLaunch(x5, s2));
    CK(cudaStreamSynchronize(s2));
    bool child = all_eq(dj, ni, 8);
    std::string dot = std::string(argv[4]) + ".dot";
    CK(cudaGraphDebugDotPrint(g4, dot.c_str(), 0));
    FILE *df = fopen(dot.c_str(), "r");
    char dbuf[64] = "";
    size_t dn = df ? fread(dbuf, 1, sizeof dbuf - 1, df) : 0;
    dbuf[dn] = 0;
    if (df)
        fclose(df);
    printf("explicit_graph=%s\nexplicit_nodes=%zu\nexplicit_edges=%zu\nexplicit_roots=%zu\nroot_type=%d\n"
           "kernel_type=%d\ncopy_type=%d\nexec_set_params=%s\nget_params=%s\nexec_update=%s\nupdate_result=%d\n"
           "child_graph=%s\ndot=%s\n",
           built ? "ok" : "bad", n4, e4, r4, (int)t_root, (int)t_ker, (int)t_copy, exec_set ? "ok" : "bad",
           get_ok ? "ok" : "bad", updated ? "ok" : "bad", (int)ui.result, child ? "ok" : "bad",
           strstr(dbuf, "digraph") ? "ok" : "bad");

    // ---- 5. graph memory, as PyTorch's cudaMallocAsync allocator captures it: a temporary allocated and
    // freed inside the capture (alloc and free nodes), the graph launched repeatedly with new inputs
    CK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    float *tmpd = nullptr;
    CK(cudaMallocAsync((void **)&tmpd, n * sizeof(float), s1));
    affine<<<(n + 255) / 256, 256, 0, s1>>>(dx, tmpd, n, 2.0f, 0.0f);
    affine<<<(n + 255) / 256, 256, 0, s1>>>(tmpd, dw, n, 1.0f, 5.0f);
    CK(cudaFreeAsync(tmpd, s1));
    cudaGraph_t g8;
    CK(cudaStreamEndCapture(s1, &g8));
    size_t n8 = 0;
    CK(cudaGraphGetNodes(g8, nullptr, &n8));
    std::vector<cudaGraphNode_t> nodes8(n8);
    CK(cudaGraphGetNodes(g8, nodes8.data(), &n8));
    int allocs = 0, frees = 0;
    for (size_t i = 0; i < n8; i++) {
        cudaGraphNodeType t;
        CK(cudaGraphNodeGetType(nodes8[i], &t));
        allocs += t == cudaGraphNodeTypeMemAlloc;
        frees += t == cudaGraphNodeTypeMemFree;
    }
    cudaGraphExec_t x8;
    CK(cudaGraphInstantiate(&x8, g8, 0));
    CK(cudaGraphDestroy(g8));
    int mem_good = 0;
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < n; i++)
            hx[i] = x[i] + (float)r;
        CK(cudaMemcpyAsync(dx, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice, s1));
        CK(cudaGraphLaunch(x8, s1));
        CK(cudaMemcpyAsync(hw.data(), dw, n * sizeof(float), cudaMemcpyDeviceToHost, s1));
        CK(cudaStreamSynchronize(s1));
        bool ok = true;
        for (int i = 0; i < n; i++) {
            float d = hw[i] - ((x[i] + (float)r) * 2.0f + 5.0f);
            ok = ok && d < 1e-3f && d > -1e-3f;
        }
        mem_good += ok;
    }
    CK(cudaGraphExecDestroy(x8));
    printf("graph_mem_nodes=%zu\nmem_alloc_nodes=%d\nmem_free_nodes=%d\ngraph_mem_launch_ok=%d\n", n8, allocs, frees,
           mem_good);

    // ---- 6. what involves this process's memory or code inside a graph (the test checks per backend)
    static int host_buf[ni];
    cudaGraphNode_t nh;
    cudaError_t e_hcopy = cudaGraphAddMemcpyNode1D(&nh, g4, nullptr, 0, dj, host_buf, sizeof host_buf,
                                                   cudaMemcpyHostToDevice);
    (void)cudaGetLastError();
    cudaHostNodeParams hp = {};
    hp.fn = [](void *) {};
    cudaError_t e_hnode = cudaGraphAddHostNode(&nh, g4, nullptr, 0, &hp);
    (void)cudaGetLastError();
    // host nodes run this process's function when the graph reaches them: built (kernel -> host) and
    // captured (kernel, cudaLaunchHostFunc, kernel), each launched a few times
    static int one = 1, ten = 10;
    cudaGraph_t g6;
    CK(cudaGraphCreate(&g6, 0));
    cudaGraphNode_t nk6, nh6;
    kp.kernelParams = kargs;
    CK(cudaGraphAddKernelNode(&nk6, g6, nullptr, 0, &kp));
    hp.fn = count_call;
    hp.userData = &one;
    CK(cudaGraphAddHostNode(&nh6, g6, &nk6, 1, &hp));
    cudaGraphExec_t x6;
    CK(cudaGraphInstantiate(&x6, g6, 0));
    for (int i = 0; i < 3; i++)
        CK(cudaGraphLaunch(x6, s1));
    CK(cudaStreamSynchronize(s1));
    int built_calls = g_host_calls;
    CK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    add_k<<<2, 128, 0, s1>>>(di, ni, 1);
    CK(cudaLaunchHostFunc(s1, count_call, &ten));
    add_k<<<2, 128, 0, s1>>>(di, ni, 1);
    cudaGraph_t g7;
    CK(cudaStreamEndCapture(s1, &g7));
    int calls_at_capture = g_host_calls;
    cudaGraphExec_t x7;
    CK(cudaGraphInstantiate(&x7, g7, 0));
    for (int i = 0; i < 2; i++)
        CK(cudaGraphLaunch(x7, s1));
    CK(cudaStreamSynchronize(s1));
    printf("host_node_calls=%d\nhost_calls_at_capture=%d\ncaptured_host_calls=%d\n", built_calls,
           calls_at_capture - built_calls, g_host_calls - calls_at_capture);
    CK(cudaGraphExecDestroy(x6));
    CK(cudaGraphExecDestroy(x7));
    CK(cudaGraphDestroy(g6));
    CK(cudaGraphDestroy(g7));
    CK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    cudaError_t e_cap_h2d = cudaMemcpyAsync(di, host_buf, sizeof host_buf, cudaMemcpyHostToDevice, s1);
    cudaGraph_t gh = nullptr;
    cudaError_t e_cap_end = cudaStreamEndCapture(s1, &gh);
    (void)cudaGetLastError();
    if (gh)
        CK(cudaGraphDestroy(gh));
    // a bogus executable graph is an error, not a crash
    cudaError_t e_bogus = cudaGraphLaunch((cudaGraphExec_t)(uintptr_t)0x5a5a5a50, s1);
    (void)cudaGetLastError();
    cudaError_t e_sync = cudaStreamSynchronize(s1);
    (void)cudaGetLastError();
    printf("host_copy_node=%s\nhost_node=%s\ncaptured_h2d=%s\ncaptured_h2d_end=%s\nbogus_exec=%s\nsync_after=%s\n",
           name(e_hcopy), name(e_hnode), name(e_cap_h2d), name(e_cap_end), name(e_bogus), name(e_sync));
    CK(cudaGraphExecDestroy(x4));
    CK(cudaGraphExecDestroy(x5));
    CK(cudaGraphDestroy(g4));
    CK(cudaGraphDestroy(g4c));
    CK(cudaGraphDestroy(g5));
    printf("done=1\n");
    return 0;
}
