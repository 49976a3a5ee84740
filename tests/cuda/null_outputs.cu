// null_outputs.cu - every forwarded driver function with an output pointer (not marked null in
// proto/calls.tbl), called with that output NULL and live objects everywhere else, then with it given.
// The calls are generated (gen_calls.py --null-probes, included as TF_NULL_PROBES);
// tests/stub/test_null_outputs.py runs this program on the emulated device and through the stub and
// compares. Prints "key=<CUresult>" and "key.control=<CUresult>" lines.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static const char ptx[] =
    ".version 7.0\n.target sm_50\n.address_size 64\n"
    ".visible .entry k(.param .u64 p) { ret; }\n"
    ".global .align 4 .u32 g;\n";

static unsigned long long tf_probe_out[1 << 17];  // 1 MiB of zeroed scratch for the other outputs
static const unsigned long long tf_probe_in[1 << 17] = {0};

static struct {
    CUcontext ctx; CUmodule mod; CUfunction func; CUlibrary lib; CUkernel kernel; CUstream stream; CUevent event;
    CUmemoryPool pool; CUlinkState link; CUgraph graph; CUgraphNode gnode; CUgraphExec gexec; CUarray array;
    CUmipmappedArray mipmap; CUtexObject texobj; CUsurfObject surfobj;
} fx;
static CUdeviceptr fx_dptr;

static void *tf_probe_sym(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    if (!f) { printf("FAIL no symbol %s\n", name); fflush(stdout); }
    return f;
}

#define TRY(call) do { CUresult r_ = (call); if (r_ != CUDA_SUCCESS) { printf("FAIL %s=%d\n", #call, (int)r_); return 1; } } while (0)

int main()
{
    CUdevice dev;
    TRY(cuInit(0));
    TRY(cuDeviceGet(&dev, 0));
    TRY(cuDevicePrimaryCtxRetain(&fx.ctx, dev));
    TRY(cuCtxSetCurrent(fx.ctx));
    TRY(cuModuleLoadData(&fx.mod, ptx));
    TRY(cuModuleGetFunction(&fx.func, fx.mod, "k"));
    TRY(cuLibraryLoadData(&fx.lib, ptx, NULL, NULL, 0, NULL, NULL, 0));
    TRY(cuLibraryGetKernel(&fx.kernel, fx.lib, "k"));
    TRY(cuStreamCreate(&fx.stream, CU_STREAM_NON_BLOCKING));
    TRY(cuEventCreate(&fx.event, 0));
    TRY(cuDeviceGetDefaultMemPool(&fx.pool, dev));
    TRY(cuLinkCreate(0, NULL, NULL, &fx.link));
    TRY(cuGraphCreate(&fx.graph, 0));
    TRY(cuGraphAddEmptyNode(&fx.gnode, fx.graph, NULL, 0));
    TRY(cuGraphInstantiate(&fx.gexec, fx.graph, 0));
    TRY(cuMemAlloc(&fx_dptr, 1 << 16));
    CUDA_ARRAY_DESCRIPTOR ad = {};
    ad.Width = 16; ad.Height = 16; ad.Format = CU_AD_FORMAT_FLOAT; ad.NumChannels = 1;
    TRY(cuArrayCreate(&fx.array, &ad));
    CUDA_ARRAY3D_DESCRIPTOR md = {};
    md.Width = 16; md.Height = 16; md.Format = CU_AD_FORMAT_FLOAT; md.NumChannels = 1;
    TRY(cuMipmappedArrayCreate(&fx.mipmap, &md, 2));
    CUDA_RESOURCE_DESC rd = {};
    rd.resType = CU_RESOURCE_TYPE_ARRAY;
    rd.res.array.hArray = fx.array;
    CUDA_TEXTURE_DESC td = {};
    TRY(cuTexObjectCreate(&fx.texobj, &rd, &td, NULL));
    CUarray sarr;
    CUDA_ARRAY3D_DESCRIPTOR sad = {};
    sad.Width = 16; sad.Height = 16; sad.Format = CU_AD_FORMAT_FLOAT; sad.NumChannels = 1;
    sad.Flags = CUDA_ARRAY3D_SURFACE_LDST;
    TRY(cuArray3DCreate(&sarr, &sad));
    rd.res.array.hArray = sarr;
    TRY(cuSurfObjectCreate(&fx.surfobj, &rd));
    // each probe: the call with the output NULL, then with it given (the control: what the other arguments
    // alone answer); a control may make a new context current, the probes run in the fixtures' one
#define TF_PROBE(key, call, control)                                                  \
    do {                                                                              \
        memset(tf_probe_out, 0, sizeof tf_probe_out); /* inout scratch: zeros, not the last output */ \
        printf("%s=%d\n", key, (int)(call));                                          \
        memset(tf_probe_out, 0, sizeof tf_probe_out);                                 \
        printf("%s.control=%d\n", key, (int)(control));                               \
        fflush(stdout);                                                               \
        TRY(cuCtxSetCurrent(fx.ctx));                                                 \
    } while (0);
#include TF_NULL_PROBES
    printf("done=1\n");
    return 0;
}
