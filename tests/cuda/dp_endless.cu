// dp_endless.cu - data-path test program (driver API through cudart kernels, -lcuda): holds device memory
// and runs a kernel that never ends in practice (2^31-1 blocks on the emulated device), to test that a
// session dies with its client. I/O contract: argv[1] = MiB to allocate (default 64); prints
// "running <MiB> MiB" once the memory is held and the kernel launched, then blocks in a synchronize.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

__global__ void spin(int *p)
{
    if (threadIdx.x == 0 && p) p[blockIdx.x & 1023] += 1;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoull(argv[1], 0, 10) : 64;
    int *p = 0;
    if (cudaMalloc((void **)&p, mib << 20) != cudaSuccess || cudaMemset(p, 0, mib << 20) != cudaSuccess) {
        printf("FAIL setup\n");
        return 1;
    }
    spin<<<dim3(2147483647u), dim3(32)>>>(p);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        printf("FAIL launch %s\n", cudaGetErrorName(e));
        return 1;
    }
    printf("running %zu MiB\n", mib);
    fflush(stdout);
    e = cudaDeviceSynchronize();
    printf("synchronize returned %s\n", cudaGetErrorName(e));
    return 0;
}
