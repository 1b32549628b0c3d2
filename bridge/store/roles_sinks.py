"""Store role of the sinks: what each sink returned for each comment and linkback it was given.

One record per (blog, item kind, item id, sink name): the item id is the comment's object id
or the reaction's activity id. The record is what makes pushing idempotent: a publish whose
item is already on the blog does nothing, an update or withdrawal reaches the same remote
item (``remote_id``: a WordPress comment id, a webmention status URL; None for a pingback,
which the blog gives no id). ``live`` says whether the item is on the blog now; it changes
only when the sink succeeded, so a failed update of a published comment stays live.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

SinkItemKind = Literal["comment", "linkback"]
SinkItemState = Literal["published", "updated", "withdrawn", "failed"]

__all__ = ["SinkItem", "SinkItemKind", "SinkItemState", "SinkItemStore", "SinkItemUpdate"]


@dataclass(frozen=True)
class SinkItemUpdate:
    """The outcome of one push, to record.

    ``remote_id`` None keeps the one stored (a failed update does not forget the comment it
    was for); ``live`` None keeps the stored value (a failure changes nothing on the blog).
    """

    blog_id: int
    kind: SinkItemKind
    item_id: str
    sink: str
    state: SinkItemState
    remote_id: str | None = None
    live: bool | None = None
    error: str | None = None


@dataclass(frozen=True)
class SinkItem:
    """What one sink did with one comment or linkback."""

    blog_id: int
    kind: SinkItemKind
    item_id: str
    sink: str
    remote_id: str | None
    state: SinkItemState
    live: bool
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class SinkItemStore(Protocol):
    """Results of pushes to sinks."""

    async def get_sink_item(
        self, blog_id: int, kind: SinkItemKind, item_id: str, sink: str
    ) -> SinkItem | None:
        """The record of one item in one sink."""
        ...

    async def put_sink_item(self, update: SinkItemUpdate, now: datetime) -> SinkItem:
        """Record a push's outcome (insert, or update the record in place); return it.

        A new record keeps ``live`` False unless told, and ``error`` None clears the last
        error."""
        ...

    async def list_sink_items(
        self,
        blog_id: int | None = None,
        *,
        states: Iterable[SinkItemState] = ("failed",),
        limit: int = 100,
    ) -> list[SinkItem]:
        """Records in the given states (of one blog, or of all), most recently updated first."""
        ...

    async def count_sink_items_since(
        self, blog_id: int, kind: SinkItemKind, since: datetime
    ) -> int:
        """How many records of a blog's items of ``kind`` were written at or after ``since``
        (pushes to the blog in a window: the linkback rate limit)."""
        ...
