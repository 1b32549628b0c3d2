"""The pingback sink (Pingback 1.0): ``pingback.ping(source, target)`` over XML-RPC.

The server is discovered from the target post (``X-Pingback`` header or ``<link rel=pingback>``,
see :mod:`bridge.sinks.discovery`). The call is serialised and read with :mod:`xmlrpc.client`
(``dumps``/``loads`` only); the HTTP goes through the blog's aiohttp session.

Fault codes (Pingback 1.0 §3, as WordPress's ``pingback_ping`` uses them):

==== ======================================= ===========================================
code meaning                                 here
==== ======================================= ===========================================
48   the pingback has already been registered success: a retried ping after a lost answer
16   the source URI does not exist           retry later: WordPress could not fetch our page
50   upstream server error                   retry later
17   the source does not link the target     rejected (recorded)
32   the target does not exist               rejected
33   the target cannot be used (pings closed) rejected
49   access denied                           rejected
0    generic (no title, same URL, …)         rejected
==== ======================================= ===========================================

WordPress fetches the source without following redirects and reads its first 150 KB only, so
the bridge's linkback page answers 200 directly and names the target early. A pingback cannot
be edited or withdrawn: update and withdrawal are accepted without I/O (capabilities say so).
"""

from __future__ import annotations

import asyncio
import xmlrpc.client
from xml.parsers.expat import ExpatError

import aiohttp

from bridge.errors import Rejected, RetryLater
from bridge.sinks.access import BlogAccess
from bridge.sinks.base import Capabilities, SinkComment, SinkLinkback, SinkResult
from bridge.sinks.discovery import Endpoints, discover_endpoints
from bridge.sinks.failures import error_for_status, read_capped, transport_error

ALREADY_REGISTERED = 48
SOURCE_MISSING = 16
UPSTREAM_ERROR = 50
TRANSIENT_FAULTS = frozenset({SOURCE_MISSING, UPSTREAM_ERROR})
MAX_ANSWER_BYTES = 64 * 1024


class PingbackSink:
    """Comments and linkbacks as pingbacks to the blog's own posts."""

    def __init__(self, access: BlogAccess) -> None:
        self.access = access
        self._endpoints: dict[str, Endpoints] = {}

    @property
    def name(self) -> str:
        """``pingback``."""
        return "pingback"

    @property
    def capabilities(self) -> Capabilities:
        """Comments and linkbacks as pingbacks; no threading, no edits, no withdrawal."""
        return Capabilities(
            comments=True, threading=False, update=False, delete=False, linkbacks=True
        )

    async def publish_comment(self, comment: SinkComment) -> SinkResult:
        """Ping the post from the comment's page."""
        return await self.ping(comment.page_url, comment.post_url)

    async def update_comment(self, remote_id: str, comment: SinkComment) -> SinkResult:
        """Nothing to send: a pingback cannot be edited (the blog keeps the first excerpt)."""
        return SinkResult(remote_id, "pingback cannot be updated")

    async def withdraw_comment(self, remote_id: str) -> None:
        """Nothing to send: pingback has no withdrawal; the source page answers 410."""

    async def send_linkback(self, linkback: SinkLinkback) -> SinkResult:
        """Ping the post from the linkback page."""
        return await self.ping(linkback.source_url, linkback.target_url)

    async def withdraw_linkback(self, linkback: SinkLinkback, remote_id: str | None) -> None:
        """Nothing to send: pingback has no withdrawal; the source page answers 410."""

    async def endpoint(self, target: str) -> str:
        """The pingback server the (own) post ``target`` names, discovered once per sink."""
        self.access.require_own(target)
        found = self._endpoints.get(target)
        if found is None:
            found = await discover_endpoints(
                self.access.session,
                target,
                timeout=self.access.timeout,
                user_agent=self.access.user_agent,
            )
            self._endpoints[target] = found
        if found.pingback is None:
            raise Rejected(f"{target} names no pingback server")
        return found.pingback

    async def ping(self, source: str, target: str) -> SinkResult:
        """Call ``pingback.ping(source, target)``; the server's message as the note."""
        server = await self.endpoint(target)
        body = xmlrpc.client.dumps((source, target), methodname="pingback.ping").encode()
        what = f"pingback.ping at {server}"
        try:
            async with asyncio.timeout(self.access.timeout):
                async with self.access.session.post(
                    server,
                    data=body,
                    headers={
                        "Content-Type": "text/xml; charset=utf-8",
                        "User-Agent": self.access.user_agent,
                    },
                    allow_redirects=False,
                ) as response:
                    answer = await read_capped(response, MAX_ANSWER_BYTES)
                    if response.status != 200:
                        raise error_for_status(
                            response.status, response.headers, what, now=self.access.clock()
                        )
        except aiohttp.ClientError as exc:
            raise transport_error(exc, what) from exc
        except TimeoutError as exc:
            raise RetryLater(f"{what}: no answer within {self.access.timeout:g}s") from exc
        return read_answer(answer, what)


def read_answer(answer: bytes, what: str) -> SinkResult:
    """The outcome of an XML-RPC ``pingback.ping`` answer (see the table of fault codes)."""
    try:
        params, _method = xmlrpc.client.loads(answer)
    except xmlrpc.client.Fault as fault:
        code = fault.faultCode if isinstance(fault.faultCode, int) else 0
        message = f"{what}: fault {code}: {str(fault.faultString)[:300]}"
        if code == ALREADY_REGISTERED:
            return SinkResult(None, "pingback already registered")
        if code in TRANSIENT_FAULTS:
            raise RetryLater(message) from fault
        raise Rejected(message) from fault
    except (ExpatError, xmlrpc.client.ResponseError, ValueError) as exc:
        raise Rejected(f"{what}: not an XML-RPC answer") from exc
    note = params[0] if params and isinstance(params[0], str) else "pingback registered"
    return SinkResult(None, note[:300])
