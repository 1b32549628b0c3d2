"""``feedfed serve --no-workers`` beside ``feedfed worker`` on one SQLite file: replies sent
to the web process become comments in the worker process, woken by job notices (the queue
poll is a minute, so only a notice wakes it in time); a second worker of the same kinds is
refused; a killed worker's id is free at once and its next life takes back the job it held.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bridge.store.sqlite.processes import SOCKET_SUFFIX
from tests.fakes.instance import FakeInstance
from tests.fakes.process_blog import bridge_env, comments, inbound_jobs, reply, seed
from tests.fakes.process_roles import feedfed, read, sigterm, wait_http

CONFIG = """
[limits]
# A minute: within the test's timeouts only a notice can wake the worker.
job_poll_interval = 60
"""


async def until(condition: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.05)


async def test_a_web_process_and_a_worker_process_share_one_sqlite_file(tmp_path: Path) -> None:
    env = bridge_env(tmp_path, CONFIG)
    article = await seed(env)
    inbox = f"{env['FEEDFED_BASE_URL']}/inbox"
    async with FakeInstance("127.0.0.1") as instance:
        reader = instance.add_actor("jens")
        web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
        async with feedfed(env, web_log, "serve", "--no-workers") as web_proc:
            await wait_http(f"{env['FEEDFED_BASE_URL']}/healthz", web_proc, web_log)
            async with feedfed(env, worker_log, "worker", "--kinds", "inbound") as worker:
                await until(lambda: _listening(tmp_path), 15)
                status, _ = await instance.send(reader, inbox, reply(reader, article, "Erstens"))
                assert status == 202
                await until(lambda: _count_is(env, 1), 10)

                # The same id twice on one file is refused, with what to do instead.
                second = tmp_path / "second.log"
                async with feedfed(env, second, "worker", "--kinds", "inbound") as twin:
                    assert await asyncio.wait_for(twin.wait(), 30) == 1
                assert "another process runs the job worker" in await read(second)

                # Killed, the worker's id is free again at once (the kernel drops the lock).
                worker.send_signal(signal.SIGKILL)
                await worker.wait()
            async with feedfed(env, worker_log, "worker", "--kinds", "inbound") as worker:
                await until(lambda: _listening(tmp_path), 15)
                status, _ = await instance.send(reader, inbox, reply(reader, article, "Zweitens"))
                assert status == 202
                await until(lambda: _count_is(env, 2), 10)
                assert await sigterm(worker) == 0
            assert await sigterm(web_proc) == 0


async def _listening(tmp_path: Path) -> bool:
    return await asyncio.to_thread(_listening_now, tmp_path)


def _listening_now(tmp_path: Path) -> bool:
    """Whether a live process listens for job notices on the test's database."""
    directory = Path(f"{tmp_path / 'feedfed.db'}-processes")
    if not directory.exists():
        return False
    pids = [int(p.name.split("-")[0]) for p in directory.glob(f"*{SOCKET_SUFFIX}")]
    return any(_pid_alive(pid) for pid in pids)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _count_is(env: dict[str, str], count: int) -> bool:
    return await comments(env) == count


async def test_a_killed_worker_process_takes_its_running_job_back_at_restart(
    tmp_path: Path, serve: Callable[[web.Application], Awaitable[str]]
) -> None:
    """The worker's id on SQLite is stable: its next life releases at once what the killed
    one held, instead of waiting for the five-minute lease."""
    asked, release = asyncio.Event(), asyncio.Event()

    async def parent(request: web.Request) -> web.Response:
        # The reply's parent lives here; the first fetch hangs until the worker is killed.
        if not asked.is_set():
            asked.set()
            await release.wait()
        return web.json_response({"error": "Not Found"}, status=404)

    app = web.Application()
    app.router.add_get("/notes/parent", parent)
    elsewhere = await serve(app)
    env = bridge_env(tmp_path, CONFIG)
    await seed(env)
    inbox = f"{env['FEEDFED_BASE_URL']}/inbox"
    async with FakeInstance("127.0.0.1") as instance:
        reader = instance.add_actor("jens")
        web_log = tmp_path / "web.log"
        async with feedfed(env, web_log, "serve", "--no-workers") as web_proc:
            await wait_http(f"{env['FEEDFED_BASE_URL']}/healthz", web_proc, web_log)
            first = tmp_path / "worker1.log"
            async with feedfed(env, first, "worker", "--kinds", "inbound") as worker:
                await until(lambda: _listening(tmp_path), 15)
                activity = reply(reader, f"{elsewhere}/notes/parent", "Drittens")
                assert (await instance.send(reader, inbox, activity))[0] == 202
                await asyncio.wait_for(asked.wait(), 10)
                worker.send_signal(signal.SIGKILL)
                await worker.wait()
            assert await inbound_jobs(env) == {"running": 1}
            release.set()
            second = tmp_path / "worker2.log"
            async with feedfed(env, second, "worker", "--kinds", "inbound") as worker:
                await until(lambda: _jobs_are(env, {"done": 1}), 10)
                assert await sigterm(worker) == 0
            assert "took back 1 jobs" in await read(second)
            assert await sigterm(web_proc) == 0


async def _jobs_are(env: dict[str, str], states: dict[str, int]) -> bool:
    return await inbound_jobs(env) == states
