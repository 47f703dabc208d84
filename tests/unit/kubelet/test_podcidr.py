"""An agent without --pod-cidr (issue 16): it registers its Node (tainted not-ready) and
waits, bounded, for the range node IPAM writes; the controller manager's IPAM flags."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import pytest

from navio.api import errors
from navio.cli import controllermanager
from navio.kubelet.podcidr import PodCIDRTimeout, await_pod_cidr


class FakeClient:
    def __init__(self, assign_after: int | None) -> None:
        self.node: dict[str, Any] | None = None
        self.gets = 0
        self.assign_after = assign_after

    async def get(self, resource: Any, name: str, ns: Any = None) -> dict[str, Any]:
        self.gets += 1
        if self.node is None:
            raise errors.NotFound(name)
        if self.assign_after is not None and self.gets > self.assign_after:
            self.node["spec"].update(podCIDR="10.42.3.0/24", podCIDRs=["10.42.3.0/24"])
        return copy.deepcopy(self.node)

    async def create(self, resource: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.node = copy.deepcopy(body)
        return body


async def test_the_node_is_registered_tainted_and_its_assigned_range_returned() -> None:
    client = FakeClient(assign_after=3)
    assert await await_pod_cidr(client, "n1", timeout=10) == "10.42.3.0/24"  # type: ignore
    assert client.node is not None
    assert client.node["metadata"] == {"name": "n1"}
    assert client.node["spec"]["taints"] == [{"key": "node.kubernetes.io/not-ready",
                                              "effect": "NoSchedule"}]


async def test_no_range_in_time_is_a_clear_error() -> None:
    with pytest.raises(PodCIDRTimeout, match="--allocate-node-cidrs"):
        await await_pod_cidr(FakeClient(assign_after=None), "n1", timeout=0.5)  # type: ignore


@pytest.mark.parametrize("argv,enabled,cidr", [
    ([], True, "10.42.0.0/16"),
    (["--allocate-node-cidrs", "false"], False, "10.42.0.0/16"),
    (["--cluster-cidr", "10.60.0.0/16", "--node-cidr-mask-size", "26"], True, "10.60.0.0/16"),
])
def test_controller_manager_ipam_flags(argv: list[str], enabled: bool, cidr: str) -> None:
    parser = argparse.ArgumentParser()
    controllermanager.add_parser(parser.add_subparsers())
    args = parser.parse_args(["controller-manager", "--kubeconfig", "k", *argv])
    config = controllermanager.config_from_args(args)
    assert config.kubeconfig == Path("k")
    assert config.enabled("nodeipam") is enabled
    assert config.options["cluster-cidr"] == cidr
    assert config.options["node-cidr-mask-size"] == (26 if "26" in argv else 24)


def test_node_lifecycle_timings_are_controller_manager_flags() -> None:
    parser = argparse.ArgumentParser()
    controllermanager.add_parser(parser.add_subparsers())
    args = parser.parse_args(["controller-manager", "--kubeconfig", "k",
                              "--node-monitor-period", "1s", "--node-monitor-grace-period",
                              "5s", "--node-startup-grace-period", "30s",
                              "--node-eviction-rate", "0.5"])
    opts = controllermanager.config_from_args(args).options
    assert (opts["node-monitor-period"], opts["node-monitor-grace-period"],
            opts["node-startup-grace-period"], opts["node-eviction-rate"]) == (1, 5, 30, 0.5)


def test_the_local_agent_takes_its_range_from_ipam_unless_given_one(tmp_path: Path) -> None:
    from navio.cli.agent import local_agent_component
    from navio.pki.certs import load_or_create_ca
    ca = load_or_create_ca(tmp_path / "pki")
    kw: dict[str, Any] = dict(data_dir=tmp_path, ca=ca, kubeconfig=tmp_path / "k",
                              node_name="local", cluster_cidr="10.60.0.0/16")
    argv = list(local_agent_component(**kw).argv)
    assert "--pod-cidr" not in argv
    assert argv[argv.index("--cluster-cidr") + 1] == "10.60.0.0/16"
    argv = list(local_agent_component(**kw, pod_cidr="10.60.0.0/24").argv)
    assert argv[argv.index("--pod-cidr") + 1] == "10.60.0.0/24"
