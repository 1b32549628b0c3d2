"""Store role of the dialog: the validators of each post's comment source, for conditional GET.

One record per (blog, post): the ``ETag`` and ``Last-Modified`` the blog's comment feed of that
post answered last, and the URL they belong to. The dialog sends them back as ``If-None-Match``
/ ``If-Modified-Since``; a 304 means the post's comments are as they were, so nothing is parsed
or reconciled. Validators of another URL are never sent (a post whose comment feed moved starts
afresh), and a record goes with its blog.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["DialogSource", "DialogSourceStore"]


@dataclass(frozen=True)
class DialogSource:
    """The validators one post's comment source answered last."""

    blog_id: int
    entry_id: str
    url: str
    etag: str | None
    last_modified: str | None
    checked_at: datetime


class DialogSourceStore(Protocol):
    """Validators of the blog's comment sources."""

    async def get_dialog_source(self, blog_id: int, entry_id: str) -> DialogSource | None:
        """The record of one post's comment source, None when it was never read."""
        ...

    async def put_dialog_source(
        self,
        blog_id: int,
        entry_id: str,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        now: datetime,
    ) -> DialogSource:
        """Remember what the comment source at ``url`` answered (insert or replace)."""
        ...
