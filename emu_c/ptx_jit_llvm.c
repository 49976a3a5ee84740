/* ptx_jit_llvm.c - the LLVM half of the PTX JIT, built into its own plugin (build/emu/libtf-emu-jit.so,
 * with ptx_jit_ir.c) that libcuda.so.1's ptx_jit.c dlopens at the first kernel it compiles, so only
 * processes that use the JIT load libLLVM-14. It exports one symbol, tf_emu_jit_plugin (ptx_jit.h):
 * init (LLVM ORC's LLJIT for the host CPU), target_id (what code depends on besides the program, for
 * the disk cache's key), compile (decoded PTX -> IR -> -O2 -> an object file in memory) and load (link
 * an object, fresh or from the disk cache, and return the kernel's address). Callers serialise calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/InstCombine.h>
#include <llvm-c/Transforms/PassManagerBuilder.h>
#include <llvm-c/Transforms/Scalar.h>
#include <llvm/Config/llvm-config.h>

#include "ptx_jit.h"

static const ptx_jit_host *g_host;
static LLVMOrcLLJITRef g_jit;
static LLVMTargetMachineRef g_tm; /* optimiser cost model and object emission */
static char g_target_id[1024];

/* ptx_jit_ir.c names instructions in its reasons with the parser's names, which live in libcuda.so.1 */
const char *ptx_op_name(int op) { return g_host->op_name(op); }

static void llvm_err(LLVMErrorRef e, const char *what, char *why, size_t whylen) {
    char *m = LLVMGetErrorMessage(e);
    snprintf(why, whylen, "%s: %.180s", what, m);
    LLVMDisposeErrorMessage(m);
}

static int define_helpers(char *why, size_t whylen) {
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(g_jit);
    const char *names[6] = {PTX_JIT_SYM_XLATE, PTX_JIT_SYM_ATOM, PTX_JIT_SYM_SREG, PTX_JIT_SYM_ALU, PTX_JIT_SYM_TEX, PTX_JIT_SYM_CPASYNC};
    void *addrs[6] = {g_host->xlate, g_host->atom, g_host->sreg, g_host->alu, g_host->tex, g_host->cpasync};
    LLVMJITCSymbolMapPair syms[6];
    for (int i = 0; i < 6; i++) {
        syms[i].Name = LLVMOrcLLJITMangleAndIntern(g_jit, names[i]);
        syms[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)addrs[i];
        syms[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        syms[i].Sym.Flags.TargetFlags = 0;
    }
    LLVMErrorRef e = LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(syms, 6));
    if (e) { llvm_err(e, "LLVM: defining the runtime helpers", why, whylen); return -1; }
    /* libm/libc names LLVM may lower an operation to (memset, fma on a CPU without it, ...) */
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(g_jit), NULL, NULL);
    if (e) { llvm_err(e, "LLVM: process symbols", why, whylen); return -1; }
    LLVMOrcJITDylibAddGenerator(jd, gen);
    return 0;
}

static int plugin_init(const ptx_jit_host *host, char *why, size_t whylen) {
    if (g_jit) return 0;
    if (!host || host->abi != PTX_JIT_PLUGIN_ABI) { snprintf(why, whylen, "plugin ABI mismatch"); return -1; }
    g_host = host;
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
        snprintf(why, whylen, "LLVM has no native target");
        return -1;
    }
    /* The generated functions are few, big basic blocks of wide vectors: LLVM's instruction schedulers
     * spend ~40% of llc-14 -O2 time on them (matmul: 6.6 s -> 3.9 s of CPU) for no measurable gain here. */
    const char *opts[] = {"tf-emu", "-enable-misched=false", "-post-RA-scheduler=false"};
    LLVMParseCommandLineOptions(3, opts, NULL);
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    LLVMTargetRef T;
    char *err = NULL;
    int rc = -1;
    if (LLVMGetTargetFromTriple(triple, &T, &err)) {
        snprintf(why, whylen, "LLVM: %s", err ? err : "no native target");
        LLVMDisposeMessage(err);
        goto out;
    }
    /* JITDefault: the large code model, so objects link wherever the JIT's memory lands */
    LLVMTargetMachineRef tm_jit = LLVMCreateTargetMachine(T, triple, cpu, feat, LLVMCodeGenLevelAggressive,
                                                          LLVMRelocDefault, LLVMCodeModelJITDefault);
    g_tm = LLVMCreateTargetMachine(T, triple, cpu, feat, LLVMCodeGenLevelAggressive, LLVMRelocDefault,
                                   LLVMCodeModelJITDefault);
    if (!tm_jit || !g_tm) { snprintf(why, whylen, "LLVM: no target machine for %s", triple); goto out; }
    LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm_jit));
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&g_jit, b);
    if (e) { llvm_err(e, "LLVM JIT unavailable", why, whylen); g_jit = NULL; goto out; }
    if (define_helpers(why, whylen)) goto out;
    snprintf(g_target_id, sizeof(g_target_id), "LLVM %s %s %s %s", LLVM_VERSION_STRING, triple, cpu, feat);
    rc = 0;
