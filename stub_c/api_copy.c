/* api_copy.c - the client stub's hand-written entry points for copies: unified pointers classified locally,
 * every kind of host copy through the shm window (tf_shm_copy, one encoder per kind of far side) or chunked
 * over the socket, 2D/3D packing; asynchronous copies to page-locked memory queued without waiting (into
 * memory the worker maps, or staged by it: api_copy_deferred.c).
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tf_memcpy3d_peer.h"
#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------------- copies */
/* The shared-memory window (transport.c, tf_shm_copy) serves every kind of copy between the caller's host
 * memory and the worker through one engine; these encoders name the other side of each piece. */

/* 1D copies of device memory: `far` is the device address of the host box's first byte (one row). */
static CUresult piece_device(tfc_call *c, const void *far, int to_device, const tf_box_piece *p, uint64_t slot_off,
                             CUstream s, void *scratch)
{
    (void)scratch;
    CUdeviceptr dev = *(const CUdeviceptr *)far + p->x;
    return to_device ? enc_tfShmHtoD(c, dev, slot_off, p->w, s) : enc_tfShmDtoH(c, slot_off, dev, p->w, s);
}

static int window_1d(int to_device, CUdeviceptr dev, const void *host, size_t n, CUstream s, int async, CUresult *rc)
{
    tf_host_box box = {(uint8_t *)(uintptr_t)host, n, 1, 1, n, n};
    return host && tf_shm_copy(to_device, &box, piece_device, &dev, s, async, rc);
}

/* Page-locked memory the worker maps (same host) is device memory to it at the same address: a copy between
 * it and device memory runs as a device-to-device copy in stream order there, reading or writing the bytes
 * when the stream gets to it, as CUDA's copies of page-locked memory do. 1 when [host, host+n) is such memory
 * and [dev, dev+n) a device allocation the stub knows (else the worker's refusal of a bad range would come
 * later, latched, instead of at the call). */
static int pinned_mapped_and_device(const void *host, CUdeviceptr dev, size_t n)
{
    CUdeviceptr base;
    size_t size;
    return host && n && tf_host_pinned(host, n) == TF_HOST_PINNED_MAPPED && tf_devmap_find(dev, &base, &size) &&
           n <= size - (dev - base);
}

/* Copies bigger than one frame go in TF_COPY_CHUNK pieces: host-to-device pieces are queued on the
 * legacy stream (no reply, sent from the caller's memory) and the last one waits. */
CUresult tfs_cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
    if (pinned_mapped_and_device(srcHost, dstDevice, ByteCount))
        return rpc_cuMemcpyDtoD_v2(dstDevice, (CUdeviceptr)(uintptr_t)srcHost, ByteCount);
    CUresult shm_rc = tf_deferred_settle(srcHost, ByteCount);   /* copies still landing in the source first */
    if (shm_rc) return shm_rc;
    if (window_1d(1, dstDevice, srcHost, ByteCount, NULL, 0, &shm_rc)) return shm_rc;
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
    if (window_1d(0, srcDevice, dstHost, ByteCount, NULL, 0, &shm_rc)) return shm_rc;
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
    if (pinned_mapped_and_device(srcHost, dstDevice, ByteCount) && !tf_capture_live_on(hStream))
        return rpc_cuMemcpyDtoDAsync_v2(dstDevice, (CUdeviceptr)(uintptr_t)srcHost, ByteCount, hStream);
    CUresult shm_rc = tf_deferred_settle(srcHost, ByteCount);   /* copies still landing in the source first */
    if (shm_rc) return shm_rc;
    if (window_1d(1, dstDevice, srcHost, ByteCount, hStream, 1, &shm_rc)) return shm_rc;
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

/* CUDA's rule for an asynchronous device-to-host copy: to page-locked memory it returns at once and the bytes
 * are there when the stream reaches it; to pageable memory it returns once the copy is done. Page-locked memory
 * the worker maps: a device-to-device copy (pinned_mapped_and_device). Otherwise the worker stages it
 * (api_copy_deferred.c). Returns 0 (the caller copies and waits) for pageable memory, on a stream this process
 * is capturing (the worker answers that), for a source the stub does not know as device memory (the worker's
 * refusal then comes at this call, as CUDA's), or when the worker cannot stage the copy. */
