/* emu_module.c - modules and libraries of the emulated device: cuModuleLoad* / cuLibraryLoad* turn
 * a fatbin, fatbin wrapper or PTX text into a PTX module (ptx.h), cuModuleGetFunction /
 * cuLibraryGetKernel / cuKernelGetFunction hand out functions (a CUkernel and its CUfunction are the
 * same object: one device, one loaded copy), globals, parameter info, function attributes and the
 * occupancy queries cudart makes. cudart 13 registers each program's fatbin with cuLibraryLoadData.
 *
 * Loading is lazy, as CUDA's default CU_MODULE_LAZY_LOADING (CUDA_MODULE_LOADING=EAGER decodes every kernel
 * at load instead): a load reads the module level of the PTX (ptx_module_open: targets, variables, kernel
 * names and parameters) and a kernel's body is decoded at its first cuModuleGetFunction / cuKernelGetFunction
 * / cuFuncLoad, attribute or occupancy query, or launch (emu_func_load). cuBLAS loads ~2,800 modules holding
 * ~9,000 PTX kernels at cublasCreate and launches two of them for an SGEMM.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"

#define EMU_PTX_ISA_MAX 92 /* PTX ISA 9.2: the newest a CUDA 13.2 driver (EMU_DRIVER_VERSION) JIT-compiles */

/* The PTX executor lands separately; until it is linked in these resolve to NULL. */
extern __typeof__(ptx_module_load) ptx_module_load __attribute__((weak));
extern __typeof__(ptx_module_free) ptx_module_free __attribute__((weak));
extern __typeof__(ptx_module_kernel_count) ptx_module_kernel_count __attribute__((weak));
extern __typeof__(ptx_module_kernel_at) ptx_module_kernel_at __attribute__((weak));
extern __typeof__(ptx_kernel_name) ptx_kernel_name __attribute__((weak));
extern __typeof__(ptx_module_get_global) ptx_module_get_global __attribute__((weak));
extern __typeof__(ptx_kernel_param_count) ptx_kernel_param_count __attribute__((weak));
extern __typeof__(ptx_kernel_param_info) ptx_kernel_param_info __attribute__((weak));
extern __typeof__(ptx_kernel_get_attrs) ptx_kernel_get_attrs __attribute__((weak));
extern __typeof__(ptx_module_open) ptx_module_open __attribute__((weak));
extern __typeof__(ptx_kernel_decode) ptx_kernel_decode __attribute__((weak));
extern __typeof__(ptx_kernel_is_decoded) ptx_kernel_is_decoded __attribute__((weak));

/* A library whose image could not be loaded (SASS only, PTX the executor rejects, no executor) still
 * loads: cudart 13 loads every registered fatbin at startup and would otherwise fail every later
 * call, even cudaMalloc. The error is returned when a kernel or global of it is asked for, which
 * cudart reports at the launch - as a GPU without a matching binary does. */
typedef struct emu_library {
    emu_module *mod;
    CUresult load_error;
    char load_log[512];     /* why the load failed */
    atomic_int error_logged;
} emu_library;

static int ptx_available(void)
{
    return ptx_module_load && ptx_module_free && ptx_module_kernel_count && ptx_module_kernel_at &&
           ptx_kernel_name && ptx_module_get_global && ptx_kernel_param_count && ptx_kernel_param_info &&
           ptx_kernel_get_attrs && ptx_module_open && ptx_kernel_decode && ptx_kernel_is_decoded;
}

/* CUDA_MODULE_LOADING: LAZY (the default, as in CUDA >= 12.2 on Linux) or EAGER; cuInit refused any other
 * value (emu_init.c). */
static int eager_loading(void)
{
    static int eager = -1;
    if (eager < 0) {
        const char *v = getenv("CUDA_MODULE_LOADING");
        eager = v && strcmp(v, "EAGER") == 0;
    }
    return eager;
}

/* Modules refused at load for having no image this device runs (a fatbin of SASS only, PTX above the
 * capability): cuBLAS alone loads ~2,500 of them at cublasCreate and never asks for their kernels, so each is
 * logged only under TF_EMU_TRACE; otherwise the count and the first reason make one line at exit, and the reason
 * is logged in full where a program asks such a library for a kernel or variable (library_module), which is
 * where it fails. */
static atomic_int g_refused;
static char g_refused_first[1024];

