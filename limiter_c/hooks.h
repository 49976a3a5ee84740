/* hooks.h - THE list of every symbol the limiter intercepts, grouped by area (as HAMi-core's
 * libcuda_hook.h). One row per exported symbol; hooks_resolve.c builds the lookup table (for dlsym and
 * cuGetProcAddress) and the real-function slots from it, hooks_*.c define the wrappers.
 *
 * X(area, symbol, api_name, min_version, ptds, lib)
 *   symbol      the exported name we define and the real library's symbol we forward to
 *   api_name    the name cudart asks cuGetProcAddress for
 *   min_version lowest cudaVersion at which api_name means this symbol's signature (cuda.h's _v2 etc.)
 *   ptds        1 = the per-thread-default-stream variant (cuGetProcAddress flag 2)
 *   lib         TFL_LIB_CUDA (libcuda.so.1) or TFL_LIB_NVML (libnvidia-ml.so.1)
 * Not hooked on purpose: cuMemHostAlloc / cuMemAllocHost (pinned HOST memory, DEVICEMAP only maps it
 * into the device's address space: no device memory is used), cuMemAddressReserve / cuMemMap (VA only,
 * the physical memory is charged at cuMemCreate), legacy 32-bit entry points (cuMemAlloc v1...).
 * Exported without hooking anything: tfLimiterChargeHostMap / tfLimiterRefundHostMap, the charge the GPU
 * worker process takes for host memory it maps for its remote client (include/tf_limiter_hostmap.h). */
#ifndef TFL_HOOKS_H
#define TFL_HOOKS_H
#include <cuda.h>

#define TFL_LIB_CUDA 0
#define TFL_LIB_NVML 1

