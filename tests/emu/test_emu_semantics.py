"""CUDA's semantics in the corner cases programs rely on, on the emulated device directly (the same
programs run through the client stub in tests/stub/test_semantics.py and must give the same answers):
freeing NULL, host threads that never call cudaSetDevice, launch errors, occupancy, device printf."""
from __future__ import annotations

import pytest

from emu_run import emu_env, run_kv, run_program
from tfclient import native

CUDARTS = ["static", "shared"]
LCUDA = (f"-L{native.emu_lib_dir()}", "-lcuda")

# What NVIDIA's driver answers (cudaFree/cudaFreeAsync/cuMemFree of 0 and cuMemFreeHost(NULL) are no-ops;
# cuMemHostUnregister(NULL) is not). Shared with tests/stub/test_semantics.py.
NULL_FREE = {
    "first_cudaFree0": "cudaSuccess", "cudaFree0": "cudaSuccess", "cudaFreeHost0": "cudaSuccess",
    "cudaFreeAsync0": "cudaSuccess", "cuMemFree0": "CUDA_SUCCESS", "cuMemFreeHost0": "CUDA_SUCCESS",
    "cuMemFreeAsync0": "CUDA_SUCCESS", "cuMemHostUnregister0": "CUDA_ERROR_INVALID_VALUE",
    "double_free": "CUDA_ERROR_INVALID_VALUE", "after": "cudaSuccess",
}
# Around a context's end (tests/cuda/ctx_lifetime.cu), as the driver API's documentation gives it: a created
# context destroyed by one thread stays current to another, whose calls get CUDA_ERROR_CONTEXT_IS_DESTROYED and
# which may still pop it; the destroying thread's stack loses it; the dead handle is no context any more. The
# primary context's reset frees its memory; a retain the reset ended may still be released, once.
# Shared with tests/stub/test_semantics.py.
CTX_LIFETIME = {
    "destroy": "ok", "other_alloc": "CUDA_ERROR_CONTEXT_IS_DESTROYED", "other_sync": "CUDA_ERROR_CONTEXT_IS_DESTROYED",
    "other_still_current": "1", "other_pop": "ok", "destroyer_current": "null",
    "set_destroyed": "CUDA_ERROR_INVALID_CONTEXT", "destroy_again": "CUDA_ERROR_INVALID_CONTEXT",
    "reset": "ok", "reset_free": "CUDA_ERROR_INVALID_VALUE", "reset_memset": "CUDA_ERROR_INVALID_VALUE",
    "release_now": "ok", "release_after_reset": "ok", "release_unretained": "CUDA_ERROR_INVALID_CONTEXT",
}
# A launch the device cannot run fails at the launch call itself. Driver API: CUDA_ERROR_INVALID_VALUE for a
# bad grid/block (not 9, which is no CUresult); cudart reports cudaErrorInvalidConfiguration for the same.
LAUNCH_ERRORS = {
    "rt_zero_grid": "cudaErrorInvalidConfiguration", "rt_big_block": "cudaErrorInvalidConfiguration",
    "drv_zero_grid": "CUDA_ERROR_INVALID_VALUE", "drv_big_block": "CUDA_ERROR_INVALID_VALUE",
    "drv_big_block_z": "CUDA_ERROR_INVALID_VALUE", "drv_ex_big_block": "CUDA_ERROR_INVALID_VALUE",
    "rt_smem_default": "cudaErrorInvalidValue", "rt_smem_default_sync": "cudaSuccess",
    "drv_smem_default": "CUDA_ERROR_INVALID_VALUE", "drv_ex_smem": "CUDA_ERROR_INVALID_VALUE",
    "drv_static_plus_dyn": "CUDA_ERROR_INVALID_VALUE", "drv_static_plus_dyn_ok": "CUDA_SUCCESS",
    "drv_smem_optin": "CUDA_SUCCESS", "rt_smem_optin": "cudaSuccess", "drv_smem_lowered": "CUDA_ERROR_INVALID_VALUE",
    "drv_over_launch_bounds": "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
    "rt_over_launch_bounds": "cudaErrorLaunchOutOfResources", "sync_after_config_errors": "cudaSuccess",
    "rt_coop_fits": "cudaSuccess", "rt_coop_too_large": "cudaErrorCooperativeLaunchTooLarge",
    "drv_coop_too_large": "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE",
    "drv_ex_coop_too_large": "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE", "after": "cudaSuccess",
}


