// wmma_gemm.cu - a tensor-core GEMM shaped as NVIDIA's cudaTensorCoreGemm sample: D = A x B + C with
// f16 A (row-major) and B (column-major), f32 C and D, 16x16x16 WMMA tiles; each block of 4 warps computes a
// 32x32 tile of D, staging A and B through shared memory with a skewed stride (the sample's bank-conflict
// padding), k-chunk by k-chunk between __syncthreads().
// I/O contract: wmma_gemm M N K in.bin out.bin   (M, N multiples of 32, K a multiple of 16)
//   in.bin = A[M*K] f16 (row-major), B[N*K] f16 (column-major: B[k][n] at n*K + k), C[M*N] f32 (row-major)
//   out.bin = D[M*N] f32 (row-major); stdout: "tiles=<wmma.mma per warp>".
#include <cuda_fp16.h>
#include <mma.h>
#include "tf_test_io.h"

using namespace nvcuda;

constexpr int SKEW = 8; // halves of padding per staged row, as the sample

__global__ void wmma_gemm(const half *A, const half *B, const float *C, float *D, int M, int N, int K, int *tiles)
{
    __shared__ __align__(32) half sA[32][16 + SKEW];
    __shared__ __align__(32) half sB[32][16 + SKEW]; // sB[n][k]: B's columns
    const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
    const int row0 = blockIdx.y * 32, col0 = blockIdx.x * 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::load_matrix_sync(acc, C + (size_t)(row0 + wm * 16) * N + col0 + wn * 16, N, wmma::mem_row_major);
    int count = 0;
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int i = threadIdx.x; i < 32 * 16; i += blockDim.x) {
            const int r = i / 16, c = i % 16;
            sA[r][c] = A[(size_t)(row0 + r) * K + k0 + c];
            sB[r][c] = B[(size_t)(col0 + r) * K + k0 + c];
        }
        __syncthreads();
        wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> b;
        wmma::load_matrix_sync(a, &sA[wm * 16][0], 16 + SKEW);
        wmma::load_matrix_sync(b, &sB[wn * 16][0], 16 + SKEW);
        wmma::mma_sync(acc, a, b, acc);
        count++;
        __syncthreads();
    }
    wmma::store_matrix_sync(D + (size_t)(row0 + wm * 16) * N + col0 + wn * 16, acc, N, wmma::mem_row_major);
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0)
        *tiles = count;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        printf("usage: wmma_gemm M N K in.bin out.bin\n");
        return 2;
    }
    const int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]);
    if (M <= 0 || N <= 0 || K <= 0 || M % 32 || N % 32 || K % 16) {
        printf("wmma_gemm: M and N must be positive multiples of 32, K of 16\n");
        return 2;
    }
    FILE *in = open_or_die(argv[4], "rb");
    std::vector<unsigned short> a = read_array<unsigned short>(in, (size_t)M * K), b = read_array<unsigned short>(in, (size_t)N * K);
    std::vector<float> c = read_array<float>(in, (size_t)M * N);
    fclose(in);
    half *dA, *dB;
    float *dC, *dD;
    int *dtiles;
    CK(cudaMalloc(&dA, a.size() * 2));
    CK(cudaMalloc(&dB, b.size() * 2));
    CK(cudaMalloc(&dC, c.size() * 4));
    CK(cudaMalloc(&dD, c.size() * 4));
    CK(cudaMalloc(&dtiles, sizeof(int)));
    CK(cudaMemcpy(dA, a.data(), a.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dC, c.data(), c.size() * 4, cudaMemcpyHostToDevice));
    wmma_gemm<<<dim3(N / 32, M / 32), 128>>>(dA, dB, dC, dD, M, N, K, dtiles);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<float> d(c.size());
    int tiles;
    CK(cudaMemcpy(d.data(), dD, d.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(&tiles, dtiles, sizeof(int), cudaMemcpyDeviceToHost));
    FILE *out = open_or_die(argv[5], "wb");
    write_array(out, d);
    fclose(out);
    printf("tiles=%d\n", tiles);
    return 0;
}
