// dp_lost_worker.cu - data-path test program (runtime API): keeps its vGPU busy until the worker goes away, to
// test what a program sees when its worker dies or freezes mid-session (tests/test_worker_loss.py).
// I/O contract: argv[1] = "kernel": launches a kernel that never ends in practice (2^31-1 blocks on the emulated
// device), prints "busy kernel" and blocks in cudaDeviceSynchronize; "copy": prints "busy copy" and copies
// 64 MiB host -> device -> host in a loop. Either way, the first failing call prints
// "lost <cudaGetErrorName> in <call>" and the program exits 1; success of the synchronize exits 0 ("done").
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__global__ void spin(int *p)
{
    if (threadIdx.x == 0 && p) p[blockIdx.x & 1023] += 1;
}

static int lost(cudaError_t e, const char *call)
{
    printf("lost %s in %s\n", cudaGetErrorName(e), call);
    fflush(stdout);
    return 1;
}

int main(int argc, char **argv)
{
    const size_t bytes = 64u << 20;
    int *dev = 0;
    cudaError_t e = cudaMalloc((void **)&dev, bytes);
    if (e != cudaSuccess) return lost(e, "cudaMalloc");
    if (argc > 1 && strcmp(argv[1], "copy") == 0) {
        char *host = (char *)malloc(bytes);
        if (!host) return 2;
        memset(host, 7, bytes);
        printf("busy copy\n");
        fflush(stdout);
        for (;;) {
            if ((e = cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice)) != cudaSuccess)
                return lost(e, "cudaMemcpy HtoD");
            if ((e = cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost)) != cudaSuccess)
                return lost(e, "cudaMemcpy DtoH");
        }
    }
    spin<<<dim3(2147483647u), dim3(32)>>>(dev);
    if ((e = cudaGetLastError()) != cudaSuccess) return lost(e, "launch");
    printf("busy kernel\n");
    fflush(stdout);
    if ((e = cudaDeviceSynchronize()) != cudaSuccess) return lost(e, "cudaDeviceSynchronize");
    printf("done\n");
    return 0;
}
