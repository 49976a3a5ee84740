/* test_core.c - unit tests of the limiter's pure core (token bucket, VRAM ledger, controller, parsing)
 * with plain numbers and a simulated clock. Built and run by `make -C limiter_c test` (ASan in CI). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/tfl_core.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define MS 1000000ull
#define S  1000000000ull

/* A launcher that retries after the wait the bucket asks for: admitted launches in `dur` at `cost`. */
static long run_bucket(tfl_bucket *b, uint64_t *now, uint64_t dur, double cost)
{
    long n = 0;
    uint64_t end = *now + dur;
    while (*now < end) {
        uint64_t w = tfl_bucket_take(b, cost, *now);
        if (w == 0) { n++; *now += 10000; } /* 10 us per launch call */
        else *now += w;
    }
    return n;
}

static void test_bucket_rate_is_exact(void)
{
    tfl_bucket b; uint64_t now = 1 * S;
    tfl_bucket_init(&b, 10000.0, now);              /* 10k tokens/s */
    long n = run_bucket(&b, &now, 10 * S, 100.0);   /* cost 100 -> 100 launches/s */
    CHECK(labs(n - 1000) <= 3, "admitted %ld launches in 10 s, want 1000 (+burst)", n);
}

static void test_bucket_debt_never_blocks_forever(void)
{
    tfl_bucket b; uint64_t now = 0;
    tfl_bucket_init(&b, 1000.0, now);
    CHECK(tfl_bucket_take(&b, 1e6, now) == 0, "a launch bigger than the capacity is admitted when not in debt");
    uint64_t w = tfl_bucket_take(&b, 1.0, now);
    CHECK(w > 990 * S && w < 1001 * S, "debt of 1e6 tokens at 1000/s waits ~1000 s, got %llu ns", (unsigned long long)w);
    CHECK(tfl_bucket_take(&b, 1.0, now + w) == 0, "admitted after the announced wait");
}

static void test_bucket_live_rate_change(void)
{
    tfl_bucket b; uint64_t now = 0;
    tfl_bucket_init(&b, 1000.0, now);
    long slow = run_bucket(&b, &now, 2 * S, 10.0);
    tfl_bucket_set_rate(&b, 3000.0, now);
    long fast = run_bucket(&b, &now, 2 * S, 10.0);
    CHECK(labs(slow - 200) <= 3 && labs(fast - 600) <= 8, "slow %ld (want 200) fast %ld (want 600)", slow, fast);
    CHECK(b.capacity == 3000.0 * TFL_BURST_S, "capacity follows the rate");
}

static void test_bucket_idle_saves_only_capacity(void)
{
    tfl_bucket b; uint64_t now = 0;
    tfl_bucket_init(&b, 1000.0, now);
    now += 100 * S; /* idle for 100 s */
    long n = 0;
    while (tfl_bucket_take(&b, 1.0, now) == 0) n++;
    CHECK(n <= (long)(1000.0 * TFL_BURST_S) + 1, "burst after idle is bounded by the capacity: %ld", n);
    CHECK(tfl_launch_cost(4, 2, 1, 256, 1, 1) == 2048.0 && tfl_launch_cost(0, 0, 0, 0, 0, 0) == 1.0, "launch cost");
}

