// histogram.cu - counts values into BINS bins (bin = value % BINS) with shared-memory atomics per
// block, then global atomics.
// I/O contract: histogram N BINS in.bin out.bin   (1 <= BINS <= 1024)
//   in.bin = v[N] uint32;  out.bin = counts[BINS] uint32.  stdout: "n=<N> bins=<BINS>".
#include "tf_test_io.h"

__global__ void hist(const unsigned *v, int n, unsigned *counts, int bins)
{
    extern __shared__ unsigned local[];
    for (int b = threadIdx.x; b < bins; b += blockDim.x)
        local[b] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        atomicAdd(&local[v[i] % bins], 1u);
    __syncthreads();
    for (int b = threadIdx.x; b < bins; b += blockDim.x)
        if (local[b])
            atomicAdd(&counts[b], local[b]);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        printf("usage: histogram N BINS in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]), bins = atoi(argv[2]);
    FILE *in = open_or_die(argv[3], "rb");
    std::vector<unsigned> v = read_array<unsigned>(in, n), counts(bins);
    fclose(in);
    unsigned *dv, *dc;
    CK(cudaMalloc(&dv, n * sizeof(unsigned)));
    CK(cudaMalloc(&dc, bins * sizeof(unsigned)));
    CK(cudaMemcpy(dv, v.data(), n * sizeof(unsigned), cudaMemcpyHostToDevice));
    CK(cudaMemset(dc, 0, bins * sizeof(unsigned)));
    hist<<<16, 256, bins * sizeof(unsigned)>>>(dv, n, dc, bins);
    CK(cudaGetLastError());
    CK(cudaMemcpy(counts.data(), dc, bins * sizeof(unsigned), cudaMemcpyDeviceToHost));
    FILE *out = open_or_die(argv[4], "wb");
    write_array(out, counts);
    fclose(out);
    printf("n=%d bins=%d\n", n, bins);
    return 0;
}
