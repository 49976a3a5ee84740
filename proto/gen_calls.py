#!/usr/bin/env python3
"""Generates both sides of the remote data path from proto/calls.tbl.

Called by stub_c/Makefile (`gen_calls.py --stub OUTDIR`) and tfworker/executor/Makefile
(`gen_calls.py --exec OUTDIR`); the outputs live in the build tree and are never edited by hand:
  tf_calls.h      call ids (TF_CALL_*), TF_N_CALLS, TF_TABLE_HASH, names        (both sides)
  stub_calls.h/c  rpc_SYMBOL marshallers, exported wrappers, _ptds/_ptsz variants, the
                  cuGetProcAddress table                                          (--stub)
  exec_calls.h/c  backend function-pointer table + loader, decode/validate/dispatch of every
                  call id                                                         (--exec)
  FILE            one probe per required output pointer of every forwarded function:
                  the call with it NULL (tests/cuda/null_outputs.cu)               (--null-probes FILE)
Signatures are not written in the table: they come from cudaTypedefs.h (PFN_<api>_v<version>), so the
stub exports exactly the ABI cudart was compiled against. Every other function of cuda.h (listed by
proto/cuda_api.py) gets a generated export answering CUDA_ERROR_NOT_SUPPORTED: a row added later
simply replaces it.
"""
import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))

HANDLE_KINDS = {
    "CUcontext": "TFK_CTX", "CUmodule": "TFK_MOD", "CUfunction": "TFK_FUNC", "CUlibrary": "TFK_LIB",
    "CUkernel": "TFK_KERNEL", "CUstream": "TFK_STREAM", "CUevent": "TFK_EVENT",
    "CUmemoryPool": "TFK_POOL", "CUlinkState": "TFK_LINK", "CUgraph": "TFK_GRAPH", "CUgraphNode": "TFK_GNODE",
    "CUgraphExec": "TFK_GEXEC",
    "CUarray": "TFK_ARRAY", "CUmipmappedArray": "TFK_MIPMAP", "CUtexObject_v1": "TFK_TEXOBJ",
    "CUsurfObject_v1": "TFK_SURFOBJ",
}
DEVPTR_TYPES = {"CUdeviceptr", "CUdeviceptr_v2", "CUdeviceptr_v1"}


@dataclass
class Param:
    name: str
    ctype: str          # full C type as written, e.g. "const void *"
    base: str           # pointee / scalar base type without const, e.g. "void"
    ptr: int            # pointer depth
    kind: str = "val"   # val | out | inout | in | inbuf | outbuf | str | zero
    expr: str = ""      # element-count expression for inbuf/outbuf, byte expr for dev
    dev: str = ""       # dev[...] range expression (CUdeviceptr scalars)
    free: bool = False
    null: bool = False
    alloc: str = ""
    parent: str = ""
    beside: str = ""    # beside(P): registered with the parent handle parameter P is registered with
    byval: bool = False  # a pointer that travels as its value (a device address typed void *)

    @property
    def elem_size(self) -> str:
        return "1" if self.base == "void" else f"sizeof({self.base})"

    @property
    def local_type(self) -> str:
        return self.ctype


@dataclass
class Call:
    sym: str
    api: str
    ver: int
    cls: str
    params: list = field(default_factory=list)
    ptds: str = ""        # "" | "ptds" | "ptsz"
    ptds_ver: int = 0
    scope_ctx: bool = False
    ptds_hand: bool = False  # the _ptds/_ptsz variant is hand-written too  # a context-wide synchronize: returns errors latched on any stream
    stub_hand: bool = False
    hostmem: bool = False    # moves client bytes through executor memory: refused on a capturing stream
    exec_hand: bool = False
    internal: bool = False
    alias: str = ""       # proc-address entry served by another row's function (same ABI)
    pfn: str = ""
    line: int = 0

    @property
    def wire(self) -> bool:
        return self.cls not in ("local", "alias")


def split_params(sig: str) -> list:
    sig = sig.strip()
    if sig in ("", "void"):
        return []
    out = []
    for raw in sig.split(","):
        raw = " ".join(raw.replace("*", " * ").split())
        m = re.search(r"(\w+)$", raw)
        if not m:
            raise ValueError(f"cannot parse parameter {raw!r}")
        name = m.group(1)
        typ = raw[: m.start()].strip()
        ptr = typ.count("*")
        base = typ.replace("*", " ").replace("const ", " ").split()
        base = " ".join(base)
        ctype = typ.replace(" *", "*").replace("* ", "*").replace("*", " *").strip()
        out.append(Param(name=name, ctype=ctype, base=base, ptr=ptr))
    return out


