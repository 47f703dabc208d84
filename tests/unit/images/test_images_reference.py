"""Image references normalised as Kubernetes does (issue 11)."""

from __future__ import annotations

import pytest

from navio.images.reference import InvalidReference, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text,expected", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("user/app", "docker.io/user/app:latest"),
    ("docker.io/nginx", "docker.io/library/nginx:latest"),
    ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1"),
    ("quay.io/org/app:v2", "quay.io/org/app:v2"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1"),
    (f"nginx@{DIGEST}", f"docker.io/library/nginx@{DIGEST}"),
    (f"nginx:1.27@{DIGEST}", f"docker.io/library/nginx:1.27@{DIGEST}"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_references_are_normalised_like_kubernetes(text: str, expected: str) -> None:
    assert str(parse(text)) == expected


def test_a_digest_reference_asks_the_registry_for_the_digest() -> None:
    ref = parse(f"quay.io/org/app:v1@{DIGEST}")
    assert ref.object == DIGEST and ref.name == "quay.io/org/app"
    assert parse("nginx").api_host == "registry-1.docker.io"
    assert parse("127.0.0.1:5000/x").api_host == "127.0.0.1:5000"


@pytest.mark.parametrize("text", ["", "Busybox", "nginx:", "nginx@sha256:short", " nginx",
                                  "a" * 300, "nginx:bad tag", "UPPER/case"])
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse(text)
