/* exec_array.c - hand-written executor calls of the CUDA-array area (proto/calls.tbl rows marked exec=hand):
 * texture/surface object creation, whose resource descriptor carries handles and device addresses that
 * must be this session's, and the 2D/3D copies with an array side (the stub sends host rows packed, or the
 * CUDA_MEMCPY3D itself when no client host memory is involved) or through the client's shared-memory window
 * (tfShmMemcpy3D, also for pitched device memory). Called by the generated dispatch.
 */
#include <string.h>

#include "executor.h"

/* The handles / device range a resource descriptor names must be this session's. */
static CUresult check_resource(tfx *x, const CUDA_RESOURCE_DESC *r)
{
    if (!r) return CUDA_ERROR_INVALID_VALUE;
    switch (r->resType) {
    case CU_RESOURCE_TYPE_ARRAY:
        return tf_reg_has(x, (uint64_t)(uintptr_t)r->res.array.hArray, TFK_ARRAY) ? CUDA_SUCCESS
                                                                                   : CUDA_ERROR_INVALID_HANDLE;
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
        return tf_reg_has(x, (uint64_t)(uintptr_t)r->res.mipmap.hMipmappedArray, TFK_MIPMAP) ? CUDA_SUCCESS
                                                                                             : CUDA_ERROR_INVALID_HANDLE;
    case CU_RESOURCE_TYPE_LINEAR:
        return tf_dev_ok(x, r->res.linear.devPtr, r->res.linear.sizeInBytes) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_RESOURCE_TYPE_PITCH2D: {
        uint64_t h = r->res.pitch2D.height, pitch = r->res.pitch2D.pitchInBytes;
        if (h == 0 || pitch == 0 || h > (1u << 20) || pitch > (1ull << 32)) return CUDA_ERROR_INVALID_VALUE;
        return tf_dev_ok(x, r->res.pitch2D.devPtr, h * pitch) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

CUresult ex_cuTexObjectCreate(tfx *x, CUtexObject_v1 *pTexObject, const CUDA_RESOURCE_DESC_v1 *pResDesc,
                              const CUDA_TEXTURE_DESC_v1 *pTexDesc, const CUDA_RESOURCE_VIEW_DESC_v1 *pResViewDesc)
{
    CUresult rc = check_resource(x, pResDesc);
    if (rc) return rc;
    if (!x->be.f_cuTexObjectCreate) return CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuTexObjectCreate(pTexObject, pResDesc, pTexDesc, pResViewDesc);
}

CUresult ex_cuSurfObjectCreate(tfx *x, CUsurfObject_v1 *pSurfObject, const CUDA_RESOURCE_DESC_v1 *pResDesc)
{
    CUresult rc = check_resource(x, pResDesc);
    if (rc) return rc;
    if (!x->be.f_cuSurfObjectCreate) return CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuSurfObjectCreate(pSurfObject, pResDesc);
}

/* A 3D copy whose host side is in this process (a frame or a reply): done before the call returns. */
static CUresult copy_now(tfx *x, const CUDA_MEMCPY3D *c, CUstream s)
{
    if (c->WidthInBytes == 0 || c->Height == 0 || c->Depth == 0) return CUDA_SUCCESS;
    if (!s) return x->bx.cuMemcpy3D_v2 ? x->bx.cuMemcpy3D_v2(c) : CUDA_ERROR_NOT_SUPPORTED;
    if (!x->bx.cuMemcpy3DAsync_v2 || !x->be.f_cuStreamSynchronize) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->bx.cuMemcpy3DAsync_v2(c, s);
    return rc ? rc : x->be.f_cuStreamSynchronize(s);
}

CUresult ex_tfMemcpy3DHtoA(tfx *x, CUarray dst, size_t dstX, size_t dstY, size_t dstZ, size_t width, size_t height,
                           const void *data, CUstream hStream)
{
    if (!data && width && height) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = data, .srcPitch = width, .srcHeight = height,
                       .dstXInBytes = dstX, .dstY = dstY, .dstZ = dstZ, .dstMemoryType = CU_MEMORYTYPE_ARRAY,
                       .dstArray = dst, .WidthInBytes = width, .Height = height, .Depth = 1};
    return copy_now(x, &c, hStream);
}

CUresult ex_tfMemcpy3DAtoH(tfx *x, void *data, CUarray src, size_t srcX, size_t srcY, size_t srcZ, size_t width,
                           size_t height, CUstream hStream)
{
    if (!data && width && height) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c = {.srcXInBytes = srcX, .srcY = srcY, .srcZ = srcZ, .srcMemoryType = CU_MEMORYTYPE_ARRAY,
                       .srcArray = src, .dstMemoryType = CU_MEMORYTYPE_HOST, .dstHost = data, .dstPitch = width,
                       .dstHeight = height, .WidthInBytes = width, .Height = height, .Depth = 1};
    return copy_now(x, &c, hStream);
}

/* One side of a device/array copy: an array of this session, or a device range inside its allocations
 * (also used by exec_copy_deferred.c). */
CUresult tfx_copy_side_check(tfx *x, CUmemorytype t, CUarray a, CUdeviceptr d, size_t xb, size_t y, size_t z,
                           size_t pitch, size_t height, const CUDA_MEMCPY3D *c)
{
    switch (t) {
    case CU_MEMORYTYPE_ARRAY:
        return tf_reg_has(x, (uint64_t)(uintptr_t)a, TFK_ARRAY) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
    case CU_MEMORYTYPE_DEVICE: {
        if (c->Height > 1 && pitch < c->WidthInBytes) return CUDA_ERROR_INVALID_VALUE;
        if (c->Depth > 1 && height < c->Height) return CUDA_ERROR_INVALID_VALUE;
        unsigned __int128 first = ((unsigned __int128)z * height + y) * pitch + xb;
        unsigned __int128 span = ((unsigned __int128)(c->Depth - 1) * height + (c->Height - 1)) * pitch + c->WidthInBytes;
        if (first + span > UINT64_MAX) return CUDA_ERROR_INVALID_VALUE;
        return tf_dev_ok(x, d + (uint64_t)first, (uint64_t)span) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    }
    default:  /* host memory of the client never arrives here; of this process, never allowed */
        return CUDA_ERROR_INVALID_VALUE;
    }
}

/* A 2D/3D copy through the client's shared-memory window: the host side is the slot at off, rows of
 * WidthInBytes packed, Height rows a slice; the other side is device memory or an array of this session. */
CUresult ex_tfShmMemcpy3D(tfx *x, const CUDA_MEMCPY3D *p, unsigned long long off, CUstream hStream)
{
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    CUDA_MEMCPY3D c = *p;
    c.reserved0 = NULL, c.reserved1 = NULL;
    int to_device = c.srcMemoryType == CU_MEMORYTYPE_HOST;
    if (to_device == (c.dstMemoryType == CU_MEMORYTYPE_HOST)) return CUDA_ERROR_INVALID_VALUE;
    if (c.WidthInBytes == 0 || c.Height == 0 || c.Depth == 0) return CUDA_SUCCESS;
    unsigned __int128 span = (unsigned __int128)c.WidthInBytes * c.Height * c.Depth;
    uint8_t *slot = span > SIZE_MAX ? NULL : tfx_shm_at(x, off, (size_t)span);
    if (!slot) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc;
    if (to_device) {
        c.srcHost = slot, c.srcXInBytes = c.srcY = c.srcZ = 0, c.srcPitch = c.WidthInBytes, c.srcHeight = c.Height;
        size_t dp = c.dstPitch ? c.dstPitch : c.WidthInBytes, dh = c.dstHeight ? c.dstHeight : c.Height;
        rc = tfx_copy_side_check(x, c.dstMemoryType, c.dstArray, c.dstDevice, c.dstXInBytes, c.dstY, c.dstZ, dp, dh, &c);
    } else {
        c.dstHost = slot, c.dstXInBytes = c.dstY = c.dstZ = 0, c.dstPitch = c.WidthInBytes, c.dstHeight = c.Height;
        size_t sp = c.srcPitch ? c.srcPitch : c.WidthInBytes, sh = c.srcHeight ? c.srcHeight : c.Height;
        rc = tfx_copy_side_check(x, c.srcMemoryType, c.srcArray, c.srcDevice, c.srcXInBytes, c.srcY, c.srcZ, sp, sh, &c);
    }
    return rc ? rc : copy_now(x, &c, hStream);
}

CUresult ex_tfMemcpy3DArray(tfx *x, const CUDA_MEMCPY3D *p, CUstream hStream)
{
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    if (p->WidthInBytes == 0 || p->Height == 0 || p->Depth == 0) return CUDA_SUCCESS;
    CUDA_MEMCPY3D c = *p;
    c.srcHost = NULL, c.dstHost = NULL, c.reserved0 = NULL, c.reserved1 = NULL;
    size_t sp = c.srcPitch ? c.srcPitch : c.WidthInBytes, dp = c.dstPitch ? c.dstPitch : c.WidthInBytes;
    size_t sh = c.srcHeight ? c.srcHeight : c.Height, dh = c.dstHeight ? c.dstHeight : c.Height;
    CUresult rc = tfx_copy_side_check(x, c.srcMemoryType, c.srcArray, c.srcDevice, c.srcXInBytes, c.srcY, c.srcZ, sp, sh, &c);
    if (!rc) rc = tfx_copy_side_check(x, c.dstMemoryType, c.dstArray, c.dstDevice, c.dstXInBytes, c.dstY, c.dstZ, dp, dh, &c);
    if (rc) return rc;
    if (c.srcMemoryType != CU_MEMORYTYPE_ARRAY && c.dstMemoryType != CU_MEMORYTYPE_ARRAY) return CUDA_ERROR_INVALID_VALUE;
    if (!x->bx.cuMemcpy3DAsync_v2) return CUDA_ERROR_NOT_SUPPORTED;
    return x->bx.cuMemcpy3DAsync_v2(&c, hStream);
}
