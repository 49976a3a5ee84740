/* tls_start.c - start of a TLS data-plane session in tf-executor. A TLS listener of the worker
 * (tfworker/dataplane.py) spawns this process at accept with the daemon-wide environment (the limiter
 * preloaded when the daemon has limits) and hands it the raw TCP socket plus a control socket: a TLS
 * session's state cannot move between processes without kernel TLS, so the process that serves the
 * session must be the one that makes the handshake. Steps, each wait bounded by TF_TLS_START_TIMEOUT_S:
 *   1. a plaintext stub's TFH1 hello is answered in plaintext with a refusal naming the fix;
 *   2. the TLS handshake (OpenSSL, TLS >= 1.2);
 *   3. the client's TFH1 hello inside TLS; its lease token goes to the daemon over the control socket;
 *   4. the daemon's answer: a refusal (relayed to the client) or the grant's environment, applied with
 *      setenv before main.c loads the backend (the limiter reads its TF_LIMITER_* configuration at first
 *      use, NVIDIA's driver CUDA_VISIBLE_DEVICES at cuInit); a grant that needs a library (the limiter)
 *      this process did not preload is refused (fail closed);
 *   5. the TFR1 accept to the client.
 * Called by main.c; tests/fuzz_tls.c feeds it arbitrary client bytes.
 */
#include <errno.h>
#include <link.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "executor.h"
#include "tls_start.h"
#include "tf_fd_io.h"

#define CUDA_ERROR_INVALID_VALUE_ 1
#define CUDA_ERROR_NOT_PERMITTED_ 800
#define CUDA_ERROR_UNKNOWN_ 999

static void log_ssl(const char *what)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    tfx_log("TLS %s failed%s%s", what, e ? ": " : "", buf);
}

SSL_CTX *tf_tls_server_ctx(const char *cert, const char *key, const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) { log_ssl("context"); return NULL; }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) { tfx_log("TLS certificate %s: unusable", cert); goto fail; }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        tfx_log("TLS key %s: unusable or not the certificate's key", key);
        goto fail;
    }
    if (ca) {   /* a client certificate, if one is presented, must chain to this CA */
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) { tfx_log("TLS CA %s: unusable", ca); goto fail; }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    /* AES-128-GCM first (TLS 1.3; ~17% faster than AES-256-GCM with AES-NI here, and the bulk copies are
     * bound by the cipher), chosen by this side */
    if (SSL_CTX_set_ciphersuites(ctx, TF_TLS13_SUITES) != 1) goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* bulk copies: read whole bursts of records per syscall */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 256 * 1024);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);   /* one session per process */
    /* a client process that exits closes its socket without close_notify: that is its clean end (the
     * frame protocol itself shows a cut mid-frame), as EOF is on a plain socket */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return ctx;
fail:
    log_ssl("setup");
    SSL_CTX_free(ctx);
    return NULL;
}

static int set_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
           setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) ? -1 : 0;
}

/* TFR1 to the client, inside TLS when ssl is set (else in plaintext: step 1's refusal). */
static int reply(SSL *ssl, int fd, int32_t status, const char *msg)
{
    uint8_t buf[sizeof(tf_hello_reply) + TF_GRANT_MAX_MSG];
    size_t ml = strnlen(msg, TF_GRANT_MAX_MSG);
    tf_hello_reply r = {.status = status, .msg_len = (uint32_t)ml};
    memcpy(r.magic, TF_REPLY_MAGIC, 4);
    memcpy(buf, &r, sizeof r);
    memcpy(buf + sizeof r, msg, ml);
    if (!ssl) return tf_send_all(fd, buf, sizeof r + ml);
    size_t put = 0;
    return SSL_write_ex(ssl, buf, sizeof r + ml, &put) == 1 && put == sizeof r + ml ? 0 : -1;
}

static int tls_read_exact(SSL *ssl, void *p, size_t n)
{
    while (n > 0) {
        size_t got = 0;
        if (SSL_read_ex(ssl, p, n, &got) != 1) return -1;
        p = (uint8_t *)p + got;
        n -= got;
    }
    return 0;
}

/* 1 when every ':'-separated library of `list` is loaded in this process. */
struct want { const char *path; int found; };
static int find_lib(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct want *w = arg;
    char a[PATH_MAX], b[PATH_MAX];
    if (info->dlpi_name && *info->dlpi_name && realpath(info->dlpi_name, a) && realpath(w->path, b) &&
        strcmp(a, b) == 0)
        w->found = 1;
    return w->found;
}

static int libs_loaded(char *list, const char **missing)
{
    for (char *save = NULL, *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        struct want w = {p, 0};
        dl_iterate_phdr(find_lib, &w);
        if (!w.found) { *missing = p; return 0; }
    }
    return 1;
}

/* Applies "NAME=VALUE\0"... ; -1 on a malformed entry (nothing after it is applied). */
static int apply_env(char *env, size_t n)
{
    size_t off = 0;
    while (off < n) {
        char *e = env + off;
        size_t len = strnlen(e, n - off);
        if (len == n - off) return -1;   /* not terminated */
        char *eq = strchr(e, '=');
        if (!eq || eq == e) return -1;
        *eq = 0;
        if (setenv(e, eq + 1, 1)) return -1;
        off += len + 1;
    }
    return 0;
}

