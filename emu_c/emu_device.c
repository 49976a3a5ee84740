/* emu_device.c - device queries of the emulated devices (TF_EMU_DEVICES identical parts, ordinals 0..n-1,
 * default one): name, UUID and PCI id (distinct per device), memory size (TF_EMU_VRAM_MIB each, default 16384),
 * peer access between distinct devices (every device's memory is host memory), the compute capability (TF_EMU_CC, default 12.1) and the
 * attribute table. The capability decides which PTX the device runs (fatbin.c picks the entry with
 * the highest target <= it; emu_module.c refuses PTX above it) and the limits it reports are those of
 * a real part of that capability (CUDA programming guide, "Technical Specifications per Compute
 * Capability", and the part's deviceQuery), so CUB/Thrust/PyTorch tuning and cudart's occupancy
 * maths see a coherent GPU. 13.0 is the exception: no part, a capability above every SASS target of
 * the CUDA 13 libraries, so that cuBLAS runs its PTX (forward-compatibility) kernels.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tf_devprop.h"
#include "emu_internal.h"

/* attribute, value - the same on every capability; the ones that differ come from emu_devfacts
 * (device_attr below); every attribute not listed reads 0 (unsupported feature). Generic compression is
 * reported (as data-centre parts do): cuMemCreate keeps CU_MEM_ALLOCATION_COMP_GENERIC in the handle's
 * properties, and the memory is simply not compressed, which no program can observe. */
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
    X(TEXTURE_ALIGNMENT, 512)                                                                      \
    X(GPU_OVERLAP, 1)                                                                              \
    X(CAN_MAP_HOST_MEMORY, 1)                                                                      \
    X(MAXIMUM_TEXTURE1D_WIDTH, 131072)                                                             \
    X(MAXIMUM_TEXTURE2D_WIDTH, 131072)                                                             \
    X(MAXIMUM_TEXTURE2D_HEIGHT, 65536)                                                             \
    X(MAXIMUM_TEXTURE3D_WIDTH, 16384)                                                              \
    X(MAXIMUM_TEXTURE3D_HEIGHT, 16384)                                                             \
    X(MAXIMUM_TEXTURE3D_DEPTH, 16384)                                                              \
    X(SURFACE_ALIGNMENT, 512)                                                                      \
    X(CONCURRENT_KERNELS, 1)                                                                       \
    X(ASYNC_ENGINE_COUNT, 2)                                                                       \
    X(UNIFIED_ADDRESSING, 1)                                                                       \
    X(PCI_BUS_ID, 1)                                                                               \
    X(TEXTURE_PITCH_ALIGNMENT, 32)                                                                 \
    X(STREAM_PRIORITIES_SUPPORTED, 1)                                                              \
    X(GLOBAL_L1_CACHE_SUPPORTED, 1)                                                                \
    X(LOCAL_L1_CACHE_SUPPORTED, 1)                                                                 \
    X(MAX_REGISTERS_PER_MULTIPROCESSOR, 65536)                                                     \
    X(MANAGED_MEMORY, 1)                                                                           \
    X(SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO, 2)                                                    \
    X(CONCURRENT_MANAGED_ACCESS, 1)                                                                \
    X(COMPUTE_PREEMPTION_SUPPORTED, 1)                                                             \
    X(CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM, 1)                                                  \
    X(COOPERATIVE_LAUNCH, 1)                                                                       \
    X(HOST_REGISTER_SUPPORTED, 1)                                                                  \
    X(MAX_ACCESS_POLICY_WINDOW_SIZE, 134213632)                                                    \
    X(RESERVED_SHARED_MEMORY_PER_BLOCK, 1024)                                                      \
    X(MEMORY_POOLS_SUPPORTED, 1)                                                                   \
    X(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 1)                                                      \
    X(GENERIC_COMPRESSION_SUPPORTED, 1)                                                            \
    X(UNIFIED_FUNCTION_POINTERS, 1)                                                                \
    X(MEM_SYNC_DOMAIN_COUNT, 1)                                                                    \
    X(CAN_USE_STREAM_MEM_OPS_V1, 1)                                                                \
    X(CAN_USE_64_BIT_STREAM_MEM_OPS_V1, 1)                                                         \
    X(CAN_USE_STREAM_WAIT_VALUE_NOR_V1, 1)                                                         \
    X(CAN_USE_64_BIT_STREAM_MEM_OPS, 1)                                                            \
    X(CAN_USE_STREAM_WAIT_VALUE_NOR, 1)                                                            \
    X(CAN_FLUSH_REMOTE_WRITES, 1)                                                                  \
    X(HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, 1)                                              \
    X(MEMPOOL_SUPPORTED_HANDLE_TYPES, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)                    \
    X(NUMA_ID, -1)                                                                                 \
    X(HOST_NUMA_ID, -1)

