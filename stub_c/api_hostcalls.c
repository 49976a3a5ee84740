/* api_hostcalls.c - cuLaunchHostFunc and cuStreamAddCallback of the client stub, as CUDA runs them: the
 * call returns at once; the function runs on a thread of the stub's (never the caller's) after all earlier
 * work in the stream; later work in the stream waits until it returned; one stream's functions run in order.
 *
 * Each call gets an id and is kept here; tfLaunchHostCall has the GPU worker process queue a trampoline on
 * the real stream (tfworker/executor/exec_host_calls.c). When the stream reaches it, the worker asks over
 * the host-call channel - a socketpair whose other end went to the worker with tfHostChannelAttach at the
 * first call - and this file's callback thread runs the function and answers with the id; the stream goes
 * on. The channel is separate from the call connection, so a synchronize that holds the connection (and the
 * worker's frame loop) while the stream waits for a function cannot block the answer. Functions run one at
 * a time on that thread (so the order in a stream holds) and must not call CUDA, as CUDA requires.
 *
 * Graph host nodes use the same channel when their graph has no host-memory copies (the worker's message
 * then carries the node's fn and data). A stream being captured turns the function into a graph host node
 * (api_graph.c). Over TCP/TLS no
 * descriptor can travel: the function runs in the calling thread after a synchronize of the stream (the
 * former behaviour; the call then waits for the stream's earlier work). So does a function queued while
 * asynchronous copies to page-locked memory are waiting to be written here (api_copy_deferred.c): that
 * synchronize writes them, and the function sees their bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stub.h"
#include "stub_calls.h"
#include "tf_fd_io.h"

enum { KIND_HOST_FN = 0, KIND_CALLBACK = 1 };

typedef struct host_call {
    uint64_t id;
    int kind;
    CUhostFn fn;
    CUstreamCallback cb;
    void *data;
    CUstream stream;         /* as the program named it (handed to a callback) */
    struct host_call *next;
} host_call;

static struct {
    pthread_mutex_t mu;      /* everything below; never held around a forwarded call but the attach */
    int state;               /* 0 not tried, 1 channel up, -1 no channel (TCP/TLS: the synchronous path) */
    int fd;                  /* our end of the channel */
    uint64_t next_id;
    host_call *calls;        /* queued on the worker, not yet run */
} hs = {PTHREAD_MUTEX_INITIALIZER, 0, -1, 1, NULL};

static host_call *take_locked(uint64_t id)
{
    for (host_call **p = &hs.calls; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            host_call *c = *p;
            *p = c->next;
            return c;
        }
    }
    return NULL;
}

/* The callback thread: runs each function the worker asks for, then answers. The worker gone (the channel
 * closed): nothing is left to run for; the session's calls answer DEVICE_UNAVAILABLE by then. */
static void *callback_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (;;) {
        tf_host_call_msg m;
        if (tf_read_exact(fd, &m, sizeof m)) break;
        if (m.kind == TF_HOST_CALL_NODE) {   /* a graph host node: our own fn and data, given at its creation */
            ((CUhostFn)(uintptr_t)m.fn)((void *)(uintptr_t)m.data);
            if (tf_send_all(fd, &m.id, sizeof m.id)) break;
            continue;
        }
        pthread_mutex_lock(&hs.mu);
        host_call *c = m.kind == TF_HOST_CALL_QUEUED ? take_locked(m.id) : NULL;
        pthread_mutex_unlock(&hs.mu);
        if (!c) {
            tf_log("host-call channel: the worker asked for call %llu, which this process never queued",
                   (unsigned long long)m.id);
            break;   /* closing our end ends the session (exec_host_calls.c): never a silent skip */
        }
        if (c->kind == KIND_HOST_FN) c->fn(c->data);
        else c->cb(c->stream, (CUresult)m.status, c->data);
        free(c);
        if (tf_send_all(fd, &m.id, sizeof m.id)) break;
    }
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

/* A forked child must not hold the channel: the worker would not see its end close when the parent dies
 * (CUDA is unusable in the child anyway, transport.c). */
static void after_fork_in_child(void)
{
    if (hs.fd >= 0) close(hs.fd);
    hs.fd = -1;
    hs.state = -1;
    hs.calls = NULL;   /* the parent's; never run here */
    pthread_mutex_init(&hs.mu, NULL);
}

