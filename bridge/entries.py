"""Typed data read from a feed: the blog's metadata and its entries.

These are plain values, free of I/O: parsing produces them, the store keeps them (as JSON),
and the translation to ActivityStreams consumes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Image:
    """An image found in an entry (inline ``<img>`` or an image enclosure)."""

    url: str
    alt: str = ""
    media_type: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class FeedEntry:
    """One post as read from the feed, links already made absolute.

    ``id`` is the stable id: the guid when it is an http(s) URL, else the link, else the guid.
    """

    id: str
    link: str | None = None
    title: str | None = None
    summary_html: str | None = None
    content_html: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    language: str | None = None
    comments_feed: str | None = None

    def content_hash(self) -> str:
        """Hash of everything a reader sees; a change in it is an edit (timestamps excluded)."""
        seen = {
            "link": self.link,
            "title": self.title,
            "summary": self.summary_html,
            "content": self.content_html,
            "categories": list(self.categories),
            "images": [asdict(image) for image in self.images],
        }
        blob = json.dumps(seen, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601) that :meth:`from_json` reads back."""
        data = asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        data["updated"] = self.updated.isoformat() if self.updated else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeedEntry:
        """Rebuild an entry from :meth:`to_json` output."""
        return cls(
            id=data["id"],
            link=data.get("link"),
            title=data.get("title"),
            summary_html=data.get("summary_html"),
            content_html=data.get("content_html"),
            published=_dt(data.get("published")),
            updated=_dt(data.get("updated")),
            author=data.get("author"),
            categories=tuple(data.get("categories") or ()),
            images=tuple(Image(**image) for image in data.get("images") or ()),
            language=data.get("language"),
            comments_feed=data.get("comments_feed"),
        )


@dataclass(frozen=True)
class FeedMeta:
    """What the feed says about the blog as a whole."""

    title: str | None = None
    description: str | None = None
    home_url: str | None = None
    icon_url: str | None = None
    language: str | None = None
    self_url: str | None = None
    hub_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeedMeta:
        """Rebuild from :meth:`to_json` output."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed document."""

    meta: FeedMeta
    entries: tuple[FeedEntry, ...] = field(default_factory=tuple)
    format: str = ""


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
