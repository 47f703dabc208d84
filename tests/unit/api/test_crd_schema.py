"""navio.api.crd: structural validation, pruning, defaulting, CEL, printer columns, CRD
validation, and the registry/OpenAPI view of a custom kind."""

from __future__ import annotations

import datetime as dt

import pytest

from navio.api import openapi, openapi_proto, schema
from navio.api.crd import CustomResource, cel, jsonpath, pruning, validator
from navio.api.crd.definition import default_crd, prepare_crd_create, validate_crd
from navio.api.crd.printer import printer_for
from navio.api.registry import Registry, default_registry, version_priority

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "exclusiveMaximum": True,
                         "maximum": 10, "default": 2},
                "name": {"type": "string", "maxLength": 3, "minLength": 1},
                "items": {"type": "array", "minItems": 1, "uniqueItems": True,
                          "items": {"type": "object", "properties": {
                              "k": {"type": "string"}, "v": {"type": "string",
                                                             "default": "d"}}},
                          "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "empty": {"type": "object"},
                "nothing": {"type": "string", "nullable": True},
                "when": {"type": "string", "format": "date-time"},
                "embedded": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
            },
        },
    },
}


def _messages(errs: list[dict[str, str]]) -> list[str]:
    return [f"{e['field']}: {e['message']}" for e in errs]


def test_structural_validation_messages_match_kube() -> None:
    obj = {"spec": {"size": 10, "name": "long", "items": [{"k": "a"}, {"k": "a"}],
                    "labels": {"x": 1}, "nothing": None, "when": "yesterday",
                    "embedded": {"kind": "Pod"}}}
    msgs = _messages(validator.validate(SCHEMA, obj))
    assert "spec.size: Invalid value: 10: spec.size in body should be less than 10" in msgs
    assert "spec.name: Too long: may not be longer than 3" in msgs
    assert 'spec.items[1]: Duplicate value: map[string]interface {}{"k":"a"}' in msgs
    assert 'spec.labels.x: Invalid value: "integer": spec.labels.x in body must be of type ' \
           'string: "integer"' in msgs
    assert 'spec.when: Invalid value: "yesterday": spec.when in body must be of type ' \
           'date-time: "yesterday"' in msgs
    assert "spec.embedded.apiVersion: Required value: must not be empty" in msgs
    assert not any(m.startswith("spec.nothing") for m in msgs)
    assert _messages(validator.validate(SCHEMA, {"spec": {}})) == ["spec.size: Required value"]
    assert _messages(validator.validate(SCHEMA, {"spec": {"size": 0, "items": []}})) == [
        "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
        "spec.items: Invalid value: []interface {}{}: spec.items in body should have at "
        "least 1 items"]


def test_pruning_keeps_what_the_schema_allows() -> None:
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n"}, "top": 1,
           "spec": {"size": 1, "bad": 2, "free": {"x": {"y": 1}}, "empty": {"gone": 1},
                    "items": [{"k": "a", "junk": 1}], "labels": {"a": "b"},
                    "embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {},
                                 "spec": {}}}}
    dropped = pruning.prune(obj, SCHEMA)
    assert sorted(dropped) == ["spec.bad", "spec.empty.gone", "spec.items[0].junk", "top"]
    assert obj["spec"]["free"] == {"x": {"y": 1}} and obj["spec"]["empty"] == {}
    assert obj["metadata"] == {"name": "n"} and obj["spec"]["embedded"]["kind"] == "Pod"


def test_defaulting_fills_nested_and_list_items() -> None:
    obj = {"spec": {"items": [{"k": "a"}], "nothing": None}}
    pruning.apply_defaults(obj, SCHEMA)
    assert obj["spec"]["size"] == 2
    assert obj["spec"]["items"] == [{"k": "a", "v": "d"}]
    assert obj["spec"]["nothing"] is None   # nullable: null stays


