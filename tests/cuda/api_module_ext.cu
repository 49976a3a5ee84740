// api_module_ext.cu - occupancy calculators, JIT linking, enumerating libraries and modules, function and
// kernel names, peer copies and stream memory operations, through the driver API (-lcuda) on a PTX
// module carried as text, for tests/stub/test_api_ext.py (emulated device directly and through the
// remote stub). Prints "key=value" lines (CUresult numbers unless said); functions the emulated device
// may lack are looked up with cuGetProcAddress ("absent" when it has none).
// KERNELS_PTX is `nvcc -ptx -arch=compute_80` of:
//   extern "C" __global__ void k_add(int *p, int n, int v) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) p[i] += v; }
//   extern "C" __global__ void k_smem(int *p, int n) { extern __shared__ int s[]; ... p[i] = 2 * i; }
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char KERNELS_PTX[] =
    ".version 9.0\n"
    ".target sm_80\n"
    ".address_size 64\n"
    ".extern .shared .align 16 .b8 s[];\n"
    ".visible .entry k_add(\n"
    " .param .u64 k_add_param_0,\n"
    " .param .u32 k_add_param_1,\n"
    " .param .u32 k_add_param_2\n"
    ")\n"
    "{\n"
    " .reg .pred  %p<2>;\n"
    " .reg .b32  %r<9>;\n"
    " .reg .b64  %rd<5>;\n"
    " ld.param.u64  %rd1, [k_add_param_0];\n"
    " ld.param.u32  %r3, [k_add_param_1];\n"
    " ld.param.u32  %r2, [k_add_param_2];\n"
    " mov.u32  %r4, %ctaid.x;\n"
    " mov.u32  %r5, %ntid.x;\n"
    " mov.u32  %r6, %tid.x;\n"
    " mad.lo.s32  %r1, %r4, %r5, %r6;\n"
    " setp.ge.s32  %p1, %r1, %r3;\n"
    " @%p1 bra  $L__BB0_2;\n"
    " cvta.to.global.u64  %rd2, %rd1;\n"
    " mul.wide.s32  %rd3, %r1, 4;\n"
    " add.s64  %rd4, %rd2, %rd3;\n"
    " ld.global.u32  %r7, [%rd4];\n"
    " add.s32  %r8, %r7, %r2;\n"
    " st.global.u32  [%rd4], %r8;\n"
    "$L__BB0_2:\n"
    " ret;\n"
    "}\n"
    ".visible .entry k_smem(\n"
    " .param .u64 k_smem_param_0,\n"
    " .param .u32 k_smem_param_1\n"
    ")\n"
    "{\n"
    " .reg .pred  %p<2>;\n"
    " .reg .b32  %r<11>;\n"
    " .reg .b64  %rd<5>;\n"
    " ld.param.u64  %rd1, [k_smem_param_0];\n"
    " ld.param.u32  %r3, [k_smem_param_1];\n"
    " mov.u32  %r4, %ctaid.x;\n"
    " mov.u32  %r5, %ntid.x;\n"
    " mov.u32  %r6, %tid.x;\n"
    " mad.lo.s32  %r1, %r4, %r5, %r6;\n"
    " shl.b32  %r7, %r6, 2;\n"
    " mov.u32  %r8, s;\n"
    " add.s32  %r2, %r8, %r7;\n"
    " st.shared.u32  [%r2], %r1;\n"
    " bar.sync  0;\n"
    " setp.ge.s32  %p1, %r1, %r3;\n"
    " @%p1 bra  $L__BB1_2;\n"
    " cvta.to.global.u64  %rd2, %rd1;\n"
    " ld.shared.u32  %r9, [%r2];\n"
    " shl.b32  %r10, %r9, 1;\n"
    " mul.wide.s32  %rd3, %r1, 4;\n"
    " add.s64  %rd4, %rd2, %rd3;\n"
    " st.global.u32  [%rd4], %r10;\n"
    "$L__BB1_2:\n"
    " ret;\n"
    "}\n";

#define RC(key, call) printf("%s=%d\n", key, (int)(call))

static void *proc(const char *name, int version)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult q;
    if (cuGetProcAddress(name, &fn, version, CU_GET_PROC_ADDRESS_DEFAULT, &q) != CUDA_SUCCESS) return NULL;
    return fn;
}

static int g_cb_calls;
static size_t smem_none(int blockSize) { (void)blockSize; g_cb_calls++; return 0; }
static size_t smem_per_thread(int blockSize) { g_cb_calls++; return (size_t)blockSize * 48; }

