"""Claim-to-volume matching shared by the PV controller and VolumeBinding (issue 13)."""

from __future__ import annotations

from typing import Any

import pytest

from navio.api.persistentvolumes import (claim_class, find_matching_volume, pod_claim_names,
                                         volume_admits_node)


def _pvc(size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str = "",
         **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "c", "namespace": "ns", "uid": "u1"},
            "spec": {"accessModes": list(modes), "storageClassName": cls,
                     "resources": {"requests": {"storage": size}}, **spec}}


def _pv(name: str, size: str, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str = "",
        phase: str = "Available", labels: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"capacity": {"storage": size}, "accessModes": list(modes),
                     "storageClassName": cls, **spec},
            "status": {"phase": phase}}


def _names(pv: dict[str, Any] | None) -> str | None:
    return None if pv is None else pv["metadata"]["name"]


@pytest.mark.parametrize("claim,volumes,want", [
    pytest.param(_pvc("500Mi"), [_pv("big", "5Gi"), _pv("small", "1Gi"), _pv("tiny", "100Mi")],
                 "small", id="the smallest volume that fits wins"),
    pytest.param(_pvc(modes=("ReadWriteMany",)), [_pv("rwo", "1Gi"),
                                                  _pv("rwx", "2Gi", ("ReadWriteMany",))],
                 "rwx", id="access modes must all be offered"),
    pytest.param(_pvc(cls="fast"), [_pv("slow", "1Gi", cls="slow"), _pv("fast", "2Gi",
                                                                         cls="fast")],
                 "fast", id="classes must be equal"),
    pytest.param(_pvc(selector={"matchLabels": {"tier": "db"}}),
                 [_pv("web", "1Gi", labels={"tier": "web"}), _pv("db", "2Gi",
                                                                  labels={"tier": "db"})],
                 "db", id="the claim's selector must match"),
    pytest.param(_pvc(), [_pv("released", "1Gi", phase="Released")], None,
                 id="only Available volumes compete"),
    pytest.param(_pvc(), [_pv("other", "1Gi", phase="Available",
                              claimRef={"namespace": "ns", "name": "someone"}),
                          _pv("mine", "9Gi", phase="Bound",
                              claimRef={"namespace": "ns", "name": "c", "uid": "u1"})],
                 "mine", id="a volume pre-bound to the claim wins, one bound elsewhere never"),
    pytest.param(_pvc(volumeMode="Block"), [_pv("fs", "1Gi")], None,
                 id="volume modes must be equal"),
])
def test_find_matching_volume(claim: dict, volumes: list[dict], want: str | None) -> None:
    assert _names(find_matching_volume(claim, volumes)) == want


def test_delayed_binding_considers_only_pre_bound_volumes() -> None:
    assert find_matching_volume(_pvc(), [_pv("free", "1Gi")], delay_binding=True) is None


def test_node_affinity_decides_for_a_given_node() -> None:
    pinned = _pv("pinned", "1Gi", nodeAffinity={"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                               "values": ["n2"]}]}]}})
    n1 = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}
    n2 = {"metadata": {"name": "n2", "labels": {"kubernetes.io/hostname": "n2"}}}
    assert not volume_admits_node(pinned, n1) and volume_admits_node(pinned, n2)
    assert find_matching_volume(_pvc(), [pinned], node=n1) is None
    assert _names(find_matching_volume(_pvc(), [pinned], node=n2)) == "pinned"


def test_beta_annotation_names_the_class_first() -> None:
    claim = _pvc(cls="spec-class")
    claim["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "beta"}
    assert claim_class(claim) == "beta"


def test_pod_claims_include_generic_ephemeral_volumes() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"volumes": [
        {"name": "a", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
        {"name": "b", "ephemeral": {"volumeClaimTemplate": {}}},
        {"name": "c", "emptyDir": {}}]}}
    assert pod_claim_names(pod) == [("a", "data", True), ("b", "p-b", False)]


def test_volume_attachment_names_and_attach_requirement() -> None:
    import hashlib

    from navio.api.persistentvolumes import attach_required, attachment_name
    assert attachment_name("vol-1", "csi.example.com", "n1") == \
        "csi-" + hashlib.sha256(b"vol-1csi.example.comn1").hexdigest()
    assert attach_required(None) is True
    assert attach_required({"spec": {}}) is True
    assert attach_required({"spec": {"attachRequired": False}}) is False
