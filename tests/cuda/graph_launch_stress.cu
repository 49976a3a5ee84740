// graph_launch_stress.cu - repeats, ROUNDS times in one process: reset a counter, launch a captured graph
// (NODES kernel nodes, each atomicAdd 1 into the counter) N times on each of STREAMS non-blocking streams
// (one counter per stream), cudaStreamSynchronize each stream, copy the counters back, compare with
// NODES * N. A round whose counter is short is a lost launch (or a reset that ran after launches).
// I/O contract: graph_launch_stress ROUNDS N NODES STREAMS RESET [KIND], where RESET is
//   "async"  - cudaMemsetAsync on the stream itself (ordered before the launches: the counter must be exact),
//   "legacy" - cudaMemset, i.e. the legacy NULL stream, which a cudaStreamNonBlocking stream does not wait
//              for (CUDA: "API synchronization behavior" - a memset of device memory is asynchronous with
//              respect to the host), so the reset may land after some of the launches: a racy program with
//              KIND nonblocking (kept to reproduce the race by hand), exact with KIND blocking (a blocking
//              stream's work waits for the NULL stream's);
//   "legacy_sync" - cudaMemset then cudaDeviceSynchronize (ordered by the host);
// and KIND is the streams' kind: "nonblocking" (default), "blocking" (cudaStreamDefault) or "perthread"
// (cudaStreamPerThread, STREAMS must be 1).
// Prints "rounds=<R> bad=<rounds with a wrong counter> first_bad=<round>:<value> want=<NODES*N>".
#include <cstring>

#include "tf_test_io.h"

__global__ void bump(int *p) { atomicAdd(p, 1); }

int main(int argc, char **argv)
{
    if (argc < 6) {
        printf("usage: graph_launch_stress ROUNDS N NODES STREAMS async|legacy|legacy_sync "
               "[nonblocking|blocking|perthread]\n");
        return 2;
    }
    int rounds = atoi(argv[1]), n = atoi(argv[2]), nodes = atoi(argv[3]), ns = atoi(argv[4]);
    const char *reset = argv[5], *kind = argc > 6 ? argv[6] : "nonblocking";
    int perthread = !strcmp(kind, "perthread");
    if (ns < 1 || ns > 8 || nodes < 1 || (perthread && ns != 1)) {
        printf("error=bad_args\n");
        return 2;
    }
    int *d;
    CK(cudaMalloc(&d, ns * sizeof(int)));
    cudaStream_t s[8];
    cudaGraphExec_t x[8];
    for (int k = 0; k < ns; k++) {
        if (perthread)
            s[k] = cudaStreamPerThread;
        else
            CK(cudaStreamCreateWithFlags(&s[k], strcmp(kind, "blocking") ? cudaStreamNonBlocking : cudaStreamDefault));
        CK(cudaStreamBeginCapture(s[k], cudaStreamCaptureModeGlobal));
        for (int i = 0; i < nodes; i++)
            bump<<<1, 1, 0, s[k]>>>(d + k);
        cudaGraph_t g;
        CK(cudaStreamEndCapture(s[k], &g));
        CK(cudaGraphInstantiate(&x[k], g, 0));
        CK(cudaGraphDestroy(g));
    }
    int bad = 0, first_round = -1, first_val = 0;
    for (int r = 0; r < rounds; r++) {
        if (!strcmp(reset, "async")) {
            for (int k = 0; k < ns; k++)
                CK(cudaMemsetAsync(d + k, 0, sizeof(int), s[k]));
        } else {
            CK(cudaMemset(d, 0, ns * sizeof(int)));
            if (!strcmp(reset, "legacy_sync"))
                CK(cudaDeviceSynchronize());
        }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < ns; k++)
                CK(cudaGraphLaunch(x[k], s[k]));
        for (int k = 0; k < ns; k++)
            CK(cudaStreamSynchronize(s[k]));
        int got[8];
        CK(cudaMemcpy(got, d, ns * sizeof(int), cudaMemcpyDeviceToHost));
        for (int k = 0; k < ns; k++)
            if (got[k] != nodes * n) {
                if (first_round < 0) {
                    first_round = r;
                    first_val = got[k];
                }
                bad++;
                break;
            }
    }
    printf("rounds=%d\nbad=%d\nfirst_bad=%d:%d\nwant=%d\n", rounds, bad, first_round, first_val, nodes * n);
    return 0;
}
