/* api_init.c - the client stub's hand-written entry points for versions, errors, cuGetProcAddress and cudart's
 * export tables (all answered locally).
 * Rows of proto/calls.tbl marked `local` or `stub=hand` in this area; exported under the CUDA names
 * through the tfs_* prototypes of the generated stub_calls.h. The list of areas is in stub.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"
#include "stub_calls.h"
#include "cudart_export_tables.h"

/* ------------------------------------------------------------------------ init / versions */
static pthread_once_t g_export_once = PTHREAD_ONCE_INIT;
static void export_init(void)
{
    const tf_export_hooks hooks = {
        .primary_ctx_retain = tfs_cuDevicePrimaryCtxRetain,
        .ctx_get_current = tfs_cuCtxGetCurrent,
        .ctx_get_id = tfs_cuCtxGetId,
        .stream_get_id = tfs_cuStreamGetId,
        .driver_version = tfs_cuDriverGetVersion,
        .device_count = tfs_cuDeviceGetCount,
        .device_uuid = tfs_cuDeviceGetUuid_v2,
        .device_attr = tfs_cuDeviceGetAttribute,
        .log_prefix = "tf-stub",
        .verbose = getenv("TF_STUB_DEBUG") != NULL,
    };
    tf_export_tables_init(&hooks);
}

CUresult tfs_cuInit(unsigned int Flags)
{
    if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    pthread_once(&g_export_once, export_init);
    return tf_connect_once();
}

CUresult tfs_cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = CUDA_VERSION;  /* the API this stub implements; the worker's driver may be newer */
    return CUDA_SUCCESS;
}

CUresult tfs_cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
    if (!ppExportTable || !pExportTableId) return CUDA_ERROR_INVALID_VALUE;
    pthread_once(&g_export_once, export_init);
    return tf_export_table_get(ppExportTable, pExportTableId);
}

/* ------------------------------------------------------------------------------- errors */
typedef struct { CUresult code; const char *name, *text; } err_row;
#define TF_CU_ERROR(NAME, TEXT) {NAME, #NAME, TEXT},
static const err_row g_errors[] = {
#ifdef TF_HAVE_CU_ERRORS
#include "cu_errors.h"
#else
    TF_CU_ERROR(CUDA_SUCCESS, "no error")
    TF_CU_ERROR(CUDA_ERROR_INVALID_VALUE, "invalid argument")
    TF_CU_ERROR(CUDA_ERROR_OUT_OF_MEMORY, "out of memory")
    TF_CU_ERROR(CUDA_ERROR_NOT_INITIALIZED, "initialization error")
    TF_CU_ERROR(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected")
    TF_CU_ERROR(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle")
    TF_CU_ERROR(CUDA_ERROR_NOT_PERMITTED, "operation not permitted")
    TF_CU_ERROR(CUDA_ERROR_NOT_SUPPORTED, "operation not supported")
#endif
    /* what a driver answers for a bad launch configuration, unnamed in cuda.h */
    {(CUresult)9, "CUDA_ERROR_INVALID_CONFIGURATION", "invalid configuration argument"},
};
#undef TF_CU_ERROR

static const err_row *find_error(CUresult e)
{
    for (size_t i = 0; i < sizeof g_errors / sizeof g_errors[0]; i++)
        if (g_errors[i].code == e) return &g_errors[i];
    return NULL;
}

CUresult tfs_cuGetErrorName(CUresult error, const char **pStr)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    const err_row *r = find_error(error);
    *pStr = r ? r->name : NULL;
    return r ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tfs_cuGetErrorString(CUresult error, const char **pStr)
{
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    const err_row *r = find_error(error);
    *pStr = r ? r->text : NULL;
    return r ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* -------------------------------------------------------------------------- proc address */
static CUresult proc_lookup(const char *symbol, void **pfn, int version, cuuint64_t flags,
                            CUdriverProcAddressQueryResult *status)
{
    if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    const tf_proc_entry *best = NULL, *best_ptds = NULL;
    int seen = 0;
    for (size_t i = 0; i < tf_proc_count; i++) {
        const tf_proc_entry *e = &tf_proc_table[i];
        if (strcmp(e->api, symbol) != 0) continue;
        seen = 1;
        if (e->version > version) continue;
        const tf_proc_entry **slot = e->ptds ? &best_ptds : &best;
        if (!*slot || (*slot)->version < e->version) *slot = e;
    }
    if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && best_ptds) best = best_ptds;
    if (!best) {
        if (status) *status = seen ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        tf_debug("cuGetProcAddress(%s, %d, %llu): %s", symbol, version, (unsigned long long)flags,
                 seen ? "version not sufficient" : "not provided");
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = tf_launch_entry_for_runtime(best->fn);
    if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

CUresult tfs_cuGetProcAddress(const char *symbol, void **pfn, int driverVersion, cuuint64_t flags)
{
    return proc_lookup(symbol, pfn, driverVersion, flags, NULL);
}

CUresult tfs_cuGetProcAddress_v2(const char *symbol, void **pfn, int driverVersion, cuuint64_t flags,
                                 CUdriverProcAddressQueryResult *symbolFound)
{
    return proc_lookup(symbol, pfn, driverVersion, flags, symbolFound);
}
