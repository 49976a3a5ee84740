/* limiter.c - the limiter's state: configuration (shared-memory region or local env), the seqlocked
 * limits/usage halves of the region, the utilization source and the background controller thread.
 * Called by the hooks (hooks_*.c) through tfl_state_get(); see limiter.h and README.md. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "hooks.h"
#include "limiter.h"
#include "tf_log_line.h"

__thread int tfl_depth __attribute__((tls_model("initial-exec")));
static tfl_state g_state;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

uint64_t tfl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tfl_log(tfl_state *st, const char *fmt, ...)
{
    if (st->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    tf_log_line("tflimiter", 1, fmt, ap);
    va_end(ap);
}

/* ---- seqlocked access to the region ---------------------------------------------------------- */
static uint64_t ld64(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static void st64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static double ldf(double *p)
{
    uint64_t b = ld64((uint64_t *)(void *)p);
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}
static void stf(double *p, double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    st64((uint64_t *)(void *)p, b);
}

static double share_of(double tflops, double device_tflops)
{
    if (!(tflops > 0) || !(device_tflops > 0)) return 0;
    double s = tflops / device_tflops;
    return s >= 1 ? 0 : s; /* a whole device (or more) needs no limit */
}

void tfl_limits_read(tfl_state *st, tfl_limits *out)
{
    tf_shm_region *r = st->shm;
    uint64_t vram = 0;
    double tf = 0, dev = 0;
    for (int tries = 0; tries < 10000; tries++) {
        uint64_t s1 = __atomic_load_n(&r->limits_seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) { sched_yield(); continue; }
        vram = ld64(&r->vram_limit);
        tf = ldf(&r->tflops_limit);
        dev = ldf(&r->device_tflops);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&r->limits_seq, __ATOMIC_RELAXED) == s1) break;
    }
    out->vram_limit = vram;
    out->tflops_limit = tf;
    out->share = share_of(tf, dev);
}

static void limits_write_local(tf_shm_region *r, uint64_t vram, double tflops, double dev)
{
    uint64_t s = ld64(&r->limits_seq);
    __atomic_store_n(&r->limits_seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    st64(&r->vram_limit, vram);
    stf(&r->tflops_limit, tflops);
    stf(&r->device_tflops, dev);
    __atomic_store_n(&r->limits_seq, s + 2, __ATOMIC_RELEASE);
}

/* ---- the allocation's processes: per-process ledger slots --------------------------------------- */
/* Start time (clock ticks since boot, field 22 of /proc/<pid>/stat) of a live process, 0 if there is no
 * such process or it is a zombie (its memory is already freed). */
static uint64_t proc_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ') return 0;
    p += 2;
    if (*p == 'Z' || *p == 'X') return 0;
    for (int field = 3; field < 22; field++) { /* p points at field 3 (state) */
        p = strchr(p, ' ');
        if (!p) return 0;
        p++;
    }
    return strtoull(p, NULL, 10);
}

/* The pid namespace of this process: pids in slots of another namespace cannot be judged (never reclaimed). */
static uint64_t pid_ns(void)
{
    struct stat sb;
    return stat("/proc/self/ns/pid", &sb) == 0 ? (uint64_t)sb.st_ino : 0;
}

/* A slot's process is alive if /proc knows a live process with that pid and the slot's start time (a
 * reused pid is another process); while it claims its slot, any live process with that pid counts. */
static int proc_alive(uint64_t pid, uint64_t start, int claiming, void *ctx)
{
    (void)ctx;
    uint64_t now = pid && pid < (1u << 22) ? proc_start((pid_t)pid) : 0;
    return now && (claiming || now == start);
}

/* Gives back the charges of processes of the allocation that are gone (kill -9, crash) and frees their
 * slots (core/slots.c). Returns the bytes given back. */
