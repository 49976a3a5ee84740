# TensorFusion top-level build. The README's two commands are `make demo` and `make test`.
#   make setup   - Debian packages, .venv with the Python package (editable) and its deps, nvcc if missing
#   make setup-test-libs - setup + the libraries the tests run through the stub (CuPy, numba-cuda, PyTorch ~5 GB)
#   make native  - every C component into build/ (+ generated gRPC code into tfclient/_gen)
#   make test    - setup-test-libs + native + C unit tests under ASan + the pytest suite
#   make test-interp - the emulated-device pytest suite on the PTX interpreter (TF_EMU_ENGINE=interp; part of make test)
#   make test-jit - the same on the PTX JIT with every launch waiting for its code (TF_EMU_JIT_SYNC=1; part of make test)
#   make demo    - setup + native + `tensorfusion demo`
VENV     := .venv
PY       := $(VENV)/bin/python
NATIVE_DIRS := emu_c stub_c limiter_c tfworker/executor
# A component joins the build by having a Makefile; this lets layers land one at a time.
PRESENT  := $(foreach d,$(NATIVE_DIRS),$(if $(wildcard $(d)/Makefile),$(d)))
JOBS     ?= $(shell nproc)

.PHONY: all setup setup-test-libs native proto asan-test test test-interp test-jit demo clean
all: native

setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup-test-libs: $(VENV)/.installed-test-libs
$(VENV)/.installed-test-libs: $(VENV)/.installed
	bash scripts/setup.sh test-libs
	touch $@

proto: setup
	$(PY) scripts/gen_proto.py

native: setup proto
	@set -e; for d in $(PRESENT); do $(MAKE) -j$(JOBS) -C $$d all; done

# C unit tests (pure cores, decoders) built with AddressSanitizer + UBSan.
asan-test: setup
	@set -e; for d in $(PRESENT); do $(MAKE) -j$(JOBS) -C $$d test SANITIZE=1; done

test: native asan-test setup-test-libs
	TF_EMU_JIT_CACHE=$(CURDIR)/build/jit-cache bash scripts/run_pytest.sh
	$(MAKE) test-interp
	$(MAKE) test-jit

# The emulated-device tests on each PTX engine. `make test` runs the whole suite on the default engine (the
# JIT as users get it: compiles in the background, launches on the interpreter until a kernel's code is
# ready, disk cache), then tests/emu (the engine directly) and tests/stub (nvcc programs through the stub,
# the worker and its GPU worker processes on the emulator) on the interpreter, the reference, and on the JIT
# with TF_EMU_JIT_SYNC=1 (each launch waits for its kernel's compile, so compiled code is what runs,
# deterministically; a test's one-off launches otherwise run on the interpreter). emu_c's C tests run the
# PTX suite on both engines.
test-interp: native
	TF_EMU_ENGINE=interp bash scripts/run_pytest.sh tests/emu tests/stub

test-jit: native
	TF_EMU_ENGINE=jit TF_EMU_JIT_SYNC=1 TF_EMU_JIT_CACHE=$(CURDIR)/build/jit-cache bash scripts/run_pytest.sh tests/emu tests/stub

demo: native
	$(VENV)/bin/tensorfusion demo

clean:
	rm -rf build build-asan tfclient/_gen
