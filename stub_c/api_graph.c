/* api_graph.c - the client stub's hand-written entry points for stream capture and CUDA graphs.
 * Rows of proto/calls.tbl's graphs section marked `local` or `stub=hand`; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 *
 * Capture and graphs run in the GPU worker process, where the streams live: the launches, copies and
 * memsets the stub already forwards land in the capturing stream there, and graphs, nodes and executable
 * graphs are the worker's handles.
 *
 * Copies between this process's host memory and the device inside graphs (memcpy nodes, cuMemcpyHtoDAsync/
 * DtoHAsync on a capturing stream): the worker's node copies to or from a staging buffer that stands for
 * our range (tfworker/executor/exec_graph_host.c). Each launch of an executable graph with such ranges
 * sends the ranges' current bytes (sources, and destinations so that what no node writes stays as it is);
 * the destinations are written back here at the first synchronous call that finds the launch finished
 * (tf_graph_host_sync, run by transport.c after every synchronous call, like managed memory), and before a
 * host node's function runs. A later launch of a graph with host ranges first collects what is pending.
 * Refused: 2D copies of host memory during capture, arrays, host-to-host nodes (CUDA_ERROR_NOT_SUPPORTED).
 * Host nodes (cuGraphAddHostNode, cuLaunchHostFunc into a capturing stream) work: the function runs here,
 * called back by the worker when its graph reaches the node (see tfs_cuGraphAddHostNode); their parameters
 * read back and set are this process's function and argument. Node parameters of the other kinds are read
 * back and set through the worker; cuGraphNodeSetParams / cuGraphExecNodeSetParams dispatch each kind to
 * those calls (emu_c/graph_add_node.c, shared with the emulated device).
 *
 * Capture modes. The executor runs every client thread's calls on its one thread, so to the backend one
 * thread began every capture. CUDA decides per calling thread whether a potentially unsafe call (a
 * cuMemAlloc, a synchronize, ...) is prohibited: GLOBAL - if this thread began a non-relaxed capture or
 * any other thread began a GLOBAL one; THREAD_LOCAL - only this thread's non-relaxed captures count;
 * RELAXED - never. The stub keeps each client thread's mode (cuThreadExchangeStreamCaptureMode) and the
 * live captures with the thread that began them, applies those rules, and has the executor thread switch
 * to GLOBAL (prohibited: the backend then refuses and invalidates as it would) or RELAXED (allowed)
 * before the call when that answer changes (transport.c, tfSetCaptureMode). Limits: a capture is known
 * live from its cuStreamBeginCapture to its cuStreamEndCapture in this process. (Each client thread's
 * per-thread default stream is its own worker stream: api_streams.c.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_add_node.h"
#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------- capture modes */
#define MAX_LIVE_CAPTURES 256
typedef struct live_capture {
    uint64_t stream;
    pthread_t thread;
    CUstreamCaptureMode mode;
} live_capture;
static live_capture g_caps[MAX_LIVE_CAPTURES];
static int g_ncaps;
static pthread_mutex_t g_cap_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread CUstreamCaptureMode t_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
static int g_host_nodes; /* set once a host node exists (see tfs_cuGraphAddHostNode) */

/* Called by transport.c with its lock held (g_cap_mu is never held around a forwarded call). */
int tf_capture_mode_wanted(void)
{
    if (__atomic_load_n(&g_ncaps, __ATOMIC_ACQUIRE) == 0) return -1;
    if (t_mode == CU_STREAM_CAPTURE_MODE_RELAXED) return CU_STREAM_CAPTURE_MODE_RELAXED;
    int prohibited = 0;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&g_cap_mu);
    for (int i = 0; i < g_ncaps && !prohibited; i++) {
        const live_capture *c = &g_caps[i];
        if (pthread_equal(c->thread, self))
            prohibited = c->mode != CU_STREAM_CAPTURE_MODE_RELAXED;
        else
            prohibited = t_mode == CU_STREAM_CAPTURE_MODE_GLOBAL && c->mode == CU_STREAM_CAPTURE_MODE_GLOBAL;
    }
    pthread_mutex_unlock(&g_cap_mu);
    return prohibited ? CU_STREAM_CAPTURE_MODE_GLOBAL : CU_STREAM_CAPTURE_MODE_RELAXED;
}

/* Keys are streams as the worker knows them: CU_STREAM_PER_THREAD is this thread's own (api_streams.c). */
static void capture_began(CUstream s, CUstreamCaptureMode mode)
{
    s = tf_stream_key(s);
    pthread_mutex_lock(&g_cap_mu);
    if (g_ncaps < MAX_LIVE_CAPTURES) {
        g_caps[g_ncaps] = (live_capture){(uint64_t)(uintptr_t)s, pthread_self(), mode};
        __atomic_store_n(&g_ncaps, g_ncaps + 1, __ATOMIC_RELEASE);
    } else {
        tf_log("more than %d stream captures at once: capture-mode rules for the later ones are not applied",
               MAX_LIVE_CAPTURES);
    }
    pthread_mutex_unlock(&g_cap_mu);
}

/* The capture of stream s, or -1; its mode and thread. */
static int capture_find(CUstream s, live_capture *out)
{
    int found = -1;
    s = tf_stream_key(s);
    pthread_mutex_lock(&g_cap_mu);
    for (int i = 0; i < g_ncaps; i++)
        if (g_caps[i].stream == (uint64_t)(uintptr_t)s) { found = i; *out = g_caps[i]; break; }
    pthread_mutex_unlock(&g_cap_mu);
    return found;
}

int tf_capture_any_live(void) { return __atomic_load_n(&g_ncaps, __ATOMIC_ACQUIRE) != 0; }

int tf_capture_live_on(CUstream s)
{
    live_capture c;
    return __atomic_load_n(&g_ncaps, __ATOMIC_ACQUIRE) != 0 && capture_find(s, &c) >= 0;
}

static void capture_ended(CUstream s)
{
    s = tf_stream_key(s);
    pthread_mutex_lock(&g_cap_mu);
    for (int i = 0; i < g_ncaps; i++) {
        if (g_caps[i].stream == (uint64_t)(uintptr_t)s) {
            g_caps[i] = g_caps[g_ncaps - 1];
            __atomic_store_n(&g_ncaps, g_ncaps - 1, __ATOMIC_RELEASE);
            break;
        }
    }
    pthread_mutex_unlock(&g_cap_mu);
}

static int mode_ok(CUstreamCaptureMode m)
{
    return m == CU_STREAM_CAPTURE_MODE_GLOBAL || m == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL ||
           m == CU_STREAM_CAPTURE_MODE_RELAXED;
}

CUresult tfs_cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    if (!mode || !mode_ok(*mode)) return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode old = t_mode;
    t_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------- stream capture */
