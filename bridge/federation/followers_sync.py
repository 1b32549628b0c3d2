"""FEP-8fcf: followers collection synchronization, as Mastodon implements it.

Each delivery of a blog's own activity carries ``Collection-Synchronization: collectionId=
"<followers>", url="<partial collection>", digest="<hex>"``. The digest is the XOR of the
SHA-256 of every follower id residing on the receiving server (same scheme and authority as
the inbox), so the receiver can tell, without a fetch, whether both sides agree on who
follows the blog from there. When they disagree it fetches the partial collection, with a
signed GET, and ends the follows we no longer know of. That collection lists the blog's
followers on the signer's own server only (the whole list is nobody else's business), and it
must list all of them: a follower left out is unfollowed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime, timedelta

from aiohttp import web
from yarl import URL

from bridge.activitypub.jsonld import with_context
from bridge.activitypub.keycache import KeyCache
from bridge.activitypub.negotiation import activity_response, json_bytes
from bridge.activitypub.signatures import SignedRequest, key_id_of, verify
from bridge.activitypub.urls import Urls
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.errors import DomainBlocked, KeyNotOwned, SignatureError, SignatureMismatch
from bridge.federation.inbox import KEY_CACHE
from bridge.store.base import Blog, FollowerStore, RemoteKey

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

DIGEST_BYTES = 32


def sync_url(urls: Urls, handle: str) -> str:
    """Where the partial followers collection of a blog is served (Mastodon's path)."""
    return f"{urls.actor(handle)}/followers_synchronization"


def origin_of(url: str | URL) -> str | None:
    """``scheme://authority`` of an http(s) URL (Mastodon's ``URL_PREFIX_RE``), else None.

    ``url`` may come parsed already (a delivery parses its inbox once for all its uses)."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    return f"{parsed.scheme}://{parsed.raw_authority}".lower()


def on_origin(actor_id: str, origin: str) -> bool:
    """Whether ``actor_id`` resides at ``origin`` (the origin itself, or a path below it)."""
    lowered = actor_id.lower()
    return lowered == origin or lowered.startswith(origin + "/")


def followers_digest(actor_ids: list[str]) -> str:
    """The FEP-8fcf digest: XOR of the SHA-256 of each id, as 64 hex digits."""
    digest = 0
    for actor_id in actor_ids:
        digest ^= int.from_bytes(hashlib.sha256(actor_id.encode("utf-8")).digest(), "big")
    return f"{digest:0{2 * DIGEST_BYTES}x}"


async def followers_at(store: FollowerStore, blog: Blog, origin: str) -> list[str]:
    """Ids of the blog's accepted followers residing at ``origin``."""
    host = URL(origin).raw_host or ""
    candidates = await store.followers_on_host(blog.id, host)
    return [actor_id for actor_id in candidates if on_origin(actor_id, origin)]


def sync_header(urls: Urls, handle: str, digest: str) -> str:
    """The ``Collection-Synchronization`` value (the syntax of a cavage ``Signature``)."""
    return (
        f'collectionId="{urls.followers(handle)}", '
        f'url="{sync_url(urls, handle)}", '
        f'digest="{digest}"'
    )


class FollowersDigests:
    """Digests per (blog, receiving server), each computed once per ``ttl`` seconds.

    A digest a few seconds stale costs the receiver one fetch of the partial collection,
    which is always answered fresh; recomputing for every inbox of a fan-out would cost a
    query per delivery. Concurrent deliveries to one server share one query.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self._ttl = timedelta(seconds=ttl)
        self._cache: dict[tuple[int, str], tuple[datetime, str | None]] = {}
        self._pending: dict[tuple[int, str], asyncio.Task[str | None]] = {}

    async def header(self, ctx: BridgeContext, blog: Blog, inbox: str | URL) -> str | None:
        """The header for a delivery of ``blog``'s activity to ``inbox``; None when the blog
        has no followers on that server (then there is nothing to synchronise)."""
        origin = origin_of(inbox)
        if origin is None:
            return None
        now, key = ctx.clock(), (blog.id, origin)
        cached = self._cache.get(key)
        if cached is not None and timedelta(0) <= now - cached[0] < self._ttl:
            return cached[1]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._compute(ctx, blog, origin))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: one delivery giving up must not cancel the query the others wait for.
        value = await asyncio.shield(task)
        if len(self._cache) > 100_000:
            self._cache.clear()  # a crude bound: the store has it all
        self._cache[key] = (now, value)
        return value

    async def _compute(self, ctx: BridgeContext, blog: Blog, origin: str) -> str | None:
        followers = await followers_at(ctx.store, blog, origin)
        if not followers:
            return None
        return sync_header(ctx.urls, blog.handle, followers_digest(followers))


@routes.get("/users/{handle}/followers_synchronization")
async def partial_followers(request: web.Request) -> web.Response:
    """The blog's followers on the signer's server, to a signed GET from that server.

    Mastodon's rules: the request must carry a valid signature (401 otherwise), and the
    collection lists the followers whose ids share the signer's scheme and authority.
    """
    ctx = request.app[CONTEXT]
    blog = await ctx.store.get_blog(request.match_info["handle"])
    if blog is None:
        return _error(404, "no such account")
    try:
        signer = await signed_by(ctx, request.app[KEY_CACHE], request)
    except SignatureError as error:
        log.info("followers synchronization of %s refused: %s", blog.handle, error)
        return _error(401, str(error))
    except DomainBlocked as error:
        return _error(403, str(error))
    origin = origin_of(signer.owner)
    if origin is None:
        return _error(401, "the signer is no http(s) actor")
    items = await followers_at(ctx.store, blog, origin)
    log.info(
        "followers synchronization of %s for %s: %d followers", blog.handle, origin, len(items)
    )
    document = {
        "id": sync_url(ctx.urls, blog.handle),
        "type": "OrderedCollection",
        "totalItems": len(items),
        "orderedItems": items,
    }
    response = activity_response(with_context(document), vary=False)
    # Only for the asking server's eyes, and always fresh (Mastodon: max-age=0, private).
    response.headers["Cache-Control"] = "max-age=0, private"
    return response


async def signed_by(ctx: BridgeContext, keys: KeyCache, request: web.Request) -> RemoteKey:
    """The key a signed GET verifies with (refetched once if the cached copy fails).

    Raises a :class:`~bridge.errors.SignatureError`, or :class:`DomainBlocked` for a signer
    whose domain the operator blocked.
    """
    base = URL(ctx.config.base_url)
    signed = SignedRequest.from_aiohttp(request, None, scheme=base.scheme)
    key_id = key_id_of(signed)
    host = (URL(key_id).raw_host or "").lower() if key_id.startswith("http") else ""
    if not host:
        raise KeyNotOwned(f"key id {key_id[:200]!r} is no http(s) URL")
    if await ctx.store.is_domain_blocked(host):
        raise DomainBlocked(host)
    key = await keys.public_key_for(ctx, key_id)

    def check(candidate: RemoteKey) -> None:
        verify(
            signed,
            candidate.public_pem,
            now=ctx.clock(),
            max_skew=timedelta(seconds=ctx.config.limits.signature_max_skew),
            expected_host=base.host_port_subcomponent,
        )

    try:
        check(key)
    except SignatureMismatch:
        fresh = await keys.refreshed(ctx, key_id)
        if fresh is None:
            raise
        check(fresh)
        key = fresh
    return key


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=json_bytes({"error": message}), content_type="application/json"
    )
