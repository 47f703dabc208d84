"""OpenAPI v3/v2 documents: shape (as kube-apiserver publishes it) and acceptance by real kubectl.

The end-to-end tests start a small HTTPS mock of the API server on 127.0.0.1 that serves
/version, legacy discovery and the documents built here, and run the real kubectl against it
with a kubeconfig that trusts a CA generated for the test (no insecure flags), a fresh HOME and
KUBECACHEDIR per test."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from navio.api import fieldvalidation, openapi, schema
from navio.api.registry import BUILTIN, Kind, Registry, Subresource, default_registry

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
ITEM = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return default_registry()


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every (path, key, value) of a JSON document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield path, k, v
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}/{i}")


def _all_v3(registry: Registry) -> dict[str, dict[str, Any]]:
    keys = openapi.v3_index(registry)["paths"]
    docs = {k: openapi.v3_document_at(registry, k) for k in keys}
    assert all(d is not None for d in docs.values())
    return docs  # type: ignore[return-value]


# --- index and hashes -------------------------------------------------------------------------

def test_index_lists_every_served_group_version_with_a_hashed_url(registry: Registry) -> None:
    paths = openapi.v3_index(registry)["paths"]
    served = {("api/v1" if not g else f"apis/{g}/{v}") for g, vs in registry.groups() for v in vs}
    assert served <= set(paths)
    assert {"api", "apis", "version", "apis/apps"} <= set(paths)
    for key, entry in paths.items():
        assert not key.startswith("/")
        assert re.fullmatch(rf"/openapi/v3/{re.escape(key)}\?hash=[0-9A-F]{{128}}",
                            entry["serverRelativeURL"])


def test_index_hash_is_the_sha512_of_the_served_document(registry: Registry) -> None:
    for key, entry in openapi.v3_index(registry)["paths"].items():
        doc = openapi.v3_document_at(registry, key)
        assert doc is not None
        assert entry["serverRelativeURL"].endswith("?hash=" + openapi.document_hash(doc))


def test_index_hashes_are_stable_across_calls_and_registries(registry: Registry) -> None:
    first = openapi.v3_index(registry)
    assert openapi.v3_index(registry) == first
    assert openapi.v3_index(default_registry()) == first


def test_changing_a_kind_changes_only_its_documents_hash(registry: Registry) -> None:
    before = openapi.v3_index(registry)["paths"]
    changed = Registry(BUILTIN)
    deploy = changed.kind("apps", "v1", "Deployment")
    assert deploy is not None
    changed.remove(deploy)
    changed.add(Kind("apps", "v1", "Deployment", "deployments", True, singular="deployment",
                     subresources=(Subresource("status", ("get", "patch", "update")),)))
    after = openapi.v3_index(changed)["paths"]
    assert after["apis/apps/v1"] != before["apis/apps/v1"]
    assert {k: v for k, v in after.items() if k != "apis/apps/v1"} == \
           {k: v for k, v in before.items() if k != "apis/apps/v1"}


def test_documents_are_built_once_and_rebuilt_after_the_registry_changes() -> None:
    reg = default_registry()
    doc = openapi.v3_document(reg, "apps", "v1")
    assert openapi.v3_document(reg, "apps", "v1") is doc
    reg.add(Kind("networking.k8s.io", "v1", "Ingress", "ingresses", True, singular="ingress"))
    assert openapi.v3_document(reg, "apps", "v1") is not doc
    assert "apis/networking.k8s.io/v1" in openapi.v3_index(reg)["paths"]


def test_unknown_documents_are_absent(registry: Registry) -> None:
    assert openapi.v3_document_at(registry, "apis/nope/v1") is None
    with pytest.raises(KeyError):
        openapi.v3_document(registry, "nope", "v1")


# --- what kubectl reads -----------------------------------------------------------------------

def test_deployment_patch_has_single_gvk_field_validation_and_smp(registry: Registry) -> None:
    patch = openapi.v3_document(registry, "apps", "v1")["paths"][ITEM]["patch"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment",
                                                        "version": "v1"}
    names = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
    ok = patch["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/" + DEPLOYMENT}


def test_every_patch_operation_is_usable_by_kubectl(registry: Registry) -> None:
    for key, doc in _all_v3(registry).items():
        for path, item in doc["paths"].items():
            if "patch" not in item or item["patch"]["x-kubernetes-action"] == "connect":
                continue
            op = item["patch"]
            assert isinstance(op["x-kubernetes-group-version-kind"], dict), (key, path)
            assert any(p["name"] == "fieldValidation" and p["in"] == "query"
                       for p in op["parameters"]), (key, path)
            assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]


@pytest.mark.parametrize("method,operation_id,action", [
    ("post", "createAppsV1NamespacedDeployment", "post"),
    ("put", "replaceAppsV1NamespacedDeployment", "put"),
])
def test_writes_carry_the_write_parameters(registry: Registry, method: str, operation_id: str,
                                           action: str) -> None:
    paths = openapi.v3_document(registry, "apps", "v1")["paths"]
    op = paths[ITEM if method == "put" else ITEM.rsplit("/", 1)[0]][method]
    assert (op["operationId"], op["x-kubernetes-action"]) == (operation_id, action)
    assert {"fieldValidation", "dryRun", "fieldManager"} <= {p["name"] for p in op["parameters"]}
    assert op["requestBody"]["content"]["*/*"]["schema"]["$ref"].endswith(DEPLOYMENT)


def test_collection_watch_and_subresource_paths_are_published(registry: Registry) -> None:
    apps = openapi.v3_document(registry, "apps", "v1")["paths"]
    ids = {op["operationId"] for item in apps.values() for m, op in item.items()
           if m != "parameters"}
    assert {"listAppsV1NamespacedDeployment", "listAppsV1DeploymentForAllNamespaces",
            "deleteAppsV1CollectionNamespacedDeployment", "readAppsV1NamespacedDeployment",
            "deleteAppsV1NamespacedDeployment", "watchAppsV1NamespacedDeploymentList",
            "watchAppsV1NamespacedDeployment", "watchAppsV1DeploymentListForAllNamespaces",
            "readAppsV1NamespacedDeploymentStatus", "patchAppsV1NamespacedDeploymentScale"} <= ids
    scale = apps[ITEM + "/scale"]["patch"]["x-kubernetes-group-version-kind"]
    assert scale == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    core = openapi.v3_document(registry, "", "v1")["paths"]
    pod = "/api/v1/namespaces/{namespace}/pods/{name}"
    assert core[pod + "/exec"]["post"]["operationId"] == "connectCoreV1PostNamespacedPodExec"
    assert core[pod + "/log"]["get"]["operationId"] == "readCoreV1NamespacedPodLog"
    assert core[pod + "/eviction"]["post"]["x-kubernetes-group-version-kind"]["group"] == "policy"
    assert "/api/v1/nodes/{name}/proxy/{path}" in core
    assert core["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"] == \
        "replaceCoreV1NamespaceFinalize"


# --- schemas ----------------------------------------------------------------------------------

def test_schemas_keep_the_gvk_extension_as_an_array(registry: Registry) -> None:
    schemas = openapi.v3_document(registry, "apps", "v1")["components"]["schemas"]
    assert schemas[DEPLOYMENT]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    for name, s in schemas.items():
        assert isinstance(s.get("x-kubernetes-group-version-kind", []), list), name


def test_no_null_types_or_enum_values_anywhere(registry: Registry) -> None:
    for doc in [*_all_v3(registry).values(), openapi.v2_document(registry)]:
        for path, key, value in _walk(doc):
            if key == "type" and not isinstance(value, dict):   # dict: a property named type
                assert isinstance(value, str) and value != "null", path
            if key == "enum":
                assert None not in value, path


def test_every_ref_resolves_within_its_document(registry: Registry) -> None:
    docs = [(d, "#/components/schemas/", d["components"]["schemas"])
            for d in _all_v3(registry).values()]
    v2 = openapi.v2_document(registry)
    docs.append((v2, "#/definitions/", v2["definitions"]))
    for doc, prefix, defs in docs:
        # JSONSchemaProps (CRDs) has a property named "$ref": its value is a schema.
        refs = [v for _, k, v in _walk(doc) if k == "$ref" and isinstance(v, str)]
        assert refs
        for ref in refs:
            assert ref.startswith(prefix) and ref[len(prefix):] in defs, ref


def test_refs_with_siblings_are_wrapped_in_allof_in_v3_only(registry: Registry) -> None:
    v3 = openapi.v3_document(registry, "apps", "v1")["components"]["schemas"][DEPLOYMENT]
    assert v3["properties"]["spec"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}],
        "description": "Specification of the desired behavior of the Deployment."}
    v2 = openapi.v2_document(registry)["definitions"][DEPLOYMENT]
    assert v2["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"


def test_wrapper_types_take_the_published_forms(registry: Registry) -> None:
    v3 = openapi.v3_document(registry, "", "v1")["components"]["schemas"]
    ios, qty = ("io.k8s.apimachinery.pkg.util.intstr.IntOrString",
                "io.k8s.apimachinery.pkg.api.resource.Quantity")
    assert v3[ios]["format"] == "int-or-string"
    assert v3[ios]["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert v3[qty]["oneOf"] == [{"type": "string"}, {"type": "number"}]
    v2 = openapi.v2_document(registry)["definitions"]
    assert (v2[ios]["type"], v2[ios]["format"]) == ("string", "int-or-string")
    assert v2[qty]["type"] == "string"


def test_kind_and_api_version_carry_no_enum(registry: Registry) -> None:
    props = openapi.v3_document(registry, "apps", "v1")["components"]["schemas"][DEPLOYMENT][
        "properties"]
    assert "enum" not in props["apiVersion"] and "enum" not in props["kind"]
    assert props["apiVersion"]["type"] == "string"


def test_extensions_and_descriptions_are_kept(registry: Registry) -> None:
    pod_spec = openapi.v3_document(registry, "", "v1")["components"]["schemas"][
        "io.k8s.api.core.v1.PodSpec"]
    containers = pod_spec["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["description"].startswith("List of containers")
    assert "containers" in pod_spec["required"]


def test_documents_are_valid_openapi(registry: Registry) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi.v3_document(registry, "apps", "v1"))
    validator.validate(openapi.v3_document_at(registry, "version"))


def test_building_does_not_touch_the_schema(registry: Registry) -> None:
    source = json.dumps(schema.definitions()[DEPLOYMENT], sort_keys=True)
    openapi.v2_document(registry)
    openapi.v3_document(registry, "apps", "v1")
    assert json.dumps(schema.definitions()[DEPLOYMENT], sort_keys=True) == source


@pytest.fixture
def crontab() -> Iterator[Kind]:
    """A custom resource with its schema registered at run time, removed afterwards."""
    name = "com.example.stable.v1.CronTab"
    schema.add_definitions({name: {
        "type": ["object", "null"],
        "x-kubernetes-group-version-kind": [
            {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}],
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            "spec": {"type": "object", "properties": {"cronSpec": {"type": "string"}},
                     "x-kubernetes-preserve-unknown-fields": True}}}})
    yield Kind("stable.example.com", "v1", "CronTab", "crontabs", True, singular="crontab")
    schema._extra.pop(name, None)   # no public removal: CRD deletion is not built yet
    schema._gvk_index.cache_clear()


def test_custom_resources_get_documents_too(crontab: Kind) -> None:
    reg = Registry([*BUILTIN, crontab])
    paths = openapi.v3_index(reg)["paths"]
    assert "apis/stable.example.com/v1" in paths
    doc = openapi.v3_document(reg, "stable.example.com", "v1")
    patch = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"][
        "patch"]
    assert patch["operationId"] == "patchStableExampleComV1NamespacedCronTab"
    assert "com.example.stable.v1.CronTab" in doc["components"]["schemas"]


# --- the real kubectl -------------------------------------------------------------------------

_KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(_KUBECTL is None, reason="kubectl is not installed")


def _tls(directory: Path) -> bytes:
    """Write a server certificate for 127.0.0.1 signed by a fresh CA; return the CA's PEM."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "navio-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "navio")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(directory / "server.key", 0o600)
    return ca.public_bytes(serialization.Encoding.PEM)


