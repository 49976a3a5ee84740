/* hooks_resolve.c - how calls reach the limiter and how the limiter reaches the real driver.
 *  - LD_PRELOAD: programs linked against libcuda bind to our exported wrappers directly.
 *  - dlsym: cudart dlopens libcuda.so.1 and dlsyms a few entry points from that handle, which bypasses
 *    preloaded objects; our dlsym answers hooked names with the wrapper (and remembers the real one).
 *  - cuGetProcAddress(_v2): cudart resolves everything else through it; the wrapper asks the real one
 *    and hands back our wrapper when the returned function is one we hook.
 * Real functions come from the library's own handle (libcuda.so.1 / libnvidia-ml.so.1), never through
 * our exported names. The hooked-symbol table is hooks.h. */
#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>
#include "hooks.h"
#include "limiter.h"

typedef struct {
    const char *sym, *api;
    int min_version, ptds, lib;
    void *wrapper;
} hook_row;

static const hook_row g_rows[TFL_HOOK_COUNT] = {
#define TFL_HOOK_ROW(area, s, a, v, p, l) [TFL_HOOK_##s] = {#s, a, v, p, l, (void *)&s},
    TFL_HOOKS(TFL_HOOK_ROW)
#undef TFL_HOOK_ROW
};
static _Atomic(void *) g_real[TFL_HOOK_COUNT];
static _Atomic(int) g_tried[TFL_HOOK_COUNT]; /* dlsym of the row's symbol attempted */

typedef void *(*dlsym_fn)(void *, const char *);
static dlsym_fn real_dlsym(void)
{
    static _Atomic(dlsym_fn) fn;
    dlsym_fn f = atomic_load_explicit(&fn, memory_order_acquire);
    if (!f) {
        f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
        if (!f) f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
        atomic_store_explicit(&fn, f, memory_order_release);
    }
    return f;
}

static void *lib_handle(int lib)
{
    static _Atomic(void *) handles[2];
    static const char *names[2] = {"libcuda.so.1", "libnvidia-ml.so.1"};
    void *h = atomic_load_explicit(&handles[lib], memory_order_acquire);
    if (!h) {
        h = dlopen(names[lib], RTLD_NOW | RTLD_NOLOAD);
        if (!h) h = dlopen(names[lib], RTLD_NOW);
        if (h) atomic_store_explicit(&handles[lib], h, memory_order_release);
    }
    return h;
}

void *tfl_lib_sym(int lib, const char *name)
{
    void *h = lib_handle(lib);
    dlsym_fn d = real_dlsym();
    return h && d ? d(h, name) : NULL;
}

static int is_wrapper(void *p)
{
    for (int i = 0; i < TFL_HOOK_COUNT; i++)
        if (g_rows[i].wrapper == p) return 1;
    return 0;
}

/* Records the real function behind row id, unless it is one of ours (resolving through a handle that
 * sees the preloaded object would otherwise make a wrapper call itself). */
static void set_real(int id, void *p)
{
    if (!p || is_wrapper(p)) return;
    void *expected = NULL;
    atomic_compare_exchange_strong(&g_real[id], &expected, p);
}

static void *resolve_row(int id)
{
    void *p = atomic_load_explicit(&g_real[id], memory_order_acquire);
    if (p || atomic_exchange(&g_tried[id], 1)) return p;
    set_real(id, tfl_lib_sym(g_rows[id].lib, g_rows[id].sym));
    return atomic_load_explicit(&g_real[id], memory_order_acquire);
}

void *tfl_real(enum tfl_hook_id id)
{
    void *p = atomic_load_explicit(&g_real[id], memory_order_relaxed);
    return p ? p : resolve_row(id);
}

static int find_row_by_symbol(const char *name)
{
    for (int i = 0; i < TFL_HOOK_COUNT; i++)
        if (strcmp(g_rows[i].sym, name) == 0) return i;
    return -1;
}

