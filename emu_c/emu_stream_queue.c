/* emu_stream_queue.c - asynchronous streams of the emulated device: each stream's work in order on a
 * host thread of its own. Called by every file that issues stream work (emu_launch.c, emu_memory.c,
 * emu_graph.c, emu_streammem.c, emu_array.c) and by the synchronizing calls (emu_context.c, ...).
 *
 * The model (CUDA's "Stream synchronization behavior" and "API synchronization behavior"):
 * - A queue per stream: created streams (emu_stream.q), each context's legacy NULL stream
 *   (emu_ctx.legacy_q) and each host thread's per-thread default stream (CU_STREAM_PER_THREAD).
 *   An API call that issues work appends an operation and returns; the queue's thread (started at the
 *   first operation) runs operations one after another. Kernels of different queues run at once.
 *   A blocking operation (a synchronous copy), a short one (a copy or memset of at most
 *   EMU_SQ_SHORT_BYTES) or a stageable one (an asynchronous copy from pageable memory) issued to an idle
 *   queue of the caller's context with no pending legacy-stream dependency is run by the caller under the
 *   queue's next sequence number: the hand-off to the queue's thread and back costs two thread wake-ups
 *   (a 4 KiB cuMemcpyHtoD took 9.5 us, now 0.15 us); a stageable operation is staged only when queued.
 *   An event recorded on such an idle queue completes at the call, for the same reason.
 * - Legacy default stream: an operation on the NULL stream first waits for the work already issued
 *   to every blocking stream of its context (not CU_STREAM_NON_BLOCKING ones); an operation on a
 *   blocking stream first waits for the work already issued to the NULL stream. Those waits, and
 *   cuStreamWaitEvent's, are dependencies (queue, sequence number) checked before an operation runs.
 * - Errors: a sticky error (kernel fault) marks the context (emu_ctx_set_sticky); later operations of
 *   that context are skipped (host callbacks are told the error, host functions are not called), and
 *   every call reports it. Another error of an asynchronous operation is latched on its queue and
 *   returned by the next synchronize or query of that stream (or of the context).
 * - A stream thread runs each operation with the queue's context current; work that an operation
 *   issues itself (a graph's nodes, a host callback that breaks the rule and calls CUDA) runs inline.
 * - TF_EMU_SYNC_STREAMS=1 (debugging only): every operation runs inline in the calling thread, the
 *   emulator's former synchronous model.
 * - Process exit waits for queued work while it progresses (a queue stalled for 2 s is abandoned);
 *   a forked child has none of the parent's threads and never waits for them.
 * Lock order: emu_lock (g_emu.lock) may be held when g_mu is taken, never the reverse; nothing waits
 * for a queue while holding emu_lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emu_internal.h"

extern __typeof__(ptx_thread_release) ptx_thread_release __attribute__((weak));

typedef struct sq_dep {
    emu_queue *q;
    uint64_t seq;
} sq_dep;

typedef struct sq_op {
    struct sq_op *next;
    uint64_t seq;
    emu_op_run run;
    emu_op_drop drop;
    size_t ndeps;
    sq_dep *deps;
    _Alignas(max_align_t) unsigned char arg[];
} sq_op;

struct emu_queue {
    emu_queue *next_all;      /* g_all */
    emu_ctx *ctx;
    int legacy;               /* the context's NULL stream */
    int blocking;             /* synchronizes with the legacy NULL stream */
    int refs;                 /* handle/owner, thread, dependencies and events naming it */
    int closing;              /* owner gone: the thread exits once the queue is empty */
    int ctx_dead;             /* its context was destroyed: operations are skipped */
    int thread_live;
    sq_op *head, *tail;
    uint64_t enq, done;       /* last sequence number issued / completed */
    CUresult err;             /* first non-sticky error of an asynchronous operation, until reported */
    pthread_cond_t wake;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER; /* broadcast on every completion */
static emu_queue *g_all;
static int g_abandon, g_forked;
static uint64_t g_last_progress_ns;
static __thread emu_queue *t_worker; /* set on a stream thread */
static __thread emu_queue *t_ptds;   /* this thread's per-thread default stream */
static __thread int t_ptds_call;     /* inside a _ptsz/_ptds entry point: NULL is the per-thread stream */
static pthread_key_t g_ptds_key;
static __thread emu_stream *t_ptds_rec; /* its stream record (id, capture state): emu_stream_canon */
static pthread_key_t g_ptds_rec_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_sync_mode;

