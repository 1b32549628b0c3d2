"""SQLite backend (the embedded default): one module per store role, composed here."""

from __future__ import annotations

from bridge.store.sqlite.blogs import BlogRows
from bridge.store.sqlite.comments import CommentRows
from bridge.store.sqlite.dialog import DialogSourceRows
from bridge.store.sqlite.entries import EntryRows
from bridge.store.sqlite.followers import FollowerRows
from bridge.store.sqlite.jobs import JobRows
from bridge.store.sqlite.reactions import ReactionRows
from bridge.store.sqlite.remote import RemoteRows
from bridge.store.sqlite.sinks import SinkItemRows


class SQLiteStore(
    BlogRows,
    EntryRows,
    FollowerRows,
    JobRows,
    RemoteRows,
    CommentRows,
    ReactionRows,
    SinkItemRows,
    DialogSourceRows,
):
    """Every store role on one SQLite file."""


__all__ = ["SQLiteStore"]
