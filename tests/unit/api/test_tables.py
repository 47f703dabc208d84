"""Server-side tables match kube-apiserver's printers cell for cell.

Cases ported from kubernetes/pkg/printers/internalversion/printers_test.go (TestPrintPod,
TestPrintPodwide, TestPrintNodeStatus, TestPrintService, TestPrintDeployment,
TestPrintReplicaSet, TestPrintControllerRevision, TestPrintPodDisruptionBudget,
TestPrintPersistentVolume(Claim), TestPrintJob) and
k8s.io/apimachinery/pkg/util/duration/duration_test.go.
"""

from datetime import datetime, timedelta, timezone

import pytest

from navio.api.errors import BadRequest
from navio.api.tables import build_table, has_printer, human_duration, table_cells, table_columns

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
S, M, H, DAY = 1, 60, 3600, 86400


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


DURATIONS = [
    (1, "1s"), (70, "70s"), (190, "3m10s"), (70 * M, "70m"), (47 * H, "47h"), (49 * H, "2d1h"),
    ((8 * 24 + 2) * H, "8d"), (367 * DAY, "367d"), ((365 * 2 * 24 + 25) * H, "2y1d"),
    ((365 * 8 * 24 + 2) * H, "8y"),
    (-2, "<invalid>"), (-1.999999, "0s"), (0, "0s"), (0.999, "0s"), (2 * M - 0.001, "119s"),
    (2 * M, "2m"), (2 * M + 1, "2m1s"), (10 * M - 0.001, "9m59s"), (10 * M, "10m"),
    (10 * M + 1, "10m"), (3 * H - 0.001, "179m"), (3 * H, "3h"), (3 * H + M, "3h1m"),
    (8 * H - 0.001, "7h59m"), (8 * H, "8h"), (8 * H + 59 * M, "8h"), (2 * DAY - 0.001, "47h"),
    (2 * DAY, "2d"), (2 * DAY + H, "2d1h"), (8 * DAY - 0.001, "7d23h"), (8 * DAY, "8d"),
    (8 * DAY + 23 * H, "8d"), (2 * 365 * DAY - 0.001, "729d"), (2 * 365 * DAY, "2y"),
    (2 * 365 * DAY + DAY - 0.001, "2y"), (2 * 365 * DAY + DAY, "2y1d"), (5 * 365 * DAY, "5y"),
    (8 * 365 * DAY - 0.001, "7y364d"), (8 * 365 * DAY, "8y"), (9 * 365 * DAY, "9y"),
]


@pytest.mark.parametrize("seconds,expect", DURATIONS, ids=[
    f"{s}s reads as {e}" for s, e in DURATIONS])
def test_human_duration_matches_kubernetes(seconds, expect):
    assert human_duration(seconds) == expect
    assert human_duration(timedelta(seconds=seconds)) == expect


# --- pods --------------------------------------------------------------------------------------

def pod(name, containers=2, init=0, phase="podPhase", reason=None, statuses=(), init_statuses=(),
        conditions=(), **extra):
    status = {"phase": phase, "containerStatuses": list(statuses),
              "initContainerStatuses": list(init_statuses), "conditions": list(conditions)}
    if reason:
        status["reason"] = reason
    obj = {"metadata": {"name": name},
           "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)],
                    "initContainers": [{"name": f"i{i}"} for i in range(init)]},
           "status": status}
    for key, value in extra.items():
        obj.setdefault(key.split("_")[0], {})[key.split("_", 1)[1]] = value
    return obj


RUNNING = {"running": {}}


def cs(ready=False, restarts=0, state=None, last_finished=None, **kw):
    c = {"ready": ready, "restartCount": restarts, "state": state or {}, **kw}
    if last_finished is not None:
        c["lastState"] = {"terminated": {"finishedAt": ago(last_finished)}}
    return c


