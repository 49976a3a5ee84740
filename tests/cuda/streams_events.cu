// streams_events.cu - two non-blocking streams, pinned host memory, async copies, one kernel per
// stream on its half of the data (out = 3 * x + 1), events around the work of stream 0, a host
// function on stream 1, and cross-stream wait on an event.
// I/O contract: streams_events N in.bin out.bin
//   in.bin = x[N] float32;  out.bin = out[N] float32.
//   stdout: "n=<N>", "elapsed_ms=<float>" (cudaEventElapsedTime over stream 0's work),
//           "host_fn_ran=<0|1>", "query=<cudaGetErrorName of cudaStreamQuery after sync>".
#include "tf_test_io.h"

#include <cstring>

__global__ void affine(const float *x, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = 3.0f * x[i] + 1.0f;
}

static void CUDART_CB mark(void *flag) { *(int *)flag = 1; }

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: streams_events N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]), half = n / 2;
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<float> x = read_array<float>(in, n);
    fclose(in);
    float *hx, *hout, *dx, *dout;
    CK(cudaMallocHost(&hx, n * sizeof(float)));
    CK(cudaMallocHost(&hout, n * sizeof(float)));
    memcpy(hx, x.data(), n * sizeof(float));
    CK(cudaMalloc(&dx, n * sizeof(float)));
    CK(cudaMalloc(&dout, n * sizeof(float)));
    cudaStream_t s[2];
    CK(cudaStreamCreateWithFlags(&s[0], cudaStreamNonBlocking));
    CK(cudaStreamCreateWithFlags(&s[1], cudaStreamNonBlocking));
    cudaEvent_t start, stop, done0;
    CK(cudaEventCreate(&start));
    CK(cudaEventCreate(&stop));
    CK(cudaEventCreateWithFlags(&done0, cudaEventDisableTiming));
    int off[2] = {0, half}, len[2] = {half, n - half};
    CK(cudaEventRecord(start, s[0]));
    for (int k = 0; k < 2; k++) {
        CK(cudaMemcpyAsync(dx + off[k], hx + off[k], len[k] * sizeof(float), cudaMemcpyHostToDevice, s[k]));
        affine<<<(len[k] + 127) / 128, 128, 0, s[k]>>>(dx + off[k], dout + off[k], len[k]);
        CK(cudaGetLastError());
        CK(cudaMemcpyAsync(hout + off[k], dout + off[k], len[k] * sizeof(float), cudaMemcpyDeviceToHost, s[k]));
    }
    CK(cudaEventRecord(stop, s[0]));
    CK(cudaEventRecord(done0, s[0]));
    CK(cudaStreamWaitEvent(s[1], done0, 0));
    volatile int ran = 0;
    CK(cudaLaunchHostFunc(s[1], mark, (void *)&ran));
    CK(cudaStreamSynchronize(s[1]));
    CK(cudaEventSynchronize(stop));
    float ms = -1;
    CK(cudaEventElapsedTime(&ms, start, stop));
    cudaError_t q = cudaStreamQuery(s[0]);
    std::vector<float> out(hout, hout + n);
    FILE *f = open_or_die(argv[3], "wb");
    write_array(f, out);
    fclose(f);
    printf("n=%d\nelapsed_ms=%f\nhost_fn_ran=%d\nquery=%s\n", n, ms, ran, cudaGetErrorName(q));
    CK(cudaStreamDestroy(s[0]));
    CK(cudaStreamDestroy(s[1]));
    CK(cudaFreeHost(hx));
    CK(cudaFreeHost(hout));
    return 0;
}
