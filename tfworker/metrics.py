"""Prometheus metrics of a worker daemon (`tensorfusion worker --metrics-port N`).

Values are read from the daemon at scrape time (a custom collector), so nothing runs between scrapes.
"""
from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, REGISTRY


class WorkerMetrics:
    def __init__(self, daemon, port: int):
        self.daemon = daemon
        REGISTRY.register(self)
        start_http_server(port)

    def collect(self):
        sessions = GaugeMetricFamily("tensorfusion_worker_sessions", "Live client sessions", labels=["worker"])
        sessions.add_metric([self.daemon.worker_id], len(self.daemon.sessions))
        yield sessions
        vram = GaugeMetricFamily("tensorfusion_gpu_vram_used_mib", "VRAM used by sessions (MiB)",
                                 labels=["worker", "gpu"])
        tflops = GaugeMetricFamily("tensorfusion_gpu_tflops_used", "TFLOPS used by sessions", labels=["worker", "gpu"])
        for usage in self.daemon.gpu_usage():
            vram.add_metric([self.daemon.worker_id, usage.uuid], usage.vram_used_mib)
            tflops.add_metric([self.daemon.worker_id, usage.uuid], usage.tflops_used)
        yield vram
        yield tflops
        yield from self._per_allocation()

    def _per_allocation(self):
        """Usage against limits of each allocation this worker serves (label cardinality: one series per live
        allocation; a released allocation's series disappear with its region)."""
        labels = ["worker", "allocation"]
        fams = {
            "vram_used_mib": GaugeMetricFamily("tensorfusion_allocation_vram_used_mib", "VRAM charged (MiB)", labels=labels),
            "vram_limit_mib": GaugeMetricFamily("tensorfusion_allocation_vram_limit_mib", "VRAM cap (MiB), 0 = none",
                                                labels=labels),
            "tflops_used": GaugeMetricFamily("tensorfusion_allocation_tflops_used", "TFLOPS used (busy x device TFLOPS)",
                                             labels=labels),
            "tflops_limit": GaugeMetricFamily("tensorfusion_allocation_tflops_limit", "TFLOPS limit, 0 = none",
                                              labels=labels),
            "throttled": CounterMetricFamily("tensorfusion_allocation_throttled_seconds",
                                             "Time launches waited for compute tokens", labels=labels),
            "oom": CounterMetricFamily("tensorfusion_allocation_oom_refusals",
                                       "Allocations refused for the VRAM cap", labels=labels),
            "launches": CounterMetricFamily("tensorfusion_allocation_launches", "Kernel launches", labels=labels),
        }
        for alloc, region in list(self.daemon.regions.items()):
            try:
                u, lim = region.usage(), region.limits()
            except Exception:  # a region closed between the listing and the read
                continue
            key = [self.daemon.worker_id, alloc]
            fams["vram_used_mib"].add_metric(key, u.vram_used / (1 << 20))
            fams["vram_limit_mib"].add_metric(key, lim.vram_limit_bytes / (1 << 20))
            fams["tflops_used"].add_metric(key, u.tflops_used)
            fams["tflops_limit"].add_metric(key, lim.tflops_limit)
            fams["throttled"].add_metric(key, u.throttled_ns / 1e9)
            fams["oom"].add_metric(key, u.oom_refusals)
            fams["launches"].add_metric(key, u.launches)
        yield from fams.values()
