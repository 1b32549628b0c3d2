"""The inboxes: each blog's ``/users/{handle}/inbox`` and the shared ``/inbox``.

An inbox only checks and stores; the ``"inbound"`` job does the rest (see
:mod:`bridge.federation.dispatch`). The checks run in this order, each with its answer:

1. body over ``limits.max_inbox_bytes`` (by Content-Length, or counted while read) → 413;
2. not UTF-8 JSON, nested deeper than the parser is allowed to go → 400;
3. no object with a string ``id``, ``type`` and ``actor`` (or an actor object with an id) → 400;
4. the actor's domain, or the signing key's, is blocked (subdomains included) → 403;
5. a personal inbox of a handle we do not have → 404;
6. the signature: none, malformed, unsupported, stale, for another host, a body that does not
   match its signed digest, a key that cannot be fetched or is not its actor's, a signature
   that does not hold even with the key fetched anew, a signer who is not the activity's
   actor, anyone claiming to be one of our own actors → 401.

Then the activity is stored (deduplicated by signer host and activity id) and its job
enqueued in one transaction, which also clears the signer host's delivery failures, if it
has any → 202, for duplicates and types we do not handle as well.
Nothing a sender controls leads to a 5xx.

One case is let through unverified, as Mastodon does: an actor's ``Delete`` of itself, when
we never knew that actor (nothing cached) — the servers of deleted accounts tell everyone,
and their keys are gone. It is answered 202 and dropped; with a cached key it is verified.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from yarl import URL

from bridge.activitypub.keycache import KeyCache
from bridge.activitypub.negotiation import json_bytes
from bridge.activitypub.remote import MAX_JSON_DEPTH, parse_json_object, same_resource
from bridge.activitypub.signatures import SignedRequest, key_id_of, verify
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.errors import (
    BlogNotFound,
    BridgeError,
    DomainBlocked,
    KeyUnavailable,
    MalformedActivity,
    NotActivityJSON,
    OriginMismatch,
    RequestError,
    RequestTooLarge,
    SignatureError,
    SignatureMismatch,
    SignerMismatch,
)
from bridge.federation.origin import inbox_refusal
from bridge.federation.outbound import host_of as authority_of
from bridge.federation.remote_actors import host_of, id_of, is_http_url, is_local
from bridge.jobs import INBOUND
from bridge.metrics import count_inbox_request
from bridge.store.base import Blog, NewInbound, NewJob, RemoteKey

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

KEY_CACHE = web.AppKey("key_cache", KeyCache)
"""The process's cache of remote keys (failures and refresh times live in memory)."""

MAX_ID_CHARS = 2048
_CHUNK = 64 * 1024
INLINE_PARSE_BYTES = 16 * 1024
"""Bodies up to this size are parsed on the event loop: a typical activity (2–4 KB) parses
in tens of microseconds, less than the hand-off to a thread costs; larger ones go to a thread."""

# First match wins: a RequestTooLarge is a RequestError too.
_STATUSES: tuple[tuple[type[BridgeError], int], ...] = (
    (RequestTooLarge, 413),
    (RequestError, 400),
    (NotActivityJSON, 400),
    (DomainBlocked, 403),
    (OriginMismatch, 403),
    (BlogNotFound, 404),
    (SignatureError, 401),
)
_ANSWERED = tuple(kind for kind, _ in _STATUSES)


def install(app: web.Application) -> None:
    """Add the inbox routes and the key cache they use to ``app`` (before it starts)."""
    app[KEY_CACHE] = KeyCache()
    app.add_routes(routes)


@dataclass
class _Seen:
    """What is known of a request so far, for its log line."""

    activity_id: str = "-"
    type: str = "-"
    actor: str = "-"


@routes.post("/users/{handle}/inbox")
async def personal_inbox(request: web.Request) -> web.Response:
    """A blog's own inbox: activities addressed to that blog."""
    return await _receive(request, request.match_info["handle"])


