"""Which admission webhooks a request calls: kube's webhook matching, as pure functions.

A webhook configuration (admissionregistration.k8s.io/v1, defaulted) compiles into `Webhook`
values once; `invocation` then decides, for one request (`Attributes`), whether a webhook is
called and as which group/version/kind it sees the object, following
k8s.io/apiserver/pkg/admission/plugin/webhook (v1.32):

- rules (`rules.Matcher`): an operation (`*` for all), apiGroups, apiVersions and resources
  (`pods`, `pods/status`, `pods/*`, `*/status`; `*` alone matches every resource but no
  subresource, `*/*` everything) and scope (`Cluster` also matches Namespace objects;
  `Namespaced` never does);
- matchPolicy `Equivalent`: when no rule names the request's own resource, a rule naming
  another group/version of the same stored resource (`Equivalent` below: core/v1 and
  events.k8s.io/v1 events; a CRD's served versions) still matches, and the webhook is sent
  the object in that version;
- namespaceSelector on the labels of the request's namespace (the object itself for a
  CREATE/UPDATE of a Namespace; cluster-scoped objects always match), objectSelector on the
  labels of the new or the old object (either may match).

Webhooks are never called for the admission configuration kinds themselves
(`is_exempt`), so a broken webhook cannot lock its own configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from navio.api.selectors.labels import LabelSelector, label_selector_from_spec

__all__ = ["Rule", "Webhook", "Attributes", "Equivalent", "compile_configuration",
           "rule_matches", "invocation", "is_exempt", "object_selector_matches",
           "namespace_selector_applies"]

GROUP = "admissionregistration.k8s.io"
_EXEMPT = frozenset({"validatingwebhookconfigurations", "mutatingwebhookconfigurations",
                     "validatingadmissionpolicies", "validatingadmissionpolicybindings",
                     "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"})


@dataclass(frozen=True, slots=True)
class Rule:
    operations: tuple[str, ...]
    api_groups: tuple[str, ...]
    api_versions: tuple[str, ...]
    resources: tuple[str, ...]
    scope: str = "*"


@dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook of a configuration, defaulted and compiled."""
    uid: str                       # "<configuration>/<index>": identity for reinvocation
    name: str
    configuration: str
    mutating: bool
    client_config: dict[str, Any]
    rules: tuple[Rule, ...]
    failure_policy: str = "Fail"
    match_policy: str = "Equivalent"
    namespace_selector: LabelSelector | None = None    # None: the spec did not parse
    object_selector: LabelSelector | None = None
    side_effects: str | None = None
    timeout_seconds: int = 10
    review_versions: tuple[str, ...] = ("v1",)
    reinvocation_policy: str = "Never"
    match_conditions: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Attributes:
    """The request as matching sees it (kube's admission.Attributes)."""
    group: str
    version: str
    resource: str
    kind: str
    subresource: str
    operation: str                  # CREATE, UPDATE, DELETE, CONNECT
    namespace: str                  # the name itself for Namespace objects
    name: str
    obj: dict[str, Any] | None
    old: dict[str, Any] | None
    # The object's group and version when they differ from the resource's (a subresource of
    # another kind: deployments/scale is an autoscaling/v1 Scale, pods/exec a v1
    # PodExecOptions).
    kind_group: str | None = None
    kind_version: str | None = None

    @property
    def gvk(self) -> tuple[str, str, str]:
        return (self.group if self.kind_group is None else self.kind_group,
                self.version if self.kind_version is None else self.kind_version, self.kind)


@dataclass(frozen=True, slots=True)
class Equivalent:
    """A group/version/resource serving the same stored objects, and its kind."""
    group: str
    version: str
    resource: str
    kind: str


def _selector(spec: Any) -> LabelSelector | None:
    try:
        return label_selector_from_spec(spec if isinstance(spec, dict) else {})
    except Exception:    # noqa: BLE001 - an unparseable selector fails the request later
        return None


