/* emu_ipc.c - CUDA IPC on the emulated device: cuIpcGetMemHandle / cuIpcOpenMemHandle(_v2) /
 * cuIpcCloseMemHandle and cuIpcGetEventHandle / cuIpcOpenEventHandle, between processes of one host.
 * A cuMemAlloc'd range is a memfd mapped shared (emu_memory.c allocates it here, emu_ipc_alloc), so
 * another process can map the same pages: the 64-byte handle names the exporter (host = boot id and pid
 * namespace, pid) and its descriptor (fd number, inode); the importer opens /proc/<pid>/fd/<fd> (the
 * kernel allows it to the same user), checks the inode (a freed allocation's fd number may be reused)
 * and maps it. Imported ranges join the allocation table as device memory that is not charged to this
 * process (the exporter's VRAM). An interprocess event (CU_EVENT_INTERPROCESS) keeps its record counters in
 * a page of a memfd of its own (struct emu_ipc_evt); its handle names that descriptor the same way, and the
 * importer maps the page, so a record, wait, query or synchronize in any process sees every process's
 * records (emu_stream_queue.c uses the counters). Valid while its creator lives, as with memory handles.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emu_internal.h"

#define MEM_MAGIC "TFEMUIPM"
#define EVT_MAGIC "TFEMUIPE"

typedef struct {
    char magic[8];
    uint64_t host; /* boot id and pid namespace of the exporter */
    int32_t pid, fd;
    uint64_t ino, size, base, event;
    uint64_t pad;
} ipc_wire;
_Static_assert(sizeof(ipc_wire) == CU_IPC_HANDLE_SIZE, "an IPC handle is 64 bytes");

typedef struct exported {
    uint64_t base;
    size_t map_size;
    int fd;
    uint64_t ino;
    struct exported *next;
} exported;

typedef struct imported {
    int32_t pid;
    uint64_t ino;
    uint64_t ptr;
    size_t size, map_size;
    int refs;
    struct imported *next;
} imported;

static pthread_mutex_t g_ipc_mu = PTHREAD_MUTEX_INITIALIZER;
static exported *g_exported;
static imported *g_imported;

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

/* Which host (and pid namespace) this process is on: a handle from elsewhere cannot be opened here. */
static uint64_t host_id(void)
{
    static uint64_t id;
    if (id)
        return id;
    uint64_t h = 0xcbf29ce484222325ull;
    char buf[128];
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf, f);
        h = fnv(h, buf, n);
        fclose(f);
    }
    ssize_t n = readlink("/proc/self/ns/pid", buf, sizeof buf);
    if (n > 0)
        h = fnv(h, buf, (size_t)n);
    id = h ? h : 1;
    return id;
}

static void raise_fd_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max; /* one descriptor per device allocation */
        (void)setrlimit(RLIMIT_NOFILE, &r);
    }
}

int emu_ipc_alloc(size_t size, void **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, raise_fd_limit);
    size_t page = (size_t)sysconf(_SC_PAGESIZE), map_size = (size + page - 1) / page * page;
    exported *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    int fd = memfd_create("tf-emu-device", MFD_CLOEXEC);
    struct stat st;
    void *p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)map_size) == 0 && fstat(fd, &st) == 0)
        p = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        if (fd >= 0)
            close(fd);
        free(e);
        return -1;
    }
    *e = (exported){(uint64_t)(uintptr_t)p, map_size, fd, (uint64_t)st.st_ino, NULL};
    pthread_mutex_lock(&g_ipc_mu);
    e->next = g_exported;
    g_exported = e;
    pthread_mutex_unlock(&g_ipc_mu);
    *out = p;
    return 0;
}

int emu_ipc_free(uint64_t base)
{
    pthread_mutex_lock(&g_ipc_mu);
    for (exported **pe = &g_exported; *pe; pe = &(*pe)->next) {
        if ((*pe)->base != base)
            continue;
        exported *e = *pe;
        *pe = e->next;
        pthread_mutex_unlock(&g_ipc_mu);
        munmap((void *)(uintptr_t)e->base, e->map_size);
        close(e->fd);
        free(e);
        return 1;
    }
    pthread_mutex_unlock(&g_ipc_mu);
    return 0;
}

int emu_ipc_exportable(uint64_t base)
{
    int found = 0;
    pthread_mutex_lock(&g_ipc_mu);
    for (exported *e = g_exported; e && !found; e = e->next)
        found = e->base == base;
    pthread_mutex_unlock(&g_ipc_mu);
    return found;
}

