/* fuzz_tls.c - deterministic fuzz harness of the TLS session start of tf-executor (tls_start.c): the
 * handshake, the hello inside TLS and the exchange with the daemon on the control socket, fed arbitrary
 * client bytes. Run by `make -C tfworker/executor test` (under ASan/UBSan in `make asan-test`).
 *   raw:   bytes straight on the socket (mutations of a real ClientHello, of a plaintext TFH1 hello, and
 *          random bytes): the handshake parser must refuse them without crashing;
 *   hello: a real TLS handshake, then mutated hellos and tokens (sizes, magic, version, truncation),
 *          answered by a scripted daemon with a refusal, a grant, a malformed grant or silence.
 * Fails on a crash, a sanitizer report, or a verdict that contradicts the input (a session started
 * from a bad hello or a refused grant; a forwarded token that is not the client's).
 * The server certificate is made here (EC P-256, self-signed) into a temporary folder.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "executor.h"
#include "tls_start.h"

void tfx_log(const char *fmt, ...) { (void)fmt; }   /* quiet: thousands of refusals are expected */

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_tls: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void make_cert(const char *dir, char *cert, char *key)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!pk || !x) die("key generation");
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, pk, EVP_sha256())) die("certificate");
    snprintf(cert, 256, "%s/cert.pem", dir);
    snprintf(key, 256, "%s/key.pem", dir);
    FILE *f = fopen(cert, "w"), *g = fopen(key, "w");
    if (!f || !g || !PEM_write_X509(f, x) || !PEM_write_PrivateKey(g, pk, NULL, NULL, 0, NULL, NULL)) die("PEM files");
    fclose(f);
    fclose(g);
    X509_free(x);
    EVP_PKEY_free(pk);
}

/* A client's first flight (ClientHello), made with memory BIOs. */
static size_t client_hello(uint8_t *out, size_t cap)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    SSL *s = SSL_new(c);
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    if (!c || !s || !r || !w) die("client hello");
    SSL_set_bio(s, r, w);
    SSL_connect(s);  /* wants to read: the hello is in w */
    int n = BIO_read(w, out, (int)cap);
    SSL_free(s);
    SSL_CTX_free(c);
    ERR_clear_error();
    return n > 0 ? (size_t)n : 0;
}

static void mutate(uint8_t *m, size_t *n, size_t cap)
{
    int k = 1 + (int)(next_rand() % 4);
    for (int i = 0; i < k && *n; i++) {
        size_t at = next_rand() % *n;
        switch (next_rand() % 5) {
        case 0: m[at] ^= (uint8_t)(1u << (next_rand() % 8)); break;
        case 1: m[at] = (uint8_t)next_rand(); break;
        case 2: *n = at; break;                                           /* truncation */
        case 3: if (*n + 4 <= cap) { memmove(m + at + 4, m + at, *n - at); *n += 4; } break;
        default: m[at] = (uint8_t)(next_rand() % 2 ? 0xff : 0x00); break;  /* length fields */
        }
    }
}

/* ---- raw bytes on the socket ---- */
static long raw_cases, sessions_started;

static void run_raw(SSL_CTX *ctx, const uint8_t *p, size_t n)
{
    int sv[2], ctl[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_STREAM, 0, ctl)) die("socketpair");
    if (n && send(sv[0], p, n, MSG_NOSIGNAL) != (ssize_t)n) die("send");
    shutdown(sv[0], SHUT_WR);
    SSL *ssl = NULL;
    if (tf_tls_start(ctx, sv[1], ctl[1], &ssl) == 0) { sessions_started++; SSL_free(ssl); }
    close(sv[0]); close(sv[1]); close(ctl[0]); close(ctl[1]);
    raw_cases++;
}

/* ---- a real handshake, then a fuzzed hello and a scripted daemon ---- */
typedef struct {
    int fd;
    uint8_t hello[8192];
    size_t n;
} client_arg;

static void *client_main(void *p)
{
    client_arg *a = p;
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    SSL *s = c ? SSL_new(c) : NULL;
    if (s && SSL_set_fd(s, a->fd) == 1 && SSL_connect(s) == 1) {
        size_t put;
        if (a->n) SSL_write_ex(s, a->hello, a->n, &put);
        shutdown(a->fd, SHUT_WR);   /* a short hello ends in EOF, not in a wait for the server's timeout */
        uint8_t sink[256];
        size_t got;
        while (SSL_read_ex(s, sink, sizeof sink, &got) == 1) {}   /* until the server ends */
    }
    shutdown(a->fd, SHUT_WR);
    SSL_free(s);
    SSL_CTX_free(c);
    ERR_clear_error();
    return NULL;
}

typedef struct {
    int fd, script;
    uint8_t token[TF_MAX_TOKEN];
    uint32_t len;
    int asked;
} daemon_arg;

static void *daemon_answer(daemon_arg *d);

static void *daemon_main(void *p)
{
    daemon_arg *d = p;
    daemon_answer(d);
    shutdown(d->fd, SHUT_WR);   /* silence ends in EOF, not in the executor's timeout */
    return NULL;
}

