/* ptx_parse.c - PTX text -> pre-decoded kernels (ptx_internal.h), for the emulated driver
 * (emu_driver*.c calls ptx_module_load through ptx.h when a module is loaded).
 *
 * Pipeline: lex the whole text once; read module-level directives, variables (allocated via
 * env->alloc_device and initialized) and function headers (module_index); then compile each .entry
 * into one flat ptx_ins array: all at once (ptx_module_load), or each at its first use
 * (ptx_module_open + ptx_kernel_decode, the driver's lazy loading: the module keeps its text and
 * module-level parse, and lexes again at the first decode). .func bodies are inlined at each call site (their registers, labels and
 * locals renamed per instance), which keeps the executor free of call stacks and lets SIMT
 * reconvergence work across calls. Recursion is not supported (the call becomes an ILLEGAL
 * instruction that fails the launch with a message naming it).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_internal.h"
#include "ptx_jit.h"

/* ------------------------------------------------------------------ lexer */
enum { TK_ID, TK_NUM, TK_STR, TK_P, TK_EOF };
typedef struct tok {
    uint8_t k;
    const char *s;
    uint32_t n;
    uint32_t line;
} tok;

#define VEC_PUSH(arr, cnt, cap, val, fail)                                                    \
    do {                                                                                      \
        if ((cnt) >= (cap)) {                                                                 \
            size_t nc_ = (cap) ? (size_t)(cap) * 2 : 16;                                      \
            void *np_ = realloc((arr), nc_ * sizeof(*(arr)));                                 \
            if (!np_) { fail; }                                                               \
            (arr) = np_;                                                                      \
            (cap) = (int)nc_;                                                                 \
        }                                                                                     \
        (arr)[(cnt)++] = (val);                                                               \
    } while (0)

static int is_idc(int c) { return isalnum(c) || c == '_' || c == '$' || c == '.' || c == '%'; }

