"""Process roles, graceful shutdown, health endpoints and log lines.

The real ``feedfed`` command runs in subprocesses (``worker`` on SQLite and on PostgreSQL,
``serve`` with and without workers) against fake fediverse instances and a fake blog on
127.0.0.1; the health checks and the logging pieces also run in-process.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.activitypub.urls import entry_slug
from bridge.appkeys import CONTEXT
from bridge.config import load_config
from bridge.context import BridgeContext, open_context
from bridge.entries import FeedEntry
from bridge.federation.outbox import record_change
from bridge.logs import ContextFilter, JsonFormatter, PlainFormatter, request_ids, tag_jobs
from bridge.store import open_store
from bridge.store.base import FeedState, Follower, NewBlog
from bridge.store.records import Job
from bridge.web import health
from tests.fakes import httpsig
from tests.fakes.feedhost import FeedHost, post
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_actors import FakeActor
from tests.fakes.instance_server import FakeServer
from tests.fakes.postgres import fresh_schema, postgres_url
from tests.fakes.process import feedfed_env, free_port
from tests.fakes.process_roles import Cable, feedfed, get, json_lines, sigterm, wait_http

Serve = Callable[[web.Application], Awaitable[str]]
FOLLOWERS = 12

CONFIG = """
[limits]
worker_concurrency = 32
per_host_concurrency = 2
job_lease_seconds = 300
job_poll_interval = 0.2
delivery_timeout = 10.0
"""


# -- helpers -----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each backend (PostgreSQL: a fresh schema via ``search_path``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'feedfed.db'}"
    else:
        async with fresh_schema(postgres_url()) as url:
            yield url


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[FakeServer, list[FakeActor]]]:
    """One slow fake instance (0.2 s a POST) with FOLLOWERS actors, personal inboxes only."""
    key = httpsig.new_key()
    server = FakeServer()
    instance = server.add(FakeInstance("127.0.0.1", key=key))
    instance.delay = 0.2
    actors = [instance.add_actor(f"u{n}", key=key, shared_inbox=False) for n in range(FOLLOWERS)]
    await server.start()
    try:
        yield server, actors
    finally:
        await server.close()


def bridge_env(tmp_path: Path, database_url: str, feed_url: str | None = None) -> dict[str, str]:
    (tmp_path / "feedfed.toml").write_text(CONFIG, encoding="utf-8")
    return feedfed_env(
        tmp_path,
        free_port(),
        {
            "FEEDFED_CONFIG": str(tmp_path / "feedfed.toml"),
            "FEEDFED_DATABASE_URL": database_url,
            "FEEDFED_ALLOW_PRIVATE_ADDRESSES": "1",
        },
    )


async def seed(env: dict[str, str], followers: list[FakeActor], feed_url: str | None) -> None:
    """A blog followed by ``followers`` and a new post with its fan-out job, as if just polled.

    With ``feed_url`` the blog's feed is that URL and due now; else it is not due for a day.
    """
    config = load_config(env=env)
    async with open_context(config) as ctx:
        now = ctx.clock()
        blog = await ctx.store.add_blog(NewBlog("roles", feed_url or "http://127.0.0.1:9/"), now)
        if feed_url is None:
            polled = FeedState(
                status="ok",
                last_polled_at=now,
                next_poll_at=now + timedelta(days=1),
                first_poll_done=True,
            )
            await ctx.store.update_feed_state(blog.id, polled)
        for actor in followers:
            follower = Follower(blog.id, actor.id, actor.inbox, None, "accepted", now)
            await ctx.store.put_follower(follower)
        entry = FeedEntry(
            id="https://blog.example/neu/",
            link="https://blog.example/neu/",
            title="Teilhaben lassen",
            content_html="<p>Über das Mitteilen.</p>",
            published=now,
        )
        async with ctx.store.transaction():
            stored = await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), now)
            await record_change(ctx, blog, stored, "create", deliver=True)


async def job_states(database_url: str) -> dict[tuple[str, str], int]:
    store = await open_store(database_url)
    try:
        return {(c.kind, c.state): c.count for c in await store.job_counts()}
    finally:
        await store.close()


async def first_delivery(server: FakeServer) -> None:
    await server.log.wait_until(lambda: bool(server.log.deliveries()), 15)


def assert_clean_stop(states: dict[tuple[str, str], int]) -> None:
    """Nothing left running: what was started finished, the rest is back in the queue."""
    assert ("deliver", "running") not in states and ("fanout", "running") not in states, states
    assert states.get(("fanout", "done")) == 1
    assert states.get(("deliver", "done"), 0) >= 1
    assert states.get(("deliver", "queued"), 0) >= 1, "claimed but unstarted jobs go back"
    assert states[("deliver", "done")] + states[("deliver", "queued")] == FOLLOWERS


# -- feedfed worker ----------------------------------------------------------------------


async def test_worker_picks_up_jobs_and_puts_back_what_it_holds_on_sigterm(
    tmp_path: Path, database_url: str, fleet: tuple[FakeServer, list[FakeActor]]
) -> None:
    server, actors = fleet
    env = bridge_env(tmp_path, database_url)
    await seed(env, actors, feed_url=None)
    log = tmp_path / "worker.log"
    health_port = free_port()
    args = ("worker", "--kinds", "fanout,deliver", "--health-listen", f"127.0.0.1:{health_port}")
    # The web role beside it: the instances fetch the blog's key from it to check signatures.
    async with feedfed(env, tmp_path / "web.log", "serve", "--no-workers") as web_proc:
        await wait_http(f"{env['FEEDFED_BASE_URL']}/healthz", web_proc, tmp_path / "web.log")
        async with feedfed(env, log, *args) as proc:
            health_url = f"http://127.0.0.1:{health_port}"
            await wait_http(f"{health_url}/healthz", proc, log)
            assert await get(f"{health_url}/readyz", "probe-1") == (
                200,
                {"status": "ready", "database": "ok", "migrations": "current"},
                "probe-1",
            )
            await first_delivery(server)
            assert await sigterm(proc) == 0
        # Two deliveries at a time to the one host: most were claimed but not started.
        assert_clean_stop(await job_states(database_url))
        lines = json_lines(log)
        messages = [line["message"] for line in lines]
        assert any("SIGTERM: stopping" in m for m in messages)
        assert any("jobs back in the queue" in m and " 0 jobs" not in m for m in messages)
        access = [line for line in lines if line["logger"] == "aiohttp.access"]
        assert any(line["request_id"] == "probe-1" and line["path"] == "/readyz" for line in access)

        # Another run delivers the rest at once: nothing waits for the five-minute lease.
        async with feedfed(env, log, "worker", "--kinds", "deliver") as proc:
            await server.log.wait_until(
                lambda: len({d.url for d in server.log.deliveries()}) == FOLLOWERS, 15
            )
            assert await sigterm(proc) == 0
        assert await sigterm(web_proc) == 0
    assert await job_states(database_url) == {
        ("fanout", "done"): 1,
        ("deliver", "done"): FOLLOWERS,
    }
    assert {d.url for d in server.log.deliveries()} == {actor.inbox for actor in actors}


async def test_worker_polls_feeds_only_when_told(
    tmp_path: Path, serve: Serve, fleet: tuple[FakeServer, list[FakeActor]]
) -> None:
    host = FeedHost(items=[post(1)])
    await host.start(serve)
    database_url = f"sqlite:///{tmp_path / 'feedfed.db'}"
    env = bridge_env(tmp_path, database_url)
    await seed(env, [], feed_url=host.feed_url)
    log = tmp_path / "worker.log"
    async with feedfed(env, log, "worker", "--kinds", "poll") as proc:
        async with asyncio.timeout(15):
            await host.wait_hits("/feed", 1)
        assert await sigterm(proc) == 0
    # Polling only: the post's fan-out job is still waiting for a job worker.
    assert (await job_states(database_url))[("fanout", "queued")] == 1
    assert "worker running kinds=poll" in log.read_text()


def test_worker_refuses_unknown_kinds(tmp_path: Path) -> None:
    from bridge.commands.worker import parse_kinds, parse_listen

    assert parse_kinds("poll, deliver") == ("deliver", "poll")
    for bad in ("", "deliver,mail", ","):
        with pytest.raises(Exception, match="kind"):
            parse_kinds(bad)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    with pytest.raises(Exception, match="HOST:PORT"):
        parse_listen("9000")


# -- feedfed serve -----------------------------------------------------------------------


async def test_serve_without_workers_answers_but_neither_polls_nor_delivers(
    tmp_path: Path, serve: Serve, fleet: tuple[FakeServer, list[FakeActor]]
) -> None:
    server, actors = fleet
    host = FeedHost(items=[post(1)])
    await host.start(serve)
    database_url = f"sqlite:///{tmp_path / 'feedfed.db'}"
    env = bridge_env(tmp_path, database_url)
    await seed(env, actors, feed_url=host.feed_url)
    log = tmp_path / "serve.log"
    base = env["FEEDFED_BASE_URL"]
    async with feedfed(env, log, "serve", "--no-workers") as proc:
        await wait_http(f"{base}/healthz", proc, log)
        status, body, echoed = await get(f"{base}/readyz", "web-probe")
        assert (status, body["status"], echoed) == (200, "ready", "web-probe")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{base}/.well-known/nodeinfo") as response,
        ):
            assert response.status == 200
            generated = response.headers["X-Request-Id"]
        # Ten job-poll intervals and the poller's first tick would have come and gone.
        await asyncio.sleep(2.0)
        assert await sigterm(proc) == 0
    assert host.hits["/feed"] == 0
    assert server.log.deliveries() == []
    assert await job_states(database_url) == {("fanout", "queued"): 1}
    access = [line for line in json_lines(log) if line["logger"] == "aiohttp.access"]
    assert {line["request_id"] for line in access} >= {"web-probe", generated}
    assert len(generated) == 32


async def test_serve_sigterm_runs_the_workers_cleanup(
    tmp_path: Path, fleet: tuple[FakeServer, list[FakeActor]]
) -> None:
    server, actors = fleet
    database_url = f"sqlite:///{tmp_path / 'feedfed.db'}"
    env = bridge_env(tmp_path, database_url)
    await seed(env, actors, feed_url=None)
    log = tmp_path / "serve.log"
    async with feedfed(env, log, "serve") as proc:
        await first_delivery(server)
        assert await sigterm(proc) == 0
    assert_clean_stop(await job_states(database_url))
    messages = [line["message"] for line in json_lines(log)]
    assert any("jobs back in the queue" in m and " 0 jobs" not in m for m in messages)


# -- /healthz and /readyz in-process -----------------------------------------------------


def health_app(ctx: BridgeContext) -> web.Application:
    app = web.Application(middlewares=[request_ids])
    app[CONTEXT] = ctx
    app.add_routes(health.routes)
    return app


async def test_readyz_reports_pending_migrations(ctx: BridgeContext, serve: Serve) -> None:
    base = await serve(health_app(ctx))
    assert (await get(f"{base}/readyz"))[0] == 200
    # As after deploying a release whose migration has not been applied yet.
    await ctx.store._write("DELETE FROM schema_migrations WHERE version = 4")  # type: ignore[attr-defined]
    status, body, _ = await get(f"{base}/readyz")
    assert status == 503
    assert body == {
        "status": "unavailable",
        "reason": "migrations pending: run feedfed migrate",
        "pending_migrations": [4],
    }
    assert (await get(f"{base}/healthz"))[:2] == (200, {"status": "ok"})


async def test_readyz_reports_a_closed_store(ctx: BridgeContext, serve: Serve) -> None:
    base = await serve(health_app(ctx))
    await ctx.store.close()
    status, body, _ = await get(f"{base}/readyz")
    assert (status, body["reason"], body["error"]) == (
        503,
        "database unreachable",
        "store is closed",
    )


@pytest.mark.postgres
async def test_readyz_reports_an_unreachable_database(ctx: BridgeContext, serve: Serve) -> None:
    from urllib.parse import urlsplit

    async with fresh_schema(postgres_url()) as url:
        parts = urlsplit(url)
        cable = Cable(parts.hostname or "127.0.0.1", parts.port or 5432)
        port = await cable.start()
        relayed = parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}").geturl()
        store = await open_store(relayed)
        try:
            await store.migrate()
            ctx.store = store
            base = await serve(health_app(ctx))
            assert (await get(f"{base}/readyz"))[0] == 200
            await cable.cut()
            status, body, _ = await get(f"{base}/readyz")
            assert (status, body["status"], body["reason"]) == (
                503,
                "unavailable",
                "database unreachable",
            )
            assert body["error"]
            assert (await get(f"{base}/healthz"))[0] == 200, "alive all the same"
        finally:
            await store.close()


# -- log lines in-process ----------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """JSON lines of the ``bridge.test`` logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bridge.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_job_handlers_log_under_their_job_id(
    ctx: BridgeContext, captured: io.StringIO
) -> None:
    async def handler(ctx: BridgeContext, job: Job) -> int | None:
        logging.getLogger("bridge.test").info("working on %s", job.kind)
        return 202

    [tagged] = tag_jobs({"deliver": handler}).values()
    now = ctx.clock()
    job = Job(41, "deliver", {}, None, None, "running", 0, now, None, None, None, None, now, now)
    both = await asyncio.gather(tagged(ctx, job), tagged(ctx, replace(job, id=42)))
    assert list(both) == [202, 202]
    logging.getLogger("bridge.test").info("outside")
    lines = records(captured)
    assert sorted(line["job_id"] for line in lines[:2]) == [41, 42]
    assert "job_id" not in lines[2]
    assert lines[0]["message"] == "working on deliver"


async def test_requests_log_under_their_id(serve: Serve, captured: io.StringIO) -> None:
    async def hello(request: web.Request) -> web.Response:
        logging.getLogger("bridge.test").info("hello")
        return web.Response(text="hi")

    app = web.Application(middlewares=[request_ids])
    app.router.add_get("/", hello)
    base = await serve(app)
    async with aiohttp.ClientSession() as session:
        async with session.get(base, headers={"X-Request-Id": "req-7"}) as response:
            assert response.headers["X-Request-Id"] == "req-7"
        async with session.get(base, headers={"X-Request-Id": "bad id <script>"}) as response:
            assert response.headers["X-Request-Id"] == "badidscript"
        async with session.get(base) as response:
            fresh = response.headers["X-Request-Id"]
    assert [line["request_id"] for line in records(captured)] == ["req-7", "badidscript", fresh]


def test_plain_lines_carry_the_ids() -> None:
    record = logging.LogRecord("bridge.x", logging.INFO, __file__, 1, "did %s", ("it",), None)
    record.request_id, record.job_id = "r1", 5
    assert PlainFormatter().format(record).endswith("INFO bridge.x did it request_id=r1 job_id=5")
