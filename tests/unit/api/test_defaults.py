"""Defaulting matches kube-apiserver v1.32 (pkg/apis/*/v1/defaults.go and defaults_test.go)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from navio.api.defaults import apply_defaults, pod_qos_class, prepare_for_create


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(obj, list):
            obj = obj[int(part)]
        else:
            obj = obj[part]
    return obj


def _missing(obj: Any, path: str) -> bool:
    try:
        _get(obj, path)
    except (KeyError, IndexError):
        return True
    return False


def _pod(**spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "c", "image": "nginx:1.25"}])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"}, "spec": spec}


def _container(**fields: Any) -> dict[str, Any]:
    return {"name": "c", "image": "nginx:1.25", **fields}


def _defaulted(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    apply_defaults(group, kind, obj)
    return obj


POD_CASES = [
    ("a pod restarts Always", _pod(), "spec.restartPolicy", "Always"),
    ("a pod uses ClusterFirst DNS", _pod(), "spec.dnsPolicy", "ClusterFirst"),
    ("a pod is scheduled by default-scheduler", _pod(), "spec.schedulerName", "default-scheduler"),
    ("a pod gets 30 seconds to terminate", _pod(), "spec.terminationGracePeriodSeconds", 30),
    ("a pod gets an empty security context", _pod(), "spec.securityContext", {}),
    ("a pod enables service links", _pod(), "spec.enableServiceLinks", True),
    ("an explicit restart policy is kept", _pod(restartPolicy="Never"), "spec.restartPolicy",
     "Never"),
    ("a container writes its termination message to /dev/termination-log", _pod(),
     "spec.containers.0.terminationMessagePath", "/dev/termination-log"),
    ("a container's termination message policy is File", _pod(),
     "spec.containers.0.terminationMessagePolicy", "File"),
    ("an image without a tag is always pulled", _pod(containers=[_container(image="nginx")]),
     "spec.containers.0.imagePullPolicy", "Always"),
    ("an image tagged latest is always pulled",
     _pod(containers=[_container(image="nginx:latest")]), "spec.containers.0.imagePullPolicy",
     "Always"),
    ("an image with another tag is pulled if not present", _pod(),
     "spec.containers.0.imagePullPolicy", "IfNotPresent"),
    ("an image pinned by digest only is pulled if not present",
     _pod(containers=[_container(image="nginx@sha256:" + "a" * 64)]),
     "spec.containers.0.imagePullPolicy", "IfNotPresent"),
    ("a registry port is not mistaken for a tag",
     _pod(containers=[_container(image="localhost:5000/app")]),
     "spec.containers.0.imagePullPolicy", "Always"),
    ("an unparsable image reference is pulled if not present",
     _pod(containers=[_container(image="Upper/Case")]), "spec.containers.0.imagePullPolicy",
     "IfNotPresent"),
    ("an explicit pull policy is kept",
     _pod(containers=[_container(image="nginx", imagePullPolicy="Never")]),
     "spec.containers.0.imagePullPolicy", "Never"),
    ("init containers get container defaults",
     _pod(initContainers=[_container(name="i", image="busybox")]),
     "spec.initContainers.0.imagePullPolicy", "Always"),
    ("a container port speaks TCP",
     _pod(containers=[_container(ports=[{"containerPort": 80}])]),
     "spec.containers.0.ports.0.protocol", "TCP"),
    ("a probe times out after 1 second",
     _pod(containers=[_container(livenessProbe={"tcpSocket": {"port": 80}})]),
     "spec.containers.0.livenessProbe.timeoutSeconds", 1),
    ("a probe runs every 10 seconds",
     _pod(containers=[_container(readinessProbe={"tcpSocket": {"port": 80}})]),
     "spec.containers.0.readinessProbe.periodSeconds", 10),
    ("a probe succeeds after 1 success",
     _pod(containers=[_container(startupProbe={"tcpSocket": {"port": 80}})]),
     "spec.containers.0.startupProbe.successThreshold", 1),
    ("a probe fails after 3 failures",
     _pod(containers=[_container(livenessProbe={"tcpSocket": {"port": 80}})]),
     "spec.containers.0.livenessProbe.failureThreshold", 3),
    ("an HTTP probe uses the HTTP scheme",
     _pod(containers=[_container(livenessProbe={"httpGet": {"port": 80}})]),
     "spec.containers.0.livenessProbe.httpGet.scheme", "HTTP"),
    ("an HTTP probe's path is /",
     _pod(containers=[_container(livenessProbe={"httpGet": {"port": 80}})]),
     "spec.containers.0.livenessProbe.httpGet.path", "/"),
    ("a gRPC probe's service is the empty string",
     _pod(containers=[_container(livenessProbe={"grpc": {"port": 9000}})]),
     "spec.containers.0.livenessProbe.grpc.service", ""),
    ("a lifecycle HTTP hook uses the HTTP scheme",
     _pod(containers=[_container(lifecycle={"preStop": {"httpGet": {"port": 80}}})]),
     "spec.containers.0.lifecycle.preStop.httpGet.scheme", "HTTP"),
    ("a downward API env var reads the v1 pod",
     _pod(containers=[_container(env=[{"name": "N", "valueFrom": {"fieldRef": {
         "fieldPath": "metadata.name"}}}])]),
     "spec.containers.0.env.0.valueFrom.fieldRef.apiVersion", "v1"),
    ("a volume without a source is an emptyDir", _pod(volumes=[{"name": "v"}]),
     "spec.volumes.0.emptyDir", {}),
    ("a configMap volume's files are mode 0644 (420)",
     _pod(volumes=[{"name": "v", "configMap": {"name": "cm"}}]),
     "spec.volumes.0.configMap.defaultMode", 420),
    ("a secret volume's files are mode 0644 (420)",
     _pod(volumes=[{"name": "v", "secret": {"secretName": "s"}}]),
     "spec.volumes.0.secret.defaultMode", 420),
    ("a hostPath volume's type is the empty string",
     _pod(volumes=[{"name": "v", "hostPath": {"path": "/tmp"}}]), "spec.volumes.0.hostPath.type",
     ""),
    ("a projected token expires after an hour",
     _pod(volumes=[{"name": "v", "projected": {"sources": [
         {"serviceAccountToken": {"path": "token"}}]}}]),
     "spec.volumes.0.projected.sources.0.serviceAccountToken.expirationSeconds", 3600),
    ("limits become requests when requests are missing",
     _pod(containers=[_container(resources={"limits": {"cpu": "1", "memory": "1Gi"}})]),
     "spec.containers.0.resources.requests", {"cpu": "1", "memory": "1Gi"}),
    ("an explicit request is kept beside a copied limit",
     _pod(containers=[_container(resources={"limits": {"cpu": "1", "memory": "1Gi"},
                                            "requests": {"cpu": "100m"}})]),
     "spec.containers.0.resources.requests", {"cpu": "100m", "memory": "1Gi"}),
    ("a decimal cpu quantity is written in millicores",
     _pod(containers=[_container(resources={"requests": {"cpu": "0.5"}})]),
     "spec.containers.0.resources.requests.cpu", "500m"),
    ("a quantity finer than milli is rounded up",
     _pod(containers=[_container(resources={"requests": {"cpu": "0.0001"}})]),
     "spec.containers.0.resources.requests.cpu", "1m"),
    ("a binary quantity is written with the largest exact suffix",
     _pod(containers=[_container(resources={"requests": {"memory": "1024Mi"}})]),
     "spec.containers.0.resources.requests.memory", "1Gi"),
    ("a plain decimal quantity takes an SI suffix",
     _pod(containers=[_container(resources={"requests": {"memory": "1000"}})]),
     "spec.containers.0.resources.requests.memory", "1k"),
    ("host networking copies container ports to host ports",
     _pod(hostNetwork=True, containers=[_container(ports=[{"containerPort": 8080}])]),
     "spec.containers.0.ports.0.hostPort", 8080),
]


@pytest.mark.parametrize(("obj", "path", "want"), [c[1:] for c in POD_CASES],
                         ids=[c[0] for c in POD_CASES])
def test_pod_defaults(obj: dict[str, Any], path: str, want: Any) -> None:
    assert _get(_defaulted("", "Pod", obj), path) == want


def _deployment(**spec: Any) -> dict[str, Any]:
    spec.setdefault("template", {"metadata": {"labels": {"app": "x"}},
                                 "spec": {"containers": [_container()]}})
    return {"metadata": {"name": "d", "namespace": "default"}, "spec": spec}


KIND_CASES = [
    ("a service is a ClusterIP service", "", "Service", {"spec": {"ports": [{"port": 80}]}},
     "spec.type", "ClusterIP"),
    ("a service has no session affinity", "", "Service", {"spec": {"ports": [{"port": 80}]}},
     "spec.sessionAffinity", "None"),
    ("a service port speaks TCP", "", "Service", {"spec": {"ports": [{"port": 80}]}},
     "spec.ports.0.protocol", "TCP"),
    ("a service port targets the same port", "", "Service", {"spec": {"ports": [{"port": 80}]}},
     "spec.ports.0.targetPort", 80),
    ("a named target port is kept", "", "Service",
     {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}, "spec.ports.0.targetPort", "http"),
    ("internal traffic is routed cluster-wide", "", "Service",
     {"spec": {"ports": [{"port": 80}]}}, "spec.internalTrafficPolicy", "Cluster"),
    ("a service is single-stack", "", "Service", {"spec": {"ports": [{"port": 80}]}},
     "spec.ipFamilyPolicy", "SingleStack"),
    ("a service is IPv4", "", "Service", {"spec": {"ports": [{"port": 80}]}}, "spec.ipFamilies",
     ["IPv4"]),
    ("an IPv6 cluster IP makes an IPv6 service", "", "Service",
     {"spec": {"clusterIP": "fd00::10", "ports": [{"port": 80}]}}, "spec.ipFamilies", ["IPv6"]),
    ("a lone clusterIP is mirrored into clusterIPs", "", "Service",
     {"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}}, "spec.clusterIPs",
     ["10.96.0.10"]),
    ("a headless service without selector requires both IP families", "", "Service",
     {"spec": {"clusterIP": "None"}}, "spec.ipFamilies", ["IPv4", "IPv6"]),
    ("a headless service without selector prefers the most permissive policy", "", "Service",
     {"spec": {"clusterIP": "None"}}, "spec.ipFamilyPolicy", "RequireDualStack"),
    ("a NodePort service routes external traffic cluster-wide", "", "Service",
     {"spec": {"type": "NodePort", "ports": [{"port": 80}]}}, "spec.externalTrafficPolicy",
     "Cluster"),
    ("a LoadBalancer service allocates node ports", "", "Service",
     {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}},
     "spec.allocateLoadBalancerNodePorts", True),
    ("client IP affinity lasts three hours", "", "Service",
     {"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 10800),
    ("a secret is Opaque", "", "Secret", {"metadata": {"name": "s"}}, "type", "Opaque"),
    ("stringData is merged into data as base64", "", "Secret",
     {"metadata": {"name": "s"}, "stringData": {"user": "admin"}, "data": {"a": "Yg=="}},
     "data", {"a": "Yg==", "user": "YWRtaW4="}),
    ("a namespace is labelled with its own name", "", "Namespace", {"metadata": {"name": "team"}},
     "metadata.labels", {"kubernetes.io/metadata.name": "team"}),
    ("a namespace is Active", "", "Namespace", {"metadata": {"name": "team"}}, "status.phase",
     "Active"),
    ("a node's allocatable defaults to its capacity", "", "Node",
     {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}},
     "status.allocatable", {"cpu": "4", "memory": "8Gi"}),
    ("a claim is a filesystem volume", "", "PersistentVolumeClaim",
     {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}, "spec.volumeMode", "Filesystem"),
    ("a claim starts Pending", "", "PersistentVolumeClaim", {"spec": {}}, "status.phase",
     "Pending"),
    ("a replication controller selects its template's labels", "", "ReplicationController",
     {"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                                                        "spec": {"containers": [_container()]}}}},
     "spec.selector", {"a": "b"}),
    ("a replication controller is labelled like its template", "", "ReplicationController",
     {"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                                                        "spec": {"containers": [_container()]}}}},
     "metadata.labels", {"a": "b"}),
    ("a container limit range's default request is its default limit", "", "LimitRange",
     {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}},
     "spec.limits.0.defaultRequest", {"cpu": "500m"}),
    ("a container limit range's default limit is its max", "", "LimitRange",
     {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}}]}},
     "spec.limits.0.default", {"cpu": "2"}),
    ("a deployment runs one replica", "apps", "Deployment", _deployment(), "spec.replicas", 1),
    ("a deployment rolls updates 25% at a time", "apps", "Deployment", _deployment(),
     "spec.strategy", {"type": "RollingUpdate",
                       "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
    ("a Recreate deployment gets no rolling update parameters", "apps", "Deployment",
     _deployment(strategy={"type": "Recreate"}), "spec.strategy", {"type": "Recreate"}),
    ("a deployment keeps 10 old revisions", "apps", "Deployment", _deployment(),
     "spec.revisionHistoryLimit", 10),
    ("a deployment has 600 seconds to progress", "apps", "Deployment", _deployment(),
     "spec.progressDeadlineSeconds", 600),
    ("a deployment's pod template is defaulted", "apps", "Deployment", _deployment(),
     "spec.template.spec.restartPolicy", "Always"),
    ("a replica set runs one replica", "apps", "ReplicaSet", _deployment(), "spec.replicas", 1),
    ("a daemon set replaces one pod at a time without surge", "apps", "DaemonSet", _deployment(),
     "spec.updateStrategy", {"type": "RollingUpdate",
                             "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    ("a daemon set keeps 10 old revisions", "apps", "DaemonSet", _deployment(),
     "spec.revisionHistoryLimit", 10),
    ("a stateful set starts pods in order", "apps", "StatefulSet", _deployment(),
     "spec.podManagementPolicy", "OrderedReady"),
    ("a stateful set rolls updates from partition 0", "apps", "StatefulSet", _deployment(),
     "spec.updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    ("a stateful set retains its claims", "apps", "StatefulSet", _deployment(),
     "spec.persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain",
                                                   "whenScaled": "Retain"}),
    ("a stateful set runs one replica", "apps", "StatefulSet", _deployment(), "spec.replicas", 1),
    ("a stateful set's claim templates are Pending filesystem claims", "apps", "StatefulSet",
     _deployment(volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {
         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]),
     "spec.volumeClaimTemplates.0", {"metadata": {"name": "data"}, "spec": {
         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
         "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
    ("a job with neither completions nor parallelism completes once", "batch", "Job",
     _deployment(), "spec.completions", 1),
    ("a job retries 6 times", "batch", "Job", _deployment(), "spec.backoffLimit", 6),
    ("a job with a per-index backoff limit has no overall limit", "batch", "Job",
     _deployment(backoffLimitPerIndex=1, completionMode="Indexed", completions=3),
     "spec.backoffLimit", 2147483647),
    ("a job is not indexed", "batch", "Job", _deployment(), "spec.completionMode", "NonIndexed"),
    ("a job is not suspended", "batch", "Job", _deployment(), "spec.suspend", False),
    ("a job replaces pods once they terminate or fail", "batch", "Job", _deployment(),
     "spec.podReplacementPolicy", "TerminatingOrFailed"),
    ("a job with a pod failure policy replaces only failed pods", "batch", "Job",
     _deployment(podFailurePolicy={"rules": []}), "spec.podReplacementPolicy", "Failed"),
    ("a job is labelled like its pod template", "batch", "Job", _deployment(), "metadata.labels",
     {"app": "x"}),
    ("a cron job allows concurrent runs", "batch", "CronJob", {"spec": {"schedule": "* * * * *"}},
     "spec.concurrencyPolicy", "Allow"),
    ("a cron job is not suspended", "batch", "CronJob", {"spec": {}}, "spec.suspend", False),
    ("a cron job keeps 3 successful jobs", "batch", "CronJob", {"spec": {}},
     "spec.successfulJobsHistoryLimit", 3),
    ("a cron job keeps 1 failed job", "batch", "CronJob", {"spec": {}},
     "spec.failedJobsHistoryLimit", 1),
    ("a cron job's pod template is defaulted", "batch", "CronJob",
     {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [_container()]}}}}}},
     "spec.jobTemplate.spec.template.spec.dnsPolicy", "ClusterFirst"),
    ("a priority class preempts lower priorities", "scheduling.k8s.io", "PriorityClass",
     {"value": 10}, "preemptionPolicy", "PreemptLowerPriority"),
    ("an endpoint slice port speaks TCP", "discovery.k8s.io", "EndpointSlice",
     {"ports": [{"port": 80}]}, "ports.0.protocol", "TCP"),
]


@pytest.mark.parametrize(("group", "kind", "obj", "path", "want"), [c[1:] for c in KIND_CASES],
                         ids=[c[0] for c in KIND_CASES])
def test_kind_defaults(group: str, kind: str, obj: dict[str, Any], path: str, want: Any) -> None:
    assert _get(_defaulted(group, kind, obj), path) == want


ABSENT_CASES = [
    ("a pod template does not enable service links", "", "PodTemplate",
     {"template": {"spec": {"containers": [_container()]}}}, "template.spec.enableServiceLinks"),
    ("a pod template does not copy limits to requests", "apps", "Deployment",
     _deployment(template={"spec": {"containers": [_container(resources={
         "limits": {"cpu": "1"}})]}}), "spec.template.spec.containers.0.resources.requests"),
    ("a job with parallelism but no completions keeps completions unset", "batch", "Job",
     _deployment(parallelism=3), "spec.completions"),
    ("a cron job's job template does not get job defaults", "batch", "CronJob",
     {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [_container()]}}}}}},
     "spec.jobTemplate.spec.backoffLimit"),
    ("an ExternalName service gets no IP families", "", "Service",
     {"spec": {"type": "ExternalName", "externalName": "example.com"}}, "spec.ipFamilies"),
    ("an ExternalName service gets no internal traffic policy", "", "Service",
     {"spec": {"type": "ExternalName", "externalName": "example.com"}},
     "spec.internalTrafficPolicy"),
    ("stringData is dropped once merged", "", "Secret", {"stringData": {"a": "b"}}, "stringData"),
    ("session affinity None clears its config", "", "Service",
     {"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}},
     "spec.sessionAffinityConfig"),
    ("a MaxUnavailableStatefulSet default is not applied (gate off in v1.32)", "apps",
     "StatefulSet", _deployment(), "spec.updateStrategy.rollingUpdate.maxUnavailable"),
]


@pytest.mark.parametrize(("group", "kind", "obj", "path"), [c[1:] for c in ABSENT_CASES],
                         ids=[c[0] for c in ABSENT_CASES])
def test_fields_left_unset(group: str, kind: str, obj: dict[str, Any], path: str) -> None:
    assert _missing(_defaulted(group, kind, obj), path)


IDEMPOTENT_CASES = [
    ("", "Pod", _pod(volumes=[{"name": "v"}], containers=[_container(resources={
        "limits": {"cpu": "0.5"}}, livenessProbe={"httpGet": {"port": 80}})])),
    ("", "Service", {"spec": {"clusterIP": "None"}}),
    ("apps", "StatefulSet", _deployment()),
    ("batch", "Job", _deployment()),
    ("", "Secret", {"stringData": {"a": "b"}}),
]


@pytest.mark.parametrize(("group", "kind", "obj"), IDEMPOTENT_CASES,
                         ids=[f"defaulting a {c[1]} twice changes nothing"
                              for c in IDEMPOTENT_CASES])
def test_defaulting_is_idempotent(group: str, kind: str, obj: dict[str, Any]) -> None:
    once = _defaulted(group, kind, obj)
    assert _defaulted(group, kind, once) == once


def test_unknown_kinds_are_left_alone() -> None:
    obj = {"spec": {"x": 1}}
    apply_defaults("example.com", "Widget", obj)
    assert obj == {"spec": {"x": 1}}


def _resources(limits: dict[str, str] | None = None,
               requests: dict[str, str] | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if limits:
        res["limits"] = limits
    if requests:
        res["requests"] = requests
    return res


QOS_CASES = [
    ("a pod without resources is BestEffort", [{}], "BestEffort"),
    ("equal cpu and memory requests and limits are Guaranteed",
     [_resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ("limits alone are Guaranteed once copied to requests",
     [_resources({"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ("a request below its limit is Burstable",
     [_resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "500m", "memory": "1Gi"})], "Burstable"),
    ("a cpu limit without a memory limit is Burstable", [_resources({"cpu": "1"})], "Burstable"),
    ("one container without limits makes the pod Burstable",
     [_resources({"cpu": "1", "memory": "1Gi"}), {}], "Burstable"),
]


@pytest.mark.parametrize(("resources", "want"), [c[1:] for c in QOS_CASES],
                         ids=[c[0] for c in QOS_CASES])
def test_pod_qos_class(resources: list[dict[str, Any]], want: str) -> None:
    pod = _defaulted("", "Pod", _pod(containers=[
        _container(name=f"c{i}", resources=r) for i, r in enumerate(resources)]))
    assert pod_qos_class(pod) == want


def _prepared(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    obj = _defaulted(group, kind, obj)
    prepare_for_create(group, kind, obj)
    return obj


PREPARE_CASES = [
    ("a new pod is Pending", "", "Pod", _pod(), "status", {"phase": "Pending",
                                                           "qosClass": "BestEffort"}),
    ("a gated pod is marked unschedulable", "", "Pod", _pod(schedulingGates=[{"name": "g"}]),
     "status.conditions", [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                            "lastTransitionTime": None, "reason": "SchedulingGated",
                            "message": "Scheduling is blocked due to non-empty scheduling gates"}]),
    ("a new namespace carries the kubernetes finalizer", "", "Namespace",
     {"metadata": {"name": "n"}}, "spec.finalizers", ["kubernetes"]),
    ("a namespace's own finalizers are kept before kubernetes", "", "Namespace",
     {"metadata": {"name": "n"}, "spec": {"finalizers": ["example.com/x"]}}, "spec.finalizers",
     ["example.com/x", "kubernetes"]),
    ("a new service has an empty load balancer status", "", "Service",
     {"spec": {"ports": [{"port": 80}]}}, "status", {"loadBalancer": {}}),
    ("a new deployment is generation 1", "apps", "Deployment", _deployment(),
     "metadata.generation", 1),
    ("a new daemon set records template generation 1", "apps", "DaemonSet", _deployment(),
     "metadata.annotations", {"deprecated.daemonset.template.generation": "1"}),
    ("a new daemon set reports zero counts", "apps", "DaemonSet", _deployment(), "status",
     {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
      "numberReady": 0}),
    ("a new job selects its own uid", "batch", "Job",
     {"metadata": {"name": "j", "uid": "u-1"}, "spec": {}}, "spec.selector",
     {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}),
    ("a new job labels its pods with its name and uid", "batch", "Job",
     {"metadata": {"name": "j", "uid": "u-1"}, "spec": {}}, "spec.template.metadata.labels",
     {"job-name": "j", "batch.kubernetes.io/job-name": "j", "controller-uid": "u-1",
      "batch.kubernetes.io/controller-uid": "u-1"}),
]


@pytest.mark.parametrize(("group", "kind", "obj", "path", "want"),
                         [c[1:] for c in PREPARE_CASES], ids=[c[0] for c in PREPARE_CASES])
def test_prepare_for_create(group: str, kind: str, obj: dict[str, Any], path: str,
                            want: Any) -> None:
    assert _get(_prepared(group, kind, obj), path) == want


def test_a_job_with_a_manual_selector_is_not_relabelled() -> None:
    job = {"metadata": {"name": "j", "uid": "u"},
           "spec": {"manualSelector": True, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}}}}}
    assert _get(_prepared("batch", "Job", job), "spec.template.metadata.labels") == {"a": "b"}
