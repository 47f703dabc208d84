"""Pod volumes, validated as core validation's ValidateVolumes / validateVolumeSource (v1.32).

Guarantees: the first volume type present (in upstream's fixed order) is validated and every
further one is `Forbidden: may not specify more than 1 volume type` on its own path (including
upstream's misspelt `downwarAPI` path); volumes with errors are left out of the returned name
map, so mounts that name them are `Not found` as upstream reports. Rarely used in-tree cloud
sources are counted but only their required fields are checked.
"""

from __future__ import annotations

import posixpath
from typing import Any

from navio.api.errors import go_quote
from navio.api.validation import names
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid,
                                        not_supported, required, too_long)
from navio.api.validation.meta import validate_label_selector, validate_template_object_meta
from navio.api.quantity import QuantityError
from navio.api.validation.resources import parse_json_quantity

__all__ = ["validate_volumes", "validate_pvc_spec", "local_descending_path",
           "local_non_reserved_path", "path_no_backsteps", "FILE_MODE_ERROR"]

FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"

# (JSON name, name used on the Forbidden path) in validateVolumeSource's order.
_SOURCES = [
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"),
    ("flocker", "flocker"), ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"),
    ("cinder", "cinder"), ("cephfs", "cephFS"), ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"), ("storageos", "storageos"), ("projected", "projected"),
    ("scaleIO", "scaleIO"), ("csi", "csi"), ("ephemeral", "ephemeral"), ("image", "image"),
]
# Required string fields of the sources navio does not run, as upstream checks them.
_REQUIRED = {
    "gcePersistentDisk": ("pdName",), "awsElasticBlockStore": ("volumeID",),
    "iscsi": ("targetPortal", "iqn"), "glusterfs": ("endpoints", "path"),
    "rbd": ("monitors", "image"),
    "cinder": ("volumeID",), "cephfs": ("monitors",), "quobyte": ("registry", "volume"),
    "flexVolume": ("driver",), "azureFile": ("secretName", "shareName"),
    "vsphereVolume": ("volumePath",), "photonPersistentDisk": ("pdID",),
    "portworxVolume": ("volumeID",), "azureDisk": ("diskName", "diskURI"),
    "scaleIO": ("gateway", "system", "volumeName"), "storageos": ("volumeName",),
}
_HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                    "FileOrCreate", "Socket"]
_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
_VOLUME_MODES = ["Block", "Filesystem"]
_VOLUME_DOWNWARD_PATHS = {"metadata.name", "metadata.namespace", "metadata.labels",
                          "metadata.annotations", "metadata.uid"}


def path_no_backsteps(target: str, path: str) -> list[Cause]:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def local_descending_path(target: str, path: str) -> list[Cause]:
    errs = []
    if posixpath.isabs(target):
        errs.append(invalid(path, target, "must be a relative path"))
    return errs + path_no_backsteps(target, path)


def local_non_reserved_path(target: str, path: str) -> list[Cause]:
    errs = local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def _mode(v: Any, path: str) -> list[Cause]:
    if isinstance(v, int) and not (0 <= v <= 0o777):
        return [invalid(path, v, FILE_MODE_ERROR)]
    return []


def _key_to_path(kp: dict[str, Any], path: str) -> list[Cause]:
    errs = []
    if not kp.get("key"):
        errs.append(required(child(path, "key")))
    if not kp.get("path"):
        errs.append(required(child(path, "path")))
    errs += local_non_reserved_path(kp.get("path", ""), child(path, "path"))
    return errs + _mode(kp.get("mode"), child(path, "mode"))


def _downward_file(f: dict[str, Any], path: str) -> list[Cause]:
    from navio.api.validation.env import object_field_selector, resource_field_selector
    errs = []
    if not f.get("path"):
        errs.append(required(child(path, "path")))
    errs += local_non_reserved_path(f.get("path", ""), child(path, "path"))
    if f.get("fieldRef") is not None:
        errs += object_field_selector(f["fieldRef"], _VOLUME_DOWNWARD_PATHS,
                                      child(path, "fieldRef"))
        if f.get("resourceFieldRef") is not None:
            errs.append(invalid(path, "resource", "fieldRef and resourceFieldRef can not be "
                                                  "specified simultaneously"))
    elif f.get("resourceFieldRef") is not None:
        errs += resource_field_selector(f["resourceFieldRef"], child(path, "resourceFieldRef"),
                                        True)
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    return errs + _mode(f.get("mode"), child(path, "mode"))


