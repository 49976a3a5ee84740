// multi_device_owners.cu - with two devices (TF_EMU_DEVICES=2, `tensorfusion run --gpus 2`, or a 2-GPU machine),
// the driver-API calls that answer for the device or context a handle or an address belongs to, asked while the
// other device's context is current:
//   - events and streams: an event records only on a stream of its own context (the NULL stream is the current
//     context's); cuEventElapsedTime refuses events of two devices; waits, host functions, callbacks, queries,
//     synchronizes and async copies on another device's stream or event are allowed (CUDA Programming Guide,
//     "Stream and Event Behavior"; cuda.h's cuEventRecord and cuStreamWaitEvent);
//   - CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL / CONTEXT (cuPointerGetAttribute and cuPointerGetAttributes) of
//     page-locked host memory (cuMemAllocHost, cuMemHostAlloc, cuMemHostRegister) allocated while device 1's
//     context was current (the device that was current, cudaPointerAttributes::device), of a graph memory
//     node's allocation for device 1 (the node's pool location), and of pointers of a device-1 IPC memory
//     pool imported by a second process (the pool's device);
//   - the same of managed memory (and CU_POINTER_ATTRIBUTE_IS_MANAGED);
//   - addresses of a context that a reset ended (the last cuDevicePrimaryCtxRelease) or cuCtxDestroy destroyed:
//     freeing or unregistering them afterwards is refused, their attributes and flags are gone.
// Driver API only (-lcuda), so that nothing but this program retains device 1's primary context.
// I/O contract: multi_device_owners (no arguments; "child <hex> <hex> <socket>" is the second process)
//   stdout: "count=<devices>"; with one device also "single=1" and nothing else; with two or more the keys
//   below: CUresult names of the calls, 0/1 flags that are 1 when the property holds, ordinals as numbers.
//   pool_export=<CUresult of exporting the IPC pool's descriptor>; when it succeeds the child's child_* keys
//   follow (the export needs a Unix socket through the stub: CUDA_ERROR_NOT_SUPPORTED over TCP).
#include <cuda.h>
#include <cstring>
#include <vector>

#include "tf_test_child.h"
#include "tf_test_io.h"

static const char *cu_name(CUresult r)
{
    const char *n = "?";
    cuGetErrorName(r, &n);
    return n;
}

static void set_flag(void *p) { *(volatile int *)p = 1; }

static CUstream g_cb_stream;
static CUresult g_cb_status = CUDA_ERROR_UNKNOWN;
static void CUDA_CB note_callback(CUstream s, CUresult status, void *p)
{
    g_cb_stream = s;
    g_cb_status = status;
    *(volatile int *)p = 1;
}

static int ordinal_of(CUdeviceptr p)
{
    int ord = -9;
    CUresult r = cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p);
    return r == CUDA_SUCCESS ? ord : -100 - (int)r;
}

static CUcontext context_of(CUdeviceptr p)
{
    CUcontext c = NULL;
    return cuPointerGetAttribute(&c, CU_POINTER_ATTRIBUTE_CONTEXT, p) == CUDA_SUCCESS ? c : NULL;
}

// Both attributes in one cuPointerGetAttributes call: "<ordinal> <1 if the context is want>"
static void print_both(const char *key, CUdeviceptr p, CUcontext want)
{
    int ord = -9;
    CUcontext c = NULL;
    CUpointer_attribute a[2] = {CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_CONTEXT};
    void *d[2] = {&ord, &c};
    CU(cuPointerGetAttributes(2, a, d, p));
    printf("%s=%d,%d\n", key, ord, c == want);
}

static CUdeviceptr hp(const void *p) { return (CUdeviceptr)(uintptr_t)p; }

