// graph_host_copies.cu - graphs whose copies read and write this process's host memory, as NVIDIA's
// simpleCudaGraphs builds them: memcpy nodes (cudaGraphAddMemcpyNode1D, and cudaGraphAddMemcpyNode with
// pitched host matrices and offsets), a host node that reads what a device-to-host node wrote, and
// cudaMemcpyAsync host<->device captured on a stream. Each graph is launched several times with new host
// inputs written between launches (after capture too: a capture keeps the range, not the bytes), and the
// results are read after cudaStreamSynchronize / cudaEventSynchronize / cudaDeviceSynchronize; cudaGraphExecUpdate
// moves an executable graph to another graph's host buffers.
// Usage: graph_host_copies N LAUNCHES. stdout: key=value lines; *_ok counts launches whose every value
// matched the host reference computed here.
#include <cstring>
#include "tf_test_io.h"

__global__ void affine(const float *x, float *y, int n, float a, float b)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = x[i] * a + b;
}

struct host_check { const float *out; int n; float r; int ok; int calls; };

static void CUDART_CB check_in_host_node(void *p)
{
    host_check *c = (host_check *)p;
    bool ok = true;
    for (int i = 0; i < c->n; i++)
        ok = ok && c->out[i] == ((float)i + c->r) * 2.0f + 1.0f;
    c->ok += ok;
    c->calls++;
}

