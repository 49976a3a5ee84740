// dp_2d.cu - data-path test program (cudart): pitched allocations and 2D copies/memsets, whose
// descriptors hold client pointers the stub must pack. I/O contract: dp_2d W H (W = row bytes);
// host rows with padding -> pitched device (sync) -> second pitched buffer (2D D2D, async) ->
// memset2D of a sub-rectangle -> host with another pitch (async + sync); then a 3D box host ->
// cudaMalloc3D -> second 3D allocation (async) -> host. Checks every byte, prints
// "dp_2d ok <W> <H> pitch=<pitch>" and exits 0, or "FAIL ..." and exits 1.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(call)                                                                    \
    do {                                                                            \
        cudaError_t e_ = (call);                                                    \
        if (e_ != cudaSuccess) { printf("FAIL %s: %s\n", #call, cudaGetErrorString(e_)); return 1; } \
    } while (0)

int main(int argc, char **argv)
{
    size_t w = argc > 1 ? strtoul(argv[1], 0, 10) : 1000, h = argc > 2 ? strtoul(argv[2], 0, 10) : 300;
    size_t hp = w + 24, op = w + 40;
    unsigned char *src = (unsigned char *)malloc(hp * h), *out = (unsigned char *)malloc(op * h);
    for (size_t i = 0; i < hp * h; i++) src[i] = (unsigned char)(i * 31 + 7);
    memset(out, 0xEE, op * h);
    void *a, *b;
    size_t pa, pb;
    CK(cudaMallocPitch(&a, &pa, w, h));
    CK(cudaMallocPitch(&b, &pb, w + 100, h));
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    CK(cudaMemcpy2D(a, pa, src, hp, w, h, cudaMemcpyHostToDevice));
    CK(cudaMemcpy2DAsync(b, pb, a, pa, w, h, cudaMemcpyDeviceToDevice, s));
    CK(cudaMemset2DAsync((char *)b + pb * 2 + 3, pb, 0x42, 5, 4, s));
    CK(cudaMemcpy2DAsync(out, op, b, pb, w, h / 2, cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    CK(cudaMemcpy2D(out + op * (h / 2), op, (char *)b + pb * (h / 2), pb, w, h - h / 2, cudaMemcpyDeviceToHost));
    for (size_t r = 0; r < h; r++) {
        for (size_t c = 0; c < op; c++) {
            unsigned char want = c >= w ? 0xEE : (r >= 2 && r < 6 && c >= 3 && c < 8) ? 0x42 : src[r * hp + c];
            if (out[r * op + c] != want) {
                printf("FAIL at row %zu col %zu: %d != %d\n", r, c, out[r * op + c], want);
                return 1;
            }
        }
    }
    /* 3D: a 16 x 4 x 3 box of ints, sub-box offsets on the way back */
    cudaExtent ext = make_cudaExtent(16 * sizeof(int), 4, 3);
    cudaPitchedPtr b1, b2;
    CK(cudaMalloc3D(&b1, ext));
    CK(cudaMalloc3D(&b2, ext));
    int hbox[3][4][16], hback[3][4][16];
    for (int z = 0; z < 3; z++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 16; x++) hbox[z][y][x] = z * 1000 + y * 100 + x;
    cudaMemcpy3DParms up = {0};
    up.srcPtr = make_cudaPitchedPtr(hbox, 16 * sizeof(int), 16, 4);
    up.dstPtr = b1;
    up.extent = ext;
    up.kind = cudaMemcpyHostToDevice;
    CK(cudaMemcpy3D(&up));
    cudaMemcpy3DParms dd = {0};
    dd.srcPtr = b1;
    dd.dstPtr = b2;
    dd.extent = ext;
    dd.kind = cudaMemcpyDeviceToDevice;
    CK(cudaMemcpy3DAsync(&dd, s));
    CK(cudaStreamSynchronize(s));
    cudaMemcpy3DParms down = {0};
    down.srcPtr = b2;
    down.dstPtr = make_cudaPitchedPtr(hback, 16 * sizeof(int), 16, 4);
    down.extent = ext;
    down.kind = cudaMemcpyDeviceToHost;
    memset(hback, 0, sizeof hback);
    CK(cudaMemcpy3D(&down));
    if (memcmp(hbox, hback, sizeof hbox)) { printf("FAIL 3d box\n"); return 1; }
    printf("dp_2d ok %zu %zu pitch=%zu\n", w, h, pa);
    return 0;
}
