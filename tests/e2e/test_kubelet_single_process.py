"""`navio server --single-process` runs its local agent in the server's own process (issue 7):
possible since the process runtime never forks the agent (its helpers come from a fork
server), so no fork can inherit the server's loop and signals.

The whole server runs inside a network namespace the test made (no route out, PLATFORM.md),
entered with nsenter, and kubectl enters it too: the agent's bridge, the pod IPs and the
kubelet port never exist in the host's namespace.
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
from cluster import KUBECTL, Kubectl, wait_for
from kubelet_lab import NetnsServer, children

from navio.runtime import namespaces as ns

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "runtime"))
from runtime_lab import RuntimeLab  # noqa: E402


class NetnsKubectl(Kubectl):
    netns: str = ""

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60.0, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env(), **(env or {})}
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", KUBECTL, *args],
                              input=input, capture_output=True, text=True, timeout=timeout,
                              env=full_env)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc


@pytest.fixture
def single(tmp_path: Path) -> Iterator[tuple[NetnsServer, NetnsKubectl]]:
    if os.geteuid() != 0:
        pytest.skip("the process runtime's pods need root")
    lab = RuntimeLab(tmp_path / "lab")
    srv = NetnsServer(tmp_path / "data", extra_args=("--single-process",))
    srv.netns = lab.node or ""
    lab.state_dirs.add(srv.data_dir / "agent" / "runtime")   # forced cleanup reads it
    kubectl = NetnsKubectl(srv.kubeconfig, tmp_path / "home")
    kubectl.netns = srv.netns
    try:
        lab.assert_no_route_out()
        srv.start()
        yield srv, kubectl
    finally:
        if srv.proc is not None:
            kubectl("delete", "pods", "--all", "--wait=true", "--timeout=30s", check=False,
                    timeout=40)
        srv.stop()
        asyncio.run(lab.cleanup())


def _pod(name: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"terminationGracePeriodSeconds": 2, "containers": [
                           {"name": "main", "image": "none", "command": ["sleep", "infinity"]}]}})


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def test_single_process_runs_the_agent_in_the_server_and_stops_cleanly(single) -> None:
    srv, kubectl = single
    assert srv.proc is not None
    wait_for(lambda: " Ready " in kubectl("get", "nodes", "--no-headers"), 30,
             "the local node to be Ready")
    name = f"solo-{uuid.uuid4().hex[:6]}"
    kubectl("apply", "-f", "-", input=_pod(name))
    wait_for(lambda: _ready(kubectl.json("get", "pod", name)), 60,
             f"pod {name} to be Ready")
    pod = kubectl.json("get", "pod", name)
    assert pod["status"]["podIP"].startswith("10.42.")
    assert kubectl("exec", name, "--", "cat", "/etc/hostname").strip() == name
    # No agent process: the server's only child is the runtime's fork server.
    kids = children(srv.proc.pid)
    assert [c for c in kids if "navio.runtime.forkserver" not in c[1]] == [], kids
    assert len(kids) == 1
    forkserver = kids[0][0]
    start = ns.proc_starttime(forkserver)
    kubectl("delete", "pod", name, "--wait=true", "--timeout=30s", timeout=40)
    assert srv.stop() == 0           # SIGTERM: a clean exit, nothing caught it elsewhere
    wait_for(lambda: not ns.process_alive(forkserver, start), 10,
             "the fork server to go with the server")
