// graph_array_copies.cu - CUDA graph memcpy nodes whose source or destination is a CUDA array: explicit nodes
// (cudaGraphAddMemcpyNode: host -> array A -> array B -> device -> array C -> host, launched twice with new host
// data) and stream capture of device <-> array copies (cudaMemcpy2DToArrayAsync / cudaMemcpy2DFromArrayAsync /
// on a capturing stream).
// I/O contract: graph_array_copies W H in.bin out.bin
//   in.bin: img[H][W] float32. out.bin, float32: [W*H] the explicit graph's output after its first launch (img),
//   [W*H] after the second launch with the host input doubled (2*img), [W*H] the captured graph's output
//   (device img -> array -> device, then plus 1 by a kernel: img + 1).
//   stdout key=value: nodes=<node count of the explicit graph>, captured_nodes=<node count of the captured graph>
#include <cuda_runtime.h>
#include <cstdio>
#include <vector>

#include "tf_test_io.h"

__global__ void add_one(float *p, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] += 1.0f;
}

static cudaMemcpy3DParms copy_params(int W, int H)
{
    cudaMemcpy3DParms p{};
    p.extent = make_cudaExtent(W, H, 1);
    p.kind = cudaMemcpyDefault;
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s W H in.bin out.bin\n", argv[0]);
        return 2;
    }
    int W = atoi(argv[1]), H = atoi(argv[2]), n = W * H;
    FILE *fi = open_or_die(argv[3], "rb");
    std::vector<float> img = read_array<float>(fi, (size_t)n);
    fclose(fi);
    std::vector<float> host_in = img, host_out(n), all;

    cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
    cudaArray_t A, B, C;
    CK(cudaMallocArray(&A, &fd, W, H));
    CK(cudaMallocArray(&B, &fd, W, H));
    CK(cudaMallocArray(&C, &fd, W, H));
    float *d;
    size_t dpitch;
    CK(cudaMallocPitch(&d, &dpitch, W * sizeof(float), H));

    // explicit nodes: host -> A -> B -> device -> C -> host
    cudaGraph_t g;
    CK(cudaGraphCreate(&g, 0));
    cudaGraphNode_t nd[5];
    cudaMemcpy3DParms p = copy_params(W, H);
    p.extent = make_cudaExtent(W, H, 1);
    p.srcPtr = make_cudaPitchedPtr(host_in.data(), W * sizeof(float), W, H);
    p.dstArray = A;
    CK(cudaGraphAddMemcpyNode(&nd[0], g, nullptr, 0, &p));
    p = copy_params(W, H);
    p.srcArray = A, p.dstArray = B;
    CK(cudaGraphAddMemcpyNode(&nd[1], g, &nd[0], 1, &p));
    p = copy_params(W, H);
    p.srcArray = B;
    p.dstPtr = make_cudaPitchedPtr(d, dpitch, W, H);
    CK(cudaGraphAddMemcpyNode(&nd[2], g, &nd[1], 1, &p));
    p = copy_params(W, H);
    p.srcPtr = make_cudaPitchedPtr(d, dpitch, W, H);
    p.dstArray = C;
    CK(cudaGraphAddMemcpyNode(&nd[3], g, &nd[2], 1, &p));
    p = copy_params(W, H);
    p.srcArray = C;
    p.dstPtr = make_cudaPitchedPtr(host_out.data(), W * sizeof(float), W, H);
    CK(cudaGraphAddMemcpyNode(&nd[4], g, &nd[3], 1, &p));
    size_t count = 0;
    CK(cudaGraphGetNodes(g, nullptr, &count));
    printf("nodes=%zu\n", count);
    cudaGraphExec_t ge;
    CK(cudaGraphInstantiate(&ge, g, 0));
    CK(cudaGraphLaunch(ge, 0));
    CK(cudaStreamSynchronize(0));
    all.insert(all.end(), host_out.begin(), host_out.end());
    for (int i = 0; i < n; i++) host_in[i] = 2 * img[i];
    CK(cudaGraphLaunch(ge, 0));
    CK(cudaStreamSynchronize(0));
    all.insert(all.end(), host_out.begin(), host_out.end());

    // captured device <-> array copies around a kernel
    float *src, *dst;
    CK(cudaMalloc(&src, n * sizeof(float)));
    CK(cudaMalloc(&dst, n * sizeof(float)));
    CK(cudaMemcpy(src, img.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    cudaGraph_t cg;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CK(cudaMemcpy2DToArrayAsync(A, 0, 0, src, W * sizeof(float), W * sizeof(float), H, cudaMemcpyDeviceToDevice, s));
    CK(cudaMemcpy2DFromArrayAsync(dst, W * sizeof(float), A, 0, 0, W * sizeof(float), H, cudaMemcpyDeviceToDevice, s));
    add_one<<<(n + 127) / 128, 128, 0, s>>>(dst, n);
    CK(cudaGetLastError());
    CK(cudaStreamEndCapture(s, &cg));
    CK(cudaGraphGetNodes(cg, nullptr, &count));
    printf("captured_nodes=%zu\n", count);
    cudaGraphExec_t cge;
    CK(cudaGraphInstantiate(&cge, cg, 0));
    CK(cudaGraphLaunch(cge, s));
    CK(cudaStreamSynchronize(s));
    std::vector<float> got(n);
    CK(cudaMemcpy(got.data(), dst, n * sizeof(float), cudaMemcpyDeviceToHost));
    all.insert(all.end(), got.begin(), got.end());

    FILE *out = open_or_die(argv[4], "wb");
    write_array(out, all);
    fclose(out);
    return 0;
}
