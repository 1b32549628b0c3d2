"""``/metrics`` scraped from a real server after real work: deliveries to a fake inbox on
127.0.0.1, polls of a fake blog, jobs in a real SQLite queue, timed requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bridge.activitypub import keys
from bridge.activitypub.urls import Urls
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.errors import AddressNotAllowed, Rejected, RetryLater
from bridge.federation.delivery import Deliverer, enqueue_direct
from bridge.ingest.poller import poll_blog
from bridge.jobs import DELIVER, FANOUT
from bridge.jobs.worker import JobWorker
from bridge.metrics import (
    HOST_CLASSES,
    JOB_OUTCOMES,
    Metrics,
    count_inbox_request,
    host_class,
)
from bridge.store.base import Follower, KeyPair, NewBlog, NewJob
from bridge.store.sqlite import SQLiteStore
from bridge.web import metrics_routes
from tests.conftest import FakeClock, make_config
from tests.fakes.feedhost import FeedHost, post
from tests.fakes.process import free_port

Serve = Callable[[web.Application], Awaitable[str]]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

LIMITS = {"fetch_timeout": 0.4, "max_feed_bytes": 1024 * 1024}


@pytest.fixture(scope="module")
def keypair() -> KeyPair:
    """One RSA key for the module: generating one per test would dominate its run time."""
    return keys.generate_keypair("blog", datetime(2026, 1, 1, tzinfo=UTC))


@dataclass
class Scraper:
    ctx: BridgeContext
    base: str
    http: aiohttp.ClientSession

    async def text(self) -> str:
        async with self.http.get(f"{self.base}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return await response.text()

    async def samples(self) -> Samples:
        """Every sample of a scrape, keyed by name and labels."""
        found: Samples = {}
        for family in text_string_to_metric_families(await self.text()):
            for sample in family.samples:
                found[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def bridge(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    remote: aiohttp.ClientSession,
    clock: FakeClock,
    serve: Serve,
) -> Scraper:
    """An app with the latency middleware, ``/metrics`` and a few routes to time."""
    config = make_config(limits=LIMITS)
    ctx = BridgeContext(
        config=config,
        store=sqlite_store,
        http=http,
        remote=remote,
        urls=Urls(config.base_url),
        clock=clock,
        metrics=Metrics(store_cache_seconds=10),
    )

    async def actor(request: web.Request) -> web.Response:
        return web.json_response({"handle": request.match_info["handle"]})

    async def forbidden(request: web.Request) -> web.Response:
        raise web.HTTPForbidden()

    async def inbox(request: web.Request) -> web.Response:
        # Stands in for the inbox's log line, which reports each answer this way.
        activity = await request.json()
        count_inbox_request(request.app[CONTEXT].metrics, 202, str(activity.get("type")))
        return web.Response(status=202)

    app = web.Application(middlewares=[metrics_routes.request_latency])
    app[CONTEXT] = ctx
    app.add_routes(metrics_routes.routes)
    app.router.add_get("/users/{handle}", actor)
    app.router.add_get("/private", forbidden)
    app.router.add_post("/users/{handle}/inbox", inbox)
    return Scraper(ctx, await serve(app), http)


async def test_deliveries_are_counted_by_outcome_and_host_class(
    bridge: Scraper, serve: Serve, keypair: KeyPair, clock: FakeClock
) -> None:
    async def answer(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "slow":
            await asyncio.sleep(1)
        return web.Response(status={"ok": 202, "busy": 503, "bad": 422}.get(name, 202))

    fediverse = web.Application()
    fediverse.router.add_post("/{name}/inbox", answer)
    remote = await serve(fediverse)
    ctx = bridge.ctx
    blog = await ctx.store.add_blog(NewBlog("blog", "http://127.0.0.1:1/feed"), clock())
    await ctx.store.put_keypair_if_absent(keypair)
    inboxes = [f"{remote}/{name}/inbox" for name in ("ok", "busy", "bad", "slow")]
    inboxes.append(f"http://127.0.0.1:{free_port()}/inbox")  # nobody listens there
    activity = {"id": "http://127.0.0.1:8080/users/blog/activities/1", "type": "Accept"}
    assert await enqueue_direct(ctx, blog, activity, inboxes) == 5

    deliverer = Deliverer(timeout=0.2)
    worker = JobWorker(ctx, {DELIVER: deliverer}, worker_id="w", poll_interval=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(500):
        if _delivery_count(ctx.metrics) >= 5:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    deliverer.close()

    samples = await bridge.samples()
    deliveries = "feedfed_deliveries_total"
    assert value(samples, deliveries, outcome="done", host_class="2xx") == 1
    assert value(samples, deliveries, outcome="retry", host_class="5xx") == 1
    assert value(samples, deliveries, outcome="dead", host_class="4xx") == 1
    assert value(samples, deliveries, outcome="retry", host_class="timeout") == 1
    assert value(samples, deliveries, outcome="retry", host_class="connection") == 1
    assert sum(v for (name, _), v in samples.items() if name == deliveries) == 5
    attempts = "feedfed_job_attempts_total"
    assert value(samples, attempts, kind=DELIVER, outcome="done") == 1
    assert value(samples, attempts, kind=DELIVER, outcome="retry") == 3
    assert value(samples, attempts, kind=DELIVER, outcome="dead") == 1
    assert value(samples, "feedfed_job_duration_seconds_count", kind=DELIVER) == 5
    # The queue as the store holds it now: three retries waiting, one done, one dead.
    assert value(samples, "feedfed_jobs", kind=DELIVER, state="queued") == 3
    assert value(samples, "feedfed_jobs", kind=DELIVER, state="done") == 1
    assert value(samples, "feedfed_jobs", kind=DELIVER, state="dead") == 1
    # Retries are due later, not overdue.
    age = "feedfed_jobs_oldest_due_age_seconds"
    assert value(samples, age, kind=DELIVER, state="queued") == 0
    # No host, inbox or URL ever becomes a label value.
    for _, labels in samples:
        for _, label in labels:
            assert "127.0.0.1" not in label and "http" not in label and "inbox" not in label


def _delivery_count(metrics: Metrics) -> float:
    return sum(
        metrics.registry.get_sample_value(
            "feedfed_deliveries_total", {"outcome": outcome, "host_class": cls}
        )
        or 0.0
        for outcome in JOB_OUTCOMES
        for cls in HOST_CLASSES
    )


async def test_polls_are_counted_by_outcome(
    bridge: Scraper, serve: Serve, clock: FakeClock
) -> None:
    ctx = bridge.ctx
    feed = FeedHost(items=[post(2), post(1)])
    await feed.start(serve)
    await ctx.store.add_blog(NewBlog("fakeblog", feed.feed_url), clock())

    async def poll() -> str:
        blog = await ctx.store.get_blog("fakeblog")
        assert blog is not None
        return (await poll_blog(ctx, blog)).outcome

    assert await poll() == "new-content"
    assert await poll() == "not-modified"
    feed.feed_status = 500
    assert await poll() == "error"
    feed.feed_status = 410
    assert await poll() == "gone"

    samples = await bridge.samples()
    for outcome in ("new-content", "not-modified", "error", "gone"):
        assert value(samples, "feedfed_polls_total", outcome=outcome) == 1, outcome
    assert value(samples, "feedfed_poll_duration_seconds_count") == 4
    assert value(samples, "feedfed_blogs", feed_status="gone") == 1
    assert value(samples, "feedfed_blogs", feed_status="ok") == 0


async def test_queue_depth_and_age_by_kind_and_state_with_a_short_cache(
    bridge: Scraper, clock: FakeClock
) -> None:
    store, metrics = bridge.ctx.store, bridge.ctx.metrics
    await store.enqueue([NewJob(FANOUT, {"n": n}) for n in range(2)], clock())
    clock.advance(90)
    samples = await bridge.samples()
    assert value(samples, "feedfed_jobs", kind=FANOUT, state="queued") == 2
    age = "feedfed_jobs_oldest_due_age_seconds"
    assert value(samples, age, kind=FANOUT, state="queued") == 90

    # Within the cache time the store is not asked again.
    await store.enqueue([NewJob(FANOUT, {"n": 3})], clock())
    clock.advance(metrics.store_cache_seconds - 1)
    samples = await bridge.samples()
    assert value(samples, "feedfed_jobs", kind=FANOUT, state="queued") == 2
    assert value(samples, age, kind=FANOUT, state="queued") == 90

    clock.advance(1)
    samples = await bridge.samples()
    assert value(samples, "feedfed_jobs", kind=FANOUT, state="queued") == 3
    assert value(samples, age, kind=FANOUT, state="queued") == 90 + metrics.store_cache_seconds
    stamp = value(samples, "feedfed_store_snapshot_timestamp_seconds")
    assert stamp == clock().timestamp()


async def test_followers_and_blogs_counts(bridge: Scraper, clock: FakeClock) -> None:
    store = bridge.ctx.store
    one = await store.add_blog(NewBlog("one", "http://127.0.0.1:1/one"), clock())
    two = await store.add_blog(NewBlog("two", "http://127.0.0.1:1/two"), clock())
    follows = [(one, "a", "accepted"), (one, "b", "accepted"), (two, "a", "accepted")]
    follows.append((two, "c", "pending"))
    for blog, name, state in follows:
        actor = f"http://fedi.test/users/{name}"
        await store.put_follower(
            Follower(blog.id, actor, f"{actor}/inbox", None, state, clock(), f"{actor}#f")  # type: ignore[arg-type]
        )
    samples = await bridge.samples()
    assert value(samples, "feedfed_followers") == 3
    assert value(samples, "feedfed_blogs", feed_status="new") == 2
    assert value(samples, "feedfed_blogs", feed_status="failing") == 0


async def test_request_latency_by_route_template_and_status(bridge: Scraper) -> None:
    for path in ("/users/alice", "/users/bob", "/private", "/no/such/page-12345"):
        async with bridge.http.get(f"{bridge.base}{path}"):
            pass
    async with bridge.http.request("PROPFIND", f"{bridge.base}/users/alice"):
        pass

    samples = await bridge.samples()
    name = "feedfed_http_request_duration_seconds_count"
    assert value(samples, name, method="GET", route="/users/{handle}", status="200") == 2
    assert value(samples, name, method="GET", route="/private", status="403") == 1
    assert value(samples, name, method="GET", route="unmatched", status="404") == 1
    # A method no route takes is answered by aiohttp itself: no route matched.
    assert value(samples, name, method="other", route="unmatched", status="405") == 1
    bucket = "feedfed_http_request_duration_seconds_bucket"
    assert value(samples, bucket, method="GET", route="/users/{handle}", status="200", le="+Inf")
    routes = {dict(labels).get("route") for _, labels in samples} - {None}
    assert routes == {"/users/{handle}", "/private", "unmatched"}  # the scrape times itself after

    samples = await bridge.samples()
    # A scrape is timed once answered: the first shows in the second.
    assert value(samples, name, method="GET", route="/metrics", status="200") == 1


async def test_inbox_requests_by_status_and_known_type(bridge: Scraper) -> None:
    for kind in ("Follow", "Follow", "Like", "<script>Evil</script>", "Article"):
        url = f"{bridge.base}/users/blog/inbox"
        async with bridge.http.post(url, json={"type": kind}) as response:
            assert response.status == 202
    count_inbox_request(bridge.ctx.metrics, 401, "Create")

    samples = await bridge.samples()
    name = "feedfed_inbox_requests_total"
    assert value(samples, name, status="202", type="Follow") == 2
    assert value(samples, name, status="202", type="Like") == 1
    assert value(samples, name, status="202", type="other") == 2  # not an activity type
    assert value(samples, name, status="401", type="Create") == 1
    assert {dict(labels)["type"] for n, labels in samples if n == name} == {
        "Follow",
        "Like",
        "other",
        "Create",
    }


async def test_a_failing_store_still_serves_the_counters(
    bridge: Scraper, sqlite_store: SQLiteStore, clock: FakeClock
) -> None:
    first = await bridge.samples()
    assert value(first, "feedfed_store_snapshot_errors_total") == 0
    await sqlite_store.close()
    clock.advance(60)
    samples = await bridge.samples()
    assert value(samples, "feedfed_store_snapshot_errors_total") == 1
    stamp = value(samples, "feedfed_store_snapshot_timestamp_seconds")
    assert stamp == value(first, "feedfed_store_snapshot_timestamp_seconds") != 0


def test_each_metrics_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.count_poll("gone", 0.1)
    assert b'feedfed_polls_total{outcome="gone"} 1.0' in one.render()
    assert b'feedfed_polls_total{outcome="gone"} 0.0' in two.render()


def test_host_class_follows_the_status_or_the_cause() -> None:
    def raised(error: Exception, cause: BaseException) -> Exception:
        """``error`` as the delivery raises it: inside the handler of ``cause``."""
        try:
            try:
                raise cause
            except type(cause):
                raise error from None
        except type(error) as final:
            return final

    assert host_class(202, None) == "2xx"
    assert host_class(410, Rejected("gone", 410)) == "4xx"
    assert host_class(503, RetryLater("busy", 503)) == "5xx"
    assert host_class(99, None) == "error"
    assert host_class(None, raised(RetryLater("slow"), TimeoutError())) == "timeout"
    reset = aiohttp.ClientConnectionError("reset")
    assert host_class(None, raised(RetryLater("reset"), reset)) == "connection"
    guard = AddressNotAllowed("http://10.0.0.1/inbox", "private address")
    assert host_class(None, raised(Rejected("guard"), guard)) == "refused"
    assert host_class(None, Rejected("job payload names no activity")) == "error"
