"""navio.api.protobuf: real kubectl 1.32.4 bodies and hand-built edge cases decode to JSON dicts.

The fixtures under fixtures/protobuf/ were captured from kubectl 1.32.4 by
fixtures/capture_protobuf.py (`<name>.bin`), next to kubectl's own JSON for the same object
(`<name>.kubectl.json`, from `--dry-run=client -o json`).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import pathlib

import pytest

from navio.api import protobuf
from navio.api.errors import BadRequest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
BODIES = FIXTURES / "protobuf"
MEDIA = "application/vnd.kubernetes.protobuf"


def _fixture(name: str) -> dict:
    return protobuf.decode((BODIES / f"{name}.bin").read_bytes())


# --- real kubectl bodies ---------------------------------------------------------------------

EXPECTED: dict[str, dict] = {
    "configmap": {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"a": "b"},
        "binaryData": {"blob.bin": base64.b64encode(bytes(range(256))).decode()}},
    "secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
               "data": {"k": "dg=="}},
    "deployment": {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"app": "d"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                       "ports": [{"containerPort": 80}]}]}}}},
    # replicas is a *int32: an explicit 0 on the wire must survive.
    "deployment_zero": {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "z", "labels": {"app": "z"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "z"}},
                 "template": {"metadata": {"labels": {"app": "z"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}},
    "job": {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {
            "containers": [{"name": "j", "image": "busybox", "command": ["echo", "hi"]}],
            "restartPolicy": "Never"}}}},
    "namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
    "service": {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc", "labels": {"app": "svc"}},
        "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80,
                            "targetPort": 8080}],
                 "selector": {"app": "svc"}, "type": "ClusterIP"}},
    "token": {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 600}},
    # status (allowed: false, all zero) is a non-pointer struct: left out.
    "cani": {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
             "spec": {"resourceAttributes": {"namespace": "default", "verb": "create",
                                             "resource": "pods"}}},
    "whoami": {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    "priorityclass": {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                      "metadata": {"name": "pc"}, "value": 10,
                      "preemptionPolicy": "PreemptLowerPriority"},
    "role": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "r"},
             "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]},
    "quota": {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
              "spec": {"hard": {"cpu": "1", "memory": "1Gi", "pods": "0"}}},
    # IngressRule embeds IngressRuleValue inline: `http` sits beside `host`.
    "ingress": {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
        "spec": {"rules": [{"host": "foo.com", "http": {"paths": [{
            "path": "/bar", "pathType": "Prefix",
            "backend": {"service": {"name": "svc", "port": {"name": "http"}}}}]}}]}},
    "cronjob": {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {
            "metadata": {"name": "cj"},
            "spec": {"template": {"spec": {
                "containers": [{"name": "cj", "image": "busybox", "command": ["date"]}],
                "restartPolicy": "OnFailure"}}}}}},
    # minAvailable is a *IntOrString: 0 stays; status (non-pointer, all zero) goes.
    "pdb": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "pdb"},
            "spec": {"minAvailable": 0, "selector": {"matchLabels": {"app": "x"}}}},
    # Copied by kubectl from a rich CronJob: inline embeds (Volume's source, Probe's handler,
    # SecretKeySelector's name), pointer zeros/falses, Quantities, a string IntOrString.
    "job_from_cronjob": {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "jc", "labels": {"team": "a"},
                     "annotations": {"cronjob.kubernetes.io/instantiate": "manual",
                                     "note": ""},
                     "ownerReferences": [{"kind": "CronJob", "name": "cj", "uid": "1234-abcd",
                                          "apiVersion": "batch/v1", "controller": True}]},
        "spec": {
            "parallelism": 1, "completions": 1, "backoffLimit": 0,
            "ttlSecondsAfterFinished": 0, "suspend": False,
            "template": {"metadata": {"labels": {"team": "a"}}, "spec": {
                "volumes": [{"name": "v", "emptyDir": {}},
                            {"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}}],
                "containers": [{
                    "name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 1"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "A", "valueFrom": {"secretKeyRef": {
                        "name": "s", "key": "k", "optional": False}}},
                            {"name": "B"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "64Mi"},
                                  "requests": {"cpu": "0"}},
                    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http",
                                                   "scheme": "HTTP"},
                                       "periodSeconds": 10},
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {"privileged": False, "runAsUser": 0},
                    "envFrom": [{"configMapRef": {"name": "cm"}}]}],
                "restartPolicy": "OnFailure", "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": False,
                "tolerations": [{"key": "k", "operator": "Exists",
                                 "effect": "NoSchedule"}]}}}},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_kubectl_body_decodes_to_expected_json(name: str) -> None:
    decoded = _fixture(name)
    assert decoded == EXPECTED[name]
    assert list(decoded)[:2] == ["apiVersion", "kind"]


def _without_nulls_and_empty_objects(value):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = _without_nulls_and_empty_objects(item)
            if item is not None and item != {}:
                out[key] = item
        return out
    if isinstance(value, list):
        return [_without_nulls_and_empty_objects(item) for item in value]
    return value


@pytest.mark.parametrize("name", sorted(p.name[:-len(".kubectl.json")]
                                        for p in BODIES.glob("*.kubectl.json")))
def test_matches_kubectls_own_json(name: str) -> None:
    """Up to nulls and `{}`, the decoded body is kubectl's JSON for the same object."""
    kubectl = json.loads((BODIES / f"{name}.kubectl.json").read_bytes())
    if name == "pdb":  # its all-zero status has non-omitempty ints: a dropped non-pointer struct
        del kubectl["status"]
    assert (_without_nulls_and_empty_objects(_fixture(name))
            == _without_nulls_and_empty_objects(kubectl))


