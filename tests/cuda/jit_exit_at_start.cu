// jit_exit_at_start.cu - launches one kernel (the JIT queues its compile), then waits until the file MARK
// exists (a test's stand-in JIT plugin creates it once libLLVM is loaded, then stalls) and returns from
// main at once: the process exits while the JIT's compile thread is loading LLVM for the first link.
// I/O contract: jit_exit_at_start MARK; prints "sync=<error name>", "value=<out[31]>" (62) and
// "marked=<1 if MARK appeared within 120 s>".
#include <unistd.h>

#include "tf_test_io.h"

__global__ void k_double(float *out) { out[threadIdx.x] = 2.0f * threadIdx.x; }

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: jit_exit_at_start MARK\n");
        return 2;
    }
    float *d, h[32];
    CK(cudaMalloc(&d, sizeof h));
    k_double<<<1, 32>>>(d);
    cudaError_t e = cudaDeviceSynchronize();
    CK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    int marked = 0;
    for (int i = 0; i < 12000 && !(marked = access(argv[1], F_OK) == 0); i++)
        usleep(10000);
    printf("sync=%s\nvalue=%g\nmarked=%d\n", cudaGetErrorName(e), h[31], marked);
    fflush(stdout);
    return 0;
}
