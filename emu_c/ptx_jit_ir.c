/* ptx_jit_ir.c - translates a decoded PTX kernel (ptx_internal.h) into LLVM IR for the JIT: part of the
 * plugin libtf-emu-jit.so (ptx_jit_llvm.c compiles what this builds; ptx_jit.c in libcuda.so.1 runs it;
 * the contract is ptx_jit.h). Bump PTX_JIT_GENERATOR_VERSION when the generated code changes.
 *
 * Model: the exported function runs a block (gen_block_fn: rounds over its warps and the barriers' releases,
 * as the interpreter's run_block), calling an internal function that runs one warp; in it the 32 lanes are
 * the 32 elements of LLVM vectors, every
 * register slot is a <32 x i64> value with exactly the interpreter's (ptx_exec.c) encoding, and each
 * instruction mirrors the interpreter's expression for it, so both engines give identical bits.
 * Divergence follows the interpreter's rule: a per-lane PC vector, and the warp always runs the lanes
 * with the lowest PC (a dispatcher block); while no lane is parked elsewhere, branches jump straight
 * to their target. Instructions write with select(executing lanes, new, old). Registers live across
 * bar.sync (the slots live at any barrier continuation, from a liveness pass) live in the warp's save
 * area, so a warp leaves at a barrier and resumes after it without copying registers (a warp whose lanes all
 * wait at one bar.sync resumes straight after it: bar_arrive, bar_resume). Warp-synchronous
 * (.sync) instructions lead a block whose entry parks the running lanes (wsync) until their member masks'
 * lanes arrive, as the interpreter's run_warp/resched do (gen_wsync_wait and the dispatcher).
 * Memory accesses of a whole warp take vector forms (gen_chunks) after checks made once where they can be:
 * a block's shared accesses through one register once at the block's entry (shared_group: the block is
 * generated again without their checks), a register's shared-address facts once per write (addr_facts), a
 * global access from its 4 chunk addresses (gen_global_chunks), a linear global load also prefetching ahead
 * along the step its site's addresses repeat (gen_stride_prefetch: warps run in turn, so no other warp hides a
 * cache miss as on a GPU).
 * Anything not translated here makes the whole kernel fall back to the interpreter.
 */
#include "ptx_jit.h"

#ifdef TF_EMU_HAVE_LLVM
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Core.h>

/* A register's cached facts for gen_shared32's whole-warp paths (addr_facts_compute): i32 words in the
 * unused upper half of the narrow slot's save area (R + s*32 + 16), so they outlive a barrier's return. */
typedef struct addr_facts {
    LLVMValueRef valid;   /* 1: the words below describe the register; NULL: the slot is no shared address */
    LLVMValueRef red[4];  /* umin, umax, or, and of the 32 lanes */
    LLVMValueRef regular; /* 1: every 8-lane chunk steps by stride */
    LLVMValueRef stride;  /* lane 1 - lane 0 */
} addr_facts;

/* Copies of a block (G.copy): the general one, the fast one (each grouped access in its group's form), and the
 * fast one for warps whose broadcast groups' registers hold one address in all 32 lanes (FORM_WARP_BCAST:
 * one load each instead of 4, a 32x32 tile's row). */
enum { COPY_GENERAL, COPY_FAST, COPY_FAST_WARP_BCAST };

/* The unpredicated 1-element shared accesses of one basic block through one address register that the block
 * does not write before them (a tile loop's 16-32 ld.shared [r+imm]; plan_shared_groups). When a block has
 * such groups it is generated two or three times (gen_fast_block_entry, COPY_*): fast copies in which every
 * grouped access takes one form of gen_chunks with no check of its own (straight-line code that -O2 keeps in
 * registers), run when the block's entry found all 32 lanes running and each group's span of offsets in bounds
 * and of that form; and the general copy. */
typedef struct shared_group {
    int reg;
    unsigned es;
    int form;               /* FORM_LINEAR (the register varies with the lane) or FORM_CHUNK_BCAST (it does not) */
    int64_t imm_lo, imm_hi; /* every offset is imm_lo mod es */
    int count;
    LLVMValueRef base[4];   /* in the fast copy: i8*, smem + zext(r[8c]), chunk c's first element before the offset */
} shared_group;

typedef struct G {
    LLVMContextRef cx;
    LLVMModuleRef m;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    const ptx_kernel *k;
    LLVMTypeRef i1, i8, i16, i32, i64, i128, f32, f64, v1, v8, v16, v32, v64, vf32, vf64, vptr;
    LLVMValueRef *slot;         /* per slot: its alloca, or its place in the save area (in_save_area); NULL: constant */
    int8_t *is_const;
    int8_t *narrow;             /* slot always holds a zero-extended 32-bit value: stored as <32 x i32> */
    addr_facts *fact;           /* per slot */
    int *sgroup;                /* per instruction: its shared_group in grp (the current block's), or -1 */
    int *pf_site;               /* per instruction: its stride-prefetch site (gen_stride_prefetch), or -1 */
    shared_group *grp;
    int ngrp;
    uint8_t *lane_var;          /* per slot: may differ between the lanes of a warp (lane_variance) */
    int copy;                   /* the copy (COPY_*) of the block led by clone_lead (up to clone_end) being generated */
    int clone_lead, clone_end;
    LLVMBasicBlockRef next_entry[2]; /* where the block's copies still to generate start (next_block_copy) */
    int next_copy[2], nnext;
    int copy_budget;            /* instructions fast copies may still add (plan_shared_groups) */
    int fast_copies;            /* of the current block: 0, 1 (COPY_FAST), 2 (and COPY_FAST_WARP_BCAST) */
    uint64_t *cval;
    LLVMValueRef J, R, pcs, warp, mode;
    LLVMValueRef pcv, active, parked, icnt, backs;
    LLVMValueRef wsync, force_pc;  /* i32 allocas: lanes parked at a warp-sync instruction; the pc a forced group runs at */
    int has_wsync;              /* the kernel has warp-synchronous instructions (the dispatcher knows wsync lanes) */
    LLVMValueRef sc_addr, sc_vals, sc_b, sc_c, sc_ops;
    LLVMBasicBlockRef *bb;      /* per instruction: the block it leads, or NULL */
    int *blen;                  /* per leader: instructions in its block */
    LLVMBasicBlockRef disp, finish, failbb;
    uint64_t *live_save;        /* slots live at some bar.sync continuation (bitset): kept in the save area */
    uint64_t *live_lead;        /* slots live at the start of some block (where parked lanes wait) */
    uint8_t *leader;
    LLVMBasicBlockRef *resume_bb;  /* per bar.sync instruction: its mode PTX_JIT_BAR_AT + i entry (bar_resume) */
    int cur_unpred;             /* the instruction being generated has no guard predicate */
    int nw;                     /* 64-bit words per slot bitset */
    char *why;
    size_t whylen;
} G;

static int bad(G *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(G *g, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->why, g->whylen, fmt, ap);
    va_end(ap);
    return -1;
}
#define BAD(...) return bad(g, __VA_ARGS__)

static int is_signed_t(int t) { return t == T_S8 || t == T_S16 || t == T_S32 || t == T_S64; }
static int bits_of(int t) {
    switch (t) {
    case T_U8: case T_S8: return 8;
    case T_U16: case T_S16: case T_F16: case T_BF16: return 16;
    case T_U32: case T_S32: case T_F32: case T_F16X2: case T_BF16X2: return 32;
    case T_PRED: return 1;
    default: return 64;
    }
}
static int int_t(int t) { return t >= T_U8 && t <= T_S64; }
static int intbin_bits(int t);
static int is_float_t(int t) { return t == T_F16 || t == T_BF16 || t == T_F32 || t == T_F64 || t == T_F16X2 || t == T_BF16X2; }

/* ------------------------------------------------------------------ coverage */

/* 0 if the JIT generates in inline, else -1 with the reason. */
static int covered_inline(G *g, const ptx_ins *in) {
    const int t = in->t;
    const char *opn = ptx_op_name(in->op);
    switch (in->op) {
    case OP_NOP: /* bar.warp.sync when wsync: the warp-sync wait only (gen_wsync_wait) */
    case OP_SHFL: case OP_VOTE: case OP_ACTIVEMASK: case OP_MATCH: case OP_REDUX: /* gen_warp */
        return 0;
    default:
        break;
    }
    if (in->wsync) BAD("warp-synchronous %s", opn);
    switch (in->op) {
    case OP_BAR: case OP_BAR_RED: case OP_BAR_RED_READ:
        /* the block function runs whole-block barriers (ptx_exec.c runs the launches whose thread counts are
         * smaller on the interpreter); bar.arrive and a barrier named by a register stay on the interpreter */
        if (in->op == OP_BAR && in->sub == BAR_ARRIVE) BAD("bar.arrive");
        if (in->imm < 0) BAD("bar with a register operand");
        return 0;
    case OP_BRA: case OP_EXIT: case OP_SREG:
    case OP_CVTA_SHARED: case OP_CVTA_TO_SHARED: case OP_CVTA_LOCAL: case OP_CVTA_TO_LOCAL:
    case OP_CVTA_PARAM: case OP_CVTA_TO_PARAM: case OP_SELP: case OP_LD: case OP_ST:
    case OP_MOV: case OP_SHF_L: case OP_SHF_R: case OP_LOP3:
        return 0;
    case OP_ATOM: case OP_RED:
        if (in->esize != 2 && in->esize != 4 && in->esize != 8) BAD("%s of %u bytes", opn, in->esize);
        return 0;
    case OP_ADD: case OP_SUB: case OP_MUL_LO:
        if (t == T_F32 || t == T_F64) { if (in->flags || in->rm > RM_RN) BAD("%s with rounding/flags", opn); return 0; }
        if (is_float_t(t)) BAD("half-precision %s", opn);
        if (in->flags) BAD("%s.cc/.sat", opn);
        return int_t(t) ? 0 : bad(g, "%s type", opn);
    case OP_FMA:
        if ((t == T_F32 || t == T_F64) && !in->flags && in->rm <= RM_RN) return 0;
        BAD("fma variant");
    case OP_DIV:
        if (t == T_F32 && !(in->flags & ~IF_APPROX) && in->rm <= RM_RN) return 0;
        if (t == T_F64 && !in->flags && in->rm <= RM_RN) return 0;
        if (t == T_U16 || t == T_S16 || t == T_U32 || t == T_S32 || t == T_U64 || t == T_S64) return 0;
        BAD("div variant");
    case OP_REM:
        if (t == T_U16 || t == T_S16 || t == T_U32 || t == T_S32 || t == T_U64 || t == T_S64) return 0;
        BAD("rem variant");
    case OP_MUL_HI:
        if (t == T_U32 || t == T_S32 || t == T_U64 || t == T_S64) return 0;
        BAD("mul.hi variant");
    case OP_MUL_WIDE:
        return 0;
    case OP_MAD_LO:
        if (in->flags & (IF_CC | IF_USE_CC)) BAD("mad.cc");
        return int_t(t) ? 0 : bad(g, "mad type");
    case OP_MAD_WIDE:
        if (t == T_U32 || t == T_S32) return 0;
        BAD("mad.wide variant");
    case OP_MIN: case OP_MAX:
        if (t == T_F32 && !in->flags) return 0;
        /* f64 and the half types: ptx_jit_alu runs the interpreter's min_max_num */
        if (t == T_F64 && !in->flags) BAD("f64 min/max");
        if (is_float_t(t)) BAD("min/max variant");
        if ((in->flags & IF_RELU) && t != T_S32) BAD("min/max.relu");
        return 0;
    case OP_ABS: case OP_NEG:
        if (t == T_F16X2 || t == T_BF16X2) BAD("packed abs/neg");
        if (is_float_t(t) && (in->flags & IF_FTZ)) BAD("abs/neg.ftz");
        return 0;
    case OP_NOT: case OP_CNOT: case OP_POPC: case OP_CLZ: case OP_BREV:
        return 0;
    case OP_CP_ASYNC:
        if (in->a < 0 || in->b < 0) BAD("cp.async operands");
        return 0;
    case OP_CVT_TF32:
        return 0;
    case OP_TEX: case OP_TLD4:
        if (in->esize > 4 || in->c < 0) BAD("%s operands", opn);
        return 0;
    case OP_PACK: case OP_UNPACK:
        if (in->vec < 1 || in->vec > 4 || (unsigned)in->esize * in->vec > 8) BAD("%s of %u x %u bytes", opn, in->vec, in->esize);
        return 0;
    case OP_RCP: case OP_SQRT:
        if ((t == T_F32 || t == T_F64) && !(in->flags & ~IF_APPROX) && in->rm <= RM_RN) return 0;
        BAD("%s variant", opn);
    case OP_AND: case OP_OR: case OP_XOR: case OP_SHL: case OP_SHR:
        return 0;
    case OP_SETP: {
        int ct = in->t2 ? in->t2 : in->t;
        if (ct == T_F32 || ct == T_F64) { if (in->flags & IF_FTZ) BAD("setp.ftz"); return 0; }
        if (is_float_t(ct)) BAD("half-precision setp");
        return 0;
    }
    case OP_CVT: {
        const int st = in->t2, dt = t;
        const int sf = is_float_t(st), df = is_float_t(dt);
        if (!sf && !df) { if (in->flags) BAD("cvt.sat int"); return 0; }
        if (st == T_F16 || st == T_BF16 || dt == T_F16 || dt == T_BF16 || st == T_F16X2 || dt == T_F16X2 ||
            st == T_BF16X2 || dt == T_BF16X2)
            BAD("half-precision cvt");
        if (in->flags) BAD("cvt with .ftz/.sat/.relu");
        if (!sf) return in->rm <= RM_RN ? 0 : bad(g, "cvt int->float rounding");
        if (!df) return 0;
        if (st == T_F32 && dt == T_F64) return in->rm <= RM_RN ? 0 : bad(g, "cvt f32->f64 rounding");
        if (st == T_F64 && dt == T_F32) return in->rm <= RM_RN ? 0 : bad(g, "cvt f64->f32 rounding");
        if (st == dt && (in->rm == RM_NONE || in->rm >= RM_RNI)) return 0;
        BAD("cvt float variant");
    }
    default:
        BAD("%s", opn);
    }
}

/* 0 if the JIT translates in (inline, or as a call of the interpreter's lane function: gen_alu), else -1
 * with the reason. */
static int covered(G *g, const ptx_ins *in) {
    if (!covered_inline(g, in)) return 0;
    return ptx_alu_lane_covers(in) ? 0 : -1;
}
static int is_inline(G *g, const ptx_ins *in) {
    char *why = g->why, tmp[200];
    const size_t whylen = g->whylen;
    g->why = tmp;
    g->whylen = sizeof(tmp);
    int r = covered_inline(g, in) == 0;
    g->why = why;
    g->whylen = whylen;
    return r;
}

/* ------------------------------------------------------------------ liveness */
/* bar.sync, and bar.red (whose warps also wait for the block; its result is read by the OP_BAR_RED_READ after it) */
static int is_barrier(const ptx_ins *in) { return in->op == OP_BAR || in->op == OP_BAR_RED; }

static int uses_of(const ptx_kernel *k, const ptx_ins *in, int *u) {
    int n = 0;
    if (in->pred >= 0) u[n++] = in->pred;
    switch (in->op) {
    case OP_TEX: case OP_TLD4: {
        int sl[16], ns = ptx_jit_tex_ops(in, k->lists, k->nlists, sl);
        for (int j = 0; j < ns; j++) if (sl[j] >= 0) u[n++] = sl[j];
        return n;
    }
    case OP_NOP: if (in->wsync && in->e >= 0) u[n++] = in->e; return n; /* bar.warp.sync's member mask */
    case OP_BRA: case OP_EXIT: case OP_BAR: case OP_SREG: return n;
    case OP_LD: if (in->a >= 0) u[n++] = in->a; return n;
    case OP_ST: if (in->a >= 0) u[n++] = in->a; for (int k = 0; k < in->vec && k < 4; k++) if (in->v[k] >= 0) u[n++] = in->v[k]; return n;
    case OP_CP_ASYNC: /* e is the source offset, not a register */
        if (in->a >= 0) u[n++] = in->a;
        if (in->b >= 0) u[n++] = in->b;
        if (in->c >= 0) u[n++] = in->c;
        return n;
    case OP_PACK: for (int k = 0; k < in->vec && k < 4; k++) if (in->v[k] >= 0) u[n++] = in->v[k]; return n;
    default:
        if (in->a >= 0) u[n++] = in->a;
        if (in->b >= 0) u[n++] = in->b;
        if (in->c >= 0) u[n++] = in->c;
        if (in->e >= 0) u[n++] = in->e;
        return n;
    }
}
static int defs_of(const ptx_ins *in, int *d) {
    int n = 0;
    switch (in->op) {
    case OP_NOP: case OP_BRA: case OP_EXIT: case OP_BAR: case OP_BAR_RED: case OP_ST: case OP_RED: case OP_CP_ASYNC: return 0;
    case OP_LD: case OP_UNPACK: case OP_TEX: case OP_TLD4: for (int k = 0; k < in->vec && k < 4; k++) if (in->v[k] >= 0) d[n++] = in->v[k]; return n;
    default:
        if (in->d >= 0) d[n++] = in->d;
        if (in->d2 >= 0) d[n++] = in->d2;
        return n;
    }
}

/* Whether instruction in writes slot d (one of its destinations) with a zero-extended value of at
 * most 32 bits, as gen_ins() computes it; -1: only if its source slots do (mov/selp). */
static int narrow_def(const ptx_ins *in, int d) {
    const int t = in->t, bits = bits_of(t);
    switch (in->op) {
    case OP_MOV:
        if (t == T_U32 || t == T_S32 || t == T_F32 || t == T_U16 || t == T_S16 || t == T_F16 || t == T_BF16 || t == T_PRED) return 1;
        return -1;
    case OP_SELP: return -1;
    case OP_ADD: case OP_SUB: case OP_MUL_LO: case OP_AND: case OP_OR: case OP_XOR:
        return t == T_F32 || t == T_PRED || (int_t(t) && intbin_bits(t) <= 32);
    case OP_FMA: return t == T_F32;
    case OP_RCP: case OP_SQRT: return t == T_F32;
    case OP_PACK: return (unsigned)in->esize * in->vec <= 4;
    case OP_TEX: case OP_TLD4: return 1;
    case OP_UNPACK: return in->esize <= 4;
    case OP_DIV: case OP_REM: case OP_MUL_HI: return t == T_F32 || t == T_U32 || t == T_S32;
    case OP_MUL_WIDE: return t == T_U16 || t == T_S16;
    case OP_MAD_LO: return t == T_U16 || t == T_S16 || t == T_U32 || t == T_S32;
    case OP_MIN: case OP_MAX: return t == T_F32 || (int_t(t) && bits <= 32);
    case OP_ABS: case OP_NEG: case OP_NOT: case OP_SHL: case OP_SHR: case OP_BREV: case OP_LOP3: return bits <= 32;
    case OP_CNOT: case OP_POPC: case OP_CLZ: case OP_SHF_L: case OP_SHF_R: case OP_SETP: return 1;
    case OP_SHFL: case OP_VOTE: case OP_ACTIVEMASK: case OP_MATCH: case OP_REDUX: return 1; /* 32-bit results, predicates */
    case OP_CVT: {
        const int st = in->t2;
        if (t == T_F32) return 1;
        if (t == T_F64) return 0;
        if (is_float_t(st)) return !is_signed_t(t) && bits <= 32;
        return !is_signed_t(t) && bits <= 32;
    }
    case OP_LD: {
        (void)d;
        return in->t == T_U8 || in->t == T_U16 || in->t == T_U32 || in->t == T_F32 || in->t == T_F16 || in->t == T_BF16 ||
               in->t == T_PRED || in->t == T_F16X2 || in->t == T_BF16X2;
    }
    case OP_ATOM: return in->esize <= 4 && !is_signed_t(t);
    case OP_CVT_TF32: return 1;
    case OP_BAR_RED_READ: return 1; /* a count of threads, or a predicate */
    default: return 0;
    }
}

static void narrow_slots(G *g) {
    const ptx_kernel *k = g->k;
    const int ns = k->nslots > 0 ? k->nslots : 1;
    for (int s = 0; s < ns; s++) g->narrow[s] = !g->is_const[s];
    int changed = 1, d[8];
    while (changed) {
        changed = 0;
        for (int i = 0; i < k->ncode; i++) {
            const ptx_ins *in = &k->code[i];
            int nd = defs_of(in, d);
            for (int j = 0; j < nd; j++) {
                int s = d[j];
                if (s < 0 || s >= ns || !g->narrow[s]) continue;
                int r = narrow_def(in, s);
                if (r < 0) {
                    /* mov of a 64-bit type / selp: narrow when every source is */
                    int src[2] = {in->a, in->op == OP_SELP ? in->b : -1};
                    r = 1;
                    for (int q = 0; q < 2; q++) {
                        int x = src[q];
                        if (x < 0) continue;
                        if (g->is_const[x] ? (g->cval[x] >> 32) != 0 : !g->narrow[x]) r = 0;
                    }
                }
                if (!r) { g->narrow[s] = 0; changed = 1; }
            }
        }
    }
}

/* lane_var[s]: slot s may hold different values in the lanes of one warp: %tid.x, %laneid and the lane masks,
 * what atomics and shuffles give, and anything computed (or loaded) from such a slot. Only a
 * guess of shared addresses' shapes (plan_shared_groups) reads it: a wrong guess costs speed, not bits. */
