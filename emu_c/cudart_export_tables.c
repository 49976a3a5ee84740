/* cudart_export_tables.c - cuGetExportTable for libcudart 12 and 13: the table layouts and the
 * context-local storage cudart keeps per context. Compiled into both libcuda.so.1 builds (emu_c/ and
 * stub_c/), so it uses nothing but cuda.h, libc and the hooks given to tf_export_tables_init(). See the
 * header.
 *
 * Observed bootstrap of a cudart 12.0-13.5 program (what each table must provide):
 *   f8cff951-...  asked before cuInit; answering NOT_SUPPORTED makes cudart take its normal path.
 *   6bd5fb6c-...  "cudart interface": slot 0 = table size, slot 2 = retain primary context,
 *                 slot 12 = start-up hook the shared cudart 13.1+ calls (must succeed).
 *   a094798c-...  tools runtime callback hooks: slots 2 and 6 hand out two scratch buffers.
 *   42d85a81-...  tools TLS: cudart aborts before main without the table; cublasLt calls slot 2
 *                 (CUresult fn(void **out)): every slot answers "no tools state", NOT_SUPPORTED.
 *   c693336e-...  context-local storage: put / delete / get (no size slot).
 *   21318c60-...  context identity: cudart 13.4+ fails without it; slot 4 = the context's id (cublasLt),
 *                 slot 51 = the stream a handle names, slot 39 = a stream's id (cuBLAS's per-stream cache);
 *                 the other slots answer NOT_SUPPORTED (used only when tracing).
 *   263e8860-...  context checks: slot 2 reports "nothing special" for a context, slot 3 returns 0.
 *   d4082055-...  integrity check: mandatory for cudart 13 (any error from it fails cudaGetDeviceCount
 *                 etc. with that error). Slot 1 computes a keyed digest of the driver's identity that
 *                 cudart compares with its own: HMAC (RFC 2104) over MD2 (RFC 1319), see integrity_check.
 */
#include "cudart_export_tables.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*tf_cls_dtor)(CUcontext ctx, void *key, void *value);

typedef struct tf_cls_entry {
    CUcontext ctx;
    void *key;
    void *value;
    tf_cls_dtor dtor;
    struct tf_cls_entry *next;
} tf_cls_entry;

static tf_export_hooks g_hooks;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static tf_cls_entry *g_cls;

static const char *prefix(void) { return g_hooks.log_prefix ? g_hooks.log_prefix : "tf"; }

/* NULL names the calling thread's current context. A thread with none has no context-local storage:
 * cudart asks cls_get first on each new thread, and only an error makes it bind the device's primary
 * context to that thread (cuDevicePrimaryCtxRetain + cuCtxSetCurrent) before its first call, as it
 * does on NVIDIA's driver. Answering with the primary context's values instead would make cudart skip
 * the binding, and the thread's first call would fail with CUDA_ERROR_INVALID_CONTEXT. */
static CUcontext resolve_ctx(CUcontext ctx)
{
    if (ctx)
        return ctx;
    CUcontext cur = NULL;
    if (g_hooks.ctx_get_current && g_hooks.ctx_get_current(&cur) == CUDA_SUCCESS && cur)
        return cur;
    return NULL;
}

/* ---- cudart interface ---- */
static CUresult cudart_primary_ctx(CUcontext *pctx, CUdevice dev)
{
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (!g_hooks.primary_ctx_retain)
        return CUDA_ERROR_NOT_INITIALIZED;
    return g_hooks.primary_ctx_retain(pctx, dev);
}

/* Slot 12 (cudart 13.1+, shared library only): called once while cudart initialises, no arguments;
 * a non-zero result fails initialisation. ZLUDA names it "load compilers"; nothing to do here. */
static CUresult cudart_load_compilers(void) { return CUDA_SUCCESS; }

/* ---- tools runtime callback hooks ----
 * Buffer 1 holds one int per runtime-API callback id: non-zero = a profiler subscribed to that API,
 * and cudart then calls further hook slots we do not provide. cudart indexes it by callback id
 * (e.g. cudaGetDeviceProperties reads byte offset 0x6e0), so it must be large and all zero. */
