/* ptx_jit_cache.c - the PTX JIT's disk cache: compiled object code per kernel, so a kernel compiles once
 * per machine rather than once per process. Called by ptx_jit.c (in libcuda.so.1; no LLVM here).
 *
 * An entry is one file named by a 128-bit hash of its key, holding the key itself (the exact bytes the
 * code depends on: generator version, LLVM version, target CPU and features, the decoded program), so a
 * hash collision or another machine's file never passes for ours, and a checksum of the object, so a
 * truncated or damaged file is refused; either way the caller compiles and rewrites the entry.
 * Writes go to a temporary file renamed into place: a reader sees a whole entry or none.
 *
 *   file = "TFJITC01" | u32 keylen | u32 0 | u64 objlen | u64 fnv(obj) | key | obj
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ptx_jit.h"
#include "tf_fd_io.h"

#define MAGIC "TFJITC01"
#define HDR 32
#define MAX_OBJ (256u << 20)

static uint64_t fnv64(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_dir[PATH_MAX];
static int g_have_dir;

/* mkdir -p with mode 0700 for what it creates */
static int mkdirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0700);
        *p = '/';
        if (r && errno != EEXIST) return -1;
    }
    return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

static void pick_dir(void) {
    const char *e = getenv("TF_EMU_JIT_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int n;
    if (e && (!strcmp(e, "off") || !strcmp(e, "0"))) return;
    if (e && *e) n = snprintf(g_dir, sizeof(g_dir), "%s", e);
    else if (x && *x == '/') n = snprintf(g_dir, sizeof(g_dir), "%s/tensorfusion/jit", x);
    else if (h && *h == '/') n = snprintf(g_dir, sizeof(g_dir), "%s/.cache/tensorfusion/jit", h);
    else return;
    if (n <= 0 || (size_t)n >= sizeof(g_dir) - 64) return;
    if (mkdirs(g_dir)) {
        fprintf(stderr, "tf-emu: jit: cache directory %s: %s; compiled kernels are not kept on disk\n", g_dir, strerror(errno));
        return;
    }
    /* the directory holds code this process will run: it must be ours and closed to others */
    struct stat st;
    if (stat(g_dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
        fprintf(stderr, "tf-emu: jit: cache directory %s is not a directory owned by this user and closed to others; "
                        "compiled kernels are not kept on disk\n", g_dir);
        return;
    }
    g_have_dir = 1;
}

const char *ptx_jit_cache_dir(void) {
    pthread_once(&g_once, pick_dir);
    return g_have_dir ? g_dir : NULL;
}

static int entry_path(char *out, size_t n, const char *dir, const void *key, size_t keylen) {
    uint64_t a = fnv64(0xcbf29ce484222325ull, key, keylen), b = fnv64(0x84222325cbf29ce4ull, key, keylen);
    int r = snprintf(out, n, "%s/%016llx%016llx.tfjit", dir, (unsigned long long)a, (unsigned long long)b);
    return r > 0 && (size_t)r < n ? 0 : -1;
}

void *ptx_jit_cache_read(const char *dir, const void *key, size_t keylen, size_t *objlen) {
    char path[PATH_MAX];
    if (!dir || entry_path(path, sizeof(path), dir, key, keylen)) return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return NULL;
    void *obj = NULL, *k = NULL;
    uint8_t h[HDR];
    struct stat st;
    uint32_t kl;
    uint64_t ol, sum;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || tf_read_exact(fd, h, HDR)) goto bad;
    memcpy(&kl, h + 8, 4);
    memcpy(&ol, h + 16, 8);
    memcpy(&sum, h + 24, 8);
    if (memcmp(h, MAGIC, 8) || kl != keylen || ol == 0 || ol > MAX_OBJ ||
        (uint64_t)st.st_size != HDR + (uint64_t)kl + ol)
        goto bad;
    k = malloc(kl ? kl : 1);
    obj = malloc((size_t)ol);
    if (!k || !obj || tf_read_exact(fd, k, kl) || memcmp(k, key, keylen) || tf_read_exact(fd, obj, (size_t)ol) ||
        fnv64(0xcbf29ce484222325ull, obj, (size_t)ol) != sum)
        goto bad;
    free(k);
    close(fd);
    *objlen = (size_t)ol;
    return obj;
bad:
    free(k);
    free(obj);
    close(fd);
    return NULL;
}

int ptx_jit_cache_write(const char *dir, const void *key, size_t keylen, const void *obj, size_t objlen) {
    char path[PATH_MAX], tmp[PATH_MAX + 64];
    if (!dir || keylen > UINT32_MAX || !objlen || objlen > MAX_OBJ || entry_path(path, sizeof(path), dir, key, keylen))
        return -1;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%lx", path, (long)getpid(), (unsigned long)pthread_self());
    if (n <= 0 || (size_t)n >= sizeof(tmp)) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -1;
    uint8_t h[HDR] = {0};
    uint32_t kl = (uint32_t)keylen;
    uint64_t ol = objlen, sum = fnv64(0xcbf29ce484222325ull, obj, objlen);
    memcpy(h, MAGIC, 8);
    memcpy(h + 8, &kl, 4);
    memcpy(h + 16, &ol, 8);
    memcpy(h + 24, &sum, 8);
    int ok = !tf_write_all(fd, h, HDR) && !tf_write_all(fd, key, keylen) &&
             !tf_write_all(fd, obj, objlen);
    if (close(fd)) ok = 0;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}