static void lane_variance(G *g) {
    const ptx_kernel *k = g->k;
    const int ns = k->nslots > 0 ? k->nslots : 1;
    for (int sp = 0; sp < k->nspecials; sp++) {
        const int s = k->specials[sp].slot, r = k->specials[sp].sreg;
        if (s >= 0 && s < ns && (r == SR_TID_X || r == SR_LANEID || (r >= SR_LANEMASK_EQ && r <= SR_LANEMASK_GE))) g->lane_var[s] = 1;
    }
    int changed = 1, u[16], d[8];
    while (changed) {
        changed = 0;
        for (int i = 0; i < k->ncode; i++) {
            const ptx_ins *in = &k->code[i];
            int var = in->op == OP_ATOM || in->op == OP_SHFL || in->op == OP_MATCH; /* a load is as varied as its address */
            const int nu = uses_of(k, in, u);
            for (int j = 0; j < nu && !var; j++) var = u[j] >= 0 && u[j] < ns && g->lane_var[u[j]];
            if (!var) continue;
            const int nd = defs_of(in, d);
            for (int j = 0; j < nd; j++)
                if (d[j] >= 0 && d[j] < ns && !g->lane_var[d[j]]) { g->lane_var[d[j]] = 1; changed = 1; }
        }
    }
}

/* live_save = union of live-in sets at every bar.sync continuation. */
static int liveness(G *g) {
    const ptx_kernel *k = g->k;
    const int nw = g->nw, n = k->ncode;
    uint64_t *L = calloc((size_t)(n + 1) * (size_t)nw, sizeof(uint64_t));
    if (!L) return -1;
    int changed = 1, u[16], d[8];
    while (changed) {
        changed = 0;
        for (int i = n - 1; i >= 0; i--) {
            const ptx_ins *in = &k->code[i];
            uint64_t *li = L + (size_t)i * nw;
            uint64_t tmp[nw];
            memset(tmp, 0, sizeof(tmp));
            int fall = !(in->op == OP_EXIT && in->pred < 0) && !(in->op == OP_BRA && in->pred < 0);
            if (fall && i + 1 < n) for (int w = 0; w < nw; w++) tmp[w] |= L[(size_t)(i + 1) * nw + w];
            if (in->op == OP_BRA && in->imm >= 0 && in->imm < n) for (int w = 0; w < nw; w++) tmp[w] |= L[(size_t)in->imm * nw + w];
            if (in->pred < 0) {
                int nd = defs_of(in, d);
                for (int j = 0; j < nd; j++) tmp[d[j] / 64] &= ~(1ull << (d[j] % 64));
            }
            int nu = uses_of(k, in, u);
            for (int j = 0; j < nu; j++) tmp[u[j] / 64] |= 1ull << (u[j] % 64);
            for (int w = 0; w < nw; w++) if (tmp[w] != li[w]) { li[w] = tmp[w]; changed = 1; }
        }
    }
    for (int i = 0; i < n; i++)
        if (is_barrier(&k->code[i]) && i + 1 < n)
            for (int w = 0; w < nw; w++) g->live_save[w] |= L[(size_t)(i + 1) * nw + w];
    for (int i = 0; i < n; i++)
        if (g->leader[i])
            for (int w = 0; w < nw; w++) g->live_lead[w] |= L[(size_t)i * nw + w];
    free(L);
    return 0;
}

/* ------------------------------------------------------------------ IR helpers */
static LLVMValueRef ci(LLVMTypeRef t, uint64_t v) { return LLVMConstInt(t, v, 0); }
static LLVMValueRef splat(G *g, LLVMTypeRef vt, uint64_t v) {
    LLVMTypeRef et = LLVMGetElementType(vt);
    LLVMValueRef e[32];
    for (int i = 0; i < 32; i++) e[i] = LLVMConstInt(et, v, 0);
    (void)g;
    return LLVMConstVector(e, 32);
}
static LLVMValueRef splatf(G *g, LLVMTypeRef vt, double v) {
    LLVMTypeRef et = LLVMGetElementType(vt);
    LLVMValueRef e[32];
    for (int i = 0; i < 32; i++) e[i] = LLVMConstReal(et, v);
    (void)g;
    return LLVMConstVector(e, 32);
}
static LLVMValueRef splatv(G *g, LLVMValueRef s, LLVMTypeRef vt) {
    LLVMValueRef u = LLVMGetUndef(vt);
    LLVMValueRef ins = LLVMBuildInsertElement(g->b, u, s, ci(g->i32, 0), "");
    LLVMValueRef zero[32];
    for (int i = 0; i < 32; i++) zero[i] = ci(g->i32, 0);
    return LLVMBuildShuffleVector(g->b, ins, u, LLVMConstVector(zero, 32), "");
}
static LLVMValueRef intrin(G *g, const char *name, LLVMTypeRef *tys, int ntys, LLVMValueRef *args, int nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(g->m, id, tys, (size_t)ntys);
    LLVMTypeRef ft = LLVMIntrinsicGetType(g->cx, id, tys, (size_t)ntys);
    return LLVMBuildCall2(g->b, ft, f, args, (unsigned)nargs, "");
}
/* a call of a runtime helper by its symbol (PTX_JIT_SYM_*): objects hold no process addresses */
static LLVMValueRef helper(G *g, const char *sym, LLVMTypeRef ret, LLVMTypeRef *ps, int np, LLVMValueRef *args) {
    LLVMTypeRef ft = LLVMFunctionType(ret, ps, (unsigned)np, 0);
    LLVMValueRef fp = LLVMGetNamedFunction(g->m, sym);
    if (!fp) fp = LLVMAddFunction(g->m, sym, ft);
    return LLVMBuildCall2(g->b, ft, fp, args, (unsigned)np, "");
}
static LLVMValueRef jf(G *g, int idx) {
    LLVMValueRef p = LLVMBuildGEP2(g->b, g->i64, g->J, (LLVMValueRef[]){ci(g->i32, (uint64_t)idx)}, 1, "");
    return LLVMBuildLoad2(g->b, g->i64, p, "");
}
/* A slot's storage: an alloca, or (slots live across a barrier, in_save_area) the warp's save area,
 * whose alignment is only 8; narrow slots are their 32-bit form. */
static LLVMValueRef slot_load(G *g, int s) {
    LLVMValueRef l = LLVMBuildLoad2(g->b, g->narrow[s] ? g->v32 : g->v64, g->slot[s], "");
    LLVMSetAlignment(l, 8);
    return l;
}
static void slot_store(G *g, int s, LLVMValueRef v) { LLVMSetAlignment(LLVMBuildStore(g->b, v, g->slot[s]), 8); }
static int in_save_area(G *g, int s) { return (g->live_save[s / 64] >> (s % 64)) & 1; }
/* slot s is live at the start of some block (where lanes that do not run wait) */
static int live_at_lead(G *g, int s) { return (g->live_lead[s / 64] >> (s % 64)) & 1; }
static LLVMValueRef fact_load(G *g, LLVMValueRef p) {
    LLVMValueRef l = LLVMBuildLoad2(g->b, g->i32, p, "");
    LLVMSetAlignment(l, 4);
    return l;
}
static void fact_store(G *g, LLVMValueRef p, LLVMValueRef v) { LLVMSetAlignment(LLVMBuildStore(g->b, v, p), 4); }
static LLVMValueRef V(G *g, int s) {
    if (g->is_const[s]) return splat(g, g->v64, g->cval[s]);
    if (g->narrow[s]) return LLVMBuildZExt(g->b, slot_load(g, s), g->v64, "");
    return slot_load(g, s);
}
static void SET(G *g, int s, LLVMValueRef v, LLVMValueRef em) {
    if (s < 0 || g->is_const[s]) return;
    if (g->fact[s].valid) fact_store(g, g->fact[s].valid, ci(g->i32, 0));
    if (g->narrow[s]) v = LLVMBuildTrunc(g->b, v, g->v32, "");
    if (g->cur_unpred && !live_at_lead(g, s)) {
        /* no lane outside the running group can still need the old value: lanes not running wait at
         * the start of a block, where this slot is dead */
        slot_store(g, s, v);
        return;
    }
    slot_store(g, s, LLVMBuildSelect(g->b, em, v, slot_load(g, s), ""));
}
static LLVMTypeRef itype(G *g, int bits) {
    return bits == 1 ? g->v1 : bits == 8 ? g->v8 : bits == 16 ? g->v16 : bits == 32 ? g->v32 : g->v64;
}
static LLVMValueRef TR(G *g, LLVMValueRef v, int bits) { return bits >= 64 ? v : LLVMBuildTrunc(g->b, v, itype(g, bits), ""); }
static LLVMValueRef ZX(G *g, LLVMValueRef v) {
    return LLVMTypeOf(v) == g->v64 ? v : LLVMBuildZExt(g->b, v, g->v64, "");
}
static LLVMValueRef SX(G *g, LLVMValueRef v) {
    return LLVMTypeOf(v) == g->v64 ? v : LLVMBuildSExt(g->b, v, g->v64, "");
}
static LLVMValueRef zextb(G *g, LLVMValueRef v, int bits) { return ZX(g, TR(g, v, bits)); }
static LLVMValueRef sextb(G *g, LLVMValueRef v, int bits) { return SX(g, TR(g, v, bits)); }
static LLVMValueRef asf32(G *g, LLVMValueRef v) { return LLVMBuildBitCast(g->b, TR(g, v, 32), g->vf32, ""); }
static LLVMValueRef asf64(G *g, LLVMValueRef v) { return LLVMBuildBitCast(g->b, v, g->vf64, ""); }
static LLVMValueRef fromf32(G *g, LLVMValueRef f) { return ZX(g, LLVMBuildBitCast(g->b, f, g->v32, "")); }
static LLVMValueRef fromf64(G *g, LLVMValueRef f) { return LLVMBuildBitCast(g->b, f, g->v64, ""); }
static LLVMValueRef bit1(G *g, LLVMValueRef v) { return TR(g, v, 1); }

/* The interpreter's INT_BIN: 8/16-bit types compute on 16 bits, 32 on 32, else 64; zero-extended. */
static int intbin_bits(int t) { int b = bits_of(t); return b <= 16 ? 16 : b; }

static LLVMValueRef mask_bits(G *g, LLVMValueRef m) { return LLVMBuildBitCast(g->b, m, g->i32, ""); }

/* ------------------------------------------------------------------ memory */
static LLVMValueRef all_of(G *g, LLVMValueRef em, LLVMValueRef ok) {
    /* every executing lane satisfies ok */
    LLVMValueRef bad = LLVMBuildAnd(g->b, em, LLVMBuildNot(g->b, ok, ""), "");
    return LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, bad), ci(g->i32, 0), "");
}

static void store_vec(G *g, LLVMValueRef arr, int idx, LLVMValueRef v) {
    LLVMValueRef p = LLVMBuildGEP2(g->b, g->i64, arr, (LLVMValueRef[]){ci(g->i32, (uint64_t)idx * 32)}, 1, "");
    p = LLVMBuildBitCast(g->b, p, LLVMPointerType(g->v64, 0), "");
    LLVMSetAlignment(LLVMBuildStore(g->b, v, p), 8);
}
static LLVMValueRef load_vec(G *g, LLVMValueRef arr, int idx) {
    LLVMValueRef p = LLVMBuildGEP2(g->b, g->i64, arr, (LLVMValueRef[]){ci(g->i32, (uint64_t)idx * 32)}, 1, "");
    p = LLVMBuildBitCast(g->b, p, LLVMPointerType(g->v64, 0), "");
    LLVMValueRef l = LLVMBuildLoad2(g->b, g->v64, p, "");
    LLVMSetAlignment(l, 8);
    return l;
}

/* value of a loaded element as load_elem() gives it */
static LLVMValueRef ext_elem(G *g, LLVMValueRef raw, int t) {
    switch (t) {
    case T_S8: case T_S16: case T_S32: return SX(g, raw);
    case T_PRED: return LLVMBuildAnd(g->b, ZX(g, raw), splat(g, g->v64, 1), "");
    default: return ZX(g, raw);
    }
}

static LLVMValueRef fail_call_check(G *g, LLVMValueRef rc) {
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(g->cx, g->fn, "memok");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, rc, ci(g->i32, 0), ""), g->failbb, ok);
    LLVMPositionBuilderAtEnd(g->b, ok);
    return rc;
}

/* One lane-wise gather (load) or scatter (store) of a 1-element access. */
static LLVMValueRef gather_scatter(G *g, const ptx_ins *in, int isld, LLVMValueRef em, unsigned es, LLVMTypeRef velt,
                                   LLVMTypeRef pvt, LLVMValueRef sbase, LLVMValueRef soff, LLVMValueRef ptr) {
    LLVMValueRef ptrs = sbase ? LLVMBuildBitCast(g->b, LLVMBuildGEP2(g->b, g->i8, sbase, &soff, 1, ""), pvt, "")
                              : LLVMBuildIntToPtr(g->b, ptr, pvt, "");
    LLVMTypeRef tys[2] = {velt, pvt};
    if (isld) return intrin(g, "llvm.masked.gather", tys, 2, (LLVMValueRef[]){ptrs, ci(g->i32, es), em, LLVMGetUndef(velt)}, 4);
    LLVMValueRef val = TR(g, V(g, in->v[0]), (int)es * 8);
    intrin(g, "llvm.masked.scatter", tys, 2, (LLVMValueRef[]){val, ptrs, ci(g->i32, es), em}, 4);
    return NULL;
}

static LLVMValueRef shuf(G *g, LLVMValueRef a, LLVMValueRef b, const int *idx, int n) {
    LLVMValueRef m[32];
    for (int i = 0; i < n; i++) m[i] = ci(g->i32, (uint64_t)idx[i]);
    return LLVMBuildShuffleVector(g->b, a, b ? b : LLVMGetUndef(LLVMTypeOf(a)), LLVMConstVector(m, (unsigned)n), "");
}

/* How a whole-warp 1-element access reads or writes its 32 elements (gen_chunks). */
enum { FORM_LINEAR, FORM_CHUNK_BCAST, FORM_WARP_BCAST };

/* The 4 8-lane chunks of a whole-warp 1-element access, chunk c's first element at p[c] (i8*, checked):
 * FORM_LINEAR, chunks of consecutive elements: 4 vector loads/stores of 8 elements; FORM_CHUNK_BCAST (loads),
 * each chunk's lanes at one address (a half-warp broadcast of a tile element): 4 scalar loads, each splat over
 * its chunk; FORM_WARP_BCAST (loads), every lane at p[0]: one scalar load splat over the warp. Returns the
 * loaded elements (NULL for a store). */
static LLVMValueRef gen_chunks(G *g, const ptx_ins *in, int isld, int form, LLVMValueRef p[4], LLVMTypeRef elt) {
    const unsigned es = in->esize;
    LLVMTypeRef v8 = LLVMVectorType(elt, 8);
    int idx[32];
    for (int i = 0; i < 32; i++) idx[i] = i;
    LLVMValueRef part[4];
    if (form != FORM_LINEAR) {
        for (int c = 0; c < (form == FORM_WARP_BCAST ? 1 : 4); c++) {
            LLVMValueRef x = LLVMBuildLoad2(g->b, elt, LLVMBuildBitCast(g->b, p[c], LLVMPointerType(elt, 0), ""), "");
            LLVMSetAlignment(x, es);
            if (form == FORM_WARP_BCAST) return splatv(g, x, LLVMVectorType(elt, 32));
            part[c] = shuf(g, LLVMBuildInsertElement(g->b, LLVMGetUndef(v8), x, ci(g->i32, 0), ""), NULL,
                           (const int[8]){0, 0, 0, 0, 0, 0, 0, 0}, 8);
        }
    } else {
        LLVMTypeRef p8 = LLVMPointerType(v8, 0);
        LLVMValueRef val = isld ? NULL : TR(g, V(g, in->v[0]), (int)es * 8);
        for (int c = 0; c < 4; c++) {
            LLVMValueRef pc = LLVMBuildBitCast(g->b, p[c], p8, "");
            if (isld) {
                part[c] = LLVMBuildLoad2(g->b, v8, pc, "");
                LLVMSetAlignment(part[c], es);
            } else {
                LLVMSetAlignment(LLVMBuildStore(g->b, shuf(g, val, NULL, idx + 8 * c, 8), pc), es);
            }
        }
        if (!isld) return NULL;
    }
    return shuf(g, shuf(g, part[0], part[1], idx, 16), shuf(g, part[2], part[3], idx, 16), idx, 32);
}

/* Whether 64-bit addresses A (32 lanes) step by es within each 8-lane chunk (*lin: A[8c+i] = A[8c] + i*es)
 * or repeat one address per chunk (*uni); i1 each. */
static void chunk_shape(G *g, LLVMValueRef A, unsigned es, LLVMValueRef *lin, LLVMValueRef *uni) {
    int bidx[32];
    LLVMValueRef step[32];
    for (int i = 0; i < 32; i++) { bidx[i] = i & ~7; step[i] = ci(g->i64, (uint64_t)(i & 7) * es); }
    LLVMValueRef d = LLVMBuildSub(g->b, A, shuf(g, A, NULL, bidx, 32), "");
    LLVMValueRef ones = ci(g->i32, 0xffffffffu);
    *lin = LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, LLVMBuildICmp(g->b, LLVMIntEQ, d, LLVMConstVector(step, 32), "")), ones, "");
    *uni = LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, LLVMBuildICmp(g->b, LLVMIntEQ, d, splat(g, g->v64, 0), "")), ones, "");
}

/* i8* of lane 8c's host address in A (c = 0..3) */
static void chunk_host_ptrs(G *g, LLVMValueRef A, LLVMValueRef p[4]) {
    for (int c = 0; c < 4; c++)
        p[c] = LLVMBuildIntToPtr(g->b, LLVMBuildExtractElement(g->b, A, ci(g->i32, (uint64_t)c * 8), ""), LLVMPointerType(g->i8, 0), "");
}

/* A 1-element ld/st whose host addresses (A, every executing lane checked) have a shape a warp's
 * memory accesses usually have: when all 32 lanes execute, gen_chunks' FORM_LINEAR (stores too) or
 * FORM_CHUNK_BCAST (loads). Otherwise the lane-wise gather/scatter. Same bits either way; only the
 * instructions differ. */
static void gen_shaped(G *g, const ptx_ins *in, int isld, LLVMValueRef A, LLVMValueRef em, unsigned es, LLVMTypeRef elt,
                       LLVMTypeRef velt, LLVMTypeRef pvt, LLVMValueRef sbase, LLVMValueRef soff, LLVMValueRef ptr, int et) {
    LLVMValueRef lin, uni, p[4];
    chunk_shape(g, A, es, &lin, &uni);
    LLVMValueRef full = LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, em), ci(g->i32, 0xffffffffu), "");
    LLVMBasicBlockRef linb = LLVMAppendBasicBlockInContext(g->cx, g->fn, "lin");
    LLVMBasicBlockRef chk = LLVMAppendBasicBlockInContext(g->cx, g->fn, "chk");
    LLVMBasicBlockRef unib = isld ? LLVMAppendBasicBlockInContext(g->cx, g->fn, "uni") : NULL;
    LLVMBasicBlockRef genb = LLVMAppendBasicBlockInContext(g->cx, g->fn, "gather");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(g->cx, g->fn, "shaped");
    LLVMBuildCondBr(g->b, LLVMBuildAnd(g->b, full, lin, ""), linb, chk);
    LLVMPositionBuilderAtEnd(g->b, chk);
    LLVMBuildCondBr(g->b, isld ? LLVMBuildAnd(g->b, full, uni, "") : ci(g->i1, 0), isld ? unib : genb, genb);
    LLVMValueRef res[3];
    LLVMBasicBlockRef from[3];
    int nres = 0;
    for (int w = 0; w < (isld ? 2 : 1); w++) {
        LLVMPositionBuilderAtEnd(g->b, w ? unib : linb);
        chunk_host_ptrs(g, A, p);
        LLVMValueRef v = gen_chunks(g, in, isld, w ? FORM_CHUNK_BCAST : FORM_LINEAR, p, elt);
        if (isld) { res[nres] = v; from[nres++] = LLVMGetInsertBlock(g->b); }
        LLVMBuildBr(g->b, join);
    }
    LLVMPositionBuilderAtEnd(g->b, genb);
    LLVMValueRef gv = gather_scatter(g, in, isld, em, es, velt, pvt, sbase, soff, ptr);
    if (isld) { res[nres] = gv; from[nres++] = LLVMGetInsertBlock(g->b); }
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
    if (isld) {
        LLVMValueRef raw = LLVMBuildPhi(g->b, velt, "");
        LLVMAddIncoming(raw, res, from, (unsigned)nres);
        SET(g, in->v[0], ext_elem(g, raw, et), em);
    }
}

/* Whether gen_ldst hands in to gen_shared32: a shared access through a register holding 32-bit values. */
static int is_shared32(G *g, const ptx_ins *in) {
    return (in->op == OP_LD || in->op == OP_ST) && in->space == SP_SHARED && in->a >= 0 && !g->is_const[in->a] &&
           g->narrow[in->a] && in->imm >= -(1ll << 31) && in->imm < (1ll << 31);
}

/* umin, umax, or, and of the 32-bit lanes of r; with em, of its executing lanes only */
static void reduce4(G *g, LLVMValueRef r, LLVMValueRef em, LLVMValueRef out[4]) {
    static const char *op[4] = {"llvm.vector.reduce.umin", "llvm.vector.reduce.umax", "llvm.vector.reduce.or",
                                "llvm.vector.reduce.and"};
    static const uint32_t idle[4] = {0xffffffffu, 0, 0, 0xffffffffu}; /* what an idle lane adds: nothing */
    for (int i = 0; i < 4; i++) {
        LLVMValueRef x = em ? LLVMBuildSelect(g->b, em, r, splat(g, g->v32, idle[i]), "") : r;
        out[i] = intrin(g, op[i], &g->v32, 1, &x, 1);
    }
}

