"""Typed errors of the TensorFusion control plane, and their mapping to gRPC status codes.

The scheduler raises these inside; its gRPC edge turns them into a status code plus the class name
in trailing metadata "tf-error" (to_status). Clients turn an RpcError back into the same class
(from_rpc_error), so user code catches NoCapacity, not grpc.RpcError.
"""
import grpc


class TensorFusionError(Exception):
    """Base of every TensorFusion error."""
    code = grpc.StatusCode.UNKNOWN


class InvalidRequest(TensorFusionError, ValueError):
    """The request can never succeed as written (bad quantity, more than any GPU has, ...)."""
    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidQuantity(InvalidRequest):
    """A VRAM or TFLOPS quantity that does not parse ("2Zi", "1_000", "lots") or is out of range."""


class NotFound(TensorFusionError, LookupError):
    code = grpc.StatusCode.NOT_FOUND


class UnknownPool(NotFound):
    pass


class UnknownAllocation(NotFound):
    pass


class UnknownWorkload(NotFound):
    pass


class UnknownWorker(NotFound):
    pass


class NodeNameTaken(TensorFusionError):
    """Another live worker instance holds this node name (a node name is an identity, as in Kubernetes)."""
    code = grpc.StatusCode.ALREADY_EXISTS


class NoCapacity(TensorFusionError):
    """Nothing fits right now (the request is possible, the pool is busy)."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class QuotaExceeded(NoCapacity):
    """The namespace's quota would be exceeded."""


class LeaseError(TensorFusionError):
    """A lease token that is malformed, badly signed or expired; or an allocation no longer active."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class LeaseInvalid(LeaseError):
    """Malformed token or bad signature (wrong secret, tampered claims)."""
    code = grpc.StatusCode.PERMISSION_DENIED


class LeaseExpired(LeaseError):
    pass


class AllocationInactive(LeaseError):
    """The allocation was released, preempted, expired or lost; allocate again."""


class Unauthenticated(TensorFusionError, PermissionError):
    """No credential, or one the scheduler cannot verify (unknown, revoked, malformed bearer token)."""
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(TensorFusionError, PermissionError):
    """A verified caller asked for something its role or namespace/node does not cover."""
    code = grpc.StatusCode.PERMISSION_DENIED


class UnknownToken(NotFound):
    pass


class SchedulerUnreachable(TensorFusionError, ConnectionError):
    code = grpc.StatusCode.UNAVAILABLE


class TlsHandshakeFailed(SchedulerUnreachable):
    """The TLS handshake with a control-plane server failed: a plaintext server, a certificate signed by another
    CA or not naming the host dialed, a client certificate missing or refused. A setting to fix, not an outage."""


class WorkerUnreachable(TensorFusionError, ConnectionError):
    code = grpc.StatusCode.UNAVAILABLE


class StoreUnavailable(TensorFusionError, ConnectionError):
    """The scheduler cannot reach its state store (etcd): nothing was changed; retry (here or at another replica)."""
    code = grpc.StatusCode.UNAVAILABLE


class NotLeader(StoreUnavailable):
    """This scheduler replica is a follower (or lost its leadership): the message names the leader's address."""
    code = grpc.StatusCode.UNAVAILABLE


class StoreConflict(TensorFusionError):
    """Another scheduler changed the same GPUs between our read and our write: nothing was changed; retry."""
    code = grpc.StatusCode.ABORTED


_BY_NAME = {cls.__name__: cls for cls in (
    TensorFusionError, InvalidRequest, InvalidQuantity, NotFound, UnknownPool, UnknownAllocation,
    UnknownWorker, UnknownWorkload, NodeNameTaken, NoCapacity, QuotaExceeded, LeaseError, LeaseInvalid, LeaseExpired,
    AllocationInactive, SchedulerUnreachable, WorkerUnreachable, StoreUnavailable, NotLeader, StoreConflict,
    Unauthenticated, PermissionDenied, UnknownToken, TlsHandshakeFailed)}

_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: NodeNameTaken,
    grpc.StatusCode.RESOURCE_EXHAUSTED: NoCapacity,
    grpc.StatusCode.FAILED_PRECONDITION: LeaseError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: SchedulerUnreachable,
    grpc.StatusCode.DEADLINE_EXCEEDED: SchedulerUnreachable,
}

METADATA_KEY = "tf-error"


MAX_DETAILS = 2000   # status details travel in a header: a message echoing a huge field must not break the call


def to_status(err: TensorFusionError) -> tuple[grpc.StatusCode, str, tuple]:
    """(code, message, trailing metadata) for the gRPC edge."""
    msg = str(err)
    if len(msg) > MAX_DETAILS:
        msg = msg[:MAX_DETAILS] + "... (truncated)"
    return err.code, msg, ((METADATA_KEY, type(err).__name__),)


def from_rpc_error(err: grpc.RpcError, target: str = "") -> TensorFusionError:
    """The typed error an RpcError stands for (raise it `from err`)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    name = None
    try:
        for key, value in (err.trailing_metadata() or ()):
            if key == METADATA_KEY:
                name = value
    except Exception:  # some RpcErrors (channel-level) carry no metadata
        pass
    if name is None and code == grpc.StatusCode.RESOURCE_EXHAUSTED and \
            any(m in (details or "") for m in ("larger than max", "metadata size exceeds")):
        return InvalidRequest(f"request too large for the scheduler ({details}): send smaller fields")
    cls = _BY_NAME.get(name) or _BY_CODE.get(code) or TensorFusionError
    if cls is SchedulerUnreachable and name is None:
        return SchedulerUnreachable(f"scheduler {target or ''} unreachable: {details}".replace("  ", " "))
    return cls(details)
