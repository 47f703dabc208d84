"""Field ownership and server-side apply, checked against managedFields real API servers wrote.

Sources of the expected values:
- SMD fieldpath/serialize_test.go golden data and serialize-pe_test.go element round trips;
- a Deployment made by `kubectl create deployment` (raw response body in a kubectl -v=9 log,
  API server 2024), a Pod made by `kubectl apply` plus the kubelet's status write (2021);
- the ConfigMap examples of kubernetes.io/docs/reference/using-api/server-side-apply;
- conflict wording from apimachinery managedfields/internal/conflict.go.
"""

import copy
import json

import pytest

from navio.api.errors import BadRequest, Conflict, to_status
from navio.api.fieldpath import FieldSet, make_path, path_string, value
from navio.api.managedfields import (LAST_APPLIED_ANNOTATION, apply, decode_managed_fields,
                                     encode_managed_fields, fields_of, update_managed_fields)

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"
CONFIGMAP = "io.k8s.api.core.v1.ConfigMap"
T0, T1, T2 = "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"

# --- real managedFields ---------------------------------------------------------------------------

SMD_GOLDEN = [
    r'{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},"k:{\"name\":\"first\"}":{},"k:{\"name\":\"second\"}":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{},"v:2":{},"v:3":{},"v:\"aa\"":{},"v:\"ab\"":{},"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}',  # noqa: E501
    r'{"f:aaa":{"k:{\"name\":\"second\"}":{"v:3":{"f:aab":{}}},"v:3":{},"v:true":{}},"f:aab":{"f:aaa":{},"f:aaf":{"k:{\"port\":443,\"protocol\":\"udp\"}":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"k:{\"name\":\"first\"}":{}},"f:aac":{"f:aaa":{"v:1":{}},"f:aac":{},"v:3":{"k:{\"name\":\"second\"}":{}}},"f:aad":{"f:aac":{"v:1":{}},"f:aaf":{"k:{\"name\":\"first\"}":{"k:{\"name\":\"first\"}":{}}},"i:1":{"i:1":{},"i:3":{"v:true":{}}}},"f:aae":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:4":{"f:aaf":{}}},"f:aaf":{"i:1":{"f:aac":{}},"i:2":{},"i:3":{}},"k:{\"name\":\"first\"}":{"f:aad":{"f:aaf":{}}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"f:aaa":{"f:aad":{}}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"f:aac":{},"k:{\"name\":\"first\"}":{"i:3":{}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"i:4":{}}},"v:1":{"f:aac":{"i:4":{}},"f:aaf":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{}},"v:2":{"f:aad":{"f:aaf":{}},"i:1":{}},"v:3":{"f:aaa":{},"k:{\"name\":\"first\"}":{},"i:2":{}},"v:\"aa\"":{"f:aab":{"f:aaf":{}},"f:aae":{},"k:{\"name\":\"first\"}":{"f:aad":{}},"i:2":{}},"v:\"ab\"":{"f:aaf":{"i:4":{}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:1":{"f:aae":{"i:4":{}}}},"v:true":{"k:{\"name\":\"second\"}":{"f:aaa":{}},"i:2":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"i:1":{"i:3":{"f:aaf":{}}},"i:2":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"v:1":{}}},"i:3":{"f:aab":{"v:true":{"v:\"aa\"":{}}},"f:aaf":{},"i:1":{}},"i:4":{"v:\"aa\"":{"f:aab":{"k:{\"name\":\"second\"}":{}}}}}',  # noqa: E501
]

# `kubectl create deployment nginx-0930 --image=nginx`, fieldsV1 bytes as the server sent them.
KUBECTL_CREATE_DEPLOYMENT = r'{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}'  # noqa: E501

