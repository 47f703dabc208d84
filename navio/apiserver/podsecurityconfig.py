"""The PodSecurity admission plugin's configuration: defaults and exemptions.

`navio server --admission-control-config-file FILE` reads kube-apiserver's format: an
`apiserver.config.k8s.io/v1` AdmissionConfiguration whose `PodSecurity` plugin entry holds
(inline as `configuration`, or in the file named by `path`, relative to FILE) a
`pod-security.admission.config.k8s.io/v1` PodSecurityConfiguration:

    defaults:    {enforce: baseline, enforce-version: latest, audit: ..., warn: ...}
    exemptions:  {usernames: [...], runtimeClasses: [...], namespaces: [...]}

As in kube, a mode the defaults leave out is `privileged` at `latest`, and the exemptions are
exactly those listed. Without the file (or without a PodSecurity entry in it) navio's own
defaults apply: baseline enforce, restricted warn, and kube-system, kube-public and
kube-node-lease exempt (SECURITY.md). A bad file stops the server with a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from navio.api.podsecurity import DEFAULT_POLICY, LEVELS, MODES, LevelVersion, Policy
from navio.api.validation import names

__all__ = ["PodSecurityConfig", "NAVIO_DEFAULT", "load_admission_config",
           "parse_pod_security_configuration"]

_ADMISSION_VERSIONS = ("apiserver.config.k8s.io/v1", "apiserver.k8s.io/v1alpha1")
_PSA_VERSIONS = tuple(f"pod-security.admission.config.k8s.io/{v}"
                      for v in ("v1", "v1beta1", "v1alpha1"))


@dataclass(frozen=True, slots=True)
class PodSecurityConfig:
    defaults: Policy = DEFAULT_POLICY
    exempt_usernames: frozenset[str] = frozenset()
    exempt_runtime_classes: frozenset[str] = frozenset()
    exempt_namespaces: frozenset[str] = frozenset()


NAVIO_DEFAULT = PodSecurityConfig(
    exempt_namespaces=frozenset({"kube-system", "kube-public", "kube-node-lease"}))


def _version_ok(v: str) -> bool:
    return v == "latest" or (v.startswith("v1.") and v[3:].isdigit()
                             and not (len(v) > 4 and v[3] == "0"))


def _strings(value: Any, path: str, check: Any, errs: list[str]) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        errs.append(f"{path}: Invalid value: must be a list of strings")
        return frozenset()
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            errs.append(f'{path}[{i}]: Invalid value: "{item}": must be non-empty')
            continue
        if item in seen:
            errs.append(f'{path}[{i}]: Duplicate value: "{item}"')
        for msg in check(item):
            errs.append(f'{path}[{i}]: Invalid value: "{item}": {msg}')
        seen.add(item)
    return frozenset(seen)


def parse_pod_security_configuration(doc: Any) -> PodSecurityConfig:
    """A PodSecurityConfiguration object; ValueError listing every problem."""
    if not isinstance(doc, dict):
        raise ValueError("PodSecurityConfiguration: not an object")
    if doc.get("kind") != "PodSecurityConfiguration" or doc.get("apiVersion") not in _PSA_VERSIONS:
        raise ValueError(f'expected kind PodSecurityConfiguration, apiVersion one of '
                         f'{", ".join(_PSA_VERSIONS)}; got {doc.get("kind")!r} '
                         f'{doc.get("apiVersion")!r}')
    errs: list[str] = []
    defaults = doc.get("defaults") or {}
    modes = {}
    for mode in MODES:
        level = defaults.get(mode) or "privileged"
        version = defaults.get(f"{mode}-version") or "latest"
        if level not in LEVELS:
            errs.append(f'defaults.{mode}: Unsupported value: "{level}": supported values: '
                        + ", ".join(f'"{lv}"' for lv in LEVELS))
        if not _version_ok(str(version)):
            errs.append(f'defaults.{mode}-version: Invalid value: "{version}": must be '
                        f'"latest" or "v1.x"')
        modes[mode] = LevelVersion(level, str(version))
    ex = doc.get("exemptions") or {}
    usernames = _strings(ex.get("usernames"), "exemptions.usernames", lambda _: [], errs)
    classes = _strings(ex.get("runtimeClasses"), "exemptions.runtimeClasses",
                       names.is_dns1123_subdomain, errs)
    namespaces = _strings(ex.get("namespaces"), "exemptions.namespaces",
                          names.is_dns1123_label, errs)
    if errs:
        raise ValueError("invalid PodSecurityConfiguration: " + "; ".join(errs))
    return PodSecurityConfig(Policy(**modes), usernames, classes, namespaces)


def load_admission_config(path: Path) -> PodSecurityConfig:
    """The PodSecurity configuration in an AdmissionConfiguration file (navio's default when
    the file configures no PodSecurity); ValueError naming the file on any problem."""
    try:
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, dict) or doc.get("kind") != "AdmissionConfiguration" or \
                doc.get("apiVersion") not in _ADMISSION_VERSIONS:
            raise ValueError("expected kind AdmissionConfiguration, apiVersion "
                             "apiserver.config.k8s.io/v1")
        for plugin in doc.get("plugins") or ():
            if not isinstance(plugin, dict) or plugin.get("name") != "PodSecurity":
                continue
            if plugin.get("configuration") is not None:
                return parse_pod_security_configuration(plugin["configuration"])
            if plugin.get("path"):
                ref = Path(plugin["path"])
                ref = ref if ref.is_absolute() else path.parent / ref
                return parse_pod_security_configuration(yaml.safe_load(ref.read_text()))
            raise ValueError("plugin PodSecurity: neither configuration nor path is set")
        return NAVIO_DEFAULT
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"--admission-control-config-file {path}: {exc}") from None
