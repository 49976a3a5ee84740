/* tls.h - the stub's TLS client (tls.c) for TF_WORKER=tls:HOST:PORT, used by transport.c. */
#ifndef TF_STUB_TLS_H
#define TF_STUB_TLS_H

#include <stddef.h>
#include <sys/types.h>
#include <cuda.h>

typedef struct tf_tls tf_tls;

/* TLS handshake as a client on the connected socket fd, verifying the worker's certificate against
 * TF_TLS_CA (else the system's CAs) and the name `host` (TF_TLS_SERVER_NAME overrides it); presents
 * TF_TLS_CERT/TF_TLS_KEY when set. NULL on any failure, logged in one line, with *rc set
 * (NOT_PERMITTED: the worker's certificate is not trusted or the client's setup is unusable;
 * NO_DEVICE: the link failed). */
tf_tls *tf_tls_connect(int fd, const char *host, CUresult *rc);

/* read(): >0 bytes, 0 at the end of the session, -1 with errno. */
ssize_t tf_tls_read(tf_tls *t, void *p, size_t n);
/* Writes all n bytes (one TLS record per 16 KiB): 0, or -1 with errno. */
int tf_tls_write(tf_tls *t, const void *p, size_t n);
/* 1 when bytes are buffered inside the TLS layer (a poll on the socket would not see them). */
int tf_tls_pending(tf_tls *t);
/* Frees the session without a word to the peer (connection lost, or a forked child's copy). */
void tf_tls_free(tf_tls *t);

#endif
