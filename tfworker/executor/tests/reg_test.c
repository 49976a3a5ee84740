/* reg_test.c - unit test of the executor's handle registry (executor.c: tf_reg_*), run by
 * `make -C tfworker/executor test`. Handles are keyed by (kind, value): on NVIDIA's driver texture and surface
 * objects are small integers that may equal each other or a value of another kind, so one must never stand for,
 * replace or delete the other; children die with their parent of the right kind only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "executor.h"

static int failed;
#define CHECK(c, ...)                                  \
    do {                                               \
        if (!(c)) {                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);              \
            fprintf(stderr, "\n");                     \
            failed++;                                  \
        }                                              \
    } while (0)

int main(void)
{
    static tfx x;
    if (tf_session_init(&x, NULL)) {
        fprintf(stderr, "session init failed\n");
        return 1;
    }
    /* a texture object, a surface object and an array with the same value */
    tf_reg_add(&x, 3, TFK_TEXOBJ, 0, TFK_NONE);
    tf_reg_add(&x, 3, TFK_SURFOBJ, 0, TFK_NONE);
    tf_reg_add(&x, 3, TFK_ARRAY, 0, TFK_NONE);
    CHECK(tf_reg_has(&x, 3, TFK_TEXOBJ) && tf_reg_has(&x, 3, TFK_SURFOBJ) && tf_reg_has(&x, 3, TFK_ARRAY),
          "three kinds of value 3 are all live");
    CHECK(!tf_reg_has(&x, 3, TFK_MIPMAP) && !tf_reg_has(&x, 4, TFK_TEXOBJ), "nothing else is");
    tf_reg_del(&x, 3, TFK_TEXOBJ);
    CHECK(!tf_reg_has(&x, 3, TFK_TEXOBJ), "destroyed texture object 3 is gone");
    CHECK(tf_reg_has(&x, 3, TFK_SURFOBJ) && tf_reg_has(&x, 3, TFK_ARRAY),
          "destroying texture object 3 leaves surface object 3 and array 3");
    tf_reg_del(&x, 3, TFK_TEXOBJ); /* twice: a no-op */
    CHECK(tf_reg_has(&x, 3, TFK_SURFOBJ), "a second delete of the texture touches nothing else");

    /* children die with a parent of their parent's kind only */
    tf_reg_add(&x, 7, TFK_MOD, 0, TFK_NONE);
    tf_reg_add(&x, 9, TFK_FUNC, 7, TFK_MOD);
    tf_reg_add(&x, 7, TFK_GRAPH, 0, TFK_NONE);
    tf_reg_add(&x, 11, TFK_GNODE, 7, TFK_GRAPH);
    tf_reg_del(&x, 7, TFK_MOD);
    CHECK(!tf_reg_has(&x, 9, TFK_FUNC), "the module's function died with it");
    CHECK(tf_reg_has(&x, 7, TFK_GRAPH) && tf_reg_has(&x, 11, TFK_GNODE), "graph 7 and its node live on");
    tf_reg_add(&x, 5, TFK_MIPMAP, 0, TFK_NONE);
    tf_reg_add(&x, 12, TFK_ARRAY, 5, TFK_MIPMAP);
    tf_reg_add(&x, 5, TFK_TEXOBJ, 0, TFK_NONE);
    tf_reg_del(&x, 5, TFK_MIPMAP);
    CHECK(!tf_reg_has(&x, 12, TFK_ARRAY), "a mipmapped array's level died with it");
    CHECK(tf_reg_has(&x, 5, TFK_TEXOBJ), "texture object 5 lives on");

    /* growth keeps both kinds of every value */
    for (uint64_t v = 100; v < 6100; v++) {
        tf_reg_add(&x, v, TFK_TEXOBJ, 0, TFK_NONE);
        tf_reg_add(&x, v, TFK_SURFOBJ, 0, TFK_NONE);
    }
    int missing = 0;
    for (uint64_t v = 100; v < 6100; v++) {
        missing += !tf_reg_has(&x, v, TFK_TEXOBJ) + !tf_reg_has(&x, v, TFK_SURFOBJ);
        tf_reg_del(&x, v, TFK_SURFOBJ);
    }
    CHECK(missing == 0, "%d of 12000 entries lost across table growth", missing);
    missing = 0;
    for (uint64_t v = 100; v < 6100; v++) missing += !tf_reg_has(&x, v, TFK_TEXOBJ) + tf_reg_has(&x, v, TFK_SURFOBJ);
    CHECK(missing == 0, "%d wrong after deleting the surface objects", missing);
    CHECK(!tf_reg_has(&x, 0, TFK_CTX), "0 is no handle");
    tf_session_free(&x);
    printf("reg_test: %s\n", failed ? "FAILED" : "ok");
    return failed != 0;
}