static int lex(const char *s, size_t len, tok **out, int *nout) {
    tok *t = NULL;
    int n = 0, cap = 0;
    uint32_t line = 1;
    size_t i = 0;
    while (i < len && s[i]) {
        char c = s[i];
        if (c == '\n') { line++; i++; continue; }
        if (isspace((unsigned char)c)) { i++; continue; }
        if (c == '/' && i + 1 < len && s[i + 1] == '/') {
            while (i < len && s[i] && s[i] != '\n') i++;
            continue;
        }
        if (c == '/' && i + 1 < len && s[i + 1] == '*') {
            i += 2;
            while (i + 1 < len && s[i] && !(s[i] == '*' && s[i + 1] == '/')) { if (s[i] == '\n') line++; i++; }
            i += 2;
            continue;
        }
        tok k = {TK_P, s + i, 1, line};
        if (c == '"') {
            size_t j = i + 1;
            while (j < len && s[j] && s[j] != '"') { if (s[j] == '\\' && j + 1 < len) j++; j++; }
            k.k = TK_STR; k.s = s + i + 1; k.n = (uint32_t)(j - i - 1);
            i = j + 1;
        } else if (isdigit((unsigned char)c)) {
            size_t j = i;
            while (j < len && (isalnum((unsigned char)s[j]) || s[j] == '.' || s[j] == '_' ||
                               ((s[j] == '+' || s[j] == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E') &&
                                !(s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X' || s[i + 1] == 'f' || s[i + 1] == 'd')))))
                j++;
            k.k = TK_NUM; k.n = (uint32_t)(j - i);
            i = j;
        } else if (is_idc((unsigned char)c)) {
            size_t j = i;
            for (;;) {
                if (j < len && is_idc((unsigned char)s[j])) { j++; continue; }
                if (j + 2 < len && s[j] == ':' && s[j + 1] == ':' && is_idc((unsigned char)s[j + 2])) { j += 2; continue; }
                break;
            }
            k.k = TK_ID; k.n = (uint32_t)(j - i);
            i = j;
        } else {
            i++;
        }
        VEC_PUSH(t, n, cap, k, free(t); return -1);
    }
    tok e = {TK_EOF, s + i, 0, line};
    /* three EOF tokens: the module-level reader looks up to two tokens ahead of a directive (".version 8.0") and
     * must find EOF there, not the array's uninitialized slack, when the text ends inside one */
    for (int k = 0; k < 3; k++) VEC_PUSH(t, n, cap, e, free(t); return -1);
    *out = t;
    *nout = n;
    return 0;
}

static int teq(const tok *t, const char *s) { return t->n == strlen(s) && memcmp(t->s, s, t->n) == 0; }
static int tp(const tok *t, char c) { return t->k == TK_P && t->s[0] == c; }

/* ------------------------------------------------------------------ parsed module */
typedef struct pdecl {
    const char *name;
    int nlen;
    size_t size, align;
} pdecl;

typedef struct pfunc {
    const char *name;
    int nlen;
    int is_entry, has_body;
    pdecl *params;
    int nparams, capparams;
    pdecl ret;
    int has_ret;
    int bstart, bend; /* token index of first token inside { and of the matching } */
    int maxntid;
    int maxnreg, minnctapersm; /* performance-tuning directives (0: absent) */
    uint64_t xsize;   /* statements once every call is inlined (saturating) */
    int xstate;       /* 0 not computed, 1 in progress, 2 done */
    int addr_taken;   /* its address is used (vtables, function pointers): a target of indirect calls */
} pfunc;

typedef struct mvar {
    const char *name;
    int nlen;
    int space; /* SP_GLOBAL, SP_CONST, SP_SHARED; extern shared: SP_SHARED with dyn=1 */
    int dyn;
    size_t size, align;
    uint64_t addr;
} mvar;

typedef struct pmod {
    tok *t;
    int nt;
    pfunc *funcs;
    int nfuncs, capfuncs;
    mvar *vars;
    int nvars, capvars;
    const ptx_env *env;
    char *log;
    size_t loglen;
} pmod;

static void logf_(char *log, size_t loglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(char *log, size_t loglen, const char *fmt, ...) {
    if (!log || !loglen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log, loglen, fmt, ap);
    va_end(ap);
}

static size_t type_size_word(const char *s, int n) {
    static const struct { const char *w; size_t sz; } tab[] = {
        {".b8", 1}, {".u8", 1}, {".s8", 1}, {".b16", 2}, {".u16", 2}, {".s16", 2}, {".f16", 2},
        {".bf16", 2}, {".b32", 4}, {".u32", 4}, {".s32", 4}, {".f32", 4}, {".f16x2", 4},
        {".bf16x2", 4}, {".b64", 8}, {".u64", 8}, {".s64", 8}, {".f64", 8}, {".pred", 1},
        {".b128", 16}, {".e4m3x2", 2}, {".e5m2x2", 2},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if ((int)strlen(tab[i].w) == n && memcmp(tab[i].w, s, (size_t)n) == 0) return tab[i].sz;
    return 0;
}

/* Parses integer literal text; returns 0 on success. */
static int parse_int_text(const char *s, int n, int64_t *out) {
    char buf[80];
    if (n <= 0 || n >= (int)sizeof(buf)) return -1;
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    if (buf[n - 1] == 'U' || buf[n - 1] == 'u') buf[--n] = 0;
    char *end;
    errno = 0;
    unsigned long long v;
    if (n > 2 && buf[0] == '0' && (buf[1] == 'b' || buf[1] == 'B')) v = strtoull(buf + 2, &end, 2);
    else if (n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) v = strtoull(buf + 2, &end, 16);
    else if (n > 1 && buf[0] == '0') v = strtoull(buf + 1, &end, 8);
    else v = strtoull(buf, &end, 10);
    if (*end || errno) return -1;
    *out = (int64_t)v;
    return 0;
}

/* Numeric literal classification. */
enum { NUM_INT, NUM_F32BITS, NUM_F64BITS, NUM_DEC };
typedef struct numlit {
    int kind;
    int hex;
    int64_t i;
    uint64_t bits;
    double d;
} numlit;

static int parse_num(const tok *t, int neg, numlit *o) {
    if (t->k != TK_NUM) return -1;
    char buf[80];
    if (t->n >= sizeof(buf)) return -1;
    memcpy(buf, t->s, t->n);
    buf[t->n] = 0;
    if (t->n > 2 && buf[0] == '0' && (buf[1] == 'f' || buf[1] == 'F')) {
        o->kind = NUM_F32BITS;
        o->bits = strtoull(buf + 2, NULL, 16) & 0xffffffffu;
        if (neg) o->bits ^= 0x80000000u;
        return 0;
    }
    if (t->n > 2 && buf[0] == '0' && (buf[1] == 'd' || buf[1] == 'D')) {
        o->kind = NUM_F64BITS;
        o->bits = strtoull(buf + 2, NULL, 16);
        if (neg) o->bits ^= 0x8000000000000000ull;
        return 0;
    }
    int is_hex = t->n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X');
    if (!is_hex && (strchr(buf, '.') || strchr(buf, 'e') || strchr(buf, 'E'))) {
        o->kind = NUM_DEC;
        o->d = strtod(buf, NULL);
        if (neg) o->d = -o->d;
        return 0;
    }
    o->kind = NUM_INT;
    o->hex = is_hex;
    if (parse_int_text(buf, (int)t->n, &o->i)) return -1;
    if (neg) o->i = (int64_t)(0 - (uint64_t)o->i);
    return 0;
}

static pfunc *find_func(pmod *pm, const char *s, int n) {
    for (int i = 0; i < pm->nfuncs; i++)
        if (pm->funcs[i].nlen == n && memcmp(pm->funcs[i].name, s, (size_t)n) == 0) return &pm->funcs[i];
    return NULL;
}

static mvar *find_var(pmod *pm, const char *s, int n) {
    for (int i = 0; i < pm->nvars; i++)
        if (pm->vars[i].nlen == n && memcmp(pm->vars[i].name, s, (size_t)n) == 0) return &pm->vars[i];
    return NULL;
}

/* Skips a balanced {...} starting at t[i] == '{'; returns index of matching '}'. */
static int skip_braces(pmod *pm, int i) {
    int depth = 0;
    for (; i < pm->nt && pm->t[i].k != TK_EOF; i++) {
        if (tp(&pm->t[i], '{')) depth++;
        else if (tp(&pm->t[i], '}') && --depth == 0) return i;
    }
    return -1;
}

/* Parses ".param [.attrs] name[N]" at *pi; appends to decl. */
static int parse_param_decl(pmod *pm, int *pi, pdecl *d) {
    int i = *pi;
    tok *t = pm->t;
    if (!teq(&t[i], ".param") && !teq(&t[i], ".reg")) return -1;
    i++;
    size_t esz = 0, align = 0;
    int is_ptr = 0;
    while (t[i].k == TK_ID && t[i].s[0] == '.') {
        if (teq(&t[i], ".ptr")) is_ptr = 1;
        if (teq(&t[i], ".align")) {
            int64_t v;
            if (parse_int_text(t[i + 1].s, (int)t[i + 1].n, &v) || v <= 0 || v > 4096) return -1;
            if (!is_ptr) align = (size_t)v; /* after .ptr it is the pointee's alignment */
            i += 2;
            continue;
        }
        size_t sz = type_size_word(t[i].s, (int)t[i].n);
        if (sz) esz = sz;
        i++;
    }
    if (t[i].k != TK_ID || !esz) return -1;
    d->name = t[i].s;
    d->nlen = (int)t[i].n;
    i++;
    size_t count = 1;
    if (tp(&t[i], '[')) {
        int64_t v = 0;
        if (t[i + 1].k == TK_NUM && parse_int_text(t[i + 1].s, (int)t[i + 1].n, &v)) return -1;
        count = (size_t)v;
        while (!tp(&t[i], ']') && t[i].k != TK_EOF) i++;
        i++;
    }
    d->size = esz * count;
    d->align = align ? align : esz;
    *pi = i;
    return 0;
}

/* Parses "( decl, decl )" at *pi. */
static int parse_param_list(pmod *pm, int *pi, pfunc *f, int is_ret) {
    int i = *pi;
    if (!tp(&pm->t[i], '(')) return -1;
    i++;
    while (!tp(&pm->t[i], ')')) {
        pdecl d;
        if (parse_param_decl(pm, &i, &d)) return -1;
        if (is_ret) { f->ret = d; f->has_ret = 1; }
        else VEC_PUSH(f->params, f->nparams, f->capparams, d, return -1);
        if (tp(&pm->t[i], ',')) i++;
        else if (!tp(&pm->t[i], ')')) return -1;
    }
    *pi = i + 1;
    return 0;
}

static int write_init_elem(pmod *pm, uint8_t *dst, size_t esz, int is_float, const tok *t, int *pi) {
    int i = *pi;
    int neg = 0;
    if (tp(&t[i], '-')) { neg = 1; i++; }
    uint64_t bits = 0;
    if (t[i].k == TK_NUM) {
        numlit nl;
        if (parse_num(&t[i], neg, &nl)) return -1;
        if (nl.kind == NUM_INT) {
            if (is_float == 4) { float f = (float)nl.i; memcpy(&bits, &f, 4); }
            else if (is_float == 8) { double d = (double)nl.i; memcpy(&bits, &d, 8); }
            else bits = (uint64_t)nl.i;
        } else if (nl.kind == NUM_DEC) {
            if (esz == 4) { float f = (float)nl.d; memcpy(&bits, &f, 4); }
            else { memcpy(&bits, &nl.d, 8); }
        } else {
            bits = nl.bits;
        }
        i++;
    } else if (t[i].k == TK_ID) {
        /* address of a variable: sym, generic(sym), sym+off */
        int paren = 0;
        if ((teq(&t[i], "generic") || teq(&t[i], "global")) && tp(&t[i + 1], '(')) { i += 2; paren = 1; }
        mvar *v = find_var(pm, t[i].s, (int)t[i].n);
        pfunc *f = v ? NULL : find_func(pm, t[i].s, (int)t[i].n);
        if (f && !f->is_entry) { /* a function's address (vtables): what indirect calls dispatch on */
            f->addr_taken = 1;
            bits = PTX_FUNC_ADDR(f - pm->funcs);
        } else if (!v || v->space == SP_SHARED) {
            return -1;
        } else {
            bits = v->addr;
        }
        i++;
        if (paren && tp(&t[i], ')')) i++;
        if (tp(&t[i], '+') && t[i + 1].k == TK_NUM) {
            int64_t o;
            if (parse_int_text(t[i + 1].s, (int)t[i + 1].n, &o)) return -1;
            bits += (uint64_t)o;
            i += 2;
        }
    } else {
        return -1;
    }
    memcpy(dst, &bits, esz > 8 ? 8 : esz);
    *pi = i;
    return 0;
}

/* Module-scope variable: [.visible|.extern|.weak] .global/.const/.shared ... */
static int parse_module_var(pmod *pm, int *pi, int is_extern, int space) {
    tok *t = pm->t;
    int i = *pi + 1;
    size_t esz = 0, align = 0, vec = 1;
    int is_float = 0;
    while (t[i].k == TK_ID && t[i].s[0] == '.') {
        if (teq(&t[i], ".align")) {
            int64_t v;
            if (parse_int_text(t[i + 1].s, (int)t[i + 1].n, &v)) return -1;
            align = (size_t)v;
            i += 2;
            continue;
        }
        /* .attribute(.managed): a __managed__ variable. Device memory of the emulated device is host
         * memory, so it needs nothing beyond a normal .global (cudart maps it with cuLibraryGetManaged). */
        if (teq(&t[i], ".attribute") && tp(&t[i + 1], '(')) {
            i += 2;
            while (t[i].k != TK_EOF && !tp(&t[i], ')')) i++;
            if (!tp(&t[i], ')')) return -1;
            i++;
            continue;
        }
        if (teq(&t[i], ".v2")) vec = 2;
        else if (teq(&t[i], ".v4")) vec = 4;
        size_t sz = type_size_word(t[i].s, (int)t[i].n);
        if (sz) {
            esz = sz;
            is_float = (teq(&t[i], ".f32") ? 4 : teq(&t[i], ".f64") ? 8 : 0);
        }
        i++;
    }
    if (t[i].k != TK_ID || !esz) return -1;
    mvar v = {t[i].s, (int)t[i].n, space, 0, 0, 0, 0};
    i++;
    size_t count = 1;
    int unsized = 0;
    while (tp(&t[i], '[')) {
        if (tp(&t[i + 1], ']')) { unsized = 1; i += 2; continue; }
        int64_t d;
        if (parse_int_text(t[i + 1].s, (int)t[i + 1].n, &d) || !tp(&t[i + 2], ']')) return -1;
        if (d < 0 || (uint64_t)d > ((uint64_t)1 << 31) || count * (size_t)d > ((size_t)1 << 31)) return -1;
        count *= (size_t)d;
        i += 3;
    }
    esz *= 1;
    size_t elem = esz;
    v.align = align ? align : esz * vec;
    v.size = elem * vec * count;
    int init_at = -1;
    if (tp(&t[i], '=')) {
        init_at = i + 1;
        if (unsized) {
            /* count top-level elements to size the array */
            size_t nel = 0;
            int j = init_at;
            if (tp(&t[j], '{')) {
                int e = skip_braces(pm, j);
                for (int k = j; k < e; k++) if (t[k].k == TK_NUM || (t[k].k == TK_ID && !tp(&t[k - 1], '('))) nel++;
            }
            v.size = elem * vec * nel;
        }
        while (!tp(&t[i], ';') && t[i].k != TK_EOF) i++;
    }
    if (!tp(&t[i], ';')) return -1;
    *pi = i + 1;
    if (space == SP_SHARED) {
        v.dyn = is_extern || unsized;
        VEC_PUSH(pm->vars, pm->nvars, pm->capvars, v, return -1);
        return 0;
    }
    if (is_extern) {
        void *p = pm->env->resolve_extern ? pm->env->resolve_extern(pm->env->ctx, "") : NULL;
        (void)p;
        logf_(pm->log, pm->loglen, "PTX: .extern variable %.*s is not supported", v.nlen, v.name);
        return -2;
    }
    size_t alloc = v.size ? v.size : 1;
    void *mem = pm->env->alloc_device ? pm->env->alloc_device(pm->env->ctx, alloc) : NULL;
    if (!mem) {
        logf_(pm->log, pm->loglen, "PTX: cannot allocate %zu bytes for variable %.*s", alloc, v.nlen, v.name);
        return -3;
    }
    memset(mem, 0, alloc);
    v.addr = (uint64_t)(uintptr_t)mem;
    VEC_PUSH(pm->vars, pm->nvars, pm->capvars, v, return -1);
    if (init_at >= 0) {
        int j = init_at;
        size_t off = 0;
        size_t total = v.size;
        int depth = 0;
        while (!tp(&t[j], ';') && t[j].k != TK_EOF) {
            if (tp(&t[j], '{')) { depth++; j++; continue; }
            if (tp(&t[j], '}')) { depth--; j++; continue; }
            if (tp(&t[j], ',')) { j++; continue; }
            if (off + elem > total) return -1;
            if (write_init_elem(pm, (uint8_t *)mem + off, elem, is_float, t, &j)) return -1;
            off += elem;
        }
        (void)depth;
    }
    return 0;
}

static int parse_module(pmod *pm) {
    tok *t = pm->t;
    int i = 0;
    while (t[i].k != TK_EOF) {
        if (teq(&t[i], ".version") || teq(&t[i], ".address_size")) { i += 1 + (t[i + 1].k != TK_EOF); continue; }
        if (teq(&t[i], ".target")) {
            i += 1 + (t[i + 1].k != TK_EOF);
            while (tp(&t[i], ',')) i += 1 + (t[i + 1].k != TK_EOF);
            continue;
        }
        if (teq(&t[i], ".file") || teq(&t[i], ".loc")) {
            uint32_t line = t[i].line;
            while (t[i].k != TK_EOF && t[i].line == line) i++;
            continue;
        }
        if (teq(&t[i], ".section")) {
            while (!tp(&t[i], '{') && t[i].k != TK_EOF) i++;
            int e = skip_braces(pm, i);
            if (e < 0) return -1;
            i = e + 1;
            continue;
        }
        if (teq(&t[i], ".pragma")) {
            while (!tp(&t[i], ';') && t[i].k != TK_EOF) i++;
            i++;
            continue;
        }
        int is_extern = 0;
        while (teq(&t[i], ".visible") || teq(&t[i], ".extern") || teq(&t[i], ".weak") || teq(&t[i], ".common")) {
            if (teq(&t[i], ".extern")) is_extern = 1;
            i++;
        }
        if (teq(&t[i], ".global") || teq(&t[i], ".const") || teq(&t[i], ".shared")) {
            int sp = teq(&t[i], ".global") ? SP_GLOBAL : teq(&t[i], ".const") ? SP_CONST : SP_SHARED;
            int r = parse_module_var(pm, &i, is_extern, sp);
            if (r == -1) logf_(pm->log, pm->loglen, "PTX: bad variable declaration at line %u", t[i].line);
            if (r) return -1;
            continue;
        }
        if (teq(&t[i], ".entry") || teq(&t[i], ".func")) {
            pfunc f;
            memset(&f, 0, sizeof(f));
            f.is_entry = teq(&t[i], ".entry");
            i++;
            if (!f.is_entry && tp(&t[i], '(')) {
                if (parse_param_list(pm, &i, &f, 1)) goto bad;
            }
            if (t[i].k != TK_ID) goto bad;
            f.name = t[i].s;
            f.nlen = (int)t[i].n;
            i++;
            if (tp(&t[i], '(') && parse_param_list(pm, &i, &f, 0)) goto bad;
            while (t[i].k == TK_ID && t[i].s[0] == '.') {
                if (teq(&t[i], ".maxntid") || teq(&t[i], ".reqntid")) {
                    int64_t x = 1, y = 1, z = 1;
                    if (parse_int_text(t[i + 1].s, (int)t[i + 1].n, &x)) goto bad;
                    i += 2;
                    if (tp(&t[i], ',')) { if (parse_int_text(t[i + 1].s, (int)t[i + 1].n, &y)) goto bad; i += 2; }
                    if (tp(&t[i], ',')) { if (parse_int_text(t[i + 1].s, (int)t[i + 1].n, &z)) goto bad; i += 2; }
                    f.maxntid = (int)(x * y * z);
                    continue;
                }
                if ((teq(&t[i], ".maxnreg") || teq(&t[i], ".minnctapersm")) && t[i + 1].k == TK_NUM) {
                    int64_t v = 0;
                    if (parse_int_text(t[i + 1].s, (int)t[i + 1].n, &v) || v <= 0 || v > 65536) goto bad;
                    *(teq(&t[i], ".maxnreg") ? &f.maxnreg : &f.minnctapersm) = (int)v;
                    i += 2;
                    continue;
                }
                if (teq(&t[i], ".noreturn")) { i++; continue; }
                if (teq(&t[i], ".pragma")) { while (!tp(&t[i], ';') && t[i].k != TK_EOF) i++; i++; continue; }
                /* .maxclusterrank N, .reqnctapercluster x,y,z, .explicitcluster */
                i++;
                while (t[i].k == TK_NUM || tp(&t[i], ',')) i++;
            }
            if (tp(&t[i], ';')) {
                f.has_body = 0;
                i++;
            } else if (tp(&t[i], '{')) {
                int e = skip_braces(pm, i);
                if (e < 0) goto bad;
                f.has_body = 1;
                f.bstart = i + 1;
                f.bend = e;
                i = e + 1;
            } else {
                goto bad;
            }
            pfunc *old = find_func(pm, f.name, f.nlen);
            if (old) {
                if (f.has_body) { int taken = old->addr_taken; free(old->params); *old = f; old->addr_taken = taken; }
                else free(f.params);
            } else {
                VEC_PUSH(pm->funcs, pm->nfuncs, pm->capfuncs, f, free(f.params); return -1);
            }
            continue;
        bad:
            free(f.params);
            logf_(pm->log, pm->loglen, "PTX: bad function header at line %u", t[i].line);
            return -1;
        }
        logf_(pm->log, pm->loglen, "PTX: unexpected '%.*s' at line %u", (int)t[i].n, t[i].s, t[i].line);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ kernel compiler */
enum { SYM_REG, SYM_LOCAL, SYM_SHARED, SYM_KPARAM, SYM_FPARAM };
typedef struct sym {
    const char *name;
    int nlen;
    int kind;
    int range;   /* SYM_REG: -1 exact name, else count of "%name<N>" */
    int64_t val; /* slot base or byte offset */
} sym;

typedef struct label {
    const char *name;
    int nlen;
    int pc;
} label;

typedef struct fixup {
    int at;
    const char *name;
    int nlen;
} fixup;

typedef struct frame {
    pfunc *f;
    label *labels;
    int nlabels, caplabels;
    fixup *fix;
    int nfix, capfix;
    int *rets;
    int nrets, caprets;
    int inst; /* inline instance id for shared var keys */
} frame;

typedef struct shvar {
    const pfunc *f; /* NULL for module scope */
    const char *name;
    int nlen;
    size_t off;
} shvar;

typedef struct kc {
    pmod *pm;
    ptx_kernel *k;
    ptx_ins *code;
    int ncode, capcode;
    int nslots, nregs;
    ptx_cslot *consts;
    int nconsts, capconsts;
    int *chash; /* open addressing: const index + 1 */
    int chcap;
    int sreg_slot[SR_COUNT];
    shvar *sh;
    int nsh, capsh;
    int *dyn_consts; /* const indices holding the dynamic-shared base */
    int ndyn, capdyn;
    size_t shared_size, local_size;
    sym *syms;
    int nsyms, capsyms;
    const pfunc *stack[32];
    int depth;
    int ninst;
    int scratch_slot;
    int carry_slot;
    int32_t *lists;
    int nlists, caplists;
    const char *toobig;
    int oom;
} kc;

/* Limits that keep hostile or absurd PTX from exhausting host memory at load or launch. */
#define MAX_SLOTS (1 << 18)
#define MAX_CODE (1 << 20)
#define MAX_LOCAL_BYTES ((size_t)1 << 24)
#define MAX_DECL_BYTES ((size_t)1 << 31)
#define MAX_RECURSION 8
#define MAX_RECURSION_STR "8"

static int new_slots(kc *c, int n) {
    if (n < 0 || (int64_t)c->nslots + n > MAX_SLOTS) {
        c->toobig = "too many registers";
        return 0;
    }
    int s = c->nslots;
    c->nslots += n;
    return s;
}

static int cslot_raw(kc *c, uint64_t bits, int dedupe) {
    if (dedupe && c->chcap) {
        size_t h = (size_t)((bits * 0x9E3779B97F4A7C15ull) >> 40) & (size_t)(c->chcap - 1);
        for (;;) {
            int e = c->chash[h];
            if (!e) break;
            if (c->consts[e - 1].bits == bits) return c->consts[e - 1].slot;
            h = (h + 1) & (size_t)(c->chcap - 1);
        }
    }
    ptx_cslot cs = {new_slots(c, 1), bits};
    VEC_PUSH(c->consts, c->nconsts, c->capconsts, cs, c->oom = 1; return 0);
    if (!dedupe) return cs.slot;
    if ((c->nconsts) * 2 >= c->chcap) {
        int ncap = c->chcap ? c->chcap * 2 : 256;
        int *nh = calloc((size_t)ncap, sizeof(int));
        if (!nh) { c->oom = 1; return cs.slot; }
        free(c->chash);
        c->chash = nh;
        c->chcap = ncap;
        for (int i = 0; i < c->nconsts; i++) {
            if (c->consts[i].slot < 0) continue;
            size_t h = (size_t)((c->consts[i].bits * 0x9E3779B97F4A7C15ull) >> 40) & (size_t)(ncap - 1);
            while (nh[h]) h = (h + 1) & (size_t)(ncap - 1);
            nh[h] = i + 1;
        }
        return cs.slot;
    }
    size_t h = (size_t)((bits * 0x9E3779B97F4A7C15ull) >> 40) & (size_t)(c->chcap - 1);
    while (c->chash[h]) h = (h + 1) & (size_t)(c->chcap - 1);
    c->chash[h] = c->nconsts;
    return cs.slot;
}
static int cslot(kc *c, uint64_t bits) { return cslot_raw(c, bits, 1); }

static int sreg_slot(kc *c, int sr) {
    if (sr >= SR_FIRST_DYNAMIC) return -1;
    if (c->sreg_slot[sr] < 0) {
        c->sreg_slot[sr] = new_slots(c, 1);
        ptx_sslot ss = {c->sreg_slot[sr], sr};
        int n = c->k->nspecials, cap = n; /* grow by one: few specials per kernel */
        ptx_sslot *np = realloc(c->k->specials, (size_t)(cap + 1) * sizeof(*np));
        if (!np) { c->oom = 1; return 0; }
        c->k->specials = np;
        np[n] = ss;
        c->k->nspecials = n + 1;
    }
    return c->sreg_slot[sr];
}

static int sreg_lookup(const char *s, int n) {
    static const char *names[] = {
#define X(e, str) str,
        PTX_SREGS(X)
#undef X
    };
    for (int i = 0; i < SR_COUNT; i++)
        if ((int)strlen(names[i]) == n && memcmp(names[i], s, (size_t)n) == 0) return i;
    return -1;
}

static sym *sym_find(kc *c, const char *s, int n) {
    for (int i = c->nsyms - 1; i >= 0; i--) {
        sym *y = &c->syms[i];
        if (y->nlen == n && memcmp(y->name, s, (size_t)n) == 0 && y->range < 0) return y;
    }
    return NULL;
}

/* Register operand name -> slot, or -1. */
static int reg_lookup(kc *c, const char *s, int n) {
    sym *y = sym_find(c, s, n);
    if (y && y->kind == SYM_REG) return (int)y->val;
    if (y) return -1;
    int p = n;
    while (p > 0 && isdigit((unsigned char)s[p - 1])) p--;
    if (p < n && p > 0) {
        long idx = strtol(s + p, NULL, 10);
        for (int i = c->nsyms - 1; i >= 0; i--) {
            sym *r = &c->syms[i];
            if (r->range >= 0 && r->nlen == p && memcmp(r->name, s, (size_t)p) == 0) {
                if (idx < r->range) return (int)(r->val + idx);
                return -1;
            }
        }
    }
    return -1;
}

static void add_sym(kc *c, sym y) { VEC_PUSH(c->syms, c->nsyms, c->capsyms, y, c->oom = 1); }

static ptx_ins *emit(kc *c, int op, uint32_t line) {
    ptx_ins in;
    memset(&in, 0, sizeof(in));
    in.op = (uint16_t)op;
    in.pred = -1;
    in.d = in.d2 = in.a = in.b = in.c = in.e = -1;
    for (int i = 0; i < 4; i++) in.v[i] = -1;
    in.line = line;
    if (c->ncode >= MAX_CODE) {
        c->toobig = "too many instructions after inlining calls";
        c->ncode = 0;
    }
    VEC_PUSH(c->code, c->ncode, c->capcode, in, c->oom = 1; return NULL);
    return &c->code[c->ncode - 1];
}

static char *own_str(kc *c, const char *s, int n) {
    char *p = malloc((size_t)n + 1);
    if (!p) { c->oom = 1; return NULL; }
    memcpy(p, s, (size_t)n);
    p[n] = 0;
    char **no = realloc(c->k->owned, (size_t)(c->k->nowned + 1) * sizeof(char *));
    if (!no) { free(p); c->oom = 1; return NULL; }
    c->k->owned = no;
    no[c->k->nowned++] = p;
    return p;
}

static void emit_illegal(kc *c, const char *what, int n, uint32_t line) {
    char buf[200];
    snprintf(buf, sizeof(buf), "%.*s", n, what);
    ptx_ins *in = emit(c, OP_ILLEGAL, line);
    if (in) in->text = own_str(c, buf, (int)strlen(buf));
}

static size_t align_up(size_t v, size_t a) { return a ? (v + a - 1) / a * a : v; }

static size_t shared_var_off(kc *c, const pfunc *f, const char *name, int nlen, size_t size, size_t align) {
    for (int i = 0; i < c->nsh; i++)
        if (c->sh[i].f == f && c->sh[i].nlen == nlen && memcmp(c->sh[i].name, name, (size_t)nlen) == 0) return c->sh[i].off;
    size_t off = align_up(c->shared_size, align < 4 ? 4 : align);
    c->shared_size = off + size;
    shvar v = {f, name, nlen, off};
    VEC_PUSH(c->sh, c->nsh, c->capsh, v, c->oom = 1);
    return off;
}

/* ------------------------------------------------------------------ opcode modifiers */
typedef struct mods {
    const char *base;
    int blen;
    int types[4];
    int ntypes;
    int space;
    int has_space;
    int rm;
    int vec;
    unsigned flags;
    int cmp, bop, atop, shmode, vote;
    int hi, lo, wide, uni, nc, sync, shiftamt, clamp, wrap, to, full, any, all, b4e, f4e, ecl, ecr, rc8, rc16;
    int is_param, rel_lanes, relu, red_popc, red_and, red_or, mode_l, mode_r, cache_hint;
    const char *bad;
    int badlen;
} mods;

static int type_of_word(const char *s, int n) {
    static const struct { const char *w; int t; } tab[] = {
        {"u8", T_U8}, {"s8", T_S8}, {"b8", T_U8}, {"u16", T_U16}, {"s16", T_S16}, {"b16", T_U16},
        {"u32", T_U32}, {"s32", T_S32}, {"b32", T_U32}, {"u64", T_U64}, {"s64", T_S64}, {"b64", T_U64},
        {"f16", T_F16}, {"bf16", T_BF16}, {"f32", T_F32}, {"f64", T_F64}, {"pred", T_PRED},
        {"f16x2", T_F16X2}, {"bf16x2", T_BF16X2},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if ((int)strlen(tab[i].w) == n && memcmp(tab[i].w, s, (size_t)n) == 0) return tab[i].t;
    return -1;
}

static int word_in(const char *s, int n, const char *const *list, int cnt) {
    for (int i = 0; i < cnt; i++)
        if ((int)strlen(list[i]) == n && memcmp(list[i], s, (size_t)n) == 0) return i;
    return -1;
}

static void parse_mods(const tok *t, mods *m) {
    memset(m, 0, sizeof(*m));
    m->cmp = m->bop = m->atop = m->shmode = m->vote = -1;
    m->vec = 1;
    const char *s = t->s, *end = t->s + t->n;
    const char *p = memchr(s, '.', t->n);
    m->base = s;
    m->blen = (int)((p ? p : end) - s);
    static const char *const cmps[] = {"eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi", "hs",
                                       "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan"};
    static const char *const rms[] = {"", "rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi"};
    static const char *const atops[] = {"add", "min", "max", "inc", "dec", "and", "or", "xor", "exch", "cas"};
    static const char *const spaces[] = {"", "global", "shared", "local", "const", "param"};
    static const char *const ignored[] = {"relaxed", "acquire", "release", "acq_rel", "sc", "volatile", "weak",
                                          "cta", "gpu", "sys", "cluster", "ca", "cg", "cs", "lu", "cv", "wb",
                                          "wt", "aligned", "noftz", "mmio", "noinc", "b", "unified", "red", "arrive", "warp", "async",
                                          "commit_group", "wait_group", "wait_all"};
    static const char *const shm[] = {"up", "down", "bfly", "idx"};
    static const char *const votes[] = {"all", "any", "uni", "ballot"};
    while (p && p < end) {
        const char *w = p + 1;
        const char *q = memchr(w, '.', (size_t)(end - w));
        int n = (int)((q ? q : end) - w);
        p = q;
        int x;
        if ((x = type_of_word(w, n)) >= 0) { if (m->ntypes < 4) m->types[m->ntypes++] = x; continue; }
        if (n >= 8 && !memcmp(w, "shared::", 8)) { m->space = SP_SHARED; m->has_space = 1; continue; }
        if (n >= 8 && !memcmp(w, "global::", 8)) { m->space = SP_GLOBAL; m->has_space = 1; continue; }
        if (n == 14 && !memcmp(w, "L2::cache_hint", 14)) { m->cache_hint = 1; continue; }
        if (memchr(w, ':', (size_t)n)) continue; /* cache hints like L1::no_allocate, L2::128B */
        if (n == 6 && !memcmp(w, "shared", 6) && q && end - q > 4 && !memcmp(q, "::cta", 5)) { /* handled by ':' */ }
        if ((x = word_in(w, n, spaces, 6)) > 0) { m->space = x; m->has_space = 1; if (x == SP_KPARAM) m->is_param = 1; continue; }
        if ((x = word_in(w, n, rms, 9)) > 0) { m->rm = x; continue; }
        if (m->blen == 4 && !memcmp(m->base, "setp", 4) && (x = word_in(w, n, cmps, 18)) >= 0 && m->cmp < 0) { m->cmp = x; continue; }
        if ((m->blen == 3 && (!memcmp(m->base, "set", 3))) && (x = word_in(w, n, cmps, 18)) >= 0 && m->cmp < 0) { m->cmp = x; continue; }
        if ((x = word_in(w, n, atops, 10)) >= 0) {
            if (m->atop < 0 && ((m->blen == 4 && !memcmp(m->base, "atom", 4)) || (m->blen == 3 && !memcmp(m->base, "red", 3)) ||
                                (m->blen == 5 && !memcmp(m->base, "redux", 5)))) { m->atop = x; continue; }
            if (x == AT_AND || x == AT_OR || x == AT_XOR) { m->bop = x - AT_AND + 1; if (x == AT_AND) m->red_and = 1; if (x == AT_OR) m->red_or = 1; continue; }
        }
        if ((x = word_in(w, n, shm, 4)) >= 0) { m->shmode = x; continue; }
        if ((x = word_in(w, n, votes, 4)) >= 0) {
            if (x == VO_ALL) m->all = 1;
            if (x == VO_ANY) m->any = 1;
            m->vote = x;
            continue;
        }
        if (n == 2 && !memcmp(w, "v2", 2)) { m->vec = 2; continue; }
        if (n == 2 && !memcmp(w, "v4", 2)) { m->vec = 4; continue; }
        if (n == 2 && !memcmp(w, "v8", 2)) { m->vec = 8; continue; }
        if (n == 3 && !memcmp(w, "sat", 3)) { m->flags |= IF_SAT; continue; }
        if (n == 3 && !memcmp(w, "ftz", 3)) { m->flags |= IF_FTZ; continue; }
        if (n == 6 && !memcmp(w, "approx", 6)) { m->flags |= IF_APPROX; continue; }
        if (n == 4 && !memcmp(w, "full", 4)) { m->full = 1; continue; }
        if (n == 2 && !memcmp(w, "cc", 2)) { m->flags |= IF_CC; continue; }
        if (n == 2 && !memcmp(w, "hi", 2)) { m->hi = 1; continue; }
        if (n == 2 && !memcmp(w, "lo", 2)) { m->lo = 1; continue; }
        if (n == 4 && !memcmp(w, "wide", 4)) { m->wide = 1; continue; }
        if (n == 3 && !memcmp(w, "uni", 3)) { m->uni = 1; continue; }
        if (n == 2 && !memcmp(w, "nc", 2)) { m->nc = 1; continue; }
        if (n == 4 && !memcmp(w, "sync", 4)) { m->sync = 1; continue; }
        if (n == 8 && !memcmp(w, "shiftamt", 8)) { m->shiftamt = 1; continue; }
        if (n == 5 && !memcmp(w, "clamp", 5)) { m->clamp = 1; continue; }
        if (n == 4 && !memcmp(w, "wrap", 4)) { m->wrap = 1; continue; }
        if (n == 2 && !memcmp(w, "to", 2)) { m->to = 1; continue; }
        if (n == 4 && !memcmp(w, "relu", 4)) { m->relu = 1; continue; }
        if (n == 4 && !memcmp(w, "popc", 4)) { m->red_popc = 1; continue; }
        if (n == 1 && w[0] == 'l') { m->mode_l = 1; continue; }
        if (n == 1 && w[0] == 'r') { m->mode_r = 1; continue; }
        if (n == 3 && !memcmp(w, "f4e", 3)) { m->f4e = 1; continue; }
        if (n == 3 && !memcmp(w, "b4e", 3)) { m->b4e = 1; continue; }
        if (n == 3 && !memcmp(w, "ecl", 3)) { m->ecl = 1; continue; }
        if (n == 3 && !memcmp(w, "ecr", 3)) { m->ecr = 1; continue; }
        if (n == 3 && !memcmp(w, "rc8", 3)) { m->rc8 = 1; continue; }
        if (n == 4 && !memcmp(w, "rc16", 4)) { m->rc16 = 1; continue; }
        if (word_in(w, n, ignored, (int)(sizeof(ignored) / sizeof(ignored[0]))) >= 0) continue;
        if (!m->bad) { m->bad = w; m->badlen = n; }
    }
}

static int mbase(const mods *m, const char *s) { return m->blen == (int)strlen(s) && memcmp(m->base, s, (size_t)m->blen) == 0; }

/* ------------------------------------------------------------------ operands */
enum { O_NONE, O_REG, O_NUM, O_SYM, O_ADDR, O_VEC, O_SINK, O_SREG };
typedef struct opnd {
    int kind;
    int slot, slot2; /* O_REG (slot2: the "|%p" part) */
    int neg;         /* '!' */
    numlit num;
    const tok *name; /* O_SYM, or O_ADDR base symbol */
    int base_slot;   /* O_ADDR with register base, else -1 */
    int64_t off;
    int nvec;
    int vk[8];       /* per element: O_REG/O_NUM/O_SINK */
    int vslot[8];
    numlit vnum[8];
    int sreg;
} opnd;

/* Operand token ranges between top-level commas. */
typedef struct oprange {
    int a, b; /* [a, b) */
} oprange;

static int parse_simple(kc *c, const tok *t, int i, int end, int *kind, int *slot, numlit *num, int *sr) {
    int neg = 0;
    if (i < end && tp(&t[i], '-')) { neg = 1; i++; }
    if (i >= end) return -1;
    if (t[i].k == TK_NUM) {
        if (parse_num(&t[i], neg, num)) return -1;
        *kind = O_NUM;
        return i + 1;
    }
    if (t[i].k == TK_ID) {
        if (t[i].n == 1 && t[i].s[0] == '_') { *kind = O_SINK; return i + 1; }
        int s = reg_lookup(c, t[i].s, (int)t[i].n);
        if (s < 0 && teq(&t[i], "WARP_SZ")) { /* the ISA's run-time constant: threads per warp */
            memset(num, 0, sizeof(*num));
            num->kind = NUM_INT;
            num->i = neg ? -32 : 32;
            *kind = O_NUM;
            return i + 1;
        }
        if (s >= 0) { *kind = O_REG; *slot = s; return i + 1; }
        int r = sreg_lookup(t[i].s, (int)t[i].n);
        if (r < 0 && t[i].n > 7 && !memcmp(t[i].s, "%envreg", 7)) r = SR_COUNT; /* other envregs read 0 */
        if (r < 0 && t[i].n > 21 && !memcmp(t[i].s, "%reserved_smem_offset", 21)) {
            /* a small reserved shared-memory area some library code addresses */
            r = teq(&t[i], "%reserved_smem_offset_end") ? SR_COUNT + 2 : teq(&t[i], "%reserved_smem_offset_cap") ? SR_COUNT + 3 : SR_COUNT + 1;
        }
        if (r >= 0) { *kind = O_SREG; *sr = r; return i + 1; }
        *kind = O_SYM;
        return i + 1;
    }
    return -1;
}

static int parse_operand(kc *c, const tok *t, oprange r, opnd *o) {
    memset(o, 0, sizeof(*o));
    o->base_slot = -1;
    o->slot = o->slot2 = -1;
    int i = r.a;
    if (i >= r.b) return -1;
    if (tp(&t[i], '!')) { o->neg = 1; i++; }
    if (tp(&t[i], '[')) {
        o->kind = O_ADDR;
        i++;
        if (t[i].k == TK_ID) {
            int s = reg_lookup(c, t[i].s, (int)t[i].n);
            if (s >= 0) o->base_slot = s;
            else o->name = &t[i];
            i++;
        } else if (t[i].k == TK_NUM) {
            numlit nl;
            if (parse_num(&t[i], 0, &nl) || nl.kind != NUM_INT) return -1;
            o->off = nl.i;
            i++;
        }
        while (!tp(&t[i], ']') && i < r.b) {
            int sign = 1;
            if (tp(&t[i], '+')) i++;
            if (tp(&t[i], '-')) { sign = -sign; i++; }
            numlit nl;
            if (parse_num(&t[i], 0, &nl) || nl.kind != NUM_INT) return -1;
            o->off += sign * nl.i;
            i++;
        }
        return tp(&t[i], ']') ? 0 : -1;
    }
    if (tp(&t[i], '{')) {
        o->kind = O_VEC;
        i++;
        while (!tp(&t[i], '}') && i < r.b) {
            if (o->nvec >= 8) return -1;
            int k = o->nvec;
            int sr = -1;
            i = parse_simple(c, t, i, r.b, &o->vk[k], &o->vslot[k], &o->vnum[k], &sr);
            if (i < 0 || o->vk[k] == O_SYM || o->vk[k] == O_SREG) return -1;
            o->nvec++;
            if (tp(&t[i], ',')) i++;
        }
        return 0;
    }
    i = parse_simple(c, t, i, r.b, &o->kind, &o->slot, &o->num, &o->sreg);
    if (i < 0) return -1;
    if (o->kind == O_SYM) o->name = &t[i - 1];
    if (o->kind == O_SYM && i < r.b && tp(&t[i], '+')) {
        numlit nl;
        if (parse_num(&t[i + 1], 0, &nl) || nl.kind != NUM_INT) return -1;
        o->off = nl.i;
        i += 2;
    }
    if (i < r.b && tp(&t[i], '|')) {
        int s = reg_lookup(c, t[i + 1].s, (int)t[i + 1].n);
        if (s < 0) return -1;
        o->slot2 = s;
        i += 2;
    }
    return i == r.b ? 0 : -1;
}

#define RESERVED_SMEM 64

static int is_float_t(int t) { return t == T_F32 || t == T_F64 || t == T_F16 || t == T_BF16; }

/* Bits of a numeric literal as an operand of type t. */
static uint64_t num_bits(const numlit *n, int t) {
    uint64_t bits = 0;
    if (n->kind == NUM_F32BITS) {
        if (t == T_F64) { float f; uint32_t u = (uint32_t)n->bits; memcpy(&f, &u, 4); double d = f; memcpy(&bits, &d, 8); return bits; }
        return n->bits;
    }
    if (n->kind == NUM_F64BITS) {
        if (t == T_F32) { double d; memcpy(&d, &n->bits, 8); float f = (float)d; uint32_t u; memcpy(&u, &f, 4); return u; }
        return n->bits;
    }
    if (n->kind == NUM_INT && n->hex && (t == T_F16 || t == T_BF16)) return (uint64_t)n->i & 0xffff; /* bit pattern */
    double d = n->kind == NUM_DEC ? n->d : (double)n->i;
    if (t == T_F32) { float f = (float)d; uint32_t u; memcpy(&u, &f, 4); return u; }
    if (t == T_F64) { memcpy(&bits, &d, 8); return bits; }
    if (t == T_F16) return ptx_f64_to_f16(d, RM_RN);
    if (t == T_BF16) return ptx_f64_to_bf16(d, RM_RN);
    if (n->kind == NUM_DEC) return (uint64_t)(int64_t)d;
    return (uint64_t)n->i;
}

typedef struct cctx {
    kc *c;
    frame *fr;
    const tok *t;
    uint32_t line;
    const tok *optok;
    int failed; /* instruction could not be compiled: emitted ILLEGAL */
} cctx;

/* Address of a symbol as a register value, with its state space. Returns 0 if found. */
static int sym_address(cctx *x, const tok *name, int64_t *val, int *space) {
    kc *c = x->c;
    sym *y = sym_find(c, name->s, (int)name->n);
    if (y) {
        switch (y->kind) {
        case SYM_LOCAL: case SYM_FPARAM: *space = SP_LOCAL; *val = y->val; return 0;
        case SYM_SHARED: *space = SP_SHARED; *val = y->val; return 0;
        case SYM_KPARAM: *space = SP_KPARAM; *val = y->val; return 0;
        default: return -1;
        }
    }
    mvar *v = find_var(c->pm, name->s, (int)name->n);
    if (v) {
        if (v->space == SP_SHARED) {
            *space = SP_SHARED;
            if (v->dyn) { *val = -1; return 0; } /* patched to the dynamic base later */
            *val = (int64_t)shared_var_off(c, NULL, v->name, v->nlen, v->size, v->align);
            return 0;
        }
        *space = v->space;
        *val = (int64_t)v->addr;
        return 0;
    }
    pfunc *f = find_func(c->pm, name->s, (int)name->n);
    if (f && !f->is_entry) {
        f->addr_taken = 1;
        *space = SP_GLOBAL;
        *val = (int64_t)PTX_FUNC_ADDR(f - c->pm->funcs);
        return 0;
    }
    return -1;
}

static int dyn_shared_slot(kc *c) {
    int s = cslot_raw(c, 0, 0);
    VEC_PUSH(c->dyn_consts, c->ndyn, c->capdyn, c->nconsts - 1, c->oom = 1);
    return s;
}

static int fail_ins(cctx *x, const char *why) {
    if (!x->failed) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%.*s (%s)", (int)x->optok->n, x->optok->s, why);
        emit_illegal(x->c, buf, (int)strlen(buf), x->line);
    }
    x->failed = 1;
    return -1;
}

/* Source operand -> slot for an operation of type t. */
static int src_slot(cctx *x, const opnd *o, int t) {
    switch (o->kind) {
    case O_REG: return o->slot;
    case O_NUM: return cslot(x->c, num_bits(&o->num, t));
    case O_SREG:
        if (o->sreg > SR_COUNT) {
            size_t base = shared_var_off(x->c, NULL, "%reserved_smem", 14, RESERVED_SMEM, 16);
            return cslot(x->c, o->sreg == SR_COUNT + 3 ? RESERVED_SMEM : base + (o->sreg == SR_COUNT + 2 ? RESERVED_SMEM : 0));
        }
        if (o->sreg >= SR_COUNT) return cslot(x->c, 0);
        if (o->sreg >= SR_FIRST_DYNAMIC) return fail_ins(x, "dynamic special register as operand");
        return sreg_slot(x->c, o->sreg);
    case O_SYM: {
        int64_t v;
        int sp;
        if (sym_address(x, o->name, &v, &sp)) return fail_ins(x, "unknown symbol");
        if (sp == SP_SHARED && v < 0) return dyn_shared_slot(x->c);
        return cslot(x->c, (uint64_t)(v + o->off));
    }
    default: return fail_ins(x, "bad source operand");
    }
}

static int dst_slot(cctx *x, const opnd *o) {
    if (o->kind == O_REG) return o->slot;
    if (o->kind == O_SINK) {
        if (x->c->scratch_slot < 0) x->c->scratch_slot = new_slots(x->c, 1);
        return x->c->scratch_slot;
    }
    return fail_ins(x, "bad destination operand");
}

/* Memory operand: fills in->a (base slot), in->imm (offset), in->space. */
static int addr_operand(cctx *x, const opnd *o, ptx_ins *in, int declared_space, int has_space) {
    if (o->kind != O_ADDR) return fail_ins(x, "expected [address]");
    in->imm = o->off;
    int sp = has_space ? declared_space : SP_GENERIC;
    if (o->name) {
        int64_t v;
        int ssp;
        if (sym_address(x, o->name, &v, &ssp)) return fail_ins(x, "unknown symbol in address");
        if (ssp == SP_SHARED && v < 0) in->a = dyn_shared_slot(x->c);
        else in->a = cslot(x->c, (uint64_t)v);
        if (!has_space || sp == SP_KPARAM) sp = ssp;
        else if (ssp == SP_LOCAL && sp == SP_KPARAM) sp = SP_LOCAL;
        if (!has_space && (ssp == SP_SHARED || ssp == SP_LOCAL || ssp == SP_KPARAM)) {
            /* generic access through a symbol of a windowed space */
            sp = ssp;
        }
    } else if (o->base_slot >= 0) {
        in->a = o->base_slot;
    } else {
        in->a = cslot(x->c, 0);
    }
    if (sp == SP_KPARAM && x->c->depth > 0 && o->name == NULL) sp = SP_LOCAL; /* param of an inlined func */
    in->space = (uint8_t)sp;
    return 0;
}

static size_t tsize(int t) {
    switch (t) {
    case T_U8: case T_S8: case T_PRED: return 1;
    case T_U16: case T_S16: case T_F16: case T_BF16: return 2;
    case T_U32: case T_S32: case T_F32: case T_F16X2: case T_BF16X2: return 4;
    case T_U64: case T_S64: case T_F64: return 8;
    default: return 0;
    }
}

static int compile_body(kc *c, frame *fr, int bstart, int bend);

/* 1 if the instruction's name contains w followed by '.', ':' or its end. */
static int has_word(const tok *optok, const char *w) {
    size_t n = strlen(w);
    for (size_t k = 0; k + n <= optok->n; k++)
        if (!memcmp(optok->s + k, w, n) && (k + n == optok->n || optok->s[k + n] == '.' || optok->s[k + n] == ':'))
            return 1;
    return 0;
}

/* mbarrier.{init,inval,arrive{.expect_tx,.noComplete},arrive_drop{...},expect_tx,complete_tx,
 * test_wait{.parity},try_wait{.parity},pending_count} and cp.async.mbarrier.arrive{.noinc}, on a
 * 64-bit barrier object in shared memory (or generic addressing into it). The object's encoding is
 * the executor's (OP_MBAR); the ISA leaves it opaque. try_wait is test_wait: a try_wait may return
 * false before its time limit, and the waiting loop lets the other warps run. */
static int compile_mbarrier(cctx *x, const tok *optok, const opnd *ops, int nops, int is_cp) {
    kc *c = x->c;
    int shared = has_word(optok, ".shared") || has_word(optok, ".shared::cta");
    if (has_word(optok, ".shared::cluster")) shared = 1; /* one CTA per cluster here */
    int sub, addr_at = 1, d = -1, b = -1, cc = -1;
    unsigned flags = 0;
    if (is_cp) {
        sub = has_word(optok, ".noinc") ? MB_CPASYNC_ARRIVE_NOINC : MB_CPASYNC_ARRIVE;
        addr_at = 0;
        if (nops != 1) return fail_ins(x, "cp.async.mbarrier.arrive form");
    } else if (has_word(optok, ".init")) {
        sub = MB_INIT; addr_at = 0;
        if (nops != 2) return fail_ins(x, "mbarrier.init form");
        b = src_slot(x, &ops[1], T_U32);
    } else if (has_word(optok, ".inval")) {
        sub = MB_INVAL; addr_at = 0;
        if (nops != 1) return fail_ins(x, "mbarrier.inval form");
    } else if (has_word(optok, ".pending_count")) {
        if (nops != 2) return fail_ins(x, "mbarrier.pending_count form");
        d = dst_slot(x, &ops[0]);
        b = src_slot(x, &ops[1], T_U64);
        if (x->failed) return -1;
        ptx_ins *p = emit(c, OP_MBAR, x->line);
        if (!p) return -1;
        p->sub = MB_PENDING; p->d = d; p->b = b; p->a = -1;
        return 0;
    } else if (has_word(optok, ".test_wait") || has_word(optok, ".try_wait")) {
        sub = has_word(optok, ".parity") ? MB_TEST_PARITY : MB_TEST_WAIT;
        if (nops != 3 && nops != 4) return fail_ins(x, "mbarrier wait form");
        d = dst_slot(x, &ops[0]);
        b = src_slot(x, &ops[2], sub == MB_TEST_PARITY ? T_U32 : T_U64);
    } else if (has_word(optok, ".arrive") || has_word(optok, ".arrive_drop")) {
        sub = has_word(optok, ".arrive_drop") ? MB_ARRIVE_DROP : MB_ARRIVE;
        if (nops != 2 && nops != 3) return fail_ins(x, "mbarrier.arrive form");
        d = dst_slot(x, &ops[0]);
        if (has_word(optok, ".expect_tx")) {
            if (nops != 3) return fail_ins(x, "mbarrier.arrive.expect_tx form");
            cc = src_slot(x, &ops[2], T_U32);
        } else if (nops == 3) {
            b = src_slot(x, &ops[2], T_U32);
        }
        if (has_word(optok, ".noComplete")) flags |= IF_SAT;
    } else if (has_word(optok, ".expect_tx") || has_word(optok, ".complete_tx")) {
        sub = has_word(optok, ".expect_tx") ? MB_EXPECT_TX : MB_COMPLETE_TX;
        addr_at = 0;
        if (nops != 2) return fail_ins(x, "mbarrier tx form");
        b = src_slot(x, &ops[1], T_U32);
    } else {
        return fail_ins(x, "unsupported mbarrier operation");
    }
    if (addr_at >= nops) return fail_ins(x, "mbarrier operands");
    ptx_ins tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (addr_operand(x, &ops[addr_at], &tmp, SP_SHARED, shared)) return -1;
    if (x->failed) return -1;
    if (tmp.space != SP_SHARED && tmp.space != SP_GENERIC) return fail_ins(x, "mbarrier outside shared memory");
    ptx_ins *p = emit(c, OP_MBAR, x->line);
    if (!p) return -1;
    p->sub = (uint8_t)sub; p->a = tmp.a; p->imm = tmp.imm; p->space = tmp.space;
    p->d = d; p->b = b; p->c = cc; p->flags = (uint8_t)flags; p->t = T_U64; p->esize = 8;
    return 0;
}

static int need(cctx *x, int nops, int want) {
    if (nops != want) return fail_ins(x, "wrong operand count");
    return 0;
}

static int t0(const mods *m) { return m->ntypes ? m->types[0] : T_NONE; }

/* Simple "op.type d, a[, b[, c]]" instructions. */
static int compile_alu(cctx *x, const mods *m, opnd *ops, int nops, int op, int nsrc) {
    if (need(x, nops, nsrc + 1)) return -1;
    ptx_ins in;
    memset(&in, 0, sizeof(in));
    int t = t0(m);
    int srct = t;
    if (op == OP_MUL_WIDE || op == OP_MAD_WIDE) srct = t;
    int d = dst_slot(x, &ops[0]);
    int a = src_slot(x, &ops[1], srct);
    int b = nsrc > 1 ? src_slot(x, &ops[2], op == OP_SHL || op == OP_SHR ? T_U32 : srct) : -1;
    int cc = nsrc > 2 ? src_slot(x, &ops[3], (op == OP_MAD_WIDE) ? (t == T_S32 || t == T_S16 ? T_S64 : T_U64) : srct) : -1;
    if (x->failed) return -1;
    ptx_ins *p = emit(x->c, op, x->line);
    if (!p) return -1;
    p->t = (uint8_t)t;
    p->d = d;
    p->a = a;
    p->b = b;
    p->c = cc;
    p->rm = (uint8_t)m->rm;
    p->flags = (uint8_t)m->flags;
    (void)in;
    return 0;
}

static int compile_call(cctx *x, const tok *t, int i, int end);

#define OPND_MAX 8

/* Appends the registers of a {vector} operand to the kernel's list table; returns its index. */
static int vec_list(cctx *x, const opnd *o, int want, int is_dst, int t) {
    kc *c = x->c;
    if (o->kind != O_VEC || o->nvec != want) return fail_ins(x, "fragment register count");
    int at = c->nlists;
    for (int k = 0; k < o->nvec; k++) {
        opnd e;
        memset(&e, 0, sizeof(e));
        e.kind = o->vk[k];
        e.slot = o->vslot[k];
        e.num = o->vnum[k];
        int s = is_dst ? dst_slot(x, &e) : src_slot(x, &e, t);
        VEC_PUSH(c->lists, c->nlists, c->caplists, s, c->oom = 1; return -1);
    }
    return at;
}

/* wmma.load/store/mma: m16n16k16 with f16/bf16 (f32/f16 accumulators) and s8/u8 (s32) inputs,
 * m16n16k8 with tf32 inputs (f32), m8n8k4 with f64. Fragment mapping: wmma_elem (ptx_internal.h).
 * Encoding: load/store: sub = matrix, t = element type (tf32 as T_F32), esize = element bytes, vec =
 * registers, bop = column-major memory, e = shape. mma: t = dtype, t2 = atype, esize = ctype, v[] =
 * register counts of d, a, b, c, imm = shape | 16 * (tf32 inputs) | 32 * satfinite. */
static int wmma_nregs(int t, int shape, int matrix) {
    unsigned R, C;
    wmma_dims(shape, matrix, &R, &C);
    unsigned n = R * C / 32, bytes = (unsigned)tsize(t);
    if (t == T_F16 && matrix < 2) return 8; /* the ISA's f16 A/B fragments: 8 .f16x2 (the last 4 unused here) */
    return t == T_F64 ? (int)n : (int)(n * bytes / 4);
}

static int compile_wmma(cctx *x, const tok *optok, opnd *ops, int nops) {
    kc *c = x->c;
    char words[16][24];
    int nw = 0;
    const char *s = optok->s, *end = optok->s + optok->n;
    while (s < end && nw < 16) {
        const char *q = memchr(s, '.', (size_t)(end - s));
        size_t n = (size_t)((q ? q : end) - s);
        if (n >= sizeof(words[0])) return fail_ins(x, "wmma form");
        memcpy(words[nw], s, n);
        words[nw][n] = 0;
        nw++;
        s = q ? q + 1 : end;
    }
    int kind = -1, matrix = -1, layout[2] = {0, 0}, nlay = 0, shape = -1, space = SP_GENERIC, has_space = 0;
    int types[4], ntypes = 0, tf32 = 0, satf = 0;
    for (int i = 1; i < nw; i++) {
        const char *w = words[i];
        if (!strcmp(w, "load")) kind = 0;
        else if (!strcmp(w, "store")) kind = 1;
        else if (!strcmp(w, "mma")) kind = 2;
        else if (!strcmp(w, "a") || !strcmp(w, "b") || !strcmp(w, "c") || !strcmp(w, "d")) matrix = w[0] == 'd' ? 2 : w[0] - 'a';
        else if (!strcmp(w, "row") || !strcmp(w, "col")) { if (nlay < 2) layout[nlay++] = w[0] == 'c'; }
        else if (!strcmp(w, "m16n16k16")) shape = WS_M16N16K16;
        else if (!strcmp(w, "m8n8k4")) shape = WS_M8N8K4;
        else if (!strcmp(w, "m16n16k8")) shape = WS_M16N16K8;
        else if (!strcmp(w, "global")) { space = SP_GLOBAL; has_space = 1; }
        else if (!strcmp(w, "shared") || !strcmp(w, "shared::cta")) { space = SP_SHARED; has_space = 1; }
        else if (!strcmp(w, "sync") || !strcmp(w, "aligned") || !strcmp(w, "rn")) continue;
        else if (!strcmp(w, "satfinite")) satf = 1;
        else {
            int t = !strcmp(w, "tf32") ? T_F32 : type_of_word(w, (int)strlen(w));
            if (!strcmp(w, "tf32")) tf32 = 1;
            if (t < 0 || ntypes >= 4) return fail_ins(x, "wmma shape or type");
            types[ntypes++] = t;
        }
    }
    if (shape < 0 || kind < 0 || ntypes < 1) return fail_ins(x, "wmma shape or type");
    if (kind < 2) {
        int t = types[0];
        if (kind == 0 && matrix < 0) return fail_ins(x, "wmma matrix");
        if (kind == 1) matrix = 2;
        int ok;
        if (shape == WS_M8N8K4) ok = t == T_F64;
        else if (shape == WS_M16N16K8) ok = matrix < 2 ? tf32 : t == T_F32;
        else ok = matrix < 2 ? (t == T_F16 || t == T_BF16 || t == T_S8 || t == T_U8)
                             : (t == T_F16 || t == T_F32 || t == T_S32);
        if (!ok || (nops != 2 && nops != 3)) return fail_ins(x, "wmma fragment type");
        int nregs = wmma_nregs(t, shape, matrix);
        const opnd *ao = kind == 0 ? &ops[1] : &ops[0];
        const opnd *vo = kind == 0 ? &ops[0] : &ops[1];
        ptx_ins tmp;
        memset(&tmp, 0, sizeof(tmp));
        if (addr_operand(x, ao, &tmp, space, has_space)) return -1;
        int list = vec_list(x, vo, nregs, kind == 0, t == T_F64 ? T_F64 : T_U32);
        unsigned R, C;
        wmma_dims(shape, matrix, &R, &C);
        int stride = nops == 3 ? src_slot(x, &ops[2], T_U32) : cslot(c, layout[0] ? R : C);
        if (x->failed || list < 0) return -1;
        ptx_ins *p = emit(c, kind == 0 ? OP_WMMA_LOAD : OP_WMMA_STORE, x->line);
        if (!p) return -1;
        p->a = tmp.a; p->imm = tmp.imm; p->space = tmp.space;
        p->b = stride; p->c = list; p->vec = (uint8_t)nregs;
        p->sub = (uint8_t)matrix; p->t = (uint8_t)t; p->bop = (uint8_t)layout[0];
        p->esize = (uint8_t)tsize(t);
        p->e = shape;
        return 0;
    }
    /* mma: .dtype.ctype (f16 inputs) or .dtype.atype.btype.ctype */
    int dt = types[0], at = ntypes == 4 ? types[1] : T_F16, ct = types[ntypes - 1];
    if (ntypes != 2 && ntypes != 4) return fail_ins(x, "wmma mma types");
    int ok;
    if (shape == WS_M8N8K4) ok = dt == T_F64 && at == T_F64 && ct == T_F64;
    else if (shape == WS_M16N16K8) ok = tf32 && dt == T_F32 && ct == T_F32;
    else if (at == T_S8 || at == T_U8) ok = dt == T_S32 && ct == T_S32;
    else ok = (at == T_F16 || at == T_BF16) && (dt == T_F32 || dt == T_F16) && (ct == T_F32 || ct == T_F16);
    if (!ok || (ntypes == 4 && (types[2] != at && !((at == T_S8 || at == T_U8) && (types[2] == T_S8 || types[2] == T_U8)))) ||
        nops != 4)
        return fail_ins(x, "wmma mma types");
    int bt = ntypes == 4 ? types[2] : at;
    int nd = wmma_nregs(dt, shape, 2), na = wmma_nregs(at, shape, 0), nb = wmma_nregs(bt, shape, 1), nc = wmma_nregs(ct, shape, 2);
    int ld = vec_list(x, &ops[0], nd, 1, T_U32);
    int la = vec_list(x, &ops[1], na, 0, at == T_F64 ? T_F64 : T_U32);
    int lb = vec_list(x, &ops[2], nb, 0, at == T_F64 ? T_F64 : T_U32);
    int lc = vec_list(x, &ops[3], nc, 0, ct == T_F32 || ct == T_F64 ? ct : T_U32);
    if (x->failed || ld < 0 || la < 0 || lb < 0 || lc < 0) return -1;
    ptx_ins *p = emit(c, OP_WMMA_MMA, x->line);
    if (!p) return -1;
    p->d = ld; p->a = la; p->b = lb; p->c = lc;
    p->t = (uint8_t)dt; p->t2 = (uint8_t)at; p->esize = (uint8_t)ct; p->space = (uint8_t)bt;
    p->v[0] = nd; p->v[1] = na; p->v[2] = nb; p->v[3] = nc;
    p->imm = shape | (tf32 ? 16 : 0) | (satf ? 32 : 0);
    p->e = cslot(c, 0xffffffffu); /* .sync.aligned: the whole warp takes part */
    p->wsync = 1;
    return 0;
}

/* mma.sync.aligned.m16n8k{8,16}.row.col.{f32,f16}.{f16,bf16}.{f16,bf16}.{f32,f16} and
 * ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: fragment layouts as the PTX ISA defines. */
static int compile_mma(cctx *x, const tok *optok, opnd *ops, int nops, int is_ldmatrix) {
    kc *c = x->c;
    char w[24];
    int k16 = -1, num = 0, trans = 0, ntypes = 0, types[4], rowcol = 0, space = SP_GENERIC, has_space = 0;
    const char *s = optok->s, *end = optok->s + optok->n;
    while (s < end) {
        const char *q = memchr(s, '.', (size_t)(end - s));
        size_t n = (size_t)((q ? q : end) - s);
        if (n >= sizeof(w)) return fail_ins(x, "mma form");
        memcpy(w, s, n);
        w[n] = 0;
        s = q ? q + 1 : end;
        if (!strcmp(w, "mma") || !strcmp(w, "ldmatrix") || !strcmp(w, "sync") || !strcmp(w, "aligned") || !strcmp(w, "m8n8")) continue;
        if (!strcmp(w, "m16n8k16")) k16 = 1;
        else if (!strcmp(w, "m16n8k8")) k16 = 0;
        else if (!strcmp(w, "row") || !strcmp(w, "col")) rowcol++;
        else if (!strcmp(w, "x1") || !strcmp(w, "x2") || !strcmp(w, "x4")) num = w[1] - '0';
        else if (!strcmp(w, "trans")) trans = 1;
        else if (!strcmp(w, "shared") || !strcmp(w, "shared::cta")) { space = SP_SHARED; has_space = 1; }
        else {
            int t = type_of_word(w, (int)n);
            if (t < 0 || ntypes >= 4) return fail_ins(x, "mma shape or type");
            types[ntypes++] = t;
        }
    }
    if (is_ldmatrix) {
        if (!num || nops != 2 || ntypes != 1 || types[0] != T_U16) return fail_ins(x, "ldmatrix form");
        ptx_ins tmp;
        memset(&tmp, 0, sizeof(tmp));
        if (addr_operand(x, &ops[1], &tmp, space, has_space)) return -1;
        int list;
        if (ops[0].kind == O_VEC) list = vec_list(x, &ops[0], num, 1, T_U32);
        else {
            if (num != 1) return fail_ins(x, "ldmatrix registers");
            list = c->nlists;
            int d = dst_slot(x, &ops[0]);
            VEC_PUSH(c->lists, c->nlists, c->caplists, d, c->oom = 1; return -1);
        }
        if (x->failed || list < 0) return -1;
        ptx_ins *p = emit(c, OP_LDMATRIX, x->line);
        if (!p) return -1;
        p->a = tmp.a; p->imm = tmp.imm; p->space = tmp.space; p->c = list; p->vec = (uint8_t)num; p->bop = (uint8_t)trans;
        p->e = cslot(c, 0xffffffffu);
        p->wsync = 1;
        return 0;
    }
    if (k16 < 0 || rowcol != 2 || ntypes != 4 || nops != 4) return fail_ins(x, "mma shape or type");
    int dt = types[0], at = types[1], ct = types[3];
    if ((at != T_F16 && at != T_BF16) || types[2] != at || (dt != T_F32 && dt != T_F16) || (ct != T_F32 && ct != T_F16) ||
        (at == T_BF16 && dt != T_F32))
        return fail_ins(x, "mma shape or type");
    int nd = dt == T_F32 ? 4 : 2, na = k16 ? 4 : 2, nb = k16 ? 2 : 1, nc = ct == T_F32 ? 4 : 2;
    int ld = vec_list(x, &ops[0], nd, 1, T_U32);
    int la = vec_list(x, &ops[1], na, 0, T_U32);
    int lb = vec_list(x, &ops[2], nb, 0, T_U32);
    int lc = vec_list(x, &ops[3], nc, 0, ct == T_F32 ? T_F32 : T_U32);
    if (x->failed || ld < 0 || la < 0 || lb < 0 || lc < 0) return -1;
    ptx_ins *p = emit(c, OP_MMA, x->line);
    if (!p) return -1;
    p->d = ld; p->a = la; p->b = lb; p->c = lc;
    p->t = (uint8_t)dt; p->t2 = (uint8_t)at; p->esize = (uint8_t)ct; p->sub = (uint8_t)k16;
    p->e = cslot(c, 0xffffffffu);
    p->wsync = 1;
    return 0;
}

/* SIMD video instructions vadd4/vsub4/vabsdiff4/vmin4/vmax4 and their 2-way forms:
 * vop.dtype.atype.btype{.sat} d, a, b, c (merge: every byte/half of d is the result) and
 * vop.dtype.atype.btype.add d, a, b, c (d = c + sum of the per-element results). Operand
 * selectors and masks are not supported (they fail as unknown registers). */
static int compile_vsimd(cctx *x, const tok *optok, opnd *ops, int nops, int op, int lanes) {
    kc *c = x->c;
    int types[3], ntypes = 0, sat = 0, add = 0;
    const char *s = memchr(optok->s, '.', optok->n), *end = optok->s + optok->n;
    while (s && s < end) {
        const char *w = s + 1, *q = memchr(w, '.', (size_t)(end - w));
        int n = (int)((q ? q : end) - w);
        s = q;
        int t = type_of_word(w, n);
        if (t >= 0 && ntypes < 3) types[ntypes++] = t;
        else if (n == 3 && !memcmp(w, "sat", 3)) sat = 1;
        else if (n == 3 && !memcmp(w, "add", 3)) add = 1;
        else return fail_ins(x, "video instruction modifier");
    }
    if (ntypes != 3 || nops != 4 || (sat && add)) return fail_ins(x, "video instruction form");
    for (int i = 0; i < 3; i++)
        if (types[i] != T_U32 && types[i] != T_S32) return fail_ins(x, "video instruction type");
    int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], T_U32), b = src_slot(x, &ops[2], T_U32), cc = src_slot(x, &ops[3], T_U32);
    ptx_ins *p = x->failed ? NULL : emit(c, OP_VSIMD, x->line);
    if (!p) return -1;
    p->d = d; p->a = a; p->b = b; p->c = cc;
    p->sub = (uint8_t)op; p->vec = (uint8_t)lanes;
    p->t = (uint8_t)types[0]; p->t2 = (uint8_t)types[1]; p->esize = (uint8_t)types[2];
    p->bop = (uint8_t)add;
    if (sat) p->flags |= IF_SAT;
    return 0;
}

/* Word w (without its dot) among optok's modifiers. */
static int tex_word(const tok *optok, const char *w) {
    char buf[32];
    snprintf(buf, sizeof(buf), ".%s", w);
    return has_word(optok, buf);
}

/* One element of a {vector} operand as a plain operand. */
static opnd vec_elem(const opnd *v, int k) {
    opnd e;
    memset(&e, 0, sizeof(e));
    e.kind = v->vk[k];
    e.slot = v->vslot[k];
    e.num = v->vnum[k];
    e.base_slot = -1;
    return e;
}

/* Texture and surface instructions (ptx_texture.h does the work at run time):
 *   tex{.level,.grad}.geom.v4.dtype.ctype d, [h, {c}]{, lod | , {dPdx}, {dPdy}}
 *   tld4.comp.2d.v4.dtype.f32 d, [h, {c}]      txq{.level}.query.b32 d, [h]{, lod}     suq.query.b32 d, [h]
 *   suld.b.geom{.vN}.btype.mode d, [h, {c}]     sust.{b,p}.geom{.vN}.btype.mode [h, {c}], s
 * geom: 1d 2d 3d a1d a2d cube acube (layer first in the coordinate vector of the a* forms). Encoding: a =
 * handle slot, sub = geometry, c = list index of the coordinates (esize = their count, t2 = their type),
 * v[] = destination/source registers (vec of them), t = result/element type; tex: bop = 0 plain, 1 level
 * (e = lod slot), 2 grad (imm = list index of dPdx then dPdy, 3 each); tld4: rm = component; suld/sust: rm =
 * out-of-range mode, esize = element bytes, c = coordinates (count in t2), bop = 1 for sust.p; txq/suq: sub =
 * query, b = lod slot or -1, bop = 1 for suq. */
static int compile_texinst(cctx *x, const mods *m, const tok *optok, const oprange *rng, int nops) {
    kc *c = x->c;
    const tok *t = x->t;
    int is_tex = mbase(m, "tex"), is_tld4 = mbase(m, "tld4"), is_suld = mbase(m, "suld"), is_sust = mbase(m, "sust");
    int is_txq = mbase(m, "txq"), is_suq = mbase(m, "suq"), is_sured = mbase(m, "sured");
    static const char *const geoms[] = {"1d", "2d", "3d", "a1d", "a2d", "cube", "acube"};
    int geom = -1;
    for (int k = 0; k < 7; k++)
        if (tex_word(optok, geoms[k])) geom = k;
    if (is_txq || is_suq) {
        static const char *const qs[] = {"width", "height", "depth", "channel_data_type", "channel_order",
                                         "normalized_coords", "filter_mode", "addr_mode_0", "addr_mode_1",
                                         "addr_mode_2", "num_mipmap_levels", "num_samples", "array_size"};
        int q = -1;
        for (int k = 0; k < 13; k++)
            if (tex_word(optok, qs[k])) q = k;
        if (q < 0 || nops < 2) return fail_ins(x, "txq/suq query");
        opnd d, h;
        if (parse_operand(c, t, rng[0], &d) || parse_operand(c, t, rng[1], &h) || h.kind != O_ADDR || h.base_slot < 0)
            return fail_ins(x, "txq/suq operands (a texture object register)");
        int lod = -1;
        if (nops >= 3) {
            opnd l;
            if (parse_operand(c, t, rng[2], &l)) return fail_ins(x, "txq lod operand");
            lod = src_slot(x, &l, T_S32);
        }
        int ds = dst_slot(x, &d);
        if (x->failed) return -1;
        ptx_ins *p = emit(c, OP_TXQ, x->line);
        if (!p) return -1;
        p->d = ds; p->a = h.base_slot; p->b = lod; p->sub = (uint8_t)q; p->bop = (uint8_t)is_suq;
        return 0;
    }
    if (geom < 0) return fail_ins(x, "texture geometry");
    if (is_tld4 && geom != 1 && geom != 4) return fail_ins(x, "tld4 geometry");
    if ((is_suld || is_sust) && geom >= 5) return fail_ins(x, "surface geometry");
    if (is_sured && geom != 0 && geom != 1 && geom != 2) return fail_ins(x, "sured geometry (.1d, .2d or .3d)");
    if (nops < 2) return fail_ins(x, "operand count");
    /* the [handle, {coords}] operand */
    oprange ar = (is_sust || is_sured) ? rng[0] : rng[1];
    int i = ar.a;
    if (!tp(&t[i], '[') || t[i + 1].k != TK_ID || !tp(&t[i + 2], ',')) return fail_ins(x, "[handle, {coordinates}]");
    int hslot = reg_lookup(c, t[i + 1].s, (int)t[i + 1].n);
    if (hslot < 0) return fail_ins(x, "texture handle must be a register (texture references are not supported)");
    oprange cr = {i + 3, ar.b - 1};
    if (!tp(&t[ar.b - 1], ']')) return fail_ins(x, "[handle, {coordinates}]");
    opnd cv;
    if (parse_operand(c, t, cr, &cv)) return fail_ins(x, "coordinates");
    if (cv.kind != O_VEC) { opnd one = cv; memset(&cv, 0, sizeof(cv)); cv.kind = O_VEC; cv.nvec = 1; cv.vk[0] = one.kind; cv.vslot[0] = one.slot; cv.vnum[0] = one.num; }
    static const int need_co[] = {1, 2, 4, 2, 4, 4, 4};
    if (cv.nvec < need_co[geom] - (geom == 2 || geom == 4 || geom == 5 ? 1 : 0)) return fail_ins(x, "coordinate count");
    int ctype = (is_suld || is_sust || is_sured) ? T_S32 : (m->ntypes >= 2 ? m->types[1] : T_F32);
    int clist = c->nlists;
    for (int k = 0; k < cv.nvec; k++) {
        opnd e = vec_elem(&cv, k);
        /* the layer of .a1d/.a2d/.acube is an integer even when the coordinates are floats */
        int ty = (k == 0 && (geom == 3 || geom == 4 || geom == 6)) ? T_S32 : ctype;
        int s = src_slot(x, &e, ty);
        VEC_PUSH(c->lists, c->nlists, c->caplists, s, c->oom = 1; return -1);
    }
    /* data operand */
    opnd dv;
    if (parse_operand(c, t, (is_sust || is_sured) ? rng[1] : rng[0], &dv)) return fail_ins(x, "data operand");
    if (dv.kind != O_VEC) { opnd one = dv; memset(&dv, 0, sizeof(dv)); dv.kind = O_VEC; dv.nvec = 1; dv.vk[0] = one.kind; dv.vslot[0] = one.slot; dv.vnum[0] = one.num; }
    int tt = m->ntypes ? m->types[0] : T_NONE;
    if (is_tex || is_tld4) {
        if (dv.nvec != 4 || (tt != T_F32 && tt != T_S32 && tt != T_U32)) return fail_ins(x, "tex result (.v4 .f32/.s32/.u32)");
        if (ctype != T_F32 && ctype != T_S32) return fail_ins(x, "tex coordinate type");
        int mode = tex_word(optok, "level") ? 1 : tex_word(optok, "grad") ? 2 : 0;
        int lod = -1, glist = -1;
        if (mode == 1) {
            opnd l;
            if (nops < 3 || parse_operand(c, t, rng[2], &l)) return fail_ins(x, "tex.level lod");
            lod = src_slot(x, &l, T_F32);
        } else if (mode == 2) {
            opnd gx, gy;
            if (nops < 4 || parse_operand(c, t, rng[2], &gx) || parse_operand(c, t, rng[3], &gy) || gx.kind != O_VEC ||
                gy.kind != O_VEC)
                return fail_ins(x, "tex.grad gradients");
            glist = c->nlists;
            for (int g = 0; g < 2; g++) {
                const opnd *go = g ? &gy : &gx;
                for (int k = 0; k < 3; k++) {
                    int s;
                    if (k < go->nvec) { opnd e = vec_elem(go, k); s = src_slot(x, &e, T_F32); }
                    else s = cslot(c, 0);
                    VEC_PUSH(c->lists, c->nlists, c->caplists, s, c->oom = 1; return -1);
                }
            }
        }
        /* optional texel offset e (.s32 per sampled dimension, added to the texel coordinates) and depth-compare
         * value f (.f32 scalar): a vector, or for .1d/.a1d a scalar, is e; a second operand, or a scalar after
         * 2D/3D coordinates, is f. CUDA's texture descriptor has no depth-compare function, so f is refused. */
        int extra = (mode == 1 ? 3 : mode == 2 ? 4 : 2), olist = -1;
        if (nops > extra) {
            opnd e;
            if (parse_operand(c, t, rng[extra], &e)) return fail_ins(x, "tex offset operand");
            int dims_o = (geom == 0 || geom == 3) ? 1 : geom == 2 ? 3 : 2;
            if (geom == 5 || geom == 6) return fail_ins(x, "tex texel offset on a cubemap (the ISA has none)");
            if (e.kind != O_VEC && dims_o != 1)
                return fail_ins(x, "tex depth-compare operand (not emulated: CUDA sets no depth-compare function)");
            if (e.kind != O_VEC) { opnd one = e; memset(&e, 0, sizeof(e)); e.kind = O_VEC; e.nvec = 1; e.vk[0] = one.kind; e.vslot[0] = one.slot; e.vnum[0] = one.num; }
            if (e.nvec < dims_o) return fail_ins(x, "tex offset vector (one .s32 per dimension)");
            if (nops > extra + 1)
                return fail_ins(x, "tex depth-compare operand (not emulated: CUDA sets no depth-compare function)");
            olist = c->nlists;
            for (int k = 0; k < 3; k++) {
                int s;
                if (k < dims_o) { opnd el = vec_elem(&e, k); s = src_slot(x, &el, T_S32); }
                else s = cslot(c, 0);
                VEC_PUSH(c->lists, c->nlists, c->caplists, s, c->oom = 1; return -1);
            }
        }
        int comp = 0;
        if (is_tld4) comp = tex_word(optok, "g") ? 1 : tex_word(optok, "b") ? 2 : tex_word(optok, "a") ? 3 : 0;
        int ds[4];
        for (int k = 0; k < 4; k++) { opnd e = vec_elem(&dv, k); ds[k] = dst_slot(x, &e); }
        if (x->failed) return -1;
        ptx_ins *p = emit(c, is_tld4 ? OP_TLD4 : OP_TEX, x->line);
        if (!p) return -1;
        p->a = hslot; p->sub = (uint8_t)geom; p->c = clist; p->esize = (uint8_t)cv.nvec; p->t = (uint8_t)tt;
        p->t2 = (uint8_t)ctype; p->bop = (uint8_t)mode; p->e = lod; p->imm = glist; p->rm = (uint8_t)comp; p->vec = 4;
        p->b = olist;
        for (int k = 0; k < 4; k++) p->v[k] = ds[k];
        return 0;
    }
    if (is_sured) {
        /* sured.b.op / sured.p.op: the ISA's op/type pairs (.b: add .u32 .s32 .u64; min/max .u32 .s32 .u64 .s64;
         * and/or .b32. .p: .b32 any op, .b64 min/max only, signedness from the surface format) */
        int is_p = tex_word(optok, "p");
        if (!is_p && !tex_word(optok, "b")) return fail_ins(x, "sured form (.b or .p)");
        static const char *const rops[] = {"add", "min", "max", "and", "or"};
        static const int atops[] = {AT_ADD, AT_MIN, AT_MAX, AT_AND, AT_OR};
        int op = -1;
        for (int k = 0; k < 5; k++)
            if (tex_word(optok, rops[k])) op = atops[k];
        /* .b32/.b64 decode to .u32/.u64: tell them apart by the written word */
        int b32 = tex_word(optok, "b32"), b64 = tex_word(optok, "b64"), u32 = tex_word(optok, "u32"),
            s32 = tex_word(optok, "s32"), u64 = tex_word(optok, "u64"), s64 = tex_word(optok, "s64"), ok;
        if (b32 + b64 + u32 + s32 + u64 + s64 != 1)
            ok = 0;
        else if (is_p)
            ok = op >= 0 && (b32 || (b64 && (op == AT_MIN || op == AT_MAX)));
        else if (op == AT_ADD)
            ok = u32 || s32 || u64;
        else if (op == AT_MIN || op == AT_MAX)
            ok = u32 || s32 || u64 || s64;
        else
            ok = op >= 0 && b32;
        if (!ok) return fail_ins(x, "sured operation/type (not a pair the PTX ISA allows)");
        if (dv.nvec != 1) return fail_ins(x, "sured source (a scalar)");
        opnd e = vec_elem(&dv, 0);
        int vs = src_slot(x, &e, tt);
        if (x->failed) return -1;
        ptx_ins *p = emit(c, OP_SURED, x->line);
        if (!p) return -1;
        p->a = hslot; p->sub = (uint8_t)geom; p->c = clist; p->t2 = (uint8_t)cv.nvec; p->t = (uint8_t)tt;
        p->esize = (uint8_t)tsize(tt); p->vec = 1; p->rm = (uint8_t)(tex_word(optok, "clamp") ? 1 : tex_word(optok, "zero") ? 2 : 0);
        p->bop = (uint8_t)is_p; p->imm = op; p->v[0] = vs;
        return 0;
    }
    /* suld.b / sust.b / sust.p */
    if (!tex_word(optok, "b") && !(is_sust && tex_word(optok, "p"))) return fail_ins(x, "surface access (.b or .p)");
    /* out-of-range mode: .trap (the default), .clamp or .zero (PTXS_* order) */
    int smode = tex_word(optok, "clamp") ? 1 : tex_word(optok, "zero") ? 2 : 0;
    size_t es = tsize(tt);
    if (!es || dv.nvec > 4 || dv.nvec != m->vec || (m->vec == 1 && dv.nvec != 1)) return fail_ins(x, "surface data type/vector");
    int vs[4];
    for (int k = 0; k < dv.nvec; k++) {
        opnd e = vec_elem(&dv, k);
        vs[k] = is_sust ? src_slot(x, &e, tt) : dst_slot(x, &e);
    }
    if (x->failed) return -1;
    ptx_ins *p = emit(c, is_sust ? OP_SUST : OP_SULD, x->line);
    if (!p) return -1;
    p->a = hslot; p->sub = (uint8_t)geom; p->c = clist; p->t2 = (uint8_t)cv.nvec; p->t = (uint8_t)tt;
    p->esize = (uint8_t)es; p->vec = (uint8_t)dv.nvec; p->rm = (uint8_t)smode; p->bop = (uint8_t)(is_sust && tex_word(optok, "p"));
    for (int k = 0; k < dv.nvec; k++) p->v[k] = vs[k];
    return 0;
}

static int compile_instr(cctx *x, int i, int end, int guard, int gneg) {
    kc *c = x->c;
    const tok *t = x->t;
    const tok *optok = &t[i];
    x->optok = optok;
    x->line = optok->line;
    x->failed = 0;
    mods m;
    parse_mods(optok, &m);
    if (mbase(&m, "call")) {
        int n0 = c->ncode;
        int r = compile_call(x, t, i + 1, end);
        if (guard >= 0 && c->ncode > n0) {
            /* a predicated call: branch around the inlined body */
            return fail_ins(x, "predicated call");
        }
        return r;
    }
    /* split operands */
    oprange rng[OPND_MAX];
    int nops = 0;
    int depth = 0, st = i + 1;
    for (int j = i + 1; j <= end; j++) {
        if (j == end || (depth == 0 && tp(&t[j], ','))) {
            if (j > st) {
                if (nops >= OPND_MAX) return fail_ins(x, "too many operands");
                rng[nops].a = st;
                rng[nops].b = j;
                nops++;
            }
            st = j + 1;
            continue;
        }
        if (tp(&t[j], '[') || tp(&t[j], '{') || tp(&t[j], '(')) depth++;
        if (tp(&t[j], ']') || tp(&t[j], '}') || tp(&t[j], ')')) depth--;
    }
    opnd ops[OPND_MAX];
    int n0 = c->ncode;
    int r = 0;
    if (mbase(&m, "tex") || mbase(&m, "tld4") || mbase(&m, "suld") || mbase(&m, "sust") || mbase(&m, "txq") ||
        mbase(&m, "suq") || mbase(&m, "sured")) {
        r = compile_texinst(x, &m, optok, rng, nops);
        goto done;
    }
    for (int k = 0; k < nops; k++)
        if (parse_operand(c, t, rng[k], &ops[k])) return fail_ins(x, "cannot parse operand");
    {
        static const char *const vops[] = {"vadd", "vsub", "vabsdiff", "vmin", "vmax"};
        for (int k = 0; k < 5; k++) {
            int bl = (int)strlen(vops[k]);
            if (m.blen == bl + 1 && !memcmp(m.base, vops[k], (size_t)bl) && (m.base[bl] == '4' || m.base[bl] == '2')) {
                r = compile_vsimd(x, optok, ops, nops, k, m.base[bl] - '0');
                goto done;
            }
        }
    }
    if (mbase(&m, "mma") || mbase(&m, "ldmatrix")) {
        r = compile_mma(x, optok, ops, nops, mbase(&m, "ldmatrix"));
        goto done;
    }
    if (mbase(&m, "wmma")) {
        r = compile_wmma(x, optok, ops, nops);
        goto done;
    }
    if (mbase(&m, "cvt") && has_word(optok, ".tf32")) {
        /* cvt.{rna,rn,rz}{.satfinite}{.relu}.tf32.f32 d, a (tf32 kept in a 32-bit register) */
        if (need(x, nops, 2)) return -1;
        int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], T_F32);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_CVT_TF32, x->line);
        if (!p) return -1;
        p->d = d; p->a = a; p->t = T_U32;
        p->rm = (uint8_t)(has_word(optok, ".rn") ? RM_RN : has_word(optok, ".rz") ? RM_RZ : RM_NONE);
        if (has_word(optok, ".relu")) p->flags |= IF_RELU;
        goto done;
    }
    if (mbase(&m, "mbarrier") || (mbase(&m, "cp") && has_word(optok, ".mbarrier"))) {
        r = compile_mbarrier(x, optok, ops, nops, mbase(&m, "cp"));
        goto done;
    }
    if (mbase(&m, "griddepcontrol")) {
        /* Programmatic dependent launch. .wait: until the prerequisite grids have completed and their
         * memory is visible; .launch_dependents: dependents may be scheduled early. Launches on a
         * stream run here one after another, each after the previous one has completed, so the
         * wait is always already satisfied and the early start is never taken: both are no-ops. */
        if (nops != 0 || (has_word(optok, ".wait") == has_word(optok, ".launch_dependents")))
            return fail_ins(x, "griddepcontrol needs exactly one of .wait, .launch_dependents and no operands");
        emit(c, OP_NOP, x->line);
        goto done;
    }
    if (m.cache_hint && nops > 0) nops--; /* trailing cache-policy operand: no caches here */
    if (m.bad && !mbase(&m, "fence") && !mbase(&m, "membar") && !mbase(&m, "prefetch") && !mbase(&m, "prefetchu") &&
        !mbase(&m, "discard") && !mbase(&m, "applypriority") && !mbase(&m, "nanosleep") && !mbase(&m, "createpolicy") &&
        !mbase(&m, "testp")) { /* testp's operation word is its own modifier (below) */
        char buf[64];
        snprintf(buf, sizeof(buf), "unsupported modifier .%.*s", m.badlen, m.bad);
        return fail_ins(x, buf);
    }
    int tt = t0(&m);
    if (mbase(&m, "mov")) {
        if (need(x, nops, 2)) return -1;
        if ((ops[1].kind == O_VEC && ops[1].nvec > 4) || (ops[0].kind == O_VEC && ops[0].nvec > 4)) return fail_ins(x, "vector width");
        if (ops[1].kind == O_VEC) {
            ptx_ins *p = emit(c, OP_PACK, x->line);
            if (!p) return -1;
            p->d = dst_slot(x, &ops[0]);
            p->vec = (uint8_t)ops[1].nvec;
            p->esize = (uint8_t)(tsize(tt) / (size_t)ops[1].nvec);
            for (int k = 0; k < ops[1].nvec; k++) {
                opnd e = {0};
                e.kind = ops[1].vk[k];
                e.slot = ops[1].vslot[k];
                e.num = ops[1].vnum[k];
                p = &c->code[c->ncode - 1];
                int s = src_slot(x, &e, T_U64);
                c->code[n0].v[k] = s;
            }
        } else if (ops[0].kind == O_VEC) {
            ptx_ins *p = emit(c, OP_UNPACK, x->line);
            if (!p) return -1;
            p->vec = (uint8_t)ops[0].nvec;
            p->esize = (uint8_t)(tsize(tt) / (size_t)ops[0].nvec);
            int a = src_slot(x, &ops[1], tt);
            c->code[n0].a = a;
            for (int k = 0; k < ops[0].nvec; k++) {
                opnd e = {0};
                e.kind = ops[0].vk[k];
                e.slot = ops[0].vslot[k];
                int s = dst_slot(x, &e);
                c->code[n0].v[k] = s;
            }
        } else if (ops[1].kind == O_SREG && ops[1].sreg >= SR_FIRST_DYNAMIC && ops[1].sreg < SR_COUNT) {
            ptx_ins *p = emit(c, OP_SREG, x->line);
            if (!p) return -1;
            p->d = dst_slot(x, &ops[0]);
            p->sub = (uint8_t)ops[1].sreg;
            p->t = (uint8_t)tt;
        } else {
            int d = dst_slot(x, &ops[0]);
            int a = src_slot(x, &ops[1], tt);
            ptx_ins *p = emit(c, OP_MOV, x->line);
            if (!p) return -1;
            p->d = d;
            p->a = a;
            p->t = (uint8_t)tt;
        }
    } else if (mbase(&m, "add") || mbase(&m, "sub")) {
        int isadd = mbase(&m, "add");
        r = compile_alu(x, &m, ops, nops, isadd ? OP_ADD : OP_SUB, 2);
    } else if (mbase(&m, "addc") || mbase(&m, "subc")) {
        r = compile_alu(x, &m, ops, nops, mbase(&m, "addc") ? OP_ADD : OP_SUB, 2);
        if (!r) c->code[c->ncode - 1].flags |= IF_USE_CC;
    } else if (mbase(&m, "mul")) {
        int op = is_float_t(tt) || tt == T_F16X2 || tt == T_BF16X2 ? OP_MUL_LO : m.hi ? OP_MUL_HI : m.wide ? OP_MUL_WIDE : OP_MUL_LO;
        r = compile_alu(x, &m, ops, nops, op, 2);
    } else if (mbase(&m, "mad") || mbase(&m, "fma") || mbase(&m, "madc")) {
        int fl = is_float_t(tt) || tt == T_F16X2 || tt == T_BF16X2;
        int op = fl ? OP_FMA : m.hi ? OP_MAD_HI : m.wide ? OP_MAD_WIDE : OP_MAD_LO;
        r = compile_alu(x, &m, ops, nops, op, 3);
        if (!r && mbase(&m, "madc")) c->code[c->ncode - 1].flags |= IF_USE_CC;
    } else if (mbase(&m, "mul24") || mbase(&m, "mad24")) {
        if (m.hi) return fail_ins(x, "mul24.hi");
        r = compile_alu(x, &m, ops, nops, mbase(&m, "mul24") ? OP_MUL24_LO : OP_MAD24_LO, mbase(&m, "mul24") ? 2 : 3);
    } else if (mbase(&m, "sad")) {
        r = compile_alu(x, &m, ops, nops, OP_SAD, 3);
    } else if (mbase(&m, "div") || mbase(&m, "rem") || mbase(&m, "min") || mbase(&m, "max") ||
               mbase(&m, "and") || mbase(&m, "or") || mbase(&m, "xor") || mbase(&m, "copysign")) {
        int op = mbase(&m, "div") ? OP_DIV : mbase(&m, "rem") ? OP_REM : mbase(&m, "min") ? OP_MIN :
                 mbase(&m, "max") ? OP_MAX : mbase(&m, "and") ? OP_AND : mbase(&m, "or") ? OP_OR :
                 mbase(&m, "xor") ? OP_XOR : OP_COPYSIGN;
        if ((op == OP_MIN || op == OP_MAX) && nops == 4) return fail_ins(x, "three-input min/max");
        r = compile_alu(x, &m, ops, nops, op, 2);
        if (!r && m.relu) c->code[c->ncode - 1].flags |= IF_RELU;
        if (!r && op == OP_DIV && m.full) c->code[c->ncode - 1].flags |= IF_APPROX;
    } else if (mbase(&m, "shl") || mbase(&m, "shr")) {
        r = compile_alu(x, &m, ops, nops, mbase(&m, "shl") ? OP_SHL : OP_SHR, 2);
    } else if (mbase(&m, "abs") || mbase(&m, "neg") || mbase(&m, "not") || mbase(&m, "cnot") ||
               mbase(&m, "popc") || mbase(&m, "clz") || mbase(&m, "brev") || mbase(&m, "rcp") ||
               mbase(&m, "sqrt") || mbase(&m, "rsqrt") || mbase(&m, "sin") || mbase(&m, "cos") ||
               mbase(&m, "ex2") || mbase(&m, "lg2") || mbase(&m, "tanh") || mbase(&m, "bfind")) {
        static const struct { const char *n; int op; } u[] = {
            {"abs", OP_ABS}, {"neg", OP_NEG}, {"not", OP_NOT}, {"cnot", OP_CNOT}, {"popc", OP_POPC},
            {"clz", OP_CLZ}, {"brev", OP_BREV}, {"rcp", OP_RCP}, {"sqrt", OP_SQRT}, {"rsqrt", OP_RSQRT},
            {"sin", OP_SIN}, {"cos", OP_COS}, {"ex2", OP_EX2}, {"lg2", OP_LG2}, {"tanh", OP_TANH}, {"bfind", OP_BFIND}};
        int op = OP_NOP;
        for (size_t k = 0; k < sizeof(u) / sizeof(u[0]); k++) if (mbase(&m, u[k].n)) op = u[k].op;
        r = compile_alu(x, &m, ops, nops, op, 1);
        if (!r && op == OP_BFIND && m.shiftamt) c->code[c->ncode - 1].sub = 1;
    } else if (mbase(&m, "bfe") || mbase(&m, "prmt") || mbase(&m, "dp4a") || mbase(&m, "dp2a")) {
        int op = mbase(&m, "bfe") ? OP_BFE : mbase(&m, "prmt") ? OP_PRMT : mbase(&m, "dp4a") ? OP_DP4A : OP_DP2A;
        if (op == OP_PRMT && (m.f4e || m.b4e || m.ecl || m.ecr || m.rc8 || m.rc16)) return fail_ins(x, "prmt mode");
        if (op == OP_BFE) {
            if (need(x, nops, 4)) return -1;
            int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], tt), b = src_slot(x, &ops[2], T_U32), cc = src_slot(x, &ops[3], T_U32);
            ptx_ins *p = x->failed ? NULL : emit(c, op, x->line);
            if (!p) return -1;
            p->t = (uint8_t)tt; p->d = d; p->a = a; p->b = b; p->c = cc;
        } else {
            r = compile_alu(x, &m, ops, nops, op, 3);
            if (!r && (op == OP_DP4A || op == OP_DP2A)) {
                c->code[c->ncode - 1].t2 = (uint8_t)(m.ntypes > 1 ? m.types[1] : tt);
                c->code[c->ncode - 1].sub = (uint8_t)(m.hi ? 1 : 0);
            }
        }
    } else if (mbase(&m, "bfi")) {
        if (need(x, nops, 5)) return -1;
        int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], tt), b = src_slot(x, &ops[2], tt);
        int cc = src_slot(x, &ops[3], T_U32), e = src_slot(x, &ops[4], T_U32);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_BFI, x->line);
        if (!p) return -1;
        p->t = (uint8_t)tt; p->d = d; p->a = a; p->b = b; p->c = cc; p->e = e;
    } else if (mbase(&m, "lop3")) {
        if (need(x, nops, 5) || ops[4].kind != O_NUM) return fail_ins(x, "lop3 operands");
        r = compile_alu(x, &m, ops, 4, OP_LOP3, 3);
        if (!r) c->code[c->ncode - 1].imm = ops[4].num.i & 0xff;
    } else if (mbase(&m, "bmsk") || mbase(&m, "szext")) {
        int bm = mbase(&m, "bmsk");
        if (need(x, nops, 3)) return -1;
        int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], T_U32), b = src_slot(x, &ops[2], T_U32);
        ptx_ins *p = x->failed ? NULL : emit(c, bm ? OP_BMSK : OP_SZEXT, x->line);
        if (!p) return -1;
        p->t = (uint8_t)tt; p->d = d; p->a = a; p->b = b;
        if (m.clamp) p->flags |= IF_SHIFT_CLAMP;
    } else if (mbase(&m, "shf")) {
        r = compile_alu(x, &m, ops, nops, m.mode_l ? OP_SHF_L : OP_SHF_R, 3);
        if (!r && m.clamp) c->code[c->ncode - 1].flags |= IF_SHIFT_CLAMP;
    } else if (mbase(&m, "testp")) {
        static const char *const tw[] = {"finite", "infinite", "number", "notanumber", "normal", "subnormal"};
        const char *w = memchr(optok->s, '.', optok->n);
        int which = -1;
        if (w) {
            const char *w2 = w + 1;
            const char *q = memchr(w2, '.', (size_t)(optok->s + optok->n - w2));
            which = word_in(w2, (int)((q ? q : optok->s + optok->n) - w2), tw, 6);
        }
        if (which < 0 || (m.bad && m.bad != w + 1)) return fail_ins(x, "testp mode");
        r = compile_alu(x, &m, ops, nops, OP_TESTP, 1);
        if (!r) c->code[c->ncode - 1].sub = (uint8_t)which;
    } else if (mbase(&m, "setp") || mbase(&m, "set")) {
        int issetp = mbase(&m, "setp");
        if (m.cmp < 0 || (nops != 3 && nops != 4)) return fail_ins(x, "setp form");
        int st2 = issetp ? tt : (m.ntypes > 1 ? m.types[1] : tt);
        int d = dst_slot(x, &ops[0]);
        int a = src_slot(x, &ops[1], st2), b = src_slot(x, &ops[2], st2);
        int cc = nops == 4 ? src_slot(x, &ops[3], T_PRED) : -1;
        ptx_ins *p = x->failed ? NULL : emit(c, issetp ? OP_SETP : OP_SET, x->line);
        if (!p) return -1;
        p->t = (uint8_t)(issetp ? tt : tt);
        p->t2 = (uint8_t)st2;
        p->d = d;
        p->d2 = ops[0].slot2;
        p->a = a; p->b = b; p->c = cc;
        p->sub = (uint8_t)m.cmp;
        p->bop = (uint8_t)(nops == 4 ? (m.bop > 0 ? m.bop : 1) : 0);
        if (nops == 4 && ops[3].neg) p->flags |= IF_NEG_C;
        p->flags |= (uint8_t)(m.flags & IF_FTZ);
    } else if (mbase(&m, "selp")) {
        if (need(x, nops, 4)) return -1;
        int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], tt), b = src_slot(x, &ops[2], tt), cc = src_slot(x, &ops[3], T_PRED);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_SELP, x->line);
        if (!p) return -1;
        p->t = (uint8_t)tt; p->d = d; p->a = a; p->b = b; p->c = cc;
        if (ops[3].neg) p->flags |= IF_NEG_C;
    } else if (mbase(&m, "slct")) {
        if (need(x, nops, 4) || m.ntypes < 2) return fail_ins(x, "slct form");
        int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], tt), b = src_slot(x, &ops[2], tt), cc = src_slot(x, &ops[3], m.types[1]);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_SLCT, x->line);
        if (!p) return -1;
        p->t = (uint8_t)tt; p->t2 = (uint8_t)m.types[1]; p->d = d; p->a = a; p->b = b; p->c = cc;
    } else if (mbase(&m, "cvt")) {
        int dt = m.ntypes ? m.types[0] : T_NONE, stt = m.ntypes > 1 ? m.types[1] : dt;
        if (nops == 3 && (dt == T_F16X2 || dt == T_BF16X2) && stt == T_F32) {
            /* cvt.rn.f16x2.f32 d, a, b: packs two converted floats, a into the high half */
            int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], T_F32), b = src_slot(x, &ops[2], T_F32);
            ptx_ins *p = x->failed ? NULL : emit(c, OP_CVT_PACK, x->line);
            if (!p) return -1;
            p->t = (uint8_t)dt; p->t2 = T_F32; p->d = d; p->a = a; p->b = b; p->rm = (uint8_t)m.rm; p->flags = (uint8_t)m.flags;
            if (m.relu) p->flags |= IF_RELU;
            goto done;
        }
        if (need(x, nops, 2) || m.ntypes < 1) return fail_ins(x, "cvt form");
        if (ops[0].kind == O_VEC || dt == T_F16X2 || dt == T_BF16X2) return fail_ins(x, "packed cvt form");
        int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], stt);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_CVT, x->line);
        if (!p) return -1;
        p->t = (uint8_t)dt; p->t2 = (uint8_t)stt; p->d = d; p->a = a; p->rm = (uint8_t)m.rm; p->flags = (uint8_t)m.flags;
        if (m.relu) p->flags |= IF_RELU;
    } else if (mbase(&m, "cvta")) {
        if (need(x, nops, 2)) return -1;
        int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], T_U64);
        if (x->failed) return -1;
        int op = OP_MOV;
        if (m.space == SP_SHARED) op = m.to ? OP_CVTA_TO_SHARED : OP_CVTA_SHARED;
        else if (m.space == SP_LOCAL) op = m.to ? OP_CVTA_TO_LOCAL : OP_CVTA_LOCAL;
        else if (m.space == SP_KPARAM) op = m.to ? OP_CVTA_TO_PARAM : OP_CVTA_PARAM;
        ptx_ins *p = emit(c, op, x->line);
        if (!p) return -1;
        p->d = d; p->a = a; p->t = T_U64;
        if (op == OP_MOV && tt == T_U32) p->t = T_U32;
    } else if (mbase(&m, "isspacep")) {
        if (need(x, nops, 2)) return -1;
        int d = dst_slot(x, &ops[0]), a = src_slot(x, &ops[1], T_U64);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_ISSPACEP, x->line);
        if (!p) return -1;
        p->d = d; p->a = a; p->space = (uint8_t)m.space;
    } else if (mbase(&m, "ld") || mbase(&m, "ldu") || mbase(&m, "st")) {
        int isst = mbase(&m, "st");
        if (need(x, nops, 2)) return -1;
        const opnd *ao = isst ? &ops[0] : &ops[1];
        const opnd *vo = isst ? &ops[1] : &ops[0];
        ptx_ins tmp;
        memset(&tmp, 0, sizeof(tmp));
        if (addr_operand(x, ao, &tmp, m.space, m.has_space)) return -1;
        if (tt == T_NONE || tsize(tt) == 0) return fail_ins(x, "memory type");
        int nv = vo->kind == O_VEC ? vo->nvec : 1;
        if (nv > 4 || (nv != m.vec && !(m.vec == 1 && nv == 1))) return fail_ins(x, "vector width");
        int slots[4];
        for (int k = 0; k < nv; k++) {
            opnd e = *vo;
            if (vo->kind == O_VEC) {
                memset(&e, 0, sizeof(e));
                e.kind = vo->vk[k];
                e.slot = vo->vslot[k];
                e.num = vo->vnum[k];
            }
            slots[k] = isst ? src_slot(x, &e, tt) : dst_slot(x, &e);
        }
        if (x->failed) return -1;
        ptx_ins *p = emit(c, isst ? OP_ST : OP_LD, x->line);
        if (!p) return -1;
        p->a = tmp.a; p->imm = tmp.imm; p->space = tmp.space;
        p->t = (uint8_t)tt; p->esize = (uint8_t)tsize(tt); p->vec = (uint8_t)nv;
        for (int k = 0; k < nv; k++) p->v[k] = slots[k];
    } else if (mbase(&m, "atom") || mbase(&m, "red")) {
        int isred = mbase(&m, "red");
        if (m.atop < 0 || m.vec != 1) return fail_ins(x, "atomic operation");
        int need_ops = (isred ? 2 : 3) + (m.atop == AT_CAS ? 1 : 0);
        if (nops != need_ops) return fail_ins(x, "atomic operand count");
        const opnd *ao = isred ? &ops[0] : &ops[1];
        ptx_ins tmp;
        memset(&tmp, 0, sizeof(tmp));
        if (addr_operand(x, ao, &tmp, m.space, m.has_space)) return -1;
        int d = isred ? -1 : dst_slot(x, &ops[0]);
        int b = src_slot(x, &ops[isred ? 1 : 2], tt);
        int cc = m.atop == AT_CAS ? src_slot(x, &ops[isred ? 2 : 3], tt) : -1;
        if (x->failed) return -1;
        if ((tt == T_F16 || tt == T_BF16 || tt == T_F16X2 || tt == T_BF16X2) && m.atop != AT_ADD && m.atop != AT_MIN &&
            m.atop != AT_MAX && m.atop != AT_EXCH && m.atop != AT_CAS)
            return fail_ins(x, "half-precision atomic");
        ptx_ins *p = emit(c, isred ? OP_RED : OP_ATOM, x->line);
        if (!p) return -1;
        p->a = tmp.a; p->imm = tmp.imm; p->space = tmp.space;
        p->d = d; p->b = b; p->c = cc; p->t = (uint8_t)tt; p->sub = (uint8_t)m.atop; p->esize = (uint8_t)tsize(tt);
    } else if (mbase(&m, "cp")) {
        /* cp.async.{ca,cg}.shared.global [dst], [src], cp-size{, src-size}: done synchronously, so
         * commit_group / wait_group / wait_all have nothing left to wait for */
        int is_async = 0, is_wait = 0;
        for (size_t k = 0; k + 6 <= optok->n; k++) if (!memcmp(optok->s + k, ".async", 6)) is_async = 1;
        for (size_t k = 0; k + 5 <= optok->n; k++) if (!memcmp(optok->s + k, ".wait", 5) || !memcmp(optok->s + k, ".comm", 5)) is_wait = 1;
        for (size_t k = 0; k + 5 <= optok->n; k++) if (!memcmp(optok->s + k, ".bulk", 5) || !memcmp(optok->s + k, ".mbar", 5)) is_async = 0;
        if (!is_async) return fail_ins(x, "cp form");
        if (is_wait) {
            emit(c, OP_NOP, x->line);
        } else {
            if (nops < 3 || ops[2].kind != O_NUM || ops[2].num.kind != NUM_INT) return fail_ins(x, "cp.async operands");
            ptx_ins dst, src;
            memset(&dst, 0, sizeof(dst));
            memset(&src, 0, sizeof(src));
            if (addr_operand(x, &ops[0], &dst, SP_SHARED, 1) || addr_operand(x, &ops[1], &src, SP_GLOBAL, 1)) return -1;
            if (src.imm < INT32_MIN || src.imm > INT32_MAX) return fail_ins(x, "cp.async offset");
            int64_t sz = ops[2].num.i;
            if (sz != 4 && sz != 8 && sz != 16) return fail_ins(x, "cp.async size");
            int srcsz = -1;
            if (nops >= 4 && ops[3].kind != O_NONE) srcsz = src_slot(x, &ops[3], T_U32);
            if (x->failed) return -1;
            ptx_ins *p = emit(c, OP_CP_ASYNC, x->line);
            if (!p) return -1;
            p->a = dst.a; p->imm = dst.imm; p->space = SP_SHARED;
            p->b = src.a; p->e = (int32_t)src.imm;
            p->c = srcsz;
            p->esize = (uint8_t)sz;
        }
    } else if (mbase(&m, "prefetch") || mbase(&m, "prefetchu") || mbase(&m, "membar") || mbase(&m, "fence") ||
               mbase(&m, "discard") || mbase(&m, "applypriority") || mbase(&m, "nanosleep") || mbase(&m, "pmevent")) {
        /* no observable effect in the emulator: memory is coherent, there are no caches */
        emit(c, OP_NOP, x->line);
    } else if (mbase(&m, "createpolicy")) {
        if (nops < 1) return fail_ins(x, "createpolicy");
        int d = dst_slot(x, &ops[0]);
        int z = cslot(c, 0);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_MOV, x->line);
        if (!p) return -1;
        p->d = d; p->a = z; p->t = T_U64;
    } else if (mbase(&m, "bra") || mbase(&m, "brx")) {
        if (mbase(&m, "brx") || nops != 1 || ops[0].kind != O_SYM) return fail_ins(x, "indirect branch");
        ptx_ins *p = emit(c, OP_BRA, x->line);
        if (!p) return -1;
        fixup f = {c->ncode - 1, ops[0].name->s, (int)ops[0].name->n};
        VEC_PUSH(x->fr->fix, x->fr->nfix, x->fr->capfix, f, c->oom = 1; return -1);
    } else if (mbase(&m, "ret")) {
        if (c->depth == 0) {
            emit(c, OP_EXIT, x->line);
        } else {
            emit(c, OP_BRA, x->line);
            int at = c->ncode - 1;
            VEC_PUSH(x->fr->rets, x->fr->nrets, x->fr->caprets, at, c->oom = 1; return -1);
        }
    } else if (mbase(&m, "exit")) {
        emit(c, OP_EXIT, x->line);
    } else if (mbase(&m, "trap") || mbase(&m, "brkpt")) {
        emit(c, OP_TRAP, x->line);
    } else if (mbase(&m, "bar") || mbase(&m, "barrier")) {
        /* bar.warp.sync mask; bar{.cta}.sync / barrier{.cta}.sync{.aligned} a{, b}; bar{.cta}.arrive /
         * barrier{.cta}.arrive{.aligned} a, b; bar{.cta}.red / barrier{.cta}.red.{popc.u32,and.pred,or.pred} d, a{, b}, {!}c;
         * barrier.cluster.wait (one CTA per cluster here: the CTA's barrier). a: barrier 0-15, b: thread count. */
        const char *w = memchr(optok->s, '.', optok->n);
        int is_warp = w && optok->n - (size_t)(w - optok->s) >= 5 && !memcmp(w, ".warp", 5);
        const int is_arrive = has_word(optok, ".arrive"), is_red = has_word(optok, ".red");
        if (is_warp) {
            if (nops != 1) return fail_ins(x, "bar.warp.sync form");
            int mk = src_slot(x, &ops[0], T_U32);
            ptx_ins *p = x->failed ? NULL : emit(c, OP_NOP, x->line);
            if (!p) return -1;
            p->e = mk;
            p->wsync = 1;
        } else if (has_word(optok, ".cluster")) {
            if (is_arrive || nops) return fail_ins(x, "barrier.cluster.arrive");
            ptx_ins *p = emit(c, OP_BAR, x->line);
            if (!p) return -1;
            p->sub = BAR_SYNC;
            p->a = cslot(c, 0);
            p->imm = 0;
        } else {
            /* operands: [d,] a [, b] [, c] */
            const int first = is_red, has_c = is_red, nab = nops - first - has_c;
            if (nab < 1 || nab > 2 || (is_arrive && nab != 2)) return fail_ins(x, is_arrive ? "bar.arrive form (a, b)" : "bar form");
            const opnd *oa = &ops[first], *ob = nab == 2 ? &ops[first + 1] : NULL;
            if (oa->kind == O_NUM && (uint64_t)oa->num.i > 15) return fail_ins(x, "barrier number above 15");
            if (ob && ob->kind == O_NUM && (ob->num.i <= 0 || ob->num.i % 32 || ob->num.i > 1024))
                return fail_ins(x, "barrier thread count (a multiple of 32, 32-1024)");
            const int sa = src_slot(x, oa, T_U32), sb = ob ? src_slot(x, ob, T_U32) : -1;
            const int sc = has_c ? src_slot(x, &ops[nops - 1], T_PRED) : -1;
            const int d = is_red ? dst_slot(x, &ops[0]) : -1;
            if (x->failed) return -1;
            /* imm: the barrier's number | thread count << 8 when both are immediates, else -1 (read a, b) */
            const int64_t imm = oa->kind == O_NUM && (!ob || ob->kind == O_NUM) ? oa->num.i | (ob ? ob->num.i << 8 : 0) : -1;
            if (ob && ob->kind == O_NUM) {
                const uint32_t warps = (uint32_t)ob->num.i / 32;
                if (!c->k->bar_warps_lo || warps < c->k->bar_warps_lo) c->k->bar_warps_lo = warps;
                if (warps > c->k->bar_warps_hi) c->k->bar_warps_hi = warps;
            }
            ptx_ins *p = emit(c, is_red ? OP_BAR_RED : OP_BAR, x->line);
            if (!p) return -1;
            p->a = sa;
            p->b = sb;
            p->imm = imm;
            if (is_red) {
                const int rop = m.red_popc ? 0 : m.red_and ? 1 : 2;
                p->c = sc;
                p->sub = (uint8_t)rop;
                if (ops[nops - 1].neg) p->flags |= IF_NEG_C;
                p = emit(c, OP_BAR_RED_READ, x->line);
                if (!p) return -1;
                p->d = d;
                p->a = sa;
                p->imm = imm;
                p->sub = (uint8_t)rop;
                p->t = (uint8_t)tt;
            } else {
                p->sub = is_arrive ? BAR_ARRIVE : BAR_SYNC;
            }
        }
    } else if (mbase(&m, "shfl")) {
        if (m.shmode < 0 || nops != (m.sync ? 5 : 4)) return fail_ins(x, "shfl form");
        int d = dst_slot(x, &ops[0]);
        int a = src_slot(x, &ops[1], T_U32), b = src_slot(x, &ops[2], T_U32), cc = src_slot(x, &ops[3], T_U32);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_SHFL, x->line);
        if (!p) return -1;
        p->d = d; p->d2 = ops[0].slot2; p->a = a; p->b = b; p->c = cc; p->sub = (uint8_t)m.shmode;
        if (m.sync) {
            int mk = src_slot(x, &ops[4], T_U32);
            p = &c->code[c->ncode - 1];
            p->e = mk;
            p->wsync = 1;
        }
    } else if (mbase(&m, "vote")) {
        if (m.vote < 0 || nops < 2) return fail_ins(x, "vote form");
        int d = dst_slot(x, &ops[0]);
        int a = src_slot(x, &ops[1], T_PRED);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_VOTE, x->line);
        if (!p) return -1;
        p->d = d; p->a = a; p->sub = (uint8_t)m.vote;
        if (ops[1].neg) p->flags |= IF_NEG_C;
        if (m.sync && nops >= 3) {
            int mk = src_slot(x, &ops[2], T_U32);
            p = &c->code[c->ncode - 1];
            p->e = mk;
            p->wsync = 1;
        }
    } else if (mbase(&m, "activemask")) {
        if (need(x, nops, 1)) return -1;
        int d = dst_slot(x, &ops[0]);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_ACTIVEMASK, x->line);
        if (!p) return -1;
        p->d = d;
    } else if (mbase(&m, "match")) {
        if (nops != 3 || (!m.any && !m.all)) return fail_ins(x, "match form");
        int d = dst_slot(x, &ops[0]);
        int a = src_slot(x, &ops[1], tt);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_MATCH, x->line);
        if (!p) return -1;
        p->d = d; p->d2 = ops[0].slot2; p->a = a; p->t = (uint8_t)tt; p->sub = (uint8_t)(m.all ? 1 : 0);
        int mk = src_slot(x, &ops[2], T_U32);
        p = &c->code[c->ncode - 1];
        p->e = mk;
        p->wsync = 1;
    } else if (mbase(&m, "redux")) {
        if (nops != 3 || m.atop < 0 || tt == T_F32) return fail_ins(x, "redux form");
        int d = dst_slot(x, &ops[0]);
        int a = src_slot(x, &ops[1], tt);
        ptx_ins *p = x->failed ? NULL : emit(c, OP_REDUX, x->line);
        if (!p) return -1;
        p->d = d; p->a = a; p->t = (uint8_t)tt; p->sub = (uint8_t)m.atop;
        int mk = src_slot(x, &ops[2], T_U32);
        p = &c->code[c->ncode - 1];
        p->e = mk;
        p->wsync = 1;
    } else {
        return fail_ins(x, "unsupported instruction");
    }
