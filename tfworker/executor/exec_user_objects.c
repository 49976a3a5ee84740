/* exec_user_objects.c - the client's CUDA user objects (cuUserObjectCreate/Retain/Release,
 * cuGraphRetainUserObject/ReleaseUserObject) in the GPU worker process. Called by the generated dispatch.
 *
 * Where the references live: here, on a proxy user object of the backend driver, not in the stub. Graphs,
 * their clones and child graphs, their executable graphs and the launches of those are all the worker's,
 * and only the backend knows when the executions that hold a reference have finished (CUDA: an executable
 * graph destroyed while launches are pending gives its references back after them). A count kept in the
 * client could only learn that with a synchronize. The proxy's destructor, which the backend runs on a
 * thread of its own once the last reference went, asks the client over the host-call channel to run the
 * client's destructor (tfx_host_call_node: the stub's callback thread runs fn(ptr), exec_host_calls.c); so
 * the client's function runs once, and never before the executions holding the object finished. The stub
 * makes the channel at cuUserObjectCreate and refuses the call where there can be none (TCP/TLS).
 *
 * Each proxy is kept until its destructor ran: a call naming a handle the worker does not know, or one whose
 * destructor started, is CUDA_ERROR_INVALID_VALUE (what cuda.h lists), not a call into the backend with a
 * dead object. Calls hold g_uo.mu around the backend call, so a destructor cannot start meanwhile (CUDA
 * never waits for a destructor, CU_USER_OBJECT_NO_DESTRUCTOR_SYNC, so the backend cannot wait on us).
 */
#include <pthread.h>
#include <stdlib.h>

#include "executor.h"

typedef struct proxy {
    CUuserObject obj;    /* the backend's handle, what the client holds */
    uint64_t fn, data;   /* the client's destructor and its argument */
    struct proxy *next;
} proxy;

static struct {
    pthread_mutex_t mu;  /* the list */
    proxy *live;         /* proxies whose destructor has not started */
} g_uo = {PTHREAD_MUTEX_INITIALIZER, NULL};

static proxy **find_locked(CUuserObject obj)
{
    proxy **pp = &g_uo.live;
    while (*pp && (*pp)->obj != obj) pp = &(*pp)->next;
    return pp;
}

/* On the backend's destructor thread: the object is gone; the client runs its destructor. */
static void CUDA_CB proxy_destroy(void *arg)
{
    proxy *p = arg;
    pthread_mutex_lock(&g_uo.mu);
    proxy **pp = &g_uo.live;
    while (*pp && *pp != p) pp = &(*pp)->next;
    if (*pp) *pp = p->next;
    pthread_mutex_unlock(&g_uo.mu);
    if (tfx_host_call_node(p->fn, p->data) != 0)
        tfx_log("user object %p: no host-call channel left to run the client's destructor", (void *)p->obj);
    free(p);
}

CUresult ex_cuUserObjectCreate(tfx *x, CUuserObject *object_out, void *ptr, CUhostFn destroy,
                               unsigned int initialRefcount, unsigned int flags)
{
    if (!x->be.f_cuUserObjectCreate) return CUDA_ERROR_NOT_SUPPORTED;
    if (!destroy) return CUDA_ERROR_INVALID_VALUE;   /* the backend would get our proxy_destroy instead */
    proxy *p = calloc(1, sizeof *p);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    p->fn = (uint64_t)(uintptr_t)destroy;
    p->data = (uint64_t)(uintptr_t)ptr;
    pthread_mutex_lock(&g_uo.mu);   /* listed before a release of the client's can reach the backend */
    CUresult rc = x->be.f_cuUserObjectCreate(object_out, p, proxy_destroy, initialRefcount, flags);
    if (rc == CUDA_SUCCESS) {
        p->obj = *object_out;
        p->next = g_uo.live;
        g_uo.live = p;
    }
    pthread_mutex_unlock(&g_uo.mu);
    if (rc != CUDA_SUCCESS) free(p);
    return rc;
}

CUresult ex_cuUserObjectRetain(tfx *x, CUuserObject object, unsigned int count)
{
    if (!x->be.f_cuUserObjectRetain) return CUDA_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&g_uo.mu);
    CUresult rc = *find_locked(object) ? x->be.f_cuUserObjectRetain(object, count) : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&g_uo.mu);
    return rc;
}

CUresult ex_cuUserObjectRelease(tfx *x, CUuserObject object, unsigned int count)
{
    if (!x->be.f_cuUserObjectRelease) return CUDA_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&g_uo.mu);
    CUresult rc = *find_locked(object) ? x->be.f_cuUserObjectRelease(object, count) : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&g_uo.mu);
    return rc;
}

CUresult ex_cuGraphRetainUserObject(tfx *x, CUgraph graph, CUuserObject object, unsigned int count, unsigned int flags)
{
    if (!x->be.f_cuGraphRetainUserObject) return CUDA_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&g_uo.mu);
    CUresult rc = *find_locked(object) ? x->be.f_cuGraphRetainUserObject(graph, object, count, flags)
                                       : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&g_uo.mu);
    return rc;
}

CUresult ex_cuGraphReleaseUserObject(tfx *x, CUgraph graph, CUuserObject object, unsigned int count)
{
    if (!x->be.f_cuGraphReleaseUserObject) return CUDA_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&g_uo.mu);
    CUresult rc = *find_locked(object) ? x->be.f_cuGraphReleaseUserObject(graph, object, count)
                                       : CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_unlock(&g_uo.mu);
    return rc;
}
