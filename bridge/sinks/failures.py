"""How an answer from a blog becomes one of the sink's two failure kinds.

The same rules as delivery: transport failures, timeouts, 408, 425, 429 and 5xx are transient
(:class:`~bridge.errors.RetryLater`, with the server's ``Retry-After`` where it gave one); every
other 4xx is permanent (:class:`~bridge.errors.Rejected`). Messages name the request and carry a
short excerpt of the blog's own explanation, because that is what an owner reads in the job's
last error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import aiohttp

from bridge.errors import JobError, Rejected, RetryLater
from bridge.jobs.retry import parse_retry_after

TRANSIENT_STATUSES = frozenset({408, 425, 429})
# Enough of an error body to show the blog's code and message, not a whole HTML error page.
DETAIL_CHARS = 300


def is_transient(status: int) -> bool:
    """True where waiting can help: 408, 425, 429 and every 5xx."""
    return status in TRANSIENT_STATUSES or status >= 500


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    what: str,
    *,
    now: datetime | None = None,
    detail: str = "",
) -> JobError:
    """The failure for an unusable ``status``; ``what`` names the request (``POST …/comments``).

    ``now`` lets an HTTP-date ``Retry-After`` count from the caller's clock; without it only
    the delay-seconds form is understood.
    """
    message = f"{what}: HTTP {status}"
    if detail:
        message += f" ({detail[:DETAIL_CHARS]})"
    if is_transient(status):
        value = headers.get("Retry-After")
        retry_after = (
            parse_retry_after(value, now)
            if now is not None
            else (float(value) if value and value.strip().isdigit() else None)
        )
        return RetryLater(message, status=status, retry_after=retry_after)
    return Rejected(message, status=status)


def transport_error(exc: aiohttp.ClientError, what: str) -> RetryLater:
    """A broken exchange (refused, reset, DNS, TLS, a body cut short): worth another try."""
    reason = str(exc) or type(exc).__name__
    return RetryLater(f"{what}: {reason}")


async def read_capped(
    response: aiohttp.ClientResponse, max_bytes: int, *, truncate: bool = False
) -> bytes:
    """Read at most ``max_bytes`` of the (decompressed) body.

    With ``truncate`` the rest is left unread (a page whose head is all we need); without it
    a longer body is :class:`Rejected` (an answer no sane endpoint gives).
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= max_bytes:
            if truncate:
                return b"".join(chunks)[:max_bytes]
            raise Rejected(f"{response.method} {response.url}: answer larger than {max_bytes}")
    return b"".join(chunks)