uint64_t tfl_reclaim_dead(tfl_state *st)
{
    tf_shm_region *r = st->shm;
    uint64_t total = tfl_slots_reclaim(r->slots, TF_SHM_SLOTS, &r->vram_used,
                                       __atomic_load_n(&st->slot, __ATOMIC_ACQUIRE), st->ns, proc_alive, NULL);
    if (total) tfl_log(st, "gave back %llu bytes charged by processes that are gone", (unsigned long long)total);
    return total;
}

/* This process's slot (claimed on first use; a forked child claims its own). -1: no slot free even
 * after reclaiming (more than TF_SHM_SLOTS live processes in one allocation). */
static int slot_get(tfl_state *st)
{
    int s = __atomic_load_n(&st->slot, __ATOMIC_ACQUIRE);
    if (s >= 0) return s;
    if (pthread_mutex_lock(&st->slot_lock) != 0) return -1;
    s = st->slot;
    tf_shm_region *r = st->shm;
    uint64_t me = (uint64_t)getpid(), start = proc_start(getpid());
    if (s < 0) s = tfl_slot_claim(r->slots, TF_SHM_SLOTS, me, start, st->ns);
    if (s < 0) { /* full: dead processes' slots are freed (even those with nothing charged) */
        tfl_reclaim_dead(st);
        s = tfl_slot_claim(r->slots, TF_SHM_SLOTS, me, start, st->ns);
    }
    if (s >= 0) __atomic_store_n(&st->slot, s, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&st->slot_lock);
    if (s < 0) tfl_log(st, "all %u process slots of the allocation are taken: allocations refused", TF_SHM_SLOTS);
    return s;
}

int tfl_vram_charge(tfl_state *st, uint64_t bytes, uint64_t limit)
{
    tf_shm_region *r = st->shm;
    int s = slot_get(st);
    if (s < 0) return -1;
    if (tfl_shared_charge(&r->vram_used, &r->vram_peak, bytes, limit) != TFL_OK) {
        /* over the cap: maybe because of a dead process's charges */
        if (!limit || !tfl_reclaim_dead(st) || tfl_shared_charge(&r->vram_used, &r->vram_peak, bytes, limit) != TFL_OK) {
            __atomic_add_fetch(&r->oom_refusals, 1, __ATOMIC_RELAXED);
            return -1;
        }
    }
    /* A kill between the two adds leaks `bytes` in the total (fail closed), never frees what is in use. */
    __atomic_add_fetch(&r->slots[s].vram, bytes, __ATOMIC_RELEASE);
    return 0;
}

void tfl_vram_return(tfl_state *st, uint64_t bytes)
{
    if (!bytes) return;
    int s = __atomic_load_n(&st->slot, __ATOMIC_ACQUIRE);
    if (s < 0) return; /* nothing was charged through a slot (a forked child's inherited ledger is gone) */
    tfl_shared_return(&st->shm->slots[s].vram, bytes);
    tfl_shared_return(&st->shm->vram_used, bytes);
}

uint64_t tfl_vram_used(tfl_state *st) { return __atomic_load_n(&st->shm->vram_used, __ATOMIC_ACQUIRE); }

/* Adds this process's counters since its last publication to the allocation's (many writers: deltas only). */
void tfl_publish_usage(tfl_state *st)
{
    tf_shm_region *r = st->shm;
    if (pthread_mutex_lock(&st->publish_lock) != 0) return;
    uint64_t v;
    v = atomic_load_explicit(&st->launches, memory_order_relaxed);
    __atomic_add_fetch(&r->launches, v - st->pub_launches, __ATOMIC_RELAXED);
    st->pub_launches = v;
    v = atomic_load_explicit(&st->throttled_ns, memory_order_relaxed);
    __atomic_add_fetch(&r->throttled_ns, v - st->pub_throttled, __ATOMIC_RELAXED);
    st->pub_throttled = v;
    v = atomic_load_explicit(&st->tokens, memory_order_relaxed);
    __atomic_add_fetch(&r->tokens, v - st->pub_tokens, __ATOMIC_RELAXED);
    st->pub_tokens = v;
    v = __atomic_load_n(&st->busy_ns, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->busy_ns, v - st->pub_busy, __ATOMIC_RELAXED);
    st->pub_busy = v;
    stf(&r->refill_rate, atomic_load(&st->compute_on) ? ldf(&r->bucket_rate) : 0);
    st64(&r->limiter_pid, (uint64_t)getpid());
    st64(&r->updated_ns, realtime_ns());
    pthread_mutex_unlock(&st->publish_lock);
}

