/* exec_copy_deferred.c - asynchronous device-to-host copies to page-locked client memory this process does not
 * map (TCP/TLS, TF_SHM=0): the rows tfDeferMemcpy3D, tfDeferAtoH and tfDeferredRead of proto/calls.tbl, called
 * by the generated dispatch.
 *
 * CUDA returns from such a copy at once and the bytes are in the host buffer when the stream reaches it. The
 * client's buffer is not in this process, so the copy goes into a staging buffer of ours (pinned host memory
 * of the backend, so the backend's copy is asynchronous too), an event recorded after it, and the call answers
 * with the record's id without waiting for the stream. The stub asks for the bytes (tfDeferredRead) after its
 * next synchronous calls; CUDA_ERROR_NOT_READY until the event is done, and the record is freed with its last
 * byte, and kept (with its buffer and event) for a later copy, up to SPARE_MAX of them and SPARE_BYTES in all. Each staging buffer counts
 * against the session's VRAM cap while it lives (as graph staging buffers, exec_graph_host.c); over it the call
 * fails with CUDA_ERROR_OUT_OF_MEMORY and the stub copies synchronously.
 */
#include <stdlib.h>
#include <string.h>

#include "executor.h"

typedef struct deferred {
    uint64_t id;
    uint8_t *buf;        /* the copy's bytes, rows packed (cap bytes, charged against the cap by its address) */
    size_t len, cap;
    CUevent done;        /* recorded after the copy on its stream */
    CUcontext ctx;       /* current when buffer and event were made: a spare serves that context only */
    struct deferred *next;
} deferred;

static deferred *g_deferred;
static uint64_t g_next_id = 1;
/* Records of finished copies kept with their buffer and event for the next ones: pinned allocations are slow
 * on a GPU, and a fresh buffer's first touch costs a page fault per page (a 64 MiB copy over TCP spent a quarter
 * of the worker's time in faults and page clearing). At most SPARE_MAX, of at most SPARE_BYTES together: while
 * kept they count against the cap as they did in use. */
#define SPARE_MAX 8
#define SPARE_BYTES ((size_t)64 << 20)
static deferred *g_spare;
static int g_nspare;
static size_t g_spare_bytes;

static void deferred_free(tfx *x, deferred *d)
{
    if (d->done && x->be.f_cuEventDestroy_v2) x->be.f_cuEventDestroy_v2(d->done);
    tfx_stage_free((uint64_t)(uintptr_t)d, d->buf);
    free(d);
}

/* A record whose copy is read: kept as a spare when there is room, else freed. */
static void deferred_done(tfx *x, deferred *d)
{
    if (g_nspare >= SPARE_MAX || d->cap > SPARE_BYTES - g_spare_bytes) {
        deferred_free(x, d);
        return;
    }
    d->next = g_spare;
    g_spare = d;
    g_nspare++;
    g_spare_bytes += d->cap;
}

/* A record with a staging buffer of at least len bytes (charged against the VRAM cap), not yet listed: a
 * spare whose buffer fits (not more than twice the size), else a new one. */
static CUresult deferred_new(tfx *x, size_t len, deferred **out)
{
    if (!x->be.f_cuEventCreate || !x->be.f_cuEventRecord || !x->be.f_cuEventQuery || !x->be.f_cuEventDestroy_v2)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (len == 0) return CUDA_ERROR_INVALID_VALUE;
    CUcontext ctx = NULL;
    if (x->bx.cuCtxGetCurrent && x->bx.cuCtxGetCurrent(&ctx) != CUDA_SUCCESS) ctx = NULL;
    for (deferred **ps = &g_spare; *ps && ctx; ps = &(*ps)->next) {
        if ((*ps)->ctx == ctx && (*ps)->cap >= len && (*ps)->cap / 2 <= len) {
            deferred *d = *ps;
            *ps = d->next;
            g_nspare--;
            g_spare_bytes -= d->cap;
            d->len = len;
            d->next = NULL;
            *out = d;
            return CUDA_SUCCESS;
        }
    }
    deferred *d = calloc(1, sizeof *d);
    if (!d) return CUDA_ERROR_OUT_OF_MEMORY;
    void *buf = NULL;
    CUresult rc = tfx_stage_alloc((uint64_t)(uintptr_t)d, len, &buf);
    if (rc) {
        free(d);
        return rc;
    }
    d->buf = buf;
    rc = x->be.f_cuEventCreate(&d->done, CU_EVENT_DISABLE_TIMING);
    if (rc) {
        d->done = NULL;
        deferred_free(x, d);
        return rc;
    }
    d->len = d->cap = len;
    d->ctx = ctx;
    *out = d;
    return CUDA_SUCCESS;
}

