"""Prometheus metrics of one bridge process: what it did (counters, latency histograms) and
what the store holds (queue, followers, blogs), in the text exposition format.

Each :class:`Metrics` has its own ``CollectorRegistry``: nothing is registered in
prometheus-client's global default registry, so several applications (and tests) in one
process never see each other's numbers. One lives on every :class:`~bridge.context.
BridgeContext` (``ctx.metrics``); the web middleware, the job worker, the poller and the inbox
count into it, ``GET /metrics`` (:mod:`bridge.web.metrics_routes`) renders it.

Label values are always drawn from small fixed sets, never from what a remote party chose:
routes are the route's template (``/users/{handle}/inbox``), activity types outside
:data:`ACTIVITY_TYPES` are ``other``, and a delivery's host is described by its *host class*
(:func:`host_class`), never by its name. Per-process counters add up across processes in
PromQL (``sum by (outcome) (rate(feedfed_deliveries_total[5m]))``); the store gauges are the
same in every process sharing a database (``max`` them rather than ``sum``).

Store gauges are read at scrape time: :meth:`Metrics.refresh_store` asks the store for the
queue depths, follower and blog counts at most once per ``store_cache_seconds``, so frequent
scrapes or several Prometheus servers cost the database one round of queries per interval.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.errors import AddressNotAllowed, UnsupportedURL
from bridge.store.base import Store
from bridge.store.records import JobCount

NAMESPACE = "feedfed"

ACTIVITY_TYPES = frozenset(
    {
        # ActivityStreams 2.0 vocabulary, activity types
        "Accept",
        "Add",
        "Announce",
        "Arrive",
        "Block",
        "Create",
        "Delete",
        "Dislike",
        "Flag",
        "Follow",
        "Ignore",
        "Invite",
        "Join",
        "Leave",
        "Like",
        "Listen",
        "Move",
        "Offer",
        "Question",
        "Read",
        "Reject",
        "Remove",
        "TentativeAccept",
        "TentativeReject",
        "Travel",
        "Undo",
        "Update",
        "View",
        # Misskey, Pleroma and Akkoma emoji reactions, which the bridge handles
        "EmojiReact",
    }
)
"""Activity types counted under their own name; anything else is ``other``."""

HOST_CLASSES = ("2xx", "3xx", "4xx", "5xx", "timeout", "connection", "refused", "error")
"""How a delivery's host answered (see :func:`host_class`)."""

JOB_OUTCOMES = ("done", "retry", "dead")
POLL_OUTCOMES = ("new-content", "not-modified", "error", "gone")
FEED_STATUSES = ("new", "ok", "failing", "gone")
AGED_STATES = ("queued", "running")
"""Job states whose oldest due time is exported as an age (done and dead ones are history)."""

UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched (404s for unknown paths, probes)."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: from a cached GET (milliseconds) to a slow remote inbox (the delivery timeout).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def activity_label(activity_type: str) -> str:
    """The type label of an inbox request: a known ActivityStreams type, else ``other``."""
    return activity_type if activity_type in ACTIVITY_TYPES else "other"


def status_family(status: int) -> str:
    """``2xx`` … ``5xx`` for an HTTP status; ``error`` for anything outside 200–599."""
    if 200 <= status <= 599:
        return f"{status // 100}xx"
    return "error"


def host_class(status: int | None, error: BaseException | None) -> str:
    """What a delivery attempt learnt of its host, as one of :data:`HOST_CLASSES`.

    The status family when the host answered; without an answer, why not: ``timeout`` (no
    answer in time), ``connection`` (refused, reset, DNS, TLS), ``refused`` (our address
    guard would not send there) or ``error`` (anything else, such as a bad job payload).
    The delivery handler raises its verdict *from* the transport error, so the chain of
    ``error`` says which it was.
    """
    if status is not None:
        return status_family(status)
    seen: set[int] = set()
    current = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError):
            return "timeout"
        if isinstance(current, AddressNotAllowed | UnsupportedURL | aiohttp.InvalidURL):
            return "refused"
        if isinstance(current, aiohttp.ClientError | ConnectionError):
            return "connection"
        current = current.__cause__ or current.__context__
    return "error"


@dataclass(frozen=True)
class StoreSnapshot:
    """What the store held at ``taken_at``: the gauges of one scrape."""

    taken_at: datetime
    jobs: tuple[JobCount, ...] = ()
    followers: int = 0
    blogs: dict[str, int] = field(default_factory=dict)


class StoreCollector(Collector):
    """Renders the latest :class:`StoreSnapshot` as gauges (collectors cannot await, so the
    snapshot is taken before the registry is rendered)."""

    def __init__(self) -> None:
        self.snapshot: StoreSnapshot | None = None

    def collect(self) -> Iterable[Metric]:
        """The queue, follower and blog gauges; nothing before the first snapshot."""
        snapshot = self.snapshot
        if snapshot is None:
            return
        depth = GaugeMetricFamily(
            f"{NAMESPACE}_jobs", "Jobs in the queue by kind and state.", labels=["kind", "state"]
        )
        age = GaugeMetricFamily(
            f"{NAMESPACE}_jobs_oldest_due_age_seconds",
            "How long the longest-due job of a kind has been due (0: none is due yet).",
            labels=["kind", "state"],
        )
        for count in snapshot.jobs:
            depth.add_metric([count.kind, count.state], count.count)
            if count.state in AGED_STATES:
                due = count.oldest_run_at
                waited = (snapshot.taken_at - due).total_seconds() if due is not None else 0.0
                age.add_metric([count.kind, count.state], max(0.0, waited))
        yield depth
        yield age
        yield GaugeMetricFamily(
            f"{NAMESPACE}_followers",
            "Accepted followers of all blogs (an actor following two blogs counts twice).",
            value=snapshot.followers,
        )
        blogs = GaugeMetricFamily(
            f"{NAMESPACE}_blogs", "Blogs by the state of their feed.", labels=["feed_status"]
        )
        for status in FEED_STATUSES:
            blogs.add_metric([status], snapshot.blogs.get(status, 0))
        yield blogs


