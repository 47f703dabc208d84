"""networking.k8s.io/v1 NetworkPolicy as the API serves it: registry, defaults, kube's
validation messages (pkg/apis/networking/validation, v1.32) and the kubectl table."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from navio.api.defaults import apply_defaults
from navio.api.registry import default_registry
from navio.api.tables import table_cells, table_columns
from navio.api.validation import validate

G, K = "networking.k8s.io", "NetworkPolicy"


def np(**spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    return {"apiVersion": f"{G}/v1", "kind": K,
            "metadata": {"name": "p", "namespace": "default"}, "spec": spec}


def errors(obj: dict[str, Any]) -> list[tuple[str, str]]:
    apply_defaults(G, K, obj)
    return [(c["field"], c["message"]) for c in validate(G, K, obj)]


def test_registered_with_short_name() -> None:
    kind = default_registry().resource(G, "v1", "networkpolicies")
    assert kind is not None and kind.namespaced and kind.short_names == ("netpol",)


def test_defaults_protocol_and_policy_types() -> None:
    obj = np(egress=[{"ports": [{"port": 53}]}])
    apply_defaults(G, K, obj)
    assert obj["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert obj["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
    obj = np()
    apply_defaults(G, K, obj)
    assert obj["spec"]["policyTypes"] == ["Ingress"]


def test_valid_policy_passes() -> None:
    assert errors(np(ingress=[{"from": [
        {"podSelector": {"matchLabels": {"a": "b"}}, "namespaceSelector": {}},
        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
        "ports": [{"port": "http"}, {"port": 80, "endPort": 90, "protocol": "SCTP"}]}])) == []


def test_port_errors() -> None:
    assert errors(np(ingress=[{"ports": [
        {"port": 0}, {"port": 90, "endPort": 80}, {"port": "http", "endPort": 80},
        {"endPort": 80}, {"port": "a--b"}, {"protocol": "ICMP"}]}])) == [
        ("spec.ingress[0].ports[0].port",
         "Invalid value: 0: must be between 1 and 65535, inclusive"),
        ("spec.ingress[0].ports[1].endPort",
         "Invalid value: 90: must be greater than or equal to `port`"),
        ("spec.ingress[0].ports[2].endPort",
         "Invalid value: 80: may not be specified when `port` is non-numeric"),
        ("spec.ingress[0].ports[3].endPort",
         "Invalid value: 80: may not be specified when `port` is not specified"),
        ("spec.ingress[0].ports[4].port",
         'Invalid value: "a--b": must not contain consecutive hyphens'),
        ("spec.ingress[0].ports[5].protocol",
         'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'),
    ]


def test_peer_errors() -> None:
    assert errors(np(egress=[{"to": [
        {}, {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}},
        {"ipBlock": {"cidr": ""}}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": [
            "10.0.0.0/8", "11.0.0.0/16", "bad"]}}]}])) == [
        ("spec.egress[0].to[0]", "Required value: must specify a peer"),
        ("spec.egress[0].to[1]", "Forbidden: may not specify both ipBlock and another peer"),
        ("spec.egress[0].to[2].ipBlock.cidr", "Required value"),
        ("spec.egress[0].to[3].ipBlock.except[0]",
         "Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`"),
        ("spec.egress[0].to[3].ipBlock.except[1]",
         "Invalid value: \"11.0.0.0/16\": must be a strict subset of `cidr`"),
        ("spec.egress[0].to[3].ipBlock.except[2]",
         "Invalid value: \"bad\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or "
         "2001:db8::/64)"),
    ]


def test_policy_type_errors() -> None:
    assert errors(np(policyTypes=["Ingress", "Egress", "Ingress"]))[0][0] == "spec.policyTypes"
    assert errors(np(policyTypes=["Sideways"])) == [
        ("spec.policyTypes[0]", 'Unsupported value: "Sideways": supported values: '
                                '"Ingress", "Egress"')]


def test_table_name_pod_selector_age() -> None:
    assert [c["name"] for c in table_columns(G, K)] == ["Name", "Pod-Selector", "Age"]
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    obj = np(podSelector={"matchLabels": {"app": "web"}})
    obj["metadata"]["creationTimestamp"] = "2025-12-31T23:59:00Z"
    assert table_cells(G, K, obj, now) == ["p", "app=web", "60s"]
    assert table_cells(G, K, np(), now)[1] == "<none>"
