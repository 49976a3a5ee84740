// multithread.cu - several host threads share the device: each creates its own stream, allocates,
// copies, launches and frees concurrently (exercises the driver's locking and per-thread state).
// I/O contract: multithread THREADS ITERS   stdout: "threads_ok=<threads whose results all matched>",
//   "errors=<first CUDA error name seen, or none>", "busy_ns=<growth of the emulator's
//   tfEmuGetBusyTime over the run, -1 when the libcuda.so.1 has none>", "wall_ns=<run wall time>".
#include <dlfcn.h>
#include <time.h>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

__global__ void scale_add(const int *x, int *y, int n, int k)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = x[i] * k + i;
}

static std::atomic<int> g_ok{0};
static std::atomic<int> g_err{0};

static void worker(int id, int iters)
{
    const int n = 3000 + id * 17;
    std::vector<int> x(n), y(n);
    for (int i = 0; i < n; i++)
        x[i] = i * (id + 1);
    cudaStream_t s;
    if (cudaSetDevice(0) != cudaSuccess || cudaStreamCreate(&s) != cudaSuccess) {
        g_err = 1;
        return;
    }
    bool ok = true;
    for (int it = 0; it < iters && ok; it++) {
        int *dx, *dy;
        cudaError_t e = cudaMalloc(&dx, n * sizeof(int));
        if (e == cudaSuccess)
            e = cudaMalloc(&dy, n * sizeof(int));
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(dx, x.data(), n * sizeof(int), cudaMemcpyHostToDevice, s);
        if (e == cudaSuccess) {
            scale_add<<<(n + 127) / 128, 128, 0, s>>>(dx, dy, n, it + 2);
            e = cudaGetLastError();
        }
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(y.data(), dy, n * sizeof(int), cudaMemcpyDeviceToHost, s);
        if (e == cudaSuccess)
            e = cudaStreamSynchronize(s);
        if (e == cudaSuccess)
            e = cudaFree(dx);
        if (e == cudaSuccess)
            e = cudaFree(dy);
        if (e != cudaSuccess) {
            g_err = (int)e;
            ok = false;
            break;
        }
        for (int i = 0; i < n; i++)
            ok = ok && y[i] == x[i] * (it + 2) + i;
    }
    cudaStreamDestroy(s);
    if (ok)
        g_ok++;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4, iters = argc > 2 ? atoi(argv[2]) : 5;
    cudaFree(0); /* initialise cudart, so libcuda.so.1 is loaded */
    typedef int (*busy_fn)(unsigned long long *);
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    busy_fn busy = lib ? (busy_fn)dlsym(lib, "tfEmuGetBusyTime") : NULL;
    unsigned long long b0 = 0, b1 = 0;
    if (busy)
        busy(&b0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++)
        ts.emplace_back(worker, t, iters);
    for (auto &t : ts)
        t.join();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (busy)
        busy(&b1);
    long long wall = (t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec);
    printf("threads_ok=%d\nerrors=%s\n", g_ok.load(), g_err ? cudaGetErrorName((cudaError_t)g_err.load()) : "none");
    printf("busy_ns=%lld\nwall_ns=%lld\n", busy ? (long long)(b1 - b0) : -1ll, wall);
    return 0;
}
