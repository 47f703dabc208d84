"""Validation causes read exactly as kube-apiserver v1.32 words them.

Expected strings are `<field>: <message>`, the line kubectl prints under
`The <Kind> "<name>" is invalid:`. Where upstream test files or real clusters quote a message,
the case uses that text (pkg/apis/*/validation/validation_test.go, apimachinery's
validation_test.go and objectmeta_test.go).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from navio.api.defaults import apply_defaults, prepare_for_create
from navio.api.errors import Invalid, cause
from navio.api.validation import validate, validate_name

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
               "start with an alphabetic character, and end with an alphanumeric character "
               "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
               "'[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                   "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                 "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                 "or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                  "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                  "'[-._a-zA-Z0-9]+')")


def _lines(group: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None,
           ) -> list[str]:
    obj = copy.deepcopy(obj)
    apply_defaults(group, kind, obj)
    if old is None:
        prepare_for_create(group, kind, obj)
    else:
        old = copy.deepcopy(old)
        apply_defaults(group, kind, old)
    return [f"{c['field']}: {c['message']}" for c in validate(group, kind, obj, old)]


def _container(**fields: Any) -> dict[str, Any]:
    return {"name": "c", "image": "nginx:1.25", **fields}


def _pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [_container()])
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def _template(labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [_container()])
    return {"metadata": {"labels": {"app": "x"} if labels is None else labels}, "spec": spec}


def _workload(selector: Any = ..., name: str = "w", **spec: Any) -> dict[str, Any]:
    if selector is ...:
        selector = {"matchLabels": {"app": "x"}}
    if selector is not None:
        spec["selector"] = selector
    spec.setdefault("template", _template())
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def _svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def _with_rv(obj: dict[str, Any], rv: str = "2") -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["resourceVersion"] = rv
    return obj


CREATE_CASES = [
    # Pods
    ("a pod without containers is rejected", "", "Pod", _pod(containers=[]),
     ["spec.containers: Required value"]),
    ("a container without an image is rejected", "", "Pod", _pod(containers=[{"name": "c"}]),
     ["spec.containers[0].image: Required value"]),
    ("a container name must be a DNS label", "", "Pod",
     _pod(containers=[_container(name="Bad_Name")]),
     [f'spec.containers[0].name: Invalid value: "Bad_Name": {LABEL_MSG}']),
    ("a dotted container name says it must not contain dots", "", "Pod",
     _pod(containers=[_container(name="a.b")]),
     ['spec.containers[0].name: Invalid value: "a.b": must not contain dots']),
    ("container names must be unique", "", "Pod",
     _pod(containers=[_container(), _container()]),
     ['spec.containers[1].name: Duplicate value: "c"']),
    ("an init container may not reuse a container's name", "", "Pod",
     _pod(initContainers=[_container()]), ['spec.initContainers[0].name: Duplicate value: "c"']),
    ("an unknown restart policy lists the supported ones", "", "Pod",
     _pod(restartPolicy="Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnFailure", "Never"']),
    ("an unknown DNS policy lists the supported ones", "", "Pod", _pod(dnsPolicy="Custom"),
     ['spec.dnsPolicy: Unsupported value: "Custom": supported values: '
      '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"']),
    ("a mount must name an existing volume", "", "Pod",
     _pod(containers=[_container(volumeMounts=[{"name": "v", "mountPath": "/data"}])]),
     ['spec.containers[0].volumeMounts[0].name: Not found: "v"']),
    ("volume names must be unique", "", "Pod", _pod(volumes=[{"name": "v"}, {"name": "v"}]),
     ['spec.volumes[1].name: Duplicate value: "v"']),
    ("a volume name must be a DNS label", "", "Pod", _pod(volumes=[{"name": "V"}]),
     [f'spec.volumes[0].name: Invalid value: "V": {LABEL_MSG}']),
    ("a volume may have only one source", "", "Pod",
     _pod(volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
     ["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"]),
    ("a mount path must be unique", "", "Pod",
     _pod(volumes=[{"name": "a"}, {"name": "b"}], containers=[_container(volumeMounts=[
         {"name": "a", "mountPath": "/x"}, {"name": "b", "mountPath": "/x"}])]),
     ['spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/x": must be unique']),
    ("a container port must be at most 65535", "", "Pod",
     _pod(containers=[_container(ports=[{"containerPort": 70000}])]),
     ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
      "65535, inclusive"]),
    ("a container port is required", "", "Pod",
     _pod(containers=[_container(ports=[{"name": "http"}])]),
     ["spec.containers[0].ports[0].containerPort: Required value"]),
    ("a port protocol must be TCP, UDP or SCTP", "", "Pod",
     _pod(containers=[_container(ports=[{"containerPort": 80, "protocol": "HTTP"}])]),
     ['spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: '
      '"SCTP", "TCP", "UDP"']),
    ("a port name needs a letter", "", "Pod",
     _pod(containers=[_container(ports=[{"containerPort": 80, "name": "8080"}])]),
     ['spec.containers[0].ports[0].name: Invalid value: "8080": must contain at least one '
      'letter (a-z)']),
    ("host ports may not collide", "", "Pod",
     _pod(containers=[_container(ports=[{"containerPort": 80, "hostPort": 8080}]),
                      _container(name="d", ports=[{"containerPort": 81, "hostPort": 8080}])]),
     ['spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"']),
    ("a request may not exceed its limit", "", "Pod",
     _pod(containers=[_container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})]),
     ['spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to '
      'cpu limit of 1']),
    ("requests are compared in canonical form", "", "Pod",
     _pod(containers=[_container(resources={"requests": {"memory": "400M"},
                                            "limits": {"memory": "50M"}})]),
     ['spec.containers[0].resources.requests: Invalid value: "400M": must be less than or equal '
      'to memory limit of 50M']),
    ("a negative request is rejected", "", "Pod",
     _pod(containers=[_container(resources={"requests": {"cpu": "-1"}})]),
     ['spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or '
      'equal to 0']),
    ("a resource name must be standard or qualified", "", "Pod",
     _pod(containers=[_container(resources={"requests": {"gpu": "1"}})]),
     ['spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
      'resource type or fully qualified',
      'spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard '
      'resource for containers']),
    ("an extended resource needs a limit", "", "Pod",
     _pod(containers=[_container(resources={"requests": {"example.com/gpu": "1"}})]),
     ["spec.containers[0].resources.limits: Required value: Limit must be set for non "
      "overcommitable resources"]),
    ("an env var name may not contain =", "", "Pod",
     _pod(containers=[_container(env=[{"name": "A=B", "value": "x"}])]),
     ['spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name '
      "must consist only of printable ASCII characters other than '='"]),
    ("an env var needs a name", "", "Pod", _pod(containers=[_container(env=[{"value": "x"}])]),
     ["spec.containers[0].env[0].name: Required value"]),
    ("an unsupported downward API path is refused when converted", "", "Pod",
     _pod(containers=[_container(env=[{"name": "X", "valueFrom": {"fieldRef": {
         "fieldPath": "spec.bogus"}}}])]),
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.bogus": '
      "error converting fieldPath: field label not supported: spec.bogus"]),
    ("a convertible but env-unsupported path lists the allowed ones", "", "Pod",
     _pod(containers=[_container(env=[{"name": "X", "valueFrom": {"fieldRef": {
         "fieldPath": "spec.restartPolicy"}}}])]),
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: '
      '"spec.restartPolicy": supported values: "metadata.name", "metadata.namespace", '
      '"metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", '
      '"status.hostIPs", "status.podIP", "status.podIPs"']),
    ("valueFrom needs exactly one source", "", "Pod",
     _pod(containers=[_container(env=[{"name": "X", "valueFrom": {}}])]),
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
      '`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`']),
    ("a liveness probe must succeed once", "", "Pod",
     _pod(containers=[_container(livenessProbe={"tcpSocket": {"port": 80},
                                                "successThreshold": 2})]),
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    ("a probe needs a handler", "", "Pod", _pod(containers=[_container(readinessProbe={})]),
     ["spec.containers[0].readinessProbe: Required value: must specify a handler type"]),
    ("an unknown pull policy lists the supported ones", "", "Pod",
     _pod(containers=[_container(imagePullPolicy="Sometimes")]),
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
      '"Always", "IfNotPresent", "Never"']),
    ("an image may not have surrounding whitespace", "", "Pod",
     _pod(containers=[_container(image=" nginx")]),
     ['spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing '
      'whitespace']),
    ("a toleration without a key must use Exists", "", "Pod",
     _pod(tolerations=[{"operator": "Equal", "value": "x"}]),
     ['spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` '
      'is empty, which means "match all values and all keys"']),
    ("activeDeadlineSeconds must be positive", "", "Pod", _pod(activeDeadlineSeconds=0),
     ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
      "inclusive"]),
    ("a pod name must be a DNS subdomain", "", "Pod", _pod(name="Web"),
     [f'metadata.name: Invalid value: "Web": {SUBDOMAIN_MSG}']),
    ("a pod needs a name", "", "Pod", {"metadata": {"namespace": "default"},
                                       "spec": {"containers": [_container()]}},
     ["metadata.name: Required value: name or generateName is required"]),
    ("a pod needs a namespace", "", "Pod", {"metadata": {"name": "p"},
                                            "spec": {"containers": [_container()]}},
     ["metadata.namespace: Required value"]),
    ("label values are checked against the map path", "", "Pod",
     {**_pod(), "metadata": {"name": "p", "namespace": "default", "labels": {"a": "b c"}}},
     [f'metadata.labels: Invalid value: "b c": {LABEL_VALUE_MSG}']),
    ("label keys are qualified names", "", "Pod",
     {**_pod(), "metadata": {"name": "p", "namespace": "default", "labels": {"-a": "b"}}},
     [f'metadata.labels: Invalid value: "-a": {NAME_PART_MSG}']),
    ("annotations may total at most 256 KiB", "", "Pod",
     {**_pod(), "metadata": {"name": "p", "namespace": "default",
                             "annotations": {"a": "x" * (256 * 1024)}}},
     ["metadata.annotations: Too long: may not be more than 262144 bytes"]),
    ("owner references need apiVersion, kind, name and uid", "", "Pod",
     {**_pod(), "metadata": {"name": "p", "namespace": "default", "ownerReferences": [{}]}},
     ['metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
      'metadata.ownerReferences.kind: Invalid value: "": must not be empty',
      'metadata.ownerReferences.name: Invalid value: "": must not be empty',
      'metadata.ownerReferences.uid: Invalid value: "": must not be empty']),
    ("a finalizer must be standard or qualified", "", "Pod",
     {**_pod(), "metadata": {"name": "p", "namespace": "default", "finalizers": ["custom"]}},
     ['metadata.finalizers[0]: Invalid value: "custom": name is neither a standard finalizer '
      'name nor is it fully qualified']),
    ("ephemeral containers cannot be set on create", "", "Pod",
     _pod(ephemeralContainers=[{"name": "dbg", "image": "busybox"}]),
     ["spec.ephemeralContainers: Forbidden: cannot be set on create"]),
    # Workloads
    ("a deployment needs a selector, and a nil selector matches no labels", "apps",
     "Deployment", _workload(selector=None),
     ["spec.selector: Required value",
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` '
      "does not match template `labels`"]),
    ("a deployment's selector must match its template", "apps", "Deployment",
     _workload(selector={"matchLabels": {"app": "y"}}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` '
      "does not match template `labels`"]),
    ("a deployment may not have negative replicas", "apps", "Deployment", _workload(replicas=-1),
     ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("a deployment's selector may not be empty", "apps", "Deployment", _workload(selector={}),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
      "deployment"]),
    ("a rolling update may not be stuck at zero", "apps", "Deployment",
     _workload(strategy={"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
     ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
      "`maxSurge` is 0"]),
    ("a deployment's pods must restart Always", "apps", "Deployment",
     _workload(template=_template(restartPolicy="Never")),
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
      '"Always"']),
    ("a deployment's pod template is validated", "apps", "Deployment",
     _workload(template=_template(containers=[{"name": "c"}])),
     ["spec.template.spec.containers[0].image: Required value"]),
    ("the progress deadline must exceed minReadySeconds", "apps", "Deployment",
     _workload(minReadySeconds=10, progressDeadlineSeconds=10),
     ["spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds"]),
    ("a replica set's selector must match its template", "apps", "ReplicaSet",
     _workload(selector={"matchLabels": {"app": "y"}}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` '
      "does not match template `labels`"]),
    ("a daemon set may not use an empty selector", "apps", "DaemonSet", _workload(selector={}),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
      "daemonset"]),
    ("a stateful set name must be a DNS label", "apps", "StatefulSet", _workload(name="a.b"),
     ['metadata.name: Invalid value: "a.b": must not contain dots']),
    ("a selector expression needs values for In", "apps", "ReplicaSet",
     _workload(selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
     ["spec.selector.matchExpressions[0].values: Required value: must be specified when "
      "`operator` is 'In' or 'NotIn'",
      'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), '
      'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", '
      'Operator:"In", Values:[]string(nil)}}}: invalid label selector']),
    # Jobs
    ("a job's pods may not restart Always", "batch", "Job",
     {**_workload(selector=None, name="j"), "metadata": {"name": "j", "namespace": "default",
                                                         "uid": "u"}},
     ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ("a job needs a uid for its generated selector", "batch", "Job",
     _workload(selector=None, name="j", template=_template(restartPolicy="Never")),
     ["metadata.uid: Required value"]),
    ("negative parallelism is rejected", "batch", "Job",
     {**_workload(selector=None, name="j", parallelism=-1,
                  template=_template(restartPolicy="Never")),
      "metadata": {"name": "j", "namespace": "default", "uid": "u"}},
     ["spec.parallelism: Invalid value: -1: must be greater than or equal to 0"]),
    ("a cron job needs a valid schedule", "batch", "CronJob",
     {"metadata": {"name": "cj", "namespace": "default"},
      "spec": {"schedule": "* * *", "jobTemplate": {"spec": {
          "template": _template(restartPolicy="OnFailure")}}}},
     ['spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]']),
    ("a cron job's minute must be below 60", "batch", "CronJob",
     {"metadata": {"name": "cj", "namespace": "default"},
      "spec": {"schedule": "70 * * * *", "jobTemplate": {"spec": {
          "template": _template(restartPolicy="OnFailure")}}}},
     ['spec.schedule: Invalid value: "70 * * * *": end of range (70) above maximum (59): 70']),
    ("a cron job name leaves room for the job suffix", "batch", "CronJob",
     {"metadata": {"name": "a" * 53, "namespace": "default"},
      "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {
          "template": _template(restartPolicy="OnFailure")}}}},
     [f'metadata.name: Invalid value: "{"a" * 53}": must be no more than 52 characters']),
    # Services
    ("a service needs ports", "", "Service", _svc(ports=[]), ["spec.ports: Required value"]),
    ("a service port must be 1 to 65535", "", "Service",
     _svc(ports=[{"port": 0, "targetPort": 8080}]),
     ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ("a service name is a DNS-1035 label", "", "Service", _svc(name="1web"),
     [f'metadata.name: Invalid value: "1web": {DNS1035_MSG}']),
    ("several service ports need names", "", "Service",
     _svc(ports=[{"port": 80, "name": "http"}, {"port": 443}]),
     ["spec.ports[1].name: Required value"]),
    ("an unknown service type lists the supported ones", "", "Service", _svc(type="Internal"),
     ['spec.type: Unsupported value: "Internal": supported values: "ClusterIP", '
      '"ExternalName", "LoadBalancer", "NodePort"']),
    ("a duplicate service port is reported with its Go key", "", "Service",
     _svc(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
     ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
      'AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, '
      'StrVal:""}, NodePort:0}']),
    ("a ClusterIP service may not set node ports", "", "Service",
     _svc(ports=[{"port": 80, "nodePort": 30080}]),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("an ExternalName service needs a name to resolve", "", "Service",
     {"metadata": {"name": "ext", "namespace": "default"}, "spec": {"type": "ExternalName"}},
     ["spec.externalName: Required value"]),
    ("a cluster IP must be an IP", "", "Service", _svc(clusterIP="10.0.0.300"),
     ['spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. '
      '10.9.8.7 or 2001:db8::ffff)']),
    # Config and identity
    ("a config map key must be a valid config key", "", "ConfigMap",
     {"metadata": {"name": "cm", "namespace": "default"}, "data": {"a b": "x"}},
     [f'data[a b]: Invalid value: "a b": {CONFIG_KEY_MSG}']),
    ("a config map key may not be ..", "", "ConfigMap",
     {"metadata": {"name": "cm", "namespace": "default"}, "data": {"..": "x"}},
     ['data[..]: Invalid value: "..": must not be \'..\'']),
    ("a config map holds at most 1 MiB, reported on the root path", "", "ConfigMap",
     {"metadata": {"name": "cm", "namespace": "default"}, "data": {"a": "x" * (1024 * 1024 + 1)}},
     ["[]: Too long: may not be more than 1048576 bytes"]),
    ("a secret key must be a valid config key", "", "Secret",
     {"metadata": {"name": "s", "namespace": "default"}, "stringData": {"a/b": "x"}},
     [f'data[a/b]: Invalid value: "a/b": {CONFIG_KEY_MSG}']),
    ("a secret holds at most 1 MiB of decoded data", "", "Secret",
     {"metadata": {"name": "s", "namespace": "default"},
      "stringData": {"a": "x" * (1024 * 1024 + 1)}},
     ["data: Too long: may not be more than 1048576 bytes"]),
    ("a TLS secret needs a certificate and a key", "", "Secret",
     {"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/tls"},
     ["data[tls.crt]: Required value", "data[tls.key]: Required value"]),
    ("a namespace name is a DNS label", "", "Namespace", {"metadata": {"name": "Team"}},
     [f'metadata.name: Invalid value: "Team": {LABEL_MSG}']),
    ("a cluster-scoped object may not have a namespace", "", "Namespace",
     {"metadata": {"name": "team", "namespace": "default"}},
     ["metadata.namespace: Forbidden: not allowed on this type"]),
    ("a node name is a DNS subdomain", "", "Node", {"metadata": {"name": "Node_1"}},
     [f'metadata.name: Invalid value: "Node_1": {SUBDOMAIN_MSG}']),
    ("a node taint needs a known effect (reported under metadata, as upstream)", "", "Node",
     {"metadata": {"name": "n"}, "spec": {"taints": [{"key": "a", "effect": "Never"}]}},
     ['metadata.taints[0].effect: Unsupported value: "Never": supported values: "NoSchedule", '
      '"PreferNoSchedule", "NoExecute"']),
    ("a claim needs an access mode and a storage request", "", "PersistentVolumeClaim",
     {"metadata": {"name": "c", "namespace": "default"}, "spec": {}},
     ["spec.accessModes: Required value: at least 1 access mode is required",
      "spec.resources[storage]: Required value"]),
    ("a service account name is a DNS subdomain", "", "ServiceAccount",
     {"metadata": {"name": "Bad", "namespace": "default"}},
     [f'metadata.name: Invalid value: "Bad": {SUBDOMAIN_MSG}']),
    ("a core event's namespace must match its object's", "", "Event",
     {"metadata": {"name": "e", "namespace": "default"},
      "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}},
     ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']),
    ("a core event still needs a name (generic object checks)", "", "Event",
     {"metadata": {"namespace": "default"},
      "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}},
     ["metadata.name: Required value: name or generateName is required"]),
    ("an events.k8s.io event needs an event time and a valid type", "events.k8s.io", "Event",
     {"metadata": {"name": "e", "namespace": "default"},
      "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}, "type": "Info"},
     ["eventTime: Required value", 'type: Invalid value: "": has invalid value: Info']),
    ("a lease may not last zero seconds", "coordination.k8s.io", "Lease",
     {"metadata": {"name": "l", "namespace": "default"}, "spec": {"leaseDurationSeconds": 0}},
     ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
    ("system- priority class names are reserved", "scheduling.k8s.io", "PriorityClass",
     {"metadata": {"name": "system-mine"}, "value": 1},
     ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved"]),
    ("an endpoint slice needs a known address type", "discovery.k8s.io", "EndpointSlice",
     {"metadata": {"name": "s", "namespace": "default"}, "addressType": "IPv5"},
     ['addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"']),
]


@pytest.mark.parametrize(("group", "kind", "obj", "want"), [c[1:] for c in CREATE_CASES],
                         ids=[c[0] for c in CREATE_CASES])
def test_create_validation(group: str, kind: str, obj: dict[str, Any], want: list[str]) -> None:
    assert _lines(group, kind, obj) == want


VALID_CASES = [
    ("a minimal pod", "", "Pod", _pod()),
    ("a pod with probes, mounts, env and resources", "", "Pod", _pod(
        volumes=[{"name": "cfg", "configMap": {"name": "cm"}}],
        containers=[_container(
            ports=[{"containerPort": 8080, "name": "http"}],
            env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "lvl"}}}],
            volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}],
            resources={"limits": {"cpu": "1", "memory": "128Mi"}},
            livenessProbe={"httpGet": {"port": "http"}},
            readinessProbe={"exec": {"command": ["true"]}})])),
    ("a deployment", "apps", "Deployment", _workload()),
    ("a replica set", "apps", "ReplicaSet", _workload()),
    ("a daemon set", "apps", "DaemonSet", _workload()),
    ("a stateful set", "apps", "StatefulSet", _workload()),
    ("a job", "batch", "Job", {**_workload(selector=None, name="j",
                                           template=_template(restartPolicy="Never")),
                               "metadata": {"name": "j", "namespace": "default", "uid": "u"}}),
    ("a cron job", "batch", "CronJob", {"metadata": {"name": "cj", "namespace": "default"},
                                        "spec": {"schedule": "*/5 1-3 * jan,feb mon-fri",
                                                 "jobTemplate": {"spec": {"template": _template(
                                                     restartPolicy="OnFailure")}}}}),
    ("a service", "", "Service", _svc(selector={"app": "x"})),
    ("a headless service", "", "Service", _svc(clusterIP="None")),
    ("a NodePort service", "", "Service", _svc(type="NodePort",
                                               ports=[{"port": 80, "nodePort": 30080}])),
    ("an ExternalName service", "", "Service",
     {"metadata": {"name": "ext", "namespace": "default"},
      "spec": {"type": "ExternalName", "externalName": "example.com."}}),
    ("a config map", "", "ConfigMap", {"metadata": {"name": "cm", "namespace": "default"},
                                       "data": {"app.properties": "a=b"}}),
    ("a secret", "", "Secret", {"metadata": {"name": "s", "namespace": "default"},
                                "stringData": {"password": "x"}}),
    ("a namespace", "", "Namespace", {"metadata": {"name": "team-a"}}),
    ("a node", "", "Node", {"metadata": {"name": "node-1"},
                            "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]},
                            "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}),
    ("endpoints", "", "Endpoints", {"metadata": {"name": "e", "namespace": "default"},
                                    "subsets": [{"addresses": [{"ip": "10.1.2.3"}],
                                                 "ports": [{"port": 80}]}]}),
    ("a claim", "", "PersistentVolumeClaim", {
        "metadata": {"name": "c", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    ("a lease", "coordination.k8s.io", "Lease", {"metadata": {"name": "l", "namespace": "x"},
                                                 "spec": {"holderIdentity": "me",
                                                          "leaseDurationSeconds": 15}}),
    ("a disruption budget", "policy", "PodDisruptionBudget", {
        "metadata": {"name": "b", "namespace": "default"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "x"}}}}),
    ("an object of an unknown kind with a safe name", "example.com", "Widget",
     {"metadata": {"name": "w", "namespace": "default"}}),
]


@pytest.mark.parametrize(("group", "kind", "obj"), [c[1:] for c in VALID_CASES],
                         ids=[f"{c[0]} is valid" for c in VALID_CASES])
def test_valid_objects_have_no_causes(group: str, kind: str, obj: dict[str, Any]) -> None:
    assert _lines(group, kind, obj) == []


_OLD_POD = _with_rv(_pod(tolerations=[{"key": "a", "operator": "Exists"}]))
_OLD_DEPLOY = _with_rv(_workload())
_OLD_JOB = _with_rv({**_workload(selector=None, name="j",
                                 template=_template(restartPolicy="Never")),
                     "metadata": {"name": "j", "namespace": "default", "uid": "u"}})


def _edit(obj: dict[str, Any], fn: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    fn(obj)
    return obj


def _prepared(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    apply_defaults(group, kind, obj)
    prepare_for_create(group, kind, obj)
    return obj


_PREPARED_JOB = _prepared("batch", "Job", _OLD_JOB)

UPDATE_CASES = [
    ("a pod's image may change", "", "Pod",
     _edit(_OLD_POD, lambda p: p["spec"]["containers"][0].update(image="nginx:1.26")),
     _OLD_POD, []),
    ("a pod may gain a toleration", "", "Pod",
     _edit(_OLD_POD, lambda p: p["spec"]["tolerations"].append(
         {"key": "b", "operator": "Exists"})), _OLD_POD, []),
    ("a pod may not lose a toleration", "", "Pod",
     _edit(_OLD_POD, lambda p: p["spec"].update(tolerations=[])), _OLD_POD,
     ["spec.tolerations: Forbidden: existing toleration can not be modified except its "
      "tolerationSeconds"]),
    ("a pod may not gain a container", "", "Pod",
     _edit(_OLD_POD, lambda p: p["spec"]["containers"].append(_container(name="d"))), _OLD_POD,
     ["spec.containers: Forbidden: pod updates may not add or remove containers"]),
    ("an active deadline may only shrink", "", "Pod",
     _edit(_with_rv(_pod(activeDeadlineSeconds=10)),
           lambda p: p["spec"].update(activeDeadlineSeconds=20)),
     _with_rv(_pod(activeDeadlineSeconds=10)),
     ["spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous "
      "value"]),
    ("an update needs a resource version, reported by both generic and kind checks", "",
     "ConfigMap", {"metadata": {"name": "cm", "namespace": "default"}},
     {"metadata": {"name": "cm", "namespace": "default", "resourceVersion": "1"}},
     ['metadata.resourceVersion: Invalid value: "": must be specified for an update',
      'metadata.resourceVersion: Invalid value: "": must be specified for an update']),
    ("an immutable config map keeps its data", "", "ConfigMap",
     {"metadata": {"name": "cm", "namespace": "default", "resourceVersion": "2"},
      "immutable": True, "data": {"a": "2"}},
     {"metadata": {"name": "cm", "namespace": "default", "resourceVersion": "1"},
      "immutable": True, "data": {"a": "1"}},
     ["data: Forbidden: field is immutable when `immutable` is set"]),
    ("an immutable secret stays immutable", "", "Secret",
     {"metadata": {"name": "s", "namespace": "default", "resourceVersion": "2"}},
     {"metadata": {"name": "s", "namespace": "default", "resourceVersion": "1"},
      "immutable": True},
     ["immutable: Forbidden: field is immutable when `immutable` is set"]),
    ("a secret's type is immutable", "", "Secret",
     {"metadata": {"name": "s", "namespace": "default", "resourceVersion": "2"},
      "type": "example.com/x"},
     {"metadata": {"name": "s", "namespace": "default", "resourceVersion": "1"}},
     ['type: Invalid value: "example.com/x": field is immutable']),
    ("a deployment's selector is immutable", "apps", "Deployment",
     _edit(_OLD_DEPLOY, lambda d: (d["spec"].update(selector={"matchLabels": {"app": "z"}}),
                                   d["spec"]["template"]["metadata"].update(
                                       labels={"app": "z"}))), _OLD_DEPLOY,
     ['spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"z"}, '
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]),
    ("a deployment may scale", "apps", "Deployment",
     _edit(_OLD_DEPLOY, lambda d: d["spec"].update(replicas=5)), _OLD_DEPLOY, []),
    ("a stateful set's service name is immutable", "apps", "StatefulSet",
     _edit(_OLD_DEPLOY, lambda d: d["spec"].update(serviceName="other")), _OLD_DEPLOY,
     ["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
      "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
      "'minReadySeconds' are forbidden"]),
    ("a job's completions are immutable", "batch", "Job",
     _edit(_PREPARED_JOB, lambda j: j["spec"].update(completions=3)), _PREPARED_JOB,
     ["spec.completions: Invalid value: 3: field is immutable"]),
    ("a service's cluster IP may not change", "", "Service",
     _with_rv(_svc(clusterIP="10.0.0.6")), _with_rv(_svc(clusterIP="10.0.0.5")),
     ['spec.clusterIPs[0]: Invalid value: []string{"10.0.0.6"}: may not change once set']),
    ("an object's name is immutable", "", "ServiceAccount",
     {"metadata": {"name": "b", "namespace": "default", "resourceVersion": "2"}},
     {"metadata": {"name": "a", "namespace": "default", "resourceVersion": "1"}},
     ['metadata.name: Invalid value: "b": field is immutable',
      'metadata.name: Invalid value: "b": field is immutable']),
    ("a priority class's value is immutable", "scheduling.k8s.io", "PriorityClass",
     {"metadata": {"name": "p", "resourceVersion": "2"}, "value": 2},
     {"metadata": {"name": "p", "resourceVersion": "1"}, "value": 1},
     ["value: Forbidden: may not be changed in an update."]),
]


@pytest.mark.parametrize(("group", "kind", "new", "old", "want"), [c[1:] for c in UPDATE_CASES],
                         ids=[c[0] for c in UPDATE_CASES])
def test_update_validation(group: str, kind: str, new: dict[str, Any], old: dict[str, Any],
                           want: list[str]) -> None:
    assert _lines(group, kind, new, old) == want


def test_a_pod_spec_change_names_the_updatable_fields() -> None:
    new = _edit(_OLD_POD, lambda p: p["spec"].update(dnsPolicy="Default"))
    lines = _lines("", "Pod", new, _OLD_POD)
    assert len(lines) == 1
    assert lines[0].startswith(
        "spec: Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
        "`spec.tolerations` (only additions to existing tolerations),"
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)\n")
    assert '- \tDnsPolicy: "ClusterFirst",' in lines[0]


def test_an_undefaulted_pod_lacks_what_defaulting_would_fill() -> None:
    causes = validate("", "Pod", {"metadata": {"name": "p", "namespace": "d"},
                                  "spec": {"containers": []}})
    assert [(c["reason"], c["field"]) for c in causes] == [
        ("FieldValueRequired", "spec.terminationGracePeriodSeconds"),
        ("FieldValueRequired", "spec.containers"),
        ("FieldValueRequired", "spec.restartPolicy"),
        ("FieldValueRequired", "spec.dnsPolicy")]


NAME_CASES = [
    ("a pod name may contain dots", "", "Pod", "web.v1", False, []),
    ("a service name may not start with a digit", "", "Service", "1web", False, [DNS1035_MSG]),
    ("a namespace name may not contain dots", "", "Namespace", "a.b", False,
     ["must not contain dots"]),
    ("a generateName prefix may end with a dash", "apps", "Deployment", "web-", True, []),
    ("a name may not end with a dash", "apps", "Deployment", "web-", False, [SUBDOMAIN_MSG]),
    ("an unknown kind's name must be a safe path segment", "example.com", "Widget", "a/b", False,
     ["may not contain '/'"]),
    ("a name may not be ..", "example.com", "Widget", "..", False, ["may not be '..'"]),
    ("a name longer than 253 characters is too long", "", "ConfigMap", "a" * 254, False,
     ["must be no more than 253 characters"]),
]


@pytest.mark.parametrize(("group", "kind", "name", "prefix", "want"),
                         [c[1:] for c in NAME_CASES], ids=[c[0] for c in NAME_CASES])
def test_validate_name(group: str, kind: str, name: str, prefix: bool, want: list[str]) -> None:
    assert validate_name(group, kind, name, prefix) == want


RENDER_CASES = [
    ("an int prints bare", -1, "Invalid value: -1: d"),
    ("a string prints Go-quoted", 'a"b\n', 'Invalid value: "a\\"b\\n": d'),
    ("a bool prints as Go does", True, "Invalid value: true: d"),
    ("null prints null", None, "Invalid value: null: d"),
    ("a float prints in Go's shortest form", 1000000.0, "Invalid value: 1e+06: d"),
    ("a string map prints as map[string]string with sorted keys", {"b": "1", "a": "2"},
     'Invalid value: map[string]string{"a":"2", "b":"1"}: d'),
    ("a string list prints as []string", ["x", "y"], 'Invalid value: []string{"x", "y"}: d'),
]


@pytest.mark.parametrize(("value", "want"), [c[1:] for c in RENDER_CASES],
                         ids=[c[0] for c in RENDER_CASES])
def test_cause_renders_values_as_go_does(value: Any, want: str) -> None:
    assert cause("FieldValueInvalid", "f", "d", value)["message"] == want


def test_too_many_prints_the_count_and_internal_error_does_not_print_a_value() -> None:
    assert cause("FieldValueTooMany", "f", "must have at most 20 items", 21)["message"] == \
        "Too many: 21: must have at most 20 items"
    assert cause("InternalError", "f", "boom", None)["message"] == "Internal error: boom"


def test_invalid_error_aggregates_causes_once_each() -> None:
    causes = [cause("FieldValueRequired", "spec.selector"),
              cause("FieldValueRequired", "spec.selector"),
              cause("FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0", -1)]
    err = Invalid("Deployment", "x", causes, group="apps")
    assert str(err) == ('Deployment.apps "x" is invalid: [spec.selector: Required value, '
                        "spec.replicas: Invalid value: -1: must be greater than or equal to 0]")
    assert err.details["causes"] == causes
