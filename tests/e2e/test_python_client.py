"""The official `kubernetes` Python client lists, creates and watches objects (issue #2)."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from cluster import NavioServer


@pytest.fixture
def api(server: NavioServer) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api_client:
        yield api_client


def test_create_list_and_read_back(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py", labels={"made-by": "python"}),
        data={"k": "v"}))
    got = core.read_namespaced_config_map("py", ns)
    assert got.data == {"k": "v"} and got.metadata.uid
    listed = core.list_namespaced_config_map(ns, label_selector="made-by=python")
    assert [c.metadata.name for c in listed.items] == ["py"]
    apps = client.AppsV1Api(api)
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pyd"),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels={"app": "pyd"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "pyd"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c",
                                                                     image="nginx")]))))
    created = apps.create_namespaced_deployment(ns, dep)
    assert created.spec.strategy.type == "RollingUpdate"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("absent", ns)
    assert err.value.status == 404


def test_watch_streams_added_modified_deleted(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    start_rv = core.list_namespaced_config_map(ns).metadata.resource_version
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def consume() -> None:
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=start_rv,
                           timeout_seconds=20):
            if ev["object"].metadata.name != "kube-root-ca.crt":  # every namespace's, as in kube
                seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="watched")))
    core.patch_namespaced_config_map("watched", ns, {"data": {"a": "b"}})
    core.delete_namespaced_config_map("watched", ns)
    assert done.wait(25), f"watch did not see the deletion; saw {seen}"
    assert seen == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]
