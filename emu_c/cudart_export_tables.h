/* cudart_export_tables.h - the private "export tables" (cuGetExportTable) that NVIDIA's CUDA runtime
 * (libcudart 12 and 13, static and shared) asks of libcuda.so.1 before it will use a device.
 *
 * Self-contained on purpose: it depends only on cuda.h and libc, so both libcuda.so.1 builds of this
 * project compile the same source - the emulated device (emu_c/) and the client stub (stub_c/).
 * The caller supplies the two driver services the tables need through tf_export_hooks.
 *
 * Layouts were learnt from public observations of what cudart requests (ZLUDA's dark-API notes and
 * other emulators' traces); only the slots cudart 12/13 actually call are filled, unknown slots are NULL
 * (in table 21318c60: a stub answering CUDA_ERROR_NOT_SUPPORTED, logged once) and unknown tables answer
 * CUDA_ERROR_NOT_SUPPORTED, as a driver without that table does (libraries probe for tables they can do
 * without, e.g. CuPy: logged once per UUID only when `verbose`).
 */
#ifndef TF_CUDART_EXPORT_TABLES_H
#define TF_CUDART_EXPORT_TABLES_H

#include <cuda.h>

typedef struct tf_export_hooks {
    /* Retains the primary context of dev and returns it (CUDART interface slot 2). */
    CUresult (*primary_ctx_retain)(CUcontext *pctx, CUdevice dev);
    /* The calling thread's current context, NULL if none (used to resolve a NULL context). */
    CUresult (*ctx_get_current)(CUcontext *pctx);
    /* A context's unique id (cuCtxGetId): table 21318c60 slot 4, which cublasLt keys its caches with. */
    CUresult (*ctx_get_id)(CUcontext ctx, unsigned long long *id);
    /* A stream's unique id (cuStreamGetId): table 21318c60 slot 39, cuBLAS's per-stream cache key. */
    CUresult (*stream_get_id)(CUstream stream, unsigned long long *id);
    /* Device facts mixed into cudart's integrity check (table d4082055): driver version, device count,
     * and per device its UUID and PCI domain/bus/device numbers. */
    CUresult (*driver_version)(int *version);
    CUresult (*device_count)(int *count);
    CUresult (*device_uuid)(CUuuid *uuid, CUdevice dev);
    CUresult (*device_attr)(int *value, CUdevice_attribute attr, CUdevice dev);
    /* Where to log ("tf-emu", "tf-stub"); NULL = "tf". */
    const char *log_prefix;
    /* Nonzero: also log each unknown table asked for (TF_EMU_TRACE, TF_STUB_DEBUG). */
    int verbose;
} tf_export_hooks;

/* Installs the hooks; call once before the first tf_export_table_get (cuInit is a good place). */
void tf_export_tables_init(const tf_export_hooks *hooks);

/* The body of cuGetExportTable. */
CUresult tf_export_table_get(const void **table, const CUuuid *id);

/* Runs and forgets the context-local-storage destructors cudart registered for ctx; call it when a
 * context is destroyed or a primary context is reset (cudart keeps per-context state there). */
void tf_export_tables_ctx_destroyed(CUcontext ctx);

#endif
