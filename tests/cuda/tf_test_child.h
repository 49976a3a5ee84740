// tf_test_child.h - the second process of the IPC test programs (ipc.cu, vmm_ipc.cu, mempool_ipc.cu): a copy
// of the program (fork + exec, so it has its own CUDA state) started with arguments - binary export data as
// hex text - and, when asked, a descriptor handed to it over a Unix socket with SCM_RIGHTS, as NVIDIA's IPC
// samples (memMapIPCDrv, streamOrderedAllocationIPC) pass theirs.
// Environment: TF_TEST_CHILD_LEASE, if set, becomes the child's TF_LEASE: through the stub the child is then
// a session of that allocation (tests/stub/test_ipc.py, test_vmm_ipc.py).
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

// n bytes at p as 2n hex digits and a NUL at out; tf_unhex reads them back.
static void tf_hex(const void *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", ((const unsigned char *)p)[i]);
}
static void tf_unhex(const char *s, void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) { unsigned b = 0; sscanf(s + 2 * i, "%2x", &b); ((unsigned char *)p)[i] = (unsigned char)b; }
}

// The message of tf_send_fd / tf_recv_fd: one byte and room for one descriptor (SCM_RIGHTS).
struct tf_fd_msg {
    char byte;
    struct iovec v;
    struct msghdr m;
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } cm;   // last: cmsghdr ends in a flexible array
};
static void tf_fd_msg_init(tf_fd_msg *x)
{
    memset(x, 0, sizeof *x);
    x->byte = 'f';
    x->v.iov_base = &x->byte;
    x->v.iov_len = 1;
    x->m.msg_iov = &x->v;
    x->m.msg_iovlen = 1;
    x->m.msg_control = x->cm.buf;
    x->m.msg_controllen = sizeof x->cm.buf;
}

// One byte carrying fd: 0, or -1.
static int tf_send_fd(int sock, int fd)
{
    tf_fd_msg x;
    tf_fd_msg_init(&x);
    struct cmsghdr *c = CMSG_FIRSTHDR(&x.m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &x.m, 0) == 1 ? 0 : -1;
}

// The descriptor tf_send_fd sent, or -1.
static int tf_recv_fd(int sock)
{
    tf_fd_msg x;
    tf_fd_msg_init(&x);
    if (recvmsg(sock, &x.m, 0) != 1) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&x.m);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

// Runs `self args...` (args: at most 6, NULL-terminated) and waits for it; returns its exit status (128 +
// the signal that killed it). fd >= 0 is sent to the child over a socketpair: the number of the child's end
// comes last in its arguments (tf_recv_fd there; the caller still owns fd). -1, after an "error=..." line,
// when the socket, the fork or the send fails.
static int tf_run_copy(const char *self, int fd, const char *const *args)
{
    int sv[2] = {-1, -1};
    if (fd >= 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) { printf("error=socketpair\n"); return -1; }
    char sock[16];
    snprintf(sock, sizeof sock, "%d", sv[1]);
    const char *argv[9];
    int n = 0;
    argv[n++] = self;
    while (*args && n < 7) argv[n++] = *args++;
    if (fd >= 0) argv[n++] = sock;
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (fd >= 0) close(sv[0]);
        const char *lease = getenv("TF_TEST_CHILD_LEASE");
        if (lease) setenv("TF_LEASE", lease, 1);
        execv(self, (char *const *)argv);
        _exit(127);
    }
    if (fd >= 0) close(sv[1]);
    const char *failed = pid < 0 ? "fork" : fd >= 0 && tf_send_fd(sv[0], fd) ? "send_fd" : NULL;
    if (fd >= 0 && failed) close(sv[0]);   // a child waiting for the descriptor reads the end instead
    int st = 0;
    if (pid > 0) waitpid(pid, &st, 0);
    if (fd >= 0 && !failed) close(sv[0]);
    if (failed) { printf("error=%s\n", failed); return -1; }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