static void refused_summary(void)
{
    int n = atomic_load(&g_refused);
    if (n > 0)
        emu_log("%d module%s had no image for this device and %s refused at load (the first: %s); a kernel of "
                "one fails where it is asked for; TF_EMU_TRACE=1 logs each", n, n == 1 ? "" : "s",
                n == 1 ? "was" : "were", g_refused_first);
}

static void note_refused(const char *log)
{
    static atomic_int registered;
    if (emu_trace_enabled()) {
        emu_log("module load failed: %s", log);
        return;
    }
    if (!atomic_exchange(&registered, 1)) {
        size_t n = strnlen(log, sizeof(g_refused_first) - 1);
        memcpy(g_refused_first, log, n);
        g_refused_first[n] = 0;
        atexit(refused_summary);
    }
    atomic_fetch_add(&g_refused, 1);
}

static void module_destroy(emu_module *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nfuncs; i++) {
        emu_handle_del(&m->funcs[i]);
        free(m->funcs[i].name);
    }
    free(m->funcs);
    if (m->pm)
        ptx_module_free(m->pm);
    free(m);
}

/* Decodes f's kernel at its first use (every caller that needs more than its name and parameters). The
 * failure (CUDA_ERROR_INVALID_PTX: what a GPU's JIT reports for PTX it cannot compile) is logged once and
 * returned by every later use. */
CUresult emu_func_load(emu_func *f)
{
    if (atomic_load_explicit(&f->loaded, memory_order_acquire))
        return CUDA_SUCCESS;
    if (!f->k || !ptx_kernel_decode)
        return CUDA_ERROR_NOT_SUPPORTED;
    char log[512] = "";
    int rc = ptx_kernel_decode(f->k, log, sizeof(log));
    if (rc) {
        if (!atomic_exchange(&f->load_failed, 1))
            emu_log("kernel %s: %s", f->name, log[0] ? log : "PTX decode failed");
        return (CUresult)rc;
    }
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* a leaf lock: callers may hold emu_lock */
    pthread_mutex_lock(&mu);
    if (!atomic_load(&f->loaded)) {
        ptx_kernel_attrs a;
        ptx_kernel_get_attrs(f->k, &a);
        /* 48 KiB less the static shared memory, until cuFuncSetAttribute raises it */
        f->max_dynamic_shared = (int)(EMU_MAX_SHARED_PER_BLOCK - (a.static_shared_bytes < EMU_MAX_SHARED_PER_BLOCK
                                                                      ? a.static_shared_bytes
                                                                      : EMU_MAX_SHARED_PER_BLOCK));
        atomic_store_explicit(&f->loaded, 1, memory_order_release);
    }
    pthread_mutex_unlock(&mu);
    return CUDA_SUCCESS;
}

/* f's attributes; its kernel is decoded first (a kernel that fails to decode reports only its header's). */
void emu_kernel_attrs(const emu_func *f, ptx_kernel_attrs *a)
{
    memset(a, 0, sizeof(*a));
    a->max_threads_per_block = 1024;
    if (f->k && ptx_kernel_get_attrs && emu_func_load((emu_func *)f) == CUDA_SUCCESS)
        ptx_kernel_get_attrs(f->k, a);
    if (a->max_threads_per_block <= 0 || a->max_threads_per_block > 1024)
        a->max_threads_per_block = 1024;
}

/* image -> module. len = readable bytes if known, else 0. On failure the reason is logged and, if
 * errlog is given, copied there (cuModuleLoadDataEx's CU_JIT_ERROR_LOG_BUFFER). */
static CUresult module_load_log(emu_module **out, const void *image, size_t len, char *errlog, size_t errlen,
                                int *counted);

/* A driver runs PTX only if its .target is at most the device's capability (an `a` target only on
 * exactly that capability, an `f` target within its family), and only PTX ISA versions it knows
 * (CUDA 13.0: up to 9.0). A fatbin whose PTX is above the device is refused as having no image
 * for it; PTX text as ptxas refuses it. */
