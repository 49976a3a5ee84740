// profiler_control.cu - cudaProfilerStart/Stop (cudaProfiler.h's driver calls, which cudart resolves through
// cuGetProcAddress): success and no effect on the work around them, as on a GPU without a profiler attached.
// I/O contract: profiler_control (no arguments). stdout "key=value": start, stop (runtime error names), kernel
// (the result of a kernel launched between them, "ok" when it wrote what it should).
#include <cstdio>
#include <cuda_profiler_api.h>

__global__ void fill(int *p) { p[threadIdx.x] = threadIdx.x * 2; }

int main()
{
    printf("start=%s\n", cudaGetErrorName(cudaProfilerStart()));
    int *d = nullptr, h[32] = {0};
    cudaMalloc(&d, sizeof h);
    fill<<<1, 32>>>(d);
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    printf("stop=%s\n", cudaGetErrorName(cudaProfilerStop()));
    int ok = 1;
    for (int i = 0; i < 32; i++) ok &= h[i] == 2 * i;
    printf("kernel=%s\n", ok ? "ok" : "wrong");
    cudaFree(d);
    return 0;
}