# The same Deployment after defaulting, as the create handler hands it to the field manager.
CREATED_DEPLOYMENT = {
    "kind": "Deployment", "apiVersion": "apps/v1",
    "metadata": {"name": "nginx-0930", "namespace": "default", "creationTimestamp": None,
                 "labels": {"app": "nginx-0930"}},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx-0930"}},
             "template": {"metadata": {"creationTimestamp": None,
                                       "labels": {"app": "nginx-0930"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                   "resources": {},
                                                   "terminationMessagePath":
                                                       "/dev/termination-log",
                                                   "terminationMessagePolicy": "File",
                                                   "imagePullPolicy": "Always"}],
                                   "restartPolicy": "Always",
                                   "terminationGracePeriodSeconds": 30,
                                   "dnsPolicy": "ClusterFirst", "securityContext": {},
                                   "schedulerName": "default-scheduler"}},
             "strategy": {"type": "RollingUpdate",
                          "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
             "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
    "status": {},
}

# `kubectl apply -f pod.yaml` and then the kubelet's status update (sorted by the client).
CSA_POD_FIELDS = {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"pause\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {}, "f:securityContext": {".": {}, "f:privileged": {}}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}  # noqa: E501
KUBELET_POD_FIELDS = {"f:status": {"f:conditions": {"k:{\"type\":\"ContainersReady\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}, "k:{\"type\":\"Initialized\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}, "k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {".": {}, "k:{\"ip\":\"172.17.0.11\"}": {".": {}, "f:ip": {}}}, "f:startTime": {}}}  # noqa: E501
POD_LAST_APPLIED = '{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{},"name":"privileged","namespace":"default"},"spec":{"containers":[{"image":"k8s.gcr.io/pause","name":"pause","securityContext":{"privileged":true}}]}}\n'  # noqa: E501
CREATED_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "privileged", "namespace": "default",
                 "annotations": {LAST_APPLIED_ANNOTATION: POD_LAST_APPLIED}},
    "spec": {"containers": [{"image": "k8s.gcr.io/pause", "imagePullPolicy": "Always",
                             "name": "pause", "resources": {},
                             "securityContext": {"privileged": True},
                             "terminationMessagePath": "/dev/termination-log",
                             "terminationMessagePolicy": "File"}],
             "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "restartPolicy": "Always",
             "schedulerName": "default-scheduler", "securityContext": {},
             "terminationGracePeriodSeconds": 30},
    "status": {},
}
RUNNING_POD_STATUS = {
    "conditions": [
        {"lastProbeTime": None, "lastTransitionTime": "2021-04-08T06:20:36Z", "status": "True",
         "type": "Initialized"},
        {"lastProbeTime": None, "lastTransitionTime": "2021-04-12T04:42:55Z", "status": "True",
         "type": "Ready"},
        {"lastProbeTime": None, "lastTransitionTime": "2021-04-12T04:42:55Z", "status": "True",
         "type": "ContainersReady"},
        {"lastProbeTime": None, "lastTransitionTime": "2021-04-08T06:20:36Z", "status": "True",
         "type": "PodScheduled"}],
    "containerStatuses": [{"image": "k8s.gcr.io/pause:latest", "name": "pause", "ready": True,
                           "restartCount": 3, "started": True, "lastState": {},
                           "state": {"running": {"startedAt": "2021-04-12T04:42:54Z"}}}],
    "hostIP": "10.0.2.15", "phase": "Running", "podIP": "172.17.0.11",
    "podIPs": [{"ip": "172.17.0.11"}], "qosClass": "BestEffort",
    "startTime": "2021-04-08T06:20:36Z",
}

# kubernetes.io SSA docs, "Example" and "Operations in scope for field management".
DOCS_CONFIGMAP_APPLY_FIELDS = {"f:metadata": {"f:labels": {"f:test-label": {}}},
                               "f:data": {"f:key": {}}}
DOCS_MULTI_MANAGER_ENTRIES = [
    {"manager": "kubectl", "operation": "Apply", "time": "2019-03-30T15:00:00.000Z",
     "apiVersion": "v1", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:metadata": {"f:labels": {"f:test-label": {}}}}},
    {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
     "time": "2019-03-30T16:00:00.000Z", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:data": {"f:key": {}}}},
]


def entries_by_manager(obj):
    return {(e["manager"], e["operation"], e.get("subresource", "")): e
            for e in obj["metadata"].get("managedFields", [])}


def owned(obj, manager, operation="Apply"):
    e = entries_by_manager(obj).get((manager, operation, ""))
    return FieldSet.from_fields_v1(e["fieldsV1"]) if e else FieldSet()


# --- FieldsV1 encoding --------------------------------------------------------------------------

@pytest.mark.parametrize("raw", SMD_GOLDEN + [KUBECTL_CREATE_DEPLOYMENT],
                         ids=["smd golden flat set", "smd golden nested set",
                              "kubectl create deployment as served"])
def test_fields_v1_bytes_round_trip_exactly(raw):
    assert FieldSet.from_json(raw).to_json() == raw


@pytest.mark.parametrize("fields", [CSA_POD_FIELDS, KUBELET_POD_FIELDS,
                                    DOCS_CONFIGMAP_APPLY_FIELDS,
                                    json.loads(KUBECTL_CREATE_DEPLOYMENT)],
                         ids=["client-side-apply pod", "kubelet pod status", "ssa docs configmap",
                              "kubectl create deployment"])
def test_fields_v1_objects_round_trip(fields):
    assert FieldSet.from_fields_v1(fields).to_fields_v1() == fields


@pytest.mark.parametrize("element", [
    "i:0", "i:1234", "f:", "f:spec", "f: string-with-spaces   ", "f:more-complicated-string",
    'k:{"name":"my-container"}', 'k:{"name":"   name with spaces   "}',
    'k:{"port":"8080","protocol":"TCP"}', 'k:{"optionalField":null}',
    'k:{"jsonField":{"A":1,"B":null,"C":"D","E":{"F":"G"}}}', 'k:{"listField":["1","2","3"]}',
    "v:null", 'v:"some-string"', "v:1234", 'v:{"some":"json"}', 'k:{"name":"app-🚀"}',
    'k:{"name":"你好世界"}', "f:spec-🚀",
], ids=lambda e: f"element {e} round trips")
def test_path_element_round_trip(element):
    assert FieldSet.from_fields_v1({element: {}}).to_fields_v1() == {element: {}}


@pytest.mark.parametrize("fields, expected", [
    ({"f:aaa": {}, "r:aab": {}}, {"f:aaa": {}}),
    ({"f:a": {".": {}}}, {"f:a": {}}),
    ({"f:a": {"f:b": {}, ".": {}}}, {"f:a": {".": {}, "f:b": {}}}),
    ({"v:1.0": {}, "v:1": {}}, {"v:1": {}}),
], ids=["unknown element types are dropped", "a lone dot is a leaf",
        "the dot is written before the children", "1.0 and 1 are one set value"])
def test_fields_v1_decoding_normalises(fields, expected):
    out = FieldSet.from_fields_v1(fields).to_fields_v1()
    assert out == expected and list(out) == list(expected)


@pytest.mark.parametrize("path, text", [
    (make_path("spec", "replicas"), ".spec.replicas"),
    (make_path("spec", "containers", {"name": "c"}, "image"), '.spec.containers[name="c"].image'),
    (make_path("ports", {"protocol": "TCP", "containerPort": 80}),
     '.ports[containerPort=80,protocol="TCP"]'),
    (make_path("metadata", "finalizers", value("x")), '.metadata.finalizers[="x"]'),
    (make_path("args", 0), ".args[0]"),
], ids=["fields", "keyed item", "keys sorted", "set value", "index"])
def test_paths_print_as_kubernetes_does(path, text):
    assert path_string(path) == text


def test_key_values_are_html_escaped_like_go():
    fs = FieldSet.of(make_path("f", {"name": "a<b&c"}))
    assert fs.to_json() == r'{"f:f":{"k:{\"name\":\"a\\u003cb\\u0026c\"}":{}}}'


def test_managed_fields_entries_round_trip_and_sort_apply_first():
    managed = decode_managed_fields(list(reversed(DOCS_MULTI_MANAGER_ENTRIES)))
    assert encode_managed_fields(managed) == DOCS_MULTI_MANAGER_ENTRIES


@pytest.mark.parametrize("entry, error", [
    ({"manager": "m", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"},
     "operation"),
    ({"manager": "m", "operation": "Update", "fieldsType": "FieldsV1"}, "apiVersion"),
    ({"manager": "m", "operation": "Update", "apiVersion": "v1"}, "fieldsType"),
], ids=["unknown operation", "missing apiVersion", "missing fieldsType"])
def test_malformed_entries_are_rejected(entry, error):
    with pytest.raises(ValueError, match=error):
        decode_managed_fields([entry])


# --- fields_of -----------------------------------------------------------------------------------

@pytest.mark.parametrize("obj, schema, kwargs, expected", [
    ({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "test-cm", "namespace": "default", "uid": "u", "resourceVersion": "1",
                   "labels": {"test-label": "test"}},
      "data": {"key": "some value"}}, CONFIGMAP, {}, DOCS_CONFIGMAP_APPLY_FIELDS),
    ({"metadata": {"finalizers": ["a", "b"], "ownerReferences": [
        {"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u1"}]}}, CONFIGMAP, {},
     {"f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}},
                     "f:ownerReferences": {"k:{\"uid\":\"u1\"}": {}}}}),
    ({"spec": {"selector": {"matchLabels": {"a": "b"}},
               "template": {"spec": {"tolerations": [{"key": "k"}], "containers": [
                   {"name": "c", "ports": [{"containerPort": 80}]}]}}},
      "status": {"replicas": 1}},
     DEPLOYMENT, {"status_subresource": True},
     {"f:spec": {"f:selector": {}, "f:template": {"f:spec": {
         "f:tolerations": {},
         "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:ports": {
             "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                 ".": {}, "f:containerPort": {}}}}}}}}}),
    ({"spec": {"replicas": 1}, "status": {"replicas": 1}}, DEPLOYMENT, {},
     {"f:spec": {"f:replicas": {}}, "f:status": {"f:replicas": {}}}),
    ({"spec": {"replicas": 1}, "status": {"replicas": 1}}, DEPLOYMENT,
     {"subresource": "status", "status_subresource": True}, {"f:status": {"f:replicas": {}}}),
], ids=["configmap tracks labels and data but not name or uid",
        "finalizers are a set, ownerReferences atomic items keyed by uid",
        "atomic selector and tolerations, keyed containers, port protocol defaults to TCP, "
        "status left out",
        "status is tracked for kinds without a status subresource",
        "spec is left out on the status subresource"])
def test_fields_of(obj, schema, kwargs, expected):
    assert fields_of(obj, schema, **kwargs).to_fields_v1() == expected


CRD_SCHEMA = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "plain": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}}}},
        "merged": {"type": "array", "x-kubernetes-patch-strategy": "merge",
                   "x-kubernetes-patch-merge-key": "name",
                   "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "settings": {"type": "object", "x-kubernetes-map-type": "atomic",
                     "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }}}}


def test_list_and_map_types_without_list_type_follow_schemaconv():
    obj = {"spec": {"plain": [{"name": "a"}], "merged": [{"name": "a"}], "tags": ["x"],
                    "settings": {"a": "b"}, "free": {"deep": {"x": 1}, "list": [1]}}}
    assert fields_of(obj, CRD_SCHEMA).to_fields_v1() == {"f:spec": {
        "f:free": {"f:deep": {".": {}, "f:x": {}}, "f:list": {}},
        "f:merged": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}}},
        "f:plain": {}, "f:settings": {}, "f:tags": {"v:\"x\"": {}}}}


# --- update (create, update, patch) ---------------------------------------------------------------

def test_create_gives_the_creator_what_kubernetes_gives_it():
    out = update_managed_fields(None, CREATED_DEPLOYMENT, manager="kubectl-create",
                                schema=DEPLOYMENT, now=T0, status_subresource=True)
    [entry] = out["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k != "fieldsV1"} == {
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1",
        "time": T0, "fieldsType": "FieldsV1"}
    assert FieldSet.from_fields_v1(entry["fieldsV1"]).to_json() == KUBECTL_CREATE_DEPLOYMENT
    assert "managedFields" not in CREATED_DEPLOYMENT["metadata"]


def test_client_side_apply_pod_then_kubelet_status_match_the_real_entries():
    pod = update_managed_fields(None, CREATED_POD, manager="kubectl-client-side-apply",
                                schema=POD, now="2021-04-08T06:20:35Z", status_subresource=True)
    pod["metadata"]["uid"] = "aeb4d71a"
    pod["status"] = {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
         "lastTransitionTime": "2021-04-08T06:20:36Z"}]}
    running = copy.deepcopy(pod)
    running["status"] = RUNNING_POD_STATUS
    out = update_managed_fields(pod, running, manager="kubelet", subresource="status",
                                schema=POD, now="2021-04-12T04:42:55Z", status_subresource=True)
    entries = entries_by_manager(out)
    assert entries[("kubectl-client-side-apply", "Update", "")]["fieldsV1"] == CSA_POD_FIELDS
    kubelet = entries[("kubelet", "Update", "status")]
    assert kubelet["fieldsV1"] == KUBELET_POD_FIELDS
    assert kubelet["time"] == "2021-04-12T04:42:55Z"
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == [
        "kubectl-client-side-apply", "kubelet"]