PODS = [
    ("name, containers, restarts and ready count",
     pod("test1", statuses=[cs(True, 3, RUNNING), cs(restarts=3)]),
     ["test1", "1/2", "podPhase", "6", "<unknown>"]),
    ("a container error overrides the phase",
     pod("test2", statuses=[
         cs(True, 3, RUNNING),
         cs(restarts=3, state={"waiting": {"reason": "ContainerWaitingReason"}})]),
     ["test2", "1/2", "ContainerWaitingReason", "6", "<unknown>"]),
    ("the first container's reason wins",
     pod("test3", statuses=[cs(restarts=3, state={"waiting": {"reason": "ContainerWaitingReason"}}),
                            cs(restarts=3, state={"terminated": {
                                "reason": "ContainerTerminatedReason"}})]),
     ["test3", "0/2", "ContainerWaitingReason", "6", "<unknown>"]),
    ("ready alone does not count as running",
     pod("test4", statuses=[cs(True, 3, RUNNING), cs(True, 3)]),
     ["test4", "1/2", "podPhase", "6", "<unknown>"]),
    ("status.reason overrides the phase",
     pod("test5", reason="podReason", statuses=[cs(True, 3, RUNNING), cs(True, 3)]),
     ["test5", "1/2", "podReason", "6", "<unknown>"]),
    ("completed plus running without a ready condition is NotReady",
     pod("test6", phase="Running", statuses=[
         cs(True, 3, {"terminated": {"reason": "Completed", "exitCode": 0}}),
         cs(True, 3, RUNNING)]),
     ["test6", "1/2", "NotReady", "6", "<unknown>"]),
    ("completed plus running with a ready condition is Running",
     pod("test6", phase="Running", statuses=[
         cs(True, 3, {"terminated": {"reason": "Completed", "exitCode": 0}}),
         cs(True, 3, RUNNING)], conditions=[{"type": "Ready", "status": "True"}]),
     ["test6", "1/2", "Running", "6", "<unknown>"]),
    ("a restarting init container shows Init:0/1 and its restarts",
     pod("test7", containers=1, init=1,
         init_statuses=[cs(restarts=3, state=RUNNING, last_finished=10)],
         statuses=[cs(state={"waiting": {}})]),
     ["test7", "0/1", "Init:0/1", "3 (10s ago)", "<unknown>"]),
    ("the second of two init containers shows Init:1/2",
     pod("test9", containers=1, init=2,
         init_statuses=[cs(state={"terminated": {}}),
                        cs(restarts=3, state=RUNNING, last_finished=10)],
         statuses=[cs(state={"waiting": {}})]),
     ["test9", "0/1", "Init:1/2", "3 (10s ago)", "<unknown>"]),
    ("init restarts add up while initialising",
     pod("test10", containers=1, init=2,
         init_statuses=[cs(restarts=2, state={"terminated": {}}, last_finished=120),
                        cs(restarts=3, state=RUNNING, last_finished=10)],
         statuses=[cs(state={"waiting": {}})]),
     ["test10", "0/1", "Init:1/2", "5 (10s ago)", "<unknown>"]),
    ("finished init restarts no longer count",
     pod("test11", containers=1, init=1, phase="Running",
         init_statuses=[cs(restarts=2, state={"terminated": {}}, last_finished=120)],
         statuses=[cs(restarts=4, state=RUNNING, last_finished=20)]),
     ["test11", "0/1", "Running", "4 (20s ago)", "<unknown>"]),
    ("a restart five days ago",
     pod("test12", containers=1, phase="Running",
         statuses=[cs(True, 3, RUNNING, last_finished=5 * DAY)]),
     ["test12", "1/1", "Running", "3 (5d ago)", "<unknown>"]),
    ("the most recent restart of any container is shown",
     pod("test14", phase="Running", statuses=[cs(True, 6, RUNNING, last_finished=5 * DAY),
                                              cs(True, 3, RUNNING, last_finished=20 * DAY)]),
     ["test14", "2/2", "Running", "9 (5d ago)", "<unknown>"]),
    ("a scheduling-gated pod says SchedulingGated",
     pod("test15", conditions=[{"type": "PodScheduled", "status": "False",
                                "reason": "SchedulingGated"}]),
     ["test15", "0/2", "SchedulingGated", "0", "<unknown>"]),
    ("a succeeded pod shows Completed",
     pod("test16", containers=1, phase="Succeeded",
         statuses=[cs(state={"terminated": {"reason": "Completed", "exitCode": 0}})]),
     ["test16", "0/1", "Completed", "0", "<unknown>"]),
    ("a failed pod shows the container's reason",
     pod("test17", containers=1, phase="Failed",
         statuses=[cs(state={"terminated": {"reason": "Error", "exitCode": 1}})]),
     ["test17", "0/1", "Error", "0", "<unknown>"]),
    ("a deleted succeeded pod stays Completed",
     pod("test18", containers=1, phase="Succeeded", metadata_deletionTimestamp=ago(10),
         statuses=[cs(state={"terminated": {"reason": "Completed", "exitCode": 0}})]),
     ["test18", "0/1", "Completed", "0", "<unknown>"]),
    ("a deleted running pod is Terminating",
     pod("test19", containers=1, phase="Running", metadata_deletionTimestamp=ago(10),
         statuses=[cs(True, 0, RUNNING)]),
     ["test19", "1/1", "Terminating", "0", "<unknown>"]),
    ("a deleted pod on a lost node is Unknown",
     pod("test20", containers=1, phase="Running", reason="NodeLost",
         metadata_deletionTimestamp=ago(10), statuses=[cs(True, 0, RUNNING)]),
     ["test20", "1/1", "Unknown", "0", "<unknown>"]),
    ("a failed init container shows Init:ExitCode",
     pod("test21", containers=1, init=1,
         init_statuses=[cs(state={"terminated": {"exitCode": 2}})]),
     ["test21", "0/1", "Init:ExitCode:2", "0", "<unknown>"]),
    ("a crash-looping init container shows Init:CrashLoopBackOff",
     pod("test22", containers=1, init=1,
         init_statuses=[cs(state={"waiting": {"reason": "CrashLoopBackOff"}})]),
     ["test22", "0/1", "Init:CrashLoopBackOff", "0", "<unknown>"]),
    ("a container killed by a signal shows Signal:9",
     pod("test23", containers=1, statuses=[cs(state={"terminated": {"signal": 9}})]),
     ["test23", "0/1", "Signal:9", "0", "<unknown>"]),
]


