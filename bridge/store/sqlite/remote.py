"""SQLite queries for what comes from other servers: cached keys and actors, inbound activities."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime

from bridge.store.records import (
    InboundActivity,
    InboundState,
    NewInbound,
    NewJob,
    RemoteActor,
    RemoteKey,
)
from bridge.store.sqlite.connection import dt_required, ts
from bridge.store.sqlite.jobs import HOST_HEARD_FROM, insert_jobs
from bridge.store.sqlite.processes import ProcessRows


class RemoteRows(ProcessRows):
    """SQLite queries for cached remote keys and actors, and inbound activities."""

    async def get_remote_key(self, key_id: str) -> RemoteKey | None:
        """A cached key."""
        row = await self._row("SELECT * FROM remote_keys WHERE key_id = ?", (key_id,))
        if row is None:
            return None
        return RemoteKey(
            row["key_id"], row["owner"], row["public_pem"], dt_required(row["fetched_at"])
        )

    async def put_remote_key(self, key: RemoteKey) -> None:
        """Insert or replace a cached key."""
        await self._write(
            "INSERT OR REPLACE INTO remote_keys (key_id, owner, public_pem, fetched_at) "
            "VALUES (?, ?, ?, ?)",
            (key.key_id, key.owner, key.public_pem, ts(key.fetched_at)),
        )

    async def delete_remote_key(self, key_id: str) -> None:
        """Forget a cached key."""
        await self._write("DELETE FROM remote_keys WHERE key_id = ?", (key_id,))

    async def get_remote_actor(self, actor_id: str) -> RemoteActor | None:
        """A cached actor."""
        row = await self._row("SELECT * FROM remote_actors WHERE id = ?", (actor_id,))
        return _actor(row) if row else None

    async def put_remote_actor(self, actor: RemoteActor) -> None:
        """Insert or replace a cached actor."""
        a = actor
        await self._write(
            "INSERT OR REPLACE INTO remote_actors (id, inbox, shared_inbox, key_id, document, "
            "fetched_at, preferred_username, name, url, also_known_as, moved_to) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a.id,
                a.inbox,
                a.shared_inbox,
                a.key_id,
                json.dumps(a.document, ensure_ascii=False),
                ts(a.fetched_at),
                a.preferred_username,
                a.name,
                a.url,
                json.dumps(list(a.also_known_as)),
                a.moved_to,
            ),
        )

    async def delete_remote_actor(self, actor_id: str) -> None:
        """Forget a cached actor and its keys."""
        async with self.transaction():
            await self._write("DELETE FROM remote_actors WHERE id = ?", (actor_id,))
            await self._write("DELETE FROM remote_keys WHERE owner = ?", (actor_id,))

    async def record_inbound(self, inbound: NewInbound, now: datetime) -> int | None:
        """Store a verified activity; None when (origin, activity id) was seen before."""
        return await self._call(functools.partial(_insert_inbound, inbound=inbound, now=now))

    async def store_inbound(
        self, inbound: NewInbound, job_for: Callable[[int], NewJob], now: datetime
    ) -> int | None:
        """Store a verified activity and enqueue ``job_for(its id)`` in one transaction and
        one hand-off to the database thread; None (and no job) when seen before."""

        def store(conn: sqlite3.Connection) -> int | None:
            inbound_id = _insert_inbound(conn, inbound, now)
            if inbound_id is not None:
                insert_jobs(conn, [job_for(inbound_id)], now)
            # Here rather than asked by the inbox: no read on the loop per request, and a
            # healthy host (the usual case) matches no row, so nothing is written.
            conn.execute(
                f"UPDATE hosts SET {HOST_HEARD_FROM}, last_success_at = ? "
                "WHERE host = ? AND (failures > 0 OR unavailable = 1)",
                (ts(now), inbound.origin),
            )
            return inbound_id

        inbound_id = await self._atomic(store)
        if inbound_id is not None:
            self._jobs_claimable()
        return inbound_id

    async def get_inbound(self, inbound_id: int) -> InboundActivity | None:
        """One stored activity."""
        row = await self._row("SELECT * FROM inbound WHERE id = ?", (inbound_id,))
        if row is None:
            return None
        return InboundActivity(
            id=row["id"],
            origin=row["origin"],
            activity_id=row["activity_id"],
            actor_id=row["actor_id"],
            type=row["type"],
            payload=json.loads(row["payload"]),
            blog_id=row["blog_id"],
            state=row["state"],
            error=row["error"],
            received_at=dt_required(row["received_at"]),
        )

    async def mark_inbound(
        self, inbound_id: int, state: InboundState, error: str | None = None
    ) -> None:
        """Record how processing ended (one statement: it commits by itself)."""
        await self._write(
            "UPDATE inbound SET state = ?, error = ? WHERE id = ?", (state, error, inbound_id)
        )

    async def origin_seen_before(self, origin: str, before: datetime) -> bool:
        """Whether any activity from ``origin`` was received before ``before``."""
        row = await self._row(
            "SELECT 1 FROM inbound WHERE origin = ? AND received_at < ? LIMIT 1",
            (origin, ts(before)),
        )
        return row is not None


def _insert_inbound(conn: sqlite3.Connection, inbound: NewInbound, now: datetime) -> int | None:
    """Insert an activity unless (origin, activity id) is known; its id, or None (on the
    database thread)."""
    i = inbound
    cursor = conn.execute(
        "INSERT INTO inbound (origin, activity_id, actor_id, type, payload, blog_id, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (origin, activity_id) DO NOTHING",
        (
            i.origin,
            i.activity_id,
            i.actor_id,
            i.type,
            json.dumps(i.payload, ensure_ascii=False),
            i.blog_id,
            ts(now),
        ),
    )
    return cursor.lastrowid if cursor.rowcount > 0 else None


def _actor(row: sqlite3.Row) -> RemoteActor:
    return RemoteActor(
        id=row["id"],
        inbox=row["inbox"],
        shared_inbox=row["shared_inbox"],
        key_id=row["key_id"],
        document=json.loads(row["document"]),
        fetched_at=dt_required(row["fetched_at"]),
        preferred_username=row["preferred_username"],
        name=row["name"],
        url=row["url"],
        also_known_as=tuple(json.loads(row["also_known_as"])),
        moved_to=row["moved_to"],
    )