def _created(manager="kubectl-create"):
    obj = update_managed_fields(None, CREATED_DEPLOYMENT, manager=manager, schema=DEPLOYMENT,
                                now=T0, status_subresource=True)
    obj["metadata"]["uid"] = "u1"
    return obj


@pytest.mark.parametrize("change, manager, gains, keeps_creator_time", [
    (lambda o: o["spec"].update(replicas=5), "kubectl-edit",
     {"f:spec": {"f:replicas": {}}}, True),
    (lambda o: o["metadata"]["labels"].update(tier="fe"), "kubectl-label",
     {"f:metadata": {"f:labels": {"f:tier": {}}}}, True),
    (lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="nginx:2"),
     "kubectl-set", {"f:spec": {"f:template": {"f:spec": {"f:containers": {
         "k:{\"name\":\"nginx\"}": {"f:image": {}}}}}}}, True),
], ids=["an edit takes replicas", "a label patch takes only the new label",
        "setting an image takes only the image"])
def test_update_moves_changed_fields_to_the_writer(change, manager, gains, keeps_creator_time):
    old = _created()
    new = copy.deepcopy(old)
    change(new)
    out = update_managed_fields(old, new, manager=manager, schema=DEPLOYMENT, now=T1,
                                status_subresource=True)
    entries = entries_by_manager(out)
    writer = entries[(manager, "Update", "")]
    assert writer["fieldsV1"] == gains and writer["time"] == T1
    creator = FieldSet.from_fields_v1(entries[("kubectl-create", "Update", "")]["fieldsV1"])
    assert not creator & FieldSet.from_fields_v1(gains)
    assert entries[("kubectl-create", "Update", "")]["time"] == T0


