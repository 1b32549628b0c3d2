"""The SQLite store's reads outside transactions: a second connection on the loop thread.

They must never see half a transaction, must not wait behind one, must see what was
committed, and inside ``transaction()`` must see the block's own writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.store.base import NewBlog
from bridge.store.sqlite import SQLiteStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(str(tmp_path / "reads.db"))
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_read_does_not_wait_for_another_tasks_transaction(store: SQLiteStore) -> None:
    await store.add_blog(NewBlog("before", "http://blog.test/feed"), NOW)
    inside, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with store.transaction():
            await store.add_blog(NewBlog("during", "http://blog.test/feed2"), NOW)
            inside.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    # Answered while the transaction is open, from the last committed state.
    before = await asyncio.wait_for(store.get_blog("before"), timeout=2)
    during = await asyncio.wait_for(store.get_blog("during"), timeout=2)
    assert before is not None and before.handle == "before"
    assert during is None
    release.set()
    await task
    committed = await store.get_blog("during")
    assert committed is not None and committed.feed_url == "http://blog.test/feed2"


async def test_a_transaction_reads_its_own_writes(store: SQLiteStore) -> None:
    async with store.transaction():
        await store.add_blog(NewBlog("mine", "http://blog.test/feed"), NOW)
        seen = await store.get_blog("mine")
        assert seen is not None and seen.handle == "mine"
    assert await store.get_blog("mine") is not None


async def test_a_rolled_back_write_is_never_read(store: SQLiteStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.add_blog(NewBlog("gone", "http://blog.test/feed"), NOW)
            raise RuntimeError("abort")
    assert await store.get_blog("gone") is None
