"""SQLite queries for comments."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from bridge.errors import StoreError
from bridge.store.records import BlockSeverity
from bridge.store.roles_backfeed import (
    AuthorStanding,
    Comment,
    CommentState,
    NewComment,
    Person,
    comment_as_added,
    item_slug,
)
from bridge.store.roles_federation import rule_domains
from bridge.store.sqlite.connection import SQLiteBase, dt, dt_required, ts

_COMMENT_COLUMNS = (
    "slug, blog_id, entry_id, object_id, parent_id, author_id, author_name, author_handle, "
    "author_url, author_avatar, content_html, summary, url, language, published, state, score, "
    "reasons, origin, source, received_at, text_hash"
)

# By the author's index, not the blog's: the planner otherwise takes (blog_id, state) and walks
# every published comment of the blog to find none by a first-time author (~0.5 ms per 3,000
# comments, on the loop). The unary + keeps blog_id and state out of the index choice.
# Parameters: ?1 the author, ?2 the blog.
_PUBLISHED_ON_BLOG = "author_id = ?1 AND +blog_id = ?2 AND +state = 'published'"


class CommentRows(SQLiteBase):
    """SQLite queries for comments."""

    # -- comments -----------------------------------------------------------------------

    async def add_comment(self, comment: NewComment, now: datetime) -> Comment | None:
        """Store a comment; None when its object id is known already."""
        c = comment
        slug = item_slug(c.object_id)
        # One statement commits on its own (autocommit): no BEGIN/COMMIT round trips. Only
        # the id comes back: the rest is what was written (no JSON parsed back).
        rows = await self._rows(
            f"INSERT INTO comments ({_COMMENT_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (object_id) DO NOTHING RETURNING id",
            (
                slug,
                c.blog_id,
                c.entry_id,
                c.object_id,
                c.parent_id,
                c.author.actor_id,
                c.author.name,
                c.author.handle,
                c.author.profile_url,
                c.author.avatar_url,
                c.content_html,
                c.summary,
                c.url,
                c.language,
                ts(c.published),
                c.state,
                c.score,
                json.dumps(list(c.reasons), ensure_ascii=False),
                c.origin,
                _json(c.source),
                ts(now),
                c.text_hash,
            ),
        )
        return comment_as_added(c, rows[0]["id"], slug, now) if rows else None

    async def get_comment(self, object_id: str) -> Comment | None:
        """The comment with this object id (any state)."""
        row = await self._row("SELECT * FROM comments WHERE object_id = ?", (object_id,))
        return _comment(row) if row else None

    async def comment_exists(self, object_id: str) -> bool:
        """Whether a comment with this object id is stored (any state, deleted ones too)."""
        # Answered from the unique index alone: no row to read or convert.
        row = await self._row("SELECT 1 FROM comments WHERE object_id = ?", (object_id,))
        return row is not None

    async def get_comment_by_slug(self, blog_id: int, slug: str) -> Comment | None:
        """The comment whose page ends in ``slug``."""
        row = await self._row(
            "SELECT * FROM comments WHERE blog_id = ? AND slug = ?", (blog_id, slug)
        )
        return _comment(row) if row else None

    async def edit_comment(
        self,
        object_id: str,
        content_html: str,
        summary: str | None,
        updated: datetime,
        source: dict[str, Any],
        text_hash: str | None = None,
    ) -> Comment | None:
        """Replace a comment's text unless deleted; a stale edit changes nothing."""
        async with self.transaction():
            rows = await self._rows(
                "UPDATE comments SET content_html = ?, summary = ?, updated = ?, source = ?, "
                "text_hash = ? "
                "WHERE object_id = ? AND deleted_at IS NULL AND (updated IS NULL OR updated < ?) "
                "RETURNING *",
                (
                    content_html,
                    summary,
                    ts(updated),
                    _json(source),
                    text_hash,
                    object_id,
                    ts(updated),
                ),
            )
            if not rows:
                rows = await self._rows(
                    "SELECT * FROM comments WHERE object_id = ? AND deleted_at IS NULL",
                    (object_id,),
                )
        return _comment(rows[0]) if rows else None

    async def set_comment_state(
        self, object_id: str, state: CommentState, reasons: tuple[str, ...] | None = None
    ) -> Comment | None:
        """Moderate a comment that is not deleted; ``reasons`` None keeps the old ones."""
        if state == "deleted":
            raise ValueError("a comment is deleted with delete_comment, which records when")
        reasons_json = None if reasons is None else json.dumps(list(reasons), ensure_ascii=False)
        async with self.transaction():
            rows = await self._rows(
                "UPDATE comments SET state = ?, reasons = COALESCE(?, reasons) "
                "WHERE object_id = ? AND deleted_at IS NULL RETURNING *",
                (state, reasons_json, object_id),
            )
        return _comment(rows[0]) if rows else None

    async def delete_comment(self, object_id: str, now: datetime) -> Comment | None:
        """Mark a comment deleted; None when unknown or deleted already."""
        async with self.transaction():
            rows = await self._rows(
                "UPDATE comments SET state = 'deleted', deleted_at = ? "
                "WHERE object_id = ? AND deleted_at IS NULL RETURNING *",
                (ts(now), object_id),
            )
        return _comment(rows[0]) if rows else None

    async def delete_comments_by_author(self, actor_id: str, now: datetime) -> list[Comment]:
        """Mark every live comment of an actor deleted; return them, oldest first."""
        async with self.transaction():
            rows = await self._rows(
                "UPDATE comments SET state = 'deleted', deleted_at = ? "
                "WHERE author_id = ? AND deleted_at IS NULL RETURNING *",
                (ts(now), actor_id),
            )
        return sorted((_comment(row) for row in rows), key=lambda c: c.id)

    async def list_comments(
        self,
        blog_id: int,
        *,
        entry_id: str | None = None,
        states: Iterable[CommentState] = ("published",),
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Comment]:
        """Comments of a blog (or of one post) in the given states, by published time."""
        wanted = _comment_filter(blog_id, entry_id, states)
        if wanted is None:
            return []
        where, params = wanted
        order = "DESC" if newest_first else "ASC"
        rows = await self._rows(
            f"SELECT * FROM comments WHERE {where} "
            f"ORDER BY published {order}, id {order} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_comment(row) for row in rows]

    async def count_comments(
        self,
        blog_id: int,
        *,
        entry_id: str | None = None,
        states: Iterable[CommentState] = ("published",),
    ) -> int:
        """How many comments a blog (or one post) has in the given states."""
        wanted = _comment_filter(blog_id, entry_id, states)
        if wanted is None:
            return 0
        where, params = wanted
        row = await self._row(f"SELECT COUNT(*) AS n FROM comments WHERE {where}", params)
        return int(row["n"]) if row else 0

    async def comments_by_author_since(self, actor_id: str, since: datetime) -> list[Comment]:
        """An actor's comments received at or after ``since``, any state, as received."""
        rows = await self._rows(
            "SELECT * FROM comments WHERE author_id = ? AND received_at >= ? "
            "ORDER BY received_at, id",
            (actor_id, ts(since)),
        )
        return [_comment(row) for row in rows]

    async def author_has_published(self, blog_id: int, actor_id: str) -> bool:
        """Whether the actor has a published comment on this blog."""
        row = await self._row(
            f"SELECT 1 FROM comments WHERE {_PUBLISHED_ON_BLOG} LIMIT 1",
            (actor_id, blog_id),
        )
        return row is not None

    async def author_standing(
        self,
        actor_id: str,
        blog_id: int,
        entry_id: str,
        text_hash: str | None,
        recent_since: datetime,
        similar_from: datetime,
        similar_until: datetime,
        *,
        host: str,
        origin: str,
        origin_before: datetime,
    ) -> AuthorStanding:
        """The author's and its server's standing, in one query."""
        row = await self._row(
            "SELECT "
            "EXISTS (SELECT 1 FROM actor_blocks WHERE actor_id = ?1) AS blocked, "
            f"EXISTS (SELECT 1 FROM comments WHERE {_PUBLISHED_ON_BLOG}) "
            "AS published, "
            "(SELECT COUNT(*) FROM comments "
            "WHERE author_id = ?1 AND received_at >= ?5) AS recent, "
            "EXISTS (SELECT 1 FROM comments WHERE author_id = ?1 AND entry_id = ?3 "
            "AND text_hash = ?4 AND state != 'deleted' "
            "AND received_at BETWEEN ?6 AND ?7) AS duplicate, "
            "(SELECT json_group_array(content_html) FROM comments "
            "WHERE author_id = ?1 AND entry_id = ?3 AND text_hash IS NULL "
            "AND state != 'deleted' AND received_at BETWEEN ?6 AND ?7) AS unhashed, "
            "(SELECT severity FROM domain_blocks WHERE domain IN "
            "(SELECT value FROM json_each(?8)) ORDER BY length(domain) DESC LIMIT 1) "
            "AS severity, "
            "EXISTS (SELECT 1 FROM inbound WHERE origin = ?9 AND received_at < ?10) AS known",
            # Numbered parameters: each is used in several of the sub-queries.
            (
                actor_id,
                blog_id,
                entry_id,
                text_hash,
                ts(recent_since),
                ts(similar_from),
                ts(similar_until),
                json.dumps(rule_domains(host)),
                origin,
                ts(origin_before),
            ),
        )
        if row is None:
            raise StoreError("the standing query answered no row")
        return AuthorStanding(
            blocked=bool(row["blocked"]),
            published_before=bool(row["published"]),
            recent_count=int(row["recent"]),
            duplicate=text_hash is not None and bool(row["duplicate"]),
            unhashed=tuple(json.loads(row["unhashed"])),
            domain_severity=cast("BlockSeverity | None", row["severity"]),
            origin_known=bool(row["known"]),
        )

    # -- reactions ----------------------------------------------------------------------


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


def _comment_filter(
    blog_id: int, entry_id: str | None, states: Iterable[CommentState]
) -> tuple[str, tuple[Any, ...]] | None:
    """The WHERE clause and its parameters; None when no state is wanted."""
    wanted = sorted(set(states))
    if not wanted:
        return None
    where = f"blog_id = ? AND state IN ({','.join('?' * len(wanted))})"
    params: tuple[Any, ...] = (blog_id, *wanted)
    if entry_id is not None:
        where += " AND entry_id = ?"
        params += (entry_id,)
    return where, params


def _comment(row: sqlite3.Row) -> Comment:
    return Comment(
        id=row["id"],
        slug=row["slug"],
        blog_id=row["blog_id"],
        entry_id=row["entry_id"],
        object_id=row["object_id"],
        parent_id=row["parent_id"],
        author=Person(
            row["author_id"],
            row["author_name"],
            row["author_handle"],
            row["author_url"],
            row["author_avatar"],
        ),
        content_html=row["content_html"],
        published=dt_required(row["published"]),
        state=row["state"],
        summary=row["summary"],
        url=row["url"],
        language=row["language"],
        score=float(row["score"]),
        reasons=tuple(json.loads(row["reasons"])),
        origin=row["origin"],
        source=json.loads(row["source"]),
        received_at=dt_required(row["received_at"]),
        updated=dt(row["updated"]),
        deleted_at=dt(row["deleted_at"]),
        text_hash=row["text_hash"],
    )