CUresult tfs_cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    NEED_INIT();
    if (!mode_ok(mode)) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rpc_cuStreamBeginCapture_v2(hStream, mode);
    if (rc == CUDA_SUCCESS) capture_began(hStream, mode);
    return rc;
}

CUresult tfs_cuStreamBeginCapture(CUstream hStream)
{
    return tfs_cuStreamBeginCapture_v2(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

CUresult tfs_cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph, const CUgraphNode *dependencies,
                                         const CUgraphEdgeData *dependencyData, size_t numDependencies,
                                         CUstreamCaptureMode mode)
{
    NEED_INIT();
    if (!mode_ok(mode) || (numDependencies && !dependencies) || numDependencies > TF_MAX_CAPTURE_DEPS)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rpc_cuStreamBeginCaptureToGraph(hStream, hGraph, dependencies, dependencyData, numDependencies,
                                                  mode);
    if (rc == CUDA_SUCCESS) capture_began(hStream, mode);
    return rc;
}

CUresult tfs_cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    NEED_INIT();
    live_capture c;
    /* the driver's rule; the executor's single thread cannot see which client thread calls */
    if (capture_find(hStream, &c) >= 0 && c.mode != CU_STREAM_CAPTURE_MODE_RELAXED &&
        !pthread_equal(c.thread, pthread_self()))
        return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    CUresult rc = rpc_cuStreamEndCapture(hStream, phGraph);
    if (rc != CUDA_ERROR_INVALID_VALUE && rc != CUDA_ERROR_INVALID_HANDLE && rc != CUDA_ERROR_DEVICE_UNAVAILABLE)
        capture_ended(hStream);  /* ended, invalidated or never capturing: no longer live either way */
    if (rc == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED) {
        /* a refused call of this capture may still be latched: the invalidated capture was its answer */
        tfc_drop_pending((uint64_t)(uintptr_t)tf_stream_key(hStream));
        if (phGraph) *phGraph = NULL;
    }
    return rc;
}

/* Dependencies are copied out per thread; valid until this thread asks again (the driver keeps them
 * until the next call on the stream). */
static __thread CUgraphNode t_deps[TF_MAX_CAPTURE_DEPS];
static __thread CUgraphEdgeData t_edges[TF_MAX_CAPTURE_DEPS];

CUresult tfs_cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out,
                                       CUgraph *graph_out, const CUgraphNode **dependencies_out,
                                       const CUgraphEdgeData **edgeData_out, size_t *numDependencies_out)
{
    NEED_INIT();
    if (!captureStatus_out) return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    cuuint64_t id = 0;
    CUgraph g = NULL;
    size_t n = 0;
    unsigned long long deps[TF_MAX_CAPTURE_DEPS];
    CUresult rc = rpc_tfStreamGetCaptureInfo(hStream, &st, &id, &g, &n, deps, t_edges);
    if (rc) return rc;
    if (n > TF_MAX_CAPTURE_DEPS) return CUDA_ERROR_UNKNOWN;
    for (size_t i = 0; i < n; i++) t_deps[i] = (CUgraphNode)(uintptr_t)deps[i];
    *captureStatus_out = st;
    if (id_out) *id_out = id;
    if (graph_out) *graph_out = g;
    if (dependencies_out) *dependencies_out = n ? t_deps : NULL;
    if (edgeData_out) {
        int any = 0;  /* NULL when every edge is a plain one, as the driver answers */
        for (size_t i = 0; i < n; i++) any |= t_edges[i].from_port || t_edges[i].to_port || t_edges[i].type;
        *edgeData_out = any ? t_edges : NULL;
    }
    if (numDependencies_out) *numDependencies_out = n;
    return CUDA_SUCCESS;
}

CUresult tfs_cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out,
                                       CUgraph *graph_out, const CUgraphNode **dependencies_out,
                                       size_t *numDependencies_out)
{
    return tfs_cuStreamGetCaptureInfo_v3(hStream, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
                                         numDependencies_out);
}

/* ------------------------------------------------------------------- older ABIs of graph calls */
CUresult tfs_cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, size_t *numEdges)
{
    return tfs_cuGraphGetEdges_v2(hGraph, from, to, NULL, numEdges);
}

CUresult tfs_cuGraphNodeGetDependencies(CUgraphNode hNode, CUgraphNode *dependencies, size_t *numDependencies)
{
    return tfs_cuGraphNodeGetDependencies_v2(hNode, dependencies, NULL, numDependencies);
}

CUresult tfs_cuGraphNodeGetDependentNodes(CUgraphNode hNode, CUgraphNode *dependentNodes, size_t *numDependentNodes)
{
    return tfs_cuGraphNodeGetDependentNodes_v2(hNode, dependentNodes, NULL, numDependentNodes);
}

CUresult tfs_cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                                    size_t numDependencies)
{
    return tfs_cuGraphAddDependencies_v2(hGraph, from, to, NULL, numDependencies);
}

CUresult tfs_cuGraphRemoveDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to,
                                       size_t numDependencies)
{
    return tfs_cuGraphRemoveDependencies_v2(hGraph, from, to, NULL, numDependencies);
}

CUresult tfs_cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                                   char *logBuffer, size_t bufferSize)
{
    if (phErrorNode) *phErrorNode = NULL;
    if (logBuffer && bufferSize) logBuffer[0] = 0;
    return tfs_cuGraphInstantiateWithFlags(phGraphExec, hGraph, 0);
}

CUresult tfs_cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode, char *logBuffer,
                                size_t bufferSize)
{
    return tfs_cuGraphInstantiate_v2(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize);
}

/* ----------------------------------------------------------------------- executable graphs */
/* The executable graphs the worker handed out: cuGraphLaunch is batched (no reply), so a bogus handle
 * is refused here, at the call, as the driver does. */
#define EXEC_BUCKETS 256
typedef struct exec_entry {
    uint64_t h;
    unsigned nr;             /* client host ranges of its memcpy nodes (exec_graph_host.c), 0 if none */
    unsigned long long *rng; /* nr (address, bytes, to_device) triples, in launch-payload order */
    size_t h2d, d2h;         /* payload bytes of a launch, bytes written back */
    int pending;             /* launched; destinations not written back yet */
    struct exec_entry *next;
} exec_entry;
static int g_npending;       /* execs with pending write-backs (atomic reads) */
static exec_entry *g_execs[EXEC_BUCKETS];
static pthread_mutex_t g_exec_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t exec_bucket(uint64_t h) { return (size_t)((h >> 4) * 0x9E3779B97F4A7C15ull >> 56) % EXEC_BUCKETS; }