done:
    if (r) return r;
    if (!x->failed && c->ncode > n0 && (c->code[c->ncode - 1].flags & (IF_CC | IF_USE_CC))) {
        if (c->carry_slot < 0) c->carry_slot = new_slots(c, 1);
        c->code[c->ncode - 1].e = c->carry_slot;
    }
    if (x->failed) {
        c->ncode = n0;
        x->failed = 0;
        return fail_ins(x, "bad operands");
    }
    if (guard >= 0) {
        for (int k = n0; k < c->ncode; k++) {
            c->code[k].pred = guard;
            c->code[k].pneg = (uint8_t)gneg;
        }
    }
    return 0;
}

static int compile_indirect_call(cctx *x, int fnreg, sym **ay, int nargs, sym *ry);
static int inline_call(cctx *x, pfunc *f, sym **ay, int nargs, sym *ry);

/* call[.uni] [(ret),] fname[, (args)][, proto]; */
static int compile_call(cctx *x, const tok *t, int i, int end) {
    kc *c = x->c;
    const tok *retp = NULL;
    if (tp(&t[i], '(')) {
        retp = &t[i + 1];
        while (i < end && !tp(&t[i], ')')) i++;
        i++;
        if (tp(&t[i], ',')) i++;
    }
    if (t[i].k != TK_ID) return fail_ins(x, "call target");
    const tok *fn = &t[i++];
    const tok *args[32];
    int nargs = 0;
    if (tp(&t[i], ',')) i++;
    if (tp(&t[i], '(')) {
        i++;
        while (i < end && !tp(&t[i], ')')) {
            if (t[i].k == TK_ID || t[i].k == TK_NUM) { if (nargs < 32) args[nargs++] = &t[i]; }
            i++;
        }
        i++;
    }
    if (tp(&t[i], ',')) i++; /* the prototype of an indirect call */
    if (i < end && t[i].k == TK_ID) i++;
    if (i < end) return fail_ins(x, "call form");
    int fnreg = reg_lookup(c, fn->s, (int)fn->n);
    sym *ay[32];
    for (int k = 0; k < nargs; k++) {
        ay[k] = args[k]->k == TK_ID ? sym_find(c, args[k]->s, (int)args[k]->n) : NULL;
        if (!ay[k] || ay[k]->kind != SYM_FPARAM) return fail_ins(x, "call argument must be a .param");
    }
    sym *ry = retp ? sym_find(c, retp->s, (int)retp->n) : NULL;
    if (retp && (!ry || ry->kind != SYM_FPARAM)) return fail_ins(x, "call return must be a .param");
    if (fnreg >= 0) return compile_indirect_call(x, fnreg, ay, nargs, ry);
    if (teq(fn, "vprintf")) {
        if (nargs != 2) return fail_ins(x, "vprintf arguments");
        ptx_ins *p = emit(c, OP_PRINTF, x->line);
        if (!p) return -1;
        p->imm = ay[0]->val;
        p->b = (int32_t)ay[1]->val;
        p->c = ry ? (int32_t)ry->val : -1;
        return 0;
    }
    if (teq(fn, "__assertfail")) {
        if (nargs < 4) return fail_ins(x, "__assertfail arguments");
        ptx_ins *p = emit(c, OP_ASSERTFAIL, x->line);
        if (!p) return -1;
        p->a = (int32_t)ay[0]->val; p->b = (int32_t)ay[1]->val; p->c = (int32_t)ay[2]->val; p->e = (int32_t)ay[3]->val;
        return 0;
    }
    pfunc *f = find_func(c->pm, fn->s, (int)fn->n);
    if (teq(fn, "cudaGraphSetConditional") && (!f || !f->has_body)) {
        /* the driver's function: sets a graph conditional handle's value (ptx_graph_set_conditional) */
        if (nargs != 2 || ry) return fail_ins(x, "cudaGraphSetConditional arguments");
        ptx_ins *p = emit(c, OP_SETCOND, x->line);
        if (!p) return -1;
        p->a = (int32_t)ay[0]->val;
        p->b = (int32_t)ay[1]->val;
        return 0;
    }
    if ((teq(fn, "malloc") || teq(fn, "free")) && (!f || !f->has_body)) {
        /* device-side heap: served by the driver's device allocator */
        int is_malloc = teq(fn, "malloc");
        if (nargs != 1 || (is_malloc && !ry)) return fail_ins(x, "malloc/free arguments");
        ptx_ins *p = emit(c, is_malloc ? OP_MALLOC : OP_FREE, x->line);
        if (!p) return -1;
        p->a = (int32_t)ay[0]->val;
        p->c = ry ? (int32_t)ry->val : -1;
        return 0;
    }
    if (!f || !f->has_body || f->is_entry) {
        char buf[160];
        snprintf(buf, sizeof(buf), "call to undefined function %.*s", (int)fn->n, fn->s);
        return fail_ins(x, buf);
    }
    return inline_call(x, f, ay, nargs, ry);
}

