"""A fake WebSub hub on 127.0.0.1: takes subscription requests, verifies intent, pushes content.

Like a real hub it answers a subscription request with 202 first and verifies the subscriber's
intent afterwards (``GET callback?hub.challenge=...``); tests await :meth:`FakeHub.settled`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web


@dataclass(frozen=True)
class Verification:
    """One intent verification the hub made, and how the subscriber answered."""

    mode: str
    topic: str
    challenge: str
    status: int
    body: str

    @property
    def confirmed(self) -> bool:
        """The subscriber echoed the challenge with a 2xx."""
        return 200 <= self.status < 300 and self.body == self.challenge


@dataclass
class FakeHub:
    """Hub state; ``session`` is the HTTP client the hub uses to call subscribers."""

    session: aiohttp.ClientSession
    subscribe_status: int = 202
    verify: bool = True  # verify intent after accepting a request
    lease_seconds: int | None = None  # granted lease (None: what the subscriber asked)
    topic_override: str | None = None  # verify with this topic instead of the requested one
    requests: list[dict[str, str]] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)
    base: str = ""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _received: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> web.Application:
        """The hub endpoint, at ``/``."""
        app = web.Application()
        app.router.add_post("/", self._request)
        return app

    async def start(self, serve: Callable[[web.Application], Awaitable[str]]) -> str:
        """Start on the ``serve`` fixture; return the hub URL."""
        self.base = await serve(self.app())
        return self.url

    @property
    def url(self) -> str:
        """The hub URL a feed names."""
        return f"{self.base}/"

    @property
    def last(self) -> dict[str, str]:
        """The latest (un)subscription request."""
        return self.requests[-1]

    async def wait_requests(self, count: int) -> None:
        """Return once ``count`` (un)subscription requests have arrived."""
        async with self._received:
            await self._received.wait_for(lambda: len(self.requests) >= count)

    async def settled(self) -> None:
        """Wait for the verifications in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def verify_intent(
        self,
        form: dict[str, str],
        *,
        mode: str | None = None,
        topic: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Verification:
        """Call the subscriber's callback to confirm ``form``'s request, as the hub does."""
        challenge = secrets.token_urlsafe(16)
        params = {
            "hub.mode": mode or form["hub.mode"],
            "hub.topic": topic or self.topic_override or form["hub.topic"],
            "hub.challenge": challenge,
        }
        if params["hub.mode"] == "subscribe":
            lease = self.lease_seconds or int(form.get("hub.lease_seconds") or 86400)
            params["hub.lease_seconds"] = str(lease)
        params.update(extra or {})
        async with self.session.get(form["hub.callback"], params=params) as response:
            body = await response.text()
            result = Verification(
                params["hub.mode"], params["hub.topic"], challenge, response.status, body
            )
        self.verifications.append(result)
        return result

    async def deny(self, form: dict[str, str], reason: str) -> int:
        """Tell the subscriber its subscription was denied; returns the callback's status."""
        params = {"hub.mode": "denied", "hub.topic": form["hub.topic"], "hub.reason": reason}
        async with self.session.get(form["hub.callback"], params=params) as response:
            return response.status

    async def push(
        self,
        body: bytes,
        *,
        form: dict[str, str] | None = None,
        content_type: str = "application/rss+xml; charset=UTF-8",
        method: str = "sha256",
        secret: str | None = None,
        signature: str | None = None,
        signed: bool = True,
    ) -> int:
        """Distribute ``body`` to a subscriber, signed with its secret; returns the status.

        ``secret`` signs with another secret, ``signature`` sends that header value verbatim,
        ``signed=False`` sends no signature at all.
        """
        form = form or self.last
        headers = {
            "Content-Type": content_type,
            "Link": f'<{self.url}>; rel="hub", <{form["hub.topic"]}>; rel="self"',
        }
        if signed:
            key = (secret or form["hub.secret"]).encode("utf-8")
            digest = hmac.new(key, body, getattr(hashlib, method)).hexdigest()
            headers["X-Hub-Signature"] = signature or f"{method}={digest}"
        async with self.session.post(form["hub.callback"], data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def _request(self, request: web.Request) -> web.StreamResponse:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(form)
        async with self._received:
            self._received.notify_all()
        if self.subscribe_status not in (202, 204):
            return web.Response(status=self.subscribe_status, text="hub trouble")
        if self.verify:
            task = asyncio.get_running_loop().create_task(self._verify_later(form))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.Response(status=self.subscribe_status)

    async def _verify_later(self, form: dict[str, str]) -> None:
        # A real hub answers 202 first and verifies afterwards.
        await asyncio.sleep(0)
        await self.verify_intent(form)
