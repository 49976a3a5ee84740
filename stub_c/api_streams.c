/* api_streams.c - what the client stub does so that its threads' streams stay independent although the
 * GPU worker process runs every client thread's calls on its one thread, over one connection:
 *
 * 1. Each client thread gets its own per-thread default stream. CUDA gives every host thread its own
 *    CU_STREAM_PER_THREAD (also the implicit stream of the _ptsz/_ptds entry points that a program built
 *    with --default-stream per-thread calls); forwarded as is, it would be the executor thread's one for
 *    all client threads, and thread B's work would wait behind thread A's. At a thread's first use in a
 *    context, the stub creates a worker stream with flags 0 (a blocking stream: it synchronizes with the
 *    legacy NULL stream and not with other streams, which is what CUDA's per-thread stream does), and the
 *    generated marshalling (enc_* in build/stub/gen/stub_calls.c, via tf_stream_wire) sends it in place of
 *    CU_STREAM_PER_THREAD for every CUstream parameter of every forwarded call. A thread's streams are
 *    destroyed when it exits; the rest go with the session (the GPU worker process exits). Forgotten, not
 *    destroyed, when their context was destroyed or reset (tf_thread_streams_forget): the worker freed them.
 *
 * 2. Waits that do not hold the connection. A blocking cuStreamSynchronize / cuEventSynchronize holds the
 *    connection (and the executor's thread) until the work is done, so every other client thread's calls
 *    would wait too. Once more than one thread has called the driver (transport.c counts them), and no
 *    capture is live (whose rules differ between a query and a synchronize), the stub waits by querying
 *    with a growing pause between queries (20 us up to 2 ms), letting other threads' calls through. A
 *    single-threaded program keeps the one blocking round trip.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------ per-thread default streams */
#define MAX_THREAD_CTXS 8
typedef struct thread_streams {
    int n;
    struct { CUcontext ctx; CUstream s; unsigned gen; } e[MAX_THREAD_CTXS];
} thread_streams;

/* Contexts destroyed or reset, with the generation that counts them: a thread's stream made in one of
 * them before that generation is gone with it. The last DEAD_RING are kept; a stream older than all of
 * them is forgotten too (at worst a new stream, never a gone one). */
#define DEAD_RING 64
static unsigned g_gen;
static CUcontext g_dead[DEAD_RING];
static pthread_mutex_t g_dead_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static __thread thread_streams *t_ts;

void tf_thread_streams_forget(CUcontext ctx)
{
    pthread_mutex_lock(&g_dead_mu);
    unsigned gen = __atomic_load_n(&g_gen, __ATOMIC_ACQUIRE);
    g_dead[gen % DEAD_RING] = ctx;
    __atomic_store_n(&g_gen, gen + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&g_dead_mu);
}

/* 1 if a stream made in ctx at generation `made` still exists (its context was not destroyed since). */
static int still_alive(CUcontext ctx, unsigned made, unsigned now)
{
    if (now - made > DEAD_RING) return 0;
    pthread_mutex_lock(&g_dead_mu);
    int alive = 1;
    for (unsigned g = made; g != now && alive; g++)
        if (g_dead[g % DEAD_RING] == ctx) alive = 0;
    pthread_mutex_unlock(&g_dead_mu);
    return alive;
}

/* Thread exit: its per-thread streams go (a stream destroyed with work pending finishes that work first,
 * as cuStreamDestroy says). A failure has no caller to go to; the session's end frees what is left. */
static void thread_streams_free(void *p)
{
    thread_streams *ts = p;
    t_ts = NULL;   /* runs on the exiting thread: a later call there starts afresh */
    unsigned gen = __atomic_load_n(&g_gen, __ATOMIC_ACQUIRE);
    for (int i = 0; i < ts->n; i++)
        if (ts->e[i].gen == gen || still_alive(ts->e[i].ctx, ts->e[i].gen, gen))
            (void)rpc_cuStreamDestroy_v2(ts->e[i].s);
    free(ts);
}

static void key_make(void)
{
    if (pthread_key_create(&g_key, thread_streams_free) != 0) abort();  /* only EAGAIN/ENOMEM: no way on */
}

