"""PostgreSQL queries for reactions (likes, boosts, mentions) and actor blocks."""

from __future__ import annotations

from datetime import datetime

from bridge.store.postgres.connection import PostgresBase, Row, ts
from bridge.store.roles_backfeed import (
    ActorBlock,
    NewReaction,
    Person,
    Reaction,
    ReactionKind,
    item_slug,
)

_REACTION_COLUMNS = (
    "slug, blog_id, entry_id, kind, activity_id, actor_id, actor_name, actor_handle, actor_url, "
    "actor_avatar, content_html, url, published, received_at"
)


class ReactionRows(PostgresBase):
    """PostgreSQL queries for reactions and actor blocks."""

    async def add_reaction(self, reaction: NewReaction, now: datetime) -> Reaction | None:
        """Store a reaction; None when its activity id is known or the same like or boost
        of the actor is live."""
        r = reaction
        # No conflict target: both the activity id and the live like/boost index count.
        row = await self._row(
            f"INSERT INTO reactions ({_REACTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "$8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING RETURNING *",
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
        )
        return _reaction(row) if row else None

    async def get_reaction(self, activity_id: str) -> Reaction | None:
        """The reaction with this activity id (withdrawn ones included)."""
        row = await self._row("SELECT * FROM reactions WHERE activity_id = $1", activity_id)
        return _reaction(row) if row else None

    async def get_reaction_by_slug(self, blog_id: int, slug: str) -> Reaction | None:
        """The reaction whose page ends in ``slug``."""
        row = await self._row(
            "SELECT * FROM reactions WHERE blog_id = $1 AND slug = $2", blog_id, slug
        )
        return _reaction(row) if row else None

    async def withdraw_reaction(
        self, activity_id: str, actor_id: str, now: datetime
    ) -> Reaction | None:
        """Withdraw the actor's own live reaction; None otherwise."""
        row = await self._row(
            "UPDATE reactions SET withdrawn_at = $1 "
            "WHERE activity_id = $2 AND actor_id = $3 AND withdrawn_at IS NULL RETURNING *",
            ts(now),
            activity_id,
            actor_id,
        )
        return _reaction(row) if row else None

    async def withdraw_reactions_by_actor(self, actor_id: str, now: datetime) -> list[Reaction]:
        """Withdraw every live reaction of an actor; return them, oldest first."""
        rows = await self._rows(
            "UPDATE reactions SET withdrawn_at = $1 "
            "WHERE actor_id = $2 AND withdrawn_at IS NULL RETURNING *",
            ts(now),
            actor_id,
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
            "SELECT * FROM reactions WHERE blog_id = $1 AND entry_id = $2 AND kind = $3 "
            "AND withdrawn_at IS NULL ORDER BY published, id LIMIT $4 OFFSET $5",
            blog_id,
            entry_id,
            kind,
            limit,
            offset,
        )
        return [_reaction(row) for row in rows]

    async def count_reactions(self, blog_id: int, entry_id: str, kind: ReactionKind) -> int:
        """How many live reactions of one kind a post has."""
        count = await self._value(
            "SELECT COUNT(*) FROM reactions WHERE blog_id = $1 AND entry_id = $2 "
            "AND kind = $3 AND withdrawn_at IS NULL",
            blog_id,
            entry_id,
            kind,
        )
        return int(count)

    # -- actor blocks -------------------------------------------------------------------

    async def block_actor(self, actor_id: str, reason: str | None, now: datetime) -> None:
        """Block an actor (again: replace the reason, keep the time)."""
        await self._execute(
            "INSERT INTO actor_blocks (actor_id, reason, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (actor_id) DO UPDATE SET reason = EXCLUDED.reason",
            actor_id,
            reason,
            ts(now),
        )

    async def unblock_actor(self, actor_id: str) -> bool:
        """Lift a block; True when there was one."""
        removed = await self._execute("DELETE FROM actor_blocks WHERE actor_id = $1", actor_id)
        return removed > 0

    async def list_actor_blocks(self) -> list[ActorBlock]:
        """All blocked actors, by actor id."""
        rows = await self._rows("SELECT * FROM actor_blocks ORDER BY actor_id")
        return [ActorBlock(row["actor_id"], row["reason"], row["created_at"]) for row in rows]

    async def is_actor_blocked(self, actor_id: str) -> bool:
        """Whether the actor is blocked."""
        found = await self._value(
            "SELECT EXISTS (SELECT 1 FROM actor_blocks WHERE actor_id = $1)", actor_id
        )
        return bool(found)


def _reaction(row: Row) -> Reaction:
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
        published=row["published"],
        content_html=row["content_html"],
        url=row["url"],
        received_at=row["received_at"],
        withdrawn_at=row["withdrawn_at"],
    )