def test_every_captured_body_is_covered() -> None:
    assert {p.stem for p in BODIES.glob("*.bin")} == set(EXPECTED)


def test_drain_eviction_is_sent_as_json_not_protobuf() -> None:
    body = (BODIES / "eviction.request.json").read_bytes()
    assert json.loads(body)["deleteOptions"] == {"gracePeriodSeconds": 0}
    with pytest.raises(BadRequest, match="magic"):
        protobuf.decode(body)


# --- hand-built bodies -------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _int(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _len(num: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _body(api_version: str, kind: str, raw: bytes, *extra: bytes) -> bytes:
    type_meta = _len(1, api_version) + _len(2, kind)
    return protobuf.MAGIC + _len(1, type_meta) + _len(2, raw) + b"".join(extra)


def _meta(name: str) -> bytes:  # ObjectMeta the way Go writes it: every non-pointer field
    return _len(1, _len(1, name) + _len(2, "") + _len(3, "") + _len(4, "") + _len(5, "")
                + _len(6, "") + _int(7, 0) + _len(8, b""))


def test_pointer_zero_kept_and_non_pointer_zero_dropped() -> None:
    # Eviction.deleteOptions.gracePeriodSeconds is *int64, orphanDependents *bool and
    # propagationPolicy *DeletionPropagation; ObjectMeta's empty strings, 0 and Time are not.
    raw = _meta("web-1") + _len(2, _int(1, 0) + _int(3, 0) + _len(4, ""))
    assert protobuf.decode(_body("policy/v1", "Eviction", raw)) == {
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1"},
        "deleteOptions": {"gracePeriodSeconds": 0, "orphanDependents": False,
                          "propagationPolicy": ""}}


def test_negative_ints_and_packed_repeated() -> None:
    security = _int(2, -1) + _len(4, _varint(5) + _varint(2**40) + _varint(-3))
    raw = _meta("p") + _len(2, _len(14, security) + _int(4, -30))
    decoded = protobuf.decode(_body("v1", "Pod", raw))
    assert decoded["spec"] == {
        "terminationGracePeriodSeconds": -30,
        "securityContext": {"runAsUser": -1, "supplementalGroups": [5, 2**40, -3]}}
    # int32 takes the low 32 bits of the (sign-extended) varint, as Go does
    deployment = _meta("d") + _len(2, _int(1, -1))
    assert protobuf.decode(_body("apps/v1", "Deployment", deployment))["spec"] == {
        "replicas": -1}


def test_unpacked_repeated_scalars_accumulate() -> None:
    security = _int(4, 1) + _int(4, 2) + _len(4, _varint(3))
    raw = _len(2, _len(14, security))
    assert protobuf.decode(_body("v1", "Pod", raw))["spec"] == {
        "securityContext": {"supplementalGroups": [1, 2, 3]}}


def test_time_microtime_and_zero_times() -> None:
    ts = 1_700_000_000  # 2023-11-14T22:13:20Z
    raw = (_len(1, _len(1, "e") + _len(8, b"") + _len(9, _int(1, ts) + _int(2, 5)))
           + _len(6, _int(1, ts) + _int(2, 999_999_999))
           + _len(7, _int(1, -62135596800))  # Go's zero time.Time
           + _len(10, _int(1, ts) + _int(2, 123_456_789)) + _int(8, 3))
    assert protobuf.decode(_body("v1", "Event", raw)) == {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e", "deletionTimestamp": "2023-11-14T22:13:20Z"},
        "firstTimestamp": "2023-11-14T22:13:20Z", "count": 3,
        "eventTime": "2023-11-14T22:13:20.123456Z"}


