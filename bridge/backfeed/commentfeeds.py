"""Comment feeds: a post's comments and a whole blog's, as RSS 2.0 and Atom (pure).

What WordPress serves at ``/feed/`` under a post and at ``/comments/feed/``, built with
feedgen: newest first, published comments only, each item naming the post (or the comment)
it answers. Atom items carry RFC 4685's ``thr:in-reply-to`` (``ref`` is the parent's object
id, ``href`` its page), and RSS items carry the same element, which feed readers that thread
RSS comments (and feedparser) read too; RSS names the author in ``dc:creator`` as WordPress
does, since RSS's own ``<author>`` wants an e-mail address.

Everything a remote party wrote is hostile: the comment HTML is sanitised again on the way
out (a stricter allow-list reaches old comments), and every string loses the characters XML
cannot carry (controls, lone surrogates), so no comment can break the document. Text is
escaped, never put into CDATA, so ``]]>`` in a comment is just text.

Conditional GET: the ETag is a hash of the body, so it changes exactly when the feed does
(the body is deterministic: its build date is the newest comment's time, not the clock);
``Last-Modified`` is the newest time among the comments and those deleted, which misses
only the approval of an old held comment, and If-None-Match, which every feed reader sends
with it, decides first (RFC 9110 § 13.2.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Final, Literal

from feedgen.entry import FeedEntry as GeneratedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.ext.dc import DcEntryExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from bridge.backfeed.sanitize import (
    isolate,
    plain_line,
    plain_name,
    sanitize_html,
    strip_controls,
)
from bridge.store.roles_backfeed import Comment

__all__ = [
    "FEED_ITEMS",
    "THREAD_NS",
    "CommentFeed",
    "FeedItem",
    "FeedKind",
    "PostRef",
    "build_feed",
    "comment_item",
    "entity_tag",
    "http_date",
    "is_not_modified",
    "media_type",
]

FeedKind = Literal["rss", "atom"]

FEED_ITEMS: Final = 50
"""Comments per feed (WordPress serves 10; a reader polling hourly misses none at 50)."""

THREAD_NS: Final = "http://purl.org/syndication/thread/1.0"
_TITLE_LIMIT: Final = 200
_MEDIA_TYPES: Final[Mapping[str, str]] = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
}


@dataclass(frozen=True)
class PostRef:
    """The post a comment belongs to, as the feeds name it."""

    object_id: str
    title: str
    url: str
    """Where people read the post: the blog post itself (or its object id)."""


@dataclass(frozen=True)
class FeedItem:
    """One comment as a feed item; every string already safe plain text or sanitised HTML."""

    id: str
    title: str
    link: str
    author_name: str
    author_url: str
    content_html: str
    published: datetime
    updated: datetime
    in_reply_to: str
    """The parent's object id (the post's, or another comment's)."""
    in_reply_to_href: str
    """Where the parent is read."""


@dataclass(frozen=True)
class CommentFeed:
    """A whole comment feed: its own URLs, what it is about, its items newest first."""

    self_url: str
    alternate_url: str
    """The feed of the other kind (RSS for Atom and back)."""
    title: str
    home_url: str
    """The page the comments belong to (the post page, or the blog's profile)."""
    description: str
    language: str | None
    updated: datetime
    items: tuple[FeedItem, ...]


def comment_item(
    comment: Comment,
    post: PostRef,
    page_url: str,
    *,
    parents: Mapping[str, str],
    blog_wide: bool,
) -> FeedItem:
    """The feed item of a comment.

    ``page_url`` is the comment's page on the bridge; ``parents`` maps the object ids of
    other comments to their pages, so a nested reply points at its parent's page (a parent
    not shown there is named by its object id). Titles follow WordPress: "By: name" in a
    post's feed, "Comment on „title“ by name" in the blog's.
    """
    author = plain_name(comment.author.name, comment.author.handle or comment.author.actor_id)
    name = isolate(author)
    title = f"Comment on „{isolate(_text(post.title))}“ by {name}" if blog_wide else f"By: {name}"
    if comment.parent_id is None or comment.parent_id == post.object_id:
        parent, parent_href = post.object_id, post.url
    else:
        parent = comment.parent_id
        parent_href = parents.get(parent, parent)
    return FeedItem(
        id=_raw(comment.object_id),
        title=title,
        link=page_url,
        author_name=author,
        author_url=_raw(comment.author.profile_url),
        content_html=sanitize_html(comment.content_html),
        published=_utc(comment.published),
        updated=_utc(comment.updated or comment.published),
        in_reply_to=_raw(parent),
        in_reply_to_href=_raw(parent_href),
    )


def feed_updated(times: Iterable[datetime | None], fallback: datetime) -> datetime:
    """The feed's time: the newest of ``times`` (comments' arrival, edits, deletions)."""
    known = [_utc(moment) for moment in times if moment is not None]
    return max(known, default=_utc(fallback)).replace(microsecond=0)


