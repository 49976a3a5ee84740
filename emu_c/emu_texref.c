/* emu_texref.c - the legacy texture and surface references of cuda.h (cuModuleGetTexRef, cuTexRef*,
 * cuModuleGetSurfRef, cuSurfRef*, cuParamSetTexRef): CUDA 13 still declares them (deprecated), so a driver-API
 * program may link against them; the emulated device does not implement them yet (PTX `.texref` variables and
 * `tex` on them are not parsed), and answers CUDA_ERROR_NOT_SUPPORTED with one `tf-emu:` line instead of leaving
 * the program with an undefined symbol. cudart 13 never calls them: it resolves cuModuleGetTexRef/SurfRef through
 * cuGetProcAddress but exports no texture-reference API (no cudaBindTexture*, no __cudaRegisterTexture), so
 * only hand-written driver-API code reaches these.
 *
 * No cuda.h here on purpose: each entry is defined under its exported name with no parameters (it reads none;
 * the C calling convention lets a caller pass any), which the real prototypes would conflict with.
 */
#include <stdatomic.h>
#include <stdio.h>

#define EMU_CUDA_ERROR_NOT_SUPPORTED 801

static atomic_int logged;

static int texref_unsupported(const char *name)
{
    if (!atomic_exchange(&logged, 1))
        fprintf(stderr, "tf-emu: %s: texture/surface references are not supported by the emulated device "
                        "(use texture/surface objects): CUDA_ERROR_NOT_SUPPORTED\n", name);
    return EMU_CUDA_ERROR_NOT_SUPPORTED;
}

#define TEXREF_CALLS(X)                                                                                        \
    X(cuModuleGetTexRef) X(cuModuleGetSurfRef) X(cuParamSetTexRef) X(cuSurfRefGetArray) X(cuSurfRefSetArray) \
    X(cuTexRefCreate) X(cuTexRefDestroy) X(cuTexRefGetAddress) X(cuTexRefGetAddress_v2)                       \
    X(cuTexRefGetAddressMode) X(cuTexRefGetArray) X(cuTexRefGetBorderColor) X(cuTexRefGetFilterMode)          \
    X(cuTexRefGetFlags) X(cuTexRefGetFormat) X(cuTexRefGetMaxAnisotropy) X(cuTexRefGetMipmapFilterMode)       \
    X(cuTexRefGetMipmapLevelBias) X(cuTexRefGetMipmapLevelClamp) X(cuTexRefGetMipmappedArray)                 \
    X(cuTexRefSetAddress) X(cuTexRefSetAddress_v2) X(cuTexRefSetAddress2D) X(cuTexRefSetAddress2D_v2)         \
    X(cuTexRefSetAddress2D_v3) X(cuTexRefSetAddressMode) X(cuTexRefSetArray) X(cuTexRefSetBorderColor)        \
    X(cuTexRefSetFilterMode) X(cuTexRefSetFlags) X(cuTexRefSetFormat) X(cuTexRefSetMaxAnisotropy)            \
    X(cuTexRefSetMipmapFilterMode) X(cuTexRefSetMipmapLevelBias) X(cuTexRefSetMipmapLevelClamp)              \
    X(cuTexRefSetMipmappedArray)

#define DEFINE(name)                                                                                           \
    __attribute__((visibility("default"))) int tfe_##name(void) __asm__(#name);                               \
    int tfe_##name(void) { return texref_unsupported(#name); }
TEXREF_CALLS(DEFINE)
