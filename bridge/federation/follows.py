"""Who follows which blog: Follow, Undo(Follow), Reject, actor Delete and Move, manual approval.

Handlers run in the inbound job, after the inbox verified that the signer is the activity's
actor (``inbound.actor_id``). Each returns a short note of what it did, or raises
:class:`~bridge.errors.ActivityIgnored` when there is nothing to do. Semantics follow
Mastodon:

* ``Follow`` of a blog: the follower is stored (``pending`` when the blog approves followers
  by hand) and, when accepted, answered with an ``Accept`` naming the ``Follow``. A repeated
  Follow from an accepted follower is accepted again: Mastodon re-sends Follow when it thinks
  the two servers disagree.
* ``Undo(Follow)`` by the follower, and ``Reject(Follow)`` between signer and blog, end it.
* ``Delete`` of the actor by itself removes it from every blog and forgets its cached keys.
* ``Move`` from an old account (the signer) to a new one whose ``alsoKnownAs`` names the old:
  every follow by the old account becomes one by the new.

Accept and Reject are sent with :func:`bridge.federation.delivery.enqueue_direct`, in the same
store transaction as the follower change, so neither happens without the other.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from bridge.activitypub.jsonld import context
from bridge.activitypub.urls import Urls
from bridge.config import HANDLE_RE
from bridge.context import BridgeContext
from bridge.errors import ActivityIgnored, FollowerNotFound
from bridge.federation.delivery import enqueue_direct
from bridge.federation.remote_actors import get_actor, host_of, id_of, is_http_url, is_local
from bridge.store.base import Blog, Follower, InboundActivity

log = logging.getLogger(__name__)

_ANSWER_NAMESPACE = uuid.UUID("5b0d6a8e-3c1f-4f0e-9a59-8f6f1c1d2e77")


async def on_follow(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """Store the follower of one of our blogs and, unless approval is manual, accept it."""
    target = id_of(inbound.payload.get("object"))
    blog = await blog_for_actor(ctx, target)
    if blog is None:
        raise ActivityIgnored(f"Follow of {str(target)[:200]}, which is none of our blogs")
    await _refuse_blocked(ctx, inbound.actor_id)
    actor = await get_actor(ctx, inbound.actor_id)
    existing = await ctx.store.get_follower(blog.id, actor.id)
    accept = not blog.settings.manually_approves_followers or (
        existing is not None and existing.state == "accepted"
    )
    follower = Follower(
        blog_id=blog.id,
        actor_id=actor.id,
        inbox=actor.inbox,
        shared_inbox=actor.shared_inbox,
        state="accepted" if accept else "pending",
        created_at=existing.created_at if existing is not None else ctx.clock(),
        follow_id=inbound.activity_id,
    )
    # Derived from the stored activity, so a re-run of this job sends the same Accept id
    # (the delivery queue then drops the duplicate) while a new Follow gets a fresh one.
    answer_uuid = uuid.uuid5(_ANSWER_NAMESPACE, f"{inbound.origin} {inbound.id}").hex
    async with ctx.store.transaction():
        await ctx.store.put_follower(follower)
        if accept:
            await enqueue_direct(
                ctx, blog, answer("Accept", ctx.urls, blog, follower, answer_uuid), [actor.inbox]
            )
    if not accept:
        return f"pending approval of {actor.id} by @{blog.handle}"
    again = " again" if existing is not None and existing.state == "accepted" else ""
    return f"{actor.id} follows @{blog.handle}; Accept sent{again}"


async def on_undo_follow(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """End a follow: the Undo names the signer's own Follow, embedded or by id."""
    blog = await _followed_blog(ctx, inbound, inbound.payload.get("object"), "Undo")
    if not await ctx.store.remove_follower(blog.id, inbound.actor_id):
        raise ActivityIgnored(f"{inbound.actor_id} did not follow @{blog.handle}")
    return f"{inbound.actor_id} unfollowed @{blog.handle}"


