"""e2e fixtures: one real navio server per session, a fresh namespace per test."""

from __future__ import annotations

import itertools
from typing import Iterator

import pytest

from cluster import DEFAULT_DATASTORE, Kubectl, NavioServer

_counter = itertools.count()

# The API e2e modules, run against both datastores (#10: the same behaviour on SQLite and
# etcd): their tests are parametrized [sqlite] and [etcd], each against a session server of
# that datastore. NAVIO_TEST_DATASTORE=etcd runs every other test server on etcd as well.
BOTH_DATASTORES = frozenset({
    "test_api_semantics", "test_kubectl_basics", "test_python_client",
    "test_events_shared_storage", "test_storage_api", "test_openapi_v2_protobuf",
    "test_apiserver_metrics", "test_authentication", "test_rbac",
})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "datastore" not in metafunc.fixturenames or any(
            "datastore" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")):
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    both = module in BOTH_DATASTORES and DEFAULT_DATASTORE == "sqlite"
    metafunc.parametrize("datastore", ["sqlite", "etcd"] if both else [DEFAULT_DATASTORE],
                         scope="session")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, datastore: str) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp(f"navio-{datastore}") / "data",
                      datastore=datastore).start()
    yield srv
    srv.stop()
    srv.stop_datastore()


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
