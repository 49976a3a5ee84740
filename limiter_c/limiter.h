/* limiter.h - the limiter's per-process (= per-session) state and the operations the hooks call.
 * One struct holds everything; hooks get it from tfl_state_get() and pass it down explicitly.
 * Implemented in limiter.c (config, shared memory, background controller) and used by hooks_*.c. */
#ifndef TFL_LIMITER_H
#define TFL_LIMITER_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "core/tfl_core.h"
#include "tf_limiter_shm.h"

#define TFL_PERIOD_NS   50000000ull /* controller period */
#define TFL_MAX_SLEEP_NS 5000000ull /* a waiting launch re-checks at least this often (live changes) */
#define TFL_RECLAIM_PERIODS 20     /* the controller looks for dead processes' charges every second */

typedef struct {
    uint64_t vram_limit;  /* 0 = none */
    double share;         /* tflops_limit / device_tflops in (0, 1]; 0 = no compute limit */
    double tflops_limit;
} tfl_limits;

typedef struct {
    tf_shm_region *shm;       /* the session's region, or a private one filled from env (local mode) */
    int shared;               /* 1 = shm from TF_LIMITER_SHM */
    int broken;               /* TF_LIMITER_SHM set but unusable: fail closed (allocations OOM) */
    int config_refused;       /* a local limit variable does not parse: cuInit refused too */

    pthread_mutex_t lock;     /* ledger, controller state */
    tfl_ledger ledger;        /* this process's VRAM charges by pointer/handle (the shared total is in shm) */
    tfl_ledger graphs;        /* graph exec -> launch cost (bytes field = tokens) */
    tfl_ctrl ctrl;
    atomic_int window_throttled; /* a launch waited since the last controller step */

    /* the allocation's region (shared by all its processes): this process's ledger slot, and what of
     * its counters it has added to the region's so far */
    int slot;                 /* index in shm->slots, -1 until the first charge */
    uint64_t ns;              /* pid namespace inode: only slots of the same namespace are judged */
    pthread_mutex_t slot_lock;
    uint64_t pub_launches, pub_throttled, pub_tokens, pub_busy;
    uint64_t seen_busy, seen_tokens, seen_throttled; /* region totals at the last controller step */
    atomic_uint_fast64_t tokens; /* tokens admitted by this process */
    double flops_per_token;   /* open-loop conversion, TF_FLOPS_PER_THREAD */
    double last_share;

    atomic_int compute_on;    /* hot-path flag: launches go through the bucket */
    atomic_uint_fast64_t launches, throttled_ns;
    uint64_t busy_ns;         /* this process's device busy time so far (source below; atomic stores) */

    /* utilization source: the emulator's own counter, else NVML per-process, else none (open loop) */
    CUresult (*emu_busy)(unsigned long long *);
    int cpu_busy;             /* TF_LIMITER_BUSY=cpu: this process's CPU time is the device time */
    uint64_t cpu_last;
    void *nvml_dev;
    unsigned long long nvml_last_ts;
    double nvml_last_u;
    uint64_t nvml_last_launches;

    int is_child;             /* forked from a process of the allocation (claims its own slot) */
    atomic_int restart_thread; /* set in a forked child: start its own controller on next use */
    pthread_mutex_t publish_lock;
    pthread_t thread;
    int thread_started;
    int quiet;
} tfl_state;

/* Initialises on first call (config from env, shared memory, background thread when needed). */
tfl_state *tfl_state_get(void);
void tfl_limits_read(tfl_state *st, tfl_limits *out);
void tfl_publish_usage(tfl_state *st);
/* The allocation's VRAM total (shared by its processes): charge `bytes` against `limit` (0 = none) with
 * one CAS, 0 on success; return bytes charged before; the total now. */
int tfl_vram_charge(tfl_state *st, uint64_t bytes, uint64_t limit);
void tfl_vram_return(tfl_state *st, uint64_t bytes);
uint64_t tfl_vram_used(tfl_state *st);
uint64_t tfl_reclaim_dead(tfl_state *st);
void tfl_throttle(tfl_state *st, double cost);
uint64_t tfl_now_ns(void);
void tfl_log(tfl_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Re-entrancy guard: a driver that calls its own exported entry points (cuMemAllocPitch calling
 * cuMemAlloc...) must not be charged twice. */
extern __thread int tfl_depth __attribute__((tls_model("initial-exec")));

/* Launch accounting: counts every launch, waits for tokens only when a compute limit is on. A launch
 * made by the driver itself while inside a hooked call (a graph launch running its kernel nodes through
 * the exported cuLaunchKernel) was already paid for. */
static inline void tfl_before_launch(tfl_state *st, double cost)
{
    if (tfl_depth) return;
    atomic_fetch_add_explicit(&st->launches, 1, memory_order_relaxed);
    if (atomic_load_explicit(&st->compute_on, memory_order_relaxed)) tfl_throttle(st, cost);
}


#endif
