"""Who is calling the scheduler: bearer tokens (issued and stored here, hashed at rest), three roles, and
the server interceptor that checks every call before its handler runs.

Token text: "tf1.<id>.<secret>" — id (16 hex chars) names the token for listing and revocation, secret is
secrets.token_urlsafe(32) (256 bits). The store keeps sha256(token) only, so a copy of scheduler.db grants
nothing. Clients send "authorization: Bearer <token>" as gRPC metadata (grpcio's access_token_call_credentials
sends exactly that over TLS).

Roles: tenant (bound to one namespace: allocate/renew/release/get its allocations, list the pool with its
own allocations), worker (bound to one node name: register and heartbeat as that node, read allocations
placed on it), admin (everything, including tokens). Per-object checks (namespace, node) are made by the
handlers with `caller()`; the interceptor checks the credential and the role. A method missing from
POLICY is admin-only: nothing new is open by accident.

Called by tfscheduler.server (interceptor, caller(), TokenRegistry) and tfclient.embedded (provisioning).
"""
from __future__ import annotations

import contextvars
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import grpc

from tfclient.errors import InvalidRequest, NotLeader, PermissionDenied, Unauthenticated, UnknownToken

TENANT, WORKER, ADMIN = "tenant", "worker", "admin"
ROLES = (TENANT, WORKER, ADMIN)
PREFIX = "tf1"
MAX_TOKEN_LEN = 256

# method name -> roles allowed. An admin may act as any node (it could mint itself a worker token anyway);
# a worker token only as the node it is bound to (checked by the handler).
POLICY = {
    "RegisterWorker": (WORKER, ADMIN),
    "Heartbeat": (WORKER, ADMIN),
    "Allocate": (TENANT, ADMIN),
    "Release": (TENANT, ADMIN),
    "RenewLease": (TENANT, ADMIN),
    "GetAllocation": (TENANT, WORKER, ADMIN),
    "ReportWorkerUnreachable": (TENANT, ADMIN),   # tenants: their own namespace's allocations
    "ListPool": (TENANT, ADMIN),
    "SetAllocationLimits": (TENANT, ADMIN),  # tenants: their own namespace's allocations (checked by the handler)
    "CreateToken": (ADMIN,),
    "RevokeToken": (ADMIN,),
    "ListTokens": (ADMIN,),
    "ApplyWorkload": (TENANT, ADMIN),      # tenants: their own namespace (checked by the handler)
    "GetWorkload": (TENANT, ADMIN),
    "ListWorkloads": (TENANT, ADMIN),
}


@dataclass(frozen=True)
class TokenRecord:
    id: str
    digest: str              # sha256 hex of the whole token text
    role: str
    namespace: str = ""      # tenant
    node_name: str = ""      # worker
    description: str = ""
    created_at: float = 0.0
    revoked_at: float = 0.0


@dataclass(frozen=True)
class Principal:
    """The verified caller of one RPC."""
    token_id: str
    role: str
    namespace: str = ""
    node_name: str = ""

    def describe(self) -> str:
        bound = f" of namespace {self.namespace!r}" if self.role == TENANT else \
            f" of node {self.node_name!r}" if self.role == WORKER else ""
        return f"{self.role} token {self.token_id}{bound}"


_caller: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("tf_caller", default=None)


def caller() -> Principal:
    """The principal of the RPC being handled (set by the interceptor). Never absent: refuse if it is."""
    p = _caller.get()
    if p is None:
        raise Unauthenticated("no verified caller for this call (interceptor not installed)")
    return p


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_text() -> tuple[str, str]:
    """-> (id, token text)."""
    tid = secrets.token_hex(8)
    return tid, f"{PREFIX}.{tid}.{secrets.token_urlsafe(32)}"


class TokenRegistry:
    """Tokens in memory (id -> record), written through to the Store."""

    def __init__(self, store, clock=time.time):
        self.store, self.clock = store, clock
        self.by_id: dict[str, TokenRecord] = {r.id: r for r in store.load_tokens()}

    def create(self, role: str, namespace: str = "", node_name: str = "", description: str = "") -> tuple:
        """-> (TokenRecord, token text). The text is shown once; only its hash is kept."""
        if role not in ROLES:
            raise InvalidRequest(f"role {role!r} unknown: use tenant, worker or admin")
        if role == TENANT and not namespace:
            raise InvalidRequest("a tenant token needs a namespace (--namespace NS)")
        if role == WORKER and not node_name:
            raise InvalidRequest("a worker token needs the node name it may register as (--node NAME)")
        if role != TENANT and namespace:
            raise InvalidRequest(f"{role} tokens have no namespace (only tenant tokens are bound to one)")
        if role != WORKER and node_name:
            raise InvalidRequest(f"{role} tokens have no node (only worker tokens are bound to one)")
        tid, text = new_token_text()
        rec = TokenRecord(tid, digest(text), role, namespace, node_name, description, self.clock())
        self.store.put_token(rec)
        self.by_id[tid] = rec
        return rec, text

    def revoke(self, tid: str) -> bool:
        """True if it was active; False if already revoked. UnknownToken if it never existed."""
        rec = self.by_id.get(tid)
        if rec is None:
            raise UnknownToken(f"token {tid!r} does not exist (`tensorfusion token list` shows the ids)")
        if rec.revoked_at:
            return False
        now = self.clock()
        self.store.revoke_token(tid, now)
        self.by_id[tid] = TokenRecord(**{**rec.__dict__, "revoked_at": now})
        return True

    def active(self, role: str | None = None) -> list:
        return [r for r in self.by_id.values() if not r.revoked_at and (role is None or r.role == role)]

    def record_of(self, text: str) -> TokenRecord | None:
        """The record token text is the whole text of (active or revoked), or None (unknown, malformed)."""
        parts = text.split(".")
        if len(parts) != 3 or parts[0] != PREFIX or len(text) > MAX_TOKEN_LEN:
            return None
        rec = self.by_id.get(parts[1])
        if rec is None or not hmac.compare_digest(rec.digest, digest(text)):
            return None
        return rec

    def check(self, text: str) -> TokenRecord | None:
        """The active record of token text, or None (unknown, revoked, malformed)."""
        rec = self.record_of(text)
        return None if rec is None or rec.revoked_at else rec

    def principal(self, metadata) -> Principal:
        """The caller named by "authorization: Bearer <token>" in metadata; raises Unauthenticated."""
        values = [v for k, v in (metadata or ()) if k == "authorization"]
        if not values:
            raise Unauthenticated("no credentials: send gRPC metadata 'authorization: Bearer <token>' "
                                  "(tfclient reads TF_TOKEN or $TF_HOME/tenant.token; an admin creates tokens with "
                                  "`tensorfusion token create`)")
        if len(values) > 1:
            raise Unauthenticated("more than one authorization header: send exactly one")
        value = values[0] if isinstance(values[0], str) else values[0].decode("utf-8", "replace")
        scheme, _, text = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not text.strip():
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
        rec = self.record_of(text.strip())
        if rec is not None and rec.revoked_at:
            raise Unauthenticated(revoked_message(rec))
        if rec is None:
            raise Unauthenticated("the bearer token is unknown or malformed: ask an admin for a new one "
                                  "(`tensorfusion token create`)")
        return Principal(rec.id, rec.role, rec.namespace, rec.node_name)