out:
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    return rc;
}

static const char *plugin_target_id(void) { return g_target_id; }

static int plugin_compile(const ptx_kernel *k, const char *name, void **obj, size_t *objlen, char *why, size_t whylen) {
    LLVMContextRef cx = LLVMContextCreate();
    LLVMModuleRef m = ptx_jit_build_ir(k, cx, name, why, whylen);
    int rc = -1;
    if (!m) goto out_cx;
    char *triple = LLVMGetTargetMachineTriple(g_tm);
    LLVMSetTarget(m, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(g_tm);
    char *dl = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(m, dl);
    LLVMDisposeMessage(dl);
    LLVMDisposeTargetData(td);
    char *verr = NULL;
    if (getenv("TF_EMU_JIT_VERIFY") && LLVMVerifyModule(m, LLVMReturnStatusAction, &verr)) {
        snprintf(why, whylen, "generated IR does not verify: %.150s", verr ? verr : "?");
        LLVMDisposeMessage(verr);
        goto out_m;
    }
    if (verr) LLVMDisposeMessage(verr);
    const char *dumpraw = getenv("TF_EMU_JIT_DUMP_RAW");
    if (dumpraw) {
        char fn[512];
        snprintf(fn, sizeof(fn), "%s/%s.ll", dumpraw, k->name);
        LLVMPrintModuleToFile(m, fn, NULL);
    }
    LLVMPassManagerRef pm = LLVMCreatePassManager();
    LLVMAddAnalysisPasses(g_tm, pm);
    if (k->ncode <= PTX_JIT_FULL_OPT_INSTRUCTIONS) {
        LLVMPassManagerBuilderRef pmb = LLVMPassManagerBuilderCreate();
        LLVMPassManagerBuilderSetOptLevel(pmb, 2);
        LLVMPassManagerBuilderPopulateModulePassManager(pmb, pm);
        LLVMPassManagerBuilderDispose(pmb);
    } else {
        /* long kernels: register slots stay in their allocas (ptx_jit.h says why); these passes only
         * clean up within blocks, in time linear in the kernel */
        LLVMAddCFGSimplificationPass(pm);
        LLVMAddEarlyCSEPass(pm);
        LLVMAddInstructionCombiningPass(pm);
    }
    LLVMRunPassManager(pm, m);
    LLVMDisposePassManager(pm);
    if (getenv("TF_EMU_JIT_DUMP")) LLVMDumpModule(m);
    LLVMMemoryBufferRef mb = NULL;
    char *emsg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(g_tm, m, LLVMObjectFile, &emsg, &mb)) {
        snprintf(why, whylen, "LLVM code generation: %.150s", emsg ? emsg : "?");
        LLVMDisposeMessage(emsg);
        goto out_m;
    }
    *objlen = LLVMGetBufferSize(mb);
    *obj = malloc(*objlen ? *objlen : 1);
    if (!*obj) snprintf(why, whylen, "out of host memory for an object of %zu bytes", *objlen);
    else { memcpy(*obj, LLVMGetBufferStart(mb), *objlen); rc = 0; }
    LLVMDisposeMemoryBuffer(mb);
out_m:
    LLVMDisposeModule(m);
out_cx:
    LLVMContextDispose(cx);
    return rc;
}

static int plugin_load(const void *obj, size_t objlen, const char *name, void **fn, char *why, size_t whylen) {
    LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, objlen, name);
    if (!mb) { snprintf(why, whylen, "out of host memory"); return -1; }
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(g_jit, LLVMOrcLLJITGetMainJITDylib(g_jit), mb);
    LLVMOrcExecutorAddress addr = 0;
    if (!e) e = LLVMOrcLLJITLookup(g_jit, &addr, name);
    if (e) { llvm_err(e, "LLVM", why, whylen); return -1; }
    if (!addr) { snprintf(why, whylen, "LLVM: %s has no address", name); return -1; }
    *fn = (void *)(uintptr_t)addr;
    return 0;
}

static const ptx_jit_plugin g_plugin = {
    .abi = PTX_JIT_PLUGIN_ABI,
    .init = plugin_init,
    .target_id = plugin_target_id,
    .compile = plugin_compile,
    .load = plugin_load,
};

__attribute__((visibility("default"))) const ptx_jit_plugin *tf_emu_jit_plugin(void) { return &g_plugin; }
