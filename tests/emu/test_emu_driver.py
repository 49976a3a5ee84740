"""Emulated CUDA device, driver layer: a real nvcc-built cudart program (static and shared cudart 13)
starts on build/emu/libcuda.so.1, sees the emulated device and moves memory correctly."""
import pytest

from emu_run import emu_env, run_kv

CUDARTS = ["static", "shared"]


@pytest.mark.parametrize("cudart", CUDARTS)
def test_cudart_sees_one_emulated_device_with_the_default_cc_12_1(cudart):
    kv = run_kv("device_query", cudart=cudart)
    assert kv["count"] == "1"
    assert "Emulated" in kv["name"]
    assert (kv["major"], kv["minor"]) == ("12", "1")  # the default capability (TF_EMU_CC)
    assert int(kv["total_mem"]) == 16384 << 20
    assert int(kv["sm_count"]) > 0 and kv["warp_size"] == "32"
    assert kv["max_threads_per_block"] == "1024"
    assert int(kv["shared_per_block"]) == 48 * 1024
    assert int(kv["driver_version"]) >= 13000
    assert int(kv["mem_total"]) == int(kv["total_mem"])
    assert int(kv["mem_free"]) <= int(kv["mem_total"])


def test_vram_size_follows_tf_emu_vram_mib():
    kv = run_kv("device_query", env=emu_env(TF_EMU_VRAM_MIB=3000))
    assert int(kv["total_mem"]) == 3000 << 20
    assert int(kv["mem_total"]) == 3000 << 20


@pytest.mark.parametrize("cudart", CUDARTS)
def test_memory_copies_memsets_and_errors_behave_like_a_gpu(cudart):
    n, seed = 10000, 7
    kv = run_kv("memory_ops", n, seed, cudart=cudart)
    expected = sum(((i * 2654435761 + seed) % (1 << 32)) % 1000 / 8.0 for i in range(n))
    assert float(kv["checksum"]) == pytest.approx(expected, rel=1e-6)
    for key in ("roundtrip", "memset_tail", "d2d", "copy2d", "host_alloc", "host_register", "memset2d", "copy3d"):
        assert kv[key] == "ok", key
    assert int(kv["pitch"]) >= 100 and int(kv["pitch"]) % 256 == 0
    assert int(kv["alloc_delta"]) == 64 << 20
    assert kv["bogus_copy"] == "cudaErrorInvalidValue"
    assert kv["too_big"] == "cudaErrorMemoryAllocation"


@pytest.mark.parametrize("cudart", CUDARTS)
def test_forked_child_cannot_use_the_parents_cuda(cudart):
    # NVIDIA's driver: CUDA initialised before fork is unusable in the child
    kv = run_kv("fork_child", cudart=cudart)
    assert kv["child"] == "cudaErrorInitializationError"
    assert kv["child_malloc"] == "cudaErrorInitializationError"
    assert kv["parent"] == "cudaSuccess"
