"""Inbox benchmark: signed ``Create`` replies per second, stored and processed into comments,
next to a minimal aiohttp handler that only parses and verifies the same requests.

    .venv/bin/python bench/inbox.py [--runs 3] [--replies 1000] [--actors 20] [--concurrency 32]

What it measures, all on loopback, in one run:

1. the bridge: ``--replies`` replies to one post, each a ``Create(Note)`` signed (draft-cavage,
   as Mastodon signs) by one of ``--actors`` accounts, each on a host of its own, POSTed to
   the real shared inbox (size cap, JSON, origin checks, signature verified with the cached
   key, stored, job enqueued, 202) while the real job worker runs the ``inbound`` handler
   (origin rules, note parsed, sanitised, moderated against the store, comment stored).
   Timed from the first POST until the last reply is a stored comment. Keys are cached:
   every account sent one reply before the clock starts (as on a bridge that has heard from
   them before), which also caches the actors and their counts. Twice per run: in one
   process (as ``feedfed serve`` on SQLite), and with the inbox here but the processing in
   a real ``feedfed worker --kinds inbound`` process on the same SQLite file (as ``feedfed
   serve --no-workers`` beside it, see ``bench/inbox_worker.py``), woken by job notices;
2. the minimal handler: an aiohttp server answering the same signed requests after only
   reading the body, parsing the JSON and verifying the signature with a key from a dict.

The client (pre-signed requests, ``--concurrency`` in flight) is the same for all and runs
in the bench's process, beside the server it loads, so every server pays its cost alike.
Medians of ``--runs`` runs are printed with the ratios (target: at least 30 %).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import logging
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography.hazmat.primitives.asymmetric import rsa
from inbox_worker import worker_process
from procstat import process_cpu

from bridge.activitypub import keys
from bridge.activitypub.addresses import AddressPolicy, open_remote_session
from bridge.activitypub.cavage import CavageSignature, cavage_signing_string
from bridge.activitypub.digests import digest_header
from bridge.activitypub.signatures import SignedRequest, key_id_of, verify
from bridge.activitypub.signed_requests import format_http_date, load_private_key, rsa_sign
from bridge.activitypub.urls import Urls, entry_slug
from bridge.appkeys import CONTEXT
from bridge.config import build_config
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.federation import dispatch, inbox
from bridge.jobs import INBOUND
from bridge.jobs.worker import JobWorker
from bridge.store.base import Blog, KeyPair, NewBlog
from bridge.store.sqlite import SQLiteStore

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ALL_STATES = ("published", "held", "duplicate", "spam", "rejected", "deleted")
WORDS = (
    *("teilhaben", "teilnehmen", "Dialog", "Mitteilung", "Social", "Media", "Blog"),
    *("Kommentar", "Antwort", "Feed", "Mittagstisch", "Hamburg", "Kunden", "Marke"),
    *("Werte", "Sinn", "Transparenz", "Offenheit", "Knappheit", "Überfluss"),
)


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


@dataclass(frozen=True)
class Account:
    """A remote account: its actor id on its own host, and its key pair."""

    id: str
    key: KeyPair

    @property
    def key_id(self) -> str:
        return f"{self.id}#main-key"

    def document(self) -> dict[str, Any]:
        host = self.id.split("/")[2]
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.id,
            "type": "Person",
            "preferredUsername": "u",
            "name": f"Leserin {host.split('.')[0]}",
            "url": f"http://{host}/@u",
            "inbox": f"{self.id}/inbox",
            "outbox": f"{self.id}/outbox",
            "followers": f"{self.id}/followers",
            "published": "2012-03-01T00:00:00Z",
            "publicKey": {"id": self.key_id, "owner": self.id, "publicKeyPem": self.key.public_pem},
        }


@dataclass(frozen=True)
class Signed:
    """One pre-signed POST."""

    url: str
    body: bytes
    headers: dict[str, str]


def instance_app(accounts: dict[str, Account]) -> web.Application:
    """The remote accounts' servers: actor documents and their (counted) collections."""

    async def answer(request: web.Request) -> web.Response:
        url = f"http://{request.host}{request.path}"
        found = next((a for a in accounts.values() if url.startswith(a.id)), None)
        if found is None:
            return web.json_response({"error": "not found"}, status=404)
        if url == found.id:
            document = found.document()
        else:
            document = {"id": url, "type": "OrderedCollection", "totalItems": 120}
        return web.json_response(document, content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    return app


def reply(account: Account, article: str, number: int, inbox_url: str) -> Signed:
    """A signed ``Create`` of a reply to ``article``, with a text of its own."""
    words = " ".join(WORDS[(number * 7 + i) % len(WORDS)] for i in range(40))
    note_id = f"{account.id}/statuses/{number}"
    note = {
        "id": note_id,
        "type": "Note",
        "attributedTo": account.id,
        "inReplyTo": article,
        "content": f'<p>Antwort {number}: {words}.</p><p>Mit <a href="https://example.org/{number}">'
        f"einem Link</a>.</p>",
        "published": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": [PUBLIC],
        "cc": [f"{account.id}/followers"],
    }
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{note_id}/activity",
        "type": "Create",
        "actor": account.id,
        "to": note["to"],
        "cc": note["cc"],
        "object": note,
    }
    body = json.dumps(activity).encode()
    return Signed(inbox_url, body, sign(account, inbox_url, body))


