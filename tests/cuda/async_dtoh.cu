// async_dtoh.cu - asynchronous device-to-host copies follow CUDA's rule ("API synchronization behavior"): to
// page-locked memory the call returns at once and the bytes are there when the stream reaches the copy; to
// pageable memory it returns once the copy is done. Each case queues a kernel that spins until the host
// releases it (a flag) and then fills a device buffer, then the copy into page-locked memory, checks that the
// call returned while the stream is busy (stream and event queries: cudaErrorNotReady, the destination
// untouched), releases the kernel, and checks the bytes after one kind of synchronization point:
//   stream_sync, event_sync (cudaEventSynchronize of an event recorded after the copy), event_query (polled
//   until cudaSuccess), wait_event (another stream that waited for that event, synchronized), device_sync,
//   host_func (a cudaLaunchHostFunc queued after the copy, and after the release, sees the bytes), copy_2d (cudaMemcpy2DAsync from pitched
//   memory into a pitched destination: the gaps keep their bytes), large_2d (the same, 8.8 MiB), array_2d
//   (cudaMemcpy2DFromArrayAsync), array_1d (cuMemcpyAtoHAsync), large (9 MiB), round_trip (a copy from the buffer queued after the copy
//   into it reads the new bytes), registered (cudaHostRegister'd malloc memory), and
//   pageable (no spin: cudaMemcpyAsync to malloc memory has the bytes when it returns).
// A single host thread does everything: an asynchronous copy that waited for its stream would never return.
// Usage: async_dtoh mapped   the flag is mapped page-locked memory the host writes (needs canMapHostMemory)
//        async_dtoh device   the flag is device memory written by a copy on another stream
// Prints "<case>=ok" (or "<case>=FAIL <why>", exit 1) and "cases=<n>"; a hang ends with "timeout=1" (alarm).
#include "tf_test_io.h"

#include <cuda_runtime.h>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <unistd.h>

__global__ void spin_then_fill(volatile int *flag, unsigned *buf, size_t n, unsigned seed)
{
    if (threadIdx.x == 0)
        while (*flag == 0) {
        }
    __syncthreads();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        buf[i] = (unsigned)(i * 2654435761u) ^ seed;
}

static unsigned want(size_t i, unsigned seed) { return (unsigned)(i * 2654435761u) ^ seed; }

static int g_fails, g_cases;
static bool g_mapped;
static volatile int *g_flag_host;  // mapped mode
static int *g_flag_dev;            // the kernel's view of the flag
static int *g_one;                 // device mode: page-locked 1 copied to the flag
static cudaStream_t g_s, g_t;      // the copy's stream; the releasing / waiting stream

static void on_alarm(int)
{
    static const char msg[] = "timeout=1\n";
    if (write(1, msg, sizeof msg - 1) < 0) _exit(2);
    _exit(1);
}

static void result(const char *name, const std::string &why)
{
    g_cases++;
    if (why.empty()) {
        printf("%s=ok\n", name);
    } else {
        printf("%s=FAIL %s\n", name, why.c_str());
        g_fails++;
    }
    fflush(stdout);
}

// Lowers the flag and queues the spinning kernel that fills dev[0, n) with seed's pattern once released.
static void arm(unsigned *dev, size_t n, unsigned seed)
{
    CK(cudaDeviceSynchronize());
    if (g_mapped)
        *g_flag_host = 0;
    else
        CK(cudaMemset(g_flag_dev, 0, sizeof(int)));
    CK(cudaDeviceSynchronize());
    spin_then_fill<<<4, 128, 0, g_s>>>((volatile int *)g_flag_dev, dev, n, seed);
    CK(cudaGetLastError());
}

static void release()
{
    if (g_mapped)
        *g_flag_host = 1;
    else
        CK(cudaMemcpyAsync(g_flag_dev, g_one, sizeof(int), cudaMemcpyHostToDevice, g_t));
}

// While the kernel spins: the stream and an event after the copy are not done, the destination untouched.
static std::string busy_checks(const unsigned *dst, unsigned old, cudaEvent_t ev)
{
    cudaError_t q = cudaStreamQuery(g_s);
    if (q != cudaErrorNotReady) return "stream_query_before=" + std::to_string(q);
    if (ev && (q = cudaEventQuery(ev)) != cudaErrorNotReady) return "event_query_before=" + std::to_string(q);
    if (dst[0] != old) return "landed_before_the_kernel_ran";
    return "";
}

static std::string check(const unsigned *dst, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (dst[i] != want(i, seed)) return "byte_mismatch_at_" + std::to_string(i);
    return "";
}

enum Wait { STREAM_SYNC, EVENT_SYNC, EVENT_QUERY, WAIT_EVENT, DEVICE_SYNC, HOST_FUNC };

struct HostFnSeen {
    const unsigned *dst;
    size_t n;
    unsigned seed;
    int ok;
};
static void CUDART_CB host_fn(void *p)
{
    HostFnSeen *h = (HostFnSeen *)p;
    h->ok = check(h->dst, h->n, h->seed).empty() ? 1 : 0;
}

