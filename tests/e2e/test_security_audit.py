"""Issue 3, audit: audit.k8s.io/v1 Event JSON lines, Metadata by default, a policy file, and
never a secret body, a header or a token value."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from cluster import Kubectl, NavioServer, wait_for

FIELDS = {"kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user",
          "sourceIPs", "userAgent", "requestReceivedTimestamp", "stageTimestamp"}


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def find(path: Path, **match: Any) -> list[dict[str, Any]]:
    def ok(e: dict[str, Any]) -> bool:
        ref = e.get("objectRef") or {}
        return all((ref.get(k[4:]) if k.startswith("ref_") else e.get(k)) == v
                   for k, v in match.items())
    return [e for e in events(path) if ok(e)]


def test_default_policy_records_metadata(server: NavioServer, kubectl: Kubectl, ns: str
                                         ) -> None:
    log = server.data_dir / "logs" / "audit.log"
    assert log.stat().st_mode & 0o777 == 0o600
    kubectl("create", "configmap", "audited", "-n", ns, "--from-literal=k=audit-body-marker")
    # (the controller manager's kube-root-ca.crt is created in the namespace too)
    got = wait_for(lambda: [e for e in find(log, verb="create", stage="ResponseComplete",
                                            ref_resource="configmaps", ref_namespace=ns)
                            if e["user"]["username"] == "kubernetes-admin"], 10,
                   "the create's audit event")
    e = got[0]
    assert FIELDS <= set(e) and e["apiVersion"] == "audit.k8s.io/v1" and e["kind"] == "Event"
    assert e["level"] == "Metadata" and e["responseStatus"]["code"] == 201
    assert e["user"]["username"] == "kubernetes-admin"
    assert "system:masters" in e["user"]["groups"]
    assert e["sourceIPs"] == ["127.0.0.1"] and e["userAgent"].startswith("kubectl/")
    assert e["objectRef"] == {"resource": "configmaps", "namespace": ns, "apiVersion": "v1"}
    assert "requestObject" not in e and "responseObject" not in e
    assert not find(log, auditID=e["auditID"], stage="RequestReceived")   # omitted by default
    assert "audit-body-marker" not in log.read_text()
    # A watch is on record when it starts, not only when it ends.
    proc = kubectl.popen("get", "configmaps", "-n", ns, "--watch")
    try:
        wait_for(lambda: find(log, verb="watch", stage="ResponseStarted", ref_namespace=ns),
                 20, "the watch's ResponseStarted event")
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_unauthenticated_requests_and_headers(server: NavioServer) -> None:
    log = server.data_dir / "logs" / "audit.log"
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces/default/secrets",
                                 headers={"Authorization": "Bearer audit-token-marker-123",
                                          "User-Agent": "audit-probe"})
    try:
        urllib.request.urlopen(req, context=ctx, timeout=10)
        raise AssertionError("an anonymous request for secrets succeeded")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    got = wait_for(lambda: find(log, userAgent="audit-probe", stage="ResponseComplete"), 10,
                   "the 401's audit event")
    assert got[0]["responseStatus"]["code"] == 401
    assert got[0]["user"]["username"] == "system:anonymous"
    assert "audit-token-marker-123" not in log.read_text()


def test_policy_file_levels_and_secret_cap(tmp_path: Path) -> None:
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
              "omitStages": ["RequestReceived"],
              "rules": [
                  {"level": "None", "users": ["system:kube-scheduler",
                                              "system:kube-controller-manager"]},
                  {"level": "None", "nonResourceURLs": ["/openapi*", "/api", "/apis*",
                                                        "/version"]},
                  {"level": "RequestResponse", "resources": [
                      {"group": "", "resources": ["secrets", "configmaps"]}]},
                  {"level": "Metadata"}]}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    srv = NavioServer(tmp_path / "data", extra_args=(
        "--no-agent", "--audit-policy-file", str(path),
        "--audit-log-path", str(tmp_path / "audit" / "audit.jsonl"))).start()
    try:
        log = tmp_path / "audit" / "audit.jsonl"
        kubectl = Kubectl(srv.kubeconfig, tmp_path / "home")
        kubectl("create", "configmap", "cm1", "--from-literal=k=cm-body-marker")
        kubectl("create", "secret", "generic", "s1", "--from-literal=k=secret-body-marker")
        kubectl("get", "namespaces")
        cm = wait_for(lambda: find(log, verb="create", ref_resource="configmaps"), 10, "cm")
        assert cm[0]["level"] == "RequestResponse"
        assert cm[0]["requestObject"]["data"] == {"k": "cm-body-marker"}
        assert cm[0]["responseObject"]["metadata"]["name"] == "cm1"
        sec = wait_for(lambda: find(log, verb="create", ref_resource="secrets"), 10, "secret")
        assert sec[0]["level"] == "Metadata"           # capped, whatever the policy says
        ns_list = wait_for(lambda: find(log, verb="list", ref_resource="namespaces"), 10, "ns")
        assert ns_list[0]["level"] == "Metadata"
        text = log.read_text()
        assert "secret-body-marker" not in text and "c2VjcmV0LWJvZHktbWFya2Vy" not in text
        assert not [e for e in events(log) if e["stage"] == "RequestReceived"]
        assert not [e for e in events(log) if e["user"]["username"] in (
            "system:kube-scheduler", "system:kube-controller-manager")]
        assert not [e for e in events(log) if e["requestURI"].startswith("/openapi")]
    finally:
        srv.stop()


def test_bad_policy_file_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n")
    proc = subprocess.run([sys.executable, "-m", "navio.cli.main", "server", "--data-dir",
                           str(tmp_path / "data"), "--port", "0", "--no-agent",
                           "--audit-policy-file", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "rules[0].level" in proc.stderr, proc.stderr


def test_audit_log_rotates_like_kube_apiserver(tmp_path: Path) -> None:
    """CIS 1.2.17-1.2.19: --audit-log-maxage/-maxbackup/-maxsize, lumberjack's naming."""
    import datetime as dt
    import http.client
    import re

    logs = tmp_path / "audit"
    logs.mkdir()
    now = dt.datetime.now(dt.timezone.utc)

    def stamp(t: dt.datetime) -> str:
        return t.strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
    too_old = logs / f"audit-{stamp(now - dt.timedelta(days=40))}.log"
    recent = logs / f"audit-{stamp(now - dt.timedelta(days=1))}.log"
    unrelated = logs / "audit-notes.log"
    for path in (too_old, recent, unrelated):
        path.write_text("{}\n")
    srv = NavioServer(tmp_path / "data", extra_args=(
        "--no-agent", "--audit-log-path", str(logs / "audit.log"), "--audit-log-maxsize", "1",
        "--audit-log-maxbackup", "2", "--audit-log-maxage", "30")).start()
    try:
        # at start: the backup older than maxage is gone, the others are untouched
        assert not too_old.exists() and recent.exists() and unrelated.exists()
        pki = srv.data_dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=30)
        pad = "p" * 7000   # each event carries its requestURI: ~7 KB an event
        try:
            for i in range(700):   # ~5 MB of events: four or five rotations of 1 MB
                conn.request("GET", f"/api/v1/namespaces/default/configmaps?marker=m{i:04d}x"
                                    f"&pad={pad}")
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 200
        finally:
            conn.close()
        pattern = re.compile(r"audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$")

        def backups() -> list[Path]:
            return sorted(p for p in logs.iterdir() if pattern.match(p.name))
        wait_for(lambda: "m0699x" in (logs / "audit.log").read_text(), 10,
                 "the last request's event")
        kept = backups()
        assert len(kept) == 2, kept                      # maxbackup: the two newest
        assert recent not in kept and unrelated.exists()  # the oldest went first
        for path in kept + [logs / "audit.log"]:
            assert path.stat().st_size <= 1024 * 1024     # maxsize, in MiB as lumberjack
            assert path.stat().st_mode & 0o777 == 0o600
        assert kept[0].stat().st_size > 1024 * 1024 - 16 * 1024   # rotated when full
        text = "".join(p.read_text() for p in kept)
        assert "m0000x" not in text and "m0000x" not in (logs / "audit.log").read_text()
        for line in text.splitlines():   # whole events only: none split across files
            assert json.loads(line)["kind"] == "Event"
    finally:
        srv.stop()
