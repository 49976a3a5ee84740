/* emu_streamops.c - stream memory operations (cuStreamWaitValue32/64, cuStreamWriteValue32/64,
 * cuStreamBatchMemOp) and peer access on the emulated device.
 *
 * Stream work runs synchronously here, so a write happens at the call and a wait is checked at the
 * call: a condition not met yet (another host thread is to write the word) is polled every 50 us for
 * up to TF_EMU_WAIT_VALUE_MS milliseconds (default 10000), then the call fails with
 * CUDA_ERROR_LAUNCH_TIMEOUT instead of hanging the program. Work on a capturing stream is refused
 * (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED): graphs of memory operations are not emulated.
 * There is one device, which is never its own peer: enabling peer access answers
 * CUDA_ERROR_INVALID_DEVICE, disabling it CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, as on a one-GPU host.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu_internal.h"

static CUresult op_prologue(CUstream s, uint64_t addr, size_t width)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(s);
    if (rc)
        return rc;
    if (emu_capture_of(s))
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if (addr % width || !emu_mem_check(addr, width))
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

static int wait_met(uint64_t addr, int is64, cuuint64_t value, unsigned flags)
{
    cuuint64_t cur;
    if (is64) {
        cur = __atomic_load_n((cuuint64_t *)(uintptr_t)addr, __ATOMIC_ACQUIRE);
    } else {
        cur = __atomic_load_n((cuuint32_t *)(uintptr_t)addr, __ATOMIC_ACQUIRE);
        value = (cuuint32_t)value;
    }
    switch (flags & 0xf) {
    case CU_STREAM_WAIT_VALUE_GEQ:
        return is64 ? (int64_t)(cur - value) >= 0 : (int32_t)((cuuint32_t)cur - (cuuint32_t)value) >= 0;
    case CU_STREAM_WAIT_VALUE_EQ: return cur == value;
    case CU_STREAM_WAIT_VALUE_AND: return (cur & value) != 0;
    case CU_STREAM_WAIT_VALUE_NOR: return ~(cur | value) != 0 && (is64 || (cuuint32_t) ~(cur | value) != 0);
    default: return -1;
    }
}

static CUresult do_wait(CUstream s, CUdeviceptr addr, int is64, cuuint64_t value, unsigned flags)
{
    CUresult rc = op_prologue(s, addr, is64 ? 8 : 4);
    if (rc)
        return rc;
    int met = wait_met(addr, is64, value, flags);
    if (met < 0 || (flags & ~(0xfu | CU_STREAM_WAIT_VALUE_FLUSH)))
        return CUDA_ERROR_INVALID_VALUE;
    const char *env = getenv("TF_EMU_WAIT_VALUE_MS");
    long budget_us = (env && atol(env) > 0 ? atol(env) : 10000) * 1000L;
    struct timespec nap = {0, 50000};
    for (long waited = 0; !met; waited += 50) {
        if (waited >= budget_us) {
            emu_log("cuStreamWaitValue: the word at 0x%llx did not meet the condition in time",
                    (unsigned long long)addr);
            return CUDA_ERROR_LAUNCH_TIMEOUT;
        }
        nanosleep(&nap, NULL);
        met = wait_met(addr, is64, value, flags);
    }
    return CUDA_SUCCESS;
}

static CUresult do_write(CUstream s, CUdeviceptr addr, int is64, cuuint64_t value, unsigned flags)
{
    CUresult rc = op_prologue(s, addr, is64 ? 8 : 4);
    if (rc)
        return rc;
    if (flags & ~(unsigned)CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER)
        return CUDA_ERROR_INVALID_VALUE;
    if (is64)
        __atomic_store_n((cuuint64_t *)(uintptr_t)addr, value, __ATOMIC_RELEASE);
    else
        __atomic_store_n((cuuint32_t *)(uintptr_t)addr, (cuuint32_t)value, __ATOMIC_RELEASE);
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamWaitValue32_v2(CUstream s, CUdeviceptr addr, cuuint32_t value, unsigned int flags)
{
    return do_wait(s, addr, 0, value, flags);
}

EMU_API CUresult cuStreamWaitValue64_v2(CUstream s, CUdeviceptr addr, cuuint64_t value, unsigned int flags)
{
    return do_wait(s, addr, 1, value, flags);
}

EMU_API CUresult cuStreamWriteValue32_v2(CUstream s, CUdeviceptr addr, cuuint32_t value, unsigned int flags)
{
    return do_write(s, addr, 0, value, flags);
}

EMU_API CUresult cuStreamWriteValue64_v2(CUstream s, CUdeviceptr addr, cuuint64_t value, unsigned int flags)
{
    return do_write(s, addr, 1, value, flags);
}

EMU_API CUresult cuStreamBatchMemOp_v2(CUstream s, unsigned int count, CUstreamBatchMemOpParams *ops,
                                       unsigned int flags)
{
    if (flags || (count && !ops) || count > 256) /* CUDA's limit on operations per batch */
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < count; i++) {
        const CUstreamBatchMemOpParams *op = &ops[i];
        CUresult rc;
        switch (op->operation) {
        case CU_STREAM_MEM_OP_WAIT_VALUE_32:
        case CU_STREAM_MEM_OP_WAIT_VALUE_64: {
            int is64 = op->operation == CU_STREAM_MEM_OP_WAIT_VALUE_64;
            rc = do_wait(s, op->waitValue.address, is64, is64 ? op->waitValue.value64 : op->waitValue.value,
                         op->waitValue.flags);
            break;
        }
        case CU_STREAM_MEM_OP_WRITE_VALUE_32:
        case CU_STREAM_MEM_OP_WRITE_VALUE_64: {
            int is64 = op->operation == CU_STREAM_MEM_OP_WRITE_VALUE_64;
            rc = do_write(s, op->writeValue.address, is64, is64 ? op->writeValue.value64 : op->writeValue.value,
                          op->writeValue.flags);
            break;
        }
        case CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES:
        case CU_STREAM_MEM_OP_BARRIER:
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            rc = emu_stream_check(s);
            break;
        default:
            rc = CUDA_ERROR_INVALID_VALUE;
        }
        if (rc)
            return rc;
    }
    return CUDA_SUCCESS;
}

EMU_API CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags)
{
    EMU_ENTER(c);
    (void)c;
    if (!emu_handle_is(peerContext, EMU_K_CTX))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (Flags)
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_ERROR_INVALID_DEVICE; /* cuDeviceCanAccessPeer(0, 0) is 0 */
}

EMU_API CUresult cuCtxDisablePeerAccess(CUcontext peerContext)
{
    EMU_ENTER(c);
    (void)c;
    if (!emu_handle_is(peerContext, EMU_K_CTX))
        return CUDA_ERROR_INVALID_CONTEXT;
    return CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
}
