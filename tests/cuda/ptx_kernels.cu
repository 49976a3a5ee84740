// Kernels for the emulated device's PTX engine tests (emu_c/tests/ptx_test.c). Each kernel
// exercises one category of PTX; the C harness runs the nvcc-generated PTX through ptx_launch
// and compares with a C reference. Regenerate the committed PTX after editing this file:
//   nvcc -arch=compute_80 -ptx -O2 tests/cuda/ptx_kernels.cu -o emu_c/tests/ptx_kernels.ptx
#include <cooperative_groups.h>
#include <cub/cub.cuh>
#include <mma.h>
#include <cuda_pipeline.h>
#include <cooperative_groups/memcpy_async.h>
#include <cstdio>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cassert>
namespace cg = cooperative_groups;

extern "C" __global__ void vadd(const float *a, const float *b, float *c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];
}

extern "C" __global__ void saxpy(float a, const float *x, float *y, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) y[i] = a * x[i] + y[i];
}

#define TILE 16
extern "C" __global__ void matmul(const float *A, const float *B, float *C, int n) {
    __shared__ float sa[TILE][TILE], sb[TILE][TILE];
    int r = blockIdx.y * TILE + threadIdx.y, c = blockIdx.x * TILE + threadIdx.x;
    float acc = 0;
    for (int k = 0; k < n; k += TILE) {
        sa[threadIdx.y][threadIdx.x] = A[r * n + k + threadIdx.x];
        sb[threadIdx.y][threadIdx.x] = B[(k + threadIdx.y) * n + c];
        __syncthreads();
        for (int j = 0; j < TILE; j++) acc += sa[threadIdx.y][j] * sb[j][threadIdx.x];
        __syncthreads();
    }
    C[r * n + c] = acc;
}

extern "C" __global__ void reduce_sum(const float *x, float *out, int n) {
    float v = 0;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += x[i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
    __shared__ float ws[32];
    if ((threadIdx.x & 31) == 0) ws[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < blockDim.x / 32 ? ws[threadIdx.x] : 0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
        if (threadIdx.x == 0) atomicAdd(out, v);
    }
}

extern "C" __global__ void histogram(const unsigned char *d, unsigned *h, int n) {
    extern __shared__ unsigned sh[];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sh[i] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) atomicAdd(&sh[d[i]], 1u);
    __syncthreads();
    for (int i = threadIdx.x; i < 256; i += blockDim.x) atomicAdd(&h[i], sh[i]);
}

// Integer semantics: wraparound, high/wide multiplies, bit operations. in[i] are inputs, out gets 16 results per thread.
extern "C" __global__ void intops(const unsigned *in, unsigned *out, unsigned long long *out64) {
    int t = threadIdx.x;
    unsigned a = in[2 * t], b = in[2 * t + 1];
    int sa = (int)a, sb = (int)b;
    unsigned *o = out + 16 * t;
    o[0] = a + b;
    o[1] = a - b;
    o[2] = a * b;
    o[3] = __umulhi(a, b);
    o[4] = (unsigned)__mulhi(sa, sb);
    o[5] = (unsigned)(sa >> (b & 31));
    o[6] = a >> (b & 31);
    o[7] = __popc(a) + 100 * __clz(b);
    o[8] = __brev(a);
    o[9] = __byte_perm(a, b, 0x5140 + (t & 7));
    o[10] = b ? a / b : 0;
    o[11] = b ? a % b : 0;
    o[12] = (sb != 0 && !(sa == (int)0x80000000 && sb == -1)) ? (unsigned)(sa / sb) : 0;
    o[13] = (unsigned)min(sa, sb) ^ max(a, b);
    o[14] = __funnelshift_l(a, b, t) ^ __funnelshift_r(a, b, t);
    o[15] = (unsigned)__ffs(sa) + ((unsigned)abs(sb) << 8);
    out64[2 * t] = (unsigned long long)a * b + ((unsigned long long)b << 33);
    out64[2 * t + 1] = __umul64hi(((unsigned long long)a << 32) | b, 0x9E3779B97F4A7C15ull) ^ (unsigned long long)((long long)sa * sb);
}

