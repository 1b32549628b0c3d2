"""What only the PostgreSQL backend has to get right: several processes migrating at once,
values PostgreSQL cannot hold, connection errors. The shared behaviour is in tests/contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from bridge.errors import StoreError
from bridge.store import open_store
from bridge.store.base import NewBlog, NewInbound, NewJob, Store
from bridge.store.postgres import PostgresStore
from bridge.store.postgres.connection import redact
from bridge.store.schema import MIGRATIONS
from tests.contract.conftest import T0
from tests.fakes.postgres import fresh_schema, postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with fresh_schema(postgres_url()) as schema_url:
        yield schema_url


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    backend = await open_store(url)
    await backend.migrate()
    yield backend
    await backend.close()


async def test_processes_starting_together_migrate_once(url: str) -> None:
    stores = [await PostgresStore.open(url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
        assert sorted(applied) == [[], [], [m.version for m in MIGRATIONS]]
        assert await stores[0].pending_migrations() == []
    finally:
        for s in stores:
            await s.close()


async def test_pending_migrations_on_an_empty_schema_writes_nothing(url: str) -> None:
    store = await PostgresStore.open(url)
    try:
        assert await store.pending_migrations() == [m.version for m in MIGRATIONS]
        assert await store.pool.fetchval("SELECT to_regclass('schema_migrations')") is None
    finally:
        await store.close()


async def test_a_nul_character_is_refused_and_rolls_back(store: Store) -> None:
    # SQLite would keep it; PostgreSQL text and JSONB cannot hold U+0000.
    blog = await store.add_blog(NewBlog("n", "https://n.example/feed"), T0)
    evil = {"id": "https://m.example/a/1", "content": "a\u0000b"}
    with pytest.raises(StoreError, match="PostgreSQL refused"):
        async with store.transaction():
            await store.enqueue([NewJob("deliver", {})], T0)
            await store.record_inbound(NewInbound("m.example", "x", "a", "Note", evil), T0)
    assert await store.job_counts() == []
    with pytest.raises(StoreError, match="PostgreSQL refused"):
        await store.add_blog(NewBlog("nul\u0000", "https://n.example/feed"), T0)
    assert [b.handle for b in await store.list_blogs()] == [blog.handle]


async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.enqueue([NewJob("deliver", {})], datetime(2026, 1, 1))


async def test_text_sorts_by_code_point_whatever_the_locale(store: Store) -> None:
    for handle in ("ä", "b", "Z", "a"):
        await store.add_blog(NewBlog(handle, "https://x.example/feed"), T0)
    assert [b.handle for b in await store.list_blogs()] == ["Z", "a", "b", "ä"]


async def test_unreachable_server_is_a_store_error_without_the_password() -> None:
    postgres_url()
    url = "postgresql://feedfed:s3cret@127.0.0.1:1/feedfed"
    with pytest.raises(StoreError, match="cannot connect") as caught:
        await open_store(url)
    assert "s3cret" not in str(caught.value)
    assert redact(url) == "postgresql://feedfed:***@127.0.0.1:1/feedfed"


async def test_closed_store_refuses_calls(url: str) -> None:
    store = await PostgresStore.open(url)
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.list_blogs()
