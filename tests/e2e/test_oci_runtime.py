"""Real images on the `oci` runtime (runc), pulled from a local registry (issue 11).

A `navio server` (control plane) and one `navio agent --runtime oci` whose pods live on a
bridge inside a node netns with no route out (PLATFORM.md); the agent itself pulls from
Debian's docker-registry on 127.0.0.1. Images are built by the test from busybox-static
(oci_lab.py): no Docker, no network beyond loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from cluster import Kubectl, NavioServer, wait_for
from kubelet_lab import Agent
from oci_lab import Registry, build_image, docker_save

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "runtime"))
from runtime_lab import RuntimeLab  # noqa: E402

TAG = uuid.uuid4().hex[:6]
NODE = f"oci-{TAG}"
USER = ("navio", "s3cret-pass")
CMD = ["sh", "-c", "echo $IMAGE_VAR; cat /etc/marker; exec sleep 3600"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeLab]:
    assert os.geteuid() == 0, "the oci runtime needs root"
    lab = RuntimeLab(tmp_path_factory.mktemp("ocilab"))
    try:
        lab.assert_no_route_out()
        yield lab
    finally:
        asyncio.run(lab.cleanup())


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        reg.push("test/busybox", "v1", build_image(marker="public", cmd=CMD))
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("private"), user=USER).start()
    try:
        reg.push("team/app", "v1", build_image(marker="private", cmd=CMD))
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("oci") / "data", extra_args=("--no-agent",)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kctl(server: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(server.kubeconfig, tmp_path_factory.mktemp("ocihome"))


@pytest.fixture(scope="module")
def agent(server: NavioServer, kctl: Kubectl, lab: RuntimeLab) -> Iterator[Agent]:
    base = server.data_dir.parent
    (base / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    agent = Agent(NODE, server, base / NODE, (
        "--runtime", "oci", "--node-netns", str(lab.node), "--pod-cidr", "10.251.0.0/24",
        "--cgroup-parent", lab.cgroup_parent, "--resolv-conf", str(base / "resolv.conf"),
        "--sync-frequency", "2s"))
    lab.state_dirs.add(agent.state_dir)
    agent.start()
    try:
        wait_for(lambda: _node_ready(kctl), 60, f"node {NODE} to be Ready")
        yield agent
    finally:
        kctl("delete", "pods", "--all", "--all-namespaces", "--grace-period=0", "--force",
             "--wait=false", check=False)
        agent.stop()
        _unmount_under(agent.root)


def _unmount_under(root: Path) -> None:
    with open("/proc/mounts") as f:
        targets = [line.split()[1] for line in f]
    for target in sorted((t for t in targets if t.startswith(str(root) + "/")), key=len,
                         reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, timeout=20)


def _node_ready(kctl: Kubectl) -> bool:
    proc = kctl.run("get", "node", NODE, "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    conds = json.loads(proc.stdout).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


@pytest.fixture
def ns(kctl: Kubectl, agent: Agent, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"o-{request.node.name.lower()[5:30].strip('_').replace('_', '-')}-{TAG}"
    kctl("create", "namespace", name)
    yield name
    kctl("delete", "namespace", name, "--wait=false", check=False)


def _pods(kctl: Kubectl, ns_: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", "pods", "-n", ns_, "-o", "json"] + (["-l", selector] if selector else [])
    return json.loads(kctl(*args))["items"]


def _pod(kctl: Kubectl, ns_: str, name: str) -> dict[str, Any]:
    proc = kctl.run("get", "pod", name, "-n", ns_, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def _state(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return statuses[0].get("state") or {}


def _pod_manifest(name: str, image: str, *, extra_spec: str = "", container: str = "") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n"
            f"  nodeName: {NODE}\n  restartPolicy: Never\n{extra_spec}"
            f"  containers:\n  - name: main\n    image: {image}\n{container}")


def test_a_deployment_of_a_pushed_image_runs_isolated_replicas(kctl: Kubectl, ns: str,
                                                              registry: Registry) -> None:
    image = f"{registry.host}/test/busybox:v1"
    kctl("create", "deployment", "web", "-n", ns, f"--image={image}", "--replicas=2")
    wait_for(lambda: len([p for p in _pods(kctl, ns, "app=web")
                          if "running" in _state(p)]) == 2, 120, "two running replicas")
    pods = _pods(kctl, ns, "app=web")
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 2 and all(ip.startswith("10.251.0.") for ip in ips), ips
    for p in pods:
        status = p["status"]["containerStatuses"][0]
        assert status["image"] == image
        assert status["imageID"].startswith(f"{registry.host}/test/busybox@sha256:")
        assert status["containerID"].startswith("oci://")
    first, second = (p["metadata"]["name"] for p in pods)
    # The image's Cmd ran with the image's Env; logs come through the CRI log.
    wait_for(lambda: "from-image" in kctl("logs", "-n", ns, first), 30, "the image's output")
    assert "public" in kctl("logs", "-n", ns, first)
    # Only the pod's own processes are visible, PID 1 is the image's command.
    ps = kctl("exec", "-n", ns, first, "--", "ps", "-o", "pid,args")
    lines = [line for line in ps.splitlines()[1:] if line.strip()]
    assert lines[0].split()[:2] == ["1", "sleep"], ps
    assert len(lines) == 2, ps   # sleep and ps itself
    # Each replica has its own root filesystem and its own address.
    kctl("exec", "-n", ns, first, "--", "touch", "/tmp/only-here")
    assert kctl.run("exec", "-n", ns, second, "--", "ls", "/tmp/only-here",
                    check=False).returncode != 0
    assert kctl("exec", "-n", ns, first, "--", "ls", "/tmp/only-here").strip()
    for p in pods:
        addr = kctl("exec", "-n", ns, p["metadata"]["name"], "--", "ip", "-4", "addr")
        assert p["status"]["podIP"] in addr
    assert kctl("exec", "-n", ns, first, "--", "hostname").strip() == first
    # seccomp RuntimeDefault by default (issues 3, 11): the container and its execs.
    status1 = kctl("exec", "-n", ns, first, "--", "cat", "/proc/1/status")
    assert "Seccomp:\t2" in status1, status1
    assert "Seccomp:\t2" in kctl("exec", "-n", ns, first, "--", "cat", "/proc/self/status")
    denied = kctl.run("exec", "-n", ns, first, "--", "busybox", "unshare", "-U", "true",
                      check=False)
    assert denied.returncode != 0 and "Operation not permitted" in denied.stderr, denied
    hosts = kctl("exec", "-n", ns, first, "--", "cat", "/etc/hosts")   # the kubelet's file
    assert "# Kubernetes-managed hosts file." in hosts and first in hosts
    wait_for(lambda: any(f"{registry.host}/test/busybox:v1" in i["names"] for i in (
        kctl.json("get", "node", NODE)["status"].get("images") or [])), 30,
             "the image in the Node's status")


def test_volumes_are_bind_mounted_and_shared_by_the_pods_containers(
        kctl: Kubectl, ns: str, registry: Registry) -> None:
    image = f"{registry.host}/test/busybox:v1"
    kctl("create", "configmap", "settings", "-n", ns, "--from-literal=greeting=hello")
    kctl("apply", "-n", ns, "-f", "-", input=f"""apiVersion: v1
