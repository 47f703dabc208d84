"""The real kubectl against a real navio server: the commands of issue 2's acceptance list."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from cluster import Kubectl, NavioServer, wait_for

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}-app
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}-app
data:
  mode: fast
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: {ns}-app
stringData:
  password: hunter2
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {ns}-app
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}-app
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 8080
"""


def test_version_reports_kubernetes_1_32(kubectl: Kubectl) -> None:
    out = kubectl("version", "-o", "json")
    server = json.loads(out)["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "32")


def test_get_namespaces_lists_system_namespaces(kubectl: Kubectl) -> None:
    out = kubectl("get", "ns")
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    names = {line.split()[0] for line in out.splitlines()[1:]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


def test_apply_multi_document_file_creates_everything(kubectl: Kubectl, ns: str,
                                                      tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(MANIFEST.format(ns=ns))
    out = kubectl("apply", "-f", str(f))
    app = f"{ns}-app"
    assert f"namespace/{app} created" in out
    for line in ("configmap/settings created", "secret/creds created", "service/web created",
                 "deployment.apps/web created"):
        assert line in out
    svc = kubectl.json("get", "svc", "web", "-n", app)
    assert svc["spec"]["clusterIP"].startswith("10.")
    assert svc["spec"]["ports"][0]["protocol"] == "TCP"
    secret = kubectl.json("get", "secret", "creds", "-n", app)
    assert secret["type"] == "Opaque" and "password" in secret["data"]
    # Applying the same file again changes nothing.
    again = kubectl("apply", "-f", str(f))
    assert "deployment.apps/web unchanged" in again
    assert "configmap/settings unchanged" in again
    # A change is applied as a patch.
    f.write_text(MANIFEST.format(ns=ns).replace("replicas: 2", "replicas: 3"))
    changed = kubectl("apply", "-f", str(f))
    assert "deployment.apps/web configured" in changed
    assert kubectl.json("get", "deploy", "web", "-n", app)["spec"]["replicas"] == 3
    kubectl("delete", "namespace", app, "--wait=false")


def test_get_output_formats(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "cfg", "-n", ns, "--from-literal=k=v")
    kubectl("label", "configmap", "cfg", "-n", ns, "tier=backend")
    table = kubectl("get", "cm", "-n", ns)
    assert table.splitlines()[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["cfg", "1"] for line in table.splitlines())
    wide = kubectl("get", "cm", "-n", ns, "-o", "wide")
    assert "cfg" in wide
    as_yaml = yaml.safe_load(kubectl("get", "cm", "cfg", "-n", ns, "-o", "yaml"))
    assert as_yaml["data"] == {"k": "v"}
    assert kubectl("get", "cm", "cfg", "-n", ns, "-o", "jsonpath={.data.k}") == "v"
    assert "cfg" in kubectl("get", "cm", "-n", ns, "-l", "tier=backend")
    assert "cfg" not in kubectl("get", "cm", "-n", ns, "-l", "tier=frontend")
    assert "cfg" in kubectl("get", "cm", "-n", ns, "--field-selector", "metadata.name=cfg")
    all_ns = kubectl("get", "cm", "-A")
    assert all_ns.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [ns, "cfg"] for line in all_ns.splitlines())
    labels = kubectl("get", "cm", "cfg", "-n", ns, "--show-labels")
    assert "tier=backend" in labels


def test_get_watch_receives_a_later_change(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "w", "-n", ns, "--from-literal=a=1")
    # Every namespace holds the root CA ConfigMap, as in kube: wait for it so that the list
    # below is known.
    wait_for(lambda: kubectl.run("get", "cm", "kube-root-ca.crt", "-n", ns,
                                 check=False).returncode == 0, 30, "the root CA ConfigMap")
    proc = kubectl.popen("get", "cm", "-n", ns, "-w", "-o", "name")
    try:
        assert proc.stdout is not None
        # The listed objects come first; the watch starts from that list's resourceVersion,
        # so anything created after these lines must arrive as an event.
        listed = {proc.stdout.readline().strip(), proc.stdout.readline().strip()}
        assert listed == {"configmap/kube-root-ca.crt", "configmap/w"}
        kubectl("create", "configmap", "w2", "-n", ns, "--from-literal=a=2")
        line = _readline_within(proc, 20)
        assert line.strip() == "configmap/w2"
    finally:
        proc.kill()
        proc.communicate(timeout=5)


def _readline_within(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise AssertionError(f"no output from kubectl within {timeout}s")
        return proc.stdout.readline()
    finally:
        sel.close()


def test_create_deployment_sends_protobuf_and_scale_uses_subresource(kubectl: Kubectl,
                                                                     ns: str) -> None:
    out = kubectl("create", "deployment", "d", "-n", ns, "--image=nginx", "--replicas=2")
    assert "deployment.apps/d created" in out
    d = kubectl.json("get", "deploy", "d", "-n", ns)
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    out = kubectl("scale", "deployment", "d", "-n", ns, "--replicas=5")
    assert "deployment.apps/d scaled" in out
    assert kubectl.json("get", "deploy", "d", "-n", ns)["spec"]["replicas"] == 5
    assert kubectl.json("get", "deploy", "d", "-n", ns)["metadata"]["generation"] == 2


def test_describe_shows_the_object(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "deployment", "desc", "-n", ns, "--image=busybox")
    out = kubectl("describe", "deployment", "desc", "-n", ns)
    assert "Name:" in out and "desc" in out
    assert "busybox" in out


def test_patch_all_three_types(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "deployment", "p", "-n", ns, "--image=nginx")
    kubectl("patch", "deployment", "p", "-n", ns, "--type=merge",
            "-p", '{"metadata":{"labels":{"merged":"yes"}}}')
    kubectl("patch", "deployment", "p", "-n", ns, "--type=json",
            "-p", '[{"op":"replace","path":"/spec/replicas","value":4}]')
    kubectl("patch", "deployment", "p", "-n", ns,
            "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}')
    d = kubectl.json("get", "deploy", "p", "-n", ns)
    assert d["metadata"]["labels"]["merged"] == "yes"
    assert d["spec"]["replicas"] == 4
    containers = d["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("nginx", "nginx:2")]


def test_label_and_annotate(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "la", "-n", ns)
    assert "labeled" in kubectl("label", "cm", "la", "-n", ns, "a=1")
    assert "annotated" in kubectl("annotate", "cm", "la", "-n", ns, "note=hi")
    assert "unlabeled" in kubectl("label", "cm", "la", "-n", ns, "a-")
    cm = kubectl.json("get", "cm", "la", "-n", ns)
    assert "a" not in (cm["metadata"].get("labels") or {})
    assert cm["metadata"]["annotations"]["note"] == "hi"
    # Removing an absent label sends `{}`: a no-op the server must accept.
    kubectl("label", "cm", "la", "-n", ns, "absent-")


def test_edit_with_an_editor_script(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    kubectl("create", "deployment", "ed", "-n", ns, "--image=nginx")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/image: nginx$/image: nginx:edited/' \"$1\"\n")
    editor.chmod(0o755)
    out = kubectl("edit", "deployment", "ed", "-n", ns, env={"KUBE_EDITOR": str(editor)})
    assert "deployment.apps/ed edited" in out
    d = kubectl.json("get", "deploy", "ed", "-n", ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:edited"


def test_server_side_apply_reports_a_field_conflict(kubectl: Kubectl, ns: str,
                                                   tmp_path: Path) -> None:
    cm = textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: ssa
          namespace: {ns}
        data:
          key: one
        """)
    f = tmp_path / "cm.yaml"
    f.write_text(cm)
    out = kubectl("apply", "--server-side", "-f", str(f))
    assert "configmap/ssa serverside-applied" in out
    got = kubectl.json("get", "cm", "ssa", "-n", ns, "--show-managed-fields")
    assert any(m["manager"] == "kubectl" and m["operation"] == "Apply"
               for m in got["metadata"]["managedFields"])
    f.write_text(cm.replace("one", "two"))
    conflict = kubectl.run("apply", "--server-side", "--field-manager=other", "-f", str(f),
                           check=False)
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower() and ".data.key" in conflict.stderr
    forced = kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts",
                     "-f", str(f))
    assert "serverside-applied" in forced
    assert kubectl.json("get", "cm", "ssa", "-n", ns)["data"]["key"] == "two"


def test_delete_with_cascade_flags(kubectl: Kubectl, ns: str) -> None:
    for name in ("c1", "c2", "c3"):
        kubectl("create", "configmap", name, "-n", ns)
    assert 'configmap "c1" deleted' in kubectl("delete", "cm", "c1", "-n", ns)
    kubectl("delete", "cm", "c2", "-n", ns, "--cascade=background")
    kubectl("delete", "cm", "c3", "-n", ns, "--cascade=orphan", "--wait=false")
    missing = kubectl.run("get", "cm", "c1", "-n", ns, check=False)
    assert missing.returncode == 1
    assert 'configmaps "c1" not found' in missing.stderr


def test_explain_pod_spec_containers(kubectl: Kubectl) -> None:
    out = kubectl("explain", "pod.spec.containers")
    assert "KIND:       Pod" in out and "VERSION:    v1" in out
    assert "FIELD: containers <[]Container>" in out
    assert "image" in out


def test_api_resources_lists_kinds_with_short_names(kubectl: Kubectl) -> None:
    out = kubectl("api-resources")
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["deployments"][1] == "deploy"
    assert lines["pods"][1] == "po"
    assert "apps/v1" in lines["deployments"]


def test_invalid_object_names_the_field(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: bad
          namespace: {ns}
        spec:
          replicas: -1
          selector:
            matchLabels: {{app: bad}}
          template:
            metadata:
              labels: {{app: bad}}
            spec:
              containers:
              - name: c
        """))
    res = kubectl.run("create", "-f", str(f), check=False)
    assert res.returncode == 1
    assert 'The Deployment "bad" is invalid' in res.stderr
    assert "spec.replicas" in res.stderr
    assert "spec.template.spec.containers[0].image" in res.stderr


def test_get_raw_openapi_v2(kubectl: Kubectl) -> None:
    doc = json.loads(kubectl("get", "--raw", "/openapi/v2"))
    assert doc["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Pod" in doc["definitions"]


def test_anonymous_requests_are_refused(server: NavioServer) -> None:
    ca = server.data_dir / "pki" / "ca.crt"
    health = subprocess.run(["curl", "-s", "--cacert", str(ca), f"{server.url}/healthz"],
                            capture_output=True, text=True, timeout=10)
    assert health.stdout == "ok"
    denied = subprocess.run(["curl", "-s", "--cacert", str(ca), f"{server.url}/api/v1/pods"],
                            capture_output=True, text=True, timeout=10)
    status = json.loads(denied.stdout)
    assert status["code"] == 401 and status["reason"] == "Unauthorized"


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/version"])
def test_public_endpoints_need_no_credentials(server: NavioServer, path: str) -> None:
    ca = server.data_dir / "pki" / "ca.crt"
    res = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                          str(ca), f"{server.url}{path}"], capture_output=True, text=True,
                         timeout=10)
    assert res.stdout == "200"
