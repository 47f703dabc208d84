"""Which pods a ReplicaSet deletes first, its expectations and slow-start batches (issue 6)."""

from __future__ import annotations

import asyncio

import pytest

from navio.client import FakeClock
from navio.controllers.controller_utils import (Expectations, is_pod_available, pod_from_template,
                                                pods_to_delete, rank_pods_for_deletion,
                                                slow_start_batch)

NOW = 1_700_000_000.0


def _ts(t: float) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool = True,
        ready_at: float = NOW - 3600, restarts: int = 0, created: float = NOW - 7200,
        cost: int | None = None) -> dict:
    meta: dict = {"name": name, "uid": f"uid-{name}", "creationTimestamp": _ts(created)}
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": _ts(ready_at)}]
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def names(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


@pytest.mark.parametrize("first,second", [
    (pod("a", node=""), pod("b")),
    (pod("a", phase="Pending"), pod("b", phase="Running")),
    (pod("a", phase="Unknown"), pod("b", phase="Running")),
    (pod("a", phase="Pending"), pod("b", phase="Unknown")),
    (pod("a", ready=False), pod("b")),
    (pod("a", cost=-5), pod("b", cost=10)),
    (pod("a", ready_at=NOW - 10), pod("b", ready_at=NOW - 100_000)),
    (pod("a", restarts=7), pod("b", restarts=1)),
    (pod("a", created=NOW - 10), pod("b", created=NOW - 100_000)),
], ids=["unscheduled before scheduled", "pending before running", "unknown before running",
        "pending before unknown", "not ready before ready", "lower deletion cost first",
        "recently ready before long ready", "more restarts first", "newer before older"])
def test_the_less_valuable_pod_is_deleted_first(first: dict, second: dict) -> None:
    assert names(rank_pods_for_deletion([second, first], [], NOW)) == ["a", "b"]
    assert names(rank_pods_for_deletion([first, second], [], NOW)) == ["a", "b"]


def test_pods_doubled_up_on_a_node_go_before_lonely_ones() -> None:
    crowded, alone = pod("a", node="busy"), pod("b", node="quiet")
    related = [crowded, alone, pod("x", node="busy"), pod("y", node="busy")]
    assert names(rank_pods_for_deletion([alone, crowded], related, NOW)) == ["a", "b"]


def test_ready_times_in_the_same_log2_bucket_tie_break_by_uid() -> None:
    a = pod("a", ready_at=NOW - 1000)
    b = pod("b", ready_at=NOW - 1001)       # same power-of-two bucket of age
    assert names(rank_pods_for_deletion([b, a], [], NOW)) == ["a", "b"]


def test_phase_outranks_readiness_and_restarts() -> None:
    pods = [pod("ready-running"), pod("crashy", restarts=9),
            pod("pending", phase="Pending", ready=False), pod("unscheduled", node="")]
    assert names(rank_pods_for_deletion(pods, [], NOW)) == [
        "unscheduled", "pending", "crashy", "ready-running"]


def test_deleting_every_pod_keeps_their_order() -> None:
    pods = [pod("a"), pod("b", node="")]
    assert names(pods_to_delete(pods, [], 2, NOW)) == ["a", "b"]
    assert names(pods_to_delete(pods, [], 1, NOW)) == ["b"]


@pytest.mark.parametrize("min_ready,ready_for,available", [
    (0, 0, True), (10, 5, False), (10, 11, True)],
    ids=["no minReadySeconds", "ready too briefly", "ready long enough"])
def test_availability_honours_min_ready_seconds(min_ready: int, ready_for: float,
                                                available: bool) -> None:
    assert is_pod_available(pod("a", ready_at=NOW - ready_for), min_ready, NOW) is available


def test_expectations_block_until_every_create_and_delete_is_observed() -> None:
    clock = FakeClock()
    exp = Expectations(clock)
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 2)
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.expect_deletions("ns/rs", ["ns/p1", "ns/p2"])
    exp.deletion_observed("ns/rs", "ns/p1")
    exp.deletion_observed("ns/rs", "ns/p1")         # the same pod counts once
    exp.deletion_observed("ns/rs", "ns/other")      # not one we deleted
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "ns/p2")
    assert exp.satisfied("ns/rs")


def test_expectations_expire_after_five_minutes() -> None:
    clock = FakeClock()
    exp = Expectations(clock)
    exp.expect_creations("ns/rs", 3)
    clock.step(299)
    assert not exp.satisfied("ns/rs")
    clock.step(2)
    assert exp.satisfied("ns/rs")


async def test_slow_start_doubles_batches_and_stops_at_the_first_failing_batch() -> None:
    calls: list[int] = []

    async def ok() -> None:
        calls.append(1)
        await asyncio.sleep(0)

    assert await slow_start_batch(10, 1, ok) == (10, None)
    assert len(calls) == 10

    count = 0

    async def fails_after_three() -> None:
        nonlocal count
        count += 1
        if count > 3:
            raise RuntimeError("quota")

    successes, error = await slow_start_batch(100, 1, fails_after_three)
    # batches of 1 and 2 succeed; the whole batch of 4 fails; nothing is called after it
    assert (successes, count, str(error)) == (3, 7, "quota")


def test_pods_from_a_template_carry_its_metadata_and_a_controller_reference() -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web-abc", "uid": "u1", "namespace": "ns"}}
    template = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"},
                             "finalizers": ["f"]},
                "spec": {"containers": [{"name": "c", "image": "x"}]}}
    p = pod_from_template(template, rs)
    assert p["metadata"]["generateName"] == "web-abc-"
    assert p["metadata"]["labels"] == {"app": "web"}
    assert p["metadata"]["annotations"] == {"a": "b"} and p["metadata"]["finalizers"] == ["f"]
    assert p["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u1",
        "controller": True, "blockOwnerDeletion": True}]
    p["spec"]["containers"][0]["image"] = "changed"
    assert template["spec"]["containers"][0]["image"] == "x"
