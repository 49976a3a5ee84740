/* emu_init.c - driver bootstrap of the emulated device: cuInit, versions, cuGetProcAddress (answered
 * from the one table in emu_api.h), cuGetExportTable (cudart_export_tables.c), cuGetErrorName/String
 * (generated from cuda.h), the handle registry, logging and tfEmuGetBusyTime for the limiter.
 * Called by cudart (which dlopens libcuda.so.1) and by driver-API programs directly.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emu_internal.h" /* first: it selects cuda.h's internal (all-versions) view */
#include "cudart_export_tables.h"
#include "tf_log_line.h"
#include <cudaProfiler.h> /* cuProfilerStart/Stop's prototypes for the emu_api.h checks */

emu_state g_emu = {.lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP};

void emu_lock(void) { pthread_mutex_lock(&g_emu.lock); }
void emu_unlock(void) { pthread_mutex_unlock(&g_emu.lock); }

uint64_t emu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t emu_process_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* TF_EMU_TRACE=1: also log every cuGetProcAddress name we do not implement and every export table;
 * TF_EMU_TRACE=2: besides, one line per kernel launch (emu_launch.c). */
static int trace_enabled(void)
{
    const char *v = getenv("TF_EMU_TRACE");
    return v && *v && strcmp(v, "0") != 0;
}

int emu_trace_enabled(void) { return trace_enabled(); }

int emu_trace_launches(void)
{
    static int level = -1;
    if (level < 0) {
        const char *v = getenv("TF_EMU_TRACE");
        level = v && strcmp(v, "2") == 0;
    }
    return level;
}

void emu_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tf_log_line("tf-emu", 0, fmt, ap);
    va_end(ap);
}

/* ---- handle registry: open-addressing pointer set (kind per slot), grown under g_emu.lock ---- */
typedef struct hslot {
    const void *p;
    int kind; /* 0 empty, -1 tombstone */
} hslot;
static hslot *g_hs;
static size_t g_hcap, g_hused;

static size_t hhash(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull); }

static int hinsert(hslot *tab, size_t cap, const void *p, int kind)
{
    for (size_t i = hhash(p) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (tab[i].kind <= 0) {
            tab[i].p = p;
            tab[i].kind = kind;
            return 0;
        }
    }
}

int emu_handle_add(const void *p, int kind)
{
    emu_lock();
    if ((g_hused + 1) * 2 > g_hcap) {
        /* size for the live handles only: tombstones are dropped, so churn does not grow the table */
        size_t live = 0;
        for (size_t i = 0; i < g_hcap; i++)
            live += g_hs[i].kind > 0;
        size_t ncap = 256;
        while (ncap < (live + 1) * 4)
            ncap *= 2;
        hslot *n = calloc(ncap, sizeof(*n));
        if (!n) {
            emu_unlock();
            return -1;
        }
        size_t used = 0;
        for (size_t i = 0; i < g_hcap; i++) {
            if (g_hs[i].kind > 0) {
                hinsert(n, ncap, g_hs[i].p, g_hs[i].kind);
                used++;
            }
        }
        free(g_hs);
        g_hs = n;
        g_hcap = ncap;
        g_hused = used;
    }
    hinsert(g_hs, g_hcap, p, kind);
    g_hused++;
    emu_unlock();
    return 0;
}

static hslot *hfind(const void *p)
{
    if (!g_hcap || !p)
        return NULL;
    for (size_t i = hhash(p) & (g_hcap - 1), n = 0; n < g_hcap; i = (i + 1) & (g_hcap - 1), n++) {
        if (g_hs[i].kind == 0)
            return NULL;
        if (g_hs[i].kind > 0 && g_hs[i].p == p)
            return &g_hs[i];
    }
    return NULL;
}

void emu_handle_del(const void *p)
{
    emu_lock();
    hslot *s = hfind(p);
    if (s)
        s->kind = -1; /* tombstone; slot counts as used until the next growth */
    emu_unlock();
}

size_t emu_handle_capacity(void)
{
    emu_lock();
    size_t cap = g_hcap;
    emu_unlock();
    return cap;
}

int emu_handle_is(const void *p, int kind)
{
    emu_lock();
    hslot *s = hfind(p);
    int ok = s && s->kind == kind;
    emu_unlock();
    return ok;
}