/* Steps 3-5 once the TLS session is up. */
static int authorize(SSL *ssl, int fd, int control)
{
    tf_hello_hdr h;
    if (tls_read_exact(ssl, &h, sizeof h)) { log_ssl("hello read"); return -1; }
    if (memcmp(h.magic, TF_HELLO_MAGIC, 4) || h.version != TF_HELLO_VERSION || h.token_len > TF_MAX_TOKEN) {
        reply(ssl, fd, CUDA_ERROR_INVALID_VALUE_, "bad hello (not a TensorFusion stub?)");
        return -1;
    }
    struct { char magic[4]; uint32_t len; uint8_t token[TF_MAX_TOKEN]; } a;
    memcpy(a.magic, TF_AUTH_MAGIC, 4);
    a.len = h.token_len;
    if (h.token_len && tls_read_exact(ssl, a.token, h.token_len)) { log_ssl("hello read"); return -1; }
    int sent = tf_send_all(control, &a, 8 + h.token_len);
    memset(a.token, 0, sizeof a.token);   /* the token never stays in this process */
    struct { char magic[4]; int32_t status; uint32_t msg_len, env_len, preload_len; } g;
    if (sent || tf_read_exact(control, &g, sizeof g) || memcmp(g.magic, TF_GRANT_MAGIC, 4) ||
        g.msg_len > TF_GRANT_MAX_MSG || g.env_len > TF_GRANT_MAX_ENV || g.preload_len > TF_GRANT_MAX_PRELOAD) {
        tfx_log("no valid answer from the worker daemon on the control socket: refusing the session");
        reply(ssl, fd, CUDA_ERROR_UNKNOWN_, "worker error: no authorization answer");
        return -1;
    }
    size_t total = (size_t)g.msg_len + g.env_len + g.preload_len;
    char *buf = malloc(total + 2);
    if (!buf || (total && tf_read_exact(control, buf, total))) {
        free(buf);
        reply(ssl, fd, CUDA_ERROR_UNKNOWN_, "worker error: no authorization answer");
        return -1;
    }
    buf[total] = buf[total + 1] = 0;
    char msg[TF_GRANT_MAX_MSG + 1];
    memcpy(msg, buf, g.msg_len);
    msg[g.msg_len] = 0;
    if (g.status != 0) {
        free(buf);
        reply(ssl, fd, g.status, msg);
        return -1;
    }
    char *env = buf + g.msg_len, *preload = env + g.env_len;
    preload[g.preload_len] = 0;
    const char *missing = NULL;
    int rc = -1;
    if (!libs_loaded(preload, &missing)) {
        tfx_log("the session's limits need %s, which this process did not load: refusing (fail closed)", missing);
        reply(ssl, fd, CUDA_ERROR_UNKNOWN_, "worker error: the limiter is not loaded in the GPU worker process");
    } else if (apply_env(env, g.env_len)) {
        tfx_log("malformed environment in the daemon's grant: refusing the session");
        reply(ssl, fd, CUDA_ERROR_UNKNOWN_, "worker error: bad grant");
    } else if (reply(ssl, fd, 0, "") == 0) {
        rc = 0;
    }
    free(buf);
    return rc;
}

int tf_tls_start(SSL_CTX *ctx, int fd, int control, SSL **out)
{
    *out = NULL;
    if (set_timeouts(fd, TF_TLS_START_TIMEOUT_S) || set_timeouts(control, TF_TLS_START_TIMEOUT_S)) return -1;
    char peek[4];
    ssize_t k;
    do k = recv(fd, peek, sizeof peek, MSG_PEEK | MSG_WAITALL); while (k < 0 && errno == EINTR);
    if (k == (ssize_t)sizeof peek && memcmp(peek, TF_HELLO_MAGIC, 4) == 0) {
        tfx_log("a plaintext client on the TLS listener: refused");
        reply(NULL, fd, CUDA_ERROR_NOT_PERMITTED_,
              "this worker's TCP data plane requires TLS: connect with TF_WORKER=tls:HOST:PORT and TF_TLS_CA");
        return -1;
    }
    if (k <= 0) return -1;   /* gone or silent past the timeout */
    SSL *ssl = SSL_new(ctx);
    if (!ssl) { log_ssl("session"); return -1; }
    if (SSL_set_fd(ssl, fd) != 1) { log_ssl("session"); SSL_free(ssl); return -1; }
    if (SSL_accept(ssl) != 1) {
        log_ssl("handshake");
        SSL_free(ssl);
        return -1;
    }
    if (authorize(ssl, fd, control) || set_timeouts(fd, 0)) {
        SSL_free(ssl);
        return -1;
    }
    /* serving: records are gathered in a write buffer and sent by conn.c's flush at the end of each
     * reply (one send per 256 KiB instead of one per 16 KiB record: TCP carried, and woke the client
     * for, every record separately) */
    BIO *sock = SSL_get_wbio(ssl), *buf = BIO_new(BIO_f_buffer());
    if (!buf || BIO_set_write_buffer_size(buf, 256 * 1024) != 1 || !BIO_up_ref(sock)) {
        BIO_free(buf);
        log_ssl("write buffer");
        SSL_free(ssl);
        return -1;
    }
    BIO_push(buf, sock);
    SSL_set0_wbio(ssl, buf);
    *out = ssl;
    return 0;
}
