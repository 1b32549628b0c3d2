"""A fake blog: serves a mutable feed (with ETag/Last-Modified) and post pages on 127.0.0.1.

Tests change ``host.items`` (or ``host.body``) and the host's behaviour between polls, and read
``host.requests`` to see what the bridge asked for.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from aiohttp import web

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
RSS_TYPE = "application/rss+xml; charset=UTF-8"


@dataclass(frozen=True)
class Post:
    """One item of the fake blog's feed; ``slug`` names its page at ``/posts/{slug}``."""

    slug: str
    title: str
    content: str
    published: datetime


def post(n: int, *, content: str | None = None, hours: float = 6) -> Post:
    """Post number ``n``, published ``n * hours`` hours after :data:`T0`."""
    return Post(
        slug=f"post-{n}",
        title=f"Beitrag {n}",
        content=content if content is not None else f"<p>Inhalt von Beitrag {n}</p>",
        published=T0 + timedelta(hours=n * hours),
    )


def render_rss(
    base: str,
    posts: Sequence[Post],
    *,
    hub: str | None = None,
    self_url: str | None = None,
    title: str = "Fake Blog",
) -> bytes:
    """An RSS 2.0 document in the style of WordPress, items as given (newest first, usually)."""
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">',
        "<channel>",
        f"<title>{escape(title)}</title>",
        f"<link>{base}/</link>",
        "<description>Ein Blog zum Testen</description>",
        "<language>de</language>",
    ]
    if self_url:
        head.append(f'<atom:link href="{escape(self_url)}" rel="self" type="application/rss+xml"/>')
    if hub:
        head.append(f'<atom:link href="{escape(hub)}" rel="hub"/>')
    items = [
        "<item>"
        f"<title>{escape(p.title)}</title>"
        f"<link>{base}/posts/{p.slug}</link>"
        f'<guid isPermaLink="false">{base}/?p={p.slug}</guid>'
        f"<pubDate>{format_datetime(p.published, usegmt=True)}</pubDate>"
        f"<description>{escape(p.title)}</description>"
        f"<content:encoded><![CDATA[{p.content}]]></content:encoded>"
        "</item>"
        for p in posts
    ]
    return "\n".join([*head, *items, "</channel>", "</rss>"]).encode("utf-8")


@dataclass
class FeedHost:
    """The fake blog's state and behaviour; ``app()`` serves it."""

    items: list[Post] = field(default_factory=list)
    body: bytes | None = None  # served as is instead of rendering ``items``
    content_type: str = RSS_TYPE
    hub: str | None = None
    self_url: str | None = None
    link_header: str | None = None
    feed_status: int | None = None  # answer the feed with this status (500, 410 ...)
    delay: float = 0.0  # seconds before the feed answers
    huge_bytes: int = 0  # stream this many bytes of junk instead of the feed
    validators: bool = True  # send ETag and Last-Modified
    moves: dict[str, str] = field(default_factory=dict)  # path -> path, answered with a 301
    post_status: dict[str, int] = field(default_factory=dict)  # slug -> status of its page
    post_delay: float = 0.0  # seconds before a post page answers
    base: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    _hit: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> web.Application:
        """The aiohttp application serving the feed at ``/feed`` and posts at ``/posts/x``."""
        app = web.Application()
        app.router.add_get("/posts/{slug}", self._post)
        app.router.add_get("/{path:.*}", self._feed)
        return app

    async def start(self, serve: Callable[[web.Application], Awaitable[str]]) -> str:
        """Start on the ``serve`` fixture; remember and return the base URL."""
        self.base = await serve(self.app())
        return self.base

    @property
    def feed_url(self) -> str:
        """The canonical feed URL."""
        return f"{self.base}/feed"

    def document(self) -> bytes:
        """The feed document as served now."""
        if self.body is not None:
            return self.body
        return render_rss(self.base, self.items, hub=self.hub, self_url=self.self_url)

    def feed_requests(self) -> list[dict[str, str]]:
        """Headers of each request for a feed path, in order."""
        return [headers for path, headers in self.requests if not path.startswith("/posts/")]

    async def wait_hits(self, path: str, count: int) -> None:
        """Return once ``path`` has been requested ``count`` times."""
        async with self._hit:
            await self._hit.wait_for(lambda: self.hits[path] >= count)

    def post_url(self, slug: str) -> str:
        """Where post ``slug`` lives."""
        return f"{self.base}/posts/{slug}"

    async def _post(self, request: web.Request) -> web.StreamResponse:
        self._log(request)
        await self._notify()
        if self.post_delay:
            await asyncio.sleep(self.post_delay)
        status = self.post_status.get(request.match_info["slug"], 200)
        return web.Response(status=status, text="<html><body>post</body></html>")

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        self._log(request)
        await self._notify()
        if request.path in self.moves:
            raise web.HTTPMovedPermanently(location=self.moves[request.path])
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.feed_status is not None:
            return web.Response(status=self.feed_status, text=f"status {self.feed_status}")
        if self.huge_bytes:
            return await self._stream_junk(request)
        document = self.document()
        etag = '"' + hashlib.sha256(document).hexdigest()[:16] + '"'
        modified = format_datetime(T0, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": modified} if self.validators else {}
        if self.link_header:
            headers["Link"] = self.link_header
        if self.validators and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=document, headers={**headers, "Content-Type": self.content_type})

    async def _stream_junk(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": self.content_type})
        await response.prepare(request)
        chunk = b"<rss>" + b"x" * (64 * 1024 - 5)
        sent = 0
        try:
            while sent < self.huge_bytes:
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionResetError, ConnectionError):
            # The client gave up at its size cap, as it should.
            return response
        await response.write_eof()
        return response

    def _log(self, request: web.Request) -> None:
        self.requests.append((request.path, dict(request.headers)))
        self.hits[request.path] += 1

    async def _notify(self) -> None:
        async with self._hit:
            self._hit.notify_all()
