"""Fake fediverse instances for the test suite: real aiohttp servers on 127.0.0.1.

Each :class:`FakeInstance` stands for one server under a test host name (``mastodon.test``):
Mastodon-shaped actors with their own RSA-2048 keys, WebFinger, per-actor and shared inboxes.
Every inbox POST is checked with signature code written in the tests
(:mod:`tests.fakes.httpsig`, independent of ``bridge/``) against the signer's key fetched back
from the bridge, then answered 202, or 401 as Mastodon does, and recorded with its verdict.
Knobs make it misbehave: fail with a status for a while, answer slowly, treat an account as
gone (410), demand signed fetches (authorized fetch), refuse RFC 9421 signatures. Its actors
also send signed activities (``send``), broken on demand (:class:`Tamper`).

Instances are served by a :class:`~tests.fakes.instance_server.FakeServer`, which answers
for many host names on one port; a lone instance starts its own. The bridge reaches them
through a resolver mapping ``server.names`` to 127.0.0.1, so their URLs are
``http://{name}:{port}/...``; they reach the bridge through a session the test injects, or
one whose resolver knows only loopback names (theirs and ``resolve``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from multidict import CIMultiDict

from tests.fakes import httpsig
from tests.fakes.instance_actors import ACTIVITY_JSON, FakeActor
from tests.fakes.instance_records import UNCHECKED, Log, Received, Verdict, id_of
from tests.fakes.instance_signing import KeyRing, Tamper, refuse_beyond_loopback, sign_request

if TYPE_CHECKING:
    from tests.fakes.instance_server import FakeServer

Clock = Callable[[], datetime]
_ACTOR_PAGES = ("", "/followers", "/following", "/outbox")


def wall_clock() -> datetime:
    """Real time (tests whose bridge runs on a FakeClock pass that clock instead)."""
    return datetime.now(UTC)


@dataclass
class _Failure:
    status: int
    remaining: int | None
    retry_after: str | None


class FakeInstance:
    """A fake fediverse server under the test host name ``name`` (see the module docstring).

    ``key`` is the instance actor's (fresh when not given); ``clock`` dates our signatures and
    judges theirs within ``max_skew``; ``session`` and ``resolve`` apply when the instance
    starts a server of its own (on a :class:`FakeServer`, the server's are used).
    """

    def __init__(
        self,
        name: str,
        *,
        key: rsa.RSAPrivateKey | None = None,
        clock: Clock = wall_clock,
        max_skew: timedelta = timedelta(hours=1),
        session: aiohttp.ClientSession | None = None,
        resolve: Mapping[str, str] | None = None,
        fetch_timeout: float = 10.0,
    ) -> None:
        self.name = name.lower()
        self.key = key or httpsig.new_key()
        self.clock, self.max_skew, self.fetch_timeout = clock, max_skew, fetch_timeout
        self._session, self._resolve = session, dict(resolve or {})
        self.server: FakeServer | None = None
        self._own_server = False
        self.actors: dict[str, FakeActor] = {}
        self.instance_actor = FakeActor(
            self,
            self.name,
            self.key,
            "/actor",
            self.name,
            type="Application",
            manually_approves_followers=True,
        )
        # behaviour knobs
        self.require_signed_fetch = False  # authorized fetch: GETs of actors must be signed
        self.reject_rfc9421 = False  # 401 to RFC 9421-signed POSTs (a cavage-only server)
        self.delay = 0.0  # seconds before an inbox POST is answered
        self.redirects: dict[str, str] = {}  # GET path -> Location (302)
        self._failure: _Failure | None = None
        # what happened
        self.log = Log()  # inbox POSTs
        self.fetches: list[Received] = []  # GETs of our actors and their collections
        self.in_flight = self.peak_in_flight = 0  # concurrent inbox POSTs
        self.follows: dict[str, tuple[FakeActor, str]] = {}  # Follow id -> (follower, target)
        self.accepted: set[str] = set()
        self.rejected: set[str] = set()
        self.keys = KeyRing(self.fetch)

    @property
    def authority(self) -> str:
        """``name:port``, as the ``Host`` header of a request to this instance reads."""
        if self.server is None or self.server.port is None:
            raise RuntimeError(f"{self.name} is not started")
        return f"{self.name}:{self.server.port}"

    @property
    def base(self) -> str:
        """``http://name:port``."""
        return f"http://{self.authority}"

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session the instance fetches keys and sends activities with."""
        if self.server is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.server.session

    async def start(self) -> FakeInstance:
        """Serve on a server of its own, unless already added to a :class:`FakeServer`."""
        if self.server is None:
            # Imported here: the server module builds instances, so it imports this one.
            from tests.fakes.instance_server import FakeServer

            FakeServer(session=self._session, resolve=self._resolve).add(self)
            self._own_server = True
        assert self.server is not None
        await self.server.start()
        return self

    async def close(self) -> None:
        """Stop the server this instance started for itself."""
        if self._own_server and self.server is not None:
            await self.server.close()

    async def __aenter__(self) -> FakeInstance:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def add_actor(
        self,
        username: str,
        *,
        name: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        shared_inbox: bool = True,
        also_known_as: Iterable[str] = (),
        moved_to: str | None = None,
        manually_approves_followers: bool = False,
        type: str = "Person",
    ) -> FakeActor:
        """A new account with a fresh RSA-2048 key (unless ``key`` is given)."""
        actor = FakeActor(
            self,
            username,
            key or httpsig.new_key(),
            f"/users/{username}",
            name if name is not None else username.title(),
            type=type,
            has_shared_inbox=shared_inbox,
            also_known_as=list(also_known_as),
            moved_to=moved_to,
            manually_approves_followers=manually_approves_followers,
        )
        self.actors[username] = actor
        return actor

    def gone(self, actor: FakeActor) -> None:
        """The account is deleted: its document and its inbox answer 410 from now on."""
        actor.gone = True

    def fail_with(
        self, status: int, count: int | None = None, retry_after: str | None = None
    ) -> None:
        """Answer the next ``count`` inbox POSTs (all, until cleared, if None) with ``status``,
        unread and unverified, as a server that is down would."""
        self._failure = _Failure(status, count, retry_after)

    def clear_failures(self) -> None:
        """Answer inbox POSTs normally again."""
        self._failure = None

    # what arrived

    @property
    def received(self) -> list[Received]:
        """Every inbox POST, in order, with the verdict on its signature and our answer."""
        return self.log.entries

    def deliveries(self) -> list[Received]:
        """The inbox POSTs taken (2xx)."""
        return self.log.deliveries()

    def activities_of_type(self, kind: str) -> list[dict[str, Any]]:
        """The activities of type ``kind`` taken."""
        return self.log.activities_of_type(kind)

    async def wait_for(
        self, predicate: Callable[[Received], bool], timeout: float = 10
    ) -> Received:
        """The first inbox POST matching ``predicate``, waiting up to ``timeout`` seconds."""
        return await self.log.wait_for(predicate, timeout)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        """Return once ``condition()`` holds, checked again after each inbox POST."""
        await self.log.wait_until(condition, timeout)

    def following(self, actor: FakeActor) -> set[str]:
        """What ``actor`` follows: targets that accepted its Follow and were not unfollowed."""
        return {
            target
            for follow_id, (follower, target) in self.follows.items()
            if follower is actor and follow_id in self.accepted
        }

    def followers_digest(self, target: str) -> str:
        """FEP-8fcf: XOR of SHA-256 of the ids of our actors following ``target``, in hex."""
        digest = 0
        for follow_id, (follower, followed) in self.follows.items():
            if followed == target and follow_id in self.accepted:
                digest ^= int.from_bytes(hashlib.sha256(follower.id.encode()).digest(), "big")
        return f"{digest:064x}"

    # what our actors do

    def follow(self, actor: FakeActor, target: str) -> dict[str, Any]:
        """A Follow of ``target`` by ``actor``, remembered so that its Accept is recognised."""
        activity = actor.activity("Follow", target)
        self.follows[activity["id"]] = (actor, target)
        return activity

    async def send(
        self,
        actor: FakeActor,
        url: str,
        activity: Mapping[str, Any] | bytes,
        *,
        scheme: str = "cavage",
        tamper: Tamper | None = None,
        content_type: str = ACTIVITY_JSON,
    ) -> tuple[int, str]:
        """Sign ``activity`` (a dict, or bytes sent as they are) as ``actor`` and POST it;
        the status and text of the answer."""
        refuse_beyond_loopback(url)
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        headers, body = sign_request(
            "POST",
            url,
            body,
            key=actor.key,
            key_id=actor.key_id,
            now=self.clock(),
            scheme=scheme,
            tamper=tamper,
            content_type=content_type,
        )
        async with self.session.post(
            url, data=body, headers=headers, allow_redirects=False
        ) as response:
            status, text = response.status, await response.text()
        if status < 300 and isinstance(activity, Mapping) and activity.get("type") == "Undo":
            self.accepted.discard(id_of(activity.get("object")) or "")
        return status, text

    async def fetch(
        self, url: str, *, signed_by: FakeActor | None = None, scheme: str = "cavage"
    ) -> tuple[int, Any]:
        """GET ``url`` as ActivityStreams, signed by ``signed_by`` (else the instance actor,
        as Mastodon signs its fetches); the status and the JSON (None if it is none)."""
        refuse_beyond_loopback(url)
        signer = signed_by or self.instance_actor
        headers, _ = sign_request(
            "GET", url, b"", key=signer.key, key_id=signer.key_id, now=self.clock(), scheme=scheme
        )
        headers["Accept"] = ACTIVITY_JSON
        timeout = aiohttp.ClientTimeout(total=self.fetch_timeout)
        async with self.session.get(
            url, headers=headers, allow_redirects=False, timeout=timeout
        ) as response:
            status, raw = response.status, await response.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    # serving

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request addressed to this instance."""
        if request.method == "POST":
            return await self._post(request)
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405)
        if request.path in self.redirects:
            return web.Response(status=302, headers={"Location": self.redirects[request.path]})
        if request.path == "/.well-known/webfinger":
            return self._webfinger(request.query.get("resource", ""))
        actor, rest = self._route(request.path)
        if actor is None or rest not in _ACTOR_PAGES:
            return web.json_response({"error": "Not Found"}, status=404)
        # The instance actor is served as it is, always: it is how others check the
        # signatures on our own fetches (checking its fetch would need its fetch).
        guarded = self.require_signed_fetch and actor is not self.instance_actor
        verdict = UNCHECKED
        if actor is not self.instance_actor and (guarded or "Signature" in request.headers):
            verdict = await self._verify(request, b"", None)
        status = 410 if actor.gone else 401 if guarded and not verdict.ok else 200
        self.fetches.append(self._record(request, b"", None, verdict, status))
        if status != 200:
            error = verdict.reason if status == 401 else "Gone"
            return web.json_response({"error": error}, status=status)
        document = actor.collection(actor.id + rest) if rest else actor.document()
        return web.json_response(document, content_type=ACTIVITY_JSON)

    async def _post(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            body = await request.read()
            status, verdict, document, headers = await self._inbox(request, body)
        finally:
            self.in_flight -= 1
        entry = self._record(request, body, document, verdict, status)
        self.log.add(entry)
        if self.server is not None:
            self.server.log.add(entry)
        return web.Response(status=status, headers=headers)

    async def _inbox(
        self, request: web.Request, body: bytes
    ) -> tuple[int, Verdict, Any, dict[str, str]]:
        failure = self._failure
        if failure is not None:
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failure = None
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return failure.status, UNCHECKED, None, headers
        actor, rest = self._route(request.path)
        if request.path != "/inbox" and (actor is None or rest != "/inbox"):
            return 404, UNCHECKED, None, {}
        if actor is not None and actor.gone:
            return 410, UNCHECKED, None, {}
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return 400, UNCHECKED, None, {}
        if not isinstance(document, dict):
            return 400, UNCHECKED, document, {}
        verdict = await self._verify(request, body, id_of(document.get("actor")) or "")
        if not verdict.ok:
            return 401, verdict, document, {}
        self._take(document)
        return 202, verdict, document, {}

    def _take(self, activity: dict[str, Any]) -> None:
        """Note the answers to our Follows: an Accept or Reject by the followed actor."""
        follow_id = id_of(activity.get("object")) or ""
        follow = self.follows.get(follow_id)
        if follow is None or follow[1] != id_of(activity.get("actor")):
            return
        if activity.get("type") == "Accept":
            self.accepted.add(follow_id)
        elif activity.get("type") == "Reject":
            self.accepted.discard(follow_id)
            self.rejected.add(follow_id)

    async def _verify(
        self, request: web.Request, body: bytes, activity_actor: str | None
    ) -> Verdict:
        signed = httpsig.Request(
            request.method, request.raw_path, request.headers, body, request.scheme
        )
        return await self.keys.verify(
            signed,
            authority=self.authority,
            now=self.clock(),
            max_skew=self.max_skew,
            activity_actor=activity_actor,
            accept_rfc9421=not self.reject_rfc9421,
        )

    def _record(
        self, request: web.Request, body: bytes, document: Any, verdict: Verdict, status: int
    ) -> Received:
        headers = CIMultiDict(request.headers)
        url = self.base + request.path
        return Received(self.name, request.method, url, headers, body, document, verdict, status)

    def _route(self, path: str) -> tuple[FakeActor | None, str]:
        if path == "/actor" or path.startswith("/actor/"):
            return self.instance_actor, path[len("/actor") :]
        if path.startswith("/users/"):
            username, slash, rest = path[len("/users/") :].partition("/")
            return self.actors.get(username), slash + rest
        return None, ""

    def _webfinger(self, resource: str) -> web.Response:
        user, _, domain = resource.removeprefix("acct:").partition("@")
        actor = self.instance_actor if user == self.name else self.actors.get(user)
        if actor is None or domain.lower() not in (self.name, self.authority):
            return web.json_response({"error": "Not Found"}, status=404)
        links = [{"rel": "self", "type": ACTIVITY_JSON, "href": actor.id}]
        jrd = {"subject": f"acct:{user}@{self.name}", "aliases": [actor.id], "links": links}
        return web.json_response(jrd, content_type="application/jrd+json")
