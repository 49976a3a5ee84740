// cub_thrust_oneliners.cu - the one-line library calls that choose their tuning from the device's
// compute capability and the kernel's PTX_VERSION: thrust::sort and cub::DeviceScan::InclusiveSum.
// Built for compute_90 by the tests, where a device that answers inconsistently (cc 8.0, PTX 80) made
// both fail with cudaErrorInvalidDeviceFunction.
// I/O contract: cub_thrust_oneliners N in.bin out.bin
//   in.bin = x[N] int32;  out.bin = sorted x[N] int32, then inclusive prefix sums of x[N] int64.
//   stdout: "cc=<major.minor>", "ptx_version=<cub's PTX version>".
#include <cub/device/device_scan.cuh>
#include <cub/util_device.cuh>
#include <thrust/device_vector.h>
#include <thrust/sort.h>
#include "tf_test_io.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: cub_thrust_oneliners N in.bin out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    FILE *in = open_or_die(argv[2], "rb");
    std::vector<int> x = read_array<int>(in, n);
    fclose(in);
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("cc=%d.%d\n", prop.major, prop.minor);
    int ptx = 0;
    CK(cub::PtxVersion(ptx));
    printf("ptx_version=%d\n", ptx);

    thrust::device_vector<int> sorted(x.begin(), x.end());
    thrust::sort(sorted.begin(), sorted.end());

    thrust::device_vector<long long> in64(x.begin(), x.end()), out64(n);
    size_t temp_bytes = 0;
    CK(cub::DeviceScan::InclusiveSum(nullptr, temp_bytes, thrust::raw_pointer_cast(in64.data()),
                                     thrust::raw_pointer_cast(out64.data()), n));
    thrust::device_vector<char> temp(temp_bytes);
    CK(cub::DeviceScan::InclusiveSum(thrust::raw_pointer_cast(temp.data()), temp_bytes,
                                     thrust::raw_pointer_cast(in64.data()), thrust::raw_pointer_cast(out64.data()), n));
    CK(cudaDeviceSynchronize());

    std::vector<int> s(n);
    std::vector<long long> scan(n);
    thrust::copy(sorted.begin(), sorted.end(), s.begin());
    thrust::copy(out64.begin(), out64.end(), scan.begin());
    FILE *f = open_or_die(argv[3], "wb");
    write_array(f, s);
    write_array(f, scan);
    fclose(f);
    printf("done=1\n");
    return 0;
}