EMU_API CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    EMU_ENTER(c);
    (void)c;
    if (!pHandle)
        return CUDA_ERROR_INVALID_VALUE;
    uint64_t base;
    size_t size;
    int kind;
    /* the base of a cuMemAlloc allocation (not an offset into one, not pool / managed / host memory) */
    unsigned flags;
    if (!emu_mem_find(dptr, &base, &size, &kind, &flags) || base != dptr || kind != EMU_MEM_DEVICE ||
        (flags & EMU_MEMF_POOL))
        return CUDA_ERROR_INVALID_VALUE;
    ipc_wire w = {.magic = MEM_MAGIC, .host = host_id(), .pid = (int32_t)getpid(), .size = size, .base = base};
    int found = 0;
    pthread_mutex_lock(&g_ipc_mu);
    for (exported *e = g_exported; e && !found; e = e->next) {
        if (e->base == base) {
            w.fd = e->fd;
            w.ino = e->ino;
            found = 1;
        }
    }
    pthread_mutex_unlock(&g_ipc_mu);
    if (!found)
        return CUDA_ERROR_MAP_FAILED; /* made without a descriptor (the process ran out of them) */
    memcpy(pHandle->reserved, &w, sizeof w);
    return CUDA_SUCCESS;
}

/* A handle of this host's emulated device from another process: CUDA_SUCCESS, else why not. */
static CUresult check_wire(const ipc_wire *w, const char *magic)
{
    if (memcmp(w->magic, magic, sizeof w->magic) != 0 || w->host != host_id() || w->pid <= 0)
        return CUDA_ERROR_INVALID_VALUE; /* not such a handle, or one from another host */
    if (w->pid == (int32_t)getpid())
        return CUDA_ERROR_INVALID_CONTEXT; /* as the driver: not in the process that exported it */
    if (kill(w->pid, 0) != 0 && errno == ESRCH)
        return CUDA_ERROR_INVALID_HANDLE; /* the exporter is gone */
    return CUDA_SUCCESS;
}

