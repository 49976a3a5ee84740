/* tls.c - the stub's TLS client for TF_WORKER=tls:HOST:PORT (transport.c dials, then hands the socket
 * here before the TFH1 hello, so the lease token and every frame travel encrypted).
 *
 * OpenSSL 3 (libssl.so.3) is loaded with dlopen on the first TLS connection only: the stub is loaded
 * into every CUDA program, and programs on Unix sockets or plain TCP should not pay for loading (or
 * depend on) a TLS library. The functions used are listed once in SSL_FUNCS. The worker's certificate
 * is always verified (TF_TLS_CA, else the system's CAs) with its name checked; there is no fallback to
 * plaintext and no "insecure" switch.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "stub.h"
#include "tf_fd_io.h"
#include "tls.h"

#define SSL_FUNCS(X)                                                                                 \
    X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl) X(SSL_CTX_set_verify)       \
    X(SSL_CTX_load_verify_locations) X(SSL_CTX_set_default_verify_paths)                              \
    X(SSL_CTX_use_certificate_chain_file) X(SSL_CTX_use_PrivateKey_file) X(SSL_CTX_check_private_key) \
    X(SSL_CTX_set_default_read_buffer_len) X(SSL_new) X(SSL_free) X(SSL_ctrl)         \
    X(SSL_set1_host) X(SSL_connect) X(SSL_get_error) X(SSL_get_verify_result) X(SSL_read_ex)         \
    X(SSL_write_ex) X(SSL_has_pending) X(X509_verify_cert_error_string) X(ERR_get_error)            \
    X(ERR_error_string_n) X(ERR_clear_error) X(BIO_get_new_index) X(BIO_meth_new)                  \
    X(BIO_meth_set_write_ex) X(BIO_meth_set_read_ex) X(BIO_meth_set_ctrl) X(BIO_new) X(BIO_set_data)  \
    X(BIO_get_data) X(BIO_set_init) X(SSL_set_bio)

static struct {
#define DECL(f) __typeof__(f) *f;
    SSL_FUNCS(DECL)
#undef DECL
} o;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *load_error;

/* The socket under the session. OpenSSL's own socket BIO write()s, and a write to a socket the worker
 * closed would raise SIGPIPE in the user's program: this one sends with MSG_NOSIGNAL. It also gathers
 * the records of one tf_tls_write (a big copy is thousands of 16 KiB records) into sends of up to
 * WBUF bytes, flushed at the end of the write: one record per send() made TCP carry (and wake the
 * receiver for) every 16 KiB separately. */
#define WBUF (256u << 10)
typedef struct sock_bio { int fd, eof; uint8_t *wbuf; size_t wlen; } sock_bio;
static BIO_METHOD *bio_method;

struct tf_tls { SSL *ssl; SSL_CTX *ctx; sock_bio sb; };

static int bio_flush(sock_bio *sb)
{
    int rc = sb->wlen ? tf_send_all(sb->fd, sb->wbuf, sb->wlen) : 0;
    sb->wlen = 0;
    return rc;
}

static int bio_write(BIO *b, const char *p, size_t n, size_t *done)
{
    sock_bio *sb = o.BIO_get_data(b);
    if (sb->wlen + n > WBUF && bio_flush(sb)) return 0;
    if (n >= WBUF) {
        if (tf_send_all(sb->fd, (const uint8_t *)p, n)) return 0;
    } else {
        memcpy(sb->wbuf + sb->wlen, p, n);
        sb->wlen += n;
    }
    *done = n;
    return 1;
}

static int bio_read(BIO *b, char *p, size_t n, size_t *done)
{
    sock_bio *sb = o.BIO_get_data(b);
    ssize_t k;
    do k = recv(sb->fd, p, n, 0); while (k < 0 && errno == EINTR);
    if (k <= 0) {
        if (k == 0) sb->eof = 1;
        return 0;
    }
    *done = (size_t)k;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num, (void)ptr;
    sock_bio *sb = o.BIO_get_data(b);
    if (cmd == BIO_CTRL_FLUSH) return bio_flush(sb) == 0;
    if (cmd == BIO_CTRL_EOF) return sb->eof;
    return 0;
}

static void load(void)
{
    void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h) { load_error = "libssl.so.3 (OpenSSL 3) cannot be loaded"; return; }
