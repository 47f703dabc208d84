"""Tables for apps/v1: Deployments, ReplicaSets, DaemonSets, StatefulSets, ControllerRevisions.

Ports of printDeployment, printReplicaSet, printDaemonSet, printStatefulSet and
printControllerRevision (printers.go, v1.32). Counts are JSON numbers wherever printers.go
appends an int64 (even under a column declared "string", as UP-TO-DATE is), READY is
`ready/desired`, and `spec.replicas` reads as its default of 1 when absent. The SELECTOR column
follows each printer's own choice: Deployments print the raw selector string (empty when the
selector is empty, `<invalid>` when it cannot be parsed), the others
`metav1.FormatLabelSelector` (`<none>` / `<error>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.errors import BadRequest
from navio.api.selectors import format_label_selector, format_labels, label_selector_from_spec
from navio.api.tables.cells import (
    Printer, age, age_column, column, containers_and_images, format_resource_name, get,
    name_column)
from navio.api.tables.descriptions import DOC

__all__ = ["PRINTERS"]

_CONTAINERS = column("Containers", "string", "Names of each container in the template.",
                     priority=1)
_IMAGES = column("Images", "string", "Images referenced by each container in the template.",
                 priority=1)
_READY = "Number of the pod with ready state"


def _replicas(obj: Mapping[str, Any]) -> int:
    desired = get(obj, "spec", "replicas")
    return 1 if desired is None else desired


def _template_cells(obj: Mapping[str, Any]) -> list[str]:
    return list(containers_and_images(get(obj, "spec", "template", "spec", "containers")))


DEPLOYMENT_COLUMNS = (
    name_column(),
    column("Ready", "string", _READY),
    column("Up-to-date", "string", DOC["DeploymentStatus.updatedReplicas"]),
    column("Available", "string", DOC["DeploymentStatus.availableReplicas"]),
    age_column(),
    _CONTAINERS, _IMAGES,
    column("Selector", "string", DOC["DeploymentSpec.selector"], priority=1),
)


def deployment_cells(d: Mapping[str, Any], now: datetime) -> list[Any]:
    status = get(d, "status", default={})
    try:
        selector = str(label_selector_from_spec(get(d, "spec", "selector")))
    except BadRequest:
        selector = "<invalid>"
    return [get(d, "metadata", "name", default=""),
            f"{status.get('readyReplicas') or 0}/{_replicas(d)}",
            status.get("updatedReplicas") or 0, status.get("availableReplicas") or 0,
            age(d, now), *_template_cells(d), selector]


REPLICA_SET_COLUMNS = (
    name_column(),
    column("Desired", "integer", DOC["ReplicaSetSpec.replicas"]),
    column("Current", "integer", DOC["ReplicaSetStatus.replicas"]),
    column("Ready", "integer", DOC["ReplicaSetStatus.readyReplicas"]),
    age_column(),
    _CONTAINERS, _IMAGES,
    column("Selector", "string", DOC["ReplicaSetSpec.selector"], priority=1),
)


def replica_set_cells(rs: Mapping[str, Any], now: datetime) -> list[Any]:
    status = get(rs, "status", default={})
    return [get(rs, "metadata", "name", default=""), _replicas(rs),
            status.get("replicas") or 0, status.get("readyReplicas") or 0, age(rs, now),
            *_template_cells(rs), format_label_selector(get(rs, "spec", "selector"))]


DAEMON_SET_COLUMNS = (
    name_column(),
    column("Desired", "integer", DOC["DaemonSetStatus.desiredNumberScheduled"]),
    column("Current", "integer", DOC["DaemonSetStatus.currentNumberScheduled"]),
    column("Ready", "integer", DOC["DaemonSetStatus.numberReady"]),
    column("Up-to-date", "integer", DOC["DaemonSetStatus.updatedNumberScheduled"]),
    column("Available", "integer", DOC["DaemonSetStatus.numberAvailable"]),
    column("Node Selector", "string", DOC["PodSpec.nodeSelector"]),
    age_column(),
    _CONTAINERS, _IMAGES,
    column("Selector", "string", DOC["DaemonSetSpec.selector"], priority=1),
)


def daemon_set_cells(ds: Mapping[str, Any], now: datetime) -> list[Any]:
    status = get(ds, "status", default={})
    counts = [status.get(k) or 0 for k in ("desiredNumberScheduled", "currentNumberScheduled",
                                             "numberReady", "updatedNumberScheduled",
                                             "numberAvailable")]
    return [get(ds, "metadata", "name", default=""), *counts,
            format_labels(get(ds, "spec", "template", "spec", "nodeSelector")), age(ds, now),
            *_template_cells(ds), format_label_selector(get(ds, "spec", "selector"))]


STATEFUL_SET_COLUMNS = (name_column(), column("Ready", "string", _READY), age_column(),
                        _CONTAINERS, _IMAGES)


def stateful_set_cells(sts: Mapping[str, Any], now: datetime) -> list[Any]:
    ready = get(sts, "status", "readyReplicas", default=0)
    return [get(sts, "metadata", "name", default=""), f"{ready}/{_replicas(sts)}",
            age(sts, now), *_template_cells(sts)]


CONTROLLER_REVISION_COLUMNS = (
    name_column(),
    column("Controller", "string", "Controller of the object"),
    column("Revision", "string", DOC["ControllerRevision.revision"]),
    age_column(),
)


def controller_revision_cells(cr: Mapping[str, Any], now: datetime) -> list[Any]:
    owner = next((o for o in get(cr, "metadata", "ownerReferences", default=())
                  if o.get("controller")), None)
    controller = "<none>" if owner is None else format_resource_name(
        owner.get("apiVersion", ""), owner.get("kind", ""), owner.get("name", ""))
    return [get(cr, "metadata", "name", default=""), controller, cr.get("revision") or 0,
            age(cr, now)]


PRINTERS = {
    ("apps", "Deployment"): Printer(DEPLOYMENT_COLUMNS, deployment_cells),
    ("apps", "ReplicaSet"): Printer(REPLICA_SET_COLUMNS, replica_set_cells),
    ("apps", "DaemonSet"): Printer(DAEMON_SET_COLUMNS, daemon_set_cells),
    ("apps", "StatefulSet"): Printer(STATEFUL_SET_COLUMNS, stateful_set_cells),
    ("apps", "ControllerRevision"): Printer(CONTROLLER_REVISION_COLUMNS,
                                            controller_revision_cells),
}