kind: Pod
metadata:
  name: vols
spec:
  nodeName: {NODE}
  volumes:
  - name: shared
    emptyDir: {{}}
  - name: settings
    configMap: {{name: settings}}
  containers:
  - name: writer
    image: {image}
    command: [sh, -c, 'cat /config/greeting > /data/out; exec sleep 3600']
    volumeMounts:
    - {{name: shared, mountPath: /data}}
    - {{name: settings, mountPath: /config, readOnly: true}}
  - name: reader
    image: {image}
    command: [sleep, '3600']
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
""")
    wait_for(lambda: all("running" in (c.get("state") or {}) for c in (
        _pod(kctl, ns, "vols").get("status") or {}).get("containerStatuses") or [{}]), 90,
             "both containers to run")
    wait_for(lambda: kctl.run("exec", "-n", ns, "vols", "-c", "reader", "--", "cat",
                              "/shared/out", check=False).stdout.strip() == "hello", 30,
             "the reader to see the writer's file")
    denied = kctl.run("exec", "-n", ns, "vols", "-c", "writer", "--", "touch",
                      "/config/x", check=False)
    assert denied.returncode != 0   # a read-only volume


def test_a_wrong_tag_gives_errimagepull_then_imagepullbackoff(kctl: Kubectl, ns: str,
                                                             registry: Registry) -> None:
    kctl("apply", "-n", ns, "-f", "-",
         input=_pod_manifest("bad", f"{registry.host}/test/busybox:no-such-tag"))
    seen: set[str] = set()

    def reasons() -> bool:
        waiting = _state(_pod(kctl, ns, "bad")).get("waiting") or {}
        if waiting.get("reason"):
            seen.add(waiting["reason"])
        return {"ErrImagePull", "ImagePullBackOff"} <= seen

    wait_for(reasons, 90, "ErrImagePull and then ImagePullBackOff")
    events = kctl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=bad")
    assert "Failed to pull image" in events and "not found" in events
    assert "Back-off pulling image" in events


def test_a_private_registry_needs_the_pull_secret(kctl: Kubectl, ns: str,
                                                 private_registry: Registry) -> None:
    image = f"{private_registry.host}/team/app:v1"
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest("nosecret", image))
    wait_for(lambda: (_state(_pod(kctl, ns, "nosecret")).get("waiting") or {}).get("reason")
             in ("ErrImagePull", "ImagePullBackOff"), 90, "the pull without a secret to fail")
    kctl("create", "secret", "docker-registry", "regcred", "-n", ns,
         f"--docker-server={private_registry.host}", f"--docker-username={USER[0]}",
         f"--docker-password={USER[1]}")
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest(
        "withsecret", image, extra_spec="  imagePullSecrets:\n  - name: regcred\n"))
    wait_for(lambda: "running" in _state(_pod(kctl, ns, "withsecret")), 90,
             "the pod with the pull secret to run")
    assert "private" in kctl("exec", "-n", ns, "withsecret", "--", "cat", "/etc/marker")
    assert "s3cret" not in kctl("get", "events", "-n", ns)


def test_an_imported_tarball_runs_with_the_registry_down(kctl: Kubectl, ns: str, agent: Agent,
                                                        tmp_path: Path) -> None:
    offline = Registry(tmp_path / "never-started")   # a port nothing listens on
    image = f"{offline.host}/air/gapped:v1"
    archive = tmp_path / "image.tar"
    docker_save(build_image(marker="airgapped", cmd=CMD), archive, [image])
    out = subprocess.run([sys.executable, "-m", "navio.cli.main", "image", "--root-dir",
                          str(agent.root), "import", str(archive)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    listing = subprocess.run([sys.executable, "-m", "navio.cli.main", "image", "--root-dir",
                              str(agent.root), "ls"], capture_output=True, text=True,
                             timeout=60).stdout
    assert f"{offline.host}/air/gapped" in listing
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest(
        "offline", image, container="    imagePullPolicy: IfNotPresent\n"))
    wait_for(lambda: "running" in _state(_pod(kctl, ns, "offline")), 90,
             "the imported image to run")
    assert "airgapped" in kctl("exec", "-n", ns, "offline", "--", "cat", "/etc/marker")
    busy = subprocess.run([sys.executable, "-m", "navio.cli.main", "image", "--root-dir",
                           str(agent.root), "rm", image], capture_output=True, text=True,
                          timeout=60)
    assert busy.returncode == 1 and "in use by a container" in busy.stderr


def test_attach_reaches_the_containers_stdin(kctl: Kubectl, ns: str, registry: Registry) -> None:
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest(
        "talk", f"{registry.host}/test/busybox:v1", container=(
            "    stdin: true\n    stdinOnce: true\n"
            "    command: [sh, -c, 'read line; echo got:$line']\n")))
    wait_for(lambda: "running" in _state(_pod(kctl, ns, "talk")), 90, "the pod to run")
    kctl.run("attach", "-i", "talk", "-n", ns, input="hello\n", check=False)
    wait_for(lambda: "got:hello" in kctl("logs", "talk", "-n", ns), 30, "the echoed line")


def test_a_memory_hog_is_oomkilled(kctl: Kubectl, ns: str, registry: Registry) -> None:
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest(
        "hog", f"{registry.host}/test/busybox:v1", container=(
            "    command: [sh, -c, 'dd if=/dev/zero of=/dev/null bs=200M count=1']\n"
            "    resources:\n      limits:\n        memory: 32Mi\n")))
    wait_for(lambda: "terminated" in _state(_pod(kctl, ns, "hog")), 90, "the hog to end")
    term = _state(_pod(kctl, ns, "hog"))["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137, term


def test_a_missing_image_with_pull_policy_never(kctl: Kubectl, ns: str,
                                                registry: Registry) -> None:
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest(
        "never", f"{registry.host}/test/absent:v9", container="    imagePullPolicy: Never\n"))
    wait_for(lambda: (_state(_pod(kctl, ns, "never")).get("waiting") or {}).get("reason")
             == "ErrImageNeverPull", 60, "ErrImageNeverPull")


def test_port_forward_works_and_containers_survive_an_agent_restart(
        kctl: Kubectl, ns: str, registry: Registry, agent: Agent, server: NavioServer) -> None:
    import urllib.request
    from kubelet_lab import free_port
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest(
        "web", f"{registry.host}/test/busybox:v1",
        container="    command: [httpd, -f, -p, '8080', -h, /www]\n"))
    wait_for(lambda: "running" in _state(_pod(kctl, ns, "web")), 90, "the web pod to run")
    local = free_port()
    with kctl.popen("port-forward", "pod/web", f"{local}:8080", "-n", ns) as pf:
        try:
            assert pf.stdout is not None
            assert "Forwarding from 127.0.0.1" in pf.stdout.readline()
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=20) as resp:
                assert resp.read() == b"hello from public\n"
        finally:
            pf.terminate()
    before = _pod(kctl, ns, "web")["status"]["containerStatuses"][0]["containerID"]
    agent.kill9()
    agent.start()
    # (the restarted kubelet listens on a new port: exec works once the Node says which)
    wait_for(lambda: kctl.run("exec", "-n", ns, "web", "--", "whoami",
                              check=False).stdout.strip() == "root", 90,
             "exec through the restarted agent")
    status = _pod(kctl, ns, "web")["status"]["containerStatuses"][0]
    assert status["containerID"] == before and status["restartCount"] == 0
    assert "running" in status["state"]


def test_run_as_non_root_with_a_root_image_is_a_config_error(kctl: Kubectl, ns: str,
                                                             registry: Registry) -> None:
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest(
        "nonroot", f"{registry.host}/test/busybox:v1",
        extra_spec="  securityContext:\n    runAsNonRoot: true\n"))
    wait_for(lambda: (_state(_pod(kctl, ns, "nonroot")).get("waiting") or {}).get("reason")
             == "CreateContainerConfigError", 90, "CreateContainerConfigError")
    message = _state(_pod(kctl, ns, "nonroot"))["waiting"]["message"]
    assert "container has runAsNonRoot and image will run as root" in message
    kctl("apply", "-n", ns, "-f", "-", input=_pod_manifest(
        "asuser", f"{registry.host}/test/busybox:v1",
        extra_spec="  securityContext:\n    runAsNonRoot: true\n    runAsUser: 1000\n"))
    wait_for(lambda: "running" in _state(_pod(kctl, ns, "asuser")), 90, "the pod as uid 1000")
    assert kctl("exec", "-n", ns, "asuser", "--", "id", "-u").strip() == "1000"
