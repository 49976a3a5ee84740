// virtual_newdelete.cu - C++ virtual functions on the device, objects made with device new and freed
// with delete (NVIDIA's newdelete sample's pattern): vtables are .global arrays of function addresses,
// virtual calls are indirect calls.
// I/O contract: virtual_newdelete N out.bin   out.bin = value[N] float32 where thread i builds shape
//   i % 3 (0 square, 1 triangle, 2 circle) of size (i % 11) + 1 and writes area + 100 * sides.
#include "tf_test_io.h"
#include "tf_test_shapes.h"

__global__ void shapes(float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float x = (float)(i % 11) + 1.0f;
    Shape *s = i % 3 == 0 ? (Shape *)new Square(x) : i % 3 == 1 ? (Shape *)new Triangle(x) : (Shape *)new Circle(x);
    out[i] = s->area() + 100.0f * (float)s->sides();
    delete s;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        printf("usage: virtual_newdelete N out.bin\n");
        return 2;
    }
    int n = atoi(argv[1]);
    float *d;
    CK(cudaMalloc(&d, n * sizeof(float)));
    shapes<<<(n + 127) / 128, 128>>>(d, n);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<float> h(n);
    CK(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    FILE *f = open_or_die(argv[2], "wb");
    write_array(f, h);
    fclose(f);
    printf("done=1\n");
    return 0;
}
