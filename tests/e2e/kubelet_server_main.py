"""`navio server` with the API server's kubelet client wired in, for the agent e2e tests.

Why: `navio/cli/server.py` (owned by the CLI work) does not yet hand the API server its
kubelet-client certificate; until it does, the agent tests start the server through this
wrapper, which does exactly the wiring the server will do (`nodeproxy.configure_with_ca`:
the cluster CA and `apiserver-kubelet-client.{crt,key}`), then runs the unchanged command.
Run as: python tests/e2e/kubelet_server_main.py server --data-dir D ...
"""

from __future__ import annotations

import sys
from pathlib import Path

from navio.apiserver import nodeproxy
from navio.apiserver.app import ApiServer
from navio.cli import main as cli_main
from navio.cli import server as cli_server
from navio.pki.certs import load_or_create_ca


def _data_dir(argv: list[str]) -> Path:
    return Path(argv[argv.index("--data-dir") + 1])


class _WiredApiServer(ApiServer):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        nodeproxy.configure_with_ca(self.app, load_or_create_ca(_data_dir(sys.argv) / "pki"))


if __name__ == "__main__":
    cli_server.ApiServer = _WiredApiServer  # type: ignore[misc]
    sys.exit(cli_main.main(sys.argv[1:]))
