"""The webmention sink (W3C Webmention): "this page of the bridge links your post".

The endpoint is discovered from the target post (see :mod:`bridge.sinks.discovery`), then
``source`` and ``target`` are POSTed form-encoded. Any 2xx is accepted (200 processed, 201/202
queued: their ``Location`` is the status URL, kept as the remote id). A webmention is a
notification, not a copy: an edit is announced by sending it again (the receiver re-fetches the
source), a withdrawal too, once the source answers 410 Gone (§3.2.3), so the receiver deletes
its copy.

Comments go the same way, from the bridge's comment page (which carries the comment as an
``h-entry`` replying to the post). :meth:`Sink.withdraw_comment` is handed only the remote id,
so for comments the remote id is a small JSON object naming source, target and status URL.
Redirects of the POST are not followed: a 301/302 would turn it into a GET and look like success.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urljoin

import aiohttp

from bridge.errors import Rejected, RetryLater
from bridge.sinks.access import BlogAccess
from bridge.sinks.base import Capabilities, SinkComment, SinkLinkback, SinkResult
from bridge.sinks.discovery import Endpoints, discover_endpoints
from bridge.sinks.failures import error_for_status, read_capped, transport_error

MAX_ANSWER_BYTES = 64 * 1024


class WebmentionSink:
    """Comments and linkbacks as webmentions to the blog's own posts."""

    def __init__(self, access: BlogAccess) -> None:
        self.access = access
        # Endpoints per post URL for this sink's lifetime: a burst of likes on one post
        # discovers once. A push job builds its sink afresh, so a moved endpoint is seen soon.
        self._endpoints: dict[str, Endpoints] = {}

    @property
    def name(self) -> str:
        """``webmention``."""
        return "webmention"

    @property
    def capabilities(self) -> Capabilities:
        """Comments (not threaded: a webmention targets the post), re-sent on edit and delete."""
        return Capabilities(
            comments=True, threading=False, update=True, delete=True, linkbacks=True
        )

    async def publish_comment(self, comment: SinkComment) -> SinkResult:
        """Send a webmention from the comment's page to the post."""
        status = await self.send(comment.page_url, comment.post_url)
        return SinkResult(_comment_id(comment.page_url, comment.post_url, status), "webmention")

    async def update_comment(self, remote_id: str, comment: SinkComment) -> SinkResult:
        """Send the webmention again: the receiver re-fetches the changed page."""
        status = await self.send(comment.page_url, comment.post_url)
        return SinkResult(_comment_id(comment.page_url, comment.post_url, status), "webmention")

    async def withdraw_comment(self, remote_id: str) -> None:
        """Send the webmention again once the comment page answers 410."""
        source, target = _parse_comment_id(remote_id)
        await self.send(source, target)

    async def send_linkback(self, linkback: SinkLinkback) -> SinkResult:
        """Send a webmention from the linkback page to the post."""
        status = await self.send(linkback.source_url, linkback.target_url)
        return SinkResult(status, "webmention")

    async def withdraw_linkback(self, linkback: SinkLinkback, remote_id: str | None) -> None:
        """Send the webmention again once the linkback page answers 410."""
        await self.send(linkback.source_url, linkback.target_url)

    async def endpoints(self, target: str) -> Endpoints:
        """The endpoints the (own) post ``target`` names, discovered once per sink."""
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
        return found

    async def send(self, source: str, target: str) -> str | None:
        """POST ``source``/``target`` to the post's endpoint; the status URL, if one is given.

        :class:`Rejected` when the post names no endpoint or the receiver refuses (4xx);
        :class:`RetryLater` when it is down, slow or rate limiting.
        """
        endpoint = (await self.endpoints(target)).webmention
        if endpoint is None:
            raise Rejected(f"{target} names no webmention endpoint")
        what = f"webmention to {endpoint}"
        try:
            async with asyncio.timeout(self.access.timeout):
                async with self.access.session.post(
                    endpoint,
                    data={"source": source, "target": target},
                    headers={"User-Agent": self.access.user_agent},
                    allow_redirects=False,
                ) as response:
                    body = await read_capped(response, MAX_ANSWER_BYTES, truncate=True)
                    if not 200 <= response.status < 300:
                        raise error_for_status(
                            response.status,
                            response.headers,
                            what,
                            now=self.access.clock(),
                            detail=body.decode("utf-8", errors="replace").strip(),
                        )
                    location = response.headers.get("Location")
                    if response.status in (201, 202) and location:
                        return urljoin(str(response.url), location)
                    return None
        except aiohttp.ClientError as exc:
            raise transport_error(exc, what) from exc
        except TimeoutError as exc:
            raise RetryLater(f"{what}: no answer within {self.access.timeout:g}s") from exc


def _comment_id(source: str, target: str, status: str | None) -> str:
    return json.dumps({"source": source, "target": target, "status": status}, sort_keys=True)


def _parse_comment_id(remote_id: str) -> tuple[str, str]:
    try:
        value = json.loads(remote_id)
        source, target = value["source"], value["target"]
    except (ValueError, TypeError, KeyError) as exc:
        raise Rejected(f"not a webmention comment id: {remote_id[:200]}") from exc
    if not isinstance(source, str) or not isinstance(target, str):
        raise Rejected(f"not a webmention comment id: {remote_id[:200]}")
    return source, target