@pytest.mark.parametrize("obj,expect", [(o, e) for _, o, e in PODS], ids=[i for i, _, _ in PODS])
def test_pod_row_matches_print_pod(obj, expect):
    assert table_cells("", "Pod", obj, NOW)[:5] == expect


def test_a_started_sidecar_counts_towards_ready_and_total():
    obj = pod("sidecar", containers=1, init=1, phase="Running",
              init_statuses=[cs(True, 2, RUNNING, started=True, last_finished=30, name="i0")],
              statuses=[cs(True, 0, RUNNING)],
              conditions=[{"type": "Initialized", "status": "True"}])
    obj["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    assert table_cells("", "Pod", obj, NOW)[:4] == ["sidecar", "2/2", "Running", "2 (30s ago)"]


WIDE = [
    ("no IP, node or gates prints <none>", {}, {}, ["<none>", "<none>", "<none>", "<none>"]),
    ("IP, node, nominated node and gates",
     {"nodeName": "test1", "readinessGates": [{"conditionType": "condition1"}]},
     {"podIPs": [{"ip": "1.1.1.1"}, {"ip": "2001:db8::"}], "nominatedNodeName": "node1",
      "conditions": [{"type": "condition1", "status": "True"}]},
     ["1.1.1.1", "test1", "node1", "1/1"]),
    ("an unmet gate counts as not true",
     {"readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
     {"conditions": [{"type": "a", "status": "False"}]}, ["<none>", "<none>", "<none>", "0/2"]),
]


@pytest.mark.parametrize("spec,status,expect", [(s, st, e) for _, s, st, e in WIDE],
                         ids=[i for i, *_ in WIDE])
def test_pod_wide_cells(spec, status, expect):
    obj = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], **spec},
           "status": status}
    assert table_cells("", "Pod", obj, NOW)[5:] == expect