def _projected(src: dict[str, Any], path: str) -> list[Cause]:
    errs = _mode(src.get("defaultMode"), child(path, "defaultMode"))
    seen: set[str] = set()
    for i, s in enumerate(src.get("sources") or []):
        sp = index(child(path, "sources"), i)
        count = 0
        for kind in ("secret", "configMap"):
            if s.get(kind) is None:
                continue
            count += 1
            p = child(sp, kind)
            if not s[kind].get("name"):
                errs.append(required(child(p, "name")))
            for j, kp in enumerate(s[kind].get("items") or []):
                errs += _key_to_path(kp, index(child(p, "items"), j))
                if kp.get("path"):
                    if kp["path"] in seen:
                        errs.append(invalid(path, s[kind].get("name", ""),
                                            "conflicting duplicate paths"))
                    seen.add(kp["path"])
        if s.get("downwardAPI") is not None:
            count += 1
            for f in s["downwardAPI"].get("items") or []:
                errs += _downward_file(f, child(sp, "downwardAPI"))
                if f.get("path"):
                    if f["path"] in seen:
                        errs.append(invalid(path, f["path"], "conflicting duplicate paths"))
                    seen.add(f["path"])
        if s.get("serviceAccountToken") is not None:
            count += 1
            t, tp = s["serviceAccountToken"], child(sp, "serviceAccountToken")
            exp = t.get("expirationSeconds", 0)
            if exp < 600:
                errs.append(invalid(child(tp, "expirationSeconds"), exp,
                                    "may not specify a duration less than 10 minutes"))
            if exp > 1 << 32:
                errs.append(invalid(child(tp, "expirationSeconds"), exp,
                                    "may not specify a duration larger than 2^32 seconds"))
            if not t.get("path"):
                errs.append(required(child(path, "path")))
            else:
                errs += local_non_reserved_path(t["path"], child(path, "path"))
        if s.get("clusterTrustBundle") is not None:
            count += 1
        if count > 1:
            errs.append(forbidden(sp, "may not specify more than 1 volume type per source"))
    return errs


def _source(name: str, src: dict[str, Any], path: str, vol_name: str,
            pod_name: str | None) -> list[Cause]:
    errs: list[Cause] = []
    if name == "emptyDir":
        limit = src.get("sizeLimit")
        if limit is not None:
            try:
                negative = parse_json_quantity(limit).amount < 0
            except QuantityError:
                negative = True
            if negative:
                errs.append(forbidden(child(path, "sizeLimit"),
                                      "SizeLimit field must be a valid resource quantity"))
    elif name == "hostPath":
        if not src.get("path"):
            return [required(child(path, "path"))]
        errs += path_no_backsteps(src["path"], child(path, "path"))
        if "type" in src and src["type"] is not None and src["type"] not in _HOST_PATH_TYPES:
            errs.append(not_supported(child(path, "type"), src["type"], _HOST_PATH_TYPES))
    elif name == "gitRepo":
        if not src.get("repository"):
            errs.append(required(child(path, "repository")))
        errs += local_descending_path(src.get("directory", ""), child(path, "directory"))
    elif name in ("secret", "configMap"):
        key = "secretName" if name == "secret" else "name"
        if not src.get(key):
            errs.append(required(child(path, key)))
        errs += _mode(src.get("defaultMode"), child(path, "defaultMode"))
        for i, kp in enumerate(src.get("items") or []):
            errs += _key_to_path(kp, index(child(path, "items"), i))
    elif name == "nfs":
        if not src.get("server"):
            errs.append(required(child(path, "server")))
        if not src.get("path"):
            errs.append(required(child(path, "path")))
        if not posixpath.isabs(src.get("path", "")):
            errs.append(invalid(child(path, "path"), src.get("path", ""),
                                "must be an absolute path"))
    elif name == "persistentVolumeClaim":
        if not src.get("claimName"):
            errs.append(required(child(path, "claimName")))
    elif name == "downwardAPI":
        errs += _mode(src.get("defaultMode"), child(path, "defaultMode"))
        for f in src.get("items") or []:
            errs += _downward_file(f, path)
    elif name == "projected":
        errs += _projected(src, path)
    elif name == "csi":
        driver = src.get("driver", "")
        if not driver:
            errs.append(required(child(path, "driver")))
        if len(driver) > 63:
            errs.append(too_long(child(path, "driver"), 63))
        errs += [invalid(child(path, "driver"), driver, m)
                 for m in names.is_dns1123_subdomain(driver.lower())]
    elif name == "ephemeral":
        tmpl = src.get("volumeClaimTemplate")
        if tmpl is None:
            errs.append(required(child(path, "volumeClaimTemplate")))
        else:
            tp = child(path, "volumeClaimTemplate")
            errs += validate_template_object_meta(tmpl.get("metadata"), child(tp, "metadata"))
            errs += validate_pvc_spec(tmpl.get("spec") or {}, child(tp, "spec"))
            if pod_name and vol_name:
                pvc = f"{pod_name}-{vol_name}"
                errs += [invalid(child(path, "name"), vol_name, f"PVC name {go_quote(pvc)}: {m}")
                         for m in names.is_dns1123_subdomain(pvc)]
    elif name in _REQUIRED:
        errs += [required(child(path, f)) for f in _REQUIRED[name] if not src.get(f)]
    return errs


