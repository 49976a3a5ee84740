// dp_bench.cu - data-path micro-benchmarks (driver API, -lcuda), driven by benchmarks/bench_datapath.py.
// Run against the client stub or directly against a backend libcuda, plus raw-socket baselines that
// touch no CUDA at all, so ratios are measured side by side in the same run.
// Usage / output (one line "key=value ..." each):
//   dp_bench launch N           empty-kernel cuLaunchKernel x N, then one sync: enqueue_per_s, total_per_s
//   dp_bench sync N             N x cuCtxSynchronize (an empty round trip): p50_us, p99_us
//   dp_bench copy MIB REPS      cuMemcpyHtoD / DtoH of MIB MiB, REPS times: h2d_gbs, d2h_gbs
//   dp_bench raw-pingpong N     16-byte ping-pong over a Unix socketpair between two processes: p50_us, p99_us
//   dp_bench raw-stream MIB REPS  MIB MiB one way over a Unix socketpair in 8 MiB writes, read into a
//                               MIB MiB destination (as a copy lands in a buffer of its size): gbs
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
    printf("%s p50_us=%.2f p99_us=%.2f\n", what, v[n / 2] * 1e6, v[(int)(n * 0.99)] * 1e6);
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

static int full_io(int fd, void *p, size_t n, int wr)
{
    char *c = (char *)p;
    while (n) {
        ssize_t k = wr ? write(fd, c, n) : read(fd, c, n);
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int raw_pingpong(int n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
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
    pct("raw-pingpong", v, n);
    return 0;
}

static int raw_stream(size_t mib, int reps)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
    size_t n = mib << 20, chunk = 8u << 20;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char *b = (char *)malloc(n);
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
    memset(h, 1, n);
    double t0 = 0;
    for (int r = 0; r < reps + 1; r++) {
        if (r == 1) t0 = now();
        for (size_t off = 0; off < n; off += chunk)
            if (full_io(sv[0], h + off, n - off < chunk ? n - off : chunk, 1)) return 1;
        char ack;
        if (full_io(sv[0], &ack, 1, 0)) return 1;
    }
    double t1 = now();
    close(sv[0]);
    waitpid(pid, NULL, 0);
    printf("raw-stream mib=%zu gbs=%.3f\n", mib, (double)n * reps / (t1 - t0) / 1e9);
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
    if (!strcmp(mode, "raw-pingpong")) return raw_pingpong((int)a);
    if (!strcmp(mode, "raw-stream")) return raw_stream((size_t)a, (int)b);
    return 2;
}
