"""origin_of: the origin every origin rule compares, from one parse of the URL."""

from __future__ import annotations

import pytest

from bridge.activitypub.values import MAX_URL_CHARS, is_http_url
from bridge.errors import UnsupportedURL
from bridge.federation.origin import origin_of
from bridge.federation.outbound import host_of

URLS = [
    "https://A.Example:443/users/a",
    "http://a.example:80/x",
    "http://a.example:8080/x",
    "https://a.example",
    "https://a.example:80/x",
    "ftp://a.example/x",
    "https:///x",
    "//a.example/x",
    "/users/a",
    "",
    "http://[::1]:80/x",
    "http://[2001:db8::1]:8443/x",
    "http://user:pw@a.example/x",
    "http://a.example:99999/x",
    "http://a.example:x/y",
    "https://xn--bcher-kva.example/x",
    "https://bücher.example/x",
    "https://a.example/ x",
    "HTTPS://A.EXAMPLE/X",
    "https://a.example." + "/x",
    "https://" + "a" * MAX_URL_CHARS + ".example/",
]


def composed(url: str | None) -> str:
    """What origin_of answered before it parsed once: is_http_url, then host_of."""
    if url is None or not is_http_url(url):
        return ""
    try:
        return host_of(url)
    except UnsupportedURL:
        return ""


@pytest.mark.parametrize("url", [*URLS, None])
def test_origin_of_answers_as_its_parts_did(url: str | None) -> None:
    assert origin_of(url) == composed(url)


def test_origin_of_known_answers() -> None:
    assert origin_of("https://A.Example:443/users/a") == "a.example"
    assert origin_of("http://a.example:8080/x") == "a.example:8080"
    assert origin_of("ftp://a.example/x") == ""
