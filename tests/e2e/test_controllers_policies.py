"""Job failure and success policies, per-index back-off limits, event sources and the
DaemonSet template generation against a real `navio server --no-agent`, driven with the
real kubectl (issue 6).

Set up as test_controllers_nodes_jobs, whose helpers it uses: a server of this module's own
with `--disable controller-manager`; the controllers under test run in the test's event
loop; the tests play the kubelet by patching `pods/<p>/status`. Every wait is bounded.
"""

from __future__ import annotations

import json
from typing import Any

from cluster import Kubectl, NavioServer
from navio.client import DAEMONSETS, JOBS, PODS, Client
from test_controllers_nodes_jobs import (Obj, apply, condition, controllers, delete_nodes, event,
                                         job_manifest, job_pods, kc, make_node, now_sec,
                                         server_fixtures, wait_until)

server, kubectl, ns = server_fixtures("p")

INDEX = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
FAST = {"job-sync-batch-period": 0.1, "job-pod-failure-backoff": 0.2}


async def finish_pod(client: Client, ns: str, name: str, *, exit_code: int,
                     disrupted: bool = False) -> None:
    """Play the kubelet: the pod's container exited with `exit_code` (0: Succeeded)."""
    stamp = now_sec()
    status: Obj = {"phase": "Succeeded" if exit_code == 0 else "Failed", "containerStatuses": [{
        "name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
        "state": {"terminated": {"exitCode": exit_code, "reason": "Error" if exit_code
                                 else "Completed", "startedAt": stamp, "finishedAt": stamp}}}]}
    if disrupted:
        status["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                 "reason": "DeletionByTaintManager", "lastTransitionTime": stamp,
                                 "message": "Taint manager: deleting due to NoExecute taint"}]
    await client.patch_subresource(PODS, name, "status", {"status": status}, ns,
                                   patch_type="strategic")


async def live_pods(client: Client, ns: str, job: str, count: int) -> list[Obj]:
    async def check() -> list[Obj] | None:
        pods = [p for p in await job_pods(client, ns, job)
                if p["status"].get("phase") not in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]
        return pods if len(pods) == count else None
    return await wait_until(check, timeout=15, what=f"{count} running pods of {job}")  # type: ignore[no-any-return]


async def job_condition(client: Client, ns: str, name: str, ctype: str) -> Obj:
    async def check() -> Obj | None:
        job = await client.get(JOBS, name, ns)
        return job if condition(job, ctype).get("status") == "True" else None
    return await wait_until(check, timeout=20, what=f"job {name} {ctype}")  # type: ignore[no-any-return]


