"""The dialog: the author's answer on the blog goes back to the fediverse (talkabout row 5).

A fake WordPress REST endpoint (a real aiohttp server on 127.0.0.1) lists the post's
comments; the bridge reads them, federates the answer to Maurice's (alice's) reply as a Note
delivered to her instance (checked by the instance's own signature verifier), threads it,
follows edits and deletions, and never echoes the comment it pushed itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.backfeed.dialog import poll_dialog
from bridge.store.base import BlogSettings
from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, running_bridge
from tests.fakes.note_instances import NoteWorld, add_post, create, note, note_fediverse
from tests.fakes.resolver import MappingResolver


class FakeWordPress:
    """``GET /wp-json/wp/v2/comments?post=ID``: the comments in ``comments``, as WordPress
    lists them (approved only, oldest first when asked)."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/wp-json/wp/v2/comments", self.list)
        return app

    async def list(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.query))
        post = int(request.query["post"])
        found = [c for c in self.comments if c["post"] == post and c["status"] == "approved"]
        return web.json_response(found, headers={"X-WP-TotalPages": "1"})

    def add(self, comment_id: int, html: str, *, parent: int = 0, **extra: Any) -> dict[str, Any]:
        comment = {
            "id": comment_id,
            "post": 1234,
            "parent": parent,
            "author_name": "Kai",
            "author_url": "http://www.talkabout.de/",
            "date_gmt": f"2010-02-22T10:{comment_id:02d}:00",
            "content": {"rendered": html},
            "link": f"http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/#comment-{comment_id}",
            "status": "approved",
            "type": "comment",
            "meta": [],
            **extra,
        }
        self.comments.append(comment)
        return comment


@pytest.fixture
async def wordpress(serve: Any) -> tuple[FakeWordPress, str]:
    blog = FakeWordPress()
    return blog, await serve(blog.app())


@pytest.fixture
async def world(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[NoteWorld]:
    async with note_fediverse(resolver, clock) as fediverse:
        yield fediverse


@pytest.fixture
async def bridge(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
    wordpress: tuple[FakeWordPress, str],
) -> AsyncIterator[InboxBridge]:
    blogs = {"talkabout": BlogSettings(sink="wordpress", wordpress_url=wordpress[1])}
    async with running_bridge(sqlite_store, http, resolver, clock, blogs=blogs) as running:
        yield running


async def test_the_authors_answer_reaches_maurice_threaded_edited_and_deleted(
    bridge: InboxBridge, world: NoteWorld, wordpress: tuple[FakeWordPress, str], clock: FakeClock
) -> None:
    blog_side, _ = wordpress
    _, article = await add_post(bridge)
    maurice = world.alice
    first = note(maurice, "<p>Toller Beitrag, siehe meinen Link.</p>", in_reply_to=article)
    await world.send(maurice, bridge, create(maurice, first))
    assert (await bridge.store.get_comment(first["id"])) is not None
    # The WordPress sink pushed Maurice's reply: the blog carries it, marked with its Note id.
    blog_side.add(
        10,
        "<p>Toller Beitrag, siehe meinen Link.</p>",
        author_name="Alice",
        author_url=maurice.id,
        meta={"feedfed_object_id": first["id"]},
    )
    blog_side.add(11, "<p>Jawoll! Danke!</p>", parent=10)
    blog = bridge.blogs["talkabout"]

    report = await poll_dialog(bridge.ctx, blog)
    assert (report.published, report.own) == (["11"], 1)  # the pushed comment is not echoed
    assert blog_side.requests[0]["post"] == "1234"
    answers = [
        c
        for c in await bridge.store.list_comments(blog.id, newest_first=False)
        if c.origin == "blog"
    ]
    assert len(answers) == 1
    answer = answers[0]
    assert answer.parent_id == first["id"]
    assert "Jawoll! Danke!" in answer.content_html

    await bridge.deliver()
    creates = world.mastodon.activities_of_type("Create")
    assert len(creates) == 1
    received = next(r for r in world.mastodon.deliveries() if r.document["type"] == "Create")
    assert received.verdict.ok, received.verdict.reason
    sent = creates[0]["object"]
    assert sent["id"] == answer.object_id
    assert sent["inReplyTo"] == first["id"]
    assert sent["attributedTo"] == bridge.actor()
    assert maurice.id in sent["cc"]
    assert {"type": "Mention", "href": maurice.id, "name": "@alice@mastodon.test"} in sent["tag"]
    assert "@<span>alice</span>" in sent["content"] and "Jawoll! Danke!" in sent["content"]
    # Servers fetch a reply's parent: the Note answers at its id, signed or not.
    status, fetched = await world.mastodon.fetch(answer.object_id)
    assert status == 200, fetched
    assert fetched["id"] == answer.object_id and fetched["inReplyTo"] == first["id"]
    assert "blog-comment" not in fetched

    # A second poll changes nothing: nothing is federated twice.
    again = await poll_dialog(bridge.ctx, blog)
    assert (again.published, again.updated, again.deleted) == ([], [], [])

    # The author edits the answer on the blog: an Update reaches Maurice.
    clock.advance(60)
    blog_side.comments[1]["content"] = {"rendered": "<p>Jawoll! Danke sehr!</p>"}
    edited = await poll_dialog(bridge.ctx, blog)
    assert edited.updated == ["11"]
    await bridge.deliver()
    (update,) = world.mastodon.activities_of_type("Update")
    assert update["object"]["id"] == answer.object_id
    assert "Danke sehr!" in update["object"]["content"]

    # ... and deletes it: a Delete with its Tombstone.
    del blog_side.comments[1]
    gone = await poll_dialog(bridge.ctx, blog)
    assert gone.deleted == ["11"]
    await bridge.deliver()
    (delete,) = world.mastodon.activities_of_type("Delete")
    assert delete["object"]["id"] == answer.object_id
    deleted = await bridge.store.get_comment(answer.object_id)
    assert deleted is not None and deleted.state == "deleted"


async def test_a_blog_comment_answering_nobody_is_a_reply_to_the_article(
    bridge: InboxBridge, world: NoteWorld, wordpress: tuple[FakeWordPress, str]
) -> None:
    blog_side, _ = wordpress
    _, article = await add_post(bridge)
    blog_side.add(12, "<p>Schöner Text!</p>", author_name="Leserin")
    blog = bridge.blogs["talkabout"]
    report = await poll_dialog(bridge.ctx, blog)
    assert report.published == ["12"]
    (stored,) = [c for c in await bridge.store.list_comments(blog.id) if c.origin == "blog"]
    assert stored.parent_id == article
    assert stored.author.name == "Leserin"
    assert stored.source["tag"] == []
    # Nobody to send it to directly: only the (empty) followers fan-out is queued.
    assert await bridge.queued("deliver") == []
    assert len(await bridge.queued("fanout")) == 1
