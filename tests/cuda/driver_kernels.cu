// driver_kernels.cu - device code for driver_api.cu; the test compiles it with nvcc -ptx and
// -fatbin (PTX target compute_80) and driver_api loads the result with cuModuleLoad/LoadData.
// scale: x[i] *= a for i < n; each block's thread 0 also counts the block in `blocks_seen`.
__device__ int blocks_seen;

extern "C" __global__ void scale(float *x, float a, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] *= a;
    if (threadIdx.x == 0)
        atomicAdd(&blocks_seen, 1);
}
