// lim_vram_steps.cu - allocates on command, for live-limit tests (tests/limiter): one line on stdin per
// step. "k" forks a child that allocates 64 MiB and exits ("fork=ok" once it is reaped), "a <MiB>" allocates (prints "alloc=<ok|error name>"), "f" frees the last allocation
// ("free=ok"), "r" resets the device (cudaDeviceReset: the driver frees everything; "reset=ok"), "i" prints "free_mem=<bytes> total_mem=<bytes>" (cudaMemGetInfo), "q" quits.
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

int main()
{
    std::vector<void *> bufs;
    char line[64];
    setvbuf(stdout, 0, _IOLBF, 0);
    if (cudaFree(0) != cudaSuccess) { printf("error=init\n"); return 1; }
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'a') {
            void *p = 0;
            cudaError_t e = cudaMalloc(&p, (size_t)atoi(line + 1) << 20);
            if (e == cudaSuccess) bufs.push_back(p);
            cudaGetLastError();
            printf("alloc=%s\n", e == cudaSuccess ? "ok" : cudaGetErrorName(e));
        } else if (line[0] == 'f' && !bufs.empty()) {
            cudaFree(bufs.back());
            bufs.pop_back();
            printf("free=ok\n");
        } else if (line[0] == 'k') {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                void *p = 0;
                cudaMalloc(&p, 64 << 20);
                _exit(0);
            }
            int status = 0;
            printf("fork=%s\n", pid > 0 && waitpid(pid, &status, 0) == pid ? "ok" : "failed");
        } else if (line[0] == 'r') {
            cudaError_t e = cudaDeviceReset();
            bufs.clear();
            printf("reset=%s\n", e == cudaSuccess ? "ok" : cudaGetErrorName(e));
        } else if (line[0] == 'i') {
            size_t f = 0, t = 0;
            cudaMemGetInfo(&f, &t);
            printf("free_mem=%zu total_mem=%zu\n", f, t);
        } else if (line[0] == 'q') {
            break;
        }
    }
    for (void *p : bufs) cudaFree(p);
    return 0;
}