/* call through a register (virtual functions, function pointers): every function whose address the
 * module takes and whose parameters match is a candidate; the call becomes a chain of compare-and-
 * branch to each candidate's inlined body, and an address that is none of them traps. */
static int compile_indirect_call(cctx *x, int fnreg, sym **ay, int nargs, sym *ry) {
    kc *c = x->c;
    pmod *pm = c->pm;
    int pslot = new_slots(c, 1);
    int ends[64], nends = 0;
    for (int k = 0; k < pm->nfuncs; k++) {
        pfunc *f = &pm->funcs[k];
        if (!f->addr_taken || !f->has_body || f->is_entry || f->nparams != nargs || f->has_ret != (ry != NULL)) continue;
        int rec = 0;
        for (int d = 0; d < c->depth; d++) rec += c->stack[d] == f;
        if (rec >= MAX_RECURSION || nends >= 64) continue; /* deeper/more: the trap below */
        ptx_ins *p = emit(c, OP_SETP, x->line);
        if (!p) return -1;
        p->t = p->t2 = T_U64; p->d = pslot; p->a = fnreg; p->b = cslot(c, PTX_FUNC_ADDR(k)); p->sub = CMP_NE;
        int skip = c->ncode;
        p = emit(c, OP_BRA, x->line);
        if (!p) return -1;
        p->pred = pslot;
        int r = inline_call(x, f, ay, nargs, ry);
        if (r) return r;
        p = emit(c, OP_BRA, x->line);
        if (!p) return -1;
        ends[nends++] = c->ncode - 1;
        c->code[skip].imm = c->ncode;
    }
    static const char k_nofn[] = "call through a pointer to no function of this module";
    emit_illegal(c, k_nofn, (int)strlen(k_nofn), x->line);
    for (int k = 0; k < nends; k++) c->code[ends[k]].imm = c->ncode;
    return 0;
}