static const int k_attr_value[CU_DEVICE_ATTRIBUTE_MAX] = {
#define X(name, value) [CU_DEVICE_ATTRIBUTE_##name] = (value),
    EMU_DEVICE_ATTRS(X)
#undef X
};

/* One row per capability TF_EMU_CC accepts; figures of the named part. */
static const emu_devfacts k_facts[] = {
    /* cc      part                          SMs thr/SM blk/SM smem/SM  optin   clock    memclk  bus   L2          persisting L2 */
    {7, 5, "Tesla T4 (TU104)",               40, 1024, 16, 65536,  65536,  1590000, 5001000, 256,  4194304,   0},
    {8, 0, "A100-SXM4 (GA100)",              108, 2048, 32, 167936, 166912, 1410000, 1215000, 5120, 41943040,  31457280},
    {8, 6, "RTX A6000 (GA102)",              84, 1536, 16, 102400, 101376, 1800000, 8001000, 384,  6291456,   4718592},
    {8, 9, "L40S (AD102)",                   142, 1536, 24, 102400, 101376, 2520000, 9001000, 384,  100663296, 75497472},
    {9, 0, "H100-SXM5 (GH100)",              132, 2048, 32, 233472, 232448, 1980000, 2619000, 5120, 52428800,  39321600},
    {10, 0, "B200 (GB100)",                  148, 2048, 32, 233472, 232448, 1965000, 3996000, 8192, 132120576, 99090432},
    {12, 0, "RTX PRO 6000 Blackwell (GB202)", 188, 1536, 32, 102400, 101376, 2617000, 14001000, 512, 134217728, 100663296},
    {12, 1, "GB10 (DGX Spark)",              48, 1536, 32, 102400, 101376, 2418000, 4266000, 256,  25165824,  18874368},
    /* No 13.x part exists: a GPU newer than every SASS target NVIDIA's CUDA 13 libraries ship (up to sm_121),
     * so they take their PTX forward-compatibility kernels (cuBLAS's sgemm_largek_lds64, *_forwardCompat_*)
     * instead of an sm_120 cubin the emulated device cannot run. Figures: the 12.0 part's. */
    {13, 0, "next-generation stand-in (12.0 figures)", 188, 1536, 32, 102400, 101376, 2617000, 14001000, 512, 134217728, 100663296},
};
#define EMU_DEFAULT_CC 121

static const emu_devfacts *g_facts;
static pthread_once_t g_facts_once = PTHREAD_ONCE_INIT;

/* "9.0", "90", "sm_90", "12.1", "121" -> major*10+minor; -1 if not a capability. */
static int parse_cc(const char *v)
{
    if (!strncmp(v, "sm_", 3) || !strncmp(v, "SM_", 3))
        v += 3;
    char *end;
    long a = strtol(v, &end, 10);
    if (end == v || a < 0)
        return -1;
    if (*end == '.') {
        const char *m = end + 1;
        long b = strtol(m, &end, 10);
        if (end == m || *end || b < 0 || b > 9 || a > 99)
            return -1;
        return (int)(a * 10 + b);
    }
    return *end || a < 10 || a > 999 ? -1 : (int)a;
}

int emu_cc_parse(const char *v)
{
    int cc = parse_cc(v);
    for (size_t i = 0; cc > 0 && i < sizeof(k_facts) / sizeof(k_facts[0]); i++)
        if (k_facts[i].cc_major * 10 + k_facts[i].cc_minor == cc)
            return cc;
    return -1;
}

static char g_cc_list[192];
static void cc_list_fill(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof(k_facts) / sizeof(k_facts[0]) && n < sizeof(g_cc_list); i++)
        n += (size_t)snprintf(g_cc_list + n, sizeof(g_cc_list) - n, "%s%d.%d", i ? ", " : "a compute capability: ",
                              k_facts[i].cc_major, k_facts[i].cc_minor);
    if (n < sizeof(g_cc_list))
        snprintf(g_cc_list + n, sizeof(g_cc_list) - n, " (also written 90 or sm_90)");
}

const char *emu_cc_accepted(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cc_list_fill);
    return g_cc_list;
}

/* TF_EMU_CC was checked by cuInit (emu_init.c: a value emu_cc_parse refuses fails it), so an unparsable one
 * never reaches a program's device queries; before cuInit (or after it failed) the default answers. */
