"""Fan-out benchmark: signed deliveries per second next to the raw RSA-2048 signing rate.

    .venv/bin/python bench/fanout.py [--runs 3] [--inboxes 1000] [--hosts 100]
                                     [--memory 10000,100000]
                                     [--db postgresql://… [--workers 1,2]]

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
import contextlib
import functools
import logging
import os
import resource
import secrets
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
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg
import cryptography
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bridge.activitypub import keys
from bridge.activitypub.addresses import AddressPolicy, open_remote_session
from bridge.activitypub.urls import Urls, entry_slug
from bridge.config import build_config
from bridge.context import BridgeContext, open_context
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


def receiver_main(port: int, hosts: int) -> None:
    """The receiver process: read each POST, answer 202; on 127.0.0.1:``port`` and on
    ``hosts`` more addresses 127.0.0.2 … (an ephemeral port each), for bridge processes that
    cannot use the bench's resolver. Prints ``READY`` and those ports."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(Inbox, "127.0.0.1", port, backlog=1024)]
        for i in range(hosts):
            servers.append(await loop.create_server(Inbox, f"127.0.0.{i + 2}", 0, backlog=256))
        ports = [str(server.sockets[0].getsockname()[1]) for server in servers[1:]]
        print("READY", ",".join(ports), flush=True)
        await asyncio.gather(*(server.serve_forever() for server in servers))

    asyncio.run(serve())


@dataclass
class Receiver:
    """The receiver process: its port and pid."""

    port: int
    pid: int
    host_ports: list[int]
    """The ports of hosts 127.0.0.2 …, in order."""

    def cpu_seconds(self) -> float:
        """CPU time the receiver has used (Linux ``/proc``)."""
        return process_cpu(self.pid)


