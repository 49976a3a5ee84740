"""Workload configuration parsing (tfscheduler/workload_config.py): the seed's document parses with its defaults,
and every mistake names its field."""
from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from tfscheduler.workload_config import WorkloadConfigError, parse_workload

SEED_EXAMPLE = """
name: train-a
pool: default
qos: high
resources:
  requests: {tflops: "10", vram: 4Gi}
  limits: {tflops: "20", vram: 8Gi}
autoScalingConfig:
  autoSetResources:
    enable: true
    targetResource: all
    targetTflopsPercentile: 0.9
    lowerBoundTflopsPercentile: 0.5
    upperBoundTflopsPercentile: 0.95
    targetVramPercentile: 0.9
    lowerBoundVramPercentile: 0.5
    upperBoundVramPercentile: 0.95
    requestMarginFraction: 0.15
    confidenceInterval: 24h
  autoSetReplicas: {}
  cronScalingRules:
    - enable: true
      name: "test"
      start: "0 0 * * Thu"
      end: "59 23 * * Thu"
      desiredResources:
        limits:
          tflops: "99"
          vram: 10Gi
        requests:
          tflops: "44"
          vram: 5Gi
"""


def test_the_seeds_example_parses():
    w = parse_workload(yaml.safe_load(SEED_EXAMPLE))
    assert (w.name, w.pool, w.qos) == ("train-a", "default", "high")
    assert (w.resources.request_tflops, w.resources.request_vram_mib) == (10.0, 4096)
    assert (w.resources.limit_tflops, w.resources.limit_vram_mib) == (20.0, 8192)
    a = w.auto_set_resources
    assert a.enable and a.target_resource == "all"
    assert (a.tflops.target, a.tflops.lower, a.tflops.upper, a.tflops.margin) == (0.9, 0.5, 0.95, 0.15)
    assert a.vram.confidence_interval == timedelta(hours=24)
    (rule,) = w.cron_rules
    assert rule.name == "test" and rule.enable and rule.start == "0 0 * * Thu"
    assert rule.desired == {"requests": {"tflops": 44.0, "vram_mib": 5120}, "limits": {"tflops": 99.0, "vram_mib": 10240}}


def test_defaults_are_the_seeds():
    w = parse_workload({"name": "w"})
    a = w.auto_set_resources
    assert not a.enable and a.target_resource == ""
    assert (a.tflops.target, a.tflops.lower, a.tflops.upper, a.tflops.margin) == (0.9, 0.5, 0.95, 0.15)
    assert (a.vram.target, a.vram.lower, a.vram.upper) == (0.9, 0.5, 0.95)
    assert a.tflops.confidence_interval == timedelta(hours=24)
    assert w.cron_rules == () and w.qos == "medium"


@pytest.mark.parametrize("doc, field", [
    ({"name": "Bad Name"}, "name"),
    ({"name": "w\n\x1b[31m"}, "name"),
    ({"name": "w", "qos": "urgent"}, "qos"),
    ({"name": "w", "pool": "x" * 1000}, "pool"),
    ({"name": "w", "color": 1}, "workload.color"),
    ({"name": "w", "resources": {"requests": {"vram": "4Gx"}}}, "resources.requests.vram"),
    ({"name": "w", "resources": {"requests": {"tflops": "10"}, "limits": {"tflops": "5"}}}, "resources.limits.tflops"),
    ({"name": "w", "autoScalingConfig": {"autoSetResources": {"targetResource": "gpu"}}},
     "autoScalingConfig.autoSetResources.targetResource"),
    ({"name": "w", "autoScalingConfig": {"autoSetResources": {"targetTflopsPercentile": 1.5}}},
     "autoScalingConfig.autoSetResources.targetTflopsPercentile"),
    ({"name": "w", "autoScalingConfig": {"autoSetResources": {"lowerBoundVramPercentile": 0.99}}},
     "lowerBoundVramPercentile"),
    ({"name": "w", "autoScalingConfig": {"autoSetResources": {"confidenceInterval": "soon"}}},
     "autoScalingConfig.autoSetResources.confidenceInterval"),
    ({"name": "w", "autoScalingConfig": {"autoSetResources": {"enable": "yes"}}},
     "autoScalingConfig.autoSetResources.enable"),
    ({"name": "w", "autoScalingConfig": {"cronScalingRules": [{"name": "r", "start": "0 0 * *", "end": "0 1 * * *"}]}},
     "autoScalingConfig.cronScalingRules[0].start"),
    ({"name": "w", "autoScalingConfig": {"cronScalingRules": [
        {"name": "r", "start": "0 0 * * *", "end": "0 1 * * *"},
        {"name": "r", "start": "0 0 * * *", "end": "0 1 * * *"}]}},
     "autoScalingConfig.cronScalingRules[1].name"),
])
def test_mistakes_name_their_field(doc, field):
    with pytest.raises(WorkloadConfigError) as e:
        parse_workload(doc)
    assert str(e.value).startswith(field) or f"{field}" in str(e.value), str(e.value)
