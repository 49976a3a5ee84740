// managed_alloc.cu - cudaMallocManaged memory written by the host, changed by kernels, read by the host.
// I/O contract: argv[1] = n (default 100000). stdout: "managed_attr=<cudaDevAttrManagedMemory>",
// "first=<sum after one kernel>", "second=<sum after host edit + second kernel>", "copy=<sum of a second
// managed buffer the device copied a into>", "freed=ok".
// Any CUDA failure prints "error=<cudaGetErrorName> at <call>" and exits 1.
#include <cstdio>
#include <cstdlib>

__global__ void add_index(int *a, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) a[i] += i;
}

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("error=%s at %s\n", cudaGetErrorName(e_), #call); return 1; } } while (0)

static long long sum(const int *a, int n) { long long s = 0; for (int i = 0; i < n; ++i) s += a[i]; return s; }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int attr = 0;
    CK(cudaDeviceGetAttribute(&attr, cudaDevAttrManagedMemory, 0));
    printf("managed_attr=%d\n", attr);
    int *a;
    CK(cudaMallocManaged(&a, n * sizeof(int)));
    for (int i = 0; i < n; ++i) a[i] = 1;               // host writes
    add_index<<<64, 128>>>(a, n);                      // device reads them and adds
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    printf("first=%lld\n", sum(a, n));                 // host reads the kernel's result
    a[0] = 1000;                                       // host edits one element
    add_index<<<64, 128>>>(a, n);
    CK(cudaDeviceSynchronize());
    printf("second=%lld\n", sum(a, n));
    int *b;                                            // a second region: both stay coherent
    CK(cudaMallocManaged(&b, n * sizeof(int)));
    CK(cudaMemcpy(b, a, n * sizeof(int), cudaMemcpyDefault));
    CK(cudaDeviceSynchronize());
    printf("copy=%lld\n", sum(b, n));
    CK(cudaFree(b));
    CK(cudaFree(a));
    printf("freed=ok\n");
    return 0;
}
