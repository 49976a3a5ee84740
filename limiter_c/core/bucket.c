/* bucket.c - token bucket (debt model) and launch cost; pure, see tfl_core.h. Called by hooks_launch.c. */
#include "tfl_core.h"

static double capacity_for(double rate) { return rate * TFL_BURST_S; }

void tfl_bucket_init(tfl_bucket *b, double rate, uint64_t now_ns)
{
    b->rate = rate > 0 ? rate : 1.0;
    b->capacity = capacity_for(b->rate);
    b->level = b->capacity;
    b->last_ns = now_ns;
}

void tfl_bucket_refill(tfl_bucket *b, uint64_t now_ns)
{
    if (now_ns <= b->last_ns) return; /* clock went backwards or same instant: nothing to add */
    double add = (double)(now_ns - b->last_ns) * 1e-9 * b->rate;
    b->level += add;
    if (b->level > b->capacity) b->level = b->capacity;
    b->last_ns = now_ns;
}

void tfl_bucket_set_rate(tfl_bucket *b, double rate, uint64_t now_ns)
{
    tfl_bucket_refill(b, now_ns);
    b->rate = rate > 0 ? rate : 1.0;
    b->capacity = capacity_for(b->rate);
    if (b->level > b->capacity) b->level = b->capacity;
}

uint64_t tfl_bucket_take(tfl_bucket *b, double cost, uint64_t now_ns)
{
    tfl_bucket_refill(b, now_ns);
    if (b->level > 0) {
        b->level -= cost;
        return 0;
    }
    /* time until the level is just above zero; at least 1 us so callers never spin */
    double wait_ns = (-b->level) / b->rate * 1e9 + 1000.0;
    if (wait_ns > 1e12) wait_ns = 1e12;
    return (uint64_t)wait_ns;
}

double tfl_launch_cost(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz)
{
    double c = (double)(gx ? gx : 1) * (gy ? gy : 1) * (gz ? gz : 1) * (bx ? bx : 1) * (by ? by : 1) * (bz ? bz : 1);
    return c;
}
