/* ptx_jit.c - the PTX JIT's driver side, in libcuda.so.1 (no LLVM here): engine choice
 * (TF_EMU_ENGINE=interp|jit), the in-memory cache (keyed by the decoded program), the compile thread,
 * loading the LLVM plugin (libtf-emu-jit.so: ptx_jit_llvm.c + ptx_jit_ir.c, dlopened at the first
 * compile so processes that never compile never load libLLVM), the disk cache's use (ptx_jit_cache.c),
 * the block runner that ptx_exec.c calls instead of its interpreter loop, and the runtime helpers
 * generated code calls (slow memory paths, atomics, clocks). Contract: ptx_jit.h.
 *
 * The JIT is the default engine (TF_EMU_ENGINE=interp: the interpreter, the reference).
 * Compiles are driven by one background thread: a kernel's first launch queues it and runs on the
 * interpreter, as do its launches until the code is ready; the next launch after that runs compiled code.
 * So a compile never stalls a program (TF_EMU_JIT_SYNC=1 waits instead, for tests and benchmarks). LLVM
 * itself runs in a compiler process (tf-emu-jitc, ptx_jitc.c) the thread starts per kernel: it writes
 * the object into the disk cache, then hands it back to be linked here. A program that exits during a
 * compile therefore does not wait for it (the process finishes into the cache for the next run); at
 * exit only a link or the plugin's start-up under way in this process (LLVM must not be torn down under
 * it; milliseconds) is waited for. The thread keeps the normal priority: niced, it starved on a loaded
 * machine.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptx_jit.h"
#include "tf_fd_io.h"
#include "ptx_texture.h"
#include "ptx_mma.h"

typedef int32_t (*kern_fn)(ptx_jit_blk *J, uint64_t *R, int32_t *pcs, int32_t *state);

struct ptx_jit_fn {
    kern_fn fn;
};

enum { CE_IDLE, CE_QUEUED, CE_COMPILING, CE_READY, CE_FAILED };

typedef struct centry {
    uint64_t hash;
    uint8_t *key;       /* the serialised program (what the code depends on) */
    size_t keylen;
    struct centry *next;
    ptx_jit_fn f;       /* valid once state is CE_READY */
    int state;          /* CE_*, written under g_mu with atomic stores (CE_READY/FAILED with release),
                         * read without it by ptx_jit_get's fast path */
    int from_disk;
    double compile_ms;
} centry;

typedef struct job {
    centry *ce;
    const ptx_kernel *k; /* only to drop the job when k is freed: the compile reads ce->key */
    char *name;          /* k's name, for messages */
    int ncode;
    uint32_t *lines;     /* k's PTX line per instruction (the compiler's reasons name an instruction index) */
    struct job *next;
} job;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER; /* queue, states, hold and quit changed */
static centry *g_cache;
static job *g_queue, **g_qtail = &g_queue;
static int g_llvm_busy; /* the compile thread is in the plugin (LLVM in this process): exit waits */
static int g_thread_started, g_hold, g_quit;
static int g_engine = -1; /* 0 interp, 1 jit */
static int g_sync, g_trace;

static uint64_t now_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pick_engine(void) {
    const char *e = getenv("TF_EMU_ENGINE");
    const char *tr = getenv("TF_EMU_TRACE");
    const char *sy = getenv("TF_EMU_JIT_SYNC");
    g_trace = tr && *tr && strcmp(tr, "0");
    g_sync = sy && *sy && strcmp(sy, "0");
    /* the JIT is the default: every emulator-facing test passes identically on both engines (make test
     * runs them on both); without the plugin (no LLVM 14 at build) the first compile says so in one
     * tf-emu: line and every kernel runs on the interpreter */
    if (!e || !*e || !strcmp(e, "jit")) g_engine = 1;
    else if (!strcmp(e, "interp")) g_engine = 0;
    else {
        fprintf(stderr, "tf-emu: TF_EMU_ENGINE=%s is neither interp nor jit; using the interpreter\n", e);
        g_engine = 0;
    }
}

/* PTX_JIT_MAX_INSTRUCTIONS: ptx_jit.h */

/* ------------------------------------------------------------------ keys (ptx_jit_key.c) */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}

/* ------------------------------------------------------------------ the plugin */
static const ptx_jit_plugin *g_plugin; /* compile thread only */
static int g_plugin_state;             /* 0 not tried, 1 ready, -1 unavailable (said once) */

static const ptx_jit_host g_host = {
    .abi = PTX_JIT_PLUGIN_ABI,
    .op_name = ptx_op_name,
    .xlate = (void *)ptx_jit_xlate,
    .atom = (void *)ptx_jit_atom,
    .sreg = (void *)ptx_jit_sreg,
    .alu = (void *)ptx_jit_alu,
    .tex = (void *)ptx_jit_tex,
    .cpasync = (void *)ptx_jit_cpasync,
};

static void at_exit_llvm(void);

/* "DIR/file" for the directory of the object that holds addr; 0, or -1 when unknown or absent */
static int beside(char *out, size_t n, const void *addr, const char *file) {
    Dl_info di;
    const char *slash;
    if (!dladdr(addr, &di) || !di.dli_fname || !(slash = strrchr(di.dli_fname, '/'))) return -1;
    int r = snprintf(out, n, "%.*s/%s", (int)(slash - di.dli_fname), di.dli_fname, file);
    return r > 0 && (size_t)r < n && access(out, F_OK) == 0 ? 0 : -1;
}

/* Loads and starts the plugin: $TF_EMU_JIT_PLUGIN, else the file next to this library (found by its
 * own path: a sanitizer's dlopen interceptor hides the caller's RUNPATH), else by name through the
 * RUNPATH ($ORIGIN; unit-test binaries: $ORIGIN/..) and the usual search. */
