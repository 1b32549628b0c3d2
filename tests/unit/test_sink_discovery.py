"""Webmention and pingback endpoint discovery against a real server.

The webmention cases are the 23 discovery tests of webmention.rocks, reproduced here (the
endpoint each page should yield is ``/endpoint/{n}``; decoys are ``/wrong/{n}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from bridge.errors import Rejected, RetryLater
from bridge.sinks.discovery import (
    discover_endpoints,
    html_endpoint,
    link_header_endpoint,
    pingback_endpoint,
)

Serve = Callable[[web.Application], Awaitable[str]]


def page(head: str = "", body: str = "") -> str:
    return f"<!DOCTYPE html><html><head><title>T</title>{head}</head><body>{body}</body></html>"


# n -> (Link header values, HTML, expected path relative to the server root)
CASES: dict[int, tuple[list[str], str, str]] = {
    1: (["</endpoint/1>; rel=webmention"], page(), "/endpoint/1"),
    2: (["<{base}/endpoint/2>; rel=webmention"], page(), "/endpoint/2"),
    3: ([], page('<link rel="webmention" href="/endpoint/3">'), "/endpoint/3"),
    4: ([], page('<link rel="webmention" href="{base}/endpoint/4">'), "/endpoint/4"),
    5: ([], page(body='<a rel="webmention" href="/endpoint/5">x</a>'), "/endpoint/5"),
    6: ([], page(body='<a rel="webmention" href="{base}/endpoint/6">x</a>'), "/endpoint/6"),
    7: (["<{base}/endpoint/7>; rel=WebMention"], page(), "/endpoint/7"),
    8: (['<{base}/endpoint/8>; rel="webmention"'], page(), "/endpoint/8"),
    9: ([], page('<link rel="webmention somethingelse" href="/endpoint/9">'), "/endpoint/9"),
    10: (['</endpoint/10>; rel="webmention somethingelse"'], page(), "/endpoint/10"),
    11: (
        ["</endpoint/11>; rel=webmention"],
        page('<link rel="webmention" href="/wrong/11">', '<a rel="webmention" href="/wrong/11">'),
        "/endpoint/11",
    ),
    12: (
        [],
        page(
            '<link rel="not-webmention" href="/wrong/12">'
            '<link rel="webmention" href="/endpoint/12">'
        ),
        "/endpoint/12",
    ),
    13: (
        [],
        page(
            '<!-- <link rel="webmention" href="/wrong/13"> -->'
            '<link rel="webmention" href="/endpoint/13">'
        ),
        "/endpoint/13",
    ),
    14: (
        [],
        page(
            body='<code>&lt;a href="/wrong/14" rel="webmention"&gt;&lt;/a&gt;</code>'
            '<a href="/endpoint/14" rel="webmention">x</a>'
        ),
        "/endpoint/14",
    ),
    15: ([], page('<link rel="webmention" href="">'), "/test/15"),
    16: (
        [],
        page(
            body='<a href="/endpoint/16" rel="webmention">a</a>'
            '<link rel="webmention" href="/wrong/16">'
        ),
        "/endpoint/16",
    ),
    17: (
        [],
        page(
            '<link rel="webmention" href="/endpoint/17">',
            '<a href="/wrong/17" rel="webmention">a</a>',
        ),
        "/endpoint/17",
    ),
    18: (["</endpoint/18>; rel=webmention", "</wrong/18>; rel=webmention"], page(), "/endpoint/18"),
    19: (['</wrong/19>; rel="other", </endpoint/19>; rel="webmention"'], page(), "/endpoint/19"),
    20: (
        [],
        page('<link rel="webmention"><link rel="webmention" href="/endpoint/20">'),
        "/endpoint/20",
    ),
    21: (["</endpoint/21?query=yes>; rel=webmention"], page(), "/endpoint/21?query=yes"),
    22: (["<22/webmention>; rel=webmention"], page(), "/test/22/webmention"),
}


def make_app(case: dict[int, tuple[list[str], str, str]]) -> web.Application:
    async def test_page(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        base = f"{request.scheme}://{request.host}"
        links, body, _ = case[n]
        response = web.Response(text=body.replace("{base}", base), content_type="text/html")
        for link in links:
            response.headers.add("Link", link.replace("{base}", base))
        return response

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/page/23/after")

    async def after(request: web.Request) -> web.Response:
        response = web.Response(text=page(), content_type="text/html")
        response.headers.add("Link", "<webmention-endpoint>; rel=webmention")
        return response

    app = web.Application()
    app.router.add_get("/test/{n:\\d+}", test_page)
    app.router.add_get("/test/23", redirect)
    app.router.add_get("/page/23/after", after)
    return app


@pytest.mark.parametrize("n", sorted(CASES))
async def test_webmention_rocks_discovery(
    n: int, serve: Serve, http: aiohttp.ClientSession
) -> None:
    base = await serve(make_app(CASES))
    found = await discover_endpoints(http, f"{base}/test/{n}", timeout=2, user_agent="t")
    assert found.webmention == base + CASES[n][2]


async def test_redirected_target_resolves_against_the_final_url(
    serve: Serve, http: aiohttp.ClientSession
) -> None:
    base = await serve(make_app(CASES))
    found = await discover_endpoints(http, f"{base}/test/23", timeout=2, user_agent="t")
    assert found.url == f"{base}/page/23/after"
    assert found.webmention == f"{base}/page/23/webmention-endpoint"


def test_pingback_header_wins_over_link_element() -> None:
    html = '<html><head><link rel="pingback" href="/from-link.php"></head></html>'
    assert pingback_endpoint("/xmlrpc.php", html, "http://b.test/p/") == "http://b.test/xmlrpc.php"
    assert pingback_endpoint(None, html, "http://b.test/p/") == "http://b.test/from-link.php"
    assert pingback_endpoint("  ", "<html></html>", "http://b.test/p/") is None


def test_pingback_ignores_anchors_and_comments() -> None:
    html = (
        '<!-- <link rel="pingback" href="/fake.php"> --><a rel="pingback" href="/anchor.php">x</a>'
    )
    assert html_endpoint(html, "pingback", "http://b.test/", anchors=False) is None


def test_link_header_needs_the_exact_token() -> None:
    values = ['<http://e.test/a>; rel="not-webmention"', "<http://e.test/b>; title=webmention"]
    assert link_header_endpoint(values, "webmention", "http://b.test/") is None


async def test_non_html_body_is_not_searched(serve: Serve, http: aiohttp.ClientSession) -> None:
    async def text(request: web.Request) -> web.Response:
        return web.Response(text='<link rel="webmention" href="/nope">', content_type="text/plain")

    app = web.Application()
    app.router.add_get("/t", text)
    base = await serve(app)
    found = await discover_endpoints(http, f"{base}/t", timeout=2, user_agent="t")
    assert found.webmention is None and found.pingback is None


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, Rejected), (410, Rejected), (500, RetryLater), (503, RetryLater), (429, RetryLater)],
)
async def test_unusable_pages_map_onto_the_failure_kinds(
    status: int, error: type[Exception], serve: Serve, http: aiohttp.ClientSession
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Retry-After": "30"})

    app = web.Application()
    app.router.add_get("/p", answer)
    base = await serve(app)
    with pytest.raises(error) as caught:
        await discover_endpoints(http, f"{base}/p", timeout=2, user_agent="t")
    if status == 429:
        assert isinstance(caught.value, RetryLater) and caught.value.retry_after == 30


async def test_refused_connection_and_timeout_retry_later(
    serve: Serve, http: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    with pytest.raises(RetryLater):
        await discover_endpoints(
            http, f"http://127.0.0.1:{unused_tcp_port}/p", timeout=2, user_agent="t"
        )

    async def slow(request: web.Request) -> web.Response:
        import asyncio

        await asyncio.sleep(1)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/slow", slow)
    base = await serve(app)
    with pytest.raises(RetryLater, match="no answer"):
        await discover_endpoints(http, f"{base}/slow", timeout=0.1, user_agent="t")
