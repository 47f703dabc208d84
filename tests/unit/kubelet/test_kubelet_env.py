"""Container environment resolution, as the kubelet's makeEnvironmentVariables (issue 7)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from navio.kubelet.env import EnvError, container_env, expand, service_env

CONFIGMAPS = {"cfg": {"data": {"color": "blue", "size": "L", "bad=key": "x"}}}
SECRETS = {"creds": {"data": {"password": base64.b64encode(b"s3cret").decode()}}}


async def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    assert namespace == "ns"
    return (CONFIGMAPS if kind == "configmap" else SECRETS).get(name)


POD = {"metadata": {"name": "web-1", "namespace": "ns", "uid": "u-1",
                    "labels": {"app": "web"}, "annotations": {"note": "hi"}},
       "spec": {"nodeName": "node-a", "serviceAccountName": "sa",
                "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"},
                                                           "requests": {"cpu": "250m"}}}]}}


async def env_of(container: dict[str, Any], services: dict[str, str] | None = None
                 ) -> tuple[dict[str, str], list[str]]:
    env, warnings = await container_env(
        POD, {"name": "c", **container}, lookup=lookup, services_env=services or {},
        host_ips=["192.168.1.2"], pod_ips=["10.0.0.7"],
        allocatable={"cpu": "2", "memory": "4Gi"})
    return dict(env), warnings


@pytest.mark.parametrize("text, expected", [
    ("$(A)-$(B)", "1-2"), ("$(MISSING)", "$(MISSING)"), ("$$(A)", "$(A)"), ("$(A", "$(A"),
    ("a$b", "a$b"), ("$", "$"), ("$(A)$(A)", "11"), ("", ""),
], ids=lambda v: repr(v))
def test_expansion_follows_the_kubernetes_rules(text, expected):
    assert expand(text, {"A": "1", "B": "2"}) == expected


async def test_values_field_refs_and_resource_refs_resolve():
    env, _ = await env_of({"env": [
        {"name": "A", "value": "x"},
        {"name": "B", "value": "$(A)-y"},
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                           "divisor": "1Mi"}}},
        {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                               "divisor": "1m"}}},
    ]})
    assert env == {"A": "x", "B": "x-y", "NAME": "web-1", "NS": "ns", "APP": "web",
                   "NODE": "node-a", "POD_IP": "10.0.0.7", "HOST_IP": "192.168.1.2",
                   "MEM": "64", "CPU_LIMIT": "2", "CPU_REQ": "250"}


async def test_config_map_and_secret_keys_and_env_from_with_prefix():
    env, warnings = await env_of({
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                    {"secretRef": {"name": "creds"}}],
        "env": [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg",
                                                                   "key": "color"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                             "key": "password"}}}]})
    assert env["CFG_color"] == "blue" and env["CFG_size"] == "L"
    assert env["password"] == "s3cret" and env["PW"] == "s3cret" and env["COLOR"] == "blue"
    assert "CFG_bad=key" not in env
    assert warnings == ["Keys [CFG_bad=key] from the EnvFrom configMap ns/cfg were skipped "
                        "since they are considered invalid environment variable names."]


@pytest.mark.parametrize("var, message", [
    ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
    ({"configMapKeyRef": {"name": "cfg", "key": "k"}}, "couldn't find key k in ConfigMap ns/cfg"),
    ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
    ({"secretKeyRef": {"name": "creds", "key": "k"}}, "couldn't find key k in Secret ns/creds"),
], ids=["missing configmap", "missing configmap key", "missing secret", "missing secret key"])
async def test_missing_sources_fail_with_the_kubelet_message(var, message):
    with pytest.raises(EnvError) as err:
        await env_of({"env": [{"name": "X", "valueFrom": var}]})
    assert str(err.value) == message


async def test_optional_missing_sources_are_skipped():
    env, _ = await env_of({
        "envFrom": [{"configMapRef": {"name": "nope", "optional": True}}],
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k",
                                                               "optional": True}}}]})
    assert env == {}


async def test_explicit_env_wins_over_service_links_which_fill_the_rest():
    env, _ = await env_of({"env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "mine"},
                                   {"name": "URL", "value": "$(KUBERNETES_SERVICE_PORT)"}]},
                          services={"KUBERNETES_SERVICE_HOST": "10.43.0.1",
                                    "KUBERNETES_SERVICE_PORT": "443"})
    assert env["KUBERNETES_SERVICE_HOST"] == "mine"
    assert env["URL"] == "443" and env["KUBERNETES_SERVICE_PORT"] == "443"


def test_service_link_variables_are_docker_compatible():
    svc = [{"metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443,
                                                          "protocol": "TCP"}]}},
           {"metadata": {"name": "my-db", "namespace": "ns"},
            "spec": {"clusterIP": "10.43.0.9", "ports": [{"port": 5432}]}},
           {"metadata": {"name": "headless", "namespace": "ns"},
            "spec": {"clusterIP": "None", "ports": [{"port": 1}]}},
           {"metadata": {"name": "elsewhere", "namespace": "other"},
            "spec": {"clusterIP": "10.43.0.3", "ports": [{"port": 1}]}}]
    env = service_env(svc, "ns", True)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.43.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.43.0.1"
    assert env["MY_DB_SERVICE_HOST"] == "10.43.0.9"
    assert env["MY_DB_PORT_5432_TCP_PROTO"] == "tcp"
    assert not any(k.startswith(("HEADLESS", "ELSEWHERE")) for k in env)
    assert set(service_env(svc, "ns", False)) == {k for k in env if k.startswith("KUBERNETES")}
