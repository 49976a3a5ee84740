// copy_kinds.cu - every kind of copy between host memory and the device that is not a plain 1D device copy:
// 2D/3D copies with pitched device memory or CUDA arrays (cuMemcpy2D/3D, cuMemcpy3DPeer), and the 1D array
// copies (cuMemcpyHtoA/AtoH), in
// their synchronous and asynchronous forms, from pageable and pinned host memory, small (<= 4 KiB, one
// shared-memory slot through the stub) and large (several slots, rows wider than a slot), checked byte for
// byte against a host model of the copy (offsets, pitches, rows per slice, the bytes around the copied box).
// The device side is filled and read back through copies this program does not test (1D device copies and
// device <-> array copies), so a fault in one direction cannot cancel one in the other.
// Usage: copy_kinds bytes [small|large|wide]   prints "<case>=ok" per case and "cases=<n>";
//        copy_kinds order                      each asynchronous copy issued on a non-blocking stream behind a
//                                               kernel that spins until a host thread releases it (200 ms)
//                                               and then fills the device buffer: "<case>=ok".
// A failing case prints "<case>=FAIL ..." (and the program exits 1); every host wait is bounded.
#include "tf_test_io.h"

#include <cuda.h>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

enum Kind { HOST, DEV, ARR };
enum Api { API_1D, API_2D, API_2D_UNALIGNED, API_3D, API_3D_PEER, API_1D_ARRAY };

// One side of a copy: where it is, its layout (bytes a row, rows a slice, slices) and the copy's offsets.
struct Side {
    Kind kind;
    size_t pitch, rows, slices; // an array: its width in bytes, height, depth
    size_t x, y, z;
    bool pinned;                // host memory from cuMemHostAlloc
    uint8_t *host = nullptr;    // HOST: the buffer; DEV / ARR: the host mirror of the device object
    CUdeviceptr dev = 0;
    CUarray arr = nullptr;
    size_t bytes() const { return pitch * rows * slices; }
    size_t at(size_t xx, size_t yy, size_t zz) const { return ((z + zz) * rows + y + yy) * pitch + x + xx; }
};

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 11)) ^ seed);
}

static void alloc_side(Side &s, unsigned seed)
{
    if (s.kind == HOST && s.pinned)
        CU(cuMemHostAlloc((void **)&s.host, s.bytes(), 0));
    else
        s.host = (uint8_t *)malloc(s.bytes());
    fill(s.host, s.bytes(), seed);
    if (s.kind == DEV)
        CU(cuMemAlloc(&s.dev, s.bytes()));
    if (s.kind == ARR) {
        CUDA_ARRAY3D_DESCRIPTOR d = {};
        d.Width = s.pitch;
        d.Height = s.rows > 1 || s.slices > 1 ? s.rows : 0;
        d.Depth = s.slices > 1 ? s.slices : 0;
        d.Format = CU_AD_FORMAT_UNSIGNED_INT8;
        d.NumChannels = 1;
        CU(cuArray3DCreate(&s.arr, &d));
    }
}

static void free_side(Side &s)
{
    if (s.kind == HOST && s.pinned)
        CU(cuMemFreeHost(s.host));
    else
        free(s.host);
    if (s.dev)
        CU(cuMemFree(s.dev));
    if (s.arr)
        CU(cuArrayDestroy(s.arr));
}

// Device <-> array through a linear device buffer (copies this program does not test).
static void array_via_device(Side &s, bool to_array, CUdeviceptr tmp)
{
    CUDA_MEMCPY3D c = {};
    c.WidthInBytes = s.pitch, c.Height = s.rows, c.Depth = s.slices;
    if (to_array) {
        c.srcMemoryType = CU_MEMORYTYPE_DEVICE, c.srcDevice = tmp, c.srcPitch = s.pitch, c.srcHeight = s.rows;
        c.dstMemoryType = CU_MEMORYTYPE_ARRAY, c.dstArray = s.arr;
    } else {
        c.srcMemoryType = CU_MEMORYTYPE_ARRAY, c.srcArray = s.arr;
        c.dstMemoryType = CU_MEMORYTYPE_DEVICE, c.dstDevice = tmp, c.dstPitch = s.pitch, c.dstHeight = s.rows;
    }
    CU(cuMemcpy3D(&c));
}