static int plugin_up(void) {
    if (g_plugin_state) return g_plugin_state > 0;
    g_plugin_state = -1;
    const char *env = getenv("TF_EMU_JIT_PLUGIN");
    void *h = NULL;
    char path[4096];
    if (env && *env) h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    else if (!beside(path, sizeof(path), (void *)plugin_up, PTX_JIT_PLUGIN_FILE)) h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    else h = dlopen(PTX_JIT_PLUGIN_FILE, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "tf-emu: jit: cannot load the JIT plugin (%s); kernels run on the interpreter\n", dlerror());
        return 0;
    }
    ptx_jit_plugin_entry_fn entry = (ptx_jit_plugin_entry_fn)dlsym(h, PTX_JIT_PLUGIN_ENTRY);
    const ptx_jit_plugin *p = entry ? entry() : NULL;
    char why[256] = "";
    if (!p || p->abi != PTX_JIT_PLUGIN_ABI) {
        fprintf(stderr, "tf-emu: jit: %s is not this library's JIT plugin; kernels run on the interpreter\n", PTX_JIT_PLUGIN_FILE);
        return 0;
    }
    /* after LLVM's own constructors ran: at_exit_llvm then runs before LLVM's destructors */
    atexit(at_exit_llvm);
    if (p->init(&g_host, why, sizeof(why))) {
        fprintf(stderr, "tf-emu: jit: %s; kernels run on the interpreter\n", why);
        return 0;
    }
    g_plugin = p;
    g_plugin_state = 1;
    return 1;
}

/* The compile thread calls into the plugin (LLVM in this process) only between these; at_exit_llvm
 * waits for that, and once the process is exiting llvm_enter refuses (0). */
static int llvm_enter(void) {
    pthread_mutex_lock(&g_mu);
    int ok = !g_quit;
    if (ok) g_llvm_busy = 1;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

static void llvm_leave(void) {
    pthread_mutex_lock(&g_mu);
    g_llvm_busy = 0;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

/* ------------------------------------------------------------------ the compiler process */
static char g_jitc[4096];       /* its executable ("" until found) */
static int g_jitc_fd = -1;      /* compile thread: socket to the process serving this one */
static pid_t g_jitc_pid = -1;
static job *g_current;          /* under g_mu: the job the compile thread works on */
static int g_current_sent;      /* under g_mu: its request reached a compiler process (else exit hands it off) */

/* The compiler process's executable: next to $TF_EMU_JIT_PLUGIN, else next to this library, else (unit
 * tests link the driver into their binary) next to the plugin the RUNPATH finds, loading it. */
static const char *jitc_path(void) {
    if (g_jitc[0]) return g_jitc;
    const char *env = getenv("TF_EMU_JIT_PLUGIN"), *slash;
    char path[4096];
    int ok = 0;
    if (env && *env && (slash = strrchr(env, '/')))
        ok = snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - env), env, PTX_JITC_FILE) < (int)sizeof(path) &&
             access(path, X_OK) == 0;
    else if (!env || !*env) {
        ok = !beside(path, sizeof(path), (void *)jitc_path, PTX_JITC_FILE);
        if (!ok && llvm_enter()) {
            if (plugin_up()) ok = !beside(path, sizeof(path), (void *)g_plugin->compile, PTX_JITC_FILE);
            llvm_leave();
        }
    }
    if (!ok) return NULL;
    memcpy(g_jitc, path, sizeof(g_jitc));
    return g_jitc;
}

/* One request (ptx_jit.h) into b. */
static void put_request(ptx_jit_buf *b, const char *name, const char *dir, const centry *ce) {
    uint8_t h[24];
    const uint32_t namelen = (uint32_t)strlen(name), dirlen = dir ? (uint32_t)strlen(dir) : 0;
    const uint64_t plen = ce->keylen;
    memcpy(h, PTX_JITC_REQ, 8);
    memcpy(h + 8, &namelen, 4);
    memcpy(h + 12, &dirlen, 4);
    memcpy(h + 16, &plen, 8);
    ptx_jit_buf_put(b, h, sizeof(h));
    ptx_jit_buf_put(b, name, namelen);
    ptx_jit_buf_put(b, dir ? dir : "", dirlen);
    ptx_jit_buf_put(b, ce->key, ce->keylen);
}

/* Starts the compiler process with in_fd as stdin and out_fd (-1: /dev/null) as stdout, /dev/null as
 * stderr, no other descriptor, the default signal mask, and an environment of only the test knob;
 * niced (PTX_JITC_NICE) when nothing waits for it. */
static pid_t jitc_spawn(int in_fd, int out_fd, int background, char *why, size_t whylen) {
    const char *exe = jitc_path();
    if (!exe) { snprintf(why, whylen, "no compiler process %s next to the JIT plugin", PTX_JITC_FILE); return -1; }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;
    sigemptyset(&none);
    int r = posix_spawn_file_actions_init(&fa);
    if (r) { snprintf(why, whylen, "posix_spawn: %s", strerror(r)); return -1; }
    r = posix_spawnattr_init(&at);
    if (r) { posix_spawn_file_actions_destroy(&fa); snprintf(why, whylen, "posix_spawn: %s", strerror(r)); return -1; }
    r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    if (!r) r = posix_spawnattr_setsigmask(&at, &none);
    if (!r) r = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (!r) r = out_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, out_fd, 1)
                            : posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!r) r = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (!r) r = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    char gate[4200] = "", *envp[2] = {NULL, NULL};
    const char *gv = getenv("TF_EMU_JIT_COMPILE_GATE");
    if (gv && *gv && snprintf(gate, sizeof(gate), "TF_EMU_JIT_COMPILE_GATE=%s", gv) < (int)sizeof(gate)) envp[0] = gate;
    char *argv[] = {(char *)PTX_JITC_FILE, background ? (char *)"--background" : NULL, NULL};
    pid_t pid = -1;
    if (!r) r = posix_spawn(&pid, exe, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (r) { snprintf(why, whylen, "cannot start the compiler process %.160s: %.40s", exe, strerror(r)); return -1; }
    return pid;
}

