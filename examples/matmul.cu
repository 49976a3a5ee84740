// matmul.cu - demo: tiled matrix multiply with shared memory, timed with CUDA events, checked on the host.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#define TILE 16
__global__ void matmul(const float *A, const float *B, float *C, int n) {
    __shared__ float As[TILE][TILE], Bs[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int t = 0; t < n / TILE; ++t) {
        As[threadIdx.y][threadIdx.x] = A[row * n + t * TILE + threadIdx.x];
        Bs[threadIdx.y][threadIdx.x] = B[(t * TILE + threadIdx.y) * n + col];
        __syncthreads();
        for (int k = 0; k < TILE; ++k) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
        __syncthreads();
    }
    C[row * n + col] = acc;
}

#define CHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    printf("matmul: %s failed: %s\n", #x, cudaGetErrorString(e_)); return 1; } } while (0)

int main() {
    const int n = 128;
    size_t bytes = (size_t)n * n * sizeof(float);
    float *A = (float *)malloc(bytes), *B = (float *)malloc(bytes), *C = (float *)malloc(bytes);
    srand(1);
    for (int i = 0; i < n * n; ++i) { A[i] = (rand() % 100) / 50.0f; B[i] = (rand() % 100) / 50.0f; }
    float *dA, *dB, *dC;
    CHECK(cudaMalloc(&dA, bytes)); CHECK(cudaMalloc(&dB, bytes)); CHECK(cudaMalloc(&dC, bytes));
    CHECK(cudaMemcpy(dA, A, bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dB, B, bytes, cudaMemcpyHostToDevice));
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start)); CHECK(cudaEventCreate(&stop));
    CHECK(cudaEventRecord(start));
    matmul<<<dim3(n / TILE, n / TILE), dim3(TILE, TILE)>>>(dA, dB, dC, n);
    CHECK(cudaGetLastError());
    CHECK(cudaEventRecord(stop));
    CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    CHECK(cudaMemcpy(C, dC, bytes, cudaMemcpyDeviceToHost));
    for (int r = 0; r < n; ++r)
        for (int c = 0; c < n; ++c) {
            double ref = 0;
            for (int k = 0; k < n; ++k) ref += (double)A[r * n + k] * B[k * n + c];
            if (fabs(ref - C[r * n + c]) > 1e-3 * fabs(ref) + 1e-3) {
                printf("matmul: WRONG at (%d,%d): %f vs %f\n", r, c, C[r * n + c], ref); return 1;
            }
        }
    printf("matmul: %dx%d correct, kernel %.3f ms (%.3f GFLOPS)\n", n, n, ms, 2.0 * n * n * n / (ms * 1e6));
    return 0;
}