/* The interpreter's rule for shared accesses of tot bytes at zext(r) + imm, imm in [imm_lo, imm_hi] and
 * congruent to imm_lo modulo tot, in every lane that counts, from reduce4's facts: inside [0, size - tot] and
 * aligned to tot (the low bits of a sum depend only on the low bits of its terms: one check serves every imm). */
static LLVMValueRef shared_ok_span(G *g, LLVMValueRef f[4], int64_t imm_lo, int64_t imm_hi, unsigned tot) {
    LLVMValueRef lim = LLVMBuildSub(g->b, jf(g, JF_SMEM_SIZE), ci(g->i64, tot), "");
    LLVMValueRef lo = LLVMBuildAdd(g->b, LLVMBuildZExt(g->b, f[0], g->i64, ""), ci(g->i64, (uint64_t)imm_lo), "");
    LLVMValueRef hi = LLVMBuildAdd(g->b, LLVMBuildZExt(g->b, f[1], g->i64, ""), ci(g->i64, (uint64_t)imm_hi), "");
    LLVMValueRef ok = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntSGE, lo, ci(g->i64, 0), ""),
                                   LLVMBuildICmp(g->b, LLVMIntSLE, hi, lim, ""), "");
    if (tot > 1) {
        LLVMValueRef m = ci(g->i32, tot - 1);
        LLVMValueRef same = LLVMBuildICmp(g->b, LLVMIntEQ, LLVMBuildAnd(g->b, LLVMBuildXor(g->b, f[2], f[3], ""), m, ""),
                                          ci(g->i32, 0), "");
        LLVMValueRef al = LLVMBuildICmp(g->b, LLVMIntEQ,
                                        LLVMBuildAnd(g->b, LLVMBuildAdd(g->b, f[2], ci(g->i32, (uint64_t)imm_lo & 0xffffffffu), ""), m, ""),
                                        ci(g->i32, 0), "");
        ok = LLVMBuildAnd(g->b, ok, LLVMBuildAnd(g->b, same, al, ""), "");
    }
    return ok;
}
static LLVMValueRef shared_ok(G *g, LLVMValueRef f[4], int64_t imm, unsigned tot) { return shared_ok_span(g, f, imm, imm, tot); }

/* A register's facts for the whole-warp fast paths of gen_shared32, kept (addr_facts) from its first use
 * as a shared address after a write until the next write (SET clears valid, as does the warp's first
 * entry; a barrier or a yield keeps them): reduce4 of all 32 lanes, and its shape: whether each 8-lane
 * chunk steps by one stride (r[8c+i] = r[8c] + i*stride, 32-bit), and that stride. */
static void addr_facts_compute(G *g, const addr_facts *f, LLVMValueRef r) {
    LLVMValueRef red[4];
    reduce4(g, r, NULL, red);
    for (int i = 0; i < 4; i++) fact_store(g, f->red[i], red[i]);
    int bidx[32];
    LLVMValueRef lane[32];
    for (int i = 0; i < 32; i++) { bidx[i] = i & ~7; lane[i] = ci(g->i32, (uint64_t)(i & 7)); }
    LLVMValueRef d = LLVMBuildSub(g->b, r, shuf(g, r, NULL, bidx, 32), "");
    LLVMValueRef stride = LLVMBuildExtractElement(g->b, d, ci(g->i32, 1), "");
    LLVMValueRef want = LLVMBuildMul(g->b, LLVMConstVector(lane, 32), splatv(g, stride, g->v32), "");
    LLVMValueRef reg = LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, LLVMBuildICmp(g->b, LLVMIntEQ, d, want, "")),
                                     ci(g->i32, 0xffffffffu), "");
    fact_store(g, f->regular, LLVMBuildZExt(g->b, reg, g->i32, ""));
    fact_store(g, f->stride, stride);
    fact_store(g, f->valid, ci(g->i32, 1));
}

/* i8* of lane 8c's element in shared memory (c = 0..3): smem + zext(r[8c]) + imm */
static void chunk_ptrs(G *g, LLVMValueRef r, int64_t imm, LLVMValueRef p[4]) {
    LLVMValueRef smem = LLVMBuildIntToPtr(g->b, jf(g, JF_SMEM), LLVMPointerType(g->i8, 0), "");
    for (int c = 0; c < 4; c++) {
        LLVMValueRef off = LLVMBuildAdd(g->b, LLVMBuildZExt(g->b, LLVMBuildExtractElement(g->b, r, ci(g->i32, (uint64_t)c * 8), ""), g->i64, ""),
                                        ci(g->i64, (uint64_t)imm), "");
        p[c] = LLVMBuildGEP2(g->b, g->i8, smem, &off, 1, "");
    }
}

/* A shared-memory ld/st whose address register holds 32-bit values (every shared address does).
 * Bounds and alignment are exactly the interpreter's rule (shared_ok); a warp that fails them goes
 * through the runtime (ptx_jit_xlate), which reports the fault word for word. When all 32 lanes
 * execute a 1-element access, it takes gen_chunks' forms (8-lane chunks of consecutive elements: 4 vector
 * loads/stores; chunks sharing one address: 4 scalar loads, a half-warp broadcast of a tile element): in the
 * fast copy of a block for an access of a shared_group, with no check of its own (the block's entry checked
 * its group), else as the register's cached facts (addr_facts_compute, once per write of the register) decide
 * in a few scalar compares.
 * Anything else is a gather/scatter with 32-bit offsets, its checks reduced over the executing lanes. Same
 * bits on every path; only the instructions differ. */
static void gen_shared32(G *g, int idx, const ptx_ins *in, LLVMValueRef em) {
    const int isld = in->op == OP_LD, nv = in->vec, et = in->t;
    const unsigned es = in->esize, tot = es * (unsigned)nv;
    const int64_t imm = in->imm;
    if (g->copy != COPY_GENERAL && g->sgroup[idx] >= 0) {
        /* the fast copy of a block: its entry checked this access with its group */
        const shared_group *sg = &g->grp[g->sgroup[idx]];
        LLVMValueRef p[4];
        LLVMTypeRef elt = es == 1 ? g->i8 : es == 2 ? g->i16 : es == 4 ? g->i32 : g->i64;
        for (int c = 0; c < 4; c++) {
            LLVMValueRef off = ci(g->i64, (uint64_t)imm);
            p[c] = LLVMBuildGEP2(g->b, g->i8, sg->base[c], &off, 1, "");
        }
        const int form = g->copy == COPY_FAST_WARP_BCAST && sg->form == FORM_CHUNK_BCAST ? FORM_WARP_BCAST : sg->form;
        LLVMValueRef v = gen_chunks(g, in, isld, form, p, elt);
        if (isld) SET(g, in->v[0], ext_elem(g, v, et), em);
        return;
    }
    LLVMValueRef r = slot_load(g, in->a);
    LLVMBasicBlockRef gchk = LLVMAppendBasicBlockInContext(g->cx, g->fn, "schk");
    LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(g->cx, g->fn, "sslow");
    LLVMBasicBlockRef genb = LLVMAppendBasicBlockInContext(g->cx, g->fn, "sgather");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(g->cx, g->fn, "sjoin");
    LLVMTypeRef elt = es == 1 ? g->i8 : es == 2 ? g->i16 : es == 4 ? g->i32 : g->i64;
    LLVMTypeRef velt = itype(g, (int)es * 8);
    LLVMTypeRef pvt = LLVMVectorType(LLVMPointerType(elt, 0), 32);
    LLVMValueRef res[3], p[4];
    LLVMBasicBlockRef from[3];
    int nres = 0;
    if (nv == 1) {
        const addr_facts *f = &g->fact[in->a];
        LLVMBasicBlockRef cfull = LLVMAppendBasicBlockInContext(g->cx, g->fn, "sfull");
        LLVMBasicBlockRef ccomp = LLVMAppendBasicBlockInContext(g->cx, g->fn, "sfacts");
        LLVMBasicBlockRef cuse = LLVMAppendBasicBlockInContext(g->cx, g->fn, "sshape");
        LLVMBasicBlockRef linb = LLVMAppendBasicBlockInContext(g->cx, g->fn, "slin");
        LLVMBasicBlockRef cuni = isld ? LLVMAppendBasicBlockInContext(g->cx, g->fn, "sunichk") : NULL;
        LLVMBasicBlockRef unib = isld ? LLVMAppendBasicBlockInContext(g->cx, g->fn, "suni") : NULL;
        LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, em), ci(g->i32, 0xffffffffu), ""), cfull, gchk);
        LLVMPositionBuilderAtEnd(g->b, cfull);
        LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntNE, fact_load(g, f->valid), ci(g->i32, 0), ""), cuse, ccomp);
        LLVMPositionBuilderAtEnd(g->b, ccomp);
        addr_facts_compute(g, f, r);
        LLVMBuildBr(g->b, cuse);
        LLVMPositionBuilderAtEnd(g->b, cuse);
        LLVMValueRef red[4];
        for (int i = 0; i < 4; i++) red[i] = fact_load(g, f->red[i]);
        LLVMValueRef ok = LLVMBuildAnd(g->b, shared_ok(g, red, imm, tot),
                                       LLVMBuildICmp(g->b, LLVMIntNE, fact_load(g, f->regular), ci(g->i32, 0), ""), "");
        LLVMValueRef stride = fact_load(g, f->stride);
        chunk_ptrs(g, r, imm, p); /* in bounds on the paths that use them (checked) */
        LLVMBuildCondBr(g->b, LLVMBuildAnd(g->b, ok, LLVMBuildICmp(g->b, LLVMIntEQ, stride, ci(g->i32, es), ""), ""), linb,
                        isld ? cuni : gchk);
        if (isld) {
            LLVMPositionBuilderAtEnd(g->b, cuni);
            LLVMBuildCondBr(g->b, LLVMBuildAnd(g->b, ok, LLVMBuildICmp(g->b, LLVMIntEQ, stride, ci(g->i32, 0), ""), ""), unib, gchk);
        }
        for (int w = 0; w < (isld ? 2 : 1); w++) {
            LLVMPositionBuilderAtEnd(g->b, w ? unib : linb);
            LLVMValueRef v = gen_chunks(g, in, isld, w ? FORM_CHUNK_BCAST : FORM_LINEAR, p, elt);
            if (isld) { res[nres] = v; from[nres++] = LLVMGetInsertBlock(g->b); }
            LLVMBuildBr(g->b, join);
        }
    } else {
        LLVMBuildBr(g->b, gchk);
    }
    /* any executing mask or shape: the checks over the executing lanes */
    LLVMPositionBuilderAtEnd(g->b, gchk);
    LLVMValueRef red[4];
    reduce4(g, r, em, red);
    LLVMBuildCondBr(g->b, shared_ok(g, red, imm, tot), genb, slow);
    /* slow: the runtime checks each lane (and reports the first fault); no fault: the gather below */
    LLVMPositionBuilderAtEnd(g->b, slow);
    store_vec(g, g->sc_addr, 0, LLVMBuildAdd(g->b, LLVMBuildZExt(g->b, r, g->v64, ""), splat(g, g->v64, (uint64_t)imm), ""));
    LLVMTypeRef ps[5] = {LLVMTypeOf(g->J), g->i32, LLVMPointerType(g->i64, 0), g->i32, LLVMPointerType(g->i64, 0)};
    fail_call_check(g, helper(g, PTX_JIT_SYM_XLATE, g->i32, ps, 5,
                              (LLVMValueRef[]){g->J, ci(g->i32, (uint64_t)idx), g->sc_addr, mask_bits(g, em), g->sc_vals}));
    LLVMBuildBr(g->b, genb);
    /* gather/scatter: every executing lane's offset is checked and below the shared size (< 4 GiB) */
    LLVMPositionBuilderAtEnd(g->b, genb);
    LLVMValueRef smem2 = LLVMBuildIntToPtr(g->b, jf(g, JF_SMEM), LLVMPointerType(g->i8, 0), "");
    LLVMValueRef off0 = LLVMBuildAdd(g->b, r, splat(g, g->v32, (uint64_t)imm & 0xffffffffu), "");
    LLVMTypeRef tys[2] = {velt, pvt};
    for (int kk = 0; kk < nv; kk++) {
        LLVMValueRef off = kk ? LLVMBuildAdd(g->b, off0, splat(g, g->v32, (uint64_t)kk * es), "") : off0;
        LLVMValueRef ptrs = LLVMBuildBitCast(g->b, LLVMBuildGEP2(g->b, g->i8, smem2, &off, 1, ""), pvt, "");
        if (isld) {
            LLVMValueRef raw = intrin(g, "llvm.masked.gather", tys, 2, (LLVMValueRef[]){ptrs, ci(g->i32, es), em, LLVMGetUndef(velt)}, 4);
            if (nv == 1) { res[nres] = raw; from[nres++] = LLVMGetInsertBlock(g->b); }
            else SET(g, in->v[kk], ext_elem(g, raw, et), em);
        } else {
            LLVMValueRef v = TR(g, V(g, in->v[kk]), (int)es * 8);
            intrin(g, "llvm.masked.scatter", tys, 2, (LLVMValueRef[]){v, ptrs, ci(g->i32, es), em}, 4);
        }
    }
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
    if (isld && nv == 1) {
        LLVMValueRef raw = LLVMBuildPhi(g->b, velt, "");
        LLVMAddIncoming(raw, res, from, (unsigned)nres);
        SET(g, in->v[0], ext_elem(g, raw, et), em);
    }
}

/* Whether an instruction of the block [from, to) writes slot s. */
static int writes_slot(const ptx_kernel *k, int from, int to, int s) {
    int d[8];
    for (int i = from; i < to; i++) {
        int nd = defs_of(&k->code[i], d);
        for (int j = 0; j < nd; j++) if (d[j] == s) return 1;
    }
    return 0;
}

/* The shared_groups of the block led by instruction `leader` (kernels that get -O2 only, within copy_budget):
 * its unpredicated 1-element shared accesses through a register no instruction of the block
 * writes before them, grouped by register, each group in the form lane_var guesses (a store only linear);
 * an access whose element size, offset modulo that size or form does not fit its group stays alone, and
 * groups of one access are dropped. Sets g->sgroup of the block's instructions. */
static void plan_shared_groups(G *g, int leader) {
    const ptx_kernel *k = g->k;
    const int end = leader + g->blen[leader];
    g->ngrp = 0;
    g->fast_copies = 0;
    for (int i = leader; i < end; i++) {
        const ptx_ins *in = &k->code[i];
        g->sgroup[i] = -1;
        if (k->ncode > PTX_JIT_FULL_OPT_INSTRUCTIONS || !is_shared32(g, in) || in->vec != 1 || in->pred >= 0 ||
            writes_slot(k, leader, i, in->a))
            continue;
        const int form = g->lane_var[in->a] ? FORM_LINEAR : FORM_CHUNK_BCAST;
        if (in->op == OP_ST && form != FORM_LINEAR) continue;
        int q = 0;
        while (q < g->ngrp && g->grp[q].reg != in->a) q++;
        shared_group *sg = &g->grp[q];
        if (q == g->ngrp) {
            memset(sg, 0, sizeof(*sg));
            sg->reg = in->a;
            sg->es = in->esize;
            sg->form = form;
            sg->imm_lo = sg->imm_hi = in->imm;
            g->ngrp++;
        } else if (sg->es != in->esize || (in->imm - sg->imm_lo) % (int64_t)sg->es) {
            continue;
        }
        if (in->imm < sg->imm_lo) sg->imm_lo = in->imm;
        if (in->imm > sg->imm_hi) sg->imm_hi = in->imm;
        sg->count++;
        g->sgroup[i] = q;
    }
    for (int i = leader; i < end; i++)
        if (g->sgroup[i] >= 0 && g->grp[g->sgroup[i]].count < 2) g->sgroup[i] = -1;
    /* the copies count against -O2's size limit (ptx_jit.h): blocks are taken in order while the kernel and its
     * copies stay within PTX_JIT_FULL_OPT_INSTRUCTIONS */
    int any = 0, bcast = 0;
    for (int q = 0; q < g->ngrp; q++) {
        any |= g->grp[q].count >= 2;
        bcast |= g->grp[q].count >= 2 && g->grp[q].form == FORM_CHUNK_BCAST;
    }
    g->fast_copies = any ? 1 + bcast : 0;
    if (g->fast_copies * g->blen[leader] > g->copy_budget) {
        for (int i = leader; i < end; i++) g->sgroup[i] = -1;
        g->fast_copies = 0;
        return;
    }
    g->copy_budget -= g->fast_copies * g->blen[leader];
}

/* The builder is at the start of a copy of the current block: its fast copies need each group's chunk bases. */
static void start_copy(G *g, int copy) {
    g->copy = copy;
    if (copy == COPY_GENERAL) return;
    for (int q = 0; q < g->ngrp; q++)
        if (g->grp[q].count >= 2) chunk_ptrs(g, slot_load(g, g->grp[q].reg), 0, g->grp[q].base);
}

/* At the entry of the block led by `leader`, when it has shared_groups: a fast copy runs when all 32 lanes
 * run and, for each group, its register's facts (computed here if a write cleared them) put the span of its
 * offsets in bounds, aligned, and in the group's form (FORM_LINEAR: 8-lane chunks step by the element size;
 * FORM_CHUNK_BCAST: each chunk's lanes equal); COPY_FAST_WARP_BCAST when, besides, every broadcast group's
 * register has one value (its min is its max). Leaves the builder in the first fast copy, the other copies'
 * starts queued in g->next_copy (the general copy last). */
static void gen_fast_block_entry(G *g, int leader) {
    if (!g->fast_copies) return;
    const int bcast = g->fast_copies == 2;
    LLVMValueRef act = LLVMBuildLoad2(g->b, g->v1, g->active, "");
    LLVMBasicBlockRef fast = LLVMAppendBasicBlockInContext(g->cx, g->fn, "fastblock");
    LLVMBasicBlockRef fastw = bcast ? LLVMAppendBasicBlockInContext(g->cx, g->fn, "fastblock_warp") : NULL;
    LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(g->cx, g->fn, "block");
    LLVMBasicBlockRef chk = LLVMAppendBasicBlockInContext(g->cx, g->fn, "fastchk");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, act), ci(g->i32, 0xffffffffu), ""), chk, slow);
    LLVMPositionBuilderAtEnd(g->b, chk);
    LLVMValueRef all = ci(g->i1, 1), one = ci(g->i1, 1);
    for (int q = 0; q < g->ngrp; q++) {
        shared_group *sg = &g->grp[q];
        if (sg->count < 2) continue;
        const addr_facts *f = &g->fact[sg->reg];
        LLVMBasicBlockRef comp = LLVMAppendBasicBlockInContext(g->cx, g->fn, "fastfacts");
        LLVMBasicBlockRef use = LLVMAppendBasicBlockInContext(g->cx, g->fn, "fastshape");
        LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntNE, fact_load(g, f->valid), ci(g->i32, 0), ""), use, comp);
        LLVMPositionBuilderAtEnd(g->b, comp);
        addr_facts_compute(g, f, slot_load(g, sg->reg));
        LLVMBuildBr(g->b, use);
        LLVMPositionBuilderAtEnd(g->b, use);
        LLVMValueRef red[4];
        for (int i = 0; i < 4; i++) red[i] = fact_load(g, f->red[i]);
        LLVMValueRef ok = LLVMBuildAnd(g->b, shared_ok_span(g, red, sg->imm_lo, sg->imm_hi, sg->es),
                                       LLVMBuildICmp(g->b, LLVMIntNE, fact_load(g, f->regular), ci(g->i32, 0), ""), "");
        LLVMValueRef want = ci(g->i32, sg->form == FORM_LINEAR ? sg->es : 0);
        all = LLVMBuildAnd(g->b, all, LLVMBuildAnd(g->b, ok, LLVMBuildICmp(g->b, LLVMIntEQ, fact_load(g, f->stride), want, ""), ""), "");
        if (sg->form == FORM_CHUNK_BCAST) one = LLVMBuildAnd(g->b, one, LLVMBuildICmp(g->b, LLVMIntEQ, red[0], red[1], ""), "");
    }
    if (bcast) {
        LLVMBasicBlockRef pick = LLVMAppendBasicBlockInContext(g->cx, g->fn, "fastpick");
        LLVMBuildCondBr(g->b, all, pick, slow);
        LLVMPositionBuilderAtEnd(g->b, pick);
        LLVMBuildCondBr(g->b, one, fastw, fast);
    } else {
        LLVMBuildCondBr(g->b, all, fast, slow);
    }
    g->clone_lead = leader;
    g->clone_end = leader + g->blen[leader];
    g->nnext = 0;
    if (bcast) { g->next_entry[g->nnext] = fast; g->next_copy[g->nnext++] = COPY_FAST; }
    g->next_entry[g->nnext] = slow;
    g->next_copy[g->nnext++] = COPY_GENERAL;
    LLVMPositionBuilderAtEnd(g->b, bcast ? fastw : fast);
    start_copy(g, bcast ? COPY_FAST_WARP_BCAST : COPY_FAST);
}

/* The current copy of the block ends at instruction i: the builder moves to the next queued copy, and i back
 * to the block's first instruction. 1 if there is one (the caller generates the block again), else 0. */
static int next_block_copy(G *g, int *i) {
    if (g->copy == COPY_GENERAL || *i != g->clone_end || g->nnext == 0) return 0;
    LLVMPositionBuilderAtEnd(g->b, g->next_entry[0]);
    const int copy = g->next_copy[0];
    g->nnext--;
    for (int j = 0; j < g->nnext; j++) { g->next_entry[j] = g->next_entry[j + 1]; g->next_copy[j] = g->next_copy[j + 1]; }
    start_copy(g, copy);
    *i = g->clone_lead;
    return 1;
}

/* i1: the bytes [mn, mx + tot) lie in one of the runtime's 4 most recent global allocations (a, b, c of
 * c = a op b; ptx_mem.h), the end not wrapped around (as the interpreter's per-lane check: a + n >= a). */
