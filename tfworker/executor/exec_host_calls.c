/* exec_host_calls.c - the client's host functions and stream callbacks outside a capture
 * (cuLaunchHostFunc, cuStreamAddCallback through tfLaunchHostCall), run by the client while the real
 * stream waits, as CUDA runs them on a driver thread: the call returns at once, the function runs after
 * the stream's earlier work, the stream's later work waits until it returned.
 *
 * tfLaunchHostCall queues a trampoline on the backend's stream (its cuLaunchHostFunc or cuStreamAddCallback,
 * so the backend orders it). When the stream reaches it, the trampoline (on the backend's thread) writes a
 * tf_host_call_msg to the host-call channel and waits until the client answers with the call's id; the
 * stub's callback thread (stub_c/api_hostcalls.c) runs the function and answers. The channel is a socketpair
 * end the stub passed with tfHostChannelAttach, read here by a thread of its own: the answers never go
 * through the frame loop, which may be blocked in the backend waiting for that very stream (a synchronize,
 * a blocking copy). Many calls may be in flight (one per stream at most: the backend holds the stream).
 *
 * A client that dies or breaks the channel: the waiting trampolines return without the function having run
 * and the session ends (the main socket is shut down; watch.c ends a process stuck in a call), so the
 * process exits and the driver frees the session. Graph host nodes use the channel too when their launch is
 * not served (exec_graph.c: a graph without host-memory copies, launched asynchronously by the stub).
 * Called by the generated dispatch (ex_*) and tf_session_init (tfx_host_calls_load).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor.h"
#include "tf_fd_io.h"

typedef struct host_call {
    uint64_t id;
    int done;
    struct host_call *next;
} host_call;

static struct {
    pthread_mutex_t mu;     /* the fields below */
    pthread_cond_t cv;      /* an answer came, or the channel died */
    pthread_mutex_t wmu;    /* one writer at a time on the channel */
    int fd;                 /* the channel, -1 until attached */
    int dead;               /* the channel failed: trampolines return at once */
    int session_fd;         /* the client's main socket, shut down when the channel fails */
    host_call *waiting;
    CUresult (*launch_host_func)(CUstream, CUhostFn, void *);
    CUresult (*add_callback)(CUstream, CUstreamCallback, void *, unsigned int);
} hc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, -1, 0, -1, NULL, NULL, NULL};

void tfx_host_calls_load(void *lib)
{
    *(void **)&hc.launch_host_func = dlsym(lib, "cuLaunchHostFunc");
    *(void **)&hc.add_callback = dlsym(lib, "cuStreamAddCallback");
}

/* Holding hc.mu: the channel is unusable; the session cannot go on (calls of the client would be lost).
 * err 0: the client closed its end (it exits): said nowhere, as the end of the main socket. */
static void channel_dead_locked(const char *why, int err)
{
    if (!hc.dead && err) tfx_log("host-call channel: %s (%s): ending the session", why, strerror(err));
    hc.dead = 1;
    if (hc.session_fd >= 0) shutdown(hc.session_fd, SHUT_RDWR);
    pthread_cond_broadcast(&hc.cv);
}

static void unlink_locked(host_call *c)
{
    for (host_call **p = &hc.waiting; *p; p = &(*p)->next)
        if (*p == c) { *p = c->next; return; }
}

/* On the backend's thread, where the stream reached the call: ask the client, wait for its answer. */
static void ask_client(host_call *c, const tf_host_call_msg *req)
{
    tf_host_call_msg m = *req;
    pthread_mutex_lock(&hc.mu);
    if (!hc.dead) {
        c->next = hc.waiting;
        hc.waiting = c;
        pthread_mutex_unlock(&hc.mu);
        pthread_mutex_lock(&hc.wmu);
        int bad = tf_send_all(hc.fd, &m, sizeof m);
        int err = errno;
        pthread_mutex_unlock(&hc.wmu);
        pthread_mutex_lock(&hc.mu);
        if (bad) channel_dead_locked("cannot ask the client", err);
        while (!c->done && !hc.dead) pthread_cond_wait(&hc.cv, &hc.mu);  /* a slow function: the stream waits */
        unlink_locked(c);
    }
    pthread_mutex_unlock(&hc.mu);
    free(c);
}

static void run_on_client(host_call *c, CUresult status)
{
    tf_host_call_msg m = {.id = c->id, .status = (int32_t)status, .kind = TF_HOST_CALL_QUEUED};
    ask_client(c, &m);
}