/* ---- launches ---------------------------------------------------------------------------------- */
/* The allocation's bucket (one for all its processes, in the region): admitted when the shared level is
 * positive, else the thread sleeps and re-checks (a live change applies to waiting launches too). */
void tfl_throttle(tfl_state *st, double cost)
{
    tf_shm_region *r = st->shm;
    uint64_t t0 = 0;
    for (;;) {
        double rate = ldf(&r->bucket_rate);
        if (!(rate > 0) || !atomic_load_explicit(&st->compute_on, memory_order_relaxed)) break; /* lifted */
        uint64_t now = tfl_now_ns();
        uint64_t w = tfl_gcra_take(&r->bucket_tat_ns, rate, cost, now, (uint64_t)(TFL_BURST_S * 1e9));
        if (w == 0) {
            atomic_fetch_add_explicit(&st->tokens, (uint64_t)cost, memory_order_relaxed);
            break;
        }
        atomic_store_explicit(&st->window_throttled, 1, memory_order_relaxed);
        if (!t0) t0 = now;
        uint64_t s = w < TFL_MAX_SLEEP_NS ? w : TFL_MAX_SLEEP_NS;
        struct timespec ts = {.tv_sec = (time_t)(s / 1000000000ull), .tv_nsec = (long)(s % 1000000000ull)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    if (t0) atomic_fetch_add_explicit(&st->throttled_ns, tfl_now_ns() - t0, memory_order_relaxed);
}

/* ---- utilization sources ------------------------------------------------------------------------ */
typedef struct { unsigned int pid; unsigned long long timeStamp; unsigned int smUtil, memUtil, encUtil, decUtil; } nvml_sample;
typedef int (*nvml_init_fn)(void);
typedef int (*nvml_by_index_fn)(unsigned int, void **);
typedef int (*nvml_proc_util_fn)(void *, nvml_sample *, unsigned int *, unsigned long long);

/* TF_LIMITER_BUSY picks the utilization source: unset/"auto" = the emulator's own busy counter
 * (tfEmuGetBusyTime) when libcuda is the emulator, else NVML per-process utilization; "cpu" = this
 * process's CPU time (an emulated device whose kernels run on this process's threads); "nvml" = NVML
 * even when the emulator's counter exists; "none" = no
 * feedback, open-loop token bucket at TF_FLOPS_PER_THREAD. */
static void busy_source_init(tfl_state *st)
{
    const char *src = getenv("TF_LIMITER_BUSY");
    if (src && strcmp(src, "none") == 0) return;
    if (src && strcmp(src, "cpu") == 0) { st->cpu_busy = 1; return; }
    if (!(src && strcmp(src, "nvml") == 0)) {
        st->emu_busy = (CUresult (*)(unsigned long long *))tfl_lib_sym(TFL_LIB_CUDA, "tfEmuGetBusyTime");
        if (st->emu_busy) return;
    }
    nvml_init_fn init = (nvml_init_fn)tfl_lib_sym(TFL_LIB_NVML, "nvmlInit_v2");
    nvml_by_index_fn by_index = (nvml_by_index_fn)tfl_lib_sym(TFL_LIB_NVML, "nvmlDeviceGetHandleByIndex_v2");
    if (!init || !by_index || init() != 0) return;
    /* NVML numbers GPUs physically and ignores CUDA_VISIBLE_DEVICES (which the worker sets per session):
     * CUDA's device 0 is the first visible entry - an index or a GPU-... UUID. */
    typedef int (*nvml_by_uuid_fn)(const char *, void **);
    nvml_by_uuid_fn by_uuid = (nvml_by_uuid_fn)tfl_lib_sym(TFL_LIB_NVML, "nvmlDeviceGetHandleByUUID");
    const char *e = getenv("TF_NVML_INDEX");
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    char first[96] = "0";
    if (e && *e) snprintf(first, sizeof first, "%s", e);
    else if (vis && *vis) snprintf(first, sizeof first, "%.*s", (int)strcspn(vis, ","), vis);
    void *dev = NULL;
    int rc = -1;
    if (strncmp(first, "GPU-", 4) == 0 || strncmp(first, "MIG-", 4) == 0) rc = by_uuid ? by_uuid(first, &dev) : -1;
    else rc = by_index((unsigned)strtoul(first, NULL, 10), &dev);
    if (rc == 0) st->nvml_dev = dev;
    else tfl_log(st, "NVML has no device '%s': open-loop token bucket", first);
}

static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Busy ns of this process over the last dt_ns, or 0 when no source exists. */
static uint64_t busy_delta(tfl_state *st, uint64_t dt_ns)
{
    if (st->cpu_busy) {
        uint64_t b = process_cpu_ns();
        uint64_t d = st->cpu_last && b > st->cpu_last ? b - st->cpu_last : 0;
        st->cpu_last = b;
        __atomic_store_n(&st->busy_ns, st->busy_ns + d, __ATOMIC_RELAXED);
        return d;
    }
    if (st->emu_busy) {
        unsigned long long b = 0;
        if (st->emu_busy(&b) != CUDA_SUCCESS) return 0;
        uint64_t d = b > st->busy_ns ? b - st->busy_ns : 0;
        __atomic_store_n(&st->busy_ns, (uint64_t)b, __ATOMIC_RELAXED);
        return d;
    }
    if (!st->nvml_dev) return 0;
    nvml_proc_util_fn util = (nvml_proc_util_fn)tfl_lib_sym(TFL_LIB_NVML, "nvmlDeviceGetProcessUtilization");
    if (!util) return 0;
    nvml_sample samples[64];
    unsigned int n = 64;
    double sum = 0;
    int seen = 0;
    if (util(st->nvml_dev, samples, &n, st->nvml_last_ts) == 0) {
        for (unsigned i = 0; i < n && i < 64; i++) {
            if (samples[i].timeStamp > st->nvml_last_ts) st->nvml_last_ts = samples[i].timeStamp;
            if (samples[i].pid == (unsigned)getpid()) { sum += samples[i].smUtil; seen++; }
        }
    }
    uint64_t launches = atomic_load_explicit(&st->launches, memory_order_relaxed);
    if (seen) st->nvml_last_u = sum / seen / 100.0; /* NVML samples every ~1/6 s: hold the last value */
    else if (launches == st->nvml_last_launches) st->nvml_last_u = 0; /* idle, not just between samples */
    st->nvml_last_launches = launches;
    uint64_t d = (uint64_t)(st->nvml_last_u * (double)dt_ns);
    __atomic_store_n(&st->busy_ns, st->busy_ns + d, __ATOMIC_RELAXED);
    return d;
}

static int has_busy_source(const tfl_state *st) { return st->emu_busy || st->nvml_dev || st->cpu_busy; }

/* ---- controller thread ---------------------------------------------------------------------------- */
static double open_loop_rate(const tfl_state *st, const tfl_limits *l)
{
    return l->tflops_limit * 1e12 / st->flops_per_token;
}

/* One step of this process's controller. Its inputs are the ALLOCATION's (busy time and tokens of all
 * its processes, read back from the region after adding this process's own), so every process of the
 * allocation computes the same rate for the one shared bucket; whichever writes last sets it. */
static void controller_step(tfl_state *st, uint64_t dt_ns)
{
    tf_shm_region *r = st->shm;
    tfl_limits l;
    tfl_limits_read(st, &l);
    busy_delta(st, dt_ns);
    tfl_publish_usage(st);
    if (pthread_mutex_lock(&st->lock) != 0) return;
    uint64_t busy_all = __atomic_load_n(&r->busy_ns, __ATOMIC_RELAXED);
    uint64_t tokens_all = __atomic_load_n(&r->tokens, __ATOMIC_RELAXED);
    uint64_t thr_all = __atomic_load_n(&r->throttled_ns, __ATOMIC_RELAXED);
    uint64_t busy = busy_all - st->seen_busy;
    double tokens = (double)(tokens_all - st->seen_tokens);
    int thr = atomic_exchange(&st->window_throttled, 0) || thr_all != st->seen_throttled;
    st->seen_busy = busy_all;
    st->seen_tokens = tokens_all;
    st->seen_throttled = thr_all;
    if (l.share > 0) {
        if (!atomic_load(&st->compute_on)) {
            if (st->ctrl.rate <= 0 || st->last_share <= 0) tfl_ctrl_init(&st->ctrl, open_loop_rate(st, &l));
            stf(&r->bucket_rate, st->ctrl.rate);
            atomic_store(&st->compute_on, 1);
        } else {
            double rate = has_busy_source(st) ? tfl_ctrl_step(&st->ctrl, l.share, dt_ns, busy, tokens, thr)
                                              : open_loop_rate(st, &l);
            tfl_gcra_raise(&r->bucket_tat_ns, ldf(&r->bucket_rate), rate, tfl_now_ns()); /* shortens waits */
            stf(&r->bucket_rate, rate);
        }
    } else {
        atomic_store(&st->compute_on, 0);
    }
    st->last_share = l.share;
    pthread_mutex_unlock(&st->lock);
}

static void *controller_main(void *arg)
{
    tfl_state *st = arg;
    uint64_t last = tfl_now_ns();
    for (unsigned n = 1;; n++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)TFL_PERIOD_NS};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        uint64_t now = tfl_now_ns();
        controller_step(st, now - last);
        last = now;
        tfl_publish_usage(st);
        if (st->shared && n % TFL_RECLAIM_PERIODS == 0) tfl_reclaim_dead(st); /* a dead process's charges */
    }
    return NULL;
}

