"""Managed memory (and pinned host memory) made through the stub counts against the session's VRAM cap.

Remotely, cudaMallocManaged / cudaMallocHost (same host) are host memory the GPU worker process maps and registers at
the client's address (tfMemAllocAt*), which the limiter's hooks never see; the executor charges it through
the limiter's exported hostmap charge, in the same ledger and the allocation's same shared total as device
memory. Every session below belongs to ONE allocation (one SessionLimits region, 256 MiB), as sessions of
one lease do; each program is tests/cuda/lim_vram_steps.cu driven line by line through the stub. Also here:
cudaDeviceReset / cuCtxDestroy / the primary context's last cuDevicePrimaryCtxRelease give that memory back
(tests/cuda/primary_ctx_steps.cu: the driver API alone), and the worker's staging buffers of graph copies of
client host memory count against the same cap until they or their context go."""
from __future__ import annotations

import signal
import subprocess
import uuid

import pytest

from dp_helpers import InProcessDataPlane, stub_dir, stub_env, wait_until
from tfclient import native
from tfworker.dataplane import SessionGrant
from tfworker.limits import SessionLimits

MiB = 1 << 20
CAP = 256 * MiB
REFUSED = "cudaErrorMemoryAllocation"


@pytest.fixture
def allocation(tmp_path):
    """A data plane whose every session is granted the same 256 MiB allocation."""
    if not (native.emu_lib_dir() / "libcuda.so.1").exists():
        pytest.skip("emulated device not built (build/emu/libcuda.so.1): run `make native`")
    native.require(native.limiter_lib())
    lim = SessionLimits.create(f"dp-managed-{uuid.uuid4().hex[:8]}", vram_limit_bytes=CAP)
    count = [0]

    async def authorize(token: bytes) -> SessionGrant:
        count[0] += 1
        return SessionGrant(session_id=f"managed{count[0]}", env=lim.env, preload=lim.preload)

    dp = InProcessDataPlane(tmp_path, tcp=True, authorize=authorize)
    yield dp, lim
    dp.close()
    lim.close()


