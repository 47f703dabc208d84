"""Pulling images over the OCI distribution API (Docker Registry HTTP API v2).

Why: `image: nginx:1.27` must run on a node with nothing but network access to a registry.
The flow is containerd's: resolve the reference to a manifest (or index → the host
platform's manifest), fetch the config, fetch and unpack each layer the store lacks.

Auth: a 401 carries `WWW-Authenticate`. For `Bearer realm=…,service=…,scope=…` a token is
fetched from the realm (with the pull secret's username/password as basic auth, when there
is one) and the request retried; for `Basic` the credentials go straight to the registry.
Tokens are cached per (registry, repository) while they last.

Endpoints: a registry's mirrors (k3s-style registries.yaml `mirrors: {docker.io: {endpoint:
[…]}}`) are tried in order before the registry itself. Loopback registries and hosts listed
as insecure are spoken to over plain http, everything else over https.

Guarantees: every byte stored was checked against the digest that named it (manifests by
the reference's digest, configs and layers by the manifest's descriptors, layers once more
by the config's diff_ids). Errors are `PullError` with a message in containerd's words, which
the kubelet shows as the ErrImagePull message.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from navio.images import manifest as mf
from navio.images.reference import Reference
from navio.images.store import DigestMismatch, ImageRecord, ImageStore, sha256_digest

__all__ = ["Credential", "PullError", "RegistryClient", "RegistryConfig", "load_registry_config"]

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class PullError(Exception):
    """The image could not be pulled; str() is the message users see."""


@dataclass(frozen=True, slots=True)
class Credential:
    """Basic credentials for a registry (from a dockerconfigjson pull secret)."""

    username: str
    password: str

    def __repr__(self) -> str:   # never print secrets
        return f"Credential(username={self.username!r})"


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """`mirrors`: registry host → endpoint URLs tried first; `insecure`: hosts spoken to
    over http (loopback always is)."""

    mirrors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    insecure: tuple[str, ...] = ()
    timeout: float = 300.0


def load_registry_config(path: Path | None) -> RegistryConfig:
    """Read a k3s-shaped registries.yaml: mirrors.<host>.endpoint and
    configs.<host>.tls.insecure_skip_verify (here: speak plain http)."""
    if path is None or not Path(path).exists():
        return RegistryConfig()
    import yaml
    doc = yaml.safe_load(Path(path).read_text()) or {}
    mirrors = {str(h): tuple(str(e) for e in (m or {}).get("endpoint") or ())
               for h, m in (doc.get("mirrors") or {}).items()}
    insecure = tuple(str(h) for h, c in (doc.get("configs") or {}).items()
                     if ((c or {}).get("tls") or {}).get("insecure_skip_verify"))
    return RegistryConfig(mirrors=mirrors, insecure=insecure)


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") \
        else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _Unauthorized(PullError):
    pass


class _NotFound(PullError):
    pass


class _Session:
    """One pull from one endpoint with one credential (tokens cached by the client)."""

    def __init__(self, client: RegistryClient, http: aiohttp.ClientSession, base: str,
                 ref: Reference, cred: Credential | None) -> None:
        self.client, self.http, self.base, self.ref, self.cred = client, http, base, ref, cred

    def _auth_key(self) -> tuple[str, str, str]:
        return (self.base, self.ref.repository, self.cred.username if self.cred else "")

    def _basic(self) -> str:
        assert self.cred is not None
        raw = f"{self.cred.username}:{self.cred.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def _token(self, params: dict[str, str]) -> str:
        query = {"service": params.get("service", "")} if params.get("service") else {}
        query["scope"] = params.get("scope") or f"repository:{self.ref.repository}:pull"
        headers = {"Authorization": self._basic()} if self.cred else {}
        async with self.http.get(params["realm"], params=query, headers=headers) as resp:
            if resp.status != 200:
                what = "fetch oauth token" if self.cred else "fetch anonymous token"
                raise _Unauthorized(f"failed to authorize: failed to {what}: unexpected status "
                                    f"from GET request to {params['realm']}: {resp.status} "
                                    f"{resp.reason}")
            doc = await resp.json(content_type=None)
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise _Unauthorized("failed to authorize: the token server sent no token")
        return str(token)

    async def request(self, path: str, accept: str = "") -> aiohttp.ClientResponse:
        url = f"{self.base}/v2/{self.ref.repository}/{path}"
        headers = {"Accept": accept} if accept else {}
        auth = self.client._auth.get(self._auth_key())
        for attempt in range(2):
            if auth:
                headers["Authorization"] = auth
            resp = await self.http.get(url, headers=headers)
            if resp.status != 401 or attempt:
                break
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.release()
            scheme = challenge.split(" ", 1)[0].lower()
            if scheme == "bearer":
                auth = "Bearer " + await self._token(dict(_CHALLENGE.findall(challenge)))
            elif scheme == "basic" and self.cred is not None:
                auth = self._basic()
            else:
                break
            self.client._auth[self._auth_key()] = auth
        if resp.status in (401, 403):
            resp.release()
            raise _Unauthorized(f"pull access denied, repository does not exist or may require "
                                f"authorization: {resp.status} {resp.reason}")
        if resp.status == 404:
            resp.release()
            raise _NotFound(f"{self.ref}: not found")
        if resp.status != 200:
            resp.release()
            raise PullError(f"unexpected status from GET request to {url}: {resp.status} "
                            f"{resp.reason}")
        return resp

    async def manifest(self, obj: str, expect: str | None) -> tuple[bytes, str, str]:
        resp = await self.request(f"manifests/{obj}", mf.ACCEPT)
        async with resp:
            body = await resp.read()
            header = resp.headers.get("Content-Type", "")
        digest = sha256_digest(body)
        if expect is not None and digest != expect:
            raise PullError(f"manifest {obj}: content digest {digest} does not match {expect}")
        return body, header, digest

    async def blob(self, store: ImageStore, digest: str) -> Path:
        resp = await self.request(f"blobs/{digest}")
        tmp = store.temp_file()
        try:
            async with resp:
                with open(tmp, "wb") as f:
                    async for chunk in resp.content.iter_chunked(1 << 20):
                        f.write(chunk)
            return await asyncio.to_thread(store.ingest, tmp, digest)
        except DigestMismatch as exc:
            raise PullError(f"failed commit on ref {digest}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)

    async def pull(self, store: ImageStore) -> ImageRecord:
        ref = self.ref
        body, header, top = await self.manifest(ref.object, ref.digest)
        doc = json.loads(body)
        if mf.is_index(doc, header):
            store.put_blob(body)
            desc = mf.select_platform(doc)
            body, header, _ = await self.manifest(desc.digest, desc.digest)
        store.put_blob(body)
        config_desc, layers = mf.parse_manifest(body, header)
        if not store.has_blob(config_desc.digest):
            await self.blob(store, config_desc.digest)
        config_blob = store.read_blob(config_desc.digest)
        diff_ids = (json.loads(config_blob).get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layers):
            raise PullError(f"image config has {len(diff_ids)} diff_ids for {len(layers)} layers")
        for layer, diff_id in zip(layers, diff_ids):
            if store.has_layer(diff_id):
                continue
            await self.blob(store, layer.digest)
            try:
                await asyncio.to_thread(store.unpack_layer, layer.digest, diff_id)
            except (DigestMismatch, ValueError, OSError) as exc:
                raise PullError(f"failed to extract layer {diff_id}: {exc}") from None
        tags = [str(ref)] if ref.tag else []
        return await asyncio.to_thread(store.add, config_blob, tags=tags,
                                       repo_digests=[f"{ref.name}@{top}"])


class RegistryClient:
    def __init__(self, store: ImageStore, config: RegistryConfig | None = None) -> None:
        self.store = store
        self.config = config or RegistryConfig()
        self._auth: dict[tuple[str, str, str], str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def endpoints(self, ref: Reference) -> list[str]:
        host = ref.api_host
        scheme = "http" if _is_loopback(host) or ref.registry in self.config.insecure else "https"
        own = f"{scheme}://{host}"
        return [*(e.rstrip("/") for e in self.config.mirrors.get(ref.registry, ())), own]

    async def pull(self, ref: Reference, credentials: list[Credential] | tuple[()] = ()
                   ) -> ImageRecord:
        """Pull `ref` (mirrors first, each credential in turn; anonymous when none)."""
        async with self._locks.setdefault(str(ref), asyncio.Lock()):
            timeout = aiohttp.ClientTimeout(total=self.config.timeout, sock_connect=10)
            last: Exception | None = None
            async with aiohttp.ClientSession(timeout=timeout) as http:
                for base in self.endpoints(ref):
                    candidates: list[Credential | None] = [*credentials] or [None]
                    for cred in candidates:
                        try:
                            return await _Session(self, http, base, ref, cred).pull(self.store)
                        except (PullError, mf.ManifestError, DigestMismatch) as exc:
                            last = exc
                        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                            last = PullError(f"failed to do request: {base}: "
                                             f"{type(exc).__name__}: {exc}")
            prefix = (f'failed to pull and unpack image "{ref}": failed to resolve reference '
                      f'"{ref}": ' if isinstance(last, (_NotFound, _Unauthorized))
                      else f'failed to pull and unpack image "{ref}": ')
            raise PullError(prefix + str(last))
