/* exec_vmm.c - the executor's hand-written side of virtual memory management, memory pools and stream
 * memory operations (calls.tbl rows with exec=hand in the sections "virtual memory management",
 * "memory pools", "peers and stream memory operations"); called by the generated dispatch.
 *
 * The client's addresses and handles are checked here before the backend sees them: a reservation
 * is known from cuMemAddressReserve to cuMemAddressFree, a mapping from cuMemMap to cuMemUnmap (and
 * joins the device-pointer registry, so every dev[...] check accepts mapped VA and rejects the rest),
 * an allocation handle from cuMemCreate / cuMemImportFromShareableHandle / cuMemRetainAllocationHandle
 * until as many cuMemRelease. One session per process: the state hangs off tfx (x->vmm).
 * POSIX-fd shareable handles (tfMemExportToFd / tfMemImportFromFd, and for IPC memory pools
 * tfMemPoolExportToFd / tfMemPoolImportFromFd): the backend's descriptor itself goes to the client with the
 * reply (SCM_RIGHTS, Unix sockets only) and comes back with an import's frame; one mechanism for both
 * (fd_export / fd_import below), one policy (the IPC scope marks of exec_ipc.c).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "executor.h"

typedef struct { uint64_t base, size; } vrange;
typedef struct { uint64_t base, size, handle; } vmap;
typedef struct { uint64_t handle; uint64_t refs; } vhandle;

struct tf_vmm {
    vrange *res;
    size_t nres, capres;
    vmap *map;
    size_t nmap, capmap;
    vhandle *h;
    size_t nh, caph;
};

static struct tf_vmm *vmm_of(tfx *x)
{
    if (!x->vmm) x->vmm = calloc(1, sizeof *x->vmm);
    return x->vmm;
}

void tf_vmm_free(tfx *x)
{
    if (!x->vmm) return;
    free(x->vmm->res);
    free(x->vmm->map);
    free(x->vmm->h);
    free(x->vmm);
    x->vmm = NULL;
}

/* grows *arr (elements of `sz` bytes) to hold one more; 0 on success */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * sz);
    if (!p) return -1;
    *arr = p;
    *cap = c;
    return 0;
}

static vhandle *handle_find(struct tf_vmm *v, uint64_t h)
{
    for (size_t i = 0; v && i < v->nh; i++)
        if (v->h[i].handle == h) return &v->h[i];
    return NULL;
}

/* one more reference of the client to handle h; -1 if out of memory */
static int handle_ref(struct tf_vmm *v, uint64_t h)
{
    vhandle *e = handle_find(v, h);
    if (e) { e->refs++; return 0; }
    if (grow((void **)&v->h, &v->caph, v->nh, sizeof *v->h)) return -1;
    v->h[v->nh++] = (vhandle){h, 1};
    return 0;
}

static int range_in(uint64_t p, uint64_t n, uint64_t base, uint64_t size)
{
    return n <= size && p >= base && p - base <= size - n;
}

static int overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
    return a < b + bn && b < a + an;
}

/* the mapping containing address p, or NULL */
static vmap *map_at(struct tf_vmm *v, uint64_t p)
{
    for (size_t i = 0; v && i < v->nmap; i++)
        if (p >= v->map[i].base && p - v->map[i].base < v->map[i].size) return &v->map[i];
    return NULL;
}

/* 1 if [p, p+n) is mapped throughout (possibly by several adjacent mappings) */
static int fully_mapped(struct tf_vmm *v, uint64_t p, uint64_t n)
{
    if (n == 0 || p + n < p) return 0;
    for (uint64_t a = p; a < p + n;) {
        vmap *m = map_at(v, a);
        if (!m) return 0;
        a = m->base + m->size;
    }
    return 1;
}

CUresult ex_cuMemAddressReserve(tfx *x, CUdeviceptr_v2 *ptr, size_t size, size_t alignment, CUdeviceptr_v2 addr,
                                unsigned long long flags)
{
    struct tf_vmm *v = vmm_of(x);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    if (!x->be.f_cuMemAddressReserve) return CUDA_ERROR_NOT_SUPPORTED;
    if (grow((void **)&v->res, &v->capres, v->nres, sizeof *v->res)) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = x->be.f_cuMemAddressReserve(ptr, size, alignment, addr, flags);
    if (rc == CUDA_SUCCESS) v->res[v->nres++] = (vrange){*ptr, size};
    return rc;
}

