// graph_launches.cu - launches one captured graph (three kernel nodes) N times, then allocates and frees
// (the limiter publishes its counters at memory calls), so a test can compare the launch counter of
// sessions that differ only in N. I/O contract: graph_launches N [ROUNDS]; each round resets the counter,
// launches the graph N times, synchronizes the stream and copies the counter back; prints "sum=<value of
// the counter the graph's kernels increment>" (3 per launch) of the last round and "bad=<rounds whose
// counter was not 3*N>".
// The reset is a cudaMemsetAsync on the graph's stream: a cudaMemset (legacy NULL stream) is asynchronous
// with respect to the host for device memory and a cudaStreamNonBlocking stream does not wait for the NULL
// stream, so such a reset may run after some of the launches (it did: sum=6 for N=4 through the stub).
#include "tf_test_io.h"

__global__ void bump(int *p) { atomicAdd(p, 1); }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    int rounds = argc > 2 ? atoi(argv[2]) : 1;
    int *d;
    CK(cudaMalloc(&d, sizeof(int)));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < 3; i++)
        bump<<<1, 1, 0, s>>>(d);
    cudaGraph_t g;
    CK(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t x;
    CK(cudaGraphInstantiate(&x, g, 0));
    int sum = 0, bad = 0;
    for (int r = 0; r < rounds; r++) {
        CK(cudaMemsetAsync(d, 0, sizeof(int), s));
        for (int i = 0; i < n; i++)
            CK(cudaGraphLaunch(x, s));
        CK(cudaStreamSynchronize(s));
        CK(cudaMemcpy(&sum, d, sizeof sum, cudaMemcpyDeviceToHost));
        bad += sum != 3 * n;
    }
    void *p;
    CK(cudaMalloc(&p, 256));
    CK(cudaFree(p));
    printf("sum=%d\nbad=%d\n", sum, bad);
    return 0;
}
