/* ptx_internal.h - types shared by the PTX parser (ptx_parse.c) and executor (ptx_exec.c).
 * Not part of the driver contract (that is ptx.h). The parser turns PTX text into one flat,
 * pre-decoded instruction array per .entry (.func bodies are inlined at their call sites), with
 * every operand resolved to a 64-bit register slot; immediates, symbol addresses and special
 * registers become read-only "constant"/"special" slots, so the executor never looks at text.
 */
#ifndef TF_EMU_PTX_INTERNAL_H
#define TF_EMU_PTX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "ptx.h"

/* CUresult values used here (kept numeric so this file needs no cuda.h). */
enum {
    PTXE_SUCCESS = 0,
    PTXE_INVALID_VALUE = 1,
    PTXE_OUT_OF_MEMORY = 2,
    PTXE_NOT_FOUND = 500,
    PTXE_INVALID_PTX = 218,
    PTXE_ILLEGAL_ADDRESS = 700,
    PTXE_LAUNCH_OUT_OF_RESOURCES = 701,
    PTXE_ASSERT = 710,
    PTXE_MISALIGNED_ADDRESS = 716,
    PTXE_ILLEGAL_INSTRUCTION = 715,
    PTXE_LAUNCH_FAILED = 719,
    PTXE_COOPERATIVE_LAUNCH_TOO_LARGE = 720,
    PTXE_NOT_SUPPORTED = 801,
};

/* Generic-address windows: global generic addresses are host pointers (< 2^47); shared, local
 * and kernel-param generic addresses carry a tag above every user-space address. */
#define PTX_SHARED_BASE 0x0001000000000000ULL
#define PTX_LOCAL_BASE  0x0002000000000000ULL
#define PTX_PARAM_BASE  0x0003000000000000ULL
#define PTX_WIN_SIZE    0x0000000100000000ULL
/* Address of the module's k-th function (function pointers, vtables): a tagged value no memory
 * access resolves; indirect calls compare against it. */
#define PTX_FUNC_ADDR(k) (0x0004000000000000ULL + 16ULL * (uint64_t)(k))

/* Value types (4 bits; b-types decode to the u-type of the same width). */
enum {
    T_NONE = 0, T_U8, T_S8, T_U16, T_S16, T_U32, T_S32, T_U64, T_S64,
    T_F16, T_BF16, T_F32, T_F64, T_PRED, T_F16X2, T_BF16X2,
};

/* State spaces of memory operations. */
enum { SP_GENERIC = 0, SP_GLOBAL, SP_SHARED, SP_LOCAL, SP_CONST, SP_KPARAM };

/* Rounding modifiers. */
enum { RM_NONE = 0, RM_RN, RM_RZ, RM_RM, RM_RP, RM_RNI, RM_RZI, RM_RMI, RM_RPI };

/* Comparison operators of setp/set/slct. */
enum {
    CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_LO, CMP_LS, CMP_HI, CMP_HS,
    CMP_EQU, CMP_NEU, CMP_LTU, CMP_LEU, CMP_GTU, CMP_GEU, CMP_NUM, CMP_NAN,
};

/* Special registers; those marked dynamic are read by OP_SREG at run time, the rest are filled
 * into special slots when a block starts. */
#define PTX_SREGS(X)                                                                          \
    X(TID_X, "%tid.x") X(TID_Y, "%tid.y") X(TID_Z, "%tid.z")                                  \
    X(NTID_X, "%ntid.x") X(NTID_Y, "%ntid.y") X(NTID_Z, "%ntid.z")                            \
    X(CTAID_X, "%ctaid.x") X(CTAID_Y, "%ctaid.y") X(CTAID_Z, "%ctaid.z")                      \
    X(NCTAID_X, "%nctaid.x") X(NCTAID_Y, "%nctaid.y") X(NCTAID_Z, "%nctaid.z")                \
    X(LANEID, "%laneid") X(WARPID, "%warpid") X(NWARPID, "%nwarpid")                          \
    X(SMID, "%smid") X(NSMID, "%nsmid") X(GRIDID, "%gridid")                                  \
    X(LANEMASK_EQ, "%lanemask_eq") X(LANEMASK_LT, "%lanemask_lt")                             \
    X(LANEMASK_LE, "%lanemask_le") X(LANEMASK_GT, "%lanemask_gt")                             \
    X(LANEMASK_GE, "%lanemask_ge") X(ENVREG1, "%envreg1") X(ENVREG2, "%envreg2")              \
    X(DYN_SMEM, "%dynamic_smem_size") X(TOTAL_SMEM, "%total_smem_size")                       \
    X(CLOCK, "%clock") X(CLOCK_HI, "%clock_hi") X(CLOCK64, "%clock64")                        \
    X(GTIMER, "%globaltimer") X(GTIMER_LO, "%globaltimer_lo") X(GTIMER_HI, "%globaltimer_hi")
