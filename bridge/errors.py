"""The exception tree of feedfed.

Every error the bridge raises on purpose is a :class:`BridgeError`. Edges (HTTP handlers,
the poller loop, the CLI) turn them into status codes, visible blog state or exit codes;
nothing below an edge swallows them.

    BridgeError
    ├── ConfigError                 a bad configuration value (names the key)
    ├── StoreError                  the database said no
    │   ├── BlogExists              a handle or feed URL is already taken
    │   ├── BlogNotFound            no blog with that handle
    │   ├── FollowerNotFound        that actor does not follow (or ask to follow) that blog
    │   └── CommentNotFound         no comment with that object id
    ├── FeedError                   a feed could not be read (message shown in `blogs show`)
    │   ├── FetchError              transport: refused, reset, DNS, TLS
    │   │   ├── FetchTimeout        no complete answer within the time cap
    │   │   └── HTTPStatusError     an unexpected status code (carries .status)
    │   │       └── FeedGone        410: the feed is gone for good, polling stops
    │   ├── FeedTooLarge            the body passed the size cap (counted after decompression)
    │   ├── FeedParseError          not a feed: malformed XML/JSON or an HTML page
    │   └── FeedNotDiscovered       a home page that names no feed
    ├── RequestError                a client's request to the bridge is malformed (HTTP 400)
    │   ├── MalformedStructuredField  a header that is no valid RFC 8941 structured field
    │   ├── MalformedResource       a WebFinger resource that is no acct: or http(s) URI
    │   ├── InvalidPage             a collection page parameter that is no positive number
    │   ├── MalformedActivity       an inbox POST that is no object with string id, type, actor
    │   └── RequestTooLarge         a request body over the size cap (HTTP 413)
    ├── SignatureError              an HTTP signature is absent or does not hold (HTTP 401)
    │   ├── MissingSignature        neither Signature-Input/Signature nor a cavage Signature
    │   ├── MalformedSignature      unparsable, oversized, or a signed component is absent
    │   │   └── InsufficientCoverage  a required component (target, date, digest) is unsigned
    │   ├── UnsupportedAlgorithm    an algorithm or key type we do not verify
    │   ├── SignatureMismatch       the signature does not verify with the key
    │   ├── StaleSignature          Date/created outside the allowed skew, or expired
    │   ├── DigestMismatch          the body does not match its signed (Content-)Digest
    │   ├── HostMismatch            signed for another host than ours
    │   ├── KeyUnavailable          the signer's key cannot be fetched (.gone: it answered 410)
    │   ├── KeyNotOwned             key and actor do not name each other, or the key lives elsewhere
    │   └── SignerMismatch          signed by someone else than the activity's actor, or by "us"
    ├── DomainBlocked               the sender's domain is blocked by the operator (HTTP 403)
    ├── ActivityIgnored             an inbound activity the bridge has nothing to do with
    │   └── OriginMismatch          not the signer's to make: another origin's object, or ours
    ├── WebSubError                 a hub refused or failed a subscription
    ├── JobError                    a job handler's verdict; the worker maps it to a queue state
    │   ├── RetryLater              transient (5xx, timeout, 408, 429): retry per the policy
    │   └── Rejected                permanent (other 4xx, bad payload): no retry, the job is dead
    └── RemoteFetchError            a document an outsider named could not be fetched (.url)
        ├── UnsupportedURL          not an absolute http(s) URL with a host, or with credentials
        ├── AddressNotAllowed       the host is, or resolves to, an address the policy refuses
        ├── RemoteConnectionError   transport: refused, reset, DNS, TLS, a broken body
        ├── RemoteTimeout           no complete answer within the time cap
        ├── RemoteHTTPError         an unusable status (carries .status; 410: gone for good)
        ├── TooManyRedirects        more redirects than the cap
        ├── RemoteTooLarge          the body passed the size cap (counted after decompression)
        ├── NotActivityJSON         wrong content type, not JSON, not an object, nested too deep
        ├── IdMismatch              the document's id is not the URL it was fetched from
        └── InvalidActor            the document is no actor we can deliver to (type, inbox)
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


class FollowerNotFound(StoreError):
    """The actor neither follows the blog nor asks to."""


class CommentNotFound(StoreError):
    """No comment has that object id."""


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


class MalformedStructuredField(RequestError):
    """A header value is not the RFC 8941 structured field (dictionary, list, item) it must be."""


class MalformedActivity(RequestError):
    """An inbox POST that is no JSON object with a string ``id``, ``type`` and ``actor``."""


class RequestTooLarge(RequestError):
    """The request body exceeds the cap; handlers answer 413, not 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class SignatureError(BridgeError):
    """An HTTP signature is missing, malformed or does not verify; handlers answer 401."""


