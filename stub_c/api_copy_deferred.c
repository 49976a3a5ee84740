/* api_copy_deferred.c - asynchronous device-to-host copies to page-locked memory of this process that the worker
 * does not map (TCP/TLS, TF_SHM=0, a block the worker refused): the worker stages the copy and answers at once
 * (tfDeferMemcpy3D / tfDeferAtoH, tfworker/executor/exec_copy_deferred.c); the bytes are read and written into
 * the caller's memory after the next synchronous calls that find the copy done (tf_deferred_collect, run by
 * transport.c after every synchronous call, as graph host copies are). So whatever tells the program the copy
 * is done - cuStreamSynchronize, cuEventSynchronize or a query answering CUDA_SUCCESS for an event recorded
 * after it (on its stream or one that waited for it), cuCtxSynchronize, a blocking copy - returns with the
 * bytes in place. The first piece of each of the oldest pending copies is asked for right behind the
 * synchronous call itself (tf_deferred_sync, tfc_sync_then: the worker runs frames in order, so the reads see
 * what the call waited for) and costs no round trip of its own; further pieces of big copies are read after
 * it, two requests in flight (tfc_pipelined). Why not a receiver thread: the worker would have to push bytes
 * on its own, and a second reader of the connection would need its own framing; nothing is spent while no
 * copy is pending.
 * Host functions queued while copies are pending run in the calling thread after a synchronize of their
 * stream (api_hostcalls.c), so they too see the bytes. Called by api_copy.c (new copies), api_memory.c
 * (memory freed or unregistered: its pending copies are dropped) and transport.c.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stub.h"
#include "stub_calls.h"

typedef struct deferred_copy {
    uint64_t id;         /* the worker's record */
    tf_host_box box;     /* where the packed rows land */
    size_t len, done;    /* bytes in all, bytes written so far */
    const int *asked_by; /* the thread (its t_collecting) whose call just read it (tf_deferred_sync) and found it
                          * not done: that call's collect does not ask again */
} deferred_copy;

static pthread_mutex_t g_def_mu = PTHREAD_MUTEX_INITIALIZER;  /* held while collecting: one collector at a time */
static deferred_copy *g_def;                                   /* oldest first */
static size_t g_ndef, g_def_cap;
static __thread int t_collecting;   /* the reads are synchronous calls themselves */

int tf_deferred_pending(void) { return __atomic_load_n(&g_ndef, __ATOMIC_ACQUIRE) != 0; }

