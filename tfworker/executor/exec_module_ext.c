/* exec_module_ext.c - the executor's hand-written side of JIT linking, enumerating libraries and modules,
 * function/kernel names and cluster occupancy (calls.tbl sections "JIT linking", "enumerating libraries
 * and modules", "occupancy"); called by the generated dispatch. Handles the backend hands out here are
 * registered like every other, so later calls with them pass the dispatch's checks.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "executor.h"

/* A backend entry point no calls.tbl row carries (the row is local in the stub): looked up where the
 * backend was loaded (RTLD_GLOBAL), through the limiter's dlsym when it is preloaded. */
static void *be_sym(tfx *x, const char *name)
{
    return x->has_backend ? dlsym(RTLD_DEFAULT, name) : NULL;
}

/* ------------------------------------------------------------------------------- JIT linking */
/* JIT options are client pointers and values we do not forward: the link runs with none. */
CUresult ex_cuLinkCreate_v2(tfx *x, unsigned int numOptions, CUjit_option *options, void **optionValues,
                            CUlinkState *stateOut)
{
    (void)numOptions;
    if (!x->be.f_cuLinkCreate_v2) return CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuLinkCreate_v2(0, options, optionValues, stateOut);
}

CUresult ex_cuLinkAddData_v2(tfx *x, CUlinkState state, CUjitInputType type, void *data, size_t size, const char *name,
                             unsigned int numOptions, CUjit_option *options, void **optionValues)
{
    (void)numOptions;
    if (!data || size == 0) return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuLinkAddData_v2) return CUDA_ERROR_NOT_SUPPORTED;
    /* PTX text must be terminated: the frame's copy may not be, so link a terminated copy */
    char *copy = malloc(size + 1);
    if (!copy) return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(copy, data, size);
    copy[size] = 0;
    CUresult rc = x->be.f_cuLinkAddData_v2(state, type, copy, type == CU_JIT_INPUT_PTX ? size + 1 : size, name, 0,
                                           options, optionValues);
    free(copy);
    return rc;
}

typedef struct { void *cubin; size_t size; } link_image;  /* owned by the backend's link state */

CUresult ex_tfLinkCompleteSize(tfx *x, CUlinkState state, unsigned long long *size)
{
    CUresult (*complete)(CUlinkState, void **, size_t *) = (CUresult (*)(CUlinkState, void **, size_t *))be_sym(x, "cuLinkComplete");
    if (!complete) return CUDA_ERROR_NOT_SUPPORTED;
    tf_reg_entry *e = tf_reg_get(x, (uint64_t)(uintptr_t)state, TFK_LINK);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    link_image *img = calloc(1, sizeof *img);
    if (!img) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = complete(state, &img->cubin, &img->size);
    if (rc != CUDA_SUCCESS || !img->cubin) {
        free(img);
        return rc != CUDA_SUCCESS ? rc : CUDA_ERROR_UNKNOWN;
    }
    free(e->aux);
    e->aux = img;
    *size = img->size;
    return CUDA_SUCCESS;
}

CUresult ex_tfLinkGetImage(tfx *x, CUlinkState state, void *image, unsigned long long size)
{
    tf_reg_entry *e = tf_reg_get(x, (uint64_t)(uintptr_t)state, TFK_LINK);
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    link_image *img = e->aux;
    if (!img || !image || size != img->size) return CUDA_ERROR_INVALID_VALUE;  /* tfLinkCompleteSize first */
    memcpy(image, img->cubin, img->size);
    return CUDA_SUCCESS;
}

/* -------------------------------------------------------------------------------- enumeration */
CUresult ex_cuLibraryEnumerateKernels(tfx *x, CUkernel *kernels, unsigned int numKernels, CUlibrary lib)
{
    if (!kernels || numKernels == 0) return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuLibraryEnumerateKernels) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuLibraryEnumerateKernels(kernels, numKernels, lib);
    for (unsigned i = 0; rc == CUDA_SUCCESS && i < numKernels; i++)
        tf_reg_add(x, (uint64_t)(uintptr_t)kernels[i], TFK_KERNEL, (uint64_t)(uintptr_t)lib, TFK_LIB);
    return rc;
}

CUresult ex_cuModuleEnumerateFunctions(tfx *x, CUfunction *functions, unsigned int numFunctions, CUmodule mod)
{
    if (!functions || numFunctions == 0) return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuModuleEnumerateFunctions) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuModuleEnumerateFunctions(functions, numFunctions, mod);
    for (unsigned i = 0; rc == CUDA_SUCCESS && i < numFunctions; i++)
        tf_reg_add(x, (uint64_t)(uintptr_t)functions[i], TFK_FUNC, (uint64_t)(uintptr_t)mod, TFK_MOD);
    return rc;
}

/* The name of a function (isKernel 0) or kernel (1) as text, truncated to the reply's 4096 bytes. */
CUresult ex_tfGetName(tfx *x, unsigned long long handle, int isKernel, char *name)
{
    int ok = isKernel ? tf_reg_has(x, handle, TFK_KERNEL)
                      : tf_reg_has(x, handle, TFK_FUNC) || tf_reg_has(x, handle, TFK_KERNEL);
    if (!ok) return CUDA_ERROR_INVALID_HANDLE;
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    CUresult (*get)(const char **, void *) =
        (CUresult (*)(const char **, void *))be_sym(x, isKernel ? "cuKernelGetName" : "cuFuncGetName");
    if (!get) return CUDA_ERROR_NOT_SUPPORTED;
    const char *s = NULL;
    CUresult rc = get(&s, (void *)(uintptr_t)handle);
    if (rc != CUDA_SUCCESS) return rc;
    if (!s) return CUDA_ERROR_UNKNOWN;
    snprintf(name, 4096, "%s", s);
    return CUDA_SUCCESS;
}

/* -------------------------------------------------------------------------- cluster occupancy */
CUresult ex_tfOccupancyCluster(tfx *x, int *out, CUfunction func, const CUlaunchConfig *config, unsigned int numAttrs,
                               const CUlaunchAttribute *attrs, int which)
{
    if (!config || (numAttrs && !attrs) || (which != 0 && which != 1)) return CUDA_ERROR_INVALID_VALUE;
    CUlaunchConfig c = *config;
    if ((uintptr_t)c.hStream > 2 && !tf_reg_has(x, (uint64_t)(uintptr_t)c.hStream, TFK_STREAM))
        return CUDA_ERROR_INVALID_HANDLE;
    c.attrs = numAttrs ? (CUlaunchAttribute *)(uintptr_t)attrs : NULL;  /* the copies that came with the frame */
    c.numAttrs = numAttrs;
    CUresult (*f)(int *, CUfunction, const CUlaunchConfig *) = (CUresult (*)(int *, CUfunction, const CUlaunchConfig *))
        be_sym(x, which ? "cuOccupancyMaxActiveClusters" : "cuOccupancyMaxPotentialClusterSize");
    if (!f) return CUDA_ERROR_NOT_SUPPORTED;
    return f(out, func, &c);
}
