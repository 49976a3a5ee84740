/* ptx.h - the contract between the emulated driver (emu_driver*.c, fatbin.c) and the PTX executor
 * (ptx_parse.c, ptx_exec.c). The driver layer owns devices, contexts, memory, streams and the fatbin;
 * the PTX side owns parsing PTX text into a pre-decoded program and running launches of it.
 *
 * Memory model: device pointers of the emulated device ARE host virtual addresses of memory the
 * driver layer allocated. Kernels dereference them directly, after asking ptx_env.check_global()
 * whether [addr, addr+len) lies inside a live allocation (else the launch fails with
 * CUDA_ERROR_ILLEGAL_ADDRESS, which the driver makes sticky).
 *
 * All functions return a CUresult value (0 = CUDA_SUCCESS) and write a human-readable reason
 * into `log` (NUL-terminated, truncated to loglen) on failure.
 */
#ifndef TF_EMU_PTX_H
#define TF_EMU_PTX_H

#include <stddef.h>
#include <stdint.h>

typedef struct ptx_module ptx_module;
typedef struct ptx_kernel ptx_kernel;

/* Services the driver layer gives the PTX side. */
typedef struct ptx_env {
    void *ctx;
    /* Device memory for module-scope .global/.const variables (freed by free_device). */
    void *(*alloc_device)(void *ctx, size_t bytes);
    void (*free_device)(void *ctx, void *ptr);
    /* 1 if [addr, addr+len) is inside one live device (or host-mapped/managed) allocation. */
    int (*check_global)(void *ctx, uint64_t addr, uint64_t len);
    /* Resolves an .extern .global/.func the module references but does not define (e.g. vprintf
     * is handled by the executor itself; this is for future cross-module linking). May be NULL. */
    void *(*resolve_extern)(void *ctx, const char *name);
    /* The device-side heap of a kernel's malloc()/free(): bounded by the context's CU_LIMIT_MALLOC_HEAP_SIZE
     * (NULL once it is used up, as on a GPU); free releases only what heap_alloc gave. NULL: malloc returns
     * NULL and free does nothing. */
    void *(*heap_alloc)(void *ctx, size_t bytes);
    void (*heap_free)(void *ctx, void *ptr);
} ptx_env;

/* Where the output of a device printf call (len bytes, formatted) goes: set by the driver layer, which
 * keeps it in the printf FIFO and writes it out where CUDA flushes that FIFO (emu_launch.c). NULL (PTX-only
 * unit tests): the executor writes the text to stdout itself. */
extern void (*ptx_device_print)(const char *text, size_t len);
/* cudaGraphSetConditional(handle, value) from a kernel (PTX: a call of the extern function of that name, which
 * the driver provides): set by the driver layer when the first conditional handle is made (emu_graph.c);
 * returns -1 for a value that is not a conditional handle. */
extern int (*ptx_graph_set_conditional)(uint64_t handle, unsigned value);
/* The SM clock the device reports (CU_DEVICE_ATTRIBUTE_CLOCK_RATE, kHz): %clock/%clock64 tick at this rate,
 * so a kernel that spins for N clocks (clockRate * ms, as the samples' clock_block does) spins N / rate of wall
 * time, as on the part. Set by the driver layer at cuInit (emu_init.c); 0 (PTX-only unit tests): 1 GHz. */
extern unsigned ptx_sm_clock_khz;
/* The value of a time special register (%clock, %clock_hi, %clock64, %globaltimer, _lo, _hi) now; 0 for
 * any other. Shared by both engines (the JIT's generated code calls it through ptx_jit_sreg). */
uint64_t ptx_sreg_time(int sr);

/* Parse PTX text (as found in the fatbin, NUL-terminated or len bytes) into a module.
 * Allocates storage for the module's .global/.const variables through env and applies their
 * initializers. On failure returns NULL and sets *err (e.g. CUDA_ERROR_INVALID_PTX). */
ptx_module *ptx_module_load(const char *ptx_text, size_t len, const ptx_env *env, int *err,
                            char *log, size_t loglen);
void ptx_module_free(ptx_module *m);

/* Lazy loading (what the driver does; CUDA's CU_MODULE_LAZY_LOADING). ptx_module_open reads only the module
 * level: .version/.target, variables (allocated and initialized as above, so ptx_module_get_global works at
 * once), function headers and every .entry's name and parameters; an error there (a bad header, variable or
 * top-level token) fails the open as ptx_module_load does. A kernel's body (and the .func bodies it calls) is
 * decoded by ptx_kernel_decode at its first use: idempotent, thread-safe, the failure (CUDA_ERROR_INVALID_PTX
 * with its reason in log, CUDA_ERROR_OUT_OF_MEMORY) is remembered and returned again on every call. Until then
 * only ptx_kernel_name and the parameter functions below answer for the kernel; ptx_kernel_get_attrs gives 0
 * for what the body determines, and ptx_launch must not be called. ptx_module_load = open + decode every kernel
 * (its first error fails the load). The module keeps a copy of the text until its last kernel is decoded. */
