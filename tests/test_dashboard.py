"""The shipped Grafana dashboard (deploy/grafana/tensorfusion.json) only queries metrics that a running scheduler and
worker really export: `tensorfusion up` serves both /metrics endpoints, a vGPU runs a program, and every metric name
in every panel's expr must be in the scrape. A renamed metric breaks this test, not a user's dashboard."""
import json
import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cudabuild import build_example
from test_cli import embedded_up, tf, tf_env, up_args  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "tensorfusion.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def scraped_names(url: str) -> set[str]:
    """Every series name a Prometheus server would store from one scrape of url: the families (also those with no
    series yet) with the names their type derives (counters _total, histograms _bucket/_sum/_count)."""
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    names = set()
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        names |= {fam.name + s for s in SUFFIXES.get(fam.type, ())}
        names |= {s.name for s in fam.samples}
    return names


def test_every_dashboard_query_uses_a_metric_of_a_real_scrape(embedded_up):
    env, _ = embedded_up
    program = build_example("vector_add")
    r = tf("run", "--tflops", "0.001", "--vram", "256Mi", "--", str(program), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads((Path(env["TF_HOME"]) / "embedded.json").read_text())
    exported = scraped_names(info["scheduler_metrics"]) | scraped_names(info["worker_metrics"])
    # a real scrape: the allocation just served is in the latency histogram
    assert "tensorfusion_scheduler_allocate_seconds_bucket" in exported

    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 20
    used = {m for e in exprs for m in re.findall(r"\b(tensorfusion_[a-z_]+)\b", e)}
    missing = used - exported
    assert not missing, f"dashboard queries metrics the scrape does not have: {sorted(missing)}"
    # and it covers every area the issue names: pools, GPUs (VRAM, TFLOPS, utilization), allocations, latency,
    # workloads
    for prefix in ("tensorfusion_scheduler_capacity", "tensorfusion_scheduler_available", "tensorfusion_gpu_vram",
                   "tensorfusion_gpu_tflops", "tensorfusion_gpu_utilization", "tensorfusion_allocation_",
                   "tensorfusion_scheduler_allocate_seconds", "tensorfusion_scheduler_workload_"):
        assert any(m.startswith(prefix) for m in used), prefix
