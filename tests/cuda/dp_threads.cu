// dp_threads.cu - data-path test program (cudart): several host threads share one device, each with
// its own stream, buffers and kernel launches, so the stub's per-thread context and its one shared
// connection are exercised together. I/O contract: dp_threads THREADS N ROUNDS; each thread checks its
// own results (y = x * k + t for thread t, round k); prints "dp_threads ok <THREADS>" and exits 0, or
// "FAIL thread <t> ..." and exits 1.
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static int g_n, g_rounds;

__global__ void axpb(float *y, const float *x, float a, float b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] * a + b;
}

static void *work(void *arg)
{
    long t = (long)arg;
    int n = g_n;
    if (cudaSetDevice(0) != cudaSuccess) { printf("FAIL thread %ld setdevice\n", t); return (void *)1; }
    cudaStream_t s;
    float *x, *y, *h = (float *)malloc(n * sizeof(float)), *r = (float *)malloc(n * sizeof(float));
    if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) || cudaMalloc(&x, n * sizeof(float)) ||
        cudaMalloc(&y, n * sizeof(float))) { printf("FAIL thread %ld setup\n", t); return (void *)1; }
    for (int i = 0; i < n; i++) h[i] = (float)(i % 1000);
    for (int k = 1; k <= g_rounds; k++) {
        cudaMemcpyAsync(x, h, n * sizeof(float), cudaMemcpyHostToDevice, s);
        axpb<<<(n + 127) / 128, 128, 0, s>>>(y, x, (float)k, (float)t, n);
        cudaMemcpyAsync(r, y, n * sizeof(float), cudaMemcpyDeviceToHost, s);
        cudaError_t e = cudaStreamSynchronize(s);
        if (e != cudaSuccess) { printf("FAIL thread %ld round %d: %s\n", t, k, cudaGetErrorString(e)); return (void *)1; }
        for (int i = 0; i < n; i++)
            if (r[i] != h[i] * k + t) { printf("FAIL thread %ld round %d at %d: %f\n", t, k, i, r[i]); return (void *)1; }
    }
    cudaFree(x);
    cudaFree(y);
    cudaStreamDestroy(s);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    g_n = argc > 2 ? atoi(argv[2]) : 10000;
    g_rounds = argc > 3 ? atoi(argv[3]) : 5;
    pthread_t th[64];
    for (long t = 0; t < threads && t < 64; t++) pthread_create(&th[t], NULL, work, (void *)t);
    int bad = 0;
    for (int t = 0; t < threads && t < 64; t++) {
        void *rv;
        pthread_join(th[t], &rv);
        bad |= rv != NULL;
    }
    if (bad) return 1;
    printf("dp_threads ok %d\n", threads);
    return 0;
}
