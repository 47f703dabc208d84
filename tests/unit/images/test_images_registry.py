"""The registry client against an in-process distribution API (issue 11): bearer-token auth
from WWW-Authenticate, basic auth, manifest-list platform choice, zstd layers, digest checks,
mirrors; and importing an OCI image layout."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import zstandard
from aiohttp import web

from navio.images import manifest as mf
from navio.images.archive import import_archive
from navio.images.reference import parse
from navio.images.registry import Credential, PullError, RegistryClient, RegistryConfig
from navio.images.store import ImageStore


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer() -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"world"))
    raw = buf.getvalue()
    return raw, zstandard.ZstdCompressor().compress(raw)


RAW, LAYER = _layer()
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                     "rootfs": {"type": "layers", "diff_ids": [_sha(RAW)]}}).encode()
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": _sha(CONFIG), "size": len(CONFIG)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                                   "digest": _sha(LAYER), "size": len(LAYER)}]}).encode()
OTHER = MANIFEST.replace(b'"schemaVersion"', b'"annotations": {"for": "s390x"}, "schemaVersion"')
# (OTHER is never fetched: wrong platform)
os_, arch, _ = mf.host_platform()
INDEX = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [
    {"mediaType": mf.OCI_MANIFEST, "digest": _sha(OTHER), "size": len(OTHER),
     "platform": {"os": "linux", "architecture": "s390x"}},
    {"mediaType": mf.OCI_MANIFEST, "digest": _sha(MANIFEST), "size": len(MANIFEST),
     "platform": {"os": os_, "architecture": arch}}]}).encode()


class FakeRegistry:
    """/v2/ of one repository `team/app` (tag `v1` = the index); `auth`: None, "bearer"
    (token realm at /token, which wants basic user:pass) or "basic"."""

    def __init__(self, auth: str | None, tamper: bool = False) -> None:
        self.auth = auth
        self.tamper = tamper
        self.requests: list[str] = []
        self.base = ""

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth is None:
            return True
        if self.auth == "bearer":
            return header == "Bearer tok-123"
        return header == "Basic " + base64.b64encode(b"user:pass").decode()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        if request.path == "/token":
            if request.headers.get("Authorization") != "Basic " + base64.b64encode(
                    b"user:pass").decode() or request.query.get("scope") != \
                    "repository:team/app:pull":
                return web.Response(status=401)
            return web.json_response({"token": "tok-123"})
        if not self._authorized(request):
            challenge = (f'Bearer realm="{self.base}/token",service="fake",'
                         f'scope="repository:team/app:pull"' if self.auth == "bearer"
                         else 'Basic realm="fake"')
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        blobs = {_sha(b): b for b in (CONFIG, LAYER)}
        manifests = {_sha(m): m for m in (MANIFEST, OTHER, INDEX)} | {"v1": INDEX}
        parts = request.path.split("/")
        if request.path.startswith("/v2/team/app/manifests/") and parts[-1] in manifests:
            body = manifests[parts[-1]]
            kind = mf.OCI_INDEX if body is INDEX else mf.OCI_MANIFEST
            return web.Response(body=body, content_type=kind)
        if request.path.startswith("/v2/team/app/blobs/") and parts[-1] in blobs:
            body = blobs[parts[-1]]
            return web.Response(body=body + (b"x" if self.tamper and body is LAYER else b""))
        return web.Response(status=404)


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    runners = []

    async def start(fake: FakeRegistry) -> str:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", fake.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]   # type: ignore[union-attr]
        fake.base = f"http://127.0.0.1:{port}"
        return f"127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("auth", [None, "bearer", "basic"])
async def test_a_pull_picks_the_platform_and_unpacks_a_zstd_layer(tmp_path: Path, serve,
                                                                  auth) -> None:
    fake = FakeRegistry(auth)
    host = await serve(fake)
    store = ImageStore(tmp_path)
    creds = [Credential("user", "pass")] if auth else []
    image = await RegistryClient(store).pull(parse(f"{host}/team/app:v1"), creds)
    assert image.repo_digests == (f"{host}/team/app@{_sha(INDEX)}",)
    assert image.repo_tags == (f"{host}/team/app:v1",)
    assert image.config["Cmd"] == ["/hello"]
    assert (store.layer_path(_sha(RAW)) / "hello").read_bytes() == b"world"
    assert f"/v2/team/app/manifests/{_sha(OTHER)}" not in fake.requests
    fake.requests.clear()   # pulled again: only the manifests are fetched
    await RegistryClient(store).pull(parse(f"{host}/team/app:v1"), creds)
    assert not [p for p in fake.requests if "/blobs/" in p]


async def test_a_registry_wanting_a_token_refuses_anonymous_pulls(tmp_path: Path,
                                                                 serve) -> None:
    host = await serve(FakeRegistry("bearer"))
    with pytest.raises(PullError, match="failed to fetch anonymous token"):
        await RegistryClient(ImageStore(tmp_path)).pull(parse(f"{host}/team/app:v1"))
    with pytest.raises(PullError, match="oauth token"):
        await RegistryClient(ImageStore(tmp_path)).pull(parse(f"{host}/team/app:v1"),
                                                        [Credential("user", "wrong")])


async def test_a_tampered_blob_is_refused(tmp_path: Path, serve) -> None:
    host = await serve(FakeRegistry(None, tamper=True))
    store = ImageStore(tmp_path)
    with pytest.raises(PullError, match="does not match digest"):
        await RegistryClient(store).pull(parse(f"{host}/team/app:v1"))
    assert store.images() == [] and not store.has_layer(_sha(RAW))


async def test_a_digest_reference_must_match_the_manifest(tmp_path: Path, serve) -> None:
    host = await serve(FakeRegistry(None))
    image = await RegistryClient(ImageStore(tmp_path)).pull(
        parse(f"{host}/team/app@{_sha(MANIFEST)}"))
    assert image.repo_tags == () and image.repo_digests == (f"{host}/team/app@{_sha(MANIFEST)}",)


async def test_an_unknown_tag_is_not_found(tmp_path: Path, serve) -> None:
    host = await serve(FakeRegistry(None))
    with pytest.raises(PullError, match=r'failed to resolve reference .*: not found'):
        await RegistryClient(ImageStore(tmp_path)).pull(parse(f"{host}/team/app:v2"))


async def test_mirrors_are_tried_before_the_registry(tmp_path: Path, serve) -> None:
    mirror = FakeRegistry(None)
    mirror_host = await serve(mirror)
    config = RegistryConfig(mirrors={"docker.io": ("http://127.0.0.1:9/", mirror.base)})
    client = RegistryClient(ImageStore(tmp_path), config)
    assert client.endpoints(parse("team/app"))[-1] == "https://registry-1.docker.io"
    image = await client.pull(parse("docker.io/team/app:v1"))
    assert image.repo_tags == ("docker.io/team/app:v1",) and mirror.requests
    assert mirror_host


def test_an_oci_layout_tarball_imports(tmp_path: Path) -> None:
    archive = tmp_path / "layout.tar"
    with tarfile.open(archive, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        for blob in (CONFIG, LAYER, MANIFEST, OTHER, INDEX):
            add(f"blobs/sha256/{_sha(blob)[7:]}", blob)
        add("index.json", json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": mf.OCI_INDEX, "digest": _sha(INDEX), "size": len(INDEX),
             "annotations": {"io.containerd.image.name": "example.com/team/app:v3"}}]}).encode())
    store = ImageStore(tmp_path / "store")
    [image] = import_archive(store, archive)
    assert image.repo_tags == ("example.com/team/app:v3",)
    assert store.resolve("example.com/team/app:v3").id == _sha(CONFIG)
    assert (store.layer_path(_sha(RAW)) / "hello").read_bytes() == b"world"