static LLVMValueRef in_cached_alloc(G *g, LLVMValueRef mn, LLVMValueRef mx, unsigned tot) {
    LLVMValueRef end = LLVMBuildAdd(g->b, mx, ci(g->i64, tot), "");
    LLVMValueRef hit = NULL;
    for (int c = 0; c < 4; c++) {
        LLVMValueRef lo = jf(g, JF_GC0_LO + 2 * c), hi = jf(g, JF_GC0_HI + 2 * c);
        LLVMValueRef h = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntUGE, mn, lo, ""), LLVMBuildICmp(g->b, LLVMIntULE, end, hi, ""), "");
        hit = hit ? LLVMBuildOr(g->b, hit, h, "") : h;
    }
    return LLVMBuildAnd(g->b, hit, LLVMBuildICmp(g->b, LLVMIntUGT, end, mx, ""), "");
}

/* The stride prefetch of a whole-warp linear global load at prefetch site `site` (ptx_jit.h,
 * PTX_JIT_PREFETCH_SITES), its 4 chunk addresses b[] checked already: the step from the site's previous
 * lane-0 address is remembered, and when it repeats one of at least PTX_JIT_PREFETCH_MIN_STEP bytes either way,
 * the 4 chunks' addresses PTX_JIT_PREFETCH_STRIDES steps ahead are prefetched (an address that is no one's
 * memory costs nothing: a prefetch never faults). */
static void gen_stride_prefetch(G *g, int site, LLVMValueRef b[4]) {
    LLVMValueRef lastp = LLVMBuildGEP2(g->b, g->i64, g->J, (LLVMValueRef[]){ci(g->i32, (uint64_t)(JF_PREFETCH + 2 * site))}, 1, "");
    LLVMValueRef stepp = LLVMBuildGEP2(g->b, g->i64, g->J, (LLVMValueRef[]){ci(g->i32, (uint64_t)(JF_PREFETCH + 2 * site + 1))}, 1, "");
    LLVMValueRef step = LLVMBuildSub(g->b, b[0], LLVMBuildLoad2(g->b, g->i64, lastp, ""), "");
    /* |step| >= MIN: step + (MIN - 1) (mod 2^64) above 2 * (MIN - 1) */
    LLVMValueRef far = LLVMBuildICmp(g->b, LLVMIntUGT, LLVMBuildAdd(g->b, step, ci(g->i64, PTX_JIT_PREFETCH_MIN_STEP - 1), ""),
                                     ci(g->i64, 2 * (PTX_JIT_PREFETCH_MIN_STEP - 1)), "");
    LLVMValueRef again = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, step, LLVMBuildLoad2(g->b, g->i64, stepp, ""), ""), far, "");
    LLVMBuildStore(g->b, b[0], lastp);
    LLVMBuildStore(g->b, step, stepp);
    LLVMBasicBlockRef pf = LLVMAppendBasicBlockInContext(g->cx, g->fn, "prefetch");
    LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(g->cx, g->fn, "");
    LLVMBuildCondBr(g->b, again, pf, cont);
    LLVMPositionBuilderAtEnd(g->b, pf);
    LLVMValueRef ahead = LLVMBuildMul(g->b, step, ci(g->i64, PTX_JIT_PREFETCH_STRIDES), "");
    LLVMTypeRef p8 = LLVMPointerType(g->i8, 0);
    for (int c = 0; c < 4; c++) {
        LLVMValueRef at = LLVMBuildIntToPtr(g->b, LLVMBuildAdd(g->b, b[c], ahead, ""), p8, "");
        /* read, locality 3 (all cache levels), data */
        intrin(g, "llvm.prefetch", &p8, 1, (LLVMValueRef[]){at, ci(g->i32, 0), ci(g->i32, 3), ci(g->i32, 1)}, 4);
    }
    LLVMBuildBr(g->b, cont);
    LLVMPositionBuilderAtEnd(g->b, cont);
}

/* A whole-warp 1-element global (or const, generic) ld/st of the shapes gen_chunks reads and writes, checked
 * from its 4 chunk addresses alone (the whole warp's range follows from the shape: [min, max + 8*es) for
 * FORM_LINEAR, [min, max + es) for FORM_CHUNK_BCAST; aligned when the 4 are), instead of reductions over the
 * 32 lanes: a tile loop's global loads. Each fast form ends at `done`; the builder is left where every other
 * access continues (the general checks). Same rule as theirs: the interpreter's bounds and alignment. */
static void gen_global_chunks(G *g, int idx, const ptx_ins *in, LLVMValueRef a, LLVMValueRef em, LLVMBasicBlockRef done) {
    const int isld = in->op == OP_LD;
    const unsigned es = in->esize;
    LLVMTypeRef elt = es == 1 ? g->i8 : es == 2 ? g->i16 : es == 4 ? g->i32 : g->i64;
    LLVMValueRef lin, uni, b[4], p[4];
    chunk_shape(g, a, es, &lin, &uni);
    LLVMValueRef full = LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, em), ci(g->i32, 0xffffffffu), "");
    LLVMValueRef mn = NULL, mx = NULL, bits = NULL;
    for (int c = 0; c < 4; c++) {
        b[c] = LLVMBuildExtractElement(g->b, a, ci(g->i32, (uint64_t)c * 8), "");
        mn = mn ? LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntULT, b[c], mn, ""), b[c], mn, "") : b[c];
        mx = mx ? LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntUGT, b[c], mx, ""), b[c], mx, "") : b[c];
        bits = bits ? LLVMBuildOr(g->b, bits, b[c], "") : b[c];
    }
    LLVMValueRef ok = full;
    if (es > 1)
        ok = LLVMBuildAnd(g->b, ok, LLVMBuildICmp(g->b, LLVMIntEQ, LLVMBuildAnd(g->b, bits, ci(g->i64, es - 1), ""), ci(g->i64, 0), ""), "");
    for (int w = 0; w < (isld ? 2 : 1); w++) {
        /* the shape first (vector compares), then the range on the path of that shape only */
        LLVMBasicBlockRef range = LLVMAppendBasicBlockInContext(g->cx, g->fn, w ? "glunirange" : "gllinrange");
        LLVMBasicBlockRef fast = LLVMAppendBasicBlockInContext(g->cx, g->fn, w ? "gluni" : "gllin");
        LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(g->cx, g->fn, "");
        LLVMBuildCondBr(g->b, LLVMBuildAnd(g->b, ok, w ? uni : lin, ""), range, next);
        LLVMPositionBuilderAtEnd(g->b, range);
        /* FORM_LINEAR: the last lane of the highest chunk is at mx + 7*es (not wrapped around past 2^64) */
        LLVMValueRef hi = w ? mx : LLVMBuildAdd(g->b, mx, ci(g->i64, 7ull * es), "");
        LLVMValueRef inside = in_cached_alloc(g, mn, hi, es);
        if (!w) inside = LLVMBuildAnd(g->b, inside, LLVMBuildICmp(g->b, LLVMIntUGE, hi, mx, ""), "");
        LLVMBuildCondBr(g->b, inside, fast, next);
        LLVMPositionBuilderAtEnd(g->b, fast);
        if (isld && !w && g->pf_site[idx] >= 0) gen_stride_prefetch(g, g->pf_site[idx], b);
        for (int c = 0; c < 4; c++) p[c] = LLVMBuildIntToPtr(g->b, b[c], LLVMPointerType(g->i8, 0), "");
        LLVMValueRef v = gen_chunks(g, in, isld, w ? FORM_CHUNK_BCAST : FORM_LINEAR, p, elt);
        if (isld) SET(g, in->v[0], ext_elem(g, v, in->t), em);
        LLVMBuildBr(g->b, done);
        LLVMPositionBuilderAtEnd(g->b, next);
    }
}

static void gen_ldst(G *g, int idx, const ptx_ins *in, LLVMValueRef em) {
    const int isld = in->op == OP_LD, sp = in->space, nv = in->vec, et = in->t;
    const unsigned es = in->esize, tot = es * (unsigned)nv;
    if (is_shared32(g, in)) {
        gen_shared32(g, idx, in, em);
        return;
    }
    LLVMBasicBlockRef done = NULL; /* where the kernel-parameter and whole-warp global fast paths end */
    if (isld && sp == SP_KPARAM && (in->a < 0 || g->is_const[in->a])) {
        /* a kernel parameter at an offset known here: one scalar load per element, checked against the
         * launch's buffer once (the interpreter's ptx_mem_kparam rule); otherwise the lane-wise path */
        const uint64_t off = (in->a >= 0 ? g->cval[in->a] : 0) + (uint64_t)in->imm;
        if (!(off & (tot - 1))) {
            LLVMValueRef psz = jf(g, JF_PARAM_SIZE);
            LLVMValueRef okp = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntULE, ci(g->i64, off), psz, ""),
                                            LLVMBuildICmp(g->b, LLVMIntULE, ci(g->i64, tot),
                                                          LLVMBuildSub(g->b, psz, ci(g->i64, off), ""), ""), "");
            LLVMBasicBlockRef pf = LLVMAppendBasicBlockInContext(g->cx, g->fn, "pfast");
            LLVMBasicBlockRef pg = LLVMAppendBasicBlockInContext(g->cx, g->fn, "pslow");
            done = LLVMAppendBasicBlockInContext(g->cx, g->fn, "ldst_done");
            LLVMBuildCondBr(g->b, okp, pf, pg);
            LLVMPositionBuilderAtEnd(g->b, pf);
            LLVMTypeRef pelt = es == 1 ? g->i8 : es == 2 ? g->i16 : es == 4 ? g->i32 : g->i64;
            LLVMValueRef base = LLVMBuildIntToPtr(g->b, jf(g, JF_PARAM), LLVMPointerType(g->i8, 0), "");
            for (int kk = 0; kk < nv; kk++) {
                LLVMValueRef o = ci(g->i64, off + (uint64_t)kk * es);
                LLVMValueRef pp = LLVMBuildBitCast(g->b, LLVMBuildGEP2(g->b, g->i8, base, &o, 1, ""), LLVMPointerType(pelt, 0), "");
                LLVMValueRef x = LLVMBuildLoad2(g->b, pelt, pp, "");
                LLVMSetAlignment(x, 1);
                SET(g, in->v[kk], ext_elem(g, splatv(g, x, itype(g, (int)es * 8)), et), em);
            }
            LLVMBuildBr(g->b, done);
            LLVMPositionBuilderAtEnd(g->b, pg);
        }
    }
    LLVMValueRef a = LLVMBuildAdd(g->b, V(g, in->a), splat(g, g->v64, (uint64_t)in->imm), "");
    if (nv == 1 && (sp == SP_GLOBAL || sp == SP_CONST || sp == SP_GENERIC)) {
        if (!done) done = LLVMAppendBasicBlockInContext(g->cx, g->fn, "ldst_done");
        gen_global_chunks(g, idx, in, a, em, done);
    }
    LLVMValueRef fastp = a, okc = NULL;
    LLVMValueRef aligned = tot > 1 ? LLVMBuildICmp(g->b, LLVMIntEQ, LLVMBuildAnd(g->b, a, splat(g, g->v64, tot - 1), ""),
                                                   splat(g, g->v64, 0), "")
                                   : NULL;
    if (sp == SP_SHARED) {
        LLVMValueRef size = jf(g, JF_SMEM_SIZE);
        LLVMValueRef lim = LLVMBuildSub(g->b, size, ci(g->i64, tot), "");
        LLVMValueRef in_r = LLVMBuildICmp(g->b, LLVMIntULE, a, splatv(g, lim, g->v64), "");
        if (aligned) in_r = LLVMBuildAnd(g->b, in_r, aligned, "");
        okc = LLVMBuildAnd(g->b, all_of(g, em, in_r), LLVMBuildICmp(g->b, LLVMIntUGE, size, ci(g->i64, tot), ""), "");
        fastp = LLVMBuildAdd(g->b, a, splatv(g, jf(g, JF_SMEM), g->v64), "");
    } else if (sp == SP_GLOBAL || sp == SP_CONST || sp == SP_GENERIC) {
        LLVMValueRef mn = intrin(g, "llvm.vector.reduce.umin", &g->v64, 1,
                                 (LLVMValueRef[]){LLVMBuildSelect(g->b, em, a, splat(g, g->v64, ~0ull), "")}, 1);
        LLVMValueRef mx = intrin(g, "llvm.vector.reduce.umax", &g->v64, 1,
                                 (LLVMValueRef[]){LLVMBuildSelect(g->b, em, a, splat(g, g->v64, 0), "")}, 1);
        okc = in_cached_alloc(g, mn, mx, tot);
        if (aligned) okc = LLVMBuildAnd(g->b, okc, all_of(g, em, aligned), "");
    }
    if (!okc) okc = ci(g->i1, 0);
    /* fast: the addresses are host addresses; slow: the runtime translates each lane (any space) or reports the fault */
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(g->cx, g->fn, "slow");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(g->cx, g->fn, "mem");
    LLVMBuildCondBr(g->b, okc, join, slow);
    LLVMPositionBuilderAtEnd(g->b, slow);
    store_vec(g, g->sc_addr, 0, a);
    LLVMTypeRef ps[5] = {LLVMTypeOf(g->J), g->i32, LLVMPointerType(g->i64, 0), g->i32, LLVMPointerType(g->i64, 0)};
    LLVMValueRef rc = helper(g, PTX_JIT_SYM_XLATE, g->i32, ps, 5,
                             (LLVMValueRef[]){g->J, ci(g->i32, (uint64_t)idx), g->sc_addr, mask_bits(g, em), g->sc_vals});
    fail_call_check(g, rc);
    LLVMValueRef slowp = load_vec(g, g->sc_vals, 0);
    LLVMBasicBlockRef slow_end = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, join);
    LLVMPositionBuilderAtEnd(g->b, join);
    LLVMValueRef ptr = NULL, sbase = NULL, soff = NULL;
    if (sp == SP_SHARED) {
        /* a shared access the slow path did not fault is at smem + a (a < 227 KiB): gather with a
         * scalar base and 32-bit offsets (half the gather instructions of 64-bit pointers) */
        (void)slowp;
        sbase = LLVMBuildIntToPtr(g->b, jf(g, JF_SMEM), LLVMPointerType(g->i8, 0), "");
        soff = LLVMBuildTrunc(g->b, a, g->v32, "");
    } else {
        ptr = LLVMBuildPhi(g->b, g->v64, "");
        LLVMValueRef inv[2] = {fastp, slowp};
        LLVMBasicBlockRef inb[2] = {cur, slow_end};
        LLVMAddIncoming(ptr, inv, inb, 2);
    }
    LLVMTypeRef elt = es == 1 ? g->i8 : es == 2 ? g->i16 : es == 4 ? g->i32 : g->i64;
    LLVMTypeRef velt = itype(g, (int)es * 8);
    LLVMTypeRef pvt = LLVMVectorType(LLVMPointerType(elt, 0), 32);
    if (nv == 1) {
        gen_shaped(g, in, isld, sp == SP_SHARED ? fastp : ptr, em, es, elt, velt, pvt, sbase, soff, ptr, et);
        if (done) { LLVMBuildBr(g->b, done); LLVMPositionBuilderAtEnd(g->b, done); }
        return;
    }
    for (int kk = 0; kk < nv; kk++) {
        LLVMValueRef ptrs;
        if (sbase) {
            LLVMValueRef off = kk ? LLVMBuildAdd(g->b, soff, splat(g, g->v32, (uint64_t)kk * es), "") : soff;
            ptrs = LLVMBuildBitCast(g->b, LLVMBuildGEP2(g->b, g->i8, sbase, &off, 1, ""), pvt, "");
        } else {
            LLVMValueRef pk = kk ? LLVMBuildAdd(g->b, ptr, splat(g, g->v64, (uint64_t)kk * es), "") : ptr;
            ptrs = LLVMBuildIntToPtr(g->b, pk, pvt, "");
        }
        LLVMTypeRef tys[2] = {velt, pvt};
        if (isld) {
            LLVMValueRef raw = intrin(g, "llvm.masked.gather", tys, 2,
                                      (LLVMValueRef[]){ptrs, ci(g->i32, es), em, LLVMGetUndef(velt)}, 4);
            SET(g, in->v[kk], ext_elem(g, raw, et), em);
        } else {
            LLVMValueRef val = TR(g, V(g, in->v[kk]), (int)es * 8);
            intrin(g, "llvm.masked.scatter", tys, 2, (LLVMValueRef[]){val, ptrs, ci(g->i32, es), em}, 4);
        }
    }
    if (done) { LLVMBuildBr(g->b, done); LLVMPositionBuilderAtEnd(g->b, done); }
}

static void gen_atom(G *g, int idx, const ptx_ins *in, LLVMValueRef em) {
    LLVMValueRef a = LLVMBuildAdd(g->b, V(g, in->a), splat(g, g->v64, (uint64_t)in->imm), "");
    store_vec(g, g->sc_addr, 0, a);
    store_vec(g, g->sc_b, 0, V(g, in->b));
    store_vec(g, g->sc_c, 0, in->c >= 0 ? V(g, in->c) : splat(g, g->v64, 0));
    LLVMTypeRef pi = LLVMPointerType(g->i64, 0);
    LLVMTypeRef ps[7] = {LLVMTypeOf(g->J), g->i32, pi, pi, pi, g->i32, pi};
    LLVMValueRef rc = helper(g, PTX_JIT_SYM_ATOM, g->i32, ps, 7,
                             (LLVMValueRef[]){g->J, ci(g->i32, (uint64_t)idx), g->sc_addr, g->sc_b, g->sc_c, mask_bits(g, em),
                                              g->sc_vals});
    fail_call_check(g, rc);
    if (in->op == OP_ATOM) SET(g, in->d, load_vec(g, g->sc_vals, 0), em);
}

/* An instruction generated as a call of ptx_jit_alu: the interpreter's own lane function on each
 * executing lane (operands a, b, c, e in scratch; d and setp's d2 back). */
static void gen_alu(G *g, int idx, const ptx_ins *in, LLVMValueRef em) {
    LLVMValueRef zero = splat(g, g->v64, 0);
    store_vec(g, g->sc_addr, 0, in->a >= 0 ? V(g, in->a) : zero);
    store_vec(g, g->sc_b, 0, in->b >= 0 ? V(g, in->b) : zero);
    store_vec(g, g->sc_c, 0, in->c >= 0 ? V(g, in->c) : zero);
    store_vec(g, g->sc_addr, 1, in->e >= 0 ? V(g, in->e) : zero);
    LLVMValueRef e = LLVMBuildGEP2(g->b, g->i64, g->sc_addr, (LLVMValueRef[]){ci(g->i32, 32)}, 1, "");
    LLVMTypeRef pi = LLVMPointerType(g->i64, 0);
    LLVMTypeRef ps[8] = {LLVMTypeOf(g->J), g->i32, pi, pi, pi, pi, g->i32, pi};
    helper(g, PTX_JIT_SYM_ALU, LLVMVoidTypeInContext(g->cx), ps, 8,
           (LLVMValueRef[]){g->J, ci(g->i32, (uint64_t)idx), g->sc_addr, g->sc_b, g->sc_c, e, mask_bits(g, em), g->sc_vals});
    SET(g, in->d, load_vec(g, g->sc_vals, 0), em);
    if (in->op == OP_SETP && in->d2 >= 0) SET(g, in->d2, load_vec(g, g->sc_vals, 1), em);
}

/* cp.async: copied at once by ptx_jit_cpasync (ptx_mma_cp_async, as the interpreter). */
static void gen_cpasync(G *g, int idx, const ptx_ins *in, LLVMValueRef em) {
    store_vec(g, g->sc_addr, 0, V(g, in->a));
    store_vec(g, g->sc_b, 0, V(g, in->b));
    store_vec(g, g->sc_c, 0, in->c >= 0 ? V(g, in->c) : splat(g, g->v64, 0));
    LLVMTypeRef pi = LLVMPointerType(g->i64, 0);
    LLVMTypeRef ps[6] = {LLVMTypeOf(g->J), g->i32, pi, pi, pi, g->i32};
    fail_call_check(g, helper(g, PTX_JIT_SYM_CPASYNC, g->i32, ps, 6,
                              (LLVMValueRef[]){g->J, ci(g->i32, (uint64_t)idx), g->sc_addr, g->sc_b, g->sc_c, mask_bits(g, em)}));
}

/* cvt.{rna,rn,rz}{.relu}.tf32.f32 as the interpreter's OP_CVT_TF32: the f32 rounded to 10 mantissa bits (the low
 * 13 bits become 0), NaN -> 0x7fffffff, infinities kept; .relu: negative -> 0 (NaN stays NaN). */
