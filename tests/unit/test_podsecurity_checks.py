"""The Pod Security Standards' checks (navio.api.podsecurity), one case per check and level,
with kube's reasons and details (k8s.io/pod-security-admission/policy, v1.32)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from navio.api.podsecurity import (DEFAULT_POLICY, LevelVersion, PolicyError, evaluate,
                                   forbidden_message, parse_policy, pod_spec_of)

RESTRICTED_SC = {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                 "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def good_spec() -> dict[str, Any]:
    """A pod that passes restricted."""
    return {"containers": [{"name": "c", "image": "busybox",
                            "securityContext": copy.deepcopy(RESTRICTED_SC)}],
            "volumes": [{"name": "cfg", "configMap": {"name": "x"}}]}


def c_sc(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["containers"][0]["securityContext"]


def reasons(level: str, spec: dict[str, Any], meta: dict[str, Any] | None = None) -> list[str]:
    return [f"{v.reason} ({v.detail})" for v in evaluate(level, meta or {}, spec)]


def test_good_pod_passes_every_level() -> None:
    for level in ("privileged", "baseline", "restricted"):
        assert evaluate(level, {}, good_spec()) == []


def mutate_host_process(s: dict[str, Any]) -> None:
    c_sc(s)["windowsOptions"] = {"hostProcess": True}
    s["securityContext"] = {"windowsOptions": {"hostProcess": True}}


def mutate_host_ns(s: dict[str, Any]) -> None:
    s.update(hostNetwork=True, hostPID=True)


def mutate_privileged(s: dict[str, Any]) -> None:
    c_sc(s)["privileged"] = True


def mutate_caps(s: dict[str, Any]) -> None:
    c_sc(s)["capabilities"]["add"] = ["NET_ADMIN", "SYS_TIME"]


def mutate_host_path(s: dict[str, Any]) -> None:
    s["volumes"].append({"name": "h", "hostPath": {"path": "/"}})


def mutate_host_port(s: dict[str, Any]) -> None:
    s["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]


def mutate_apparmor(s: dict[str, Any]) -> None:
    c_sc(s)["appArmorProfile"] = {"type": "Unconfined"}


def mutate_selinux(s: dict[str, Any]) -> None:
    c_sc(s)["seLinuxOptions"] = {"type": "spc_t", "user": "root"}


def mutate_proc_mount(s: dict[str, Any]) -> None:
    c_sc(s)["procMount"] = "Unmasked"


def mutate_seccomp(s: dict[str, Any]) -> None:
    s["securityContext"] = {"seccompProfile": {"type": "Unconfined"}}
    c_sc(s).pop("seccompProfile")


def mutate_sysctls(s: dict[str, Any]) -> None:
    s["securityContext"] = {"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                        {"name": "net.ipv4.tcp_syncookies", "value": "1"}]}


BASELINE_CASES = [
    (mutate_host_process, 'hostProcess (pod and container "c" must not set '
                          'securityContext.windowsOptions.hostProcess=true)'),
    (mutate_host_ns, "host namespaces (hostNetwork=true, hostPID=true)"),
    (mutate_privileged, 'privileged (container "c" must not set securityContext.privileged=true)'),
    (mutate_caps, 'non-default capabilities (container "c" must not include "NET_ADMIN", '
                  '"SYS_TIME" in securityContext.capabilities.add)'),
    (mutate_host_path, 'hostPath volumes (volume "h")'),
    (mutate_host_port, 'hostPort (container "c" uses hostPort 8080)'),
    (mutate_apparmor, 'forbidden AppArmor profile (container "c" must not set '
                      'securityContext.appArmorProfile.type to "Unconfined")'),
    (mutate_selinux, 'seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: '
                     'type "spc_t"; user may not be set)'),
    (mutate_proc_mount, 'procMount (container "c" must not set securityContext.procMount to '
                        '"Unmasked")'),
    (mutate_seccomp, 'seccompProfile (pod must not set securityContext.seccompProfile.type to '
                     '"Unconfined")'),
    (mutate_sysctls, "forbidden sysctls (kernel.msgmax)"),
]


@pytest.mark.parametrize("mutate,expected", BASELINE_CASES,
                         ids=[m.__name__ for m, _ in BASELINE_CASES])
def test_baseline_check(mutate: Any, expected: str) -> None:
    spec = good_spec()
    mutate(spec)
    assert evaluate("privileged", {}, spec) == []
    if mutate in (mutate_caps, mutate_host_path, mutate_seccomp):
        # restricted replaces these with its stricter versions
        assert expected in reasons("baseline", spec)
        assert expected not in reasons("restricted", spec)
    else:
        assert reasons("baseline", spec) == [expected]
        assert expected in reasons("restricted", spec)


def test_apparmor_annotation() -> None:
    meta = {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}}
    assert reasons("baseline", good_spec(), meta) == [
        'forbidden AppArmor profile (annotation '
        'container.apparmor.security.beta.kubernetes.io/c="unconfined")']
    meta["annotations"]["container.apparmor.security.beta.kubernetes.io/c"] = "runtime/default"
    assert reasons("baseline", good_spec(), meta) == []


def test_allowed_values_pass_baseline() -> None:
    spec = good_spec()
    c_sc(spec)["capabilities"]["add"] = ["CHOWN", "NET_BIND_SERVICE"]
    c_sc(spec)["seLinuxOptions"] = {"type": "container_t", "level": "s0:c1"}
    c_sc(spec)["procMount"] = "Default"
    spec["securityContext"] = {"sysctls": [{"name": "net.ipv4.ip_local_port_range",
                                            "value": "1 2"}]}
    assert evaluate("baseline", {}, spec) == []


def mutate_volume(s: dict[str, Any]) -> None:
    s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}})
    s["volumes"].append({"name": "h", "hostPath": {"path": "/"}})


def mutate_escalation(s: dict[str, Any]) -> None:
    c_sc(s).pop("allowPrivilegeEscalation")


def mutate_non_root(s: dict[str, Any]) -> None:
    c_sc(s).pop("runAsNonRoot")


def mutate_non_root_false(s: dict[str, Any]) -> None:
    c_sc(s)["runAsNonRoot"] = False


def mutate_run_as_user(s: dict[str, Any]) -> None:
    c_sc(s)["runAsUser"] = 0


def mutate_seccomp_unset(s: dict[str, Any]) -> None:
    c_sc(s).pop("seccompProfile")


def mutate_drop(s: dict[str, Any]) -> None:
    c_sc(s)["capabilities"] = {"drop": ["NET_RAW"], "add": ["CHOWN"]}


RESTRICTED_CASES = [
    (mutate_volume, 'restricted volume types (volumes "n", "h" use restricted volume types '
                    '"nfs", "hostPath")'),
    (mutate_escalation, 'allowPrivilegeEscalation != false (container "c" must set '
                        'securityContext.allowPrivilegeEscalation=false)'),
    (mutate_non_root, 'runAsNonRoot != true (pod or container "c" must set '
                      'securityContext.runAsNonRoot=true)'),
    (mutate_non_root_false, 'runAsNonRoot != true (container "c" must not set '
                            'securityContext.runAsNonRoot=false)'),
    (mutate_run_as_user, 'runAsUser=0 (container "c" must not set runAsUser=0)'),
    (mutate_seccomp_unset, 'seccompProfile (pod or container "c" must set '
                           'securityContext.seccompProfile.type to "RuntimeDefault" or '
                           '"Localhost")'),
    (mutate_drop, 'unrestricted capabilities (container "c" must set '
                  'securityContext.capabilities.drop=["ALL"]; container "c" must not include '
                  '"CHOWN" in securityContext.capabilities.add)'),
]


@pytest.mark.parametrize("mutate,expected", RESTRICTED_CASES,
                         ids=[m.__name__ for m, _ in RESTRICTED_CASES])
def test_restricted_check(mutate: Any, expected: str) -> None:
    spec = good_spec()
    mutate(spec)
    assert expected in reasons("restricted", spec)
    if mutate is not mutate_volume:
        assert reasons("baseline", spec) == []
    assert len(reasons("restricted", spec)) == 1


def test_restricted_pod_level_settings_cover_containers() -> None:
    spec = good_spec()
    for k in ("runAsNonRoot", "seccompProfile"):
        c_sc(spec).pop(k)
    spec["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "Localhost",
                                                                         "localhostProfile": "p"}}
    c_sc(spec)["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert evaluate("restricted", {}, spec) == []


def test_windows_pods_skip_linux_only_restricted_checks() -> None:
    spec = {"os": {"name": "windows"}, "containers": [
        {"name": "c", "securityContext": {"runAsNonRoot": True}}]}
    assert evaluate("restricted", {}, spec) == []


def test_several_containers_are_listed_together() -> None:
    spec = {"initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
            "containers": [{"name": "a", "securityContext": {"privileged": True}},
                           {"name": "b"}]}
    assert reasons("baseline", spec) == [
        'privileged (containers "i", "a" must not set securityContext.privileged=true)']


def test_forbidden_message_format() -> None:
    spec = {"hostNetwork": True, "containers": [{"name": "c",
                                                 "securityContext": {"privileged": True}}]}
    assert forbidden_message(LevelVersion("baseline"), evaluate("baseline", {}, spec)) == (
        'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), '
        'privileged (container "c" must not set securityContext.privileged=true)')


def test_namespace_labels() -> None:
    assert parse_policy({}) == DEFAULT_POLICY
    p = parse_policy({"pod-security.kubernetes.io/enforce": "restricted",
                      "pod-security.kubernetes.io/enforce-version": "v1.30",
                      "pod-security.kubernetes.io/warn": "privileged"})
    assert str(p.enforce) == "restricted:v1.30"
    assert str(p.warn) == "privileged:latest"
    assert str(p.audit) == str(DEFAULT_POLICY.audit)
    with pytest.raises(PolicyError):
        parse_policy({"pod-security.kubernetes.io/enforce": "strict"})
    with pytest.raises(PolicyError):
        parse_policy({"pod-security.kubernetes.io/audit-version": "1.30"})


def test_templates_of_workloads() -> None:
    tmpl = {"metadata": {"labels": {"a": "b"}}, "spec": good_spec()}
    assert pod_spec_of("apps", "Deployment", {"spec": {"template": tmpl}}) == \
        (tmpl["metadata"], tmpl["spec"])
    assert pod_spec_of("batch", "CronJob",
                       {"spec": {"jobTemplate": {"spec": {"template": tmpl}}}}) == \
        (tmpl["metadata"], tmpl["spec"])
    assert pod_spec_of("", "PodTemplate", {"template": tmpl}) == (tmpl["metadata"], tmpl["spec"])
    assert pod_spec_of("", "ConfigMap", {}) is None
