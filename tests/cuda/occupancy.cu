// occupancy.cu - the driver's occupancy answer (cudaOccupancyMaxActiveBlocksPerMultiprocessor) against
// NVIDIA's own occupancy calculator (cuda_occupancy.h) fed with the device's properties and the kernel's
// attributes as cudaFuncGetAttributes reports them: per-kernel registers, static and dynamic shared
// memory, .maxntid (__launch_bounds__), the dynamic shared memory limit
// (cudaFuncAttributeMaxDynamicSharedMemorySize) and the preferred shared memory carveout.
// Also the driver's cuOccupancyMaxPotentialBlockSize and cudaOccupancyAvailableDynamicSMemPerBlock against
// the calculator's. Build with -lcuda.
// I/O contract: occupancy   (no arguments). stdout one line per case, "occ_<case>=<driver>:<calculator>",
//   "pot_<case>=<driver block>/<grid>:<calculator block>/<grid>", "avail_<case>=<driver>:<calculator>"
//   (-1 where the call refused the configuration; "pot_<case>=n/a" where the libcuda.so.1 has no
//   cuOccupancyMaxPotentialBlockSize), and "error=..." if a call failed.
#include <cuda.h>
#include <cuda_occupancy.h>
#include <dlfcn.h>
#include <cstdio>
#include "tf_test_io.h"

__global__ void light(int *p)
{
    p[threadIdx.x] = threadIdx.x;
}

__global__ void smem_dyn(int *p)
{
    extern __shared__ int s[];
    s[threadIdx.x] = threadIdx.x;
    __syncthreads();
    p[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

__global__ void smem_static(int *p)
{
    __shared__ int buf[6144]; /* 24 KiB */
    buf[threadIdx.x] = threadIdx.x;
    __syncthreads();
    p[threadIdx.x] = buf[(threadIdx.x + 1) % blockDim.x];
}

__global__ void __launch_bounds__(256) bounded(int *p)
{
    p[threadIdx.x] = 2 * threadIdx.x;
}

// Many live values: more registers per thread than the others.
__global__ void heavy(float *p, int n)
{
    float a[24];
#pragma unroll
    for (int i = 0; i < 24; i++)
        a[i] = p[threadIdx.x + i * n];
    float s = 0;
#pragma unroll
    for (int i = 0; i < 24; i++)
        s += a[i] * a[(i * 7) % 24] - a[(i * 5) % 24];
    p[threadIdx.x] = s;
}

static cudaDeviceProp g_prop;

template <typename K> static void one(const char *name, K kernel, int block, size_t dyn, int carveout = -1)
{
    int drv = -1;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&drv, kernel, block, dyn));
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, kernel));
    cudaOccDeviceProp prop(g_prop);
    cudaOccFuncAttributes attr(fa);
    cudaOccDeviceState state;
    state.carveoutConfig = (cudaOccCarveoutConfig)carveout;
    cudaOccResult res;
    int calc = -1;
    if (cudaOccMaxActiveBlocksPerMultiprocessor(&res, &prop, &attr, &state, block, dyn) == CUDA_OCC_SUCCESS)
        calc = res.activeBlocksPerMultiprocessor;
    printf("occ_%s=%d:%d\n", name, drv, calc);
}

static cudaOccDeviceState state_of(int carveout)
{
    cudaOccDeviceState state;
    state.carveoutConfig = (cudaOccCarveoutConfig)carveout;
    return state;
}

