/* ptx_texture.h - textures and surfaces between the emulated driver (emu_array.c: CUDA arrays, texture and
 * surface objects) and the PTX executor (ptx_exec.c: tex, tld4, txq, suld, sust, sured, suq). A texture or surface
 * object handle is a 64-bit value a kernel receives as a parameter (cudaTextureObject_t); the executor asks
 * ptx_tex_resolve for the descriptor behind it. Sampling (addressing, filtering, format conversion) is pure
 * code in ptx_texture.c, following the PTX ISA (texture instructions) and the CUDA programming guide's
 * "Texture Fetching" appendix. No cuda.h here: the driver layer translates its enums into these.
 */
#ifndef TF_EMU_PTX_TEXTURE_H
#define TF_EMU_PTX_TEXTURE_H

#include <stddef.h>
#include <stdint.h>

/* Element formats (a channel's storage) */
enum {
    PTXTF_U8, PTXTF_U16, PTXTF_U32, PTXTF_S8, PTXTF_S16, PTXTF_S32, PTXTF_F16, PTXTF_F32,
    PTXTF_UNORM8, PTXTF_UNORM16, PTXTF_SNORM8, PTXTF_SNORM16, /* always read as normalized floats */
};
/* Addressing modes (CUaddress_mode's values) and filter modes (CUfilter_mode's) */
enum { PTXTA_WRAP = 0, PTXTA_CLAMP = 1, PTXTA_MIRROR = 2, PTXTA_BORDER = 3 };
enum { PTXTF_POINT = 0, PTXTF_LINEAR = 1 };
/* Geometries of tex/suld/sust (the PTX .1d .2d .3d .a1d .a2d .cube .acube) */
enum { PTXG_1D, PTXG_2D, PTXG_3D, PTXG_A1D, PTXG_A2D, PTXG_CUBE, PTXG_ACUBE };
/* Surface out-of-range modes (.trap .clamp .zero) */
enum { PTXS_TRAP, PTXS_CLAMP, PTXS_ZERO };

#define PTX_TEX_MAX_LEVELS 16

/* One mipmap level: texel (x, y, z) is at data + z * slice + y * pitch + x * esize; z counts depth slices,
 * layers, or cubemap faces (face + 6 * layer). */
typedef struct ptx_texlevel {
    uint8_t *data;
    uint32_t w, h, d;
    size_t pitch, slice;
} ptx_texlevel;

typedef struct ptx_texdesc {
    /* resource */
    int fmt, nch;          /* PTXTF_*, channels 1, 2 or 4 */
    unsigned esize;        /* bytes per texel */
    int layered, cubemap;  /* layered: d of each level is the layer count (x6 for cubemap layers) */
    int is_linear;         /* a linear-memory resource (tex1Dfetch: integer index, no filtering) */
    int nlevels;
    ptx_texlevel lv[PTX_TEX_MAX_LEVELS];
    /* sampler (textures only) */
    int addr[3];           /* PTXTA_* per dimension */
    int filter, mip_filter;
    int normalized;        /* coordinates in [0, 1) */
    int read_int;          /* CU_TRSF_READ_AS_INTEGER: 8/16-bit integer formats are not promoted to [0,1] */
    int srgb;
    float border[4];
    float mip_bias, min_lod, max_lod;
    int is_surface;        /* a surface object (suld/sust); else a texture object */
} ptx_texdesc;

/* Set by the driver layer: the descriptor behind a handle a kernel passed, NULL if it is no live texture
 * (want_surface 0) or surface (1) object. NULL hook: every handle is invalid. */
extern const ptx_texdesc *(*ptx_tex_resolve)(uint64_t handle, int want_surface);

/* tex / tex.level / tex.grad: samples t at coords (floats, or integers when int_coords; array layer in
 * layer) and writes 4 components to out as 32-bit patterns: floats when result_float, else the integer
 * values (signed or unsigned per the format). mode: 0 plain (level 0 of a mipmap), 1 explicit lod,
 * 2 gradients (dpdx/dpdy, 3 components each). off: NULL, or the texel offset of the PTX form with operand
 * e (3 integers, in texels of the sampled level, added after normalized coordinates are scaled). */
void ptx_tex_sample(const ptx_texdesc *t, int geom, const float *coords, const int32_t *icoords, int int_coords,
                    int layer, int mode, float lod, const float *dpdx, const float *dpdy, const int32_t *off,
                    int result_float, uint32_t out[4]);
/* tld4.{r,g,b,a}.2d: the four texels bilinear filtering of (x, y) would use, component comp of each, in the
 * order the ISA gives: (i0,j1), (i1,j1), (i1,j0), (i0,j0). off: NULL or the texel offset (as ptx_tex_sample). */
void ptx_tex_gather(const ptx_texdesc *t, int geom, const float *coords, int layer, int comp, const int32_t *off,
                    int result_float, uint32_t out[4]);
/* suld.b / sust.b: x is in bytes, y/z in elements (z = layer for .a1d/.a2d), n bytes accessed. Returns the
 * address to access, NULL for an out-of-range access under .zero (load zeros / drop the store); *trap = 1
 * when .trap hits out of range. Clamp moves the access to the nearest in-range location. */
uint8_t *ptx_surf_addr(const ptx_texdesc *t, int geom, int64_t x, int64_t y, int64_t z, unsigned n, int mode,
                       int *trap);
/* sust.p: converts 4 components (floats when is_float, else integers) into one texel of t's format. */
void ptx_surf_pack(const ptx_texdesc *t, const uint32_t in[4], int is_float, uint8_t *texel);
/* txq/suq queries (PTXQ_*): the value the ISA defines for level lvl. */
enum { PTXQ_WIDTH, PTXQ_HEIGHT, PTXQ_DEPTH, PTXQ_CHANNEL_DATA_TYPE, PTXQ_CHANNEL_ORDER, PTXQ_NORMALIZED,
       PTXQ_FILTER, PTXQ_ADDR0, PTXQ_ADDR1, PTXQ_ADDR2, PTXQ_MIP_LEVELS, PTXQ_SAMPLES, PTXQ_ARRAY_SIZE,
       PTXQ_COUNT };
uint32_t ptx_tex_query(const ptx_texdesc *t, int what, int lvl);
/* Channel size in bytes of a format (0 unknown). */
unsigned ptx_tex_fmt_bytes(int fmt);

#endif