static void test_ledger_cap_and_refund(void)
{
    tfl_ledger l; tfl_ledger_init(&l);
    const uint64_t cap = 1000;
    for (int i = 0; i < 10; i++) {
        CHECK(tfl_ledger_reserve(&l, 100, cap) == TFL_OK, "alloc %d of 10 fits", i);
        CHECK(tfl_ledger_commit(&l, TFL_KEY_PTR, 0x7f0000000000ull + (uint64_t)i * 4096, 100) == TFL_OK, "commit");
    }
    CHECK(l.used == 1000 && l.peak == 1000, "used %llu", (unsigned long long)l.used);
    CHECK(tfl_ledger_reserve(&l, 1, cap) == TFL_OVER_LIMIT, "one byte over the cap fails");
    CHECK(l.used == 1000, "a failed reservation charges nothing");
    CHECK(tfl_ledger_release(&l, TFL_KEY_PTR, 0x7f0000000000ull) == 100, "free refunds its size");
    CHECK(tfl_ledger_release(&l, TFL_KEY_PTR, 0x7f0000000000ull) == 0, "double free refunds nothing");
    CHECK(tfl_ledger_release(&l, TFL_KEY_PTR, 0xdeadull) == 0, "unknown pointer refunds nothing");
    CHECK(tfl_ledger_release(&l, TFL_KEY_ARRAY, 0x7f0000001000ull) == 0, "same value, other kind: not found");
    CHECK(l.used == 900 && l.peak == 1000, "used %llu peak %llu", (unsigned long long)l.used, (unsigned long long)l.peak);
    CHECK(tfl_ledger_reserve(&l, 100, cap) == TFL_OK, "freeing makes room again");
    CHECK(tfl_ledger_commit(&l, TFL_KEY_PTR, 0x7f0000001000ull, 100) == TFL_DUPLICATE, "duplicate key refused");
    tfl_ledger_cancel(&l, 100);
    tfl_ledger_cancel(&l, 1ull << 60);
    CHECK(l.used == 0, "cancel never underflows: %llu", (unsigned long long)l.used);
    CHECK(tfl_ledger_reserve(&l, UINT64_MAX, cap) == TFL_OVER_LIMIT, "huge request over cap, no overflow");
    CHECK(tfl_ledger_reserve(&l, 5, 0) == TFL_OK, "limit 0 = uncapped");
    tfl_ledger_free(&l);
}

static void test_ledger_context_destroy_refunds_its_allocations(void)
{
    tfl_ledger l; tfl_ledger_init(&l);
    for (uint64_t i = 1; i <= 6; i++) {
        CHECK(tfl_ledger_reserve(&l, 10, 0) == TFL_OK, "reserve");
        CHECK(tfl_ledger_commit_owned(&l, TFL_KEY_PTR, i << 20, 10, i % 2 ? 0xc1 : 0xc2) == TFL_OK, "commit");
    }
    CHECK(tfl_ledger_release_owner(&l, 0xc1) == 30 && l.used == 30 && l.count == 3, "context c1's 3 allocations refunded");
    CHECK(tfl_ledger_release_owner(&l, 0xc1) == 0 && tfl_ledger_release_owner(&l, 0) == 0, "nothing left / no owner");
    CHECK(tfl_ledger_release(&l, TFL_KEY_PTR, 1ull << 20) == 0, "a refunded pointer is gone");
    CHECK(tfl_ledger_release(&l, TFL_KEY_PTR, 2ull << 20) == 10 && l.used == 20, "others untouched");
    tfl_ledger_free(&l);
}

static void test_ledger_many_entries(void)
{
    tfl_ledger l; tfl_ledger_init(&l);
    const int n = 20000;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < n; i++) {
            CHECK(tfl_ledger_reserve(&l, (uint64_t)i + 1, 0) == TFL_OK, "reserve");
            if (tfl_ledger_commit(&l, TFL_KEY_VMM, (uint64_t)i * 2, (uint64_t)i + 1) != TFL_OK) { failures++; break; }
        }
        uint64_t want = (uint64_t)n * (n + 1) / 2;
        CHECK(l.used == want && l.count == (size_t)n, "used %llu count %zu", (unsigned long long)l.used, l.count);
        CHECK(tfl_ledger_lookup(&l, TFL_KEY_VMM, 2 * 777) == 778, "lookup");
        for (int i = 0; i < n; i++)
            if (tfl_ledger_release(&l, TFL_KEY_VMM, (uint64_t)i * 2) != (uint64_t)i + 1) { failures++; break; }
        CHECK(l.used == 0 && l.count == 0, "all refunded");
    }
    CHECK(l.cap <= 65536, "tombstones are recycled, table stays bounded: %zu", l.cap);
    tfl_ledger_free(&l);
}

/* ---- controller against a simulated device -----------------------------------------------------
 * The process always wants to launch (unless demand < 1); a launch of `tokens` keeps the device busy
 * tokens / k_true seconds. lag = 0: the launch runs at once (the emulator runs kernels in the launching
 * thread); lag = 1: launches queue on the device and run in the following windows (a GPU's stream). */
typedef struct { double k_true, demand, noise; unsigned seed; double backlog; int lag; double loss; } plant;

static double lcg(unsigned *s) { *s = *s * 1103515245u + 12345u; return ((*s >> 8) & 0xffff) / 65535.0; }

