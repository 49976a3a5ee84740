/* tfl_core.h - the limiter's pure core: token bucket, VRAM ledger, utilization controller, unit parsing.
 * No CUDA, no clocks, no threads: every function takes the time (ns) and the numbers it needs, so the
 * C unit tests (limiter_c/tests/) drive it with a simulated clock. Called by limiter.c / hooks_*.c. */
#ifndef TFL_CORE_H
#define TFL_CORE_H
#include <stddef.h>
#include <stdint.h>
#include "../tf_limiter_shm.h"

/* ---- Token bucket (debt model) ------------------------------------------------------------------
 * Tokens are "thread launches": a launch of grid G and block B costs G.x*G.y*G.z * B.x*B.y*B.z.
 * A launch is admitted whenever the level is positive and may drive it negative (debt): a launch
 * bigger than the capacity is never refused or stuck, it just makes the next launches wait longer.
 * The capacity bounds the burst an idle process can save up. */
typedef struct {
    double rate;      /* tokens per second (> 0) */
    double capacity;  /* max saved tokens */
    double level;     /* current tokens; negative = debt */
    uint64_t last_ns; /* time of the last refill */
} tfl_bucket;

#define TFL_BURST_S 0.02 /* capacity = 20 ms of refill: enough to hide timer jitter, small vs a 1 s window */

void tfl_bucket_init(tfl_bucket *b, double rate, uint64_t now_ns);
void tfl_bucket_refill(tfl_bucket *b, uint64_t now_ns);
/* Changes the refill rate (refills at the old rate first); the capacity follows the rate. */
void tfl_bucket_set_rate(tfl_bucket *b, double rate, uint64_t now_ns);
/* Admits a launch of `cost` tokens: returns 0 and debits the bucket, or the ns to wait before
 * retrying (the bucket is not changed). */
uint64_t tfl_bucket_take(tfl_bucket *b, double cost, uint64_t now_ns);
double tfl_launch_cost(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz);

/* ---- VRAM ledger --------------------------------------------------------------------------------
 * Charge before the driver allocates (reserve), then bind the result to its key (commit) or give it
 * back (cancel). A free refunds exactly what its key was charged; an unknown key refunds nothing, so
 * `used` never underflows. Keys are (kind, value): device pointers, arrays and VMM handles live in
 * different name spaces. Not thread-safe: the caller holds its lock. */
enum tfl_key_kind { TFL_KEY_PTR = 1, TFL_KEY_ARRAY, TFL_KEY_MIPMAP, TFL_KEY_VMM, TFL_KEY_GRAPHMEM, TFL_KEY_HOSTMAP,
                    TFL_KEY_MODULE, TFL_KEY_LIBRARY, TFL_KEY_HEAP };
typedef struct { uint64_t key, bytes, owner; uint8_t kind; } tfl_ledger_slot;
typedef struct {
    uint64_t used, peak;
    size_t count, cap;      /* live entries; table size (power of two, 0 = not allocated) */
    size_t tombs;           /* deleted slots (kind = 0xff) */
    tfl_ledger_slot *slots;
} tfl_ledger;

typedef enum { TFL_OK = 0, TFL_OVER_LIMIT = 1, TFL_NOMEM = 2, TFL_DUPLICATE = 3 } tfl_status;

void tfl_ledger_init(tfl_ledger *l);
void tfl_ledger_free(tfl_ledger *l);
/* limit 0 = no cap. Fails with TFL_OVER_LIMIT (nothing charged) when used + bytes > limit. */
tfl_status tfl_ledger_reserve(tfl_ledger *l, uint64_t bytes, uint64_t limit);
void tfl_ledger_cancel(tfl_ledger *l, uint64_t bytes);
/* Binds a reserved amount to a key. On TFL_NOMEM/TFL_DUPLICATE the reservation stays charged to
 * nobody; the caller cancels it. */
