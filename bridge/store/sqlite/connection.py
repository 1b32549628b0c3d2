"""SQLite backend core: one connection in WAL mode, serialised by a lock, and migrations.

One process owns the database; calls from concurrent tasks queue on an asyncio lock, and a
``transaction()`` block holds that lock so its calls commit (or roll back) together. The role
modules beside this one add the queries, one mixin per role.

Reads outside a transaction take a second, read-only connection on the event loop's own
thread: a ``SELECT`` by key takes microseconds, while handing it to aiosqlite's thread and
back costs ~50 us of loop time and waits behind every write queued on the lock (a busy
inbox asks a dozen such questions per reply). WAL lets the reader run beside the writer; it
sees what was committed when it starts, never half a transaction. Inside ``transaction()``
reads stay on the writing connection, so a block sees its own writes. A WAL reader waits
only while another connection recovers the log after a crash (milliseconds, at open): its
busy timeout is short, so that even then it holds the loop up briefly.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import aiosqlite

from bridge.errors import StoreError
from bridge.store.schema import MIGRATIONS


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
        self._db: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._in_tx: ContextVar[bool] = ContextVar(f"sqlite_tx_{id(self)}", default=False)

    @classmethod
    async def open(cls, path: str) -> Self:
        """Open (creating the file if needed) with WAL and foreign keys on."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA synchronous=NORMAL")
        store._db = db
        if path != ":memory:":
            store._reader = _open_reader(path)
        return store

    async def close(self) -> None:
        """Close the connection."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is closed")
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Hold the connection for the block and commit it as one transaction."""
        if self._in_tx.get():
            yield
            return
        async with self._lock:
            token = self._in_tx.set(True)
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            else:
                await self.db.execute("COMMIT")
            finally:
                self._in_tx.reset(token)

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        async with self.transaction():
            return await self.db.execute(sql, tuple(params))

    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        if self._reader is not None and not self._in_tx.get() and sql.startswith("SELECT"):
            return self._reader.execute(sql, tuple(params)).fetchall()
        if self._in_tx.get():
            return list(await self.db.execute_fetchall(sql, tuple(params)))
        async with self._lock:
            return list(await self.db.execute_fetchall(sql, tuple(params)))

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
                for statement in _statements(migration.sqlite):
                    await self.db.execute(statement)
                await self.db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, ts(datetime.now(UTC))),
                )
            done.append(migration.version)
        return done


def _open_reader(path: str) -> sqlite3.Connection:
    """The loop thread's read-only connection (see the module docstring)."""
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.row_factory = sqlite3.Row
    reader.execute("PRAGMA query_only=ON")
    reader.execute("PRAGMA busy_timeout=250")
    return reader


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
