"""The process runtime's on-disk state: what exists, so a restarted agent can re-attach.

Why: containers outlive the agent (issue 7: "node restart: the agent reconciles running
processes it started before — no duplicates, no orphans"). Everything the runtime needs to find,
stop and clean up a sandbox or container after a `kill -9` lives here, never only in memory.

Layout (all under the state dir, 0700; files 0600 because a container's config holds its env):

    owner.lock                         flock held by the one runtime using this dir
    ipam.json                          pod IP allocations (ipam.py)
    sandboxes/<id>/sandbox.json        the sandbox record, written *before* any resource exists
    sandboxes/<id>/pause.json          the pause's pid and start time, written by the pause
    sandboxes/<id>/pause.log, shm/     the pause's diagnostics; the pod's /dev/shm (a tmpfs)
    containers/<id>/container.json     the container record (agent-owned)
    containers/<id>/config.json        argv, env, mounts, cgroups: what the supervisor runs
    containers/<id>/status.json        written only by the container's supervisor
    containers/<id>/supervisor.log     the supervisor's own diagnostics

Guarantees: every write is atomic (temp file + rename), so a reader sees the old or the new
record, never a torn one; a record that fails to parse is treated as absent. Each file has one
writer (agent or supervisor), so there are no write-write races. While a StateDir is open (it
then owns the directory), the agent-owned records (sandbox.json, container.json) are also
kept in memory, read once at `open`: lookups cost no file reads (a burst of pods would
otherwise read every record once per pod), and callers get copies they may change.
Supervisor-written files (status.json) are always read from disk.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["StateDir", "StateLocked", "read_json", "write_json"]


class StateLocked(RuntimeError):
    """Another live runtime owns this state dir."""


def write_json(path: Path | str, obj: Any, *, mode: int = 0o600) -> None:
    """Atomically replace `path` with `obj` as JSON."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: Path | str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            value = json.load(f)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class StateDir:
    """Paths and records under one runtime state directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock_fd: int | None = None
        # id -> record (None: a directory without a readable record); None while not open.
        self._sandboxes: dict[str, dict[str, Any] | None] | None = None
        self._containers: dict[str, dict[str, Any] | None] | None = None

    def open(self) -> None:
        """Create the layout and take the owner lock (released by `close` or process death)."""
        for d in (self.root, self.root / "sandboxes", self.root / "containers"):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / "owner.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateLocked(f"state dir {self.root} is in use by another runtime") from None
        self._lock_fd = fd
        self._sandboxes = {i: read_json(self.sandbox_dir(i) / "sandbox.json")
                           for i in _ids(self.root / "sandboxes")}
        self._containers = {i: read_json(self.container_dir(i) / "container.json")
                            for i in _ids(self.root / "containers")}

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._sandboxes = self._containers = None

    # ---- sandboxes ----------------------------------------------------------------------

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / sandbox_id

    def sandbox_ids(self) -> list[str]:
        if self._sandboxes is not None:
            return sorted(self._sandboxes)
        return _ids(self.root / "sandboxes")

    def load_sandbox(self, sandbox_id: str) -> dict[str, Any] | None:
        if not _valid(sandbox_id):
            return None
        if self._sandboxes is not None:
            return copy.deepcopy(self._sandboxes.get(sandbox_id))
        return read_json(self.sandbox_dir(sandbox_id) / "sandbox.json")

    def sandbox_of_pod(self, uid: str) -> list[str]:
        """Ids of the sandboxes recorded for pod `uid`."""
        if self._sandboxes is not None:
            return sorted(i for i, r in self._sandboxes.items() if r and r.get("uid") == uid)
        recs = ((i, self.load_sandbox(i)) for i in self.sandbox_ids())
        return [i for i, r in recs if r and r.get("uid") == uid]

    def save_sandbox(self, record: dict[str, Any]) -> None:
        d = self.sandbox_dir(record["id"])
        d.mkdir(mode=0o700, exist_ok=True)
        write_json(d / "sandbox.json", record)
        if self._sandboxes is not None:
            self._sandboxes[record["id"]] = copy.deepcopy(record)

    def delete_sandbox(self, sandbox_id: str) -> None:
        if _valid(sandbox_id):
            shutil.rmtree(self.sandbox_dir(sandbox_id), ignore_errors=True)
            if self._sandboxes is not None:
                self._sandboxes.pop(sandbox_id, None)

    # ---- containers ---------------------------------------------------------------------

    def container_dir(self, container_id: str) -> Path:
        return self.root / "containers" / container_id

    def container_ids(self, sandbox_id: str | None = None) -> list[str]:
        """All container ids, or those of `sandbox_id`'s containers."""
        if self._containers is not None:
            return sorted(i for i, r in self._containers.items()
                          if sandbox_id is None or (r and r.get("sandbox_id") == sandbox_id))
        ids = _ids(self.root / "containers")
        if sandbox_id is None:
            return ids
        recs = ((i, self.load_container(i)) for i in ids)
        return [i for i, r in recs if r and r.get("sandbox_id") == sandbox_id]

    def load_container(self, container_id: str) -> dict[str, Any] | None:
        if not _valid(container_id):
            return None
        if self._containers is not None:
            return copy.deepcopy(self._containers.get(container_id))
        return read_json(self.container_dir(container_id) / "container.json")

    def save_container(self, record: dict[str, Any]) -> None:
        d = self.container_dir(record["id"])
        d.mkdir(mode=0o700, exist_ok=True)
        write_json(d / "container.json", record)
        if self._containers is not None:
            self._containers[record["id"]] = copy.deepcopy(record)

    def save_container_config(self, container_id: str, config: dict[str, Any]) -> Path:
        path = self.container_dir(container_id) / "config.json"
        write_json(path, config)
        return path

    def load_container_config(self, container_id: str) -> dict[str, Any] | None:
        return read_json(self.container_dir(container_id) / "config.json")

    def status_path(self, container_id: str) -> Path:
        return self.container_dir(container_id) / "status.json"

    def load_status(self, container_id: str) -> dict[str, Any] | None:
        return read_json(self.status_path(container_id)) if _valid(container_id) else None

    def delete_container(self, container_id: str) -> None:
        if _valid(container_id):
            shutil.rmtree(self.container_dir(container_id), ignore_errors=True)
            if self._containers is not None:
                self._containers.pop(container_id, None)


def _valid(ident: str) -> bool:
    # ids are ours (hex); anything else must never become a path.
    return bool(ident) and ident.isalnum() and len(ident) <= 64


def _ids(d: Path) -> list[str]:
    try:
        return sorted(p.name for p in d.iterdir() if p.is_dir() and _valid(p.name))
    except FileNotFoundError:
        return []
