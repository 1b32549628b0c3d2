"""Row-level access to every table of a store, for moving a bridge between backends.

The adapters read and write the rows of the tables :mod:`bridge.store.tables` describes as
plain Python values (datetime, dict, bool), converting SQLite's ISO text, JSON text and
integer booleans on the way, so rows pass from either backend to the other unchanged. Used
by :mod:`bridge.store.copy`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg

from bridge.errors import StoreError
from bridge.store.base import Store
from bridge.store.postgres import PostgresStore
from bridge.store.postgres.connection import affected
from bridge.store.sqlite import SQLiteStore
from bridge.store.sqlite.connection import dt, ts
from bridge.store.tables import RowValues, Table


class Tables(Protocol):
    """Row-level access to one backend, in plain Python values (datetime, dict, bool)."""

    async def layout(self) -> dict[str, list[str]]:
        """Every table and its columns."""
        ...

    async def count(self, table: Table) -> int:
        """Rows in the table."""
        ...

    async def read(self, table: Table, after: RowValues | None, limit: int) -> list[RowValues]:
        """Up to ``limit`` rows (all columns) whose key follows ``after``, in key order."""
        ...

    async def fetch(self, table: Table, keys: Sequence[RowValues]) -> list[RowValues]:
        """The rows (all columns) whose key is among ``keys``, in no particular order."""
        ...

    async def insert(self, table: Table, rows: Sequence[RowValues]) -> int:
        """Insert rows in one transaction, skipping keys present; return how many were new."""
        ...

    async def finish(self, table: Table) -> None:
        """Make new rows continue after the copied ids."""
        ...


class SQLiteTables:
    """Rows of a SQLite store: times as ISO text, JSON as text, booleans as integers."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def layout(self) -> dict[str, list[str]]:
        """Every table and its columns."""
        names = await self._store._fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        layout: dict[str, list[str]] = {}
        for (name,) in names:
            info = await self._store._fetch_all(f'PRAGMA table_info("{name}")')
            layout[name] = [column[1] for column in info]
        return layout

    async def count(self, table: Table) -> int:
        """Rows in the table."""
        rows = await self._store._fetch_all(f"SELECT COUNT(*) FROM {table.name}")
        return int(rows[0][0])

    async def read(self, table: Table, after: RowValues | None, limit: int) -> list[RowValues]:
        """Up to ``limit`` rows after ``after`` in key order, decoded."""
        key = ", ".join(table.key)
        where = f"WHERE ({key}) > ({', '.join('?' * len(table.key))}) " if after else ""
        rows = await self._store._fetch_all(
            f"SELECT {', '.join(table.columns)} FROM {table.name} {where}ORDER BY {key} LIMIT ?",
            (*(after or ()), limit),
        )
        return [_decode_sqlite(table, tuple(row)) for row in rows]

    async def fetch(self, table: Table, keys: Sequence[RowValues]) -> list[RowValues]:
        """The rows whose key is among ``keys``, decoded."""
        if not keys:
            return []
        one = f"({', '.join('?' * len(table.key))})"
        rows = await self._store._fetch_all(
            f"SELECT {', '.join(table.columns)} FROM {table.name} "
            f"WHERE ({', '.join(table.key)}) IN (VALUES {', '.join([one] * len(keys))})",
            [value for key in keys for value in key],
        )
        return [_decode_sqlite(table, tuple(row)) for row in rows]

    async def insert(self, table: Table, rows: Sequence[RowValues]) -> int:
        """Insert rows in one transaction, skipping keys present."""
        marks = ", ".join("?" * len(table.columns))
        try:
            async with self._store.transaction():
                inserted = await self._store._execute_many(
                    f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks}) "
                    f"ON CONFLICT ({', '.join(table.key)}) DO NOTHING",
                    [_encode_sqlite(table, row) for row in rows],
                )
        except sqlite3.IntegrityError as exc:
            raise _conflict(table, exc) from exc
        return inserted

    async def finish(self, table: Table) -> None:
        """Nothing to do: AUTOINCREMENT follows explicitly inserted ids by itself."""


