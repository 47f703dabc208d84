"""Manifests and indexes (OCI image-spec and Docker schema 2), and choosing a platform.

Why: a reference usually names a multi-platform index (OCI image index or Docker manifest
list); the node must pick the manifest for its own platform — `linux` and the host's
architecture, as containerd's default platform matcher does — then read the config and
layer descriptors from it.

Guarantees: `select_platform` returns the first exact os/architecture(/variant) match, then
the first os/architecture match, and raises `ManifestError` when there is none (never a
foreign platform); `parse_manifest` refuses media types it does not know.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from typing import Any

__all__ = ["ACCEPT", "Descriptor", "INDEX_TYPES", "MANIFEST_TYPES", "ManifestError",
           "host_platform", "is_index", "parse_manifest", "select_platform"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join(MANIFEST_TYPES + INDEX_TYPES)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


class ManifestError(ValueError):
    """A manifest the node cannot use (unknown type, no matching platform)."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) in OCI terms: linux/amd64 on x86_64."""
    machine = platform.machine().lower()
    variant = "v7" if machine == "armv7l" else "v8" if machine in ("aarch64", "arm64") else ""
    return "linux", _ARCH.get(machine, machine), variant


def media_type_of(doc: dict[str, Any], header: str = "") -> str:
    return str(doc.get("mediaType") or header.split(";")[0].strip()
               or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST))


def is_index(doc: dict[str, Any], header: str = "") -> bool:
    return media_type_of(doc, header) in INDEX_TYPES or (
        "manifests" in doc and "layers" not in doc)


def select_platform(index: dict[str, Any], want: tuple[str, str, str] | None = None
                    ) -> Descriptor:
    """The manifest of the index for `want` (default: this host)."""
    os_, arch, variant = want or host_platform()
    loose = None
    for entry in index.get("manifests") or ():
        plat = entry.get("platform") or {}
        if plat.get("os") != os_ or plat.get("architecture") != arch:
            continue
        desc = Descriptor(str(entry.get("mediaType") or OCI_MANIFEST), str(entry["digest"]),
                          int(entry.get("size", 0)))
        if not variant or plat.get("variant", variant) == variant:
            return desc
        loose = loose or desc
    if loose is not None:
        return loose
    found = sorted({f"{(e.get('platform') or {}).get('os')}/"
                    f"{(e.get('platform') or {}).get('architecture')}"
                    for e in index.get("manifests") or ()})
    raise ManifestError(f"no matching manifest for {os_}/{arch} in the manifest list "
                        f"entries (found: {', '.join(found) or 'none'})")


def parse_manifest(raw: bytes, header: str = "") -> tuple[Descriptor, list[Descriptor]]:
    """(config, layers) of an image manifest."""
    doc = json.loads(raw)
    kind = media_type_of(doc, header)
    if kind not in MANIFEST_TYPES:
        raise ManifestError(f"unsupported manifest media type {kind!r}")
    if doc.get("schemaVersion") != 2:
        raise ManifestError("only schema version 2 manifests are supported")
    cfg = doc.get("config") or {}
    config = Descriptor(str(cfg.get("mediaType", "")), str(cfg["digest"]), int(cfg.get("size", 0)))
    layers = []
    for layer in doc.get("layers") or ():
        mt = str(layer.get("mediaType", ""))
        if mt and mt not in LAYER_TYPES:
            raise ManifestError(f"unsupported layer media type {mt!r}")
        layers.append(Descriptor(mt, str(layer["digest"]), int(layer.get("size", 0))))
    return config, layers
