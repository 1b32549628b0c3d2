"""PostgreSQL backend (many processes, one database): one module per store role, composed here."""

from __future__ import annotations

from bridge.store.postgres.blogs import BlogRows
from bridge.store.postgres.comments import CommentRows
from bridge.store.postgres.dialog import DialogSourceRows
from bridge.store.postgres.entries import EntryRows
from bridge.store.postgres.followers import FollowerRows
from bridge.store.postgres.jobs import JobRows
from bridge.store.postgres.notices import JobNotices
from bridge.store.postgres.reactions import ReactionRows
from bridge.store.postgres.remote import RemoteRows
from bridge.store.postgres.sinks import SinkItemRows


class PostgresStore(
    BlogRows,
    EntryRows,
    FollowerRows,
    JobRows,
    JobNotices,
    RemoteRows,
    CommentRows,
    ReactionRows,
    SinkItemRows,
    DialogSourceRows,
):
    """Every store role on one PostgreSQL database (the schema named by ``search_path``)."""


__all__ = ["PostgresStore"]
