/* transport.c - the client stub's connection to its GPU worker: connect (unix:/tcp:/tls:), the TFH1/TFR1
 * handshake with the daemon, the session hello, and the frame I/O every generated marshaller uses
 * (tfc_*): sync calls are written together with the queued batch in one sendmsg and their reply is
 * read straight into the caller's output buffers; async calls are appended to the batch. Errors of
 * batched calls come back with the next reply, tagged with their stream, and are returned at the next
 * call on that stream (or the next context-wide synchronize).
 * Called by the generated stub_calls.c and by the api_*.c entry points; holds the one session struct.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "stub.h"
#include "tf_log_line.h"
#include "tf_sock_writev.h"
#include "tf_spin_wait.h"
#include "tls.h"
#include "stub_calls.h"

#define BATCH_FLUSH_BYTES (256u << 10)
#define BATCH_COPY_MAX (64u << 10)

typedef struct tf_stub {
    pthread_mutex_t mu;
    pthread_once_t once;
    CUresult init_rc;
    int fd;
    tf_tls *tls;             /* TF_WORKER=tls:...: every byte on fd goes through it (tls.c) */
    CUresult dead;           /* != 0: connection lost, every call returns it */
    uint8_t *batch;
    size_t blen, bcap;
    uint64_t remote_ctx;     /* the executor thread's current context as we last set it */
    int remote_ctx_known;
    int remote_capture_mode; /* the executor thread's capture mode as we last set it (api_graph.c) */
    tf_latched pend[TF_MAX_LATCHED]; /* errors of batched calls not yet returned, one per stream */
    uint32_t npend;
    tf_session_info info;
    uint8_t *shm;            /* shared-memory copy window (same host, Unix socket), NULL if none */
    size_t shm_slot;         /* two slots of this size */
    pthread_mutex_t map_mu;  /* device allocation map, sorted by base */
    struct { CUdeviceptr base; size_t size; CUcontext ctx; int dev; int outlives_ctx; } *map;
    size_t nmap, map_cap;
} tf_stub;

static tf_stub g = {
    .mu = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT, .fd = -1,
    .remote_ctx_known = 1, .remote_capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL, .map_mu = PTHREAD_MUTEX_INITIALIZER,
};

static const uint8_t zeros[8];

/* ------------------------------------------------------------------------------------ logging */
void tf_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tf_log_line("tf-stub", 0, fmt, ap);
    va_end(ap);
}

void tf_debug(const char *fmt, ...)
{
    static int on = -1;
    if (on < 0) on = getenv("TF_STUB_DEBUG") != NULL;
    if (!on) return;
    va_list ap;
    va_start(ap, fmt);
    tf_log_line("tf-stub", 0, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------- context stack */
static __thread struct { CUcontext stack[32]; int n; } t_ctx;

CUcontext tf_ctx_current(void) { return t_ctx.n ? t_ctx.stack[t_ctx.n - 1] : NULL; }
void tf_ctx_set(CUcontext c)
{
    if (t_ctx.n == 0) {
        if (c == NULL) return;
        t_ctx.n = 1;
    }
    t_ctx.stack[t_ctx.n - 1] = c;
}
int tf_ctx_push(CUcontext c)
{
    if (t_ctx.n >= 32) return -1;
    t_ctx.stack[t_ctx.n++] = c;
    return 0;
}
CUcontext tf_ctx_pop(void) { return t_ctx.n ? t_ctx.stack[--t_ctx.n] : NULL; }
void tf_ctx_forget(CUcontext c)
{
    for (int i = 0; i < t_ctx.n; i++) {
        if (t_ctx.stack[i] == c) {
            memmove(&t_ctx.stack[i], &t_ctx.stack[i + 1], (size_t)(t_ctx.n - i - 1) * sizeof(CUcontext));
            t_ctx.n--;
            i--;
        }
    }
}
void tf_ctx_remote_unknown(void)
{
    pthread_mutex_lock(&g.mu);
    g.remote_ctx_known = 0;
    pthread_mutex_unlock(&g.mu);
}

/* ------------------------------------------------------------------------------ socket I/O */
/* Tells whoever started this program (TF_WORKER_LOST_FILE: `tensorfusion run`, tfclient.attach) that its worker
 * was lost or never answered, in one line: they report it to the scheduler, whose own probe decides whether the
 * node leaves placement (tfscheduler/README.md, Node liveness). A refusal (a rejected lease) is no loss. */
static void note_worker_lost(const char *why)
{
    const char *path = getenv("TF_WORKER_LOST_FILE");
    if (!path || !*path) return;
    int saved = errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        tf_log("cannot write TF_WORKER_LOST_FILE %s: %s", path, strerror(errno));
    } else {
        size_t n = strlen(why);
        if (write(fd, why, n) != (ssize_t)n) tf_log("cannot write TF_WORKER_LOST_FILE %s: %s", path, strerror(errno));
        close(fd);
    }
    errno = saved;
}

/* Ends the session for good: CUDA_ERROR_DEVICE_UNAVAILABLE, sticky (the session's device memory and every object
 * are gone with it, so no later call can succeed: stub_c/README.md, A lost worker). */
static CUresult end_session_locked(const char *why)
{
    tf_log("%s", why);
    g.dead = CUDA_ERROR_DEVICE_UNAVAILABLE;
    tf_tls_free(g.tls);
    g.tls = NULL;
    if (g.fd >= 0) close(g.fd);
    g.fd = -1;
    return g.dead;
}

static CUresult lost(const char *what)
{
    if (!g.dead) {
        char why[160];
        snprintf(why, sizeof why, "connection to the GPU worker lost (%s: %s)", what, strerror(errno ? errno : EPIPE));
        note_worker_lost(why);
        end_session_locked(why);
    }
    return g.dead;
}

/* TF_ALLOCATION_ENDED_FILE: written (one line) by whoever holds the lease (`tensorfusion run`, tfclient.attach)
 * when the scheduler ended the allocation under the session: LOST after the worker's node timeout (a worker host
 * frozen or cut off, whose daemon cannot close the session itself), expired, preempted. The worker's side of such
 * a session is doomed (a worker that comes back is told to close it), so the stub stops waiting on it: read at most
 * once a second, by forwarded calls and by a call waiting for its reply. -> 1 when the session was ended so. */
#define ENDED_CHECK_NS 1000000000L

static int allocation_ended_locked(void)
{
    static long checked_ns;
    long now = tf_now_ns();   /* first: a launch must not pay for getenv and open */
    if (g.dead || now - checked_ns < ENDED_CHECK_NS) return 0;
    checked_ns = now;
    const char *path = getenv("TF_ALLOCATION_ENDED_FILE");
    if (!path || !*path) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char line[200];
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n <= 0) return 0;
    line[n] = 0;
    line[strcspn(line, "\n")] = 0;
    char why[256];
    snprintf(why, sizeof why, "the vGPU's allocation ended under the session (%s)", line);
    end_session_locked(why);
    return 1;
}

