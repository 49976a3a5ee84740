// lim_busy.cu - compute load for the limiter tests and benchmark: launches the same busy kernel in a
// loop and prints "key=value" lines.
// argv: [1] seconds to run (default 5), [2] loop iterations per thread (default 2000), [3] blocks
// (default 1), [4] threads per block (default 32), [5] launch kind: plain | coop | graph (default plain),
// [6] kernels captured per graph (default 1).
// Every launch is followed by a synchronize, so a launch's cost is paid before the next one.
// One warm-up launch (module load, the kernel's compile) runs before the clock starts; then "ready=1" is
// printed and flushed, so a test can start its measurements at the steady state.
// Lines: ready=1, then launches=<n> elapsed_s=<s> rate=<launches/s> check=<ok|bad> (the kernel's result is
// verified); the counts leave the warm-up launch out.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

__global__ void busy(float *out, int iters)
{
    float x = (float)threadIdx.x;
    for (int i = 0; i < iters; i++) x = x * 0.5f + 1.0f;
    out[blockIdx.x * blockDim.x + threadIdx.x] = x;
}

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("error=%s at %s\n", cudaGetErrorName(e_), #call); return 1; } } while (0)

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 5;
    int iters = argc > 2 ? atoi(argv[2]) : 2000;
    int blocks = argc > 3 ? atoi(argv[3]) : 1;
    int threads = argc > 4 ? atoi(argv[4]) : 32;
    const char *kind = argc > 5 ? argv[5] : "plain";
    int per_graph = argc > 6 ? atoi(argv[6]) : 1;
    float *d = 0;
    CK(cudaMalloc(&d, sizeof(float) * blocks * threads));
    cudaGraphExec_t exec = 0;
    cudaStream_t s = 0;
    if (!strcmp(kind, "graph")) {
        CK(cudaStreamCreate(&s));
        cudaGraph_t g;
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
        for (int k = 0; k < per_graph; k++) busy<<<blocks, threads, 0, s>>>(d, iters);
        CK(cudaStreamEndCapture(s, &g));
        CK(cudaGraphInstantiate(&exec, g, 0));
    }
    void *args[] = {&d, &iters};
    auto launch = [&]() -> cudaError_t {
        if (exec) return cudaGraphLaunch(exec, s);
        if (!strcmp(kind, "coop")) return cudaLaunchCooperativeKernel((void *)busy, blocks, threads, args, 0, 0);
        busy<<<blocks, threads>>>(d, iters);
        return cudaGetLastError();
    };
    CK(launch());
    CK(cudaDeviceSynchronize());
    printf("ready=1\n");
    fflush(stdout);
    auto t0 = std::chrono::steady_clock::now();
    long n = 0;
    double el = 0;
    while (el < secs) {
        CK(launch());
        CK(cudaDeviceSynchronize());
        n++;
        el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    float h = 0;
    CK(cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost));
    float x = 0;
    for (int i = 0; i < iters; i++) x = x * 0.5f + 1.0f;
    printf("launches=%ld\nelapsed_s=%.3f\nrate=%.2f\ncheck=%s\n", n, el, n / el, h == x ? "ok" : "bad");
    return 0;
}
