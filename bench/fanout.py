"""Fan-out benchmark: signed deliveries per second next to the raw RSA-2048 signing rate.

    .venv/bin/python bench/fanout.py [--runs 3] [--inboxes 1000] [--hosts 100]
                                     [--memory 10000,100000] [--bare-client]
                                     [--db postgresql://… [--workers 1,2]] [--delay-ms 0]

What it measures, all on loopback, in one run:

1. the raw signing rate: RSA-2048 PKCS#1 v1.5 / SHA-256 signatures of a typical signing
   string per second, on one thread (the ceiling a delivery could reach if signing were
   all it did);
2. deliveries per second: one post fanned out to ``--inboxes`` personal inboxes spread over
   ``--hosts`` host names, through the real pipeline — outbox record, ``fanout`` job,
   ``deliver`` jobs claimed by the job worker with its default limits (32 at a time, 4 per
   host), each body signed (RFC 9421, in the signing threads) and POSTed through the
   guarded client to a receiver process (a bare HTTP/1.1 responder answering 202 for every
   host name, see ``bench/receiver.py``), every outcome written to the SQLite queue. Timed from the
   worker's start until the last delivery is recorded as done; the bridge's CPU per delivery
   is given for all its threads and for the event loop's thread alone;
3. the fan-out's memory: peak Python allocations (tracemalloc) while the fan-out jobs of one
   post enqueue the deliveries for 10,000 and for 100,000 followers — flat if pages work.

It also prints the CPU per delivery of each thread (the event loop, the signing threads,
the SQLite thread). ``--bare-client`` puts ``bare_client.py`` in the place of aiohttp's
session for the POSTs (an instrument: the least a POST can cost on the event loop), which
tells how fast the rest of the pipeline would let deliveries go.

``--delay-ms N`` makes the receiver answer each delivery N ms after reading it (a timer, no
CPU held meanwhile): real inboxes answer in tens to hundreds of milliseconds, and then one
process's throughput is bounded by its concurrency limits and that latency, not by CPU.

Medians of ``--runs`` runs are printed with the ratio to the signing rate. The bridge logs at
WARNING here: one INFO line per job is what an operator gets by default, but printing 2,000
lines a second to a terminal measures the terminal.

With ``--db postgresql://…`` the deliveries are made by real ``feedfed worker --kinds
fanout,deliver`` processes instead, 1 and 2 of them (``--workers``) in turns within each
round, each run on a fresh schema (``?search_path=``) dropped afterwards. The followers'
hosts are the receiver's addresses 127.0.0.2 … (a worker process cannot use the bench's
resolver), which skips signature checks as before, so no web process is needed. The bench
records the post once the workers answer ``/readyz`` and times until the queue holds no
queued or running job; per run it prints the rate, CPU per delivery in the worker processes,
in their PostgreSQL backends (found by ``application_name``, read from ``/proc``) and in the
receiver, how busy the whole machine was (``/proc/stat``: other work on a shared machine
shows there), each worker's peak RSS (``VmHWM``) and share, and the ratio of 2 workers to 1
per round. ``--memory`` then runs the whole delivery to that many followers with the larger
worker count and prints the workers' peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import cryptography
from aiohttp.abc import AbstractResolver, ResolveResult
from bare_client import BareSession
from fanout_blog import post, seed_blog, seed_followers
from fanout_workers import postgres_main
from procstat import own_cpu_seconds, threads_cpu
from receiver import Receiver, receiver
from signing import signing_rate

from bridge.activitypub.addresses import AddressPolicy, open_remote_session
from bridge.activitypub.urls import Urls
from bridge.config import build_config
from bridge.context import BridgeContext
from bridge.federation.delivery import Deliverer
from bridge.federation.fanout import run_fanout
from bridge.jobs import DELIVER, FANOUT
from bridge.jobs.worker import JobWorker
from bridge.store.base import Job
from bridge.store.sqlite import SQLiteStore

# 1. raw signing: signing.py

# 2. deliveries


class Names(AbstractResolver):
    """Every bench host name resolves to 127.0.0.1; nothing else resolves."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not host.endswith(".bench"):
            raise OSError(f"the bench resolves only *.bench names, not {host!r}")
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        return None


