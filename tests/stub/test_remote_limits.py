"""The limiter rides in the GPU worker process: a session granted a VRAM cap (SessionLimits region +
LD_PRELOAD of libtflimiter.so, as the daemon grants it) caps a remote program, reports the cap as the
device's memory, and its usage shows in the region."""
from __future__ import annotations

import pytest

from dp_helpers import InProcessDataPlane, run_via_stub
from tfclient import native
from tfworker.dataplane import SessionGrant
from tfworker.limits import SessionLimits

MiB = 1 << 20


@pytest.fixture
def limited_dataplane(tmp_path):
    if not (native.emu_lib_dir() / "libcuda.so.1").exists():
        pytest.skip("emulated device not built (build/emu/libcuda.so.1): run `make native`")
    native.require(native.limiter_lib())
    regions = []

    async def authorize(token: bytes) -> SessionGrant:
        lim = SessionLimits.create(f"dp-test-{len(regions)}-{id(regions)}", vram_limit_bytes=320 * MiB)
        regions.append(lim)
        return SessionGrant(session_id=f"lim{len(regions)}", env=lim.env, preload=lim.preload)

    dp = InProcessDataPlane(tmp_path, tcp=False, authorize=authorize)
    yield dp, regions
    dp.close()
    for lim in regions:
        lim.close()


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_vram_cap_applies_to_a_remote_session(limited_dataplane, cuda_program, cudart):
    dp, regions = limited_dataplane
    r = run_via_stub(cuda_program("lim_vram", cudart=cudart), dp.unix, 64)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert kv["filled"] == "5" and kv["fill_error"] == "cudaErrorMemoryAllocation"
    assert int(kv["info_total"]) == 320 * MiB and int(kv["prop_total"]) == 320 * MiB
    assert kv["realloc_after_free"] == "ok"
    for kind in ("pitch", "async"):
        assert kv[f"{kind}_over"] == "cudaErrorMemoryAllocation" and kv[f"{kind}_fit"] == "ok", kind
    u = regions[0].usage()
    assert u.vram_peak == 320 * MiB and u.vram_used == 0



def test_graph_launches_reach_the_limiter_once_each(limited_dataplane, cuda_program):
    """cuGraphLaunch is forwarded as itself, so the limiter in the GPU worker process sees each graph launch
    (priced there by its kernel nodes) and counts it once: six more launches of a captured graph of three
    kernel nodes add exactly six to the session's launch counter."""
    dp, regions = limited_dataplane
    for launches in (4, 10):
        r = run_via_stub(cuda_program("graph_launches"), dp.unix, launches)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"sum={3 * launches}" in r.stdout
    assert regions[1].usage().launches - regions[0].usage().launches == 6


def test_graph_alloc_nodes_are_charged_against_the_vram_cap(limited_dataplane, cuda_program):
    """An alloc node's memory counts against the session's VRAM cap from the node's creation: a node
    asking for more than the cap is refused with cudaErrorMemoryAllocation (nothing made), the others
    work, and the memory is given back once the graphs holding the nodes are destroyed."""
    from graphs_expect import GRAPH_MEM_LAUNCHES, GRAPH_MEM_N, check_graph_mem_nodes
    dp, regions = limited_dataplane
    r = run_via_stub(cuda_program("graph_mem_nodes"), dp.unix, GRAPH_MEM_N, GRAPH_MEM_LAUNCHES, 400 * MiB,
                     timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    check_graph_mem_nodes(kv)
    assert kv["big_alloc"] == "cudaErrorMemoryAllocation"
    u = regions[0].usage()
    assert u.vram_used == 0  # graphs, executable graphs and plain allocations all destroyed or freed
    assert u.vram_peak >= 3 * GRAPH_MEM_N * 4  # two device buffers + the graph temporaries were charged


def test_captured_graph_memory_counts_against_the_cap_while_the_graph_lives(limited_dataplane, cuda_program):
    """cudaMallocAsync / cudaFreeAsync captured into a graph: the graph keeps its 200 MiB temporary as long as
    it lives (the captured free is a node of the graph, not a free), so under the 320 MiB cap a cudaMalloc
    of 200 MiB more is refused while the graph exists and succeeds once it is destroyed."""
    dp, regions = limited_dataplane
    r = run_via_stub(cuda_program("graph_mem_captured"), dp.unix, 200 * MiB, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert kv["malloc_while_graph"] == "cudaErrorMemoryAllocation"
    assert kv["malloc_after_graph"] == "cudaSuccess"
    assert regions[0].usage().vram_used == 0
