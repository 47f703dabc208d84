"""Admission webhooks (#4) against a real navio server and the real kubectl.

The webhooks are served by the test itself (`webhook_server.py`: aiohttp over TLS on
127.0.0.1, certificate from a CA the test makes). The server is this module's own, so the
cluster-wide webhook configurations cannot disturb other tests; every configuration matches
only namespaces labelled for the test that made it, and is deleted afterwards.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from cluster import Kubectl, NavioServer, wait_for
from webhook_server import WebhookServer

_names = itertools.count()
_TEST_LABEL = "webhook-test"


@pytest.fixture(scope="module")
def wh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NavioServer]:
    srv = NavioServer(tmp_path_factory.mktemp("navio-webhooks") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kc(wh_server: NavioServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(wh_server.kubeconfig, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    server = WebhookServer(tmp_path_factory.mktemp("webhook-pki")).start()
    yield server
    server.stop()


@pytest.fixture
def wns(kc: Kubectl) -> Iterator[str]:
    """A fresh namespace labelled `webhook-test=<its name>` (what the configurations select)."""
    name = f"wh{next(_names)}"
    kc("create", "namespace", name)
    kc("label", "namespace", name, f"{_TEST_LABEL}={name}")
    yield name
    kc("delete", "namespace", name, "--wait=false", check=False)


def _hook(name: str, url: str, ca: str, ns: str, *, mutating: bool = False,
          resources: tuple[str, ...] = ("configmaps",),
          operations: tuple[str, ...] = ("CREATE", "UPDATE"), **extra: Any) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "name": name, "clientConfig": {"url": url, "caBundle": ca},
        "rules": [{"operations": list(operations), "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": list(resources)}],
        "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "namespaceSelector": {"matchLabels": {_TEST_LABEL: ns}},
    }
    hook.update(extra)
    return hook


def _apply(kc: Kubectl, kind: str, name: str, *hooks: dict[str, Any]) -> None:
    body = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": name}, "webhooks": list(hooks)}
    kc("apply", "-f", "-", input=json.dumps(body))


def _configmap(kc: Kubectl, ns: str, name: str, labels: dict[str, str] | None = None,
               *args: str, check: bool = True) -> Any:
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "data": {"k": "v"}}
    return kc.run("create", "-f", "-", "-o", "json", *args, input=json.dumps(body),
                  check=check)


def _delete(kc: Kubectl, kind: str, *names: str) -> None:
    kc("delete", kind, *names, "--ignore-not-found", check=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_configurations_are_served_with_kube_defaults(kc: Kubectl,
                                                               hooks: WebhookServer) -> None:
    _apply(kc, "ValidatingWebhookConfiguration", "defaults-v",
           {"name": "v.defaults.navio.test", "clientConfig": {"url": hooks.url + "/allow"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["secrets"]}],
            "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "namespaceSelector": {"matchLabels": {_TEST_LABEL: "nothing"}}})
    _apply(kc, "MutatingWebhookConfiguration", "defaults-m",
           {"name": "m.defaults.navio.test",
            "clientConfig": {"service": {"namespace": "default", "name": "hook"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["secrets"]}],
            "sideEffects": "NoneOnDryRun", "admissionReviewVersions": ["v1", "v1beta1"],
            "namespaceSelector": {"matchLabels": {_TEST_LABEL: "nothing"}}})
    try:
        v = kc.json("get", "validatingwebhookconfiguration", "defaults-v")["webhooks"][0]
        assert (v["failurePolicy"], v["matchPolicy"], v["timeoutSeconds"],
                v["objectSelector"], v["rules"][0]["scope"]) == ("Fail", "Equivalent", 10, {},
                                                                 "*")
        m = kc.json("get", "mutatingwebhookconfigurations", "defaults-m")["webhooks"][0]
        assert m["reinvocationPolicy"] == "Never"
        assert m["clientConfig"]["service"]["port"] == 443
        table = kc("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations")
        assert "WEBHOOKS" in table and "AGE" in table
        assert any(line.split()[:2] == ["validatingwebhookconfiguration.admissionregistration"
                                        ".k8s.io/defaults-v", "1"]
                   for line in table.splitlines()), table
        # v1 refuses webhooks with side effects, and requires sideEffects at all.
        bad = {"apiVersion": "admissionregistration.k8s.io/v1",
               "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "bad"},
               "webhooks": [{"name": "bad.navio.test", "clientConfig": {"url": hooks.url},
                             "sideEffects": "Some", "admissionReviewVersions": ["v1"]},
                            {"name": "bad", "clientConfig": {"url": "http://x"},
                             "admissionReviewVersions": ["v1"]}]}
        out = kc.run("create", "-f", "-", input=json.dumps(bad), check=False)
        assert out.returncode != 0
        assert 'webhooks[0].sideEffects: Unsupported value: "Some": supported values: ' \
               '"None", "NoneOnDryRun"' in out.stderr
        assert "webhooks[1].sideEffects: Required value: must specify one of None, " \
               "NoneOnDryRun" in out.stderr
        assert 'webhooks[1].name: Invalid value: "bad": should be a domain with at least ' \
               'three segments separated by dots' in out.stderr
        assert "webhooks[1].clientConfig.url: Invalid value: \"http\": 'https' is the only " \
               "allowed URL scheme" in out.stderr
        listed = kc("api-resources", "--categories=api-extensions")
        assert "ValidatingWebhookConfiguration" in listed
        assert "MutatingWebhookConfiguration" in listed
    finally:
        _delete(kc, "validatingwebhookconfiguration", "defaults-v")
        _delete(kc, "mutatingwebhookconfiguration", "defaults-m")


def test_validating_webhook_rejects_a_forbidden_label(kc: Kubectl, hooks: WebhookServer,
                                                      wns: str, wh_server: NavioServer) -> None:
    _apply(kc, "ValidatingWebhookConfiguration", f"deny-{wns}",
           _hook("deny.navio.test", hooks.url + "/deny", hooks.ca_bundle, wns))
    try:
        def refused() -> Any:
            out = _configmap(kc, wns, "bad", {"forbidden": "true"}, check=False)
            return out if out.returncode != 0 else kc("delete", "cm", "bad", "-n", wns) and None
        out = wait_for(refused, 30, "the validating webhook to take effect")
        assert 'admission webhook "deny.navio.test" denied the request: label forbidden=true ' \
               'is not allowed' in out.stderr
        assert "Error from server (Forbidden)" in out.stderr
        ok = _configmap(kc, wns, "ok", {"app": "x"})
        assert "Warning: deny webhook saw ConfigMap ok" in ok.stderr
        req = next(r for r in reversed(hooks.received("deny"))
                   if r.get("name") == "ok" and r["operation"] == "CREATE")
        assert req["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        assert req["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
        assert req["requestKind"] == req["kind"]
        assert req["requestResource"] == req["resource"]
        assert req["namespace"] == wns and req["dryRun"] is False
        assert req["oldObject"] is None and req["object"]["data"] == {"k": "v"}
        assert req["userInfo"]["username"] == "kubernetes-admin"
        assert "system:masters" in req["userInfo"]["groups"]
        assert req["options"]["kind"] == "CreateOptions"
        assert req["options"]["apiVersion"] == "meta.k8s.io/v1"
        # An update that adds the label is refused too; the webhook sees the old object.
        out = kc.run("label", "cm", "ok", "-n", wns, "forbidden=true", check=False)
        assert out.returncode != 0 and 'denied the request: label forbidden=true' in out.stderr
        upd = hooks.received("deny")[-1]
        assert upd["operation"] == "UPDATE" and upd["oldObject"]["metadata"]["name"] == "ok"
        assert upd["options"]["kind"] == "UpdateOptions"
        # Calls and refusals are counted as kube-apiserver counts them.
        metrics = kc("get", "--raw", "/metrics")
        assert 'apiserver_admission_webhook_rejection_count{error_type="no_error",' \
               'name="deny.navio.test",operation="CREATE",rejection_code="403",' \
               'type="validating"}' in metrics
        assert 'apiserver_admission_webhook_admission_duration_seconds_count{' \
               'name="deny.navio.test",operation="CREATE",rejected="false",' \
               'type="validating"}' in metrics
        # The webhook's audit annotation is in the audit log.
        log = wh_server.data_dir / "logs" / "audit.log"
        assert wait_for(lambda: '"deny.navio.test/checked":"true"' in log.read_text()
                        .replace(": ", ":"), 15, "the webhook's audit annotation")
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"deny-{wns}")


def test_mutating_webhook_adds_a_label(kc: Kubectl, hooks: WebhookServer, wns: str) -> None:
    _apply(kc, "MutatingWebhookConfiguration", f"mutate-{wns}",
           _hook("mutate.navio.test", hooks.url + "/mutate", hooks.ca_bundle, wns,
                 mutating=True))
    try:
        def mutated() -> bool:
            out = _configmap(kc, wns, "probe", {}, "--dry-run=server")
            return json.loads(out.stdout)["metadata"].get("labels", {}).get("mutated") == "yes"
        wait_for(mutated, 30, "the mutating webhook to take effect")
        created = json.loads(_configmap(kc, wns, "m1", {"app": "x"}).stdout)
        assert created["metadata"]["labels"] == {"app": "x", "mutated": "yes"}
        stored = kc.json("get", "cm", "m1", "-n", wns)
        assert stored["metadata"]["labels"]["mutated"] == "yes"
        # The audit log (level Metadata) records that the webhook mutated, not the patch.
        log = (Path(str(kc.kubeconfig)).parent / "logs" / "audit.log").read_text()
        assert '"mutation.webhook.admission.k8s.io/round_0_index_0"' in log
        assert "patch.webhook.admission.k8s.io" not in log
        # Objects without labels get the whole map; the dry run told the webhook.
        dry = [r for r in hooks.received("mutate") if r["dryRun"]]
        assert dry and dry[-1]["options"]["dryRun"] == ["All"]
    finally:
        _delete(kc, "mutatingwebhookconfiguration", f"mutate-{wns}")


def test_failure_policy_fail_and_ignore_when_the_webhook_is_down(kc: Kubectl,
                                                                  hooks: WebhookServer,
                                                                  wns: str) -> None:
    port = _closed_port()
    url = f"https://127.0.0.1:{port}/validate"
    _apply(kc, "ValidatingWebhookConfiguration", f"down-{wns}",
           _hook("down.navio.test", url, hooks.ca_bundle, wns, failurePolicy="Fail"))
    try:
        def failing() -> Any:
            out = _configmap(kc, wns, "c1", check=False)
            return out if out.returncode != 0 else kc("delete", "cm", "c1", "-n", wns) and None
        out = wait_for(failing, 30, "the failing webhook to take effect")
        assert ("Error from server (InternalError): error when creating \"STDIN\": Internal "
                f'error occurred: failed calling webhook "down.navio.test": failed to call '
                f'webhook: Post "https://127.0.0.1:{port}/validate?timeout=10s": dial tcp '
                f"127.0.0.1:{port}: connect: connection refused") in out.stderr
        # Other namespaces are not selected and keep working.
        assert kc.run("create", "configmap", "free", "-n", "default").returncode == 0
        kc("delete", "configmap", "free", "-n", "default")
        _apply(kc, "ValidatingWebhookConfiguration", f"down-{wns}",
               _hook("down.navio.test", url, hooks.ca_bundle, wns, failurePolicy="Ignore"))
        wait_for(lambda: _configmap(kc, wns, "c2", check=False).returncode == 0, 30,
                 "failurePolicy Ignore to let writes through")
        assert 'apiserver_admission_webhook_fail_open_count{name="down.navio.test",' \
               'type="validating"}' in kc("get", "--raw", "/metrics")
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"down-{wns}")


def test_namespace_and_object_selectors_limit_the_calls(kc: Kubectl, hooks: WebhookServer,
                                                        wns: str) -> None:
    other = f"{wns}-other"
    kc("create", "namespace", other)
    _apply(kc, "ValidatingWebhookConfiguration", f"sel-{wns}",
           _hook("sel.navio.test", hooks.url + "/deny", hooks.ca_bundle, wns,
                 objectSelector={"matchExpressions": [{"key": "checked", "operator": "In",
                                                       "values": ["yes"]}]}))
    try:
        def refused() -> Any:
            out = _configmap(kc, wns, "a", {"forbidden": "true", "checked": "yes"},
                             "--dry-run=server", check=False)
            return out.returncode != 0
        wait_for(refused, 30, "the selective webhook to take effect")
        # Not selected by the object selector: allowed although the label is forbidden.
        assert _configmap(kc, wns, "b", {"forbidden": "true"}).returncode == 0
        # In a namespace the selector does not match: allowed.
        assert _configmap(kc, other, "c", {"forbidden": "true", "checked": "yes"}
                          ).returncode == 0
        names = {r.get("name") for r in hooks.received("deny")
                 if r.get("namespace") in (wns, other)}
        assert "a" in names and "b" not in names and "c" not in names
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"sel-{wns}")
        kc("delete", "namespace", other, "--wait=false", check=False)


def test_webhook_timeout_is_honoured(kc: Kubectl, hooks: WebhookServer, wns: str) -> None:
    _apply(kc, "ValidatingWebhookConfiguration", f"slow-{wns}",
           _hook("slow.navio.test", hooks.url + "/slow", hooks.ca_bundle, wns,
                 timeoutSeconds=1))
    try:
        def timed_out() -> Any:
            started = time.monotonic()
            out = _configmap(kc, wns, "s", check=False)
            if out.returncode == 0:
                kc("delete", "cm", "s", "-n", wns)
                return None
            return out, time.monotonic() - started
        out, took = wait_for(timed_out, 60, "the slow webhook to time out")
        assert (f'failed calling webhook "slow.navio.test": failed to call webhook: Post '
                f'"{hooks.url}/slow?timeout=1s": context deadline exceeded') in out.stderr
        # The webhook would only answer after SLOW_SECONDS (10 s); kubectl's own start-up on a
        # loaded machine is the rest.
        assert took < 8.0, took
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"slow-{wns}")


def test_reinvocation_if_needed(kc: Kubectl, hooks: WebhookServer, wns: str) -> None:
    # Configurations run in name order: a-… (IfNeeded) before b-…, which changes the object.
    _apply(kc, "MutatingWebhookConfiguration", f"a-{wns}",
           _hook("reinvoke.navio.test", hooks.url + "/reinvoke", hooks.ca_bundle, wns,
                 mutating=True, reinvocationPolicy="IfNeeded"))
    _apply(kc, "MutatingWebhookConfiguration", f"b-{wns}",
           _hook("add-b.navio.test", hooks.url + "/add-b", hooks.ca_bundle, wns,
                 mutating=True))
    try:
        def both() -> Any:
            out = json.loads(_configmap(kc, wns, "r", {}, "--dry-run=server").stdout)
            labels = out["metadata"].get("labels") or {}
            return labels if "b" in labels and "a-saw-b" in labels else None
        labels = wait_for(both, 30, "both mutating webhooks to take effect")
        assert labels == {"b": "1", "a-saw-b": "true"}
    finally:
        _delete(kc, "mutatingwebhookconfiguration", f"a-{wns}", f"b-{wns}")


def test_webhooks_are_never_called_for_their_own_configurations(kc: Kubectl,
                                                                hooks: WebhookServer) -> None:
    port = _closed_port()
    everything = {"name": "all.navio.test",
                  "clientConfig": {"url": f"https://127.0.0.1:{port}/x"},
                  "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"],
                             "resources": ["*/*"]}],
                  "sideEffects": "None", "admissionReviewVersions": ["v1"],
                  "failurePolicy": "Fail"}
    _apply(kc, "ValidatingWebhookConfiguration", "lock-all", everything)
    try:
        wait_for(lambda: kc.run("create", "configmap", "x", "-n", "default", "--dry-run=server",
                                check=False).returncode != 0, 30, "the webhook to lock writes")
        # The configuration itself can still be changed and removed.
        kc("label", "validatingwebhookconfiguration", "lock-all", "still=writable")
    finally:
        _delete(kc, "validatingwebhookconfiguration", "lock-all")
    wait_for(lambda: kc.run("create", "configmap", "x", "-n", "default", "--dry-run=server",
                            check=False).returncode == 0, 30, "writes to work again")


def test_dry_run_calls_webhooks_without_side_effects(kc: Kubectl, hooks: WebhookServer,
                                                     wns: str) -> None:
    _apply(kc, "ValidatingWebhookConfiguration", f"dry-{wns}",
           _hook("dry.navio.test", hooks.url + "/deny", hooks.ca_bundle, wns,
                 sideEffects="NoneOnDryRun"))
    try:
        def refused() -> bool:
            return _configmap(kc, wns, "d", {"forbidden": "true"}, "--dry-run=server",
                              check=False).returncode != 0
        wait_for(refused, 30, "the webhook to refuse a dry run")
        req = hooks.received("deny")[-1]
        assert req["dryRun"] is True and req["options"]["dryRun"] == ["All"]
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"dry-{wns}")


def test_webhook_tls_is_verified_against_the_ca_bundle(kc: Kubectl, hooks: WebhookServer,
                                                       wns: str, tmp_path: Path) -> None:
    from navio.pki.certs import load_or_create_ca
    import base64
    other_ca = load_or_create_ca(tmp_path / "other", "other-ca")
    bundle = base64.b64encode(other_ca.pair.cert.read_bytes()).decode()
    _apply(kc, "ValidatingWebhookConfiguration", f"tls-{wns}",
           _hook("tls.navio.test", hooks.url + "/allow", bundle, wns))
    try:
        def failing() -> Any:
            out = _configmap(kc, wns, "t", check=False)
            return out if out.returncode != 0 else kc("delete", "cm", "t", "-n", wns) and None
        out = wait_for(failing, 30, "the untrusted webhook to fail")
        assert (f'Post "{hooks.url}/allow?timeout=10s": tls: failed to verify certificate: '
                "x509: certificate signed by unknown authority") in out.stderr
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"tls-{wns}")


def test_service_references_reach_a_ready_endpoint(kc: Kubectl, hooks: WebhookServer,
                                                   wns: str) -> None:
    """A `service` clientConfig goes to a ready endpoint of the Service's EndpointSlices
    (as kube-apiserver with --enable-aggregator-routing), TLS verified for
    `<name>.<namespace>.svc`."""
    kc("create", "namespace", "webhook-svc")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hook",
                                                               "namespace": "webhook-svc"},
           "spec": {"ports": [{"name": "https", "port": 443, "targetPort": hooks.port}]}}
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "hook-manual", "namespace": "webhook-svc",
                        "labels": {"kubernetes.io/service-name": "hook",
                                   "endpointslice.kubernetes.io/managed-by": "navio-e2e"}},
           "addressType": "IPv4", "ports": [{"name": "https", "port": hooks.port,
                                             "protocol": "TCP"}],
           "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}
    kc("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                              "items": [svc, eps]}))
    hook = _hook("svc.navio.test", "", hooks.ca_bundle, wns)
    hook["clientConfig"] = {"service": {"namespace": "webhook-svc", "name": "hook",
                                        "path": "/deny"}, "caBundle": hooks.ca_bundle}
    _apply(kc, "ValidatingWebhookConfiguration", f"svc-{wns}", hook)
    try:
        def refused() -> Any:
            out = _configmap(kc, wns, "s", {"forbidden": "true"}, "--dry-run=server",
                             check=False)
            return out if out.returncode != 0 else None
        out = wait_for(refused, 30, "the service-referenced webhook to take effect")
        assert 'admission webhook "svc.navio.test" denied the request' in out.stderr
        # No ready endpoint: the call fails with the service's URL in the message.
        kc("delete", "endpointslice", "hook-manual", "-n", "webhook-svc")
        out = wait_for(lambda: (lambda o: o if "no endpoints" in o.stderr else None)(
            _configmap(kc, wns, "s2", check=False)), 30, "the endpoint to go away")
        assert ('failed calling webhook "svc.navio.test": failed to call webhook: Post '
                '"https://hook.webhook-svc.svc:443/deny?timeout=10s": no endpoints available '
                'for service "hook"') in out.stderr
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"svc-{wns}")
        kc("delete", "namespace", "webhook-svc", "--wait=false", check=False)


def test_connect_requests_go_through_webhooks(kc: Kubectl, hooks: WebhookServer,
                                              wns: str) -> None:
    """`kubectl exec` is a CONNECT of pods/exec: webhooks see a PodExecOptions."""
    _apply(kc, "ValidatingWebhookConfiguration", f"exec-{wns}",
           _hook("exec.navio.test", hooks.url + "/deny", hooks.ca_bundle, wns,
                 resources=("pods/exec",), operations=("CONNECT",)))
    kc("run", "p", "-n", wns, "--image=busybox", "--labels=forbidden=true", "--", "sleep",
       "3600")
    try:
        def called() -> Any:
            kc.run("exec", "p", "-n", wns, "-c", "p", "--", "ls", check=False, timeout=30)
            return [r for r in hooks.received("deny") if r["operation"] == "CONNECT"
                    and r.get("namespace") == wns]
        req = wait_for(called, 30, "the exec to reach the webhook")[-1]
        assert req["kind"] == {"group": "", "version": "v1", "kind": "PodExecOptions"}
        assert req["resource"] == {"group": "", "version": "v1", "resource": "pods"}
        assert req["subResource"] == "exec" and req["name"] == "p"
        assert req["object"]["command"] == ["ls"] and req["object"]["container"] == "p"
        assert req["oldObject"] is None
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"exec-{wns}")


def test_scale_subresource_webhooks_see_a_scale(kc: Kubectl, hooks: WebhookServer,
                                                wns: str) -> None:
    rules = [{"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"],
              "resources": ["deployments/scale"]}]
    _apply(kc, "ValidatingWebhookConfiguration", f"scale-{wns}",
           _hook("scale.navio.test", hooks.url + "/allow", hooks.ca_bundle, wns, rules=rules))
    kc("create", "deployment", "d", "-n", wns, "--image=busybox")
    try:
        def called() -> Any:
            kc("scale", "deployment", "d", "-n", wns, "--replicas=2")
            return [r for r in hooks.received("allow") if r.get("namespace") == wns]
        req = wait_for(called, 30, "the scale to reach the webhook")[-1]
        assert req["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        assert req["resource"] == {"group": "apps", "version": "v1", "resource": "deployments"}
        assert req["subResource"] == "scale" and req["operation"] == "UPDATE"
        assert req["object"]["spec"]["replicas"] == 2
        assert req["oldObject"]["kind"] == "Scale"
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"scale-{wns}")


def test_an_injected_sidecar_is_prepared_like_the_rest_of_the_pod(kc: Kubectl,
                                                                  hooks: WebhookServer,
                                                                  wns: str) -> None:
    """kube prepares a new pod after mutating admission: the QoS class counts the sidecar a
    webhook injected (BestEffort alone, Burstable with it), and defaults apply to it."""
    _apply(kc, "MutatingWebhookConfiguration", f"sidecar-{wns}",
           _hook("sidecar.navio.test", hooks.url + "/sidecar", hooks.ca_bundle, wns,
                 resources=("pods",), operations=("CREATE",)))
    try:
        def injected() -> Any:
            out = kc.run("run", "p", "-n", wns, "--image=busybox", "--dry-run=server",
                         "-o", "json", "--", "sleep", "60")
            pod = json.loads(out.stdout)
            return pod if len(pod["spec"]["containers"]) == 2 else None
        pod = wait_for(injected, 30, "the sidecar injector to take effect")
        assert pod["status"]["qosClass"] == "Burstable"
        sidecar = pod["spec"]["containers"][1]
        assert sidecar["name"] == "sidecar"
        assert sidecar["terminationMessagePolicy"] == "File"       # defaulted after the patch
        assert sidecar["imagePullPolicy"] == "Always"
        # The ServiceAccount plugin, reinvoked, mounts the token into the sidecar too.
        mounts = {m["mountPath"] for m in sidecar.get("volumeMounts") or ()}
        assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
    finally:
        _delete(kc, "mutatingwebhookconfiguration", f"sidecar-{wns}")


def test_match_conditions_decide_whether_to_call(kc: Kubectl, hooks: WebhookServer,
                                                 wns: str) -> None:
    conditions = [{"name": "not-exempt", "expression": "object.metadata.name != 'exempt'"},
                  {"name": "not-admin-deletes",
                   "expression": "request.operation != 'DELETE'"}]
    _apply(kc, "ValidatingWebhookConfiguration", f"mc-{wns}",
           _hook("mc.navio.test", hooks.url + "/deny", hooks.ca_bundle, wns,
                 matchConditions=conditions))
    try:
        def refused() -> Any:
            out = _configmap(kc, wns, "bad", {"forbidden": "true"}, check=False)
            return out if out.returncode != 0 else kc("delete", "cm", "bad", "-n", wns) and None
        out = wait_for(refused, 30, "the validating webhook to take effect")
        assert 'admission webhook "mc.navio.test" denied the request' in out.stderr
        # A false condition skips the webhook: the forbidden label passes.
        calls = len(hooks.received("deny"))
        assert _configmap(kc, wns, "exempt", {"forbidden": "true"}).returncode == 0
        assert len(hooks.received("deny")) == calls

        # A condition that cannot be evaluated: Fail refuses without calling, Ignore skips.
        broken = [{"name": "broken", "expression": "object.metadata.labels.missing == 'x'"}]
        _apply(kc, "ValidatingWebhookConfiguration", f"mc-{wns}",
               _hook("mc.navio.test", hooks.url + "/deny", hooks.ca_bundle, wns,
                     matchConditions=broken, failurePolicy="Fail"))

        def failing() -> Any:
            out = _configmap(kc, wns, "c1", {"app": "x"}, check=False)
            return out if out.returncode != 0 else kc("delete", "cm", "c1", "-n", wns) and None
        out = wait_for(failing, 30, "the broken condition to take effect")
        assert ('Error from server (Forbidden): error when creating "STDIN": configmaps "c1" is '
                "forbidden: expression 'object.metadata.labels.missing == 'x'' resulted in "
                "error: no such key: missing") in out.stderr, out.stderr
        _apply(kc, "ValidatingWebhookConfiguration", f"mc-{wns}",
               _hook("mc.navio.test", hooks.url + "/deny", hooks.ca_bundle, wns,
                     matchConditions=broken, failurePolicy="Ignore"))
        wait_for(lambda: _configmap(kc, wns, "c2", {"forbidden": "true"},
                                    check=False).returncode == 0, 30,
                 "failurePolicy Ignore to skip the webhook")

        # Expressions are compiled when the configuration is written.
        body = {"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration", "metadata": {"name": f"mc2-{wns}"},
                "webhooks": [_hook("mc2.navio.test", hooks.url + "/deny", hooks.ca_bundle, wns,
                                   matchConditions=[{"name": "bad name!",
                                                     "expression": "object.(("}])]}
        out = kc.run("apply", "-f", "-", input=json.dumps(body), check=False)
        assert out.returncode != 0
        assert "webhooks[0].matchConditions[0].expression: Invalid value: \"object.((\": " \
               "compilation failed" in out.stderr, out.stderr
        assert "webhooks[0].matchConditions[0].name: Invalid value: \"bad name!\"" in out.stderr
    finally:
        _delete(kc, "validatingwebhookconfiguration", f"mc-{wns}")
