/* shared.c - the counters one allocation's processes share through its region (tf_limiter_shm.h): the
 * VRAM total charged against the cap and the token bucket. Pure (no clock, no CUDA): the caller passes
 * the time; lock-free, so a process killed at any instruction never leaves a lock held. Called by
 * limiter.c and hooks_mem.c; unit-tested with threads racing in limiter_c/tests/test_core.c. */
#include <math.h>
#include "tfl_core.h"

tfl_status tfl_shared_charge(uint64_t *used, uint64_t *peak, uint64_t bytes, uint64_t limit)
{
    uint64_t u = __atomic_load_n(used, __ATOMIC_RELAXED);
    for (;;) {
        if (limit && (u > limit || bytes > limit - u)) return TFL_OVER_LIMIT;
        if (!limit && bytes > UINT64_MAX - u) return TFL_OVER_LIMIT;
        if (__atomic_compare_exchange_n(used, &u, u + bytes, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) break;
    }
    uint64_t n = u + bytes, p = __atomic_load_n(peak, __ATOMIC_RELAXED);
    while (n > p && !__atomic_compare_exchange_n(peak, &p, n, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
    return TFL_OK;
}

void tfl_shared_return(uint64_t *used, uint64_t bytes)
{
    uint64_t u = __atomic_load_n(used, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(used, &u, bytes > u ? 0 : u - bytes, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {}
}

/* GCRA: the bucket is one number, the theoretical arrival time `tat`. Level L = rate * (now + burst - tat)
 * capped at rate * burst (tat >= now after an admission). Admitted while L > 0, i.e. tat < now + burst; an
 * admission moves tat to max(tat, now) + cost / rate, into the future as far as the cost needs (debt: a
 * launch bigger than the capacity is admitted and the next ones wait). Same behaviour as tfl_bucket. */
uint64_t tfl_gcra_take(uint64_t *tat, double rate, double cost, uint64_t now_ns, uint64_t burst_ns)
{
    if (!(rate > 0)) return 0;
    double inc_d = cost > 0 ? cost / rate * 1e9 : 0;
    uint64_t inc = inc_d >= 9e18 ? (uint64_t)9e18 : (uint64_t)ceil(inc_d);
    uint64_t t = __atomic_load_n(tat, __ATOMIC_RELAXED);
    for (;;) {
        if (t >= now_ns + burst_ns) return t - (now_ns + burst_ns) + 1;
        uint64_t base = t > now_ns ? t : now_ns;
        if (__atomic_compare_exchange_n(tat, &t, base + inc, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return 0;
    }
}

void tfl_gcra_raise(uint64_t *tat, double old_rate, double new_rate, uint64_t now_ns)
{
    if (!(old_rate > 0) || !(new_rate > old_rate)) return;
    uint64_t t = __atomic_load_n(tat, __ATOMIC_RELAXED);
    for (;;) {
        if (t <= now_ns) return; /* no debt */
        double d = (double)(t - now_ns) * (old_rate / new_rate);
        uint64_t nt = now_ns + (d >= 9e18 ? (uint64_t)9e18 : (uint64_t)ceil(d));
        if (__atomic_compare_exchange_n(tat, &t, nt, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return;
    }
}