def test_cel_rules_messages_reasons_and_transitions() -> None:
    sch = {"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.a <= self.b"},
            {"rule": "self.name.lowerAscii() == self.name", "message": "lower case only",
             "fieldPath": ".name", "reason": "FieldValueForbidden"},
            {"rule": "self.b >= oldSelf.b", "messageExpression": "'b shrank to ' + "
                                                                 "string(self.b)"},
            {"rule": "[1, 2, 3].isSorted() && 'a,b'.split(',').size() == 2"},
        ],
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                       "name": {"type": "string"}}}}}
    errs = cel.check_rules(sch, {"spec": {"a": 3, "b": 1, "name": "X"}})
    assert _messages(errs) == ['spec: Invalid value: "object": failed rule: self.a <= self.b',
                               "spec.name: Forbidden: lower case only"]
    errs = cel.check_rules(sch, {"spec": {"a": 0, "b": 1, "name": "x"}},
                           {"spec": {"a": 0, "b": 2, "name": "x"}}, True)
    assert _messages(errs) == ['spec: Invalid value: "object": b shrank to 1']
    # Ratcheting: an unchanged value is not re-checked.
    same = {"spec": {"a": 3, "b": 1, "name": "X"}}
    assert cel.check_rules(sch, same, same, True) == []
    assert cel.compile_error("self.a +") is not None
    assert cel.compile_error("self.a + 1 > 2") is None


def test_cel_kubernetes_libraries() -> None:
    sch = {"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "isQuantity(self.mem) && quantity(self.mem).isGreaterThan("
                     "quantity('1Gi'))", "message": "mem"},
            {"rule": "isIP(self.addr) && cidr('10.0.0.0/8').containsIP(self.addr)",
             "message": "ip"},
            {"rule": "isURL(self.u) && url(self.u).getHost() == 'example.com'",
             "message": "url"},
            {"rule": "'%s-%d'.format([self.addr, 3]) == '10.1.2.3-3'", "message": "fmt"},
            {"rule": "self.addr.split('.').size() == 4 && self.u.upperAscii() != self.u",
             "message": "strings"}],
        "properties": {"mem": {"type": "string"}, "addr": {"type": "string"},
                       "u": {"type": "string"}}}}}
    good = {"spec": {"mem": "2Gi", "addr": "10.1.2.3", "u": "https://example.com/x"}}
    assert cel.check_rules(sch, good) == []
    bad = {"spec": {"mem": "512Mi", "addr": "192.168.1.1", "u": "nope"}}
    assert [e["message"].rsplit(": ", 1)[1] for e in cel.check_rules(sch, bad)] == [
        "mem", "ip", "url", "fmt"]


def test_cel_cost_limits() -> None:
    assert cel.comprehension_depth("self.all(x, self.all(y, x != y))") == 2
    assert cel.comprehension_depth("self.all(x, x > 0) && self.exists(y, y == 'a.all(')") == 1
    sch = {"type": "object", "properties": {"l": {
        "type": "array", "items": {"type": "integer"},
        "x-kubernetes-validations": [{"rule": "self.all(x, self.exists(y, y >= x))"}]}}}
    assert cel.check_rules(sch, {"l": list(range(50))}) == []
    errs = cel.check_rules(sch, {"l": list(range(2000))})
    assert _messages(errs) == ['l: Invalid value: "array": call cost exceeds limit for rule: '
                               'self.all(x, self.exists(y, y >= x))']
    many = {"type": "object", "properties": {
        f"l{i}": sch["properties"]["l"] for i in range(20)}}
    errs = cel.check_rules(many, {f"l{i}": list(range(900)) for i in range(20)})
    assert _messages(errs)[-1].endswith("validation failed due to running out of cost budget, "
                                        "no further validation rules will be run")


def test_jsonpath_and_printer_columns() -> None:
    obj = {"metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"n": 3, "f": 1.0}, "status": {"conditions": [
               {"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}}
    assert jsonpath.find(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath.find(obj, ".status.conditions[*].type") == ["Ready", "Other"]
    assert jsonpath.find(obj, ".spec.missing") == []
    # client-go slices, as Kubeflow's STATE column (`.status.conditions[-1:].type`) uses.
    assert jsonpath.find(obj, ".status.conditions[-1:].type") == ["Other"]
    assert jsonpath.find(obj, ".status.conditions[0:1].type") == ["Ready"]
    printer = printer_for([
        {"name": "N", "type": "integer", "jsonPath": ".spec.n"},
        {"name": "F", "type": "integer", "jsonPath": ".spec.f"},
        {"name": "Ready", "type": "string",
         "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.zzz", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}])
    assert [c["name"] for c in printer.columns] == ["Name", "N", "F", "Ready", "Missing",
                                                     "Age"]
    assert printer.columns[4]["priority"] == 1
    now = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.timezone.utc)
    assert printer.cells(obj, now) == ["n", 3, 1, "True", None, "5m"]
    default = printer_for([])
    assert [c["name"] for c in default.columns] == ["Name", "Age"]


def _crd(**spec: object) -> dict:
    base = {"group": "stable.example.com", "scope": "Namespaced",
            "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": SCHEMA},
                          "subresources": {"status": {}}}]}
    base.update(spec)
    return {"metadata": {"name": "crontabs.stable.example.com"}, "spec": base}


