"""Fetch an ActivityStreams document that a remote party named, through the address guard.

One function, :func:`fetch_activity_json`, for actors, keys and objects. Every step an attacker
controls is capped or checked:

* the session must be a guarded one (:func:`bridge.activitypub.addresses.open_remote_session`):
  no private addresses, on every hop, checked on the address actually connected to;
* redirects are followed here, not by aiohttp, so each hop's URL is validated (http(s), a host,
  no credentials) and signed on its own; at most ``max_redirects`` of them;
* one time cap for the whole exchange, redirects included;
* the body is streamed and cut off at ``max_bytes``, counted after decompression (aiohttp
  inflates in bounded steps, so a gzip bomb never lands in memory);
* the content type must be ``application/activity+json`` or ``application/ld+json`` with the
  ActivityStreams profile. Plain ``application/json`` is refused, as Mastodon refuses it: a
  server that means ActivityPub says so, and refusing keeps arbitrary JSON APIs (and pages
  that merely look like JSON) from being read as activities;
* JSON is checked for nesting depth before it is parsed (a 10,000-deep document is refused
  in linear time instead of exhausting the parser's recursion);
* the document must be an object whose ``id`` is the final URL: only the origin that serves a
  document can vouch for its id (Mastodon's rule).

Only status 200 is a document; 404 and 410 (and the rest) raise
:class:`~bridge.errors.RemoteHTTPError`, whose ``status`` lets callers tell "not found" from
"gone for good".
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from itertools import accumulate
from typing import Any, NoReturn

import aiohttp
from yarl import URL

from bridge.activitypub.addresses import GuardedConnector
from bridge.errors import (
    IdMismatch,
    NotActivityJSON,
    RemoteConnectionError,
    RemoteHTTPError,
    RemoteTimeout,
    RemoteTooLarge,
    TooManyRedirects,
    UnsupportedURL,
)

log = logging.getLogger(__name__)

AS_PROFILE = "https://www.w3.org/ns/activitystreams"
AS_ACCEPT = f'application/activity+json, application/ld+json; profile="{AS_PROFILE}"'
MAX_JSON_DEPTH = 64
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

Signer = Callable[[str, str, Mapping[str, str]], Mapping[str, str]]
"""Returns the headers that sign a request, given (method, url, headers about to be sent)."""


@dataclass(frozen=True)
class RemoteDocument:
    """A fetched ActivityStreams document.

    ``url`` is the final URL (after redirects, without fragment); ``data["id"]`` names the
    same resource. ``headers`` are the final response's headers.
    """

    url: str
    data: dict[str, Any]
    headers: Mapping[str, str]


async def fetch_activity_json(
    session: aiohttp.ClientSession,
    url: str,
    *,
    signer: Signer | None = None,
    max_bytes: int = 1_048_576,
    timeout: float = 30.0,
    max_redirects: int = 3,
    accept: str = AS_ACCEPT,
    max_depth: int = MAX_JSON_DEPTH,
) -> RemoteDocument:
    """GET the ActivityStreams document at ``url`` with every guard of this module.

    ``session`` must use a :class:`~bridge.activitypub.addresses.GuardedConnector` (a
    ``TypeError`` otherwise: the operator's unguarded session must never fetch for outsiders).
    ``signer`` is called once per hop with ``("GET", hop_url, headers)`` and returns headers to
    add (typically ``Date`` and ``Signature``); authorized-fetch servers require them. The
    headers it is given include the ``Host`` that will be sent. A fragment in ``url`` (as in a
    key id ``…/actor#main-key``) is never sent and is ignored when comparing ids.

    Raises a :class:`~bridge.errors.RemoteFetchError` subclass for every refusal or failure.
    """
    if not isinstance(session.connector, GuardedConnector):
        raise TypeError("fetch_activity_json needs a session from open_remote_session()")
    target = remote_url(url)
    try:
        async with asyncio.timeout(timeout):
            return await _follow(
                session, target, signer, max_bytes, max_redirects, accept, max_depth
            )
    except TimeoutError as exc:
        raise RemoteTimeout(url, f"no complete answer within {timeout:g} s") from exc


def remote_url(url: str | URL) -> URL:
    """Parse and check one hop's URL: absolute http(s), a host, no credentials; no fragment."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (TypeError, ValueError) as exc:
        raise UnsupportedURL(str(url), f"unreadable URL ({exc})") from None
    text = str(url)
    if parsed.scheme not in ("http", "https"):
        raise UnsupportedURL(text, "only http and https URLs are fetched")
    if not parsed.raw_host:
        raise UnsupportedURL(text, "URL has no host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise UnsupportedURL(text, "URLs with credentials are refused")
    return parsed.with_fragment(None)


async def _follow(
    session: aiohttp.ClientSession,
    target: URL,
    signer: Signer | None,
    max_bytes: int,
    max_redirects: int,
    accept: str,
    max_depth: int,
) -> RemoteDocument:
    current = target
    redirects = 0
    while True:
        outcome = await _exchange(session, current, signer, accept, max_bytes)
        if isinstance(outcome, URL):
            if redirects == max_redirects:
                raise TooManyRedirects(str(target), f"more than {max_redirects} redirects")
            redirects += 1
            current = outcome
            continue
        body, headers = outcome
        data = await asyncio.to_thread(parse_json_object, body, max_depth, str(current))
        _check_id(data, current)
        log.debug("fetched %s bytes=%d redirects=%d", current, len(body), redirects)
        return RemoteDocument(url=str(current), data=data, headers=headers)


async def _exchange(
    session: aiohttp.ClientSession,
    url: URL,
    signer: Signer | None,
    accept: str,
    max_bytes: int,
) -> URL | tuple[bytes, Mapping[str, str]]:
    """One signed GET: the redirect target, or the capped body and headers of a 200."""
    headers = {"Accept": accept, "Host": url.host_port_subcomponent or ""}
    if signer is not None:
        headers.update(signer("GET", str(url), dict(headers)))
    try:
        async with session.get(url, headers=headers, allow_redirects=False) as resp:
            if resp.status in REDIRECT_STATUSES:
                location = resp.headers.get("Location")
                if not location:
                    raise RemoteHTTPError(
                        str(url), resp.status, f"HTTP {resp.status} without Location"
                    )
                return _redirect_target(url, location)
            if resp.status != 200:
                raise RemoteHTTPError(str(url), resp.status)
            _check_content_type(resp.headers.get("Content-Type"), str(url))
            return await _read_capped(resp, max_bytes, str(url)), resp.headers
    except TimeoutError:
        # aiohttp's own timeouts are ClientErrors too; they belong to the caller's deadline.
        raise
    except aiohttp.InvalidURL as exc:
        raise UnsupportedURL(str(url), f"unusable URL ({exc})") from exc
    except aiohttp.ClientError as exc:
        raise RemoteConnectionError(str(url), f"{type(exc).__name__}: {exc}") from exc


def _redirect_target(current: URL, location: str) -> URL:
    try:
        joined = current.join(URL(location))
    except (TypeError, ValueError) as exc:
        raise UnsupportedURL(location, f"unreadable redirect target ({exc})") from None
    return remote_url(joined)


def _check_content_type(value: str | None, url: str) -> None:
    if value is None:
        raise NotActivityJSON(url, "no Content-Type")
    message = Message()
    message["Content-Type"] = value
    mime = message.get_content_type()
    if mime == "application/activity+json":
        return
    if mime == "application/ld+json":
        profile = message.get_param("profile")
        if isinstance(profile, str) and AS_PROFILE in profile.split():
            return
        raise NotActivityJSON(url, "application/ld+json without the ActivityStreams profile")
    raise NotActivityJSON(url, f"content type {mime} is not ActivityStreams JSON")


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int, url: str) -> bytes:
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "identity" and (resp.content_length or 0) > max_bytes:
        raise RemoteTooLarge(url, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise RemoteTooLarge(url, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


# A JSON string, or the rest of the text after an unterminated quote. The closing quote is
# optional so that every attempt succeeds: the scan stays linear on hostile input.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.?[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings ignored).

    Linear in the length of ``text``; meant to run before ``json.loads`` on untrusted input.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def parse_json_object(body: bytes, max_depth: int, url: str) -> dict[str, Any]:
    """Decode UTF-8 JSON that must be an object nested at most ``max_depth`` levels."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotActivityJSON(url, f"body is not UTF-8 ({exc.reason})") from None
    # Nothing nests deeper than the brackets that open (those in strings counted too): a
    # typical activity opens a dozen, so only a larger document needs the scan.
    if text.count("{") + text.count("[") > max_depth:
        depth = json_depth(text)
        if depth > max_depth:
            raise NotActivityJSON(url, f"JSON nested {depth} levels deep (limit {max_depth})")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise NotActivityJSON(url, f"body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise NotActivityJSON(url, f"JSON {type(data).__name__} where an object was expected")
    return data


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _check_id(data: Mapping[str, Any], url: URL) -> None:
    found = data.get("id")
    if not isinstance(found, str):
        raise IdMismatch(str(url), "document has no string id")
    if not same_resource(found, url):
        raise IdMismatch(str(url), f"document claims id {found[:200]!r}")


def same_resource(claimed: str, url: URL) -> bool:
    """Whether the id ``claimed`` names the resource at ``url``.

    Compared as URLs, not strings: scheme and host case, an explicit default port, an empty
    path and the fragment do not matter; everything else must match exactly.
    """
    try:
        other = URL(claimed)
    except (TypeError, ValueError):
        return False
    if not other.absolute:
        return False
    return _resource_key(other) == _resource_key(url)


def _resource_key(url: URL) -> tuple[str, str, int | None, str, str]:
    return (
        url.scheme.lower(),
        (url.raw_host or "").lower(),
        url.port,
        url.raw_path or "/",
        url.raw_query_string,
    )