@dataclass
class Run:
    """One delivery run: its rate, and CPU per delivery in the bridge (all its threads, and
    the event loop's thread alone) and in the receiver."""

    rate: float
    bridge_cpu: float
    loop_cpu: float
    receiver_cpu: float
    threads: dict[str, float]


@asynccontextmanager
async def bridge_context(workdir: Path, bare: bool = False) -> AsyncIterator[BridgeContext]:
    """The bridge's context on a fresh SQLite file; with ``bare`` its deliveries go through
    :class:`BareSession` instead of the guarded aiohttp session (``--bare-client``)."""
    config = build_config(
        {
            "server": {"base_url": "http://127.0.0.1:9"},
            "database": {"url": f"sqlite:///{workdir}/b.db"},
        },
        env={},
    )
    store = await SQLiteStore.open(str(workdir / "b.db"))
    await store.migrate()
    try:
        async with open_remote_session(
            AddressPolicy(allow_private=True), user_agent="feedfed-bench", resolver=Names()
        ) as remote:
            poster: Any = BareSession() if bare else remote
            try:
                yield BridgeContext(
                    config=config,
                    store=store,
                    http=remote,
                    remote=poster,
                    urls=Urls(config.base_url),
                )
            finally:
                if bare:
                    await poster.close()
    finally:
        await store.close()


async def delivery_run(inboxes: int, hosts: int, peer: Receiver, bare: bool = False) -> Run:
    """One post delivered to ``inboxes`` inboxes on ``hosts`` hosts: rate and CPU cost."""
    with tempfile.TemporaryDirectory() as tmp:
        async with bridge_context(Path(tmp), bare) as ctx:
            blog = await seed_blog(ctx)
            await seed_followers(ctx, blog, inboxes, hosts, peer.port)
            await post(ctx, blog)
            deliverer = Deliverer()
            attempts = 0
            attempted = asyncio.Event()

            async def deliver(ctx: BridgeContext, job: Job) -> int | None:
                nonlocal attempts
                try:
                    return await deliverer(ctx, job)
                finally:
                    attempts += 1
                    if attempts >= inboxes:
                        attempted.set()

            worker = JobWorker(
                ctx, {FANOUT: run_fanout, DELIVER: deliver}, worker_id="bench", poll_interval=0.05
            )
            stop = asyncio.Event()
            cpu, peer_cpu, start = own_cpu_seconds(), peer.cpu_seconds(), time.perf_counter()
            loop_cpu = time.thread_time()
            threads = threads_cpu()
            task = asyncio.create_task(worker.run(stop))
            # Asking the queue for its counts costs the bridge's own threads time, so it is
            # asked only once every delivery has been attempted, then until all are recorded.
            await attempted.wait()
            while True:
                counts = {(c.kind, c.state): c.count for c in await ctx.store.job_counts()}
                if counts.get((DELIVER, "done"), 0) + counts.get((DELIVER, "dead"), 0) >= inboxes:
                    break
                await asyncio.sleep(0.002)
            elapsed = time.perf_counter() - start
            loop_cpu = time.thread_time() - loop_cpu
            threads = {
                name: (spent - threads.get(name, 0.0)) / inboxes
                for name, spent in threads_cpu().items()
            }
            cpu, peer_cpu = own_cpu_seconds() - cpu, peer.cpu_seconds() - peer_cpu
            stop.set()
            await task
            deliverer.close()
            failed = counts.get((DELIVER, "dead"), 0)
            if failed:
                raise RuntimeError(f"{failed} deliveries failed")
            return Run(
                inboxes / elapsed, cpu / inboxes, loop_cpu / inboxes, peer_cpu / inboxes, threads
            )


# 3. fan-out memory


