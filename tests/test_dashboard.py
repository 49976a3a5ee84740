"""The shipped Grafana dashboard (deploy/grafana/tensorfusion.json) only queries metrics the scheduler and the worker
export: a renamed metric breaks this test, not a user's dashboard."""
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "tensorfusion.json"


def exported_metric_names() -> set[str]:
    names = set()
    for src in ("tfscheduler/metrics.py", "tfworker/metrics.py"):
        text = (REPO / src).read_text()
        names |= set(re.findall(r'"(tensorfusion_[a-z_]+)"', text))
        # the scheduler's per-pool families: f"tensorfusion_scheduler_{name}" over the keys of its `fams` table
        if 'f"tensorfusion_scheduler_{name}"' in text:
            table = text[text.index("fams = {"):text.index("}", text.index("fams = {"))]
            names |= {f"tensorfusion_scheduler_{k}" for k in re.findall(r'"([a-z_]+)": \(', table)}
    # what Prometheus derives: counters get _total, histograms _bucket/_sum/_count
    return names | {n + s for n in names for s in ("_total", "_bucket", "_sum", "_count")}


def test_every_dashboard_query_uses_an_exported_metric():
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 20
    used = {m for e in exprs for m in re.findall(r"\b(tensorfusion_[a-z_]+)\b", e)}
    missing = used - exported_metric_names()
    assert not missing, f"dashboard queries metrics nobody exports: {sorted(missing)}"
    # and it covers every area the issue names: pools, GPUs, allocations, latency, workloads
    for prefix in ("tensorfusion_scheduler_capacity", "tensorfusion_gpu_", "tensorfusion_allocation_",
                   "tensorfusion_scheduler_allocate_seconds", "tensorfusion_scheduler_workload_"):
        assert any(m.startswith(prefix) for m in used), prefix
