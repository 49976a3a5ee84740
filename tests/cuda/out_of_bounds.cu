// out_of_bounds.cu - a kernel that stores far outside its allocation; on a GPU (and on the
// emulated device) the launch fails with an illegal address and the error is sticky.
// I/O contract: out_of_bounds   (no arguments)
//   stdout: "launch=<error name from cudaGetLastError>", "sync=<error of cudaDeviceSynchronize>",
//           "after=<error of a later cudaMalloc>" (sticky: still the fault),
//           "reset=<error of cudaDeviceReset>", "after_reset=<error of cudaMalloc + a good launch after
//           the reset>" (the reset clears the fault, as on a GPU).
#include "tf_test_io.h"

__global__ void bad_store(int *p, long long offset)
{
    p[threadIdx.x + offset] = 42;
}

int main()
{
    int *d;
    CK(cudaMalloc(&d, 256 * sizeof(int)));
    bad_store<<<1, 32>>>(d, 1ll << 36);
    cudaError_t launch = cudaGetLastError();
    cudaError_t sync = cudaDeviceSynchronize();
    void *again = 0;
    cudaError_t after = cudaMalloc(&again, 16);
    printf("launch=%s\nsync=%s\nafter=%s\n", cudaGetErrorName(launch), cudaGetErrorName(sync), cudaGetErrorName(after));
    cudaError_t reset = cudaDeviceReset();
    cudaGetLastError(); /* cudart's last-error slot still holds the fault: clear it */
    int *ok = 0;
    cudaError_t e = cudaMalloc(&ok, 256 * sizeof(int));
    if (e == cudaSuccess) {
        bad_store<<<1, 32>>>(ok, 0); /* in bounds this time */
        e = cudaGetLastError();
    }
    if (e == cudaSuccess)
        e = cudaDeviceSynchronize();
    printf("reset=%s\nafter_reset=%s\n", cudaGetErrorName(reset), cudaGetErrorName(e));
    return 0;
}
