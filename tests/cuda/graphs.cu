// graphs.cu - CUDA graphs: (1) stream capture with a fork/join across two streams (event record +
// cudaStreamWaitEvent), async copies, kernels and a host function, instantiated once and launched
// with new inputs several times; (2) a graph built node by node (memset -> kernel -> host).
// I/O contract: graphs N LAUNCHES in.bin out.bin
//   in.bin = x[N] float32.  For launch r (0-based) the captured graph computes, on input
//   x + r (the host buffer is rewritten before each launch): y = (x + r) * 2 + 1 in the first half
//   and (x + r) * 2 - 1 in the second half (two streams), then z = y * 3.
//   out.bin = z of the last launch, float32[N].
//   stdout: "capture_status=<cudaStreamCaptureStatus while capturing>", "nodes=<nodes captured>",
//           "launch_ok=<launches whose result matched the host reference>", "host_calls=<count>",
//           "built_graph=<ok|bad>" (explicit graph: memset 7s, kernel adds 1, host fn counted).
#include <cstring>
#include "tf_test_io.h"

__global__ void affine(const float *x, float *y, int n, float a, float b)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = x[i] * a + b;
}

__global__ void add_one(int *p, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] += 1;
}

static int g_host_calls;
static void CUDART_CB count_call(void *) { g_host_calls++; }

int main(int argc, char **argv)
{
    if (argc < 5) {
        printf("usage: graphs N LAUNCHES in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]), launches = atoi(argv[2]), half = n / 2;
    FILE *in = open_or_die(argv[3], "rb");
    std::vector<float> x = read_array<float>(in, n);
    fclose(in);
    float *hx, *hz, *dx, *dy, *dz;
    CK(cudaMallocHost(&hx, n * sizeof(float)));
    CK(cudaMallocHost(&hz, n * sizeof(float)));
    CK(cudaMalloc(&dx, n * sizeof(float)));
    CK(cudaMalloc(&dy, n * sizeof(float)));
    CK(cudaMalloc(&dz, n * sizeof(float)));
    cudaStream_t s1, s2;
    CK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    cudaEvent_t fork, join;
    CK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    CK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));

    CK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
    cudaStreamCaptureStatus st;
    CK(cudaStreamIsCapturing(s1, &st));
    CK(cudaMemcpyAsync(dx, hx, n * sizeof(float), cudaMemcpyHostToDevice, s1));
    CK(cudaEventRecord(fork, s1));
    CK(cudaStreamWaitEvent(s2, fork, 0));
    affine<<<(half + 127) / 128, 128, 0, s1>>>(dx, dy, half, 2.0f, 1.0f);
    affine<<<(n - half + 127) / 128, 128, 0, s2>>>(dx + half, dy + half, n - half, 2.0f, -1.0f);
    CK(cudaEventRecord(join, s2));
    CK(cudaStreamWaitEvent(s1, join, 0));
    affine<<<(n + 255) / 256, 256, 0, s1>>>(dy, dz, n, 3.0f, 0.0f);
    CK(cudaMemcpyAsync(hz, dz, n * sizeof(float), cudaMemcpyDeviceToHost, s1));
    CK(cudaLaunchHostFunc(s1, count_call, NULL));
    cudaGraph_t graph;
    CK(cudaStreamEndCapture(s1, &graph));
    size_t nodes = 0;
    CK(cudaGraphGetNodes(graph, NULL, &nodes));
    cudaGraphExec_t exec;
    CK(cudaGraphInstantiate(&exec, graph, 0));
    CK(cudaGraphDestroy(graph)); /* the executable graph stays valid */
    int good = 0;
    for (int r = 0; r < launches; r++) {
        for (int i = 0; i < n; i++)
            hx[i] = x[i] + (float)r;
        CK(cudaGraphLaunch(exec, s1));
        CK(cudaStreamSynchronize(s1));
        bool ok = true;
        for (int i = 0; i < n; i++) {
            float y = (x[i] + (float)r) * 2.0f + (i < half ? 1.0f : -1.0f);
            float d = hz[i] - y * 3.0f;
            ok = ok && d < 1e-3f && d > -1e-3f;
        }
        good += ok;
    }
    std::vector<float> z(hz, hz + n);
    FILE *f = open_or_die(argv[4], "wb");
    write_array(f, z);
    fclose(f);
    CK(cudaGraphExecDestroy(exec));

    /* a graph built node by node */
    int *di;
    CK(cudaMalloc(&di, 256 * sizeof(int)));
    cudaGraph_t g2;
    CK(cudaGraphCreate(&g2, 0));
    cudaMemsetParams mp = {};
    mp.dst = di;
    mp.value = 7;
    mp.elementSize = 4;
    mp.width = 256;
    mp.height = 1;
    cudaGraphNode_t nset, nker, nhost;
    CK(cudaGraphAddMemsetNode(&nset, g2, NULL, 0, &mp));
    int cnt = 256;
    void *kargs[] = {&di, &cnt};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)add_one;
    kp.gridDim = dim3(2);
    kp.blockDim = dim3(128);
    kp.kernelParams = kargs;
    CK(cudaGraphAddKernelNode(&nker, g2, &nset, 1, &kp));
    cudaHostNodeParams hp = {};
    hp.fn = count_call;
    CK(cudaGraphAddHostNode(&nhost, g2, &nker, 1, &hp));
    cudaGraphExec_t e2;
    CK(cudaGraphInstantiate(&e2, g2, 0));
    CK(cudaGraphLaunch(e2, s2));
    CK(cudaStreamSynchronize(s2));
    int back[256];
    CK(cudaMemcpy(back, di, sizeof(back), cudaMemcpyDeviceToHost));
    bool built = true;
    for (int i = 0; i < 256; i++)
        built = built && back[i] == 8;
    printf("capture_status=%d\nnodes=%zu\nlaunch_ok=%d\nhost_calls=%d\nbuilt_graph=%s\n", (int)st, nodes, good,
           g_host_calls, built ? "ok" : "bad");
    CK(cudaGraphExecDestroy(e2));
    CK(cudaGraphDestroy(g2));
    return 0;
}
