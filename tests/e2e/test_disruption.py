"""PodDisruptionBudgets really applied (issue 14): the disruption controller's status, the
Eviction subresource's 429, and `kubectl cordon/uncordon/drain` end to end.

A `navio server --no-agent` of this module's own (scheduler and controllers on) serves two
`sim` agents (registration, heartbeats and the pod lifecycle without processes), so pods
become Running and Ready and evicted pods terminate as a kubelet would. Driven by the real
kubectl; every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any, Iterator

import pytest
from cluster import Kubectl, NavioServer, wait_for
from kubelet_lab import Agent
from rawhttp import request

TAG = uuid.uuid4().hex[:6]
NODE_A = f"da-{TAG}"
NODE_B = f"db-{TAG}"
MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def dserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("disruption") / "data").start()
    srv.port = int(srv.url.rsplit(":", 1)[1])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def dctl(dserver: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(dserver.kubeconfig, tmp_path_factory.mktemp("dhome"))


def _node_ready(kctl: Kubectl, name: str) -> bool:
    proc = kctl.run("get", "node", name, "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    conds = {c["type"]: c["status"] for c in json.loads(proc.stdout)["status"].get(
        "conditions", ())}
    return conds.get("Ready") == "True"


@pytest.fixture(scope="module")
def nodes(dserver: NavioServer, dctl: Kubectl) -> Iterator[tuple[str, str]]:
    agents = [Agent(name, dserver, dserver.data_dir.parent / name,
                    ("--runtime", "sim", "--pod-cidr", cidr)).start()
              for name, cidr in ((NODE_A, "10.246.1.0/24"), (NODE_B, "10.246.2.0/24"))]
    try:
        for name in (NODE_A, NODE_B):
            wait_for(lambda n=name: _node_ready(dctl, n), 60, f"node {name} Ready", 0.1)
        yield NODE_A, NODE_B
    finally:
        for agent in agents:
            agent.stop()


@pytest.fixture
def dns_(dctl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"d-{request.node.name.lower()[5:30].strip('_').replace('_', '-')}-{TAG}"
    dctl("create", "namespace", name)
    yield name
    dctl("delete", "namespace", name, "--wait=false", check=False)


def deployment(name: str, replicas: int, node: str | None = None) -> str:
    selector = f"      nodeSelector: {{kubernetes.io/hostname: {node}}}\n" if node else ""
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n"
            f"  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n"
            f"  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n"
            f"      terminationGracePeriodSeconds: 1\n{selector}"
            f"      containers:\n      - {{name: main, image: python}}\n")


def pdb(name: str, app: str, **spec: Any) -> str:
    return json.dumps({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                       "metadata": {"name": name},
                       "spec": {"selector": {"matchLabels": {"app": app}}, **spec}})


def _ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", ()))


def ready_pods(kctl: Kubectl, ns: str, app: str, count: int, timeout: float = 60
               ) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        pods = kctl.json("get", "pods", "-n", ns, "-l", f"app={app}", "-o", "json")["items"]
        live = [p for p in pods if _ready(p)]
        return live if len(live) == count and len(pods) == count else None
    return wait_for(check, timeout, f"{count} ready pods of {app}", 0.2)  # type: ignore[no-any-return]


def pdb_status(kctl: Kubectl, ns: str, name: str, timeout: float = 30,
               **want: Any) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = kctl.json("get", "pdb", name, "-n", ns, "-o", "json").get("status", {})
        return status if all(status.get(k) == v for k, v in want.items()) else None
    return wait_for(check, timeout, f"pdb {name} status {want}", 0.2)  # type: ignore[no-any-return]


def evict(kctl: Kubectl, ns: str, pod: str, **delete_options: Any
          ) -> subprocess.CompletedProcess[str]:
    body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                            "metadata": {"name": pod, "namespace": ns}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return kctl.run("create", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}/eviction",
                    "-f", "-", input=json.dumps(body), check=False)


def test_pdb_status_and_eviction_budget(dctl: Kubectl, nodes: tuple[str, str],
                                        dns_: str) -> None:
    """The status counts healthy pods; an eviction that would break the budget is a 429 with
    kube's message; a dry-run one changes nothing; one the budget allows deletes the pod and
    spends the budget until the controller sees the replacement."""
    ns = dns_
    dctl("apply", "-n", ns, "-f", "-", input=deployment("web", 2))
    pods = ready_pods(dctl, ns, "web", 2)
    dctl("apply", "-n", ns, "-f", "-", input=pdb("web-pdb", "web", minAvailable=2))
    status = pdb_status(dctl, ns, "web-pdb", currentHealthy=2, desiredHealthy=2,
                        expectedPods=2, disruptionsAllowed=0)
    cond = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")
    assert status["observedGeneration"] == 1

    victim = pods[0]["metadata"]["name"]
    refused = evict(dctl, ns, victim)
    assert refused.returncode != 0
    assert f"Error from server (TooManyRequests): {MESSAGE}" in refused.stderr
    raw = dctl.run("create", "--raw", f"/api/v1/namespaces/{ns}/pods/{victim}/eviction",
                   "-f", "-", "-v=8", input=json.dumps({
                       "apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": victim}}), check=False)
    assert "429" in raw.stderr and "DisruptionBudget" in raw.stderr
    assert "needs 2 healthy pods and has 2 currently" in raw.stderr

    # maxUnavailable 50% of the Deployment's scale 2: desiredHealthy 1, one disruption.
    dctl("apply", "-n", ns, "-f", "-", input=pdb("web-pdb", "web", maxUnavailable="50%"))
    status = pdb_status(dctl, ns, "web-pdb", observedGeneration=2, desiredHealthy=1,
                        disruptionsAllowed=1)
    cond = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("True", "SufficientPods")

    dry = evict(dctl, ns, victim, dryRun=["All"])
    assert dry.returncode == 0, dry.stderr
    assert dctl.json("get", "pdb", "web-pdb", "-n", ns, "-o", "json")["status"][
        "disruptionsAllowed"] == 1
    pod = dctl.json("get", "pod", victim, "-n", ns, "-o", "json")
    assert not pod["metadata"].get("deletionTimestamp")

    # With both nodes cordoned the replacement stays Pending: the budget stays spent.
    for node in nodes:
        dctl("cordon", node)
    try:
        done = evict(dctl, ns, victim)
        assert done.returncode == 0, done.stderr
        gone = dctl.run("get", "pod", victim, "-n", ns, "-o", "json", check=False)
        if gone.returncode == 0:           # terminating: marked as disrupted by the eviction
            conds = {c["type"]: c for c in json.loads(gone.stdout)["status"]["conditions"]}
            assert conds["DisruptionTarget"]["reason"] == "EvictionByEvictionAPI"
        other = pods[1]["metadata"]["name"]
        second = evict(dctl, ns, other)
        assert second.returncode != 0 and MESSAGE in second.stderr
        status = pdb_status(dctl, ns, "web-pdb", currentHealthy=1, disruptionsAllowed=0)
        assert victim not in (status.get("disruptedPods") or {})   # deleted: entry dropped
    finally:
        for node in nodes:
            dctl("uncordon", node)
    ready_pods(dctl, ns, "web", 2)
    pdb_status(dctl, ns, "web-pdb", currentHealthy=2, disruptionsAllowed=1)
    again = evict(dctl, ns, other)
    assert again.returncode == 0, again.stderr


def test_cordon_uncordon_and_drain_respect_the_budget(dctl: Kubectl, nodes: tuple[str, str],
                                                      dns_: str) -> None:
    """cordon sets spec.unschedulable and the unschedulable taint; drain of a node running
    both replicas of a Deployment with minAvailable 1 evicts one at a time, retrying on 429,
    and completes once the replacements on the other node are Ready."""
    ns, (a, b) = dns_, nodes
    out = dctl("cordon", b)
    assert f"node/{b} cordoned" in out

    def tainted(node: str, want: bool) -> bool:
        obj = dctl.json("get", "node", node, "-o", "json")
        has = any(t["key"] == "node.kubernetes.io/unschedulable" and t["effect"] == "NoSchedule"
                  for t in obj["spec"].get("taints", ()))
        return bool(obj["spec"].get("unschedulable")) == want and has == want
    wait_for(lambda: tainted(b, True), 30, "cordoned node tainted", 0.2)
    try:
        dctl("apply", "-n", ns, "-f", "-", input=deployment("app", 2))
        pods = ready_pods(dctl, ns, "app", 2)
        assert {p["spec"]["nodeName"] for p in pods} == {a}
        dctl("apply", "-n", ns, "-f", "-", input=pdb("app-pdb", "app", minAvailable=1))
        pdb_status(dctl, ns, "app-pdb", currentHealthy=2, disruptionsAllowed=1)
    finally:
        out = dctl("uncordon", b)
    assert f"node/{b} uncordoned" in out
    wait_for(lambda: tainted(b, False), 30, "uncordoned node untainted", 0.2)

    try:
        start = time.monotonic()
        drained = dctl.run("drain", a, "--ignore-daemonsets", "--delete-emptydir-data",
                           "--timeout=150s", check=False)
        elapsed = time.monotonic() - start
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert f"node/{a} cordoned" in drained.stdout
        assert f"node/{a} drained" in drained.stdout
        assert drained.stdout.count("evicted") >= 2
        # The second eviction met the budget (kubectl retries every 5s) until the first
        # replacement was Ready.
        assert MESSAGE in drained.stderr, drained.stderr
        assert elapsed < 150
        final = ready_pods(dctl, ns, "app", 2)
        assert {p["spec"]["nodeName"] for p in final} == {b}
        node = dctl.json("get", "node", a, "-o", "json")
        assert node["spec"].get("unschedulable") is True
    finally:
        dctl("uncordon", a, check=False)


def bare_pod(kctl: Kubectl, ns: str, name: str, app: str, *, ready: bool | None) -> None:
    """A pod bound to a node no agent serves, its status set by the test (None: Pending)."""
    kctl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": "ghost", "containers": [{"name": "c", "image": "python"}]}}))
    if ready is None:
        return
    status = {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}
    kctl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p",
         json.dumps(status))


def terminating(kctl: Kubectl, ns: str, name: str) -> bool:
    return bool(kctl.json("get", "pod", name, "-n", ns, "-o", "json")["metadata"].get(
        "deletionTimestamp"))


def test_eviction_rules_for_unhealthy_pending_and_doubly_budgeted_pods(
        dctl: Kubectl, dns_: str) -> None:
    """kube's rules: an unready pod may go when the budget is met (IfHealthyBudget) or always
    (AlwaysAllow) without spending it; a Pending pod ignores budgets; two budgets are a 500."""
    ns = dns_
    bare_pod(dctl, ns, "ok", "u", ready=True)
    bare_pod(dctl, ns, "sick", "u", ready=False)
    bare_pod(dctl, ns, "sick2", "u", ready=False)
    dctl("apply", "-n", ns, "-f", "-", input=pdb("u-pdb", "u", minAvailable=1))
    pdb_status(dctl, ns, "u-pdb", expectedPods=3, currentHealthy=1, desiredHealthy=1,
               disruptionsAllowed=0)
    refused = evict(dctl, ns, "ok")
    assert refused.returncode != 0 and MESSAGE in refused.stderr
    assert evict(dctl, ns, "sick").returncode == 0          # budget met: unready pod may go
    assert terminating(dctl, ns, "sick")
    assert dctl.json("get", "pdb", "u-pdb", "-n", ns, "-o", "json")["status"].get(
        "disruptedPods") is None                             # the budget was not spent

    # minAvailable 2 with one healthy pod: IfHealthyBudget keeps the unready pod, AlwaysAllow
    # lets it go.
    dctl("apply", "-n", ns, "-f", "-", input=pdb("u-pdb", "u", minAvailable=2))
    pdb_status(dctl, ns, "u-pdb", observedGeneration=2, desiredHealthy=2, disruptionsAllowed=0)
    kept = evict(dctl, ns, "sick2")
    assert kept.returncode != 0 and MESSAGE in kept.stderr
    # ...while a Pending pod is evicted without looking at budgets.
    bare_pod(dctl, ns, "waiting", "u", ready=None)
    assert evict(dctl, ns, "waiting").returncode == 0
    assert terminating(dctl, ns, "waiting")
    dctl("apply", "-n", ns, "-f", "-", input=pdb("u-pdb", "u", minAvailable=2,
                                                  unhealthyPodEvictionPolicy="AlwaysAllow"))
    pdb_status(dctl, ns, "u-pdb", observedGeneration=3)
    assert evict(dctl, ns, "sick2").returncode == 0
    assert terminating(dctl, ns, "sick2")


    # A second budget over the same pods: the eviction subresource refuses with 500.
    dctl("apply", "-n", ns, "-f", "-", input=pdb("u-pdb2", "u", maxUnavailable=1))
    two = evict(dctl, ns, "ok")
    assert two.returncode != 0
    assert ("This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support.") in two.stderr
    assert not terminating(dctl, ns, "ok")
    # maxUnavailable needs the pods' controllers' scale; these bare pods have none.
    pdb_status(dctl, ns, "u-pdb2", expectedPods=0, disruptionsAllowed=0)

    def unmanaged() -> dict[str, Any] | None:
        events = dctl.json("get", "events", "-n", ns, "--field-selector",
                           "involvedObject.name=u-pdb2", "-o", "json")["items"]
        return next((e for e in events if e["reason"] == "UnmanagedPods"), None)
    event = wait_for(unmanaged, 30, "UnmanagedPods event", 0.2)
    assert event["type"] == "Warning" and event["source"]["component"] == "controllermanager"
    assert "were found to be unmanaged" in event["message"]

    # A mismatched name is a 400.
    bad = dctl.run("create", "--raw", f"/api/v1/namespaces/{ns}/pods/ok/eviction", "-f", "-",
                   input=json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                                     "metadata": {"name": "other"}}), check=False)
    assert "name in URL does not match name in Eviction object" in bad.stderr


def test_a_stale_disruption_condition_is_reset(dctl: Kubectl, dns_: str) -> None:
    """A pod still alive two minutes after it was marked DisruptionTarget (its eviction's
    delete never happened) gets the condition back to False from the disruption controller."""
    ns = dns_
    bare_pod(dctl, ns, "marked", "m", ready=True)
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 180))
    dctl("patch", "pod", "marked", "-n", ns, "--subresource=status", "--type=strategic", "-p",
         json.dumps({"status": {"conditions": [{
             "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
             "message": "Eviction API: evicting", "lastTransitionTime": old}]}}))

    def reset() -> dict[str, Any] | None:
        pod = dctl.json("get", "pod", "marked", "-n", ns, "-o", "json")
        cond = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
        return cond if cond["status"] == "False" else None
    cond = wait_for(reset, 30, "DisruptionTarget reset to False", 0.2)
    assert cond["lastTransitionTime"] > old


def _pb(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    def varint(n: int) -> bytes:
        out = b""
        while True:
            byte, n = n & 0x7F, n >> 7
            out += bytes([byte | (0x80 if n else 0)])
            if not n:
                return out
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def protobuf_eviction(name: str, dry_run: bool = False) -> bytes:
    """An Eviction as client-go sends it in protobuf: 'k8s\\0' + runtime.Unknown."""
    options = _pb(2, _pb(5, b"All")) if dry_run else b""
    eviction = _pb(1, _pb(1, name.encode())) + options
    type_meta = _pb(1, b"policy/v1") + _pb(2, b"Eviction")
    return b"k8s\x00" + _pb(1, type_meta) + _pb(2, eviction)


def test_a_protobuf_eviction_is_decoded(dserver: NavioServer, dctl: Kubectl, dns_: str
                                        ) -> None:
    """Clients that speak protobuf (client-go's default for core types) get the same
    answers: a 429 Status with the DisruptionBudget cause, and dry-run from the body."""
    ns = dns_
    bare_pod(dctl, ns, "guarded", "g", ready=True)
    bare_pod(dctl, ns, "free", "f", ready=True)
    dctl("apply", "-n", ns, "-f", "-", input=pdb("g-pdb", "g", minAvailable=1))
    pdb_status(dctl, ns, "g-pdb", currentHealthy=1, disruptionsAllowed=0)
    headers = {"Content-Type": "application/vnd.kubernetes.protobuf"}
    code, _, body = request(dserver, "POST", f"/api/v1/namespaces/{ns}/pods/guarded/eviction",
                            protobuf_eviction("guarded"), headers)
    status = json.loads(body)
    assert code == 429, body
    assert (status["reason"], status["message"]) == ("TooManyRequests", MESSAGE)
    assert status["details"]["causes"] == [{
        "reason": "DisruptionBudget",
        "message": "The disruption budget g-pdb needs 1 healthy pods and has 1 currently"}]
    code, _, body = request(dserver, "POST", f"/api/v1/namespaces/{ns}/pods/free/eviction",
                            protobuf_eviction("free", dry_run=True), headers)
    assert code == 201, body
    assert json.loads(body)["status"] == "Success"
    assert not terminating(dctl, ns, "free")
    code, _, body = request(dserver, "POST", f"/api/v1/namespaces/{ns}/pods/free/eviction",
                            protobuf_eviction("free"), headers)
    assert code == 201, body
    assert terminating(dctl, ns, "free")
