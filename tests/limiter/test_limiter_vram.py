"""Native limiter, VRAM: a real nvcc program on the emulated device with libtflimiter.so preloaded
sees the cap as its device memory, gets cudaErrorMemoryAllocation at the cap on every allocation path,
and can allocate again after freeing; the session's shared-memory region reports its usage."""
import sys
import time
from pathlib import Path

import pytest

from limiter_helpers import MiB, base_env, limited_env, run_kv, session_id, start
from tfworker.limits import SessionLimits, local_env


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_vram_cap_returns_out_of_memory_at_limit(cudart):
    env = limited_env(local_env(vram_limit_bytes=512 * MiB, base={}))
    kv = run_kv("lim_vram", 64, env=env, cudart=cudart)
    assert kv["filled"] == "8"                       # 8 x 64 MiB = the cap, exactly
    assert kv["fill_error"] == "cudaErrorMemoryAllocation"
    assert kv["realloc_after_free"] == "ok"


def test_mem_get_info_and_device_total_report_the_cap():
    kv = run_kv("lim_vram", 64, env=limited_env({"TF_VRAM_LIMIT": "768Mi"}))
    assert int(kv["info_total"]) == 768 * MiB
    assert int(kv["info_free"]) == 768 * MiB
    assert int(kv["prop_total"]) == 768 * MiB
    assert int(kv["info_free_full"]) == 0
    assert int(kv["info_free_end"]) == 768 * MiB       # everything refunded


def test_every_allocation_path_is_capped():
    kv = run_kv("lim_vram", 64, env=limited_env({"TF_VRAM_LIMIT": "256Mi"}))
    for kind in ("pitch", "managed", "async"):
        assert kv[f"{kind}_over"] == "cudaErrorMemoryAllocation", kind
        assert kv[f"{kind}_fit"] == "ok", kind


def test_hami_style_memory_limit_env():
    kv = run_kv("lim_vram", 64, env=limited_env({"CUDA_DEVICE_MEMORY_LIMIT": "256m"}))
    assert kv["filled"] == "4" and int(kv["info_total"]) == 256 * MiB


def test_no_limit_leaves_the_device_alone():
    plain = run_kv("lim_vram", 1024, env=base_env())
    preloaded = run_kv("lim_vram", 1024, env=limited_env())
    assert preloaded["info_total"] == plain["info_total"]
    assert preloaded["filled"] == plain["filled"]


def test_session_region_caps_and_reports_usage():
    with SessionLimits.create(session_id("vram"), vram_limit_bytes=320 * MiB) as lim:
        env = limited_env(lim.env)
        assert lim.preload == [str(env["LD_PRELOAD"])]
        kv = run_kv("lim_vram", 64, env=env)
        assert kv["filled"] == "5" and int(kv["info_total"]) == 320 * MiB
        u = lim.usage()
        assert u.vram_peak == 320 * MiB            # the refused 6th chunk was never charged
        assert u.vram_used == 0                    # the program freed everything
        assert u.pid > 0


def test_region_that_cannot_be_opened_fails_closed():
    env = limited_env({"TF_LIMITER_SHM": f"/tf-{session_id('missing')}", "TF_LIMITER_QUIET": "1"})
    kv = run_kv("lim_vram", 64, env=env)
    assert kv["filled"] == "0" and kv["fill_error"] == "cudaErrorMemoryAllocation"