// Float rounding modes through the __f*_r? intrinsics (which nvcc emits as add.rz.f32 etc.).
extern "C" __global__ void fround(const float *x, const float *y, float *o, const double *dx, const double *dy, double *od) {
    int t = threadIdx.x;
    float a = x[t], b = y[t];
    float *p = o + 12 * t;
    p[0] = __fadd_rn(a, b);
    p[1] = __fadd_rz(a, b);
    p[2] = __fadd_rd(a, b);
    p[3] = __fadd_ru(a, b);
    p[4] = __fmul_rz(a, b);
    p[5] = __fmul_ru(a, b);
    p[6] = __fdiv_rn(a, b);
    p[7] = __fdiv_rz(a, b);
    p[8] = __fmaf_rn(a, b, 1.0f);
    p[9] = __fsqrt_rn(fabsf(a));
    p[10] = __double2float_rz(dx[t]);
    p[11] = __double2float_ru(dx[t]);
    double da = dx[t], db = dy[t];
    double *q = od + 4 * t;
    q[0] = __dadd_rz(da, db);
    q[1] = __dmul_ru(da, db);
    q[2] = __ddiv_rn(da, db);
    q[3] = __fma_rd(da, db, 1.0);
}

// float -> int conversions and int -> float.
extern "C" __global__ void fconv(const float *x, int *oi, float *of) {
    int t = threadIdx.x;
    float a = x[t];
    int *p = oi + 6 * t;
    p[0] = __float2int_rn(a);
    p[1] = __float2int_rz(a);
    p[2] = __float2int_rd(a);
    p[3] = __float2int_ru(a);
    p[4] = (int)__float2uint_rz(a);
    p[5] = (int)__float2ll_rz(a * 1e10f);
    of[2 * t] = __int2float_rz(p[1] * 1234567 + 7);
    of[2 * t + 1] = __uint2float_ru((unsigned)p[1] * 2654435761u);
}

// f16 / bf16 conversions with rounding modes and a bit of half arithmetic.
extern "C" __global__ void halfconv(const float *x, unsigned short *o, float *back) {
    int t = threadIdx.x;
    float a = x[t];
    unsigned short *p = o + 6 * t;
    p[0] = __half_as_ushort(__float2half_rn(a));
    p[1] = __half_as_ushort(__float2half_rz(a));
    p[2] = __half_as_ushort(__float2half_rd(a));
    p[3] = __half_as_ushort(__float2half_ru(a));
    p[4] = __bfloat16_as_ushort(__float2bfloat16_rn(a));
    __half h = __float2half_rn(a);
    __half s = __hadd(h, __float2half_rn(1.0f));
    p[5] = __half_as_ushort(s);
    back[2 * t] = __half2float(h);
    back[2 * t + 1] = __bfloat162float(__float2bfloat16_rn(a));
}

// Warp primitives. Each thread writes 10 results.
extern "C" __global__ void warpops(const int *in, int *out) {
    int t = threadIdx.x;
    int v = in[t];
    int *o = out + 10 * t;
    o[0] = __shfl_sync(0xffffffff, v, (t * 7) & 31);
    o[1] = __shfl_up_sync(0xffffffff, v, 3);
    o[2] = __shfl_down_sync(0xffffffff, v, 5, 16);
    o[3] = __shfl_xor_sync(0xffffffff, v, 9);
    o[4] = (int)__ballot_sync(0xffffffff, v & 1);
    o[5] = __all_sync(0xffffffff, v > -1000) + 2 * __any_sync(0xffffffff, v == 77) + 4 * __all_sync(0xffffffff, v & 1);
    o[6] = __reduce_add_sync(0xffffffff, v);
    o[7] = (int)__match_any_sync(0xffffffff, v & 3);
    unsigned am = 0;
    if (t & 1) am = __activemask();
    else am = __activemask() | 0x10000000u;
    o[8] = (int)am;
    o[9] = __reduce_max_sync(0xffffffff, v) ^ __reduce_min_sync(0xffffffff, v);
}

// Warp primitives over labeled groups: every lane runs the same .sync instructions at the same pc,
// each with its own member mask (lanes with equal lane % 3), as cooperative groups' labeled_partition
// and coalesced groups do. Each thread writes 8 results. warpSize is the PTX constant WARP_SZ.
extern "C" __global__ void warpgroups(const int *in, int *out) {
    int t = threadIdx.x, l = t & 31;
    int v = in[t];
    unsigned g = 0;
    for (int j = l % 3; j < 32; j += 3) g |= 1u << j;
    int *o = out + 8 * t;
    o[0] = __reduce_add_sync(g, v);
    o[1] = __reduce_max_sync(g, v) ^ __reduce_or_sync(g, (unsigned)v);
    o[2] = (int)__ballot_sync(g, v & 1);
    o[3] = __all_sync(g, v > -1000) + 2 * __any_sync(g, v == 77) + 4 * __all_sync(g, v & 1);
    o[4] = (int)__match_any_sync(g, v & 3);
    int pred = 0;
    o[5] = (int)__match_all_sync(g, l % 3 == 2 ? 5 : v, &pred) + pred;
    o[6] = __shfl_sync(g, v, l % 3) + warpSize * 1000;
    __syncwarp(g);
    o[7] = (int)__activemask() == -1;
}

