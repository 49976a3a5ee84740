// dp_hold.cu - data-path test program (driver API, -lcuda): holds device memory until killed or told.
// I/O contract: argv[1] = MiB to allocate; prints "holding <MiB> MiB" once allocated and set.
// A failure prints "FAIL setup <CUresult name>" and exits 1. Without argv[2] it then sleeps until killed. With argv[2] = "wait" it reads one line from stdin, then
// tries a cuMemsetD8 and prints "after close: <CUresult name>" (the test closes the session first).
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoull(argv[1], 0, 10) : 16;
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr p;
    CUresult rc;
    if ((rc = cuInit(0)) || (rc = cuDeviceGet(&dev, 0)) || (rc = cuDevicePrimaryCtxRetain(&ctx, dev)) ||
        (rc = cuCtxSetCurrent(ctx)) || (rc = cuMemAlloc(&p, mib << 20)) || (rc = cuMemsetD8(p, 7, mib << 20))) {
        const char *name = "?";
        cuGetErrorName(rc, &name);
        printf("FAIL setup %s\n", name);
        return 1;
    }
    printf("holding %zu MiB\n", mib);
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "wait") == 0) {
        char line[64];
        if (!fgets(line, sizeof line, stdin)) return 1;
        rc = cuMemsetD8(p, 9, mib << 20);
        const char *name = "?";
        cuGetErrorName(rc, &name);
        printf("after close: %s\n", name);
        return 0;
    }
    for (;;) pause();
}
