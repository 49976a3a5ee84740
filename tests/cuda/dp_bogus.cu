// dp_bogus.cu - data-path test program (driver API, -lcuda): feeds bogus handles, pointers and launch
// configurations to the driver and checks each is refused with the error a driver gives, then that the
// session still works. I/O contract: no arguments; prints "dp_bogus ok" and exits 0, or prints
// "FAIL <what>: got <n> want <m>" and exits 1.
#include <cuda.h>
#include <stdio.h>
#include <string.h>

#include "tf_test_want.h"

static const char ptx[] =
    ".version 7.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry touch(.param .u64 p)\n{\n"
    "  .reg .b64 %rd<2>;\n  .reg .b32 %r<2>;\n"
    "  ld.param.u64 %rd1, [p];\n  mov.u32 %r1, 5;\n  st.global.u32 [%rd1], %r1;\n  ret;\n}\n";

int main()
{
    CUdevice dev;
    CUcontext ctx;
    WANT("init", cuInit(0), CUDA_SUCCESS);
    WANT("device", cuDeviceGet(&dev, 0), CUDA_SUCCESS);
    WANT("bad ordinal", cuDeviceGet(&dev, 99), CUDA_ERROR_INVALID_DEVICE);
    WANT("retain", cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
    WANT("bogus ctx", cuCtxSetCurrent((CUcontext)0x77), CUDA_ERROR_INVALID_CONTEXT);
    WANT("set ctx", cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    char buf[64] = {0};
    WANT("htod bogus ptr", cuMemcpyHtoD((CUdeviceptr)0xdead0000ull, buf, 16), CUDA_ERROR_INVALID_VALUE);
    WANT("free bogus ptr", cuMemFree((CUdeviceptr)0xdead0000ull), CUDA_ERROR_INVALID_VALUE);
    CUfunction f;
    WANT("bogus module", cuModuleGetFunction(&f, (CUmodule)0x1234, "k"), CUDA_ERROR_INVALID_HANDLE);
    WANT("bogus stream", cuStreamSynchronize((CUstream)0x5678), CUDA_ERROR_INVALID_HANDLE);
    WANT("bogus event (queued)", cuEventRecord((CUevent)0x9999, 0), CUDA_SUCCESS);
    WANT("latched at next sync", cuCtxSynchronize(), CUDA_ERROR_INVALID_HANDLE);
    WANT("not sticky", cuCtxSynchronize(), CUDA_SUCCESS);
    {   /* a queued failure belongs to its stream: other streams and stream-less calls do not see it */
        CUstream a, b;
        size_t fr, tot;
        WANT("stream a", cuStreamCreate(&a, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
        WANT("stream b", cuStreamCreate(&b, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
        WANT("bogus event on a (queued)", cuEventRecord((CUevent)0x9999, a), CUDA_SUCCESS);
        WANT("b does not see a's error", cuStreamSynchronize(b), CUDA_SUCCESS);
        WANT("stream-less call does not see it", cuMemGetInfo(&fr, &tot), CUDA_SUCCESS);
        WANT("a sees its error", cuStreamSynchronize(a), CUDA_ERROR_INVALID_HANDLE);
        WANT("once", cuStreamSynchronize(a), CUDA_SUCCESS);
        WANT("destroy a", cuStreamDestroy(a), CUDA_SUCCESS);
        WANT("destroy b", cuStreamDestroy(b), CUDA_SUCCESS);
    }
    WANT("bogus function", cuLaunchKernel((CUfunction)0x4242, 1, 1, 1, 1, 1, 1, 0, 0, NULL, NULL),
         CUDA_ERROR_INVALID_HANDLE);
    CUmodule mod;
    WANT("load ptx", cuModuleLoadData(&mod, ptx), CUDA_SUCCESS);
    WANT("get function", cuModuleGetFunction(&f, mod, "touch"), CUDA_SUCCESS);
    WANT("missing function", cuModuleGetFunction(&f, mod, "nope"), CUDA_ERROR_NOT_FOUND);
    WANT("get function", cuModuleGetFunction(&f, mod, "touch"), CUDA_SUCCESS);
    CUdeviceptr d;
    WANT("alloc", cuMemAlloc(&d, 64), CUDA_SUCCESS);
    void *args[] = {&d};
    /* a driver answers INVALID_VALUE at the launch call itself (cudart's entries: 9, tests/cuda/launch_errors.cu) */
    WANT("grid 0", cuLaunchKernel(f, 0, 1, 1, 1, 1, 1, 0, 0, args, NULL), CUDA_ERROR_INVALID_VALUE);
    WANT("block too big", cuLaunchKernel(f, 1, 1, 1, 2048, 1, 1, 0, 0, args, NULL), CUDA_ERROR_INVALID_VALUE);
    WANT("block z too big", cuLaunchKernel(f, 1, 1, 1, 1, 1, 128, 0, 0, args, NULL), CUDA_ERROR_INVALID_VALUE);
    WANT("launch", cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, 0, args, NULL), CUDA_SUCCESS);
    WANT("sync", cuCtxSynchronize(), CUDA_SUCCESS);
    unsigned v = 0;
    WANT("dtoh", cuMemcpyDtoH(&v, d, 4), CUDA_SUCCESS);
    if (v != 5) { printf("FAIL kernel wrote %u\n", v); fails++; }
    WANT("dtoh past the end", cuMemcpyDtoH(buf, d + 32, 64), CUDA_ERROR_INVALID_VALUE);
    WANT("memset past the end", cuMemsetD32(d, 0, 17), CUDA_ERROR_INVALID_VALUE);
    static char big[1 << 20];  /* large copies take the executor's streaming path: same checks */
    WANT("big htod past the end", cuMemcpyHtoD(d, big, sizeof big), CUDA_ERROR_INVALID_VALUE);
    WANT("big dtoh past the end", cuMemcpyDtoH(big, d, sizeof big), CUDA_ERROR_INVALID_VALUE);
    {   /* queued (error latched, seen at the next sync) over TCP; same-host copies answer at once */
        CUresult at_call = cuMemcpyHtoDAsync(d, big, sizeof big, 0), at_sync = cuCtxSynchronize();
        if (!((at_call == CUDA_SUCCESS && at_sync == CUDA_ERROR_INVALID_VALUE) ||
              (at_call == CUDA_ERROR_INVALID_VALUE && at_sync == CUDA_SUCCESS))) {
            printf("FAIL big async htod past the end: call %d sync %d\n", (int)at_call, (int)at_sync);
            fails++;
        }
    }
    CUdeviceptr bigd;
    WANT("alloc big", cuMemAlloc(&bigd, sizeof big), CUDA_SUCCESS);
    memset(big, 0x5a, sizeof big);
    WANT("big htod", cuMemcpyHtoD(bigd, big, sizeof big), CUDA_SUCCESS);
    memset(big, 0, sizeof big);
    WANT("big dtoh", cuMemcpyDtoH(big, bigd, sizeof big), CUDA_SUCCESS);
    if (big[0] != 0x5a || big[sizeof big - 1] != 0x5a) { printf("FAIL big copy content\n"); fails++; }
    WANT("free big", cuMemFree(bigd), CUDA_SUCCESS);
    WANT("unload", cuModuleUnload(mod), CUDA_SUCCESS);
    /* the function died with its module: the stub forgot its layout and the worker refuses it */
    WANT("function of unloaded module", cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, 0, args, NULL),
         CUDA_ERROR_INVALID_HANDLE);
    WANT("nothing latched", cuCtxSynchronize(), CUDA_SUCCESS);
    WANT("unload twice", cuModuleUnload(mod), CUDA_ERROR_INVALID_HANDLE);
    WANT("free", cuMemFree(d), CUDA_SUCCESS);
    WANT("double free", cuMemFree(d), CUDA_ERROR_INVALID_VALUE);
    if (fails) return 1;
    printf("dp_bogus ok\n");
    return 0;
}