def test_pod_columns_declare_restarts_as_string_and_wide_columns_at_priority_one():
    cols = table_columns("", "Pod")
    assert [c["name"] for c in cols] == ["Name", "Ready", "Status", "Restarts", "Age", "IP",
                                         "Node", "Nominated Node", "Readiness Gates"]
    assert cols[0]["format"] == "name" and cols[3]["type"] == "string"
    assert [c["priority"] for c in cols] == [0, 0, 0, 0, 0, 1, 1, 1, 1]


# --- nodes -------------------------------------------------------------------------------------

def node(conditions=(), unschedulable=False, labels=None):
    return {"metadata": {"name": "foo", "labels": labels or {}},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": list(conditions)}}


NODES = [
    ("ready", node([{"type": "Ready", "status": "True"}]), "Ready", "<none>"),
    ("ready but cordoned", node([{"type": "Ready", "status": "True"}], True),
     "Ready,SchedulingDisabled", "<none>"),
    ("not ready", node([{"type": "Ready", "status": "False"}]), "NotReady", "<none>"),
    ("ready unknown", node([{"type": "Ready", "status": "Unknown"}]), "NotReady", "<none>"),
    ("no conditions", node(), "Unknown", "<none>"),
    ("no conditions and cordoned", node(unschedulable=True), "Unknown,SchedulingDisabled",
     "<none>"),
    ("only other conditions", node([{"type": "InvalidValue", "status": "True"}]), "Unknown",
     "<none>"),
    ("roles from both label styles",
     node([{"type": "Ready", "status": "True"}],
          labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker",
                  "node-role.kubernetes.io/": "x"}),
     "Ready", "control-plane,worker"),
]


@pytest.mark.parametrize("obj,status,roles", [(o, s, r) for _, o, s, r in NODES],
                         ids=[i for i, *_ in NODES])
def test_node_status_and_roles(obj, status, roles):
    assert table_cells("", "Node", obj, NOW)[1:3] == [status, roles]


def test_node_wide_cells_fall_back_to_unknown_and_none():
    obj = {"metadata": {"name": "n"}, "status": {
        "addresses": [{"type": "ExternalIP", "address": "1.1.1.1"},
                      {"type": "InternalIP", "address": "10.0.0.1"}],
        "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian"}}}
    assert table_cells("", "Node", obj, NOW)[4:] == [
        "v1.32.0", "10.0.0.1", "1.1.1.1", "Debian", "<unknown>", "<unknown>"]


# --- services ----------------------------------------------------------------------------------

def svc(type_, ports=(), cluster_ip="10.9.8.7", external=None, ingress=None, **spec):
    obj = {"metadata": {"name": "s"}, "spec": {"type": type_, "ports": list(ports), **spec}}
    if cluster_ip:
        obj["spec"]["clusterIP"] = cluster_ip
    if external:
        obj["spec"]["externalIPs"] = external
    if ingress:
        obj["status"] = {"loadBalancer": {"ingress": ingress}}
    return obj


