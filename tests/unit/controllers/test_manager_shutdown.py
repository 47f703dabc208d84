"""The controller manager stops its informers when cancelled at any point (issue 6): a
watch left running after the manager's client closed re-opened a session of its own and
leaked its sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from navio.controllers import manager
from navio.controllers.manager import ControllerManagerConfig


class HangingClient:
    """Lists never answer, so informers never sync."""

    def __init__(self) -> None:
        self.listing = asyncio.Event()

    async def list(self, *_: Any, **__: Any) -> Any:
        self.listing.set()
        await asyncio.Event().wait()


async def test_cancelled_while_informers_sync_the_manager_stops_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Any] = []
    real = manager.SharedInformers

    class Recording(real):  # type: ignore[misc, valid-type]
        def start(self) -> None:
            super().start()
            started.extend(self._informers.values())

    monkeypatch.setattr(manager, "SharedInformers", Recording)
    client = HangingClient()
    config = ControllerManagerConfig(kubeconfig=Path("unused"), leader_elect=False,
                                     controllers=("job",))
    task = asyncio.create_task(manager._run_controllers(config, client))  # type: ignore[arg-type]
    await asyncio.wait_for(client.listing.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert started, "the job controller's informers were started"
    assert all(not inf._tasks for inf in started), "every informer was stopped"
