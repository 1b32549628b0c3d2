"""One contract for every sink, run against the fake WordPress blog.

Each sink does what its capabilities declare (publish, thread, update, withdraw, linkbacks),
is idempotent where a push job may repeat a step after a lost answer, refuses targets off the
blog's hosts, and fails in one of the two kinds: down, refused or rate limited → RetryLater
(429 with the blog's Retry-After), wrong password → Rejected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count

import aiohttp
import pytest
from aiohttp import web

from bridge.errors import Rejected, RetryLater
from bridge.sinks.base import Sink, SinkComment, SinkLinkback
from bridge.sinks.factory import SinkSettings, build_sink
from tests.fakes.wordpress_blog import APP_PASSWORD, USER, FakeWordPressBlog, SourcePages, WPComment

Serve = Callable[[web.Application], Awaitable[str]]
POST_ID = 1234
SLUG = "ein-pladoyer-fur-die-mitteilung"
WHEN = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
KINDS = ["wordpress", "wordpress+comments", "pingback", "webmention", "feed"]
_serial = count(1)


@dataclass
class Rig:
    """A sink, its blog and the bridge's pages."""

    kind: str
    sink: Sink
    blog: FakeWordPressBlog
    pages: SourcePages

    @property
    def post_url(self) -> str:
        return self.blog.post_link(self.blog.posts[POST_ID])

    def comment(
        self, author: str = "Maurice", text: str = "Sehr gut!", **kw: object
    ) -> SinkComment:
        n = next(_serial)
        page = self.pages.linking(
            f"/comments/{n}", f"{author} kommentiert", self.post_url, f"{author}: {text}"
        )
        fields: dict[str, object] = {
            "object_id": f"https://social.test/notes/{n}",
            "post_url": self.post_url,
            "post_guid": f"{self.blog.url}/?p={POST_ID}",
            "author_name": author,
            "author_url": f"https://social.test/@{author.lower()}",
            "content_html": f"<p>{text}</p>",
            "published": WHEN,
            "page_url": page,
            "author_avatar": f"https://social.test/avatars/{author.lower()}.png",
        }
        fields.update(kw)
        return SinkComment(**fields)  # type: ignore[arg-type]

    def linkback(self, actor: str = "Jens Nirschl", kind: str = "boost") -> SinkLinkback:
        n = next(_serial)
        title = f"{actor} hat „Ein Plädoyer“ geteilt"
        source = self.pages.linking(f"/linkbacks/{n}", title, self.post_url)
        return SinkLinkback(
            kind=kind,  # type: ignore[arg-type]
            activity_id=f"https://social.test/activities/{n}",
            source_url=source,
            target_url=self.post_url,
            title=title,
            actor_name=actor,
            actor_url=f"https://social.test/@{actor.split()[0].lower()}",
            published=WHEN,
        )

    def items(self) -> list[WPComment]:
        """Everything on the post that is not in the trash, of any type."""
        return [c for c in self.blog.comments.values() if c.status != "trash"]


@pytest.fixture(params=KINDS)
async def rig(
    request: pytest.FixtureRequest, serve: Serve, http: aiohttp.ClientSession
) -> AsyncIterator[Rig]:
    kind = request.param
    blog = FakeWordPressBlog(http, pingback=kind != "webmention", webmention=kind == "webmention")
    await blog.start()
    blog.add_post(POST_ID, SLUG, "Ein Plädoyer für die Mitteilung")
    pages = SourcePages()
    await pages.start(serve)
    settings = SinkSettings(
        kind=kind.split("+")[0],  # type: ignore[arg-type]
        site_urls=(blog.url + "/",),
        wordpress_api_url=f"{blog.url}/wp-json",
        wordpress_user=USER,
        wordpress_application_password=APP_PASSWORD,
        linkbacks_as_comments=kind.endswith("+comments"),
    )
    sink = build_sink(settings, http, user_agent="feedfed-test", timeout=2.0, clock=lambda: WHEN)
    yield Rig(kind, sink, blog, pages)
    await blog.stop()


def only(items: list[WPComment]) -> WPComment:
    assert len(items) == 1, items
    return items[0]


async def test_publish_reaches_the_post_once_even_when_repeated(rig: Rig) -> None:
    comment = rig.comment()
    first = await rig.sink.publish_comment(comment)
    if not rig.sink.capabilities.comments:
        assert rig.blog.requests == [] and first.note == "feed only"
        return
    again = await rig.sink.publish_comment(comment)
    item = only(rig.items())
    assert item.post == POST_ID
    assert first.remote_id == again.remote_id
    if rig.sink.name == "wordpress":
        assert first.remote_id == str(item.id)
        assert (item.type, item.author_name, item.content) == (
            "comment",
            "Maurice",
            "<p>Sehr gut!</p>",
        )
        assert item.author_url == "https://social.test/@maurice"
        assert item.date_gmt == "2026-11-28T10:30:00"
        assert item.meta["feedfed_object_id"] == comment.object_id
        assert item.meta["feedfed_avatar"] == comment.author_avatar
    else:
        assert item.author_url == comment.page_url
        assert item.author_name == "Maurice kommentiert"


async def test_threads_under_the_parent_where_threading(rig: Rig) -> None:
    if not rig.sink.capabilities.threading:
        pytest.skip(f"{rig.kind} does not thread")
    parent = await rig.sink.publish_comment(rig.comment("Maurice", "Frage?"))
    assert parent.remote_id is not None
    child = await rig.sink.publish_comment(
        rig.comment("Mirko", "Antwort.", parent_remote_id=parent.remote_id)
    )
    assert child.remote_id is not None
    assert rig.blog.comments[int(child.remote_id)].parent == int(parent.remote_id)