/* After the copy into d was queued (copy_rc): the event behind it, then the record is listed and its id
 * answered; on any failure it is freed. */
static CUresult deferred_queued(tfx *x, deferred *d, CUresult copy_rc, CUstream s, unsigned long long *id)
{
    CUresult rc = copy_rc ? copy_rc : x->be.f_cuEventRecord(d->done, s);
    if (rc) {
        deferred_free(x, d);   /* not a spare: a failed copy may still be queued into its buffer */
        return rc;
    }
    d->id = g_next_id++;
    d->next = g_deferred;
    g_deferred = d;
    *id = d->id;
    return CUDA_SUCCESS;
}

CUresult ex_tfDeferMemcpy3D(tfx *x, unsigned long long *id, const CUDA_MEMCPY3D *p, CUstream hStream)
{
    if (!p || p->dstMemoryType != CU_MEMORYTYPE_HOST || p->WidthInBytes == 0 || p->Height == 0 || p->Depth == 0)
        return CUDA_ERROR_INVALID_VALUE;
    unsigned __int128 span = (unsigned __int128)p->WidthInBytes * p->Height * p->Depth;
    if (span > SIZE_MAX) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c = *p;
    c.reserved0 = NULL, c.reserved1 = NULL, c.srcHost = NULL;
    int linear = c.srcMemoryType == CU_MEMORYTYPE_DEVICE && c.Height == 1 && c.Depth == 1;
    size_t sp = c.srcPitch ? c.srcPitch : c.WidthInBytes, sh = c.srcHeight ? c.srcHeight : c.Height;
    CUresult rc = tfx_copy_side_check(x, c.srcMemoryType, c.srcArray, c.srcDevice, c.srcXInBytes, c.srcY, c.srcZ,
                                      sp, sh, &c);
    if (rc) return rc;
    if (linear ? !x->be.f_cuMemcpyDtoHAsync_v2 : !x->bx.cuMemcpy3DAsync_v2) return CUDA_ERROR_NOT_SUPPORTED;
    deferred *d;
    if ((rc = deferred_new(x, (size_t)span, &d))) return rc;
    c.dstHost = d->buf, c.dstXInBytes = c.dstY = c.dstZ = 0, c.dstPitch = c.WidthInBytes, c.dstHeight = c.Height;
    if (linear)
        rc = x->be.f_cuMemcpyDtoHAsync_v2(d->buf, c.srcDevice + (c.srcZ * sh + c.srcY) * sp + c.srcXInBytes,
                                         c.WidthInBytes, hStream);
    else
        rc = x->bx.cuMemcpy3DAsync_v2(&c, hStream);
    return deferred_queued(x, d, rc, hStream, id);
}

CUresult ex_tfDeferAtoH(tfx *x, unsigned long long *id, CUarray a, size_t aOff, size_t len, CUstream hStream)
{
    if (!tf_reg_has(x, (uint64_t)(uintptr_t)a, TFK_ARRAY)) return CUDA_ERROR_INVALID_HANDLE;
    if (!x->be.f_cuMemcpyAtoHAsync_v2) return CUDA_ERROR_NOT_SUPPORTED;
    deferred *d;
    CUresult rc = deferred_new(x, len, &d);
    if (rc) return rc;
    return deferred_queued(x, d, x->be.f_cuMemcpyAtoHAsync_v2(d->buf, a, aOff, len, hStream), hStream, id);
}

