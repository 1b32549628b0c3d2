"""Store roles of federation: followers, the job queue, remote hosts, caches, inbound, blocks."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Protocol

from bridge.store.records import (
    BlockSeverity,
    DomainBlock,
    Follower,
    FollowerState,
    HostStatus,
    InboundActivity,
    InboundState,
    Job,
    JobCount,
    JobState,
    NewInbound,
    NewJob,
    RemoteActor,
    RemoteKey,
)


class FollowerStore(Protocol):
    """Remote followers of our blogs."""

    async def count_all_followers(self) -> int:
        """Accepted followers of every blog together (one actor following two blogs counts
        twice)."""
        ...

    async def count_followers(self, blog_id: int) -> int:
        """Accepted followers of a blog."""
        ...

    async def list_followers(
        self, blog_id: int, limit: int, offset: int = 0, state: FollowerState = "accepted"
    ) -> list[Follower]:
        """Followers in ``state``, oldest first."""
        ...

    async def get_follower(self, blog_id: int, actor_id: str) -> Follower | None:
        """One follower (any state), if present."""
        ...

    async def follows_of_actor(self, actor_id: str) -> list[Follower]:
        """Every follow of the actor (any blog, any state), by blog id."""
        ...

    async def put_follower(self, follower: Follower) -> None:
        """Insert a follower or update its inboxes, state and Follow id (keeps created_at)."""
        ...

    async def remove_follower(self, blog_id: int, actor_id: str) -> bool:
        """Drop a follower; True when there was one."""
        ...

    async def remove_actor_everywhere(self, actor_id: str) -> list[int]:
        """Drop the actor from every blog's followers; return those blog ids."""
        ...

    async def remove_followers_by_inbox(self, inbox: str) -> int:
        """Drop followers whose personal inbox is ``inbox`` (it answered 410 Gone)."""
        ...

    async def delivery_inboxes(self, blog_id: int, after: str, limit: int) -> list[str]:
        """Distinct inboxes (shared where offered) of accepted followers, sorted, after ``after``.

        Keyset pagination keeps fan-out memory flat however many followers a blog has.
        """
        ...

    async def followers_on_host(self, blog_id: int, host: str) -> list[str]:
        """Ids of accepted followers whose id is on ``host`` (FEP-8fcf partial collection)."""
        ...


