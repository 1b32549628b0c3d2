"""Feed autodiscovery: from a blog's home page to the URL of its feed.

A blog owner often gives the address of the blog rather than of its feed. The page names its
feeds in ``<link rel="alternate" type="application/rss+xml" href="...">`` elements (RSS
autodiscovery; Atom and JSON Feed use the same convention, HTML5 adds ``rel="feed"``).
"""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import aiohttp

from bridge.errors import FeedError, FeedNotDiscovered, FeedParseError
from bridge.ingest.fetch import fetch_feed
from bridge.ingest.markup import absolute_url, is_http_url
from bridge.ingest.parse import looks_like_html, parse_feed_async

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
        "application/rdf+xml",
    }
)
# A page can link many "feeds" (WordPress adds comment feeds and its REST API as JSON); only
# the first few are tried, so a hostile page cannot turn one request into hundreds.
MAX_CANDIDATES = 5


def discover_feed_links(html: bytes, base_url: str) -> list[str]:
    """Absolute hrefs of the feeds a page links, in document order, without duplicates.

    Matches ``<link>`` elements whose ``rel`` tokens (case-insensitive) include ``alternate``
    with a feed media type, or ``feed``. Relative hrefs resolve against ``<base href>`` when
    the page has one, else against ``base_url``.
    """
    finder = _FeedLinkFinder(base_url)
    finder.feed(_decode(html))
    finder.close()
    return finder.links


async def resolve_feed_url(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    user_agent: str,
) -> str:
    """The URL of the feed behind ``url``: ``url``'s own final URL when it is a feed, else
    the first feed its HTML page links that fetches and parses.

    Raises :class:`FeedNotDiscovered` for an HTML page without a working feed link; fetch
    errors for ``url`` itself and the parse error of a document that is neither feed nor HTML
    propagate unchanged.
    """
    page = await fetch_feed(
        session, url, max_bytes=max_bytes, timeout=timeout, user_agent=user_agent
    )
    try:
        await parse_feed_async(page.body, url=page.url, content_type=page.content_type)
    except FeedParseError:
        if not looks_like_html(page.body, page.content_type):
            raise
    else:
        return page.url

    candidates = await asyncio.to_thread(discover_feed_links, page.body, page.url)
    failures: list[str] = []
    for candidate in candidates[:MAX_CANDIDATES]:
        try:
            found = await fetch_feed(
                session, candidate, max_bytes=max_bytes, timeout=timeout, user_agent=user_agent
            )
            await parse_feed_async(found.body, url=found.url, content_type=found.content_type)
        except FeedError as exc:
            # Tried in order; every failure is reported if none of the candidates works.
            failures.append(f"{candidate}: {exc}")
            continue
        return found.url
    if failures:
        raise FeedNotDiscovered(
            f"{url} is an HTML page whose feed links do not work ({'; '.join(failures)})"
        )
    raise FeedNotDiscovered(f"{url} is an HTML page that links no feed")


def _decode(html: bytes) -> str:
    try:
        return html.decode("utf-8")
    except UnicodeDecodeError:
        # Pre-UTF-8 pages are overwhelmingly windows-1252; hrefs are ASCII in either case.
        return html.decode("cp1252", errors="replace")


class _FeedLinkFinder(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base_url
        self.links: list[str] = []
        self._base_seen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "base" and not self._base_seen and values.get("href", "").strip():
            # Only the first <base href> counts (HTML: "the first base element with href").
            self._base_seen = True
            self.base = absolute_url(values["href"], self.base) or self.base
            return
        if tag != "link":
            return
        rels = values.get("rel", "").lower().split()
        media_type = values.get("type", "").split(";", 1)[0].strip().lower()
        is_feed = ("alternate" in rels and media_type in FEED_TYPES) or (
            "feed" in rels and (not media_type or media_type in FEED_TYPES)
        )
        href = absolute_url(values.get("href"), self.base)
        if is_feed and href and is_http_url(href) and href not in self.links:
            self.links.append(href)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
