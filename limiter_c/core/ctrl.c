/* ctrl.c - utilization controller: feed-forward from the measured cost per busy second plus a PI
 * correction with anti-windup and a slew limit. Formulas and constants are documented in tfl_core.h.
 * Called once per period by limiter.c's background thread. */
#include "tfl_core.h"

static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

void tfl_ctrl_init(tfl_ctrl *c, double open_loop_rate)
{
    c->sum_tokens = c->sum_busy = c->sum_wall = c->u_busy = c->u_wall = 0;
    c->integ = 0;
    c->have_k = 0;
    c->last_share = 0;
    c->open_loop_rate = open_loop_rate > 0 ? open_loop_rate : 1.0;
    c->rate = c->open_loop_rate;
}

double tfl_ctrl_step(tfl_ctrl *c, double share, uint64_t dt_ns, uint64_t busy_ns, double tokens, int throttled)
{
    if (dt_ns == 0 || !(share > 0)) return c->rate;
    if (share > 1) share = 1;
    double dt = (double)dt_ns * 1e-9;
    double busy = (double)busy_ns * 1e-9;
    c->sum_tokens = c->sum_tokens * TFL_CTRL_DECAY + (tokens > 0 ? tokens : 0);
    c->sum_busy = c->sum_busy * TFL_CTRL_DECAY + busy;
    c->sum_wall = c->sum_wall * TFL_CTRL_DECAY + dt;
    if (!(c->sum_busy > 0 && c->sum_tokens > 0)) return c->rate; /* nothing measured yet: open loop */
    double k = c->sum_tokens / c->sum_busy;

    int share_changed = c->last_share > 0 && (share > c->last_share * 1.01 || share < c->last_share * 0.99);
    c->last_share = share;
    if (share_changed) c->integ = c->u_busy = c->u_wall = 0;
    else {
        c->u_busy = c->u_busy * TFL_CTRL_DECAY + busy;
        c->u_wall = c->u_wall * TFL_CTRL_DECAY + dt;
    }
    double u = c->u_wall > 0 ? c->u_busy / c->u_wall : share;
    double e = c->u_wall >= TFL_CTRL_UMIN_S ? clamp((share - u) / share, -1, 1) : 0;
    if (e < 0 || throttled) /* the integrated error is capped: a transient cannot wind I up fast */
        c->integ = clamp(c->integ + TFL_CTRL_KI * clamp(e, -TFL_CTRL_IZONE, TFL_CTRL_IZONE) * dt,
                         -TFL_CTRL_IMAX, TFL_CTRL_IMAX);
    else if (e > 0 && !throttled && c->integ > 0)
        c->integ *= TFL_CTRL_LEAK;
    /* unthrottled under the share: nothing to correct; share just changed: u belongs to the old one */
    double p = (e < 0 || throttled) && !share_changed ? TFL_CTRL_KP * e : 0;
    double corr = clamp(1 + p + c->integ, TFL_CTRL_CMIN, TFL_CTRL_CMAX);
    double r = share * k * corr;
    if (c->have_k && !share_changed) r = clamp(r, c->rate / TFL_CTRL_SLEW, c->rate * TFL_CTRL_SLEW);
    c->have_k = 1;
    c->rate = r;
    return c->rate;
}