static void exec_remember(CUgraphExec e, unsigned nr, unsigned long long *rng)
{
    exec_entry *n = calloc(1, sizeof *n);
    if (!n) { free(rng); return; }  /* unknown to the stub: its launches are then refused, never unchecked */
    n->h = (uint64_t)(uintptr_t)e;
    n->nr = nr;
    n->rng = rng;
    for (unsigned i = 0; i < nr; i++) {
        n->h2d += rng[3 * i + 1];
        if (!rng[3 * i + 2]) n->d2h += rng[3 * i + 1];
    }
    pthread_mutex_lock(&g_exec_mu);
    n->next = g_execs[exec_bucket(n->h)];
    g_execs[exec_bucket(n->h)] = n;
    pthread_mutex_unlock(&g_exec_mu);
}

static int exec_known(CUgraphExec e, int forget)
{
    uint64_t h = (uint64_t)(uintptr_t)e;
    int found = 0;
    pthread_mutex_lock(&g_exec_mu);
    for (exec_entry **p = &g_execs[exec_bucket(h)]; *p; p = &(*p)->next) {
        if ((*p)->h != h) continue;
        found = 1;
        if (forget) {
            exec_entry *d = *p;
            *p = d->next;
            if (d->pending) __atomic_sub_fetch(&g_npending, 1, __ATOMIC_RELEASE);
            free(d->rng);
            free(d);
        }
        break;
    }
    pthread_mutex_unlock(&g_exec_mu);
    return found;
}

/* A new executable graph: the stub learns its client host ranges, if any. */
static CUresult exec_new(CUgraphExec e)
{
    unsigned n = 0;
    unsigned long long *rng = malloc(sizeof(unsigned long long) * 3 * TF_MAX_HOST_RANGES);
    if (!rng) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = rpc_tfGraphHostRanges(e, &n, rng);
    if (rc == CUDA_SUCCESS && n > TF_MAX_HOST_RANGES) rc = CUDA_ERROR_UNKNOWN;
    if (rc) {
        free(rng);
        (void)rpc_cuGraphExecDestroy(e);
        return rc;
    }
    if (n == 0) {
        free(rng);
        rng = NULL;
    }
    exec_remember(e, n, rng);
    return CUDA_SUCCESS;
}

CUresult tfs_cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    CUresult rc = rpc_cuGraphInstantiateWithFlags(phGraphExec, hGraph, flags);
    if (rc == CUDA_SUCCESS && phGraphExec) rc = exec_new(*phGraphExec);
    return rc;
}

CUresult tfs_cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                          CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    CUresult rc = rpc_cuGraphInstantiateWithParams(phGraphExec, hGraph, instantiateParams);
    if (rc == CUDA_SUCCESS && phGraphExec) rc = exec_new(*phGraphExec);
    return rc;
}

/* A copy of an exec entry's ranges taken under the lock (the entry may go away during a call). */
typedef struct exec_ranges { uint64_t h; unsigned nr; unsigned long long *rng; size_t h2d, d2h; int pending; } exec_ranges;

static int exec_ranges_get(uint64_t h, exec_ranges *out)
{
    int found = 0;
    pthread_mutex_lock(&g_exec_mu);
    for (exec_entry *p = g_execs[exec_bucket(h)]; p; p = p->next) {
        if (p->h != h) continue;
        found = 1;
        *out = (exec_ranges){h, p->nr, NULL, p->h2d, p->d2h, p->pending};
        if (p->nr && (out->rng = malloc(sizeof(unsigned long long) * 3 * p->nr)) != NULL)
            memcpy(out->rng, p->rng, sizeof(unsigned long long) * 3 * p->nr);
        else if (p->nr) found = -1;
        break;
    }
    pthread_mutex_unlock(&g_exec_mu);
    return found;
}

static void exec_set_pending(uint64_t h, int pending)
{
    pthread_mutex_lock(&g_exec_mu);
    for (exec_entry *p = g_execs[exec_bucket(h)]; p; p = p->next)
        if (p->h == h) {
            if (p->pending != pending) __atomic_add_fetch(&g_npending, pending ? 1 : -1, __ATOMIC_RELEASE);
            p->pending = pending;
            break;
        }
    pthread_mutex_unlock(&g_exec_mu);
}

/* Writes the destination bytes of r (d2h bytes, payload order) into this process's memory. */
static void write_back(const exec_ranges *r, const uint8_t *bytes)
{
    size_t off = 0;
    for (unsigned i = 0; i < r->nr; i++) {
        if (r->rng[3 * i + 2]) continue;
        memcpy((void *)(uintptr_t)r->rng[3 * i], bytes + off, r->rng[3 * i + 1]);
        off += r->rng[3 * i + 1];
    }
}

/* Collects the destinations of exec h's last launch if it has finished (or waits for it: wait = 1). */
static CUresult exec_fetch(uint64_t h, int wait)
{
    exec_ranges r = {0};
    int got = exec_ranges_get(h, &r);
    if (got < 0) return CUDA_ERROR_OUT_OF_MEMORY;
    if (!got || !r.pending) { free(r.rng); return CUDA_SUCCESS; }
    uint8_t *buf = malloc(r.d2h ? r.d2h : 1);
    int done = 0;
    CUresult rc = buf ? rpc_tfGraphFetch((CUgraphExec)(uintptr_t)h, wait, r.d2h, &done, buf) : CUDA_ERROR_OUT_OF_MEMORY;
    if (rc == CUDA_SUCCESS && done) {
        write_back(&r, buf);
        exec_set_pending(h, 0);
    }
    free(buf);
    free(r.rng);
    return rc;
}

/* Every exec with pending write-backs (snapshot of the handles). */
static size_t pending_list(uint64_t **out)
{
    size_t n = 0, cap = 0;
    uint64_t *v = NULL;
    pthread_mutex_lock(&g_exec_mu);
    for (int b = 0; b < EXEC_BUCKETS; b++)
        for (exec_entry *p = g_execs[b]; p; p = p->next) {
            if (!p->pending) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                uint64_t *nv = realloc(v, cap * sizeof *v);
                if (!nv) break;
                v = nv;
            }
            v[n++] = p->h;
        }
    pthread_mutex_unlock(&g_exec_mu);
    *out = v;
    return n;
}

static __thread int t_fetching;

/* After every synchronous call (transport.c): the destinations of graph launches that have finished are
 * written back, so whatever synchronizes with them (stream/event/context synchronize, a blocking copy, a
 * query that says done) sees them. wait = 1: collects every pending launch, waiting for them. */
CUresult tf_graph_host_sync(int wait)
{
    if (t_fetching || __atomic_load_n(&g_npending, __ATOMIC_ACQUIRE) == 0) return CUDA_SUCCESS;
    t_fetching = 1;
    uint64_t *v = NULL;
    size_t n = pending_list(&v);
    CUresult rc = CUDA_SUCCESS;
    for (size_t i = 0; i < n && rc == CUDA_SUCCESS; i++) rc = exec_fetch(v[i], wait);
    free(v);
    t_fetching = 0;
    return rc;
}

/* The launch being served (tfGraphLaunchHost with host nodes): a host node's call carries the graph's
 * destination bytes (transport.c hands them here before running the function). */