def sign(account: Account, url: str, body: bytes) -> dict[str, str]:
    """Mastodon's draft-cavage headers, made with the account's key parsed once (the bridge's
    ``sign_cavage`` parses a PEM per call, ~40 ms, which would make setting up take minutes)."""
    headers = {"Content-Type": "application/activity+json"}
    request = SignedRequest.for_url("POST", url, headers, body)
    added = {
        "Host": request.target_authority,
        "Date": format_http_date(datetime.now(UTC)),
        "Digest": digest_header(body),
    }
    covered = ("(request-target)", "host", "date", "digest", "content-type")
    unsigned = CavageSignature(
        key_id=account.key_id,
        algorithm="rsa-sha256",
        headers=covered,
        signature=b"",
        created=None,
        expires=None,
    )
    text = cavage_signing_string(request.with_headers(added), unsigned).encode()
    signature = base64.b64encode(rsa_sign(private_key(account), text, "rsa-v1_5-sha256"))
    added["Signature"] = (
        f'keyId="{account.key_id}",algorithm="rsa-sha256",'
        f'headers="{" ".join(covered)}",signature="{signature.decode()}"'
    )
    return headers | added


@functools.cache
def private_key(account: Account) -> rsa.RSAPrivateKey:
    return load_private_key(account.key.private_pem)


async def post_all(
    session: aiohttp.ClientSession, requests: list[Signed], concurrency: int
) -> None:
    """POST every request, ``concurrency`` at a time; each must be answered 202."""
    queue = iter(requests)

    async def lane() -> None:
        for request in queue:
            async with session.post(request.url, data=request.body, headers=request.headers) as r:
                await r.read()
                if r.status != 202:
                    raise RuntimeError(f"{request.url} answered {r.status}: {await r.text()}")

    await asyncio.gather(*(lane() for _ in range(concurrency)))


@asynccontextmanager
async def bridge(workdir: Path, port: int) -> AsyncIterator[BridgeContext]:
    """A bridge context on a fresh SQLite file whose base URL is ``127.0.0.1:port``."""
    config = build_config(
        {
            "server": {"base_url": f"http://127.0.0.1:{port}"},
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


async def seed(ctx: BridgeContext) -> tuple[Blog, str]:
    """The blog and its post; the post's object id."""
    now = ctx.clock()
    blog = await ctx.store.add_blog(NewBlog("talkabout", "http://127.0.0.1:9/feed"), now)
    await keys.ensure_keypair(ctx.store, blog.handle, now)
    await keys.ensure_keypair(ctx.store, keys.INSTANCE_OWNER, now)
    entry = FeedEntry(
        id="http://www.talkabout.de/?p=1234",
        link="http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/",
        title="Ein Plädoyer für die Mitteilung",
        content_html="<p>teilhaben lassen, teilnehmen lassen</p>",
        published=now,
    )
    stored = await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), now)
    return blog, ctx.urls.article(blog.handle, stored.slug)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def bridge_run(
    accounts: list[Account], replies: int, concurrency: int, *, separate_worker: bool = False
) -> tuple[float, float, float | None]:
    """Replies per second through the bridge's inbox until each is a stored comment; the
    rate at which the inbox answered them 202 (stored, job enqueued); and, with
    ``separate_worker``, the worker process's CPU per reply (ms).

    One process does everything, as ``feedfed serve`` on SQLite; or (``separate_worker``)
    the inbox stays here and a real ``feedfed worker --kinds inbound`` on the same SQLite
    file processes the replies, as ``feedfed serve --no-workers`` beside it. The warm-up
    replies are processed here either way (the bench's resolver serves the accounts' hosts).
    """
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        async with bridge(Path(tmp), port) as ctx:
            blog, article = await seed(ctx)
            app = web.Application(client_max_size=ctx.config.limits.max_inbox_bytes + 1024)
            app[CONTEXT] = ctx
            inbox.install(app)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
            inbox_url = f"http://127.0.0.1:{port}/inbox"
            worker = JobWorker(
                ctx,
                {INBOUND: dispatch.process_inbound},
                worker_id="bench",
                poll_interval=0.05,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            try:
                async with (
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=concurrency)
                    ) as session,
                    contextlib.AsyncExitStack() as stack,
                ):
                    warmup = [reply(a, article, n, inbox_url) for n, a in enumerate(accounts)]
                    await post_all(session, warmup, concurrency)
                    await until_comments(ctx, blog, len(warmup))
                    pid = None
                    if separate_worker:
                        stop.set()
                        await task
                        pid = await stack.enter_async_context(
                            worker_process(
                                Path(tmp), Path(tmp) / "b.db", f"http://127.0.0.1:{port}"
                            )
                        )
                        cpu_before = process_cpu(pid)
                    start = len(accounts)
                    timed = [
                        reply(accounts[n % len(accounts)], article, start + n, inbox_url)
                        for n in range(replies)
                    ]
                    began = time.perf_counter()
                    await post_all(session, timed, concurrency)
                    accepted = time.perf_counter() - began
                    await until_comments(ctx, blog, len(warmup) + replies)
                    elapsed = time.perf_counter() - began
                    worker_ms = (
                        None if pid is None else (process_cpu(pid) - cpu_before) * 1e3 / replies
                    )
            finally:
                stop.set()
                await task
                await runner.cleanup()
            failed = await ctx.store.list_jobs("dead", INBOUND, limit=10)
            if failed:
                raise RuntimeError(f"inbound jobs failed: {failed[0].last_error}")
            return replies / elapsed, replies / accepted, worker_ms


