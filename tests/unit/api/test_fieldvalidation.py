"""Field validation: unknown fields, pruning, duplicates, JSON type errors, worded as
kube-apiserver words them (messages copied from kube-apiserver and kubectl output)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from navio.api import errors, fieldvalidation as fv, schema

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def deployment(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"},
                     "annotations": {"a": "b"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{
                                  "name": "web", "image": "nginx",
                                  "ports": [{"containerPort": 80}],
                                  "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                                  "env": [{"name": "A", "value": "1"}]}]}}}}
    obj["spec"].update(spec)
    return obj


def _set(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of obj with `value` at the dotted path (ints index lists)."""
    obj = copy.deepcopy(obj)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    cur: Any = obj
    for p in parents:
        cur = cur[p]
    cur[last] = value
    return obj


# --- unknown fields ---------------------------------------------------------------------------

def test_a_valid_deployment_has_no_unknown_fields() -> None:
    assert fv.unknown_fields(deployment(), DEPLOYMENT) == []


@pytest.mark.parametrize("path,expected", [
    ("spec.replica", "spec.replica"),
    ("bogus", "bogus"),
    ("metadata.nmae", "metadata.nmae"),
    ("spec.template.spec.containers.0.imagee", "spec.template.spec.containers[0].imagee"),
    ("spec.template.spec.containers.0.ports.0.port",
     "spec.template.spec.containers[0].ports[0].port"),
    ("spec.template.spec.containers.0.env.0.valu", "spec.template.spec.containers[0].env[0].valu"),
    ("spec.Replicas", "spec.Replicas"),
], ids=["in spec", "at the root", "in metadata", "in a list item", "in a nested list item",
        "in env", "because names are case-sensitive"])
def test_unknown_fields_are_reported_with_kubes_path(path: str, expected: str) -> None:
    assert fv.unknown_fields(_set(deployment(), path, "x"), DEPLOYMENT) == [expected]


@pytest.mark.parametrize("path", [
    "metadata.labels.anything", "metadata.annotations.any/key",
    "spec.template.spec.containers.0.resources.limits.hugepages-2Mi",
    "spec.template.spec.nodeSelector",
], ids=["label keys", "annotation keys", "resource names", "a declared map"])
def test_map_keys_are_never_unknown(path: str) -> None:
    obj = deployment()
    if path.endswith("nodeSelector"):
        obj = _set(obj, path, {"disk": "ssd"})
    else:
        obj = _set(obj, path, "1")
    assert fv.unknown_fields(obj, DEPLOYMENT) == []


def test_opaque_values_are_not_looked_into() -> None:
    revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": "r", "managedFields": [
                    {"manager": "m", "fieldsV1": {"f:spec": {"f:anything": {}}}}]},
                "revision": 1, "data": {"whatever": {"deep": [1, {"x": 2}]}}}
    assert fv.unknown_fields(revision, "io.k8s.api.apps.v1.ControllerRevision") == []


def test_unknown_fields_lists_every_one_in_document_order() -> None:
    obj = _set(_set(deployment(), "spec.zzz", 1), "metadata.aaa", 2)
    assert fv.unknown_fields(obj, DEPLOYMENT) == ["metadata.aaa", "spec.zzz"]


