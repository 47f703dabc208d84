"""`--runtime auto`: oci where runc is installed and the agent is root, else process (#11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from navio.kubelet import runtimes
from navio.kubelet.config import AgentConfig


def _config(tmp_path: Path, **kw) -> AgentConfig:
    return AgentConfig(node_name="n", kubeconfig=tmp_path / "kc", root_dir=tmp_path, **kw)


@pytest.mark.parametrize("root,runc,isolation,expected", [
    (True, "/usr/sbin/runc", None, "oci"),
    (True, None, None, "process"),
    (False, "/usr/sbin/runc", None, "process"),
    (True, "/usr/sbin/runc", False, "process"),
])
def test_auto_picks_oci_only_where_it_can_run(tmp_path: Path, monkeypatch, root, runc,
                                              isolation, expected) -> None:
    from navio.runtime import namespaces
    from navio.runtime.oci import runtime as oci
    monkeypatch.setattr(namespaces, "available", lambda: root)
    monkeypatch.setattr(oci, "runc_available", lambda *a: runc)
    config = _config(tmp_path, runtime="auto", isolation=isolation)
    assert runtimes.resolve_runtime(config) == expected


@pytest.mark.parametrize("choice", ["oci", "process", "sim"])
def test_an_explicit_runtime_stands(tmp_path: Path, choice: str) -> None:
    assert runtimes.resolve_runtime(_config(tmp_path, runtime=choice)) == choice


def test_image_gc_thresholds_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image GC thresholds"):
        _config(tmp_path, image_gc_high_threshold=70, image_gc_low_threshold=80)


def test_node_images_are_largest_first_named_by_digest_then_tag() -> None:
    from navio.runtime.protocol import ImageInfo
    found = runtimes.node_images([
        ImageInfo("sha256:a", ("r/a:1",), ("r/a@sha256:1",), 10),
        ImageInfo("sha256:b", (), (), 30)] + [ImageInfo(f"sha256:{i}", size=1) for i in range(60)])
    assert found[0] == {"names": ["sha256:b"], "sizeBytes": 30}
    assert found[1] == {"names": ["r/a@sha256:1", "r/a:1"], "sizeBytes": 10}
    assert len(found) == 50