SERVICES = [
    ("cluster IP with a port", svc("ClusterIP", [{"protocol": "tcp", "port": 2233}]),
     ["ClusterIP", "10.9.8.7", "<none>", "2233/tcp"]),
    ("node port", svc("NodePort", [{"protocol": "tcp", "port": 8888, "nodePort": 9999}]),
     ["NodePort", "10.9.8.7", "<none>", "8888:9999/tcp"]),
    ("load balancer pending", svc("LoadBalancer", [{"protocol": "tcp", "port": 8888}]),
     ["LoadBalancer", "10.9.8.7", "<pending>", "8888/tcp"]),
    ("load balancer with an external IP only",
     svc("LoadBalancer", [{"protocol": "tcp", "port": 8888}], external=["80.11.12.10"]),
     ["LoadBalancer", "10.9.8.7", "80.11.12.10", "8888/tcp"]),
    ("load balancer ingress before external IPs",
     svc("LoadBalancer", [{"protocol": "tcp", "port": 8888}],
         external=["80.11.12.10", "80.11.12.11"],
         ingress=[{"ip": "3.4.5.6", "hostname": "test.cluster.com"},
                  {"ip": "2.3.4.5", "hostname": "test.cluster.local"}]),
     ["LoadBalancer", "10.9.8.7", "2.3.4.5,3.4.5.6,80.11.12.10,80.11.12.11", "8888/tcp"]),
    ("external name", svc("ExternalName", cluster_ip="", externalName="my.database.example.com"),
     ["ExternalName", "<none>", "my.database.example.com", "<none>"]),
    ("headless", svc("ClusterIP", [{"port": 53, "protocol": "UDP"}], cluster_ip="None"),
     ["ClusterIP", "None", "<none>", "53/UDP"]),
]


@pytest.mark.parametrize("obj,expect", [(o, e) for _, o, e in SERVICES],
                         ids=[i for i, *_ in SERVICES])
def test_service_row_matches_print_service(obj, expect):
    cells = table_cells("", "Service", obj, NOW)
    assert cells[1:5] == expect and cells[5] == "<unknown>"


def test_service_selector_is_the_wide_column():
    obj = svc("ClusterIP", selector={"b": "2", "a": "1"})
    assert table_cells("", "Service", obj, NOW)[6] == "a=1,b=2"


# --- apps --------------------------------------------------------------------------------------

TEMPLATE = {"spec": {"containers": [{"name": "fake-container1", "image": "fake-image1"},
                                    {"name": "fake-container2", "image": "fake-image2"}]}}


def test_deployment_row_matches_print_deployment():
    d = {"metadata": {"name": "test1", "creationTimestamp": ago(0)},
         "spec": {"replicas": 5, "template": TEMPLATE,
                  "selector": {"matchLabels": {"foo": "bar"}}},
         "status": {"replicas": 10, "updatedReplicas": 2, "availableReplicas": 1,
                    "unavailableReplicas": 4}}
    assert table_cells("apps", "Deployment", d, NOW) == [
        "test1", "0/5", 2, 1, "0s", "fake-container1,fake-container2",
        "fake-image1,fake-image2", "foo=bar"]


def test_deployment_with_empty_selector_prints_an_empty_selector():
    d = {"metadata": {"name": "d"}, "spec": {"selector": {}}}
    assert table_cells("apps", "Deployment", d, NOW)[-1] == ""
    assert table_cells("apps", "Deployment", d, NOW)[1] == "0/1"


def test_replica_set_row_matches_print_replica_set():
    rs = {"metadata": {"name": "test1", "creationTimestamp": ago(0)},
          "spec": {"replicas": 5, "template": TEMPLATE,
                   "selector": {"matchLabels": {"foo": "bar"}}},
          "status": {"replicas": 5, "readyReplicas": 2}}
    assert table_cells("apps", "ReplicaSet", rs, NOW) == [
        "test1", 5, 5, 2, "0s", "fake-container1,fake-container2", "fake-image1,fake-image2",
        "foo=bar"]


def test_daemon_set_and_stateful_set_rows():
    ds = {"metadata": {"name": "ds"}, "spec": {"template": TEMPLATE},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberReady": 1,
                     "updatedNumberScheduled": 2, "numberAvailable": 1}}
    assert table_cells("apps", "DaemonSet", ds, NOW)[:8] == [
        "ds", 3, 2, 1, 2, 1, "<none>", "<unknown>"]
    assert table_cells("apps", "DaemonSet", ds, NOW)[-1] == "<none>"
    sts = {"metadata": {"name": "web"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 2}}
    assert table_cells("apps", "StatefulSet", sts, NOW) == ["web", "2/3", "<unknown>", "", ""]


