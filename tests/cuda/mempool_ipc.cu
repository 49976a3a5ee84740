// mempool_ipc.cu - stream-ordered memory pools shared between processes, as NVIDIA's streamOrderedAllocationIPC
// uses them: the parent creates a pool with POSIX-fd handles, allocates from it on a stream, fills the memory
// with a kernel, exports the pool (a descriptor, sent to a copy of itself - fork + exec, its own CUDA state - over
// a Unix socket with SCM_RIGHTS) and the allocation (64 bytes of export data, passed as an argument); the child
// imports both, checks the parent's data, adds 1 with a kernel and frees its import; the parent then reads the
// child's writes. Bad input prints the error the runtime returns.
// I/O contract: no arguments (parent). stdout lines "key=value" (values are cudaGetErrorName unless said):
//   parent: handle_types=<cudaDevAttrMemoryPoolSupportedHandleTypes>, export_plain=<export of a pool created
//           without handle types>, create_win32=<pool with Win32 handles>, export=<export of the IPC pool>,
//           fd_valid=<1 if the exported value is an open descriptor>, export_ptr_plain=<cudaMemPoolExportPointer
//           of cudaMalloc memory>, export_ptr_inside=<of an address inside a pool allocation>,
//           import_bogus=<pool import of /dev/null's descriptor>, child_status=<exit status>,
//           parent_sees_child=<1 if every element is what the child's kernel wrote>,
//           destroy_outstanding=<cudaMemPoolDestroy of a pool with an allocation not yet freed>,
//           outstanding_usable=<1 if that allocation still holds what is written to it>, outstanding_free=<its free>
//   child:  child_import=<pool import>, child_access=<cudaMemPoolGetAccess flags for device 0, a number>,
//           child_import_ptr=<pointer import>, child_same_ptr=<1 if importing the same data again gives the
//           same pointer>, child_wrong_pool=<import of another pool's pointer data>, child_alloc_imported=
//           <cudaMallocFromPoolAsync from the imported pool>, child_free_delta=<bytes cudaMemGetInfo's free fell
//           by at the import, a number>, child_saw_parent=<1 if the data is the parent's>, child_kernel=<add
//           kernel + synchronize>, child_free=<cudaFreeAsync of the import + synchronize>,
//           child_destroy=<cudaMemPoolDestroy of the imported pool>
// Environment: TF_TEST_CHILD_LEASE, if set, becomes the child's TF_LEASE (tf_test_child.h).
// Any unexpected CUDA failure prints "error=<name> at <call>" and exits 1.
#include <cuda_runtime.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf_test_child.h"

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("error=%s at %s\n", cudaGetErrorName(e_), #call); fflush(stdout); return 1; } } while (0)
#define NAME(call) cudaGetErrorName(call)

static const int N = 1 << 18;   // ints: 1 MiB

__global__ void fill(int *v, int n) { for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] = 3 * i; }
__global__ void add(int *v, int n) { for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] += 1; }

static cudaMemPoolProps props(cudaMemAllocationHandleType t)
{
    cudaMemPoolProps p;
    memset(&p, 0, sizeof p);
    p.allocType = cudaMemAllocationTypePinned;
    p.handleTypes = t;
    p.location.type = cudaMemLocationTypeDevice;
    p.location.id = 0;
    return p;
}