static void atfork_child(void)
{
    /* the child has none of the threads behind these queues: forget them (the emulator refuses an
     * inherited context anyway, see emu_init.c) */
    pthread_mutex_init(&g_mu, NULL);
    pthread_cond_init(&g_done, NULL);
    g_all = NULL;
    g_forked = 1;
    t_ptds = NULL;
    t_ptds_rec = NULL;
}

static void queue_unref_locked(emu_queue *q);

static void ptds_exit(void *p)
{
    emu_queue *q = p;
    pthread_mutex_lock(&g_mu);
    if (!g_forked) {
        q->closing = 1;
        pthread_cond_signal(&q->wake);
        queue_unref_locked(q);
    }
    pthread_mutex_unlock(&g_mu);
}

/* Drops a per-thread stream record: its handle, its capture state, its reference to the queue. Called
 * without g_mu or emu_lock held (emu_handle_del takes emu_lock). */
static void ptds_rec_free(void *p)
{
    emu_stream *rec = p;
    emu_handle_del(rec);
    pthread_mutex_lock(&g_mu);
    if (!g_forked)
        queue_unref_locked(rec->q);
    pthread_mutex_unlock(&g_mu);
    free(rec->cap_deps);
    free(rec);
}

static void once_init(void)
{
    const char *e = getenv("TF_EMU_SYNC_STREAMS");
    g_sync_mode = e && e[0] == '1';
    if (pthread_key_create(&g_ptds_key, ptds_exit) || pthread_key_create(&g_ptds_rec_key, ptds_rec_free))
        g_sync_mode = 1; /* no per-thread streams without the key: run everything inline */
    pthread_atfork(NULL, NULL, atfork_child);
}

int emu_sq_inline(void)
{
    pthread_once(&g_once, once_init);
    return g_sync_mode || t_worker != NULL;
}

int emu_sq_abandoned(void) { return __atomic_load_n(&g_abandon, __ATOMIC_RELAXED); }

static emu_queue *queue_new_locked(emu_ctx *c, int legacy, int blocking)
{
    emu_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    if (pthread_cond_init(&q->wake, NULL)) {
        free(q);
        return NULL;
    }
    q->ctx = c;
    q->legacy = legacy;
    q->blocking = blocking;
    q->refs = 1;
    q->next_all = g_all;
    g_all = q;
    return q;
}

static void queue_unref_locked(emu_queue *q)
{
    if (--q->refs > 0)
        return;
    for (emu_queue **pp = &g_all; *pp; pp = &(*pp)->next_all) {
        if (*pp == q) {
            *pp = q->next_all;
            break;
        }
    }
    pthread_cond_destroy(&q->wake);
    free(q);
}

emu_queue *emu_sq_new(emu_ctx *c, unsigned stream_flags)
{
    pthread_once(&g_once, once_init);
    pthread_mutex_lock(&g_mu);
    emu_queue *q = queue_new_locked(c, 0, !(stream_flags & CU_STREAM_NON_BLOCKING));
    pthread_mutex_unlock(&g_mu);
    return q;
}

void emu_sq_release(emu_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&g_mu);
    q->closing = 1;
    pthread_cond_signal(&q->wake);
    queue_unref_locked(q);
    pthread_mutex_unlock(&g_mu);
}

/* The queue of stream handle s in context c (created on first use for the NULL and per-thread
 * streams); NULL when it cannot be made. s has passed emu_stream_check. */
static emu_queue *resolve_locked(CUstream s, emu_ctx *c)
{
    if (s == NULL && t_ptds_call)
        s = CU_STREAM_PER_THREAD;
    if (s == NULL || s == CU_STREAM_LEGACY) {
        if (!c)
            return NULL;
        if (!c->legacy_q)
            c->legacy_q = queue_new_locked(c, 1, 0);
        return c->legacy_q;
    }
    if (s == CU_STREAM_PER_THREAD) {
        if (t_ptds && (t_ptds->ctx != c || t_ptds->ctx_dead)) {
            emu_queue *old = t_ptds;
            t_ptds = NULL;
            old->closing = 1;
            pthread_cond_signal(&old->wake);
            queue_unref_locked(old);
        }
        if (!t_ptds && c) {
            t_ptds = queue_new_locked(c, 0, 1); /* "not a non-blocking stream" (cuda.h) */
            if (t_ptds)
                pthread_setspecific(g_ptds_key, t_ptds);
        }
        return t_ptds;
    }
    return ((emu_stream *)s)->q;
}

