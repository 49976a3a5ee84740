"""The emulated device's settings fail closed (emu_c/emu_init.c, README "knob" table): a TF_EMU_* value (or
CUDA_MODULE_LOADING) that is not one the knob accepts makes cuInit answer CUDA_ERROR_INVALID_VALUE - cudart reports
cudaErrorInvalidValue at the program's first call - with one tf-emu: line naming the setting and what it accepts,
instead of running on a default the user did not ask for."""
import pytest

from emu_run import emu_env, run_kv, run_program
from cudabuild import parse_kv

BAD = [
    ("TF_EMU_CC", "12.5", "7.5, 8.0, 8.6, 8.9, 9.0, 10.0, 12.0, 12.1, 13.0"),
    ("TF_EMU_CC", "ampere", "7.5, 8.0, 8.6, 8.9, 9.0, 10.0, 12.0, 12.1, 13.0"),
    ("TF_EMU_VRAM_MIB", "16G", "a whole number of MiB from 1 to 1073741823"),
    ("TF_EMU_VRAM_MIB", "0", "a whole number of MiB from 1 to 1073741823"),
    ("TF_EMU_THREADS", "four", "a whole number of host threads from 1 to 256"),
    ("TF_EMU_THREADS", "-2", "a whole number of host threads from 1 to 256"),
    ("TF_EMU_DEVICES", "0", "a whole number of devices from 1 to 8"),
    ("TF_EMU_DEVICES", "abc", "a whole number of devices from 1 to 8"),
    ("TF_EMU_ENGINE", "llvm", "interp or jit"),
    ("TF_EMU_TRACE", "yes", "0, 1 or 2"),
    ("TF_EMU_SYNC_STREAMS", "true", "0 or 1"),
    ("TF_EMU_JIT_SYNC", "on", "0 or 1"),
    ("CUDA_MODULE_LOADING", "lazy-ish", "LAZY or EAGER"),
]


@pytest.mark.parametrize("name,value,accepted", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_setting_the_device_does_not_accept_fails_cuinit_with_one_line_naming_the_accepted_values(name, value,
                                                                                                     accepted):
    p = run_program("device_query", env=emu_env(**{name: value}))
    assert p.returncode != 0 and "error=cudaErrorInvalidValue" in p.stdout.decode(), p.stdout
    lines = [line for line in p.stderr.decode().splitlines() if "is not accepted" in line]
    assert len(lines) == 1 and lines[0].startswith("tf-emu: "), lines
    assert f"{name}={value} is not accepted" in lines[0] and accepted in lines[0]
    assert "CUDA_ERROR_INVALID_VALUE" in lines[0]


def test_every_bad_setting_is_named_not_only_the_first():
    p = run_program("device_query", env=emu_env(TF_EMU_CC="x", TF_EMU_THREADS="y"))
    err = p.stderr.decode()
    assert p.returncode != 0 and "TF_EMU_CC=x" in err and "TF_EMU_THREADS=y" in err


@pytest.mark.parametrize("spelling", ["9.0", "90", "sm_90"])
def test_the_accepted_spellings_of_a_capability_still_select_it(spelling):
    kv = run_kv("device_query", env=emu_env(TF_EMU_CC=spelling))
    assert (kv["major"], kv["minor"]) == ("9", "0")


def test_accepted_values_of_the_other_settings_run_and_empty_means_the_default():
    kv = run_kv("device_query", env=emu_env(TF_EMU_VRAM_MIB="1024", TF_EMU_THREADS="1", TF_EMU_ENGINE="interp",
                                            TF_EMU_TRACE="0", TF_EMU_SYNC_STREAMS="0", TF_EMU_JIT_SYNC="1",
                                            CUDA_MODULE_LOADING="EAGER", TF_EMU_CC="", TF_EMU_DEVICES="1"))
    assert kv["total_mem"] == str(1024 << 20) and (kv["major"], kv["minor"]) == ("12", "1")
    assert parse_kv(run_program("device_query", env=emu_env(TF_EMU_VRAM_MIB="")).stdout)["total_mem"] == str(16 << 30)


def test_eager_module_loading_decodes_at_load_and_runs_the_same(tmp_path):
    # CUDA_MODULE_LOADING=EAGER: every kernel decoded at load (cuModuleGetLoadingMode EAGER); the program's result
    # is the same as with the default lazy loading
    import numpy as np
    a = np.arange(64, dtype=np.float32)
    (tmp_path / "in").write_bytes(a.tobytes() + a.tobytes())
    for mode in ("EAGER", "LAZY"):
        run_kv("vector_add", 64, tmp_path / "in", tmp_path / f"out{mode}", env=emu_env(CUDA_MODULE_LOADING=mode))
        np.testing.assert_array_equal(np.fromfile(tmp_path / f"out{mode}", np.float32), 2 * a)