/* compile thread: forgets the compiler process after it failed (reaped: it has closed its socket) */
static void jitc_drop(void) {
    if (g_jitc_fd < 0) return;
    close(g_jitc_fd);
    g_jitc_fd = -1;
    int st;
    /* ECHILD: the program reaps children itself (SIGCHLD ignored, or a wait for any child) */
    while (waitpid(g_jitc_pid, &st, 0) < 0 && errno == EINTR) {}
    g_jitc_pid = -1;
}

/* compile thread: sends ce's program to this process's compiler process (started on first use; it
 * serves one request after another until this process closes the socket, at its exit) and waits
 * for the answer: 0 with *obj (malloc'ed; *from_disk 1 when it came from the disk cache), or -1 with
 * the reason. dir: the disk cache (NULL: neither read nor written). */
static int jitc_compile(const char *kname, const char *name, const char *dir, const centry *ce, void **obj,
                        size_t *objlen, int *from_disk, char *why, size_t whylen) {
    *obj = NULL;
    if (g_jitc_fd < 0) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
            snprintf(why, whylen, "no socket for the compiler process: %s", strerror(errno));
            return -1;
        }
        pid_t pid = jitc_spawn(sv[1], sv[1], !g_sync, why, whylen);
        close(sv[1]);
        if (pid < 0) { close(sv[0]); return -1; }
        g_jitc_fd = sv[0];
        g_jitc_pid = pid;
    }
    ptx_jit_buf req = {0};
    put_request(&req, name, dir, ce);
    if (req.oom) { free(req.p); snprintf(why, whylen, "out of host memory for a request"); return -1; }
    pthread_mutex_lock(&g_mu);
    const int go = !g_quit; /* else at_exit_handoff took this job */
    if (go) g_current_sent = 1;
    pthread_mutex_unlock(&g_mu);
    if (!go) { free(req.p); snprintf(why, whylen, "the process is exiting"); return -1; }
    if (g_trace) fprintf(stderr, "tf-emu: jit: kernel %s sent to compiler process %d\n", kname, (int)g_jitc_pid);
    int ok = !tf_send_all(g_jitc_fd, req.p, req.n);
    free(req.p);
    /* LLVM starts here only when there is code to link: a program that ends before never loads it */
    uint8_t a[20];
    uint32_t status = 1;
    uint64_t len = 0;
    uint8_t *body = NULL;
    if (ok && !tf_read_exact(g_jitc_fd, a, sizeof(a)) && !memcmp(a, PTX_JITC_ANS, 8)) {
        memcpy(&status, a + 8, 4);
        memcpy(&len, a + 12, 8);
        body = len <= (256u << 20) ? malloc(len + 1) : NULL;
        if (body && tf_read_exact(g_jitc_fd, body, (size_t)len)) { free(body); body = NULL; }
    }
    if (!body) {
        snprintf(why, whylen, "the compiler process (pid %d) ended without an answer", (int)g_jitc_pid);
        jitc_drop();
        return -1;
    }
    if (status != PTX_JITC_COMPILED && status != PTX_JITC_FROM_DISK) {
        body[len] = 0;
        snprintf(why, whylen, "%.250s", (char *)body);
        free(body);
        return -1;
    }
    *obj = body;
    *objlen = (size_t)len;
    *from_disk = status == PTX_JITC_FROM_DISK;
    return 0;
}

/* Makes a kernel's code (compile thread, without g_mu): the compiler process takes it from the disk
 * cache or compiles it (storing it there), and it is linked into this process. */
/* The translator names the instruction it refused as "(instruction N)" (the compiler process's copy of the
 * kernel has no line numbers): the PTX line of that instruction instead. */
static void why_line(char *why, size_t whylen, const uint32_t *lines, int ncode) {
    char *p = strstr(why, "(instruction ");
    int idx;
    if (!p || !lines || sscanf(p, "(instruction %d)", &idx) != 1 || idx < 0 || idx >= ncode) return;
    snprintf(p, whylen - (size_t)(p - why), "(PTX line %u)", lines[idx]);
}