/* ---- configuration ------------------------------------------------------------------------------- */
static tf_shm_region *open_region(tfl_state *st, const char *name)
{
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0) { tfl_log(st, "TF_LIMITER_SHM=%s: shm_open: %s", name, strerror(errno)); return NULL; }
    struct stat sb;
    void *p = MAP_FAILED;
    if (fstat(fd, &sb) == 0 && (size_t)sb.st_size >= sizeof(tf_shm_region))
        p = mmap(NULL, sizeof(tf_shm_region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) { tfl_log(st, "TF_LIMITER_SHM=%s: region too small or unmappable", name); return NULL; }
    tf_shm_region *r = p;
    if (r->magic != TF_SHM_MAGIC || r->version != TF_SHM_VERSION || r->size < sizeof(tf_shm_region)) {
        tfl_log(st, "TF_LIMITER_SHM=%s: bad header (magic %#x version %u size %u; want %#x %u %zu)", name,
                r->magic, r->version, r->size, TF_SHM_MAGIC, TF_SHM_VERSION, sizeof(tf_shm_region));
        munmap(p, sizeof(tf_shm_region));
        return NULL;
    }
    return r;
}

/* ---- local configuration (env) ----------------------------------------------------------------
 * Every limit variable that is set must parse (grammar in core/tfl_core.h, the same as `--vram` /
 * `--tflops`); one that does not makes the limiter refuse cuInit and every allocation (fail closed),
 * with ONE line on stderr naming the variable and the spellings accepted. Never runs uncapped on a typo. */