static int target_check(const ptx_target *t, int from_fatbin, char *log, size_t loglen)
{
    int cc = EMU_CC;
    if (t->isa_major * 10 + t->isa_minor > EMU_PTX_ISA_MAX) {
        snprintf(log, loglen, "PTX ISA version %d.%d is newer than this driver supports (%d.%d)", t->isa_major,
                 t->isa_minor, EMU_PTX_ISA_MAX / 10, EMU_PTX_ISA_MAX % 10);
        return CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
    }
    int ok = t->sm <= cc;
    if (t->suffix == 'a')
        ok = t->sm == cc;
    else if (t->suffix == 'f')
        ok = t->sm <= cc && t->sm / 10 == cc / 10;
    if (ok)
        return 0;
    if (from_fatbin) {
        snprintf(log, loglen,
                 "no kernel image for the device: the PTX targets sm_%d%s, the emulated device has compute "
                 "capability %d.%d (TF_EMU_CC)", t->sm, t->suffix == 'a' ? "a" : t->suffix == 'f' ? "f" : "",
                 cc / 10, cc % 10);
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    if (t->sm <= cc)
        snprintf(log, loglen,
                 "ptxas fatal: .target sm_%d%c is specific to compute capability %d.%d%s; the emulated device has "
                 "%d.%d (TF_EMU_CC)", t->sm, t->suffix, t->sm / 10, t->sm % 10, t->suffix == 'f' ? "'s family" : "",
                 cc / 10, cc % 10);
    else
        snprintf(log, loglen,
                 "ptxas fatal: SM version specified by .target (sm_%d%s) is higher than default SM version assumed "
                 "(sm_%d; TF_EMU_CC)", t->sm, t->suffix == 'a' ? "a" : t->suffix == 'f' ? "f" : "", cc);
    return CUDA_ERROR_INVALID_PTX;
}

static CUresult module_load(emu_module **out, const void *image, size_t len)
{
    emu_printf_flush(); /* CUDA flushes device printf at module load and unload */
    return module_load_log(out, image, len, NULL, 0, NULL);
}

/* *counted (if given): the failure was only counted for the exit summary, not logged (note_refused). */
static CUresult module_load_log(emu_module **out, const void *image, size_t len, char *errlog, size_t errlen,
                                int *counted)
{
    if (counted)
        *counted = 0;
    static atomic_int warned_no_ptx;
    if (!out || !image)
        return CUDA_ERROR_INVALID_VALUE;
    *out = NULL;
    if (errlog && errlen)
        errlog[0] = 0;
    char log[1024];
    char *ptx = NULL;
    size_t n = 0;
    int rc = fatbin_extract_ptx(image, len, (unsigned)EMU_CC, &ptx, &n, NULL, log, sizeof(log));
    ptx_target tgt = {0, 0, 0, 0};
    if (rc == 0 && fatbin_ptx_target(ptx, n, &tgt) == 0)
        rc = target_check(&tgt, fatbin_image_kind(image, len) != IMAGE_PTX, log, sizeof(log));
    if (rc) {
        free(ptx);
        if (log[0]) {
            /* a fatbin without an image for this device is counted (cuBLAS has thousands); a cubin, PTX text
             * and every other failure are a program's explicit request: logged */
            if (rc == CUDA_ERROR_NO_BINARY_FOR_GPU && fatbin_image_kind(image, len) != IMAGE_ELF) {
                note_refused(log);
                if (counted)
                    *counted = !emu_trace_enabled();
            } else
                emu_log("module load failed: %s", log);
            if (errlog && errlen)
                snprintf(errlog, errlen, "%s", log);
        }
        return (CUresult)rc;
    }
    if (!ptx_available()) {
        free(ptx);
        emu_log_once(warned_no_ptx, "module load: this build has no PTX executor (ptx_*.c not linked)");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    emu_module *m = calloc(1, sizeof(*m));
    if (!m) {
        free(ptx);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    m->ptx_target = tgt.sm ? tgt.sm : EMU_CC;
    int err = CUDA_ERROR_INVALID_PTX;
    log[0] = 0;
    m->pm = (eager_loading() ? ptx_module_load : ptx_module_open)(ptx, n, &g_ptx_env, &err, log, sizeof(log));
    free(ptx);
    if (!m->pm) {
        free(m);
        emu_log("PTX load failed: %s", log[0] ? log : "(no reason given)");
        if (errlog && errlen)
            snprintf(errlog, errlen, "%s", log[0] ? log : "PTX load failed");
        return (CUresult)(err ? err : CUDA_ERROR_INVALID_PTX);
    }
    int nk = ptx_module_kernel_count(m->pm);
    m->funcs = calloc(nk > 0 ? (size_t)nk : 1, sizeof(emu_func));
    if (!m->funcs) {
        module_destroy(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < nk; i++) {
        emu_func *f = &m->funcs[i];
        f->mod = m;
        f->k = ptx_module_kernel_at(m->pm, i);
        f->name = strdup(ptx_kernel_name(f->k) ? ptx_kernel_name(f->k) : "");
        f->carveout = -1;
        m->nfuncs = i + 1;
        if (!f->name || emu_handle_add(f, EMU_K_FUNC)) {
            module_destroy(m);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    if (emu_handle_add(m, EMU_K_MODULE)) {
        module_destroy(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (eager_loading())
        for (int i = 0; i < nk; i++)
            (void)emu_func_load(&m->funcs[i]); /* decoded already: sets the attributes that follow from it */
    *out = m;
    return CUDA_SUCCESS;
}

static CUresult read_file(const char *path, char **data, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return CUDA_ERROR_FILE_NOT_FOUND;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, 65536, fp);
        n += got;
        if (got < 65536)
            break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return CUDA_ERROR_FILE_NOT_FOUND;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    EMU_ENTER(c);
    (void)c;
    emu_module *m = NULL;
    CUresult rc = module_load(&m, image, 0);
    if (rc == CUDA_SUCCESS)
        *module = (CUmodule)m;
    return rc;
}

/* JIT options: the error/info log buffers are honoured (sizes written back as the driver does), the
 * wall time is reported; optimisation levels and targets have no meaning for the interpreter. */
EMU_API CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                                    CUjit_option *options, void **optionValues)
{
    EMU_ENTER(c);
    (void)c;
    if (!module || (numOptions && (!options || !optionValues)))
        return CUDA_ERROR_INVALID_VALUE;
    char *errbuf = NULL, *infobuf = NULL;
    size_t errlen = 0, infolen = 0;
    int err_size_at = -1, info_size_at = -1, wall_at = -1;
    for (unsigned i = 0; i < numOptions; i++) {
        switch (options[i]) {
        case CU_JIT_ERROR_LOG_BUFFER: errbuf = optionValues[i]; break;
        case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES: errlen = (size_t)(uintptr_t)optionValues[i]; err_size_at = (int)i; break;
        case CU_JIT_INFO_LOG_BUFFER: infobuf = optionValues[i]; break;
        case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES: infolen = (size_t)(uintptr_t)optionValues[i]; info_size_at = (int)i; break;
        case CU_JIT_WALL_TIME: wall_at = (int)i; break;
        default: break;
        }
    }
    uint64_t t0 = emu_now_ns();
    emu_module *m = NULL;
    CUresult rc = module_load_log(&m, image, 0, errbuf && errlen ? errbuf : NULL, errlen, NULL);
    if (infobuf && infolen)
        infobuf[0] = 0;
    if (err_size_at >= 0)
        optionValues[err_size_at] = (void *)(uintptr_t)(errbuf && errlen ? strlen(errbuf) + 1 : 0);
    if (info_size_at >= 0)
        optionValues[info_size_at] = (void *)(uintptr_t)0;
    if (wall_at >= 0) {
        float ms = (float)((double)(emu_now_ns() - t0) / 1e6);
        memcpy(&optionValues[wall_at], &ms, sizeof(ms));
    }
    if (rc == CUDA_SUCCESS)
        *module = (CUmodule)m;
    return rc;
}

EMU_API CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin) { return cuModuleLoadData(module, fatCubin); }

EMU_API CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
    EMU_ENTER(c);
    (void)c;
    if (!module || !fname)
        return CUDA_ERROR_INVALID_VALUE;
    char *data;
    size_t len;
    CUresult rc = read_file(fname, &data, &len);
    if (rc)
        return rc;
    emu_module *m = NULL;
    rc = module_load(&m, data, len);
    free(data);
    if (rc == CUDA_SUCCESS)
        *module = (CUmodule)m;
    return rc;
}

EMU_API CUresult cuModuleUnload(CUmodule hmod)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    emu_sq_idle_all(); /* queued launches of its kernels run first */
    emu_module *m = (emu_module *)hmod;
    if (!emu_handle_is(m, EMU_K_MODULE) || m->library)
        return CUDA_ERROR_INVALID_HANDLE;
    emu_printf_flush(); /* CUDA flushes device printf at module load and unload */
    emu_handle_del(m);
    module_destroy(m);
    return CUDA_SUCCESS;
}

static emu_func *module_find(emu_module *m, const char *name)
{
    for (int i = 0; i < m->nfuncs; i++)
        if (strcmp(m->funcs[i].name, name) == 0)
            return &m->funcs[i];
    return NULL;
}

EMU_API CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    EMU_ENTER(c);
    (void)c;
    if (!hfunc || !name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hmod, EMU_K_MODULE))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_func *f = module_find((emu_module *)hmod, name);
    if (!f)
        return CUDA_ERROR_NOT_FOUND;
    CUresult rc = emu_func_load(f); /* lazy loading: cuModuleGetFunction loads the function */
    if (rc)
        return rc;
    *hfunc = (CUfunction)f;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuModuleGetFunctionCount(unsigned int *count, CUmodule mod)
{
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(mod, EMU_K_MODULE))
        return CUDA_ERROR_INVALID_HANDLE;
    *count = (unsigned)((emu_module *)mod)->nfuncs;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuModuleEnumerateFunctions(CUfunction *functions, unsigned int numFunctions, CUmodule mod)
{
    if (!functions || numFunctions == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(mod, EMU_K_MODULE))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_module *m = (emu_module *)mod;
    for (unsigned i = 0; i < numFunctions && (int)i < m->nfuncs; i++)
        functions[i] = (CUfunction)&m->funcs[i];
    return CUDA_SUCCESS;
}

EMU_API CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name)
{
    EMU_ENTER(c);
    (void)c;
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(hmod, EMU_K_MODULE))
        return CUDA_ERROR_INVALID_HANDLE;
    uint64_t addr;
    size_t size;
    if (ptx_module_get_global(((emu_module *)hmod)->pm, name, &addr, &size) != 0)
        return CUDA_ERROR_NOT_FOUND;
    if (dptr)
        *dptr = (CUdeviceptr)addr;
    if (bytes)
        *bytes = size;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    if (!mode)
        return CUDA_ERROR_INVALID_VALUE;
    *mode = eager_loading() ? CU_MODULE_EAGER_LOADING : CU_MODULE_LAZY_LOADING;
    return CUDA_SUCCESS;
}

