"""`kind: List` manifests with kubectl's client-side validation, which reads /openapi/v2 as
protobuf (gnostic's openapi.v2.Document)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cluster import Kubectl, NavioServer
from rawhttp import request

LIST = textwrap.dedent("""\
    apiVersion: v1
    kind: List
    items:
    - apiVersion: v1
      kind: ConfigMap
      metadata:
        name: from-list
        namespace: {ns}
      data:
        a: b
    - apiVersion: v1
      kind: Service
      metadata:
        name: from-list
        namespace: {ns}
      spec:
        ports:
        - port: 80
          targetPort: 8080
        selector:
          app: x
    """)


def test_apply_a_list_with_validation(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    manifest = tmp_path / "list.yaml"
    manifest.write_text(LIST.format(ns=ns))
    out = kubectl("apply", "-f", str(manifest))
    assert "configmap/from-list created" in out
    assert "service/from-list created" in out
    assert kubectl.json("get", "configmap", "from-list", "-n", ns)["data"] == {"a": "b"}
    svc = kubectl.json("get", "service", "from-list", "-n", ns)
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    # Applied again: validation still passes and nothing changes.
    assert "unchanged" in kubectl("apply", "-f", str(manifest))


def test_list_item_with_an_unknown_field_fails_client_validation(kubectl: Kubectl, ns: str,
                                                                 tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(LIST.format(ns=ns).replace("  data:\n", "  dataa:\n"))
    result = kubectl.run("apply", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert ('ValidationError(ConfigMap): unknown field "dataa" in io.k8s.api.core.v1.ConfigMap'
            in result.stderr), result.stderr
    assert kubectl.run("get", "configmap", "from-list", "-n", ns, check=False).returncode != 0


def test_openapi_v2_content_negotiation(server: NavioServer) -> None:
    code, headers, body = request(server, "GET", "/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert code == 200
    assert headers["content-type"] == \
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert body[:1] == b"\x0a" and b"io.k8s.api.core.v1.ConfigMap" in body
    code, headers, body = request(server, "GET", "/openapi/v2",
                                  headers={"Accept": "application/json"})
    assert code == 200 and headers["content-type"].startswith("application/json")
    assert body.startswith(b"{")
