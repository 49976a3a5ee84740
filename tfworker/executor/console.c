/* console.c - the GPU worker process's console, forwarded to the client: device printf output (which
 * every backend writes to the process's stdout where CUDA flushes its printf FIFO - NVIDIA's driver and
 * the emulator alike) and diagnostics (stderr lines of the emulator, the limiter and this executor: an
 * unsupported call or PTX instruction, a kernel fault).
 * tfx_console_start() points fd 1 and fd 2 at pipes; a thread drains them (so a backend never blocks on a
 * full pipe) into one ordered buffer of tf_console records, and copies the stderr bytes to the original
 * stderr (the worker's log) at once. executor.c appends the records gathered so far to each reply
 * (tfx_console_take); the stub writes them to the client's stdout / stderr before the call returns.
 * Started by main.c; never by the fuzz harness (tf_session_init), where nothing is captured.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor.h"
#include "tf_fd_io.h"

/* What one session may have pending: beyond it, output is dropped (the backend's own printf FIFO
 * normally bounds it long before). */
#define CONSOLE_MAX (64u << 20)

static struct {
    int started;
    int rfd[2];          /* read ends: [0] of stdout's pipe, [1] of stderr's */
    int log_fd;          /* the original stderr (the worker's log) */
    pthread_mutex_t mu;
    uint8_t *buf;        /* tf_console records, in the order the bytes were read */
    size_t len, cap;
    uint8_t *out;        /* handed to the caller of tfx_console_take (valid until the next take) */
    size_t out_cap;
} g_con = {.rfd = {-1, -1}, .log_fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

/* Appends one record (under g_con.mu). */
static void add_record(uint32_t fd, const uint8_t *p, size_t n)
{
    size_t need = sizeof(tf_console) + tf_pad8(n);
    if (g_con.len + need > CONSOLE_MAX) return;
    if (g_con.len + need > g_con.cap) {
        size_t cap = g_con.cap ? g_con.cap : 65536;
        while (cap < g_con.len + need) cap *= 2;
        uint8_t *b = realloc(g_con.buf, cap);
        if (!b) return;
        g_con.buf = b;
        g_con.cap = cap;
    }
    tf_console h = {.fd = fd, .len = (uint32_t)n};
    memcpy(g_con.buf + g_con.len, &h, sizeof h);
    memcpy(g_con.buf + g_con.len + sizeof h, p, n);
    memset(g_con.buf + g_con.len + sizeof h + n, 0, tf_pad8(n) - n);
    g_con.len += need;
}

/* Reads what is in the pipes now (non-blocking), under g_con.mu: reads happen only under the lock, so
 * records keep the order the bytes were written in. One poll() when both are empty (every reply asks).
 * Returns the number of bytes read. */
static size_t drain_locked(void)
{
    uint8_t chunk[65536];
    size_t total = 0;
    struct pollfd p[2] = {{g_con.rfd[0], POLLIN, 0}, {g_con.rfd[1], POLLIN, 0}};
    if (poll(p, 2, 0) <= 0) return 0;
    for (int i = 0; i < 2; i++) {
        if (!(p[i].revents & POLLIN)) continue;
        for (;;) {
            ssize_t k = read(g_con.rfd[i], chunk, sizeof chunk);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break;
            if (i == 1) (void)tf_write_all(g_con.log_fd, chunk, (size_t)k);
            add_record(i == 0 ? 1u : 2u, chunk, (size_t)k);
            total += (size_t)k;
        }
    }
    return total;
}

static void *drain_thread(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct pollfd p[2] = {{g_con.rfd[0], POLLIN, 0}, {g_con.rfd[1], POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) return NULL;
        pthread_mutex_lock(&g_con.mu);
        drain_locked();
        pthread_mutex_unlock(&g_con.mu);
        if ((p[0].revents | p[1].revents) & (POLLHUP | POLLERR | POLLNVAL)) return NULL;
    }
}

/* A dying executor still leaves its last diagnostics in the worker's log. */
static void on_fatal(int sig)
{
    uint8_t chunk[4096];
    ssize_t k;
    while ((k = read(g_con.rfd[1], chunk, sizeof chunk)) > 0) (void)tf_write_all(g_con.log_fd, chunk, (size_t)k);
    signal(sig, SIG_DFL);
    raise(sig);
}

int tfx_console_start(void)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC)) return -1;
    if (pipe2(err, O_CLOEXEC)) { close(out[0]); close(out[1]); return -1; }
    g_con.log_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (g_con.log_fd < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) return -1;
    close(out[1]);
    close(err[1]);
    g_con.rfd[0] = out[0];
    g_con.rfd[1] = err[0];
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(g_con.rfd[i], F_GETFL);
        if (fl < 0 || fcntl(g_con.rfd[i], F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, drain_thread, NULL)) return -1;
    pthread_detach(t);
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], on_fatal);
    g_con.started = 1;
    return 0;
}

size_t tfx_console_take(const uint8_t **records)
{
    *records = NULL;
    if (!g_con.started) return 0;
    pthread_mutex_lock(&g_con.mu);
    drain_locked();  /* what the call being answered wrote is in the pipes already: take it too */
    size_t n = g_con.len;
    if (n > g_con.out_cap) {
        uint8_t *b = realloc(g_con.out, n);
        if (!b) n = 0;
        else { g_con.out = b; g_con.out_cap = n; }
    }
    if (n) memcpy(g_con.out, g_con.buf, n);
    g_con.len = 0;
    pthread_mutex_unlock(&g_con.mu);
    *records = g_con.out;
    return n;
}
