"""Makes the pip-installed nvcc (nvidia-cuda-nvcc wheel) usable as .venv/bin/nvcc.

The wheel ships bin/nvcc inside site-packages/nvidia/cu13 (or cuda_nvcc); tests look for nvcc
on PATH first, then .venv/bin/nvcc, so a symlink is all that is needed.
"""
import glob
import os
import site
import sys

venv_bin = os.path.dirname(sys.executable)
for base in site.getsitepackages():
    for nvcc in glob.glob(os.path.join(base, "nvidia", "**", "bin", "nvcc"), recursive=True):
        link = os.path.join(venv_bin, "nvcc")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(nvcc, link)
        print(f"linked {link} -> {nvcc}")
        raise SystemExit(0)
raise SystemExit("link_pip_nvcc: nvidia-cuda-nvcc installed but no bin/nvcc found in it")
