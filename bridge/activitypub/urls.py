"""Every URL the bridge mints, in one place, so ids never drift between modules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import quote


def entry_slug(entry_id: str) -> str:
    """The stable path segment of an entry's object URL (derived from its id alone)."""
    return hashlib.sha256(entry_id.encode("utf-8")).hexdigest()[:20]


def recreated_slug(entry_id: str, previous_slug: str) -> str:
    """The path segment of an entry that the publisher deleted and that came back.

    A new one, so the post gets a new object id: servers that processed our ``Delete`` refuse
    the old id for good (Mastodon keeps a tombstone for every deleted status URI and rejects a
    later ``Create`` of it). Derived from the slug it replaces, so every return differs.
    """
    return hashlib.sha256(f"{entry_id}\n{previous_slug}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Urls:
    """URL builder for one public base URL (``https://host`` without trailing slash)."""

    base: str

    def actor(self, handle: str) -> str:
        """The blog's actor id."""
        return f"{self.base}/users/{handle}"

    def key_id(self, handle: str) -> str:
        """The blog's public key id."""
        return f"{self.actor(handle)}#main-key"

    def inbox(self, handle: str) -> str:
        """The blog's personal inbox."""
        return f"{self.actor(handle)}/inbox"

    def outbox(self, handle: str) -> str:
        """The blog's outbox collection."""
        return f"{self.actor(handle)}/outbox"

    def followers(self, handle: str) -> str:
        """The blog's followers collection."""
        return f"{self.actor(handle)}/followers"

    def following(self, handle: str) -> str:
        """The blog's (always empty) following collection."""
        return f"{self.actor(handle)}/following"

    def featured(self, handle: str) -> str:
        """The blog's featured (pinned) collection."""
        return f"{self.actor(handle)}/featured"

    def article(self, handle: str, slug: str) -> str:
        """The object id of one entry."""
        return f"{self.actor(handle)}/posts/{slug}"

    def replies(self, handle: str, slug: str) -> str:
        """The ``replies`` collection of one post (its published comments)."""
        return f"{self.article(handle, slug)}/replies"

    def likes(self, handle: str, slug: str) -> str:
        """The ``likes`` collection of one post."""
        return f"{self.article(handle, slug)}/likes"

    def shares(self, handle: str, slug: str) -> str:
        """The ``shares`` collection of one post (its boosts)."""
        return f"{self.article(handle, slug)}/shares"

    def comment_page(self, handle: str, slug: str, comment_slug: str) -> str:
        """The page of one comment on a post (a source of pingbacks and webmentions)."""
        return f"{self.article(handle, slug)}/comments/{comment_slug}"

    def linkback_page(self, handle: str, slug: str, reaction_slug: str) -> str:
        """The page of one boost, mention or like of a post."""
        return f"{self.article(handle, slug)}/linkbacks/{reaction_slug}"

    def post_page(self, handle: str, slug: str) -> str:
        """The post's HTML face on the bridge: title, link, threaded comments, reactions.

        Apart from the object id, which sends browsers on to the blog post itself (the
        link Mastodon shows), so that people reading the post are not kept on the bridge.
        """
        return f"{self.profile(handle)}/{slug}"

    def post_comments_feed(self, handle: str, slug: str, kind: str) -> str:
        """The comment feed of one post; ``kind`` is ``"rss"`` or ``"atom"``."""
        return f"{self.post_page(handle, slug)}/comments.{kind}"

    def blog_comments_feed(self, handle: str, kind: str) -> str:
        """The comment feed of a whole blog; ``kind`` is ``"rss"`` or ``"atom"``."""
        return f"{self.profile(handle)}/comments.{kind}"

    def activity(self, handle: str, activity_uuid: str) -> str:
        """The id of one outgoing activity."""
        return f"{self.actor(handle)}/activities/{activity_uuid}"

    def profile(self, handle: str) -> str:
        """The human profile page (also the actor's ``url``)."""
        return f"{self.base}/@{handle}"

    def tag(self, name: str) -> str:
        """The page of a hashtag."""
        return f"{self.base}/tags/{quote(name, safe='')}"

    def shared_inbox(self) -> str:
        """The bridge-wide shared inbox."""
        return f"{self.base}/inbox"

    def instance_actor(self) -> str:
        """The instance actor (an Application that signs bridge-level fetches)."""
        return f"{self.base}/actor"

    def instance_outbox(self) -> str:
        """The instance actor's (always empty) outbox."""
        return f"{self.instance_actor()}/outbox"

    def instance_key_id(self) -> str:
        """The instance actor's public key id."""
        return f"{self.instance_actor()}#main-key"

    def websub_callback(self, handle: str) -> str:
        """Where the blog's WebSub hub verifies and pushes."""
        return f"{self.base}/websub/{handle}"
