// thrust_sort.cu - a library-heavy program: Thrust (CUB radix sort, reduction, temporary allocations,
// occupancy queries, many kernels) on device vectors.
// I/O contract: thrust_sort N in.bin out.bin
//   in.bin = x[N] float32, k[N] int32;  out.bin = sorted x[N] float32, then k sorted by key x
//   (stable) int32[N].  stdout: "sum_k=<sum of k as int64>".
#include <thrust/device_vector.h>
#include <thrust/reduce.h>
#include <thrust/sort.h>
#include "tf_test_io.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: thrust_sort N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<float> x = read_array<float>(in, n);
    std::vector<int> k = read_array<int>(in, n);
    fclose(in);
    thrust::device_vector<float> dx(x.begin(), x.end());
    thrust::device_vector<int> dk(k.begin(), k.end());
    long long sum = thrust::reduce(dk.begin(), dk.end(), 0ll);
    thrust::stable_sort_by_key(dx.begin(), dx.end(), dk.begin());
    CK(cudaDeviceSynchronize());
    thrust::copy(dx.begin(), dx.end(), x.begin());
    thrust::copy(dk.begin(), dk.end(), k.begin());
    FILE *f = open_or_die(argv[3], "wb");
    write_array(f, x);
    write_array(f, k);
    fclose(f);
    printf("sum_k=%lld\n", sum);
    return 0;
}
