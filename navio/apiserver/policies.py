"""ValidatingAdmissionPolicy: CEL validation in the API server, bound by
ValidatingAdmissionPolicyBindings (k8s.io/apiserver/pkg/admission/plugin/policy/validating,
v1.32).

For a write, each policy whose `matchConstraints` match (rules with equivalents,
excludeResourceRules, resourceNames, namespace and object selectors, as webhooks match) is
evaluated once per binding naming it (whose `matchResources`, if any, match too) and per
parameter object the binding's `paramRef` selects (`paramKind` gives the kind: a ConfigMap,
a custom kind, …; `parameterNotFoundAction: Deny` refuses when none is found). CEL sees
`object`, `oldObject`, `request` (the AdmissionRequest), `params`, `namespaceObject` and
`variables` (the policy's `variables`, in order). matchConditions gate the evaluation as
for webhooks. A validation that is false fails with its `message`, its `messageExpression`
or `failed expression: <expr>`, and its `reason` (Invalid by default); one that cannot be
evaluated fails under failurePolicy Fail and is skipped under Ignore. Each failure goes to
the binding's `validationActions`: Deny refuses the request with kube's
`<resource> "<name>" is forbidden: ValidatingAdmissionPolicy 'P' with binding 'B' denied
request: MSG` (code from the reason, 422 for Invalid, the message as the one cause), Warn
adds `Validation failed for ValidatingAdmissionPolicy 'P' with binding 'B': MSG` as a
warning, Audit records `validation.policy.admission.k8s.io/validation_failure`.
auditAnnotations are recorded as `P/KEY`. The policy kinds themselves are exempt.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from navio.api import errors, matchconditions
from navio.api.crd import cel
from navio.api.selectors.labels import label_selector_from_spec
from navio.api.webhookrules import (Attributes, Equivalent, Webhook, compile_configuration,
                                    invocation, is_exempt, namespace_selector_applies,
                                    object_selector_matches)
from navio.apiserver import admissionnotes
from navio.apiserver.webhookcall import review_for

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.resources import Resources
    from navio.apiserver.webhooks import WebhookAdmission

__all__ = ["PolicyAdmission", "PolicyDenied"]

log = logging.getLogger(__name__)

_GROUP = "admissionregistration.k8s.io"
_CODES = {"Invalid": 422, "Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413}
_AUDIT_KEY = "validation.policy.admission.k8s.io/validation_failure"


class PolicyDenied(errors.ApiError):
    """A Deny decision: kube's admission.NewForbidden with the validation's reason."""

    def __init__(self, message: str, reason: str, details: dict[str, Any]) -> None:
        super().__init__(message, details=details)
        self.reason = reason
        self.code = _CODES.get(reason, 422)


def _matcher(name: str, mr: dict[str, Any] | None) -> Webhook | None:
    """matchResources as a webhook's rules and selectors (None: match everything)."""
    if not isinstance(mr, dict):
        return None
    hook = {"name": name, "rules": mr.get("resourceRules") or [],
            "matchPolicy": mr.get("matchPolicy"),
            "namespaceSelector": mr.get("namespaceSelector") or {},
            "objectSelector": mr.get("objectSelector") or {}}
    return compile_configuration({"metadata": {"name": name}, "webhooks": [hook]}, False)[0]


def _excluders(name: str, mr: dict[str, Any] | None) -> list[tuple[Webhook, set[str]]]:
    out = []
    for rule in (mr or {}).get("excludeResourceRules") or []:
        hook = {"name": name, "rules": [rule], "matchPolicy": (mr or {}).get("matchPolicy")}
        out.append((compile_configuration({"metadata": {"name": name}, "webhooks": [hook]},
                                          False)[0], set(rule.get("resourceNames") or ())))
    return out


def _names_of(mr: dict[str, Any] | None) -> list[set[str]]:
    return [set(r.get("resourceNames") or ()) for r in (mr or {}).get("resourceRules") or []]


