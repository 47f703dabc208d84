"""Attaching to a container's own stdin (kubectl attach -i): the supervisor keeps it for
containers with spec.stdin, with stdinOnce semantics and terminal resizes (root)."""

from __future__ import annotations

from navio.runtime.process import ProcessRuntime
from runtime_lab import RuntimeLab, config, pod, wait_until
from test_runtime_process import exited, log_text, wait_log


async def _start(rt: ProcessRuntime, *argv: str, **kw: object) -> str:
    sandbox = await rt.run_sandbox(pod("att"))
    cid = await rt.create_container(sandbox.id, {"name": "main"}, config("main", *argv, **kw))
    await rt.start_container(cid)
    return cid


async def test_stdin_once_input_reaches_the_container_and_its_end_closes_stdin(
        lab: RuntimeLab, runtime: ProcessRuntime) -> None:
    cid = await _start(runtime, "cat", stdin=True, stdin_once=True)
    session = await runtime.attach(cid, stdin=True, tty=False)
    try:
        assert session.stdin is not None
        session.stdin.write(b"hello from attach\n")
        await session.stdin.drain()
        await wait_log(runtime, cid, "hello from attach")
        session.stdin.close()             # kubectl's stdin ended: so does cat's
        status = await exited(runtime, cid)
        assert (status.exit_code, status.reason) == (0, "Completed")
    finally:
        await session.close()


async def test_without_stdin_once_stdin_stays_open_for_the_next_attach(
        lab: RuntimeLab, runtime: ProcessRuntime) -> None:
    cid = await _start(runtime, "cat", stdin=True)
    for word in ("first", "second"):
        session = await runtime.attach(cid, stdin=True, tty=False)
        assert session.stdin is not None
        session.stdin.write(f"{word}\n".encode())
        session.stdin.close()
        await session.close()
        await wait_log(runtime, cid, word)
    status = await runtime.container_status(cid)
    assert status is not None and status.state == "running"
    await runtime.stop_container(cid, 2)


async def test_a_tty_attach_sets_the_terminal_size(lab: RuntimeLab,
                                                   runtime: ProcessRuntime) -> None:
    cid = await _start(runtime, "sh", stdin=True, tty=True)
    session = await runtime.attach(cid, stdin=True, tty=True)
    try:
        await session.resize(120, 33)
        assert session.stdin is not None
        session.stdin.write(b"stty size; exit 3\n")
        await session.stdin.drain()
        status = await exited(runtime, cid)
        assert status.exit_code == 3
        assert "33 120" in await log_text(runtime, cid)
    finally:
        await session.close()


async def test_a_container_without_stdin_takes_no_input(lab: RuntimeLab,
                                                        runtime: ProcessRuntime) -> None:
    cid = await _start(runtime, "sleep", "300")
    session = await runtime.attach(cid, stdin=True, tty=False)
    assert session.stdin is None
    await session.close()
    await runtime.stop_container(cid, 0)

    async def gone() -> bool:
        status = await runtime.container_status(cid)
        return status is not None and status.state == "exited"
    await wait_until(gone, timeout=10, what="the container to stop")
