"""The REST operations of each served kind, named and shaped as kube-apiserver's installer does.

`operations(kind)` lists, for one registry `Kind`, the paths and operations kube-apiserver would
publish for it (collection list/create/deletecollection, the all-namespaces list, the deprecated
watch paths, get/put/patch/delete on the item, and every subresource), in a neutral form that
`navio.api.openapi` renders as OpenAPI v3 or Swagger 2.0. The shapes follow the published
`api/openapi-spec/v3/apis__apps__v1_openapi.json` and `api__v1_openapi.json` of
kubernetes/kubernetes: operation ids (`patchAppsV1NamespacedDeployment`), descriptions,
`x-kubernetes-action`, a single-object `x-kubernetes-group-version-kind`, and which query
parameters sit on the path and which on the operation. kubectl reads the PATCH operations only
(`query_param_verifier_v3.go`, `apply/patcher.go`), so every PATCH carries `fieldValidation` on the
operation itself and lists the strategic-merge-patch content type. Pure data; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from navio.api.registry import Kind, Subresource

__all__ = ["Operation", "PathItem", "Response", "DefinitionOf", "PARAMETERS", "PATCH_TYPES",
           "STRING", "META", "operations", "group_prefix", "discovery_operation", "parameter"]

# (code, description, definition or STRING, content types) of one response.
Response = tuple[str, str, str, tuple[str, ...]]
# definition_of(group, version, kind) -> definition name, or None if the schema lacks the kind.
DefinitionOf = Callable[[str, str, str], "str | None"]

# Meta types every group-version document references (bodies, responses).
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_DELETE_OPTIONS, _STATUS, _WATCH_EVENT, _PATCH = (META + "DeleteOptions", META + "Status",
                                                  META + "WatchEvent", META + "Patch")
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
# What navio answers with (ARCHITECTURE: replies are JSON); watches stream JSON events.
_JSON = ("application/json",)
_LIST = ("application/json", "application/json;stream=watch")
_WATCH = ("application/json;stream=watch",)
_ANY = ("*/*",)
_LOG = ("text/plain", "application/json")
STRING = "string"  # response schema `{"type": "string"}` instead of a definition

# name -> (in, type, description). Descriptions are the first sentence of upstream's.
PARAMETERS: dict[str, tuple[str, str, str]] = {
    "allowWatchBookmarks": ("query", "boolean", "allowWatchBookmarks requests watch events with "
                            'type "BOOKMARK".'),
    "continue": ("query", "string", "The continue option should be set when retrieving more "
                 "results from the server."),
    "dryRun": ("query", "string", "When present, indicates that modifications should not be "
               "persisted. Valid values are: - All: all dry run stages will be processed"),
    "fieldManager": ("query", "string", "fieldManager is a name associated with the actor or "
                     "entity that is making these changes."),
    "fieldSelector": ("query", "string", "A selector to restrict the list of returned objects by "
                      "their fields. Defaults to everything."),
    "fieldValidation": ("query", "string", "fieldValidation instructs the server on how to handle "
                        "objects in the request (POST/PUT/PATCH) containing unknown or duplicate "
                        "fields. Valid values are: - Ignore - Warn - Strict"),
    "force": ("query", "boolean", 'Force is going to "force" Apply requests.'),
    "gracePeriodSeconds": ("query", "integer", "The duration in seconds before the object should "
                           "be deleted."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "query", "boolean", "if set to true, it will trigger an unsafe deletion of the resource "
        "in case the normal deletion flow fails with a corrupt object error."),
    "labelSelector": ("query", "string", "A selector to restrict the list of returned objects by "
                      "their labels. Defaults to everything."),
    "limit": ("query", "integer", "limit is a maximum number of responses to return for a list "
              "call."),
    "orphanDependents": ("query", "boolean", "Deprecated: please use the PropagationPolicy."),
    "propagationPolicy": ("query", "string", "Whether and how garbage collection will be "
                          "performed."),
    "pretty": ("query", "string", "If 'true', then the output is pretty printed."),
    "resourceVersion": ("query", "string", "resourceVersion sets a constraint on what resource "
                        "versions a request may be served from."),
    "resourceVersionMatch": ("query", "string", "resourceVersionMatch determines how "
                             "resourceVersion is applied to list calls."),
    "sendInitialEvents": ("query", "boolean", "`sendInitialEvents=true` may be set together with "
                          "`watch=true`."),
    "timeoutSeconds": ("query", "integer", "Timeout for the list/watch call."),
    "watch": ("query", "boolean", "Watch for changes to the described resources and return them "
              "as a stream of add, update, and remove notifications."),
    "namespace": ("path", "string", "object name and auth scope, such as for teams and projects"),
    "path": ("path", "string", "path to the resource"),
    # connect and log options (PodExecOptions, PodLogOptions, ...), query parameters.
    "command": ("query", "string", "Command is the remote command to execute."),
    "container": ("query", "string", "The container in which to execute the command or for "
                  "which to stream logs."),
    "stderr": ("query", "boolean", "Redirect the standard error stream of the pod."),
    "stdin": ("query", "boolean", "Redirect the standard input stream of the pod."),
    "stdout": ("query", "boolean", "Redirect the standard output stream of the pod."),
    "tty": ("query", "boolean", "TTY if true indicates that a tty will be allocated."),
    "ports": ("query", "integer", "List of ports to forward."),
    "proxyPath": ("query", "string", "Path is the URL path to use for the current proxy request."),
    "follow": ("query", "boolean", "Follow the log stream of the pod. Defaults to false."),
    "insecureSkipTLSVerifyBackend": ("query", "boolean", "insecureSkipTLSVerifyBackend indicates "
                                     "that the apiserver should not confirm the validity of the "
                                     "serving certificate of the backend it is connecting to."),
    "limitBytes": ("query", "integer", "If set, the number of bytes to read from the server "
                   "before terminating the log output."),
    "previous": ("query", "boolean", "Return previous terminated container logs."),
    "sinceSeconds": ("query", "integer", "A relative time in seconds before the current time "
                     "from which to show logs."),
    "stream": ("query", "string", "Specify which container log stream to return to the client."),
    "tailLines": ("query", "integer", "If set, the number of lines from the end of the logs to "
                  "show."),
    "timestamps": ("query", "boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the "
                   "beginning of every line of log output."),
}
_ALIASES = {"proxyPath": "path"}   # two parameters named "path": one in the path, one in the query


def parameter(key: str, name_of: str = "") -> tuple[str, str, str, str]:
    """(name, in, type, description) of a parameter key; "name" names the object `name_of`."""
    if key == "name":
        return "name", "path", "string", f"name of the {name_of}"
    where, typ, description = PARAMETERS[key]
    return _ALIASES.get(key, key), where, typ, description


_LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds",
                "watch")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = _WRITE_PARAMS + ("force",)
_DELETE_PARAMS = ("dryRun", "gracePeriodSeconds",
                  "ignoreStoreReadErrorWithClusterBreakingPotential", "orphanDependents",
                  "propagationPolicy")
_DELETECOLLECTION_PARAMS = tuple(sorted(set(_DELETE_PARAMS) | set(_LIST_PARAMS) - {
    "allowWatchBookmarks", "watch"}))
_LOG_PARAMS = ("container", "follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous",
               "sinceSeconds", "stream", "tailLines", "timestamps")
# Query parameters of the connect subresources, by the options kind they decode.
_CONNECT_PARAMS = {
    "PodExecOptions": ("command", "container", "stderr", "stdin", "stdout", "tty"),
    "PodAttachOptions": ("container", "stderr", "stdin", "stdout", "tty"),
    "PodPortForwardOptions": ("ports",),
}
_CONNECT_METHODS = (("delete", "delete", "Delete"), ("get", "get", "Get"),
                    ("patch", "patch", "Patch"), ("create", "post", "Post"),
                    ("update", "put", "Put"))


@dataclass(frozen=True, slots=True)
class Operation:
    method: str                        # get, put, post, patch, delete
    operation_id: str
    description: str
    action: str                        # x-kubernetes-action
    gvk: tuple[str, str, str] | None   # x-kubernetes-group-version-kind (group, version, kind)
    params: tuple[str, ...] = ()       # operation-level parameter names
    body: str | None = None            # request body definition
    body_types: tuple[str, ...] = _ANY
    body_required: bool = True
    responses: tuple[Response, ...] = ()


@dataclass(frozen=True, slots=True)
class PathItem:
    path: str
    params: tuple[str, ...]            # path-level parameter names ("name" is kind-specific)
    name_of: str                       # the kind named by the `name` path parameter
    operations: tuple[Operation, ...]


def group_prefix(group: str, version: str) -> tuple[str, str, str]:
    """URL prefix, operation-id infix and tag: ("/apis/apps/v1", "AppsV1", "apps_v1")."""
    if not group:
        return f"/api/{version}", "Core" + version.capitalize(), f"core_{version}"
    parts = group.removesuffix(".k8s.io").split(".")
    camel = "".join(p[:1].upper() + p[1:] for p in parts)
    tag = camel[:1].lower() + camel[1:]
    return f"/apis/{group}/{version}", camel + version.capitalize(), f"{tag}_{version}"


def discovery_operation(path: str, operation_id: str, definition: str,
                        description: str) -> PathItem:
    """A discovery GET (`/apis/apps/v1/`, `/api/`, `/version/`) answering one definition."""
    op = Operation("get", operation_id, description, "", None,
                   responses=_ok(definition, _JSON))
    return PathItem(path, (), "", (op,))


def _ok(definition: str, types: tuple[str, ...]) -> tuple[Response, ...]:
    return (("200", "OK", definition, types),)


def _written(definition: str, *codes: str) -> tuple[Response, ...]:
    names = {"200": "OK", "201": "Created", "202": "Accepted"}
    return tuple((c, names[c], definition, _JSON) for c in codes)


def operations(kind: Kind, definition_of: DefinitionOf) -> list[PathItem]:
    """The path items of one kind. `definition_of(group, version, kind)` names the definitions
    of its list kind and subresource kinds; an operation whose schema is missing is left out."""
    obj = kind.schema_name
    if obj is None:
        return []
    list_definition = definition_of(kind.group, kind.version, kind.list_kind)
    prefix, infix, _ = group_prefix(kind.group, kind.version)
    scope = "/namespaces/{namespace}" if kind.namespaced else ""
    ns_params = ("namespace",) if kind.namespaced else ()
    nsd = "Namespaced" if kind.namespaced else ""
    k, gvk = kind.kind, (kind.group, kind.version, kind.kind)
    verbs = set(kind.verbs)
    items: list[PathItem] = []

    coll: list[Operation] = []
    if "list" in verbs and list_definition:
        coll.append(Operation("get", f"list{infix}{nsd}{k}", f"list or watch objects of kind {k}",
                              "list", gvk, _LIST_PARAMS, responses=_ok(list_definition, _LIST)))
    if "create" in verbs:
        coll.append(Operation("post", f"create{infix}{nsd}{k}", f"create a {k}", "post", gvk,
                              _WRITE_PARAMS, body=obj,
                              responses=_written(obj, "200", "201", "202")))
    if "deletecollection" in verbs:
        coll.append(Operation("delete", f"delete{infix}Collection{nsd}{k}",
                              f"delete collection of {k}", "deletecollection", gvk,
                              _DELETECOLLECTION_PARAMS, body=_DELETE_OPTIONS,
                              body_required=False, responses=_ok(_STATUS, _JSON)))
    if coll:
        items.append(PathItem(f"{prefix}{scope}/{kind.plural}", ns_params + ("pretty",), k,
                              tuple(coll)))
    if kind.namespaced and "list" in verbs and list_definition:
        items.append(PathItem(f"{prefix}/{kind.plural}", _LIST_PARAMS + ("pretty",), k, (
            Operation("get", f"list{infix}{k}ForAllNamespaces",
                      f"list or watch objects of kind {k}", "list", gvk,
                      responses=_ok(list_definition, _LIST)),)))
    if "watch" in verbs:
        watch_list = f"watch individual changes to a list of {k}. deprecated: use the 'watch' " \
                     "parameter with a list operation instead."
        watch_one = f"watch changes to an object of kind {k}. deprecated: use the 'watch' " \
                    "parameter with a list operation instead, filtered to a single item with " \
                    "the 'fieldSelector' parameter."
        every = _LIST_PARAMS + ("pretty",)
        items.append(PathItem(f"{prefix}/watch{scope}/{kind.plural}", ns_params + every, k, (
            Operation("get", f"watch{infix}{nsd}{k}List", watch_list, "watchlist", gvk,
                      responses=_ok(_WATCH_EVENT, _WATCH)),)))
        items.append(PathItem(f"{prefix}/watch{scope}/{kind.plural}/{{name}}",
                              ("name",) + ns_params + every, k, (
            Operation("get", f"watch{infix}{nsd}{k}", watch_one, "watch", gvk,
                      responses=_ok(_WATCH_EVENT, _WATCH)),)))
        if kind.namespaced:
            items.append(PathItem(f"{prefix}/watch/{kind.plural}", every, k, (
                Operation("get", f"watch{infix}{k}ListForAllNamespaces", watch_list, "watchlist",
                          gvk, responses=_ok(_WATCH_EVENT, _WATCH)),)))

    item = _item_operations(f"{infix}{nsd}{k}", "the specified " + k, f"a {k}", obj, gvk, verbs)
    if item:
        items.append(PathItem(f"{prefix}{scope}/{kind.plural}/{{name}}",
                              ("name",) + ns_params + ("pretty",), k, tuple(item)))
    for sub in kind.subresources:
        items.extend(_subresource(kind, sub, f"{prefix}{scope}/{kind.plural}/{{name}}/{sub.name}",
                                  ns_params, (infix, nsd + k), definition_of))
    return items


def _item_operations(name: str, the: str, a: str, obj: str, gvk: tuple[str, str, str],
                     verbs: set[str], what: str = "", delete: bool = True) -> list[Operation]:
    """get/put/patch/delete on one object (or on a get/update/patch subresource of it)."""
    of = f"{what} of " if what else ""
    ops = []
    if "delete" in verbs and delete:
        ops.append(Operation("delete", f"delete{name}", f"delete {a}", "delete", gvk,
                             _DELETE_PARAMS, body=_DELETE_OPTIONS, body_required=False,
                             responses=(("200", "OK", _STATUS, _JSON),
                                        ("202", "Accepted", _STATUS, _JSON))))
    if "get" in verbs:
        ops.append(Operation("get", f"read{name}", f"read {of}{the}", "get", gvk,
                             responses=_ok(obj, _JSON)))
    if "patch" in verbs:
        ops.append(Operation("patch", f"patch{name}", f"partially update {of}{the}", "patch",
                             gvk, _PATCH_PARAMS, body=_PATCH, body_types=PATCH_TYPES,
                             responses=_written(obj, "200", "201")))
    if "update" in verbs:
        ops.append(Operation("put", f"replace{name}", f"replace {of}{the}", "put", gvk,
                             _WRITE_PARAMS, body=obj, responses=_written(obj, "200", "201")))
    return ops


def _subresource(kind: Kind, sub: Subresource, path: str, ns_params: tuple[str, ...],
                 name: tuple[str, str], definition_of: DefinitionOf) -> list[PathItem]:
    k, verbs = kind.kind, set(sub.verbs)
    full = name[0] + name[1]
    cap = sub.name[:1].upper() + sub.name[1:]
    sub_kind = sub.kind or k
    sub_gvk = ((sub.group or "", sub.version or kind.version, sub.kind) if sub.kind
               else (kind.group, kind.version, k))
    definition = definition_of(*sub_gvk) if sub.kind else kind.schema_name
    base = ("name",) + ns_params
    if sub_kind.endswith("Options"):   # connect: exec, attach, portforward, proxy
        # Connect ids put the HTTP method after the group: connectCoreV1GetNamespacedPodExec.
        infix, rest = name
        variants = [("", base + (("proxyPath",) if sub.name == "proxy"
                                 else _CONNECT_PARAMS.get(sub_kind, ())))]
        if sub.name == "proxy":
            variants.append(("WithPath", base + ("path",)))
        return [PathItem(path + ("/{path}" if suffix else ""), params, sub_kind, tuple(
            Operation(method, f"connect{infix}{title}{rest}{cap}{suffix}",
                      f"connect {method.upper()} requests to {sub.name} of {k}", "connect",
                      sub_gvk, responses=(("200", "OK", STRING, _ANY),))
            for verb, method, title in _CONNECT_METHODS if verb in verbs))
            for suffix, params in variants]
    if sub.name == "log":
        return [PathItem(path, base + ("pretty",) + _LOG_PARAMS, k, (
            Operation("get", f"read{full}Log", f"read log of the specified {k}", "get", sub_gvk,
                      responses=(("200", "OK", STRING, _LOG),)),))]
    if definition is None:
        return []
    if verbs == {"create"}:            # binding, eviction, token
        return [PathItem(path, base + ("pretty",) + _WRITE_PARAMS, sub_kind, (
            Operation("post", f"create{full}{cap}", f"create {sub.name} of a {k}", "post",
                      sub_gvk, body=definition,
                      responses=_written(definition, "200", "201", "202")),))]
    ops = _item_operations(f"{full}{cap}", f"the specified {k}", f"a {k}", definition, sub_gvk,
                           verbs, what=sub.name, delete=False)
    return [PathItem(path, base + ("pretty",), sub_kind, tuple(ops))] if ops else []
