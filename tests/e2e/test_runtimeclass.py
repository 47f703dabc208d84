"""RuntimeClass with the real kubectl (issue 14): the kind served with kube's columns, the
RuntimeClass admission plugin (overhead, scheduling merged into the pod, kube's refusals) and
the kubelet's side: a node reports its handlers, and a pod whose class is missing or names a
handler the node's runtime lacks gets no sandbox (FailedCreatePodSandBox), as in kube.

One `navio server --no-agent` (scheduler on) and one `sim` agent, the only node.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterator

import pytest
from cluster import Kubectl, NavioServer, wait_for
from kubelet_lab import Agent

NODE = f"rc-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def rserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("rc") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def rctl(rserver: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(rserver.kubeconfig, tmp_path_factory.mktemp("rchome"))


@pytest.fixture(scope="module")
def node(rserver: NavioServer, rctl: Kubectl) -> Iterator[str]:
    agent = Agent(NODE, rserver, rserver.data_dir.parent / NODE,
                  ("--runtime", "sim", "--pod-cidr", "10.247.0.0/24")).start()
    try:
        def ready() -> bool:
            proc = rctl.run("get", "node", NODE, "-o", "json", check=False)
            conds = json.loads(proc.stdout).get("status", {}).get("conditions", ()) \
                if proc.returncode == 0 else ()
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
        wait_for(ready, 30, f"node {NODE} Ready")
        yield NODE
    finally:
        agent.stop()


@pytest.fixture
def rns(rctl: Kubectl) -> Iterator[str]:
    name = f"rc-{uuid.uuid4().hex[:8]}"
    rctl("create", "namespace", name)
    yield name
    rctl("delete", "namespace", name, "--wait=false", check=False)


def pod(name: str, runtime_class: str, extra: str = "") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  runtimeClassName: {runtime_class}
  containers: [{{name: c, image: busybox}}]
{extra}"""


def get(rctl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    return json.loads(rctl("get", "pod", name, "-n", ns, "-o", "json"))


def events(rctl: Kubectl, ns: str, name: str) -> list[str]:
    out = json.loads(rctl("get", "events", "-n", ns, "-o", "json",
                          f"--field-selector=involvedObject.name={name}"))
    return [f"{e['reason']}: {e['message']}" for e in out["items"]]


def test_runtime_class_is_served_and_applied_to_pods(rctl: Kubectl, rns: str, node: str) -> None:
    rc = f"sim-{rns}"
    rctl("apply", "-f", "-", input=f"""
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {{name: {rc}}}
handler: sim
overhead: {{podFixed: {{cpu: 250m, memory: 64Mi}}}}
scheduling:
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  tolerations: [{{key: dedicated, operator: Equal, value: sim, effect: NoSchedule}}]
""")
    try:
        table = rctl("get", "runtimeclass", rc).splitlines()
        assert table[0].split() == ["NAME", "HANDLER", "AGE"]
        assert table[1].split()[:2] == [rc, "sim"]
        # The handler is a DNS label and immutable.
        proc = rctl.run("patch", "runtimeclass", rc, "--type=merge", "-p",
                        '{"handler":"process"}', check=False)
        assert "handler: Invalid value: \"process\": field is immutable" in proc.stderr
        proc = rctl.run("create", "-f", "-", check=False, input="""
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: bad-handler}
handler: Not_A_Label
""")
        assert 'The RuntimeClass "bad-handler" is invalid: handler: Invalid value: ' \
            '"Not_A_Label": a lowercase RFC 1123 label' in proc.stderr

        rctl("apply", "-n", rns, "-f", "-", input=pod("p", rc))
        spec = get(rctl, rns, "p")["spec"]
        assert spec["overhead"] == {"cpu": "250m", "memory": "64Mi"}
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": node}
        assert {"key": "dedicated", "operator": "Equal", "value": "sim",
                "effect": "NoSchedule"} in spec["tolerations"]
        wait_for(lambda: get(rctl, rns, "p").get("status", {}).get("phase") == "Running", 30,
                 "the pod running on the sim node")
        assert get(rctl, rns, "p")["spec"]["nodeName"] == node

        proc = rctl.run("apply", "-n", rns, "-f", "-", check=False, input=pod(
            "conflict", rc, "  nodeSelector: {kubernetes.io/hostname: elsewhere}"))
        assert (f'pods "conflict" is forbidden: conflict: runtimeClass.scheduling.nodeSelector'
                f'[kubernetes.io/hostname] = {node}; pod.spec.nodeSelector'
                f'[kubernetes.io/hostname] = elsewhere') in proc.stderr
        proc = rctl.run("apply", "-n", rns, "-f", "-", check=False, input=pod(
            "heavy", rc, "  overhead: {cpu: '1'}"))
        assert ('pods "heavy" is forbidden: pod rejected: Pod\'s Overhead doesn\'t match '
                "RuntimeClass's defined Overhead") in proc.stderr
        # The same overhead, written otherwise, is the class's.
        rctl("apply", "-n", rns, "-f", "-", input=pod(
            "same", rc, "  overhead: {cpu: 0.25, memory: 67108864}"))
    finally:
        rctl("delete", "runtimeclass", rc, "--wait=false", check=False)


def test_overhead_without_a_class_is_refused(rctl: Kubectl, rns: str) -> None:
    proc = rctl.run("apply", "-n", rns, "-f", "-", check=False, input="""
apiVersion: v1
kind: Pod
metadata: {name: o}
spec:
  overhead: {cpu: 100m}
  containers: [{name: c, image: busybox}]
""")
    assert ('pods "o" is forbidden: pod rejected: Pod Overhead set without corresponding '
            'RuntimeClass defined Overhead') in proc.stderr


def test_node_reports_handlers_and_refuses_what_it_lacks(rctl: Kubectl, rns: str,
                                                         node: str) -> None:
    status = json.loads(rctl("get", "node", node, "-o", "json"))["status"]
    assert [h["name"] for h in status["runtimeHandlers"]] == ["", "sim"]
    assert status["runtimeHandlers"][1]["features"] == {"recursiveReadOnlyMounts": False,
                                                        "userNamespaces": False}
    rc = f"proc-{rns}"
    rctl("create", "-f", "-", input=f"""
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {{name: {rc}}}
handler: process
""")
    try:
        # A missing class is admitted (as kube does); the kubelet cannot make its sandbox.
        rctl("apply", "-n", rns, "-f", "-", input=pod("missing", "no-such-class"))
        rctl("apply", "-n", rns, "-f", "-", input=pod("other", rc))
        wait_for(lambda: any('FailedCreatePodSandBox: Failed to create pod sandbox: '
                             'runtimeclass.node.k8s.io "no-such-class" not found' in e
                             for e in events(rctl, rns, "missing")), 30, "missing class event")
        wait_for(lambda: any('FailedCreatePodSandBox: Failed to create pod sandbox: rpc error: '
                             'code = Unknown desc = failed to get sandbox runtime: no runtime '
                             'for "process" is configured' in e
                             for e in events(rctl, rns, "other")), 30, "unknown handler event")
        for name in ("missing", "other"):
            got = get(rctl, rns, name)
            assert got["status"]["phase"] == "Pending"
            waiting = got["status"]["containerStatuses"][0]["state"]["waiting"]
            assert waiting["reason"] == "ContainerCreating"
        table = rctl("get", "pod", "other", "-n", rns).splitlines()
        assert table[1].split()[2] == "ContainerCreating"
    finally:
        rctl("delete", "runtimeclass", rc, "--wait=false", check=False)
