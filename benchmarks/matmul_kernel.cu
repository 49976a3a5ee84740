// matmul_kernel.cu - the tiled shared-memory matmul of cuda-samples' UnifiedMemoryPerf
// (6_Performance/UnifiedMemoryPerf/matrixMultiplyPerf.cu, matrixMultiplyKernel, BLOCK_SIZE 32: copied
// as it is there), timed alone: the CPU time the emulated device spends per launch, as GFMA per CPU
// second. Run by benchmarks/bench_matmul_kernel.py (TF_EMU_THREADS=1, TF_EMU_JIT_SYNC=1).
// Usage: matmul_kernel N LAUNCHES
//   N a multiple of 32; one untimed launch first (a JIT compile, when the engine compiles), then LAUNCHES
//   timed ones. stdout: n=, launches=, cpu_s_per_launch=, wall_s_per_launch=, gfma_per_cpu_s=, and
//   checksum= (the bits of C summed as integers: both engines must print the same) and max_rel_err=
//   (against a double-precision product on the host, 64 sampled elements).
#include <cstdint>
#include <cstring>
#include <ctime>
#include <cmath>
#include "../tests/cuda/tf_test_io.h"

#define BLOCK_SIZE 32

__global__ void matrixMultiplyKernel(float *C, float *A, float *B, unsigned int matrixDim)
{
    int bx = blockIdx.x;
    int by = blockIdx.y;
    int tx = threadIdx.x;
    int ty = threadIdx.y;
    unsigned int wA = matrixDim;
    unsigned int wB = matrixDim;
    int aBegin = matrixDim * BLOCK_SIZE * by;
    int aEnd = aBegin + wA - 1;
    int aStep = BLOCK_SIZE;
    int bBegin = BLOCK_SIZE * bx;
    int bStep = BLOCK_SIZE * wB;
    float Csub = 0;
    for (int a = aBegin, b = bBegin; a <= aEnd; a += aStep, b += bStep) {
        __shared__ float As[BLOCK_SIZE][BLOCK_SIZE];
        __shared__ float Bs[BLOCK_SIZE][BLOCK_SIZE];
        As[ty][tx] = A[a + wA * ty + tx];
        Bs[ty][tx] = B[b + wB * ty + tx];
        __syncthreads();
#pragma unroll
        for (int k = 0; k < BLOCK_SIZE; ++k) {
            Csub += As[ty][k] * Bs[k][tx];
        }
        __syncthreads();
    }
    int c = wB * BLOCK_SIZE * by + BLOCK_SIZE * bx;
    C[c + wB * ty + tx] = Csub;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("usage: matmul_kernel N LAUNCHES\n");
        return 2;
    }
    const unsigned n = (unsigned)atoi(argv[1]);
    const int launches = atoi(argv[2]);
    if (n == 0 || n % BLOCK_SIZE || launches < 1) {
        printf("error=N must be a positive multiple of %d, LAUNCHES >= 1\n", BLOCK_SIZE);
        return 2;
    }
    const size_t count = (size_t)n * n;
    std::vector<float> A(count), B(count), C(count);
    for (size_t i = 0; i < count; i++) {
        A[i] = (float)((i * 7919u) % 1000u) / 500.0f - 1.0f;
        B[i] = (float)((i * 104729u) % 1000u) / 250.0f - 2.0f;
    }
    float *dA, *dB, *dC;
    CK(cudaMalloc(&dA, count * sizeof(float)));
    CK(cudaMalloc(&dB, count * sizeof(float)));
    CK(cudaMalloc(&dC, count * sizeof(float)));
    CK(cudaMemcpy(dA, A.data(), count * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, B.data(), count * sizeof(float), cudaMemcpyHostToDevice));
    dim3 threads(BLOCK_SIZE, BLOCK_SIZE), grid(n / BLOCK_SIZE, n / BLOCK_SIZE);
    matrixMultiplyKernel<<<grid, threads>>>(dC, dA, dB, n);
    CK(cudaDeviceSynchronize());
    const double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
    for (int i = 0; i < launches; i++) matrixMultiplyKernel<<<grid, threads>>>(dC, dA, dB, n);
    CK(cudaDeviceSynchronize());
    const double cpu = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) / launches, wall = (clock_s(CLOCK_MONOTONIC) - w0) / launches;
    CK(cudaMemcpy(C.data(), dC, count * sizeof(float), cudaMemcpyDeviceToHost));
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &C[i], 4);
        sum += u;
    }
    double maxrel = 0;
    for (int s = 0; s < 64; s++) {
        const size_t r = ((size_t)s * 2654435761u) % n, c = ((size_t)s * 40503u + 17) % n;
        double ref = 0, mag = 0;
        for (unsigned k = 0; k < n; k++) {
            ref += (double)A[r * n + k] * (double)B[k * n + c];
            mag += fabs((double)A[r * n + k] * (double)B[k * n + c]);
        }
        const double rel = fabs((double)C[r * n + c] - ref) / (mag > 0 ? mag : 1);
        if (rel > maxrel) maxrel = rel;
    }
    printf("n=%u\nlaunches=%d\ncpu_s_per_launch=%.6f\nwall_s_per_launch=%.6f\ngfma_per_cpu_s=%.4f\nchecksum=%llu\nmax_rel_err=%.3g\n",
           n, launches, cpu, wall, (double)n * n * n / cpu * 1e-9, (unsigned long long)sum, maxrel);
    return 0;
}