static int child(int sock, const char *hex_mine, const char *hex_other)
{
    int fd = tf_recv_fd(sock);
    if (fd < 0) { printf("error=recv_fd\n"); return 1; }
    cudaMemPoolPtrExportData mine, other;
    tf_unhex(hex_mine, &mine, sizeof mine);
    tf_unhex(hex_other, &other, sizeof other);
    CK(cudaSetDevice(0));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaMemPool_t pool;
    cudaError_t e = cudaMemPoolImportFromShareableHandle(&pool, (void *)(uintptr_t)fd,
                                                         cudaMemHandleTypePosixFileDescriptor, 0);
    printf("child_import=%s\n", NAME(e));
    close(fd);   // as the sample: the import holds its own reference
    if (e != cudaSuccess) return 0;
    cudaMemLocation loc;
    memset(&loc, 0, sizeof loc);
    loc.type = cudaMemLocationTypeDevice;
    loc.id = 0;
    cudaMemAccessFlags flags = cudaMemAccessFlagsProtNone;
    CK(cudaMemPoolGetAccess(&flags, pool, &loc));
    printf("child_access=%d\n", (int)flags);
    size_t free0 = 0, free1 = 0, total = 0;
    CK(cudaMemGetInfo(&free0, &total));
    int *p = NULL, *again = NULL, *wrong = NULL;
    e = cudaMemPoolImportPointer((void **)&p, pool, &mine);
    printf("child_import_ptr=%s\n", NAME(e));
    if (e != cudaSuccess) return 0;
    CK(cudaMemGetInfo(&free1, &total));
    printf("child_free_delta=%lld\n", (long long)free0 - (long long)free1);
    printf("child_same_ptr=%d\n", cudaMemPoolImportPointer((void **)&again, pool, &mine) == cudaSuccess && again == p);
    printf("child_wrong_pool=%s\n", NAME(cudaMemPoolImportPointer((void **)&wrong, pool, &other)));
    cudaGetLastError();
    void *fresh = NULL;
    printf("child_alloc_imported=%s\n", NAME(cudaMallocFromPoolAsync(&fresh, 4096, pool, s)));
    cudaGetLastError();
    int *host = (int *)malloc(N * sizeof(int));
    CK(cudaMemcpyAsync(host, p, N * sizeof(int), cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= host[i] == 3 * i;
    printf("child_saw_parent=%d\n", ok);
    add<<<64, 256, 0, s>>>(p, N);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
    printf("child_kernel=%s\n", NAME(e));
    e = cudaFreeAsync(p, s);   // freed here before the exporter frees it, as the driver requires
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
    printf("child_free=%s\n", NAME(e));
    printf("child_destroy=%s\n", NAME(cudaMemPoolDestroy(pool)));
    CK(cudaStreamDestroy(s));
    free(host);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "child") == 0) return child(atoi(argv[4]), argv[2], argv[3]);
    CK(cudaSetDevice(0));
    int types = -1;
    CK(cudaDeviceGetAttribute(&types, cudaDevAttrMemoryPoolSupportedHandleTypes, 0));
    printf("handle_types=%d\n", types);
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

    cudaMemPoolProps pp = props(cudaMemHandleTypeNone);
    cudaMemPool_t plain, win, pool, other;
    CK(cudaMemPoolCreate(&plain, &pp));
    int fd = -1;
    printf("export_plain=%s\n", NAME(cudaMemPoolExportToShareableHandle(&fd, plain, cudaMemHandleTypePosixFileDescriptor, 0)));
    CK(cudaMemPoolDestroy(plain));
    pp = props(cudaMemHandleTypeWin32);
    printf("create_win32=%s\n", NAME(cudaMemPoolCreate(&win, &pp)));
    cudaGetLastError();

    pp = props(cudaMemHandleTypePosixFileDescriptor);
    CK(cudaMemPoolCreate(&pool, &pp));
    CK(cudaMemPoolCreate(&other, &pp));
    int *p = NULL, *q = NULL;
    CK(cudaMallocFromPoolAsync((void **)&p, N * sizeof(int), pool, s));
    CK(cudaMallocFromPoolAsync((void **)&q, N * sizeof(int), other, s));
    fill<<<64, 256, 0, s>>>(p, N);
    CK(cudaStreamSynchronize(s));
    cudaError_t e = cudaMemPoolExportToShareableHandle(&fd, pool, cudaMemHandleTypePosixFileDescriptor, 0);
    printf("export=%s\n", NAME(e));
    printf("fd_valid=%d\n", fd >= 0 && fcntl(fd, F_GETFD) >= 0);
    cudaMemPoolPtrExportData mine, theirs, junk;
    CK(cudaMemPoolExportPointer(&mine, p));
    CK(cudaMemPoolExportPointer(&theirs, q));
    void *dm = NULL;
    CK(cudaMalloc(&dm, 4096));
    printf("export_ptr_plain=%s\n", NAME(cudaMemPoolExportPointer(&junk, dm)));
    printf("export_ptr_inside=%s\n", NAME(cudaMemPoolExportPointer(&junk, (char *)p + 4096)));
    cudaGetLastError();
    CK(cudaFree(dm));
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cudaMemPool_t bogus;
    printf("import_bogus=%s\n", NAME(cudaMemPoolImportFromShareableHandle(&bogus, (void *)(uintptr_t)devnull,
                                                                           cudaMemHandleTypePosixFileDescriptor, 0)));
    cudaGetLastError();
    close(devnull);
    if (e != cudaSuccess) return 0;

    char hm[2 * sizeof mine + 1], ht[2 * sizeof theirs + 1];
    tf_hex(&mine, sizeof mine, hm);
    tf_hex(&theirs, sizeof theirs, ht);
    const char *child_args[] = {"child", hm, ht, NULL};   // + the socket: argv[4]
    int st = tf_run_copy(argv[0], fd, child_args);
    close(fd);
    if (st < 0) return 1;
    printf("child_status=%d\n", st);
    int *host = (int *)malloc(N * sizeof(int));
    CK(cudaMemcpy(host, p, N * sizeof(int), cudaMemcpyDeviceToHost));
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= host[i] == 3 * i + 1;
    printf("parent_sees_child=%d\n", ok);
    CK(cudaFreeAsync(p, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaMemPoolDestroy(pool));

    // cuMemPoolDestroy with an allocation outstanding returns at once; the memory lives until it is freed
    printf("destroy_outstanding=%s\n", NAME(cudaMemPoolDestroy(other)));
    CK(cudaMemsetAsync(q, 0x5a, N * sizeof(int), s));
    CK(cudaMemcpyAsync(host, q, N * sizeof(int), cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    ok = 1;
    for (int i = 0; i < N; i++) ok &= host[i] == 0x5a5a5a5a;
    printf("outstanding_usable=%d\n", ok);
    e = cudaFreeAsync(q, s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
    printf("outstanding_free=%s\n", NAME(e));
    CK(cudaStreamDestroy(s));
    free(host);
    return 0;
}
