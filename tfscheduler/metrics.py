"""Prometheus metrics of the scheduler (`python -m tfscheduler --metrics-listen HOST:PORT`, or
serve(..., metrics_listen=...)).

Gauges are computed from the live state at scrape time (a custom collector on a private registry, so
several schedulers can live in one process, e.g. in tests); the allocate latency histogram is fed by
the gRPC edge. Scrapes run on prometheus_client's HTTP thread and only read the state.
"""
import numpy as np
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tfscheduler.placement import QOS_NAMES

WORKLOAD_SERIES_MAX = 500
"""Label cardinality bound: per-workload series are exported for at most this many workloads (the first by
namespace and name); tensorfusion_scheduler_workloads{exported="false"} counts the others. Every other label is
bounded by the pools, QoS levels and allocation states."""


class SchedulerMetrics:
    def __init__(self, state, listen: str = "127.0.0.1:0"):
        self.state = state
        self.registry = CollectorRegistry()
        self.allocate_seconds = Histogram(
            "tensorfusion_scheduler_allocate_seconds", "Time to serve one Allocate call (placement + commit)",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25), registry=self.registry)
        self.registry.register(self)
        host, port = listen.rsplit(":", 1)
        self.httpd, self._thread = start_http_server(int(port), host or "0.0.0.0", registry=self.registry)
        self.port = self.httpd.server_port

    def collect(self):
        st, idx = self.state, self.state.index
        nodes = GaugeMetricFamily("tensorfusion_scheduler_nodes", "Registered worker nodes",
                                  labels=["pool", "available"])
        counts: dict = {}
        for wid, node in list(st.nodes.items()):
            key = (node.pool, "true" if st.placeable(wid) else "false")
            counts[key] = counts.get(key, 0) + 1
        for key, c in sorted(counts.items()):
            nodes.add_metric(list(key), c)
        yield nodes
        n = idx._n
        live = idx.live[:n] & idx.avail[:n]
        pool_names = {i: p for p, i in idx._pool_ids.items()}
        m = len(pool_names)
        pid = idx.pool_id[:n][live]
        fams = {
            "capacity_tflops": ("Physical TFLOPS of available GPUs", idx.cap_t),
            "capacity_vram_mib": ("Physical VRAM (MiB) of available GPUs", idx.cap_v),
            "requested_tflops": ("TFLOPS requested by active allocations", idx.req_t),
            "requested_vram_mib": ("VRAM (MiB) requested by active allocations", idx.req_v),
            "limit_tflops": ("TFLOPS limits of active allocations", idx.lim_t),
            "limit_vram_mib": ("VRAM (MiB) limits of active allocations", idx.lim_v),
        }
        gpus = GaugeMetricFamily("tensorfusion_scheduler_gpus", "Available GPUs", labels=["pool"])
        per_pool = np.bincount(pid, minlength=m)
        for i, p in sorted(pool_names.items()):
            gpus.add_metric([p], float(per_pool[i]))
        yield gpus
        sums = {}
        for name, (doc, col) in fams.items():
            fam = GaugeMetricFamily(f"tensorfusion_scheduler_{name}", doc, labels=["pool"])
            sums[name] = np.bincount(pid, weights=col[:n][live], minlength=m)
            for i, p in sorted(pool_names.items()):
                fam.add_metric([p], float(sums[name][i]))
            yield fam
        for res in ("tflops", "vram_mib"):    # what requests may still take: capacity - requested
            fam = GaugeMetricFamily(f"tensorfusion_scheduler_available_{res}",
                                    f"{'TFLOPS' if res == 'tflops' else 'VRAM (MiB)'} of available GPUs not "
                                    "requested by active allocations", labels=["pool"])
            for i, p in sorted(pool_names.items()):
                fam.add_metric([p], max(0.0, float(sums[f"capacity_{res}"][i] - sums[f"requested_{res}"][i])))
            yield fam
        allocs = GaugeMetricFamily("tensorfusion_scheduler_allocations", "Active allocations", labels=["pool", "qos"])
        by: dict = {}
        for a in list(st.allocs.values()):
            key = (a.pool, QOS_NAMES.get(a.qos, str(a.qos)))
            by[key] = by.get(key, 0) + 1
        for key, c in sorted(by.items()):
            allocs.add_metric(list(key), c)
        yield allocs
        ended = CounterMetricFamily("tensorfusion_scheduler_allocations_ended", "Allocations ended, by how",
                                    labels=["state"])
        for state, c in sorted(dict(st.ended_counts).items()):
            ended.add_metric([state], c)
        yield ended
        yield from self._workloads()

    def _workloads(self):
        """Per workload (seed 004): the recommendation, the VPA estimates, replicas running the recommendation
        and whether a cron rule is active."""
        labels = ["namespace", "workload", "resource"]
        rec = GaugeMetricFamily("tensorfusion_scheduler_workload_recommendation",
                                "Recommended per-GPU resources (TFLOPS; VRAM in MiB)", labels=labels + ["kind"])
        est = GaugeMetricFamily("tensorfusion_scheduler_workload_estimate",
                                "VPA estimate of per-GPU usage (TFLOPS; VRAM in MiB)", labels=labels + ["bound"])
        applied = GaugeMetricFamily("tensorfusion_scheduler_workload_applied_recommended_replicas",
                                    "Allocations running with the recommendation", labels=["namespace", "workload"])
        cron = GaugeMetricFamily("tensorfusion_scheduler_workload_cron_rule_active",
                                 "1 while a cron scaling rule is active", labels=["namespace", "workload", "rule"])
        entries = sorted(list(self.state.autoscaler.entries.values()), key=lambda e: e.key)
        count = GaugeMetricFamily("tensorfusion_scheduler_workloads",
                                  f"Applied workloads; exported=\"false\": beyond the {WORKLOAD_SERIES_MAX} whose "
                                  "series are exported", labels=["exported"])
        count.add_metric(["true"], float(min(len(entries), WORKLOAD_SERIES_MAX)))
        count.add_metric(["false"], float(max(0, len(entries) - WORKLOAD_SERIES_MAX)))
        yield count
        for e in entries[:WORKLOAD_SERIES_MAX]:
            ns, name = e.key
            r = e.recommendation
            if r is not None:
                for res, kind, v in (("tflops", "requests", r.tflops), ("tflops", "limits", r.lim_tflops),
                                     ("vram_mib", "requests", r.vram_mib), ("vram_mib", "limits", r.lim_vram_mib)):
                    if v is not None:
                        rec.add_metric([ns, name, res, kind], float(v))
            for res, x in (("tflops", e.est_tflops), ("vram_mib", e.est_vram)):
                if x is not None:
                    for bound, v in (("target", x.target), ("lower", x.lower_bound), ("upper", x.upper_bound)):
                        est.add_metric([ns, name, res, bound], float(v))
            applied.add_metric([ns, name], float(e.applied_replicas))
            if e.active_rule:
                cron.add_metric([ns, name, e.active_rule], 1.0)
        yield rec
        yield est
        yield applied
        yield cron

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