def revoked_message(rec: TokenRecord) -> str:
    """One line for the holder of a revoked token: which token, when, and what to do."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(rec.revoked_at))
    bound = Principal(rec.id, rec.role, rec.namespace, rec.node_name).describe()
    if rec.role == WORKER:
        todo = (f"an admin makes a new one (`tensorfusion token create --role worker --node {rec.node_name}`) and "
                f"the worker is restarted with it")
    elif rec.role == TENANT:
        todo = f"ask an admin for a new one (`tensorfusion token create --role tenant --namespace {rec.namespace}`)"
    else:
        todo = "use another admin token"
    return f"the {bound} was revoked at {when}: {todo}"


def authorize(principal: Principal, method: str) -> None:
    """Role check of the interceptor. Raises PermissionDenied."""
    allowed = POLICY.get(method, (ADMIN,))
    if principal.role not in allowed:
        raise PermissionDenied(f"{method} is not allowed to a {principal.role} token "
                               f"(allowed: {', '.join(allowed)})")


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer token and role of every unary call, then runs the handler with caller() set.
    Wrapped handlers are cached per method, so a call costs one dict lookup more than without."""

    def __init__(self, registry: TokenRegistry, gate=None):
        self.registry = registry
        self.gate = gate          # () -> None or raises (tfscheduler.election: a follower refuses every call)
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(self, continuation, details):
        method = details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler      # unknown method: grpc answers UNIMPLEMENTED; we serve no streams
        name = method.rsplit("/", 1)[-1]
        inner = handler.unary_unary
        registry, gate = self.registry, self.gate

        async def checked(request, context):
            try:
                if gate is not None:
                    gate()
                principal = registry.principal(context.invocation_metadata())
                authorize(principal, name)
            except (Unauthenticated, PermissionDenied, NotLeader) as e:
                await context.abort(e.code, str(e), trailing_metadata=(("tf-error", type(e).__name__),))
            token = _caller.set(principal)
            try:
                return await inner(request, context)
            finally:
                _caller.reset(token)

        wrapped = grpc.unary_unary_rpc_method_handler(checked, request_deserializer=handler.request_deserializer,
                                                      response_serializer=handler.response_serializer)
        self._wrapped[method] = wrapped
        return wrapped


def _kept(registry: TokenRegistry, path, role: str, namespace: str = "", node_name: str = "") -> bool:
    try:
        text = path.read_text().strip()
    except OSError:
        return False
    rec = registry.check(text)
    return rec is not None and (rec.role, rec.namespace, rec.node_name) == (role, namespace, node_name)


def provision(registry: TokenRegistry, home, node_name: str | None = None, tenant_namespace: str = "default",
              roles=(ADMIN, WORKER, TENANT), description: str = "provisioned by the embedded default") -> dict:
    """Makes sure $TF_HOME holds a working token per role (admin.token, worker.token bound to node_name,
    tenant.token of tenant_namespace), creating and writing (0600) those missing or no longer valid.
    Called by the embedded default at start (zero-config). -> {role: path}."""
    from tfclient.config import TOKEN_FILES, write_private
    wanted = {ADMIN: ("", ""), WORKER: ("", node_name or ""), TENANT: (tenant_namespace, "")}
    out = {}
    for role in roles:
        ns, node = wanted[role]
        path = home / TOKEN_FILES[role]
        if not _kept(registry, path, role, ns, node):
            _, text = registry.create(role, ns, node, description=description)
            write_private(path, text + "\n")
        out[role] = path
    return out


def bootstrap_admin(registry: TokenRegistry, home):
    """A first admin token for a scheduler that has none (written to $TF_HOME/admin.token, 0600).
    -> its path if one was created, else None (an admin exists: tokens are managed with `tensorfusion token`)."""
    if registry.active(ADMIN):
        return None
    return provision(registry, home, roles=(ADMIN,), description="first admin token of this scheduler")[ADMIN]
