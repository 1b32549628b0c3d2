"""Feed documents (bytes) → :class:`~bridge.entries.ParsedFeed`: pure, no I/O.

RSS 0.9x/1.0/2.0 and Atom go through feedparser, always handed the bytes in a ``BytesIO`` (a
``str`` or ``bytes`` argument may make feedparser open a URL or a local file). JSON Feed 1.0/1.1,
which this feedparser version does not read, goes through :mod:`bridge.ingest.jsonfeed`.

feedparser is lenient: it reads broken XML as well as it can and flags it "bozo". A slightly
broken feed that still yields entries is accepted, as feed readers do; a document that is not
a usable feed raises :class:`~bridge.errors.FeedParseError` with a message meant for the blog
owner. feedparser's HTML sanitizer stays on (scripts, event handlers and ``javascript:`` URLs
are removed); relative URLs are resolved here rather than by feedparser, so that content of RSS
items resolves against the item's own link (the page it is published on) unless an
``xml:base`` says otherwise.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from xml.sax import SAXParseException

import feedparser
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from bridge.entries import FeedEntry, FeedMeta, Image, ParsedFeed
from bridge.errors import FeedParseError
from bridge.ingest.jsonfeed import parse_json_feed
from bridge.ingest.markup import (
    clean_text,
    dimension,
    extract_images,
    html_to_text,
    http_url,
    is_http_url,
    resolve_urls,
    text_to_html,
)
from bridge.ingest.normalize import (
    stable_entry_id,
    struct_to_utc,
    unique_entries,
    unique_images,
    unique_terms,
)

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_SNIFF_BYTES = 1024
# How UTF-16/UTF-32 documents begin once _strip_bom has removed a (partial) byte order mark.
_WIDE_STARTS = (b"\x00<", b"<\x00", b"\x00\x00\x00<", b"\x00\x00<", b"\x00\x00\xfe\xff")
# A doctype at the very start (after comments), or an <html> element anywhere near it.
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<!doctype\s+html|<html[\s>]", re.I | re.S)
_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF)[\s>]", re.I)
# expat's messages for a document that stops before its root element is closed.
_END_OF_INPUT_ERRORS = frozenset({"no element found", "unclosed token", "unclosed CDATA section"})
_JSON_TYPES = ("application/json", "application/feed+json")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# "addr@example.org (Name)" (RSS <author>), "Name (addr@example.org)" (feedparser's rendering of
# an Atom author with an email) and "Name <addr@example.org>".
_EMAIL = r"[^\s@()<>]+@[^\s@()<>]+"
_AUTHOR_FORMS = (
    re.compile(rf"^{_EMAIL}\s*\((?P<name>[^()]+)\)$"),
    re.compile(rf"^(?P<name>.+?)\s*\({_EMAIL}\)$"),
    re.compile(rf"^(?P<name>.+?)\s*<{_EMAIL}>$"),
)


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a fetched feed document; ``url`` is where it was fetched from (the base URL).

    Raises :class:`~bridge.errors.FeedParseError` when ``body`` is not a usable feed.
    """
    head = _strip_bom(body[:_SNIFF_BYTES]).lstrip()
    if not head:
        raise FeedParseError("not a feed: the response body is empty")
    if head.startswith((b"{", b"[")) or (
        not head.startswith(b"<") and _media_type(content_type) in _JSON_TYPES
    ):
        return parse_json_feed(body, url=url)
    _reject_binary(head)
    return _parse_xml(body, url=url, content_type=content_type)


