/* api_module.c - the client stub's hand-written entry points for module and library images: measured here, sent
 * whole (tfModuleLoadImage/tfLibraryLoadImage).
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------- module images */
#define FATBIN_WRAPPER_MAGIC 0x466243b1u
#define FATBIN_MAGIC 0xBA55ED50u

/* Finds the bytes of a module image (fatbin, fatbin wrapper, cubin ELF or PTX text) and their length. */
static int measure_image(const void *image, const void **data, size_t *len)
{
    if (!image) return -1;
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic == FATBIN_WRAPPER_MAGIC) {
        const void *inner;
        memcpy(&inner, (const uint8_t *)image + 8, sizeof inner);
        if (!inner) return -1;
        image = inner;
        memcpy(&magic, image, 4);
    }
    if (magic == FATBIN_MAGIC) {
        uint16_t hsize;
        uint64_t fsize;
        memcpy(&hsize, (const uint8_t *)image + 6, 2);
        memcpy(&fsize, (const uint8_t *)image + 8, 8);
        if (fsize > TF_MAX_FRAME) return -1;
        *data = image;
        *len = (size_t)hsize + (size_t)fsize;
        return 0;
    }
    if (memcmp(image, ELFMAG, SELFMAG) == 0) {
        Elf64_Ehdr eh;
        memcpy(&eh, image, sizeof eh);
        uint64_t end = eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize;
        uint64_t pend = eh.e_phoff + (uint64_t)eh.e_phnum * eh.e_phentsize;
        if (pend > end) end = pend;
        if (end > TF_MAX_FRAME || end < sizeof eh) return -1;
        *data = image;
        *len = (size_t)end;
        return 0;
    }
    size_t n = strnlen(image, TF_MAX_FRAME);  /* PTX text */
    if (n >= TF_MAX_FRAME) return -1;
    *data = image;
    *len = n + 1;
    return 0;
}

CUresult tfs_cuModuleLoadData(CUmodule *module, const void *image)
{
    const void *data;
    size_t len;
    if (!module || measure_image(image, &data, &len)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_tfModuleLoadImage(module, data, len);
}

/* Module files are read here (client side) and travel as images. */
static CUresult read_file(const char *fname, void **data, size_t *len)
{
    if (!fname) return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(fname, "rb");
    if (!f) return CUDA_ERROR_FILE_NOT_FOUND;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            if (cap > TF_MAX_FRAME) { free(buf); fclose(f); return CUDA_ERROR_INVALID_VALUE; }
            uint8_t *b = realloc(buf, cap);
            if (!b) { free(buf); fclose(f); return CUDA_ERROR_OUT_OF_MEMORY; }
            buf = b;
        }
        size_t k = fread(buf + n, 1, 65536, f);
        n += k;
        if (k < 65536) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err || n == 0) { free(buf); return CUDA_ERROR_INVALID_IMAGE; }
    buf[n] = 0;  /* PTX files are text without a terminator */
    *data = buf;
    *len = n + 1;
    return CUDA_SUCCESS;
}

CUresult tfs_cuModuleLoad(CUmodule *module, const char *fname)
{
    void *data;
    size_t len;
    if (!module) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = read_file(fname, &data, &len);
    if (rc) return rc;
    rc = rpc_tfModuleLoadImage(module, data, len);
    free(data);
    return rc;
}

CUresult tfs_cuLibraryLoadFromFile(CUlibrary *library, const char *fileName, CUjit_option *jitOptions,
                                   void **jitOptionsValues, unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                                   void **libraryOptionValues, unsigned int numLibraryOptions)
{
    (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions;
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    void *data;
    size_t len;
    if (!library) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = read_file(fileName, &data, &len);
    if (rc) return rc;
    rc = rpc_tfLibraryLoadImage(library, data, len);
    free(data);
    return rc;
}

CUresult tfs_cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin) { return tfs_cuModuleLoadData(module, fatCubin); }

CUresult tfs_cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options,
                                void **optionValues)
{
    (void)numOptions, (void)options, (void)optionValues;  /* JIT options stay on the client: not forwarded */
    return tfs_cuModuleLoadData(module, image);
}

CUresult tfs_cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues,
                               unsigned int numJitOptions, CUlibraryOption *libraryOptions,
                               void **libraryOptionValues, unsigned int numLibraryOptions)
{
    (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions;
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    const void *data;
    size_t len;
    if (!library || measure_image(code, &data, &len)) return CUDA_ERROR_INVALID_VALUE;
    return rpc_tfLibraryLoadImage(library, data, len);
}

/* Unloading drops the functions of the module, whose cached parameter layouts go too. */
CUresult tfs_cuModuleUnload(CUmodule hmod)
{
    CUresult rc = rpc_cuModuleUnload(hmod);
    if (rc == CUDA_SUCCESS) tf_layouts_forget_all();
    return rc;
}

CUresult tfs_cuLibraryUnload(CUlibrary library)
{
    CUresult rc = rpc_cuLibraryUnload(library);
    if (rc == CUDA_SUCCESS) tf_layouts_forget_all();
    return rc;
}

/* __managed__ variables live at an address the worker's module chose, which this process cannot map
 * reliably: refused with an error (cudart then fails the program's CUDA calls cleanly) instead of
 * handing out an address the host would fault on. cudaMallocManaged memory works (see above). */
CUresult tfs_cuLibraryGetManaged(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name)
{
    (void)dptr, (void)bytes, (void)library;
    NEED_INIT();
    tf_log("__managed__ variable %s: not supported through the remote stub (use cudaMallocManaged)",
           name ? name : "?");
    return CUDA_ERROR_NOT_SUPPORTED;
}
