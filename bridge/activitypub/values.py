"""Reading ActivityStreams values as servers actually send them (pure).

One property may hold a string, an object, or a list of either; ids may be embedded objects;
URLs may be strings, ``Link`` objects or lists. These readers take any of those shapes and
never raise on garbage: what is not there, or not an http(s) URL, is simply not yielded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final, TypeGuard

from yarl import URL

MAX_URL_CHARS: Final = 2048

# What str.isspace() calls whitespace (the same Unicode test as \s in a str pattern), and
# the C0 controls; searched in C rather than one character at a time in Python.
_SPACE_OR_CONTROL: Final = re.compile(r"[\s\x00-\x1f]")


def items(value: Any) -> Iterator[Any]:
    """The elements of a property: a list as is, a single value as a one-element list."""
    if isinstance(value, list):
        yield from value
    elif value is not None:
        yield value


def strings(value: Any) -> Iterator[str]:
    """The string elements of a property (e.g. ``type``, which may be a list)."""
    for item in items(value):
        if isinstance(item, str):
            yield item


def id_of(value: Any) -> str | None:
    """The id of a reference that is a URL string or an embedded object with ``id``."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def is_http_url(value: Any) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host."""
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS:
        return False
    try:
        url = URL(value)
    except (TypeError, ValueError):
        return False
    return url.scheme in ("http", "https") and bool(url.raw_host)


def is_url(value: Any) -> TypeGuard[str]:
    """``is_http_url`` that also refuses whitespace and control characters, as a type guard."""
    return isinstance(value, str) and not _SPACE_OR_CONTROL.search(value) and is_http_url(value)


def host_of(url: str) -> str:
    """The host name of an absolute URL, lower case, IDNA-encoded ("" if none)."""
    try:
        return (URL(url).raw_host or "").lower()
    except (TypeError, ValueError):
        return ""


def ids(value: Any) -> Iterator[str]:
    """The http(s) ids of a property's elements (URL strings or objects with ``id``)."""
    for item in items(value):
        found = item.get("id") if isinstance(item, Mapping) else item
        if is_url(found):
            yield found


def urls_of(item: Any) -> Iterator[str]:
    """The http(s) URLs of a string, a ``Link`` (``href``) or an object (``url``)."""
    if isinstance(item, Mapping):
        inner = [u.get("href") if isinstance(u, Mapping) else u for u in items(item.get("url"))]
        candidates = [item.get("href"), *inner]
    else:
        candidates = [item]
    for candidate in candidates:
        if is_url(candidate):
            yield candidate


def first_url(value: Any) -> str | None:
    """The first http(s) URL of a ``url``: a string, a ``Link`` or a list; an HTML link is
    preferred (Mastodon lists the HTML page and the ActivityStreams URL)."""
    links = list(items(value))
    for item in links:
        if isinstance(item, Mapping) and str(item.get("mediaType", "")).startswith("text/html"):
            return next(urls_of(item), None)
    return next((u for item in links for u in urls_of(item)), None)