/* Waits until a reply is readable (or the connection ended), giving up when the allocation ends meanwhile.
 * -> 0 to read on, -1 when the session was ended. A reply that comes within the spin costs no extra syscall. */
static int wait_reply_locked(void)
{
    if ((g.tls && tf_tls_pending(g.tls)) || tf_spin_wait_readable(g.fd)) return 0;
    for (;;) {
        struct pollfd p = {.fd = g.fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(ENDED_CHECK_NS / 1000000L));
        if (n > 0 || (n < 0 && errno != EINTR)) return 0;   /* data, end or error: the read says which */
        if (n == 0 && allocation_ended_locked()) return -1;
    }
}

/* TLS: the pieces of a frame (header, fixed part, small buffers, padding) are gathered into whole
 * records, so a small call costs one record and one syscall as with sendmsg; big buffers go straight. */
static int tls_send_all(struct iovec *iov, int n)
{
    uint8_t buf[16384];
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len <= sizeof buf - used) {
            memcpy(buf + used, iov[i].iov_base, iov[i].iov_len);
            used += iov[i].iov_len;
            continue;
        }
        size_t fill = sizeof buf - used;
        memcpy(buf + used, iov[i].iov_base, fill);
        if (tf_tls_write(g.tls, buf, sizeof buf)) return -1;
        const uint8_t *rest = (const uint8_t *)iov[i].iov_base + fill;
        size_t left = iov[i].iov_len - fill, tail = left % sizeof buf;
        if (left - tail && tf_tls_write(g.tls, rest, left - tail)) return -1;
        memcpy(buf, rest + left - tail, tail);
        used = tail;
    }
    return used ? tf_tls_write(g.tls, buf, used) : 0;
}

/* Writes every byte of iov[0..n) (advancing through partial writes), without SIGPIPE; passfd >= 0
 * travels (SCM_RIGHTS) with the first bytes (Unix sockets only, never over TLS). */
static int send_all_fd(int fd, struct iovec *iov, int n, int passfd)
{
    if (g.tls) {
        if (passfd >= 0) { errno = EINVAL; return -1; }
        return tls_send_all(iov, n);
    }
    return tf_sock_writev(fd, iov, n, &passfd);
}

static int send_all(int fd, struct iovec *iov, int n) { return send_all_fd(fd, iov, n, -1); }

/* Reads exactly the bytes described by iov[0..n). */
static int recv_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        if (iov->iov_len == 0) { iov++; n--; continue; }
        ssize_t k = g.tls ? tf_tls_read(g.tls, iov->iov_base, iov->iov_len) : readv(fd, iov, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) { errno = ECONNRESET; return -1; }
        tf_iov_advance(&iov, &n, (size_t)k);
    }
    return 0;
}

static int recv_exact(int fd, void *p, size_t n)
{
    struct iovec v = {p, n};
    return recv_all(fd, &v, 1);
}

/* recv_exact on a plain Unix socket whose peer may send a descriptor (SCM_RIGHTS) with the first byte: it
 * lands in *got (a second one replaces and closes the first). */
static int recv_exact_fd(int fd, void *p, size_t n, int *got)
{
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } cm;
    struct iovec v = {p, n};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    ssize_t k;
    do k = recvmsg(fd, &m, MSG_CMSG_CLOEXEC); while (k < 0 && errno == EINTR);
    if (k <= 0) {
        if (k == 0) errno = ECONNRESET;
        return -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(sizeof(int))) continue;
        if (*got >= 0) close(*got);
        memcpy(got, CMSG_DATA(c), sizeof *got);
    }
    return (size_t)k < n ? recv_exact(fd, (uint8_t *)p + k, n - (size_t)k) : 0;
}

/* Where the reply being read may deliver a descriptor (tfc_sync_take_fd), NULL otherwise. */
static __thread int *t_reply_fd;

/* ------------------------------------------------------------------------------ marshalling */
/* Threads that have called a forwarded function (api_streams.c waits by query once there are two). */
static int g_threads_seen;
static __thread int t_seen;

int tfc_threads_seen(void) { return __atomic_load_n(&g_threads_seen, __ATOMIC_ACQUIRE); }

void tfc_begin(tfc_call *c, uint16_t call)
{
    if (!t_seen) {
        t_seen = 1;
        __atomic_add_fetch(&g_threads_seen, 1, __ATOMIC_ACQ_REL);
    }
    c->hdr.call = call;
    c->hdr.flags = 0;
    c->hdr.len = 0;
    c->nfixed = 0;
    c->nvar = 0;
    c->nout = 0;
    c->out_len = 0;
    c->overflow = 0;
    c->scope = TFC_SCOPE_NONE;
    c->stream = 0;
}

/* The latched error this call must return (and forget), per its scope. */
static CUresult take_pending_locked(const tfc_call *c)
{
    for (uint32_t i = 0; i < g.npend; i++) {
        if (c->scope == TFC_SCOPE_CTX || (c->scope == TFC_SCOPE_STREAM && g.pend[i].stream == c->stream)) {
            CUresult e = (CUresult)g.pend[i].error;
            g.pend[i] = g.pend[--g.npend];
            return e;
        }
    }
    return CUDA_SUCCESS;
}

static void add_pending_locked(const tf_latched *l)
{
    for (uint32_t i = 0; i < g.npend; i++)
        if (g.pend[i].stream == l->stream) return;  /* the first error of a stream wins */
    if (g.npend < TF_MAX_LATCHED) g.pend[g.npend++] = *l;
}

void tfc_put(tfc_call *c, const void *p, size_t n)
{
    if (c->nfixed + n > TFC_MAX_FIXED) { c->overflow = 1; return; }
    memcpy(c->fixed + c->nfixed, p, n);
    c->nfixed += n;
}

void tfc_var(tfc_call *c, const void *p, size_t n)
{
    if (c->nvar >= TFC_MAX_IOV) { c->overflow = 1; return; }
    c->var[c->nvar].iov_base = (void *)(uintptr_t)p;
    c->var[c->nvar].iov_len = n;
    c->nvar++;
}

void tfc_out(tfc_call *c, void *p, size_t n)
{
    if (c->nout >= TFC_MAX_IOV) { c->overflow = 1; return; }
    c->out[c->nout].iov_base = p;
    c->out[c->nout].iov_len = n;
    c->nout++;
    c->out_len += n;
}

static size_t body_len(const tfc_call *c)
{
    size_t n = tf_pad8(c->nfixed);
    for (int i = 0; i < c->nvar; i++) n += tf_pad8(c->var[i].iov_len);
    return n;
}

