"""Public keys of remote signers: fetched through the guard, checked both ways, cached.

A key is believed only when key and actor name each other:

* a key embedded in an actor document (``…/users/alice#main-key``): the actor document,
  served at its own id, lists the key in ``publicKey`` and the key's ``owner`` is that actor;
* a key document of its own (``{"id": key_id, "owner": actor, "publicKeyPem": …}``): its
  owner's document, fetched at the owner's id, lists the key id too;
* GoToSocial serves a stub of the actor at a key URL without fragment
  (``…/users/tobi/main-key``), whose ``id`` is the actor's. When a key URL answers with a
  document of another id, and the actor who claims the signature lives on the key's origin,
  that actor's own document is asked instead (as Mastodon does).

A key URL that redirects is refused: the document must live at the key id itself.

Keys are kept in the store for ``limits.key_cache_ttl`` seconds; past that they are
fetched again, and the expired copy still serves while the owner's server cannot be reached
(but not when it answers 410 Gone, nor when the actor no longer lists the key). Failures
are remembered in memory for ``limits.key_failure_ttl`` seconds, so a flood of requests
naming a bogus key causes one fetch, and concurrent requests for one key share one fetch.
After a signature fails with a cached key, :meth:`KeyCache.refreshed` fetches it again, at
most once per key in ``limits.key_refresh_interval`` seconds: actors rotate keys, attackers
should not get to make us fetch in a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from yarl import URL

from bridge.activitypub.remote import same_resource
from bridge.context import BridgeContext
from bridge.errors import (
    IdMismatch,
    InvalidActor,
    KeyNotOwned,
    KeyUnavailable,
    RemoteFetchError,
    RemoteHTTPError,
    UnsupportedURL,
)
from bridge.federation.remote_actors import (
    fetch_document,
    find_key,
    id_of,
    is_http_url,
    is_local,
    key_pem,
    parse_actor,
    remember_actor,
    same_origin,
)
from bridge.store.base import RemoteKey

log = logging.getLogger(__name__)

MAX_REMEMBERED = 10_000
"""Keys whose failures and fetch times are remembered in memory (oldest forgotten first)."""


@dataclass(frozen=True)
class _Failure:
    until: datetime
    problem: str
    gone: bool
    not_owned: bool

    def error(self, key_id: str) -> KeyUnavailable | KeyNotOwned:
        if self.not_owned:
            return KeyNotOwned(f"{self.problem} (remembered failure)")
        return KeyUnavailable(key_id, f"{self.problem} (remembered failure)", gone=self.gone)


class KeyCache:
    """Remote public keys for verifying signatures; one per process (kept on the app)."""

    def __init__(self, *, max_remembered: int = MAX_REMEMBERED) -> None:
        self._max = max_remembered
        self._failures: OrderedDict[str, _Failure] = OrderedDict()
        self._attempts: OrderedDict[str, datetime] = OrderedDict()
        self._inflight: dict[tuple[str, str | None], asyncio.Future[RemoteKey]] = {}
        self.fetches = 0
        """How many key fetches this cache started (for logs and tests)."""

    async def public_key_for(
        self, ctx: BridgeContext, key_id: str, *, actor_hint: str | None = None
    ) -> RemoteKey:
        """The key ``key_id``: cached while fresh, else fetched and checked.

        ``actor_hint`` is the actor the request claims to come from; it is only used to read
        a GoToSocial key from its actor's document. Raises :class:`KeyUnavailable` (the key
        cannot be had) or :class:`KeyNotOwned` (key and actor do not name each other).
        """
        now = ctx.clock()
        cached = await ctx.store.get_remote_key(key_id)
        if cached is not None and now - cached.fetched_at < self._ttl(ctx):
            return cached
        failure = self._recent_failure(key_id, now)
        error: KeyUnavailable | KeyNotOwned
        if failure is None:
            try:
                return await self._load(ctx, key_id, actor_hint)
            except (KeyUnavailable, KeyNotOwned) as raised:
                error = raised
        else:
            error = failure.error(key_id)
        if cached is not None and isinstance(error, KeyUnavailable) and not error.gone:
            log.warning(
                "key %s could not be refetched (%s); using the copy fetched %s",
                key_id,
                error,
                cached.fetched_at.isoformat(timespec="seconds"),
            )
            return cached
        raise error

    async def refreshed(
        self, ctx: BridgeContext, key_id: str, *, actor_hint: str | None = None
    ) -> RemoteKey | None:
        """Fetch ``key_id`` again after a signature failed with the cached copy.

        None when the key was fetched (or tried) less than ``key_refresh_interval`` seconds
        ago: then the cached copy is as good as it gets. Raises like :meth:`public_key_for`.
        """
        last = self._attempts.get(key_id)
        interval = timedelta(seconds=ctx.config.limits.key_refresh_interval)
        if last is not None and ctx.clock() - last < interval:
            return None
        return await self._load(ctx, key_id, actor_hint)

    def forget(self, key_id: str) -> None:
        """Drop what memory holds about ``key_id`` (the store's copy is the caller's)."""
        self._failures.pop(key_id, None)
        self._attempts.pop(key_id, None)

    def _ttl(self, ctx: BridgeContext) -> timedelta:
        return timedelta(seconds=ctx.config.limits.key_cache_ttl)

    def _recent_failure(self, key_id: str, now: datetime) -> _Failure | None:
        failure = self._failures.get(key_id)
        if failure is None:
            return None
        if now >= failure.until:
            del self._failures[key_id]
            return None
        return failure

    async def _load(self, ctx: BridgeContext, key_id: str, actor_hint: str | None) -> RemoteKey:
        """Fetch once for all concurrent callers; remember the attempt and any failure."""
        flight = (key_id, actor_hint)
        future = self._inflight.get(flight)
        if future is None:
            _remember(self._attempts, key_id, ctx.clock(), self._max)
            self.fetches += 1
            future = asyncio.ensure_future(self._fetch_and_store(ctx, key_id, actor_hint))
            self._inflight[flight] = future
            future.add_done_callback(lambda done: self._landed(flight, done))
        # Shielded: a caller that gives up must not cancel the fetch others wait for.
        return await asyncio.shield(future)

    def _landed(self, flight: tuple[str, str | None], future: asyncio.Future[RemoteKey]) -> None:
        self._inflight.pop(flight, None)
        # Mark the outcome as seen: every waiter may have gone, the error is remembered anyway.
        if not future.cancelled():
            future.exception()

    async def _fetch_and_store(
        self, ctx: BridgeContext, key_id: str, actor_hint: str | None
    ) -> RemoteKey:
        try:
            key = await self._fetch(ctx, key_id, actor_hint)
        except KeyNotOwned as error:
            self._fail(ctx, key_id, str(error), gone=False, not_owned=True)
            raise
        except RemoteFetchError as error:
            gone = isinstance(error, RemoteHTTPError) and error.gone
            self._fail(ctx, key_id, str(error), gone=gone, not_owned=False)
            raise KeyUnavailable(key_id, str(error), gone=gone) from error
        self._failures.pop(key_id, None)
        await ctx.store.put_remote_key(key)
        log.info("fetched key %s of %s", key_id, key.owner)
        return key

    def _fail(
        self, ctx: BridgeContext, key_id: str, problem: str, *, gone: bool, not_owned: bool
    ) -> None:
        until = ctx.clock() + timedelta(seconds=ctx.config.limits.key_failure_ttl)
        _remember(self._failures, key_id, _Failure(until, problem, gone, not_owned), self._max)
        log.info("key %s unusable: %s", key_id, problem)

    async def _fetch(self, ctx: BridgeContext, key_id: str, actor_hint: str | None) -> RemoteKey:
        if not is_http_url(key_id):
            raise UnsupportedURL(key_id[:200], "a key id must be an absolute http(s) URL")
        if is_local(ctx, key_id):
            raise KeyNotOwned(f"key id {key_id} names this bridge")
        key_url = URL(key_id).with_fragment(None)
        try:
            document = await fetch_document(ctx, key_id)
        except IdMismatch as mismatch:
            served_at_key = same_resource(mismatch.url, key_url)
            if served_at_key and actor_hint is not None and same_origin(actor_hint, key_id):
                return await self._from_actor(ctx, key_id, actor_hint)
            raise
        if not same_resource(document.url, key_url):
            raise KeyNotOwned(f"key {key_id} redirects to {document.url[:200]}")
        data = document.data
        key = find_key(data, key_id)
        if key is None:
            raise KeyNotOwned(f"{document.url[:200]} does not publish key {key_id}")
        if key is data:
            owner = id_of(key.get("owner")) or id_of(key.get("controller"))
            if owner is None:
                raise KeyNotOwned(f"key {key_id} names no owner")
            await self._check_owner_lists(ctx, key_id, owner)
        else:
            owner = id_of(data.get("id")) or ""
            claimed = id_of(key.get("owner"))
            if claimed is not None and claimed != owner:
                raise KeyNotOwned(f"key {key_id} is owned by {claimed[:200]}, not by {owner}")
            await self._remember_actor(ctx, data, owner)
        return _remote_key(key, key_id, owner, ctx.clock())

    async def _from_actor(self, ctx: BridgeContext, key_id: str, actor_id: str) -> RemoteKey:
        """A key read from its actor's own document (GoToSocial's stub case)."""
        document = await fetch_document(ctx, actor_id)
        if not same_resource(actor_id, URL(document.url)):
            raise KeyNotOwned(f"actor {actor_id} redirects to {document.url[:200]}")
        key = find_key(document.data, key_id)
        if key is None or key is document.data:
            raise KeyNotOwned(f"{actor_id} does not publish key {key_id}")
        claimed = id_of(key.get("owner"))
        if claimed is not None and claimed != actor_id:
            raise KeyNotOwned(f"key {key_id} is owned by {claimed[:200]}, not by {actor_id}")
        await self._remember_actor(ctx, document.data, actor_id)
        return _remote_key(key, key_id, actor_id, ctx.clock())

    async def _check_owner_lists(self, ctx: BridgeContext, key_id: str, owner: str) -> None:
        """A key document of its own: its owner's document must list it as well."""
        if not is_http_url(owner) or is_local(ctx, owner):
            raise KeyNotOwned(f"key {key_id} names an unusable owner {owner[:200]!r}")
        document = await fetch_document(ctx, owner)
        if not same_resource(owner, URL(document.url)):
            raise KeyNotOwned(f"owner {owner} of key {key_id} redirects elsewhere")
        if find_key(document.data, key_id) is None:
            raise KeyNotOwned(f"{owner} does not list key {key_id} as its own")
        await self._remember_actor(ctx, document.data, owner)

    async def _remember_actor(self, ctx: BridgeContext, data: dict[str, Any], actor: str) -> None:
        # The document is fresh in hand: caching it spares the Follow that follows a fetch.
        try:
            await remember_actor(ctx, parse_actor(data, actor, ctx.clock()))
        except InvalidActor as error:
            log.debug("key holder %s is not an actor we cache: %s", actor, error)


def _remote_key(key: Any, key_id: str, owner: str, now: datetime) -> RemoteKey:
    pem = key_pem(key)
    if pem is None:
        raise KeyNotOwned(f"key {key_id} has no usable publicKeyPem")
    return RemoteKey(key_id=key_id, owner=owner, public_pem=pem, fetched_at=now)


def _remember(table: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