def validate_volumes(volumes: Any, path: str, pod_name: str | None = None
                     ) -> tuple[dict[str, dict[str, Any]], list[Cause]]:
    """Returns (valid volumes by name, errors)."""
    errs: list[Cause] = []
    vols: dict[str, dict[str, Any]] = {}
    created_pvcs = {f"{pod_name}-{v.get('name', '')}" for v in volumes or []
                    if pod_name and v.get("ephemeral") is not None}
    for i, vol in enumerate(volumes or []):
        ip = index(path, i)
        name = vol.get("name", "")
        el: list[Cause] = []
        count = 0
        for key, fpath in _SOURCES:
            src = vol.get(key)
            if src is None:
                continue
            if count:
                el.append(forbidden(child(ip, fpath), "may not specify more than 1 volume type"))
                continue
            count += 1
            el += _source(key, src, child(ip, key), name, pod_name)
        if count == 0:
            el.append(required(ip, "must specify a volume type"))
        if not name:
            el.append(required(child(ip, "name")))
        else:
            el += [invalid(child(ip, "name"), name, m) for m in names.is_dns1123_label(name)]
        if name in vols:
            el.append(duplicate(child(ip, "name"), name))
        if not el:
            vols[name] = vol
        else:
            errs += el
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if claim is not None and claim in created_pvcs:
            errs.append(invalid(child(child(ip, "persistentVolumeClaim"), "claimName"), claim,
                                "must not reference a PVC that gets created for an ephemeral "
                                "volume"))
    return vols, errs


def validate_pvc_spec(spec: dict[str, Any], path: str) -> list[Cause]:
    """ValidatePersistentVolumeClaimSpec."""
    errs: list[Cause] = []
    modes = spec.get("accessModes") or []
    if not modes:
        errs.append(required(child(path, "accessModes"), "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        errs += validate_label_selector(spec["selector"], child(path, "selector"))
    rwop = other = False
    for m in modes:
        if m not in _ACCESS_MODES:
            errs.append(not_supported(child(path, "accessModes"), m, _ACCESS_MODES))
        if m == "ReadWriteOncePod":
            rwop = True
        elif m in _ACCESS_MODES:
            other = True
    if rwop and other:
        errs.append(forbidden(child(path, "accessModes"),
                              "may not use ReadWriteOncePod with other access modes"))
    storage_path = f"{child(path, 'resources')}[storage]"
    requests = (spec.get("resources") or {}).get("requests") or {}
    if "storage" not in requests:
        errs.append(required(storage_path))
    else:
        try:
            q = parse_json_quantity(requests["storage"])
            if q.amount <= 0:
                errs.append(invalid(storage_path, str(q), "must be greater than zero"))
        except QuantityError as e:
            errs.append(invalid(storage_path, requests["storage"], str(e)))
    sc = spec.get("storageClassName")
    if sc:
        errs += [invalid(child(path, "storageClassName"), sc, m)
                 for m in names.is_dns1123_subdomain(sc)]
    vm = spec.get("volumeMode")
    if vm is not None and vm not in _VOLUME_MODES:
        errs.append(not_supported(child(path, "volumeMode"), vm, _VOLUME_MODES))
    for key in ("dataSource", "dataSourceRef"):
        ds = spec.get(key)
        if ds is None:
            continue
        dp = child(path, key)
        if not ds.get("name"):
            errs.append(required(child(dp, "name")))
        if not ds.get("kind"):
            errs.append(required(child(dp, "kind")))
        group = ds.get("apiGroup") or ""
        if not group and ds.get("kind") != "PersistentVolumeClaim":
            errs.append(invalid(dp, ds.get("kind", ""),
                                "must be 'PersistentVolumeClaim' when referencing the default "
                                "apiGroup"))
        if group:
            errs += [invalid(child(dp, "apiGroup"), group, m)
                     for m in names.is_dns1123_subdomain(group)]
    return errs