REVISIONS = [
    ([{"controller": True, "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "foo"}],
     "daemonset.apps/foo"),
    ([{"controller": False, "kind": "ABC", "name": "foo"}], "<none>"),
    ([], "<none>"),
]


@pytest.mark.parametrize("owners,expect", REVISIONS, ids=[
    "controlled by a DaemonSet", "owned but not controlled", "no owners"])
def test_controller_revision_shows_its_controller(owners, expect):
    cr = {"metadata": {"name": "test1", "ownerReferences": owners, "creationTimestamp": ago(0)},
          "revision": 1}
    assert table_cells("apps", "ControllerRevision", cr, NOW) == ["test1", expect, 1, "0s"]


# --- batch -------------------------------------------------------------------------------------

JOBS = [
    ("complete with completions", {"completions": 2},
     {"succeeded": 2, "startTime": ago(5 * M), "completionTime": ago(3 * M),
      "conditions": [{"type": "Complete", "status": "True"}]},
     ["Complete", "2/2", "2m"]),
    ("running in parallel without completions", {"parallelism": 3},
     {"succeeded": 1, "startTime": ago(30)}, ["Running", "1/1 of 3", "30s"]),
    ("not started", {}, {}, ["Running", "0/1", ""]),
    ("failed", {"completions": 1}, {"conditions": [{"type": "Failed", "status": "True"}]},
     ["Failed", "0/1", ""]),
    ("suspended", {"completions": 1}, {"conditions": [{"type": "Suspended", "status": "True"}]},
     ["Suspended", "0/1", ""]),
    ("failure target", {"completions": 1},
     {"conditions": [{"type": "FailureTarget", "status": "True"}]}, ["FailureTarget", "0/1", ""]),
]


@pytest.mark.parametrize("spec,status,expect", [(s, st, e) for _, s, st, e in JOBS],
                         ids=[f"a {i} job" for i, *_ in JOBS])
def test_job_status_completions_and_duration(spec, status, expect):
    job = {"metadata": {"name": "job1"}, "spec": spec, "status": status}
    assert table_cells("batch", "Job", job, NOW)[1:4] == expect


def test_a_deleted_running_job_is_terminating():
    job = {"metadata": {"name": "j", "deletionTimestamp": ago(1)}, "spec": {}, "status": {}}
    assert table_cells("batch", "Job", job, NOW)[1] == "Terminating"


def test_cron_job_row():
    cj = {"metadata": {"name": "cj1", "creationTimestamp": ago(2 * H)},
          "spec": {"schedule": "0/5 * * * ?", "suspend": False,
                   "jobTemplate": {"spec": {"template": TEMPLATE}}},
          "status": {"lastScheduleTime": ago(5), "active": [{"name": "j"}]}}
    assert table_cells("batch", "CronJob", cj, NOW)[:7] == [
        "cj1", "0/5 * * * ?", "<none>", "False", 1, "5s", "120m"]


# --- everything else ---------------------------------------------------------------------------

def test_event_row_prefers_series_and_formats_source():
    ev = {"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff",
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
          "message": " back-off \n", "firstTimestamp": ago(10 * M), "count": 3,
          "series": {"count": 7, "lastObservedTime": ago(20)},
          "reportingComponent": "kubelet", "reportingInstance": "node-1"}
    assert table_cells("", "Event", ev, NOW) == [
        "20s", "Warning", "BackOff", "pod/web", "spec.containers{c}", "kubelet, node-1",
        "back-off", "10m", 7, "e1"]


def test_events_k8s_io_event_prints_like_core():
    ev = {"metadata": {"name": "e2"}, "type": "Normal", "reason": "Scheduled",
          "regarding": {"kind": "Pod", "name": "web"}, "note": "assigned",
          "eventTime": "2024-06-01T11:59:00.000000Z", "reportingController": "scheduler"}
    assert table_cells("events.k8s.io", "Event", ev, NOW) == [
        "60s", "Normal", "Scheduled", "pod/web", "", "scheduler", "assigned", "60s", 1, "e2"]


PV = {"metadata": {"name": "test4"}, "spec": {
    "claimRef": {"name": "test", "namespace": "default"}, "storageClassName": "my-scn",
    "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}},
    "status": {"phase": "Pending"}}


def test_persistent_volume_and_claim_rows():
    assert table_cells("", "PersistentVolume", PV, NOW) == [
        "test4", "10Gi", "RWO", "", "Pending", "default/test", "my-scn", "<unset>", "",
        "<unknown>", "<unset>"]
    pvc = {"metadata": {"name": "test1"},
           "spec": {"volumeName": "my-volume", "volumeMode": "Filesystem"},
           "status": {"phase": "Bound", "accessModes": ["ReadOnlyMany"],
                      "capacity": {"storage": "4096Mi"}}}
    assert table_cells("", "PersistentVolumeClaim", pvc, NOW) == [
        "test1", "Bound", "my-volume", "4Gi", "ROX", "", "<unset>", "<unknown>", "Filesystem"]


def test_small_kinds():
    assert table_cells("", "ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "1"},
                                         "binaryData": {"b": ""}}, NOW) == ["c", 2, "<unknown>"]
    assert table_cells("", "Secret", {"metadata": {"name": "s"}, "type": "Opaque",
                                      "data": {"a": ""}}, NOW) == ["s", "Opaque", 1, "<unknown>"]
    assert table_cells("", "Namespace", {"metadata": {"name": "n"},
                                         "status": {"phase": "Active"}}, NOW)[1] == "Active"
    assert table_cells("coordination.k8s.io", "Lease", {"metadata": {"name": "l"},
                                                        "spec": {"holderIdentity": "me"}},
                       NOW) == ["l", "me", "<unknown>"]
    pdb = {"metadata": {"name": "pdb1"}, "spec": {"minAvailable": 22},
           "status": {"disruptionsAllowed": 5}}
    assert table_cells("policy", "PodDisruptionBudget", pdb, NOW) == [
        "pdb1", "22", "N/A", 5, "<unknown>"]
    pc = {"metadata": {"name": "high"}, "value": 1000, "globalDefault": True}
    assert table_cells("scheduling.k8s.io", "PriorityClass", pc, NOW) == [
        "high", 1000, True, "<unknown>", ""]


def test_endpoints_and_endpoint_slices_list_three_then_count_the_rest():
    ep = {"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": ip} for ip in ("1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4")],
         "ports": [{"port": 80}]}]}
    assert table_cells("", "Endpoints", ep, NOW)[1] == (
        "1.1.1.1:80,2.2.2.2:80,3.3.3.3:80 + 1 more...")
    assert table_cells("", "Endpoints", {"metadata": {"name": "e"}}, NOW)[1] == "<none>"
    es = {"metadata": {"name": "s"}, "addressType": "IPv4",
          "ports": [{"port": 80}, {"name": "http"}, {}],
          "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}
    assert table_cells("discovery.k8s.io", "EndpointSlice", es, NOW)[1:4] == [
        "IPv4", "80,http,*", "10.0.0.1,10.0.0.2"]
    assert table_cells("discovery.k8s.io", "EndpointSlice", {"metadata": {"name": "s"}},
                       NOW)[2:4] == ["<unset>", "<unset>"]


def test_resource_quota_splits_requests_and_limits():
    rq = {"metadata": {"name": "q"}, "status": {
        "hard": {"limits.cpu": "2", "requests.memory": "1Gi", "pods": "10"},
        "used": {"limits.cpu": "500m", "pods": "3"}}}
    assert table_cells("", "ResourceQuota", rq, NOW)[1:3] == [
        "pods: 3/10, requests.memory: 0/1Gi", "limits.cpu: 500m/2"]


def test_kinds_without_a_printer_get_name_and_created_at():
    lr = {"metadata": {"name": "limits", "creationTimestamp": "2024-01-01T10:00:00+02:00"}}
    assert not has_printer("", "LimitRange")
    assert [c["name"] for c in table_columns("", "LimitRange")] == ["Name", "Created At"]
    assert table_columns("", "LimitRange")[1]["type"] == "date"
    assert table_cells("", "LimitRange", lr, NOW) == ["limits", "2024-01-01T08:00:00Z"]
    assert table_cells("example.com", "Widget", {"metadata": {"name": "w"}}, NOW) == [
        "w", "0001-01-01T00:00:00Z"]


# --- the Table object --------------------------------------------------------------------------

POD_OBJ = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                        "creationTimestamp": ago(5)},
           "spec": {"containers": [{"name": "c"}]},
           "status": {"phase": "Succeeded", "containerStatuses": [
               cs(state={"terminated": {"reason": "Completed", "exitCode": 0}})]}}


