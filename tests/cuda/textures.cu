// textures.cu - CUDA arrays, texture objects and surface objects as a program sees them (cudart for kernels
// and copies, the driver API for the descriptor queries and error codes). Built with -lcuda.
// I/O contract: textures W H in.bin out.bin
//   in.bin: img[H][W] float32.
//   out.bin, float32, in this order (n = W*H points, i at u = (i%W)*25/64-1.3125, v = (i/W)*29/64-0.6875;
//     W and H powers of two keep u/W exact):
//     [n] point, unnormalized, clamp          [n] linear, unnormalized, clamp
//     [n] point, unnormalized, border (7.0)   [n] linear, normalized (u/W, v/H), wrap
//     [n] linear, normalized, mirror          [n] tex2DLayered layer 1 of {img, 2*img}, point, clamp
//     [4n] tld4 (tex2Dgather comp 0), linear coords, clamp: 4 values per point
//     [n] tex1Dfetch on linear memory of img (index i - 5: out of range reads 0)
//     [n*4] uchar4 array of (x, y, x+y, 255) read as normalized floats (point, integer-center coords)
//     [W*H] surface written by surf2Dwrite(img*3 + 1), read back with cudaMemcpy2DFromArray
//     [W*H] surf2Dread with cudaBoundaryModeZero at x-1 (first column reads 0)
//     [W*H] surf2Dread with cudaBoundaryModeClamp at x-1 (first column reads column 0)
//     [W*H] 3D array W x H x 2 of {img, img+100}, tex3D point at z=1.5 (slice 1), unnormalized
//     [W*H] img copied array -> array (cudaMemcpy2DArrayToArray) -> device (cudaMemcpy2DFromArray) -> host
//   stdout key=value: desc=<W>x<H>x<D>:<fmt>:<ch>:<flags> of the 3D array (cuArray3DGetDescriptor),
//     three_channels, mem_requirements, sparse_properties, plane, linear_max, bad_array_destroy, bad_tex_destroy, view_without_view, res_type (cuTexObjectGetResourceDesc),
//     tex_filter (cuTexObjectGetTextureDesc), surf_on_plain_array, bad_handle_launch (a tex fetch through a
//     destroyed object, as a kernel error name).
#include <cuda.h>
#include <cuda_runtime.h>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tf_test_io.h"

#define CUNAME(call)                                                                               \
    ([&]() {                                                                                       \
        const char *n_ = "?";                                                                      \
        cuGetErrorName((call), &n_);                                                               \
        return n_;                                                                                 \
    }())

// sample points on a 1/64 grid (exact in float32, so contraction into FMAs cannot move them)
__device__ float2 pt(int i, int W) { return make_float2((i % W) * 0.390625f - 1.3125f, (i / W) * 0.453125f - 0.6875f); }

__global__ void sample2d(cudaTextureObject_t t, float *out, int n, int W, int H, int normalized)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float2 p = pt(i, W);
    if (normalized) p = make_float2(p.x / W, p.y / H);
    out[i] = tex2D<float>(t, p.x, p.y);
}

__global__ void sample_layered(cudaTextureObject_t t, float *out, int n, int W)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float2 p = pt(i, W);
    out[i] = tex2DLayered<float>(t, p.x, p.y, 1);
}

__global__ void gather(cudaTextureObject_t t, float4 *out, int n, int W)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float2 p = pt(i, W);
    out[i] = tex2Dgather<float4>(t, p.x, p.y, 0);
}

__global__ void fetch1d(cudaTextureObject_t t, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = tex1Dfetch<float>(t, i - 5);
}

__global__ void sample_rgba(cudaTextureObject_t t, float4 *out, int W, int H)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < W * H) out[i] = tex2D<float4>(t, i % W + 0.5f, i / W + 0.5f);
}

__global__ void sample3d(cudaTextureObject_t t, float *out, int W, int H)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < W * H) out[i] = tex3D<float>(t, i % W + 0.5f, i / W + 0.5f, 1.5f);
}

__global__ void surf_write(cudaTextureObject_t src, cudaSurfaceObject_t s, int W, int H)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= W * H) return;
    int x = i % W, y = i / W;
    surf2Dwrite(tex2D<float>(src, x + 0.5f, y + 0.5f) * 3.0f + 1.0f, s, x * 4, y);
}

