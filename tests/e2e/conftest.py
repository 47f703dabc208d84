"""e2e fixtures: one real navio server per session, a fresh namespace per test."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import pytest

from cluster import Kubectl, NavioServer

_counter = itertools.count()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("navio") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def kubectl(server: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(server.kubeconfig, tmp_path_factory.mktemp("home"))


@pytest.fixture
def ns(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t{next(_counter)}-{request.node.name.lower()[:40]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")[:60]
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)