def test_removed_fields_leave_every_manager_and_empty_entries_go():
    old = _created()
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["tier"] = "fe"
    old = update_managed_fields(old, new, manager="kubectl-label", schema=DEPLOYMENT, now=T1,
                                status_subresource=True)
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]["tier"]
    del new["spec"]["revisionHistoryLimit"]
    out = update_managed_fields(old, new, manager="kubectl-edit", schema=DEPLOYMENT, now=T2,
                                status_subresource=True)
    entries = entries_by_manager(out)
    assert ("kubectl-label", "Update", "") not in entries
    assert ("kubectl-edit", "Update", "") not in entries   # it removed, it took nothing
    creator = FieldSet.from_fields_v1(entries[("kubectl-create", "Update", "")]["fieldsV1"])
    assert make_path("spec", "revisionHistoryLimit") not in creator


def test_a_write_that_changes_nothing_adds_no_entry_and_moves_no_time():
    old = _created()
    out = update_managed_fields(old, copy.deepcopy(old), manager="other", schema=DEPLOYMENT,
                                now=T1, status_subresource=True)
    assert out["metadata"]["managedFields"] == old["metadata"]["managedFields"]


def test_status_changes_on_the_main_resource_are_not_tracked():
    old = _created()
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 3}
    out = update_managed_fields(old, new, manager="other", schema=DEPLOYMENT, now=T1,
                                status_subresource=True)
    assert ("other", "Update", "") not in entries_by_manager(out)


