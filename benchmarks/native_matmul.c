/* native_matmul.c - the emulator's baseline in benchmarks/run: C = A x B for N x N floats on one CPU thread,
 * compiled for this CPU (-O3 -march=native: the i-k-j loop vectorizes), the same product as the 256^3 tiled
 * matmul kernel that emu_c/tests/ptx_test --bench times on the PTX engine.
 * Usage: native_matmul N   prints "native_matmul n=N seconds=S gflops=G check=X" (best of 5 products). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 256;
    if (n <= 0 || n > 8192) {
        fprintf(stderr, "native_matmul: N must be 1..8192\n");
        return 2;
    }
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        fprintf(stderr, "native_matmul: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n * n; i++) {
        a[i] = (float)(i % 13) * 0.25f;
        b[i] = (float)(i % 7) - 3.0f;
    }
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = now();
        memset(c, 0, sizeof(float) * n * n);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++) {
                float aik = a[i * n + k];
                for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
            }
        t = now() - t;
        if (t < best) best = t;
    }
    printf("native_matmul n=%d seconds=%.6f gflops=%.3f check=%g\n", n, best, 2.0 * n * n * n / best / 1e9,
           (double)c[(n / 2) * n + n / 3]);
    free(a);
    free(b);
    free(c);
    return 0;
}
