/* ptx_jit_key.c - a kernel's decoded program as bytes and back. The bytes are the PTX JIT's cache key
 * (in memory and on disk: compiled code depends on exactly these) and what libcuda.so.1's ptx_jit.c
 * sends to the compiler process (ptx_jitc.c), which rebuilds the kernel from them and compiles it.
 * Both directions live here so the two sides cannot drift apart. Contract: ptx_jit.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_jit.h"

void ptx_jit_buf_put(ptx_jit_buf *b, const void *v, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}

/* One instruction: 13 one-byte fields, 11 register operands, the immediate (65 bytes). */
#define INS_BYTES (13 + 11 * 4 + 8)

void ptx_jit_key_program(ptx_jit_buf *b, const ptx_kernel *k) {
    ptx_jit_buf_put(b, &k->ncode, sizeof(int32_t));
    ptx_jit_buf_put(b, &k->nslots, sizeof(int32_t));
    for (int i = 0; i < k->ncode; i++) {
        const ptx_ins *in = &k->code[i];
        uint8_t f[13] = {(uint8_t)in->op, (uint8_t)(in->op >> 8), in->t, in->t2, in->space, in->vec, in->rm, in->sub,
                         in->bop, in->flags, in->pneg, in->esize, in->wsync};
        ptx_jit_buf_put(b, f, sizeof(f));
        int32_t r[11] = {in->pred, in->d, in->d2, in->a, in->b, in->c, in->e, in->v[0], in->v[1], in->v[2], in->v[3]};
        ptx_jit_buf_put(b, r, sizeof(r));
        ptx_jit_buf_put(b, &in->imm, sizeof(in->imm));
    }
    ptx_jit_buf_put(b, &k->nconsts, sizeof(int32_t));
    for (int c = 0; c < k->nconsts; c++) {
        ptx_jit_buf_put(b, &k->consts[c].slot, sizeof(int32_t));
        ptx_jit_buf_put(b, &k->consts[c].bits, sizeof(uint64_t));
    }
    ptx_jit_buf_put(b, &k->nspecials, sizeof(int32_t));
    for (int s = 0; s < k->nspecials; s++) {
        ptx_jit_buf_put(b, &k->specials[s].slot, sizeof(int32_t));
        ptx_jit_buf_put(b, &k->specials[s].sreg, sizeof(int32_t));
    }
    /* register lists (texture coordinates, offsets, gradients) */
    int32_t nl = k->lists ? k->nlists : 0;
    ptx_jit_buf_put(b, &nl, sizeof(int32_t));
    if (nl) ptx_jit_buf_put(b, k->lists, (size_t)nl * sizeof(int32_t));
}

int ptx_jit_key_head(char *out, size_t n, const char *target_id) {
    int r = snprintf(out, n, "tf-emu-jit generator %d\n%s\n", PTX_JIT_GENERATOR_VERSION, target_id);
    return r > 0 && (size_t)r < n ? r : -1;
}

typedef struct rd {
    const uint8_t *p;
    size_t left;
} rd;

static int take(rd *r, void *out, size_t n) {
    if (r->left < n) return -1;
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

/* a count that the remaining bytes can hold at per bytes each (no allocation from a bogus count) */
static int count(rd *r, int32_t *c, size_t per) {
    if (take(r, c, sizeof(*c)) || *c < 0 || (size_t)*c > r->left / per) return -1;
    return 0;
}

void ptx_jit_key_kernel_free(ptx_kernel *k) {
    if (!k) return;
    free(k->code);
    free(k->consts);
    free(k->specials);
    free(k->lists);
    free(k);
}

ptx_kernel *ptx_jit_key_kernel(const void *p, size_t n) {
    rd r = {p, n};
    ptx_kernel *k = calloc(1, sizeof(*k));
    int32_t ncode, nslots, nconsts, nspecials;
    if (!k || count(&r, &ncode, INS_BYTES) || take(&r, &nslots, sizeof(nslots)) || nslots < 0) goto bad;
    k->ncode = ncode;
    k->nslots = nslots;
    k->code = calloc((size_t)ncode + 1, sizeof(ptx_ins));
    if (!k->code) goto bad;
    for (int i = 0; i < ncode; i++) {
        ptx_ins *in = &k->code[i];
        uint8_t f[13];
        int32_t v[11];
        if (take(&r, f, sizeof(f)) || take(&r, v, sizeof(v)) || take(&r, &in->imm, sizeof(in->imm))) goto bad;
        in->op = (uint16_t)(f[0] | f[1] << 8);
        in->t = f[2], in->t2 = f[3], in->space = f[4], in->vec = f[5], in->rm = f[6], in->sub = f[7];
        in->bop = f[8], in->flags = f[9], in->pneg = f[10], in->esize = f[11], in->wsync = f[12];
        in->pred = v[0], in->d = v[1], in->d2 = v[2], in->a = v[3], in->b = v[4], in->c = v[5], in->e = v[6];
        memcpy(in->v, v + 7, sizeof(in->v));
        if (in->op >= OP_COUNT) goto bad;
    }
    if (count(&r, &nconsts, 12)) goto bad;
    k->nconsts = nconsts;
    k->consts = calloc((size_t)nconsts + 1, sizeof(ptx_cslot));
    if (!k->consts) goto bad;
    for (int c = 0; c < nconsts; c++)
        if (take(&r, &k->consts[c].slot, 4) || take(&r, &k->consts[c].bits, 8)) goto bad;
    if (count(&r, &nspecials, 8)) goto bad;
    k->nspecials = nspecials;
    k->specials = calloc((size_t)nspecials + 1, sizeof(ptx_sslot));
    if (!k->specials) goto bad;
    for (int s = 0; s < nspecials; s++)
        if (take(&r, &k->specials[s].slot, 4) || take(&r, &k->specials[s].sreg, 4)) goto bad;
    int32_t nlists;
    if (count(&r, &nlists, 4)) goto bad;
    k->nlists = nlists;
    k->lists = calloc((size_t)nlists + 1, sizeof(int32_t));
    if (!k->lists || take(&r, k->lists, (size_t)nlists * 4)) goto bad;
    if (r.left) goto bad;
    return k;
bad:
    ptx_jit_key_kernel_free(k);
    return NULL;
}
