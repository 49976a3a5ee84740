// primary_ctx_steps.cu - the primary context through the driver API alone (cudart never retains it here), one
// step per line on stdin, for tests of what its last release frees (tests/stub/test_remote_managed_cap.py):
// "r" retains device 0's primary context and makes it current ("retain=ok"), "u" releases it
// ("release=<ok|error name>"), "s" prints "active=<0|1>" (cuDevicePrimaryCtxGetState), "m <MiB>" allocates
// managed memory and writes it on the host ("managed=<ok|error name>"), "h <MiB>" allocates pinned host memory
// mapped for the device ("host=ok <mapped|unmapped>" or "host=<error name>"), "g <MiB>" builds, instantiates,
// launches and checks a graph whose one node copies <MiB> of pageable host memory into a new device buffer
// ("graph=<ok|error name>"), "l" launches the last graph again and synchronizes ("launch=<ok|error name>"),
// "d" destroys the graphs ("graphs=destroyed"), "q" quits.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda.h>
#include <vector>

static const char *name_of(CUresult r)
{
    const char *n = "?";
    if (r == CUDA_SUCCESS) return "ok";
    cuGetErrorName(r, &n);
    return n;
}

static CUresult graph_step(size_t bytes, std::vector<CUgraph> &graphs, std::vector<CUgraphExec> &execs)
{
    CUdeviceptr dev = 0;
    CUresult r = cuMemAlloc(&dev, bytes);
    if (r) return r;
    std::vector<unsigned char> host(bytes, (unsigned char)(graphs.size() + 7));
    CUgraph g = 0;
    CUgraphExec x = 0;
    CUgraphNode node;
    CUcontext ctx = 0;
    CUDA_MEMCPY3D c;
    memset(&c, 0, sizeof c);
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = host.data();
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = dev;
    c.WidthInBytes = bytes;
    c.Height = 1;
    c.Depth = 1;
    unsigned char last = 0;
    if (!(r = cuCtxGetCurrent(&ctx)) && !(r = cuGraphCreate(&g, 0)) && !(r = cuGraphAddMemcpyNode(&node, g, 0, 0, &c, ctx)) &&
        !(r = cuGraphInstantiate(&x, g, 0)) && !(r = cuGraphLaunch(x, 0)) && !(r = cuCtxSynchronize()))
        r = cuMemcpyDtoH(&last, dev + bytes - 1, 1);
    if (r == CUDA_SUCCESS && last != host[bytes - 1]) r = CUDA_ERROR_UNKNOWN;
    if (r) {
        if (x) cuGraphExecDestroy(x);
        if (g) cuGraphDestroy(g);
        return r;
    }
    graphs.push_back(g);
    execs.push_back(x);
    return CUDA_SUCCESS;
}

int main()
{
    std::vector<CUgraph> graphs;
    std::vector<CUgraphExec> execs;
    char line[64];
    setvbuf(stdout, 0, _IOLBF, 0);
    CUdevice dev = 0;
    if (cuInit(0) || cuDeviceGet(&dev, 0)) {
        printf("error=init\n");
        return 1;
    }
    while (fgets(line, sizeof line, stdin)) {
        const size_t bytes = (size_t)atoi(line + 1) << 20;
        if (line[0] == 'r') {
            CUcontext p = 0;
            CUresult r = cuDevicePrimaryCtxRetain(&p, dev);
            if (r == CUDA_SUCCESS) r = cuCtxSetCurrent(p);
            printf("retain=%s\n", name_of(r));
        } else if (line[0] == 'u') {
            printf("release=%s\n", name_of(cuDevicePrimaryCtxRelease(dev)));
        } else if (line[0] == 's') {
            unsigned flags = 0;
            int active = -1;
            cuDevicePrimaryCtxGetState(dev, &flags, &active);
            printf("active=%d\n", active);
        } else if (line[0] == 'm') {
            CUdeviceptr p = 0;
            CUresult r = cuMemAllocManaged(&p, bytes, CU_MEM_ATTACH_GLOBAL);
            if (r == CUDA_SUCCESS) memset((void *)p, 5, bytes);
            printf("managed=%s\n", name_of(r));
        } else if (line[0] == 'h') {
            void *p = 0;
            CUresult r = cuMemHostAlloc(&p, bytes, CU_MEMHOSTALLOC_DEVICEMAP);
            CUdeviceptr d = 0;
            const bool mapped = r == CUDA_SUCCESS && cuMemHostGetDevicePointer(&d, p, 0) == CUDA_SUCCESS && d;
            if (r == CUDA_SUCCESS) memset(p, 1, bytes);
            printf("host=%s%s\n", name_of(r), r != CUDA_SUCCESS ? "" : mapped ? " mapped" : " unmapped");
        } else if (line[0] == 'g') {
            printf("graph=%s\n", name_of(graph_step(bytes, graphs, execs)));
        } else if (line[0] == 'l') {
            CUresult r = execs.empty() ? CUDA_ERROR_INVALID_VALUE : cuGraphLaunch(execs.back(), 0);
            if (r == CUDA_SUCCESS) r = cuCtxSynchronize();
            printf("launch=%s\n", name_of(r));
        } else if (line[0] == 'd') {
            for (CUgraphExec x : execs) cuGraphExecDestroy(x);
            for (CUgraph g : graphs) cuGraphDestroy(g);
            execs.clear();
            graphs.clear();
            printf("graphs=destroyed\n");
        } else if (line[0] == 'q') {
            break;
        }
    }
    return 0;
}