static int dtoh_to_pinned(void *dst, CUdeviceptr src, size_t n, CUstream s, CUresult *rc)
{
    if (!dst || !n || tf_capture_live_on(s)) return 0;
    if (pinned_mapped_and_device(dst, src, n)) {
        *rc = rpc_cuMemcpyDtoDAsync_v2((CUdeviceptr)(uintptr_t)dst, src, n, s);
        return 1;
    }
    CUdeviceptr base;
    size_t size;
    if (tf_host_pinned(dst, n) != TF_HOST_PINNED || !tf_devmap_find(src, &base, &size) || n > size - (src - base))
        return 0;
    CUDA_MEMCPY3D far = {.srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = src, .dstMemoryType = CU_MEMORYTYPE_HOST,
                         .WidthInBytes = n, .Height = 1, .Depth = 1};
    tf_host_box box = {dst, n, 1, 1, n, n};
    *rc = tf_deferred_dtoh_3d(&far, &box, s);
    return *rc != CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult tfs_cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
{
    int captured;  /* on a capturing stream: a graph node that writes this range at each launch */
    CUresult cap_rc = tf_capture_host_copy(0, srcDevice, dstHost, ByteCount, hStream, &captured);
    if (captured) return cap_rc;
    CUresult shm_rc;
    if (dtoh_to_pinned(dstHost, srcDevice, ByteCount, hStream, &shm_rc)) return shm_rc;
    if (window_1d(0, srcDevice, dstHost, ByteCount, hStream, 1, &shm_rc)) return shm_rc;
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

/* 1D copies with an array: the array is the worker's handle (its storage is dense, so an offset is a byte
 * offset into it). Every one waits for its reply (calls.tbl): the window at any size, else client host bytes
 * in pieces of at most TF_COPY_CHUNK. */
typedef struct array_at {
    CUarray a;
    size_t off;
} array_at;

static CUresult piece_array1d(tfc_call *c, const void *far, int to_device, const tf_box_piece *p, uint64_t slot_off,
                              CUstream s, void *scratch)
{
    (void)scratch;
    const array_at *at = far;
    return enc_tfShmArray1D(c, at->a, at->off + p->x, slot_off, p->w, to_device, s);
}

static CUresult array1d(int to_array, CUarray a, size_t off, void *host, size_t n, CUstream s, int async)
{
    NEED_INIT();
    if (n && !host) return CUDA_ERROR_INVALID_VALUE;
    tf_host_box box = {host, n, 1, 1, n, n};
    array_at at = {a, off};
    CUresult rc;
    if (to_array && (rc = tf_deferred_settle(host, n))) return rc;
    /* to page-locked memory asynchronously: queued, written here later (api_copy_deferred.c) */
    if (!to_array && async && n && tf_host_pinned(host, n) != TF_HOST_PAGEABLE && !tf_capture_live_on(s) &&
        (rc = tf_deferred_atoh(host, a, off, n, s)) != CUDA_ERROR_OUT_OF_MEMORY)
        return rc;
    if (tf_shm_copy(to_array, &box, piece_array1d, &at, async ? s : NULL, 0, &rc)) return rc;
    uint8_t *p = host;
    do {
        size_t k = n < TF_COPY_CHUNK ? n : TF_COPY_CHUNK;
        if (to_array)
            rc = async ? rpc_cuMemcpyHtoAAsync_v2(a, off, p, k, s) : rpc_cuMemcpyHtoA_v2(a, off, p, k);
        else
            rc = async ? rpc_cuMemcpyAtoHAsync_v2(p, a, off, k, s) : rpc_cuMemcpyAtoH_v2(p, a, off, k);
        if (rc) return rc;
        off += k, p += k, n -= k;
    } while (n);
    return CUDA_SUCCESS;
}

CUresult tfs_cuMemcpyHtoA_v2(CUarray dstArray, size_t dstOffset, const void *srcHost, size_t ByteCount)
{
    return array1d(1, dstArray, dstOffset, (void *)(uintptr_t)srcHost, ByteCount, NULL, 0);
}
CUresult tfs_cuMemcpyHtoAAsync_v2(CUarray dstArray, size_t dstOffset, const void *srcHost, size_t ByteCount, CUstream hStream)
{
    return array1d(1, dstArray, dstOffset, (void *)(uintptr_t)srcHost, ByteCount, hStream, 1);
}
CUresult tfs_cuMemcpyAtoH_v2(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount)
{
    return array1d(0, srcArray, srcOffset, dstHost, ByteCount, NULL, 0);
}
CUresult tfs_cuMemcpyAtoHAsync_v2(void *dstHost, CUarray srcArray, size_t srcOffset, size_t ByteCount, CUstream hStream)
{
    return array1d(0, srcArray, srcOffset, dstHost, ByteCount, hStream, 1);
}

/* ----------------------------------------------------------------------------- 2D/3D copies */
/* Every 2D/3D entry point is one CUDA_MEMCPY3D whose UNIFIED sides are resolved from the stub's device map
 * and whose pitches and rows per slice are filled in (0: the width, the height; the emulator's reading).
 * A copy between the caller's host memory and device memory or an array takes the window when it waits
 * for its reply (host rows packed into its slots), else the socket (host rows packed into frames of at
 * most TF_COPY_CHUNK, whole rows of one slice, or parts of one row). An asynchronous copy to device memory
 * is sent without waiting on the socket at any size: the window would make the caller wait for the
 * worker's copy, which on the emulated device waits for the stream (a 2D/3D copy from pageable memory).
 * An asynchronous copy to page-locked memory does not wait either (as dtoh_to_pinned). Without host memory
 * the copy travels as the worker's handles and addresses. */

/* Resolves a UNIFIED side to DEVICE or HOST and fills in a linear side's pitch and rows per slice;
 * CUDA_ERROR_INVALID_VALUE for an unknown memory type or a pitch / slice smaller than the copy's. */
static CUresult side_normalize(CUmemorytype *t, const void **host, CUdeviceptr *dev, size_t *pitch, size_t *rows,
                               const CUDA_MEMCPY3D *c)
{
    if (*t == CU_MEMORYTYPE_UNIFIED) {
        CUdeviceptr p = *dev ? *dev : (CUdeviceptr)(uintptr_t)*host;
        int is_dev = tf_devmap_find(p, NULL, NULL);
        *t = is_dev ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
        *dev = is_dev ? p : 0;
        *host = is_dev ? NULL : (const void *)(uintptr_t)p;
    }
    if (*t == CU_MEMORYTYPE_ARRAY) return CUDA_SUCCESS;
    if (*t != CU_MEMORYTYPE_HOST && *t != CU_MEMORYTYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
    if (*t == CU_MEMORYTYPE_HOST ? !*host : !*dev) return CUDA_ERROR_INVALID_VALUE;
    *pitch = *pitch ? *pitch : c->WidthInBytes;
    *rows = *rows ? *rows : c->Height;
    if ((c->Height > 1 && *pitch < c->WidthInBytes) || (c->Depth > 1 && *rows < c->Height))
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

static CUresult normalize(CUDA_MEMCPY3D *p)
{
    const void *dst_host = p->dstHost;
    CUresult rc = side_normalize(&p->srcMemoryType, &p->srcHost, &p->srcDevice, &p->srcPitch, &p->srcHeight, p);
    if (!rc) rc = side_normalize(&p->dstMemoryType, &dst_host, &p->dstDevice, &p->dstPitch, &p->dstHeight, p);
    p->dstHost = (void *)(uintptr_t)dst_host;
    return rc;
}

/* A linear side's first byte, its address plus its offsets. */
static uint64_t side_at(uint64_t base, size_t x, size_t y, size_t z, size_t pitch, size_t rows)
{
    return base + (z * rows + y) * pitch + x;
}

/* One piece through the window: `far` is the copy with its host side blank (the worker names its slot). */
_Static_assert(sizeof(CUDA_MEMCPY3D) <= TF_SHM_SCRATCH, "a piece's CUDA_MEMCPY3D fits the scratch");

static CUresult piece_3d(tfc_call *c, const void *far, int to_device, const tf_box_piece *p, uint64_t slot_off,
                         CUstream s, void *scratch)
{
    CUDA_MEMCPY3D *q = scratch;  /* the request is sent from it */
    *q = *(const CUDA_MEMCPY3D *)far;
    if (to_device) q->dstXInBytes += p->x, q->dstY += p->y, q->dstZ += p->z;
    else q->srcXInBytes += p->x, q->srcY += p->y, q->srcZ += p->z;
    q->WidthInBytes = p->w, q->Height = p->h, q->Depth = p->d;
    return enc_tfShmMemcpy3D(c, q, slot_off, s);
}

/* Host rows over the socket, whole rows of one slice per frame (a row wider than a frame: in parts of one
 * frame, each a copy of one row); `far` as for piece_3d. */
static CUresult socket_host_copy(const CUDA_MEMCPY3D *far, const tf_host_box *box, int to_device, CUstream s,
                                 int async)
{
    size_t w = box->width < TF_COPY_CHUNK ? box->width : TF_COPY_CHUNK, h = box->height;  /* w: a part's width */
    CUmemorytype ft = to_device ? far->dstMemoryType : far->srcMemoryType;
    CUarray arr = to_device ? far->dstArray : far->srcArray;
    size_t fx = to_device ? far->dstXInBytes : far->srcXInBytes, fy = to_device ? far->dstY : far->srcY;
    size_t fz = to_device ? far->dstZ : far->srcZ, fpitch = to_device ? far->dstPitch : far->srcPitch;
    size_t frows = to_device ? far->dstHeight : far->srcHeight;
    CUdeviceptr fdev = to_device ? far->dstDevice : far->srcDevice;
    CUstream ws = async ? s : NULL;  /* the worker waits for a copy on NULL */
    size_t rows_per = TF_COPY_CHUNK / w;
    uint8_t *buf = malloc(rows_per < h ? rows_per * w : h * w);
    if (!buf) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CUDA_SUCCESS;
    for (size_t z = 0; rc == CUDA_SUCCESS && z < box->depth; z++) {
        for (size_t r0 = 0; rc == CUDA_SUCCESS && r0 < h; r0 += rows_per) {
            for (size_t x0 = 0; rc == CUDA_SUCCESS && x0 < box->width; x0 += w) {
                size_t n = h - r0 < rows_per ? h - r0 : rows_per, k = box->width - x0 < w ? box->width - x0 : w;
                uint8_t *row0 = box->base + z * box->slice + r0 * box->pitch + x0;
                if (to_device)
                    for (size_t r = 0; r < n; r++) memcpy(buf + r * k, row0 + r * box->pitch, k);
                CUdeviceptr d = ft == CU_MEMORYTYPE_ARRAY ? 0 : side_at(fdev, fx + x0, fy + r0, fz + z, fpitch, frows);
                if (ft == CU_MEMORYTYPE_ARRAY)
                    rc = to_device ? rpc_tfMemcpy3DHtoA(arr, fx + x0, fy + r0, fz + z, k, n, buf, ws)
                                   : rpc_tfMemcpy3DAtoH(buf, arr, fx + x0, fy + r0, fz + z, k, n, ws);
                else if (to_device)
                    rc = async ? rpc_tfMemcpy2DHtoDAsync(d, fpitch, k, n, buf, s) : rpc_tfMemcpy2DHtoD(d, fpitch, k, n, buf, NULL);
                else
                    rc = rpc_tfMemcpy2DDtoH(buf, d, fpitch, k, n, ws);
                if (!to_device)
                    for (size_t r = 0; rc == CUDA_SUCCESS && r < n; r++) memcpy(row0 + r * box->pitch, buf + r * k, k);
            }
        }
    }
    free(buf);
    return rc;
}

/* Device memory and arrays only: arrays as the CUDA_MEMCPY3D itself (checked by the worker), pitched device
 * memory one 2D copy per slice; a synchronous copy waits for the stream. */
static CUresult device_only_copy(const CUDA_MEMCPY3D *p, CUstream s, int async)
{
    CUresult rc = CUDA_SUCCESS;
    if (p->srcMemoryType == CU_MEMORYTYPE_ARRAY || p->dstMemoryType == CU_MEMORYTYPE_ARRAY) {
        CUDA_MEMCPY3D q = *p;
        q.srcHost = NULL, q.dstHost = NULL;
        rc = rpc_tfMemcpy3DArray(&q, s);
    } else {
        for (size_t z = 0; rc == CUDA_SUCCESS && z < p->Depth; z++)
            rc = rpc_tfMemcpy2DDtoD(side_at(p->dstDevice, p->dstXInBytes, p->dstY, p->dstZ + z, p->dstPitch, p->dstHeight),
                                    p->dstPitch,
                                    side_at(p->srcDevice, p->srcXInBytes, p->srcY, p->srcZ + z, p->srcPitch, p->srcHeight),
                                    p->srcPitch, p->WidthInBytes, p->Height, s);
    }
    return (rc == CUDA_SUCCESS && !async) ? tfs_cuStreamSynchronize(s) : rc;
}

/* Host to host: after the stream's earlier work, row by row. */
static CUresult host_only_copy(const CUDA_MEMCPY3D *p, CUstream s)
{
    CUresult rc = tfs_cuStreamSynchronize(s);
    for (size_t z = 0; rc == CUDA_SUCCESS && z < p->Depth; z++)
        for (size_t r = 0; r < p->Height; r++)
            memmove((uint8_t *)(uintptr_t)side_at((uint64_t)(uintptr_t)p->dstHost, p->dstXInBytes, p->dstY + r,
                                                  p->dstZ + z, p->dstPitch, p->dstHeight),
                    (const uint8_t *)(uintptr_t)side_at((uint64_t)(uintptr_t)p->srcHost, p->srcXInBytes, p->srcY + r,
                                                        p->srcZ + z, p->srcPitch, p->srcHeight),
                    p->WidthInBytes);
    return rc;
}

static CUresult memcpy3d(const CUDA_MEMCPY3D *c, CUstream hStream, int async)
{
    NEED_INIT();
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    if (c->srcLOD || c->dstLOD) return CUDA_ERROR_INVALID_VALUE; /* "must be set to 0" */
    if (c->WidthInBytes == 0 || c->Height == 0 || c->Depth == 0) return CUDA_SUCCESS;
    CUDA_MEMCPY3D p = *c;
    CUresult rc = normalize(&p);
    if (rc) return rc;
    int src_host = p.srcMemoryType == CU_MEMORYTYPE_HOST, dst_host = p.dstMemoryType == CU_MEMORYTYPE_HOST;
    if (src_host && dst_host) return host_only_copy(&p, hStream);
    if (!src_host && !dst_host) return device_only_copy(&p, hStream, async);
    tf_host_box box = src_host
        ? (tf_host_box){(uint8_t *)(uintptr_t)side_at((uint64_t)(uintptr_t)p.srcHost, p.srcXInBytes, p.srcY, p.srcZ, p.srcPitch, p.srcHeight),
                        p.WidthInBytes, p.Height, p.Depth, p.srcPitch, p.srcPitch * p.srcHeight}
        : (tf_host_box){(uint8_t *)(uintptr_t)side_at((uint64_t)(uintptr_t)p.dstHost, p.dstXInBytes, p.dstY, p.dstZ, p.dstPitch, p.dstHeight),
                        p.WidthInBytes, p.Height, p.Depth, p.dstPitch, p.dstPitch * p.dstHeight};
    CUDA_MEMCPY3D far = p;  /* the host side blank: the worker names its slot */
    if (src_host) far.srcHost = NULL, far.srcXInBytes = far.srcY = far.srcZ = 0, far.srcPitch = far.srcHeight = 0;
    else far.dstHost = NULL, far.dstXInBytes = far.dstY = far.dstZ = 0, far.dstPitch = far.dstHeight = 0;
    size_t extent = (box.depth - 1) * box.slice + (box.height - 1) * box.pitch + box.width;
    int kind = tf_capture_live_on(hStream) ? TF_HOST_PAGEABLE : tf_host_pinned(box.base, extent);
    if (kind == TF_HOST_PINNED_MAPPED) {  /* device memory to the worker, as in pinned_mapped_and_device */
        if (src_host) p.srcMemoryType = CU_MEMORYTYPE_DEVICE, p.srcDevice = (CUdeviceptr)(uintptr_t)p.srcHost;
        else p.dstMemoryType = CU_MEMORYTYPE_DEVICE, p.dstDevice = (CUdeviceptr)(uintptr_t)p.dstHost;
        return device_only_copy(&p, hStream, async);
    }
    if (src_host && (rc = tf_deferred_settle(box.base, extent))) return rc;
    /* to page-locked memory asynchronously: as dtoh_to_pinned */
    if (async && dst_host && kind == TF_HOST_PINNED && (rc = tf_deferred_dtoh_3d(&far, &box, hStream)) != CUDA_ERROR_OUT_OF_MEMORY)
        return rc;
    int sent_without_wait = async && src_host && p.dstMemoryType == CU_MEMORYTYPE_DEVICE;
    if (!sent_without_wait && tf_shm_copy(src_host, &box, piece_3d, &far, async ? hStream : NULL, 0, &rc)) return rc;
    return socket_host_copy(&far, &box, src_host, hStream, async);
}

static CUresult memcpy2d(const CUDA_MEMCPY2D *c, CUstream hStream, int async)
{
    if (!c) return memcpy3d(NULL, hStream, async);
    CUDA_MEMCPY3D p = {
        .srcXInBytes = c->srcXInBytes, .srcY = c->srcY, .srcMemoryType = c->srcMemoryType, .srcHost = c->srcHost,
        .srcDevice = c->srcDevice, .srcArray = c->srcArray, .srcPitch = c->srcPitch,
        .dstXInBytes = c->dstXInBytes, .dstY = c->dstY, .dstMemoryType = c->dstMemoryType, .dstHost = c->dstHost,
        .dstDevice = c->dstDevice, .dstArray = c->dstArray, .dstPitch = c->dstPitch,
        .WidthInBytes = c->WidthInBytes, .Height = c->Height, .Depth = 1,
    };
    return memcpy3d(&p, hStream, async);
}

CUresult tfs_cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy) { return memcpy2d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy) { return memcpy2d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream) { return memcpy2d(pCopy, hStream, 1); }
CUresult tfs_cuMemcpy3D_v2(const CUDA_MEMCPY3D *pCopy) { return memcpy3d(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D *pCopy, CUstream hStream) { return memcpy3d(pCopy, hStream, 1); }

/* Peer copies: the worker's devices share one address space (as the driver's unified addressing gives), so a
 * peer copy is a 3D copy with the same semantics; a side that is not an array must name a context of this
 * process (the emulated device's reading, emu_memory.c). */
static CUresult memcpy3d_peer(const CUDA_MEMCPY3D_PEER *p, CUstream hStream, int async)
{
    NEED_INIT();
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    if ((p->srcMemoryType != CU_MEMORYTYPE_ARRAY && !tf_ctx_known(p->srcContext)) ||
        (p->dstMemoryType != CU_MEMORYTYPE_ARRAY && !tf_ctx_known(p->dstContext)))
        return CUDA_ERROR_INVALID_CONTEXT;
    CUDA_MEMCPY3D c = tf_memcpy3d_of_peer(p);
    return memcpy3d(&c, hStream, async);
}

CUresult tfs_cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER *pCopy) { return memcpy3d_peer(pCopy, NULL, 0); }
CUresult tfs_cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER *pCopy, CUstream hStream) { return memcpy3d_peer(pCopy, hStream, 1); }
