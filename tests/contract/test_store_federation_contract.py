"""Store contract, federation roles: followers, jobs, hosts, remote cache, inbound, blocks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.store.base import (
    Follower,
    NewBlog,
    NewInbound,
    NewJob,
    RemoteActor,
    RemoteKey,
    Store,
)
from tests.contract.conftest import T0


def follower(blog_id: int, actor: str, **changes: object) -> Follower:
    host = actor.split("/")[2]
    base = Follower(
        blog_id=blog_id,
        actor_id=actor,
        inbox=f"{actor}/inbox",
        shared_inbox=f"https://{host}/inbox",
        state="accepted",
        created_at=T0,
        follow_id=f"{actor}#follow",
    )
    return Follower(**{**base.__dict__, **changes})  # type: ignore[arg-type]


async def test_followers(store: Store) -> None:
    blog = await store.add_blog(NewBlog("b", "https://b.example/feed"), T0)
    other = await store.add_blog(NewBlog("o", "https://o.example/feed"), T0)
    alice = follower(blog.id, "https://m.example/users/alice")
    await store.put_follower(alice)
    await store.put_follower(follower(blog.id, "https://m.example/users/bob"))
    await store.put_follower(follower(blog.id, "https://solo.example/u/carol", shared_inbox=None))
    await store.put_follower(follower(blog.id, "https://p.example/u/dave", state="pending"))
    await store.put_follower(follower(other.id, "https://m.example/users/alice"))

    assert await store.count_followers(blog.id) == 3
    # Every blog's accepted followers; alice counts once per blog she follows.
    assert await store.count_all_followers() == 4
    assert await store.get_follower(blog.id, alice.actor_id) == alice
    pending = await store.list_followers(blog.id, limit=10, state="pending")
    assert [f.actor_id for f in pending] == ["https://p.example/u/dave"]
    # Shared inboxes collapse followers of one server into one delivery.
    assert await store.delivery_inboxes(blog.id, "", 10) == [
        "https://m.example/inbox",
        "https://solo.example/u/carol/inbox",
    ]
    assert await store.delivery_inboxes(blog.id, "https://m.example/inbox", 10) == [
        "https://solo.example/u/carol/inbox"
    ]
    assert await store.followers_on_host(blog.id, "m.example") == [
        "https://m.example/users/alice",
        "https://m.example/users/bob",
    ]

    # Updating keeps created_at and the Follow id when none is given.
    await store.put_follower(
        follower(
            blog.id,
            alice.actor_id,
            inbox="https://m.example/new",
            created_at=T0 + timedelta(1),
            follow_id=None,
        )
    )
    again = await store.get_follower(blog.id, alice.actor_id)
    assert again is not None and again.inbox == "https://m.example/new"
    assert again.created_at == T0 and again.follow_id == alice.follow_id

    assert await store.remove_follower(blog.id, "https://m.example/users/bob")
    assert not await store.remove_follower(blog.id, "https://m.example/users/bob")
    assert await store.remove_actor_everywhere(alice.actor_id) == [blog.id, other.id]
    assert await store.remove_followers_by_inbox("https://solo.example/u/carol/inbox") == 1
    assert await store.count_followers(blog.id) == 0
    assert await store.count_all_followers() == 0


async def test_jobs_claim_retry_finish(store: Store) -> None:
    jobs = [
        NewJob("deliver", {"n": 1}, dedupe_key="d1", host="a.example"),
        NewJob("deliver", {"n": 2}, dedupe_key="d2", host="b.example"),
        NewJob(
            "deliver", {"n": 3}, dedupe_key="d3", host="a.example", run_at=T0 + timedelta(hours=1)
        ),
        NewJob("fanout", {"n": 4}),
    ]
    assert await store.enqueue(jobs, T0) == 4
    assert await store.enqueue(jobs[:2], T0) == 0, "dedupe keys make enqueueing idempotent"

    claimed = await store.claim_jobs(["deliver"], T0, 10, 60, "w1")
    assert [j.payload["n"] for j in claimed] == [1, 2]
    assert all(j.state == "running" and j.claimed_by == "w1" for j in claimed)
    assert await store.claim_jobs(["deliver"], T0, 10, 60, "w2") == []

    first, second = claimed
    await store.retry_job(first.id, T0, T0 + timedelta(minutes=5), 503, "Service Unavailable")
    retried = await store.get_job(first.id)
    assert retried is not None and retried.state == "queued" and retried.attempts == 1
    assert retried.last_status == 503 and retried.last_error == "Service Unavailable"
    await store.finish_job(second.id, T0, 202)
    assert (await store.get_job(second.id)).state == "done"  # type: ignore[union-attr]

    later = await store.claim_jobs(["deliver"], T0 + timedelta(hours=2), 10, 60, "w1")
    assert sorted(j.payload["n"] for j in later) == [1, 3]
    await store.bury_job(later[0].id, T0, 404, "Not Found")
    assert [j.id for j in await store.list_jobs("dead")] == [later[0].id]
    counts = {(c.kind, c.state): c.count for c in await store.job_counts()}
    assert counts == {
        ("deliver", "dead"): 1,
        ("deliver", "done"): 1,
        ("deliver", "running"): 1,
        ("fanout", "queued"): 1,
    }
    assert await store.requeue_dead(T0 + timedelta(hours=3)) == 1
    assert (await store.get_job(later[0].id)).attempts == 0  # type: ignore[union-attr]
    assert await store.prune_jobs(T0 + timedelta(days=1)) == 1


async def test_enqueue_counts_only_the_jobs_it_added(store: Store) -> None:
    first = [NewJob("deliver", {"n": n}, dedupe_key=f"e{n}", host="a.example") for n in range(3)]
    assert await store.enqueue(first, T0) == 3
    again = [first[1], NewJob("deliver", {"n": 9}, dedupe_key="e9"), first[2], NewJob("x", {})]
    assert await store.enqueue(again, T0) == 2, "one new keyed job and one without a key"
    assert await store.enqueue([], T0) == 0
    queued = await store.claim_jobs(["deliver", "x"], T0, 10, 60, "w")
    assert [j.payload.get("n") for j in queued] == [0, 1, 2, 9, None], "ids follow the order"


async def test_finish_jobs_marks_a_batch_done_each_with_its_own_time_and_status(
    store: Store,
) -> None:
    jobs = [NewJob("deliver", {"n": n}, dedupe_key=f"b{n}", host="a.example") for n in range(5)]
    await store.enqueue(jobs, T0)
    claimed = await store.claim_jobs(["deliver"], T0, 10, 60, "w1")
    assert [j.payload["n"] for j in claimed] == [0, 1, 2, 3, 4], "claims come oldest first"
    done = claimed[:3]
    await store.retry_job(claimed[4].id, T0, T0 + timedelta(hours=1), 503, "busy")
    await store.finish_jobs(
        [(job.id, T0 + timedelta(seconds=n), 200 + n) for n, job in enumerate(done[:2])]
        + [(done[2].id, T0 + timedelta(seconds=9), None)]
    )
    await store.finish_jobs([])  # nothing to write is no error
    for n, job in enumerate(done):
        stored = await store.get_job(job.id)
        assert stored is not None and stored.state == "done" and stored.attempts == 1
        assert stored.lease_until is None
        assert stored.last_status == (200 + n if n < 2 else None)
        assert stored.updated_at == T0 + timedelta(seconds=n if n < 2 else 9)
    untouched = await store.get_job(claimed[3].id)
    assert untouched is not None and untouched.state == "running" and untouched.attempts == 0
    retried = await store.get_job(claimed[4].id)
    assert retried is not None and retried.state == "queued" and retried.last_status == 503

    # Inside a transaction it commits, or rolls back, with the rest.
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.finish_jobs([(claimed[3].id, T0, 202)])
            raise RuntimeError("the batch fails after the write")
    still = await store.get_job(claimed[3].id)
    assert still is not None and still.state == "running"
    async with store.transaction():
        await store.finish_jobs([(claimed[3].id, T0, 202)])
    assert (await store.get_job(claimed[3].id)).state == "done"  # type: ignore[union-attr]


async def test_claims_skip_busy_and_unavailable_hosts_but_not_hostless_jobs(store: Store) -> None:
    await store.enqueue(
        [
            NewJob("deliver", {"n": 1}, host="busy.example"),
            NewJob("deliver", {"n": 2}, host="down.example"),
            NewJob("deliver", {"n": 3}, host="ok.example"),
            NewJob("deliver", {"n": 4}),
        ],
        T0,
    )
    await store.mark_host_unavailable("down.example", T0)
    claimed = await store.claim_jobs(
        ["deliver"], T0, 10, 60, "w1", skip_hosts={"busy.example", "elsewhere.example"}
    )
    assert [j.payload["n"] for j in claimed] == [3, 4]
    assert all(j.lease_until == T0 + timedelta(seconds=60) for j in claimed)
    assert [j.payload["n"] for j in await store.claim_jobs(["deliver"], T0, 10, 60, "w1")] == [1]


async def test_expired_lease_is_reclaimed_and_released(store: Store) -> None:
    await store.enqueue([NewJob("deliver", {}, host="a.example")], T0)
    (job,) = await store.claim_jobs(["deliver"], T0, 1, 30, "dead-worker")
    assert await store.claim_jobs(["deliver"], T0 + timedelta(seconds=29), 1, 30, "w2") == []
    (again,) = await store.claim_jobs(["deliver"], T0 + timedelta(seconds=31), 1, 30, "w2")
    assert again.id == job.id and again.claimed_by == "w2"
    assert not await store.extend_lease(job.id, "dead-worker", T0 + timedelta(minutes=5))
    assert await store.extend_lease(job.id, "w2", T0 + timedelta(minutes=5))
    assert await store.release_jobs("w2", T0) == 1
    (third,) = await store.claim_jobs(["deliver"], T0, 1, 30, "w3")
    assert third.id == job.id


async def test_claim_skips_busy_and_unavailable_hosts(store: Store) -> None:
    await store.enqueue(
        [NewJob("deliver", {"h": h}, host=h) for h in ("a.example", "b.example", "c.example")], T0
    )
    await store.mark_host_unavailable("c.example", T0)
    claimed = await store.claim_jobs(["deliver"], T0, 10, 60, "w", skip_hosts=["a.example"])
    assert [j.host for j in claimed] == ["b.example"]
    await store.record_host_success("c.example", T0)
    assert [j.host for j in await store.claim_jobs(["deliver"], T0, 10, 60, "w")] == [
        "a.example",
        "c.example",
    ]


async def test_skipping_hosts_keeps_hostless_jobs(store: Store) -> None:
    await store.enqueue([NewJob("fanout", {}), NewJob("fanout", {}, host="a.example")], T0)
    claimed = await store.claim_jobs(["fanout"], T0, 10, 60, "w", skip_hosts=["b.example"])
    assert [j.host for j in claimed] == [None, "a.example"]


async def test_hosts(store: Store) -> None:
    assert await store.get_host("a.example") is None
    one = await store.record_host_failure("a.example", T0)
    two = await store.record_host_failure("a.example", T0 + timedelta(days=1))
    assert (one.failures, two.failures) == (1, 2)
    assert two.first_failure_at == T0 and two.last_failure_at == T0 + timedelta(days=1)
    await store.mark_host_unavailable("a.example", T0 + timedelta(days=7))
    assert [h.host for h in await store.list_hosts()] == ["a.example"]
    await store.record_host_success("a.example", T0 + timedelta(days=8))
    healed = await store.get_host("a.example")
    assert healed is not None and not healed.unavailable and healed.failures == 0
    assert healed.first_failure_at is None
    assert await store.list_hosts() == []
    await store.set_signature_scheme("a.example", "cavage")
    assert (await store.get_host("a.example")).signature_scheme == "cavage"  # type: ignore[union-attr]
    assert [h.host for h in await store.list_hosts(failing_only=False)] == ["a.example"]


async def test_remote_cache(store: Store) -> None:
    key = RemoteKey("https://m.example/users/a#main-key", "https://m.example/users/a", "PEM", T0)
    await store.put_remote_key(key)
    assert await store.get_remote_key(key.key_id) == key
    actor = RemoteActor(
        id="https://m.example/users/a",
        inbox="https://m.example/users/a/inbox",
        shared_inbox="https://m.example/inbox",
        key_id=key.key_id,
        document={"id": "https://m.example/users/a", "name": "Äbel"},
        fetched_at=T0,
        preferred_username="a",
        name="Äbel",
        url="https://m.example/@a",
        also_known_as=("https://old.example/users/a",),
    )
    await store.put_remote_actor(actor)
    assert await store.get_remote_actor(actor.id) == actor
    await store.delete_remote_actor(actor.id)
    assert await store.get_remote_actor(actor.id) is None
    assert await store.get_remote_key(key.key_id) is None


async def test_inbound_dedupe_by_origin(store: Store) -> None:
    activity = {"id": "https://m.example/a/1", "type": "Follow"}
    new = NewInbound("m.example", activity["id"], "https://m.example/users/a", "Follow", activity)
    first = await store.record_inbound(new, T0)
    assert first is not None
    assert await store.record_inbound(new, T0) is None
    # The same id claimed by another host is a different activity: it cannot suppress this one.
    forged = NewInbound("evil.example", activity["id"], "https://evil.example/u", "Follow", {})
    assert await store.record_inbound(forged, T0) is not None
    stored = await store.get_inbound(first)
    assert stored is not None and stored.state == "received" and stored.payload == activity
    await store.mark_inbound(first, "failed", "actor gone")
    marked = await store.get_inbound(first)
    assert marked is not None and (marked.state, marked.error) == ("failed", "actor gone")


@pytest.mark.parametrize(
    ("host", "blocked"),
    [
        ("spam.example", True),
        ("SPAM.example", True),
        ("a.b.spam.example", True),
        ("spam.example:8443", True),
        ("notspam.example", False),
        ("example", False),
    ],
)
async def test_domain_blocks(store: Store, host: str, blocked: bool) -> None:
    await store.block_domain("spam.example", "spam", T0)
    assert await store.is_domain_blocked(host) is blocked


async def test_domain_block_lifecycle(store: Store) -> None:
    await store.block_domain("Spam.Example", None, T0)
    await store.block_domain("spam.example", "updated reason", T0)
    blocks = await store.list_domain_blocks()
    assert [(b.domain, b.reason) for b in blocks] == [("spam.example", "updated reason")]
    assert await store.unblock_domain("spam.example")
    assert not await store.unblock_domain("spam.example")


async def test_blocking_a_domain_cancels_its_queued_jobs(store: Store) -> None:
    hosts = ["spam.example", "spam.example:8443", "a.spam.example", "notspam.example", None]
    await store.enqueue([NewJob("deliver", {"h": h}, host=h) for h in hosts], T0)
    (running,) = await store.claim_jobs(["deliver"], T0, 1, 60, "w")
    assert running.host == "spam.example"
    assert await store.cancel_jobs_for_domain("Spam.Example", T0) == 2
    left = await store.claim_jobs(["deliver"], T0, 10, 60, "w")
    assert sorted(str(j.host) for j in left) == ["None", "notspam.example"]
    # A job already running finishes as it will; only waiting ones are closed.
    assert (await store.get_job(running.id)).state == "running"  # type: ignore[union-attr]
    done = await store.list_jobs("done")
    assert {j.last_error for j in done} == {"cancelled: domain blocked"}


async def test_deliveries_to_an_inbox_without_followers_left_are_cancelled(store: Store) -> None:
    blog = await store.add_blog(NewBlog("b", "https://b.example/feed"), T0)
    other = await store.add_blog(NewBlog("o", "https://o.example/feed"), T0)
    shared = "https://social.example/inbox"
    personal = "https://lone.example/users/troll/inbox"
    await store.put_follower(
        follower(blog.id, "https://social.example/users/a", shared_inbox=shared)
    )
    await store.put_follower(
        follower(blog.id, "https://social.example/users/b", shared_inbox=shared)
    )
    await store.put_follower(
        follower(blog.id, "https://lone.example/users/troll", inbox=personal, shared_inbox=None)
    )
    await store.put_follower(
        follower(other.id, "https://lone.example/users/troll", inbox=personal, shared_inbox=None)
    )

    def deliver(handle: str, inbox: str, n: int) -> NewJob:
        payload = {"blog": handle, "inbox": inbox, "activity_id": f"https://x/{n}"}
        return NewJob("deliver", payload, dedupe_key=f"{handle}{inbox}{n}", host="h")

    jobs = [deliver("b", shared, 1), deliver("b", personal, 2), deliver("o", personal, 3)]
    await store.enqueue(jobs, T0)
    follows = await store.follows_of_actor("https://lone.example/users/troll")
    assert [(f.blog_id, f.delivery_inbox) for f in follows] == [
        (blog.id, personal),
        (other.id, personal),
    ]
    # While the follower is there, nothing is cancelled.
    assert await store.cancel_orphaned_deliveries(blog.id, personal, T0) == 0
    await store.remove_actor_everywhere("https://lone.example/users/troll")
    await store.remove_actor_everywhere("https://social.example/users/a")
    # Only the blog's own job to that inbox; a shared inbox another follower uses stays.
    assert await store.cancel_orphaned_deliveries(blog.id, personal, T0) == 1
    assert await store.cancel_orphaned_deliveries(blog.id, shared, T0) == 0
    left = await store.claim_jobs(["deliver"], T0, 10, 60, "w")
    assert sorted((j.payload["blog"], j.payload["inbox"]) for j in left) == [
        ("b", shared),
        ("o", personal),
    ]
    done = await store.list_jobs("done")
    assert [j.last_error for j in done] == ["cancelled: no follower at this inbox"]
