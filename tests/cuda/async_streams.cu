// async_streams.cu - CUDA's stream semantics a program can observe: stream work runs after the call
// that queued it returns (a kernel spinning on a page-locked host flag the host sets after queueing
// more work, NVIDIA's UnifiedMemoryPerf pattern), queries answer cudaErrorNotReady while work is
// pending, streams run concurrently, cudaStreamWaitEvent orders one stream after another's event,
// host functions and callbacks run in stream order on a thread other than the caller's, the legacy
// NULL stream waits for blocking streams (non-blocking ones are exempt) and blocking streams wait for
// it, event timing measures when the work ran, and a kernel fault is reported by the next synchronize.
// I/O contract: async_streams MODE, stdout key=value lines:
//   latch     launch_returned=1 query=<pending> event_query=<pending> after_query=<..> value=<42 expected>
//   overlap   query_b=<..> done=1 (a kernel on stream A waits for a flag stream B's kernel sets)
//   waitevent pending=<query of B before release> value=<2 expected>
//   callbacks order=<1,2,3,4> seen=<42> other_thread=<1> status=<cudaSuccess>
//   legacy    null_pending=<..> nonblocking_ran=1 legacy_waited=1 legacy_value=1 blocking_waited=1
//             blocking_value=7
//   elapsed   elapsed_ms=<float> (the host releases the kernel 200 ms after queueing it)
//   fault     launch=<..> sync=<..> after=<..>
//   perthread b_done=1 a_waiting=1 a_done=1 (two host threads' cudaStreamPerThread streams)
//   shortops  copy_held=1 memset_held=1 legacy_held=1 copy_value=5 memset_value=2139062143 legacy_value=0
//             (small copies and memsets, which an idle stream's caller may run itself, keep stream
//             order behind a spinning kernel and behind a blocking stream's work)
// Every wait in this program on the host side is bounded (10 s): "timeout=<what>" and exit 3.
#include "tf_test_io.h"

#include <chrono>
#include <cstring>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>

__global__ void spin_until(volatile unsigned *flag)
{
    while (flag[0] < 1) {
    }
}

__global__ void store(unsigned *p, unsigned v) { p[0] = v; }

__global__ void twice(const unsigned *in, unsigned *out) { out[0] = 2 * in[0]; }

__global__ void add_one(const unsigned *in, unsigned *out) { out[0] = in[0] + 1; }

__global__ void wait_then_store(volatile unsigned *flag, unsigned *out)
{
    while (flag[0] == 0) {
    }
    out[0] = 1;
}

__global__ void bad_store(unsigned *p) { p[threadIdx.x + (1u << 28)] = 1; }

static const char *name(cudaError_t e) { return cudaGetErrorName(e); }

