/* main.c - entry point of tf-executor, the GPU worker process of one client session.
 * Spawned by tfworker/gpu_process.py with the client's socket (already handshaken by the daemon) as
 * file descriptor N:  tf-executor --fd N [--lib PATH]; on a TLS listener with the raw TCP socket and a
 * control socket to the daemon, before any handshake:
 *   tf-executor --fd N --control C --tls-cert PEM --tls-key PEM [--tls-ca PEM]
 * then tls_start.c makes the handshake, gets the client authorized and applies the grant's environment
 * before the backend is loaded. The backend is the libcuda.so.1 the dynamic
 * loader finds (the daemon points LD_LIBRARY_PATH at the emulator or leaves NVIDIA's driver; the
 * limiter may be LD_PRELOADed over it). Exits when the client disconnects - also while a driver call
 * blocks, through the socket watcher in watch.c: process exit frees the session's device memory and
 * every other driver object.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "executor.h"
#include "tls_start.h"
#include "watch.h"

static int parse_fd(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < 0 || v > 1 << 20) return -1;
    *out = (int)v;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: tf-executor --fd N [--lib libcuda.so.1] "
                    "[--control C --tls-cert PEM --tls-key PEM [--tls-ca PEM]]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int fd = -1, control = -1;
    const char *lib = "libcuda.so.1", *cert = NULL, *key = NULL, *ca = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
            if (parse_fd(argv[++i], &fd)) return usage();
        } else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
            if (parse_fd(argv[++i], &control)) return usage();
        } else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc) {
            cert = argv[++i];
        } else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc) {
            key = argv[++i];
        } else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc) {
            ca = argv[++i];
        } else if (strcmp(argv[i], "--lib") == 0 && i + 1 < argc) {
            lib = argv[++i];
        } else {
            return usage();
        }
    }
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) return usage();
    int tls = cert || key || ca || control >= 0;   /* all or nothing: never serve a TLS socket in clear */
    if (tls && (!cert || !key || control < 0 || fcntl(control, F_GETFD) < 0)) return usage();
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return 1;
    int fl = fcntl(fd, F_GETFL);  /* the daemon's event loop may have left it non-blocking */
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) return 1;
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  /* a session never outlives its daemon */
    SSL *ssl = NULL;
    if (tls) {
        SSL_CTX *ctx = tf_tls_server_ctx(cert, key, ca);
        if (!ctx) return 4;
        int rc = tf_tls_start(ctx, fd, control, &ssl);
        close(control);
        if (rc) return 4;   /* not authorized: no backend was loaded, no session existed */
    }
    /* device printf and diagnostics travel to the client with the replies (console.c) */
    if (tfx_console_start()) tfx_log("console capture unavailable: device printf stays in this process");
    void *h = dlopen(lib, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        tfx_log("cannot load the backend %s: %s", lib, dlerror());
        return 3;
    }
    static tfx x;
    if (tf_session_init(&x, h)) {
        tfx_log("backend %s did not initialise", lib);
        return 3;
    }
    x.ssl = ssl;
    /* a client that dies while a call blocks (an endless kernel) must still end the session */
    if (tf_watch_client(fd) != 0) {
        tfx_log("cannot start the client watcher: not serving");
        return 1;
    }
    int rc = tf_serve(&x, fd);
    close(fd);
    /* no teardown of driver objects: exiting frees them all at once */
    return rc == 0 ? 0 : 1;
}
