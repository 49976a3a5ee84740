/* api_link.c - the client stub's hand-written JIT-linking entry points and function/kernel names.
 * Inputs travel to the worker (cuLinkAddFile reads the file here: it is a path of this machine); the
 * linked image comes back whole (tfLinkCompleteSize, tfLinkGetImage) and is owned here until
 * cuLinkDestroy, as CUDA's cubinOut is owned by the link state. Names come back as text and are kept
 * (one copy per distinct name, never freed), so the pointer handed out stays valid as CUDA promises.
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; the list of areas is in stub.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"

typedef struct link_out {
    CUlinkState state;
    void *image;
    struct link_out *next;
} link_out;

static pthread_mutex_t g_link_mu = PTHREAD_MUTEX_INITIALIZER;
static link_out *g_links;

/* takes `image` as the output of `state` (replacing an earlier one) */
static void link_keep(CUlinkState state, void *image)
{
    pthread_mutex_lock(&g_link_mu);
    link_out *l = g_links;
    while (l && l->state != state) l = l->next;
    if (!l && (l = calloc(1, sizeof *l))) {
        l->state = state;
        l->next = g_links;
        g_links = l;
    }
    if (l) {
        free(l->image);
        l->image = image;
    } else {
        free(image);
    }
    pthread_mutex_unlock(&g_link_mu);
}

static void link_drop(CUlinkState state)
{
    pthread_mutex_lock(&g_link_mu);
    for (link_out **p = &g_links; *p; p = &(*p)->next) {
        if ((*p)->state != state) continue;
        link_out *l = *p;
        *p = l->next;
        free(l->image);
        free(l);
        break;
    }
    pthread_mutex_unlock(&g_link_mu);
}

CUresult tfs_cuLinkAddFile_v2(CUlinkState state, CUjitInputType type, const char *path, unsigned int numOptions,
                              CUjit_option *options, void **optionValues)
{
    NEED_INIT();
    if (!path) return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(path, "rb");
    if (!f) return CUDA_ERROR_FILE_NOT_FOUND;
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) { free(buf); buf = NULL; break; }
            buf = b;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = bad || n == 0 ? CUDA_ERROR_FILE_NOT_FOUND
                                : tfs_cuLinkAddData_v2(state, type, buf, n, path, numOptions, options, optionValues);
    free(buf);
    return rc;
}

CUresult tfs_cuLinkComplete(CUlinkState state, void **cubinOut, size_t *sizeOut)
{
    NEED_INIT();
    if (!cubinOut || !sizeOut) return CUDA_ERROR_INVALID_VALUE;
    unsigned long long size = 0;
    CUresult rc = rpc_tfLinkCompleteSize(state, &size);
    if (rc != CUDA_SUCCESS) return rc;
    if (size == 0 || size > TF_MAX_FRAME) return CUDA_ERROR_NOT_SUPPORTED;
    void *image = malloc(size + 1);
    if (!image) return CUDA_ERROR_OUT_OF_MEMORY;
    rc = rpc_tfLinkGetImage(state, image, size);
    if (rc != CUDA_SUCCESS) {
        free(image);
        return rc;
    }
    ((char *)image)[size] = 0;
    link_keep(state, image);
    *cubinOut = image;
    *sizeOut = (size_t)size;
    return CUDA_SUCCESS;
}

CUresult tfs_cuLinkDestroy(CUlinkState state)
{
    NEED_INIT();
    CUresult rc = rpc_cuLinkDestroy(state);
    if (rc == CUDA_SUCCESS) link_drop(state);
    return rc;
}

/* ------------------------------------------------------------------------------------ names */
typedef struct name_entry { struct name_entry *next; char s[]; } name_entry;
static name_entry *g_names;
static pthread_mutex_t g_names_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *intern(const char *s)
{
    pthread_mutex_lock(&g_names_mu);
    name_entry *e = g_names;
    while (e && strcmp(e->s, s) != 0) e = e->next;
    if (!e && (e = malloc(sizeof *e + strlen(s) + 1))) {
        strcpy(e->s, s);
        e->next = g_names;
        g_names = e;
    }
    pthread_mutex_unlock(&g_names_mu);
    return e ? e->s : NULL;
}

static CUresult get_name(const char **name, unsigned long long handle, int is_kernel)
{
    NEED_INIT();
    if (!name || !handle) return CUDA_ERROR_INVALID_VALUE;
    char buf[4096];
    CUresult rc = rpc_tfGetName(handle, is_kernel, buf);
    if (rc != CUDA_SUCCESS) return rc;
    buf[sizeof buf - 1] = 0;
    *name = intern(buf);
    return *name ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult tfs_cuKernelGetName(const char **name, CUkernel hfunc)
{
    return get_name(name, (unsigned long long)(uintptr_t)hfunc, 1);
}

CUresult tfs_cuFuncGetName(const char **name, CUfunction hfunc)
{
    return get_name(name, (unsigned long long)(uintptr_t)hfunc, 0);
}
