// host_calls.cu - host functions and stream callbacks (cudaLaunchHostFunc, cudaStreamAddCallback) as CUDA
// specifies them: the call returns at once, the function runs after the stream's earlier work, the
// stream's later work waits until it returned, and one stream's functions run in the order queued.
// I/O contract: host_calls MODE, stdout key=value lines:
//   order N     streams=3 count=<3*N*2 expected> in_order=<1> other_thread=<1> (kernels, host functions and
//               callbacks interleaved on three streams, N rounds)
//   waits       waited=<1> (a kernel queued after a host function that sleeps 200 ms reads what it wrote)
//   blocking    fn_ran=<1> value=<7> (a blocking cudaMemcpy on the legacy stream right after a sleeping host
//               function on a blocking stream: the copy waits for it)
//   graph       ran_before_release=<0> ran=<2> other_thread=<1> (a captured graph: a kernel spinning on a host
//               flag, then a host node; cudaGraphLaunch returns while the kernel spins)
//   bad         null_fn=<cudaErrorInvalidValue> null_callback=<..InvalidValue> flags=<..InvalidValue> (flags != 0)
//               sync=<cudaSuccess> refused_ran=<0>
//   hang        prints returned=1 (cudaLaunchHostFunc returned) and in_callback=1 (the function runs, never
//               to return), in either order, then blocks in cudaStreamSynchronize (the test kills it there)
// Every wait on the host side is bounded (10 s): "timeout=<what>" and exit 3.
#include "tf_test_io.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <pthread.h>
#include <thread>
#include <unistd.h>

__global__ void store(unsigned *p, unsigned v) { p[0] = v; }

__global__ void copy_word(const volatile unsigned *in, unsigned *out) { out[0] = in[0]; }

static void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

static pthread_t g_main;
static std::atomic<int> g_other_thread{1};

static void note_thread()
{
    if (pthread_equal(pthread_self(), g_main))
        g_other_thread = 0;
}

// ---------------------------------------------------------------------------------------------- order
enum { NSTREAMS = 3, MAXROUNDS = 1000 };
static int g_seq[NSTREAMS][2 * MAXROUNDS];
static std::atomic<int> g_len[NSTREAMS];
static std::atomic<int> g_count{0};

static void CUDART_CB record(void *tag)
{
    note_thread();
    uintptr_t t = (uintptr_t)tag;
    int s = (int)(t >> 32), v = (int)(t & 0xffffffffu);
    g_seq[s][g_len[s]++] = v;
    g_count++;
}

static void CUDART_CB record_cb(cudaStream_t, cudaError_t status, void *tag)
{
    if (status != cudaSuccess)
        printf("callback_status=%s\n", cudaGetErrorName(status));
    record(tag);
}

static int order_mode(int rounds)
{
    if (rounds < 1 || rounds > MAXROUNDS)
        return 2;
    cudaStream_t s[NSTREAMS];
    unsigned *dev;
    CK(cudaMalloc(&dev, NSTREAMS * sizeof(unsigned)));
    for (int k = 0; k < NSTREAMS; k++)
        CK(cudaStreamCreate(&s[k]));
    for (int i = 0; i < rounds; i++) {
        for (int k = 0; k < NSTREAMS; k++) {
            store<<<1, 1, 0, s[k]>>>(dev + k, i);
            CK(cudaLaunchHostFunc(s[k], record, (void *)(((uintptr_t)k << 32) | (uintptr_t)(2 * i))));
            CK(cudaStreamAddCallback(s[k], record_cb, (void *)(((uintptr_t)k << 32) | (uintptr_t)(2 * i + 1)), 0));
        }
    }
    for (int k = 0; k < NSTREAMS; k++)
        CK(cudaStreamSynchronize(s[k]));
    int in_order = 1;
    for (int k = 0; k < NSTREAMS; k++) {
        if (g_len[k] != 2 * rounds)
            in_order = 0;
        for (int j = 0; j < g_len[k]; j++)
            if (g_seq[k][j] != j)
                in_order = 0;
    }
    printf("streams=%d\ncount=%d\nin_order=%d\nother_thread=%d\n", NSTREAMS, g_count.load(), in_order,
           g_other_thread.load());
    return 0;
}

// ---------------------------------------------------------------------------------------------- waits
static unsigned *g_flag;

static void CUDART_CB slow_then_set(void *)
{
    note_thread();
    sleep_ms(200);
    g_flag[0] = 1;
}