// ---- the second process: imports the parent's device-1 pool and two of its pointers ----
static int child(int sock, const char *hex_a, const char *hex_b)
{
    CU(cuInit(0));
    CUcontext p0, p1;
    CU(cuDevicePrimaryCtxRetain(&p0, 0));
    CU(cuDevicePrimaryCtxRetain(&p1, 1));
    int fd = tf_recv_fd(sock);
    CU(cuCtxPushCurrent(p0)); // the pool and the first pointer are imported while device 0 is current
    CUmemoryPool pool;
    CU(cuMemPoolImportFromShareableHandle(&pool, (void *)(uintptr_t)fd, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    CUmemPoolPtrExportData a, b;
    tf_unhex(hex_a, &a, sizeof a);
    tf_unhex(hex_b, &b, sizeof b);
    CUdeviceptr pa, pb;
    CU(cuMemPoolImportPointer(&pa, pool, &a));
    printf("child_ipc_ordinal=%d\n", ordinal_of(pa));
    CU(cuCtxPushCurrent(p1)); // the second one while device 1 is current, asked with device 0 current
    CU(cuMemPoolImportPointer(&pb, pool, &b));
    CUcontext popped;
    CU(cuCtxPopCurrent(&popped));
    printf("child_ipc_ctx_is_p1=%d\n", context_of(pb) == p1);
    print_both("child_ipc_attrs", pb, p1);
    unsigned v = 0;
    CU(cuMemcpyDtoH(&v, pa, sizeof v));
    printf("child_ipc_data=%u\n", v);
    CU(cuMemFree(pa));
    CU(cuMemFree(pb));
    CU(cuMemPoolDestroy(pool));
    CU(cuCtxPopCurrent(&popped));
    CU(cuDevicePrimaryCtxRelease(1));
    CU(cuDevicePrimaryCtxRelease(0));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "child") == 0)
        return child(atoi(argv[4]), argv[2], argv[3]);
    CU(cuInit(0));
    int count = 0;
    CU(cuDeviceGetCount(&count));
    printf("count=%d\n", count);
    if (count < 2) {
        printf("single=1\n");
        return 0;
    }
    CUcontext p0, p1, popped;
    CU(cuDevicePrimaryCtxRetain(&p0, 0));
    CU(cuDevicePrimaryCtxRetain(&p1, 1));

    // ---- events and streams of device 1, used while device 0's context is current ----
    CUstream s1, s0;
    CUevent e1a, e1b, e0;
    CU(cuCtxPushCurrent(p1));
    CU(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CU(cuEventCreate(&e1a, CU_EVENT_DEFAULT));
    CU(cuEventCreate(&e1b, CU_EVENT_DEFAULT));
    CUdeviceptr d1;
    CU(cuMemAlloc(&d1, 4096));
    CU(cuCtxPopCurrent(&popped));
    CU(cuCtxPushCurrent(p0));
    CU(cuStreamCreate(&s0, CU_STREAM_NON_BLOCKING));
    CU(cuEventCreate(&e0, CU_EVENT_DEFAULT));
    printf("record_own_stream=%s\n", cu_name(cuEventRecord(e1a, s1)));
    printf("record_null_stream=%s\n", cu_name(cuEventRecord(e1b, NULL))); // NULL: device 0's
    printf("record_other_stream=%s\n", cu_name(cuEventRecord(e0, s1)));
    CU(cuEventRecord(e1b, s1));
    CU(cuEventRecord(e0, s0));
    CU(cuStreamSynchronize(s0));
    printf("sync_other_event=%s\n", cu_name(cuEventSynchronize(e1b)));
    printf("query_other_event=%s\n", cu_name(cuEventQuery(e1b)));
    float ms = -1;
    printf("elapsed_other_device=%s\n", cu_name(cuEventElapsedTime(&ms, e1a, e1b)));
    printf("elapsed_two_devices=%s\n", cu_name(cuEventElapsedTime(&ms, e0, e1b)));
    printf("elapsed_two_devices_reversed=%s\n", cu_name(cuEventElapsedTime(&ms, e1a, e0)));
    printf("wait_other_event=%s\n", cu_name(cuStreamWaitEvent(s0, e1b, 0)));
    printf("wait_on_other_stream=%s\n", cu_name(cuStreamWaitEvent(s1, e0, 0)));
    volatile int ran_fn = 0, ran_cb = 0;
    printf("host_func_other_stream=%s\n", cu_name(cuLaunchHostFunc(s1, set_flag, (void *)&ran_fn)));
    printf("callback_other_stream=%s\n", cu_name(cuStreamAddCallback(s1, note_callback, (void *)&ran_cb, 0)));
    unsigned pattern[1024], back[1024];
    for (unsigned i = 0; i < 1024; i++)
        pattern[i] = i * 2654435761u;
    printf("copy_other_stream=%s\n", cu_name(cuMemcpyHtoDAsync(d1, pattern, sizeof pattern, s1)));
    printf("sync_other_stream=%s\n", cu_name(cuStreamSynchronize(s1)));
    printf("host_func_ran=%d\n", ran_fn);
    printf("callback_ran=%d\n", ran_cb && g_cb_stream == s1 && g_cb_status == CUDA_SUCCESS);
    printf("query_other_stream=%s\n", cu_name(cuStreamQuery(s1)));
    CU(cuMemcpyDtoH(back, d1, sizeof back));
    printf("copy_other_stream_ok=%d\n", memcmp(back, pattern, sizeof back) == 0);
    // a context of its own on device 0: its event and device 0's primary stream are of two contexts
    CUcontext c0;
    CU(cuCtxCreate(&c0, NULL, 0, 0));
    CUevent ec;
    CU(cuEventCreate(&ec, CU_EVENT_DEFAULT));
    CU(cuCtxPopCurrent(&popped));
    printf("record_other_context=%s\n", cu_name(cuEventRecord(ec, s0)));
    printf("record_other_context_null=%s\n", cu_name(cuEventRecord(ec, NULL)));
    CU(cuEventDestroy(ec));
    CU(cuCtxPushCurrent(c0)); // what a created context held is gone with cuCtxDestroy
    void *h_c0;
    CU(cuMemAllocHost(&h_c0, 4096));
    CU(cuCtxPopCurrent(&popped));
    CU(cuCtxDestroy(c0));
    printf("destroyed_ctx_free_host=%s\n", cu_name(cuMemFreeHost(h_c0)));
    CU(cuCtxSetCurrent(p0));

    // ---- page-locked host memory allocated while device 1's context is current ----
    CU(cuCtxPushCurrent(p1));
    void *h_alloc, *h_hostalloc;
    CU(cuMemAllocHost(&h_alloc, 4096));
    CU(cuMemHostAlloc(&h_hostalloc, 4096, CU_MEMHOSTALLOC_PORTABLE));
    std::vector<char> reg(3 * 4096);
    CU(cuMemHostRegister(reg.data(), reg.size(), 0));
    CUdeviceptr managed;
    CU(cuMemAllocManaged(&managed, 4096, CU_MEM_ATTACH_GLOBAL));
    CU(cuCtxPopCurrent(&popped)); // device 0's primary context is current again
    printf("allochost_ordinal=%d\n", ordinal_of(hp(h_alloc)));
    printf("allochost_ctx_is_p1=%d\n", context_of(hp(h_alloc)) == p1);
    printf("hostalloc_ordinal=%d\n", ordinal_of(hp(h_hostalloc)));
    printf("hostalloc_ctx_is_p1=%d\n", context_of(hp(h_hostalloc)) == p1);
    printf("registered_ordinal=%d\n", ordinal_of(hp(reg.data() + 100)));
    printf("registered_ctx_is_p1=%d\n", context_of(hp(reg.data() + 100)) == p1);
    print_both("allochost_attrs", hp(h_alloc), p1);
    print_both("registered_attrs", hp(reg.data()), p1);
    int is_managed = -1;
    CU(cuPointerGetAttribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, managed));
    printf("managed_is_managed=%d\n", is_managed);
    print_both("managed_attrs", managed, p1);
    CU(cuMemFree(managed));
    CU(cuMemHostUnregister(reg.data()));
    CU(cuMemFreeHost(h_hostalloc));
    CU(cuMemFreeHost(h_alloc));

    // ---- a graph memory node's allocation for device 1 ----
    CUgraph g;
    CU(cuGraphCreate(&g, 0));
    CUDA_MEM_ALLOC_NODE_PARAMS ap;
    memset(&ap, 0, sizeof ap);
    ap.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    ap.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    ap.poolProps.location.id = 1;
    ap.bytesize = 1 << 16;
    CUgraphNode an;
    CU(cuGraphAddMemAllocNode(&an, g, NULL, 0, &ap)); // added while device 0 is current
    CU(cuCtxPushCurrent(p1));
    CUgraphExec ge;
    CU(cuGraphInstantiate(&ge, g, 0));
    CU(cuGraphLaunch(ge, s1));
    CU(cuStreamSynchronize(s1));
    CU(cuCtxPopCurrent(&popped));
    printf("graph_mem_ordinal=%d\n", ordinal_of(ap.dptr));
    CUDA_MEM_ALLOC_NODE_PARAMS back_params;
    CU(cuGraphMemAllocNodeGetParams(an, &back_params));
    printf("graph_mem_node_location=%d\n", back_params.poolProps.location.id);
    CU(cuMemFreeAsync(ap.dptr, s1));
    CU(cuStreamSynchronize(s1));
    CU(cuGraphExecDestroy(ge));
    CU(cuGraphDestroy(g));
    // the same through stream capture: a stream-ordered allocation captured on device 1's stream
    CU(cuCtxPushCurrent(p1));
    CU(cuStreamBeginCapture(s1, CU_STREAM_CAPTURE_MODE_RELAXED));
    CUdeviceptr captured;
    CU(cuMemAllocAsync(&captured, 1 << 16, s1));
    CU(cuStreamEndCapture(s1, &g));
    CU(cuGraphInstantiate(&ge, g, 0));
    CU(cuGraphLaunch(ge, s1));
    CU(cuStreamSynchronize(s1));
    CU(cuCtxPopCurrent(&popped));
    printf("captured_mem_ordinal=%d\n", ordinal_of(captured));
    CUgraphNode nodes[4];
    size_t nn = 4;
    CU(cuGraphGetNodes(g, nodes, &nn));
    CU(cuGraphMemAllocNodeGetParams(nodes[0], &back_params));
    printf("captured_node_location=%d\n", back_params.poolProps.location.id);
    CU(cuMemFreeAsync(captured, s1));
    CU(cuStreamSynchronize(s1));
    CU(cuGraphExecDestroy(ge));
    CU(cuGraphDestroy(g));

    // ---- an IPC memory pool of device 1, imported by a second process ----
    CUmemPoolProps pp;
    memset(&pp, 0, sizeof pp);
    pp.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    pp.handleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    pp.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    pp.location.id = 1;
    CUmemoryPool pool;
    CU(cuMemPoolCreate(&pool, &pp));
    CUdeviceptr pa, pb;
    CU(cuMemAllocFromPoolAsync(&pa, 1 << 16, pool, s1));
    CU(cuMemAllocFromPoolAsync(&pb, 1 << 16, pool, s1));
    CU(cuMemsetD32Async(pa, 0xC0FFEEu, (1 << 16) / 4, s1));
    CU(cuStreamSynchronize(s1));
    int pool_fd = -1;
    CUresult er = cuMemPoolExportToShareableHandle(&pool_fd, pool, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
    printf("pool_export=%s\n", cu_name(er));
    if (er == CUDA_SUCCESS) {
        CUmemPoolPtrExportData xa, xb;
        CU(cuMemPoolExportPointer(&xa, pa));
        CU(cuMemPoolExportPointer(&xb, pb));
        char ha[2 * sizeof xa + 1], hb[2 * sizeof xb + 1];
        tf_hex(&xa, sizeof xa, ha);
        tf_hex(&xb, sizeof xb, hb);
        const char *child_args[] = {"child", ha, hb, NULL};
        printf("child_status=%d\n", tf_run_copy(argv[0], pool_fd, child_args));
        close(pool_fd);
    }
    CU(cuMemFreeAsync(pa, s1));
    CU(cuMemFreeAsync(pb, s1));
    CU(cuStreamSynchronize(s1));
    CU(cuMemPoolDestroy(pool));

    CU(cuEventDestroy(e1a));
    CU(cuEventDestroy(e1b));
    CU(cuEventDestroy(e0));
    CU(cuStreamDestroy(s0));
    CU(cuStreamDestroy(s1));
    CU(cuMemFree(d1));

    // ---- what device 1's context held when its last release reset it ----
    CU(cuCtxPushCurrent(p1));
    void *h_gone, *h2_gone;
    CUdeviceptr d_gone, m_gone;
    CU(cuMemAllocHost(&h_gone, 4096));
    CU(cuMemHostAlloc(&h2_gone, 4096, CU_MEMHOSTALLOC_PORTABLE));
    std::vector<char> reg_gone(2 * 4096);
    CU(cuMemHostRegister(reg_gone.data(), reg_gone.size(), 0));
    CU(cuMemAlloc(&d_gone, 4096));
    CU(cuMemAllocManaged(&m_gone, 4096, CU_MEM_ATTACH_GLOBAL));
    CU(cuCtxPopCurrent(&popped));
    CU(cuDevicePrimaryCtxRelease(1)); // the last retain: the context resets
    unsigned flags;
    int active = -1;
    CU(cuDevicePrimaryCtxGetState(1, &flags, &active));
    printf("reset_active=%d\n", active);
    int ord;
    printf("reset_attr_host=%s\n", cu_name(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, hp(h_gone))));
    printf("reset_attr_dev=%s\n", cu_name(cuPointerGetAttribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d_gone)));
    unsigned hflags;
    printf("reset_host_flags=%s\n", cu_name(cuMemHostGetFlags(&hflags, h_gone)));
    printf("reset_free_host=%s\n", cu_name(cuMemFreeHost(h_gone)));
    printf("reset_free_hostalloc=%s\n", cu_name(cuMemFreeHost(h2_gone)));
    printf("reset_unregister=%s\n", cu_name(cuMemHostUnregister(reg_gone.data())));
    printf("reset_free_dev=%s\n", cu_name(cuMemFree(d_gone)));
    printf("reset_free_managed=%s\n", cu_name(cuMemFree(m_gone)));
    CU(cuCtxPopCurrent(&popped));
    CU(cuDevicePrimaryCtxRelease(0));
    printf("done=1\n");
    return 0;
}
