"""Rules every feed format shares once its entries are read: identity, de-duplication, dates.

Pure functions; both the XML path (feedparser) and the JSON Feed path end here, so an entry
gets the same id and the same cleaned fields whatever format its blog publishes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from bridge.entries import FeedEntry, Image
from bridge.ingest.markup import clean_text, is_http_url

HASH_ID_PREFIX = "urn:sha256:"


def stable_entry_id(
    *,
    guid: str | None,
    link: str | None,
    title: str | None,
    published: datetime | None,
    content: str | None,
) -> str:
    """The id an entry keeps across polls.

    The guid when it is an http(s) URL (WordPress' ``?p=1234`` guids are, even with
    ``isPermaLink="false"``), else the link, else the guid as given, else, as a last resort for
    feeds that give neither, a hash of title, publication date and content.
    """
    guid = guid.strip() if guid and guid.strip() else None
    link = link.strip() if link and link.strip() else None
    if guid and is_http_url(guid):
        return guid
    if link:
        return link
    if guid:
        return guid
    blob = "\x1f".join(
        [title or "", published.isoformat() if published else "", content or ""]
    ).encode("utf-8")
    return HASH_ID_PREFIX + hashlib.sha256(blob).hexdigest()


def unique_entries(entries: Iterable[FeedEntry]) -> tuple[FeedEntry, ...]:
    """Entries in feed order, keeping only the first of several that share an id.

    Feeds that repeat an item (a sticky post, a broken plugin) must not produce two articles;
    the first occurrence is the one the publisher put on top.
    """
    seen: set[str] = set()
    kept: list[FeedEntry] = []
    for entry in entries:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        kept.append(entry)
    return tuple(kept)


def unique_images(images: Iterable[Image]) -> tuple[Image, ...]:
    """Images de-duplicated by URL; the first occurrence (usually the inline one, with alt) wins."""
    seen: set[str] = set()
    kept: list[Image] = []
    for image in images:
        if image.url in seen:
            continue
        seen.add(image.url)
        kept.append(image)
    return tuple(kept)


def unique_terms(terms: Iterable[str | None]) -> tuple[str, ...]:
    """Category terms cleaned and de-duplicated case-insensitively, first spelling kept.

    Entities are decoded: WordPress escapes ``&`` in category names even inside CDATA.

    "Social Media" and "social media" become one hashtag on the fediverse side, so they are
    one category here.
    """
    seen: set[str] = set()
    kept: list[str] = []
    for term in terms:
        cleaned = clean_text(term) or ""
        key = cleaned.casefold()
        if not cleaned or key in seen:
            continue
        seen.add(key)
        kept.append(cleaned)
    return tuple(kept)


def struct_to_utc(value: time.struct_time | None) -> datetime | None:
    """A feedparser ``*_parsed`` value (always UTC) as an aware datetime, or ``None``.

    feedparser fills these from any date it could read, including impossible ones; a date
    Python cannot represent is treated like a missing date.
    """
    if value is None:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def iso_to_utc(value: object) -> datetime | None:
    """An RFC 3339 string (JSON Feed dates) as an aware UTC datetime, or ``None``.

    A date without an offset is taken as UTC, as feedparser does for RSS and Atom.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
