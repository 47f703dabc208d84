"""Encryption at rest: a Store that encrypts the values of chosen resources (secrets).

Why: a copy of the database file (a backup, a stolen disk, `strings state.db`) must not reveal
secret data. kube-apiserver does this with its storage transformers; navio does the same, below
the API server and above any backend, as a wrapper around the `Store` protocol.

Guarantees:
- Values under an encrypted prefix are written as kube's aesgcm envelope:
  `k8s:enc:aesgcm:v1:<key name>:` + 12-byte random nonce + AES-GCM ciphertext and tag, with the
  storage key as additional authenticated data (a value cannot be moved to another key).
- Reads accept every configured key and, while `identity` is listed, plain values (values
  written before encryption was on); everything else passes through untouched.
- The configuration file (encryptionconfig.py) is re-read when it changes, without a restart;
  when its primary key is not the one a value was written with (a rotation, or a plain value),
  `reencrypt()` rewrites that value under the primary key. It runs on start and after each
  reload, one conditional update per value, so it is safe to interrupt (kill -9) and repeat.
- A value under a key no longer configured raises DecryptionError, never returns ciphertext.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
from pathlib import Path
from typing import Any, AsyncIterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from navio.pki.privatefiles import KeyFileError
from navio.storage.encryptionconfig import (EncryptionConfig, ResourceEncryption,
                                            load_or_create_config)
from navio.storage.protocol import (KeyNotFound, KeyValue, RevisionConflict, StorageError,
                                    Store, StoreEvent, WatchBatch)

__all__ = ["EncryptedStore", "DecryptionError", "ENVELOPE_PREFIX", "key_name_of"]

log = logging.getLogger(__name__)

ENVELOPE_PREFIX = b"k8s:enc:aesgcm:v1:"
_NONCE = 12


class DecryptionError(StorageError):
    """A stored value could not be decrypted with the configured keys."""


def key_name_of(value: bytes) -> str | None:
    """The aesgcm key name a stored value was written with; None for a plain value."""
    if not value.startswith(ENVELOPE_PREFIX):
        return None
    name, sep, _ = value[len(ENVELOPE_PREFIX):].partition(b":")
    return name.decode("utf-8", "replace") if sep else None


def _where(key: str) -> str:
    """The resource part of a storage key: errors never carry object (secret) names."""
    return "/".join(key.split("/")[:4]) + "/"


class _Transformer:
    """Encrypt/decrypt for one `resources` entry."""

    def __init__(self, entry: ResourceEncryption) -> None:
        self.entry = entry
        self.aeads = {k.name: AESGCM(k.secret) for k in entry.keys}
        self.primary = entry.keys[0].name if entry.keys and entry.encrypt else None

    def encrypt(self, key: str, value: bytes) -> bytes:
        if self.primary is None:
            return value
        nonce = os.urandom(_NONCE)
        sealed = self.aeads[self.primary].encrypt(nonce, value, key.encode())
        return ENVELOPE_PREFIX + self.primary.encode() + b":" + nonce + sealed

    def decrypt(self, key: str, value: bytes) -> tuple[bytes, bool]:
        """(plain value, stale): stale when not written under the primary key."""
        name = key_name_of(value)
        if name is None:
            if not self.entry.identity:
                raise DecryptionError(f"{_where(key)}: a value stored unencrypted and no "
                                      "identity provider is configured")
            return value, self.primary is not None
        aead = self.aeads.get(name)
        if aead is None:
            raise DecryptionError(f"{_where(key)}: a value encrypted with key {name!r}, "
                                  "which is not configured")
        body = value[len(ENVELOPE_PREFIX) + len(name.encode()) + 1:]
        try:
            plain = aead.decrypt(body[:_NONCE], body[_NONCE:], key.encode())
        except (InvalidTag, ValueError):
            raise DecryptionError(f"{_where(key)}: a value does not authenticate under "
                                  f"key {name!r}") from None
        return plain, name != self.primary


class EncryptedStore:
    """`Store` whose values under the configured prefixes are encrypted (see module doc)."""

    def __init__(self, inner: Store, config_path: Path, *, reload_interval: float = 1.0
                 ) -> None:
        self.inner = inner
        self.config_path = config_path
        self.reload_interval = reload_interval
        self._stamp: tuple[int, int, int] | None = None
        self._rules: list[tuple[str, _Transformer]] = []
        self._task: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()
        self.reload()

    # -- configuration -------------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read the configuration if the file changed; True when it did."""
        st = self.config_path.stat() if self.config_path.exists() else None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino) if st else None
        if stamp is not None and stamp == self._stamp:
            return False
        config: EncryptionConfig = load_or_create_config(self.config_path)
        if stamp is None:
            st = self.config_path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        self._rules = [(p, _Transformer(e)) for e in config.entries for p in e.prefixes]
        self._stamp = stamp
        log.info("encryption configuration loaded", extra={
            "file": str(self.config_path), "primary": ",".join(
                f"{p}={t.primary or 'identity'}" for p, t in self._rules)})
        self._dirty.set()
        return True

    def start(self) -> None:
        """Watch the configuration and re-encrypt stale values (now, and after changes)."""
        if self._task is None:
            self._task = asyncio.create_task(self._maintain(), name="encryption maintenance")

    async def _maintain(self) -> None:
        while True:
            try:
                if self._dirty.is_set():
                    self._dirty.clear()
                    n = await self.reencrypt()
                    if n:
                        log.info("re-encrypted stored values", extra={"count": n})
                await asyncio.sleep(self.reload_interval)
                self.reload()
            except asyncio.CancelledError:
                raise
            except (KeyFileError, OSError, StorageError) as exc:
                log.error("encryption maintenance failed; retrying",
                          extra={"error": str(exc)})
                self._dirty.set()
                await asyncio.sleep(self.reload_interval * 5)

    def _rule(self, key: str) -> _Transformer | None:
        for prefix, t in self._rules:
            if key.startswith(prefix):
                return t
        return None

    def _touches(self, prefix: str) -> bool:
        return any(p.startswith(prefix) or prefix.startswith(p) for p, _ in self._rules)

    # -- value transforms ----------------------------------------------------------------------
    def _seal(self, key: str, value: bytes) -> bytes:
        t = self._rule(key)
        return value if t is None else t.encrypt(key, value)

    def _open(self, kv: KeyValue | None) -> KeyValue | None:
        if kv is None:
            return None
        t = self._rule(kv.key)
        if t is None:
            return kv
        plain, _ = t.decrypt(kv.key, kv.value)
        return KeyValue(kv.key, plain, kv.create_revision, kv.mod_revision)

    def _open_event(self, ev: StoreEvent) -> StoreEvent:
        if self._rule(ev.kv.key) is None:
            return ev
        try:
            prev = self._open(ev.prev)
        except DecryptionError:   # history under a key since dropped: the old value is gone
            prev = None
        kv = self._open(ev.kv)
        assert kv is not None
        return StoreEvent(ev.type, kv, prev)

    # -- the Store protocol --------------------------------------------------------------------
    async def get(self, key: str) -> tuple[int, KeyValue | None]:
        rev, kv = await self.inner.get(key)
        return rev, self._open(kv)

    async def list(self, prefix: str, *, revision: int = 0, start: str = "",
                   limit: int = 0) -> tuple[int, list[KeyValue], bool]:
        rev, items, more = await self.inner.list(prefix, revision=revision, start=start,
                                                 limit=limit)
        if self._touches(prefix):
            items = [kv for kv in map(self._open, items) if kv is not None]
        return rev, items, more

    async def count(self, prefix: str) -> tuple[int, int]:
        return await self.inner.count(prefix)

    async def create(self, key: str, value: bytes) -> int:
        return await self.inner.create(key, self._seal(key, value))

    async def update(self, key: str, value: bytes, *, expect_revision: int) -> int:
        try:
            return await self.inner.update(key, self._seal(key, value),
                                           expect_revision=expect_revision)
        except RevisionConflict as exc:
            raise RevisionConflict(key, self._open(exc.current)) from None

    async def delete(self, key: str, *, expect_revision: int = 0) -> tuple[int, KeyValue]:
        try:
            rev, kv = await self.inner.delete(key, expect_revision=expect_revision)
        except RevisionConflict as exc:
            raise RevisionConflict(key, self._open(exc.current)) from None
        opened = self._open(kv)
        assert opened is not None
        return rev, opened

    async def watch(self, prefix: str, *, from_revision: int, progress: bool = False,
                    progress_on_request: bool = False) -> AsyncIterator[WatchBatch]:
        # (request_progress passes through __getattr__; the two go together.)
        source = self.inner.watch(prefix, from_revision=from_revision, progress=progress,
                                  progress_on_request=progress_on_request)
        async with contextlib.aclosing(source):  # type: ignore[type-var]
            async for batch in source:
                if batch and self._touches(prefix):
                    batch = WatchBatch([self._open_event(e) for e in batch], batch.revision)
                yield batch

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Backend extras (start_compactor, metrics counters) pass through.
        return getattr(self.inner, name)

    # -- rotation ------------------------------------------------------------------------------
    async def stale_keys(self) -> builtins.list[str]:
        """Keys whose live value is not under its primary key (plain or an older key)."""
        out: builtins.list[str] = []
        for prefix, t in self._rules:
            start = ""
            while True:
                _, items, more = await self.inner.list(prefix, start=start, limit=500)
                for kv in items:
                    if t.primary is None:
                        continue
                    if key_name_of(kv.value) != t.primary:
                        out.append(kv.key)
                if not more or not items:
                    break
                start = items[-1].key + "\x00"
        return out

    async def reencrypt(self) -> int:
        """Rewrite every live value not under its primary key; returns how many. Each is one
        conditional update of the same plain value, so a concurrent write simply wins."""
        done = 0
        for key in await self.stale_keys():
            _, kv = await self.inner.get(key)
            t = self._rule(key)
            if kv is None or t is None:
                continue
            plain, stale = t.decrypt(key, kv.value)
            if not stale:
                continue
            try:
                await self.inner.update(key, t.encrypt(key, plain),
                                        expect_revision=kv.mod_revision)
                done += 1
            except (RevisionConflict, KeyNotFound):
                continue
        return done
