"""The `oci` runtime's image service: pull, inspect, list, remove, garbage-collect.

Why: CRI splits a runtime into RuntimeService and ImageService; the kubelet's image manager
drives the latter (protocol.ImageService). This one fronts the node's ImageStore and the
registry client, turning their errors into the protocol's.

Guarantees: `pull_image` returns only once the image is complete in the store; an invalid
reference raises `InvalidImage`, any failure to pull `ImagePullFailure` with the
registry's/containerd's message; `garbage_collect` never removes an image a container
(running or not) still uses.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Sequence

from navio.images.reference import InvalidReference, parse
from navio.images.registry import Credential, PullError, RegistryClient
from navio.images.store import ImageRecord, ImageStore
from navio.runtime.protocol import ImageInfo, ImagePullFailure, InvalidImage, NotFound

__all__ = ["OciImages", "info_of"]


def info_of(record: ImageRecord) -> ImageInfo:
    return ImageInfo(id=record.id, repo_tags=record.repo_tags,
                     repo_digests=record.repo_digests, size=record.size)


class OciImages:
    def __init__(self, store: ImageStore, registry: RegistryClient,
                 in_use: Callable[[], set[str]]) -> None:
        self.store = store
        self.registry = registry
        self._in_use = in_use

    async def pull_image(self, image: str,
                         credentials: Sequence[tuple[str, str]] = ()) -> ImageInfo:
        try:
            ref = parse(image)
        except InvalidReference as exc:
            raise InvalidImage(str(exc)) from None
        try:
            record = await self.registry.pull(ref, [Credential(u, p) for u, p in credentials])
        except PullError as exc:
            raise ImagePullFailure(str(exc)) from None
        return info_of(record)

    async def image_status(self, image: str) -> ImageInfo | None:
        record = await asyncio.to_thread(self.store.resolve, image)
        return info_of(record) if record else None

    async def list_images(self) -> list[ImageInfo]:
        return [info_of(r) for r in await asyncio.to_thread(self.store.images)]

    async def remove_image(self, image: str) -> None:
        record = await asyncio.to_thread(self.store.resolve, image)
        if record is None:
            raise NotFound(f"image {image} not found")
        await asyncio.to_thread(self.store.remove, record.id)

    async def garbage_collect(self, high: float, low: float) -> list[str]:
        return await asyncio.to_thread(self.store.garbage_collect, high, low, self._in_use())
