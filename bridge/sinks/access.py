"""How a sink reaches its blog: the session, caps and clock, and the blog's own hosts.

Linkbacks only ever go to the configured blog (the 2014 lesson: a pingback sender that pings
whatever URL it is handed becomes a DDoS amplifier). The push job already only names the blog's
posts; :meth:`BlogAccess.require_own` checks again right before any request, as defence in depth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp

from bridge.errors import Rejected


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BlogAccess:
    """The client side of one blog: ``hosts`` are the host names its posts may live on."""

    session: aiohttp.ClientSession
    hosts: frozenset[str]
    user_agent: str = "feedfed"
    timeout: float = 30.0
    clock: Callable[[], datetime] = _utc_now

    def require_own(self, url: str) -> str:
        """``url`` unchanged when it is an http(s) URL on one of the blog's hosts, else
        :class:`Rejected`."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or host not in self.hosts:
            raise Rejected(f"refusing to send to {url[:200]}: not on the blog's own hosts")
        return url


def hosts_of(*urls: str) -> frozenset[str]:
    """The lower-cased host names of ``urls`` (empty ones skipped), ``www.`` twins included.

    A blog reachable as ``example.org`` and ``www.example.org`` names both in its feed.
    """
    hosts: set[str] = set()
    for url in urls:
        host = (urlsplit(url).hostname or "").lower()
        if not host:
            continue
        hosts.add(host)
        hosts.add(host[4:] if host.startswith("www.") else f"www.{host}")
    return frozenset(hosts)
