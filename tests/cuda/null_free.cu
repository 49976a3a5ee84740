// null_free.cu - freeing "nothing": the calls CUDA documents (or NVIDIA's driver answers) as no-ops for a
// NULL/0 argument, and their neighbours that must still refuse NULL. cudaFree(0) is the classic
// "create the context now" idiom (cuBLAS and cuRAND start with it), so it is the very first call here.
// Build with -lcuda (driver entry points are called directly, in cudart's primary context).
// I/O contract: null_free   (no arguments). stdout "key=value" lines, values are error names:
//   first_cudaFree0     cudaFree(0) as the program's first CUDA call
//   cudaFree0           cudaFree(0) again
//   cudaFreeHost0       cudaFreeHost(NULL)
//   cudaFreeAsync0      cudaFreeAsync(NULL, stream) then cudaStreamSynchronize(stream)
//   cuMemFree0          cuMemFree(0)
//   cuMemFreeHost0      cuMemFreeHost(NULL)
//   cuMemFreeAsync0     cuMemFreeAsync(0, stream) then cuStreamSynchronize(stream)
//   cuMemHostUnregister0  cuMemHostUnregister(NULL)   (NOT a no-op: CUDA_ERROR_INVALID_VALUE)
//   double_free         cuMemFree of a pointer already freed (an error, not a no-op)
//   after=<err>         a real allocation, copy and free after all of the above
#include <cuda.h>
#include <cstdio>
#include "tf_test_io.h"

static const char *cu_name(CUresult r)
{
    const char *n = "?";
    cuGetErrorName(r, &n);
    return n;
}

int main()
{
    printf("first_cudaFree0=%s\n", cudaGetErrorName(cudaFree(0)));
    printf("cudaFree0=%s\n", cudaGetErrorName(cudaFree(0)));
    printf("cudaFreeHost0=%s\n", cudaGetErrorName(cudaFreeHost(NULL)));
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    cudaError_t e = cudaFreeAsync(NULL, s);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(s);
    printf("cudaFreeAsync0=%s\n", cudaGetErrorName(e));

    printf("cuMemFree0=%s\n", cu_name(cuMemFree(0)));
    printf("cuMemFreeHost0=%s\n", cu_name(cuMemFreeHost(NULL)));
    CUresult r = cuMemFreeAsync(0, (CUstream)s);
    if (r == CUDA_SUCCESS)
        r = cuStreamSynchronize((CUstream)s);
    printf("cuMemFreeAsync0=%s\n", cu_name(r));
    printf("cuMemHostUnregister0=%s\n", cu_name(cuMemHostUnregister(NULL)));

    CUdeviceptr p;
    r = cuMemAlloc(&p, 256);
    if (r == CUDA_SUCCESS)
        r = cuMemFree(p);
    printf("double_free=%s\n", r == CUDA_SUCCESS ? cu_name(cuMemFree(p)) : cu_name(r));

    int *d, h = 0;
    e = cudaMalloc(&d, sizeof(int));
    if (e == cudaSuccess)
        e = cudaMemset(d, 0x11, sizeof(int));
    if (e == cudaSuccess)
        e = cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost);
    if (e == cudaSuccess && h != 0x11111111)
        e = cudaErrorUnknown;
    if (e == cudaSuccess)
        e = cudaFree(d);
    printf("after=%s\n", cudaGetErrorName(e));
    CK(cudaStreamDestroy(s));
    return 0;
}