def _status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


def _resource_list(reg: Registry, group: str, version: str) -> dict[str, Any]:
    resources = []
    for k in reg.in_group_version(group, version):
        resources.append({"name": k.plural, "singularName": k.singular,
                          "namespaced": k.namespaced, "kind": k.kind, "verbs": list(k.verbs),
                          "shortNames": list(k.short_names), "categories": list(k.categories)})
        for s in k.subresources:
            sub = {"name": f"{k.plural}/{s.name}", "singularName": "",
                   "namespaced": k.namespaced, "kind": s.kind or k.kind, "verbs": list(s.verbs)}
            if s.group is not None:
                sub |= {"group": s.group, "version": s.version}
            resources.append(sub)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


class MockServer:
    """Just enough of an API server for kubectl: /version, legacy discovery, OpenAPI, and
    deployments (GET: one live object or 404; POST/PATCH checked with fieldvalidation)."""

    def __init__(self, reg: Registry, live: dict[str, Any]) -> None:
        self.reg, self.live = reg, live
        self.requests: list[str] = []
        self.bodies: list[tuple[str, str]] = []
        self.agents: set[str] = set()
        self.lock = threading.Lock()

    def app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            with self.lock:
                self.requests.append(f"{request.method} {request.path_qs}")
                self.agents.add(request.headers.get("User-Agent", ""))
            response: web.StreamResponse = await handler(request)
            return response

        app = web.Application(middlewares=[record])
        r = app.router
        r.add_get("/version", self.version)
        r.add_get("/api", self.api)
        r.add_get("/apis", self.apis)
        r.add_get("/api/{v}", self.resources)
        r.add_get("/apis/{g}/{v}", self.resources)
        r.add_get("/openapi/v3", self.v3_index)
        r.add_get("/openapi/v3/{key:.+}", self.v3)
        r.add_get("/openapi/v2", self.v2)
        deploy = "/apis/apps/v1/namespaces/{ns}/deployments"
        r.add_get(deploy + "/{name}", self.get)
        r.add_post(deploy, self.create)
        r.add_patch(deploy + "/{name}", self.patch)
        return app

    async def version(self, _: web.Request) -> web.Response:
        return web.json_response({
            "major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "navio-test",
            "gitTreeState": "clean", "buildDate": "2025-04-22T00:00:00Z",
            "goVersion": "go1.23.8", "compiler": "gc", "platform": "linux/amd64"})

    async def api(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [
                                      {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})

    async def apis(self, _: web.Request) -> web.Response:
        groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}
                                           for v in vs],
                   "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                  for g, vs in self.reg.groups() if g]
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def resources(self, request: web.Request) -> web.Response:
        group, version = request.match_info.get("g", ""), request.match_info["v"]
        return web.json_response(_resource_list(self.reg, group, version))

    async def v3_index(self, _: web.Request) -> web.Response:
        return web.json_response(openapi.v3_index(self.reg))

    async def v2(self, _: web.Request) -> web.Response:
        # Served as 404 on purpose: any request for it means kubectl rejected the v3 document.
        return _status(404, "NotFound", "the server could not find the requested resource")

    async def v3(self, request: web.Request) -> web.Response:
        doc = openapi.v3_document_at(self.reg, request.match_info["key"])
        if doc is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        return web.json_response(doc)

    async def get(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == self.live["metadata"]["name"]:
            return web.json_response(self.live)
        return _status(404, "NotFound", f'deployments.apps "{name}" not found', name=name,
                       group="apps", kind="deployments")

    async def create(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            self.bodies.append((request.content_type, body.decode()))
        obj = json.loads(body)
        if (error := fieldvalidation.decode_error(obj, DEPLOYMENT)) is not None:
            return _status(400, "BadRequest", fieldvalidation.cannot_handle("Deployment", "v1",
                                                                            error))
        errs = fieldvalidation.strict_errors(fieldvalidation.unknown_fields(obj, DEPLOYMENT),
                                             fieldvalidation.duplicate_fields(body))
        if errs and request.query.get("fieldValidation") == "Strict":
            return _status(400, "BadRequest", fieldvalidation.cannot_handle(
                "Deployment", "v1", fieldvalidation.strict_decoding_error(errs)))
        return web.json_response(fieldvalidation.prune(obj, DEPLOYMENT), status=201)

    async def patch(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            self.bodies.append((request.content_type, body.decode()))
        return web.json_response(self.live)


class _Served:
    def __init__(self, mock: MockServer, kubeconfig: Path) -> None:
        self.mock, self.kubeconfig = mock, kubeconfig


def _serve(mock: MockServer, directory: Path, ready: threading.Event, box: dict[str, Any]
           ) -> None:
    async def main() -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(directory / "server.crt", directory / "server.key")
        runner = web.AppRunner(mock.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        stop = asyncio.Event()
        box["port"] = runner.addresses[0][1]
        box["stop"] = lambda: loop.call_soon_threadsafe(stop.set)
        ready.set()
        await stop.wait()
        await runner.cleanup()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    except BaseException as exc:    # surface it in the test instead of a 20 s wait
        box["error"] = exc
        ready.set()
        raise
    finally:
        loop.close()


LIVE = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "live"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "live"}},
                 "template": {"metadata": {"labels": {"app": "live"}},
                              "spec": {"containers": [{"name": "a", "image": "nginx"},
                                                      {"name": "b", "image": "redis"}]}}}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[_Served]:
    directory = tmp_path_factory.mktemp("mock-apiserver")
    ca = _tls(directory)
    live = json.loads(json.dumps(LIVE))
    live["metadata"] |= {"namespace": "default", "uid": "0b6e3d1c", "resourceVersion": "7",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                         json.dumps(LIVE) + "\n"}}
    mock = MockServer(registry, live)
    ready, box = threading.Event(), dict[str, Any]()
    thread = threading.Thread(target=_serve, args=(mock, directory, ready, box), daemon=True)
    thread.start()
    assert ready.wait(timeout=20), "gave up after 20s waiting for the mock API server to listen"
    assert "error" not in box, box.get("error")
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {
            "server": f"https://127.0.0.1:{box['port']}",
            "certificate-authority-data": base64.b64encode(ca).decode()}}],
        "users": [{"name": "test", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test",
                                                  "namespace": "default"}}]}))
    os.chmod(kubeconfig, 0o600)
    yield _Served(mock, kubeconfig)
    box["stop"]()
    thread.join(timeout=20)
    assert not thread.is_alive(), "gave up after 20s waiting for the mock API server to stop"