CUresult ex_cuMemAddressFree(tfx *x, CUdeviceptr_v2 ptr, size_t size)
{
    struct tf_vmm *v = vmm_of(x);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    size_t i = 0;
    while (i < v->nres && (v->res[i].base != ptr || v->res[i].size != size)) i++;
    if (i == v->nres) return CUDA_ERROR_INVALID_VALUE;  /* not a reservation of this session */
    for (size_t j = 0; j < v->nmap; j++)
        if (overlaps(v->map[j].base, v->map[j].size, ptr, size)) return CUDA_ERROR_INVALID_VALUE;  /* unmap first */
    if (!x->be.f_cuMemAddressFree) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuMemAddressFree(ptr, size);
    if (rc == CUDA_SUCCESS) v->res[i] = v->res[--v->nres];
    return rc;
}

CUresult ex_cuMemCreate(tfx *x, CUmemGenericAllocationHandle_v1 *handle, size_t size,
                        const CUmemAllocationProp_v1 *prop, unsigned long long flags)
{
    struct tf_vmm *v = vmm_of(x);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    if (!x->be.f_cuMemCreate) return CUDA_ERROR_NOT_SUPPORTED;
    if (!prop) return CUDA_ERROR_INVALID_VALUE;
    CUmemAllocationProp p = *prop;
    p.win32HandleMetaData = NULL;  /* a client pointer: meaningless here (Windows only) */
    CUresult rc = x->be.f_cuMemCreate(handle, size, &p, flags);
    if (rc == CUDA_SUCCESS && handle_ref(v, *handle)) {
        if (x->be.f_cuMemRelease) x->be.f_cuMemRelease(*handle);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return rc;
}

CUresult ex_cuMemRelease(tfx *x, CUmemGenericAllocationHandle_v1 handle)
{
    struct tf_vmm *v = vmm_of(x);
    vhandle *e = handle_find(v, handle);
    if (!e) return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuMemRelease) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuMemRelease(handle);
    if (rc == CUDA_SUCCESS && --e->refs == 0) *e = v->h[--v->nh];
    return rc;
}

CUresult ex_cuMemMap(tfx *x, CUdeviceptr_v2 ptr, size_t size, size_t offset, CUmemGenericAllocationHandle_v1 handle,
                     unsigned long long flags)
{
    struct tf_vmm *v = vmm_of(x);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    if (!handle_find(v, handle)) return CUDA_ERROR_INVALID_HANDLE;
    size_t i = 0;
    while (i < v->nres && !range_in(ptr, size, v->res[i].base, v->res[i].size)) i++;
    if (i == v->nres || size == 0) return CUDA_ERROR_INVALID_VALUE;  /* outside every reservation */
    for (size_t j = 0; j < v->nmap; j++)
        if (overlaps(v->map[j].base, v->map[j].size, ptr, size)) return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuMemMap) return CUDA_ERROR_NOT_SUPPORTED;
    if (grow((void **)&v->map, &v->capmap, v->nmap, sizeof *v->map)) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = x->be.f_cuMemMap(ptr, size, offset, handle, flags);
    if (rc == CUDA_SUCCESS) {
        v->map[v->nmap++] = (vmap){ptr, size, handle};
        tf_dev_add(x, ptr, size);
    }
    return rc;
}

CUresult ex_cuMemUnmap(tfx *x, CUdeviceptr_v2 ptr, size_t size)
{
    struct tf_vmm *v = vmm_of(x);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    /* the range must consist of whole mappings: none may stick out of it */
    if (!fully_mapped(v, ptr, size)) return CUDA_ERROR_INVALID_VALUE;
    for (size_t j = 0; j < v->nmap; j++)
        if (overlaps(v->map[j].base, v->map[j].size, ptr, size) && !range_in(v->map[j].base, v->map[j].size, ptr, size))
            return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuMemUnmap) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuMemUnmap(ptr, size);
    if (rc != CUDA_SUCCESS) return rc;
    for (size_t j = 0; j < v->nmap;) {
        if (range_in(v->map[j].base, v->map[j].size, ptr, size)) {
            tf_dev_del(x, v->map[j].base);
            v->map[j] = v->map[--v->nmap];
        } else {
            j++;
        }
    }
    return CUDA_SUCCESS;
}

