// divergent_loops.cu - per-thread data-dependent loops and branches (threads of one warp take
// different paths and iteration counts): out[i] = collatz_steps(x[i] % 10000 + 1), capped at 500,
// negated when the start value is a multiple of 3.
// I/O contract: divergent_loops N in.bin out.bin
//   in.bin = x[N] uint32;  out.bin = out[N] int32.  stdout: "n=<N>".
#include "tf_test_io.h"

__global__ void steps(const unsigned *x, int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    unsigned long long v = x[i] % 10000 + 1;
    bool third = v % 3 == 0;
    int s = 0;
    while (v != 1 && s < 500) {
        if (v & 1)
            v = 3 * v + 1;
        else
            v >>= 1;
        s++;
    }
    out[i] = third ? -s : s;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: divergent_loops N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<unsigned> x = read_array<unsigned>(in, n);
    fclose(in);
    std::vector<int> out(n);
    unsigned *dx;
    int *dout;
    CK(cudaMalloc(&dx, n * sizeof(unsigned)));
    CK(cudaMalloc(&dout, n * sizeof(int)));
    CK(cudaMemcpy(dx, x.data(), n * sizeof(unsigned), cudaMemcpyHostToDevice));
    steps<<<(n + 63) / 64, 64>>>(dx, dout, n);
    CK(cudaGetLastError());
    CK(cudaMemcpy(out.data(), dout, n * sizeof(int), cudaMemcpyDeviceToHost));
    FILE *f = open_or_die(argv[3], "wb");
    write_array(f, out);
    fclose(f);
    printf("n=%d\n", n);
    return 0;
}
