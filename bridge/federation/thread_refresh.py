"""Fetching a post's thread on demand (``feedfed threads refresh``).

Replies to replies are delivered to their authors' followers, not necessarily to the blog.
Refreshing a post walks what the fediverse says about its known comments: each comment's
``replies`` collection and the FEP-7888 ``context`` collections they name, fetched from their
owners' servers through the guarded client (bounded by ``limits.thread_max_depth`` and
``limits.thread_max_items``). Every note found is taken as an inbound reply would be
(:func:`bridge.federation.replies.take_note`): threaded under what it answers, moderated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bridge.backfeed.comments import parse_note
from bridge.backfeed.threads import WalkLimits, walk_down
from bridge.context import BridgeContext
from bridge.errors import ActivityIgnored, RemoteFetchError
from bridge.federation import origin
from bridge.federation.replies import take_note
from bridge.federation.targets import Target
from bridge.store.base import Comment, CommentState

log = logging.getLogger(__name__)

LIVE_STATES: Final[tuple[CommentState, ...]] = ("published", "held", "duplicate", "spam")
_PAGE: Final = 500


@dataclass
class Refresh:
    """What a refresh found: notes stored, notes passed over (with why), unreadable sources."""

    stored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def refresh_thread(ctx: BridgeContext, target: Target) -> Refresh:
    """Walk the known comments of ``target``'s post and store the replies not yet known."""
    known = await _comments(ctx, target)
    sources = [comment.source for comment in known if comment.source]
    contexts = dict.fromkeys(c for c in (_context(source) for source in sources) if c is not None)
    limits = WalkLimits(
        max_depth=ctx.config.limits.thread_max_depth,
        max_items=ctx.config.limits.thread_max_items,
    )

    async def fetch(url: str) -> Mapping[str, Any]:
        return await origin.fetch_from_origin(ctx, url)

    walk = await walk_down(sources, fetch, limits, contexts=contexts)
    result = Refresh(problems=list(walk.problems))
    for document in walk.notes:
        try:
            note = parse_note(document)
            origin.check_fetched(ctx, note.object_id, note.attributed_to)
            await take_note(ctx, document)
        except ActivityIgnored as reason:
            result.skipped.append(f"{str(document.get('id'))[:200]}: {reason}")
            continue
        except RemoteFetchError as error:
            result.problems.append(f"{str(document.get('id'))[:200]}: {error}")
            continue
        result.stored.append(note.object_id)
    log.info(
        "thread of %s refreshed: %d stored, %d skipped, %d unreadable",
        target.article_id,
        len(result.stored),
        len(result.skipped),
        len(result.problems),
    )
    return result


async def _comments(ctx: BridgeContext, target: Target) -> list[Comment]:
    found: list[Comment] = []
    while True:
        page = await ctx.store.list_comments(
            target.blog.id,
            entry_id=target.entry.entry_id,
            states=LIVE_STATES,
            limit=_PAGE,
            offset=len(found),
            newest_first=False,
        )
        found.extend(page)
        if len(page) < _PAGE:
            return found


def _context(source: Mapping[str, Any]) -> str | None:
    value = source.get("context")
    found = value.get("id") if isinstance(value, Mapping) else value
    return found if isinstance(found, str) else None
