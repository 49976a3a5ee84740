// device_query.cu - prints what cudart reports about device 0, one "key=value" per line.
// I/O contract (stable; used by tests/emu and the remote data-path tests):
//   argv: none.  stdout: count, name, major, minor, total_mem, sm_count, warp_size,
//   max_threads_per_block, shared_per_block, mem_free, mem_total (cudaMemGetInfo), driver_version,
//   runtime_version.  Any CUDA failure prints "error=<cudaGetErrorName> at <call>" and exits 1.
#include <cstdio>
#include <cstdlib>

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            printf("error=%s at %s\n", cudaGetErrorName(e_), #call);                               \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main()
{
    int n = 0;
    CK(cudaGetDeviceCount(&n));
    printf("count=%d\n", n);
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    printf("name=%s\nmajor=%d\nminor=%d\ntotal_mem=%zu\nsm_count=%d\nwarp_size=%d\n", p.name, p.major, p.minor,
           p.totalGlobalMem, p.multiProcessorCount, p.warpSize);
    printf("max_threads_per_block=%d\nshared_per_block=%zu\n", p.maxThreadsPerBlock, p.sharedMemPerBlock);
    size_t fr = 0, tot = 0;
    CK(cudaMemGetInfo(&fr, &tot));
    printf("mem_free=%zu\nmem_total=%zu\n", fr, tot);
    int dv = 0, rv = 0;
    CK(cudaDriverGetVersion(&dv));
    CK(cudaRuntimeGetVersion(&rv));
    printf("driver_version=%d\nruntime_version=%d\n", dv, rv);
    return 0;
}
