"""List requests: selectors, resourceVersion semantics and limit/continue paging.

A list is served from the watch cache; a continuation whose snapshot the cache has moved past
is read from the store at the revision of the first page, so every page of one list belongs to
the same snapshot (or the client gets 410 Expired and starts over, as with Kubernetes).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import orjson

from navio.api import errors, selectors
from navio.api.registry import Kind
from navio.apiserver.watchcache import WatchCache, decode_object
from navio.storage.protocol import Compacted, Store

__all__ = ["ListOptions", "parse_list_options", "make_predicate", "list_objects"]

Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class ListOptions:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    watch: bool = False
    allow_bookmarks: bool = False
    timeout_seconds: int | None = None
    send_initial_events: bool | None = None


def _int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.BadRequest(f'invalid value for {name}: "{raw}"') from None


def _bool(query: Mapping[str, str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    return raw.lower() in ("true", "1")


def parse_list_options(query: Mapping[str, str]) -> ListOptions:
    opts = ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=max(_int(query, "limit") or 0, 0),
        continue_=query.get("continue", ""),
        resource_version=query.get("resourceVersion", ""),
        resource_version_match=query.get("resourceVersionMatch", ""),
        watch=bool(_bool(query, "watch")),
        allow_bookmarks=bool(_bool(query, "allowWatchBookmarks")),
        timeout_seconds=_int(query, "timeoutSeconds"),
        send_initial_events=_bool(query, "sendInitialEvents"),
    )
    if opts.resource_version and not opts.resource_version.isdigit():
        raise errors.BadRequest(f'invalid resource version "{opts.resource_version}"'
                                if opts.resource_version else "invalid resource version")
    if opts.resource_version_match and opts.resource_version_match not in (
            "NotOlderThan", "Exact"):
        raise errors.BadRequest(f'unsupported resourceVersionMatch value '
                                f'"{opts.resource_version_match}"')
    if opts.continue_ and opts.resource_version and opts.resource_version != "0":
        raise errors.BadRequest("specifying resource version is not allowed when using "
                                "continue")
    return opts


def make_predicate(kind: Kind, opts: ListOptions) -> Predicate | None:
    """A filter for the label and field selectors, or None when nothing is filtered."""
    label = selectors.parse_label_selector(opts.label_selector) if opts.label_selector else None
    field = None
    if opts.field_selector:
        field = selectors.parse_field_selector(opts.field_selector)
        selectors.check_field_selector(kind.group, kind.kind, field)
    if label is None and field is None:
        return None

    def predicate(obj: dict[str, Any]) -> bool:
        if label is not None and not label.matches(obj.get("metadata", {}).get("labels") or {}):
            return False
        if field is not None and not selectors.field_selector_matches(
                field, selectors.selectable_fields(kind.group, kind.kind, obj)):
            return False
        return True
    return predicate


def _encode_continue(revision: int, start: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), str(data["start"])
    except Exception:
        raise errors.BadRequest("continue key is not valid: incorrect encoded start "
                                "resourceVersion (version meta.k8s.io/v1)") from None


_EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list.")


async def list_objects(kind: Kind, cache: WatchCache, store: Store, namespace: str,
                       opts: ListOptions, predicate: Predicate | None
                       ) -> tuple[list[dict[str, Any]], int, str, int | None]:
    """(items, list resourceVersion, continue token, remainingItemCount)."""
    items, revision, token, remaining = await _list(kind, cache, store, namespace, opts,
                                                    predicate)
    # Objects a conversion webhook has yet to convert are converted now (or the list fails).
    return await cache.resolve(items), revision, token, remaining


async def _list(kind: Kind, cache: WatchCache, store: Store, namespace: str,
                opts: ListOptions, predicate: Predicate | None
                ) -> tuple[list[dict[str, Any]], int, str, int | None]:
    if opts.continue_:
        revision, start = _decode_continue(opts.continue_)
        if cache.revision != revision:
            return await _list_from_store(kind, store, namespace, opts, predicate, revision,
                                          start)
    else:
        start = ""
        if opts.resource_version_match == "Exact" and opts.resource_version:
            revision = int(opts.resource_version)
            if revision != cache.revision:
                return await _list_from_store(kind, store, namespace, opts, predicate,
                                              revision, "")
        elif opts.resource_version == "0":
            pass
        elif opts.resource_version:
            await cache.wait_for(int(opts.resource_version))
        else:
            await cache.consistent()
        revision = cache.revision
    items: list[dict[str, Any]] = []
    pairs = cache.list(namespace)
    token, remaining = "", None
    for i, (key, obj) in enumerate(pairs):
        if start and key < start:
            continue
        if predicate is not None and not predicate(obj):
            continue
        if opts.limit and len(items) == opts.limit:
            token = _encode_continue(revision, key)
            if predicate is None:
                remaining = len(pairs) - i
            break
        items.append(obj)
    return items, revision, token, remaining


async def _list_from_store(kind: Kind, store: Store, namespace: str, opts: ListOptions,
                           predicate: Predicate | None, revision: int, start: str
                           ) -> tuple[list[dict[str, Any]], int, str, int | None]:
    prefix = kind.storage_prefix(namespace if kind.namespaced else None)
    items: list[dict[str, Any]] = []
    batch = max(opts.limit, 500)
    try:
        while True:
            _, kvs, more = await store.list(prefix, revision=revision, start=start or prefix,
                                            limit=batch)
            for kv in kvs:
                obj = decode_object(kv.value, kv.mod_revision, kind)
                if predicate is not None and not predicate(obj):
                    continue
                if opts.limit and len(items) == opts.limit:
                    return items, revision, _encode_continue(revision, kv.key), None
                items.append(obj)
            if not more or not kvs:
                return items, revision, "", None
            start = kvs[-1].key + "\x00"
    except Compacted:
        raise errors.Expired(_EXPIRED_CONTINUE if opts.continue_ else
                             f"too old resource version: {revision}") from None
