"""Fetching feeds over HTTP: conditional GET, own redirect handling, size and time caps.

Redirects are followed here rather than by aiohttp so that the bridge knows whether every hop
was permanent (301/308): only then does the stored feed URL move. The size cap is counted on
the decompressed body while it streams in (aiohttp inflates gzip/deflate in bounded steps), so
a gzip bomb is cut off after ``max_bytes`` without ever being held in memory. One deadline
covers the whole exchange, redirects and a body that stalls half-way included.

Every failure is a :class:`~bridge.errors.FeedError` whose message is one line fit for
``feedfed blogs show``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

from bridge.errors import FeedGone, FeedTooLarge, FetchError, FetchTimeout, HTTPStatusError

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.5, */*;q=0.1"
)
ACCEPT_ENCODING = "gzip, deflate"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
CHUNK_SIZE = 64 * 1024

_LINK_SPLIT = re.compile(r",(?=\s*<)")
_LINK_VALUE = re.compile(r"\s*<([^>]*)>(.*)", re.S)
_LINK_PARAM = re.compile(r'\s*([^\s=;]+)\s*=\s*(?:"([^"]*)"|([^\s;"]*))\s*')


@dataclass(frozen=True)
class FetchResult:
    """The outcome of a successful feed fetch (a 2xx with its body, or a 304)."""

    status: int
    url: str
    body: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    moved_to: str | None
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Final:
    """The response that ended a redirect chain."""

    response: aiohttp.ClientResponse
    url: str
    moved_to: str | None


async def fetch_feed(
    session: aiohttp.ClientSession,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int,
    timeout: float,
    user_agent: str,
    max_redirects: int = 5,
) -> FetchResult:
    """GET ``url`` conditionally and return the (decompressed) body.

    ``moved_to`` is the final URL when every redirect on the way was permanent (301/308).
    ``links`` are the ``(rel, absolute href)`` pairs of the final response's ``Link`` headers.
    On 304 the body is empty and the validators are the ones the server repeated, else the
    ones sent. Raises :class:`FeedGone` (410), :class:`HTTPStatusError` (other non-2xx),
    :class:`FeedTooLarge`, :class:`FetchTimeout` and :class:`FetchError` (transport).
    """
    headers = {"Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING, "User-Agent": user_agent}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(timeout):
            async with _follow(
                session, url, headers, aiohttp.ClientTimeout(total=timeout), max_redirects
            ) as final:
                return await _read_result(final, max_bytes, etag, last_modified)
    except TimeoutError as exc:
        raise FetchTimeout(
            f"timed out: no complete answer within {timeout:g} s from {url}"
        ) from exc
    except aiohttp.ClientError as exc:
        raise _transport_error(exc, url) from exc


async def fetch_status(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,
    user_agent: str,
    max_redirects: int = 5,
) -> int:
    """The status code a GET of ``url`` ends with, redirects followed; the body is not read.

    Used to ask whether a post that left the feed is really gone (404/410). Transport
    failures raise :class:`FetchError`, an exhausted deadline :class:`FetchTimeout`.
    """
    headers = {"Accept": "text/html, */*;q=0.5", "User-Agent": user_agent}
    try:
        async with asyncio.timeout(timeout):
            async with _follow(
                session, url, headers, aiohttp.ClientTimeout(total=timeout), max_redirects
            ) as final:
                return final.response.status
    except TimeoutError as exc:
        raise FetchTimeout(f"timed out: no answer within {timeout:g} s from {url}") from exc
    except aiohttp.ClientError as exc:
        raise _transport_error(exc, url) from exc


@asynccontextmanager
async def _follow(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    request_timeout: aiohttp.ClientTimeout,
    max_redirects: int,
) -> AsyncIterator[_Final]:
    """Follow redirects from ``url``; yields the final response while it is still open."""
    current = _require_http_url(url, url)
    chain = [current]
    all_permanent = True
    while True:
        async with session.get(
            current, headers=headers, allow_redirects=False, timeout=request_timeout
        ) as response:
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                moved_to = current if all_permanent and len(chain) > 1 else None
                yield _Final(response=response, url=current, moved_to=moved_to)
                return
            all_permanent = all_permanent and response.status in PERMANENT_REDIRECTS
        target = _require_http_url(_join(current, location), url)
        if len(chain) > max_redirects:
            what = "redirect loop" if target in chain else "too many redirects"
            raise FetchError(
                f"{what} (more than {max_redirects}) from {url}: " + " → ".join([*chain, target])
            )
        chain.append(target)
        current = target


async def _read_result(
    final: _Final, max_bytes: int, etag: str | None, last_modified: str | None
) -> FetchResult:
    response = final.response
    links = tuple(_parse_links(response.headers.getall("Link", ()), final.url))
    if response.status == 304:
        return FetchResult(
            status=304,
            url=final.url,
            body=b"",
            content_type=response.headers.get("Content-Type"),
            etag=response.headers.get("ETag") or etag,
            last_modified=response.headers.get("Last-Modified") or last_modified,
            moved_to=final.moved_to,
            links=links,
        )
    if response.status == 410:
        raise FeedGone(410, final.url)
    if not 200 <= response.status < 300:
        raise HTTPStatusError(response.status, final.url)
    body = await _read_capped(response, max_bytes, final.url)
    return FetchResult(
        status=response.status,
        url=final.url,
        body=body,
        content_type=response.headers.get("Content-Type"),
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        moved_to=final.moved_to,
        links=links,
    )


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int, url: str) -> bytes:
    """The decompressed body, refused the moment it passes ``max_bytes``."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    declared = response.content_length
    # Content-Length counts compressed bytes when the body is encoded, so only an identity
    # length can refuse the body before a byte of it is read.
    if declared is not None and encoding in ("", "identity") and declared > max_bytes:
        raise FeedTooLarge(max_bytes, url)
    body = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK_SIZE):
        body += chunk
        if len(body) > max_bytes:
            raise FeedTooLarge(max_bytes, url)
    return bytes(body)


