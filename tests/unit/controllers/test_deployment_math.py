"""Deployment arithmetic: fenceposts, new ReplicaSet size, proportional scaling, revisions,
hashes and conditions, as kube's deployment_util computes them (issue 6)."""

from __future__ import annotations

import pytest

from navio.controllers import deployment_util as du
from navio.controllers.deployment_rollout import calculate_status
from navio.controllers.namespace import conditions_for


def deployment(replicas: int, surge: object = None, unavailable: object = None, *,
               strategy: str = "RollingUpdate", status_replicas: int = 0) -> dict:
    spec: dict = {"replicas": replicas, "strategy": {"type": strategy},
                  "template": {"metadata": {"labels": {"app": "x"}},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "d", "generation": 1}, "spec": spec,
            "status": {"replicas": status_replicas}}


def rs(name: str, replicas: int, created: str, *, max_replicas: int | None = None,
       available: int = 0) -> dict:
    ann = {} if max_replicas is None else {du.MAX_REPLICAS_ANNOTATION: str(max_replicas)}
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": created,
                         "annotations": ann},
            "spec": {"replicas": replicas}, "status": {"availableReplicas": available}}


@pytest.mark.parametrize("surge,unavailable,desired,expected", [
    ("25%", "25%", 3, (1, 0)),
    ("25%", "25%", 10, (3, 2)),
    (0, 0, 10, (0, 1)),
    ("0%", "0%", 1, (0, 1)),
    (2, 3, 5, (2, 3)),
    ("1%", "1%", 1, (1, 0)),
    (None, None, 4, (0, 1)),
], ids=["percent of 3 rounds surge up and unavailable down", "percent of 10",
        "both zero allow one unavailable", "both zero percent allow one unavailable",
        "absolute values", "tiny percentages", "unset counts as zero"])
def test_fenceposts_resolve_as_kube_does(surge: object, unavailable: object, desired: int,
                                         expected: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_unavailable_never_exceeds_replicas_and_recreate_has_no_fenceposts() -> None:
    assert du.max_unavailable(deployment(2, 0, 5)) == 2
    assert du.max_unavailable(deployment(0, 1, 1)) == 0
    assert du.max_surge(deployment(3, strategy="Recreate")) == 0


@pytest.mark.parametrize("d,new,old,expected", [
    (deployment(10, 3, 0), 0, 10, 3),
    (deployment(10, 3, 0), 3, 10, 3),
    (deployment(10, "25%", 0), 8, 2, 10),
    (deployment(5, strategy="Recreate"), 0, 5, 5),
], ids=["scales up by the surge", "cannot exceed replicas plus surge",
        "never beyond the desired replicas", "recreate goes straight to full size"])
def test_new_replica_set_size(d: dict, new: int, old: int, expected: int) -> None:
    new_rs = rs("new", new, "2024-01-02T00:00:00Z")
    all_rss = [rs("old", old, "2024-01-01T00:00:00Z"), new_rs]
    assert du.new_rs_new_replicas(d, all_rss, new_rs) == expected


OLDEST, OLDER, NEWER = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"


@pytest.mark.parametrize("replicas,old_size,sizes,expected", [
    (10, 5, {"v1": (3, OLDEST), "v2": (2, NEWER)}, {"v1": 6, "v2": 4}),
    (3, 5, {"v1": (3, OLDEST), "v2": (2, NEWER)}, {"v1": 2, "v2": 1}),
    (4, 9, {"v1": (1, OLDEST), "v2": (8, NEWER)}, {"v1": 0, "v2": 4}),
    (10, 7, {"v1": (3, OLDEST), "v2": (2, OLDER), "v3": (2, NEWER)},
     {"v1": 4, "v2": 3, "v3": 3}),
], ids=["5 to 10", "5 to 3", "9 to 4", "7 to 10 over three replica sets"])
def test_scaling_mid_rollout_is_proportional(replicas: int, old_size: int,
                                             sizes: dict[str, tuple[int, str]],
                                             expected: dict[str, int]) -> None:
    d = deployment(replicas, 0, 0)
    active = [rs(n, size, created, max_replicas=old_size) for n, (size, created) in sizes.items()]
    got, op = du.proportional_sizes(d, active)
    assert got == expected
    assert op == ("up" if replicas > old_size else "down")


def test_proportions_without_annotations_fall_back_to_status_replicas() -> None:
    d = deployment(10, 0, 0, status_replicas=5)
    got, _ = du.proportional_sizes(d, [rs("a", 3, OLDEST), rs("b", 2, NEWER)])
    assert got == {"a": 6, "b": 4}


def test_the_pod_template_hash_is_stable_and_safe_for_names() -> None:
    t = deployment(1)["spec"]["template"]
    h = du.compute_hash(t, None)
    assert h == du.compute_hash({"spec": t["spec"], "metadata": t["metadata"]}, None)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert du.compute_hash(t, 1) != h
    other = {"metadata": t["metadata"], "spec": {"containers": [{"name": "c", "image": "j"}]}}
    assert du.compute_hash(other, None) != h


def test_templates_compare_equal_ignoring_the_hash_label_and_empty_fields() -> None:
    t = deployment(1)["spec"]["template"]
    with_hash = {"metadata": {"labels": {"app": "x", du.HASH_LABEL: "abc"}, "annotations": {}},
                 "spec": t["spec"]}
    assert du.equal_ignore_hash(t, with_hash)
    changed = {"metadata": t["metadata"], "spec": {"containers": [{"name": "c", "image": "z"}]}}
    assert not du.equal_ignore_hash(t, changed)


def test_a_rolled_back_replica_set_takes_a_new_revision_and_keeps_its_history() -> None:
    d = deployment(3, 1, 0)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "undo",
                                    du.REVISION_ANNOTATION: "2"}
    old = {"metadata": {"name": "r", "annotations": {du.REVISION_ANNOTATION: "1"}},
           "spec": {"replicas": 0}}
    assert du.set_new_rs_annotations(d, old, "3", True)
    ann = old["metadata"]["annotations"]
    assert ann[du.REVISION_ANNOTATION] == "3"
    assert ann[du.REVISION_HISTORY_ANNOTATION] == "1"
    assert ann["kubernetes.io/change-cause"] == "undo"
    assert not du.set_new_rs_annotations(d, old, "3", True)