/* This thread's stream for the current context; *out = NULL and 0 if none exists yet. */
static int lookup(CUcontext ctx, CUstream *out)
{
    thread_streams *ts = t_ts;
    *out = NULL;
    if (!ts) return 0;
    unsigned gen = __atomic_load_n(&g_gen, __ATOMIC_ACQUIRE);
    for (int i = 0; i < ts->n; i++) {
        if (ts->e[i].gen != gen) {
            if (!still_alive(ts->e[i].ctx, ts->e[i].gen, gen)) {   /* its context went: drop it */
                ts->e[i--] = ts->e[--ts->n];
                continue;
            }
            ts->e[i].gen = gen;
        }
        if (ts->e[i].ctx == ctx) {
            *out = ts->e[i].s;
            return 1;
        }
    }
    return 0;
}

CUresult tf_thread_stream(CUstream *hStream)
{
    CUcontext ctx = NULL;
    CUresult rc = tfs_cuCtxGetCurrent(&ctx);
    if (rc) return rc;
    CUstream s;
    if (lookup(ctx, &s)) {
        *hStream = s;
        return CUDA_SUCCESS;
    }
    if (pthread_once(&g_key_once, key_make) != 0) return CUDA_ERROR_OPERATING_SYSTEM;
    if (!t_ts) {
        t_ts = calloc(1, sizeof *t_ts);
        if (!t_ts) return CUDA_ERROR_OUT_OF_MEMORY;
        if (pthread_setspecific(g_key, t_ts) != 0) {
            free(t_ts);
            t_ts = NULL;
            return CUDA_ERROR_OPERATING_SYSTEM;
        }
    }
    if (t_ts->n == MAX_THREAD_CTXS) {   /* the oldest context's stream goes (it is this thread's alone) */
        (void)rpc_cuStreamDestroy_v2(t_ts->e[0].s);
        t_ts->e[0] = t_ts->e[--t_ts->n];
    }
    unsigned gen = __atomic_load_n(&g_gen, __ATOMIC_ACQUIRE);
    rc = rpc_cuStreamCreate(&s, CU_STREAM_DEFAULT);   /* no current context: INVALID_CONTEXT, as CUDA */
    if (rc) return rc;
    t_ts->e[t_ts->n].ctx = ctx;
    t_ts->e[t_ts->n].s = s;
    t_ts->e[t_ts->n].gen = gen;
    t_ts->n++;
    *hStream = s;
    return CUDA_SUCCESS;
}

CUstream tf_stream_key(CUstream hStream)
{
    if (hStream != CU_STREAM_PER_THREAD) return hStream;
    CUcontext ctx = NULL;
    CUstream s;
    if (tfs_cuCtxGetCurrent(&ctx) || !lookup(ctx, &s)) return hStream;
    return s;
}

/* ------------------------------------------------------------------- waits that let others in */
static int wait_by_query(void) { return tfc_threads_seen() > 1 && !tf_capture_any_live(); }

static void pause_us(unsigned us)
{
    struct timespec t = {0, (long)us * 1000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

static CUresult poll_until_done(CUresult (*query)(void *), void *h)
{
    for (unsigned us = 20;; us = us < 1000 ? us * 2 : 2000) {
        CUresult rc = query(h);
        if (rc != CUDA_ERROR_NOT_READY) return rc;
        pause_us(us);
    }
}

static CUresult query_stream(void *h) { return rpc_cuStreamQuery((CUstream)h); }
static CUresult query_event(void *h) { return rpc_cuEventQuery((CUevent)h); }

CUresult tfs_cuStreamSynchronize(CUstream hStream)
{
    NEED_INIT();
    CUresult rc = tf_stream_wire(&hStream);   /* once, not at every query */
    if (rc) return rc;
    if (!wait_by_query()) return rpc_cuStreamSynchronize(hStream);
    return poll_until_done(query_stream, hStream);
}

CUresult tfs_cuEventSynchronize(CUevent hEvent)
{
    NEED_INIT();
    if (!wait_by_query()) return rpc_cuEventSynchronize(hEvent);
    return poll_until_done(query_event, hEvent);
}
