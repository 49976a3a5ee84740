/* conn.c - byte I/O on the client connection of tf-executor: the plain socket (Unix or TCP, the fast
 * path: recvmsg that also takes a passed descriptor, one sendmsg per reply) or a TLS session over a TCP
 * socket (OpenSSL; tls_start.c sets it up and stores it in x->ssl before serving). Called by the frame
 * loop in executor.c and by graph host nodes (exec_graph.c).
 *
 * TLS writes gather a reply's small pieces (header, outputs, latched errors, console) into one record
 * before SSL_write: one record and one syscall per small reply, as sendmsg gives the plain path. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "executor.h"
#include "tf_sock_writev.h"
#include "tf_spin_wait.h"

#define GATHER_MAX 16384 /* one TLS record's payload */

/* recvmsg that also keeps a descriptor the client passed along (x->rx_fd, for tfShmAttach). */
static ssize_t read_fds(tfx *x, void *p, size_t n)
{
    union { struct cmsghdr h; char buf[CMSG_SPACE(4 * sizeof(int))]; } cm;
    struct iovec v = {p, n};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    ssize_t k = recvmsg(x->fd, &m, MSG_CMSG_CLOEXEC);
    if (k < 0) return k;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (x->rx_fd >= 0) close(x->rx_fd);
            x->rx_fd = got;
        }
    }
    return k;
}

/* SSL_read as read(): >0 bytes, 0 = clean close (close_notify or EOF), -1 = error (errno set). */
static ssize_t tls_read(SSL *ssl, void *p, size_t n)
{
    size_t got = 0;
    if (SSL_read_ex(ssl, p, n, &got) == 1) return (ssize_t)got;
    int e = SSL_get_error(ssl, 0);
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    if (e == SSL_ERROR_SYSCALL && errno == 0) return 0;   /* EOF without close_notify: the client died */
    if (e != SSL_ERROR_SYSCALL) errno = EPROTO;
    return -1;
}

ssize_t tf_conn_read(tfx *x, void *p, size_t n, int take_fds)
{
    if (x->ssl) return tls_read(x->ssl, p, n);
    return take_fds ? read_fds(x, p, n) : read(x->fd, p, n);
}

int tf_conn_read_exact(tfx *x, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = tf_conn_read(x, (uint8_t *)p + got, n - got, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = ECONNRESET;
            return -1;
        }
        got += (size_t)k;
    }
    return 0;
}

static int tls_write_records(SSL *ssl, const void *p, size_t n)
{
    while (n > 0) {
        size_t put = 0;
        if (SSL_write_ex(ssl, p, n, &put) != 1) {
            if (SSL_get_error(ssl, 0) != SSL_ERROR_SYSCALL) errno = EPROTO;
            return -1;
        }
        p = (const uint8_t *)p + put;
        n -= put;
    }
    return 0;
}

/* Records pile up in the session's buffering write BIO (tls_start.c): one send per 256 KiB. */
static int tls_flush(SSL *ssl)
{
    if (BIO_flush(SSL_get_wbio(ssl)) != 1) {
        if (!errno) errno = EPIPE;
        return -1;
    }
    return 0;
}

static int tls_writev(SSL *ssl, const struct iovec *v, int n)
{
    uint8_t buf[GATHER_MAX];
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].iov_len <= sizeof buf - used) {
            memcpy(buf + used, v[i].iov_base, v[i].iov_len);
            used += v[i].iov_len;
            continue;
        }
        /* a big piece: top the record up with its start, then send the rest straight from its memory */
        size_t fill = sizeof buf - used;
        memcpy(buf + used, v[i].iov_base, fill);
        if (tls_write_records(ssl, buf, sizeof buf)) return -1;
        used = 0;
        const uint8_t *rest = (const uint8_t *)v[i].iov_base + fill;
        size_t left = v[i].iov_len - fill;
        size_t tail = left % GATHER_MAX;   /* kept for gathering with what follows */
        if (left - tail && tls_write_records(ssl, rest, left - tail)) return -1;
        memcpy(buf, rest + left - tail, tail);
        used = tail;
    }
    if (used && tls_write_records(ssl, buf, used)) return -1;
    return tls_flush(ssl);
}

/* x->tx_fd, if set, rides (SCM_RIGHTS) with the first bytes of this write and is then closed here (the
 * handlers that set it refuse TLS and TCP connections first). */
int tf_conn_writev(tfx *x, struct iovec *v, int n)
{
    if (x->ssl) return tls_writev(x->ssl, v, n);
    int passfd = x->tx_fd;
    int rc = tf_sock_writev(x->fd, v, n, &passfd);
    if (x->tx_fd >= 0 && (passfd < 0 || rc != 0)) {   /* sent, or the connection is gone: ours to close */
        close(x->tx_fd);
        x->tx_fd = -1;
    }
    return rc;
}

void tf_conn_wait_readable(tfx *x)
{
    if (x->ssl && SSL_has_pending(x->ssl)) return;   /* decrypted or buffered bytes wait already */
    tf_spin_wait_readable(x->fd);
}
