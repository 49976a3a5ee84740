// legacy_device_props.cu - the deprecated device queries NVIDIA's cuda_drvapi_dynlink.c samples still call
// (cuDeviceComputeCapability, cuDeviceGetProperties) against cuDeviceGetAttribute, and their error answers.
// For tests/stub/test_api_surface.py (directly on the emulated device and through the stub).
// Prints "key=value" lines; exits 0 unless setup fails.
#include <cuda.h>
#include <stdio.h>

static int attr(CUdevice_attribute a, CUdevice dev)
{
    int v = -1;
    return cuDeviceGetAttribute(&v, a, dev) == CUDA_SUCCESS ? v : -1;
}

int main()
{
    if (cuInit(0) != CUDA_SUCCESS) { printf("FAIL init\n"); return 1; }
    CUdevice dev;
    if (cuDeviceGet(&dev, 0)) { printf("FAIL device\n"); return 1; }
    int major = -1, minor = -1;
    printf("cc_rc=%d\n", (int)cuDeviceComputeCapability(&major, &minor, dev));
    printf("cc_match=%d\n", major == attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev) &&
                            minor == attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev) && major > 0);
    printf("cc_null=%d\n", (int)cuDeviceComputeCapability(NULL, &minor, dev));
    printf("cc_bad_dev=%d\n", (int)cuDeviceComputeCapability(&major, &minor, 99));
    CUdevprop p;
    printf("prop_rc=%d\n", (int)cuDeviceGetProperties(&p, dev));
    printf("prop_match=%d\n",
           p.maxThreadsPerBlock == attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, dev) &&
           p.maxThreadsDim[0] == attr(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, dev) &&
           p.maxThreadsDim[2] == attr(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, dev) &&
           p.maxGridSize[0] == attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, dev) &&
           p.maxGridSize[1] == attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, dev) &&
           p.sharedMemPerBlock == attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, dev) &&
           p.totalConstantMemory == attr(CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, dev) &&
           p.SIMDWidth == 32 && p.SIMDWidth == attr(CU_DEVICE_ATTRIBUTE_WARP_SIZE, dev) &&
           p.memPitch == attr(CU_DEVICE_ATTRIBUTE_MAX_PITCH, dev) &&
           p.regsPerBlock == attr(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, dev) &&
           p.clockRate == attr(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, dev) &&
           p.textureAlign == attr(CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT, dev));
    printf("prop_null=%d\n", (int)cuDeviceGetProperties(NULL, dev));
    printf("prop_bad_dev=%d\n", (int)cuDeviceGetProperties(&p, 99));
    return 0;
}
