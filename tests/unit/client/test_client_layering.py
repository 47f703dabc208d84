"""navio/client imports only navio.api (and itself): STYLE.md §1, so that every component
can reach the API server through it without pulling in server-side code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLIENT = Path(__file__).parents[3] / "navio" / "client"
ALLOWED = ("navio.api", "navio.client")


def _navio_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("navio")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "navio"):
            found.append(node.module)
    return found


@pytest.mark.parametrize("path", sorted(CLIENT.glob("*.py")), ids=lambda p: p.name)
def test_client_modules_import_only_the_api_and_themselves(path: Path) -> None:
    bad = [m for m in _navio_imports(path) if m != "navio" and not m.startswith(ALLOWED)]
    assert not bad
