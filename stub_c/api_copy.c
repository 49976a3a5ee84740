/* api_copy.c - the client stub's hand-written entry points for copies: unified pointers classified locally, big
 * copies chunked or through the shm window, 2D/3D packing.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------------- copies */
/* Copies bigger than one frame go in TF_COPY_CHUNK pieces: host-to-device pieces are queued on the
 * legacy stream (no reply, sent from the caller's memory) and the last one waits. */
CUresult tfs_cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
    CUresult shm_rc;
    if (srcHost && tf_shm_copy(1, dstDevice, (void *)(uintptr_t)srcHost, ByteCount, NULL, 0, &shm_rc)) return shm_rc;
    const uint8_t *src = srcHost;
    while (ByteCount > TF_COPY_CHUNK && src) {
        CUresult rc = rpc_cuMemcpyHtoDAsync_v2(dstDevice, src, TF_COPY_CHUNK, CU_STREAM_LEGACY);
        if (rc) return rc;
        dstDevice += TF_COPY_CHUNK;
        src += TF_COPY_CHUNK;
        ByteCount -= TF_COPY_CHUNK;
    }
    return rpc_cuMemcpyHtoD_v2(dstDevice, src, ByteCount);
}

CUresult tfs_cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
    CUresult shm_rc;
    if (dstHost && tf_shm_copy(0, srcDevice, dstHost, ByteCount, NULL, 0, &shm_rc)) return shm_rc;
    if (dstHost && ByteCount > TF_COPY_CHUNK) return tf_pipelined_dtoh(dstHost, srcDevice, ByteCount, NULL, 0);
    return rpc_cuMemcpyDtoH_v2(dstHost, srcDevice, ByteCount);
}

static CUresult h2d_async_chunk(CUdeviceptr dst, const void *src, size_t n, CUstream hStream, int wait)
{
    if (!wait) return rpc_cuMemcpyHtoDAsync_v2(dst, src, n, hStream);
    tfc_call c;
    CUresult rc = enc_cuMemcpyHtoDAsync_v2(&c, dst, src, n, hStream);
    return rc ? rc : tfc_sync(&c);
}

CUresult tfs_cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream)
{
    int captured;  /* on a capturing stream: a graph node that reads this range at each launch */
    CUresult cap_rc = tf_capture_host_copy(1, dstDevice, srcHost, ByteCount, hStream, &captured);
    if (captured) return cap_rc;
    CUresult shm_rc;
    if (srcHost && tf_shm_copy(1, dstDevice, (void *)(uintptr_t)srcHost, ByteCount, hStream, 1, &shm_rc))
        return shm_rc;
    const uint8_t *src = srcHost;
    /* on a stream this process is capturing, the worker refuses host copies: waiting for its answer
     * returns the error at this call, as the driver does (api_graph.c) */
    int wait = tf_capture_live_on(hStream);
    while (ByteCount > TF_COPY_CHUNK && src) {
        CUresult rc = h2d_async_chunk(dstDevice, src, TF_COPY_CHUNK, hStream, wait);
        if (rc) return rc;
        dstDevice += TF_COPY_CHUNK;
        src += TF_COPY_CHUNK;
        ByteCount -= TF_COPY_CHUNK;
    }
    return h2d_async_chunk(dstDevice, src, ByteCount, hStream, wait);
}

/* Device-to-host results must land in the caller's memory, so the async form waits like the sync one. */
CUresult tfs_cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
{
    int captured;  /* on a capturing stream: a graph node that writes this range at each launch */
    CUresult cap_rc = tf_capture_host_copy(0, srcDevice, dstHost, ByteCount, hStream, &captured);
    if (captured) return cap_rc;
    CUresult shm_rc;
    if (dstHost && tf_shm_copy(0, srcDevice, dstHost, ByteCount, hStream, 1, &shm_rc)) return shm_rc;
    if (dstHost && ByteCount > TF_COPY_CHUNK) return tf_pipelined_dtoh(dstHost, srcDevice, ByteCount, hStream, 1);
    return rpc_cuMemcpyDtoHAsync_v2(dstHost, srcDevice, ByteCount, hStream);
}

