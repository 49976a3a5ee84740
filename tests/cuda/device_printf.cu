// device_printf.cu - printf inside kernels: where its output appears (at the points CUDA flushes the
// device printf FIFO: synchronizes, blocking copies, ...) relative to the host's own output, how much
// of it (cudaLimitPrintfFifoSize), and the GPU worker's diagnostics (an unsupported instruction).
// I/O contract: device_printf MODE
//   order   stdout, in this order: "host: start", "host: launched A", the 4 lines "A <tid>" (in thread
//           order), "host: after sync 1", "B 7 2.50 text", "host: after sync 2", "C <tid>" x2,
//           "host: after copy", "D <tid>" x2 after "host: before stream sync", then "host: end"
//   fifo    the FIFO set to 4096 bytes: kernel F prints 1000 lines "F <4-digit id> ....", the host
//           prints "host: sync 1 = <err>"; then kernel G prints the same way and "host: sync 2 = <err>"
//   bad     a kernel with an instruction no device knows: stdout "launch=<err>", "sync=<err>"
#include <cstdio>
#include <cstring>
#include "tf_test_io.h"

__global__ void say(char tag)
{
    printf("%c %d\n", tag, (int)threadIdx.x);
}

__global__ void say_values(int i, float f)
{
    printf("B %d %.2f %s\n", i, f, "text");
}

__global__ void flood(char tag)
{
    int id = blockIdx.x * blockDim.x + threadIdx.x;
    printf("%c %04d ..........................\n", tag, id);
}

__global__ void bad_instruction(int *p)
{
    asm volatile("tfemu.no.such.instruction;");
    p[threadIdx.x] = 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "order";
    if (strcmp(mode, "order") == 0) {
        int *d, h = 0;
        CK(cudaMalloc(&d, sizeof(int)));
        printf("host: start\n");
        say<<<1, 4>>>('A');
        printf("host: launched A\n");
        CK(cudaDeviceSynchronize());
        printf("host: after sync 1\n");
        say_values<<<1, 1>>>(7, 2.5f);
        CK(cudaStreamSynchronize(0));
        printf("host: after sync 2\n");
        say<<<1, 2>>>('C');
        CK(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost));
        printf("host: after copy\n");
        cudaStream_t s;
        CK(cudaStreamCreate(&s));
        say<<<1, 2, 0, s>>>('D');
        printf("host: before stream sync\n");
        CK(cudaStreamSynchronize(s));
        printf("host: end\n");
        CK(cudaStreamDestroy(s));
        CK(cudaFree(d));
    } else if (strcmp(mode, "fifo") == 0) {
        CK(cudaDeviceSetLimit(cudaLimitPrintfFifoSize, 4096));
        size_t got = 0;
        CK(cudaDeviceGetLimit(&got, cudaLimitPrintfFifoSize));
        printf("host: fifo = %zu\n", got);
        flood<<<4, 250>>>('F');
        printf("host: sync 1 = %s\n", cudaGetErrorName(cudaDeviceSynchronize()));
        flood<<<4, 250>>>('G');
        printf("host: sync 2 = %s\n", cudaGetErrorName(cudaDeviceSynchronize()));
    } else {
        int *d;
        CK(cudaMalloc(&d, 64 * sizeof(int)));
        bad_instruction<<<1, 32>>>(d);
        printf("launch=%s\n", cudaGetErrorName(cudaGetLastError()));
        printf("sync=%s\n", cudaGetErrorName(cudaDeviceSynchronize()));
    }
    return 0;
}
