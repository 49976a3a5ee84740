// dp_fault.cu - data-path test program (cudart): a kernel that writes through a wild pointer.
// I/O contract: no arguments. Prints "fault seen: <cudaGetErrorString of the synchronize>" and then
// "sticky: <error string of a later cudaMalloc>" (a kernel fault poisons the context); exits 0.
#include <cuda_runtime.h>
#include <stdio.h>

__global__ void wild(int *p) { p[threadIdx.x] = 42; }

int main()
{
    int *ok = 0;
    if (cudaMalloc(&ok, 256) != cudaSuccess) { printf("FAIL malloc\n"); return 1; }
    wild<<<1, 32>>>((int *)0x10);
    cudaError_t launch = cudaGetLastError();
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) e = launch;
    printf("fault seen: %s\n", cudaGetErrorString(e));
    void *q = 0;
    printf("sticky: %s\n", cudaGetErrorString(cudaMalloc(&q, 256)));
    return 0;
}
