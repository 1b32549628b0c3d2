"""The ``store`` fixture: one migrated instance of every backend, for the contract suite.

PostgreSQL runs on the server named by FEEDFED_TEST_POSTGRES_URL, each test in a schema of
its own (see :mod:`tests.fakes.postgres`); ``store_url`` lets a test open more stores on
the same database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.store import open_store
from bridge.store.base import Store
from bridge.store.schema import MIGRATIONS
from tests.fakes.postgres import fresh_schema, postgres_url

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'contract.db'}"
    elif request.param == "postgres":
        async with fresh_schema(postgres_url()) as url:
            yield url
    else:  # pragma: no cover - new backends are added here
        raise AssertionError(request.param)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    backend = await open_store(store_url)
    try:
        assert await backend.migrate() == [m.version for m in MIGRATIONS]
        yield backend
    finally:
        await backend.close()
