"""Recording core/v1 Events about objects, as client-go's tools/record does.

Why: users read what controllers did with `kubectl describe` / `kubectl get events`; the events
must look like Kubernetes' own (involvedObject, reason, message, type, source, count,
first/lastTimestamp, reportingComponent).

What is guaranteed (client-go record/event.go and events_cache.go):
- `event()` never blocks and never raises: events go to a bounded queue (1000) and are dropped
  when it is full, as the broadcaster's DropIfChannelFull does; a sender task writes them.
- Repeats are aggregated: an event identical to one already sent (same source, object, type,
  reason and message) increments that Event's `count` and `lastTimestamp` with a strategic-merge
  PATCH instead of creating a new one (created again if the old one is gone). When one object
  gets more than 10 events that differ only by message within 10 minutes, they are combined into
  one Event whose message starts "(combined from similar events): ".
- Rate limited per source and object: a token bucket of burst 25 refilled once every 5 minutes;
  events beyond it are dropped.
- Writes are retried a few times on connection errors only; failures are logged (without the
  message text) and dropped. Caches are LRUs of 4096 entries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from navio.api import errors
from navio.client.clock import REAL_CLOCK, Clock
from navio.client.ratelimit import TokenBucket
from navio.client.resources import EVENTS
from navio.client.rest import Client

__all__ = ["EventRecorder", "NORMAL", "WARNING", "object_reference"]

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
_QUEUE = 1000
_LRU_SIZE = 4096
_AGGREGATE_MAX = 10
_AGGREGATE_WINDOW = 600.0
_SPAM_BURST = 25
_SPAM_QPS = 1.0 / 300.0
_SEND_TRIES = 3


def object_reference(obj: dict[str, Any]) -> dict[str, Any]:
    """The ObjectReference of `obj` (kind, apiVersion, namespace, name, uid, resourceVersion)."""
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"),
           "namespace": meta.get("namespace"), "name": meta.get("name"),
           "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Sent:
    name: str
    namespace: str
    count: int
    first_timestamp: str


@dataclass(slots=True)
class _Similar:
    messages: set[str]
    last: float


class _LRU(OrderedDict[Any, Any]):
    def touch(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _LRU_SIZE:
            self.popitem(last=False)


class EventRecorder:
    def __init__(self, client: Client, component: str, *, host: str = "",
                 clock: Clock = REAL_CLOCK) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._clock = clock
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._sent: _LRU = _LRU()          # event key -> _Sent
        self._similar: _LRU = _LRU()       # aggregate key -> _Similar
        self._spam: _LRU = _LRU()          # source+object -> TokenBucket
        self.dropped = 0

    def start(self) -> None:
        """Start the sender task; `event()` also starts it on first use."""
        if self._queue is None:
            self._queue = asyncio.Queue(_QUEUE)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._sender(), name=f"events {self.component}")

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued event was written or dropped; False at the deadline."""
        if self._queue is None:
            return True
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to `timeout`), then stop; safe to repeat."""
        if self._task is None:
            return
        await self.flush(timeout)
        task, self._task = self._task, None
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    def event(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        """Record that `reason`/`message` happened to `obj`; never raises or blocks."""
        if type not in (NORMAL, WARNING):
            self.dropped += 1
            log.error("event dropped: unsupported type", extra={"component": self.component,
                                                               "event_type": type})
            return
        try:
            self.start()
            assert self._queue is not None
            ref = object_reference(obj)
            if not ref.get("name") or not ref.get("kind"):
                self.dropped += 1
                log.error("event dropped: object has no kind or name",
                          extra={"component": self.component, "reason": reason})
                return
            self._queue.put_nowait({"ref": ref, "type": type, "reason": reason,
                                    "message": message, "at": _timestamp()})
        except asyncio.QueueFull:
            self.dropped += 1
            log.info("event dropped: queue full", extra={"component": self.component})
        except Exception:
            self.dropped += 1
            log.exception("event not recorded", extra={"component": self.component})

    # ---- correlation (events_cache.go) --------------------------------------------------

    def _aggregate(self, ev: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
        ref = ev["ref"]
        base = (self.component, self.host, ref.get("kind"), ref.get("namespace"),
                ref.get("name"), ref.get("uid"), ref.get("apiVersion"), ev["type"], ev["reason"])
        now = self._clock.now()
        similar = self._similar.get(base)
        if similar is None or now - similar.last > _AGGREGATE_WINDOW:
            similar = _Similar(set(), now)
        similar.messages.add(ev["message"])
        similar.last = now
        self._similar.touch(base, similar)
        if len(similar.messages) >= _AGGREGATE_MAX:
            return base, "(combined from similar events): " + ev["message"]
        return base + (ev["message"],), ev["message"]

    def _allowed(self, ref: dict[str, Any]) -> bool:
        key = (self.component, self.host, ref.get("kind"), ref.get("namespace"),
               ref.get("name"), ref.get("uid"), ref.get("apiVersion"))
        bucket = self._spam.get(key)
        if bucket is None:
            bucket = TokenBucket(_SPAM_QPS, _SPAM_BURST, clock=self._clock)
        self._spam.touch(key, bucket)
        return bucket.try_take()

    def _new_event(self, ev: dict[str, Any], message: str) -> dict[str, Any]:
        ref = ev["ref"]
        namespace = ref.get("namespace") or "default"
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1", "kind": "Event",
            # client-go: "<object name>.<unix nanoseconds in hex>", unique enough per object.
            "metadata": {"name": f"{ref.get('name', 'unknown')}.{time.time_ns():x}",
                         "namespace": namespace},
            "involvedObject": ref, "reason": ev["reason"], "message": message,
            "type": ev["type"], "source": source, "count": 1,
            "firstTimestamp": ev["at"], "lastTimestamp": ev["at"],
            "reportingComponent": self.component, "reportingInstance": self.host,
        }

    # ---- sending --------------------------------------------------------------------------

    async def _sender(self) -> None:
        assert self._queue is not None
        while True:
            ev = await self._queue.get()
            try:
                await self._record(ev)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event not recorded", extra={"component": self.component})
            finally:
                self._queue.task_done()

    async def _record(self, ev: dict[str, Any]) -> None:
        key, message = self._aggregate(ev)
        if not self._allowed(ev["ref"]):
            self.dropped += 1
            log.debug("event dropped: rate limited", extra={"component": self.component,
                                                            "reason": ev["reason"]})
            return
        sent = self._sent.get(key)
        if sent is not None:
            patch = {"count": sent.count + 1, "lastTimestamp": ev["at"], "message": message}
            try:
                patched = await self._send(lambda: self.client.patch(
                    EVENTS, sent.name, patch, sent.namespace, patch_type="strategic"),
                    reraise_not_found=True)
            except errors.NotFound:
                self._sent.pop(key, None)    # deleted (or expired): start a new Event
            else:
                if patched is not None:
                    self._sent.touch(key, _Sent(sent.name, sent.namespace, sent.count + 1,
                                                sent.first_timestamp))
                return
        body = self._new_event(ev, message)
        created = await self._send(lambda: self.client.create(EVENTS, body))
        if created is not None:
            meta = created.get("metadata") or {}
            self._sent.touch(key, _Sent(meta.get("name", body["metadata"]["name"]),
                                        meta.get("namespace", body["metadata"]["namespace"]),
                                        int(created.get("count") or 1), body["firstTimestamp"]))

    async def _send(self, call: Any, *, reraise_not_found: bool = False
                    ) -> dict[str, Any] | None:
        for attempt in range(_SEND_TRIES):
            try:
                return await call()  # type: ignore[no-any-return]
            except errors.NotFound:
                if reraise_not_found:
                    raise
                log.info("event write failed", extra={"component": self.component,
                                                      "code": 404, "error": "NotFound"})
                return None
            except ConnectionError:
                if attempt + 1 < _SEND_TRIES:
                    await self._clock.sleep(0.5 * 2 ** attempt)
            except errors.ApiError as exc:
                log.info("event write failed", extra={"component": self.component,
                                                      "code": exc.code, "error": exc.reason})
                return None
        log.info("event write failed", extra={"component": self.component,
                                              "error": "unreachable"})
        return None