enum {
#define X(e, s) SR_##e,
    PTX_SREGS(X)
#undef X
    SR_COUNT
};
#define SR_FIRST_DYNAMIC SR_CLOCK

/* Decoded opcodes (the type lives in ins.t / ins.t2). */
#define PTX_OPS(X)                                                                            \
    X(NOP) X(MOV) X(PACK) X(UNPACK) X(SREG)                                                   \
    X(ADD) X(SUB) X(MUL_LO) X(MUL_HI) X(MUL_WIDE) X(MAD_LO) X(MAD_HI) X(MAD_WIDE)             \
    X(MUL24_LO) X(MAD24_LO) X(SAD)                                                            \
    X(DIV) X(REM) X(MIN) X(MAX) X(ABS) X(NEG)                                                 \
    X(AND) X(OR) X(XOR) X(NOT) X(CNOT) X(SHL) X(SHR) X(LOP3) X(SHF_L) X(SHF_R)                \
    X(POPC) X(CLZ) X(BREV) X(BFE) X(BFI) X(PRMT) X(BFIND) X(DP4A) X(DP2A) X(BMSK) X(SZEXT)    \
    X(FMA) X(RCP) X(SQRT) X(RSQRT) X(SIN) X(COS) X(EX2) X(LG2) X(TANH)                        \
    X(TESTP) X(COPYSIGN) X(VSIMD)                                                             \
    X(SETP) X(SET) X(SELP) X(SLCT)                                                            \
    X(CVT) X(CVT_PACK)                                                                        \
    X(CVTA_TO_SHARED) X(CVTA_SHARED) X(CVTA_TO_LOCAL) X(CVTA_LOCAL) X(CVTA_TO_PARAM)          \
    X(CVTA_PARAM) X(ISSPACEP)                                                                 \
    X(LD) X(ST) X(ATOM) X(RED) X(CP_ASYNC) X(MBAR)                                            \
    X(BRA) X(EXIT) X(BAR) X(BAR_RED) X(BAR_RED_READ) X(TRAP)                                  \
    X(SHFL) X(VOTE) X(ACTIVEMASK) X(MATCH) X(REDUX)                                           \
    X(WMMA_LOAD) X(WMMA_STORE) X(WMMA_MMA) X(MMA) X(LDMATRIX) X(CVT_TF32)                                 \
    X(TEX) X(TLD4) X(TXQ) X(SULD) X(SUST) X(SURED)                                          \
    X(PRINTF) X(ASSERTFAIL) X(MALLOC) X(FREE) X(SETCOND) X(ILLEGAL)
enum {
#define X(e) OP_##e,
    PTX_OPS(X)
#undef X
    OP_COUNT
};

/* Sub-operations of atom/red, shfl, vote, match, redux, bar.red. */
enum { AT_ADD, AT_MIN, AT_MAX, AT_INC, AT_DEC, AT_AND, AT_OR, AT_XOR, AT_EXCH, AT_CAS };
enum { SH_UP, SH_DOWN, SH_BFLY, SH_IDX };
enum { VO_ALL, VO_ANY, VO_UNI, VO_BALLOT };
/* bar/barrier (OP_BAR's sub; OP_BAR_RED's sub is its reduction: 0 popc, 1 and, 2 or). */
enum { BAR_SYNC, BAR_ARRIVE };
/* mbarrier operations (OP_MBAR; IF_SAT marks .noComplete). */
enum { MB_INIT, MB_INVAL, MB_ARRIVE, MB_ARRIVE_DROP, MB_EXPECT_TX, MB_COMPLETE_TX, MB_TEST_WAIT,
       MB_TEST_PARITY, MB_PENDING, MB_CPASYNC_ARRIVE, MB_CPASYNC_ARRIVE_NOINC };

/* WMMA shapes and the fragment mapping both sides share: lane l holds elements l*n .. l*n+n-1
 * (n = rows*cols/32) of its matrix, numbered row-major - except B of m8n8k4 (f64), numbered
 * column-major - which is the ISA's layout for m8n8k4 and an emulator-chosen one for the others
 * (their fragments are opaque to programs). matrix: 0 = A (MxK), 1 = B (KxN), 2 = C/D (MxN). */
enum { WS_M16N16K16, WS_M8N8K4, WS_M16N16K8 };
static inline void wmma_dims(int shape, int matrix, unsigned *rows, unsigned *cols) {
    static const unsigned mnk[3][3] = {{16, 16, 16}, {8, 8, 4}, {16, 16, 8}};
    const unsigned *d = mnk[shape];
    *rows = matrix == 1 ? d[2] : d[0];
    *cols = matrix == 0 ? d[2] : d[1];
}
static inline void wmma_elem(int shape, int matrix, unsigned e, unsigned *r, unsigned *c) {
    unsigned R, C;
    wmma_dims(shape, matrix, &R, &C);
    if (shape == WS_M8N8K4 && matrix == 1) { *r = e % R; *c = e / R; }
    else { *r = e / C; *c = e % C; }
}