def _parse_links(values: Iterable[str], base: str) -> list[tuple[str, str]]:
    """``Link`` header values (RFC 8288) as ``(rel, absolute href)``, one pair per rel token."""
    links: list[tuple[str, str]] = []
    for value in values:
        for part in _LINK_SPLIT.split(value):
            match = _LINK_VALUE.match(part)
            if match is None:
                continue  # not a link-value; RFC 8288 says to ignore it
            target, params = match.groups()
            rel = ""
            for param in params.split(";"):
                param_match = _LINK_PARAM.fullmatch(param)
                if param_match and param_match.group(1).lower() == "rel":
                    rel = param_match.group(2) or param_match.group(3) or ""
                    break
            href = _join(base, target.strip())
            links.extend((token, href) for token in rel.lower().split())
    return links


def _join(base: str, reference: str) -> str:
    try:
        return urljoin(base, reference.strip())
    except ValueError as exc:
        raise FetchError(f"invalid URL {reference!r} in a response from {base}") from exc


def _require_http_url(candidate: str, origin: str) -> str:
    try:
        parts = urlsplit(candidate)
    except ValueError as exc:
        raise FetchError(f"invalid URL: {candidate!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if candidate == origin:
            raise FetchError(f"not an http(s) URL: {candidate!r}")
        raise FetchError(f"{origin} redirects to a non-HTTP URL: {candidate!r}")
    return candidate


def _transport_error(exc: aiohttp.ClientError, url: str) -> FetchError:
    """A one-line, owner-readable FetchError for an aiohttp failure."""
    host = urlsplit(url).netloc or url
    if isinstance(exc, aiohttp.InvalidURL):
        return FetchError(f"invalid URL: {exc.url}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return FetchError(f"TLS certificate of {host} not accepted: {exc.certificate_error}")
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return FetchError(f"TLS handshake with {host} failed: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return FetchError(f"cannot resolve host {exc.host}: {_os_reason(exc.os_error)}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return FetchError(f"cannot connect to {exc.host}:{exc.port}: {_os_reason(exc.os_error)}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return FetchError(f"{url}: the server closed the connection before answering completely")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FetchError(f"{url}: broken response body ({exc})")
    if isinstance(exc, aiohttp.ClientResponseError):
        return FetchError(f"{url}: invalid HTTP response ({exc.message})")
    return FetchError(f"{url}: HTTP exchange failed ({type(exc).__name__}: {exc})")


def _os_reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__
