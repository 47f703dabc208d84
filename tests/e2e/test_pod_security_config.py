"""Pod Security admission configured from an AdmissionConfiguration file, as kube-apiserver's
`--admission-control-config-file` (issue 14): the PodSecurityConfiguration's `defaults` apply
to namespaces without labels, and its `exemptions` (namespaces, usernames, runtime classes)
skip the evaluation, recorded as the `pod-security.kubernetes.io/exempt` audit annotation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from cluster import Kubectl, NavioServer, wait_for

CONFIG = """
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  path: pod-security.yaml
"""

POD_SECURITY = """
apiVersion: pod-security.admission.config.k8s.io/v1
kind: PodSecurityConfiguration
defaults:
  enforce: restricted
  warn: restricted
exemptions:
  usernames: [ci-robot]
  runtimeClasses: [trusted]
  namespaces: [free]
"""


def pod(name: str, extra: str = "") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
{extra}  containers:
  - name: c
    image: busybox
    securityContext: {{privileged: true}}
"""


@pytest.fixture(scope="module")
def pserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    base = tmp_path_factory.mktemp("psa")
    (base / "admission.yaml").write_text(CONFIG)
    (base / "pod-security.yaml").write_text(POD_SECURITY)
    srv = NavioServer(base / "data", extra_args=(
        "--no-agent", "--admission-control-config-file", str(base / "admission.yaml"))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pctl(pserver: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(pserver.kubeconfig, tmp_path_factory.mktemp("psahome"))


def test_defaults_come_from_the_configuration(pctl: Kubectl) -> None:
    pctl("create", "namespace", "strict")
    proc = pctl.run("apply", "-n", "strict", "-f", "-", check=False, input="""
apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  containers: [{name: c, image: busybox}]
""")
    # A pod baseline allows is refused: the configured default enforce level is restricted.
    assert 'pods "plain" is forbidden: violates PodSecurity "restricted:latest": ' \
        'allowPrivilegeEscalation != false' in proc.stderr
    # kube-system is not exempt unless the configuration says so.
    proc = pctl.run("apply", "-n", "kube-system", "-f", "-", input=pod("sys"), check=False)
    assert 'violates PodSecurity "restricted:latest"' in proc.stderr


def test_exemptions(pctl: Kubectl, pserver: NavioServer) -> None:
    pctl("create", "namespace", "free")
    pctl("create", "namespace", "guarded")
    assert "pod/p created" in pctl("apply", "-n", "free", "-f", "-", input=pod("p"))
    proc = pctl.run("apply", "-n", "guarded", "-f", "-", input=pod("p"), check=False)
    assert 'pods "p" is forbidden: violates PodSecurity "restricted:latest"' in proc.stderr
    # An exempt user (impersonated; system:masters gives the RBAC to create pods).
    out = pctl("apply", "-n", "guarded", "-f", "-", "--as=ci-robot",
               "--as-group=system:masters", input=pod("robot"))
    assert "pod/robot created" in out
    proc = pctl.run("apply", "-n", "guarded", "-f", "-", "--as=someone-else",
                    "--as-group=system:masters", input=pod("other"), check=False)
    assert "forbidden: violates PodSecurity" in proc.stderr
    # An exempt runtime class.
    pctl("apply", "-f", "-", input="""
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: trusted}
handler: process
""")
    out = pctl("apply", "-n", "guarded", "-f", "-",
               input=pod("trusted", "  runtimeClassName: trusted\n"))
    assert "pod/trusted created" in out

    audit = pserver.data_dir / "logs" / "audit.log"

    def exemptions() -> set[tuple[str, str]]:
        found = set()
        for line in audit.read_text().splitlines():
            ev = json.loads(line)
            ref = ev.get("objectRef") or {}
            why = (ev.get("annotations") or {}).get("pod-security.kubernetes.io/exempt")
            if why and ref.get("resource") == "pods" and ev.get("verb") == "create":
                found.add((ref.get("namespace"), why))
        return found
    wait_for(lambda: exemptions() == {("free", "namespace"), ("guarded", "user"),
                                      ("guarded", "runtimeClass")},
             10, "the exemptions in the audit log")


def test_a_bad_configuration_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / "admission.yaml").write_text("""
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {enforce: strict}
    exemptions: {namespaces: [Not_A_Namespace]}
""")
    proc = subprocess.run(
        [sys.executable, "-m", "navio.cli.main", "server", "--data-dir", str(tmp_path / "d"),
         "--port", "0", "--no-agent", "--admission-control-config-file",
         str(tmp_path / "admission.yaml")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert 'defaults.enforce: Unsupported value: "strict"' in proc.stderr
    assert 'exemptions.namespaces[0]: Invalid value: "Not_A_Namespace"' in proc.stderr
