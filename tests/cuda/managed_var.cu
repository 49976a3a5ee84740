// managed_var.cu - a __managed__ variable and array shared by host and kernels (unified memory).
// I/O contract: argv[1] = blocks (default 2). stdout: "counter=<5 + blocks*32>" (host sets 5, every thread
// adds 1), "sum=<sum of i*2 for i < 256>" (host fills data[i] = i, a kernel doubles it, the host sums).
// Any CUDA failure prints "error=<cudaGetErrorName> at <call>" and exits 1.
#include <cstdio>
#include <cstdlib>

__managed__ int counter;
__managed__ int data[256];

__global__ void bump() { atomicAdd(&counter, 1); }
__global__ void twice() { data[threadIdx.x] *= 2; }

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("error=%s at %s\n", cudaGetErrorName(e_), #call); return 1; } } while (0)

int main(int argc, char **argv)
{
    int blocks = argc > 1 ? atoi(argv[1]) : 2;
    counter = 5;
    for (int i = 0; i < 256; ++i) data[i] = i;
    bump<<<blocks, 32>>>();
    twice<<<1, 256>>>();
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    long sum = 0;
    for (int i = 0; i < 256; ++i) sum += data[i];
    printf("counter=%d\nsum=%ld\n", counter, sum);
    return 0;
}
