// warp_aggregated.cu - warp-aggregated atomics with cooperative groups, as NVIDIA's
// warpAggregatedAtomicsCG sample: coalesced groups filter an array through one atomic per group, and
// labeled partitions (one group per bucket value, all at the same instruction with different member
// masks) count into buckets, their sizes taken with cg::reduce (redux.sync over each group's mask).
// I/O contract: warp_aggregated N BUCKETS in.bin out.bin
//   in.bin = src[N] int32 (bucket values in [0, BUCKETS) for the positives' test: src >= 0 counts)
//   out.bin = nres int32, filtered[nres..N) int32 (positives, any order, zero-padded to N),
//             counters[BUCKETS] int32, index[N] int32 (slot of each element inside its bucket).
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include "tf_test_io.h"

namespace cg = cooperative_groups;

__device__ int atomicAggInc(int *counter)
{
    cg::coalesced_group active = cg::coalesced_threads();
    int res = 0;
    if (active.thread_rank() == 0)
        res = atomicAdd(counter, (int)active.size());
    res = active.shfl(res, 0);
    return res + (int)active.thread_rank();
}

__device__ int atomicAggIncMulti(int bucket, int *counter)
{
    cg::coalesced_group active = cg::coalesced_threads();
    auto group = cg::labeled_partition(active, bucket);
    int size = cg::reduce(group, 1, cg::plus<int>()); // redux.sync over the group's own mask
    int res = 0;
    if (group.thread_rank() == 0)
        res = atomicAdd(&counter[bucket], size);
    res = group.shfl(res, 0);
    return res + (int)group.thread_rank();
}

__global__ void filter(int *dst, int *nres, const int *src, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        if (src[i] > 0)
            dst[atomicAggInc(nres)] = src[i];
}

__global__ void buckets(const int *src, int *index, int *counters, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        index[i] = atomicAggIncMulti(src[i], counters);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        printf("usage: warp_aggregated N BUCKETS in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]), nb = atoi(argv[2]);
    FILE *in = open_or_die(argv[3], "rb");
    std::vector<int> src = read_array<int>(in, n);
    fclose(in);
    int *dsrc, *ddst, *dn, *dcount, *dindex;
    CK(cudaMalloc(&dsrc, n * sizeof(int)));
    CK(cudaMalloc(&ddst, n * sizeof(int)));
    CK(cudaMalloc(&dn, sizeof(int)));
    CK(cudaMalloc(&dcount, nb * sizeof(int)));
    CK(cudaMalloc(&dindex, n * sizeof(int)));
    CK(cudaMemcpy(dsrc, src.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    CK(cudaMemset(ddst, 0, n * sizeof(int)));
    CK(cudaMemset(dn, 0, sizeof(int)));
    CK(cudaMemset(dcount, 0, nb * sizeof(int)));
    filter<<<4, 128>>>(ddst, dn, dsrc, n);
    CK(cudaGetLastError());
    buckets<<<4, 128>>>(dsrc, dindex, dcount, n);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<int> nres(1), dst(n), count(nb), index(n);
    CK(cudaMemcpy(nres.data(), dn, sizeof(int), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(dst.data(), ddst, n * sizeof(int), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(count.data(), dcount, nb * sizeof(int), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(index.data(), dindex, n * sizeof(int), cudaMemcpyDeviceToHost));
    FILE *f = open_or_die(argv[4], "wb");
    write_array(f, nres);
    write_array(f, dst);
    write_array(f, count);
    write_array(f, index);
    fclose(f);
    printf("nres=%d\n", nres[0]);
    return 0;
}