/* Runs `steps` windows of 50 ms; returns the mean utilization over the last `tail` windows and the
 * max utilization seen after `settle` windows. */
static void run_ctrl(tfl_ctrl *c, plant *p, double share, int steps, int tail, int settle, double *mean_u, double *max_u,
                     double *trace)
{
    const uint64_t dt = 50 * MS;
    double sum = 0, mx = 0;
    for (int i = 0; i < steps; i++) {
        double want = p->demand * p->k_true * 0.05;      /* tokens the workload would launch */
        double allow = c->rate * 0.05;
        double tokens = want < allow ? want : allow * (1 - p->loss); /* loss: late wake-ups after waiting */
        int throttled = want > allow;
        double busy;
        if (p->lag) {                                    /* queued work drains at most 50 ms per window */
            busy = p->backlog < 0.05 ? p->backlog : 0.05;
            p->backlog += tokens / p->k_true - busy;
        } else {                                         /* a blocking launch: no more than fits in 50 ms */
            if (tokens > p->k_true * 0.05) tokens = p->k_true * 0.05;
            busy = tokens / p->k_true;
        }
        if (p->noise > 0) busy *= 1 + p->noise * (2 * lcg(&p->seed) - 1);
        tfl_ctrl_step(c, share, dt, (uint64_t)(busy * 1e9), tokens, throttled);
        double u = busy / 0.05;
        if (trace) trace[i] = u;
        if (i >= steps - tail) sum += u;
        if (i >= settle && u > mx) mx = u;
    }
    *mean_u = sum / tail;
    *max_u = mx;
}

static void test_ctrl_converges_to_share(void)
{
    const double shares[] = {0.05, 0.25, 0.75, 1.0};
    for (int lag = 0; lag <= 1; lag++)
    for (size_t s = 0; s < 4; s++) {
        tfl_ctrl c; tfl_ctrl_init(&c, 10.0); /* open-loop guess far too low */
        plant p = {.k_true = 5e6, .demand = 1.0, .lag = lag};
        double mean, mx;
        /* within 2 % after 2 s without queueing, 4 % with a one-window queue; 1 % after 4 s */
        run_ctrl(&c, &p, shares[s], 40, 10, 20, &mean, &mx, NULL);
        CHECK(fabs(mean - shares[s]) <= (lag ? 0.04 : 0.02) * shares[s] + 1e-9, "lag %d share %.2f: mean utilization %.4f after 2 s", lag, shares[s], mean);
        CHECK(mx <= shares[s] * 1.10 + 1e-9 || shares[s] == 1.0, "lag %d share %.2f: overshoot to %.4f after 1 s", lag, shares[s], mx);
        run_ctrl(&c, &p, shares[s], 40, 10, 0, &mean, &mx, NULL);
        CHECK(fabs(mean - shares[s]) <= 0.01 * shares[s] + 1e-9, "lag %d share %.2f: mean utilization %.4f after 4 s", lag, shares[s], mean);
    }
}

static void test_ctrl_is_scale_free(void)
{
    /* HAMi-core's step grows with SMs^2: on a large GPU the limit is ignored. Here the trajectory is
     * the same whether a busy second is worth 1e3 or 1e13 tokens. */
    double ta[60], tb[60], mean_a, mean_b, mx;
    tfl_ctrl a, b; tfl_ctrl_init(&a, 1.0); tfl_ctrl_init(&b, 1e10);
    plant pa = {.k_true = 1e3, .demand = 1.0}, pb = {.k_true = 1e13, .demand = 1.0};
    run_ctrl(&a, &pa, 0.3, 60, 10, 0, &mean_a, &mx, ta);
    run_ctrl(&b, &pb, 0.3, 60, 10, 0, &mean_b, &mx, tb);
    for (int i = 5; i < 60; i++) CHECK(fabs(ta[i] - tb[i]) < 1e-6, "step %d: %.6f vs %.6f", i, ta[i], tb[i]);
    CHECK(fabs(mean_a - 0.3) < 0.006, "mean %.4f", mean_a);
}

