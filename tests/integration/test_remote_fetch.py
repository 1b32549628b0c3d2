"""fetch_activity_json against a real aiohttp server on 127.0.0.1, reached by test host names.

``alice.test`` and ``bob.test`` resolve to 127.0.0.1 (exempted from the guard by name:
``127.0.0.1/32``); ``metadata.test`` and ``intranet.test`` resolve to addresses the guard must
refuse. A tripwire aborts any request about to connect beyond loopback, so a broken guard
fails these tests instead of reaching the network.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.activitypub.addresses import AddressPolicy, GuardedConnector, open_remote_session
from bridge.activitypub.remote import (
    AS_ACCEPT,
    RemoteDocument,
    fetch_activity_json,
    json_depth,
    parse_json_object,
    same_resource,
)
from bridge.errors import (
    AddressNotAllowed,
    IdMismatch,
    NotActivityJSON,
    RemoteConnectionError,
    RemoteFetchError,
    RemoteHTTPError,
    RemoteTimeout,
    RemoteTooLarge,
    TooManyRedirects,
    UnsupportedURL,
)
from tests.fakes.resolver import MappingResolver, loopback_tripwire

AS_TYPE = "application/activity+json"
LD_TYPE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
LOOPBACK_EXEMPT = AddressPolicy(exempt_networks=(ipaddress.ip_network("127.0.0.1/32"),))
NAMES: dict[str, str] = {
    "alice.test": "127.0.0.1",
    "bob.test": "127.0.0.1",
    "metadata.test": "169.254.169.254",
    "intranet.test": "10.0.0.1",
}

Serve = Callable[[web.Application], Awaitable[str]]


class Remote:
    """A fake fediverse server; it records every request it receives."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.port = 0
        self.app = web.Application()
        self.app.middlewares.append(self.record)
        self.app.router.add_route("GET", "/{tail:.*}", self.handle)

    @web.middleware
    async def record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append(request)
        return await handler(request)

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        own_id = f"http://{request.host}{path}"
        actor = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": own_id,
            "type": "Person",
            "preferredUsername": "alice",
            "inbox": f"{own_id}/inbox",
        }
        if path in ("/users/alice", "/signed/final"):
            return web.json_response(actor, content_type=AS_TYPE)
        if path == "/ld":
            return web.Response(text=json.dumps(actor), headers={"Content-Type": LD_TYPE})
        if path == "/ld-no-profile":
            return web.json_response(actor, content_type="application/ld+json")
        if path == "/plain-json":
            return web.json_response(actor)
        if path == "/html":
            return web.Response(text="<html><body>hi</body></html>", content_type="text/html")
        if path == "/no-type":
            return web.Response(body=json.dumps(actor).encode())
        if path == "/wrong-id":
            return web.json_response(
                {**actor, "id": "http://bob.test/users/mallory"}, content_type=AS_TYPE
            )
        if path == "/no-id":
            return web.json_response({"type": "Note"}, content_type=AS_TYPE)
        if path == "/array":
            return web.json_response([actor], content_type=AS_TYPE)
        if path == "/nan":
            return web.Response(text=f'{{"id": "{own_id}", "x": NaN}}', content_type=AS_TYPE)
        if path == "/latin1":
            body = json.dumps({"id": own_id, "name": "Jörg"}, ensure_ascii=False).encode("latin-1")
            return web.Response(body=body, headers={"Content-Type": AS_TYPE})
        if path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])
            target = "/users/alice" if left == 0 else f"/hops/{left - 1}"
            raise web.HTTPFound(target)
        if path == "/to-bob":
            raise web.HTTPMovedPermanently(self.url("bob.test", "/users/alice"))
        if path == "/to-intranet-literal":
            raise web.HTTPFound("http://10.0.0.1/users/alice")
        if path == "/to-metadata-literal":
            raise web.HTTPTemporaryRedirect("http://169.254.169.254/latest/meta-data/")
        if path == "/to-metadata-name":
            raise web.HTTPFound(self.url("metadata.test", "/"))
        if path == "/to-intranet-name":
            raise web.HTTPPermanentRedirect("http://intranet.test/admin")
        if path == "/to-loopback-v6":
            raise web.HTTPFound(f"http://[::ffff:127.0.0.1]:{self.port}/users/alice")
        if path == "/to-file":
            raise web.HTTPFound("file:///etc/passwd")
        if path == "/to-credentials":
            raise web.HTTPFound(self.url("user:secret@bob.test", "/users/alice"))
        if path == "/no-location":
            return web.Response(status=302)
        if path == "/signed/start":
            raise web.HTTPFound(self.url("bob.test", "/signed/final"))
        if path == "/big":
            filler = "x" * (2 * 1024 * 1024)
            return web.json_response({"id": own_id, "filler": filler}, content_type=AS_TYPE)
        if path == "/big-chunked":
            return await self.stream(request, [b'{"x": "', *[b"y" * 65536] * 40, b'"}'])
        if path == "/bomb":
            return web.Response(
                body=gzip_bomb(), headers={"Content-Type": AS_TYPE, "Content-Encoding": "gzip"}
            )
        if path == "/gzip":
            return web.Response(
                body=gzip.compress(json.dumps(actor).encode()),
                headers={"Content-Type": AS_TYPE, "Content-Encoding": "gzip"},
            )
        if path == "/deep":
            body = '{"id": "' + own_id + '", "x": ' + "[" * 10_000 + "]" * 10_000 + "}"
            return web.Response(text=body, content_type=AS_TYPE)
        if path == "/slow-headers":
            await asyncio.sleep(5)
            return web.json_response(actor, content_type=AS_TYPE)
        if path == "/slow-body":
            return await self.stream(request, [b"{"] + [b" "] * 100, pause=0.05)
        if path == "/404":
            raise web.HTTPNotFound()
        if path == "/410":
            raise web.HTTPGone()
        if path == "/500":
            raise web.HTTPInternalServerError()
        if path == "/reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        raise web.HTTPNotFound()

    async def stream(
        self, request: web.Request, chunks: list[bytes], pause: float = 0.0
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": AS_TYPE})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
            if pause:
                await asyncio.sleep(pause)
        await response.write_eof()
        return response


_BOMB: list[bytes] = []


def gzip_bomb() -> bytes:
    """64 MiB of zeros in about 64 KiB of gzip, built once."""
    if not _BOMB:
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = b"\0" * (1 << 20)
        _BOMB.append(b"".join(packer.compress(block) for _ in range(64)) + packer.flush())
    return _BOMB[0]


@pytest.fixture
async def remote(serve: Serve) -> Remote:
    server = Remote()
    base = await serve(server.app)
    server.port = int(base.rsplit(":", 1)[1])
    return server


def guarded(policy: AddressPolicy = LOOPBACK_EXEMPT) -> aiohttp.ClientSession:
    resolver = MappingResolver(NAMES)
    connector = GuardedConnector(policy, resolver=resolver)
    return aiohttp.ClientSession(connector=connector, trace_configs=[loopback_tripwire(resolver)])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with guarded() as client:
        yield client


async def test_fetches_an_actor(remote: Remote, session: aiohttp.ClientSession) -> None:
    url = remote.url("alice.test", "/users/alice")
    document = await fetch_activity_json(session, url)
    assert isinstance(document, RemoteDocument)
    assert document.url == url
    assert document.data["id"] == url
    assert document.data["preferredUsername"] == "alice"
    assert document.headers["Content-Type"].startswith(AS_TYPE)
    [request] = remote.requests
    assert request.headers["Accept"] == AS_ACCEPT
    assert request.host == f"alice.test:{remote.port}"


async def test_open_remote_session_is_guarded_and_works(remote: Remote) -> None:
    resolver = MappingResolver(NAMES)
    async with open_remote_session(
        LOOPBACK_EXEMPT, user_agent="feedfed-test/1", resolver=resolver
    ) as client:
        url = remote.url("alice.test", "/users/alice")
        assert (await fetch_activity_json(client, url)).data["id"] == url
        with pytest.raises(AddressNotAllowed):
            await fetch_activity_json(client, remote.url("alice.test", "/to-intranet-name"))
    assert remote.requests[0].headers["User-Agent"] == "feedfed-test/1"
    assert resolver.lookups[-1] == "intranet.test"


async def test_ld_json_with_profile_and_gzip_are_accepted(
    remote: Remote, session: aiohttp.ClientSession
) -> None:
    for path in ("/ld", "/gzip"):
        url = remote.url("alice.test", path)
        assert (await fetch_activity_json(session, url)).data["id"] == url


async def test_fragment_is_not_sent_and_not_compared(
    remote: Remote, session: aiohttp.ClientSession
) -> None:
    document = await fetch_activity_json(session, remote.url("alice.test", "/users/alice#main-key"))
    assert document.url == remote.url("alice.test", "/users/alice")
    assert remote.requests[0].path_qs == "/users/alice"


async def test_id_mismatch(remote: Remote, session: aiohttp.ClientSession) -> None:
    with pytest.raises(IdMismatch, match="mallory"):
        await fetch_activity_json(session, remote.url("alice.test", "/wrong-id"))
    with pytest.raises(IdMismatch, match="no string id"):
        await fetch_activity_json(session, remote.url("alice.test", "/no-id"))


async def test_redirects_within_limit(remote: Remote, session: aiohttp.ClientSession) -> None:
    document = await fetch_activity_json(session, remote.url("alice.test", "/hops/2"))
    assert document.url == remote.url("alice.test", "/users/alice")
    assert [r.path for r in remote.requests] == ["/hops/2", "/hops/1", "/hops/0", "/users/alice"]


async def test_redirect_to_another_host_must_match_final_url(
    remote: Remote, session: aiohttp.ClientSession
) -> None:
    document = await fetch_activity_json(session, remote.url("alice.test", "/to-bob"))
    assert document.url == remote.url("bob.test", "/users/alice")
    assert document.data["id"] == document.url


async def test_too_many_redirects(remote: Remote, session: aiohttp.ClientSession) -> None:
    with pytest.raises(TooManyRedirects):
        await fetch_activity_json(session, remote.url("alice.test", "/hops/3"))
    assert len(remote.requests) == 4
    with pytest.raises(TooManyRedirects):
        await fetch_activity_json(session, remote.url("alice.test", "/hops/1"), max_redirects=1)


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/to-intranet-literal", "10.0.0.1"),
        ("/to-metadata-literal", "169.254.169.254"),
        ("/to-metadata-name", "169.254.169.254"),
        ("/to-intranet-name", "10.0.0.1"),
        ("/to-loopback-v6", "127.0.0.1"),
    ],
)
async def test_redirect_to_refused_address(
    path: str, refused: str, remote: Remote, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AddressNotAllowed, match=refused):
        await fetch_activity_json(session, remote.url("alice.test", path))
    assert [r.path for r in remote.requests] == [path]


