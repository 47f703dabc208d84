"""Seccomp on by default (issue 3, the 2019 audit's "seccomp off by default"), on real pods.

A `navio server --no-agent` and one `process` agent whose pods live in a node netns with no
route out (PLATFORM.md). Each pod runs a small Python program that reports its seccomp mode
and what its syscalls did; kubectl reads the report from the pod's log.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "runtime"))
from runtime_lab import RuntimeLab  # noqa: E402

TAG = uuid.uuid4().hex[:6]
NODE = f"sc-{TAG}"

# What a container reports: its seccomp mode, denied syscalls' errnos, and that ordinary
# work (files, a subprocess shell, TCP over loopback, threads) still works.
PROBE = r"""
import ctypes, errno, json, os, socket, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(fn, *a):
    ctypes.set_errno(0)
    rc = fn(*a)
    return rc if rc >= 0 else -ctypes.get_errno()
out = {"mode": next(l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:"))}
out["unshare"] = call(libc.unshare, 0x10000000)
out["keyctl"] = call(libc.syscall, ctypes.c_long(250), 0, 0, 0, 0)
out["mount"] = call(libc.mount, b"none", b"/mnt", b"tmpfs", 0, None)
out["unshare_cmd"] = subprocess.run(["unshare", "-U", "true"], capture_output=True).returncode
with open("/tmp/navio-seccomp-probe-%d" % os.getpid(), "w") as f:
    f.write("x")
os.unlink(f.name)
out["shell"] = subprocess.run(["sh", "-c", "echo hi | cat"], capture_output=True,
                              text=True).stdout.strip()
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
t = threading.Thread(target=lambda: srv.accept()[0].sendall(b"pong")); t.start()
c = socket.create_connection(srv.getsockname()); out["tcp"] = c.recv(4).decode(); t.join()
print("REPORT " + json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def kserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("seccomp") / "data",
                      extra_args=("--no-agent", "--disable", "scheduler")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kctl(kserver: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(kserver.kubeconfig, tmp_path_factory.mktemp("schome"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeLab]:
    assert os.geteuid() == 0, "the process runtime's pods need root (CI runs as root)"
    lab = RuntimeLab(tmp_path_factory.mktemp("sclab"))
    try:
        lab.assert_no_route_out()
        yield lab
    finally:
        asyncio.run(lab.cleanup())


@pytest.fixture(scope="module")
def agent(kserver: NavioServer, kctl: Kubectl, lab: RuntimeLab) -> Iterator[Agent]:
    base = kserver.data_dir.parent
    (base / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    agent = Agent(NODE, kserver, base / NODE, (
        "--runtime", "process", "--node-netns", str(lab.node), "--pod-cidr", "10.247.0.0/24",
        "--cgroup-parent", lab.cgroup_parent, "--resolv-conf", str(base / "resolv.conf")))
    lab.state_dirs.add(agent.state_dir)
    profiles = agent.root / "seccomp" / "profiles"
    profiles.mkdir(parents=True)
    # allow everything but chdir, which fails with EOPNOTSUPP: unmistakably this profile
    (profiles / "no-chdir.json").write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}))
    (profiles / "broken.json").write_text('{"defaultAction": ')
    agent.start()
    try:
        wait_for(lambda: node_ready(kctl), 60, f"node {NODE} to be Ready", 0.1)
        yield agent
    finally:
        agent.stop()
        agent.unmount_all()


def node_ready(kctl: Kubectl) -> bool:
    proc = kctl.run("get", "node", NODE, "-o", "json", check=False)
    return proc.returncode == 0 and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in json.loads(proc.stdout).get("status", {}).get("conditions") or ())


@pytest.fixture
def kns(kctl: Kubectl, agent: Agent, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"sc-{request.node.name.lower()[5:30].strip('_').replace('_', '-')}-" \
           f"{uuid.uuid4().hex[:6]}"
    kctl("create", "namespace", name)
    # Unconfined and privileged pods are not allowed by the default baseline level
    kctl("label", "namespace", name, "pod-security.kubernetes.io/enforce=privileged")
    yield name
    kctl("delete", "namespace", name, "--wait=false", check=False)


def run_pod(kctl: Kubectl, ns: str, name: str, command: list[str], *, security: str = "",
            pod_security: str = "", restart: str = "Never") -> None:
    manifest = (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
                f"  nodeName: {NODE}\n  restartPolicy: {restart}\n{pod_security}"
                f"  containers:\n  - name: main\n    image: python\n"
                f"    command: {json.dumps(command)}\n{security}")
    kctl("apply", "-n", ns, "-f", "-", input=manifest)


def pod(kctl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    proc = kctl.run("get", "pod", name, "-n", ns, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def report(kctl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    wait_for(lambda: pod(kctl, ns, name).get("status", {}).get("phase") in ("Succeeded",
                                                                            "Failed"),
             60, f"pod {name} to finish", 0.2)
    logs = kctl("logs", "-n", ns, name)
    line = next((ln for ln in logs.splitlines() if ln.startswith("REPORT ")), None)
    assert line, f"no report in the log of {name}: {logs}"
    assert pod(kctl, ns, name)["status"]["phase"] == "Succeeded", logs
    return json.loads(line[len("REPORT "):])


def wait_running(kctl: Kubectl, ns: str, name: str) -> None:
    wait_for(lambda: pod(kctl, ns, name).get("status", {}).get("phase") == "Running", 60,
             f"pod {name} to run", 0.2)


EPERM = -1


def test_a_default_pod_runs_under_the_runtime_default_filter(kctl, kns):
    run_pod(kctl, kns, "plain", ["python3", "-c", PROBE])
    out = report(kctl, kns, "plain")
    assert out["mode"] == "2"
    assert out["unshare"] == out["keyctl"] == out["mount"] == EPERM
    assert out["unshare_cmd"] != 0
    assert out["shell"] == "hi" and out["tcp"] == "pong"


def test_unconfined_runs_without_a_filter_and_the_container_field_wins(kctl, kns):
    unconfined = "    securityContext:\n      seccompProfile: {type: Unconfined}\n"
    run_pod(kctl, kns, "unconfined", ["python3", "-c", PROBE], security=unconfined)
    out = report(kctl, kns, "unconfined")
    assert out["mode"] == "0"
    assert out["keyctl"] != EPERM   # let through: the kernel answers (EINVAL/ENOKEY)
    # the pod says Unconfined, the container RuntimeDefault: the container's wins
    run_pod(kctl, kns, "override", ["python3", "-c", PROBE],
            pod_security="  securityContext:\n    seccompProfile: {type: Unconfined}\n",
            security="    securityContext:\n      seccompProfile: {type: RuntimeDefault}\n")
    assert report(kctl, kns, "override")["mode"] == "2"
    # a privileged container gets no filter, as with containerd
    run_pod(kctl, kns, "privileged", ["python3", "-c", PROBE],
            security="    securityContext: {privileged: true}\n")
    assert report(kctl, kns, "privileged")["mode"] == "0"


def test_a_localhost_profile_is_applied_from_the_kubelet_seccomp_dir(kctl, kns):
    script = ("import os\ntry:\n    os.chdir('/')\n    r = 'ok'\nexcept OSError as e:\n"
              "    r = e.errno\nprint('REPORT', __import__('json').dumps({'chdir': r, 'mode': "
              "[l.split()[1] for l in open('/proc/self/status') if l.startswith('Seccomp:')]"
              "[0]}), flush=True)\n")
    local = ("  securityContext:\n    seccompProfile: {type: Localhost, "
             "localhostProfile: profiles/no-chdir.json}\n")
    run_pod(kctl, kns, "local", ["python3", "-c", script], pod_security=local)
    assert report(kctl, kns, "local") == {"chdir": 95, "mode": "2"}


@pytest.mark.parametrize("profile,words", [("profiles/missing.json", "no such file"),
                                           ("profiles/broken.json", "decoding")])
def test_a_missing_or_invalid_localhost_profile_fails_the_container(kctl, kns, profile, words):
    local = (f"    securityContext:\n      seccompProfile: {{type: Localhost, "
             f"localhostProfile: {profile}}}\n")
    run_pod(kctl, kns, "bad", ["python3", "-c", "print(1)"], security=local)

    def waiting() -> dict[str, Any] | None:
        statuses = pod(kctl, kns, "bad").get("status", {}).get("containerStatuses") or [{}]
        return (statuses[0].get("state") or {}).get("waiting")
    state = wait_for(lambda: (w := waiting()) and w.get("reason") == "CreateContainerError"
                     and w, 60, "the container to wait with CreateContainerError", 0.2)
    assert "seccomp" in state["message"] and words in state["message"].lower()
    assert profile in state["message"]


def test_kubectl_exec_gets_the_containers_filter(kctl, kns):
    run_pod(kctl, kns, "sleeper", ["sleep", "3600"], restart="Always")
    run_pod(kctl, kns, "free", ["sleep", "3600"], restart="Always",
            security="    securityContext:\n      seccompProfile: {type: Unconfined}\n")
    wait_running(kctl, kns, "sleeper")
    wait_running(kctl, kns, "free")
    status = kctl("exec", "-n", kns, "sleeper", "--", "cat", "/proc/self/status")
    assert "Seccomp:\t2" in status
    denied = kctl.run("exec", "-n", kns, "sleeper", "--", "unshare", "-U", "true", check=False)
    assert denied.returncode != 0 and "Operation not permitted" in denied.stderr
    assert "Seccomp:\t0" in kctl("exec", "-n", kns, "free", "--", "cat", "/proc/self/status")