EMU_API CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags)
{
    EMU_ENTER(c);
    (void)c;
    if (!pdptr || (Flags & ~(unsigned)CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS))
        return CUDA_ERROR_INVALID_VALUE;
    ipc_wire w;
    memcpy(&w, handle.reserved, sizeof w);
    CUresult rc = check_wire(&w, MEM_MAGIC);
    if (rc)
        return rc;
    if (!w.size || w.fd < 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g_ipc_mu);
    for (imported *i = g_imported; i; i = i->next) {
        if (i->pid == w.pid && i->ino == w.ino) { /* opened before: same pointer, one more reference */
            i->refs++;
            *pdptr = i->ptr;
            pthread_mutex_unlock(&g_ipc_mu);
            return CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&g_ipc_mu);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)w.pid, (int)w.fd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return CUDA_ERROR_INVALID_HANDLE;
    struct stat st;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), map_size = (w.size + page - 1) / page * page;
    void *p = MAP_FAILED;
    /* the descriptor must still be that allocation: freed memory's fd number may name another file */
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_ino == w.ino && (uint64_t)st.st_size >= map_size)
        p = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return CUDA_ERROR_INVALID_HANDLE;
    imported *im = calloc(1, sizeof *im);
    if (!im || emu_mem_add((uint64_t)(uintptr_t)p, w.size, EMU_MEM_VMM, EMU_MEMF_IPC) != 0) {
        free(im);
        munmap(p, map_size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *im = (imported){w.pid, w.ino, (uint64_t)(uintptr_t)p, w.size, map_size, 1, NULL};
    pthread_mutex_lock(&g_ipc_mu);
    im->next = g_imported;
    g_imported = im;
    pthread_mutex_unlock(&g_ipc_mu);
    *pdptr = (CUdeviceptr)(uintptr_t)p;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    EMU_ENTER(c);
    (void)c;
    emu_sq_idle_all(); /* queued work may still use the mapping (emu_stream_queue.c) */
    pthread_mutex_lock(&g_ipc_mu);
    for (imported **pi = &g_imported; *pi; pi = &(*pi)->next) {
        imported *im = *pi;
        if (im->ptr != dptr)
            continue;
        if (--im->refs > 0) {
            pthread_mutex_unlock(&g_ipc_mu);
            return CUDA_SUCCESS;
        }
        *pi = im->next;
        pthread_mutex_unlock(&g_ipc_mu);
        emu_mem_remove(im->ptr, NULL, NULL);
        munmap((void *)(uintptr_t)im->ptr, im->map_size);
        free(im);
        return CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&g_ipc_mu);
    return CUDA_ERROR_INVALID_VALUE; /* not memory cuIpcOpenMemHandle returned */
}

struct emu_ipc_evt {
    _Atomic uint64_t issued; /* records numbered so far, in every process */
    _Atomic uint64_t done;   /* the highest record number that ran */
};

static size_t evt_page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

int emu_ipc_event_create(emu_event *e)
{
    int fd = memfd_create("tf-emu-event", MFD_CLOEXEC);
    void *p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)evt_page()) == 0)
        p = mmap(NULL, evt_page(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    e->ipc = p; /* zero-filled: nothing issued, nothing done */
    e->ipc_fd = fd;
    return 0;
}

void emu_ipc_event_free(emu_event *e)
{
    if (!e->ipc)
        return;
    munmap(e->ipc, evt_page());
    if (e->ipc_fd >= 0)
        close(e->ipc_fd);
    e->ipc = NULL;
    e->ipc_fd = -1;
}

uint64_t emu_ipc_event_issue(emu_event *e) { return atomic_fetch_add(&e->ipc->issued, 1) + 1; }
uint64_t emu_ipc_event_issued(const emu_event *e) { return atomic_load(&e->ipc->issued); }
int emu_ipc_event_reached(const emu_event *e, uint64_t v) { return atomic_load(&e->ipc->done) >= v; }

void emu_ipc_event_complete(struct emu_ipc_evt *s, uint64_t v)
{
    uint64_t d = atomic_load(&s->done);
    while (d < v && !atomic_compare_exchange_weak(&s->done, &d, v)) {
    }
}

EMU_API CUresult cuIpcGetEventHandle(CUipcEventHandle *pHandle, CUevent event)
{
    EMU_ENTER(c);
    (void)c;
    if (!pHandle)
        return CUDA_ERROR_INVALID_VALUE;
    if (!emu_handle_is(event, EMU_K_EVENT))
        return CUDA_ERROR_INVALID_HANDLE;
    unsigned need = CU_EVENT_INTERPROCESS | CU_EVENT_DISABLE_TIMING;
    emu_event *e = (emu_event *)event;
    if ((e->flags & need) != need || !e->ipc)
        return CUDA_ERROR_INVALID_VALUE;
    struct stat st;
    if (e->ipc_fd < 0 || fstat(e->ipc_fd, &st) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    ipc_wire w = {.magic = EVT_MAGIC, .host = host_id(), .pid = (int32_t)getpid(), .fd = e->ipc_fd,
                  .ino = (uint64_t)st.st_ino, .event = (uint64_t)(uintptr_t)event};
    memcpy(pHandle->reserved, &w, sizeof w);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuIpcOpenEventHandle(CUevent *phEvent, CUipcEventHandle handle)
{
    EMU_ENTER(c);
    (void)c;
    if (!phEvent)
        return CUDA_ERROR_INVALID_VALUE;
    ipc_wire w;
    memcpy(&w, handle.reserved, sizeof w);
    CUresult rc = check_wire(&w, EVT_MAGIC);
    if (rc)
        return rc;
    if (w.fd < 0)
        return CUDA_ERROR_INVALID_VALUE;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)w.pid, (int)w.fd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return CUDA_ERROR_INVALID_HANDLE;
    struct stat st;
    void *p = MAP_FAILED;
    /* the descriptor must still be that event's: a destroyed event's fd number may name another file */
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_ino == w.ino && (uint64_t)st.st_size >= evt_page())
        p = mmap(NULL, evt_page(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return CUDA_ERROR_INVALID_HANDLE;
    }
    CUevent ev;
    rc = cuEventCreate(&ev, CU_EVENT_DISABLE_TIMING); /* a local event, then given the shared counters */
    if (rc) {
        munmap(p, evt_page());
        close(fd);
        return rc;
    }
    emu_event *e = (emu_event *)ev;
    e->flags |= CU_EVENT_INTERPROCESS;
    e->ipc = p;
    e->ipc_fd = fd; /* kept: its own handle (cuIpcGetEventHandle) names the same counters */
    *phEvent = ev;
    return CUDA_SUCCESS;
}
