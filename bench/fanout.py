"""Fan-out benchmark: signed deliveries per second next to the raw RSA-2048 signing rate.

    .venv/bin/python bench/fanout.py [--runs 3] [--inboxes 1000] [--hosts 100]
                                     [--memory 10000,100000]

What it measures, all on loopback, in one run:

1. the raw signing rate: RSA-2048 PKCS#1 v1.5 / SHA-256 signatures of a typical signing
   string per second, on one thread (the ceiling a delivery could reach if signing were
   all it did);
2. deliveries per second: one post fanned out to ``--inboxes`` personal inboxes spread over
   ``--hosts`` host names, through the real pipeline — outbox record, ``fanout`` job,
   ``deliver`` jobs claimed by the job worker with its default limits (32 at a time, 4 per
   host), each body signed (RFC 9421, in the signing threads) and POSTed through the
   guarded client to a receiver process (a bare HTTP/1.1 responder answering 202 for every
   host name, see :class:`Inbox`), every outcome written to the SQLite queue. Timed from the
   worker's start until the last delivery is recorded as done; the bridge's CPU per delivery
   is given for all its threads and for the event loop's thread alone;
3. the fan-out's memory: peak Python allocations (tracemalloc) while the fan-out jobs of one
   post enqueue the deliveries for 10,000 and for 100,000 followers — flat if pages work.

Medians of ``--runs`` runs are printed with the ratio to the signing rate. The bridge logs at
WARNING here: one INFO line per job is what an operator gets by default, but printing 2,000
lines a second to a terminal measures the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import cryptography
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bridge.activitypub import keys
from bridge.activitypub.addresses import AddressPolicy, open_remote_session
from bridge.activitypub.urls import Urls, entry_slug
from bridge.config import build_config
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.federation.delivery import Deliverer
from bridge.federation.fanout import run_fanout
from bridge.federation.outbound import signing_key
from bridge.federation.outbox import record_change
from bridge.jobs import DELIVER, FANOUT
from bridge.jobs.worker import JobWorker
from bridge.store.base import Blog, FeedState, Follower, Job, KeyPair, NewBlog
from bridge.store.sqlite import SQLiteStore

SIGNING_STRING = (
    b'"@method": POST\n"@target-uri": https://mastodon.example/users/someone/inbox\n'
    b'"content-digest": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\n'
    b'"content-type": application/activity+json\n"@signature-params": ("@method" '
    b'"@target-uri" "content-digest" "content-type");created=1700000000;'
    b'keyid="https://bridge.example/users/talkabout#main-key";alg="rsa-v1_5-sha256"'
)


# 1. raw signing


def signing_rate(seconds: float = 2.0) -> float:
    """RSA-2048 signatures per second on this thread."""
    key = keys.generate_keypair("bench", datetime.now(UTC))
    private = signing_key(key.private_pem)
    pad, digest = padding.PKCS1v15(), hashes.SHA256()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            private.sign(SIGNING_STRING, pad, digest)
        count += 100
    return count / elapsed


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


class Inbox(asyncio.Protocol):
    """The receiving end of one connection: reads each request whole (head and
    ``Content-Length`` body), answers ``202 Accepted``, keeps the connection open.

    A bare HTTP/1.1 responder rather than an aiohttp server: the receivers stand for other
    machines, and here they share the bridge's cores, so the less CPU they take the more the
    bench measures the bridge (an aiohttp server took ~200 us per request, this ~40 us).
    """

    ANSWER = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.body_left = -1  # -1: reading a head
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while True:
            if self.body_left < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self.body_left = _content_length(bytes(self.buffer[:end]))
                del self.buffer[: end + 4]
            if len(self.buffer) < self.body_left:
                return
            del self.buffer[: self.body_left]
            self.body_left = -1
            self.transport.write(self.ANSWER)


def _content_length(head: bytes) -> int:
    """The body length a request head announces (the bridge always sends one)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
        if name.strip().lower() == b"transfer-encoding":
            raise ValueError("the bench receiver reads Content-Length bodies only")
    return 0


def receiver_main(port: int) -> None:
    """The receiver process: read each POST, answer 202."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Inbox, "127.0.0.1", port, backlog=1024)
        print("READY", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


@dataclass
class Receiver:
    """The receiver process: its port and pid."""

    port: int
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the receiver has used (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One delivery run: its rate, and CPU per delivery in the bridge (all its threads, and
    the event loop's thread alone) and in the receiver."""

    rate: float
    bridge_cpu: float
    loop_cpu: float
    receiver_cpu: float


