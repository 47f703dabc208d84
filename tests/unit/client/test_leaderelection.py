"""Lease-based leader election against an in-memory API with resourceVersion checks."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from client_fakes import FakeLeaseClient
from navio.client.clock import FakeClock
from navio.client.leaderelection import LeaderElectionConfig, LeaderElector
from navio.client.resources import LEASES

FAST = dict(lease_duration=0.6, renew_deadline=0.4, retry_period=0.05)


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"gave up after {timeout}s waiting for {what}") from None


class Candidate:
    def __init__(self, client: FakeLeaseClient, identity: str, **kw: object) -> None:
        cfg = LeaderElectionConfig(name="ctrl", namespace="kube-system", identity=identity,
                                   **{**FAST, **kw})  # type: ignore[arg-type]
        self.elector = LeaderElector(client, cfg)  # type: ignore[arg-type]
        self.leading = False
        self.started = 0
        self.stopped = 0
        self.work_cancelled = False
        self.task: asyncio.Task[None] | None = None

    async def _work(self) -> None:
        self.leading = True
        self.started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.work_cancelled = True
            raise
        finally:
            self.leading = False

    def _stopped(self) -> None:
        self.stopped += 1

    def start(self) -> "Candidate":
        self.task = asyncio.ensure_future(self.elector.run(self._work, self._stopped))
        return self

    async def stop(self) -> None:
        self.elector.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5.0)


def _elector(client: FakeLeaseClient, identity: str, clock: FakeClock | None = None,
             **kw: object) -> LeaderElector:
    cfg = LeaderElectionConfig(name="ctrl", identity=identity, **kw)  # type: ignore[arg-type]
    if clock is None:
        return LeaderElector(client, cfg)  # type: ignore[arg-type]
    return LeaderElector(client, cfg, clock=clock)  # type: ignore[arg-type]


def _spec(client: FakeLeaseClient) -> dict:
    return client.objects["kube-system/ctrl"]["spec"]


def test_defaults_are_client_gos():
    cfg = LeaderElectionConfig(name="x", identity="me")
    assert (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == (15.0, 10.0, 2.0)
    assert cfg.release_on_cancel


@pytest.mark.parametrize("kw", [
    dict(lease_duration=10.0, renew_deadline=10.0),
    dict(renew_deadline=2.0, retry_period=2.0),
    dict(identity=""),
], ids=["lease not longer than renew deadline", "renew deadline too short for the retry",
        "no identity"])
def test_unsafe_timing_is_refused(kw):
    with pytest.raises(ValueError):
        LeaderElectionConfig(name="x", **{"identity": "me", **kw})


async def test_the_first_candidate_creates_the_lease_and_leads():
    client = FakeLeaseClient()
    a = Candidate(client, "a").start()
    await wait_until(lambda: a.leading, "a to lead")
    spec = _spec(client)
    assert spec["holderIdentity"] == "a" and spec["leaseTransitions"] == 0
    assert spec["leaseDurationSeconds"] == 0          # int(0.6 s), as client-go truncates
    assert spec["renewTime"].endswith("Z") and "." in spec["renewTime"]
    assert a.elector.is_leader()
    await wait_until(lambda: len(client.writes) >= 3, "renewals")
    assert _spec(client)["acquireTime"] == spec["acquireTime"]
    await a.stop()
    assert a.stopped == 1 and a.work_cancelled


async def test_one_leads_and_the_other_takes_over_quickly_after_a_graceful_stop():
    client = FakeLeaseClient()
    a = Candidate(client, "a", lease_duration=5.0, renew_deadline=4.0).start()
    await wait_until(lambda: a.leading, "a to lead")
    b = Candidate(client, "b", lease_duration=5.0, renew_deadline=4.0).start()
    await wait_until(lambda: b.elector.get_leader() == "a", "b to observe a")
    assert not b.leading
    await a.stop()
    released = _spec(client)
    assert released["holderIdentity"] in ("", "b")
    # Well before a's 5 s lease would have run out:
    await wait_until(lambda: b.leading, "b to take over", timeout=2.0)
    assert _spec(client)["holderIdentity"] == "b"
    assert _spec(client)["leaseTransitions"] == 1
    assert b.started == 1 and a.stopped == 1
    await b.stop()


async def test_a_leader_that_cannot_renew_stops_leading_and_another_takes_over():
    client = FakeLeaseClient()
    a = Candidate(client, "a").start()
    await wait_until(lambda: a.leading, "a to lead")
    b = Candidate(client, "b").start()
    client.fail_for.add("a")                          # a is cut off from the API
    await wait_until(lambda: a.stopped == 1, "a to give up after its renew deadline")
    assert a.work_cancelled and not a.leading
    await wait_until(lambda: b.leading, "b to take over after the lease expires")
    await b.stop()
    await asyncio.wait_for(a.task, 5.0)


async def test_a_lease_held_by_a_silent_holder_is_taken_only_after_it_expires():
    client = FakeLeaseClient()
    clock = FakeClock()
    await client.create(LEASES, {"metadata": {"name": "ctrl", "namespace": "kube-system"},
                                 "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 15,
                                          "leaseTransitions": 4}}, "kube-system")
    le = _elector(client, "me", clock)
    assert not await le.try_acquire_or_renew()
    assert le.get_leader() == "ghost"
    clock.step(14.9)
    assert not await le.try_acquire_or_renew()
    clock.step(0.2)                                   # 15 s since we first saw this record
    assert await le.try_acquire_or_renew()
    assert _spec(client)["holderIdentity"] == "me"
    assert _spec(client)["leaseTransitions"] == 5


async def test_a_renewal_by_the_holder_restarts_the_local_expiry_timer():
    client = FakeLeaseClient()
    clock = FakeClock()
    holder = _elector(client, "h", clock)
    other = _elector(client, "o", clock)
    assert await holder.try_acquire_or_renew()
    assert not await other.try_acquire_or_renew()
    clock.step(10)
    assert await holder.try_acquire_or_renew()       # renewTime changes the record
    clock.step(10)
    assert not await other.try_acquire_or_renew()    # only 10 s since the change it saw


async def test_a_stale_resource_version_loses_the_race():
    client = FakeLeaseClient()
    a, b = _elector(client, "a"), _elector(client, "b")
    assert await a.try_acquire_or_renew()
    # b read the lease, then a renewed: b's update carries a stale resourceVersion.
    lease = await client.get(LEASES, "ctrl", "kube-system")
    assert await a.try_acquire_or_renew()
    assert not await b._write(lease, {"holderIdentity": "b"})
    assert _spec(client)["holderIdentity"] == "a"


async def test_a_failing_leader_callback_hands_leadership_over():
    client = FakeLeaseClient()
    le = _elector(client, "a", **FAST)
    stopped = asyncio.Event()

    async def crash() -> None:
        raise RuntimeError("leader work failed")

    async def on_stop() -> None:
        stopped.set()

    await asyncio.wait_for(le.run(crash, on_stop), 5.0)
    assert stopped.is_set()
    assert _spec(client)["holderIdentity"] == ""


async def test_cancelling_run_releases_the_lease():
    client = FakeLeaseClient()
    a = Candidate(client, "a").start()
    await wait_until(lambda: a.leading, "a to lead")
    assert a.task is not None
    a.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a.task
    assert _spec(client)["holderIdentity"] == ""
    assert _spec(client)["leaseDurationSeconds"] == 1
    assert a.stopped == 1


async def test_new_leader_callback_reports_each_change_once():
    client = FakeLeaseClient()
    seen: list[str] = []
    cfg = LeaderElectionConfig(name="ctrl", identity="a", **FAST)  # type: ignore[arg-type]
    le = LeaderElector(client, cfg, on_new_leader=seen.append)  # type: ignore[arg-type]
    task = asyncio.ensure_future(le.run(lambda: asyncio.Event().wait()))
    await wait_until(lambda: len(client.writes) >= 3, "a few renewals")
    le.stop()
    await asyncio.wait_for(task, 5.0)
    assert seen == ["a"]
