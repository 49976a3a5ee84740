// ipc_event_order.cu - an interprocess event orders work across processes, as NVIDIA's simpleIPC relies on:
// the parent exports a buffer and an interprocess event and starts a copy of itself (fork + exec); the child
// opens both, queues a slow kernel that writes the buffer, records the event after it and tells the parent
// (a byte on a pipe) while the kernel still runs; the parent's stream then waits for the event and copies the
// buffer: it must see the child's values. cudaEventQuery before the child's record completes says not ready.
// I/O contract: no arguments (parent). stdout "key=value":
//   parent: query_while_child_runs=<error name of cudaEventQuery right after the child's record was issued>,
//           waited_copy_ok=<1 if the copy ordered after the event saw every value the child wrote>,
//           sync_ok=<1 if cudaEventSynchronize returned and a query then says cudaSuccess>, child_status=<exit>
// Any unexpected CUDA failure prints "error=<cudaGetErrorName> at <call>" and exits 1.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("error=%s at %s\n", cudaGetErrorName(e_), #call); fflush(stdout); return 1; } } while (0)

static const int N = 1 << 16;

// Spins about `cycles` clock ticks, then writes v[i] = i + 7 (the parent's buffer holds zeros before).
__global__ void slow_fill(int *v, int n, long long cycles)
{
    if (threadIdx.x == 0) {
        long long t0 = clock64();
        while (clock64() - t0 < cycles) {
        }
    }
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        v[i] = i + 7;
}

static int child(int wfd, const char *hex)
{
    cudaIpcMemHandle_t mh;
    cudaIpcEventHandle_t eh;
    unsigned char raw[sizeof mh + sizeof eh];
    for (size_t i = 0; i < sizeof raw; i++)
        sscanf(hex + 2 * i, "%2hhx", &raw[i]);
    memcpy(&mh, raw, sizeof mh);
    memcpy(&eh, raw + sizeof mh, sizeof eh);
    int *buf;
    cudaEvent_t ev;
    CK(cudaIpcOpenMemHandle((void **)&buf, mh, cudaIpcMemLazyEnablePeerAccess));
    CK(cudaIpcOpenEventHandle(&ev, eh));
    int clock_khz = 0;
    CK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    slow_fill<<<4, 128, 0, s>>>(buf, N, (long long)clock_khz * 1500); // ~1.5 s
    CK(cudaGetLastError());
    CK(cudaEventRecord(ev, s));
    char b = 'r';
    if (write(wfd, &b, 1) != 1)
        return 1;
    CK(cudaStreamSynchronize(s));
    CK(cudaEventDestroy(ev));
    CK(cudaIpcCloseMemHandle(buf));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--child"))
        return child(atoi(argv[2]), argv[3]);
    int *buf;
    CK(cudaMalloc(&buf, N * sizeof(int)));
    CK(cudaMemset(buf, 0, N * sizeof(int)));
    CK(cudaDeviceSynchronize());
    cudaEvent_t ev;
    CK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming | cudaEventInterprocess));
    cudaIpcMemHandle_t mh;
    cudaIpcEventHandle_t eh;
    CK(cudaIpcGetMemHandle(&mh, buf));
    CK(cudaIpcGetEventHandle(&eh, ev));
    unsigned char raw[sizeof mh + sizeof eh];
    memcpy(raw, &mh, sizeof mh);
    memcpy(raw + sizeof mh, &eh, sizeof eh);
    char hex[2 * sizeof raw + 1];
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    int p[2];
    if (pipe(p) != 0)
        return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", p[1]);
        execl("/proc/self/exe", argv[0], "--child", fd, hex, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char b = 0;
    if (read(p[0], &b, 1) != 1) { // the child's record is issued; its kernel still spins
        printf("error=child_died_before_record\n");
        return 1;
    }
    printf("query_while_child_runs=%s\n", cudaGetErrorName(cudaEventQuery(ev)));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    std::vector<int> host(N, -1);
    CK(cudaStreamWaitEvent(s, ev, 0));
    CK(cudaMemcpyAsync(host.data(), buf, N * sizeof(int), cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= host[i] == i + 7;
    printf("waited_copy_ok=%d\n", ok);
    CK(cudaEventSynchronize(ev));
    printf("sync_ok=%d\n", cudaEventQuery(ev) == cudaSuccess);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    CK(cudaEventDestroy(ev));
    CK(cudaFree(buf));
    return 0;
}