/* CU_STREAM_PER_THREAD (or NULL inside a _ptsz/_ptds entry point) -> this thread's per-thread default
 * stream in the current context as a stream record of its own, made at first use: its own id, flags 0,
 * and capture state, so two threads' per-thread streams are two streams (cuStreamGetId differs, each
 * may be captured). Any other handle is returned as it is. */
CUstream emu_stream_canon(CUstream s)
{
    if (s == NULL && t_ptds_call)
        s = CU_STREAM_PER_THREAD;
    if (s != CU_STREAM_PER_THREAD)
        return s;
    pthread_once(&g_once, once_init);
    emu_ctx *c = emu_ctx_current();
    pthread_mutex_lock(&g_mu);
    emu_queue *q = resolve_locked(s, c);
    if (q)
        q->refs++; /* the record's reference, or dropped below */
    pthread_mutex_unlock(&g_mu);
    if (!q)
        return s;
    emu_stream *rec = t_ptds_rec;
    if (rec && rec->q == q) {
        pthread_mutex_lock(&g_mu);
        queue_unref_locked(q);
        pthread_mutex_unlock(&g_mu);
        return (CUstream)rec;
    }
    if (rec) { /* the thread's stream of a context that is gone */
        t_ptds_rec = NULL;
        pthread_setspecific(g_ptds_rec_key, NULL);
        ptds_rec_free(rec);
    }
    rec = calloc(1, sizeof(*rec));
    if (!rec || emu_handle_add(rec, EMU_K_STREAM)) {
        free(rec);
        pthread_mutex_lock(&g_mu);
        queue_unref_locked(q);
        pthread_mutex_unlock(&g_mu);
        return s;
    }
    rec->ctx = c;
    rec->id = atomic_fetch_add(&g_emu.next_id, 1);
    rec->q = q;
    t_ptds_rec = rec;
    pthread_setspecific(g_ptds_rec_key, rec);
    return (CUstream)rec;
}

/* Whether the legacy-stream rules order x's pending work before a new operation of q (g_mu held). */
static int legacy_dep_pending(const emu_queue *q, const emu_queue *x)
{
    int dep = q->legacy ? (x != q && x->blocking && x->ctx == q->ctx && !x->legacy)
                        : (q->blocking && x->legacy && x->ctx == q->ctx);
    return dep && x->done < x->enq;
}

/* Sequence numbers the legacy-stream rules make an operation of q wait for (refs taken). */
static size_t legacy_deps_locked(emu_queue *q, sq_dep **out)
{
    size_t n = 0, cap = 0;
    sq_dep *d = NULL;
    for (emu_queue *x = g_all; x; x = x->next_all) {
        if (!legacy_dep_pending(q, x))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            sq_dep *nd = realloc(d, cap * sizeof(*d));
            if (!nd)
                break; /* out of memory: fewer dependencies (ordering still holds per stream) */
            d = nd;
        }
        d[n].q = x;
        d[n].seq = x->enq;
        x->refs++;
        n++;
    }
    *out = d;
    return n;
}

static void deps_release_locked(sq_dep *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        queue_unref_locked(d[i].q);
    free(d);
}

static CUresult status_of(emu_queue *q)
{
    if (q->ctx_dead)
        return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    return q->ctx ? __atomic_load_n(&q->ctx->sticky, __ATOMIC_RELAXED) : CUDA_SUCCESS;
}

/* Runs one operation of q (without g_mu) and marks a sticky error on its context; returns its result. */
static CUresult run_op(emu_queue *q, emu_op_run run, emu_op_drop drop, void *arg, CUresult st, int skip)
{
    CUresult rc = skip ? CUDA_ERROR_CONTEXT_IS_DESTROYED : run(arg, st);
    if (rc != CUDA_SUCCESS && rc != st && !skip && emu_is_sticky_error(rc) && !q->ctx_dead)
        emu_ctx_set_sticky(q->ctx, rc);
    if (drop)
        drop(arg);
    return rc;
}

