// api_vmm.cu - virtual memory management, memory pools and managed-memory hints as a program uses them
// (cudart for the context and the kernels, the driver API - linked with -lcuda - for the rest), for
// tests/emu/test_emu_api_ext.py (emulated device directly) and tests/stub/test_api_ext.py (through the
// remote stub). Prints "key=value" lines; a value is a CUresult / cudaError_t number unless said.
//   argv[1] = "over" MiB: only try cuMemCreate of that many MiB and then of 64 MiB (limiter cap test):
//             over_create=<rc>, fit_create=<rc>.
// Functions the emulated device may lack are looked up with cuGetProcAddress (absent: "absent").
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__global__ void add_one(int *p, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] += 1;
}

static void *proc(const char *name, int version)
{
    void *fn = NULL;
    CUdriverProcAddressQueryResult q;
    if (cuGetProcAddress(name, &fn, version, CU_GET_PROC_ADDRESS_DEFAULT, &q) != CUDA_SUCCESS) return NULL;
    return fn;
}

static CUmemAllocationProp device_prop(void)
{
    CUmemAllocationProp p;
    memset(&p, 0, sizeof p);
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = 0;
    return p;
}

static int over_cap(size_t mib)
{
    CUmemAllocationProp p = device_prop();
    CUmemGenericAllocationHandle h;
    CUresult r = cuMemCreate(&h, mib << 20, &p, 0);
    printf("over_create=%d\n", (int)r);
    if (r == CUDA_SUCCESS) cuMemRelease(h);
    r = cuMemCreate(&h, (size_t)64 << 20, &p, 0);
    printf("fit_create=%d\n", (int)r);
    if (r == CUDA_SUCCESS) printf("fit_release=%d\n", (int)cuMemRelease(h));
    return 0;
}