@pytest.mark.parametrize("sent, expect_entries", [
    (None, False), ([], False), ([{}], False),
], ids=["an object without managedFields gains none on update",
        "an empty list clears them", "one empty entry clears them"])
def test_tracking_does_not_start_on_update(sent, expect_entries):
    old = _created()
    if sent is None:
        del old["metadata"]["managedFields"]
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 7
    if sent is not None:
        new["metadata"]["managedFields"] = sent
    out = update_managed_fields(old, new, manager="m", schema=DEPLOYMENT, now=T1,
                                status_subresource=True)
    assert ("managedFields" in out["metadata"]) is expect_entries
    assert out["spec"]["replicas"] == 7


def test_update_managers_are_capped_at_ten_with_ancient_changes():
    obj = _created()
    for i in range(11):
        new = copy.deepcopy(obj)
        new["metadata"]["labels"][f"l{i}"] = "x"
        obj = update_managed_fields(obj, new, manager=f"m{i:02}", schema=DEPLOYMENT,
                                    now=f"2024-01-01T00:{i + 1:02}:00Z", status_subresource=True)
    names = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(names) == 10 and "ancient-changes" in names and "kubectl-create" not in names
    ancient = FieldSet.from_fields_v1(
        entries_by_manager(obj)[("ancient-changes", "Update", "")]["fieldsV1"])
    assert make_path("metadata", "labels", "l0") in ancient
    assert make_path("spec", "replicas") in ancient


