"""Several processes on one SQLite file: job notices between them, one holder per worker id,
migrations that another process applied meanwhile (see :mod:`bridge.store.sqlite.processes`),
and writes that wait for another process's write lock (:mod:`bridge.store.sqlite.write_lock`).

Two stores opened on one file stand for two processes: each has its own connections, its own
listening socket and its own lock descriptors. The real processes are in
``tests/acceptance/test_sqlite_web_and_worker.py``.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.store.records import NewJob
from bridge.store.schema import MIGRATIONS
from bridge.store.sqlite import SQLiteStore, write_lock
from bridge.store.sqlite.processes import SOCKET_SUFFIX, WorkerIdTaken

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


class LockHolder:
    """Another process's write transaction on the file: holds the lock for ``seconds``."""

    def __init__(self, path: str, seconds: float) -> None:
        self.path, self.seconds = path, seconds
        self.held, self.released_at = threading.Event(), 0.0

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.held.set()
            time.sleep(self.seconds)
            self.released_at = time.monotonic()
            conn.execute("COMMIT")
        finally:
            conn.close()


async def test_a_write_waits_for_another_process_holding_the_lock(
    two: tuple[SQLiteStore, SQLiteStore], tmp_path: Path
) -> None:
    first, _ = two
    holder = LockHolder(str(tmp_path / "shared.db"), 0.3)
    holding = asyncio.create_task(asyncio.to_thread(holder.run))
    await asyncio.to_thread(holder.held.wait, 5)
    assert await first.enqueue([job("h")], NOW) == 1  # waited, then wrote
    assert time.monotonic() >= holder.released_at > 0
    await holding
    async with first.transaction():  # BEGIN waits too
        await first.enqueue([job("i")], NOW)
    assert len(await first.list_jobs("queued", "push")) == 2


async def test_a_write_gives_up_after_the_wait_with_the_lock_error(
    two: tuple[SQLiteStore, SQLiteStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = two
    monkeypatch.setattr(write_lock, "WAIT_SECONDS", 0.2)
    holder = LockHolder(str(tmp_path / "shared.db"), 1.0)
    holding = asyncio.create_task(asyncio.to_thread(holder.run))
    await asyncio.to_thread(holder.held.wait, 5)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await first.enqueue([job("j")], NOW)
    assert holder.released_at == 0  # it gave up while the lock was still held
    await holding
    assert await first.list_jobs("queued", "push") == []


def test_executemany_outside_a_transaction_is_one_transaction_that_waits(tmp_path: Path) -> None:
    path = str(tmp_path / "many.db")
    conn = sqlite3.connect(path, isolation_level=None, factory=write_lock.WaitingWriter)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
        holder = LockHolder(path, 0.2)
        thread = threading.Thread(target=holder.run)
        thread.start()
        holder.held.wait(5)
        conn.executemany("INSERT INTO t (n) VALUES (?)", [(n,) for n in range(5)])
        thread.join()
        assert [row[0] for row in conn.execute("SELECT n FROM t ORDER BY n")] == [0, 1, 2, 3, 4]
        with pytest.raises(sqlite3.IntegrityError):  # one row fails: none of them stays
            conn.executemany("INSERT INTO t (n) VALUES (?)", [(5,), (6,), (0,)])
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 5
        assert not conn.in_transaction
    finally:
        conn.close()
