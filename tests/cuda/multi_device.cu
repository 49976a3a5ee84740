// multi_device.cu - a host with several devices and peer access between them (the emulated device with
// TF_EMU_DEVICES=2, or a 2-GPU machine): device count, per-device attributes/UUIDs/PCI ids, per-device
// primary contexts, cuCtxCreate on device 1, allocation ordinals and contexts (VMM: the physical allocation's
// device), per-device memory accounting, peer access
// return codes (driver and runtime), peer copies (1D sync/async, 3D) and a kernel on device 1 reading device 0
// memory, checked against host values, per-device mem pools and their access, and the fault of a kernel on
// device 1 touching device 0's memory without peer access.
// Uses the runtime (cudaSetDevice switching) and the driver API (-lcuda).
// I/O contract: multi_device (no arguments)
//   stdout: "count=<devices>", "get_past_count=<CUresult name of cuDeviceGet(count)>"; with one device that is
//   all (plus "single=1"); with two or more, the keys below (0/1 flags are 1 when the property holds, names are
//   the CUresult/cudaError names returned).
#include <cuda.h>
#include <cuda_runtime.h>
#include <cstring>
#include <vector>

#include "tf_test_io.h"


static const char *cu_name(CUresult r)
{
    const char *n = "?";
    cuGetErrorName(r, &n);
    return n;
}

__global__ void scale_from(const float *src, float *dst, int n, float k)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = src[i] * k;
}

