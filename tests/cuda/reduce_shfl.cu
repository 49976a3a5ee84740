// reduce_shfl.cu - integer sum and max of an array: grid-stride partial sums, warp-shuffle
// (__shfl_down_sync) reduction, per-warp results in shared memory, atomics into global results.
// I/O contract: reduce_shfl N in.bin out.bin
//   in.bin = x[N] int32;  out.bin = sum int64, max int32, pad int32 (16 bytes).  stdout: "n=<N>".
#include "tf_test_io.h"

__global__ void reduce(const int *x, int n, unsigned long long *sum, int *mx)
{
    __shared__ long long wsum[32];
    __shared__ int wmax[32];
    long long s = 0;
    int m = -2147483647 - 1;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        s += x[i];
        m = max(m, x[i]);
    }
    for (int off = 16; off > 0; off >>= 1) {
        s += __shfl_down_sync(0xffffffffu, s, off);
        m = max(m, __shfl_down_sync(0xffffffffu, m, off));
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        wsum[warp] = s;
        wmax[warp] = m;
    }
    __syncthreads();
    if (warp == 0) {
        int nw = blockDim.x / 32;
        s = lane < nw ? wsum[lane] : 0;
        m = lane < nw ? wmax[lane] : -2147483647 - 1;
        for (int off = 16; off > 0; off >>= 1) {
            s += __shfl_down_sync(0xffffffffu, s, off);
            m = max(m, __shfl_down_sync(0xffffffffu, m, off));
        }
        if (lane == 0) {
            atomicAdd(sum, (unsigned long long)s);
            atomicMax(mx, m);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: reduce_shfl N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<int> x = read_array<int>(in, n);
    fclose(in);
    int *dx, *dmax;
    unsigned long long *dsum;
    CK(cudaMalloc(&dx, n * sizeof(int)));
    CK(cudaMalloc(&dsum, sizeof(unsigned long long)));
    CK(cudaMalloc(&dmax, sizeof(int)));
    CK(cudaMemcpy(dx, x.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    CK(cudaMemset(dsum, 0, sizeof(unsigned long long)));
    int init = -2147483647 - 1;
    CK(cudaMemcpy(dmax, &init, sizeof(int), cudaMemcpyHostToDevice));
    reduce<<<8, 256>>>(dx, n, dsum, dmax);
    CK(cudaGetLastError());
    long long result[2] = {0, 0};
    int mx;
    CK(cudaMemcpy(&result[0], dsum, sizeof(long long), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(&mx, dmax, sizeof(int), cudaMemcpyDeviceToHost));
    result[1] = (unsigned)mx; /* low 32 bits: max, high 32 bits: pad */
    FILE *out = open_or_die(argv[3], "wb");
    if (fwrite(result, sizeof(result), 1, out) != 1)
        return 2;
    fclose(out);
    printf("n=%d\n", n);
    return 0;
}