__global__ void surf_read(cudaSurfaceObject_t s, float *zero, float *clamp, int W, int H)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= W * H) return;
    int x = i % W, y = i / W;
    float a, b;
    surf2Dread(&a, s, (x - 1) * 4, y, cudaBoundaryModeZero);
    surf2Dread(&b, s, (x - 1) * 4, y, cudaBoundaryModeClamp);
    zero[i] = a;
    clamp[i] = b;
}

static cudaTextureObject_t tex_of_array(cudaArray_t a, cudaTextureFilterMode f, cudaTextureAddressMode m, int normalized,
                                        float border = 0.0f, cudaTextureReadMode rm = cudaReadModeElementType)
{
    cudaResourceDesc r;
    memset(&r, 0, sizeof(r));
    r.resType = cudaResourceTypeArray;
    r.res.array.array = a;
    cudaTextureDesc d;
    memset(&d, 0, sizeof(d));
    d.addressMode[0] = d.addressMode[1] = d.addressMode[2] = m;
    d.filterMode = f;
    d.readMode = rm;
    d.normalizedCoords = normalized;
    d.borderColor[0] = d.borderColor[1] = d.borderColor[2] = d.borderColor[3] = border;
    cudaTextureObject_t t;
    CK(cudaCreateTextureObject(&t, &r, &d, NULL));
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        printf("usage: textures W H in.bin out.bin\n");
        return 2;
    }
    int W = atoi(argv[1]), H = atoi(argv[2]), n = W * H;
    FILE *fi = open_or_die(argv[3], "rb");
    std::vector<float> img = read_array<float>(fi, n);
    fclose(fi);
    std::vector<float> out;
    auto grab = [&](const float *d, size_t count) {
        size_t at = out.size();
        out.resize(at + count);
        CK(cudaMemcpy(out.data() + at, d, count * sizeof(float), cudaMemcpyDeviceToHost));
    };
    const int B = 128, G = (n + B - 1) / B;
    float *d_out;
    CK(cudaMalloc(&d_out, sizeof(float) * 4 * n));
    cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();

    cudaArray_t arr;
    CK(cudaMallocArray(&arr, &fd, W, H, cudaArrayTextureGather));  // tex2Dgather needs the flag
    CK(cudaMemcpy2DToArray(arr, 0, 0, img.data(), W * sizeof(float), W * sizeof(float), H, cudaMemcpyHostToDevice));
    struct { cudaTextureFilterMode f; cudaTextureAddressMode m; int norm; float border; } modes[] = {
        {cudaFilterModePoint, cudaAddressModeClamp, 0, 0}, {cudaFilterModeLinear, cudaAddressModeClamp, 0, 0},
        {cudaFilterModePoint, cudaAddressModeBorder, 0, 7.0f}, {cudaFilterModeLinear, cudaAddressModeWrap, 1, 0},
        {cudaFilterModeLinear, cudaAddressModeMirror, 1, 0},
    };
    for (auto &m : modes) {
        cudaTextureObject_t t = tex_of_array(arr, m.f, m.m, m.norm, m.border);
        sample2d<<<G, B>>>(t, d_out, n, W, H, m.norm);
        CK(cudaGetLastError());
        grab(d_out, n);
        CK(cudaDestroyTextureObject(t));
    }

    // layered: {img, 2*img}
    cudaArray_t lay;
    CK(cudaMalloc3DArray(&lay, &fd, make_cudaExtent(W, H, 2), cudaArrayLayered));
    std::vector<float> two(2 * n);
    for (int i = 0; i < n; i++) two[i] = img[i], two[n + i] = 2 * img[i];
    cudaMemcpy3DParms p3;
    memset(&p3, 0, sizeof(p3));
    p3.srcPtr = make_cudaPitchedPtr(two.data(), W * sizeof(float), W, H);
    p3.dstArray = lay;
    p3.extent = make_cudaExtent(W, H, 2);
    p3.kind = cudaMemcpyHostToDevice;
    CK(cudaMemcpy3D(&p3));
    {
        cudaTextureObject_t t = tex_of_array(lay, cudaFilterModePoint, cudaAddressModeClamp, 0);
        sample_layered<<<G, B>>>(t, d_out, n, W);
        CK(cudaGetLastError());
        grab(d_out, n);
        CK(cudaDestroyTextureObject(t));
    }
    {
        cudaTextureObject_t t = tex_of_array(arr, cudaFilterModeLinear, cudaAddressModeClamp, 0);
        gather<<<G, B>>>(t, (float4 *)d_out, n, W);
        CK(cudaGetLastError());
        grab(d_out, 4 * n);
        CK(cudaDestroyTextureObject(t));
    }
    // tex1Dfetch on linear memory
    float *d_img;
    CK(cudaMalloc(&d_img, n * sizeof(float)));
    CK(cudaMemcpy(d_img, img.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    {
        cudaResourceDesc r;
        memset(&r, 0, sizeof(r));
        r.resType = cudaResourceTypeLinear;
        r.res.linear.devPtr = d_img;
        r.res.linear.desc = fd;
        r.res.linear.sizeInBytes = n * sizeof(float);
        cudaTextureDesc d;
        memset(&d, 0, sizeof(d));
        cudaTextureObject_t t;
        CK(cudaCreateTextureObject(&t, &r, &d, NULL));
        fetch1d<<<G, B>>>(t, d_out, n);
        CK(cudaGetLastError());
        grab(d_out, n);
        CK(cudaDestroyTextureObject(t));
    }
    // uchar4 read as normalized floats
    {
        cudaChannelFormatDesc c4 = cudaCreateChannelDesc<uchar4>();
        cudaArray_t a4;
        CK(cudaMallocArray(&a4, &c4, W, H));
        std::vector<uchar4> px(n);
        for (int i = 0; i < n; i++) px[i] = make_uchar4(i % W, i / W, (i % W + i / W) & 255, 255);
        CK(cudaMemcpy2DToArray(a4, 0, 0, px.data(), W * 4, W * 4, H, cudaMemcpyHostToDevice));
        cudaTextureObject_t t = tex_of_array(a4, cudaFilterModePoint, cudaAddressModeClamp, 0, 0, cudaReadModeNormalizedFloat);
        sample_rgba<<<G, B>>>(t, (float4 *)d_out, W, H);
        CK(cudaGetLastError());
        grab(d_out, 4 * n);
        CK(cudaDestroyTextureObject(t));
        CK(cudaFreeArray(a4));
    }
    // surfaces
    {
        cudaArray_t sa;
        CK(cudaMallocArray(&sa, &fd, W, H, cudaArraySurfaceLoadStore));
        cudaResourceDesc r;
        memset(&r, 0, sizeof(r));
        r.resType = cudaResourceTypeArray;
        r.res.array.array = sa;
        cudaSurfaceObject_t s;
        CK(cudaCreateSurfaceObject(&s, &r));
        cudaTextureObject_t t = tex_of_array(arr, cudaFilterModePoint, cudaAddressModeClamp, 0);
        surf_write<<<G, B>>>(t, s, W, H);
        CK(cudaGetLastError());
        std::vector<float> back(n);
        CK(cudaMemcpy2DFromArray(back.data(), W * sizeof(float), sa, 0, 0, W * sizeof(float), H, cudaMemcpyDeviceToHost));
        out.insert(out.end(), back.begin(), back.end());
        surf_read<<<G, B>>>(s, d_out, d_out + n, W, H);
        CK(cudaGetLastError());
        grab(d_out, 2 * n);
        CK(cudaDestroyTextureObject(t));
        CK(cudaDestroySurfaceObject(s));
        // a surface needs an array made with cudaArraySurfaceLoadStore
        cudaResourceDesc r2 = r;
        r2.res.array.array = arr;
        printf("surf_on_plain_array=%s\n", cudaGetErrorName(cudaCreateSurfaceObject(&s, &r2)));
        (void)cudaGetLastError();  // the runtime keeps that error as the last one
        CK(cudaFreeArray(sa));
    }
    // 3D array {img, img + 100}: tex3D at z = 1.5 is slice 1
    cudaArray_t a3;
    CK(cudaMalloc3DArray(&a3, &fd, make_cudaExtent(W, H, 2)));
    for (int i = 0; i < n; i++) two[n + i] = img[i] + 100.0f;
    p3.dstArray = a3;
    CK(cudaMemcpy3D(&p3));
    {
        cudaTextureObject_t t = tex_of_array(a3, cudaFilterModePoint, cudaAddressModeClamp, 0);
        sample3d<<<G, B>>>(t, d_out, W, H);
        CK(cudaGetLastError());
        grab(d_out, n);
        CUDA_RESOURCE_DESC rd;
        printf("res_type=%d\n", cuTexObjectGetResourceDesc(&rd, t) == CUDA_SUCCESS ? (int)rd.resType : -1);
        CUDA_TEXTURE_DESC td;
        printf("tex_filter=%d\n", cuTexObjectGetTextureDesc(&td, t) == CUDA_SUCCESS ? (int)td.filterMode : -1);
        CUDA_RESOURCE_VIEW_DESC vd;
        printf("view_without_view=%s\n", CUNAME(cuTexObjectGetResourceViewDesc(&vd, t)));
        CK(cudaDestroyTextureObject(t));
        printf("bad_tex_destroy=%s\n", CUNAME(cuTexObjectDestroy(t)));
    }
    {
        CUDA_ARRAY3D_DESCRIPTOR dd;
        CUresult rc = cuArray3DGetDescriptor(&dd, (CUarray)a3);
        if (rc == CUDA_SUCCESS)
            printf("desc=%zux%zux%zu:%d:%u:%u\n", dd.Width, dd.Height, dd.Depth, (int)dd.Format, dd.NumChannels, dd.Flags);
        else
            printf("desc=%s\n", CUNAME(rc));
        CUDA_ARRAY_DESCRIPTOR three = {(size_t)W, (size_t)H, CU_AD_FORMAT_FLOAT, 3};
        CUarray bad;
        printf("three_channels=%s\n", CUNAME(cuArrayCreate(&bad, &three)));
        // no deferred mapping, sparseness or planes on a plain array
        CUDA_ARRAY_MEMORY_REQUIREMENTS req;
        printf("mem_requirements=%s\n", CUNAME(cuArrayGetMemoryRequirements(&req, (CUarray)a3, 0)));
        CUDA_ARRAY_SPARSE_PROPERTIES sp;
        printf("sparse_properties=%s\n", CUNAME(cuArrayGetSparseProperties(&sp, (CUarray)a3)));
        CUarray plane;
        printf("plane=%s\n", CUNAME(cuArrayGetPlane(&plane, (CUarray)a3, 0)));
        size_t lin = 0;
        CUresult lr = cuDeviceGetTexture1DLinearMaxWidth(&lin, CU_AD_FORMAT_FLOAT, 1, 0);
        printf("linear_max=%s:%zu\n", CUNAME(lr), lin);
    }
    // array -> array -> device -> host
    {
        cudaArray_t b2;
        CK(cudaMallocArray(&b2, &fd, W, H));
        CK(cudaMemcpy2DArrayToArray(b2, 0, 0, arr, 0, 0, W * sizeof(float), H, cudaMemcpyDeviceToDevice));
        size_t pitch;
        float *d2;
        CK(cudaMallocPitch(&d2, &pitch, W * sizeof(float), H));
        CK(cudaMemcpy2DFromArray(d2, pitch, b2, 0, 0, W * sizeof(float), H, cudaMemcpyDeviceToDevice));
        std::vector<float> back(n);
        CK(cudaMemcpy2D(back.data(), W * sizeof(float), d2, pitch, W * sizeof(float), H, cudaMemcpyDeviceToHost));
        out.insert(out.end(), back.begin(), back.end());
        CK(cudaFreeArray(b2));
        printf("bad_array_destroy=%s\n", CUNAME(cuArrayDestroy((CUarray)b2)));
        CK(cudaFree(d2));
    }
    // a fetch through a destroyed texture object fails the launch
    {
        cudaTextureObject_t t = tex_of_array(arr, cudaFilterModePoint, cudaAddressModeClamp, 0);
        CK(cudaDestroyTextureObject(t));
        sample2d<<<1, 32>>>(t, d_out, 32, W, H, 0);
        printf("bad_handle_launch=%s\n", cudaGetErrorName(cudaDeviceSynchronize()));
    }
    FILE *fo = open_or_die(argv[4], "wb");
    fwrite(out.data(), sizeof(float), out.size(), fo);
    fclose(fo);
    printf("floats=%zu\n", out.size());
    return 0;
}