static bool matches(const float *out, int n, float r, float a, float b)
{
    for (int i = 0; i < n; i++)
        if (out[i] != ((float)i + r) * a + b)
            return false;
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("usage: graph_host_copies N LAUNCHES\n");
        return 2;
    }
    const int n = atoi(argv[1]), launches = atoi(argv[2]);
    const size_t bytes = n * sizeof(float);
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    float *dx, *dy;
    CK(cudaMalloc(&dx, bytes));
    CK(cudaMalloc(&dy, bytes));
    std::vector<float> hin(n), hout(n);  // pageable memory
    dim3 grid((n + 255) / 256), block(256);

    // ---- 1. explicit graph: H2D node -> kernel -> D2H node -> host node that reads the D2H result
    cudaGraph_t g;
    CK(cudaGraphCreate(&g, 0));
    cudaGraphNode_t h2d, ker, d2h, hnode;
    CK(cudaGraphAddMemcpyNode1D(&h2d, g, nullptr, 0, dx, hin.data(), bytes, cudaMemcpyHostToDevice));
    float a = 2.0f, b = 1.0f;
    int nn = n;
    void *kargs[] = {&dx, &dy, &nn, &a, &b};
    cudaKernelNodeParams kp = {};
    kp.func = (void *)affine;
    kp.gridDim = grid;
    kp.blockDim = block;
    kp.kernelParams = kargs;
    CK(cudaGraphAddKernelNode(&ker, g, &h2d, 1, &kp));
    CK(cudaGraphAddMemcpyNode1D(&d2h, g, &ker, 1, hout.data(), dy, bytes, cudaMemcpyDeviceToHost));
    host_check hc = {hout.data(), n, 0.0f, 0, 0};
    cudaHostNodeParams hp = {};
    hp.fn = check_in_host_node;
    hp.userData = &hc;
    CK(cudaGraphAddHostNode(&hnode, g, &d2h, 1, &hp));
    cudaGraphExec_t x;
    CK(cudaGraphInstantiate(&x, g, 0));
    int explicit_ok = 0;
    for (int r = 0; r < launches; r++) {
        for (int i = 0; i < n; i++)
            hin[i] = (float)i + (float)r;
        std::fill(hout.begin(), hout.end(), -1.0f);
        hc.r = (float)r;
        CK(cudaGraphLaunch(x, s));
        CK(cudaStreamSynchronize(s));
        explicit_ok += matches(hout.data(), n, (float)r, 2.0f, 1.0f);
    }
    printf("explicit_ok=%d\nhost_node_calls=%d\nhost_node_saw_ok=%d\n", explicit_ok, hc.calls, hc.ok);
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));

    // ---- 2. pitched host matrices with offsets (cudaMemcpy3DParms): a 5x4 block at (x=2, y=1) of a 16-wide
    // host matrix goes to the device and back into another host matrix at (x=1, y=2); the rest is untouched
    const int W = 16, H = 8, bw = 5, bh = 4;
    std::vector<float> m_in(W * H), m_out(W * H, -7.0f);
    float *dm;
    CK(cudaMalloc(&dm, bw * bh * sizeof(float)));
    cudaGraph_t g2;
    CK(cudaGraphCreate(&g2, 0));
    cudaMemcpy3DParms up = {};
    up.srcPtr = make_cudaPitchedPtr(m_in.data(), W * sizeof(float), W, H);
    up.srcPos = make_cudaPos(2 * sizeof(float), 1, 0);
    up.dstPtr = make_cudaPitchedPtr(dm, bw * sizeof(float), bw, bh);
    up.extent = make_cudaExtent(bw * sizeof(float), bh, 1);
    up.kind = cudaMemcpyHostToDevice;
    cudaMemcpy3DParms down = {};
    down.srcPtr = make_cudaPitchedPtr(dm, bw * sizeof(float), bw, bh);
    down.dstPtr = make_cudaPitchedPtr(m_out.data(), W * sizeof(float), W, H);
    down.dstPos = make_cudaPos(1 * sizeof(float), 2, 0);
    down.extent = up.extent;
    down.kind = cudaMemcpyDeviceToHost;
    cudaGraphNode_t n_up, n_down;
    CK(cudaGraphAddMemcpyNode(&n_up, g2, nullptr, 0, &up));
    CK(cudaGraphAddMemcpyNode(&n_down, g2, &n_up, 1, &down));
    cudaGraphExec_t x2;
    CK(cudaGraphInstantiate(&x2, g2, 0));
    int rect_ok = 0;
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < W * H; i++)
            m_in[i] = (float)(i * 10 + r);
        CK(cudaGraphLaunch(x2, s));
        CK(cudaDeviceSynchronize());
        bool ok = true;
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++) {
                bool in = xx >= 1 && xx < 1 + bw && yy >= 2 && yy < 2 + bh;
                float want = in ? m_in[(yy - 2 + 1) * W + (xx - 1 + 2)] : -7.0f;
                ok = ok && m_out[yy * W + xx] == want;
            }
        rect_ok += ok;
    }
    printf("rect_ok=%d\n", rect_ok);
    CK(cudaGraphExecDestroy(x2));
    CK(cudaGraphDestroy(g2));

    // ---- 3. captured: cudaMemcpyAsync H2D (pinned) -> kernel -> cudaMemcpyAsync D2H (pinned); the input is
    // written after the capture, before each launch; results read after an event synchronize
    float *pin, *pout;
    CK(cudaMallocHost(&pin, bytes));
    CK(cudaMallocHost(&pout, bytes));
    for (int i = 0; i < n; i++)
        pin[i] = -100.0f;  // what a snapshot taken at capture time would hold
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CK(cudaMemcpyAsync(dx, pin, bytes, cudaMemcpyHostToDevice, s));
    affine<<<grid, block, 0, s>>>(dx, dy, n, 3.0f, -2.0f);
    CK(cudaMemcpyAsync(pout, dy, bytes, cudaMemcpyDeviceToHost, s));
    cudaGraph_t g3;
    CK(cudaStreamEndCapture(s, &g3));
    size_t n3 = 0;
    CK(cudaGraphGetNodes(g3, nullptr, &n3));
    cudaGraphExec_t x3;
    CK(cudaGraphInstantiate(&x3, g3, 0));
    cudaEvent_t ev;
    CK(cudaEventCreate(&ev));
    int captured_ok = 0;
    for (int r = 0; r < launches; r++) {
        for (int i = 0; i < n; i++)
            pin[i] = (float)i + (float)r;
        memset(pout, 0, bytes);
        CK(cudaGraphLaunch(x3, s));
        CK(cudaEventRecord(ev, s));
        CK(cudaEventSynchronize(ev));
        captured_ok += matches(pout, n, (float)r, 3.0f, -2.0f);
    }
    printf("captured_nodes=%zu\ncaptured_ok=%d\n", n3, captured_ok);
    // two launches back to back, one synchronize: the second launch's results are what the host sees
    for (int i = 0; i < n; i++)
        pin[i] = (float)i + 50.0f;
    CK(cudaGraphLaunch(x3, s));
    CK(cudaStreamSynchronize(s));
    for (int i = 0; i < n; i++)
        pin[i] = (float)i + 60.0f;
    CK(cudaGraphLaunch(x3, s));
    CK(cudaDeviceSynchronize());
    printf("relaunch_ok=%d\n", (int)matches(pout, n, 60.0f, 3.0f, -2.0f));
    CK(cudaGraphExecDestroy(x3));
    CK(cudaGraphDestroy(g3));

    // ---- 4. cudaGraphExecUpdate to a graph of the same shape copying other host buffers: the executable
    // graph reads and writes the new ones from then on
    std::vector<float> in_a(n, 1.0f), in_b(n), out_a(n, 0.0f), out_b(n, 0.0f);
    cudaGraph_t ga, gb;
    cudaGraphNode_t a1, a2, b1, b2;
    CK(cudaGraphCreate(&ga, 0));
    CK(cudaGraphAddMemcpyNode1D(&a1, ga, nullptr, 0, dx, in_a.data(), bytes, cudaMemcpyHostToDevice));
    CK(cudaGraphAddMemcpyNode1D(&a2, ga, &a1, 1, out_a.data(), dx, bytes, cudaMemcpyDeviceToHost));
    CK(cudaGraphCreate(&gb, 0));
    CK(cudaGraphAddMemcpyNode1D(&b1, gb, nullptr, 0, dx, in_b.data(), bytes, cudaMemcpyHostToDevice));
    CK(cudaGraphAddMemcpyNode1D(&b2, gb, &b1, 1, out_b.data(), dx, bytes, cudaMemcpyDeviceToHost));
    cudaGraphExec_t xa;
    CK(cudaGraphInstantiate(&xa, ga, 0));
    CK(cudaGraphLaunch(xa, s));
    CK(cudaStreamSynchronize(s));
    bool first_ok = matches(out_a.data(), n, -(float)0, 0.0f, 1.0f);
    for (int i = 0; i < n; i++)
        in_b[i] = (float)i;
    cudaGraphExecUpdateResultInfo info;
    CK(cudaGraphExecUpdate(xa, gb, &info));
    std::fill(out_a.begin(), out_a.end(), -3.0f);
    CK(cudaGraphLaunch(xa, s));
    CK(cudaStreamSynchronize(s));
    printf("update_ok=%d\n", (int)(first_ok && matches(out_b.data(), n, 0.0f, 1.0f, 0.0f) && out_a[0] == -3.0f));
    // ---- 5. cudaGraphExecMemcpyNodeSetParams1D: one executable graph copies other host buffers; another one
    // instantiated from the same graph keeps the original ones
    cudaGraphExec_t xc;
    CK(cudaGraphInstantiate(&xc, ga, 0));
    std::vector<float> in_c(n), out_c(n, 0.0f);
    for (int i = 0; i < n; i++)
        in_c[i] = (float)(2 * i);
    CK(cudaGraphExecMemcpyNodeSetParams1D(xc, a1, dx, in_c.data(), bytes, cudaMemcpyHostToDevice));
    CK(cudaGraphExecMemcpyNodeSetParams1D(xc, a2, out_c.data(), dx, bytes, cudaMemcpyDeviceToHost));
    std::fill(out_a.begin(), out_a.end(), 0.0f);
    CK(cudaGraphLaunch(xc, s));
    CK(cudaStreamSynchronize(s));
    bool set_ok = matches(out_c.data(), n, 0.0f, 2.0f, 0.0f) && out_a[0] == 0.0f;
    CK(cudaGraphLaunch(xa, s));  // updated to gb above: in_b -> out_b
    for (int i = 0; i < n; i++)
        in_b[i] = (float)(i + 1);
    CK(cudaGraphLaunch(xa, s));
    CK(cudaStreamSynchronize(s));
    printf("exec_set_params_ok=%d\n", (int)(set_ok && matches(out_b.data(), n, 1.0f, 1.0f, 0.0f)));
    CK(cudaGraphExecDestroy(xc));
    CK(cudaGraphExecDestroy(xa));
    CK(cudaGraphDestroy(ga));
    CK(cudaGraphDestroy(gb));
    CK(cudaEventDestroy(ev));
    CK(cudaFreeHost(pin));
    CK(cudaFreeHost(pout));
    CK(cudaFree(dm));
    CK(cudaFree(dx));
    CK(cudaFree(dy));
    CK(cudaStreamDestroy(s));
    printf("done=1\n");
    return 0;
}
