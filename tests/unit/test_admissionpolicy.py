"""ValidatingAdmissionPolicy: evaluation (navio/apiserver/policies.py), validation, defaults
and table cells of the policy kinds."""

from __future__ import annotations

import contextvars
from datetime import datetime, timezone
from typing import Any

from navio.api.defaults.admissionregistration import default_binding, default_policy
from navio.api.tables.admissionregistration import binding_cells, policy_cells
from navio.api.validation.admissionpolicy import validate_binding, validate_policy
from navio.apiserver import admissionnotes
from navio.apiserver.policies import PolicyAdmission, PolicyDenied

ENV: dict[str, Any] = {"object": {"metadata": {"name": "d"}, "spec": {"replicas": 5}},
                       "oldObject": None, "request": {"operation": "CREATE"},
                       "params": {"data": {"max": "3"}}, "namespaceObject": None}


def _spec(**kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"failurePolicy": "Fail", "validations": [
        {"expression": "object.spec.replicas <= int(params.data.max)"}]}
    spec.update(kw)
    return spec


def test_false_validation_messages_and_reasons() -> None:
    assert PolicyAdmission._evaluate("p", _spec(), ENV) == [
        ("failed expression: object.spec.replicas <= int(params.data.max)", "Invalid")]
    spec = _spec(validations=[{"expression": "object.spec.replicas < 2", "message": "too many",
                               "reason": "Forbidden"},
                              {"expression": "false",
                               "messageExpression": "'got ' + string(object.spec.replicas)"}])
    assert PolicyAdmission._evaluate("p", spec, ENV) == [("too many", "Forbidden"),
                                                         ("got 5", "Invalid")]


def test_variables_and_match_conditions() -> None:
    spec = _spec(variables=[{"name": "limit", "expression": "int(params.data.max) + 10"}],
                 validations=[{"expression": "object.spec.replicas <= variables.limit"}])
    assert PolicyAdmission._evaluate("p", spec, ENV) == []
    spec = _spec(matchConditions=[{"name": "never", "expression": "false"}])
    assert PolicyAdmission._evaluate("p", spec, ENV) == []


def test_errors_follow_the_failure_policy() -> None:
    spec = _spec(validations=[{"expression": "object.spec.missing > 1"}])
    (fail,) = PolicyAdmission._evaluate("p", spec, ENV)
    assert fail[0] == "expression 'object.spec.missing > 1' resulted in error: " \
                      "no such key: missing"
    spec["failurePolicy"] = "Ignore"
    assert PolicyAdmission._evaluate("p", spec, ENV) == []


def test_audit_annotations_are_recorded() -> None:
    spec = _spec(auditAnnotations=[{"key": "replicas",
                                    "valueExpression": "string(object.spec.replicas)"}])
    def run() -> admissionnotes.Notes:
        notes = admissionnotes.begin()
        PolicyAdmission._evaluate("p", spec, ENV)
        return notes
    # In a context of its own, so that no notes outlive the test.
    assert contextvars.copy_context().run(run).annotations["p/replicas"] == "5"


def test_denial_status() -> None:
    exc = PolicyDenied("msg", "Forbidden", {})
    assert (exc.code, exc.reason) == (403, "Forbidden")
    assert PolicyDenied("msg", "Invalid", {}).code == 422


def test_defaults_validation_and_cells() -> None:
    policy: dict[str, Any] = {"metadata": {"name": "p", "creationTimestamp":
                                           "2026-01-01T00:00:00Z"},
                              "spec": {"matchConstraints": {"resourceRules": [
                                  {"apiGroups": ["apps"], "apiVersions": ["v1"],
                                   "operations": ["CREATE"], "resources": ["deployments"]}]},
                                  "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                                  "validations": [{"expression": "true"}]}}
    default_policy(policy)
    mc = policy["spec"]["matchConstraints"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert (mc["matchPolicy"], mc["namespaceSelector"], mc["resourceRules"][0]["scope"]) == \
        ("Equivalent", {}, "*")
    assert validate_policy(policy) == []
    now = datetime(2026, 1, 1, 0, 5, tzinfo=timezone.utc)
    assert policy_cells(policy, now)[:3] == ["p", 1, "v1/ConfigMap"]
    empty = {"metadata": {"name": "p"}, "spec": {}}
    fields = {e["field"] for e in validate_policy(empty)}
    assert {"spec.matchConstraints", "spec.validations"} <= fields
    binding: dict[str, Any] = {"metadata": {"name": "b", "creationTimestamp":
                                            "2026-01-01T00:00:00Z"},
                               "spec": {"policyName": "p", "validationActions": ["Deny"],
                                        "paramRef": {"name": "limits", "namespace": "ns",
                                                     "parameterNotFoundAction": "Allow"},
                                        "matchResources": {}}}
    default_binding(binding)
    assert binding["spec"]["matchResources"]["matchPolicy"] == "Equivalent"
    assert validate_binding(binding) == []
    assert binding_cells(binding, now)[:3] == ["b", "p", "ns/limits"]
    bad = {"metadata": {"name": "b"}, "spec": {"validationActions": ["Deny", "Deny", "Nope"],
                                               "paramRef": {}}}
    fields = {e["field"] for e in validate_binding(bad)}
    assert {"spec.policyName", "spec.validationActions[1]", "spec.validationActions[2]",
            "spec.paramRef", "spec.paramRef.parameterNotFoundAction"} <= fields
