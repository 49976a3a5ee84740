"""Asynchronous device-to-host copies keep CUDA's rule through the stub (tests/cuda/async_dtoh.cu): into
page-locked memory the call returns while the stream is still busy (a kernel spinning on a flag the host sets
only after the call returned), the stream and event queries answer cudaErrorNotReady until it is done, and the
bytes are there once a synchronization point says so (stream / event / device synchronize, an event query
answering cudaSuccess, a stream that waited for the event, a host function queued after the copy); into
pageable memory the call returns with the bytes. Over the shared-memory window (same host) the worker copies
straight into the page-locked memory it maps; over TCP, and over a Unix socket without the window
(TF_SHM=0), it stages the copy and the stub writes the bytes at its next synchronous call
(stub_c/api_copy_deferred.c). `mapped`: the flag is mapped page-locked memory (same host only); `device`: the
flag is device memory set by a copy on another stream."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cudabuild import parse_kv
from dp_helpers import stub_dir, stub_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emu"))
from emu_run import emu_env  # noqa: E402

TIMEOUT = 300
CASES = ["stream_sync", "event_sync", "event_query", "wait_event", "device_sync", "host_func", "large", "round_trip",
         "copy_2d", "large_2d", "array_2d", "array_1d", "registered", "pageable"]


@pytest.fixture
def async_dtoh(cuda_program):
    return cuda_program("async_dtoh", flags=("-L", str(stub_dir()), "-lcuda"))


def _check(r: subprocess.CompletedProcess) -> None:
    kv = parse_kv(r.stdout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert kv.pop("cases") == str(len(CASES))
    assert kv == {name: "ok" for name in CASES}


@pytest.mark.parametrize("mode", ["mapped", "device"])
def test_async_dtoh_on_the_emulated_device(async_dtoh, mode):
    _check(subprocess.run([str(async_dtoh), mode], env=emu_env(), capture_output=True, text=True, timeout=TIMEOUT))


@pytest.mark.parametrize("mode", ["mapped", "device"])
def test_async_dtoh_through_the_shared_memory_window(dataplane, async_dtoh, mode):
    _check(subprocess.run([str(async_dtoh), mode], env=stub_env(dataplane.unix), capture_output=True, text=True,
                          timeout=TIMEOUT))


def test_async_dtoh_over_a_unix_socket_without_the_window(dataplane, async_dtoh):
    env = stub_env(dataplane.unix)
    env["TF_SHM"] = "0"
    _check(subprocess.run([str(async_dtoh), "device"], env=env, capture_output=True, text=True, timeout=TIMEOUT))


def test_async_dtoh_over_tcp(dataplane, async_dtoh):
    _check(subprocess.run([str(async_dtoh), "device"], env=stub_env(dataplane.tcp), capture_output=True, text=True,
                          timeout=TIMEOUT))
