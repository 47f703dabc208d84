"""Starting and killing one container, as kuberuntime_container.go startContainer/killContainer.

Why: the steps around a container's life carry user-visible outcomes: the Created/Started/
Killing events, the waiting reasons (CreateContainerConfigError, CreateContainerError,
RunContainerError, PostStartHookError), postStart and preStop hooks and the grace period.

Guarantees:
- `start` resolves env and argv (env.py), maps volume mounts to host paths, creates and
  starts the container through the runtime, records the outcome in the reason cache
  (cleared on success) and runs postStart; a failing postStart kills the container.
- On a runtime with images the image is made present first (images.py: pull policy, pull
  secrets, ErrImagePull/ImagePullBackOff).
- A container without command or args cannot run on a runtime without images: it fails as
  CreateContainerConfigError with a message saying so (the `sim` runtime runs nothing and
  accepts it).
- `kill` runs preStop within the grace period, subtracts the time it took, never gives less
  than 2 s (minimumGracePeriodInSeconds) and stops the container (SIGTERM, then SIGKILL).
- Every container gets a seccomp profile as a kubelet with `--seccomp-default` would
  (runtime/seccomp/profiles.py); an unusable Localhost profile is CreateContainerError.
- Env values and secret contents are never logged or put in events.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Awaitable, Callable, Mapping

from navio.api.quantity import QuantityError, milli_value, value
from navio.kubelet.env import CREATE_CONTAINER_CONFIG_ERROR, EnvError, Lookup, container_env, expand
from navio.kubelet.images import ImageManager
from navio.kubelet.probes import ProbeRunner
from navio.kubelet.volumes import PodVolumes
from navio.runtime.protocol import (
    INIT_LABEL,
    ContainerConfig,
    ContainerConfigFailure,
    ContainerStatus,
    Mount,
    Resources,
    Runtime,
    RuntimeFailure,
    SandboxInfo,
)
from navio.runtime.seccomp.profiles import SeccompProfileError, resolve_profile

__all__ = ["ContainerRunner", "pod_ref", "format_pod", "INIT_LABEL", "MINIMUM_GRACE"]

log = logging.getLogger(__name__)

MINIMUM_GRACE = 2
_HOOK_TIMEOUT = 30.0
EventFn = Callable[[Mapping[str, Any], str, str, str], None]


def format_pod(pod: Mapping[str, Any]) -> str:
    """kubelet's format.Pod: name_namespace(uid)."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def pod_ref(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _resources(spec: Mapping[str, Any]) -> Resources:
    res = spec.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    try:
        return Resources(
            memory_limit=value(str(limits["memory"])) if "memory" in limits else None,
            cpu_limit_millis=milli_value(str(limits["cpu"])) if "cpu" in limits else None,
            cpu_request_millis=milli_value(str(requests["cpu"])) if "cpu" in requests else None)
    except QuantityError:
        return Resources()


def _user(pod: Mapping[str, Any], spec: Mapping[str, Any], field: str) -> int | None:
    for ctx in (spec.get("securityContext") or {}, (pod.get("spec") or {}).get(
            "securityContext") or {}):
        if ctx.get(field) is not None:
            return int(ctx[field])
    return None


