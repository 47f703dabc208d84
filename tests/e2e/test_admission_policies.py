"""ValidatingAdmissionPolicy and its bindings (#4) with the real kubectl.

A policy refuses Deployments with more replicas than a ConfigMap parameter allows; bound
with Deny the write is refused with kube's message, with Warn kubectl prints the warning and
the write goes through. Every policy selects only the test's labelled namespace.
"""

from __future__ import annotations

import json
from typing import Any

from cluster import Kubectl, wait_for

_LABEL = "vap-test"


def _policy(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
            "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                     "matchConstraints": {
                         "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                            "operations": ["CREATE", "UPDATE"],
                                            "resources": ["deployments"]}],
                         "namespaceSelector": {"matchLabels": {_LABEL: ns}}},
                     "validations": [{"expression":
                                      "object.spec.replicas <= int(params.data.maxReplicas)",
                                      "messageExpression":
                                      "'replicas must be at most ' + params.data.maxReplicas"}],
                     **spec}}
    return body


def _binding(name: str, policy: str, ns: str, actions: list[str]) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
            "spec": {"policyName": policy, "validationActions": actions,
                     "paramRef": {"name": "limits", "namespace": ns,
                                  "parameterNotFoundAction": "Deny"}}}


def _apply(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def _deployment(kubectl: Kubectl, ns: str, name: str, replicas: int) -> Any:
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c",
                                                           "image": "busybox"}]}}}}
    return kubectl.run("apply", "-f", "-", input=json.dumps(body), check=False)


def test_policy_with_configmap_params_denies_and_warns(kubectl: Kubectl, ns: str) -> None:
    kubectl("label", "namespace", ns, f"{_LABEL}={ns}")
    kubectl("create", "configmap", "limits", "-n", ns, "--from-literal=maxReplicas=3")
    policy, binding = f"max-replicas-{ns}", f"max-replicas-{ns}-binding"
    try:
        _apply(kubectl, _policy(policy, ns))
        _apply(kubectl, _binding(binding, policy, ns, ["Deny"]))
        # Served with defaults and printer columns.
        got = kubectl.json("get", "validatingadmissionpolicy", policy)
        assert got["spec"]["failurePolicy"] == "Fail"
        assert got["spec"]["matchConstraints"]["matchPolicy"] == "Equivalent"
        table = kubectl("get", "validatingadmissionpolicies", policy)
        assert "VALIDATIONS" in table and "PARAMKIND" in table and "v1/ConfigMap" in table
        table = kubectl("get", "validatingadmissionpolicybindings", binding)
        assert "POLICYNAME" in table and f"{ns}/limits" in table

        def denied() -> Any:
            r = _deployment(kubectl, ns, "big", 5)
            if r.returncode == 0:
                kubectl("delete", "deployment", "big", "-n", ns)
                return None
            return r
        r = wait_for(denied, 30, "the policy to take effect")
        assert (f'The deployments "big" is invalid: : ValidatingAdmissionPolicy \'{policy}\' '
                f"with binding '{binding}' denied request: replicas must be at most 3"
                ) in r.stderr, r.stderr
        assert _deployment(kubectl, ns, "small", 2).returncode == 0
        # An UPDATE past the limit is refused as well (the rule names `deployments`, so the
        # scale subresource is not matched, as on kube).
        r = kubectl.run("patch", "deployment", "small", "-n", ns, "-p",
                        '{"spec":{"replicas":4}}', check=False)
        assert r.returncode != 0 and "replicas must be at most 3" in r.stderr, r.stderr
        assert kubectl.run("scale", "deployment", "small", "-n", ns,
                           "--replicas=4").returncode == 0

        # Warn: the write goes through and kubectl prints the warning.
        _apply(kubectl, _binding(binding, policy, ns, ["Warn", "Audit"]))

        def warned() -> Any:
            r = _deployment(kubectl, ns, "big", 5)
            return r if r.returncode == 0 else None
        r = wait_for(warned, 30, "the Warn binding to take effect")
        assert (f"Warning: Validation failed for ValidatingAdmissionPolicy '{policy}' with "
                f"binding '{binding}': replicas must be at most 3") in r.stderr, r.stderr

        # Without the parameter object, parameterNotFoundAction Deny refuses.
        _apply(kubectl, _binding(binding, policy, ns, ["Deny"]))
        kubectl("delete", "configmap", "limits", "-n", ns)

        def no_params() -> Any:
            r = _deployment(kubectl, ns, "other", 1)
            if r.returncode == 0:
                kubectl("delete", "deployment", "other", "-n", ns)
                return None
            return r
        r = wait_for(no_params, 30, "the missing parameter to refuse")
        assert "no params found for policy binding with `Deny` parameterNotFoundAction" \
            in r.stderr, r.stderr
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", binding, "--ignore-not-found")
        kubectl("delete", "validatingadmissionpolicy", policy, "--ignore-not-found")


def test_policy_and_binding_validation(kubectl: Kubectl, ns: str) -> None:
    bad = _policy(f"bad-{ns}", ns)
    bad["spec"]["validations"] = [{"expression": "object.((", "reason": "Odd"}]
    r = kubectl.run("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert r.returncode != 0
    assert 'spec.validations[0].expression: Invalid value: "object.((": compilation failed' \
        in r.stderr, r.stderr
    assert 'spec.validations[0].reason: Unsupported value: "Odd"' in r.stderr
    b = _binding(f"bad-{ns}", "x", ns, ["Deny", "Warn"])
    r = kubectl.run("apply", "-f", "-", input=json.dumps(b), check=False)
    assert r.returncode != 0 and "must not contain both Deny and Warn" in r.stderr, r.stderr
