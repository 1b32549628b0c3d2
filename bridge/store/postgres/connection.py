"""PostgreSQL backend core: a connection pool, transactions, migrations, value conversion.

Many processes may share the database, so nothing here relies on process-local locks for
correctness: atomicity comes from single statements (upserts, ``RETURNING``) and
transactions. A ``transaction()`` block acquires one pooled connection and keeps it in a
ContextVar, so every store call made inside the block (in this task or tasks it spawns)
runs on that connection and commits or rolls back with it; nested blocks join the outer
one. Calls outside a block borrow a connection from the pool for one statement.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bridge.errors import StoreError
from bridge.store.schema import MIGRATIONS

T = TypeVar("T")

# Every process that opens the store migrates first; the lock (one per schema) makes the
# second process wait and then find nothing left to do.
_MIGRATION_LOCK = "feedfed.migrations:"


class Row(Protocol):
    """A result row (``asyncpg.Record``), read by column name."""

    def __getitem__(self, key: str) -> Any: ...


class Executor(Protocol):
    """What a pool and a connection both offer (the asyncpg query methods we use)."""

    async def execute(self, query: str, *args: object) -> str: ...

    async def executemany(self, command: str, args: Iterable[Sequence[object]]) -> None: ...

    async def fetch(self, query: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, query: str, *args: object) -> Row | None: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...


class Connection(Executor, Protocol):
    """One server connection."""

    def transaction(self) -> AbstractAsyncContextManager[object]: ...


class Pool(Executor, Protocol):
    """The asyncpg pool."""

    def acquire(self) -> AbstractAsyncContextManager[Connection]: ...

    async def close(self) -> None: ...


@dataclass
class _Held:
    """The connection of the running transaction; the lock serialises tasks sharing it."""

    conn: Connection
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def ts(value: datetime | None) -> datetime | None:
    """A datetime for a TIMESTAMPTZ parameter; naive ones are refused as on SQLite."""
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value


def affected(status: str) -> int:
    """Rows touched, from a command status such as ``UPDATE 3`` or ``INSERT 0 1``."""
    return int(status.rsplit(" ", 1)[-1])


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _dumps(value: object) -> str:
    # NaN and Infinity are not JSON: PostgreSQL would refuse them anyway, say so early.
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


async def _init_connection(conn: Any) -> None:
    # JSONB in and out as Python objects, so rows carry dicts and lists, never JSON text.
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=json.loads, schema="pg_catalog")


class PostgresBase:
    """Pool, transactions and migrations; the role mixins build on it."""

    def __init__(self, pool: Pool, url: str) -> None:
        self._pool: Pool | None = pool
        self._url = url
        self._held: ContextVar[_Held | None] = ContextVar(f"pg_tx_{id(self)}", default=None)

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> Self:
        """Connect a pool to ``postgresql://user@host:port/db`` (query parameters such as
        ``search_path`` become server settings)."""
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, init=_init_connection
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc
        return cls(pool, url)

    @property
    def url(self) -> str:
        """The database URL this store was opened with."""
        return self._url

    @property
    def pool(self) -> Pool:
        """The connection pool (raises once the store is closed)."""
        if self._pool is None:
            raise StoreError("store is closed")
        return self._pool

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Run the calls inside the block on one connection, as one transaction."""
        if self._held.get() is not None:
            yield
            return
        async with self.pool.acquire() as conn, conn.transaction():
            token = self._held.set(_Held(conn))
            try:
                yield
            finally:
                self._held.reset(token)

    async def _run(self, call: Callable[[Executor], Awaitable[T]]) -> T:
        held = self._held.get()
        try:
            if held is None:
                return await call(self.pool)
            async with held.lock:
                return await call(held.conn)
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            # Values PostgreSQL cannot hold (NUL characters, NaN) or a broken reference.
            raise StoreError(f"PostgreSQL refused the statement: {exc}") from exc

    async def _execute(self, sql: str, *args: object) -> int:
        """Run a command; return how many rows it touched."""
        return affected(await self._run(lambda db: db.execute(sql, *args)))

    async def _rows(self, sql: str, *args: object) -> list[Row]:
        return await self._run(lambda db: db.fetch(sql, *args))

    async def _row(self, sql: str, *args: object) -> Row | None:
        return await self._run(lambda db: db.fetchrow(sql, *args))

    async def _value(self, sql: str, *args: object) -> Any:
        return await self._run(lambda db: db.fetchval(sql, *args))

    # -- migrations ---------------------------------------------------------------------

    async def _applied(self, db: Executor) -> set[int]:
        if await db.fetchval("SELECT to_regclass('schema_migrations')") is None:
            return set()
        return {row["version"] for row in await db.fetch("SELECT version FROM schema_migrations")}

    async def pending_migrations(self) -> list[int]:
        """Versions not yet applied."""
        applied = await self._applied(self.pool)
        return [m.version for m in MIGRATIONS if m.version not in applied]

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in its own transaction."""
        done: list[int] = []
        async with self.pool.acquire() as conn:
            schema = await conn.fetchval("SELECT current_schema()")
            if schema is None:
                raise StoreError("no schema of the search_path exists to create the tables in")
            key = await conn.fetchval("SELECT hashtext($1 || $2)", _MIGRATION_LOCK, schema)
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                applied = await self._applied(conn)
                for migration in MIGRATIONS:
                    if migration.version in applied:
                        continue
                    async with conn.transaction():
                        await conn.execute(migration.postgres)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
                    done.append(migration.version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)
        return done
