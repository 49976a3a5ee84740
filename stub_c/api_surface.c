/* api_surface.c - the rest of the driver API: every cuda.h function no calls.tbl row serves is a
 * generated export (build/stub/gen/stub_calls.c, from proto/cuda_api.py) that lands here. It answers
 * CUDA_ERROR_NOT_SUPPORTED and says so once per function on stderr, so a program sees a CUresult,
 * never "undefined symbol" nor an error left over from an earlier call. */
#include "stub.h"

CUresult tf_unsupported(const char *name, int *logged)
{
    if (!__atomic_exchange_n(logged, 1, __ATOMIC_RELAXED))
        tf_log("%s is not supported through the remote stub", name);
    return CUDA_ERROR_NOT_SUPPORTED;
}