def test_crd_validation_and_defaults() -> None:
    crd = _crd()
    default_crd(crd)
    assert crd["spec"]["names"]["singular"] == "crontab"
    assert crd["spec"]["names"]["listKind"] == "CronTabList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert validate_crd(crd) == []
    prepare_crd_create(crd)
    assert crd["status"] == {"acceptedNames": {"kind": "", "plural": ""},
                             "storedVersions": ["v1"]}
    bad = _crd(group="nodots", scope="Global")
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {
        "type": "object", "properties": {"spec": {"properties": {}},
                                         "x": {"type": "string", "default": 5},
                                         "y": {"type": "string",
                                               "x-kubernetes-validations": [
                                                   {"rule": "self +"}]}}}
    default_crd(bad)
    msgs = _messages(validate_crd(bad))
    assert 'metadata.name: Invalid value: "crontabs.stable.example.com": must be ' \
           'spec.names.plural+"."+spec.group' in msgs
    assert 'spec.group: Invalid value: "nodots": should be a domain with at least one dot' \
        in msgs
    assert 'spec.scope: Unsupported value: "Global": supported values: "Cluster", ' \
           '"Namespaced"' in msgs
    assert ("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: "
            "must not be empty for specified object fields") in msgs
    assert any(m.startswith("spec.versions[0].schema.openAPIV3Schema.properties[x].default: "
                            "Invalid value: 5:") for m in msgs)
    assert any(m.startswith("spec.versions[0].schema.openAPIV3Schema.properties[y]."
                            "x-kubernetes-validations[0].rule: Invalid value: \"self +\": "
                            "compilation failed") for m in msgs)


def test_custom_kind_in_registry_and_openapi() -> None:
    crd = _crd(versions=[
        {"name": "v1beta1", "served": True, "storage": False, "deprecated": True,
         "schema": {"openAPIV3Schema": SCHEMA}},
        {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": SCHEMA},
         "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size",
                                                  "statusReplicasPath": ".status.size"}}}])
    default_crd(crd)
    cr = CustomResource.from_crd(crd)
    kinds = cr.kinds()
    assert [(k.version, [s.name for s in k.subresources]) for k in kinds] == [
        ("v1beta1", []), ("v1", ["status", "scale"])]
    assert cr.warnings("v1beta1") == ["stable.example.com/v1beta1 CronTab is deprecated"]
    stored = cr.to_storage({"apiVersion": "stable.example.com/v1beta1", "spec": {}})
    assert stored["apiVersion"] == "stable.example.com/v1"
    read = cr.from_storage(stored, "v1beta1")
    assert read["apiVersion"] == "stable.example.com/v1beta1" and read["spec"]["size"] == 2
    registry: Registry = default_registry()
    schema.add_definitions(cr.definitions())
    for k in kinds:
        registry.add(k)
    assert dict(registry.groups())["stable.example.com"] == ["v1", "v1beta1"]
    doc = openapi.v3_document_at(registry, "apis/stable.example.com/v1")
    assert doc is not None
    root = doc["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert root["properties"]["metadata"]["allOf"][0]["$ref"].endswith("v1.ObjectMeta")
    assert root["properties"]["spec"]["properties"]["size"]["default"] == 2
    v2 = openapi.v2_document(registry)
    assert "com.example.stable.v1.CronTab" in v2["definitions"]
    assert openapi_proto.encode(v2)            # the protobuf kubectl explain/apply may ask


@pytest.mark.parametrize("versions,expected", [
    (["v1alpha1", "v1", "v2beta1", "v1beta2", "foo", "v10"],
     ["v10", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]),
])
def test_version_priority(versions: list[str], expected: list[str]) -> None:
    assert sorted(versions, key=version_priority) == expected


def test_a_resources_own_metadata_is_never_pruned_even_when_the_schema_names_it() -> None:
    """kube skips apiVersion/kind/metadata of the root and of embedded resources outright: a
    schema with `metadata: {type: object}` (controller-gen's) must not prune the name."""
    sch = {"type": "object", "properties": {"metadata": {"type": "object"},
                                            "spec": {"type": "object"}}}
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n", "labels": {"x": "y"}},
           "spec": {}}
    assert pruning.prune(obj, sch) == []
    assert obj["metadata"] == {"name": "n", "labels": {"x": "y"}}
