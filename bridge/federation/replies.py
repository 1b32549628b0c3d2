"""Notes from the fediverse become comments: ``Create``, ``Update`` and ``Delete`` of notes,
threads completed by walking up, and mentions of our posts.

``Create(Note|Article|Page|Question)`` whose ``inReplyTo`` is

* one of our articles (its object id, or the blog post's own URL) → a comment on the post;
* a stored comment → a nested comment in the same post's thread;
* an unknown remote note → its parents are fetched from their origins
  (:func:`bridge.backfeed.threads.walk_up`, bounded, cycle-safe); where the chain reaches
  one of our posts or a stored comment, the fetched notes are stored as comments too, each
  moderated like any other, so a reply to a reply whose middle note only went to its
  author's followers still lands threaded.

A public note that is no reply to our threads but links one of our posts is a *mention* of
that post (a reaction of kind ``"mention"``, a linkback source). A note that only mentions a
blog's actor without naming a post is not recorded: there is no post to attach it to, and
pinning it on the newest post would misrepresent what it talks about.

Only public notes (``Public`` in ``to`` or ``cc``, unlisted included) are taken. A
followers-only or direct reply is dropped, not stored: the bridge publishes what it keeps,
and a moderator approving a private reply would publish what its author did not. The reason
is recorded on the inbound activity.

Every new comment passes moderation (:mod:`bridge.backfeed.moderation_facts`): a blocked
author or server is not stored at all (the inbound row records why); the others start
``published``, ``held``, ``duplicate`` or ``spam``. ``Update`` replaces the text (sanitised
anew) and keeps the state unless the new text scores as spam. ``Delete`` of a note marks
its comment deleted (its page answers 410); an actor's ``Delete`` of itself also removes
its follows, comments and reactions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bridge.backfeed import push
from bridge.backfeed.comments import (
    IncomingNote,
    author_from_actor,
    comment_html,
    is_public,
    linked_urls,
    mentions_of,
    note_text,
    parse_note,
)
from bridge.backfeed.moderation_facts import Candidate, policy_for, text_hash, verdict_for
from bridge.backfeed.threads import WalkLimits, walk_up
from bridge.context import BridgeContext
from bridge.errors import (
    ActivityIgnored,
    OriginMismatch,
    RemoteConnectionError,
    RemoteFetchError,
    RemoteHTTPError,
    RemoteTimeout,
)
from bridge.federation import follows, origin
from bridge.federation.remote_actors import get_actor, host_of, id_of, is_local
from bridge.federation.targets import Target, target_of
from bridge.store.base import Comment, InboundActivity, NewComment, NewReaction, Person, RemoteActor

log = logging.getLogger(__name__)


async def on_create(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """A new note by the signer: a comment, a nested comment, a mention, or nothing of ours."""
    document, note = await _own_note(ctx, inbound, inbound.payload.get("object"))
    return await take_note(ctx, document, received_before=inbound.received_at, note=note)


async def take_note(
    ctx: BridgeContext,
    document: Mapping[str, Any],
    *,
    received_before: datetime | None = None,
    note: IncomingNote | None = None,
) -> str:
    """Store a note whose origin was checked (signed by its author, or fetched from its
    origin): as a comment where it answers one of our threads, else as a mention.

    ``note`` is ``document`` parsed, when the caller has parsed it already."""
    note = parse_note(document) if note is None else note
    author = note.attributed_to
    if author is None:
        raise OriginMismatch(f"note {note.object_id[:200]} names no author")
    if await ctx.store.comment_exists(note.object_id):
        raise ActivityIgnored(f"note {note.object_id[:200]} is stored already")
    if not is_public(note):
        raise ActivityIgnored("not public: followers-only and direct notes are not published")
    before = received_before or ctx.clock()
    target = await target_of(ctx, note.in_reply_to)
    walked = 0
    if target is None and note.in_reply_to is not None:
        if is_local(ctx, note.in_reply_to):
            raise ActivityIgnored(f"reply to {note.in_reply_to[:200]}, which we do not have")
        walked = await complete_thread(ctx, note.in_reply_to)
        target = await target_of(ctx, note.in_reply_to)
    if target is None:
        return await record_mention(ctx, note)
    comment = await store_comment(ctx, target, document, before, note)
    more = f" after {walked} fetched parent(s)" if walked else ""
    return f"comment {comment.object_id} on @{target.blog.handle}: {comment.state}{more}"


async def complete_thread(ctx: BridgeContext, parent_id: str) -> int:
    """Fetch the parents of a reply up to one of our threads and store them as comments;
    the number stored. A chain that reaches nothing of ours stores nothing.

    Transient fetch failures propagate (the inbound job is retried); a parent that is gone,
    refused or no note ends the walk: the reply is then no part of our threads.
    """
    limits = WalkLimits(
        max_depth=ctx.config.limits.thread_max_depth,
        max_items=ctx.config.limits.thread_max_items,
    )

    async def fetch(url: str) -> Mapping[str, Any]:
        return await origin.fetch_from_origin(ctx, url)

    async def known(url: str) -> bool:
        return await target_of(ctx, url) is not None

    try:
        chain = await walk_up(parent_id, fetch, known, limits)
    except RemoteFetchError as error:
        if is_transient(error):
            raise
        log.info("thread above %s not completed: %s", parent_id[:200], error)
        return 0
    if chain.anchor is None:
        log.info("thread above %s not completed: %s", parent_id[:200], chain.reason)
        return 0
    stored = 0
    now = ctx.clock()
    for document in chain.notes:
        note = parse_note(document)
        origin.check_fetched(ctx, note.object_id, note.attributed_to)
        if not is_public(note):
            log.info("thread above %s passes a note that is not public", parent_id[:200])
            break
        target = await target_of(ctx, note.in_reply_to)
        if target is None:
            break
        try:
            await store_comment(ctx, target, document, now, note)
        except ActivityIgnored as reason:
            log.info("thread above %s stops at %s: %s", parent_id[:200], note.object_id, reason)
            break
        stored += 1
    return stored


async def store_comment(
    ctx: BridgeContext,
    target: Target,
    document: Mapping[str, Any],
    received_before: datetime,
    note: IncomingNote | None = None,
) -> Comment:
    """Moderate and store one note as a comment under ``target`` (``note`` is ``document``
    parsed, when the caller has parsed it already).

    Raises :class:`ActivityIgnored` when its author or server is blocked (nothing stored)
    or when it is stored already.
    """
    note = parse_note(document) if note is None else note
    if note.attributed_to is None:
        raise OriginMismatch(f"note {note.object_id[:200]} names no author")
    actor = await get_actor(ctx, note.attributed_to)
    html = comment_html(note)
    candidate = Candidate(
        blog=target.blog,
        entry_id=target.entry.entry_id,
        actor=actor,
        origin=origin.origin_of(actor.id),
        text=note_text(note),
        html=html,
        received_before=received_before,
    )
    verdict = await verdict_for(ctx, candidate)
    if verdict.state == "rejected":
        raise ActivityIgnored(f"{actor.id[:200]}: {', '.join(verdict.reasons)}")
    now = ctx.clock()
    comment = await ctx.store.add_comment(
        NewComment(
            blog_id=target.blog.id,
            entry_id=target.entry.entry_id,
            object_id=note.object_id,
            parent_id=target.parent_id,
            author=person_of(actor),
            content_html=html,
            published=note.published or now,
            state=verdict.state,
            summary=note.summary,
            url=note.url,
            language=note.language,
            score=verdict.score,
            reasons=verdict.reasons,
            source=dict(document),
            text_hash=candidate.text_hash,
        ),
        now,
    )
    if comment is None:
        raise ActivityIgnored(f"note {note.object_id[:200]} is stored already")
    await push.push_comment(ctx, comment, "publish", blog=target.blog)
    return comment


async def record_mention(ctx: BridgeContext, note: IncomingNote) -> str:
    """A note linking one of our posts (without replying to its thread): a mention of the
    first post it links."""
    for url in linked_urls(note):
        target = await target_of(ctx, url)
        if target is None:
            continue
        if note.attributed_to is None:
            break
        await refuse_blocked(ctx, note.attributed_to)
        actor = await get_actor(ctx, note.attributed_to)
        reaction = await ctx.store.add_reaction(
            NewReaction(
                blog_id=target.blog.id,
                entry_id=target.entry.entry_id,
                kind="mention",
                activity_id=note.object_id,
                actor=person_of(actor),
                published=note.published or ctx.clock(),
                content_html=comment_html(note),
                url=note.url,
            ),
            ctx.clock(),
        )
        if reaction is None:
            raise ActivityIgnored(f"mention {note.object_id[:200]} is stored already")
        await push.push_reaction(ctx, reaction, "publish")
        return f"mention of {target.article_id} by {actor.id}"
    blogs = await ctx.store.list_blogs()
    if mentions_of(note, [ctx.urls.actor(blog.handle) for blog in blogs]):
        raise ActivityIgnored("mentions a blog without replying to or linking one of its posts")
    raise ActivityIgnored("neither a reply in our threads nor a mention of our posts")


async def on_update(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """An edit of the signer's comment, or of the signer's own actor document."""
    value = inbound.payload.get("object")
    if id_of(value) == inbound.actor_id:
        actor = await get_actor(ctx, inbound.actor_id, force=True)
        return f"actor {actor.id} refreshed"
    document, note = await _own_note(ctx, inbound, value)
    comment = await ctx.store.get_comment(note.object_id)
    if comment is None:
        raise ActivityIgnored(f"Update of {note.object_id[:200]}, a note we do not have")
    origin.require_own(inbound, comment.author.actor_id, f"comment {comment.object_id[:200]}")
    html = comment_html(note)
    updated = note.updated or ctx.clock()
    edited = await ctx.store.edit_comment(
        note.object_id, html, note.summary, updated, dict(document), text_hash(html)
    )
    if edited is None:
        raise ActivityIgnored(f"comment {note.object_id[:200]} is deleted")
    if edited.updated != updated:
        raise ActivityIgnored(f"an older edit of {note.object_id[:200]}: the newer one stays")
    state: str = edited.state
    if state in ("published", "held", "duplicate"):
        state = await _rescore(ctx, edited, note, html, inbound)
    action: push.PushAction = "update" if state == "published" else "withdraw"
    await push.push_comment(ctx, edited, action, version=updated.isoformat())
    return f"comment {edited.object_id} edited ({state})"


async def _rescore(
    ctx: BridgeContext, comment: Comment, note: IncomingNote, html: str, inbound: InboundActivity
) -> str:
    """File an edited comment as spam if its new text scores so; else keep its state."""
    blog = await ctx.store.get_blog_by_id(comment.blog_id)
    if blog is None:
        return comment.state
    actor = await get_actor(ctx, comment.author.actor_id)
    candidate = Candidate(
        blog, comment.entry_id, actor, inbound.origin, note_text(note), html, inbound.received_at
    )
    verdict = await verdict_for(ctx, candidate)
    if verdict.score < policy_for(ctx.config, blog).spam_threshold:
        return comment.state
    reasons = ("edited into spam", *verdict.reasons)
    await ctx.store.set_comment_state(comment.object_id, "spam", reasons)
    return "spam"


async def on_delete(ctx: BridgeContext, inbound: InboundActivity) -> str:
    """The signer deletes one of its notes, or itself (then everything it did goes)."""
    target = id_of(inbound.payload.get("object"))
    if target is not None and target == inbound.actor_id:
        async with ctx.store.transaction():
            note = await follows.on_delete(ctx, inbound)
            now = ctx.clock()
            comments = await ctx.store.delete_comments_by_author(inbound.actor_id, now)
            reactions = await ctx.store.withdraw_reactions_by_actor(inbound.actor_id, now)
        await push.push_withdrawals(ctx, comments, reactions)
        return f"{note}; {len(comments)} comment(s) deleted, {len(reactions)} reaction(s) withdrawn"
    origin.check_activity(ctx, inbound)
    origin.refuse_local(ctx, target, "object")
    origin.require_origin(inbound, target, "object")
    assert target is not None  # require_origin refuses a missing id
    comment = await ctx.store.get_comment(target)
    if comment is not None:
        origin.require_own(inbound, comment.author.actor_id, f"comment {target[:200]}")
        if (deleted := await ctx.store.delete_comment(target, ctx.clock())) is None:
            raise ActivityIgnored(f"comment {target[:200]} is deleted already")
        await push.push_comment(ctx, deleted, "withdraw")
        return f"comment {target} deleted"
    mention = await ctx.store.get_reaction(target)
    if mention is not None and mention.kind == "mention":
        origin.require_own(inbound, mention.actor.actor_id, f"mention {target[:200]}")
        gone = await ctx.store.withdraw_reaction(target, inbound.actor_id, ctx.clock())
        if gone is None:
            raise ActivityIgnored(f"mention {target[:200]} is withdrawn already")
        await push.push_reaction(ctx, gone, "withdraw")
        return f"mention {target} withdrawn"
    raise ActivityIgnored(f"Delete of {target[:200]}, which we do not have")


async def _own_note(
    ctx: BridgeContext, inbound: InboundActivity, value: Any
) -> tuple[dict[str, Any], IncomingNote]:
    """The object of a Create or Update and the note parsed from it, checked as the signer's
    own (:func:`~bridge.federation.origin.check_authored`): refused before anything is
    fetched when its id is ours or on another origin."""
    origin.check_activity(ctx, inbound)
    object_id = id_of(value)
    origin.check_object(ctx, inbound, object_id)
    document = await origin.object_of(ctx, inbound, value)
    note = parse_note(document)
    # The activity and the id were checked above, once each (every check parses URLs);
    # only a document that came back under another id has that one checked too.
    if note.object_id != object_id:
        origin.check_object(ctx, inbound, note.object_id)
    origin.check_author(ctx, inbound, note.attributed_to)
    return document, note


def person_of(actor: RemoteActor) -> Person:
    """Who wrote or reacted, as shown: plain-text name, handle, profile and avatar URLs."""
    author = author_from_actor({**actor.document, "id": actor.id})
    return Person(
        actor_id=author.actor_id,
        name=author.name,
        handle=author.handle,
        profile_url=author.profile_url,
        avatar_url=author.avatar_url,
    )


async def refuse_blocked(ctx: BridgeContext, actor_id: str) -> None:
    """Raise :class:`ActivityIgnored` for a blocked actor or server (a block may be added
    while the job waits; a limited server is not refused, its comments are held)."""
    if await ctx.store.is_actor_blocked(actor_id):
        raise ActivityIgnored(f"{actor_id[:200]} is blocked")
    if await ctx.store.is_domain_blocked(host_of(actor_id)):
        raise ActivityIgnored(f"{host_of(actor_id)} is blocked")


def is_transient(error: RemoteFetchError) -> bool:
    """Whether a failed fetch may succeed later (timeouts, transport errors, 5xx, 408, 429),
    as the job queue judges it (:func:`bridge.federation.dispatch.job_verdict`)."""
    if isinstance(error, RemoteTimeout | RemoteConnectionError):
        return True
    return isinstance(error, RemoteHTTPError) and (
        error.status >= 500 or error.status in (408, 429)
    )
