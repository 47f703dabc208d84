"""Ephemeral containers with the real kubectl (issue 14): `kubectl debug` adds one through the
pods/ephemeralcontainers subresource, which changes nothing else of the pod, refuses changes
to existing ones and is authorized as its own subresource; the kubelet of a `process` node runs
it once inside the pod (seeing the target's processes with --target), reports it in
`ephemeralContainerStatuses`, and `kubectl logs -c` reads it.

One `navio server --no-agent --disable scheduler` and one `process` agent whose pods live in
a node netns with no route out (PLATFORM.md); pods name their node.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from cluster import Kubectl, NavioServer, wait_for
from kubelet_lab import Agent

from navio.pki.certs import load_or_create_ca
from navio.pki.kubeconfig import write_kubeconfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "runtime"))
from runtime_lab import RuntimeLab  # noqa: E402

NODE = f"eph-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def eserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("eph") / "data",
                      extra_args=("--no-agent", "--disable", "scheduler")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ectl(eserver: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(eserver.kubeconfig, tmp_path_factory.mktemp("ephhome"))


@pytest.fixture(scope="module")
def node(eserver: NavioServer, ectl: Kubectl,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert os.geteuid() == 0, "the process runtime's pods need root (CI runs as root)"
    lab = RuntimeLab(tmp_path_factory.mktemp("ephlab"))
    try:
        lab.assert_no_route_out()
        base = eserver.data_dir.parent
        (base / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        agent = Agent(NODE, eserver, base / NODE, (
            "--runtime", "process", "--node-netns", str(lab.node), "--pod-cidr",
            "10.246.0.0/24", "--cgroup-parent", lab.cgroup_parent, "--resolv-conf",
            str(base / "resolv.conf"), "--sync-frequency", "2s"))
        lab.state_dirs.add(agent.state_dir)
        agent.start()
        try:
            def ready() -> bool:
                proc = ectl.run("get", "node", NODE, "-o", "json", check=False)
                conds = json.loads(proc.stdout).get("status", {}).get("conditions", ()) \
                    if proc.returncode == 0 else ()
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
            wait_for(ready, 30, f"node {NODE} Ready")
            yield NODE
        finally:
            agent.stop()
            agent.unmount_all()
    finally:
        asyncio.run(lab.cleanup())


@pytest.fixture
def ens(ectl: Kubectl) -> Iterator[str]:
    name = f"eph-{uuid.uuid4().hex[:8]}"
    ectl("create", "namespace", name)
    ectl("label", "namespace", name, "pod-security.kubernetes.io/warn=privileged")
    yield name
    ectl("delete", "namespace", name, "--wait=false", check=False)


def get(ectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    return json.loads(ectl("get", "pod", name, "-n", ns, "-o", "json"))


def ephemeral_status(ectl: Kubectl, ns: str, pod: str, name: str) -> dict[str, Any]:
    statuses = get(ectl, ns, pod).get("status", {}).get("ephemeralContainerStatuses") or ()
    return next((s for s in statuses if s["name"] == name), {})


def terminated(ectl: Kubectl, ns: str, pod: str, name: str) -> dict[str, Any] | None:
    return (ephemeral_status(ectl, ns, pod, name).get("state") or {}).get("terminated")


def test_kubectl_debug_runs_an_ephemeral_container(ectl: Kubectl, ens: str, node: str) -> None:
    ectl("apply", "-n", ens, "-f", "-", input=f"""
apiVersion: v1
kind: Pod
metadata: {{name: app, labels: {{app: x}}}}
spec:
  nodeName: {node}
  containers:
  - {{name: app, image: busybox, command: [sleep, "300"]}}