# --- apply -------------------------------------------------------------------------------------

CM = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}},
      "data": {"key": "some value"}}


def test_apply_creates_the_docs_configmap():
    out = apply(None, CM, manager="kubectl", force=False, schema=CONFIGMAP, now=T0)
    assert out["data"] == {"key": "some value"}
    assert out["metadata"]["managedFields"] == [
        {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T0,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key": {}},
                                                "f:metadata": {"f:labels": {
                                                    "f:test-label": {}}}}}]


def _applied(config, manager="kubectl", schema=CONFIGMAP, live=None, now=T0, **kw):
    out = apply(live, config, manager=manager, force=False, schema=schema, now=now, **kw)
    out["metadata"].setdefault("uid", "u1")
    return out


def test_apply_merges_maps_and_keyed_lists_and_keeps_other_managers_fields():
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "d", "labels": {"a": "1"}},
           "spec": {"selector": {"matchLabels": {"app": "d"}},
                    "template": {"spec": {"containers": [{"name": "a", "image": "a:1"},
                                                         {"name": "b", "image": "b:1"}]}}}}
    live = _applied(dep, manager="one", schema=DEPLOYMENT)
    mine = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"b": "2"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "c:1"}, {"name": "b", "env": [{"name": "X"}]}]}}}}
    out = _applied(mine, manager="two", schema=DEPLOYMENT, live=live, now=T1)
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "a", "image": "a:1"}, {"name": "c", "image": "c:1"},
        {"name": "b", "image": "b:1", "env": [{"name": "X"}]}]
    assert make_path("spec", "template", "spec", "containers", {"name": "a"}, "image") \
        in owned(out, "one")
    assert make_path("spec", "template", "spec", "containers", {"name": "b"}, "env",
                     {"name": "X"}, "name") in owned(out, "two")


@pytest.mark.parametrize("other_owner, kept", [
    (None, False), ("also-applies", True),
], ids=["a field dropped from the config is removed when nobody else owns it",
        "a field dropped from the config stays when another applier owns it"])
