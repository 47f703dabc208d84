"""navio/proxy reaches state only through the API client (STYLE.md §1)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PROXY = Path(__file__).resolve().parents[3] / "navio" / "proxy"
ALLOWED_NAVIO = ("navio.api", "navio.client", "navio.proxy")


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("module", sorted(p.name for p in PROXY.glob("*.py")))
def test_proxy_modules_import_only_the_api_the_client_and_libraries(module):
    bad = [m for m in imports(PROXY / module)
           if m.startswith("navio") and not m.startswith(ALLOWED_NAVIO)]
    assert bad == []


@pytest.mark.parametrize("module", ["model", "nftables"])
def test_rule_generation_is_pure(module):
    mods = set(imports(PROXY / f"{module}.py"))
    assert not mods & {"asyncio", "subprocess", "socket", "os", "navio.client", "aiohttp"}
    assert all(m.split(".")[0] in sys.stdlib_module_names or m.startswith("navio.proxy")
               for m in mods)