@routes.post("/inbox")
async def shared_inbox(request: web.Request) -> web.Response:
    """The bridge's shared inbox: one delivery per server for all of our blogs."""
    return await _receive(request, None)


async def _receive(request: web.Request, handle: str | None) -> web.Response:
    ctx = request.app[CONTEXT]
    seen = _Seen()
    try:
        note = await _take(ctx, request.app[KEY_CACHE], request, handle, seen)
    except _ANSWERED as error:
        status = next(code for kind, code in _STATUSES if isinstance(error, kind))
        _log(request, status, seen, f"{type(error).__name__}: {error}")
        return web.Response(
            status=status,
            body=json_bytes({"error": str(error)}),
            content_type="application/json",
            charset="utf-8",
        )
    _log(request, 202, seen, note)
    return web.Response(status=202)


async def _refuse_foreign_changes(
    ctx: BridgeContext, data: dict[str, Any], actor_id: str, origin: str
) -> None:
    """Answer 403 at once to an Update/Delete of someone else's object, so the sender learns
    of it (the handlers would refuse it later anyway, with nothing changed)."""
    refusal = inbox_refusal(data, actor_id, origin)
    if refusal is not None:
        raise OriginMismatch(refusal)
    if data.get("type") not in ("Update", "Delete"):
        return
    target = id_of(data.get("object"))
    if target is None or target == actor_id:
        return
    comment = await ctx.store.get_comment(target)
    if comment is not None and comment.author.actor_id != actor_id:
        raise OriginMismatch(f"{target[:200]} was written by {comment.author.actor_id[:200]}")


async def _take(
    ctx: BridgeContext, keys: KeyCache, request: web.Request, handle: str | None, seen: _Seen
) -> str:
    """Check, store and enqueue one POST; return a note for the log or raise for the status."""
    limits = ctx.config.limits
    body = await read_capped(request, limits.max_inbox_bytes)
    if len(body) <= INLINE_PARSE_BYTES:
        data = parse_json_object(body, MAX_JSON_DEPTH, request.path)
    else:
        data = await asyncio.to_thread(parse_json_object, body, MAX_JSON_DEPTH, request.path)
    activity_id, kind, actor_id = activity_shape(data)
    seen.activity_id, seen.type, seen.actor = activity_id, kind, actor_id
    await _refuse_blocked(ctx, actor_id)
    blog = await _recipient(ctx, handle)
    if is_local(ctx, actor_id):
        raise SignerMismatch(f"{actor_id[:200]} claims to be one of this bridge's actors")
    base = URL(ctx.config.base_url)
    signed = SignedRequest.from_aiohttp(request, body, scheme=base.scheme)
    key_id = key_id_of(signed)
    if is_local(ctx, key_id):
        raise SignerMismatch(f"key {key_id[:200]} claims to be one of this bridge's keys")
    if host_of(key_id) != host_of(actor_id):
        # Asked only when the key lives elsewhere: the actor's host was refused above.
        await _refuse_blocked(ctx, key_id)
    if is_self_delete(data, actor_id) and await ctx.store.get_remote_actor(actor_id) is None:
        return "deletion of an actor we never knew: dropped unverified"
    key = await _verified_key(ctx, keys, signed, key_id, actor_id, data, base)
    if key is None:
        return "deletion of a gone actor whose key we never had: dropped"
    if not same_resource(key.owner, URL(actor_id)):
        raise SignerMismatch(f"signed by {key.owner[:200]}, not by the actor {actor_id[:200]}")
    now = ctx.clock()
    origin = authority_of(key.owner)
    await _refuse_foreign_changes(ctx, data, actor_id, origin)
    # Storing it also clears the origin's failures, if any: deliveries to it resume.
    inbound = NewInbound(origin, activity_id, actor_id, kind, data, blog.id if blog else None)
    inbound_id = await ctx.store.store_inbound(inbound, inbound_job, now)
    if inbound_id is None:
        return "duplicate: already received"
    ctx.jobs_ready.set()
    return f"stored as inbound {inbound_id}"


