"""Tables for storage.k8s.io/v1: StorageClasses, CSIDrivers, CSINodes, VolumeAttachments.

Ports of printStorageClass, printCSIDriver, printCSINode and printVolumeAttachment
(printers.go, v1.32). A default class (annotation `storageclass.kubernetes.io/is-default-class`
or its beta form set to "true") prints as `NAME (default)`; unset reclaim policy, binding mode
and expansion print their API defaults (Delete, Immediate, false).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from navio.api.tables.cells import Printer, age, age_column, column, get, name_column

__all__ = ["PRINTERS", "is_default_class", "DEFAULT_CLASS_ANNOTATION"]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"

# Column descriptions: the v1.32 schema's doc comments, as printers.go takes them.
_DOC = {
    'StorageClass.provisioner': (
        'provisioner indicates the type of the provisioner.'
    ),
    'StorageClass.reclaimPolicy': (
        'reclaimPolicy controls the reclaimPolicy for dynamically provisioned '
        'PersistentVolumes of this storage class. Defaults to Delete.'
    ),
    'StorageClass.volumeBindingMode': (
        'volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and '
        'bound.  When unset, VolumeBindingImmediate is used. This field is only honored by '
        'servers that enable the VolumeScheduling feature.'
    ),
    'StorageClass.allowVolumeExpansion': (
        'allowVolumeExpansion shows whether the storage class allow volume expand.'
    ),
    'CSIDriverSpec.attachRequired': (
        'attachRequired indicates this CSI volume driver requires an attach operation '
        '(because it implements the CSI ControllerPublishVolume() method), and that the '
        'Kubernetes attach detach controller should call the attach volume interface which '
        'checks the volumeattachment status and waits until the volume is attached before '
        'proceeding to mounting. The CSI external-attacher coordinates with CSI volume driver'
        ' and updates the volumeattachment status when the attach operation is complete. If '
        'the CSIDriverRegistry feature gate is enabled and the value is specified to false, '
        'the attach operation will be skipped. Otherwise the attach operation will be called.'
        '  This field is immutable.'
    ),
    'CSIDriverSpec.podInfoOnMount': (
        'podInfoOnMount indicates this CSI volume driver requires additional pod information '
        '(like podName, podUID, etc.) during mount operations, if set to true. If set to '
        'false, pod information will not be passed on mount. Default is false.  The CSI '
        'driver specifies podInfoOnMount as part of driver deployment. If true, Kubelet will '
        'pass pod information as VolumeContext in the CSI NodePublishVolume() calls. The CSI '
        'driver is responsible for parsing and validating the information passed in as '
        'VolumeContext.  The following VolumeContext will be passed if podInfoOnMount is set '
        'to true. This list might grow, but the prefix will be used. '
        '"csi.storage.k8s.io/pod.name": pod.Name "csi.storage.k8s.io/pod.namespace": '
        'pod.Namespace "csi.storage.k8s.io/pod.uid": string(pod.UID) '
        '"csi.storage.k8s.io/ephemeral": "true" if the volume is an ephemeral inline volume'
        '                                 defined by a CSIVolumeSource, otherwise "false"  '
        '"csi.storage.k8s.io/ephemeral" is a new feature in Kubernetes 1.16. It is only '
        'required for drivers which support both the "Persistent" and "Ephemeral" '
        'VolumeLifecycleMode. Other drivers can leave pod info disabled and/or ignore this '
        "field. As Kubernetes 1.15 doesn't support this field, drivers can only support one "
        'mode when deployed on such a cluster and the deployment determines which mode that '
        'is, for example via a command line parameter of the driver.  This field was '
        'immutable in Kubernetes < 1.29 and now is mutable.'
    ),
    'CSIDriverSpec.storageCapacity': (
        'storageCapacity indicates that the CSI volume driver wants pod scheduling to '
        'consider the storage capacity that the driver deployment will report by creating '
        'CSIStorageCapacity objects with capacity information, if set to true.  The check can'
        ' be enabled immediately when deploying a driver. In that case, provisioning new '
        'volumes with late binding will pause until the driver deployment has published some '
        'suitable CSIStorageCapacity object.  Alternatively, the driver can be deployed with '
        'the field unset or false and it can be flipped later when storage capacity '
        'information has been published.  This field was immutable in Kubernetes <= 1.22 and '
        'now is mutable.'
    ),
    'CSIDriverSpec.tokenRequests': (
        "tokenRequests indicates the CSI driver needs pods' service account tokens it is "
        'mounting volume for to do necessary authentication. Kubelet will pass the tokens in '
        'VolumeContext in the CSI NodePublishVolume calls. The CSI driver should parse and '
        'validate the following VolumeContext: "csi.storage.k8s.io/serviceAccount.tokens": {'
        '   "<audience>": {     "token": <token>,     "expirationTimestamp": <expiration '
        'timestamp in RFC3339>,   },   ... }  Note: Audience in each TokenRequest should be '
        'different and at most one token is empty string. To receive a new token after '
        'expiry, RequiresRepublish can be used to trigger NodePublishVolume periodically.'
    ),
    'CSIDriverSpec.requiresRepublish': (
        'requiresRepublish indicates the CSI driver wants `NodePublishVolume` being '
        'periodically called to reflect any possible change in the mounted volume. This field'
        ' defaults to false.  Note: After a successful initial NodePublishVolume call, '
        'subsequent calls to NodePublishVolume should only update the contents of the volume.'
        ' New mount points will not be seen by a running container.'
    ),
    'CSIDriverSpec.volumeLifecycleModes': (
        'volumeLifecycleModes defines what kind of volumes this CSI volume driver supports. '
        'The default if the list is empty is "Persistent", which is the usage defined by the '
        'CSI specification and implemented in Kubernetes via the usual PV/PVC mechanism.  The'
        ' other mode is "Ephemeral". In this mode, volumes are defined inline inside the pod '
        'spec with CSIVolumeSource and their lifecycle is tied to the lifecycle of that pod. '
        'A driver has to be aware of this because it is only going to get a NodePublishVolume'
        ' call for such a volume.  For more information about implementing this mode, see '
        'https://kubernetes-csi.github.io/docs/ephemeral-local-volumes.html A driver can '
        'support one or more of these modes and more modes may be added in the future.  This '
        'field is beta. This field is immutable.'
    ),
    'CSINodeSpec.drivers': (
        'drivers is a list of information of all CSI Drivers existing on a node. If all '
        'drivers in the list are uninstalled, this can become empty.'
    ),
    'VolumeAttachmentSpec.attacher': (
        'attacher indicates the name of the volume driver that MUST handle this request. This'
        ' is the name returned by GetPluginName().'
    ),
    'VolumeAttachmentSpec.nodeName': (
        'nodeName represents the node that the volume should be attached to.'
    ),
    'VolumeAttachmentSource.persistentVolumeName': (
        'persistentVolumeName represents the name of the persistent volume to attach.'
    ),
    'VolumeAttachmentStatus.attached': (
        'attached indicates the volume is successfully attached. This field must only be set '
        'by the entity completing the attach operation, i.e. the external-attacher.'
    ),
}


def is_default_class(sc: Mapping[str, Any]) -> bool:
    """storageutil.IsDefaultAnnotation."""
    ann = get(sc, "metadata", "annotations", default={}) or {}
    return ann.get(DEFAULT_CLASS_ANNOTATION) == "true" or \
        ann.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"


SC_COLUMNS = (
    name_column(),
    column("Provisioner", "string", _DOC["StorageClass.provisioner"]),
    column("ReclaimPolicy", "string", _DOC["StorageClass.reclaimPolicy"]),
    column("VolumeBindingMode", "string", _DOC["StorageClass.volumeBindingMode"]),
    column("AllowVolumeExpansion", "string", _DOC["StorageClass.allowVolumeExpansion"]),
    age_column(),
)


def sc_cells(sc: Mapping[str, Any], now: datetime) -> list[Any]:
    name = get(sc, "metadata", "name", default="")
    if is_default_class(sc):
        name += " (default)"
    expand = sc.get("allowVolumeExpansion")
    return [name, sc.get("provisioner", ""), sc.get("reclaimPolicy") or "Delete",
            sc.get("volumeBindingMode") or "Immediate", bool(expand), age(sc, now)]


CSI_DRIVER_COLUMNS = (
    name_column(),
    column("AttachRequired", "boolean", _DOC["CSIDriverSpec.attachRequired"]),
    column("PodInfoOnMount", "boolean", _DOC["CSIDriverSpec.podInfoOnMount"]),
    column("StorageCapacity", "boolean", _DOC["CSIDriverSpec.storageCapacity"]),
    column("TokenRequests", "string", _DOC["CSIDriverSpec.tokenRequests"]),
    column("RequiresRepublish", "boolean", _DOC["CSIDriverSpec.requiresRepublish"]),
    column("Modes", "string", _DOC["CSIDriverSpec.volumeLifecycleModes"]),
    age_column(),
)


def csi_driver_cells(d: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = d.get("spec") or {}
    attach = spec.get("attachRequired")
    tokens = spec.get("tokenRequests") or []
    token_cell = ",".join(t.get("audience") or "<api-server-audience>" for t in tokens) \
        if tokens else "<unset>"
    modes = ",".join(spec.get("volumeLifecycleModes") or []) or "<none>"
    return [get(d, "metadata", "name", default=""), True if attach is None else bool(attach),
            bool(spec.get("podInfoOnMount")), bool(spec.get("storageCapacity")), token_cell,
            bool(spec.get("requiresRepublish")), modes, age(d, now)]


CSI_NODE_COLUMNS = (
    name_column(),
    column("Drivers", "integer", _DOC["CSINodeSpec.drivers"]),
    age_column(),
)


def csi_node_cells(n: Mapping[str, Any], now: datetime) -> list[Any]:
    return [get(n, "metadata", "name", default=""),
            len(get(n, "spec", "drivers", default=[]) or []), age(n, now)]


VA_COLUMNS = (
    name_column(),
    column("Attacher", "string", _DOC["VolumeAttachmentSpec.attacher"]),
    column("PV", "string", _DOC["VolumeAttachmentSource.persistentVolumeName"]),
    column("Node", "string", _DOC["VolumeAttachmentSpec.nodeName"]),
    column("Attached", "boolean", _DOC["VolumeAttachmentStatus.attached"]),
    age_column(),
)


def va_cells(va: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = va.get("spec") or {}
    return [get(va, "metadata", "name", default=""), spec.get("attacher", ""),
            get(spec, "source", "persistentVolumeName", default="") or "",
            spec.get("nodeName", ""), bool(get(va, "status", "attached")), age(va, now)]


PRINTERS = {
    ("storage.k8s.io", "StorageClass"): Printer(SC_COLUMNS, sc_cells),
    ("storage.k8s.io", "CSIDriver"): Printer(CSI_DRIVER_COLUMNS, csi_driver_cells),
    ("storage.k8s.io", "CSINode"): Printer(CSI_NODE_COLUMNS, csi_node_cells),
    ("storage.k8s.io", "VolumeAttachment"): Printer(VA_COLUMNS, va_cells),
}
