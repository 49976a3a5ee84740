// cublas_sgemm.cu - cuBLAS (libcublas 13, linked with -lcublas) on the device: cublasCreate, then
// C = alpha * A x B + beta * C with cublasSgemm (column-major, no transposes), synchronize, cublasDestroy.
// I/O contract: cublas_sgemm M N K ALPHA BETA in.bin out.bin
//   in.bin = A[M*K], B[K*N], C[M*N] float32 column-major;  out.bin = the resulting C[M*N].
//   stdout: "create=<cublasStatus_t> sgemm=<cublasStatus_t> sync=<cudaGetErrorName>"; a failing status
//   is printed, not fatal (the caller checks which step failed), and exits 3.
#include <cublas_v2.h>

#include "tf_test_io.h"

int main(int argc, char **argv)
{
    if (argc < 8) {
        printf("usage: cublas_sgemm M N K ALPHA BETA in.bin out.bin\n");
        return 2;
    }
    int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]);
    float alpha = (float)atof(argv[4]), beta = (float)atof(argv[5]);
    FILE *in = open_or_die(argv[6], "rb");
    std::vector<float> a = read_array<float>(in, (size_t)m * k), b = read_array<float>(in, (size_t)k * n),
                       c = read_array<float>(in, (size_t)m * n);
    fclose(in);

    cublasHandle_t h;
    cublasStatus_t s = cublasCreate(&h);
    printf("create=%d\n", (int)s);
    if (s != CUBLAS_STATUS_SUCCESS)
        return 3;
    float *da, *db, *dc;
    CK(cudaMalloc(&da, a.size() * sizeof(float)));
    CK(cudaMalloc(&db, b.size() * sizeof(float)));
    CK(cudaMalloc(&dc, c.size() * sizeof(float)));
    CK(cudaMemcpy(da, a.data(), a.size() * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, b.data(), b.size() * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dc, c.data(), c.size() * sizeof(float), cudaMemcpyHostToDevice));
    s = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da, m, db, k, &beta, dc, m);
    cudaError_t e = cudaDeviceSynchronize();
    printf("sgemm=%d\nsync=%s\n", (int)s, cudaGetErrorName(e));
    if (s != CUBLAS_STATUS_SUCCESS || e != cudaSuccess)
        return 3;
    CK(cudaMemcpy(c.data(), dc, c.size() * sizeof(float), cudaMemcpyDeviceToHost));
    FILE *out = open_or_die(argv[7], "wb");
    write_array(out, c);
    fclose(out);
    CK(cudaFree(da));
    CK(cudaFree(db));
    CK(cudaFree(dc));
    s = cublasDestroy(h);
    printf("destroy=%d\n", (int)s);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : 3;
}
