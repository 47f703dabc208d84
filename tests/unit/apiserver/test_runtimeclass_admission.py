"""RuntimeClass: validation (node.k8s.io, v1.32) and the admission plugin's toleration merge
(kube's tolerations.MergeTolerations)."""

from __future__ import annotations

from typing import Any

from navio.api import validation
from navio.apiserver.runtimeclass import merge_tolerations
from navio.runtime.handlers import handlers_of, supports


def rc(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": "fast"}, "handler": "process", **fields}


def causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    if old is not None:
        old = {**old, "metadata": {**old["metadata"], "resourceVersion": "1"}}
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}}
    return [(c["field"], c["message"]) for c in
            validation.validate("node.k8s.io", "RuntimeClass", obj, old)]


def test_valid_class() -> None:
    assert causes(rc(overhead={"podFixed": {"cpu": "250m", "memory": "64Mi"}},
                     scheduling={"nodeSelector": {"a": "b"},
                                 "tolerations": [{"key": "k", "operator": "Exists"}]})) == []


def test_handler_must_be_a_dns_label_and_is_immutable() -> None:
    [(field, message)] = causes(rc(handler="Bad_Handler"))
    assert field == "handler"
    assert message.startswith('Invalid value: "Bad_Handler": a lowercase RFC 1123 label')
    assert causes(rc(handler="other"), rc()) == [
        ("handler", 'Invalid value: "other": field is immutable')]


def test_overhead_and_scheduling_are_checked() -> None:
    got = causes(rc(overhead={"podFixed": {"cpu": "-1"}},
                    scheduling={"nodeSelector": {"bad key!": "v"},
                                "tolerations": [{"key": "k", "operator": "Exists"},
                                                {"key": "k", "operator": "Exists"},
                                                {"operator": "Equal", "value": "x"}]}))
    fields = [f for f, _ in got]
    assert "overhead.limits[cpu]" in fields
    assert "scheduling.nodeSelector" in fields
    # Upstream's double child name for the toleration checks, single for duplicates.
    assert "scheduling.tolerations.tolerations[2].operator" in fields
    assert "scheduling.tolerations[1]" in fields


def test_merge_keeps_only_what_nothing_else_covers() -> None:
    pod = [{"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"},
           {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300}]
    cls = [{"key": "a", "operator": "Exists"},
           {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300},
           {"key": "b", "operator": "Exists", "effect": "NoSchedule"}]
    assert merge_tolerations(pod, cls) == [pod[1], cls[0], cls[2]]
    # Everything tolerated: one toleration is left.
    assert merge_tolerations(pod, [{"operator": "Exists"}]) == [{"operator": "Exists"}]
    # A shorter tolerationSeconds does not cover a longer one.
    short = {"key": "x", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
    long = {"key": "x", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    assert merge_tolerations([short], [long]) == [long]
    assert merge_tolerations([long], [short]) == [long]


def test_handler_table() -> None:
    assert handlers_of("process") == ("", "process")
    assert handlers_of("sim") == ("", "sim")
    assert supports("process", "") and supports("process", "process")
    assert not supports("process", "sim") and not supports("sim", "oci")