class Metrics:
    """The metrics of one application or worker process, in their own registry.

    ``store_cache_seconds``: how long a store snapshot is reused by later scrapes.
    """

    def __init__(self, *, store_cache_seconds: float = 10.0) -> None:
        self.registry = CollectorRegistry()
        self.store_cache_seconds = store_cache_seconds
        registry = self.registry
        self.requests = Histogram(
            f"{NAMESPACE}_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inbox_requests = Counter(
            f"{NAMESPACE}_inbox_requests",
            "POSTs to an inbox by answer status and activity type.",
            ["status", "type"],
            registry=registry,
        )
        self.jobs = Counter(
            f"{NAMESPACE}_job_attempts",
            "Finished job attempts by kind and outcome (done, retry, dead).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.job_duration = Histogram(
            f"{NAMESPACE}_job_duration_seconds",
            "Time one job attempt took, by kind.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.deliveries = Counter(
            f"{NAMESPACE}_deliveries",
            "Delivery attempts by outcome (done, retry, dead) and host class "
            "(2xx-5xx, timeout, connection, refused, error).",
            ["outcome", "host_class"],
            registry=registry,
        )
        self.polls = Counter(
            f"{NAMESPACE}_polls",
            "Feed polls by outcome (new-content, not-modified, error, gone).",
            ["outcome"],
            registry=registry,
        )
        self.poll_duration = Histogram(
            f"{NAMESPACE}_poll_duration_seconds",
            "Time one feed poll took, fetch and storing included.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.store_errors = Counter(
            f"{NAMESPACE}_store_snapshot_errors",
            "Scrapes whose store snapshot failed (the previous one was served).",
            registry=registry,
        )
        self.store_snapshot_time = Gauge(
            f"{NAMESPACE}_store_snapshot_timestamp_seconds",
            "When the store gauges served were read (Unix time).",
            registry=registry,
        )
        self.store = StoreCollector()
        registry.register(self.store)
        # The labelled series counted once per job, looked up once: ``labels()`` validates and
        # locks on every call, which costs more than the count itself. Both keys come from
        # small fixed sets (job kinds, outcomes, host classes), so these stay small.
        self._job_series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._delivery_series: dict[tuple[str, str], Counter] = {}
        self._refreshing = asyncio.Lock()
        # Zero series for every known label value, so rate() sees a counter from its start
        # and dashboards show 0 rather than no data.
        for outcome in POLL_OUTCOMES:
            self.polls.labels(outcome)
        for outcome in JOB_OUTCOMES:
            for cls in HOST_CLASSES:
                self.deliveries.labels(outcome, cls)

    # counting

    def count_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered HTTP request (``route``: the template, never the raw path)."""
        self.requests.labels(method, route, str(status)).observe(seconds)

    def count_job(self, kind: str, outcome: str, seconds: float) -> None:
        """One finished job attempt of ``kind``: ``done``, ``retry`` or ``dead``."""
        series = self._job_series.get((kind, outcome))
        if series is None:
            series = (self.jobs.labels(kind, outcome), self.job_duration.labels(kind))
            self._job_series[(kind, outcome)] = series
        series[0].inc()
        series[1].observe(seconds)

    def count_delivery(
        self, outcome: str, status: int | None, error: BaseException | None = None
    ) -> None:
        """One delivery attempt, by outcome and the :func:`host_class` of its answer."""
        key = (outcome, host_class(status, error))
        series = self._delivery_series.get(key)
        if series is None:
            series = self._delivery_series[key] = self.deliveries.labels(*key)
        series.inc()

    def count_poll(self, outcome: str, seconds: float) -> None:
        """One feed poll and how it ended."""
        self.polls.labels(outcome).inc()
        self.poll_duration.observe(seconds)

    # the store's gauges

    async def refresh_store(self, store: Store, now: datetime) -> StoreSnapshot:
        """Read the store's gauges unless the last reading is younger than the cache time.

        Concurrent scrapes wait for one reading instead of querying side by side. Store
        errors propagate (the caller decides whether to serve the older snapshot).
        """
        async with self._refreshing:
            current = self.store.snapshot
            if current is not None:
                age = (now - current.taken_at).total_seconds()
                if 0 <= age < self.store_cache_seconds:
                    return current
            snapshot = await read_store(store, now)
            self.store.snapshot = snapshot
            self.store_snapshot_time.set(now.timestamp())
            return snapshot

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


async def read_store(store: Store, now: datetime) -> StoreSnapshot:
    """One reading of the queue depths, follower count and blogs by feed status."""
    jobs = await store.job_counts()
    followers = await store.count_all_followers()
    blogs: Tally[str] = Tally(blog.feed.status for blog in await store.list_blogs())
    return StoreSnapshot(now, tuple(jobs), followers, dict(blogs))


def count_inbox_request(metrics: Metrics, status: int, activity_type: str) -> None:
    """Count one inbox POST by its answer and activity type (``other`` when unknown)."""
    metrics.inbox_requests.labels(str(status), activity_label(activity_type)).inc()
