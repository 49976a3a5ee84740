// dp_bench.cu - data-path micro-benchmarks (driver API, -lcuda), driven by benchmarks/bench_datapath.py.
// Run against the client stub or directly against a backend libcuda, plus raw-socket baselines that
// touch no CUDA at all, so ratios are measured side by side in the same run. The raw baselines' reads
// spin before blocking as the data plane's do (include/tf_spin_wait.h, TF_SPIN_US).
// Usage / output (one line "key=value ..." each):
//   dp_bench launch N           empty-kernel cuLaunchKernel x N, then one sync: enqueue_per_s, total_per_s
//   dp_bench sync N             N x cuCtxSynchronize (an empty round trip): p50_us, p99_us
//   dp_bench copy MIB REPS      cuMemcpyHtoD / DtoH of MIB MiB, REPS times: h2d_gbs, d2h_gbs
//   dp_bench raw-pingpong N     16-byte ping-pong over a Unix socketpair between two processes: p50_us, p99_us
//   dp_bench raw-stream MIB REPS  MIB MiB one way over a Unix socketpair in 8 MiB writes, read into a
//                               MIB MiB destination (as a copy lands in a buffer of its size): gbs
// Sizes in KiB (benchmarks/run), each op waited for as a synchronous copy is:
//   dp_bench copyk KIB REPS     cuMemcpyHtoD / DtoH / DtoD of KIB KiB: h2d_gbs d2h_gbs d2d_gbs h2d_us d2h_us
//   dp_bench copykinds KIB REPS one synchronous copy of KIB KiB of each kind, microseconds: h2d_us (1D),
//                               h2d2d_us d2h2d_us (cuMemcpy2D, 256-byte rows, host and device pitches wider),
//                               h2d3d_us d2h3d_us (cuMemcpy3D, 4 slices), htoa_us atoh_us (1D array),
//                               h2a2d_us a2h2d_us (cuMemcpy2D with a 2D array)
//   dp_bench raw-streamk KIB REPS / raw-tcp-streamk KIB REPS
//                               KIB KiB one way then a 1-byte answer, over a Unix socketpair / a TCP
//                               connection on 127.0.0.1 (TCP_NODELAY): gbs us
//   dp_bench raw-tcp-pingpong N 16-byte ping-pong over TCP on 127.0.0.1 (TCP_NODELAY): p50_us p99_us p999_us
//   dp_bench memcpyk KIB REPS   host memcpy of KIB KiB between two touched buffers: gbs us
//   dp_bench pinnedk KIB REPS   copies of KIB KiB with page-locked memory (cuMemAllocHost), microseconds:
//                               h2d_us d2h_us (synchronous), d2h_async_us (cuMemcpyDtoHAsync on a stream, then
//                               cuStreamSynchronize)
//   dp_bench pinnedasync KIB REPS  the last of those alone (d2h_async_us; the others print 0): a process's CPU
//                               time over REPS is what one such copy + synchronize costs
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../include/tf_spin_wait.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void pct(const char *what, double *v, int n)
{
    qsort(v, n, sizeof *v, cmp);
    printf("%s p50_us=%.2f p99_us=%.2f p999_us=%.2f\n", what, v[n / 2] * 1e6, v[(int)(n * 0.99)] * 1e6,
           v[(int)(n * 0.999)] * 1e6);
}

#define CK(call)                                                        \
    do {                                                                \
        CUresult r_ = (call);                                           \
        if (r_) { printf("FAIL %s: %d\n", #call, (int)r_); exit(1); }   \
    } while (0)

static void setup(void)
{
    CUdevice d;
    CUcontext c;
    CK(cuInit(0));
    CK(cuDeviceGet(&d, 0));
    CK(cuDevicePrimaryCtxRetain(&c, d));
    CK(cuCtxSetCurrent(c));
}

static const char ptx[] = ".version 7.0\n.target sm_80\n.address_size 64\n.visible .entry nop()\n{\n  ret;\n}\n";

static int launch(int n)
{
    setup();
    CUmodule m;
    CUfunction f;
    CK(cuModuleLoadData(&m, ptx));
    CK(cuModuleGetFunction(&f, m, "nop"));
    for (int i = 0; i < 100; i++) CK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, 0, NULL, NULL));
    CK(cuCtxSynchronize());
    double t0 = now();
    for (int i = 0; i < n; i++) CK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, 0, NULL, NULL));
    double t1 = now();
    CK(cuCtxSynchronize());
    double t2 = now();
    printf("launch n=%d enqueue_per_s=%.0f total_per_s=%.0f\n", n, n / (t1 - t0), n / (t2 - t0));
    return 0;
}

