// device_legacy_props.cu - the deprecated device queries cuDeviceComputeCapability and cuDeviceGetProperties
// (cuda-samples' matrixMulDynlinkJIT and old driver-API programs call them) against cuDeviceGetAttribute.
// Prints "key=value" lines: the CUresults, then 1/0 for each field matching its attribute.
#include <cuda.h>
#include <stdio.h>

static int attr(CUdevice dev, CUdevice_attribute a)
{
    int v = -1;
    return cuDeviceGetAttribute(&v, a, dev) == CUDA_SUCCESS ? v : -1;
}

int main()
{
    CUdevice dev;
    if (cuInit(0) || cuDeviceGet(&dev, 0)) { printf("FAIL init\n"); return 1; }
    int major = -1, minor = -1;
    printf("cc_rc=%d\n", (int)cuDeviceComputeCapability(&major, &minor, dev));
    printf("cc_match=%d\n", major == attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) &&
                                minor == attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR) && major > 0);
    printf("cc_bad_device=%d\n", (int)cuDeviceComputeCapability(&major, &minor, 99));
    printf("cc_null=%d\n", (int)cuDeviceComputeCapability(NULL, &minor, dev));
    CUdevprop p;
    printf("props_rc=%d\n", (int)cuDeviceGetProperties(&p, dev));
    printf("props_match=%d\n",
           p.maxThreadsPerBlock == attr(dev, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK) &&
               p.maxThreadsDim[0] == attr(dev, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X) &&
               p.maxGridSize[0] == attr(dev, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X) &&
               p.sharedMemPerBlock == attr(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK) &&
               p.SIMDWidth == attr(dev, CU_DEVICE_ATTRIBUTE_WARP_SIZE) && p.SIMDWidth == 32 &&
               p.regsPerBlock == attr(dev, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK) &&
               p.clockRate == attr(dev, CU_DEVICE_ATTRIBUTE_CLOCK_RATE) &&
               p.textureAlign == attr(dev, CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT));
    printf("props_null=%d\n", (int)cuDeviceGetProperties(NULL, dev));
    return 0;
}
