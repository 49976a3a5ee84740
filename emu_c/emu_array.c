/* emu_array.c - CUDA arrays, mipmapped arrays, texture objects and surface objects of the emulated device,
 * and the 1D array copies (cuMemcpyAtoH/HtoA/AtoD/DtoA/AtoA). 2D/3D copies to and from arrays go through
 * emu_memory.c's cuMemcpy2D/3D, which asks emu_array_layout for an array's storage.
 *
 * An array is host memory laid out densely: texel (x, y, z) at z * slice + y * pitch + x * esize with pitch =
 * Width * esize and slice = pitch * max(Height, 1); layers and cubemap faces are z. It is charged to device
 * memory like an allocation but is not one (kernels reach it only through texture/surface objects). A texture or
 * surface object is a malloc'd ptx_texdesc (ptx_texture.h) plus what was asked; its address is the handle a
 * kernel receives, and the PTX executor resolves it through ptx_tex_resolve (validated against the handle
 * registry). Objects hold a reference on their arrays, so destroying an array an object still uses keeps its
 * storage until the object goes (CUDA leaves that use undefined; here it stays memory-safe).
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"
#include "ptx_texture.h"

typedef struct emu_array {
    CUDA_ARRAY3D_DESCRIPTOR desc;  /* as created (Height/Depth 0 for 1D/2D) */
    int created_2d;                /* made by cuArrayCreate: cuArray3DGetDescriptor reports Depth 0 */
    int fmt;                       /* PTXTF_* */
    unsigned esize;
    uint32_t w, h, d;              /* storage extents, h and d >= 1 */
    int dev;                       /* the device it was made on (its memory is charged to) */
    size_t pitch, slice, bytes;
    uint8_t *data;
    int refs;                      /* the handle + every object (and a mipmap's ownership) using it */
    int of_mipmap;                 /* a level of a mipmapped array: not destroyed by cuArrayDestroy */
} emu_array;

typedef struct emu_mipmap {
    CUDA_ARRAY3D_DESCRIPTOR desc;
    unsigned levels;
    emu_array *lv[PTX_TEX_MAX_LEVELS];
} emu_mipmap;

typedef struct emu_texobj {
    ptx_texdesc t;                 /* first: what kernels see */
    CUDA_RESOURCE_DESC res;
    CUDA_TEXTURE_DESC tex;
    CUDA_RESOURCE_VIEW_DESC view;
    int has_view;
    emu_array *held[PTX_TEX_MAX_LEVELS];
    int nheld;
} emu_texobj;

/* ---- formats ---- */
static int fmt_of(CUarray_format f, unsigned nch, int *fmt, unsigned *esize)
{
    int x;
    unsigned want = 0; /* channel count fixed by the format */
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: x = PTXTF_U8; break;
    case CU_AD_FORMAT_UNSIGNED_INT16: x = PTXTF_U16; break;
    case CU_AD_FORMAT_UNSIGNED_INT32: x = PTXTF_U32; break;
    case CU_AD_FORMAT_SIGNED_INT8: x = PTXTF_S8; break;
    case CU_AD_FORMAT_SIGNED_INT16: x = PTXTF_S16; break;
    case CU_AD_FORMAT_SIGNED_INT32: x = PTXTF_S32; break;
    case CU_AD_FORMAT_HALF: x = PTXTF_F16; break;
    case CU_AD_FORMAT_FLOAT: x = PTXTF_F32; break;
    case CU_AD_FORMAT_UNORM_INT8X1: x = PTXTF_UNORM8, want = 1; break;
    case CU_AD_FORMAT_UNORM_INT8X2: x = PTXTF_UNORM8, want = 2; break;
    case CU_AD_FORMAT_UNORM_INT8X4: x = PTXTF_UNORM8, want = 4; break;
    case CU_AD_FORMAT_UNORM_INT16X1: x = PTXTF_UNORM16, want = 1; break;
    case CU_AD_FORMAT_UNORM_INT16X2: x = PTXTF_UNORM16, want = 2; break;
    case CU_AD_FORMAT_UNORM_INT16X4: x = PTXTF_UNORM16, want = 4; break;
    case CU_AD_FORMAT_SNORM_INT8X1: x = PTXTF_SNORM8, want = 1; break;
    case CU_AD_FORMAT_SNORM_INT8X2: x = PTXTF_SNORM8, want = 2; break;
    case CU_AD_FORMAT_SNORM_INT8X4: x = PTXTF_SNORM8, want = 4; break;
    case CU_AD_FORMAT_SNORM_INT16X1: x = PTXTF_SNORM16, want = 1; break;
    case CU_AD_FORMAT_SNORM_INT16X2: x = PTXTF_SNORM16, want = 2; break;
    case CU_AD_FORMAT_SNORM_INT16X4: x = PTXTF_SNORM16, want = 4; break;
    default: {
        /* block-compressed, YUV and packed 10-bit formats: real formats this device does not sample */
        static int logged;
        emu_log_once(logged, "CUDA array format 0x%x (block-compressed/YUV/packed) is not supported by the emulated device",
                     (unsigned)f);
        return -2;
    }
    }
    if (nch != 1 && nch != 2 && nch != 4)
        return -1;
    if (want && nch != want)
        return -1;
    *fmt = x;
    *esize = ptx_tex_fmt_bytes(x) * nch;
    return 0;
}

