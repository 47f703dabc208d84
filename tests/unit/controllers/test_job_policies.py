"""Job pod failure policy, success policy and backoffLimitPerIndex (issue 6): the rule
matching as kube v1.32's job controller does it, and one reconcile at a time against the
in-memory API of test_job."""

from __future__ import annotations

from typing import Any

import pytest

from navio.controllers.job import (INDEX_FAILURE_COUNT, match_pod_failure_policy,
                                   match_success_policy)
from test_job import FakeClient, controller, job, pod

Obj = dict[str, Any]
INDEX = "batch.kubernetes.io/job-completion-index"


def exited(p: Obj, code: int, container: str = "c") -> Obj:
    p["status"]["containerStatuses"] = [{"name": container, "state": {"terminated": {
        "exitCode": code, "finishedAt": "2024-05-01T11:59:00Z"}}}]
    return p


def disrupted(p: Obj) -> Obj:
    p["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                  "reason": "DeletionByTaintManager"}]
    return p


def indexed_pod(name: str, index: int, phase: str = "Running", failures: int | None = None,
                **meta: Any) -> Obj:
    annotations = {INDEX: str(index)}
    if failures is not None:
        annotations[INDEX_FAILURE_COUNT] = str(failures)
    return pod(name, phase, annotations=annotations, **meta)


POLICY = {"rules": [
    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                          "values": [42]}},
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
]}


@pytest.mark.parametrize("make,want", [
    (lambda: exited(pod("p", "Failed"), 42, "main"),
     ("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0",
      True, "FailJob")),
    (lambda: exited(pod("p", "Failed"), 42, "side"), (None, True, "Count")),
    (lambda: disrupted(exited(pod("p", "Failed"), 1)), (None, False, "Ignore")),
    (lambda: exited(pod("p", "Failed"), 1), (None, True, None)),
    (lambda: exited(pod("p", "Failed"), 0), (None, True, None)),
], ids=["exit code of the named container fails the job", "another container's is counted",
        "a disruption is ignored", "no rule matches: counted", "exit code 0 never matches"])
def test_pod_failure_policy_rules_match_in_order(make: Any, want: tuple[Any, ...]) -> None:
    assert match_pod_failure_policy(POLICY, make()) == want


def test_a_fail_job_rule_on_a_pod_condition_names_the_condition() -> None:
    policy = {"rules": [{"action": "FailJob", "onPodConditions": [
        {"type": "DisruptionTarget", "status": "True"}]}]}
    assert match_pod_failure_policy(policy, disrupted(pod("p", "Failed")))[0] == \
        "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0"


@pytest.mark.parametrize("rules,succeeded,want", [
    ([{"succeededIndexes": "0,2"}], {0, 2}, ("Matched rules at index 0", True)),
    ([{"succeededIndexes": "0-3", "succeededCount": 2}], {1, 3, 5}, ("Matched rules at index 0",
                                                                    True)),
    ([{"succeededIndexes": "0-3", "succeededCount": 3}], {1, 3, 5}, ("", False)),
    ([{"succeededIndexes": "7"}, {"succeededCount": 2}], {1, 3}, ("Matched rules at index 1",
                                                                  True)),
], ids=["all listed indexes", "enough of the listed indexes", "not enough of them",
        "a count-only rule after a rule that does not match"])
def test_success_policy_rules(rules: list[Obj], succeeded: set[int],
                              want: tuple[str, bool]) -> None:
    assert match_success_policy({"rules": rules}, 6, succeeded) == want


async def test_a_fail_job_rule_fails_the_job_with_the_policy_message() -> None:
    client = FakeClient()
    pods = [exited(pod("bad", "Failed"), 42, "main"), pod("run", "Running")]
    ctl, recorder = controller(client, [job(parallelism=2, completions=2, podFailurePolicy=POLICY,
                                            podReplacementPolicy="Failed")], pods)
    await ctl.reconcile("ns/j")
    assert client.writes("delete") == ["run"]
    status = client.store[("jobs", "ns", "j")]["status"]
    target = status["conditions"][0]
    assert (target["type"], target["reason"]) == ("FailureTarget", "PodFailurePolicy")
    assert target["message"] == ("Container main for pod ns/bad failed with exit code 42 "
                                 "matching FailJob rule at index 0")
    ctl.jobs._replace([client.store[("jobs", "ns", "j")]], "2")
    ctl.pods._replace([], "2")
    await ctl.reconcile("ns/j")
    status = client.store[("jobs", "ns", "j")]["status"]
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("FailureTarget", "PodFailurePolicy"), ("Failed", "PodFailurePolicy")]
    assert ("Warning", "PodFailurePolicy", target["message"]) in recorder.events


async def test_an_ignored_failure_is_not_counted_but_is_replaced() -> None:
    client = FakeClient()
    ctl, _ = controller(client, [job(backoffLimit=0, podFailurePolicy=POLICY,
                                     podReplacementPolicy="Failed")],
                        [disrupted(exited(pod("gone", "Failed"), 137))])
    await ctl.reconcile("ns/j")
    assert client.writes("patch") == ["gone"], "its finalizer is removed"
    assert len(client.writes("create")) == 1, "a replacement is created"
    status = client.store[("jobs", "ns", "j")]["status"]
    assert not status.get("failed") and not status.get("conditions")


async def test_with_a_policy_a_terminating_pod_is_neither_failed_nor_replaced() -> None:
    client = FakeClient()
    leaving = pod("leaving", "Running", deletionTimestamp="2024-05-01T11:59:00Z")
    ctl, _ = controller(client, [job(backoffLimit=0, podFailurePolicy=POLICY,
                                     podReplacementPolicy="Failed")], [leaving])
    await ctl.reconcile("ns/j")
    assert not client.writes("create") and not client.writes("patch")
    status = client.store[("jobs", "ns", "j")]["status"]
    assert status["terminating"] == 1 and not status.get("failed")
    assert not status.get("conditions")


