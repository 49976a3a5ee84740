"""Leader election of scheduler replicas through an etcd lease: one replica leads, the others refuse every call
with UNAVAILABLE naming the leader (clients and workers hold the list of replicas and move on by themselves).

Run by tfscheduler.server.serve() when the store is etcd and `replicas` is on. The leader key (<prefix>leader,
value = the leader's advertised address) is created only if absent and bound to an etcd lease of `ttl_s`, renewed
every ttl_s/3. A leader that dies stops renewing: etcd deletes the key when the lease runs out (≤ ttl_s) and the
next replica polling it (every ttl_s/3) creates it. Safety does not rest on timing: while leading, every store
transaction also compares the key's create revision (EtcdStore.guard), so a deposed leader that has not noticed
yet writes nothing (NotLeader) and steps down.
"""
from __future__ import annotations

import asyncio
import logging
import time

from tfclient.errors import NotLeader, StoreUnavailable
from tfscheduler.etcd_store import EtcdClient, create_equals, epb, put

log = logging.getLogger("tfscheduler.election")


class Election:
    def __init__(self, client: EtcdClient, key: bytes, address: str, ttl_s: int = 5):
        self.c, self.key, self.address, self.ttl_s = client, key, address, max(2, int(ttl_s))
        self.leading = False
        self.leader = ""                 # the leader's address as last read ("" = unknown / none)
        self.guard: tuple | None = None  # (key, create revision) while leading
        self._lease = 0
        self._stop = False
        self.why = ""                    # why we do not lead, when it is not another leader (etcd away)

    def gate(self) -> None:
        """For auth.AuthInterceptor: raises NotLeader unless this replica leads."""
        if not self.leading:
            why = f" ({self.why})" if self.why else ""
            raise NotLeader(f"this scheduler replica ({self.address}) does not lead; leader: "
                            f"{self.leader or 'none elected yet'}{why}: retry there or shortly")

    async def campaign_once(self) -> bool:
        """One try at the key. -> True if we lead now."""
        if self._lease:     # etcd came back before our lease ran out: the key is still ours, lead on
            r = await asyncio.to_thread(self.c.range, self.key)
            if r.kvs and r.kvs[0].lease == self._lease and \
                    await asyncio.to_thread(self.c.lease_keepalive, self._lease) > 0:
                self.guard, self.leader = (self.key, r.kvs[0].create_revision), self.address
                return True
            self._lease = 0
        lease = await asyncio.to_thread(self.c.lease_grant, self.ttl_s)
        r = await asyncio.to_thread(self.c.txn, [create_equals(self.key, 0)],
                                    [put(self.key, self.address.encode(), lease)],
                                    [epb.RequestOp(request_range=epb.RangeRequest(key=self.key))])
        if r.succeeded:
            self._lease, self.guard, self.leader = lease, (self.key, r.header.revision), self.address
            return True
        self.why = ""
        kvs = r.responses[0].response_range.kvs
        self.leader = kvs[0].value.decode() if kvs else ""
        try:
            await asyncio.to_thread(self.c.lease_revoke, lease)
        except StoreUnavailable:
            pass                                   # it runs out by itself
        return False

    async def run(self, on_elected, on_lost) -> None:
        """Campaigns, then keeps the lease alive; on_elected(guard) / on_lost() are awaited on each change."""
        renewed = 0.0
        while not self._stop:
            try:
                if not self.leading:
                    if await self.campaign_once():
                        renewed = time.monotonic()
                        await on_elected(self.guard)       # loads the state before the first call is served
                        self.leading, self.why = True, ""
                        log.info("leading as %s", self.address)
                else:
                    if await asyncio.to_thread(self.c.lease_keepalive, self._lease) <= 0:
                        raise NotLeader("leader lease gone")
                    renewed = time.monotonic()
            except NotLeader as e:
                await self._step_down(on_lost, str(e))
            except StoreUnavailable as e:
                self.why = str(e)
                # the lease may run out while etcd is away: stop serving before another replica could lead
                if self.leading and time.monotonic() - renewed > self.ttl_s * 2 / 3:
                    await self._step_down(on_lost, str(e))
                await asyncio.sleep(0.2)
                continue
            except Exception:
                log.exception("election step failed")
            await asyncio.sleep(self.ttl_s / 3)

    async def _step_down(self, on_lost, why: str) -> None:
        if self.leading:
            log.warning("no longer leading (%s)", why)
            self.leader = "" if self.leader == self.address else self.leader
            self.leading, self.guard = False, None
            await on_lost()

    def lost(self, leader: str = "") -> None:
        """Called when a store write found the leader key changed (NotLeader; leader = the key's value then, "" if
        none): follow at once, naming that leader in refusals (never ourselves)."""
        if self.leading:
            log.warning("a store write found another leader (%s): following", leader or "none yet")
        self.leading, self.guard = False, None
        self.leader = leader if leader != self.address else ""

    async def resign(self) -> None:
        self._stop = True
        was = self.leading
        self.leading, self.guard = False, None
        if was and self._lease:
            try:
                await asyncio.to_thread(self.c.lease_revoke, self._lease)   # the next replica leads at once
            except StoreUnavailable:
                pass
