"""``feedfed worker``: background work without the web server.

Process roles: ``feedfed serve`` runs the web server and every worker (one process, the
default), ``feedfed serve --no-workers`` only answers HTTP, and ``feedfed worker [--kinds
deliver,fanout,inbound,poll]`` only works: job kinds from the queue (delivery, fan-out, inbound
processing) and/or the feed poller. Against one PostgreSQL any number of each may run, on any
number of machines: jobs are claimed with ``FOR UPDATE SKIP LOCKED`` under a lease, blogs are
leased to one poller at a time, and the leases of a process that died run out. On one SQLite
file (one machine) a web process and workers of different ``--kinds`` may run side by side: a
worker's id is stable and held by one live process (:mod:`bridge.store.sqlite.processes`), so
a second worker of the same kinds refuses to start.

Waking up: an enqueue in this process wakes its job worker at once (``ctx.jobs_ready``);
work enqueued by another process wakes it too (PostgreSQL: ``LISTEN``/``NOTIFY``,
:mod:`bridge.store.postgres.notices`; SQLite: datagrams, :mod:`bridge.store.sqlite.processes`).
Polling the queue every ``limits.job_poll_interval`` seconds (1 s by default) stays the
fallback: retries that come due, and a listening connection that was lost until it is back.

SIGTERM (or SIGINT): the worker stops claiming, lets running jobs and polls finish within
their grace periods, puts back what it still holds (unstarted jobs, cancelled jobs and polls
are released at once rather than left to their leases) and exits 0.

``--health-listen HOST:PORT`` serves ``/healthz`` and ``/readyz`` (see
:mod:`bridge.web.health`) for an orchestrator and ``/metrics`` (:mod:`bridge.web.metrics_routes`:
this process's jobs and polls) for Prometheus; nothing else is served.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bridge.app import supervise
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.errors import ConfigError
from bridge.federation.delivery import Deliverer
from bridge.ingest import poller
from bridge.jobs import DELIVER
from bridge.jobs.registry import JOB_KINDS, job_handlers
from bridge.jobs.worker import JobWorker, default_worker_id
from bridge.logs import AccessLogger, request_ids
from bridge.web import health, metrics_routes

log = logging.getLogger(__name__)

POLL = "poll"
KINDS: tuple[str, ...] = (*JOB_KINDS, POLL)
"""What a worker process can be told to do: the job kinds, and polling feeds."""

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def register(sub: Any) -> None:
    """Add ``worker`` to the ``feedfed`` subcommands (``sub``: argparse's subparsers action)."""
    worker = sub.add_parser(
        "worker",
        help="run background work (delivery, fan-out, inbound, polling) without the web server",
        description=(
            "Run job workers and/or the feed poller until SIGTERM, then finish or put back "
            "what is claimed and exit 0. Pair with `feedfed serve --no-workers` on "
            "PostgreSQL to scale web and work separately."
        ),
    )
    worker.add_argument(
        "--kinds",
        type=parse_kinds,
        default=KINDS,
        metavar="KIND,...",
        help=f"what to run, comma-separated (default: all of {','.join(KINDS)})",
    )
    worker.add_argument(
        "--health-listen",
        type=parse_listen,
        metavar="HOST:PORT",
        help="serve /healthz, /readyz and /metrics here (default: no HTTP at all)",
    )
    worker.set_defaults(
        action=lambda a: lambda ctx: run_worker(ctx, a.kinds, health_listen=a.health_listen)
    )


def parse_kinds(text: str) -> tuple[str, ...]:
    """``deliver,poll`` → the kinds, in :data:`KINDS` order; unknown or none is an error."""
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    if not chosen:
        raise argparse.ArgumentTypeError("name at least one kind")
    unknown = sorted(chosen - set(KINDS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown kind {', '.join(unknown)} (known: {', '.join(KINDS)})"
        )
    return tuple(kind for kind in KINDS if kind in chosen)


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) → (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def run_worker(
    ctx: BridgeContext,
    kinds: Sequence[str] = KINDS,
    *,
    health_listen: tuple[str, int] | None = None,
    stop: asyncio.Event | None = None,
    poll_tick: float = 5.0,
) -> int:
    """Work on ``kinds`` until SIGTERM/SIGINT (or ``stop``), then shut down cleanly; 0."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in SIGNALS:
        loop.add_signal_handler(signum, _on_signal, signum, stop)
    deliverer = Deliverer() if DELIVER in kinds else None
    runner: web.AppRunner | None = None
    try:
        if health_listen is not None:
            runner = await start_health(ctx, *health_listen)
        handlers = job_handlers(kinds, deliverer)
        tasks: list[asyncio.Task[None]] = []
        if handlers:
            jobs = JobWorker.from_config(ctx, handlers, default_worker_id(ctx.config, handlers))
            jobs.hold_id()  # on SQLite: refuse to start beside a process holding the same id
            tasks.append(asyncio.create_task(supervise("jobs", lambda: jobs.run(stop), stop)))
        if POLL in kinds:
            tasks.append(
                asyncio.create_task(
                    supervise("poller", lambda: poller.run_poller(ctx, stop, tick=poll_tick), stop)
                )
            )
        log.info("worker running kinds=%s", ",".join(kinds))
        await asyncio.gather(*tasks)
        log.info("worker stopped")
        return 0
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
        if runner is not None:
            await runner.cleanup()
        if deliverer is not None:
            deliverer.close()


async def start_health(ctx: BridgeContext, host: str, port: int) -> web.AppRunner:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` on ``host:port``; the caller cleans the
    runner up."""
    app = web.Application(middlewares=[request_ids, metrics_routes.request_latency])
    app[CONTEXT] = ctx
    app.add_routes(health.routes)
    app.add_routes(metrics_routes.routes)
    runner = web.AppRunner(app, access_log_class=AccessLogger)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError("--health-listen", f"cannot listen on {host}:{port}: {exc}") from exc
    log.info("health endpoints on %s:%d", host, port)
    return runner


def _on_signal(signum: int, stop: asyncio.Event) -> None:
    name = signal.Signals(signum).name
    if stop.is_set():
        log.info("%s again: still finishing what is claimed", name)
        return
    log.info("%s: stopping; finishing or releasing what is claimed", name)
    stop.set()