/* ---- device-memory accounting (arrays count toward cuMemGetInfo and the out-of-memory limit) ---- */

static void array_unref(emu_array *a)
{
    int last;
    emu_lock();
    last = --a->refs == 0;
    emu_unlock();
    if (!last)
        return;
    emu_vram_uncharge_dev(a->dev, a->bytes);
    free(a->data);
    free(a);
}

static void array_ref(emu_array *a)
{
    emu_lock();
    a->refs++;
    emu_unlock();
}

/* Validates a 3D descriptor (cuArray3DCreate's rules) and allocates the array. */
static CUresult array_new(const CUDA_ARRAY3D_DESCRIPTOR *dd, emu_array **out)
{
    CUDA_ARRAY3D_DESCRIPTOR d = *dd;
    int fmt;
    unsigned esize;
    int frc = fmt_of(d.Format, d.NumChannels, &fmt, &esize);
    if (frc == -2)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (frc)
        return CUDA_ERROR_INVALID_VALUE;
    const unsigned known = CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST | CUDA_ARRAY3D_CUBEMAP |
                           CUDA_ARRAY3D_TEXTURE_GATHER | CUDA_ARRAY3D_DEPTH_TEXTURE | CUDA_ARRAY3D_COLOR_ATTACHMENT |
                           CUDA_ARRAY3D_SPARSE | CUDA_ARRAY3D_DEFERRED_MAPPING;
    if (d.Flags & ~known)
        return CUDA_ERROR_INVALID_VALUE;
    if (d.Flags & (CUDA_ARRAY3D_SPARSE | CUDA_ARRAY3D_DEFERRED_MAPPING))
        return CUDA_ERROR_NOT_SUPPORTED; /* no sparse mapping on this device (CU_DEVICE_ATTRIBUTE_SPARSE_CUDA_ARRAY_SUPPORTED 0) */
    int layered = (d.Flags & CUDA_ARRAY3D_LAYERED) != 0, cube = (d.Flags & CUDA_ARRAY3D_CUBEMAP) != 0;
    if (d.Width == 0 || (d.Height == 0 && d.Depth != 0 && !layered))
        return CUDA_ERROR_INVALID_VALUE;
    if (cube && (d.Width != d.Height || d.Depth == 0 || d.Depth % 6 != 0 || (!layered && d.Depth != 6)))
        return CUDA_ERROR_INVALID_VALUE;
    if (layered && d.Depth == 0)
        return CUDA_ERROR_INVALID_VALUE;
    /* limits: the device attributes' maxima (texture 1D/2D width 131072, height 65536, 3D 16384, 2048 layers) */
    if (d.Width > 131072 || d.Height > 65536 || (!layered && !cube && d.Depth > 16384) ||
        (d.Depth && !layered && !cube && (d.Width > 16384 || d.Height > 16384)) || (layered && d.Depth > 2048 * (cube ? 6 : 1)) ||
        (cube && d.Width > 32768))
        return CUDA_ERROR_INVALID_VALUE;
    emu_array *a = calloc(1, sizeof(*a));
    if (!a)
        return CUDA_ERROR_OUT_OF_MEMORY;
    a->desc = d;
    a->fmt = fmt;
    a->esize = esize;
    a->w = (uint32_t)d.Width;
    a->h = d.Height ? (uint32_t)d.Height : 1;
    a->d = d.Depth ? (uint32_t)d.Depth : 1;
    a->pitch = (size_t)a->w * esize;
    a->slice = a->pitch * a->h;
    a->bytes = a->slice * a->d;
    a->refs = 1;
    a->dev = emu_cur_dev();
    if (emu_vram_charge_dev(a->dev, a->bytes)) {
        free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    a->data = calloc(1, a->bytes);
    if (!a->data) {
        emu_vram_uncharge_dev(a->dev, a->bytes);
        free(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (emu_handle_add(a, EMU_K_ARRAY)) {
        array_unref(a);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *out = a;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *p)
{
    EMU_ENTER(c);
    (void)c;
    if (!pHandle || !p)
        return CUDA_ERROR_INVALID_VALUE;
    emu_array *a;
    CUresult rc = array_new(p, &a);
    if (rc)
        return rc;
    *pHandle = (CUarray)a;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *p)
{
    EMU_ENTER(c);
    (void)c;
    if (!pHandle || !p)
        return CUDA_ERROR_INVALID_VALUE;
    CUDA_ARRAY3D_DESCRIPTOR d = {p->Width, p->Height, 0, p->Format, p->NumChannels, 0};
    emu_array *a;
    CUresult rc = array_new(&d, &a);
    if (rc)
        return rc;
    a->created_2d = 1;
    *pHandle = (CUarray)a;
    return CUDA_SUCCESS;
}

static emu_array *array_of(CUarray h) { return (h && emu_handle_is(h, EMU_K_ARRAY)) ? (emu_array *)h : NULL; }

EMU_API CUresult cuArrayGetDescriptor_v2(CUDA_ARRAY_DESCRIPTOR *out, CUarray h)
{
    EMU_ENTER(c);
    (void)c;
    emu_array *a = array_of(h);
    if (!a)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    out->Width = a->desc.Width, out->Height = a->desc.Height, out->Format = a->desc.Format;
    out->NumChannels = a->desc.NumChannels;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuArray3DGetDescriptor_v2(CUDA_ARRAY3D_DESCRIPTOR *out, CUarray h)
{
    EMU_ENTER(c);
    (void)c;
    emu_array *a = array_of(h);
    if (!a)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    *out = a->desc;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuArrayDestroy(CUarray h)
{
    EMU_ENTER(c);
    (void)c;
    emu_array *a = array_of(h);
    if (!a || a->of_mipmap)
        return CUDA_ERROR_INVALID_HANDLE;
    emu_sq_idle_all(); /* queued kernels and copies may still use it */
    emu_handle_del(a);
    array_unref(a);
    return CUDA_SUCCESS;
}

/* 0 and the array's storage if h is a live array (emu_memory.c: 2D/3D copies), -1 if not. */
int emu_array_layout(CUarray h, uint8_t **data, size_t *pitch, size_t *height, size_t *bytes)
{
    emu_array *a = array_of(h);
    if (!a)
        return -1;
    *data = a->data, *pitch = a->pitch, *height = a->h, *bytes = a->bytes;
    return 0;
}

/* Arrays here are never sparse, deferred-mapped (both refused at creation) nor multi-planar (NV12 and the other
 * YUV formats are refused), which is what these queries are about: CUDA answers CUDA_ERROR_INVALID_VALUE. */
EMU_API CUresult cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *req, CUarray h, CUdevice dev)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!array_of(h))
        return CUDA_ERROR_INVALID_HANDLE;
    (void)req;
    return CUDA_ERROR_INVALID_VALUE; /* "not allocated with CUDA_ARRAY3D_DEFERRED_MAPPING" */
}

EMU_API CUresult cuArrayGetSparseProperties(CUDA_ARRAY_SPARSE_PROPERTIES *props, CUarray h)
{
    EMU_ENTER(c);
    (void)c;
    if (!array_of(h))
        return CUDA_ERROR_INVALID_HANDLE;
    (void)props;
    return CUDA_ERROR_INVALID_VALUE; /* not a sparse array */
}

EMU_API CUresult cuArrayGetPlane(CUarray *plane, CUarray h, unsigned int planeIdx)
{
    EMU_ENTER(c);
    (void)c;
    if (!array_of(h))
        return CUDA_ERROR_INVALID_HANDLE;
    (void)plane, (void)planeIdx;
    return CUDA_ERROR_INVALID_VALUE; /* not a multi-planar array */
}

/* Elements a 1D texture over linear memory may hold: 2^28, any element size (the limit cuTexObjectCreate checks). */
#define EMU_TEX1D_LINEAR_MAX (1u << 28)
EMU_API CUresult cuDeviceGetTexture1DLinearMaxWidth(size_t *maxWidthInElements, CUarray_format format, unsigned numChannels,
                                                    CUdevice dev)
{
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    int fmt;
    unsigned esize;
    int frc = fmt_of(format, numChannels, &fmt, &esize);
    if (frc == -2)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (frc || !maxWidthInElements)
        return CUDA_ERROR_INVALID_VALUE;
    *maxWidthInElements = EMU_TEX1D_LINEAR_MAX;
    return CUDA_SUCCESS;
}

/* ---- mipmapped arrays ---- */
EMU_API CUresult cuMipmappedArrayCreate(CUmipmappedArray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *p, unsigned int numLevels)
{
    EMU_ENTER(c);
    (void)c;
    if (!pHandle || !p || numLevels == 0)
        return CUDA_ERROR_INVALID_VALUE;
    size_t w = p->Width, h = p->Height, dd = p->Depth;
    int layered = (p->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) != 0;
    size_t big = w > h ? w : h;
    if (!layered && dd > big)
        big = dd;
    unsigned maxl = 1;
    while (big >> maxl)
        maxl++;
    if (numLevels > maxl || numLevels > PTX_TEX_MAX_LEVELS)
        return CUDA_ERROR_INVALID_VALUE;
    emu_mipmap *m = calloc(1, sizeof(*m));
    if (!m)
        return CUDA_ERROR_OUT_OF_MEMORY;
    m->desc = *p;
    m->levels = numLevels;
    for (unsigned l = 0; l < numLevels; l++) {
        CUDA_ARRAY3D_DESCRIPTOR ld = *p;
        ld.Width = w >> l ? w >> l : 1;
        ld.Height = h ? (h >> l ? h >> l : 1) : 0;
        ld.Depth = (dd && !layered) ? (dd >> l ? dd >> l : 1) : dd;
        CUresult rc = array_new(&ld, &m->lv[l]);
        if (rc) {
            for (unsigned k = 0; k < l; k++) {
                emu_handle_del(m->lv[k]);
                array_unref(m->lv[k]);
            }
            free(m);
            return rc;
        }
        m->lv[l]->of_mipmap = 1;
    }
    if (emu_handle_add(m, EMU_K_MIPMAP)) {
        for (unsigned k = 0; k < numLevels; k++) {
            emu_handle_del(m->lv[k]);
            array_unref(m->lv[k]);
        }
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pHandle = (CUmipmappedArray)m;
    return CUDA_SUCCESS;
}

static emu_mipmap *mipmap_of(CUmipmappedArray h) { return (h && emu_handle_is(h, EMU_K_MIPMAP)) ? (emu_mipmap *)h : NULL; }

EMU_API CUresult cuMipmappedArrayGetLevel(CUarray *pLevelArray, CUmipmappedArray h, unsigned int level)
{
    EMU_ENTER(c);
    (void)c;
    emu_mipmap *m = mipmap_of(h);
    if (!m)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!pLevelArray || level >= m->levels)
        return CUDA_ERROR_INVALID_VALUE;
    *pLevelArray = (CUarray)m->lv[level];
    return CUDA_SUCCESS;
}

EMU_API CUresult cuMipmappedArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *req, CUmipmappedArray h, CUdevice dev)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_check_device(dev);
    if (rc)
        return rc;
    if (!mipmap_of(h))
        return CUDA_ERROR_INVALID_HANDLE;
    (void)req;
    return CUDA_ERROR_INVALID_VALUE; /* see cuArrayGetMemoryRequirements */
}

EMU_API CUresult cuMipmappedArrayGetSparseProperties(CUDA_ARRAY_SPARSE_PROPERTIES *props, CUmipmappedArray h)
{
    EMU_ENTER(c);
    (void)c;
    if (!mipmap_of(h))
        return CUDA_ERROR_INVALID_HANDLE;
    (void)props;
    return CUDA_ERROR_INVALID_VALUE;
}

EMU_API CUresult cuMipmappedArrayDestroy(CUmipmappedArray h)
{
    EMU_ENTER(c);
    (void)c;
    emu_mipmap *m = mipmap_of(h);
    if (!m)
        return CUDA_ERROR_INVALID_HANDLE;
    emu_sq_idle_all();
    emu_handle_del(m);
    for (unsigned k = 0; k < m->levels; k++) {
        emu_handle_del(m->lv[k]);
        array_unref(m->lv[k]);
    }
    free(m);
    return CUDA_SUCCESS;
}

/* ---- 1D copies with arrays: byte offsets into the array's dense storage ---- */
static CUresult array_span(CUarray h, size_t off, size_t n, uint8_t **p)
{
    emu_array *a = array_of(h);
    if (!a)
        return CUDA_ERROR_INVALID_HANDLE;
    if (off > a->bytes || n > a->bytes - off)
        return CUDA_ERROR_INVALID_VALUE;
    *p = a->data + off;
    return CUDA_SUCCESS;
}

static CUresult copy_array1d(uint8_t *dst_host, CUdeviceptr dst_dev, CUarray dst_arr, size_t dst_off,
                             const uint8_t *src_host, CUdeviceptr src_dev, CUarray src_arr, size_t src_off, size_t n,
                             CUstream s, int sync)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(s);
    if (rc)
        return rc;
    uint8_t *d = dst_host, *sp = (uint8_t *)(uintptr_t)src_host;
    if (dst_arr && (rc = array_span(dst_arr, dst_off, n, &d)))
        return rc;
    if (src_arr && (rc = array_span(src_arr, src_off, n, &sp)))
        return rc;
    if (dst_dev) {
        if (n && !emu_mem_check(dst_dev, n))
            return CUDA_ERROR_INVALID_VALUE;
        d = (uint8_t *)(uintptr_t)dst_dev;
    }
    if (src_dev) {
        if (n && !emu_mem_check(src_dev, n))
            return CUDA_ERROR_INVALID_VALUE;
        sp = (uint8_t *)(uintptr_t)src_dev;
    }
    if (n && (!d || !sp))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(s)) {
        emu_capture_invalidate(s); /* array copies are not captured into graphs here */
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    return n ? emu_copy_bytes(s, d, sp, n, sync, (dst_arr ? EMU_COPY_DST_ARRAY : 0) | (src_arr ? EMU_COPY_SRC_ARRAY : 0))
             : CUDA_SUCCESS; /* in stream order (emu_stream_queue.c) */
}

