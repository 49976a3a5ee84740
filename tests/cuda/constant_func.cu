// constant_func.cu - a __noinline__ __device__ function evaluating a polynomial whose 8
// coefficients live in a __constant__ array (set with cudaMemcpyToSymbol):
//   out[i] = sum_k coef[k] * x[i]^k  (Horner), clamped to [-1e6, 1e6].
// I/O contract: constant_func N in.bin out.bin
//   in.bin = coef[8] float32, x[N] float32;  out.bin = out[N] float32.  stdout: "n=<N>".
#include <cstring>
#include "tf_test_io.h"

__constant__ float coef[8];

__device__ __noinline__ float poly(float x)
{
    float acc = 0.0f;
    for (int k = 7; k >= 0; k--)
        acc = acc * x + coef[k];
    return fminf(fmaxf(acc, -1e6f), 1e6f);
}

__global__ void apply(const float *x, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = poly(x[i]);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: constant_func N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<float> c = read_array<float>(in, 8), x = read_array<float>(in, n), out(n);
    fclose(in);
    CK(cudaMemcpyToSymbol(coef, c.data(), 8 * sizeof(float)));
    float back[8];
    CK(cudaMemcpyFromSymbol(back, coef, sizeof(back)));
    float *dx, *dout;
    CK(cudaMalloc(&dx, n * sizeof(float)));
    CK(cudaMalloc(&dout, n * sizeof(float)));
    CK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    apply<<<(n + 255) / 256, 256>>>(dx, dout, n);
    CK(cudaGetLastError());
    CK(cudaMemcpy(out.data(), dout, n * sizeof(float), cudaMemcpyDeviceToHost));
    FILE *f = open_or_die(argv[3], "wb");
    write_array(f, out);
    fclose(f);
    printf("n=%d\nsymbol_roundtrip=%s\n", n, memcmp(back, c.data(), sizeof(back)) ? "bad" : "ok");
    return 0;
}
