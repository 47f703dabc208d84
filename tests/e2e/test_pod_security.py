"""Pod Security admission with the real kubectl (issue 14): the namespace labels' levels are
enforced, warned about and audited as kube-apiserver does, with navio's default of baseline
enforce and restricted warn for namespaces without labels."""

from __future__ import annotations

import json

from cluster import Kubectl, NavioServer, wait_for

PRIVILEGED_POD = """
apiVersion: v1
kind: Pod
metadata: {name: priv}
spec:
  containers:
  - name: c
    image: busybox
    securityContext: {privileged: true}
"""

PLAIN_POD = """
apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  containers: [{name: c, image: busybox}]
"""

RESTRICTED_WARNING = (
    'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
    '(container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted '
    'capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")')


def test_privileged_pod_refused_by_the_default_baseline_with_kubes_message(
        kubectl: Kubectl, ns: str) -> None:
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=PRIVILEGED_POD, check=False)
    assert proc.returncode != 0
    assert ('pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged '
            '(container "c" must not set securityContext.privileged=true)') in proc.stderr
    assert kubectl.run("get", "pod", "priv", "-n", ns, check=False).returncode != 0


def test_privileged_namespace_allows_the_privileged_pod(kubectl: Kubectl, ns: str) -> None:
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged")
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/warn=privileged")
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=PRIVILEGED_POD)
    assert "pod/priv created" in proc.stdout
    assert "Warning" not in proc.stderr


def test_restricted_warning_printed_by_kubectl_for_a_baseline_pod(
        kubectl: Kubectl, ns: str) -> None:
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=PLAIN_POD)
    assert "pod/plain created" in proc.stdout
    assert RESTRICTED_WARNING in proc.stderr


def test_workload_templates_are_warned_about_not_refused(kubectl: Kubectl, ns: str) -> None:
    proc = kubectl.run("create", "deployment", "d", "-n", ns, "--image=busybox")
    assert "deployment.apps/d created" in proc.stdout
    assert 'would violate PodSecurity "restricted:latest"' in proc.stderr
    proc = kubectl.run("patch", "deployment", "d", "-n", ns, "--type=merge",
                       "-p", '{"spec": {"template": {"spec": {"hostNetwork": true}}}}')
    assert ('Warning: would violate PodSecurity "baseline:latest": host namespaces '
            '(hostNetwork=true)') in proc.stderr


def test_enforce_label_change_warns_about_existing_pods(kubectl: Kubectl, ns: str) -> None:
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged")
    kubectl("apply", "-n", ns, "-f", "-", input=PRIVILEGED_POD)
    proc = kubectl.run("label", "--overwrite", "namespace", ns,
                       "pod-security.kubernetes.io/enforce=baseline")
    assert (f'Warning: existing pods in namespace "{ns}" violate the new PodSecurity enforce '
            f'level "baseline:latest"') in proc.stderr
    assert "Warning: priv: privileged" in proc.stderr
    bad = kubectl.run("label", "--overwrite", "namespace", ns,
                      "pod-security.kubernetes.io/enforce=strict", check=False)
    assert bad.returncode != 0
    assert 'Invalid value: "strict"' in bad.stderr


def test_restricted_enforce_and_audit_annotation(kubectl: Kubectl, server: NavioServer,
                                                 ns: str) -> None:
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/audit=restricted")
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=PLAIN_POD, check=False)
    assert 'violates PodSecurity "restricted:latest": allowPrivilegeEscalation' in proc.stderr
    ok = PLAIN_POD.replace("[{name: c, image: busybox}]", """
  - name: c
    image: busybox
    securityContext:
      allowPrivilegeEscalation: false
      runAsNonRoot: true
      capabilities: {drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}""")
    proc = kubectl.run("apply", "-n", ns, "-f", "-", input=ok)
    assert "pod/plain created" in proc.stdout and "Warning" not in proc.stderr
    # A workload template is audited: the annotation is on its audit event.
    kubectl("create", "deployment", "audited", "-n", ns, "--image=busybox")
    log = server.data_dir / "logs" / "audit.log"

    def audited() -> bool:
        for line in log.read_text().splitlines():
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if ref.get("namespace") == ns and ref.get("resource") == "deployments" and \
                    event.get("verb") == "create":
                violations = (event.get("annotations") or {}).get(
                    "pod-security.kubernetes.io/audit-violations", "")
                return violations.startswith('would violate PodSecurity "restricted:latest"')
        return False
    wait_for(audited, timeout=10, what="the audit-violations annotation")