static unsigned char g_cb_buf1[16384];
static unsigned char g_cb_buf2[4096];

static void cb_buffer1(void **ptr, size_t *size)
{
    if (ptr)
        *ptr = g_cb_buf1;
    if (size)
        *size = sizeof(g_cb_buf1);
}

static void cb_buffer2(void **ptr, size_t *size)
{
    if (ptr)
        *ptr = g_cb_buf2;
    if (size)
        *size = 14; /* the size the real driver reports; the zeroed buffer is larger for safety */
}

/* ---- context-local storage ---- */
static CUresult cls_put(CUcontext ctx, void *key, void *value, tf_cls_dtor dtor)
{
    if (!key)
        return CUDA_ERROR_INVALID_VALUE;
    ctx = resolve_ctx(ctx);
    if (!ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&g_lock);
    for (tf_cls_entry *e = g_cls; e; e = e->next) {
        if (e->ctx == ctx && e->key == key) {
            e->value = value;
            e->dtor = dtor;
            pthread_mutex_unlock(&g_lock);
            return CUDA_SUCCESS;
        }
    }
    tf_cls_entry *e = calloc(1, sizeof(*e));
    if (!e) {
        pthread_mutex_unlock(&g_lock);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    e->ctx = ctx;
    e->key = key;
    e->value = value;
    e->dtor = dtor;
    e->next = g_cls;
    g_cls = e;
    pthread_mutex_unlock(&g_lock);
    return CUDA_SUCCESS;
}

static CUresult cls_delete(CUcontext ctx, void *key)
{
    if (!key)
        return CUDA_ERROR_INVALID_VALUE;
    ctx = resolve_ctx(ctx);
    if (!ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&g_lock);
    for (tf_cls_entry **link = &g_cls; *link; link = &(*link)->next) {
        tf_cls_entry *e = *link;
        if (e->ctx == ctx && e->key == key) {
            *link = e->next;
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return CUDA_SUCCESS;
}

static CUresult cls_get(void **value, CUcontext ctx, void *key)
{
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    *value = NULL;
    if (!key)
        return CUDA_ERROR_INVALID_VALUE;
    ctx = resolve_ctx(ctx);
    if (!ctx)
        return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = CUDA_ERROR_INVALID_HANDLE; /* "no value yet": cudart then creates its state */
    pthread_mutex_lock(&g_lock);
    for (tf_cls_entry *e = g_cls; e; e = e->next) {
        if (e->ctx == ctx && e->key == key) {
            *value = e->value;
            rc = CUDA_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

void tf_export_tables_ctx_destroyed(CUcontext ctx)
{
    for (;;) {
        tf_cls_entry *found = NULL;
        pthread_mutex_lock(&g_lock);
        for (tf_cls_entry **link = &g_cls; *link; link = &(*link)->next) {
            if ((*link)->ctx == ctx) {
                found = *link;
                *link = found->next;
                break;
            }
        }
        pthread_mutex_unlock(&g_lock);
        if (!found)
            return;
        if (found->dtor) /* outside the lock: the destructor may call back into the driver */
            found->dtor(ctx, found->key, found->value);
        free(found);
    }
}

/* ---- context checks ---- */
static CUresult ctx_check(CUcontext ctx, unsigned int *flags, const void **detail)
{
    (void)ctx;
    if (flags)
        *flags = 0;
    if (detail)
        *detail = NULL;
    return CUDA_SUCCESS;
}

static unsigned int ctx_check_global(void) { return 0; }

/* ---- context/stream identity (cudart 13.4+) ----
 * cudart 13.4 and later fail initialisation unless this table exists, but call none of its slots on
 * their normal path: only the runtime-API tracing path (taken when a profiler set a flag in callback
 * buffer 1, which stays zero here) calls slot 51 (context, stream, &out, 1) and then slot 39
 * (context, out, &record field). Other users (cuBLASLt) are reported to call slot 4 (context id).
 * Every slot answers NOT_SUPPORTED, so an unexpected caller gets an error instead of a NULL jump. */
/* Slot 4: CUresult fn(CUcontext, unsigned long long *id), the context's id as cuCtxGetId gives it (cublasLt
 * asks it for the context tools-TLS slot 2 returned, to key its per-context caches). */
static CUresult cuexp_ctx_id(CUcontext ctx, unsigned long long *id)
{
    return g_hooks.ctx_get_id ? g_hooks.ctx_get_id(ctx, id) : CUDA_ERROR_NOT_SUPPORTED;
}

/* Slot 51: CUresult fn(CUcontext, CUstream, CUstream *out, int per_thread): the stream a handle names in that
 * context. cuBLAS passes what the application gave it (0, cudaStreamPerThread or a stream) and then asks slot
 * 39 for the result's id; handles are the driver's own here, so the stream is itself. */
static CUresult cuexp_stream_of(CUcontext ctx, CUstream stream, CUstream *out, int per_thread)
{
    (void)ctx;
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    *out = stream ? stream : per_thread ? CU_STREAM_PER_THREAD : NULL;
    return CUDA_SUCCESS;
}

/* Slot 39: CUresult fn(CUcontext, CUstream, unsigned long long *id): the stream's unique id (cuStreamGetId). */
static CUresult cuexp_stream_id(CUcontext ctx, CUstream stream, unsigned long long *id)
{
    (void)ctx;
    return g_hooks.stream_get_id ? g_hooks.stream_get_id(stream, id) : CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult cuexp_ctx_unsupported(void)
{
    static int logged;
    if (!__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED))
        fprintf(stderr, "%s: cudart called an unimplemented slot of export table 21318c60, answering "
                        "CUDA_ERROR_NOT_SUPPORTED\n", prefix());
    return CUDA_ERROR_NOT_SUPPORTED;
}

#define SLOT(fn) ((const void *)(uintptr_t)(fn))
/* Tools thread-local state (42d85a81). cublasLt's heuristics call slot 2 as CUresult fn(CUcontext *out) and
 * then ask for that context's id: slot 2 is the calling thread's current context (cuCtxGetCurrent). The
 * other slots are unknown: "nothing", NOT_SUPPORTED (a NULL slot crashed cublasSgemm's client). */
static CUresult tools_tls_current_ctx(CUcontext *out)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    *out = NULL;
    return g_hooks.ctx_get_current ? g_hooks.ctx_get_current(out) : CUDA_ERROR_NOT_INITIALIZED;
}

static CUresult tools_tls_unavailable(void **out)
{
    if (out)
        *out = NULL;
    return CUDA_ERROR_NOT_SUPPORTED;
}

#define SIZE_SLOT(n) ((const void *)(uintptr_t)((n) * sizeof(void *)))

/* ---- integrity check: HMAC-MD2 ---- */
/* MD2's substitution table (RFC 1319, derived from the digits of pi). */
static const unsigned char k_md2_s[256] = {
    41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19, 98, 167, 5, 243, 192, 199, 115, 140,
    152, 147, 43, 217, 188, 76, 130, 202, 30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
    190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122, 169, 104, 121, 145, 21, 178, 7, 63,
    148, 194, 16, 137, 11, 34, 95, 33, 128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
    255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198, 79, 184, 56, 210, 150, 164, 125, 182,
    118, 252, 107, 226, 156, 116, 4, 241, 69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
    27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15, 85, 71, 163, 35, 221, 81, 175, 58,
    195, 92, 249, 206, 186, 197, 234, 38, 44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
    106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74, 120, 136, 149, 139, 227, 99, 232, 109,
    233, 203, 213, 254, 59, 0, 29, 57, 242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
    49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20};

typedef struct md2 {
    unsigned char x[48], c[16], buf[16];
    unsigned n, l;
} md2;

static void md2_block(md2 *m)
{
    for (int j = 0; j < 16; j++) {
        m->c[j] ^= k_md2_s[m->buf[j] ^ m->l];
        m->l = m->c[j];
        m->x[16 + j] = m->buf[j];
        m->x[32 + j] = (unsigned char)(m->buf[j] ^ m->x[j]);
    }
    unsigned t = 0;
    for (unsigned round = 0; round < 18; round++) {
        for (int k = 0; k < 48; k++)
            t = m->x[k] ^= k_md2_s[t];
        t = (t + round) & 0xff;
    }
}

static void md2_update(md2 *m, const void *data, size_t len, unsigned char xor_mask)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        m->buf[m->n++] = p[i] ^ xor_mask;
        if (m->n == 16) {
            md2_block(m);
            m->n = 0;
        }
    }
}

static void md2_final(md2 *m, unsigned char out[16])
{
    unsigned char pad[16];
    unsigned char padv = (unsigned char)(16 - m->n);
    memset(pad, padv, sizeof(pad));
    md2_update(m, pad, padv, 0);
    unsigned char sum[16];
    memcpy(sum, m->c, 16);
    md2_update(m, sum, 16, 0);
    memcpy(out, m->x, 16);
}

/* What cudart expects the driver to hash: this layout (48 bytes) then one record per device. */
typedef struct integrity_input {
    uint32_t driver_version;
    uint32_t version;
    uint32_t process;
    uint32_t thread;
    const void *cudart_table;
    const void *integrity_table;
    const void *function;
    uint64_t unix_seconds;
} integrity_input;

typedef struct integrity_device {
    CUuuid uuid;
    int32_t pci_domain, pci_bus, pci_device;
} integrity_device;

static const void *const t_integrity[3];
static const void *const t_cudart[13];
static const unsigned char k_integrity_key[16] = {0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
                                                  0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f};

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2])
{
    if (!result)
        return CUDA_ERROR_INVALID_VALUE;
    if (version % 10 < 2) { /* older protocol revisions expect fixed answers */
        result[0] = version % 10 == 0 ? 0x3341181c03cb675cull : 0x1841181c03cb675cull;
        result[1] = 0x8ed383aa1f4cd1e8ull;
        return CUDA_SUCCESS;
    }
    int drv = 0, count = 0;
    if (!g_hooks.driver_version || g_hooks.driver_version(&drv) != CUDA_SUCCESS || !g_hooks.device_count ||
        g_hooks.device_count(&count) != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_INITIALIZED;
    integrity_input in;
    memset(&in, 0, sizeof(in));
    in.driver_version = (uint32_t)drv;
    in.version = version;
    in.process = (uint32_t)getpid();
    in.thread = (uint32_t)(uintptr_t)pthread_self(); /* low 32 bits of the pthread_t, not the tid */
    in.cudart_table = t_cudart;
    in.integrity_table = t_integrity;
    in.function = SLOT(integrity_check);
    in.unix_seconds = unix_seconds;
    md2 m;
    memset(&m, 0, sizeof(m));
    md2_update(&m, k_integrity_key, 16, 0x36);
    md2_update(&m, &in, sizeof(in), 0);
    for (int d = 0; d < count; d++) {
        integrity_device dev;
        memset(&dev, 0, sizeof(dev));
        if (!g_hooks.device_uuid || g_hooks.device_uuid(&dev.uuid, d) != CUDA_SUCCESS || !g_hooks.device_attr)
            return CUDA_ERROR_INVALID_DEVICE;
        g_hooks.device_attr(&dev.pci_domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d);
        g_hooks.device_attr(&dev.pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d);
        g_hooks.device_attr(&dev.pci_device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d);
        md2_update(&m, &dev, sizeof(dev), 0);
    }
    unsigned char inner[16];
    md2_final(&m, inner);
    memset(&m, 0, sizeof(m));
    md2_update(&m, k_integrity_key, 16, 0x5c);
    md2_update(&m, inner, 16, 0);
    unsigned char outer[16];
    md2_final(&m, outer);
    memcpy(result, outer, 16);
    return CUDA_SUCCESS;
}

/* ---- the tables (slot 0 holds the table's byte size where the driver's tables have one) ---- */

static const void *const t_integrity[3] = {[0] = SIZE_SLOT(3), [1] = SLOT(integrity_check)};
static const void *const t_cudart[13] = {[0] = SIZE_SLOT(13), [2] = SLOT(cudart_primary_ctx),
                                        [12] = SLOT(cudart_load_compilers)};
static const void *const t_cb_hooks[7] = {[0] = SIZE_SLOT(7), [2] = SLOT(cb_buffer1),
                                          [6] = SLOT(cb_buffer2)};
static const void *const t_tools_tls[4] = {[0] = SIZE_SLOT(4), [1] = SLOT(tools_tls_unavailable),
                                           [2] = SLOT(tools_tls_current_ctx), [3] = SLOT(tools_tls_unavailable)};
static const void *const t_cls[4] = {[0] = SLOT(cls_put), [1] = SLOT(cls_delete), [2] = SLOT(cls_get)};
/* 95 slots: the size reported for the driver's table; cudart itself does not read slot 0. */
static const void *const t_cuexp_ctx[95] = {
    [0] = SIZE_SLOT(95),         [1 ... 3] = SLOT(cuexp_ctx_unsupported),   [4] = SLOT(cuexp_ctx_id),
    [5 ... 38] = SLOT(cuexp_ctx_unsupported), [39] = SLOT(cuexp_stream_id), [40 ... 50] = SLOT(cuexp_ctx_unsupported),
    [51] = SLOT(cuexp_stream_of), [52 ... 94] = SLOT(cuexp_ctx_unsupported)};
static const void *const t_ctx_checks[4] = {[0] = SIZE_SLOT(4), [2] = SLOT(ctx_check),
                                            [3] = SLOT(ctx_check_global)};

typedef struct tf_export_entry {
    const char *name;
    unsigned char uuid[16];
    const void *const *table; /* NULL: known, deliberately not provided */
} tf_export_entry;

static const tf_export_entry k_tables[] = {
    {"cudart_interface", {0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9}, t_cudart},
    {"tools_runtime_callback_hooks", {0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66}, t_cb_hooks},
    {"tools_tls", {0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc}, t_tools_tls},
    {"context_local_storage", {0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93}, t_cls},
    {"context_checks", {0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e}, t_ctx_checks},
    {"bootstrap_f8cff951", {0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9}, NULL},
    {"context_identity", {0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2}, t_cuexp_ctx},
    {"integrity_check", {0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2}, t_integrity},
};

void tf_export_tables_init(const tf_export_hooks *hooks)
{
    if (hooks)
        g_hooks = *hooks;
}

/* Unknown UUIDs are logged once each when verbose (a small fixed set; later ones are still refused). */
static void log_unknown_once(const CUuuid *id)
{
    static unsigned char seen[32][16];
    static int nseen;
    if (!g_hooks.verbose)
        return;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < nseen; i++) {
        if (memcmp(seen[i], id->bytes, 16) == 0) {
            pthread_mutex_unlock(&g_lock);
            return;
        }
    }
    if (nseen < 32)
        memcpy(seen[nseen++], id->bytes, 16);
    pthread_mutex_unlock(&g_lock);
    const unsigned char *b = (const unsigned char *)id->bytes;
    fprintf(stderr,
            "%s: cuGetExportTable: unknown table %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x, answering CUDA_ERROR_NOT_SUPPORTED\n",
            prefix(), b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
            b[13], b[14], b[15]);
}

CUresult tf_export_table_get(const void **table, const CUuuid *id)
{
    if (!table || !id)
        return CUDA_ERROR_INVALID_VALUE;
    *table = NULL;
    for (size_t i = 0; i < sizeof(k_tables) / sizeof(k_tables[0]); i++) {
        if (memcmp(k_tables[i].uuid, id->bytes, 16) != 0)
            continue;
        if (!k_tables[i].table)
            return CUDA_ERROR_NOT_SUPPORTED;
        *table = (const void *)k_tables[i].table;
        return CUDA_SUCCESS;
    }
    log_unknown_once(id);
    return CUDA_ERROR_NOT_SUPPORTED;
}
