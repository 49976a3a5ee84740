"""Renders the scheduler's ListPoolResponse as the text tables `tensorfusion status` prints.

Every cell goes through _cell: text from the scheduler (workload, node, model names) is shown with control
characters escaped, so nothing stored can move the cursor, clear the screen or forge a line on a terminal."""


def _cell(value) -> str:
    s = str(value)
    return s if s.isprintable() else s.encode("unicode_escape").decode("ascii")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    rows = [[_cell(c) for c in r] for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _qos(value: int) -> str:
    return {1: "low", 2: "medium", 3: "high", 4: "critical"}.get(value, "medium")


def render(pool) -> str:
    out = []
    out.append(_table(["pool", "strategy", "tflops", "tflops allocated", "vram MiB", "vram allocated"],
                      [[p.name, p.strategy, f"{p.capacity.tflops:g}", f"{p.allocated.tflops:g}",
                        p.capacity.vram_mib, p.allocated.vram_mib] for p in pool.pools]))
    gpu_rows = []
    for n in pool.nodes:
        for g in n.gpus:
            gpu_rows.append([n.node_name, "up" if n.available else "UNAVAILABLE", n.pool, g.info.model,
                             g.info.uuid[:16], f"{g.info.tflops:g}", g.info.vram_mib,
                             f"{g.allocated_requests.tflops:g}", g.allocated_requests.vram_mib,
                             g.usage.vram_used_mib, g.allocation_count])
    out.append(f"\n{len(pool.nodes)} node(s), {len(gpu_rows)} GPU(s)")
    if gpu_rows:
        out.append(_table(["node", "state", "pool", "model", "uuid", "tflops", "vram MiB", "req tflops",
                           "req vram", "used vram", "allocs"], gpu_rows))
    allocs = [a for a in pool.allocations]
    if not allocs:
        out.append("\nno allocations")
    else:
        out.append(f"\n{len(allocs)} allocation(s)")
        out.append(_table(["id", "node", "qos", "tflops req/lim", "vram req/lim MiB", "workload"],
                          [[a.id, a.node_name, _qos(a.qos), f"{a.requests.tflops:g}/{a.limits.tflops:g}",
                            f"{a.requests.vram_mib}/{a.limits.vram_mib}", a.workload or "-"] for a in allocs]))
    return "\n".join(out)
