// ptds_threads.cu - cudaStreamPerThread is each host thread's own stream: two threads ask its id, flags and
// state, and both capture it into a graph at the same time (thread-local capture mode), launch their graph
// on it and synchronize it.
// I/O contract: ptds_threads, stdout key=value lines:
//   ids_differ=<1> (the two threads' per-thread streams have different ids, neither the legacy stream's)
//   flags=<0,0> query=<cudaSuccess,cudaSuccess> capture=<cudaSuccess,cudaSuccess> nodes=<1,1> values=<11,22>
#include "tf_test_io.h"

#include <pthread.h>
#include <string>
#include <thread>

__global__ void store(unsigned *p, unsigned v) { p[0] = v; }

static pthread_barrier_t g_bar;

struct Result {
    unsigned long long id = 0;
    unsigned flags = 99;
    cudaError_t query = cudaErrorUnknown, capture = cudaErrorUnknown;
    size_t nodes = 0;
    unsigned value = 0;
};

static void worker(unsigned *dev, unsigned v, Result *r)
{
    cudaStream_t s = cudaStreamPerThread;
    CK(cudaStreamGetId(s, &r->id));
    CK(cudaStreamGetFlags(s, &r->flags));
    r->query = cudaStreamQuery(s);
    pthread_barrier_wait(&g_bar);
    // both threads capture their own per-thread stream at once
    cudaError_t begun = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    pthread_barrier_wait(&g_bar);
    cudaGraph_t g = nullptr;
    if (begun == cudaSuccess) {
        store<<<1, 1, 0, s>>>(dev, v);
        pthread_barrier_wait(&g_bar);
        r->capture = cudaStreamEndCapture(s, &g);
    } else {
        pthread_barrier_wait(&g_bar);
        r->capture = begun;
    }
    if (r->capture != cudaSuccess)
        return;
    CK(cudaGraphGetNodes(g, nullptr, &r->nodes));
    cudaGraphExec_t e;
    CK(cudaGraphInstantiate(&e, g, 0));
    CK(cudaGraphLaunch(e, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaMemcpyAsync(&r->value, dev, sizeof(unsigned), cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaGraphExecDestroy(e));
    CK(cudaGraphDestroy(g));
}

int main()
{
    unsigned *dev;
    CK(cudaMalloc(&dev, 2 * sizeof(unsigned)));
    CK(cudaMemset(dev, 0, 2 * sizeof(unsigned)));
    unsigned long long legacy_id = 0;
    CK(cudaStreamGetId(cudaStreamLegacy, &legacy_id));
    pthread_barrier_init(&g_bar, nullptr, 2);
    Result a, b;
    std::thread ta(worker, dev, 11u, &a), tb(worker, dev + 1, 22u, &b);
    ta.join();
    tb.join();
    printf("ids_differ=%d\n", a.id != b.id && a.id != legacy_id && b.id != legacy_id ? 1 : 0);
    printf("flags=%u,%u\n", a.flags, b.flags);
    printf("query=%s,%s\n", cudaGetErrorName(a.query), cudaGetErrorName(b.query));
    printf("capture=%s,%s\n", cudaGetErrorName(a.capture), cudaGetErrorName(b.capture));
    printf("nodes=%zu,%zu\n", a.nodes, b.nodes);
    printf("values=%u,%u\n", a.value, b.value);
    return 0;
}