static int sync_rt(int n)
{
    setup();
    double *v = (double *)malloc(n * sizeof *v);
    for (int i = 0; i < 200; i++) CK(cuCtxSynchronize());
    for (int i = 0; i < n; i++) {
        double t = now();
        CK(cuCtxSynchronize());
        v[i] = now() - t;
    }
    pct("sync", v, n);
    return 0;
}

static int copy(size_t mib, int reps)
{
    setup();
    size_t n = mib << 20;
    CUdeviceptr d;
    CK(cuMemAlloc(&d, n));
    char *h = (char *)malloc(n);
    memset(h, 1, n);
    CK(cuMemcpyHtoD(d, h, n));
    CK(cuMemcpyDtoH(h, d, n));
    double t0 = now();
    for (int i = 0; i < reps; i++) CK(cuMemcpyHtoD(d, h, n));
    double t1 = now();
    for (int i = 0; i < reps; i++) CK(cuMemcpyDtoH(h, d, n));
    double t2 = now();
    printf("copy mib=%zu h2d_gbs=%.3f d2h_gbs=%.3f\n", mib, (double)n * reps / (t1 - t0) / 1e9,
           (double)n * reps / (t2 - t1) / 1e9);
    return 0;
}

static int copyk(size_t kib, int reps)
{
    setup();
    size_t n = kib << 10;
    CUdeviceptr d, d2;
    CK(cuMemAlloc(&d, n));
    CK(cuMemAlloc(&d2, n));
    char *h = (char *)malloc(n);
    if (!h) { printf("FAIL malloc %zu\n", n); return 1; }
    memset(h, 1, n);
    CK(cuMemcpyHtoD(d, h, n));
    CK(cuMemcpyDtoH(h, d, n));
    CK(cuMemcpyDtoD(d2, d, n));
    CK(cuCtxSynchronize());
    double t0 = now();
    for (int i = 0; i < reps; i++) CK(cuMemcpyHtoD(d, h, n));
    double t1 = now();
    for (int i = 0; i < reps; i++) CK(cuMemcpyDtoH(h, d, n));
    double t2 = now();
    for (int i = 0; i < reps; i++) CK(cuMemcpyDtoD(d2, d, n));
    CK(cuCtxSynchronize());
    double t3 = now();
    double b = (double)n * reps;
    printf("copyk kib=%zu h2d_gbs=%.4f d2h_gbs=%.4f d2d_gbs=%.4f h2d_us=%.3f d2h_us=%.3f\n", kib, b / (t1 - t0) / 1e9,
           b / (t2 - t1) / 1e9, b / (t3 - t2) / 1e9, (t1 - t0) / reps * 1e6, (t2 - t1) / reps * 1e6);
    return 0;
}

static int memcpyk(size_t kib, int reps)
{
    size_t n = kib << 10;
    char *a = (char *)malloc(n), *b = (char *)malloc(n);
    if (!a || !b) { printf("FAIL malloc %zu\n", n); return 1; }
    memset(a, 1, n);
    memset(b, 2, n);
    memcpy(b, a, n);
    double t0 = now();
    for (int i = 0; i < reps; i++) {
        a[i % n] = (char)i;             /* the copy cannot be hoisted out of the loop */
        memcpy(b, a, n);
    }
    double t1 = now();
    printf("memcpyk kib=%zu gbs=%.4f us=%.3f check=%d\n", kib, (double)n * reps / (t1 - t0) / 1e9,
           (t1 - t0) / reps * 1e6, b[(reps - 1) % n]);
    return 0;
}

/* A connected TCP pair on 127.0.0.1 (as the stub's tcp: transport uses), TCP_NODELAY on both ends. */
static int tcp_pair(int sv[2])
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len)) {
        close(l);
        return -1;
    }
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof a)) { close(l); return -1; }
    sv[1] = accept(l, NULL, NULL);
    close(l);
    if (sv[1] < 0) return -1;
    if (setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
        setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one))
        return -1;
    return 0;
}

/* Reads spin briefly before they block, as both ends of the data plane do (TF_SPIN_US, tf_spin_wait.h):
 * the raw baselines pay the same wake-up costs as the stack, no more. */