static int inline_call(cctx *x, pfunc *f, sym **ay, int nargs, sym *ry) {
    kc *c = x->c;
    /* calls are inlined, so recursion is unrolled to a fixed depth; a launch that goes deeper
     * reaches an ILLEGAL instruction and fails naming it */
    int rec = 0;
    for (int k = 0; k < c->depth; k++) rec += c->stack[k] == f;
    if (rec >= MAX_RECURSION) return fail_ins(x, "recursion deeper than the emulator unrolls (" MAX_RECURSION_STR " levels)");
    if (c->depth >= 31) return fail_ins(x, "call depth over 31");
    if (nargs != f->nparams) return fail_ins(x, "argument count");
    /* copy the offsets first: add_sym may move c->syms, which ay[] and ry point into */
    int64_t argoff[32];
    for (int k = 0; k < nargs; k++) argoff[k] = ay[k]->val;
    int64_t retoff = ry ? ry->val : -1;
    int mark = c->nsyms;
    for (int k = 0; k < nargs; k++) {
        sym y = {f->params[k].name, f->params[k].nlen, SYM_FPARAM, -1, argoff[k]};
        add_sym(c, y);
    }
    if (f->has_ret) {
        int64_t off;
        if (ry) off = retoff;
        else {
            off = (int64_t)align_up(c->local_size, 8);
            c->local_size = (size_t)off + f->ret.size;
        }
        sym y = {f->ret.name, f->ret.nlen, SYM_FPARAM, -1, off};
        add_sym(c, y);
    }
    frame fr;
    memset(&fr, 0, sizeof(fr));
    fr.f = f;
    fr.inst = ++c->ninst;
    c->stack[c->depth++] = f;
    int r = compile_body(c, &fr, f->bstart, f->bend);
    c->depth--;
    for (int k = 0; k < fr.nrets; k++) c->code[fr.rets[k]].imm = c->ncode;
    free(fr.labels);
    free(fr.fix);
    free(fr.rets);
    c->nsyms = mark;
    return r;
}

