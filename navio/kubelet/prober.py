"""Probe workers: liveness, readiness and startup probes of running containers (pkg/kubelet/prober).

Why: readiness gates a pod's Ready condition (and so Service endpoints); a failing liveness
or startup probe makes the kubelet kill and restart the container.

Guarantees (as prober/worker.go):
- One worker per (pod, container, probe kind), bound to one container instance: a restarted
  container gets fresh workers and fresh results.
- Results start as: readiness "failure" (not ready until a probe succeeds), liveness
  "success", startup unknown. A result changes only after `successThreshold` consecutive
  successes or `failureThreshold` consecutive failures; every change calls `on_change(uid)`.
- No probe runs before `initialDelaySeconds` have passed since the container started;
  liveness and readiness wait until the startup probe (if any) succeeded; a startup worker
  stops after success; a liveness/startup worker stops after reporting failure (the
  container will be restarted).
- Each failed attempt records a Warning `Unhealthy` event ("Readiness probe failed: ...").
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from navio.kubelet.probes import ProbeRunner

__all__ = ["ProbeManager"]

log = logging.getLogger(__name__)

_KINDS = (("startup", "startupProbe", "Startup"), ("liveness", "livenessProbe", "Liveness"),
          ("readiness", "readinessProbe", "Readiness"))
_TRIGGER_INTERVAL = 1.0


@dataclass
class _Worker:
    uid: str
    container: str
    container_id: str
    kind: str
    probe: Mapping[str, Any]
    result: str | None
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_trigger: float = 0.0


class ProbeManager:
    def __init__(self, runner: ProbeRunner, *, on_change: Callable[[str], None],
                 event: Callable[[Mapping[str, Any], str, str, str], None]) -> None:
        self._runner = runner
        self._on_change = on_change
        self._event = event
        self._workers: dict[tuple[str, str, str], _Worker] = {}

    # ---- queries (used by status generation and sync) --------------------------------

    def _result(self, uid: str, name: str, cid: str, kind: str) -> tuple[bool, str | None]:
        w = self._workers.get((uid, name, kind))
        if w is None or w.container_id != cid:
            return False, None
        return True, w.result

    def started(self, uid: str, name: str, cid: str, spec: Mapping[str, Any]) -> bool:
        if not spec.get("startupProbe"):
            return True
        exists, result = self._result(uid, name, cid, "startup")
        return exists and result == "success"

    def ready(self, uid: str, name: str, cid: str, spec: Mapping[str, Any]) -> bool:
        if not spec.get("readinessProbe"):
            return True
        exists, result = self._result(uid, name, cid, "readiness")
        if exists and result != "success":
            self._trigger(self._workers[(uid, name, "readiness")])
        return exists and result == "success"

    def failed(self, uid: str, name: str, cid: str) -> str | None:
        """"liveness"/"startup" when that probe decided the container must be restarted."""
        for kind in ("liveness", "startup"):
            exists, result = self._result(uid, name, cid, kind)
            if exists and result == "failure":
                return kind
        return None

    # ---- workers ------------------------------------------------------------------------

    def sync(self, pod: Mapping[str, Any], running: Mapping[str, tuple[str, float, str]]) -> None:
        """Match workers to the pod's running containers: `running` maps container name to
        (container id, started at, pod IP)."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        spec_ = pod.get("spec") or {}
        specs = {c.get("name"): c for c in (   # (sidecars: restartable init containers)
            *(c for c in spec_.get("initContainers") or () if c.get("restartPolicy") == "Always"),
            *(spec_.get("containers") or ()))}
        wanted = set()
        for name, (cid, started_at, pod_ip) in running.items():
            spec = specs.get(name)
            if spec is None:
                continue
            for kind, field_name, _ in _KINDS:
                probe = spec.get(field_name)
                if not probe:
                    continue
                key = (uid, name, kind)
                wanted.add(key)
                current = self._workers.get(key)
                if current is not None and current.container_id == cid:
                    continue
                if current is not None and current.task is not None:
                    current.task.cancel()
                initial = {"readiness": "failure", "liveness": "success"}.get(kind)
                w = _Worker(uid, name, cid, kind, probe, initial)
                w.task = asyncio.create_task(self._run(w, pod, spec, started_at, pod_ip),
                                             name=f"probe {kind} {meta.get('name')}/{name}")
                self._workers[key] = w
        for key in [k for k in self._workers if k[0] == uid and k not in wanted]:
            w = self._workers.pop(key)
            if w.task is not None:
                w.task.cancel()

    def remove_pod(self, uid: str) -> None:
        for key in [k for k in self._workers if k[0] == uid]:
            w = self._workers.pop(key)
            if w.task is not None:
                w.task.cancel()

    async def stop(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()

    def _trigger(self, w: _Worker) -> None:
        now = time.monotonic()
        if now - w.last_trigger >= _TRIGGER_INTERVAL:
            w.last_trigger = now
            w.wake.set()

    async def _run(self, w: _Worker, pod: Mapping[str, Any], spec: Mapping[str, Any],
                   started_at: float, pod_ip: str) -> None:
        probe = w.probe
        period = max(1, int(probe.get("periodSeconds") or 10))
        timeout = max(1, int(probe.get("timeoutSeconds") or 1))
        delay = int(probe.get("initialDelaySeconds") or 0)
        success_threshold = max(1, int(probe.get("successThreshold") or 1))
        failure_threshold = max(1, int(probe.get("failureThreshold") or 3))
        title = next(t for k, _, t in _KINDS if k == w.kind)
        run_result: str | None = None
        run_count = 0
        while True:
            if time.time() - started_at >= delay and self._may_probe(w, spec):
                outcome = await self._runner.run(probe, spec, w.container_id, pod_ip, timeout)
                if outcome.outcome == "failure":
                    self._event(pod, "Warning", "Unhealthy",
                                f"{title} probe failed: {outcome.output}")
                elif outcome.outcome == "error":
                    self._event(pod, "Warning", "Unhealthy",
                                f"{title} probe errored: {outcome.output}")
                if outcome.outcome != "error":
                    if outcome.outcome == run_result:
                        run_count += 1
                    else:
                        run_result, run_count = outcome.outcome, 1
                    threshold = success_threshold if run_result == "success" \
                        else failure_threshold
                    if run_count >= threshold and w.result != run_result:
                        w.result = run_result
                        log.info("probe result changed", extra={
                            "pod": f"{(pod.get('metadata') or {}).get('namespace')}/"
                                   f"{(pod.get('metadata') or {}).get('name')}",
                            "container": w.container, "probe": w.kind, "result": w.result})
                        self._on_change(w.uid)
                    if w.kind == "startup" and w.result == "success":
                        return
                    if w.kind in ("liveness", "startup") and w.result == "failure":
                        return
            w.wake.clear()
            try:
                async with asyncio.timeout(period):
                    await w.wake.wait()
            except TimeoutError:
                pass

    def _may_probe(self, w: _Worker, spec: Mapping[str, Any]) -> bool:
        if w.kind == "startup" or not spec.get("startupProbe"):
            return True
        exists, result = self._result(w.uid, w.container, w.container_id, "startup")
        return exists and result == "success"
