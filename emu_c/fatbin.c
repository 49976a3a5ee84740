/* fatbin.c - fatbin container reader + LZ4/ZSTD entry decompression (see fatbin.h).
 *
 * Layout, as nvcc 13 writes it (verified on `nvcc -gencode arch=compute_80,code=compute_80` output
 * with -no-compress and -compress-mode=default|size|speed|balance):
 *   fatbin header, 16 bytes: u32 magic 0xBA55ED50, u16 version 1, u16 header_size, u64 entries_size
 *   then entries, each: u16 kind (1 PTX, 2 ELF), u16 version 0x101, u32 header_size,
 *     u64 padded_payload_size, u32 compressed_size, u32 (64 = address size), u32 ptx ISA version,
 *     u32 sm arch, u32 name offset, u32 name length, u64 flags, u64 reserved, u64 uncompressed_size;
 *   payload follows the entry header (header_size bytes from its start).
 *   flags 0x2000: LZ4 block (-compress-mode=speed); 0x8000: ZSTD frame (default, size, balance);
 *   neither: plain NUL-padded text, compressed_size = 0.
 */
#include "fatbin.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"

#define MAX_IMAGE (1ull << 30)      /* sanity bound when the caller does not know the length */
#define MAX_PTX_TEXT (512ull << 20) /* refuse absurd uncompressed sizes */

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void setlog(char *log, size_t loglen, const char *fmt, const char *a, unsigned b)
{
    if (log && loglen)
        snprintf(log, loglen, fmt, a, b);
}

int fatbin_image_kind(const void *image, size_t len)
{
    const uint8_t *p = image;
    if (!p || (len && len < 4))
        return IMAGE_UNKNOWN;
    uint32_t magic = rd32(p);
    if (magic == FATBIN_WRAPPER_MAGIC)
        return IMAGE_WRAPPER;
    if (magic == FATBIN_MAGIC)
        return IMAGE_FATBIN;
    if (memcmp(p, "\x7f" "ELF", 4) == 0)
        return IMAGE_ELF;
    /* PTX text: skip whitespace and // comments, expect a directive (.version / .target) */
    size_t i = 0, lim = len ? len : 1 << 20;
    while (i < lim && p[i]) {
        if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
            i++;
        } else if (p[i] == '/' && i + 1 < lim && p[i + 1] == '/') {
            while (i < lim && p[i] && p[i] != '\n')
                i++;
        } else if (p[i] == '/' && i + 1 < lim && p[i + 1] == '*') {
            i += 2;
            while (i + 1 < lim && p[i] && !(p[i] == '*' && p[i + 1] == '/'))
                i++;
            i += 2;
        } else {
            return p[i] == '.' ? IMAGE_PTX : IMAGE_UNKNOWN;
        }
    }
    return IMAGE_UNKNOWN;
}

long fatbin_lz4_decompress(const uint8_t *src, size_t srclen, uint8_t *dst, size_t dstcap)
{
    size_t ip = 0, op = 0;
    while (ip < srclen) {
        uint8_t token = src[ip++];
        size_t lit = token >> 4;
        if (lit == 15) {
            uint8_t b;
            do {
                if (ip >= srclen)
                    return -1;
                b = src[ip++];
                lit += b;
            } while (b == 255);
        }
        if (lit > srclen - ip || lit > dstcap - op)
            return -1;
        memcpy(dst + op, src + ip, lit);
        ip += lit;
        op += lit;
        if (ip == srclen)
            break; /* the last sequence has literals only */
        if (srclen - ip < 2)
            return -1;
        size_t off = (size_t)src[ip] | ((size_t)src[ip + 1] << 8);
        ip += 2;
        if (off == 0 || off > op)
            return -1;
        size_t mlen = token & 15;
        if (mlen == 15) {
            uint8_t b;
            do {
                if (ip >= srclen)
                    return -1;
                b = src[ip++];
                mlen += b;
            } while (b == 255);
        }
        mlen += 4;
        if (mlen > dstcap - op)
            return -1;
        for (size_t k = 0; k < mlen; k++) /* byte-wise: matches may overlap their own output */
            dst[op + k] = dst[op - off + k];
        op += mlen;
    }
    return (long)op;
}

