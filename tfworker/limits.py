"""Python side of the limiter's per-allocation shared-memory region (/dev/shm/tf-<tag>-<allocation>).

The worker daemon creates one region per allocation (SessionLimits.create), shared by all its sessions:
each session's GPU worker process gets the limiter (LD_PRELOAD=.preload, env=.env); the daemon changes
limits live (.update) and reads the allocation's usage (.usage), which every process adds to.
`tensorfusion run --local` uses local_vgpu(): one region for CMD and every process it starts;
local_env() gives the same limits as env variables (each process then is its own vGPU).
Region names carry the daemon's identity (worker_tag: TF_HOME + node), so a restarted daemon reaps exactly
what its previous life left in /dev/shm (reap_regions) and never another daemon's.

The layout is defined once, in limiter_c/tf_limiter_shm.h; FIELDS below mirrors it and
tests/limiter/test_limiter_shm.py compiles the header and asserts every offset matches. The limits half
is a seqlock with one writer (this module): the writer makes the sequence odd, writes, makes it even;
readers retry while it is odd or changed. The rest (usage, the shared token bucket, per-process ledger
slots) is written by the limiters with 8-byte atomics; this module only reads it. x86-64 and aarch64
Linux keep the order of the separate stores/loads Python does through the mmap (each is one C call).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import mmap
import os
import re
import secrets
import struct
import time
from dataclasses import dataclass

from tfclient import native

MAGIC = 0x4D4C4654
VERSION = 2
# (name, struct code) in layout order; little-endian, naturally aligned, no padding.
FIELDS = [
    ("magic", "I"), ("version", "I"), ("size", "I"), ("flags", "I"),
    ("limits_seq", "Q"), ("vram_limit", "Q"), ("tflops_limit", "d"), ("device_tflops", "d"),
    ("limits_rsv0", "Q"), ("limits_rsv1", "Q"),
    ("oom_refusals", "Q"), ("vram_used", "Q"), ("vram_peak", "Q"), ("launches", "Q"), ("throttled_ns", "Q"),
    ("busy_ns", "Q"), ("refill_rate", "d"), ("limiter_pid", "Q"), ("updated_ns", "Q"), ("tokens", "Q"),
    ("bucket_tat_ns", "Q"), ("bucket_rate", "d"), ("slots_rsv0", "Q"),
]
# then SLOTS per-process ledger slots of (pid, start, vram, rsv) u64 each: read only (the limiters own them)
SLOTS = 64
SLOT_FIELDS = ("pid", "start", "vram", "rsv")


def _offsets() -> dict[str, tuple[int, str]]:
    out, off = {}, 0
    for name, code in FIELDS:
        size = struct.calcsize("<" + code)
        assert off % size == 0, f"{name} misaligned"
        out[name] = (off, code)
        off += size
    return out


OFFSETS = _offsets()
SLOTS_OFFSET = sum(struct.calcsize("<" + c) for _, c in FIELDS)
SLOT_SIZE = 8 * len(SLOT_FIELDS)
SIZE = SLOTS_OFFSET + SLOTS * SLOT_SIZE
_LIMIT_FIELDS = ("vram_limit", "tflops_limit", "device_tflops")
_USAGE_FIELDS = ("vram_used", "vram_peak", "launches", "throttled_ns", "busy_ns", "refill_rate", "limiter_pid",
                 "updated_ns", "oom_refusals")
_SESSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
SHM_DIR = "/dev/shm"


class LimiterRegionError(Exception):
    """The region cannot be created or does not hold a limiter layout this code understands."""


@dataclass(frozen=True)
class LimiterUsage:
    vram_used: int          # bytes charged now
    vram_peak: int          # max bytes charged
    launches: int           # kernel launches (a graph launch counts once)
    throttled_ns: int       # total time launches waited for tokens
    busy_ns: int            # device busy time of the session's process (0 if unknown)
    refill_rate: float = 0.0  # current token refill rate, 0 when compute is not limited
    pid: int = 0            # process writing the usage (0: no limiter attached yet)
    updated_ns: int = 0     # CLOCK_REALTIME ns of the last write
    tflops_used: float = 0.0  # busy fraction over the last measuring window (>= USAGE_WINDOW_S) x device TFLOPS
    oom_refusals: int = 0   # allocations refused for the VRAM cap


@dataclass(frozen=True)
class Limits:
    vram_limit_bytes: int
    tflops_limit: float
    device_tflops: float


USAGE_WINDOW_S = 0.2
"""The shortest window tflops_used is measured over (see SessionLimits.usage)."""


class SessionLimits:
    """One session's region. Use create() (supervisor) or open() (attach to an existing one)."""

    def __init__(self, session_id: str, path: str, mm: mmap.mmap, owner: bool):
        self.session_id = session_id
        self.shm_name = "/" + os.path.basename(path)
        self.path = path
        self._mm = mm
        self._owner = owner
        self._last_busy: tuple[float, int] | None = None
        self._last_rate = 0.0

    # ---- lifecycle ----
    @classmethod
    def create(cls, session_id: str, vram_limit_bytes: int = 0, tflops_limit: float = 0.0,
               device_tflops: float = 0.0, replace: bool = True) -> "SessionLimits":
        """Creates /dev/shm/tf-<session_id> with these limits (0 = none). replace=True reuses the
        name of a region a crashed daemon left behind. Every error path removes what it created."""
        _check_limits(vram_limit_bytes, tflops_limit, device_tflops)  # before anything exists
        path = cls._path_of(session_id)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL
        if replace and os.path.exists(path):
            os.unlink(path)
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as e:
            raise LimiterRegionError(f"cannot create {path}: {e}") from e
        mm = None
        try:
            try:
                os.ftruncate(fd, SIZE)
                mm = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError as e:
                raise LimiterRegionError(f"cannot map {path}: {e}") from e
            finally:
                os.close(fd)
            self = cls(session_id, path, mm, owner=True)
            self._limits_write(vram_limit_bytes, tflops_limit, device_tflops)
            self._put("size", SIZE)
            self._put("version", VERSION)
            self._put("magic", MAGIC)  # last: a limiter that opens early sees no magic, not half a header
            return self
        except BaseException:
            if mm is not None:
                mm.close()
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            raise

    @classmethod
    def open(cls, session_id: str) -> "SessionLimits":
        path = cls._path_of(session_id)
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as e:
            raise LimiterRegionError(f"cannot open {path}: {e}") from e
        try:
            if os.fstat(fd).st_size < SIZE:
                raise LimiterRegionError(f"{path} is too small for a limiter region")
            mm = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self = cls(session_id, path, mm, owner=False)
        if self._get("magic") != MAGIC or self._get("version") != VERSION:
            mm.close()
            raise LimiterRegionError(f"{path}: not a version {VERSION} limiter region")
        return self

    def close(self) -> None:
        """Unmaps; the creator also unlinks the region (the process keeps its mapping until it exits)."""
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._owner:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def _path_of(session_id: str) -> str:
        if not _SESSION_RE.match(session_id):
            raise ValueError(f"session id {session_id!r}: use letters, digits, '_', '.', '-'")
        return os.path.join(SHM_DIR, f"tf-{session_id}")

    # ---- what the session's process needs ----
    @property
    def env(self) -> dict[str, str]:
        return {"TF_LIMITER_SHM": self.shm_name}

    @property
    def preload(self) -> list[str]:
        return [str(native.limiter_lib())]

    # ---- limits (supervisor writes) ----
    def update(self, vram_limit_bytes: int | None = None, tflops_limit: float | None = None,
               device_tflops: float | None = None) -> None:
        """Changes limits live; None keeps a value. The limiter applies them at its next allocation
        (VRAM) or controller step (compute, every 50 ms)."""
        cur = self.limits()
        self._limits_write(cur.vram_limit_bytes if vram_limit_bytes is None else vram_limit_bytes,
                           cur.tflops_limit if tflops_limit is None else tflops_limit,
                           cur.device_tflops if device_tflops is None else device_tflops)

    def limits(self) -> Limits:
        v = self._read_consistent("limits_seq", _LIMIT_FIELDS)
        return Limits(vram_limit_bytes=v["vram_limit"], tflops_limit=v["tflops_limit"],
                      device_tflops=v["device_tflops"])

    @property
    def vram_limit_bytes(self) -> int:
        return self.limits().vram_limit_bytes

    @property
    def tflops_limit(self) -> float:
        return self.limits().tflops_limit

    @property
    def device_tflops(self) -> float:
        return self.limits().device_tflops

    # ---- usage (limiter writes) ----
    def usage(self) -> LimiterUsage:
        """The allocation's usage: every process of it adds to these counters (8-byte atomics: each value
        is whole, the set is not a snapshot)."""
        if self._mm is None:
            raise LimiterRegionError(f"{self.path}: closed")
        v = {n: self._get(n) for n in _USAGE_FIELDS}
        now = time.monotonic()
        # Several readers (heartbeat, GetUsage, metrics; gpu_usage then session_usage in one heartbeat) share
        # one baseline: a read sooner than USAGE_WINDOW_S after the last measurement returns that measurement
        # instead of a near-empty window (which would report ~0 to whoever reads second).
        if self._last_busy is None:
            self._last_busy = (now, v["busy_ns"])
        elif now - self._last_busy[0] >= USAGE_WINDOW_S:
            busy_s = max(0, v["busy_ns"] - self._last_busy[1]) / 1e9
            self._last_rate = min(1.0, busy_s / (now - self._last_busy[0])) * self.device_tflops
            self._last_busy = (now, v["busy_ns"])
        tflops_used = self._last_rate
        return LimiterUsage(vram_used=v["vram_used"], vram_peak=v["vram_peak"], launches=v["launches"],
                            throttled_ns=v["throttled_ns"], busy_ns=v["busy_ns"], refill_rate=v["refill_rate"],
                            pid=v["limiter_pid"], updated_ns=v["updated_ns"], tflops_used=tflops_used,
                            oom_refusals=v["oom_refusals"])

    def processes(self) -> list[tuple[int, int]]:
        """(pid, charged bytes) of each process holding a ledger slot of this region."""
        out = []
        for i in range(SLOTS):
            pid, _start, vram, _rsv = struct.unpack_from("<4Q", self._mm, SLOTS_OFFSET + i * SLOT_SIZE)
            if pid:
                out.append((pid & ~(1 << 63), vram))
        return out

    # ---- raw access ----
    def _get(self, name: str):
        off, code = OFFSETS[name]
        return struct.unpack_from("<" + code, self._mm, off)[0]

    def _put(self, name: str, value) -> None:
        off, code = OFFSETS[name]
        struct.pack_into("<" + code, self._mm, off, value)

    def _limits_write(self, vram: int, tflops: float, device_tflops: float) -> None:
        _check_limits(vram, tflops, device_tflops)
        seq = self._get("limits_seq")
        if seq & 1:  # a writer died mid-update (we are the only writer): start from even
            seq += 1
        self._put("limits_seq", seq + 1)
        self._put("vram_limit", int(vram))
        self._put("tflops_limit", float(tflops))
        self._put("device_tflops", float(device_tflops))
        self._put("limits_seq", seq + 2)

    def _read_consistent(self, seq_name: str, names: tuple[str, ...]) -> dict:
        if self._mm is None:
            raise LimiterRegionError(f"{self.path}: closed")
        for _ in range(100000):
            s1 = self._get(seq_name)
            if s1 & 1:
                time.sleep(0)
                continue
            vals = {n: self._get(n) for n in names}
            if self._get(seq_name) == s1:
                return vals
        raise LimiterRegionError(f"{self.path}: {seq_name} never settled (writer stuck mid-update?)")