class PolicyAdmission:
    """The ValidatingAdmissionPolicy plugin of one API server, over its caches."""

    def __init__(self, resources: "Resources", webhooks: "WebhookAdmission") -> None:
        self.resources = resources
        self.webhooks = webhooks
        self._stamp: Any = None
        self._compiled: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []

    def _objects(self, plural: str) -> list[dict[str, Any]]:
        kind = self.resources.registry.resource(_GROUP, "v1", plural)
        if kind is None:
            return []
        return [o for _, o in self.resources.cache(kind).list()]

    def _policies(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        policies = self._objects("validatingadmissionpolicies")
        if not policies:
            return []
        bindings = self._objects("validatingadmissionpolicybindings")
        stamp = tuple((o["metadata"].get("name"), o["metadata"].get("resourceVersion"))
                      for o in policies + bindings)
        if stamp != self._stamp:
            by_policy: dict[str, list[dict[str, Any]]] = {}
            for b in bindings:
                by_policy.setdefault((b.get("spec") or {}).get("policyName", ""), []).append(b)
            self._compiled = [(p, by_policy.get(p["metadata"].get("name", ""), []))
                              for p in sorted(policies, key=lambda o: o["metadata"]["name"])]
            self._stamp = stamp
        return self._compiled

    # -- matching ------------------------------------------------------------------------------
    def _matches(self, name: str, mr: dict[str, Any] | None, attrs: Attributes
                 ) -> Equivalent | None:
        hook = _matcher(name, mr)
        kind = self.resources.registry.resource(attrs.group, attrs.version, attrs.resource)
        eqs = self.webhooks._equivalents(kind) if kind is not None else []
        if hook is None:
            return Equivalent(attrs.group, attrs.version, attrs.resource, attrs.kind)
        inv = invocation(hook, attrs, eqs)
        if inv is None:
            return None
        names = _names_of(mr)
        if names and attrs.name and all(n and attrs.name not in n for n in names):
            return None
        for ex, ex_names in _excluders(name, mr):
            if invocation(ex, attrs, eqs) is not None and (not ex_names
                                                           or attrs.name in ex_names):
                return None
        try:
            if not namespace_selector_applies(hook, attrs, self.webhooks._namespace_labels):
                return None
            if not object_selector_matches(hook, attrs):
                return None
        except (LookupError, ValueError):
            return None
        return inv

    # -- params --------------------------------------------------------------------------------
    def _params(self, spec: dict[str, Any], binding: dict[str, Any], attrs: Attributes
                ) -> list[Any] | str:
        """The parameter objects to evaluate with ([None] without paramKind), or the
        configuration error that stands for them."""
        pk = spec.get("paramKind")
        if not isinstance(pk, dict):
            return [None]
        ref = (binding.get("spec") or {}).get("paramRef")
        if not isinstance(ref, dict):
            return [None]
        group, _, version = str(pk.get("apiVersion", "")).rpartition("/")
        kind = self.resources.registry.kind(group, version, str(pk.get("kind", "")))
        if kind is None:
            return f"failed to find resource referenced by paramKind: " \
                   f"'{pk.get('apiVersion')}, Kind={pk.get('kind')}'"
        namespace = ""
        if kind.namespaced:
            namespace = ref.get("namespace") or attrs.namespace
            if not namespace:
                return "cannot use namespaced paramRef in policy binding that matches " \
                       "cluster-scoped resources"
        cache = self.resources.cache(kind)
        if ref.get("name"):
            found = cache.get(kind.storage_key(namespace or None, ref["name"]))
            params = [found] if found is not None else []
        else:
            selector = label_selector_from_spec(ref.get("selector") or {})
            params = [o for _, o in cache.list(namespace)
                      if selector.matches((o.get("metadata") or {}).get("labels") or {})]
        if not params:
            if ref.get("parameterNotFoundAction") == "Deny":
                return "no params found for policy binding with `Deny` " \
                       "parameterNotFoundAction"
            return []
        return params

    # -- evaluation ----------------------------------------------------------------------------
    @staticmethod
    def _evaluate(name: str, spec: dict[str, Any], env: dict[str, Any]
                  ) -> list[tuple[str, str]]:
        """(message, reason) of each failed validation; records audit annotations."""
        failure_policy = spec.get("failurePolicy") or "Fail"
        conditions = spec.get("matchConditions") or []
        if conditions:
            result = matchconditions.match(conditions, env, failure_policy)
            if result.error is not None:
                return [(result.error, "Invalid")]
            if not result.matches:
                return []
        variables: dict[str, Any] = {}
        env = {**env, "variables": variables}
        for var in spec.get("variables") or []:
            try:
                variables[var.get("name", "")] = cel.evaluate(var.get("expression", ""), env)
            except Exception:  # noqa: BLE001 - an expression using it fails in its turn
                pass
        failures = []
        for v in spec.get("validations") or []:
            expression = str(v.get("expression") or "")
            try:
                ok = cel.evaluate(expression, env)
            except Exception as exc:  # noqa: BLE001 - the binding raises several types
                ok = f"expression '{expression}' resulted in error: {cel.runtime_message(exc)}"
            if ok is True:
                continue
            if ok is not False:
                if failure_policy == "Fail":
                    failures.append((ok if isinstance(ok, str) else
                                     f"expression '{expression}' resulted in error: no such "
                                     f"overload", "Invalid"))
                continue
            message = v.get("message") or f"failed expression: {expression.strip()}"
            if v.get("messageExpression"):
                try:
                    got = cel.evaluate(v["messageExpression"], env)
                    if isinstance(got, str) and got.strip():
                        message = got
                except Exception:  # noqa: BLE001 - kube falls back to the message
                    pass
            failures.append((message, v.get("reason") or "Invalid"))
        for a in spec.get("auditAnnotations") or []:
            try:
                value = cel.evaluate(str(a.get("valueExpression") or ""), env)
            except Exception:  # noqa: BLE001
                continue
            if isinstance(value, str):
                admissionnotes.annotate(f"{name}/{a.get('key')}", value)
        return failures

    async def validate(self, resources: "Resources", request: "Request") -> None:
        """The plugin (a `Resources.validators` entry)."""
        kind = request.kind
        if is_exempt(kind.group, kind.plural):
            return
        compiled = self._policies()
        if not compiled:
            return
        if request.operation == "DELETE":
            obj, old = None, request.old
        else:
            obj, old = request.obj, request.old if request.operation == "UPDATE" else None
        attrs = self.webhooks._attributes(request, obj, old)
        denied: list[tuple[str, str]] = []
        audits: list[dict[str, Any]] = []
        for policy, bindings in compiled:
            pname = policy["metadata"].get("name", "")
            spec = policy.get("spec") or {}
            inv = self._matches(pname, spec.get("matchConstraints"), attrs)
            if inv is None:
                continue
            _, body = review_for(("v1",), inv, attrs, request)
            req = body["request"]
            ns_obj = None
            if attrs.namespace:
                ns_kind = self.resources.registry.resource("", "v1", "namespaces")
                if ns_kind is not None:
                    ns_obj = self.resources.cache(ns_kind).get(
                        ns_kind.storage_key(None, attrs.namespace))
            for binding in bindings:
                bname = binding["metadata"].get("name", "")
                bspec = binding.get("spec") or {}
                if bspec.get("matchResources") is not None and \
                        self._matches(bname, bspec["matchResources"], attrs) is None:
                    continue
                params = self._params(spec, binding, attrs)
                if isinstance(params, str):
                    if (spec.get("failurePolicy") or "Fail") == "Ignore":
                        continue
                    failures = [(f"failed to configure binding: {params}", "Invalid")]
                else:
                    failures = []
                    for p in params:
                        failures += self._evaluate(pname, spec, {
                            "object": req.get("object"), "oldObject": req.get("oldObject"),
                            "request": req, "params": p, "namespaceObject": ns_obj})
                actions = bspec.get("validationActions") or []
                for message, reason in failures:
                    if "Deny" in actions:
                        denied.append((f"ValidatingAdmissionPolicy '{pname}' with binding "
                                       f"'{bname}' denied request: {message}", reason))
                    if "Warn" in actions:
                        admissionnotes.warn(f"Validation failed for ValidatingAdmissionPolicy "
                                            f"'{pname}' with binding '{bname}': {message}")
                    if "Audit" in actions:
                        audits.append({"message": message, "policy": pname, "binding": bname,
                                       "expressionIndex": 0, "validationActions": actions})
        if audits:
            admissionnotes.annotate(_AUDIT_KEY, orjson.dumps(audits).decode())
        if denied:
            message, reason = denied[0]
            resource = errors.qualified_resource(attrs.resource, attrs.group)
            named = f' "{attrs.name}"' if attrs.name else ""
            raise PolicyDenied(f"{resource}{named} is forbidden: {message}", reason,
                               {"name": attrs.name, "group": attrs.group,
                                "kind": attrs.resource, "causes": [{"message": message}]})
