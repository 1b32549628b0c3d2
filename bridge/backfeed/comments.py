"""Replies from the fediverse as comments: reading ActivityStreams objects, rendering them.

Pure translation, no I/O. :func:`parse_note` reads what the dispatcher takes out of a
``Create``/``Update`` (a ``Note``, ``Article``, ``Page`` or ``Question``) into an
:class:`IncomingNote`, tolerating the shapes real servers send: a value as a string, an
object or a list of either (``to``, ``cc``, ``tag``, ``attachment``, ``url``, ``inReplyTo``,
``attributedTo``), ``contentMap`` instead of ``content``, Misskey's ``_misskey_content`` and
``source``, quote posts under four names, polls. The content is kept as received;
:func:`comment_html` sanitises it on the way out, so a stricter sanitiser reaches old comments.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from bridge.activitypub.jsonld import PUBLIC
from bridge.activitypub.values import first_url, ids, is_url, items, strings, urls_of
from bridge.backfeed.sanitize import LINK_REL, html_to_text, plain_line, plain_name, sanitize_html
from bridge.errors import ActivityIgnored
from bridge.ingest.markup import text_to_html
from bridge.ingest.normalize import iso_to_utc

NOTE_TYPES: Final = frozenset({"Note", "Article", "Page", "Question"})
"""Object types that become comments (Mastodon converts Article and Page alike)."""

MAX_ATTACHMENTS: Final = 16
MAX_TAGS: Final = 200
MAX_ADDRESSES: Final = 2000
MAX_POLL_OPTIONS: Final = 50
SUMMARY_LIMIT: Final = 500
ALT_LIMIT: Final = 1500

AttachmentKind = Literal["image", "video", "audio", "file", "link"]
TagKind = Literal["Mention", "Hashtag", "Emoji"]

# Mastodon and others also write the public collection as a compact IRI.
_PUBLIC_NAMES: Final = frozenset({PUBLIC, "as:Public", "Public"})
_QUOTE_KEYS: Final = ("quote", "quoteUrl", "quoteUri", "_misskey_quote")
_LANGUAGE: Final = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
_ANCHOR: Final = re.compile(r"<a\s([^>]*)>")
_ATTRIBUTE: Final = re.compile(r'([a-z][a-z0-9-]*)="([^"]*)"')
_MEDIA_KINDS: Final[dict[str, AttachmentKind]] = {
    "image": "image",
    "video": "video",
    "audio": "audio",
}


@dataclass(frozen=True)
class Author:
    """Who wrote a comment, as readers see it; every field is safe plain text or a URL."""

    actor_id: str
    name: str
    handle: str
    profile_url: str
    avatar_url: str | None = None
    published: datetime | None = None
    """When the account was created (the actor's ``published``), for its age."""


@dataclass(frozen=True)
class Attachment:
    """A file or link attached to a note; shown as a link, never inline."""

    url: str
    kind: AttachmentKind
    media_type: str | None = None
    description: str | None = None
    """Alt text, plain and capped."""


@dataclass(frozen=True)
class Tag:
    """A ``Mention`` (href: actor id), ``Hashtag`` (href: tag page) or custom ``Emoji``
    (href: its image)."""

    kind: TagKind
    name: str
    href: str | None


@dataclass(frozen=True)
class PollOption:
    """One answer of a ``Question`` and its vote count when the server tells it."""

    name: str
    votes: int | None


@dataclass(frozen=True)
class IncomingNote:
    """The parts of a remote note the bridge uses. ``content_html`` is as received."""

    object_id: str
    type: str
    attributed_to: str | None
    url: str | None
    in_reply_to: str | None
    content_html: str
    name: str | None = None
    """The title of an ``Article`` or ``Page`` (plain text)."""
    summary: str | None = None
    """The content warning (plain text)."""
    sensitive: bool = False
    published: datetime | None = None
    updated: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    tags: tuple[Tag, ...] = ()
    context: str | None = None
    replies: str | None = None
    language: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    quote_url: str | None = None
    poll_options: tuple[PollOption, ...] = ()


def parse_note(obj: Mapping[str, Any]) -> IncomingNote:
    """Read a remote ``Note``/``Article``/``Page``/``Question`` object.

    Raises :class:`~bridge.errors.ActivityIgnored` for an object of another type or
    without an http(s) ``id``: there is nothing to make a comment of.
    """
    kind = next((t for t in strings(obj.get("type")) if t in NOTE_TYPES), None)
    if kind is None:
        raise ActivityIgnored(f"{str(obj.get('type'))[:60]} is no note type")
    object_id = obj.get("id")
    if not is_url(object_id):
        raise ActivityIgnored("the note has no http(s) id")
    sensitive = obj.get("sensitive") is True
    summary = _plain(obj.get("summary"), SUMMARY_LIMIT) or _plain(
        _mapped(obj, "summaryMap"), SUMMARY_LIMIT
    )
    if kind in ("Article", "Page") and not sensitive:
        summary = None  # there, `summary` is an excerpt of the content, not a warning
    content, language = _content(obj)
    return IncomingNote(
        object_id=object_id,
        type=kind,
        attributed_to=_actor_id(obj.get("attributedTo")),
        url=first_url(obj.get("url")),
        in_reply_to=next(ids(obj.get("inReplyTo")), None),
        content_html=content,
        name=_plain(obj.get("name"), SUMMARY_LIMIT) if kind in ("Article", "Page") else None,
        summary=summary,
        sensitive=sensitive,
        published=iso_to_utc(obj.get("published")),
        updated=iso_to_utc(obj.get("updated")),
        attachments=tuple(islice(_attachments(obj.get("attachment")), MAX_ATTACHMENTS)),
        tags=tuple(islice(_tags(obj.get("tag")), MAX_TAGS)),
        context=next(ids(obj.get("context")), None),
        replies=next(ids(obj.get("replies")), None),
        language=language,
        to=_addresses(obj.get("to")),
        cc=_addresses(obj.get("cc")),
        quote_url=next((u for key in _QUOTE_KEYS for u in ids(obj.get(key))), None),
        poll_options=tuple(islice(_poll(obj), MAX_POLL_OPTIONS)) if kind == "Question" else (),
    )


def comment_html(note: IncomingNote) -> str:
    """The comment as safe HTML: content warning, title, content, poll, quote, attachments.

    The content warning leads as ``<p><strong>CW: …</strong></p>`` (the text is not hidden:
    feeds and blogs cannot fold it away, and dropping it would lose the author's words).
    Attachments and a quoted post follow as links, never as inline media.
    """
    base = note.url or note.object_id
    parts: list[str] = []
    if note.summary:
        parts.append(f"<p><strong>CW: {html.escape(note.summary)}</strong></p>")
    if note.name:
        parts.append(f"<p><strong>{html.escape(note.name)}</strong></p>")
    content = sanitize_html(note.content_html, base_url=base)
    parts.append(content)
    if note.poll_options:
        parts.append("<ul>")
        for option in note.poll_options:
            votes = "" if option.votes is None else f" ({option.votes})"
            parts.append(f"<li>{html.escape(option.name)}{votes}</li>")
        parts.append("</ul>")
    if note.quote_url and note.quote_url not in {a.get("href") for a in _anchors(content)}:
        parts.append(f"<p>RE: {_link(note.quote_url, note.quote_url)}</p>")
    for attachment in note.attachments:
        label = "sensitive " + attachment.kind if note.sensitive else attachment.kind
        if attachment.description:
            label = f"{label}: {attachment.description}"
        parts.append(f"<p>{_link(attachment.url, label)}</p>")
    return "".join(parts)


def note_text(note: IncomingNote) -> str:
    """The note's words on one line (content warning, title, content, poll answers), for
    spam scoring and duplicate detection."""
    words = [note.summary or "", note.name or "", html_to_text(note.content_html)]
    words.extend(option.name for option in note.poll_options)
    return " ".join(w for w in words if w)


def is_public(note: IncomingNote) -> bool:
    """Whether the note is addressed to everyone (public or unlisted); followers-only and
    direct notes are not published."""
    return PUBLIC in note.to or PUBLIC in note.cc


def mentions_of(note: IncomingNote, actor_ids: Collection[str]) -> bool:
    """Whether the note's ``Mention`` tags name one of ``actor_ids``."""
    return any(tag.kind == "Mention" and tag.href in actor_ids for tag in note.tags)


def linked_urls(note: IncomingNote) -> list[str]:
    """The http(s) URLs the note links to, in order, each once: links in its content (not
    mention and hashtag links), its quoted post and its ``Link`` attachments."""
    tagged = {tag.href for tag in note.tags if tag.kind != "Emoji"}
    found: dict[str, None] = {}
    content = sanitize_html(note.content_html, base_url=note.url or note.object_id)
    for anchor in _anchors(content):
        classes = set(anchor.get("class", "").split())
        href = anchor.get("href")
        if href and href not in tagged and not classes & {"mention", "hashtag"}:
            found.setdefault(href)
    if note.quote_url:
        found.setdefault(note.quote_url)
    for attachment in note.attachments:
        if attachment.kind == "link":
            found.setdefault(attachment.url)
    return list(found)


def author_from_actor(doc: Mapping[str, Any]) -> Author:
    """The author of comments from a remote actor document.

    The handle is ``@preferredUsername@host`` with the host of the actor's id (IDNA-encoded
    as received, so look-alike letters cannot pose as another server); the name is the
    display name as plain text, the username when there is none. Raises
    :class:`~bridge.errors.ActivityIgnored` when the document has no http(s) ``id``.
    """
    actor_id = doc.get("id")
    if not is_url(actor_id):
        raise ActivityIgnored("the actor has no http(s) id")
    parts = urlsplit(actor_id)
    username = _username(doc.get("preferredUsername")) or _username(
        parts.path.rstrip("/").rsplit("/", 1)[-1]
    )
    host = (parts.hostname or "").lower()
    return Author(
        actor_id=actor_id,
        name=plain_name(doc.get("name") if isinstance(doc.get("name"), str) else None, username),
        handle=f"@{username or '?'}@{host}",
        profile_url=first_url(doc.get("url")) or actor_id,
        avatar_url=first_url(doc.get("icon")),
        published=iso_to_utc(doc.get("published")),
    )


def _content(obj: Mapping[str, Any]) -> tuple[str, str | None]:
    """The content HTML and its language, from the best source the object offers."""
    content_map = obj.get("contentMap")
    keys = content_map if isinstance(content_map, Mapping) else ()
    language = next((k for k in keys if isinstance(k, str) and _LANGUAGE.match(k)), None)
    content = obj.get("content")
    if isinstance(content, str) and content.strip():
        return content, language
    mapped = _mapped(obj, "contentMap")
    if mapped:
        return mapped, language
    source = obj.get("source")
    for text in (
        obj.get("_misskey_content"),
        source.get("content") if isinstance(source, Mapping) else None,
    ):
        if isinstance(text, str) and text.strip():
            # Misskey's MFM and other sources are plain text to us: escaped, never markup.
            return text_to_html(text) or "", language
    return "", language


def _mapped(obj: Mapping[str, Any], key: str) -> str | None:
    values = obj.get(key)
    if not isinstance(values, Mapping):
        return None
    return next((v for v in values.values() if isinstance(v, str) and v.strip()), None)


def _attachments(value: Any) -> Iterator[Attachment]:
    for item in items(value):
        if isinstance(item, str):
            if is_url(item):
                yield Attachment(url=item, kind="link")
            continue
        if not isinstance(item, Mapping):
            continue
        types = list(strings(item.get("type")))
        url = next(urls_of(item), None)
        if url is None or "PropertyValue" in types:
            continue
        media_type = item.get("mediaType") if isinstance(item.get("mediaType"), str) else None
        yield Attachment(
            url=url,
            kind=_attachment_kind(types, media_type),
            media_type=media_type[:200] if media_type else None,
            description=_plain(item.get("name"), ALT_LIMIT)
            or _plain(item.get("summary"), ALT_LIMIT),
        )


def _attachment_kind(types: list[str], media_type: str | None) -> AttachmentKind:
    """By media type first (Mastodon calls every file a ``Document``), then by type."""
    for kind in [(media_type or "").split("/", 1)[0].lower(), *(t.lower() for t in types)]:
        if kind in _MEDIA_KINDS:
            return _MEDIA_KINDS[kind]
    html_link = "Link" in types and (media_type or "text/html").startswith("text/html")
    return "link" if html_link else "file"


def _tags(value: Any) -> Iterator[Tag]:
    for item in items(value):
        if not isinstance(item, Mapping):
            continue
        kinds = set(strings(item.get("type")))
        name = _plain(item.get("name"), 200)
        if "Mention" in kinds:
            href = next(ids(item.get("href")), None)
            if href:
                yield Tag("Mention", name or href, href)
        elif "Hashtag" in kinds and name:
            yield Tag("Hashtag", name, next(ids(item.get("href")), None))
        elif "Emoji" in kinds and name:
            yield Tag("Emoji", name, first_url(item.get("icon")))


def _poll(obj: Mapping[str, Any]) -> Iterator[PollOption]:
    for key in ("oneOf", "anyOf"):
        for item in items(obj.get(key)):
            if not isinstance(item, Mapping):
                continue
            name = _plain(item.get("name"), 200)
            replies = item.get("replies")
            total = replies.get("totalItems") if isinstance(replies, Mapping) else None
            votes = total if isinstance(total, int) and not isinstance(total, bool) else None
            if name:
                yield PollOption(name, votes if votes is None or votes >= 0 else None)


def _link(url: str, text: str) -> str:
    return f'<a href="{html.escape(url)}" rel="{LINK_REL}">{html.escape(text)}</a>'


def _anchors(sanitized: str) -> Iterator[dict[str, str]]:
    """The attributes of each link in :func:`sanitize_html` output (canonical markup)."""
    for attributes in _ANCHOR.findall(sanitized):
        yield {name: html.unescape(value) for name, value in _ATTRIBUTE.findall(attributes)}


def _addresses(value: Any) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for item in islice(items(value), MAX_ADDRESSES):
        address = item.get("id") if isinstance(item, Mapping) else item
        if isinstance(address, str) and address in _PUBLIC_NAMES:
            found.setdefault(PUBLIC)
        elif is_url(address):
            found.setdefault(address)
    return tuple(found)


def _actor_id(value: Any) -> str | None:
    """The author's id; of a list (PeerTube names a person and a channel), the first actor
    object that says it is a person, else the first id."""
    elements = list(items(value))
    for item in elements:
        if isinstance(item, Mapping) and set(strings(item.get("type"))) & {"Person", "Service"}:
            return next(ids(item), None)
    return next((found for item in elements for found in ids(item)), None)


def _username(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return plain_line(value, 100).replace(" ", "").replace("@", "")


def _plain(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    return plain_line(html.unescape(value), limit) or None