def compile_configuration(obj: dict[str, Any], mutating: bool) -> tuple[Webhook, ...]:
    """The webhooks of a (defaulted) configuration object, in their listed order."""
    config = (obj.get("metadata") or {}).get("name", "")
    out = []
    for i, hook in enumerate(obj.get("webhooks") or ()):
        rules = tuple(Rule(tuple(r.get("operations") or ()), tuple(r.get("apiGroups") or ()),
                           tuple(r.get("apiVersions") or ()), tuple(r.get("resources") or ()),
                           r.get("scope") or "*")
                      for r in hook.get("rules") or ())
        out.append(Webhook(
            uid=f"{config}/{i}", name=hook.get("name", ""), configuration=config,
            mutating=mutating, client_config=dict(hook.get("clientConfig") or {}), rules=rules,
            failure_policy=hook.get("failurePolicy") or "Fail",
            match_policy=hook.get("matchPolicy") or "Equivalent",
            namespace_selector=_selector(hook.get("namespaceSelector")),
            object_selector=_selector(hook.get("objectSelector")),
            side_effects=hook.get("sideEffects"),
            timeout_seconds=int(hook.get("timeoutSeconds") or 10),
            review_versions=tuple(hook.get("admissionReviewVersions") or ()),
            reinvocation_policy=hook.get("reinvocationPolicy") or "Never",
            match_conditions=tuple(hook.get("matchConditions") or ())))
    return tuple(out)


def is_exempt(group: str, resource: str) -> bool:
    """IsExemptAdmissionConfigurationResource."""
    return group == GROUP and resource in _EXEMPT


def _split(res_sub: str) -> tuple[str, str]:
    res, _, sub = res_sub.partition("/")
    return res, sub


def rule_matches(rule: Rule, attrs: Attributes, group: str, version: str, resource: str
                 ) -> bool:
    """rules.Matcher.Matches for the request, as (group, version, resource)."""
    if rule.scope not in ("*", ""):
        is_ns = (attrs.group, attrs.resource) == ("", "namespaces")
        if rule.scope == "Namespaced" and (is_ns or not attrs.namespace):
            return False
        if rule.scope == "Cluster" and not (is_ns or not attrs.namespace):
            return False
        if rule.scope not in ("Namespaced", "Cluster"):
            return False
    if not any(op in ("*", attrs.operation) for op in rule.operations):
        return False
    if not any(g in ("*", group) for g in rule.api_groups):
        return False
    if not any(v in ("*", version) for v in rule.api_versions):
        return False
    for res_sub in rule.resources:
        res, sub = _split(res_sub)
        if res in ("*", resource) and sub in ("*", attrs.subresource):
            return True
    return False


def _rules_match(hook: Webhook, attrs: Attributes, group: str, version: str,
                 resource: str) -> bool:
    return any(rule_matches(r, attrs, group, version, resource) for r in hook.rules)


def invocation(hook: Webhook, attrs: Attributes, equivalents: list[Equivalent]
               ) -> Equivalent | None:
    """The version the webhook is called with (the request's own one, or with matchPolicy
    Equivalent an equivalent one its rules name), or None when its rules do not match.
    Selectors are checked separately."""
    if _rules_match(hook, attrs, attrs.group, attrs.version, attrs.resource):
        return Equivalent(attrs.group, attrs.version, attrs.resource, attrs.kind)
    if hook.match_policy != "Equivalent":
        return None
    for eq in equivalents:
        if (eq.group, eq.version) == (attrs.group, attrs.version):
            continue
        if _rules_match(hook, attrs, eq.group, eq.version, eq.resource):
            return eq
    return None


def _labels(obj: dict[str, Any] | None) -> dict[str, str] | None:
    if not isinstance(obj, dict):
        return None
    return (obj.get("metadata") or {}).get("labels") or {}


def object_selector_matches(hook: Webhook, attrs: Attributes) -> bool:
    """MatchObjectSelector: the new or the old object carries matching labels (an empty
    selector matches everything, even a request without objects)."""
    sel = hook.object_selector
    if sel is None:
        raise ValueError("objectSelector could not be parsed")
    if sel.empty():
        return True
    return any(labels is not None and sel.matches(labels)
               for labels in (_labels(attrs.obj), _labels(attrs.old)))


def namespace_selector_applies(hook: Webhook, attrs: Attributes,
                               namespace_labels: Callable[[str], dict[str, str] | None]
                               ) -> bool:
    """MatchNamespaceSelector. `namespace_labels(name)` returns a namespace's labels, None
    when it does not exist (which the caller turns into kube's 404)."""
    is_ns = (attrs.group, attrs.resource) == ("", "namespaces")
    if not attrs.namespace and not is_ns:
        return True     # cluster-scoped objects are never exempted
    sel = hook.namespace_selector
    if sel is None:
        raise ValueError("namespaceSelector could not be parsed")
    if sel.empty():
        return True
    if is_ns and not attrs.subresource and attrs.operation in ("CREATE", "UPDATE"):
        labels = _labels(attrs.obj) or {}
    else:
        found = namespace_labels(attrs.namespace)
        if found is None:
            raise LookupError(attrs.namespace)
        labels = found
    return sel.matches(labels)