static void occupancy(CUfunction f)
{
    int grid = 0, block = 0, grid2 = 0, block2 = 0;
    RC("occ_plain", cuOccupancyMaxPotentialBlockSize(&grid, &block, f, NULL, 0, 0));
    printf("occ_block=%d\nocc_grid=%d\n", block, grid);
    RC("occ_cb", cuOccupancyMaxPotentialBlockSize(&grid2, &block2, f, smem_none, 0, 0));
    printf("occ_cb_same=%d\n", grid2 == grid && block2 == block);
    printf("occ_cb_called=%d\n", g_cb_calls > 0);
    RC("occ_cb_smem", cuOccupancyMaxPotentialBlockSize(&grid2, &block2, f, smem_per_thread, 0, 128));
    printf("occ_cb_smem_block=%d\nocc_cb_smem_grid=%d\n", block2, grid2);
    int nb = 0;
    RC("occ_active", cuOccupancyMaxActiveBlocksPerMultiprocessor(&nb, f, block2, (size_t)block2 * 48));
    printf("occ_active_blocks=%d\n", nb);
    typedef CUresult (*cl_fn)(int *, CUfunction, const CUlaunchConfig *);
    cl_fn cl = (cl_fn)proc("cuOccupancyMaxPotentialClusterSize", 11070);
    CUlaunchConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDimX = 16; cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 128; cfg.blockDimY = cfg.blockDimZ = 1;
    int cs = -1;
    if (cl) RC("cluster_size", cl(&cs, f, &cfg)); else printf("cluster_size=absent\n");
}

static void linking(void)
{
    CUlinkState ls;
    void *cubin = NULL;
    size_t size = 0;
    RC("link_create", cuLinkCreate(0, NULL, NULL, &ls));
    RC("link_add", cuLinkAddData(ls, CU_JIT_INPUT_PTX, (void *)KERNELS_PTX, sizeof KERNELS_PTX, "kernels.ptx", 0, NULL, NULL));
    RC("link_complete", cuLinkComplete(ls, &cubin, &size));
    printf("link_size_ok=%d\n", cubin != NULL && size > 0);
    CUmodule m;
    CUfunction f;
    RC("link_load", cuModuleLoadData(&m, cubin));
    RC("link_getfunc", cuModuleGetFunction(&f, m, "k_add"));
    CUdeviceptr d;
    int n = 256, v = 3;
    cuMemAlloc(&d, n * sizeof(int));
    cuMemsetD32(d, 5, n);
    void *args[] = {&d, &n, &v};
    RC("link_launch", cuLaunchKernel(f, 1, 1, 1, n, 1, 1, 0, NULL, args, NULL));
    int out[256];
    cuMemcpyDtoH(out, d, sizeof out);
    int good = 1;
    for (int i = 0; i < n; i++) good &= out[i] == 8;
    printf("link_kernel=%s\n", good ? "ok" : "bad");
    cuMemFree(d);
    cuModuleUnload(m);
    RC("link_destroy", cuLinkDestroy(ls));
    // cuLinkAddFile reads a file of this machine
    char path[] = "/tmp/tf-api-ext-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, KERNELS_PTX, sizeof KERNELS_PTX - 1) != (ssize_t)(sizeof KERNELS_PTX - 1)) {
        printf("FAIL tempfile\n");
        return;
    }
    close(fd);
    cuLinkCreate(0, NULL, NULL, &ls);
    RC("link_addfile", cuLinkAddFile(ls, CU_JIT_INPUT_PTX, path, 0, NULL, NULL));
    RC("link_addfile_missing", cuLinkAddFile(ls, CU_JIT_INPUT_PTX, "/nonexistent/k.ptx", 0, NULL, NULL));
    RC("link_complete_file", cuLinkComplete(ls, &cubin, &size));
    cuLinkDestroy(ls);
    unlink(path);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void enumerate(CUmodule mod, CUfunction fsmem)
{
    CUlibrary lib;
    RC("lib_load", cuLibraryLoadData(&lib, KERNELS_PTX, NULL, NULL, 0, NULL, NULL, 0));
    unsigned int count = 0;
    RC("lib_count", cuLibraryGetKernelCount(&count, lib));
    printf("lib_kernels=%u\n", count);
    CUkernel ks[8];
    const char *names[8];
    RC("lib_enumerate", cuLibraryEnumerateKernels(ks, count < 8 ? count : 8, lib));
    int ok = 1;
    for (unsigned i = 0; i < count && i < 8; i++) ok &= cuKernelGetName(&names[i], ks[i]) == CUDA_SUCCESS;
    printf("lib_names_rc=%d\n", ok ? 0 : 1);
    if (ok && count == 2) {
        qsort(names, 2, sizeof names[0], cmp_str);
        printf("lib_names=%s,%s\n", names[0], names[1]);
    }
    CUkernel k;
    const char *kn = NULL;
    cuLibraryGetKernel(&k, lib, "k_smem");
    RC("kernel_name_rc", cuKernelGetName(&kn, k));
    printf("kernel_name=%s\n", kn ? kn : "(null)");
    typedef CUresult (*getlib_fn)(CUlibrary *, CUkernel);
    getlib_fn gl = (getlib_fn)proc("cuKernelGetLibrary", 12050);
    CUlibrary lib2 = NULL;
    if (gl) {
        CUresult r = gl(&lib2, k);
        printf("kernel_library=%d\n", (int)r);
        if (r == CUDA_SUCCESS) printf("kernel_library_same=%d\n", lib2 == lib);
    } else {
        printf("kernel_library=absent\n");
    }
    printf("kernel_name_bogus_rejected=%d\n", cuKernelGetName(&kn, (CUkernel)(uintptr_t)0x1234560) != CUDA_SUCCESS);
    RC("lib_unload", cuLibraryUnload(lib));
    RC("mod_count", cuModuleGetFunctionCount(&count, mod));
    printf("mod_functions=%u\n", count);
    typedef CUresult (*enum_fn)(CUfunction *, unsigned int, CUmodule);
    enum_fn ef = (enum_fn)proc("cuModuleEnumerateFunctions", 12040);
    CUfunction fs[2];
    if (ef) RC("mod_enumerate", ef(fs, 2, mod)); else printf("mod_enumerate=absent\n");
    const char *fn = NULL;
    RC("func_name_rc", cuFuncGetName(&fn, fsmem));
    printf("func_name=%s\n", fn ? fn : "(null)");
}

