"""The origin rules: what a verified signer may say, and about whose objects.

The inbox proved who signed an activity (``inbound.actor_id``) and stored it under the
signer's origin (``inbound.origin``, its ``host[:port]``). That proves nothing about what the
activity names, so every handler applies these rules before it changes anything, as
Mastodon does (``ActivityPub::Activity#invalid_origin?``, ``Create#invalid_origin?``):

* the activity's id, its object's id and the object's ``attributedTo`` live on the signer's
  origin, and the object's author is the signer: a server speaks only for its own accounts;
* nothing remote may name one of this bridge's actors or objects as its own;
* ``Update``, ``Delete`` and ``Undo`` act only on objects the signer made (the stored author or
  actor is compared with the signer);
* an object embedded by another origin (a boost carries the boosted post) is trusted only
  as fetched from its own origin: the embedded copy is never used, its id is fetched.

A refusal raises :class:`~bridge.errors.OriginMismatch`: the inbound activity is recorded as
``ignored`` with the reason and nothing changes. Deduplication by origin lives in the inbox
(the store keys activities by signer origin and id, so a forged id on another host cannot
suppress a genuine activity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yarl import URL

from bridge.activitypub.signed_requests import normalize_authority
from bridge.activitypub.values import MAX_URL_CHARS
from bridge.context import BridgeContext
from bridge.errors import OriginMismatch
from bridge.federation.remote_actors import fetch_document, id_of, is_http_url, is_local
from bridge.store.base import InboundActivity


def origin_of(url: str | None) -> str:
    """The origin (``host[:port]``, lower case, default port left out) of a URL; "" if none.

    What ``is_http_url`` then ``outbound.host_of`` answer, from one parse of the URL instead
    of two: every origin rule asks it, several times per inbound activity.
    """
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
        return ""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return ""
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return ""
    authority = parsed.host_port_subcomponent if parsed.absolute else None
    return normalize_authority(authority, parsed.scheme) if authority else ""


def require_origin(inbound: InboundActivity, url: str | None, what: str) -> None:
    """Refuse unless ``url`` lives on the signer's origin."""
    found = origin_of(url)
    if not found or found != inbound.origin:
        raise OriginMismatch(
            f"{what} {str(url)[:200]} is not on the signer's origin {inbound.origin}"
        )


def refuse_local(ctx: BridgeContext, url: str | None, what: str) -> None:
    """Refuse a remote document that claims one of this bridge's ids as its own."""
    if url is not None and is_local(ctx, url):
        raise OriginMismatch(f"{what} {url[:200]} claims to be one of this bridge's")


def check_activity(ctx: BridgeContext, inbound: InboundActivity) -> None:
    """The activity's own id is the signer's, not ours nor another server's."""
    refuse_local(ctx, inbound.activity_id, "activity")
    require_origin(inbound, inbound.activity_id, "activity")


def check_authored(
    ctx: BridgeContext, inbound: InboundActivity, object_id: str, attributed_to: str | None
) -> None:
    """An object the signer sends as its own: on its origin, written by the signer."""
    check_activity(ctx, inbound)
    check_object(ctx, inbound, object_id)
    check_author(ctx, inbound, attributed_to)


def check_object(ctx: BridgeContext, inbound: InboundActivity, object_id: str | None) -> None:
    """The object's id is on the signer's origin and not one of ours."""
    refuse_local(ctx, object_id, "object")
    require_origin(inbound, object_id, "object")


def check_author(ctx: BridgeContext, inbound: InboundActivity, attributed_to: str | None) -> None:
    """The object's author, where it names one, is the signer (so on its origin, not ours)."""
    if attributed_to is not None:
        refuse_local(ctx, attributed_to, "author")
        require_origin(inbound, attributed_to, "author")
    if attributed_to not in (None, inbound.actor_id):
        raise OriginMismatch(
            f"object attributed to {str(attributed_to)[:200]}, not to the signer "
            f"{inbound.actor_id[:200]}"
        )


def check_fetched(ctx: BridgeContext, object_id: str, attributed_to: str | None) -> None:
    """A document fetched from ``object_id`` (its origin vouches for it): its author must
    live on that origin too, and neither may be ours."""
    refuse_local(ctx, object_id, "object")
    if attributed_to is None:
        raise OriginMismatch(f"object {object_id[:200]} names no author")
    refuse_local(ctx, attributed_to, "author")
    if origin_of(attributed_to) != origin_of(object_id):
        raise OriginMismatch(
            f"object {object_id[:200]} is attributed to {attributed_to[:200]} on another origin"
        )


def require_own(inbound: InboundActivity, owner: str, what: str) -> None:
    """``Update``/``Delete``/``Undo``: only the actor who made an object may change it."""
    if owner != inbound.actor_id:
        raise OriginMismatch(f"{what} belongs to {owner[:200]}, not to {inbound.actor_id[:200]}")


def inbox_refusal(data: Mapping[str, Any], actor_id: str, origin: str) -> str | None:
    """Why the inbox could refuse an activity at once (pure), or None.

    An ``Update`` or ``Delete`` whose object lives on another origin than the signer's can
    never be honoured; answering it 4xx right away tells the sender so (the handlers refuse
    it anyway). ``origin`` is the signer's ``host[:port]``.
    """
    kind = data.get("type")
    if kind not in ("Update", "Delete"):
        return None
    target = id_of(data.get("object"))
    if target is None or target == actor_id:
        return None
    if origin_of(target) != origin:
        return f"{kind} of {target[:200]}, an object of another origin than the signer's"
    return None


async def fetch_from_origin(ctx: BridgeContext, object_id: str) -> dict[str, Any]:
    """The object as its own origin serves it (the guarded client checks that the document's
    id is the URL it came from). Raises a ``RemoteFetchError`` subclass or OriginMismatch."""
    refuse_local(ctx, object_id, "object")
    document = await fetch_document(ctx, object_id)
    return document.data


async def object_of(ctx: BridgeContext, inbound: InboundActivity, value: Any) -> dict[str, Any]:
    """The object of an activity as far as it can be trusted.

    Embedded and on the signer's origin: taken as sent (the signature covers it). Named only
    by id, or embedded by another origin: fetched from the object's own origin, and the
    embedded copy is dropped.
    """
    object_id = id_of(value)
    if object_id is None or not is_http_url(object_id):
        raise OriginMismatch("the activity names no object by an http(s) id")
    if isinstance(value, Mapping) and origin_of(object_id) == inbound.origin:
        return dict(value)
    return await fetch_from_origin(ctx, object_id)
