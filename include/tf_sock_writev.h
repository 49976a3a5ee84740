/* tf_sock_writev.h - advance through an iovec array, and write a whole iovec to a stream socket, optionally passing one descriptor
 * (SCM_RIGHTS) with its first bytes: the plain-socket send path of the stub (stub_c/transport.c) and of
 * the GPU worker process (tfworker/executor/conn.c), which pass an allocation's descriptor with a
 * frame on Unix sockets. */
#ifndef TF_SOCK_WRITEV_H
#define TF_SOCK_WRITEV_H
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Moves the array (*iov, *n) past k bytes just transferred (a partial read or write of an iovec array). */
static inline void tf_iov_advance(struct iovec **iov, int *n, size_t k)
{
    while (*n > 0 && k >= (*iov)->iov_len) {
        k -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n > 0) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + k;
        (*iov)->iov_len -= k;
    }
}

/* Sends iov[0..n) (the array is consumed). *passfd >= 0 travels with the first bytes sent and is then
 * set to -1 (the caller still owns the descriptor). Returns 0, or -1 with errno. */
static inline int tf_sock_writev(int sock, struct iovec *iov, int n, int *passfd)
{
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } cm;
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        if (*passfd >= 0) {
            memset(&cm, 0, sizeof cm);
            m.msg_control = cm.buf;
            m.msg_controllen = sizeof cm.buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), passfd, sizeof *passfd);
        }
        ssize_t k = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k > 0) *passfd = -1;
        tf_iov_advance(&iov, &n, (size_t)k);
    }
    return 0;
}
#endif
