"""Defaults of a PodSpec, its containers and volumes (pkg/apis/core/v1/defaults.go, v1.32).

`default_pod_spec` is what every pod template gets (SetDefaults_PodSpec, SetDefaults_Container,
probes, volumes, ...); `default_pod` adds the Pod-only rules of SetDefaults_Pod (requests copied
from limits, enableServiceLinks, host ports under hostNetwork), which deliberately do not
apply to templates. Resource quantities are rounded up to milli precision
(SetDefaults_ResourceList) and rewritten in the canonical form kube-apiserver serializes.
Each function only fills what is missing, so running it twice changes nothing.
"""

from __future__ import annotations

import re
from decimal import ROUND_UP
from typing import Any

from navio.api.quantity import Quantity, QuantityError
from navio.api.validation.resources import parse_json_quantity

__all__ = ["default_pod_spec", "default_pod", "default_resource_list", "default_pvc_spec",
           "default_pod_template", "image_tag"]

# github.com/distribution/reference grammar, as parsers.ParseImageName uses it.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])"
_NAME = rf"(?:{_HOST}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
_REFERENCE = re.compile(
    rf"({_NAME})(?::([\w][\w.-]{{0,127}}))?"
    r"(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?")


def image_tag(image: str) -> str:
    """The tag ParseImageName finds: "latest" when neither tag nor digest is given, "" when
    the reference does not parse (SetDefaults_Container ignores that error)."""
    m = _REFERENCE.fullmatch(image)
    if not m or len(m.group(1)) > 255 or re.fullmatch(r"[a-f0-9]{64}", image):
        return ""
    tag, digest = m.group(2), m.group(3)
    if not tag and not digest:
        return "latest"
    return tag or ""


def _round_up_milli(q: Quantity) -> Quantity:
    """Quantity.RoundUp(-3): to milli precision, away from zero (the cached text is dropped
    only when the value changes)."""
    milli = q.amount.scaleb(3)
    if milli == milli.to_integral_value():
        return q
    return Quantity(milli.to_integral_value(rounding=ROUND_UP).scaleb(-3), q.format, "")


def default_resource_list(rl: Any) -> None:
    """SetDefaults_ResourceList: round up to milli, then the string kube-apiserver writes."""
    if not isinstance(rl, dict):
        return
    for k, v in rl.items():
        try:
            rl[k] = str(_round_up_milli(parse_json_quantity(v)))
        except QuantityError:
            pass


def _http_get(h: Any) -> None:
    if isinstance(h, dict) and isinstance(h.get("httpGet"), dict):
        g = h["httpGet"]
        if not g.get("path"):
            g["path"] = "/"
        if not g.get("scheme"):
            g["scheme"] = "HTTP"


def _probe(p: Any) -> None:
    if not isinstance(p, dict):
        return
    for f, v in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                 ("failureThreshold", 3)):
        if not p.get(f):
            p[f] = v
    _http_get(p)
    if isinstance(p.get("grpc"), dict) and p["grpc"].get("service") is None:
        p["grpc"]["service"] = ""          # `+default=""` on GRPCAction.Service


def _field_ref(ref: Any) -> None:
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"           # SetDefaults_ObjectFieldSelector


def _container(c: dict[str, Any]) -> None:
    if not c.get("imagePullPolicy"):
        latest = image_tag(c.get("image", "")) == "latest"
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    for port in c.get("ports") or []:
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for ev in c.get("env") or []:
        if isinstance(ev, dict) and isinstance(ev.get("valueFrom"), dict):
            _field_ref(ev["valueFrom"].get("fieldRef"))
    res = c.get("resources")
    if isinstance(res, dict):
        default_resource_list(res.get("limits"))
        default_resource_list(res.get("requests"))
    for f in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(f))
    lc = c.get("lifecycle")
    if isinstance(lc, dict):
        _http_get(lc.get("postStart"))
        _http_get(lc.get("preStop"))


_VOLUME_SOURCES = ("hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore",
                   "gitRepo", "secret", "nfs", "iscsi", "glusterfs", "persistentVolumeClaim",
                   "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
                   "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
                   "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
                   "storageos", "csi", "ephemeral", "image")


def default_pvc_spec(spec: Any) -> None:
    """SetDefaults_PersistentVolumeClaimSpec (and its ResourceLists)."""
    if not isinstance(spec, dict):
        return
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    res = spec.get("resources")
    if isinstance(res, dict):
        default_resource_list(res.get("limits"))
        default_resource_list(res.get("requests"))


def _volume(v: dict[str, Any]) -> None:
    if all(v.get(s) is None for s in _VOLUME_SOURCES):
        v["emptyDir"] = {}                 # SetDefaults_Volume
    for s in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(v.get(s), dict) and v[s].get("defaultMode") is None:
            v[s]["defaultMode"] = 420
    if isinstance(v.get("hostPath"), dict) and v["hostPath"].get("type") is None:
        v["hostPath"]["type"] = ""
    for item in (v.get("downwardAPI") or {}).get("items") or []:
        _field_ref(item.get("fieldRef"))
    for src in (v.get("projected") or {}).get("sources") or []:
        for item in (src.get("downwardAPI") or {}).get("items") or []:
            _field_ref(item.get("fieldRef"))
        tok = src.get("serviceAccountToken")
        if isinstance(tok, dict) and tok.get("expirationSeconds") is None:
            tok["expirationSeconds"] = 3600
    if isinstance(v.get("iscsi"), dict) and not v["iscsi"].get("iscsiInterface"):
        v["iscsi"]["iscsiInterface"] = "default"
    if isinstance(v.get("rbd"), dict):
        for f, d in (("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring")):
            if not v["rbd"].get(f):
                v["rbd"][f] = d
    if isinstance(v.get("azureDisk"), dict):
        for f, d in (("cachingMode", "ReadWrite"), ("kind", "Shared"), ("fsType", "ext4"),
                     ("readOnly", False)):
            if v["azureDisk"].get(f) is None:
                v["azureDisk"][f] = d
    if isinstance(v.get("scaleIO"), dict):
        for f, d in (("storageMode", "ThinProvisioned"), ("fsType", "xfs")):
            if not v["scaleIO"].get(f):
                v["scaleIO"][f] = d
    tmpl = (v.get("ephemeral") or {}).get("volumeClaimTemplate")
    if isinstance(tmpl, dict):
        default_pvc_spec(tmpl.get("spec"))


def default_pod_spec(spec: Any) -> None:
    """SetDefaults_PodSpec plus everything nested (containers, volumes, overhead)."""
    if not isinstance(spec, dict):
        return
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            _volume(v)
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(kind) or []:
            if isinstance(c, dict):
                _container(c)
    default_resource_list(spec.get("overhead"))


def default_pod_template(tmpl: Any) -> None:
    if isinstance(tmpl, dict):
        default_pod_spec(tmpl.get("spec"))


def default_pod(pod: dict[str, Any]) -> None:
    """SetDefaults_Pod then the PodSpec defaults."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    for kind in ("containers", "initContainers"):
        for c in spec.get(kind) or []:
            res = c.get("resources") if isinstance(c, dict) else None
            if not isinstance(res, dict) or not isinstance(res.get("limits"), dict):
                continue
            requests = res.setdefault("requests", {}) if res.get("requests") is not None else {}
            for k, v in res["limits"].items():
                requests.setdefault(k, v)
            if requests:
                res["requests"] = requests
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for kind in ("containers", "initContainers"):
            for c in spec.get(kind) or []:
                for port in (c.get("ports") or []) if isinstance(c, dict) else []:
                    if isinstance(port, dict) and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort", 0)
    default_pod_spec(spec)
