"""Store contract, the inbox's write: an activity stored and its job enqueued together
(``store_inbound``), and what other tasks see while a transaction is open."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

import pytest

from bridge.store.base import NewBlog, NewInbound, NewJob, Store
from tests.contract.conftest import T0

ACTOR = "https://m.example/users/a"


def activity(n: int, origin: str = "m.example") -> NewInbound:
    data = {"id": f"https://{origin}/a/{n}", "type": "Like", "actor": ACTOR}
    return NewInbound(origin, data["id"], ACTOR, "Like", data)


def job_for(inbound_id: int) -> NewJob:
    return NewJob("inbound", {"inbound_id": inbound_id}, dedupe_key=f"inbound:{inbound_id}")


async def queued(store: Store) -> list[dict[str, object]]:
    """Payloads of the queued ``inbound`` jobs, by job id."""
    jobs = sorted(await store.list_jobs("queued", "inbound", limit=100), key=lambda j: j.id)
    return [job.payload for job in jobs]


async def test_store_inbound_stores_the_activity_and_enqueues_its_job(store: Store) -> None:
    blog = await store.add_blog(NewBlog("b", "https://b.example/feed"), T0)
    first = await store.store_inbound(
        NewInbound("m.example", "https://m.example/a/1", ACTOR, "Like", {"n": 1}, blog.id),
        job_for,
        T0,
    )
    assert first is not None
    stored = await store.get_inbound(first)
    assert stored is not None
    assert (stored.origin, stored.activity_id, stored.type, stored.payload, stored.blog_id) == (
        "m.example",
        "https://m.example/a/1",
        "Like",
        {"n": 1},
        blog.id,
    )
    assert (stored.state, stored.received_at) == ("received", T0)
    jobs = await store.list_jobs("queued", "inbound")
    assert [(j.payload, j.dedupe_key, j.run_at) for j in jobs] == [
        ({"inbound_id": first}, f"inbound:{first}", T0)
    ]


async def test_store_inbound_dedupes_as_record_inbound_does(store: Store) -> None:
    first = await store.store_inbound(activity(1), job_for, T0)
    assert first is not None
    # Seen before (by either way of storing): no row, no job.
    assert await store.store_inbound(activity(1), job_for, T0) is None
    recorded = await store.record_inbound(activity(2), T0)
    assert recorded is not None
    assert await store.store_inbound(activity(2), job_for, T0) is None
    # The same id from another host is another activity.
    forged = NewInbound("evil.example", activity(1).activity_id, ACTOR, "Like", {})
    other = await store.store_inbound(forged, job_for, T0)
    assert other is not None and len({first, recorded, other}) == 3
    assert await queued(store) == [{"inbound_id": first}, {"inbound_id": other}]


async def test_concurrent_store_inbound_of_one_activity_stores_it_once(store: Store) -> None:
    ids = await asyncio.gather(*(store.store_inbound(activity(7), job_for, T0) for _ in range(12)))
    stored = [i for i in ids if i is not None]
    assert len(stored) == 1
    assert await queued(store) == [{"inbound_id": stored[0]}]


async def test_store_inbound_stores_neither_when_the_job_cannot_be_made(store: Store) -> None:
    def broken(inbound_id: int) -> NewJob:
        raise LookupError(f"no job for {inbound_id}")

    with pytest.raises(LookupError):
        await store.store_inbound(activity(1), broken, T0)
    assert await queued(store) == []
    # Nothing of it was kept (the activity can be stored again), and nothing was left open.
    again = await store.store_inbound(activity(1), job_for, T0)
    assert again is not None
    assert await queued(store) == [{"inbound_id": again}]


async def test_store_inbound_joins_the_callers_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction():
            inbound_id = await store.store_inbound(activity(1), job_for, T0)
            assert inbound_id is not None
            assert await store.get_inbound(inbound_id) is not None
            raise RuntimeError("rolled back")
    assert await queued(store) == []
    assert await store.store_inbound(activity(1), job_for, T0) is not None


async def test_a_transaction_in_progress_is_not_seen_by_other_tasks(store: Store) -> None:
    inside = asyncio.Event()
    seen: list[object] = []

    async def writer() -> None:
        with pytest.raises(RuntimeError):
            async with store.transaction():
                await store.add_blog(NewBlog("tentative", "https://t.example/feed"), T0)
                await store.store_inbound(activity(1), job_for, T0)
                inside.set()
                # The reader's calls are made while this transaction is open.
                await asyncio.sleep(0.05)
                raise RuntimeError("rolled back")

    async def reader() -> None:
        await inside.wait()
        seen.append(await store.get_blog("tentative"))
        seen.append(await store.list_jobs("queued", "inbound"))
        seen.append(await store.store_inbound(activity(2), job_for, T0))

    await asyncio.gather(writer(), reader())
    assert seen[:2] == [None, []]
    assert seen[2] is not None, "the reader's own write was kept"
    assert await queued(store) == [{"inbound_id": seen[2]}]
    assert await store.get_blog("tentative") is None


async def test_mark_inbound_records_each_outcome(store: Store) -> None:
    inbound_id = await store.store_inbound(activity(1), job_for, T0)
    assert inbound_id is not None
    await store.mark_inbound(inbound_id, "received", "actor unreachable")
    await store.mark_inbound(inbound_id, "processed")
    marked = await store.get_inbound(inbound_id)
    assert marked is not None and (marked.state, marked.error) == ("processed", None)
    untouched = await store.record_inbound(activity(2), T0)
    assert untouched is not None
    other = await store.get_inbound(untouched)
    assert other is not None and (other.state, other.error) == ("received", None)


async def test_a_failing_call_among_concurrent_ones_fails_alone(store: Store) -> None:
    def odd_fails(inbound_id: int) -> NewJob:
        raise LookupError("no job for this one")

    def store_one(n: int) -> Awaitable[int | None]:
        return store.store_inbound(activity(n), odd_fails if n % 2 else job_for, T0)

    outcomes = await asyncio.gather(*(store_one(n) for n in range(20)), return_exceptions=True)
    failed = [n for n, outcome in enumerate(outcomes) if isinstance(outcome, LookupError)]
    stored = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert failed == list(range(1, 20, 2))
    assert len(stored) == 10
    jobs = await queued(store)
    assert sorted(jobs, key=str) == sorted(({"inbound_id": i} for i in stored), key=str)
    # The failed ones left nothing behind: each can be stored now.
    assert all([await store.store_inbound(activity(n), job_for, T0) for n in failed])


async def test_store_inbound_clears_the_failures_of_its_origin(store: Store) -> None:
    await store.record_host_failure("m.example", T0)
    await store.mark_host_unavailable("m.example", T0)
    await store.record_host_failure("other.example", T0)
    later = T0 + timedelta(hours=1)
    assert await store.store_inbound(activity(1), job_for, later) is not None
    healed = await store.get_host("m.example")
    assert healed is not None
    assert (healed.failures, healed.first_failure_at, healed.unavailable) == (0, None, False)
    assert healed.last_success_at == later
    # Another origin keeps its failures; a host never heard of gets no row.
    failing = await store.get_host("other.example")
    assert failing is not None and failing.failures == 1
    assert await store.store_inbound(activity(2, "new.example"), job_for, later) is not None
    assert await store.get_host("new.example") is None
    # A duplicate is word from the origin too.
    await store.record_host_failure("m.example", later)
    assert await store.store_inbound(activity(1), job_for, later) is None
    again = await store.get_host("m.example")
    assert again is not None and again.failures == 0
