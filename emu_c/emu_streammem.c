/* emu_streammem.c - stream memory operations (cuStreamWaitValue32/64, cuStreamWriteValue32/64,
 * cuStreamBatchMemOp) and the profiler switches of the emulated device. PyTorch resolves the stream
 * memory operations at start-up; libraries use them to make a stream wait on a flag another stream or
 * the host writes.
 *
 * Each is an operation of its stream (emu_stream_queue.c): a wait polls the address on the stream's
 * thread until its condition holds (the host, another stream's work or another process may satisfy
 * it; as on a GPU, a wait nothing satisfies blocks its stream for good), a write stores the value
 * after the stream's earlier work. The address must lie in a device, host-mapped, registered or
 * managed allocation (else CUDA_ERROR_INVALID_VALUE, as the driver checks).
 */
#include <stdatomic.h>
#include <time.h>

#include "emu_internal.h" /* first: it selects cuda.h's internal (all-versions) view */
#include <cudaProfiler.h>

/* 1: the condition of a wait holds for the value now at the address. */
static int wait_done(uint64_t cur, uint64_t value, unsigned flags, int is64)
{
    switch (flags & 0xf) {
    case CU_STREAM_WAIT_VALUE_GEQ: /* cyclic comparison, as the driver documents */
        return is64 ? (int64_t)(cur - value) >= 0 : (int32_t)(uint32_t)(cur - value) >= 0;
    case CU_STREAM_WAIT_VALUE_EQ: return cur == value;
    case CU_STREAM_WAIT_VALUE_AND: return (cur & value) != 0;
    default: return is64 ? ~(cur | value) != 0 : (uint32_t)~(cur | value) != 0; /* NOR */
    }
}

typedef struct memop {
    CUdeviceptr addr;
    uint64_t value;
    unsigned flags;
    int is64, is_wait;
} memop;

static CUresult run_memop(void *a, CUresult status)
{
    const memop *o = a;
    if (status)
        return status;
    if (!o->is_wait) {
        if (o->is64)
            atomic_store((_Atomic uint64_t *)(uintptr_t)o->addr, o->value);
        else
            atomic_store((_Atomic uint32_t *)(uintptr_t)o->addr, (uint32_t)o->value);
        return CUDA_SUCCESS;
    }
    long sleep_ns = 1000;
    while (!emu_sq_abandoned()) {
        uint64_t cur = o->is64 ? atomic_load((_Atomic uint64_t *)(uintptr_t)o->addr)
                               : atomic_load((_Atomic uint32_t *)(uintptr_t)o->addr);
        if (wait_done(cur, o->is64 ? o->value : (uint32_t)o->value, o->flags, o->is64))
            return CUDA_SUCCESS;
        struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
        if (sleep_ns < 1000000)
            sleep_ns *= 2;
    }
    return CUDA_SUCCESS;
}

static CUresult mem_op(CUstream stream, CUdeviceptr addr, uint64_t value, unsigned flags, int is64, int is_wait)
{
    EMU_ENTER(c);
    (void)c;
    CUresult rc = emu_stream_check(stream);
    if (rc)
        return rc;
    unsigned len = is64 ? 8 : 4;
    unsigned known = is_wait ? 0xfu | CU_STREAM_WAIT_VALUE_FLUSH : CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER;
    if (!addr || (addr & (len - 1)) || (flags & ~known) || (is_wait && (flags & 0xf) > CU_STREAM_WAIT_VALUE_NOR) ||
        !emu_mem_check(addr, len))
        return CUDA_ERROR_INVALID_VALUE;
    if (emu_capture_of(stream))
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    memop o = {addr, value, flags, is64, is_wait};
    return emu_sq_submit(stream, run_memop, NULL, &o, sizeof(o), EMU_SQ_ASYNC);
}

EMU_API CUresult cuStreamWaitValue32(CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags)
{
    return mem_op(stream, addr, value, flags, 0, 1);
}

EMU_API CUresult cuStreamWaitValue64(CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags)
{
    return mem_op(stream, addr, value, flags, 1, 1);
}

EMU_API CUresult cuStreamWriteValue32(CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags)
{
    return mem_op(stream, addr, value, flags, 0, 0);
}

EMU_API CUresult cuStreamWriteValue64(CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags)
{
    return mem_op(stream, addr, value, flags, 1, 0);
}

EMU_API CUresult cuStreamWaitValue32_v2(CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags)
{
    return mem_op(stream, addr, value, flags, 0, 1);
}

EMU_API CUresult cuStreamWaitValue64_v2(CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags)
{
    return mem_op(stream, addr, value, flags, 1, 1);
}

EMU_API CUresult cuStreamWriteValue32_v2(CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags)
{
    return mem_op(stream, addr, value, flags, 0, 0);
}

EMU_API CUresult cuStreamWriteValue64_v2(CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags)
{
    return mem_op(stream, addr, value, flags, 1, 0);
}

/* The operations in order; a flush-remote-writes operation has nothing to flush (memory is coherent). */
static CUresult batch(CUstream stream, unsigned int count, CUstreamBatchMemOpParams *ops, unsigned int flags)
{
    if (flags || count > 256 || (count && !ops))
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < count; i++) {
        CUresult rc;
        const CUstreamBatchMemOpParams *p = &ops[i];
        switch (p->operation) {
        case CU_STREAM_MEM_OP_WAIT_VALUE_32:
            rc = mem_op(stream, p->waitValue.address, p->waitValue.value, p->waitValue.flags, 0, 1);
            break;
        case CU_STREAM_MEM_OP_WAIT_VALUE_64:
            rc = mem_op(stream, p->waitValue.address, p->waitValue.value64, p->waitValue.flags, 1, 1);
            break;
        case CU_STREAM_MEM_OP_WRITE_VALUE_32:
            rc = mem_op(stream, p->writeValue.address, p->writeValue.value, p->writeValue.flags, 0, 0);
            break;
        case CU_STREAM_MEM_OP_WRITE_VALUE_64:
            rc = mem_op(stream, p->writeValue.address, p->writeValue.value64, p->writeValue.flags, 1, 0);
            break;
        case CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES:
        case CU_STREAM_MEM_OP_BARRIER:
            rc = CUDA_SUCCESS;
            break;
        default:
            rc = CUDA_ERROR_INVALID_VALUE;
        }
        if (rc)
            return rc;
    }
    return CUDA_SUCCESS;
}

EMU_API CUresult cuStreamBatchMemOp(CUstream stream, unsigned int count, CUstreamBatchMemOpParams *paramArray,
                                    unsigned int flags)
{
    return batch(stream, count, paramArray, flags);
}

EMU_API CUresult cuStreamBatchMemOp_v2(CUstream stream, unsigned int count, CUstreamBatchMemOpParams *paramArray,
                                       unsigned int flags)
{
    return batch(stream, count, paramArray, flags);
}

/* There is no profiler to switch: both succeed, as on a GPU without a profiler attached. */
EMU_API CUresult cuProfilerStart(void)
{
    EMU_ENTER(c);
    (void)c;
    return CUDA_SUCCESS;
}

EMU_API CUresult cuProfilerStop(void)
{
    EMU_ENTER(c);
    (void)c;
    return CUDA_SUCCESS;
}
