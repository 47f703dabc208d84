"""navio/kubelet reaches cluster state only through the API client (STYLE.md §1, issue 7)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

KUBELET = Path(__file__).resolve().parents[3] / "navio" / "kubelet"
# navio.pki.tlspolicy: the one TLS policy of every listener (stdlib ssl only, no state);
# navio.pki.certs: certificate building and 0600 files (no cluster state).
ALLOWED = ("navio.api", "navio.client", "navio.runtime", "navio.kubelet",
           "navio.dns.resolvconf", "navio.pki.tlspolicy", "navio.pki.certs")


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("module", sorted(str(p.relative_to(KUBELET))
                                          for p in KUBELET.rglob("*.py")))
def test_kubelet_modules_import_only_api_client_runtime_and_libraries(module):
    bad = [m for m in imports(KUBELET / module)
           if m.startswith("navio") and m != "navio" and not m.startswith(ALLOWED)]
    assert bad == []


@pytest.mark.parametrize("module", sorted(str(p.relative_to(KUBELET))
                                          for p in KUBELET.rglob("*.py")))
def test_kubelet_modules_stay_small(module):
    assert len((KUBELET / module).read_text().splitlines()) < 450