static LLVMValueRef gen_cvt_tf32(G *g, const ptx_ins *in) {
    LLVMValueRef u = TR(g, V(g, in->a), 32);
#define K32(v) splat(g, g->v32, (v))
    LLVMValueRef infnan = LLVMBuildICmp(g->b, LLVMIntEQ, LLVMBuildAnd(g->b, u, K32(0x7f800000u), ""), K32(0x7f800000u), "");
    LLVMValueRef isnan = LLVMBuildICmp(g->b, LLVMIntNE, LLVMBuildAnd(g->b, u, K32(0x7fffffu), ""), K32(0), "");
    LLVMValueRef special = LLVMBuildSelect(g->b, isnan, K32(0x7fffffffu), u, "");
    LLVMValueRef low = LLVMBuildAnd(g->b, u, K32(0x1fffu), "");
    LLVMValueRef o = LLVMBuildAnd(g->b, u, K32(~0x1fffu), "");
    LLVMValueRef up = NULL;
    if (in->rm == RM_RN) {
        LLVMValueRef odd = LLVMBuildICmp(g->b, LLVMIntNE, LLVMBuildAnd(g->b, o, K32(0x2000u), ""), K32(0), "");
        LLVMValueRef tie = LLVMBuildICmp(g->b, LLVMIntEQ, low, K32(0x1000u), "");
        up = LLVMBuildOr(g->b, LLVMBuildICmp(g->b, LLVMIntUGT, low, K32(0x1000u), ""), LLVMBuildAnd(g->b, tie, odd, ""), "");
    } else if (in->rm != RM_RZ) { /* rna: ties away */
        up = LLVMBuildICmp(g->b, LLVMIntUGE, low, K32(0x1000u), "");
    }
    if (up) o = LLVMBuildAdd(g->b, o, LLVMBuildSelect(g->b, up, K32(0x2000u), K32(0), ""), "");
    o = LLVMBuildSelect(g->b, infnan, special, o, "");
    if (in->flags & IF_RELU) {
        LLVMValueRef neg = LLVMBuildICmp(g->b, LLVMIntNE, LLVMBuildAnd(g->b, o, K32(0x80000000u), ""), K32(0), "");
        LLVMValueRef nan = LLVMBuildICmp(g->b, LLVMIntUGT, LLVMBuildAnd(g->b, o, K32(0x7fffffffu), ""), K32(0x7f800000u), "");
        o = LLVMBuildSelect(g->b, neg, LLVMBuildSelect(g->b, nan, K32(0x7fffffffu), K32(0), ""), o, "");
    }
#undef K32
    return ZX(g, o);
}

/* tex / tld4: the operand vectors (ptx_jit_tex_ops) into scratch, ptx_jit_tex samples lane by lane. */
static void gen_tex(G *g, int idx, const ptx_ins *in, LLVMValueRef em) {
    int sl[16];
    const int n = ptx_jit_tex_ops(in, g->k->lists, g->k->nlists, sl);
    for (int j = 0; j < n; j++) store_vec(g, g->sc_ops, j, sl[j] >= 0 ? V(g, sl[j]) : splat(g, g->v64, 0));
    LLVMTypeRef pi = LLVMPointerType(g->i64, 0);
    LLVMTypeRef ps[5] = {LLVMTypeOf(g->J), g->i32, pi, g->i32, pi};
    fail_call_check(g, helper(g, PTX_JIT_SYM_TEX, g->i32, ps, 5,
                              (LLVMValueRef[]){g->J, ci(g->i32, (uint64_t)idx), g->sc_ops, mask_bits(g, em), g->sc_vals}));
    for (int k = 0; k < 4; k++) if (in->v[k] >= 0) SET(g, in->v[k], load_vec(g, g->sc_vals, k), em);
}

/* ------------------------------------------------------------------ one instruction */
static LLVMValueRef intbin(G *g, int op, int t, LLVMValueRef a, LLVMValueRef b) {
    int bits = intbin_bits(t);
    LLVMValueRef x = TR(g, a, bits), y = TR(g, b, bits), r;
    switch (op) {
    case OP_ADD: r = LLVMBuildAdd(g->b, x, y, ""); break;
    case OP_SUB: r = LLVMBuildSub(g->b, x, y, ""); break;
    case OP_MUL_LO: r = LLVMBuildMul(g->b, x, y, ""); break;
    case OP_AND: r = LLVMBuildAnd(g->b, x, y, ""); break;
    case OP_OR: r = LLVMBuildOr(g->b, x, y, ""); break;
    default: r = LLVMBuildXor(g->b, x, y, ""); break;
    }
    return ZX(g, r);
}

static LLVMValueRef fcmp_of(G *g, int op, LLVMValueRef x, LLVMValueRef y) {
    static const LLVMRealPredicate P[] = {
        [CMP_EQ] = LLVMRealOEQ, [CMP_NE] = LLVMRealONE, [CMP_LT] = LLVMRealOLT, [CMP_LE] = LLVMRealOLE,
        [CMP_GT] = LLVMRealOGT, [CMP_GE] = LLVMRealOGE, [CMP_LO] = LLVMRealOLT, [CMP_LS] = LLVMRealOLE,
        [CMP_HI] = LLVMRealOGT, [CMP_HS] = LLVMRealOGE, [CMP_EQU] = LLVMRealUEQ, [CMP_NEU] = LLVMRealUNE,
        [CMP_LTU] = LLVMRealULT, [CMP_LEU] = LLVMRealULE, [CMP_GTU] = LLVMRealUGT, [CMP_GEU] = LLVMRealUGE,
        [CMP_NUM] = LLVMRealORD, [CMP_NAN] = LLVMRealUNO};
    return LLVMBuildFCmp(g->b, P[op], x, y, "");
}
static LLVMValueRef icmp_of(G *g, int op, int sgn, LLVMValueRef x, LLVMValueRef y) {
    LLVMIntPredicate p;
    switch (op) {
    case CMP_EQ: p = LLVMIntEQ; break;
    case CMP_NE: p = LLVMIntNE; break;
    case CMP_LT: p = sgn ? LLVMIntSLT : LLVMIntULT; break;
    case CMP_LE: p = sgn ? LLVMIntSLE : LLVMIntULE; break;
    case CMP_GT: p = sgn ? LLVMIntSGT : LLVMIntUGT; break;
    case CMP_GE: p = sgn ? LLVMIntSGE : LLVMIntUGE; break;
    case CMP_LO: p = LLVMIntULT; break;
    case CMP_LS: p = LLVMIntULE; break;
    case CMP_HI: p = LLVMIntUGT; break;
    case CMP_HS: p = LLVMIntUGE; break;
    default: return splat(g, g->v1, 0);
    }
    return LLVMBuildICmp(g->b, p, x, y, "");
}

/* Signed/unsigned integer division as int_div() does it (no traps: divisor 0 / -1 selected away). */
static LLVMValueRef gen_div(G *g, int t, LLVMValueRef a, LLVMValueRef b, int rem) {
    int bits = bits_of(t);
    LLVMTypeRef vt = itype(g, bits);
    LLVMValueRef x = TR(g, a, bits), y = TR(g, b, bits);
    LLVMValueRef zero = LLVMConstNull(vt), ones = LLVMConstAllOnes(vt), one = splat(g, vt, 1);
    LLVMValueRef y0 = LLVMBuildICmp(g->b, LLVMIntEQ, y, zero, "");
    if (is_signed_t(t)) {
        LLVMValueRef ym1 = LLVMBuildICmp(g->b, LLVMIntEQ, y, ones, "");
        LLVMValueRef ys = LLVMBuildSelect(g->b, LLVMBuildOr(g->b, y0, ym1, ""), one, y, "");
        LLVMValueRef q = rem ? LLVMBuildSRem(g->b, x, ys, "") : LLVMBuildSDiv(g->b, x, ys, "");
        LLVMValueRef r0 = rem ? x : ones, rm1 = rem ? zero : LLVMBuildSub(g->b, zero, x, "");
        return ZX(g, LLVMBuildSelect(g->b, y0, r0, LLVMBuildSelect(g->b, ym1, rm1, q, ""), ""));
    }
    LLVMValueRef ys = LLVMBuildSelect(g->b, y0, one, y, "");
    LLVMValueRef q = rem ? LLVMBuildURem(g->b, x, ys, "") : LLVMBuildUDiv(g->b, x, ys, "");
    return ZX(g, LLVMBuildSelect(g->b, y0, rem ? x : ones, q, ""));
}

static LLVMValueRef round_int(G *g, LLVMValueRef f, int rm) {
    LLVMTypeRef ft = LLVMTypeOf(f);
    const char *n = rm == RM_RMI ? "llvm.floor" : rm == RM_RPI ? "llvm.ceil" : rm == RM_RZI ? "llvm.trunc" : "llvm.roundeven";
    return intrin(g, n, &ft, 1, &f, 1);
}

/* ------------------------------------------------------------------ warp-synchronous instructions */
static LLVMValueRef lane_ids(G *g) {
    LLVMValueRef e[32];
    for (int i = 0; i < 32; i++) e[i] = ci(g->i32, (uint64_t)i);
    return LLVMConstVector(e, 32);
}
static LLVMValueRef mask_vec(G *g, LLVMValueRef bits) { return LLVMBuildBitCast(g->b, bits, g->v1, ""); }
static LLVMValueRef low32(G *g, int s) { return TR(g, V(g, s), 32); }

/* Lane l of the result = v[idx[l]] (idx in 0..31): constant indices fold into one shufflevector. */
static LLVMValueRef permute(G *g, LLVMValueRef v, LLVMValueRef idx) {
    LLVMValueRef r = LLVMGetUndef(LLVMTypeOf(v));
    for (int l = 0; l < 32; l++) {
        LLVMValueRef x = LLVMBuildExtractElement(g->b, v, LLVMBuildExtractElement(g->b, idx, ci(g->i32, (uint64_t)l), ""), "");
        r = LLVMBuildInsertElement(g->b, r, x, ci(g->i32, (uint64_t)l), "");
    }
    return r;
}

/* The interpreter's redux over the lanes of mask gbits (i32): op on vals (v32); 0 for an empty mask. */
static LLVMValueRef redux_over(G *g, int op, int sg, LLVMValueRef vals, LLVMValueRef gbits) {
    const char *fn;
    uint64_t id;
    switch (op) {
    case AT_ADD: fn = "llvm.vector.reduce.add"; id = 0; break;
    case AT_MIN: fn = sg ? "llvm.vector.reduce.smin" : "llvm.vector.reduce.umin"; id = sg ? 0x7fffffffu : 0xffffffffu; break;
    case AT_MAX: fn = sg ? "llvm.vector.reduce.smax" : "llvm.vector.reduce.umax"; id = sg ? 0x80000000u : 0; break;
    case AT_AND: fn = "llvm.vector.reduce.and"; id = 0xffffffffu; break;
    case AT_OR: fn = "llvm.vector.reduce.or"; id = 0; break;
    default: fn = "llvm.vector.reduce.xor"; id = 0; break;
    }
    LLVMValueRef x = LLVMBuildSelect(g->b, mask_vec(g, gbits), vals, splat(g, g->v32, id), "");
    LLVMValueRef r = intrin(g, fn, &g->v32, 1, &x, 1);
    return LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, gbits, ci(g->i32, 0), ""), ci(g->i32, 0), r, "");
}

/* shfl, vote, activemask, match, redux: the interpreter's (ptx_exec.c) expressions over the 32 lanes. Each
 * lane computes over its own member mask (slot e) & the executing lanes; sources are read from every lane
 * (frozen: a lane that never wrote the register holds LLVM's undef). A source lane outside the member mask
 * or not executing is undefined in CUDA; there the JIT's bits can differ from the interpreter's (a register
 * a lane never wrote, or one dead where the lane waits, is not kept). */
static void gen_warp(G *g, const ptx_ins *in, LLVMValueRef em) {
    LLVMBuilderRef b = g->b;
    const LLVMValueRef emb = mask_bits(g, em), lane = lane_ids(g);
    const int ie = in->wsync ? in->e : -1;
    /* per lane: its member mask & the executing lanes */
    LLVMValueRef gvec = splatv(g, emb, g->v32);
    if (ie >= 0) gvec = LLVMBuildAnd(b, low32(g, ie), gvec, "");
    LLVMValueRef r = NULL;
    switch (in->op) {
    case OP_SHFL: {
        LLVMValueRef vals = LLVMBuildFreeze(b, low32(g, in->a), "");
        LLVMValueRef bv = LLVMBuildAnd(b, low32(g, in->b), splat(g, g->v32, 31), ""), cv = low32(g, in->c);
        LLVMValueRef clampv = LLVMBuildAnd(b, cv, splat(g, g->v32, 31), "");
        LLVMValueRef seg = LLVMBuildAnd(b, LLVMBuildLShr(b, cv, splat(g, g->v32, 8), ""), splat(g, g->v32, 31), "");
        LLVMValueRef nseg = LLVMBuildNot(b, seg, "");
        LLVMValueRef maxl = LLVMBuildOr(b, LLVMBuildAnd(b, lane, seg, ""), LLVMBuildAnd(b, clampv, nseg, ""), "");
        LLVMValueRef j, pval;
        switch (in->sub) {
        case SH_UP: j = LLVMBuildSub(b, lane, bv, ""); pval = LLVMBuildICmp(b, LLVMIntSGE, j, maxl, ""); break;
        case SH_DOWN: j = LLVMBuildAdd(b, lane, bv, ""); pval = LLVMBuildICmp(b, LLVMIntSLE, j, maxl, ""); break;
        case SH_BFLY: j = LLVMBuildXor(b, lane, bv, ""); pval = LLVMBuildICmp(b, LLVMIntSLE, j, maxl, ""); break;
        default:
            j = LLVMBuildOr(b, LLVMBuildAnd(b, lane, seg, ""), LLVMBuildAnd(b, bv, nseg, ""), "");
            pval = LLVMBuildICmp(b, LLVMIntSLE, j, maxl, "");
            break;
        }
        j = LLVMBuildAnd(b, LLVMBuildSelect(b, pval, j, lane, ""), splat(g, g->v32, 31), "");
        r = ZX(g, permute(g, vals, j));
        if (in->d2 >= 0) SET(g, in->d2, ZX(g, pval), em);
        break;
    }
    case OP_VOTE: {
        LLVMValueRef p = bit1(g, V(g, in->a));
        if (in->flags & IF_NEG_C) p = LLVMBuildNot(b, p, "");
        LLVMValueRef ball = splatv(g, mask_bits(g, LLVMBuildAnd(b, p, em, "")), g->v32);
        LLVMValueRef bb = LLVMBuildAnd(b, ball, gvec, "");
        LLVMValueRef all = LLVMBuildICmp(b, LLVMIntEQ, bb, gvec, ""), none = LLVMBuildICmp(b, LLVMIntEQ, bb, splat(g, g->v32, 0), "");
        switch (in->sub) {
        case VO_ALL: r = ZX(g, all); break;
        case VO_ANY: r = ZX(g, LLVMBuildNot(b, none, "")); break;
        case VO_UNI: r = ZX(g, LLVMBuildOr(b, none, all, "")); break;
        default: r = ZX(g, bb); break;
        }
        break;
    }
    case OP_ACTIVEMASK: /* the running group, whatever the guard */
        r = ZX(g, splatv(g, mask_bits(g, LLVMBuildLoad2(b, g->v1, g->active, "")), g->v32));
        break;
    case OP_MATCH: {
        LLVMValueRef vals = LLVMBuildFreeze(b, zextb(g, V(g, in->a), bits_of(in->t)), ""), same = splat(g, g->v32, 0);
        for (int l = 0; l < 32; l++) {
            LLVMValueRef eq = LLVMBuildICmp(b, LLVMIntEQ, vals, splatv(g, LLVMBuildExtractElement(b, vals, ci(g->i32, (uint64_t)l), ""), g->v64), "");
            same = LLVMBuildOr(b, same, LLVMBuildSelect(b, eq, splat(g, g->v32, 1ull << l), splat(g, g->v32, 0), ""), "");
        }
        same = LLVMBuildAnd(b, same, gvec, "");
        LLVMValueRef alleq = LLVMBuildICmp(b, LLVMIntEQ, same, gvec, "");
        r = ZX(g, in->sub ? LLVMBuildSelect(b, alleq, gvec, splat(g, g->v32, 0), "") : same);
        if (in->d2 >= 0) SET(g, in->d2, ZX(g, alleq), em);
        break;
    }
    default: { /* OP_REDUX: one reduction when every executing lane names the same mask, else one per lane */
        const int op = in->sub, sg = is_signed_t(in->t);
        LLVMValueRef vals = LLVMBuildFreeze(b, low32(g, in->a), "");
        LLVMValueRef gm = LLVMBuildSelect(b, em, gvec, splat(g, g->v32, 0), "");
        LLVMValueRef g0 = intrin(g, "llvm.vector.reduce.or", &g->v32, 1, &gm, 1);
        LLVMValueRef differ = LLVMBuildAnd(b, em, LLVMBuildICmp(b, LLVMIntNE, gm, splatv(g, g0, g->v32), ""), "");
        LLVMBasicBlockRef uni = LLVMAppendBasicBlockInContext(g->cx, g->fn, "redux_uni");
        LLVMBasicBlockRef each = LLVMAppendBasicBlockInContext(g->cx, g->fn, "redux_each");
        LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(g->cx, g->fn, "redux");
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, mask_bits(g, differ), ci(g->i32, 0), ""), uni, each);
        LLVMPositionBuilderAtEnd(b, uni);
        LLVMValueRef ru = splatv(g, redux_over(g, op, sg, vals, g0), g->v32);
        LLVMBuildBr(b, join);
        LLVMPositionBuilderAtEnd(b, each);
        LLVMValueRef re = LLVMGetUndef(g->v32);
        for (int l = 0; l < 32; l++) {
            LLVMValueRef gl = LLVMBuildExtractElement(b, gvec, ci(g->i32, (uint64_t)l), "");
            re = LLVMBuildInsertElement(b, re, redux_over(g, op, sg, vals, gl), ci(g->i32, (uint64_t)l), "");
        }
        LLVMBasicBlockRef each_end = LLVMGetInsertBlock(b);
        LLVMBuildBr(b, join);
        LLVMPositionBuilderAtEnd(b, join);
        LLVMValueRef phi = LLVMBuildPhi(b, g->v32, "");
        LLVMAddIncoming(phi, (LLVMValueRef[]){ru, re}, (LLVMBasicBlockRef[]){uni, each_end}, 2);
        r = ZX(g, phi);
        break;
    }
    }
    SET(g, in->d, r, em);
}

/* At the start of a warp-synchronous instruction's block (it leads one): the interpreter's wait (run_warp).
 * The running group parks here (wsync lanes, pc = this instruction) while a lane of its member masks that
 * has not exited is neither running nor parked here, unless the dispatcher forced this pc; else the lanes
 * parked here join the running group. */
static void gen_wsync_wait(G *g, int idx, const ptx_ins *in) {
    LLVMBuilderRef b = g->b;
    LLVMValueRef act = LLVMBuildLoad2(b, g->v1, g->active, ""), cm = mask_bits(g, act);
    LLVMValueRef mk = intrin(g, "llvm.vector.reduce.or", &g->v32, 1,
                             (LLVMValueRef[]){LLVMBuildSelect(b, act, low32(g, in->e), splat(g, g->v32, 0), "")}, 1);
    LLVMValueRef pcv = LLVMBuildLoad2(b, g->v32, g->pcv, "");
    LLVMValueRef exited = mask_bits(g, LLVMBuildICmp(b, LLVMIntEQ, pcv, splat(g, g->v32, PTX_JIT_PC_EXITED), ""));
    LLVMValueRef need = LLVMBuildAnd(b, mk, LLVMBuildNot(b, exited, ""), "");
    LLVMValueRef ws = LLVMBuildLoad2(b, g->i32, g->wsync, "");
    LLVMValueRef here = LLVMBuildAnd(b, ws, mask_bits(g, LLVMBuildICmp(b, LLVMIntEQ, pcv, splat(g, g->v32, (uint64_t)idx), "")), "");
    LLVMValueRef missing = LLVMBuildAnd(b, need, LLVMBuildNot(b, LLVMBuildOr(b, cm, here, ""), ""), "");
    LLVMValueRef forced = LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildLoad2(b, g->i32, g->force_pc, ""), ci(g->i32, (uint64_t)idx), "");
    LLVMValueRef wait = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntNE, missing, ci(g->i32, 0), ""), LLVMBuildNot(b, forced, ""), "");
    LLVMBasicBlockRef park = LLVMAppendBasicBlockInContext(g->cx, g->fn, "wsync_park");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(g->cx, g->fn, "wsync_go");
    LLVMBuildCondBr(b, wait, park, go);
    LLVMPositionBuilderAtEnd(b, park);
    LLVMBuildStore(b, LLVMBuildSelect(b, act, splat(g, g->v32, (uint64_t)idx), pcv, ""), g->pcv);
    LLVMBuildStore(b, LLVMBuildOr(b, ws, cm, ""), g->wsync);
    LLVMBuildBr(b, g->disp);
    LLVMPositionBuilderAtEnd(b, go);
    LLVMBuildStore(b, ci(g->i32, (uint64_t)-1), g->force_pc);
    LLVMBuildStore(b, LLVMBuildAnd(b, ws, LLVMBuildNot(b, here, ""), ""), g->wsync);
    LLVMBuildStore(b, mask_vec(g, LLVMBuildOr(b, cm, here, "")), g->active);
}