def test_fields_v1_raw_extension_and_int64() -> None:
    managed = _len(1, "kubectl") + _len(2, "Apply") + _len(4, _int(1, 1_700_000_000)) \
        + _len(6, "FieldsV1") + _len(7, _len(1, b'{"f:data":{}}'))
    raw = (_len(1, _len(1, "rev") + _len(17, managed))
           + _len(2, _len(1, b'{"spec":{"x":[1,2]}}')) + _int(3, 7))
    assert protobuf.decode(_body("apps/v1", "ControllerRevision", raw)) == {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "rev", "managedFields": [{
            "manager": "kubectl", "operation": "Apply", "time": "2023-11-14T22:13:20Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]},
        "data": {"spec": {"x": [1, 2]}}, "revision": 7}


def test_raw_extension_holding_protobuf_and_empty_raw_extension() -> None:
    inner = _body("v1", "ConfigMap", _meta("inner") + _len(2, _len(1, "k") + _len(2, "v")))
    raw = _len(1, _len(1, "rev")) + _len(2, _len(1, inner))
    assert protobuf.decode(_body("apps/v1", "ControllerRevision", raw))["data"] == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"},
        "data": {"k": "v"}}
    empty = _len(1, _len(1, "rev")) + _len(2, b"")
    assert "data" not in protobuf.decode(_body("apps/v1", "ControllerRevision", empty))


def test_extra_value_and_verbs_become_arrays() -> None:
    entry = _len(1, "scopes") + _len(2, _len(1, "a") + _len(1, "b"))
    raw = _len(2, _len(3, "alice") + _len(4, "dev") + _len(5, entry))
    assert protobuf.decode(_body("authorization.k8s.io/v1", "SubjectAccessReview", raw)) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "groups": ["dev"], "extra": {"scopes": ["a", "b"]}}}
    resource = _len(1, "pods") + _int(2, 1) + _len(3, "Pod") + _len(4, _len(1, "get"))
    raw = _len(1, "v1") + _len(2, resource)
    assert protobuf.decode(_body("v1", "APIResourceList", raw)) == {
        "apiVersion": "v1", "kind": "APIResourceList", "groupVersion": "v1",
        "resources": [{"name": "pods", "namespaced": True, "kind": "Pod",
                       "verbs": ["get"]}]}


def test_int_or_string_pointer_and_non_pointer() -> None:
    # ServicePort.targetPort is a non-pointer IntOrString: its zero value is left out
    port = _len(2, "TCP") + _int(3, 80) + _len(4, _int(1, 0) + _int(2, 0) + _len(3, ""))
    raw = _len(2, _len(1, port))
    assert protobuf.decode(_body("v1", "Service", raw))["spec"] == {
        "ports": [{"protocol": "TCP", "port": 80}]}
    # RollingUpdateDeployment.maxUnavailable is a *IntOrString: "25%" and 0 both stay
    rolling = _len(1, _int(1, 1) + _len(3, "25%")) + _len(2, _int(1, 0) + _int(2, 0))
    raw = _len(2, _len(4, _len(1, "RollingUpdate") + _len(2, rolling)))
    assert protobuf.decode(_body("apps/v1", "Deployment", raw))["spec"] == {
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}}}


def test_not_omitempty_scalars_keep_their_zero() -> None:
    # PriorityClass.value has no omitempty (required); globalDefault has it.
    raw = _meta("pc") + _int(2, 0) + _int(3, 0) + _len(4, "")
    assert protobuf.decode(_body("scheduling.k8s.io/v1", "PriorityClass", raw)) == {
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "pc"}, "value": 0}


def test_map_values_keep_empty_strings_and_repeated_message_fields_merge() -> None:
    labels = _len(11, _len(1, "flag") + _len(2, "")) + _len(11, _len(1, "novalue"))
    raw = _len(1, _len(1, "c")) + _len(1, labels)  # metadata sent in two pieces
    assert protobuf.decode(_body("v1", "ConfigMap", raw))["metadata"] == {
        "name": "c", "labels": {"flag": "", "novalue": ""}}


