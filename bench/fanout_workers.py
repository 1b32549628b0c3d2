"""The fan-out bench on PostgreSQL: deliveries by real ``feedfed worker --kinds
fanout,deliver`` processes, each run on a fresh schema (see :mod:`fanout`, ``--db``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg
import cryptography
from fanout_blog import post, seed_blog
from procstat import machine_cpu, peak_rss_mib, process_cpu, run_queue_wait
from receiver import Receiver, receiver
from signing import signing_rate
from worker_process import spawn_worker

from bridge.config import build_config
from bridge.context import open_context
from bridge.jobs import DELIVER
from bridge.store.base import Follower

WORKER_CONFIG = """
[limits]
# Work enqueued by another process wakes a worker through PostgreSQL NOTIFY; the poll is
# the fallback. 50 ms (default 1 s) as in the runs before NOTIFY, so results compare.
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


async def start_worker(
    workdir: Path, url: str, name: str
) -> tuple[asyncio.subprocess.Process, str]:
    """``feedfed worker --kinds fanout,deliver`` on ``url``; returns it once it is ready,
    with its ``/readyz`` URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    (workdir / "feedfed.toml").write_text(WORKER_CONFIG, encoding="utf-8")
    settings = {
        "FEEDFED_CONFIG": str(workdir / "feedfed.toml"),
        "FEEDFED_DATABASE_URL": url,
        "FEEDFED_BASE_URL": "http://127.0.0.1:9",
        "FEEDFED_ALLOW_PRIVATE_ADDRESSES": "1",
    }
    log_path = workdir / f"{name}.log"
    proc = await spawn_worker(
        settings, "fanout,deliver", log_path, "--health-listen", f"127.0.0.1:{port}"
    )
    ready = f"http://127.0.0.1:{port}/readyz"
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.returncode is not None:
                log_text = log_path.read_text()[-2000:]
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
    print(f"receiver answers after {args.delay_ms:g} ms")
    async with receiver(args.hosts, args.delay_ms) as peer:
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


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{value:,.0f}" for value in values)