/* Operation `seq` of q is done (g_mu held): latches a non-sticky error for the next synchronize or
 * query, and wakes every waiter. */
static void complete_locked(emu_queue *q, uint64_t seq, CUresult rc, CUresult st, int skip)
{
    if (rc != CUDA_SUCCESS && rc != st && !skip && !emu_is_sticky_error(rc) && q->err == CUDA_SUCCESS)
        q->err = rc;
    q->done = seq;
    g_last_progress_ns = emu_now_ns();
    pthread_cond_broadcast(&g_done);
}

static void *worker_main(void *arg)
{
    emu_queue *q = arg;
    t_worker = q;
    emu_ctx_bind_thread(q->ctx);
    pthread_mutex_lock(&g_mu);
    for (;;) {
        while (!q->head && !q->closing)
            pthread_cond_wait(&q->wake, &g_mu);
        sq_op *op = q->head;
        if (!op)
            break;
        q->head = op->next;
        if (!q->head)
            q->tail = NULL;
        for (size_t i = 0; i < op->ndeps; i++)
            while (op->deps[i].q->done < op->deps[i].seq && !g_abandon)
                pthread_cond_wait(&g_done, &g_mu);
        while (q->done + 1 < op->seq && !g_abandon) /* an operation its caller runs (emu_sq_submit) */
            pthread_cond_wait(&g_done, &g_mu);
        int skip = g_abandon;
        CUresult st = status_of(q);
        pthread_mutex_unlock(&g_mu);
        CUresult rc = run_op(q, op->run, op->drop, op->arg, st, skip);
        pthread_mutex_lock(&g_mu);
        complete_locked(q, op->seq, rc, st, skip);
        deps_release_locked(op->deps, op->ndeps);
        free(op);
    }
    q->thread_live = 0;
    pthread_cond_broadcast(&g_done);
    queue_unref_locked(q);
    pthread_mutex_unlock(&g_mu);
    if (ptx_thread_release)
        ptx_thread_release(); /* the block buffers its launches kept */
    return NULL;
}

/* Appends op to q (g_mu held), with the legacy-stream dependencies and `extra` (a ref is taken);
 * starts q's thread. 0, or -1 when no thread can be started (op not queued). */
static int enqueue_locked(emu_queue *q, sq_op *op, const sq_dep *extra)
{
    if (!q->thread_live) {
        pthread_t th;
        pthread_attr_t at;
        if (pthread_attr_init(&at))
            return -1;
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        q->refs++; /* the thread's */
        int rc = pthread_create(&th, &at, worker_main, q);
        pthread_attr_destroy(&at);
        if (rc) {
            q->refs--;
            return -1;
        }
        q->thread_live = 1;
    }
    op->ndeps = legacy_deps_locked(q, &op->deps);
    if (extra && extra->q->done < extra->seq) {
        sq_dep *nd = realloc(op->deps, (op->ndeps + 1) * sizeof(*nd));
        if (nd) {
            op->deps = nd;
            op->deps[op->ndeps++] = *extra;
            extra->q->refs++;
        }
    }
    op->seq = ++q->enq;
    op->next = NULL;
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    pthread_cond_signal(&q->wake);
    return 0;
}

static void wait_seq_locked(emu_queue *q, uint64_t seq)
{
    while (q->done < seq && !g_abandon)
        pthread_cond_wait(&g_done, &g_mu);
}

/* Whether the caller may run an operation of q itself (g_mu held): q is the caller's context's, nothing
 * of q is queued or running, and no work the legacy-stream rules order before it is pending. */
static int runs_here_locked(emu_queue *q, emu_ctx *c)
{
    if (q->ctx != c || q->ctx_dead || q->done != q->enq || g_abandon)
        return 0;
    for (const emu_queue *x = g_all; x; x = x->next_all)
        if (legacy_dep_pending(q, x))
            return 0;
    return 1;
}

/* emu_sq_submit's and emu_sq_submit_staged's work: `stage` (NULL for the former) is called on the
 * operation's own copy of arg when it is queued rather than run by the caller. */
