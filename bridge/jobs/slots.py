"""The worker's local buffer of claimed jobs and its limits: at most ``concurrency`` jobs run
at once, at most ``per_host_limit`` of them talk to the same remote host.

Claimed jobs wait here until they may start: up to ``concurrency`` of them ready for the next
free slot (a finished job is followed at once, not after a round trip to the queue), and those
of a host at its limit (such a host is left out of further claims meanwhile). Jobs waiting for
a host are capped at ``4 × concurrency``, so memory stays bounded however skewed the queue is
towards a few hosts.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Iterable, Iterator

from bridge.store.records import Job


class JobSlots:
    """Claimed jobs, waiting or running, under the concurrency and per-host limits."""

    def __init__(self, concurrency: int, per_host_limit: int) -> None:
        if concurrency < 1 or per_host_limit < 1:
            raise ValueError("concurrency and per_host_limit must be at least 1")
        self.concurrency = concurrency
        self.per_host_limit = per_host_limit
        self.running: dict[asyncio.Task[None], Job] = {}
        self._waiting: dict[str | None, deque[Job]] = {}
        self._per_host: Counter[str] = Counter()
        self._max_waiting = 4 * concurrency

    def wanted(self) -> int:
        """How many jobs to claim: enough to fill the idle slots and to keep ``concurrency``
        more ready to start the moment a slot frees up, so that a finished job's successor
        does not wait for a round trip to the queue (on a busy event loop that round trip
        takes milliseconds, and the slot would idle meanwhile). Jobs waiting for a host at
        its limit are not ready; they count only against the cap on waiting jobs."""
        waiting = ready = 0
        for host, queue in self._waiting.items():
            waiting += len(queue)
            if host is None:
                ready += len(queue)
            else:
                ready += min(len(queue), max(0, self.per_host_limit - self._per_host[host]))
        room = self._max_waiting - waiting
        return min(room, 2 * self.concurrency - len(self.running) - ready)

    def busy_hosts(self) -> set[str]:
        """Hosts whose running and waiting jobs fill their limit: claiming more of them is
        pointless, what is held of them could not start sooner anyway."""
        load = Counter(self._per_host)
        for host, queue in self._waiting.items():
            if host is not None:
                load[host] += len(queue)
        return {host for host, n in load.items() if n >= self.per_host_limit}

    def add(self, jobs: Iterable[Job]) -> None:
        """Hold newly claimed jobs until they may start."""
        for job in jobs:
            self._waiting.setdefault(job.host, deque()).append(job)

    def ready(self) -> Iterator[Job]:
        """Take the waiting jobs that may start now; each must be passed to :meth:`started`
        before the next is asked for, so that the limits count it."""
        for host in list(self._waiting):
            queue = self._waiting[host]
            while queue and len(self.running) < self.concurrency and self._has_slot(host):
                yield queue.popleft()
            if not queue:
                del self._waiting[host]

    def started(self, task: asyncio.Task[None], job: Job) -> None:
        """``job`` runs in ``task``: it takes a slot (and one of its host's)."""
        self.running[task] = job
        if job.host is not None:
            self._per_host[job.host] += 1

    def finished(self, task: asyncio.Task[None]) -> Job:
        """``task`` ended: free its slots; returns its job."""
        job = self.running.pop(task)
        if job.host is not None:
            self._per_host[job.host] -= 1
            if self._per_host[job.host] <= 0:
                del self._per_host[job.host]
        return job

    def drop_waiting(self, job: Job) -> bool:
        """Forget ``job`` if it has not started (its lease was lost); True if it was waiting."""
        queue = self._waiting.get(job.host)
        if queue is None or job not in queue:
            return False
        queue.remove(job)
        return True

    def clear_waiting(self) -> None:
        """Forget every job not started (shutdown: they are released to the queue)."""
        self._waiting.clear()

    def _has_slot(self, host: str | None) -> bool:
        return host is None or self._per_host[host] < self.per_host_limit
