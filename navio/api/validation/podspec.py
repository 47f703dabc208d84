"""PodSpec and PodTemplateSpec, validated in core validation's ValidatePodSpec order (v1.32).

`validate_pod_spec` is shared by Pods and every pod template (Deployment, Job, ...). Field
paths follow the *internal* type as upstream reports them: hostNetwork, hostPID, hostIPC and
shareProcessNamespace live under `securityContext` there, so their errors read
`spec.securityContext.shareProcessNamespace`. A template's labels and annotations are reported
as `spec.template.labels` (not `.metadata.labels`), as ValidatePodTemplateSpec does.
"""

from __future__ import annotations

from typing import Any

from navio.api.errors import go_quote
from navio.api.validation import names
from navio.api.validation.affinity import (validate_affinity, validate_tolerations,
                                           validate_topology_spread)
from navio.api.validation.containers import (validate_containers, validate_ephemeral_containers,
                                             validate_init_containers)
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid, key,
                                        not_supported, required)
from navio.api.validation.gorepr import go_json, go_strings
from navio.api.validation.meta import validate_annotations, validate_labels
from navio.api.validation.resources import validate_resource_requirements
from navio.api.validation.security import validate_apparmor_profile, validate_seccomp_profile
from navio.api.validation.volumes import local_descending_path, validate_volumes

__all__ = ["validate_pod_spec", "validate_pod_template_spec", "validate_pod_annotations",
           "validate_tolerations", "RESTART_POLICIES", "MAX_INT32"]

MAX_INT32 = 2147483647
RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
_MIRROR = "kubernetes.io/config.mirror"
_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_SECCOMP_POD = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER = "container.seccomp.security.alpha.kubernetes.io/"
_APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _all_container_names(spec: dict[str, Any]) -> set[str]:
    return {c.get("name", "") for k in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(k) or []}


def validate_pod_annotations(annotations: Any, spec: dict[str, Any], path: str) -> list[Cause]:
    """ValidatePodSpecificAnnotations."""
    errs: list[Cause] = []
    annotations = annotations or {}
    if _MIRROR in annotations and not spec.get("nodeName"):
        errs.append(invalid(key(path, _MIRROR), annotations[_MIRROR],
                            "must set spec.nodeName if mirror pod annotation is set"))
    if _DELETION_COST in annotations:
        v = annotations[_DELETION_COST]
        try:
            ok = -(2 ** 31) <= int(v, 10) < 2 ** 31 and v.strip() == v
        except ValueError:
            ok = False
        if not ok:
            errs.append(invalid(key(path, _DELETION_COST), v, "must be a 32bit integer"))
    for k, v in annotations.items():
        if k == _SECCOMP_POD or k.startswith(_SECCOMP_CONTAINER):
            if v in ("runtime/default", "docker/default", "unconfined"):
                continue
            if v.startswith("localhost/"):
                errs += local_descending_path(v[len("localhost/"):], child(path, k))
            else:
                errs.append(invalid(child(path, k), v, "must be a valid seccomp profile"))
    for k, v in annotations.items():
        if not k.startswith(_APPARMOR_PREFIX):
            continue
        name = k[len(_APPARMOR_PREFIX):]
        if name not in _all_container_names(spec):
            errs.append(invalid(key(path, k), name, "container not found"))
        if v not in ("", "runtime/default", "unconfined") and not v.startswith("localhost/"):
            errs.append(invalid(key(path, k), v, f"invalid AppArmor profile name: {go_quote(v)}"))
    return errs