// The device object gets its host mirror's bytes / the mirror gets the device object's.
static void push(Side &s)
{
    if (s.kind == DEV)
        CU(cuMemcpyHtoD(s.dev, s.host, s.bytes()));
    if (s.kind == ARR) {
        CUdeviceptr tmp;
        CU(cuMemAlloc(&tmp, s.bytes()));
        CU(cuMemcpyHtoD(tmp, s.host, s.bytes()));
        array_via_device(s, true, tmp);
        CU(cuMemFree(tmp));
    }
}

static std::vector<uint8_t> pull(Side &s)
{
    std::vector<uint8_t> v(s.bytes());
    if (s.kind == HOST)
        memcpy(v.data(), s.host, s.bytes());
    if (s.kind == DEV)
        CU(cuMemcpyDtoH(v.data(), s.dev, s.bytes()));
    if (s.kind == ARR) {
        CUdeviceptr tmp;
        CU(cuMemAlloc(&tmp, s.bytes()));
        array_via_device(s, false, tmp);
        CU(cuMemcpyDtoH(v.data(), tmp, s.bytes()));
        CU(cuMemFree(tmp));
    }
    return v;
}

static void set_side(CUmemorytype &t, const void **h, CUdeviceptr &d, CUarray &a, size_t &pitch, const Side &s)
{
    t = s.kind == HOST ? CU_MEMORYTYPE_HOST : s.kind == DEV ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_ARRAY;
    *h = s.kind == HOST ? s.host : nullptr;
    d = s.kind == DEV ? s.dev : 0;
    a = s.kind == ARR ? s.arr : nullptr;
    pitch = s.kind == ARR ? 0 : s.pitch;
}

// The copy under test, w x h x d bytes from src to dst, with the entry point `api`.
static void issue(Api api, const Side &src, const Side &dst, size_t w, size_t h, size_t d, CUstream st, bool async)
{
    if (api == API_1D) { // device memory: the plain copies (the emulator's staging of pageable sources)
        if (dst.kind == DEV)
            CU(async ? cuMemcpyHtoDAsync(dst.dev + dst.x, src.host + src.x, w, st) : cuMemcpyHtoD(dst.dev + dst.x, src.host + src.x, w));
        else
            CU(async ? cuMemcpyDtoHAsync(dst.host + dst.x, src.dev + src.x, w, st) : cuMemcpyDtoH(dst.host + dst.x, src.dev + src.x, w));
        return;
    }
    if (api == API_1D_ARRAY) {
        if (dst.kind == ARR)
            CU(async ? cuMemcpyHtoAAsync(dst.arr, dst.x, src.host + src.x, w, st) : cuMemcpyHtoA(dst.arr, dst.x, src.host + src.x, w));
        else
            CU(async ? cuMemcpyAtoHAsync(dst.host + dst.x, src.arr, src.x, w, st) : cuMemcpyAtoH(dst.host + dst.x, src.arr, src.x, w));
        return;
    }
    if (api == API_3D || api == API_3D_PEER) {
        CUDA_MEMCPY3D c = {};
        const void *dh;
        set_side(c.srcMemoryType, &c.srcHost, c.srcDevice, c.srcArray, c.srcPitch, src);
        set_side(c.dstMemoryType, &dh, c.dstDevice, c.dstArray, c.dstPitch, dst);
        c.dstHost = (void *)dh;
        c.srcXInBytes = src.x, c.srcY = src.y, c.srcZ = src.z, c.srcHeight = src.kind == ARR ? 0 : src.rows;
        c.dstXInBytes = dst.x, c.dstY = dst.y, c.dstZ = dst.z, c.dstHeight = dst.kind == ARR ? 0 : dst.rows;
        c.WidthInBytes = w, c.Height = h, c.Depth = d;
        if (api == API_3D_PEER) { // the same copy between two contexts' memory (here both the current one)
            CUcontext ctx;
            CU(cuCtxGetCurrent(&ctx));
            CUDA_MEMCPY3D_PEER q = {};
            q.srcXInBytes = c.srcXInBytes, q.srcY = c.srcY, q.srcZ = c.srcZ, q.srcMemoryType = c.srcMemoryType;
            q.srcHost = c.srcHost, q.srcDevice = c.srcDevice, q.srcArray = c.srcArray, q.srcContext = ctx;
            q.srcPitch = c.srcPitch, q.srcHeight = c.srcHeight;
            q.dstXInBytes = c.dstXInBytes, q.dstY = c.dstY, q.dstZ = c.dstZ, q.dstMemoryType = c.dstMemoryType;
            q.dstHost = c.dstHost, q.dstDevice = c.dstDevice, q.dstArray = c.dstArray, q.dstContext = ctx;
            q.dstPitch = c.dstPitch, q.dstHeight = c.dstHeight;
            q.WidthInBytes = w, q.Height = h, q.Depth = d;
            CU(async ? cuMemcpy3DPeerAsync(&q, st) : cuMemcpy3DPeer(&q));
            return;
        }
        CU(async ? cuMemcpy3DAsync(&c, st) : cuMemcpy3D(&c));
        return;
    }
    CUDA_MEMCPY2D c = {};
    const void *dh;
    set_side(c.srcMemoryType, &c.srcHost, c.srcDevice, c.srcArray, c.srcPitch, src);
    set_side(c.dstMemoryType, &dh, c.dstDevice, c.dstArray, c.dstPitch, dst);
    c.dstHost = (void *)dh;
    c.srcXInBytes = src.x, c.srcY = src.y + src.z * src.rows; // 2D: a slice is more rows
    c.dstXInBytes = dst.x, c.dstY = dst.y + dst.z * dst.rows;
    c.WidthInBytes = w, c.Height = h;
    if (async)
        CU(cuMemcpy2DAsync(&c, st));
    else
        CU(api == API_2D_UNALIGNED ? cuMemcpy2DUnaligned(&c) : cuMemcpy2D(&c));
}