def load_typedefs(path: str) -> dict:
    text = open(path, encoding="utf-8").read()
    sigs = {}
    for m in re.finditer(r"typedef\s+CUresult\s+\(CUDAAPI\s+\*PFN_(\w+?)_v(\d+)(_ptds|_ptsz)?\)\s*\((.*?)\);",
                         text, re.S):
        key = (m.group(1), int(m.group(2)), (m.group(3) or "").lstrip("_"))
        sigs.setdefault(key, " ".join(m.group(4).split()))
    return sigs


def parse_table(path: str, sigs: dict) -> list:
    calls = []
    for lineno, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        sig = None
        m = re.search(r"\bsig\((.*?)\)(?=\s|$)", line)
        if m:
            sig = m.group(1)
            line = line[: m.start()] + line[m.end():]
        toks = line.split()
        if len(toks) < 4:
            sys.exit(f"calls.tbl:{lineno}: need SYMBOL API VERSION CLASS")
        sym, api, ver, cls = toks[0], toks[1], int(toks[2]), toks[3]
        if cls not in ("sync", "async", "local", "alias"):
            sys.exit(f"calls.tbl:{lineno}: bad class {cls}")
        c = Call(sym=sym, api=api, ver=ver, cls=cls, internal=(api == "-"), line=lineno)
        if c.internal:
            if sig is None:
                sys.exit(f"calls.tbl:{lineno}: internal call needs sig(...)")
            c.params = split_params(sig)
        else:
            key = (api, ver, "")
            if key not in sigs:
                sys.exit(f"calls.tbl:{lineno}: no PFN_{api}_v{ver} in cudaTypedefs.h")
            c.params = split_params(sigs[key])
            c.pfn = f"PFN_{api}_v{ver}"
        byname = {p.name: p for p in c.params}
        for t in toks[4:]:
            if t == "ptds":
                # the per-thread variants of THIS version: those whose newest plain version <= theirs
                # is this row's (cuStreamGetCtx v9020 -> _ptsz v9020, not cuStreamGetCtx_v2's 12050)
                plain = [k[1] for k in sigs if k[0] == api and not k[2]]
                found = [(k[1], k[2]) for k in sigs if k[0] == api and k[2]
                         and max((p for p in plain if p <= k[1]), default=0) == ver]
                if not found:
                    sys.exit(f"calls.tbl:{lineno}: {api} v{ver} has no _ptds/_ptsz variant")
                c.ptds_ver, c.ptds = max(found)
            elif t == "stub=hand":
                c.stub_hand = True
            elif t == "exec=hand":
                c.exec_hand = True
            elif t == "ptds=hand":
                c.ptds_hand = True
            elif t == "scope=ctx":
                c.scope_ctx = True
            elif t == "hostmem":
                c.hostmem = True
            elif t.startswith("alias="):
                c.alias = t[6:]
            elif ":" in t:
                pname, spec = t.split(":", 1)
                if pname not in byname:
                    sys.exit(f"calls.tbl:{lineno}: {sym} has no parameter {pname}")
                apply_annotation(byname[pname], spec, lineno)
            else:
                sys.exit(f"calls.tbl:{lineno}: unknown token {t}")
        for p in c.params:
            if p.ptr and p.kind == "val" and not p.byval and c.cls not in ("local", "alias"):
                sys.exit(f"calls.tbl:{lineno}: pointer parameter {p.name} of {sym} needs an annotation")
        calls.append(c)
    return calls


def apply_annotation(p: Param, spec: str, lineno: int) -> None:
    opts = re.findall(r"[a-z]+(?:\[[^\]]*\]|\([^)]*\))?", spec)
    for o in opts:
        if o in ("out", "inout", "in", "str", "zero"):
            p.kind = o
        elif o.startswith("in["):
            p.kind, p.expr = "inbuf", o[3:-1]
        elif o.startswith("out["):
            p.kind, p.expr = "outbuf", o[4:-1]
        elif o.startswith("dev["):
            p.dev = o[4:-1]
        elif o == "free":
            p.free = True
        elif o == "null":
            p.null = True
        elif o == "byval":
            p.byval = True
        elif o.startswith("alloc("):
            p.alloc = o[6:-1]
        elif o.startswith("parent("):
            p.parent = o[7:-1]
        elif o.startswith("beside("):
            p.beside = o[7:-1]
        else:
            sys.exit(f"calls.tbl:{lineno}: unknown annotation {o} on {p.name}")


def proto_args(params) -> str:
    return ", ".join(f"{p.ctype} {p.name}" if not p.ctype.endswith("*") else f"{p.ctype}{p.name}"
                     for p in params) or "void"


def call_args(params) -> str:
    return ", ".join(p.name for p in params)


def table_hash(calls) -> int:
    h = hashlib.sha256()
    for i, c in enumerate(calls):
        if c.wire:
            h.update(f"{i}:{c.sym}:{c.cls}:" .encode())
            for p in c.params:
                h.update(f"{p.ctype} {p.name} {p.kind} {p.expr};".encode())
    return int.from_bytes(h.digest()[:4], "little")


