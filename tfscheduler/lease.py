"""Lease tokens: the scheduler's signed statement "allocation A may use GPU G on worker W with these
limits until T".

Format: base64url(JSON claims) "." base64url(HMAC-SHA256(secret, first part)), no padding. The
key is per worker: node_key(scheduler secret, worker id). The scheduler signs with it; the worker daemon, which
learns its own key when it registers, verifies with it (when a client connects with TF_LEASE=<token>, and the
orders of SetSessionLimits / CloseSession). Called by tfscheduler.server and
tfworker.daemon.
"""
import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field, fields

from tfclient.errors import LeaseError, LeaseExpired, LeaseInvalid

__all__ = ["LeaseClaims", "sign", "verify", "sign_order", "verify_order", "node_key", "LeaseError", "LeaseExpired",
           "LeaseInvalid"]
ORDER_MAX_AGE_S = 60.0


@dataclass(frozen=True)
class LeaseClaims:
    allocation_id: str
    worker_id: str
    gpu_uuid: str               # the (first) GPU; gpu_uuids lists all of a multi-GPU allocation
    vram_limit_mib: int         # per GPU
    tflops_limit: float         # per GPU, FP16 dense
    qos: str                    # "low" | "medium" | "high" | "critical"
    expires_at: float           # unix seconds
    gpu_uuids: tuple = field(default=())
    vram_request_mib: int = 0
    tflops_request: float = 0.0

    def __post_init__(self):
        if not self.gpu_uuids:
            object.__setattr__(self, "gpu_uuids", (self.gpu_uuid,))


_FIELDS = tuple(f.name for f in fields(LeaseClaims))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: LeaseClaims, secret: bytes) -> str:
    body = {f: getattr(claims, f) for f in _FIELDS}    # (dataclasses.asdict deep-copies: slow)
    body["gpu_uuids"] = list(claims.gpu_uuids)
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify(token: str, secret: bytes, now: float | None = None) -> LeaseClaims:
    """Claims of a token signed with secret. Raises LeaseInvalid (malformed or bad signature) or
    LeaseExpired (valid signature, expires_at passed). An empty secret verifies nothing (LeaseInvalid)."""
    if not secret:
        raise LeaseInvalid("no key to check lease tokens with (the worker has not registered yet)")
    try:
        payload, mac = token.strip().split(".")
        given = _unb64(mac)
    except (ValueError, AttributeError) as e:
        raise LeaseInvalid("lease token is malformed (expected <claims>.<signature>)") from e
    want = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(given, want):
        raise LeaseInvalid("lease token signature does not verify (wrong secret or tampered token)")
    try:
        body = json.loads(_unb64(payload))
        body["gpu_uuids"] = tuple(body.get("gpu_uuids") or ())
        claims = LeaseClaims(**body)
    except (ValueError, TypeError) as e:
        raise LeaseInvalid(f"lease token claims are malformed: {e}") from e
    now = time.time() if now is None else now
    if claims.expires_at <= now:
        raise LeaseExpired(f"lease of allocation {claims.allocation_id} expired "
                           f"{now - claims.expires_at:.1f}s ago; renew it or allocate again")
    return claims


def node_key(secret: bytes, worker_id: str) -> bytes:
    """The key that signs worker `worker_id`'s lease tokens and orders: HMAC-SHA256(secret, label + worker_id),
    32 bytes. The scheduler alone holds `secret`; each worker daemon gets only its own key (in the reply to its
    authenticated RegisterWorker), so a compromised node can mint tokens or orders for itself alone, never for
    another node's sessions."""
    if not worker_id:
        raise ValueError("node_key needs a worker id")
    return hmac.new(secret, b"tensorfusion node key\0" + worker_id.encode(), hashlib.sha256).digest()


def _mac(payload: str, secret: bytes) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def sign_order(action: str, allocation_id: str, secret: bytes, now: float | None = None, **terms) -> str:
    """A token proving an admin order (e.g. "close", or "limits" with terms vram_mib/tflops) for one
    allocation comes from the scheduler. terms are signed with it: the worker applies exactly those.
    A nonce makes every order distinct, so a worker can refuse one it has already seen."""
    body = {"action": action, "allocation_id": allocation_id, "issued_at": time.time() if now is None else now,
            "nonce": secrets.token_hex(8), **terms}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(payload, secret)}"


def verify_order(token: str, action: str, allocation_id: str, secret: bytes, now: float | None = None,
                 max_age_s: float = ORDER_MAX_AGE_S) -> dict:
    """The signed body of token (action, allocation_id, issued_at, nonce, terms). Raises LeaseInvalid
    unless token is a fresh order for (action, allocation_id) signed with secret; an empty token is
    refused like a forged one."""
    if not token:
        raise LeaseInvalid(f"the {action} order carries no auth_token: only the scheduler may give it")
    if not secret:
        raise LeaseInvalid(f"no key to check the {action} order with (the worker has not registered yet)")
    try:
        payload, mac = token.strip().split(".")
        body = json.loads(_unb64(payload))
        if not isinstance(body, dict):
            raise ValueError("not an object")
    except (ValueError, AttributeError) as e:
        raise LeaseInvalid("admin order token is malformed") from e
    if not hmac.compare_digest(_unb64(mac), _unb64(_mac(payload, secret))):
        raise LeaseInvalid("admin order token signature does not verify (wrong secret or tampered token)")
    if body.get("action") != action or body.get("allocation_id") != allocation_id:
        raise LeaseInvalid(f"admin order token is for {body.get('action')} {body.get('allocation_id')}, "
                           f"not {action} {allocation_id}")
    try:
        age = (time.time() if now is None else now) - float(body.get("issued_at", 0))
    except (TypeError, ValueError) as e:
        raise LeaseInvalid("admin order token has no valid issued_at") from e
    if not -max_age_s < age < max_age_s:
        raise LeaseInvalid(f"admin order token is {age:.0f}s old (limit {max_age_s:g}s): replayed or clocks differ")
    return body
