"""Operators against custom kinds, unchanged: a kopf operator written here, and the official
client's CustomObjectsApi (issue 4).

The kopf operator watches a custom kind and keeps one ConfigMap per object: created with the
object, rewritten when it changes, deleted (through kopf's finalizer) when the object is.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from cluster import Kubectl, NavioServer, wait_for

_groups = itertools.count()


def _define(kubectl: Kubectl, group: str, kind: str, plural: str) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"{plural}.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "subresources": {"status": {}},
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object",
                                      "properties": {
                                          "spec": {"type": "object", "properties": {
                                              "greeting": {"type": "string"},
                                              "count": {"type": "integer", "default": 1}}},
                                          "status": {"type": "object",
                                                     "x-kubernetes-preserve-unknown-fields":
                                                         True}}}}}]}}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(crd))

    def established() -> bool:
        conds = kubectl.json("get", "crd", f"{plural}.{group}")["status"].get("conditions", [])
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)
    wait_for(established, 10, "CRD Established")


OPERATOR = '''
import kopf
import kubernetes

GROUP = {group!r}

@kopf.on.startup()
def configure(settings, **_):
    settings.posting.level = 100            # no events needed
    settings.watching.server_timeout = 30
    kubernetes.config.load_kube_config()


def _configmap(name, namespace, spec):
    return kubernetes.client.V1ConfigMap(
        metadata=kubernetes.client.V1ObjectMeta(name=f"{{name}}-greeting"),
        data={{"greeting": spec.get("greeting", ""), "count": str(spec.get("count"))}})


@kopf.on.create(GROUP, "v1", "greetings")
def created(spec, name, namespace, **_):
    kubernetes.client.CoreV1Api().create_namespaced_config_map(
        namespace, _configmap(name, namespace, spec))
    return {{"configmap": f"{{name}}-greeting"}}


@kopf.on.update(GROUP, "v1", "greetings")
def updated(spec, name, namespace, **_):
    kubernetes.client.CoreV1Api().replace_namespaced_config_map(
        f"{{name}}-greeting", namespace, _configmap(name, namespace, spec))


@kopf.on.delete(GROUP, "v1", "greetings")
def deleted(name, namespace, **_):
    try:
        kubernetes.client.CoreV1Api().delete_namespaced_config_map(f"{{name}}-greeting",
                                                                   namespace)
    except kubernetes.client.rest.ApiException as exc:
        if exc.status != 404:
            raise
'''


@pytest.fixture
def operator(server: NavioServer, kubectl: Kubectl, ns: str,
             tmp_path: Path) -> Iterator[str]:
    group = f"op{next(_groups)}-{int(time.time() * 1000) % 100000}.example.com"
    _define(kubectl, group, "Greeting", "greetings")
    script = tmp_path / "operator.py"
    script.write_text(textwrap.dedent(OPERATOR.format(group=group)))
    log = open(tmp_path / "kopf.log", "w")
    env = {**os.environ, "KUBECONFIG": str(server.kubeconfig)}
    proc = subprocess.Popen([sys.executable, "-m", "kopf", "run", "--standalone",
                             f"--namespace={ns}", "--verbose", str(script)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        yield group
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        kubectl("delete", "crd", f"greetings.{group}", "--wait=false", check=False)


def test_kopf_operator_keeps_a_configmap_per_object(operator: str, kubectl: Kubectl,
                                                     ns: str, tmp_path: Path) -> None:
    group = operator
    obj = {"apiVersion": f"{group}/v1", "kind": "Greeting",
           "metadata": {"name": "hello", "namespace": ns}, "spec": {"greeting": "hi"}}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(obj))

    def configmap() -> dict | None:
        r = kubectl.run("get", "configmap", "hello-greeting", "-n", ns, "-o", "yaml",
                        check=False)
        return yaml.safe_load(r.stdout) if r.returncode == 0 else None

    def log() -> str:
        return (tmp_path / "kopf.log").read_text()

    cm = wait_for(configmap, 30, "the operator's ConfigMap")
    assert cm["data"] == {"greeting": "hi", "count": "1"}, log()
    got = kubectl.json("get", f"greetings.{group}", "hello", "-n", ns)
    assert got["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    wait_for(lambda: (kubectl.json("get", f"greetings.{group}", "hello", "-n", ns)
                      .get("status") or {}).get("created") ==
             {"configmap": "hello-greeting"}, 30, "kopf's handler result in status")

    kubectl("patch", f"greetings.{group}", "hello", "-n", ns, "--type=merge", "-p",
            '{"spec":{"greeting":"hello","count":3}}')
    wait_for(lambda: (configmap() or {}).get("data") == {"greeting": "hello", "count": "3"},
             30, "the ConfigMap to follow the update")

    kubectl("delete", f"greetings.{group}", "hello", "-n", ns, "--wait=false")
    wait_for(lambda: configmap() is None, 30, "the ConfigMap deleted by the operator")
    wait_for(lambda: kubectl.run("get", f"greetings.{group}", "hello", "-n", ns,
                                 check=False).returncode != 0, 30,
             "the object gone once kopf released its finalizer")


@pytest.fixture
def api(server: NavioServer) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api_client:
        yield api_client


def test_custom_objects_api(api: client.ApiClient, kubectl: Kubectl, ns: str) -> None:
    group = f"co{next(_groups)}-{int(time.time() * 1000) % 100000}.example.com"
    _define(kubectl, group, "Greeting", "greetings")
    co = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{group}/v1", "kind": "Greeting",
            "metadata": {"name": "g1"}, "spec": {"greeting": "hey"}}
    created = co.create_namespaced_custom_object(group, "v1", ns, "greetings", body)
    assert created["spec"] == {"greeting": "hey", "count": 1}
    rv = created["metadata"]["resourceVersion"]
    listed = co.list_namespaced_custom_object(group, "v1", ns, "greetings")
    assert [o["metadata"]["name"] for o in listed["items"]] == ["g1"]
    assert listed["kind"] == "GreetingList"
    patched = co.patch_namespaced_custom_object(group, "v1", ns, "greetings", "g1",
                                                {"spec": {"count": 5}})
    assert patched["spec"] == {"greeting": "hey", "count": 5}
    status = co.patch_namespaced_custom_object_status(group, "v1", ns, "greetings", "g1",
                                                      {"status": {"seen": True}})
    assert status["status"] == {"seen": True}
    got = co.get_namespaced_custom_object(group, "v1", ns, "greetings", "g1")
    assert got["status"] == {"seen": True} and got["spec"]["count"] == 5
    events = []
    for ev in watch.Watch().stream(co.list_namespaced_custom_object, group, "v1", ns,
                                   "greetings", resource_version=rv, timeout_seconds=5):
        events.append((ev["type"], ev["object"]["spec"].get("count")))
        if len(events) == 2:
            break
    assert events == [("MODIFIED", 5), ("MODIFIED", 5)]
    co.delete_namespaced_custom_object(group, "v1", ns, "greetings", "g1")
    with pytest.raises(ApiException) as err:
        co.get_namespaced_custom_object(group, "v1", ns, "greetings", "g1")
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(group, "v1", ns, "greetings", {
            **body, "spec": {"count": "many"}})
    assert err.value.status == 422
    assert "spec.count in body must be of type integer" in err.value.body
    kubectl("delete", "crd", f"greetings.{group}", timeout=30)
