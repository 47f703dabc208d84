"""Fixtures for the runtime tests: runtimes over throwaway namespaces, cleaned up on failure.

The kubelet runs on uvloop (STYLE §9), which differs from the stdlib loop where it matters
here (subprocess descriptors, netlink sockets): the contract tests run on both loops, the
other async runtime tests on uvloop.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import AsyncIterator, Callable, Mapping

import pytest
import uvloop

from navio.runtime.process import ProcessRuntime
from navio.runtime.sim import SimRuntime
from runtime_lab import POD_CIDR, RuntimeLab, RuntimeUnderTest


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                  ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.path.name == "test_runtime_contract.py":
        return {"asyncio": asyncio.SelectorEventLoop, "uvloop": uvloop.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def root() -> None:
    """Namespaces, cgroups and mounts need root (CI runs as root, so this never skips there)."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        pytest.skip("process runtime tests need root on Linux")


@pytest.fixture
async def lab(root: None, tmp_path: Path) -> AsyncIterator[RuntimeLab]:
    lab = RuntimeLab(tmp_path)
    try:
        yield lab
    finally:
        await lab.cleanup()


@pytest.fixture
async def runtime(lab: RuntimeLab) -> ProcessRuntime:
    """An isolated process runtime whose bridge lives in the lab's node netns."""
    return lab.runtime()


@pytest.fixture(params=["process", "process-host", "sim", "oci"])
async def rut(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RuntimeUnderTest]:
    if request.param == "sim":
        yield RuntimeUnderTest("sim", SimRuntime(pod_cidr=POD_CIDR))
        return
    if request.param in ("process", "oci"):
        request.getfixturevalue("root")
    lab = RuntimeLab(tmp_path, isolated=request.param != "process-host")
    try:
        rt = lab.oci_runtime() if request.param == "oci" else lab.runtime()
        yield RuntimeUnderTest(request.param, rt)
    finally:
        await lab.cleanup()