@pytest.mark.parametrize("include,expect", [
    ("Metadata", {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                  "metadata": POD_OBJ["metadata"]}),
    ("", {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
          "metadata": POD_OBJ["metadata"]}),
    ("Object", POD_OBJ),
    ("None", None),
], ids=["metadata gives partial object metadata", "the default is metadata",
        "object gives the full object", "none gives a null object"])
def test_table_rows_carry_the_requested_object(include, expect):
    table = build_table("", "Pod", [POD_OBJ], NOW, include_object=include)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {}
    assert table["rows"][0]["object"] == expect
    assert table["rows"][0]["cells"] == ["web", "0/1", "Completed", "0", "5s", "<none>", "<none>",
                                         "<none>", "<none>"]


def test_a_finished_pod_row_carries_the_completed_condition():
    row = build_table("", "Pod", [POD_OBJ], NOW)["rows"][0]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]


def test_a_table_without_headers_has_null_column_definitions():
    table = build_table("apps", "Deployment", [], NOW, with_columns=False)
    assert table["columnDefinitions"] is None and table["rows"] == []


def test_an_unknown_include_object_is_a_bad_request():
    with pytest.raises(BadRequest) as e:
        build_table("", "Pod", [], NOW, include_object="Everything")
    assert e.value.message == 'unrecognized includeObject value: "Everything"'


