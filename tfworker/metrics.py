"""Prometheus metrics of a worker daemon (`tensorfusion worker --metrics-port N`; `tensorfusion up` serves them on a
free loopback port and prints it).

Values are read from the daemon at scrape time (a custom collector on a private registry, so several daemons can
live in one process), so nothing runs between scrapes. Label cardinality is bounded: per GPU one series per GPU of
this node; per allocation one series per live session region (a released allocation's series go with it).
"""
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tfscheduler.models import lookup_tflops


class WorkerMetrics:
    """listen: "HOST:PORT" or a port number (all interfaces); port 0 picks a free one (see .port)."""

    def __init__(self, daemon, listen):
        self.daemon = daemon
        self.registry = CollectorRegistry()
        self.registry.register(self)
        host, port = (("0.0.0.0", int(listen)) if isinstance(listen, int) or str(listen).isdigit()
                      else (str(listen).rsplit(":", 1)[0] or "0.0.0.0", int(str(listen).rsplit(":", 1)[1])))
        self.httpd, self._thread = start_http_server(port, host, registry=self.registry)
        self.port = self.httpd.server_port

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def collect(self):
        wid = self.daemon.worker_id
        sessions = GaugeMetricFamily("tensorfusion_worker_sessions", "Live client sessions", labels=["worker"])
        sessions.add_metric([wid], len(self.daemon.sessions))
        yield sessions
        labels = ["worker", "gpu"]
        vram = GaugeMetricFamily("tensorfusion_gpu_vram_used_mib", "VRAM used by sessions (MiB)", labels=labels)
        vram_total = GaugeMetricFamily("tensorfusion_gpu_vram_total_mib", "VRAM of the GPU (MiB)", labels=labels)
        tflops = GaugeMetricFamily("tensorfusion_gpu_tflops_used", "TFLOPS used by sessions", labels=labels)
        tflops_cap = GaugeMetricFamily("tensorfusion_gpu_tflops_capacity", "FP16 dense TFLOPS of the GPU",
                                       labels=labels)
        util = GaugeMetricFamily("tensorfusion_gpu_utilization", "Busy fraction of the GPU's compute (0..1)",
                                 labels=labels)
        info = {g.uuid: g for g in self.daemon.backend.gpus}
        for usage in self.daemon.gpu_usage():
            key = [wid, usage.uuid]
            g = info.get(usage.uuid)
            vram.add_metric(key, usage.vram_used_mib)
            tflops.add_metric(key, usage.tflops_used)
            util.add_metric(key, usage.utilization)
            if g is not None:
                vram_total.add_metric(key, g.vram_mib)
                tflops_cap.add_metric(key, g.tflops or lookup_tflops(g.model) or 0.0)
        yield from (vram, vram_total, tflops, tflops_cap, util)
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
