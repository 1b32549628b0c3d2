"""The dialog, outward: comments written on the blog itself become Notes of the blog's actor.

A blog comment that answers a comment from the fediverse is published as a public ``Note``
``inReplyTo`` the remote Note, mentioning its author (a ``Mention`` tag and an ``@``-link at
the start of the text, as Mastodon writes them) and addressed to them (``to``: Public, ``cc``:
the blog's followers and the author). Any other blog comment is a reply to the article, so
fediverse readers see the whole conversation under the post.

Every version is recorded in the blog's outbox (its payload frozen, served at its activity
id) and delivered twice over in one transaction with the comment itself: the fan-out job to
the followers, and a direct delivery to the addressee's inbox (its shared inbox when it has
one, so a follower's server gets it once: both use the same dedupe key). Edits become
``Update``, deletions ``Delete`` with a ``Tombstone``, addressed to the same people.

The blog comment is stored as a comment of origin ``"blog"`` (state ``published``) whose
object id is the Note's id, so it takes its place in the bridge's threads, pages and comment
feeds, and a fediverse reply to it nests under it. Its ``source`` keeps the Note, the blog's
id of the comment and the hash of its text (edits are found by comparing it).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from bridge.activitypub.activities import create_activity, delete_activity, update_activity
from bridge.activitypub.articles import iso_time
from bridge.activitypub.jsonld import PUBLIC, without_context
from bridge.activitypub.urls import Urls
from bridge.backfeed.blog_comments import BlogComment
from bridge.context import BridgeContext
from bridge.federation.delivery import enqueue_direct
from bridge.federation.fanout import fanout_job
from bridge.federation.remote_actors import get_actor
from bridge.store.base import (
    ActivityType,
    Blog,
    Comment,
    NewActivity,
    NewComment,
    Person,
    StoredEntry,
    item_slug,
)

SOURCE_KIND = "blog-comment"


@dataclass(frozen=True)
class Addressee:
    """The fediverse author a blog comment answers: who is mentioned and delivered to."""

    actor_id: str
    handle: str
    profile_url: str
    inbox: str


def note_id_for(urls: Urls, blog: Blog, stored: StoredEntry, blog_comment_id: str) -> str:
    """The stable id of the Note a blog comment becomes (derived from the blog's id of it)."""
    return urls.comment_page(blog.handle, stored.slug, item_slug(f"blog:{blog_comment_id}"))


def build_note(
    blog: Blog,
    stored: StoredEntry,
    comment: BlogComment,
    *,
    note_id: str,
    in_reply_to: str,
    addressee: Addressee | None,
    urls: Urls,
    updated: datetime | None = None,
) -> dict[str, Any]:
    """The ``Note`` of one blog comment (pure). ``published`` is the blog's date of the
    comment, ``updated`` the time an edit was seen."""
    cc = [urls.followers(blog.handle)] + ([addressee.actor_id] if addressee else [])
    note: dict[str, Any] = {
        "id": note_id,
        "type": "Note",
        "attributedTo": urls.actor(blog.handle),
        "inReplyTo": in_reply_to,
        "content": note_content(comment, addressee),
        "published": iso_time(comment.published) if comment.published else None,
        "to": [PUBLIC],
        "cc": cc,
        "tag": (
            [{"type": "Mention", "href": addressee.actor_id, "name": addressee.handle}]
            if addressee
            else []
        ),
        "context": urls.article(blog.handle, stored.slug),
    }
    if comment.url:
        note["url"] = comment.url
    if updated is not None:
        note["updated"] = iso_time(updated)
    return note


def note_content(comment: BlogComment, addressee: Addressee | None) -> str:
    """The Note's HTML: the mention first (Mastodon threads and notifies by it), the
    comment's sanitised text, and who wrote it on the blog, linked to the comment there."""
    parts: list[str] = []
    if addressee is not None:
        user = addressee.handle.lstrip("@").split("@", 1)[0]
        parts.append(
            '<p><span class="h-card"><a href="'
            + html.escape(addressee.profile_url, quote=True)
            + '" class="u-url mention">@<span>'
            + html.escape(user)
            + "</span></a></span></p>"
        )
    parts.append(comment.content_html)
    name = html.escape(comment.author_name)
    byline = f'<a href="{html.escape(comment.url, quote=True)}">{name}</a>' if comment.url else name
    parts.append(f"<p>— {byline}</p>")
    return "".join(parts)


async def addressee_of(ctx: BridgeContext, parent: Comment | None) -> Addressee | None:
    """The author of the fediverse comment ``parent`` (None for a blog comment or none).

    The actor comes from the cache, or is fetched through the guarded client when stale
    (raising :class:`~bridge.errors.RemoteFetchError` when that fails: the caller retries).
    """
    if parent is None or parent.origin != "fediverse":
        return None
    actor = await get_actor(ctx, parent.author.actor_id)
    return Addressee(
        actor_id=actor.id,
        handle=parent.author.handle,
        profile_url=parent.author.profile_url or actor.id,
        inbox=actor.shared_inbox or actor.inbox,
    )


async def publish_blog_comment(
    ctx: BridgeContext,
    blog: Blog,
    stored: StoredEntry,
    comment: BlogComment,
    parent: Comment | None,
) -> Comment | None:
    """Store a new blog comment and federate its ``Create``; None when it is known already.

    ``parent`` is the stored comment it answers (None: it answers the article).
    """
    addressee = await addressee_of(ctx, parent)
    note_id = note_id_for(ctx.urls, blog, stored, comment.id)
    in_reply_to = parent.object_id if parent else ctx.urls.article(blog.handle, stored.slug)
    note = build_note(
        blog,
        stored,
        comment,
        note_id=note_id,
        in_reply_to=in_reply_to,
        addressee=addressee,
        urls=ctx.urls,
    )
    now = ctx.clock()
    if note["published"] is None:
        note["published"] = iso_time(now)
    async with ctx.store.transaction():
        if await ctx.store.comment_exists(note_id):
            return None
        saved = await ctx.store.add_comment(
            NewComment(
                blog_id=blog.id,
                entry_id=stored.entry_id,
                object_id=note_id,
                parent_id=in_reply_to,
                author=_person(ctx, blog, comment),
                content_html=comment.content_html,
                published=comment.published or now,
                state="published",
                url=comment.url,
                origin="blog",
                source=_source(note, comment, addressee),
            ),
            now,
        )
        if saved is None:
            return None
        await _send(ctx, blog, stored, "Create", note, addressee)
    return saved


async def update_blog_comment(
    ctx: BridgeContext, blog: Blog, stored: StoredEntry, existing: Comment, comment: BlogComment
) -> Comment | None:
    """Federate the edit of a blog comment (an ``Update`` with the new text); None when its
    text is unchanged or the comment is gone."""
    if _source_hash(existing) == comment.content_hash():
        return None
    addressee = _stored_addressee(existing)
    now = ctx.clock()
    note = build_note(
        blog,
        stored,
        comment,
        note_id=existing.object_id,
        in_reply_to=existing.parent_id or ctx.urls.article(blog.handle, stored.slug),
        addressee=addressee,
        urls=ctx.urls,
        updated=now,
    )
    note["published"] = iso_time(existing.published)
    async with ctx.store.transaction():
        edited = await ctx.store.edit_comment(
            existing.object_id,
            comment.content_html,
            None,
            now,
            _source(note, comment, addressee),
        )
        if edited is None or edited.updated != now:
            return None
        await _send(ctx, blog, stored, "Update", note, addressee)
    return edited


async def withdraw_blog_comment(
    ctx: BridgeContext, blog: Blog, stored: StoredEntry, existing: Comment
) -> Comment | None:
    """The blog comment is gone from the blog: mark it deleted and federate a ``Delete``
    with its ``Tombstone``; None when it was deleted already."""
    addressee = _stored_addressee(existing)
    now = ctx.clock()
    async with ctx.store.transaction():
        deleted = await ctx.store.delete_comment(existing.object_id, now)
        if deleted is None:
            return None
        tombstone = {
            "id": existing.object_id,
            "type": "Tombstone",
            "formerType": "Note",
            "deleted": iso_time(now),
        }
        await _send(ctx, blog, stored, "Delete", tombstone, addressee)
    return deleted


def blog_comment_id(comment: Comment) -> str | None:
    """The blog's id of a stored comment of origin ``"blog"`` (None for any other)."""
    block = comment.source.get(SOURCE_KIND) if comment.origin == "blog" else None
    value = block.get("id") if isinstance(block, Mapping) else None
    return value if isinstance(value, str) else None


async def _send(
    ctx: BridgeContext,
    blog: Blog,
    stored: StoredEntry,
    kind: ActivityType,
    obj: dict[str, Any],
    addressee: Addressee | None,
) -> None:
    """Record the activity in the outbox, fan it out to the followers and send it to the
    addressee (the caller holds the transaction)."""
    activity_id = ctx.urls.activity(blog.handle, uuid4().hex)
    if kind == "Create":
        activity = create_activity(blog, obj, activity_id, ctx.urls)
    elif kind == "Update":
        activity = update_activity(blog, obj, activity_id, ctx.urls)
    else:
        activity = delete_activity(blog, obj, activity_id, ctx.urls)
        if addressee is not None:
            activity["cc"] = [*activity["cc"], addressee.actor_id]
    now = ctx.clock()
    await ctx.store.add_activity(
        NewActivity(
            blog_id=blog.id,
            activity_id=activity_id,
            type=kind,
            entry_id=stored.entry_id,
            payload=activity,
            deliver=True,
        ),
        now,
    )
    await ctx.store.enqueue([fanout_job(blog.id, activity_id)], now)
    if addressee is not None:
        await enqueue_direct(ctx, blog, activity, [addressee.inbox])
    ctx.jobs_ready.set()


def _person(ctx: BridgeContext, blog: Blog, comment: BlogComment) -> Person:
    """The blog comment's author as the bridge shows them: their name and link, speaking
    through the blog's actor (which is what the fediverse sees)."""
    return Person(
        actor_id=ctx.urls.actor(blog.handle),
        name=comment.author_name,
        handle=f"@{blog.handle}@{ctx.config.domain}",
        profile_url=comment.author_url or ctx.urls.profile(blog.handle),
    )


def _source(
    note: dict[str, Any], comment: BlogComment, addressee: Addressee | None
) -> dict[str, Any]:
    return {
        **without_context(note),
        SOURCE_KIND: {
            "id": comment.id,
            "hash": comment.content_hash(),
            "addressee": (
                {
                    "actor_id": addressee.actor_id,
                    "handle": addressee.handle,
                    "profile_url": addressee.profile_url,
                    "inbox": addressee.inbox,
                }
                if addressee
                else None
            ),
        },
    }


def _source_hash(comment: Comment) -> str | None:
    block = comment.source.get(SOURCE_KIND)
    value = block.get("hash") if isinstance(block, Mapping) else None
    return value if isinstance(value, str) else None


def _stored_addressee(comment: Comment) -> Addressee | None:
    block = comment.source.get(SOURCE_KIND)
    found = block.get("addressee") if isinstance(block, Mapping) else None
    if not isinstance(found, Mapping):
        return None
    fields = [found.get(name) for name in ("actor_id", "handle", "profile_url", "inbox")]
    if not all(isinstance(value, str) and value for value in fields):
        return None
    return Addressee(*(str(value) for value in fields))