static int gen_ins(G *g, int idx, const ptx_ins *in, LLVMValueRef em) {
    const int t = in->t;
    LLVMValueRef A = NULL, Bv = NULL, Cv = NULL, r = NULL;
    if (!is_inline(g, in)) {
        gen_alu(g, idx, in, em);
        return 0;
    }
    switch (in->op) {
    case OP_NOP:
        return 0;
    case OP_MOV:
        A = V(g, in->a);
        if (t == T_U32 || t == T_S32 || t == T_F32) r = zextb(g, A, 32);
        else if (t == T_U16 || t == T_S16 || t == T_F16 || t == T_BF16) r = zextb(g, A, 16);
        else if (t == T_PRED) r = LLVMBuildAnd(g->b, A, splat(g, g->v64, 1), "");
        else r = A;
        break;
    case OP_BAR_RED_READ: /* the block's reduction at the last release (gen_block_fn) */
        r = splatv(g, jf(g, JF_RED_OUT_COUNT + in->sub), g->v64);
        break;
    case OP_SREG: {
        /* as the interpreter: only these are read at run time (the others were filled at block start) */
        if (in->sub < SR_FIRST_DYNAMIC) return 0;
        LLVMTypeRef ps[2] = {LLVMTypeOf(g->J), g->i32};
        LLVMValueRef v = helper(g, PTX_JIT_SYM_SREG, g->i64, ps, 2, (LLVMValueRef[]){g->J, ci(g->i32, in->sub)});
        r = splatv(g, v, g->v64);
        break;
    }
    case OP_ADD: case OP_SUB: case OP_MUL_LO:
        A = V(g, in->a); Bv = V(g, in->b);
        if (t == T_F32 || t == T_F64) {
            int d = t == T_F64;
            LLVMValueRef x = d ? asf64(g, A) : asf32(g, A), y = d ? asf64(g, Bv) : asf32(g, Bv);
            LLVMValueRef f = in->op == OP_ADD ? LLVMBuildFAdd(g->b, x, y, "") : in->op == OP_SUB ? LLVMBuildFSub(g->b, x, y, "")
                                                                                                 : LLVMBuildFMul(g->b, x, y, "");
            r = d ? fromf64(g, f) : fromf32(g, f);
        } else {
            r = intbin(g, in->op, t, A, Bv);
        }
        break;
    case OP_AND: case OP_OR: case OP_XOR:
        A = V(g, in->a); Bv = V(g, in->b);
        if (t == T_PRED) {
            LLVMValueRef x = in->op == OP_AND ? LLVMBuildAnd(g->b, A, Bv, "") : in->op == OP_OR ? LLVMBuildOr(g->b, A, Bv, "")
                                                                                               : LLVMBuildXor(g->b, A, Bv, "");
            r = LLVMBuildAnd(g->b, x, splat(g, g->v64, 1), "");
        } else {
            r = intbin(g, in->op, t, A, Bv);
        }
        break;
    case OP_FMA: {
        A = V(g, in->a); Bv = V(g, in->b); Cv = V(g, in->c);
        int d = t == T_F64;
        LLVMTypeRef ft = d ? g->vf64 : g->vf32;
        LLVMValueRef args[3] = {d ? asf64(g, A) : asf32(g, A), d ? asf64(g, Bv) : asf32(g, Bv), d ? asf64(g, Cv) : asf32(g, Cv)};
        LLVMValueRef f = intrin(g, "llvm.fma", &ft, 1, args, 3);
        r = d ? fromf64(g, f) : fromf32(g, f);
        break;
    }
    case OP_DIV: case OP_REM:
        A = V(g, in->a); Bv = V(g, in->b);
        if (t == T_F32) r = fromf32(g, LLVMBuildFDiv(g->b, asf32(g, A), asf32(g, Bv), ""));
        else if (t == T_F64) r = fromf64(g, LLVMBuildFDiv(g->b, asf64(g, A), asf64(g, Bv), ""));
        else r = gen_div(g, t, A, Bv, in->op == OP_REM);
        break;
    case OP_MUL_HI: {
        A = V(g, in->a); Bv = V(g, in->b);
        int sg = is_signed_t(t), bits = bits_of(t);
        LLVMTypeRef wt = bits == 32 ? g->v64 : LLVMVectorType(g->i128, 32);
        LLVMValueRef x = TR(g, A, bits), y = TR(g, Bv, bits);
        x = sg ? LLVMBuildSExt(g->b, x, wt, "") : LLVMBuildZExt(g->b, x, wt, "");
        y = sg ? LLVMBuildSExt(g->b, y, wt, "") : LLVMBuildZExt(g->b, y, wt, "");
        LLVMValueRef p = LLVMBuildMul(g->b, x, y, "");
        if (bits == 32) p = sg ? LLVMBuildAShr(g->b, p, splat(g, g->v64, 32), "") : LLVMBuildLShr(g->b, p, splat(g, g->v64, 32), "");
        else {
            LLVMValueRef e[32];
            for (int i = 0; i < 32; i++) e[i] = ci(g->i128, 64);
            p = LLVMBuildLShr(g->b, p, LLVMConstVector(e, 32), "");
        }
        r = bits == 32 ? zextb(g, p, 32) : LLVMBuildTrunc(g->b, p, g->v64, "");
        break;
    }
    case OP_MUL_WIDE: {
        A = V(g, in->a); Bv = V(g, in->b);
        if (t == T_U16 || t == T_S16) {
            int sg = t == T_S16;
            LLVMValueRef x = TR(g, A, 16), y = TR(g, Bv, 16);
            x = sg ? LLVMBuildSExt(g->b, x, g->v32, "") : LLVMBuildZExt(g->b, x, g->v32, "");
            y = sg ? LLVMBuildSExt(g->b, y, g->v32, "") : LLVMBuildZExt(g->b, y, g->v32, "");
            r = ZX(g, LLVMBuildMul(g->b, x, y, ""));
        } else {
            int sg = t != T_U32;
            LLVMValueRef x = sg ? sextb(g, A, 32) : zextb(g, A, 32), y = sg ? sextb(g, Bv, 32) : zextb(g, Bv, 32);
            r = LLVMBuildMul(g->b, x, y, "");
        }
        break;
    }
    case OP_MAD_LO: {
        A = V(g, in->a); Bv = V(g, in->b); Cv = V(g, in->c);
        int bits = (t == T_U16 || t == T_S16) ? 16 : (t == T_U32 || t == T_S32) ? 32 : 64;
        r = ZX(g, LLVMBuildAdd(g->b, LLVMBuildMul(g->b, TR(g, A, bits), TR(g, Bv, bits), ""), TR(g, Cv, bits), ""));
        break;
    }
    case OP_MAD_WIDE: {
        A = V(g, in->a); Bv = V(g, in->b); Cv = V(g, in->c);
        int sg = t != T_U32;
        LLVMValueRef x = sg ? sextb(g, A, 32) : zextb(g, A, 32), y = sg ? sextb(g, Bv, 32) : zextb(g, Bv, 32);
        r = LLVMBuildAdd(g->b, LLVMBuildMul(g->b, x, y, ""), Cv, "");
        break;
    }
    case OP_MIN: case OP_MAX: {
        A = V(g, in->a); Bv = V(g, in->b);
        int mx = in->op == OP_MAX;
        if (t == T_F32) {
            /* the interpreter's min_max_num: a NaN gives the other input, two NaNs the canonical NaN, -0.0 < +0.0
             * (llvm.minnum/maxnum may return either zero) */
            LLVMValueRef fa = asf32(g, A), fb = asf32(g, Bv), ia = TR(g, A, 32), ib = TR(g, Bv, 32);
            LLVMValueRef na = LLVMBuildFCmp(g->b, LLVMRealUNO, fa, fa, ""), nb = LLVMBuildFCmp(g->b, LLVMRealUNO, fb, fb, "");
            LLVMValueRef a_wins = LLVMBuildFCmp(g->b, mx ? LLVMRealOGT : LLVMRealOLT, fa, fb, "");
            LLVMValueRef zeros = mx ? LLVMBuildAnd(g->b, ia, ib, "") : LLVMBuildOr(g->b, ia, ib, "");
            LLVMValueRef m = LLVMBuildSelect(g->b, a_wins, ia, ib, "");
            m = LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealOEQ, fa, fb, ""), zeros, m, "");
            m = LLVMBuildSelect(g->b, nb, ia, m, "");
            m = LLVMBuildSelect(g->b, na, ib, m, "");
            m = LLVMBuildSelect(g->b, LLVMBuildAnd(g->b, na, nb, ""), splat(g, g->v32, 0x7fffffffu), m, "");
            r = ZX(g, m);
            break;
        }
        int bits = bits_of(t), sg = is_signed_t(t);
        LLVMValueRef x = TR(g, A, bits), y = TR(g, Bv, bits);
        LLVMValueRef c = LLVMBuildICmp(g->b, mx ? (sg ? LLVMIntSGT : LLVMIntUGT) : (sg ? LLVMIntSLT : LLVMIntULT), x, y, "");
        LLVMValueRef m = LLVMBuildSelect(g->b, c, x, y, "");
        if (in->flags & IF_RELU) m = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, m, LLVMConstNull(LLVMTypeOf(m)), ""),
                                                     LLVMConstNull(LLVMTypeOf(m)), m, "");
        r = ZX(g, m);
        break;
    }
    case OP_ABS: case OP_NEG: {
        A = V(g, in->a);
        int bits = bits_of(t);
        if (is_float_t(t)) {
            uint64_t sb = 1ull << (bits - 1);
            LLVMValueRef v = zextb(g, A, bits);
            r = in->op == OP_ABS ? LLVMBuildAnd(g->b, v, splat(g, g->v64, ~sb), "") : LLVMBuildXor(g->b, v, splat(g, g->v64, sb), "");
        } else if (in->op == OP_NEG) {
            r = zextb(g, LLVMBuildSub(g->b, splat(g, g->v64, 0), zextb(g, A, bits), ""), bits);
        } else {
            LLVMValueRef v = sextb(g, A, bits);
            LLVMValueRef neg = LLVMBuildICmp(g->b, LLVMIntSLT, v, splat(g, g->v64, 0), "");
            r = zextb(g, LLVMBuildSelect(g->b, neg, LLVMBuildSub(g->b, splat(g, g->v64, 0), v, ""), v, ""), bits);
        }
        break;
    }
    case OP_NOT: case OP_CNOT: case OP_POPC: case OP_CLZ: case OP_BREV: {
        A = V(g, in->a);
        int bits = bits_of(t);
        LLVMValueRef x = zextb(g, A, bits);
        LLVMTypeRef vt = g->v64;
        if (in->op == OP_NOT) r = t == T_PRED ? LLVMBuildXor(g->b, LLVMBuildAnd(g->b, A, splat(g, g->v64, 1), ""), splat(g, g->v64, 1), "")
                                              : zextb(g, LLVMBuildNot(g->b, x, ""), bits);
        else if (in->op == OP_CNOT) r = ZX(g, LLVMBuildICmp(g->b, LLVMIntEQ, x, splat(g, g->v64, 0), ""));
        else if (in->op == OP_POPC) r = intrin(g, "llvm.ctpop", &vt, 1, &x, 1);
        else if (in->op == OP_CLZ)
            r = LLVMBuildSub(g->b, intrin(g, "llvm.ctlz", &vt, 1, (LLVMValueRef[]){x, ci(g->i1, 0)}, 2), splat(g, g->v64, (uint64_t)(64 - bits)), "");
        else {
            LLVMTypeRef bt = itype(g, bits);
            LLVMValueRef tv = TR(g, A, bits);
            r = ZX(g, intrin(g, "llvm.bitreverse", &bt, 1, &tv, 1));
        }
        break;
    }
    case OP_PACK: { /* elements v[0] (low) .. v[vec-1] into d */
        const int eb = in->esize * 8;
        LLVMValueRef acc = splat(g, g->v64, 0);
        for (int k = in->vec - 1; k >= 0; k--) {
            LLVMValueRef x = in->v[k] >= 0 ? zextb(g, V(g, in->v[k]), eb) : splat(g, g->v64, 0);
            acc = eb >= 64 ? x : LLVMBuildOr(g->b, LLVMBuildShl(g->b, acc, splat(g, g->v64, (uint64_t)eb), ""), x, "");
        }
        r = acc;
        break;
    }
    case OP_UNPACK: { /* a into v[0] (low) .. v[vec-1] */
        const int eb = in->esize * 8;
        LLVMValueRef x = V(g, in->a);
        for (int k = 0; k < in->vec; k++) {
            if (in->v[k] >= 0) SET(g, in->v[k], zextb(g, x, eb), em);
            x = eb >= 64 ? splat(g, g->v64, 0) : LLVMBuildLShr(g->b, x, splat(g, g->v64, (uint64_t)eb), "");
        }
        return 0;
    }
    case OP_RCP: case OP_SQRT: {
        /* unary_float, round to nearest: f32 is 1.0f / x or sqrtf(x) through fenc (a NaN becomes the canonical
         * 0x7fffffff), f64 the plain double result */
        A = V(g, in->a);
        if (t == T_F32) {
            LLVMValueRef x = asf32(g, A), f;
            if (in->op == OP_RCP) f = LLVMBuildFDiv(g->b, splatf(g, g->vf32, 1.0), x, "");
            else { LLVMTypeRef ft = g->vf32; f = intrin(g, "llvm.sqrt", &ft, 1, &x, 1); }
            LLVMValueRef nan = LLVMBuildFCmp(g->b, LLVMRealUNO, f, f, "");
            r = LLVMBuildSelect(g->b, nan, splat(g, g->v64, 0x7fffffffu), fromf32(g, f), "");
        } else {
            LLVMValueRef x = asf64(g, A), f;
            if (in->op == OP_RCP) f = LLVMBuildFDiv(g->b, splatf(g, g->vf64, 1.0), x, "");
            else { LLVMTypeRef ft = g->vf64; f = intrin(g, "llvm.sqrt", &ft, 1, &x, 1); }
            r = fromf64(g, f);
        }
        break;
    }
    case OP_SHL: case OP_SHR: {
        A = V(g, in->a); Bv = V(g, in->b);
        int bits = bits_of(t);
        LLVMTypeRef vt = itype(g, bits);
        LLVMValueRef s32 = TR(g, Bv, 32);
        LLVMValueRef big = LLVMBuildICmp(g->b, LLVMIntUGE, s32, splat(g, g->v32, (uint64_t)bits), "");
        LLVMValueRef sc = LLVMBuildSelect(g->b, big, splat(g, g->v32, (uint64_t)bits - 1), s32, "");
        LLVMValueRef s = bits == 32 ? sc : bits > 32 ? LLVMBuildZExt(g->b, sc, vt, "") : LLVMBuildTrunc(g->b, sc, vt, "");
        LLVMValueRef x = TR(g, A, bits);
        if (in->op == OP_SHL) {
            r = ZX(g, LLVMBuildSelect(g->b, big, LLVMConstNull(vt), LLVMBuildShl(g->b, x, s, ""), ""));
        } else if (is_signed_t(t)) {
            r = ZX(g, LLVMBuildAShr(g->b, x, s, ""));
        } else {
            r = ZX(g, LLVMBuildSelect(g->b, big, LLVMConstNull(vt), LLVMBuildLShr(g->b, x, s, ""), ""));
        }
        break;
    }
    case OP_SHF_L: case OP_SHF_R: {
        A = V(g, in->a); Bv = V(g, in->b); Cv = V(g, in->c);
        LLVMValueRef n = zextb(g, Cv, 32);
        if (in->flags & IF_SHIFT_CLAMP)
            n = LLVMBuildSelect(g->b, LLVMBuildICmp(g->b, LLVMIntUGT, n, splat(g, g->v64, 32), ""), splat(g, g->v64, 32), n, "");
        else n = LLVMBuildAnd(g->b, n, splat(g, g->v64, 31), "");
        LLVMValueRef v = LLVMBuildOr(g->b, LLVMBuildShl(g->b, zextb(g, Bv, 32), splat(g, g->v64, 32), ""), zextb(g, A, 32), "");
        if (in->op == OP_SHF_L) r = LLVMBuildLShr(g->b, LLVMBuildShl(g->b, v, n, ""), splat(g, g->v64, 32), "");
        else r = zextb(g, LLVMBuildLShr(g->b, v, n, ""), 32);
        break;
    }
    case OP_LOP3: {
        A = V(g, in->a); Bv = V(g, in->b); Cv = V(g, in->c);
        unsigned lut = (unsigned)in->imm;
        LLVMValueRef acc = splat(g, g->v64, 0);
        for (int i = 0; i < 8; i++) {
            if (!((lut >> i) & 1)) continue;
            LLVMValueRef x = (i & 4) ? A : LLVMBuildNot(g->b, A, ""), y = (i & 2) ? Bv : LLVMBuildNot(g->b, Bv, ""),
                         z = (i & 1) ? Cv : LLVMBuildNot(g->b, Cv, "");
            acc = LLVMBuildOr(g->b, acc, LLVMBuildAnd(g->b, x, LLVMBuildAnd(g->b, y, z, ""), ""), "");
        }
        r = zextb(g, acc, bits_of(t));
        break;
    }
    case OP_SETP: {
        A = V(g, in->a); Bv = V(g, in->b);
        int ct = in->t2 ? in->t2 : t;
        LLVMValueRef c;
        if (ct == T_F32) c = fcmp_of(g, in->sub, asf32(g, A), asf32(g, Bv));
        else if (ct == T_F64) c = fcmp_of(g, in->sub, asf64(g, A), asf64(g, Bv));
        else {
            int bits = bits_of(ct), sg = is_signed_t(ct);
            int eqop = in->sub == CMP_EQ || in->sub == CMP_NE;
            c = icmp_of(g, in->sub, sg && !eqop, TR(g, A, bits), TR(g, Bv, bits));
        }
        LLVMValueRef nc = LLVMBuildNot(g->b, c, "");
        if (in->bop) {
            LLVMValueRef cc = bit1(g, V(g, in->c));
            if (in->flags & IF_NEG_C) cc = LLVMBuildNot(g->b, cc, "");
            if (in->bop == 1) { c = LLVMBuildAnd(g->b, c, cc, ""); nc = LLVMBuildAnd(g->b, nc, cc, ""); }
            else if (in->bop == 2) { c = LLVMBuildOr(g->b, c, cc, ""); nc = LLVMBuildOr(g->b, nc, cc, ""); }
            else { c = LLVMBuildXor(g->b, c, cc, ""); nc = LLVMBuildXor(g->b, nc, cc, ""); }
        }
        SET(g, in->d, ZX(g, c), em);
        if (in->d2 >= 0) SET(g, in->d2, ZX(g, nc), em);
        return 0;
    }
    case OP_SELP: {
        A = V(g, in->a); Bv = V(g, in->b);
        LLVMValueRef cc = bit1(g, V(g, in->c));
        if (in->flags & IF_NEG_C) cc = LLVMBuildNot(g->b, cc, "");
        r = LLVMBuildSelect(g->b, cc, A, Bv, "");
        break;
    }
    case OP_CVT: {
        A = V(g, in->a);
        const int st = in->t2, dt = t;
        const int sf = is_float_t(st), df = is_float_t(dt);
        if (!sf && !df) {
            int sb = bits_of(st), db = bits_of(dt);
            LLVMValueRef v = is_signed_t(st) ? sextb(g, A, sb) : zextb(g, A, sb);
            r = is_signed_t(dt) ? sextb(g, v, db) : zextb(g, v, db);
        } else if (!sf) {
            int sb = bits_of(st);
            LLVMValueRef x = TR(g, A, sb);
            LLVMTypeRef ft = dt == T_F64 ? g->vf64 : g->vf32;
            LLVMValueRef f = is_signed_t(st) ? LLVMBuildSIToFP(g->b, x, ft, "") : LLVMBuildUIToFP(g->b, x, ft, "");
            r = dt == T_F64 ? fromf64(g, f) : fromf32(g, f);
        } else if (!df) {
            LLVMValueRef x = st == T_F64 ? asf64(g, A) : asf32(g, A);
            x = round_int(g, x, in->rm == RM_NONE ? RM_RZI : in->rm);
            int db = bits_of(dt);
            LLVMTypeRef it = itype(g, db), tys[2] = {it, LLVMTypeOf(x)};
            LLVMValueRef iv = intrin(g, is_signed_t(dt) ? "llvm.fptosi.sat" : "llvm.fptoui.sat", tys, 2, &x, 1);
            r = is_signed_t(dt) ? SX(g, iv) : ZX(g, iv);
        } else if (st == T_F32 && dt == T_F64) {
            r = fromf64(g, LLVMBuildFPExt(g->b, asf32(g, A), g->vf64, ""));
        } else if (st == T_F64 && dt == T_F32) {
            r = fromf32(g, LLVMBuildFPTrunc(g->b, asf64(g, A), g->vf32, ""));
        } else if (in->rm == RM_NONE) {
            r = st == T_F64 ? A : zextb(g, A, 32);
        } else {
            r = st == T_F64 ? fromf64(g, round_int(g, asf64(g, A), in->rm)) : fromf32(g, round_int(g, asf32(g, A), in->rm));
        }
        break;
    }
    case OP_CVTA_SHARED: case OP_CVTA_TO_SHARED: case OP_CVTA_LOCAL: case OP_CVTA_TO_LOCAL:
    case OP_CVTA_PARAM: case OP_CVTA_TO_PARAM: {
        A = V(g, in->a);
        uint64_t base = (in->op == OP_CVTA_SHARED || in->op == OP_CVTA_TO_SHARED) ? PTX_SHARED_BASE
                        : (in->op == OP_CVTA_LOCAL || in->op == OP_CVTA_TO_LOCAL) ? PTX_LOCAL_BASE : PTX_PARAM_BASE;
        int to = in->op == OP_CVTA_TO_SHARED || in->op == OP_CVTA_TO_LOCAL || in->op == OP_CVTA_TO_PARAM;
        r = to ? LLVMBuildSub(g->b, A, splat(g, g->v64, base), "") : LLVMBuildAdd(g->b, A, splat(g, g->v64, base), "");
        break;
    }
    case OP_LD: case OP_ST:
        gen_ldst(g, idx, in, em);
        return 0;
    case OP_ATOM: case OP_RED:
        gen_atom(g, idx, in, em);
        return 0;
    case OP_TEX: case OP_TLD4:
        gen_tex(g, idx, in, em);
        return 0;
    case OP_CP_ASYNC:
        gen_cpasync(g, idx, in, em);
        return 0;
    case OP_CVT_TF32:
        r = gen_cvt_tf32(g, in);
        break;
    case OP_SHFL: case OP_VOTE: case OP_ACTIVEMASK: case OP_MATCH: case OP_REDUX:
        gen_warp(g, in, em);
        return 0;
    default:
        BAD("%s", ptx_op_name(in->op));
    }
    SET(g, in->d, r, em);
    return 0;
}

/* ------------------------------------------------------------------ control flow */
/* Go to instruction `target` with the current active lanes: straight there while no lane is
 * parked elsewhere, else through the dispatcher. */