static void vmm(void)
{
    CUmemAllocationProp p = device_prop();
    size_t gran = 0;
    printf("granularity_rc=%d\n", (int)cuMemGetAllocationGranularity(&gran, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    printf("granularity_ok=%d\n", gran > 0 && (gran & (gran - 1)) == 0);
    size_t size = 2 * gran;
    CUdeviceptr va = 0, va2 = 0;
    CUmemGenericAllocationHandle h = 0;
    printf("reserve=%d\n", (int)cuMemAddressReserve(&va, size, 0, 0, 0));
    printf("create=%d\n", (int)cuMemCreate(&h, size, &p, 0));
    // a device copy to reserved but unmapped VA is refused
    int probe = 7;
    printf("copy_unmapped=%d\n", (int)cuMemcpyHtoD(va, &probe, sizeof probe));
    printf("map_bogus_handle_rejected=%d\n", cuMemMap(va, size, 0, h ^ 0x5a5a0000ull, 0) != CUDA_SUCCESS);
    // ranges and handles that are not what the call needs: a CUresult, and the session goes on
    CUmemAccessDesc a0;
    memset(&a0, 0, sizeof a0);
    a0.location = p.location;
    a0.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    printf("set_access_unmapped=%d\n", (int)cuMemSetAccess(va, size, &a0, 1));
    CUmemGenericAllocationHandle hx = 0;
    printf("retain_unmapped=%d\n", (int)cuMemRetainAllocationHandle(&hx, (void *)va));
    printf("map_outside=%d\n", (int)cuMemMap((CUdeviceptr)gran * 3, size, 0, h, 0));
    CUmemAllocationProp qx;
    printf("props_bogus=%d\n", (int)cuMemGetAllocationPropertiesFromHandle(&qx, 12345));
    printf("unmap_unmapped=%d\n", (int)cuMemUnmap(va, size));
    printf("map=%d\n", (int)cuMemMap(va, size, 0, h, 0));
    CUmemAccessDesc a;
    memset(&a, 0, sizeof a);
    a.location = p.location;
    a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    printf("set_access=%d\n", (int)cuMemSetAccess(va, size, &a, 1));
    unsigned long long fl = 0;
    printf("get_access=%d\n", (int)cuMemGetAccess(&fl, &p.location, va));
    printf("access_flags=%llu\n", fl);
    // unified copies and a kernel on mapped memory
    int n = (int)(size / sizeof(int));
    int *host = (int *)malloc(size);
    for (int i = 0; i < n; i++) host[i] = i;
    printf("memcpy_in=%d\n", (int)cudaMemcpy((void *)va, host, size, cudaMemcpyDefault));
    add_one<<<(n + 255) / 256, 256>>>((int *)va, n);
    printf("kernel=%d\n", (int)cudaDeviceSynchronize());
    memset(host, 0, size);
    printf("memcpy_out=%d\n", (int)cudaMemcpy(host, (void *)va, size, cudaMemcpyDefault));
    int good = 1;
    for (int i = 0; i < n; i++) good &= host[i] == i + 1;
    printf("vmm_data=%s\n", good ? "ok" : "bad");
    unsigned int mt = 0;
    printf("ptr_attr=%d\n", (int)cuPointerGetAttribute(&mt, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, va + 64));
    printf("ptr_memtype=%u\n", mt);
    CUmemAllocationProp q;
    memset(&q, 0, sizeof q);
    printf("props=%d\n", (int)cuMemGetAllocationPropertiesFromHandle(&q, h));
    printf("props_type=%d\nprops_loc=%d\n", (int)q.type, (int)q.location.type);
    CUmemGenericAllocationHandle h2 = 0;
    printf("retain=%d\n", (int)cuMemRetainAllocationHandle(&h2, (void *)(va + gran)));
    printf("retain_same=%d\n", h2 == h);
    printf("retain_release=%d\n", (int)cuMemRelease(h2));
    // a second mapping of the same physical memory sees the same bytes
    printf("reserve2=%d\n", (int)cuMemAddressReserve(&va2, size, 0, 0, 0));
    printf("map2=%d\n", (int)cuMemMap(va2, size, 0, h, 0));
    cuMemSetAccess(va2, size, &a, 1);
    int v = -1;
    cuMemcpyDtoH(&v, va2 + 4 * 10, sizeof v);
    printf("alias_value=%d\n", v);
    printf("free_mapped=%d\n", (int)cuMemAddressFree(va, size));
    printf("unmap2=%d\n", (int)cuMemUnmap(va2, size));
    printf("unmap=%d\n", (int)cuMemUnmap(va, size));
    printf("copy_after_unmap=%d\n", (int)cuMemcpyHtoD(va, &probe, sizeof probe));
    printf("release=%d\n", (int)cuMemRelease(h));
    printf("release_again=%d\n", (int)cuMemRelease(h));
    printf("free=%d\n", (int)cuMemAddressFree(va, size));
    printf("free2=%d\n", (int)cuMemAddressFree(va2, size));
    printf("free_again=%d\n", (int)cuMemAddressFree(va, size));
    typedef CUresult (*export_fn)(void *, CUmemGenericAllocationHandle, CUmemAllocationHandleType, unsigned long long);
    export_fn ex = (export_fn)proc("cuMemExportToShareableHandle", 10020);
    CUmemGenericAllocationHandle h3 = 0;
    if (ex && cuMemCreate(&h3, gran, &p, 0) == CUDA_SUCCESS) {
        int fd = -1;
        printf("export_fd=%d\n", (int)ex(&fd, h3, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
        cuMemRelease(h3);
    } else {
        printf("export_fd=absent\n");
    }
    // generic compression (what cudaCompressibleMemory checks): reported, and a compressible allocation
    // keeps its compression type in its properties
    int comp = -1;
    printf("compression_attr=%d\n",
           (int)cuDeviceGetAttribute(&comp, CU_DEVICE_ATTRIBUTE_GENERIC_COMPRESSION_SUPPORTED, 0));
    printf("compression_supported=%d\n", comp);
    CUmemAllocationProp pc = device_prop();
    pc.allocFlags.compressionType = CU_MEM_ALLOCATION_COMP_GENERIC;
    CUmemGenericAllocationHandle hc = 0;
    printf("create_compressible=%d\n", (int)cuMemCreate(&hc, gran, &pc, 0));
    CUmemAllocationProp qc;
    memset(&qc, 0, sizeof qc);
    printf("compressible_props=%d\n", (int)cuMemGetAllocationPropertiesFromHandle(&qc, hc));
    printf("compression_type=%d\n", (int)qc.allocFlags.compressionType);
    printf("compressible_release=%d\n", (int)cuMemRelease(hc));
    free(host);
}

static void pools(void)
{
    CUmemPoolProps pp;
    memset(&pp, 0, sizeof pp);
    pp.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    pp.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    pp.location.id = 0;
    CUmemoryPool pool = 0;
    printf("pool_create=%d\n", (int)cuMemPoolCreate(&pool, &pp));
    cuuint64_t thr = 1 << 20, thr_back = 0;
    printf("pool_set_threshold=%d\n", (int)cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr));
    printf("pool_get_threshold=%d\n", (int)cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &thr_back));
    printf("pool_threshold=%llu\n", (unsigned long long)thr_back);
    int opp = 0, opp_back = -1;
    printf("pool_set_opportunistic=%d\n", (int)cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, &opp));
    cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, &opp_back);
    printf("pool_opportunistic=%d\n", opp_back);
    CUmemAccess_flags af = CU_MEM_ACCESS_FLAGS_PROT_NONE;
    CUmemLocation loc = pp.location;
    printf("pool_get_access=%d\n", (int)cuMemPoolGetAccess(&af, pool, &loc));
    printf("pool_access_flags=%d\n", (int)af);
    CUstream s;
    cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
    CUdeviceptr d = 0;
    int n = 4096;
    printf("pool_alloc=%d\n", (int)cuMemAllocFromPoolAsync(&d, n * sizeof(int), pool, s));
    cuMemsetD32Async(d, 41, n, s);
    add_one<<<n / 256, 256, 0, (cudaStream_t)s>>>((int *)d, n);
    int v = 0;
    cuStreamSynchronize(s);
    cuMemcpyDtoH(&v, d + 4 * 100, sizeof v);
    printf("pool_value=%d\n", v);
    cuuint64_t used = 0;
    cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used);
    printf("pool_used_ok=%d\n", used >= n * sizeof(int));
    printf("pool_free=%d\n", (int)cuMemFreeAsync(d, s));
    cuStreamSynchronize(s);
    CUmemoryPool def = 0, cur = 0;
    cuDeviceGetDefaultMemPool(&def, 0);
    printf("set_mempool=%d\n", (int)cuDeviceSetMemPool(0, pool));
    cuDeviceGetMemPool(&cur, 0);
    printf("mempool_is_ours=%d\n", cur == pool);
    cuDeviceSetMemPool(0, def);
    printf("pool_trim=%d\n", (int)cuMemPoolTrimTo(pool, 0));
    printf("pool_destroy=%d\n", (int)cuMemPoolDestroy(pool));
    printf("pool_destroy_again_rejected=%d\n", cuMemPoolDestroy(pool) != CUDA_SUCCESS);
    cuStreamDestroy(s);
}

