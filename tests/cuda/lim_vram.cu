// lim_vram.cu - VRAM cap probe for the limiter tests (tests/limiter): allocates through every cudart
// path the emulated device supports and prints what a user sees as "key=value" lines.
// argv[1] = chunk size in MiB (default 64). Lines:
//   info_free, info_total    cudaMemGetInfo at start
//   prop_total               cudaGetDeviceProperties().totalGlobalMem
//   filled                   chunks cudaMalloc'd before the first failure (stops at 4096)
//   fill_error               the error of that failure
//   info_free_full           cudaMemGetInfo free memory when full
//   realloc_after_free       after freeing one chunk, cudaMalloc of a chunk again: ok | <error>
//   <kind>_over, <kind>_fit  after freeing everything: an allocation of info_total + 1 MiB, then one
//                            of one chunk, for kind = pitch, managed, async: ok | <error>
//   info_free_end            cudaMemGetInfo free memory when everything was freed again
#include <cstdio>
#include <cstdlib>
#include <vector>

static const char *res(cudaError_t e) { return e == cudaSuccess ? "ok" : cudaGetErrorName(e); }

int main(int argc, char **argv)
{
    size_t chunk = (size_t)(argc > 1 ? atoi(argv[1]) : 64) << 20;
    size_t fr = 0, total = 0;
    cudaError_t e = cudaMemGetInfo(&fr, &total);
    if (e != cudaSuccess) { printf("error=%s\n", cudaGetErrorName(e)); return 1; }
    printf("info_free=%zu\ninfo_total=%zu\n", fr, total);
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) printf("prop_total=%zu\n", prop.totalGlobalMem);

    std::vector<void *> bufs;
    for (int i = 0; i < 4096; i++) {
        void *p = 0;
        e = cudaMalloc(&p, chunk);
        if (e != cudaSuccess) break;
        bufs.push_back(p);
    }
    printf("filled=%zu\nfill_error=%s\n", bufs.size(), res(e));
    cudaGetLastError();
    cudaMemGetInfo(&fr, &total);
    printf("info_free_full=%zu\n", fr);
    if (!bufs.empty()) {
        cudaFree(bufs.back());
        bufs.pop_back();
        void *p = 0;
        e = cudaMalloc(&p, chunk);
        printf("realloc_after_free=%s\n", res(e));
        if (e == cudaSuccess) bufs.push_back(p);
    }
    for (void *p : bufs) cudaFree(p);
    cudaGetLastError();

    size_t over = total + (1 << 20);
    void *p = 0;
    size_t pitch = 0;
    e = cudaMallocPitch(&p, &pitch, 1 << 20, over >> 20);
    printf("pitch_over=%s\n", res(e));
    if (e == cudaSuccess) cudaFree(p);
    cudaGetLastError();
    e = cudaMallocPitch(&p, &pitch, 1 << 20, chunk >> 20);
    printf("pitch_fit=%s\n", res(e));
    if (e == cudaSuccess) cudaFree(p);

    e = cudaMallocManaged(&p, over);
    printf("managed_over=%s\n", res(e));
    if (e == cudaSuccess) cudaFree(p);
    cudaGetLastError();
    e = cudaMallocManaged(&p, chunk);
    printf("managed_fit=%s\n", res(e));
    if (e == cudaSuccess) cudaFree(p);

    cudaStream_t s;
    cudaStreamCreate(&s);
    e = cudaMallocAsync(&p, over, s);
    printf("async_over=%s\n", res(e));
    if (e == cudaSuccess) cudaFreeAsync(p, s);
    cudaGetLastError();
    e = cudaMallocAsync(&p, chunk, s);
    printf("async_fit=%s\n", res(e));
    if (e == cudaSuccess) cudaFreeAsync(p, s);
    cudaStreamSynchronize(s);
    cudaStreamDestroy(s);
    cudaGetLastError();

    cudaMemGetInfo(&fr, &total);
    printf("info_free_end=%zu\n", fr);
    return 0;
}
