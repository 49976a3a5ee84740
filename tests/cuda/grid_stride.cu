// grid_stride.cu - a fixed small grid (4 blocks x 96 threads) covers any N with a grid-stride
// loop: out[i] = 2 * x[i] + (float)(i % 7).
// I/O contract: grid_stride N in.bin out.bin
//   in.bin = x[N] float32;  out.bin = out[N] float32.  stdout: "n=<N>".
#include "tf_test_io.h"

__global__ void twice(const float *x, float *out, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = 2.0f * x[i] + (float)(i % 7);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: grid_stride N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<float> x = read_array<float>(in, n), out(n);
    fclose(in);
    float *dx, *dout;
    CK(cudaMalloc(&dx, n * sizeof(float)));
    CK(cudaMalloc(&dout, n * sizeof(float)));
    CK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    twice<<<4, 96>>>(dx, dout, n);
    CK(cudaGetLastError());
    CK(cudaMemcpy(out.data(), dout, n * sizeof(float), cudaMemcpyDeviceToHost));
    FILE *f = open_or_die(argv[3], "wb");
    write_array(f, out);
    fclose(f);
    printf("n=%d\n", n);
    return 0;
}