static exec_ranges g_serving;
static int g_serving_set;

int tf_graph_host_call_bytes(const uint8_t *bytes, size_t len)
{
    if (!g_serving_set || len != g_serving.d2h) return -1;
    write_back(&g_serving, bytes);
    return 0;
}

static CUresult launch_host(CUgraphExec e, CUstream s)
{
    CUresult rc = tf_graph_host_sync(1);  /* a shared staging buffer may still hold another launch's result */
    if (rc) return rc;
    exec_ranges r = {0};
    int got = exec_ranges_get((uint64_t)(uintptr_t)e, &r);
    if (got <= 0) return got < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_HANDLE;
    uint8_t *payload = malloc(r.h2d ? r.h2d : 1);
    if (!payload) { free(r.rng); return CUDA_ERROR_OUT_OF_MEMORY; }
    size_t off = 0;
    for (unsigned i = 0; i < r.nr; i++) {
        memcpy(payload + off, (const void *)(uintptr_t)r.rng[3 * i], r.rng[3 * i + 1]);
        off += r.rng[3 * i + 1];
    }
    int serve = __atomic_load_n(&g_host_nodes, __ATOMIC_ACQUIRE);
    if (serve) {
        g_serving = r;
        g_serving_set = 1;
    }
    rc = rpc_tfGraphLaunchHost(e, s, serve, r.h2d, payload);
    g_serving_set = 0;
    free(payload);
    free(r.rng);
    if (rc == CUDA_SUCCESS) {
        exec_set_pending((uint64_t)(uintptr_t)e, 1);
        if (serve) rc = exec_fetch((uint64_t)(uintptr_t)e, 1);  /* the served launch has finished */
    }
    return rc;
}

static CUresult exec_refresh(CUgraphExec hGraphExec);

/* The graph's parameters replace the executable graph's, host ranges included: the stub learns them anew
 * (destinations of its last launch are collected first: they belong to the old ranges). The worker answers
 * an update the driver refused with success and resultInfo saying why (ex_cuGraphExecUpdate_v2): that is
 * CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE here, the executable graph unchanged. */
CUresult tfs_cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph, CUgraphExecUpdateResultInfo *resultInfo)
{
    NEED_INIT();
    if (!resultInfo) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = exec_fetch((uint64_t)(uintptr_t)hGraphExec, 1);
    if (rc) return rc;
    rc = rpc_cuGraphExecUpdate_v2(hGraphExec, hGraph, resultInfo);
    if (rc) return rc;
    if (resultInfo->result != CU_GRAPH_EXEC_UPDATE_SUCCESS) return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
    return exec_refresh(hGraphExec);
}

/* Learns an executable graph's host ranges anew (after its nodes' parameters changed in the worker). */
static CUresult exec_refresh(CUgraphExec hGraphExec)
{
    CUresult rc;
    unsigned n = 0;
    unsigned long long *rng = malloc(sizeof(unsigned long long) * 3 * TF_MAX_HOST_RANGES);
    if (!rng) return CUDA_ERROR_OUT_OF_MEMORY;
    rc = rpc_tfGraphHostRanges(hGraphExec, &n, rng);
    if (rc == CUDA_SUCCESS && n > TF_MAX_HOST_RANGES) rc = CUDA_ERROR_UNKNOWN;
    if (rc) {
        free(rng);
        return rc;
    }
    exec_known(hGraphExec, 1);  /* replaced by an entry with the new ranges */
    exec_remember(hGraphExec, n, n ? rng : NULL);
    if (!n) free(rng);
    return CUDA_SUCCESS;
}

CUresult tfs_cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    CUresult rc = exec_fetch((uint64_t)(uintptr_t)hGraphExec, 1);  /* its last launch's results still land */
    if (rc && rc != CUDA_ERROR_INVALID_HANDLE) return rc;
    rc = rpc_cuGraphExecDestroy(hGraphExec);
    if (rc == CUDA_SUCCESS) exec_known(hGraphExec, 1);
    return rc;
}

CUresult tfs_cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    NEED_INIT();
    exec_ranges r = {0};
    int got = exec_ranges_get((uint64_t)(uintptr_t)hGraphExec, &r);
    if (got == 0) return CUDA_ERROR_INVALID_HANDLE;
    free(r.rng);
    if (got > 0 && r.nr) return launch_host(hGraphExec, hStream);
    /* host nodes call back over the host-call channel where there is one (api_hostcalls.c): the launch stays
     * asynchronous; else the launch waits for the graph, answering them meanwhile */
    if (__atomic_load_n(&g_host_nodes, __ATOMIC_ACQUIRE) && !tf_host_channel_ready())
        return rpc_tfGraphLaunchServe(hGraphExec, hStream);
    return rpc_cuGraphLaunch(hGraphExec, hStream);
}

/* ---------------------------------------------------------------------------- kernel nodes */
/* kernelParams travel packed (the launch path's per-function layout); the executor rebuilds them. */
static CUresult kernel_node_call(CUgraphNode *phNode, CUgraph hGraph, const CUgraphNode *deps, size_t ndeps,
                                 CUgraphExec hExec, CUgraphNode hNode, const CUDA_KERNEL_NODE_PARAMS *p)
{
    NEED_INIT();
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    CUfunction f = p->func ? p->func : (CUfunction)p->kern;
    if (!f) return CUDA_ERROR_INVALID_VALUE;
    uint8_t small[4096];
    const uint8_t *args = NULL;
    size_t len = 0;
    CUresult rc = tf_pack_params(f, p->kernelParams, p->extra, small, sizeof small, &args, &len);
    if (rc) return rc;
    if (len > TF_MAX_KPARAM_BYTES) rc = CUDA_ERROR_INVALID_VALUE;
    else if (phNode) rc = rpc_tfGraphAddKernelNode(phNode, hGraph, deps, ndeps, p, (unsigned)len, args);
    else rc = rpc_tfGraphKernelNodeSetParams(hExec, hNode, p, (unsigned)len, args);
    if (args != small && !p->extra) free((void *)args);
    return rc;
}

CUresult tfs_cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                     size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    if (!phGraphNode) return CUDA_ERROR_INVALID_VALUE;
    return kernel_node_call(phGraphNode, hGraph, dependencies, numDependencies, NULL, NULL, nodeParams);
}

CUresult tfs_cuGraphKernelNodeSetParams_v2(CUgraphNode hNode, const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    return kernel_node_call(NULL, NULL, NULL, 0, NULL, hNode, nodeParams);
}

CUresult tfs_cuGraphExecKernelNodeSetParams_v2(CUgraphExec hGraphExec, CUgraphNode hNode,
                                               const CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    if (!hGraphExec) return CUDA_ERROR_INVALID_VALUE;
    return kernel_node_call(NULL, NULL, NULL, 0, hGraphExec, hNode, nodeParams);
}