/* iovecs for header+fixed(+pad) and each var(+pad); returns count (<= 2 + 2*TFC_MAX_IOV). */
static int frame_iov(tfc_call *c, struct iovec *iov)
{
    int n = 0;
    /* header and fixed part are contiguous in tfc_call only by accident; send them separately */
    iov[n++] = (struct iovec){&c->hdr, sizeof c->hdr};
    memset(c->fixed + c->nfixed, 0, tf_pad8(c->nfixed) - c->nfixed);  /* fixed[] has room to pad */
    iov[n++] = (struct iovec){c->fixed, tf_pad8(c->nfixed)};
    for (int i = 0; i < c->nvar; i++) {
        iov[n++] = c->var[i];
        size_t pad = tf_pad8(c->var[i].iov_len) - c->var[i].iov_len;
        if (pad) iov[n++] = (struct iovec){(void *)zeros, pad};
    }
    return n;
}

static int batch_reserve(size_t n)
{
    if (g.blen + n <= g.bcap) return 0;
    size_t cap = g.bcap ? g.bcap : (512u << 10);
    while (cap < g.blen + n) cap *= 2;
    uint8_t *b = realloc(g.batch, cap);
    if (!b) return -1;
    g.batch = b;
    g.bcap = cap;
    return 0;
}

/* Appends a whole frame to the batch (copying its buffers). */
static int batch_append(tfc_call *c)
{
    size_t len = sizeof c->hdr + body_len(c);
    if (batch_reserve(len)) return -1;
    uint8_t *p = g.batch + g.blen;
    memcpy(p, &c->hdr, sizeof c->hdr);
    p += sizeof c->hdr;
    memcpy(p, c->fixed, c->nfixed);
    memset(p + c->nfixed, 0, tf_pad8(c->nfixed) - c->nfixed);
    p += tf_pad8(c->nfixed);
    for (int i = 0; i < c->nvar; i++) {
        memcpy(p, c->var[i].iov_base, c->var[i].iov_len);
        memset(p + c->var[i].iov_len, 0, tf_pad8(c->var[i].iov_len) - c->var[i].iov_len);
        p += tf_pad8(c->var[i].iov_len);
    }
    g.blen += len;
    return 0;
}

/* Queues a context switch of the executor thread when the calling thread's context differs. */
static int sync_ctx_locked(void)
{
    CUcontext cur = tf_ctx_current();
    if (g.remote_ctx_known && g.remote_ctx == (uint64_t)(uintptr_t)cur) return 0;
    tfc_call c;
    tfc_begin(&c, TF_CALL_tfCtxSetCurrent);
    tfc_put(&c, &cur, sizeof cur);
    c.hdr.flags = TF_REQ_NOREPLY;
    c.hdr.len = (uint32_t)body_len(&c);
    if (batch_append(&c)) return -1;
    g.remote_ctx = (uint64_t)(uintptr_t)cur;
    g.remote_ctx_known = 1;
    return 0;
}

/* Queues a capture-mode switch of the executor thread when the calling thread needs another one (only
 * while a capture is live; see api_graph.c for why one executor thread needs this). */
static int sync_capture_mode_locked(void)
{
    int want = tf_capture_mode_wanted();
    if (want < 0 || want == g.remote_capture_mode) return 0;
    tfc_call c;
    CUstreamCaptureMode mode = (CUstreamCaptureMode)want;
    tfc_begin(&c, TF_CALL_tfSetCaptureMode);
    tfc_put(&c, &mode, sizeof mode);
    c.hdr.flags = TF_REQ_NOREPLY;
    c.hdr.len = (uint32_t)body_len(&c);
    if (batch_append(&c)) return -1;
    g.remote_capture_mode = want;
    return 0;
}

void tfc_drop_pending(uint64_t stream)
{
    pthread_mutex_lock(&g.mu);
    for (uint32_t i = 0; i < g.npend; i++)
        if (g.pend[i].stream == stream) g.pend[i--] = g.pend[--g.npend];
    pthread_mutex_unlock(&g.mu);
}

static CUresult flush_locked(void)
{
    if (g.blen == 0) return CUDA_SUCCESS;
    struct iovec v = {g.batch, g.blen};
    g.blen = 0;
    if (send_all(g.fd, &v, 1)) return lost("send");
    return CUDA_SUCCESS;
}

CUresult tfc_flush(void)
{
    pthread_mutex_lock(&g.mu);
    CUresult rc = g.fd < 0 ? (g.dead ? g.dead : CUDA_ERROR_NOT_INITIALIZED) : flush_locked();
    pthread_mutex_unlock(&g.mu);
    return rc;
}

static CUresult precheck_locked(tfc_call *c)
{
    if (g.fd < 0 || allocation_ended_locked()) return g.dead ? g.dead : CUDA_ERROR_NOT_INITIALIZED;
    if (c->overflow) return CUDA_ERROR_INVALID_VALUE;
    size_t body = body_len(c);
    if (body > TF_MAX_FRAME) return CUDA_ERROR_INVALID_VALUE;
    c->hdr.len = (uint32_t)body;
    if (sync_ctx_locked() || sync_capture_mode_locked()) return CUDA_ERROR_OUT_OF_MEMORY;
    return CUDA_SUCCESS;
}

/* Writes the queued batch and this frame in one sendmsg (passfd, if >= 0, rides along). */
static CUresult send_frame_locked(tfc_call *c, int passfd)
{
    struct iovec iov[3 + 2 * TFC_MAX_IOV];
    int n = 0;
    if (g.blen) iov[n++] = (struct iovec){g.batch, g.blen};
    n += frame_iov(c, iov + n);
    g.blen = 0;
    if (send_all_fd(g.fd, iov, n, passfd)) return lost("send");
    return CUDA_SUCCESS;
}

/* Console records of a reply (the GPU worker's stdout/stderr since its last reply: device printf,
 * diagnostics) go to this process's stdout/stderr before the call returns. stdio's streams, so the
 * program's own buffered output stays in order with the device's, as with a local GPU. */
static int console_out(const uint8_t *p, size_t n)
{
    while (n >= sizeof(tf_console)) {
        tf_console h;
        memcpy(&h, p, sizeof h);
        if ((h.fd != 1 && h.fd != 2) || h.len > n - sizeof h || tf_pad8(h.len) > n - sizeof h) return -1;
        FILE *f = h.fd == 1 ? stdout : stderr;
        if (h.len && fwrite(p + sizeof h, 1, h.len, f) == h.len) fflush(f);
        p += sizeof h + tf_pad8(h.len);
        n -= sizeof h + tf_pad8(h.len);
    }
    return n ? -1 : 0;
}

/* Reads one reply straight into c's outputs, keeps the errors of earlier batched calls it carries, writes
 * out its console records, and returns the call's result or, if that is success, an error latched on the
 * call's stream. */