static void goto_pc(G *g, int target, LLVMValueRef act) {
    if (target >= g->k->ncode || !g->bb[target]) {
        /* past the end (cannot happen: the parser ends every kernel with exit) */
        LLVMBuildBr(g->b, g->disp);
        return;
    }
    LLVMValueRef parked = LLVMBuildLoad2(g->b, g->i32, g->parked, "");
    LLVMBasicBlockRef direct = LLVMAppendBasicBlockInContext(g->cx, g->fn, "direct");
    LLVMBasicBlockRef viad = LLVMAppendBasicBlockInContext(g->cx, g->fn, "viadisp");
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, parked, ci(g->i32, 0), ""), direct, viad);
    LLVMPositionBuilderAtEnd(g->b, direct);
    LLVMBuildStore(g->b, act, g->active);
    LLVMBuildBr(g->b, g->bb[target]);
    LLVMPositionBuilderAtEnd(g->b, viad);
    LLVMValueRef pcv = LLVMBuildLoad2(g->b, g->v32, g->pcv, "");
    LLVMBuildStore(g->b, LLVMBuildSelect(g->b, act, splat(g, g->v32, (uint64_t)target), pcv, ""), g->pcv);
    LLVMBuildBr(g->b, g->disp);
}

static void count_block(G *g, int leader) {
    LLVMValueRef c = LLVMBuildLoad2(g->b, g->i64, g->icnt, "");
    LLVMBuildStore(g->b, LLVMBuildAdd(g->b, c, ci(g->i64, (uint64_t)g->blen[leader]), ""), g->icnt);
}

/* The save area (the warp's R, 32 x 8 bytes per slot) is read only by this function: a narrow slot is
 * kept there as its 32 x 4 bytes, a wide one whole. A slot live at some barrier continuation lives
 * there all the time (the warp returns at every bar.sync and resumes after it: nothing to copy; in a
 * tiled loop these are the address registers and the accumulator, which the register allocator had
 * spilled anyway); the others are allocas (SSA values after -O2), copied there only when the warp
 * yields at a backward branch, and only those live at the start of some block (live_lead): every lane
 * resumes at a block's start (the yield's target, or where it is parked), so the rest are dead there, and
 * -O2 keeps no value alive to the back branch for them (an unrolled loop's temporaries were all spilled). Special registers are the runner's 64-bit words, read only on the warp's
 * first entry (mode 0). */
static LLVMValueRef slot_ptr(G *g, int s, LLVMTypeRef vt) {
    LLVMValueRef p = LLVMBuildGEP2(g->b, g->i64, g->R, (LLVMValueRef[]){ci(g->i32, (uint64_t)s * 32)}, 1, "");
    return LLVMBuildBitCast(g->b, p, LLVMPointerType(vt, 0), "");
}
/* a yield: the alloca slots to the save area and back */
static void save_slots(G *g) {
    for (int s = 0; s < g->k->nslots; s++) {
        if (g->is_const[s] || in_save_area(g, s) || !live_at_lead(g, s)) continue;
        LLVMTypeRef vt = g->narrow[s] ? g->v32 : g->v64;
        LLVMSetAlignment(LLVMBuildStore(g->b, slot_load(g, s), slot_ptr(g, s, vt)), 8);
    }
}
static void load_slots(G *g) {
    for (int s = 0; s < g->k->nslots; s++) {
        if (g->is_const[s] || in_save_area(g, s) || !live_at_lead(g, s)) continue;
        LLVMTypeRef vt = g->narrow[s] ? g->v32 : g->v64;
        LLVMValueRef v = LLVMBuildLoad2(g->b, vt, slot_ptr(g, s, vt), "");
        LLVMSetAlignment(v, 8);
        slot_store(g, s, v);
    }
}

static void add_icount(G *g) {
    LLVMValueRef p = LLVMBuildGEP2(g->b, g->i64, g->J, (LLVMValueRef[]){ci(g->i32, JF_ICOUNT)}, 1, "");
    LLVMValueRef c = LLVMBuildLoad2(g->b, g->i64, g->icnt, "");
    LLVMBuildStore(g->b, LLVMBuildAdd(g->b, LLVMBuildLoad2(g->b, g->i64, p, ""), c, ""), p);
}

/* A backward branch taken by every active lane: count it and, every PTX_JIT_YIELD_BACK_BRANCHES of them
 * while other warps exist, return 2 (yield) with the lanes' pc at `target` and every slot saved, so that a
 * spinning warp lets the others run. The builder continues in the path that does not yield. */
static void back_branch_yield(G *g, int target, LLVMValueRef act) {
    LLVMValueRef bc = LLVMBuildAdd(g->b, LLVMBuildLoad2(g->b, g->i32, g->backs, ""), ci(g->i32, 1), "");
    LLVMBuildStore(g->b, bc, g->backs);
    LLVMValueRef y = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntUGE, bc, ci(g->i32, PTX_JIT_YIELD_BACK_BRANCHES), ""),
                                  LLVMBuildICmp(g->b, LLVMIntUGT, jf(g, JF_NWARPS), ci(g->i64, 1), ""), "");
    LLVMBasicBlockRef yb = LLVMAppendBasicBlockInContext(g->cx, g->fn, "yield");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(g->cx, g->fn, "");
    LLVMBuildCondBr(g->b, y, yb, go);
    LLVMPositionBuilderAtEnd(g->b, yb);
    LLVMValueRef pcv = LLVMBuildLoad2(g->b, g->v32, g->pcv, "");
    pcv = LLVMBuildSelect(g->b, act, splat(g, g->v32, (uint64_t)target), pcv, "");
    LLVMValueRef pp = LLVMBuildBitCast(g->b, g->pcs, LLVMPointerType(g->v32, 0), "");
    LLVMSetAlignment(LLVMBuildStore(g->b, pcv, pp), 4);
    save_slots(g);
    add_icount(g);
    LLVMBuildRet(g->b, ci(g->i32, 2));
    LLVMPositionBuilderAtEnd(g->b, go);
}

/* bar.red's executing lanes add their predicate to the block's reductions (J->f[JF_RED_COUNT..OR], as the
 * interpreter's B->red_count/and/or), which the barrier's release publishes to OP_BAR_RED_READ. */
static void gen_bar_red(G *g, const ptx_ins *in, LLVMValueRef em) {
    LLVMBuilderRef b = g->b;
    LLVMValueRef v = bit1(g, V(g, in->c));
    if (in->flags & IF_NEG_C) v = LLVMBuildNot(b, v, "");
    LLVMValueRef yes = LLVMBuildZExt(b, mask_bits(g, LLVMBuildAnd(b, em, v, "")), g->i64, "");
    LLVMValueRef no = mask_bits(g, LLVMBuildAnd(b, em, LLVMBuildNot(b, v, ""), ""));
    LLVMValueRef p[3];
    for (int j = 0; j < 3; j++) p[j] = LLVMBuildGEP2(b, g->i64, g->J, (LLVMValueRef[]){ci(g->i32, (uint64_t)(JF_RED_COUNT + j))}, 1, "");
    LLVMValueRef cnt = intrin(g, "llvm.ctpop", &g->i64, 1, &yes, 1);
    LLVMBuildStore(b, LLVMBuildAdd(b, LLVMBuildLoad2(b, g->i64, p[0], ""), cnt, ""), p[0]);
    LLVMValueRef all = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntEQ, no, ci(g->i32, 0), ""), g->i64, "");
    LLVMBuildStore(b, LLVMBuildAnd(b, LLVMBuildLoad2(b, g->i64, p[1], ""), all, ""), p[1]);
    LLVMValueRef any = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntNE, yes, ci(g->i64, 0), ""), g->i64, "");
    LLVMBuildStore(b, LLVMBuildOr(b, LLVMBuildLoad2(b, g->i64, p[2], ""), any, ""), p[2]);
}

/* The warp's lanes stopped at the bar.sync (or bar.red) idx (pcv: their marks set) and none is left to run: when every lane
 * that has not exited waits at this barrier (a converged warp, the common case), return
 * PTX_JIT_BAR_AT + idx at once, and the call after the release resumes at idx + 1 without the dispatcher
 * (bar_resume's block); otherwise the dispatcher runs what else is left, or finishes. */
static void bar_arrive(G *g, int idx, LLVMValueRef pcv) {
    LLVMBuilderRef b = g->b;
    LLVMValueRef here = LLVMBuildICmp(b, LLVMIntEQ, pcv, splat(g, g->v32, (uint64_t)(idx + 1) | PTX_JIT_PC_ATBAR), "");
    LLVMValueRef gone = LLVMBuildICmp(b, LLVMIntEQ, pcv, splat(g, g->v32, PTX_JIT_PC_EXITED), "");
    LLVMValueRef all = LLVMBuildICmp(b, LLVMIntEQ, mask_bits(g, LLVMBuildOr(b, here, gone, "")), ci(g->i32, 0xffffffffu), "");
    LLVMBasicBlockRef ret = LLVMAppendBasicBlockInContext(g->cx, g->fn, "bar_converged");
    LLVMBuildCondBr(b, all, ret, g->disp);
    LLVMPositionBuilderAtEnd(b, ret);
    LLVMSetAlignment(LLVMBuildStore(b, pcv, LLVMBuildBitCast(b, g->pcs, LLVMPointerType(g->v32, 0), "")), 4);
    add_icount(g);
    LLVMBuildRet(b, ci(g->i32, (uint64_t)(PTX_JIT_BAR_AT + idx)));
}

/* Mode PTX_JIT_BAR_AT + idx (released from bar.sync idx, where bar_arrive returned): every lane that has not
 * exited runs on at idx + 1, with none parked. */
static void bar_resume(G *g, int idx) {
    LLVMBuilderRef b = g->b;
    LLVMValueRef pcv = LLVMBuildLoad2(b, g->v32, g->pcv, "");
    LLVMValueRef live = LLVMBuildICmp(b, LLVMIntNE, pcv, splat(g, g->v32, PTX_JIT_PC_EXITED), "");
    LLVMBuildStore(b, LLVMBuildSelect(b, live, splat(g, g->v32, (uint64_t)idx + 1), pcv, ""), g->pcv);
    LLVMBuildStore(b, live, g->active);
    LLVMBuildStore(b, ci(g->i32, 0), g->parked);
    LLVMBuildBr(b, g->bb[idx + 1]);
}

/* The exported function (ptx_jit.h): the block runner's rounds over the warps, each warp run by a call of the
 * warp function g->fn: a warp that stops at a barrier hands over to the next one inside the generated code,
 * and the barrier's release starts the next round there too. The warp function stays out of line (noinline):
 * inlined into this loop, the register allocation of the whole made cuda-samples' matrixMul kernel 1.5x slower
 * (benchmarks/RESULTS.md, branch jitbar), while a call costs a few ns per warp run. A round runs, in order,
 * every warp neither done nor waiting (mode: its state word); when no warp yielded and some wait at a barrier
 * (state -1 - r after a run that returned r), they are released (mode r) and the next round starts; a round
 * in which a warp yielded returns 2, so the runner checks the launch's error word between rounds, as this
 * function does at every release (a loop with a barrier in it never yields). */
static void gen_block_fn(G *g, const char *name) {
    LLVMBuilderRef b = g->b;
    LLVMTypeRef pi64 = LLVMPointerType(g->i64, 0), pi32 = LLVMPointerType(g->i32, 0);
    LLVMTypeRef ps[4] = {pi64, pi64, pi32, pi32};
    LLVMValueRef f = LLVMAddFunction(g->m, name, LLVMFunctionType(g->i32, ps, 4, 0));
    LLVMValueRef J = LLVMGetParam(f, 0), R = LLVMGetParam(f, 1), pcs = LLVMGetParam(f, 2), st = LLVMGetParam(f, 3);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->cx, f, "entry");
    LLVMBasicBlockRef round = LLVMAppendBasicBlockInContext(g->cx, f, "round");
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(g->cx, f, "warp");
    LLVMBasicBlockRef check = LLVMAppendBasicBlockInContext(g->cx, f, "state");
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(g->cx, f, "run");
    LLVMBasicBlockRef ran = LLVMAppendBasicBlockInContext(g->cx, f, "ran");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(g->cx, f, "next");
    LLVMBasicBlockRef end = LLVMAppendBasicBlockInContext(g->cx, f, "round_end");
    LLVMBasicBlockRef waits = LLVMAppendBasicBlockInContext(g->cx, f, "waits");
    LLVMBasicBlockRef release = LLVMAppendBasicBlockInContext(g->cx, f, "release");
    LLVMBasicBlockRef rel_next = LLVMAppendBasicBlockInContext(g->cx, f, "release_next");
    LLVMBasicBlockRef rel_one = LLVMAppendBasicBlockInContext(g->cx, f, "release_warp");
    LLVMBasicBlockRef stop = LLVMAppendBasicBlockInContext(g->cx, f, "stop");
    LLVMBasicBlockRef yielded = LLVMAppendBasicBlockInContext(g->cx, f, "yielded");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->cx, f, "done");
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(g->cx, f, "fail");
    LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef wa = LLVMBuildAlloca(b, g->i32, "w"), runa = LLVMBuildAlloca(b, g->i1, "any_yield");
    LLVMValueRef bara = LLVMBuildAlloca(b, g->i1, "any_wait");
    LLVMValueRef jp = LLVMBuildGEP2(b, g->i64, J, (LLVMValueRef[]){ci(g->i32, JF_NWARPS)}, 1, "");
    LLVMValueRef nw = LLVMBuildTrunc(b, LLVMBuildLoad2(b, g->i64, jp, ""), g->i32, "nwarps");
    LLVMValueRef curp = LLVMBuildGEP2(b, g->i64, J, (LLVMValueRef[]){ci(g->i32, JF_CUR_WARP)}, 1, "");
    LLVMBuildBr(b, round);
    LLVMPositionBuilderAtEnd(b, round);
    LLVMBuildStore(b, ci(g->i32, 0), wa);
    LLVMBuildStore(b, ci(g->i1, 0), runa);
    LLVMBuildStore(b, ci(g->i1, 0), bara);
    LLVMBuildBr(b, head);
    LLVMPositionBuilderAtEnd(b, head);
    LLVMValueRef w = LLVMBuildLoad2(b, g->i32, wa, "");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, w, nw, ""), check, end);
    LLVMPositionBuilderAtEnd(b, check);
    LLVMValueRef sp = LLVMBuildGEP2(b, g->i32, st, &w, 1, "");
    LLVMValueRef mode = LLVMBuildLoad2(b, g->i32, sp, "");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, mode, ci(g->i32, 0), ""), next, run);
    LLVMPositionBuilderAtEnd(b, run);
    LLVMBuildStore(b, LLVMBuildZExt(b, w, g->i64, ""), curp);
    LLVMValueRef w64 = LLVMBuildZExt(b, w, g->i64, "");
    LLVMValueRef Rw = LLVMBuildGEP2(b, g->i64, R, (LLVMValueRef[]){LLVMBuildMul(b, w64, ci(g->i64, (uint64_t)(g->k->nslots > 0 ? g->k->nslots : 1) * 32), "")}, 1, "");
    LLVMValueRef pw = LLVMBuildGEP2(b, g->i32, pcs, (LLVMValueRef[]){LLVMBuildMul(b, w64, ci(g->i64, 32), "")}, 1, "");
    LLVMTypeRef wps[5] = {pi64, pi64, pi32, g->i32, g->i32};
    LLVMValueRef r = LLVMBuildCall2(b, LLVMFunctionType(g->i32, wps, 5, 0), g->fn, (LLVMValueRef[]){J, Rw, pw, w, mode}, 5, "r");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, r, ci(g->i32, 0), ""), fail, ran);
    LLVMPositionBuilderAtEnd(b, ran);
    LLVMValueRef is_done = LLVMBuildICmp(b, LLVMIntEQ, r, ci(g->i32, 0), "");
    LLVMValueRef is_yield = LLVMBuildICmp(b, LLVMIntEQ, r, ci(g->i32, 2), "");
    LLVMValueRef wait_st = LLVMBuildSub(b, ci(g->i32, (uint64_t)-1), r, ""); /* ST_WAIT(r) */
    LLVMBuildStore(b, LLVMBuildSelect(b, is_done, ci(g->i32, (uint64_t)-1), LLVMBuildSelect(b, is_yield, r, wait_st, ""), ""), sp);
    LLVMBuildStore(b, LLVMBuildOr(b, LLVMBuildLoad2(b, g->i1, runa, ""), is_yield, ""), runa);
    LLVMValueRef is_wait = LLVMBuildNot(b, LLVMBuildOr(b, is_done, is_yield, ""), "");
    LLVMBuildStore(b, LLVMBuildOr(b, LLVMBuildLoad2(b, g->i1, bara, ""), is_wait, ""), bara);
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, next);
    LLVMBuildStore(b, LLVMBuildAdd(b, w, ci(g->i32, 1), ""), wa);
    LLVMBuildBr(b, head);
    LLVMPositionBuilderAtEnd(b, end);
    LLVMBuildCondBr(b, LLVMBuildLoad2(b, g->i1, runa, ""), yielded, waits);
    LLVMPositionBuilderAtEnd(b, waits);
    LLVMBasicBlockRef errchk = LLVMAppendBasicBlockInContext(g->cx, f, "error_word");
    LLVMBuildCondBr(b, LLVMBuildLoad2(b, g->i1, bara, ""), errchk, done);
    LLVMPositionBuilderAtEnd(b, errchk);
    LLVMValueRef ep = LLVMBuildGEP2(b, g->i64, J, (LLVMValueRef[]){ci(g->i32, JF_ERR)}, 1, "");
    LLVMValueRef err = LLVMBuildLoad2(b, g->i32, LLVMBuildIntToPtr(b, LLVMBuildLoad2(b, g->i64, ep, ""), pi32, ""), "");
    LLVMSetVolatile(err, 1);
    LLVMBuildStore(b, ci(g->i32, 0), wa);
    LLVMBasicBlockRef publish = LLVMAppendBasicBlockInContext(g->cx, f, "publish");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, err, ci(g->i32, 0), ""), publish, stop);
    /* bar.red's reductions of this barrier for OP_BAR_RED_READ, and new ones for the next (run_block in ptx_exec.c) */
    LLVMPositionBuilderAtEnd(b, publish);
    for (int j = 0; j < 3; j++) {
        LLVMValueRef acc = LLVMBuildGEP2(b, g->i64, J, (LLVMValueRef[]){ci(g->i32, (uint64_t)(JF_RED_COUNT + j))}, 1, "");
        LLVMValueRef out = LLVMBuildGEP2(b, g->i64, J, (LLVMValueRef[]){ci(g->i32, (uint64_t)(JF_RED_OUT_COUNT + j))}, 1, "");
        LLVMBuildStore(b, LLVMBuildLoad2(b, g->i64, acc, ""), out);
        LLVMBuildStore(b, ci(g->i64, j == 1), acc);
    }
    LLVMBuildBr(b, release);
    /* every warp not done waits at a barrier: release them */
    LLVMPositionBuilderAtEnd(b, release);
    LLVMValueRef rw = LLVMBuildLoad2(b, g->i32, wa, "");
    LLVMBasicBlockRef rel_chk = LLVMAppendBasicBlockInContext(g->cx, f, "release_state");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, rw, nw, ""), rel_chk, round);
    LLVMPositionBuilderAtEnd(b, rel_chk);
    LLVMValueRef rsp = LLVMBuildGEP2(b, g->i32, st, &rw, 1, "");
    LLVMValueRef rs = LLVMBuildLoad2(b, g->i32, rsp, "");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, rs, ci(g->i32, (uint64_t)-1), ""), rel_one, rel_next);
    LLVMPositionBuilderAtEnd(b, rel_one);
    LLVMBuildStore(b, LLVMBuildSub(b, ci(g->i32, (uint64_t)-1), rs, ""), rsp);
    LLVMBuildBr(b, rel_next);
    LLVMPositionBuilderAtEnd(b, rel_next);
    LLVMBuildStore(b, LLVMBuildAdd(b, rw, ci(g->i32, 1), ""), wa);
    LLVMBuildBr(b, release);
    LLVMPositionBuilderAtEnd(b, stop);
    LLVMBuildRet(b, ci(g->i32, (uint64_t)-1));
    LLVMPositionBuilderAtEnd(b, yielded);
    LLVMBuildRet(b, ci(g->i32, 2));
    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRet(b, ci(g->i32, 0));
    LLVMPositionBuilderAtEnd(b, fail);
    LLVMBuildRet(b, ci(g->i32, (uint64_t)-1));
}