def test_vram_limit_changes_live():
    """SessionLimits.update applies to the very next allocation of a running process."""
    with SessionLimits.create(session_id("vlive"), vram_limit_bytes=256 * MiB) as lim:
        p = start("lim_vram_steps", env=limited_env(lim.env))

        def step(cmd: str) -> str:
            p.stdin.write(f"{cmd}\n".encode())
            p.stdin.flush()
            return p.stdout.readline().decode().strip()

        assert step("a 128") == "alloc=ok"
        assert step("a 64") == "alloc=ok"
        assert lim.usage().vram_used == 192 * MiB
        assert step("k") == "fork=ok"            # a forked child is charged to the allocation too...
        deadline = time.time() + 3                 # ...and its 64 MiB come back once it is gone
        while lim.usage().vram_used != 192 * MiB and time.time() < deadline:
            time.sleep(0.05)
        assert lim.usage().vram_used == 192 * MiB
        lim.update(vram_limit_bytes=200 * MiB)
        assert step("a 64") == "alloc=cudaErrorMemoryAllocation"
        assert step("i") == f"free_mem={8 * MiB} total_mem={200 * MiB}"
        lim.update(vram_limit_bytes=128 * MiB)                   # below what is in use
        assert step("i") == f"free_mem=0 total_mem={128 * MiB}"
        assert step("a 1") == "alloc=cudaErrorMemoryAllocation"
        lim.update(vram_limit_bytes=1024 * MiB)
        assert step("a 512") == "alloc=ok"
        assert lim.usage().vram_used == 704 * MiB and lim.usage().vram_peak == 704 * MiB
        assert step("f") == "free=ok"
        assert lim.usage().vram_used == 192 * MiB
        step("q")
        p.stdin.close()
        p.wait(timeout=30)
        assert p.returncode == 0


def test_local_managed_memory_is_charged_like_device_memory():
    """`run --local`: the limiter in the program charges cudaMallocManaged like cudaMalloc (as HAMi-core
    does), and pinned host memory is the program's own (not charged); the remote path's counterpart is
    tests/stub/test_remote_managed_cap.py."""
    p = start("lim_vram_steps", env=limited_env(local_env(vram_limit_bytes=256 * MiB, base={})))

    def step(cmd: str) -> str:
        p.stdin.write(f"{cmd}\n".encode())
        p.stdin.flush()
        return p.stdout.readline().decode().strip()

    assert step("m 1024") == "managed=cudaErrorMemoryAllocation"
    assert [step("m 100"), step("m 100"), step("m 100")] == ["managed=ok", "managed=ok", "managed=cudaErrorMemoryAllocation"]
    assert step("a 100") == "alloc=cudaErrorMemoryAllocation"
    assert step("i") == f"free_mem={56 * MiB} total_mem={256 * MiB}"
    assert step("h 200") == "host=ok mapped"
    assert step("f") == "free=ok"
    assert step("m 100") == "managed=ok"
    step("q")
    p.stdin.close()
    p.wait(timeout=30)
    assert p.returncode == 0


def test_device_reset_refunds_what_the_driver_freed():
    """cudaDeviceReset destroys the primary context and the driver frees its memory: the charges go
    with it, so the program can allocate up to the cap again."""
    with SessionLimits.create(session_id("reset"), vram_limit_bytes=256 * MiB) as lim:
        p = start("lim_vram_steps", env=limited_env(lim.env))

        def step(cmd: str) -> str:
            p.stdin.write(f"{cmd}\n".encode())
            p.stdin.flush()
            return p.stdout.readline().decode().strip()

        assert [step("a 128"), step("a 128"), step("a 64")] == ["alloc=ok", "alloc=ok", "alloc=cudaErrorMemoryAllocation"]
        assert step("r") == "reset=ok"
        assert lim.usage().vram_used == 0 and lim.usage().vram_peak == 256 * MiB
        assert [step("a 192"), step("a 64")] == ["alloc=ok", "alloc=ok"]
        assert lim.usage().vram_used == 256 * MiB
        step("q")
        p.stdin.close()
        p.wait(timeout=30)
        assert p.returncode == 0


def test_memory_opened_from_another_process_is_not_charged_to_the_importer():
    # CUDA IPC (tests/cuda/ipc.cu): the child opens the parent's 1 MiB cudaMalloc buffer under the same cap;
    # the bytes are the exporter's, so the importer's cudaMemGetInfo does not fall and nothing is refused
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emu"))
    from test_emu_ipc import IPC_EXPECT
    kv = run_kv("ipc", env=limited_env({"TF_VRAM_LIMIT": "64Mi"}))
    assert {k: kv.get(k) for k in IPC_EXPECT} == IPC_EXPECT
