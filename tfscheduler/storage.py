"""Durable scheduler state behind one small interface (Store), with SQLite (WAL) as the default engine.

tfscheduler.state writes through this on every change (allocate, release, register, lease renewal)
and reads it back once at start (load). Keeping the interface to a few record-level calls is what
lets an etcd or Kubernetes-CRD engine replace SQLite later without touching placement or the API.

Durability: WAL with synchronous=NORMAL - a commit survives a killed scheduler process (the test
kills it with SIGKILL); a power loss may drop the last few commits, which the workers' re-registration
(listing their live sessions) repairs.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class PoolRecord:
    name: str
    strategy: str
    tflops_oversell: float = 1.0
    vram_oversell: float = 1.0
    tflops_weight: float = 0.5
    vram_weight: float = 0.5


@dataclass
class GpuRecord:
    uuid: str
    worker_id: str
    index: int
    model: str
    vendor: str
    vram_mib: int
    tflops: float


@dataclass
class NodeRecord:
    worker_id: str
    node_name: str
    pool: str
    unix_path: str = ""
    tcp: str = ""
    admin: str = ""
    labels: dict = field(default_factory=dict)
    available: bool = True
    registered_at: float = 0.0
    instance: str = ""       # the registered worker daemon's instance id (RegisterWorkerRequest.instance_id)


@dataclass
class AllocationRecord:
    id: str
    pool: str
    namespace: str
    workload: str
    worker_id: str
    gpu_uuids: tuple
    tflops: float            # per GPU requests / limits
    vram_mib: int
    lim_tflops: float
    lim_vram_mib: int
    qos: int
    state: int               # scheduler_pb2.AllocationState value
    reason: str
    created_at: float
    lease_ttl_s: float
    lease_expires_at: float


@dataclass
class WorkloadRecord:
    """A workload (seed 004): its document as applied (JSON text, re-parsed on load), its status (JSON) and the
    recommender's checkpoint (JSON: histograms and what their confidence needs). Keyed by (namespace, name)."""
    namespace: str
    name: str
    spec: str
    status: str = "{}"
    checkpoint: str = "{}"
    updated_at: float = 0.0


@dataclass
class QuotaRecord:
    """A namespace's quota: sums of requests x gpu_count over its active allocations (None = unlimited)."""
    namespace: str
    tflops: float | None = None
    vram_mib: int | None = None
    allocations: int | None = None


@dataclass
class Snapshot:
    pools: list
    nodes: list
    gpus: list
    allocations: list        # active ones only
    quotas: list = field(default_factory=list)     # [QuotaRecord]


class Store(Protocol):
    def load(self) -> Snapshot: ...
    def put_pool(self, pool: PoolRecord) -> None: ...
    def put_quota(self, quota: QuotaRecord) -> None: ...           # insert or replace a namespace's quota
    def put_node(self, node: NodeRecord, gpus: list) -> None: ...   # replaces the node's GPU list
    def set_node_available(self, worker_id: str, available: bool) -> None: ...
    def put_allocation(self, alloc: AllocationRecord, ended: tuple = ()) -> None: ...  # + ended (id, state, reason)
    def end_allocations(self, ended: list) -> None: ...            # [(id, state, reason)]
    def renew_leases(self, renewals: list) -> None: ...            # [(id, expires_at)]
    def get_ended(self, alloc_id: str) -> AllocationRecord | None: ...  # history, for GetAllocation
    def prune_ended(self, keep: int) -> None: ...                  # keep only the newest `keep` ended ones
    def load_tokens(self) -> list: ...                            # [tfscheduler.auth.TokenRecord]
    def put_token(self, rec) -> None: ...
    def revoke_token(self, token_id: str, at: float) -> None: ...
    def close(self) -> None: ...
    # workloads (autoscaling; additive: an engine without them loses only workloads and their history)
    def load_workloads(self) -> list: ...                         # [WorkloadRecord]
    def put_workload(self, rec: WorkloadRecord) -> None: ...      # insert or replace all of it
    def put_workload_checkpoints(self, recs: list) -> None: ...   # [(namespace, name, status, checkpoint)]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS pools (name TEXT PRIMARY KEY, strategy TEXT, tflops_oversell REAL, vram_oversell REAL,
    tflops_weight REAL, vram_weight REAL);
