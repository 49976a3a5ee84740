// End-to-end checks of the emulated device's PTX engine through cudart and build/emu/libcuda.so.1
// (tests/emu/test_ptx_engine.py). Usage: ptx_e2e <mode>; prints key=value lines.
//   printf   - kernel printf lines on stdout, then "sync=<error name>"
//   assert   - a failing device assert: "sync=<error name>"
//   illegal  - an instruction the emulator does not implement: "sync=<error name>"
//   coop     - cooperative launch with grid.sync(): "sync=<error name>" "ok=<0|1>"
//   spin N [then_empty] - compute-bound kernel, N iterations per thread: "sync=..." "seconds=...";
//              then_empty: an empty kernel launched after it (a second kernel for the JIT's queue)
//   empty N  - N empty launches: "sync=..." "launches_per_s=..."
//   fork S   - launches k_spin once (the JIT queues its compile), then for S seconds forks children that
//              only call exit(0) (running the driver's exit handlers while its compile thread works):
//              "forks=N" "hung=K" (children still alive 10 s after exit() began), then "sync=..."
#include <chrono>
#include <cooperative_groups.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cassert>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>
namespace cg = cooperative_groups;

__global__ void k_printf(int v) {
    if (threadIdx.x < 3) printf("kernel says %d %.3f %s\n", v + (int)threadIdx.x, 0.5 * threadIdx.x, threadIdx.x ? "b" : "a");
}

__global__ void k_assert(int *p) {
    assert(p[threadIdx.x] < 10);
}

__global__ void k_illegal(unsigned long long *p) {
    unsigned long long r;
    asm volatile("stacksave.u64 %0;" : "=l"(r));
    p[0] = r;
}

__global__ void k_coop(int *acc, int *seen) {
    cg::grid_group g = cg::this_grid();
    if (threadIdx.x == 0) atomicAdd(acc, 1);
    g.sync();
    if (threadIdx.x == 0) seen[blockIdx.x] = *acc;
}

__global__ void k_spin(float *out, int iters) {
    float a = threadIdx.x * 0.001f, b = 1.0001f;
    unsigned h = threadIdx.x;
    for (int i = 0; i < iters; i++) {
        a = a * b + 0.5f;
        h = h * 1664525u + 1013904223u;
        b = b - (h & 1) * 1e-7f;
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = a + (float)(h & 0xff);
}

__global__ void k_empty() {}

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "printf";
    if (!strcmp(mode, "printf")) {
        k_printf<<<1, 8>>>(40);
        cudaError_t e = cudaDeviceSynchronize();
        fflush(stdout);
        printf("sync=%s\n", cudaGetErrorName(e));
    } else if (!strcmp(mode, "assert")) {
        int *p;
        cudaMalloc(&p, 32 * sizeof(int));
        int h[32];
        for (int i = 0; i < 32; i++) h[i] = i == 17 ? 99 : i % 10;
        cudaMemcpy(p, h, sizeof(h), cudaMemcpyHostToDevice);
        k_assert<<<1, 32>>>(p);
        printf("sync=%s\n", cudaGetErrorName(cudaDeviceSynchronize()));
    } else if (!strcmp(mode, "illegal")) {
        unsigned long long *p;
        cudaMalloc(&p, 16);
        cudaMemset(p, 0, 16);
        k_illegal<<<1, 1>>>(p);
        printf("sync=%s\n", cudaGetErrorName(cudaDeviceSynchronize()));
    } else if (!strcmp(mode, "coop")) {
        int nb = 4, *acc, *seen;
        cudaMalloc(&acc, sizeof(int));
        cudaMalloc(&seen, nb * sizeof(int));
        cudaMemset(acc, 0, sizeof(int));
        void *args[] = {&acc, &seen};
        cudaError_t e = cudaLaunchCooperativeKernel((void *)k_coop, dim3(nb), dim3(64), args, 0, 0);
        cudaError_t s = cudaDeviceSynchronize();
        int h[4] = {0};
        cudaMemcpy(h, seen, sizeof(h), cudaMemcpyDeviceToHost);
        int ok = 1;
        for (int i = 0; i < nb; i++) ok &= h[i] == nb;
        printf("launch=%s\nsync=%s\nok=%d\n", cudaGetErrorName(e), cudaGetErrorName(s), ok);
    } else if (!strcmp(mode, "spin")) {
        int iters = argc > 2 ? atoi(argv[2]) : 1000, blocks = 64, threads = 256;
        float *out;
        cudaMalloc(&out, blocks * threads * sizeof(float));
        k_spin<<<1, 32>>>(out, 1);
        cudaDeviceSynchronize();
        double t0 = now();
        k_spin<<<blocks, threads>>>(out, iters);
        cudaError_t e = cudaDeviceSynchronize();
        double secs = now() - t0;
        /* FNV-1a of the output's bits: both PTX engines of the emulator must agree exactly */
        static unsigned host[64 * 256];
        cudaMemcpy(host, out, sizeof(host), cudaMemcpyDeviceToHost);
        unsigned long long fnv = 0xcbf29ce484222325ull;
        for (int i = 0; i < blocks * threads; i++) { fnv ^= host[i]; fnv *= 0x100000001b3ull; }
        if (argc > 3 && !strcmp(argv[3], "then_empty")) {
            k_empty<<<1, 32>>>();
            if (e == cudaSuccess) e = cudaDeviceSynchronize();
        }
        printf("sync=%s\nseconds=%.6f\nthreads=%d\nchecksum=%016llx\n", cudaGetErrorName(e), secs, blocks * threads, fnv);
    } else if (!strcmp(mode, "fork")) {
        double secs = argc > 2 ? atof(argv[2]) : 3;
        float *out;
        cudaMalloc(&out, 64 * sizeof(float));
        k_spin<<<2, 32>>>(out, 10);
        cudaError_t e = cudaDeviceSynchronize();
        int forks = 0, hung = 0;
        for (double t0 = now(); now() - t0 < secs && !hung; forks++) {
            pid_t pid = fork();
            if (pid == 0) {
                alarm(10); /* a child stuck in exit() dies of SIGALRM: the parent counts it */
                exit(0);
            }
            if (pid < 0) { perror("fork"); return 1; }
            int st = 0;
            while (waitpid(pid, &st, 0) < 0) {}
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) hung++;
        }
        k_spin<<<2, 32>>>(out, 10);
        if (e == cudaSuccess) e = cudaDeviceSynchronize();
        printf("forks=%d\nhung=%d\nsync=%s\n", forks, hung, cudaGetErrorName(e));
    } else if (!strcmp(mode, "empty")) {
        int n = argc > 2 ? atoi(argv[2]) : 1000;
        k_empty<<<1, 1>>>();
        cudaDeviceSynchronize();
        double t0 = now();
        for (int i = 0; i < n; i++) k_empty<<<1, 32>>>();
        cudaError_t e = cudaDeviceSynchronize();
        printf("sync=%s\nlaunches_per_s=%.1f\n", cudaGetErrorName(e), n / (now() - t0));
    }
    return 0;
}
