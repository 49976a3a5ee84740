"""`tensorfusion top`: a live view of the pool (GPUs: capacity, requests, usage), the allocations (usage against
limits) and the workloads (recommendation, active cron rule, condition), drawn with rich. `--once` prints one
frame and exits (scripts, tests); otherwise the frame is redrawn every --interval seconds until Ctrl-C.

Called by tfclient.cli (cmd_top). Text from the scheduler goes through status_table._cell (control characters
escaped) and rich markup is never interpreted in it.
"""
from __future__ import annotations

import sys
import time

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tfclient.status_table import _cell


def _t(value) -> Text:
    return Text(_cell(value))


def _pct(used: float, total: float) -> str:
    return f"{100.0 * used / total:.0f}%" if total > 0 else "-"


def frame(pool, workloads) -> Group:
    """One frame from a ListPoolResponse (with allocations) and a list of Workload messages."""
    gpus = Table(title="GPUs", title_justify="left", expand=False)
    for col in ("node", "model", "tflops", "req tflops", "used tflops", "vram MiB", "req vram", "used vram",
                "allocs"):
        gpus.add_column(col, justify="right" if col not in ("node", "model") else "left")
    for n in pool.nodes:
        for g in n.gpus:
            gpus.add_row(_t(n.node_name + ("" if n.available else " (down)")), _t(g.info.model),
                         f"{g.info.tflops:g}", f"{g.allocated_requests.tflops:g}",
                         f"{g.usage.tflops_used:.3g} ({_pct(g.usage.tflops_used, g.info.tflops)})",
                         str(g.info.vram_mib), str(g.allocated_requests.vram_mib),
                         f"{g.usage.vram_used_mib} ({_pct(g.usage.vram_used_mib, g.info.vram_mib)})",
                         str(g.allocation_count))
    allocs = Table(title="Allocations", title_justify="left")
    for col in ("id", "namespace", "workload", "node", "tflops req/lim", "used tflops", "vram req/lim", "used vram"):
        allocs.add_column(col)
    for a in pool.allocations:
        allocs.add_row(_t(a.id), _t(a.namespace), _t(a.workload or "-"), _t(a.node_name),
                       f"{a.requests.tflops:g}/{a.limits.tflops:g}", f"{a.used.tflops:.3g}",
                       f"{a.requests.vram_mib}/{a.limits.vram_mib}", str(a.used.vram_mib))
    wl = Table(title="Workloads", title_justify="left")
    for col in ("namespace", "name", "allocs", "recommended tflops req/lim", "recommended vram req/lim",
                "applied", "cron rule", "condition"):
        wl.add_column(col)
    for w in workloads:
        st = w.status
        r = st.recommendation if st.HasField("recommendation") else None
        cond = next((c for c in st.conditions if c.type == "RecommendationProvided"), None)
        wl.add_row(_t(w.namespace), _t(w.name), str(len(w.allocation_ids)),
                   f"{r.requests.tflops:g}/{r.limits.tflops:g}" if r else "-",
                   f"{r.requests.vram_mib}/{r.limits.vram_mib}" if r else "-",
                   str(st.applied_recommended_replicas), _t(st.active_cron_scaling_rule or "-"),
                   _t(f"{cond.reason}: {cond.message}" if cond else "-"))
    return Group(gpus, allocs, wl)


def run(client, once: bool, interval: float = 2.0, console: Console | None = None) -> int:
    # piped (scripts, tests): wide enough that ids and messages are not cut to the 80-column default
    console = console or Console(width=None if sys.stdout.isatty() else 240)

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
