// tf_test_want.h - expectations of the driver-API data-path test programs (dp_bogus.cu, dp_graph_bogus.cu):
// each CUresult that is not the one CUDA gives prints "FAIL <what>: got <n> want <m>" and counts in
// `fails`; the program exits 1 when any failed.
#pragma once
#include <cuda.h>
#include <stdio.h>

static int fails;
#define WANT(what, call, want)                                                   \
    do {                                                                         \
        CUresult got_ = (call);                                                  \
        if (got_ != (want)) {                                                    \
            printf("FAIL %s: got %d want %d\n", what, (int)got_, (int)(want));   \
            fails++;                                                             \
        }                                                                        \
    } while (0)