/* What cuGraphKernelNodeGetParams hands out: kernelParams point into a copy of the node's argument
 * values kept per node (overwritten by the next get of that node, as the node's own storage would be). */
typedef struct kparam_copy {
    uint64_t node;
    size_t cap;
    uint8_t *bytes;
    void **ptrs;
    struct kparam_copy *next;
} kparam_copy;
static kparam_copy *g_kcopies;
static pthread_mutex_t g_kcopy_mu = PTHREAD_MUTEX_INITIALIZER;

CUresult tfs_cuGraphKernelNodeGetParams_v2(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS *nodeParams)
{
    NEED_INIT();
    if (!nodeParams) return CUDA_ERROR_INVALID_VALUE;
    unsigned len = 0;
    uint8_t *buf = malloc(TF_MAX_KPARAM_BYTES);
    if (!buf) return CUDA_ERROR_OUT_OF_MEMORY;
    CUDA_KERNEL_NODE_PARAMS p;
    CUresult rc = rpc_tfGraphKernelNodeGetParams(hNode, &p, &len, buf);
    unsigned count = 0;
    const uint32_t *off = NULL, *size = NULL;
    if (rc == CUDA_SUCCESS) rc = tf_param_layout(p.func ? p.func : (CUfunction)p.kern, &count, &off, &size);
    if (rc == CUDA_SUCCESS && len > TF_MAX_KPARAM_BYTES) rc = CUDA_ERROR_UNKNOWN;
    if (rc) { free(buf); return rc; }
    pthread_mutex_lock(&g_kcopy_mu);
    kparam_copy *k = g_kcopies;
    while (k && k->node != (uint64_t)(uintptr_t)hNode) k = k->next;
    if (!k || k->cap < len + 1 || !k->ptrs) {
        /* a smaller copy may still be read by another thread: it is left in the list, never freed */
        kparam_copy *n = calloc(1, sizeof *n);
        uint8_t *bytes = malloc(len + 1);
        void **ptrs = calloc(count ? count : 1, sizeof *ptrs);
        if (!n || !bytes || !ptrs) {
            pthread_mutex_unlock(&g_kcopy_mu);
            free(n), free(bytes), free(ptrs), free(buf);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        n->node = (uint64_t)(uintptr_t)hNode;
        n->cap = len + 1;
        n->bytes = bytes;
        n->ptrs = ptrs;
        if (k) k->node = 0;  /* retired */
        n->next = g_kcopies;
        g_kcopies = n;
        k = n;
    }
    memcpy(k->bytes, buf, len);
    for (unsigned i = 0; i < count; i++) k->ptrs[i] = k->bytes + off[i];
    pthread_mutex_unlock(&g_kcopy_mu);
    free(buf);
    *nodeParams = p;
    nodeParams->kernelParams = count ? k->ptrs : NULL;
    nodeParams->extra = NULL;
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------------- memcpy and host nodes */
/* One side of a copy node: device memory (a unified pointer the stub knows as device memory counts), this
 * process's host memory (*host set to its address), or a refusal (arrays are not forwarded). */
static CUresult copy_side(const char *api, CUmemorytype *type, CUdeviceptr *dev, const void **host,
                          const char *which)
{
    if (*type == CU_MEMORYTYPE_UNIFIED) {
        if (tf_devmap_find(*dev, NULL, NULL)) {
            *type = CU_MEMORYTYPE_DEVICE;
            return CUDA_SUCCESS;
        }
        *type = CU_MEMORYTYPE_HOST;
        *host = (const void *)(uintptr_t)*dev;
        *dev = 0;
    }
    /* an array is the worker's handle, as every array handle of this stub: sent as it is, checked there */
    if (*type == CU_MEMORYTYPE_DEVICE || *type == CU_MEMORYTYPE_HOST || *type == CU_MEMORYTYPE_ARRAY)
        return CUDA_SUCCESS;
    tf_log("%s: the %s has memory type %d: CUDA_ERROR_INVALID_VALUE", api, which, (int)*type);
    return CUDA_ERROR_INVALID_VALUE;
}

/* The host side of a node, normalised: its first byte at offset 0 (x, y, z = 0), *len bytes spanned. */
static CUresult host_side(const void **host, size_t *x, size_t *y, size_t *z, size_t *pitch, size_t *height,
                          const CUDA_MEMCPY3D *c, uint64_t *len)
{
    uint64_t p = *pitch ? *pitch : c->WidthInBytes, h = *height ? *height : c->Height, d = c->Depth ? c->Depth : 1;
    uint64_t lo, rows, span;
    if (!*host || c->WidthInBytes > p || c->Height > h) return CUDA_ERROR_INVALID_VALUE;
    if (__builtin_mul_overflow((uint64_t)*z, h, &lo) || __builtin_add_overflow(lo, (uint64_t)*y, &lo) ||
        __builtin_mul_overflow(lo, p, &lo) || __builtin_add_overflow(lo, (uint64_t)*x, &lo) ||
        __builtin_mul_overflow(d - 1, h, &rows) || __builtin_add_overflow(rows, (uint64_t)c->Height - 1, &rows) ||
        __builtin_mul_overflow(rows, p, &span) || __builtin_add_overflow(span, (uint64_t)c->WidthInBytes, &span) ||
        span > TF_MAX_FRAME)
        return CUDA_ERROR_INVALID_VALUE;
    *host = (const uint8_t *)*host + lo;
    *x = *y = *z = 0;
    *pitch = p;
    *height = h;
    *len = span;
    return CUDA_SUCCESS;
}

/* A memcpy node's operands for the worker (cuGraphAddMemcpyNode, cuGraphExecMemcpyNodeSetParams): *c is
 * *in checked, its host pointers cleared. *host stays NULL for a copy between device memory and arrays;
 * otherwise it is the host range one side names, [*host, *host + *len) (the worker copies it through a
 * staging buffer). A host-to-host node is not forwarded (NOT_SUPPORTED). */
static CUresult memcpy_node_operands(const char *api, const CUDA_MEMCPY3D *in, CUDA_MEMCPY3D *c, const void **host,
                                     uint64_t *len)
{
    *c = *in;
    *host = NULL;
    *len = 0;
    if (c->WidthInBytes == 0 || c->Height == 0 || c->Depth == 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = copy_side(api, &c->srcMemoryType, &c->srcDevice, &c->srcHost, "source");
    if (rc == CUDA_SUCCESS)
        rc = copy_side(api, &c->dstMemoryType, &c->dstDevice, (const void **)&c->dstHost, "destination");
    if (rc) return rc;
    if (c->srcMemoryType != CU_MEMORYTYPE_ARRAY) c->srcArray = NULL;
    if (c->dstMemoryType != CU_MEMORYTYPE_ARRAY) c->dstArray = NULL;
    int sh = c->srcMemoryType == CU_MEMORYTYPE_HOST, dh = c->dstMemoryType == CU_MEMORYTYPE_HOST;
    if (sh && dh) {
        tf_log("%s: a host-to-host node is not supported through the stub (CUDA_ERROR_NOT_SUPPORTED)", api);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (sh || dh) {
        *host = sh ? c->srcHost : c->dstHost;
        rc = sh ? host_side(host, &c->srcXInBytes, &c->srcY, &c->srcZ, &c->srcPitch, &c->srcHeight, c, len)
                : host_side(host, &c->dstXInBytes, &c->dstY, &c->dstZ, &c->dstPitch, &c->dstHeight, c, len);
        if (rc) return rc;
    }
    c->srcHost = NULL, c->dstHost = NULL;
    return CUDA_SUCCESS;
}

CUresult tfs_cuGraphAddMemcpyNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                  size_t numDependencies, const CUDA_MEMCPY3D *copyParams, CUcontext ctx)
{
    NEED_INIT();
    if (!phGraphNode || !copyParams) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c;
    const void *host;
    uint64_t len;
    CUresult rc = memcpy_node_operands("cuGraphAddMemcpyNode", copyParams, &c, &host, &len);
    if (rc) return rc;
    if (!host) return rpc_cuGraphAddMemcpyNode(phGraphNode, hGraph, dependencies, numDependencies, &c, ctx);
    return rpc_tfGraphAddHostCopyNode(phGraphNode, hGraph, dependencies, numDependencies, &c, ctx,
                                      (unsigned long long)(uintptr_t)host, len);
}

/* A memcpy node's parameters: a side on this process's host memory comes back as the address it was given
 * (normalised: offsets 0, the address of the first byte copied). */
CUresult tfs_cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D *nodeParams)
{
    NEED_INIT();
    if (!nodeParams) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c;
    unsigned long long host = 0;
    CUresult rc = rpc_tfGraphMemcpyNodeGetParams(hNode, &c, &host);
    if (rc) return rc;
    if (c.srcMemoryType == CU_MEMORYTYPE_HOST) c.srcHost = (const void *)(uintptr_t)host;
    else if (c.dstMemoryType == CU_MEMORYTYPE_HOST) c.dstHost = (void *)(uintptr_t)host;
    *nodeParams = c;
    return CUDA_SUCCESS;
}

/* New operands for a graph's memcpy node: device memory as they are, a host range through a new staging
 * buffer of the node's graph. */
CUresult tfs_cuGraphMemcpyNodeSetParams(CUgraphNode hNode, const CUDA_MEMCPY3D *nodeParams)
{
    NEED_INIT();
    if (!nodeParams) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c;
    const void *host;
    uint64_t len;
    CUresult rc = memcpy_node_operands("cuGraphMemcpyNodeSetParams", nodeParams, &c, &host, &len);
    if (rc) return rc;
    if (!host) return rpc_cuGraphMemcpyNodeSetParams(hNode, &c);
    return rpc_tfGraphHostCopyNodeSetParams(hNode, &c, (unsigned long long)(uintptr_t)host, len);
}

/* New operands for one memcpy node of an executable graph: device memory as they are, a host range through
 * a staging buffer of this executable graph's own (the stub then learns its ranges anew). */
CUresult tfs_cuGraphExecMemcpyNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode, const CUDA_MEMCPY3D *copyParams,
                                            CUcontext ctx)
{
    NEED_INIT();
    if (!copyParams) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c;
    const void *host;
    uint64_t len;
    CUresult rc = memcpy_node_operands("cuGraphExecMemcpyNodeSetParams", copyParams, &c, &host, &len);
    if (rc) return rc;
    if (!host) return rpc_cuGraphExecMemcpyNodeSetParams(hGraphExec, hNode, &c, ctx);
    rc = exec_fetch((uint64_t)(uintptr_t)hGraphExec, 1);  /* the last launch's destinations are the old ranges */
    if (rc) return rc;
    rc = rpc_tfGraphExecHostCopySetParams(hGraphExec, hNode, &c, ctx, (unsigned long long)(uintptr_t)host, len);
    return rc ? rc : exec_refresh(hGraphExec);
}

/* cuMemcpyHtoDAsync / DtoHAsync (api_copy.c) while a capture is live: on a capturing stream the worker
 * makes the copy a node on a staging buffer for [host, host + n) (*handled = 1); otherwise the caller
 * copies as usual. */
CUresult tf_capture_host_copy(int to_device, CUdeviceptr dev, const void *host, size_t n, CUstream hStream,
                              int *handled)
{
    *handled = 0;
    if (__atomic_load_n(&g_ncaps, __ATOMIC_ACQUIRE) == 0 || !host || !n) return CUDA_SUCCESS;
    int captured = 0;
    CUresult rc = rpc_tfMemcpyHostCaptured(hStream, dev, (unsigned long long)(uintptr_t)host, n, to_device,
                                           &captured);
    *handled = rc != CUDA_SUCCESS || captured;
    return rc;
}

/* Host nodes run the client's function in this process: the worker's graph holds a trampoline node that
 * asks for it while this process waits in tfGraphLaunchServe (transport.c answers the call). Once any
 * host node exists every graph launch waits that way: correct for any graph, at the cost of a round trip
 * and the graph's run time per launch. */
CUresult tfs_cuGraphAddHostNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                size_t numDependencies, const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    NEED_INIT();
    if (!nodeParams || !nodeParams->fn) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rpc_tfGraphAddHostNode(phGraphNode, hGraph, dependencies, numDependencies,
                                         (unsigned long long)(uintptr_t)nodeParams->fn,
                                         (unsigned long long)(uintptr_t)nodeParams->userData);
    if (rc == CUDA_SUCCESS) __atomic_store_n(&g_host_nodes, 1, __ATOMIC_RELEASE);
    return rc;
}

