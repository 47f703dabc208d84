"""The storage contract every backend (SQLite, etcd) implements.

Keys are Kubernetes registry paths (`/registry/<group>/<resource>/<ns>/<name>`), values opaque
bytes. One global, strictly increasing revision orders every write; each call returns the
store's revision as of the call. Conditional writes compare against the `mod_revision` the
caller read, which is what an object's `metadata.resourceVersion` holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol

__all__ = ["KeyValue", "StoreEvent", "WatchBatch", "Store", "StorageError", "KeyExists",
           "KeyNotFound", "RevisionConflict", "Compacted", "WatchOverflow", "ProgressRequester",
           "StoreUnavailable"]


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """One write as a watcher sees it. `kv` is the new value (for a delete: the value as it was
    deleted, with `mod_revision` = the delete's revision); `prev` the value before the write."""

    type: Literal["CREATE", "UPDATE", "DELETE"]
    kv: KeyValue
    prev: KeyValue | None


class WatchBatch(list[StoreEvent]):
    """Events of one watch, in revision order, plus `revision`: the store revision through
    which the watcher has now been told every write under its prefix. With `progress=True` a
    batch may be empty: it then only reports that the store moved on (etcd's progress notify),
    which is how a watch cache knows it is current without writes of its own."""

    __slots__ = ("revision",)

    def __init__(self, events: list[StoreEvent] | tuple[StoreEvent, ...] = (),
                 revision: int = 0) -> None:
        super().__init__(events)
        self.revision = revision or (events[-1].kv.mod_revision if events else 0)


class StorageError(Exception):
    pass


class StoreUnavailable(StorageError):
    """The backend could not serve the request (etcd without quorum, unreachable, timed out).
    `message` is the backend's own text, which kube-apiserver passes on: a 500 Status whose
    message is etcd's error (`etcdserver: request timed out`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class KeyExists(StorageError):
    """create() of a key that is present."""


class KeyNotFound(StorageError):
    """update()/delete() of a key that is absent."""


class RevisionConflict(StorageError):
    """update()/delete() whose expected revision is not the key's current mod_revision.
    `current` holds the key's present value, when the backend has it."""

    def __init__(self, key: str, current: KeyValue | None = None) -> None:
        super().__init__(key)
        self.current = current


class Compacted(StorageError):
    """A read or watch at a revision older than the oldest one kept."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"revision {requested} compacted (oldest {oldest})")
        self.requested = requested
        self.oldest = oldest


class WatchOverflow(StorageError):
    """A watcher fell too far behind and was ended; re-list and re-watch."""

    def __init__(self, prefix: str, limit: int) -> None:
        super().__init__(f"watch on {prefix!r} fell more than {limit} events behind")
        self.prefix = prefix
        self.limit = limit


class Store(Protocol):
    async def get(self, key: str) -> tuple[int, KeyValue | None]:
        """(store revision, the key's current value or None)."""

    async def list(self, prefix: str, *, revision: int = 0, start: str = "",
                   limit: int = 0) -> tuple[int, list[KeyValue], bool]:
        """Keys under `prefix` in key order, as of `revision` (0: now), from key `start`
        (inclusive), at most `limit` (0: all). Returns (revision read at, items, more).
        Raises Compacted if `revision` is older than the oldest kept."""

    async def count(self, prefix: str) -> tuple[int, int]:
        """(store revision, number of live keys under prefix)."""

    async def create(self, key: str, value: bytes) -> int:
        """Write a new key; returns its revision. Raises KeyExists."""

    async def update(self, key: str, value: bytes, *, expect_revision: int) -> int:
        """Replace a key if its mod_revision equals `expect_revision` (0: unconditionally);
        returns the new revision. Raises KeyNotFound, RevisionConflict."""

    async def delete(self, key: str, *, expect_revision: int = 0) -> tuple[int, KeyValue]:
        """Delete a key if its mod_revision equals `expect_revision` (0: unconditionally);
        returns (delete revision, the value deleted). Raises KeyNotFound, RevisionConflict."""

    def watch(self, prefix: str, *, from_revision: int,
              progress: bool = False) -> AsyncIterator[WatchBatch]:
        """Every write under `prefix` with revision > `from_revision`, in revision order, in
        batches; raises Compacted (on first iteration) if `from_revision` is too old and
        WatchOverflow if the watcher falls too far behind. With `progress`, empty batches
        report the store's revision as it advances."""

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None:
        """Forget history at and below `revision` (live values are kept)."""

    async def close(self) -> None: ...


class ProgressRequester(Protocol):
    """Optional: progress on request, as etcd's WatchProgressRequest. A store offering it
    accepts `watch(..., progress=True, progress_on_request=True)`, whose progress batches
    then come only after `request_progress(prefix)` instead of after every commit. Wrappers
    of a store forward both or neither (the watch cache checks for `request_progress`)."""

    def request_progress(self, prefix: str) -> None:
        """Have each progress_on_request watch on exactly `prefix` report the store's current
        revision soon (an empty WatchBatch), unless it has reported it already."""