# ------------------------------------------------------------------------------------------- common
def gen_common(calls) -> str:
    o = ["/* Generated by proto/gen_calls.py from proto/calls.tbl - DO NOT EDIT. */",
         "#ifndef TF_CALLS_H", "#define TF_CALLS_H", "#include \"calls_wire.h\"", "enum tf_call_id {"]
    wire = [c for c in calls if c.wire]
    for i, c in enumerate(wire):
        o.append(f"    TF_CALL_{c.sym} = {i},")
    o.append(f"    TF_N_CALLS = {len(wire)}")
    o.append("};")
    o.append(f"#define TF_TABLE_HASH 0x{table_hash(calls):08x}u")
    o.append("/* bytes of each call's fixed part (before padding), for hand-written streaming paths */")
    for c in wire:
        parts = []
        for p in c.params:
            if p.kind == "val":
                parts.append(f"sizeof({p.ctype})")
            elif p.kind == "str":
                parts.append("4")
            elif p.kind != "zero":
                parts.append("1")
        o.append(f"#define TF_FIXED_{c.sym} ({' + '.join(parts) or '0'})")
    o.append("static const char *const tf_call_names[TF_N_CALLS] = {")
    o += [f'    "{c.sym}",' for c in wire]
    o.append("};")
    o.append("#endif")
    return "\n".join(o) + "\n"


# ---------------------------------------------------------------------------------------------- stub
def stub_rpc(c: Call) -> list:
    """enc_SYM fills a tfc_call (used alone by pipelined hand-written paths); rpc_SYM sends it."""
    o = [f"TF_HIDDEN CUresult enc_{c.sym}(tfc_call *c{''.join(', ' + a for a in proto_args(c.params).split(', ') if a != 'void')})",
         "{", f"    tfc_begin(c, TF_CALL_{c.sym});"]
    o += [f"    (void){p.name};  /* zero: not sent */" for p in c.params if p.kind == "zero"]
    # CU_STREAM_PER_THREAD is the calling thread's own stream on the worker (api_streams.c)
    for p in c.params:
        if p.kind == "val" and p.base == "CUstream":
            o.append(f"    {{ CUresult src = tf_stream_wire(&{p.name}); if (src != CUDA_SUCCESS) return src; }}")
    stream = next((p for p in c.params if p.kind == "val" and p.base == "CUstream"), None)
    if c.scope_ctx:
        o.append("    c->scope = TFC_SCOPE_CTX;")
    elif stream:
        o.append(f"    c->scope = TFC_SCOPE_STREAM;")
        o.append(f"    c->stream = (uint64_t)(uintptr_t){stream.name};")
    for p in c.params:  # fixed part
        if p.kind == "val":
            o.append(f"    tfc_put(c, &{p.name}, sizeof {p.name});")
        elif p.kind == "str":
            o.append(f"    uint32_t {p.name}_n = {p.name} ? (uint32_t)strlen({p.name}) + 1u : 0u;")
            o.append(f"    tfc_put(c, &{p.name}_n, sizeof {p.name}_n);")
        elif p.kind != "zero":
            o.append(f"    uint8_t {p.name}_p = {p.name} != NULL;")
            o.append(f"    tfc_put(c, &{p.name}_p, 1);")
    for p in c.params:  # variable part, then outputs
        if p.kind in ("in", "inout"):
            o.append(f"    if ({p.name}) tfc_var(c, {p.name}, sizeof *{p.name});")
        elif p.kind == "inbuf":
            o.append(f"    if ({p.name}) {{ uint64_t nb = tf_mul((uint64_t)({p.expr}), {p.elem_size});"
                     f" if (nb > TF_MAX_FRAME) return CUDA_ERROR_INVALID_VALUE;"
                     f" tfc_var(c, {p.name}, (size_t)nb); }}")
        elif p.kind == "str":
            o.append(f"    if ({p.name}) tfc_var(c, {p.name}, {p.name}_n);")
    for p in c.params:
        if p.kind in ("out", "inout"):
            o.append(f"    if ({p.name}) tfc_out(c, {p.name}, sizeof *{p.name});")
        elif p.kind == "outbuf":
            derefs = [q.name for q in c.params if q.ptr and re.search(rf"\*\s*{q.name}\b", p.expr)]
            guard = "".join(f" if (!{d}) return CUDA_ERROR_INVALID_VALUE;" for d in derefs)
            o.append(f"    if ({p.name}) {{{guard} uint64_t nb = tf_mul((uint64_t)({p.expr}), {p.elem_size});"
                     f" if (nb > TF_MAX_FRAME) return CUDA_ERROR_INVALID_VALUE;"
                     f" tfc_out(c, {p.name}, (size_t)nb); }}")
    o.append("    return CUDA_SUCCESS;")
    o.append("}")
    o += [f"TF_HIDDEN CUresult rpc_{c.sym}({proto_args(c.params)})", "{", "    tfc_call c;",
          f"    CUresult rc = enc_{c.sym}(&c{''.join(', ' + p.name for p in c.params)});",
          "    if (rc != CUDA_SUCCESS) return rc;",
          f"    return tfc_{'async' if c.cls == 'async' else 'sync'}(&c);", "}"]
    return o


