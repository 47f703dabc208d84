"""matchConditions of admission webhooks (navio/api/matchconditions.py) and their validation
when a configuration is written."""

from __future__ import annotations

from typing import Any

from navio.api.matchconditions import match
from navio.api.validation.admissionregistration import validate_validating_configuration

VARS: dict[str, Any] = {
    "object": {"metadata": {"name": "a", "labels": {"env": "prod"}}, "spec": {"replicas": 3}},
    "oldObject": None,
    "request": {"operation": "CREATE", "userInfo": {"username": "alice",
                                                    "groups": ["devs"]}},
}


def _c(*exprs: str) -> list[dict[str, str]]:
    return [{"name": f"c{i}", "expression": e} for i, e in enumerate(exprs)]


def test_all_true_calls() -> None:
    r = match(_c("object.metadata.labels.env == 'prod'", "oldObject == null",
                 "request.userInfo.groups.exists(g, g == 'devs')"), VARS, "Fail")
    assert r.matches and r.error is None


def test_first_false_skips_and_wins_over_errors() -> None:
    r = match(_c("object.metadata.nope == 1", "object.spec.replicas > 5"), VARS, "Fail")
    assert not r.matches and r.error is None and r.failed_condition == "c1"


def test_errors_follow_the_failure_policy() -> None:
    r = match(_c("object.metadata.nope == 1"), VARS, "Fail")
    assert not r.matches
    assert r.error == "expression 'object.metadata.nope == 1' resulted in error: " \
                      "no such key: nope"
    r = match(_c("object.metadata.nope == 1"), VARS, "Ignore")
    assert not r.matches and r.error is None
    r = match(_c("object.metadata.nope == 1", "object.metadata.other == 2"), VARS, "Fail")
    assert r.error is not None and r.error.startswith("[expression")


def test_non_boolean_is_an_error() -> None:
    r = match(_c("object.spec.replicas"), VARS, "Fail")
    assert r.error is not None and "resulted in error" in r.error


def _config(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "cfg"}, "webhooks": [{
        "name": "hook.example.com", "clientConfig": {"url": "https://127.0.0.1/x"},
        "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "matchConditions": conditions}]}


def test_validation_compiles_expressions_and_checks_names() -> None:
    assert validate_validating_configuration(_config(_c("object != null"))) == []
    errs = validate_validating_configuration(_config(
        [{"name": "bad name", "expression": "object.(("}, {"name": "x"}]))
    fields = {e["field"]: e["message"] for e in errs}
    assert "compilation failed" in fields["webhooks[0].matchConditions[0].expression"]
    assert "webhooks[0].matchConditions[0].name" in fields
    assert fields["webhooks[0].matchConditions[1].expression"].startswith("Required value")