static int waits_mode()
{
    unsigned *out;
    CK(cudaMallocHost(&g_flag, sizeof(unsigned)));
    CK(cudaMallocHost(&out, sizeof(unsigned)));
    g_flag[0] = 0;
    out[0] = 99;
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    CK(cudaLaunchHostFunc(s, slow_then_set, nullptr));
    copy_word<<<1, 1, 0, s>>>(g_flag, out); // runs only after the function returned
    CK(cudaStreamSynchronize(s));
    printf("waited=%u\n", out[0]);
    return 0;
}

// ------------------------------------------------------------------------------------------- blocking
static std::atomic<int> g_fn_ran{0};

static void CUDART_CB slow_mark(void *)
{
    sleep_ms(200);
    g_fn_ran = 1;
}

static int blocking_mode()
{
    unsigned *dev, host = 0;
    CK(cudaMalloc(&dev, sizeof(unsigned)));
    cudaStream_t s;
    CK(cudaStreamCreate(&s)); // blocking: the legacy stream waits for its work
    store<<<1, 1, 0, s>>>(dev, 7);
    CK(cudaLaunchHostFunc(s, slow_mark, nullptr));
    CK(cudaMemcpy(&host, dev, sizeof host, cudaMemcpyDeviceToHost));
    printf("fn_ran=%d\nvalue=%u\n", g_fn_ran.load(), host);
    return 0;
}

// ---------------------------------------------------------------------------------------------- graph
__global__ void spin_until(volatile unsigned *flag)
{
    while (flag[0] < 1) {
    }
}

static std::atomic<int> g_node_ran{0};

static void CUDART_CB node_fn(void *)
{
    note_thread();
    g_node_ran++;
}

static int graph_mode()
{
    unsigned *latch;
    CK(cudaMallocHost(&latch, sizeof(unsigned)));
    latch[0] = 0;
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    cudaGraph_t g;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    spin_until<<<1, 1, 0, s>>>(latch);
    CK(cudaLaunchHostFunc(s, node_fn, nullptr)); // a host node
    CK(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t e;
    CK(cudaGraphInstantiate(&e, g, 0));
    CK(cudaGraphLaunch(e, s)); // returns with the kernel spinning: the host node has not run
    printf("ran_before_release=%d\n", g_node_ran.load());
    latch[0] = 1;
    CK(cudaStreamSynchronize(s));
    CK(cudaGraphLaunch(e, s));
    CK(cudaStreamSynchronize(s));
    printf("ran=%d\nother_thread=%d\n", g_node_ran.load(), g_other_thread.load());
    return 0;
}

// ------------------------------------------------------------------------------------------------ bad
static std::atomic<int> g_refused_ran{0};
static void CUDART_CB refused_cb(cudaStream_t, cudaError_t, void *) { g_refused_ran = 1; }

static int bad_mode()
{
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    printf("null_fn=%s\n", cudaGetErrorName(cudaLaunchHostFunc(s, nullptr, nullptr)));
    printf("null_callback=%s\n", cudaGetErrorName(cudaStreamAddCallback(s, nullptr, nullptr, 0)));
    printf("flags=%s\n", cudaGetErrorName(cudaStreamAddCallback(s, refused_cb, nullptr, 1)));
    (void)cudaGetLastError();
    printf("sync=%s\n", cudaGetErrorName(cudaStreamSynchronize(s))); // the stream is unharmed
    printf("refused_ran=%d\n", g_refused_ran.load());
    return 0;
}

// ----------------------------------------------------------------------------------------------- hang
static void CUDART_CB never_returns(void *)
{
    printf("in_callback=1\n");
    fflush(stdout);
    for (;;)
        sleep_ms(1000);
}

static int hang_mode()
{
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    CK(cudaLaunchHostFunc(s, never_returns, nullptr));
    printf("returned=1\n"); // the call did not wait for the function
    fflush(stdout);
    CK(cudaStreamSynchronize(s));
    printf("timeout=hang\n");
    return 3;
}

int main(int argc, char **argv)
{
    g_main = pthread_self();
    if (argc < 2) {
        printf("usage: host_calls order N|waits|blocking|graph|bad|hang\n");
        return 2;
    }
    if (!strcmp(argv[1], "order") && argc > 2)
        return order_mode(atoi(argv[2]));
    if (!strcmp(argv[1], "waits"))
        return waits_mode();
    if (!strcmp(argv[1], "blocking"))
        return blocking_mode();
    if (!strcmp(argv[1], "graph"))
        return graph_mode();
    if (!strcmp(argv[1], "bad"))
        return bad_mode();
    if (!strcmp(argv[1], "hang"))
        return hang_mode();
    printf("usage: host_calls order N|waits|blocking|graph|bad|hang\n");
    return 2;
}
