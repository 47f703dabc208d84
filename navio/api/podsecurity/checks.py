"""The Pod Security Standards' checks, as k8s.io/pod-security-admission/policy defines them (v1.32).

Each check reads a pod spec (and the pod's metadata, for the AppArmor annotations) and returns
`None` when the pod passes, else a `Violation` whose reason and detail are kube's words, so the
messages an API server builds from them match a real cluster's. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

__all__ = ["Violation", "Check", "CHECKS", "BASELINE_CAPABILITIES", "ALLOWED_SYSCTLS",
           "ALLOWED_VOLUME_TYPES"]

Meta = dict[str, Any]
Spec = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Violation:
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Check:
    """One check: its id, the level it belongs to and the ids it replaces at that level."""
    id: str
    level: str                      # "baseline" or "restricted"
    fn: Callable[[Meta, Spec], Violation | None]
    overrides: tuple[str, ...] = ()


def _containers(spec: Spec) -> Iterable[dict[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or ()


def _sc(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("securityContext") or {}


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _containers_phrase(names: list[str]) -> str:
    return f"container {_quoted(names)}" if len(names) == 1 else f"containers {_quoted(names)}"


def _pluralize(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def _is_windows(spec: Spec) -> bool:
    return ((spec.get("os") or {}).get("name") or "") == "windows"


# -- baseline ------------------------------------------------------------------------------------
def host_process(meta: Meta, spec: Spec) -> Violation | None:
    pod = (_sc(spec).get("windowsOptions") or {}).get("hostProcess") is True
    bad = [c.get("name", "") for c in _containers(spec)
           if (_sc(c).get("windowsOptions") or {}).get("hostProcess") is True]
    if not pod and not bad:
        return None
    who = []
    if pod:
        who.append("pod")
    if bad:
        who.append(_containers_phrase(bad))
    return Violation("hostProcess", f"{' and '.join(who)} must not set "
                     f"securityContext.windowsOptions.hostProcess=true")


def host_namespaces(meta: Meta, spec: Spec) -> Violation | None:
    found = [f"{f}=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f) is True]
    return Violation("host namespaces", ", ".join(found)) if found else None


def privileged(meta: Meta, spec: Spec) -> Violation | None:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("privileged") is True]
    if not bad:
        return None
    return Violation("privileged",
                     f"{_containers_phrase(bad)} must not set securityContext.privileged=true")


BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def _forbidden_adds(spec: Spec, allowed: frozenset[str]) -> tuple[list[str], list[str]]:
    names: list[str] = []
    caps: list[str] = []
    for c in _containers(spec):
        added = (_sc(c).get("capabilities") or {}).get("add") or ()
        extra = [a for a in added if a not in allowed]
        if extra:
            names.append(c.get("name", ""))
            caps.extend(a for a in extra if a not in caps)
    return names, caps


def capabilities_baseline(meta: Meta, spec: Spec) -> Violation | None:
    names, caps = _forbidden_adds(spec, BASELINE_CAPABILITIES)
    if not names:
        return None
    return Violation("non-default capabilities",
                     f"{_containers_phrase(names)} must not include {_quoted(caps)} in "
                     f"securityContext.capabilities.add")


def host_path_volumes(meta: Meta, spec: Spec) -> Violation | None:
    bad = [v.get("name", "") for v in spec.get("volumes") or () if v.get("hostPath") is not None]
    if not bad:
        return None
    return Violation("hostPath volumes",
                     f"{_pluralize('volume', 'volumes', len(bad))} {_quoted(bad)}")


def host_ports(meta: Meta, spec: Spec) -> Violation | None:
    names: list[str] = []
    ports: list[str] = []
    for c in _containers(spec):
        found = [str(p["hostPort"]) for p in c.get("ports") or () if p.get("hostPort")]
        if found:
            names.append(c.get("name", ""))
            ports.extend(p for p in found if p not in ports)
    if not names:
        return None
    verb = _pluralize("uses", "use", len(names))
    return Violation(_pluralize("hostPort", "hostPorts", len(ports)),
                     f"{_containers_phrase(names)} {verb} "
                     f"{_pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(ports)}")


_APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_ok(profile: dict[str, Any] | None) -> bool:
    return not profile or profile.get("type") in ("RuntimeDefault", "Localhost")


def app_armor_profile(meta: Meta, spec: Spec) -> Violation | None:
    bad: list[str] = []
    pod_profile = _sc(spec).get("appArmorProfile") or {}
    if not _apparmor_ok(pod_profile):
        bad.append(f'pod must not set securityContext.appArmorProfile.type to '
                   f'"{pod_profile.get("type")}"')
    for c in _containers(spec):
        p = _sc(c).get("appArmorProfile") or {}
        if not _apparmor_ok(p):
            bad.append(f'container "{c.get("name", "")}" must not set '
                       f'securityContext.appArmorProfile.type to "{p.get("type")}"')
    annotations = sorted((k, v) for k, v in ((meta.get("annotations") or {}).items())
                         if k.startswith(_APPARMOR_PREFIX)
                         and v != "runtime/default" and not v.startswith("localhost/"))
    anns = [f'{k}="{v}"' for k, v in annotations]
    if not bad and not anns:
        return None
    details = bad + ([f"{_pluralize('annotation', 'annotations', len(anns))} "
                      f"{', '.join(anns)}"] if anns else [])
    n = len(bad) + len(anns)
    return Violation(_pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", n),
                     "; ".join(details))


_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                            "container_engine_t"})


def se_linux_options(meta: Meta, spec: Spec) -> Violation | None:
    types: list[str] = []
    user = role = False
    pod_bad = False
    names: list[str] = []

    def scan(opts: dict[str, Any] | None) -> bool:
        nonlocal user, role
        if not opts:
            return False
        bad = False
        t = opts.get("type") or ""
        if t not in _SELINUX_TYPES:
            bad = True
            if t not in types:
                types.append(t)
        if opts.get("user"):
            bad = user = True
        if opts.get("role"):
            bad = role = True
        return bad
    pod_bad = scan(_sc(spec).get("seLinuxOptions"))
    for c in _containers(spec):
        if scan(_sc(c).get("seLinuxOptions")):
            names.append(c.get("name", ""))
    if not pod_bad and not names:
        return None
    who = (["pod"] if pod_bad else []) + ([_containers_phrase(names)] if names else [])
    what = []
    if types:
        what.append(f"{_pluralize('type', 'types', len(types))} {_quoted(types)}")
    if user:
        what.append("user may not be set")
    if role:
        what.append("role may not be set")
    return Violation("seLinuxOptions", f"{' and '.join(who)} set forbidden "
                     f"securityContext.seLinuxOptions: {'; '.join(what)}")


def proc_mount(meta: Meta, spec: Spec) -> Violation | None:
    bad = [c.get("name", "") for c in _containers(spec)
           if _sc(c).get("procMount") not in (None, "", "Default")]
    if not bad:
        return None
    # hostUsers=false (user namespaces) allows Unmasked since 1.29.
    if spec.get("hostUsers") is False:
        return None
    values = []
    for c in _containers(spec):
        v = _sc(c).get("procMount")
        if v not in (None, "", "Default") and v not in values:
            values.append(v)
    return Violation("procMount", f"{_containers_phrase(bad)} must not set "
                     f"securityContext.procMount to {_quoted(values)}")


def _seccomp_type(obj: dict[str, Any]) -> str | None:
    profile = _sc(obj).get("seccompProfile")
    return profile.get("type") if profile else None


def seccomp_baseline(meta: Meta, spec: Spec) -> Violation | None:
    who = []
    if _seccomp_type(spec) == "Unconfined":
        who.append("pod")
    bad = [c.get("name", "") for c in _containers(spec) if _seccomp_type(c) == "Unconfined"]
    if bad:
        who.append(_containers_phrase(bad))
    if not who:
        return None
    return Violation("seccompProfile", f"{' and '.join(who)} must not set "
                     f'securityContext.seccompProfile.type to "Unconfined"')


ALLOWED_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})


def sysctls(meta: Meta, spec: Spec) -> Violation | None:
    bad = [s.get("name", "") for s in _sc(spec).get("sysctls") or ()
           if s.get("name") not in ALLOWED_SYSCTLS]
    return Violation("forbidden sysctls", ", ".join(bad)) if bad else None


# -- restricted ----------------------------------------------------------------------------------
ALLOWED_VOLUME_TYPES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                        "persistentVolumeClaim", "projected", "secret")


def restricted_volumes(meta: Meta, spec: Spec) -> Violation | None:
    names: list[str] = []
    types: list[str] = []
    for v in spec.get("volumes") or ():
        kinds = [k for k in v if k != "name"]
        bad = [k for k in kinds if k not in ALLOWED_VOLUME_TYPES]
        if bad or not kinds:
            names.append(v.get("name", ""))
            for k in bad or ["unknown"]:
                if k not in types:
                    types.append(k)
    if not names:
        return None
    return Violation("restricted volume types",
                     f"{_pluralize('volume', 'volumes', len(names))} {_quoted(names)} "
                     f"{_pluralize('uses', 'use', len(names))} restricted "
                     f"{_pluralize('volume type', 'volume types', len(types))} {_quoted(types)}")


def allow_privilege_escalation(meta: Meta, spec: Spec) -> Violation | None:
    if _is_windows(spec):
        return None
    bad = [c.get("name", "") for c in _containers(spec)
           if _sc(c).get("allowPrivilegeEscalation") is not False]
    if not bad:
        return None
    return Violation("allowPrivilegeEscalation != false", f"{_containers_phrase(bad)} must set "
                     f"securityContext.allowPrivilegeEscalation=false")


def run_as_non_root(meta: Meta, spec: Spec) -> Violation | None:
    pod_value = _sc(spec).get("runAsNonRoot")
    explicit_false: list[str] = []
    implicit: list[str] = []
    for c in _containers(spec):
        v = _sc(c).get("runAsNonRoot")
        if v is False:
            explicit_false.append(c.get("name", ""))
        elif v is None and pod_value is not True:
            implicit.append(c.get("name", ""))
    details = []
    if pod_value is False:
        details.append("pod must not set securityContext.runAsNonRoot=false")
    if explicit_false:
        details.append(f"{_containers_phrase(explicit_false)} must not set "
                       f"securityContext.runAsNonRoot=false")
    if implicit and pod_value is not False:
        details.append(f"pod or {_containers_phrase(implicit)} must set "
                       f"securityContext.runAsNonRoot=true")
    return Violation("runAsNonRoot != true", "; ".join(details)) if details else None


def run_as_user(meta: Meta, spec: Spec) -> Violation | None:
    if _is_windows(spec):
        return None
    who = []
    if _sc(spec).get("runAsUser") == 0:
        who.append("pod")
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    if bad:
        who.append(_containers_phrase(bad))
    if not who:
        return None
    return Violation("runAsUser=0", f"{' and '.join(who)} must not set runAsUser=0")


def seccomp_restricted(meta: Meta, spec: Spec) -> Violation | None:
    if _is_windows(spec):
        return None
    pod_type = _seccomp_type(spec)
    pod_ok = pod_type in ("RuntimeDefault", "Localhost")
    forbidden: list[str] = []
    bad_types: list[str] = []
    unset: list[str] = []
    for c in _containers(spec):
        t = _seccomp_type(c)
        if t is None:
            if not pod_ok:
                unset.append(c.get("name", ""))
        elif t not in ("RuntimeDefault", "Localhost"):
            forbidden.append(c.get("name", ""))
            if t not in bad_types:
                bad_types.append(t)
    details = []
    if pod_type is not None and not pod_ok:
        details.append(f'pod must not set securityContext.seccompProfile.type to "{pod_type}"')
    if forbidden:
        details.append(f"{_containers_phrase(forbidden)} must not set "
                       f"securityContext.seccompProfile.type to "
                       f"{_quoted(bad_types)}")
    if unset and pod_type is None:
        details.append(f'pod or {_containers_phrase(unset)} must set '
                       f'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    elif unset:
        details.append(f'{_containers_phrase(unset)} must set securityContext.seccompProfile.type '
                       f'to "RuntimeDefault" or "Localhost"')
    return Violation("seccompProfile", "; ".join(details)) if details else None


_RESTRICTED_ADD = frozenset({"NET_BIND_SERVICE"})


def capabilities_restricted(meta: Meta, spec: Spec) -> Violation | None:
    if _is_windows(spec):
        return None
    no_drop = [c.get("name", "") for c in _containers(spec)
               if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or ())]
    names, caps = _forbidden_adds(spec, _RESTRICTED_ADD)
    details = []
    if no_drop:
        details.append(f'{_containers_phrase(no_drop)} must set '
                       f'securityContext.capabilities.drop=["ALL"]')
    if names:
        details.append(f"{_containers_phrase(names)} must not include {_quoted(caps)} in "
                       f"securityContext.capabilities.add")
    return Violation("unrestricted capabilities", "; ".join(details)) if details else None


CHECKS: tuple[Check, ...] = tuple(sorted((
    Check("allowPrivilegeEscalation", "restricted", allow_privilege_escalation),
    Check("appArmorProfile", "baseline", app_armor_profile),
    Check("capabilities_baseline", "baseline", capabilities_baseline),
    Check("capabilities_restricted", "restricted", capabilities_restricted,
          ("capabilities_baseline",)),
    Check("hostNamespaces", "baseline", host_namespaces),
    Check("hostPathVolumes", "baseline", host_path_volumes),
    Check("hostPorts", "baseline", host_ports),
    Check("hostProcess", "baseline", host_process),
    Check("privileged", "baseline", privileged),
    Check("procMount", "baseline", proc_mount),
    Check("restrictedVolumes", "restricted", restricted_volumes, ("hostPathVolumes",)),
    Check("runAsNonRoot", "restricted", run_as_non_root),
    Check("runAsUser", "restricted", run_as_user),
    Check("seLinuxOptions", "baseline", se_linux_options),
    Check("seccompProfile_baseline", "baseline", seccomp_baseline),
    Check("seccompProfile_restricted", "restricted", seccomp_restricted,
          ("seccompProfile_baseline",)),
    Check("sysctls", "baseline", sysctls),
), key=lambda c: c.id))
