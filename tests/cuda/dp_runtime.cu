// dp_runtime.cu - data-path test program through the CUDA runtime (cudart), for tests/stub.
// I/O contract: argv[1] = element count (default 262144), argv[2] = "kernel" to also launch a kernel,
// argv[3] = "reset" to then cudaDeviceReset() and run a copy + kernel again on the fresh context.
// cudaMalloc/cudaMemcpy/cudaMemset/cudaMemcpyAsync on a stream/events; with "kernel", scale<<<>>> (x*a+b)
// in place. Checks every element; prints "dp_runtime ok <n> <device name>" and exits 0, or prints
// "FAIL <step>: <cudaGetErrorString>" and exits 1.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(step, call)                                                     \
    do {                                                                   \
        cudaError_t e_ = (call);                                           \
        if (e_ != cudaSuccess) {                                           \
            printf("FAIL %s: %s\n", step, cudaGetErrorString(e_));         \
            return 1;                                                      \
        }                                                                  \
    } while (0)

__global__ void scale(float *x, float a, float b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = x[i] * a + b;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 262144;
    int kernel = argc > 2 && strcmp(argv[2], "kernel") == 0;
    cudaDeviceProp prop;
    CK("props", cudaGetDeviceProperties(&prop, 0));
    float *d = 0, *d2 = 0;
    CK("malloc", cudaMalloc(&d, n * sizeof(float)));
    CK("malloc2", cudaMalloc(&d2, n * sizeof(float)));
    float *h = (float *)malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) h[i] = (float)i;
    CK("h2d", cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
    CK("memset", cudaMemset(d2, 0, n * sizeof(float)));
    cudaStream_t s;
    CK("stream", cudaStreamCreate(&s));
    cudaEvent_t e0, e1;
    CK("event", cudaEventCreate(&e0));
    CK("event", cudaEventCreate(&e1));
    CK("record", cudaEventRecord(e0, s));
    CK("d2d", cudaMemcpyAsync(d2, d, n * sizeof(float), cudaMemcpyDeviceToDevice, s));
    if (kernel) {
        scale<<<(n + 255) / 256, 256, 0, s>>>(d2, 2.0f, 1.0f, n);
        CK("launch", cudaGetLastError());
    }
    CK("record", cudaEventRecord(e1, s));
    CK("sync", cudaStreamSynchronize(s));
    float ms = 0;
    CK("elapsed", cudaEventElapsedTime(&ms, e0, e1));
    memset(h, 0, n * sizeof(float));
    CK("d2h", cudaMemcpy(h, d2, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        float want = kernel ? (float)i * 2.0f + 1.0f : (float)i;
        if (h[i] != want) {
            printf("FAIL compare at %d: %f != %f\n", i, h[i], want);
            return 1;
        }
    }
    CK("free", cudaFree(d));
    CK("free", cudaFree(d2));
    CK("destroy", cudaStreamDestroy(s));
    if (argc > 3 && strcmp(argv[3], "reset") == 0) {
        CK("reset", cudaDeviceReset());
        float *r = 0;
        CK("malloc after reset", cudaMalloc(&r, n * sizeof(float)));
        for (int i = 0; i < n; i++) h[i] = (float)i;
        CK("h2d after reset", cudaMemcpy(r, h, n * sizeof(float), cudaMemcpyHostToDevice));
        scale<<<(n + 255) / 256, 256>>>(r, 3.0f, 0.0f, n);
        CK("launch after reset", cudaGetLastError());
        CK("d2h after reset", cudaMemcpy(h, r, n * sizeof(float), cudaMemcpyDeviceToHost));
        for (int i = 0; i < n; i++)
            if (h[i] != 3.0f * i) { printf("FAIL after reset at %d: %f\n", i, h[i]); return 1; }
        CK("free after reset", cudaFree(r));
    }
    printf("dp_runtime ok %d %s\n", n, prop.name);
    return 0;
}
