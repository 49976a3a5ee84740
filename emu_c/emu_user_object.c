/* emu_user_object.c - CUDA user objects on the emulated device: cuUserObjectCreate/Retain/Release and
 * cuGraphRetainUserObject/ReleaseUserObject (CUDA C++ Programming Guide, "CUDA User Objects").
 *
 * A user object is a pointer and a destructor with a reference count. References belong to the program,
 * to graphs (each emu_graph keeps an emu_uref_set, cloned with the graph, so a child graph node's copy
 * holds its own) and to executable graphs (at instantiation they take the references of the graph, its
 * child graphs and conditional bodies, and cuGraphExecUpdate replaces them with those of its graph;
 * cuGraphExecDestroy gives them back after waiting for the exec's queued launches, so an object never dies
 * while an execution that holds it is pending). When the last
 * reference goes, the destructor runs on this file's destructor thread, never in the caller: CUDA runs
 * it on "a shared internal thread", it must not call CUDA, and CU_USER_OBJECT_NO_DESTRUCTOR_SYNC (the only
 * flag, which CUDA requires) says that no CUDA call waits for it. Called by emu_graph.c and the exports.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "emu_internal.h"

typedef struct emu_uobj {
    void *ptr;
    CUhostFn destroy;
    unsigned long long refs; /* g_uo.mu */
    struct emu_uobj *next;   /* in the destructor queue */
} emu_uobj;

static struct {
    pthread_mutex_t mu;    /* every refs field, the queue, started */
    pthread_cond_t cv;     /* something to destroy */
    emu_uobj *queue;       /* objects whose last reference went, oldest last */
    int started;
} g_uo = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0};

static void *destructor_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_uo.mu);
    for (;;) {
        while (!g_uo.queue)
            pthread_cond_wait(&g_uo.cv, &g_uo.mu);
        emu_uobj **pp = &g_uo.queue; /* the oldest: destructors run in the order their objects died */
        while ((*pp)->next)
            pp = &(*pp)->next;
        emu_uobj *o = *pp;
        *pp = NULL;
        pthread_mutex_unlock(&g_uo.mu);
        o->destroy(o->ptr);
        free(o);
        pthread_mutex_lock(&g_uo.mu);
    }
    return NULL;
}

/* The destructor thread, started with the first user object. */
static CUresult start_locked(void)
{
    if (g_uo.started)
        return CUDA_SUCCESS;
    pthread_attr_t a;
    pthread_t t;
    if (pthread_attr_init(&a))
        return CUDA_ERROR_OPERATING_SYSTEM;
    int rc = pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (!rc)
        rc = pthread_create(&t, &a, destructor_thread, NULL);
    pthread_attr_destroy(&a);
    if (rc)
        return CUDA_ERROR_OPERATING_SYSTEM;
    g_uo.started = 1;
    return CUDA_SUCCESS;
}

static int live(const void *obj) { return obj && emu_handle_is(obj, EMU_K_UOBJ); }

/* Counts are "nonzero and not larger than INT_MAX" (cuda.h). */
static int count_ok(unsigned long long count) { return count >= 1 && count <= INT_MAX; }

static void retain(emu_uobj *o, unsigned long long count)
{
    pthread_mutex_lock(&g_uo.mu);
    o->refs += count;
    pthread_mutex_unlock(&g_uo.mu);
}

/* The last reference gone: the handle dies now, the destructor runs on the destructor thread. */
static void release(emu_uobj *o, unsigned long long count)
{
    pthread_mutex_lock(&g_uo.mu);
    o->refs -= count < o->refs ? count : o->refs;
    int dead = o->refs == 0;
    pthread_mutex_unlock(&g_uo.mu);
    if (!dead)
        return;
    emu_handle_del(o); /* takes emu_lock: never under g_uo.mu (callers may hold emu_lock, then g_uo.mu) */
    pthread_mutex_lock(&g_uo.mu);
    o->next = g_uo.queue;
    g_uo.queue = o;
    pthread_cond_signal(&g_uo.cv);
    pthread_mutex_unlock(&g_uo.mu);
}

