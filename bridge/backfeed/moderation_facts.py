"""What moderation needs to know about a new comment, gathered from the store and the
author's actor: the blog's :class:`Policy`, :class:`AuthorFacts`, blocks, duplicates.

The verdict itself is :func:`bridge.backfeed.moderation.moderate` (pure); this module is
its I/O edge. Follower and post counts come from the ``totalItems`` of the actor's
``followers`` and ``outbox`` collections, fetched through the guarded client only for
authors the blog does not trust yet, and cached with the actor (under
:data:`COUNTS_KEY` in its stored document, so they expire with it). A collection that
cannot be read leaves its count unknown, which scores nothing: many servers hide them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Final

from bridge.backfeed.moderation import (
    AuthorFacts,
    Policy,
    Verdict,
    account_age_days,
    is_duplicate,
    moderate,
    normalize_text,
)
from bridge.backfeed.sanitize import html_to_text
from bridge.config import Config
from bridge.context import BridgeContext
from bridge.errors import RemoteFetchError
from bridge.federation.remote_actors import fetch_document, host_of, is_http_url
from bridge.ingest.normalize import iso_to_utc
from bridge.store.base import Blog, RemoteActor

log = logging.getLogger(__name__)

COUNTS_KEY: Final = "_feedfed_counts"
"""Where the fetched counts are kept in a cached actor document."""
_HOUR: Final = timedelta(hours=1)


@dataclass(frozen=True)
class Candidate:
    """A comment about to be moderated: who wrote it, where, and what it says."""

    blog: Blog
    entry_id: str
    actor: RemoteActor
    origin: str
    """The author's server (``host[:port]``), for "first contact" and blocks."""
    text: str
    """Plain text (for scoring and duplicates)."""
    html: str
    """Sanitised HTML (links are counted here)."""
    received_before: datetime
    """The author's server counts as known if it was heard from before this."""

    @cached_property
    def text_hash(self) -> str:
        """:func:`text_hash` of the HTML (stored with the comment, compared for duplicates)."""
        return text_hash(self.html)


def policy_for(config: Config, blog: Blog) -> Policy:
    """The blog's moderation policy: its mode, the operator's ``[moderation]`` settings.

    A blog declared in the config file takes its mode from there (the file is what the
    operator edits); one added with the CLI from its stored settings.
    """
    mode = blog.settings.moderation
    if blog.from_config:
        mode = next((b.moderation for b in config.blogs if b.handle == blog.handle), mode)
    settings = config.moderation
    return Policy(
        mode=mode,
        hold_threshold=settings.hold_threshold,
        spam_threshold=settings.spam_threshold,
        keywords=settings.keywords,
        max_links=settings.max_links,
        rate_limit=settings.rate_limit,
        duplicate_window=settings.duplicate_window,
    )


def text_hash(html: str) -> str:
    """What duplicates are compared by (stored with each comment): a hash of the sanitised
    HTML as rendered to text and normalised (:func:`~bridge.backfeed.moderation.normalize_text`),
    so a stored comment compares like a new one. An empty text hashes to ``""``, which
    :func:`verdict_for` never compares."""
    normalized = normalize_text(html_to_text(html))
    if not normalized:
        return ""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


async def verdict_for(ctx: BridgeContext, candidate: Candidate) -> Verdict:
    """The state the comment starts in, and why."""
    now = ctx.clock()
    policy = policy_for(ctx.config, candidate.blog)
    actor_id = candidate.actor.id
    window = timedelta(seconds=policy.duplicate_window)
    digest = candidate.text_hash
    standing = await ctx.store.author_standing(
        actor_id,
        candidate.blog.id,
        candidate.entry_id,
        digest or None,
        now - _HOUR,
        now - window,
        now + window,
        host=host_of(actor_id),
        origin=candidate.origin,
        origin_before=candidate.received_before,
    )
    severity = standing.domain_severity
    blocked = severity == "block" or standing.blocked
    duplicate = standing.duplicate
    if digest and not duplicate and standing.unhashed:
        # Comments stored without a hash are compared by their text, as rendered.
        rendered = html_to_text(candidate.html)
        earlier = [(html_to_text(html), now) for html in standing.unhashed]
        duplicate = is_duplicate(rendered, earlier, now, policy.duplicate_window)
    facts = await author_facts(
        ctx, candidate, standing.recent_count, standing.published_before, standing.origin_known
    )
    return moderate(
        candidate.text,
        candidate.html,
        facts,
        policy,
        blocked=blocked,
        duplicate=duplicate,
        now=now,
        limited=severity == "limit",
    )


async def author_facts(
    ctx: BridgeContext,
    candidate: Candidate,
    recent: int,
    approved: bool,
    known: bool,
) -> AuthorFacts:
    """Account age and counts, with the author's comments of the last hour, earlier approval and
    whether its server was heard from before as the store gave them."""
    actor = candidate.actor
    followers = statuses = None
    if not approved:
        followers, statuses = await counts(ctx, actor)
    created = iso_to_utc(actor.document.get("published"))
    return AuthorFacts(
        account_age_days=account_age_days(created, ctx.clock()),
        followers_count=followers,
        statuses_count=statuses,
        previously_approved=approved,
        recent_comments=recent,
        known_domain=known,
    )


async def counts(ctx: BridgeContext, actor: RemoteActor) -> tuple[int | None, int | None]:
    """The actor's follower and post counts, from the cache or fetched (None: unknown)."""
    cached = actor.document.get(COUNTS_KEY)
    if isinstance(cached, dict):
        return _count(cached.get("followers")), _count(cached.get("statuses"))
    followers = await _total(ctx, actor.document.get("followers"))
    statuses = await _total(ctx, actor.document.get("outbox"))
    document = {**actor.document, COUNTS_KEY: {"followers": followers, "statuses": statuses}}
    await ctx.store.put_remote_actor(replace(actor, document=document))
    return followers, statuses


async def _total(ctx: BridgeContext, url: Any) -> int | None:
    if not isinstance(url, str) or not is_http_url(url):
        return None
    try:
        document = await fetch_document(ctx, url)
    except RemoteFetchError as error:
        # Hidden counts are common (Mastodon can hide them, GoToSocial does by default);
        # unknown scores nothing, so this is no failure of the comment.
        log.info("count at %s unknown: %s", url[:200], error)
        return None
    return _count(document.data.get("totalItems"))


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