/* Unified copies: which side is the device is decided from the stub's own allocation map. */
CUresult tfs_cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
    int dd = tf_devmap_find(dst, NULL, NULL), sd = tf_devmap_find(src, NULL, NULL);
    if (dd && sd) return rpc_cuMemcpyDtoD_v2(dst, src, ByteCount);
    if (dd) return tfs_cuMemcpyHtoD_v2(dst, (const void *)(uintptr_t)src, ByteCount);
    if (sd) return tfs_cuMemcpyDtoH_v2((void *)(uintptr_t)dst, src, ByteCount);
    NEED_INIT();
    if (ByteCount && (!dst || !src)) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = tfc_flush();
    if (rc) return rc;
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, ByteCount);
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream)
{
    int dd = tf_devmap_find(dst, NULL, NULL), sd = tf_devmap_find(src, NULL, NULL);
    if (dd && sd) return rpc_cuMemcpyDtoDAsync_v2(dst, src, ByteCount, hStream);
    if (dd) return tfs_cuMemcpyHtoDAsync_v2(dst, (const void *)(uintptr_t)src, ByteCount, hStream);
    if (sd) return tfs_cuMemcpyDtoHAsync_v2((void *)(uintptr_t)dst, src, ByteCount, hStream);
    /* host to host: order it after the stream's earlier work */
    CUresult rc = tfs_cuStreamSynchronize(hStream);
    if (rc) return rc;
    if (ByteCount && (!dst || !src)) return CUDA_ERROR_INVALID_VALUE;
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, ByteCount);
    return CUDA_SUCCESS;
}

/* 1D copies with an array: the array is the worker's handle; client host bytes go in pieces of at most
 * TF_COPY_CHUNK (the array's storage is dense, so an offset is a byte offset into it). */
static CUresult htoa(CUarray dst, size_t off, const void *src, size_t n, CUstream s, int async)
{
    NEED_INIT();
    if (n && !src) return CUDA_ERROR_INVALID_VALUE;
    const uint8_t *p = src;
    do {
        size_t k = n < TF_COPY_CHUNK ? n : TF_COPY_CHUNK;
        CUresult rc = async ? rpc_cuMemcpyHtoAAsync_v2(dst, off, p, k, s) : rpc_cuMemcpyHtoA_v2(dst, off, p, k);
        if (rc) return rc;
        off += k, p += k, n -= k;
    } while (n);
    return CUDA_SUCCESS;
}