EMU_API CUresult cuUserObjectCreate(CUuserObject *object_out, void *ptr, CUhostFn destroy, unsigned int initialRefcount,
                                    unsigned int flags)
{
    CUresult rc = emu_check_init();
    if (rc)
        return rc;
    if (!object_out || !destroy || !count_ok(initialRefcount) || flags != CU_USER_OBJECT_NO_DESTRUCTOR_SYNC)
        return CUDA_ERROR_INVALID_VALUE;
    emu_uobj *o = calloc(1, sizeof(*o));
    if (!o)
        return CUDA_ERROR_OUT_OF_MEMORY;
    o->ptr = ptr;
    o->destroy = destroy;
    o->refs = initialRefcount;
    pthread_mutex_lock(&g_uo.mu);
    rc = start_locked();
    pthread_mutex_unlock(&g_uo.mu);
    if (rc == CUDA_SUCCESS && emu_handle_add(o, EMU_K_UOBJ))
        rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc) {
        free(o);
        return rc;
    }
    *object_out = (CUuserObject)o;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuUserObjectRetain(CUuserObject object, unsigned int count)
{
    if (!live(object) || !count_ok(count))
        return CUDA_ERROR_INVALID_VALUE;
    retain((emu_uobj *)object, count);
    return CUDA_SUCCESS;
}

/* Releasing references the caller does not own is undefined in CUDA; here more than the object has left
 * is INVALID_VALUE and changes nothing. */
EMU_API CUresult cuUserObjectRelease(CUuserObject object, unsigned int count)
{
    if (!live(object) || !count_ok(count))
        return CUDA_ERROR_INVALID_VALUE;
    emu_uobj *o = (emu_uobj *)object;
    pthread_mutex_lock(&g_uo.mu);
    int enough = o->refs >= count;
    pthread_mutex_unlock(&g_uo.mu);
    if (!enough)
        return CUDA_ERROR_INVALID_VALUE;
    release(o, count);
    return CUDA_SUCCESS;
}

static emu_uref *find(const emu_uref_set *s, const emu_uobj *o)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].obj == o)
            return &s->v[i];
    return NULL;
}

CUresult emu_urefs_add(emu_uref_set *s, void *obj, unsigned long long count, int take_new)
{
    if (!live(obj))
        return CUDA_ERROR_INVALID_VALUE;
    emu_uref *r = find(s, obj);
    if (!r) {
        if (s->n == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : 4;
            emu_uref *v = realloc(s->v, ncap * sizeof(*v));
            if (!v)
                return CUDA_ERROR_OUT_OF_MEMORY;
            s->v = v;
            s->cap = ncap;
        }
        r = &s->v[s->n++];
        r->obj = obj;
        r->count = 0;
    }
    r->count += count;
    if (take_new)
        retain(obj, count);
    return CUDA_SUCCESS;
}

CUresult emu_urefs_release(emu_uref_set *s, void *obj, unsigned long long count)
{
    emu_uref *r = live(obj) ? find(s, obj) : NULL;
    if (!r || r->count < count)
        return CUDA_ERROR_INVALID_VALUE;
    r->count -= count;
    if (r->count == 0)
        *r = s->v[--s->n];
    release(obj, count);
    return CUDA_SUCCESS;
}

CUresult emu_urefs_copy(emu_uref_set *dst, const emu_uref_set *src)
{
    for (size_t i = 0; i < src->n; i++) {
        CUresult rc = emu_urefs_add(dst, src->v[i].obj, src->v[i].count, 1);
        if (rc)
            return rc;
    }
    return CUDA_SUCCESS;
}

void emu_urefs_clear(emu_uref_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        release(s->v[i].obj, s->v[i].count);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* A bogus graph is INVALID_HANDLE (what the GPU worker's handle check answers through the stub); a bogus
 * object, a bad count or flag INVALID_VALUE, as cuda.h lists. */
EMU_API CUresult cuGraphRetainUserObject(CUgraph graph, CUuserObject object, unsigned int count, unsigned int flags)
{
    emu_uref_set *s = emu_graph_urefs(graph);
    if (!s)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!count_ok(count) || (flags & ~(unsigned)CU_GRAPH_USER_OBJECT_MOVE))
        return CUDA_ERROR_INVALID_VALUE;
    emu_lock();
    CUresult rc = emu_urefs_add(s, object, count, !(flags & CU_GRAPH_USER_OBJECT_MOVE));
    emu_unlock();
    return rc;
}

EMU_API CUresult cuGraphReleaseUserObject(CUgraph graph, CUuserObject object, unsigned int count)
{
    emu_uref_set *s = emu_graph_urefs(graph);
    if (!s)
        return CUDA_ERROR_INVALID_HANDLE;
    if (!count_ok(count))
        return CUDA_ERROR_INVALID_VALUE;
    emu_lock();
    CUresult rc = emu_urefs_release(s, object, count);
    emu_unlock();
    return rc;
}
