"""PostgreSQL queries for the durable job queue and the health of remote hosts.

Several worker processes share the queue: a claim is one ``UPDATE`` over a sub-select that
locks its rows ``FOR UPDATE SKIP LOCKED``, so two claimers never lease the same job and never
wait on each other; a lease that runs out makes the job claimable again. Statements that
make jobs claimable notify the other processes as they commit (:mod:`.notices`).

The claim walks the ``jobs_due`` index in ``(run_at, id)`` order and stops at its limit, a
few dozen rows whatever the queue's depth, once the planner has statistics of ``jobs``. On a
table never analyzed it guesses from default selectivities that one row is due, and sorts
every due job instead (a bitmap scan of ``jobs_due`` and ``jobs_by_kind``): 90–160 ms per
claim with 100,000 queued, against 0.05 ms. A new database meets that with its first large
fan-out, before autovacuum's first analyze (a minute or more), so the first large batch
enqueued into a table without statistics analyzes it (:data:`ANALYZE_BATCH`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from bridge.errors import StoreError
from bridge.store.postgres.connection import PostgresBase, Row, ts
from bridge.store.postgres.notices import notifying
from bridge.store.records import HostStatus, Job, JobCount, JobState, NewJob

ANALYZE_BATCH = 500
"""Jobs enqueued at once that make a table without statistics worth analyzing (a fan-out
page is 1,000)."""


HOST_HEARD_FROM = "failures = 0, first_failure_at = NULL, unavailable = FALSE"
"""What hearing from a host clears (``SET`` assignments, shared with the inbox's write)."""


class JobRows(PostgresBase):
    """PostgreSQL queries for the durable job queue and the health of remote hosts."""

    _jobs_have_statistics = False

    async def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> int:
        """Add jobs, skipping those whose dedupe key exists; return how many were added."""
        if not jobs:
            return 0
        # One statement for the whole batch (a fan-out enqueues thousands), rows inserted
        # in the given order so ids follow it; the notice goes with it.
        added: int = await self._value(
            notifying(
                "INSERT INTO jobs (kind, payload, dedupe_key, host, run_at, created_at, "
                "updated_at) SELECT kind, payload, dedupe_key, host, run_at, $6, $6 FROM unnest("
                "$1::text[], $2::jsonb[], $3::text[], $4::text[], $5::timestamptz[]) "
                "WITH ORDINALITY AS j (kind, payload, dedupe_key, host, run_at, n) ORDER BY n "
                "ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1"
            ),
            [job.kind for job in jobs],
            [job.payload for job in jobs],
            [job.dedupe_key for job in jobs],
            [job.host for job in jobs],
            [ts(job.run_at or now) for job in jobs],
            ts(now),
        )
        if added >= ANALYZE_BATCH and not self._jobs_have_statistics:
            await self._analyze_jobs_once()
        return added

    async def _analyze_jobs_once(self) -> None:
        """Give the planner statistics of ``jobs`` if it has none (see the module docstring);
        inside a transaction ANALYZE counts the transaction's own new rows."""
        known = await self._value(
            "SELECT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename = 'jobs' AND attname = 'state')"
        )
        if not known:
            await self._run(lambda db: db.execute("ANALYZE jobs"))
        self._jobs_have_statistics = True

    async def claim_jobs(
        self,
        kinds: Collection[str],
        now: datetime,
        limit: int,
        lease_seconds: float,
        worker: str,
        skip_hosts: Collection[str] = (),
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs (queued, or running with an expired lease), oldest
        due first, skipping ``skip_hosts`` and hosts marked unavailable."""
        if limit <= 0 or not kinds:
            return []
        rows = await self._rows(
            "UPDATE jobs SET state = 'running', lease_until = $1, claimed_by = $2, "
            "updated_at = $3 WHERE id IN ("
            "SELECT id FROM jobs WHERE state IN ('queued', 'running') AND run_at <= $3 "
            "AND (state = 'queued' OR lease_until < $3) AND kind = ANY($4::text[]) "
            "AND (host IS NULL OR NOT (host = ANY($5::text[]))) "
            "AND (host IS NULL OR NOT EXISTS "
            "(SELECT 1 FROM hosts WHERE hosts.host = jobs.host AND hosts.unavailable)) "
            "ORDER BY run_at, id LIMIT $6 FOR UPDATE SKIP LOCKED) RETURNING *",
            ts(now + timedelta(seconds=lease_seconds)),
            worker,
            ts(now),
            list(kinds),
            list(skip_hosts),
            limit,
        )
        return sorted((_job(row) for row in rows), key=lambda job: (job.run_at, job.id))

    async def extend_lease(self, job_id: int, worker: str, until: datetime) -> bool:
        """Keep a long job claimed; False when the lease was lost."""
        changed = await self._execute(
            "UPDATE jobs SET lease_until = $1 "
            "WHERE id = $2 AND claimed_by = $3 AND state = 'running'",
            ts(until),
            job_id,
            worker,
        )
        return changed > 0

    async def finish_job(self, job_id: int, now: datetime, status: int | None = None) -> None:
        """Mark a job done."""
        await self._execute(
            "UPDATE jobs SET state = 'done', attempts = attempts + 1, last_status = $1, "
            "lease_until = NULL, updated_at = $2 WHERE id = $3",
            status,
            ts(now),
            job_id,
        )

    async def finish_jobs(self, done: Sequence[tuple[int, datetime, int | None]]) -> None:
        """Mark many jobs done (``(job id, finished at, status)`` each) in one statement."""
        if not done:
            return
        await self._execute(
            "UPDATE jobs SET state = 'done', attempts = jobs.attempts + 1, "
            "last_status = d.status, lease_until = NULL, updated_at = d.at "
            "FROM unnest($1::bigint[], $2::timestamptz[], $3::integer[]) AS d (id, at, status) "
            "WHERE jobs.id = d.id",
            [job_id for job_id, _, _ in done],
            [ts(at) for _, at, _ in done],
            [status for _, _, status in done],
        )

    async def retry_job(
        self, job_id: int, now: datetime, run_at: datetime, status: int | None, error: str | None
    ) -> None:
        """Count a failed attempt and queue the job again for ``run_at``."""
        await self._execute(
            "UPDATE jobs SET state = 'queued', attempts = attempts + 1, run_at = $1, "
            "last_status = $2, last_error = $3, lease_until = NULL, claimed_by = NULL, "
            "updated_at = $4 WHERE id = $5",
            ts(run_at),
            status,
            error,
            ts(now),
            job_id,
        )

    async def bury_job(
        self, job_id: int, now: datetime, status: int | None, error: str | None
    ) -> None:
        """Count a failed attempt and give up."""
        await self._execute(
            "UPDATE jobs SET state = 'dead', attempts = attempts + 1, last_status = $1, "
            "last_error = $2, lease_until = NULL, updated_at = $3 WHERE id = $4",
            status,
            error,
            ts(now),
            job_id,
        )

    async def release_jobs(self, worker: str, now: datetime) -> int:
        """Put a worker's running jobs back in the queue (another process may take them)."""
        released: int = await self._value(
            notifying(
                "UPDATE jobs SET state = 'queued', lease_until = NULL, claimed_by = NULL, "
                "updated_at = $1 WHERE state = 'running' AND claimed_by = $2 RETURNING 1"
            ),
            ts(now),
            worker,
        )
        return released

    async def get_job(self, job_id: int) -> Job | None:
        """One job."""
        row = await self._row("SELECT * FROM jobs WHERE id = $1", job_id)
        return _job(row) if row else None

    async def job_counts(self) -> list[JobCount]:
        """Depth of every (kind, state) pair."""
        rows = await self._rows(
            "SELECT kind, state, COUNT(*) AS n, MIN(run_at) AS oldest FROM jobs "
            "GROUP BY kind, state ORDER BY kind, state"
        )
        return [JobCount(r["kind"], r["state"], r["n"], r["oldest"]) for r in rows]

    async def list_jobs(
        self, state: JobState, kind: str | None = None, limit: int = 50
    ) -> list[Job]:
        """Jobs in ``state``, most recently updated first."""
        rows = await self._rows(
            "SELECT * FROM jobs WHERE state = $1 AND ($2::text IS NULL OR kind = $2) "
            "ORDER BY updated_at DESC, id DESC LIMIT $3",
            state,
            kind,
            limit,
        )
        return [_job(row) for row in rows]

    async def requeue_dead(self, now: datetime, kind: str | None = None) -> int:
        """Queue dead jobs again with a fresh attempt count."""
        requeued: int = await self._value(
            notifying(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1 "
                "WHERE state = 'dead' AND ($2::text IS NULL OR kind = $2) RETURNING 1"
            ),
            ts(now),
            kind,
        )
        return requeued

    async def prune_jobs(self, before: datetime) -> int:
        """Delete done jobs last updated before ``before``."""
        return await self._execute(
            "DELETE FROM jobs WHERE state = 'done' AND updated_at < $1", ts(before)
        )

    async def cancel_orphaned_deliveries(self, blog_id: int, inbox: str, now: datetime) -> int:
        """Close the blog's queued and failing deliveries to an inbox no follower uses now."""
        return await self._execute(
            "UPDATE jobs SET state = 'done', last_error = 'cancelled: no follower at this inbox', "
            "lease_until = NULL, updated_at = $1 WHERE kind = 'deliver' "
            "AND state IN ('queued', 'dead') AND payload->>'inbox' = $2 "
            "AND payload->>'blog' = (SELECT handle FROM blogs WHERE id = $3) "
            "AND NOT EXISTS (SELECT 1 FROM followers WHERE blog_id = $3 AND state = 'accepted' "
            "AND COALESCE(shared_inbox, inbox) = $2)",
            ts(now),
            inbox,
            blog_id,
        )

    async def cancel_jobs_for_domain(self, domain: str, now: datetime) -> int:
        """Close the queued and failing jobs that talk to ``domain`` or its subdomains."""
        domain = domain.lower().strip(".")
        return await self._execute(
            "UPDATE jobs SET state = 'done', last_error = 'cancelled: domain blocked', "
            "lease_until = NULL, updated_at = $1 WHERE state IN ('queued', 'dead') AND "
            "(host = $2 OR host LIKE $3 OR host LIKE $4 OR host LIKE $5)",
            ts(now),
            domain,
            f"{domain}:%",
            f"%.{domain}",
            f"%.{domain}:%",
        )

    async def get_host(self, host: str) -> HostStatus | None:
        """What is known of a host."""
        row = await self._row("SELECT * FROM hosts WHERE host = $1", host)
        return _host(row) if row else None

    async def record_host_failure(self, host: str, now: datetime) -> HostStatus:
        """Count a failed delivery; the first failure starts the unavailability clock."""
        row = await self._row(
            "INSERT INTO hosts (host, failures, first_failure_at, last_failure_at) "
            "VALUES ($1, 1, $2, $2) ON CONFLICT (host) DO UPDATE SET "
            "failures = hosts.failures + 1, last_failure_at = EXCLUDED.last_failure_at, "
            "first_failure_at = COALESCE(hosts.first_failure_at, EXCLUDED.first_failure_at) "
            "RETURNING *",
            host,
            ts(now),
        )
        if row is None:
            raise StoreError(f"upsert of host {host!r} returned nothing")
        return _host(row)

    async def record_host_success(self, host: str, now: datetime) -> None:
        """The host answered: clear failures and unavailability."""
        await self._execute(
            "INSERT INTO hosts (host, last_success_at) VALUES ($1, $2) "
            f"ON CONFLICT (host) DO UPDATE SET {HOST_HEARD_FROM}, "
            "last_success_at = EXCLUDED.last_success_at",
            host,
            ts(now),
        )

    async def mark_host_unavailable(self, host: str, now: datetime) -> None:
        """Skip the host's jobs until it is heard from again."""
        await self._execute(
            "INSERT INTO hosts (host, unavailable, first_failure_at, last_failure_at) "
            "VALUES ($1, TRUE, $2, $2) ON CONFLICT (host) DO UPDATE SET unavailable = TRUE",
            host,
            ts(now),
        )

    async def list_hosts(self, failing_only: bool = True) -> list[HostStatus]:
        """Hosts with failures (or all known hosts)."""
        where = "WHERE failures > 0 OR unavailable" if failing_only else ""
        rows = await self._rows(f"SELECT * FROM hosts {where} ORDER BY host")
        return [_host(row) for row in rows]

    async def set_signature_scheme(self, host: str, scheme: str) -> None:
        """Remember which signature scheme the host accepted."""
        await self._execute(
            "INSERT INTO hosts (host, signature_scheme) VALUES ($1, $2) "
            "ON CONFLICT (host) DO UPDATE SET signature_scheme = EXCLUDED.signature_scheme",
            host,
            scheme,
        )


def _job(row: Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        payload=row["payload"],
        dedupe_key=row["dedupe_key"],
        host=row["host"],
        state=row["state"],
        attempts=row["attempts"],
        run_at=row["run_at"],
        lease_until=row["lease_until"],
        claimed_by=row["claimed_by"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _host(row: Row) -> HostStatus:
    return HostStatus(
        host=row["host"],
        failures=row["failures"],
        first_failure_at=row["first_failure_at"],
        last_failure_at=row["last_failure_at"],
        last_success_at=row["last_success_at"],
        unavailable=row["unavailable"],
        signature_scheme=row["signature_scheme"],
    )
