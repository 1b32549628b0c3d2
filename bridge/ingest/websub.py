"""WebSub (W3C Recommendation), subscriber side: a hub pushes the feed instead of us polling.

Subscribing stores the subscription as ``pending`` before the hub is asked, because a hub may
verify our intent before it even answers. The hub then calls ``GET /websub/{handle}`` (intent
verification, which makes it ``active``) and later ``POST /websub/{handle}`` with new content,
signed with the subscription's secret; that content takes the very path a polled document takes.
While a subscription is active the poller only checks in at the maximum interval; whenever it
fails (refused, denied, lease lapsed) adaptive polling takes over again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

import aiohttp
from aiohttp import web

from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.errors import BlogNotFound, FeedError, WebSubError
from bridge.ingest.document import ingest_document
from bridge.store.base import Blog, WebSubSubscription

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Leases ending within this window are renewed by ``renew_expiring``.
RENEW_BEFORE = timedelta(days=1)
# The algorithms WebSub names for X-Hub-Signature.
SIGNATURE_METHODS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
HUB_ACCEPTED = frozenset({202, 204})
_READ_CHUNK = 64 * 1024

Mode = Literal["subscribe", "unsubscribe"]


def is_active(subscription: WebSubSubscription | None, now: datetime) -> bool:
    """True while the hub is expected to push: verified and the lease still running."""
    return (
        subscription is not None
        and subscription.status == "active"
        and subscription.lease_expires_at is not None
        and subscription.lease_expires_at > now
    )


async def ensure_subscription(
    ctx: BridgeContext, blog: Blog, hub_url: str | None, topic_url: str
) -> WebSubSubscription | None:
    """After a successful poll: subscribe at the feed's hub unless already subscribed there.

    A lapsed lease means subscribing afresh. A pending subscription the hub never verified, or a
    failed one, is tried again once ``limits.max_error_backoff`` has passed (hubs are not asked
    on every poll). When the feed no longer names a hub, a standing subscription is cancelled.
    Never raises for hub trouble: the outcome is stored on the subscription and polling simply
    continues.
    """
    current = await ctx.store.get_websub(blog.id)
    if hub_url is None:
        if current is not None and current.status in ("pending", "active"):
            return await unsubscribe(ctx, blog)
        return current
    if current is not None and (current.hub_url, current.topic_url) == (hub_url, topic_url):
        if is_active(current, ctx.clock()):
            return current
        retry_after = timedelta(seconds=ctx.config.limits.max_error_backoff)
        settled_at = current.updated_at
        fresh = settled_at is not None and ctx.clock() - settled_at < retry_after
        if current.status in ("pending", "failed") and fresh:
            return current
    return await subscribe(ctx, blog, hub_url, topic_url)


async def subscribe(
    ctx: BridgeContext, blog: Blog, hub_url: str, topic_url: str, *, secret: str | None = None
) -> WebSubSubscription:
    """Ask the hub for a subscription; returns it as stored (``pending`` or ``failed``).

    ``secret`` is given when renewing, so pushes signed before the renewal is verified still
    check out; a new subscription gets a fresh 32-byte secret.
    """
    previous = await ctx.store.get_websub(blog.id)
    keeps_lease = previous is not None and (previous.hub_url, previous.topic_url) == (
        hub_url,
        topic_url,
    )
    pending = WebSubSubscription(
        blog_id=blog.id,
        hub_url=hub_url,
        topic_url=topic_url,
        secret=secret or secrets.token_hex(32),
        status="pending",
        lease_expires_at=previous.lease_expires_at if previous and keeps_lease else None,
        updated_at=ctx.clock(),
    )
    await ctx.store.put_websub(pending)
    try:
        await _ask_hub(ctx, blog, pending, "subscribe")
    except WebSubError as exc:
        log.warning("websub %s: subscribing at %s failed: %s", blog.handle, hub_url, exc)
        return await _fail(
            ctx, blog, pending, str(exc), was_active=is_active(previous, ctx.clock())
        )
    return await ctx.store.get_websub(blog.id) or pending


async def unsubscribe(ctx: BridgeContext, blog: Blog) -> WebSubSubscription | None:
    """Ask the hub to stop pushing; the hub's verification then removes the subscription."""
    current = await ctx.store.get_websub(blog.id)
    if current is None:
        return None
    leaving = replace(current, status="unsubscribed", last_error=None, updated_at=ctx.clock())
    await ctx.store.put_websub(leaving)
    try:
        await _ask_hub(ctx, blog, leaving, "unsubscribe")
    except WebSubError as exc:
        # The lease runs out on its own; until then pushes are still signed and harmless.
        log.warning("websub %s: unsubscribing at %s failed: %s", blog.handle, current.hub_url, exc)
        failed = replace(leaving, last_error=str(exc), updated_at=ctx.clock())
        await ctx.store.put_websub(failed)
        return failed
    return await ctx.store.get_websub(blog.id)