async def on_reject(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """A Reject of a Follow between the signer and one of our blogs ends that relationship."""
    inner = inbound.payload.get("object")
    if isinstance(inner, Mapping) and inner.get("type") != "Follow":
        raise ActivityIgnored(f"Reject of {str(inner.get('type'))[:60]}, not of a Follow")
    blog = await _followed_blog(ctx, inbound, inner, "Reject")
    if not await ctx.store.remove_follower(blog.id, inbound.actor_id):
        raise ActivityIgnored(f"no follow between {inbound.actor_id} and @{blog.handle}")
    return f"follow between {inbound.actor_id} and @{blog.handle} rejected, removed"


async def on_delete(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """An actor deleting itself leaves every blog's followers; its cached keys are dropped."""
    if id_of(inbound.payload.get("object")) != inbound.actor_id:
        raise ActivityIgnored("Delete of an object, not of the actor (not handled yet)")
    async with ctx.store.transaction():
        blog_ids = await ctx.store.remove_actor_everywhere(inbound.actor_id)
        await ctx.store.delete_remote_actor(inbound.actor_id)
    return f"actor {inbound.actor_id} deleted; removed from {len(blog_ids)} blog(s)"


async def on_move(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """Move every follow of the old account (the signer) to the new one, if it confirms."""
    old = inbound.actor_id
    if id_of(inbound.payload.get("object")) != old:
        raise ActivityIgnored("Move of another account than the signer's")
    target = id_of(inbound.payload.get("target"))
    if target is None or not is_http_url(target) or is_local(ctx, target) or target == old:
        raise ActivityIgnored(f"Move to an unusable target {str(target)[:200]!r}")
    await _refuse_blocked(ctx, target)
    new = await get_actor(ctx, target, force=True)
    if old not in new.also_known_as:
        log.info(
            "Move of %s to %s ignored: the target does not name it in alsoKnownAs", old, target
        )
        raise ActivityIgnored(f"{target} does not name {old} in alsoKnownAs")
    moved = 0
    async with ctx.store.transaction():
        for blog in await ctx.store.list_blogs():
            follow = await ctx.store.get_follower(blog.id, old)
            if follow is None:
                continue
            present = await ctx.store.get_follower(blog.id, new.id)
            accepted = follow.state == "accepted" or (
                present is not None and present.state == "accepted"
            )
            await ctx.store.put_follower(
                Follower(
                    blog_id=blog.id,
                    actor_id=new.id,
                    inbox=new.inbox,
                    shared_inbox=new.shared_inbox,
                    state="accepted" if accepted else "pending",
                    created_at=present.created_at if present is not None else follow.created_at,
                    follow_id=present.follow_id if present is not None else None,
                )
            )
            await ctx.store.remove_follower(blog.id, old)
            moved += 1
    return f"{old} moved to {new.id}: {moved} follow(s) moved"


async def approve_follower(ctx: BridgeContext, blog: Blog, actor_id: str) -> Follower:
    """Accept a pending follower of ``blog`` (and send the Accept); raise FollowerNotFound."""
    follower = await ctx.store.get_follower(blog.id, actor_id)
    if follower is None:
        raise FollowerNotFound(f"{actor_id} does not ask to follow @{blog.handle}")
    if follower.state == "accepted":
        return follower
    accepted = replace(follower, state="accepted")
    activity = answer("Accept", ctx.urls, blog, accepted, uuid.uuid4().hex)
    async with ctx.store.transaction():
        await ctx.store.put_follower(accepted)
        await enqueue_direct(ctx, blog, activity, [accepted.inbox])
    log.info("follower %s of @%s approved", actor_id, blog.handle)
    return accepted


async def reject_follower(ctx: BridgeContext, blog: Blog, actor_id: str) -> Follower:
    """Refuse a pending follower, or remove an accepted one: a Reject is sent either way."""
    follower = await ctx.store.get_follower(blog.id, actor_id)
    if follower is None:
        raise FollowerNotFound(f"{actor_id} neither follows nor asks to follow @{blog.handle}")
    activity = answer("Reject", ctx.urls, blog, follower, uuid.uuid4().hex)
    async with ctx.store.transaction():
        await ctx.store.remove_follower(blog.id, actor_id)
        await enqueue_direct(ctx, blog, activity, [follower.inbox])
    log.info("follower %s of @%s rejected (was %s)", actor_id, blog.handle, follower.state)
    return follower


def answer(
    kind: Literal["Accept", "Reject"],
    urls: Urls,
    blog: Blog,
    follower: Follower,
    activity_uuid: str,
) -> dict[str, Any]:
    """The blog's Accept or Reject of a follower's Follow (pure).

    The object repeats the Follow (id, type, actor, object) rather than naming only its id:
    servers that did not keep their Follow's id can still tell what is answered.
    """
    follow: dict[str, Any] = {
        "type": "Follow",
        "actor": follower.actor_id,
        "object": urls.actor(blog.handle),
    }
    if follower.follow_id is not None:
        follow = {"id": follower.follow_id, **follow}
    return {
        "@context": context(),
        "id": urls.activity(blog.handle, activity_uuid),
        "type": kind,
        "actor": urls.actor(blog.handle),
        "object": follow,
        "to": [follower.actor_id],
    }


async def blog_for_actor(ctx: BridgeContext, actor_url: str | None) -> Blog | None:
    """The blog whose actor id is ``actor_url``, if it is one of ours."""
    prefix = ctx.urls.actor("")
    if actor_url is None or not actor_url.startswith(prefix):
        return None
    handle = actor_url[len(prefix) :]
    blog = await ctx.store.get_blog(handle) if HANDLE_RE.fullmatch(handle) else None
    if blog is None or ctx.urls.actor(blog.handle) != actor_url:
        return None
    return blog


async def _followed_blog(
    ctx: BridgeContext, inbound: InboundActivity, inner: Any, verb: str
) -> Blog:
    """The blog of the Follow an Undo or Reject answers, if that Follow is the signer's."""
    if isinstance(inner, Mapping):
        follower = id_of(inner.get("actor"))
        followed = id_of(inner.get("object"))
        if verb == "Reject" and followed == inbound.actor_id:
            # The signer refuses a follow by the blog (which the bridge never sends, but the
            # relationship between the two ends either way).
            follower, followed = followed, follower
        if follower not in (None, inbound.actor_id):
            raise ActivityIgnored(f"{verb} of a Follow by {str(follower)[:200]}, not the signer's")
        blog = await blog_for_actor(ctx, followed)
        if blog is None:
            raise ActivityIgnored(f"{verb} of a Follow of {str(followed)[:200]}, none of ours")
        return blog
    follow_id = id_of(inner)
    if follow_id is None:
        raise ActivityIgnored(f"{verb} names no Follow")
    for blog in await ctx.store.list_blogs():
        row = await ctx.store.get_follower(blog.id, inbound.actor_id)
        if row is not None and row.follow_id == follow_id:
            return blog
    raise ActivityIgnored(f"{verb} of {follow_id[:200]}, a Follow we do not know")


async def _refuse_blocked(ctx: BridgeContext, actor_id: str) -> None:
    # The inbox refuses blocked senders, but a block may be added while the job waits.
    if await ctx.store.is_domain_blocked(host_of(actor_id)):
        raise ActivityIgnored(f"{host_of(actor_id)} is blocked")
