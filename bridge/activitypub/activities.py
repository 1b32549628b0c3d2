"""The outgoing activities of a blog: ``Create``, ``Update`` and ``Delete`` of its posts.

Each is a complete top-level document (with ``@context``): its payload is recorded once and
delivered as is, so a retried delivery carries the same id and body. The object is embedded
whole, so receivers need not fetch it. Addressing is repeated on the activity: Mastodon reads
the object's ``to``/``cc`` and falls back to the activity's, other servers only look there.
"""

from __future__ import annotations

from typing import Any

from bridge.activitypub.jsonld import PUBLIC, context, without_context
from bridge.activitypub.urls import Urls
from bridge.store.base import Blog


def create_activity(
    blog: Blog, obj: dict[str, Any], activity_id: str, urls: Urls
) -> dict[str, Any]:
    """The ``Create`` of a new post; its ``published`` is the post's."""
    return _activity("Create", blog, obj, activity_id, urls, obj["published"], obj["to"], obj["cc"])


def update_activity(
    blog: Blog, obj: dict[str, Any], activity_id: str, urls: Urls
) -> dict[str, Any]:
    """The ``Update`` of an edited post; its ``published`` is the post's ``updated`` time."""
    when = obj.get("updated", obj["published"])
    return _activity("Update", blog, obj, activity_id, urls, when, obj["to"], obj["cc"])


def delete_activity(
    blog: Blog, tombstone: dict[str, Any], activity_id: str, urls: Urls
) -> dict[str, Any]:
    """The ``Delete`` of a post, carrying its ``Tombstone``, to the public and followers."""
    return _activity(
        "Delete",
        blog,
        tombstone,
        activity_id,
        urls,
        tombstone["deleted"],
        [PUBLIC],
        [urls.followers(blog.handle)],
    )


def _activity(
    kind: str,
    blog: Blog,
    obj: dict[str, Any],
    activity_id: str,
    urls: Urls,
    published: str,
    to: list[str],
    cc: list[str],
) -> dict[str, Any]:
    return {
        "@context": context(),
        "id": activity_id,
        "type": kind,
        "actor": urls.actor(blog.handle),
        "published": published,
        "to": list(to),
        "cc": list(cc),
        "object": without_context(obj),
    }
