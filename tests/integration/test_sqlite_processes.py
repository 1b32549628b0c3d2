"""Several processes on one SQLite file: job notices between them, one holder per worker id,
and the real ``feedfed serve --no-workers`` beside ``feedfed worker`` turning replies into
comments (see :mod:`bridge.store.sqlite.processes`).

Two stores opened on one file stand for two processes (each has its own connections, its own
listening socket and its own lock descriptors); the last tests run the real command in
subprocesses, with a queue poll of a minute so that only a notice can wake the worker in time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.activitypub import keys
from bridge.activitypub.urls import Urls, entry_slug
from bridge.config import load_config
from bridge.context import open_context
from bridge.entries import FeedEntry
from bridge.store.base import FeedState, NewBlog
from bridge.store.records import NewJob
from bridge.store.schema import MIGRATIONS
from bridge.store.sqlite import SQLiteStore
from bridge.store.sqlite.processes import SOCKET_SUFFIX, WorkerIdTaken
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_actors import FakeActor
from tests.fakes.process import feedfed_env, free_port
from tests.fakes.process_roles import feedfed, read, sigterm, wait_http

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ALL_STATES = ("published", "held", "duplicate", "spam", "rejected", "deleted")


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteStore]]:
    """Two stores on one migrated SQLite file: two processes, as far as the file can tell."""
    path = str(tmp_path / "shared.db")
    first = await SQLiteStore.open(path)
    await first.migrate()
    second = await SQLiteStore.open(path)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


class Listener:
    """``store.listen_jobs`` in a task, counting its wake-ups."""

    def __init__(self, store: SQLiteStore) -> None:
        self.wakes = 0
        self.woken = asyncio.Event()
        self.task = asyncio.create_task(store.listen_jobs(self._wake))

    def _wake(self) -> None:
        self.wakes += 1
        self.woken.set()

    async def started(self) -> None:
        await asyncio.wait_for(self.woken.wait(), 5)  # listening starts with a wake-up
        await asyncio.sleep(0.05)
        self.woken.clear()

    async def woken_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.woken.wait(), seconds)
        except TimeoutError:
            return False
        self.woken.clear()
        return True

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def job(key: str) -> NewJob:
    return NewJob(kind="push", payload={"n": key}, run_at=NOW, dedupe_key=key)


def sockets(path: Path) -> list[str]:
    directory = Path(f"{path}-processes")
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(SOCKET_SUFFIX))


async def test_an_enqueue_in_one_process_wakes_the_listener_of_another(
    two: tuple[SQLiteStore, SQLiteStore], tmp_path: Path
) -> None:
    first, second = two
    listener = Listener(first)
    await listener.started()
    assert len(sockets(tmp_path / "shared.db")) == 1
    try:
        assert await second.enqueue([job("a")], NOW) == 1
        assert await listener.woken_within(5)
        # A duplicate adds nothing, so it wakes nobody.
        assert await second.enqueue([job("a")], NOW) == 0
        assert not await listener.woken_within(0.3)
        # Its own enqueue is no news to a process (the caller sets ctx.jobs_ready itself).
        assert await first.enqueue([job("b")], NOW) == 1
        assert not await listener.woken_within(0.3)
    finally:
        await listener.stop()
    assert sockets(tmp_path / "shared.db") == []  # removed when listening stops


async def test_the_notice_waits_for_the_commit_and_a_rollback_sends_none(
    two: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = two
    listener = Listener(first)
    await listener.started()
    try:
        async with second.transaction():
            await second.enqueue([job("c")], NOW)
            assert not await listener.woken_within(0.3)  # the job is not visible yet
        assert await listener.woken_within(5)
        with pytest.raises(RuntimeError):
            async with second.transaction():
                await second.enqueue([job("d")], NOW)
                raise RuntimeError("rolled back")
        assert not await listener.woken_within(0.3)
        assert [j.payload for j in await first.list_jobs("queued", "push")] == [{"n": "c"}]
    finally:
        await listener.stop()


async def test_released_and_requeued_jobs_wake_the_other_process(
    two: tuple[SQLiteStore, SQLiteStore],
) -> None:
    first, second = two
    await second.enqueue([job("e")], NOW)
    [claimed] = await second.claim_jobs(["push"], NOW, 1, 300, "w")
    listener = Listener(first)
    await listener.started()
    try:
        assert await second.release_jobs("w", NOW) == 1
        assert await listener.woken_within(5)
        [claimed] = await second.claim_jobs(["push"], NOW, 1, 300, "w")
        await second.bury_job(claimed.id, NOW, None, "broken")
        assert not await listener.woken_within(0.3)
        assert await second.requeue_dead(NOW) == 1
        assert await listener.woken_within(5)
    finally:
        await listener.stop()


async def test_a_socket_left_by_a_dead_process_is_removed_by_the_next_sender(
    two: tuple[SQLiteStore, SQLiteStore], tmp_path: Path
) -> None:
    first, second = two
    directory = Path(f"{tmp_path / 'shared.db'}-processes")
    await asyncio.to_thread(directory.mkdir)
    dead = directory / f"999999-dead{SOCKET_SUFFIX}"
    orphan = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    orphan.bind(str(dead))
    orphan.close()  # as a SIGKILL leaves it: the file stays, nobody reads
    listener = Listener(first)
    await listener.started()
    try:
        await second.enqueue([job("f")], NOW)
        assert await listener.woken_within(5)
        assert not dead.exists()
        assert len(sockets(tmp_path / "shared.db")) == 1
    finally:
        await listener.stop()


async def test_a_worker_id_is_held_by_one_store_until_it_closes(tmp_path: Path) -> None:
    path = str(tmp_path / "ids.db")
    first = await SQLiteStore.open(path)
    second = await SQLiteStore.open(path)
    try:
        first.hold_worker_id("host/sqlite")
        first.hold_worker_id("host/sqlite")  # again: already its own
        with pytest.raises(WorkerIdTaken, match="feedfed serve --no-workers"):
            second.hold_worker_id("host/sqlite")
        second.hold_worker_id("host/sqlite/inbound")  # another id is free
        await first.close()
        second.hold_worker_id("host/sqlite")
    finally:
        await second.close()
        await first.close()


async def test_an_in_memory_store_listens_without_a_socket() -> None:
    store = await SQLiteStore.open(":memory:")
    try:
        await store.migrate()
        listener = Listener(store)
        await listener.started()
        await store.enqueue([job("g")], NOW)
        store.hold_worker_id("anything")
        assert not await listener.woken_within(0.2)
        await listener.stop()
    finally:
        await store.close()


async def test_a_migration_another_process_applied_meanwhile_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "race.db")
    first, second = await SQLiteStore.open(path), await SQLiteStore.open(path)
    try:
        assert await first.migrate() == [m.version for m in MIGRATIONS]

        # The window of a race: ``second`` read what was applied before ``first`` committed.
        async def nothing_applied_yet() -> set[int]:
            return set()

        monkeypatch.setattr(second, "_applied", nothing_applied_yet)
        assert await second.migrate() == []
        # And for real, several new files migrated by three stores at once.
        for attempt in range(3):
            stores = [await SQLiteStore.open(str(tmp_path / f"r{attempt}.db")) for _ in range(3)]
            try:
                results = await asyncio.gather(*(store.migrate() for store in stores))
                applied = sorted(v for result in results for v in result)
                assert applied == [m.version for m in MIGRATIONS]
            finally:
                for store in stores:
                    await store.close()
    finally:
        await second.close()
        await first.close()


# -- the real processes ----------------------------------------------------------------------

CONFIG = """
[limits]
# A minute: within the test's timeouts only a notice can wake the worker.
job_poll_interval = 60
"""


async def seed(env: dict[str, str]) -> str:
    """A blog with one post, not due for polling; the post's object id."""
    config = load_config(env=env)
    async with open_context(config, migrate=True) as ctx:
        now = ctx.clock()
        blog = await ctx.store.add_blog(NewBlog("talkabout", "http://127.0.0.1:9/feed"), now)
        await keys.ensure_keypair(ctx.store, blog.handle, now)
        polled = FeedState(status="ok", last_polled_at=now, next_poll_at=now + timedelta(days=1))
        await ctx.store.update_feed_state(blog.id, polled)
        entry = FeedEntry(
            id="http://www.talkabout.de/?p=1234",
            link="http://www.talkabout.de/ein-pladoyer/",
            title="Ein Plädoyer für die Mitteilung",
            content_html="<p>teilhaben lassen</p>",
            published=now,
        )
        stored = await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), now)
        return Urls(config.base_url).article(blog.handle, stored.slug)


def reply(actor: FakeActor, article: str, text: str) -> dict[str, object]:
    note = {
        "id": actor.new_id(),
        "type": "Note",
        "attributedTo": actor.id,
        "inReplyTo": article,
        "content": f"<p>{text}</p>",
        "published": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "to": [PUBLIC],
        "cc": [actor.followers],
    }
    return actor.activity("Create", note, to=[PUBLIC], cc=[actor.followers])


async def comments(env: dict[str, str]) -> int:
    store = await SQLiteStore.open(env["FEEDFED_DATABASE_URL"].removeprefix("sqlite:///"))
    try:
        blog = await store.get_blog("talkabout")
        assert blog is not None
        return await store.count_comments(blog.id, states=ALL_STATES)
    finally:
        await store.close()


async def until(condition: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.05)


async def test_a_web_process_and_a_worker_process_share_one_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "feedfed.toml").write_text(CONFIG, encoding="utf-8")
    env = feedfed_env(
        tmp_path,
        free_port(),
        {
            "FEEDFED_CONFIG": str(tmp_path / "feedfed.toml"),
            "FEEDFED_ALLOW_PRIVATE_ADDRESSES": "1",
        },
    )
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