static CUresult submit(CUstream s, emu_op_run run, emu_op_drop drop, emu_op_stage stage, void *arg, size_t len,
                       int mode)
{
    emu_ctx *c = emu_ctx_current();
    if (emu_sq_inline()) {
        CUresult st = c ? __atomic_load_n(&c->sticky, __ATOMIC_RELAXED) : CUDA_SUCCESS;
        CUresult rc = run(arg, st);
        if (drop)
            drop(arg);
        if (rc != CUDA_SUCCESS && emu_is_sticky_error(rc))
            emu_ctx_set_sticky(c, rc);
        return rc;
    }
    sq_op *op = malloc(sizeof(*op) + len);
    if (!op) {
        if (drop)
            drop(arg);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memset(op, 0, sizeof(*op));
    memcpy(op->arg, arg, len);
    op->run = run;
    op->drop = drop;
    pthread_mutex_lock(&g_mu);
    emu_queue *q = resolve_locked(s, c);
    if (mode != EMU_SQ_ASYNC && q && runs_here_locked(q, c)) {
        /* a blocking, short or stageable operation on an idle stream whose legacy-stream dependencies are
         * met: the caller runs it under the stream's next sequence number (no hand-off to the stream thread
         * and back, two thread wake-ups; nothing staged); work issued meanwhile waits for it (worker_main) */
        free(op);
        uint64_t seq = ++q->enq;
        q->refs++;
        CUresult st = status_of(q);
        pthread_mutex_unlock(&g_mu);
        CUresult rc = run_op(q, run, drop, arg, st, 0);
        pthread_mutex_lock(&g_mu);
        complete_locked(q, seq, rc, st, 0);
        queue_unref_locked(q);
        pthread_mutex_unlock(&g_mu);
        if (mode != EMU_SQ_WAIT)
            return CUDA_SUCCESS; /* as if queued: an error is latched for the next synchronize */
        return c ? __atomic_load_n(&c->sticky, __ATOMIC_RELAXED) : CUDA_SUCCESS;
    }
    int held = q && stage;
    if (held) {
        /* queued: its own copy of what the caller may reuse, taken without the lock (it may be big); the
         * caller waits for an operation it could not stage */
        q->refs++;
        pthread_mutex_unlock(&g_mu);
        if (stage(op->arg))
            mode = EMU_SQ_WAIT;
        pthread_mutex_lock(&g_mu);
    }
    int queued = q && enqueue_locked(q, op, NULL) == 0;
    if (held)
        queue_unref_locked(q); /* after enqueue_locked: the op's queue may have lost its handle meanwhile */
    if (!queued) {
        pthread_mutex_unlock(&g_mu);
        if (drop)
            drop(op->arg);
        free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (mode != EMU_SQ_WAIT) {
        pthread_mutex_unlock(&g_mu);
        return CUDA_SUCCESS;
    }
    wait_seq_locked(q, op->seq);
    pthread_mutex_unlock(&g_mu);
    return c ? __atomic_load_n(&c->sticky, __ATOMIC_RELAXED) : CUDA_SUCCESS;
}

CUresult emu_sq_submit(CUstream s, emu_op_run run, emu_op_drop drop, void *arg, size_t len, int mode)
{
    return submit(s, run, drop, NULL, arg, len, mode);
}

CUresult emu_sq_submit_staged(CUstream s, emu_op_run run, emu_op_drop drop, emu_op_stage stage, void *arg, size_t len)
{
    return submit(s, run, drop, stage, arg, len, EMU_SQ_STAGED);
}

/* ---- synchronization ---- */
typedef struct sq_target {
    emu_queue *q;
    uint64_t seq;
} sq_target;

/* Waits for the work issued so far to every queue `pick` selects; returns (and clears) the first
 * latched error among them. */
static CUresult wait_all_locked(int (*pick)(const emu_queue *, const void *), const void *arg)
{
    size_t n = 0;
    for (emu_queue *x = g_all; x; x = x->next_all)
        n += pick(x, arg) && x != t_worker;
    sq_target *t = n ? malloc(n * sizeof(*t)) : NULL;
    size_t k = 0;
    for (emu_queue *x = g_all; x && t && k < n; x = x->next_all) {
        if (pick(x, arg) && x != t_worker) {
            t[k].q = x;
            t[k].seq = x->enq;
            x->refs++;
            k++;
        }
    }
    CUresult err = CUDA_SUCCESS;
    for (size_t i = 0; i < k; i++) {
        wait_seq_locked(t[i].q, t[i].seq);
        if (err == CUDA_SUCCESS)
            err = t[i].q->err;
        t[i].q->err = CUDA_SUCCESS;
        queue_unref_locked(t[i].q);
    }
    free(t);
    if (n && !t) { /* no memory for the snapshot: wait until every picked queue is empty */
        for (;;) {
            emu_queue *busy = NULL;
            for (emu_queue *x = g_all; x && !busy; x = x->next_all)
                if (pick(x, arg) && x != t_worker && x->done < x->enq)
                    busy = x;
            if (!busy || g_abandon)
                break;
            pthread_cond_wait(&g_done, &g_mu);
        }
    }
    return err;
}

static int pick_ctx(const emu_queue *x, const void *c) { return !c || x->ctx == (const emu_ctx *)c; }

static int pick_legacy_view(const emu_queue *x, const void *q_)
{
    const emu_queue *q = q_;
    return x == q || (x->blocking && !x->legacy && x->ctx == q->ctx);
}

CUresult emu_sq_sync_ctx(emu_ctx *c)
{
    if (emu_sq_inline())
        return CUDA_SUCCESS;
    pthread_mutex_lock(&g_mu);
    CUresult err = wait_all_locked(pick_ctx, c);
    pthread_mutex_unlock(&g_mu);
    return err;
}

void emu_sq_idle_all(void) { (void)emu_sq_sync_ctx(NULL); }

CUresult emu_sq_sync_stream(CUstream s)
{
    if (emu_sq_inline())
        return CUDA_SUCCESS;
    emu_ctx *c = emu_ctx_current();
    pthread_mutex_lock(&g_mu);
    emu_queue *q = resolve_locked(s, c);
    CUresult err = CUDA_SUCCESS;
    if (q && q->legacy) {
        /* the NULL stream's work waits for every blocking stream's: so does synchronizing it */
        err = wait_all_locked(pick_legacy_view, q);
    } else if (q && q != t_worker) {
        wait_seq_locked(q, q->enq);
        err = q->err;
        q->err = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&g_mu);
    return err;
}

CUresult emu_sq_query_stream(CUstream s)
{
    if (emu_sq_inline())
        return CUDA_SUCCESS;
    emu_ctx *c = emu_ctx_current();
    pthread_mutex_lock(&g_mu);
    emu_queue *q = resolve_locked(s, c);
    CUresult rc = CUDA_SUCCESS;
    if (q) {
        for (emu_queue *x = g_all; x && rc == CUDA_SUCCESS; x = x->next_all)
            if ((q->legacy ? pick_legacy_view(x, q) : x == q) && x->done < x->enq)
                rc = CUDA_ERROR_NOT_READY;
        if (rc == CUDA_SUCCESS && q->err) {
            rc = q->err;
            q->err = CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void emu_sq_ctx_destroyed(emu_ctx *c)
{
    if (!emu_sq_inline()) {
        pthread_mutex_lock(&g_mu);
        (void)wait_all_locked(pick_ctx, c);
        pthread_mutex_unlock(&g_mu);
    }
    pthread_mutex_lock(&g_mu);
    for (emu_queue *x = g_all; x; x = x->next_all)
        if (x->ctx == c && !c->is_primary)
            x->ctx_dead = 1;
    emu_queue *l = c->is_primary ? NULL : c->legacy_q;
    if (l) {
        c->legacy_q = NULL;
        l->closing = 1;
        pthread_cond_signal(&l->wake);
        queue_unref_locked(l);
    }
    pthread_mutex_unlock(&g_mu);
}

/* ---- events ---- */
typedef struct record_arg {
    emu_event *e;
    uint64_t gen;
    uint64_t ipc_v; /* an interprocess event's record number (emu_ipc.c), else 0 */
} record_arg;

static void event_unref_locked(emu_event *e)
{
    if (--e->refs > 0)
        return;
    if (e->q)
        queue_unref_locked(e->q);
    free(e->cap_deps);
    emu_ipc_event_free(e);
    free(e);
}

void emu_sq_event_release(emu_event *e)
{
    pthread_mutex_lock(&g_mu);
    event_unref_locked(e);
    pthread_mutex_unlock(&g_mu);
}

static CUresult run_record(void *a, CUresult st)
{
    (void)st; /* an event still completes in a faulted context */
    record_arg *r = a;
    uint64_t now = emu_now_ns();
    pthread_mutex_lock(&g_mu);
    if (r->e->gen == r->gen)
        r->e->t_ns = now;
    if (r->ipc_v)
        emu_ipc_event_complete(r->e->ipc, r->ipc_v);
    pthread_mutex_unlock(&g_mu);
    return CUDA_SUCCESS;
}

static void drop_record(void *a) { emu_sq_event_release(((record_arg *)a)->e); }

CUresult emu_sq_record(emu_event *e, CUstream s)
{
    emu_ctx *c = emu_ctx_current();
    pthread_mutex_lock(&g_mu);
    uint64_t gen = ++e->gen;
    uint64_t ipc_v = e->ipc ? emu_ipc_event_issue(e) : 0;
    e->recorded = 1;
    if (emu_sq_inline()) {
        if (e->q)
            queue_unref_locked(e->q);
        e->q = NULL;
        e->seq = 0;
        e->t_ns = emu_now_ns();
        if (ipc_v)
            emu_ipc_event_complete(e->ipc, ipc_v);
        pthread_mutex_unlock(&g_mu);
        return CUDA_SUCCESS;
    }
    emu_queue *q = resolve_locked(s, c);
    if (q && runs_here_locked(q, c)) {
        /* an idle stream: the record completes here (as a short operation would run here), not on the
         * stream's thread - a hand-off and two thread wake-ups for nothing; cuEventRecord then
         * cuStreamSynchronize of an idle stream cost ~60 us on these VMs */
        q->refs++;
        if (e->q)
            queue_unref_locked(e->q);
        e->q = q;
        e->seq = ++q->enq;
        e->t_ns = emu_now_ns();
        if (ipc_v)
            emu_ipc_event_complete(e->ipc, ipc_v);
        complete_locked(q, e->seq, CUDA_SUCCESS, CUDA_SUCCESS, 0);
        pthread_mutex_unlock(&g_mu);
        return CUDA_SUCCESS;
    }
    sq_op *op = q ? malloc(sizeof(*op) + sizeof(record_arg)) : NULL;
    if (op) {
        memset(op, 0, sizeof(*op));
        record_arg r = {e, gen, ipc_v};
        memcpy(op->arg, &r, sizeof(r));
        op->run = run_record;
        op->drop = drop_record;
    }
    if (!op || enqueue_locked(q, op, NULL)) {
        if (ipc_v) /* numbered but never to run: do not leave waiters on it */
            emu_ipc_event_complete(e->ipc, ipc_v);
        pthread_mutex_unlock(&g_mu);
        free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    e->refs++; /* the operation's */
    q->refs++;
    if (e->q)
        queue_unref_locked(e->q);
    e->q = q;
    e->seq = op->seq;
    pthread_mutex_unlock(&g_mu);
    return CUDA_SUCCESS;
}

static int event_done_locked(const emu_event *e)
{
    if (e->ipc) /* every process's records issued so far */
        return emu_ipc_event_reached(e, emu_ipc_event_issued(e)) || g_abandon;
    return !e->q || e->q->done >= e->seq || g_abandon;
}

/* Polls an interprocess event's counters until record number v ran (another process's stream thread
 * raises them: no condition variable reaches it), with backoff from 20 us to 1 ms. */
static void ipc_wait_reached(const emu_event *e, uint64_t v)
{
    unsigned us = 20;
    while (!emu_ipc_event_reached(e, v) && !emu_sq_abandoned()) {
        usleep(us);
        us = us < 1000 ? us * 2 : 1000;
    }
}

typedef struct ipc_wait_arg {
    emu_event *e;
    uint64_t v;
} ipc_wait_arg;

static CUresult run_ipc_wait(void *a, CUresult st)
{
    (void)st;
    const ipc_wait_arg *w = a;
    ipc_wait_reached(w->e, w->v);
    return CUDA_SUCCESS;
}

static void drop_ipc_wait(void *a) { emu_sq_event_release(((ipc_wait_arg *)a)->e); }

CUresult emu_sq_event_query(emu_event *e)
{
    pthread_mutex_lock(&g_mu);
    int done = event_done_locked(e);
    pthread_mutex_unlock(&g_mu);
    return done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

void emu_sq_event_sync(emu_event *e)
{
    if (e->ipc) {
        pthread_mutex_lock(&g_mu);
        int own = e->q && e->q == t_worker; /* recorded on this stream's own thread: as below, no wait */
        pthread_mutex_unlock(&g_mu);
        if (!own)
            ipc_wait_reached(e, emu_ipc_event_issued(e));
        return;
    }
    pthread_mutex_lock(&g_mu);
    if (!e->q || e->q != t_worker)
        while (!event_done_locked(e))
            pthread_cond_wait(&g_done, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

static CUresult run_nothing(void *a, CUresult st)
{
    (void)a;
    (void)st;
    return CUDA_SUCCESS;
}

CUresult emu_sq_wait_event(CUstream s, emu_event *e)
{
    if (emu_sq_inline())
        return CUDA_SUCCESS; /* work runs in call order: the event's work is done */
    emu_ctx *c = emu_ctx_current();
    pthread_mutex_lock(&g_mu);
    if (event_done_locked(e)) {
        pthread_mutex_unlock(&g_mu);
        return CUDA_SUCCESS;
    }
    if (e->ipc) { /* records of other processes too: the stream's thread polls the shared counters */
        sq_op *op = malloc(sizeof(*op) + sizeof(ipc_wait_arg));
        emu_queue *q = op ? resolve_locked(s, c) : NULL;
        if (op) {
            memset(op, 0, sizeof(*op));
            ipc_wait_arg w = {e, emu_ipc_event_issued(e)};
            memcpy(op->arg, &w, sizeof(w));
            op->run = run_ipc_wait;
            op->drop = drop_ipc_wait;
        }
        if (!q || enqueue_locked(q, op, NULL)) {
            pthread_mutex_unlock(&g_mu);
            free(op);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        e->refs++; /* the operation's */
        pthread_mutex_unlock(&g_mu);
        return CUDA_SUCCESS;
    }
    sq_dep dep = {e->q, e->seq};
    sq_op *op = malloc(sizeof(*op));
    emu_queue *q = op ? resolve_locked(s, c) : NULL;
    if (op) {
        memset(op, 0, sizeof(*op));
        op->run = run_nothing;
    }
    if (!q || enqueue_locked(q, op, &dep)) {
        pthread_mutex_unlock(&g_mu);
        free(op);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&g_mu);
    return CUDA_SUCCESS;
}

/* ---- per-thread default stream entry points (gen_surface.py's wrappers, emu_launch.c's) ---- */
void emu_ptds_enter(void) { t_ptds_call++; }
void emu_ptds_leave(void) { t_ptds_call--; }

void *emu_ptds_of(void *fn)
{
    for (const emu_ptds_proc *p = emu_ptds_procs; p->base; p++)
        if (p->base == fn)
            return p->ptds;
    for (const emu_ptds_proc *p = emu_rt_ptds_procs; p->base; p++)
        if (p->base == fn)
            return p->ptds;
    return fn;
}

/* ---- process exit ---- */
/* Work issued without a synchronize still runs before the process ends (its printf output too), as a
 * GPU context's teardown waits for it; a queue that makes no progress for 2 s (a kernel spinning on
 * memory nobody will write) is abandoned rather than hanging the exit. */
__attribute__((destructor)) static void drain_at_exit(void)
{
    if (g_forked)
        return;
    pthread_mutex_lock(&g_mu);
    g_last_progress_ns = emu_now_ns();
    for (;;) {
        int busy = 0;
        for (emu_queue *x = g_all; x && !busy; x = x->next_all)
            busy = x->done < x->enq && x != t_worker;
        if (!busy || emu_now_ns() - g_last_progress_ns > 2000000000ull)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        int rc = pthread_cond_timedwait(&g_done, &g_mu, &ts);
        (void)rc;
    }
    g_abandon = 1;
    pthread_cond_broadcast(&g_done);
    pthread_mutex_unlock(&g_mu);
    emu_printf_flush();
}