static CUresult atoh(void *dst, CUarray src, size_t off, size_t n, CUstream s, int async)
{
    NEED_INIT();
    if (n && !dst) return CUDA_ERROR_INVALID_VALUE;
    uint8_t *p = dst;
    do {
        size_t k = n < TF_COPY_CHUNK ? n : TF_COPY_CHUNK;
        CUresult rc = async ? rpc_cuMemcpyAtoHAsync_v2(p, src, off, k, s) : rpc_cuMemcpyAtoH_v2(p, src, off, k);
        if (rc) return rc;
        off += k, p += k, n -= k;
    } while (n);
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemcpyHtoA_v2(CUarray dstArray, size_t dstOffset, const void *srcHost, size_t ByteCount)
{
    return htoa(dstArray, dstOffset, srcHost, ByteCount, NULL, 0);
}
CUresult tfs_cuMemcpyHtoAAsync_v2(CUarray dstArray, size_t dstOffset, const void *srcHost, size_t ByteCount, CUstream hStream)
{
    return htoa(dstArray, dstOffset, srcHost, ByteCount, hStream, 1);
}
CUresult tfs_cuMemcpyAtoH_v2(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount)
{
    return atoh(dstHost, srcArray, srcOffset, ByteCount, NULL, 0);
}
CUresult tfs_cuMemcpyAtoHAsync_v2(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount, CUstream hStream)
{
    return atoh(dstHost, srcArray, srcOffset, ByteCount, hStream, 1);
}

/* 2D/3D copies with an array side. Host rows are packed here (pieces of whole rows, at most TF_COPY_CHUNK
 * bytes, one slice at a time); without client host memory the CUDA_MEMCPY3D travels as it is (its arrays
 * and device ranges are the worker's, checked there). */
static CUresult memcpy3d_array(const CUDA_MEMCPY3D *c, CUstream hStream, int async)
{
    size_t w = c->WidthInBytes, h = c->Height, d = c->Depth;
    if (w == 0 || h == 0 || d == 0) return CUDA_SUCCESS;
    int src_host = c->srcMemoryType == CU_MEMORYTYPE_HOST ||
                   (c->srcMemoryType == CU_MEMORYTYPE_UNIFIED && !tf_devmap_find(c->srcDevice ? c->srcDevice : (CUdeviceptr)(uintptr_t)c->srcHost, NULL, NULL));
    int dst_host = c->dstMemoryType == CU_MEMORYTYPE_HOST ||
                   (c->dstMemoryType == CU_MEMORYTYPE_UNIFIED && !tf_devmap_find(c->dstDevice ? c->dstDevice : (CUdeviceptr)(uintptr_t)c->dstHost, NULL, NULL));
    if (!src_host && !dst_host) {
        CUDA_MEMCPY3D p = *c;
        /* unified pointers that are device memory travel as device memory */
        if (p.srcMemoryType == CU_MEMORYTYPE_UNIFIED) p.srcMemoryType = CU_MEMORYTYPE_DEVICE, p.srcDevice = p.srcDevice ? p.srcDevice : (CUdeviceptr)(uintptr_t)p.srcHost;
        if (p.dstMemoryType == CU_MEMORYTYPE_UNIFIED) p.dstMemoryType = CU_MEMORYTYPE_DEVICE, p.dstDevice = p.dstDevice ? p.dstDevice : (CUdeviceptr)(uintptr_t)p.dstHost;
        p.srcHost = NULL, p.dstHost = NULL;
        CUresult rc = rpc_tfMemcpy3DArray(&p, hStream);
        return (rc == CUDA_SUCCESS && !async) ? tfs_cuStreamSynchronize(hStream) : rc;
    }
    if (src_host && dst_host) return CUDA_ERROR_INVALID_VALUE;
    if (w > TF_COPY_CHUNK) return CUDA_ERROR_INVALID_VALUE;
    int to_array = src_host;
    const uint8_t *hbase = to_array ? (const uint8_t *)(c->srcHost ? c->srcHost : (const void *)(uintptr_t)c->srcDevice)
                                    : (const uint8_t *)(c->dstHost ? c->dstHost : (void *)(uintptr_t)c->dstDevice);
    if (!hbase) return CUDA_ERROR_INVALID_VALUE;
    if ((to_array ? c->dstMemoryType : c->srcMemoryType) != CU_MEMORYTYPE_ARRAY) return CUDA_ERROR_INVALID_VALUE;
    size_t hp = to_array ? (c->srcPitch ? c->srcPitch : w) : (c->dstPitch ? c->dstPitch : w);
    size_t hh = to_array ? (c->srcHeight ? c->srcHeight : h) : (c->dstHeight ? c->dstHeight : h);
    size_t hx = to_array ? c->srcXInBytes : c->dstXInBytes, hy = to_array ? c->srcY : c->dstY, hz = to_array ? c->srcZ : c->dstZ;
    if ((h > 1 && hp < w) || (d > 1 && hh < h)) return CUDA_ERROR_INVALID_VALUE;
    size_t rows_per = TF_COPY_CHUNK / w;
    uint8_t *buf = malloc(rows_per < h ? rows_per * w : h * w);
    if (!buf) return CUDA_ERROR_OUT_OF_MEMORY;
    CUstream s = async ? hStream : NULL;
    CUresult rc = CUDA_SUCCESS;
    for (size_t z = 0; rc == CUDA_SUCCESS && z < d; z++) {
        for (size_t r0 = 0; rc == CUDA_SUCCESS && r0 < h; r0 += rows_per) {
            size_t n = h - r0 < rows_per ? h - r0 : rows_per;
            const uint8_t *row0 = hbase + ((hz + z) * hh + hy + r0) * hp + hx;
            if (to_array) {
                for (size_t r = 0; r < n; r++) memcpy(buf + r * w, row0 + r * hp, w);
                rc = rpc_tfMemcpy3DHtoA(c->dstArray, c->dstXInBytes, c->dstY + r0, c->dstZ + z, w, n, buf, s);
            } else {
                rc = rpc_tfMemcpy3DAtoH(buf, c->srcArray, c->srcXInBytes, c->srcY + r0, c->srcZ + z, w, n, s);
                for (size_t r = 0; rc == CUDA_SUCCESS && r < n; r++) memcpy((uint8_t *)(uintptr_t)row0 + r * hp, buf + r * w, w);
            }
        }
    }
    free(buf);
    return rc;
}

static CUresult memcpy2d_array(const CUDA_MEMCPY2D *c, CUstream hStream, int async)
{
    CUDA_MEMCPY3D p = {
        .srcXInBytes = c->srcXInBytes, .srcY = c->srcY, .srcMemoryType = c->srcMemoryType, .srcHost = c->srcHost,
        .srcDevice = c->srcDevice, .srcArray = c->srcArray, .srcPitch = c->srcPitch,
        .dstXInBytes = c->dstXInBytes, .dstY = c->dstY, .dstMemoryType = c->dstMemoryType, .dstHost = c->dstHost,
        .dstDevice = c->dstDevice, .dstArray = c->dstArray, .dstPitch = c->dstPitch,
        .WidthInBytes = c->WidthInBytes, .Height = c->Height, .Depth = 1,
    };
    return memcpy3d_array(&p, hStream, async);
}

/* 2D copies: the struct names client pointers, so host rows are packed here (pieces of at most
 * TF_COPY_CHUNK bytes) and the worker sees contiguous rows of WidthInBytes. Arrays: memcpy3d_array. */
static int side_is_device(CUmemorytype t, const void *host, CUdeviceptr dev, int *is_dev)
{
    switch (t) {
    case CU_MEMORYTYPE_HOST: *is_dev = 0; return 0;
    case CU_MEMORYTYPE_DEVICE: *is_dev = 1; return 0;
    case CU_MEMORYTYPE_UNIFIED: *is_dev = tf_devmap_find(dev ? dev : (CUdeviceptr)(uintptr_t)host, NULL, NULL); return 0;
    default: return -1;  /* arrays */
    }
}

static CUresult memcpy2d(const CUDA_MEMCPY2D *c, CUstream hStream, int async)
{
    NEED_INIT();
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY || c->dstMemoryType == CU_MEMORYTYPE_ARRAY)
        return memcpy2d_array(c, hStream, async);
    int sdev, ddev;
    if (side_is_device(c->srcMemoryType, c->srcHost, c->srcDevice, &sdev) ||
        side_is_device(c->dstMemoryType, c->dstHost, c->dstDevice, &ddev))
        return CUDA_ERROR_NOT_SUPPORTED;
    size_t w = c->WidthInBytes, h = c->Height;
    if (w == 0 || h == 0) return CUDA_SUCCESS;
    if ((c->srcPitch && w > c->srcPitch) || (c->dstPitch && w > c->dstPitch) || w > TF_COPY_CHUNK)
        return CUDA_ERROR_INVALID_VALUE;
    /* unified pointers may come in either field */
    uint64_t sbase = c->srcMemoryType == CU_MEMORYTYPE_UNIFIED && !c->srcDevice ? (uint64_t)(uintptr_t)c->srcHost
                     : sdev ? c->srcDevice : (uint64_t)(uintptr_t)c->srcHost;
    uint64_t dbase = c->dstMemoryType == CU_MEMORYTYPE_UNIFIED && !c->dstDevice ? (uint64_t)(uintptr_t)c->dstHost
                     : ddev ? c->dstDevice : (uint64_t)(uintptr_t)c->dstHost;
    sbase += c->srcY * c->srcPitch + c->srcXInBytes;
    dbase += c->dstY * c->dstPitch + c->dstXInBytes;
    if (sdev && ddev) {
        CUresult rc = rpc_tfMemcpy2DDtoD(dbase, c->dstPitch, sbase, c->srcPitch, w, h, hStream);
        return (rc == CUDA_SUCCESS && !async) ? tfs_cuStreamSynchronize(hStream) : rc;
    }
    if (!sdev && !ddev) {  /* host to host, after the stream's earlier work */
        CUresult rc = tfs_cuStreamSynchronize(hStream);
        for (size_t r = 0; rc == CUDA_SUCCESS && r < h; r++)
            memmove((uint8_t *)(uintptr_t)dbase + r * c->dstPitch, (const uint8_t *)(uintptr_t)sbase + r * c->srcPitch, w);
        return rc;
    }
    size_t rows_per = TF_COPY_CHUNK / w;
    uint8_t *buf = malloc(rows_per < h ? rows_per * w : h * w);
    if (!buf) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CUDA_SUCCESS;
    for (size_t r0 = 0; rc == CUDA_SUCCESS && r0 < h; r0 += rows_per) {
        size_t n = h - r0 < rows_per ? h - r0 : rows_per;
        if (ddev) {
            for (size_t r = 0; r < n; r++)
                memcpy(buf + r * w, (const uint8_t *)(uintptr_t)sbase + (r0 + r) * c->srcPitch, w);
            CUdeviceptr d = dbase + r0 * c->dstPitch;
            rc = async ? rpc_tfMemcpy2DHtoDAsync(d, c->dstPitch, w, n, buf, hStream)
                       : rpc_tfMemcpy2DHtoD(d, c->dstPitch, w, n, buf, hStream);
        } else {
            rc = rpc_tfMemcpy2DDtoH(buf, sbase + r0 * c->srcPitch, c->srcPitch, w, n, async ? hStream : NULL);
            for (size_t r = 0; rc == CUDA_SUCCESS && r < n; r++)
                memcpy((uint8_t *)(uintptr_t)dbase + (r0 + r) * c->dstPitch, buf + r * w, w);
        }
    }
    free(buf);
    return rc;
}