static void test_ctrl_does_not_oscillate(void)
{
    for (int lag = 0; lag <= 1; lag++) {
        double tr[100], mean, mx;
        tfl_ctrl c; tfl_ctrl_init(&c, 1e9); /* open-loop guess far too high */
        plant p = {.k_true = 2e6, .demand = 1.0, .lag = lag};
        run_ctrl(&c, &p, 0.4, 100, 20, 20, &mean, &mx, tr);
        int crossings = 0; /* sign changes of (u - target) outside a 1 % band, after 1 s */
        for (int i = 21, last = 0; i < 100; i++) {
            int side = tr[i] > 0.404 ? 1 : tr[i] < 0.396 ? -1 : 0;
            if (side && last && side != last) crossings++;
            if (side) last = side;
        }
        CHECK(crossings <= 1, "lag %d: utilization keeps crossing the target after settling: %d crossings", lag, crossings);
        CHECK(fabs(mean - 0.4) < 0.008 && mx < 0.44, "lag %d: mean %.4f max %.4f", lag, mean, mx);
    }
}

static void test_ctrl_anti_windup(void)
{
    /* The workload only wants 10 % while allowed 50 %: the integral must not wind up, so when the
     * workload turns greedy utilization does not burst far above 50 %. */
    double mean, mx;
    tfl_ctrl c; tfl_ctrl_init(&c, 1e3);
    for (int lag = 0; lag <= 1; lag++) {
        tfl_ctrl c; tfl_ctrl_init(&c, 1e3);
        plant p = {.k_true = 1e6, .demand = 0.1, .lag = lag};
        run_ctrl(&c, &p, 0.5, 200, 20, 0, &mean, &mx, NULL);
        CHECK(fabs(mean - 0.1) < 0.005, "light workload runs unthrottled at its own 10 %%: %.4f", mean);
        CHECK(c.integ <= 0.01, "integral did not wind up: %.4f", c.integ);
        p.demand = 1.0;
        run_ctrl(&c, &p, 0.5, 60, 10, 0, &mean, &mx, NULL);
        CHECK(mx <= (lag ? 0.85 : 0.6) && fabs(mean - 0.5) < 0.01, "lag %d after turning greedy: max %.4f mean %.4f", lag, mx, mean);
    }
}

static void test_ctrl_follows_workload_and_noise(void)
{
    double mean, mx;
    tfl_ctrl c; tfl_ctrl_init(&c, 1e3);
    plant p = {.k_true = 1e6, .demand = 1.0, .noise = 0.15, .seed = 42};
    run_ctrl(&c, &p, 0.25, 100, 60, 0, &mean, &mx, NULL);
    CHECK(fabs(mean - 0.25) < 0.0125, "noisy measurement: mean %.4f", mean);
    p.k_true = 1e5; p.noise = 0; /* kernels become 10x heavier per token */
    run_ctrl(&c, &p, 0.25, 80, 10, 0, &mean, &mx, NULL);
    CHECK(fabs(mean - 0.25) < 0.005, "re-converged within 4 s after a 10x workload change: %.4f", mean);
    CHECK(tfl_ctrl_step(&c, 0.0, 50 * MS, 0, 0, 0) == c.rate, "share 0 leaves the rate alone");
}

static void test_ctrl_integral_removes_a_persistent_bias(void)
{
    /* A throttled process loses 25 % of what it is allowed (it wakes up late on a loaded host): only
     * the integral can ask for the missing third; it gets there without overshooting. */
    double mean, mx;
    tfl_ctrl c; tfl_ctrl_init(&c, 1e3);
    plant p = {.k_true = 1e6, .demand = 1.0, .loss = 0.25};
    run_ctrl(&c, &p, 0.6, 80, 10, 0, &mean, &mx, NULL);
    CHECK(fabs(mean - 0.6) < 0.012 && mx < 0.63, "with a 25 %% loss: mean %.4f after 4 s, max %.4f", mean, mx);
}

static void test_ctrl_live_share_change(void)
{
    /* The supervisor raises a session from 25 % to 75 %: the new share holds within 2 windows (100 ms). */
    double tr[10], mean, mx;
    tfl_ctrl c; tfl_ctrl_init(&c, 1e3);
    plant p = {.k_true = 1e6, .demand = 1.0};
    run_ctrl(&c, &p, 0.25, 40, 10, 0, &mean, &mx, NULL);
    CHECK(fabs(mean - 0.25) < 0.005, "before: %.4f", mean);
    run_ctrl(&c, &p, 0.75, 10, 8, 0, &mean, &mx, tr);
    CHECK(fabs(tr[2] - 0.75) < 0.04 && fabs(mean - 0.75) < 0.02 && mx < 0.83, "after: %.4f %.4f %.4f mean %.4f max %.4f",
          tr[0], tr[1], tr[2], mean, mx);
    run_ctrl(&c, &p, 0.10, 10, 8, 0, &mean, &mx, tr);
    CHECK(tr[1] < 0.11 && fabs(mean - 0.10) < 0.005, "lowered: %.4f %.4f mean %.4f", tr[0], tr[1], mean);
}

