/* tf_fd_io.h - whole transfers on a descriptor: exactly n bytes read, n bytes written, or n bytes sent on a
 * stream socket without SIGPIPE (MSG_NOSIGNAL: a peer that closed its end is an error, not a signal to the
 * program), retrying EINTR and going on after short transfers. One loop serves the client stub (the
 * host-call channel, stub_c/api_hostcalls.c; the TLS socket BIO, stub_c/tls.c), the GPU worker process (its
 * end of the host-call channel, tfworker/executor/exec_host_calls.c; the TLS start's control socket,
 * tls_start.c; the console's log, console.c) and the emulator's JIT (cache files, ptx_jit_cache.c; the
 * compiler process's socket, ptx_jit.c and ptx_jitc.c). Sending an iovec with a descriptor:
 * tf_sock_writev.h. */
#ifndef TF_FD_IO_H
#define TF_FD_IO_H
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

enum tf_fd_op { TF_FD_READ, TF_FD_WRITE, TF_FD_SEND };

/* n bytes at p through op: 0, or -1 with errno set (errno 0: the end of the file or a transfer of nothing
 * before n bytes). Async-signal-safe. */
static inline int tf_fd_whole(int fd, void *p, size_t n, enum tf_fd_op op)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t k = op == TF_FD_READ ? read(fd, b, n) : op == TF_FD_WRITE ? write(fd, b, n)
                                                                          : send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = 0;
            return -1;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static inline int tf_read_exact(int fd, void *p, size_t n) { return tf_fd_whole(fd, p, n, TF_FD_READ); }
/* (the buffer is only read: the casts drop a const that write() and send() keep) */
static inline int tf_write_all(int fd, const void *p, size_t n) { return tf_fd_whole(fd, (void *)p, n, TF_FD_WRITE); }
static inline int tf_send_all(int sock, const void *p, size_t n) { return tf_fd_whole(sock, (void *)p, n, TF_FD_SEND); }
#endif
