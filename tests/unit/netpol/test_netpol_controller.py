"""The NetworkPolicy controller's glue: caches in, one nftables table out (root; a scratch
network namespace this test creates and removes)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from navio.netpol.controller import NetpolConfig, NetworkPolicyController, _enforcement_problem


class FakeInformer:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.handlers: list[Callable[..., Any]] = []

    def list(self) -> list[dict[str, Any]]:
        return list(self.items)

    def add_handler(self, on_add: Callable[..., Any], on_update: Callable[..., Any],
                    on_delete: Callable[..., Any]) -> None:
        self.handlers.append(on_add)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"npc{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=30)


def table(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "inet",
                           "navio-netpol"], capture_output=True, text=True, timeout=30).stdout


POD = {"metadata": {"namespace": "a", "name": "srv", "labels": {"app": "srv"}},
       "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
       "status": {"podIP": "10.244.0.2", "phase": "Running"}}
ELSEWHERE = {"metadata": {"namespace": "a", "name": "far", "labels": {"app": "srv"}},
             "spec": {"nodeName": "n2", "containers": [{"name": "c"}]},
             "status": {"podIP": "10.244.1.2", "phase": "Running"}}
DENY = {"metadata": {"namespace": "a", "name": "deny"}, "spec": {"podSelector": {}}}


async def test_sync_programs_only_local_pods_and_skips_unchanged(netns: str) -> None:
    pods, policies = FakeInformer([POD, ELSEWHERE]), FakeInformer([DENY])
    c = NetworkPolicyController(NetpolConfig(Path(), "n1", netns=netns), pods,  # type: ignore[arg-type]
                                FakeInformer([]), policies)  # type: ignore[arg-type]
    c._mark()
    await c.sync_once()
    live = table(netns)
    assert "chain in-10-244-0-2" in live and "10.244.1.2" not in live
    assert c.last_latency is not None and c.last_latency < 5
    applied = c.applied
    await c.sync_once()                 # nothing changed: nothing sent
    assert c.applied is applied
    policies.items = []                 # policy gone: the pod is not isolated any more
    c._mark()
    await c.sync_once()
    assert "chain in-" not in table(netns) and "navio-netpol" in table(netns)


def test_missing_nft_is_reported() -> None:
    problem = _enforcement_problem(NetpolConfig(Path(), "n1", nft="/nonexistent/nft"))
    assert problem is not None and problem[0] == "NftablesMissing"