@pytest.fixture
def kubectl(served: _Served, tmp_path: Path) -> Any:
    """Run kubectl against the mock with a fresh HOME and discovery cache; clears the log."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "KUBECONFIG": str(served.kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache"),
           "NO_PROXY": "127.0.0.1"}
    with served.mock.lock:
        served.mock.requests.clear()
        served.mock.bodies.clear()
        served.mock.agents.clear()

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(_KUBECTL), *args], input=stdin, capture_output=True,
                              text=True, env=env, timeout=90, cwd=tmp_path)
    return run


@needs_kubectl
def test_kubectl_explain_renders_a_field(kubectl: Any, served: _Served) -> None:
    out = kubectl("explain", "deployment.spec.replicas")
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert lines[:3] == ["GROUP:      apps", "KIND:       Deployment", "VERSION:    v1"]
    assert "FIELD: replicas <integer>" in lines
    assert "Number of desired pods." in out.stdout
    # /version said 1.32, so the dispatcher ran the kubectl 1.32 binary.
    assert any(a.startswith("kubectl/v1.32.") for a in served.mock.agents), served.mock.agents
    assert any(r.startswith("GET /openapi/v3/apis/apps/v1?hash=") for r in served.mock.requests)
    assert not any(r.startswith("GET /openapi/v2") for r in served.mock.requests)


@needs_kubectl
def test_kubectl_explain_renders_a_list_of_objects(kubectl: Any) -> None:
    out = kubectl("explain", "pods.spec.containers")
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert lines[:2] == ["KIND:       Pod", "VERSION:    v1"]
    assert "FIELD: containers <[]Container>" in lines
    assert "List of containers belonging to the pod." in out.stdout
    assert "name\t<string> -required-" in out.stdout
    assert re.search(r"ports\t<\[\]ContainerPort>", out.stdout)


@needs_kubectl
def test_kubectl_explain_renders_int_or_string(kubectl: Any) -> None:
    out = kubectl("explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
    assert out.returncode == 0, out.stderr
    assert "FIELD: maxSurge <IntOrString>" in out.stdout


MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
        resources: {limits: {cpu: 500m, memory: 1Gi}}
"""
TYPO = MANIFEST.replace("image: nginx", "image: nginx\n        imagee: typo")