class MissingSignature(SignatureError):
    """The request carries no HTTP signature at all."""


class MalformedSignature(SignatureError):
    """The signature headers cannot be parsed, are oversized, or name a component that is absent."""


class InsufficientCoverage(MalformedSignature):
    """A component our policy requires (request target, date, host, body digest) is not signed."""


class UnsupportedAlgorithm(SignatureError):
    """The signature algorithm or the key type is not one we verify."""


class SignatureMismatch(SignatureError):
    """The signature does not verify with the signer's public key."""


class StaleSignature(SignatureError):
    """The signed Date or ``created`` is outside the allowed skew (past or future), or expired."""


class DigestMismatch(SignatureError):
    """The body does not match the signed Digest or Content-Digest, or no usable digest is given."""


class HostMismatch(SignatureError):
    """The signature was made for another host than the one that received it."""


class KeyUnavailable(SignatureError):
    """The signer's public key could not be fetched (refused address, error, timeout, garbage).

    ``gone`` is True when the key's document answered 410: the actor was deleted.
    """

    def __init__(self, key_id: str, problem: str, *, gone: bool = False) -> None:
        super().__init__(f"key {key_id[:200]}: {problem}")
        self.key_id = key_id
        self.gone = gone


class KeyNotOwned(SignatureError):
    """The key and its actor do not name each other, or the key's document lives elsewhere."""


class SignerMismatch(SignatureError):
    """The request is signed by another actor than the activity's, or claims one of ours."""


class ActivityIgnored(BridgeError):
    """An inbound activity the bridge has nothing to do with: not about one of our blogs, a
    type it does not handle (yet), or not the sender's to make. Recorded as ``ignored``."""


class OriginMismatch(ActivityIgnored):
    """An activity whose object or author lives on another origin than its signer's, that acts
    on another actor's object, or that claims to be one of this bridge's actors or objects.
    Refused: recorded as ``ignored`` with the reason, and nothing changes."""


class DomainBlocked(BridgeError):
    """The operator blocked the sender's domain (or a parent domain of it); handlers answer 403."""

    def __init__(self, host: str) -> None:
        super().__init__(f"domain {host} is blocked")
        self.host = host


class WebSubError(BridgeError):
    """A WebSub hub refused or failed a subscription request."""


class JobError(BridgeError):
    """Raised by a job handler to tell the worker how the attempt ended."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryLater(JobError):
    """A transient failure: the worker retries on the policy's schedule.

    ``retry_after`` (seconds) is the remote server's wish (``Retry-After``), honoured when
    it asks for more patience than the policy would give.
    """

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class Rejected(JobError):
    """A permanent failure: retrying cannot help, the job is buried."""


class RemoteFetchError(BridgeError):
    """A document named by a remote party could not be fetched; ``url`` is the one that failed."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"{problem}: {url}")
        self.url = url
        self.problem = problem


class UnsupportedURL(RemoteFetchError):
    """The URL is not an absolute http(s) URL with a host, or it carries credentials."""


class AddressNotAllowed(RemoteFetchError):
    """The host is, or resolves to, an address the policy refuses (private, loopback, …)."""


class RemoteConnectionError(RemoteFetchError):
    """The HTTP exchange itself failed: refused, reset, DNS, TLS or a broken body."""


class RemoteTimeout(RemoteFetchError):
    """No complete answer within the time cap (all redirects included)."""


class RemoteHTTPError(RemoteFetchError):
    """The server answered with a status we cannot use.

    404 may be temporary (a not yet visible object); 410 means the actor or object is gone.
    """

    def __init__(self, url: str, status: int, problem: str | None = None) -> None:
        super().__init__(url, problem or f"HTTP {status}")
        self.status = status

    @property
    def gone(self) -> bool:
        """True for 410 Gone: the remote side deleted the resource for good."""
        return self.status == 410


class TooManyRedirects(RemoteFetchError):
    """The server redirected more often than the cap allows."""


class RemoteTooLarge(RemoteFetchError):
    """The (decompressed) body exceeded the cap."""

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(url, f"body larger than {limit} bytes (after decompression)")
        self.limit = limit


class NotActivityJSON(RemoteFetchError):
    """Wrong content type, not JSON, not a JSON object, or nested deeper than allowed."""


class IdMismatch(RemoteFetchError):
    """The document's ``id`` is not the URL it was served from: that origin cannot vouch for it."""


class InvalidActor(RemoteFetchError):
    """The document is not an actor the bridge can work with (no actor type, no usable inbox)."""