EMU_API CUresult cuMemcpyAtoH_v2(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount)
{
    return copy_array1d(dstHost, 0, NULL, 0, NULL, 0, srcArray, srcOffset, ByteCount, NULL, 1);
}
EMU_API CUresult cuMemcpyAtoHAsync_v2(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount, CUstream s)
{
    return copy_array1d(dstHost, 0, NULL, 0, NULL, 0, srcArray, srcOffset, ByteCount, s, 0);
}
EMU_API CUresult cuMemcpyHtoA_v2(CUarray dstArray, size_t dstOffset, const void *srcHost, size_t ByteCount)
{
    return copy_array1d(NULL, 0, dstArray, dstOffset, srcHost, 0, NULL, 0, ByteCount, NULL, 1);
}
EMU_API CUresult cuMemcpyHtoAAsync_v2(CUarray dstArray, size_t dstOffset, const void *srcHost, size_t ByteCount, CUstream s)
{
    return copy_array1d(NULL, 0, dstArray, dstOffset, srcHost, 0, NULL, 0, ByteCount, s, 0);
}
EMU_API CUresult cuMemcpyAtoD_v2(CUdeviceptr dstDevice, CUarray srcArray, size_t srcOffset, size_t ByteCount)
{
    if (!dstDevice)
        return CUDA_ERROR_INVALID_VALUE;
    return copy_array1d(NULL, dstDevice, NULL, 0, NULL, 0, srcArray, srcOffset, ByteCount, NULL, 1);
}
EMU_API CUresult cuMemcpyDtoA_v2(CUarray dstArray, size_t dstOffset, CUdeviceptr srcDevice, size_t ByteCount)
{
    if (!srcDevice)
        return CUDA_ERROR_INVALID_VALUE;
    return copy_array1d(NULL, 0, dstArray, dstOffset, NULL, srcDevice, NULL, 0, ByteCount, NULL, 1);
}
EMU_API CUresult cuMemcpyAtoA_v2(CUarray dstArray, size_t dstOffset, CUarray srcArray, size_t srcOffset, size_t ByteCount)
{
    if (!dstArray || !srcArray)
        return CUDA_ERROR_INVALID_HANDLE;
    return copy_array1d(NULL, 0, dstArray, dstOffset, NULL, 0, srcArray, srcOffset, ByteCount, NULL, 1);
}