/* A host node's parameters are the client's function and argument (the worker's node holds them in its
 * trampoline's record); a set gives the worker's node a new record. */
CUresult tfs_cuGraphHostNodeGetParams(CUgraphNode hNode, CUDA_HOST_NODE_PARAMS *nodeParams)
{
    NEED_INIT();
    if (!nodeParams) return CUDA_ERROR_INVALID_VALUE;
    unsigned long long fn = 0, data = 0;
    CUresult rc = rpc_tfGraphHostNodeGetParams(hNode, &fn, &data);
    if (rc) return rc;
    nodeParams->fn = (CUhostFn)(uintptr_t)fn;
    nodeParams->userData = (void *)(uintptr_t)data;
    return CUDA_SUCCESS;
}

static CUresult host_node_set(CUgraphExec hGraphExec, CUgraphNode hNode, const CUDA_HOST_NODE_PARAMS *p)
{
    NEED_INIT();
    if (!p || !p->fn) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = rpc_tfGraphHostNodeSetParams(hGraphExec, hNode, (unsigned long long)(uintptr_t)p->fn,
                                               (unsigned long long)(uintptr_t)p->userData);
    if (rc == CUDA_SUCCESS) __atomic_store_n(&g_host_nodes, 1, __ATOMIC_RELEASE);
    return rc;
}