@pytest.fixture
def crd() -> Iterator[str]:
    """A custom resource schema with a preserved subtree, removed afterwards."""
    name = "com.example.test.v1.Widget"
    schema.add_definitions({name: {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer"},
            "port": {"x-kubernetes-int-or-string": True,
                     "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                       "properties": {"known": {"type": "string"}}},
            "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                         "properties": {"spec": {"type": "object", "properties": {}}}},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}}}}}}})
    yield name
    schema._extra.pop(name, None)   # no public removal yet
    schema._gvk_index.cache_clear()


def test_preserve_unknown_fields_keeps_everything_below_it(crd: str) -> None:
    obj: dict[str, Any] = {
        "apiVersion": "test.example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1, "config": {"known": "k", "free": {"form": [1, 2]}},
                 "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {},
                              "spec": {"gone": 1}},
                 "tags": {"a": "b"}, "extra": True}}
    assert fv.unknown_fields(obj, crd) == ["spec.template.spec.gone", "spec.extra"]
    pruned = fv.prune(obj, crd)
    assert pruned["spec"]["config"] == obj["spec"]["config"]
    assert "extra" not in pruned["spec"] and pruned["spec"]["template"]["spec"] == {}
    assert pruned["spec"]["template"]["kind"] == "Pod"


# --- pruning ----------------------------------------------------------------------------------

def test_prune_drops_exactly_the_unknown_fields_without_mutating_the_input() -> None:
    obj = _set(_set(deployment(), "spec.replica", 3),
               "spec.template.spec.containers.0.imagee", "x")
    before = copy.deepcopy(obj)
    pruned = fv.prune(obj, DEPLOYMENT)
    assert obj == before
    assert pruned == deployment()
    assert fv.unknown_fields(pruned, DEPLOYMENT) == []


def test_prune_of_a_clean_object_is_equal_to_it() -> None:
    assert fv.prune(deployment(), DEPLOYMENT) == deployment()


# --- duplicates and messages ------------------------------------------------------------------

def test_duplicate_fields_are_found_with_their_paths() -> None:
    body = ('{"kind":"Deployment","spec":{"replicas":1,"replicas":2,"template":{"spec":'
            '{"containers":[{"name":"a","image":"x","name":"b"}]}}}}')
    assert sorted(fv.duplicate_fields(body)) == [
        "spec.replicas", "spec.template.spec.containers[0].name"]
    assert fv.duplicate_fields(json.dumps(deployment())) == []
    assert fv.duplicate_fields(b"not json") == []


def test_strict_decoding_message_matches_kube_apiserver() -> None:
    errs = fv.strict_errors(["spec.template.metadata.containers", "spec.template.metadata.volumes"])
    assert errs == ['unknown field "spec.template.metadata.containers"',
                    'unknown field "spec.template.metadata.volumes"']
    assert fv.cannot_handle("Deployment", "v1", fv.strict_decoding_error(errs)) == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.metadata.containers", unknown field '
        '"spec.template.metadata.volumes"')
    assert fv.strict_errors([], ["spec.replicas"]) == ['duplicate field "spec.replicas"']


def test_a_strict_patch_failure_reads_as_kube_apiserver_writes_it() -> None:
    patch = {"spec": {"volumes": [{"hostPath": {"path": "/data"}, "name": "v"}],
                      "template": {"spec": {}}}}
    detail = fv.strict_decoding_error(fv.strict_errors(["spec.volumes"]))
    invalid = errors.Invalid("", "", [errors.cause("FieldValueInvalid", "patch", detail,
                                                   fv.go_format(patch))])
    assert invalid.code == 422
    assert invalid.message == (
        ' "" is invalid: patch: Invalid value: "map[spec:map[template:map[spec:map[]] '
        'volumes:[map[hostPath:map[path:/data] name:v]]]]": strict decoding error: '
        'unknown field "spec.volumes"')


@pytest.mark.parametrize("value,expected", [
    ({"b": 1, "a": [True, None, "s"]}, "map[a:[true <nil> s] b:1]"),
    (1.5, "1.5"), (2.0, "2"), (1e21, "1e+21"), (1e-05, "1e-05"), (0.0001, "0.0001"),
    ([], "[]"), ({}, "map[]"),
])
def test_go_format_prints_like_fmt_percent_plus_v(value: Any, expected: str) -> None:
    assert fv.go_format(value) == expected


# --- type errors ------------------------------------------------------------------------------

def test_a_valid_deployment_decodes() -> None:
    assert fv.decode_error(deployment(), DEPLOYMENT) is None
    assert fv.type_errors(deployment(), DEPLOYMENT) == []


def test_null_is_accepted_everywhere() -> None:
    obj = deployment(replicas=None, selector=None)
    obj["metadata"]["labels"] = None
    assert fv.decode_error(obj, DEPLOYMENT) is None
    assert fv.type_errors(obj, DEPLOYMENT) == []


@pytest.mark.parametrize("path,value,expected", [
    ("spec.replicas", "two",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type "
     "int32"),
    ("spec.replicas", 1.5,
     "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of "
     "type int32"),
    ("spec.replicas", 3_000_000_000,
     "json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec."
     "replicas of type int32"),
    ("spec.paused", "yes",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type "
     "bool"),
    ("spec", "x",
     "json: cannot unmarshal string into Go struct field Deployment.spec of type "
     "v1.DeploymentSpec"),
    ("metadata.labels.app", 1,
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
     "string"),
    ("metadata.creationTimestamp", 5,
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp "
     "of type string"),
    ("spec.template.spec.containers", {},
     "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers "
     "of type []v1.Container"),
    ("spec.template.spec.containers.0.ports.0.containerPort", "80",
     "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec."
     "containers.ports.containerPort of type int32"),
    ("spec.selector.matchLabels", ["app"],
     "json: cannot unmarshal array into Go struct field LabelSelector.spec.selector.matchLabels "
     "of type map[string]string"),
    ("spec.strategy.rollingUpdate.maxSurge", True,
     "json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy."
     "rollingUpdate.maxSurge of type int32"),
    ("spec.template.spec.containers.0.resources.limits.cpu", "1x",
     "quantities must match the regular expression "
     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("spec.template.spec.containers.0.resources.limits.cpu", "1Zi",
     "quantities must match the regular expression "
     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("spec.template.spec.containers.0.resources.limits.cpu", "1kk",
     "unable to parse quantity's suffix"),
], ids=["string for int32", "fraction for int32", "int32 overflow", "string for bool",
        "string for a struct", "number in a string map", "number for a time",
        "object for a list", "string in a nested list", "array for a map",
        "bool for IntOrString", "bad quantity", "letter outside the quantity alphabet",
        "unknown quantity suffix"])
def test_decode_errors_match_gos_json_decoder(path: str, value: Any, expected: str) -> None:
    assert fv.decode_error(_set(deployment(), path, value), DEPLOYMENT) == expected


@pytest.mark.parametrize("path,value", [
    ("spec.strategy.rollingUpdate.maxSurge", 3),
    ("spec.strategy.rollingUpdate.maxSurge", "30%"),
    ("spec.template.spec.containers.0.resources.limits.cpu", 2),
    ("spec.template.spec.containers.0.resources.limits.cpu", 0.5),
    ("spec.template.spec.containers.0.resources.limits.memory", "1.5e3"),
], ids=["int IntOrString", "string IntOrString", "int quantity", "fraction quantity",
        "exponent quantity"])
def test_wrapper_types_accept_both_forms(path: str, value: Any) -> None:
    assert fv.decode_error(_set(deployment(), path, value), DEPLOYMENT) is None


def test_a_failing_unmarshaler_ends_the_decode_before_an_earlier_type_error() -> None:
    obj = _set(_set(deployment(), "spec.replicas", "two"),
               "spec.template.spec.containers.0.resources.limits.cpu", "bad")
    assert (fv.decode_error(obj, DEPLOYMENT) or "").startswith("quantities must match")
    obj = _set(_set(deployment(), "spec.replicas", "two"), "spec.paused", "no")
    assert "spec.replicas" in (fv.decode_error(obj, DEPLOYMENT) or "")   # first saved error


def test_secret_data_must_be_strings() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": 1}}
    assert fv.decode_error(secret, "io.k8s.api.core.v1.Secret") == (
        "json: cannot unmarshal number into Go struct field Secret.data of type []uint8")


def test_type_errors_are_causes_worded_like_the_crd_validator() -> None:
    obj = _set(_set(deployment(), "spec.replicas", "two"),
               "spec.template.spec.containers.0.ports.0.containerPort", "80")
    assert fv.type_errors(obj, DEPLOYMENT) == [
        {"reason": "FieldValueTypeInvalid", "field": "spec.replicas",
         "message": 'Invalid value: "string": spec.replicas in body must be of type integer: '
                    '"string"'},
        {"reason": "FieldValueTypeInvalid",
         "field": "spec.template.spec.containers[0].ports[0].containerPort",
         "message": 'Invalid value: "string": spec.template.spec.containers[0].ports[0].'
                    'containerPort in body must be of type integer: "string"'}]


def test_type_errors_know_int_or_string(crd: str) -> None:
    obj = {"spec": {"port": "http", "size": 3, "tags": {"a": "b"}}}
    assert fv.type_errors(obj, crd) == []
    bad = {"spec": {"port": True, "size": "big", "tags": {"a": 1}}}
    assert [c["field"] for c in fv.type_errors(bad, crd)] == ["spec.port", "spec.size",
                                                                 "spec.tags.a"]


def test_nothing_is_mutated_by_the_checks() -> None:
    obj = _set(deployment(), "spec.replicas", "two")
    before = copy.deepcopy(obj)
    fv.decode_error(obj, DEPLOYMENT)
    fv.type_errors(obj, DEPLOYMENT)
    fv.unknown_fields(obj, DEPLOYMENT)
    assert obj == before
