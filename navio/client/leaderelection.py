"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's tools/leaderelection.

Why: controller-manager and scheduler run several replicas for availability, and exactly one may
act; they agree through a Lease object, so any Kubernetes server (and kubectl) sees who leads.

What is guaranteed (client-go leaderelection.go and resourcelock/leaselock.go):
- Defaults: lease 15 s, renew deadline 10 s, retry 2 s; the config is checked as
  NewLeaderElector checks it (lease > renew deadline > 1.2 × retry period).
- Every write is an update conditioned on the Lease's resourceVersion (or a create when there is
  none), so of two candidates racing, one gets 409 Conflict and loses that round.
- Expiry is judged on the local clock only: a candidate takes over a lease whose record it has
  seen unchanged for the record's leaseDurationSeconds, so clock skew between hosts is harmless.
- A leader renews every retry period; if it cannot renew within the renew deadline it stops
  leading: its `on_started_leading` task is cancelled, then `on_stopped_leading` is called. As
  in client-go, `on_stopped_leading` is called whenever `run` ends, led or not.
- On a graceful stop (`stop()` or cancelling `run`) a leader releases the lease, when
  `release_on_cancel` (the default): holderIdentity empty, leaseDurationSeconds 1, so that a
  standby takes over at its next retry instead of after a whole lease duration.
- If `on_started_leading` raises, the elector stops leading and releases (client-go would keep
  an idle leader renewing forever).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from navio.api import errors
from navio.client.clock import REAL_CLOCK, Clock
from navio.client.resources import LEASES
from navio.client.rest import Client

__all__ = ["LeaderElectionConfig", "LeaderElector", "default_identity"]

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
_RECORD_FIELDS = ("holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime",
                  "leaseTransitions")