static int same_floats(const std::vector<float> &a, const std::vector<float> &b)
{
    return a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

int main()
{
    int count = 0;
    CK(cudaGetDeviceCount(&count));
    printf("count=%d\n", count);
    CU(cuInit(0));
    CUdevice past;
    printf("get_past_count=%s\n", cu_name(cuDeviceGet(&past, count)));
    if (count < 2) {
        printf("single=1\n");
        return 0;
    }

    // ---- per-device queries ----
    char name0[256], name1[256], pci0[32], pci1[32];
    CUuuid u0, u1;
    CU(cuDeviceGetName(name0, sizeof name0, 0));
    CU(cuDeviceGetName(name1, sizeof name1, 1));
    CU(cuDeviceGetUuid(&u0, 0));
    CU(cuDeviceGetUuid(&u1, 1));
    CU(cuDeviceGetPCIBusId(pci0, sizeof pci0, 0));
    CU(cuDeviceGetPCIBusId(pci1, sizeof pci1, 1));
    CUdevice by_pci;
    CU(cuDeviceGetByPCIBusId(&by_pci, pci1));
    printf("name_same=%d\n", strcmp(name0, name1) == 0);
    printf("uuid_distinct=%d\n", memcmp(u0.bytes, u1.bytes, 16) != 0);
    printf("pci0=%s\npci1=%s\n", pci0, pci1);
    printf("by_pci1=%d\n", (int)by_pci);
    const CUdevice_attribute same_attrs[] = {
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
        CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
        CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE,
        CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED};
    int attrs_same = 1;
    for (CUdevice_attribute a : same_attrs) {
        int v0, v1;
        CU(cuDeviceGetAttribute(&v0, a, 0));
        CU(cuDeviceGetAttribute(&v1, a, 1));
        attrs_same &= v0 == v1;
    }
    printf("attrs_same=%d\n", attrs_same);
    int bus0, bus1;
    CU(cuDeviceGetAttribute(&bus0, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 0));
    CU(cuDeviceGetAttribute(&bus1, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, 1));
    printf("pci_bus_distinct=%d\n", bus0 != bus1);
    size_t total0, total1;
    CU(cuDeviceTotalMem(&total0, 0));
    CU(cuDeviceTotalMem(&total1, 1));
    printf("total_same=%d\n", total0 == total1 && total0 > 0);

    // ---- primary contexts, one per device (before cudart retains device 1's) ----
    CUcontext p0, p1;
    unsigned flags;
    int active, active_before;
    CU(cuDevicePrimaryCtxGetState(1, &flags, &active_before)); // cudart may hold it already
    CU(cuDevicePrimaryCtxRetain(&p0, 0));
    CU(cuDevicePrimaryCtxRetain(&p1, 1));
    printf("primaries_distinct=%d\n", p0 != p1);
    CU(cuDevicePrimaryCtxGetState(1, &flags, &active));
    printf("primary1_active=%d\n", active);
    CU(cuCtxPushCurrent(p1));
    CUdevice cd;
    CU(cuCtxGetDevice(&cd));
    printf("primary1_device=%d\n", (int)cd);
    CUcontext popped;
    CU(cuCtxPopCurrent(&popped));
    CU(cuDevicePrimaryCtxRelease(1));
    CU(cuDevicePrimaryCtxGetState(1, &flags, &active));
    printf("primary1_release_restores=%d\n", active == active_before);
    CU(cuDevicePrimaryCtxGetState(0, &flags, &active));
    printf("primary0_active=%d\n", active);
    CU(cuDevicePrimaryCtxRelease(0));

    // ---- an explicit context on device 1: its device, its allocations' ordinal, its device's memory ----
    CUcontext c1;
    CU(cuCtxCreate(&c1, NULL, 0, 1));
    CU(cuCtxGetDevice(&cd));
    printf("created_device=%d\n", (int)cd);
    size_t free_before, free_after, tot;
    CU(cuMemGetInfo(&free_before, &tot));
    CUdeviceptr big;
    const size_t big_bytes = 64u << 20;
    CU(cuMemAlloc(&big, big_bytes));
    int ord = -1;
    CU(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, big));
    printf("created_alloc_ordinal=%d\n", ord);
    CU(cuMemGetInfo(&free_after, &tot));
    printf("dev1_free_drop_ok=%d\n", free_before - free_after >= big_bytes);
    // a VMM allocation of device 0 mapped while device 1's context is current belongs to device 0
    CUmemAllocationProp vp = {};
    vp.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    vp.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    vp.location.id = 0;
    size_t gran;
    CU(cuMemGetAllocationGranularity(&gran, &vp, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CUmemGenericAllocationHandle vh;
    CU(cuMemCreate(&vh, gran, &vp, 0));
    CUdeviceptr va;
    CU(cuMemAddressReserve(&va, gran, 0, 0, 0));
    CU(cuMemMap(va, gran, 0, vh, 0));
    CU(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, va));
    printf("vmm_dev0_ordinal=%d\n", ord);
    CU(cuMemUnmap(va, gran));
    CU(cuMemRelease(vh));
    CU(cuMemAddressFree(va, gran));
    CU(cuCtxPopCurrent(&popped));

    // ---- the runtime: cudaSetDevice switches, allocations record their device ----
    const int n = 4096;
    const size_t bytes = n * sizeof(float);
    std::vector<float> h(n), back(n), want(n);
    for (int i = 0; i < n; i++) {
        h[i] = 0.5f * i - 7.0f;
        want[i] = h[i] * 3.0f;
    }
    float *a0, *b0, *a1, *out1;
    CK(cudaSetDevice(0));
    size_t f0_before, f0_after, t0;
    CK(cudaMemGetInfo(&f0_before, &t0));
    CK(cudaMalloc(&a0, bytes));
    CK(cudaMalloc(&b0, bytes));
    CK(cudaSetDevice(1));
    CK(cudaMalloc(&a1, bytes));
    CK(cudaMalloc(&out1, bytes));
    int cur = -1;
    CK(cudaGetDevice(&cur));
    printf("runtime_current=%d\n", cur);
    cudaPointerAttributes pa0, pa1;
    CK(cudaPointerGetAttributes(&pa0, a0));
    CK(cudaPointerGetAttributes(&pa1, a1));
    printf("ordinal_a0=%d\nordinal_a1=%d\n", pa0.device, pa1.device);
    CK(cudaSetDevice(0));
    CK(cudaMemGetInfo(&f0_after, &t0));
    // device 0 saw its own two allocations, not device 1's 64 MiB (freed with c1 below, still held now)
    printf("dev0_free_unaffected=%d\n", f0_before - f0_after < big_bytes);
    CUcontext big_ctx = NULL; // asked with device 0's primary context current: the allocation's own
    CU(cuPointerGetAttribute(&big_ctx, CU_POINTER_ATTRIBUTE_CONTEXT, big));
    printf("created_alloc_ctx_is_c1=%d\n", big_ctx == c1);
    CU(cuCtxDestroy(c1));

    // ---- peer access return codes ----
    int can01, can10, can00;
    CK(cudaDeviceCanAccessPeer(&can01, 0, 1));
    CK(cudaDeviceCanAccessPeer(&can10, 1, 0));
    CU(cuDeviceCanAccessPeer(&can00, 0, 0));
    printf("can01=%d\ncan10=%d\ncan00=%d\n", can01, can10, can00);
    int p2p;
    CU(cuDeviceGetP2PAttribute(&p2p, CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED, 0, 1));
    printf("p2p_access_supported=%d\n", p2p);
    printf("p2p_same_device=%s\n", cu_name(cuDeviceGetP2PAttribute(&p2p, CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED, 0, 0)));
    CK(cudaSetDevice(1));
    CK(cudaFree(0)); // device 1's primary context is current
    CUcontext ctx1, ctx0;
    CU(cuCtxGetCurrent(&ctx1));
    CU(cuDevicePrimaryCtxRetain(&ctx0, 0));
    printf("enable_first=%s\n", cu_name(cuCtxEnablePeerAccess(ctx0, 0)));
    printf("enable_again=%s\n", cu_name(cuCtxEnablePeerAccess(ctx0, 0)));
    printf("enable_own=%s\n", cu_name(cuCtxEnablePeerAccess(ctx1, 0)));
    printf("disable_first=%s\n", cu_name(cuCtxDisablePeerAccess(ctx0)));
    printf("disable_again=%s\n", cu_name(cuCtxDisablePeerAccess(ctx0)));
    cudaError_t re = cudaDeviceEnablePeerAccess(0, 0);
    printf("rt_enable=%s\n", cudaGetErrorName(re));
    re = cudaDeviceEnablePeerAccess(0, 0);
    printf("rt_enable_again=%s\n", cudaGetErrorName(re));
    (void)cudaGetLastError();

    // ---- peer copies and a kernel on device 1 reading device 0's memory ----
    CK(cudaSetDevice(0));
    CK(cudaMemcpy(a0, h.data(), bytes, cudaMemcpyHostToDevice));
    CK(cudaMemcpyPeer(a1, 1, a0, 0, bytes));
    CK(cudaMemcpy(back.data(), a1, bytes, cudaMemcpyDeviceToHost));
    printf("peer_copy_ok=%d\n", same_floats(back, h));
    CK(cudaSetDevice(1));
    cudaStream_t s1;
    CK(cudaStreamCreate(&s1));
    scale_from<<<(n + 255) / 256, 256, 0, s1>>>(a0, out1, n, 3.0f); // a0 lives on device 0
    CK(cudaGetLastError());
    CK(cudaMemcpyPeerAsync(b0, 0, out1, 1, bytes, s1));
    CK(cudaStreamSynchronize(s1));
    CK(cudaMemcpy(back.data(), out1, bytes, cudaMemcpyDeviceToHost));
    printf("kernel_peer_read_ok=%d\n", same_floats(back, want));
    std::fill(back.begin(), back.end(), 0.0f);
    CK(cudaMemcpy(back.data(), b0, bytes, cudaMemcpyDeviceToHost));
    printf("peer_copy_async_ok=%d\n", same_floats(back, want));
    CK(cudaSetDevice(0)); // a launch into a stream of device 1 while device 0 is current
    scale_from<<<1, 32, 0, s1>>>(a0, b0, 32, 1.0f);
    printf("launch_other_device_stream=%s\n", cudaGetErrorName(cudaGetLastError()));
    CK(cudaSetDevice(1));
    // 3D peer copy: rows 1..2 of a 64-float-wide view of a0 into the same rows of a1's view
    CK(cudaMemset(a1, 0, bytes));
    cudaMemcpy3DPeerParms p3 = {};
    p3.srcPtr = make_cudaPitchedPtr(a0, 64 * sizeof(float), 64 * sizeof(float), n / 64);
    p3.dstPtr = make_cudaPitchedPtr(a1, 64 * sizeof(float), 64 * sizeof(float), n / 64);
    p3.srcPos = make_cudaPos(0, 1, 0);
    p3.dstPos = make_cudaPos(0, 1, 0);
    p3.srcDevice = 0;
    p3.dstDevice = 1;
    p3.extent = make_cudaExtent(64 * sizeof(float), 2, 1);
    CK(cudaMemcpy3DPeer(&p3));
    CK(cudaMemcpy(back.data(), a1, bytes, cudaMemcpyDeviceToHost));
    int ok3 = 1;
    for (int i = 0; i < n; i++)
        ok3 &= back[i] == (i >= 64 && i < 192 ? h[i] : 0.0f);
    printf("peer_copy_3d_ok=%d\n", ok3);

    // ---- streams and events belong to their device ----
    CUcontext sctx;
    CU(cuStreamGetCtx((CUstream)s1, &sctx));
    printf("stream_ctx_is_dev1=%d\n", sctx == ctx1);
    CUdevice sdev;
    CU(cuStreamGetDevice((CUstream)s1, &sdev));
    printf("stream_device=%d\n", (int)sdev);
    CK(cudaSetDevice(0)); // an event of device 0 cannot be recorded on device 1's stream
    cudaEvent_t ev0;
    CK(cudaEventCreate(&ev0));
    printf("record_other_device_stream=%s\n", cudaGetErrorName(cudaEventRecord(ev0, s1)));
    (void)cudaGetLastError();
    CK(cudaStreamWaitEvent(s1, ev0, 0)); // waiting on another device's event is allowed
    CK(cudaEventDestroy(ev0));
    CK(cudaSetDevice(1));
    cudaEvent_t ev;
    CK(cudaEventCreate(&ev));
    CK(cudaEventRecord(ev, s1));
    CK(cudaEventSynchronize(ev));
    CK(cudaEventDestroy(ev));
    CK(cudaStreamDestroy(s1));

    // ---- mem pools: one default pool per device, access granted to the other device ----
    cudaMemPool_t mp0, mp1;
    CK(cudaDeviceGetDefaultMemPool(&mp0, 0));
    CK(cudaDeviceGetDefaultMemPool(&mp1, 1));
    printf("pools_distinct=%d\n", mp0 != mp1);
    cudaMemLocation loc1 = {};
    loc1.type = cudaMemLocationTypeDevice;
    loc1.id = 1;
    cudaMemLocation loc0 = loc1;
    loc0.id = 0;
    cudaMemAccessFlags af;
    CK(cudaMemPoolGetAccess(&af, mp0, &loc0));
    printf("pool_own_access=%d\n", (int)af);
    CK(cudaMemPoolGetAccess(&af, mp0, &loc1));
    printf("pool_peer_access_before=%d\n", (int)af);
    cudaMemAccessDesc desc = {};
    desc.location = loc1;
    desc.flags = cudaMemAccessFlagsProtReadWrite;
    CK(cudaMemPoolSetAccess(mp0, &desc, 1));
    CK(cudaMemPoolGetAccess(&af, mp0, &loc1));
    printf("pool_peer_access_after=%d\n", (int)af);
    desc.location = loc0;
    desc.flags = cudaMemAccessFlagsProtNone;
    printf("pool_own_none=%s\n", cudaGetErrorName(cudaMemPoolSetAccess(mp0, &desc, 1)));
    (void)cudaGetLastError();
    cudaStream_t s;
    CK(cudaStreamCreate(&s)); // on device 1 (current)
    float *from0;
    CK(cudaMallocFromPoolAsync(&from0, bytes, mp0, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaPointerGetAttributes(&pa0, from0));
    printf("pool0_alloc_ordinal=%d\n", pa0.device);
    scale_from<<<(n + 255) / 256, 256, 0, s>>>(a0, from0, n, 3.0f);
    CK(cudaMemcpyAsync(back.data(), from0, bytes, cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    printf("pool_kernel_ok=%d\n", same_floats(back, want));
    CK(cudaFreeAsync(from0, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaStreamDestroy(s));

    // ---- without peer access a kernel of device 1 may not touch device 0's memory (a GPU faults), except
    // memory of a pool that granted device 1 access ----
    CK(cudaDeviceDisablePeerAccess(0)); // current device: 1
    cudaStream_t s2;
    CK(cudaStreamCreate(&s2));
    float *granted;
    CK(cudaMallocFromPoolAsync(&granted, bytes, mp0, s2));
    CK(cudaMemcpyAsync(granted, h.data(), bytes, cudaMemcpyHostToDevice, s2));
    scale_from<<<(n + 255) / 256, 256, 0, s2>>>(granted, out1, n, 3.0f);
    CK(cudaMemcpyAsync(back.data(), out1, bytes, cudaMemcpyDeviceToHost, s2));
    CK(cudaStreamSynchronize(s2));
    printf("pool_grant_without_peer_ok=%d\n", same_floats(back, want));
    scale_from<<<(n + 255) / 256, 256, 0, s2>>>(a0, out1, n, 3.0f);
    printf("no_peer_kernel=%s\n", cudaGetErrorName(cudaStreamSynchronize(s2)));
    CK(cudaDeviceReset()); // device 1's context faulted: reset it
    CK(cudaSetDevice(0));
    printf("dev0_after_dev1_fault=%s\n", cudaGetErrorName(cudaDeviceSynchronize()));
    CK(cudaMemcpy(back.data(), a0, bytes, cudaMemcpyDeviceToHost));
    printf("dev0_memory_intact=%d\n", same_floats(back, h));
    CK(cudaFree(a0));
    CK(cudaFree(b0));
    CU(cuDevicePrimaryCtxRelease(0));
    printf("done=1\n");
    return 0;
}
