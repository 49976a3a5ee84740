"""Prometheus metrics of a worker daemon (`tensorfusion worker --metrics-port N`).

Values are read from the daemon at scrape time (a custom collector), so nothing runs between scrapes.
"""
from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, REGISTRY


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