#define VRAM_HELP "a Kubernetes quantity: bytes (1073741824) or a number with a case-sensitive suffix, Ki Mi Gi " \
                  "Ti (x1024^n) or k M G T (x1000^n), e.g. 512Mi, 1.5Gi, 2G"
#define HAMI_HELP "bytes (1073741824) or a number with k/m/g/t or Ki/Mi/Gi/Ti (x1024^n, HAMi's meaning), e.g. 512m, 1g"
#define TFLOPS_HELP "a Kubernetes quantity of TFLOPS: a number (10, 2.5) or one with a case-sensitive suffix, " \
                    "m (milli: 500m = 0.5) or k (1000)"

static void config_refuse(tfl_state *st, const char *name, const char *value, const char *what, const char *help)
{
    if (st->config_refused) return; /* one line: the first bad variable */
    st->config_refused = 1;
    st->broken = 1;
    /* printed even with TF_LIMITER_QUIET: the user must learn why every CUDA call fails */
    fprintf(stderr, "tflimiter[%d]: %s='%s' %s; accepted: %s. Every CUDA initialisation is refused until it "
            "is fixed or unset (fail closed)\n", (int)getpid(), name, value, what, help);
}

static const char *env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* 1 = set and valid (*out filled), 0 = unset, -1 = set but refused (limiter now fails closed) */
static int env_bytes(tfl_state *st, const char *name, int dialect, uint64_t *out)
{
    const char *v = env_set(name);
    if (!v) return 0;
    const char *help = dialect == TFL_UNITS_HAMI ? HAMI_HELP : VRAM_HELP;
    if (tfl_parse_bytes(v, dialect, out) != 0) { config_refuse(st, name, v, "is not a VRAM size", help); return -1; }
    if (*out == 0) { config_refuse(st, name, v, "is a cap of 0 bytes (unset it for no cap)", help); return -1; }
    return 1;
}

