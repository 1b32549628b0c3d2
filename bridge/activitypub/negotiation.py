"""Content negotiation between ActivityStreams JSON and HTML, and the JSON responses we send.

One URL serves both faces of an account or post (as Mastodon does): fediverse servers ask for
``application/activity+json`` or ``application/ld+json; profile="…activitystreams"``, browsers
for HTML. A client gets JSON when it names a JSON type explicitly at least as highly as it
rates HTML; wildcards (``*/*``, ``text/*``) only ever mean HTML, so a browser that accepts
anything still gets the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

ACTIVITY_JSON = "application/activity+json"
LD_JSON = "application/ld+json"
AS_PROFILE = "https://www.w3.org/ns/activitystreams"
ACTIVITY_CONTENT_TYPE = f"{ACTIVITY_JSON}; charset=utf-8"

# Plain application/json counts as a request for the document: command-line clients and
# older fediverse software send it, and no browser does.
_JSON_TYPES = frozenset({ACTIVITY_JSON, LD_JSON, "application/json"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/*", "*/*"})


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header."""

    type: str
    params: tuple[tuple[str, str], ...]
    q: float


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header; malformed elements are left out.

    Types and parameter names are lowercased; quoted parameter values are unquoted.
    """
    ranges: list[MediaRange] = []
    if not header:
        return ranges
    for element in _split_outside_quotes(header, ","):
        parts = _split_outside_quotes(element, ";")
        media_type = parts[0].strip().lower()
        if media_type.count("/") != 1 or media_type.startswith("/") or media_type.endswith("/"):
            continue
        q = 1.0
        params: list[tuple[str, str]] = []
        valid = True
        for raw_param in parts[1:]:
            name, sep, value = raw_param.partition("=")
            name = name.strip().lower()
            value = value.strip()
            if not sep or not name:
                valid = False
                break
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            if name == "q":
                parsed = _parse_q(value)
                if parsed is None:
                    valid = False
                    break
                q = parsed
            else:
                params.append((name, value))
        if valid:
            ranges.append(MediaRange(media_type, tuple(params), q))
    return ranges


def wants_activity_json(accept_header: str | None) -> bool:
    """Whether a request with this Accept header should get ActivityStreams JSON (else HTML)."""
    json_q = 0.0
    html_q = 0.0
    for media in parse_accept(accept_header):
        if media.type in _JSON_TYPES and _profile_fits(media):
            json_q = max(json_q, media.q)
        elif media.type in _HTML_TYPES:
            html_q = max(html_q, media.q)
    # A tie goes to JSON: a client that names the ActivityStreams type means it.
    return json_q > 0 and json_q >= html_q


def _profile_fits(media: MediaRange) -> bool:
    """ld+json with a profile must name the ActivityStreams one (any of several, space-split)."""
    if media.type != LD_JSON:
        return True
    profiles = [value for name, value in media.params if name == "profile"]
    if not profiles:
        return True
    return any(AS_PROFILE in value.split() for value in profiles)


def _parse_q(value: str) -> float | None:
    try:
        q = float(value)
    except ValueError:
        return None
    if not 0.0 <= q <= 1.0:
        return None
    return q


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on ``separator`` except inside double quotes (profile values may hold commas)."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == separator and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return [piece for piece in pieces if piece.strip()]


def json_bytes(document: Any) -> bytes:
    """Serialise as UTF-8 JSON, non-ASCII characters kept as they are (not ``\\u`` escapes)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def activity_response(
    document: dict[str, Any],
    *,
    status: int = 200,
    cache_seconds: int | None = None,
    vary: bool = True,
) -> web.Response:
    """An ``application/activity+json`` response; ``Vary: Accept`` when the URL negotiates."""
    response = web.Response(
        body=json_bytes(document), status=status, content_type=ACTIVITY_JSON, charset="utf-8"
    )
    if vary:
        response.headers["Vary"] = "Accept"
    if cache_seconds is not None:
        response.headers["Cache-Control"] = f"max-age={cache_seconds}, public"
    return response
