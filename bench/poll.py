"""Polling benchmark: polls per second and CPU per poll of one process polling 10,000 blogs.

    .venv/bin/python bench/poll.py [--blogs 10000] [--changed 0.05] [--runs 5]
                                   [--db postgresql://...]

What it measures, all on loopback:

* a feed server in a process of its own serves every blog's feed (``/feed/{i}``): a
  WordPress-shaped RSS 2.0 feed of ten German posts (the talkabout fixture's style, ~17 KB),
  with an ``ETag`` per blog and version; a conditional GET whose ``If-None-Match`` matches is
  answered 304. Before each run it gives a fresh ``--changed`` share of the blogs (5 %) one
  new post on top of their feed (a new version, so a 200 with the whole feed);
* the bridge side is the real poller (:func:`bridge.ingest.poller.run_poller`, its default
  concurrency of 8) on a real store: every blog was first polled in the setup (entries,
  outbox and validators stored as after a first poll), then each run moves the context's
  clock a day on so that all blogs are due, and runs the poller until every blog has been
  polled once: 95 % conditional GETs answered 304 (stored: schedule and validators), 5 %
  full parses (``feedparser`` in a thread) that store one new entry and its ``Create`` with
  its fan-out job;
* timed from the poller's start until it has stopped with every poll stored; CPU is
  ``getrusage(RUSAGE_SELF)`` of the bench process (the bridge's event loop, its parsing
  threads, the SQLite thread; the feed server's CPU is its own and left out). Medians of
  ``--runs`` runs; the core share needed to poll every blog every 15 minutes follows.

The feed server keeps connections alive and serves plain HTTP, so TLS handshakes and DNS,
which real blogs on many hosts would add, are not in these figures (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import random
import resource
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import ClientSession, web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.config import build_config
from bridge.context import BridgeContext, open_context
from bridge.ingest.document import ingest_parsed
from bridge.ingest.parse import parse_feed
from bridge.ingest.poller import run_poller
from bridge.store.base import FeedState, NewBlog

POSTS = 10
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PARAGRAPH = (
    "<p>Teilhaben lassen und teilnehmen lassen: wer bloggt, möchte gelesen werden, und wer "
    "liest, möchte antworten. Über die Jahre hat sich gezeigt, dass Kommentare, Pingbacks "
    "und Trackbacks die Gespräche tragen, die zwischen den Blogs entstehen – und dass sie "
    "verloren gehen, wenn die Leser anderswo unterwegs sind.</p>"
)


# -- the feed ------------------------------------------------------------------------------


def feed_xml(blog: int, version: int, base: str) -> bytes:
    """Blog ``blog``'s feed at ``version``: ten posts, plus ``version`` newer ones on top."""
    items = []
    for number in range(POSTS + version - 1, -1, -1)[: POSTS + version]:
        published = T0 + timedelta(days=number)
        link = f"{base}/{blog}/{number}/"
        title = f"Beitrag {number}: Über das Mitteilen"
        items.append(
            "<item>"
            f"<title>{escape(title)}</title><link>{link}</link>"
            f"<comments>{link}#comments</comments>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            "<dc:creator><![CDATA[Jürgen]]></dc:creator>"
            "<category><![CDATA[Allgemein]]></category><category><![CDATA[Blogs]]></category>"
            f'<guid isPermaLink="false">{base}/?p={blog * 1000 + number}</guid>'
            f"<description><![CDATA[{PARAGRAPH[3:200]} […]]]></description>"
            f"<content:encoded><![CDATA[{PARAGRAPH * 4}]]></content:encoded>"
            f"<wfw:commentRss>{link}feed/</wfw:commentRss>"
            "<slash:comments>3</slash:comments>"
            "</item>"
        )
    newest = T0 + timedelta(days=POSTS + version - 1)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" '
        'xmlns:slash="http://purl.org/rss/1.0/modules/slash/">'
        "<channel><title>talkabout</title>"
        f'<atom:link href="{base}/feed/{blog}" rel="self" type="application/rss+xml" />'
        f"<link>{base}/{blog}/</link><description>Teilhaben und teilnehmen</description>"
        f"<lastBuildDate>{format_datetime(newest)}</lastBuildDate><language>de</language>"
        "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>1</sy:updateFrequency>"
        "<generator>https://wordpress.org/?v=6.4</generator>" + "".join(items) + "</channel></rss>"
    ).encode()


