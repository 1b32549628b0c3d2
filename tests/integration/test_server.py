"""``feedfed serve``'s server from start-up to shutdown (``bridge.web.server.serve``): what
started is closed whatever happens — a context failing to start, a signal during start-up,
an address in use — and a signal after start-up stops it cleanly.

In this process (real signals to the test process, a real port) and as a real ``feedfed
serve`` refused beside another on one SQLite file, which printed a second, misleading error
("aclose(): asynchronous generator is already running") before.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bridge.errors import ConfigError
from bridge.web.server import serve
from tests.fakes.process import feedfed_env, free_port
from tests.fakes.process_roles import feedfed, read, wait_http


def recording_app(events: list[str], second: str = "ok") -> web.Application:
    """An app with two cleanup contexts that write what happens to them into ``events``;
    the second one succeeds, fails (``second="fail"``) or never finishes (``"hang"``)."""
    app = web.Application()

    async def first(app: web.Application) -> AsyncIterator[None]:
        events.append("first open")
        yield
        events.append("first closed")

    async def later(app: web.Application) -> AsyncIterator[None]:
        events.append("second starting")
        if second == "fail":
            raise RuntimeError("the second context cannot start")
        if second == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                events.append("second cancelled")
                raise
        yield
        events.append("second closed")

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app.cleanup_ctx.extend([first, later])
    app.router.add_get("/", hello)
    return app


async def recorded(events: list[str], item: str) -> None:
    """Wait (up to 4 s) until ``item`` is among ``events``."""
    for _ in range(400):
        if item in events:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{item!r} never happened")


async def answers(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as response,
        ):
            return response.status == 200 and await response.text() == "hello"
    except aiohttp.ClientConnectionError:
        return False


async def test_serves_until_sigterm_then_closes_everything() -> None:
    events: list[str] = []
    port = free_port()
    server = asyncio.create_task(serve(recording_app(events), "127.0.0.1", port))
    for _ in range(400):
        if await answers(port):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the server never answered")
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(server, 10)
    assert events == ["first open", "second starting", "second closed", "first closed"]
    assert not await answers(port)


async def test_a_request_in_flight_at_sigterm_is_answered_before_the_contexts_close() -> None:
    events: list[str] = []
    app = recording_app(events)
    started = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        started.set()
        await asyncio.sleep(0.5)
        events.append("slow answered")
        return web.Response(text="late but whole")

    app.router.add_get("/slow", slow)
    port = free_port()
    server = asyncio.create_task(serve(app, "127.0.0.1", port))
    for _ in range(400):
        if await answers(port):
            break
        await asyncio.sleep(0.01)
    async with aiohttp.ClientSession() as session:
        pending = asyncio.create_task(session.get(f"http://127.0.0.1:{port}/slow"))
        await asyncio.wait_for(started.wait(), 10)
        os.kill(os.getpid(), signal.SIGTERM)
        async with await pending as response:
            assert response.status == 200
            assert await response.text() == "late but whole"
    await asyncio.wait_for(server, 10)
    assert events[-3:] == ["slow answered", "second closed", "first closed"]


async def test_a_context_failing_to_start_closes_the_ones_that_started() -> None:
    events: list[str] = []
    with pytest.raises(RuntimeError, match="cannot start"):
        await serve(recording_app(events, "fail"), "127.0.0.1", free_port())
    assert events == ["first open", "second starting", "first closed"]


async def test_a_signal_during_start_up_abandons_it_and_closes_what_started() -> None:
    events: list[str] = []
    port = free_port()
    server = asyncio.create_task(serve(recording_app(events, "hang"), "127.0.0.1", port))
    await recorded(events, "second starting")
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(server, 10)  # returns: an interrupted start-up is no error
    assert events == ["first open", "second starting", "second cancelled", "first closed"]
    assert not await answers(port)


async def test_a_cancelled_server_is_cancelled_after_closing_what_started() -> None:
    events: list[str] = []
    server = asyncio.create_task(serve(recording_app(events, "hang"), "127.0.0.1", free_port()))
    await recorded(events, "second starting")
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    assert events == ["first open", "second starting", "second cancelled", "first closed"]


async def test_an_address_in_use_is_a_config_error_and_closes_what_started() -> None:
    events: list[str] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            await serve(recording_app(events), "127.0.0.1", port)
    assert events == ["first open", "second starting", "second closed", "first closed"]


async def test_a_second_feedfed_serve_on_one_sqlite_file_says_why_and_nothing_else(
    tmp_path: Path,
) -> None:
    env = feedfed_env(tmp_path, free_port())
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with feedfed(env, first_log, "serve") as first:
        await wait_http(f"{env['FEEDFED_BASE_URL']}/healthz", first, first_log)
        twin_env = {**env, "FEEDFED_LISTEN": f"127.0.0.1:{free_port()}"}
        async with feedfed(twin_env, second_log, "serve") as second:
            assert await asyncio.wait_for(second.wait(), 30) == 1
        output = await read(second_log)
        assert "another process runs the job worker" in output
        assert "aclose()" not in output
        assert "Traceback" not in output
        first.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(first.wait(), 15) == 0
    output = await read(first_log)
    assert "SIGINT: shutting down" in output
    assert '"stopped"' in output
    assert "Traceback" not in output


async def test_a_command_interrupted_by_ctrl_c_says_so_without_a_traceback(
    tmp_path: Path,
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def never_answers(request: web.Request) -> web.Response:
        asked.set()
        await release.wait()  # until the test is over: the command never gets an answer
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/feed", never_answers)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    log = tmp_path / "add.log"
    try:
        env = feedfed_env(tmp_path, free_port())
        async with feedfed(env, log, "blogs", "add", f"http://127.0.0.1:{port}/feed") as proc:
            await asyncio.wait_for(asked.wait(), 30)
            proc.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(proc.wait(), 15) == 130
    finally:
        release.set()
        await runner.cleanup()
    output = await read(log)
    assert "feedfed: interrupted" in output
    assert "Traceback" not in output
