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
