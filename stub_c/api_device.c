/* api_device.c - the client stub's hand-written entry points for device facts cached at cuInit (name, memory,
 * attributes, UUID), answered locally.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------------- devices */
const tf_dev_info *tf_dev_info_of(CUdevice dev)
{
    const tf_session_info *s = tf_session();
    return (dev >= 0 && dev < s->dev_count) ? &s->devs[dev] : NULL;
}

CUresult tfs_cuDeviceGet(CUdevice *device, int ordinal)
{
    NEED_INIT();
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    if (!tf_dev_info_of(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetCount(int *count)
{
    NEED_INIT();
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    *count = tf_session()->dev_count;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetName(char *name, int len, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    size_t n = strnlen(d->name, sizeof d->name);
    if (n >= (size_t)len) n = (size_t)len - 1;
    memcpy(name, d->name, n);
    name[n] = 0;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = (size_t)d->total_mem;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!pi || (int)attrib <= 0 || (int)attrib >= TF_MAX_ATTR || !d->attr_ok[attrib]) return CUDA_ERROR_INVALID_VALUE;
    *pi = d->attr[attrib];
    return CUDA_SUCCESS;
}

/* The deprecated views of the cached attributes (NVIDIA's cuda_drvapi_dynlink.c samples still call them). */
CUresult tfs_cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    NEED_INIT();
    if (!tf_dev_info_of(dev)) return CUDA_ERROR_INVALID_DEVICE;
    if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = tfs_cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    if (rc == CUDA_SUCCESS) rc = tfs_cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    return rc;
}

CUresult tfs_cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
    NEED_INIT();
    if (!tf_dev_info_of(dev)) return CUDA_ERROR_INVALID_DEVICE;
    if (!prop) return CUDA_ERROR_INVALID_VALUE;
    static const struct { size_t off; CUdevice_attribute a; } map[] = {
        {offsetof(CUdevprop, maxThreadsPerBlock), CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK},
        {offsetof(CUdevprop, maxThreadsDim[0]), CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X},
        {offsetof(CUdevprop, maxThreadsDim[1]), CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y},
        {offsetof(CUdevprop, maxThreadsDim[2]), CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z},
        {offsetof(CUdevprop, maxGridSize[0]), CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X},
        {offsetof(CUdevprop, maxGridSize[1]), CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y},
        {offsetof(CUdevprop, maxGridSize[2]), CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z},
        {offsetof(CUdevprop, sharedMemPerBlock), CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK},
        {offsetof(CUdevprop, totalConstantMemory), CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY},
        {offsetof(CUdevprop, SIMDWidth), CU_DEVICE_ATTRIBUTE_WARP_SIZE},
        {offsetof(CUdevprop, memPitch), CU_DEVICE_ATTRIBUTE_MAX_PITCH},
        {offsetof(CUdevprop, regsPerBlock), CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK},
        {offsetof(CUdevprop, clockRate), CU_DEVICE_ATTRIBUTE_CLOCK_RATE},
        {offsetof(CUdevprop, textureAlign), CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT},
    };
    CUdevprop p;
    memset(&p, 0, sizeof(p));
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        CUresult rc = tfs_cuDeviceGetAttribute((int *)((char *)&p + map[i].off), map[i].a, dev);
        if (rc != CUDA_SUCCESS) return rc;
    }
    *prop = p;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    NEED_INIT();
    const tf_dev_info *d = tf_dev_info_of(dev);
    if (!d) return CUDA_ERROR_INVALID_DEVICE;
    if (!uuid) return CUDA_ERROR_INVALID_VALUE;
    *uuid = d->uuid;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return tfs_cuDeviceGetUuid(uuid, dev); }