static CUresult recv_reply_locked(tfc_call *c)
{
    tf_rep_hdr rep;
    for (;;) {
        if (wait_reply_locked()) return g.dead;
        if (t_reply_fd && !g.tls ? recv_exact_fd(g.fd, &rep, sizeof rep, t_reply_fd) : recv_exact(g.fd, &rep, sizeof rep))
            return lost("recv");
        if (rep.nconsole != TF_REP_HOST_CALL) break;
        /* a graph's host node: the worker waits while this process runs the function (api_graph.c) */
        uint64_t call[2];
        if (rep.len < sizeof call || rep.len > TF_MAX_FRAME || recv_exact(g.fd, call, sizeof call))
            return lost("host call");
        if (rep.len > sizeof call) {  /* the graph's host destinations as they are now (api_graph.c) */
            uint8_t *d = malloc(rep.len - sizeof call);
            if (!d) return lost("host call");
            int bad = recv_exact(g.fd, d, rep.len - sizeof call) ? 1 : tf_graph_host_call_bytes(d, rep.len - sizeof call);
            free(d);
            if (bad) { errno = EPROTO; return lost("host call"); }
        }
        ((CUhostFn)(uintptr_t)call[0])((void *)(uintptr_t)call[1]);
        struct iovec v = {(void *)(uintptr_t)TF_HOST_CALL_DONE, 8};
        if (send_all(g.fd, &v, 1)) return lost("send");
    }
    size_t outs = rep.result == CUDA_SUCCESS ? c->out_len : 0;
    if (rep.nlatched > TF_MAX_LATCHED || rep.nconsole > TF_MAX_FRAME ||
        rep.len != outs + rep.nlatched * sizeof(tf_latched) + rep.nconsole) {
        errno = EPROTO;
        return lost("reply size");
    }
    if (outs && recv_all(g.fd, c->out, c->nout)) return lost("recv");
    tf_latched lat[TF_MAX_LATCHED];
    if (rep.nlatched && recv_exact(g.fd, lat, rep.nlatched * sizeof(tf_latched))) return lost("recv");
    if (rep.nconsole) {
        uint8_t *con = malloc(rep.nconsole);
        if (!con) return lost("console");
        int bad = recv_exact(g.fd, con, rep.nconsole);
        if (!bad) bad = console_out(con, rep.nconsole) ? 2 : 0;
        free(con);
        if (bad == 1) return lost("recv");
        if (bad) { errno = EPROTO; return lost("console records"); }
    }
    for (uint32_t i = 0; i < rep.nlatched; i++) add_pending_locked(&lat[i]);
    CUresult rc = (CUresult)rep.result;
    if (rc == CUDA_SUCCESS) rc = take_pending_locked(c);
    return rc;
}

static CUresult sync_call(tfc_call *c, int passfd)
{
    pthread_mutex_lock(&g.mu);
    CUresult rc = precheck_locked(c);
    if (rc == CUDA_SUCCESS) rc = send_frame_locked(c, passfd);
    if (rc == CUDA_SUCCESS) rc = recv_reply_locked(c);
    pthread_mutex_unlock(&g.mu);
    return rc;
}

/* A synchronous call followed, in the same write, by n more whose replies are read after its own: the
 * worker runs frames in order, so they see what the first call waited for, and cost no round trip of their
 * own. more_rc[i]: each one's result (CUDA_ERROR_NOT_READY for one never sent). -> the first call's result. */
CUresult tfc_sync_then(tfc_call *c, tfc_call *more, int n, CUresult *more_rc)
{
    for (int i = 0; i < n; i++) more_rc[i] = CUDA_ERROR_NOT_READY;
    if (n > TFC_THEN_MAX) n = TFC_THEN_MAX;
    pthread_mutex_lock(&g.mu);
    CUresult rc = precheck_locked(c);
    /* the batch, the call and the ones behind it in one write (one wake-up of the worker, one syscall); a
     * follower whose check queued a frame of its own (a context switch) is not sent, nor those after it */
    struct iovec iov[1 + (1 + TFC_THEN_MAX) * (2 + 2 * TFC_MAX_IOV)];
    int nv = 0, sent = 0;
    if (rc == CUDA_SUCCESS) {
        size_t blen = g.blen;
        while (sent < n && precheck_locked(&more[sent]) == CUDA_SUCCESS && g.blen == blen) sent++;
        if (blen) iov[nv++] = (struct iovec){g.batch, blen};
        nv += frame_iov(c, iov + nv);
        for (int i = 0; i < sent; i++) nv += frame_iov(&more[i], iov + nv);
        int err = send_all(g.fd, iov, nv);
        if (g.blen > blen) memmove(g.batch, g.batch + blen, g.blen - blen);   /* goes with the next frame */
        g.blen -= blen;
        if (err) rc = lost("send"), sent = 0;
    }
    if (rc == CUDA_SUCCESS) rc = recv_reply_locked(c);
    for (int i = 0; i < sent && g.fd >= 0; i++) more_rc[i] = recv_reply_locked(&more[i]);
    pthread_mutex_unlock(&g.mu);
    return rc;
}

/* Managed memory (api_memory.c): host-owned regions are pushed before a forwarded call, device-owned
 * ones pulled after a synchronous call. The copies are forwarded calls themselves, hence the guard. */
static __thread int t_managed_busy;

static CUresult managed_sync(int to_device)
{
    if (t_managed_busy || !tf_managed_active()) return CUDA_SUCCESS;
    t_managed_busy = 1;
    CUresult rc = tf_managed_sync(to_device);
    t_managed_busy = 0;
    return rc;
}

CUresult tfc_sync(tfc_call *c)
{
    CUresult rc = managed_sync(1);
    if (rc) return rc;
    /* copies to page-locked memory still to be written here: read with the call, in its round trip */
    rc = tf_deferred_pending() ? tf_deferred_sync(c) : sync_call(c, -1);
    CUresult pulled = managed_sync(0);
    CUresult graphs = tf_graph_host_sync(0);  /* graph launches that finished: host destinations written back */
    CUresult copies = tf_deferred_collect();  /* asynchronous copies to page-locked memory that finished */
    return rc ? rc : pulled ? pulled : graphs ? graphs : copies;
}

/* A synchronous call that passes `fd` (SCM_RIGHTS, Unix sockets only) with its frame: the executor takes
 * it as the call's descriptor (e.g. tfMemAllocAtFd). Managed regions are kept coherent as for tfc_sync. */
CUresult tfc_sync_fd(tfc_call *c, int fd)
{
    CUresult rc = managed_sync(1);
    if (rc) return rc;
    rc = sync_call(c, fd);
    CUresult pulled = managed_sync(0);
    return rc ? rc : pulled;
}

/* A synchronous call whose reply carries a descriptor of the worker (SCM_RIGHTS, Unix sockets only): *fd is
 * it on success (the caller owns it), -1 otherwise. */
