"""One delivery: sign an activity as its blog, POST it to one inbox, judge the answer.

The handler of ``deliver`` jobs is a :class:`Deliverer` (it keeps the caches a stream of
deliveries needs). Payloads:

* ``{"blog": handle, "inbox": url, "activity_id": id}``: an activity of the blog's outbox (made
  by the fan-out); its body is serialised once and kept in a small LRU, so every inbox gets
  the same bytes, and it carries the FEP-8fcf ``Collection-Synchronization`` header;
* ``{"blog": handle, "inbox": url, "activity": {...}}``: a direct send (``Accept``,
  ``Reject``, …) made by :func:`enqueue_direct`.

The answer, as Mastodon judges it:

* 2xx: done; the host is healthy;
* 410 Gone: the followers whose personal inbox it is are removed and the job is done. A shared
  inbox that answers 410 names no follower, so nobody is removed and the job is buried, for the
  operator to see (a server that is going away stops answering altogether);
* 5xx, 408, 429, timeouts and broken connections: retry later (``Retry-After`` honoured); the
  host's failure clock runs, and a host failing for ``host_unavailable_after`` seconds is marked
  unavailable: its jobs wait until it is heard from again;
* 501 and every other 4xx, a redirect, an address the guard refuses: rejected, no retry.

Double-knock: a host of unknown habits gets RFC 9421 first; if it answers 400, 401 or 403 the
same delivery is signed again with draft-cavage at once. What worked is remembered per host.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from yarl import URL

from bridge.activitypub import keys
from bridge.activitypub.negotiation import ACTIVITY_JSON, json_bytes
from bridge.context import BridgeContext
from bridge.errors import AddressNotAllowed, Rejected, RetryLater, UnsupportedURL
from bridge.federation.followers_sync import FollowersDigests
from bridge.federation.outbound import (
    SYNC_HEADER,
    HostMemory,
    OutboundSigner,
    SignatureScheme,
    host_of,
)
from bridge.jobs import DELIVER
from bridge.jobs.retry import parse_retry_after
from bridge.store.base import Blog, Job, KeyPair, NewJob

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429})
KNOCK_AGAIN = frozenset({400, 401, 403})
"""Answers to an RFC 9421 signature after which draft-cavage is tried at once."""
MAX_ANSWER_BYTES = 64 * 1024
"""Small answers are read so the connection can be reused; larger ones are not read at all."""


_Sent = tuple[str, URL, bytes, Mapping[str, str]]
"""What one delivery POSTs: the inbox as the job names it (and as it is signed), the same
parsed once (for the followers digest's origin and the POST), the body and the headers."""


def deliver_key(activity_id: str, inbox: str) -> str:
    """The dedupe key of one activity's delivery to one inbox: enqueued once, however often
    the fan-out or the sender runs."""
    return f"{DELIVER}:{activity_id}:{inbox}"


async def enqueue_direct(
    ctx: BridgeContext, blog: Blog, activity: Mapping[str, Any], inboxes: Sequence[str]
) -> int:
    """Queue ``activity`` (a complete document with an ``id``) for each of ``inboxes``, signed
    as ``blog``; returns how many deliveries were new. Joins the caller's transaction."""
    activity_id = activity.get("id")
    if not isinstance(activity_id, str) or not activity_id:
        raise ValueError("an activity to send needs a string id")
    jobs = [
        NewJob(
            DELIVER,
            {"blog": blog.handle, "inbox": inbox, "activity": dict(activity)},
            dedupe_key=deliver_key(activity_id, inbox),
            host=host_of(inbox),
        )
        for inbox in dict.fromkeys(inboxes)
    ]
    added = await ctx.store.enqueue(jobs, ctx.clock())
    ctx.jobs_ready.set()
    return added


class Deliverer:
    """The ``deliver`` job handler, with its caches (one per process).

    ``timeout`` (seconds, default ``limits.delivery_timeout``) bounds one POST; ``bodies`` is
    how many serialised activities are kept; ``cache_seconds`` is how long a blog's key, the
    hosts' health and the followers digests are taken as known.
    """

    def __init__(
        self,
        *,
        signer: OutboundSigner | None = None,
        timeout: float | None = None,
        bodies: int = 64,
        cache_seconds: float = 60.0,
    ) -> None:
        self.signer = signer or OutboundSigner()
        self.hosts = HostMemory(ttl=cache_seconds)
        self.digests = FollowersDigests(ttl=cache_seconds)
        self.timeout = timeout
        self._bodies: OrderedDict[tuple[int, str], asyncio.Task[bytes]] = OrderedDict()
        self._max_bodies = bodies
        self._ttl = timedelta(seconds=cache_seconds)
        self._senders: dict[str, tuple[datetime, Blog, KeyPair]] = {}

    def close(self) -> None:
        """Stop the signing threads."""
        self.signer.close()

    async def __call__(self, ctx: BridgeContext, job: Job) -> int | None:
        """Deliver one job's activity to its inbox (see the module docstring)."""
        handle, inbox = _text(job.payload, "blog"), _text(job.payload, "inbox")
        target = _target(inbox)
        blog, keypair = await self._sender(ctx, handle)
        headers = {"Content-Type": ACTIVITY_JSON, "Accept": ACTIVITY_JSON}
        if "activity_id" in job.payload:
            body = await self._outbox_body(ctx, blog, _text(job.payload, "activity_id"))
            sync = await self.digests.header(ctx, blog, target)
            if sync is not None:
                headers[SYNC_HEADER] = sync
        elif isinstance(job.payload.get("activity"), dict):
            body = json_bytes(job.payload["activity"])
        else:
            raise Rejected("job payload names no activity")
        host = job.host or host_of(inbox)
        known = await self.hosts.status(ctx.store, host, ctx.clock())
        scheme: SignatureScheme = known.signature_scheme or "rfc9421"
        sent = (inbox, target, body, headers)
        status, answer = await self._post(ctx, host, sent, blog, keypair, scheme)
        if scheme == "rfc9421" and status in KNOCK_AGAIN:
            log.info("%s refused an RFC 9421 signature (%d): trying draft-cavage", host, status)
            scheme = "cavage"
            status, answer = await self._post(ctx, host, sent, blog, keypair, scheme)
        return await self._judge(ctx, host, inbox, status, answer, scheme)

    async def _sender(self, ctx: BridgeContext, handle: str) -> tuple[Blog, KeyPair]:
        now = ctx.clock()
        cached = self._senders.get(handle)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1], cached[2]
        blog = await ctx.store.get_blog(handle)
        if blog is None:
            raise Rejected(f"blog {handle!r} no longer exists")
        keypair = await keys.ensure_keypair(ctx.store, handle, now)
        self._senders[handle] = (now, blog, keypair)
        return blog, keypair

    async def _outbox_body(self, ctx: BridgeContext, blog: Blog, activity_id: str) -> bytes:
        """The activity's bytes: loaded and serialised once, however many deliveries ask at
        the same moment (they share the load), then kept while the LRU has room."""
        key = (blog.id, activity_id)
        loading = self._bodies.get(key)
        if loading is None:
            loading = asyncio.create_task(self._load_body(ctx, blog, activity_id))
            self._bodies[key] = loading
            if len(self._bodies) > self._max_bodies:
                self._bodies.popitem(last=False)
        else:
            self._bodies.move_to_end(key)
        try:
            # Shielded: one delivery giving up must not cancel the load the others share.
            return await asyncio.shield(loading)
        finally:
            failed = loading.done() and (loading.cancelled() or loading.exception() is not None)
            if failed and self._bodies.get(key) is loading:
                del self._bodies[key]  # a failure is not kept: the next delivery tries again

    async def _load_body(self, ctx: BridgeContext, blog: Blog, activity_id: str) -> bytes:
        activity = await ctx.store.get_activity(activity_id)
        if activity is None or activity.blog_id != blog.id:
            raise Rejected(f"activity {activity_id} is not in the outbox of {blog.handle}")
        return json_bytes(activity.payload)

    async def _post(
        self,
        ctx: BridgeContext,
        host: str,
        sent: _Sent,
        blog: Blog,
        keypair: KeyPair,
        scheme: SignatureScheme,
    ) -> tuple[int, str | None]:
        """Sign and POST once: the status and the ``Retry-After`` of the answer."""
        inbox, target, body, headers = sent
        signature = await self.signer.sign(
            scheme,
            "POST",
            inbox,
            headers,
            body,
            key_id=ctx.urls.key_id(blog.handle),
            private_pem=keypair.private_pem,
            now=ctx.clock(),
        )
        timeout = self._timeout(self.timeout or ctx.config.limits.delivery_timeout)
        try:
            async with ctx.remote.post(
                target,
                data=body,
                headers={**headers, **signature},
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                if response.content_length != 0:  # the usual 202 has nothing to read
                    await _drain(response)
                return response.status, response.headers.get("Retry-After")
        except TimeoutError:
            await self._failed(ctx, host)
            raise RetryLater(f"no answer from {inbox} within {timeout.total:g} s") from None
        except (AddressNotAllowed, UnsupportedURL, aiohttp.InvalidURL) as exc:
            raise Rejected(f"cannot deliver to {inbox}: {exc}") from exc
        except aiohttp.ClientError as exc:
            await self._failed(ctx, host)
            raise RetryLater(f"{type(exc).__name__} talking to {inbox}: {exc}") from exc

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def _timeout(seconds: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=seconds)

    async def _judge(
        self,
        ctx: BridgeContext,
        host: str,
        inbox: str,
        status: int,
        retry_after: str | None,
        scheme: SignatureScheme,
    ) -> int:
        if 200 <= status < 300:
            await self.hosts.remember_scheme(ctx.store, host, scheme, ctx.clock())
            await self.hosts.succeeded(ctx.store, host, ctx.clock())
            return status
        if (status >= 500 and status != 501) or status in RETRY_STATUSES:
            await self._failed(ctx, host)
            wait = parse_retry_after(retry_after, ctx.clock())
            raise RetryLater(f"{inbox} answered {status}", status, wait)
        # The host answered: it is alive, whatever it thinks of this delivery.
        await self.hosts.succeeded(ctx.store, host, ctx.clock())
        if status == 410:
            removed = await ctx.store.remove_followers_by_inbox(inbox)
            if removed:
                log.info("%s is gone (410): removed %d followers", inbox, removed)
                return status
            raise Rejected(f"{inbox} answered 410 Gone and is no follower's own inbox", status)
        raise Rejected(f"{inbox} answered {status}", status)

    async def _failed(self, ctx: BridgeContext, host: str) -> None:
        now = ctx.clock()
        health = await self.hosts.failed(ctx.store, host, now)
        patience = timedelta(seconds=ctx.config.limits.host_unavailable_after)
        since = health.first_failure_at
        if not health.unavailable and since is not None and now - since >= patience:
            await self.hosts.marked_unavailable(ctx.store, host, now)
            log.warning(
                "%s has failed every delivery since %s: marked unavailable until heard from",
                host,
                since.isoformat(timespec="seconds"),
            )


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read a small answer to its end (the connection goes back to the pool); leave a large
    one unread (the connection is closed instead of reading what nobody needs)."""
    if (response.content_length or 0) > MAX_ANSWER_BYTES:
        return
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return


def _target(inbox: str) -> URL:
    """The inbox as a URL, parsed once for every use a delivery makes of it (the followers
    digest's origin, the POST)."""
    try:
        return URL(inbox)
    except (TypeError, ValueError) as exc:
        unreadable = UnsupportedURL(inbox, f"unreadable URL ({exc})")
        raise Rejected(f"cannot deliver to {inbox}: {unreadable}") from unreadable


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise Rejected(f"job payload lacks {name!r}: {json.dumps(sorted(payload))}")
    return value
