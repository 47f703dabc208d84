"""STYLE.md §1: who may import what. A violation fails CI instead of waiting for review."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2] / "navio"
SERVER_SIDE = ("navio.apiserver", "navio.storage")
COMPONENT = SERVER_SIDE + ("navio.cli", "navio.runtime")
FORBIDDEN = {
    "api": SERVER_SIDE + ("navio.client", "navio.cli", "aiohttp", "asyncio", "sqlite3"),
    "storage": ("navio.apiserver", "navio.client", "navio.cli"),
    "pki": ("navio.apiserver", "navio.client", "navio.cli", "navio.storage"),
    "client": SERVER_SIDE + ("navio.cli", "navio.scheduler", "navio.controllers"),
    "scheduler": COMPONENT,
    "controllers": COMPONENT,
    "proxy": COMPONENT,
    "dns": COMPONENT,
    "netpol": COMPONENT,
    "sim": COMPONENT + ("navio.kubelet",),
    "kubelet": SERVER_SIDE + ("navio.cli",),
    "runtime": SERVER_SIDE + ("navio.cli", "navio.client", "navio.kubelet"),
    # images: a library of the oci runtime and `navio image` (issue 11), below both.
    "images": SERVER_SIDE + ("navio.cli", "navio.client", "navio.kubelet", "navio.runtime"),
}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("pkg", sorted(FORBIDDEN))
def test_package_respects_import_rules(pkg: str) -> None:
    files = sorted((ROOT / pkg).rglob("*.py"))
    assert files, f"navio/{pkg} has no modules"
    bad = [(str(f.relative_to(ROOT)), m) for f in files for m in imports(f)
           if _under(m, FORBIDDEN[pkg])]
    # schema.py alone may read package data; it uses importlib, not the forbidden modules.
    assert not bad, f"forbidden imports in navio/{pkg}: {bad}"


def test_only_the_kubelet_imports_the_runtime() -> None:
    users = {str(f.relative_to(ROOT)).split("/")[0] for f in ROOT.rglob("*.py")
             if any(_under(m, ("navio.runtime",)) for m in imports(f))}
    assert users <= {"runtime", "kubelet", "cli"}, users
