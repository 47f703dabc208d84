"""Tables for admissionregistration.k8s.io/v1 webhook configurations and policies.

printMutatingWebhook and printValidatingWebhook (printers.go, v1.32): NAME, WEBHOOKS (the
number of webhooks in the configuration, an integer column) and AGE.
printValidatingAdmissionPolicy: NAME, VALIDATIONS, PARAMKIND (`apiVersion/kind` or
`<unset>`), AGE; printValidatingAdmissionPolicyBinding: NAME, POLICYNAME, PARAMREF
(`namespace/name`, `*/name`, or `<unset>`), AGE.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import Printer, age, age_column, column, get, name_column

__all__ = ["PRINTERS"]

WEBHOOK_COLUMNS = (
    name_column(),
    column("Webhooks", "integer", "Webhooks indicates the number of webhooks in this "
                                  "configuration"),
    age_column(),
)


def webhook_configuration_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [get(obj, "metadata", "name", default=""), len(obj.get("webhooks") or ()),
            age(obj, now)]


POLICY_COLUMNS = (
    name_column(),
    column("Validations", "integer", "Validations indicates the number of validation rules "
                                     "defined in this configuration"),
    column("ParamKind", "string", "ParamKind specifies the kind of resources used to "
                                  "parameterize this policy"),
    age_column(),
)

BINDING_COLUMNS = (
    name_column(),
    column("PolicyName", "string", "PolicyName indicates the policy definition which the "
                                   "policy binding binded to"),
    column("ParamRef", "string", "ParamRef indicates the param resource which sets the "
                                 "configration param"),
    age_column(),
)


def policy_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    pk = spec.get("paramKind")
    param_kind = f"{pk.get('apiVersion', '')}/{pk.get('kind', '')}" \
        if isinstance(pk, dict) else "<unset>"
    return [get(obj, "metadata", "name", default=""), len(spec.get("validations") or ()),
            param_kind, age(obj, now)]


def binding_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    ref = spec.get("paramRef")
    param = "<unset>"
    if isinstance(ref, dict):
        name = ref.get("name") or "*"
        param = f"{ref['namespace']}/{name}" if ref.get("namespace") else f"*/{name}"
    return [get(obj, "metadata", "name", default=""), spec.get("policyName", ""), param,
            age(obj, now)]


PRINTERS = {
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"):
        Printer(POLICY_COLUMNS, policy_cells),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"):
        Printer(BINDING_COLUMNS, binding_cells),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"):
        Printer(WEBHOOK_COLUMNS, webhook_configuration_cells),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"):
        Printer(WEBHOOK_COLUMNS, webhook_configuration_cells),
}