/* ---- libraries (context-independent modules; cudart 12+/13 registers fatbins this way) ---- */
static CUresult library_from(CUlibrary *library, emu_module *m, CUresult load_error, const char *load_log,
                             int logged)
{
    if (load_error == CUDA_ERROR_OUT_OF_MEMORY || load_error == CUDA_ERROR_INVALID_VALUE)
        return load_error;
    emu_library *l = calloc(1, sizeof(*l));
    if (!l || emu_handle_add(l, EMU_K_LIBRARY)) {
        free(l);
        if (m) {
            emu_handle_del(m);
            module_destroy(m);
        }
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    l->mod = m;
    l->load_error = load_error;
    size_t n = load_log ? strnlen(load_log, sizeof(l->load_log) - 1) : 0;
    memcpy(l->load_log, load_log ? load_log : "", n);
    l->load_log[n] = 0;
    atomic_store(&l->error_logged, logged); /* logged at load already: not again when a kernel is asked for */
    if (m)
        m->library = l;
    *library = (CUlibrary)l;
    return CUDA_SUCCESS;
}

/* The library's module, or its deferred load error. */
static CUresult library_module(CUlibrary library, emu_module **m)
{
    if (!emu_handle_is(library, EMU_K_LIBRARY))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_library *l = (emu_library *)library;
    if (l->load_error) {
        if (!atomic_exchange(&l->error_logged, 1))
            emu_log("a kernel or variable was asked of a library that failed to load: %s",
                    l->load_log[0] ? l->load_log : "(no reason given)");
        return l->load_error;
    }
    *m = l->mod;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
                                   void **jitOptionsValues, unsigned int numJitOptions,
                                   CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                   unsigned int numLibraryOptions)
{
    (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions;
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!library || !code)
        return CUDA_ERROR_INVALID_VALUE;
    emu_module *m = NULL;
    char log[512];
    int counted;
    emu_printf_flush(); /* CUDA flushes device printf at module load and unload */
    rc = module_load_log(&m, code, 0, log, sizeof(log), &counted);
    return library_from(library, m, rc, log, !counted);
}

EMU_API CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName, CUjit_option *jitOptions,
                                       void **jitOptionsValues, unsigned int numJitOptions,
                                       CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                       unsigned int numLibraryOptions)
{
    (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions;
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!library || !fileName)
        return CUDA_ERROR_INVALID_VALUE;
    char *data;
    size_t len;
    rc = read_file(fileName, &data, &len);
    if (rc)
        return rc;
    emu_module *m = NULL;
    char log[512];
    int counted;
    emu_printf_flush();
    rc = module_load_log(&m, data, len, log, sizeof(log), &counted);
    free(data);
    return library_from(library, m, rc, log, !counted);
}

