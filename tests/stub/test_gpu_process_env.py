"""The GPU worker process's environment (tfworker.gpu_process.executor_env): the backend first on the
loader path, never the client stub, the limiter preloaded only when granted, no client settings, and
the host-memory copy shortcut only for the emulator."""
from tfclient import native
from tfworker.gpu_process import executor_env


def test_backend_first_and_stub_never_on_the_path():
    base = {"LD_LIBRARY_PATH": f"{native.stub_lib_dir()}:/opt/x", "LD_PRELOAD": "/evil.so",
            "TF_WORKER": "unix:/s", "TF_LEASE": "t", "TF_EXECUTOR_HOST_DEVICE_MEMORY": "1", "HOME": "/root"}
    env = executor_env("/drv", {"CUDA_VISIBLE_DEVICES": "1"}, ["/lim.so"], base=base)
    assert env["LD_LIBRARY_PATH"] == "/drv:/opt/x"
    assert env["LD_PRELOAD"] == "/lim.so" and env["CUDA_VISIBLE_DEVICES"] == "1" and env["HOME"] == "/root"
    assert "TF_WORKER" not in env and "TF_LEASE" not in env
    assert "TF_EXECUTOR_HOST_DEVICE_MEMORY" not in env     # a real driver's memory is not ours to touch


def test_system_driver_and_emulator():
    env = executor_env(None, base={"LD_LIBRARY_PATH": str(native.stub_lib_dir())})
    assert "LD_LIBRARY_PATH" not in env and "LD_PRELOAD" not in env
    emu = executor_env(str(native.emu_lib_dir()), base={})
    assert emu["LD_LIBRARY_PATH"] == str(native.emu_lib_dir())
    assert emu["TF_EXECUTOR_HOST_DEVICE_MEMORY"] == "1"
