"""Fixtures for the proxy tests: throwaway network namespaces, removed even on failure."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from proxy_netlab import CLIENTS, PODS, SERVER_PORT, NetLab, add_netns, delete_netns, unique


@pytest.fixture(scope="session")
def root() -> None:
    """Kernel tests need root and nft (CI runs as root with nftables installed)."""
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root")
    assert shutil.which("nft") and shutil.which("ip"), "nftables and iproute2 are required"


@pytest.fixture
def scratch_netns(root: None) -> Iterator[str]:
    """An empty network namespace: rules loaded there touch nothing else."""
    name = unique("scratch")
    add_netns(name)
    try:
        yield name
    finally:
        delete_netns(name)


@pytest.fixture(scope="session")
def lab(root: None) -> Iterator[NetLab]:
    """A node netns (bridge 10.244.0.1/24, no route out) with three pods answering their
    name on :8080 (TCP and UDP) and two client pods."""
    lab = NetLab()
    try:
        for pod, ip in PODS.items():
            lab.add_pod(pod, ip)
            lab.serve(pod, SERVER_PORT)
        for pod, ip in CLIENTS.items():
            lab.add_pod(pod, ip)
        lab.assert_no_route_out()
        yield lab
    finally:
        lab.close()


@pytest.fixture
async def running():
    """Start Proxier.run tasks; all are cancelled at the end of the test."""
    tasks: list[asyncio.Task[None]] = []

    def start(p: Any) -> asyncio.Task[None]:
        tasks.append(asyncio.create_task(p.run(synced_timeout=0.05)))
        return tasks[-1]

    yield start
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