def gen_stub(calls, entries) -> tuple:
    """entries: cuda_api.api_entries() - every (api, version, variant, symbol) of cuda.h. Every symbol
    no row exports gets a generated function answering CUDA_ERROR_NOT_SUPPORTED (its name logged once)
    and its cuGetProcAddress entries, so the stub exports the header's whole API."""
    h = ["/* Generated by proto/gen_calls.py from proto/calls.tbl - DO NOT EDIT.",
         " * Prototypes of the generated marshallers (rpc_*) and of the hand-written exported functions",
         " * (tfs_*: C names; the exported symbol is the CUDA name, set with an asm label). */",
         "#ifndef TF_STUB_CALLS_H", "#define TF_STUB_CALLS_H", "#include \"tf_calls.h\"",
         "#define TF_HIDDEN __attribute__((visibility(\"hidden\")))",
         "#define TF_EXPORT __attribute__((visibility(\"default\")))"]
    c_ = ["/* Generated by proto/gen_calls.py from proto/calls.tbl - DO NOT EDIT. */",
          "#include <string.h>", "#include \"stub.h\"", "#include \"stub_calls.h\""]
    procs = []
    exported = set()
    sym_of = {(a, v, var): s for a, v, var, s in entries}
    for c in calls:
        args = proto_args(c.params)
        if c.wire:
            h.append(f"TF_HIDDEN CUresult rpc_{c.sym}({args});")
            h.append(f"TF_HIDDEN CUresult enc_{c.sym}(tfc_call *c{''.join(', ' + a for a in args.split(', ') if a != 'void')});")
            c_ += stub_rpc(c)
        if c.internal:
            continue
        if sym_of.get((c.api, c.ver, "")) != c.sym:
            sys.exit(f"calls.tbl:{c.line}: cuda.h's symbol for {c.api} v{c.ver} is "
                     f"{sym_of.get((c.api, c.ver, ''))}, not {c.sym}")
        exported.add(c.sym)
        h.append(f"TF_EXPORT CUresult tfs_{c.sym}({args}) __asm__(\"{c.sym}\");")
        if c.alias:  # an older version with the same ABI: its symbol calls the newer one
            c_.append(f"TF_EXPORT CUresult tfs_{c.sym}({args})")
            c_.append(f"{{ return tfs_{c.alias}({call_args(c.params)}); }}")
        elif not (c.stub_hand or c.cls == "local"):
            c_.append(f"TF_EXPORT CUresult tfs_{c.sym}({args})")
            c_.append(f"{{ return rpc_{c.sym}({call_args(c.params)}); }}")
        procs.append((c.api, c.ver, 0, f"tfs_{c.sym}"))
        if c.ptds:
            vsym = f"{c.sym}_{c.ptds}"
            exported.add(vsym)
            h.append(f"TF_EXPORT CUresult tfs_{vsym}({args}) __asm__(\"{vsym}\");")
            procs.append((c.api, c.ptds_ver, 1, f"tfs_{vsym}"))
            if c.ptds_hand:
                continue
            c_.append(f"TF_EXPORT CUresult tfs_{vsym}({args})")
            c_.append("{")
            for p in c.params:
                if p.base == "CUstream" and p.name in ("hStream", "stream"):
                    c_.append(f"    if ({p.name} == NULL) {p.name} = CU_STREAM_PER_THREAD;")
                    break
            c_.append(f"    return tfs_{c.sym}({call_args(c.params)});")
            c_.append("}")
    # the rest of cuda.h: exported, resolvable at every version, answering NOT_SUPPORTED
    unsup = sorted({s for _, _, _, s in entries} - exported)
    c_.append("/* cuda.h functions no calls.tbl row serves (the parameters are never read). */")
    c_.append(f"static int tf_unsup_logged[{max(len(unsup), 1)}];")
    for i, s in enumerate(unsup):
        c_.append(f"TF_EXPORT CUresult tfu_{s}(void) __asm__(\"{s}\");")
        c_.append(f"TF_EXPORT CUresult tfu_{s}(void) {{ return tf_unsupported(\"{s}\", &tf_unsup_logged[{i}]); }}")
    for a, v, var, s in entries:
        if s in unsup:
            procs.append((a, v, 1 if var else 0, f"tfu_{s}"))
    procs.sort()
    c_.append("TF_HIDDEN const tf_proc_entry tf_proc_table[] = {")
    c_ += [f'    {{"{a}", {v}, {pt}, (void *)&{fn}}},' for a, v, pt, fn in procs]
    c_.append("};")
    c_.append(f"TF_HIDDEN const size_t tf_proc_count = {len(procs)};")
    c_.append(f"TF_HIDDEN const size_t tf_unsupported_count = {len(unsup)};")
    h.append("typedef struct tf_proc_entry { const char *api; int version; int ptds; void *fn; } tf_proc_entry;")
    h.append("extern const tf_proc_entry tf_proc_table[];")
    h.append("extern const size_t tf_proc_count;")
    h.append("/* how many cuda.h functions answer NOT_SUPPORTED (generated defaults) */")
    h.append("extern const size_t tf_unsupported_count;")
    h.append("#endif")
    return "\n".join(h) + "\n", "\n".join(c_) + "\n"


