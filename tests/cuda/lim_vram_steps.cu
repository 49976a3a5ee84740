// lim_vram_steps.cu - allocates on command, for live-limit tests (tests/limiter): one line on stdin per
// step. "m <MiB>" allocates managed memory, writes it on the host and in a kernel and checks both
// ("managed=<ok|error name>"), "h <MiB>" allocates pinned host memory ("host=ok <mapped|unmapped>": can the device address it; or "host=<error name>"), "s" starts a
// kernel that never ends and prints "spinning=seen" once it runs (it writes managed memory the host polls),
// "k" forks a child that allocates 64 MiB and exits ("fork=ok" once it is reaped), "a <MiB>" allocates (prints "alloc=<ok|error name>"), "f" frees the last allocation
// ("free=ok"), "g <MiB>" instantiates and launches a graph whose one node copies <MiB> of pageable host memory into
// a device buffer (the first "g" allocates that buffer) and keeps it ("graph=<ok|error name>": at the node, the
// instantiation or the launch), "d" destroys the graphs kept ("graphs=destroyed"), "c <MiB>" creates a context
// (driver API), allocates managed memory in it, destroys the context (its memory goes with it) and makes the
// previous context current again ("ctx=<ok|error name>"), "r" resets the device (cudaDeviceReset: the driver frees everything; "reset=ok"), "i" prints "free_mem=<bytes> total_mem=<bytes>" (cudaMemGetInfo), "q" quits.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

// one thread per 4 KiB page: adds the page's index to its first word
__global__ void touch_pages(unsigned *p, size_t pages)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < pages) p[i * 1024] += (unsigned)i;
}

__global__ void spin_forever(volatile unsigned *flag)
{
    for (;;) {
        *flag = 1;
        __threadfence_system();
    }
}

static const char *managed_step(size_t bytes, std::vector<void *> &bufs)
{
    unsigned *p = 0;
    cudaError_t e = cudaMallocManaged(&p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return cudaGetErrorName(e);
    }
    bufs.push_back(p);
    memset(p, 7, bytes);
    size_t pages = bytes >> 12;
    touch_pages<<<(unsigned)((pages + 255) / 256), 256>>>(p, pages);
    if ((e = cudaDeviceSynchronize()) != cudaSuccess) return cudaGetErrorName(e);
    for (size_t i = 0; i < pages; i++)
        if (p[i * 1024] != 0x07070707u + (unsigned)i || p[i * 1024 + 1] != 0x07070707u) return "wrong_data";
    return "ok";
}