tfl_status tfl_ledger_commit(tfl_ledger *l, int kind, uint64_t key, uint64_t bytes);
/* The same, recording an owner (the CUDA context the allocation lives in; 0 = none). */
tfl_status tfl_ledger_commit_owned(tfl_ledger *l, int kind, uint64_t key, uint64_t bytes, uint64_t owner);
/* Refunds every key of an owner (its context was destroyed: the driver freed them); returns the bytes. */
uint64_t tfl_ledger_release_owner(tfl_ledger *l, uint64_t owner);
/* Removes a key; returns the bytes refunded (0 if unknown). */
uint64_t tfl_ledger_release(tfl_ledger *l, int kind, uint64_t key);
uint64_t tfl_ledger_lookup(const tfl_ledger *l, int kind, uint64_t key);

/* ---- Utilization controller ----------------------------------------------------------------------
 * Output: the bucket's refill rate (tokens/s). Each step sees, over the last window, the device busy
 * time of this process and the tokens its launches spent.
 *   smoothing     T, B, W = sums of tokens, busy seconds and wall seconds, each decayed by
 *                 TFL_CTRL_DECAY per step (~0.5 s memory at 50 ms steps): a window holds only a few
 *                 launches when kernels are long, and busy time may lag the launches (queued GPU work);
 *                 ratios of decayed sums are robust to both.
 *   feed-forward  k    = T / B            (tokens per busy second: the measured cost of this workload)
 *                 r_ff = share * k        (the rate that makes busy/wall == share)
 *   PI correction u    = B / W            (smoothed utilization)
 *                 e    = (share - u) / share, clamped to [-1, 1]  (relative: the same gains work for a
 *                        1 % and a 100 % share and for any device size - HAMi-core's step grows with
 *                        SMs^2, so on a large GPU its limit is ignored)
 *                 c    = 1 + KP*e + I,  I += KI*e*dt, both clamped.
 *                 Anti-windup: I integrates e clamped to +-TFL_CTRL_IZONE (a transient - the feed-
 *                 forward's job - adds at most KI*IZONE per second, while a persistent bias such as
 *                 late wake-ups on a loaded host is still removed), upward only while the bucket
 *                 actually throttled, and leaks toward 0 while the workload itself stays under its
 *                 share (so it cannot burst later); the P term only acts while throttled or over it.
 *   rate = r_ff * c, moved at most x/÷ TFL_CTRL_SLEW per step once the first estimate is in (a bad
 *   early estimate cannot cause a large overshoot; symmetric, so noise does not bias the rate).
 *   A changed share (live update) moves the rate at once (the slew guards against bad measurements,
 *   not against the supervisor), clears I and restarts u's sums; the PI waits for TFL_CTRL_UMIN_S of
 *   them (u from before the change says nothing about the new share).
 * With no busy information yet (or no source at all) the rate stays at its open-loop value. */
#define TFL_CTRL_KP    0.2   /* proportional gain on the relative error */
#define TFL_CTRL_KI    2.0   /* integral gain, 1/s */
#define TFL_CTRL_IMAX  0.5   /* |I| bound */
#define TFL_CTRL_IZONE 0.1   /* bound of the error the integral sees: I moves <= 0.2 per second */
#define TFL_CTRL_LEAK  0.8   /* I *= LEAK per step while unthrottled under the share */
#define TFL_CTRL_CMIN  0.25  /* bounds of the correction factor c */
#define TFL_CTRL_CMAX  2.0
#define TFL_CTRL_DECAY 0.9    /* per-step decay of the sums */
#define TFL_CTRL_SLEW  1.5   /* max rate change factor per step */
#define TFL_CTRL_UMIN_S 0.2  /* wall seconds of u needed before the PI acts */

typedef struct {
    double sum_tokens, sum_busy, sum_wall; /* decayed sums, see above */
    double u_busy, u_wall;  /* the same for u, restarted when the share changes */
    double integ;   /* I term */
    double rate;    /* current output, tokens/s */
    double open_loop_rate;
    double last_share;
    int have_k;
} tfl_ctrl;

void tfl_ctrl_init(tfl_ctrl *c, double open_loop_rate);
/* share in (0, 1]; dt_ns > 0; busy_ns and tokens over the same window; throttled != 0 if a launch
 * waited in the window. Returns the new rate. */
