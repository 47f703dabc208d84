"""Per-pod garbage collection of dead containers and sandboxes (kuberuntime_gc.go).

Why: every restart leaves a dead container behind; the kubelet keeps the current and the
previous instance of each name (for lastState and `kubectl logs --previous`), removes the
older ones with their logs, and removes sandboxes that are neither the pod's current one nor
still holding containers.
"""

from __future__ import annotations

from pathlib import Path

from navio.kubelet.iopool import run_io
from navio.kubelet.pleg import RuntimeCache
from navio.runtime.logs import rotated_files
from navio.runtime.protocol import ContainerStatus, Runtime

__all__ = ["collect_pod", "KEEP_PER_NAME"]

KEEP_PER_NAME = 2


def _remove_log(path: str) -> None:
    for file in (*rotated_files(path), Path(path)):
        try:
            file.unlink()
        except FileNotFoundError:
            pass


async def collect_pod(runtime: Runtime, cache: RuntimeCache, uid: str,
                      current_sandbox: str) -> None:
    by_name: dict[str, list[ContainerStatus]] = {}
    for c in cache.pod_containers(uid):
        by_name.setdefault(c.name, []).append(c)
    for items in by_name.values():
        items.sort(key=lambda c: (c.created_at, c.attempt), reverse=True)
        for old in items[KEEP_PER_NAME:]:
            if old.state == "running":
                continue
            await runtime.remove_container(old.id)
            cache.forget_container(old.id)
            if old.log_path:        # the runtime leaves logs to the kubelet
                await run_io(_remove_log, old.log_path)
    for s in cache.pod_sandboxes(uid):
        if s.id != current_sandbox and s.state != "ready" \
                and not cache.pod_containers(uid, s.id):
            await runtime.remove_sandbox(s.id)
            cache.forget_sandbox(s.id)
