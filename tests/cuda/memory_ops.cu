// memory_ops.cu - exercises cudart memory calls without kernels; prints "key=value" lines.
// I/O contract (stable): argv[1] = number of floats N (default 4096), argv[2] = seed (default 1).
// The program fills host data from the seed itself (x[i] = ((i * 2654435761u + seed) % 1000) / 8.0f)
// so the checker can recompute it. stdout lines:
//   roundtrip=<ok|bad>      H2D then D2H of N floats returns the same bytes
//   memset_tail=<ok|bad>    cudaMemset of the upper half to 0 is seen, lower half untouched
//   d2d=<ok|bad>            device-to-device copy of the lower half
//   pitch=<pitch>           cudaMallocPitch pitch for a 100-byte row
//   copy2d=<ok|bad>         cudaMemcpy2D host->pitched device->host
//   host_alloc=<ok|bad>     cudaHostAlloc + cudaHostGetDevicePointer + copy through it
//   host_register=<ok|bad>  cudaHostRegister of a malloc'd buffer, copy through its device pointer
//   memset2d=<ok|bad>       cudaMemset2D of a 30x5 window inside a pitched allocation
//   copy3d=<ok|bad>         cudaMemcpy3D host -> device -> host of a 16x4x3 box through cudaMalloc3D
//   alloc_delta=<bytes>     drop of cudaMemGetInfo free memory while one 64 MiB buffer is allocated
//   bogus_copy=<error name> cudaMemcpy to a device address no allocation covers
//   too_big=<error name>    cudaMalloc larger than the device memory
//   checksum=<sum of the N floats read back, %.3f>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            printf("error=%s at %s\n", cudaGetErrorName(e_), #call);                               \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], 0, 10) : 4096;
    unsigned seed = argc > 2 ? (unsigned)strtoul(argv[2], 0, 10) : 1;
    std::vector<float> h(n), g(n);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)(((unsigned)i * 2654435761u + seed) % 1000) / 8.0f;
    float *d = 0, *d2 = 0;
    CK(cudaMalloc(&d, n * sizeof(float)));
    CK(cudaMalloc(&d2, n * sizeof(float)));
    CK(cudaMemcpy(d, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(g.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    printf("roundtrip=%s\n", memcmp(g.data(), h.data(), n * sizeof(float)) ? "bad" : "ok");
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += g[i];

    CK(cudaMemset(d + n / 2, 0, (n - n / 2) * sizeof(float)));
    CK(cudaMemcpy(g.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    bool ok = memcmp(g.data(), h.data(), n / 2 * sizeof(float)) == 0;
    for (size_t i = n / 2; i < n; i++)
        ok = ok && g[i] == 0.0f;
    printf("memset_tail=%s\n", ok ? "ok" : "bad");

    CK(cudaMemcpy(d2, d, n / 2 * sizeof(float), cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(g.data(), d2, n / 2 * sizeof(float), cudaMemcpyDeviceToHost));
    printf("d2d=%s\n", memcmp(g.data(), h.data(), n / 2 * sizeof(float)) ? "bad" : "ok");

    char *pd = 0;
    size_t pitch = 0;
    CK(cudaMallocPitch((void **)&pd, &pitch, 100, 8));
    printf("pitch=%zu\n", pitch);
    char src[8][100], back[8][100];
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 100; c++)
            src[r][c] = (char)(r * 31 + c);
    CK(cudaMemcpy2D(pd, pitch, src, 100, 100, 8, cudaMemcpyHostToDevice));
    memset(back, 0, sizeof(back));
    CK(cudaMemcpy2D(back, 100, pd, pitch, 100, 8, cudaMemcpyDeviceToHost));
    printf("copy2d=%s\n", memcmp(src, back, sizeof(src)) ? "bad" : "ok");
    CK(cudaFree(pd));

    float *hp = 0, *hd = 0;
    CK(cudaHostAlloc((void **)&hp, 64 * sizeof(float), cudaHostAllocMapped));
    CK(cudaHostGetDevicePointer((void **)&hd, hp, 0));
    for (int i = 0; i < 64; i++)
        hp[i] = (float)i;
    CK(cudaMemcpy(d, hd, 64 * sizeof(float), cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(g.data(), d, 64 * sizeof(float), cudaMemcpyDeviceToHost));
    printf("host_alloc=%s\n", memcmp(g.data(), hp, 64 * sizeof(float)) ? "bad" : "ok");
    CK(cudaFreeHost(hp));

    std::vector<float> reg(256);
    for (int i = 0; i < 256; i++)
        reg[i] = (float)(3 * i);
    CK(cudaHostRegister(reg.data(), reg.size() * sizeof(float), cudaHostRegisterMapped));
    float *rd = 0;
    CK(cudaHostGetDevicePointer((void **)&rd, reg.data(), 0));
    CK(cudaMemcpy(d, rd, 256 * sizeof(float), cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(g.data(), d, 256 * sizeof(float), cudaMemcpyDeviceToHost));
    printf("host_register=%s\n", memcmp(g.data(), reg.data(), 256 * sizeof(float)) ? "bad" : "ok");
    CK(cudaHostUnregister(reg.data()));

    unsigned char *m2;
    size_t p2;
    CK(cudaMallocPitch((void **)&m2, &p2, 64, 8));
    CK(cudaMemset2D(m2, p2, 0x11, 64, 8));
    CK(cudaMemset2D(m2 + p2 * 2 + 10, p2, 0xab, 30, 5));
    std::vector<unsigned char> m2h(p2 * 8);
    CK(cudaMemcpy(m2h.data(), m2, p2 * 8, cudaMemcpyDeviceToHost));
    ok = true;
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 64; c++)
            ok = ok && m2h[r * p2 + c] == ((r >= 2 && r < 7 && c >= 10 && c < 40) ? 0xab : 0x11);
    printf("memset2d=%s\n", ok ? "ok" : "bad");
    CK(cudaFree(m2));

    cudaExtent ext = make_cudaExtent(16 * sizeof(int), 4, 3);
    cudaPitchedPtr box;
    CK(cudaMalloc3D(&box, ext));
    int hbox[3][4][16], hback[3][4][16];
    for (int z = 0; z < 3; z++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 16; x++)
                hbox[z][y][x] = z * 1000 + y * 100 + x;
    cudaMemcpy3DParms up = {0};
    up.srcPtr = make_cudaPitchedPtr(hbox, 16 * sizeof(int), 16, 4);
    up.dstPtr = box;
    up.extent = ext;
    up.kind = cudaMemcpyHostToDevice;
    CK(cudaMemcpy3D(&up));
    cudaMemcpy3DParms down = {0};
    down.srcPtr = box;
    down.dstPtr = make_cudaPitchedPtr(hback, 16 * sizeof(int), 16, 4);
    down.extent = ext;
    down.kind = cudaMemcpyDeviceToHost;
    memset(hback, 0, sizeof(hback));
    CK(cudaMemcpy3D(&down));
    printf("copy3d=%s\n", memcmp(hbox, hback, sizeof(hbox)) ? "bad" : "ok");
    CK(cudaFree(box.ptr));

    size_t free0, free1, total;
    CK(cudaMemGetInfo(&free0, &total));
    void *big = 0;
    CK(cudaMalloc(&big, 64 << 20));
    CK(cudaMemGetInfo(&free1, &total));
    printf("alloc_delta=%zu\n", free0 - free1);
    CK(cudaFree(big));

    cudaError_t e = cudaMemcpy((void *)0x10, h.data(), 16, cudaMemcpyHostToDevice);
    printf("bogus_copy=%s\n", cudaGetErrorName(e));
    e = cudaMalloc(&big, total + (1ull << 30));
    printf("too_big=%s\n", cudaGetErrorName(e));
    cudaGetLastError();
    printf("checksum=%.3f\n", sum);
    CK(cudaFree(d));
    CK(cudaFree(d2));
    return 0;
}