static void facts_init(void)
{
    int want = EMU_DEFAULT_CC;
    const char *v = getenv("TF_EMU_CC");
    if (v && *v && emu_cc_parse(v) > 0)
        want = emu_cc_parse(v);
    for (size_t i = 0; i < sizeof(k_facts) / sizeof(k_facts[0]); i++)
        if (k_facts[i].cc_major * 10 + k_facts[i].cc_minor == want)
            g_facts = &k_facts[i];
}

const emu_devfacts *emu_dev(void)
{
    pthread_once(&g_facts_once, facts_init);
    return g_facts;
}

static int device_attr(CUdevice_attribute attrib, CUdevice dev)
{
    const emu_devfacts *d = emu_dev();
    int cc = d->cc_major * 10 + d->cc_minor;
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: return d->cc_major;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: return d->cc_minor;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: return d->sm_count;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: return d->max_threads_per_sm;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: return d->max_blocks_per_sm;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: return d->shared_per_sm;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: return d->shared_per_block_optin;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: return d->clock_khz;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: return d->mem_clock_khz;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: return d->bus_width_bits;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: return d->l2_bytes;
    case CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE: return d->persisting_l2_bytes;
    case CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE: return cc >= 80 ? 134213632 : 0;
    case CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK: return cc >= 80 ? 1024 : 0;
    case CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO:
        return cc == 80 || cc == 90 || cc == 100 ? 2 : cc == 75 ? 32 : 64;
    case CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH:
    case CU_DEVICE_ATTRIBUTE_DEFERRED_MAPPING_CUDA_ARRAY_SUPPORTED:
        return cc >= 90;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
        return dev + 1; /* as cuDeviceGetPCIBusId */
    case CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED:
        return 1; /* between processes of one host (emu_ipc.c) */
    default: return k_attr_value[attrib];
    }
}

EMU_API CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal < 0 || ordinal >= g_emu.ndev)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetCount(int *count)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = g_emu.ndev;
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
    *pi = device_attr(attrib, dev);
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

static int devprop_attr(void *ctx, CUdevice_attribute a) { return device_attr(a, *(const CUdevice *)ctx); }

/* The deprecated CUdevprop view of the same facts. */
EMU_API CUresult cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!prop)
        return CUDA_ERROR_INVALID_VALUE;
    tf_devprop_fill(prop, devprop_attr, &dev);
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
    uuid->bytes[15] = (char)(1 + dev); /* device 0's is the one-device UUID; each device its own */
    return CUDA_SUCCESS;
}

EMU_API CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return cuDeviceGetUuid(uuid, dev); }

/* Device d sits on PCI bus d + 1 (device 0: 00000000:01:00.0, as with one device). */

EMU_API CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!pciBusId || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(pciBusId, (size_t)len, "00000000:%02x:00.0", (unsigned)(dev + 1));
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
    for (int d = 0; p && d < g_emu.ndev; d++) {
        char want[16];
        snprintf(want, sizeof(want), ":%02x:00.0", (unsigned)(d + 1));
        if (strcasecmp(p, want) == 0) {
            *dev = d;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_INVALID_DEVICE;
}

/* Between two distinct devices (CUDA: cuDeviceGetP2PAttribute): access supported, native atomics
 * supported (kernels' atomics are the host's), CUDA arrays accessible, and the smallest performance rank
 * (0, as every pair is the same distance apart); a device with itself is CUDA_ERROR_INVALID_DEVICE. */
EMU_API CUresult cuDeviceGetP2PAttribute(int *value, CUdevice_P2PAttribute attrib, CUdevice srcDevice,
                                         CUdevice dstDevice)
{
    CUresult rc = emu_check_device(srcDevice);
    if (rc)
        return rc;
    if ((rc = emu_check_device(dstDevice)) != CUDA_SUCCESS)
        return rc;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    if (srcDevice == dstDevice)
        return CUDA_ERROR_INVALID_DEVICE;
    switch (attrib) {
    case CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK: *value = 0; break;
    case CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED:
    case CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED:
    case CU_DEVICE_P2P_ATTRIBUTE_CUDA_ARRAY_ACCESS_SUPPORTED: *value = 1; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

/* 1 between distinct devices, 0 for a device with itself (CUDA: "a device cannot be its own peer"). */
EMU_API CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!canAccessPeer)
        return CUDA_ERROR_INVALID_VALUE;
    if ((rc = emu_check_device(peerDev)) != CUDA_SUCCESS)
        return rc;
    *canAccessPeer = dev != peerDev;
    return CUDA_SUCCESS;
}