async def until_comments(ctx: BridgeContext, blog: Blog, count: int) -> None:
    """Wait until ``count`` comments are stored (any state), or fail after a minute."""
    deadline = time.perf_counter() + 60
    while await ctx.store.count_comments(blog.id, states=ALL_STATES) < count:
        if time.perf_counter() > deadline:
            raise RuntimeError("replies were not processed within a minute")
        await asyncio.sleep(0.005)


async def minimal_run(accounts: list[Account], replies: int, concurrency: int) -> float:
    """Requests per second through a handler that only parses and verifies."""
    pems = {account.key_id: account.key.public_pem for account in accounts}
    port = free_port()
    host = f"127.0.0.1:{port}"

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        json.loads(body)
        signed = SignedRequest.from_aiohttp(request, body, scheme="http")
        verify(
            signed,
            pems[key_id_of(signed)],
            now=datetime.now(UTC),
            max_skew=timedelta(hours=1),
            expected_host=host,
        )
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    try:
        url = f"http://{host}/inbox"
        requests = [
            reply(accounts[n % len(accounts)], "http://x.bench/a", n, url) for n in range(replies)
        ]
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency)
        ) as session:
            began = time.perf_counter()
            await post_all(session, requests, concurrency)
            return replies / (time.perf_counter() - began)
    finally:
        await runner.cleanup()


async def main(args: argparse.Namespace) -> None:
    now = datetime.now(UTC)
    accounts = [
        Account(f"http://reader{n}.bench:{{port}}/users/u", keys.generate_keypair(f"r{n}", now))
        for n in range(args.actors)
    ]
    peer_port = free_port()
    accounts = [Account(a.id.replace("{port}", str(peer_port)), a.key) for a in accounts]
    instance = instance_app({a.id: a for a in accounts})
    runner = web.AppRunner(instance, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", peer_port).start()
    one: list[float] = []
    answered: list[float] = []
    two: list[float] = []
    worker_ms: list[float] = []
    minimal: list[float] = []
    try:
        for run in range(args.runs):
            minimal.append(await minimal_run(accounts, args.replies, args.concurrency))
            processed, accepted, _ = await bridge_run(accounts, args.replies, args.concurrency)
            one.append(processed)
            answered.append(accepted)
            processed, _, cpu = await bridge_run(
                accounts, args.replies, args.concurrency, separate_worker=True
            )
            two.append(processed)
            worker_ms.append(cpu or 0.0)
            print(
                f"run {run + 1}: minimal handler {minimal[-1]:.0f}/s; one process {one[-1]:.0f}/s "
                f"({one[-1] / minimal[-1]:.0%}, inbox answered {accepted:.0f}/s); "
                f"web + worker process {two[-1]:.0f}/s ({two[-1] / minimal[-1]:.0%}, "
                f"worker {worker_ms[-1]:.2f} ms CPU per reply)",
                flush=True,
            )
    finally:
        await runner.cleanup()
    m = statistics.median(minimal)
    b1, b2 = statistics.median(one), statistics.median(two)
    ratios1 = sorted(f"{x / y:.0%}" for x, y in zip(one, minimal, strict=True))
    ratios2 = sorted(f"{x / y:.0%}" for x, y in zip(two, minimal, strict=True))
    print(
        f"\n{args.replies} replies by {args.actors} accounts, {args.concurrency} in flight, "
        f"medians of {args.runs} runs:\n"
        f"  minimal handler, parse and verify only:            {m:.0f} requests/s\n"
        f"  bridge, one process (feedfed serve):               {b1:.0f} replies/s"
        f"  = {b1 / m:.0%} (runs: {', '.join(ratios1)})\n"
        f"    (its inbox answered 202 at:                      "
        f"{statistics.median(answered):.0f} requests/s)\n"
        f"  bridge, web + worker process (serve --no-workers\n"
        f"    and feedfed worker on the same SQLite file):     {b2:.0f} replies/s"
        f"  = {b2 / m:.0%} (runs: {', '.join(ratios2)})\n"
        f"    (the worker's CPU per reply:                     "
        f"{statistics.median(worker_ms):.2f} ms)\n"
        f"  target: at least 30 % of the minimal handler"
    )


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replies", type=int, default=1000)
    parser.add_argument("--actors", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(_parse()))