/* What cuGetProcAddress should hand out for `api` when the real driver returned `fn`. */
static void *wrap_proc(const char *api, void *fn, int version, cuuint64_t flags)
{
    if (!api || !fn) return fn;
    /* 1. the returned function is a hooked symbol's real function (whatever name it was asked by) */
    for (int i = 0; i < TFL_HOOK_COUNT; i++)
        if (g_rows[i].lib == TFL_LIB_CUDA && resolve_row(i) == fn) return g_rows[i].wrapper;
    /* 2. the library does not export the variant: match by name, version and stream flavour */
    int ptds = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0, best = -1;
    for (int i = 0; i < TFL_HOOK_COUNT; i++) {
        const hook_row *r = &g_rows[i];
        if (r->lib != TFL_LIB_CUDA || strcmp(r->api, api) != 0 || version < r->min_version || r->ptds != ptds) continue;
        if (best < 0 || r->min_version > g_rows[best].min_version) best = i;
    }
    if (best < 0) return fn;
    void *cur = resolve_row(best);
    if (!cur) {
        set_real(best, fn);
    } else if (cur != fn) {
        /* The driver answered with an internal alias of the exported symbol. Same name, version and
         * stream flavour means the same function, so wrap it (calling the exported one) rather than
         * let allocations or launches escape the limiter - except for cuGetProcAddress itself, whose
         * two signatures differ: there only an exact match is safe. */
        if (best == TFL_HOOK_cuGetProcAddress_v2 || best == TFL_HOOK_cuGetProcAddress) return fn;
    }
    return g_rows[best].wrapper;
}

/* glibc declares name nonnull, but a NULL from a buggy caller must not crash us */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnonnull-compare"
TFL_EXPORT void *dlsym(void *handle, const char *name)
{
    dlsym_fn d = real_dlsym();
    if (!d) return NULL;
    if (handle != RTLD_DEFAULT && handle != RTLD_NEXT && name && (name[0] == 'c' || name[0] == 'n')) {
        int id = find_row_by_symbol(name);
        if (id >= 0) {
            void *p = d(handle, name);
            if (!p) return NULL;
            if (is_wrapper(p)) return p;
            if (id == TFL_HOOK_cuGetProcAddress && p == d(handle, "cuGetProcAddress_v2")) {
                set_real(TFL_HOOK_cuGetProcAddress_v2, p); /* one function, _v2 signature */
                return g_rows[TFL_HOOK_cuGetProcAddress_v2].wrapper;
            }
            set_real(id, p);
            return g_rows[id].wrapper;
        }
    }
    return d(handle, name);
}
#pragma GCC diagnostic pop

TFL_EXPORT CUresult CUDAAPI cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                                CUdriverProcAddressQueryResult *symbolStatus)
{
    TFL_REAL(cuGetProcAddress_v2);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(symbol, pfn, cudaVersion, flags, symbolStatus);
    if (r == CUDA_SUCCESS && pfn && *pfn) *pfn = wrap_proc(symbol, *pfn, cudaVersion, flags);
    return r;
}

TFL_EXPORT CUresult CUDAAPI cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    TFL_REAL(cuGetProcAddress);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    CUresult r = real(symbol, pfn, cudaVersion, flags);
    if (r == CUDA_SUCCESS && pfn && *pfn) *pfn = wrap_proc(symbol, *pfn, cudaVersion, flags);
    return r;
}

/* A limit variable that does not parse (local mode) refuses the whole device: the program fails at
 * initialisation with the limiter's one-line reason on stderr, instead of running without a cap. */
TFL_EXPORT CUresult CUDAAPI cuInit(unsigned int Flags)
{
    TFL_REAL(cuInit);
    if (!real) return CUDA_ERROR_NOT_INITIALIZED;
    if (tfl_state_get()->config_refused) return CUDA_ERROR_NOT_INITIALIZED;
    return real(Flags);
}
