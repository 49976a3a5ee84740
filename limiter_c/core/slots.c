/* slots.c - the per-process ledger slots of an allocation's region (tf_limiter_shm.h): a process claims
 * one and adds what it charges to it; the charges of a process that is gone are given back to the
 * allocation's total by whoever finds its slot. Pure: the caller says which processes are alive (a
 * callback; limiter.c asks /proc), so limiter_c/tests/test_core.c races reclaimers with threads. */
#include "tfl_core.h"

int tfl_slot_claim(tf_shm_slot *slots, unsigned n, uint64_t pid, uint64_t start, uint64_t ns)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t zero = 0;
        /* marked while the record is written: no reclaimer judges a half-written start time */
        if (!__atomic_compare_exchange_n(&slots[i].pid, &zero, pid | TF_SHM_SLOT_RECLAIM, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_RELAXED))
            continue;
        __atomic_store_n(&slots[i].start, start, __ATOMIC_RELAXED);
        __atomic_store_n(&slots[i].vram, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slots[i].rsv, ns, __ATOMIC_RELAXED);
        __atomic_store_n(&slots[i].pid, pid, __ATOMIC_RELEASE);
        return (int)i;
    }
    return -1;
}

uint64_t tfl_slots_reclaim(tf_shm_slot *slots, unsigned n, uint64_t *used, int self, uint64_t ns,
                           tfl_alive_fn alive, void *ctx)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        tf_shm_slot *sl = &slots[i];
        uint64_t pv = __atomic_load_n(&sl->pid, __ATOMIC_ACQUIRE);
        if (!pv || (int)i == self) continue;
        if (__atomic_load_n(&sl->rsv, __ATOMIC_RELAXED) != ns) continue; /* another pid namespace: unknowable */
        int claiming = (pv & TF_SHM_SLOT_RECLAIM) != 0;
        if (alive(pv & ~TF_SHM_SLOT_RECLAIM, __atomic_load_n(&sl->start, __ATOMIC_RELAXED), claiming, ctx)) continue;
        /* the exchange decides who gives the bytes back: each byte once, however many reclaim at once */
        uint64_t b = __atomic_exchange_n(&sl->vram, 0, __ATOMIC_ACQ_REL);
        if (b) tfl_shared_return(used, b);
        total += b;
        __atomic_compare_exchange_n(&sl->pid, &pv, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    }
    return total;
}
