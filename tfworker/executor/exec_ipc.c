/* exec_ipc.c - CUDA IPC in the GPU worker process: the hand-written rows of proto/calls.tbl's IPC section.
 * A client's cuIpcOpenMemHandle / cuIpcOpenEventHandle arrive as tfIpcOpenMemHandle / tfIpcOpenEventHandle
 * (the handle travels by pointer) and are opened from the backend, which maps the memory of the executor of
 * the exporting client (another session on this host: NVIDIA's driver, or the emulator's shared memfd).
 * An opened range joins the device-pointer registry once, however often the client opens it (the driver
 * returns the same pointer and counts references), and leaves it at the last cuIpcCloseMemHandle. It is
 * not charged to this session: the limiter counts allocations, and these bytes are the exporter's.
 */
#include <pthread.h>
#include <stdlib.h>

#include "executor.h"
#include "exec_calls.h"

typedef struct ipc_open {
    CUdeviceptr p;
    int refs;
    struct ipc_open *next;
} ipc_open;

static pthread_mutex_t g_ipc_mu = PTHREAD_MUTEX_INITIALIZER;
static ipc_open *g_open;

CUresult ex_tfIpcOpenMemHandle(tfx *x, CUdeviceptr *pdptr, size_t *psize, const CUipcMemHandle *handle,
                               unsigned int Flags)
{
    if (!x->bx.cuIpcOpenMemHandle_v2 || !x->bx.cuMemGetAddressRange_v2) return CUDA_ERROR_NOT_SUPPORTED;
    CUdeviceptr p = 0, base = 0;
    size_t size = 0;
    CUresult rc = x->bx.cuIpcOpenMemHandle_v2(&p, *handle, Flags);
    if (rc) return rc;
    rc = x->bx.cuMemGetAddressRange_v2(&base, &size, p);
    if (rc == CUDA_SUCCESS && base != p) rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_ipc_mu);
    ipc_open *o = g_open;
    while (o && o->p != p) o = o->next;
    if (rc == CUDA_SUCCESS && !o) {
        o = calloc(1, sizeof *o);
        if (!o) rc = CUDA_ERROR_OUT_OF_MEMORY;
        else {
            *o = (ipc_open){p, 0, g_open};
            g_open = o;
            tf_dev_add(x, (uint64_t)p, (uint64_t)size);
        }
    }
    if (rc == CUDA_SUCCESS) o->refs++;
    pthread_mutex_unlock(&g_ipc_mu);
    if (rc) {
        x->bx.cuIpcCloseMemHandle(p);   /* the backend counted this open */
        return rc;
    }
    *pdptr = p;
    *psize = size;
    return CUDA_SUCCESS;
}

CUresult ex_cuIpcCloseMemHandle(tfx *x, CUdeviceptr dptr)
{
    if (!x->bx.cuIpcCloseMemHandle) return CUDA_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&g_ipc_mu);
    ipc_open **po = &g_open;
    while (*po && (*po)->p != dptr) po = &(*po)->next;
    if (!*po) {   /* not memory cuIpcOpenMemHandle returned to this client */
        pthread_mutex_unlock(&g_ipc_mu);
        return CUDA_ERROR_INVALID_VALUE;
    }
    CUresult rc = x->bx.cuIpcCloseMemHandle(dptr);
    if (rc == CUDA_SUCCESS && --(*po)->refs == 0) {
        ipc_open *o = *po;
        *po = o->next;
        free(o);
        tf_dev_del(x, (uint64_t)dptr);
    }
    pthread_mutex_unlock(&g_ipc_mu);
    return rc;
}

CUresult ex_tfIpcOpenEventHandle(tfx *x, CUevent *phEvent, const CUipcEventHandle *handle)
{
    if (!x->bx.cuIpcOpenEventHandle) return CUDA_ERROR_NOT_SUPPORTED;
    return x->bx.cuIpcOpenEventHandle(phEvent, *handle);
}
