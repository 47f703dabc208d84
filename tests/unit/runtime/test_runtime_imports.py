"""STYLE §1: runtime/ imports only the standard library, navio.api and third-party libraries;
its helpers (started as `python -S -m ...`) import nothing outside the standard library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "navio" / "runtime"
HELPERS = ["navio.runtime.pause", "navio.runtime.supervisor", "navio.runtime.nsexec",
           "navio.runtime.forkserver", "navio.runtime.oci.shim"]


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_runtime_imports_no_other_navio_package() -> None:
    bad = [(f.name, m) for f in PACKAGE.glob("*.py") for m in imports(f)
           if m.startswith("navio.") and not m.startswith(("navio.runtime", "navio.api"))]
    assert bad == []


@pytest.mark.parametrize("helper", HELPERS)
def test_helpers_start_without_site_packages(helper: str) -> None:
    probe = (f"import sys, {helper}; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('asyncio', 'pyroute2', 'aiohttp', 'orjson')))")
    out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                         env={"PYTHONPATH": str(PACKAGE.parents[1])}, timeout=30, check=True)
    assert out.stdout.strip() == "[]"