CUresult ex_cuMemSetAccess(tfx *x, CUdeviceptr_v2 ptr, size_t size, const CUmemAccessDesc_v1 *desc, size_t count)
{
    if (!desc || count == 0 || !fully_mapped(vmm_of(x), ptr, size)) return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuMemSetAccess) return CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuMemSetAccess(ptr, size, desc, count);
}

CUresult ex_cuMemGetAllocationPropertiesFromHandle(tfx *x, CUmemAllocationProp_v1 *prop,
                                                   CUmemGenericAllocationHandle_v1 handle)
{
    if (!handle_find(vmm_of(x), handle)) return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuMemGetAllocationPropertiesFromHandle) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuMemGetAllocationPropertiesFromHandle(prop, handle);
    if (rc == CUDA_SUCCESS) prop->win32HandleMetaData = NULL;  /* an address of this process */
    return rc;
}

CUresult ex_cuMemRetainAllocationHandle(tfx *x, CUmemGenericAllocationHandle_v1 *handle, void *addr)
{
    struct tf_vmm *v = vmm_of(x);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    if (!map_at(v, (uint64_t)(uintptr_t)addr)) return CUDA_ERROR_INVALID_VALUE;  /* not mapped VA */
    if (!x->be.f_cuMemRetainAllocationHandle) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuMemRetainAllocationHandle(handle, addr);
    if (rc == CUDA_SUCCESS && handle_ref(v, *handle)) {
        if (x->be.f_cuMemRelease) x->be.f_cuMemRelease(*handle);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return rc;
}

/* Only a fabric handle names memory another host can import; a POSIX fd or Win32 handle is a
 * descriptor of this process (the stub refuses those before sending, this is the same rule). */
CUresult ex_cuMemExportToShareableHandle(tfx *x, void *shareableHandle, CUmemGenericAllocationHandle_v1 handle,
                                         CUmemAllocationHandleType handleType, unsigned long long flags)
{
    if (!handle_find(vmm_of(x), handle) || !shareableHandle) return CUDA_ERROR_INVALID_VALUE;
    if (handleType != CU_MEM_HANDLE_TYPE_FABRIC) return CUDA_ERROR_NOT_SUPPORTED;
    if (!x->be.f_cuMemExportToShareableHandle) return CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuMemExportToShareableHandle(shareableHandle, handle, handleType, flags);
}

CUresult ex_cuMemImportFromShareableHandle(tfx *x, CUmemGenericAllocationHandle_v1 *handle, void *osHandle,
                                           CUmemAllocationHandleType shHandleType)
{
    struct tf_vmm *v = vmm_of(x);
    if (!v) return CUDA_ERROR_OUT_OF_MEMORY;
    if (!osHandle) return CUDA_ERROR_INVALID_VALUE;
    if (shHandleType != CU_MEM_HANDLE_TYPE_FABRIC) return CUDA_ERROR_NOT_SUPPORTED;
    if (!x->be.f_cuMemImportFromShareableHandle) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult rc = x->be.f_cuMemImportFromShareableHandle(handle, osHandle, shHandleType);
    if (rc == CUDA_SUCCESS && handle_ref(v, *handle)) {
        if (x->be.f_cuMemRelease) x->be.f_cuMemRelease(*handle);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return rc;
}

/* POSIX file descriptors (same host). The client gets the backend's own descriptor: it is a kernel
 * capability the application may pass on with SCM_RIGHTS (as memMapIPCDrv does) but cannot forge, and the
 * importing session's executor gets back the very file the exporter's backend made, so no registry of
 * descriptors between GPU worker processes is needed. Policy as CUDA IPC's (exec_ipc.c): the export marks
 * the file's identity (device and inode) in the allocation's scope; an import of a file without the mark
 * (another tenant's, or any other file) is CUDA_ERROR_NOT_PERMITTED before the backend sees it. */
static int fd_key(int fd, uint64_t key[3])
{
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    key[0] = 0x6466706d6d76ull;   /* "vmmpfd": never the 64 bytes of a cuIpc handle */
    key[1] = (uint64_t)st.st_dev;
    key[2] = (uint64_t)st.st_ino;
    return 0;
}

static int client_on_unix_socket(tfx *x)
{
    struct sockaddr_storage a;
    socklen_t n = sizeof a;
    return !x->ssl && getsockname(x->fd, (struct sockaddr *)&a, &n) == 0 && a.ss_family == AF_UNIX;
}

/* After the backend exported descriptor fd: mark it in the allocation's scope and hand it to the reply. */
static CUresult fd_export(tfx *x, int fd)
{
    uint64_t key[3];
    CUresult rc = fd_key(fd, key) ? CUDA_ERROR_OPERATING_SYSTEM : tfx_ipc_mark_export(x, key, sizeof key);
    if (rc != CUDA_SUCCESS) {
        close(fd);
        return rc;
    }
    x->tx_fd = fd;   /* sent with the reply, then closed here: the client holds the only copy */
    return CUDA_SUCCESS;
}

/* The descriptor an import's frame carried, if a session of this allocation exported it (CUDA_SUCCESS; the
 * caller closes *fd), else why not (*fd is then closed). */
static CUresult fd_import(tfx *x, int *fd)
{
    *fd = x->rx_fd;
    x->rx_fd = -1;
    uint64_t key[3];
    CUresult rc = *fd < 0 || fd_key(*fd, key) ? CUDA_ERROR_INVALID_VALUE : tfx_ipc_check_import(key, sizeof key);
    if (rc != CUDA_SUCCESS && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

CUresult ex_tfMemExportToFd(tfx *x, CUmemGenericAllocationHandle_v1 handle, unsigned long long flags)
{
    if (!handle_find(vmm_of(x), handle)) return CUDA_ERROR_INVALID_VALUE;
    if (!client_on_unix_socket(x) || !x->be.f_cuMemExportToShareableHandle) return CUDA_ERROR_NOT_SUPPORTED;
    int fd = -1;
    CUresult rc = x->be.f_cuMemExportToShareableHandle(&fd, handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, flags);
    return rc == CUDA_SUCCESS ? fd_export(x, fd) : rc;
}

CUresult ex_tfMemImportFromFd(tfx *x, CUmemGenericAllocationHandle_v1 *handle)
{
    struct tf_vmm *v = vmm_of(x);
    int fd = -1;
    CUresult rc = fd_import(x, &fd);
    if (rc == CUDA_SUCCESS && !v) rc = CUDA_ERROR_OUT_OF_MEMORY;
    else if (rc == CUDA_SUCCESS && !x->be.f_cuMemImportFromShareableHandle) rc = CUDA_ERROR_NOT_SUPPORTED;
    if (rc == CUDA_SUCCESS)
        rc = x->be.f_cuMemImportFromShareableHandle(handle, (void *)(intptr_t)fd, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    if (fd >= 0) close(fd);   /* the backend keeps its own reference, as the driver does */
    if (rc == CUDA_SUCCESS && handle_ref(v, *handle)) {
        if (x->be.f_cuMemRelease) x->be.f_cuMemRelease(*handle);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return rc;
}

/* IPC memory pools (the generated decoders checked the pool handles: this session's pools only). */
CUresult ex_tfMemPoolExportToFd(tfx *x, CUmemoryPool pool, unsigned long long flags)
{
    if (!client_on_unix_socket(x) || !x->bx.cuMemPoolExportToShareableHandle) return CUDA_ERROR_NOT_SUPPORTED;
    int fd = -1;
    CUresult rc = x->bx.cuMemPoolExportToShareableHandle(&fd, pool, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, flags);
    return rc == CUDA_SUCCESS ? fd_export(x, fd) : rc;
}

CUresult ex_tfMemPoolImportFromFd(tfx *x, CUmemoryPool *pool_out, unsigned long long flags)
{
    int fd = -1;
    CUresult rc = fd_import(x, &fd);
    if (rc == CUDA_SUCCESS && !x->bx.cuMemPoolImportFromShareableHandle) rc = CUDA_ERROR_NOT_SUPPORTED;
    if (rc == CUDA_SUCCESS)
        rc = x->bx.cuMemPoolImportFromShareableHandle(pool_out, (void *)(intptr_t)fd,
                                                      CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, flags);
    if (fd >= 0) close(fd);   /* the backend keeps its own reference */
    return rc;
}

/* The imported range joins the device-pointer registry with its size (the decoder's alloc(*psize)), as an
 * opened IPC handle does; it is not charged to this session (the limiter counts allocations). *pdev: the
 * device it belongs to (the pool's, which the client cannot ask of an imported pool), -1 if not known. */
CUresult ex_tfMemPoolImportPointer(tfx *x, CUdeviceptr *ptr_out, size_t *psize, int *pdev, CUmemoryPool pool,
                                   const CUmemPoolPtrExportData *shareData)
{
    if (!shareData) return CUDA_ERROR_INVALID_VALUE;
    if (!x->bx.cuMemPoolImportPointer || !x->bx.cuMemGetAddressRange_v2) return CUDA_ERROR_NOT_SUPPORTED;
    CUmemPoolPtrExportData data = *shareData;
    CUdeviceptr p = 0, base = 0;
    size_t size = 0;
    CUresult rc = x->bx.cuMemPoolImportPointer(&p, pool, &data);
    if (rc != CUDA_SUCCESS) return rc;
    rc = x->bx.cuMemGetAddressRange_v2(&base, &size, p);
    if (rc == CUDA_SUCCESS && base != p) rc = CUDA_ERROR_INVALID_VALUE;
    if (rc != CUDA_SUCCESS) {
        if (x->be.f_cuMemFree_v2) x->be.f_cuMemFree_v2(p);
        return rc;
    }
    int dev = -1;
    if (!x->bx.cuPointerGetAttribute || x->bx.cuPointerGetAttribute(&dev, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p))
        dev = -1;
    *ptr_out = p;
    *psize = size;
    *pdev = dev;
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------------------------------ pools */
CUresult ex_cuMemPoolCreate(tfx *x, CUmemoryPool *pool, const CUmemPoolProps_v1 *poolProps)
{
    if (!poolProps) return CUDA_ERROR_INVALID_VALUE;
    if (!x->be.f_cuMemPoolCreate) return CUDA_ERROR_NOT_SUPPORTED;
    CUmemPoolProps p = *poolProps;
    p.win32SecurityAttributes = NULL;  /* a client pointer (Windows only) */
    return x->be.f_cuMemPoolCreate(pool, &p);
}

/* ------------------------------------------------------------------- stream memory operations */
/* Every operation's address must be device memory of the session (the device writes or polls it). */
CUresult ex_cuStreamBatchMemOp_v2(tfx *x, CUstream stream, unsigned int count, CUstreamBatchMemOpParams *paramArray,
                                  unsigned int flags)
{
    if (count && !paramArray) return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < count; i++) {
        const CUstreamBatchMemOpParams *op = &paramArray[i];
        switch (op->operation) {
        case CU_STREAM_MEM_OP_WAIT_VALUE_32:
        case CU_STREAM_MEM_OP_WAIT_VALUE_64:
            if (!tf_dev_ok(x, op->waitValue.address, op->operation == CU_STREAM_MEM_OP_WAIT_VALUE_32 ? 4 : 8))
                return CUDA_ERROR_INVALID_VALUE;
            break;
        case CU_STREAM_MEM_OP_WRITE_VALUE_32:
        case CU_STREAM_MEM_OP_WRITE_VALUE_64:
            if (!tf_dev_ok(x, op->writeValue.address, op->operation == CU_STREAM_MEM_OP_WRITE_VALUE_32 ? 4 : 8))
                return CUDA_ERROR_INVALID_VALUE;
            break;
        case CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES:
        case CU_STREAM_MEM_OP_BARRIER:
            break;
        default:
            return CUDA_ERROR_INVALID_VALUE;  /* unknown operations may carry addresses we cannot check */
        }
    }
    if (!x->be.f_cuStreamBatchMemOp_v2) return CUDA_ERROR_NOT_SUPPORTED;
    return x->be.f_cuStreamBatchMemOp_v2(stream, count, paramArray, flags);
}