/* Declarations inside a body: .reg/.local/.shared/.param. */
static int compile_decl(kc *c, frame *fr, const tok *t, int i, int end) {
    int is_reg = teq(&t[i], ".reg");
    int is_local = teq(&t[i], ".local");
    int is_shared = teq(&t[i], ".shared");
    int j = i + 1;
    size_t esz = 0, align = 0, vec = 1;
    while (j < end && t[j].k == TK_ID && t[j].s[0] == '.') {
        if (teq(&t[j], ".align")) {
            int64_t v;
            if (parse_int_text(t[j + 1].s, (int)t[j + 1].n, &v)) return -1;
            align = (size_t)v;
            j += 2;
            continue;
        }
        if (teq(&t[j], ".v2")) vec = 2;
        if (teq(&t[j], ".v4")) vec = 4;
        size_t s = type_size_word(t[j].s, (int)t[j].n);
        if (s) esz = s;
        j++;
    }
    if (!esz) return -1;
    /* one or more names: name, name<N>, name[N] */
    while (j < end) {
        if (t[j].k != TK_ID) return -1;
        const tok *nm = &t[j++];
        int range = -1;
        size_t count = 1;
        if (j < end && tp(&t[j], '<')) {
            int64_t v;
            if (parse_int_text(t[j + 1].s, (int)t[j + 1].n, &v) || !tp(&t[j + 2], '>')) return -1;
            range = (int)v;
            j += 3;
        }
        while (j < end && tp(&t[j], '[')) {
            int64_t v = 0;
            if (t[j + 1].k == TK_NUM) {
                if (parse_int_text(t[j + 1].s, (int)t[j + 1].n, &v)) return -1;
                j++;
            }
            if (v < 0 || (size_t)v > MAX_DECL_BYTES || count * (size_t)v > MAX_DECL_BYTES) {
                c->toobig = "declaration too large";
                return 0;
            }
            count *= (size_t)v;
            j += 2;
        }
        size_t size = esz * vec * count;
        size_t al = align ? align : esz * vec;
        if (count > MAX_DECL_BYTES || size > MAX_DECL_BYTES || al > 4096 || (range >= 0 && range > MAX_SLOTS)) {
            c->toobig = "declaration too large";
            return 0;
        }
        if (is_reg) {
            int n = range >= 0 ? range : 1;
            sym y = {nm->s, (int)nm->n, SYM_REG, range, new_slots(c, n * (int)vec)};
            c->nregs += n;
            add_sym(c, y);
        } else if (is_shared) {
            sym y = {nm->s, (int)nm->n, SYM_SHARED, -1, (int64_t)shared_var_off(c, fr->f, nm->s, (int)nm->n, size, al)};
            add_sym(c, y);
        } else {
            size_t off = align_up(c->local_size, al);
            c->local_size = off + size;
            sym y = {nm->s, (int)nm->n, is_local ? SYM_LOCAL : SYM_FPARAM, -1, (int64_t)off};
            add_sym(c, y);
        }
        if (j < end && tp(&t[j], ',')) j++;
        else break;
    }
    return 0;
}

