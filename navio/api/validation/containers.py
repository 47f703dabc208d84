"""Containers of a pod spec, validated as core validation's validateContainers (v1.32).

Order per container follows validateContainerCommon (name, image, terminationMessagePolicy,
ports, env, envFrom, volumeMounts, volumeDevices, imagePullPolicy, resources,
securityContext), then duplicate names, lifecycle and probes; host port conflicts come last,
across all regular containers. Feature-gated alpha fields that v1.32 drops (resizePolicy) are
not validated.
"""

from __future__ import annotations

from typing import Any

from navio.api.validation import names
from navio.api.validation.env import validate_env, validate_env_from
from navio.api.validation.field import (Cause, child, duplicate, forbidden, index, invalid,
                                        not_found, not_supported, required)
from navio.api.validation.meta import validate_nonnegative
from navio.api.validation.resources import validate_resource_requirements
from navio.api.validation.security import validate_security_context
from navio.api.validation.volumes import local_descending_path, path_no_backsteps

__all__ = ["validate_containers", "validate_init_containers", "validate_ephemeral_containers"]

_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_PROPAGATIONS = ["Bidirectional", "HostToContainer", "None"]


def _ports(ports: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, port in enumerate(ports or []):
        ip = index(path, i)
        name = port.get("name", "")
        if name:
            msgs = names.is_valid_port_name(name)
            if msgs:
                errs += [invalid(child(ip, "name"), name, m) for m in msgs]
            elif name in seen:
                errs.append(duplicate(child(ip, "name"), name))
            else:
                seen.add(name)
        cp = port.get("containerPort", 0)
        if cp == 0:
            errs.append(required(child(ip, "containerPort")))
        else:
            errs += [invalid(child(ip, "containerPort"), cp,
                             m) for m in names.is_valid_port_num(cp)]
        hp = port.get("hostPort", 0)
        if hp:
            errs += [invalid(child(ip, "hostPort"), hp, m) for m in names.is_valid_port_num(hp)]
        proto = port.get("protocol", "")
        if not proto:
            errs.append(required(child(ip, "protocol")))
        elif proto not in _PROTOCOLS:
            errs.append(not_supported(child(ip, "protocol"), proto, _PROTOCOLS))
    return errs


def _mounts(ctr: dict[str, Any], vols: dict[str, Any], cpath: str) -> list[Cause]:
    errs: list[Cause] = []
    path = child(cpath, "volumeMounts")
    devices = {d.get("name"): d.get("devicePath") for d in ctr.get("volumeDevices") or []}
    mountpoints: set[str] = set()
    privileged = (ctr.get("securityContext") or {}).get("privileged") is True
    for i, m in enumerate(ctr.get("volumeMounts") or []):
        ip = index(path, i)
        name, mount_path = m.get("name", ""), m.get("mountPath", "")
        if not name:
            errs.append(required(child(ip, "name")))
        if name not in vols:
            errs.append(not_found(child(ip, "name"), name))
        if not mount_path:
            errs.append(required(child(ip, "mountPath")))
        if mount_path in mountpoints:
            errs.append(invalid(child(ip, "mountPath"), mount_path, "must be unique"))
        mountpoints.add(mount_path)
        if name in devices:
            errs.append(invalid(child(ip, "name"), name, "must not already exist in volumeDevices"))
        if mount_path in devices.values():
            errs.append(invalid(child(ip, "mountPath"), mount_path,
                                "must not already exist as a path in volumeDevices"))
        if name in vols and vols[name].get("image") is not None:
            for k in ("subPath", "subPathExpr"):
                if m.get(k):
                    errs.append(invalid(child(ip, k), m[k], "not allowed in image volume sources"))
        # Upstream reports these on the list's path, not the item's (ValidateVolumeMounts).
        if m.get("subPath"):
            errs += local_descending_path(m["subPath"], child(path, "subPath"))
        if m.get("subPathExpr"):
            if m.get("subPath"):
                errs.append(invalid(child(ip, "subPathExpr"), m["subPathExpr"],
                                    "subPathExpr and subPath are mutually exclusive"))
            errs += local_descending_path(m["subPathExpr"], child(path, "subPathExpr"))
        prop = m.get("mountPropagation")
        if prop is not None:
            pp = child(path, "mountPropagation")
            if prop not in _PROPAGATIONS:
                errs.append(not_supported(pp, prop, _PROPAGATIONS))
            if prop == "Bidirectional" and not privileged:
                errs.append(forbidden(pp, "Bidirectional mount propagation is available only to "
                                          "privileged containers"))
        rro = m.get("recursiveReadOnly")
        if rro is not None and rro != "Disabled":
            rp = child(path, "recursiveReadOnly")
            if rro in ("Enabled", "IfPossible"):
                if not m.get("readOnly"):
                    errs.append(forbidden(rp, "may only be specified when readOnly is true"))
                if prop not in (None, "None"):
                    errs.append(forbidden(rp, "may only be specified when mountPropagation is None "
                                              "or not specified"))
            else:
                errs.append(not_supported(rp, rro, ["Disabled", "Enabled", "IfPossible"]))
    mounts = {m.get("name"): m.get("mountPath") for m in ctr.get("volumeMounts") or []}
    dpath = child(cpath, "volumeDevices")
    seen_names: set[str] = set()
    seen_paths: set[str] = set()
    for i, d in enumerate(ctr.get("volumeDevices") or []):
        ip = index(dpath, i)
        name, dev = d.get("name", ""), d.get("devicePath", "")
        vol = vols.get(name)
        if not name:
            errs.append(required(child(ip, "name")))
        if name in seen_names:
            errs.append(invalid(child(ip, "name"), name, "must be unique"))
        block_ok = vol is None or vol.get("persistentVolumeClaim") is not None or vol.get(
            "ephemeral") is not None
        if not block_ok:
            errs.append(invalid(child(ip, "name"), name, "can only use volume source type of "
                                                        "PersistentVolumeClaim or Ephemeral for "
                                                        "block mode"))
        if vol is None:
            errs.append(not_found(child(ip, "name"), name))
        if not dev:
            errs.append(required(child(ip, "devicePath")))
        if dev in seen_paths:
            errs.append(invalid(child(ip, "devicePath"), dev, "must be unique"))
        if dev and path_no_backsteps(dev, ""):
            errs.append(invalid(child(ip, "devicePath"), dev, "can not contain backsteps ('..')"))
        else:
            seen_paths.add(dev)
        if name in mounts:
            errs.append(invalid(child(ip, "name"), name, "must not already exist in volumeMounts"))
        if dev in mounts.values():
            errs.append(invalid(child(ip, "devicePath"), dev,
                                "must not already exist as a path in volumeMounts"))
        if name:
            seen_names.add(name)
    return errs


def _port_num_or_name(port: Any, path: str) -> list[Cause]:
    if isinstance(port, int) and not isinstance(port, bool):
        return [invalid(path, port, m) for m in names.is_valid_port_num(port)]
    if isinstance(port, str):
        return [invalid(path, port, m) for m in names.is_valid_port_name(port)]
    return [invalid(path, 0, m) for m in names.is_valid_port_num(0)]


def _handler(h: dict[str, Any], grace: Any, path: str, kinds: tuple[str, ...]) -> list[Cause]:
    errs: list[Cause] = []
    n = 0
    for k in ("exec", "httpGet", "tcpSocket", "grpc", "sleep"):
        if k not in kinds or h.get(k) is None:
            continue
        if n:
            errs.append(forbidden(child(path, k), "may not specify more than 1 handler type"))
            continue
        n += 1
        v, p = h[k], child(path, k)
        if k == "exec":
            if not v.get("command"):
                errs.append(required(child(p, "command")))
        elif k == "httpGet":
            if not v.get("path"):
                errs.append(required(child(p, "path")))
            errs += _port_num_or_name(v.get("port"), child(p, "port"))
            scheme = v.get("scheme", "")
            if scheme not in ("HTTP", "HTTPS"):
                errs.append(not_supported(child(p, "scheme"), scheme, ["HTTP", "HTTPS"]))
            for hd in v.get("httpHeaders") or []:
                errs += [invalid(child(p, "httpHeaders"), hd.get("name", ""), m)
                         for m in names.is_http_header_name(hd.get("name", ""))]
        elif k == "tcpSocket":
            errs += _port_num_or_name(v.get("port"), child(p, "port"))
        elif k == "grpc":
            errs += _port_num_or_name(v.get("port", 0), child(p, "port"))
        elif k == "sleep":
            s = v.get("seconds", 0)
            if isinstance(grace, int) and (s <= 0 or s > grace):
                errs.append(invalid(p, s, "must be greater than 0 and less than "
                                          f"terminationGracePeriodSeconds ({grace}). Enable "
                                          "AllowPodLifecycleSleepActionZeroValue feature gate for "
                                          "zero sleep."))
    if n == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


_PROBE_KINDS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_KINDS = ("exec", "httpGet", "tcpSocket", "sleep")


def _probe(probe: Any, grace: Any, path: str, kind: str) -> list[Cause]:
    if probe is None:
        return []
    errs = _handler(probe, grace, path, _PROBE_KINDS)
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
              "failureThreshold"):
        errs += validate_nonnegative(probe.get(f, 0), child(path, f))
    tgp = probe.get("terminationGracePeriodSeconds")
    if tgp is not None and tgp <= 0:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), tgp,
                            "must be greater than 0"))
    if kind in ("liveness", "startup") and probe.get("successThreshold", 0) != 1:
        errs.append(invalid(child(path, "successThreshold"), probe.get("successThreshold", 0),
                            "must be 1"))
    if kind == "readiness" and tgp is not None:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), tgp,
                            "must not be set for readinessProbes"))
    return errs


