"""CRD webhook conversion (#4) with the real kubectl.

A CRD `widgets` has versions v1 (storage; `spec.hostPort: "h:p"`) and v2
(`spec.endpoint: {host, port}`) converted by a webhook the test serves over TLS on 127.0.0.1
(`webhook_server.py`, path `/convert`). Objects written in either version read in both; a
watch in the non-storage version sees converted objects; with the webhook unreachable, reads
in the other version fail with kube's 500 message.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from typing import Any, Iterator

import pytest

from cluster import Kubectl, wait_for
from webhook_server import WebhookServer

_groups = itertools.count()


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    server = WebhookServer(tmp_path_factory.mktemp("conversion-pki")).start()
    yield server
    server.stop()


def _schema(spec_props: dict[str, Any]) -> dict[str, Any]:
    return {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": spec_props}}}}


def _crd(group: str, client_config: dict[str, Any], **conversion: Any) -> dict[str, Any]:
    v1 = {"name": "v1", "served": True, "storage": True,
          "schema": _schema({"hostPort": {"type": "string"}}),
          "additionalPrinterColumns": [{"name": "HostPort", "type": "string",
                                        "jsonPath": ".spec.hostPort"}]}
    v2 = {"name": "v2", "served": True, "storage": False,
          "schema": _schema({"endpoint": {"type": "object", "properties": {
              "host": {"type": "string"}, "port": {"type": "integer"}}}}),
          "additionalPrinterColumns": [{"name": "Host", "type": "string",
                                        "jsonPath": ".spec.endpoint.host"},
                                       {"name": "Port", "type": "integer",
                                        "jsonPath": ".spec.endpoint.port"}]}
    webhook = {"clientConfig": client_config, "conversionReviewVersions": ["v1"], **conversion}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "versions": [v1, v2],
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "conversion": {"strategy": "Webhook", "webhook": webhook}}}


def _new_group() -> str:
    return f"conv{next(_groups)}-{int(time.time() * 1000) % 100000}.example.com"


def _apply(kubectl: Kubectl, *objs: dict[str, Any]) -> None:
    for obj in objs:
        kubectl("apply", "-f", "-", input=json.dumps(obj))


def _established(kubectl: Kubectl, name: str) -> None:
    def ok() -> bool:
        crd = kubectl.json("get", "crd", name)
        conds = {c["type"]: c["status"] for c in crd["status"].get("conditions", ())}
        return conds.get("Established") == "True"
    wait_for(ok, 20, f"CRD {name} Established")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_objects_read_in_both_versions_through_the_webhook(kubectl: Kubectl, ns: str,
                                                           hooks: WebhookServer) -> None:
    group = _new_group()
    _apply(kubectl, _crd(group, {"url": f"{hooks.url}/convert", "caBundle": hooks.ca_bundle}))
    _established(kubectl, f"widgets.{group}")
    # Written in v1 (the storage version): read in v2 through the webhook.
    _apply(kubectl, {"apiVersion": f"{group}/v1", "kind": "Widget",
                     "metadata": {"name": "one", "namespace": ns},
                     "spec": {"hostPort": "alpha:80"}})
    as_v2 = kubectl.json("get", f"widgets.v2.{group}", "one", "-n", ns)
    assert as_v2["apiVersion"] == f"{group}/v2"
    assert as_v2["spec"] == {"endpoint": {"host": "alpha", "port": 80}}
    assert as_v2["metadata"]["annotations"]["converted-to"] == "v2"
    reviews = hooks.received("convert")
    assert reviews and reviews[-1]["desiredAPIVersion"] == f"{group}/v2"
    assert reviews[-1]["objects"][0]["apiVersion"] == f"{group}/v1"
    assert reviews[-1]["uid"]

    # Written in v2: stored as v1 (converted on write), read back in both versions.
    _apply(kubectl, {"apiVersion": f"{group}/v2", "kind": "Widget",
                     "metadata": {"name": "two", "namespace": ns},
                     "spec": {"endpoint": {"host": "beta", "port": 8080}}})
    as_v1 = kubectl.json("get", f"widgets.v1.{group}", "two", "-n", ns)
    assert as_v1["apiVersion"] == f"{group}/v1"
    assert as_v1["spec"] == {"hostPort": "beta:8080"}
    assert kubectl.json("get", f"widgets.v2.{group}", "two", "-n", ns)["spec"] == \
        {"endpoint": {"host": "beta", "port": 8080}}

    # kubectl get of both versions: each version's printer columns over converted objects.
    table_v2 = kubectl("get", f"widgets.v2.{group}", "-n", ns)
    assert "HOST" in table_v2 and "PORT" in table_v2
    assert "alpha" in table_v2 and "8080" in table_v2
    table_v1 = kubectl("get", f"widgets.v1.{group}", "-n", ns)
    assert "HOSTPORT" in table_v1 and "alpha:80" in table_v1 and "beta:8080" in table_v1
    listed = kubectl.json("get", f"widgets.v2.{group}", "-n", ns)
    assert {i["metadata"]["name"]: i["spec"]["endpoint"]["port"] for i in listed["items"]} \
        == {"one": 80, "two": 8080}

    # An update in v2 of an object stored as v1.
    kubectl("patch", f"widgets.v2.{group}", "one", "-n", ns, "--type=merge",
            "-p", json.dumps({"spec": {"endpoint": {"port": 81}}}))
    assert kubectl.json("get", f"widgets.v1.{group}", "one", "-n", ns)["spec"] == \
        {"hostPort": "alpha:81"}


def test_watch_in_the_non_storage_version(kubectl: Kubectl, ns: str,
                                          hooks: WebhookServer) -> None:
    group = _new_group()
    _apply(kubectl, _crd(group, {"url": f"{hooks.url}/convert", "caBundle": hooks.ca_bundle}))
    _established(kubectl, f"widgets.{group}")
    _apply(kubectl, {"apiVersion": f"{group}/v1", "kind": "Widget",
                     "metadata": {"name": "w1", "namespace": ns},
                     "spec": {"hostPort": "gamma:1"}})
    watch = kubectl.popen("get", f"widgets.v2.{group}", "-n", ns, "--watch", "-o", "json",
                          "--request-timeout=60s")
    seen: dict[str, Any] = {}
    decoder = json.JSONDecoder()
    buf = [""]

    def read_until(name: str) -> None:
        assert watch.stdout is not None
        deadline = time.monotonic() + 30
        while name not in seen and time.monotonic() < deadline:
            line = watch.stdout.readline()
            if not line:
                break
            buf[0] += line
            try:
                obj, end = decoder.raw_decode(buf[0].lstrip())
            except json.JSONDecodeError:
                continue
            buf[0] = buf[0].lstrip()[end:]
            seen[obj["metadata"]["name"]] = obj
        assert name in seen, f"watch never showed {name}: {seen}"

    try:
        read_until("w1")          # listed: the watch is established from here on
        _apply(kubectl, {"apiVersion": f"{group}/v1", "kind": "Widget",
                         "metadata": {"name": "w2", "namespace": ns},
                         "spec": {"hostPort": "delta:2"}})
        read_until("w2")          # a watch event, converted by the cache of v2
    finally:
        watch.kill()
        watch.communicate(timeout=10)
    assert seen["w2"]["apiVersion"] == f"{group}/v2"
    assert seen["w2"]["spec"] == {"endpoint": {"host": "delta", "port": 2}}
    assert seen["w1"]["spec"] == {"endpoint": {"host": "gamma", "port": 1}}


def test_webhook_down_is_a_500_with_kubes_message(kubectl: Kubectl, ns: str,
                                                  hooks: WebhookServer) -> None:
    group = _new_group()
    port = _closed_port()
    url = f"https://127.0.0.1:{port}/convert"
    _apply(kubectl, _crd(group, {"url": url, "caBundle": hooks.ca_bundle}))
    _established(kubectl, f"widgets.{group}")
    # The storage version needs no conversion.
    _apply(kubectl, {"apiVersion": f"{group}/v1", "kind": "Widget",
                     "metadata": {"name": "one", "namespace": ns},
                     "spec": {"hostPort": "alpha:80"}})
    assert kubectl.json("get", f"widgets.v1.{group}", "one", "-n", ns)["spec"] == \
        {"hostPort": "alpha:80"}
    want = (f'Error from server: conversion webhook for {group}/v1, Kind=Widget failed: '
            f'Post "{url}?timeout=30s": dial tcp 127.0.0.1:{port}: connect: connection '
            f'refused')
    for args in (("one",), ()):
        r = kubectl.run("get", f"widgets.v2.{group}", *args, "-n", ns, check=False)
        assert r.returncode != 0
        assert want in r.stderr, r.stderr
    # A watch in v2 starts with the current objects: it fails the same way.
    r = kubectl.run("get", "--raw",
                    f"/apis/{group}/v2/namespaces/{ns}/widgets?watch=1&timeoutSeconds=5",
                    check=False)
    assert r.returncode != 0 and want in r.stderr, r.stderr
    # Writing in v2 needs the webhook too.
    r = kubectl.run("apply", "-f", "-", check=False, input=json.dumps(
        {"apiVersion": f"{group}/v2", "kind": "Widget",
         "metadata": {"name": "two", "namespace": ns},
         "spec": {"endpoint": {"host": "b", "port": 1}}}))
    assert r.returncode != 0 and "conversion webhook for" in r.stderr, r.stderr
    # Pointed at the running webhook, the same objects read in v2.
    _apply(kubectl, _crd(group, {"url": f"{hooks.url}/convert", "caBundle": hooks.ca_bundle}))

    def converted() -> Any:
        r = kubectl.run("get", f"widgets.v2.{group}", "one", "-n", ns, "-o", "json",
                        check=False)
        return r.returncode == 0 and json.loads(r.stdout)["spec"] == \
            {"endpoint": {"host": "alpha", "port": 80}}
    wait_for(converted, 20, "conversion once the webhook is reachable")


def test_conversion_stanza_is_validated(kubectl: Kubectl, hooks: WebhookServer) -> None:
    group = _new_group()
    crd = _crd(group, {"url": f"{hooks.url}/convert"})
    del crd["spec"]["conversion"]["webhook"]["conversionReviewVersions"]
    r = kubectl.run("apply", "-f", "-", input=json.dumps(crd), check=False)
    assert r.returncode != 0
    assert "spec.conversion.conversionReviewVersions: Required value" in r.stderr, r.stderr
    crd = _crd(group, {})
    r = kubectl.run("apply", "-f", "-", input=json.dumps(crd), check=False)
    assert "spec.conversion.webhookClientConfig: Required value: exactly one of url or " \
           "service is required" in r.stderr, r.stderr
    crd = _crd(group, {"url": f"{hooks.url}/convert"})
    crd["spec"]["conversion"]["strategy"] = "None"
    r = kubectl.run("apply", "-f", "-", input=json.dumps(crd), check=False)
    assert "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy " \
           "is not set to Webhook" in r.stderr, r.stderr