static int compile_body(kc *c, frame *fr, int bstart, int bend) {
    const tok *t = c->pm->t;
    cctx x = {c, fr, t, 0, NULL, 0};
    int marks[64];
    int nmarks = 0;
    int i = bstart;
    while (i < bend && !c->oom && !c->toobig) {
        if (tp(&t[i], '{')) {
            if (nmarks < 64) marks[nmarks++] = c->nsyms;
            i++;
            continue;
        }
        if (tp(&t[i], '}')) {
            if (nmarks > 0) c->nsyms = marks[--nmarks];
            i++;
            continue;
        }
        if (tp(&t[i], ';')) { i++; continue; }
        if (teq(&t[i], ".loc") || teq(&t[i], ".file")) {
            uint32_t line = t[i].line;
            while (i < bend && t[i].line == line && !tp(&t[i], ';') && !tp(&t[i], '}') && !tp(&t[i], '{')) i++;
            continue;
        }
        if (teq(&t[i], ".pragma") || teq(&t[i], ".callprototype")) {
            while (i < bend && !tp(&t[i], ';')) i++;
            i++;
            continue;
        }
        if (t[i].k == TK_ID && i + 1 < bend && tp(&t[i + 1], ':')) {
            label l = {t[i].s, (int)t[i].n, c->ncode};
            VEC_PUSH(fr->labels, fr->nlabels, fr->caplabels, l, c->oom = 1; return -1);
            i += 2;
            continue;
        }
        int e = i;
        while (e < bend && !tp(&t[e], ';')) e++;
        if (e >= bend) {
            logf_(c->pm->log, c->pm->loglen, "PTX: missing ';' at line %u", t[i].line);
            return -1;
        }
        if (teq(&t[i], ".reg") || teq(&t[i], ".local") || teq(&t[i], ".shared") || teq(&t[i], ".param")) {
            if (compile_decl(c, fr, t, i, e)) {
                logf_(c->pm->log, c->pm->loglen, "PTX: bad declaration at line %u", t[i].line);
                return -1;
            }
            i = e + 1;
            continue;
        }
        int guard = -1, gneg = 0;
        if (tp(&t[i], '@')) {
            i++;
            if (tp(&t[i], '!')) { gneg = 1; i++; }
            guard = reg_lookup(c, t[i].s, (int)t[i].n);
            if (guard < 0) {
                logf_(c->pm->log, c->pm->loglen, "PTX: unknown guard predicate at line %u", t[i].line);
                return -1;
            }
            i++;
        }
        if (t[i].k != TK_ID) {
            logf_(c->pm->log, c->pm->loglen, "PTX: unexpected '%.*s' at line %u", (int)t[i].n, t[i].s, t[i].line);
            return -1;
        }
        compile_instr(&x, i, e, guard, gneg);
        i = e + 1;
    }
    if (c->oom) return -1;
    for (int k = 0; k < fr->nfix; k++) {
        fixup *f = &fr->fix[k];
        int pc = -1;
        for (int l = 0; l < fr->nlabels; l++)
            if (fr->labels[l].nlen == f->nlen && !memcmp(fr->labels[l].name, f->name, (size_t)f->nlen)) pc = fr->labels[l].pc;
        if (pc < 0) {
            logf_(c->pm->log, c->pm->loglen, "PTX: unknown label %.*s", f->nlen, f->name);
            return -1;
        }
        c->code[f->at].imm = pc;
    }
    return 0;
}

