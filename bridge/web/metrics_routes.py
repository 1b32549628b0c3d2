"""``GET /metrics`` (Prometheus text format) and the middleware that times every request.

The endpoint is served to every client: it names no follower, host or URL, only counts (see
:mod:`bridge.metrics`). Operators who would rather not publish even those keep it off the
internet at the proxy, as the nginx site in ``deploy/`` does (``/metrics`` answers only
loopback there); a worker process serves it on its ``--health-listen`` address.

Before rendering, the store gauges are refreshed (cached for ``Metrics.store_cache_seconds``).
Should the database fail to answer, the scrape still succeeds with the counters and the
previous store reading: ``feedfed_store_snapshot_errors_total`` rises and
``feedfed_store_snapshot_timestamp_seconds`` shows how old the served reading is, so an
alert fires on the database instead of every counter vanishing with the scrape.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.appkeys import CONTEXT
from bridge.metrics import CONTENT_TYPE, UNMATCHED_ROUTE
from bridge.web.health import DATABASE_ERRORS

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

STORE_TIMEOUT = 3.0
"""Seconds the store has to answer a scrape's queries."""

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods labelled by name; any other token a client sends is ``other``."""

CLIENT_GONE = 499
"""The status recorded when the client went away before its answer (nginx's convention)."""


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """The process's metrics in the Prometheus text exposition format."""
    ctx = request.app[CONTEXT]
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            await ctx.metrics.refresh_store(ctx.store, ctx.clock())
    except DATABASE_ERRORS as exc:
        ctx.metrics.store_errors.inc()
        log.warning("metrics: store gauges not refreshed: %s", str(exc) or type(exc).__name__)
    return web.Response(
        body=ctx.metrics.render(),
        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"},
    )


def route_label(request: web.Request) -> str:
    """The matched route's template (``/users/{handle}/inbox``), never the raw path."""
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical


@web.middleware
async def request_latency(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request into ``feedfed_http_request_duration_seconds`` by method, route
    template and status (an exception escaping the handler counts as 500, a client that
    hung up as 499)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        method = request.method if request.method in METHODS else "other"
        request.app[CONTEXT].metrics.count_request(
            method, route_label(request), status, loop.time() - started
        )
