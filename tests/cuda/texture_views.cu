// texture_views.cu - texture objects over a resource view (cudaResourceViewDesc / CUDA_RESOURCE_VIEW_DESC):
// format reinterpretation, mipmap level ranges (the sampler's level clamps relative to the first level), layer
// ranges, the view read back, and the error codes of views CUDA refuses.
// I/O contract: texture_views (no arguments); stdout key=value:
//   reinterpret=<8 floats>   a 4x2 UINT32 array holding the bits of f(i) = i*1.5 - 2, viewed as FLOAT_1X32
//   bytes=<4 ints>           texel 1 (0x40302010 + 1) of a UINT32 array viewed as UNSIGNED_CHAR4 (17,32,48,64)
//   layers=<4 floats>        2x2 float array of 4 layers (layer L holds 10*L + x + 2y), view layers 1..2, texel
//                            (0,0) of view layers 0, 1, 2 (past the view: its last), -1 (its first)
//   levels=<3 floats>        8x8 float mipmap of 4 levels (level l holds 100*(l+1)), view levels 1..2, point
//                            mip filter, tex2DLod at lod 0, 1, 3
//   max_clamp=<float>        the same view with maxMipmapLevelClamp 0 at lod 3 (relative: view level 0 = 200)
//   min_clamp=<float>        ... with minMipmapLevelClamp 1 at lod 0 (view level 1 = 300)
//   view_get=<format>:<first layer>:<last layer>   cudaGetTextureObjectResourceViewDesc of the layer view
//   linear_view, layer_on_2d, size_mismatch, level_past_end, block_compressed: cudaCreateTextureObject's error
//   name for a view on linear memory, firstLayer 1 on a plain 2D array, an 8-bit view of 32-bit texels,
//   lastMipmapLevel past the levels, a BC1 view (not emulated)
//   texref=<cuGetErrorName of the deprecated cuTexRefCreate> (texture references: not emulated, yet linkable)
#include <cuda.h>
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tf_test_io.h"

__global__ void sample(cudaTextureObject_t t, float4 *out, float x, float y, int layer, float lod, int mode)
{
    if (mode == 0) *out = tex2D<float4>(t, x, y);
    else if (mode == 1) *out = make_float4(tex2DLayered<float>(t, x, y, layer), 0, 0, 0);
    else if (mode == 2) *out = make_float4(tex2DLod<float>(t, x, y, lod), 0, 0, 0);
    else {
        uchar4 c = tex2D<uchar4>(t, x, y);
        *out = make_float4(c.x, c.y, c.z, c.w);
    }
}

__global__ void sample1(cudaTextureObject_t t, float *out, int n, int w)
{
    int i = threadIdx.x;
    if (i < n) out[i] = tex2D<float>(t, i % w + 0.5f, i / w + 0.5f);
}

static float4 *d_out;

static float4 at(cudaTextureObject_t t, float x, float y, int layer, float lod, int mode)
{
    sample<<<1, 1>>>(t, d_out, x, y, layer, lod, mode);
    CK(cudaGetLastError());
    float4 r;
    CK(cudaMemcpy(&r, d_out, sizeof(r), cudaMemcpyDeviceToHost));
    return r;
}

static cudaResourceDesc array_res(cudaArray_t a)
{
    cudaResourceDesc r{};
    r.resType = cudaResourceTypeArray;
    r.res.array.array = a;
    return r;
}

