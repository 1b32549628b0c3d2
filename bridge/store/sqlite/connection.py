"""SQLite backend core: one connection in WAL mode, its transactions, and migrations.

The writing connection lives on the store's own database thread (a one-worker executor): it
is opened, used and closed there only, and runs the calls in the order they were made. A
``transaction()`` block holds an asyncio lock from its ``BEGIN`` to its ``COMMIT`` (or
``ROLLBACK``), so its calls commit together; calls from other tasks wait for that lock only
while such a block is open (they would otherwise run inside it), and otherwise go straight to
the thread, each statement committing by itself. Work of several statements that must commit
together runs as one function on the thread (:meth:`SQLiteBase._atomic`): one hand-off
instead of one per statement; and the calls that arrive while a hand-off is on the thread go
together in the next one. The role modules beside this one add the queries, one mixin per
role, through the methods here: only this module touches the sqlite3 connections.

Reads outside a transaction take a second, read-only connection on the event loop's own
thread: a ``SELECT`` by key takes microseconds, while handing it to the database thread and
back costs ~50 us of loop time and waits behind every write queued before it (a busy
inbox asks a dozen such questions per reply). WAL lets the reader run beside the writer; it
sees what was committed when it starts, never half a transaction. Inside ``transaction()``
reads stay on the writing connection, so a block sees its own writes. A WAL reader waits
only while another connection recovers the log after a crash (milliseconds, at open): its
busy timeout is short, so that even then it holds the loop up briefly.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar, cast

from bridge.errors import StoreError
from bridge.store.schema import MIGRATIONS
from bridge.store.sqlite.write_lock import WaitingWriter

T = TypeVar("T")

Work = Callable[[sqlite3.Connection], T]
"""Synchronous work run on the database thread, given the writing sqlite3 connection."""
_Waiting = tuple[Work[Any], "asyncio.Future[Any]"]
_Outcome = tuple[bool, Any]
"""A work's result (True, value) or the exception it raised (False, exception)."""


