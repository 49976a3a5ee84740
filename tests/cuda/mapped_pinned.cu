// mapped_pinned.cu - kernels reading and writing page-locked host memory through a device pointer, as
// UnifiedMemoryPerf and the zero-copy samples do: cudaMallocHost memory addressed by its host pointer
// (unified addressing), cudaHostAlloc(cudaHostAllocMapped) + cudaHostGetDevicePointer, and
// cudaHostRegister(cudaHostRegisterMapped) of a malloc'd buffer (not page-aligned) and of whole pages.
// I/O contract: no arguments. stdout lines "key=value" (cudaError_t numbers unless said):
//   can_map=<cudaDevAttrCanMapHostMemory>; when 0: devptr_unmapped=<cudaHostGetDevicePointer of a
//   cudaMallocHost block>, bogus_flags=<cudaHostAlloc with flags 0x80> and nothing else.
//   Otherwise: pinned_uva_read=<1 if a kernel summed the host-written cudaMallocHost block right>,
//   pinned_attr_type=<cudaPointerAttributes.type>, pinned_attr_devptr_same=<1 if devicePointer == the
//   host pointer>, mapped_devptr=<rc>, mapped_same=<1 if the device pointer is the host pointer>,
//   mapped_write=<1 if the host sees what a kernel wrote>, mapped_flags=<cudaHostGetFlags value>,
//   reg_unaligned=<rc of cudaHostRegister(malloc(3000)+8)>, reg_unaligned_devptr=<rc>,
//   reg_unaligned_write=<1 if the host sees the kernel's writes>, reg_pages_write=<1 likewise for
//   64 KiB of whole pages; reg_pages_devptr, reg_pages_kernel: rc>, reg_again=<rc of registering the same range twice>,
//   unreg=<rc of cudaHostUnregister>, unreg_keeps=<1 if the bytes stay and stay writable after it>,
//   unreg_again=<rc of a second unregister>, bogus_flags=<cudaHostAlloc with flags 0x80>,
//   devptr_not_pinned=<cudaHostGetDevicePointer of malloc memory>, free_host=<rc>.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

__global__ void sum(const int *v, int n, long long *out)
{
    long long s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *out = s;
}
__global__ void plus(int *v, int n, int k) { for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] += k; }

static int run_plus(int *dev, int n, int k)
{
    plus<<<8, 128>>>(dev, n, k);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    return (int)e;
}

int main()
{
    cudaFree(0);
    int can_map = -1;
    cudaDeviceGetAttribute(&can_map, cudaDevAttrCanMapHostMemory, 0);
    printf("can_map=%d\n", can_map);
    void *junk = NULL;
    if (!can_map) {
        int *a = NULL;
        cudaMallocHost(&a, 4096);
        void *d = NULL;
        printf("devptr_unmapped=%d\n", (int)cudaHostGetDevicePointer(&d, a, 0));
        printf("bogus_flags=%d\n", (int)cudaHostAlloc(&junk, 64, 0x80));
        return 0;
    }
    const int N = 1000;
    int *a = NULL;
    if (cudaMallocHost(&a, N * sizeof(int)) != cudaSuccess) { printf("error=cudaMallocHost\n"); return 1; }
    long long want = 0;
    for (int i = 0; i < N; i++) { a[i] = i * 7 - 5; want += a[i]; }
    long long *dsum = NULL, got = 0;
    cudaMalloc(&dsum, sizeof *dsum);
    sum<<<1, 1>>>(a, N, dsum);   // the host pointer itself: unified addressing
    cudaMemcpy(&got, dsum, sizeof got, cudaMemcpyDeviceToHost);
    printf("pinned_uva_read=%d\n", got == want);
    cudaPointerAttributes at;
    memset(&at, 0, sizeof at);
    cudaPointerGetAttributes(&at, a);
    printf("pinned_attr_type=%d\n", (int)at.type);
    printf("pinned_attr_devptr_same=%d\n", at.devicePointer == (void *)a);

    int *m = NULL, *dm = NULL;
    cudaHostAlloc(&m, N * sizeof(int), cudaHostAllocMapped);
    for (int i = 0; i < N; i++) m[i] = i;
    printf("mapped_devptr=%d\n", (int)cudaHostGetDevicePointer((void **)&dm, m, 0));
    printf("mapped_same=%d\n", dm == m);
    int e = run_plus(dm, N, 100);
    int ok = e == 0;
    for (int i = 0; i < N; i++) ok &= m[i] == i + 100;
    printf("mapped_write=%d\n", ok);
    unsigned fl = 0;
    cudaHostGetFlags(&fl, m);
    printf("mapped_flags=%u\n", fl);

    // a malloc'd buffer that starts and ends inside pages (its neighbours keep their bytes)
    char *raw = (char *)malloc(3000 + 64);
    int *u = (int *)(raw + 8);
    const int NU = 3000 / sizeof(int);
    memset(raw, 0x5a, 8);
    for (int i = 0; i < NU; i++) u[i] = 2 * i;
    printf("reg_unaligned=%d\n", (int)cudaHostRegister(u, NU * sizeof(int), cudaHostRegisterMapped));
    int *du = NULL;
    printf("reg_unaligned_devptr=%d\n", (int)cudaHostGetDevicePointer((void **)&du, u, 0));
    ok = run_plus(du, NU, 1) == 0 && raw[0] == 0x5a && raw[7] == 0x5a;
    for (int i = 0; i < NU; i++) ok &= u[i] == 2 * i + 1;
    printf("reg_unaligned_write=%d\n", ok);
    cudaHostUnregister(u);

    const int NP = 65536 / sizeof(int);
    int *pg = (int *)aligned_alloc(4096, NP * sizeof(int));
    for (int i = 0; i < NP; i++) pg[i] = i;
    cudaHostRegister(pg, NP * sizeof(int), cudaHostRegisterDefault);
    printf("reg_again=%d\n", (int)cudaHostRegister(pg, NP * sizeof(int), cudaHostRegisterDefault));
    cudaGetLastError();   // the runtime keeps that error for cudaGetLastError: not the kernel's
    int *dp = NULL;
    printf("reg_pages_devptr=%d\n", (int)cudaHostGetDevicePointer((void **)&dp, pg, 0));
    e = run_plus(dp, NP, 3);
    printf("reg_pages_kernel=%d\n", e);
    ok = e == 0;
    for (int i = 0; i < NP; i++) ok &= pg[i] == i + 3;
    printf("reg_pages_write=%d\n", ok);
    printf("unreg=%d\n", (int)cudaHostUnregister(pg));
    ok = 1;
    for (int i = 0; i < NP; i++) { ok &= pg[i] == i + 3; pg[i] = -i; }
    for (int i = 0; i < NP; i++) ok &= pg[i] == -i;
    printf("unreg_keeps=%d\n", ok);
    printf("unreg_again=%d\n", (int)cudaHostUnregister(pg));
    free(pg);
    free(raw);

    printf("bogus_flags=%d\n", (int)cudaHostAlloc(&junk, 64, 0x80));
    int plain[4];
    void *dn = NULL;
    printf("devptr_not_pinned=%d\n", (int)cudaHostGetDevicePointer(&dn, plain, 0));
    printf("free_host=%d\n", (int)(cudaFreeHost(a) | cudaFreeHost(m)));
    cudaFree(dsum);
    return 0;
}
