// driver_api.cu - uses only the CUDA driver API (cuda.h, -lcuda): cuInit, cuCtxCreate, module load
// from a file (cuModuleLoad) or from memory (cuModuleLoadData), cuModuleGetFunction,
// cuFuncGetParamInfo, cuLaunchKernel with kernelParams and with `extra`, cuModuleGetGlobal.
// I/O contract: driver_api <module.ptx|module.fatbin> <file|data> N in.bin out.bin
//   module: driver_kernels.cu compiled with nvcc -ptx or -fatbin.
//   in.bin = x[N] float32;  out.bin = x * 3 * 0.5 (two launches of scale) float32.
//   stdout: "params=<off:size,...>", "blocks_seen=<int>" (global read back: 2 * blocks),
//           "blocks=<blocks per launch>", "bad_launch=<CUresult name of a launch with block 2048>",
//           "busy_ns=<growth of tfEmuGetBusyTime over the two launches, -1 if the libcuda has none>",
//           "wall_ns=<wall-clock ns of the two launch calls>".
#include "tf_test_io.h"
#include <dlfcn.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc < 6) {
        printf("usage: driver_api module file|data N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[3]);
    FILE *in = open_or_die(argv[4], "rb");
    std::vector<float> x = read_array<float>(in, n);
    fclose(in);
    CU(cuInit(0));
    CUdevice dev;
    CU(cuDeviceGet(&dev, 0));
    CUcontext ctx;
    CU(cuCtxCreate(&ctx, NULL, 0, dev));
    CUmodule mod;
    if (argv[2][0] == 'f') {
        CU(cuModuleLoad(&mod, argv[1]));
    } else {
        FILE *f = fopen(argv[1], "rb");
        if (!f)
            return 2;
        std::vector<char> img(1 << 20);
        size_t len = fread(img.data(), 1, img.size() - 1, f);
        fclose(f);
        img[len] = 0;
        CU(cuModuleLoadData(&mod, img.data()));
    }
    CUfunction fn;
    CU(cuModuleGetFunction(&fn, mod, "scale"));
    printf("params=");
    for (int i = 0; i < 3; i++) {
        size_t off, size;
        CU(cuFuncGetParamInfo(fn, i, &off, &size));
        printf("%s%zu:%zu", i ? "," : "", off, size);
    }
    printf("\n");
    CUdeviceptr dx;
    CU(cuMemAlloc(&dx, n * sizeof(float)));
    CU(cuMemcpyHtoD(dx, x.data(), n * sizeof(float)));
    typedef CUresult (*busy_fn)(unsigned long long *);
    busy_fn busy = (busy_fn)dlsym(RTLD_DEFAULT, "tfEmuGetBusyTime");
    unsigned long long busy0 = 0, busy1 = 0;
    if (busy)
        CU(busy(&busy0));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned blocks = (n + 127) / 128;
    float a = 3.0f;
    void *params[] = {&dx, &a, &n};
    CU(cuLaunchKernel(fn, blocks, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
    struct {
        CUdeviceptr x;
        float a;
        int n;
    } buf = {dx, 0.5f, n};
    size_t buf_size = sizeof(buf);
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &buf_size, CU_LAUNCH_PARAM_END};
    CU(cuLaunchKernel(fn, blocks, 1, 1, 128, 1, 1, 0, NULL, NULL, extra));
    CU(cuCtxSynchronize());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (busy)
        CU(busy(&busy1));
    long long wall = (t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec);
    printf("busy_ns=%lld\nwall_ns=%lld\n", busy ? (long long)(busy1 - busy0) : -1ll, wall);
    CUresult bad = cuLaunchKernel(fn, 1, 1, 1, 2048, 1, 1, 0, NULL, params, NULL);
    const char *bad_name = "?";
    cuGetErrorName(bad, &bad_name);
    CU(cuMemcpyDtoH(x.data(), dx, n * sizeof(float)));
    CUdeviceptr g;
    size_t gsize;
    CU(cuModuleGetGlobal(&g, &gsize, mod, "blocks_seen"));
    int seen = 0;
    CU(cuMemcpyDtoH(&seen, g, sizeof(int)));
    printf("blocks_seen=%d\nblocks=%u\nglobal_size=%zu\nbad_launch=%s\n", seen, blocks, gsize, bad_name);
    FILE *out = open_or_die(argv[5], "wb");
    write_array(out, x);
    fclose(out);
    CU(cuMemFree(dx));
    CU(cuModuleUnload(mod));
    CU(cuCtxDestroy(ctx));
    return 0;
}
