"""Remote actors: how activities name them, fetching them through the guard, caching them.

Every document is fetched with :func:`fetch_document`: the guarded session (no private
addresses, capped size and time, ``id`` equal to the URL it was served from) and a
draft-cavage signature of the instance actor, so servers in authorized-fetch mode answer.
Actors are cached in the store for ``limits.actor_cache_ttl`` seconds; :func:`get_actor`
with ``force=True`` fetches anew (a ``Move`` target, for instance, must be seen as it is now).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from yarl import URL

from bridge.activitypub.keys import INSTANCE_OWNER, ensure_keypair
from bridge.activitypub.remote import RemoteDocument, fetch_activity_json, same_resource
from bridge.activitypub.values import first_url, ids
from bridge.activitypub.values import host_of as host_of
from bridge.activitypub.values import id_of as id_of
from bridge.activitypub.values import is_http_url as is_http_url
from bridge.context import BridgeContext
from bridge.errors import InvalidActor
from bridge.federation.outbound import get_signer
from bridge.store.base import RemoteActor, RemoteKey

log = logging.getLogger(__name__)

ACTOR_TYPES = frozenset({"Application", "Group", "Organization", "Person", "Service"})
"""The types Mastodon accepts as accounts (``FetchRemoteAccountService::SUPPORTED_TYPES``)."""

MAX_ALIASES = 100
MAX_NAME_CHARS = 500
MAX_PEM_CHARS = 16 * 1024


def is_local(ctx: BridgeContext, url: str) -> bool:
    """Whether ``url`` is on this bridge's host (one of our own actors or keys).

    The scheme is left out on purpose: ``http://`` + our host is still us (behind the TLS
    proxy), never a remote party.
    """
    try:
        theirs = URL(url)
    except (TypeError, ValueError):
        return False
    host, port = _authority(ctx.config.base_url)
    return (theirs.raw_host or "").lower() == host and theirs.explicit_port == port


@functools.lru_cache(maxsize=8)
def _authority(base_url: str) -> tuple[str, int | None]:
    """Host and explicit port of our base URL, parsed once per configured value (a dozen
    :func:`is_local` questions per inbound reply)."""
    ours = URL(base_url)
    return (ours.raw_host or "").lower(), ours.explicit_port


def same_origin(a: str, b: str) -> bool:
    """Whether two absolute URLs share scheme, host and port."""
    try:
        first, second = URL(a), URL(b)
    except (TypeError, ValueError):
        return False
    return (first.scheme.lower(), (first.raw_host or "").lower(), first.port) == (
        second.scheme.lower(),
        (second.raw_host or "").lower(),
        second.port,
    )


async def fetch_document(ctx: BridgeContext, url: str) -> RemoteDocument:
    """GET the ActivityStreams document at ``url`` through the guard, signed as the instance.

    Raises a :class:`~bridge.errors.RemoteFetchError` subclass on every refusal or failure.
    """
    keypair = await ensure_keypair(ctx.store, INSTANCE_OWNER, ctx.clock())
    signer = get_signer(keypair.private_pem, ctx.urls.instance_key_id(), ctx.clock)
    return await fetch_activity_json(
        ctx.remote, url, signer=signer, timeout=ctx.config.limits.remote_fetch_timeout
    )


async def get_actor(ctx: BridgeContext, actor_id: str, *, force: bool = False) -> RemoteActor:
    """The actor ``actor_id``, from the cache while fresh (unless ``force``), else fetched.

    Raises :class:`~bridge.errors.InvalidActor` for a document that is no usable actor or
    that lives under another id, and any other ``RemoteFetchError`` of the fetch.
    """
    if is_local(ctx, actor_id):
        raise InvalidActor(actor_id, "names this bridge, not a remote actor")
    now = ctx.clock()
    if not force:
        cached = await ctx.store.get_remote_actor(actor_id)
        ttl = timedelta(seconds=ctx.config.limits.actor_cache_ttl)
        if cached is not None and now - cached.fetched_at < ttl:
            return cached
    document = await fetch_document(ctx, actor_id)
    if not same_resource(actor_id, URL(document.url)):
        raise InvalidActor(actor_id, f"redirected to {document.url[:200]}, another actor")
    actor = parse_actor(document.data, actor_id, now)
    await remember_actor(ctx, actor)
    return actor


async def remember_actor(ctx: BridgeContext, actor: RemoteActor) -> None:
    """Cache an actor and the keys its own document vouches for."""
    await ctx.store.put_remote_actor(actor)
    for key in actor_keys(actor.document, actor.id, actor.fetched_at):
        await ctx.store.put_remote_key(key)


def parse_actor(document: Mapping[str, Any], actor_id: str, fetched_at: datetime) -> RemoteActor:
    """Read the fields the bridge uses out of an actor document (pure).

    Raises :class:`~bridge.errors.InvalidActor` unless it has an actor type and an http(s)
    inbox. A malformed shared inbox, name or alias is left out rather than refused: the
    account is still followable.
    """
    kinds = document.get("type")
    kind_list = kinds if isinstance(kinds, list) else [kinds]
    if not any(isinstance(kind, str) and kind in ACTOR_TYPES for kind in kind_list):
        raise InvalidActor(actor_id, f"type {str(kinds)[:80]!r} is no actor type")
    inbox = document.get("inbox")
    if not isinstance(inbox, str) or not is_http_url(inbox):
        raise InvalidActor(actor_id, "the actor has no http(s) inbox")
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, Mapping) else None
    return RemoteActor(
        id=actor_id,
        inbox=inbox,
        shared_inbox=shared if is_http_url(shared) else None,
        key_id=next((key_id for key_id, _ in _key_entries(document)), None),
        document=dict(document),
        fetched_at=fetched_at,
        preferred_username=_text(document.get("preferredUsername")),
        name=_text(document.get("name")),
        url=first_url(document.get("url")),
        also_known_as=tuple(ids(document.get("alsoKnownAs")))[:MAX_ALIASES],
        moved_to=id_of(document.get("movedTo")),
    )


def find_key(document: Mapping[str, Any], key_id: str) -> Mapping[str, Any] | None:
    """The key object ``key_id`` in ``publicKey`` (one or a list), or the document itself."""
    if document.get("id") == key_id and "publicKeyPem" in document:
        return document
    for entry_id, entry in _key_entries(document):
        if entry_id == key_id:
            return entry
    return None


def key_pem(key: Mapping[str, Any]) -> str | None:
    """The PEM of a key object, when it is a plausible one."""
    pem = key.get("publicKeyPem")
    if isinstance(pem, str) and "BEGIN" in pem and len(pem) <= MAX_PEM_CHARS:
        return pem
    return None


def actor_keys(document: Mapping[str, Any], actor_id: str, fetched_at: datetime) -> list[RemoteKey]:
    """The keys an actor's own document vouches for: owned by it and on its origin.

    A key id on another origin is left out: caching it would let one server decide which
    key another server's key id stands for.
    """
    keys = []
    for key_id, entry in _key_entries(document):
        owner = id_of(entry.get("owner")) or actor_id
        pem = key_pem(entry)
        if pem is not None and owner == actor_id and same_origin(key_id, actor_id):
            keys.append(RemoteKey(key_id, actor_id, pem, fetched_at))
    return keys


def _key_entries(document: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    keys = document.get("publicKey")
    for entry in keys if isinstance(keys, list) else [keys]:
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            yield entry["id"], entry
        elif isinstance(entry, str):
            # A bare reference: the document names the key but does not embed it.
            yield entry, {"id": entry}


def _text(value: Any) -> str | None:
    return value[:MAX_NAME_CHARS] if isinstance(value, str) and value else None
