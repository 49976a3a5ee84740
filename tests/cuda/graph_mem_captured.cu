// graph_mem_captured.cu - graph memory made by capturing cudaMallocAsync / cudaFreeAsync (as PyTorch's
// allocator does) counts against the VRAM cap while the graph lives: with the graph's temporary of BYTES
// alive, a cudaMalloc of BYTES more does not fit a cap below 2 x BYTES; once the graph and its executable
// graph are destroyed it does. Usage: graph_mem_captured BYTES. stdout: key=value lines.
#include "tf_test_io.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: graph_mem_captured BYTES\n");
        return 2;
    }
    size_t bytes = (size_t)strtoull(argv[1], nullptr, 10);
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    void *tmp = nullptr;
    CK(cudaMallocAsync(&tmp, bytes, s));
    CK(cudaMemsetAsync(tmp, 1, 4096, s));
    CK(cudaFreeAsync(tmp, s));
    cudaGraph_t g;
    CK(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t x;
    CK(cudaGraphInstantiate(&x, g, 0));
    CK(cudaGraphLaunch(x, s));
    CK(cudaStreamSynchronize(s));
    void *other = nullptr;
    cudaError_t while_graph = cudaMalloc(&other, bytes);
    (void)cudaGetLastError();
    if (while_graph == cudaSuccess)
        CK(cudaFree(other));
    CK(cudaGraphExecDestroy(x));
    CK(cudaGraphDestroy(g));
    cudaError_t after_graph = cudaMalloc(&other, bytes);
    if (after_graph == cudaSuccess)
        CK(cudaFree(other));
    printf("malloc_while_graph=%s\nmalloc_after_graph=%s\n", cudaGetErrorName(while_graph),
           cudaGetErrorName(after_graph));
    CK(cudaStreamDestroy(s));
    printf("done=1\n");
    return 0;
}