def test_go_duration_strings() -> None:
    cases = {0: "0s", 1: "1ns", 1_500: "1.5µs", 2_000_000: "2ms", 1_500_000_000: "1.5s",
             600_000_000_000: "10m0s", 3_723_000_000_000: "1h2m3s", -90_000_000_000: "-1m30s"}
    for ns, text in cases.items():
        assert protobuf._go_duration(ns) == text


def test_every_json_form_is_handled() -> None:
    forms = json.loads((pathlib.Path(protobuf.__file__).parent / "data"
                        / "protobuf-v1.32.json").read_bytes())["json_forms"]
    for name in forms:
        if name != "bytes":
            assert name in protobuf._FORMS or name.endswith(".ExtraValue"), name


# --- malformed input ---------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b"", "magic"),
    (b"{\"kind\":\"Pod\"}", "magic"),
    (b"k8s\x01" + _len(2, b""), "magic"),
    (protobuf.MAGIC + b"\x0a", "truncated"),                       # length varint missing
    (protobuf.MAGIC + b"\x0a\x05ab", "truncated"),                 # length past the end
    (protobuf.MAGIC + b"\xff" * 11, "over-long varint"),
    (protobuf.MAGIC + _len(2, b""), "apiVersion and kind"),
    (_body("v1", "NoSuchKind", b""), "unknown kind"),
    (_body("example.com/v1", "Widget", b""), "unknown kind"),
    (_body("v1", "ConfigMap", b"", _len(3, "gzip")), "contentEncoding"),
    (_body("v1", "ConfigMap", b"", _len(4, "application/json")), "contentType"),
    (_body("v1", "ConfigMap", b"", _len(4, MEDIA)), None),
    (protobuf.MAGIC + _len(1, _len(1, "v1") + _len(2, "ConfigMap")) + _len(9, b""),
     "field number 9"),
])
def test_malformed_bodies(body: bytes, message: str | None) -> None:
    if message is None:  # the control: Unknown.contentType naming protobuf itself is fine
        assert protobuf.decode(body) == {"apiVersion": "v1", "kind": "ConfigMap"}
        return
    with pytest.raises(BadRequest, match=message):
        protobuf.decode(body)


def test_unknown_field_number_names_message_and_number() -> None:
    raw = _meta("d") + _len(2, _int(1, 2) + _int(99, 1))
    with pytest.raises(BadRequest) as err:
        protobuf.decode(_body("apps/v1", "Deployment", raw))
    assert "field number 99" in err.value.message
    assert "k8s.io.api.apps.v1.DeploymentSpec" in err.value.message
    assert err.value.code == 400


def test_wrong_wire_type_truncated_message_and_bad_json() -> None:
    with pytest.raises(BadRequest, match="wire type 0 for field 1"):
        protobuf.decode(_body("v1", "ConfigMap", _int(1, 5)))  # metadata as a varint
    with pytest.raises(BadRequest, match="wire type 1"):
        protobuf.decode(_body("v1", "ConfigMap", _varint(1 << 3 | 1) + b"\0" * 8))
    with pytest.raises(BadRequest, match="truncated"):
        protobuf.decode(_body("v1", "ConfigMap", _len(1, _len(1, "c"))[:-1]))
    with pytest.raises(BadRequest, match="invalid JSON"):
        protobuf.decode(_body("apps/v1", "ControllerRevision", _len(2, _len(1, b"{nope"))))


def test_deep_nesting_is_refused() -> None:
    raw = b""
    for _ in range(200):  # RawExtension holding a protobuf body holding a RawExtension …
        raw = _body("apps/v1", "ControllerRevision", _len(2, _len(1, raw or b"{}")))
    with pytest.raises(BadRequest, match="deeper"):
        protobuf.decode(raw)


# --- the committed Go field tables match kubectl's type descriptors ---------------------------

def _capture_module():
    spec = importlib.util.spec_from_file_location(
        "capture_protobuf", FIXTURES / "capture_protobuf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not os.path.exists("/usr/lib/google-cloud-sdk/bin/kubectl.1.32"),
                    reason="needs the kubectl 1.32 binary")
def test_field_tables_match_kubectl_binary() -> None:
    capture = _capture_module()
    tables = capture.tables(capture.go_fields())
    assert tables["pointer"] == "".join(protobuf._POINTER)
    assert tables["not_omitempty"] == "".join(protobuf._NOT_OMITEMPTY)
    assert tables["optional_fields"] == protobuf._OPTIONAL_FIELDS
    schema = protobuf._schema()
    for (msg, num), name in tables["json_names"].items():
        assert schema[msg][num].name == ("" if name == "-" else name), (msg, num)
