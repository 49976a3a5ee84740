/* api_ipc.c - the client stub's hand-written entry points for CUDA IPC (the IPC section of proto/calls.tbl):
 * the application carries the backend's 64-byte handles between its processes; each process's stub asks its
 * own GPU worker process to open them (tfIpcOpenMemHandle / tfIpcOpenEventHandle, the handle by pointer).
 * Opened ranges join the device map at the first open and leave it at the last close (the driver returns one
 * pointer per handle and counts opens). An interprocess event (exported or imported here) is recorded
 * synchronously: another process may wait on it as soon as cuEventRecord returns, so the record - and the
 * work before it - must have reached the worker, not wait in this process's batch.
 */
#include <stdlib.h>

#include "stub.h"
#include "stub_calls.h"

typedef struct ipc_range { CUdeviceptr p; int refs; struct ipc_range *next; } ipc_range;
typedef struct ipc_event { CUevent e; struct ipc_event *next; } ipc_event;
static pthread_mutex_t g_ipc_mu = PTHREAD_MUTEX_INITIALIZER;
static ipc_range *g_ranges;
static ipc_event *g_events;
static int g_nevents;

static void ipc_event_add(CUevent e)
{
    ipc_event *n = malloc(sizeof *n);
    if (!n) return;   /* the record stays batched: correct within this process, late for the others */
    pthread_mutex_lock(&g_ipc_mu);
    int seen = 0;
    for (ipc_event *i = g_events; i && !seen; i = i->next) seen = i->e == e;
    if (!seen) {
        *n = (ipc_event){e, g_events};
        g_events = n;
        __atomic_add_fetch(&g_nevents, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&g_ipc_mu);
    if (seen) free(n);
}

static int ipc_event_is(CUevent e)
{
    if (!__atomic_load_n(&g_nevents, __ATOMIC_RELAXED)) return 0;
    int seen = 0;
    pthread_mutex_lock(&g_ipc_mu);
    for (ipc_event *i = g_events; i && !seen; i = i->next) seen = i->e == e;
    pthread_mutex_unlock(&g_ipc_mu);
    return seen;
}

CUresult tfs_cuIpcGetEventHandle(CUipcEventHandle *pHandle, CUevent event)
{
    CUresult rc = rpc_cuIpcGetEventHandle(pHandle, event);
    if (rc == CUDA_SUCCESS) ipc_event_add(event);
    return rc;
}

CUresult tfs_cuIpcOpenEventHandle(CUevent *phEvent, CUipcEventHandle handle)
{
    NEED_INIT();
    CUresult rc = rpc_tfIpcOpenEventHandle(phEvent, &handle);
    if (rc == CUDA_SUCCESS && phEvent) ipc_event_add(*phEvent);
    return rc;
}

CUresult tfs_cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    if (!tf_event_on_stream_context(hEvent, hStream))
        return CUDA_ERROR_INVALID_HANDLE;   /* cuEventRecord: the event and the stream must be of one context */
    if (!ipc_event_is(hEvent)) return rpc_cuEventRecordWithFlags(hEvent, hStream, flags);
    tfc_call c;
    CUresult rc = enc_cuEventRecordWithFlags(&c, hEvent, hStream, flags);
    return rc ? rc : tfc_sync(&c);
}

CUresult tfs_cuEventRecord(CUevent hEvent, CUstream hStream)
{
    if (!tf_event_on_stream_context(hEvent, hStream))
        return CUDA_ERROR_INVALID_HANDLE;   /* cuEventRecord: the event and the stream must be of one context */
    if (!ipc_event_is(hEvent)) return rpc_cuEventRecord(hEvent, hStream);
    tfc_call c;
    CUresult rc = enc_cuEventRecord(&c, hEvent, hStream);
    return rc ? rc : tfc_sync(&c);
}

CUresult tfs_cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags)
{
    NEED_INIT();
    if (!pdptr) return CUDA_ERROR_INVALID_VALUE;
    size_t size = 0;
    CUdeviceptr p = 0;
    CUresult rc = rpc_tfIpcOpenMemHandle(&p, &size, &handle, Flags);
    if (rc) return rc;
    ipc_range *n = malloc(sizeof *n);
    pthread_mutex_lock(&g_ipc_mu);
    ipc_range *r = g_ranges;
    while (r && r->p != p) r = r->next;
    if (!r && n) {
        *n = (ipc_range){p, 0, g_ranges};
        g_ranges = r = n;
        n = NULL;
        tf_devmap_add(p, size);
    }
    if (r) r->refs++;
    pthread_mutex_unlock(&g_ipc_mu);
    free(n);
    if (!r) {
        rpc_cuIpcCloseMemHandle(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pdptr = p;
    return CUDA_SUCCESS;
}

CUresult tfs_cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    CUresult rc = rpc_cuIpcCloseMemHandle(dptr);
    if (rc) return rc;
    pthread_mutex_lock(&g_ipc_mu);
    for (ipc_range **pr = &g_ranges; *pr; pr = &(*pr)->next) {
        if ((*pr)->p != dptr) continue;
        if (--(*pr)->refs == 0) {
            ipc_range *r = *pr;
            *pr = r->next;
            free(r);
            tf_devmap_del(dptr);
        }
        break;
    }
    pthread_mutex_unlock(&g_ipc_mu);
    return rc;
}
