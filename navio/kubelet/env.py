"""A container's environment and argv, resolved as the kubelet's makeEnvironmentVariables does.

Why: env (`value`, `valueFrom` configMapKeyRef / secretKeyRef / fieldRef / resourceFieldRef),
`envFrom` (configMapRef / secretRef with prefix) and `$(VAR)` expansion in values, command
and args must give the same result as on any Kubernetes node, and failures must carry the
kubelet's messages, since users read them as CreateContainerConfigError in `kubectl get pod`.

Guarantees:
- Order of precedence as upstream: envFrom sources in order, then env entries in order (a
  later definition wins), then the service link variables for names not yet defined.
- A missing ConfigMap/Secret or key fails with the kubelet's message (`configmap "x" not
  found`, `couldn't find key k in ConfigMap ns/x`) unless the reference is optional.
- envFrom keys that are not valid variable names are skipped and reported (event
  InvalidEnvironmentVariableNames); values are never logged.
- `expand` is the forked golang expansion: `$(VAR)` of an unknown VAR stays as written,
  `$$` escapes `$`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Awaitable, Callable, Mapping, Sequence

from navio.kubelet.fieldref import FieldRefError, pod_field, resource_field

__all__ = ["EnvError", "Lookup", "expand", "container_env", "service_env",
           "CREATE_CONTAINER_CONFIG_ERROR"]

CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"

# (kind, namespace, name) -> the object, or None when it does not exist
Lookup = Callable[[str, str, str], Awaitable[dict[str, Any] | None]]


class EnvError(Exception):
    """The environment cannot be built; the message is what the kubelet would say."""


def expand(text: str, *mappings: Mapping[str, str]) -> str:
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1:]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close < 0:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    for mapping in mappings:
                        if name in mapping:
                            out.append(mapping[name])
                            break
                    else:
                        out.append(f"$({name})")
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def _env_name(name: str) -> str:
    return name.replace("-", "_").upper()


def service_env(services: Sequence[Mapping[str, Any]], namespace: str,
                enable_service_links: bool) -> dict[str, str]:
    """The Docker-link style variables (kubelet getServiceEnvVarMap + envvars.FromServices):
    services of the pod's namespace when service links are on, and always `kubernetes` from
    the default namespace."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or not spec.get("ports"):
            continue
        name = str(meta.get("name"))
        if meta.get("namespace") == "default" and name == "kubernetes":
            chosen.setdefault(name, svc)
        elif meta.get("namespace") == namespace and enable_service_links:
            chosen[name] = svc
    env: dict[str, str] = {}
    for name, svc in sorted(chosen.items()):
        spec = svc["spec"]
        ip, ports = spec["clusterIP"], spec["ports"]
        prefix = _env_name(name)
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p.get("port"))
        for i, p in enumerate(ports):
            proto = str(p.get("protocol") or "TCP")
            host_port = f"[{ip}]:{p.get('port')}" if ":" in ip else f"{ip}:{p.get('port')}"
            url = f"{proto.lower()}://{host_port}"
            if i == 0:
                env[f"{prefix}_PORT"] = url
            pp = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            env[pp] = url
            env[pp + "_PROTO"] = proto.lower()
            env[pp + "_PORT"] = str(p.get("port"))
            env[pp + "_ADDR"] = ip
    return env


def _valid_name(name: str) -> bool:
    # RelaxedEnvironmentVariableValidation (beta, on in 1.32): printable ASCII except '='.
    return bool(name) and all(32 <= ord(c) <= 126 and c != "=" for c in name)


def _data(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    if kind == "configmap":
        return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    out: dict[str, str] = {}
    for k, v in (obj.get("data") or {}).items():
        try:
            out[str(k)] = base64.b64decode(v).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            out[str(k)] = ""
    for k, v in (obj.get("stringData") or {}).items():
        out[str(k)] = str(v)
    return out


async def _source(lookup: Lookup, kind: str, namespace: str, name: str,
                  optional: bool) -> dict[str, str] | None:
    obj = await lookup(kind, namespace, name)
    if obj is None:
        if optional:
            return None
        raise EnvError(f'{kind} "{name}" not found')
    return _data(kind, obj)


async def container_env(pod: Mapping[str, Any], container: Mapping[str, Any], *,
                        lookup: Lookup, services_env: Mapping[str, str],
                        host_ips: Sequence[str], pod_ips: Sequence[str],
                        allocatable: Mapping[str, str]
                        ) -> tuple[list[tuple[str, str]], list[str]]:
    """(the final env in declaration order, warning messages to record as events)."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    env: dict[str, str] = {}
    warnings: list[str] = []
    for source in container.get("envFrom") or ():
        prefix = str(source.get("prefix") or "")
        for kind, field, title in (("configmap", "configMapRef", "configMap"),
                                   ("secret", "secretRef", "secret")):
            ref = source.get(field)
            if not ref:
                continue
            data = await _source(lookup, kind, namespace, str(ref.get("name") or ""),
                                 bool(ref.get("optional")))
            invalid = []
            for key, val in (data or {}).items():
                name = prefix + key if prefix else key
                if not _valid_name(name):
                    invalid.append(name)
                    continue
                env[name] = val
            if invalid:
                warnings.append(f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom "
                                f"{title} {namespace}/{ref.get('name')} were skipped since "
                                "they are considered invalid environment variable names.")
    for var in container.get("env") or ():
        name = str(var.get("name") or "")
        if "value" in var or not var.get("valueFrom"):
            env[name] = expand(str(var.get("value") or ""), env, services_env)
            continue
        value_from = var["valueFrom"]
        resolved = await _value_from(pod, container, value_from, lookup=lookup,
                                     namespace=namespace, host_ips=host_ips,
                                     pod_ips=pod_ips, allocatable=allocatable)
        if resolved is not None:
            env[name] = resolved
    for name, val in services_env.items():
        env.setdefault(name, val)
    return list(env.items()), warnings


async def _value_from(pod: Mapping[str, Any], container: Mapping[str, Any],
                      value_from: Mapping[str, Any], *, lookup: Lookup, namespace: str,
                      host_ips: Sequence[str], pod_ips: Sequence[str],
                      allocatable: Mapping[str, str]) -> str | None:
    try:
        if value_from.get("fieldRef"):
            return pod_field(pod, str(value_from["fieldRef"].get("fieldPath")),
                             host_ips=host_ips, pod_ips=pod_ips)
        if value_from.get("resourceFieldRef"):
            ref = value_from["resourceFieldRef"]
            return resource_field(pod, str(ref.get("containerName") or container.get("name")),
                                  str(ref.get("resource")), ref.get("divisor"), allocatable)
    except FieldRefError as exc:
        raise EnvError(str(exc)) from None
    for kind, field, title in (("configmap", "configMapKeyRef", "ConfigMap"),
                               ("secret", "secretKeyRef", "Secret")):
        ref = value_from.get(field)
        if not ref:
            continue
        optional = bool(ref.get("optional"))
        name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
        data = await _source(lookup, kind, namespace, name, optional)
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            raise EnvError(f"couldn't find key {key} in {title} {namespace}/{name}")
        return data[key]
    return None
