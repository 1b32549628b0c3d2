"""Actor documents: a blog's fediverse account and the bridge's instance actor (pure).

A blog's actor is a ``Service``: its posts are published by a machine reading a feed, and
Mastodon (and Misskey, Pleroma, GoToSocial) mark ``Service`` accounts as bots ("Automated"),
which is the honest label for a bridged account; it still follows, boosts and mentions like
a ``Person``. (The WordPress plugin uses ``Person`` for authors and ``Group`` for its blog
actor; Bridgy Fed uses ``Person``. Neither is run by a bridge that cannot answer in person.)

Everything here is built from stored values; feed metadata is hostile input, so text is
escaped and only http(s) URLs become links or images.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from bridge.activitypub.articles import image_media_type, iso_time
from bridge.activitypub.jsonld import with_context
from bridge.activitypub.urls import Urls
from bridge.store.base import Blog

ACTOR_TYPE = "Service"
INSTANCE_ACTOR_TYPE = "Application"


def safe_http_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host, else ``None``."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def display_name(blog: Blog) -> str:
    """The configured display name, else the feed's title, else the handle."""
    for candidate in (blog.settings.display_name, blog.meta.title):
        if candidate and candidate.strip():
            return " ".join(candidate.split())
    return blog.handle


def link_label(url: str) -> str:
    """A URL as people read it: no scheme, no trailing slash."""
    parts = urlsplit(url)
    label = url[len(parts.scheme) + 3 :] if parts.scheme else url
    return label.rstrip("/") or url


def link_html(url: str, label: str | None = None) -> str:
    """An outgoing link as Mastodon writes profile links (``rel=me`` for verification)."""
    text = link_label(url) if label is None else label
    return (
        f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener me" '
        f'translate="no">{html.escape(text)}</a>'
    )


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML: blank lines part paragraphs, single newlines become
    ``<br>``."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n")]
    return "".join(
        "<p>" + "<br>".join(html.escape(line.strip()) for line in p.split("\n")) + "</p>"
        for p in paragraphs
        if p
    )


def summary_html(blog: Blog) -> str:
    """The account's bio: the blog's own description plus a line naming the feed it mirrors."""
    described = blog.settings.summary or blog.meta.description
    parts = [text_to_html(described)] if described and described.strip() else []
    feed = safe_http_url(blog.feed_url)
    home = safe_http_url(blog.meta.home_url)
    feed_link = link_html(feed, "its feed") if feed else "its feed"
    if home:
        parts.append(f"<p>Posts of {link_html(home)}, bridged automatically from {feed_link}.</p>")
    elif feed:
        parts.append(f"<p>Bridged automatically from the feed {link_html(feed)}.</p>")
    return "".join(parts)


def icon(url: str | None) -> dict[str, str] | None:
    """An ``Image`` object for an avatar URL, or ``None`` when it is no usable URL."""
    safe = safe_http_url(url)
    if safe is None:
        return None
    image = {"type": "Image", "url": safe}
    media_type = image_media_type(safe)
    if media_type is not None:
        image["mediaType"] = media_type
    return image


def profile_fields(blog: Blog) -> list[dict[str, str]]:
    """Mastodon profile metadata (``PropertyValue``): the blog and its feed."""
    fields: list[dict[str, str]] = []
    home = safe_http_url(blog.meta.home_url)
    if home is not None:
        fields.append({"type": "PropertyValue", "name": "Blog", "value": link_html(home)})
    feed = safe_http_url(blog.feed_url)
    if feed is not None:
        fields.append({"type": "PropertyValue", "name": "Feed", "value": link_html(feed)})
    return fields


def build_actor(blog: Blog, public_pem: str, urls: Urls) -> dict[str, Any]:
    """The blog's actor document, ``@context`` included."""
    handle = blog.handle
    actor_id = urls.actor(handle)
    document: dict[str, Any] = {
        "id": actor_id,
        "type": ACTOR_TYPE,
        "preferredUsername": handle,
        "name": display_name(blog),
        "summary": summary_html(blog),
        "url": urls.profile(handle),
        "inbox": urls.inbox(handle),
        "outbox": urls.outbox(handle),
        "followers": urls.followers(handle),
        "following": urls.following(handle),
        "featured": urls.featured(handle),
        "endpoints": {"sharedInbox": urls.shared_inbox()},
        "manuallyApprovesFollowers": blog.settings.manually_approves_followers,
        "discoverable": True,
        "indexable": True,
        "published": iso_time(blog.created_at),
        "publicKey": {"id": urls.key_id(handle), "owner": actor_id, "publicKeyPem": public_pem},
        "attachment": profile_fields(blog),
        "tag": [],
    }
    avatar = icon(blog.meta.icon_url)
    if avatar is not None:
        document["icon"] = avatar
    return with_context(document)


def build_instance_actor(domain: str, public_pem: str, urls: Urls) -> dict[str, Any]:
    """The bridge's own actor, which signs fetches made for the bridge as a whole."""
    actor_id = urls.instance_actor()
    return with_context(
        {
            "id": actor_id,
            "type": INSTANCE_ACTOR_TYPE,
            "preferredUsername": domain,
            "name": domain,
            "summary": text_to_html(
                f"The feedfed bridge at {domain}: blogs' feeds as fediverse accounts."
            ),
            "url": f"{urls.base}/",
            "inbox": urls.shared_inbox(),
            "outbox": urls.instance_outbox(),
            "endpoints": {"sharedInbox": urls.shared_inbox()},
            "manuallyApprovesFollowers": True,
            "discoverable": False,
            "indexable": False,
            "publicKey": {
                "id": urls.instance_key_id(),
                "owner": actor_id,
                "publicKeyPem": public_pem,
            },
        }
    )
