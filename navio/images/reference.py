"""Image references normalised as Kubernetes and containerd do (docker/distribution/reference).

`busybox` → `docker.io/library/busybox:latest`; `quay.io/x/y@sha256:…` keeps its digest;
`localhost:5000/app` keeps its registry (a first component with a `.` or `:` or equal to
`localhost` is a registry). Guarantees: `parse` accepts exactly the grammar of
distribution's reference package (lowercase repository, tag of ≤128 word characters,
`algorithm:hex` digest) and raises `InvalidReference` otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_REGISTRY", "DOCKER_HUB_API", "InvalidReference", "Reference", "parse"]

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"   # where docker.io's API lives
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
                     r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])"
                     r"(?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")


class InvalidReference(ValueError):
    """Not an image reference (the message says why, as kubelet's InvalidImageName)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised reference: `registry/repository[:tag][@digest]` (tag `latest` when
    neither a tag nor a digest was given)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def api_host(self) -> str:
        """The host serving this registry's HTTP API."""
        return DOCKER_HUB_API if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def object(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)


def parse(text: str) -> Reference:
    """Normalise `text` (kube's `docker.ParseDockerRef`)."""
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r}")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest in {text!r}")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag in {text!r}")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
        if not _DOMAIN.match(registry):
            raise InvalidReference(f"invalid registry in {text!r}")
    else:
        registry, path = DEFAULT_REGISTRY, rest
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    if not _PATH.match(path):
        raise InvalidReference(f"invalid reference format: repository name must be "
                               f"lowercase: {text!r}")
    if len(f"{registry}/{path}") > 255:
        raise InvalidReference(f"repository name too long: {text!r}")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry, path, tag, digest)