EMU_API CUresult cuLibraryUnload(CUlibrary library)
{
    emu_sq_idle_all(); /* queued launches of its kernels run first */
    if (!emu_handle_is(library, EMU_K_LIBRARY))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_library *l = (emu_library *)library;
    emu_handle_del(l);
    if (l->mod) {
        emu_handle_del(l->mod);
        module_destroy(l->mod);
    }
    free(l);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
    if (!pKernel || !name)
        return CUDA_ERROR_INVALID_VALUE;
    emu_module *m = NULL;
    CUresult rc = library_module(library, &m);
    if (rc)
        return rc;
    emu_func *f = module_find(m, name);
    if (!f)
        return CUDA_ERROR_NOT_FOUND;
    *pKernel = (CUkernel)f;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLibraryGetKernelCount(unsigned int *count, CUlibrary lib)
{
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    emu_module *m = NULL;
    CUresult rc = library_module(lib, &m);
    if (rc)
        return rc;
    *count = (unsigned)m->nfuncs;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int numKernels, CUlibrary lib)
{
    if (!kernels)
        return CUDA_ERROR_INVALID_VALUE;
    emu_module *m = NULL;
    CUresult rc = library_module(lib, &m);
    if (rc)
        return rc;
    for (unsigned i = 0; i < numKernels && (int)i < m->nfuncs; i++)
        kernels[i] = (CUkernel)&m->funcs[i];
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
    if (!pMod)
        return CUDA_ERROR_INVALID_VALUE;
    emu_module *m = NULL;
    CUresult rc = library_module(library, &m);
    if (rc)
        return rc;
    *pMod = (CUmodule)m;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    emu_module *m = NULL;
    CUresult rc = library_module(library, &m);
    if (rc)
        return rc;
    uint64_t addr;
    size_t size;
    if (ptx_module_get_global(m->pm, name, &addr, &size) != 0)
        return CUDA_ERROR_NOT_FOUND;
    if (dptr)
        *dptr = (CUdeviceptr)addr;
    if (bytes)
        *bytes = size;
    return CUDA_SUCCESS;
}

emu_func *emu_func_from_handle(const void *h) { return emu_handle_is(h, EMU_K_FUNC) ? (emu_func *)h : NULL; }

EMU_API CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel)
{
    if (!pLib)
        return CUDA_ERROR_INVALID_VALUE;
    emu_func *f = emu_func_from_handle(kernel);
    if (!f || !f->mod->library) /* a function of a cuModuleLoad* module is not a library's kernel */
        return CUDA_ERROR_INVALID_HANDLE;
    *pLib = (CUlibrary)f->mod->library;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    EMU_ENTER(c);
    (void)c;
    if (!pFunc)
        return CUDA_ERROR_INVALID_VALUE;
    emu_func *f = emu_func_from_handle(kernel);
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult rc = emu_func_load(f); /* a library's kernel is loaded when a context asks for its function */
    if (rc)
        return rc;
    *pFunc = (CUfunction)kernel;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuFuncGetModule(CUmodule *hmod, CUfunction hfunc)
{
    emu_func *f = emu_func_from_handle(hfunc);
    if (!hmod)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    *hmod = (CUmodule)f->mod;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuFuncIsLoaded(CUfunctionLoadingState *state, CUfunction function)
{
    if (!state)
        return CUDA_ERROR_INVALID_VALUE;
    emu_func *f = emu_func_from_handle(function);
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    *state = atomic_load(&f->loaded) ? CU_FUNCTION_LOADING_STATE_LOADED : CU_FUNCTION_LOADING_STATE_UNLOADED;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuFuncLoad(CUfunction function)
{
    emu_func *f = emu_func_from_handle(function);
    return f ? emu_func_load(f) : CUDA_ERROR_INVALID_HANDLE;
}

static CUresult func_name(const char **name, const void *h)
{
    emu_func *f = emu_func_from_handle(h);
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    *name = f->name;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuFuncGetName(const char **name, CUfunction hfunc) { return func_name(name, hfunc); }
EMU_API CUresult cuKernelGetName(const char **name, CUkernel hfunc) { return func_name(name, hfunc); }

static CUresult param_info(const void *h, size_t index, size_t *off, size_t *size)
{
    emu_func *f = emu_func_from_handle(h);
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    size_t o = 0, s = 0;
    if ((int)index >= ptx_kernel_param_count(f->k) || ptx_kernel_param_info(f->k, (int)index, &o, &s) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (off)
        *off = o;
    if (size)
        *size = s;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset, size_t *paramSize)
{
    return param_info(func, paramIndex, paramOffset, paramSize);
}

EMU_API CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t *paramOffset, size_t *paramSize)
{
    return param_info(kernel, paramIndex, paramOffset, paramSize);
}

static CUresult func_get_attr(int *pi, CUfunction_attribute attrib, const void *h)
{
    emu_func *f = emu_func_from_handle(h);
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult rc = emu_func_load(f);
    if (rc)
        return rc;
    ptx_kernel_attrs a;
    emu_kernel_attrs(f, &a);
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = a.max_threads_per_block; break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = (int)a.static_shared_bytes; break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *pi = 0; break;
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *pi = (int)a.local_bytes_per_thread; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *pi = a.num_regs; break;
    /* the module's PTX is JIT-compiled for its own target, so both read that target */
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *pi = f->mod ? f->mod->ptx_target : EMU_CC; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *pi = f->max_dynamic_shared; break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *pi = f->carveout; break;
    default:
        if ((int)attrib < 0 || attrib >= CU_FUNC_ATTRIBUTE_MAX)
            return CUDA_ERROR_INVALID_VALUE;
        *pi = 0; /* cache mode, cluster requirements: none */
        break;
    }
    return CUDA_SUCCESS;
}

static CUresult func_set_attr(const void *h, CUfunction_attribute attrib, int value)
{
    emu_func *f = emu_func_from_handle(h);
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult rc = emu_func_load(f);
    if (rc)
        return rc;
    ptx_kernel_attrs a;
    emu_kernel_attrs(f, &a);
    switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        if (value < 0 || (size_t)value + a.static_shared_bytes > EMU_MAX_SHARED_PER_BLOCK_OPTIN)
            return CUDA_ERROR_INVALID_VALUE;
        f->max_dynamic_shared = value;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        if (value < -1 || value > 100)
            return CUDA_ERROR_INVALID_VALUE;
        f->carveout = value;
        return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        return CUDA_SUCCESS; /* clusters are not emulated; accepted and ignored */
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

EMU_API CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    return func_get_attr(pi, attrib, hfunc);
}

EMU_API CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    return func_set_attr(hfunc, attrib, value);
}

EMU_API CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev)
{
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    return func_get_attr(pi, attrib, kernel);
}

EMU_API CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev)
{
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    return func_set_attr(kernel, attrib, val);
}