/* Whether bytes [off, off+len) of copy id may be read: CUDA_SUCCESS once its event is done, NOT_READY while
 * the copy runs, another error when it failed; *where: its record's link in the list, for deferred_read_end
 * (NULL, and CUDA_ERROR_INVALID_VALUE, for no such record or bytes). */
static CUresult deferred_read_begin(tfx *x, unsigned long long id, size_t off, size_t len, deferred ***where)
{
    deferred **pd = &g_deferred;
    while (*pd && (*pd)->id != id) pd = &(*pd)->next;
    deferred *d = *pd;
    *where = NULL;
    if (!d || off > d->len || len > d->len - off) return CUDA_ERROR_INVALID_VALUE;
    *where = pd;
    return x->be.f_cuEventQuery(d->done);
}

/* After bytes [off, off+len) were read (rc: deferred_read_begin's answer): the record goes with its last
 * byte, or when its copy failed (a failed copy never lands). */
static void deferred_read_end(tfx *x, deferred **pd, CUresult rc, size_t off, size_t len)
{
    if (!pd || rc == CUDA_ERROR_NOT_READY) return;
    deferred *d = *pd;
    if (rc != CUDA_SUCCESS || off + len == d->len) {
        *pd = d->next;
        if (rc == CUDA_SUCCESS) deferred_done(x, d);
        else deferred_free(x, d);
    }
}

CUresult ex_tfDeferredRead(tfx *x, unsigned long long id, size_t off, size_t len, void *bytes)
{
    deferred **pd;
    CUresult rc = deferred_read_begin(x, id, off, len, &pd);
    if (rc == CUDA_SUCCESS) memcpy(bytes, (*pd)->buf + off, len);
    deferred_read_end(x, pd, rc, off, len);
    return rc;
}

int tfx_deferred_read_direct(tfx *x, const tf_req_hdr *h, const uint8_t *body)
{
    tf_rd r = {body, h->len, 0};
    unsigned long long id;
    size_t off, len;
    uint8_t present;
    if ((h->flags & TF_REQ_NOREPLY) || tf_get(&r, &id, sizeof id) || tf_get(&r, &off, sizeof off) ||
        tf_get(&r, &len, sizeof len) || tf_get(&r, &present, 1) || !tf_done(&r) || present != 1 ||
        len > TF_MAX_FRAME)
        return 0;
    deferred **pd;
    CUresult rc = deferred_read_begin(x, id, off, len, &pd);
    if (!pd) return 0;   /* the generic path answers it */
    int sent = tfx_send_reply(x, rc, rc == CUDA_SUCCESS ? (*pd)->buf + off : NULL, rc == CUDA_SUCCESS ? len : 0);
    deferred_read_end(x, pd, rc, off, len);
    return sent ? -1 : 1;
}

void tfx_copy_deferred_free(tfx *x)
{
    for (deferred **list = &g_deferred; list; list = list == &g_deferred ? &g_spare : NULL) {
        while (*list) {
            deferred *d = *list;
            *list = d->next;
            deferred_free(x, d);
        }
    }
    g_nspare = 0;
    g_spare_bytes = 0;
}

void tfx_copy_deferred_ctx_gone(CUcontext ctx)
{
    for (deferred **ps = &g_spare; *ps;) {
        deferred *d = *ps;
        if (d->ctx != ctx) {
            ps = &d->next;
            continue;
        }
        *ps = d->next;   /* the backend freed its buffer and event with the context */
        g_nspare--;
        g_spare_bytes -= d->cap;
        tfx_hostmap_refund((uint64_t)(uintptr_t)d);
        free(d);
    }
}