/* Instruction flags. */
#define IF_SAT    0x01u
#define IF_FTZ    0x02u
#define IF_APPROX 0x04u
#define IF_NEG_C  0x08u /* setp/vote: the boolean operand is negated */
#define IF_CC     0x10u /* writes the carry flag (add.cc / sub.cc / mad.cc) */
#define IF_USE_CC 0x20u /* reads the carry flag (addc / subc / madc) */
#define IF_RELU   0x40u
#define IF_SHIFT_CLAMP 0x80u

typedef struct ptx_ins {
    uint16_t op;
    uint8_t t, t2;      /* operation type; second type (cvt source, slct/set source, ...) */
    uint8_t space;      /* memory ops: SP_*; cvta/isspacep: SP_* */
    uint8_t vec;        /* ld/st/pack/unpack: element count */
    uint8_t rm;         /* rounding mode */
    uint8_t sub;        /* cmp op / atomic op / shfl mode / vote mode / bool op / sreg */
    uint8_t bop;        /* setp/set boolean combine: 0 none, 1 and, 2 or, 3 xor */
    uint8_t flags;
    uint8_t pneg;       /* guard is @!p */
    uint8_t esize;      /* memory element size in bytes */
    uint8_t wsync;      /* warp-synchronous: waits until every lane of the membermask (slot e) arrives */
    int32_t pred;       /* guard predicate slot or -1 */
    int32_t d, d2;      /* destinations (d2: setp's second / shfl's pred), -1 when absent */
    int32_t a, b, c, e; /* sources */
    int32_t v[4];       /* vector registers of ld/st/pack/unpack */
    int64_t imm;        /* address offset, branch target, misc immediate */
    uint32_t line;      /* PTX source line, for messages */
    const char *text;   /* ILLEGAL: the instruction's name */
} ptx_ins;

typedef struct ptx_cslot {
    int32_t slot;
    uint64_t bits;
} ptx_cslot;

typedef struct ptx_sslot {
    int32_t slot;
    int32_t sreg;
} ptx_sslot;

struct ptx_kernel {
    char *name;
    const ptx_module *mod;
    int nparams;
    size_t *param_off, *param_size;
    size_t param_bytes;
    ptx_ins *code;
    int ncode;
    int nslots;       /* register slots incl. constants and specials */
    int nregs;        /* declared registers (for attributes) */
    ptx_cslot *consts;
    int nconsts;
    ptx_sslot *specials;
    int nspecials;
    size_t shared_static;
    size_t local_bytes;  /* per thread: .local depots + call parameter frames */
    int maxntid;
    int maxnreg, minnctapersm; /* .maxnreg / .minnctapersm (0: absent) */
    int uses_dynamic_sregs;
    uint32_t bar_warps_lo, bar_warps_hi; /* the immediate thread counts of its bar/barrier instructions, in warps, the
                                          * least and the most (0: none): the JIT runs only blocks of exactly this
                                          * many warps (whole-block barriers, ptx_exec.c) */
    int32_t *lists;   /* register lists of wmma instructions (ins.c indexes here) */
    int nlists;
    char **owned;     /* strings the code points at (ILLEGAL names) */
    int nowned;
    void *jit;        /* the JIT's cache entry for this kernel (ptx_jit.c owns it), NULL until first launch */
    /* Lazy decoding (ptx_module_open / ptx_kernel_decode, ptx_parse.c): until decode_state is 1 only the header
     * above (name, parameters, .maxntid/.maxnreg/.minnctapersm) is filled; code is NULL. */
    int decode_state; /* 0 not decoded, 1 decoded, -1 failed (read with __atomic acquire) */
    int decode_err;   /* the failure's CUresult */
    char *decode_log; /* the failure's reason */
    int fidx;         /* its .entry among the module's parsed functions */
};

/* ptx_regpool.c: lets the warp-matrix fragments of a decoded kernel share register slots where their
 * live ranges allow (ptx_kernel_decode calls it once; an allocation failure leaves the kernel as it was). */
void ptx_pool_fragment_slots(ptx_kernel *k);

typedef struct ptx_var {
    char *name;
    int space;       /* SP_GLOBAL or SP_CONST */
    uint64_t addr;   /* device address */
    size_t bytes;
} ptx_var;

struct ptx_module {
    ptx_env env;
    ptx_kernel **kernels;
    int nkernels;
    ptx_var *vars;
    int nvars;
    struct ptx_lazy *lazy; /* text and module-level parse kept for kernels not yet decoded (ptx_parse.c); NULL when none */
};

/* Float helpers shared by both sides. */
uint16_t ptx_f64_to_f16(double x, int rm);
uint16_t ptx_f64_to_bf16(double x, int rm);
double ptx_f16_to_f64(uint16_t h);
double ptx_bf16_to_f64(uint16_t h);
uint32_t ptx_f64_to_f32_bits(double x, int rm);

const char *ptx_op_name(int op);

#endif