int main()
{
    CK(cudaMalloc(&d_out, sizeof(float4)));
    cudaTextureDesc td{};
    td.addressMode[0] = td.addressMode[1] = td.addressMode[2] = cudaAddressModeClamp;
    td.filterMode = cudaFilterModePoint;
    td.readMode = cudaReadModeElementType;

    // format reinterpretation: UINT32 bits viewed as floats
    cudaChannelFormatDesc u32 = cudaCreateChannelDesc(32, 0, 0, 0, cudaChannelFormatKindUnsigned);
    cudaArray_t a;
    CK(cudaMallocArray(&a, &u32, 4, 2));
    uint32_t bits[8];
    for (int i = 0; i < 8; i++) {
        float f = i * 1.5f - 2.0f;
        memcpy(&bits[i], &f, 4);
    }
    CK(cudaMemcpy2DToArray(a, 0, 0, bits, 16, 16, 2, cudaMemcpyHostToDevice));
    cudaResourceDesc ra = array_res(a);
    cudaResourceViewDesc v{};
    v.format = cudaResViewFormatFloat1;
    v.width = 4, v.height = 2;
    cudaTextureObject_t t;
    CK(cudaCreateTextureObject(&t, &ra, &td, &v));
    float *d_f;
    CK(cudaMalloc(&d_f, 8 * sizeof(float)));
    sample1<<<1, 8>>>(t, d_f, 8, 4);
    CK(cudaGetLastError());
    float got[8];
    CK(cudaMemcpy(got, d_f, sizeof(got), cudaMemcpyDeviceToHost));
    printf("reinterpret=");
    for (int i = 0; i < 8; i++) printf("%s%g", i ? "," : "", got[i]);
    printf("\n");
    CK(cudaDestroyTextureObject(t));

    // the same 32-bit texels as four unsigned bytes, read normalized
    uint32_t packed[8];
    for (int i = 0; i < 8; i++) packed[i] = 0x40302010u + (uint32_t)i;
    CK(cudaMemcpy2DToArray(a, 0, 0, packed, 16, 16, 2, cudaMemcpyHostToDevice));
    v.format = cudaResViewFormatUnsignedChar4;
    CK(cudaCreateTextureObject(&t, &ra, &td, &v));
    float4 b = at(t, 1.5f, 0.5f, 0, 0, 3);
    printf("bytes=%d,%d,%d,%d\n", (int)b.x, (int)b.y, (int)b.z, (int)b.w);
    CK(cudaDestroyTextureObject(t));

    // layer range
    cudaChannelFormatDesc f32 = cudaCreateChannelDesc<float>();
    cudaArray_t la;
    CK(cudaMalloc3DArray(&la, &f32, make_cudaExtent(2, 2, 4), cudaArrayLayered));
    float lv[16];
    for (int L = 0; L < 4; L++)
        for (int k = 0; k < 4; k++) lv[L * 4 + k] = 10.0f * L + (k % 2) + 2 * (k / 2);
    cudaMemcpy3DParms p{};
    p.srcPtr = make_cudaPitchedPtr(lv, 8, 2, 2);
    p.dstArray = la;
    p.extent = make_cudaExtent(2, 2, 4);
    p.kind = cudaMemcpyHostToDevice;
    CK(cudaMemcpy3D(&p));
    cudaResourceDesc rl = array_res(la);
    cudaResourceViewDesc lvw{};
    lvw.format = cudaResViewFormatFloat1;
    lvw.width = 2, lvw.height = 2, lvw.depth = 4;
    lvw.firstLayer = 1, lvw.lastLayer = 2;
    CK(cudaCreateTextureObject(&t, &rl, &td, &lvw));
    printf("layers=%g,%g,%g,%g\n", at(t, 0.5f, 0.5f, 0, 0, 1).x, at(t, 0.5f, 0.5f, 1, 0, 1).x,
           at(t, 0.5f, 0.5f, 2, 0, 1).x, at(t, 0.5f, 0.5f, -1, 0, 1).x);
    cudaResourceViewDesc back{};
    CK(cudaGetTextureObjectResourceViewDesc(&back, t));
    printf("view_get=%d:%u:%u\n", (int)back.format, back.firstLayer, back.lastLayer);
    CK(cudaDestroyTextureObject(t));

    // mipmap level range; the sampler's clamps are relative to the view's first level
    cudaMipmappedArray_t mm;
    CK(cudaMallocMipmappedArray(&mm, &f32, make_cudaExtent(8, 8, 0), 4));
    for (unsigned l = 0; l < 4; l++) {
        cudaArray_t lvl;
        CK(cudaGetMipmappedArrayLevel(&lvl, mm, l));
        size_t w = 8 >> l;
        std::vector<float> fill(w * w, 100.0f * (l + 1));
        CK(cudaMemcpy2DToArray(lvl, 0, 0, fill.data(), w * 4, w * 4, w, cudaMemcpyHostToDevice));
    }
    cudaResourceDesc rm{};
    rm.resType = cudaResourceTypeMipmappedArray;
    rm.res.mipmap.mipmap = mm;
    cudaTextureDesc tdm = td;
    tdm.normalizedCoords = 1;
    tdm.mipmapFilterMode = cudaFilterModePoint;
    tdm.maxMipmapLevelClamp = 10;
    cudaResourceViewDesc mv{};
    mv.format = cudaResViewFormatFloat1;
    mv.width = 8, mv.height = 8;
    mv.firstMipmapLevel = 1, mv.lastMipmapLevel = 2;
    CK(cudaCreateTextureObject(&t, &rm, &tdm, &mv));
    printf("levels=%g,%g,%g\n", at(t, 0.5f, 0.5f, 0, 0, 2).x, at(t, 0.5f, 0.5f, 0, 1, 2).x, at(t, 0.5f, 0.5f, 0, 3, 2).x);
    CK(cudaDestroyTextureObject(t));
    tdm.maxMipmapLevelClamp = 0;
    CK(cudaCreateTextureObject(&t, &rm, &tdm, &mv));
    printf("max_clamp=%g\n", at(t, 0.5f, 0.5f, 0, 3, 2).x);
    CK(cudaDestroyTextureObject(t));
    tdm.maxMipmapLevelClamp = 10, tdm.minMipmapLevelClamp = 1;
    CK(cudaCreateTextureObject(&t, &rm, &tdm, &mv));
    printf("min_clamp=%g\n", at(t, 0.5f, 0.5f, 0, 0, 2).x);
    CK(cudaDestroyTextureObject(t));

    // views CUDA refuses
    float *lin;
    CK(cudaMalloc(&lin, 1024));
    cudaResourceDesc rlin{};
    rlin.resType = cudaResourceTypeLinear;
    rlin.res.linear.devPtr = lin;
    rlin.res.linear.desc = f32;
    rlin.res.linear.sizeInBytes = 1024;
    cudaResourceViewDesc v1{};
    v1.format = cudaResViewFormatFloat1;
    v1.width = 256;
    printf("linear_view=%s\n", cudaGetErrorName(cudaCreateTextureObject(&t, &rlin, &td, &v1)));
    cudaGetLastError();
    cudaResourceViewDesc v2{};
    v2.format = cudaResViewFormatFloat1;
    v2.width = 4, v2.height = 2, v2.firstLayer = 1, v2.lastLayer = 1;
    printf("layer_on_2d=%s\n", cudaGetErrorName(cudaCreateTextureObject(&t, &ra, &td, &v2)));
    cudaGetLastError();
    cudaResourceViewDesc v3{};
    v3.format = cudaResViewFormatUnsignedChar1;
    v3.width = 4, v3.height = 2;
    printf("size_mismatch=%s\n", cudaGetErrorName(cudaCreateTextureObject(&t, &ra, &td, &v3)));
    cudaGetLastError();
    mv.lastMipmapLevel = 4;
    printf("level_past_end=%s\n", cudaGetErrorName(cudaCreateTextureObject(&t, &rm, &tdm, &mv)));
    cudaGetLastError();
    cudaChannelFormatDesc u32x2 = cudaCreateChannelDesc(32, 32, 0, 0, cudaChannelFormatKindUnsigned);
    cudaArray_t bc;
    CK(cudaMallocArray(&bc, &u32x2, 2, 2));
    cudaResourceDesc rbc = array_res(bc);
    cudaResourceViewDesc v4{};
    v4.format = cudaResViewFormatUnsignedBlockCompressed1;
    v4.width = 8, v4.height = 8;
    printf("block_compressed=%s\n", cudaGetErrorName(cudaCreateTextureObject(&t, &rbc, &td, &v4)));
    cudaGetLastError();

    // texture references (deprecated, still in cuda.h): a CUresult, never an undefined symbol
    CUtexref tr;
    const char *trn = "?";
#pragma nv_diag_suppress 1444
    cuGetErrorName(cuTexRefCreate(&tr), &trn);
    printf("texref=%s\n", trn);
    return 0;
}