static void managed_hints(void)
{
    int n = 1 << 16;
    int *m = NULL;
    printf("managed_alloc=%d\n", (int)cudaMallocManaged(&m, n * sizeof(int)));
    for (int i = 0; i < n; i++) m[i] = 2 * i;
    cudaMemLocation dev = {cudaMemLocationTypeDevice, 0}, cpu = {cudaMemLocationTypeHost, 0};
    printf("advise=%d\n", (int)cudaMemAdvise(m, n * sizeof(int), cudaMemAdviseSetReadMostly, dev));
    printf("prefetch_device=%d\n", (int)cudaMemPrefetchAsync(m, n * sizeof(int), dev, 0, 0));
    add_one<<<n / 256, 256>>>(m, n);
    printf("prefetch_host=%d\n", (int)cudaMemPrefetchAsync(m, n * sizeof(int), cpu, 0, 0));
    printf("managed_sync=%d\n", (int)cudaDeviceSynchronize());
    int good = 1;
    for (int i = 0; i < n; i++) good &= m[i] == 2 * i + 1;
    printf("managed_data=%s\n", good ? "ok" : "bad");
    int rm = -1;
    typedef CUresult (*range_fn)(void *, size_t, CUmem_range_attribute, CUdeviceptr, size_t);
    range_fn rg = (range_fn)proc("cuMemRangeGetAttribute", 8000);
    if (rg) {
        CUresult r = rg(&rm, sizeof rm, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, (CUdeviceptr)m, n * sizeof(int));
        printf("range_attr=%d\n", (int)r);
        if (r == CUDA_SUCCESS) printf("range_read_mostly=%d\n", rm);
        int last = 7;
        rg(&last, sizeof last, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, (CUdeviceptr)m, 4096);
        printf("range_last_prefetch=%d\n", last);
        cudaMemAdvise(m, n * sizeof(int), cudaMemAdviseSetPreferredLocation, dev);
        cudaMemAdvise(m, n * sizeof(int), cudaMemAdviseSetAccessedBy, dev);
        cudaMemAdvise(m, n * sizeof(int), cudaMemAdviseUnsetReadMostly, dev);
        int pref = 7, acc[2] = {7, 7};
        void *datas[3] = {&pref, acc, &rm};
        size_t sizes[3] = {sizeof pref, sizeof acc, sizeof rm};
        CUmem_range_attribute attrs[3] = {CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY,
                                          CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY};
        typedef CUresult (*ranges_fn)(void **, size_t *, CUmem_range_attribute *, size_t, CUdeviceptr, size_t);
        ranges_fn rgs = (ranges_fn)proc("cuMemRangeGetAttributes", 8000);
        printf("range_attrs=%d\n", rgs ? (int)rgs(datas, sizes, attrs, 3, (CUdeviceptr)m, n * sizeof(int)) : -1);
        printf("range_preferred=%d\nrange_accessed_by=%d,%d\nrange_read_mostly_after=%d\n", pref, acc[0], acc[1], rm);
    } else {
        printf("range_attr=absent\n");
    }
    int dummy;
    printf("prefetch_bogus=%d\n", (int)cudaMemPrefetchAsync(&dummy, sizeof dummy, dev, 0, 0));
    cudaGetLastError();
    cudaFree(m);
}

int main(int argc, char **argv)
{
    if (cudaFree(0) != cudaSuccess || cuInit(0) != CUDA_SUCCESS) { printf("FAIL init\n"); return 1; }
    if (argc > 2 && strcmp(argv[1], "over") == 0) return over_cap((size_t)atoi(argv[2]));
    vmm();
    pools();
    managed_hints();
    printf("done=1\n");
    return 0;
}
