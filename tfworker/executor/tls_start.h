/* tls_start.h - start of a TLS data-plane session in tf-executor (tls_start.c): handshake, hello,
 * authorization through the daemon, the grant's environment. Used by main.c and tests/fuzz_tls.c. */
#ifndef TF_TLS_START_H
#define TF_TLS_START_H

#include <openssl/ssl.h>

/* control socket between the daemon and a TLS executor (contract with tfworker/dataplane.py):
 *   executor: "TFA1" u32 token_len                                    + token
 *   daemon:   "TFG1" i32 status u32 msg_len u32 env_len u32 preload_len + msg + env + preload
 * env is "NAME=VALUE\0" repeated (applied with setenv before the backend loads); preload is the
 * ':'-separated libraries the grant needs loaded in this process (the limiter): absent = refused. */
#define TF_AUTH_MAGIC "TFA1"
#define TF_GRANT_MAGIC "TFG1"
#define TF_GRANT_MAX_MSG 4096u
#define TF_GRANT_MAX_ENV 65536u
#define TF_GRANT_MAX_PRELOAD 4096u
#define TF_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TF_TLS_START_TIMEOUT_S 10   /* handshake + hello + authorization, each socket wait */

/* Server context from PEM files; ca (may be NULL) verifies client certificates a client presents.
 * NULL (logged) on any error. */
SSL_CTX *tf_tls_server_ctx(const char *cert, const char *key, const char *ca);

/* Runs the start of a session on the accepted TCP socket fd. 0: the client is authorized, the grant's
 * environment is applied and the client has its TFR1 accept; *out is the live TLS session (socket
 * timeouts cleared). -1: the session ends (the client was told why when it could be). */
int tf_tls_start(SSL_CTX *ctx, int fd, int control, SSL **out);

#endif