/* ---- texture and surface objects ---- */
static void level_of(const emu_array *a, ptx_texlevel *L)
{
    L->data = a->data, L->w = a->w, L->h = a->h, L->d = a->d, L->pitch = a->pitch, L->slice = a->slice;
}

static int obj_hold(emu_texobj *o, emu_array *a)
{
    if (o->nheld >= PTX_TEX_MAX_LEVELS)
        return -1;
    array_ref(a);
    o->held[o->nheld++] = a;
    return 0;
}

static void obj_free(emu_texobj *o)
{
    for (int k = 0; k < o->nheld; k++)
        array_unref(o->held[k]);
    free(o);
}

/* Fills o->t's resource part from a resource descriptor; surface: only arrays with SURFACE_LDST. */
static CUresult resource_of(const CUDA_RESOURCE_DESC *r, emu_texobj *o, int surface)
{
    ptx_texdesc *t = &o->t;
    if (r->flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    switch (r->resType) {
    case CU_RESOURCE_TYPE_ARRAY: {
        emu_array *a = array_of(r->res.array.hArray);
        if (!a)
            return CUDA_ERROR_INVALID_HANDLE;
        if (surface && !(a->desc.Flags & CUDA_ARRAY3D_SURFACE_LDST))
            return CUDA_ERROR_INVALID_VALUE;
        t->fmt = a->fmt, t->nch = (int)a->desc.NumChannels, t->esize = a->esize;
        t->layered = (a->desc.Flags & CUDA_ARRAY3D_LAYERED) != 0;
        t->cubemap = (a->desc.Flags & CUDA_ARRAY3D_CUBEMAP) != 0;
        t->nlevels = 1;
        level_of(a, &t->lv[0]);
        return obj_hold(o, a) ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY: {
        if (surface)
            return CUDA_ERROR_INVALID_VALUE;
        emu_mipmap *m = mipmap_of(r->res.mipmap.hMipmappedArray);
        if (!m)
            return CUDA_ERROR_INVALID_HANDLE;
        emu_array *a = m->lv[0];
        t->fmt = a->fmt, t->nch = (int)a->desc.NumChannels, t->esize = a->esize;
        t->layered = (a->desc.Flags & CUDA_ARRAY3D_LAYERED) != 0;
        t->cubemap = (a->desc.Flags & CUDA_ARRAY3D_CUBEMAP) != 0;
        t->nlevels = (int)m->levels;
        for (unsigned l = 0; l < m->levels; l++) {
            level_of(m->lv[l], &t->lv[l]);
            if (obj_hold(o, m->lv[l]))
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_LINEAR:
    case CU_RESOURCE_TYPE_PITCH2D: {
        if (surface)
            return CUDA_ERROR_INVALID_VALUE;
        int lin = r->resType == CU_RESOURCE_TYPE_LINEAR;
        CUdeviceptr p = lin ? r->res.linear.devPtr : r->res.pitch2D.devPtr;
        int fmt;
        unsigned esize;
        int frc = fmt_of(lin ? r->res.linear.format : r->res.pitch2D.format,
                         lin ? r->res.linear.numChannels : r->res.pitch2D.numChannels, &fmt, &esize);
        if (frc == -2)
            return CUDA_ERROR_NOT_SUPPORTED;
        if (frc || !p)
            return CUDA_ERROR_INVALID_VALUE;
        /* CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT (512) for linear, TEXTURE_PITCH_ALIGNMENT (32) for pitch2D */
        size_t w, h, pitch;
        if (lin) {
            if (p % 512 || r->res.linear.sizeInBytes == 0 || r->res.linear.sizeInBytes / esize > EMU_TEX1D_LINEAR_MAX)
                return CUDA_ERROR_INVALID_VALUE;
            w = r->res.linear.sizeInBytes / esize, h = 1, pitch = r->res.linear.sizeInBytes;
        } else {
            w = r->res.pitch2D.width, h = r->res.pitch2D.height, pitch = r->res.pitch2D.pitchInBytes;
            if (p % 32 || pitch % 32 || w == 0 || h == 0 || w > 131072 || h > 65536 || pitch < w * esize)
                return CUDA_ERROR_INVALID_VALUE;
        }
        if (!emu_mem_check(p, (h - 1) * pitch + w * esize))
            return CUDA_ERROR_INVALID_VALUE;
        t->fmt = fmt, t->nch = (int)(lin ? r->res.linear.numChannels : r->res.pitch2D.numChannels), t->esize = esize;
        t->is_linear = lin;
        t->nlevels = 1;
        t->lv[0] = (ptx_texlevel){(uint8_t *)(uintptr_t)p, (uint32_t)w, (uint32_t)h, 1, pitch, pitch * h};
        return CUDA_SUCCESS;
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

/* A resource view (cuTexObjectCreate's rules in cuda.h): arrays and mipmapped arrays only; the format reinterprets
 * texels of the same size (block-compressed views are not emulated: CUDA_ERROR_NOT_SUPPORTED); width, height and
 * depth equal the resource's (0 is taken as "the resource's"); firstMipmapLevel becomes level 0 (the sampler's
 * level clamps are then relative to it, as CUDA says) and firstLayer layer 0; level and layer ranges must lie in
 * the resource and be 0 where it has no levels / layers. Narrows t in place. */
static CUresult view_of(const CUDA_RESOURCE_DESC *r, const CUDA_RESOURCE_VIEW_DESC *v, ptx_texdesc *t)
{
    if (r->resType != CU_RESOURCE_TYPE_ARRAY && r->resType != CU_RESOURCE_TYPE_MIPMAPPED_ARRAY)
        return CUDA_ERROR_INVALID_VALUE;
    for (int k = 0; k < 16; k++)
        if (v->reserved[k])
            return CUDA_ERROR_INVALID_VALUE;
    const CUDA_ARRAY3D_DESCRIPTOR *base = r->resType == CU_RESOURCE_TYPE_ARRAY
                                              ? &array_of(r->res.array.hArray)->desc
                                              : &mipmap_of(r->res.mipmap.hMipmappedArray)->desc;
    if (v->format != CU_RES_VIEW_FORMAT_NONE) {
        /* formats 0x01..0x18: {UINT, SINT} x {8, 16, 32 bits} x {1, 2, 4 channels}, then FLOAT x {16, 32} */
        static const int kinds[] = {PTXTF_U8, PTXTF_S8, PTXTF_U16, PTXTF_S16, PTXTF_U32, PTXTF_S32, PTXTF_F16, PTXTF_F32};
        unsigned f = (unsigned)v->format;
        if (f > CU_RES_VIEW_FORMAT_FLOAT_4X32) {
            static int logged;
            emu_log_once(logged, "cuTexObjectCreate: block-compressed resource view formats are not supported by the emulated device");
            return f <= CU_RES_VIEW_FORMAT_UNSIGNED_BC7 ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE;
        }
        int fmt = kinds[(f - 1) / 3], nch = 1 << ((f - 1) % 3);
        unsigned esize = ptx_tex_fmt_bytes(fmt) * (unsigned)nch;
        if (esize != t->esize)
            return CUDA_ERROR_INVALID_VALUE; /* a view keeps the texel size (widths must match) */
        t->fmt = fmt, t->nch = nch;
    }
    if ((v->width && v->width != base->Width) || (v->height && v->height != base->Height) ||
        (v->depth && v->depth != base->Depth))
        return CUDA_ERROR_INVALID_VALUE;
    if (v->lastMipmapLevel < v->firstMipmapLevel || v->lastMipmapLevel >= (unsigned)t->nlevels)
        return CUDA_ERROR_INVALID_VALUE;
    int n = (int)(v->lastMipmapLevel - v->firstMipmapLevel + 1);
    memmove(&t->lv[0], &t->lv[v->firstMipmapLevel], (size_t)n * sizeof(t->lv[0]));
    t->nlevels = n;
    if (!t->layered) {
        if (v->firstLayer || v->lastLayer)
            return CUDA_ERROR_INVALID_VALUE;
        return CUDA_SUCCESS;
    }
    unsigned per = t->cubemap ? 6 : 1, layers = t->lv[0].d / per;
    if (v->lastLayer < v->firstLayer || v->lastLayer >= layers)
        return CUDA_ERROR_INVALID_VALUE;
    for (int l = 0; l < n; l++) {
        t->lv[l].data += (size_t)v->firstLayer * per * t->lv[l].slice;
        t->lv[l].d = (v->lastLayer - v->firstLayer + 1) * per;
    }
    return CUDA_SUCCESS;
}

static CUresult sampler_of(const CUDA_TEXTURE_DESC *d, ptx_texdesc *t)
{
    const unsigned known = CU_TRSF_READ_AS_INTEGER | CU_TRSF_NORMALIZED_COORDINATES | CU_TRSF_SRGB |
                           CU_TRSF_DISABLE_TRILINEAR_OPTIMIZATION | CU_TRSF_SEAMLESS_CUBEMAP;
    if (d->flags & ~known)
        return CUDA_ERROR_INVALID_VALUE;
    for (int k = 0; k < 3; k++) {
        if ((unsigned)d->addressMode[k] > CU_TR_ADDRESS_MODE_BORDER)
            return CUDA_ERROR_INVALID_VALUE;
        t->addr[k] = (int)d->addressMode[k];
    }
    if ((unsigned)d->filterMode > CU_TR_FILTER_MODE_LINEAR || (unsigned)d->mipmapFilterMode > CU_TR_FILTER_MODE_LINEAR)
        return CUDA_ERROR_INVALID_VALUE;
    t->filter = (int)d->filterMode;
    t->mip_filter = (int)d->mipmapFilterMode;
    t->normalized = (d->flags & CU_TRSF_NORMALIZED_COORDINATES) != 0;
    t->read_int = (d->flags & CU_TRSF_READ_AS_INTEGER) != 0;
    t->srgb = (d->flags & CU_TRSF_SRGB) != 0;
    for (int k = 0; k < 4; k++)
        t->border[k] = d->borderColor[k];
    t->mip_bias = d->mipmapLevelBias;
    t->min_lod = d->minMipmapLevelClamp;
    t->max_lod = d->maxMipmapLevelClamp;
    if (!isfinite(t->mip_bias) || !isfinite(t->min_lod) || !isfinite(t->max_lod) || d->maxAnisotropy > 16)
        return CUDA_ERROR_INVALID_VALUE;
    if (t->is_linear) {
        /* tex1Dfetch: integer indices, no filtering; out-of-range reads 0 */
        t->addr[0] = PTXTA_BORDER;
        for (int k = 0; k < 4; k++)
            t->border[k] = 0.0f;
    }
    if (t->cubemap && !t->normalized)
        return CUDA_ERROR_INVALID_VALUE; /* cubemaps are addressed with directions: normalized coordinates */
    return CUDA_SUCCESS;
}

EMU_API CUresult cuTexObjectCreate(CUtexObject *pTexObject, const CUDA_RESOURCE_DESC *pResDesc, const CUDA_TEXTURE_DESC *pTexDesc,
                                   const CUDA_RESOURCE_VIEW_DESC *pResViewDesc)
{
    EMU_ENTER(c);
    (void)c;
    if (!pTexObject || !pResDesc || !pTexDesc)
        return CUDA_ERROR_INVALID_VALUE;
    emu_texobj *o = calloc(1, sizeof(*o));
    if (!o)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = resource_of(pResDesc, o, 0);
    if (!rc && pResViewDesc) {
        rc = view_of(pResDesc, pResViewDesc, &o->t);
        o->view = *pResViewDesc;
        o->has_view = 1;
    }
    if (!rc)
        rc = sampler_of(pTexDesc, &o->t);
    if (!rc && emu_handle_add(o, EMU_K_TEXOBJ))
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        obj_free(o);
        return rc;
    }
    o->res = *pResDesc;
    o->tex = *pTexDesc;
    *pTexObject = (CUtexObject)(uintptr_t)o;
    return CUDA_SUCCESS;
}

static emu_texobj *obj_of(unsigned long long h, int kind)
{
    void *p = (void *)(uintptr_t)h;
    return (h && emu_handle_is(p, kind)) ? (emu_texobj *)p : NULL;
}

static CUresult obj_destroy(unsigned long long h, int kind)
{
    EMU_ENTER(c);
    (void)c;
    emu_texobj *o = obj_of(h, kind);
    if (!o)
        return CUDA_ERROR_INVALID_HANDLE;
    emu_sq_idle_all(); /* queued kernels resolve the handle when they run */
    emu_handle_del(o);
    obj_free(o);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuTexObjectDestroy(CUtexObject h) { return obj_destroy(h, EMU_K_TEXOBJ); }
EMU_API CUresult cuSurfObjectDestroy(CUsurfObject h) { return obj_destroy(h, EMU_K_SURFOBJ); }

/* The descriptor getters: copy what the object was created with (the field at off, n bytes) to out. A view is
 * there only if one was given ("If no resource view was set for texObject, CUDA_ERROR_INVALID_VALUE"). */
static CUresult obj_get(void *out, unsigned long long h, int kind, size_t off, size_t n, int is_view)
{
    EMU_ENTER(c);
    (void)c;
    emu_texobj *o = obj_of(h, kind);
    if (!o)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!out || (is_view && !o->has_view))
        return CUDA_ERROR_INVALID_VALUE;
    memcpy(out, (const char *)o + off, n);
    return CUDA_SUCCESS;
}

#define OBJ_GET(out, h, kind, field, is_view) \
    obj_get(out, h, kind, offsetof(emu_texobj, field), sizeof(((emu_texobj *)0)->field), is_view)

EMU_API CUresult cuTexObjectGetResourceDesc(CUDA_RESOURCE_DESC *out, CUtexObject h)
{
    return OBJ_GET(out, h, EMU_K_TEXOBJ, res, 0);
}

EMU_API CUresult cuTexObjectGetTextureDesc(CUDA_TEXTURE_DESC *out, CUtexObject h)
{
    return OBJ_GET(out, h, EMU_K_TEXOBJ, tex, 0);
}

EMU_API CUresult cuTexObjectGetResourceViewDesc(CUDA_RESOURCE_VIEW_DESC *out, CUtexObject h)
{
    return OBJ_GET(out, h, EMU_K_TEXOBJ, view, 1);
}

EMU_API CUresult cuSurfObjectGetResourceDesc(CUDA_RESOURCE_DESC *out, CUsurfObject h)
{
    return OBJ_GET(out, h, EMU_K_SURFOBJ, res, 0);
}

EMU_API CUresult cuSurfObjectCreate(CUsurfObject *pSurfObject, const CUDA_RESOURCE_DESC *pResDesc)
{
    EMU_ENTER(c);
    (void)c;
    if (!pSurfObject || !pResDesc)
        return CUDA_ERROR_INVALID_VALUE;
    if (pResDesc->resType != CU_RESOURCE_TYPE_ARRAY)
        return CUDA_ERROR_INVALID_VALUE;
    emu_texobj *o = calloc(1, sizeof(*o));
    if (!o)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = resource_of(pResDesc, o, 1);
    o->t.is_surface = 1;
    if (!rc && emu_handle_add(o, EMU_K_SURFOBJ))
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        obj_free(o);
        return rc;
    }
    o->res = *pResDesc;
    *pSurfObject = (CUsurfObject)(uintptr_t)o;
    return CUDA_SUCCESS;
}

/* The PTX executor's view of a handle (ptx_tex_resolve). */
static const ptx_texdesc *resolve(uint64_t h, int want_surface)
{
    emu_texobj *o = obj_of(h, want_surface ? EMU_K_SURFOBJ : EMU_K_TEXOBJ);
    return o ? &o->t : NULL;
}

__attribute__((constructor)) static void install_resolver(void) { ptx_tex_resolve = resolve; }