def test_apply_prunes_what_the_applier_stopped_applying(other_owner, kept):
    cfg = copy.deepcopy(CM)
    cfg["data"]["extra"] = "x"
    cfg["metadata"]["labels"]["gone"] = "soon"
    live = _applied(cfg)
    if other_owner:
        live = _applied({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "test-cm", "labels": {"gone": "soon"}},
                         "data": {"extra": "x"}}, manager=other_owner, live=live)
    out = _applied(CM, live=live, now=T1)
    assert ("extra" in out["data"]) is kept
    assert ("gone" in out["metadata"]["labels"]) is kept
    assert out["data"]["key"] == "some value"
    assert make_path("data", "extra") not in owned(out, "kubectl")


def test_apply_prunes_list_items_and_whole_struct_fields():
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}},
                    "template": {"spec": {"containers": [{"name": "a", "image": "a"},
                                                         {"name": "b", "image": "b"}]}}}}
    live = _applied(dep, schema=DEPLOYMENT)
    smaller = copy.deepcopy(dep)
    del smaller["spec"]["strategy"]
    del smaller["spec"]["template"]["spec"]["containers"][1]
    out = _applied(smaller, schema=DEPLOYMENT, live=live, now=T1)
    assert "strategy" not in out["spec"]
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "a"}]


def test_apply_keeps_fields_the_applier_never_applied():
    live = update_managed_fields(None, {**CM, "data": {"key": "v", "other": "o"}},
                                 manager="kubectl-create", schema=CONFIGMAP, now=T0)
    live["metadata"]["uid"] = "u1"
    out = _applied({**CM, "data": {"key": "v"}}, live=live, now=T1)
    assert out["data"] == {"key": "v", "other": "o"}
    assert make_path("data", "key") in owned(out, "kubectl")
    assert make_path("data", "key") in owned(out, "kubectl-create", "Update")


def _csa_deployment(replicas=2):
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "app1", "namespace": "default"},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "app1"}},
                         "template": {"metadata": {"labels": {"app": "app1"}},
                                      "spec": {"containers": [{"name": "c",
                                                               "image": "nginx"}]}}}}
    sent = copy.deepcopy(manifest)
    sent["metadata"]["annotations"] = {LAST_APPLIED_ANNOTATION: json.dumps(manifest) + "\n"}
    live = update_managed_fields(None, sent, manager="kubectl-client-side-apply",
                                 schema=DEPLOYMENT, now=T0, status_subresource=True)
    live["metadata"]["uid"] = "u1"
    return manifest, live


def test_conflict_with_a_client_side_apply_owner_is_a_409_with_one_cause_per_field():
    manifest, live = _csa_deployment()
    manifest["spec"]["replicas"] = 3
    with pytest.raises(Conflict) as err:
        apply(live, manifest, manager="my-tool", force=False, schema=DEPLOYMENT, now=T1,
              status_subresource=True)
    status = to_status(err.value)
    assert status["code"] == 409 and status["reason"] == "Conflict"
    assert status["message"] == ('Apply failed with 1 conflict: conflict with '
                                 '"kubectl-client-side-apply" using apps/v1: .spec.replicas')
    assert status["details"] == {"causes": [
        {"reason": "FieldManagerConflict",
         "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
         "field": ".spec.replicas"}]}


def test_several_conflicts_are_listed_by_manager():
    manifest, live = _csa_deployment()
    edited = copy.deepcopy(live)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    live = update_managed_fields(live, edited, manager="kubectl-edit", schema=DEPLOYMENT,
                                 now=T1, status_subresource=True)
    manifest["spec"]["replicas"] = 3
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:3"
    with pytest.raises(Conflict) as err:
        apply(live, manifest, manager="my-tool", force=False, schema=DEPLOYMENT, now=T2,
              status_subresource=True)
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using '
        'apps/v1:\n- .spec.replicas\nconflicts with "kubectl-edit" using apps/v1:\n'
        '- .spec.template.spec.containers[name="c"].image')
    assert [c["field"] for c in err.value.details["causes"]] == [
        ".spec.replicas", '.spec.template.spec.containers[name="c"].image']