CUresult tfc_sync_take_fd(tfc_call *c, int *fd)
{
    *fd = -1;
    CUresult rc = managed_sync(1);
    if (rc) return rc;
    t_reply_fd = fd;
    rc = sync_call(c, -1);
    t_reply_fd = NULL;
    CUresult pulled = managed_sync(0);
    if (rc == CUDA_SUCCESS && *fd < 0) rc = CUDA_ERROR_OPERATING_SYSTEM;   /* the worker sent none */
    if (rc != CUDA_SUCCESS && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return rc ? rc : pulled;
}

int tf_conn_is_unix(void)
{
    pthread_mutex_lock(&g.mu);
    struct sockaddr_storage a;
    socklen_t n = sizeof a;
    int yes = g.fd >= 0 && !g.tls && getsockname(g.fd, (struct sockaddr *)&a, &n) == 0 && a.ss_family == AF_UNIX;
    pthread_mutex_unlock(&g.mu);
    return yes;
}

CUresult tfc_async(tfc_call *c)
{
    CUresult pushed = managed_sync(1);
    if (pushed) return pushed;
    pthread_mutex_lock(&g.mu);
    CUresult rc = precheck_locked(c);
    if (rc) goto out;
    c->hdr.flags |= TF_REQ_NOREPLY;
    size_t body = c->hdr.len;
    if (body > BATCH_COPY_MAX) {
        /* big payload: send the batch and this frame straight from the caller's memory */
        struct iovec iov[3 + 2 * TFC_MAX_IOV];
        int n = 0;
        if (g.blen) iov[n++] = (struct iovec){g.batch, g.blen};
        n += frame_iov(c, iov + n);
        g.blen = 0;
        if (send_all(g.fd, iov, n)) { rc = lost("send"); goto out; }
    } else {
        if (batch_append(c)) { rc = CUDA_ERROR_OUT_OF_MEMORY; goto out; }
        if (g.blen >= BATCH_FLUSH_BYTES && (rc = flush_locked())) goto out;
    }
    rc = take_pending_locked(c);
out:
    pthread_mutex_unlock(&g.mu);
    return rc;
}

/* ----------------------------------------------------------------------------- connection */
/* Until the worker accepts the session, every socket operation (connect, the TLS handshake, the hello and its
 * answer) gives up after this long without progress: a stopped (SIGSTOP) or hung worker daemon still completes
 * TCP and Unix connects from its listen backlog and then never answers. 30 s is above the worker's own limits
 * for these steps (dataplane.py: HELLO_TIMEOUT_S 10 s for the hello, TLS_START_TIMEOUT_S 12 s for a TLS start),
 * so a slow but running worker (loaded machine) answers or refuses before the client gives up. Afterwards calls
 * have no deadline: a kernel may run for hours (a stopped GPU worker process is the daemon's to end:
 * tfworker/dataplane.py, STOPPED_LIMIT_S). */
#define HANDSHAKE_TIMEOUT_S 30

/* SO_RCVTIMEO and SO_SNDTIMEO (on Linux the send timeout bounds connect too); 0 s clears them. */
static int set_io_deadline(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv)
               ? -1 : 0;
}

/* Connects to unix:PATH, tcp:HOST:PORT or tls:HOST:PORT (TCP; the caller adds TLS); host gets HOST. */
static int dial(const char *spec, char *host_out, size_t host_cap)
{
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(spec + 5) >= sizeof a.sun_path) { errno = ENAMETOOLONG; return -1; }
        strcpy(a.sun_path, spec + 5);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        if (set_io_deadline(fd, HANDSHAKE_TIMEOUT_S) || connect(fd, (struct sockaddr *)&a, sizeof a)) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        return fd;
    }
    if (strncmp(spec, "tcp:", 4) == 0 || strncmp(spec, "tls:", 4) == 0) {
        char host[256];
        const char *hp = spec + 4, *colon = strrchr(hp, ':');
        if (!colon || (size_t)(colon - hp) >= sizeof host) { errno = EINVAL; return -1; }
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = 0;
        if (host[0] == '[') {  /* [v6]:port */
            size_t l = strlen(host);
            if (l < 2 || host[l - 1] != ']') { errno = EINVAL; return -1; }
            memmove(host, host + 1, l - 2);
            host[l - 2] = 0;
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
        if (getaddrinfo(host, colon + 1, &hints, &res) || !res) { errno = EHOSTUNREACH; return -1; }
        int fd = -1;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) continue;
            if (set_io_deadline(fd, HANDSHAKE_TIMEOUT_S) == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        snprintf(host_out, host_cap, "%s", host);
        if (fd >= 0) {
            /* no Nagle delay on small calls; a worker host that vanishes is noticed within about a minute */
            int one = 1, idle = 30, intvl = 10, cnt = 3;
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) ||
                setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) ||
                setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) ||
                setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) ||
                setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt)) {
                close(fd);
                return -1;
            }
        }
        return fd;
    }
    errno = EINVAL;
    return -1;
}

/* The worker did not take or answer the hello: gone, or not answering within HANDSHAKE_TIMEOUT_S (stopped). */
static CUresult handshake_lost(const char *step, int err)
{
    char why[160];
    if (err == EAGAIN || err == EWOULDBLOCK)
        snprintf(why, sizeof why, "handshake %s: the worker did not answer within %d s", step, HANDSHAKE_TIMEOUT_S);
    else
        snprintf(why, sizeof why, "handshake %s failed: %s", step, strerror(err));
    tf_log("%s", why);
    note_worker_lost(why);
    return CUDA_ERROR_NO_DEVICE;
}

