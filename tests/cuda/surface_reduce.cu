// surface_reduce.cu - PTX `sured` (surface reductions: every op/type pair the PTX ISA allows, .b and .p forms,
// .1d/.2d/.3d, the .zero/.clamp/.trap boundary modes) and the texel-offset forms of `tex` and `tld4`. CUDA C has
// no intrinsic for either, so the kernels hold them as inline PTX.
// I/O contract: surface_reduce W H in.bin out.bin
//   in.bin: img[H][W] float32 (the texture of the offset sections).
//   out.bin, little endian, in this order (K = 16 texels, NT = 256 threads; thread t reduces value a(t) into
//   texel t % K; a32(t) = t * 2654435761 mod 2^32, a64(t) = t * 0x9E3779B97F4A7C15 mod 2^64; texel k starts
//   at i32(k) = k * 0x9E3779B9 mod 2^32, i64(k) = k * 0xD1B54A32D192ED03 mod 2^64):
//     [K] u32 each: .b add.u32 add.s32 min.u32 max.u32 min.s32 max.s32 and.b32 or.b32 (2D 4x4, 1 x u32 texels)
//     [K] u64 each: .b add.u64 min.u64 max.u64 min.s64 max.s64 (2D 4x4 of 2 x u32 texels, x in bytes)
//     [K] u32 each: .p add.b32 on UINT32, min.b32 on SINT32, max.b32 on UINT32 (x in texels)
//     [K] u64 each: .p min.b64 on 2 x SINT32, max.b64 on 2 x UINT32
//     [K] u32 each: .b add.u32 on a 1D array of K texels, on a 3D array 2x2x4 (k -> x=k%2, y=k/2%2, z=k/4)
//     [K] u32 each: .b add.u32 of 1 at x = t%8 - 2, y = t/8 % 4 (4x4 surface) with .zero, then with .clamp
//     [n] f32 each (n = W*H, points of texture_ref.points): tex.2d point clamp offset {1,-2}; tex.2d linear
//       clamp offset {-1,1}; tex.2d .s32 coordinates (i%W, i/W) point offset {3,-1}
//     [4n] f32: tld4.r.2d offset {2,0} (4 texels per point)
//   stdout key=value: trap=<cudaGetErrorName of a launch whose sured.trap is out of range>
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tf_test_io.h"

#define K 16
#define NT 256

__device__ uint32_t a32(int t) { return (uint32_t)t * 2654435761u; }
__device__ uint64_t a64(int t) { return (uint64_t)t * 0x9E3779B97F4A7C15ull; }

enum Op {
    ADD_U32, ADD_S32, MIN_U32, MAX_U32, MIN_S32, MAX_S32, AND_B32, OR_B32,
    ADD_U64, MIN_U64, MAX_U64, MIN_S64, MAX_S64,
    P_ADD_B32, P_MIN_B32, P_MAX_B32, P_MIN_B64, P_MAX_B64,
};

