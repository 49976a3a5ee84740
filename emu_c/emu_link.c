/* emu_link.c - the JIT linker API (cuLinkCreate / AddData / AddFile / Complete / Destroy), as used by
 * Python JITs (numba, cupy) that link one PTX module and load the "cubin" it produces. The emulated
 * device runs PTX, so linking one PTX input (or a fatbin carrying PTX) yields that PTX text, which
 * cuModuleLoadData accepts. Linking several PTX modules together (relocatable device code) is not
 * emulated: cuLinkComplete then fails with CUDA_ERROR_NOT_SUPPORTED and says so in the error log.
 * Device libraries (CU_JIT_INPUT_LIBRARY, e.g. libcudadevrt) are accepted and ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"

typedef struct emu_link {
    char *ptx;  /* the single PTX input so far */
    size_t len;
    int inputs; /* PTX-bearing inputs added */
    char *errlog;
    size_t errlen;
} emu_link;

static void link_log(emu_link *l, const char *msg)
{
    emu_log("cuLink: %s", msg);
    if (l->errlog && l->errlen)
        snprintf(l->errlog, l->errlen, "%s", msg);
}

EMU_API CUresult cuLinkCreate_v2(unsigned int numOptions, CUjit_option *options, void **optionValues,
                                 CUlinkState *stateOut)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!stateOut || (numOptions && (!options || !optionValues)))
        return CUDA_ERROR_INVALID_VALUE;
    emu_link *l = calloc(1, sizeof(*l));
    if (!l)
        return CUDA_ERROR_OUT_OF_MEMORY;
    for (unsigned i = 0; i < numOptions; i++) {
        if (options[i] == CU_JIT_ERROR_LOG_BUFFER)
            l->errlog = optionValues[i];
        else if (options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
            l->errlen = (size_t)(uintptr_t)optionValues[i];
    }
    if (l->errlog && l->errlen)
        l->errlog[0] = 0;
    if (emu_handle_add(l, EMU_K_LINK)) {
        free(l);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *stateOut = (CUlinkState)l;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLinkAddData_v2(CUlinkState state, CUjitInputType type, void *data, size_t size, const char *name,
                                  unsigned int numOptions, CUjit_option *options, void **optionValues)
{
    (void)name, (void)numOptions, (void)options, (void)optionValues;
    if (!emu_handle_is(state, EMU_K_LINK))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_link *l = (emu_link *)state;
    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    if (type == CU_JIT_INPUT_LIBRARY)
        return CUDA_SUCCESS; /* device runtime libraries: nothing the interpreter needs */
    if (type != CU_JIT_INPUT_PTX && type != CU_JIT_INPUT_FATBINARY && type != CU_JIT_INPUT_CUBIN) {
        link_log(l, "only PTX and fatbin inputs can be linked on the emulated device");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    char log[512];
    char *ptx = NULL;
    size_t len = 0;
    int rc = fatbin_extract_ptx(data, size, EMU_CC_MAJOR * 10 + EMU_CC_MINOR, &ptx,
                                &len, NULL, log, sizeof(log));
    if (rc) {
        link_log(l, log[0] ? log : "input has no PTX");
        return (CUresult)rc;
    }
    if (l->inputs++ == 0) {
        l->ptx = ptx;
        l->len = len;
    } else {
        free(ptx); /* remembered as "more than one": refused at cuLinkComplete */
    }
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLinkAddFile_v2(CUlinkState state, CUjitInputType type, const char *path, unsigned int numOptions,
                                  CUjit_option *options, void **optionValues)
{
    if (!emu_handle_is(state, EMU_K_LINK))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!path)
        return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f)
        return CUDA_ERROR_FILE_NOT_FOUND;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return buf ? CUDA_ERROR_FILE_NOT_FOUND : CUDA_ERROR_OUT_OF_MEMORY;
    }
    buf[n] = 0;
    CUresult rc = cuLinkAddData_v2(state, type, buf, n, path, numOptions, options, optionValues);
    free(buf);
    return rc;
}

EMU_API CUresult cuLinkComplete(CUlinkState state, void **cubinOut, size_t *sizeOut)
{
    if (!emu_handle_is(state, EMU_K_LINK))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_link *l = (emu_link *)state;
    if (!cubinOut)
        return CUDA_ERROR_INVALID_VALUE;
    if (l->inputs != 1) {
        link_log(l, l->inputs ? "linking several PTX modules (relocatable device code) is not emulated"
                              : "nothing to link");
        return l->inputs ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
    }
    *cubinOut = l->ptx; /* PTX text is a loadable image here; owned by the link state */
    if (sizeOut)
        *sizeOut = l->len + 1;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuLinkDestroy(CUlinkState state)
{
    if (!emu_handle_is(state, EMU_K_LINK))
        return CUDA_ERROR_INVALID_HANDLE;
    emu_link *l = (emu_link *)state;
    emu_handle_del(l);
    free(l->ptx);
    free(l);
    return CUDA_SUCCESS;
}