async def fanout_memory(followers: int, hosts: int) -> tuple[float, float]:
    """Peak MiB allocated while fanning one post out to ``followers``, and seconds taken."""
    with tempfile.TemporaryDirectory() as tmp:
        async with bridge_context(Path(tmp)) as ctx:
            blog = await seed_blog(ctx)
            await seed_followers(ctx, blog, followers, hosts, 9)
            await post(ctx, blog)
            tracemalloc.start()
            start = time.perf_counter()
            while jobs := await ctx.store.claim_jobs([FANOUT], ctx.clock(), 1, 300, "bench"):
                await run_fanout(ctx, jobs[0])
                await ctx.store.finish_job(jobs[0].id, ctx.clock())
            elapsed = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            queued = await ctx.store.list_jobs("queued", kind=DELIVER, limit=1)
            assert queued, "the fan-out enqueued nothing"
            counts = {(c.kind, c.state): c.count for c in await ctx.store.job_counts()}
            assert counts[(DELIVER, "queued")] == followers, counts
            return peak / 2**20, elapsed


# 4. PostgreSQL: deliveries by `feedfed worker` processes, see fanout_workers.py

# the command line


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if args.db is not None:
        await postgres_main(args)
        return
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"aiohttp {aiohttp.__version__}, cryptography {cryptography.__version__}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    rates = [signing_rate() for _ in range(args.runs)]
    raw = statistics.median(rates)
    print(f"raw RSA-2048 signing, one thread: {raw:,.0f}/s  (runs: {_fmt(rates)})")

    async with receiver(delay_ms=args.delay_ms) as peer:
        bare = args.bare_client
        await delivery_run(min(args.inboxes, 100), min(args.hosts, 10), peer, bare)  # warm-up
        runs = [await delivery_run(args.inboxes, args.hosts, peer, bare) for _ in range(args.runs)]
    rate = statistics.median(run.rate for run in runs)
    client = " (bare client, not aiohttp's)" if bare else ""
    print(
        f"signed deliveries{client}, {args.inboxes} inboxes on {args.hosts} hosts: {rate:,.0f}/s  "
        f"(runs: {_fmt([run.rate for run in runs])})  = {rate / raw:.0%} of the raw signing rate"
    )
    bridge_us = statistics.median(run.bridge_cpu for run in runs) * 1e6
    loop_us = statistics.median(run.loop_cpu for run in runs) * 1e6
    receiver_us = statistics.median(run.receiver_cpu for run in runs) * 1e6
    print(
        f"CPU per delivery: bridge {bridge_us:,.0f} us (event loop thread {loop_us:,.0f} us, "
        f"one signature: {1e6 / raw:,.0f} us), receiver {receiver_us:,.0f} us"
    )

    names = sorted({name for run in runs for name in run.threads})
    shares = ", ".join(
        f"{name} {statistics.median(run.threads.get(name, 0.0) for run in runs) * 1e6:,.0f}"
        for name in names
    )
    print(f"CPU per delivery by thread (us): {shares}")

    for count in args.memory:
        peak, seconds = await fanout_memory(count, args.hosts)
        print(f"fan-out to {count:,} followers: peak {peak:.1f} MiB allocated, {seconds:.1f} s")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"whole bench process: max RSS {maxrss:.0f} MiB")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{value:,.0f}" for value in values)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inboxes", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument(
        "--memory",
        type=lambda text: [int(part) for part in text.split(",") if part],
        default=[10_000, 100_000],
        help="follower counts whose fan-out memory is measured (comma separated)",
    )
    parser.add_argument(
        "--db",
        help="postgresql://… : deliver by `feedfed worker` processes on a fresh schema there "
        "instead of in this process on SQLite",
    )
    parser.add_argument(
        "--workers",
        type=lambda text: [int(part) for part in text.split(",") if part],
        default=[1, 2],
        help="worker process counts compared with --db, in turns in each round (default 1,2)",
    )
    parser.add_argument(
        "--bare-client",
        action="store_true",
        help="POST the deliveries through bench/bare_client.py instead of aiohttp's session: "
        "the rate the rest of the pipeline allows (an instrument, see that module)",
    )
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="the receiver answers each delivery this many milliseconds after reading it, "
        "standing for a remote inbox's latency (default 0: at once)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_parse()))
