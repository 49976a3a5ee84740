"""Where TensorFusion keeps local state and how the CLI finds the scheduler.

TF_HOME (default ~/.tensorfusion) holds: `secret` (the HMAC key shared by the embedded scheduler and
worker to sign/verify lease tokens), `scheduler.db` (SQLite state), `embedded.json` (address and pid
of a running `tensorfusion up`), `up.log` and the worker's Unix socket.
The scheduler address comes from --scheduler, else TF_SCHEDULER, else embedded.json.
"""
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


def home() -> Path:
    path = Path(os.environ.get("TF_HOME", Path.home() / ".tensorfusion"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def secret(path: Path | None = None) -> bytes:
    """The lease-signing secret: TF_SECRET, else the file (created with 0600 on first use)."""
    if os.environ.get("TF_SECRET"):
        return os.environ["TF_SECRET"].encode()
    path = path or home() / "secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


@dataclass
class Embedded:
    """What a running `tensorfusion up` published about itself."""
    scheduler: str
    pid: int
    worker_socket: str


def embedded_file() -> Path:
    return home() / "embedded.json"


def read_embedded() -> Embedded | None:
    """The running embedded default, or None if there is none (stale files are removed)."""
    path = embedded_file()
    try:
        data = json.loads(path.read_text())
        os.kill(data["pid"], 0)
        return Embedded(**data)
    except FileNotFoundError:
        return None
    except (ProcessLookupError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return None


def write_embedded(info: Embedded) -> None:
    tmp = embedded_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(info.__dict__))
    tmp.replace(embedded_file())


def scheduler_address(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("TF_SCHEDULER"):
        return os.environ["TF_SCHEDULER"]
    emb = read_embedded()
    return emb.scheduler if emb else None