class JobStore(Protocol):
    """The durable job queue."""

    async def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> int:
        """Add jobs; those whose ``dedupe_key`` exists already are skipped. Returns how many
        were added."""
        ...

    async def claim_jobs(
        self,
        kinds: Collection[str],
        now: datetime,
        limit: int,
        lease_seconds: float,
        worker: str,
        skip_hosts: Collection[str] = (),
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs (queued, or running with an expired lease), oldest due
        first, skipping ``skip_hosts`` and hosts marked unavailable."""
        ...

    async def extend_lease(self, job_id: int, worker: str, until: datetime) -> bool:
        """Keep a long job claimed; False when the lease was lost."""
        ...

    async def finish_job(self, job_id: int, now: datetime, status: int | None = None) -> None:
        """Mark a job done."""
        ...

    async def finish_jobs(self, done: Sequence[tuple[int, datetime, int | None]]) -> None:
        """Mark many jobs done at once, each ``(job id, finished at, status)`` as
        :meth:`finish_job` would, in one statement (a worker's batch of outcomes). Joins the
        caller's transaction."""
        ...

    async def retry_job(
        self, job_id: int, now: datetime, run_at: datetime, status: int | None, error: str | None
    ) -> None:
        """Count a failed attempt and queue the job again for ``run_at``."""
        ...

    async def bury_job(
        self, job_id: int, now: datetime, status: int | None, error: str | None
    ) -> None:
        """Count a failed attempt and give up: the job is dead until requeued."""
        ...

    async def release_jobs(self, worker: str, now: datetime) -> int:
        """Put a worker's running jobs back in the queue (clean shutdown, or restart)."""
        ...

    async def get_job(self, job_id: int) -> Job | None:
        """One job."""
        ...

    async def job_counts(self) -> list[JobCount]:
        """Depth of every (kind, state) pair."""
        ...

    async def list_jobs(
        self, state: JobState, kind: str | None = None, limit: int = 50
    ) -> list[Job]:
        """Jobs in ``state`` (most recently updated first)."""
        ...

    async def requeue_dead(self, now: datetime, kind: str | None = None) -> int:
        """Queue dead jobs again with a fresh attempt count; return how many."""
        ...

    async def prune_jobs(self, before: datetime) -> int:
        """Delete done jobs last updated before ``before``."""
        ...

    async def cancel_jobs_for_domain(self, domain: str, now: datetime) -> int:
        """Close the queued and failing jobs that talk to ``domain`` or a subdomain of it (any
        port): state done, last error "cancelled: domain blocked". Returns how many."""
        ...

    async def cancel_orphaned_deliveries(self, blog_id: int, inbox: str, now: datetime) -> int:
        """Close the blog's queued and failing deliveries to ``inbox`` when no accepted
        follower of the blog receives there any more (its last one was removed or blocked):
        state done, last error "cancelled: no follower at this inbox". Returns how many."""
        ...


class HostStore(Protocol):
    """Health of remote hosts."""

    async def get_host(self, host: str) -> HostStatus | None:
        """What is known of a host."""
        ...

    async def record_host_failure(self, host: str, now: datetime) -> HostStatus:
        """Count a failed delivery (the first failure starts the unavailability clock)."""
        ...

    async def record_host_success(self, host: str, now: datetime) -> None:
        """The host answered: clear failures and unavailability."""
        ...

    async def mark_host_unavailable(self, host: str, now: datetime) -> None:
        """Skip the host's jobs until it is heard from again."""
        ...

    async def list_hosts(self, failing_only: bool = True) -> list[HostStatus]:
        """Hosts with failures (or all known hosts)."""
        ...

    async def set_signature_scheme(self, host: str, scheme: str) -> None:
        """Remember which signature scheme the host accepted (double-knock)."""
        ...


class RemoteCacheStore(Protocol):
    """Cached remote keys and actor documents."""

    async def get_remote_key(self, key_id: str) -> RemoteKey | None:
        """A cached key."""
        ...

    async def put_remote_key(self, key: RemoteKey) -> None:
        """Insert or replace a cached key."""
        ...

    async def delete_remote_key(self, key_id: str) -> None:
        """Forget a cached key."""
        ...

    async def get_remote_actor(self, actor_id: str) -> RemoteActor | None:
        """A cached actor."""
        ...

    async def put_remote_actor(self, actor: RemoteActor) -> None:
        """Insert or replace a cached actor."""
        ...

    async def delete_remote_actor(self, actor_id: str) -> None:
        """Forget a cached actor (and its keys)."""
        ...


class InboundStore(Protocol):
    """Activities received at our inboxes."""

    async def record_inbound(self, inbound: NewInbound, now: datetime) -> int | None:
        """Store a verified activity; None when (origin, activity id) was seen before."""
        ...

    async def store_inbound(
        self, inbound: NewInbound, job_for: Callable[[int], NewJob], now: datetime
    ) -> int | None:
        """Store a verified activity and enqueue the job ``job_for`` makes of its id, both
        or neither (as :meth:`record_inbound` then :meth:`JobStore.enqueue` in one
        transaction, in fewer round trips); None, and no job, when (origin, activity id)
        was seen before. ``job_for`` must be quick and pure: a backend may call it while
        holding its database. Joins the caller's transaction.

        A verified activity is word from its origin: the host status of ``inbound.origin``,
        if it counts failures or is unavailable, is cleared as by
        :meth:`HostStore.record_host_success` (duplicates too), in the same transaction; a
        healthy or unknown host is not written."""
        ...

    async def get_inbound(self, inbound_id: int) -> InboundActivity | None:
        """One stored activity."""
        ...

    async def mark_inbound(
        self, inbound_id: int, state: InboundState, error: str | None = None
    ) -> None:
        """Record how processing ended."""
        ...

    async def origin_seen_before(self, origin: str, before: datetime) -> bool:
        """Whether any activity from ``origin`` (a signer's host) was received before
        ``before``: a server never heard from until now is new (moderation weighs that)."""
        ...


def rule_domains(host: str) -> list[str]:
    """The domains whose rule can cover ``host``: the host itself and each parent domain,
    most specific first (lower-case, without port or trailing dot)."""
    labels = host.lower().split(":", 1)[0].strip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


class BlockStore(Protocol):
    """Domains the operator blocked or limited.

    A rule covers its subdomains; where rules for a host and a parent domain both exist, the
    most specific one applies (as in Mastodon), so ``limit`` on ``a.example`` softens a
    ``block`` of ``example``.
    """

    async def block_domain(
        self, domain: str, reason: str | None, now: datetime, severity: BlockSeverity = "block"
    ) -> None:
        """Block (or limit) a domain and its subdomains; again replaces reason and severity."""
        ...

    async def unblock_domain(self, domain: str) -> bool:
        """Lift a block; True when there was one."""
        ...

    async def list_domain_blocks(self) -> list[DomainBlock]:
        """All blocks, by domain."""
        ...

    async def is_domain_blocked(self, host: str) -> bool:
        """Whether the rule for ``host`` (its own, or a parent domain's) is ``block``."""
        ...

    async def domain_block_severity(self, host: str) -> BlockSeverity | None:
        """The severity of the most specific rule for ``host`` or a parent domain, if any."""
        ...
