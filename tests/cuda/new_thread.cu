// new_thread.cu - host threads created after CUDA is initialised use the device without cudaSetDevice:
// the runtime binds the device's primary context on a thread's first call, as it does on NVIDIA's driver.
// I/O contract: new_thread   (no arguments). stdout "key=value" lines:
//   main=<err>            cudaMalloc + kernel + copy on the main thread (initialises CUDA)
//   thread_stream=<err>   cudaStreamCreate as a new pthread's first CUDA call
//   thread_device=<err>:<device>   cudaGetDevice on a second new thread (first call there)
//   thread_work=<err>     cudaMalloc, kernel, copy back and check, on a third new thread
//   thread_ctx=<same|other|none>   the driver's current context on a fourth new thread after a
//                         runtime call, compared with the main thread's (cudart binds the primary context)
#include <cuda.h>
#include <pthread.h>
#include <cstdio>
#include "tf_test_io.h"

__global__ void iota(int *p, int base)
{
    p[threadIdx.x] = base + (int)threadIdx.x;
}

static cudaError_t work(int base)
{
    int *d, h[64];
    cudaError_t e = cudaMalloc(&d, sizeof(h));
    if (e != cudaSuccess)
        return e;
    iota<<<1, 64>>>(d, base);
    e = cudaGetLastError();
    if (e == cudaSuccess)
        e = cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost);
    for (int i = 0; e == cudaSuccess && i < 64; i++)
        if (h[i] != base + i)
            e = cudaErrorUnknown;
    cudaError_t f = cudaFree(d);
    return e != cudaSuccess ? e : f;
}

static CUcontext g_main_ctx;

static void *first_stream(void *out)
{
    cudaStream_t s;
    cudaError_t e = cudaStreamCreate(&s);
    if (e == cudaSuccess)
        e = cudaStreamDestroy(s);
    *(cudaError_t *)out = e;
    return NULL;
}

static void *first_device(void *out)
{
    int dev = -1;
    cudaError_t e = cudaGetDevice(&dev);
    snprintf((char *)out, 64, "%s:%d", cudaGetErrorName(e), dev);
    return NULL;
}

static void *first_work(void *out)
{
    *(cudaError_t *)out = work(1000);
    return NULL;
}

static void *ctx_after_runtime(void *out)
{
    CUcontext c = NULL;
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess || cuCtxGetCurrent(&c) != CUDA_SUCCESS)
        c = NULL;
    snprintf((char *)out, 64, "%s", c == NULL ? "none" : c == g_main_ctx ? "same" : "other");
    return NULL;
}

static void run(void *(*fn)(void *), void *out)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, out) != 0 || pthread_join(t, NULL) != 0) {
        printf("error=pthread\n");
        exit(1);
    }
}

int main()
{
    printf("main=%s\n", cudaGetErrorName(work(5)));
    if (cuCtxGetCurrent(&g_main_ctx) != CUDA_SUCCESS)
        g_main_ctx = NULL;
    cudaError_t e1 = cudaErrorUnknown, e3 = cudaErrorUnknown;
    char dev[64] = "", ctx[64] = "";
    run(first_stream, &e1);
    printf("thread_stream=%s\n", cudaGetErrorName(e1));
    run(first_device, dev);
    printf("thread_device=%s\n", dev);
    run(first_work, &e3);
    printf("thread_work=%s\n", cudaGetErrorName(e3));
    run(ctx_after_runtime, ctx);
    printf("thread_ctx=%s\n", ctx);
    return 0;
}