EMU_API CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
    emu_func *f = emu_func_from_handle(hfunc);
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    f->cache = config;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev)
{
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    return cuFuncSetCacheConfig((CUfunction)kernel, config);
}

EMU_API CUresult cuFuncSetSharedMemConfig(CUfunction hfunc, CUsharedconfig config)
{
    (void)config;
    return emu_func_from_handle(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* ---- occupancy: NVIDIA's calculator over the function's attributes (emu_occupancy, emu_launch.c) ---- */
static int blocks_per_sm(const emu_func *f, int block, size_t dyn) { return emu_occupancy(f, block, dyn); }

EMU_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func, int blockSize,
                                                                      size_t dynamicSMemSize, unsigned int flags)
{
    (void)flags;
    emu_func *f = emu_func_from_handle(func);
    if (!numBlocks)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult lrc = emu_func_load(f);
    if (lrc)
        return lrc;
    *numBlocks = blocks_per_sm(f, blockSize, dynamicSMemSize);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize,
                                                             size_t dynamicSMemSize)
{
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize, dynamicSMemSize, 0);
}

/* CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE changes nothing here: it concerns devices that give shared memory
 * up to cache global loads in L1 when a function asks to (compute capability 5.x), which no capability
 * the emulated device offers does. */
EMU_API CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int *minGridSize, int *blockSize, CUfunction func,
                                                           CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                           size_t dynamicSMemSize, int blockSizeLimit,
                                                           unsigned int flags)
{
    emu_func *f = emu_func_from_handle(func);
    if (!minGridSize || !blockSize || (flags & ~(unsigned)CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE))
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult lrc = emu_func_load(f);
    if (lrc)
        return lrc;
    ptx_kernel_attrs a;
    emu_kernel_attrs(f, &a);
    int limit = blockSizeLimit > 0 && blockSizeLimit < a.max_threads_per_block ? blockSizeLimit : a.max_threads_per_block;
    int best_block = 0, best_occ = 0;
    /* cudaOccMaxPotentialOccupancyBlockSize: the block limit, then down by warps, the first best wins */
    for (int aligned = (limit + 31) / 32 * 32; aligned > 0; aligned -= 32) {
        int b = aligned < limit ? aligned : limit;
        size_t dyn = blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(b) : dynamicSMemSize;
        int occ = blocks_per_sm(f, b, dyn) * b;
        if (occ > best_occ) {
            best_occ = occ;
            best_block = b;
        }
        if (best_occ == 2048) /* every thread slot of the SM */
            break;
    }
    size_t dyn = !best_block ? 0 : blockSizeToDynamicSMemSize ? blockSizeToDynamicSMemSize(best_block) : dynamicSMemSize;
    *blockSize = best_block;
    *minGridSize = best_block ? blocks_per_sm(f, best_block, dyn) * EMU_SM_COUNT : 0;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func,
                                                  CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                  size_t dynamicSMemSize, int blockSizeLimit)
{
    return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func, blockSizeToDynamicSMemSize,
                                                     dynamicSMemSize, blockSizeLimit, CU_OCCUPANCY_DEFAULT);
}