# ------------------------------------------------------------------------------------------ executor
def parent_args(c: Call, p) -> str:
    """The parent key and kind tf_reg_add takes for out handle p (parent(P) in the table), "0, TFK_NONE" if none."""
    if not p.parent:
        return "0, TFK_NONE"
    par = next(q for q in c.params if q.name == p.parent)
    kind = HANDLE_KINDS.get(par.base)
    if not kind:
        raise SystemExit(f"{c.sym}: parent({p.parent}) is not a handle parameter")
    return f"(uint64_t)(uintptr_t){p.parent}, {kind}"


def reg_add(c: Call, p, key: str) -> str:
    """The registration of out handle `key` of parameter p: with the parent parent(P) names, or (beside(P)) with
    the parent handle parameter P is registered with."""
    kind = HANDLE_KINDS.get(p.base)
    if not p.beside:
        return f"tf_reg_add(x, (uint64_t)(uintptr_t){key}, {kind}, {parent_args(c, p)});"
    sib = next(q for q in c.params if q.name == p.beside)
    sib_kind = HANDLE_KINDS.get(sib.base)
    if not sib_kind:
        raise SystemExit(f"{c.sym}: beside({p.beside}) is not a handle parameter")
    return f"tf_reg_add_beside(x, (uint64_t)(uintptr_t){key}, {kind}, (uint64_t)(uintptr_t){p.beside}, {sib_kind});"