// Polls until *p == want (10 s at most).
static bool host_wait(volatile unsigned *p, unsigned want)
{
    auto t0 = std::chrono::steady_clock::now();
    while (*p != want) {
        if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(10))
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

static int latch_mode()
{
    unsigned *latch, *host, *dev;
    CK(cudaMallocHost(&latch, sizeof(unsigned)));
    CK(cudaMallocHost(&host, 2 * sizeof(unsigned)));
    CK(cudaMalloc(&dev, 2 * sizeof(unsigned)));
    cudaStream_t s;
    cudaEvent_t ev;
    CK(cudaStreamCreate(&s));
    CK(cudaEventCreate(&ev));
    *latch = 0;
    host[0] = 41;
    spin_until<<<1, 1, 0, s>>>(latch); // must not run the kernel to completion here
    printf("launch_returned=1\n");
    fflush(stdout);
    // more work queued behind the spinning kernel, as UnifiedMemoryPerf does
    CK(cudaMemcpyAsync(dev, host, sizeof(unsigned), cudaMemcpyHostToDevice, s));
    add_one<<<1, 1, 0, s>>>(dev, dev + 1);
    CK(cudaEventRecord(ev, s));
    printf("query=%s\n", name(cudaStreamQuery(s)));
    printf("event_query=%s\n", name(cudaEventQuery(ev)));
    *latch = 1;
    CK(cudaStreamSynchronize(s));
    printf("after_query=%s\n", name(cudaStreamQuery(s)));
    printf("after_event_query=%s\n", name(cudaEventQuery(ev)));
    CK(cudaMemcpy(host + 1, dev + 1, sizeof(unsigned), cudaMemcpyDeviceToHost));
    printf("value=%u\n", host[1]);
    CK(cudaEventDestroy(ev));
    CK(cudaStreamDestroy(s));
    return 0;
}

static int overlap_mode()
{
    unsigned *flag, *out;
    CK(cudaMalloc(&flag, sizeof(unsigned)));
    CK(cudaMallocHost(&out, sizeof(unsigned)));
    CK(cudaMemset(flag, 0, sizeof(unsigned)));
    *out = 0;
    CK(cudaDeviceSynchronize());
    cudaStream_t a, b;
    CK(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
    wait_then_store<<<1, 1, 0, a>>>(flag, out); // finishes only if b's kernel runs meanwhile
    store<<<1, 1, 0, b>>>(flag, 1);
    // a query submits queued work where a driver batches it (WDDM, the client stub); it does not wait
    printf("query_b=%s\n", name(cudaStreamQuery(b)));
    if (!host_wait(out, 1)) {
        printf("timeout=overlap\n");
        fflush(stdout);
        _exit(3);
    }
    CK(cudaDeviceSynchronize());
    printf("done=%u\n", *out);
    return 0;
}

static int waitevent_mode()
{
    unsigned *latch, *buf, *out;
    CK(cudaMallocHost(&latch, sizeof(unsigned)));
    CK(cudaMallocHost(&out, sizeof(unsigned)));
    CK(cudaMalloc(&buf, sizeof(unsigned)));
    *latch = 0;
    *out = 0;
    cudaStream_t a, b;
    cudaEvent_t done_a;
    CK(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
    CK(cudaEventCreateWithFlags(&done_a, cudaEventDisableTiming));
    spin_until<<<1, 1, 0, a>>>(latch);
    store<<<1, 1, 0, a>>>(buf, 1);
    CK(cudaEventRecord(done_a, a));
    CK(cudaStreamWaitEvent(b, done_a, 0));
    twice<<<1, 1, 0, b>>>(buf, out); // reads buf only after a's store
    sleep_ms(100);
    printf("pending=%s\n", name(cudaStreamQuery(b)));
    printf("early_value=%u\n", *out);
    *latch = 1;
    CK(cudaStreamSynchronize(b));
    printf("value=%u\n", *out);
    return 0;
}

static pthread_t g_main;
static int g_order[8], g_n;
static unsigned g_seen;
static int g_other_thread = 1;
static cudaError_t g_status = cudaErrorUnknown;
static unsigned *g_mapped;

static void CUDART_CB host_fn(void *tag)
{
    if (pthread_equal(pthread_self(), g_main))
        g_other_thread = 0;
    if ((int)(intptr_t)tag == 2)
        g_seen = g_mapped[0]; // the kernel queued before it has run
    g_order[g_n++] = (int)(intptr_t)tag;
}

static void CUDART_CB callback(cudaStream_t, cudaError_t status, void *tag)
{
    g_status = status;
    host_fn(tag);
}

static int callbacks_mode()
{
    g_main = pthread_self();
    unsigned *latch;
    CK(cudaMallocHost(&latch, sizeof(unsigned)));
    CK(cudaMallocHost(&g_mapped, sizeof(unsigned)));
    *latch = 0;
    g_mapped[0] = 0;
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    spin_until<<<1, 1, 0, s>>>(latch);
    CK(cudaLaunchHostFunc(s, host_fn, (void *)1));
    store<<<1, 1, 0, s>>>(g_mapped, 42);
    CK(cudaLaunchHostFunc(s, host_fn, (void *)2));
    CK(cudaStreamAddCallback(s, callback, (void *)3, 0));
    CK(cudaLaunchHostFunc(s, host_fn, (void *)4));
    printf("ran_before_release=%d\n", g_n);
    *latch = 1;
    CK(cudaStreamSynchronize(s));
    std::string order;
    for (int i = 0; i < g_n; i++)
        order += (i ? "," : "") + std::to_string(g_order[i]);
    printf("order=%s\n", order.c_str());
    printf("seen=%u\n", g_seen);
    printf("other_thread=%d\n", g_other_thread);
    printf("status=%s\n", name(g_status));
    return 0;
}

static int legacy_mode()
{
    unsigned *latch, *vals;
    CK(cudaMallocHost(&latch, 2 * sizeof(unsigned)));
    CK(cudaMallocHost(&vals, 4 * sizeof(unsigned)));
    memset(latch, 0, 2 * sizeof(unsigned));
    memset(vals, 0, 4 * sizeof(unsigned));
    cudaStream_t blocking, nonblocking;
    CK(cudaStreamCreate(&blocking));
    CK(cudaStreamCreateWithFlags(&nonblocking, cudaStreamNonBlocking));
    // 1. the NULL stream waits for a blocking stream's earlier work; a non-blocking stream does not
    spin_until<<<1, 1, 0, blocking>>>(latch);
    store<<<1, 1, 0, 0>>>(vals, 1);
    store<<<1, 1, 0, nonblocking>>>(vals + 1, 1);
    (void)cudaStreamQuery(nonblocking); // submits batched work (see overlap_mode)
    printf("nonblocking_ran=%d\n", host_wait(vals + 1, 1) ? 1 : 0);
    printf("null_pending=%s\n", name(cudaStreamQuery(0)));
    printf("legacy_waited=%d\n", vals[0] == 0 ? 1 : 0);
    latch[0] = 1;
    CK(cudaDeviceSynchronize());
    printf("legacy_value=%u\n", vals[0]);
    // 2. a blocking stream waits for the NULL stream's earlier work
    spin_until<<<1, 1, 0, 0>>>(latch + 1);
    store<<<1, 1, 0, blocking>>>(vals + 2, 7);
    sleep_ms(100);
    printf("blocking_waited=%d\n", vals[2] == 0 ? 1 : 0);
    latch[1] = 1;
    CK(cudaStreamSynchronize(blocking));
    printf("blocking_value=%u\n", vals[2]);
    return 0;
}

static int elapsed_mode()
{
    unsigned *latch;
    CK(cudaMallocHost(&latch, sizeof(unsigned)));
    *latch = 0;
    cudaStream_t s;
    cudaEvent_t e0, e1;
    CK(cudaStreamCreate(&s));
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaEventRecord(e0, s));
    spin_until<<<1, 1, 0, s>>>(latch);
    CK(cudaEventRecord(e1, s));
    float ms = -1;
    printf("elapsed_pending=%s\n", name(cudaEventElapsedTime(&ms, e0, e1)));
    sleep_ms(200);
    *latch = 1;
    CK(cudaEventSynchronize(e1));
    CK(cudaEventElapsedTime(&ms, e0, e1));
    printf("elapsed_ms=%.3f\n", ms);
    return 0;
}

// Each host thread's cudaStreamPerThread is a stream of its own: thread B's work does not wait for
// thread A's spinning kernel.
static int perthread_mode()
{
    unsigned *latch, *vals;
    CK(cudaMallocHost(&latch, sizeof(unsigned)));
    CK(cudaMallocHost(&vals, 2 * sizeof(unsigned)));
    *latch = 0;
    vals[0] = vals[1] = 0;
    std::thread a([&] {
        spin_until<<<1, 1, 0, cudaStreamPerThread>>>(latch);
        store<<<1, 1, 0, cudaStreamPerThread>>>(vals, 1);
        CK(cudaStreamSynchronize(cudaStreamPerThread));
    });
    sleep_ms(50);
    std::thread b([&] {
        store<<<1, 1, 0, cudaStreamPerThread>>>(vals + 1, 1);
        CK(cudaStreamSynchronize(cudaStreamPerThread));
    });
    b.join();
    printf("b_done=%u\n", vals[1]);
    printf("a_waiting=%d\n", vals[0] == 0 ? 1 : 0);
    *latch = 1;
    a.join();
    printf("a_done=%u\n", vals[0]);
    return 0;
}

// Reads 4 bytes of device memory on a non-blocking stream (which waits for nothing else).
static unsigned peek(const unsigned *dev, cudaStream_t nb, unsigned *pinned)
{
    CK(cudaMemcpyAsync(pinned, dev, sizeof(unsigned), cudaMemcpyDeviceToHost, nb));
    CK(cudaStreamSynchronize(nb));
    return *pinned;
}

static int shortops_mode()
{
    unsigned *latch, *pinned, *dev;
    CK(cudaMallocHost(&latch, 2 * sizeof(unsigned)));
    CK(cudaMallocHost(&pinned, sizeof(unsigned)));
    CK(cudaMalloc(&dev, 4 * sizeof(unsigned)));
    unsigned init[4] = {5, 0, 0, 9};
    CK(cudaMemcpy(dev, init, sizeof init, cudaMemcpyHostToDevice));
    latch[0] = latch[1] = 0;
    cudaStream_t s, nb;
    CK(cudaStreamCreate(&s));
    CK(cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking));
    // 1. behind a spinning kernel on the same stream
    spin_until<<<1, 1, 0, s>>>(latch);
    CK(cudaMemcpyAsync(dev + 1, dev, sizeof(unsigned), cudaMemcpyDeviceToDevice, s));
    CK(cudaMemsetAsync(dev + 2, 0x7f, sizeof(unsigned), s));
    sleep_ms(50);
    printf("copy_held=%d\n", peek(dev + 1, nb, pinned) == 0 ? 1 : 0);
    printf("memset_held=%d\n", peek(dev + 2, nb, pinned) == 0 ? 1 : 0);
    latch[0] = 1;
    CK(cudaStreamSynchronize(s));
    printf("copy_value=%u\n", peek(dev + 1, nb, pinned));
    printf("memset_value=%u\n", peek(dev + 2, nb, pinned));
    // 2. a memset on the legacy NULL stream waits for a blocking stream's earlier kernel
    wait_then_store<<<1, 1, 0, s>>>(latch + 1, dev + 3);
    CK(cudaMemset(dev + 3, 0, sizeof(unsigned))); // device memory: returns before it runs
    sleep_ms(50);
    printf("legacy_held=%d\n", peek(dev + 3, nb, pinned) == 9 ? 1 : 0);
    latch[1] = 1;
    CK(cudaDeviceSynchronize());
    printf("legacy_value=%u\n", peek(dev + 3, nb, pinned));
    return 0;
}

static int fault_mode()
{
    unsigned *d;
    CK(cudaMalloc(&d, 64 * sizeof(unsigned)));
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    bad_store<<<1, 32, 0, s>>>(d);
    printf("launch=%s\n", name(cudaGetLastError()));
    printf("sync=%s\n", name(cudaStreamSynchronize(s)));
    printf("after=%s\n", name(cudaMemset(d, 0, 4)));
    return 0;
}

int main(int argc, char **argv)
{
    std::string mode = argc > 1 ? argv[1] : "latch";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (mode == "latch")
        return latch_mode();
    if (mode == "overlap")
        return overlap_mode();
    if (mode == "waitevent")
        return waitevent_mode();
    if (mode == "callbacks")
        return callbacks_mode();
    if (mode == "legacy")
        return legacy_mode();
    if (mode == "elapsed")
        return elapsed_mode();
    if (mode == "fault")
        return fault_mode();
    if (mode == "perthread")
        return perthread_mode();
    if (mode == "shortops")
        return shortops_mode();
    printf("usage: async_streams latch|overlap|waitevent|callbacks|legacy|elapsed|fault|perthread|shortops\n");
    return 2;
}