async def parse_feed_async(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """:func:`parse_feed` in a worker thread, so a large feed does not stall the event loop."""
    return await asyncio.to_thread(parse_feed, body, url=url, content_type=content_type)


def looks_like_html(body: bytes, content_type: str | None = None) -> bool:
    """True when ``body`` is (most likely) an HTML page rather than a feed."""
    head = _strip_bom(body[:_SNIFF_BYTES])
    if _HTML_START.search(head.lstrip()):
        return True
    # Servers label feeds text/html surprisingly often; a feed root element overrides that.
    return _media_type(content_type) in _HTML_TYPES and not _FEED_ROOT.search(head)


def _parse_xml(body: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    result = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        resolve_relative_uris=False,
        sanitize_html=True,
    )
    _reject_unusable(result, body, content_type)
    version = str(result.get("version") or "")
    feed = result["feed"]
    meta = _meta(feed, url)
    feed_author = _author_name(_get(feed, "author"))
    entries = (
        _entry(raw, feed_url=url, version=version, meta=meta, feed_author=feed_author)
        for raw in result["entries"]
    )
    return ParsedFeed(meta=meta, entries=unique_entries(entries), format=version)


def _reject_unusable(result: Any, body: bytes, content_type: str | None) -> None:
    """Raise FeedParseError unless feedparser found something a feed reader would show.

    A broken document without entries is refused even when feedparser salvaged a channel
    title, and so is a document that ends inside an entry: a feed cut off by its server must
    not look like a blog whose posts vanished or whose last post lost its end.
    Encoding complaints ("declared as us-ascii, parsed as utf-8") are not breakage.
    """
    exc = result.get("bozo_exception")
    if _cut_off(exc, body):
        raise FeedParseError(
            f"not a feed: the document is cut off ({_describe_xml_error(exc, body)})"
        )
    if result["entries"]:
        return
    broken = bool(result.get("bozo")) and not isinstance(exc, ThingsNobodyCaresAboutButMe)
    if not result.get("version"):
        if looks_like_html(body, content_type):
            raise FeedParseError("not a feed: looks like an HTML page")
        if broken:
            raise FeedParseError(f"not a feed: {_describe_xml_error(exc, body)}")
        raise FeedParseError("not a feed: no RSS, Atom or RDF root element")
    if broken:
        raise FeedParseError(f"not a feed: {_describe_xml_error(exc, body)}")


def _cut_off(exc: object, body: bytes) -> bool:
    """True when the XML ends early, somewhere other than right after a complete entry."""
    if not isinstance(exc, SAXParseException) or exc.getMessage() not in _END_OF_INPUT_ERRORS:
        return False
    return not body.rstrip().lower().endswith((b"</item>", b"</entry>", b"</channel>"))


def _describe_xml_error(exc: object, body: bytes) -> str:
    if isinstance(exc, SAXParseException):
        line = exc.getLineNumber()
        # feedparser prepends an XML declaration line to documents that lack one.
        if line and line > 1 and not _strip_bom(body).lstrip().startswith(b"<?xml"):
            line -= 1
        return f"malformed XML at line {line}: {exc.getMessage()}"
    return f"malformed XML: {exc}"


def _reject_binary(head: bytes) -> None:
    if head.startswith(b"\x1f\x8b"):
        raise FeedParseError("not a feed: gzip-compressed data (served without Content-Encoding)")
    if head.startswith(_WIDE_STARTS):
        return  # UTF-16/32: NUL bytes are expected there
    if b"\x00" in head:
        raise FeedParseError("not a feed: binary data, not a text document")


def _meta(feed: Any, url: str) -> FeedMeta:
    image = _get(feed, "image") or {}
    icon = _get(feed, "icon") or _get(feed, "logo") or _get(image, "href")
    return FeedMeta(
        title=_detail_text(_get(feed, "title_detail"), _get(feed, "title")),
        description=_detail_text(_get(feed, "subtitle_detail"), _get(feed, "subtitle")),
        home_url=http_url(_get(feed, "link"), url),
        icon_url=http_url(icon, url),
        language=clean_text(_get(feed, "language")),
        self_url=http_url(_link_href(feed, "self"), url),
        hub_url=http_url(_link_href(feed, "hub"), url),
    )


def _entry(
    raw: Any, *, feed_url: str, version: str, meta: FeedMeta, feed_author: str | None
) -> FeedEntry:
    link = http_url(_get(raw, "link"), feed_url)
    content_detail = _pick_content(_get(raw, "content") or [])
    summary_detail = _get(raw, "summary_detail")
    content_html = _detail_html(content_detail, _base(content_detail, version, feed_url, link))
    summary_html = _detail_html(summary_detail, _base(summary_detail, version, feed_url, link))
    # feedparser copies an Atom entry's content into its summary when it has none.
    if content_html and _get(summary_detail, "value") == _get(content_detail, "value"):
        summary_html = None
    title = _detail_text(_get(raw, "title_detail"), _get(raw, "title"))
    published = (
        struct_to_utc(_get(raw, "published_parsed"))
        or struct_to_utc(_get(raw, "created_parsed"))
        # RSS 1.0 (dc:date) and many Atom feeds only date an entry by its last change.
        or struct_to_utc(_get(raw, "updated_parsed"))
    )
    images = unique_images(
        [
            *extract_images(content_html),
            *extract_images(summary_html),
            *_enclosure_images(_get(raw, "links") or []),
            *_media_images(_get(raw, "media_content") or [], thumbnails=False),
            *_media_images(_get(raw, "media_thumbnail") or [], thumbnails=True),
        ]
    )
    language = (
        _get(raw, "language")
        or _get(content_detail, "language")
        or _get(_get(raw, "title_detail"), "language")
        or _get(summary_detail, "language")
        or meta.language
    )
    return FeedEntry(
        id=stable_entry_id(
            guid=_get(raw, "id"),
            link=link,
            title=title,
            published=published,
            content=content_html or summary_html,
        ),
        link=link,
        title=title,
        summary_html=summary_html,
        content_html=content_html,
        published=published,
        updated=struct_to_utc(_get(raw, "updated_parsed")),
        author=_author_name(_get(raw, "author")) or feed_author,
        categories=unique_terms(
            _get(tag, "term") or _get(tag, "label") for tag in _get(raw, "tags") or []
        ),
        images=images,
        language=clean_text(language),
        comments_feed=_comments_feed(raw, feed_url),
    )


def _get(mapping: Any, key: str) -> Any:
    """A plain lookup that bypasses FeedParserDict's key aliases and deprecation fallbacks."""
    if isinstance(mapping, Mapping):
        return dict.get(mapping, key) if isinstance(mapping, dict) else mapping.get(key)
    return None


def _pick_content(contents: Iterable[Any]) -> Any:
    """The HTML variant when an entry offers several (Atom allows one, RSS plugins add more)."""
    candidates = [c for c in contents if _get(c, "value")]
    for candidate in candidates:
        if _get(candidate, "type") in ("text/html", "application/xhtml+xml"):
            return candidate
    return candidates[0] if candidates else None


def _base(detail: Any, version: str, feed_url: str, link: str | None) -> str:
    """The URL that relative references inside an entry's HTML are resolved against."""
    detail_base = _get(detail, "base")
    if version.startswith("atom") and is_http_url(detail_base):
        return str(detail_base)  # RFC 4287: xml:base, else the document's own URL
    if is_http_url(detail_base) and detail_base != feed_url:
        return str(detail_base)  # an explicit xml:base in an RSS feed
    return link or feed_url


def _detail_html(detail: Any, base: str) -> str | None:
    value = _get(detail, "value")
    if not isinstance(value, str) or not value.strip():
        return None
    if _get(detail, "type") == "text/plain":
        return text_to_html(value)
    return resolve_urls(value.strip(), base)


def _detail_text(detail: Any, fallback: Any) -> str | None:
    value = _get(detail, "value")
    if not isinstance(value, str):
        return clean_text(fallback) if isinstance(fallback, str) else None
    if _get(detail, "type") in ("text/html", "application/xhtml+xml"):
        return html_to_text(value)
    return clean_text(value)


def _author_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = clean_text(value)
    if text is None:
        return None
    for form in _AUTHOR_FORMS:
        match = form.match(text)
        if match:
            return match.group("name").strip()
    return text


def _link_href(feed: Any, rel: str) -> str | None:
    for link in _get(feed, "links") or []:
        rels = str(_get(link, "rel") or "").lower().split()
        if rel in rels and _get(link, "href"):
            return str(_get(link, "href"))
    return None


def _comments_feed(raw: Any, feed_url: str) -> str | None:
    wfw = _get(raw, "wfw_commentrss")
    if isinstance(wfw, str) and wfw.strip():
        return http_url(wfw, feed_url)
    replies = [
        link
        for link in _get(raw, "links") or []
        if "replies" in str(_get(link, "rel") or "").lower().split() and _get(link, "href")
    ]
    # RFC 4685 allows replies links to HTML pages too; a feed is what a poller can read.
    replies.sort(key=lambda link: "xml" not in str(_get(link, "type") or "xml"))
    return http_url(_get(replies[0], "href"), feed_url) if replies else None


def _enclosure_images(links: Iterable[Any]) -> Iterator[Image]:
    for link in links:
        if _get(link, "rel") != "enclosure":
            continue
        url = _get(link, "href")
        media_type = _image_type(url, _get(link, "type"))
        if media_type and is_http_url(url):
            yield Image(url=str(url).strip(), media_type=media_type)


def _media_images(items: Iterable[Any], *, thumbnails: bool) -> Iterator[Image]:
    for item in items:
        url = _get(item, "url")
        if not is_http_url(url):
            continue
        declared = _get(item, "type")
        medium = _get(item, "medium")
        if thumbnails or medium == "image":
            media_type = _image_type(url, declared) or _image_type(url, None)
        elif declared or not medium:
            media_type = _image_type(url, declared)
        else:
            media_type = None  # a video, audio or document medium
        if media_type is None and not thumbnails and medium != "image":
            continue
        yield Image(
            url=str(url).strip(),
            media_type=media_type,
            width=dimension(_get(item, "width")),
            height=dimension(_get(item, "height")),
        )


def _image_type(url: Any, declared: Any) -> str | None:
    """The image media type of an attachment, from its declared type or else its URL."""
    if isinstance(declared, str) and declared.strip():
        declared = declared.strip().lower()
        return declared if declared.startswith("image/") else None
    if isinstance(url, str):
        guessed, _ = mimetypes.guess_type(url.split("?", 1)[0], strict=False)
        if guessed and guessed.startswith("image/"):
            return guessed
    return None


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _strip_bom(data: bytes) -> bytes:
    for bom in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :]
    return data