def check_launch_errors(kv: dict) -> None:
    assert {k: kv.get(k) for k in LAUNCH_ERRORS} == LAUNCH_ERRORS
    # the cooperative limit is the occupancy of that configuration on every SM, and all of it runs
    assert int(kv["coop_max_blocks"]) > 0 and kv["coop_blocks_ran"] == kv["coop_max_blocks"]


def check_occupancy(kv: dict) -> None:
    """Every case: the driver's answer equals NVIDIA's calculator's (cuda_occupancy.h) for the same kernel:
    blocks per SM, the block size of best occupancy, the dynamic shared memory available per block."""
    assert "error" not in kv
    every = {k: v.split(":") for k, v in kv.items() if k.startswith(("occ_", "pot_", "avail_"))}
    assert len(every) == 29
    assert {k: d for k, (d, c) in every.items()} == {k: c for k, (d, c) in every.items()}
    cases = {k: v for k, v in every.items() if k.startswith("occ_")}
    # and the attributes matter: opting in to more dynamic shared memory, the carveout, registers
    assert cases["occ_dyn_64k_default_limit"][0] == "0" and int(cases["occ_dyn_64k_raised"][0]) > 0
    assert int(cases["occ_dyn_8k_carveout25"][0]) < int(cases["occ_dyn_8k"][0])
    assert int(cases["occ_heavy_256"][0]) < int(cases["occ_bounded_256"][0])


NEW_THREAD = {"main": "cudaSuccess", "thread_stream": "cudaSuccess", "thread_device": "cudaSuccess:0",
              "thread_work": "cudaSuccess", "thread_ctx": "same"}


@pytest.mark.parametrize("cudart", CUDARTS)
def test_freeing_null_is_a_no_op_where_cuda_says_so(cudart):
    kv = run_kv("null_free", cudart=cudart, flags=LCUDA)
    assert {k: kv.get(k) for k in NULL_FREE} == NULL_FREE


@pytest.mark.parametrize("cudart", CUDARTS)
def test_a_new_host_thread_uses_the_device_without_cudaSetDevice(cudart):
    kv = run_kv("new_thread", cudart=cudart, flags=LCUDA)
    assert {k: kv.get(k) for k in NEW_THREAD} == NEW_THREAD


@pytest.mark.parametrize("cudart", CUDARTS)
def test_launch_errors_come_back_from_the_launch_itself(cudart):
    check_launch_errors(run_kv("launch_errors", cudart=cudart, flags=LCUDA))


def test_occupancy_honours_each_kernels_attributes():
    check_occupancy(run_kv("occupancy", flags=LCUDA))


# Device printf appears where CUDA flushes the printf FIFO (synchronizes, blocking copies, ...), after the
# host output that came before that point, never at the printf itself.
PRINTF_ORDER = """host: start
host: launched A
A 0
A 1
A 2
A 3
host: after sync 1
B 7 2.50 text
host: after sync 2
C 0
C 1
host: after copy
host: before stream sync
D 0
D 1
host: end
"""


