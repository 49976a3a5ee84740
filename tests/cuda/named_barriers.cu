// named_barriers.cu - a producer/consumer pipeline over the PTX ISA's named barriers, in inline PTX: half of
// each block's warps produce into a shared buffer, the other half consume it; each side waits (bar.sync) on
// the barrier the other side only arrives at (bar.arrive, 256 threads: barrier 1 "full", barrier 2 "empty"),
// and the consumers swap values in pairs of warps over barriers 3 and 4 of 64 threads (number and count in
// registers), which the producers never touch. A __syncthreads_count (bar.red.popc) closes the block.
// I/O contract: named_barriers BLOCKS ROUNDS in.bin out.bin   in.bin = int32[BLOCKS*ROUNDS*128].
//   out.bin = uint32[BLOCKS*129]: per block, each consumer's fold acc = acc*7 + swapped value over the rounds,
//   then the block's count of odd inputs of the last round. stdout: "rounds=<ROUNDS>".
#include "tf_test_io.h"

constexpr int kProducers = 128, kConsumers = 128, kThreads = kProducers + kConsumers;

template <int Id, int Count> __device__ __forceinline__ void bar_sync()
{
    asm volatile("bar.sync %0, %1;" ::"n"(Id), "n"(Count) : "memory");
}
template <int Id, int Count> __device__ __forceinline__ void bar_arrive()
{
    asm volatile("bar.arrive %0, %1;" ::"n"(Id), "n"(Count) : "memory");
}

__global__ void pipeline(const int *in, int rounds, unsigned *out)
{
    __shared__ int buf[kProducers];
    __shared__ int swap[kConsumers];
    const int t = threadIdx.x;
    const int *blk = in + (size_t)blockIdx.x * rounds * kProducers;
    if (t < kProducers) {
        for (int r = 0; r < rounds; r++) {
            bar_sync<2, kThreads>(); // the buffer is empty
            buf[t] = blk[r * kProducers + t] * 3 + r;
            bar_arrive<1, kThreads>(); // the buffer is full
        }
    } else {
        const int c = t - kProducers;
        const int pair = 3 + (c >> 6), pair_threads = 64; // warps 4-5 on barrier 3, 6-7 on barrier 4
        unsigned acc = 0;
        for (int r = 0; r < rounds; r++) {
            bar_arrive<2, kThreads>();
            bar_sync<1, kThreads>();
            swap[c] = buf[c ^ 5];
            asm volatile("bar.sync %0, %1;" ::"r"(pair), "r"(pair_threads) : "memory");
            const int v = swap[c ^ 33];
            asm volatile("bar.sync %0, %1;" ::"r"(pair), "r"(pair_threads) : "memory");
            acc = acc * 7u + (unsigned)v;
        }
        out[(size_t)blockIdx.x * (kConsumers + 1) + c] = acc;
    }
    const int odd = __syncthreads_count(t < kProducers && (blk[(rounds - 1) * kProducers + t] & 1));
    if (t == 0)
        out[(size_t)blockIdx.x * (kConsumers + 1) + kConsumers] = (unsigned)odd;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        printf("usage: named_barriers BLOCKS ROUNDS in.bin out.bin\n");
        return 2;
    }
    const int blocks = atoi(argv[1]), rounds = atoi(argv[2]);
    const size_t n = (size_t)blocks * rounds * kProducers, nout = (size_t)blocks * (kConsumers + 1);
    FILE *f = open_or_die(argv[3], "rb");
    std::vector<int> in = read_array<int>(f, n);
    fclose(f);
    int *din;
    unsigned *dout;
    CK(cudaMalloc(&din, n * sizeof(int)));
    CK(cudaMalloc(&dout, nout * sizeof(unsigned)));
    CK(cudaMemcpy(din, in.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    pipeline<<<blocks, kThreads>>>(din, rounds, dout);
    CK(cudaGetLastError());
    std::vector<unsigned> out(nout);
    CK(cudaMemcpy(out.data(), dout, nout * sizeof(unsigned), cudaMemcpyDeviceToHost));
    FILE *o = open_or_die(argv[4], "wb");
    write_array(o, out);
    fclose(o);
    printf("rounds=%d\n", rounds);
    return 0;
}