def own_cpu_seconds() -> float:
    """CPU time of this process, all threads (the signing pool included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    """The receiver in a process of its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--receiver", str(port), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"READY":
            raise RuntimeError(f"receiver did not start: {line!r}")
        yield Receiver(port, proc.pid)
    finally:
        proc.terminate()
        await proc.wait()


@asynccontextmanager
async def bridge_context(workdir: Path) -> AsyncIterator[BridgeContext]:
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
            yield BridgeContext(
                config=config, store=store, http=remote, remote=remote, urls=Urls(config.base_url)
            )
    finally:
        await store.close()


@functools.cache
def bench_keypair() -> KeyPair:
    """One blog key for every run: a process parses its blogs' keys once (~40 ms each), so a
    fresh key per run would time a cost the bridge pays once per process lifetime."""
    return keys.generate_keypair("talkabout", datetime.now(UTC))


async def seed_blog(ctx: BridgeContext) -> Blog:
    now = ctx.clock()
    blog = await ctx.store.add_blog(NewBlog("talkabout", "http://127.0.0.1:9/feed"), now)
    await ctx.store.put_keypair_if_absent(replace(bench_keypair(), owner=blog.handle))
    await keys.ensure_keypair(ctx.store, blog.handle, now)
    await ctx.store.update_feed_state(
        blog.id, FeedState(status="ok", next_poll_at=now + timedelta(days=1), first_poll_done=True)
    )
    return blog


async def seed_followers(ctx: BridgeContext, blog: Blog, count: int, hosts: int, port: int) -> None:
    now = ctx.clock()
    async with ctx.store.transaction():
        for n in range(count):
            actor = f"http://h{n % hosts}.bench:{port}/users/u{n}"
            await ctx.store.put_follower(
                Follower(blog.id, actor, f"{actor}/inbox", None, "accepted", now)
            )


async def post(ctx: BridgeContext, blog: Blog) -> str:
    now = ctx.clock()
    entry = FeedEntry(
        id="https://www.talkabout.de/teilhaben-lassen/",
        link="https://www.talkabout.de/teilhaben-lassen/",
        title="Teilhaben lassen",
        content_html="<p>Ein Plädoyer für die Mitteilung. "
        + "Mit. Anderen. Teilen. " * 40
        + "</p>",
        published=now,
    )
    async with ctx.store.transaction():
        stored = await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), now)
        activity = await record_change(ctx, blog, stored, "create", deliver=True)
    return activity.activity_id


async def delivery_run(inboxes: int, hosts: int, peer: Receiver) -> Run:
    """One post delivered to ``inboxes`` inboxes on ``hosts`` hosts: rate and CPU cost."""
    with tempfile.TemporaryDirectory() as tmp:
        async with bridge_context(Path(tmp)) as ctx:
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
            cpu, peer_cpu = own_cpu_seconds() - cpu, peer.cpu_seconds() - peer_cpu
            stop.set()
            await task
            deliverer.close()
            failed = counts.get((DELIVER, "dead"), 0)
            if failed:
                raise RuntimeError(f"{failed} deliveries failed")
            return Run(inboxes / elapsed, cpu / inboxes, loop_cpu / inboxes, peer_cpu / inboxes)


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


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"aiohttp {aiohttp.__version__}, cryptography {cryptography.__version__}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    rates = [signing_rate() for _ in range(args.runs)]
    raw = statistics.median(rates)
    print(f"raw RSA-2048 signing, one thread: {raw:,.0f}/s  (runs: {_fmt(rates)})")

    async with receiver() as peer:
        await delivery_run(min(args.inboxes, 100), min(args.hosts, 10), peer)  # warm-up
        runs = [await delivery_run(args.inboxes, args.hosts, peer) for _ in range(args.runs)]
    rate = statistics.median(run.rate for run in runs)
    print(
        f"signed deliveries, {args.inboxes} inboxes on {args.hosts} hosts: {rate:,.0f}/s  "
        f"(runs: {_fmt([run.rate for run in runs])})  = {rate / raw:.0%} of the raw signing rate"
    )
    bridge_us = statistics.median(run.bridge_cpu for run in runs) * 1e6
    loop_us = statistics.median(run.loop_cpu for run in runs) * 1e6
    receiver_us = statistics.median(run.receiver_cpu for run in runs) * 1e6
    print(
        f"CPU per delivery: bridge {bridge_us:,.0f} us (event loop thread {loop_us:,.0f} us, "
        f"one signature: {1e6 / raw:,.0f} us), receiver {receiver_us:,.0f} us"
    )

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
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse()
    if arguments.receiver is not None:
        receiver_main(arguments.receiver)
    else:
        asyncio.run(main(arguments))