def build_feed(feed: CommentFeed, kind: FeedKind) -> bytes:
    """The feed document as UTF-8 XML bytes."""
    generator = FeedGenerator()
    generator.register_extension("thr", ThreadingExtension, ThreadingEntryExtension)
    generator.load_extension("dc", atom=False, rss=True)
    generator.id(_raw(feed.self_url))
    generator.title(_text(feed.title) or "Comments")
    generator.description(_text(feed.description) or _text(feed.title) or "Comments")
    generator.link(href=_raw(feed.self_url), rel="self", type=media_type(kind))
    if kind == "atom":
        generator.link(href=_raw(feed.alternate_url), rel="alternate", type=media_type("rss"))
    # Last: RSS has one channel link, and feedgen makes it the last link given.
    generator.link(href=_raw(feed.home_url), rel="alternate", type="text/html")
    if feed.language:
        generator.language(feed.language)
    generator.generator("feedfed")
    generator.updated(_utc(feed.updated))
    for item in feed.items:
        generator.add_entry(_entry(item), order="append")
    if kind == "atom":
        document: bytes = generator.atom_str(pretty=False, encoding="UTF-8")
    else:
        document = generator.rss_str(pretty=False, encoding="UTF-8")
    return document


def media_type(kind: FeedKind) -> str:
    """The content type a feed of ``kind`` is served as."""
    return _MEDIA_TYPES[kind]


def entity_tag(body: bytes) -> str:
    """A strong ETag for a response body."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def http_date(moment: datetime) -> str:
    """``moment`` as an HTTP date (``Last-Modified``)."""
    return format_datetime(_utc(moment).replace(microsecond=0), usegmt=True)


def is_not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    last_modified: datetime,
) -> bool:
    """Whether a conditional GET may be answered 304 (RFC 9110 § 13.1.2, § 13.1.3).

    If-None-Match is compared weakly and, when present, decides alone; If-Modified-Since
    counts only without it, and an unreadable date is ignored.
    """
    if if_none_match is not None:
        wanted = etag.removeprefix("W/")
        for tag in if_none_match.split(","):
            tag = tag.strip()
            if tag == "*" or tag.removeprefix("W/") == wanted:
                return True
        return False
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return _utc(last_modified).replace(microsecond=0) <= since


class ThreadingExtension(BaseExtension):  # type: ignore[misc]
    """Declares RFC 4685's ``thr`` namespace on the feed."""

    def extend_ns(self) -> dict[str, str]:
        """The namespace prefix feedgen puts on the root element."""
        return {"thr": THREAD_NS}


class ThreadingEntryExtension(BaseEntryExtension):  # type: ignore[misc]
    """``<thr:in-reply-to ref=… href=… type="text/html"/>`` on an entry or item."""

    def __init__(self) -> None:
        self._reply: tuple[str, str] | None = None

    def in_reply_to(self, ref: str, href: str) -> None:
        """Name what the entry answers: the parent's id and where to read it."""
        self._reply = (ref, href)

    def extend_atom(self, entry: Any) -> Any:
        """Add the element to an Atom entry."""
        return self._extend(entry)

    def extend_rss(self, item: Any) -> Any:
        """Add the element to an RSS item."""
        return self._extend(item)

    def _extend(self, element: Any) -> Any:
        if self._reply is not None:
            ref, href = self._reply
            reply = xml_elem(f"{{{THREAD_NS}}}in-reply-to", element)
            reply.attrib.update({"ref": ref, "href": href, "type": "text/html"})
        return element


def _entry(item: FeedItem) -> GeneratedEntry:
    entry = GeneratedEntry()
    entry.register_extension("thr", ThreadingEntryExtension)
    entry.register_extension("dc", DcEntryExtension, atom=False, rss=True)
    entry.id(item.id)
    entry.guid(item.id, permalink=False)
    entry.title(item.title)
    entry.link(href=item.link, rel="alternate", type="text/html")
    author: dict[str, str] = {"name": item.author_name or "?"}
    if item.author_url:
        author["uri"] = item.author_url
    entry.author(author)
    entry.dc.dc_creator(item.author_name or "?")
    # An empty comment (a bare attachment, say) still needs content for a valid entry.
    entry.content(item.content_html or "<p></p>", type="html")
    entry.published(item.published)
    entry.updated(item.updated)
    entry.pubDate(item.published)
    entry.thr.in_reply_to(item.in_reply_to, item.in_reply_to_href)
    return entry


def _text(value: str | None) -> str:
    """Human text on one line (names, titles): no controls, no directional overrides."""
    return plain_line(value, _TITLE_LIMIT) if value else ""


def _raw(value: str | None) -> str:
    """An id or URL kept whole, only what XML cannot carry removed."""
    return strip_controls(value).strip() if value else ""


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def items_for(
    comments: Sequence[Comment],
    post_of: Mapping[str, PostRef],
    page_of: Mapping[str, str],
    *,
    blog_wide: bool,
) -> tuple[FeedItem, ...]:
    """Feed items of ``comments`` (already newest first and published).

    ``post_of`` maps entry ids to their posts, ``page_of`` comments' object ids to their
    pages; comments of posts not in ``post_of`` (deleted posts) are left out.
    """
    return tuple(
        comment_item(
            comment,
            post_of[comment.entry_id],
            page_of[comment.object_id],
            parents=page_of,
            blog_wide=blog_wide,
        )
        for comment in comments
        if comment.entry_id in post_of and comment.object_id in page_of
    )
