"""The feed-only sink: nothing is pushed into the blog.

For blogs without an API, pingback or webmention endpoint (or whose owner wants none): the
bridge's comment feeds and pages are the whole output. Every capability is False, so the push
jobs are never queued for such a blog; a job queued before the blog switched to feed-only still
completes cleanly, without I/O, with the note ``feed only``.
"""

from __future__ import annotations

from bridge.sinks.base import Capabilities, SinkComment, SinkLinkback, SinkResult

FEED_ONLY = "feed only"


class FeedOnlySink:
    """A sink that publishes nothing."""

    @property
    def name(self) -> str:
        """``feed``."""
        return "feed"

    @property
    def capabilities(self) -> Capabilities:
        """Nothing reaches the blog."""
        return Capabilities(
            comments=False, threading=False, update=False, delete=False, linkbacks=False
        )

    async def publish_comment(self, comment: SinkComment) -> SinkResult:
        """Nothing to do: the comment feeds carry the comment."""
        return SinkResult(None, FEED_ONLY)

    async def update_comment(self, remote_id: str, comment: SinkComment) -> SinkResult:
        """Nothing to do: the comment feeds carry the edit."""
        return SinkResult(None, FEED_ONLY)

    async def withdraw_comment(self, remote_id: str) -> None:
        """Nothing to do: the comment feeds drop the comment."""

    async def send_linkback(self, linkback: SinkLinkback) -> SinkResult:
        """Nothing to do: the linkback page is all there is."""
        return SinkResult(None, FEED_ONLY)

    async def withdraw_linkback(self, linkback: SinkLinkback, remote_id: str | None) -> None:
        """Nothing to do."""
