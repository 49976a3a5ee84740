/* api_capture.c - the client stub's hand-written entry points for stream capture and graphs.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

/* ------------------------------------------------------------------------- stream capture */
/* Capture (and graphs) are not forwarded, so no stream is ever capturing; PyTorch and cudart ask often. */
CUresult tfs_cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    (void)hStream;
    NEED_INIT();
    if (!captureStatus) return CUDA_ERROR_INVALID_VALUE;
    *captureStatus = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
}

CUresult tfs_cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out)
{
    CUresult rc = tfs_cuStreamIsCapturing(hStream, captureStatus_out);
    if (rc == CUDA_SUCCESS && id_out) *id_out = 0;
    return rc;
}

CUresult tfs_cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out,
                                       CUgraph *graph_out, const CUgraphNode **dependencies_out,
                                       size_t *numDependencies_out)
{
    CUresult rc = tfs_cuStreamGetCaptureInfo(hStream, captureStatus_out, id_out);
    if (rc) return rc;
    if (graph_out) *graph_out = NULL;
    if (dependencies_out) *dependencies_out = NULL;
    if (numDependencies_out) *numDependencies_out = 0;
    return CUDA_SUCCESS;
}

CUresult tfs_cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out, cuuint64_t *id_out,
                                       CUgraph *graph_out, const CUgraphNode **dependencies_out,
                                       const CUgraphEdgeData **edgeData_out, size_t *numDependencies_out)
{
    CUresult rc = tfs_cuStreamGetCaptureInfo_v2(hStream, captureStatus_out, id_out, graph_out, dependencies_out,
                                                numDependencies_out);
    if (rc == CUDA_SUCCESS && edgeData_out) *edgeData_out = NULL;
    return rc;
}

CUresult tfs_cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    static __thread CUstreamCaptureMode t_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    CUstreamCaptureMode old = t_mode;
    t_mode = *mode;
    *mode = old;
    return CUDA_SUCCESS;
}

/* Capture and graphs would need the graph to live on the worker: answered plainly, said once. */
static CUresult graphs_not_forwarded(void)
{
    static int said;
    if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
        tf_log("stream capture and CUDA graphs are not forwarded to the worker (CUDA_ERROR_NOT_SUPPORTED)");
    return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult tfs_cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    (void)hStream, (void)mode;
    return graphs_not_forwarded();
}

CUresult tfs_cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    (void)hStream, (void)phGraph;
    return CUDA_ERROR_ILLEGAL_STATE;  /* never capturing */
}

CUresult tfs_cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    (void)phGraph, (void)flags;
    return graphs_not_forwarded();
}
