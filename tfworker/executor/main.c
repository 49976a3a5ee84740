/* main.c - entry point of tf-executor, the GPU worker process of one client session.
 * Spawned by tfworker/gpu_process.py with the client's socket (already handshaken by the daemon) as
 * file descriptor N:  tf-executor --fd N [--lib PATH]. The backend is the libcuda.so.1 the dynamic
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
#include "watch.h"

static int usage(void)
{
    fprintf(stderr, "usage: tf-executor --fd N [--lib libcuda.so.1]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int fd = -1;
    const char *lib = "libcuda.so.1";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1 << 20) return usage();
            fd = (int)v;
        } else if (strcmp(argv[i], "--lib") == 0 && i + 1 < argc) {
            lib = argv[++i];
        } else {
            return usage();
        }
    }
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) return usage();
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return 1;
    int fl = fcntl(fd, F_GETFL);  /* the daemon's event loop may have left it non-blocking */
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) return 1;
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  /* a session never outlives its daemon */
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
