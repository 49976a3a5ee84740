"""Where the native build outputs live (built by `make native` into <repo>/build).

Everything that loads or spawns a native piece asks here, so users never set LD paths by hand.
TF_BUILD_DIR overrides the location (e.g. an ASan build).
"""
import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def build_dir() -> Path:
    return Path(os.environ.get("TF_BUILD_DIR", REPO_ROOT / "build"))


def emu_lib_dir() -> Path:
    """Folder holding the emulated device's libcuda.so.1."""
    return build_dir() / "emu"


def stub_lib_dir() -> Path:
    """Folder holding the client stub's libcuda.so.1."""
    return build_dir() / "stub"


def limiter_lib() -> Path:
    return build_dir() / "lib" / "libtflimiter.so"


def executor_bin() -> Path:
    return build_dir() / "bin" / "tf-executor"


def require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make native` in {REPO_ROOT}")
    return path


def find_nvcc() -> str | None:
    """The CUDA compiler: on PATH, else the one `make setup` installed from PyPI, else the usual toolkit place."""
    for cand in (shutil.which("nvcc"), str(REPO_ROOT / ".venv" / "bin" / "nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and os.path.exists(cand):
            return cand
    return None
