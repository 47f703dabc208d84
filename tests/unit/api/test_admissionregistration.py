"""admissionregistration.k8s.io/v1 webhook configurations (#4): defaults, validation and
table columns as kube-apiserver serves them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from navio.api import validation
from navio.api.defaults import apply_defaults
from navio.api.tables import table_cells, table_columns

G = "admissionregistration.k8s.io"


def _config(kind: str, **hook: Any) -> dict[str, Any]:
    base = {"name": "h.navio.test", "clientConfig": {"url": "https://127.0.0.1/x"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"]}],
            "sideEffects": "None", "admissionReviewVersions": ["v1"]}
    base.update(hook)
    obj = {"apiVersion": f"{G}/v1", "kind": kind, "metadata": {"name": "c"}, "webhooks": [base]}
    apply_defaults(G, kind, obj)
    return obj


def _messages(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in validation.validate(G, obj["kind"], obj, old)]


def test_defaults() -> None:
    m = _config("MutatingWebhookConfiguration",
                clientConfig={"service": {"namespace": "n", "name": "s"}})["webhooks"][0]
    assert (m["failurePolicy"], m["matchPolicy"], m["namespaceSelector"], m["objectSelector"],
            m["timeoutSeconds"], m["reinvocationPolicy"], m["rules"][0]["scope"],
            m["clientConfig"]["service"]["port"]) == ("Fail", "Equivalent", {}, {}, 10, "Never",
                                                      "*", 443)
    v = _config("ValidatingWebhookConfiguration")["webhooks"][0]
    assert "reinvocationPolicy" not in v


@pytest.mark.parametrize("hook,message", [
    ({"name": ""}, "webhooks[0].name: Required value"),
    ({"sideEffects": "Unknown"}, 'webhooks[0].sideEffects: Unsupported value: "Unknown": '
                                 'supported values: "None", "NoneOnDryRun"'),
    ({"timeoutSeconds": 0}, "webhooks[0].timeoutSeconds: Invalid value: 0: the timeout value "
                            "must be between 1 and 30 seconds"),
    ({"failurePolicy": "Maybe"}, 'webhooks[0].failurePolicy: Unsupported value: "Maybe": '
                                 'supported values: "Fail", "Ignore"'),
    ({"admissionReviewVersions": []}, "webhooks[0].admissionReviewVersions: Required value: "
                                      "must specify one of v1, v1beta1"),
    ({"admissionReviewVersions": ["v2"]}, 'webhooks[0].admissionReviewVersions: Invalid value: '
                                          '[]string{"v2"}: must include at least one of v1, '
                                          'v1beta1'),
    ({"clientConfig": {}}, "webhooks[0].clientConfig: Required value: exactly one of url or "
                           "service is required"),
    ({"clientConfig": {"url": "https://u:p@h/x#f"}},
     'webhooks[0].clientConfig.url: Invalid value: "u:p": user information is not permitted '
     'in the URL'),
    ({"clientConfig": {"service": {"namespace": "n", "name": "s", "path": "x/Y"}}},
     'webhooks[0].clientConfig.service.path: Invalid value: "x/Y": must start with a \'/\''),
    ({"rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                 "resources": ["*/*", "pods"]}]},
     'webhooks[0].rules[0].resources: Invalid value: []string{"*/*", "pods"}: if \'*/*\' is '
     'present, must not specify other resources'),
    ({"rules": [{"operations": ["PATCH"], "apiGroups": [""], "apiVersions": ["v1"],
                 "resources": ["pods"], "scope": "Everywhere"}]},
     'webhooks[0].rules[0].operations[0]: Unsupported value: "PATCH": supported values: "*", '
     '"CONNECT", "CREATE", "DELETE", "UPDATE"'),
], ids=lambda v: str(v)[:60])
def test_validation_messages(hook: dict[str, Any], message: str) -> None:
    assert message in _messages(_config("ValidatingWebhookConfiguration", **hook))


def test_duplicate_names_and_update_relaxation() -> None:
    obj = _config("MutatingWebhookConfiguration")
    obj["webhooks"].append(dict(obj["webhooks"][0]))
    assert 'webhooks[1].name: Duplicate value: "h.navio.test"' in _messages(obj)
    # An object stored with a duplicate (by an older server) may still be updated.
    assert not [m for m in _messages(obj, obj) if "Duplicate" in m]


def test_table_counts_webhooks() -> None:
    cols = [c["name"] for c in table_columns(G, "ValidatingWebhookConfiguration")]
    assert cols == ["Name", "Webhooks", "Age"]
    obj = _config("ValidatingWebhookConfiguration")
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    now = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.timezone.utc)
    assert table_cells(G, "ValidatingWebhookConfiguration", obj, now) == ["c", 1, "5m"]
