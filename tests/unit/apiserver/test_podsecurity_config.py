"""PodSecurityConfiguration parsing (navio.apiserver.podsecurityconfig): kube's format and
defaulting, navio's defaults without a PodSecurity entry, every problem reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from navio.api.podsecurity import LevelVersion, Policy
from navio.apiserver.podsecurityconfig import (NAVIO_DEFAULT, load_admission_config,
                                               parse_pod_security_configuration)


def psc(**fields: object) -> dict[str, object]:
    return {"apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration", **fields}


def test_unset_modes_default_to_privileged_latest() -> None:
    cfg = parse_pod_security_configuration(psc(defaults={"enforce": "baseline",
                                                         "warn-version": "v1.30"}))
    assert cfg.defaults == Policy(LevelVersion("baseline"), LevelVersion("privileged"),
                                  LevelVersion("privileged", "v1.30"))
    assert cfg.exempt_namespaces == cfg.exempt_usernames == cfg.exempt_runtime_classes == set()


def test_exemptions_and_errors() -> None:
    cfg = parse_pod_security_configuration(psc(exemptions={
        "usernames": ["system:serviceaccount:ci:robot"], "runtimeClasses": ["kata"],
        "namespaces": ["kube-system"]}))
    assert cfg.exempt_usernames == {"system:serviceaccount:ci:robot"}
    assert cfg.exempt_runtime_classes == {"kata"}
    assert cfg.exempt_namespaces == {"kube-system"}
    with pytest.raises(ValueError) as exc:
        parse_pod_security_configuration(psc(
            defaults={"audit": "lax", "enforce-version": "1.30"},
            exemptions={"namespaces": ["a", "a"], "usernames": [""]}))
    text = str(exc.value)
    assert 'defaults.audit: Unsupported value: "lax"' in text
    assert 'defaults.enforce-version: Invalid value: "1.30"' in text
    assert 'exemptions.namespaces[1]: Duplicate value: "a"' in text
    assert "exemptions.usernames[0]" in text
    with pytest.raises(ValueError, match="PodSecurityConfiguration"):
        parse_pod_security_configuration({"kind": "Other", "apiVersion": "v1"})


def test_admission_configuration_file(tmp_path: Path) -> None:
    f = tmp_path / "admission.yaml"
    f.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\n"
                 "plugins:\n- name: EventRateLimit\n  path: x.yaml\n")
    assert load_admission_config(f) == NAVIO_DEFAULT
    f.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\n"
                 "plugins:\n- name: PodSecurity\n  configuration:\n"
                 "    apiVersion: pod-security.admission.config.k8s.io/v1\n"
                 "    kind: PodSecurityConfiguration\n    defaults: {enforce: restricted}\n")
    assert load_admission_config(f).defaults.enforce == LevelVersion("restricted")
    f.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\n"
                 "plugins:\n- name: PodSecurity\n  path: missing.yaml\n")
    with pytest.raises(ValueError, match=str(f)):
        load_admission_config(f)
    f.write_text("kind: Nope")
    with pytest.raises(ValueError, match="AdmissionConfiguration"):
        load_admission_config(f)
