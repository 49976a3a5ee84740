// vmm_ipc.cu - virtual-memory IPC with POSIX file descriptors, as NVIDIA's memMapIPCDrv uses it: the parent
// cuMemCreate's an allocation that may be exported as a POSIX fd, maps it, fills it with a kernel, exports
// the fd (cuMemExportToShareableHandle) and sends it to a copy of itself (fork + exec, its own CUDA state)
// over a Unix socket with SCM_RIGHTS; the child imports it (cuMemImportFromShareableHandle), maps it at its
// own reservation, checks the parent's data and adds 1 with a kernel; the parent then reads the child's
// writes. Linked with -lcuda (driver API for VMM, cudart for the kernels).
// I/O contract: no arguments (parent). stdout lines "key=value" (values are CUresult numbers unless said):
//   parent: posix_supported=<device attribute HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED>,
//           export_unrequested=<export of a handle created without the POSIX type>, export=<rc>,
//           fd_valid=<1 if the exported value is an open descriptor of this process>,
//           import_bogus=<import of /dev/null's descriptor>, child_status=<exit status>,
//           parent_sees_child=<1 if every element is what the child's kernel wrote>
//   child:  child_import=<rc>, child_map=<rc>, child_saw_parent=<1 if the data is the parent's>,
//           child_kernel=<cudaError_t of the add kernel + synchronize>, child_release=<rc of cuMemRelease>
// Environment: TF_TEST_CHILD_LEASE, if set, becomes the child's TF_LEASE (tf_test_child.h).
// Any unexpected CUDA failure prints "error=<code> at <call>" and exits 1.
#include <cuda.h>
#include <cuda_runtime.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_test_child.h"

#define CK(call) do { int e_ = (int)(call); if (e_ != 0) { \
    printf("error=%d at %s\n", e_, #call); fflush(stdout); return 1; } } while (0)

static const int N = 1 << 16;   // ints: 256 KiB, a multiple of any granularity we meet

__global__ void fill(int *v, int n) { for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] = 3 * i; }
__global__ void add(int *v, int n) { for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] += 1; }

static CUmemAllocationProp prop(int posix)
{
    CUmemAllocationProp p;
    memset(&p, 0, sizeof p);
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = 0;
    if (posix) p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    return p;
}

static size_t rounded(size_t n)
{
    CUmemAllocationProp p = prop(1);
    size_t g = 0;
    if (cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS || g == 0) return n;
    return (n + g - 1) / g * g;
}

// Reserves VA, maps handle h there with read/write access for device 0.
static CUresult map_rw(CUmemGenericAllocationHandle h, size_t size, CUdeviceptr *va)
{
    CUresult r = cuMemAddressReserve(va, size, 0, 0, 0);
    if (r == CUDA_SUCCESS) r = cuMemMap(*va, size, 0, h, 0);
    if (r != CUDA_SUCCESS) return r;
    CUmemAccessDesc a;
    memset(&a, 0, sizeof a);
    a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    a.location.id = 0;
    a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return cuMemSetAccess(*va, size, &a, 1);
}

static int child(int sock)
{
    int fd = tf_recv_fd(sock);
    if (fd < 0) { printf("error=recv_fd\n"); return 1; }
    CK(cudaFree(0));
    size_t size = rounded(N * sizeof(int));
    CUmemGenericAllocationHandle h = 0;
    CUresult r = cuMemImportFromShareableHandle(&h, (void *)(uintptr_t)fd, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    printf("child_import=%d\n", (int)r);
    close(fd);   // as the sample: the import holds its own reference
    if (r != CUDA_SUCCESS) return 0;
    CUdeviceptr va = 0;
    r = map_rw(h, size, &va);
    printf("child_map=%d\n", (int)r);
    if (r != CUDA_SUCCESS) return 0;
    int *host = (int *)malloc(size);
    CK(cudaMemcpy(host, (void *)va, N * sizeof(int), cudaMemcpyDeviceToHost));
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= host[i] == 3 * i;
    printf("child_saw_parent=%d\n", ok);
    add<<<64, 256>>>((int *)va, N);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    printf("child_kernel=%d\n", (int)e);
    CK(cuMemUnmap(va, size));
    CK(cuMemAddressFree(va, size));
    printf("child_release=%d\n", (int)cuMemRelease(h));
    free(host);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0) return child(atoi(argv[2]));
    CK(cudaFree(0));
    int attr = -1;
    CK(cuDeviceGetAttribute(&attr, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, 0));
    printf("posix_supported=%d\n", attr);
    size_t size = rounded(N * sizeof(int));

    CUmemAllocationProp plain = prop(0), posix = prop(1);
    CUmemGenericAllocationHandle hp = 0, h = 0;
    CK(cuMemCreate(&hp, size, &plain, 0));
    int fd = -1;
    printf("export_unrequested=%d\n",
           (int)cuMemExportToShareableHandle(&fd, hp, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0));
    CK(cuMemRelease(hp));

    CK(cuMemCreate(&h, size, &posix, 0));
    CUdeviceptr va = 0;
    CK(map_rw(h, size, &va));
    fill<<<64, 256>>>((int *)va, N);
    CK(cudaDeviceSynchronize());
    fd = -1;
    CUresult r = cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
    printf("export=%d\n", (int)r);
    printf("fd_valid=%d\n", fd >= 0 && fcntl(fd, F_GETFD) >= 0);

    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CUmemGenericAllocationHandle hb = 0;
    printf("import_bogus=%d\n", (int)cuMemImportFromShareableHandle(
        &hb, (void *)(uintptr_t)devnull, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR));
    close(devnull);
    if (r != CUDA_SUCCESS) return 0;

    const char *child_args[] = {"child", NULL};   // + the socket: argv[2]
    int st = tf_run_copy(argv[0], fd, child_args);
    close(fd);
    if (st < 0) return 1;
    printf("child_status=%d\n", st);
    int *host = (int *)malloc(size);
    CK(cudaMemcpy(host, (void *)va, N * sizeof(int), cudaMemcpyDeviceToHost));
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= host[i] == 3 * i + 1;
    printf("parent_sees_child=%d\n", ok);
    CK(cuMemUnmap(va, size));
    CK(cuMemAddressFree(va, size));
    CK(cuMemRelease(h));
    free(host);
    return 0;
}