/* ---- init ---- */
static CUresult hook_primary_retain(CUcontext *pctx, CUdevice dev) { return cuDevicePrimaryCtxRetain(pctx, dev); }
static CUresult hook_get_current(CUcontext *pctx) { return cuCtxGetCurrent(pctx); }

/* A child forked from a process that initialised the driver cannot use it, as with NVIDIA's driver:
 * every call (cuInit included) answers CUDA_ERROR_NOT_INITIALIZED, which cudart reports as
 * cudaErrorInitializationError. (The parent's contexts, streams and device memory are not the
 * child's: a GPU driver's state does not survive fork.) */
static atomic_int g_forked;

static void forked_child(void)
{
    atomic_store(&g_forked, 1);
    atomic_store(&g_emu.initialized, 0);
}

/* ---- settings: every TF_EMU_* knob (and CUDA_MODULE_LOADING) is checked at cuInit, and a value that is
 * not one the knob accepts fails cuInit with CUDA_ERROR_INVALID_VALUE and one tf-emu: line naming what it
 * accepts. Never a silent default: a typo in TF_EMU_CC would otherwise run a program on another device than
 * asked for. An unset or empty variable is the default. The components that read a knob (emu_device.c,
 * emu_module.c, emu_stream_queue.c, ptx_jit.c) parse only values this table let through. ---- */
static int in_range(const char *v, unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (*v < '0' || *v > '9')
        return 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return 0;
    if (out)
        *out = x;
    return 1;
}
static int one_of(const char *v, const char *words) /* words: space-separated */
{
    size_t n = strlen(v);
    for (const char *w = words; *w;) {
        size_t k = strcspn(w, " ");
        if (k == n && strncmp(w, v, n) == 0)
            return 1;
        w += k;
        w += *w == ' ';
    }
    return 0;
}
static int ok_vram(const char *v) { return in_range(v, 1, (1ull << 30) - 1, NULL); }
static int ok_threads(const char *v) { return in_range(v, 1, 256, NULL); }
static int ok_devices(const char *v) { return in_range(v, 1, EMU_MAX_DEVICES, NULL); }
static int ok_engine(const char *v) { return one_of(v, "interp jit"); }
static int ok_trace(const char *v) { return one_of(v, "0 1 2"); }
static int ok_bool(const char *v) { return one_of(v, "0 1"); }
static int ok_loading(const char *v) { return one_of(v, "LAZY EAGER"); }
static int ok_cc(const char *v) { return emu_cc_parse(v) > 0; }

static const struct emu_setting {
    const char *name;
    int (*ok)(const char *v);
    const char *accepted; /* NULL: emu_cc_accepted() */
} k_settings[] = {
    {"TF_EMU_CC", ok_cc, NULL},
    {"TF_EMU_VRAM_MIB", ok_vram, "a whole number of MiB from 1 to 1073741823"},
    {"TF_EMU_THREADS", ok_threads, "a whole number of host threads from 1 to 256"},
    {"TF_EMU_DEVICES", ok_devices, "a whole number of devices from 1 to 8"},
    {"TF_EMU_ENGINE", ok_engine, "interp or jit"},
    {"TF_EMU_TRACE", ok_trace, "0, 1 or 2"},
    {"TF_EMU_SYNC_STREAMS", ok_bool, "0 or 1"},
    {"TF_EMU_JIT_SYNC", ok_bool, "0 or 1"},
    {"CUDA_MODULE_LOADING", ok_loading, "LAZY or EAGER"},
};

static CUresult g_settings_error; /* CUDA_SUCCESS, or what cuInit answers (emu_init_once) */

static CUresult check_settings(void)
{
    CUresult rc = CUDA_SUCCESS;
    for (size_t i = 0; i < sizeof(k_settings) / sizeof(k_settings[0]); i++) {
        const char *v = getenv(k_settings[i].name);
        if (!v || !*v || k_settings[i].ok(v))
            continue;
        emu_log("%s=%s is not accepted (%s): cuInit fails with CUDA_ERROR_INVALID_VALUE", k_settings[i].name, v,
                k_settings[i].accepted ? k_settings[i].accepted : emu_cc_accepted());
        rc = CUDA_ERROR_INVALID_VALUE;
    }
    return rc;
}