CUresult tfs_cuGraphHostNodeSetParams(CUgraphNode hNode, const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    return host_node_set(NULL, hNode, nodeParams);
}

CUresult tfs_cuGraphExecHostNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                          const CUDA_HOST_NODE_PARAMS *nodeParams)
{
    if (!hGraphExec) return CUDA_ERROR_INVALID_HANDLE;  /* NULL would name the graph's node on the wire */
    return host_node_set(hGraphExec, hNode, nodeParams);
}

/* cuLaunchHostFunc (api_launch.c) while a capture is live: the worker captures it as a host node if the
 * stream is capturing (*handled = 1); otherwise the caller runs the function in stream order itself. */
CUresult tf_capture_host_func(CUstream hStream, CUhostFn fn, void *userData, int *handled)
{
    *handled = 0;
    if (__atomic_load_n(&g_ncaps, __ATOMIC_ACQUIRE) == 0) return CUDA_SUCCESS;
    int captured = 0;
    CUresult rc = rpc_tfLaunchHostFuncCaptured(hStream, (unsigned long long)(uintptr_t)fn,
                                               (unsigned long long)(uintptr_t)userData, &captured);
    if (rc == CUDA_SUCCESS && captured) __atomic_store_n(&g_host_nodes, 1, __ATOMIC_RELEASE);
    *handled = rc != CUDA_SUCCESS || captured;
    return rc;
}

/* -------------------------------------------------------------------------------- .dot text */
CUresult tfs_cuGraphDebugDotPrint(CUgraph hGraph, const char *path, unsigned int flags)
{
    NEED_INIT();
    if (!path) return CUDA_ERROR_INVALID_VALUE;
    char *text = malloc(TF_MAX_DOT_BYTES);
    if (!text) return CUDA_ERROR_OUT_OF_MEMORY;
    unsigned len = 0;
    CUresult rc = rpc_tfGraphDebugDotPrint(hGraph, flags, &len, text);
    if (rc == CUDA_SUCCESS && len > TF_MAX_DOT_BYTES) rc = CUDA_ERROR_UNKNOWN;
    if (rc == CUDA_SUCCESS) {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(text, 1, len, f) != len) rc = CUDA_ERROR_OPERATING_SYSTEM;
        if (f && fclose(f)) rc = CUDA_ERROR_OPERATING_SYSTEM;
    }
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------- graph memory */
#define TF_MAX_GRAPH_MEM 4096
static CUdeviceptr g_gmem[TF_MAX_GRAPH_MEM]; /* addresses of alloc nodes (until the process ends) */
static int g_ngmem;
static pthread_mutex_t g_gmem_mu = PTHREAD_MUTEX_INITIALIZER;

/* An alloc node's address is device memory to this process too (unified copies, kernel arguments). */
CUresult tfs_cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                    size_t numDependencies, CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
    NEED_INIT();
    if (!phGraphNode || !nodeParams || nodeParams->accessDescCount > TF_MAX_ACCESS_DESCS ||
        (nodeParams->accessDescCount && !nodeParams->accessDescs))
        return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr p = 0;
    CUresult rc = rpc_tfGraphAddMemAllocNode(phGraphNode, hGraph, dependencies, numDependencies, nodeParams,
                                             nodeParams->accessDescCount, nodeParams->accessDescs, &p);
    if (rc) return rc;
    nodeParams->dptr = p;
    tf_devmap_add_on(p, nodeParams->bytesize, nodeParams->poolProps.location.id);   /* the node's device */
    pthread_mutex_lock(&g_gmem_mu);
    if (g_ngmem < TF_MAX_GRAPH_MEM) g_gmem[g_ngmem++] = p;
    pthread_mutex_unlock(&g_gmem_mu);
    return CUDA_SUCCESS;
}

/* cuMemFree(Async) of an alloc node's memory (api_memory.c): 1 if p is one (*rc: the answer). The graph
 * allocates it again at its next launch, so it stays device memory to this process and to the worker. */
int tf_graph_mem_free(CUdeviceptr p, CUstream hStream, int async, CUresult *rc)
{
    int found = 0;
    pthread_mutex_lock(&g_gmem_mu);
    for (int i = 0; i < g_ngmem && !found; i++) found = g_gmem[i] == p;
    pthread_mutex_unlock(&g_gmem_mu);
    if (found) *rc = rpc_tfGraphMemFree(p, hStream, async);
    return found;
}

/* The access descriptors handed out are owned by the node (the driver's rule): one copy per node, kept
 * for the life of the process (a later get of the same node reuses it when it fits). */
typedef struct desc_copy { uint64_t node; size_t n; CUmemAccessDesc *d; struct desc_copy *next; } desc_copy;
static desc_copy *g_desc_copies;
static pthread_mutex_t g_desc_mu = PTHREAD_MUTEX_INITIALIZER;

CUresult tfs_cuGraphMemAllocNodeGetParams(CUgraphNode hNode, CUDA_MEM_ALLOC_NODE_PARAMS *params_out)
{
    NEED_INIT();
    if (!params_out) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    unsigned n = 0;
    CUmemAccessDesc descs[TF_MAX_ACCESS_DESCS];
    CUresult rc = rpc_tfGraphMemAllocNodeGetParams(hNode, &p, &n, descs);
    if (rc) return rc;
    if (n > TF_MAX_ACCESS_DESCS) return CUDA_ERROR_UNKNOWN;
    const CUmemAccessDesc *mine = NULL;
    if (n) {
        pthread_mutex_lock(&g_desc_mu);
        desc_copy *c = g_desc_copies;
        while (c && !(c->node == (uint64_t)(uintptr_t)hNode && c->n == n && !memcmp(c->d, descs, n * sizeof *descs)))
            c = c->next;
        if (!c && (c = calloc(1, sizeof *c)) != NULL) {
            c->d = malloc(n * sizeof *descs);
            if (!c->d) {
                free(c);
                c = NULL;
            } else {
                memcpy(c->d, descs, n * sizeof *descs);
                c->node = (uint64_t)(uintptr_t)hNode;
                c->n = n;
                c->next = g_desc_copies;
                g_desc_copies = c;
            }
        }
        mine = c ? c->d : NULL;
        pthread_mutex_unlock(&g_desc_mu);
        if (!mine) return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *params_out = p;
    params_out->accessDescs = mine;
    params_out->accessDescCount = n;
    return CUDA_SUCCESS;
}

CUresult tfs_cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
    NEED_INIT();
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    cuuint64_t v = 0;
    CUresult rc = rpc_tfDeviceGetGraphMemAttribute(device, attr, &v);
    if (rc == CUDA_SUCCESS) memcpy(value, &v, sizeof v);
    return rc;
}