static int env_tflops(tfl_state *st, const char *name, double *out)
{
    const char *v = env_set(name);
    if (!v) return 0;
    if (tfl_parse_tflops(v, out) != 0 || !(*out > 0)) {
        config_refuse(st, name, v, "is not a TFLOPS quantity > 0", TFLOPS_HELP);
        return -1;
    }
    return 1;
}

static void local_config(tfl_state *st)
{
    uint64_t vram = 0, hami = 0, hami0 = 0;
    double tflops = 0, dev = 0, sm = 0;
    /* all of them are checked, also those a higher-priority variable overrides: a typo anywhere is an error */
    int v_tf = env_bytes(st, "TF_VRAM_LIMIT", TFL_UNITS_TF, &vram);
    int v_hami = env_bytes(st, "CUDA_DEVICE_MEMORY_LIMIT", TFL_UNITS_HAMI, &hami);
    int v_hami0 = env_bytes(st, "CUDA_DEVICE_MEMORY_LIMIT_0", TFL_UNITS_HAMI, &hami0);
    if (v_tf <= 0) vram = v_hami > 0 ? hami : v_hami0 > 0 ? hami0 : 0;
    int t = env_tflops(st, "TF_TFLOPS_LIMIT", &tflops);
    int d = env_tflops(st, "TF_DEVICE_TFLOPS", &dev);
    const char *smv = env_set("CUDA_DEVICE_SM_LIMIT");
    if (smv && (tfl_parse_double(smv, &sm) != 0 || sm > 100))
        config_refuse(st, "CUDA_DEVICE_SM_LIMIT", smv, "is not a percentage",
                      "a number from 0 to 100 (0 or 100 = no compute limit)");
    if (t > 0 && d == 0)
        config_refuse(st, "TF_TFLOPS_LIMIT", env_set("TF_TFLOPS_LIMIT"), "needs TF_DEVICE_TFLOPS (the device's TFLOPS)",
                      "set both, the share is their ratio");
    if (st->config_refused) {
        limits_write_local(st->shm, 0, 0, 0);
        return;
    }
    if (t <= 0) {
        tflops = 0;
        dev = 0;
        if (sm > 0 && sm < 100) {
            tflops = sm; /* HAMi-style percentage: share = sm / 100 */
            dev = 100;
        }
    }
    limits_write_local(st->shm, vram, tflops, dev);
}

static void atfork_child(void);