async def test_update_changes_the_same_item(rig: Rig) -> None:
    if not rig.sink.capabilities.update:
        pytest.skip(f"{rig.kind} cannot update")
    comment = rig.comment(text="Erste Fassung")
    result = await rig.sink.publish_comment(comment)
    assert result.remote_id is not None
    edited = rig.comment(
        text="Zweite Fassung", page_url=comment.page_url, object_id=comment.object_id
    )
    path = comment.page_url.removeprefix(rig.pages.url)
    rig.pages.linking(path, "Maurice kommentiert", rig.post_url, "Maurice: Zweite Fassung")
    updated = await rig.sink.update_comment(result.remote_id, edited)
    item = only(rig.items())
    assert "Zweite Fassung" in item.content
    if rig.sink.name == "wordpress":
        assert updated.remote_id == result.remote_id == str(item.id)


async def test_withdraw_trashes_and_is_idempotent(rig: Rig) -> None:
    if not rig.sink.capabilities.delete:
        pytest.skip(f"{rig.kind} cannot withdraw")
    comment = rig.comment()
    result = await rig.sink.publish_comment(comment)
    assert result.remote_id is not None and len(rig.items()) == 1
    # The bridge's page answers 410 once the comment is gone (what webmention re-sends rely on).
    rig.pages.put(comment.page_url.removeprefix(rig.pages.url), "", status=410)
    await rig.sink.withdraw_comment(result.remote_id)
    assert rig.items() == []
    await rig.sink.withdraw_comment(result.remote_id)
    assert rig.items() == []


async def test_linkback_is_recorded_once_with_the_actor(rig: Rig) -> None:
    linkback = rig.linkback()
    if not rig.sink.capabilities.linkbacks:
        result = await rig.sink.send_linkback(linkback)
        assert rig.blog.requests == [] and result.note == "feed only"
        return
    await rig.sink.send_linkback(linkback)
    again = await rig.sink.send_linkback(linkback)
    item = only(rig.items())
    if rig.kind == "wordpress+comments":
        assert (item.type, item.author_name) == ("comment", "Jens Nirschl")
        assert item.meta["feedfed_kind"] == "repost"
        assert again.remote_id == str(item.id)
    else:
        assert item.type == ("webmention" if rig.kind == "webmention" else "pingback")
        assert item.author_name == linkback.title
        assert item.author_url == linkback.source_url


async def test_withdrawn_linkback_leaves_the_post_where_delete(rig: Rig) -> None:
    if not (rig.sink.capabilities.linkbacks and rig.sink.capabilities.delete):
        pytest.skip(f"{rig.kind} cannot withdraw linkbacks")
    linkback = rig.linkback(kind="like")
    result = await rig.sink.send_linkback(linkback)
    assert len(rig.items()) == 1
    rig.pages.put(linkback.source_url.removeprefix(rig.pages.url), "", status=410)
    await rig.sink.withdraw_linkback(linkback, result.remote_id)
    assert rig.items() == []


async def test_targets_off_the_blog_are_refused_without_a_request(rig: Rig) -> None:
    if rig.sink.name == "feed":
        pytest.skip("the feed-only sink sends nothing anywhere")
    linkback = rig.linkback()
    foreign = SinkLinkback(**{**linkback.__dict__, "target_url": "http://victim.test/post/"})
    with pytest.raises(Rejected, match="own hosts"):
        await rig.sink.send_linkback(foreign)
    comment = rig.comment(post_url="http://victim.test/post/", post_guid="http://victim.test/p")
    with pytest.raises(Rejected, match="own hosts"):
        await rig.sink.publish_comment(comment)
    assert rig.blog.requests == []


async def test_a_blog_that_is_down_means_retry_later_then_everything_once(rig: Rig) -> None:
    if rig.sink.name == "feed":
        pytest.skip("nothing to push")
    comment = rig.comment()
    rig.blog.down = True
    with pytest.raises(RetryLater) as caught:
        await rig.sink.publish_comment(comment)
    assert caught.value.status == 503
    rig.blog.down = False
    await rig.blog.stop()
    with pytest.raises(RetryLater):
        await rig.sink.publish_comment(comment)
    await rig.blog.start()
    await rig.sink.publish_comment(comment)
    await rig.sink.publish_comment(comment)
    assert len(rig.items()) == 1


async def test_rate_limit_is_retry_later_with_the_blogs_wish(rig: Rig) -> None:
    if rig.sink.name == "feed":
        pytest.skip("nothing to push")
    rig.blog.rate_limited = 1
    with pytest.raises(RetryLater) as caught:
        await rig.sink.publish_comment(rig.comment())
    assert (caught.value.status, caught.value.retry_after) == (429, 120.0)
    await rig.sink.publish_comment(rig.comment())
    assert len(rig.items()) == 1


async def test_wrong_password_is_rejected(rig: Rig) -> None:
    if rig.sink.name != "wordpress":
        pytest.skip("only the REST API authenticates")
    rig.blog.password = "zzzz zzzz zzzz zzzz zzzz zzzz"
    with pytest.raises(Rejected) as caught:
        await rig.sink.publish_comment(rig.comment())
    assert caught.value.status == 401
    assert "incorrect_password" in str(caught.value)
    assert rig.items() == []
