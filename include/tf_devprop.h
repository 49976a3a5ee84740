/* tf_devprop.h - the deprecated CUdevprop view (cuDeviceGetProperties) of a device's attributes, one
 * field -> attribute table shared by the emulated device (emu_c/emu_device.c) and the stub
 * (stub_c/api_device.c), each reading attributes its own way. */
#ifndef TF_DEVPROP_H
#define TF_DEVPROP_H
#include <cuda.h>
#include <string.h>

/* attr(ctx, a): the value of attribute a of the device. */
static inline void tf_devprop_fill(CUdevprop *prop, int (*attr)(void *ctx, CUdevice_attribute a), void *ctx)
{
    memset(prop, 0, sizeof(*prop));
    prop->maxThreadsPerBlock = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
    prop->maxThreadsDim[0] = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X);
    prop->maxThreadsDim[1] = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y);
    prop->maxThreadsDim[2] = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z);
    prop->maxGridSize[0] = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
    prop->maxGridSize[1] = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y);
    prop->maxGridSize[2] = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z);
    prop->sharedMemPerBlock = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
    prop->totalConstantMemory = attr(ctx, CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY);
    prop->SIMDWidth = attr(ctx, CU_DEVICE_ATTRIBUTE_WARP_SIZE);
    prop->memPitch = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_PITCH);
    prop->regsPerBlock = attr(ctx, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK);
    prop->clockRate = attr(ctx, CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
    prop->textureAlign = attr(ctx, CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT);
}
#endif
