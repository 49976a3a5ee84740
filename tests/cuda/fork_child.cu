// fork_child.cu - a process that initialised CUDA forks; the child touches the inherited context.
// As with NVIDIA's driver the child cannot use CUDA (cudaErrorInitializationError); the parent can.
// stdout: "child=<cudaGetErrorName of the child's cudaMemset>", "child_malloc=<...>", "parent=<...>".
#include <sys/wait.h>
#include <unistd.h>
#include "tf_test_io.h"

int main()
{
    int *d;
    CK(cudaMalloc(&d, 64));
    CK(cudaMemset(d, 0, 64));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        cudaError_t e = cudaMemset(d, 1, 64);
        printf("child=%s\n", cudaGetErrorName(e));
        int *d2 = nullptr;
        printf("child_malloc=%s\n", cudaGetErrorName(cudaMalloc(&d2, 64)));
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("parent=%s\n", cudaGetErrorName(cudaMemset(d, 2, 64)));
    CK(cudaFree(d));
    return 0;
}