""")
    wait_for(lambda: get(ectl, ens, "app")["status"].get("phase") == "Running", 40,
             "the pod running")
    before = get(ectl, ens, "app")
    out = ectl("debug", "app", "-n", ens, "--image=busybox", "-c", "dbg", "--",
               "sh", "-c", "echo hi")
    assert "error" not in out.lower()
    wait_for(lambda: terminated(ectl, ens, "app", "dbg"), 30, "the debug container to end")
    status = ephemeral_status(ectl, ens, "app", "dbg")
    assert status["state"]["terminated"]["exitCode"] == 0
    assert status["ready"] is False and status["restartCount"] == 0
    assert status["containerID"].startswith("process://")
    assert ectl("logs", "app", "-n", ens, "-c", "dbg") == "hi\n"
    after = get(ectl, ens, "app")
    # The subresource changed nothing but spec.ephemeralContainers; the app kept running.
    assert after["metadata"]["labels"] == before["metadata"]["labels"]
    assert after["spec"]["containers"] == before["spec"]["containers"]
    assert after["status"]["containerStatuses"][0]["restartCount"] == 0
    assert after["status"]["phase"] == "Running"

    # --target: the debug container sees the target container's processes (and only the
    # pod's: /proc is the pod's PID namespace).
    ectl("debug", "app", "-n", ens, "--image=busybox", "-c", "peek", "--target=app", "--",
         "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
    wait_for(lambda: terminated(ectl, ens, "app", "peek"), 30, "the peek container to end")
    seen = ectl("logs", "app", "-n", ens, "-c", "peek")
    assert "sleep 300" in seen and "pytest" not in seen, seen
    # `kubectl debug -i` attaches to the new container's stdin and output.
    out = ectl("debug", "app", "-n", ens, "-i", "--image=busybox", "-c", "talk", "--",
               "sh", "-c", "read x; echo got $x", input="hello\n")
    assert "got hello" in out
    # Ephemeral containers are not restarted.
    assert ephemeral_status(ectl, ens, "app", "dbg")["restartCount"] == 0


def test_existing_ephemeral_containers_are_immutable(ectl: Kubectl, ens: str) -> None:
    ectl("apply", "-n", ens, "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: idle}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "300"]}]
""")
    ectl("debug", "idle", "-n", ens, "--image=busybox", "-c", "dbg", "--", "true")
    proc = ectl.run("patch", "pod", "idle", "-n", ens, "--subresource=ephemeralcontainers",
                    "--type=json", "-p", '[{"op":"replace","path":"/spec/ephemeralContainers/0/'
                    'image","value":"other"}]', check=False)
    assert 'The Pod "idle" is invalid: spec.ephemeralContainers[dbg]: Forbidden: existing ' \
        'ephemeral containers "dbg" may not be changed' in proc.stderr
    proc = ectl.run("patch", "pod", "idle", "-n", ens, "--subresource=ephemeralcontainers",
                    "--type=json", "-p", '[{"op":"remove","path":"/spec/ephemeralContainers/0"}]',
                    check=False)
    assert 'existing ephemeral containers "dbg" may not be removed' in proc.stderr
    proc = ectl.run("patch", "pod", "idle", "-n", ens, "--subresource=ephemeralcontainers",
                    "--type=json", "-p", '[{"op":"add","path":"/spec/ephemeralContainers/-",'
                    '"value":{"name":"p","image":"x","ports":[{"containerPort":80}]}}]',
                    check=False)
    assert "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral " \
        "Container" in proc.stderr
    proc = ectl.run("debug", "idle", "-n", ens, "--image=busybox", "-c", "c", "--", "true",
                    check=False)
    assert 'spec.ephemeralContainers[1].name: Duplicate value: "c"' in proc.stderr
    # A main-resource update may not add one.
    proc = ectl.run("patch", "pod", "idle", "-n", ens, "--type=json", "-p",
                    '[{"op":"add","path":"/spec/ephemeralContainers/-","value":'
                    '{"name":"x","image":"x"}}]', check=False)
    assert "pod updates may not change fields other than" in proc.stderr


def test_ephemeral_containers_is_its_own_subresource_for_rbac(
        ectl: Kubectl, ens: str, eserver: NavioServer,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    ca = load_or_create_ca(eserver.data_dir / "pki")
    certs = tmp_path_factory.mktemp("ephuser")
    pair = ca.issue(certs, "dana", cn="dana", orgs=())
    write_kubeconfig(certs / "dana.kubeconfig", server=eserver.url, ca_cert=ca.pair.cert,
                     client=pair, user="dana")
    dana = Kubectl(certs / "dana.kubeconfig", tmp_path_factory.mktemp("home"))
    # `admin` of the namespace may update pods, but debugging is not in kube's admin role.
    ectl("create", "rolebinding", "a", "--clusterrole=admin", "--user=dana", "-n", ens)
    dana("run", "q", "-n", ens, "--image=busybox", "--", "sleep", "300")
    proc = dana.run("debug", "q", "-n", ens, "--image=busybox", "-c", "dbg", "--", "true",
                    check=False)
    assert 'pods "q" is forbidden: User "dana" cannot patch resource "pods/ephemeralcontainers"' \
        f' in API group "" in the namespace "{ens}"' in proc.stderr
    ectl("create", "role", "debugger", "--verb=patch,update",
         "--resource=pods/ephemeralcontainers", "-n", ens)
    ectl("create", "rolebinding", "d", "--role=debugger", "--user=dana", "-n", ens)
    dana("debug", "q", "-n", ens, "--image=busybox", "-c", "dbg", "--", "true")
    assert [c["name"] for c in get(ectl, ens, "q")["spec"]["ephemeralContainers"]] == ["dbg"]
