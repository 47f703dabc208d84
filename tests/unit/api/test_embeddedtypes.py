"""Structural schemas of built-in types for CRDs that embed them (the PyTorchJob CRD)."""

from __future__ import annotations

import json

from navio.api.embeddedtypes import structural_schema
from navio.api.kubeflow import pytorchjob_crd


def test_a_pod_template_schema_is_structural_with_kubes_list_types() -> None:
    s = structural_schema("io.k8s.api.core.v1.PodTemplateSpec")
    text = json.dumps(s)
    assert "$ref" not in text and "oneOf" not in text and "patch-strategy" not in text
    meta = s["properties"]["metadata"]
    assert meta["type"] == "object"
    assert set(meta["properties"]) == {"annotations", "labels", "finalizers", "name",
                                       "namespace"}, "a template's labels are not pruned"
    containers = s["properties"]["spec"]["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    port = containers["items"]["properties"]["ports"]["items"]["properties"]["containerPort"]
    assert port["type"] == "integer" and port["format"] == "int32"
    limits = containers["items"]["properties"]["resources"]["properties"]["limits"]
    assert limits["additionalProperties"]["x-kubernetes-int-or-string"] is True
    probe_port = containers["items"]["properties"]["livenessProbe"]["properties"]["httpGet"][
        "properties"]["port"]
    assert probe_port["x-kubernetes-int-or-string"] is True


def test_the_pytorchjob_crd_is_the_training_operators() -> None:
    crd = pytorchjob_crd()
    assert crd["metadata"]["name"] == "pytorchjobs.kubeflow.org"
    (version,) = crd["spec"]["versions"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["State", "Age"]
    assert version["subresources"]["scale"]["specReplicasPath"] == \
        ".spec.pytorchReplicaSpecs.Worker.replicas"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    template = spec["properties"]["pytorchReplicaSpecs"]["additionalProperties"]["properties"][
        "template"]
    assert "containers" in template["properties"]["spec"]["properties"]
