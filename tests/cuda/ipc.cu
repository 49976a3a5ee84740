// ipc.cu - CUDA IPC between two processes, as NVIDIA's simpleIPC uses it: the parent exports a cudaMalloc
// buffer and an interprocess event, starts a copy of itself (fork + exec, so the child has its own CUDA
// state) that opens both, changes the buffer with a kernel and records the event; the parent then reads
// what the child wrote.
// I/O contract: no arguments (parent). stdout lines "key=value":
//   parent: same_handle=<1 if two cudaIpcGetMemHandle of one buffer give the same bytes>,
//           open_self=<error name opening its own handle>, get_offset=<error name of a handle for buf+256>,
//           close_not_opened=<error name of cudaIpcCloseMemHandle(own buffer)>,
//           event_no_ipc_flag=<error name of cudaIpcGetEventHandle on a timing event>,
//           open_bogus=<error name opening 64 zero bytes>, child_status=<exit status>,
//           parent_sees_child=<1 if every element is what the child's kernel wrote>,
//           open_freed=<error name a second child gets opening the handle of a freed buffer>
//   child:  child_open=<ok, or the error name of opening the parent's handle (then nothing else)>, child_same_ptr=<1 if opening twice gives one pointer>, child_saw_parent=<1 if the
//           data is the parent's>, child_free_delta=<bytes cudaMemGetInfo's free fell by when opening>,
//           child_close_again=<error name of a third close>, child_event=ok
// Environment: TF_TEST_CHILD_LEASE, if set, becomes the child's TF_LEASE (tf_test_child.h).
// Any unexpected CUDA failure prints "error=<cudaGetErrorName> at <call>" and exits 1.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#include "tf_test_child.h"

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("error=%s at %s\n", cudaGetErrorName(e_), #call); fflush(stdout); return 1; } } while (0)

static const int N = 1 << 18;

__global__ void fill(int *v, int n) { for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] = i; }
__global__ void add(int *v, int n, int k) { for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] += k; }

static int run_child(const char *self, const char *mode, const cudaIpcMemHandle_t &mh, const cudaIpcEventHandle_t &eh)
{
    char m[2 * sizeof mh + 1], e[2 * sizeof eh + 1];
    tf_hex(&mh, sizeof mh, m);
    tf_hex(&eh, sizeof eh, e);
    const char *args[] = {mode, m, e, NULL};
    return tf_run_copy(self, -1, args);
}

static int child(const char *mode, const char *mhex, const char *ehex)
{
    cudaIpcMemHandle_t mh;
    cudaIpcEventHandle_t eh;
    tf_unhex(mhex, &mh, sizeof mh);
    tf_unhex(ehex, &eh, sizeof eh);
    if (strcmp(mode, "child_stale") == 0) {
        void *p = NULL;
        CK(cudaFree(0));
        printf("open_freed=%s\n", cudaGetErrorName(cudaIpcOpenMemHandle(&p, mh, cudaIpcMemLazyEnablePeerAccess)));
        return 0;
    }
    size_t free0, free1, total;
    CK(cudaFree(0));
    CK(cudaMemGetInfo(&free0, &total));
    int *v = NULL, *v2 = NULL;
    cudaError_t opened = cudaIpcOpenMemHandle((void **)&v, mh, cudaIpcMemLazyEnablePeerAccess);
    printf("child_open=%s\n", opened == cudaSuccess ? "ok" : cudaGetErrorName(opened));
    if (opened != cudaSuccess) return 0;
    CK(cudaMemGetInfo(&free1, &total));
    CK(cudaIpcOpenMemHandle((void **)&v2, mh, cudaIpcMemLazyEnablePeerAccess));
    printf("child_same_ptr=%d\n", v == v2);
    printf("child_free_delta=%lld\n", (long long)free0 - (long long)free1);
    int *h = (int *)malloc(N * sizeof(int));
    CK(cudaMemcpy(h, v, N * sizeof(int), cudaMemcpyDeviceToHost));
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= h[i] == i;
    printf("child_saw_parent=%d\n", ok);
    cudaEvent_t ev;
    cudaStream_t s;
    CK(cudaIpcOpenEventHandle(&ev, eh));
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    add<<<64, 256, 0, s>>>(v, N, 1000);
    CK(cudaGetLastError());
    CK(cudaEventRecord(ev, s));
    CK(cudaEventSynchronize(ev));
    printf("child_event=ok\n");
    CK(cudaIpcCloseMemHandle(v2));
    CK(cudaIpcCloseMemHandle(v));
    printf("child_close_again=%s\n", cudaGetErrorName(cudaIpcCloseMemHandle(v)));
    CK(cudaEventDestroy(ev));
    CK(cudaStreamDestroy(s));
    free(h);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4) return child(argv[1], argv[2], argv[3]);
    int *buf;
    CK(cudaMalloc(&buf, N * sizeof(int)));
    fill<<<64, 256>>>(buf, N);
    CK(cudaDeviceSynchronize());
    cudaIpcMemHandle_t mh, mh2, bogus;
    CK(cudaIpcGetMemHandle(&mh, buf));
    CK(cudaIpcGetMemHandle(&mh2, buf));
    printf("same_handle=%d\n", memcmp(&mh, &mh2, sizeof mh) == 0);
    void *p = NULL;
    printf("open_self=%s\n", cudaGetErrorName(cudaIpcOpenMemHandle(&p, mh, cudaIpcMemLazyEnablePeerAccess)));
    printf("get_offset=%s\n", cudaGetErrorName(cudaIpcGetMemHandle(&mh2, (char *)buf + 256)));
    printf("close_not_opened=%s\n", cudaGetErrorName(cudaIpcCloseMemHandle(buf)));
    memset(&bogus, 0, sizeof bogus);
    printf("open_bogus=%s\n", cudaGetErrorName(cudaIpcOpenMemHandle(&p, bogus, cudaIpcMemLazyEnablePeerAccess)));
    cudaEvent_t timing, ipc_ev;
    cudaIpcEventHandle_t eh;
    CK(cudaEventCreate(&timing));
    printf("event_no_ipc_flag=%s\n", cudaGetErrorName(cudaIpcGetEventHandle(&eh, timing)));
    CK(cudaEventCreateWithFlags(&ipc_ev, cudaEventDisableTiming | cudaEventInterprocess));
    CK(cudaIpcGetEventHandle(&eh, ipc_ev));
    printf("child_status=%d\n", run_child(argv[0], "child", mh, eh));
    CK(cudaEventSynchronize(ipc_ev));
    int *h = (int *)malloc(N * sizeof(int));
    CK(cudaMemcpy(h, buf, N * sizeof(int), cudaMemcpyDeviceToHost));
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= h[i] == i + 1000;
    printf("parent_sees_child=%d\n", ok);
    CK(cudaFree(buf));
    int stale = run_child(argv[0], "child_stale", mh, eh);
    if (stale) printf("stale_child_status=%d\n", stale);
    CK(cudaEventDestroy(ipc_ev));
    CK(cudaEventDestroy(timing));
    free(h);
    return 0;
}
