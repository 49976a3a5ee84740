// api_unsupported.cu - driver-API functions the remote stub does not forward, called the ways a program
// can reach them: linked directly (-lcuda), and through cuGetProcAddress at an old version (the legacy
// 32-bit cuMemAlloc ABI) and for a function cudaTypedefs.h has no typedef for (cuGreenCtxCreate).
// For tests/stub/test_api_surface.py. Prints "key=<CUresult number>" lines; exits 0 unless setup fails.
#include <cuda.h>
#include <stdio.h>

typedef CUresult (*unary_fn)(void *, unsigned int);

int main()
{
    if (cuInit(0) != CUDA_SUCCESS) { printf("FAIL init\n"); return 1; }
    CUdevice dev;
    CUcontext ctx;
    if (cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) {
        printf("FAIL context\n");
        return 1;
    }
    // graphics interop: a resource of a graphics API this host does not have
    printf("graphics_unregister=%d\n", (int)cuGraphicsUnregisterResource(NULL));
    printf("graphics_unregister_again=%d\n", (int)cuGraphicsUnregisterResource(NULL));
    int sup = -1;
    printf("exec_affinity=%d\n", (int)cuDeviceGetExecAffinitySupport(&sup, CU_EXEC_AFFINITY_TYPE_SM_COUNT, dev));
    CUipcMemHandle ipc;
    printf("ipc_get=%d\n", (int)cuIpcGetMemHandle(&ipc, 0));
    // after an unsupported call, a supported one still succeeds (no stale error)
    int n = 0;
    printf("after_count=%d\n", (int)cuDeviceGetCount(&n));
    void *fn = NULL;
    CUdriverProcAddressQueryResult q;
    CUresult r = cuGetProcAddress("cuMemAlloc", &fn, 2000, CU_GET_PROC_ADDRESS_DEFAULT, &q);
    printf("proc_legacy=%d\nproc_legacy_found=%d\n", (int)r, (int)q);
    if (r == CUDA_SUCCESS && fn) printf("legacy_call=%d\n", (int)((unary_fn)fn)(&fn, 256));
    r = cuGetProcAddress("cuGreenCtxCreate", &fn, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &q);
    printf("proc_green=%d\nproc_green_found=%d\n", (int)r, (int)q);
    return 0;
}
