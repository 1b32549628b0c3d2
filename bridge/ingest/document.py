"""Bringing the store in line with one feed document, polled or pushed.

The one path both the poller and WebSub pushes take: parse (off the event loop), compare with
the stored entries, ask the web about entries that left the feed, then write everything (blog
metadata, entries, outbox activities, the caller's polling state) in one store transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal

from bridge.activitypub.urls import entry_slug, recreated_slug
from bridge.context import BridgeContext
from bridge.entries import FeedEntry, FeedMeta, ParsedFeed
from bridge.errors import BlogNotFound, FetchError
from bridge.federation.outbox import record_change
from bridge.ingest.changes import diff_entries, unique_entries
from bridge.ingest.fetch import fetch_status
from bridge.ingest.parse import parse_feed_async
from bridge.store.base import Blog, StoredEntry

log = logging.getLogger(__name__)

# Answers that prove a post is gone; anything else means it only left the feed's window.
GONE_STATUSES = frozenset({404, 410})
# Status checks per document and at once: a feed cut from 50 items to 10 must not turn into
# a burst of 40 requests against the blog; the rest are asked on the next poll.
MAX_STATUS_CHECKS = 25
STATUS_CHECK_CONCURRENCY = 4

Verdict = Literal["deleted", "dropped"]
FinishHook = Callable[["Blog", "IngestResult"], Awaitable[None]]


@dataclass(frozen=True)
class IngestResult:
    """What applying one feed document did."""

    meta: FeedMeta
    created: int = 0
    updated: int = 0
    deleted: int = 0
    dropped: int = 0
    unresolved: int = 0
    delivered: bool = True


async def ingest_document(
    ctx: BridgeContext,
    blog: Blog,
    body: bytes,
    content_type: str | None,
    *,
    url: str,
    partial: bool = False,
    finish: FinishHook | None = None,
) -> IngestResult:
    """Parse a feed document and apply it (see :func:`ingest_parsed`).

    Raises :class:`~bridge.errors.FeedParseError` before anything is stored when the body is
    not a feed.
    """
    parsed = await parse_feed_async(body, url=url, content_type=content_type)
    return await ingest_parsed(ctx, blog, parsed, partial=partial, finish=finish)


async def ingest_parsed(
    ctx: BridgeContext,
    blog: Blog,
    parsed: ParsedFeed,
    *,
    partial: bool = False,
    finish: FinishHook | None = None,
) -> IngestResult:
    """Apply a parsed feed to the store and record the outbox activities.

    New entries become ``Create``, edited ones ``Update``. Entries that were in the feed and are
    missing now are looked up at their URL first: 404/410 marks them deleted with a ``Delete``;
    any other answer means they only fell out of the feed's window and are kept; no answer at
    all leaves them as they are, to be asked again next time. Activities are queued for delivery
    only once the blog's first poll is done (the back catalogue is not pushed to followers).

    ``partial`` is for documents that may list only some entries (WebSub pushes): then nothing
    counts as vanished and metadata fields absent from the document keep their stored values.
    ``finish`` runs inside the transaction with the blog as it stands there and the result, so
    a poll's new validators and schedule commit together with the entries or not at all.
    ``unresolved`` counts vanished entries left for next time (no answer from their URL): the
    caller must then not keep validators that would let the unchanged feed answer 304.
    Raises :class:`~bridge.errors.BlogNotFound` when the blog was removed meanwhile.
    """
    entries = unique_entries(parsed.entries)
    candidates = diff_entries(
        await _stored_for(ctx, blog.id, entries), entries, detect_vanished=not partial
    )
    verdicts = await check_vanished(ctx, blog, candidates.vanished)

    async with ctx.store.transaction():
        current = await ctx.store.get_blog_by_id(blog.id)
        if current is None:
            raise BlogNotFound(f"blog {blog.handle!r} was removed while its feed was read")
        # Compared again under the transaction: a push and a poll of the same blog may have
        # raced, and only what is stored now decides what is new.
        known = await _stored_for(ctx, blog.id, entries)
        changes = diff_entries(known, entries, detect_vanished=not partial)
        deliver = current.feed.first_poll_done
        meta = merge_meta(current.meta, parsed.meta) if partial else parsed.meta
        if meta != current.meta:
            await ctx.store.update_blog_meta(blog.id, meta)
        current = replace(current, meta=meta)
        store = ctx.store
        for entry in changes.new:
            slug = (
                recreated_slug(entry.id, known[entry.id].slug)
                if entry.id in changes.recreated
                else entry_slug(entry.id)
            )
            saved = await store.save_entry(blog.id, entry, slug, ctx.clock())
            await record_change(ctx, current, saved, "create", deliver=deliver)
        for stored, entry in changes.edited:
            saved = await store.save_entry(blog.id, entry, stored.slug, ctx.clock())
            await record_change(ctx, current, saved, "update", deliver=deliver)
        if changes.returned:
            await store.set_in_feed(blog.id, changes.returned, True)
        deleted = 0
        dropped: list[str] = []
        for gone in changes.vanished:
            verdict = verdicts.get(gone.entry_id)
            if verdict == "deleted":
                # The tombstone carries the deletion time the store records, so mark first.
                await store.mark_entry_deleted(blog.id, gone.entry_id, ctx.clock())
                marked = await store.get_entries(blog.id, [gone.entry_id])
                await record_change(ctx, current, marked[gone.entry_id], "delete", deliver=deliver)
                deleted += 1
            elif verdict == "dropped":
                dropped.append(gone.entry_id)
        if dropped:
            await store.set_in_feed(blog.id, dropped, False)
        result = IngestResult(
            meta=meta,
            created=len(changes.new),
            updated=len(changes.edited),
            deleted=deleted,
            dropped=len(dropped),
            unresolved=len(changes.vanished) - deleted - len(dropped),
            delivered=deliver,
        )
        if finish is not None:
            await finish(current, result)
    return result


async def check_vanished(
    ctx: BridgeContext, blog: Blog, vanished: Sequence[StoredEntry]
) -> dict[str, Verdict]:
    """Ask each vanished entry's URL whether the post still exists.

    Returns a verdict per entry id; entries whose URL could not be reached (or beyond
    :data:`MAX_STATUS_CHECKS`) have none and stay as they are.
    """
    limits = ctx.config.limits
    gate = asyncio.Semaphore(STATUS_CHECK_CONCURRENCY)
    verdicts: dict[str, Verdict] = {}

    async def check(stored: StoredEntry) -> None:
        url = post_url(stored.entry)
        if url is None:
            # Nothing to ask: keeping the entry is the safe side.
            verdicts[stored.entry_id] = "dropped"
            return
        async with gate:
            try:
                status = await fetch_status(
                    ctx.http, url, timeout=limits.fetch_timeout, user_agent=ctx.config.user_agent
                )
            except FetchError as exc:
                log.info("%s: left the feed, status unknown for now: %s: %s", blog.handle, url, exc)
                return
        verdicts[stored.entry_id] = "deleted" if status in GONE_STATUSES else "dropped"

    async with asyncio.TaskGroup() as group:
        for stored in vanished[:MAX_STATUS_CHECKS]:
            group.create_task(check(stored))
    return verdicts


def post_url(entry: FeedEntry) -> str | None:
    """Where the post lives on the blog: its link, else its id when that is a URL."""
    for candidate in (entry.link, entry.id):
        if candidate and candidate.startswith(("http://", "https://")):
            return candidate
    return None


def merge_meta(stored: FeedMeta, pushed: FeedMeta) -> FeedMeta:
    """Stored metadata with every field the pushed document states replaced."""
    changes = {
        f.name: getattr(pushed, f.name)
        for f in fields(FeedMeta)
        if getattr(pushed, f.name) is not None
    }
    return replace(stored, **changes)


async def _stored_for(
    ctx: BridgeContext, blog_id: int, entries: Sequence[FeedEntry]
) -> dict[str, StoredEntry]:
    stored = await ctx.store.get_entries(blog_id, [entry.id for entry in entries])
    for known in await ctx.store.entries_in_feed(blog_id):
        stored.setdefault(known.entry_id, known)
    return stored