// One 1D copy of n words behind the spinning kernel, then the given kind of wait.
static void case_1d(const char *name, unsigned *dev, unsigned *dst, size_t n, unsigned seed, Wait wait)
{
    memset(dst, 0xee, n * sizeof(unsigned));
    cudaEvent_t ev;
    CK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    arm(dev, n, seed);
    CK(cudaMemcpyAsync(dst, dev, n * sizeof(unsigned), cudaMemcpyDeviceToHost, g_s));
    CK(cudaEventRecord(ev, g_s));
    std::string why = busy_checks(dst, 0xeeeeeeeeu, ev);
    release();
    // queued after the release: over TCP a host function runs in the caller after a synchronize of its stream
    HostFnSeen seen = {dst, n, seed, -1};
    if (wait == HOST_FUNC) CK(cudaLaunchHostFunc(g_s, host_fn, &seen));
    cudaError_t e = cudaSuccess;
    switch (wait) {
    case STREAM_SYNC:
    case HOST_FUNC: e = cudaStreamSynchronize(g_s); break;
    case EVENT_SYNC: e = cudaEventSynchronize(ev); break;
    case EVENT_QUERY:
        while ((e = cudaEventQuery(ev)) == cudaErrorNotReady) usleep(200);
        break;
    case WAIT_EVENT:
        CK(cudaStreamWaitEvent(g_t, ev, 0));
        e = cudaStreamSynchronize(g_t);
        break;
    case DEVICE_SYNC: e = cudaDeviceSynchronize(); break;
    }
    if (why.empty() && e != cudaSuccess) why = "wait=" + std::to_string(e);
    if (why.empty()) why = check(dst, n, seed);
    if (why.empty() && wait == HOST_FUNC && seen.ok != 1) why = "host_func_saw=" + std::to_string(seen.ok);
    if (why.empty() && (e = cudaEventQuery(ev)) != cudaSuccess) why = "event_query_after=" + std::to_string(e);
    CK(cudaStreamSynchronize(g_s));
    if (why.empty() && (e = cudaStreamQuery(g_s)) != cudaSuccess) why = "stream_query_after=" + std::to_string(e);
    CK(cudaEventDestroy(ev));
    result(name, why);
}

// cudaMemcpy2DAsync of a w-word x h-row box from device memory whose rows are `sw` words apart into a
// destination whose rows are `dw` words apart: the words between the rows keep their bytes.
static void case_2d(const char *name, unsigned *dev, unsigned *dst, size_t w, size_t h, size_t sw, size_t dw,
                    unsigned seed)
{
    const size_t spitch = sw * sizeof(unsigned), dpitch = dw * sizeof(unsigned);
    memset(dst, 0xee, dpitch * h);
    arm(dev, sw * h, seed);
    CK(cudaMemcpy2DAsync(dst, dpitch, dev, spitch, w * sizeof(unsigned), h, cudaMemcpyDeviceToHost, g_s));
    std::string why = busy_checks(dst, 0xeeeeeeeeu, nullptr);
    release();
    CK(cudaStreamSynchronize(g_s));
    for (size_t r = 0; r < h && why.empty(); r++)
        for (size_t c = 0; c < dw && why.empty(); c++) {
            unsigned expect = c < w ? want(r * sw + c, seed) : 0xeeeeeeeeu;
            if (dst[r * dw + c] != expect) why = "mismatch_row_" + std::to_string(r) + "_col_" + std::to_string(c);
        }
    result(name, why);
}

// A copy back from the page-locked buffer, queued after the copy into it on the same stream, reads what that
// copy wrote (queued after the release: a source still being written through the stub waits for it).
static void case_round_trip(unsigned *dev, unsigned *dst, size_t n)
{
    unsigned *dev2;
    CK(cudaMalloc((void **)&dev2, n * sizeof(unsigned)));
    CK(cudaMemset(dev2, 0, n * sizeof(unsigned)));
    memset(dst, 0xee, n * sizeof(unsigned));
    arm(dev, n, 31);
    CK(cudaMemcpyAsync(dst, dev, n * sizeof(unsigned), cudaMemcpyDeviceToHost, g_s));
    std::string why = busy_checks(dst, 0xeeeeeeeeu, nullptr);
    release();
    CK(cudaMemcpyAsync(dev2, dst, n * sizeof(unsigned), cudaMemcpyHostToDevice, g_s));
    CK(cudaStreamSynchronize(g_s));
    unsigned *back = (unsigned *)malloc(n * sizeof(unsigned));
    CK(cudaMemcpy(back, dev2, n * sizeof(unsigned), cudaMemcpyDeviceToHost));
    if (why.empty()) why = check(back, n, 31);
    free(back);
    CK(cudaFree(dev2));
    result("round_trip", why);
}

