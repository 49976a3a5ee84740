// dp_driver.cu - data-path test program using the CUDA driver API only (no kernels), for tests/stub.
// I/O contract: argv[1] = bytes to copy (default 1 MiB). Allocates, copies a pattern host->device,
// memsets part of it, device->device copies, reads back and checks every byte.
// Prints "dp_driver ok <bytes> <device name>" and exits 0 on success; prints "FAIL <step> <CUresult>"
// and exits 1 otherwise. Built with -lcuda (it links the driver directly).
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(step, call)                                                  \
    do {                                                                \
        CUresult rc_ = (call);                                          \
        if (rc_ != CUDA_SUCCESS) {                                      \
            const char *n_ = "?";                                       \
            cuGetErrorName(rc_, &n_);                                   \
            printf("FAIL %s %d %s\n", step, (int)rc_, n_);              \
            return 1;                                                   \
        }                                                               \
    } while (0)

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], 0, 10) : (1u << 20);
    CK("init", cuInit(0));
    int count = 0;
    CK("count", cuDeviceGetCount(&count));
    CUdevice dev;
    CK("get", cuDeviceGet(&dev, 0));
    char name[128];
    CK("name", cuDeviceGetName(name, sizeof name, dev));
    CUcontext ctx;
    CK("retain", cuDevicePrimaryCtxRetain(&ctx, dev));
    CK("setcurrent", cuCtxSetCurrent(ctx));
    CUdeviceptr a, b;
    CK("alloc a", cuMemAlloc(&a, n));
    CK("alloc b", cuMemAlloc(&b, n));
    unsigned char *h = (unsigned char *)malloc(n), *r = (unsigned char *)malloc(n);
    for (size_t i = 0; i < n; i++) h[i] = (unsigned char)(i * 7 + 3);
    CK("htod", cuMemcpyHtoD(a, h, n));
    CK("memset", cuMemsetD8(a, 0xAB, n / 4));
    CK("dtod", cuMemcpyDtoD(b, a, n));
    CK("dtoh", cuMemcpyDtoH(r, b, n));
    for (size_t i = 0; i < n; i++) {
        unsigned char want = i < n / 4 ? 0xAB : (unsigned char)(i * 7 + 3);
        if (r[i] != want) {
            printf("FAIL compare at %zu: %d != %d\n", i, r[i], want);
            return 1;
        }
    }
    size_t fr = 0, tot = 0;
    CK("meminfo", cuMemGetInfo(&fr, &tot));
    CK("free a", cuMemFree(a));
    CK("free b", cuMemFree(b));
    CK("sync", cuCtxSynchronize());
    printf("dp_driver ok %zu %s\n", n, name);
    return 0;
}
