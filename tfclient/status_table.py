"""Renders the scheduler's ListPoolResponse as the text tables `tensorfusion status` prints, or as the JSON
document of `status -o json`. A GPU's free capacity is gpu_free's in both: none on a node that is not available
(missed heartbeats, or its probe failed), whatever it last reported.

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


def gpu_free(node, gpu) -> tuple[float, int]:
    """(TFLOPS, VRAM MiB) of gpu that new requests may still take: its capacity less the requests placed on it;
    none on a node the scheduler does not place on (node.available false): its last report is not capacity."""
    if not node.available:
        return 0.0, 0
    return (max(0.0, gpu.info.tflops - gpu.allocated_requests.tflops),
            max(0, gpu.info.vram_mib - gpu.allocated_requests.vram_mib))


def _state(node) -> str:
    return "up" if node.available else "UNAVAILABLE"


def render(pool) -> str:
    out = []
    out.append(_table(["pool", "strategy", "tflops", "tflops allocated", "vram MiB", "vram allocated"],
                      [[p.name, p.strategy, f"{p.capacity.tflops:g}", f"{p.allocated.tflops:g}",
                        p.capacity.vram_mib, p.allocated.vram_mib] for p in pool.pools]))
    gpu_rows = []
    for n in pool.nodes:
        for g in n.gpus:
            free_tflops, free_vram = gpu_free(n, g)
            gpu_rows.append([n.node_name, _state(n), n.pool, g.info.model, g.info.uuid[:16], f"{g.info.tflops:g}",
                             g.info.vram_mib, f"{free_tflops:g}", free_vram, f"{g.allocated_requests.tflops:g}",
                             g.allocated_requests.vram_mib, g.usage.vram_used_mib if n.available else "-",
                             g.allocation_count])
    out.append(f"\n{len(pool.nodes)} node(s), {len(gpu_rows)} GPU(s)")
    if gpu_rows:
        out.append(_table(["node", "state", "pool", "model", "uuid", "tflops", "vram MiB", "free tflops",
                           "free vram", "req tflops", "req vram", "used vram", "allocs"], gpu_rows))
    allocs = [a for a in pool.allocations]
    if not allocs:
        out.append("\nno allocations")
    else:
        out.append(f"\n{len(allocs)} allocation(s)")
        out.append(_table(["id", "node", "qos", "tflops req/lim", "vram req/lim MiB", "workload"],
                          [[a.id, a.node_name, _qos(a.qos), f"{a.requests.tflops:g}/{a.limits.tflops:g}",
                            f"{a.requests.vram_mib}/{a.limits.vram_mib}", a.workload or "-"] for a in allocs]))
    return "\n".join(out)


def _res(r) -> dict:
    return {"tflops": r.tflops, "vram_mib": r.vram_mib}


def document(pool) -> dict:
    """`status -o json`: what render shows, as data. A GPU's "used" is None on a node that is not up (its last
    report is stale) and its "free" is gpu_free's."""
    nodes = []
    for n in pool.nodes:
        gpus = []
        for g in n.gpus:
            free_tflops, free_vram = gpu_free(n, g)
            gpus.append({"uuid": g.info.uuid, "model": g.info.model, "tflops": g.info.tflops,
                         "vram_mib": g.info.vram_mib, "free": {"tflops": free_tflops, "vram_mib": free_vram},
                         "requested": _res(g.allocated_requests),
                         "used": {"tflops": g.usage.tflops_used, "vram_mib": g.usage.vram_used_mib}
                         if n.available else None,
                         "allocations": g.allocation_count})
        nodes.append({"name": n.node_name, "state": _state(n).lower(), "pool": n.pool,
                      "last_heartbeat": n.last_heartbeat, "gpus": gpus})
    return {"pools": [{"name": p.name, "strategy": p.strategy, "capacity": _res(p.capacity),
                       "allocated": _res(p.allocated)} for p in pool.pools],
            "nodes": nodes,
            "allocations": [{"id": a.id, "namespace": a.namespace, "node": a.node_name, "qos": _qos(a.qos),
                             "requests": _res(a.requests), "limits": _res(a.limits), "workload": a.workload}
                            for a in pool.allocations]}
