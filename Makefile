# TensorFusion top-level build. The README's two commands are `make demo` and `make test`.
#   make setup   - Debian packages, .venv with the Python package (editable) and its deps, nvcc if missing
#   make native  - every C component into build/ (+ generated gRPC code into tfclient/_gen)
#   make test    - setup + native + C unit tests under ASan + the pytest suite
#   make test-jit - the emulated-device pytest suite on the PTX JIT (TF_EMU_ENGINE=jit; part of make test)
#   make demo    - setup + native + `tensorfusion demo`
VENV     := .venv
PY       := $(VENV)/bin/python
NATIVE_DIRS := emu_c stub_c limiter_c tfworker/executor
# A component joins the build by having a Makefile; this lets layers land one at a time.
PRESENT  := $(foreach d,$(NATIVE_DIRS),$(if $(wildcard $(d)/Makefile),$(d)))
JOBS     ?= $(shell nproc)

.PHONY: all setup native proto asan-test test test-jit demo clean
all: native

setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

proto: setup
	$(PY) scripts/gen_proto.py

native: setup proto
	@set -e; for d in $(PRESENT); do $(MAKE) -j$(JOBS) -C $$d all; done

# C unit tests (pure cores, decoders) built with AddressSanitizer + UBSan.
asan-test: setup
	@set -e; for d in $(PRESENT); do $(MAKE) -j$(JOBS) -C $$d test SANITIZE=1; done

test: native asan-test
	bash scripts/run_pytest.sh
	$(MAKE) test-jit

# The emulated-device tests again on the PTX JIT (TF_EMU_ENGINE=jit): `make test` runs the whole suite on the
# interpreter, then these on the JIT: tests/emu (the engine directly) and tests/stub (nvcc programs through the
# stub, the worker and its GPU worker processes on the emulator; about 5 minutes together on an idle machine);
# emu_c's C tests run the PTX suite on both engines.
# TF_EMU_JIT_SYNC=1: each launch waits for its kernel's compile (else the first launches run on the
# interpreter while the compile thread works), so the JIT is what these tests check, deterministically.
test-jit: native
	TF_EMU_ENGINE=jit TF_EMU_JIT_SYNC=1 TF_EMU_JIT_CACHE=$(CURDIR)/build/jit-cache bash scripts/run_pytest.sh tests/emu tests/stub

demo: native
	$(VENV)/bin/tensorfusion demo

clean:
	rm -rf build build-asan tfclient/_gen