def process_cpu(pid: int, thread: int | None = None) -> float:
    """CPU time (user + system) process ``pid`` has used, all threads or only ``thread``
    (the main thread, which runs the event loop, is ``pid`` itself; Linux ``/proc``)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
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
async def receiver(hosts: int = 0) -> AsyncIterator[Receiver]:
    """The receiver in a process of its own (with ``hosts`` addressed hosts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--receiver",
        str(port),
        "--hosts",
        str(hosts),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        ready, _, ports = line.decode().strip().partition(" ")
        if ready != "READY":
            raise RuntimeError(f"receiver did not start: {line!r}")
        yield Receiver(port, proc.pid, [int(p) for p in ports.split(",") if p])
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


# 4. PostgreSQL: deliveries by `feedfed worker` processes

WORKER_CONFIG = """
[limits]
# Work enqueued by another process is found by polling the queue: 1 s by default, which
# alone would be a third of a 1,000-inbox run; 50 ms keeps the bench about the deliveries.
job_poll_interval = 0.05
"""


@dataclass
class ProcessRun:
    """One delivery run by worker processes: rate; CPU per delivery in the workers (all
    processes), in their PostgreSQL backends and in the receiver; each worker's peak RSS and
    share of the deliveries; the load average at the end."""

    workers: int
    rate: float
    worker_cpu: float
    loop_cpu: float
    """Per delivery, the workers' main threads (their event loops) alone."""
    loop_waiting: float
    """Share of the run each event loop spent waiting for a CPU (mean of the workers)."""
    postgres_cpu: float
    receiver_cpu: float
    peak_rss_mib: list[float]
    shares: list[int]
    load: float
    machine_busy: float
    """Cores busy on the whole machine during the run (``/proc/stat``), other work included."""
    first_seconds: float
    """From the post's recording until the first delivery was recorded (fan-out, claim)."""
    spans: list[float]
    """Each worker's first to last recorded delivery, seconds."""


def with_settings(url: str, **settings: str) -> str:
    """``url`` with PostgreSQL session settings as query parameters (asyncpg passes
    ``search_path`` and ``application_name`` on to the server)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in settings]
    return urlunsplit(parts._replace(query=urlencode([*query, *settings.items()])))


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[tuple[str, str]]:
    """A new schema ``feedfed_bench_<random>``: yields (its name, ``url`` pointing at it);
    dropped afterwards."""
    schema = f"feedfed_bench_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield schema, with_settings(url, search_path=schema)
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


async def backend_cpu(url: str, application: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend whose application name starts with
    ``application`` (the server runs on this machine: its processes are in ``/proc``)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1",
            application + "%",
        )
    finally:
        await conn.close()
    cpu = {}
    for row in rows:
        with contextlib.suppress(FileNotFoundError):
            cpu[int(row["pid"])] = process_cpu(int(row["pid"]))
    return cpu


def run_queue_wait(pid: int) -> float:
    """Seconds the main thread of ``pid`` has spent runnable but waiting for a CPU (Linux
    ``schedstat``): where a loaded machine, not the bridge, sets the pace."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy (all cores; ``/proc/stat``)."""
    fields = [int(part) for part in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def until_drained(url: str, interval: float) -> None:
    """Wait until no job is queued or running; asked every ``interval`` seconds on a
    connection of its own. The ``(state, run_at)`` index makes this read only the jobs still
    to do, so asking often does not cost the run a scan of the whole queue."""
    conn = await asyncpg.connect(url)
    try:
        query = "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"
        while True:
            if not await conn.fetchval(query):
                return
            await asyncio.sleep(interval)
    finally:
        await conn.close()


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of process ``pid`` (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


async def start_worker(
    workdir: Path, url: str, name: str
) -> tuple[asyncio.subprocess.Process, str]:
    """``feedfed worker --kinds fanout,deliver`` on ``url``; returns it once it is ready,
    with its ``/readyz`` URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    (workdir / "feedfed.toml").write_text(WORKER_CONFIG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDFED_")}
    env.update(
        FEEDFED_CONFIG=str(workdir / "feedfed.toml"),
        FEEDFED_DATABASE_URL=url,
        FEEDFED_BASE_URL="http://127.0.0.1:9",
        FEEDFED_ALLOW_PRIVATE_ADDRESSES="1",
    )
    with (workdir / f"{name}.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "--log-level",
            "warning",
            "worker",
            "--kinds",
            "fanout,deliver",
            "--health-listen",
            f"127.0.0.1:{port}",
            env=env,
            stdout=log,
            stderr=log,
        )
    ready = f"http://127.0.0.1:{port}/readyz"
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.returncode is not None:
                log_text = (workdir / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"{name} exited {proc.returncode}:\n{log_text}")
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(ready) as response:
                    if response.status == 200:
                        return proc, ready
            await asyncio.sleep(0.05)
    proc.kill()
    await proc.wait()
    raise RuntimeError(f"{name} was not ready within 30 s")


async def process_run(
    db: str, inboxes: int, hosts: int, workers: int, peer: Receiver
) -> ProcessRun:
    """One post delivered to ``inboxes`` inboxes on ``hosts`` hosts (127.0.0.2 …) by
    ``workers`` ``feedfed worker`` processes on a fresh schema: rate and costs. Timed from
    the post's recording (the workers are up and idle) until every delivery is recorded."""
    if not 1 <= hosts <= len(peer.host_ports):
        raise ValueError(f"--hosts must be 1 to {len(peer.host_ports)}")
    async with fresh_schema(db) as (schema, url):
        app = f"fb_{schema.removeprefix('feedfed_bench_')}"
        config = build_config(
            {"server": {"base_url": "http://127.0.0.1:9"}, "database": {"url": url}}, env={}
        )
        config = replace(config, database_url=with_settings(url, application_name=f"{app}_b"))
        with tempfile.TemporaryDirectory() as tmp:
            async with open_context(config) as ctx:
                blog = await seed_blog(ctx)
                async with ctx.store.transaction():
                    for n in range(inboxes):
                        i = n % hosts
                        actor = f"http://127.0.0.{i + 2}:{peer.host_ports[i]}/users/u{n}"
                        await ctx.store.put_follower(
                            Follower(
                                blog.id, actor, f"{actor}/inbox", None, "accepted", ctx.clock()
                            )
                        )
                procs = []
                try:
                    for k in range(workers):
                        worker_url = with_settings(url, application_name=f"{app}_w{k}")
                        procs.append((await start_worker(Path(tmp), worker_url, f"w{k}"))[0])
                    pg_before = await backend_cpu(db, f"{app}_w")
                    cpu_before = [process_cpu(proc.pid) for proc in procs]
                    loop_before = [process_cpu(proc.pid, proc.pid) for proc in procs]
                    wait_before = [run_queue_wait(proc.pid) for proc in procs]
                    machine_before, posted = machine_cpu(), ctx.clock()
                    peer_before, start = peer.cpu_seconds(), time.perf_counter()
                    await post(ctx, blog)
                    await until_drained(
                        with_settings(url, application_name=f"{app}_b"),
                        0.01 if inboxes <= 5000 else 0.1,
                    )
                    elapsed = time.perf_counter() - start
                    machine = machine_cpu() - machine_before
                    peer_cpu = peer.cpu_seconds() - peer_before
                    worker_cpu = sum(process_cpu(p.pid) for p in procs) - sum(cpu_before)
                    loop_cpu = sum(process_cpu(p.pid, p.pid) for p in procs) - sum(loop_before)
                    waited = sum(run_queue_wait(p.pid) for p in procs) - sum(wait_before)
                    pg_after = await backend_cpu(db, f"{app}_w")
                    pg_cpu = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
                    rss = [peak_rss_mib(proc.pid) for proc in procs]
                finally:
                    for proc in procs:
                        if proc.returncode is None:
                            proc.terminate()
                    for proc in procs:
                        await proc.wait()
                counts = {(c.kind, c.state): c.count for c in await ctx.store.job_counts()}
                if counts.get((DELIVER, "done"), 0) != inboxes:
                    raise RuntimeError(f"not every delivery was done: {counts}")
                done = await ctx.store.list_jobs("done", kind=DELIVER, limit=inboxes + 1)
                mine = [
                    [job.updated_at for job in done if f"/{proc.pid}/" in (job.claimed_by or "")]
                    for proc in procs
                ]
    return ProcessRun(
        workers,
        inboxes / elapsed,
        worker_cpu / inboxes,
        loop_cpu / inboxes,
        waited / elapsed / workers,
        pg_cpu / inboxes,
        peer_cpu / inboxes,
        rss,
        [len(times) for times in mine],
        os.getloadavg()[0],
        machine / elapsed,
        (min(job.updated_at for job in done) - posted).total_seconds(),
        [(max(times) - min(times)).total_seconds() if times else 0.0 for times in mine],
    )


async def postgres_main(args: argparse.Namespace) -> None:
    """Deliveries by 1 and 2 (``--workers``) worker processes on PostgreSQL, in turns within
    each round so that each ratio compares runs with the same receiver at the same time;
    then the workers' peak memory for the ``--memory`` follower counts."""
    conn = await asyncpg.connect(args.db)
    try:
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"aiohttp {aiohttp.__version__}, cryptography {cryptography.__version__}, "
        f"PostgreSQL {version}, load average {os.getloadavg()[0]:.2f}"
    )
    raw = statistics.median(signing_rate() for _ in range(args.runs))
    print(f"raw RSA-2048 signing, one thread: {raw:,.0f}/s")
    runs: dict[int, list[ProcessRun]] = {n: [] for n in args.workers}
    async with receiver(args.hosts) as peer:
        await process_run(args.db, min(args.inboxes, 100), min(args.hosts, 10), 1, peer)  # warm-up
        for round_ in range(args.runs):
            for n in args.workers:
                run = await process_run(args.db, args.inboxes, args.hosts, n, peer)
                runs[n].append(run)
                print(f"  round {round_ + 1}, {_describe(run)}", flush=True)
        for n, done in runs.items():
            rate = statistics.median(run.rate for run in done)
            print(
                f"{n} worker process(es), {args.inboxes} inboxes on {args.hosts} hosts: "
                f"{rate:,.0f}/s (runs: {_fmt([run.rate for run in done])}); CPU per delivery "
                f"(median): workers {_us(done, 'worker_cpu')} us (event loops "
                f"{_us(done, 'loop_cpu')} us), their PostgreSQL backends "
                f"{_us(done, 'postgres_cpu')} us, receiver {_us(done, 'receiver_cpu')} us"
            )
        if len(args.workers) == 2:
            one, two = (runs[n] for n in args.workers)
            ratios = [b.rate / a.rate for a, b in zip(one, two, strict=True)]
            print(
                f"{args.workers[1]} workers / {args.workers[0]}: median of the rounds' ratios "
                f"{statistics.median(ratios):.2f}x (rounds: "
                + ", ".join(f"{r:.2f}" for r in ratios)
                + ")"
            )
        for count in args.memory:
            n = max(args.workers)
            run = await process_run(args.db, count, args.hosts, n, peer)
            print(f"{count:,} followers, {_describe(run)}", flush=True)


def _describe(run: ProcessRun) -> str:
    busy = (run.worker_cpu + run.postgres_cpu + run.receiver_cpu) * run.rate
    return (
        f"{run.workers} worker(s): {run.rate:,.0f}/s, CPU per delivery: workers "
        f"{run.worker_cpu * 1e6:,.0f} us (event loops {run.loop_cpu * 1e6:,.0f} us, "
        f"{run.loop_cpu * run.rate / run.workers:.0%} busy and "
        f"{run.loop_waiting:.0%} waiting for a CPU each), "
        f"PostgreSQL {run.postgres_cpu * 1e6:,.0f} us, "
        f"receiver {run.receiver_cpu * 1e6:,.0f} us ({busy:.2f} cores busy); peak RSS "
        f"{', '.join(f'{m:.0f}' for m in run.peak_rss_mib)} MiB; deliveries per worker "
        f"{', '.join(map(str, run.shares))} in {', '.join(f'{t:.2f}' for t in run.spans)} s; "
        f"first delivery after {run.first_seconds:.2f} s; machine {run.machine_busy:.2f} cores "
        f"busy; load {run.load:.2f}"
    )


def _us(runs: list[ProcessRun], name: str) -> str:
    return f"{statistics.median(getattr(run, name) for run in runs) * 1e6:,.0f}"


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
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse()
    if arguments.receiver is not None:
        receiver_main(arguments.receiver, arguments.hosts)
    else:
        asyncio.run(main(arguments))