// Virtual functions (vtables: .global arrays initialised with function addresses, indirect calls),
// device new/delete, and a __device__ table of function pointers, as the newdelete sample uses them.
#include "tf_test_shapes.h"
__device__ int op_add(int a, int b) { return a + b; }
__device__ int op_mul(int a, int b) { return a * b; }
__device__ int (*const op_table[2])(int, int) = {op_add, op_mul};
extern "C" __global__ void virtuals(const float *in, float *area, int *sides, int *ops) {
    int i = threadIdx.x;
    Shape *s;
    switch (i % 3) {
    case 0: s = new Square(in[i]); break;
    case 1: s = new Triangle(in[i]); break;
    default: s = new Circle(in[i]); break;
    }
    area[i] = s->area();
    sides[i] = s->sides();
    delete s;
    ops[i] = op_table[i & 1](i, 3);
}

// Atomics on shared and global memory from every thread of every block.
extern "C" __global__ void atomics(int *gi, unsigned *gu, float *gf, double *gd, unsigned long long *gll, int *order) {
    __shared__ int si[4];
    __shared__ float sf;
    int t = threadIdx.x;
    if (t == 0) { si[0] = 0; si[1] = 0x7fffffff; si[2] = 0; si[3] = 0; sf = 0; }
    __syncthreads();
    atomicAdd(&si[0], t);
    atomicMin(&si[1], t * 3 + 1);
    atomicMax(&si[2], t);
    atomicXor(&si[3], t);
    atomicAdd(&sf, 0.5f);
    __syncthreads();
    if (t == 0) {
        atomicAdd(&gi[0], si[0]);
        atomicMin(&gi[1], si[1] + (int)blockIdx.x);
        atomicMax(&gi[2], si[2] + (int)blockIdx.x);
        atomicXor(&gi[3], si[3] ^ (int)blockIdx.x);
        atomicAdd(&gf[0], sf);
    }
    atomicAdd(&gu[0], 1u);
    atomicInc(&gu[1], 99u);
    atomicDec(&gu[2], 1000u);
    atomicOr(&gu[3], 1u << (t & 31));
    atomicAnd(&gu[4], ~(1u << (t & 31)));
    atomicAdd(&gd[0], 0.25);
    atomicAdd(&gll[0], 1ull << 33);
    unsigned long long old = atomicCAS(&gll[1], 0ull, 5ull);
    (void)old;
    int slot = atomicAdd(&gi[4], 1);
    order[slot] = atomicExch(&gi[5], slot);
}

// Divergent loops that reconverge before a barrier; every thread then reads its neighbour.
extern "C" __global__ void diverge(const int *in, int *out) {
    __shared__ int buf[256];
    int t = threadIdx.x;
    int acc = 0;
    for (int i = 0; i < (in[t] & 15); i++) {
        if (i & 1) acc += i * t;
        else acc ^= i + t;
        if (acc > 100000) break;
    }
    buf[t] = acc;
    __syncthreads();
    int n = buf[(t + 1) % blockDim.x];
    unsigned full = __ballot_sync(0xffffffff, 1);
    out[t] = n + (int)(full == 0xffffffffu ? 0 : 1000000);
    out[blockDim.x + t] = __syncthreads_count(acc & 1) + 1000 * __syncthreads_or(t == 5) + 10000 * __syncthreads_and(t < 1000);
}

// Local memory: a dynamically indexed array per thread.
extern "C" __global__ void localarr(const int *idx, int *out) {
    int t = threadIdx.x;
    int a[24];
    for (int i = 0; i < 24; i++) a[i] = i * t + (i ^ 5);
    for (int i = 0; i < 8; i++) a[(idx[t] + i * 5) % 24] += i;
    out[t] = a[idx[t] % 24] + a[(idx[t] * 7) % 24];
}

// Module-scope variables with initializers, and a non-inlined device function.
__constant__ float ctab[4] = {1.5f, -2.0f, 3.25f, 100.0f};
__device__ int gcounter = 40;
__device__ int gtab[3] = {7, 8, 9};

__device__ __noinline__ float poly(float x, int k) {
    float r = 0;
    for (int i = 0; i < 4; i++) r = r * x + ctab[(i + k) & 3];
    return r;
}

extern "C" __global__ void globals(float *out) {
    int t = threadIdx.x;
    out[t] = poly((float)t * 0.5f, t) + (float)gtab[t % 3];
    if (t == 0) atomicAdd(&gcounter, 2);
}

