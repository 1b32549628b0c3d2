"""The claim's plan needs statistics of ``jobs``: the first large batch enqueued into a table
without any analyzes it (see :mod:`bridge.store.postgres.jobs`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from bridge.store.postgres import PostgresStore
from bridge.store.postgres.jobs import ANALYZE_BATCH
from bridge.store.records import NewJob
from tests.fakes.postgres import fresh_schema, migrated_store, postgres_url

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

STATISTICS = (
    "SELECT most_common_vals::text FROM pg_stats WHERE schemaname = current_schema() "
    "AND tablename = 'jobs' AND attname = 'state'"
)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with fresh_schema(postgres_url()) as url:
        yield url


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresStore]:
    async with migrated_store(url) as store:
        yield store


def jobs(start: int, count: int) -> list[NewJob]:
    return [
        NewJob("deliver", {"n": n}, dedupe_key=f"d:{n}", host=f"h{n % 10}.example")
        for n in range(start, start + count)
    ]


async def statistics(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        value: str | None = await conn.fetchval(STATISTICS)
        return value
    finally:
        await conn.close()


async def test_small_batches_leave_the_table_to_autovacuum(store: PostgresStore, url: str) -> None:
    assert await store.enqueue(jobs(0, ANALYZE_BATCH - 1), NOW) == ANALYZE_BATCH - 1
    assert await statistics(url) is None


async def test_the_first_large_batch_analyzes_a_table_without_statistics(
    store: PostgresStore, url: str
) -> None:
    async with store.transaction():
        # Inside the fan-out's transaction: ANALYZE counts the transaction's own rows.
        assert await store.enqueue(jobs(0, ANALYZE_BATCH), NOW) == ANALYZE_BATCH
    assert await statistics(url) == "{queued}"

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE jobs SET state = 'done'")
    finally:
        await conn.close()
    # Statistics exist now: later batches leave them to autovacuum.
    await store.enqueue(jobs(ANALYZE_BATCH, ANALYZE_BATCH), NOW)
    assert await statistics(url) == "{queued}"