// 2D 4x4 surface: thread t reduces into texel t % K; .b forms take x in bytes, .p forms in texels
template <int OP> __global__ void red2d(cudaSurfaceObject_t s)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= NT) return;
    int k = t % K, xi = k % 4, y = k / 4;
    uint32_t v = a32(t);
    uint64_t w = a64(t);
    int xb4 = xi * 4, xb8 = xi * 8;
    switch (OP) {
    case ADD_U32: asm volatile("sured.b.add.2d.u32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb4), "r"(y), "r"(v) : "memory"); break;
    case ADD_S32: asm volatile("sured.b.add.2d.s32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb4), "r"(y), "r"(v) : "memory"); break;
    case MIN_U32: asm volatile("sured.b.min.2d.u32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb4), "r"(y), "r"(v) : "memory"); break;
    case MAX_U32: asm volatile("sured.b.max.2d.u32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb4), "r"(y), "r"(v) : "memory"); break;
    case MIN_S32: asm volatile("sured.b.min.2d.s32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb4), "r"(y), "r"(v) : "memory"); break;
    case MAX_S32: asm volatile("sured.b.max.2d.s32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb4), "r"(y), "r"(v) : "memory"); break;
    case AND_B32: asm volatile("sured.b.and.2d.b32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb4), "r"(y), "r"(v) : "memory"); break;
    case OR_B32: asm volatile("sured.b.or.2d.b32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb4), "r"(y), "r"(v) : "memory"); break;
    case ADD_U64: asm volatile("sured.b.add.2d.u64.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb8), "r"(y), "l"(w) : "memory"); break;
    case MIN_U64: asm volatile("sured.b.min.2d.u64.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb8), "r"(y), "l"(w) : "memory"); break;
    case MAX_U64: asm volatile("sured.b.max.2d.u64.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb8), "r"(y), "l"(w) : "memory"); break;
    case MIN_S64: asm volatile("sured.b.min.2d.s64.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb8), "r"(y), "l"(w) : "memory"); break;
    case MAX_S64: asm volatile("sured.b.max.2d.s64.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb8), "r"(y), "l"(w) : "memory"); break;
    case P_ADD_B32: asm volatile("sured.p.add.2d.b32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xi), "r"(y), "r"(v) : "memory"); break;
    case P_MIN_B32: asm volatile("sured.p.min.2d.b32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xi), "r"(y), "r"(v) : "memory"); break;
    case P_MAX_B32: asm volatile("sured.p.max.2d.b32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xi), "r"(y), "r"(v) : "memory"); break;
    case P_MIN_B64: asm volatile("sured.p.min.2d.b64.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xi), "r"(y), "l"(w) : "memory"); break;
    case P_MAX_B64: asm volatile("sured.p.max.2d.b64.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xi), "r"(y), "l"(w) : "memory"); break;
    }
}

__global__ void red1d(cudaSurfaceObject_t s)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= NT) return;
    int xb = (t % K) * 4;
    asm volatile("sured.b.add.1d.u32.trap [%0, {%1}], %2;" ::"l"(s), "r"(xb), "r"(a32(t)) : "memory");
}

__global__ void red3d(cudaSurfaceObject_t s)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= NT) return;
    int k = t % K, xb = (k % 2) * 4, y = k / 2 % 2, z = k / 4, w = 0;
    asm volatile("sured.b.add.3d.u32.trap [%0, {%1, %2, %3, %4}], %5;" ::"l"(s), "r"(xb), "r"(y), "r"(z), "r"(w),
                 "r"(a32(t))
                 : "memory");
}

// out-of-range x (t%8 - 2 is -2..5 on a 4-wide surface) under .zero (dropped) or .clamp (moved to column 0 or 3)
template <int CLAMP> __global__ void red_bounds(cudaSurfaceObject_t s)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= NT) return;
    int xb = (t % 8 - 2) * 4, y = t / 8 % 4;
    uint32_t one = 1;
    if (CLAMP)
        asm volatile("sured.b.add.2d.u32.clamp [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb), "r"(y), "r"(one) : "memory");
    else
        asm volatile("sured.b.add.2d.u32.zero [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb), "r"(y), "r"(one) : "memory");
}

__global__ void red_trap(cudaSurfaceObject_t s)
{
    int xb = 4 * 4, y = 0; // column 4 of a 4-wide surface
    uint32_t one = 1;
    asm volatile("sured.b.add.2d.u32.trap [%0, {%1, %2}], %3;" ::"l"(s), "r"(xb), "r"(y), "r"(one) : "memory");
}

__device__ float2 pt(int i, int W) { return make_float2((i % W) * 0.390625f - 1.3125f, (i / W) * 0.453125f - 0.6875f); }

// texel offsets: immediates, as the ISA's examples write them
__global__ void tex_offsets(cudaTextureObject_t point, cudaTextureObject_t linear, float *out, int n, int W)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float2 p = pt(i, W);
    float r, g, b, a;
    asm volatile("tex.2d.v4.f32.f32 {%0, %1, %2, %3}, [%4, {%5, %6}], {1, -2};"
                 : "=f"(r), "=f"(g), "=f"(b), "=f"(a) : "l"(point), "f"(p.x), "f"(p.y));
    out[i] = r;
    asm volatile("tex.2d.v4.f32.f32 {%0, %1, %2, %3}, [%4, {%5, %6}], {-1, 1};"
                 : "=f"(r), "=f"(g), "=f"(b), "=f"(a) : "l"(linear), "f"(p.x), "f"(p.y));
    out[n + i] = r;
    int xi = i % W, yi = i / W;
    asm volatile("tex.2d.v4.f32.s32 {%0, %1, %2, %3}, [%4, {%5, %6}], {3, -1};"
                 : "=f"(r), "=f"(g), "=f"(b), "=f"(a) : "l"(point), "r"(xi), "r"(yi));
    out[2 * n + i] = r;
    asm volatile("tld4.r.2d.v4.f32.f32 {%0, %1, %2, %3}, [%4, {%5, %6}], {2, 0};"
                 : "=f"(r), "=f"(g), "=f"(b), "=f"(a) : "l"(linear), "f"(p.x), "f"(p.y));
    float *q = out + 3 * n + 4 * i;
    q[0] = r, q[1] = g, q[2] = b, q[3] = a;
}

static uint32_t i32(int k) { return (uint32_t)k * 0x9E3779B9u; }
static uint64_t i64(int k) { return (uint64_t)k * 0xD1B54A32D192ED03ull; }

// A w x h x d surface array (d 0: 2D, h 0: 1D) of nch channels of fmt kind, filled with init(k) per texel.
struct Surf {
    cudaArray_t arr;
    cudaSurfaceObject_t s;
    size_t bytes, w, h, d;
};

static Surf make_surf(cudaChannelFormatKind kind, int nch, size_t w, size_t h, size_t d, int wide)
{
    Surf r{};
    cudaChannelFormatDesc cd = cudaCreateChannelDesc(32, nch >= 2 ? 32 : 0, 0, 0, kind);
    CK(cudaMalloc3DArray(&r.arr, &cd, make_cudaExtent(w, h, d), cudaArraySurfaceLoadStore));
    r.w = w, r.h = h ? h : 1, r.d = d ? d : 1;
    size_t n = r.w * r.h * r.d;
    r.bytes = n * (wide ? 8 : 4);
    std::vector<uint8_t> init(r.bytes);
    for (size_t k = 0; k < n; k++) {
        if (wide) {
            uint64_t v = i64((int)k);
            memcpy(&init[k * 8], &v, 8);
        } else {
            uint32_t v = i32((int)k);
            memcpy(&init[k * 4], &v, 4);
        }
    }
    cudaMemcpy3DParms p{};
    p.srcPtr = make_cudaPitchedPtr(init.data(), r.w * (wide ? 8 : 4), r.w, r.h);
    p.dstArray = r.arr;
    p.extent = make_cudaExtent(r.w, r.h, r.d);
    p.kind = cudaMemcpyHostToDevice;
    CK(cudaMemcpy3D(&p));
    cudaResourceDesc rd{};
    rd.resType = cudaResourceTypeArray;
    rd.res.array.array = r.arr;
    CK(cudaCreateSurfaceObject(&r.s, &rd));
    return r;
}

static void read_back(Surf &r, FILE *out, int wide)
{
    std::vector<uint8_t> got(r.bytes);
    cudaMemcpy3DParms p{};
    p.srcArray = r.arr;
    p.dstPtr = make_cudaPitchedPtr(got.data(), r.w * (wide ? 8 : 4), r.w, r.h);
    p.extent = make_cudaExtent(r.w, r.h, r.d);
    p.kind = cudaMemcpyDeviceToHost;
    CK(cudaMemcpy3D(&p));
    fwrite(got.data(), 1, got.size(), out);
    CK(cudaDestroySurfaceObject(r.s));
    CK(cudaFreeArray(r.arr));
}

template <int OP> static void run2d(FILE *out, cudaChannelFormatKind kind, int nch, int wide)
{
    Surf r = make_surf(kind, nch, 4, 4, 0, wide);
    red2d<OP><<<(NT + 127) / 128, 128>>>(r.s);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    read_back(r, out, wide);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s W H in.bin out.bin\n", argv[0]);
        return 2;
    }
    int W = atoi(argv[1]), H = atoi(argv[2]), n = W * H;
    FILE *fi = open_or_die(argv[3], "rb");
    std::vector<float> img = read_array<float>(fi, (size_t)n);
    fclose(fi);
    FILE *out = open_or_die(argv[4], "wb");
    const cudaChannelFormatKind U = cudaChannelFormatKindUnsigned, S = cudaChannelFormatKindSigned;

    run2d<ADD_U32>(out, U, 1, 0);
    run2d<ADD_S32>(out, S, 1, 0);
    run2d<MIN_U32>(out, U, 1, 0);
    run2d<MAX_U32>(out, U, 1, 0);
    run2d<MIN_S32>(out, S, 1, 0);
    run2d<MAX_S32>(out, S, 1, 0);
    run2d<AND_B32>(out, U, 1, 0);
    run2d<OR_B32>(out, U, 1, 0);
    run2d<ADD_U64>(out, U, 2, 1);
    run2d<MIN_U64>(out, U, 2, 1);
    run2d<MAX_U64>(out, U, 2, 1);
    run2d<MIN_S64>(out, U, 2, 1);
    run2d<MAX_S64>(out, U, 2, 1);
    run2d<P_ADD_B32>(out, U, 1, 0);
    run2d<P_MIN_B32>(out, S, 1, 0);
    run2d<P_MAX_B32>(out, U, 1, 0);
    run2d<P_MIN_B64>(out, S, 2, 1);
    run2d<P_MAX_B64>(out, U, 2, 1);

    Surf r1 = make_surf(U, 1, K, 0, 0, 0);
    red1d<<<2, 128>>>(r1.s);
    CK(cudaGetLastError());
    read_back(r1, out, 0);
    Surf r3 = make_surf(U, 1, 2, 2, 4, 0);
    red3d<<<2, 128>>>(r3.s);
    CK(cudaGetLastError());
    read_back(r3, out, 0);
    Surf rz = make_surf(U, 1, 4, 4, 0, 0);
    red_bounds<0><<<2, 128>>>(rz.s);
    CK(cudaGetLastError());
    read_back(rz, out, 0);
    Surf rc = make_surf(U, 1, 4, 4, 0, 0);
    red_bounds<1><<<2, 128>>>(rc.s);
    CK(cudaGetLastError());
    read_back(rc, out, 0);

    // texel offsets on a W x H float texture
    cudaChannelFormatDesc fd = cudaCreateChannelDesc<float>();
    cudaArray_t ta;
    CK(cudaMallocArray(&ta, &fd, W, H));
    CK(cudaMemcpy2DToArray(ta, 0, 0, img.data(), W * sizeof(float), W * sizeof(float), H, cudaMemcpyHostToDevice));
    cudaResourceDesc rd{};
    rd.resType = cudaResourceTypeArray;
    rd.res.array.array = ta;
    cudaTextureDesc td{};
    td.addressMode[0] = td.addressMode[1] = cudaAddressModeClamp;
    td.filterMode = cudaFilterModePoint;
    td.readMode = cudaReadModeElementType;
    cudaTextureObject_t tp, tl;
    CK(cudaCreateTextureObject(&tp, &rd, &td, nullptr));
    td.filterMode = cudaFilterModeLinear;
    CK(cudaCreateTextureObject(&tl, &rd, &td, nullptr));
    float *d_out;
    CK(cudaMalloc(&d_out, 7 * n * sizeof(float)));
    tex_offsets<<<(n + 127) / 128, 128>>>(tp, tl, d_out, n, W);
    CK(cudaGetLastError());
    std::vector<float> got(7 * (size_t)n);
    CK(cudaMemcpy(got.data(), d_out, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
    write_array(out, got);
    fclose(out);

    // last: an out-of-range sured.trap fails the launch (the context is unusable afterwards)
    Surf rt = make_surf(U, 1, 4, 4, 0, 0);
    red_trap<<<1, 1>>>(rt.s);
    cudaError_t e = cudaDeviceSynchronize();
    printf("trap=%s\n", cudaGetErrorName(e));
    return 0;
}