def _check_limits(vram, tflops, device_tflops) -> None:
    """Limits a region can hold: finite numbers >= 0 (0 = none), VRAM an integer below 2^64."""
    for name, v in (("vram_limit_bytes", vram), ("tflops_limit", tflops), ("device_tflops", device_tflops)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}={v!r}: limits must be finite numbers >= 0 (0 = none)")
    if int(vram) != vram or vram >= 1 << 64:
        raise ValueError(f"vram_limit_bytes={vram!r}: a whole number of bytes below 2^64")


# ---- one worker daemon's regions and executors, found again after a crash -------------------------

def worker_tag(home: str, node: str) -> str:
    """Short stable name of one worker daemon's identity (its TF_HOME and node name): the prefix of its
    regions (/dev/shm/tf-<tag>-...) and the TF_WORKER_TAG of its executors, so that a restarted daemon
    reaps what its previous life left behind and nothing of another daemon's."""
    return hashlib.sha256(f"{os.path.realpath(home)}\0{node}".encode()).hexdigest()[:12]


class WorkerIdentity:
    """This daemon's tag, held by an flock on $TF_HOME/worker-<tag>.lock for its whole life: a second
    live daemon with the same TF_HOME and node must not reap the first one's sessions, so it gets a
    private tag (and reaps nothing) instead; the worker daemon then refuses to start. The kernel drops the lock when the daemon dies; a daemon that
    stops removes the file (under the lock; one that got the lock of a removed file tries again)."""

    def __init__(self, home: str, node: str):
        self.tag = worker_tag(home, node)
        self.instance_path = os.path.join(home, f"worker-{self.tag}.instance")
        self.reaps = True
        self.path = os.path.join(home, f"worker-{self.tag}.lock")
        while True:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.tag = worker_tag(home, f"{node}\0pid={os.getpid()}")
                self.reaps = False
                return
            if _same_file(self.path, self._fd):
                return
            os.close(self._fd)

    def instance_id(self) -> str:
        """The id this worker registers with (RegisterWorkerRequest.instance_id): random at the first start of
        this TF_HOME and node, then kept in $TF_HOME/worker-<tag>.instance (0600). A restarted daemon is the
        same instance, so it registers again at once; a worker of the same node name on another host (another
        TF_HOME) is another one, refused while this one heartbeats."""
        try:
            with open(self.instance_path) as f:
                kept = f.read().strip()
            if re.fullmatch(r"[0-9a-f]{32}", kept):
                return kept
        except FileNotFoundError:
            pass
        from tfclient.config import write_private
        from pathlib import Path
        made = secrets.token_hex(16)
        write_private(Path(self.instance_path), made + "\n")
        return made

    def close(self) -> None:
        if self._fd >= 0:
            if self.reaps:              # the holder of the lock: nobody else uses the file
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            os.close(self._fd)
            self._fd = -1