static CUresult handshake(int fd, const char *token)
{
    size_t tl = strlen(token);
    if (tl > TF_MAX_TOKEN) { tf_log("TF_LEASE is too long"); return CUDA_ERROR_INVALID_VALUE; }
    tf_hello_hdr h = {.version = TF_HELLO_VERSION, .token_len = (uint32_t)tl};
    memcpy(h.magic, TF_HELLO_MAGIC, 4);
    struct iovec v[2] = {{&h, sizeof h}, {(void *)(uintptr_t)token, tl}};
    if (send_all(fd, v, tl ? 2 : 1)) return handshake_lost("send", errno);
    tf_hello_reply r;
    if (recv_exact(fd, &r, sizeof r)) return handshake_lost("reply", errno);
    if (memcmp(r.magic, TF_REPLY_MAGIC, 4)) {
        tf_log("handshake: no valid reply from the worker");
        return CUDA_ERROR_NO_DEVICE;
    }
    char msg[1024] = "";
    uint32_t ml = r.msg_len;
    uint32_t keep = ml < sizeof msg - 1 ? ml : (uint32_t)sizeof msg - 1;
    if (keep && recv_exact(fd, msg, keep)) return CUDA_ERROR_NO_DEVICE;
    msg[keep] = 0;
    for (uint32_t left = ml - keep; left > 0;) {  /* drain an over-long message */
        char sink[256];
        uint32_t k = left < sizeof sink ? left : (uint32_t)sizeof sink;
        if (recv_exact(fd, sink, k)) return CUDA_ERROR_NO_DEVICE;
        left -= k;
    }
    if (r.status != 0) {
        tf_log("worker refused the session (%d): %s", r.status, msg);
        return (CUresult)r.status;
    }
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------ shared-memory copies */
#define SHM_SLOT (8u << 20)
#define SHM_MIN_ASYNC_HTOD (256u << 10)

/* Same host: a memfd window the executor maps too, so big copies are two memcpys instead of two
 * socket copies. TF_SHM=0 turns it off. */
static void shm_setup(void)
{
    const char *off = getenv("TF_SHM");
    if (off && strcmp(off, "0") == 0) return;
    int fd = memfd_create("tf-stub-copy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return;
    size_t size = 2 * (size_t)SHM_SLOT;
    void *p = MAP_FAILED;
    /* sealed size: the executor maps it and must never fault on a window the client shrank */
    if (ftruncate(fd, (off_t)size) == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { close(fd); return; }
    tfc_call c;
    CUresult rc = enc_tfShmAttach(&c, size);
    if (rc == CUDA_SUCCESS) rc = sync_call(&c, fd);
    close(fd);
    if (rc != CUDA_SUCCESS) {
        tf_debug("shared-memory copies off (worker said %d)", rc);
        munmap(p, size);
        return;
    }
    g.shm = p;
    g.shm_slot = SHM_SLOT;
}

/* 1 when the worker maps memory this process passes it (same host, the shared-memory window is on). */
int tf_same_host_shm(void) { return g.shm != NULL; }

/* The pieces of a host box that fit one slot: whole slices (as many as fit), else whole rows of one slice,
 * else slot-sized parts of one row (a 1D copy bigger than a slot). */
static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

static size_t shm_pieces_per_slice(const tf_host_box *b, size_t slot)
{
    return b->width <= slot ? ceil_div(b->height, slot / b->width) : b->height * ceil_div(b->width, slot);
}

static size_t shm_pieces(const tf_host_box *b, size_t slot)
{
    size_t plane = b->width * b->height;
    return plane <= slot ? ceil_div(b->depth, slot / plane) : b->depth * shm_pieces_per_slice(b, slot);
}

static tf_box_piece shm_piece_of(const tf_host_box *b, size_t slot, size_t k)
{
    size_t plane = b->width * b->height;
    if (plane <= slot) {
        size_t slices = slot / plane;
        tf_box_piece p = {.z = k * slices, .w = b->width, .h = b->height};
        p.d = b->depth - p.z < slices ? b->depth - p.z : slices;
        return p;
    }
    size_t per = shm_pieces_per_slice(b, slot);
    tf_box_piece p = {.z = k / per, .d = 1};
    k %= per;
    if (b->width <= slot) {
        size_t rows = slot / b->width;
        p.y = k * rows;
        p.h = b->height - p.y < rows ? b->height - p.y : rows;
        p.w = b->width;
    } else {
        size_t parts = ceil_div(b->width, slot);
        p.y = k / parts;
        p.x = (k % parts) * slot;
        p.h = 1;
        p.w = b->width - p.x < slot ? b->width - p.x : slot;
    }
    return p;
}

/* Host bytes of piece p to the window (to_device) or back; the slot holds its rows packed. */
static void shm_move(const tf_host_box *b, const tf_box_piece *p, uint8_t *slot, int to_device)
{
    for (size_t z = 0; z < p->d; z++) {
        for (size_t r = 0; r < p->h; r++) {
            uint8_t *host = b->base + (p->z + z) * b->slice + (p->y + r) * b->pitch + p->x;
            uint8_t *packed = slot + (z * p->h + r) * p->w;
            if (to_device) memcpy(packed, host, p->w);
            else memcpy(host, packed, p->w);
        }
    }
}

/* One copy in pieces with at most two requests in flight (the window's two slots, or two socket requests
 * whose replies land in the caller's memory): encode builds piece i's request; landed, if set, runs once
 * piece i's reply is in. */
typedef struct chunked_copy {
    size_t count;                                        /* pieces */
    CUresult (*encode)(void *arg, size_t i, tfc_call *c);
    void (*landed)(void *arg, size_t i);
    void *arg;                                           /* the copy's own description */
} chunked_copy;

/* Runs cc with g.mu held: the next two pieces are sent before the first reply is read, and no request
 * follows an error reply (the pieces already sent are still answered). -> the first error. */
static CUresult chunked_copy_locked(const chunked_copy *cc)
{
    CUresult rc = g.fd < 0 ? (g.dead ? g.dead : CUDA_ERROR_NOT_INITIALIZED) : CUDA_SUCCESS;
    size_t sent = 0, done = 0;
    tfc_call c[2];
    CUresult first_err = CUDA_SUCCESS;
    while (rc == CUDA_SUCCESS && done < cc->count) {
        while (rc == CUDA_SUCCESS && first_err == CUDA_SUCCESS && sent < cc->count && sent - done < 2) {
            rc = cc->encode(cc->arg, sent, &c[sent % 2]);
            if (rc == CUDA_SUCCESS) rc = precheck_locked(&c[sent % 2]);
            if (rc == CUDA_SUCCESS) rc = send_frame_locked(&c[sent % 2], -1);
            sent++;
        }
        if (rc != CUDA_SUCCESS || done == sent) break;
        CUresult r = recv_reply_locked(&c[done % 2]);
        if (g.fd < 0) { rc = r; break; }
        if (r == CUDA_SUCCESS && cc->landed) cc->landed(cc->arg, done);
        if (r != CUDA_SUCCESS && first_err == CUDA_SUCCESS) first_err = r;
        done++;
    }
    return rc != CUDA_SUCCESS ? rc : first_err;
}

CUresult tfc_pipelined(size_t count, CUresult (*encode)(void *arg, size_t i, tfc_call *c),
                       void (*landed)(void *arg, size_t i), void *arg)
{
    chunked_copy cc = {count, encode, landed, arg};
    pthread_mutex_lock(&g.mu);
    CUresult rc = chunked_copy_locked(&cc);
    pthread_mutex_unlock(&g.mu);
    return rc;
}

/* A copy through the window: a host box, the encoder of its far side; scratch holds what a piece's
 * request points to until it is sent. */
typedef struct shm_copy {
    const tf_host_box *box;
    tf_shm_piece_fn enc;
    const void *far;
    int to_device;
    CUstream stream;
    _Alignas(max_align_t) uint8_t scratch[TF_SHM_SCRATCH];
} shm_copy;

/* piece i through the window's slot i%2 */
static CUresult shm_piece_encode(void *arg, size_t i, tfc_call *c)
{
    shm_copy *s = arg;
    tf_box_piece p = shm_piece_of(s->box, g.shm_slot, i);
    uint64_t slot_off = (i % 2) * g.shm_slot;
    if (s->to_device) shm_move(s->box, &p, g.shm + slot_off, 1);
    return s->enc(c, s->far, s->to_device, &p, slot_off, s->stream, s->scratch);
}

static void shm_piece_landed(void *arg, size_t i)
{
    shm_copy *s = arg;
    tf_box_piece p = shm_piece_of(s->box, g.shm_slot, i);
    shm_move(s->box, &p, g.shm + (i % 2) * g.shm_slot, 0);
}

/* Pipelined copy through the window: piece k goes to slot k%2; at most two requests in flight, and a
 * slot is refilled (or read out) only after the reply of the request that used it. Every copy that waits
 * for its reply takes the window whatever its size (a 4 KiB copy: one round trip and two memcpys instead
 * of 4 KiB through the socket both ways; benchmarks/RESULTS.md); a host-to-device copy the caller could
 * send without waiting (async) takes it only from SHM_MIN_ASYNC_HTOD bytes. Returns 0 when the window
 * cannot be used (the caller takes the socket path). */
int tf_shm_copy(int to_device, const tf_host_box *box, tf_shm_piece_fn enc, const void *far, CUstream hStream,
                int async, CUresult *out)
{
    size_t n = box->width * box->height * box->depth;
    if (!g.shm || n == 0 || (to_device && async && n < SHM_MIN_ASYNC_HTOD)) return 0;
    *out = tf_stream_wire(&hStream);  /* here: the encoders below run with the lock held */
    if (*out) return 1;
    shm_copy sc = {box, enc, far, to_device, hStream, {0}};
    chunked_copy cc = {shm_pieces(box, g.shm_slot), shm_piece_encode, to_device ? NULL : shm_piece_landed, &sc};
    pthread_mutex_lock(&g.mu);
    *out = chunked_copy_locked(&cc);
    pthread_mutex_unlock(&g.mu);
    return 1;
}

/* A device-to-host copy over the socket: TF_COPY_CHUNK bytes per piece */
typedef struct socket_dtoh {
    uint8_t *host;
    CUdeviceptr dev;
    size_t n;
    CUstream stream;
    int async;
} socket_dtoh;

/* piece i over the socket: its reply is read straight into the caller's memory */
static CUresult socket_dtoh_encode(void *arg, size_t i, tfc_call *c)
{
    socket_dtoh *s = arg;
    size_t off = i * (size_t)TF_COPY_CHUNK, k = s->n - off < TF_COPY_CHUNK ? s->n - off : TF_COPY_CHUNK;
    return s->async ? enc_cuMemcpyDtoHAsync_v2(c, s->host + off, s->dev + off, k, s->stream)
                    : enc_cuMemcpyDtoH_v2(c, s->host + off, s->dev + off, k);
}

/* Device-to-host copy over the socket in TF_COPY_CHUNK pieces with two requests in flight, so the
 * worker starts on the next piece while this side reads the previous one (replies land straight in
 * the caller's memory). */
CUresult tf_pipelined_dtoh(void *host, CUdeviceptr dev, size_t n, CUstream hStream, int async)
{
    CUresult wrc = async ? tf_stream_wire(&hStream) : CUDA_SUCCESS;  /* the encoders run with the lock held */
    if (wrc) return wrc;
    socket_dtoh sd = {host, dev, n, hStream, async};
    return tfc_pipelined((n + TF_COPY_CHUNK - 1) / TF_COPY_CHUNK, socket_dtoh_encode, NULL, &sd);
}

/* A forked child shares the parent's socket: it must never speak on it (CUDA is unusable after fork,
 * as with NVIDIA's driver). */
static void after_fork_in_child(void)
{
    if (g.fd >= 0) close(g.fd);
    g.fd = -1;
    tf_tls_free(g.tls);   /* frees memory only: nothing is sent on the parent's session */
    g.tls = NULL;
    g.dead = CUDA_ERROR_NOT_INITIALIZED;
    g.blen = 0;
    g.npend = 0;
    pthread_mutex_init(&g.mu, NULL);
    pthread_mutex_init(&g.map_mu, NULL);
}

/* The lease token: TF_LEASE_FILE (a 0600 file `tensorfusion run` rewrites at each renewal, so a program
 * started long after the allocation still presents a fresh token) wins over TF_LEASE. A file that is named
 * but cannot be read is an error, never a silent fall back to an older token. */
static CUresult lease_token(char *buf, size_t cap)
{
    const char *path = getenv("TF_LEASE_FILE");
    if (path && *path) {
        FILE *f = fopen(path, "r");
        if (!f) { tf_log("TF_LEASE_FILE %s: %s", path, strerror(errno)); return CUDA_ERROR_NOT_PERMITTED; }
        size_t n = fread(buf, 1, cap - 1, f);
        int err = ferror(f), more = fgetc(f) != EOF;
        fclose(f);
        if (err || more) { tf_log("TF_LEASE_FILE %s: unreadable or too long", path); return CUDA_ERROR_NOT_PERMITTED; }
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
        buf[n] = 0;
        return CUDA_SUCCESS;
    }
    const char *token = getenv("TF_LEASE");
    size_t n = token ? strlen(token) : 0;
    if (n >= cap) { tf_log("TF_LEASE is too long"); return CUDA_ERROR_INVALID_VALUE; }
    memcpy(buf, token ? token : "", n + 1);
    return CUDA_SUCCESS;
}

static void connect_now(void)
{
    if (pthread_atfork(NULL, NULL, after_fork_in_child)) {
        g.init_rc = CUDA_ERROR_OPERATING_SYSTEM;
        return;
    }
    const char *spec = getenv("TF_WORKER");
    static char token[TF_MAX_TOKEN + 2];
    CUresult trc = lease_token(token, sizeof token);
    if (trc) {
        g.init_rc = trc;
        return;
    }
    if (!spec || !*spec) {
        tf_log("TF_WORKER is not set (unix:/path/to.sock, tcp:host:port or tls:host:port)");
        g.init_rc = CUDA_ERROR_NO_DEVICE;
        return;
    }
    char host[256] = "";
    int fd = dial(spec, host, sizeof host);
    if (fd < 0) {
        int e = errno;
        char why[320];
        snprintf(why, sizeof why, "cannot connect to %s: %s", spec,
                 e == EINPROGRESS || e == EAGAIN ? "no answer within the handshake deadline" : strerror(e));
        tf_log("%s", why);
        if (e != EINVAL && e != ENAMETOOLONG) note_worker_lost(why);   /* not a malformed TF_WORKER */
        g.init_rc = CUDA_ERROR_NO_DEVICE;
        return;
    }
    int tls = strncmp(spec, "tls:", 4) == 0;
    CUresult rc = CUDA_SUCCESS;
    if (tls && !(g.tls = tf_tls_connect(fd, host, &rc))) {
        if (rc == CUDA_SUCCESS) rc = CUDA_ERROR_NO_DEVICE;
        /* NO_DEVICE: the handshake broke off or timed out (an untrusted certificate is NOT_PERMITTED: no loss) */
        if (rc == CUDA_ERROR_NO_DEVICE) note_worker_lost("TLS handshake with the worker failed or timed out");
    }
    if (rc == CUDA_SUCCESS) rc = handshake(fd, token);
    if (rc == CUDA_SUCCESS && set_io_deadline(fd, 0)) {
        tf_log("cannot configure the connection to %s: %s", spec, strerror(errno));
        rc = CUDA_ERROR_NO_DEVICE;
    }
    if (rc) {
        tf_tls_free(g.tls);
        g.tls = NULL;
        close(fd);
        g.init_rc = rc;
        return;
    }
    g.fd = fd;
    int drv = 0, cnt = 0;
    rc = rpc_tfHello(TF_TABLE_HASH, &drv, &cnt, g.info.devs);
    if (rc) {
        tf_log("session hello failed (%d)", rc);
        if (g.fd >= 0) close(g.fd);   /* (a lost connection already closed it) */
        tf_tls_free(g.tls);
        g.tls = NULL;
        g.fd = -1;
        g.init_rc = rc;
        return;
    }
    /* what a remote device cannot do for this process: its memory is not in our address space (managed
     * memory works, kept coherent at calls and synchronizes, but not concurrently with device work) */
    static const CUdevice_attribute not_here[] = {
        CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS,
        CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS, CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY,
        CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES,
        CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST,
        CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM,
    };
    /* ...except page-locked memory on the same host, which both processes map (api_memory.c) */
    static const CUdevice_attribute same_host[] = {
        CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY, CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM,
    };
    int backend_says[TF_MAX_DEVICES][2];
    for (int d = 0; d < TF_MAX_DEVICES; d++) {
        for (size_t i = 0; i < 2; i++) backend_says[d][i] = g.info.devs[d].attr[same_host[i]];
        for (size_t i = 0; i < sizeof not_here / sizeof not_here[0]; i++)
            if ((int)not_here[i] < TF_MAX_ATTR) g.info.devs[d].attr[not_here[i]] = 0;
    }
    g.info.driver_version = drv;
    g.info.dev_count = cnt < 0 ? 0 : cnt > TF_MAX_DEVICES ? TF_MAX_DEVICES : cnt;
    g.info.connected = 1;
    if (strncmp(spec, "unix:", 5) == 0) shm_setup();
    if (g.shm)
        for (int d = 0; d < TF_MAX_DEVICES; d++)
            for (size_t i = 0; i < 2; i++) g.info.devs[d].attr[same_host[i]] = backend_says[d][i];
    tf_debug("connected to %s: %d device(s), backend driver %d", spec, g.info.dev_count, drv);
    g.init_rc = CUDA_SUCCESS;
}

CUresult tf_connect_once(void)
{
    pthread_once(&g.once, connect_now);
    return g.init_rc;
}

const tf_session_info *tf_session(void) { return &g.info; }

/* ------------------------------------------------------------------------ allocation map */
static size_t map_lower(CUdeviceptr p)  /* first index with base > p */
{
    size_t lo = 0, hi = g.nmap;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g.map[mid].base <= p) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

void tf_devmap_add(CUdeviceptr p, size_t n) { tf_devmap_add_on(p, n, tf_current_device()); }

static void map_add(CUdeviceptr p, size_t n, int dev, int outlives_ctx)
{
    CUcontext ctx = tf_ctx_current();
    pthread_mutex_lock(&g.map_mu);
    size_t i = map_lower(p);
    if (i > 0 && g.map[i - 1].base == p) {
        g.map[i - 1].size = n;
        g.map[i - 1].ctx = ctx;
        g.map[i - 1].dev = dev;
        g.map[i - 1].outlives_ctx = outlives_ctx;
    } else {
        if (g.nmap == g.map_cap) {
            size_t cap = g.map_cap ? g.map_cap * 2 : 256;
            void *m = realloc(g.map, cap * sizeof *g.map);
            if (!m) { pthread_mutex_unlock(&g.map_mu); return; }
            g.map = m;
            g.map_cap = cap;
        }
        memmove(&g.map[i + 1], &g.map[i], (g.nmap - i) * sizeof *g.map);
        g.map[i].base = p;
        g.map[i].size = n;
        g.map[i].ctx = ctx;
        g.map[i].dev = dev;
        g.map[i].outlives_ctx = outlives_ctx;
        g.nmap++;
    }
    pthread_mutex_unlock(&g.map_mu);
}

void tf_devmap_add_on(CUdeviceptr p, size_t n, int dev) { map_add(p, n, dev, 0); }

void tf_devmap_add_mapping(CUdeviceptr p, size_t n, int dev) { map_add(p, n, dev, 1); }

void tf_devmap_ctx_gone(CUcontext ctx)
{
    pthread_mutex_lock(&g.map_mu);
    size_t kept = 0;
    for (size_t i = 0; i < g.nmap; i++)
        if (g.map[i].ctx != ctx || g.map[i].outlives_ctx) g.map[kept++] = g.map[i];
    g.nmap = kept;
    pthread_mutex_unlock(&g.map_mu);
}

void tf_devmap_del(CUdeviceptr p)
{
    pthread_mutex_lock(&g.map_mu);
    size_t i = map_lower(p);
    if (i > 0 && g.map[i - 1].base == p) {
        memmove(&g.map[i - 1], &g.map[i], (g.nmap - i) * sizeof *g.map);
        g.nmap--;
    }
    pthread_mutex_unlock(&g.map_mu);
}

int tf_devmap_owner(CUdeviceptr p, CUcontext *ctx, int *dev)
{
    pthread_mutex_lock(&g.map_mu);
    size_t i = map_lower(p);
    int found = i > 0 && p - g.map[i - 1].base < (g.map[i - 1].size ? g.map[i - 1].size : 1);
    if (found) *ctx = g.map[i - 1].ctx, *dev = g.map[i - 1].dev;
    pthread_mutex_unlock(&g.map_mu);
    return found;
}

int tf_devmap_find(CUdeviceptr p, CUdeviceptr *base, size_t *size)
{
    pthread_mutex_lock(&g.map_mu);
    size_t i = map_lower(p);
    int found = 0;
    if (i > 0 && p - g.map[i - 1].base < (g.map[i - 1].size ? g.map[i - 1].size : 1)) {
        found = 1;
        if (base) *base = g.map[i - 1].base;
        if (size) *size = g.map[i - 1].size;
    }
    pthread_mutex_unlock(&g.map_mu);
    return found;
}

/* ------------------------------------------------------------- session state, asked by tfclient */
/* 1 while this process holds an open session with its GPU worker (connected and not lost), else 0.
 * tfclient.attach asks it (ctypes) when a lease ends: with a session open, CUDA users in the process
 * (CuPy's module unloads and memory pools, torch's caching allocator) keep calling the driver until
 * the interpreter is gone, so the vGPU must be released only after the process exits. Not part of
 * the CUDA API; exported by exports.map (tfStub*). */
__attribute__((visibility("default"))) int tfStubSessionOpen(void)
{
    pthread_mutex_lock(&g.mu);
    int open = g.fd >= 0 && !g.dead;
    pthread_mutex_unlock(&g.mu);
    return open;
}
