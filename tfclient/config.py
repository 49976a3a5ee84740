"""Where TensorFusion keeps local state and how the CLI finds the scheduler.

TF_HOME (default ~/.tensorfusion, mode 0700) holds: `secret` (the HMAC key shared by the embedded scheduler and
worker to sign/verify lease tokens), `scheduler.db` (SQLite state), `embedded.json` (address and pid
of a running `tensorfusion up`), `up.log`, the worker's Unix socket, and the bearer tokens the scheduler
provisioned (`admin.token`, `tenant.token`, `worker.token`; files 0600).
The scheduler address comes from --scheduler, else TF_SCHEDULER, else embedded.json.
The caller's bearer token comes from an explicit argument, else TF_TOKEN (TF_WORKER_TOKEN for a worker),
else the token files.
"""
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path


def home() -> Path:
    path = Path(os.environ.get("TF_HOME", Path.home() / ".tensorfusion"))
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeError(f"TF_HOME {path}: cannot create it ({e.strerror or e}): point TF_HOME at a folder of "
                           f"yours, e.g. {Path.home() / '.tensorfusion'}") from None
    st = path.stat()
    if st.st_mode & (stat.S_ISVTX | stat.S_IWOTH):
        # a shared folder (/tmp and the like): never chmod it, and never keep secrets in it
        raise RuntimeError(f"TF_HOME {path} is a shared folder (writable by others): point TF_HOME at a "
                           f"private folder, e.g. {Path.home() / '.tensorfusion'}")
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        path.chmod(0o700)              # secrets, tokens and sockets live here: this user only
    return path


TOKEN_FILES = {"admin": "admin.token", "tenant": "tenant.token", "worker": "worker.token"}


def token_file(role: str) -> Path:
    return home() / TOKEN_FILES[role]


def write_private(path: Path, text: str) -> None:
    """Writes text to path atomically, readable by this user only (0600 from creation on)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_token(role: str) -> str | None:
    try:
        return token_file(role).read_text().strip() or None
    except (FileNotFoundError, PermissionError):
        return None


def client_token(explicit: str | None = None, prefer=("tenant", "admin")) -> str | None:
    """Bearer token of a client: explicit, else TF_TOKEN, else the first token file present (in prefer order)."""
    if explicit:
        return explicit
    if os.environ.get("TF_TOKEN"):
        return os.environ["TF_TOKEN"].strip()
    for role in prefer:
        text = read_token(role)
        if text:
            return text
    return None


def worker_token(explicit_file: str | None = None) -> str | None:
    """Bearer token of a worker daemon: --token-file, else TF_WORKER_TOKEN, else $TF_HOME/worker.token."""
    if explicit_file:
        return Path(explicit_file).read_text().strip()
    if os.environ.get("TF_WORKER_TOKEN"):
        return os.environ["TF_WORKER_TOKEN"].strip()
    return read_token("worker")


def secret(path: Path | None = None) -> bytes:
    """The lease-signing secret: TF_SECRET, else the file (created with 0600 on first use)."""
    if os.environ.get("TF_SECRET"):
        return os.environ["TF_SECRET"].encode()
    path = path or home() / "secret"
    if not path.exists():
        # complete file first, then link it in place: concurrent first uses all end up with the same secret
        tmp = path.with_name(f".secret.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip().encode()


@dataclass
class Embedded:
    """What a running `tensorfusion up` published about itself."""
    scheduler: str
    pid: int
    worker_socket: str
    scheduler_metrics: str = ""     # http://HOST:PORT/metrics ("" when not served)
    worker_metrics: str = ""


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
    write_private(embedded_file(), json.dumps(info.__dict__))


def scheduler_address(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("TF_SCHEDULER"):
        return os.environ["TF_SCHEDULER"]
    emb = read_embedded()
    return emb.scheduler if emb else None
