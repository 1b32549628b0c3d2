"""Where a blog post takes linkbacks: its webmention and pingback endpoints.

Webmention discovery follows the W3C Recommendation (§3.1.2): the HTTP ``Link`` header first,
then the first ``<link>`` or ``<a>`` element with ``rel="webmention"`` in document order;
``rel`` is a space-separated token list matched exactly (``not-webmention`` is no match);
relative URLs resolve against the page's final URL (after redirects); an empty ``href`` names
the page itself. Pingback (Pingback 1.0 §2.2) uses the ``X-Pingback`` header, else
``<link rel="pingback" href="...">``. Elements inside HTML comments or escaped text are never
seen: the page is parsed as HTML, not searched with patterns.

Fetch failures map onto the sink's two failure kinds: a blog that is down, slow or asks for
patience is :class:`~bridge.errors.RetryLater`; a post that does not exist is
:class:`~bridge.errors.Rejected`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

import aiohttp

from bridge.errors import Rejected, RetryLater
from bridge.sinks.failures import error_for_status, read_capped, transport_error

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
# Endpoints are announced in <head>; a post page bigger than this is not read further.
DEFAULT_MAX_BYTES = 1024 * 1024

_LINK_SPLIT = re.compile(r",(?=\s*<)")
_LINK_VALUE = re.compile(r"\s*<([^>]*)>(.*)", re.S)
_LINK_PARAM = re.compile(r'\s*;\s*([^\s=;,]+)\s*(?:=\s*(?:"([^"]*)"|([^\s;,"]*)))?', re.S)


@dataclass(frozen=True)
class Endpoints:
    """What a post page announces: ``url`` is its final URL, the endpoints are absolute."""

    url: str
    webmention: str | None
    pingback: str | None


def link_header_endpoint(values: Iterable[str], rel: str, base_url: str) -> str | None:
    """The first target of ``Link`` header ``values`` (RFC 8288) whose ``rel`` has ``rel``.

    Several headers and comma-separated values count in order; the rel parameter is
    compared case-insensitively per token; the target resolves against ``base_url``.
    """
    wanted = rel.lower()
    for value in values:
        for part in _LINK_SPLIT.split(value):
            match = _LINK_VALUE.match(part)
            if match is None:
                continue
            target, params = match.groups()
            for param in _LINK_PARAM.finditer(params):
                if param.group(1).lower() != "rel":
                    continue
                tokens = str(param.group(2) or param.group(3) or "").lower().split()
                if wanted in tokens:
                    return urljoin(base_url, str(target).strip())
    return None


def html_endpoint(html: str, rel: str, base_url: str, *, anchors: bool) -> str | None:
    """The first ``<link>`` (and, with ``anchors``, ``<a>``) with ``rel`` in document order.

    Elements without an ``href`` attribute are skipped; an empty ``href`` is the page itself.
    """
    finder = _RelFinder(rel, anchors=anchors)
    finder.feed(html)
    finder.close()
    if finder.found is None:
        return None
    return urljoin(base_url, finder.found)


def webmention_endpoint(link_headers: Iterable[str], html: str | None, url: str) -> str | None:
    """The webmention endpoint of the page at (final) ``url``, per the W3C discovery rules."""
    found = link_header_endpoint(link_headers, "webmention", url)
    if found is None and html is not None:
        found = html_endpoint(html, "webmention", url, anchors=True)
    return found


def pingback_endpoint(x_pingback: str | None, html: str | None, url: str) -> str | None:
    """The pingback server of the page at ``url``: ``X-Pingback``, else ``<link rel=pingback>``."""
    if x_pingback and x_pingback.strip():
        return urljoin(url, x_pingback.strip())
    if html is not None:
        return html_endpoint(html, "pingback", url, anchors=False)
    return None


async def discover_endpoints(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,
    user_agent: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = 10,
) -> Endpoints:
    """GET the post page at ``url`` (following redirects) and read the endpoints it names.

    Raises :class:`RetryLater` (transport failure, timeout, 5xx, 429 with ``retry_after``)
    or :class:`Rejected` (404, 410 and other client errors: the post is not there).
    """
    try:
        async with asyncio.timeout(timeout):
            async with session.get(
                url,
                headers={"Accept": ACCEPT, "User-Agent": user_agent},
                allow_redirects=True,
                max_redirects=max_redirects,
            ) as response:
                final = str(response.url)
                if response.status >= 300:
                    raise error_for_status(response.status, response.headers, f"GET {url}")
                html: str | None = None
                if response.content_type in HTML_TYPES:
                    body = await read_capped(response, max_bytes, truncate=True)
                    html = body.decode(response.charset or "utf-8", errors="replace")
                return Endpoints(
                    url=final,
                    webmention=webmention_endpoint(
                        response.headers.getall("Link", ()), html, final
                    ),
                    pingback=pingback_endpoint(response.headers.get("X-Pingback"), html, final),
                )
    except aiohttp.TooManyRedirects as exc:
        raise Rejected(f"GET {url}: too many redirects") from exc
    except aiohttp.ClientError as exc:
        raise transport_error(exc, f"GET {url}") from exc
    except TimeoutError as exc:
        raise RetryLater(f"GET {url}: no answer within {timeout:g}s") from exc


class _RelFinder(HTMLParser):
    """Remembers the ``href`` of the first matching element; comments are never elements."""

    def __init__(self, rel: str, *, anchors: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.rel = rel
        self.tags = {"link", "a"} if anchors else {"link"}
        self.found: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.found is not None or tag not in self.tags:
            return
        values = dict(attrs)
        tokens = (values.get("rel") or "").lower().split()
        href = values.get("href")
        if self.rel in tokens and href is not None:
            self.found = href.strip()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
