"""Persistence: role Protocols in :mod:`bridge.store.base`, one module per backend."""

from __future__ import annotations

from bridge.errors import ConfigError
from bridge.store.base import Store


async def open_store(database_url: str) -> Store:
    """Open the backend the URL names (``sqlite:///path``; PostgreSQL joins later)."""
    if database_url.startswith("sqlite:///"):
        from bridge.store.sqlite import SQLiteStore

        return await SQLiteStore.open(database_url.removeprefix("sqlite:///"))
    raise ConfigError("database.url", f"no backend for {database_url.split(':', 1)[0]!r} yet")