void *ptx_jit_build_ir(const ptx_kernel *k, void *cxv, const char *name, char *why, size_t whylen) {
    G G0, *g = &G0;
    memset(g, 0, sizeof(*g));
    g->cx = (LLVMContextRef)cxv;
    g->k = k;
    g->why = why;
    g->whylen = whylen;
    why[0] = 0;
    const int n = k->ncode, ns = k->nslots > 0 ? k->nslots : 1;
    for (int i = 0; i < n; i++) {
        if (covered(g, &k->code[i])) {
            char tmp[200];
            snprintf(tmp, sizeof(tmp), "%s (instruction %d)", why, i); /* ptx_jit.c names its PTX line */
            snprintf(why, whylen, "%s", tmp);
            return NULL;
        }
        if (k->code[i].op == OP_BRA && (k->code[i].imm < 0 || k->code[i].imm >= n)) { snprintf(why, whylen, "branch target"); return NULL; }
    }
    g->nw = (ns + 63) / 64;
    g->slot = calloc((size_t)ns, sizeof(LLVMValueRef));
    g->is_const = calloc((size_t)ns, 1);
    g->narrow = calloc((size_t)ns, 1);
    g->cval = calloc((size_t)ns, sizeof(uint64_t));
    g->bb = calloc((size_t)n + 1, sizeof(LLVMBasicBlockRef));
    g->blen = calloc((size_t)n + 1, sizeof(int));
    g->live_save = calloc((size_t)g->nw, sizeof(uint64_t));
    g->live_lead = calloc((size_t)g->nw, sizeof(uint64_t));
    g->fact = calloc((size_t)ns, sizeof(addr_facts));
    g->sgroup = calloc((size_t)n + 1, sizeof(int));
    g->pf_site = calloc((size_t)n + 1, sizeof(int));
    g->grp = calloc((size_t)ns, sizeof(shared_group));
    g->lane_var = calloc((size_t)ns, 1);
    g->clone_lead = -1;
    g->copy_budget = PTX_JIT_FULL_OPT_INSTRUCTIONS - n;
    g->resume_bb = calloc((size_t)n + 1, sizeof(LLVMBasicBlockRef));
    uint8_t *leader = calloc((size_t)n + 1, 1);
    void *result = NULL;
    if (!g->slot || !g->is_const || !g->narrow || !g->cval || !g->bb || !g->blen || !g->live_save || !g->live_lead || !g->fact || !g->sgroup || !g->pf_site || !g->grp || !g->lane_var || !g->resume_bb || !leader) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    for (int c = 0; c < k->nconsts; c++) {
        int s = k->consts[c].slot;
        if (s >= 0 && s < ns) { g->is_const[s] = 1; g->cval[s] = k->consts[c].bits; }
    }
    /* a constant slot that is written is not a constant (never expected from the parser) */
    for (int i = 0; i < n; i++) {
        int d[8], nd = defs_of(&k->code[i], d);
        for (int j = 0; j < nd; j++) if (d[j] >= 0 && d[j] < ns && g->is_const[d[j]]) { snprintf(why, whylen, "write to a constant slot"); goto out; }
    }
    leader[0] = 1;
    for (int i = 0; i < n; i++) {
        const ptx_ins *in = &k->code[i];
        if (in->op == OP_BRA) leader[in->imm] = 1;
        if (in->op == OP_BRA || in->op == OP_EXIT || is_barrier(in)) leader[i + 1] = 1;
        if (in->wsync) { leader[i] = 1; g->has_wsync = 1; } /* parked lanes wait at a block start */
    }
    g->leader = leader;
    /* the first PTX_JIT_PREFETCH_SITES 1-element global (or generic) loads get a stride-prefetch site each */
    for (int i = 0, site = 0; i < n; i++) {
        const ptx_ins *in = &k->code[i];
        const int global = in->space == SP_GLOBAL || in->space == SP_GENERIC;
        g->pf_site[i] = in->op == OP_LD && in->vec == 1 && global && site < PTX_JIT_PREFETCH_SITES ? site++ : -1;
    }
    narrow_slots(g);
    lane_variance(g);
    if (liveness(g)) { snprintf(why, whylen, "out of memory"); goto out; }

    g->m = LLVMModuleCreateWithNameInContext(name, g->cx);
    g->b = LLVMCreateBuilderInContext(g->cx);
    g->i1 = LLVMInt1TypeInContext(g->cx);
    g->i8 = LLVMInt8TypeInContext(g->cx);
    g->i16 = LLVMInt16TypeInContext(g->cx);
    g->i32 = LLVMInt32TypeInContext(g->cx);
    g->i64 = LLVMInt64TypeInContext(g->cx);
    g->i128 = LLVMIntTypeInContext(g->cx, 128);
    g->f32 = LLVMFloatTypeInContext(g->cx);
    g->f64 = LLVMDoubleTypeInContext(g->cx);
    g->v1 = LLVMVectorType(g->i1, 32);
    g->v8 = LLVMVectorType(g->i8, 32);
    g->v16 = LLVMVectorType(g->i16, 32);
    g->v32 = LLVMVectorType(g->i32, 32);
    g->v64 = LLVMVectorType(g->i64, 32);
    g->vf32 = LLVMVectorType(g->f32, 32);
    g->vf64 = LLVMVectorType(g->f64, 32);
    LLVMTypeRef pi64 = LLVMPointerType(g->i64, 0), pi32 = LLVMPointerType(g->i32, 0);
    LLVMTypeRef ps[5] = {pi64, pi64, pi32, g->i32, g->i32};
    char wname[300];
    snprintf(wname, sizeof(wname), "%s.warp", name);
    g->fn = LLVMAddFunction(g->m, wname, LLVMFunctionType(g->i32, ps, 5, 0));
    LLVMSetLinkage(g->fn, LLVMInternalLinkage);
    LLVMAddAttributeAtIndex(g->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(g->cx, LLVMGetEnumAttributeKindForName("noinline", 8), 0)); /* gen_block_fn */
    g->J = LLVMGetParam(g->fn, 0);
    g->R = LLVMGetParam(g->fn, 1);
    g->pcs = LLVMGetParam(g->fn, 2);
    g->warp = LLVMGetParam(g->fn, 3);
    g->mode = LLVMGetParam(g->fn, 4);
    {
        unsigned kind = LLVMGetEnumAttributeKindForName("noalias", 7);
        LLVMAddAttributeAtIndex(g->fn, 2, LLVMCreateEnumAttribute(g->cx, kind, 0));
        LLVMAddAttributeAtIndex(g->fn, 3, LLVMCreateEnumAttribute(g->cx, kind, 0));
    }

    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->cx, g->fn, "entry");
    LLVMPositionBuilderAtEnd(g->b, entry);
    for (int s = 0; s < ns; s++) {
        LLVMTypeRef vt = g->narrow[s] ? g->v32 : g->v64;
        if (!g->is_const[s]) g->slot[s] = in_save_area(g, s) ? slot_ptr(g, s, vt) : LLVMBuildAlloca(g->b, vt, "");
    }
    g->pcv = LLVMBuildAlloca(g->b, g->v32, "pcv");
    g->active = LLVMBuildAlloca(g->b, g->v1, "active");
    g->parked = LLVMBuildAlloca(g->b, g->i32, "parked");
    g->icnt = LLVMBuildAlloca(g->b, g->i64, "icnt");
    g->backs = LLVMBuildAlloca(g->b, g->i32, "backs");
    g->wsync = LLVMBuildAlloca(g->b, g->i32, "wsync");
    g->force_pc = LLVMBuildAlloca(g->b, g->i32, "force_pc");
    LLVMBuildStore(g->b, ci(g->i32, 0), g->wsync);
    LLVMBuildStore(g->b, ci(g->i32, (uint64_t)-1), g->force_pc);
    LLVMTypeRef arr = LLVMArrayType(g->i64, 32 * 4);
    g->sc_addr = LLVMBuildBitCast(g->b, LLVMBuildAlloca(g->b, arr, ""), pi64, "");
    g->sc_vals = LLVMBuildBitCast(g->b, LLVMBuildAlloca(g->b, arr, ""), pi64, "");
    g->sc_b = LLVMBuildBitCast(g->b, LLVMBuildAlloca(g->b, arr, ""), pi64, "");
    g->sc_c = LLVMBuildBitCast(g->b, LLVMBuildAlloca(g->b, arr, ""), pi64, "");
    for (int i = 0; i < n; i++)
        if (k->code[i].op == OP_TEX || k->code[i].op == OP_TLD4) {
            g->sc_ops = LLVMBuildBitCast(g->b, LLVMBuildAlloca(g->b, LLVMArrayType(g->i64, 32 * 16), ""), pi64, "");
            break;
        }
    for (int i = 0; i < n; i++) {
        const ptx_ins *in = &k->code[i];
        if (!is_shared32(g, in) || in->vec != 1 || g->fact[in->a].valid) continue;
        addr_facts *f = &g->fact[in->a];
        LLVMValueRef w[7];
        for (int j = 0; j < 7; j++)
            w[j] = LLVMBuildGEP2(g->b, g->i32, LLVMBuildBitCast(g->b, g->R, pi32, ""),
                                 (LLVMValueRef[]){ci(g->i32, ((uint64_t)in->a * 32 + 16) * 2 + (uint64_t)j)}, 1, "");
        f->valid = w[0];
        for (int j = 0; j < 4; j++) f->red[j] = w[1 + j];
        f->regular = w[5];
        f->stride = w[6];
    }
    LLVMBuildStore(g->b, ci(g->i64, 0), g->icnt);
    LLVMBuildStore(g->b, ci(g->i32, 0), g->backs);
    {
        LLVMValueRef p = LLVMBuildBitCast(g->b, g->pcs, LLVMPointerType(g->v32, 0), "");
        LLVMValueRef l = LLVMBuildLoad2(g->b, g->v32, p, "");
        LLVMSetAlignment(l, 4);
        LLVMBuildStore(g->b, l, g->pcv);
    }
    for (int s = 0; s < ns; s++)
        if (!g->is_const[s] && !in_save_area(g, s)) slot_store(g, s, LLVMGetUndef(g->narrow[s] ? g->v32 : g->v64));
    LLVMBasicBlockRef ld_first = LLVMAppendBasicBlockInContext(g->cx, g->fn, "first");
    LLVMBasicBlockRef ld_bar = LLVMAppendBasicBlockInContext(g->cx, g->fn, "resume_bar");
    LLVMBasicBlockRef ld_all = LLVMAppendBasicBlockInContext(g->cx, g->fn, "resume_all");
    g->disp = LLVMAppendBasicBlockInContext(g->cx, g->fn, "dispatch");
    g->finish = LLVMAppendBasicBlockInContext(g->cx, g->fn, "finish");
    g->failbb = LLVMAppendBasicBlockInContext(g->cx, g->fn, "fail");
    LLVMValueRef sw = LLVMBuildSwitch(g->b, g->mode, ld_first, 2);
    LLVMAddCase(sw, ci(g->i32, 1), ld_bar);
    LLVMAddCase(sw, ci(g->i32, 2), ld_all);
    for (int i = 0; i + 1 < n; i++)
        if (is_barrier(&k->code[i])) {
            g->resume_bb[i] = LLVMAppendBasicBlockInContext(g->cx, g->fn, "resume_converged");
            LLVMAddCase(sw, ci(g->i32, (uint64_t)(PTX_JIT_BAR_AT + i)), g->resume_bb[i]);
        }
    /* first entry: special registers, which the runner wrote into the save area when the block started
     * (a resume finds the live ones among the saved slots) */
    LLVMPositionBuilderAtEnd(g->b, ld_first);
    for (int sp = 0; sp < k->nspecials; sp++) {
        int s = k->specials[sp].slot;
        if (s >= 0 && s < ns && !g->is_const[s]) {
            LLVMValueRef v = load_vec(g, g->R, s); /* (a slot in the save area: its narrow form replaces the words) */
            slot_store(g, s, g->narrow[s] ? LLVMBuildTrunc(g->b, v, g->v32, "") : v);
        }
    }
    for (int s = 0; s < ns; s++) /* the save area holds an earlier block's words (and the specials' upper halves) */
        if (g->fact[s].valid) fact_store(g, g->fact[s].valid, ci(g->i32, 0));
    LLVMBuildBr(g->b, g->disp);
    /* released from a barrier: its lanes run on (what the continuation reads is in the save area) */
    LLVMPositionBuilderAtEnd(g->b, ld_bar);
    {
        LLVMValueRef pcv = LLVMBuildLoad2(g->b, g->v32, g->pcv, "");
        LLVMValueRef live = LLVMBuildICmp(g->b, LLVMIntNE, pcv, splat(g, g->v32, PTX_JIT_PC_EXITED), "");
        LLVMValueRef run = LLVMBuildAnd(g->b, pcv, splat(g, g->v32, ~(uint64_t)PTX_JIT_PC_ATBAR & 0xffffffffu), "");
        LLVMBuildStore(g->b, LLVMBuildSelect(g->b, live, run, pcv, ""), g->pcv);
    }
    LLVMBuildBr(g->b, g->disp);
    LLVMPositionBuilderAtEnd(g->b, ld_all);
    load_slots(g);
    LLVMBuildBr(g->b, g->disp);

    /* blocks */
    for (int i = 0; i < n; i++)
        if (leader[i]) g->bb[i] = LLVMAppendBasicBlockInContext(g->cx, g->fn, "");
    for (int i = 0, cur = 0; i < n; i++) {
        if (leader[i]) cur = i;
        g->blen[cur]++;
    }
    for (int i = 0; i < n; i++)
        if (g->resume_bb[i]) {
            LLVMPositionBuilderAtEnd(g->b, g->resume_bb[i]);
            bar_resume(g, i);
        }

    /* dispatcher: run the lanes with the lowest PC; with warp-sync instructions, the lowest PC of the lanes
     * not parked at one, and when no such lane can run, the lowest parked group, forced (resched in
     * ptx_exec.c) */
    LLVMPositionBuilderAtEnd(g->b, g->disp);
    {
        LLVMValueRef pcv = LLVMBuildLoad2(g->b, g->v32, g->pcv, "");
        LLVMValueRef runnable = LLVMBuildICmp(g->b, LLVMIntULT, pcv, splat(g, g->v32, PTX_JIT_PC_ATBAR), "");
        LLVMValueRef cand = pcv;
        if (g->has_wsync) {
            LLVMValueRef ws = LLVMBuildLoad2(g->b, g->i32, g->wsync, ""), wsv = mask_vec(g, ws);
            LLVMValueRef none = splat(g, g->v32, 0xffffffffu);
            runnable = LLVMBuildAnd(g->b, runnable, LLVMBuildNot(g->b, wsv, ""), "");
            LLVMValueRef wpc = LLVMBuildSelect(g->b, wsv, pcv, none, "");
            LLVMValueRef wmn = intrin(g, "llvm.vector.reduce.umin", &g->v32, 1, &wpc, 1);
            LLVMValueRef force = LLVMBuildAnd(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, runnable), ci(g->i32, 0), ""),
                                              LLVMBuildICmp(g->b, LLVMIntNE, ws, ci(g->i32, 0), ""), "");
            LLVMValueRef rel = LLVMBuildSelect(g->b, force, mask_bits(g, LLVMBuildICmp(g->b, LLVMIntEQ, wpc, splatv(g, wmn, g->v32), "")),
                                               ci(g->i32, 0), "");
            LLVMBuildStore(g->b, LLVMBuildAnd(g->b, ws, LLVMBuildNot(g->b, rel, ""), ""), g->wsync);
            LLVMBuildStore(g->b, LLVMBuildSelect(g->b, force, wmn, LLVMBuildLoad2(g->b, g->i32, g->force_pc, ""), ""), g->force_pc);
            /* lanes at bar.sync or exited have pcs above every instruction: never the minimum of a runnable group */
            cand = LLVMBuildSelect(g->b, LLVMBuildOr(g->b, runnable, mask_vec(g, rel), ""), pcv,
                                   LLVMBuildSelect(g->b, wsv, none, pcv, ""), "");
        }
        LLVMValueRef mn = intrin(g, "llvm.vector.reduce.umin", &g->v32, 1, &cand, 1);
        LLVMValueRef act = LLVMBuildICmp(g->b, LLVMIntEQ, cand, splatv(g, mn, g->v32), "");
        LLVMBuildStore(g->b, act, g->active);
        LLVMBuildStore(g->b, mask_bits(g, LLVMBuildAnd(g->b, runnable, LLVMBuildNot(g->b, act, ""), "")), g->parked);
        LLVMValueRef swd = LLVMBuildSwitch(g->b, mn, g->finish, (unsigned)n);
        for (int i = 0; i < n; i++) if (g->bb[i]) LLVMAddCase(swd, ci(g->i32, (uint64_t)i), g->bb[i]);
    }
    /* finish: every lane exited or waits at a barrier */
    LLVMPositionBuilderAtEnd(g->b, g->finish);
    {
        LLVMValueRef pcv = LLVMBuildLoad2(g->b, g->v32, g->pcv, "");
        LLVMValueRef p = LLVMBuildBitCast(g->b, g->pcs, LLVMPointerType(g->v32, 0), "");
        LLVMSetAlignment(LLVMBuildStore(g->b, pcv, p), 4);
        add_icount(g);
        LLVMValueRef mn = intrin(g, "llvm.vector.reduce.umin", &g->v32, 1, &pcv, 1);
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->cx, g->fn, "alldone");
        LLVMBasicBlockRef atbar = LLVMAppendBasicBlockInContext(g->cx, g->fn, "atbar");
        LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, mn, ci(g->i32, PTX_JIT_PC_EXITED), ""), done, atbar);
        LLVMPositionBuilderAtEnd(g->b, done);
        LLVMBuildRet(g->b, ci(g->i32, 0));
        LLVMPositionBuilderAtEnd(g->b, atbar);
        LLVMBuildRet(g->b, ci(g->i32, 1));
    }
    LLVMPositionBuilderAtEnd(g->b, g->failbb);
    add_icount(g);
    LLVMBuildRet(g->b, ci(g->i32, (uint64_t)-1));

    for (int i = 0; i < n || g->copy != COPY_GENERAL; i++) {
        const int again = next_block_copy(g, &i); /* a block with fast copies is generated once per copy */
        const ptx_ins *in = &k->code[i];
        if (leader[i] && !again) {
            LLVMPositionBuilderAtEnd(g->b, g->bb[i]);
            if (in->wsync) gen_wsync_wait(g, i, in);
            count_block(g, i);
            plan_shared_groups(g, i);
            gen_fast_block_entry(g, i);
        }
        LLVMValueRef act = LLVMBuildLoad2(g->b, g->v1, g->active, "");
        LLVMValueRef em = act;
        if (in->pred >= 0) {
            LLVMValueRef p = bit1(g, V(g, in->pred));
            if (in->pneg) p = LLVMBuildNot(g->b, p, "");
            em = LLVMBuildAnd(g->b, act, p, "");
        }
        if (in->op == OP_BRA) {
            const int tgt = (int)in->imm;
            if (in->pred < 0) {
                if (tgt <= i) /* uniform backward branch */
                    back_branch_yield(g, tgt, act);
                goto_pc(g, tgt, act);
            } else {
                LLVMValueRef tk = mask_bits(g, em), am = mask_bits(g, act);
                LLVMBasicBlockRef all = LLVMAppendBasicBlockInContext(g->cx, g->fn, "taken");
                LLVMBasicBlockRef chk = LLVMAppendBasicBlockInContext(g->cx, g->fn, "");
                LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(g->cx, g->fn, "nottaken");
                LLVMBasicBlockRef div = LLVMAppendBasicBlockInContext(g->cx, g->fn, "diverge");
                LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, tk, am, ""), all, chk);
                LLVMPositionBuilderAtEnd(g->b, chk);
                LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, tk, ci(g->i32, 0), ""), none, div);
                LLVMPositionBuilderAtEnd(g->b, all);
                if (tgt <= i)
                    back_branch_yield(g, tgt, act);
                goto_pc(g, tgt, act);
                LLVMPositionBuilderAtEnd(g->b, none);
                goto_pc(g, i + 1, act);
                LLVMPositionBuilderAtEnd(g->b, div);
                LLVMValueRef pcv = LLVMBuildLoad2(g->b, g->v32, g->pcv, "");
                pcv = LLVMBuildSelect(g->b, em, splat(g, g->v32, (uint64_t)tgt),
                                      LLVMBuildSelect(g->b, act, splat(g, g->v32, (uint64_t)i + 1), pcv, ""), "");
                LLVMBuildStore(g->b, pcv, g->pcv);
                LLVMBuildBr(g->b, g->disp);
            }
            continue;
        }
        if (in->op == OP_EXIT || is_barrier(in)) {
            uint64_t mark = in->op == OP_EXIT ? PTX_JIT_PC_EXITED : (uint64_t)(i + 1) | PTX_JIT_PC_ATBAR;
            if (in->op == OP_BAR_RED) gen_bar_red(g, in, em);
            LLVMValueRef pcv = LLVMBuildLoad2(g->b, g->v32, g->pcv, "");
            pcv = LLVMBuildSelect(g->b, em, splat(g, g->v32, mark), pcv, "");
            LLVMBuildStore(g->b, pcv, g->pcv);
            LLVMValueRef rest = LLVMBuildAnd(g->b, act, LLVMBuildNot(g->b, em, ""), "");
            LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(g->cx, g->fn, "");
            LLVMBasicBlockRef none_left = g->resume_bb[i] ? LLVMAppendBasicBlockInContext(g->cx, g->fn, "") : g->disp;
            LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntEQ, mask_bits(g, rest), ci(g->i32, 0), ""), none_left, cont);
            if (none_left != g->disp) {
                LLVMPositionBuilderAtEnd(g->b, none_left);
                bar_arrive(g, i, pcv);
            }
            LLVMPositionBuilderAtEnd(g->b, cont);
            goto_pc(g, i + 1, rest);
            continue;
        }
        g->cur_unpred = in->pred < 0;
        if (gen_ins(g, i, in, em)) goto out_mod;
        if (leader[i + 1] || i + 1 == n) goto_pc(g, i + 1, LLVMBuildLoad2(g->b, g->v1, g->active, ""));
    }
    gen_block_fn(g, name);
    result = g->m;
    g->m = NULL;
out_mod:
    if (g->m) LLVMDisposeModule(g->m);
    LLVMDisposeBuilder(g->b);
out:
    free(g->slot);
    free(g->is_const);
    free(g->narrow);
    free(g->cval);
    free(g->bb);
    free(g->blen);
    free(g->live_save);
    free(g->live_lead);
    free(g->fact);
    free(g->sgroup);
    free(g->pf_site);
    free(g->grp);
    free(g->lane_var);
    free(g->resume_bb);
    free(leader);
    return result;
}
#else
typedef int ptx_jit_ir_unused; /* built without LLVM: ptx_jit.c never calls the translator */
#endif
