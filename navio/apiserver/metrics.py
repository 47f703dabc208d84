"""The API server's Prometheus metrics, named and labelled as kube-apiserver's.

`GET /metrics` (authenticated like every non-public path) serves, in the Prometheus text format:

- `apiserver_request_total{verb,dry_run,group,version,resource,subresource,scope,component,
  code}` and `apiserver_request_duration_seconds{verb,dry_run,group,version,resource,
  subresource,scope,component}` (k8s.io/apiserver/pkg/endpoints/metrics): one sample per
  resource request, its verb as kube reports it (`GET`, `LIST`, `WATCH`, `POST`, `PUT`,
  `PATCH`, `APPLY`, `DELETE`, `CONNECT`), scope `resource` / `namespace` / `cluster`,
  component `apiserver`, code the HTTP status sent;
- `apiserver_storage_objects{resource}`: objects stored per resource (`pods`,
  `deployments.apps`), counted from the watch caches when scraped;
- `etcd_request_duration_seconds{operation,type}`: latency of the storage calls (kube's name
  for them, whatever the backend), type the group-resource;
- `apiserver_admission_webhook_*` (`webhookmetrics`): admission webhook calls;
- `process_*` (CPU seconds, resident memory, open fds, start time), as every kube component.

Each ApiServer has its own registry, so several servers in one process (tests) do not clash.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import (CollectorRegistry, Counter, Histogram, ProcessCollector,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily

from navio.api import errors
from navio.apiserver.requestinfo import RequestInfo
from navio.apiserver.webhookmetrics import WebhookMetrics

if TYPE_CHECKING:
    from navio.apiserver.resources import Resources

__all__ = ["ApiMetrics", "CONTENT_TYPE", "report_verb"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# k8s.io/apiserver/pkg/endpoints/metrics: requestLatencies and etcdRequestLatency buckets.
_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10,
            15, 20, 30, 45, 60)
_CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy", "log"})
_APPLY = "application/apply-patch+yaml"

def report_verb(method: str, info: RequestInfo, query: Any, content_type: str) -> str:
    """cleanVerb: the HTTP method, except LIST / WATCH / APPLY / CONNECT where they apply."""
    verb = method.upper()
    if verb == "HEAD":
        verb = "GET"
    if info.verb == "list":
        verb = "LIST"
    elif info.verb == "watch" or info.legacy_watch:
        verb = "WATCH"
    if verb == "PATCH" and content_type.split(";", 1)[0].strip() == _APPLY:
        verb = "APPLY"
    if info.subresource in _CONNECT_SUBRESOURCES and info.subresource != "log":
        verb = "CONNECT"
    return verb


def _scope(info: RequestInfo) -> str:
    if info.name:
        return "resource"
    return "namespace" if info.namespace else "cluster"


def _group_resource(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


class _StorageObjects:
    """Collector of apiserver_storage_objects, read from the watch caches at scrape time."""

    def __init__(self, resources: "Resources") -> None:
        self.resources = resources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("apiserver_storage_objects",
                                   "Number of stored objects at the time of last check split "
                                   "by kind.", labels=["resource"])
        for kind in self.resources.registry.kinds():
            if kind.virtual:
                continue
            try:
                cache = self.resources.cache(kind)
            except KeyError:
                continue
            family.add_metric([_group_resource(kind.group, kind.plural)], len(cache.objects))
        yield family


class ApiMetrics:
    """The metrics of one API server and the `/metrics` handler."""

    def __init__(self, resources: "Resources") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, dry run value, group, "
            "version, resource, scope, component, and HTTP response code.",
            ["verb", "dry_run", "group", "version", "resource", "subresource", "scope",
             "component", "code"], registry=self.registry)
        self.durations = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, "
            "version, resource, subresource, scope and component.",
            ["verb", "dry_run", "group", "version", "resource", "subresource", "scope",
             "component"], buckets=_BUCKETS, registry=self.registry)
        self.storage = Histogram(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type.",
            ["operation", "type"], buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_StorageObjects(resources))  # type: ignore[arg-type]
        ProcessCollector(registry=self.registry)   # process_cpu_seconds_total, …, as kube's
        resources.observe_storage = self.observe_storage
        resources.webhooks.metrics = WebhookMetrics(self.registry)
        # Label lookups cost more than the samples: children are looked up once per series.
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._storage_children: dict[tuple[str, str, str], Any] = {}

    async def track(self, request: web.Request, info: RequestInfo,
                    handle: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Run `handle()` and count it, with the status it answered or the error it raised."""
        start = time.monotonic()
        code = 500
        try:
            resp = await handle()
            code = resp.status
            return resp
        except errors.ApiError as exc:
            code = exc.code
            raise
        finally:
            verb = report_verb(request.method, info, request.query,
                               request.headers.get("Content-Type", ""))
            dry_run = ",".join(sorted(request.query.getall("dryRun", [])))
            labels = (verb, dry_run, info.group, info.version, info.resource,
                      info.subresource, _scope(info), "apiserver", str(code))
            children = self._children.get(labels)
            if children is None:
                children = self._children[labels] = (self.requests.labels(*labels),
                                                      self.durations.labels(*labels[:-1]))
            children[0].inc()
            children[1].observe(time.monotonic() - start)

    def observe_storage(self, operation: str, group: str, plural: str, seconds: float) -> None:
        key = (operation, group, plural)
        child = self._storage_children.get(key)
        if child is None:
            child = self._storage_children[key] = self.storage.labels(
                operation, _group_resource(group, plural))
        child.observe(seconds)

    def response(self) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE})
