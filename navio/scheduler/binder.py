"""Binding pods to nodes through `POST pods/<name>/binding`, many at once.

Why: the binding write is the slow part of scheduling (a round trip and a storage commit);
kube-scheduler binds in a goroutine per pod so the next cycle starts at once. Here each binding
is an asyncio task, at most `concurrency` of them talking to the API server at a time; the
scheduling loop only waits (`wait_capacity`) when more than `max_pending` are outstanding.

Guarantees: every `bind` ends with exactly one call of its `done(pod, node, error)` callback —
error None on success, the exception otherwise — also when the binder is stopped (then the
error is CancelledError's stand-in `BindCancelled`). The Binding carries the pod's UID, so a
pod deleted and re-created under the same name is never bound by mistake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from navio.client import PODS, Client
from navio.scheduler.podinfo import PodInfo

__all__ = ["Binder", "BindCancelled", "binding_body"]

log = logging.getLogger(__name__)

Done = Callable[[PodInfo, str, BaseException | None], Any]
# PreBind plugins (VolumeBinding) run just before the binding is written; an exception fails
# the binding like an API error would.
PreBind = Callable[[PodInfo, str], Awaitable[None]]


class BindCancelled(Exception):
    """The binder stopped before the binding was confirmed."""


def binding_body(pi: PodInfo, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pi.name, "namespace": pi.namespace, "uid": pi.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


class Binder:
    def __init__(self, client: Client, *, concurrency: int = 128, max_pending: int = 4096,
                 pre_bind: PreBind | None = None) -> None:
        self.client = client
        self.pre_bind = pre_bind
        self.max_pending = max_pending
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._room.set()
        self.bound = 0
        self.failed = 0

    def pending(self) -> int:
        return len(self._tasks)

    async def wait_capacity(self) -> None:
        while len(self._tasks) >= self.max_pending:
            self._room.clear()
            await self._room.wait()

    def bind(self, pi: PodInfo, node: str, done: Done) -> None:
        task = asyncio.get_running_loop().create_task(self._bind(pi, node, done))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if len(self._tasks) < self.max_pending:
            self._room.set()

    async def _bind(self, pi: PodInfo, node: str, done: Done) -> None:
        error: BaseException | None = None
        try:
            async with self._sem:
                if self.pre_bind is not None:
                    await self.pre_bind(pi, node)
                await self.client.create_subresource(PODS, pi.name, "binding",
                                                     binding_body(pi, node), pi.namespace)
            self.bound += 1
        except asyncio.CancelledError:
            error = BindCancelled(f"binding {pi.key} to {node} cancelled")
            raise
        except Exception as exc:            # ApiError, TransportError: reported to `done`
            error = exc
            self.failed += 1
            log.info("binding failed", extra={"pod": pi.key, "node": node,
                                              "error": type(exc).__name__})
        finally:
            try:
                done(pi, node, error)
            except Exception:
                log.exception("bind callback failed", extra={"pod": pi.key})

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` for outstanding bindings, then cancel the rest."""
        pending = set(self._tasks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout)
        for t in pending:
            t.cancel("binder stopping")
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.info("bindings cancelled", extra={"cancelled": len(pending)})
