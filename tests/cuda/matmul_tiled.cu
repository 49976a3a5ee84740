// matmul_tiled.cu - C = A x B with 16x16 shared-memory tiles and __syncthreads (any M, N, K).
// I/O contract: matmul_tiled M N K in.bin out.bin
//   in.bin = A[M*K] float32 row-major, B[K*N] float32 row-major;  out.bin = C[M*N] float32.
//   stdout: "m=<M> n=<N> k=<K>".
#include "tf_test_io.h"

#define TILE 16

__global__ void matmul(const float *A, const float *B, float *C, int M, int N, int K)
{
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    int row = blockIdx.y * TILE + threadIdx.y, col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int t = 0; t < (K + TILE - 1) / TILE; t++) {
        int ak = t * TILE + threadIdx.x, bk = t * TILE + threadIdx.y;
        As[threadIdx.y][threadIdx.x] = row < M && ak < K ? A[row * K + ak] : 0.0f;
        Bs[threadIdx.y][threadIdx.x] = bk < K && col < N ? B[bk * N + col] : 0.0f;
        __syncthreads();
        for (int k = 0; k < TILE; k++)
            acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
        __syncthreads();
    }
    if (row < M && col < N)
        C[row * N + col] = acc;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        printf("usage: matmul_tiled M N K in.bin out.bin\n");
        return 2;
    }
    int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]);
    FILE *in = open_or_die(argv[4], "rb");
    std::vector<float> A = read_array<float>(in, (size_t)M * K), B = read_array<float>(in, (size_t)K * N);
    fclose(in);
    std::vector<float> C((size_t)M * N);
    float *dA, *dB, *dC;
    CK(cudaMalloc(&dA, A.size() * sizeof(float)));
    CK(cudaMalloc(&dB, B.size() * sizeof(float)));
    CK(cudaMalloc(&dC, C.size() * sizeof(float)));
    CK(cudaMemcpy(dA, A.data(), A.size() * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, B.data(), B.size() * sizeof(float), cudaMemcpyHostToDevice));
    dim3 block(TILE, TILE), grid((N + TILE - 1) / TILE, (M + TILE - 1) / TILE);
    matmul<<<grid, block>>>(dA, dB, dC, M, N, K);
    CK(cudaGetLastError());
    CK(cudaMemcpy(C.data(), dC, C.size() * sizeof(float), cudaMemcpyDeviceToHost));
    FILE *out = open_or_die(argv[5], "wb");
    write_array(out, C);
    fclose(out);
    printf("m=%d n=%d k=%d\n", M, N, K);
    return 0;
}
