// dp_graph_bogus.cu - data-path test program (driver API, -lcuda) for CUDA graphs: bogus graph, node and
// executable-graph handles, nodes of a destroyed graph, memset/memcpy nodes past the end of an allocation
// and bogus kernel functions are refused with an error (never a crash of the worker), and then a valid
// graph still runs. I/O contract: no arguments; prints "dp_graph_bogus ok" and exits 0, or prints
// "FAIL <what>: got <n> want <m>" and exits 1.
#include <cuda.h>
#include <stdio.h>
#include <string.h>

#include "tf_test_want.h"
#define WANT_ERR(what, call)                                                     \
    do {                                                                         \
        CUresult got_ = (call);                                                  \
        if (got_ != CUDA_ERROR_INVALID_HANDLE && got_ != CUDA_ERROR_INVALID_VALUE) { \
            printf("FAIL %s: got %d want INVALID_HANDLE or INVALID_VALUE\n", what, (int)got_); \
            fails++;                                                             \
        }                                                                        \
    } while (0)

static const char ptx[] =
    ".version 7.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry touch(.param .u64 p, .param .u32 v)\n{\n"
    "  .reg .b64 %rd<2>;\n  .reg .b32 %r<2>;\n"
    "  ld.param.u64 %rd1, [p];\n  ld.param.u32 %r1, [v];\n  st.global.u32 [%rd1], %r1;\n  ret;\n}\n";