CREATE TABLE IF NOT EXISTS nodes (worker_id TEXT PRIMARY KEY, node_name TEXT, pool TEXT, unix_path TEXT, tcp TEXT,
    admin TEXT, labels TEXT, available INTEGER, registered_at REAL, instance TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS gpus (uuid TEXT PRIMARY KEY, worker_id TEXT, idx INTEGER, model TEXT, vendor TEXT,
    vram_mib INTEGER, tflops REAL);
CREATE TABLE IF NOT EXISTS allocations (id TEXT PRIMARY KEY, pool TEXT, namespace TEXT, workload TEXT,
    worker_id TEXT, gpu_uuids TEXT, tflops REAL, vram_mib INTEGER, lim_tflops REAL, lim_vram_mib INTEGER,
    qos INTEGER, state INTEGER, reason TEXT, created_at REAL, lease_ttl_s REAL, lease_expires_at REAL,
    active INTEGER);
CREATE INDEX IF NOT EXISTS allocations_active ON allocations(active);
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, digest TEXT, role TEXT, namespace TEXT, node_name TEXT,
    description TEXT, created_at REAL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS quotas (namespace TEXT PRIMARY KEY, tflops REAL, vram_mib INTEGER, allocations INTEGER);
CREATE TABLE IF NOT EXISTS workloads (namespace TEXT, name TEXT, spec TEXT, status TEXT, checkpoint TEXT,
    updated_at REAL, PRIMARY KEY (namespace, name));
"""


class SqliteStore:
    """Store on one SQLite file. Single-threaded use (the scheduler's event loop)."""

    def __init__(self, path: str):
        private = path != ":memory:" and not path.startswith("file:")
        if private:     # state and token hashes: this user only, from creation on (WAL/SHM files follow the db)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(nodes)")}
        if "instance" not in columns:       # a database of a scheduler from before node identities
            self.db.execute("ALTER TABLE nodes ADD COLUMN instance TEXT DEFAULT ''")
        if private:
            for extra in (path + "-wal", path + "-shm"):
                if os.path.exists(extra):
                    os.chmod(extra, 0o600)

    def load(self) -> Snapshot:
        q = self.db.execute
        pools = [PoolRecord(*r) for r in q("SELECT name, strategy, tflops_oversell, vram_oversell, tflops_weight, "
                                           "vram_weight FROM pools")]
        nodes = [NodeRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}"), bool(r[7]), r[8],
                            r[9] or "")
                 for r in q("SELECT worker_id, node_name, pool, unix_path, tcp, admin, labels, available, "
                            "registered_at, instance FROM nodes")]
        gpus = [GpuRecord(*r) for r in q("SELECT uuid, worker_id, idx, model, vendor, vram_mib, tflops FROM gpus "
                                         "ORDER BY worker_id, idx")]
        allocs = []
        for r in q("SELECT id, pool, namespace, workload, worker_id, gpu_uuids, tflops, vram_mib, lim_tflops, "
                   "lim_vram_mib, qos, state, reason, created_at, lease_ttl_s, lease_expires_at FROM allocations "
                   "WHERE active = 1 ORDER BY created_at"):
            r = list(r)
            r[5] = tuple(json.loads(r[5]))
            allocs.append(AllocationRecord(*r))
        quotas = [QuotaRecord(*r) for r in q("SELECT namespace, tflops, vram_mib, allocations FROM quotas")]
        return Snapshot(pools, nodes, gpus, allocs, quotas)

    def put_pool(self, p: PoolRecord) -> None:
        self.db.execute("INSERT OR REPLACE INTO pools VALUES (?,?,?,?,?,?)",
                        (p.name, p.strategy, p.tflops_oversell, p.vram_oversell, p.tflops_weight, p.vram_weight))

    def put_quota(self, q: QuotaRecord) -> None:
        self.db.execute("INSERT OR REPLACE INTO quotas VALUES (?,?,?,?)",
                        (q.namespace, q.tflops, q.vram_mib, q.allocations))

    def put_node(self, n: NodeRecord, gpus: list) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO nodes (worker_id, node_name, pool, unix_path, tcp, admin, labels, "
                            "available, registered_at, instance) VALUES (?,?,?,?,?,?,?,?,?,?)",
                            (n.worker_id, n.node_name, n.pool, n.unix_path, n.tcp, n.admin, json.dumps(n.labels),
                             int(n.available), n.registered_at, n.instance))
            self.db.execute("DELETE FROM gpus WHERE worker_id = ?", (n.worker_id,))
            self.db.executemany("INSERT OR REPLACE INTO gpus VALUES (?,?,?,?,?,?,?)",
                                [(g.uuid, g.worker_id, g.index, g.model, g.vendor, g.vram_mib, g.tflops) for g in gpus])

    def set_node_available(self, worker_id: str, available: bool) -> None:
        self.db.execute("UPDATE nodes SET available = ? WHERE worker_id = ?", (int(available), worker_id))

    def put_allocation(self, a: AllocationRecord, ended: tuple = ()) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self._end(ended)
            self.db.execute("INSERT OR REPLACE INTO allocations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                            (a.id, a.pool, a.namespace, a.workload, a.worker_id, json.dumps(list(a.gpu_uuids)),
                             a.tflops, a.vram_mib, a.lim_tflops, a.lim_vram_mib, a.qos, a.state, a.reason,
                             a.created_at, a.lease_ttl_s, a.lease_expires_at))

    def _end(self, ended) -> None:
        if ended:
            self.db.executemany("UPDATE allocations SET state = ?, reason = ?, active = 0 WHERE id = ?",
                                [(state, reason, aid) for aid, state, reason in ended])

    def end_allocations(self, ended: list) -> None:
        if ended:
            with self.db:
                self.db.execute("BEGIN")
                self._end(ended)

    def renew_leases(self, renewals: list) -> None:
        if renewals:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("UPDATE allocations SET lease_expires_at = ? WHERE id = ?",
                                    [(exp, aid) for aid, exp in renewals])

    def get_ended(self, alloc_id: str) -> AllocationRecord | None:
        r = self.db.execute("SELECT id, pool, namespace, workload, worker_id, gpu_uuids, tflops, vram_mib, lim_tflops, "
                            "lim_vram_mib, qos, state, reason, created_at, lease_ttl_s, lease_expires_at FROM "
                            "allocations WHERE id = ? AND active = 0", (alloc_id,)).fetchone()
        if r is None:
            return None
        r = list(r)
        r[5] = tuple(json.loads(r[5]))
        return AllocationRecord(*r)

    def prune_ended(self, keep: int = 100_000) -> None:
        """Drops the oldest ended allocations beyond `keep` (history is for GetAllocation only)."""
        self.db.execute("DELETE FROM allocations WHERE active = 0 AND id NOT IN (SELECT id FROM allocations "
                        "WHERE active = 0 ORDER BY created_at DESC LIMIT ?)", (keep,))

    def load_tokens(self) -> list:
        from tfscheduler.auth import TokenRecord
        return [TokenRecord(*r) for r in self.db.execute(
            "SELECT id, digest, role, namespace, node_name, description, created_at, revoked_at FROM tokens")]

    def put_token(self, r) -> None:
        self.db.execute("INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?)", (r.id, r.digest, r.role, r.namespace,
                                                                        r.node_name, r.description, r.created_at,
                                                                        r.revoked_at))

    def revoke_token(self, token_id: str, at: float) -> None:
        self.db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (at, token_id))

    def load_workloads(self) -> list:
        return [WorkloadRecord(*r) for r in self.db.execute(
            "SELECT namespace, name, spec, status, checkpoint, updated_at FROM workloads ORDER BY namespace, name")]

    def put_workload(self, w: WorkloadRecord) -> None:
        self.db.execute("INSERT OR REPLACE INTO workloads VALUES (?,?,?,?,?,?)",
                        (w.namespace, w.name, w.spec, w.status, w.checkpoint, w.updated_at))

    def put_workload_checkpoints(self, recs: list) -> None:
        if recs:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("UPDATE workloads SET status = ?, checkpoint = ? WHERE namespace = ? AND name = ?",
                                    [(st, cp, ns, n) for ns, n, st, cp in recs])

    def close(self) -> None:
        self.db.close()
