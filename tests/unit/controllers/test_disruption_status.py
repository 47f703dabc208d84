"""The disruption controller's status arithmetic (disruption.go's getExpectedPodCount,
buildDisruptedPodMap, countHealthyPods, updatePdbStatus) on plain objects."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from navio.controllers.disruption import (SyncError, build_disrupted_pod_map, compute_status,
                                          count_healthy, expected_pod_count, scaled_value)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, ready: bool = True, owner: str | None = "rs-uid",
        deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {"app": "a"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                    "uid": owner, "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = stamp(NOW)
    return {"metadata": meta, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def budget(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "b", "namespace": "ns", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, **spec}, "status": {}}


def scales(replicas: dict[str, int]) -> Any:
    return lambda ref, ns: replicas.get(ref["uid"])


def test_scaled_value_rounds_percentages_up() -> None:
    assert scaled_value(3, 10, True) == 3
    assert scaled_value("50%", 3, True) == 2
    assert scaled_value("50%", 3, False) == 1
    assert scaled_value("0%", 7, True) == 0
    with pytest.raises(SyncError):
        scaled_value("abc", 3, True)


def test_integer_min_available_counts_pods_without_scales() -> None:
    pods = [pod("a"), pod("b", owner=None), pod("c")]
    assert expected_pod_count(budget(minAvailable=2), pods, scales({})) == (3, 2, [])


def test_percentages_use_the_controllers_scale_and_report_unmanaged_pods() -> None:
    pods = [pod("a"), pod("b"), pod("x", owner=None)]
    assert expected_pod_count(budget(minAvailable="50%"), pods, scales({"rs-uid": 5})) \
        == (5, 3, ["x"])
    assert expected_pod_count(budget(maxUnavailable="20%"), pods, scales({"rs-uid": 5})) \
        == (5, 4, ["x"])
    assert expected_pod_count(budget(maxUnavailable=9), pods, scales({"rs-uid": 5}))[:2] \
        == (5, 0)
    with pytest.raises(SyncError, match='found no controllers for pod "a"'):
        expected_pod_count(budget(maxUnavailable=1), pods, scales({}))


def test_healthy_skips_unready_terminating_and_recently_disrupted_pods() -> None:
    pods = [pod("a"), pod("b", ready=False), pod("c", deleting=True), pod("d"), pod("e")]
    disrupted = {"d": stamp(NOW - timedelta(seconds=30))}
    assert count_healthy(pods, disrupted, NOW) == 2            # a and e


def test_disrupted_entries_expire_after_two_minutes() -> None:
    pods = [pod("fresh"), pod("stale"), pod("deleting", deleting=True)]
    pdb = budget(minAvailable=1)
    pdb["status"]["disruptedPods"] = {
        "fresh": stamp(NOW - timedelta(seconds=60)), "stale": stamp(NOW - timedelta(minutes=3)),
        "deleting": stamp(NOW), "vanished": stamp(NOW)}
    kept, recheck, expired = build_disrupted_pod_map(pods, pdb, NOW)
    assert kept == {"fresh": stamp(NOW - timedelta(seconds=60))}
    assert recheck == NOW + timedelta(seconds=60)
    assert [p["metadata"]["name"] for p in expired] == ["stale"]


def test_status_allowed_and_condition() -> None:
    pdb = budget(minAvailable=2)
    status = compute_status(pdb, 3, 2, 3, {}, stamp(NOW))
    assert status is not None
    assert {k: status[k] for k in ("disruptionsAllowed", "currentHealthy", "desiredHealthy",
                                   "expectedPods", "observedGeneration")} == {
        "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
        "observedGeneration": 3}
    assert status["conditions"] == [{"type": "DisruptionAllowed", "status": "True",
                                     "reason": "SufficientPods", "message": "",
                                     "observedGeneration": 3, "lastTransitionTime": stamp(NOW)}]
    pdb["status"] = status
    assert compute_status(pdb, 3, 2, 3, {}, stamp(NOW)) is None      # nothing changed
    later = stamp(NOW + timedelta(minutes=1))
    short = compute_status(pdb, 1, 2, 3, {}, later)
    assert short is not None and short["disruptionsAllowed"] == 0
    assert short["conditions"][0]["reason"] == "InsufficientPods"
    assert short["conditions"][0]["lastTransitionTime"] == later
    # Nothing expected: no disruption even with healthy pods above the minimum.
    assert compute_status(budget(minAvailable=0), 2, 0, 0, {}, stamp(NOW))[
        "disruptionsAllowed"] == 0  # type: ignore[index]


def test_stale_disruption_condition_timing() -> None:
    from navio.controllers.disruption import stale_disruption_after
    p = pod("a")
    assert stale_disruption_after(p, NOW) is None
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "True",
                                      "lastTransitionTime": stamp(NOW - timedelta(seconds=30))})
    assert stale_disruption_after(p, NOW) == 90.0
    assert stale_disruption_after(p, NOW + timedelta(minutes=5)) < 0  # type: ignore[operator]
    p["metadata"]["deletionTimestamp"] = stamp(NOW)
    assert stale_disruption_after(p, NOW) is None
