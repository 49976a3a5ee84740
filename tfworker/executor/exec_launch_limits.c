/* exec_launch_limits.c - a function's launch limits for the stub (tfFuncGetParamLayout's `limits`): the
 * backend's own attribute values, read fresh at each ask (cuFuncSetAttribute may have changed them), so
 * the stub can refuse a launch the device would refuse - e.g. more dynamic shared memory than the
 * function may use - at the launch call itself instead of latching the error until the next synchronize.
 * Called by executor.c (ex_tfFuncGetParamLayout).
 */
#include "executor.h"

static const CUfunction_attribute k_attr[TF_FUNC_NLIMITS] = {
    [TF_FUNC_LIMIT_MAX_DYNAMIC_SHARED] = CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
    [TF_FUNC_LIMIT_MAX_THREADS] = CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
    [TF_FUNC_LIMIT_STATIC_SHARED] = CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
    [TF_FUNC_LIMIT_NUM_REGS] = CU_FUNC_ATTRIBUTE_NUM_REGS,
};

void tfx_func_limits(tfx *x, CUfunction f, int is_kernel, int *limits)
{
    CUdevice dev = 0;
    int have_dev = !is_kernel || (x->be.f_cuCtxGetDevice && x->be.f_cuCtxGetDevice(&dev) == CUDA_SUCCESS);
    for (int i = 0; i < TF_FUNC_NLIMITS; i++) {
        int v = -1;
        CUresult rc = CUDA_ERROR_NOT_SUPPORTED;
        if (!is_kernel && x->be.f_cuFuncGetAttribute)
            rc = x->be.f_cuFuncGetAttribute(&v, k_attr[i], f);
        else if (is_kernel && have_dev && x->be.f_cuKernelGetAttribute)
            rc = x->be.f_cuKernelGetAttribute(&v, k_attr[i], (CUkernel)f, dev);
        limits[i] = rc == CUDA_SUCCESS && v >= 0 ? v : -1;
    }
}
