// ctx_lifetime.cu - what the driver API answers around a context's end (driver API only), printed as key=value
// with the CUresult names, for tests/emu and tests/stub:
//   a created context destroyed by thread A while also current to thread B (cuCtxDestroy: it stays current to B,
//   and B's calls get CUDA_ERROR_CONTEXT_IS_DESTROYED): other_alloc, other_sync (B's cuMemAlloc / cuCtxSynchronize),
//   other_still_current (B's cuCtxGetCurrent is that context: 1), other_pop (B's cuCtxPopCurrent: success, the
//   context), destroyer_current (A's current context afterwards: "null", it was popped), set_destroyed
//   (cuCtxSetCurrent of it), destroy_again (cuCtxDestroy of it);
//   the primary context after cuDevicePrimaryCtxReset, retained again: reset_free / reset_memset (its old
//   allocation: gone), release_after_reset (the release of the retain the reset ended), release_unretained.
#include <cstdio>
#include <cuda.h>
#include <thread>

static const char *nm(CUresult r)
{
    const char *n = "?";
    if (r == CUDA_SUCCESS) return "ok";
    cuGetErrorName(r, &n);
    return n;
}

int main()
{
    CUdevice dev;
    if (cuInit(0) || cuDeviceGet(&dev, 0)) {
        printf("error=init\n");
        return 1;
    }
    CUcontext made = 0;
    if (cuCtxCreate(&made, nullptr, 0, dev)) {
        printf("error=create\n");
        return 1;
    }
    CUresult destroyed = cuCtxDestroy(made); // current to this thread: popped
    (void)destroyed;
    // thread B makes a context current; this thread (A) destroys it while B still has it
    CUcontext shared = 0;
    if (cuCtxCreate(&shared, nullptr, 0, dev) || cuCtxPopCurrent(nullptr)) {
        printf("error=create\n");
        return 1;
    }
    volatile int stage = 0;
    CUresult other_alloc = CUDA_SUCCESS, other_sync = CUDA_SUCCESS, other_pop = CUDA_SUCCESS;
    int other_still_current = 0, other_pop_same = 0;
    std::thread b([&] {
        cuCtxSetCurrent(shared);
        stage = 1;
        while (stage != 2) std::this_thread::yield();
        CUdeviceptr p = 0;
        other_alloc = cuMemAlloc(&p, 256);
        other_sync = cuCtxSynchronize();
        CUcontext cur = 0;
        other_still_current = cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == shared;
        CUcontext popped = 0;
        other_pop = cuCtxPopCurrent(&popped);
        other_pop_same = popped == shared;
    });
    while (stage != 1) std::this_thread::yield();
    cuCtxSetCurrent(shared);
    CUresult d = cuCtxDestroy(shared);
    CUcontext mine = (CUcontext)1;
    cuCtxGetCurrent(&mine);
    stage = 2;
    b.join();
    printf("destroy=%s\n", nm(d));
    printf("other_alloc=%s\nother_sync=%s\nother_still_current=%d\n", nm(other_alloc), nm(other_sync), other_still_current);
    printf("other_pop=%s%s\n", nm(other_pop), other_pop == CUDA_SUCCESS && !other_pop_same ? " other" : "");
    printf("destroyer_current=%s\n", mine ? "set" : "null");
    printf("set_destroyed=%s\n", nm(cuCtxSetCurrent(shared)));
    printf("destroy_again=%s\n", nm(cuCtxDestroy(shared)));
    // the primary context: an allocation, a reset, a new retain
    CUcontext prim = 0;
    CUdeviceptr p = 0;
    if (cuDevicePrimaryCtxRetain(&prim, dev) || cuCtxSetCurrent(prim) || cuMemAlloc(&p, 4096)) {
        printf("error=primary\n");
        return 1;
    }
    printf("reset=%s\n", nm(cuDevicePrimaryCtxReset(dev)));
    if (cuDevicePrimaryCtxRetain(&prim, dev) || cuCtxSetCurrent(prim)) {
        printf("error=retain\n");
        return 1;
    }
    printf("reset_free=%s\n", nm(cuMemFree(p)));
    printf("reset_memset=%s\n", nm(cuMemsetD8(p, 1, 16)));
    printf("release_now=%s\n", nm(cuDevicePrimaryCtxRelease(dev)));          // the new retain's, the last
    printf("release_after_reset=%s\n", nm(cuDevicePrimaryCtxRelease(dev)));  // the retain the reset ended
    printf("release_unretained=%s\n", nm(cuDevicePrimaryCtxRelease(dev)));
    return 0;
}