CUresult tfs_cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy) { return memcpy2d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy) { return memcpy2d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream) { return memcpy2d(pCopy, hStream, 1); }

/* 3D copies of pitched memory: one 2D copy per slice; with an array side: memcpy3d_array. */
static CUresult memcpy3d(const CUDA_MEMCPY3D *c, CUstream hStream, int async)
{
    NEED_INIT();
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    if (c->srcLOD || c->dstLOD) return CUDA_ERROR_INVALID_VALUE; /* "must be set to 0" */
    if (c->srcMemoryType == CU_MEMORYTYPE_ARRAY || c->dstMemoryType == CU_MEMORYTYPE_ARRAY)
        return memcpy3d_array(c, hStream, async);
    if (c->Depth > 1 && (!c->srcHeight || !c->dstHeight)) return CUDA_ERROR_INVALID_VALUE;
    for (size_t z = 0; z < c->Depth; z++) {
        size_t sz = (c->srcZ + z) * c->srcPitch * c->srcHeight, dz = (c->dstZ + z) * c->dstPitch * c->dstHeight;
        CUDA_MEMCPY2D s = {
            .srcXInBytes = c->srcXInBytes, .srcY = c->srcY, .srcMemoryType = c->srcMemoryType,
            .srcHost = c->srcHost ? (const uint8_t *)c->srcHost + sz : NULL,
            .srcDevice = c->srcDevice ? c->srcDevice + sz : 0, .srcPitch = c->srcPitch,
            .dstXInBytes = c->dstXInBytes, .dstY = c->dstY, .dstMemoryType = c->dstMemoryType,
            .dstHost = c->dstHost ? (uint8_t *)c->dstHost + dz : NULL,
            .dstDevice = c->dstDevice ? c->dstDevice + dz : 0, .dstPitch = c->dstPitch,
            .WidthInBytes = c->WidthInBytes, .Height = c->Height,
        };
        CUresult rc = memcpy2d(&s, hStream, async);
        if (rc) return rc;
    }
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemcpy3D_v2(const CUDA_MEMCPY3D *pCopy) { return memcpy3d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *pCopy, CUstream hStream) { return memcpy3d(pCopy, hStream, 1); }
