# Shared compiler settings for every native component (stub_c, limiter_c, emu_c, tfworker/executor).
# Each component Makefile does: ROOT := ..  (or ../..); include $(ROOT)/mk/common.mk
# BUILD is where outputs go (default <repo>/build); SANITIZE=1 builds with AddressSanitizer+UBSan
# into <repo>/build-asan instead, for the C unit tests CI runs.
ifeq ($(SANITIZE),1)
BUILD      ?= $(ROOT)/build-asan
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer
OPT        := -O1
else
BUILD      ?= $(ROOT)/build
SAN_FLAGS  :=
OPT        := -O2
endif
CC         ?= cc
CUDA_INC   ?= $(shell $(ROOT)/scripts/cuda_include_dir.sh)
CFLAGS_COMMON := $(OPT) -g -fPIC -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
                 -fvisibility=hidden $(SAN_FLAGS) -I$(CUDA_INC) -I$(ROOT)/include
LDFLAGS_COMMON := -pthread $(SAN_FLAGS)
