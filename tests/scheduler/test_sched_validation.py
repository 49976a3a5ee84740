"""Bounds on what the scheduler stores and prints, and on what it reads off the wire: names with control
characters or megabytes long are INVALID_ARGUMENT naming the field; oversized messages and headers are
RESOURCE_EXHAUSTED with the limit; state and token files are this user's only."""
import os
import stat

import grpc
import pytest

from tfclient.errors import InvalidRequest
from tfclient.protos import load
from tfclient.scheduler_client import SchedulerClient
from tfclient import status_table

from sched_helpers import gpus

pb = load("scheduler_pb2")
rpc = load("scheduler_pb2_grpc")


def test_names_with_control_characters_or_megabytes_long_are_invalid_argument(client):
    client.register_worker("node-a", "p", gpus("a"))
    with pytest.raises(InvalidRequest, match="workload .* contains control characters"):
        client.allocate(tflops=1, vram=1, workload="train\n\x1b[2Jfake line")
    with pytest.raises(InvalidRequest, match="namespace is 1048576 characters long; at most 63"):
        client.allocate(tflops=1, vram=1, namespace="n" * (1 << 20))
    with pytest.raises(InvalidRequest, match="namespace .* has characters other than"):
        client.allocate(tflops=1, vram=1, namespace="team a")
    with pytest.raises(InvalidRequest, match="pool is 1048576 characters long"):
        client.list_pool(pool="p" * (1 << 20))
    with pytest.raises(InvalidRequest, match="pool .* has characters other than"):
        client.register_worker("node-b", "p\x1b", gpus("b"))
    with pytest.raises(InvalidRequest, match="unix_path .* must be an absolute path"):
        client.register_worker("node-b", "p", gpus("b"), unix_path="relative.sock")
    with pytest.raises(InvalidRequest, match="endpoints.tcp .* is not host:port"):
        client.register_worker("node-b", "p", gpus("b"), tcp="evil host")
    with pytest.raises(InvalidRequest, match="GPU model .* contains control characters"):
        client.register_worker("node-b", "p", [dict(index=0, uuid="GPU-b", model="A100\r\n", vram_mib=1, tflops=1)])
    assert [a.namespace for a in client.list_pool(include_allocations=True).allocations] == []
    assert {n.node_name for n in client.list_pool().nodes} == {"node-a"}


def test_oversized_messages_and_headers_are_refused_with_the_limit(scheduler):
    wide = grpc.insecure_channel(scheduler.address, options=[("grpc.max_send_message_length", 64 << 20)])
    stub = rpc.SchedulerStub(wide)
    md = (("authorization", f"Bearer {scheduler.admin_token}"),)
    with pytest.raises(grpc.RpcError) as e:
        stub.ListPool(pb.ListPoolRequest(pool="p" * (5 << 20)), metadata=md, timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "4194304" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        stub.ListPool(pb.ListPoolRequest(), metadata=(("authorization", "Bearer " + "x" * 100_000),), timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "metadata size" in e.value.details()
    # tfclient says what to change instead of "no capacity"
    with SchedulerClient(scheduler.address) as c:
        with pytest.raises(InvalidRequest, match="request too large"):
            c.allocate(tflops=1, vram=1, workload="w" * (5 << 20))


def test_status_escapes_control_characters_it_is_given():
    pool = pb.ListPoolResponse(allocations=[pb.Allocation(id="alloc-1", node_name="n\x1b[31m",
                                                          workload="w\nfake row\x1b[2J")])
    text = status_table.render(pool)
    assert "\x1b" not in text and "fake row" in text
    assert "w\\nfake row\\x1b[2J" in text


def test_state_and_token_files_are_private(scheduler, client, tf_home, tmp_path):
    client.register_worker("node-a", "p", gpus("a"))
    client.allocate(tflops=1, vram=1)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(tf_home) == 0o700
    assert mode(tf_home / "admin.token") == 0o600
    for name in ("scheduler.db", "scheduler.db-wal", "scheduler.db-shm"):
        if (tmp_path / name).exists():
            assert mode(tmp_path / name) == 0o600, name


def test_tf_home_is_tightened_to_0700_but_a_shared_folder_is_refused(tmp_path, monkeypatch):
    from tfclient import config
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    monkeypatch.setenv("TF_HOME", str(mine))
    assert stat.S_IMODE(os.stat(config.home()).st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("TF_HOME", str(shared))
    with pytest.raises(RuntimeError, match="shared folder"):
        config.home()
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777     # never chmod-ed
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TF_HOME", str(tmp_path / "file" / "home"))   # cannot be made: one line saying so
    with pytest.raises(RuntimeError, match=r"^TF_HOME .*/file/home: cannot create it \(Not a directory\): point"):
        config.home()