def feed_server_main(port: int, blogs: int, ready: multiprocessing.synchronize.Event) -> None:
    """The feed server process: every blog's feed, ETag-aware; ``POST /advance`` and
    ``GET /stats`` for the bench."""
    versions = [0] * blogs
    stats = {"200": 0, "304": 0}
    base = f"http://127.0.0.1:{port}"
    cache: dict[tuple[int, int], bytes] = {}

    async def feed(request: web.Request) -> web.Response:
        blog = int(request.match_info["blog"])
        etag = f'"{blog}-{versions[blog]}"'
        if request.headers.get("If-None-Match") == etag:
            stats["304"] += 1
            return web.Response(status=304, headers={"ETag": etag})
        stats["200"] += 1
        key = (blog, versions[blog])
        body = cache.get(key) or feed_xml(blog, versions[blog], base)
        cache[key] = body
        return web.Response(body=body, content_type="application/rss+xml", headers={"ETag": etag})

    async def advance(request: web.Request) -> web.Response:
        run, share = int(request.query["run"]), float(request.query["share"])
        for blog in random.Random(run).sample(range(blogs), round(blogs * share)):
            versions[blog] += 1
        stats.update({"200": 0, "304": 0})
        return web.json_response(stats)

    async def report(request: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.router.add_get("/feed/{blog}", feed)
    app.router.add_post("/advance", advance)
    app.router.add_get("/stats", report)
    runner = web.AppRunner(app, access_log=None)

    async def serve() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- the bridge side -------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float
    full: int
    not_modified: int

    @property
    def polls(self) -> int:
        return self.full + self.not_modified


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def seed(ctx: BridgeContext, blogs: int, base: str) -> None:
    """Every blog as after its first poll: entries and outbox of version 0, its ETag."""
    for blog_number in range(blogs):
        url = f"{base}/feed/{blog_number}"
        blog = await ctx.store.add_blog(NewBlog(f"blog{blog_number}", url), ctx.clock())
        parsed = await asyncio.to_thread(parse_feed, feed_xml(blog_number, 0, base), url=url)
        await ingest_parsed(ctx, blog, parsed)
        now = ctx.clock()
        state = FeedState(
            status="ok",
            etag=f'"{blog_number}-0"',
            last_polled_at=now,
            last_success_at=now,
            next_poll_at=now + timedelta(hours=1),
            poll_interval=3600,
            first_poll_done=True,
        )
        await ctx.store.update_feed_state(blog.id, state)
        if blog_number and blog_number % 1000 == 0:
            print(f"  seeded {blog_number} blogs", file=sys.stderr)


async def one_run(ctx: BridgeContext, session: ClientSession, base: str, blogs: int) -> Run:
    """Poll every blog once with the real poller; time and CPU of this process."""
    stop = asyncio.Event()

    async def stats() -> dict[str, int]:
        async with session.get(f"{base}/stats") as response:
            return dict(await response.json())

    started, cpu = time.perf_counter(), cpu_seconds()
    poller = asyncio.create_task(run_poller(ctx, stop, tick=0.05))
    while True:
        await asyncio.sleep(0.1)
        counted = await stats()
        if counted["200"] + counted["304"] >= blogs:
            break
        if poller.done():
            poller.result()
            raise RuntimeError("the poller stopped early")
    stop.set()
    await poller  # running polls are stored before it returns
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return Run(seconds, cpu, counted["200"], counted["304"])


async def bench(args: argparse.Namespace) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ready = multiprocessing.get_context("spawn").Event()
    server = multiprocessing.get_context("spawn").Process(
        target=feed_server_main, args=(port, args.blogs, ready), daemon=True
    )
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the feed server did not start")
        with tempfile.TemporaryDirectory() as tmp:
            db = args.db or f"sqlite:///{Path(tmp) / 'poll.db'}"
            raw = {"server": {"allow_private_addresses": True}, "database": {"url": db}}
            config = build_config(raw, {})
            offset = timedelta()

            def clock() -> datetime:
                return datetime.now(UTC) + offset

            async with open_context(config, clock=clock) as ctx, ClientSession() as session:
                seeding = time.perf_counter()
                await seed(ctx, args.blogs, base)
                print(
                    f"seeded {args.blogs} blogs in {time.perf_counter() - seeding:.0f} s",
                    file=sys.stderr,
                )
                runs = []
                for number in range(1, args.runs + 1):
                    params = {"run": str(number), "share": str(args.changed)}
                    async with session.post(f"{base}/advance", params=params) as response:
                        response.raise_for_status()
                    # A day later: every blog is due (intervals are at most six hours).
                    offset = timedelta(days=number)
                    run = await one_run(ctx, session, base, args.blogs)
                    runs.append(run)
                    print(
                        f"  run {number}: {run.polls / run.seconds:,.0f} polls/s, "
                        f"{run.cpu / run.polls * 1e6:,.0f} us CPU per poll "
                        f"({run.not_modified} answered 304, {run.full} with a new post)",
                        file=sys.stderr,
                    )
                report(args, runs, db)
    finally:
        server.kill()
        server.join()


def report(args: argparse.Namespace, runs: list[Run], db: str) -> None:
    rates = [run.polls / run.seconds for run in runs]
    per_poll = [run.cpu / run.polls for run in runs]
    rate, cpu = statistics.median(rates), statistics.median(per_poll)
    share = cpu * args.blogs / (15 * 60)
    backend = db.split(":", 1)[0]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, store {backend}")
    print(
        f"{args.blogs:,} blogs, {args.changed:.0%} with a new post, poller concurrency 8: "
        f"{rate:,.0f} polls/s  (runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )
    print(
        f"CPU per poll: {cpu * 1e6:,.0f} us  (runs: "
        f"{', '.join(f'{c * 1e6:,.0f}' for c in per_poll)})"
    )
    print(
        f"{args.blogs:,} blogs every 15 minutes: {share:.1%} of one core "
        f"({'meets' if share < 0.25 else 'misses'} the target of 25 %)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blogs", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