@needs_kubectl
def test_kubectl_client_dry_run_validates_with_v3_and_never_asks_for_v2(
        kubectl: Any, served: _Served, tmp_path: Path) -> None:
    (tmp_path / "deploy.yaml").write_text(MANIFEST)
    out = kubectl("apply", "--dry-run=client", "--validate=strict", "-f", "deploy.yaml", "-v=8")
    assert out.returncode == 0, out.stderr
    assert "deployment.apps/web created (dry run)" in out.stdout
    assert "/openapi/v3/apis/apps/v1?hash=" in out.stderr
    assert "falling back" not in out.stderr and "/openapi/v2" not in out.stderr
    assert not any(r.startswith("GET /openapi/v2") for r in served.mock.requests)
    assert not served.mock.bodies, "a client dry run must not write"


@needs_kubectl
def test_kubectl_leaves_unknown_fields_to_the_server_once_v3_says_it_validates(
        kubectl: Any, served: _Served, tmp_path: Path) -> None:
    """kubectl 1.32 checks a manifest against the schema itself only when the server does not
    advertise `fieldValidation` (cli-runtime ParamVerifyingSchema); with a complete v3 document
    a client dry run accepts the typo and the server's strict decoding rejects it."""
    (tmp_path / "typo.yaml").write_text(TYPO)
    client = kubectl("apply", "--dry-run=client", "--validate=strict", "-f", "typo.yaml")
    assert client.returncode == 0, client.stderr
    server = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "typo.yaml")
    assert server.returncode == 1
    assert server.stderr.strip() == (
        'Error from server (BadRequest): error when creating "typo.yaml": Deployment in version '
        '"v1" cannot be handled as a Deployment: strict decoding error: unknown field '
        '"spec.template.spec.containers[0].imagee"')
    posts = [r for r in served.mock.requests if r.startswith("POST ")]
    assert posts and all("fieldValidation=Strict" in r and "dryRun=All" in r for r in posts)
    assert not any(r.startswith("GET /openapi/v2") for r in served.mock.requests)


@needs_kubectl
def test_kubectl_apply_builds_the_strategic_merge_patch_from_v3(
        kubectl: Any, served: _Served, tmp_path: Path) -> None:
    changed = json.loads(json.dumps(LIVE))
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    (tmp_path / "live.json").write_text(json.dumps(changed))
    out = kubectl("apply", "--dry-run=server", "-f", "live.json")
    assert out.returncode == 0, out.stderr
    assert "deployment.apps/live configured (server dry run)" in out.stdout
    [(content_type, body)] = served.mock.bodies
    assert content_type == "application/strategic-merge-patch+json"
    spec = json.loads(body)["spec"]["template"]["spec"]
    assert spec["$setElementOrder/containers"] == [{"name": "a"}, {"name": "b"}]
    assert spec["containers"] == [{"image": "nginx:2", "name": "a"}]
    assert not any(r.startswith("GET /openapi/v2") for r in served.mock.requests)