async def test_pod_failure_policy_ignores_disruptions_and_fails_the_job_on_an_exit_code(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: a policy needs restartPolicy Never; a disrupted pod is replaced without
    counting, its tracking finalizer removed; exit code 42 matches a FailJob
    rule: FailureTarget and Failed with reason PodFailurePolicy and kube's message, shown by
    `kubectl describe` as coming from job-controller."""
    policy = {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In",
                                              "values": [42]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    on_failure = job_manifest("pfp", backoffLimit=0, podFailurePolicy=policy)
    on_failure["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    refused = kubectl.run("apply", "-n", ns, "-f", "-", input=json.dumps(on_failure),
                          check=False)
    assert refused.returncode != 0
    assert ('spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is '
            'supported when podFailurePolicy is specified') in refused.stderr
    async with controllers(server, "job", **FAST) as client:
        await apply(kubectl, ns, job_manifest("pfp", backoffLimit=0, podFailurePolicy=policy))
        job = await client.get(JOBS, "pfp", ns)
        assert job["spec"]["podReplacementPolicy"] == "Failed"
        first = (await live_pods(client, ns, "pfp", 1))[0]["metadata"]["name"]
        await finish_pod(client, ns, first, exit_code=137, disrupted=True)
        second = (await live_pods(client, ns, "pfp", 1))[0]["metadata"]["name"]
        assert second != first
        assert "batch.kubernetes.io/job-tracking" in (await client.get(PODS, second, ns))[
            "metadata"]["finalizers"]

        async def released() -> bool:
            pod = await client.get(PODS, first, ns)
            return "batch.kubernetes.io/job-tracking" not in (pod["metadata"].get("finalizers")
                                                             or ())
        await wait_until(released, timeout=15, what="the ignored pod's finalizer removed")
        job = await client.get(JOBS, "pfp", ns)
        assert not job["status"].get("failed") and not condition(job, "FailureTarget")
        await finish_pod(client, ns, second, exit_code=42)
        job = await job_condition(client, ns, "pfp", "Failed")
        message = (f"Container c for pod {ns}/{second} failed with exit code 42 matching "
                   "FailJob rule at index 0")
        assert (condition(job, "FailureTarget")["reason"], condition(job, "Failed")["reason"],
                condition(job, "Failed")["message"]) == ("PodFailurePolicy", "PodFailurePolicy",
                                                         message)
        assert job["status"]["failed"] == 1
        warned = await event(client, ns, "PodFailurePolicy", message)
        assert (warned["source"]["component"], warned["reportingComponent"]) == (
            "job-controller", "job-controller")
        described = await kc(kubectl, "describe", "job", "pfp", "-n", ns)
        line = next(x for x in described.splitlines() if "PodFailurePolicy" in x
                    and "Warning" in x)
        assert "job-controller" in line


async def test_backoff_limit_per_index_retries_an_index_then_fails_it(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: index 0 fails, is retried with its failure count, fails again and is
    listed in status.failedIndexes; index 1 succeeds; the Job fails with FailedIndexes."""
    async with controllers(server, "job", **FAST) as client:
        await apply(kubectl, ns, job_manifest("per", completions=2, parallelism=2,
                                              completionMode="Indexed", backoffLimitPerIndex=1))
        pods = {p["metadata"]["annotations"][INDEX]: p
                for p in await live_pods(client, ns, "per", 2)}
        assert pods["0"]["metadata"]["annotations"][FAILURE_COUNT] == "0"
        await finish_pod(client, ns, pods["0"]["metadata"]["name"], exit_code=1)

        async def retried() -> Obj | None:
            for p in await job_pods(client, ns, "per"):
                if p["metadata"]["annotations"][INDEX] == "0" and \
                        p["metadata"]["annotations"].get(FAILURE_COUNT) == "1":
                    return p
            return None
        again = await wait_until(retried, timeout=15, what="index 0 retried")
        await finish_pod(client, ns, again["metadata"]["name"], exit_code=1)
        await finish_pod(client, ns, pods["1"]["metadata"]["name"], exit_code=0)
        job = await job_condition(client, ns, "per", "Failed")
        status = job["status"]
        assert (status["failedIndexes"], status["completedIndexes"]) == ("0", "1")
        assert (status["failed"], status["succeeded"]) == (2, 1)
        assert condition(job, "Failed")["reason"] == "FailedIndexes"
        assert condition(job, "Failed")["message"] == "Job has failed indexes"
        out = await kc(kubectl, "get", "job", "per", "-n", ns, "-o",
                       "jsonpath={.status.failedIndexes}")
        assert out == "0"


async def test_a_success_policy_completes_an_indexed_job_early(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: once index 0 succeeded the rule matches: SuccessCriteriaMet (SuccessPolicy,
    "Matched rules at index 0"), the other pods are deleted, then Complete."""
    async with controllers(server, "job", **FAST) as client:
        await apply(kubectl, ns, job_manifest(
            "leader", completions=3, parallelism=3, completionMode="Indexed",
            successPolicy={"rules": [{"succeededIndexes": "0"}]}))
        pods = {p["metadata"]["annotations"][INDEX]: p
                for p in await live_pods(client, ns, "leader", 3)}
        await finish_pod(client, ns, pods["0"]["metadata"]["name"], exit_code=0)
        job = await job_condition(client, ns, "leader", "Complete")
        met = condition(job, "SuccessCriteriaMet")
        assert (met["reason"], met["message"]) == ("SuccessPolicy", "Matched rules at index 0")
        assert condition(job, "Complete")["reason"] == "SuccessPolicy"
        assert job["status"]["completedIndexes"] == "0" and job["status"]["succeeded"] == 1

        async def others_gone() -> bool:
            return [p["metadata"]["annotations"][INDEX]
                    for p in await job_pods(client, ns, "leader")] == ["0"]
        await wait_until(others_gone, timeout=15, what="the other indexes' pods deleted")


def daemonset_manifest(name: str, image: str = "busybox", **pod_spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}],
                                           **pod_spec}}}}


async def test_the_api_server_counts_daemonset_template_generations(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: `deprecated.daemonset.template.generation` is 1 at creation, follows
    template changes (`kubectl set image`) and nothing else, and clients cannot set it."""
    key = "deprecated.daemonset.template.generation"
    async with controllers(server) as client:          # no controller: the server alone

        async def generation() -> str:
            ds = await client.get(DAEMONSETS, "gen", ns)
            return ds["metadata"]["annotations"][key]  # type: ignore[no-any-return]

        await apply(kubectl, ns, daemonset_manifest("gen"))
        assert await generation() == "1"
        await kc(kubectl, "set", "image", "daemonset/gen", "c=nginx", "-n", ns)
        assert await generation() == "2"
        await kc(kubectl, "label", "daemonset", "gen", "tier=x", "-n", ns)
        await kc(kubectl, "annotate", "daemonset", "gen", f"{key}=9", "--overwrite", "-n", ns)
        await apply(kubectl, ns, daemonset_manifest("gen", "nginx"))
        assert await generation() == "2"
        out = await kc(kubectl, "get", "ds", "gen", "-n", ns, "-o",
                       "jsonpath={.metadata.generation}")
        assert out == "2"



async def test_daemonset_adopts_an_orphan_and_releases_a_relabelled_pod(
        server: NavioServer, kubectl: Kubectl, ns: str) -> None:
    """Issue 6: a pod the selector matches that no controller owns is adopted (no second
    pod for its node); relabelled, it is released and replaced. `kubectl describe` shows
    the events as daemonset-controller's."""
    async with controllers(server, "daemonset") as client:
        await make_node(client, "ad-1", {"pool": "ad"})
        try:
            await apply(kubectl, ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "stray", "labels": {"app": "ad"}}, "spec": {
                "nodeName": "ad-1", "containers": [{"name": "c", "image": "busybox"}]}})
            await apply(kubectl, ns, daemonset_manifest("ad", nodeSelector={"pool": "ad"}))
            ds = await client.get(DAEMONSETS, "ad", ns)

            async def pods() -> list[Obj]:
                return (await client.list(PODS, ns, label_selector="app=ad"))["items"]  # type: ignore[no-any-return]

            async def adopted() -> bool:
                stray = await client.get(PODS, "stray", ns)
                refs = stray["metadata"].get("ownerReferences") or []
                return [(r["kind"], r["uid"], r.get("controller")) for r in refs] == [
                    ("DaemonSet", ds["metadata"]["uid"], True)]
            await wait_until(adopted, timeout=15, what="the orphan adopted")

            async def status_counts() -> bool:
                d = await client.get(DAEMONSETS, "ad", ns)
                return (d.get("status") or {}).get("currentNumberScheduled") == 1
            await wait_until(status_counts, timeout=15, what="the adopted pod counted")
            assert [p["metadata"]["name"] for p in await pods()] == ["stray"]
            await kc(kubectl, "label", "pod", "stray", "app=debug", "--overwrite", "-n", ns)

            async def replaced() -> list[Obj] | None:
                stray = await client.get(PODS, "stray", ns)
                got = await pods()
                return got if not stray["metadata"].get("ownerReferences") and len(got) == 1 \
                    else None
            new = await wait_until(replaced, timeout=15, what="the relabelled pod released "
                                   "and replaced")
            assert new[0]["metadata"]["name"].startswith("ad-")
            await event(client, ns, "SuccessfulCreate", name="ad")
            described = await kc(kubectl, "describe", "daemonset", "ad", "-n", ns)
            line = next(x for x in described.splitlines() if "SuccessfulCreate" in x)
            assert "daemonset-controller" in line
        finally:
            await delete_nodes(client, "ad-1")
