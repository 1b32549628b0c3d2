"""The ``store`` fixture: one migrated instance of every backend, for the contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.store.base import Store
from bridge.store.schema import MIGRATIONS
from bridge.store.sqlite import SQLiteStore

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "sqlite":
        backend = await SQLiteStore.open(str(tmp_path / "contract.db"))
    else:  # pragma: no cover - new backends are added here
        raise AssertionError(request.param)
    assert await backend.migrate() == [m.version for m in MIGRATIONS]
    yield backend
    await backend.close()
