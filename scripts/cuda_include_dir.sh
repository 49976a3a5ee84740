#!/usr/bin/env bash
# Prints the directory holding cuda.h: the system CUDA toolkit, else the one pip installed
# (nvidia-cuda-runtime / nvidia-cuda-nvcc wheels), else our vendored minimal copy is not used: fail loudly.
set -euo pipefail
for d in "${CUDA_HOME:-}/include" /usr/local/cuda/include /usr/local/cuda/targets/x86_64-linux/include; do
  [ -f "$d/cuda.h" ] && { echo "$d"; exit 0; }
done
py="${PYTHON:-python3}"
[ -x "$(dirname "$0")/../.venv/bin/python" ] && py="$(dirname "$0")/../.venv/bin/python"
d=$("$py" - <<'PY' 2>/dev/null || true
import glob, os, site
for base in site.getsitepackages():
    for h in glob.glob(os.path.join(base, "nvidia", "**", "include", "cuda.h"), recursive=True):
        print(os.path.dirname(h)); raise SystemExit
PY
)
[ -n "$d" ] && { echo "$d"; exit 0; }
echo "cuda.h not found: run 'make setup' (installs nvidia-cuda-runtime/nvcc from PyPI)" >&2
echo /nonexistent-cuda-include