static void test_parse(void)
{
    const struct { const char *s; int dialect; uint64_t v; } ok[] = {
        {"1024", TFL_UNITS_TF, 1024}, {"512Mi", TFL_UNITS_TF, 512ull << 20}, {"2Gi", TFL_UNITS_TF, 2ull << 30},
        {"1G", TFL_UNITS_TF, 1000000000ull}, {"1.5G", TFL_UNITS_TF, 1500000000ull}, {"64k", TFL_UNITS_TF, 64000},
        {".5Ki", TFL_UNITS_TF, 512}, {"1e3", TFL_UNITS_TF, 1000}, {"1.", TFL_UNITS_TF, 1},
        {"+1Gi", TFL_UNITS_TF, 1ull << 30}, {"2E-3", TFL_UNITS_TF, 1}, {"1Pi", TFL_UNITS_TF, 1ull << 50},
        {"1g", TFL_UNITS_HAMI, 1ull << 30}, {"512m", TFL_UNITS_HAMI, 512ull << 20}, {"64k", TFL_UNITS_HAMI, 65536},
        {"1Gi", TFL_UNITS_HAMI, 1ull << 30}, {"4096", TFL_UNITS_HAMI, 4096}, {" 3 MiB ", TFL_UNITS_HAMI, 3ull << 20},
        {"7b", TFL_UNITS_HAMI, 7}, {"1gI", TFL_UNITS_HAMI, 1ull << 30},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 0;
        CHECK(tfl_parse_bytes(ok[i].s, ok[i].dialect, &v) == 0 && v == ok[i].v, "%s (dialect %d) -> %llu", ok[i].s,
              ok[i].dialect, (unsigned long long)v);
    }
    const char *bad[] = {"", " ", "abc", "-1", "12xb", "4Gx", "1e30g", "nan", "inf", "0x10", "1 G i",
                         "1GiBs", "G", "1e", "1e+", "٣"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v;
        CHECK(tfl_parse_bytes(bad[i], TFL_UNITS_TF, &v) != 0, "'%s' must be rejected", bad[i]);
        CHECK(tfl_parse_bytes(bad[i], TFL_UNITS_HAMI, &v) != 0, "'%s' must be rejected (HAMi)", bad[i]);
    }
    /* Kubernetes quantities are case-sensitive and take no blanks, no "B"; "m" is milli, no size */
    const char *bad_tf[] = {"1g", "512MiB", "1GB", "2Gb", "2gi", "64K", "1b", " 3Mi", "3Mi ", "512m", "1E30"};
    for (size_t i = 0; i < sizeof bad_tf / sizeof bad_tf[0]; i++) {
        uint64_t v;
        CHECK(tfl_parse_bytes(bad_tf[i], TFL_UNITS_TF, &v) != 0, "'%s' must be rejected", bad_tf[i]);
    }
    uint64_t v;
    CHECK(tfl_parse_bytes("1GB", TFL_UNITS_HAMI, &v) != 0, "decimal GB refused in HAMi's variable");
    CHECK(tfl_parse_bytes(NULL, TFL_UNITS_TF, &v) != 0, "NULL rejected");
    double d;
    CHECK(tfl_parse_double("312.5", &d) == 0 && d == 312.5, "double");
    CHECK(tfl_parse_double("12x", &d) != 0 && tfl_parse_double("-3", &d) != 0, "bad doubles");
    CHECK(tfl_parse_tflops("500m", &d) == 0 && d == 0.5, "500m tflops");
    CHECK(tfl_parse_tflops("2k", &d) == 0 && d == 2000, "2k tflops");
    CHECK(tfl_parse_tflops("10", &d) == 0 && d == 10, "10 tflops");
    CHECK(tfl_parse_tflops("10 TFLOPS", &d) != 0 && tfl_parse_tflops("500GFLOPS", &d) != 0 &&
          tfl_parse_tflops("x", &d) != 0 && tfl_parse_tflops("-1", &d) != 0 && tfl_parse_tflops("5K", &d) != 0,
          "bad tflops");
}