KINDS = [("", "Pod"), ("", "Node"), ("", "Namespace"), ("", "Service"), ("", "Endpoints"),
         ("", "ConfigMap"), ("", "Secret"), ("", "ServiceAccount"), ("", "Event"),
         ("", "PersistentVolume"), ("", "PersistentVolumeClaim"), ("", "ReplicationController"),
         ("", "PodTemplate"), ("", "LimitRange"), ("", "ResourceQuota"), ("apps", "Deployment"),
         ("apps", "ReplicaSet"), ("apps", "DaemonSet"), ("apps", "StatefulSet"),
         ("apps", "ControllerRevision"), ("batch", "Job"), ("batch", "CronJob"),
         ("coordination.k8s.io", "Lease"), ("events.k8s.io", "Event"),
         ("discovery.k8s.io", "EndpointSlice"), ("policy", "PodDisruptionBudget"),
         ("scheduling.k8s.io", "PriorityClass")]


@pytest.mark.parametrize("group,kind", KINDS, ids=[f"{k} ({g or 'core'})" for g, k in KINDS])
def test_every_served_kind_prints_one_cell_per_column_even_for_a_bare_object(group, kind):
    cols = table_columns(group, kind)
    assert len(table_cells(group, kind, {"metadata": {"name": "x"}}, NOW)) == len(cols)
    assert all(set(c) == {"name", "type", "format", "description", "priority"} for c in cols)
    assert all(c["description"] for c in cols)
    assert [c["format"] for c in cols].count("name") == 1