def exec_dispatch(c: Call) -> list:
    o = [f"static CUresult d_{c.sym}(tfx *x, tf_rd *r, tf_wr *w)", "{"]
    stream = next((p for p in c.params if p.kind == "val" and p.base == "CUstream"), None)
    # declarations + fixed part
    for p in c.params:
        if p.kind == "val":
            o.append(f"    {p.ctype} {p.name};")
            o.append(f"    if (tf_get(r, &{p.name}, sizeof {p.name})) return CUDA_ERROR_INVALID_VALUE;")
            if p is stream:
                o.append(f"    x->cur_stream = (uint64_t)(uintptr_t){p.name};  /* where a latched error belongs */")
        elif p.kind == "zero":
            o.append(f"    {p.ctype}{'' if p.ctype.endswith('*') else ' '}{p.name} = 0;")
        elif p.kind == "str":
            o.append(f"    uint32_t {p.name}_n;")
            o.append(f"    if (tf_get(r, &{p.name}_n, sizeof {p.name}_n)) return CUDA_ERROR_INVALID_VALUE;")
        else:
            o.append(f"    uint8_t {p.name}_p;")
            o.append(f"    if (tf_get(r, &{p.name}_p, 1) || {p.name}_p > 1) return CUDA_ERROR_INVALID_VALUE;")
    # variable part
    for p in c.params:
        if p.kind in ("in", "inout", "inbuf", "str"):
            if p.kind == "str":
                nb = f"(uint64_t){p.name}_n"
                present = f"{p.name}_n"
            elif p.kind == "inbuf":
                nb = f"tf_mul((uint64_t)({p.expr}), {p.elem_size})"
                present = f"{p.name}_p"
            else:
                nb = f"sizeof({p.base})"
                present = f"{p.name}_p"
            if p.kind == "inout":
                o.append(f"    {p.base} {p.name}_v;")
                o.append(f"    memset(&{p.name}_v, 0, sizeof {p.name}_v);")
                o.append(f"    {p.ctype}{p.name} = NULL;")
                o.append(f"    if ({present}) {{ const void *q = tf_take(r, {nb}); if (!q) return CUDA_ERROR_INVALID_VALUE;"
                         f" memcpy(&{p.name}_v, q, sizeof {p.name}_v); {p.name} = &{p.name}_v; }}")
            else:
                o.append(f"    {p.ctype}{p.name} = NULL;")
                o.append(f"    if ({present}) {{ {p.name} = ({p.ctype})(uintptr_t)tf_take(r, {nb});"
                         f" if (!{p.name}) return CUDA_ERROR_INVALID_VALUE; }}")
            if p.kind == "str":
                o.append(f"    if ({p.name} && {p.name}[{p.name}_n - 1] != 0) return CUDA_ERROR_INVALID_VALUE;")
    o.append("    if (!tf_done(r)) return CUDA_ERROR_INVALID_VALUE;")
    # validation
    for p in c.params:
        if p.kind != "val":
            continue
        kind = HANDLE_KINDS.get(p.base)
        if kind:
            err = "CUDA_ERROR_INVALID_CONTEXT" if kind == "TFK_CTX" else "CUDA_ERROR_INVALID_HANDLE"
            if kind == "TFK_STREAM":
                cond = f"(uintptr_t){p.name} > 2 && !tf_reg_has(x, (uint64_t)(uintptr_t){p.name}, TFK_STREAM)"
            elif kind == "TFK_CTX" or p.null:
                cond = f"{p.name} && !tf_reg_has(x, (uint64_t)(uintptr_t){p.name}, {kind})"
            elif kind == "TFK_FUNC":
                cond = (f"!tf_reg_has(x, (uint64_t)(uintptr_t){p.name}, TFK_FUNC) && "
                        f"!tf_reg_has(x, (uint64_t)(uintptr_t){p.name}, TFK_KERNEL)")
            else:
                cond = f"!tf_reg_has(x, (uint64_t)(uintptr_t){p.name}, {kind})"
            if p.free and not p.null and kind in ("TFK_CTX", "TFK_STREAM"):
                cond = f"!tf_reg_has(x, (uint64_t)(uintptr_t){p.name}, {kind})"
            o.append(f"    if ({cond}) return {err};")
        elif p.base in DEVPTR_TYPES:
            if p.free and p.null:  # 0 is CUDA's no-op: the backend answers it (success, or a context error)
                o.append(f"    if ({p.name} && !tf_dev_is_base(x, (uint64_t){p.name})) return CUDA_ERROR_INVALID_VALUE;")
            elif p.free:
                o.append(f"    if (!tf_dev_is_base(x, (uint64_t){p.name})) return CUDA_ERROR_INVALID_VALUE;")
            elif p.dev:
                o.append(f"    if (!tf_dev_ok(x, (uint64_t){p.name}, (uint64_t)({p.dev}))) return CUDA_ERROR_INVALID_VALUE;")
    # arrays of handles (graph node lists): every element must be one of the session's
    for p in c.params:
        kind = HANDLE_KINDS.get(p.base)
        if p.kind == "inbuf" and kind:
            o.append(f"    if ({p.name}) for (uint64_t i = 0; i < (uint64_t)({p.expr}); i++)"
                     f" if (!tf_reg_has(x, (uint64_t)(uintptr_t){p.name}[i], {kind})) return CUDA_ERROR_INVALID_VALUE;")
    if c.hostmem and stream:
        o.append(f"    if (tfx_stream_capturing(x, {stream.name})) return tfx_refuse_captured_host_copy(x, {stream.name}, \"{c.sym}\");")
    # outputs: reserve reply space in parameter order, then point into it
    sized_by = {q.name for q in c.params for a in c.params if a.alloc and re.search(rf"\*\s*{q.name}\b", a.alloc)}
    for p in c.params:
        if p.kind == "out":
            o.append(f"    {p.base} {p.name}_v;")
            o.append(f"    memset(&{p.name}_v, 0, sizeof {p.name}_v);")
            o.append(f"    size_t {p.name}_o = {p.name}_p ? tf_reserve(w, sizeof {p.name}_v) : 0;")
            # the client's NULL reaches the backend, which answers it as CUDA does; a hand-written
            # function always gets its outputs: an absent one is CUDA's answer to a NULL output
            # function always gets its outputs: an absent one is CUDA's answer to a NULL output. An output
            # an alloc(...) size reads (*bytes of cuModuleGetGlobal, optional there) is always backed, since
            # the executor registers the allocation with it
            if c.exec_hand and not p.null:
                o.append(f"    if (!{p.name}_p) return CUDA_ERROR_INVALID_VALUE;")
            if p.name in sized_by:
                o.append(f"    {p.ctype}{p.name} = &{p.name}_v;")
            else:
                o.append(f"    {p.ctype}{p.name} = {p.name}_p ? &{p.name}_v : NULL;")
        elif p.kind == "inout":
            o.append(f"    size_t {p.name}_o = {p.name}_p ? tf_reserve(w, sizeof {p.name}_v) : 0;")
        elif p.kind == "outbuf":
            derefs = [q.name for q in c.params if q.ptr and re.search(rf"\*\s*{q.name}\b", p.expr)]
            # a count read through another pointer parameter (*numNodes) needs that pointer
            o.append(f"    uint64_t {p.name}_nb = 0;")
            guard = "".join(f" if (!{d}) return CUDA_ERROR_INVALID_VALUE;" for d in derefs)
            o.append(f"    if ({p.name}_p) {{{guard} {p.name}_nb = tf_mul((uint64_t)({p.expr}), {p.elem_size}); }}")
            o.append(f"    if ({p.name}_p && {p.name}_nb > TF_MAX_FRAME) return CUDA_ERROR_INVALID_VALUE;")
            o.append(f"    size_t {p.name}_o = {p.name}_p ? tf_reserve(w, (size_t){p.name}_nb) : 0;")
    o.append("    if (w->failed) return CUDA_ERROR_OUT_OF_MEMORY;")
    for p in c.params:
        if p.kind == "outbuf":
            o.append(f"    {p.ctype}{p.name} = {p.name}_p ? ({p.ctype})(w->buf + {p.name}_o) : NULL;")
            o.append(f"    if ({p.name}) memset({p.name}, 0, (size_t){p.name}_nb);  /* never stale bytes to the client */")
    # the call
    if c.exec_hand:
        o.append(f"    CUresult rc = ex_{c.sym}(x{''.join(', ' + p.name for p in c.params)});")
    else:
        o.append(f"    if (!x->be.f_{c.sym}) return CUDA_ERROR_NOT_SUPPORTED;")
        o.append(f"    CUresult rc = x->be.f_{c.sym}({call_args(c.params)});")
    o.append("    if (rc != CUDA_SUCCESS) return rc;")
    # bookkeeping after success
    for p in c.params:
        kind = HANDLE_KINDS.get(p.base)
        if p.kind == "val" and p.free:
            if kind:
                o.append(f"    tf_reg_del(x, (uint64_t)(uintptr_t){p.name}, {kind});")
            elif p.base in DEVPTR_TYPES:
                o.append(f"    tf_dev_del(x, (uint64_t){p.name});")
        if p.kind == "out":
            if kind:
                o.append(f"    if ({p.name}_p) {reg_add(c, p, p.name + '_v')}")
            if p.alloc:
                o.append(f"    if ({p.name}_p) tf_dev_add(x, (uint64_t){p.name}_v, (uint64_t)({p.alloc}));")
        if p.kind == "outbuf" and kind:
            o.append(f"    if ({p.name}) for (uint64_t i = 0; i < {p.name}_nb / sizeof *{p.name}; i++)"
                     f" {reg_add(c, p, p.name + '[i]')}")
        if p.kind in ("out", "inout"):
            o.append(f"    if ({p.name}_p) memcpy(w->buf + {p.name}_o, &{p.name}_v, sizeof {p.name}_v);")
    o.append("    return CUDA_SUCCESS;")
    o.append("}")
    return o


