// ptds_default_stream.cu - built with `nvcc --default-stream per-thread`: stream 0 is each host thread's own
// per-thread default stream (cudart resolves the driver's _ptsz/_ptds entry points), so thread B's kernel,
// synchronous copy and stream-0 synchronize do not wait for thread A's kernel, which spins until the host
// releases it after B is done.
// I/O contract: ptds_default_stream, stdout: "b_value=7", "a_waiting=1", "a_value=1" (or "timeout=b", exit 3).
#include "tf_test_io.h"

#include <chrono>
#include <thread>
#include <unistd.h>

__global__ void spin_until(volatile unsigned *flag)
{
    while (flag[0] < 1) {
    }
}

__global__ void store(unsigned *p, unsigned v) { p[0] = v; }

int main()
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    unsigned *latch, *a_val, *dev;
    CK(cudaMallocHost(&latch, sizeof(unsigned)));
    CK(cudaMallocHost(&a_val, sizeof(unsigned)));
    CK(cudaMalloc(&dev, sizeof(unsigned)));
    *latch = 0;
    *a_val = 0;
    std::thread a([&] {
        spin_until<<<1, 1>>>(latch);
        store<<<1, 1>>>(a_val, 1);
        CK(cudaStreamSynchronize(0));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    unsigned b_val = 0;
    bool b_done = false;
    std::thread b([&] {
        store<<<1, 1>>>(dev, 7);
        CK(cudaMemcpy(&b_val, dev, sizeof(unsigned), cudaMemcpyDeviceToHost));
        CK(cudaStreamSynchronize(0));
        b_done = true;
    });
    for (int i = 0; i < 10000 && !b_done; i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!b_done) {
        printf("timeout=b\n");
        _exit(3);
    }
    b.join();
    printf("b_value=%u\n", b_val);
    printf("a_waiting=%d\n", *a_val == 0 ? 1 : 0);
    *latch = 1;
    a.join();
    printf("a_value=%u\n", *a_val);
    return 0;
}