async def renew_expiring(ctx: BridgeContext) -> list[WebSubSubscription]:
    """Re-subscribe every active subscription whose lease ends within :data:`RENEW_BEFORE`."""
    renewed: list[WebSubSubscription] = []
    for sub in await ctx.store.websubs_expiring(ctx.clock() + RENEW_BEFORE):
        blog = await ctx.store.get_blog_by_id(sub.blog_id)
        if blog is None or blog.feed.status == "gone":
            continue
        renewed.append(await subscribe(ctx, blog, sub.hub_url, sub.topic_url, secret=sub.secret))
    return renewed


def signature_matches(body: bytes, header: str | None, secret: str) -> bool:
    """Whether ``X-Hub-Signature`` (``method=hexdigest``) is the HMAC of ``body`` by ``secret``."""
    if not header or "=" not in header:
        return False
    method, _, received = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.lower())
    if digest is None:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, digest).hexdigest()
    return hmac.compare_digest(expected, received.strip().lower())


@routes.get("/websub/{handle}")
async def verify_intent(request: web.Request) -> web.StreamResponse:
    """Intent verification: echo the challenge for what we asked for, 404 for anything else."""
    ctx = request.app[CONTEXT]
    blog = await ctx.store.get_blog(request.match_info["handle"])
    if blog is None:
        raise web.HTTPNotFound(text="no such blog")
    query = request.query
    mode, topic = query.get("hub.mode"), query.get("hub.topic")
    sub = await ctx.store.get_websub(blog.id)
    if sub is None or topic != sub.topic_url:
        raise web.HTTPNotFound(text="no such subscription")
    now = ctx.clock()
    if mode == "denied":
        reason = query.get("hub.reason") or "no reason given"
        log.warning(
            "websub %s: hub %s denied the subscription: %s", blog.handle, sub.hub_url, reason
        )
        await _fail(ctx, blog, sub, f"hub denied: {reason}", was_active=is_active(sub, now))
        return web.Response(text="")
    challenge = query.get("hub.challenge")
    if not challenge:
        raise web.HTTPNotFound(text="no challenge")
    if mode == "subscribe" and sub.status in ("pending", "active"):
        lease = _lease_seconds(
            query.get("hub.lease_seconds"), ctx.config.limits.websub_lease_seconds
        )
        await ctx.store.put_websub(
            replace(
                sub,
                status="active",
                lease_expires_at=now + timedelta(seconds=lease),
                last_error=None,
                updated_at=now,
            )
        )
        log.info("websub %s: subscription at %s active for %d s", blog.handle, sub.hub_url, lease)
        return web.Response(text=challenge, content_type="text/plain")
    if mode == "unsubscribe" and sub.status == "unsubscribed":
        await ctx.store.delete_websub(blog.id)
        return web.Response(text=challenge, content_type="text/plain")
    raise web.HTTPNotFound(text="not a pending request")


