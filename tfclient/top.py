"""`tensorfusion top`: a live view of the pools (capacity, requests), the GPUs (usage bars), the sessions (usage
against limits) and the workloads (recommendation, active cron rule, condition), drawn with rich. `--once` prints
one frame and exits (scripts, tests; also what a piped `top` does); otherwise the frame is redrawn every
--interval seconds (default 1) until Ctrl-C.

A frame fits 100 columns (the width a piped `top` uses; a terminal uses its own width): long names and messages are
cut with an ellipsis, allocation ids stay whole (they are what `release` and `workload get` need).

Called by tfclient.cli (cmd_top). Text from the scheduler goes through status_table._cell (control characters
escaped) and rich markup is never interpreted in it.
"""
from __future__ import annotations

import sys
import time

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tfclient.status_table import _cell

PIPED_WIDTH = 100
BAR = 8          # cells of a usage bar
BAR_COL = BAR + 1 + 11    # a bar and its "used/total" label


def _t(value, limit: int | None = None) -> Text:
    text = _cell(value)
    if limit and len(text) > limit:
        text = text[:limit - 1] + "…"
    return Text(text)


def _n(v: float) -> str:
    """A TFLOPS figure in at most ~5 characters: 0.003, 12.5, 312."""
    return f"{v:.3g}" if v else "0"


def _mib(v: float) -> str:
    """MiB as a short size: 512Mi, 8Gi, 1.5Ti."""
    v = float(v)
    for unit, scale in (("Ti", 1 << 20), ("Gi", 1 << 10)):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.0f}Mi"


def bar(used: float, total: float, label: str) -> Text:
    """A usage bar of BAR cells (green, yellow from 70%, red from 90%) followed by `label`; '-' bar without a
    total (no limit)."""
    out = Text()
    if total > 0:
        frac = max(0.0, used / total)
        cells = min(BAR, round(frac * BAR))
        style = "red" if frac >= 0.9 else "yellow" if frac >= 0.7 else "green"
        out.append("█" * cells, style=style)
        out.append("░" * (BAR - cells), style="dim")
    else:
        out.append("-" * BAR, style="dim")
    out.append(" " + label)
    return out


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                 padding=(0, 1), expand=False)


def frame(pool, workloads) -> Group:
    """One frame from a ListPoolResponse (with allocations) and a list of Workload messages."""
    pools = _table("Pools")
    for col, width in (("pool", None), ("gpus", None), ("tflops requested/capacity", BAR_COL),
                       ("vram requested/capacity", BAR_COL), ("strategy", None)):
        pools.add_column(col, no_wrap=True, min_width=width)
    gpu_count: dict = {}
    for n in pool.nodes:
        gpu_count[n.pool] = gpu_count.get(n.pool, 0) + (len(n.gpus) if n.available else 0)
    for p in pool.pools:
        pools.add_row(_t(p.name, 16), str(gpu_count.get(p.name, 0)),
                      bar(p.allocated.tflops, p.capacity.tflops, f"{_n(p.allocated.tflops)}/{_n(p.capacity.tflops)}"),
                      bar(p.allocated.vram_mib, p.capacity.vram_mib,
                          f"{_mib(p.allocated.vram_mib)}/{_mib(p.capacity.vram_mib)}"),
                      _t(p.strategy, 14))

    gpus = _table("GPUs")
    for col, width in (("node", None), ("model", None), ("tflops used", BAR_COL), ("vram used", BAR_COL),
                       ("requested (n)", 14)):
        gpus.add_column(col, no_wrap=True, min_width=width)
    for n in pool.nodes:
        for g in n.gpus:
            u, cap = g.usage, g.info
            gpus.add_row(_t(n.node_name + ("" if n.available else " (down)"), 12), _t(cap.model, 20),
                         bar(u.tflops_used, cap.tflops, f"{_n(u.tflops_used)}/{_n(cap.tflops)}"),
                         bar(u.vram_used_mib, cap.vram_mib, f"{_mib(u.vram_used_mib)}/{_mib(cap.vram_mib)}"),
                         f"{_n(g.allocated_requests.tflops)} {_mib(g.allocated_requests.vram_mib)} "
                         f"({g.allocation_count})")

    sessions = _table("Sessions")
    for col, width in (("allocation", 22), ("workload", None), ("node", None), ("tflops used/limit", BAR_COL),
                       ("vram used/limit", BAR_COL)):
        sessions.add_column(col, no_wrap=True, min_width=width)
    for a in pool.allocations:
        sessions.add_row(_t(a.id), _t(a.workload or "-", 12), _t(a.node_name, 10),
                         bar(a.used.tflops, a.limits.tflops, f"{_n(a.used.tflops)}/{_n(a.limits.tflops)}"),
                         bar(a.used.vram_mib, a.limits.vram_mib, f"{_mib(a.used.vram_mib)}/{_mib(a.limits.vram_mib)}"))

    wl = _table("Workloads")
    for col, width in (("workload", None), ("allocs", 6), ("recommended req/lim", 24), ("applied", 7),
                       ("cron rule", None), ("condition", None)):
        wl.add_column(col, no_wrap=True, min_width=width)
    for w in workloads:
        st = w.status
        r = st.recommendation if st.HasField("recommendation") else None
        cond = next((c for c in st.conditions if c.type == "RecommendationProvided"), None)
        rec = (f"{_n(r.requests.tflops)}/{_n(r.limits.tflops)} TF {_mib(r.requests.vram_mib)}/"
               f"{_mib(r.limits.vram_mib)}") if r else "-"
        wl.add_row(_t(f"{w.namespace}/{w.name}", 20), str(len(w.allocation_ids)), rec,
                   str(st.applied_recommended_replicas), _t(st.active_cron_scaling_rule or "-", 10),
                   _t(f"{cond.reason}: {cond.message}" if cond else "-", 24))
    return Group(pools, gpus, sessions, wl)


def run(client, once: bool, interval: float = 1.0, console: Console | None = None) -> int:
    """Prints frames of `client` (a SchedulerClient) every `interval` seconds until Ctrl-C; one frame with
    once=True or when stdout is not a terminal. -> exit code 0."""
    console = console or Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)

    def fetch():
        return frame(client.list_pool(include_allocations=True), client.list_workloads())

    if once or not sys.stdout.isatty():   # piped: one frame (a live view only redraws a terminal)
        console.print(fetch())
        return 0
    from rich.live import Live
    with Live(fetch(), console=console, refresh_per_second=4, screen=False) as live:
        while True:
            time.sleep(interval)
            live.update(fetch())