// The model: what dst's bytes must be after the copy (on the mirrors, before the copy).
static std::vector<uint8_t> model(const Side &src, const Side &dst, size_t w, size_t h, size_t d)
{
    std::vector<uint8_t> out(dst.host, dst.host + dst.bytes());
    for (size_t z = 0; z < d; z++)
        for (size_t y = 0; y < h; y++)
            memcpy(out.data() + dst.at(0, y, z), src.host + src.at(0, y, z), w);
    return out;
}

static int g_cases, g_failed;

static bool same(const std::string &name, const std::vector<uint8_t> &got, const std::vector<uint8_t> &want)
{
    for (size_t i = 0; i < want.size(); i++) {
        if (got[i] != want[i]) {
            printf("%s=FAIL byte %zu: %d != %d\n", name.c_str(), i, got[i], want[i]);
            g_failed++;
            return false;
        }
    }
    return true;
}

// One case: both sides allocated and filled, the copy issued, dst compared with the model, src unchanged.
static void run_case(const std::string &name, Api api, Side src, Side dst, size_t w, size_t h, size_t d, CUstream st,
                     bool async)
{
    alloc_side(src, 1);
    alloc_side(dst, 2);
    push(src);
    push(dst);
    std::vector<uint8_t> want = model(src, dst, w, h, d), src_before(src.host, src.host + src.bytes());
    issue(api, src, dst, w, h, d, st, async);
    if (async)
        CU(cuStreamSynchronize(st));
    g_cases++;
    if (same(name, pull(dst), want) && same(name + "_src", pull(src), src_before))
        printf("%s=ok\n", name.c_str());
    free_side(src);
    free_side(dst);
}

static Side host_side(size_t pitch, size_t rows, size_t slices, size_t x, size_t y, size_t z, bool pinned)
{
    return Side{HOST, pitch, rows, slices, x, y, z, pinned};
}

