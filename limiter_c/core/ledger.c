/* ledger.c - VRAM ledger: reservation before the driver call, per-key charges, refunds that can never
 * underflow. Open-addressing hash table (linear probing, tombstones). Pure; see tfl_core.h.
 * Called by hooks_mem.c under the limiter's lock. */
#include <stdlib.h>
#include "tfl_core.h"

#define TOMB 0xff

static uint64_t mix(uint64_t k, int kind)
{
    k ^= (uint64_t)kind * 0x9E3779B97F4A7C15ull;
    k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ull; k ^= k >> 33;
    return k;
}

void tfl_ledger_init(tfl_ledger *l)
{
    l->used = l->peak = 0;
    l->count = l->cap = l->tombs = 0;
    l->slots = NULL;
}

void tfl_ledger_free(tfl_ledger *l)
{
    free(l->slots);
    tfl_ledger_init(l);
}

tfl_status tfl_ledger_reserve(tfl_ledger *l, uint64_t bytes, uint64_t limit)
{
    if (limit && (l->used > limit || bytes > limit - l->used)) return TFL_OVER_LIMIT;
    l->used += bytes;
    if (l->used > l->peak) l->peak = l->used;
    return TFL_OK;
}

void tfl_ledger_cancel(tfl_ledger *l, uint64_t bytes)
{
    l->used = bytes > l->used ? 0 : l->used - bytes;
}

static long find(const tfl_ledger *l, int kind, uint64_t key)
{
    if (!l->cap) return -1;
    size_t mask = l->cap - 1;
    for (size_t i = mix(key, kind) & mask, n = 0; n < l->cap; i = (i + 1) & mask, n++) {
        const tfl_ledger_slot *s = &l->slots[i];
        if (s->kind == 0) return -1;
        if (s->kind == kind && s->key == key) return (long)i;
    }
    return -1;
}

static int insert_raw(tfl_ledger_slot *slots, size_t cap, int kind, uint64_t key, uint64_t bytes, uint64_t owner)
{
    size_t mask = cap - 1;
    for (size_t i = mix(key, kind) & mask, n = 0; n < cap; i = (i + 1) & mask, n++) {
        if (slots[i].kind == 0 || slots[i].kind == TOMB) {
            slots[i].kind = (uint8_t)kind; slots[i].key = key; slots[i].bytes = bytes; slots[i].owner = owner;
            return 0;
        }
    }
    return -1;
}

static int grow(tfl_ledger *l)
{
    size_t ncap = l->cap ? l->cap * 2 : 64;
    if (l->count * 2 < l->cap) ncap = l->cap; /* mostly tombstones: rehash at the same size */
    tfl_ledger_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < l->cap; i++)
        if (l->slots[i].kind && l->slots[i].kind != TOMB)
            (void)insert_raw(ns, ncap, l->slots[i].kind, l->slots[i].key, l->slots[i].bytes, l->slots[i].owner);
    free(l->slots);
    l->slots = ns; l->cap = ncap; l->tombs = 0;
    return 0;
}

tfl_status tfl_ledger_commit(tfl_ledger *l, int kind, uint64_t key, uint64_t bytes)
{
    return tfl_ledger_commit_owned(l, kind, key, bytes, 0);
}

tfl_status tfl_ledger_commit_owned(tfl_ledger *l, int kind, uint64_t key, uint64_t bytes, uint64_t owner)
{
    if (find(l, kind, key) >= 0) return TFL_DUPLICATE;
    if ((l->count + l->tombs + 1) * 4 > l->cap * 3 && grow(l) != 0) return TFL_NOMEM;
    if (insert_raw(l->slots, l->cap, kind, key, bytes, owner) != 0) return TFL_NOMEM;
    l->count++;
    return TFL_OK;
}

uint64_t tfl_ledger_release(tfl_ledger *l, int kind, uint64_t key)
{
    long i = find(l, kind, key);
    if (i < 0) return 0;
    uint64_t b = l->slots[i].bytes;
    l->slots[i].kind = TOMB;
    l->count--; l->tombs++;
    tfl_ledger_cancel(l, b);
    return b;
}

uint64_t tfl_ledger_lookup(const tfl_ledger *l, int kind, uint64_t key)
{
    long i = find(l, kind, key);
    return i < 0 ? 0 : l->slots[i].bytes;
}

uint64_t tfl_ledger_release_owner(tfl_ledger *l, uint64_t owner)
{
    uint64_t total = 0;
    if (!owner) return 0;
    for (size_t i = 0; i < l->cap; i++) {
        tfl_ledger_slot *s = &l->slots[i];
        if (s->kind == 0 || s->kind == TOMB || s->owner != owner) continue;
        total += s->bytes;
        tfl_ledger_cancel(l, s->bytes);
        s->kind = TOMB;
        l->count--; l->tombs++;
    }
    return total;
}
