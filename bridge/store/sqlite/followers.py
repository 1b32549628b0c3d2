"""SQLite queries for followers and domain blocks."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import cast
from urllib.parse import urlsplit

from bridge.store.records import BlockSeverity, DomainBlock, Follower, FollowerState
from bridge.store.roles_federation import rule_domains
from bridge.store.sqlite.connection import SQLiteBase, dt_required, ts


class FollowerRows(SQLiteBase):
    """SQLite queries for followers and domain blocks."""

    async def count_all_followers(self) -> int:
        """Accepted followers of every blog together."""
        row = await self._row("SELECT COUNT(*) AS n FROM followers WHERE state = 'accepted'")
        return int(row["n"]) if row else 0

    async def count_followers(self, blog_id: int) -> int:
        """Accepted followers of a blog."""
        row = await self._row(
            "SELECT COUNT(*) AS n FROM followers WHERE blog_id = ? AND state = 'accepted'",
            (blog_id,),
        )
        return int(row["n"]) if row else 0

    async def list_followers(
        self, blog_id: int, limit: int, offset: int = 0, state: FollowerState = "accepted"
    ) -> list[Follower]:
        """Followers in ``state``, oldest first."""
        rows = await self._rows(
            "SELECT * FROM followers WHERE blog_id = ? AND state = ? "
            "ORDER BY created_at, actor_id LIMIT ? OFFSET ?",
            (blog_id, state, limit, offset),
        )
        return [_follower(row) for row in rows]

    async def get_follower(self, blog_id: int, actor_id: str) -> Follower | None:
        """One follower (any state), if present."""
        row = await self._row(
            "SELECT * FROM followers WHERE blog_id = ? AND actor_id = ?", (blog_id, actor_id)
        )
        return _follower(row) if row else None

    async def follows_of_actor(self, actor_id: str) -> list[Follower]:
        """Every follow of the actor (any blog, any state), by blog id."""
        rows = await self._rows(
            "SELECT * FROM followers WHERE actor_id = ? ORDER BY blog_id", (actor_id,)
        )
        return [_follower(row) for row in rows]

    async def put_follower(self, follower: Follower) -> None:
        """Insert a follower or update its inboxes, state and Follow id (keeps created_at)."""
        f = follower
        await self._write(
            "INSERT INTO followers (blog_id, actor_id, inbox, shared_inbox, state, created_at, "
            "follow_id, actor_host) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (blog_id, actor_id) DO UPDATE SET inbox = excluded.inbox, "
            "shared_inbox = excluded.shared_inbox, state = excluded.state, "
            "follow_id = COALESCE(excluded.follow_id, followers.follow_id)",
            (
                f.blog_id,
                f.actor_id,
                f.inbox,
                f.shared_inbox,
                f.state,
                ts(f.created_at),
                f.follow_id,
                _host(f.actor_id),
            ),
        )

    async def remove_follower(self, blog_id: int, actor_id: str) -> bool:
        """Drop a follower; True when there was one."""
        cursor = await self._write(
            "DELETE FROM followers WHERE blog_id = ? AND actor_id = ?", (blog_id, actor_id)
        )
        return cursor.rowcount > 0

    async def remove_actor_everywhere(self, actor_id: str) -> list[int]:
        """Drop the actor from every blog's followers; return those blog ids."""
        async with self.transaction():
            rows = await self._rows(
                "SELECT blog_id FROM followers WHERE actor_id = ? ORDER BY blog_id", (actor_id,)
            )
            await self._write("DELETE FROM followers WHERE actor_id = ?", (actor_id,))
        return [row["blog_id"] for row in rows]

    async def remove_followers_by_inbox(self, inbox: str) -> int:
        """Drop followers whose personal inbox is ``inbox``."""
        cursor = await self._write("DELETE FROM followers WHERE inbox = ?", (inbox,))
        return cursor.rowcount

    async def delivery_inboxes(self, blog_id: int, after: str, limit: int) -> list[str]:
        """Distinct delivery inboxes of accepted followers, sorted, after ``after``."""
        rows = await self._rows(
            "SELECT DISTINCT COALESCE(shared_inbox, inbox) AS target FROM followers "
            "WHERE blog_id = ? AND state = 'accepted' AND COALESCE(shared_inbox, inbox) > ? "
            "ORDER BY target LIMIT ?",
            (blog_id, after, limit),
        )
        return [row["target"] for row in rows]

    async def followers_on_host(self, blog_id: int, host: str) -> list[str]:
        """Ids of accepted followers whose id is on ``host``."""
        rows = await self._rows(
            "SELECT actor_id FROM followers WHERE blog_id = ? AND actor_host = ? "
            "AND state = 'accepted' ORDER BY actor_id",
            (blog_id, host.lower()),
        )
        return [row["actor_id"] for row in rows]

    async def block_domain(
        self, domain: str, reason: str | None, now: datetime, severity: BlockSeverity = "block"
    ) -> None:
        """Block (or limit) a domain and its subdomains; again replaces reason and severity."""
        await self._write(
            "INSERT INTO domain_blocks (domain, reason, created_at, severity) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (domain) DO UPDATE SET reason = excluded.reason, "
            "severity = excluded.severity",
            (domain.lower().strip("."), reason, ts(now), severity),
        )

    async def unblock_domain(self, domain: str) -> bool:
        """Lift a block; True when there was one."""
        cursor = await self._write(
            "DELETE FROM domain_blocks WHERE domain = ?", (domain.lower().strip("."),)
        )
        return cursor.rowcount > 0

    async def list_domain_blocks(self) -> list[DomainBlock]:
        """All blocks, by domain."""
        rows = await self._rows("SELECT * FROM domain_blocks ORDER BY domain")
        return [
            DomainBlock(
                row["domain"], row["reason"], dt_required(row["created_at"]), row["severity"]
            )
            for row in rows
        ]

    async def is_domain_blocked(self, host: str) -> bool:
        """Whether the most specific rule for ``host`` or a parent domain is ``block``."""
        return await self.domain_block_severity(host) == "block"

    async def domain_block_severity(self, host: str) -> BlockSeverity | None:
        """The severity of the most specific rule for ``host`` or a parent domain, if any."""
        candidates = rule_domains(host)
        marks = ",".join("?" * len(candidates))
        row = await self._row(
            f"SELECT severity FROM domain_blocks WHERE domain IN ({marks}) "
            "ORDER BY length(domain) DESC LIMIT 1",
            candidates,
        )
        return None if row is None else cast(BlockSeverity, row["severity"])


def _host(actor_id: str) -> str:
    return (urlsplit(actor_id).hostname or "").lower()


def _follower(row: sqlite3.Row) -> Follower:
    return Follower(
        blog_id=row["blog_id"],
        actor_id=row["actor_id"],
        inbox=row["inbox"],
        shared_inbox=row["shared_inbox"],
        state=row["state"],
        created_at=dt_required(row["created_at"]),
        follow_id=row["follow_id"],
    )
