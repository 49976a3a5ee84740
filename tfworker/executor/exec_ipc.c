/* exec_ipc.c - CUDA IPC in the GPU worker process: the hand-written rows of proto/calls.tbl's IPC section.
 * A client's cuIpcOpenMemHandle / cuIpcOpenEventHandle arrive as tfIpcOpenMemHandle / tfIpcOpenEventHandle
 * (the handle travels by pointer) and are opened from the backend, which maps the memory of the executor of
 * the exporting client (another session on this host: NVIDIA's driver, or the emulator's shared memfd).
 * An opened range joins the device-pointer registry once, however often the client opens it (the driver
 * returns the same pointer and counts references), and leaves it at the last cuIpcCloseMemHandle. It is
 * not charged to this session: the limiter counts allocations, and these bytes are the exporter's.
 * Policy: a handle opens only in a session of the allocation that exported it. The worker daemon names the
 * allocation in TF_IPC_SCOPE (its id and a random part, so that no one can tell the folder's name before it
 * exists); each export leaves a mark (the handle's hash) in /dev/shm/tf-ipc-<scope hash>/,
 * and an open whose handle has no mark in its own scope's folder is CUDA_ERROR_NOT_PERMITTED - another
 * tenant's memory never maps here, even from a leaked or forged handle. The folder must be the worker user's own,
 * mode 0700 (a tenant who is a local user could make it first in world-writable /dev/shm and plant marks). Without TF_IPC_SCOPE (a standalone
 * worker) the processes of this host's user share handles as on a plain driver. The same marks guard the
 * POSIX-fd shareable handles of virtual memory management and of IPC memory pools (exec_vmm.c: tfMemExportToFd /
 * tfMemImportFromFd, tfMemPoolExportToFd / tfMemPoolImportFromFd).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor.h"
#include "exec_calls.h"

typedef struct ipc_open {
    CUdeviceptr p;
    int refs;
    struct ipc_open *next;
} ipc_open;

static pthread_mutex_t g_ipc_mu = PTHREAD_MUTEX_INITIALIZER;
static ipc_open *g_open;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
    return h;
}

/* The scope folder of this session and the mark of handle bytes h in it; 0 when there is no scope (no policy). */
static int mark_path(char *dir, size_t dn, char *name, size_t nn, const void *h, size_t hn)
{
    const char *scope = getenv("TF_IPC_SCOPE");
    if (!scope || !*scope) return 0;
    snprintf(dir, dn, "/dev/shm/tf-ipc-%016llx", (unsigned long long)fnv(0xcbf29ce484222325ull, scope, strlen(scope)));
    snprintf(name, nn, "%016llx", (unsigned long long)fnv(0xcbf29ce484222325ull, h, hn));
    return 1;
}

/* The scope folder, opened (made first if `create`): a directory of this process's user that no one else may
 * enter, never a link. /dev/shm is world-writable and the folder's name follows from an allocation id its tenant
 * knows, so a local user could make it first and plant marks for another allocation's handles: such a folder
 * is refused (-1, errno EPERM), as is any failure. */
static int scope_dir(const char *dir, int create)
{
    if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

/* After an export: leave the mark (fails closed: no mark, no handle). */
CUresult tfx_ipc_mark_export(tfx *x, const void *h, size_t hn)
{
    char dir[64], name[32];
    (void)x;
    if (!mark_path(dir, sizeof dir, name, sizeof name, h, hn)) return CUDA_SUCCESS;
    int dfd = scope_dir(dir, 1);
    int fd = dfd < 0 ? -1 : openat(dfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        tfx_log("IPC: cannot record an exported handle in %s (%s%s)", dir, strerror(errno),
                errno == EPERM ? ": the folder is not this worker's own, mode 0700" : "");
        if (dfd >= 0) close(dfd);
        return CUDA_ERROR_OPERATING_SYSTEM;
    }
    close(fd);
    close(dfd);
    return CUDA_SUCCESS;
}

/* Before an open: the handle must have been exported by a session of this allocation, whose mark is in the
 * worker's own scope folder. */
CUresult tfx_ipc_check_import(const void *h, size_t hn)
{
    char dir[64], name[32];
    if (!mark_path(dir, sizeof dir, name, sizeof name, h, hn)) return CUDA_SUCCESS;
    int dfd = scope_dir(dir, 0);
    struct stat st;
    int marked = dfd >= 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    if (dfd < 0 && errno == EPERM)
        tfx_log("IPC: refused a handle: %s is not this worker's own folder (mode 0700): another user made it", dir);
    else if (!marked)
        tfx_log("IPC: refused a handle not exported by a session of this allocation");
    if (dfd >= 0) close(dfd);
    return marked ? CUDA_SUCCESS : CUDA_ERROR_NOT_PERMITTED;
}

CUresult ex_cuIpcGetMemHandle(tfx *x, CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    if (!x->bx.cuIpcGetMemHandle) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->bx.cuIpcGetMemHandle(pHandle, dptr);
    return rc ? rc : tfx_ipc_mark_export(x, pHandle->reserved, sizeof pHandle->reserved);
}

CUresult ex_cuIpcGetEventHandle(tfx *x, CUipcEventHandle *pHandle, CUevent event)
{
    if (!x->bx.cuIpcGetEventHandle) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->bx.cuIpcGetEventHandle(pHandle, event);
    return rc ? rc : tfx_ipc_mark_export(x, pHandle->reserved, sizeof pHandle->reserved);
}

CUresult ex_tfIpcOpenMemHandle(tfx *x, CUdeviceptr *pdptr, size_t *psize, const CUipcMemHandle *handle,
                               unsigned int Flags)
{
    if (!x->bx.cuIpcOpenMemHandle_v2 || !x->bx.cuMemGetAddressRange_v2) return CUDA_ERROR_NOT_SUPPORTED;
    CUdeviceptr p = 0, base = 0;
    size_t size = 0;
    CUresult rc = tfx_ipc_check_import(handle->reserved, sizeof handle->reserved);
    if (rc) return rc;
    rc = x->bx.cuIpcOpenMemHandle_v2(&p, *handle, Flags);
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
    CUresult rc = tfx_ipc_check_import(handle->reserved, sizeof handle->reserved);
    return rc ? rc : x->bx.cuIpcOpenEventHandle(phEvent, *handle);
}