template <typename K> static void potential(const char *name, K kernel, size_t dyn, int carveout = -1)
{
    cudaFunction_t f;
    CK(cudaGetFuncBySymbol(&f, (const void *)kernel));
    typedef CUresult (*pot_fn)(int *, int *, CUfunction, CUoccupancyB2DSize, size_t, int);
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD); /* loaded by cudart already */
    pot_fn pot = lib ? (pot_fn)dlsym(lib, "cuOccupancyMaxPotentialBlockSize") : NULL;
    if (!pot) { /* a libcuda.so.1 without it */
        printf("pot_%s=n/a\n", name);
        return;
    }
    int grid = -1, block = -1;
    if (pot(&grid, &block, (CUfunction)f, NULL, dyn, 0) != CUDA_SUCCESS)
        grid = block = -1;
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, kernel));
    cudaOccDeviceProp prop(g_prop);
    cudaOccFuncAttributes attr(fa);
    cudaOccDeviceState state = state_of(carveout);
    int cgrid = -1, cblock = -1;
    if (cudaOccMaxPotentialOccupancyBlockSize(&cgrid, &cblock, &prop, &attr, &state, dyn) != CUDA_OCC_SUCCESS)
        cgrid = cblock = -1;
    printf("pot_%s=%d/%d:%d/%d\n", name, block, grid, cblock, cgrid);
}

template <typename K> static void available(const char *name, K kernel, int blocks, int block, int carveout = -1)
{
    size_t drv = 0, calc = 0;
    long long d = cudaOccupancyAvailableDynamicSMemPerBlock(&drv, kernel, blocks, block) == cudaSuccess ? (long long)drv : -1;
    cudaGetLastError();
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, kernel));
    cudaOccDeviceProp prop(g_prop);
    cudaOccFuncAttributes attr(fa);
    cudaOccDeviceState state = state_of(carveout);
    long long c = cudaOccAvailableDynamicSMemPerBlock(&calc, &prop, &attr, &state, blocks, block) == CUDA_OCC_SUCCESS
                      ? (long long)calc : -1;
    printf("avail_%s=%lld:%lld\n", name, d, c);
}

int main()
{
    CK(cudaGetDeviceProperties(&g_prop, 0));
    one("light_128", light, 128, 0);
    one("light_1024", light, 1024, 0);
    one("light_96", light, 96, 0);
    one("heavy_256", heavy, 256, 0);
    one("heavy_1024", heavy, 1024, 0);
    one("bounded_256", bounded, 256, 0);
    one("static_24k", smem_static, 128, 0);
    one("dyn_8k", smem_dyn, 128, 8 * 1024);
    one("dyn_40k", smem_dyn, 128, 40 * 1024);
    one("dyn_64k_default_limit", smem_dyn, 128, 64 * 1024);
    one("dyn_96k_default_limit", smem_dyn, 128, 96 * 1024);
    potential("light", light, 0);
    potential("heavy", heavy, 0);
    potential("bounded", bounded, 0);
    potential("dyn_20k", smem_dyn, 20 * 1024);
    available("light_1x256", light, 1, 256);
    available("light_4x256", light, 4, 256);
    available("static_3x128", smem_static, 3, 128);
    available("heavy_9x256", heavy, 9, 256);
    CK(cudaFuncSetAttribute(smem_dyn, cudaFuncAttributeMaxDynamicSharedMemorySize, 96 * 1024));  /* within the opt-in of cc 8.0 and newer (12.x: 99 KiB) */
    one("dyn_64k_raised", smem_dyn, 128, 64 * 1024);
    one("dyn_96k_raised", smem_dyn, 128, 96 * 1024);
    one("dyn_120k_above_raised", smem_dyn, 128, 120 * 1024);
    one("dyn_20k_raised", smem_dyn, 128, 20 * 1024);
    available("dyn_raised_1x128", smem_dyn, 1, 128);
    available("dyn_raised_2x128", smem_dyn, 2, 128);
    CK(cudaFuncSetAttribute(smem_dyn, cudaFuncAttributePreferredSharedMemoryCarveout, 25));
    one("dyn_8k_carveout25", smem_dyn, 128, 8 * 1024, 25);
    one("dyn_20k_carveout25", smem_dyn, 128, 20 * 1024, 25);
    available("dyn_carveout25_3x128", smem_dyn, 3, 128, 25);
    potential("dyn_20k_carveout25", smem_dyn, 20 * 1024, 25);
    return 0;
}