static void emu_init_once(void)
{
    g_settings_error = check_settings();
    if (g_settings_error)
        return; /* never initialized: every call answers CUDA_ERROR_NOT_INITIALIZED, cuInit the error */
    const char *v = getenv("TF_EMU_VRAM_MIB");
    unsigned long long mib = 16384;
    if (v && *v)
        in_range(v, 1, (1ull << 30) - 1, &mib);
    g_emu.vram_total = (size_t)(mib << 20);
    for (int d = 0; d < EMU_MAX_DEVICES; d++)
        atomic_store(&g_emu.heap_limit[d], (size_t)8 << 20); /* CU_LIMIT_MALLOC_HEAP_SIZE's default (ctx_defaults) */
    const char *t = getenv("TF_EMU_THREADS");
    unsigned long long n = 0;
    if (!(t && *t && in_range(t, 1, 256, &n))) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (unsigned long long)(cpus > 256 ? 256 : cpus) : 1;
    }
    g_emu.worker_threads = (int)n;
    const char *d = getenv("TF_EMU_DEVICES");
    unsigned long long ndev = 1;
    if (d && *d)
        in_range(d, 1, EMU_MAX_DEVICES, &ndev);
    g_emu.ndev = (int)ndev;
    ptx_sm_clock_khz = (unsigned)emu_dev()->clock_khz; /* %clock ticks at the reported clock rate */
    for (int i = 0; i < g_emu.ndev; i++) { /* device i's primary context has id i + 1 */
        g_emu.primary[i].is_primary = 1;
        g_emu.primary[i].dev = i;
        g_emu.primary[i].id = (unsigned long long)i + 1;
        emu_primary_reset_state(i);
        emu_handle_add(&g_emu.primary[i], EMU_K_CTX);
    }
    atomic_store(&g_emu.next_id, (unsigned long long)g_emu.ndev + 1);
    tf_export_hooks hooks = {
        .primary_ctx_retain = hook_primary_retain,
        .ctx_get_current = hook_get_current,
        .ctx_get_id = cuCtxGetId,
        .stream_get_id = cuStreamGetId,
        .driver_version = cuDriverGetVersion,
        .device_count = cuDeviceGetCount,
        .device_uuid = cuDeviceGetUuid,
        .device_attr = cuDeviceGetAttribute,
        .log_prefix = "tf-emu",
        .verbose = emu_trace_enabled(),
    };
    tf_export_tables_init(&hooks);
    pthread_atfork(NULL, NULL, forked_child);
    atomic_store(&g_emu.initialized, 1);
}

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

EMU_API CUresult cuInit(unsigned int Flags)
{
    if (Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (atomic_load(&g_forked))
        return CUDA_ERROR_NOT_INITIALIZED;
    if (pthread_once(&g_init_once, emu_init_once) != 0)
        return CUDA_ERROR_UNKNOWN;
    emu_jit_exit_fence();
    return g_settings_error;
}

CUresult emu_check_init(void)
{
    emu_jit_exit_fence();
    return atomic_load(&g_emu.initialized) ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult emu_check_device(CUdevice dev)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    return dev >= 0 && dev < g_emu.ndev ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

EMU_API CUresult cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion)
        return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = EMU_DRIVER_VERSION;
    return CUDA_SUCCESS;
}

static pthread_mutex_t g_busy_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_busy_active;          /* kernels executing right now */
static uint64_t g_busy_since;      /* when g_busy_active last went 0 -> 1 */
static unsigned long long g_busy_total;

void emu_busy_enter(void)
{
    pthread_mutex_lock(&g_busy_lock);
    if (g_busy_active++ == 0)
        g_busy_since = emu_now_ns();
    pthread_mutex_unlock(&g_busy_lock);
}

void emu_busy_exit(void)
{
    pthread_mutex_lock(&g_busy_lock);
    if (--g_busy_active == 0)
        g_busy_total += emu_now_ns() - g_busy_since;
    pthread_mutex_unlock(&g_busy_lock);
}

/* The limiter's utilization source on the emulated device (it has no NVML). */
EMU_API CUresult tfEmuGetBusyTime(unsigned long long *busy_ns)
{
    if (!busy_ns)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_busy_lock);
    *busy_ns = g_busy_total + (g_busy_active ? emu_now_ns() - g_busy_since : 0);
    pthread_mutex_unlock(&g_busy_lock);
    return CUDA_SUCCESS;
}