def test_a_new_replica_set_records_desired_and_max_replicas() -> None:
    d = deployment(4, "50%", 1)
    new = {"metadata": {"name": "n"}, "spec": {"replicas": 0}}
    du.set_new_rs_annotations(d, new, "1", False)
    ann = new["metadata"]["annotations"]
    assert (ann[du.DESIRED_REPLICAS_ANNOTATION], ann[du.MAX_REPLICAS_ANNOTATION]) == ("4", "6")


def test_progress_times_out_only_after_the_deadline_without_progress() -> None:
    d = deployment(1)
    d["spec"]["progressDeadlineSeconds"] = 60
    status = {"conditions": [du.new_condition("Progressing", "True", "ReplicaSetUpdated", "m",
                                              "2024-01-01T00:00:00Z")]}
    t0 = 1704067200.0
    assert not du.deployment_timed_out(d, status, t0 + 59)
    assert du.deployment_timed_out(d, status, t0 + 61)
    du.set_condition(status, du.new_condition("Progressing", "True",
                                              du.NEW_RS_AVAILABLE_REASON, "m", "now"))
    assert not du.deployment_timed_out(d, status, t0 + 1000)


def test_available_condition_follows_max_unavailable() -> None:
    d = deployment(4, 1, 1)
    status = calculate_status([rs("a", 4, OLDEST, available=3)], None, d, "now")
    assert du.get_condition(status, "Available")["reason"] == "MinimumReplicasAvailable"
    status = calculate_status([rs("a", 4, OLDEST, available=2)], None, d, "now")
    cond = du.get_condition(status, "Available")
    assert (cond["status"], cond["reason"]) == ("False", "MinimumReplicasUnavailable")


def test_namespace_conditions_report_failures_and_their_ok_variants() -> None:
    conds, changed = conditions_for([], {"NamespaceContentRemaining": (
        "SomeResourcesRemain", "Some resources are remaining: pods. has 1 resource instances")},
        "t0")
    assert changed and len(conds) == 5
    by_type = {c["type"]: c for c in conds}
    assert by_type["NamespaceContentRemaining"]["status"] == "True"
    assert by_type["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
    again, changed = conditions_for(conds, {"NamespaceContentRemaining": (
        "SomeResourcesRemain", "Some resources are remaining: pods. has 1 resource instances")},
        "t1")
    assert not changed and again == conds
    cleared, changed = conditions_for(conds, {}, "t2")
    assert changed
    assert {c["type"]: c for c in cleared}["NamespaceContentRemaining"] == {
        "type": "NamespaceContentRemaining", "status": "False", "lastTransitionTime": "t2",
        "reason": "ContentRemoved", "message": "All content successfully removed"}