// Copies out of a CUDA array (filled from dev after the kernel, on the same stream): 2D and the 1D driver call.
static void case_array(unsigned *dev, unsigned *dst, bool one_d)
{
    const size_t w = 64, h = 16;
    cudaChannelFormatDesc fmt = cudaCreateChannelDesc<unsigned>();
    cudaArray_t arr;
    CK(cudaMallocArray(&arr, &fmt, w, h));
    memset(dst, 0xee, w * h * sizeof(unsigned));
    arm(dev, w * h, 23);
    CK(cudaMemcpy2DToArrayAsync(arr, 0, 0, dev, w * sizeof(unsigned), w * sizeof(unsigned), h,
                                cudaMemcpyDeviceToDevice, g_s));
    if (one_d)
        CU(cuMemcpyAtoHAsync(dst, (CUarray)arr, 0, w * sizeof(unsigned), (CUstream)g_s));  // the first row
    else
        CK(cudaMemcpy2DFromArrayAsync(dst, w * sizeof(unsigned), arr, 0, 0, w * sizeof(unsigned), h,
                                      cudaMemcpyDeviceToHost, g_s));
    std::string why = busy_checks(dst, 0xeeeeeeeeu, nullptr);
    release();
    CK(cudaStreamSynchronize(g_s));
    if (why.empty()) why = check(dst, one_d ? w : w * h, 23);
    if (why.empty() && one_d && dst[w] != 0xeeeeeeeeu) why = "wrote_past_the_copy";
    CK(cudaFreeArray(arr));
    result(one_d ? "array_1d" : "array_2d", why);
}

int main(int argc, char **argv)
{
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode != "mapped" && mode != "device") {
        printf("usage: async_dtoh mapped|device\n");
        return 2;
    }
    signal(SIGALRM, on_alarm);
    alarm(240);
    g_mapped = mode == "mapped";
    int can_map = 0;
    CK(cudaDeviceGetAttribute(&can_map, cudaDevAttrCanMapHostMemory, 0));
    if (g_mapped && !can_map) {
        printf("can_map=0\n");
        return 1;
    }
    CK(cudaStreamCreateWithFlags(&g_s, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&g_t, cudaStreamNonBlocking));
    if (g_mapped) {
        int *f;
        CK(cudaHostAlloc((void **)&f, sizeof(int), cudaHostAllocMapped));
        g_flag_host = f;
        CK(cudaHostGetDevicePointer((void **)&g_flag_dev, f, 0));
    } else {
        CK(cudaMalloc((void **)&g_flag_dev, sizeof(int)));
        CK(cudaMallocHost((void **)&g_one, sizeof(int)));
        *g_one = 1;
    }
    const size_t small = 4096, large = (9u << 20) / sizeof(unsigned);
    unsigned *dev, *pinned;
    CK(cudaMalloc((void **)&dev, large * sizeof(unsigned)));
    CK(cudaMallocHost((void **)&pinned, large * sizeof(unsigned)));

    case_1d("stream_sync", dev, pinned, small, 1, STREAM_SYNC);
    case_1d("event_sync", dev, pinned, small, 2, EVENT_SYNC);
    case_1d("event_query", dev, pinned, small, 3, EVENT_QUERY);
    case_1d("wait_event", dev, pinned, small, 4, WAIT_EVENT);
    case_1d("device_sync", dev, pinned, small, 5, DEVICE_SYNC);
    case_1d("host_func", dev, pinned, small, 6, HOST_FUNC);
    case_1d("large", dev, pinned, large, 7, STREAM_SYNC);
    case_round_trip(dev, pinned, small);
    case_2d("copy_2d", dev, pinned, 100, 37, 128, 112, 11);
    // 8.8 MiB of rows with gaps: over a socket, three pieces through scratch buffers, rows split between them
    case_2d("large_2d", dev, pinned, 1000, 2300, 1024, 1008, 12);
    case_array(dev, pinned, false);
    case_array(dev, pinned, true);

    // cudaHostRegister'd memory (not page-aligned) is page-locked too
    unsigned *plain = (unsigned *)malloc(small * sizeof(unsigned) + 64);
    unsigned *reg = plain + 3;
    CK(cudaHostRegister(reg, small * sizeof(unsigned), cudaHostRegisterDefault));
    case_1d("registered", dev, reg, small, 8, STREAM_SYNC);
    CK(cudaHostUnregister(reg));

    // pageable memory: the call returns once the bytes are there
    {
        memset(plain, 0xee, small * sizeof(unsigned));
        spin_then_fill<<<4, 128, 0, g_s>>>((volatile int *)g_flag_dev, dev, small, 9);  // the flag is up
        CK(cudaGetLastError());
        CK(cudaMemcpyAsync(plain, dev, small * sizeof(unsigned), cudaMemcpyDeviceToHost, g_s));
        result("pageable", check(plain, small, 9));
        CK(cudaStreamSynchronize(g_s));
    }
    free(plain);
    CK(cudaFreeHost(pinned));
    CK(cudaFree(dev));
    printf("cases=%d\n", g_cases);
    return g_fails ? 1 : 0;
}