def _lifecycle(lc: dict[str, Any], grace: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for k in ("postStart", "preStop"):
        if lc.get(k) is not None:
            errs += _handler(lc[k], grace, child(path, k), _LIFECYCLE_KINDS)
    return errs


def _common(ctr: dict[str, Any], vols: dict[str, Any], claims: set[str], path: str,
            host_users: bool) -> list[Cause]:
    errs: list[Cause] = []
    name = ctr.get("name", "")
    if not name:
        errs.append(required(child(path, "name")))
    else:
        errs += [invalid(child(path, "name"), name, m) for m in names.is_dns1123_label(name)]
    if not ctr.get("image"):
        errs.append(required(child(path, "image")))
    tmp = ctr.get("terminationMessagePolicy", "")
    if tmp == "":
        errs.append(required(child(path, "terminationMessagePolicy")))
    elif tmp not in ("File", "FallbackToLogsOnError"):
        errs.append(not_supported(child(path, "terminationMessagePolicy"), tmp,
                                  ["File", "FallbackToLogsOnError"]))
    errs += _ports(ctr.get("ports"), child(path, "ports"))
    errs += validate_env(ctr.get("env"), child(path, "env"))
    errs += validate_env_from(ctr.get("envFrom"), child(path, "envFrom"))
    errs += _mounts(ctr, vols, path)
    pull = ctr.get("imagePullPolicy", "")
    if pull == "":
        errs.append(required(child(path, "imagePullPolicy")))
    elif pull not in _PULL_POLICIES:
        errs.append(not_supported(child(path, "imagePullPolicy"), pull, _PULL_POLICIES))
    errs += validate_resource_requirements(ctr.get("resources") or {}, child(path, "resources"),
                                           claims, container=True)
    errs += validate_security_context(ctr.get("securityContext"), child(path, "securityContext"),
                              host_users)
    return errs


def _host_port_conflicts(containers: list[dict[str, Any]], path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for ci, ctr in enumerate(containers):
        for pi, port in enumerate(ctr.get("ports") or []):
            hp = port.get("hostPort", 0)
            if not hp:
                continue
            key = f"{port.get('protocol', '')}/{port.get('hostIP', '')}/{hp}"
            if key in seen:
                errs.append(duplicate(child(index(child(index(path, ci), "ports"), pi), "hostPort"),
                                      key))
            seen.add(key)
    return errs


def validate_containers(containers: Any, vols: dict[str, Any], claims: set[str], grace: Any,
                        path: str, host_users: bool = True) -> list[Cause]:
    if not containers:
        return [required(path)]
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, ctr in enumerate(containers):
        p = index(path, i)
        errs += _common(ctr, vols, claims, p, host_users)
        if ctr.get("name", "") in seen:
            errs.append(duplicate(child(p, "name"), ctr.get("name", "")))
        seen.add(ctr.get("name", ""))
        if ctr.get("lifecycle") is not None:
            errs += _lifecycle(ctr["lifecycle"], grace, child(p, "lifecycle"))
        errs += _probe(ctr.get("livenessProbe"), grace, child(p, "livenessProbe"), "liveness")
        errs += _probe(ctr.get("readinessProbe"), grace, child(p, "readinessProbe"), "readiness")
        errs += _probe(ctr.get("startupProbe"), grace, child(p, "startupProbe"), "startup")
        if ctr.get("restartPolicy") is not None:
            errs.append(forbidden(child(p, "restartPolicy"),
                                  "may not be set for non-init containers"))
    return errs + _host_port_conflicts(containers, path)


def validate_init_containers(inits: Any, regular: Any, vols: dict[str, Any], claims: set[str],
                             grace: Any, path: str, host_users: bool = True) -> list[Cause]:
    errs: list[Cause] = []
    seen = {c.get("name", "") for c in regular or []}
    for i, ctr in enumerate(inits or []):
        p = index(path, i)
        errs += _common(ctr, vols, claims, p, host_users)
        always = False
        rp = ctr.get("restartPolicy")
        if rp is not None:
            if rp != "Always":
                errs.append(not_supported(child(p, "restartPolicy"), rp, ["Always"]))
            always = rp == "Always"
        name = ctr.get("name", "")
        if name in seen:
            errs.append(duplicate(child(p, "name"), name))
        elif name:
            seen.add(name)
        errs += _host_port_conflicts([ctr], path)
        if always:
            if ctr.get("lifecycle") is not None:
                errs += _lifecycle(ctr["lifecycle"], grace, child(p, "lifecycle"))
            errs += _probe(ctr.get("livenessProbe"), grace, child(p, "livenessProbe"), "liveness")
            errs += _probe(ctr.get("readinessProbe"), grace, child(p, "readinessProbe"),
                           "readiness")
            errs += _probe(ctr.get("startupProbe"), grace, child(p, "startupProbe"), "startup")
        else:
            for k in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(k) is not None:
                    errs.append(forbidden(child(p, k), "may not be set for init containers without "
                                                       "restartPolicy=Always"))
    return errs


_EPHEMERAL_FORBIDDEN = ("ports", "resources", "livenessProbe", "readinessProbe", "startupProbe",
                        "lifecycle", "resizePolicy", "restartPolicy")


def validate_ephemeral_containers(ephemeral: Any, containers: Any, inits: Any,
                                  vols: dict[str, Any], claims: set[str], path: str) -> list[Cause]:
    errs: list[Cause] = []
    others = {c.get("name", "") for c in (containers or []) + (inits or [])}
    seen = set(others)
    for i, ec in enumerate(ephemeral or []):
        p = index(path, i)
        errs += _common(ec, vols, claims, p, True)
        image = ec.get("image", "")
        if len(image) != len(image.strip()):
            errs.append(invalid(child(p, "image"), image, "must not have leading or trailing "
                                                          "whitespace"))
        if ec.get("name", "") in seen:
            errs.append(duplicate(child(p, "name"), ec.get("name", "")))
        seen.add(ec.get("name", ""))
        target = ec.get("targetContainerName", "")
        if target and target not in others:
            errs.append(not_found(child(p, "targetContainerName"), target))
        for k in _EPHEMERAL_FORBIDDEN:
            if ec.get(k) not in (None, {}, []):
                errs.append(forbidden(child(p, k), "cannot be set for an Ephemeral Container"))
        for j, vm in enumerate(ec.get("volumeMounts") or []):
            for k in ("subPath", "subPathExpr"):
                if vm.get(k):
                    errs.append(forbidden(child(index(child(p, "volumeMounts"), j), k),
                                          "cannot be set for an Ephemeral Container"))
    return errs

