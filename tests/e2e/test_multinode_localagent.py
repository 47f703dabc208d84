"""`navio server`'s own node takes its pod CIDR from node IPAM like any node (issue 16).

Why: the local agent used a fixed 10.42.0.0/24; a node that joined while the server ran
without its agent (`--no-agent`) gets that very range from IPAM, and the two nodes' pods
would then share addresses. Shown: a Node registered first gets 10.42.0.0/24; the server,
restarted with its agent on the same data, gives its local node the next free range, and
the local node's bridge and pods use that one.

The server runs in the host namespace on 127.0.0.1; its node's pods live in a node netns
the test creates (no route out, PLATFORM.md).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Iterator

import pytest
from cluster import Kubectl, NavioServer, wait_for
from multinode_lab import ready, server_pod, sh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "runtime"))
from runtime_lab import RuntimeLab  # noqa: E402


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RuntimeLab]:
    lab = RuntimeLab(tmp_path)
    lab.state_dirs.add(tmp_path / "data" / "agent" / "runtime")
    try:
        yield lab
    finally:
        asyncio.run(lab.cleanup())


def _node(kubectl: Kubectl, name: str) -> dict:
    proc = kubectl.run("get", "node", name, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def test_the_local_node_does_not_take_a_range_ipam_gave_a_joined_node(
        lab: RuntimeLab, tmp_path: Path) -> None:
    assert lab.node
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    common = ("--node-netns", lab.node, "--resolv-conf", str(resolv), "--kubelet-port", "0")
    server = NavioServer(tmp_path / "data", extra_args=("--no-agent", *common)).start()
    kubectl = Kubectl(server.kubeconfig, tmp_path / "home")
    try:
        kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "joined-first"}}))
        got = wait_for(lambda: _node(kubectl, "joined-first").get("spec", {}).get("podCIDR"),
                       30, "the joined node's pod CIDR")
        assert got == "10.42.0.0/24"
    finally:
        server.stop()

    server = NavioServer(tmp_path / "data", extra_args=common).start()
    local = socket.gethostname()
    try:
        kubectl = Kubectl(server.kubeconfig, tmp_path / "home")
        wait_for(lambda: ready(kubectl, local), 90, "the local node Ready", 0.5)
        assert _node(kubectl, "joined-first")["spec"]["podCIDR"] == "10.42.0.0/24"
        assert _node(kubectl, local)["spec"]["podCIDR"] == "10.42.1.0/24"
        addrs = sh("ip", "-n", lab.node, "-4", "addr", "show", "navio0").stdout
        assert "inet 10.42.1.1/24" in addrs, addrs
        kubectl("apply", "-f", "-", input=server_pod("p", local))
        ip = wait_for(lambda: kubectl("get", "pod", "p", "-o", "jsonpath={.status.podIP}"),
                      90, "the pod's IP", 0.5)
        assert ip.startswith("10.42.1."), ip
        kubectl("delete", "pod", "p", "--wait=true", "--timeout=30s", check=False,
                timeout=40)
    finally:
        server.stop()