static void init_once(void)
{
    tfl_state *st = &g_state;
    const char *q = getenv("TF_LIMITER_QUIET");
    st->quiet = q && *q && strcmp(q, "0") != 0;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->publish_lock, NULL);
    pthread_mutex_init(&st->slot_lock, NULL);
    st->slot = -1;
    st->ns = pid_ns();
    tfl_ledger_init(&st->ledger);
    tfl_ledger_init(&st->graphs);
    st->flops_per_token = 1000;
    const char *fpt = env_set("TF_FLOPS_PER_THREAD");
    if (fpt && (tfl_parse_double(fpt, &st->flops_per_token) != 0 || !(st->flops_per_token > 0)))
        config_refuse(st, "TF_FLOPS_PER_THREAD", fpt, "is not a number > 0", "a number of FLOPs per thread, e.g. 1000");

    const char *name = getenv("TF_LIMITER_SHM");
    if (name && *name) {
        st->shm = open_region(st, name);
        st->shared = st->shm != NULL;
        st->broken |= st->shm == NULL;
        if (st->broken) tfl_log(st, "limits unknown: every device allocation will fail (fail closed)");
    }
    if (!st->shm) {
        static tf_shm_region local;
        st->shm = &local;
        local.magic = TF_SHM_MAGIC;
        local.version = TF_SHM_VERSION;
        local.size = sizeof local;
        if (!st->broken) local_config(st);
    }
    if (st->config_refused) return; /* fail closed: no controller, cuInit and allocations refused */
    tfl_limits l;
    tfl_limits_read(st, &l);
    if (st->shared || l.share > 0) {
        busy_source_init(st);
        const char *src = getenv("TF_LIMITER_BUSY");
        if (l.share > 0 && !has_busy_source(st) && !(src && strcmp(src, "none") == 0))
            tfl_log(st, "no utilization source (emulator counter / NVML): open-loop token bucket");
        tfl_ctrl_init(&st->ctrl, l.share > 0 ? open_loop_rate(st, &l) : 1.0);
        controller_step(st, TFL_PERIOD_NS); /* turns the bucket on now, not one period later */
        if (pthread_create(&st->thread, NULL, controller_main, st) == 0) {
            st->thread_started = 1;
            pthread_detach(st->thread);
        } else {
            tfl_log(st, "cannot start the controller thread: limits fixed at start");
        }
    }
    if (pthread_atfork(NULL, NULL, atfork_child) != 0) tfl_log(st, "pthread_atfork failed: forked children share counters");
    tfl_publish_usage(st);
}

/* A forked child keeps the limits (same region, same caps) but not the parent's charges, counters or
 * controller thread (threads do not survive fork); it never writes the parent's usage. */
static void atfork_child(void)
{
    tfl_state *st = &g_state;
    pthread_mutex_init(&st->lock, NULL); /* another thread may have held them at fork time */
    pthread_mutex_init(&st->publish_lock, NULL);
    pthread_mutex_init(&st->slot_lock, NULL);
    tfl_ledger_free(&st->ledger);
    tfl_ledger_free(&st->graphs);
    st->slot = -1; /* the parent's slot (and charges) stay the parent's; the child claims its own */
    atomic_store(&st->launches, 0);
    atomic_store(&st->throttled_ns, 0);
    atomic_store(&st->tokens, 0);
    st->pub_launches = st->pub_throttled = st->pub_tokens = 0;
    st->is_child = 1;
    if (st->thread_started) {
        st->thread_started = 0;
        atomic_store(&st->restart_thread, 1);
    }
}

static void restart_after_fork(tfl_state *st)
{
    if (!atomic_exchange(&st->restart_thread, 0)) return;
    if (pthread_create(&st->thread, NULL, controller_main, st) == 0) {
        st->thread_started = 1;
        pthread_detach(st->thread);
    }
}

tfl_state *tfl_state_get(void)
{
    pthread_once(&g_once, init_once);
    if (__builtin_expect(atomic_load_explicit(&g_state.restart_thread, memory_order_relaxed), 0))
        restart_after_fork(&g_state);
    return &g_state;
}
