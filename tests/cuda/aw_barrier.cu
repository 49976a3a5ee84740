// aw_barrier.cu - arrive/wait barriers as NVIDIA's simpleAWBarrier sample uses them: cuda::barrier in
// shared memory (mbarrier.* PTX; try_wait on compute_90), one phase per round, a block-wide dot
// product reduced through it, then a grid-wide sum with atomics.
// I/O contract: aw_barrier N in.bin   in.bin = a[N] float32, b[N] float32.
//   stdout: "dot=<sum of a*b as double>", "rounds_ok=1" when every round saw every thread's write.
#include <cuda/barrier>
#include "tf_test_io.h"

#pragma nv_diag_suppress static_var_with_dynamic_init // cuda::barrier in __shared__, as the sample does

__global__ void dot_kernel(const float *a, const float *b, int n, double *out, int *rounds_bad)
{
    __shared__ cuda::barrier<cuda::thread_scope_block> bar;
    __shared__ double partial[256];
    __shared__ int stamp[256];
    if (threadIdx.x == 0)
        init(&bar, blockDim.x);
    __syncthreads();
    double s = 0;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        s += (double)a[i] * b[i];
    partial[threadIdx.x] = s;
    for (int round = 0; round < 3; round++) {
        stamp[threadIdx.x] = round;
        bar.arrive_and_wait();
        // every thread's stamp of this round is visible
        if (stamp[(threadIdx.x + 1) % blockDim.x] != round)
            atomicAdd(rounds_bad, 1);
        bar.arrive_and_wait();
    }
    cuda::barrier<cuda::thread_scope_block>::arrival_token t = bar.arrive();
    bar.wait(std::move(t));
    if (threadIdx.x == 0) {
        double sum = 0;
        for (unsigned k = 0; k < blockDim.x; k++)
            sum += partial[k];
        atomicAdd(out, sum);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("usage: aw_barrier N in.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<float> a = read_array<float>(in, n), b = read_array<float>(in, n);
    fclose(in);
    float *da, *db;
    double *dout;
    int *dbad;
    CK(cudaMalloc(&da, n * sizeof(float)));
    CK(cudaMalloc(&db, n * sizeof(float)));
    CK(cudaMalloc(&dout, sizeof(double)));
    CK(cudaMalloc(&dbad, sizeof(int)));
    CK(cudaMemcpy(da, a.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, b.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemset(dout, 0, sizeof(double)));
    CK(cudaMemset(dbad, 0, sizeof(int)));
    dot_kernel<<<4, 256>>>(da, db, n, dout, dbad);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    double dot;
    int bad;
    CK(cudaMemcpy(&dot, dout, sizeof(double), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(&bad, dbad, sizeof(int), cudaMemcpyDeviceToHost));
    printf("dot=%.17g\nrounds_ok=%d\n", dot, bad == 0);
    return 0;
}
