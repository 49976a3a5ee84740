/* tf_memcpy3d_peer.h - a CUDA_MEMCPY3D_PEER's copy as the CUDA_MEMCPY3D with the same fields (its contexts
 * dropped: the caller checks them). One conversion for the stub (stub_c/api_copy.c) and the emulated device
 * (emu_c/emu_memory.c), whose peer copies are 3D copies in one address space. */
#ifndef TF_MEMCPY3D_PEER_H
#define TF_MEMCPY3D_PEER_H
#include <cuda.h>

static inline CUDA_MEMCPY3D tf_memcpy3d_of_peer(const CUDA_MEMCPY3D_PEER *p)
{
    return (CUDA_MEMCPY3D){
        .srcXInBytes = p->srcXInBytes, .srcY = p->srcY, .srcZ = p->srcZ, .srcLOD = p->srcLOD,
        .srcMemoryType = p->srcMemoryType, .srcHost = p->srcHost, .srcDevice = p->srcDevice,
        .srcArray = p->srcArray, .srcPitch = p->srcPitch, .srcHeight = p->srcHeight,
        .dstXInBytes = p->dstXInBytes, .dstY = p->dstY, .dstZ = p->dstZ, .dstLOD = p->dstLOD,
        .dstMemoryType = p->dstMemoryType, .dstHost = p->dstHost, .dstDevice = p->dstDevice,
        .dstArray = p->dstArray, .dstPitch = p->dstPitch, .dstHeight = p->dstHeight,
        .WidthInBytes = p->WidthInBytes, .Height = p->Height, .Depth = p->Depth,
    };
}

#endif