/* libzstd.so.1 ships with every Debian/Ubuntu system (dpkg depends on it); we load it lazily so the
 * build needs no zstd headers. */
typedef size_t (*zstd_decompress_fn)(void *, size_t, const void *, size_t);
typedef unsigned (*zstd_iserror_fn)(size_t);
static zstd_decompress_fn g_zstd_decompress;
static zstd_iserror_fn g_zstd_iserror;
static pthread_once_t g_zstd_once = PTHREAD_ONCE_INIT;

static void zstd_load(void)
{
    void *h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        h = dlopen("libzstd.so", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    g_zstd_decompress = (zstd_decompress_fn)(uintptr_t)dlsym(h, "ZSTD_decompress");
    g_zstd_iserror = (zstd_iserror_fn)(uintptr_t)dlsym(h, "ZSTD_isError");
}

long fatbin_zstd_decompress(const uint8_t *src, size_t srclen, uint8_t *dst, size_t dstcap)
{
    if (pthread_once(&g_zstd_once, zstd_load) != 0 || !g_zstd_decompress || !g_zstd_iserror)
        return -2;
    size_t n = g_zstd_decompress(dst, dstcap, src, srclen);
    if (g_zstd_iserror(n))
        return -1;
    return (long)n;
}

typedef struct pick {
    const uint8_t *entry; /* best PTX entry header */
    unsigned sm;
    int any_elf;
    unsigned elf_sm;
    unsigned min_ptx_sm;  /* lowest PTX target seen (for the log when every one is too new) */
} pick;

/* Scans one fatbin (header at p, avail readable bytes) for PTX entries. 0 ok, else CUresult. */
static int scan_fatbin(const uint8_t *p, uint64_t avail, unsigned max_sm, pick *best)
{
    if (avail < 16 || rd32(p) != FATBIN_MAGIC)
        return CUDA_ERROR_INVALID_IMAGE;
    uint64_t hsz = rd16(p + 6), total = rd64(p + 8);
    if (hsz < 16 || hsz > avail || total > avail - hsz)
        return CUDA_ERROR_INVALID_IMAGE;
    uint64_t off = hsz, end = hsz + total;
    while (off + 64 <= end) {
        const uint8_t *e = p + off;
        unsigned kind = rd16(e);
        uint64_t ehsz = rd32(e + 4), padded = rd64(e + 8);
        if (ehsz < 64 || ehsz > end - off || padded > end - off - ehsz)
            return CUDA_ERROR_INVALID_IMAGE;
        unsigned sm = rd32(e + 28);
        if (kind == FATBIN_KIND_PTX) {
            if (!best->min_ptx_sm || sm < best->min_ptx_sm)
                best->min_ptx_sm = sm;
            if (sm <= max_sm && (!best->entry || sm > best->sm)) {
                best->entry = e;
                best->sm = sm;
            }
        } else if (kind == FATBIN_KIND_ELF) {
            best->any_elf = 1;
            best->elf_sm = sm;
        }
        if (ehsz + padded == 0)
            break;
        off += ehsz + padded;
    }
    return 0;
}

static int entry_text(const uint8_t *e, char **ptx, size_t *ptx_len, char *log, size_t loglen)
{
    uint64_t ehsz = rd32(e + 4), padded = rd64(e + 8), csize = rd32(e + 16);
    uint64_t flags = rd64(e + 40), usize = rd64(e + 56);
    const uint8_t *payload = e + ehsz;
    char *out;
    long n;
    if (flags & (FATBIN_FLAG_COMPRESSED_LZ4 | FATBIN_FLAG_COMPRESSED_ZSTD)) {
        if (csize > padded || usize == 0 || usize > MAX_PTX_TEXT) {
            setlog(log, loglen, "fatbin: bad compressed entry sizes%s%u", "", 0);
            return CUDA_ERROR_INVALID_IMAGE;
        }
        out = malloc(usize + 1);
        if (!out)
            return CUDA_ERROR_OUT_OF_MEMORY;
        if (flags & FATBIN_FLAG_COMPRESSED_LZ4)
            n = fatbin_lz4_decompress(payload, csize, (uint8_t *)out, usize);
        else
            n = fatbin_zstd_decompress(payload, csize, (uint8_t *)out, usize);
        if (n < 0) {
            free(out);
            setlog(log, loglen, "fatbin: %s decompression of the PTX entry failed%.0u",
                   n == -2 ? "ZSTD (libzstd.so.1 not found)" : "LZ4/ZSTD", 0);
            return n == -2 ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_IMAGE;
        }
    } else {
        if (padded > MAX_PTX_TEXT)
            return CUDA_ERROR_INVALID_IMAGE;
        out = malloc(padded + 1);
        if (!out)
            return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(out, payload, padded);
        n = (long)padded;
    }
    out[n] = 0;
    *ptx_len = strlen(out); /* payloads are NUL-padded */
    *ptx = out;
    return 0;
}

int fatbin_extract_ptx(const void *image, size_t len, unsigned max_sm, char **ptx, size_t *ptx_len,
                       unsigned *arch, char *log, size_t loglen)
{
    if (log && loglen)
        log[0] = 0;
    if (!image || !ptx || !ptx_len)
        return CUDA_ERROR_INVALID_VALUE;
    *ptx = NULL;
    *ptx_len = 0;
    const uint8_t *p = image;
    uint64_t avail = len ? len : MAX_IMAGE;
    pick best = {0};
    int rc;
    switch (fatbin_image_kind(image, len)) {
    case IMAGE_PTX: {
        size_t n = len ? strnlen(image, len) : strlen(image);
        char *out = malloc(n + 1);
        if (!out)
            return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(out, image, n);
        out[n] = 0;
        *ptx = out;
        *ptx_len = n;
        if (arch)
            *arch = 0;
        return 0;
    }
    case IMAGE_ELF: {
        /* a cubin's e_flags (ELF64, offset 48) name its SM: bits 8-15 in CUDA 13's ABI, the low byte
         * before. An in-memory image (len 0) is trusted to hold its 64-byte header, as for fatbins; a
         * shorter known length names no SM */
        char what[16] = "";
        if ((len == 0 || len >= 64) && p[4] == 2) {
            unsigned ef = rd32(p + 48), sm = ef & 0xff;
            if (sm < 20)
                sm = (ef >> 8) & 0xff;
            if (sm >= 20)
                snprintf(what, sizeof(what), ", sm_%u", sm);
        }
        setlog(log, loglen,
               "the image is a SASS cubin (ELF%s)%.0u: the emulated device runs PTX only; build with a "
               "PTX target, e.g. -gencode arch=compute_80,code=compute_80 (NVIDIA's libraries, which pick "
               "their kernels for the device's capability, run their PTX ones with TF_EMU_CC=13.0 where the "
               "emulator runs: the program's environment, or through the stub the worker's, e.g. "
               "`TF_EMU_CC=13.0 tensorfusion up`)", what, 0);
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    case IMAGE_WRAPPER: {
        if (len && len < 24)
            return CUDA_ERROR_INVALID_IMAGE;
        unsigned version = rd32(p + 4);
        const uint8_t *data;
        memcpy(&data, p + 8, sizeof(data));
        if (data && rd32(data) == FATBIN_MAGIC) {
            rc = scan_fatbin(data, MAX_IMAGE, max_sm, &best);
        } else if (version == 2) {
            const uint8_t *const *list;
            memcpy(&list, p + 16, sizeof(list));
            rc = list ? 0 : CUDA_ERROR_INVALID_IMAGE;
            for (int i = 0; list && list[i] && rc == 0 && i < 4096; i++)
                rc = scan_fatbin(list[i], MAX_IMAGE, max_sm, &best);
        } else {
            rc = CUDA_ERROR_INVALID_IMAGE;
        }
        break;
    }
    case IMAGE_FATBIN:
        rc = scan_fatbin(p, avail, max_sm, &best);
        break;
    default:
        setlog(log, loglen, "unrecognised module image (not a fatbin, PTX or ELF)%s%.0u", "", 0);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (rc) {
        if (log && loglen && !log[0])
            snprintf(log, loglen, "malformed fatbin");
        return rc;
    }
    if (!best.entry) {
        if (best.min_ptx_sm) {
            if (log && loglen)
                snprintf(log, loglen,
                         "no kernel image for the device: the fatbin's PTX targets start at compute_%u, above "
                         "the emulated device's capability %u.%u (set TF_EMU_CC, or build for a lower target)",
                         best.min_ptx_sm, max_sm / 10, max_sm % 10);
        } else if (best.any_elf)
            setlog(log, loglen,
                   "the fatbin has no PTX, only SASS (sm_%s%u): the emulated device runs PTX only; build "
                   "with a PTX target, e.g. -gencode arch=compute_80,code=compute_80", "", best.elf_sm);
        else
            setlog(log, loglen, "the fatbin has no PTX entry%s%.0u", "", 0);
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    if (arch)
        *arch = best.sm;
    return entry_text(best.entry, ptx, ptx_len, log, loglen);
}

/* Reads directives until the first non-directive token; only the module header is looked at. */
int fatbin_ptx_target(const char *ptx, size_t len, ptx_target *out)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0, n = len ? len : (ptx ? strlen(ptx) : 0);
    int found = -1;
    while (ptx && i < n && ptx[i]) {
        char c = ptx[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
        } else if (c == '/' && i + 1 < n && ptx[i + 1] == '/') {
            while (i < n && ptx[i] && ptx[i] != '\n')
                i++;
        } else if (c == '/' && i + 1 < n && ptx[i + 1] == '*') {
            i += 2;
            while (i + 1 < n && ptx[i] && !(ptx[i] == '*' && ptx[i + 1] == '/'))
                i++;
            i += 2;
        } else if (n - i > 8 && !strncmp(ptx + i, ".version", 8)) {
            i += 8;
            while (i < n && (ptx[i] == ' ' || ptx[i] == '\t'))
                i++;
            while (i < n && ptx[i] >= '0' && ptx[i] <= '9' && out->isa_major < 100)
                out->isa_major = out->isa_major * 10 + (ptx[i++] - '0');
            if (i < n && ptx[i] == '.')
                i++;
            while (i < n && ptx[i] >= '0' && ptx[i] <= '9' && out->isa_minor < 100)
                out->isa_minor = out->isa_minor * 10 + (ptx[i++] - '0');
        } else if (n - i > 7 && !strncmp(ptx + i, ".target", 7)) {
            i += 7;
            while (i < n && (ptx[i] == ' ' || ptx[i] == '\t'))
                i++;
            if (n - i > 3 && !strncmp(ptx + i, "sm_", 3)) {
                i += 3;
                while (i < n && ptx[i] >= '0' && ptx[i] <= '9' && out->sm < 10000)
                    out->sm = out->sm * 10 + (ptx[i++] - '0');
                if (i < n && (ptx[i] == 'a' || ptx[i] == 'f'))
                    out->suffix = ptx[i++];
                found = out->sm ? 0 : -1;
            }
            while (i < n && ptx[i] && ptx[i] != '\n')
                i++;
        } else if (ptx[i] == '.' && n - i > 13 && !strncmp(ptx + i, ".address_size", 13)) {
            i += 13;
            while (i < n && (ptx[i] == ' ' || ptx[i] == '\t' || (ptx[i] >= '0' && ptx[i] <= '9')))
                i++;
        } else {
            break;
        }
    }
    return found;
}