// The kernel never ends: a thread flushes the launch (a query waits for the worker's answer, which may
// never come), the main thread waits for the kernel's first write.
static const char *spin_step()
{
    unsigned *flag = 0;
    if (cudaMallocManaged(&flag, 4096) != cudaSuccess) return "alloc_failed";
    *flag = 0;
    spin_forever<<<1, 1>>>(flag);
    std::thread([] { cudaStreamQuery(0); }).detach();
    for (int i = 0; i < 60000; i++) {
        if (*(volatile unsigned *)flag) return "seen";
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return "unseen";
}

// A graph copying `bytes` of fresh pageable host memory into dev, instantiated, launched and checked; kept in graphs/execs.
static const char *graph_step(size_t bytes, void *&dev, size_t &dev_bytes, std::vector<cudaGraph_t> &graphs,
                              std::vector<cudaGraphExec_t> &execs)
{
    if (!dev) {
        cudaError_t e = cudaMalloc(&dev, bytes);
        if (e != cudaSuccess) {
            cudaGetLastError();
            dev = 0;
            return cudaGetErrorName(e);
        }
        dev_bytes = bytes;
    }
    if (bytes > dev_bytes) return "bigger_than_the_first";
    std::vector<unsigned char> host(bytes, (unsigned char)(graphs.size() + 1));
    cudaGraph_t g = 0;
    cudaGraphExec_t x = 0;
    cudaGraphNode_t node;
    cudaError_t e = cudaGraphCreate(&g, 0);
    if (e == cudaSuccess) e = cudaGraphAddMemcpyNode1D(&node, g, nullptr, 0, dev, host.data(), bytes, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaGraphInstantiate(&x, g, 0);
    if (e == cudaSuccess) e = cudaGraphLaunch(x, 0);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    unsigned char last = 0;
    if (e == cudaSuccess) e = cudaMemcpy(&last, (unsigned char *)dev + bytes - 1, 1, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (x) cudaGraphExecDestroy(x);
        if (g) cudaGraphDestroy(g);
        return cudaGetErrorName(e);
    }
    graphs.push_back(g);
    execs.push_back(x);
    return last == host[bytes - 1] ? "ok" : "wrong_data";
}

typedef CUresult (*ctx_create_fn)(CUcontext *, unsigned, CUdevice);
typedef CUresult (*ctx_one_fn)(CUcontext);
typedef CUresult (*ctx_get_fn)(CUcontext *);

static void *driver_fn(const char *name, int version)
{
    void *fn = 0;
    cudaDriverEntryPointQueryResult q;
    return cudaGetDriverEntryPointByVersion(name, &fn, version, cudaEnableDefault, &q) == cudaSuccess ? fn : 0;
}

static const char *ctx_step(size_t bytes)
{
    auto create = (ctx_create_fn)driver_fn("cuCtxCreate", 3020);
    auto destroy = (ctx_one_fn)driver_fn("cuCtxDestroy", 4000);
    auto set = (ctx_one_fn)driver_fn("cuCtxSetCurrent", 4000);
    auto get = (ctx_get_fn)driver_fn("cuCtxGetCurrent", 4000);
    if (!create || !destroy || !set || !get) return "no_entry_points";
    CUcontext prev = 0, made = 0;
    if (get(&prev) != CUDA_SUCCESS || create(&made, 0, 0) != CUDA_SUCCESS) return "create_failed";
    void *p = 0;
    cudaError_t e = cudaMallocManaged(&p, bytes);
    cudaGetLastError();
    if (e == cudaSuccess) memset(p, 3, bytes);
    CUresult d = destroy(made);
    if (set(prev) != CUDA_SUCCESS) return "set_failed";
    if (e != cudaSuccess) return cudaGetErrorName(e);
    return d == CUDA_SUCCESS ? "ok" : "destroy_failed";
}

int main()
{
    std::vector<cudaGraph_t> graphs;
    std::vector<cudaGraphExec_t> execs;
    void *graph_dev = 0;
    size_t graph_dev_bytes = 0;
    std::vector<void *> bufs, hosts;
    char line[64];
    setvbuf(stdout, 0, _IOLBF, 0);
    if (cudaFree(0) != cudaSuccess) { printf("error=init\n"); return 1; }
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'a') {
            void *p = 0;
            cudaError_t e = cudaMalloc(&p, (size_t)atoi(line + 1) << 20);
            if (e == cudaSuccess) bufs.push_back(p);
            cudaGetLastError();
            printf("alloc=%s\n", e == cudaSuccess ? "ok" : cudaGetErrorName(e));
        } else if (line[0] == 'm') {
            printf("managed=%s\n", managed_step((size_t)atoi(line + 1) << 20, bufs));
        } else if (line[0] == 'h') {
            void *p = 0;
            cudaError_t e = cudaMallocHost(&p, (size_t)atoi(line + 1) << 20);
            cudaGetLastError();
            void *d = 0;
            bool mapped = e == cudaSuccess && cudaHostGetDevicePointer(&d, p, 0) == cudaSuccess && d;
            cudaGetLastError();
            if (e == cudaSuccess) memset(p, 1, (size_t)atoi(line + 1) << 20);
            if (e == cudaSuccess) hosts.push_back(p);
            printf("host=%s%s\n", e == cudaSuccess ? "ok" : cudaGetErrorName(e),
                   e != cudaSuccess ? "" : mapped ? " mapped" : " unmapped");
        } else if (line[0] == 's') {
            printf("spinning=%s\n", spin_step());
        } else if (line[0] == 'f' && !bufs.empty()) {
            cudaFree(bufs.back());
            bufs.pop_back();
            printf("free=ok\n");
        } else if (line[0] == 'g') {
            printf("graph=%s\n", graph_step((size_t)atoi(line + 1) << 20, graph_dev, graph_dev_bytes, graphs, execs));
        } else if (line[0] == 'd') {
            for (cudaGraphExec_t x : execs) cudaGraphExecDestroy(x);
            for (cudaGraph_t g : graphs) cudaGraphDestroy(g);
            execs.clear();
            graphs.clear();
            printf("graphs=destroyed\n");
        } else if (line[0] == 'c') {
            printf("ctx=%s\n", ctx_step((size_t)atoi(line + 1) << 20));
        } else if (line[0] == 'k') {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                void *p = 0;
                cudaMalloc(&p, 64 << 20);
                _exit(0);
            }
            int status = 0;
            printf("fork=%s\n", pid > 0 && waitpid(pid, &status, 0) == pid ? "ok" : "failed");
        } else if (line[0] == 'r') {
            cudaError_t e = cudaDeviceReset();
            bufs.clear();
            printf("reset=%s\n", e == cudaSuccess ? "ok" : cudaGetErrorName(e));
        } else if (line[0] == 'i') {
            size_t f = 0, t = 0;
            cudaMemGetInfo(&f, &t);
            printf("free_mem=%zu total_mem=%zu\n", f, t);
        } else if (line[0] == 'q') {
            break;
        }
    }
    for (void *p : bufs) cudaFree(p);
    for (void *p : hosts) cudaFreeHost(p);
    for (cudaGraphExec_t x : execs) cudaGraphExecDestroy(x);
    for (cudaGraph_t g : graphs) cudaGraphDestroy(g);
    cudaFree(graph_dev);
    return 0;
}
