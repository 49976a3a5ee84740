// clock_rate.cu - %clock/%clock64 tick at the SM clock the device reports (cudaDevAttrClockRate, kHz), as
// on a GPU: the samples' clock_block kernels spin clockRate * ms clocks to wait ms. One thread brackets a
// 2 ms %globaltimer wait with two %clock64 reads, five times; the largest clocks-per-ns ratio is the rate
// (a host preemption between the reads can only lower it). Also: %clock and %clock_hi are %clock64's halves.
// Prints key=value lines: clock_khz, measured_khz, halves_ok.
#include <cstdio>
#include <cuda_runtime.h>

__device__ unsigned long long gtimer()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__global__ void measure(double *ratio, int *halves_ok)
{
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        unsigned long long t0 = gtimer();
        long long c0 = clock64();
        while (gtimer() - t0 < 2000000ull) {
        }
        long long c1 = clock64();
        unsigned long long t1 = gtimer();
        double r = (double)(c1 - c0) / (double)(t1 - t0); // clocks per ns = GHz
        if (r > best) best = r;
    }
    *ratio = best * 1e6; // kHz
    unsigned lo, hi, hi2;
    long long c64;
    asm volatile("mov.u32 %0, %%clock_hi;" : "=r"(hi));
    c64 = clock64();
    asm volatile("mov.u32 %0, %%clock;" : "=r"(lo));
    asm volatile("mov.u32 %0, %%clock_hi;" : "=r"(hi2));
    unsigned c64hi = (unsigned)((unsigned long long)c64 >> 32);
    // hi is read before clock64 and hi2 after it; lo after clock64 (same high half unless it wrapped)
    *halves_ok = (hi <= c64hi && c64hi <= hi2) && (lo >= (unsigned)c64 || hi2 != c64hi);
}

int main()
{
    int khz = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0) != cudaSuccess) return 1;
    double *ratio;
    int *ok;
    if (cudaMalloc(&ratio, sizeof(double)) != cudaSuccess || cudaMalloc(&ok, sizeof(int)) != cudaSuccess)
        return 2;
    measure<<<1, 1>>>(ratio, ok);
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
        printf("error=%s\n", cudaGetErrorName(e));
        return 3;
    }
    double r = 0;
    int h = 0;
    if (cudaMemcpy(&r, ratio, sizeof r, cudaMemcpyDeviceToHost) != cudaSuccess ||
        cudaMemcpy(&h, ok, sizeof h, cudaMemcpyDeviceToHost) != cudaSuccess)
        return 4;
    printf("clock_khz=%d\nmeasured_khz=%.0f\nhalves_ok=%d\n", khz, r, h);
    return 0;
}