async def test_a_success_policy_completes_an_indexed_job_early() -> None:
    client = FakeClient()
    spec = dict(parallelism=3, completions=3, completionMode="Indexed",
                successPolicy={"rules": [{"succeededIndexes": "0"}]})
    pods = [indexed_pod("p0", 0, "Succeeded"), indexed_pod("p1", 1), indexed_pod("p2", 2)]
    ctl, recorder = controller(client, [job(**spec)], pods)
    await ctl.reconcile("ns/j")
    assert sorted(client.writes("delete")) == ["p1", "p2"]
    status = client.store[("jobs", "ns", "j")]["status"]
    assert status["completedIndexes"] == "0"
    assert [(c["type"], c["reason"], c["message"]) for c in status["conditions"]] == [
        ("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0")]
    ctl.jobs._replace([client.store[("jobs", "ns", "j")]], "2")
    ctl.pods._replace([], "2")
    await ctl.reconcile("ns/j")
    status = client.store[("jobs", "ns", "j")]["status"]
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("SuccessCriteriaMet", "SuccessPolicy"), ("Complete", "SuccessPolicy")]
    assert status["succeeded"] == 1 and status["completionTime"]
    assert ("Normal", "Completed", "Job completed") in recorder.events


def per_index(**spec: Any) -> Obj:
    base = dict(parallelism=2, completions=2, completionMode="Indexed", backoffLimitPerIndex=1,
                backoffLimit=2147483647, podReplacementPolicy="Failed")
    base.update(spec)
    return job(**base)


async def test_a_failed_index_is_retried_with_its_failure_count_carried_over() -> None:
    client = FakeClient()
    ctl, _ = controller(client, [per_index()],
                        [exited(indexed_pod("a", 0, "Failed", failures=0), 1),
                         indexed_pod("b", 1, failures=0)])
    await ctl.reconcile("ns/j")
    made = [o for (p, _, n), o in client.store.items() if p == "pods"]
    assert [(m["metadata"]["annotations"][INDEX], m["metadata"]["annotations"]
             [INDEX_FAILURE_COUNT]) for m in made] == [("0", "1")]
    assert "a" not in client.writes("patch"), "the failed pod keeps its finalizer meanwhile"
    status = client.store[("jobs", "ns", "j")]["status"]
    assert status["failedIndexes"] == "" and not status.get("failed")


async def test_an_index_out_of_retries_fails_and_the_job_fails_with_failed_indexes() -> None:
    client = FakeClient()
    ctl, recorder = controller(client, [per_index()],
                               [exited(indexed_pod("a", 0, "Failed", failures=1), 1),
                                indexed_pod("b", 1, "Succeeded", failures=0)])
    await ctl.reconcile("ns/j")
    assert not client.writes("create")
    status = client.store[("jobs", "ns", "j")]["status"]
    assert status["failedIndexes"] == "0" and status["completedIndexes"] == "1"
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]
    assert status["failed"] == 1 and status["succeeded"] == 1
    assert ("Warning", "FailedIndexes", "Job has failed indexes") in recorder.events


async def test_more_failed_indexes_than_allowed_fail_the_job_at_once() -> None:
    client = FakeClient()
    ctl, _ = controller(client, [per_index(completions=4, maxFailedIndexes=0,
                                           backoffLimitPerIndex=0)],
                        [exited(indexed_pod("a", 0, "Failed", failures=0), 1),
                         indexed_pod("b", 1, failures=0)])
    await ctl.reconcile("ns/j")
    assert client.writes("delete") == ["b"]
    cond = client.store[("jobs", "ns", "j")]["status"]["conditions"][0]
    assert (cond["type"], cond["reason"], cond["message"]) == (
        "FailureTarget", "MaxFailedIndexesExceeded",
        "Job has exceeded the specified maximal number of failed indexes")


async def test_a_fail_index_rule_fails_the_index_without_retries() -> None:
    client = FakeClient()
    policy = {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In",
                                                                "values": [3]}}]}
    ctl, _ = controller(client, [per_index(completions=3, backoffLimitPerIndex=5,
                                           podFailurePolicy=policy)],
                        [exited(indexed_pod("a", 0, "Failed", failures=0), 3),
                         indexed_pod("b", 1, failures=0)])
    await ctl.reconcile("ns/j")
    made = [o["metadata"]["annotations"][INDEX] for (p, _, n), o in client.store.items()
            if p == "pods"]
    assert made == ["2"], "index 0 is not retried"
    assert client.store[("jobs", "ns", "j")]["status"]["failedIndexes"] == "0"


async def test_a_failed_index_waits_for_its_own_back_off() -> None:
    """Index back-off is base · 2^(failures of the index), from the failed pod's finish."""
    client = FakeClient()
    ctl, _ = controller(client, [per_index(backoffLimitPerIndex=5)],
                        [exited(indexed_pod("a", 0, "Failed", failures=1), 1),
                         indexed_pod("b", 1, failures=0)])
    ctl.backoff_base = 40.0          # second failure of index 0: 80 s, 60 s of it passed
    await ctl.reconcile("ns/j")
    assert not client.writes("create")
    ctl.backoff_base = 20.0          # 40 s: over
    ctl.expectations.delete("ns/j")
    await ctl.reconcile("ns/j")
    assert len(client.writes("create")) == 1
