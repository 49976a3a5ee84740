#!/usr/bin/env bash
# One-time setup on a fresh machine (`make setup`, which `make demo` runs): system packages, the .venv with
# tensorfusion installed editable (plus pytest), nvcc/cuda headers from PyPI when the machine has no CUDA
# toolkit, and the other cudart versions the tests run programs against (a few MB).
# `scripts/setup.sh test-libs` (`make setup-test-libs`, which `make test` runs) adds the GPU libraries the tests
# run through the stub: CuPy (+NVRTC, cuBLAS), numba-cuda and PyTorch (~5 GB) - not needed to use TensorFusion.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v make >/dev/null || need_apt+=(make)
command -v g++ >/dev/null || need_apt+=(g++)   # nvcc compiles host code with it
ldconfig -p 2>/dev/null | grep -c "libzstd.so.1 " >/dev/null || need_apt+=(libzstd1)
command -v etcd >/dev/null || need_apt+=(etcd-server)   # scheduler --store etcd:// and its tests (etcd 3.4)
command -v etcdctl >/dev/null || need_apt+=(etcd-client)   # the etcd TLS/auth test enables auth with it
command -v openssl >/dev/null || need_apt+=(openssl)   # that test's throwaway CA (libssl-dev has no CLI)
[ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)   # TLS on the TCP data plane (stub + executor, OpenSSL 3)
command -v llvm-config-14 >/dev/null || need_apt+=(llvm-14-dev)   # the emulator's PTX JIT (TF_EMU_ENGINE=jit), LLVM 14 ORC
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
if ! command -v nvcc >/dev/null && [ ! -x .venv/bin/nvcc ]; then
  # Pinned to the CUDA 13.0 series, the toolkit this machine kind ships, so test programs are built the
  # same way everywhere (other cudart versions are tested separately, below).
  echo "setup: no nvcc on this machine; installing the CUDA 13.0 compiler from PyPI" >&2
  .venv/bin/python -m pip install -q 'nvidia-cuda-nvcc==13.0.*' 'nvidia-cuda-runtime==13.0.*' 'nvidia-cuda-cccl==13.0.*' \
    'nvidia-cuda-crt==13.0.*' 'nvidia-nvvm==13.0.*'
  .venv/bin/python scripts/link_pip_nvcc.py
fi
# Other CUDA runtimes the tests run programs against (cudart 12 as PyTorch wheels ship it, the newest 13):
# only the shared libcudart from each runtime wheel, a few MB, into .venv/cudart/<version>.
for spec in "12.8=nvidia-cuda-runtime-cu12==12.8.*" "13.5=nvidia-cuda-runtime==13.5.*"; do
  dir=".venv/cudart/${spec%%=*}"
  [ -d "$dir" ] || .venv/bin/python -m pip install -q --no-deps --target "$dir" "${spec#*=}"
done
if [ "${1:-}" = test-libs ]; then
  .venv/bin/python -m pip install -q -e '.[dev,test-libs]'    # CuPy (+NVRTC), numba-cuda: tests/test_pylibs_*.py
  # PyTorch for tests/test_pylibs_torch.py (starts through the stub on the emulated device): ~5 GB with its CUDA
  # wheels, ~6 min here, in its own folder so its pinned dependencies stay out of the venv (the test adds it to
  # the path of the interpreter it starts).
  [ -d .venv/torch/torch ] || .venv/bin/python -m pip install -q --target .venv/torch 'torch==2.14.*'
fi
echo "setup${1:+ $1}: done"
