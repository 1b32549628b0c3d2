"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1) → ParsedFeed: pure, no I/O.

feedparser 6 does not read JSON Feed, so it is read here with :mod:`json`. Its HTML goes
through nh3 (ammonia), the counterpart of the sanitizer feedparser applies to RSS and Atom, so
``content_html`` is equally safe whichever format a blog publishes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import nh3

from bridge.entries import FeedEntry, FeedMeta, Image, ParsedFeed
from bridge.errors import FeedParseError
from bridge.ingest.markup import (
    clean_text,
    extract_images,
    http_url,
    resolve_urls,
    text_to_html,
)
from bridge.ingest.normalize import (
    iso_to_utc,
    stable_entry_id,
    unique_entries,
    unique_images,
    unique_terms,
)

VERSION_MARKER = "jsonfeed.org/version/"


def parse_json_feed(body: bytes, *, url: str) -> ParsedFeed:
    """Parse a JSON Feed document fetched from ``url``.

    Raises :class:`~bridge.errors.FeedParseError` for invalid JSON and for JSON that is not a
    JSON Feed (no ``version`` naming jsonfeed.org, or no ``items`` array).
    """
    document = _load(body)
    version = document.get("version")
    items = document.get("items")
    if not isinstance(version, str) or VERSION_MARKER not in version or not isinstance(items, list):
        raise FeedParseError(
            "not a feed: a JSON document, but not a JSON Feed (no jsonfeed.org version or no items)"
        )
    meta = _meta(document, url)
    feed_author = _author(document)
    entries = (
        _entry(item, feed_url=url, meta=meta, feed_author=feed_author)
        for item in items
        if isinstance(item, dict)
    )
    feed_format = "json11" if version.rstrip("/").endswith("/1.1") else "json10"
    return ParsedFeed(meta=meta, entries=unique_entries(entries), format=feed_format)


def _load(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except UnicodeDecodeError as exc:
        raise FeedParseError(f"not a feed: JSON that is not valid UTF-8 ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise FeedParseError(
            f"not a feed: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise FeedParseError("not a feed: JSON nested too deeply") from exc
    if not isinstance(document, dict):
        raise FeedParseError("not a feed: a JSON document, but not a JSON Feed (not an object)")
    return document


def _meta(document: dict[str, Any], url: str) -> FeedMeta:
    hubs = document.get("hubs")
    hub_urls = (
        [hub.get("url") for hub in hubs if isinstance(hub, dict)] if isinstance(hubs, list) else []
    )
    return FeedMeta(
        title=_text(document.get("title")),
        description=_text(document.get("description")),
        home_url=http_url(document.get("home_page_url"), url),
        icon_url=http_url(document.get("icon"), url) or http_url(document.get("favicon"), url),
        language=_text(document.get("language")),
        self_url=http_url(document.get("feed_url"), url),
        hub_url=next((u for u in (http_url(h, url) for h in hub_urls) if u), None),
    )


def _entry(
    item: dict[str, Any], *, feed_url: str, meta: FeedMeta, feed_author: str | None
) -> FeedEntry:
    link = http_url(item.get("url"), feed_url)
    # Relative URLs inside an item are relative to the item's page, as on the page itself.
    base = link or feed_url
    content_html = _content(item, base)
    summary_html = text_to_html(item["summary"]) if isinstance(item.get("summary"), str) else None
    if summary_html == content_html:
        summary_html = None
    title = _text(item.get("title"))
    published = iso_to_utc(item.get("date_published"))
    updated = iso_to_utc(item.get("date_modified"))
    raw_id = item.get("id")
    guid = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    images = unique_images(
        [
            *extract_images(content_html),
            *_single_image(item.get("image"), base),
            *_single_image(item.get("banner_image"), base),
            *_attachment_images(item.get("attachments"), base),
        ]
    )
    tags = item.get("tags")
    return FeedEntry(
        id=stable_entry_id(
            guid=guid,
            link=link,
            title=title,
            published=published or updated,
            content=content_html or summary_html,
        ),
        link=link,
        title=title,
        summary_html=summary_html,
        content_html=content_html,
        published=published or updated,
        updated=updated,
        author=_author(item) or feed_author,
        categories=unique_terms(t for t in tags if isinstance(t, str))
        if isinstance(tags, list)
        else (),
        images=images,
        language=_text(item.get("language")) or meta.language,
        comments_feed=None,
    )


def _content(item: dict[str, Any], base: str) -> str | None:
    content_html = item.get("content_html")
    if isinstance(content_html, str) and content_html.strip():
        cleaned = nh3.clean(content_html.strip(), link_rel=None)
        return resolve_urls(cleaned, base) or None
    content_text = item.get("content_text")
    if isinstance(content_text, str):
        return text_to_html(content_text)
    return None


def _author(holder: dict[str, Any]) -> str | None:
    """The first author's name: 1.1 ``authors`` array, else 1.0 ``author`` object."""
    authors = holder.get("authors")
    candidates = list(authors) if isinstance(authors, list) else []
    candidates.append(holder.get("author"))
    for candidate in candidates:
        if isinstance(candidate, dict):
            name = _text(candidate.get("name"))
            if name:
                return name
    return None


def _single_image(value: Any, base: str) -> Iterator[Image]:
    url = http_url(value, base)
    if url:
        yield Image(url=url)


def _attachment_images(attachments: Any, base: str) -> Iterator[Image]:
    if not isinstance(attachments, list):
        return
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        media_type = attachment.get("mime_type")
        url = http_url(attachment.get("url"), base)
        if url and isinstance(media_type, str) and media_type.lower().startswith("image/"):
            yield Image(url=url, alt=_text(attachment.get("title")) or "", media_type=media_type)


def _text(value: Any) -> str | None:
    return clean_text(value) if isinstance(value, str) else None