/* Upper bound of a function's size once calls are inlined, computed before inlining so that
 * call trees that double at every level fail fast instead of exhausting memory. */
static uint64_t expanded_size(pmod *pm, pfunc *f) {
    if (f->xstate == 2) return f->xsize;
    if (f->xstate == 1 || !f->has_body) return 1; /* recursion: reported when compiled */
    f->xstate = 1;
    uint64_t n = 0;
    const tok *t = pm->t;
    for (int i = f->bstart; i < f->bend; i++) {
        if (tp(&t[i], ';')) n++;
        if (t[i].k == TK_ID && t[i].n >= 4 && !memcmp(t[i].s, "call", 4) && (t[i].n == 4 || t[i].s[4] == '.')) {
            for (int j = i + 1; j < f->bend && !tp(&t[j], ';'); j++) {
                if (t[j].k != TK_ID) continue;
                pfunc *g = find_func(pm, t[j].s, (int)t[j].n);
                if (g) {
                    n += expanded_size(pm, g);
                    break;
                }
            }
        }
        if (n > (uint64_t)MAX_CODE * 4) break;
    }
    f->xsize = n;
    f->xstate = 2;
    return n;
}

/* A kernel's header: what cuModuleGetFunction, cuFuncGetParamInfo and the launch's parameter packing need,
 * read from the .entry line alone (no body decoded). */
static ptx_kernel *kernel_shell(pmod *pm, ptx_module *m, pfunc *f, int fidx) {
    ptx_kernel *k = calloc(1, sizeof(*k));
    if (!k) return NULL;
    k->mod = m;
    k->fidx = fidx;
    k->name = malloc((size_t)f->nlen + 1);
    k->nparams = f->nparams;
    k->param_off = calloc((size_t)f->nparams + 1, sizeof(size_t));
    k->param_size = calloc((size_t)f->nparams + 1, sizeof(size_t));
    if (!k->name || !k->param_off || !k->param_size) {
        free(k->name);
        free(k->param_off);
        free(k->param_size);
        free(k);
        logf_(pm->log, pm->loglen, "PTX: out of memory reading kernel %.*s", f->nlen, f->name);
        return NULL;
    }
    memcpy(k->name, f->name, (size_t)f->nlen);
    k->name[f->nlen] = 0;
    size_t off = 0;
    for (int i = 0; i < f->nparams; i++) {
        off = align_up(off, f->params[i].align);
        k->param_off[i] = off;
        k->param_size[i] = f->params[i].size;
        off += f->params[i].size;
    }
    k->param_bytes = off;
    k->maxntid = f->maxntid > 0 ? f->maxntid : 1024;
    k->maxnreg = f->maxnreg;
    k->minnctapersm = f->minnctapersm;
    return k;
}

/* Decodes f's body (its calls inlined) into the shell k; pm->t holds the module's tokens. On failure k keeps
 * only its header and the reason is in pm->log. */
static int compile_entry(pmod *pm, pfunc *f, ptx_kernel *k) {
    if (expanded_size(pm, f) > (uint64_t)MAX_CODE * 2) {
        logf_(pm->log, pm->loglen, "PTX: kernel %.*s: too many instructions after inlining calls", f->nlen, f->name);
        return -1;
    }
    kc c;
    memset(&c, 0, sizeof(c));
    c.pm = pm;
    for (int i = 0; i < SR_COUNT; i++) c.sreg_slot[i] = -1;
    c.scratch_slot = -1;
    c.carry_slot = -1;
    c.k = k;
    for (int i = 0; i < f->nparams; i++) {
        sym y = {f->params[i].name, f->params[i].nlen, SYM_KPARAM, -1, (int64_t)k->param_off[i]};
        add_sym(&c, y);
    }
    frame fr;
    memset(&fr, 0, sizeof(fr));
    fr.f = f;
    c.stack[0] = f;
    int r = compile_body(&c, &fr, f->bstart, f->bend);
    free(fr.labels);
    free(fr.fix);
    free(fr.rets);
    if (!c.toobig && (c.local_size > MAX_LOCAL_BYTES || c.shared_size > MAX_DECL_BYTES)) c.toobig = "too much local or shared memory";
    if (c.toobig) {
        logf_(pm->log, pm->loglen, "PTX: kernel %.*s: %s", f->nlen, f->name, c.toobig);
        goto fail;
    }
    if (r || c.oom) goto fail;
    if (!emit(&c, OP_EXIT, 0)) goto fail; /* falling off the end */
    size_t dyn_base = align_up(c.shared_size, 16);
    for (int i = 0; i < c.ndyn; i++) c.consts[c.dyn_consts[i]].bits = dyn_base;
    k->code = c.code;
    k->ncode = c.ncode;
    k->nslots = c.nslots;
    k->nregs = c.nregs;
    k->consts = c.consts;
    k->nconsts = c.nconsts;
    k->shared_static = dyn_base;
    k->lists = c.lists;
    k->nlists = c.nlists;
    k->local_bytes = align_up(c.local_size, 16);
    free(c.chash);
    free(c.sh);
    free(c.dyn_consts);
    free(c.syms);
    return 0;
fail:
    if (!pm->log || !pm->log[0]) logf_(pm->log, pm->loglen, "PTX: out of memory compiling %.*s", f->nlen, f->name);
    free(c.code);
    free(c.consts);
    free(c.lists);
    free(c.chash);
    free(c.sh);
    free(c.dyn_consts);
    free(c.syms);
    free(k->specials);
    k->specials = NULL;
    k->nspecials = 0;
    k->uses_dynamic_sregs = 0;
    k->bar_warps_lo = k->bar_warps_hi = 0;
    for (int i = 0; i < k->nowned; i++) free(k->owned[i]);
    free(k->owned);
    k->owned = NULL;
    k->nowned = 0;
    return -1;
}

static void kernel_free(ptx_kernel *k) {
    if (!k) return;
    ptx_jit_forget(k); /* the compile thread never reads it after this */
    free(k->name);
    free(k->param_off);
    free(k->param_size);
    free(k->code);
    free(k->consts);
    free(k->lists);
    free(k->specials);
    for (int i = 0; i < k->nowned; i++) free(k->owned[i]);
    free(k->owned);
    free(k->decode_log);
    free(k);
}

/* What a module keeps from its text until every kernel is decoded (ptx_module_open): the text itself (the
 * parsed functions point into it), the module-level parse (function headers with their body's token range,
 * variables with their device addresses, owned by the module's vars) and, once a kernel was decoded, the
 * tokens (re-lexing the same text gives the same token indices). One lock: launches on several streams may
 * ask for the same module's kernels at once. */
struct ptx_lazy {
    pthread_mutex_t mu;
    char *text;
    size_t len;
    pmod pm;
    int pending;      /* kernels not yet decoded (or failed); at 0 the text and tokens are released */
};

static void pmod_release(pmod *pm) {
    for (int i = 0; i < pm->nfuncs; i++) free(pm->funcs[i].params);
    free(pm->funcs);
    free(pm->vars);
    free(pm->t);
    pm->funcs = NULL;
    pm->vars = NULL;
    pm->t = NULL;
    pm->nfuncs = pm->nvars = pm->nt = 0;
}

static void lazy_free(struct ptx_lazy *z) {
    if (!z) return;
    pthread_mutex_destroy(&z->mu);
    pmod_release(&z->pm);
    free(z->text);
    free(z);
}

/* Lexes and reads the module level of pm's text: variables allocated and initialized, function headers, the
 * module's variables and kernel shells in m. On failure the variables already allocated are freed. */
static int module_index(pmod *pm, ptx_module *m, const char *text, size_t len, int *err) {
    if (lex(text, len, &pm->t, &pm->nt)) {
        *err = PTXE_OUT_OF_MEMORY;
        return -1;
    }
    *err = PTXE_INVALID_PTX;
    if (parse_module(pm)) goto fail;
    m->vars = calloc((size_t)pm->nvars + 1, sizeof(ptx_var));
    if (!m->vars) goto fail;
    for (int i = 0; i < pm->nvars; i++) {
        if (pm->vars[i].space == SP_SHARED) continue;
        ptx_var *v = &m->vars[m->nvars];
        v->name = malloc((size_t)pm->vars[i].nlen + 1);
        if (!v->name) goto fail;
        memcpy(v->name, pm->vars[i].name, (size_t)pm->vars[i].nlen);
        v->name[pm->vars[i].nlen] = 0;
        v->space = pm->vars[i].space;
        v->addr = pm->vars[i].addr;
        v->bytes = pm->vars[i].size;
        m->nvars++; /* m frees its memory from now on; pm keeps the address for the kernels' code */
    }
    int nent = 0;
    for (int i = 0; i < pm->nfuncs; i++) nent += pm->funcs[i].is_entry && pm->funcs[i].has_body;
    m->kernels = calloc((size_t)nent + 1, sizeof(*m->kernels));
    if (!m->kernels) goto fail;
    for (int i = 0; i < pm->nfuncs; i++) {
        if (!pm->funcs[i].is_entry || !pm->funcs[i].has_body) continue;
        ptx_kernel *k = kernel_shell(pm, m, &pm->funcs[i], i);
        if (!k) goto fail;
        m->kernels[m->nkernels++] = k;
    }
    *err = PTXE_SUCCESS;
    return 0;
fail:
    if (*err == PTXE_INVALID_PTX && pm->log && !pm->log[0]) logf_(pm->log, pm->loglen, "PTX: out of memory");
    for (int i = 0; i < pm->nvars; i++) {
        int owned_by_m = 0;
        for (int j = 0; j < m->nvars; j++) owned_by_m |= m->vars[j].addr == pm->vars[i].addr;
        if (pm->vars[i].space != SP_SHARED && pm->vars[i].addr && !owned_by_m && pm->env->free_device)
            pm->env->free_device(pm->env->ctx, (void *)(uintptr_t)pm->vars[i].addr);
    }
    return -1;
}

static int check_args(const char *ptx_text, const ptx_env *env, int *err, char *log, size_t loglen) {
    if (log && loglen) log[0] = 0;
    if (!ptx_text || !env) {
        *err = PTXE_INVALID_VALUE;
        logf_(log, loglen, "PTX: no text or env");
        return -1;
    }
    return 0;
}

static void record_failure(ptx_kernel *k, int err, const char *log) {
    k->decode_err = err;
    free(k->decode_log);
    k->decode_log = strdup(log && log[0] ? log : "PTX decode failed");
    __atomic_store_n(&k->decode_state, -1, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ ptx.h API */
ptx_module *ptx_module_load(const char *ptx_text, size_t len, const ptx_env *env, int *err, char *log,
                            size_t loglen) {
    int dummy;
    if (!err) err = &dummy;
    if (check_args(ptx_text, env, err, log, loglen)) return NULL;
    if (len == 0) len = strlen(ptx_text);
    pmod pm;
    memset(&pm, 0, sizeof(pm));
    pm.env = env;
    pm.log = log;
    pm.loglen = loglen;
    ptx_module *m = calloc(1, sizeof(*m));
    if (!m) { *err = PTXE_OUT_OF_MEMORY; return NULL; }
    m->env = *env;
    if (module_index(&pm, m, ptx_text, len, err)) goto fail;
    *err = PTXE_INVALID_PTX;
    for (int i = 0; i < m->nkernels; i++) {
        ptx_kernel *k = m->kernels[i];
        if (compile_entry(&pm, &pm.funcs[k->fidx], k)) goto fail;
        k->decode_state = 1;
    }
    pmod_release(&pm);
    *err = PTXE_SUCCESS;
    return m;
fail:
    pmod_release(&pm);
    ptx_module_free(m);
    return NULL;
}

ptx_module *ptx_module_open(const char *ptx_text, size_t len, const ptx_env *env, int *err, char *log,
                            size_t loglen) {
    int dummy;
    if (!err) err = &dummy;
    if (check_args(ptx_text, env, err, log, loglen)) return NULL;
    if (len == 0) len = strlen(ptx_text);
    ptx_module *m = calloc(1, sizeof(*m));
    struct ptx_lazy *z = calloc(1, sizeof(*z));
    char *text = malloc(len + 1);
    if (!m || !z || !text || pthread_mutex_init(&z->mu, NULL)) {
        free(m);
        free(z);
        free(text);
        *err = PTXE_OUT_OF_MEMORY;
        return NULL;
    }
    memcpy(text, ptx_text, len);
    text[len] = 0;
    z->text = text;
    z->len = len;
    m->env = *env;
    m->lazy = z;
    z->pm.env = &m->env;
    z->pm.log = log;
    z->pm.loglen = loglen;
    if (module_index(&z->pm, m, text, len, err)) {
        ptx_module_free(m);
        return NULL;
    }
    free(z->pm.t); /* lexed again at the first decode: tokens are ~5x the text */
    z->pm.t = NULL;
    z->pm.nt = 0;
    z->pm.log = NULL;
    z->pm.loglen = 0;
    z->pending = m->nkernels;
    if (!z->pending) { /* nothing to decode: keep only the variables */
        m->lazy = NULL;
        lazy_free(z);
    }
    return m;
}

int ptx_kernel_decode(const ptx_kernel *kc_, char *log, size_t loglen) {
    if (log && loglen) log[0] = 0;
    if (!kc_) return PTXE_INVALID_VALUE;
    ptx_kernel *k = (ptx_kernel *)kc_;
    int st = __atomic_load_n(&k->decode_state, __ATOMIC_ACQUIRE);
    if (st == 0) {
        ptx_module *m = (ptx_module *)k->mod;
        struct ptx_lazy *z = m->lazy;
        pthread_mutex_lock(&z->mu);
        st = __atomic_load_n(&k->decode_state, __ATOMIC_ACQUIRE);
        if (st == 0) {
            char buf[512] = "";
            z->pm.log = buf;
            z->pm.loglen = sizeof(buf);
            if (!z->pm.t && lex(z->text, z->len, &z->pm.t, &z->pm.nt)) {
                z->pm.t = NULL;
                logf_(buf, sizeof(buf), "PTX: out of memory reading kernel %s", k->name);
                k->decode_err = PTXE_OUT_OF_MEMORY; /* not remembered: a later call may succeed */
                st = 2;
            } else if (compile_entry(&z->pm, &z->pm.funcs[k->fidx], k)) {
                record_failure(k, PTXE_INVALID_PTX, buf);
                st = -1;
            } else {
                ptx_pool_fragment_slots(k);
                __atomic_store_n(&k->decode_state, 1, __ATOMIC_RELEASE);
                st = 1;
            }
            z->pm.log = NULL;
            z->pm.loglen = 0;
            if (st != 2 && --z->pending == 0) { /* every kernel decoded: the text is no longer needed */
                pmod_release(&z->pm);
                free(z->text);
                z->text = NULL;
            }
            if (st == 2) {
                logf_(log, loglen, "%s", buf);
                pthread_mutex_unlock(&z->mu);
                return PTXE_OUT_OF_MEMORY;
            }
        }
        pthread_mutex_unlock(&z->mu);
    }
    if (st == 1) return PTXE_SUCCESS;
    logf_(log, loglen, "%s", k->decode_log ? k->decode_log : "PTX decode failed");
    return k->decode_err ? k->decode_err : PTXE_INVALID_PTX;
}

int ptx_kernel_is_decoded(const ptx_kernel *k) { return k && __atomic_load_n(&k->decode_state, __ATOMIC_ACQUIRE) == 1; }

void ptx_module_free(ptx_module *m) {
    if (!m) return;
    for (int i = 0; i < m->nkernels; i++) kernel_free(m->kernels[i]);
    free(m->kernels);
    if (m->vars) {
        for (int i = 0; i < m->nvars; i++) {
            if (m->env.free_device && m->vars[i].addr) m->env.free_device(m->env.ctx, (void *)(uintptr_t)m->vars[i].addr);
            free(m->vars[i].name);
        }
        free(m->vars);
    }
    lazy_free(m->lazy);
    free(m);
}

const ptx_kernel *ptx_module_get_kernel(const ptx_module *m, const char *name) {
    if (!m || !name) return NULL;
    for (int i = 0; i < m->nkernels; i++)
        if (!strcmp(m->kernels[i]->name, name)) return m->kernels[i];
    return NULL;
}

int ptx_module_kernel_count(const ptx_module *m) { return m ? m->nkernels : 0; }

const ptx_kernel *ptx_module_kernel_at(const ptx_module *m, int i) {
    if (!m || i < 0 || i >= m->nkernels) return NULL;
    return m->kernels[i];
}

const char *ptx_kernel_name(const ptx_kernel *k) { return k ? k->name : NULL; }

int ptx_module_get_global(const ptx_module *m, const char *name, uint64_t *addr, size_t *bytes) {
    if (!m || !name) return PTXE_INVALID_VALUE;
    for (int i = 0; i < m->nvars; i++) {
        if (!strcmp(m->vars[i].name, name)) {
            if (addr) *addr = m->vars[i].addr;
            if (bytes) *bytes = m->vars[i].bytes;
            return 0;
        }
    }
    return PTXE_NOT_FOUND;
}

int ptx_kernel_param_count(const ptx_kernel *k) { return k ? k->nparams : 0; }

int ptx_kernel_param_info(const ptx_kernel *k, int index, size_t *offset, size_t *size) {
    if (!k || index < 0 || index >= k->nparams) return PTXE_INVALID_VALUE;
    if (offset) *offset = k->param_off[index];
    if (size) *size = k->param_size[index];
    return 0;
}

size_t ptx_kernel_param_buffer_size(const ptx_kernel *k) { return k ? k->param_bytes : 0; }

void ptx_kernel_get_attrs(const ptx_kernel *k, ptx_kernel_attrs *out) {
    if (!out) return;
    memset(out, 0, sizeof(*out));
    if (!k) return;
    out->static_shared_bytes = k->shared_static;
    out->local_bytes_per_thread = k->local_bytes;
    /* What ptxas would allocate, bounded as it bounds it: at most 255, at most .maxnreg, and few enough that
     * .minnctapersm blocks (default 1) of the kernel's maximum block size fit in the 64K-register file
     * (allocated per warp, in steps of 8 registers a thread). The PTX's virtual registers are only an upper
     * bound; without the cap a block of MAX_THREADS_PER_BLOCK threads could never be resident, and occupancy
     * calculators (CUB's grid sizing) would divide by a zero occupancy. */
    int cap = 255;
    if (k->maxnreg > 0 && k->maxnreg < cap) cap = k->maxnreg;
    const int warps = (k->maxntid + 31) / 32, blocks = k->minnctapersm > 0 ? k->minnctapersm : 1;
    const int fit = 65536 / (blocks * warps * 32) / 8 * 8;
    if (fit < cap) cap = fit < 8 ? 8 : fit;
    out->num_regs = k->nregs > cap ? cap : k->nregs;
    out->max_threads_per_block = k->maxntid;
}

const char *ptx_op_name(int op) {
    static const char *names[] = {
#define X(e) #e,
        PTX_OPS(X)
#undef X
    };
    return op >= 0 && op < OP_COUNT ? names[op] : "?";
}
