// saxpy.cu - y[i] = alpha * x[i] + y[i].
// I/O contract: saxpy N alpha in.bin out.bin
//   in.bin = x[N] float32, y[N] float32;  out.bin = y'[N] float32.  stdout: "n=<N>".
#include "tf_test_io.h"

__global__ void saxpy(int n, float alpha, const float *x, float *y)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = alpha * x[i] + y[i];
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        printf("usage: saxpy N alpha in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    float alpha = (float)atof(argv[2]);
    FILE *in = open_or_die(argv[3], "rb");
    std::vector<float> x = read_array<float>(in, n), y = read_array<float>(in, n);
    fclose(in);
    float *dx, *dy;
    CK(cudaMalloc(&dx, n * sizeof(float)));
    CK(cudaMalloc(&dy, n * sizeof(float)));
    CK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dy, y.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    saxpy<<<(n + 127) / 128, 128>>>(n, alpha, dx, dy);
    CK(cudaGetLastError());
    CK(cudaMemcpy(y.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost));
    FILE *out = open_or_die(argv[4], "wb");
    write_array(out, y);
    fclose(out);
    printf("n=%d\n", n);
    return 0;
}
