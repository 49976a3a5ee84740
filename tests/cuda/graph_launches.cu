// graph_launches.cu - launches one captured graph (three kernel nodes) N times, then allocates and frees
// (the limiter publishes its counters at memory calls), so a test can compare the launch counter of
// sessions that differ only in N. I/O contract: graph_launches N; prints "sum=<value of the counter
// the graph's kernels increment>" (3 per launch).
#include "tf_test_io.h"

__global__ void bump(int *p) { atomicAdd(p, 1); }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    int *d;
    CK(cudaMalloc(&d, sizeof(int)));
    CK(cudaMemset(d, 0, sizeof(int)));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < 3; i++)
        bump<<<1, 1, 0, s>>>(d);
    cudaGraph_t g;
    CK(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t x;
    CK(cudaGraphInstantiate(&x, g, 0));
    for (int i = 0; i < n; i++)
        CK(cudaGraphLaunch(x, s));
    CK(cudaStreamSynchronize(s));
    int sum = 0;
    CK(cudaMemcpy(&sum, d, sizeof sum, cudaMemcpyDeviceToHost));
    void *p;
    CK(cudaMalloc(&p, 256));
    CK(cudaFree(p));
    printf("sum=%d\n", sum);
    return 0;
}
