"""The blog's own comments, as the blog shows them: WordPress REST JSON and comment feeds.

Pure functions: bytes or decoded JSON in, :class:`BlogComment` values out, no I/O. What a
comment answers is kept as the blog names it (a WordPress ``parent`` id, an Atom
``thr:in-reply-to`` ref) together with every link in its text; deciding which fediverse
comment that is (if any) needs the store and happens in :mod:`bridge.backfeed.dialog`.

The HTML is sanitised here (:func:`bridge.backfeed.sanitize.sanitize_html`): a blog comment
is written by a blog visitor, as untrusted as a remote Note, and is shown and federated as is.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from bridge.backfeed.sanitize import plain_name, sanitize_html
from bridge.errors import FeedParseError
from bridge.ingest.normalize import iso_to_utc, struct_to_utc

MAX_NAME_CHARS = 200
MAX_LINKS = 50
APPROVED = "approved"
"""The WordPress status of a comment visitors see (REST ``status``)."""

_WP_FRAGMENT = re.compile(r"#comment-(\d+)$")


@dataclass(frozen=True)
class BlogComment:
    """One comment as the blog shows it.

    ``id`` is the blog's id of the comment (a WordPress comment id, or the comment feed
    entry's guid); ``post`` the blog's id of the post (a WordPress post id, or the post
    guid/link a feed names), None when the source does not say; ``parent`` the blog's id of
    the comment it answers (None: it answers the post, or the source does not say);
    ``links`` every http(s) link in its text, in order (a link to one of the bridge's
    comment pages is an answer to that comment); ``meta`` the string values of the
    comment's WordPress meta (the WordPress sink marks its own comments there).
    """

    id: str
    post: str | None
    parent: str | None
    author_name: str
    author_url: str | None
    content_html: str
    published: datetime | None
    modified: datetime | None = None
    url: str | None = None
    links: tuple[str, ...] = ()
    meta: tuple[str, ...] = ()
    status: str = APPROVED
    kind: str = "comment"

    @property
    def is_visible(self) -> bool:
        """Whether visitors of the blog see it: approved, and a comment (not a pingback)."""
        return self.status == APPROVED and self.kind in ("comment", "")

    def content_hash(self) -> str:
        """Hash of what readers see of it; a change is an edit (WordPress keeps no
        ``modified`` time for comments)."""
        seen = "\x00".join((self.author_name, self.author_url or "", self.content_html))
        return hashlib.sha256(seen.encode("utf-8")).hexdigest()


def parse_rest_comments(data: Any, *, base_url: str) -> tuple[BlogComment, ...]:
    """The comments of a WordPress ``/wp-json/wp/v2/comments`` answer (a JSON array).

    Items that are no comment object (no numeric ``id``) are skipped; an answer that is no
    array raises :class:`~bridge.errors.FeedParseError`. ``base_url`` resolves relative links.
    """
    if not isinstance(data, list):
        raise FeedParseError("the WordPress comments answer is no JSON array")
    return tuple(
        comment for item in data if (comment := parse_rest_comment(item, base_url)) is not None
    )


def parse_rest_comment(item: Any, base_url: str) -> BlogComment | None:
    """One WordPress REST comment object, or None when it is none."""
    if not isinstance(item, Mapping):
        return None
    comment_id = _wp_id(item.get("id"))
    if comment_id is None:
        return None
    rendered = item.get("content")
    raw_html = rendered.get("rendered") if isinstance(rendered, Mapping) else rendered
    url = _http(item.get("link"))
    content = sanitize_html(raw_html if isinstance(raw_html, str) else "", base_url=url or base_url)
    published = iso_to_utc(item.get("date_gmt")) or iso_to_utc(item.get("date"))
    return BlogComment(
        id=comment_id,
        post=_wp_id(item.get("post")),
        parent=_wp_id(item.get("parent")),
        author_name=_name(item.get("author_name")),
        author_url=_http(item.get("author_url")),
        content_html=content,
        published=published,
        modified=iso_to_utc(item.get("modified_gmt")),
        url=url,
        links=links_in(content),
        meta=tuple(_meta_values(item.get("meta"))),
        status=_text(item.get("status"), APPROVED),
        kind=_text(item.get("type"), "comment"),
    )


def parse_comment_feed(body: bytes, *, url: str) -> tuple[BlogComment, ...]:
    """The comments of a post's comment feed (RSS 2.0 or Atom, as WordPress serves them).

    CPU-bound: call it through ``asyncio.to_thread``. Raises
    :class:`~bridge.errors.FeedParseError` for a body that is no feed.
    """
    result = feedparser.parse(io.BytesIO(body), resolve_relative_uris=False, sanitize_html=False)
    if result.get("bozo") and not result.get("entries") and not result.get("version"):
        raise FeedParseError(f"no comment feed at {url}: {result.get('bozo_exception')}")
    return tuple(
        comment for raw in result.entries if (comment := _feed_comment(raw, url)) is not None
    )


def links_in(markup: str) -> tuple[str, ...]:
    """The distinct http(s) ``href`` values of ``<a>`` elements, in order (at most 50)."""
    finder = _LinkFinder()
    finder.feed(markup)
    finder.close()
    return tuple(dict.fromkeys(finder.links))[:MAX_LINKS]


def wordpress_comment_id(ref: str | None) -> str | None:
    """The WordPress comment id a guid or link names (``…?p=1234#comment-42`` → ``42``)."""
    if not ref:
        return None
    found = _WP_FRAGMENT.search(ref)
    return found.group(1) if found else None


def _feed_comment(raw: Any, feed_url: str) -> BlogComment | None:
    link = _http(raw.get("link"))
    guid = raw.get("id") or link
    if not isinstance(guid, str) or not guid:
        return None
    base = link or feed_url
    contents = raw.get("content") or []
    html = contents[0].get("value") if contents else raw.get("summary")
    content = sanitize_html(html if isinstance(html, str) else "", base_url=base)
    detail = raw.get("author_detail") or {}
    reply_to = raw.get("thr_in-reply-to") or {}
    # Plain lookups: FeedParserDict maps a missing ``updated`` onto ``published`` (and warns).
    published = struct_to_utc(dict.get(raw, "published_parsed"))
    updated = struct_to_utc(dict.get(raw, "updated_parsed"))
    parent = reply_to.get("ref") if isinstance(reply_to, Mapping) else None
    return BlogComment(
        id=guid,
        post=_post_of(guid),
        parent=parent if isinstance(parent, str) and parent else None,
        author_name=_name(raw.get("author") or detail.get("name")),
        author_url=_http(detail.get("href")),
        content_html=content,
        published=published or updated,
        modified=updated if published else None,
        url=link,
        links=links_in(content),
    )


def _post_of(guid: str) -> str | None:
    """The post part of a WordPress comment guid (``https://blog/?p=1234#comment-42``)."""
    if _WP_FRAGMENT.search(guid):
        return _WP_FRAGMENT.sub("", guid)
    return None


def _wp_id(value: Any) -> str | None:
    """A positive WordPress id as a string (0 means none: a top-level comment's parent)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip()
    return text if text.isdigit() and int(text) > 0 else None


def _name(value: Any) -> str:
    return plain_name(value if isinstance(value, str) else None, "Anonymous")[:MAX_NAME_CHARS]


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _http(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def _meta_values(meta: Any) -> Iterator[str]:
    if not isinstance(meta, Mapping):
        return
    for value in meta.values():
        yield from _strings(value if isinstance(value, list) else [value])


def _strings(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str) and value:
            yield value


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        for name, value in attrs:
            if name == "href" and value and (href := _http(urljoin("", value))) is not None:
                self.links.append(href)