double tfl_ctrl_step(tfl_ctrl *c, double share, uint64_t dt_ns, uint64_t busy_ns, double tokens, int throttled);

/* ---- Shared between processes (core/shared.c) -------------------------------------------------------
 * Lock-free operations on 8-byte words of an allocation's shared region. tfl_shared_charge adds `bytes`
 * to *used only if the result stays <= limit (0 = no limit; one CAS, so racing processes never pass the
 * cap together) and raises *peak; tfl_shared_return subtracts, never below 0. tfl_gcra_take is the
 * shared token bucket: 0 = admitted (the launch's cost is booked), else ns to wait before retrying;
 * burst_ns of refill can be saved up (the capacity). */
tfl_status tfl_shared_charge(uint64_t *used, uint64_t *peak, uint64_t bytes, uint64_t limit);
void tfl_shared_return(uint64_t *used, uint64_t bytes);
uint64_t tfl_gcra_take(uint64_t *tat, double rate, double cost, uint64_t now_ns, uint64_t burst_ns);
/* The bucket's rate rises from old_rate to new_rate: the debt still ahead of now (tat - now, counted at
 * old_rate) becomes the same tokens at new_rate, so a raise shortens the waits already owed too. A cut
 * leaves it (what was admitted keeps its price; a rate falling step after step never stretches a wait). */
void tfl_gcra_raise(uint64_t *tat, double old_rate, double new_rate, uint64_t now_ns);

/* ---- Per-process ledger slots (core/slots.c) ----------------------------------------------------------
 * tfl_slot_claim takes a free slot for process `pid` (start time `start`, pid namespace `ns`): its index,
 * or -1 when all n are taken. tfl_slots_reclaim gives back to *used the bytes of every slot (other than
 * `self`, of namespace `ns`) whose process `alive` says is gone, frees those slots and returns the bytes;
 * `alive(pid, start, claiming, ctx)`: 1 = alive; claiming = the slot's start time is not written yet. */
typedef int (*tfl_alive_fn)(uint64_t pid, uint64_t start, int claiming, void *ctx);
int tfl_slot_claim(tf_shm_slot *slots, unsigned n, uint64_t pid, uint64_t start, uint64_t ns);
uint64_t tfl_slots_reclaim(tf_shm_slot *slots, unsigned n, uint64_t *used, int self, uint64_t ns,
                           tfl_alive_fn alive, void *ctx);

/* ---- Parsing -------------------------------------------------------------------------------------
 * TF_VRAM_LIMIT (TFL_UNITS_TF) and TFLOPS (TF_TFLOPS_LIMIT, TF_DEVICE_TFLOPS) are Kubernetes resource
 * quantities, the grammar of tfclient/quantity.py (`--vram`, `--tflops`): an optionally signed number ("2",
 * "1.5", ".5", "1."), then nothing, an exponent ("1e3") or one case-sensitive suffix: Ki Mi Gi Ti Pi Ei
 * (1024^n), m (10^-3), k M G T P E (1000^n); no blanks. Returns 0 on success, -1 else (negative too).
 * Bytes: a bare number is BYTES here, while `--vram 1024` means MiB: an environment variable has always been
 * bytes (HAMi, our README); "m" (a thousandth of a byte) is refused. Fractions of a byte round up.
 * TFL_UNITS_HAMI (CUDA_DEVICE_MEMORY_LIMIT[_0]): HAMi-core's historical meaning, blanks allowed, units in any
 * case, single letters binary ("1g" = 2^30, "512m" = 2^29: the HAMi device plugin writes "<MiB>m");
 * Ki/Mi/Gi/Ti(B) too; decimal KB/MB/GB/TB are refused there.
 * Plain numbers (tfl_parse_double): a non-negative number, blanks around it allowed, no unit. */
enum { TFL_UNITS_TF = 0, TFL_UNITS_HAMI = 1 };
int tfl_parse_bytes(const char *s, int dialect, uint64_t *out);
int tfl_parse_tflops(const char *s, double *out);
int tfl_parse_double(const char *s, double *out);

#endif