/* ---- shared counters ---- */
#include <pthread.h>
static uint64_t g_used, g_peak;
static int g_admitted[8];
static void *racer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 20000; i++) {
        if (tfl_shared_charge(&g_used, &g_peak, 80, 256 * 4) == TFL_OK) {
            g_admitted[id]++;
            tfl_shared_return(&g_used, 80);
        }
    }
    return NULL;
}

static void test_shared_charge_never_passes_the_cap_under_races(void)
{
    /* 8 threads race charges of 80 against a cap of 1024: at most 12 fit at once, and used/peak say so */
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    CHECK(g_used == 0, "everything returned: used %llu", (unsigned long long)g_used);
    CHECK(g_peak <= 1024 && g_peak >= 80, "peak %llu within the cap", (unsigned long long)g_peak);
    uint64_t used = 0, peak = 0;
    int fit = 0;
    while (tfl_shared_charge(&used, &peak, 80, 256) == TFL_OK) fit++;
    CHECK(fit == 3 && used == 240, "3 x 80 fit under 256 (got %d, used %llu)", fit, (unsigned long long)used);
    tfl_shared_return(&used, 1000);
    CHECK(used == 0, "return never underflows");
    CHECK(tfl_shared_charge(&used, &peak, 1ull << 40, 0) == TFL_OK, "no limit: anything fits");
}

static void test_gcra_rate_burst_and_debt(void)
{
    uint64_t tat = 0, now = 1000000000ull, burst = 20000000ull; /* 20 ms */
    double rate = 1e6;                                         /* tokens/s */
    /* one second of 1000-token launches at a simulated clock: about rate * 1 s + burst admitted */
    double admitted = 0;
    for (uint64_t t = now; t < now + 1000000000ull; t += 100000ull) /* try every 0.1 ms */
        while (tfl_gcra_take(&tat, rate, 1000, t, burst) == 0) admitted += 1000;
    CHECK(fabs(admitted - 1.02e6) < 2e4, "admitted %.0f tokens in 1 s at 1e6/s (+ burst)", admitted);
    /* debt: a launch of 10 s worth is admitted at once, the next waits ~10 s */
    tat = 0;
    CHECK(tfl_gcra_take(&tat, rate, 1e7, now, burst) == 0, "huge launch admitted");
    uint64_t w = tfl_gcra_take(&tat, rate, 1, now, burst);
    CHECK(w > 9900000000ull && w < 10000000001ull, "then waits ~10 s (%llu ns)", (unsigned long long)w);
    CHECK(tfl_gcra_take(&tat, 0, 1, now, burst) == 0, "rate 0 = off");
    /* a raise rescales the debt: 10 s owed at 1e6/s are 5 s at 2e6/s (a live raise applies to the launches
     * already waiting); a cut leaves it; no debt, nothing to change */
    tat = 0;
    CHECK(tfl_gcra_take(&tat, rate, 1e7, now, burst) == 0, "huge launch admitted");
    tfl_gcra_raise(&tat, rate, 2 * rate, now);
    w = tfl_gcra_take(&tat, 2 * rate, 1, now, burst);
    CHECK(w > 4900000000ull && w < 5000000001ull, "after a raise to 2x waits ~5 s (%llu ns)", (unsigned long long)w);
    tfl_gcra_raise(&tat, 2 * rate, rate / 2, now);
    w = tfl_gcra_take(&tat, rate / 2, 1, now, burst);
    CHECK(w > 4900000000ull && w < 5000000001ull, "a cut keeps the ~5 s owed (%llu ns)", (unsigned long long)w);
    tat = now - 1;
    tfl_gcra_raise(&tat, rate, 2 * rate, now);
    CHECK(tat == now - 1, "no debt: unchanged");
}

/* ---- per-process slots ---- */
static int g_alive[TF_SHM_SLOTS + 1]; /* by pid (1..64) */
static int alive_by_table(uint64_t pid, uint64_t start, int claiming, void *ctx)
{
    (void)start; (void)claiming; (void)ctx;
    return pid <= TF_SHM_SLOTS && g_alive[pid];
}

