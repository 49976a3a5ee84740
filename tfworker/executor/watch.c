/* watch.c - ends the GPU worker process as soon as its client is gone, even while the main thread is
 * stuck in a driver call that never returns (a synchronize behind an endless kernel, a launch the
 * emulator runs inline). Started by main.c before serving; the main thread keeps reading the socket.
 *
 * A thread polls the client socket for POLLRDHUP/POLLHUP/POLLERR only (no POLLIN: it never consumes
 * data and never wakes for ordinary traffic). A killed client's kernel closes its end (a TCP peer sends
 * FIN: RDHUP; a dead TCP host shows as POLLERR after keepalive). The main thread, when it is reading,
 * sees the same end at once and exits with its own verdict (0 = clean, 1 = cut mid-frame); so the
 * watcher leaves it WATCH_GRACE_NS, then ends the process with _exit(0) (nobody can read a reply any
 * more): the kernel and the driver free the session's device memory, the daemon sees the exit and ends
 * the session. A stub never half-closes its socket (stub_c/transport.c): a client that shut down its
 * sending side and still waits for answers is not served past the grace. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "executor.h"
#include "watch.h"

#define WATCH_GRACE_NS 1000000000L /* the main thread's turn to notice the end itself */

static void *watch_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};
        int n = poll(&p, 1, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            tfx_log("client watcher: poll: %s; ending the session (fail closed)", strerror(errno));
            _exit(1);
        }
        if (n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
            struct timespec ts = {.tv_sec = WATCH_GRACE_NS / 1000000000L, .tv_nsec = WATCH_GRACE_NS % 1000000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
            _exit(0); /* still here: the main thread is stuck in a call; the client is gone */
        }
    }
    return NULL;
}

int tf_watch_client(int fd)
{
    pthread_attr_t a;
    pthread_t t;
    if (pthread_attr_init(&a) != 0) return -1;
    int rc = pthread_attr_setstacksize(&a, 64 * 1024);
    if (rc == 0) rc = pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (rc == 0) rc = pthread_create(&t, &a, watch_main, (void *)(intptr_t)fd);
    pthread_attr_destroy(&a);
    return rc == 0 ? 0 : -1;
}