/* ---- clusters: thread block clusters exist from compute capability 9.0 (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH);
 * below it both calculators answer CUDA_ERROR_NOT_SUPPORTED. The emulated device runs a cluster launch as a
 * plain grid (emu_launch.c) and accepts a function's cluster attributes without keeping them (no function
 * has a required cluster size), so: the largest cluster is the portable size, 8 blocks, when a block of the
 * configuration fits on a multiprocessor (0 when none does); the active clusters of a cluster size given
 * in the configuration (CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION: required, at most 8 blocks, dividing the
 * grid, else CUDA_ERROR_INVALID_CLUSTER_SIZE) are the device's active blocks, that many at a time. */
enum { PORTABLE_CLUSTER_SIZE = 8 };

/* The active blocks per multiprocessor of the configuration, and its cluster size (0 when it has none). */
static CUresult cluster_config(CUfunction func, const CUlaunchConfig *config, int *per_sm, unsigned *cluster)
{
    emu_func *f = emu_func_from_handle(func);
    if (!config || (config->numAttrs && !config->attrs))
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    if (EMU_CC < 90)
        return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = emu_func_load(f);
    if (rc)
        return rc;
    unsigned long long block = (unsigned long long)config->blockDimX * config->blockDimY * config->blockDimZ;
    if (block == 0 || block > 1024)
        return CUDA_ERROR_INVALID_VALUE;
    *per_sm = blocks_per_sm(f, (int)block, config->sharedMemBytes);
    *cluster = 0;
    for (unsigned i = 0; i < config->numAttrs; i++) {
        const CUlaunchAttribute *a = &config->attrs[i];
        if (a->id != CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION)
            continue;
        const unsigned x = a->value.clusterDim.x, y = a->value.clusterDim.y, z = a->value.clusterDim.z;
        if (!x || !y || !z || (unsigned long long)x * y * z > PORTABLE_CLUSTER_SIZE || config->gridDimX % x ||
            config->gridDimY % y || config->gridDimZ % z)
            return CUDA_ERROR_INVALID_CLUSTER_SIZE;
        *cluster = x * y * z;
    }
    return CUDA_SUCCESS;
}

