/* api_user_objects.c - cuUserObjectCreate of the client stub (the other user-object calls are generated
 * forwards). The references live in the GPU worker process, where the graphs and their executions are
 * (tfworker/executor/exec_user_objects.c says why); when the last one goes, the worker asks this process to
 * run the destructor over the host-call channel, and the stub's callback thread runs it (api_hostcalls.c),
 * never a thread of the program's, as CUDA runs destructors on a thread of its own. Without a channel
 * (TCP/TLS: no descriptor can travel) no destructor could ever run here: the call is refused with
 * CUDA_ERROR_NOT_SUPPORTED and one log line. Row of proto/calls.tbl marked `stub=hand`; areas in stub.h.
 */
#include <stdatomic.h>

#include "stub.h"
#include "stub_calls.h"

CUresult tfs_cuUserObjectCreate(CUuserObject *object_out, void *ptr, CUhostFn destroy, unsigned int initialRefcount,
                                unsigned int flags)
{
    static atomic_int said;
    NEED_INIT();
    if (!tf_host_channel_ready()) {
        if (!atomic_exchange(&said, 1))
            tf_log("cuUserObjectCreate: not supported over TCP/TLS (the destructor needs the host-call channel)");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return rpc_cuUserObjectCreate(object_out, ptr, destroy, initialRefcount, flags);
}