def gen_exec(calls) -> tuple:
    wire = [c for c in calls if c.wire]
    h = ["/* Generated by proto/gen_calls.py from proto/calls.tbl - DO NOT EDIT.",
         " * Backend function table and the hand-written executor functions (ex_*) the dispatch calls. */",
         "#ifndef TF_EXEC_CALLS_H", "#define TF_EXEC_CALLS_H", "#include <cudaTypedefs.h>",
         "#include <cudaProfilerTypedefs.h>",
         "#include \"tf_calls.h\"", "typedef struct tfx tfx;", "typedef struct tf_backend {"]
    for c in wire:
        if not c.internal:
            h.append(f"    {c.pfn} f_{c.sym};")
    h.append("} tf_backend;")
    h.append("/* dlsym()s every backend symbol of the table (missing ones stay NULL: NOT_SUPPORTED). */")
    h.append("void tf_backend_load(tf_backend *be, void *lib);")
    for c in wire:
        if c.exec_hand:
            h.append(f"CUresult ex_{c.sym}(tfx *x{''.join(', ' + (p.ctype + ' ' if not p.ctype.endswith('*') else p.ctype) + p.name for p in c.params)});")
    h.append("typedef struct tf_rd tf_rd;")
    h.append("typedef struct tf_wr tf_wr;")
    h.append("typedef CUresult (*tf_dispatch_fn)(tfx *x, tf_rd *r, tf_wr *w);")
    h.append("extern const tf_dispatch_fn tf_dispatch[TF_N_CALLS];")
    h.append("#endif")
    c_ = ["/* Generated by proto/gen_calls.py from proto/calls.tbl - DO NOT EDIT. */",
          "#include <dlfcn.h>", "#include <string.h>", "#include \"executor.h\"",
          "void tf_backend_load(tf_backend *be, void *lib)", "{", "    memset(be, 0, sizeof *be);"]
    for c in wire:
        if not c.internal:
            c_.append(f"    *(void **)&be->f_{c.sym} = dlsym(lib, \"{c.sym}\");")
    c_.append("}")
    for c in wire:
        c_ += exec_dispatch(c)
    c_.append("const tf_dispatch_fn tf_dispatch[TF_N_CALLS] = {")
    c_ += [f"    d_{c.sym}," for c in wire]
    c_.append("};")
    return "\n".join(h) + "\n", "\n".join(c_) + "\n"