extern "C" __global__ void printer(int k) {
    if (threadIdx.x < 2) printf("thread %d k=%d f=%.2f s=%s c=%c x=%#x ll=%lld\n", threadIdx.x, k, 1.25 * k, "ok", 'A' + threadIdx.x, 255, -5ll);
}

extern "C" __global__ void asserter(int k) {
    assert(threadIdx.x != (unsigned)k);
}

extern "C" __global__ void oob(int *p, int n) {
    p[threadIdx.x * n] = 1;
}

extern "C" __global__ void coop_sum(int *buf, int *out) {
    cg::grid_group g = cg::this_grid();
    if (threadIdx.x == 0) atomicAdd(&buf[0], (int)blockIdx.x + 1);
    g.sync();
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}

extern "C" __global__ void idx3d(int *out) {
    int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    int nt = blockDim.x * blockDim.y * blockDim.z;
    out[b * nt + t] = (threadIdx.x) | (threadIdx.y << 8) | (threadIdx.z << 16) | (blockIdx.x << 20) | (blockIdx.y << 24) | (blockIdx.z << 28);
}

extern "C" __global__ void empty() {}

// CUDA math library (libdevice code: ex2/lg2/rcp.approx, fma chains, bit tricks) against libm.
extern "C" __global__ void fmath(const float *x, float *o, const double *dx, double *od) {
    int t = threadIdx.x;
    float a = x[t];
    double d = dx[t];
    float *p = o + 16 * t;
    p[0] = sinf(a); p[1] = cosf(a); p[2] = expf(a); p[3] = logf(fabsf(a) + 1); p[4] = powf(fabsf(a), 1.3f);
    p[5] = tanhf(a); p[6] = __sinf(a); p[7] = __expf(a); p[8] = rsqrtf(fabsf(a) + 1); p[9] = atan2f(a, 2.f);
    p[10] = erff(a); p[11] = fmodf(a, 3.f); p[12] = a / 3.7f; p[13] = __fdividef(a, 3.7f); p[14] = cbrtf(a);
    p[15] = truncf(a) + roundf(a) * 10 + floorf(a) * 100 + ceilf(a) * 1000 + rintf(a) * 10000;
    double *q = od + 8 * t;
    q[0] = sin(d); q[1] = exp(d); q[2] = log(fabs(d) + 1); q[3] = sqrt(fabs(d)); q[4] = d / 7.0; q[5] = pow(fabs(d), 0.7);
    q[6] = (double)(long long)(d * 1e6); q[7] = fma(d, d, 1.0);
}

// Packed half / bfloat16 arithmetic and conversions.
extern "C" __global__ void half2ops(const __half2 *a, const __half2 *b, __half2 *o, __nv_bfloat162 *ob, float *f) {
    int t = threadIdx.x;
    __half2 x = a[t], y = b[t];
    o[t * 4 + 0] = __hadd2(x, y);
    o[t * 4 + 1] = __hmul2(x, y);
    o[t * 4 + 2] = __hfma2(x, y, x);
    o[t * 4 + 3] = __floats2half2_rn(f[t], f[t + 1]);
    __nv_bfloat162 bb = __floats2bfloat162_rn(f[t], 2 * f[t]);
    ob[t] = bb;
    ob[t + 64] = __hmul2(bb, bb);
    f[t + 128] = __low2float(x) + __high2float(y) + (__hlt(__low2half(x), __high2half(y)) ? 1000.f : 0.f);
}

// 64-bit division, 8/16-bit arithmetic, 64-bit bit operations.
extern "C" __global__ void ints64(long long *p, unsigned long long *q, signed char *c, short *s) {
    int t = threadIdx.x;
    long long a = p[t], b = p[t + 64];
    p[t + 128] = b ? a / b : 0;
    q[t] = b ? (unsigned long long)a % (unsigned long long)b : 0;
    c[t] = (signed char)(c[t] * 3 + s[t]);
    s[t] = (short)((s[t] * c[t]) >> 2);
    p[t + 192] = __mul64hi(a, b) + __brevll(a) + __popcll(a) + __clzll(b) + __ffsll(a);
    q[t + 64] = (unsigned long long)(a >> (t & 63)) ^ ((unsigned long long)b >> (t & 63)) ^ (unsigned long long)(a << (t & 63));
}

// Vector loads and stores (ld.global.nc.v4.f32, v2.f64, 8-bit vectors).
extern "C" __global__ void vecs(const float4 *a, float4 *b, const double2 *c, double2 *d, const char4 *e, int *f) {
    int t = threadIdx.x;
    float4 v = __ldg(&a[t]);
    v.x += v.w;
    b[t] = v;
    double2 w = c[t];
    w.y *= w.x;
    d[t] = w;
    char4 k = e[t];
    f[t] = k.x + k.y * k.z - k.w;
}