CUresult tfs_cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
    NEED_INIT();
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    cuuint64_t v;
    memcpy(&v, value, sizeof v);
    return rpc_tfDeviceSetGraphMemAttribute(device, attr, v);
}

/* ------------------------------------------------------------------ cuGraphAddNode, conditional nodes */
/* A conditional node's body graphs are the worker's handles; the array handed out is owned by the node
 * (here: kept for the life of the process). */
static CUresult add_conditional(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *deps, size_t ndeps,
                                CUDA_CONDITIONAL_NODE_PARAMS *p)
{
    if (p->size == 0 || p->size > TF_MAX_COND_BODIES) return CUDA_ERROR_INVALID_VALUE;
    CUgraph *bodies = calloc(p->size, sizeof *bodies);
    if (!bodies) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = rpc_tfGraphAddConditionalNode(phGraphNode, hGraph, deps, ndeps, p, bodies);
    if (rc) {
        free(bodies);
        return rc;
    }
    p->phGraph_out = bodies;
    return CUDA_SUCCESS;
}

/* Every node kind through one entry point, each to the call that makes that kind (edges: plain only); the
 * dispatch is emu_c/graph_add_node.c, shared with the emulated device. */
static void add_refused(const char *why) { tf_log("%s", why); }

static const tf_graph_add_calls g_add_calls = {
    .kernel = tfs_cuGraphAddKernelNode_v2, .memcpy = tfs_cuGraphAddMemcpyNode, .memset = rpc_cuGraphAddMemsetNode,
    .host = tfs_cuGraphAddHostNode, .child_graph = rpc_cuGraphAddChildGraphNode, .empty = rpc_cuGraphAddEmptyNode,
    .event_record = rpc_cuGraphAddEventRecordNode, .event_wait = rpc_cuGraphAddEventWaitNode,
    .mem_alloc = tfs_cuGraphAddMemAllocNode, .mem_free = rpc_cuGraphAddMemFreeNode, .conditional = add_conditional,
    .refused = add_refused,
};

CUresult tfs_cuGraphAddNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                               const CUgraphEdgeData *dependencyData, size_t numDependencies,
                               CUgraphNodeParams *nodeParams)
{
    NEED_INIT();
    if (!phGraphNode || !nodeParams || (numDependencies && !dependencies)) return CUDA_ERROR_INVALID_VALUE;
    return tf_graph_add_node(&g_add_calls, phGraphNode, hGraph, dependencies, dependencyData, numDependencies,
                             nodeParams);
}

CUresult tfs_cuGraphAddNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                            size_t numDependencies, CUgraphNodeParams *nodeParams)
{
    return tfs_cuGraphAddNode_v2(phGraphNode, hGraph, dependencies, NULL, numDependencies, nodeParams);
}

/* ------------------------------------------------------------------ event nodes, the generic set calls */
static CUresult event_node_get(CUgraphNode hNode, int wait, CUevent *event_out)
{
    NEED_INIT();
    if (!event_out) return CUDA_ERROR_INVALID_VALUE;
    unsigned long long e = 0;
    CUresult rc = rpc_tfGraphEventNodeGetEvent(hNode, wait, &e);
    if (rc == CUDA_SUCCESS) *event_out = (CUevent)(uintptr_t)e;
    return rc;
}

CUresult tfs_cuGraphEventRecordNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
    return event_node_get(hNode, 0, event_out);
}

CUresult tfs_cuGraphEventWaitNodeGetEvent(CUgraphNode hNode, CUevent *event_out)
{
    return event_node_get(hNode, 1, event_out);
}

/* cuGraphNodeSetParams / cuGraphExecNodeSetParams: each node kind to the call above that sets it (the dispatch
 * is emu_c/graph_add_node.c, shared with the emulated device); hGraphExec NULL: the graph's node. */
static CUresult set_kernel(CUgraphExec x, CUgraphNode n, const CUDA_KERNEL_NODE_PARAMS *p)
{
    return x ? tfs_cuGraphExecKernelNodeSetParams_v2(x, n, p) : tfs_cuGraphKernelNodeSetParams_v2(n, p);
}

static CUresult set_memcpy(CUgraphExec x, CUgraphNode n, const CUDA_MEMCPY3D *p, CUcontext ctx)
{
    return x ? tfs_cuGraphExecMemcpyNodeSetParams(x, n, p, ctx) : tfs_cuGraphMemcpyNodeSetParams(n, p);
}

static CUresult set_memset(CUgraphExec x, CUgraphNode n, const CUDA_MEMSET_NODE_PARAMS *p, CUcontext ctx)
{
    return x ? rpc_cuGraphExecMemsetNodeSetParams(x, n, p, ctx) : rpc_cuGraphMemsetNodeSetParams(n, p);
}

static CUresult set_host(CUgraphExec x, CUgraphNode n, const CUDA_HOST_NODE_PARAMS *p)
{
    return host_node_set(x, n, p);
}

static CUresult set_child(CUgraphExec x, CUgraphNode n, CUgraph g)
{
    return x ? rpc_cuGraphExecChildGraphNodeSetParams(x, n, g) : rpc_tfGraphChildGraphNodeSetGraph(n, g);
}

static CUresult set_event_record(CUgraphExec x, CUgraphNode n, CUevent e)
{
    return x ? rpc_cuGraphExecEventRecordNodeSetEvent(x, n, e) : rpc_cuGraphEventRecordNodeSetEvent(n, e);
}

static CUresult set_event_wait(CUgraphExec x, CUgraphNode n, CUevent e)
{
    return x ? rpc_cuGraphExecEventWaitNodeSetEvent(x, n, e) : rpc_cuGraphEventWaitNodeSetEvent(n, e);
}

static const tf_graph_set_calls g_set_calls = {
    .kernel = set_kernel, .memcpy = set_memcpy, .memset = set_memset, .host = set_host, .child_graph = set_child,
    .event_record = set_event_record, .event_wait = set_event_wait,
};

CUresult tfs_cuGraphNodeSetParams(CUgraphNode hNode, CUgraphNodeParams *nodeParams)
{
    NEED_INIT();
    if (!nodeParams || !hNode) return CUDA_ERROR_INVALID_VALUE;
    return tf_graph_set_node(&g_set_calls, NULL, hNode, nodeParams);
}

CUresult tfs_cuGraphExecNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode, CUgraphNodeParams *nodeParams)
{
    NEED_INIT();
    if (!hGraphExec) return CUDA_ERROR_INVALID_HANDLE;
    if (!nodeParams || !hNode) return CUDA_ERROR_INVALID_VALUE;
    return tf_graph_set_node(&g_set_calls, hGraphExec, hNode, nodeParams);
}