def test_an_applier_conflicting_with_another_applier_is_named_without_version():
    live = _applied(CM, manager="first")
    with pytest.raises(Conflict, match=r'^Apply failed with 1 conflict: conflict with '
                                       r'"first": \.data\.key$'):
        apply(live, {**CM, "data": {"key": "changed"}}, manager="second", force=False,
              schema=CONFIGMAP, now=T1)


def test_force_takes_ownership_from_the_other_manager():
    manifest, live = _csa_deployment()
    manifest["spec"]["replicas"] = 3
    out = apply(live, manifest, manager="my-tool", force=True, schema=DEPLOYMENT, now=T1,
                status_subresource=True)
    assert out["spec"]["replicas"] == 3
    assert make_path("spec", "replicas") in owned(out, "my-tool")
    csa = owned(out, "kubectl-client-side-apply", "Update")
    assert make_path("spec", "replicas") not in csa
    assert make_path("spec", "template", "spec", "containers", {"name": "c"}, "image") in csa


def test_two_appliers_with_the_same_value_share_the_field_and_then_conflict():
    live = _applied(CM, manager="first")
    shared = _applied(CM, manager="second", live=live, now=T1)
    assert make_path("data", "key") in owned(shared, "first")
    assert make_path("data", "key") in owned(shared, "second")
    with pytest.raises(Conflict, match='conflict with "second"'):
        apply(shared, {**CM, "data": {"key": "changed"}}, manager="first", force=False,
              schema=CONFIGMAP, now=T2)
    released = _applied({**CM, "data": {}}, manager="second", live=shared, now=T2)
    assert released["data"] == {"key": "some value"}   # still owned by "first"
    assert make_path("data", "key") not in owned(released, "second")


def test_kubectl_upgrading_from_client_side_apply_takes_unchanged_fields():
    manifest, live = _csa_deployment()
    manifest["spec"]["replicas"] = 3
    out = apply(live, manifest, manager="kubectl", force=False, schema=DEPLOYMENT, now=T1,
                status_subresource=True)
    assert out["spec"]["replicas"] == 3
    assert json.loads(out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]) == manifest
    assert out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION].endswith("}\n")
    assert make_path("spec", "replicas") not in owned(out, "kubectl-client-side-apply",
                                                      "Update")


def test_kubectl_still_conflicts_when_the_live_value_left_the_last_applied_one():
    manifest, live = _csa_deployment()
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    live = update_managed_fields(live, scaled, manager="kubectl", subresource="scale",
                                 schema=DEPLOYMENT, now=T1, status_subresource=True)
    manifest["spec"]["replicas"] = 3
    with pytest.raises(Conflict) as err:
        apply(live, manifest, manager="kubectl", force=False, schema=DEPLOYMENT, now=T2,
              status_subresource=True)
    assert err.value.message == ('Apply failed with 1 conflict: conflict with "kubectl" '
                                 'with subresource "scale" using apps/v1: .spec.replicas')


def test_apply_to_an_object_without_managed_fields_credits_the_earlier_writer():
    live = copy.deepcopy(CM)
    live["metadata"]["uid"] = "u1"
    with pytest.raises(Conflict, match='"before-first-apply" using v1: .data.key'):
        apply(live, {**CM, "data": {"key": "new"}}, manager="kubectl", force=False,
              schema=CONFIGMAP, now=T1)


def test_apply_ignores_status_on_the_main_resource():
    cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": 1}, "status": {"replicas": 9}}
    out = apply(None, cfg, manager="kubectl", force=False, schema=DEPLOYMENT, now=T0,
                status_subresource=True)
    assert "status" not in out
    assert owned(out, "kubectl").to_fields_v1() == {"f:spec": {"f:replicas": {}}}


def test_a_no_op_apply_keeps_the_appliers_time():
    live = _applied(CM)
    out = _applied(CM, live=live, now=T1)
    assert out["metadata"]["managedFields"][0]["time"] == T0


def test_apply_rejects_managed_fields_in_the_config():
    with pytest.raises(BadRequest, match="metadata.managedFields must be nil"):
        apply(None, {**CM, "metadata": {**CM["metadata"], "managedFields": []}},
              manager="kubectl", force=False, schema=CONFIGMAP, now=T0)