class ContainerRunner:
    def __init__(self, runtime: Runtime, probes: ProbeRunner, *, lookup: Lookup,
                 event: EventFn, reasons: dict[tuple[str, str], tuple[str, str]],
                 services_env: Callable[[dict[str, Any]], dict[str, str]],
                 host_ips: Callable[[], list[str]],
                 allocatable: Callable[[], Mapping[str, str]],
                 refresh: Callable[[str], Awaitable[ContainerStatus | None]],
                 seccomp_root: str = "/var/lib/kubelet/seccomp",
                 images: ImageManager | None = None) -> None:
        self.runtime = runtime
        self._seccomp_root = seccomp_root
        self.images = images
        self.probes = probes
        self._lookup = lookup
        self._event = event
        self.reasons = reasons
        self._services_env = services_env
        self._host_ips = host_ips
        self._allocatable = allocatable
        self._refresh = refresh

    def _fail(self, pod: Mapping[str, Any], name: str, reason: str, message: str,
              event_reason: str = "Failed") -> bool:
        uid = str((pod.get("metadata") or {}).get("uid"))
        self.reasons[(uid, name)] = (reason, message)
        self._event(pod, "Warning", event_reason, f"Error: {message}")
        log.info("container start failed", extra={"pod": pod_ref(pod), "container": name,
                                                   "reason": reason})
        return False

    async def start(self, pod: Mapping[str, Any], spec: Mapping[str, Any], sandbox: SandboxInfo,
                    attempt: int, volumes: PodVolumes, pod_files: list[tuple[str, str]], *,
                    init: bool = False) -> bool:
        """Create and start `spec` as instance `attempt`; False when it could not start."""
        meta = pod.get("metadata") or {}
        uid, name = str(meta.get("uid")), str(spec.get("name"))
        if self.images is not None:
            failure = await self.images.ensure(pod, spec)
            if failure is not None:
                self.reasons[(uid, name)] = failure
                self._event(pod, "Warning", "Failed", f"Error: {failure[0]}")
                return False
        elif not spec.get("command") and not spec.get("args") and self.runtime.name != "sim":
            return self._fail(pod, name, CREATE_CONTAINER_CONFIG_ERROR,
                              "container has no command: this node runs host programs without "
                              "images, so the image's entrypoint is not available; set "
                              "command (or args)")
        try:
            env, warnings = await container_env(
                pod, spec, lookup=self._lookup, services_env=self._services_env(dict(pod)),
                host_ips=self._host_ips(), pod_ips=[sandbox.ip], allocatable=self._allocatable())
        except EnvError as exc:
            return self._fail(pod, name, CREATE_CONTAINER_CONFIG_ERROR, str(exc))
        for w in warnings:
            self._event(pod, "Warning", "InvalidEnvironmentVariableNames", w)
        env_map = dict(env)
        command = tuple(expand(str(c), env_map) for c in spec.get("command") or ())
        args = tuple(expand(str(a), env_map) for a in spec.get("args") or ())
        try:
            mounts = self._mounts(spec, volumes, pod_files)
        except ValueError as exc:
            return self._fail(pod, name, CREATE_CONTAINER_CONFIG_ERROR, str(exc))
        try:   # kubelet --seccomp-default: RuntimeDefault unless the pod or container says
            seccomp = resolve_profile(dict(pod), dict(spec), self._seccomp_root)
        except SeccompProfileError as exc:   # containerd fails CreateContainer on it
            return self._fail(pod, name, "CreateContainerError",
                              f"failed to generate seccomp spec opts: {exc}")
        labels = [("io.kubernetes.pod.name", str(meta.get("name"))),
                  ("io.kubernetes.pod.namespace", str(meta.get("namespace"))),
                  ("io.kubernetes.pod.uid", uid), ("io.kubernetes.container.name", name)]
        if init and spec.get("restartPolicy") != "Always":   # (a sidecar keeps running)
            labels.append((INIT_LABEL, "true"))
        config = ContainerConfig(
            name=name, log_path=f"{meta.get('namespace')}_{meta.get('name')}_{uid}/{name}/"
                                f"{attempt}.log",
            command=command, args=args, env=tuple(env), working_dir=spec.get("workingDir"),
            mounts=tuple(mounts), resources=_resources(spec), attempt=attempt,
            tty=bool(spec.get("tty")), stdin=bool(spec.get("stdin")),
            stdin_once=bool(spec.get("stdinOnce")), run_as_user=_user(pod, spec, "runAsUser"),
            run_as_group=_user(pod, spec, "runAsGroup"), labels=tuple(labels),
            seccomp=seccomp, no_new_privs=(spec.get("securityContext") or {}).get(
                "allowPrivilegeEscalation") is False)
        try:
            cid = await self.runtime.create_container(sandbox.id, dict(spec), config)
        except ContainerConfigFailure as exc:
            return self._fail(pod, name, CREATE_CONTAINER_CONFIG_ERROR, str(exc))
        except RuntimeFailure as exc:
            return self._fail(pod, name, "CreateContainerError", str(exc))
        self._event(pod, "Normal", "Created", f"Created container: {name}")
        try:
            await self.runtime.start_container(cid)
        except RuntimeFailure as exc:
            await self._refresh(cid)
            return self._fail(pod, name, "RunContainerError", str(exc))
        self.reasons.pop((uid, name), None)
        self._event(pod, "Normal", "Started", f"Started container {name}")
        status = await self._refresh(cid)
        post_start = (spec.get("lifecycle") or {}).get("postStart")
        if post_start and status is not None:
            result = await self.probes.run(post_start, spec, cid, sandbox.ip, _HOOK_TIMEOUT)
            if result.outcome != "success":
                self._event(pod, "Warning", "FailedPostStartHook", "PostStartHook failed")
                await self.kill(pod, spec, status, message="FailedPostStartHook",
                                pod_ip=sandbox.ip)
                self.reasons[(uid, name)] = ("PostStartHookError", result.output)
                return False
        return True

    def _mounts(self, spec: Mapping[str, Any], volumes: PodVolumes,
                pod_files: list[tuple[str, str]]) -> list[Mount]:
        mounts: list[Mount] = []
        for vm in spec.get("volumeMounts") or ():
            vol = str(vm.get("name"))
            host = volumes.paths.get(vol)
            if host is None:
                raise ValueError(f"cannot find volume \"{vol}\" to mount into container "
                                 f"\"{spec.get('name')}\"")
            sub = vm.get("subPath")
            if sub:
                if os.path.isabs(sub) or ".." in sub.split("/"):
                    raise ValueError(f"subPath {sub!r} must be a relative path without '..'")
                host = os.path.join(host, sub)
                if not os.path.lexists(host):
                    os.makedirs(host, 0o755, exist_ok=True)
            mounts.append(Mount(host, str(vm.get("mountPath")),
                                bool(vm.get("readOnly")) or vol in volumes.read_only))
        taken = {os.path.normpath(m.container_path) for m in mounts}
        for target, host in pod_files:
            if target not in taken:
                mounts.append(Mount(host, target, False))
        return mounts

    def grace_period(self, pod: Mapping[str, Any], probe: Mapping[str, Any] | None = None) -> int:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if meta.get("deletionGracePeriodSeconds") is not None and meta.get("deletionTimestamp"):
            return int(meta["deletionGracePeriodSeconds"])
        if probe and probe.get("terminationGracePeriodSeconds") is not None:
            return int(probe["terminationGracePeriodSeconds"])
        return int(spec.get("terminationGracePeriodSeconds", 30))

    async def kill(self, pod: Mapping[str, Any], spec: Mapping[str, Any] | None,
                   status: ContainerStatus, *, message: str = "",
                   grace: int | None = None, pod_ip: str = "") -> None:
        """Stop one container instance: Killing event, preStop, SIGTERM, SIGKILL."""
        name = status.name
        grace = self.grace_period(pod) if grace is None else grace
        self._event(pod, "Normal", "Killing", message or f"Stopping container {name}")
        pre_stop = ((spec or {}).get("lifecycle") or {}).get("preStop")
        if pre_stop and grace > 0 and status.state == "running":
            started = time.monotonic()
            try:
                async with asyncio.timeout(grace):
                    result = await self.probes.run(pre_stop, spec or {}, status.id, pod_ip, grace)
                if result.outcome != "success":
                    self._event(pod, "Warning", "FailedPreStopHook", "PreStopHook failed")
            except TimeoutError:
                log.info("preStop hook not completed in grace period",
                         extra={"pod": pod_ref(pod), "container": name, "grace": grace})
            grace -= int(time.monotonic() - started)
        grace = max(grace, MINIMUM_GRACE)
        log.info("killing container", extra={"pod": pod_ref(pod), "container": name,
                                             "grace": grace})
        for attempt in range(2):
            try:
                await self.runtime.stop_container(status.id, float(grace if not attempt else 0))
                break
            except (RuntimeFailure, OSError):
                # (OSError: the runtime can race its own supervisor removing the cgroup)
                log.warning("stopping container failed", extra={
                    "pod": pod_ref(pod), "container": name, "attempt": attempt + 1},
                    exc_info=True)
        await self._refresh(status.id)
