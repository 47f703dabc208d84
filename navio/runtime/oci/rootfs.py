"""A container's root filesystem: an overlay of its image's layers, or a copy of them.

Why: every container needs its own writable root over shared, read-only layers. overlayfs
does it without copying (lowerdir = the layers, top first; upperdir/workdir in the
container's directory); where the kernel refuses the mount (no overlay, or a filesystem it
cannot stack on), the layers are merged into a private copy instead (layers.merge).

Guarantees: `mount_rootfs` returns "overlay" or "copy" and leaves a usable root at
`<dir>/rootfs`; `unmount_rootfs` is safe to repeat and after a crash, and leaves the image's
layers untouched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from navio.images.layers import merge
from navio.runtime import namespaces as ns

__all__ = ["mount_rootfs", "unmount_rootfs"]

_MNT_DETACH = 2


def mount_rootfs(directory: Path, layers: list[Path], *, allow_overlay: bool = True) -> str:
    root = directory / "rootfs"
    root.mkdir(parents=True, exist_ok=True)
    if allow_overlay and layers:
        upper, work = directory / "upper", directory / "work"
        upper.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        lower = ":".join(str(p) for p in reversed(layers))
        try:
            ns.mount("overlay", str(root), "overlay", 0,
                     f"lowerdir={lower},upperdir={upper},workdir={work}")
            return "overlay"
        except OSError:
            pass
    merge(layers, root)
    return "copy"


def unmount_rootfs(directory: Path) -> None:
    root = directory / "rootfs"
    if os.path.ismount(root):
        ns.umount(str(root), _MNT_DETACH)
    if os.path.ismount(root):   # never delete through a mount
        raise OSError(f"{root} is still mounted")
    for sub in ("rootfs", "upper", "work"):
        shutil.rmtree(directory / sub, ignore_errors=True)
