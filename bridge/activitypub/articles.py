"""Entries as ActivityStreams objects: an ``Article`` or a ``Note`` per blog, and their tombstones.

Pure translation: a stored entry in, a JSON-ready dict out (without ``@context``: see
:mod:`bridge.activitypub.jsonld`). Built on request, so a template change reaches old posts.

How the two types look in Mastodon, which most followers use, decided the shape:

- **Article** (FEP-b2b8, long-form text). Mastodon does not show an Article's ``content``;
  it shows ``name``, ``summary`` and a link to ``url``, each as *plain text* (it escapes them),
  plus the ``attachment`` images and ``tag`` hashtags. So ``summary`` is the plain-text excerpt
  here and not a content warning: Mastodon 4.x reads ``summary`` as a warning only on the
  types it shows natively (Note, Question). ``content`` keeps the full post HTML for
  servers that show articles (Friendica, Hubzilla, WordPress, Ghost...), and ``preview`` is a
  Note for microblog servers that fall back to it (FEP-b2b8 "preview").
- **Note** (the blog's ``note_template``): title, excerpt and link as the post itself; the
  hashtags are appended as links, as Mastodon's own posts carry them. Mastodon 4.x applies
  ``Update`` only to the types it shows natively, so only Note blogs see edits arrive there.

An entry without a title is always a Note: an Article with no name shows up as a bare link
and excerpt, and post-type discovery (IndieWeb, WordPress's ActivityPub plugin) calls an
untitled post a note.
"""

from __future__ import annotations

import html
import re
import string
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from bridge.activitypub.excerpts import decode_character_references, excerpt
from bridge.activitypub.hashtags import hashtag_names
from bridge.activitypub.jsonld import PUBLIC
from bridge.activitypub.urls import Urls
from bridge.config import ObjectType
from bridge.entries import FeedEntry, FeedMeta, Image
from bridge.errors import ConfigError
from bridge.store.base import Blog, BlogSettings, StoredEntry

MAX_ATTACHMENTS: Final = 4
"""Images attached to a post: Mastodon shows four; the rest stay in the Article's content."""

TEMPLATE_FIELDS: Final = frozenset({"title", "summary", "url"})

_IMAGE_TYPES: Final = {
    "avif": "image/avif",
    "bmp": "image/bmp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "jfif": "image/jpeg",
    "jpe": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "svg": "image/svg+xml",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
}
_LANGUAGE_TAG: Final = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
# A template's own wrappers around a field that came out empty (an untitled entry leaves
# "<p><strong></strong></p>"); removed so the post does not open with a blank paragraph.
_EMPTY_ELEMENT: Final = re.compile(r"<(p|strong|b|em|i|span|h[1-6])(?:\s[^<>]*)?>\s*</\1>")


def object_type(settings: BlogSettings, entry: FeedEntry) -> ObjectType:
    """The type an entry is published as: the blog's choice, but ``Note`` when untitled."""
    return settings.object_type if _title(entry) else "Note"


def build_object(blog: Blog, stored: StoredEntry, urls: Urls) -> dict[str, Any]:
    """The ``Article`` or ``Note`` of a live entry (no ``@context``)."""
    entry = stored.entry
    kind = object_type(blog.settings, entry)
    actor = urls.actor(blog.handle)
    object_id = urls.article(blog.handle, stored.slug)
    link = entry.link or object_id
    title = _title(entry)
    text = excerpt(entry.summary_html or entry.content_html or "")
    tags = hashtag_names(entry.categories)
    language = content_language(entry, blog.meta)

    obj: dict[str, Any] = {"id": object_id, "type": kind, "attributedTo": actor}
    if kind == "Article":
        if title:
            obj["name"] = title
            if language:
                obj["nameMap"] = {language: title}
        if text:
            obj["summary"] = text
        content = decode_character_references(entry.content_html or entry.summary_html or "")
    else:
        note = note_content(blog.settings.note_template, title, text, link)
        content = note + _hashtag_links(tags, urls)
    if content:
        obj["content"] = content
        if language:
            obj["contentMap"] = {language: content}
    obj["url"] = link
    obj["published"] = iso_time(stored.sort_time)
    updated = updated_time(stored)
    if updated is not None:
        obj["updated"] = iso_time(updated)
    obj["to"] = [PUBLIC]
    obj["cc"] = [urls.followers(blog.handle)]
    obj["sensitive"] = False
    attachments = [_attachment(image) for image in _distinct(entry.images)[:MAX_ATTACHMENTS]]
    if attachments:
        obj["attachment"] = attachments
    if tags:
        obj["tag"] = [
            {"type": "Hashtag", "href": urls.tag(name), "name": f"#{name}"} for name in tags
        ]
    # What the fediverse answered: the collections count it (the object stays pure and
    # cacheable; Mastodon and Misskey fetch these for the counts they show).
    obj["replies"] = urls.replies(blog.handle, stored.slug)
    obj["likes"] = urls.likes(blog.handle, stored.slug)
    obj["shares"] = urls.shares(blog.handle, stored.slug)
    if kind == "Article":
        obj["preview"] = _preview(blog, actor, title, text, link, language)
    return obj


def build_tombstone(blog: Blog, stored: StoredEntry, urls: Urls) -> dict[str, Any]:
    """The ``Tombstone`` served at (and sent in the Delete of) a deleted entry's id.

    Raises ``ValueError`` for an entry the store has not marked deleted: the tombstone's
    ``deleted`` time is the store's, so mark the entry first, then build.
    """
    if stored.deleted_at is None:
        raise ValueError(f"entry {stored.entry_id!r} is not marked deleted")
    return {
        "id": urls.article(blog.handle, stored.slug),
        "type": "Tombstone",
        "formerType": object_type(blog.settings, stored.entry),
        "deleted": iso_time(stored.deleted_at),
    }


