"""SQLite queries for the durable job queue and the health of remote hosts."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from bridge.store.records import HostStatus, Job, JobCount, JobState, NewJob
from bridge.store.sqlite.connection import dt, dt_required, ts
from bridge.store.sqlite.processes import ProcessRows

HOST_HEARD_FROM = "failures = 0, first_failure_at = NULL, unavailable = 0"
"""What hearing from a host clears (``SET`` assignments, shared with the inbox's write)."""


class JobRows(ProcessRows):
    """SQLite queries for the durable job queue and the health of remote hosts."""

    async def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> int:
        """Add jobs, skipping those whose dedupe key exists; return how many were added."""
        if not jobs:
            return 0
        # One statement for the batch (a fan-out page enqueues a thousand jobs), in one
        # transaction and one hand-off to the database thread.
        added = await self._atomic(functools.partial(insert_jobs, jobs=jobs, now=now))
        if added:
            self._jobs_claimable()
        return added

    async def claim_jobs(
        self,
        kinds: Collection[str],
        now: datetime,
        limit: int,
        lease_seconds: float,
        worker: str,
        skip_hosts: Collection[str] = (),
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs, oldest due first."""
        if limit <= 0 or not kinds:
            return []
        kind_marks = ",".join("?" * len(kinds))
        skip = list(skip_hosts)
        # ``NULL NOT IN (...)`` is not true in SQL: hostless jobs must be spelled out.
        skip_sql = (
            f"AND (host IS NULL OR host NOT IN ({','.join('?' * len(skip))})) " if skip else ""
        )
        now_text = ts(now)
        # One statement, so one round trip to the database thread and one commit: the
        # claim is the queue's hot path. ``state IN (...)`` first lets SQLite walk the
        # (state, run_at) index in order for each state and stop at the limit; spelled as an
        # OR of the two states it collected and sorted every due job (2.8 ms instead of
        # 50 us with 3,000 queued).
        claimed = await self._rows(
            "UPDATE jobs SET state = 'running', lease_until = ?, claimed_by = ?, updated_at = ? "
            "WHERE id IN (SELECT id FROM jobs WHERE state IN ('queued', 'running') "
            f"AND kind IN ({kind_marks}) AND run_at <= ? "
            "AND (state = 'queued' OR lease_until < ?) "
            f"{skip_sql}"
            "AND (host IS NULL OR host NOT IN (SELECT host FROM hosts WHERE unavailable = 1)) "
            "ORDER BY run_at, id LIMIT ?) RETURNING *",
            (
                ts(now + timedelta(seconds=lease_seconds)),
                worker,
                now_text,
                *kinds,
                now_text,
                now_text,
                *skip,
                limit,
            ),
        )
        return sorted((_job(row) for row in claimed), key=lambda job: (job.run_at, job.id))

    async def extend_lease(self, job_id: int, worker: str, until: datetime) -> bool:
        """Keep a long job claimed; False when the lease was lost."""
        changed = await self._statement(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND claimed_by = ? AND state = 'running'",
            (ts(until), job_id, worker),
        )
        return changed > 0

    async def finish_job(self, job_id: int, now: datetime, status: int | None = None) -> None:
        """Mark a job done."""
        await self._statement(
            "UPDATE jobs SET state = 'done', attempts = attempts + 1, last_status = ?, "
            "lease_until = NULL, updated_at = ? WHERE id = ?",
            (status, ts(now), job_id),
        )

    async def finish_jobs(self, done: Sequence[tuple[int, datetime, int | None]]) -> None:
        """Mark many jobs done (``(job id, finished at, status)`` each) in one statement."""
        if not done:
            return
        rows = [(job_id, status, ts(at)) for job_id, at, status in done]
        if len(rows) <= _FINISH_CHUNK:
            await self._statement(_finish_sql(len(rows)), [v for row in rows for v in row])
            return
        async with self.transaction():
            for n in range(0, len(rows), _FINISH_CHUNK):
                chunk = rows[n : n + _FINISH_CHUNK]
                await self._statement(_finish_sql(len(chunk)), [v for row in chunk for v in row])

    async def _statement(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement (committing by itself outside a transaction); return the rows
        it changed."""
        return (await self._write(sql, params)).rowcount

    async def retry_job(
        self, job_id: int, now: datetime, run_at: datetime, status: int | None, error: str | None
    ) -> None:
        """Count a failed attempt and queue the job again for ``run_at``."""
        await self._statement(
            "UPDATE jobs SET state = 'queued', attempts = attempts + 1, run_at = ?, "
            "last_status = ?, last_error = ?, lease_until = NULL, claimed_by = NULL, "
            "updated_at = ? WHERE id = ?",
            (ts(run_at), status, error, ts(now), job_id),
        )

    async def bury_job(
        self, job_id: int, now: datetime, status: int | None, error: str | None
    ) -> None:
        """Count a failed attempt and give up."""
        await self._statement(
            "UPDATE jobs SET state = 'dead', attempts = attempts + 1, last_status = ?, "
            "last_error = ?, lease_until = NULL, updated_at = ? WHERE id = ?",
            (status, error, ts(now), job_id),
        )

    async def release_jobs(self, worker: str, now: datetime) -> int:
        """Put a worker's running jobs back in the queue."""
        changed = await self._statement(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, claimed_by = NULL, "
            "updated_at = ? WHERE state = 'running' AND claimed_by = ?",
            (ts(now), worker),
        )
        if changed:
            self._jobs_claimable()
        return changed

    async def get_job(self, job_id: int) -> Job | None:
        """One job."""
        row = await self._row("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    async def job_counts(self) -> list[JobCount]:
        """Depth of every (kind, state) pair."""
        rows = await self._rows(
            "SELECT kind, state, COUNT(*) AS n, MIN(run_at) AS oldest FROM jobs "
            "GROUP BY kind, state ORDER BY kind, state"
        )
        return [JobCount(r["kind"], r["state"], r["n"], dt(r["oldest"])) for r in rows]

    async def list_jobs(
        self, state: JobState, kind: str | None = None, limit: int = 50
    ) -> list[Job]:
        """Jobs in ``state``, most recently updated first."""
        rows = await self._rows(
            "SELECT * FROM jobs WHERE state = ? AND (? IS NULL OR kind = ?) "
            "ORDER BY updated_at DESC, id DESC LIMIT ?",
            (state, kind, kind, limit),
        )
        return [_job(row) for row in rows]

    async def requeue_dead(self, now: datetime, kind: str | None = None) -> int:
        """Queue dead jobs again with a fresh attempt count."""
        changed = await self._statement(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?, updated_at = ? "
            "WHERE state = 'dead' AND (? IS NULL OR kind = ?)",
            (ts(now), ts(now), kind, kind),
        )
        if changed:
            self._jobs_claimable()
        return changed

    async def prune_jobs(self, before: datetime) -> int:
        """Delete done jobs last updated before ``before``."""
        changed = await self._statement(
            "DELETE FROM jobs WHERE state = 'done' AND updated_at < ?", (ts(before),)
        )
        return changed

    async def cancel_jobs_for_domain(self, domain: str, now: datetime) -> int:
        """Close the queued and failing jobs that talk to ``domain`` or its subdomains."""
        domain = domain.lower().strip(".")
        return await self._statement(
            "UPDATE jobs SET state = 'done', last_error = 'cancelled: domain blocked', "
            "lease_until = NULL, updated_at = ? WHERE state IN ('queued', 'dead') AND "
            "(host = ? OR host LIKE ? OR host LIKE ? OR host LIKE ?)",
            (ts(now), domain, f"{domain}:%", f"%.{domain}", f"%.{domain}:%"),
        )

    async def cancel_orphaned_deliveries(self, blog_id: int, inbox: str, now: datetime) -> int:
        """Close the blog's queued and failing deliveries to an inbox no follower uses now."""
        return await self._statement(
            "UPDATE jobs SET state = 'done', last_error = 'cancelled: no follower at this inbox', "
            "lease_until = NULL, updated_at = ? WHERE kind = 'deliver' "
            "AND state IN ('queued', 'dead') AND json_extract(payload, '$.inbox') = ? "
            "AND json_extract(payload, '$.blog') = (SELECT handle FROM blogs WHERE id = ?) "
            "AND NOT EXISTS (SELECT 1 FROM followers WHERE blog_id = ? AND state = 'accepted' "
            "AND COALESCE(shared_inbox, inbox) = ?)",
            (ts(now), inbox, blog_id, blog_id, inbox),
        )

    async def get_host(self, host: str) -> HostStatus | None:
        """What is known of a host."""
        row = await self._row("SELECT * FROM hosts WHERE host = ?", (host,))
        return _host(row) if row else None

    async def record_host_failure(self, host: str, now: datetime) -> HostStatus:
        """Count a failed delivery; the first failure starts the unavailability clock."""
        async with self.transaction():
            await self._write(
                "INSERT INTO hosts (host, failures, first_failure_at, last_failure_at) "
                "VALUES (?, 1, ?, ?) ON CONFLICT (host) DO UPDATE SET "
                "failures = hosts.failures + 1, last_failure_at = excluded.last_failure_at, "
                "first_failure_at = COALESCE(hosts.first_failure_at, excluded.first_failure_at)",
                (host, ts(now), ts(now)),
            )
            status = await self.get_host(host)
        assert status is not None
        return status

    async def record_host_success(self, host: str, now: datetime) -> None:
        """The host answered: clear failures and unavailability."""
        await self._statement(
            "INSERT INTO hosts (host, last_success_at) VALUES (?, ?) "
            f"ON CONFLICT (host) DO UPDATE SET {HOST_HEARD_FROM}, "
            "last_success_at = excluded.last_success_at",
            (host, ts(now)),
        )

    async def mark_host_unavailable(self, host: str, now: datetime) -> None:
        """Skip the host's jobs until it is heard from again."""
        await self._statement(
            "INSERT INTO hosts (host, unavailable, first_failure_at, last_failure_at) "
            "VALUES (?, 1, ?, ?) ON CONFLICT (host) DO UPDATE SET unavailable = 1",
            (host, ts(now), ts(now)),
        )

    async def list_hosts(self, failing_only: bool = True) -> list[HostStatus]:
        """Hosts with failures (or all known hosts)."""
        where = "WHERE failures > 0 OR unavailable = 1" if failing_only else ""
        rows = await self._rows(f"SELECT * FROM hosts {where} ORDER BY host")
        return [_host(row) for row in rows]

    async def set_signature_scheme(self, host: str, scheme: str) -> None:
        """Remember which signature scheme the host accepted."""
        await self._statement(
            "INSERT INTO hosts (host, signature_scheme) VALUES (?, ?) "
            "ON CONFLICT (host) DO UPDATE SET signature_scheme = excluded.signature_scheme",
            (host, scheme),
        )


def insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], now: datetime) -> int:
    """Insert jobs, skipping those whose dedupe key exists; how many were added (on the
    database thread, inside the caller's transaction)."""
    # executemany's row count sums the rows each insert added: duplicates are not counted.
    cursor = conn.executemany(
        "INSERT INTO jobs (kind, payload, dedupe_key, host, run_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
        [
            (
                job.kind,
                json.dumps(job.payload, ensure_ascii=False),
                job.dedupe_key,
                job.host,
                ts(job.run_at or now),
                ts(now),
                ts(now),
            )
            for job in jobs
        ],
    )
    added = cursor.rowcount
    cursor.close()
    return added


_FINISH_CHUNK = 500
"""Jobs per ``finish_jobs`` statement (three parameters each, well below SQLite's cap)."""


@functools.cache
def _finish_sql(count: int) -> str:
    values = ",".join(["(?, ?, ?)"] * count)
    return (
        "UPDATE jobs SET state = 'done', attempts = attempts + 1, last_status = d.status, "
        "lease_until = NULL, updated_at = d.at FROM (SELECT column1 AS id, column2 AS status, "
        f"column3 AS at FROM (VALUES {values})) AS d WHERE jobs.id = d.id"
    )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        dedupe_key=row["dedupe_key"],
        host=row["host"],
        state=row["state"],
        attempts=row["attempts"],
        run_at=dt_required(row["run_at"]),
        lease_until=dt(row["lease_until"]),
        claimed_by=row["claimed_by"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=dt_required(row["created_at"]),
        updated_at=dt_required(row["updated_at"]),
    )


def _host(row: sqlite3.Row) -> HostStatus:
    return HostStatus(
        host=row["host"],
        failures=row["failures"],
        first_failure_at=dt(row["first_failure_at"]),
        last_failure_at=dt(row["last_failure_at"]),
        last_success_at=dt(row["last_success_at"]),
        unavailable=bool(row["unavailable"]),
        signature_scheme=row["signature_scheme"],
    )
