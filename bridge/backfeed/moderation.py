"""Moderation of incoming comments: the state a comment starts in, and why (pure).

A comment is ``published``, ``held`` for the blog's moderators, a ``duplicate`` (held), probable
``spam`` (held apart, shown in the moderation queue) or ``rejected`` (a blocked actor or domain:
not stored as a comment at all). :func:`moderate` decides from the comment, facts about its
author that the caller gathered (store and actor document) and the blog's :class:`Policy`.

The default mode is ``publish_all``. WordPress holds a first-time commenter by default, but
on a blog a comment form is open to anyone and anonymous; a fediverse reply comes from an
account with a signed, fetchable identity on a server that has its own moderation, and the
operator's domain blocklist keeps out the servers that do not. Nearly every fediverse reply
to a given blog is its author's first one there, so holding first-timers would hold nearly
everything while the author's own server shows the reply at once: the conversation would
look broken. Spam scoring is the safety net instead; an operator who wants WordPress'
behaviour sets ``hold_first_time`` (or ``hold_all``).

The score adds evidence, each signal with a stated reason. Account signals (a new account,
no followers, no posts, an unknown server) cannot reach the spam threshold on their own, at
most the hold threshold: a newcomer without links is held at worst. Content signals (links,
link density, keywords, mass mentions) and flooding push a suspicious account over it. An
author whose comments the blog approved before is trusted: that lowers the score.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

ModerationMode = Literal["publish_all", "hold_first_time", "hold_all"]
CommentState = Literal["published", "held", "duplicate", "spam", "rejected"]

# Weights of the signals. Account signals sum to at most 0.75 (< spam threshold 1.0).
NEW_ACCOUNT: Final = 0.3
"""An account less than a day old."""
YOUNG_ACCOUNT: Final = 0.15
"""An account less than a week old."""
NO_FOLLOWERS: Final = 0.2
NO_POSTS: Final = 0.1
"""At most one post: this comment may be the account's first."""
UNKNOWN_SERVER: Final = 0.15
PER_LINK: Final = 0.15
"""Each link, up to the policy's ``max_links``."""
TOO_MANY_LINKS: Final = 0.6
LINK_HEAVY: Final = 0.2
"""Fewer than :data:`WORDS_PER_LINK` words per link."""
WORDS_PER_LINK: Final = 10
KEYWORD: Final = 0.6
MASS_MENTION: Final = 0.4
"""At least :data:`MASS_MENTION_COUNT` accounts mentioned (the 2024 spam waves did this)."""
MASS_MENTION_COUNT: Final = 5
FLOODING: Final = 0.6
"""More comments in the last hour than the policy's ``rate_limit``."""
APPROVED_BEFORE: Final = -0.5

_ANCHOR: Final = re.compile(r"<a\s([^>]*)>", re.IGNORECASE)
_CLASS: Final = re.compile(r'\bclass="([^"]*)"')
_HREF: Final = re.compile(r'\bhref="[^"]')
_WORD: Final = re.compile(r"\w+")
_PUNCTUATION_OR_SPACE: Final = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Policy:
    """A blog's moderation settings."""

    mode: ModerationMode = "publish_all"
    hold_threshold: float = 0.6
    """A score at or above this holds the comment for review."""
    spam_threshold: float = 1.0
    """A score at or above this files the comment as spam."""
    keywords: tuple[str, ...] = ()
    """Words or phrases that hold a comment (matched whole, ignoring case)."""
    max_links: int = 3
    """More links than this count as a strong spam signal."""
    rate_limit: int = 10
    """Comments per author per hour before flooding counts against them."""
    duplicate_window: float = 86_400.0
    """Seconds within which the same text by the same author is a duplicate."""


@dataclass(frozen=True)
class AuthorFacts:
    """What the bridge knows about a comment's author when it arrives; ``None``: unknown."""

    account_age_days: float | None = None
    followers_count: int | None = None
    statuses_count: int | None = None
    previously_approved: bool = False
    """A comment of theirs was published on this blog before (not counting this one)."""
    recent_comments: int = 0
    """How many of their earlier comments (on any of the bridge's blogs) arrived in the hour
    before this one."""
    known_domain: bool = False
    """The bridge had dealings with the author's server before (followers, comments)."""


@dataclass(frozen=True)
class Verdict:
    """The state a comment starts in, its spam score and the reasons, for the queue."""

    state: CommentState
    score: float
    reasons: tuple[str, ...]


def account_age_days(created: datetime | None, now: datetime) -> float | None:
    """Days since an account was created (its actor's ``published``); ``None`` if unknown.

    A creation date in the future (a clock or a lie) counts as brand new.
    """
    if created is None:
        return None
    return max(0.0, (now - created).total_seconds() / 86_400)


