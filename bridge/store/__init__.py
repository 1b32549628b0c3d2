"""Persistence: role Protocols in :mod:`bridge.store.base`, one module per backend."""

from __future__ import annotations

from bridge.errors import ConfigError
from bridge.store.base import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


async def open_store(database_url: str) -> Store:
    """Open the backend the URL names: ``sqlite:///path`` (one machine) or
    ``postgresql://user@host:port/db`` (many processes; query parameters such as
    ``?search_path=feedfed`` become PostgreSQL session settings)."""
    if database_url.startswith("sqlite:///"):
        from bridge.store.sqlite import SQLiteStore

        return await SQLiteStore.open(database_url.removeprefix("sqlite:///"))
    if database_url.startswith(POSTGRES_SCHEMES):
        from bridge.store.postgres import PostgresStore

        return await PostgresStore.open(database_url)
    raise ConfigError(
        "database.url",
        f"no backend for {database_url.split(':', 1)[0]!r}: "
        "use sqlite:///path or postgresql://user@host/db",
    )
