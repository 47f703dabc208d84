"""Choosing the host platform's manifest from an index; reading manifests (issue 11)."""

from __future__ import annotations

import json

import pytest

from navio.images import manifest as mf


def _index(*platforms: tuple[str, str, str]) -> dict:
    return {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": f"sha256:{i:064x}", "size": 1,
         "platform": {"os": o, "architecture": a, **({"variant": v} if v else {})}}
        for i, (o, a, v) in enumerate(platforms)]}


def test_the_host_platform_is_chosen_from_an_index() -> None:
    index = _index(("linux", "arm64", "v8"), ("windows", "amd64", ""), ("linux", "amd64", ""))
    assert mf.select_platform(index, ("linux", "amd64", "")).digest == f"sha256:{2:064x}"
    assert mf.select_platform(index, ("linux", "arm64", "v8")).digest == f"sha256:{0:064x}"


def test_a_variant_mismatch_still_matches_os_and_architecture() -> None:
    index = _index(("linux", "arm", "v6"), ("linux", "arm", "v7"))
    assert mf.select_platform(index, ("linux", "arm", "v7")).digest == f"sha256:{1:064x}"
    assert mf.select_platform(index, ("linux", "arm", "v5")).digest == f"sha256:{0:064x}"


def test_no_foreign_platform_is_ever_chosen() -> None:
    with pytest.raises(mf.ManifestError, match="no matching manifest for linux/amd64"):
        mf.select_platform(_index(("linux", "arm64", "")), ("linux", "amd64", ""))


def test_host_platform_is_linux_and_go_architecture_names() -> None:
    os_, arch, _ = mf.host_platform()
    assert os_ == "linux" and arch in ("amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64")


@pytest.mark.parametrize("media_type", [mf.OCI_MANIFEST, mf.DOCKER_MANIFEST])
def test_oci_and_docker_schema2_manifests_are_read(media_type: str) -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": media_type,
                      "config": {"mediaType": "x", "digest": "sha256:" + "1" * 64, "size": 3},
                      "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar"
                                                ".gzip", "digest": "sha256:" + "2" * 64,
                                  "size": 9}]}).encode()
    config, layers = mf.parse_manifest(raw)
    assert config.digest.endswith("1" * 64) and [d.size for d in layers] == [9]


def test_unknown_manifest_and_layer_types_are_refused() -> None:
    with pytest.raises(mf.ManifestError):
        mf.parse_manifest(json.dumps({"schemaVersion": 1, "mediaType": "x/y"}).encode())
    with pytest.raises(mf.ManifestError, match="layer media type"):
        mf.parse_manifest(json.dumps({
            "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
            "config": {"digest": "sha256:" + "1" * 64},
            "layers": [{"mediaType": "application/x-weird", "digest": "sha256:" + "2" * 64}],
        }).encode())
