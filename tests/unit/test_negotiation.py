"""Accept header → ActivityStreams JSON or HTML, and the JSON we answer with."""

from __future__ import annotations

import json

import pytest

from bridge.activitypub.negotiation import (
    MediaRange,
    activity_response,
    json_bytes,
    parse_accept,
    wants_activity_json,
)

AS_LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CHROME = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
MASTODON = f"{AS_LD}, application/activity+json, application/json"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # Fediverse servers.
        ("application/activity+json", True),
        (AS_LD, True),
        ("application/ld+json", True),
        ('application/ld+json;profile="https://www.w3.org/ns/activitystreams"', True),
        ("application/ld+json; profile=https://www.w3.org/ns/activitystreams", True),
        (
            'application/ld+json; profile="https://www.w3.org/ns/activitystreams '
            'https://w3id.org/security/v1"',
            True,
        ),
        (MASTODON, True),
        ("application/json", True),
        ("APPLICATION/ACTIVITY+JSON", True),
        # q-values decide between the two.
        ("text/html;q=0.9, application/activity+json", True),
        ("text/html, application/activity+json;q=0.9", False),
        ("application/activity+json, text/html", True),
        ("text/html;q=0.5, application/json;q=0.6", True),
        ("application/activity+json;q=0, text/html;q=0.1", False),
        ("application/activity+json;q=0", False),
        ("*/*;q=0.1, application/activity+json;q=0.2", True),
        # Browsers and anything vague get the page.
        (FIREFOX, False),
        (CHROME, False),
        ("*/*", False),
        ("text/*", False),
        ("", False),
        (None, False),
        ("application/xml", False),
        # ld+json for some other profile is not a request for ActivityStreams.
        ('application/ld+json; profile="http://www.w3.org/ns/json-ld#compacted"', False),
        # Malformed elements are ignored, the rest still counts.
        ("garbage, application/activity+json", True),
        ("application/activity+json;q=abc", False),
        ("application/activity+json;q=2", False),
        ("/json, text/", False),
    ],
)
def test_accept_table(accept: str | None, expected: bool) -> None:
    assert wants_activity_json(accept) is expected


def test_parse_accept_reads_params_and_quoted_commas() -> None:
    ranges = parse_accept('application/ld+json; profile="a, b"; q=0.5, text/html')
    assert ranges == [
        MediaRange("application/ld+json", (("profile", "a, b"),), 0.5),
        MediaRange("text/html", (), 1.0),
    ]


def test_json_bytes_keep_umlauts_and_quotes_as_utf8() -> None:
    body = json_bytes({"name": "Plädoyer für “Dialog”"})
    assert "Plädoyer für “Dialog”".encode() in body
    assert b"\\u" not in body
    assert json.loads(body) == {"name": "Plädoyer für “Dialog”"}


def test_activity_response_headers() -> None:
    response = activity_response({"id": "x"}, status=410, cache_seconds=60)
    assert response.status == 410
    assert response.headers["Content-Type"] == "application/activity+json; charset=utf-8"
    assert response.headers["Vary"] == "Accept"
    assert response.headers["Cache-Control"] == "max-age=60, public"
    assert "Vary" not in activity_response({}, vary=False).headers
