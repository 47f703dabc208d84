"""The kubelet's image manager: pull policy, pull secrets, back-off (images/image_manager.go).

Why: before a container of a runtime with images (`oci`) is created, its image must be on
the node — and users read the outcome in the container's waiting reason and the pod's
events, in the kubelet's exact words:

    Pulling / Pulled          "Pulling image \"x\"", "Successfully pulled image \"x\" in 1.2s
                              (1.2s including waiting). Image size: N bytes."
    ErrImagePull              the registry's error; the next attempt waits 10 s, 20 s, ...
    ImagePullBackOff          "Back-off pulling image \"x\"" while that wait lasts
    ErrImageNeverPull         imagePullPolicy Never and the image is absent
    InvalidImageName          the reference cannot be parsed

Pull secrets (kubernetes.io/dockerconfigjson, .dockercfg) are matched to the image's
registry as the kubelet's credential keyring does (host[:port], optional path prefix,
`*.` wildcards; docker.io's `index.docker.io/v1/` key), each matching credential tried in
turn. Guarantees: credentials are never logged or put in events.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any, Awaitable, Callable, Mapping

from navio.kubelet.backoff import Backoff
from navio.runtime.protocol import ImagePullFailure, ImageService, InvalidImage, RuntimeFailure

__all__ = ["ERR_IMAGE_NEVER_PULL", "ERR_IMAGE_PULL", "IMAGE_PULL_BACKOFF", "INVALID_IMAGE_NAME",
           "ImageManager", "credentials_for"]

log = logging.getLogger(__name__)

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
INVALID_IMAGE_NAME = "InvalidImageName"
SecretLookup = Callable[[str, str], Awaitable[dict[str, Any] | None]]
EventFn = Callable[[Mapping[str, Any], str, str, str], None]


def _registry_and_path(image: str) -> tuple[str, str]:
    """(registry host, repository path) of an image as the keyring matches it."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", image
    path = path.split("@", 1)[0].rsplit(":", 1)[0] if ":" in path.split("/")[-1] or "@" in path \
        else path
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
    return registry, path


def _key_matches(key: str, registry: str, path: str) -> bool:
    key = key.split("://", 1)[-1].rstrip("/")
    host, _, prefix = key.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io") and prefix in ("v1", ""):
        host, prefix = "docker.io", ""
    if host.startswith("*."):
        if not registry.endswith(host[1:]) or registry.count(".") != host.count("."):
            return False
    elif host != registry:
        return False
    return not prefix or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def credentials_for(image: str, secrets: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(username, password) pairs of the pull secrets whose keys match the image, longest
    key first (the keyring's order)."""
    registry, path = _registry_and_path(image)
    found: list[tuple[int, str, str]] = []
    for secret in secrets:
        data = secret.get("data") or {}
        raw = data.get(".dockerconfigjson") or data.get(".dockercfg")
        if not raw:
            continue
        try:
            doc = json.loads(base64.b64decode(raw))
        except ValueError:
            continue
        auths = doc.get("auths", doc) if isinstance(doc, dict) else {}
        for key, entry in (auths or {}).items():
            if not isinstance(entry, dict) or not _key_matches(str(key), registry, path):
                continue
            user, password = entry.get("username"), entry.get("password")
            if (not user or password is None) and entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except ValueError:
                    continue
            if user:
                found.append((len(str(key)), str(user), str(password or "")))
    found.sort(key=lambda t: -t[0])
    return [(u, p) for _, u, p in found]


def _policy(spec: Mapping[str, Any]) -> str:
    if spec.get("imagePullPolicy"):
        return str(spec["imagePullPolicy"])
    image = str(spec.get("image") or "")
    last = image.split("/")[-1]
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


class ImageManager:
    def __init__(self, service: ImageService, *, event: EventFn, secret: SecretLookup,
                 backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self._event = event
        self._secret = secret
        self.backoff = backoff or Backoff(clock=clock)
        self._clock = clock
        self._failed_at: dict[str, float] = {}

    def retry_in(self, pod: Mapping[str, Any], spec: Mapping[str, Any]) -> float | None:
        """Seconds until the image of `spec` may be pulled again (None: not backing off)."""
        key = self._key(pod, spec)
        if key not in self._failed_at:
            return None
        return self.backoff.remaining(key, self._failed_at[key])

    @staticmethod
    def _key(pod: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
        return f"{(pod.get('metadata') or {}).get('uid')}/{spec.get('image')}"

    def forget(self, uid: str) -> None:
        self.backoff.forget(f"{uid}/")
        for key in [k for k in self._failed_at if k.startswith(f"{uid}/")]:
            del self._failed_at[key]

    async def _credentials(self, pod: Mapping[str, Any], image: str) -> list[tuple[str, str]]:
        namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
        secrets: list[Mapping[str, Any]] = []
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or ():
            name = (ref or {}).get("name")
            if not name:
                continue
            secret = await self._secret(namespace, str(name))
            if secret is None:
                log.info("pull secret not found", extra={"namespace": namespace})
                continue
            secrets.append(secret)
        return credentials_for(image, secrets)

    async def ensure(self, pod: Mapping[str, Any], spec: Mapping[str, Any]
                     ) -> tuple[str, str] | None:
        """Make sure the image of `spec` is present; (reason, message) when it is not."""
        image = str(spec.get("image") or "")
        policy = _policy(spec)
        try:
            present = await self.service.image_status(image) if image else None
        except RuntimeFailure:
            present = None
        if not image:
            return INVALID_IMAGE_NAME, "image is empty"
        if policy == "Never" and present is None:
            msg = f'Container image "{image}" is not present with pull policy of Never'
            self._event(pod, "Warning", ERR_IMAGE_NEVER_PULL, msg)
            return ERR_IMAGE_NEVER_PULL, msg
        if present is not None and policy != "Always":
            self._event(pod, "Normal", "Pulled",
                        f'Container image "{image}" already present on machine')
            return None
        key = self._key(pod, spec)
        failed = self._failed_at.get(key)
        if failed is not None and self.backoff.in_backoff_since(key, failed):
            msg = f'Back-off pulling image "{image}"'
            self._event(pod, "Normal", "BackOff", msg)
            return IMAGE_PULL_BACKOFF, msg
        self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        started = time.monotonic()
        try:
            info = await self.service.pull_image(image, await self._credentials(pod, image))
        except InvalidImage as exc:
            msg = (f'Failed to apply default image tag "{image}": couldn\'t parse image name '
                   f'"{image}": {exc}')
            self._event(pod, "Warning", "InspectFailed", msg)
            return INVALID_IMAGE_NAME, msg
        except (ImagePullFailure, RuntimeFailure) as exc:
            self._failed_at[key] = self._clock()
            self.backoff.next(key, self._failed_at[key])
            self._event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {exc}')
            return ERR_IMAGE_PULL, str(exc)
        self._failed_at.pop(key, None)
        took = time.monotonic() - started
        self._event(pod, "Normal", "Pulled",
                    f'Successfully pulled image "{image}" in {took:.3f}s ({took:.3f}s including '
                    f'waiting). Image size: {info.size} bytes.')
        return None