static CUresult deferred_add(uint64_t id, const tf_host_box *box)
{
    pthread_mutex_lock(&g_def_mu);
    CUresult rc = CUDA_SUCCESS;
    if (g_ndef == g_def_cap) {
        size_t cap = g_def_cap ? 2 * g_def_cap : 16;
        deferred_copy *v = realloc(g_def, cap * sizeof *v);
        if (v) g_def = v, g_def_cap = cap;
        else rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (rc == CUDA_SUCCESS) {
        g_def[g_ndef] = (deferred_copy){id, *box, box->width * box->height * box->depth, 0, NULL};
        __atomic_store_n(&g_ndef, g_ndef + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&g_def_mu);
    return rc;
}

static void deferred_drop_locked(size_t i)
{
    memmove(&g_def[i], &g_def[i + 1], (g_ndef - i - 1) * sizeof *g_def);
    __atomic_store_n(&g_ndef, g_ndef - 1, __ATOMIC_RELEASE);
}

/* The copy described by `far` (its host destination blank) into the caller's box, queued on the worker's
 * stream; CUDA_ERROR_OUT_OF_MEMORY when the worker cannot stage it (the caller then copies synchronously). */
CUresult tf_deferred_dtoh_3d(const CUDA_MEMCPY3D *far, const tf_host_box *box, CUstream hStream)
{
    unsigned long long id = 0;
    CUresult rc = rpc_tfDeferMemcpy3D(&id, far, hStream);
    return rc ? rc : deferred_add(id, box);
}

CUresult tf_deferred_atoh(void *dst, CUarray a, size_t off, size_t n, CUstream hStream)
{
    unsigned long long id = 0;
    CUresult rc = rpc_tfDeferAtoH(&id, a, off, n, hStream);
    tf_host_box box = {dst, n, 1, 1, n, n};
    return rc ? rc : deferred_add(id, &box);
}

/* Packed bytes [off, off+n) of box's rows to their places. */
static void unpack(const tf_host_box *b, size_t off, const uint8_t *bytes, size_t n)
{
    while (n) {
        size_t row = off / b->width, col = off % b->width, k = b->width - col < n ? b->width - col : n;
        memcpy(b->base + (row / b->height) * b->slice + (row % b->height) * b->pitch + col, bytes, k);
        off += k, bytes += k, n -= k;
    }
}

/* 1 when the box's rows follow each other in memory (packed bytes are its bytes). */
static int box_contiguous(const tf_host_box *b)
{
    return b->height * b->depth == 1 || (b->pitch == b->width && (b->depth == 1 || b->slice == b->width * b->height));
}

/* The first piece still to read of copy d: its length, and where its bytes land (in place, or scratch). */
static size_t next_piece(const deferred_copy *d, uint8_t *scratch, uint8_t **to)
{
    *to = box_contiguous(&d->box) ? d->box.base + d->done : scratch;
    return d->len - d->done < TF_COPY_CHUNK ? d->len - d->done : TF_COPY_CHUNK;
}

/* With g_def_mu held: piece k (next_piece) of copy i answered rc. 1 when the copy is complete or dropped. */
static int piece_answered(size_t i, CUresult rc, size_t k, const uint8_t *scratch)
{
    deferred_copy *d = &g_def[i];
    if (rc == CUDA_ERROR_NOT_READY) return 0;
    if (rc) return 1;   /* a failed copy never lands */
    if (!box_contiguous(&d->box)) unpack(&d->box, d->done, scratch, k);
    d->done += k;
    return d->done == d->len;
}

/* The pieces of copy d from byte `from` on, once its worker record answered a piece (the copy is done there):
 * two requests in flight (tfc_pipelined), contiguous destinations read in place, others through two scratch
 * buffers (one per request in flight). */
typedef struct rest_read {
    deferred_copy *d;
    size_t from;
    uint8_t *scratch[2];
} rest_read;

static size_t rest_piece(const rest_read *r, size_t k, size_t *off)
{
    *off = r->from + k * TF_COPY_CHUNK;
    return r->d->len - *off < TF_COPY_CHUNK ? r->d->len - *off : TF_COPY_CHUNK;
}

static CUresult rest_encode(void *arg, size_t k, tfc_call *c)
{
    rest_read *r = arg;
    size_t off, n = rest_piece(r, k, &off);
    uint8_t *to = box_contiguous(&r->d->box) ? r->d->box.base + off : r->scratch[k % 2];
    return enc_tfDeferredRead(c, r->d->id, off, n, to);
}

static void rest_landed(void *arg, size_t k)
{
    rest_read *r = arg;
    size_t off, n = rest_piece(r, k, &off);
    if (!box_contiguous(&r->d->box)) unpack(&r->d->box, off, r->scratch[k % 2], n);
    r->d->done = off + n;
}

/* Reads copy i from the worker when it is done there: its first piece still to read, then the rest
 * pipelined; 1 when it is complete or dropped (a failed copy never lands), 0 while not done. scratch: two
 * buffers of TF_COPY_CHUNK bytes for a destination that is not contiguous. */
static int deferred_read(size_t i, uint8_t *scratch[2])
{
    deferred_copy *d = &g_def[i];
    if (d->done == 0) {
        uint8_t *to;
        size_t k = next_piece(d, scratch[0], &to);
        CUresult rc = rpc_tfDeferredRead(d->id, 0, k, to);
        if (rc == CUDA_ERROR_NOT_READY) return 0;
        if (piece_answered(i, rc, k, scratch[0])) return 1;
    }
    rest_read r = {d, d->done, {scratch[0], scratch[1]}};
    (void)tfc_pipelined((d->len - d->done + TF_COPY_CHUNK - 1) / TF_COPY_CHUNK, rest_encode, rest_landed, &r);
    return 1;   /* whole, or failed: a failed copy never lands */
}

#define READS_BEHIND TFC_THEN_MAX   /* copies whose first piece rides behind a synchronous call */

CUresult tf_deferred_sync(tfc_call *c)
{
    if (t_collecting) return tfc_sync_then(c, NULL, 0, NULL);
    pthread_mutex_lock(&g_def_mu);
    tfc_call reads[READS_BEHIND];
    CUresult rcs[READS_BEHIND];
    uint8_t *scratch[READS_BEHIND] = {0};
    size_t len[READS_BEHIND];
    int n = 0;
    for (size_t i = 0; i < g_ndef && n < READS_BEHIND; i++, n++) {
        uint8_t *to;
        if (!box_contiguous(&g_def[i].box) && !(scratch[n] = malloc(TF_COPY_CHUNK))) break;
        len[n] = next_piece(&g_def[i], scratch[n], &to);
        if (enc_tfDeferredRead(&reads[n], g_def[i].id, g_def[i].done, len[n], to)) break;
        g_def[i].asked_by = &t_collecting;
    }
    CUresult rc = tfc_sync_then(c, reads, n, rcs);
    for (int k = n - 1; k >= 0; k--) {   /* from the last, so a dropped copy moves none still to look at */
        if (piece_answered((size_t)k, rcs[k], len[k], scratch[k])) deferred_drop_locked((size_t)k);
        else if (rcs[k] != CUDA_ERROR_NOT_READY) g_def[k].asked_by = NULL;   /* more pieces: the collect reads them */
        free(scratch[k]);
    }
    pthread_mutex_unlock(&g_def_mu);
    return rc;
}

CUresult tf_deferred_collect(void)
{
    if (t_collecting || !tf_deferred_pending()) return CUDA_SUCCESS;
    t_collecting = 1;
    pthread_mutex_lock(&g_def_mu);
    uint8_t *scratch[2] = {NULL, NULL};
    CUresult rc = CUDA_SUCCESS;
    for (size_t i = 0; i < g_ndef;) {
        if (g_def[i].asked_by == &t_collecting) {   /* answered not done a moment ago, behind this very call */
            g_def[i++].asked_by = NULL;
            continue;
        }
        if (!box_contiguous(&g_def[i].box) && !scratch[0] &&
            (!(scratch[0] = malloc(TF_COPY_CHUNK)) || !(scratch[1] = malloc(TF_COPY_CHUNK)))) {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
            break;
        }
        if (deferred_read(i, scratch)) deferred_drop_locked(i);
        else i++;
    }
    pthread_mutex_unlock(&g_def_mu);
    free(scratch[0]);
    free(scratch[1]);
    t_collecting = 0;
    return rc;
}

/* 1 when a pending copy's box reaches into [p, p+n). */
static int box_overlaps(const tf_host_box *b, const void *p, size_t n)
{
    const uint8_t *lo = p, *end = b->base + (b->depth - 1) * b->slice + (b->height - 1) * b->pitch + b->width;
    return b->base < lo + n && lo < end;
}

static int pending_in(const void *p, size_t n)
{
    int any = 0;
    pthread_mutex_lock(&g_def_mu);
    for (size_t i = 0; i < g_ndef && !any; i++) any = box_overlaps(&g_def[i].box, p, n);
    pthread_mutex_unlock(&g_def_mu);
    return any;
}

/* A copy is about to read [p, p+n) (a host-to-device copy's source): copies still to land there are written
 * first, waiting for them (20 us growing to 2 ms between reads), since in CUDA's stream order a copy queued
 * after them reads their bytes. Limit: an asynchronous copy from such memory waits here where CUDA's returns. */
CUresult tf_deferred_settle(const void *p, size_t n)
{
    for (unsigned us = 20; p && n && tf_deferred_pending() && pending_in(p, n); us = us < 1000 ? us * 2 : 2000) {
        CUresult rc = tf_deferred_collect();
        if (rc) return rc;
        if (!pending_in(p, n)) break;
        usleep(us);
    }
    return CUDA_SUCCESS;
}

/* [p, p+n) is freed or unregistered: copies into it no longer land (their worker records stay until the session
 * ends, or are read by nobody). */
void tf_deferred_forget(const void *p, size_t n)
{
    if (!tf_deferred_pending()) return;
    pthread_mutex_lock(&g_def_mu);
    for (size_t i = 0; i < g_ndef;) {
        if (box_overlaps(&g_def[i].box, p, n)) deferred_drop_locked(i);
        else i++;
    }
    pthread_mutex_unlock(&g_def_mu);
}
