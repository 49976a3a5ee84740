/* fuzz_frames.c - deterministic fuzz harness of the executor's frame decoder, run by
 * `make -C tfworker/executor test` (under ASan/UBSan in `make asan-test`).
 * Feeds the recorded sessions in tests/fuzz/ *.bin (request frames captured with TF_EXECUTOR_RECORD)
 * and thousands of mutations of them (bit flips, byte stores, truncations, length and call-id changes),
 * plus random frames for every call id, through the same frame parser and dispatch the executor runs.
 * There is no backend (calls that pass decoding and validation answer NOT_SUPPORTED), a few handles and
 * one allocation are registered so validation paths run past the handle checks. Fails on any crash or
 * sanitizer report, or on a reply that breaks the framing contract (outputs only with success, then the
 * latched entries).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static long replies, bad_replies;
static int check_out(void *ctx, const void *a, size_t an, const void *b, size_t bn)
{
    (void)ctx, (void)b;
    tf_rep_hdr h;
    if (an != sizeof h) { bad_replies++; return 0; }
    memcpy(&h, a, sizeof h);
    if (h.len != bn || h.nlatched > TF_MAX_LATCHED ||
        (h.result != CUDA_SUCCESS && h.len != h.nlatched * sizeof(tf_latched)))
        bad_replies++;
    replies++;
    return 0;
}

/* The executor's parse loop over a memory buffer: stops at the first malformed or truncated frame,
 * as tf_serve closes the session there. Bodies are copied to an 8-aligned buffer like tf_serve's. */
static void run_bytes(tfx *x, const uint8_t *p, size_t n)
{
    static uint8_t *body;
    static size_t cap;
    size_t off = 0;
    while (n - off >= sizeof(tf_req_hdr)) {
        tf_req_hdr h;
        memcpy(&h, p + off, sizeof h);
        if (h.len > TF_MAX_FRAME || h.len % 8) return;
        if (n - off - sizeof h < h.len) return;
        if (h.len > cap) {
            free(body);
            cap = h.len;
            body = aligned_alloc(16, (cap + 15) & ~(size_t)15);
            if (!body) { cap = 0; return; }
        }
        if (h.len) memcpy(body, p + off + sizeof h, h.len);
        tf_session_feed(x, &h, body, check_out, NULL);
        off += sizeof h + h.len;
    }
}

static void fresh_session(tfx *x)
{
    tf_session_free(x);
    if (tf_session_init(x, NULL)) { fprintf(stderr, "session init failed\n"); exit(1); }
    tf_reg_add(x, 0x1000, TFK_CTX, 0, TFK_NONE);
    tf_reg_add(x, 0x2000, TFK_MOD, 0, TFK_NONE);
    tf_reg_add(x, 0x2100, TFK_FUNC, 0x2000, TFK_MOD);
    tf_reg_add(x, 0x3000, TFK_STREAM, 0, TFK_NONE);
    tf_reg_add(x, 0x4000, TFK_EVENT, 0, TFK_NONE);
    tf_dev_add(x, 0x100000, 1 << 16);
}

static void mutate_and_run(tfx *x, const uint8_t *src, size_t n, int rounds)
{
    uint8_t *m = malloc(n + 64);
    if (!m) exit(1);
    for (int r = 0; r < rounds; r++) {
        size_t len = n;
        memcpy(m, src, n);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits && len; e++) {
            size_t at = next_rand() % len;
            switch (next_rand() % 6) {
            case 0: m[at] ^= (uint8_t)(1u << (next_rand() % 8)); break;
            case 1: m[at] = (uint8_t)next_rand(); break;
            case 2: len = at; break;                                            /* truncate */
            case 3: if (at + 4 <= len) { uint32_t v = (uint32_t)next_rand() % 4096 * 8; memcpy(m + at, &v, 4); } break;
            case 4: if (at + 2 <= len) { uint16_t v = (uint16_t)(next_rand() % (TF_N_CALLS + 4)); memcpy(m + at, &v, 2); } break;
            case 5: if (at + 8 <= len) { uint64_t v = next_rand() % 4 == 0 ? 0x100000 : next_rand(); memcpy(m + at, &v, 8); } break;
            }
        }
        run_bytes(x, m, len);
        if (r % 256 == 0) fresh_session(x);
    }
    free(m);
}

static void random_frames(tfx *x, int rounds)
{
    uint8_t frame[8 + 1024];
    for (int r = 0; r < rounds; r++) {
        tf_req_hdr h = {.len = (uint32_t)(next_rand() % 129) * 8, .call = (uint16_t)(r % (TF_N_CALLS + 2)),
                        .flags = (uint16_t)(next_rand() % 2)};
        memcpy(frame, &h, sizeof h);
        for (uint32_t i = 0; i < h.len; i++) {
            uint64_t v = next_rand();
            frame[8 + i] = (v & 3) == 0 ? 0 : (v & 3) == 1 ? 1 : (uint8_t)(v >> 8);
        }
        run_bytes(x, frame, sizeof h + h.len);
    }
}

#ifdef TF_LIBFUZZER
/* libFuzzer entry (make -C tfworker/executor libfuzzer, needs clang): one input = a byte stream of frames. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tfx x;
    static int ready;
    if (!ready) {
        if (tf_session_init(&x, NULL)) abort();
        fresh_session(&x);
        ready = 1;
    }
    run_bytes(&x, data, size);
    if (bad_replies) abort();
    return 0;
}
#else
int main(int argc, char **argv)
{
    static tfx x;
    if (tf_session_init(&x, NULL)) return 1;
    fresh_session(&x);
    int files = 0;
    if (argc > 1) {
        DIR *d = opendir(argv[1]);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            size_t nl = strlen(de->d_name);
            if (nl < 4 || strcmp(de->d_name + nl - 4, ".bin")) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name);
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            uint8_t *buf = malloc(1 << 22);
            size_t n = buf ? fread(buf, 1, 1 << 22, f) : 0;
            fclose(f);
            if (!buf) return 1;
            run_bytes(&x, buf, n);
            mutate_and_run(&x, buf, n, 3000);
            free(buf);
            files++;
        }
        if (d) closedir(d);
    }
    random_frames(&x, 20000);
    tf_session_free(&x);
    if (bad_replies) { fprintf(stderr, "fuzz_frames: %ld malformed replies\n", bad_replies); return 1; }
    printf("fuzz_frames: ok (%d corpus files, %ld replies)\n", files, replies);
    return 0;
}
#endif