def default_identity() -> str:
    """`<hostname>_<uuid>`, as kube-controller-manager and kube-scheduler choose it."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _micro_time(dt: datetime | None = None) -> str:
    """metav1.MicroTime's RFC 3339 form with microseconds, in UTC."""
    return (dt or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaderElectionConfig:
    name: str
    namespace: str = "kube-system"
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.name or not self.identity:
            raise ValueError("leader election needs a lease name and an identity")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError("renew_deadline must be greater than retry_period*1.2")
        if min(self.lease_duration, self.renew_deadline, self.retry_period) <= 0:
            raise ValueError("lease_duration, renew_deadline and retry_period must be > 0")


def _record(lease: dict[str, Any]) -> dict[str, Any]:
    spec = lease.get("spec") or {}
    return {k: spec.get(k) for k in _RECORD_FIELDS}


class LeaderElector:
    def __init__(self, client: Client, config: LeaderElectionConfig, *,
                 clock: Clock = REAL_CLOCK,
                 on_new_leader: Callable[[str], Any] | None = None) -> None:
        self.client = client
        self.config = config
        self._clock = clock
        self._on_new_leader = on_new_leader
        self._observed: dict[str, Any] = {}
        self._observed_time = 0.0
        self._lease: dict[str, Any] | None = None      # the Lease as last read or written
        self._reported = ""
        self._stop = asyncio.Event()

    # ---- state -------------------------------------------------------------------------

    def get_leader(self) -> str:
        """The holder last observed ("" when none has been seen or the lease was released)."""
        return self._observed.get("holderIdentity") or ""

    def is_leader(self) -> bool:
        return self.get_leader() == self.config.identity

    def _lease_valid(self) -> bool:
        duration = self._observed.get("leaseDurationSeconds") or self.config.lease_duration
        return self._clock.now() < self._observed_time + float(duration)

    def _observe(self, record: dict[str, Any], lease: dict[str, Any] | None) -> None:
        self._observed = record
        self._observed_time = self._clock.now()
        self._lease = lease

    def _report_transition(self) -> None:
        leader = self.get_leader()
        if leader == self._reported:
            return
        self._reported = leader
        log.info("new leader observed", extra={"lease": self._describe(), "leader": leader})
        if self._on_new_leader is not None:
            try:
                self._on_new_leader(leader)
            except Exception:
                log.exception("on_new_leader failed", extra={"lease": self._describe()})

    def _describe(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"

    # ---- one round (tryAcquireOrRenew) ---------------------------------------------------

    async def _write(self, lease: dict[str, Any], record: dict[str, Any]) -> bool:
        body = {**lease, "spec": {**record}}
        try:
            if lease.get("metadata", {}).get("resourceVersion"):
                written = await self.client.update(LEASES, body, self.config.namespace)
            else:
                written = await self.client.create(LEASES, body, self.config.namespace)
        except (errors.ApiError, ConnectionError) as exc:
            log.info("lease write failed", extra={"lease": self._describe(),
                                                  "error": type(exc).__name__})
            return False
        self._observe(record, written)
        return True

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lease; True when we hold it afterwards."""
        now = _micro_time()
        record = {"holderIdentity": self.config.identity,
                  "leaseDurationSeconds": int(self.config.lease_duration),
                  "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        # Fast path: while our lease is valid, renew the copy we wrote, without a read.
        if self.is_leader() and self._lease is not None and self._lease_valid():
            record["acquireTime"] = self._observed.get("acquireTime") or now
            record["leaseTransitions"] = self._observed.get("leaseTransitions") or 0
            if await self._write(self._lease, record):
                return True
        try:
            lease = await self.client.get(LEASES, self.config.name, self.config.namespace)
        except errors.NotFound:
            new = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": self.config.name,
                                "namespace": self.config.namespace}}
            return await self._write(new, record)
        except (errors.ApiError, ConnectionError) as exc:
            log.info("lease read failed", extra={"lease": self._describe(),
                                                 "error": type(exc).__name__})
            return False
        old = _record(lease)
        if old != self._observed:
            self._observe(old, lease)
        else:
            self._lease = lease
        if old["holderIdentity"] and self._lease_valid() and not self.is_leader():
            return False
        if self.is_leader():
            record["acquireTime"] = old["acquireTime"] or now
            record["leaseTransitions"] = old["leaseTransitions"] or 0
        else:
            record["leaseTransitions"] = (old["leaseTransitions"] or 0) + 1
        return await self._write(lease, record)

    async def _release(self) -> None:
        if not self.is_leader() or self._lease is None:
            return
        now = _micro_time()
        record = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now,
                  "renewTime": now,
                  "leaseTransitions": self._observed.get("leaseTransitions") or 0}
        if await self._write(self._lease, record):
            log.info("lease released", extra={"lease": self._describe()})

    # ---- loops -------------------------------------------------------------------------

    async def _pause(self, seconds: float) -> None:
        """Sleep on the clock, returning early when stop() is called."""
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()

    async def _acquire(self) -> bool:
        log.info("attempting to acquire leader lease", extra={"lease": self._describe()})
        while not self._stop.is_set():
            ok = await self.try_acquire_or_renew()
            self._report_transition()
            if ok:
                log.info("acquired leader lease", extra={"lease": self._describe()})
                return True
            period = self.config.retry_period
            await self._pause(period + random.random() * JITTER_FACTOR * period)
        return False

    async def _renew_once(self) -> bool:
        """Retry every retry period until renewed or the renew deadline passes."""
        deadline = self._clock.now() + self.config.renew_deadline
        while True:
            remaining = deadline - self._clock.now()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    if await self.try_acquire_or_renew():
                        return True
            except TimeoutError:
                return False
            if self._stop.is_set():
                return False
            await self._pause(min(self.config.retry_period, max(0.0, remaining)))

    async def _renew(self, leading: asyncio.Task[Any]) -> None:
        while not self._stop.is_set():
            if leading.done() and not leading.cancelled() and leading.exception() is not None:
                return                   # the leader's work failed: hand over
            renewed = await self._renew_once()
            self._report_transition()
            if not renewed:
                if not self._stop.is_set():
                    log.warning("failed to renew leader lease", extra={"lease": self._describe()})
                return
            await self._pause(self.config.retry_period)

    async def run(self, on_started_leading: Callable[[], Awaitable[Any]],
                  on_stopped_leading: Callable[[], Any] | None = None) -> None:
        """Campaign, lead while the lease is renewed, then return.

        `on_started_leading()` runs as a task while leading and is cancelled when leadership
        ends; `on_stopped_leading()` (sync or async) is called when `run` ends."""
        self._stop.clear()
        try:
            if not await self._acquire():
                return
            leading = asyncio.create_task(on_started_leading(),
                                          name=f"leading {self._describe()}")
            try:
                await self._renew(leading)
            finally:
                if not leading.done():
                    leading.cancel()
                try:
                    await leading
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("on_started_leading failed", extra={"lease": self._describe()})
                if self.config.release_on_cancel:
                    await asyncio.shield(self._release())
        finally:
            if on_stopped_leading is not None:
                try:
                    result = on_stopped_leading()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("on_stopped_leading failed", extra={"lease": self._describe()})

    def stop(self) -> None:
        """Ask `run` to stop: a leader releases the lease (if configured) and `run` returns."""
        self._stop.set()