@routes.post("/websub/{handle}")
async def receive_content(request: web.Request) -> web.StreamResponse:
    """Content distribution: a signed push goes through the poller's ingest path.

    As WebSub requires, a push whose signature is missing or wrong is acknowledged with a 2xx
    (so the hub does not retry it) and otherwise ignored.
    """
    ctx = request.app[CONTEXT]
    blog = await ctx.store.get_blog(request.match_info["handle"])
    if blog is None:
        raise web.HTTPNotFound(text="no such blog")
    sub = await ctx.store.get_websub(blog.id)
    if sub is None or blog.feed.status == "gone":
        raise web.HTTPGone(text="no subscription here")
    body = await _read_capped(request, ctx.config.limits.max_feed_bytes)
    if not signature_matches(body, request.headers.get("X-Hub-Signature"), sub.secret):
        log.warning("websub %s: push ignored: missing or invalid X-Hub-Signature", blog.handle)
        return web.Response(status=202, text="ignored")
    try:
        result = await ingest_document(
            ctx, blog, body, request.content_type or None, url=sub.topic_url, partial=True
        )
    except BlogNotFound as exc:
        raise web.HTTPNotFound(text="no such blog") from exc
    except FeedError as exc:
        # Sending the same body again will not make it a feed: acknowledge, do not retry.
        log.warning("websub %s: pushed content unusable: %s", blog.handle, exc)
        return web.Response(status=202, text="unusable")
    log.info(
        "websub %s: push applied: %d new, %d updated",
        blog.handle,
        result.created,
        result.updated,
    )
    return web.Response(text="ok")


async def _ask_hub(ctx: BridgeContext, blog: Blog, sub: WebSubSubscription, mode: Mode) -> None:
    form = {
        "hub.mode": mode,
        "hub.topic": sub.topic_url,
        "hub.callback": ctx.urls.websub_callback(blog.handle),
    }
    if mode == "subscribe":
        form["hub.secret"] = sub.secret
        form["hub.lease_seconds"] = str(ctx.config.limits.websub_lease_seconds)
    timeout = aiohttp.ClientTimeout(total=ctx.config.limits.fetch_timeout)
    try:
        async with ctx.http.post(
            sub.hub_url,
            data=form,
            headers={"User-Agent": ctx.config.user_agent},
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            if response.status in HUB_ACCEPTED:
                return
            detail = (await response.content.read(300)).decode("utf-8", "replace").strip()
    except TimeoutError as exc:
        raise WebSubError(f"hub {sub.hub_url} did not answer in time") from exc
    except aiohttp.ClientError as exc:
        raise WebSubError(f"hub {sub.hub_url} unreachable: {exc}") from exc
    message = f"hub {sub.hub_url} answered {response.status}"
    raise WebSubError(f"{message}: {detail}" if detail else message)


async def _fail(
    ctx: BridgeContext, blog: Blog, sub: WebSubSubscription, error: str, *, was_active: bool
) -> WebSubSubscription:
    async with ctx.store.transaction():
        current = await ctx.store.get_websub(blog.id)
        if current is not None and current.secret != sub.secret:
            # A newer subscription replaced this one meanwhile; its outcome is its own.
            return current
        failed = replace(sub, status="failed", last_error=error, updated_at=ctx.clock())
        await ctx.store.put_websub(failed)
        if was_active:
            await _poll_soon(ctx, blog.id)
    return failed


async def _poll_soon(ctx: BridgeContext, blog_id: int) -> None:
    # The poll was scheduled far out because the hub pushed; without the hub, make it due now
    # and let that poll set the adaptive interval.
    blog = await ctx.store.get_blog_by_id(blog_id)
    if blog is None or blog.feed.status == "gone":
        return
    now = ctx.clock()
    if blog.feed.next_poll_at is not None and blog.feed.next_poll_at > now:
        await ctx.store.update_feed_state(blog_id, replace(blog.feed, next_poll_at=now))


def _lease_seconds(value: str | None, default: int) -> int:
    if value is not None and value.isdigit() and int(value) > 0:
        return int(value)
    return default


async def _read_capped(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body.extend(chunk)
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return bytes(body)
