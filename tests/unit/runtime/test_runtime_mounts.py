"""Mount points for volumes (mounts.py): what is created on the host, and undone."""

from __future__ import annotations

from pathlib import Path

import pytest

from navio.runtime.mounts import prepare_mountpoints, remove_mountpoints


def test_missing_targets_are_created_and_removed_again(tmp_path: Path) -> None:
    vol, key = tmp_path / "vol", tmp_path / "key"
    vol.mkdir()
    key.write_text("k")
    root = tmp_path / "ctr"
    created = prepare_mountpoints([(str(vol), str(root / "data"), False),
                                   (str(key), str(root / "etc" / "key"), True),
                                   (str(vol), str(root / "data" / "nested"), False)])
    assert created == [str(root), str(root / "data"), str(root / "etc"), str(root / "etc" / "key")]
    assert (root / "etc" / "key").is_file() and (root / "data").is_dir()
    assert not (root / "data" / "nested").exists()   # made inside the volume, by the child
    remove_mountpoints(created, in_use=set())
    assert not root.exists()


def test_mount_points_another_container_uses_are_kept(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    created = prepare_mountpoints([(str(vol), str(tmp_path / "a" / "b"), False)])
    remove_mountpoints(created, in_use={str(tmp_path / "a" / "b")})
    assert (tmp_path / "a" / "b").is_dir()


def test_existing_paths_and_non_empty_ones_are_never_removed(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (tmp_path / "exists").mkdir()
    created = prepare_mountpoints([(str(vol), str(tmp_path / "exists" / "new"), False)])
    assert created == [str(tmp_path / "exists" / "new")]
    (tmp_path / "exists" / "new" / "file").write_text("someone wrote here")
    remove_mountpoints(created, in_use=set())
    assert (tmp_path / "exists" / "new" / "file").exists()


@pytest.mark.parametrize(("source", "target", "error"), [
    ("missing", "/abs/target", FileNotFoundError),
    ("vol", "relative/target", ValueError),
    ("vol", "/", ValueError),
], ids=["a missing volume source", "a relative container path", "the root itself"])
def test_bad_mounts_are_refused_before_anything_is_created(
        tmp_path: Path, source: str, target: str, error: type[Exception]) -> None:
    (tmp_path / "vol").mkdir()
    good = str(tmp_path / "never" / "made")
    with pytest.raises(error):
        prepare_mountpoints([(str(tmp_path / "vol"), good, False),
                             (str(tmp_path / source), target, False)])
    assert not (tmp_path / "never").exists()
