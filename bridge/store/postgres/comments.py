"""PostgreSQL queries for comments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bridge.errors import StoreError
from bridge.store.postgres.connection import PostgresBase, Row, ts
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

_COMMENT_COLUMNS = (
    "slug, blog_id, entry_id, object_id, parent_id, author_id, author_name, author_handle, "
    "author_url, author_avatar, content_html, summary, url, language, published, state, score, "
    "reasons, origin, source, received_at, text_hash"
)


class CommentRows(PostgresBase):
    """PostgreSQL queries for comments."""

    # -- comments -----------------------------------------------------------------------

    async def add_comment(self, comment: NewComment, now: datetime) -> Comment | None:
        """Store a comment; None when its object id is known already."""
        c = comment
        slug = item_slug(c.object_id)
        # Only the id comes back: the rest is what was written (no JSON decoded back).
        comment_id = await self._value(
            f"INSERT INTO comments ({_COMMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
            "$9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) "
            "ON CONFLICT (object_id) DO NOTHING RETURNING id",
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
            list(c.reasons),
            c.origin,
            c.source,
            ts(now),
            c.text_hash,
        )
        return None if comment_id is None else comment_as_added(c, comment_id, slug, now)

    async def get_comment(self, object_id: str) -> Comment | None:
        """The comment with this object id (any state)."""
        row = await self._row("SELECT * FROM comments WHERE object_id = $1", object_id)
        return _comment(row) if row else None

    async def comment_exists(self, object_id: str) -> bool:
        """Whether a comment with this object id is stored (any state, deleted ones too)."""
        found = await self._value(
            "SELECT EXISTS (SELECT 1 FROM comments WHERE object_id = $1)", object_id
        )
        return bool(found)

    async def get_comment_by_slug(self, blog_id: int, slug: str) -> Comment | None:
        """The comment whose page ends in ``slug``."""
        row = await self._row(
            "SELECT * FROM comments WHERE blog_id = $1 AND slug = $2", blog_id, slug
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
            # Locked first, so a concurrent Delete or a newer Update waits for this one.
            current = await self._row(
                "SELECT * FROM comments WHERE object_id = $1 AND deleted_at IS NULL FOR UPDATE",
                object_id,
            )
            if current is None:
                return None
            if current["updated"] is not None and current["updated"] >= updated:
                return _comment(current)
            row = await self._row(
                "UPDATE comments SET content_html = $1, summary = $2, updated = $3, source = $4, "
                "text_hash = $6 WHERE object_id = $5 RETURNING *",
                content_html,
                summary,
                ts(updated),
                source,
                object_id,
                text_hash,
            )
        return _comment(row) if row else None

    async def set_comment_state(
        self, object_id: str, state: CommentState, reasons: tuple[str, ...] | None = None
    ) -> Comment | None:
        """Moderate a comment that is not deleted; ``reasons`` None keeps the old ones."""
        if state == "deleted":
            raise ValueError("a comment is deleted with delete_comment, which records when")
        row = await self._row(
            "UPDATE comments SET state = $1, reasons = COALESCE($2::jsonb, reasons) "
            "WHERE object_id = $3 AND deleted_at IS NULL RETURNING *",
            state,
            None if reasons is None else list(reasons),
            object_id,
        )
        return _comment(row) if row else None

    async def delete_comment(self, object_id: str, now: datetime) -> Comment | None:
        """Mark a comment deleted; None when unknown or deleted already."""
        row = await self._row(
            "UPDATE comments SET state = 'deleted', deleted_at = $1 "
            "WHERE object_id = $2 AND deleted_at IS NULL RETURNING *",
            ts(now),
            object_id,
        )
        return _comment(row) if row else None

    async def delete_comments_by_author(self, actor_id: str, now: datetime) -> list[Comment]:
        """Mark every live comment of an actor deleted; return them, oldest first."""
        rows = await self._rows(
            "UPDATE comments SET state = 'deleted', deleted_at = $1 "
            "WHERE author_id = $2 AND deleted_at IS NULL RETURNING *",
            ts(now),
            actor_id,
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
        order = "DESC" if newest_first else "ASC"
        where, params = wanted
        n = len(params)
        rows = await self._rows(
            f"SELECT * FROM comments WHERE {where} "
            f"ORDER BY published {order}, id {order} LIMIT ${n + 1} OFFSET ${n + 2}",
            *params,
            limit,
            offset,
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
        count = await self._value(f"SELECT COUNT(*) FROM comments WHERE {where}", *params)
        return int(count)

    async def comments_by_author_since(self, actor_id: str, since: datetime) -> list[Comment]:
        """An actor's comments received at or after ``since``, any state, as received."""
        rows = await self._rows(
            "SELECT * FROM comments WHERE author_id = $1 AND received_at >= $2 "
            "ORDER BY received_at, id",
            actor_id,
            ts(since),
        )
        return [_comment(row) for row in rows]

    async def author_has_published(self, blog_id: int, actor_id: str) -> bool:
        """Whether the actor has a published comment on this blog."""
        found = await self._value(
            "SELECT EXISTS (SELECT 1 FROM comments WHERE author_id = $1 AND blog_id = $2 "
            "AND state = 'published')",
            actor_id,
            blog_id,
        )
        return bool(found)

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
            "EXISTS (SELECT 1 FROM actor_blocks WHERE actor_id = $1) AS blocked, "
            "EXISTS (SELECT 1 FROM comments WHERE author_id = $1 AND blog_id = $2 "
            "AND state = 'published') AS published, "
            "(SELECT COUNT(*) FROM comments "
            "WHERE author_id = $1 AND received_at >= $5) AS recent, "
            "EXISTS (SELECT 1 FROM comments WHERE author_id = $1 AND entry_id = $3 "
            "AND text_hash = $4 AND state != 'deleted' "
            "AND received_at BETWEEN $6 AND $7) AS duplicate, "
            "ARRAY (SELECT content_html FROM comments "
            "WHERE author_id = $1 AND entry_id = $3 AND text_hash IS NULL "
            "AND state != 'deleted' AND received_at BETWEEN $6 AND $7) AS unhashed, "
            "(SELECT severity FROM domain_blocks WHERE domain = ANY($8::text[]) "
            "ORDER BY char_length(domain) DESC LIMIT 1) AS severity, "
            "EXISTS (SELECT 1 FROM inbound WHERE origin = $9 AND received_at < $10) AS known",
            actor_id,
            blog_id,
            entry_id,
            text_hash,
            ts(recent_since),
            ts(similar_from),
            ts(similar_until),
            rule_domains(host),
            origin,
            ts(origin_before),
        )
        if row is None:
            raise StoreError("the standing query answered no row")
        return AuthorStanding(
            blocked=bool(row["blocked"]),
            published_before=bool(row["published"]),
            recent_count=int(row["recent"]),
            duplicate=text_hash is not None and bool(row["duplicate"]),
            unhashed=tuple(row["unhashed"]),
            domain_severity=row["severity"],
            origin_known=bool(row["known"]),
        )

    # -- reactions ----------------------------------------------------------------------


def _comment_filter(
    blog_id: int, entry_id: str | None, states: Iterable[CommentState]
) -> tuple[str, list[object]] | None:
    """The WHERE clause and its parameters; None when no state is wanted."""
    wanted = sorted(set(states))
    if not wanted:
        return None
    # Two statement shapes rather than "$n IS NULL OR ...": each keeps a plan that uses
    # its index (the blog's comments, or one post's thread).
    where = "blog_id = $1 AND state = ANY($2::text[])"
    params: list[object] = [blog_id, wanted]
    if entry_id is not None:
        where += " AND entry_id = $3"
        params.append(entry_id)
    return where, params


def _comment(row: Row) -> Comment:
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
        published=row["published"],
        state=row["state"],
        summary=row["summary"],
        url=row["url"],
        language=row["language"],
        score=float(row["score"]),
        reasons=tuple(row["reasons"]),
        origin=row["origin"],
        source=row["source"],
        received_at=row["received_at"],
        updated=row["updated"],
        deleted_at=row["deleted_at"],
        text_hash=row["text_hash"],
    )
