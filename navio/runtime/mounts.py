"""Volumes for host-process containers: bind mounts in the container's private mount namespace.

Why: the process runtime has no images; a container sees the host's filesystem. A volume
(emptyDir, hostPath, and the files the kubelet materialises for configMap, secret and
downwardAPI) is a host path that must appear at the path the pod spec names. The container's
process gets its own mount namespace (unshare(CLONE_NEWNS), propagation made slave so nothing
leaks back to the host), and there each volume's host path is bind-mounted onto its container
path (read-only when asked), a fresh /proc is mounted for the pod's PID namespace and the pod's
/dev/shm is bound over the host's.

Guarantees:
- The host never sees a container's mounts. The only host-visible change is a *mount point*:
  a container path that does not exist is created empty (a directory, or an empty file when
  the volume is a file) by `prepare_mountpoints`, which returns what it created so the runtime
  can remove it with the container (`remove_mountpoints`, only if still empty and no other
  container uses it). Targets nested inside another volume are created inside that volume.
- Mounts are applied parents first (sorted by path depth), so `/data` and `/data/cache` work.
- emptyDir with medium Memory: `mount_tmpfs` puts a size-limited tmpfs on the kubelet's volume
  directory in the host mount namespace (as the kubelet does), shared by the pod's containers.

Fallback without root: no mount namespace can be made, so volumes are *not* mounted; the
runtime reports `Capabilities(mounts=False)` and the kubelet tells the user; the container
still gets its env and working dir.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from navio.runtime import namespaces as ns

__all__ = ["apply_in_child", "mount_tmpfs", "prepare_mountpoints", "remove_mountpoints",
           "unmount"]


def _ordered(mounts: Iterable[Sequence[object]]) -> list[tuple[str, str, bool]]:
    items = [(str(m[0]), os.path.normpath(str(m[1])), bool(m[2])) for m in mounts]
    return sorted(items, key=lambda m: m[1].count("/"))


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def prepare_mountpoints(mounts: Iterable[Sequence[object]]) -> list[str]:
    """Create missing mount points on the host for targets that are not nested in another
    volume; returns every path created (deepest last). Raises FileNotFoundError when a
    volume's host path is missing, ValueError when a container path is not absolute."""
    items = _ordered(mounts)
    for host, target, _ in items:   # check everything before changing anything
        if not os.path.isabs(target) or target == "/":
            raise ValueError(f"mount path {target!r} must be an absolute path below /")
        if not os.path.exists(host):
            raise FileNotFoundError(f"volume source {host} does not exist")
    created: list[str] = []
    for host, target, _ in items:
        if any(_inside(target, other) for _, other, _ in items if other != target):
            continue   # made by the child inside the enclosing volume
        created += _make_target(target, is_dir=os.path.isdir(host))
    return created


def _make_target(target: str, *, is_dir: bool) -> list[str]:
    created: list[str] = []
    parts = Path(target).parts
    for i in range(2, len(parts) + 1):
        p = str(Path(*parts[:i]))
        if os.path.lexists(p):
            continue
        if i < len(parts) or is_dir:
            os.mkdir(p, 0o755)
        else:
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
        created.append(p)
    return created


def remove_mountpoints(created: Iterable[str], in_use: set[str]) -> None:
    """Undo `prepare_mountpoints`: remove created paths (deepest first) that are still empty
    and are not a mount target of another container (`in_use`). Never raises."""
    for p in sorted(set(created), key=lambda s: -s.count("/")):
        if any(_inside(other, p) for other in in_use):
            continue
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)
            elif os.path.isfile(p) and os.path.getsize(p) == 0:
                os.unlink(p)
        except OSError:
            pass


def apply_in_child(mounts: Iterable[Sequence[object]], *, proc: bool, shm: str | None) -> None:
    """In a freshly forked container process: make a private mount namespace and mount the
    volumes. Must run before exec, in a single-threaded process."""
    ns.unshare(ns.CLONE_NEWNS)
    ns.mount(None, "/", None, ns.MS_REC | ns.MS_SLAVE)
    for host, target, read_only in _ordered(mounts):
        if not os.path.lexists(target):   # nested in another volume: create inside it
            _make_target(target, is_dir=os.path.isdir(host))
        ns.mount(host, target, None, ns.MS_BIND | ns.MS_REC)
        if read_only:
            ns.mount(None, target, None, ns.MS_BIND | ns.MS_REMOUNT | ns.MS_RDONLY)
    if shm and os.path.isdir(shm):
        ns.mount(shm, "/dev/shm", None, ns.MS_BIND)
    if proc:
        ns.mount("proc", "/proc", "proc", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)


def mount_tmpfs(path: str, size_bytes: int | None, *, mode: int = 0o777) -> None:
    """A tmpfs (emptyDir medium Memory) at `path` in the current mount namespace; idempotent."""
    os.makedirs(path, exist_ok=True)
    if os.path.ismount(path):
        return
    opts = f"mode={mode:o}" + (f",size={size_bytes}" if size_bytes else "")
    ns.mount("tmpfs", path, "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, opts)


def unmount(path: str) -> None:
    """Detach whatever is mounted at `path` (lazily); a no-op when nothing is."""
    if os.path.ismount(path):
        ns.umount(path, ns.MNT_DETACH)