def note_content(template: str, title: str | None, text: str, url: str) -> str:
    """Fill a note template (already HTML) with the escaped title, excerpt and link.

    ``{summary}`` becomes the excerpt as a paragraph (nothing when there is none). Raises
    :class:`~bridge.errors.ConfigError` for a template with other fields than
    ``{title}``, ``{summary}`` and ``{url}`` (or with conversions and format specs), which
    would otherwise fail on every post or leak attributes of the values.
    """
    _check_template(template)
    filled = template.format(
        title=html.escape(title or ""),
        summary=f"<p>{html.escape(text)}</p>" if text else "",
        url=html.escape(url),
    )
    while True:
        emptied = _EMPTY_ELEMENT.sub("", filled)
        if emptied == filled:
            return filled.strip()
        filled = emptied


def updated_time(stored: StoredEntry) -> datetime | None:
    """When the post was last edited, or ``None`` for a post unchanged since publication.

    Once the bridge has recorded an edit (``changed_at`` after ``first_seen_at``), this is
    the later of the recorded time and the feed's own ``updated``: Mastodon applies an
    Update only when ``updated`` is later than the one it has, and the recording time grows
    with every edit even when the feed (RSS 2.0 has no such date) says nothing. Before any
    edit, it is the feed's ``updated`` when that is later than the publication: true, though
    Mastodon then marks a post as edited from the start.
    """
    published = _second(stored.sort_time)
    feed_updated = _second(stored.entry.updated) if stored.entry.updated else None
    if _second(stored.changed_at) > _second(stored.first_seen_at):
        recorded = _second(stored.changed_at)
        return max(recorded, feed_updated) if feed_updated else recorded
    if feed_updated is not None and feed_updated > published:
        return feed_updated
    return None


def iso_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC (a naive datetime is taken as UTC)."""
    return _second(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_language(entry: FeedEntry, meta: FeedMeta) -> str | None:
    """The language key of the content maps: the entry's language, else the feed's.

    Reduced to the primary subtag ("de-DE" → "de"), because servers compare it with the
    languages readers choose, which are ISO 639 codes: Mastodon hides a post tagged "de-DE"
    from someone who reads only "de". Chinese keeps its script or region, which decides
    between simplified and traditional characters. An unusable value gives ``None``.
    """
    for value in (entry.language, meta.language):
        tag = (value or "").strip().replace("_", "-")
        if not _LANGUAGE_TAG.match(tag):
            continue
        primary, *subtags = tag.split("-")
        primary = primary.lower()
        if primary != "zh" or not subtags:
            return primary
        subtag = subtags[0]
        return f"zh-{subtag.title() if len(subtag) == 4 else subtag.upper()}"
    return None


def image_media_type(url: str) -> str | None:
    """The image type its URL's extension names, if it names a known one."""
    path = urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    return _IMAGE_TYPES.get(name.rsplit(".", 1)[-1].lower())


def _title(entry: FeedEntry) -> str | None:
    return " ".join((entry.title or "").split()) or None


def _preview(
    blog: Blog, actor: str, title: str | None, text: str, link: str, language: str | None
) -> dict[str, Any]:
    # What a microblog shows of the article: the blog's own note rendering, without the
    # hashtag links (FEP-b2b8 wants no category navigation in a preview).
    content = note_content(blog.settings.note_template, title, text, link)
    preview: dict[str, Any] = {"type": "Note", "attributedTo": actor, "content": content}
    if language:
        preview["contentMap"] = {language: content}
    return preview


def _hashtag_links(names: list[str], urls: Urls) -> str:
    if not names:
        return ""
    links = " ".join(
        f'<a href="{html.escape(urls.tag(name))}" class="mention hashtag" rel="tag">'
        f"#<span>{html.escape(name)}</span></a>"
        for name in names
    )
    return f"<p>{links}</p>"


def _attachment(image: Image) -> dict[str, Any]:
    attachment: dict[str, Any] = {"type": "Image"}
    media_type = image.media_type or image_media_type(image.url)
    if media_type:
        # Unknown types are left out, not guessed: Mastodon sniffs a file it is not told about.
        attachment["mediaType"] = media_type
    attachment["url"] = image.url
    alt = " ".join(image.alt.split())
    if alt:
        attachment["name"] = alt
    if image.width:
        attachment["width"] = image.width
    if image.height:
        attachment["height"] = image.height
    return attachment


def _distinct(images: tuple[Image, ...]) -> list[Image]:
    # Feeds often name one picture twice (inline and as enclosure); attach it once.
    seen: set[str] = set()
    distinct: list[Image] = []
    for image in images:
        if image.url not in seen:
            seen.add(image.url)
            distinct.append(image)
    return distinct


def _check_template(template: str) -> None:
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError("note_template", f"not a valid template: {exc}") from exc
    for _literal, field, spec, conversion in fields:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            raise ConfigError(
                "note_template",
                f"unknown field {{{field}}}: use {{title}}, {{summary}} and {{url}} "
                "(write {{ and }} for literal braces)",
            )
        if spec or conversion:
            raise ConfigError("note_template", f"{{{field}}} takes no conversion or format spec")


def _second(moment: datetime) -> datetime:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(microsecond=0)
