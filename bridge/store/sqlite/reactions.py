"""SQLite queries for reactions (likes, boosts, mentions) and actor blocks."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from bridge.store.roles_backfeed import (
    ActorBlock,
    NewReaction,
    Person,
    Reaction,
    ReactionKind,
    item_slug,
)
from bridge.store.sqlite.connection import SQLiteBase, dt, dt_required, ts

_REACTION_COLUMNS = (
    "slug, blog_id, entry_id, kind, activity_id, actor_id, actor_name, actor_handle, actor_url, "
    "actor_avatar, content_html, url, published, received_at"
)


class ReactionRows(SQLiteBase):
    """SQLite queries for reactions and actor blocks."""

    async def add_reaction(self, reaction: NewReaction, now: datetime) -> Reaction | None:
        """Store a reaction; None when its activity id is known or the same like or boost
        of the actor is live."""
        r = reaction
        async with self.transaction():
            # No conflict target: both the activity id and the live like/boost index count.
            rows = await self._rows(
                f"INSERT INTO reactions ({_REACTION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING *",
                (
                    item_slug(r.activity_id),
                    r.blog_id,
                    r.entry_id,
                    r.kind,
                    r.activity_id,
                    r.actor.actor_id,
                    r.actor.name,
                    r.actor.handle,
                    r.actor.profile_url,
                    r.actor.avatar_url,
                    r.content_html,
                    r.url,
                    ts(r.published),
                    ts(now),
                ),
            )
        return _reaction(rows[0]) if rows else None

    async def get_reaction(self, activity_id: str) -> Reaction | None:
        """The reaction with this activity id (withdrawn ones included)."""
        row = await self._row("SELECT * FROM reactions WHERE activity_id = ?", (activity_id,))
        return _reaction(row) if row else None

    async def get_reaction_by_slug(self, blog_id: int, slug: str) -> Reaction | None:
        """The reaction whose page ends in ``slug``."""
        row = await self._row(
            "SELECT * FROM reactions WHERE blog_id = ? AND slug = ?", (blog_id, slug)
        )
        return _reaction(row) if row else None

    async def withdraw_reaction(
        self, activity_id: str, actor_id: str, now: datetime
    ) -> Reaction | None:
        """Withdraw the actor's own live reaction; None otherwise."""
        async with self.transaction():
            rows = await self._rows(
                "UPDATE reactions SET withdrawn_at = ? "
                "WHERE activity_id = ? AND actor_id = ? AND withdrawn_at IS NULL RETURNING *",
                (ts(now), activity_id, actor_id),
            )
        return _reaction(rows[0]) if rows else None

    async def withdraw_reactions_by_actor(self, actor_id: str, now: datetime) -> list[Reaction]:
        """Withdraw every live reaction of an actor; return them, oldest first."""
        async with self.transaction():
            rows = await self._rows(
                "UPDATE reactions SET withdrawn_at = ? "
                "WHERE actor_id = ? AND withdrawn_at IS NULL RETURNING *",
                (ts(now), actor_id),
            )
        return sorted((_reaction(row) for row in rows), key=lambda r: r.id)

    async def list_reactions(
        self,
        blog_id: int,
        entry_id: str,
        kind: ReactionKind,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Reaction]:
        """Live reactions of one kind to one post, oldest first."""
        rows = await self._rows(
            "SELECT * FROM reactions WHERE blog_id = ? AND entry_id = ? AND kind = ? "
            "AND withdrawn_at IS NULL ORDER BY published, id LIMIT ? OFFSET ?",
            (blog_id, entry_id, kind, limit, offset),
        )
        return [_reaction(row) for row in rows]

    async def count_reactions(self, blog_id: int, entry_id: str, kind: ReactionKind) -> int:
        """How many live reactions of one kind a post has."""
        row = await self._row(
            "SELECT COUNT(*) AS n FROM reactions WHERE blog_id = ? AND entry_id = ? "
            "AND kind = ? AND withdrawn_at IS NULL",
            (blog_id, entry_id, kind),
        )
        return int(row["n"]) if row else 0

    # -- actor blocks -------------------------------------------------------------------

    async def block_actor(self, actor_id: str, reason: str | None, now: datetime) -> None:
        """Block an actor (again: replace the reason, keep the time)."""
        await self._write(
            "INSERT INTO actor_blocks (actor_id, reason, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (actor_id) DO UPDATE SET reason = excluded.reason",
            (actor_id, reason, ts(now)),
        )

    async def unblock_actor(self, actor_id: str) -> bool:
        """Lift a block; True when there was one."""
        cursor = await self._write("DELETE FROM actor_blocks WHERE actor_id = ?", (actor_id,))
        return cursor.rowcount > 0

    async def list_actor_blocks(self) -> list[ActorBlock]:
        """All blocked actors, by actor id."""
        rows = await self._rows("SELECT * FROM actor_blocks ORDER BY actor_id")
        return [
            ActorBlock(row["actor_id"], row["reason"], dt_required(row["created_at"]))
            for row in rows
        ]

    async def is_actor_blocked(self, actor_id: str) -> bool:
        """Whether the actor is blocked."""
        row = await self._row("SELECT 1 FROM actor_blocks WHERE actor_id = ?", (actor_id,))
        return row is not None


def _reaction(row: sqlite3.Row) -> Reaction:
    return Reaction(
        id=row["id"],
        slug=row["slug"],
        blog_id=row["blog_id"],
        entry_id=row["entry_id"],
        kind=row["kind"],
        activity_id=row["activity_id"],
        actor=Person(
            row["actor_id"],
            row["actor_name"],
            row["actor_handle"],
            row["actor_url"],
            row["actor_avatar"],
        ),
        published=dt_required(row["published"]),
        content_html=row["content_html"],
        url=row["url"],
        received_at=dt_required(row["received_at"]),
        withdrawn_at=dt(row["withdrawn_at"]),
    )
