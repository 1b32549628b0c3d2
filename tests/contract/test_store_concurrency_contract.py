"""Store contract, several processes on one database: two store instances (two pools on
PostgreSQL, two connections to one file on SQLite) share the queue without stepping on
each other."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bridge.store import open_store
from bridge.store.base import NewBlog, NewJob, Store
from tests.contract.conftest import T0


@pytest.fixture
async def other(store: Store, store_url: str) -> AsyncIterator[Store]:
    """A second, independent instance on the database of ``store`` (migrated by it)."""
    second = await open_store(store_url)
    try:
        yield second
    finally:
        await second.close()


async def _drain(store: Store, worker: str, claimed: list[tuple[str, int]]) -> None:
    while batch := await store.claim_jobs(["deliver"], T0, 3, 60, worker):
        claimed.extend((worker, job.id) for job in batch)
        # Let the other claimers in between, as real workers would while delivering.
        await asyncio.sleep(0)


async def test_concurrent_claims_never_lease_a_job_twice(store: Store, other: Store) -> None:
    jobs = [NewJob("deliver", {"n": n}, host=f"h{n % 7}.example") for n in range(120)]
    assert await store.enqueue(jobs, T0) == 120
    claimed: list[tuple[str, int]] = []
    await asyncio.gather(
        *(_drain(store, f"a{w}", claimed) for w in range(4)),
        *(_drain(other, f"b{w}", claimed) for w in range(4)),
    )
    twice = [job_id for job_id, n in Counter(job_id for _, job_id in claimed).items() if n > 1]
    assert twice == [], "no job may be leased by two workers"
    assert len(claimed) == 120
    # Every lease is recorded for the worker that got the job.
    for worker, job_id in claimed[::10]:
        job = await other.get_job(job_id)
        assert job is not None and job.state == "running" and job.claimed_by == worker


async def test_expired_lease_goes_to_exactly_one_claimer(store: Store, other: Store) -> None:
    await store.enqueue([NewJob("deliver", {"n": n}) for n in range(10)], T0)
    assert len(await store.claim_jobs(["deliver"], T0, 10, 30, "crashed")) == 10
    later = T0 + timedelta(seconds=31)
    first, second = await asyncio.gather(
        store.claim_jobs(["deliver"], later, 10, 30, "w1"),
        other.claim_jobs(["deliver"], later, 10, 30, "w2"),
    )
    ids = [job.id for job in first] + [job.id for job in second]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 10


async def test_concurrent_enqueue_dedupes_across_instances(store: Store, other: Store) -> None:
    def batch(start: int) -> list[NewJob]:
        # Overlapping ranges, and a key repeated within the batch itself.
        keys = [*range(start, start + 30), start]
        return [NewJob("deliver", {"k": k}, dedupe_key=f"deliver:{k}") for k in keys]

    added = await asyncio.gather(
        store.enqueue(batch(0), T0), other.enqueue(batch(20), T0), store.enqueue(batch(10), T0)
    )
    assert sum(added) == 50
    counts = await other.job_counts()
    assert [(c.kind, c.state, c.count) for c in counts] == [("deliver", "queued", 50)]


async def test_writes_of_one_instance_are_seen_by_the_other(store: Store, other: Store) -> None:
    blog = await store.add_blog(NewBlog("shared", "https://s.example/feed"), T0)
    assert await other.get_blog_by_id(blog.id) == blog
    async with other.transaction():
        await other.remove_blog("shared")
    assert await store.get_blog("shared") is None


async def test_tasks_spawned_in_a_transaction_share_it(store: Store) -> None:
    blog = await store.add_blog(NewBlog("tx", "https://tx.example/feed"), T0)

    async def save(n: int) -> None:
        await store.enqueue([NewJob("deliver", {"n": n}, dedupe_key=f"tx:{n}")], T0)

    async with store.transaction():
        await asyncio.gather(*(save(n) for n in range(10)))
    assert [c.count for c in await store.job_counts()] == [10]
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await asyncio.gather(*(save(n) for n in range(10, 20)))
            await store.remove_blog(blog.handle)
            raise RuntimeError("crash after the gather")
    assert [c.count for c in await store.job_counts()] == [10], "all rolled back together"
    assert await store.get_blog("tx") is not None