static void make_code(centry *ce, const char *kname, int ncode, const uint32_t *lines) {
    char why[256] = "";
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    void *fn = NULL, *obj = NULL;
    size_t objlen = 0;
    int from_disk = 0;
    char name[48];
    snprintf(name, sizeof(name), "tfk_%016" PRIx64, ce->hash);
    if (ncode > PTX_JIT_MAX_INSTRUCTIONS) {
        snprintf(why, sizeof(why), "%d instructions, above the JIT's limit of %d (compile time)", ncode,
                 PTX_JIT_MAX_INSTRUCTIONS);
        goto done;
    }
    const char *dir = ptx_jit_cache_dir();
    for (int attempt = 0; attempt < 2; attempt++) {
        if (jitc_compile(kname, name, dir, ce, &obj, &objlen, &from_disk, why, sizeof(why))) goto done;
        if (!llvm_enter()) { snprintf(why, sizeof(why), "the process is exiting"); goto done; }
        int bad = !plugin_up() || g_plugin->load(obj, objlen, name, &fn, why, sizeof(why));
        if (g_plugin_state < 0) snprintf(why, sizeof(why), "JIT plugin unavailable");
        llvm_leave();
        free(obj);
        obj = NULL;
        if (!bad) goto done;
        fn = NULL;
        if (!from_disk || g_plugin_state < 0) goto done;
        /* a damaged entry that passed the checksum: compile afresh under another symbol (the bad
         * object may have claimed this one), not through the cache */
        if (g_trace) fprintf(stderr, "tf-emu: jit: cache entry for kernel %s refused (%s); compiling\n", kname, why);
        snprintf(name, sizeof(name), "tfk_%016" PRIx64 "_r", ce->hash);
        dir = NULL;
    }
done:
    free(obj);
    if (!fn) why_line(why, sizeof(why), lines, ncode);
    double ms = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e6;
    if (g_trace) {
        if (fn) fprintf(stderr, "tf-emu: jit: kernel %s %s in %.1f ms (%d instructions; code at %p, symbol %s)\n", kname,
                        from_disk ? "loaded from the disk cache" : "compiled", ms, ncode, fn, name);
        else fprintf(stderr, "tf-emu: jit: kernel %s runs on the interpreter: %s\n", kname, why);
    }
    pthread_mutex_lock(&g_mu);
    ce->compile_ms = ms;
    ce->from_disk = from_disk;
    ce->f.fn = (kern_fn)(uintptr_t)fn;
    __atomic_store_n(&ce->state, fn ? CE_READY : CE_FAILED, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static void *compile_thread(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_mu);
    for (;;) {
        while (!g_quit && (g_hold || !g_queue)) pthread_cond_wait(&g_cv, &g_mu);
        if (g_quit) break;
        /* the shortest kernel first: compile time grows with the length (benchmarks/RESULTS.md, "the PTX
         * JIT's kernel size limit"), so a long kernel queued first does not hold back the short ones
         * behind it (sortingNetworks: 56 and 237 instructions waited for 796) */
        job **best = &g_queue;
        for (job **pp = &g_queue; *pp; pp = &(*pp)->next)
            if ((*pp)->ncode < (*best)->ncode) best = pp;
        job *j = *best;
        *best = j->next;
        g_qtail = &g_queue;
        while (*g_qtail) g_qtail = &(*g_qtail)->next;
        __atomic_store_n(&j->ce->state, CE_COMPILING, __ATOMIC_RELAXED);
        g_current = j;
        g_current_sent = 0;
        pthread_mutex_unlock(&g_mu);
        make_code(j->ce, j->name, j->ncode, j->lines);
        pthread_mutex_lock(&g_mu);
        g_current = NULL;
        free(j->name);
        free(j->lines);
        free(j);
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

/* The exit fence. at_exit_llvm is registered after the plugin's dlopen, so that it runs before LLVM's
 * destructors; but the dlopen registers those destructors (libLLVM's constructors call __cxa_atexit)
 * before plugin_up can register at_exit_llvm, and a process that starts exiting in between (its main
 * thread returned while the compile thread was loading LLVM for the first link of a short program) runs
 * LLVM's destructors at once, newest handlers first, while the compile thread goes on into the plugin's
 * init: LLVMParseCommandLineOptions on destroyed cl::opt objects, "pure virtual method called", abort
 * (20% of runs of tests/cuda/ptds_default_stream, 1 in 300 of graph_launch_stress on the JIT; an exit handler
 * registered before the dlopen runs too late, after those destructors). exit() runs the exiting thread's
 * thread-local destructors before every exit handler, so the fence is one of those, in the main thread:
 * it stops new calls into LLVM (g_quit) and waits for one under way (milliseconds), before any of LLVM's
 * destructors can run. The main thread registers it at its first driver call (cuInit, emu_check_init,
 * emu_ctx_current), also when only other threads launch (tests/cuda/ptds_default_stream.cu aborted so).
 * A main thread that ends with pthread_exit stops the JIT as well (later kernels run on the interpreter);
 * exit() from another thread, or from a main thread that never called the driver, keeps the window
 * (at_exit_handoff still waits for a call under way, which covers an exit that began before the dlopen
 * registered anything). */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso) __attribute__((weak));
extern void *__dso_handle;
static __thread int t_fence_checked;

static void at_main_thread_end(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_mu);
    g_quit = 1;
    pthread_cond_broadcast(&g_cv);
    while (g_llvm_busy) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

void ptx_jit_exit_fence(void) {
    if (t_fence_checked) return;
    t_fence_checked = 1;
    if ((pid_t)syscall(SYS_gettid) != getpid()) return;
    if (!__cxa_thread_atexit_impl || __cxa_thread_atexit_impl(at_main_thread_end, NULL, &__dso_handle))
        fprintf(stderr, "tf-emu: jit: cannot register the exit fence; an exit during the JIT's start-up may abort\n");
}

/* Exit, before LLVM's destructors (registered once the plugin is loaded): no new call into LLVM here,
 * and a link under way in this process finishes first (milliseconds). A compile under way in the
 * compiler process is not waited for: it finishes into the disk cache, and that process ends when it
 * reads the end of its socket. */
static void at_exit_llvm(void) {
    pthread_mutex_lock(&g_mu);
    g_quit = 1;
    pthread_cond_broadcast(&g_cv);
    while (g_llvm_busy) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

/* Exit (registered when the compile thread starts): kernels still queued are handed to a compiler
 * process of their own, whose requests wait in a memory file (nothing here blocks on it), so they
 * reach the disk cache for the next run; without a disk cache they are dropped. A call into the plugin
 * under way is waited for first (as at_exit_llvm does), for an exit the fence above does not cover. */
static void at_exit_handoff(void) {
    pthread_mutex_lock(&g_mu);
    g_quit = 1;
    pthread_cond_broadcast(&g_cv);
    while (g_llvm_busy) pthread_cond_wait(&g_cv, &g_mu);
    ptx_jit_buf req = {0};
    const int current = g_current && !g_current_sent && g_current->ncode <= PTX_JIT_MAX_INSTRUCTIONS;
    const char *dir = g_queue || current ? ptx_jit_cache_dir() : NULL;
    if (dir && current) {
        char name[48];
        snprintf(name, sizeof(name), "tfk_%016" PRIx64, g_current->ce->hash);
        put_request(&req, name, dir, g_current->ce);
    }
    while (g_queue) {
        job *j = g_queue;
        g_queue = j->next;
        if (dir && j->ncode <= PTX_JIT_MAX_INSTRUCTIONS) {
            char name[48];
            snprintf(name, sizeof(name), "tfk_%016" PRIx64, j->ce->hash);
            put_request(&req, name, dir, j->ce);
        }
        __atomic_store_n(&j->ce->state, CE_IDLE, __ATOMIC_RELAXED);
        free(j->name);
        free(j->lines);
        free(j);
    }
    g_qtail = &g_queue;
    pthread_mutex_unlock(&g_mu);
    if (!req.n || req.oom) { free(req.p); return; }
    int fd = memfd_create("tf-emu-jit-requests", MFD_CLOEXEC);
    char why[256];
    if (fd >= 0 && pwrite(fd, req.p, req.n, 0) == (ssize_t)req.n) {
        pid_t pid = jitc_spawn(fd, -1, 1, why, sizeof(why));
        if (pid > 0 && g_trace) fprintf(stderr, "tf-emu: jit: kernels still queued at exit: compiling in process %d for the disk cache\n", (int)pid);
    }
    if (fd >= 0) close(fd);
    free(req.p);
}

/* fork: the child has no compile thread and never launches (emu_init.c: a forked child's driver is not
 * initialised), but it runs the exit handlers above when it calls exit(). The parent forks between
 * calls into LLVM (prepare waits for one under way, milliseconds, as exit does), so the child never
 * inherits g_llvm_busy set with no thread to clear it (its exit hung in at_exit_llvm) nor g_mu held;
 * the child drops the parent's queue (the parent hands it off itself: each child spawned a compiler
 * process for it) and the parent's compiler socket. */
static void fork_prepare(void) {
    pthread_mutex_lock(&g_mu);
    while (g_llvm_busy) pthread_cond_wait(&g_cv, &g_mu);
}

static void fork_parent(void) { pthread_mutex_unlock(&g_mu); }

static void fork_child(void) {
    g_quit = 1;
    g_queue = NULL; /* the parent's jobs: left allocated, the child only exits */
    g_qtail = &g_queue;
    g_current = NULL;
    if (g_jitc_fd >= 0) close(g_jitc_fd);
    g_jitc_fd = -1;
    g_jitc_pid = -1;
    pthread_mutex_unlock(&g_mu);
}

/* under g_mu: queue k for the compile thread, starting the thread on first use */
static int enqueue(centry *ce, const ptx_kernel *k) {
    if (g_quit) return -1;
    if (!g_thread_started) {
        pthread_t t;
        pthread_attr_t a;
        if (pthread_attr_init(&a)) return -1;
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        /* LLVM's code generation recurses deeply on big functions */
        pthread_attr_setstacksize(&a, 16u << 20);
        int r = pthread_create(&t, &a, compile_thread, NULL);
        pthread_attr_destroy(&a);
        if (r) {
            fprintf(stderr, "tf-emu: jit: cannot start the compile thread; kernels run on the interpreter\n");
            return -1;
        }
        g_thread_started = 1;
        atexit(at_exit_handoff);
        if (pthread_atfork(fork_prepare, fork_parent, fork_child))
            fprintf(stderr, "tf-emu: jit: pthread_atfork failed; a forked child that calls exit() may hang\n");
    }
    job *j = calloc(1, sizeof(*j));
    if (!j || !(j->name = strdup(k->name ? k->name : "?"))) { free(j); return -1; }
    j->ce = ce;
    j->k = k;
    j->ncode = k->ncode;
    j->lines = malloc((size_t)(k->ncode > 0 ? k->ncode : 1) * sizeof(uint32_t));
    if (j->lines) for (int i = 0; i < k->ncode; i++) j->lines[i] = k->code[i].line;
    *g_qtail = j;
    g_qtail = &j->next;
    __atomic_store_n(&ce->state, CE_QUEUED, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&g_cv);
    if (g_trace && !g_sync)
        fprintf(stderr, "tf-emu: jit: kernel %s queued for the compile thread; it runs on the interpreter until its code is ready\n", k->name);
    return 0;
}

/* under g_mu: k's cache entry, created (CE_IDLE) on first sight */
static centry *entry_of(const ptx_kernel *k) {
    centry *ce = ((ptx_kernel *)k)->jit;
    if (ce) return ce;
    ptx_jit_buf b = {0};
    ptx_jit_key_program(&b, k);
    if (b.oom) { free(b.p); return NULL; }
    uint64_t h = fnv(0xcbf29ce484222325ull, b.p, b.n);
    for (centry *c = g_cache; c; c = c->next)
        if (c->hash == h && c->keylen == b.n && !memcmp(c->key, b.p, b.n)) { ce = c; break; }
    if (ce) {
        free(b.p);
    } else {
        ce = calloc(1, sizeof(*ce));
        if (!ce) { free(b.p); return NULL; }
        ce->hash = h;
        ce->key = b.p;
        ce->keylen = b.n;
        __atomic_store_n(&ce->state, CE_IDLE, __ATOMIC_RELAXED);
        ce->next = g_cache;
        g_cache = ce;
    }
    __atomic_store_n((centry **)&((ptx_kernel *)k)->jit, ce, __ATOMIC_RELEASE);
    return ce;
}

static void engine_once(void) {
    if (__atomic_load_n(&g_engine, __ATOMIC_ACQUIRE) >= 0) return;
    pthread_mutex_lock(&g_mu);
    if (g_engine < 0) pick_engine();
    pthread_mutex_unlock(&g_mu);
}

const ptx_jit_fn *ptx_jit_get(const ptx_kernel *k, const ptx_launch_cfg *cfg) {
    engine_once();
    if (g_engine != 1 || cfg->cooperative) return NULL;
    centry *ce = __atomic_load_n((centry **)&((ptx_kernel *)k)->jit, __ATOMIC_ACQUIRE);
    if (ce && __atomic_load_n(&ce->state, __ATOMIC_ACQUIRE) == CE_READY) return &ce->f;
    if (ce && __atomic_load_n(&ce->state, __ATOMIC_ACQUIRE) == CE_FAILED) return NULL;
    pthread_mutex_lock(&g_mu);
    ce = entry_of(k);
    if (ce && ce->state == CE_IDLE) enqueue(ce, k);
    if (ce && g_sync) /* ptx_jit_hold (tests) holds the compile and these waits */
        while ((ce->state == CE_QUEUED || ce->state == CE_COMPILING) && !g_hold) pthread_cond_wait(&g_cv, &g_mu);
    int ready = ce && ce->state == CE_READY;
    pthread_mutex_unlock(&g_mu);
    return ready ? &ce->f : NULL;
}

const ptx_jit_fn *ptx_jit_ready(const ptx_kernel *k) {
    centry *ce = __atomic_load_n((centry **)&((ptx_kernel *)k)->jit, __ATOMIC_ACQUIRE);
    return ce && __atomic_load_n(&ce->state, __ATOMIC_ACQUIRE) == CE_READY ? &ce->f : NULL;
}

int ptx_jit_wait(const ptx_kernel *k) {
    pthread_mutex_lock(&g_mu);
    centry *ce = ((ptx_kernel *)k)->jit;
    while (ce && (ce->state == CE_QUEUED || ce->state == CE_COMPILING) && !g_hold) pthread_cond_wait(&g_cv, &g_mu);
    int ready = ce && ce->state == CE_READY;
    pthread_mutex_unlock(&g_mu);
    return ready;
}

void ptx_jit_forget(const ptx_kernel *k) {
    if (!k->jit) return;
    pthread_mutex_lock(&g_mu);
    for (job **pp = &g_queue; *pp;) {
        job *j = *pp;
        if (j->k != k) { pp = &j->next; continue; }
        *pp = j->next;
        if (j->ce->state == CE_QUEUED) __atomic_store_n(&j->ce->state, CE_IDLE, __ATOMIC_RELAXED); /* another kernel with this program queues it again */
        free(j->name);
        free(j->lines);
        free(j);
    }
    g_qtail = &g_queue;
    while (*g_qtail) g_qtail = &(*g_qtail)->next;
    pthread_mutex_unlock(&g_mu);
}

void ptx_jit_hold(int on) {
    pthread_mutex_lock(&g_mu);
    g_hold = on;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

double ptx_jit_compile_info(const ptx_kernel *k, int *from_disk) {
    pthread_mutex_lock(&g_mu);
    centry *ce = ((ptx_kernel *)k)->jit;
    double ms = ce && ce->state == CE_READY ? ce->compile_ms : -1;
    if (from_disk) *from_disk = ce && ce->state == CE_READY ? ce->from_disk : 0;
    pthread_mutex_unlock(&g_mu);
    return ms;
}

double ptx_jit_compile_ms(const ptx_kernel *k) { return ptx_jit_compile_info(k, NULL); }

/* ------------------------------------------------------------------ block runner */
void ptx_jit_blk_setup(ptx_jit_blk *J, uint8_t *smem, uint64_t smem_size, int worker, uint64_t coop_ws) {
    const ptx_launch_cfg *cfg = J->cfg;
    memset(J->f, 0, sizeof(J->f));
    J->f[JF_SMEM] = (uint64_t)(uintptr_t)smem;
    J->f[JF_SMEM_SIZE] = smem_size;
    J->f[JF_NTID_X] = cfg->block[0];
    J->f[JF_NTID_Y] = cfg->block[1];
    J->f[JF_NTID_Z] = cfg->block[2];
    J->f[JF_NCTAID_X] = cfg->grid[0];
    J->f[JF_NCTAID_Y] = cfg->grid[1];
    J->f[JF_NCTAID_Z] = cfg->grid[2];
    J->f[JF_NWARPS] = J->nwarps;
    J->f[JF_SMID] = (uint64_t)worker;
    J->f[JF_NSMID] = (uint64_t)(cfg->worker_threads > 0 ? cfg->worker_threads : 1);
    J->f[JF_ENVREG1] = coop_ws >> 32;
    J->f[JF_ENVREG2] = coop_ws & 0xffffffffu;
    J->f[JF_DYN_SMEM] = cfg->dynamic_shared_bytes;
    J->f[JF_TOTAL_SMEM] = smem_size;
    J->f[JF_PARAM] = (uint64_t)(uintptr_t)cfg->param_buffer;
    J->f[JF_PARAM_SIZE] = cfg->param_buffer_size;
    J->f[JF_ERR] = (uint64_t)(uintptr_t)J->err;
    J->mv.gc = &J->f[JF_GC0_LO];
    J->mv.smem = smem;
    J->mv.smem_size = smem_size;
    J->mv.lmem = J->lmem;
    J->mv.lsize = J->lsize;
    J->mv.cfg = cfg;
    J->mv.env = J->env;
}

void ptx_jit_blk_free(ptx_jit_blk *J) {
    free(J->pcs);
    free(J->state);
    J->pcs = NULL;
    J->state = NULL;
}

/* A special register's 32 lanes for warp w at block start (the lane-dependent ones per lane, the
 * others once: this runs for every warp of every block). */
static void fill_special(ptx_jit_blk *J, uint64_t *v, int sr, unsigned w) {
    const ptx_launch_cfg *cfg = J->cfg;
    const unsigned bx = cfg->block[0], bxy = cfg->block[0] * cfg->block[1];
    uint64_t x;
    switch (sr) {
    case SR_TID_X: case SR_TID_Y: case SR_TID_Z: {
        /* lane l is thread w * 32 + l: its (x, y, z) counted up from lane 0's (no division per lane) */
        const unsigned t0 = w * 32, by = cfg->block[1];
        unsigned t[3] = {t0 % bx, (t0 / bx) % by, t0 / bxy};
        const int dim = sr == SR_TID_X ? 0 : sr == SR_TID_Y ? 1 : 2;
        for (unsigned l = 0; l < 32; l++) {
            v[l] = t[dim];
            if (++t[0] == bx) { t[0] = 0; if (++t[1] == by) { t[1] = 0; t[2]++; } }
        }
        return;
    }
    case SR_LANEID: for (unsigned l = 0; l < 32; l++) v[l] = l; return;
    case SR_LANEMASK_EQ: for (unsigned l = 0; l < 32; l++) v[l] = 1u << l; return;
    case SR_LANEMASK_LT: for (unsigned l = 0; l < 32; l++) v[l] = (1u << l) - 1; return;
    case SR_LANEMASK_LE: for (unsigned l = 0; l < 32; l++) v[l] = l == 31 ? 0xffffffffu : (2u << l) - 1; return;
    case SR_LANEMASK_GT: for (unsigned l = 0; l < 32; l++) v[l] = l == 31 ? 0 : (uint32_t)~((2u << l) - 1); return;
    case SR_LANEMASK_GE: for (unsigned l = 0; l < 32; l++) v[l] = (uint32_t)~((1u << l) - 1); return;
    case SR_NTID_X: x = cfg->block[0]; break;
    case SR_NTID_Y: x = cfg->block[1]; break;
    case SR_NTID_Z: x = cfg->block[2]; break;
    case SR_CTAID_X: x = J->bid[0]; break;
    case SR_CTAID_Y: x = J->bid[1]; break;
    case SR_CTAID_Z: x = J->bid[2]; break;
    case SR_NCTAID_X: x = cfg->grid[0]; break;
    case SR_NCTAID_Y: x = cfg->grid[1]; break;
    case SR_NCTAID_Z: x = cfg->grid[2]; break;
    case SR_WARPID: x = w; break;
    case SR_NWARPID: x = J->nwarps; break;
    case SR_SMID: x = J->f[JF_SMID]; break;
    case SR_NSMID: x = J->f[JF_NSMID]; break;
    case SR_ENVREG1: x = J->f[JF_ENVREG1]; break;
    case SR_ENVREG2: x = J->f[JF_ENVREG2]; break;
    case SR_DYN_SMEM: x = J->f[JF_DYN_SMEM]; break;
    case SR_TOTAL_SMEM: x = J->f[JF_TOTAL_SMEM]; break;
    default: x = ptx_jit_sreg(J, sr); break;
    }
    for (unsigned l = 0; l < 32; l++) v[l] = x;
}

static uint64_t g_blocks_run;
uint64_t ptx_jit_blocks_run(void) { return __atomic_load_n(&g_blocks_run, __ATOMIC_RELAXED); }

int ptx_jit_run_block(const ptx_jit_fn *fn, ptx_jit_blk *J) {
    const unsigned nw = J->nwarps;
    __atomic_fetch_add(&g_blocks_run, 1, __ATOMIC_RELAXED);
    const size_t nslots = (size_t)(J->k->nslots > 0 ? J->k->nslots : 1);
    if (!J->pcs) {
        J->pcs = aligned_alloc(64, (size_t)nw * 32 * sizeof(int32_t)); /* whole 64-byte vectors (2 per warp) */
        J->state = malloc((size_t)nw * sizeof(int32_t));
        if (!J->pcs || !J->state) {
            J->fail(J->owner, PTXE_OUT_OF_MEMORY, "out of host memory for a block");
            return -1;
        }
    }
    J->f[JF_CTAID_X] = J->bid[0];
    J->f[JF_CTAID_Y] = J->bid[1];
    J->f[JF_CTAID_Z] = J->bid[2];
    J->f[JF_RED_COUNT] = J->f[JF_RED_OR] = 0;
    J->f[JF_RED_AND] = 1;
    for (unsigned w = 0; w < nw; w++) {
        unsigned n = J->nthreads - w * 32;
        for (unsigned l = 0; l < 32; l++) J->pcs[w * 32 + l] = l < n ? 0 : PTX_JIT_PC_EXITED;
        J->state[w] = 0;
        uint64_t *R = J->R + (size_t)w * nslots * 32;
        for (int s = 0; s < J->k->nspecials; s++)
            fill_special(J, R + (size_t)J->k->specials[s].slot * 32, J->k->specials[s].sreg, w);
    }
    /* the generated function runs the rounds over the warps and the barriers' releases (ptx_jit.h); it
     * returns here after a round in which a warp yielded, so that a block spinning on a flag stops when
     * another block failed */
    for (;;) {
        int r = fn->fn(J, J->R, J->pcs, J->state);
        if (r <= 0) return r;
        if (__atomic_load_n(J->err, __ATOMIC_RELAXED)) return -1;
    }
}

/* ------------------------------------------------------------------ runtime helpers */
/* the interpreter's fault() message, word for word */
static void fault(ptx_jit_blk *J, const ptx_ins *in, unsigned tid, uint64_t a, uint64_t n, int misaligned) {
    static const char *sn[] = {"generic", "global", "shared", "local", "const", "param"};
    const unsigned *b = J->cfg->block;
    unsigned x = tid % b[0], y = (tid / b[0]) % b[1], z = tid / (b[0] * b[1]);
    char msg[512];
    snprintf(msg, sizeof(msg),
             "%s %s address 0x%llx (%llu bytes, %s) in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
             misaligned ? "misaligned" : "illegal", in->op == OP_ST ? "store to" : in->op == OP_LD ? "load from" : "access to",
             (unsigned long long)a, (unsigned long long)n, in->space < 6 ? sn[in->space] : "?", J->k->name, in->line,
             J->bid[0], J->bid[1], J->bid[2], x, y, z);
    J->fail(J->owner, misaligned ? PTXE_MISALIGNED_ADDRESS : PTXE_ILLEGAL_ADDRESS, msg);
}

int ptx_jit_xlate(ptx_jit_blk *J, int32_t insidx, const uint64_t *addr, uint32_t mask, uint64_t *ptrs) {
    const ptx_ins *in = &J->k->code[insidx];
    const unsigned tot = (unsigned)in->esize * in->vec;
    for (unsigned l = 0; l < 32; l++) {
        ptrs[l] = 0;
        if (!((mask >> l) & 1)) continue;
        const unsigned tid = (unsigned)J->f[JF_CUR_WARP] * 32 + l;
        uint64_t a = addr[l];
        uint8_t *p = ptx_mem_resolve(&J->mv, tid, in->space, a, tot);
        if (!p || (a & (tot - 1))) { fault(J, in, tid, a, tot, p != NULL); return -1; }
        ptrs[l] = (uint64_t)(uintptr_t)p;
    }
    return 0;
}

int ptx_jit_atom(ptx_jit_blk *J, int32_t insidx, const uint64_t *addr, const uint64_t *b, const uint64_t *c, uint32_t mask,
                 uint64_t *out) {
    const ptx_ins *in = &J->k->code[insidx];
    const int es = in->esize;
    for (uint32_t m = mask; m; m &= m - 1) {
        const unsigned l = (unsigned)__builtin_ctz(m);
        const unsigned tid = (unsigned)J->f[JF_CUR_WARP] * 32 + l;
        uint64_t a = addr[l];
        uint8_t *p = ptx_mem_resolve(&J->mv, tid, in->space, a, (uint64_t)es);
        if (!p || (a & (uint64_t)(es - 1))) { fault(J, in, tid, a, (uint64_t)es, p != NULL); return -1; }
        uint64_t old = ptx_atom_do(p, es, in->sub, in->t, b[l], c[l]);
        int sg = in->t == T_S8 || in->t == T_S16 || in->t == T_S32 || in->t == T_S64;
        out[l] = sg && es < 8 ? (uint64_t)((int64_t)(old << (64 - 8 * es)) >> (64 - 8 * es)) : old;
    }
    return 0;
}

uint64_t ptx_jit_sreg(ptx_jit_blk *J, int32_t sr) {
    (void)J;
    return ptx_sreg_time(sr);
}

void ptx_jit_alu(ptx_jit_blk *J, int32_t insidx, const uint64_t *a, const uint64_t *b, const uint64_t *c, const uint64_t *e,
                 uint32_t mask, uint64_t *out) {
    const ptx_ins *in = &J->k->code[insidx];
    for (uint32_t m = mask; m; m &= m - 1) {
        const unsigned l = (unsigned)__builtin_ctz(m);
        out[l] = ptx_alu_lane(in, a[l], b[l], c[l], e[l], &out[32 + l]);
    }
}

/* exec_tex's (ptx_exec.c) tex / tld4 lane by lane, the operands already read from the registers */
int ptx_jit_tex(ptx_jit_blk *J, int32_t insidx, const uint64_t *ops, uint32_t mask, uint64_t *out) {
    const ptx_ins *in = &J->k->code[insidx];
    const int geom = in->sub, nco = in->esize;
    const int arrayed = geom == PTXG_A1D || geom == PTXG_A2D || geom == PTXG_ACUBE;
    const int first = arrayed ? 1 : 0, int_coords = in->t2 == T_S32;
    const int ioff = 1 + nco, ilod = ioff + (in->b >= 0 ? 3 : 0), igrad = ilod;
    const ptx_texdesc *d = NULL;
    uint64_t dh = 0;
    for (uint32_t m = mask; m; m &= m - 1) {
        const unsigned l = (unsigned)__builtin_ctz(m);
#define OP(j) ops[(size_t)(j) * 32 + l]
        const uint64_t h = OP(0);
        if (!d || h != dh) {
            d = ptx_tex_resolve ? ptx_tex_resolve(h, 0) : NULL;
            dh = h;
        }
        if (!d) {
            const unsigned tid = (unsigned)J->f[JF_CUR_WARP] * 32 + l, *b = J->cfg->block;
            unsigned x = tid % b[0], y = (tid / b[0]) % b[1], z = tid / (b[0] * b[1]);
            char msg[512];
            snprintf(msg, sizeof(msg), "%s: 0x%llx is no live texture object, in kernel %s at PTX line %u, block (%u,%u,%u) thread (%u,%u,%u)",
                     ptx_op_name(in->op), (unsigned long long)h, J->k->name, in->line, J->bid[0], J->bid[1], J->bid[2], x, y, z);
            J->fail(J->owner, PTXE_ILLEGAL_ADDRESS, msg);
            return -1;
        }
        float fc[3] = {0, 0, 0};
        int32_t ic[3] = {0, 0, 0};
        for (int k = 0; k < 3 && first + k < nco; k++) {
            uint64_t v = OP(1 + first + k);
            union { uint32_t u; float f; } cv = {(uint32_t)v};
            fc[k] = cv.f;
            ic[k] = (int32_t)v;
        }
        if (int_coords) for (int k = 0; k < 3; k++) fc[k] = (float)ic[k];
        int layer = arrayed ? (int32_t)OP(1) : 0;
        uint32_t o4[4];
        int32_t off[3];
        if (in->b >= 0) for (int k = 0; k < 3; k++) off[k] = (int32_t)OP(ioff + k);
        const int32_t *offp = in->b >= 0 ? off : NULL;
        if (in->op == OP_TLD4) {
            ptx_tex_gather(d, geom, fc, layer, in->rm, offp, in->t == T_F32, o4);
        } else {
            union { uint32_t u; float f; } lv = {in->bop == 1 ? (uint32_t)OP(ilod) : 0};
            float gx[3] = {0, 0, 0}, gy[3] = {0, 0, 0};
            if (in->bop == 2) {
                for (int k = 0; k < 3; k++) {
                    union { uint32_t u; float f; } a = {(uint32_t)OP(igrad + k)}, c = {(uint32_t)OP(igrad + 3 + k)};
                    gx[k] = a.f;
                    gy[k] = c.f;
                }
            }
            ptx_tex_sample(d, geom, fc, ic, int_coords, layer, in->bop, lv.f, gx, gy, offp, in->t == T_F32, o4);
        }
        for (int k = 0; k < 4; k++) out[(size_t)k * 32 + l] = o4[k];
#undef OP
    }
    return 0;
}

int ptx_jit_cpasync(ptx_jit_blk *J, int32_t insidx, const uint64_t *a, const uint64_t *b, const uint64_t *c, uint32_t mask) {
    const ptx_ins *in = &J->k->code[insidx];
    ptx_mma_fault mf;
    if (ptx_mma_cp_async(in, a, b, in->c >= 0 ? c : NULL, &J->mv, mask, &mf)) {
        fault(J, in, (unsigned)J->f[JF_CUR_WARP] * 32 + mf.lane, mf.addr, mf.bytes, mf.misaligned);
        return -1;
    }
    return 0;
}