static int bytes_mode(const std::string &size)
{
    CUstream st;
    CU(cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
    // w x h rows x d slices copied; host and device layouts a little bigger, with offsets
    size_t w = 256, h = 16, d = 3; // small: 4 KiB a slice
    if (size == "large")
        w = 3000, h = 1100, d = 3;  // 9.9 MB: two shared-memory slots (8 MiB), several frames
    if (size == "wide")
        w = (9u << 20) + 8, h = 2, d = 1; // rows wider than a slot
    for (int pinned = 0; pinned < 2; pinned++) {
        for (int async = 0; async < 2; async++) {
            std::string tag = std::string(pinned ? "_pinned" : "_pageable") + (async ? "_async" : "_sync");
            size_t more = size == "wide" ? 0 : 1; // slices around the copied ones (none for the wide rows)
            Side hs = host_side(w + 40, h + 5, d + more, 7, 3, more, pinned);
            Side ds{DEV, w + 64, h + 2, d + more, 5, 1, more, false};
            // 2D: one slice of the same layouts (z folds into rows)
            run_case("h2d_2d" + tag, async ? API_2D : API_2D_UNALIGNED, hs, ds, w, h, 1, st, async);
            run_case("d2h_2d" + tag, API_2D, ds, hs, w, h, 1, st, async);
            if (size == "wide")
                continue;
            run_case("h2d_3d" + tag, API_3D, hs, ds, w, h, d, st, async);
            run_case("d2h_3d" + tag, API_3D, ds, hs, w, h, d, st, async);
            run_case("h2d_3dpeer" + tag, API_3D_PEER, hs, ds, w, h, d, st, async);
            run_case("d2h_3dpeer" + tag, API_3D_PEER, ds, hs, w, h, d, st, async);
            Side a2{ARR, w + 16, h + 4, 1, 9, 2, 0, false};
            Side h2 = host_side(w + 40, h + 5, 1, 7, 3, 0, pinned);
            run_case("h2a_2d" + tag, API_2D, h2, a2, w, h, 1, st, async);
            run_case("a2h_2d" + tag, API_2D, a2, h2, w, h, 1, st, async);
            Side a3{ARR, w + 16, h + 4, d + 1, 9, 2, 1, false};
            run_case("h2a_3d" + tag, API_3D, hs, a3, w, h, d, st, async);
            run_case("a2h_3d" + tag, API_3D, a3, hs, w, h, d, st, async);
            size_t n = size == "large" ? 100000 : 4000; // a 1D array's width is bounded (CUDA: 2^27 texels)
            Side a1{ARR, n + 96, 1, 1, 33, 0, 0, false};
            Side h1 = host_side(n + 50, 1, 1, 11, 0, 0, pinned);
            run_case("htoa" + tag, API_1D_ARRAY, h1, a1, n, 1, 1, st, async);
            run_case("atoh" + tag, API_1D_ARRAY, a1, h1, n, 1, 1, st, async);
        }
    }
    printf("cases=%d\n", g_cases);
    return g_failed ? 1 : 0;
}

// Spins until *latch, then fills n bytes of p with v.
__global__ void spin_then_fill(volatile unsigned *latch, uint8_t *p, size_t n, uint8_t v)
{
    while (latch[0] == 0) {
    }
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        p[i] = v;
}

// Behind the spinning kernel on non-blocking stream st: the device buffer the kernel fills with 0x5A is the
// copy's device side (or, for an array, copied into the array behind it); the copy must come after the fill.
static void order_case(const std::string &name, Api api, Side src, Side dst, size_t w, size_t h, size_t d,
                       CUstream st, unsigned *latch)
{
    alloc_side(src, 3);
    alloc_side(dst, 4);
    push(src);
    push(dst);
    Side &dev = src.kind == HOST ? dst : src;
    CUdeviceptr buf = dev.dev;
    if (dev.kind == ARR)
        CU(cuMemAlloc(&buf, dev.bytes()));
    memset(dev.host, 0x5A, dev.bytes()); // the mirror: what the kernel leaves
    std::vector<uint8_t> want = model(src, dst, w, h, d);
    latch[0] = 0;
    std::thread releaser([latch] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        __atomic_store_n(&latch[0], 1u, __ATOMIC_RELEASE);
    });
    spin_then_fill<<<1, 256, 0, (cudaStream_t)st>>>(latch, (uint8_t *)buf, dev.bytes(), 0x5A);
    CK(cudaGetLastError());
    if (dev.kind == ARR) { // the array gets the kernel's bytes in stream order too
        CUDA_MEMCPY3D c = {};
        c.WidthInBytes = dev.pitch, c.Height = dev.rows, c.Depth = dev.slices;
        c.srcMemoryType = CU_MEMORYTYPE_DEVICE, c.srcDevice = buf, c.srcPitch = dev.pitch, c.srcHeight = dev.rows;
        c.dstMemoryType = CU_MEMORYTYPE_ARRAY, c.dstArray = dev.arr;
        CU(cuMemcpy3DAsync(&c, st));
    }
    issue(api, src, dst, w, h, d, st, true);
    if (src.kind == HOST && !src.pinned)
        memset(src.host, 0xC3, src.bytes()); // pageable: the caller may reuse it once the call returned
    CU(cuStreamSynchronize(st));
    releaser.join();
    g_cases++;
    if (same(name, pull(dst), want))
        printf("%s=ok\n", name.c_str());
    if (dev.kind == ARR)
        CU(cuMemFree(buf));
    free_side(src);
    free_side(dst);
}

