// device_query.cu - demo: what the program sees as its GPU through TensorFusion (name, memory, SMs).
#include <cstdio>
#include <cuda_runtime.h>

int main() {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) { printf("device_query: %s\n", cudaGetErrorString(err)); return 1; }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) return 1;
        size_t free_b = 0, total_b = 0;
        cudaSetDevice(i);
        cudaMemGetInfo(&free_b, &total_b);
        printf("device %d: %s, compute %d.%d, %d SMs, %zu MiB total, %zu MiB free\n", i, p.name, p.major,
               p.minor, p.multiProcessorCount, total_b >> 20, free_b >> 20);
    }
    return 0;
}
