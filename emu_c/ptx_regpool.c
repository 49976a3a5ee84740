/* ptx_regpool.c - shares register slots among the warp-matrix fragments of a decoded kernel (called once per
 * kernel by ptx_kernel_decode, ptx_parse.c).
 *
 * Why: nvcc fully unrolls the tensor-core GEMMs' K loops and gives every fragment its own virtual register
 * (dmmaTensorCoreGemm: 5733 f64 registers), and a register slot costs 32 lanes x 8 bytes per warp, so the
 * interpreter's register file of an 8-warp block grew to 13.5 MB and every wmma.load / wmma.mma wrote to
 * memory no cache still held. Most fragments live for a few instructions: here they take turns on a few slots.
 *
 * Which registers: those named only in the register lists of wmma.load / wmma.store / wmma.mma (nowhere else,
 * in no other instruction field, list, constant or special), whose references all lie in one straight run of
 * instructions [first, last] that no branch enters after its first instruction, whose first reference writes the
 * whole fragment unguarded (a wmma.load, or wmma.mma's D) and does not also read it. Branch targets are the
 * only way into a run (the decoded code's one jump is OP_BRA: labels, inlined calls' returns), so a thread
 * reaches an instruction of such a run only through its first instruction, so per thread the register is dead outside
 * [first, last]: two registers whose runs do not overlap may share a slot. Lanes write only their own part
 * of a slot, so this holds per lane whatever the warp's divergence. Every other register keeps its slot.
 */
#include <stdlib.h>
#include <string.h>

#include "ptx_internal.h"

typedef struct {
    int first, last;   /* instruction indices of the first and last reference */
    int first_is_def;  /* the first reference writes it (whole, unguarded) and does not read it */
} span;

/* The instruction's register lists and their lengths: wmma.load/store one (its fragment), wmma.mma four
 * (D written, A B C read). 0 for any other instruction. */
static int fragment_lists(const ptx_ins *in, int *at, int *len, int *is_def) {
    switch (in->op) {
    case OP_WMMA_LOAD:
    case OP_WMMA_STORE:
        at[0] = in->c;
        len[0] = in->vec;
        is_def[0] = in->op == OP_WMMA_LOAD;
        return 1;
    case OP_WMMA_MMA: {
        const int lists[4] = {in->d, in->a, in->b, in->c};
        for (int j = 0; j < 4; j++) {
            at[j] = lists[j];
            len[j] = in->v[j];
            is_def[j] = j == 0;
        }
        return 4;
    }
    default:
        return 0;
    }
}

static void mark(unsigned char *bits, int64_t v, int64_t n) {
    if (v >= 0 && v < n) bits[v] = 1;
}

void ptx_pool_fragment_slots(ptx_kernel *k) {
    const int n = k->ncode, ns = k->nslots, nl = k->nlists;
    if (n <= 0 || ns <= 0 || nl <= 0) return;
    unsigned char *other = calloc((size_t)ns, 1), *target = calloc((size_t)n + 1, 1), *claimed = calloc((size_t)nl, 1);
    span *sp = malloc(sizeof(span) * (size_t)ns);
    int *map = malloc(sizeof(int) * (size_t)ns), *order = malloc(sizeof(int) * (size_t)ns);
    int *busy_until = malloc(sizeof(int) * (size_t)ns), *pool = malloc(sizeof(int) * (size_t)ns);
    if (!other || !target || !claimed || !sp || !map || !order || !busy_until || !pool) goto out; /* an optimisation: skip it */
    for (int s = 0; s < ns; s++) sp[s] = (span){-1, -1, 0};
    /* every slot an instruction field may name, outside the fragment lists, stays as it is */
    for (int i = 0; i < n; i++) {
        const ptx_ins *in = &k->code[i];
        int at[4], len[4], def[4];
        const int nlists = fragment_lists(in, at, len, def);
        if (in->op == OP_BRA) mark(target, in->imm, (int64_t)n + 1); /* the only jump: labels, returns, calls */
        mark(other, in->pred, ns);
        mark(other, in->d2, ns);
        mark(other, in->e, ns);
        mark(other, in->imm, ns);
        for (int j = 0; j < 4; j++) mark(other, in->v[j], ns);
        if (nlists == 1) { /* c is the list, a and b the address and stride registers */
            mark(other, in->d, ns);
            mark(other, in->a, ns);
            mark(other, in->b, ns);
        } else if (nlists == 0) {
            mark(other, in->d, ns);
            mark(other, in->a, ns);
            mark(other, in->b, ns);
            mark(other, in->c, ns);
        }
        for (int j = 0; j < nlists; j++) {
            if (at[j] < 0 || len[j] < 0 || at[j] + len[j] > nl) goto out; /* not the shape decoded: leave the kernel alone */
            for (int e = at[j]; e < at[j] + len[j]; e++) {
                claimed[e] = 1;
                const int s = k->lists[e];
                if (s < 0 || s >= ns) continue;
                if (sp[s].first < 0) {
                    sp[s].first = i;
                    sp[s].first_is_def = def[j] && in->pred < 0;
                } else if (sp[s].first == i && !def[j]) {
                    sp[s].first_is_def = 0; /* read by its first instruction too */
                }
                sp[s].last = i;
            }
        }
    }
    for (int e = 0; e < nl; e++) if (!claimed[e]) mark(other, k->lists[e], ns); /* lists of other instructions */
    for (int c = 0; c < k->nconsts; c++) mark(other, k->consts[c].slot, ns);
    for (int c = 0; c < k->nspecials; c++) mark(other, k->specials[c].slot, ns);
    /* the poolable registers, by first reference */
    int np = 0;
    for (int s = 0; s < ns; s++) {
        map[s] = s;
        if (other[s] || sp[s].first < 0 || !sp[s].first_is_def) continue;
        int entered = 0;
        for (int i = sp[s].first + 1; i <= sp[s].last && !entered; i++) entered = target[i];
        if (!entered) order[np++] = s;
    }
    /* order[] is by slot; runs start in slot order for nvcc's numbering, but sort by first to be exact */
    for (int a = 1; a < np; a++) { /* insertion sort: nearly sorted already */
        const int s = order[a];
        int b = a - 1;
        while (b >= 0 && sp[order[b]].first > sp[s].first) { order[b + 1] = order[b]; b--; }
        order[b + 1] = s;
    }
    /* linear scan: a pool slot is free again after the instruction of its register's last reference */
    int npool = 0;
    for (int a = 0; a < np; a++) {
        const int s = order[a];
        int take = -1;
        for (int p = 0; p < npool && take < 0; p++)
            if (busy_until[p] < sp[s].first) take = p;
        if (take < 0) {
            take = npool++;
            pool[take] = s; /* the register's own slot joins the pool */
        }
        map[s] = pool[take];
        busy_until[take] = sp[s].last;
    }
    for (int e = 0; e < nl; e++)
        if (claimed[e] && k->lists[e] >= 0 && k->lists[e] < ns) k->lists[e] = map[k->lists[e]];
out:
    free(other);
    free(target);
    free(claimed);
    free(sp);
    free(map);
    free(order);
    free(busy_until);
    free(pool);
}