def spam_score(
    text: str, html: str, facts: AuthorFacts, policy: Policy, *, now: datetime
) -> tuple[float, list[str]]:
    """The evidence that a comment is spam: a score (0 is clean) and a reason per signal.

    ``text`` is the comment's plain text, ``html`` its sanitised HTML (links are counted
    there, mention and hashtag links excepted).
    """
    score = 0.0
    reasons: list[str] = []

    def add(weight: float, reason: str) -> None:
        nonlocal score
        score += weight
        reasons.append(reason)

    age = facts.account_age_days
    if age is not None and age < 1:
        add(NEW_ACCOUNT, "account less than a day old")
    elif age is not None and age < 7:
        add(YOUNG_ACCOUNT, "account less than a week old")
    if facts.followers_count == 0:
        add(NO_FOLLOWERS, "no followers")
    if facts.statuses_count is not None and facts.statuses_count <= 1:
        add(NO_POSTS, "no earlier posts")
    if not facts.known_domain:
        add(UNKNOWN_SERVER, "first contact with this server")

    links, mentions = _count_links(html)
    if len(links) > policy.max_links:
        add(TOO_MANY_LINKS, f"{len(links)} links (more than {policy.max_links})")
    elif links:
        add(PER_LINK * len(links), f"{len(links)} link{'s' if len(links) > 1 else ''}")
    words = len(_WORD.findall(text))
    if links and words < WORDS_PER_LINK * len(links):
        add(LINK_HEAVY, f"{words} words for {len(links)} links")
    if mentions >= MASS_MENTION_COUNT:
        add(MASS_MENTION, f"{mentions} accounts mentioned")
    # Folded (NFKC, case) only when there is a keyword to look for: most blogs set none.
    folded = _fold(text) if policy.keywords else ""
    for keyword in policy.keywords:
        if _contains_phrase(folded, _fold(keyword)):
            add(KEYWORD, f"keyword {keyword!r}")
    recent = facts.recent_comments
    if recent >= policy.rate_limit:
        add(FLOODING, f"{recent} comments in the last hour (limit {policy.rate_limit})")
    if facts.previously_approved:
        add(APPROVED_BEFORE, "comments approved before")
    return round(max(score, 0.0), 4), reasons


def normalize_text(text: str) -> str:
    """The text as compared for duplicates: Unicode-normalised (NFKC), case-folded, with
    punctuation, whitespace and invisible characters reduced to single spaces."""
    return _PUNCTUATION_OR_SPACE.sub(" ", _fold(text)).strip()


def is_duplicate(
    text: str,
    recent: Iterable[tuple[str, datetime]],
    now: datetime,
    window: float,
) -> bool:
    """Whether the same author said the same thing within ``window`` seconds before ``now``.

    ``recent`` holds the author's earlier comment texts (on the same post) with the times
    they arrived. Texts are compared by :func:`normalize_text`, so a changed emphasis or a
    trailing space does not make a new comment. An empty text (only attachments) is never a
    duplicate: there is nothing to compare.
    """
    normalized = normalize_text(text)
    if not normalized:
        return False
    limit = timedelta(seconds=window)
    return any(
        abs(now - moment) <= limit and normalize_text(earlier) == normalized
        for earlier, moment in recent
    )


def moderate(
    note_text: str,
    html: str,
    facts: AuthorFacts,
    policy: Policy,
    *,
    blocked: bool,
    duplicate: bool,
    now: datetime,
    limited: bool = False,
) -> Verdict:
    """The state an incoming comment starts in.

    In order: a ``blocked`` author or domain is ``rejected``; a ``duplicate`` (see
    :func:`is_duplicate`) is held as such; a score at or above the spam threshold is
    ``spam``; the comment is ``held`` when the policy holds all comments, when it holds
    first-time authors and this is one, when the author's server is ``limited`` (a
    "silence" blocklist entry), or when the score reaches the hold threshold; otherwise
    it is ``published``.
    """
    if blocked:
        return Verdict("rejected", 0.0, ("author or server blocked",))
    score, reasons = spam_score(note_text, html, facts, policy, now=now)
    if duplicate:
        return Verdict("duplicate", score, ("same text by the same author", *reasons))
    if score >= policy.spam_threshold:
        return Verdict("spam", score, tuple(reasons))
    hold: list[str] = []
    if policy.mode == "hold_all":
        hold.append("the blog holds all comments")
    elif policy.mode == "hold_first_time" and not facts.previously_approved:
        hold.append("first comment by this author")
    if limited:
        hold.append("server limited by the operator")
    if score >= policy.hold_threshold:
        hold.append(f"spam score {score:g}")
    if hold:
        return Verdict("held", score, (*hold, *reasons))
    return Verdict("published", score, tuple(reasons))


def _count_links(html: str) -> tuple[list[str], int]:
    """The plain links (their start tags) and the number of mention links in ``html``."""
    links: list[str] = []
    mentions = 0
    for attributes in _ANCHOR.findall(html):
        found = _CLASS.search(attributes)
        classes = found.group(1).split() if found else []
        if "hashtag" in classes:
            continue
        if "mention" in classes:
            mentions += 1
        elif _HREF.search(attributes):
            links.append(attributes)
    return links, mentions


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _contains_phrase(folded_text: str, folded_phrase: str) -> bool:
    phrase = folded_phrase.strip()
    if not phrase:
        return False
    # Whole words: "sex" must not hold "Sussex", "cialis" must not hold "specialist".
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", folded_text) is not None
