/* ptx_jitc.c - the PTX JIT's compiler process, build/emu/tf-emu-jitc (next to the LLVM plugin, linked
 * with the plugin's objects). libcuda.so.1's compile thread (ptx_jit.c) starts one per kernel it
 * compiles, so the program never has a compile of its own under way: it keeps running the kernel on the
 * interpreter and exits whenever it likes, while this process finishes the compile into the disk cache
 * for the next run (an orphan is reaped by init). It reads one request on stdin (a socket), rebuilds the
 * kernel from the key (ptx_jit_key.c), compiles it, stores the object in the cache (write + rename:
 * atomic), then answers on stdout. Protocol: ptx_jit.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ptx_jit.h"
#include "tf_fd_io.h"

const ptx_jit_plugin *tf_emu_jit_plugin(void); /* ptx_jit_llvm.c, linked in */

static const char *op_name(int op) {
    static const char *names[] = {
#define X(e) #e,
        PTX_OPS(X)
#undef X
    };
    return op >= 0 && op < OP_COUNT ? names[op] : "?";
}

/* Compiled code names the runtime helpers by symbol and this process never runs it: any address will do. */
static void no_helper(void) {}

static int answer(uint32_t status, const void *p, uint64_t n) {
    uint8_t h[20];
    memcpy(h, PTX_JITC_ANS, 8);
    memcpy(h + 8, &status, 4);
    memcpy(h + 12, &n, 8);
    return tf_write_all(1, h, sizeof(h)) || tf_write_all(1, p, (size_t)n) ? -1 : 0;
}

static const ptx_jit_plugin *g_pl;
static char g_head[1200];
static int g_headlen = -1;

/* LLVM for this CPU, once; the disk key's head from it */
static int llvm_up(char *why, size_t whylen) {
    static const ptx_jit_host host = {
        .abi = PTX_JIT_PLUGIN_ABI,
        .op_name = op_name,
        .xlate = (void *)no_helper,
        .atom = (void *)no_helper,
        .sreg = (void *)no_helper,
        .alu = (void *)no_helper,
        .tex = (void *)no_helper,
        .cpasync = (void *)no_helper,
    };
    if (g_pl) return 0;
    const ptx_jit_plugin *pl = tf_emu_jit_plugin();
    if (pl->init(&host, why, whylen)) return -1;
    g_headlen = ptx_jit_key_head(g_head, sizeof(g_head), pl->target_id());
    if (g_headlen < 0) { snprintf(why, whylen, "the JIT's target description is too long"); return -1; }
    g_pl = pl;
    return 0;
}

/* One request: the answer's status and bytes in *out (malloc'ed). */
static uint32_t serve(const char *name, const char *dir, const uint8_t *prog, size_t plen, void **out, size_t *outlen) {
    static char why[256];
    *out = NULL;
    if (llvm_up(why, sizeof(why))) goto refuse;
    ptx_jit_buf key = {0};
    ptx_jit_buf_put(&key, g_head, (size_t)g_headlen);
    ptx_jit_buf_put(&key, prog, plen);
    if (key.oom) { free(key.p); snprintf(why, sizeof(why), "out of host memory for the key"); goto refuse; }
    if (*dir && (*out = ptx_jit_cache_read(dir, key.p, key.n, outlen))) { free(key.p); return PTX_JITC_FROM_DISK; }
    /* tests: hold the compile until this file exists (at most 10 minutes), to end a program during it */
    const char *gate = getenv("TF_EMU_JIT_COMPILE_GATE");
    for (int i = 0; gate && *gate && access(gate, F_OK) && i < 30000; i++) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    ptx_kernel *k = ptx_jit_key_kernel(prog, plen);
    if (!k) { free(key.p); snprintf(why, sizeof(why), "the compiler process could not read the program"); goto refuse; }
    int rc = g_pl->compile(k, name, out, outlen, why, sizeof(why));
    ptx_jit_key_kernel_free(k);
    if (rc) { free(key.p); goto refuse; }
    if (*dir) ptx_jit_cache_write(dir, key.p, key.n, *out, *outlen); /* best effort: the answer carries it */
    free(key.p);
    return PTX_JITC_COMPILED;
refuse:
    free(*out);
    *out = strdup(why);
    *outlen = *out ? strlen(why) : 0;
    return PTX_JITC_REFUSED;
}

int main(int argc, char **argv) {
    /* the parent may have exited by the time we answer: a failed write, not a signal */
    signal(SIGPIPE, SIG_IGN);
    /* hold none of the program's descriptors (its sockets, the pipes a test reads to EOF) */
    if (syscall(SYS_close_range, 3u, ~0u, 0u))
        for (int fd = 3; fd < 1024; fd++) close(fd);
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--background"))) {
        fprintf(stderr, "%s: started by libcuda.so.1's PTX JIT only (requests on stdin)\n", argv[0]);
        return 2;
    }
    /* nobody waits for a background compile (the program interprets meanwhile, and its exit does not
     * wait): leave the CPU to the program first. Not nice 19: on a loaded machine that starved for minutes. */
    if (argc == 2 && nice(PTX_JITC_NICE) == -1 && errno) return 2;
    for (;;) {
        uint8_t h[24];
        uint32_t namelen, dirlen;
        uint64_t plen;
        if (tf_read_exact(0, h, sizeof(h))) return 0; /* the end of the requests */
        memcpy(&namelen, h + 8, 4);
        memcpy(&dirlen, h + 12, 4);
        memcpy(&plen, h + 16, 8);
        if (memcmp(h, PTX_JITC_REQ, 8) || namelen == 0 || namelen > 256 || dirlen > 4096 || plen > (256u << 20))
            return 3;
        char *name = calloc(1, namelen + 1), *dir = calloc(1, dirlen + 1);
        uint8_t *prog = malloc(plen ? plen : 1);
        if (!name || !dir || !prog || tf_read_exact(0, name, namelen) || tf_read_exact(0, dir, dirlen) ||
            tf_read_exact(0, prog, plen))
            return 3;
        void *out = NULL;
        size_t outlen = 0;
        uint32_t st = serve(name, dir, prog, (size_t)plen, &out, &outlen);
        answer(st, out ? out : "", out ? outlen : 0); /* a parent that has gone: the next request, or the end */
        free(out);
        free(prog);
        free(name);
        free(dir);
    }
}