#define TFL_HOOKS(X) \
    /* ---- resolution: how cudart finds everything else (v2 first: a library exporting one function \
     *      under both names gets the 5-argument wrapper) ------------------------------------------ */ \
    X(RESOLVE, cuGetProcAddress_v2,              "cuGetProcAddress",            11030, 0, TFL_LIB_CUDA) \
    X(RESOLVE, cuGetProcAddress,                 "cuGetProcAddress",            2147483647, 0, TFL_LIB_CUDA) \
    /* ---- init: refused while the limiter's own configuration is unusable (fail closed) -------- */ \
    X(INIT,    cuInit,                           "cuInit",                      2000,  0, TFL_LIB_CUDA) \
    /* ---- memory: allocations charged before the driver sees them ------------------------------ */ \
    X(MEMORY,  cuMemAlloc_v2,                    "cuMemAlloc",                  3020,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuMemAllocPitch_v2,               "cuMemAllocPitch",             3020,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuMemAllocManaged,                "cuMemAllocManaged",           6000,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuMemAllocAsync,                  "cuMemAllocAsync",             11020, 0, TFL_LIB_CUDA) \
    X(MEMORY,  cuMemAllocAsync_ptsz,             "cuMemAllocAsync",             11020, 1, TFL_LIB_CUDA) \
    X(MEMORY,  cuMemAllocFromPoolAsync,          "cuMemAllocFromPoolAsync",     11020, 0, TFL_LIB_CUDA) \
    X(MEMORY,  cuMemAllocFromPoolAsync_ptsz,     "cuMemAllocFromPoolAsync",     11020, 1, TFL_LIB_CUDA) \
    X(MEMORY,  cuMemCreate,                      "cuMemCreate",                 10020, 0, TFL_LIB_CUDA) \
    X(MEMORY,  cuArrayCreate_v2,                 "cuArrayCreate",               3020,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuArray3DCreate_v2,               "cuArray3DCreate",             3020,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuMipmappedArrayCreate,           "cuMipmappedArrayCreate",      5000,  0, TFL_LIB_CUDA) \
    /* ---- memory the driver allocates on its own: module globals, the kernels' malloc() heap ----- */ \
    X(MEMORY,  cuModuleLoad,                     "cuModuleLoad",                2000,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuModuleLoadData,                 "cuModuleLoadData",            2000,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuModuleLoadDataEx,               "cuModuleLoadDataEx",          2010,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuModuleLoadFatBinary,            "cuModuleLoadFatBinary",       2000,  0, TFL_LIB_CUDA) \
    X(MEMORY,  cuLibraryLoadData,                "cuLibraryLoadData",           12000, 0, TFL_LIB_CUDA) \
    X(MEMORY,  cuLibraryLoadFromFile,            "cuLibraryLoadFromFile",       12000, 0, TFL_LIB_CUDA) \
    X(MEMORY,  cuCtxSetLimit,                    "cuCtxSetLimit",               3010,  0, TFL_LIB_CUDA) \
    /* ---- memory: frees refund exactly what was charged ---------------------------------------- */ \
    X(FREE,    cuMemFree_v2,                     "cuMemFree",                   3020,  0, TFL_LIB_CUDA) \
    X(FREE,    cuMemFreeAsync,                   "cuMemFreeAsync",              11020, 0, TFL_LIB_CUDA) \
    X(FREE,    cuMemFreeAsync_ptsz,              "cuMemFreeAsync",              11020, 1, TFL_LIB_CUDA) \
    X(FREE,    cuMemRelease,                     "cuMemRelease",                10020, 0, TFL_LIB_CUDA) \
    X(FREE,    cuArrayDestroy,                   "cuArrayDestroy",              2000,  0, TFL_LIB_CUDA) \
    X(FREE,    cuMipmappedArrayDestroy,          "cuMipmappedArrayDestroy",     5000,  0, TFL_LIB_CUDA) \
    X(FREE,    cuModuleUnload,                   "cuModuleUnload",              2000,  0, TFL_LIB_CUDA) \
    X(FREE,    cuLibraryUnload,                  "cuLibraryUnload",             12000, 0, TFL_LIB_CUDA) \
    /* ---- memory info: report the cap -------------------------------------------------------- */ \
    X(MEMINFO, cuMemGetInfo_v2,                  "cuMemGetInfo",                3020,  0, TFL_LIB_CUDA) \
    X(MEMINFO, cuDeviceTotalMem_v2,              "cuDeviceTotalMem",            3020,  0, TFL_LIB_CUDA) \
    X(MEMINFO, nvmlDeviceGetMemoryInfo,          "nvmlDeviceGetMemoryInfo",     0,     0, TFL_LIB_NVML) \
    X(MEMINFO, nvmlDeviceGetMemoryInfo_v2,       "nvmlDeviceGetMemoryInfo_v2",  0,     0, TFL_LIB_NVML) \
    /* ---- contexts: destroying one frees its memory in the driver, so its charges go too ------- */ \
    X(CONTEXT, cuCtxDestroy_v2,                  "cuCtxDestroy",                4000,  0, TFL_LIB_CUDA) \
    X(CONTEXT, cuDevicePrimaryCtxRelease_v2,     "cuDevicePrimaryCtxRelease",   11000, 0, TFL_LIB_CUDA) \
    X(CONTEXT, cuDevicePrimaryCtxReset_v2,       "cuDevicePrimaryCtxReset",     11000, 0, TFL_LIB_CUDA) \
    /* ---- launches: take tokens (wait, never fail) -------------------------------------------- */ \
    X(LAUNCH,  cuLaunchKernel,                   "cuLaunchKernel",              4000,  0, TFL_LIB_CUDA) \
    X(LAUNCH,  cuLaunchKernel_ptsz,              "cuLaunchKernel",              4000,  1, TFL_LIB_CUDA) \
    X(LAUNCH,  cuLaunchKernelEx,                 "cuLaunchKernelEx",            11060, 0, TFL_LIB_CUDA) \
    X(LAUNCH,  cuLaunchKernelEx_ptsz,            "cuLaunchKernelEx",            11060, 1, TFL_LIB_CUDA) \
    X(LAUNCH,  cuLaunchCooperativeKernel,        "cuLaunchCooperativeKernel",   9000,  0, TFL_LIB_CUDA) \
    X(LAUNCH,  cuLaunchCooperativeKernel_ptsz,   "cuLaunchCooperativeKernel",   9000,  1, TFL_LIB_CUDA) \
    X(LAUNCH,  cuGraphLaunch,                    "cuGraphLaunch",               10000, 0, TFL_LIB_CUDA) \
    X(LAUNCH,  cuGraphLaunch_ptsz,               "cuGraphLaunch",               10000, 1, TFL_LIB_CUDA) \
    /* ---- graphs: a launch costs the sum of its kernel nodes, known at instantiation ---------- */ \
    X(GRAPH,   cuGraphInstantiateWithFlags,      "cuGraphInstantiate",          12000, 0, TFL_LIB_CUDA) \
    X(GRAPH,   cuGraphInstantiateWithParams,     "cuGraphInstantiateWithParams", 12000, 0, TFL_LIB_CUDA) \
    X(GRAPH,   cuGraphInstantiateWithParams_ptsz, "cuGraphInstantiateWithParams", 12000, 1, TFL_LIB_CUDA) \
    X(GRAPH,   cuGraphExecUpdate_v2,             "cuGraphExecUpdate",           12000, 0, TFL_LIB_CUDA) \
    X(GRAPH,   cuGraphExecDestroy,               "cuGraphExecDestroy",          10000, 0, TFL_LIB_CUDA) \
    /* ---- graph memory: an alloc node is charged when it is made, refunded when its memory is gone -- */ \
    X(MEMORY,  cuGraphAddMemAllocNode,           "cuGraphAddMemAllocNode",      11040, 0, TFL_LIB_CUDA) \
    X(GRAPH,   cuGraphDestroy,                   "cuGraphDestroy",              10000, 0, TFL_LIB_CUDA)