static tf_shm_slot g_slots[TF_SHM_SLOTS];
static uint64_t g_total, g_reclaimed[8];
static void *reclaimer(void *arg)
{
    int id = (int)(intptr_t)arg;
    g_reclaimed[id] = tfl_slots_reclaim(g_slots, TF_SHM_SLOTS, &g_total, -1, 7, alive_by_table, NULL);
    return NULL;
}

static void test_slots_of_dead_processes_come_back_exactly_once(void)
{
    for (int round = 0; round < 200; round++) {
        memset(g_slots, 0, sizeof g_slots);
        g_total = 0;
        uint64_t live = 0;
        for (uint64_t pid = 1; pid <= TF_SHM_SLOTS; pid++) {
            int s = tfl_slot_claim(g_slots, TF_SHM_SLOTS, pid, 1000 + pid, 7);
            CHECK(s == (int)pid - 1, "slot %d for pid %llu", s, (unsigned long long)pid);
            uint64_t b = pid * 4096;
            CHECK(tfl_shared_charge(&g_total, &(uint64_t){0}, b, 0) == TFL_OK, "charge");
            __atomic_add_fetch(&g_slots[s].vram, b, __ATOMIC_RELAXED);
            g_alive[pid] = (pid + (uint64_t)round) % 3 != 0; /* a third of them died */
            if (g_alive[pid]) live += b;
        }
        CHECK(tfl_slot_claim(g_slots, TF_SHM_SLOTS, 99, 1, 7) == -1, "65th process gets no slot");
        pthread_t t[8];
        for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, reclaimer, (void *)(intptr_t)i);
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
        uint64_t given = 0;
        for (int i = 0; i < 8; i++) given += g_reclaimed[i];
        CHECK(g_total == live, "round %d: total %llu == live %llu (8 racing reclaimers)", round,
              (unsigned long long)g_total, (unsigned long long)live);
        CHECK(given + live == (uint64_t)TF_SHM_SLOTS * (TF_SHM_SLOTS + 1) / 2 * 4096, "each byte given back once");
        for (uint64_t pid = 1; pid <= TF_SHM_SLOTS; pid++)
            CHECK((g_slots[pid - 1].pid != 0) == (g_alive[pid] != 0), "dead slots freed, live kept");
        if (failures) return;
    }
    /* a slot of another pid namespace is never judged; a slot being claimed by a live process is kept */
    memset(g_slots, 0, sizeof g_slots);
    uint64_t total = 100;
    g_slots[0] = (tf_shm_slot){.pid = 5, .start = 1, .vram = 100, .rsv = 8};
    g_slots[1] = (tf_shm_slot){.pid = 6 | TF_SHM_SLOT_RECLAIM, .start = 0, .vram = 0, .rsv = 7};
    g_alive[5] = 0;
    g_alive[6] = 1;
    CHECK(tfl_slots_reclaim(g_slots, TF_SHM_SLOTS, &total, -1, 7, alive_by_table, NULL) == 0 && total == 100 &&
          g_slots[0].pid == 5 && g_slots[1].pid != 0, "other namespace and claiming slots left alone");
    g_alive[6] = 0;
    tfl_slots_reclaim(g_slots, TF_SHM_SLOTS, &total, -1, 7, alive_by_table, NULL);
    CHECK(g_slots[1].pid == 0, "a claimer that died is freed");
}

int main(void)
{
    test_bucket_rate_is_exact();
    test_bucket_debt_never_blocks_forever();
    test_bucket_live_rate_change();
    test_bucket_idle_saves_only_capacity();
    test_ledger_cap_and_refund();
    test_ledger_context_destroy_refunds_its_allocations();
    test_ledger_many_entries();
    test_ctrl_converges_to_share();
    test_ctrl_is_scale_free();
    test_ctrl_does_not_oscillate();
    test_ctrl_anti_windup();
    test_ctrl_follows_workload_and_noise();
    test_ctrl_integral_removes_a_persistent_bias();
    test_ctrl_live_share_change();
    test_parse();
    test_shared_charge_never_passes_the_cap_under_races();
    test_gcra_rate_burst_and_debt();
    test_slots_of_dead_processes_come_back_exactly_once();
    if (failures) { fprintf(stderr, "test_core: %d failure(s)\n", failures); return 1; }
    printf("test_core: all passed\n");
    return 0;
}