static int full_io(int fd, void *p, size_t n, int wr)
{
    char *c = (char *)p;
    while (n) {
        if (!wr) tf_spin_wait_readable(fd);
        ssize_t k = wr ? write(fd, c, n) : read(fd, c, n);
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int raw_pingpong(int n, int tcp)
{
    int sv[2];
    if (tcp ? tcp_pair(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
    pid_t pid = fork();
    char m[16] = {0};
    if (pid == 0) {
        close(sv[0]);
        while (full_io(sv[1], m, 16, 0) == 0 && full_io(sv[1], m, 16, 1) == 0) {}
        _exit(0);
    }
    close(sv[1]);
    double *v = (double *)malloc(n * sizeof *v);
    for (int i = 0; i < n + 200; i++) {
        double t = now();
        if (full_io(sv[0], m, 16, 1) || full_io(sv[0], m, 16, 0)) return 1;
        if (i >= 200) v[i - 200] = now() - t;
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    pct(tcp ? "raw-tcp-pingpong" : "raw-pingpong", v, n);
    return 0;
}

/* n bytes one way in 8 MiB writes, then a 1-byte answer, reps + 1 times (the first warms up) between two
 * processes over a Unix socketpair or a TCP pair: *secs is the time of the last reps. */
static int stream_one_way(size_t n, int reps, int tcp, double *secs)
{
    int sv[2];
    if (tcp ? tcp_pair(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
    size_t chunk = 8u << 20;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char *b = (char *)malloc(n);
        if (!b) _exit(1);
        memset(b, 0, n);
        for (int r = 0; r < reps + 1; r++) {
            for (size_t got = 0; got < n;) {
                size_t want = n - got < chunk ? n - got : chunk;
                if (full_io(sv[1], b + got, want, 0)) _exit(1);
                got += want;
            }
            if (full_io(sv[1], b, 1, 1)) _exit(1);
        }
        _exit(0);
    }
    close(sv[1]);
    char *h = (char *)malloc(n);
    if (!h) return 1;
    memset(h, 1, n);
    double t0 = 0;
    for (int r = 0; r < reps + 1; r++) {
        if (r == 1) t0 = now();
        for (size_t off = 0; off < n; off += chunk)
            if (full_io(sv[0], h + off, n - off < chunk ? n - off : chunk, 1)) return 1;
        char ack;
        if (full_io(sv[0], &ack, 1, 0)) return 1;
    }
    *secs = now() - t0;
    close(sv[0]);
    waitpid(pid, NULL, 0);
    free(h);
    return 0;
}

static int raw_stream(size_t mib, int reps)
{
    double secs;
    if (stream_one_way(mib << 20, reps, 0, &secs)) return 1;
    printf("raw-stream mib=%zu gbs=%.3f\n", mib, (double)(mib << 20) * reps / secs / 1e9);
    return 0;
}

/* KIB KiB one way per op, then a 1-byte answer: the shape of one synchronous copy of that size. */
static int raw_streamk(size_t kib, int reps, int tcp)
{
    double secs;
    if (stream_one_way(kib << 10, reps, tcp, &secs)) return 1;
    printf("%s kib=%zu gbs=%.4f us=%.3f\n", tcp ? "raw-tcp-streamk" : "raw-streamk", kib,
           (double)(kib << 10) * reps / secs / 1e9, secs / reps * 1e6);
    return 0;
}

/* One 2D/3D copy between host rows (pitch 320) and device memory (pitch 512) or an array. */
static CUresult copy3d_kind(int to_device, char *h, CUdeviceptr d, CUarray a, size_t rows, size_t slices)
{
    CUDA_MEMCPY3D c;
    memset(&c, 0, sizeof c);
    c.WidthInBytes = 256, c.Height = rows, c.Depth = slices;
    CUmemorytype far = a ? CU_MEMORYTYPE_ARRAY : CU_MEMORYTYPE_DEVICE;
    if (to_device) {
        c.srcMemoryType = CU_MEMORYTYPE_HOST, c.srcHost = h, c.srcPitch = 320, c.srcHeight = rows;
        c.dstMemoryType = far, c.dstDevice = d, c.dstArray = a, c.dstPitch = a ? 0 : 512, c.dstHeight = rows;
    } else {
        c.srcMemoryType = far, c.srcDevice = d, c.srcArray = a, c.srcPitch = a ? 0 : 512, c.srcHeight = rows;
        c.dstMemoryType = CU_MEMORYTYPE_HOST, c.dstHost = h, c.dstPitch = 320, c.dstHeight = rows;
    }
    if (slices > 1) return cuMemcpy3D(&c);
    CUDA_MEMCPY2D c2;
    memset(&c2, 0, sizeof c2);
    c2.srcMemoryType = c.srcMemoryType, c2.srcHost = c.srcHost, c2.srcDevice = c.srcDevice, c2.srcArray = c.srcArray;
    c2.srcPitch = c.srcPitch, c2.dstMemoryType = c.dstMemoryType, c2.dstHost = c.dstHost, c2.dstDevice = c.dstDevice;
    c2.dstArray = c.dstArray, c2.dstPitch = c.dstPitch, c2.WidthInBytes = 256, c2.Height = rows;
    return cuMemcpy2D(&c2);
}

static int copykinds(size_t kib, int reps)
{
    setup();
    size_t n = kib << 10, rows = n / 256;
    CUdeviceptr d;
    CK(cuMemAlloc(&d, 2 * rows * 512));
    char *h = (char *)calloc(2, rows * 320);
    if (!h) { printf("FAIL calloc\n"); return 1; }
    CUDA_ARRAY_DESCRIPTOR ad = {n, 0, CU_AD_FORMAT_UNSIGNED_INT8, 1}, ad2 = {256, rows, CU_AD_FORMAT_UNSIGNED_INT8, 1};
    CUarray a1, a2;
    CK(cuArrayCreate(&a1, &ad));
    CK(cuArrayCreate(&a2, &ad2));
    double t[11];
    int k = 0;
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(cuMemcpyHtoD(d, h, n));
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(copy3d_kind(1, h, d, NULL, rows, 1));
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(copy3d_kind(0, h, d, NULL, rows, 1));
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(copy3d_kind(1, h, d, NULL, rows / 4, 4));
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(copy3d_kind(0, h, d, NULL, rows / 4, 4));
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(cuMemcpyHtoA(a1, 0, h, n));
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(cuMemcpyAtoH(h, a1, 0, n));
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(copy3d_kind(1, h, 0, a2, rows, 1));
    t[k++] = now();
    for (int i = 0; i < reps; i++) CK(copy3d_kind(0, h, 0, a2, rows, 1));
    t[k++] = now();
    const char *names[] = {"h2d", "h2d2d", "d2h2d", "h2d3d", "d2h3d", "htoa", "atoh", "h2a2d", "a2h2d"};
    printf("copykinds kib=%zu", kib);
    for (int i = 0; i + 1 < k; i++) printf(" %s_us=%.3f", names[i], (t[i + 1] - t[i]) / reps * 1e6);
    printf("\n");
    return 0;
}

static int pinnedk(size_t kib, int reps, int async_only)
{
    setup();
    size_t n = kib << 10;
    CUdeviceptr d;
    CUstream s;
    void *h;
    CK(cuMemAlloc(&d, n));
    CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CK(cuMemAllocHost(&h, n));
    memset(h, 1, n);
    CK(cuMemcpyHtoD(d, h, n));
    CK(cuCtxSynchronize());
    double t0 = now();
    for (int i = 0; i < reps && !async_only; i++) CK(cuMemcpyHtoD(d, h, n));
    double t1 = now();
    for (int i = 0; i < reps && !async_only; i++) CK(cuMemcpyDtoH(h, d, n));
    double t2 = now();
    for (int i = 0; i < reps; i++) {
        CK(cuMemcpyDtoHAsync(h, d, n, s));
        CK(cuStreamSynchronize(s));
    }
    double t3 = now();
    printf("pinnedk kib=%zu h2d_us=%.3f d2h_us=%.3f d2h_async_us=%.3f\n", kib, (t1 - t0) / reps * 1e6,
           (t2 - t1) / reps * 1e6, (t3 - t2) / reps * 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: see the header of dp_bench.cu\n"); return 2; }
    const char *mode = argv[1];
    long a = atol(argv[2]), b = argc > 3 ? atol(argv[3]) : 1;
    if (!strcmp(mode, "launch")) return launch((int)a);
    if (!strcmp(mode, "sync")) return sync_rt((int)a);
    if (!strcmp(mode, "copy")) return copy((size_t)a, (int)b);
    if (!strcmp(mode, "raw-pingpong")) return raw_pingpong((int)a, 0);
    if (!strcmp(mode, "raw-tcp-pingpong")) return raw_pingpong((int)a, 1);
    if (!strcmp(mode, "copyk")) return copyk((size_t)a, (int)b);
    if (!strcmp(mode, "copykinds")) return copykinds((size_t)a, (int)b);
    if (!strcmp(mode, "memcpyk")) return memcpyk((size_t)a, (int)b);
    if (!strcmp(mode, "pinnedk")) return pinnedk((size_t)a, (int)b, 0);
    if (!strcmp(mode, "pinnedasync")) return pinnedk((size_t)a, (int)b, 1);
    if (!strcmp(mode, "raw-streamk")) return raw_streamk((size_t)a, (int)b, 0);
    if (!strcmp(mode, "raw-tcp-streamk")) return raw_streamk((size_t)a, (int)b, 1);
    if (!strcmp(mode, "raw-stream")) return raw_stream((size_t)a, (int)b);
    return 2;
}
