"""The SQLite store's own database thread: where the writing connection lives and works.

The connection is opened, used and closed on one thread the store owns (no third-party
thread or queue); the calls that arrive while a hand-off is on it go together in the next
one, each getting its own result or exception; after ``close()`` calls fail as closed.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import StoreError
from bridge.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(str(tmp_path / "thread.db"))
    await opened._write("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    try:
        yield opened
    finally:
        await opened.close()


def _blocked(gate: threading.Event) -> Callable[[sqlite3.Connection], bool]:
    """A work that holds the database thread until ``gate`` opens."""
    return lambda conn: gate.wait(5)


async def test_the_connection_works_on_the_stores_own_thread(store: SQLiteStore) -> None:
    def where(conn: sqlite3.Connection) -> threading.Thread:
        return threading.current_thread()

    plain = await store._call(where)
    atomic = await store._atomic(where)
    async with store.transaction():
        inside = await store._call(where)
    assert plain.name.startswith("feedfed-sqlite")
    assert plain is atomic is inside
    assert plain is not threading.current_thread()
    # Opened there, so sqlite3 itself refuses its use from any other thread.
    assert store._conn is not None
    with pytest.raises(sqlite3.ProgrammingError, match="thread"):
        store._conn.execute("SELECT 1")


def test_the_store_runs_without_aiosqlite(tmp_path: Path) -> None:
    script = f"""
import asyncio, sys
sys.modules["aiosqlite"] = None  # any import of it now fails
from bridge.store.sqlite import SQLiteStore

async def main() -> None:
    store = await SQLiteStore.open({str(tmp_path / "plain.db")!r})
    await store.migrate()
    assert await store.pending_migrations() == []
    await store.close()

asyncio.run(main())
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


async def test_works_waiting_for_the_thread_go_together_and_fail_alone(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    handoffs: list[object] = []
    submit = store._executor.submit

    def counted(fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        handoffs.append(fn)
        return submit(fn, *args)

    monkeypatch.setattr(store._executor, "submit", counted)
    gate = threading.Event()
    holding = asyncio.create_task(store._call(_blocked(gate)))
    await asyncio.sleep(0)
    first = asyncio.create_task(store._write("INSERT INTO t VALUES (1)"))
    clash = asyncio.create_task(store._write("INSERT INTO t VALUES (1)"))
    gone = asyncio.create_task(store._write("INSERT INTO t VALUES (2)"))
    last = asyncio.create_task(store._write("INSERT INTO t VALUES (3)"))
    await asyncio.sleep(0)
    gone.cancel()
    gate.set()
    assert await holding is True
    assert (await first).rowcount == 1
    with pytest.raises(sqlite3.IntegrityError):
        await clash
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert (await last).rowcount == 1
    # The held hand-off, then the four writes that waited for it.
    assert len(handoffs) == 2
    assert [row["x"] for row in await store._rows("SELECT x FROM t WHERE x IN (1, 3)")] == [1, 3]


async def test_close_lets_the_running_work_finish_and_fails_the_waiting(
    store: SQLiteStore,
) -> None:
    thread = await store._call(lambda conn: threading.current_thread())
    gate = threading.Event()
    holding = asyncio.create_task(store._call(_blocked(gate)))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(store._write("INSERT INTO t VALUES (1)"))
    closing = asyncio.create_task(store.close())
    await asyncio.sleep(0)
    gate.set()
    assert await holding is True
    with pytest.raises(StoreError, match="store is closed"):
        await waiting
    await closing
    assert not thread.is_alive()
    with pytest.raises(StoreError, match="store is closed"):
        await store._rows("SELECT x FROM t")
    with pytest.raises(StoreError, match="store is closed"):
        async with store.transaction():
            pass
    await store.close()  # closing twice is harmless


async def test_a_file_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open SQLite database"):
        await SQLiteStore.open(str(tmp_path))  # a directory


async def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"Teilhaben lassen, teilnehmen lassen.\n" * 200)
    with pytest.raises(StoreError, match=r"cannot open SQLite database .*not a database"):
        await SQLiteStore.open(str(notes))
    assert notes.read_bytes().startswith(b"Teilhaben lassen")  # left as it was
