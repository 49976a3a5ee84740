// managed_attach.cu - cudaStreamAttachMemAsync on managed memory, as UnifiedMemoryPerf and UnifiedMemoryStreams
// use it, with the checks the driver API documents (cuStreamAttachMemAsync).
// I/O contract: no arguments. stdout "key=<cudaGetErrorName>" for: attach_global (whole allocation, length 0,
// a created stream), attach_whole_length (length = the allocation's size), attach_single (a created stream),
// attach_host, attach_part (length = half the allocation), attach_device_memory (a cudaMalloc pointer),
// attach_single_null (SINGLE on the NULL stream), attach_bad_flags (flags 7); then "kernel_after=<sum>" of a
// kernel run on the stream the memory is attached to, read on the host after synchronizing that stream.
// Any unexpected CUDA failure prints "error=<cudaGetErrorName> at <call>" and exits 1.
#include <cstdio>

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    printf("error=%s at %s\n", cudaGetErrorName(e_), #call); return 1; } } while (0)

__global__ void iota(int *a, int n) { for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) a[i] = i; }

int main()
{
    const int n = 1000;
    const size_t bytes = n * sizeof(int);
    int *m, *d;
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    CK(cudaMallocManaged(&m, bytes));
    CK(cudaMalloc(&d, bytes));
    printf("attach_global=%s\n", cudaGetErrorName(cudaStreamAttachMemAsync(s, m, 0, cudaMemAttachGlobal)));
    printf("attach_whole_length=%s\n", cudaGetErrorName(cudaStreamAttachMemAsync(s, m, bytes, cudaMemAttachGlobal)));
    printf("attach_host=%s\n", cudaGetErrorName(cudaStreamAttachMemAsync(s, m, 0, cudaMemAttachHost)));
    printf("attach_part=%s\n", cudaGetErrorName(cudaStreamAttachMemAsync(s, m, bytes / 2, cudaMemAttachGlobal)));
    cudaGetLastError();
    printf("attach_device_memory=%s\n", cudaGetErrorName(cudaStreamAttachMemAsync(s, d, 0, cudaMemAttachGlobal)));
    cudaGetLastError();
    printf("attach_single_null=%s\n", cudaGetErrorName(cudaStreamAttachMemAsync(0, m, 0, cudaMemAttachSingle)));
    cudaGetLastError();
    printf("attach_bad_flags=%s\n", cudaGetErrorName(cudaStreamAttachMemAsync(s, m, 0, 7)));
    cudaGetLastError();
    printf("attach_single=%s\n", cudaGetErrorName(cudaStreamAttachMemAsync(s, m, 0, cudaMemAttachSingle)));
    CK(cudaStreamSynchronize(s));
    iota<<<4, 128, 0, s>>>(m, n);
    CK(cudaGetLastError());
    CK(cudaStreamSynchronize(s));
    long long sum = 0;
    for (int i = 0; i < n; i++) sum += m[i];
    printf("kernel_after=%lld\n", sum);
    CK(cudaFree(m));
    CK(cudaFree(d));
    CK(cudaStreamDestroy(s));
    return 0;
}