def inbound_job(inbound_id: int) -> NewJob:
    """The job that processes a stored activity (one per activity)."""
    return NewJob(INBOUND, {"inbound_id": inbound_id}, dedupe_key=f"inbound:{inbound_id}")


async def read_capped(request: web.BaseRequest, limit: int) -> bytes:
    """The request body, refused with :class:`RequestTooLarge` once it passes ``limit`` bytes.

    Counted as read (after any decompression aiohttp does), so a body without
    Content-Length, or with a false one, is cut off at the cap too.
    """
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def activity_shape(data: dict[str, Any]) -> tuple[str, str, str]:
    """The ``id``, ``type`` and actor id of an activity, or :class:`MalformedActivity` (pure).

    The actor may be given as an object with an ``id`` (Pleroma, Misskey embed it); it must
    be an absolute http(s) URL. The activity id is only bounded in length: it is a key for
    deduplication, never fetched.
    """
    activity_id, kind, actor_id = data.get("id"), data.get("type"), id_of(data.get("actor"))
    if not isinstance(activity_id, str) or not activity_id or len(activity_id) > MAX_ID_CHARS:
        raise MalformedActivity("the activity has no usable string id")
    if not isinstance(kind, str) or not kind or len(kind) > 100:
        raise MalformedActivity("the activity has no string type")
    if actor_id is None or not is_http_url(actor_id):
        raise MalformedActivity("the activity names no actor by an http(s) URL")
    return activity_id, kind, actor_id


def is_self_delete(data: dict[str, Any], actor_id: str) -> bool:
    """Whether the activity is an actor's ``Delete`` of itself."""
    return data.get("type") == "Delete" and id_of(data.get("object")) == actor_id


async def _refuse_blocked(ctx: BridgeContext, url: str) -> None:
    host = host_of(url)
    if host and await ctx.store.is_domain_blocked(host):
        raise DomainBlocked(host)


async def _recipient(ctx: BridgeContext, handle: str | None) -> Blog | None:
    if handle is None:
        return None
    blog = await ctx.store.get_blog(handle)
    if blog is None:
        raise BlogNotFound(f"no account {handle[:60]!r} here")
    return blog


async def _verified_key(
    ctx: BridgeContext,
    keys: KeyCache,
    signed: SignedRequest,
    key_id: str,
    actor_id: str,
    data: dict[str, Any],
    base: URL,
) -> RemoteKey | None:
    """The key the request verifies with, fetched anew once if the cached one fails.

    None for a self-Delete of an actor whose key is gone and was never cached.
    """
    limits = ctx.config.limits
    try:
        key = await keys.public_key_for(ctx, key_id, actor_hint=actor_id)
    except KeyUnavailable as error:
        if not (error.gone and is_self_delete(data, actor_id)):
            raise
        # A deleted actor's key answers 410; the copy we kept still proves who speaks.
        kept = await ctx.store.get_remote_key(key_id)
        if kept is None:
            return None
        key = kept

    def check(candidate: RemoteKey) -> None:
        verify(
            signed,
            candidate.public_pem,
            now=ctx.clock(),
            max_skew=timedelta(seconds=limits.signature_max_skew),
            expected_host=base.host_port_subcomponent,
        )

    try:
        check(key)
    except SignatureMismatch:
        fresh = await keys.refreshed(ctx, key_id, actor_hint=actor_id)
        if fresh is None:
            raise
        check(fresh)
        key = fresh
    return key


def _log(request: web.Request, status: int, seen: _Seen, note: str) -> None:
    log.info(
        "inbox %s %d id=%s type=%s actor=%s: %s",
        request.path[:200],
        status,
        seen.activity_id[:300],
        seen.type[:60],
        seen.actor[:300],
        note[:500],
    )
    count_inbox_request(request.app[CONTEXT].metrics, status, seen.type)