def check_printf_fifo(out: str) -> None:
    """cudaLimitPrintfFifoSize = 4096: of 1000 printed lines per kernel, only whole lines that fit in 4096
    bytes appear; the FIFO empties at each synchronize, so the second kernel prints as much again."""
    lines = out.splitlines()
    assert lines[0] == "host: fifo = 4096"
    sync1, sync2 = lines.index("host: sync 1 = cudaSuccess"), lines.index("host: sync 2 = cudaSuccess")
    for tag, part in (("F", lines[1:sync1]), ("G", lines[sync1 + 1:sync2])):
        assert part and all(ln.startswith(f"{tag} ") and ln.endswith(".") and len(ln) == 33 for ln in part)
        size = sum(len(ln) + 1 for ln in part)
        assert 4096 - 34 < size <= 4096, (tag, size)
        assert len(set(part)) == len(part)


def check_bad_instruction(out: str, err: str) -> None:
    assert "sync=cudaErrorIllegalInstruction" in out.splitlines()
    named = [ln for ln in err.splitlines() if "tfemu.no.such.instruction" in ln]
    assert len(named) == 1, err


def test_device_printf_appears_where_cuda_flushes_it():
    p = run_program("device_printf", "order")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == PRINTF_ORDER


def test_device_printf_honours_the_fifo_size():
    p = run_program("device_printf", "fifo")
    assert p.returncode == 0, p.stderr
    check_printf_fifo(p.stdout.decode())


def test_an_unsupported_instruction_is_named_on_stderr():
    p = run_program("device_printf", "bad")
    assert p.returncode == 0, p.stderr
    check_bad_instruction(p.stdout.decode(), p.stderr.decode())


def test_host_and_device_writes_to_one_managed_range_between_two_syncs_both_land():
    # the reference for tests/stub/test_managed.py: system-wide atomics from both sides count, and host and
    # kernel writing different halves between one launch and its synchronize both survive
    kv = run_kv("managed_both_sides", "atomics")
    assert kv["atomic_sum"] == kv["atomic_expected"]
    assert run_kv("managed_both_sides", "disjoint")["disjoint_bad"] == "0"


# cuStreamAttachMemAsync as documented: managed memory only, length 0 or the whole allocation, flags one of
# CUmemAttach_flags, SINGLE never on the NULL stream. Shared with tests/stub/test_managed.py.
ATTACH = {
    "attach_global": "cudaSuccess", "attach_whole_length": "cudaSuccess", "attach_host": "cudaSuccess",
    "attach_single": "cudaSuccess", "attach_part": "cudaErrorInvalidValue",
    "attach_device_memory": "cudaErrorInvalidValue", "attach_single_null": "cudaErrorInvalidValue",
    "attach_bad_flags": "cudaErrorInvalidValue", "kernel_after": str(999 * 1000 // 2),
}


def test_stream_attach_of_managed_memory_checks_what_the_driver_checks():
    kv = run_kv("managed_attach")
    assert {k: kv.get(k) for k in ATTACH} == ATTACH


def check_clock_rate(kv: dict) -> None:
    """%clock64 ticks at the reported clock rate (kHz): the best of five bracketed 2 ms waits measures it
    within 10% below (host preemption can only lower it) and 1% above; %clock/%clock_hi are its halves."""
    khz, measured = int(kv["clock_khz"]), float(kv["measured_khz"])
    assert 0.9 * khz <= measured <= 1.01 * khz, kv
    assert kv["halves_ok"] == "1", kv


@pytest.mark.parametrize("cc", ["12.1", "8.0"])
def test_clock_ticks_at_the_reported_clock_rate(cc):
    """The samples' clock_block kernels spin clockRate * ms clocks to wait ms (graphMemoryFootprint,
    simpleHyperQ, concurrentKernels): at a 1 GHz %clock they waited 2.4x too long on a 2.418 GHz part."""
    check_clock_rate(run_kv("clock_rate", env=emu_env(TF_EMU_CC=cc)))


def test_a_contexts_end_answers_as_the_driver_documents():
    kv = run_kv("ctx_lifetime", flags=LCUDA)
    assert {k: kv.get(k) for k in CTX_LIFETIME} == CTX_LIFETIME
