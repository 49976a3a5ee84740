/* emu_device.c - device queries of the one emulated device (ordinal 0): name, UUID, PCI id, memory
 * size (TF_EMU_VRAM_MIB, default 16384) and the attribute table. Values follow an A100-class part
 * (compute capability 8.0, documented limits in the CUDA programming guide's CC 8.0 table), so
 * cudart's cudaGetDeviceProperties and occupancy maths see a plausible GPU.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "emu_internal.h"

/* attribute, value - every attribute not listed reads 0 (unsupported feature). */
#define EMU_DEVICE_ATTRS(X)                                                                        \
    X(MAX_THREADS_PER_BLOCK, 1024)                                                                 \
    X(MAX_BLOCK_DIM_X, 1024)                                                                       \
    X(MAX_BLOCK_DIM_Y, 1024)                                                                       \
    X(MAX_BLOCK_DIM_Z, 64)                                                                         \
    X(MAX_GRID_DIM_X, 2147483647)                                                                  \
    X(MAX_GRID_DIM_Y, 65535)                                                                       \
    X(MAX_GRID_DIM_Z, 65535)                                                                       \
    X(MAX_SHARED_MEMORY_PER_BLOCK, EMU_MAX_SHARED_PER_BLOCK)                                       \
    X(TOTAL_CONSTANT_MEMORY, 65536)                                                                \
    X(WARP_SIZE, 32)                                                                               \
    X(MAX_PITCH, 2147483647)                                                                       \
    X(MAX_REGISTERS_PER_BLOCK, 65536)                                                              \
    X(CLOCK_RATE, 1410000)                                                                         \
    X(TEXTURE_ALIGNMENT, 512)                                                                      \
    X(GPU_OVERLAP, 1)                                                                              \
    X(MULTIPROCESSOR_COUNT, EMU_SM_COUNT)                                                          \
    X(CAN_MAP_HOST_MEMORY, 1)                                                                      \
    X(MAXIMUM_TEXTURE1D_WIDTH, 131072)                                                             \
    X(MAXIMUM_TEXTURE2D_WIDTH, 131072)                                                             \
    X(MAXIMUM_TEXTURE2D_HEIGHT, 65536)                                                             \
    X(MAXIMUM_TEXTURE3D_WIDTH, 16384)                                                              \
    X(MAXIMUM_TEXTURE3D_HEIGHT, 16384)                                                             \
    X(MAXIMUM_TEXTURE3D_DEPTH, 16384)                                                              \
    X(SURFACE_ALIGNMENT, 512)                                                                      \
    X(CONCURRENT_KERNELS, 1)                                                                       \
    X(MEMORY_CLOCK_RATE, 1215000)                                                                  \
    X(GLOBAL_MEMORY_BUS_WIDTH, 5120)                                                               \
    X(L2_CACHE_SIZE, 41943040)                                                                     \
    X(MAX_THREADS_PER_MULTIPROCESSOR, 2048)                                                        \
    X(ASYNC_ENGINE_COUNT, 2)                                                                       \
    X(UNIFIED_ADDRESSING, 1)                                                                       \
    X(PCI_BUS_ID, 1)                                                                               \
    X(TEXTURE_PITCH_ALIGNMENT, 32)                                                                 \
    X(COMPUTE_CAPABILITY_MAJOR, EMU_CC_MAJOR)                                                      \
    X(COMPUTE_CAPABILITY_MINOR, EMU_CC_MINOR)                                                      \
    X(STREAM_PRIORITIES_SUPPORTED, 1)                                                              \
    X(GLOBAL_L1_CACHE_SUPPORTED, 1)                                                                \
    X(LOCAL_L1_CACHE_SUPPORTED, 1)                                                                 \
    X(MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 167936)                                                \
    X(MAX_REGISTERS_PER_MULTIPROCESSOR, 65536)                                                     \
    X(MANAGED_MEMORY, 1)                                                                           \
    X(SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO, 2)                                                    \
    X(CONCURRENT_MANAGED_ACCESS, 1)                                                                \
    X(COMPUTE_PREEMPTION_SUPPORTED, 1)                                                             \
    X(CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM, 1)                                                  \
    X(COOPERATIVE_LAUNCH, 1)                                                                       \
    X(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, EMU_MAX_SHARED_PER_BLOCK_OPTIN)                           \
    X(HOST_REGISTER_SUPPORTED, 1)                                                                  \
    X(MAX_BLOCKS_PER_MULTIPROCESSOR, 32)                                                           \
    X(MAX_PERSISTING_L2_CACHE_SIZE, 31457280)                                                      \
    X(MAX_ACCESS_POLICY_WINDOW_SIZE, 134213632)                                                    \
    X(RESERVED_SHARED_MEMORY_PER_BLOCK, 1024)                                                      \
    X(MEMORY_POOLS_SUPPORTED, 1)                                                                   \
    X(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 1)                                                      \
    X(UNIFIED_FUNCTION_POINTERS, 1)                                                                \
    X(MEM_SYNC_DOMAIN_COUNT, 1)                                                                    \
    X(NUMA_ID, -1)                                                                                 \
    X(HOST_NUMA_ID, -1)

static const int k_attr_value[CU_DEVICE_ATTRIBUTE_MAX] = {
#define X(name, value) [CU_DEVICE_ATTRIBUTE_##name] = (value),
    EMU_DEVICE_ATTRS(X)
#undef X
};

EMU_API CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetCount(int *count)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", EMU_DEVICE_NAME);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = g_emu.vram_total;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!pi || (int)attrib <= 0 || attrib >= CU_DEVICE_ATTRIBUTE_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    *pi = k_attr_value[attrib];
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!major || !minor)
        return CUDA_ERROR_INVALID_VALUE;
    *major = EMU_CC_MAJOR;
    *minor = EMU_CC_MINOR;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    static const char k_uuid[16] = {'T', 'F', '-', 'E', 'M', 'U', '-', 'G', 'P', 'U', 0, 0, 0, 0, 0, 1};
    memcpy(uuid->bytes, k_uuid, 16);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return cuDeviceGetUuid(uuid, dev); }

#define EMU_PCI_BUS_ID "00000000:01:00.0"

EMU_API CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!pciBusId || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(pciBusId, (size_t)len, "%s", EMU_PCI_BUS_ID);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!dev || !pciBusId)
        return CUDA_ERROR_INVALID_VALUE;
    /* accept the short and the long form ("0000:01:00.0", "00000000:01:00.0"), any case */
    const char *p = strchr(pciBusId, ':');
    if (!p || strcasecmp(p, ":01:00.0") != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *dev = 0;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetP2PAttribute(int *value, CUdevice_P2PAttribute attrib, CUdevice srcDevice,
                                         CUdevice dstDevice)
{
    (void)attrib;
    CUresult rc = emu_check_device(srcDevice);
    if (rc)
        return rc;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    if (dstDevice != 0 || srcDevice == dstDevice)
        return CUDA_ERROR_INVALID_DEVICE;
    *value = 0;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!canAccessPeer)
        return CUDA_ERROR_INVALID_VALUE;
    if (peerDev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *canAccessPeer = 0;
    return CUDA_SUCCESS;
}