/* The channel, made at the first host call: 1 up, -1 not possible here (TCP/TLS), or a CUresult < 0. */
static CUresult channel_up(int *up)
{
    pthread_mutex_lock(&hs.mu);
    CUresult rc = CUDA_SUCCESS;
    if (hs.state == 0 && !tf_conn_is_unix()) hs.state = -1;
    static int atfork_set;
    if (hs.state == 0 && !atfork_set) {
        if (pthread_atfork(NULL, NULL, after_fork_in_child) != 0) rc = CUDA_ERROR_OPERATING_SYSTEM;
        else atfork_set = 1;
    }
    if (hs.state == 0 && rc == CUDA_SUCCESS) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            rc = CUDA_ERROR_OPERATING_SYSTEM;
        } else {
            tfc_call c;
            rc = enc_tfHostChannelAttach(&c, TF_HOST_CHANNEL_VERSION);
            if (rc == CUDA_SUCCESS) rc = tfc_sync_fd(&c, sv[1]);
            close(sv[1]);
            pthread_attr_t a;
            pthread_t t;
            if (rc == CUDA_SUCCESS) {
                int e = pthread_attr_init(&a);
                if (e == 0) {
                    e = pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
                    if (e == 0) e = pthread_create(&t, &a, callback_thread, (void *)(intptr_t)sv[0]);
                    pthread_attr_destroy(&a);
                }
                if (e != 0) rc = CUDA_ERROR_OPERATING_SYSTEM;
            }
            if (rc == CUDA_SUCCESS) {
                hs.fd = sv[0];
                hs.state = 1;
            } else {
                close(sv[0]);   /* if it was attached, the worker sees this end close and ends the session */
            }
        }
    }
    *up = hs.state;
    pthread_mutex_unlock(&hs.mu);
    return rc;
}

/* Graph launches (api_graph.c): 1 when host nodes can call back over the channel (it is made if need be). */
int tf_host_channel_ready(void)
{
    int up = 0;
    return channel_up(&up) == CUDA_SUCCESS && up > 0;
}

static CUresult queue_host_call(CUstream hStream, int kind, CUhostFn fn, CUstreamCallback cb, void *data)
{
    host_call *c = calloc(1, sizeof *c);
    if (!c) return CUDA_ERROR_OUT_OF_MEMORY;
    c->kind = kind;
    c->fn = fn;
    c->cb = cb;
    c->data = data;
    c->stream = hStream;
    pthread_mutex_lock(&hs.mu);
    c->id = hs.next_id++;
    c->next = hs.calls;   /* kept before the worker can ask for it */
    hs.calls = c;
    uint64_t id = c->id;
    pthread_mutex_unlock(&hs.mu);
    int queued = 0;
    CUresult rc = rpc_tfLaunchHostCall(hStream, id, kind, &queued);
    if (!queued) {   /* refused: it will never be asked for (queued with an earlier error latched: kept) */
        pthread_mutex_lock(&hs.mu);
        free(take_locked(id));
        pthread_mutex_unlock(&hs.mu);
    }
    return rc;
}

CUresult tfs_cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    NEED_INIT();
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    int captured;  /* into a graph, as a host node that calls back here (api_graph.c) */
    CUresult rc = tf_capture_host_func(hStream, fn, userData, &captured);
    if (captured || rc) return rc;
    int up;
    if ((rc = channel_up(&up))) return rc;
    /* copies still to be written here (api_copy_deferred.c) must land before the function runs */
    if (up > 0 && !tf_deferred_pending()) return queue_host_call(hStream, KIND_HOST_FN, fn, NULL, userData);
    rc = tfs_cuStreamSynchronize(hStream);   /* TCP/TLS: in the caller, in stream order */
    if (rc) return rc;
    fn(userData);
    return CUDA_SUCCESS;
}

CUresult tfs_cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData, unsigned int flags)
{
    NEED_INIT();
    if (!callback || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    int up;
    CUresult rc = channel_up(&up);
    if (rc) return rc;
    if (up > 0 && !tf_deferred_pending()) return queue_host_call(hStream, KIND_CALLBACK, NULL, callback, userData);
    rc = tfs_cuStreamSynchronize(hStream);   /* TCP/TLS: in the caller, in stream order */
    if (rc == CUDA_ERROR_INVALID_HANDLE || rc == CUDA_ERROR_INVALID_CONTEXT || rc == CUDA_ERROR_NOT_INITIALIZED)
        return rc;
    callback(hStream, rc, userData);
    return CUDA_SUCCESS;
}