/* A graph host node reached outside a served launch (exec_graph.c): run through the channel, the stream
 * waiting as for a host function. Ids of the worker's own count down from the top, apart from the
 * client's. -1 when there is no channel. */
int tfx_host_call_node(uint64_t fn, uint64_t data)
{
    static uint64_t next = UINT64_MAX;
    pthread_mutex_lock(&hc.mu);
    int ok = hc.fd >= 0 && !hc.dead;
    uint64_t id = next--;
    pthread_mutex_unlock(&hc.mu);
    if (!ok) return -1;
    host_call *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->id = id;
    tf_host_call_msg m = {.id = id, .status = 0, .kind = TF_HOST_CALL_NODE, .fn = fn, .data = data};
    ask_client(c, &m);
    return 0;
}

static void CUDA_CB host_fn_trampoline(void *p) { run_on_client(p, CUDA_SUCCESS); }

static void CUDA_CB callback_trampoline(CUstream s, CUresult status, void *p)
{
    (void)s;
    run_on_client(p, status);
}

/* The channel's reader: each answer names a waiting call; anything else ends the session. */
static void *answer_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (;;) {
        uint64_t id;
        if (tf_read_exact(fd, &id, sizeof id)) {
            int err = errno;   /* 0: the client closed its end */
            pthread_mutex_lock(&hc.mu);
            channel_dead_locked("the client's end is gone", err);
            pthread_mutex_unlock(&hc.mu);
            return NULL;
        }
        pthread_mutex_lock(&hc.mu);
        host_call *c = hc.waiting;
        while (c && c->id != id) c = c->next;
        if (c) {
            c->done = 1;
            pthread_cond_broadcast(&hc.cv);
        } else {
            channel_dead_locked("an answer for no call the worker asked", EPROTO);
        }
        int dead = hc.dead;
        pthread_mutex_unlock(&hc.mu);
        if (dead) return NULL;
    }
}

CUresult ex_tfHostChannelAttach(tfx *x, unsigned int version)
{
    int fd = x->rx_fd;
    x->rx_fd = -1;
    if (fd < 0) return CUDA_ERROR_INVALID_VALUE;
    struct stat st;
    pthread_mutex_lock(&hc.mu);
    int have = hc.fd >= 0;
    pthread_mutex_unlock(&hc.mu);
    if (have || version != TF_HOST_CHANNEL_VERSION || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        close(fd);   /* one channel per session, a socket, this wire version */
        return CUDA_ERROR_INVALID_VALUE;
    }
    pthread_attr_t a;
    pthread_t t;
    int rc = pthread_attr_init(&a);
    if (rc == 0) {
        rc = pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (rc == 0) rc = pthread_attr_setstacksize(&a, 64 * 1024);
        pthread_mutex_lock(&hc.mu);
        hc.fd = fd;   /* before the reader runs; nothing is queued before this call answers */
        hc.session_fd = x->fd;
        pthread_mutex_unlock(&hc.mu);
        if (rc == 0) rc = pthread_create(&t, &a, answer_reader, (void *)(intptr_t)fd);
        pthread_attr_destroy(&a);
    }
    if (rc != 0) {
        pthread_mutex_lock(&hc.mu);
        hc.fd = -1;
        pthread_mutex_unlock(&hc.mu);
        close(fd);
        return CUDA_ERROR_OPERATING_SYSTEM;
    }
    return CUDA_SUCCESS;
}

CUresult ex_tfLaunchHostCall(tfx *x, CUstream hStream, unsigned long long id, int kind, int *queued)
{
    (void)x;
    *queued = 0;
    if (kind != 0 && kind != 1) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&hc.mu);
    int ok = hc.fd >= 0 && !hc.dead;
    pthread_mutex_unlock(&hc.mu);
    if (!ok) return CUDA_ERROR_INVALID_VALUE;   /* no channel to run it through: refused, not dropped */
    if (!(kind == 0 ? (void *)hc.launch_host_func : (void *)hc.add_callback)) return CUDA_ERROR_NOT_SUPPORTED;
    host_call *c = calloc(1, sizeof *c);
    if (!c) return CUDA_ERROR_OUT_OF_MEMORY;
    c->id = id;
    CUresult rc = kind == 0 ? hc.launch_host_func(hStream, host_fn_trampoline, c)
                            : hc.add_callback(hStream, callback_trampoline, c, 0);
    if (rc != CUDA_SUCCESS) {
        free(c);
        return rc;
    }
    *queued = 1;
    return CUDA_SUCCESS;
}
