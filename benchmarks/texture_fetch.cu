// texture_fetch.cu - texture fetch rate of the emulated device (benchmarks/RESULTS.md, "texture fetch path"): the
// shapes of the two cuda-samples that time out on it (simplePitchLinearTexture: point, wrap, normalized;
// convolutionTexture: 17 linear taps, unnormalized) on a 1024x1024 float array, REPS launches of one of them.
// Build: nvcc -O2 -gencode arch=compute_90,code=compute_90 -o texture_fetch benchmarks/texture_fetch.cu
// Run:   LD_LIBRARY_PATH=build/emu TF_EMU_THREADS=1 /usr/bin/time -f %U ./texture_fetch 0|1 REPS
#include <cuda_runtime.h>
#include <cstdio>
#include <vector>
__global__ void shift(float *o, int w, int h, cudaTextureObject_t t) {
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    o[y * w + x] = tex2D<float>(t, (x + 3) / (float)w, (y + 5) / (float)h);
}
__global__ void conv(float *o, int w, int h, cudaTextureObject_t t) {
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    float s = 0;
    for (int k = -8; k <= 8; k++) s += tex2D<float>(t, x + 0.5f + k, y + 0.5f) * (k + 9);
    o[y * w + x] = s;
}
int main(int argc, char **argv) {
    int which = atoi(argv[1]), reps = atoi(argv[2]);
    const int W = 1024, H = 1024;
    std::vector<float> img(W * H);
    for (int i = 0; i < W * H; i++) img[i] = (float)(i % 977);
    cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
    cudaArray_t a; cudaMallocArray(&a, &fd, W, H);
    cudaMemcpy2DToArray(a, 0, 0, img.data(), W * 4, W * 4, H, cudaMemcpyHostToDevice);
    cudaResourceDesc rd{}; rd.resType = cudaResourceTypeArray; rd.res.array.array = a;
    cudaTextureDesc td{}; td.addressMode[0] = td.addressMode[1] = cudaAddressModeWrap;
    td.filterMode = which ? cudaFilterModeLinear : cudaFilterModePoint; td.normalizedCoords = which ? 0 : 1;
    cudaTextureObject_t t; cudaCreateTextureObject(&t, &rd, &td, nullptr);
    float *o; cudaMalloc(&o, W * H * 4);
    dim3 b(16, 16), g(W / 16, H / 16);
    for (int r = 0; r < reps; r++) { if (which) conv<<<g, b>>>(o, W, H, t); else shift<<<g, b>>>(o, W, H, t); }
    float v; cudaMemcpy(&v, o + 12345, 4, cudaMemcpyDeviceToHost);
    printf("v=%g err=%s\n", v, cudaGetErrorName(cudaGetLastError()));
}
