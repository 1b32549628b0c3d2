"""Recording outgoing activities: every new, edited or deleted entry becomes one.

The payload is built once, here, and frozen in the store: a delivery retried days later carries
the same id and body. An activity recorded with ``deliver=True`` gets its fan-out job in the
same transaction: it is delivered exactly when it is recorded, even if the process dies right
after (see :mod:`bridge.federation.fanout`).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import uuid4

from bridge.activitypub.activities import create_activity, delete_activity, update_activity
from bridge.activitypub.articles import build_object, build_tombstone
from bridge.activitypub.urls import Urls
from bridge.context import BridgeContext
from bridge.federation.fanout import fanout_job
from bridge.store.base import ActivityType, Blog, NewActivity, OutboxActivity, StoredEntry

ChangeKind = Literal["create", "update", "delete"]

_TYPES: dict[ChangeKind, ActivityType] = {
    "create": "Create",
    "update": "Update",
    "delete": "Delete",
}


async def record_change(
    ctx: BridgeContext,
    blog: Blog,
    stored: StoredEntry,
    kind: ChangeKind,
    *,
    deliver: bool,
) -> OutboxActivity:
    """Build the activity for one entry's change and store it in the blog's outbox.

    ``stored`` is the entry as saved (for a delete: already marked deleted, since the tombstone
    carries the store's deletion time). With ``deliver`` the fan-out job is enqueued too. Joins
    the caller's store transaction when there is one.
    """
    activity_id = ctx.urls.activity(blog.handle, uuid4().hex)
    payload = build_payload(blog, stored, kind, activity_id, ctx.urls)
    now = ctx.clock()
    async with ctx.store.transaction():
        recorded = await ctx.store.add_activity(
            NewActivity(
                blog_id=blog.id,
                activity_id=activity_id,
                type=_TYPES[kind],
                entry_id=stored.entry_id,
                payload=payload,
                deliver=deliver,
            ),
            now,
        )
        if deliver:
            await ctx.store.enqueue([fanout_job(blog.id, activity_id)], now)
    if deliver:
        ctx.jobs_ready.set()
    return recorded


def build_payload(
    blog: Blog, stored: StoredEntry, kind: ChangeKind, activity_id: str, urls: Urls
) -> dict[str, Any]:
    """The activity document for one change."""
    if kind == "delete":
        return delete_activity(blog, build_tombstone(blog, stored, urls), activity_id, urls)
    obj = build_object(blog, stored, urls)
    if kind == "create":
        return create_activity(blog, obj, activity_id, urls)
    return update_activity(blog, obj, activity_id, urls)