static int order_mode()
{
    unsigned *latch;
    CK(cudaMallocHost(&latch, sizeof(unsigned)));
    CUstream st;
    CU(cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
    size_t w = 256, h = 16, d = 3;
    for (int pinned = 0; pinned < 2; pinned++) {
        std::string tag = pinned ? "_pinned" : "_pageable";
        Side hs = host_side(w + 40, h + 5, d + 1, 7, 3, 1, pinned);
        Side ds{DEV, w + 64, h + 2, d + 1, 5, 1, 1, false};
        order_case("h2d_2d" + tag, API_2D, hs, ds, w, h, 1, st, latch);
        order_case("d2h_2d" + tag, API_2D, ds, hs, w, h, 1, st, latch);
        order_case("h2d_3d" + tag, API_3D, hs, ds, w, h, d, st, latch);
        order_case("d2h_3d" + tag, API_3D, ds, hs, w, h, d, st, latch);
        order_case("h2d_3dpeer" + tag, API_3D_PEER, hs, ds, w, h, d, st, latch);
        order_case("d2h_3dpeer" + tag, API_3D_PEER, ds, hs, w, h, d, st, latch);
        Side a3{ARR, w + 16, h + 4, d + 1, 9, 2, 1, false};
        order_case("h2a_3d" + tag, API_3D, hs, a3, w, h, d, st, latch);
        order_case("a2h_3d" + tag, API_3D, a3, hs, w, h, d, st, latch);
        Side a1{ARR, 4096, 1, 1, 33, 0, 0, false};
        Side h1 = host_side(4050, 1, 1, 11, 0, 0, pinned);
        order_case("htoa" + tag, API_1D_ARRAY, h1, a1, 4000, 1, 1, st, latch);
        order_case("atoh" + tag, API_1D_ARRAY, a1, h1, 4000, 1, 1, st, latch);
        // a 1D copy from host memory: pageable is staged when queued (the source is overwritten at once)
        Side l1{DEV, 4096, 1, 1, 16, 0, 0, false};
        order_case("h2d_1d" + tag, API_1D, h1, l1, 4000, 1, 1, st, latch);
        order_case("d2h_1d" + tag, API_1D, l1, h1, 4000, 1, 1, st, latch);
    }
    printf("cases=%d\n", g_cases);
    return g_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    std::string mode = argc > 1 ? argv[1] : "bytes";
    setvbuf(stdout, NULL, _IOLBF, 0);
    CK(cudaFree(0)); // the primary context, current for the driver calls
    if (mode == "bytes")
        return bytes_mode(argc > 2 ? argv[2] : "small");
    if (mode == "order")
        return order_mode();
    printf("usage: copy_kinds bytes [small|large|wide] | order\n");
    return 2;
}
