// lim_launch_overhead.cu - per-launch cost, for benchmarks/bench_limiter.py (limiter overhead with no
// limit: run once with libtflimiter.so preloaded and once without, same machine, same run).
// argv[1] = launches per measurement (default 200000). Lines:
//   dispatch_ns   cuLaunchKernel (as cudart resolves it: cudaGetDriverEntryPointByVersion, i.e.
//                 cuGetProcAddress) on a NULL function, which the driver rejects at once: the cost of
//                 the call path itself - limiter hook + driver entry
//   launch_ns     empty kernel <<<1,1>>> through cudart (cuGetProcAddress-resolved cuLaunchKernel),
//                 synchronized every 1000 launches
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cuda.h>

__global__ void empty() {}

static double now_ns()
{
    return (double)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    if (cudaFree(0) != cudaSuccess) { printf("error=init\n"); return 1; }
    void *fn = 0;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuLaunchKernel", &fn, 12000, cudaEnableDefault, &q) != cudaSuccess || !fn) {
        printf("error=no cuLaunchKernel entry point\n");
        return 1;
    }
    auto launch = (decltype(&cuLaunchKernel))fn;
    int bad = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++)
        bad += launch((CUfunction)0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0) != CUDA_SUCCESS;
    double t1 = now_ns();
    printf("dispatch_ns=%.2f\n", (t1 - t0) / n);
    if (bad != n) { printf("error=null launch accepted\n"); return 1; }
    long m = n / 10 > 0 ? n / 10 : 1;
    empty<<<1, 1>>>();
    cudaDeviceSynchronize();
    t0 = now_ns();
    for (long i = 0; i < m; i++) {
        empty<<<1, 1>>>();
        if (i % 1000 == 999) cudaDeviceSynchronize();
    }
    cudaDeviceSynchronize();
    t1 = now_ns();
    printf("launch_ns=%.2f\n", (t1 - t0) / m);
    return cudaGetLastError() == cudaSuccess ? 0 : 1;
}
