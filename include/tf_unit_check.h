/* tf_unit_check.h - CHECK(cond) of the C unit tests of the driver surfaces (emu_c/tests/test_driver.c,
 * emu_c/tests/test_fatbin.c, stub_c/tests/test_stub.c): a false condition prints "FAIL file:line: cond"
 * and counts in `failures`; the test goes on and exits 1 at the end when any failed. */
#ifndef TF_UNIT_CHECK_H
#define TF_UNIT_CHECK_H
#include <stdio.h>

static int failures;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)
#endif
