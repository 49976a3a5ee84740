// tf_test_io.h - tiny helpers shared by the tests/cuda programs: error checking that prints
// "error=<cudaGetErrorName | cuGetErrorName> at <call>" and exits 1 (CK: runtime calls, CU: driver calls),
// and raw little-endian file I/O for the
// input/output arrays the pytest side writes and checks with numpy.
#pragma once
#include <cuda.h>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            printf("error=%s at %s\n", cudaGetErrorName(e_), #call);                               \
            fflush(stdout);                                                                        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CU(call)                                                                                   \
    do {                                                                                           \
        CUresult r_ = (call);                                                                      \
        if (r_ != CUDA_SUCCESS) {                                                                  \
            const char *n_ = "?";                                                                  \
            cuGetErrorName(r_, &n_);                                                               \
            printf("error=%s at %s\n", n_, #call);                                                 \
            fflush(stdout);                                                                        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

// Every element of the device array p[0..n) if they are all the same, else -1 (read back with cudaMemcpy).
static inline int device_uniform(const int *p, int n)
{
    std::vector<int> h(n);
    CK(cudaMemcpy(h.data(), p, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 1; i < n; i++)
        if (h[i] != h[0])
            return -1;
    return h[0];
}

// Reads exactly `count` elements of T from f (exits with a message on a short file).
template <typename T> static std::vector<T> read_array(FILE *f, size_t count)
{
    std::vector<T> v(count);
    if (count && fread(v.data(), sizeof(T), count, f) != count) {
        printf("error=short_input\n");
        exit(2);
    }
    return v;
}

static FILE *open_or_die(const char *path, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (!f) {
        printf("error=cannot_open %s\n", path);
        exit(2);
    }
    return f;
}

template <typename T> static void write_array(FILE *f, const std::vector<T> &v)
{
    if (!v.empty() && fwrite(v.data(), sizeof(T), v.size(), f) != v.size()) {
        printf("error=short_write\n");
        exit(2);
    }
}