// Benchmark kernel: a compute-bound loop (integer + float ALU work, few memory ops).
extern "C" __global__ void spin(float *out, int iters) {
    float a = threadIdx.x * 0.001f, b = 1.0001f;
    unsigned h = threadIdx.x;
    for (int i = 0; i < iters; i++) {
        a = a * b + 0.5f;
        h = h * 1664525u + 1013904223u;
        b = b - (h & 1) * 1e-7f;
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = a + (float)(h & 0xff);
}

// A struct passed by value (ld.param with offsets into one .param .b8 array).
struct ByVal {
    int a[8];
    float f;
};
__device__ __noinline__ int pick(const ByVal *p, int i) { return p->a[i & 7]; }
extern "C" __global__ void byval(ByVal p, int *o, int i) { o[threadIdx.x] = pick(&p, i + (int)threadIdx.x) + (int)p.f; }

// CUB block-wide primitives: real library code (templates, shuffles, bmsk, shared temp storage).
extern "C" __global__ void cub_reduce_scan(const int *in, int *out, int *agg) {
    typedef cub::BlockReduce<int, 128> BR;
    typedef cub::BlockScan<int, 128> BS;
    __shared__ typename BR::TempStorage t1;
    __shared__ typename BS::TempStorage t2;
    int v = in[blockIdx.x * 128 + threadIdx.x];
    int s = BR(t1).Sum(v);
    __syncthreads();
    int x;
    BS(t2).ExclusiveSum(v, x);
    out[blockIdx.x * 128 + threadIdx.x] = x;
    if (threadIdx.x == 0) agg[blockIdx.x] = s;
}

extern "C" __global__ void cub_sort(int *keys) {
    typedef cub::BlockRadixSort<int, 64, 4> S;
    __shared__ typename S::TempStorage t;
    int k[4];
    for (int i = 0; i < 4; i++) k[i] = keys[blockIdx.x * 256 + threadIdx.x * 4 + i];
    S(t).Sort(k);
    for (int i = 0; i < 4; i++) keys[blockIdx.x * 256 + threadIdx.x * 4 + i] = k[i];
}

// sm_80 asynchronous copies into shared memory (cp.async + commit/wait groups).
extern "C" __global__ void cpasync(const float *g, float *o) {
    __shared__ float s[256];
    __shared__ float s2[256];
    __pipeline_memcpy_async(&s[threadIdx.x], &g[threadIdx.x], 4);
    __pipeline_commit();
    __pipeline_wait_prior(0);
    auto b = cg::this_thread_block();
    cg::memcpy_async(b, s2, g + 256, sizeof(float) * 256);
    cg::wait(b);
    __syncthreads();
    o[threadIdx.x] = s[255 - threadIdx.x] + 1000.0f * s2[threadIdx.x];
}

// Half-precision atomics and packed comparisons.
extern "C" __global__ void halfatomics(__half2 *p, __half *q, const __half2 *a, __half2 *c) {
    atomicAdd(p, a[threadIdx.x]);
    atomicAdd(q + 1, __low2half(a[threadIdx.x]));
    c[threadIdx.x] = __hlt2(a[threadIdx.x], a[threadIdx.x + 1]);
    c[threadIdx.x + 64] = __hmax2(a[threadIdx.x], a[threadIdx.x + 1]);
}

// Device-side heap: malloc in one kernel, read and free in the next.
extern "C" __global__ void devmalloc(int **out) {
    int *p = (int *)malloc(16 * sizeof(int));
    if (p)
        for (int i = 0; i < 16; i++) p[i] = (int)threadIdx.x + i;
    out[threadIdx.x] = p;
}
extern "C" __global__ void devfree(int **out, int *sum) {
    int *p = out[threadIdx.x];
    int s = -1;
    if (p) {
        s = 0;
        for (int i = 0; i < 16; i++) s += p[i];
        free(p);
    }
    sum[threadIdx.x] = s;
}

// Tensor-core matrix multiply through WMMA (16x16x16 tiles): f16 and bf16 inputs, f32 and f16 accumulators.
extern "C" __global__ void wmma_f16(const half *a, const half *b, float *c, half *d) {
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
    wmma::fragment<wmma::accumulator, 16, 16, 16, half> fd;
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::load_matrix_sync(fc, c, 16, wmma::mem_row_major);
    wmma::mma_sync(fc, fa, fb, fc);
    for (int i = 0; i < fc.num_elements; i++) fc.x[i] *= 2.0f;
    wmma::store_matrix_sync(c, fc, 16, wmma::mem_row_major);
    wmma::fill_fragment(fd, 0.0f);
    wmma::mma_sync(fd, fa, fb, fd);
    wmma::store_matrix_sync(d, fd, 16, wmma::mem_col_major);
}

extern "C" __global__ void wmma_bf16(const __nv_bfloat16 *a, const __nv_bfloat16 *b, float *c) {
    using namespace nvcuda;
    __shared__ __nv_bfloat16 sa[256];
    for (int i = threadIdx.x; i < 256; i += 32) sa[i] = a[i];
    __syncwarp();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
    wmma::load_matrix_sync(fa, sa, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::fill_fragment(fc, 1.0f);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(c, fc, 16, wmma::mem_col_major);
}

// WMMA beyond f16/bf16 (dmmaTensorCoreGemm, immaTensorCoreGemm, tf32TensorCoreGemm): f64 m8n8k4,
// s8 -> s32 m16n16k16, tf32 m16n16k8 (inputs rounded with __float_to_tf32), each loaded in both
// memory layouts, with an elementwise op on the accumulator fragment.
extern "C" __global__ void wmma_more(const double *da, const double *db, double *dc, const signed char *ia,
                                     const signed char *ib, int *ic, const float *fa, const float *fb, float *fc) {
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 8, 8, 4, double, wmma::row_major> a64;
    wmma::fragment<wmma::matrix_b, 8, 8, 4, double, wmma::col_major> b64;
    wmma::fragment<wmma::accumulator, 8, 8, 4, double> c64;
    wmma::load_matrix_sync(a64, da, 4);
    wmma::load_matrix_sync(b64, db, 4);
    wmma::load_matrix_sync(c64, dc, 8, wmma::mem_row_major);
    wmma::mma_sync(c64, a64, b64, c64);
    wmma::store_matrix_sync(dc, c64, 8, wmma::mem_col_major);

    wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::col_major> a8;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::row_major> b8;
    wmma::fragment<wmma::accumulator, 16, 16, 16, int> c32;
    wmma::load_matrix_sync(a8, ia, 16);
    wmma::load_matrix_sync(b8, ib, 16);
    wmma::fill_fragment(c32, 7);
    wmma::mma_sync(c32, a8, b8, c32);
    for (int i = 0; i < c32.num_elements; i++) c32.x[i] -= 1;
    wmma::store_matrix_sync(ic, c32, 16, wmma::mem_row_major);

    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> atf;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> btf;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> ctf;
    wmma::load_matrix_sync(atf, fa, 8);
    wmma::load_matrix_sync(btf, fb, 8);
    for (int i = 0; i < atf.num_elements; i++) atf.x[i] = wmma::__float_to_tf32(atf.x[i]);
    for (int i = 0; i < btf.num_elements; i++) btf.x[i] = wmma::__float_to_tf32(btf.x[i]);
    wmma::fill_fragment(ctf, 0.5f);
    wmma::mma_sync(ctf, atf, btf, ctf);
    wmma::store_matrix_sync(fc, ctf, 16, wmma::mem_row_major);
}

// f64 m8n8k4 as dmmaTensorCoreGemm runs it: A (8x16) and B (16x8, given as its transpose Bt) staged in
// shared memory by cp.async, 16 bytes a lane, each skewed shared row a run of 8 lanes, piece 13 copying 8
// bytes and zero-filling the rest; fragments loaded with the skewed stride, the 4 K steps accumulated in
// place, D stored row-major. Then one more product through inline PTX whose D registers overlap its
// inputs: D0 is A's register (e[4l], e[4l + 1]), and D is C's pair swapped (e[4l + 2], e[4l + 3]).
extern "C" __global__ void wmma_f64_tile(const double *A, const double *Bt, double *C, double *e) {
    using namespace nvcuda;
    __shared__ __align__(32) double sa[8][20], sb[8][20];
    const unsigned l = threadIdx.x;
    for (unsigned p = l; p < 64; p += blockDim.x) {
        const unsigned r = p / 8, c = (p % 8) * 2;
        asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" /* src-size in a register */
                     :: "r"((unsigned)__cvta_generic_to_shared(&sa[r][c])), "l"(&A[r * 16 + c]), "r"(p == 13 ? 8 : 16));
        __pipeline_memcpy_async(&sb[r][c], &Bt[r * 16 + c], 16);
    }
    __pipeline_commit();
    __pipeline_wait_prior(0);
    __syncthreads();
    wmma::fragment<wmma::accumulator, 8, 8, 4, double> c;
    wmma::fragment<wmma::matrix_a, 8, 8, 4, double, wmma::row_major> a;
    wmma::fragment<wmma::matrix_b, 8, 8, 4, double, wmma::col_major> b;
    wmma::load_matrix_sync(c, C, 8, wmma::mem_row_major);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        wmma::load_matrix_sync(a, &sa[0][4 * k], 20);
        wmma::load_matrix_sync(b, &sb[0][4 * k], 20);
        wmma::mma_sync(c, a, b, c);
    }
    wmma::store_matrix_sync(C, c, 8, wmma::mem_row_major);
    double d0 = a.x[0], d1, s0 = c.x[0], s1 = c.x[1];
    asm volatile("wmma.mma.sync.aligned.row.col.m8n8k4.f64.f64.f64.f64.rn {%0, %1}, {%0}, {%2}, {%3, %4};"
                 : "+d"(d0), "=d"(d1) : "d"(b.x[0]), "d"(c.x[0]), "d"(c.x[1]));
    asm volatile("wmma.mma.sync.aligned.row.col.m8n8k4.f64.f64.f64.f64.rn {%0, %1}, {%2}, {%3}, {%1, %0};"
                 : "+d"(s0), "+d"(s1) : "d"(a.x[0]), "d"(b.x[0]));
    e[4 * l] = d0;
    e[4 * l + 1] = d1;
    e[4 * l + 2] = s0;
    e[4 * l + 3] = s1;
}

