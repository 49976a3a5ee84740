// launch_errors.cu - what a launch the device cannot run answers, and when: at the launch call itself,
// through the runtime (<<<>>>, cudaLaunchCooperativeKernel) and through the driver API (cuLaunchKernel,
// cuLaunchKernelEx, cuLaunchCooperativeKernel on the same kernels, got with cudaGetFuncBySymbol).
// Build with -lcuda. None of these errors is sticky: the last lines check the context still works.
// I/O contract: launch_errors   (no arguments). stdout "key=value" lines, values are error names:
//   rt_zero_grid, rt_big_block        <<<0,32>>> / <<<1,2048>>>, cudaGetLastError() right after
//   drv_zero_grid, drv_big_block, drv_big_block_z, drv_ex_big_block   the same through the driver API
//   rt_smem_default                   96 KiB dynamic shared memory, not opted in: cudaGetLastError() right after
//   rt_smem_default_sync              cudaDeviceSynchronize() after it (the error is not latched for later)
//   drv_smem_default, drv_ex_smem     the same launch through cuLaunchKernel / cuLaunchKernelEx
//   drv_static_plus_dyn               16 KiB static + 40 KiB dynamic (> 48 KiB - static)
//   drv_static_plus_dyn_ok            16 KiB static + 32 KiB dynamic (exactly the limit)
//   drv_smem_optin, rt_smem_optin     96 KiB after cuFuncSetAttribute / cudaFuncSetAttribute raised the limit
//   drv_smem_lowered                  2 KiB after the limit was lowered again to 1 KiB
//   drv_over_launch_bounds, rt_over_launch_bounds   256 threads for a __launch_bounds__(128) kernel
//   coop_max_blocks=<n>               co-resident blocks of coop_sum at 1024 threads (occupancy x SMs)
//   rt_coop_fits, rt_coop_too_large   cudaLaunchCooperativeKernel with n / n+1 blocks (launch result)
//   drv_coop_too_large, drv_ex_coop_too_large   cuLaunchCooperativeKernel / cuLaunchKernelEx(COOPERATIVE)
//   after=<err>                       a valid launch and synchronize after all of the above
#include <cuda.h>
#include <cstdio>
#include "tf_test_io.h"