#define LOAD(f)                                                      \
    if (!(*(void **)&o.f = dlsym(h, #f))) { load_error = "libssl.so.3 lacks " #f; return; }
    SSL_FUNCS(LOAD)
#undef LOAD
    bio_method = o.BIO_meth_new(o.BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tf-stub socket");
    if (!bio_method || o.BIO_meth_set_write_ex(bio_method, bio_write) != 1 ||
        o.BIO_meth_set_read_ex(bio_method, bio_read) != 1 || o.BIO_meth_set_ctrl(bio_method, bio_ctrl) != 1)
        load_error = "cannot make a socket BIO";
}

static const char *ssl_reason(char *buf, size_t n)
{
    unsigned long e = o.ERR_get_error();
    if (!e) return "connection closed by the worker";
    o.ERR_error_string_n(e, buf, n);
    o.ERR_clear_error();
    return buf;
}

static tf_tls *fail(tf_tls *t, CUresult *rc, CUresult code)
{
    if (t->ssl) o.SSL_free(t->ssl);
    if (t->ctx) o.SSL_CTX_free(t->ctx);
    free(t->sb.wbuf);
    free(t);
    *rc = code;
    return NULL;
}

tf_tls *tf_tls_connect(int fd, const char *host, CUresult *rc)
{
    pthread_once(&load_once, load);
    if (load_error) {
        tf_log("TLS: %s", load_error);
        *rc = CUDA_ERROR_NOT_PERMITTED;
        return NULL;
    }
    tf_tls *t = calloc(1, sizeof *t);
    if (t) t->sb.wbuf = malloc(WBUF);
    if (!t || !t->sb.wbuf) {
        free(t);
        *rc = CUDA_ERROR_OUT_OF_MEMORY;
        return NULL;
    }
    char err[256];
    const char *ca = getenv("TF_TLS_CA"), *name = getenv("TF_TLS_SERVER_NAME");
    const char *cert = getenv("TF_TLS_CERT"), *key = getenv("TF_TLS_KEY");
    if (!name || !*name) name = host;
    t->ctx = o.SSL_CTX_new(o.TLS_client_method());
    if (!t->ctx || o.SSL_CTX_ctrl(t->ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL) != 1) {
        tf_log("TLS: cannot set up a client context: %s", ssl_reason(err, sizeof err));
        return fail(t, rc, CUDA_ERROR_NOT_PERMITTED);
    }
    if (ca && *ca ? o.SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1
                  : o.SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        tf_log("TLS: cannot load the CA %s: %s", ca && *ca ? ca : "(system default)", ssl_reason(err, sizeof err));
        return fail(t, rc, CUDA_ERROR_NOT_PERMITTED);
    }
    o.SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    if ((cert && *cert) || (key && *key)) {
        if (!cert || !*cert || !key || !*key) {
            tf_log("TLS: TF_TLS_CERT and TF_TLS_KEY go together");
            return fail(t, rc, CUDA_ERROR_NOT_PERMITTED);
        }
        if (o.SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1 ||
            o.SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1 ||
            o.SSL_CTX_check_private_key(t->ctx) != 1) {
            tf_log("TLS: client certificate %s / key %s unusable: %s", cert, key, ssl_reason(err, sizeof err));
            return fail(t, rc, CUDA_ERROR_NOT_PERMITTED);
        }
    }
    o.SSL_CTX_ctrl(t->ctx, SSL_CTRL_SET_READ_AHEAD, 1, NULL);   /* bulk replies: bursts of records per read */
    o.SSL_CTX_set_default_read_buffer_len(t->ctx, 256 * 1024);
    t->ssl = o.SSL_new(t->ctx);
    BIO *bio = t->ssl ? o.BIO_new(bio_method) : NULL;
    if (bio) {
        t->sb.fd = fd;
        o.BIO_set_data(bio, &t->sb);
        o.BIO_set_init(bio, 1);
        o.SSL_set_bio(t->ssl, bio, bio);   /* the session owns it from here */
    }
    if (!bio || o.SSL_set1_host(t->ssl, name) != 1) {
        tf_log("TLS: cannot set up the session for %s: %s", name, ssl_reason(err, sizeof err));
        return fail(t, rc, CUDA_ERROR_NOT_PERMITTED);
    }
    unsigned char ip[16];   /* SNI carries host names only */
    if (inet_pton(AF_INET, name, ip) != 1 && inet_pton(AF_INET6, name, ip) != 1)
        o.SSL_ctrl(t->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)(uintptr_t)name);
    errno = 0;
    if (o.SSL_connect(t->ssl) != 1) {
        long v = o.SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK) {
            tf_log("TLS: the worker's certificate is not trusted for %s: %s (CA: %s)", name,
                   o.X509_verify_cert_error_string(v), ca && *ca ? ca : "system default");
            o.ERR_clear_error();
            return fail(t, rc, CUDA_ERROR_NOT_PERMITTED);
        }
        int e = errno;
        const char *why = ssl_reason(err, sizeof err);
        tf_log("TLS handshake with %s failed: %s", name, e && !strcmp(why, "connection closed by the worker") ? strerror(e) : why);
        return fail(t, rc, CUDA_ERROR_NO_DEVICE);
    }
    return t;
}

ssize_t tf_tls_read(tf_tls *t, void *p, size_t n)
{
    size_t got = 0;
    if (o.SSL_read_ex(t->ssl, p, n, &got) == 1) return (ssize_t)got;
    int e = o.SSL_get_error(t->ssl, 0);
    o.ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) return 0;
    if (e != SSL_ERROR_SYSCALL) errno = EPROTO;
    return -1;
}

int tf_tls_write(tf_tls *t, const void *p, size_t n)
{
    while (n > 0) {
        size_t put = 0;
        if (o.SSL_write_ex(t->ssl, p, n, &put) != 1) {
            if (o.SSL_get_error(t->ssl, 0) != SSL_ERROR_SYSCALL) errno = EPROTO;
            o.ERR_clear_error();
            return -1;
        }
        p = (const uint8_t *)p + put;
        n -= put;
    }
    if (bio_flush(&t->sb)) {
        if (!errno) errno = EPIPE;
        return -1;
    }
    return 0;
}

int tf_tls_pending(tf_tls *t) { return o.SSL_has_pending(t->ssl); }

void tf_tls_free(tf_tls *t)
{
    if (!t) return;
    o.SSL_free(t->ssl);
    o.SSL_CTX_free(t->ctx);
    free(t->sb.wbuf);
    free(t);
}