def ts(value: datetime | None) -> str | None:
    """A datetime as sortable UTC text."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    """Parse what :func:`ts` wrote."""
    return datetime.fromisoformat(value) if value else None


def dt_required(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SQLiteBase:
    """Connection, transactions and migrations; the role mixins build on it."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedfed-sqlite")
        """The database thread: the writing connection is opened, used and closed on it."""
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._in_tx: ContextVar[bool] = ContextVar(f"sqlite_tx_{id(self)}", default=False)
        self._tx_open = False
        """A ``transaction()`` block has begun on the connection and not ended yet."""
        self._waiting: list[_Waiting] = []
        """Works for the next hand-off to the database thread, in the order of the calls."""
        self._busy = False
        """A hand-off is on the database thread."""
        self._on_commit: list[Callable[[], None]] = []
        """What to do once the open ``transaction()`` block has committed."""

    @classmethod
    async def open(cls, path: str) -> Self:
        """Open (creating the file if needed) with WAL and foreign keys on."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        loop = asyncio.get_running_loop()
        try:
            store._conn = await loop.run_in_executor(store._executor, _connect, path)
            if path != ":memory:":
                store._reader = _open_reader(path)
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Close the reader, then the writing connection on its thread, and end the thread.

        Calls already on the thread finish first; later ones raise ``StoreError``.
        """
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        conn, self._conn = self._conn, None
        if conn is None:
            # Never opened (a connect cut short still runs first) or already closing: the
            # thread ends by itself once its queue is done; joining it would block the loop.
            self._executor.shutdown(wait=False)
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        except BaseException:
            # Cancelled or failed: the queued close still runs, then the thread ends.
            self._executor.shutdown(wait=False)
            raise
        # The close ran last on the thread, so it is idle: the join is immediate.
        self._executor.shutdown(wait=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Hold the connection for the block and commit it as one transaction."""
        if self._in_tx.get():
            yield
            return
        async with self._lock:
            token = self._in_tx.set(True)
            # Set before BEGIN is queued and cleared only once COMMIT or ROLLBACK has run:
            # calls of other tasks queued in between would run inside this transaction.
            self._tx_open = True
            try:
                await self._on_thread(_begin)
                try:
                    yield
                except BaseException:
                    await self._on_thread(_rollback)
                    raise
                else:
                    await self._on_thread(_commit)
                    for callback in self._on_commit:
                        callback()
            finally:
                self._on_commit = []
                self._tx_open = False
                self._in_tx.reset(token)

    def _after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the caller's open ``transaction()`` commits; never
        if it rolls back."""
        if callback not in self._on_commit:
            self._on_commit.append(callback)

    async def _on_thread(self, work: Work[T]) -> T:
        """Run ``work`` on the connection's thread, in the order of the calls.

        While a hand-off is on the thread, the works that arrive wait and then go together
        in the next one: under load one hand-off (a thread wake-up and a loop wake-up)
        carries many works, and an idle connection adds no delay.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((work, future))
        if not self._busy:
            self._hand_off(loop)
        return cast(T, await future)

    def _hand_off(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting, []
        if self._conn is None:
            _fail_all(batch, StoreError("store is closed"))
            return
        run = functools.partial(_run_batch, self._conn, [work for work, _ in batch])
        landed = loop.run_in_executor(self._executor, run)
        self._busy = True
        landed.add_done_callback(functools.partial(self._landed, batch, loop))

    def _landed(
        self,
        batch: list[_Waiting],
        loop: asyncio.AbstractEventLoop,
        landed: asyncio.Future[list[_Outcome]],
    ) -> None:
        self._busy = False
        if landed.cancelled():
            _fail_all(batch, StoreError("the database thread stopped"))
        elif (error := landed.exception()) is not None:
            _fail_all(batch, error)
        else:
            for (_, future), (ok, value) in zip(batch, landed.result(), strict=True):
                if future.done():
                    continue  # its caller was cancelled
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        if self._waiting:
            self._hand_off(loop)

    async def _call(self, work: Work[T]) -> T:
        """Run ``work`` on the connection's thread in one hand-off: inside the caller's
        ``transaction()`` as part of it, otherwise each statement committing by itself."""
        if self._in_tx.get() or not self._tx_open:
            # Queued now, it runs before any BEGIN queued later: no lock needed. The check
            # and the queueing happen without a suspension point in between.
            return await self._on_thread(work)
        async with self._lock:
            return await self._on_thread(work)

    async def _atomic(self, work: Work[T]) -> T:
        """Run ``work`` (several statements) as one transaction in one hand-off; inside
        the caller's ``transaction()`` it joins that one instead."""
        if self._in_tx.get():
            return await self._on_thread(work)
        return await self._call(functools.partial(_committed, work))

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """One statement that changes rows or the schema (atomic on its own, so it needs no
        BEGIN and COMMIT of its own); joins the caller's transaction if there is one."""
        args = tuple(params)
        return await self._call(lambda conn: conn.execute(sql, args))

    async def _execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """One statement once per row, in one hand-off; return the rows it changed."""
        batch = list(rows)
        return await self._call(lambda conn: conn.executemany(sql, batch).rowcount)

    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        args = tuple(params)
        if self._reader is not None and not self._in_tx.get() and sql.startswith("SELECT"):
            return self._reader.execute(sql, args).fetchall()
        return await self._fetch_all(sql, args)

    async def _fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Every row of one statement, on the database thread whatever the statement: for
        reads too large for the loop's reader (``feedfed db copy``'s pages)."""
        args = tuple(params)
        return await self._call(lambda conn: conn.execute(sql, args).fetchall())

    async def _row(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    # -- migrations ---------------------------------------------------------------------

    async def _applied(self) -> set[int]:
        await self._write(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        return {row["version"] for row in await self._rows("SELECT version FROM schema_migrations")}

    async def pending_migrations(self) -> list[int]:
        """Versions not yet applied."""
        applied = await self._applied()
        return [m.version for m in MIGRATIONS if m.version not in applied]

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in its own transaction."""
        applied = await self._applied()
        done: list[int] = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            async with self.transaction():
                # Another process (a web and a worker starting together) may have applied
                # it since: the transaction holds the write lock, so this answer stands.
                if await self._row(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                ):
                    continue
                for statement in _statements(migration.sqlite):
                    await self._write(statement)
                await self._write(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, ts(datetime.now(UTC))),
                )
            done.append(migration.version)
        return done


def _connect(path: str) -> sqlite3.Connection:
    """The writing connection (on the database thread: sqlite3 refuses its use elsewhere)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, factory=WaitingWriter)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Waits for another process's write lock are WaitingWriter's, in finer steps.
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error as exc:
        # The first statement reads the file: "file is not a database" surfaces here.
        conn.close()
        raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def _commit(conn: sqlite3.Connection) -> None:
    conn.execute("COMMIT")


def _rollback(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK")


def _run_batch(conn: sqlite3.Connection, works: list[Work[Any]]) -> list[_Outcome]:
    """Each work's result or exception, in order (on the database thread)."""
    outcomes: list[_Outcome] = []
    for work in works:
        try:
            outcomes.append((True, work(conn)))
        except Exception as exc:  # noqa: BLE001 - each goes to the caller of its work
            outcomes.append((False, exc))
    return outcomes


def _fail_all(batch: list[_Waiting], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


def _committed(work: Work[T], conn: sqlite3.Connection) -> T:
    """``work`` between BEGIN IMMEDIATE and COMMIT, rolled back if anything fails (on the
    connection's thread)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT can leave the transaction open; later statements would join it.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _open_reader(path: str) -> sqlite3.Connection:
    """The loop thread's read-only connection (see the module docstring)."""
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.row_factory = sqlite3.Row
    reader.execute("PRAGMA query_only=ON")
    reader.execute("PRAGMA busy_timeout=250")
    return reader


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
