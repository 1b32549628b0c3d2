"""The application factory: routes, shared resources and background workers.

Resources live in ``cleanup_ctx`` (opened on start-up, closed on shutdown, in reverse order),
never at import time; state is kept under the typed keys of :mod:`bridge.appkeys`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractResolver

from bridge import logs
from bridge.activitypub import keys, nodeinfo, webfinger
from bridge.appkeys import CONFIG, CONTEXT
from bridge.config import Config
from bridge.context import Clock, open_context, utc_now
from bridge.federation import followers_sync, inbox
from bridge.federation.delivery import Deliverer
from bridge.ingest import poller, websub
from bridge.jobs.registry import JOB_KINDS, job_handlers
from bridge.jobs.worker import JobWorker
from bridge.web import backfeed_routes, health, metrics_routes, pages, post_collections
from bridge.web import routes as ap_routes

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    resolver: AbstractResolver | None = None,
    clock: Clock = utc_now,
    run_workers: bool = True,
    poll_tick: float = 5.0,
) -> web.Application:
    """Build the bridge's web application.

    ``run_workers`` starts the feed poller (with WebSub renewal) and the job worker (fan-out,
    deliveries, inbound processing, pushes into blogs, the dialog) beside the web server;
    ``resolver`` and ``clock`` are seams for tests.
    """
    app = web.Application(
        client_max_size=config.limits.max_feed_bytes + 64 * 1024,
        middlewares=[logs.request_ids, metrics_routes.request_latency],
    )
    app[CONFIG] = config

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with open_context(config, resolver=resolver, clock=clock) as ctx:
            app[CONTEXT] = ctx
            # Keys are made before the first request so a follower never waits on RSA.
            now = ctx.clock()
            await keys.ensure_keypair(ctx.store, keys.INSTANCE_OWNER, now)
            for blog in await ctx.store.list_blogs():
                await keys.ensure_keypair(ctx.store, blog.handle, now)
            log.info(
                "bridge ready base_url=%s domain=%s database=%s",
                config.base_url,
                config.domain,
                config.database_url.split("://", 1)[0],
            )
            yield

    async def workers(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        ctx = app[CONTEXT]
        deliverer = Deliverer()
        handlers = job_handlers(JOB_KINDS, deliverer)
        jobs = JobWorker.from_config(ctx, handlers)
        try:
            jobs.hold_id()  # on SQLite: refuse to start beside a process holding the same id
        except BaseException:
            deliverer.close()
            raise
        tasks = [
            asyncio.create_task(
                supervise("poller", lambda: poller.run_poller(ctx, stop, tick=poll_tick), stop)
            ),
            asyncio.create_task(supervise("jobs", lambda: jobs.run(stop), stop)),
        ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            deliverer.close()

    app.cleanup_ctx.append(resources)
    if run_workers:
        app.cleanup_ctx.append(workers)

    app.add_routes(health.routes)
    app.add_routes(metrics_routes.routes)
    inbox.install(app)
    app.add_routes(followers_sync.routes)
    app.add_routes(webfinger.routes)
    app.add_routes(nodeinfo.routes)
    app.add_routes(websub.routes)
    app.add_routes(ap_routes.routes)
    app.add_routes(backfeed_routes.routes)
    app.add_routes(post_collections.routes)
    app.add_routes(pages.routes)
    return app


async def supervise(
    name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event, *, first_delay: float = 5.0
) -> None:
    """Run a worker loop until ``stop``; when it crashes, log the traceback and restart it.

    Errors a worker can attribute (a bad feed) stay inside it; what escapes is a bug or a
    failing database, so the web side keeps serving while the worker backs off and retries.
    """
    delay = first_delay
    while not stop.is_set():
        try:
            await run()
            return
        except Exception:
            log.exception("worker %s crashed; restarting in %.0f s", name, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, 300.0)
