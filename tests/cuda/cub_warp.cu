// cub_warp.cu - CUB's warp and block collectives and cooperative groups' tile reductions (what CuPy's and
// Thrust's reductions and scans are made of: shfl/vote/match/redux .sync) over random integers: full and
// partial warps (valid_items, an 80-thread block whose last warp has 16 lanes), labeled groups.
// I/O contract: cub_warp N in.bin out.bin
//   in.bin = x[N] int32, N a multiple of 96;
//   out.bin = int32 arrays, in order:
//     warp_sum[N/32]   cub::WarpReduce<int>::Sum of each warp's 32 elements (lane 0's result)
//     warp_part[N/32]  cub::WarpReduce<int>::Sum over the warp's first 1 + w%32 elements (w: warp index)
//     scan[N]          cub::WarpScan<int>::InclusiveSum within each warp
//     block_sum[N/96]  cub::BlockReduce<int, 96>::Sum
//     block80[(N+79)/80]  cub::BlockReduce<int, 80>::Sum (elements past N count 0)
//     tile_sum[N]      cg::reduce(tiled_partition<8>, x, plus), every lane
//     tile_max[N]      cg::reduce(tiled_partition<8>, x, greater), every lane
//     match[N]         __match_any_sync(full mask, x & 7)
//     ballot[N]        the warp's __ballot_sync(full mask, x > 0) as each odd lane sees it inside a branch
//                      of the odd lanes (member mask 0xaaaaaaaa); even lanes: __popc(__activemask())
//   stdout: "n=<N>".
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cub/block/block_reduce.cuh>
#include <cub/warp/warp_reduce.cuh>
#include <cub/warp/warp_scan.cuh>
#include "tf_test_io.h"

namespace cg = cooperative_groups;

__global__ void warp_collectives(const int *x, int *warp_sum, int *warp_part, int *scan, int *block_sum, int *tile_sum,
                                 int *tile_max, int *match, int *ballot)
{
    typedef cub::WarpReduce<int> WarpReduce;
    typedef cub::WarpScan<int> WarpScan;
    typedef cub::BlockReduce<int, 96> BlockReduce;
    __shared__ typename WarpReduce::TempStorage wr[3];
    __shared__ typename WarpScan::TempStorage ws[3];
    __shared__ typename BlockReduce::TempStorage br;
    const int i = blockIdx.x * 96 + threadIdx.x, w = i / 32, lw = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int v = x[i];
    int s = WarpReduce(wr[lw]).Sum(v);
    if (lane == 0) warp_sum[w] = s;
    __syncwarp();
    s = WarpReduce(wr[lw]).Sum(v, 1 + w % 32);
    if (lane == 0) warp_part[w] = s;
    int inc;
    WarpScan(ws[lw]).InclusiveSum(v, inc);
    scan[i] = inc;
    int b = BlockReduce(br).Sum(v);
    if (threadIdx.x == 0) block_sum[blockIdx.x] = b;
    cg::thread_block_tile<8> tile = cg::tiled_partition<8>(cg::this_thread_block());
    tile_sum[i] = cg::reduce(tile, v, cg::plus<int>());
    tile_max[i] = cg::reduce(tile, v, cg::greater<int>());
    match[i] = (int)__match_any_sync(0xffffffffu, v & 7);
    if (lane & 1)
        ballot[i] = (int)__ballot_sync(0xaaaaaaaau, v > 0);
    else
        ballot[i] = __popc(__activemask());
}

__global__ void block80(const int *x, int n, int *out)
{
    typedef cub::BlockReduce<int, 80> BlockReduce;
    __shared__ typename BlockReduce::TempStorage br;
    const int i = blockIdx.x * 80 + threadIdx.x;
    int b = BlockReduce(br).Sum(i < n ? x[i] : 0);
    if (threadIdx.x == 0) out[blockIdx.x] = b;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: cub_warp N in.bin out.bin\n");
        return 2;
    }
    const int n = atoi(argv[1]);
    if (n <= 0 || n % 96) {
        printf("error=N must be a positive multiple of 96\n");
        return 2;
    }
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<int> x = read_array<int>(in, n);
    fclose(in);
    const int nw = n / 32, nb = n / 96, nb80 = (n + 79) / 80;
    const size_t total = (size_t)2 * nw + nb + nb80 + (size_t)5 * n;
    int *dx, *d;
    CK(cudaMalloc(&dx, n * sizeof(int)));
    CK(cudaMalloc(&d, total * sizeof(int)));
    CK(cudaMemcpy(dx, x.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    CK(cudaMemset(d, 0, total * sizeof(int)));
    int *warp_sum = d, *warp_part = warp_sum + nw, *scan = warp_part + nw, *block_sum = scan + n, *b80 = block_sum + nb;
    int *tile_sum = b80 + nb80, *tile_max = tile_sum + n, *match = tile_max + n, *ballot = match + n;
    warp_collectives<<<nb, 96>>>(dx, warp_sum, warp_part, scan, block_sum, tile_sum, tile_max, match, ballot);
    CK(cudaGetLastError());
    block80<<<nb80, 80>>>(dx, n, b80);
    CK(cudaGetLastError());
    std::vector<int> out(total);
    CK(cudaMemcpy(out.data(), d, total * sizeof(int), cudaMemcpyDeviceToHost));
    FILE *f = open_or_die(argv[3], "wb");
    write_array(f, out);
    fclose(f);
    printf("n=%d\n", n);
    return 0;
}
