"""fetch_feed / fetch_status against real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from bridge.errors import (
    FeedGone,
    FeedTooLarge,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
)
from bridge.ingest.fetch import ACCEPT, FetchResult, fetch_feed, fetch_status

TALKABOUT = Path(__file__).resolve().parents[1] / "data" / "talkabout" / "feed.rss"
FEED = TALKABOUT.read_bytes()
MB = 1024 * 1024
UA = "feedfed-test/1.0 (+http://127.0.0.1/)"
ETAG = '"v1-abc"'
LAST_MODIFIED = "Sun, 21 Feb 2010 16:53:00 GMT"

Serve = Callable[[web.Application], Awaitable[str]]


class Server:
    """A feed host with every misbehaviour the fetcher must survive; records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.release = asyncio.Event()  # set at teardown so stalled handlers finish
        self.written = 0  # bytes the streaming handlers managed to send

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feed", self.feed)
        app.router.add_get("/redirect/{code}/{rest:.*}", self.redirect)
        app.router.add_get("/relative-redirect", self.relative_redirect)
        app.router.add_get("/loop-a", self.loop_a)
        app.router.add_get("/loop-b", self.loop_b)
        app.router.add_get("/status/{code}", self.status)
        app.router.add_get("/big", self.big)
        app.router.add_get("/declared-big", self.declared_big)
        app.router.add_get("/bomb", self.bomb)
        app.router.add_get("/gzipped", self.gzipped)
        app.router.add_get("/sleep", self.sleep)
        app.router.add_get("/stall", self.stall)
        app.router.add_get("/linked", self.linked)
        app.router.add_get("/no-location", self.no_location)
        app.router.add_get("/to-ftp", self.to_ftp)
        return app

    def _record(self, request: web.Request) -> None:
        self.seen.append((request.path, dict(request.headers)))

    async def feed(self, request: web.Request) -> web.Response:
        self._record(request)
        validators = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
        if request.headers.get("If-None-Match") == ETAG:
            return web.Response(status=304, headers={"ETag": ETAG})
        if request.headers.get("If-Modified-Since") == LAST_MODIFIED:
            return web.Response(status=304)  # repeats no validator on purpose
        return web.Response(
            body=FEED, headers={**validators, "Content-Type": "application/rss+xml; charset=UTF-8"}
        )

    async def redirect(self, request: web.Request) -> web.Response:
        """``/redirect/301/redirect/308/feed`` answers 301 to ``/redirect/308/feed``, etc."""
        self._record(request)
        code = int(request.match_info["code"])
        return web.Response(status=code, headers={"Location": "/" + request.match_info["rest"]})

    async def relative_redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=301, headers={"Location": "feed"})

    async def loop_a(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop-b"})

    async def loop_b(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/loop-a"})

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status page " * 500)

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, chunks: Iterable[bytes]
    ) -> None:
        await response.prepare(request)
        try:
            for chunk in chunks:
                await response.write(chunk)
                self.written += len(chunk)
        except ConnectionResetError:
            return  # the client hung up, which is what these tests want it to do

    async def big(self, request: web.Request) -> web.StreamResponse:
        """50 MB streamed in 1 MB chunks, never held at once."""
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        chunk = b"<!--" + b"x" * (MB - 7) + b"-->"
        await self._stream(request, response, (chunk for _ in range(50)))
        return response

    async def declared_big(self, request: web.Request) -> web.StreamResponse:
        """Announces 50 MB, sends one chunk, then stalls: only Content-Length can refuse it."""
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.content_length = 50 * MB
        await response.prepare(request)
        await response.write(b"<rss>")
        await self.release.wait()
        return response

    async def bomb(self, request: web.Request) -> web.StreamResponse:
        """200 MB of zeros, gzip-compressed on the fly (about 200 KB on the wire)."""
        response = web.StreamResponse(
            headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
        )
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(MB)

        def chunks() -> Iterator[bytes]:
            for _ in range(200):
                yield compressor.compress(zeros)
            yield compressor.flush()

        await self._stream(request, response, chunks())
        return response

    async def gzipped(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.Response(
            body=gzip.compress(FEED),
            headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
        )

    async def sleep(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(body=FEED)

    async def stall(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        await response.write(FEED[:200])
        await self.release.wait()
        return response

    async def linked(self, request: web.Request) -> web.Response:
        headers: CIMultiDict[str] = CIMultiDict()
        headers.add("Link", '<https://hub.example/>; rel="hub", </linked>; rel=self')
        headers.add("Link", '<https://other-hub.example/websub>; rel="Hub alternate"')
        headers.add("Content-Type", "application/rss+xml")
        return web.Response(body=FEED, headers=headers)

    async def no_location(self, request: web.Request) -> web.Response:
        return web.Response(status=302)

    async def to_ftp(self, request: web.Request) -> web.Response:
        return web.Response(status=301, headers={"Location": "ftp://files.example/feed.xml"})


@pytest.fixture
async def server(serve: Serve) -> AsyncIterator[tuple[Server, str]]:
    host = Server()
    base = await serve(host.app())
    yield host, base
    host.release.set()


async def fetch(
    http: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int = 10 * MB,
    deadline: float = 5.0,
    **kwargs: object,
) -> FetchResult:
    return await fetch_feed(
        http,
        url,
        max_bytes=max_bytes,
        timeout=deadline,
        user_agent=UA,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_200_returns_body_validators_and_sends_feed_headers(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    host, base = server
    result = await fetch(http, f"{base}/feed")
    assert result.status == 200
    assert result.body == FEED
    assert result.url == f"{base}/feed"
    assert result.etag == ETAG
    assert result.last_modified == LAST_MODIFIED
    assert result.content_type == "application/rss+xml; charset=UTF-8"
    assert result.moved_to is None
    _, headers = host.seen[-1]
    assert headers["Accept"] == ACCEPT
    assert headers["Accept"].startswith("application/atom+xml, application/rss+xml")
    assert headers["User-Agent"] == UA
    assert headers["Accept-Encoding"] == "gzip, deflate"
    assert "If-None-Match" not in headers and "If-Modified-Since" not in headers


async def test_304_when_etag_matches(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    host, base = server
    result = await fetch(http, f"{base}/feed", etag=ETAG, last_modified=LAST_MODIFIED)
    assert result.status == 304
    assert result.body == b""
    assert result.etag == ETAG
    _, headers = host.seen[-1]
    assert headers["If-None-Match"] == ETAG
    assert headers["If-Modified-Since"] == LAST_MODIFIED


async def test_304_keeps_the_validators_sent_when_the_server_repeats_none(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    host, base = server
    result = await fetch(http, f"{base}/feed", last_modified=LAST_MODIFIED)
    assert result.status == 304
    assert result.last_modified == LAST_MODIFIED
    assert "If-None-Match" not in host.seen[-1][1]


async def test_stale_etag_gets_the_full_body(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    result = await fetch(http, f"{server[1]}/feed", etag='"old"')
    assert result.status == 200
    assert result.body == FEED


async def test_chain_of_permanent_redirects_sets_moved_to(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    host, base = server
    result = await fetch(http, f"{base}/redirect/301/redirect/308/feed", etag=ETAG)
    assert result.moved_to == f"{base}/feed"
    assert result.url == f"{base}/feed"
    assert result.status == 304
    # Validators travel along the whole chain.
    assert [path for path, _ in host.seen] == [
        "/redirect/301/redirect/308/feed",
        "/redirect/308/feed",
        "/feed",
    ]
    assert all(headers["If-None-Match"] == ETAG for _, headers in host.seen)


@pytest.mark.parametrize("chain", ["302/feed", "301/redirect/302/feed", "307/feed", "303/feed"])
async def test_a_temporary_hop_means_no_move(
    http: aiohttp.ClientSession, server: tuple[Server, str], chain: str
) -> None:
    result = await fetch(http, f"{server[1]}/redirect/{chain}")
    assert result.status == 200
    assert result.url == f"{server[1]}/feed"
    assert result.moved_to is None


async def test_relative_location_is_resolved(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    result = await fetch(http, f"{server[1]}/relative-redirect")
    assert result.url == f"{server[1]}/feed"
    assert result.moved_to == f"{server[1]}/feed"


async def test_redirect_limit(http: aiohttp.ClientSession, server: tuple[Server, str]) -> None:
    base = server[1]
    five = f"{base}/redirect/301/redirect/301/redirect/301/redirect/301/redirect/301/feed"
    assert (await fetch(http, five, max_redirects=5)).status == 200
    with pytest.raises(FetchError, match="too many redirects"):
        await fetch(http, five, max_redirects=4)


async def test_redirect_loop_is_a_fetch_error(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="redirect loop") as info:
        await fetch(http, f"{server[1]}/loop-a")
    assert time.monotonic() - started < 1
    assert "/loop-b" in str(info.value) and "\n" not in str(info.value)


async def test_redirect_without_location_is_a_status_error(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    with pytest.raises(HTTPStatusError) as info:
        await fetch(http, f"{server[1]}/no-location")
    assert info.value.status == 302


async def test_redirect_to_a_non_http_url_is_refused(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    with pytest.raises(FetchError, match="non-HTTP URL"):
        await fetch(http, f"{server[1]}/to-ftp")


async def test_410_is_feed_gone(http: aiohttp.ClientSession, server: tuple[Server, str]) -> None:
    with pytest.raises(FeedGone) as info:
        await fetch(http, f"{server[1]}/status/410")
    assert info.value.status == 410
    assert info.value.url == f"{server[1]}/status/410"


@pytest.mark.parametrize("code", [500, 404, 403, 429])
async def test_other_errors_are_status_errors(
    http: aiohttp.ClientSession, server: tuple[Server, str], code: int
) -> None:
    with pytest.raises(HTTPStatusError) as info:
        await fetch(http, f"{server[1]}/status/{code}")
    assert type(info.value) is HTTPStatusError
    assert info.value.status == code
    assert str(info.value) == f"HTTP {code} from {server[1]}/status/{code}"


async def test_fifty_megabytes_are_refused_at_the_cap(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    host, base = server
    with pytest.raises(FeedTooLarge) as info:
        await fetch(http, f"{base}/big", max_bytes=10 * MB)
    assert info.value.limit == 10 * MB
    # The client hung up long before the end: the server could not push all 50 MB.
    await asyncio.sleep(0.05)
    assert host.written < 30 * MB


async def test_declared_content_length_is_refused_before_reading(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    started = time.monotonic()
    with pytest.raises(FeedTooLarge):
        await fetch(http, f"{server[1]}/declared-big", max_bytes=10 * MB, deadline=3)
    # The body stalls after five bytes: only the up-front check can answer this fast.
    assert time.monotonic() - started < 1


async def test_gzip_bomb_is_refused_quickly_and_in_little_memory(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(FeedTooLarge):
            await fetch(http, f"{server[1]}/bomb", max_bytes=10 * MB)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2
    # 10 MB of body plus bounded decompression buffers; inflating the bomb would be 200 MB.
    assert peak < 40 * MB


async def test_gzip_body_is_decompressed(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    result = await fetch(http, f"{server[1]}/gzipped")
    assert result.body == FEED
    # The cap counts decompressed bytes: the compressed body alone would fit.
    with pytest.raises(FeedTooLarge):
        await fetch(http, f"{server[1]}/gzipped", max_bytes=len(gzip.compress(FEED)) + 1)


async def test_sleeping_server_times_out(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTimeout, match=r"^timed out: no complete answer within 0\.5 s from "):
        await fetch(http, f"{server[1]}/sleep", deadline=0.5)
    assert 0.4 < time.monotonic() - started < 1.5


async def test_body_that_stalls_midway_times_out(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        await fetch(http, f"{server[1]}/stall", deadline=0.5)
    assert time.monotonic() - started < 1.5


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_a_fetch_error(http: aiohttp.ClientSession) -> None:
    port = closed_port()
    with pytest.raises(FetchError) as info:
        await fetch(http, f"http://127.0.0.1:{port}/feed")
    assert type(info.value) is FetchError
    assert f"cannot connect to 127.0.0.1:{port}" in str(info.value)
    assert "\n" not in str(info.value)


async def test_unresolvable_host_is_a_fetch_error(http: aiohttp.ClientSession) -> None:
    # The test session's resolver refuses every non-loopback name, so nothing leaves the host.
    with pytest.raises(FetchError, match=r"cannot resolve host www\.talkabout\.de"):
        await fetch(http, "http://www.talkabout.de/feed/")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed", "not a url", "http:///feed", ""])
async def test_invalid_url_is_a_fetch_error(http: aiohttp.ClientSession, url: str) -> None:
    with pytest.raises(FetchError, match="http"):
        await fetch(http, url)


async def test_link_headers_become_absolute_rel_pairs(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    result = await fetch(http, f"{server[1]}/linked")
    assert result.links == (
        ("hub", "https://hub.example/"),
        ("self", f"{server[1]}/linked"),
        ("hub", "https://other-hub.example/websub"),
        ("alternate", "https://other-hub.example/websub"),
    )


@pytest.mark.parametrize("code", [200, 404, 410, 500])
async def test_fetch_status_reports_the_final_status(
    http: aiohttp.ClientSession, server: tuple[Server, str], code: int
) -> None:
    status = await fetch_status(http, f"{server[1]}/status/{code}", timeout=2, user_agent=UA)
    assert status == code


async def test_fetch_status_follows_redirects(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    url = f"{server[1]}/redirect/301/status/410"
    assert await fetch_status(http, url, timeout=2, user_agent=UA) == 410


async def test_fetch_status_does_not_wait_for_the_body(
    http: aiohttp.ClientSession, server: tuple[Server, str]
) -> None:
    assert await fetch_status(http, f"{server[1]}/stall", timeout=2, user_agent=UA) == 200


async def test_fetch_status_errors(http: aiohttp.ClientSession, server: tuple[Server, str]) -> None:
    with pytest.raises(FetchError, match="cannot connect"):
        await fetch_status(http, f"http://127.0.0.1:{closed_port()}/", timeout=2, user_agent=UA)
    with pytest.raises(FetchError, match="redirect loop"):
        await fetch_status(http, f"{server[1]}/loop-a", timeout=2, user_agent=UA)
    with pytest.raises(FetchTimeout):
        await fetch_status(http, f"{server[1]}/sleep", timeout=0.3, user_agent=UA)
