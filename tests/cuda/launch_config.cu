// launch_config.cu - launch configuration checks, function attributes, occupancy, dynamic shared
// memory opt-in, cooperative launch, stream-ordered and managed allocation, through cudart.
// I/O contract: launch_config   (no arguments). stdout "key=value" lines:
//   ok_launch=<err>            a valid launch (fills a buffer; checked by "fill=ok|bad")
//   zero_grid=<err>            grid of 0 blocks
//   big_block=<err>            2048 threads per block
//   big_block_z=<err>          block (1,1,128): z above 64
//   smem_default=<err>         96 KiB dynamic shared memory without opting in
//   smem_optin=<err>           the same after cudaFuncSetAttribute(MaxDynamicSharedMemorySize)
//   smem_too_much=<err>        opting in to 200 KiB
//   after_errors=<err>         a valid launch after the config errors (config errors are not sticky)
//   max_threads=<n> static_smem=<bytes> num_regs=<n>   cudaFuncGetAttributes of the fill kernel
//   occupancy=<blocks per SM for 256 threads>
//   coop=<err> coop_sum=<ok|bad>  cudaLaunchCooperativeKernel of a kernel that sums block ids
//   async_alloc=<err> managed=<ok|bad>
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

__global__ void block_sum(int *out)
{
    if (threadIdx.x == 0)
        atomicAdd(out, (int)blockIdx.x);
}

__global__ void add_one(float *p, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] += 1.0f;
}

static const char *name(cudaError_t e) { return cudaGetErrorName(e); }

static cudaError_t launch_err() /* error of the last launch, as seen by a program */
{
    cudaError_t e = cudaGetLastError();
    return e != cudaSuccess ? e : cudaDeviceSynchronize();
}

int main()
{
    int *d;
    CK(cudaMalloc(&d, 1024 * sizeof(int)));
    fill<<<4, 256>>>(d, 7);
    printf("ok_launch=%s\n", name(launch_err()));
    int h[1024];
    CK(cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost));
    bool ok = true;
    for (int i = 0; i < 1024; i++)
        ok = ok && h[i] == 7;
    printf("fill=%s\n", ok ? "ok" : "bad");

    fill<<<0, 32>>>(d, 1);
    printf("zero_grid=%s\n", name(launch_err()));
    fill<<<1, 2048>>>(d, 1);
    printf("big_block=%s\n", name(launch_err()));
    fill<<<1, dim3(1, 1, 128)>>>(d, 1);
    printf("big_block_z=%s\n", name(launch_err()));
    use_smem<<<1, 256, 96 * 1024>>>(d);
    printf("smem_default=%s\n", name(launch_err()));
    CK(cudaFuncSetAttribute(use_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, 96 * 1024));
    use_smem<<<1, 256, 96 * 1024>>>(d);
    printf("smem_optin=%s\n", name(launch_err()));
    printf("smem_too_much=%s\n", name(cudaFuncSetAttribute(use_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024)));
    cudaGetLastError();
    fill<<<4, 256>>>(d, 9);
    printf("after_errors=%s\n", name(launch_err()));

    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, fill));
    printf("max_threads=%d\nstatic_smem=%zu\nnum_regs=%d\n", fa.maxThreadsPerBlock, fa.sharedSizeBytes, fa.numRegs);
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, fill, 256, 0));
    printf("occupancy=%d\n", occ);

    int *sum;
    CK(cudaMalloc(&sum, sizeof(int)));
    CK(cudaMemset(sum, 0, sizeof(int)));
    void *args[] = {&sum};
    cudaError_t ce = cudaLaunchCooperativeKernel((void *)block_sum, dim3(8), dim3(64), args, 0, 0);
    printf("coop=%s\n", name(ce != cudaSuccess ? ce : cudaDeviceSynchronize()));
    int s = 0;
    CK(cudaMemcpy(&s, sum, sizeof(int), cudaMemcpyDeviceToHost));
    printf("coop_sum=%s\n", s == 28 ? "ok" : "bad");

    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    float *a = 0;
    cudaError_t ae = cudaMallocAsync(&a, 64 * sizeof(float), st);
    if (ae == cudaSuccess)
        ae = cudaFreeAsync(a, st);
    if (ae == cudaSuccess)
        ae = cudaStreamSynchronize(st);
    printf("async_alloc=%s\n", name(ae));
    float *m;
    CK(cudaMallocManaged(&m, 100 * sizeof(float)));
    for (int i = 0; i < 100; i++)
        m[i] = (float)i;
    add_one<<<1, 128>>>(m, 100);
    CK(cudaDeviceSynchronize());
    ok = true;
    for (int i = 0; i < 100; i++)
        ok = ok && m[i] == (float)i + 1.0f;
    printf("managed=%s\n", ok ? "ok" : "bad");
    CK(cudaFree(m));
    CK(cudaFree(d));
    return 0;
}