@pytest.mark.parametrize(("path", "error"), [("/to-file", "http"), ("/to-credentials", "cred")])
async def test_redirect_to_unsupported_url(
    path: str, error: str, remote: Remote, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(UnsupportedURL, match=error):
        await fetch_activity_json(session, remote.url("alice.test", path))
    assert len(remote.requests) == 1


@pytest.mark.parametrize(
    "url", ["ftp://alice.test/x", "/users/alice", "http:///nohost", "https://u:p@alice.test/"]
)
async def test_unsupported_urls(url: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(UnsupportedURL):
        await fetch_activity_json(session, url)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/html", "text/html"),
        ("/plain-json", "application/json"),
        ("/ld-no-profile", "profile"),
        ("/no-type", "application/octet-stream"),
        ("/array", "list"),
        ("/nan", "NaN"),
        ("/latin1", "UTF-8"),
    ],
)
async def test_not_activity_json(
    path: str, problem: str, remote: Remote, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(NotActivityJSON, match=problem):
        await fetch_activity_json(session, remote.url("alice.test", path))


async def test_deep_nesting_is_refused_quickly(
    remote: Remote, session: aiohttp.ClientSession
) -> None:
    started = time.perf_counter()
    with pytest.raises(NotActivityJSON, match="nested 10001 levels"):
        await fetch_activity_json(session, remote.url("alice.test", "/deep"))
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_too_large(path: str, remote: Remote, session: aiohttp.ClientSession) -> None:
    with pytest.raises(RemoteTooLarge) as caught:
        await fetch_activity_json(session, remote.url("alice.test", path))
    assert caught.value.limit == 1_048_576


async def test_gzip_bomb_is_cut_off_without_inflating(
    remote: Remote, session: aiohttp.ClientSession
) -> None:
    gzip_bomb()
    tracemalloc.start()
    try:
        with pytest.raises(RemoteTooLarge):
            await fetch_activity_json(session, remote.url("alice.test", "/bomb"), max_bytes=100_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 64 MiB inflated would show here; the bounded stream keeps the peak small.
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize("path", ["/slow-headers", "/slow-body"])
async def test_timeout_covers_the_whole_exchange(
    path: str, remote: Remote, session: aiohttp.ClientSession
) -> None:
    started = time.perf_counter()
    with pytest.raises(RemoteTimeout):
        await fetch_activity_json(session, remote.url("alice.test", path), timeout=0.3)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(("path", "status", "gone"), [("/404", 404, False), ("/410", 410, True)])
async def test_http_errors_carry_status(
    path: str, status: int, gone: bool, remote: Remote, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(RemoteHTTPError) as caught:
        await fetch_activity_json(session, remote.url("alice.test", path))
    assert caught.value.status == status
    assert caught.value.gone is gone


async def test_other_failures(remote: Remote, session: aiohttp.ClientSession) -> None:
    with pytest.raises(RemoteHTTPError) as caught:
        await fetch_activity_json(session, remote.url("alice.test", "/500"))
    assert caught.value.status == 500
    with pytest.raises(RemoteHTTPError, match="without Location"):
        await fetch_activity_json(session, remote.url("alice.test", "/no-location"))
    with pytest.raises(RemoteConnectionError):
        await fetch_activity_json(session, remote.url("alice.test", "/reset"))
    with pytest.raises(RemoteConnectionError):
        await fetch_activity_json(session, "http://unknown.test/")


async def test_signer_is_called_for_each_hop(
    remote: Remote, session: aiohttp.ClientSession
) -> None:
    calls: list[tuple[str, str, dict[str, str]]] = []

    def signer(method: str, url: str, headers: Mapping[str, str]) -> Mapping[str, str]:
        calls.append((method, url, dict(headers)))
        return {"Signature": f'keyId="instance#main-key",n="{len(calls)}"', "Date": "sometime"}

    start = remote.url("alice.test", "/signed/start")
    final = remote.url("bob.test", "/signed/final")
    document = await fetch_activity_json(session, start, signer=signer)
    assert document.url == final
    assert [(method, url) for method, url, _ in calls] == [("GET", start), ("GET", final)]
    assert [headers["Host"] for _, _, headers in calls] == [
        f"alice.test:{remote.port}",
        f"bob.test:{remote.port}",
    ]
    assert all(headers["Accept"] == AS_ACCEPT for _, _, headers in calls)
    assert [r.headers["Signature"] for r in remote.requests] == [
        'keyId="instance#main-key",n="1"',
        'keyId="instance#main-key",n="2"',
    ]
    assert [r.host for r in remote.requests] == [
        f"alice.test:{remote.port}",
        f"bob.test:{remote.port}",
    ]


async def test_default_policy_refuses_loopback_before_connecting(remote: Remote) -> None:
    async with guarded(AddressPolicy()) as client:
        for url in (
            remote.url("alice.test", "/users/alice"),
            remote.url("127.0.0.1", "/users/alice"),
            remote.url("[::ffff:127.0.0.1]", "/users/alice"),
        ):
            with pytest.raises(AddressNotAllowed, match="loopback"):
                await fetch_activity_json(client, url)
    assert remote.requests == []


async def test_allow_private_reaches_loopback_but_never_metadata(remote: Remote) -> None:
    async with guarded(AddressPolicy(allow_private=True)) as client:
        url = remote.url("alice.test", "/users/alice")
        assert (await fetch_activity_json(client, url)).url == url
        with pytest.raises(AddressNotAllowed, match="link-local"):
            await fetch_activity_json(client, remote.url("alice.test", "/to-metadata-name"))


async def test_unguarded_session_is_rejected(http: aiohttp.ClientSession) -> None:
    with pytest.raises(TypeError, match="open_remote_session"):
        await fetch_activity_json(http, "http://alice.test/users/alice")


async def test_every_failure_is_a_remote_fetch_error(
    remote: Remote, session: aiohttp.ClientSession
) -> None:
    for path in ("/html", "/404", "/to-metadata-name", "/hops/5", "/wrong-id"):
        with pytest.raises(RemoteFetchError) as caught:
            await fetch_activity_json(session, remote.url("alice.test", path))
        assert caught.value.url


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "]]]{{{", "b": [{}]}') == 3
    assert json_depth('{"a": "\\"[[[", "b": 1}') == 1
    assert json_depth('"[[[' + "\\" * 3) == 0
    assert json_depth("") == 0


def test_the_depth_limit_holds_whether_or_not_brackets_are_few() -> None:
    def nested(depth: int) -> bytes:
        return ('{"a": ' * depth + "1" + "}" * depth).encode()

    assert parse_json_object(nested(4), 4, "u") == {"a": {"a": {"a": {"a": 1}}}}
    with pytest.raises(NotActivityJSON, match="5 levels"):
        parse_json_object(nested(5), 4, "u")
    # Many brackets, in strings or side by side, but none deeper than the limit.
    wide = {"s": "{[{[{[", "l": [[1], [2], [3], [4]]}
    assert parse_json_object(json.dumps(wide).encode(), 3, "u") == wide


def test_json_depth_is_linear_on_hostile_input() -> None:
    for text in ("[" * 1_000_000, '"' + '\\"' * 500_000, '\\"' * 500_000, '"' * 1_000_000):
        started = time.perf_counter()
        json_depth(text)
        assert time.perf_counter() - started < 0.5


def test_parse_json_object_limit_is_inclusive() -> None:
    url = "http://alice.test/x"
    nested: Any = {}
    for _ in range(63):
        nested = {"n": nested}
    assert parse_json_object(json.dumps(nested).encode(), 64, url)
    with pytest.raises(NotActivityJSON, match="nested 65"):
        parse_json_object(json.dumps({"n": nested}).encode(), 64, url)
    assert parse_json_object(b'\xef\xbb\xbf{"id": "x"}', 64, url) == {"id": "x"}


@pytest.mark.parametrize(
    ("claimed", "url", "same"),
    [
        ("https://a.example/u/1", "https://a.example/u/1", True),
        ("https://A.Example:443/u/1", "https://a.example/u/1", True),
        ("https://a.example", "https://a.example/", True),
        ("https://a.example/u/1#main-key", "https://a.example/u/1", True),
        ("https://a.example/u/1?x=1", "https://a.example/u/1?x=1", True),
        ("http://a.example/u/1", "https://a.example/u/1", False),
        ("https://a.example:8443/u/1", "https://a.example/u/1", False),
        ("https://a.example/u/1/", "https://a.example/u/1", False),
        ("https://a.example/U/1", "https://a.example/u/1", False),
        ("https://a.example/u/1?x=2", "https://a.example/u/1?x=1", False),
        ("https://b.example/u/1", "https://a.example/u/1", False),
        ("/u/1", "https://a.example/u/1", False),
    ],
)
def test_same_resource(claimed: str, url: str, same: bool) -> None:
    from yarl import URL

    assert same_resource(claimed, URL(url)) is same