class Steps:
    """lim_vram_steps run through the stub: step("m 100") -> "managed=ok"."""

    def __init__(self, binary, worker: str):
        self.p = subprocess.Popen([str(binary)], env=stub_env(worker), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def step(self, cmd: str) -> str:
        self.p.stdin.write(f"{cmd}\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def free_mem(self) -> int:
        return int(self.step("i").split()[0].split("=")[1])

    def quit(self) -> None:
        self.p.stdin.write("q\n")
        self.p.stdin.close()
        assert self.p.wait(timeout=60) == 0, self.p.stderr.read()


@pytest.fixture
def steps(allocation, cuda_program):
    dp, _ = allocation
    binary = cuda_program("lim_vram_steps")
    started = []

    def start(transport: str = "unix") -> Steps:
        s = Steps(binary, getattr(dp, transport))
        started.append(s)
        return s
    yield start
    for s in started:
        if s.p.poll() is None:
            s.p.kill()
            s.p.wait()


def test_managed_memory_over_the_cap_is_refused(allocation, steps):
    _, lim = allocation
    s = steps()
    assert s.step("m 1024") == f"managed={REFUSED}"
    assert s.free_mem() == CAP                      # nothing left charged (nor mapped) by the refusal
    assert lim.usage().vram_used == 0
    assert s.step("m 256") == "managed=ok"          # the whole cap, written on the host and in a kernel
    s.quit()


@pytest.mark.parametrize("transport", ["unix", "tcp"])   # shared memfd / the worker's private copy
def test_managed_allocations_count_up_to_the_cap_and_free_gives_back(allocation, steps, transport):
    _, lim = allocation
    s = steps(transport)
    assert s.step("m 100") == "managed=ok"
    assert s.step("m 100") == "managed=ok"
    assert lim.usage().vram_used == 200 * MiB
    assert s.free_mem() == CAP - 200 * MiB          # cudaMemGetInfo reports the charge, as locally
    assert s.step("m 100") == f"managed={REFUSED}"
    assert s.step("f") == "free=ok"
    assert lim.usage().vram_used == 100 * MiB
    assert s.step("m 100") == "managed=ok"          # freed, then allocated again
    s.quit()
    assert lim.usage().vram_used == 0


def test_device_and_managed_memory_share_the_cap(allocation, steps):
    _, lim = allocation
    s = steps()
    assert s.step("a 100") == "alloc=ok"
    assert s.step("m 100") == "managed=ok"
    assert s.step("a 100") == f"alloc={REFUSED}"
    assert s.step("m 100") == f"managed={REFUSED}"
    assert s.step("a 56") == "alloc=ok"             # exactly the cap
    assert lim.usage().vram_used == CAP
    s.quit()


def test_pinned_host_memory_the_worker_maps_is_bounded_too(allocation, steps):
    """cudaMallocHost through the stub (same host) is also memory the GPU worker process maps and pins for the
    client on the GPU host: charged to the same cap. Over it, the block stays client memory the device
    cannot address (as over TCP), and the allocation still succeeds (locally pinned memory is not charged)."""
    _, lim = allocation
    s = steps()
    assert s.step("h 200") == "host=ok mapped"
    assert lim.usage().vram_used == 200 * MiB
    assert s.step("h 100") == "host=ok unmapped"
    assert lim.usage().vram_used == 200 * MiB
    assert s.step("m 100") == f"managed={REFUSED}"
    s.quit()
    assert lim.usage().vram_used == 0


def test_a_killed_client_gives_its_managed_memory_back_to_the_allocation(allocation, steps):
    """Killed mid-kernel with 200 MiB managed memory: its GPU worker process ends, and the next session of
    the same allocation can use the whole cap."""
    dp, lim = allocation
    s = steps()
    assert s.step("m 200") == "managed=ok"
    assert s.step("s") == "spinning=seen"           # a kernel is running on the worker
    assert lim.usage().vram_used >= 200 * MiB
    s.p.send_signal(signal.SIGKILL)
    s.p.wait()
    assert wait_until(lambda: not dp.sessions(), timeout=30), dp.sessions()
    nxt = steps()
    assert nxt.step("m 256") == "managed=ok"
    assert lim.usage().vram_used == CAP
    nxt.quit()


@pytest.mark.parametrize("transport", ["unix", "tcp"])   # shared memfd / the worker's private copy
def test_a_device_reset_gives_managed_memory_back(allocation, steps, transport):
    """cudaDeviceReset frees what was allocated in the primary context, managed memory too: the worker drops
    its mapping and refunds it, the stub forgets its side, and the whole cap is there again."""
    _, lim = allocation
    s = steps(transport)
    assert s.step("m 100") == "managed=ok"
    assert s.step("r") == "reset=ok"
    assert lim.usage().vram_used == 0
    assert s.step("m 200") == "managed=ok"          # 300 MiB allocated in all, 200 MiB live, under 256 MiB
    assert lim.usage().vram_used == 200 * MiB
    s.quit()
    assert lim.usage().vram_used == 0


def test_a_device_reset_gives_the_workers_pinned_mapping_back(allocation, steps):
    """Pinned memory the worker mapped for the client goes with the context too; the block stays client memory
    until cudaFreeHost (at quit), which no longer asks the worker."""
    _, lim = allocation
    s = steps()
    assert s.step("h 200") == "host=ok mapped"
    assert s.step("r") == "reset=ok"
    assert lim.usage().vram_used == 0
    assert s.step("m 200") == "managed=ok"
    s.quit()
    assert lim.usage().vram_used == 0


def test_graph_host_copy_staging_counts_against_the_cap(allocation, steps):
    """A graph copy of client host memory is staged in pinned memory of the worker, one buffer per node: charged
    to the same cap (else instantiating graphs would pin unbounded host memory on the GPU host), refused over
    it at the call that stages (adding the node), and given back when the graphs and executable graphs holding
    the buffer are destroyed."""
    _, lim = allocation
    s = steps()
    for _ in range(3):                              # 64 MiB device buffer + 3 x 64 MiB staging = the cap
        assert s.step("g 64") == "graph=ok"
    assert lim.usage().vram_used == CAP
    assert s.step("g 64") == f"graph={REFUSED}"
    assert lim.usage().vram_used == CAP             # nothing left charged by the refusal
    assert s.step("d") == "graphs=destroyed"
    assert lim.usage().vram_used == 64 * MiB        # the device buffer alone
    assert s.step("g 64") == "graph=ok"
    s.quit()
    assert lim.usage().vram_used == 0


def test_destroying_a_context_gives_its_managed_memory_back(allocation, steps):
    """cuCtxDestroy frees what was allocated in that context: 200 MiB of managed memory made in a created
    context is refunded when it is destroyed, and the primary context can then use it."""
    _, lim = allocation
    s = steps()
    assert s.step("c 200") == "ctx=ok"
    assert lim.usage().vram_used == 0
    assert s.step("m 200") == "managed=ok"
    s.quit()
    assert lim.usage().vram_used == 0


@pytest.fixture
def primary_steps(allocation, cuda_program):
    """primary_ctx_steps (driver API only) run through the stub, as Steps."""
    dp, _ = allocation
    binary = cuda_program("primary_ctx_steps", flags=("-L", str(stub_dir()), "-lcuda"))
    s = Steps(binary, dp.unix)
    yield s
    if s.p.poll() is None:
        s.p.kill()
        s.p.wait()


def test_the_last_primary_context_release_gives_its_memory_back(allocation, primary_steps):
    """CUDA resets the primary context once its last reference is released: the managed and mapped pinned
    memory made in it go (the worker unmaps them and refunds the cap), an earlier release keeps everything,
    and a new retain starts with the whole cap (200 + 200 MiB would be over 256 MiB otherwise)."""
    _, lim = allocation
    s = primary_steps
    assert s.step("r") == "retain=ok"
    assert s.step("r") == "retain=ok"
    assert s.step("m 100") == "managed=ok"
    assert s.step("h 100") == "host=ok mapped"
    assert lim.usage().vram_used == 200 * MiB
    assert s.step("u") == "release=ok"              # one reference left
    assert s.step("s") == "active=1"
    assert lim.usage().vram_used == 200 * MiB
    assert s.step("u") == "release=ok"              # the last: the context and its memory go
    assert s.step("s") == "active=0"
    assert lim.usage().vram_used == 0
    assert s.step("u") == "release=CUDA_ERROR_INVALID_CONTEXT"   # never retained again
    assert s.step("r") == "retain=ok"
    assert s.step("m 200") == "managed=ok"
    assert lim.usage().vram_used == 200 * MiB
    assert s.step("u") == "release=ok"
    assert lim.usage().vram_used == 0
    s.quit()


def test_graph_staging_buffers_go_with_the_primary_context(allocation, primary_steps):
    """The staging buffer of a graph copy of client host memory is pinned memory of the context it was made
    in: the context's last release frees it, so its charge goes at once (not when the graph is destroyed),
    the graph can no longer be launched with it, and destroying the graph later refunds nothing twice."""
    _, lim = allocation
    s = primary_steps
    assert s.step("r") == "retain=ok"
    assert s.step("g 64") == "graph=ok"             # 64 MiB device buffer + 64 MiB staging
    assert lim.usage().vram_used == 128 * MiB
    assert s.step("u") == "release=ok"
    assert lim.usage().vram_used == 0
    assert s.step("r") == "retain=ok"
    assert s.step("l") != "launch=ok"               # its staging buffer went with the old context
    assert s.step("d") == "graphs=destroyed"
    assert lim.usage().vram_used == 0
    assert s.step("m 256") == "managed=ok"          # the whole cap
    assert s.step("u") == "release=ok"
    assert lim.usage().vram_used == 0
    s.quit()