// cp.async from a bad address in one lane (lane `bad`'s source is far past g's allocation): the launch
// fails naming that lane, whether its neighbours form one run or not.
extern "C" __global__ void cpasync_fault(const double *g, double *o, int bad) {
    __shared__ __align__(16) double s[64];
    const unsigned l = threadIdx.x;
    __pipeline_memcpy_async(&s[2 * l], g + 2 * l + (l == (unsigned)bad ? (1u << 28) : 0u), 16);
    __pipeline_commit();
    __pipeline_wait_prior(0);
    __syncthreads();
    o[l] = s[2 * l] + s[2 * l + 1];
}

// PTX mma.sync m16n8k16 with operands loaded by ldmatrix (plain and .trans), as in hand-tuned GEMMs.
// A: 16x16 row-major; B: 16x8 given twice, column-major (Bt[n][k]) and row-major (B[k][n]); C, D: 16x8 row-major.
extern "C" __global__ void mma_ldmatrix(const half *A, const half *Bt, const half *Brow, const float *C, float *D, float *D2) {
    __shared__ __align__(16) half sA[256];
    __shared__ __align__(16) half sBt[128];
    __shared__ __align__(16) half sB[128];
    int l = threadIdx.x;
    for (int i = l; i < 256; i += 32) sA[i] = A[i];
    for (int i = l; i < 128; i += 32) { sBt[i] = Bt[i]; sB[i] = Brow[i]; }
    __syncwarp();
    unsigned a[4], b[2], bt[2];
    unsigned pa = (unsigned)__cvta_generic_to_shared(&sA[(l % 16) * 16 + (l / 16) * 8]);
    unsigned pb = (unsigned)__cvta_generic_to_shared(&sBt[(l % 8) * 16 + ((l / 8) % 2) * 8]);
    unsigned pbt = (unsigned)__cvta_generic_to_shared(&sB[(l % 16) * 8]);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(pa));
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(b[0]), "=r"(b[1]) : "r"(pb));
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];" : "=r"(bt[0]), "=r"(bt[1]) : "r"(pbt));
    int g = l >> 2, t = l & 3;
    float c[4], d[4], d2[4];
    for (int i = 0; i < 4; i++) c[i] = C[(g + (i >> 1) * 8) * 8 + t * 2 + (i & 1)];
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
                 : "=f"(d2[0]), "=f"(d2[1]), "=f"(d2[2]), "=f"(d2[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(bt[0]), "r"(bt[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
    for (int i = 0; i < 4; i++) {
        D[(g + (i >> 1) * 8) * 8 + t * 2 + (i & 1)] = d[i];
        D2[(g + (i >> 1) * 8) * 8 + t * 2 + (i & 1)] = d2[i];
    }
}

// Warp matrix results bit for bit (emu_c/ptx_mma.c): f16 inputs over their whole finite range with an f16 C
// (column-major) into an f32 D, A from shared memory with a padded stride (cudaTensorCoreGemm's skew), B
// column-major; tf32 inputs not rounded first (the low 13 mantissa bits are ignored); u8 with .satfinite and s8
// wrapping around near INT_MAX.
extern "C" __global__ void wmma_exact(const half *a, const half *b, const half *c, float *d, const float *ta,
                                      const float *tb, float *td, const unsigned char *ua, const unsigned char *ub,
                                      int *ud, const signed char *sa, const signed char *sb, int *sd) {
    using namespace nvcuda;
    __shared__ __align__(32) half sa16[16 * 24];
    for (int i = threadIdx.x; i < 256; i += 32) sa16[(i / 16) * 24 + i % 16] = a[i];
    __syncwarp();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, half> fc;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fd;
    wmma::load_matrix_sync(fa, sa16, 24);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::load_matrix_sync(fc, c, 16, wmma::mem_col_major);
    wmma::mma_sync(fd, fa, fb, fc);
    wmma::store_matrix_sync(d, fd, 16, wmma::mem_row_major);

    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> atf;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> btf;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> ctf;
    wmma::load_matrix_sync(atf, ta, 16);
    wmma::load_matrix_sync(btf, tb, 16);
    wmma::fill_fragment(ctf, -0.25f);
    wmma::mma_sync(ctf, atf, btf, ctf);
    wmma::store_matrix_sync(td, ctf, 16, wmma::mem_col_major);

    wmma::fragment<wmma::matrix_a, 16, 16, 16, unsigned char, wmma::row_major> au;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, unsigned char, wmma::col_major> bu;
    wmma::fragment<wmma::accumulator, 16, 16, 16, int> cu;
    wmma::load_matrix_sync(au, ua, 16);
    wmma::load_matrix_sync(bu, ub, 16);
    wmma::fill_fragment(cu, 2147483647 - 1000000);
    wmma::mma_sync(cu, au, bu, cu, true);
    wmma::store_matrix_sync(ud, cu, 16, wmma::mem_row_major);

    wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::row_major> as;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::row_major> bs;
    wmma::fragment<wmma::accumulator, 16, 16, 16, int> cs;
    wmma::load_matrix_sync(as, sa, 16);
    wmma::load_matrix_sync(bs, sb, 16);
    wmma::fill_fragment(cs, 2147483647 - 100000);
    wmma::mma_sync(cs, as, bs, cs);
    wmma::store_matrix_sync(sd, cs, 16, wmma::mem_col_major);
}

// wmma.store with a caller's stride: past the end of the allocation it must fail the launch.
extern "C" __global__ void wmma_store_ld(float *d, unsigned ld) {
    using namespace nvcuda;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> f;
    wmma::fill_fragment(f, 3.0f);
    wmma::store_matrix_sync(d, f, ld, wmma::mem_row_major);
}

// mma.sync m16n8k8 bf16 -> f32 and m16n8k16 f16 with f16 C and D, fragments given per lane as registers
// (a[], b[]: lane l's words at l * count + j) so the ISA's layouts are what the test checks.
extern "C" __global__ void mma_more(const unsigned *a, const unsigned *b, const float *c, float *d, const unsigned *ha,
                                    const unsigned *hb, const unsigned *hc, unsigned *hd) {
    int l = threadIdx.x;
    float o[4];
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};"
                 : "=f"(o[0]), "=f"(o[1]), "=f"(o[2]), "=f"(o[3])
                 : "r"(a[2 * l]), "r"(a[2 * l + 1]), "r"(b[l]), "f"(c[4 * l]), "f"(c[4 * l + 1]), "f"(c[4 * l + 2]),
                   "f"(c[4 * l + 3]));
    for (int i = 0; i < 4; i++) d[4 * l + i] = o[i];
    unsigned h0, h1;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16 {%0,%1}, {%2,%3,%4,%5}, {%6,%7}, {%8,%9};"
                 : "=r"(h0), "=r"(h1)
                 : "r"(ha[4 * l]), "r"(ha[4 * l + 1]), "r"(ha[4 * l + 2]), "r"(ha[4 * l + 3]), "r"(hb[2 * l]),
                   "r"(hb[2 * l + 1]), "r"(hc[2 * l]), "r"(hc[2 * l + 1]));
    hd[2 * l] = h0;
    hd[2 * l + 1] = h1;
}

// Recursion (calls are inlined, recursion unrolled to a fixed depth).
__device__ __noinline__ int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
extern "C" __global__ void recursive(const int *n, int *out) { out[threadIdx.x] = fib(n[threadIdx.x]); }

// SIMD video intrinsics (vabsdiff4 etc. where the headers use PTX video instructions).
extern "C" __global__ void video(const unsigned *a, const unsigned *b, unsigned *o) {
    int t = threadIdx.x;
    unsigned x = a[t], y = b[t];
    o[4 * t] = __vabsdiffu4(x, y);
    o[4 * t + 1] = __vsadu4(x, y);
    o[4 * t + 2] = __vabsdiffs4(x, y);
    o[4 * t + 3] = __vsads4(x, y);
}
