"""EncryptedStore: secrets encrypted at rest over a real SQLiteStore, migration, rotation."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import AsyncIterator

import pytest

from navio.pki.privatefiles import KeyFileError
from navio.storage.encryption import (ENVELOPE_PREFIX, DecryptionError, EncryptedStore,
                                      key_name_of)
from navio.storage.encryptionconfig import load_config, new_key, save_config
from navio.storage.protocol import RevisionConflict
from navio.storage.sqlite import SQLiteStore

SECRET = "/registry/core/secrets/default/s1"
POD = "/registry/core/pods/default/p1"
MARKER = b'{"data":{"password":"bWFya2VyLXZhbHVlLTQy"},"marker":"plain-marker-77"}'


def raw_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[EncryptedStore, Path, Path]]:
    db = tmp_path / "state.db"
    cfg = tmp_path / "encryption-config.yaml"
    s = EncryptedStore(await SQLiteStore.open(db), cfg, reload_interval=0.05)
    yield s, db, cfg
    await s.close()


async def test_secret_values_are_encrypted_on_disk_and_read_back(env) -> None:
    s, db, cfg = env
    assert os.stat(cfg).st_mode & 0o777 == 0o600
    rev = await s.create(SECRET, MARKER)
    await s.create(POD, b'{"pod":"plain-pod-marker"}')
    assert (await s.get(SECRET))[1].value == MARKER
    raw = await s.inner.get(SECRET)
    assert raw[1].value.startswith(ENVELOPE_PREFIX + b"key1:")
    assert (await s.inner.get(POD))[1].value == b'{"pod":"plain-pod-marker"}'
    _, items, _ = await s.list("/registry/core/secrets/")
    assert [kv.value for kv in items] == [MARKER]
    rev2 = await s.update(SECRET, MARKER + b" ", expect_revision=rev)
    with pytest.raises(RevisionConflict) as exc:
        await s.update(SECRET, MARKER, expect_revision=rev)
    assert exc.value.current.value == MARKER + b" "
    _, deleted = await s.delete(SECRET, expect_revision=rev2)
    assert deleted.value == MARKER + b" "
    contents = raw_bytes(db)
    assert b"plain-marker-77" not in contents and b"bWFya2VyLXZhbHVlLTQy" not in contents
    assert b"plain-pod-marker" in contents   # the check above can fail


async def test_watch_sees_plain_values(env) -> None:
    s, _, _ = env
    rev0 = await s.current_revision()
    await s.create(SECRET, MARKER)
    batches = s.watch("/registry/core/", from_revision=rev0)
    batch = await asyncio.wait_for(batches.__anext__(), 10)
    await batches.aclose()
    assert batch[0].kv.value == MARKER


async def test_value_cannot_be_moved_to_another_key(env) -> None:
    s, _, _ = env
    await s.create(SECRET, MARKER)
    sealed = (await s.inner.get(SECRET))[1].value
    other = SECRET + "-copy"
    await s.inner.create(other, sealed)
    with pytest.raises(DecryptionError):
        await s.get(other)


async def test_plain_values_migrate_and_rotation_reencrypts(tmp_path: Path) -> None:
    db, cfg = tmp_path / "state.db", tmp_path / "enc.yaml"
    plain = await SQLiteStore.open(db)
    await plain.create(SECRET, MARKER)      # stored before encryption was on
    await plain.close()
    s = EncryptedStore(await SQLiteStore.open(db), cfg, reload_interval=0.05)
    try:
        assert (await s.get(SECRET))[1].value == MARKER
        assert await s.stale_keys() == [SECRET]
        s.start()

        async def settled(name: str) -> None:
            async with asyncio.timeout(20):
                while key_name_of((await s.inner.get(SECRET))[1].value) != name:
                    await asyncio.sleep(0.05)
        await settled("key1")
        # Rotate: key2 becomes primary, key1 still readable; the maintenance task re-encrypts.
        config = load_config(cfg)
        entry = config.entries[0]
        entry2 = dataclasses.replace(entry, keys=(new_key("key2"), *entry.keys))
        save_config(cfg, dataclasses.replace(config, entries=(entry2,)))
        await settled("key2")
        assert (await s.get(SECRET))[1].value == MARKER
        # Dropping key1 leaves everything readable.
        save_config(cfg, dataclasses.replace(config, entries=(
            dataclasses.replace(entry2, keys=entry2.keys[:1]),)))
        async with asyncio.timeout(10):
            while s.reload() or len(s._rules[0][1].aeads) != 1:
                await asyncio.sleep(0.05)
        assert (await s.get(SECRET))[1].value == MARKER
    finally:
        await s.close()


async def test_world_readable_config_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "enc.yaml"
    s = EncryptedStore(await SQLiteStore.open(tmp_path / "db"), cfg)
    await s.close()
    os.chmod(cfg, 0o644)
    with pytest.raises(KeyFileError, match=f"chmod 600 {cfg}"):
        load_config(cfg)
