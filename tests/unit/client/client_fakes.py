"""In-memory stand-ins for the API client, for testing informers, elections and events."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from navio.api import errors
from navio.client.resources import ResourceRef, object_key
from navio.client.watch import WatchEvent


def obj(name: str, rv: int, namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": str(rv)}
    if namespace:
        meta["namespace"] = namespace
    meta.update(extra.pop("metadata", {}))
    return {"metadata": meta, **extra}


class FakeStream:
    """A watch whose events a test pushes: WatchEvent, an exception to raise, or None (end)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False

    def push(self, item: Any) -> None:
        self.queue.put_nowait(item)

    async def __aenter__(self) -> "FakeStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True

    def __aiter__(self) -> "FakeStream":
        return self

    async def __anext__(self) -> WatchEvent:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item


class FakeListWatchClient:
    """Serves `list` from `state` (paged) and hands out FakeStreams from `watch`."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.list_calls: list[dict[str, Any]] = []
        self.list_errors: list[BaseException] = []
        self.watch_errors: list[BaseException] = []
        self.streams: list[FakeStream] = []
        self.watch_calls: list[dict[str, Any]] = []

    def put(self, o: dict[str, Any]) -> None:
        self.rv = max(self.rv, int(o["metadata"]["resourceVersion"]))
        self.state[object_key(o)] = o

    async def list(self, resource: ResourceRef, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   **_: Any) -> dict[str, Any]:
        self.list_calls.append({"limit": limit, "continue": continue_,
                                "label_selector": label_selector})
        if self.list_errors:
            raise self.list_errors.pop(0)
        items = [copy.deepcopy(v) for _, v in sorted(self.state.items())]
        start = int(continue_ or 0)
        end = len(items) if limit is None else start + limit
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if end < len(items):
            meta["continue"] = str(end)
        return {"kind": "List", "metadata": meta, "items": items[start:end]}

    def watch(self, resource: ResourceRef, namespace: str | None = None, **params: Any
              ) -> Any:
        self.watch_calls.append(params)
        if self.watch_errors:
            err = self.watch_errors.pop(0)
            return _Failing(err)
        stream = FakeStream(params)
        self.streams.append(stream)
        return stream


class _Failing:
    def __init__(self, err: BaseException) -> None:
        self.err = err

    async def __aenter__(self) -> Any:
        raise self.err

    async def __aexit__(self, *exc: object) -> None:
        return None


class FakeLeaseClient:
    """get/create/update of objects with resourceVersion checks, as the API server does."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.rv = 0
        self.fail_for: set[str] = set()       # identities whose writes fail (partition)
        self.writes: list[dict[str, Any]] = []

    def _key(self, name: str, namespace: str | None) -> str:
        return f"{namespace}/{name}"

    async def get(self, resource: ResourceRef, name: str, namespace: str | None = None
                  ) -> dict[str, Any]:
        o = self.objects.get(self._key(name, namespace))
        if o is None:
            raise errors.NotFound(f'{resource.resource_name} "{name}" not found')
        return copy.deepcopy(o)

    def _check_partition(self, body: dict[str, Any]) -> None:
        if (body.get("spec") or {}).get("holderIdentity") in self.fail_for:
            raise ConnectionError("partitioned")

    async def create(self, resource: ResourceRef, body: dict[str, Any],
                     namespace: str | None = None, **_: Any) -> dict[str, Any]:
        self._check_partition(body)
        key = self._key(body["metadata"]["name"], namespace)
        if key in self.objects:
            raise errors.AlreadyExists("exists")
        self.rv += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[key] = stored
        self.writes.append(copy.deepcopy(stored))
        return copy.deepcopy(stored)

    async def update(self, resource: ResourceRef, body: dict[str, Any],
                     namespace: str | None = None, **_: Any) -> dict[str, Any]:
        self._check_partition(body)
        key = self._key(body["metadata"]["name"], namespace)
        current = self.objects.get(key)
        if current is None:
            raise errors.NotFound("gone")
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.Conflict("the object has been modified")
        self.rv += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[key] = stored
        self.writes.append(copy.deepcopy(stored))
        return copy.deepcopy(stored)
