"""Many fake fediverse hosts for a bridge running in another process: one per loopback address.

A ``feedfed`` subprocess cannot use the test suite's resolver, so host names are out; but all
of 127.0.0.0/8 is loopback, so host ``i`` is ``127.0.0.{i + 2}`` on a port of its own, every
one served by the same aiohttp application. Each host has ``actors_per_host`` personal
inboxes (``/users/u{n}/inbox``, no shared inbox).

Every inbox POST is checked as a Mastodon would: the HTTP signature (RFC 9421 or
draft-cavage, :mod:`tests.fakes.httpsig`, independent of ``bridge/``) against the signer's
key, which each host fetches once from the bridge's web processes in turns (as if through a
load balancer in front of them: the key id's path is asked of web process ``i mod n``). A
POST that passes is answered 202 after ``delay`` seconds and counted per inbox with its
activity id, so duplicates show; one that fails is answered 401 and its reason kept.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes import httpsig

ACTIVITY_JSON = "application/activity+json"


@dataclass
class Host:
    """One fake host: its address, port, and the keys it has fetched (key id → key)."""

    index: int
    address: str
    port: int = 0
    keys: dict[str, asyncio.Future[rsa.RSAPublicKey]] = field(default_factory=dict)

    @property
    def authority(self) -> str:
        return f"{self.address}:{self.port}"


class InboxHosts:
    """``hosts`` fake hosts on 127.0.0.2 … with ``actors_per_host`` personal inboxes each."""

    def __init__(
        self, hosts: int, actors_per_host: int, *, web_bases: Sequence[str], delay: float = 0.0
    ) -> None:
        if not 1 <= hosts <= 250:
            raise ValueError("hosts must be 1 to 250 (127.0.0.2 … 127.0.0.251)")
        self.hosts = [Host(i, f"127.0.0.{i + 2}") for i in range(hosts)]
        self.actors_per_host = actors_per_host
        self.web_bases = list(web_bases)
        self.delay = delay
        self.received: dict[str, list[str]] = {}
        """Inbox URL → the ids of the activities it took, in order of arrival."""
        self.refused: list[str] = []
        """Why POSTs were answered 401 (or 400)."""
        self.key_fetches: Counter[str] = Counter()
        """Web process base URL → keys fetched from it."""
        self._by_authority: dict[str, Host] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def followers(self) -> list[tuple[str, str]]:
        """(actor id, inbox URL) of every account on every host (after :meth:`start`)."""
        return [
            (f"http://{host.authority}/users/u{n}", f"http://{host.authority}/users/u{n}/inbox")
            for host in self.hosts
            for n in range(self.actors_per_host)
        ]

    def delivered(self) -> int:
        """How many inboxes have taken at least one activity."""
        return len(self.received)

    def counts(self) -> Counter[str]:
        """Inbox URL → number of activities it took."""
        return Counter({inbox: len(ids) for inbox, ids in self.received.items()})

    async def start(self) -> InboxHosts:
        """Listen on every host's address (an ephemeral port each)."""
        app = web.Application()
        app.router.add_post("/users/{user}/inbox", self._inbox)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for host in self.hosts:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.address, 0))
            host.port = int(sock.getsockname()[1])
            self._by_authority[host.authority] = host
            await web.SockSite(self._runner, sock, backlog=256).start()
        self._session = aiohttp.ClientSession()
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> InboxHosts:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _inbox(self, request: web.Request) -> web.Response:
        host = self._by_authority.get(request.host)
        if host is None:
            return web.Response(status=421, text=f"no fake host answers for {request.host!r}")
        body = await request.read()
        signed = httpsig.Request("POST", request.raw_path, request.headers, body, "http")
        try:
            pending = httpsig.check_request(signed, now=datetime.now(UTC))
            pending.holds(await self._key(host, pending.key_id))
            activity = json.loads(body)
            activity_id = activity["id"]
        except (httpsig.SignatureRejected, ValueError, KeyError, TypeError) as exc:
            self.refused.append(f"{request.url}: {exc}")
            return web.Response(status=401, text=str(exc))
        if self.delay:
            await asyncio.sleep(self.delay)
        inbox = f"http://{host.authority}{request.path}"
        self.received.setdefault(inbox, []).append(activity_id)
        return web.Response(status=202)

    async def _key(self, host: Host, key_id: str) -> rsa.RSAPublicKey:
        """The key ``key_id`` names, fetched once per host from the web process in turn."""
        future = host.keys.get(key_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            host.keys[key_id] = future
            try:
                future.set_result(await self._fetch_key(host, key_id))
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved here: concurrent waiters see it as well
                del host.keys[key_id]
                raise
        return await future

    async def _fetch_key(self, host: Host, key_id: str) -> rsa.RSAPublicKey:
        assert self._session is not None
        base = self.web_bases[host.index % len(self.web_bases)]
        parts = urlsplit(key_id)
        url = base + parts.path
        # The web processes sit behind one public name: the Host header carries it.
        headers = {"Accept": ACTIVITY_JSON, "Host": parts.netloc}
        async with self._session.get(url, headers=headers) as response:
            if response.status != 200:
                raise httpsig.SignatureRejected(f"key fetch {url}: {response.status}")
            actor = await response.json(content_type=None)
        self.key_fetches[base] += 1
        key = actor.get("publicKey") or {}
        if key.get("id") != key_id or key.get("owner") != actor.get("id"):
            raise httpsig.SignatureRejected(f"{url} does not own {key_id}")
        return httpsig.load_public(key["publicKeyPem"])