EMU_API CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func, const CUlaunchConfig *config)
{
    if (!clusterSize)
        return CUDA_ERROR_INVALID_VALUE;
    int per_sm;
    unsigned cluster;
    CUlaunchConfig plain; /* "the cluster dimensions in config are ignored" */
    if (config) {
        plain = *config;
        plain.numAttrs = 0;
        plain.attrs = NULL;
    }
    CUresult rc = cluster_config(func, config ? &plain : NULL, &per_sm, &cluster);
    if (rc)
        return rc;
    *clusterSize = per_sm > 0 ? PORTABLE_CLUSTER_SIZE : 0;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func, const CUlaunchConfig *config)
{
    if (!numClusters)
        return CUDA_ERROR_INVALID_VALUE;
    int per_sm;
    unsigned cluster;
    CUresult rc = cluster_config(func, config, &per_sm, &cluster);
    if (rc)
        return rc;
    if (!cluster)
        return CUDA_ERROR_INVALID_CLUSTER_SIZE; /* no required size: the configuration must give one */
    *numClusters = per_sm * EMU_SM_COUNT / (int)cluster;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func, int numBlocks,
                                                         int blockSize)
{
    emu_func *f = emu_func_from_handle(func);
    if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult lrc = emu_func_load(f);
    if (lrc)
        return lrc;
    return emu_occupancy_available_dynamic(f, numBlocks, blockSize, dynamicSmemSize);
}

/* __managed__ variables: module globals already live in host-addressable memory. */
EMU_API CUresult cuLibraryGetManaged(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    return cuLibraryGetGlobal(dptr, bytes, library, name);
}