def _dns_config(cfg: Any, policy: str, path: str) -> list[Cause]:
    if policy == "None":
        if cfg is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not cfg.get("nameservers"):
            return [required(child(path, "nameservers"),
                             "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    if cfg is None:
        return []
    errs: list[Cause] = []
    servers, searches = cfg.get("nameservers") or [], cfg.get("searches") or []
    if len(servers) > 3:
        errs.append(invalid(child(path, "nameservers"), go_strings(servers),
                            "must not have more than 3 nameservers"))
    for i, ns in enumerate(servers):
        errs += [invalid(index(child(path, "nameservers"), i), ns,
                         m) for m in names.is_valid_ip(ns)]
    if len(searches) > 32:
        errs.append(invalid(child(path, "searches"), go_strings(searches),
                            "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        errs.append(invalid(child(path, "searches"), go_strings(searches),
                            "must not have more than 2048 characters (including spaces) in the "
                            "search list"))
    for i, s in enumerate(searches):
        s = s[:-1] if s.endswith(".") else s
        errs += [invalid(index(child(path, "searches"), i), s, m)
                 for m in names.is_dns1123_subdomain(s)]
    for i, opt in enumerate(cfg.get("options") or []):
        if not opt.get("name"):
            errs.append(required(index(child(path, "options"), i), "must not be empty"))
    return errs


def _pod_security_context(spec: dict[str, Any], path: str) -> list[Cause]:
    sc = spec.get("securityContext")
    if sc is None:
        return []
    errs: list[Cause] = []
    for f in ("fsGroup", "runAsUser", "runAsGroup"):
        if sc.get(f) is not None:
            errs += [invalid(child(path, f), sc[f], m) for m in names.is_valid_user_id(sc[f])]
    for i, g in enumerate(sc.get("supplementalGroups") or []):
        errs += [invalid(index(child(path, "supplementalGroups"), i), g, m)
                 for m in names.is_valid_group_id(g)]
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID"):
        errs.append(invalid(child(path, "shareProcessNamespace"), True,
                            "ShareProcessNamespace and HostPID cannot both be enabled"))
    seen: set[str] = set()
    for i, s in enumerate(sc.get("sysctls") or []):
        p = child(index(child(path, "sysctls"), i), "name")
        name = s.get("name", "")
        if not name:
            errs.append(required(p))
        elif not _sysctl_ok(name):
            errs.append(invalid(p, name, "must have at most 253 characters and match regex "
                                         + _SYSCTL_FMT))
        elif name in seen:
            errs.append(duplicate(p, name))
        seen.add(name)
    fcp = sc.get("fsGroupChangePolicy")
    if fcp is not None and fcp not in ("Always", "OnRootMismatch"):
        errs.append(not_supported(child(path, "fsGroupChangePolicy"), fcp,
                                  ["Always", "OnRootMismatch"]))
    errs += validate_seccomp_profile(sc.get("seccompProfile"), child(path, "seccompProfile"))
    errs += validate_apparmor_profile(sc.get("appArmorProfile"), child(path, "appArmorProfile"))
    sgp = sc.get("supplementalGroupsPolicy")
    if sgp is not None and sgp not in ("Merge", "Strict"):
        errs.append(not_supported(child(path, "supplementalGroupsPolicy"), sgp,
                                  ["Merge", "Strict"]))
    return errs


_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_FMT = f"^({_SYSCTL_SEGMENT}[\\./])*{_SYSCTL_SEGMENT}$"


def _sysctl_ok(name: str) -> bool:
    import re
    return len(name) <= 253 and re.fullmatch(_SYSCTL_FMT[1:-1], name) is not None


def validate_pod_spec(spec: dict[str, Any], path: str, pod_name: str | None = None,
                      is_pod: bool = False) -> list[Cause]:
    errs: list[Cause] = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errs.append(required(child(path, "terminationGracePeriodSeconds")))
    host_users = (spec.get("hostUsers") is not False)
    vols, verrs = validate_volumes(spec.get("volumes"), child(path, "volumes"), pod_name)
    errs += verrs
    claims = {c.get("name") for c in spec.get("resourceClaims") or [] if c.get("name")}
    errs += validate_containers(spec.get("containers"), vols, claims, grace,
                                child(path, "containers"), host_users)
    errs += validate_init_containers(spec.get("initContainers"), spec.get("containers"), vols,
                                     claims, grace, child(path, "initContainers"), host_users)
    errs += validate_ephemeral_containers(spec.get("ephemeralContainers"), spec.get("containers"),
                                          spec.get("initContainers"), vols, claims,
                                          child(path, "ephemeralContainers"))
    if spec.get("hostNetwork"):
        for i, c in enumerate(spec.get("containers") or []):
            for j, port in enumerate(c.get("ports") or []):
                hp, cp = port.get("hostPort", 0), port.get("containerPort", 0)
                if (is_pod or hp != 0) and hp != cp:
                    pp = child(index(child(index(child(path, "containers"), i), "ports"), j),
                               "hostPort")
                    errs.append(invalid(pp, hp,
                                        "must match `containerPort` when `hostNetwork` is true"))
    rp = spec.get("restartPolicy", "")
    if rp == "":
        errs.append(required(child(path, "restartPolicy")))
    elif rp not in RESTART_POLICIES:
        errs.append(not_supported(child(path, "restartPolicy"), rp, RESTART_POLICIES))
    dp = spec.get("dnsPolicy", "")
    if dp == "":
        errs.append(required(child(path, "dnsPolicy")))
    elif dp not in _DNS_POLICIES:
        errs.append(not_supported(child(path, "dnsPolicy"), dp, _DNS_POLICIES))
    errs += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    errs += _pod_security_context(spec, child(path, "securityContext"))
    for i, s in enumerate(spec.get("imagePullSecrets") or []):
        if set(s) - {"name"}:
            errs.append(invalid(index(child(path, "imagePullSecrets"), i), go_json(s),
                                "only name may be set"))
    errs += validate_affinity(spec.get("affinity"), child(path, "affinity"))
    errs += _dns_config(spec.get("dnsConfig"), dp, child(path, "dnsConfig"))
    for i, g in enumerate(spec.get("readinessGates") or []):
        p = child(index(child(path, "readinessGates"), i), "conditionType")
        errs += [invalid(p, g.get("conditionType", ""), m)
                 for m in names.is_qualified_name(g.get("conditionType", ""))]
    seen_gates: set[str] = set()
    for i, g in enumerate(spec.get("schedulingGates") or []):
        p = index(child(path, "schedulingGates"), i)
        errs += [invalid(p, g.get("name", ""), m)
                 for m in names.is_qualified_name(g.get("name", ""))]
        if g.get("name", "") in seen_gates:
            errs.append(duplicate(p, g.get("name", "")))
        seen_gates.add(g.get("name", ""))
    errs += validate_topology_spread(spec.get("topologySpreadConstraints"),
                             child(path, "topologySpreadConstraints"))
    if spec.get("hostUsers") is False:
        # Upstream's paths are capitalised for these two (validateHostUsers).
        for f, p in (("hostNetwork", "hostNetwork"), ("hostPID", "HostPID"),
                     ("hostIPC", "HostIPC")):
            if spec.get(f):
                errs.append(forbidden(child(path, p), "when `pod.Spec.HostUsers` is false"))
    for f in ("serviceAccountName", "nodeName"):
        if spec.get(f):
            errs += [invalid(child(path, f), spec[f],
                             m) for m in names.name_is_dns_subdomain(spec[f])]
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (ads < 1 or ads > MAX_INT32):
        errs.append(invalid(child(path, "activeDeadlineSeconds"), ads,
                            names.inclusive_range_error(1, MAX_INT32)))
    for f in ("hostname", "subdomain"):
        if spec.get(f):
            errs += [invalid(child(path, f), spec[f], m) for m in names.is_dns1123_label(spec[f])]
    errs += validate_tolerations(spec.get("tolerations"), child(path, "tolerations"))
    for i, ha in enumerate(spec.get("hostAliases") or []):
        p = index(child(path, "hostAliases"), i)
        errs += [invalid(child(p, "ip"), ha.get("ip", ""),
                         m) for m in names.is_valid_ip(ha.get("ip", ""))]
        for j, h in enumerate(ha.get("hostnames") or []):
            errs += [invalid(index(child(p, "hostnames"), j), h,
                             m) for m in names.is_dns1123_subdomain(h)]
    for f in ("priorityClassName",):
        if spec.get(f):
            errs += [invalid(child(path, f), spec[f],
                             m) for m in names.name_is_dns_subdomain(spec[f])]
    if spec.get("runtimeClassName") is not None:
        rc = spec["runtimeClassName"]
        errs += [invalid(child(path, "runtimeClassName"), rc,
                         m) for m in names.name_is_dns_subdomain(rc)]
    pp = spec.get("preemptionPolicy")
    if pp is not None:
        if pp == "":
            errs.append(required(child(path, "preemptionPolicy")))
        elif pp not in ("PreemptLowerPriority", "Never"):
            errs.append(not_supported(child(path, "preemptionPolicy"), pp,
                                      ["PreemptLowerPriority", "Never"]))
    if spec.get("overhead") is not None:
        errs += validate_resource_requirements({"limits": spec["overhead"]},
                                               child(path, "overhead"), claims)
    os_ = spec.get("os")
    if os_ is not None:
        if not os_.get("name"):
            errs.append(required(child(path, "os", "name"), "cannot be empty"))
        elif os_["name"] not in ("linux", "windows"):
            errs.append(not_supported(child(path, "os"), os_["name"], ["linux", "windows"]))
    return errs


def validate_pod_template_spec(tmpl: Any, path: str) -> list[Cause]:
    tmpl = tmpl or {}
    meta, spec = tmpl.get("metadata") or {}, tmpl.get("spec") or {}
    errs = validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_pod_annotations(meta.get("annotations"), spec, child(path, "annotations"))
    errs += validate_pod_spec(spec, child(path, "spec"))
    if spec.get("ephemeralContainers"):
        errs.append(forbidden(child(path, "spec", "ephemeralContainers"),
                              "ephemeral containers not allowed in pod template"))
    return errs
