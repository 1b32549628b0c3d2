"""Feed autodiscovery: the pure link finder and resolve_feed_url against real local servers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bridge.errors import FeedNotDiscovered, FeedParseError, FetchError, HTTPStatusError
from bridge.ingest.discovery import discover_feed_links, resolve_feed_url

TESTS = Path(__file__).resolve().parents[1]
PAGE = (TESTS / "data" / "feeds" / "page.html").read_bytes()
FEED = (TESTS / "data" / "talkabout" / "feed.rss").read_bytes()
JSON_FEED = (TESTS / "data" / "feeds" / "jsonfeed10.json").read_bytes()
UA = "feedfed-test/1.0"

Serve = Callable[[web.Application], Awaitable[str]]


def html_page(head: str) -> bytes:
    return f"<!DOCTYPE html><html><head>{head}</head><body><p>Hallo</p></body></html>".encode()


def site(pages: dict[str, tuple[int, bytes, str]]) -> web.Application:
    """An app serving ``path -> (status, body, content type)``; a 301 body is the Location."""

    async def handler(request: web.Request) -> web.Response:
        status, body, content_type = pages[request.path]
        if status in (301, 302):
            return web.Response(status=status, headers={"Location": body.decode()})
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    app = web.Application()
    for path in pages:
        app.router.add_get(path, handler)
    return app


async def resolve(http: aiohttp.ClientSession, url: str) -> str:
    return await resolve_feed_url(http, url, max_bytes=1024 * 1024, timeout=2, user_agent=UA)


# --- discover_feed_links (pure) --------------------------------------------------------------


def test_discovers_the_talkabout_style_link() -> None:
    assert discover_feed_links(PAGE, "https://www.talkabout.example/") == [
        "https://www.talkabout.example/feed/"
    ]


def test_feed_links_in_document_order_absolute_and_unique() -> None:
    page = html_page(
        '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
        '<LINK REL="Alternate" TYPE="Application/RSS+XML" HREF="feed.rss">'
        '<link rel="stylesheet alternate" type="text/css" href="/alt.css">'
        '<link rel="alternate" hreflang="en" href="/en/">'
        '<link rel="home alternate" type="application/feed+json" href="https://cdn.example/f.json">'
        '<link rel="alternate" type="application/rss+xml; charset=utf-8" href="/atom.xml">'
        '<link rel="feed" href="/h-feed">'
        '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
        '<link rel="alternate" type="application/rss+xml">'
    )
    assert discover_feed_links(page, "https://blog.example/de/") == [
        "https://blog.example/atom.xml",
        "https://blog.example/de/feed.rss",
        "https://cdn.example/f.json",
        "https://blog.example/h-feed",
    ]


def test_base_href_applies_to_relative_links() -> None:
    page = html_page(
        '<base href="/blog/"><link rel="alternate" type="application/rss+xml" href="feed/">'
    )
    assert discover_feed_links(page, "https://site.example/index.php") == [
        "https://site.example/blog/feed/"
    ]


def test_page_without_feed_links() -> None:
    page = html_page('<link rel="stylesheet" href="/s.css"><link rel="icon" href="/i.png">')
    assert discover_feed_links(page, "https://site.example/") == []
    assert discover_feed_links(b"", "https://site.example/") == []


def test_windows_1252_page() -> None:
    page = html_page(
        '<title>Grüße</title><link rel="alternate" type="application/rss+xml" href="/feed">'
    ).replace("ü".encode(), b"\xfc")
    assert discover_feed_links(page, "https://site.example/") == ["https://site.example/feed"]


# --- resolve_feed_url ------------------------------------------------------------------------


async def test_html_page_with_relative_alternate_link(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    base = await serve(
        site(
            {
                "/": (200, PAGE, "text/html; charset=utf-8"),
                "/feed/": (200, FEED, "application/rss+xml"),
            }
        )
    )
    assert await resolve(http, f"{base}/") == f"{base}/feed/"


async def test_url_that_is_already_a_feed_is_returned_as_is(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    base = await serve(site({"/feed.xml": (200, FEED, "text/xml")}))
    assert await resolve(http, f"{base}/feed.xml") == f"{base}/feed.xml"


async def test_redirected_feed_resolves_to_its_final_url(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    base = await serve(
        site({"/rss": (301, b"/feed.json", ""), "/feed.json": (200, JSON_FEED, "application/json")})
    )
    assert await resolve(http, f"{base}/rss") == f"{base}/feed.json"


async def test_page_without_feed_link(http: aiohttp.ClientSession, serve: Serve) -> None:
    base = await serve(site({"/": (200, html_page("<title>x</title>"), "text/html")}))
    with pytest.raises(FeedNotDiscovered) as info:
        await resolve(http, f"{base}/")
    assert str(info.value) == f"{base}/ is an HTML page that links no feed"


async def test_first_working_candidate_wins(http: aiohttp.ClientSession, serve: Serve) -> None:
    page = html_page(
        '<link rel="alternate" type="application/rss+xml" href="/missing">'
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">'
        '<link rel="alternate" type="application/atom+xml" href="/works">'
        '<link rel="alternate" type="application/rss+xml" href="/also-works">'
    )
    base = await serve(
        site(
            {
                "/": (200, page, "text/html"),
                "/missing": (404, b"not here", "text/html"),
                "/wp-json/wp/v2/pages/2": (200, b'{"id": 2}', "application/json"),
                "/works": (200, FEED, "application/rss+xml"),
                "/also-works": (200, FEED, "application/rss+xml"),
            }
        )
    )
    assert await resolve(http, f"{base}/") == f"{base}/works"


async def test_page_whose_feed_links_all_fail(http: aiohttp.ClientSession, serve: Serve) -> None:
    page = html_page(
        '<link rel="alternate" type="application/rss+xml" href="/gone">'
        '<link rel="alternate" type="application/rss+xml" href="/">'
    )
    base = await serve(site({"/": (200, page, "text/html"), "/gone": (500, b"", "text/plain")}))
    with pytest.raises(FeedNotDiscovered) as info:
        await resolve(http, f"{base}/")
    message = str(info.value)
    assert message.startswith(f"{base}/ is an HTML page whose feed links do not work")
    assert f"HTTP 500 from {base}/gone" in message and "looks like an HTML page" in message


async def test_document_that_is_neither_feed_nor_page(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    base = await serve(site({"/data": (200, b'{"api": true}', "application/json")}))
    with pytest.raises(FeedParseError, match="not a JSON Feed"):
        await resolve(http, f"{base}/data")


async def test_fetch_errors_of_the_url_itself_propagate(
    http: aiohttp.ClientSession, serve: Serve
) -> None:
    base = await serve(site({"/": (503, b"", "text/plain")}))
    with pytest.raises(HTTPStatusError):
        await resolve(http, f"{base}/")
    with pytest.raises(FetchError, match="cannot resolve host"):
        await resolve(http, "https://www.talkabout.de/")