enum tfl_hook_id {
#define TFL_HOOK_ENUM(area, sym, api, ver, ptds, lib) TFL_HOOK_##sym,
    TFL_HOOKS(TFL_HOOK_ENUM)
#undef TFL_HOOK_ENUM
    TFL_HOOK_COUNT
};

/* Declarations cuda.h lacks (ptsz variants share the default variant's type; the v1 cuGetProcAddress
 * is hidden by cuda.h's #define) and NVML's, so that every wrapper has a type to check against. */
#undef cuGetProcAddress
CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags);
__typeof__(cuMemAllocAsync) cuMemAllocAsync_ptsz;
__typeof__(cuMemAllocFromPoolAsync) cuMemAllocFromPoolAsync_ptsz;
__typeof__(cuMemFreeAsync) cuMemFreeAsync_ptsz;
__typeof__(cuLaunchKernel) cuLaunchKernel_ptsz;
__typeof__(cuLaunchKernelEx) cuLaunchKernelEx_ptsz;
__typeof__(cuLaunchCooperativeKernel) cuLaunchCooperativeKernel_ptsz;
__typeof__(cuGraphLaunch) cuGraphLaunch_ptsz;
__typeof__(cuGraphInstantiateWithParams) cuGraphInstantiateWithParams_ptsz;

typedef struct { unsigned long long total, free, used; } tfl_nvmlMemory_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } tfl_nvmlMemory_v2_t;
typedef int tfl_nvmlReturn_t;
typedef void *tfl_nvmlDevice_t;
tfl_nvmlReturn_t nvmlDeviceGetMemoryInfo(tfl_nvmlDevice_t dev, tfl_nvmlMemory_t *mem);
tfl_nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(tfl_nvmlDevice_t dev, tfl_nvmlMemory_v2_t *mem);

/* The real function behind a hook, resolved on first use; NULL if the library lacks it. */
void *tfl_real(enum tfl_hook_id id);
/* hooks_mem.c: refunds graph allocations whose memory is gone (after a graph or executable graph dies). */
void tfl_graph_mem_sweep(void);
/* Symbol of libcuda.so.1 / libnvidia-ml.so.1 that is not hooked (cuGraphGetNodes, tfEmuGetBusyTime...). */
void *tfl_lib_sym(int lib, const char *name);

#define TFL_EXPORT __attribute__((visibility("default")))
/* `real` = the real function, typed like the wrapper `sym` */
#define TFL_REAL(sym) __typeof__(&sym) real = (__typeof__(&sym))tfl_real(TFL_HOOK_##sym)

#endif
