// dp_launches.cu - data-path test program (cudart): many small launches and async operations queued
// back to back, so the stub's batches span many socket reads on the worker. I/O contract:
// dp_launches N; launches an atomic-increment kernel N times on two streams, interleaved with async
// memsets and event records, then checks the counters. Prints "dp_launches ok <N>" and exits 0, or
// "FAIL ..." and exits 1.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

__global__ void inc(unsigned *c, unsigned k) { atomicAdd(&c[k], 1u); }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    unsigned *c, *scratch, h[2] = {0, 0};
    cudaStream_t s[2];
    cudaEvent_t e;
    if (cudaMalloc(&c, 2 * sizeof(unsigned)) || cudaMalloc(&scratch, 4096) || cudaMemset(c, 0, 2 * sizeof(unsigned)) ||
        cudaStreamCreate(&s[0]) || cudaStreamCreate(&s[1]) || cudaEventCreate(&e)) {
        printf("FAIL setup\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int k = i & 1;
        inc<<<1, 1, 0, s[k]>>>(c, k);
        if (i % 97 == 0) cudaMemsetAsync(scratch, i & 0xff, 4096, s[k]);
        if (i % 101 == 0) cudaEventRecord(e, s[k]);
    }
    cudaError_t err = cudaDeviceSynchronize();
    if (err != cudaSuccess) { printf("FAIL sync: %s\n", cudaGetErrorString(err)); return 1; }
    if (cudaMemcpy(h, c, sizeof h, cudaMemcpyDeviceToHost)) { printf("FAIL copy\n"); return 1; }
    if (h[0] + h[1] != (unsigned)n || h[0] != (unsigned)(n + 1) / 2) {
        printf("FAIL counters %u %u for %d launches\n", h[0], h[1], n);
        return 1;
    }
    printf("dp_launches ok %d\n", n);
    return 0;
}