ptx_module *ptx_module_open(const char *ptx_text, size_t len, const ptx_env *env, int *err, char *log,
                            size_t loglen);
int ptx_kernel_decode(const ptx_kernel *k, char *log, size_t loglen);
int ptx_kernel_is_decoded(const ptx_kernel *k);

/* Entry (.entry) kernels. */
const ptx_kernel *ptx_module_get_kernel(const ptx_module *m, const char *name);
int ptx_module_kernel_count(const ptx_module *m);
const ptx_kernel *ptx_module_kernel_at(const ptx_module *m, int i);
const char *ptx_kernel_name(const ptx_kernel *k);

/* Module-scope variables (cuModuleGetGlobal): device address and size; 0 = found. */
int ptx_module_get_global(const ptx_module *m, const char *name, uint64_t *addr, size_t *bytes);

/* Kernel parameters, as cuFuncGetParamInfo reports them: byte offset and size in the packed
 * parameter buffer (offsets follow each param's .align). Returns param count. */
int ptx_kernel_param_count(const ptx_kernel *k);
int ptx_kernel_param_info(const ptx_kernel *k, int index, size_t *offset, size_t *size);
size_t ptx_kernel_param_buffer_size(const ptx_kernel *k);

/* Static resource use, for cuFuncGetAttribute. */
typedef struct ptx_kernel_attrs {
    size_t static_shared_bytes;
    size_t local_bytes_per_thread;
    int num_regs;
    int max_threads_per_block; /* from .maxntid if given, else the device limit (1024) */
} ptx_kernel_attrs;
void ptx_kernel_get_attrs(const ptx_kernel *k, ptx_kernel_attrs *out);
/* A host thread that ran launches and is about to end (a stream's thread, emu_stream_queue.c) frees the
 * block buffers ptx_launch keeps per thread. */
void ptx_thread_release(void);

typedef struct ptx_launch_cfg {
    unsigned grid[3];
    unsigned block[3];
    size_t dynamic_shared_bytes;
    const void *param_buffer;   /* packed as ptx_kernel_param_info says */
    size_t param_buffer_size;
    int worker_threads;         /* host threads to spread blocks over (>= 1) */
    int cooperative;            /* grid-wide sync allowed (all blocks co-resident) */
} ptx_launch_cfg;

/* Run one launch to completion (synchronously; the driver layer handles stream order).
 * Returns CUDA_SUCCESS, CUDA_ERROR_ILLEGAL_ADDRESS, CUDA_ERROR_ILLEGAL_INSTRUCTION (with the
 * instruction named in log), CUDA_ERROR_LAUNCH_FAILED, CUDA_ERROR_INVALID_VALUE (bad config),
 * CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES (too much shared memory). *instructions_executed, if not
 * NULL, receives the number of PTX instructions executed (per lane-group step, summed). */
int ptx_launch(const ptx_kernel *k, const ptx_launch_cfg *cfg, const ptx_env *env,
               uint64_t *instructions_executed, char *log, size_t loglen);
/* Host work a launch needs before it runs, done by ptx_launch anyway: queues k's compile on the JIT and,
 * with TF_EMU_JIT_SYNC=1, waits for it. The driver calls it before marking the device busy: a compile is host
 * time, as a driver's PTX compile is on a GPU (the limiter's utilization source must not count it). */
void ptx_launch_prepare(const ptx_kernel *k, const ptx_launch_cfg *cfg);

/* Notes from the driver layer (emu_*.c) to the PTX side - additions only, nothing above changed:
 *  - The driver validates grid/block/shared-memory limits before ptx_launch (bad grid/block returns
 *    the driver's invalid-configuration code 9, which cudart reports as cudaErrorInvalidConfiguration),
 *    so ptx_launch's own checks are a second line of defence.
 *  - check_global is thread-safe and cheap on repeated hits (per-thread cache of the last allocation);
 *    it also accepts host-mapped, registered, managed and cuMemMap'ed (VMM) ranges.
 *  - Programs with __managed__ variables emit `.global .attribute(.managed) ...`; cudart 13 asks for
 *    them (cuLibraryGetManaged) during its first CUDA call. The parser takes them as plain globals
 *    (tests/cuda/managed_var.cu).
 *  - Graph replays and stream capture call ptx_launch through cuLaunchKernel with an `extra` buffer:
 *    nothing new is needed from the PTX side.
 */

#endif
