"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, running_bridge
from tests.fakes.resolver import MappingResolver


@pytest.fixture
async def bridge(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
) -> AsyncIterator[InboxBridge]:
    """The bridge with its inbox on 127.0.0.1, reaching fake instances through ``resolver``."""
    async with running_bridge(sqlite_store, http, resolver, clock) as running:
        yield running