static void peers(CUcontext ctx)
{
    int can = -1;
    RC("can_access_peer_rc", cuDeviceCanAccessPeer(&can, 0, 0));
    printf("can_access_peer=%d\n", can);
    CUdeviceptr a, b;
    int n = 1024;
    cuMemAlloc(&a, n * 4);
    cuMemAlloc(&b, n * 4);
    cuMemsetD32(a, 77, n);
    RC("peer_copy", cuMemcpyPeer(b, ctx, a, ctx, n * 4));
    int v = 0;
    cuMemcpyDtoH(&v, b + 4 * 500, 4);
    printf("peer_value=%d\n", v);
    cuMemsetD32(a, 78, n);
    RC("peer_copy_async", cuMemcpyPeerAsync(b, ctx, a, ctx, n * 4, NULL));
    cuCtxSynchronize();
    cuMemcpyDtoH(&v, b + 4 * 500, 4);
    printf("peer_async_value=%d\n", v);
    printf("peer_copy_bogus_rejected=%d\n", cuMemcpyPeer(b, ctx, a + (1 << 30), ctx, n * 4) != CUDA_SUCCESS);
    typedef CUresult (*enable_fn)(CUcontext, unsigned int);
    enable_fn en = (enable_fn)proc("cuCtxEnablePeerAccess", 4000);
    if (en) RC("enable_peer", en(ctx, 0)); else printf("enable_peer=absent\n");
    typedef CUresult (*wv_fn)(CUstream, CUdeviceptr, cuuint32_t, unsigned int);
    wv_fn wv = (wv_fn)proc("cuStreamWriteValue32", 12000);
    if (wv) {
        RC("write_value", wv(NULL, b, 1234, 0));
        RC("write_value_sync", cuCtxSynchronize());
        cuMemcpyDtoH(&v, b, 4);
        printf("write_value_result=%d\n", v);
        wv_fn wt = (wv_fn)proc("cuStreamWaitValue32", 12000);
        if (wt) {
            RC("wait_value", wt(NULL, b, 1000, CU_STREAM_WAIT_VALUE_GEQ));
            RC("wait_value_sync", cuCtxSynchronize());
        }
    } else {
        printf("write_value=absent\n");
    }
    typedef CUresult (*batch_fn)(CUstream, unsigned int, CUstreamBatchMemOpParams *, unsigned int);
    batch_fn bm = (batch_fn)proc("cuStreamBatchMemOp", 12000);
    if (bm) {
        CUstreamBatchMemOpParams op;
        memset(&op, 0, sizeof op);
        op.writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32;
        op.writeValue.address = b + 4;
        op.writeValue.value = 99;
        RC("batch", bm(NULL, 1, &op, 0));
        RC("batch_sync", cuCtxSynchronize());
        cuMemcpyDtoH(&v, b + 4, 4);
        printf("batch_result=%d\n", v);
    } else {
        printf("batch=absent\n");
    }
    cuMemFree(a);
    cuMemFree(b);
}

int main()
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fsmem;
    if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx)) {
        printf("FAIL context\n");
        return 1;
    }
    if (cuModuleLoadData(&mod, KERNELS_PTX) || cuModuleGetFunction(&fsmem, mod, "k_smem")) {
        printf("FAIL module\n");
        return 1;
    }
    CUmoduleLoadingMode lm = (CUmoduleLoadingMode)0;
    RC("loading_mode_rc", cuModuleGetLoadingMode(&lm));
    printf("loading_mode=%d\n", (int)lm); /* 1 eager, 2 lazy (CUDA_MODULE_LOADING) */
    occupancy(fsmem);
    linking();
    enumerate(mod, fsmem);
    peers(ctx);
    printf("done=1\n");
    return 0;
}
