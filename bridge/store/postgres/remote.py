"""PostgreSQL queries for what comes from other servers: cached keys and actors, inbound
activities."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bridge.store.postgres.connection import PostgresBase, Row, ts
from bridge.store.postgres.jobs import HOST_HEARD_FROM
from bridge.store.postgres.notices import JOBS_NOTICE
from bridge.store.records import (
    InboundActivity,
    InboundState,
    NewInbound,
    NewJob,
    RemoteActor,
    RemoteKey,
)


class RemoteRows(PostgresBase):
    """PostgreSQL queries for cached remote keys and actors, and inbound activities."""

    async def get_remote_key(self, key_id: str) -> RemoteKey | None:
        """A cached key."""
        row = await self._row("SELECT * FROM remote_keys WHERE key_id = $1", key_id)
        if row is None:
            return None
        return RemoteKey(row["key_id"], row["owner"], row["public_pem"], row["fetched_at"])

    async def put_remote_key(self, key: RemoteKey) -> None:
        """Insert or replace a cached key."""
        await self._execute(
            "INSERT INTO remote_keys (key_id, owner, public_pem, fetched_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO UPDATE SET "
            "owner = EXCLUDED.owner, public_pem = EXCLUDED.public_pem, "
            "fetched_at = EXCLUDED.fetched_at",
            key.key_id,
            key.owner,
            key.public_pem,
            ts(key.fetched_at),
        )

    async def delete_remote_key(self, key_id: str) -> None:
        """Forget a cached key."""
        await self._execute("DELETE FROM remote_keys WHERE key_id = $1", key_id)

    async def get_remote_actor(self, actor_id: str) -> RemoteActor | None:
        """A cached actor."""
        row = await self._row("SELECT * FROM remote_actors WHERE id = $1", actor_id)
        return _actor(row) if row else None

    async def put_remote_actor(self, actor: RemoteActor) -> None:
        """Insert or replace a cached actor."""
        a = actor
        await self._execute(
            "INSERT INTO remote_actors (id, inbox, shared_inbox, key_id, document, fetched_at, "
            "preferred_username, name, url, also_known_as, moved_to) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
            "ON CONFLICT (id) DO UPDATE SET inbox = EXCLUDED.inbox, "
            "shared_inbox = EXCLUDED.shared_inbox, key_id = EXCLUDED.key_id, "
            "document = EXCLUDED.document, fetched_at = EXCLUDED.fetched_at, "
            "preferred_username = EXCLUDED.preferred_username, name = EXCLUDED.name, "
            "url = EXCLUDED.url, also_known_as = EXCLUDED.also_known_as, "
            "moved_to = EXCLUDED.moved_to",
            a.id,
            a.inbox,
            a.shared_inbox,
            a.key_id,
            a.document,
            ts(a.fetched_at),
            a.preferred_username,
            a.name,
            a.url,
            list(a.also_known_as),
            a.moved_to,
        )

    async def delete_remote_actor(self, actor_id: str) -> None:
        """Forget a cached actor and its keys."""
        async with self.transaction():
            await self._execute("DELETE FROM remote_actors WHERE id = $1", actor_id)
            await self._execute("DELETE FROM remote_keys WHERE owner = $1", actor_id)

    async def record_inbound(self, inbound: NewInbound, now: datetime) -> int | None:
        """Store a verified activity; None when (origin, activity id) was seen before."""
        i = inbound
        inbound_id: int | None = await self._value(
            "INSERT INTO inbound (origin, activity_id, actor_id, type, payload, blog_id, "
            "received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (origin, activity_id) DO NOTHING RETURNING id",
            i.origin,
            i.activity_id,
            i.actor_id,
            i.type,
            i.payload,
            i.blog_id,
            ts(now),
        )
        return inbound_id

    async def store_inbound(
        self, inbound: NewInbound, job_for: Callable[[int], NewJob], now: datetime
    ) -> int | None:
        """Store a verified activity and enqueue ``job_for(its id)`` in one statement; None
        (and no job) when seen before."""
        # The id is drawn first so that the job can name it: then both rows go in with one
        # statement, atomic without a transaction (two round trips instead of four). A
        # duplicate uses up its id, as the column default would.
        inbound_id: int = await self._value(
            "SELECT nextval(pg_get_serial_sequence('inbound', 'id'))"
        )
        job = job_for(inbound_id)
        i = inbound
        stored: int | None = await self._value(
            "WITH added AS (INSERT INTO inbound (id, origin, activity_id, actor_id, type, "
            "payload, blog_id, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (origin, activity_id) DO NOTHING RETURNING id), "
            # The columns JobRows.enqueue writes, for the one job.
            "queued AS (INSERT INTO jobs (kind, payload, dedupe_key, host, run_at, created_at, "
            "updated_at) SELECT $9, $10::jsonb, $11, $12, $13, $8, $8 FROM added "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1), "
            # Word from the origin clears its failures (see the Protocol); a healthy host
            # matches no row. A data-modifying WITH runs whether or not it is read.
            f"heard AS (UPDATE hosts SET {HOST_HEARD_FROM}, last_success_at = $8 "
            "WHERE host = $2 AND (failures > 0 OR unavailable)) "
            # A queued job wakes the worker processes, as every enqueue does (notices.py).
            f"SELECT added.id FROM added LEFT JOIN LATERAL (SELECT {JOBS_NOTICE} FROM queued) "
            "AS notice ON TRUE",
            inbound_id,
            i.origin,
            i.activity_id,
            i.actor_id,
            i.type,
            i.payload,
            i.blog_id,
            ts(now),
            job.kind,
            job.payload,
            job.dedupe_key,
            job.host,
            ts(job.run_at or now),
        )
        return stored

    async def get_inbound(self, inbound_id: int) -> InboundActivity | None:
        """One stored activity."""
        row = await self._row("SELECT * FROM inbound WHERE id = $1", inbound_id)
        if row is None:
            return None
        return InboundActivity(
            id=row["id"],
            origin=row["origin"],
            activity_id=row["activity_id"],
            actor_id=row["actor_id"],
            type=row["type"],
            payload=row["payload"],
            blog_id=row["blog_id"],
            state=row["state"],
            error=row["error"],
            received_at=row["received_at"],
        )

    async def mark_inbound(
        self, inbound_id: int, state: InboundState, error: str | None = None
    ) -> None:
        """Record how processing ended."""
        await self._execute(
            "UPDATE inbound SET state = $1, error = $2 WHERE id = $3", state, error, inbound_id
        )

    async def origin_seen_before(self, origin: str, before: datetime) -> bool:
        """Whether any activity from ``origin`` was received before ``before``."""
        found = await self._value(
            "SELECT EXISTS (SELECT 1 FROM inbound WHERE origin = $1 AND received_at < $2)",
            origin,
            ts(before),
        )
        return bool(found)


def _actor(row: Row) -> RemoteActor:
    return RemoteActor(
        id=row["id"],
        inbox=row["inbox"],
        shared_inbox=row["shared_inbox"],
        key_id=row["key_id"],
        document=row["document"],
        fetched_at=row["fetched_at"],
        preferred_username=row["preferred_username"],
        name=row["name"],
        url=row["url"],
        also_known_as=tuple(row["also_known_as"]),
        moved_to=row["moved_to"],
    )