CUresult emu_unsupported(const char *name, int *logged)
{
    if (!__atomic_exchange_n(logged, 1, __ATOMIC_RELAXED))
        emu_log("%s is not supported by the emulated device", name);
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* ---- cuGetProcAddress ---- */
typedef struct api_row {
    const char *name;
    int version;
    void *fn;
} api_row;

/* The comparison against the cuda.h prototype makes a row with a mistyped impl fail to compile. */
#define TF_EMU_API(name, version, impl) {#name, version, (void *)(uintptr_t)&impl},
static const api_row k_api[] = {
#include "emu_api.h"
};
#undef TF_EMU_API

static CUresult proc_lookup(const char *symbol, void **pfn, int version, CUdriverProcAddressQueryResult *st)
{
    if (!symbol || !pfn)
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    const api_row *best = NULL;
    int name_known = 0;
    for (size_t i = 0; i < sizeof(k_api) / sizeof(k_api[0]); i++) {
        if (strcmp(k_api[i].name, symbol) != 0)
            continue;
        name_known = 1;
        if (k_api[i].version <= version && (!best || k_api[i].version > best->version))
            best = &k_api[i];
    }
    if (!best) { /* a cuda.h function the emulator does not implement: served, answering NOT_SUPPORTED */
        const emu_surface_proc *unsup = NULL;
        for (const emu_surface_proc *p = emu_surface_procs; p->api; p++)
            if (strcmp(p->api, symbol) == 0 && p->version <= version && (!unsup || p->version > unsup->version))
                unsup = p;
        if (unsup) {
            *pfn = unsup->fn;
            if (st)
                *st = CU_GET_PROC_ADDRESS_SUCCESS;
            return CUDA_SUCCESS;
        }
    }
    if (best) {
        *pfn = best->fn;
        if (st)
            *st = CU_GET_PROC_ADDRESS_SUCCESS;
        return CUDA_SUCCESS;
    }
    if (st)
        *st = name_known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (!name_known && symbol[0]) {
        /* log each unknown name once: remember a bounded set of names */
        static const char *seen[512];
        static int nseen;
        int fresh = 1;
        emu_lock();
        for (int i = 0; i < nseen; i++)
            if (strcmp(seen[i], symbol) == 0)
                fresh = 0;
        if (fresh && nseen < 512)
            seen[nseen++] = strdup(symbol);
        emu_unlock();
        if (fresh && trace_enabled())
            emu_log("cuGetProcAddress: %s (v%d) is not implemented by the emulated device", symbol, version);
    }
    return CUDA_ERROR_NOT_FOUND;
}

/* flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM (cudart built with --default-stream per-thread):
 * the _ptsz/_ptds variant, whose NULL stream is the calling thread's own (emu_stream_queue.c). */
EMU_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                     CUdriverProcAddressQueryResult *symbolStatus)
{
    CUresult rc = proc_lookup(symbol, pfn, cudaVersion, symbolStatus);
    if (rc == CUDA_SUCCESS && (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
        *pfn = emu_ptds_of(*pfn);
    return rc;
}

EMU_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}

EMU_API CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    CUresult rc = tf_export_table_get(ppExportTable, pExportTableId);
    if (trace_enabled() && pExportTableId) {
        const unsigned char *b = (const unsigned char *)pExportTableId->bytes;
        emu_log("cuGetExportTable %02x%02x%02x%02x... -> %d", b[0], b[1], b[2], b[3], (int)rc);
    }
    return rc;
}

/* ---- errors (table generated from cuda.h by gen_errors.py) ---- */
typedef struct err_row {
    CUresult code;
    const char *name;
    const char *text;
} err_row;

#define TF_CU_ERROR(name, text) {name, #name, text},
static const err_row k_errors[] = {
#include "cu_errors.h"
    {EMU_ERROR_INVALID_CONFIGURATION, "CUDA_ERROR_INVALID_CONFIGURATION",
     "This indicates that a kernel launch was given an invalid grid or block configuration"},
};
#undef TF_CU_ERROR

static const err_row *err_find(CUresult e)
{
    for (size_t i = 0; i < sizeof(k_errors) / sizeof(k_errors[0]); i++)
        if (k_errors[i].code == e)
            return &k_errors[i];
    return NULL;
}

EMU_API CUresult cuGetErrorName(CUresult error, const char **pStr)
{
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    const err_row *r = err_find(error);
    *pStr = r ? r->name : NULL;
    return r ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EMU_API CUresult cuGetErrorString(CUresult error, const char **pStr)
{
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    const err_row *r = err_find(error);
    *pStr = r ? r->text : NULL;
    return r ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