__global__ void fill(int *p, int v)
{
    p[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

__global__ void use_smem(int *p)
{
    extern __shared__ int s[];
    s[threadIdx.x] = threadIdx.x;
    __syncthreads();
    p[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

__global__ void static_smem(int *p)
{
    __shared__ int buf[4096]; /* 16 KiB */
    extern __shared__ int dyn[];
    buf[threadIdx.x] = threadIdx.x;
    dyn[threadIdx.x] = 1;
    __syncthreads();
    p[threadIdx.x] = buf[threadIdx.x] + dyn[threadIdx.x];
}

__global__ void __launch_bounds__(128) bounded(int *p)
{
    p[threadIdx.x] = 1;
}

__global__ void coop_sum(int *out)
{
    if (threadIdx.x == 0)
        atomicAdd(out, 1);
}

static const char *cu(CUresult r)
{
    const char *n = "?";
    if (cuGetErrorName(r, &n) != CUDA_SUCCESS || !n)
        n = "unnamed";
    return n;
}

static CUfunction func_of(const void *symbol)
{
    cudaFunction_t f;
    CK(cudaGetFuncBySymbol(&f, symbol));
    return (CUfunction)f;
}

static CUresult drv(CUfunction f, unsigned gx, unsigned bx, unsigned bz, unsigned smem, void **params)
{
    return cuLaunchKernel(f, gx, 1, 1, bx, 1, bz, smem, NULL, params, NULL);
}

static CUresult drv_ex(CUfunction f, unsigned gx, unsigned bx, unsigned smem, void **params, int coop)
{
    CUlaunchAttribute a;
    a.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
    a.value.cooperative = 1;
    CUlaunchConfig c = {};
    c.gridDimX = gx, c.gridDimY = 1, c.gridDimZ = 1;
    c.blockDimX = bx, c.blockDimY = 1, c.blockDimZ = 1;
    c.sharedMemBytes = smem;
    c.attrs = coop ? &a : NULL;
    c.numAttrs = coop ? 1 : 0;
    return cuLaunchKernelEx(&c, f, params, NULL);
}

int main()
{
    int *d;
    CK(cudaMalloc(&d, 64 * 1024 * sizeof(int)));
    void *params[] = {&d};
    CUfunction f_fill = func_of((const void *)fill), f_smem = func_of((const void *)use_smem);
    CUfunction f_static = func_of((const void *)static_smem), f_bounded = func_of((const void *)bounded);
    CUfunction f_coop = func_of((const void *)coop_sum);
    int v = 1;
    void *fill_params[] = {&d, &v};

    fill<<<0, 32>>>(d, 1);
    printf("rt_zero_grid=%s\n", cudaGetErrorName(cudaGetLastError()));
    fill<<<1, 2048>>>(d, 1);
    printf("rt_big_block=%s\n", cudaGetErrorName(cudaGetLastError()));
    printf("drv_zero_grid=%s\n", cu(drv(f_fill, 0, 32, 1, 0, fill_params)));
    printf("drv_big_block=%s\n", cu(drv(f_fill, 1, 2048, 1, 0, fill_params)));
    printf("drv_big_block_z=%s\n", cu(drv(f_fill, 1, 1, 128, 0, fill_params)));
    printf("drv_ex_big_block=%s\n", cu(drv_ex(f_fill, 1, 2048, 0, fill_params, 0)));

    use_smem<<<1, 256, 96 * 1024>>>(d);
    printf("rt_smem_default=%s\n", cudaGetErrorName(cudaGetLastError()));
    printf("rt_smem_default_sync=%s\n", cudaGetErrorName(cudaDeviceSynchronize()));
    printf("drv_smem_default=%s\n", cu(drv(f_smem, 1, 256, 1, 96 * 1024, params)));
    printf("drv_ex_smem=%s\n", cu(drv_ex(f_smem, 1, 256, 96 * 1024, params, 0)));
    printf("drv_static_plus_dyn=%s\n", cu(drv(f_static, 1, 256, 1, 40 * 1024, params)));
    printf("drv_static_plus_dyn_ok=%s\n", cu(drv(f_static, 1, 256, 1, 32 * 1024, params)));
    CUresult r = cuFuncSetAttribute(f_smem, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 96 * 1024);
    printf("drv_smem_optin=%s\n", cu(r ? r : drv(f_smem, 1, 256, 1, 96 * 1024, params)));
    CK(cudaFuncSetAttribute(use_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, 96 * 1024));
    use_smem<<<1, 256, 96 * 1024>>>(d);
    printf("rt_smem_optin=%s\n", cudaGetErrorName(cudaGetLastError()));
    r = cuFuncSetAttribute(f_smem, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 1024);
    printf("drv_smem_lowered=%s\n", cu(r ? r : drv(f_smem, 1, 256, 1, 2048, params)));
    printf("drv_over_launch_bounds=%s\n", cu(drv(f_bounded, 1, 256, 1, 0, params)));
    bounded<<<1, 256>>>(d);
    printf("rt_over_launch_bounds=%s\n", cudaGetErrorName(cudaGetLastError()));
    printf("sync_after_config_errors=%s\n", cudaGetErrorName(cudaDeviceSynchronize()));

    int per_sm = 0, sms = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, coop_sum, 1024, 0));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    unsigned max_blocks = (unsigned)(per_sm * sms);
    printf("coop_max_blocks=%u\n", max_blocks);
    int *count;
    CK(cudaMalloc(&count, sizeof(int)));
    CK(cudaMemset(count, 0, sizeof(int)));
    void *cparams[] = {&count};
    cudaError_t e = cudaLaunchCooperativeKernel((const void *)coop_sum, dim3(max_blocks), dim3(1024), cparams, 0, 0);
    printf("rt_coop_fits=%s\n", cudaGetErrorName(e != cudaSuccess ? e : cudaDeviceSynchronize()));
    int h = 0;
    CK(cudaMemcpy(&h, count, sizeof(int), cudaMemcpyDeviceToHost));
    printf("coop_blocks_ran=%d\n", h);
    e = cudaLaunchCooperativeKernel((const void *)coop_sum, dim3(max_blocks + 1), dim3(1024), cparams, 0, 0);
    printf("rt_coop_too_large=%s\n", cudaGetErrorName(e));
    cudaGetLastError();
    printf("drv_coop_too_large=%s\n",
           cu(cuLaunchCooperativeKernel(f_coop, max_blocks + 1, 1, 1, 1024, 1, 1, 0, NULL, cparams)));
    printf("drv_ex_coop_too_large=%s\n", cu(drv_ex(f_coop, max_blocks + 1, 1024, 0, cparams, 1)));

    fill<<<4, 256>>>(d, 9);
    e = cudaGetLastError();
    printf("after=%s\n", cudaGetErrorName(e != cudaSuccess ? e : cudaDeviceSynchronize()));
    return 0;
}