class PostgresTables:
    """Rows of a PostgreSQL store: its own types carry the values as they are."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._types: dict[str, dict[str, str]] = {}

    async def layout(self) -> dict[str, list[str]]:
        """Every table of the current schema and its columns (with their SQL types)."""
        rows = await self._store.pool.fetch(
            "SELECT c.relname AS table_name, a.attname AS column_name, "
            "format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
        )
        layout: dict[str, list[str]] = {}
        for row in rows:
            layout.setdefault(row["table_name"], []).append(row["column_name"])
            self._types.setdefault(row["table_name"], {})[row["column_name"]] = row["type"]
        return layout

    async def count(self, table: Table) -> int:
        """Rows in the table."""
        return int(await self._store.pool.fetchval(f"SELECT COUNT(*) FROM {table.name}"))

    async def read(self, table: Table, after: RowValues | None, limit: int) -> list[RowValues]:
        """Up to ``limit`` rows after ``after`` in key order."""
        key = ", ".join(table.key)
        n = len(table.key)
        where = f"WHERE ({key}) > ({', '.join(f'${i + 1}' for i in range(n))}) " if after else ""
        rows = await self._store.pool.fetch(
            f"SELECT {', '.join(table.columns)} FROM {table.name} {where}"
            f"ORDER BY {key} LIMIT ${n + 1 if after else 1}",
            *(after or ()),
            limit,
        )
        return [tuple(row[column] for column in table.columns) for row in rows]

    async def fetch(self, table: Table, keys: Sequence[RowValues]) -> list[RowValues]:
        """The rows whose key is among ``keys``."""
        if not keys:
            return []
        types = await self._column_types(table)
        arrays = ", ".join(f"${i + 1}::{types[c]}[]" for i, c in enumerate(table.key))
        rows = await self._store.pool.fetch(
            f"SELECT {', '.join(table.columns)} FROM {table.name} "
            f"WHERE ({', '.join(table.key)}) IN (SELECT * FROM unnest({arrays}))",
            *([key[i] for key in keys] for i in range(len(table.key))),
        )
        return [tuple(row[column] for column in table.columns) for row in rows]

    async def insert(self, table: Table, rows: Sequence[RowValues]) -> int:
        """Insert rows in one statement (one array per column), skipping keys present."""
        types = await self._column_types(table)
        # JSON travels as text: asyncpg would take a list value for a nested array level.
        arrays = ", ".join(
            f"${i + 1}::{'text' if c in table.jsons else types[c]}[]"
            for i, c in enumerate(table.columns)
        )
        picks = ", ".join(f"{c}::jsonb" if c in table.jsons else c for c in table.columns)
        columns = ", ".join(table.columns)
        values = [
            [_json_text(row[i]) if c in table.jsons else row[i] for row in rows]
            for i, c in enumerate(table.columns)
        ]
        try:
            # One statement, so the batch arrives whole or not at all.
            status = await self._store.pool.execute(
                f"INSERT INTO {table.name} ({columns}) SELECT {picks} FROM unnest({arrays}) "
                f"AS r ({columns}) ON CONFLICT ({', '.join(table.key)}) DO NOTHING",
                *values,
            )
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _conflict(table, exc) from exc
        except asyncpg.DataError as exc:
            raise StoreError(f"PostgreSQL refused a row of {table.name}: {exc}") from exc
        return affected(status)

    async def _column_types(self, table: Table) -> dict[str, str]:
        if table.name not in self._types:
            await self.layout()
        return self._types[table.name]

    async def finish(self, table: Table) -> None:
        """Move the identity sequence past the highest copied id."""
        if table.identity is None:
            return
        column = table.identity
        await self._store.pool.execute(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
            f"COALESCE(MAX({column}), 0) + 1, false) FROM {table.name}"
        )


def tables_of(store: Store) -> Tables:
    """Row-level access to a store of a known backend."""
    if isinstance(store, SQLiteStore):
        return SQLiteTables(store)
    if isinstance(store, PostgresStore):
        return PostgresTables(store)
    raise StoreError(f"db copy does not know the backend {type(store).__name__}")


def _conflict(table: Table, exc: Exception) -> StoreError:
    # Another key than the primary key collides (a blog handle, an activity id): the target
    # holds rows that are not from this source, and skipping them would lose data silently.
    return StoreError(
        f"cannot copy {table.name}: the target holds other rows that conflict ({exc}); "
        "copy into an empty database"
    )


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, allow_nan=False)


def _decode_sqlite(table: Table, row: RowValues) -> RowValues:
    values = []
    for name, value in zip(table.columns, row, strict=True):
        if value is not None:
            if name in table.times:
                value = dt(value)
            elif name in table.jsons:
                value = json.loads(value)
            elif name in table.bools:
                value = bool(value)
        values.append(value)
    return tuple(values)


def _encode_sqlite(table: Table, row: RowValues) -> RowValues:
    values = []
    for name, value in zip(table.columns, row, strict=True):
        if value is not None:
            if name in table.times:
                value = ts(value)
            elif name in table.jsons:
                value = json.dumps(value, ensure_ascii=False)
            elif name in table.bools:
                value = int(value)
        values.append(value)
    return tuple(values)
