"""Likes and boosts of our posts, and their withdrawal: ``Like``, ``EmojiReact``,
``Announce`` and ``Undo`` of each. (Mentions, which are notes, are in
:mod:`bridge.federation.replies`.)

* ``Like`` of one of our articles → a like. Misskey sends its emoji reactions as ``Like``
  with ``content`` (and ``_misskey_reaction``); Pleroma and Akkoma send ``EmojiReact``. Both
  count as likes and keep the emoji, as Mastodon counts a Misskey reaction as a favourite.
* ``Announce`` of one of our articles → a boost (a linkback source). An ``Announce`` of a
  remote note is how a server shares a reply others made: the note is fetched from its own
  origin (an embedded copy from the booster is never trusted) and taken as if its author had
  sent it, so a reply we missed is picked up.
* ``Undo`` withdraws the signer's own like or boost (its page then answers 410); another
  actor's reaction is refused. A like counts once per actor and post (the store keeps it so).

Each handler first applies the origin rules (:mod:`bridge.federation.origin`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Final

from bridge.backfeed import push
from bridge.backfeed.comments import parse_note
from bridge.backfeed.sanitize import plain_line
from bridge.context import BridgeContext
from bridge.errors import ActivityIgnored, OriginMismatch
from bridge.federation import origin
from bridge.federation.remote_actors import get_actor, id_of, is_local
from bridge.federation.replies import person_of, refuse_blocked, take_note
from bridge.federation.targets import Target, target_of
from bridge.ingest.normalize import iso_to_utc
from bridge.store.base import InboundActivity, NewReaction, ReactionKind

EMOJI_LIMIT: Final = 100
"""Characters of an emoji reaction kept (a custom emoji is a ``:shortcode:``)."""


async def on_like(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """A like of one of our posts (with the emoji of a Misskey reaction, if any)."""
    return await _react(ctx, inbound, "like", _emoji(inbound.payload))


async def on_emoji_react(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """Pleroma's and Akkoma's emoji reaction: a like that carries its emoji."""
    emoji = _emoji(inbound.payload)
    if emoji is None:
        raise ActivityIgnored("EmojiReact without an emoji")
    return await _react(ctx, inbound, "like", emoji)


async def on_announce(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """A boost of one of our posts; a boost of a remote note brings that note in."""
    origin.check_activity(ctx, inbound)
    value = inbound.payload.get("object")
    object_id = id_of(value)
    if object_id is not None and is_local(ctx, object_id):
        return await _react(ctx, inbound, "boost", None)
    document = await origin.object_of(ctx, inbound, value)
    note = parse_note(document)
    if origin.origin_of(note.object_id) == inbound.origin:
        origin.check_authored(ctx, inbound, note.object_id, note.attributed_to)
    else:
        origin.check_fetched(ctx, note.object_id, note.attributed_to)
    return "boosted note: " + await take_note(ctx, document, received_before=inbound.received_at)


async def on_undo_like(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """Withdraw the signer's like."""
    return await _withdraw(ctx, inbound, "like", ("Like",))


async def on_undo_emoji_react(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """Withdraw the signer's emoji reaction."""
    return await _withdraw(ctx, inbound, "like", ("EmojiReact",))


async def on_undo_announce(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """Withdraw the signer's boost."""
    return await _withdraw(ctx, inbound, "boost", ("Announce",))


async def _react(
    ctx: BridgeContext, inbound: InboundActivity, kind: ReactionKind, emoji: str | None
) -> str:
    origin.check_activity(ctx, inbound)
    target = await _our_post(ctx, inbound.payload.get("object"))
    await refuse_blocked(ctx, inbound.actor_id)
    actor = await get_actor(ctx, inbound.actor_id)
    now = ctx.clock()
    published = iso_to_utc(inbound.payload.get("published")) or inbound.received_at
    reaction = await ctx.store.add_reaction(
        NewReaction(
            blog_id=target.blog.id,
            entry_id=target.entry.entry_id,
            kind=kind,
            activity_id=inbound.activity_id,
            actor=person_of(actor),
            published=min(published, now),
            content_html=emoji,
            url=None,
        ),
        now,
    )
    if reaction is None:
        raise ActivityIgnored(f"{actor.id[:200]}'s {kind} of {target.article_id} counts already")
    await push.push_reaction(ctx, reaction, "publish")
    return f"{kind} of {target.article_id} by {actor.id}"


async def _our_post(ctx: BridgeContext, value: Any) -> Target:
    """The post a like or boost is of: one of our articles, by id (an embedded copy of our
    own object is never read, only its id)."""
    object_id = id_of(value)
    if object_id is None or not is_local(ctx, object_id):
        raise ActivityIgnored(f"{str(object_id)[:200]} is none of our posts")
    target = await target_of(ctx, object_id)
    if target is None or target.parent_id != target.article_id:
        raise ActivityIgnored(f"{object_id[:200]} is none of our posts")
    return target


async def _withdraw(
    ctx: BridgeContext, inbound: InboundActivity, kind: ReactionKind, types: tuple[str, ...]
) -> str:
    undone = inbound.payload.get("object")
    undone_id = id_of(undone)
    if undone_id is None:
        raise ActivityIgnored("Undo names no activity")
    if isinstance(undone, Mapping):
        if undone.get("type") not in types:
            raise ActivityIgnored(f"Undo of {str(undone.get('type'))[:60]}, not of {types[0]}")
        made_by = id_of(undone.get("actor"))
        if made_by not in (None, inbound.actor_id):
            raise OriginMismatch(f"Undo of an activity by {str(made_by)[:200]}, not the signer's")
    existing = await ctx.store.get_reaction(undone_id)
    if existing is None or existing.kind != kind:
        raise ActivityIgnored(f"Undo of {undone_id[:200]}, no {types[0]} we know")
    origin.require_own(inbound, existing.actor.actor_id, f"{kind} {undone_id[:200]}")
    withdrawn = await ctx.store.withdraw_reaction(undone_id, inbound.actor_id, ctx.clock())
    if withdrawn is None:
        raise ActivityIgnored(f"{kind} {undone_id[:200]} is withdrawn already")
    await push.push_reaction(ctx, withdrawn, "withdraw")
    return f"{kind} {undone_id} withdrawn"


def _emoji(payload: Mapping[str, Any]) -> str | None:
    for key in ("_misskey_reaction", "content"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return html.escape(plain_line(value, EMOJI_LIMIT)) or None
    return None
