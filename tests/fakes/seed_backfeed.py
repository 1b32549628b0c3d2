"""Comments and reactions put straight into a store, for tests of what readers see.

The talkabout post ("Ein Plädoyer für die Mitteilung …", ``?p=1234``) as a stored entry,
people on fediverse hosts, and helpers that add comments and reactions through the
``CommentStore``/``ReactionStore`` roles, the way the inbound handlers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bridge.activitypub.urls import Urls, entry_slug
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.store.base import Blog, NewBlog, Store, StoredEntry
from bridge.store.roles_backfeed import (
    Comment,
    CommentState,
    NewComment,
    NewReaction,
    Person,
    Reaction,
    ReactionKind,
)
from bridge.web import backfeed_routes, pages, post_collections
from bridge.web import routes as ap_routes

PLAEDOYER = (
    "Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen. "
    "Oder: Teilhaben lassen als Kern von Social Media."
)
POST_ID = "http://www.talkabout.de/?p=1234"
POST_URL = "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"
POSTED = datetime(2010, 2, 21, 9, 0, tzinfo=UTC)


@dataclass
class Thread:
    """A blog, its post and the URLs of the bridge they live on."""

    store: Store
    urls: Urls
    blog: Blog
    post: StoredEntry

    @property
    def object_id(self) -> str:
        """The post's object id."""
        return self.urls.article(self.blog.handle, self.post.slug)

    async def comment(
        self,
        object_id: str,
        author: Person,
        html: str,
        *,
        published: datetime,
        parent: str | None = None,
        state: CommentState = "published",
        now: datetime | None = None,
        **extra: Any,
    ) -> Comment:
        """Store a comment on the post (answering ``parent``, else the post)."""
        stored = await self.store.add_comment(
            NewComment(
                blog_id=self.blog.id,
                entry_id=self.post.entry_id,
                object_id=object_id,
                parent_id=parent or self.object_id,
                author=author,
                content_html=html,
                published=published,
                state=state,
                url=extra.pop("url", object_id),
                **extra,
            ),
            now or published,
        )
        assert stored is not None
        return stored

    async def react(
        self,
        kind: ReactionKind,
        activity_id: str,
        actor: Person,
        *,
        published: datetime,
        content_html: str | None = None,
    ) -> Reaction:
        """Store a like, boost or mention of the post."""
        stored = await self.store.add_reaction(
            NewReaction(
                blog_id=self.blog.id,
                entry_id=self.post.entry_id,
                kind=kind,
                activity_id=activity_id,
                actor=actor,
                published=published,
                content_html=content_html,
                url=activity_id,
            ),
            published,
        )
        assert stored is not None
        return stored

    def page(self, kind: str, slug: str) -> str:
        """The path of a comment's (``"comments"``) or linkback's (``"linkbacks"``) page."""
        article = self.urls.article(self.blog.handle, self.post.slug)
        return article.removeprefix(self.urls.base) + f"/{kind}/{slug}"


def person(host: str, username: str, name: str, *, avatar: bool = True) -> Person:
    """Someone on ``host``."""
    actor = f"https://{host}/users/{username}"
    return Person(
        actor_id=actor,
        name=name,
        handle=f"@{username}@{host}",
        profile_url=f"https://{host}/@{username}",
        avatar_url=f"https://files.{host}/avatars/{username}.png" if avatar else None,
    )


async def talkabout_thread(
    store: Store, urls: Urls, now: datetime, *, handle: str = "talkabout"
) -> Thread:
    """The talkabout blog and its post, stored."""
    blog = await store.add_blog(NewBlog(handle, f"http://127.0.0.1:1/{handle}/feed"), now)
    entry = FeedEntry(
        id=POST_ID,
        link=POST_URL,
        title=PLAEDOYER,
        summary_html="<p>Social Media: teilhaben lassen und teilnehmen lassen.</p>",
        published=POSTED,
        language="de-DE",
    )
    post = await store.save_entry(blog.id, entry, entry_slug(POST_ID), now)
    return Thread(store, urls, blog, post)


def at(minutes: float) -> datetime:
    """A time ``minutes`` after the post was published."""
    return POSTED + timedelta(minutes=minutes)


def readers_app(ctx: BridgeContext) -> web.Application:
    """The bridge's web routes (pages, collections, comment feeds) on a test context."""
    app = web.Application()
    app[CONTEXT] = ctx
    app.add_routes(ap_routes.routes)
    app.add_routes(backfeed_routes.routes)
    app.add_routes(post_collections.routes)
    app.add_routes(pages.routes)
    return app
