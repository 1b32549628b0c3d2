"""The exception tree of feedfed.

Every error the bridge raises on purpose is a :class:`BridgeError`. Edges (HTTP handlers,
the poller loop, the CLI) turn them into status codes, visible blog state or exit codes;
nothing below an edge swallows them.

    BridgeError
    ├── ConfigError                 a bad configuration value (names the key)
    ├── StoreError                  the database said no
    │   ├── BlogExists              a handle or feed URL is already taken
    │   └── BlogNotFound            no blog with that handle
    ├── FeedError                   a feed could not be read (message shown in `blogs show`)
    │   ├── FetchError              transport: refused, reset, DNS, TLS
    │   │   ├── FetchTimeout        no complete answer within the time cap
    │   │   └── HTTPStatusError     an unexpected status code (carries .status)
    │   │       └── FeedGone        410: the feed is gone for good, polling stops
    │   ├── FeedTooLarge            the body passed the size cap (counted after decompression)
    │   ├── FeedParseError          not a feed: malformed XML/JSON or an HTML page
    │   └── FeedNotDiscovered       a home page that names no feed
    ├── RequestError                a client's request to the bridge is malformed (HTTP 400)
    │   ├── MalformedResource       a WebFinger resource that is no acct: or http(s) URI
    │   └── InvalidPage             a collection page parameter that is no positive number
    └── WebSubError                 a hub refused or failed a subscription
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error feedfed raises on purpose."""


class ConfigError(BridgeError):
    """A configuration value is missing or invalid; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config {key}: {problem}")
        self.key = key
        self.problem = problem


class StoreError(BridgeError):
    """The store refused an operation."""


class BlogExists(StoreError):
    """A blog with this handle (or feed URL) already exists."""


class BlogNotFound(StoreError):
    """No blog with this handle."""


class FeedError(BridgeError):
    """A feed could not be fetched or understood."""


class FetchError(FeedError):
    """The HTTP exchange itself failed."""


class FetchTimeout(FetchError):
    """The server did not deliver a complete answer in time."""


class HTTPStatusError(FetchError):
    """The server answered with a status we cannot use."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status = status
        self.url = url


class FeedGone(HTTPStatusError):
    """410 Gone: the publisher removed the feed; polling stops."""


class FeedTooLarge(FeedError):
    """The (decompressed) body exceeded the configured cap."""

    def __init__(self, limit: int, url: str) -> None:
        super().__init__(f"feed larger than {limit} bytes (after decompression): {url}")
        self.limit = limit
        self.url = url


class FeedParseError(FeedError):
    """The body is not a feed we can read."""


class FeedNotDiscovered(FeedError):
    """A page was fetched to discover its feed, but it links none."""


class RequestError(BridgeError):
    """A request to the bridge cannot be answered as asked; handlers answer 400."""


class MalformedResource(RequestError):
    """The WebFinger ``resource`` parameter is not an acct: or http(s) URI."""


class InvalidPage(RequestError):
    """A collection's ``page`` parameter is not a positive whole number."""


class WebSubError(BridgeError):
    """A WebSub hub refused or failed a subscription request."""
