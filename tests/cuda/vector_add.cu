// vector_add.cu - c[i] = a[i] + b[i].
// I/O contract: vector_add N in.bin out.bin
//   in.bin  = a[N] float32, b[N] float32;  out.bin = c[N] float32.  stdout: "n=<N>".
#include "tf_test_io.h"

__global__ void vadd(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: vector_add N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<float> a = read_array<float>(in, n), b = read_array<float>(in, n), c(n);
    fclose(in);
    float *da, *db, *dc;
    CK(cudaMalloc(&da, n * sizeof(float)));
    CK(cudaMalloc(&db, n * sizeof(float)));
    CK(cudaMalloc(&dc, n * sizeof(float)));
    CK(cudaMemcpy(da, a.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, b.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    vadd<<<(n + 255) / 256, 256>>>(da, db, dc, n);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(c.data(), dc, n * sizeof(float), cudaMemcpyDeviceToHost));
    FILE *out = open_or_die(argv[3], "wb");
    write_array(out, c);
    fclose(out);
    printf("n=%d\n", n);
    return 0;
}
