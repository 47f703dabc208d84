"""PodSecurity admission: the namespace's Pod Security levels applied to every pod write.

As kube-apiserver's PodSecurity plugin: a pod violating its namespace's `enforce` level is
refused (403, `violates PodSecurity "baseline:latest": ...`); violations of the `warn` level
come back as `Warning` headers and those of the `audit` level as the audit annotation
`pod-security.kubernetes.io/audit-violations`. Workload pod templates (Deployment, Job, ...)
are only warned and audited about, never refused. A namespace whose enforce level changes is
checked against its existing pods, with a warning naming those that would be refused. Labels
with a bad level or version are refused (422). The checks themselves are
`navio.api.podsecurity`; navio's default policy is in SECURITY.md.

The defaults for unlabelled modes and the exemptions come from `resources.pod_security`
(`podsecurityconfig`): a request in an exempt namespace or by an exempt user, or a pod whose
runtime class is exempt, is not evaluated, and the audit annotation
`pod-security.kubernetes.io/exempt` names why (namespace, user, runtimeClass), as in kube.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from navio.api import errors, podsecurity
from navio.api.errors import cause
from navio.api.podsecurity import LevelVersion, Policy
from navio.apiserver import admissionnotes

if TYPE_CHECKING:
    from navio.apiserver.admission import Request
    from navio.apiserver.resources import Resources

__all__ = ["pod_security", "namespace_policy"]

_EXEMPT_KEY = "pod-security.kubernetes.io/exempt"
_AUDIT_KEY = "pod-security.kubernetes.io/audit-violations"
_ENFORCE_KEY = "pod-security.kubernetes.io/enforce-policy"
# Only these pod fields matter on update: a change elsewhere (labels, image) is not checked.
_ANNOTATION_PREFIXES = ("container.apparmor.security.beta.kubernetes.io/",
                        "seccomp.security.alpha.kubernetes.io/")


def namespace_policy(ns: dict[str, Any] | None,
                     defaults: Policy = podsecurity.DEFAULT_POLICY) -> Policy:
    try:
        return podsecurity.parse_policy(((ns or {}).get("metadata") or {}).get("labels"),
                                        defaults)
    except podsecurity.PolicyError:
        # kube evaluates an unparseable level as restricted.
        r = LevelVersion("restricted")
        return Policy(r, r, r)


async def _namespace(resources: "Resources", name: str) -> dict[str, Any] | None:
    kind = resources.registry.resource("", "v1", "namespaces")
    assert kind is not None
    cache = resources.cache(kind)
    return cache.get(kind.storage_key(None, name))


def _significant_pod_update(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """kube's isSignificantPodUpdate: only spec changes beyond images and the security
    annotations are re-checked."""
    def relevant(pod: dict[str, Any]) -> tuple[Any, Any]:
        spec = dict(pod.get("spec") or {})
        for f in ("containers", "initContainers", "ephemeralContainers"):
            if spec.get(f):
                spec[f] = [{k: v for k, v in c.items() if k != "image"} for c in spec[f]]
        ann = {k: v for k, v in ((pod.get("metadata") or {}).get("annotations") or {}).items()
               if k.startswith(_ANNOTATION_PREFIXES)}
        return spec, ann
    return relevant(new) != relevant(old)


async def pod_security(resources: "Resources", request: "Request") -> None:
    """The validating plugin (registered in `Resources.validators`)."""
    kind = request.kind
    # pods/ephemeralcontainers is checked too: a debug container is a container.
    if request.operation not in ("CREATE", "UPDATE") or \
            request.subresource not in ("", "ephemeralcontainers"):
        return
    if (kind.group, kind.kind) == ("", "Namespace"):
        await _check_namespace(resources, request)
        return
    target = podsecurity.pod_spec_of(kind.group, kind.kind, request.obj)
    if target is None or (request.subresource and (kind.group, kind.kind) != ("", "Pod")):
        return
    meta = request.obj.get("metadata") or {}
    ns_name = meta.get("namespace") or ""
    config = resources.pod_security
    if ns_name in config.exempt_namespaces:
        admissionnotes.annotate(_EXEMPT_KEY, "namespace")
        return
    user = getattr(request.opts.user, "name", None)
    if user is not None and user in config.exempt_usernames:
        admissionnotes.annotate(_EXEMPT_KEY, "user")
        return
    is_pod = (kind.group, kind.kind) == ("", "Pod")
    if request.operation == "UPDATE" and request.old is not None:
        old_target = podsecurity.pod_spec_of(kind.group, kind.kind, request.old)
        if is_pod and not _significant_pod_update(request.obj, request.old):
            return
        if not is_pod and old_target == target:
            return
    pod_meta, spec = target
    if spec.get("runtimeClassName") in config.exempt_runtime_classes:
        admissionnotes.annotate(_EXEMPT_KEY, "runtimeClass")
        return
    policy = namespace_policy(await _namespace(resources, ns_name), config.defaults)
    found = {lv.level: podsecurity.evaluate(lv.level, pod_meta, spec)
             for lv in (policy.enforce, policy.audit, policy.warn)}
    enforce = found[policy.enforce.level]
    if is_pod:
        admissionnotes.annotate(_ENFORCE_KEY, str(policy.enforce))
        if enforce:
            raise errors.Forbidden(
                f'pods "{meta.get("name", "")}" is forbidden: '
                f"{podsecurity.forbidden_message(policy.enforce, enforce)}",
                details={"name": meta.get("name", ""), "kind": "pods"})
    elif enforce:
        admissionnotes.warn(podsecurity.warning_message(policy.enforce, enforce))
    audit = found[policy.audit.level]
    if audit:
        admissionnotes.annotate(_AUDIT_KEY, podsecurity.warning_message(policy.audit, audit))
    warn = found[policy.warn.level]
    if warn and policy.warn != policy.enforce and not (enforce and not is_pod):
        admissionnotes.warn(podsecurity.warning_message(policy.warn, warn))


async def _check_namespace(resources: "Resources", request: "Request") -> None:
    meta = request.obj.get("metadata") or {}
    name = meta.get("name", "")
    try:
        policy = podsecurity.parse_policy(meta.get("labels"))
    except podsecurity.PolicyError as exc:
        detail, field, value = exc.args
        raise errors.Invalid("Namespace", name,
                             [cause("FieldValueInvalid", field, detail, value)]) from None
    config = resources.pod_security
    if request.operation != "UPDATE" or name in config.exempt_namespaces:
        return
    policy = namespace_policy(request.obj, config.defaults)
    if namespace_policy(request.old, config.defaults).enforce == policy.enforce or \
            policy.enforce.level == "privileged":
        return
    pods_kind = resources.registry.resource("", "v1", "pods")
    assert pods_kind is not None
    groups: dict[str, list[str]] = {}
    for _, pod in resources.cache(pods_kind).list():
        pmeta = pod.get("metadata") or {}
        if pmeta.get("namespace") != name or \
                (pod.get("spec") or {}).get("runtimeClassName") in config.exempt_runtime_classes:
            continue
        bad = podsecurity.evaluate(policy.enforce.level, pmeta, pod.get("spec") or {})
        if bad:
            reasons = ", ".join(dict.fromkeys(v.reason for v in bad))
            groups.setdefault(reasons, []).append(pmeta.get("name", ""))
    if not groups:
        return
    admissionnotes.warn(f'existing pods in namespace "{name}" violate the new PodSecurity '
                        f'enforce level "{policy.enforce}"')
    for reasons, names in groups.items():
        names.sort()
        who = names[0] if len(names) == 1 else \
            f"{names[0]} (and {len(names) - 1} other pod{'s' if len(names) > 2 else ''})"
        admissionnotes.warn(f"{who}: {reasons}")
