// managed_both_sides.cu - one cudaMallocManaged range written by the host and by a kernel between the same
// two sync points (a launch and cudaDeviceSynchronize), as NVIDIA's systemWideAtomics sample does.
// I/O contract: argv[1] = "atomics" | "disjoint".
//   atomics:  256x64 device threads atomicAdd_system(+1) x50 on counter[0] while the host does
//             __sync_fetch_and_add(+1) x100000 on it; stdout "atomic_sum=<value>" "atomic_expected=<value>".
//   disjoint: the kernel writes a[i] = i for i >= n/2 while the host writes a[i] = -i for i < n/2 (n = 1<<20);
//             stdout "disjoint_bad=<elements not holding what their writer wrote>".
// Any CUDA failure prints "error=<cudaGetErrorName> at <call>" and exits 1.
#include <cstdio>
#include <cstring>

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("error=%s at %s\n", cudaGetErrorName(e_), #call); return 1; } } while (0)

__global__ void add_system(int *counter, int loops)
{
    for (int i = 0; i < loops; i++) atomicAdd_system(counter, 1);
}

__global__ void write_upper(int *a, int n)
{
    for (int i = n / 2 + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) a[i] = i;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "atomics";
    if (strcmp(mode, "atomics") == 0) {
        const int blocks = 64, threads = 256, loops = 50, host_adds = 100000;
        int *counter;
        CK(cudaMallocManaged(&counter, sizeof(int)));
        *counter = 0;
        add_system<<<blocks, threads>>>(counter, loops);
        CK(cudaGetLastError());
        for (int i = 0; i < host_adds; i++) __sync_fetch_and_add(counter, 1);
        CK(cudaDeviceSynchronize());
        printf("atomic_sum=%d\natomic_expected=%d\n", *counter, blocks * threads * loops + host_adds);
        CK(cudaFree(counter));
        return 0;
    }
    const int n = 1 << 20;
    int *a;
    CK(cudaMallocManaged(&a, n * sizeof(int)));
    memset(a, 0xff, n * sizeof(int));
    write_upper<<<64, 256>>>(a, n);
    CK(cudaGetLastError());
    for (int i = 0; i < n / 2; i++) a[i] = -i;
    CK(cudaDeviceSynchronize());
    int bad = 0;
    for (int i = 0; i < n; i++) bad += a[i] != (i < n / 2 ? -i : i);
    printf("disjoint_bad=%d\n", bad);
    CK(cudaFree(a));
    return 0;
}