int main()
{
    CUdevice dev;
    CUcontext ctx;
    WANT("init", cuInit(0), CUDA_SUCCESS);
    WANT("device", cuDeviceGet(&dev, 0), CUDA_SUCCESS);
    WANT("retain", cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
    WANT("set ctx", cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    CUmodule mod;
    CUfunction f;
    WANT("load ptx", cuModuleLoadData(&mod, ptx), CUDA_SUCCESS);
    WANT("get function", cuModuleGetFunction(&f, mod, "touch"), CUDA_SUCCESS);
    CUdeviceptr d;
    WANT("alloc", cuMemAlloc(&d, 64), CUDA_SUCCESS);
    CUstream s;
    WANT("stream", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);

    CUgraph bogus_g = (CUgraph)0x6a6a0000, g;
    CUgraphNode bogus_n = (CUgraphNode)0x6b6b0000, n, nodes[4];
    CUgraphExec bogus_x = (CUgraphExec)0x6c6c0000, x;
    size_t cnt = 4;
    CUgraphNodeType ntype;
    WANT_ERR("nodes of a bogus graph", cuGraphGetNodes(bogus_g, nodes, &cnt));
    WANT_ERR("empty node in a bogus graph", cuGraphAddEmptyNode(&n, bogus_g, NULL, 0));
    WANT_ERR("destroy a bogus graph", cuGraphDestroy(bogus_g));
    WANT_ERR("type of a bogus node", cuGraphNodeGetType(bogus_n, &ntype));
    WANT_ERR("launch a bogus exec", cuGraphLaunch(bogus_x, s));
    WANT_ERR("destroy a bogus exec", cuGraphExecDestroy(bogus_x));
    WANT_ERR("instantiate a bogus graph", cuGraphInstantiateWithFlags(&x, bogus_g, 0));
    WANT("capture a bogus stream", cuStreamBeginCapture((CUstream)0x5678, CU_STREAM_CAPTURE_MODE_GLOBAL),
         CUDA_ERROR_INVALID_HANDLE);

    WANT("create", cuGraphCreate(&g, 0), CUDA_SUCCESS);
    WANT_ERR("a bogus dependency", cuGraphAddEmptyNode(&n, g, &bogus_n, 1));
    WANT_ERR("an edge from a bogus node", cuGraphAddDependencies(g, &bogus_n, &bogus_n, NULL, 1));
    WANT("count without a place for it", cuGraphGetNodes(g, nodes, NULL), CUDA_ERROR_INVALID_VALUE);
    CUDA_MEMSET_NODE_PARAMS ms;
    memset(&ms, 0, sizeof ms);
    ms.dst = d, ms.elementSize = 4, ms.width = 17, ms.height = 1, ms.value = 1;
    WANT("memset node past the end", cuGraphAddMemsetNode(&n, g, NULL, 0, &ms, ctx), CUDA_ERROR_INVALID_VALUE);
    ms.dst = (CUdeviceptr)0xdead0000ull, ms.width = 4;
    WANT("memset node at a bogus pointer", cuGraphAddMemsetNode(&n, g, NULL, 0, &ms, ctx), CUDA_ERROR_INVALID_VALUE);
    CUDA_MEMCPY3D cp;
    memset(&cp, 0, sizeof cp);
    cp.srcMemoryType = cp.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    cp.srcDevice = d, cp.dstDevice = d + 32, cp.WidthInBytes = 64, cp.Height = 1, cp.Depth = 1;
    WANT("copy node past the end", cuGraphAddMemcpyNode(&n, g, NULL, 0, &cp, ctx), CUDA_ERROR_INVALID_VALUE);
    cp.dstArray = (CUarray)0x1, cp.dstMemoryType = CU_MEMORYTYPE_ARRAY, cp.WidthInBytes = 16;
    WANT("copy node to a bogus array", cuGraphAddMemcpyNode(&n, g, NULL, 0, &cp, ctx), CUDA_ERROR_INVALID_HANDLE);
    unsigned v = 7;
    void *args[] = {&d, &v};
    CUDA_KERNEL_NODE_PARAMS kp;
    memset(&kp, 0, sizeof kp);
    kp.func = (CUfunction)0x4242, kp.gridDimX = kp.gridDimY = kp.gridDimZ = 1;
    kp.blockDimX = kp.blockDimY = kp.blockDimZ = 1, kp.kernelParams = args;
    WANT("kernel node of a bogus function", cuGraphAddKernelNode(&n, g, NULL, 0, &kp), CUDA_ERROR_INVALID_HANDLE);

    /* a node of a destroyed graph is gone */
    CUgraph g2;
    CUgraphNode dead;
    WANT("create g2", cuGraphCreate(&g2, 0), CUDA_SUCCESS);
    WANT("node of g2", cuGraphAddEmptyNode(&dead, g2, NULL, 0), CUDA_SUCCESS);
    WANT("destroy g2", cuGraphDestroy(g2), CUDA_SUCCESS);
    WANT_ERR("type of a dead node", cuGraphNodeGetType(dead, &ntype));
    WANT_ERR("dependency on a dead node", cuGraphAddEmptyNode(&n, g, &dead, 1));
    WANT_ERR("destroy g2 twice", cuGraphDestroy(g2));

    /* the session goes on: a valid graph runs */
    kp.func = f;
    WANT("kernel node", cuGraphAddKernelNode(&n, g, NULL, 0, &kp), CUDA_SUCCESS);
    WANT("instantiate", cuGraphInstantiateWithFlags(&x, g, 0), CUDA_SUCCESS);
    WANT("launch", cuGraphLaunch(x, s), CUDA_SUCCESS);
    WANT("sync", cuStreamSynchronize(s), CUDA_SUCCESS);
    unsigned got = 0;
    WANT("dtoh", cuMemcpyDtoH(&got, d, 4), CUDA_SUCCESS);
    if (got != 7) { printf("FAIL kernel node wrote %u\n", got); fails++; }
    WANT("exec destroy", cuGraphExecDestroy(x), CUDA_SUCCESS);
    WANT_ERR("launch a destroyed exec", cuGraphLaunch(x, s));
    WANT("nothing latched", cuCtxSynchronize(), CUDA_SUCCESS);
    WANT("graph destroy", cuGraphDestroy(g), CUDA_SUCCESS);
    if (fails) return 1;
    printf("dp_graph_bogus ok\n");
    return 0;
}