def _same_file(path: str, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def remove_stale_identities(home: str) -> list[str]:
    """Removes the worker-*.lock files in `home` no live daemon holds (left by a killed one); -> their paths."""
    removed = []
    try:
        names = sorted(n for n in os.listdir(home) if n.startswith("worker-") and n.endswith(".lock"))
    except OSError:
        return removed
    for n in names:
        path = os.path.join(home, n)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(path, fd):
                os.unlink(path)
                removed.append(path)
        except (BlockingIOError, OSError):
            pass
        finally:
            os.close(fd)
    return removed


def regions_of(tag: str) -> list[str]:
    """Paths of the limiter regions named for worker `tag`."""
    prefix = f"tf-{tag}-"
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return []
    return sorted(os.path.join(SHM_DIR, n) for n in names if n.startswith(prefix))


def reap_regions(tag: str) -> list[str]:
    """Unlinks every region of worker `tag` (a previous life's); returns their paths."""
    gone = []
    for path in regions_of(tag):
        try:
            os.unlink(path)
            gone.append(path)
        except FileNotFoundError:
            pass
    return gone


def local_env(vram_limit_bytes: int = 0, tflops_limit: float = 0.0, device_tflops: float = 0.0,
              base: dict | None = None) -> dict[str, str]:
    """Env for a local vGPU (`tensorfusion run --local`): the limiter preloaded, limits as TF_* vars.
    Only the variables to set are returned; LD_PRELOAD keeps what `base` (default os.environ) had."""
    base = os.environ if base is None else base
    lib = str(native.limiter_lib())
    pre = [p for p in re.split(r"[: ]", base.get("LD_PRELOAD", "")) if p and p != lib]
    env = {"LD_PRELOAD": ":".join([lib, *pre])}
    if vram_limit_bytes:
        env["TF_VRAM_LIMIT"] = str(int(vram_limit_bytes))
    if tflops_limit:
        if not device_tflops:
            raise ValueError("a TFLOPS limit needs the device's TFLOPS (device_tflops)")
        env["TF_TFLOPS_LIMIT"] = repr(float(tflops_limit))
        env["TF_DEVICE_TFLOPS"] = repr(float(device_tflops))
    return env


LOCAL_PREFIX = "local-"


@contextlib.contextmanager
def local_vgpu(vram_limit_bytes: int = 0, tflops_limit: float = 0.0, device_tflops: float = 0.0,
               base: dict | None = None):
    """Env for `tensorfusion run --local` (a context: the region lives as long as CMD): the limiter
    preloaded and ONE region for CMD and every process it starts, so `sh -c 'a & b & wait'` shares one
    cap and one compute share, as an allocation's sessions do. The region is named for this process
    (tf-local-<pid>-...): regions of a `run --local` that was killed are removed by the next one."""
    if tflops_limit and not device_tflops:
        raise ValueError("a TFLOPS limit needs the device's TFLOPS (device_tflops)")
    reap_local_regions()
    region = SessionLimits.create(f"{LOCAL_PREFIX}{os.getpid()}-{secrets.token_hex(4)}",
                                  vram_limit_bytes=vram_limit_bytes, tflops_limit=tflops_limit,
                                  device_tflops=device_tflops)
    try:
        base = os.environ if base is None else base
        lib = str(native.limiter_lib())
        pre = [p for p in re.split(r"[: ]", base.get("LD_PRELOAD", "")) if p and p != lib]
        yield {"LD_PRELOAD": ":".join([lib, *pre]), **region.env}
    finally:
        region.close()


def reap_local_regions() -> list[str]:
    """Removes the regions of `run --local` processes that are gone (killed before they could)."""
    gone = []
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return gone
    for n in names:
        m = re.match(rf"^tf-{LOCAL_PREFIX}(\d+)-[0-9a-f]+$", n)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        try:
            os.unlink(os.path.join(SHM_DIR, n))
            gone.append(n)
        except OSError:
            pass
    return gone