# ------------------------------------------------------------------------------------- null probes
FIXTURE_VALUES = {"CUdeviceptr": "fx_dptr", "CUdeviceptr_v2": "fx_dptr", "CUdevice": "0", "CUdevice_v1": "0",
                  "CUhostFn": "NULL"}


def probe_arg(p, index, probed) -> str:
    """The argument of parameter p (at position `index`) in a call whose output `probed` is NULL: live fixture
    objects for handles, zeroed scratch memory for the other pointers, 0 for flags and counts (num...), 1 for
    the other scalars."""
    if p is probed:
        return "NULL"
    if p.kind in ("out", "inout", "outbuf"):   # each its own 32 KiB of the scratch: outputs never overlap
        return f"({p.ctype})(void *)(tf_probe_out + {index} * 4096)"
    if p.kind in ("in", "inbuf"):
        return f"({p.ctype})(const void *)tf_probe_in"
    if p.kind == "str":
        return '"k"'
    if p.kind == "zero":
        return f"({p.ctype})0"
    if p.byval:
        return f"({p.ctype})fx_dptr"
    if p.base in HANDLE_KINDS:
        return f"fx.{HANDLE_KINDS[p.base][4:].lower()}"
    if p.base in FIXTURE_VALUES:
        return FIXTURE_VALUES[p.base]
    zero = "flag" in p.name.lower() or p.name.startswith("num")   # no flags, empty lists
    return f"({p.ctype})0" if zero else f"({p.ctype})1"


def gen_null_probes(calls) -> str:
    """One TF_PROBE(key, call, control) line per output pointer of every forwarded driver function that is not
    marked null: the call with that output NULL, and the same call with it given (tests/cuda/null_outputs.cu
    runs them on the emulator and through the stub)."""
    o = ["/* Generated by proto/gen_calls.py from proto/calls.tbl - DO NOT EDIT. */"]
    for c in calls:
        if not c.wire or c.internal:
            continue
        fn = f'(({c.pfn})tf_probe_sym("{c.sym}"))'
        control = ", ".join(probe_arg(p, i, None) for i, p in enumerate(c.params))
        for probed in (p for p in c.params if p.kind in ("out", "outbuf") and not p.null):
            args = ", ".join(probe_arg(p, i, probed) for i, p in enumerate(c.params))
            o.append(f'TF_PROBE("{c.sym}.{probed.name}", {fn}({args}), {fn}({control}))')
    return "\n".join(o) + "\n"


def write(path: str, text: str) -> None:
    if os.path.exists(path) and open(path, encoding="utf-8").read() == text:
        return  # keep mtimes: no needless rebuilds
    tmp = f"{path}.{os.getpid()}.tmp"  # concurrent builds never share a temporary
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=os.path.join(HERE, "calls.tbl"))
    ap.add_argument("--cuda-include", default=os.environ.get("CUDA_INC", "/usr/local/cuda/include"))
    ap.add_argument("--stub", metavar="OUTDIR")
    ap.add_argument("--exec", metavar="OUTDIR", dest="exec_dir")
    ap.add_argument("--null-probes", metavar="FILE", help="write the NULL-output probes of the forwarded calls")
    ap.add_argument("--list", action="store_true", help="print the call table summary")
    a = ap.parse_args()
    sigs = {}
    for h in ("cudaProfilerTypedefs.h", "cudaTypedefs.h"):   # the driver library's API: cuda.h + cudaProfiler.h
        sigs.update(load_typedefs(os.path.join(a.cuda_include, h)))
    calls = parse_table(a.table, sigs)
    if a.list:
        for c in calls:
            print(f"{c.sym:40s} {c.api:30s} {c.ver:6d} {c.cls:6s} {proto_args(c.params)}")
    if a.null_probes:
        write(a.null_probes, gen_null_probes(calls))
    for d in filter(None, (a.stub, a.exec_dir)):
        os.makedirs(d, exist_ok=True)
        write(os.path.join(d, "tf_calls.h"), gen_common(calls))
    if a.stub:
        import cuda_api  # proto/cuda_api.py: the header's whole API (needs a C preprocessor)
        h, c = gen_stub(calls, cuda_api.api_entries(a.cuda_include))
        write(os.path.join(a.stub, "stub_calls.h"), h)
        write(os.path.join(a.stub, "stub_calls.c"), c)
    if a.exec_dir:
        h, c = gen_exec(calls)
        write(os.path.join(a.exec_dir, "exec_calls.h"), h)
        write(os.path.join(a.exec_dir, "exec_calls.c"), c)


if __name__ == "__main__":
    main()