static void *daemon_answer(daemon_arg *d)
{
    struct { char magic[4]; uint32_t len; } h;
    if (recv(d->fd, &h, sizeof h, MSG_WAITALL) != (ssize_t)sizeof h) return NULL;
    if (memcmp(h.magic, TF_AUTH_MAGIC, 4) || h.len > TF_MAX_TOKEN) { d->asked = -1; return NULL; }
    if (h.len && recv(d->fd, d->token, h.len, MSG_WAITALL) != (ssize_t)h.len) { d->asked = -1; return NULL; }
    d->len = h.len;
    d->asked = 1;
    static const char env[] = "TF_FUZZ_GRANTED=1";
    struct { char magic[4]; int32_t status; uint32_t ml, el, pl; } g = {{'T', 'F', 'G', '1'}, 0, 0, 0, 0};
    uint8_t buf[64 + sizeof env];
    size_t n = sizeof g;
    switch (d->script) {
    case 0: g.status = 800; g.ml = 6; memcpy(buf + sizeof g, "denied", 6); n += 6; break;
    case 1: g.el = sizeof env; memcpy(buf + sizeof g, env, sizeof env); n += sizeof env; break;
    case 2: g.el = 5; memcpy(buf + sizeof g, "NOEQ\0", 5); n += 5; break;            /* malformed env */
    case 3: g.ml = 0xffffffffu; break;                                                 /* oversized */
    case 4: g.pl = 9; memcpy(buf + sizeof g, "/no/such/", 9); n += 9; break;           /* missing preload */
    default: return NULL;                                                              /* silence */
    }
    memcpy(buf, &g, sizeof g);
    send(d->fd, buf, n, MSG_NOSIGNAL);
    return NULL;
}

static long hello_cases, hello_ok;

static void run_hello(SSL_CTX *ctx, const uint8_t *hello, size_t n, int script)
{
    int sv[2], ctl[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_STREAM, 0, ctl)) die("socketpair");
    static client_arg ca;
    static daemon_arg da;
    memset(&da, 0, sizeof da);
    ca.fd = sv[0];
    ca.n = n < sizeof ca.hello ? n : sizeof ca.hello;
    memcpy(ca.hello, hello, ca.n);
    da.fd = ctl[0];
    da.script = script;
    pthread_t ct, dt;
    if (pthread_create(&ct, NULL, client_main, &ca) || pthread_create(&dt, NULL, daemon_main, &da)) die("thread");
    SSL *ssl = NULL;
    unsetenv("TF_FUZZ_GRANTED");
    int rc = tf_tls_start(ctx, sv[1], ctl[1], &ssl);
    shutdown(sv[1], SHUT_RDWR);
    shutdown(ctl[1], SHUT_RDWR);
    pthread_join(ct, NULL);
    pthread_join(dt, NULL);
    /* what the verdict must be */
    tf_hello_hdr h;
    int valid = ca.n >= sizeof h;
    if (valid) {
        memcpy(&h, ca.hello, sizeof h);
        valid = !memcmp(h.magic, TF_HELLO_MAGIC, 4) && h.version == TF_HELLO_VERSION && h.token_len <= TF_MAX_TOKEN &&
                ca.n >= sizeof h + h.token_len;
    }
    if (rc == 0 && !(valid && script == 1)) die("a session started from a bad hello or without a grant");
    if (rc == 0 && !getenv("TF_FUZZ_GRANTED")) die("the grant's environment was not applied");
    if (da.asked == 1 && (!valid || da.len != h.token_len || memcmp(da.token, ca.hello + sizeof h, da.len)))
        die("the token forwarded to the daemon is not the client's");
    if (valid && script == 1 && rc != 0) die("a valid hello with a grant was refused");
    if (rc == 0) { hello_ok++; SSL_free(ssl); }
    close(sv[0]); close(sv[1]); close(ctl[0]); close(ctl[1]);
    hello_cases++;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);   /* as main.c: a peer gone mid-write is an error, not a signal */
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    char dir[] = "/tmp/tf-fuzz-tls-XXXXXX", cert[256], key[256];
    if (!mkdtemp(dir)) die("mkdtemp");
    make_cert(dir, cert, key);
    SSL_CTX *ctx = tf_tls_server_ctx(cert, key, NULL);
    unlink(cert); unlink(key); rmdir(dir);
    if (!ctx) die("server context");

    uint8_t ch[4096], m[8192];
    size_t chn = client_hello(ch, sizeof ch);
    if (chn < 64) die("no ClientHello");
    tf_hello_hdr plain = {.version = TF_HELLO_VERSION, .token_len = 4};
    memcpy(plain.magic, TF_HELLO_MAGIC, 4);
    run_raw(ctx, ch, chn);              /* a whole ClientHello, then EOF */
    run_raw(ctx, (const uint8_t *)&plain, sizeof plain);
    run_raw(ctx, NULL, 0);
    for (int i = 0; i < rounds; i++) {
        size_t n;
        if (i % 4 == 3) {               /* random bytes */
            n = next_rand() % 512;
            for (size_t j = 0; j < n; j++) m[j] = (uint8_t)next_rand();
        } else {
            n = chn;
            memcpy(m, ch, n);
            mutate(m, &n, sizeof m);
        }
        run_raw(ctx, m, n);
    }

    uint8_t good[sizeof(tf_hello_hdr) + 32];
    tf_hello_hdr gh = {.version = TF_HELLO_VERSION, .token_len = 32};
    memcpy(gh.magic, TF_HELLO_MAGIC, 4);
    memcpy(good, &gh, sizeof gh);
    for (int j = 0; j < 32; j++) good[sizeof gh + j] = (uint8_t)('a' + j % 26);
    for (int s = 0; s < 6; s++) run_hello(ctx, good, sizeof good, s);   /* every daemon answer, valid hello */
    for (int i = 0; i < rounds; i++) {
        size_t n = sizeof good;
        memcpy(m, good, n);
        mutate(m, &n, sizeof m);
        run_hello(ctx, m, n, (int)(next_rand() % 6));
    }
    SSL_CTX_free(ctx);
    if (sessions_started) die("raw bytes started a session");
    if (hello_ok < 1) die("no valid session in the scripted cases (the harness is broken)");
    printf("fuzz_tls: %ld raw inputs refused, %ld hellos (%ld sessions granted), no crash\n", raw_cases,
           hello_cases, hello_ok);
    return 0;
}
