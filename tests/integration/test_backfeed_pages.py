"""What readers see, over HTTP: the post page, comment and linkback pages, the collections.

A real SQLite store seeded through the CommentStore/ReactionStore roles, the bridge's
routes on 127.0.0.1; pages are read with the stdlib HTML parser, as a microformats parser
(or WordPress checking a pingback's source) reads them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

from bridge.context import BridgeContext
from tests.conftest import FakeClock
from tests.fakes.seed_backfeed import (
    POST_URL,
    Thread,
    at,
    person,
    readers_app,
    talkabout_thread,
)

Serve = Callable[[web.Application], Awaitable[str]]
AS_JSON = "application/activity+json"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
JENS = person("mastodon.example", "jensnirschl", "Jens Nirschl")
SEBASTIAN = person("mastodon.example", "sebastiankeil", "Sebastian Keil")
TIMO = person("gts.example", "timo", "Timo", avatar=False)
ARABIC = person("rtl.example", "kareem", "\u202eكريم\u202c", avatar=False)


class Page(HTMLParser):
    """Elements with their attributes, the ``<title>`` text, and where things start."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], int]] = []
        self.title = ""
        self._in_title = False
        self._offsets = [0]
        for line in text.splitlines(keepends=True):
            self._offsets.append(self._offsets[-1] + len(line.encode("utf-8")))
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line, _ = self.getpos()
        self.elements.append((tag, {k: v or "" for k, v in attrs}, self._offsets[line - 1]))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def having(self, css_class: str) -> list[dict[str, str]]:
        return [a for _, a, _ in self.elements if css_class in a.get("class", "").split()]

    def offset_of(self, css_class: str) -> int:
        return next(o for _, a, o in self.elements if css_class in a.get("class", "").split())


async def setup(ctx: BridgeContext, clock: FakeClock, serve: Serve) -> tuple[Thread, str]:
    thread = await talkabout_thread(ctx.store, ctx.urls, clock())
    return thread, await serve(readers_app(ctx))


async def get(http: aiohttp.ClientSession, url: str, accept: str = BROWSER) -> tuple[int, str, str]:
    async with http.get(url, headers={"Accept": accept}, allow_redirects=False) as response:
        return response.status, await response.text(), response.headers.get("Location", "")


def local(ctx: BridgeContext, base: str, url: str) -> str:
    return base + url.removeprefix(ctx.urls.base)


def bare(text: str) -> str:
    return text.replace("\u2068", "").replace("\u2069", "").strip()


async def test_comment_page(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    first = await thread.comment(
        "https://mastodon.example/notes/1",
        SEBASTIAN,
        '<p>Siehe <a href="https://example.org/x">hier</a></p><script>alert(1)</script>'
        '<p onclick="steal()">Gruß</p>',
        published=at(10),
    )
    status, text, _ = await get(http, base + thread.page("comments", first.slug))
    assert status == 200
    page = Page(text)
    assert bare(page.title) == "Sebastian Keil commented on „Ein Plädoyer für die Mitteilung…“"
    assert page.title.startswith("\u2068Sebastian Keil\u2069")
    # The exact URL of the blog post, as an in-reply-to, before anything the commenter wrote.
    targets = page.having("u-in-reply-to")
    assert targets[0]["href"] == POST_URL
    assert page.offset_of("u-in-reply-to") < page.offset_of("e-content") < 150 * 1024
    assert page.having("h-entry") and page.having("dt-published")
    card = page.having("p-author")[0]
    assert "h-card" in card["class"]
    assert page.having("p-name")[-1]["href"] == "https://mastodon.example/@sebastiankeil"
    assert page.having("u-photo")[0]["src"] == SEBASTIAN.avatar_url
    assert '<a href="https://example.org/x" rel="nofollow noopener noreferrer ugc">hier</a>' in text
    assert "<script" not in text.split("</head>")[1] and "onclick" not in text
    assert "alert(1)" not in text

    # A nested reply names its parent's page as a second in-reply-to.
    reply = await thread.comment(
        "https://gts.example/notes/2",
        TIMO,
        "<p>Genau.</p>",
        published=at(20),
        parent=first.object_id,
    )
    status, text, _ = await get(http, base + thread.page("comments", reply.slug))
    assert status == 200
    hrefs = [a["href"] for a in Page(text).having("u-in-reply-to")]
    assert hrefs == [
        POST_URL,
        ctx.urls.comment_page("talkabout", thread.post.slug, first.slug),
    ]


async def test_comment_states(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    held = await thread.comment(
        "https://spam.example/notes/1", TIMO, "<p>cheap</p>", published=at(1), state="held"
    )
    live = await thread.comment(
        "https://mastodon.example/notes/2", SEBASTIAN, "<p>ok</p>", published=at(2)
    )
    assert (await get(http, base + thread.page("comments", held.slug)))[0] == 404
    assert (await get(http, base + thread.page("comments", "0" * 20)))[0] == 404
    await ctx.store.delete_comment(live.object_id, clock())
    status, text, _ = await get(http, base + thread.page("comments", live.slug))
    assert status == 410 and "ok" not in Page(text).title


async def test_linkback_pages(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    boost = await thread.react("boost", "https://mastodon.example/a/1", JENS, published=at(5))
    like = await thread.react("like", "https://gts.example/a/2", TIMO, published=at(6))
    mention = await thread.react(
        "mention",
        "https://rtl.example/notes/3",
        ARABIC,
        published=at(7),
        content_html=f'<p>Lest das: <a href="{POST_URL}">{POST_URL}</a></p>',
    )
    expected = {
        boost.slug: ("Jens Nirschl boosted", "u-repost-of"),
        like.slug: ("Timo liked", "u-like-of"),
        mention.slug: ("كريم mentioned", "u-mention-of"),
    }
    for slug, (who, css_class) in expected.items():
        status, text, _ = await get(http, base + thread.page("linkbacks", slug))
        assert status == 200, text
        page = Page(text)
        assert bare(page.title) == f"{who} „Ein Plädoyer für die Mitteilung…“"
        assert page.having(css_class)[0]["href"] == POST_URL
        assert page.offset_of(css_class) < 150 * 1024
        assert page.having("h-entry") and page.having("p-author") and page.having("dt-published")
    # The right-to-left override in the name is gone; the name is isolated instead.
    status, text, _ = await get(http, base + thread.page("linkbacks", mention.slug))
    assert "\u202e" not in text
    assert Page(text).title.startswith("\u2068كريم\u2069 mentioned")

    await ctx.store.withdraw_reaction(boost.activity_id, JENS.actor_id, clock())
    assert (await get(http, base + thread.page("linkbacks", boost.slug)))[0] == 410
    assert (await get(http, base + thread.page("linkbacks", like.slug)))[0] == 200


async def test_post_page(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    first = await thread.comment(
        "https://mastodon.example/notes/1", SEBASTIAN, "<p>Erster</p>", published=at(10)
    )
    await thread.comment(
        "https://gts.example/notes/2",
        TIMO,
        "<p>Antwort</p>",
        published=at(20),
        parent=first.object_id,
    )
    await thread.comment(
        "https://gts.example/notes/3", TIMO, "<p>Versteckt</p>", published=at(25), state="spam"
    )
    for number in range(3):
        actor = person(f"h{number}.example", "fan", f"Fan {number}")
        await thread.react("like", f"https://h{number}.example/likes/1", actor, published=at(30))
    await thread.react("boost", "https://mastodon.example/a/1", JENS, published=at(31))

    page_url = local(ctx, base, ctx.urls.post_page("talkabout", thread.post.slug))
    status, text, _ = await get(http, page_url)
    assert status == 200
    page = Page(text)
    assert page.title.startswith("Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen.")
    assert page.having("u-url")[0]["href"] == POST_URL
    assert "2 comments" in text and "3 likes" in text and "1 boost" in text
    assert "Versteckt" not in text
    comments = page.having("comment")
    assert [c["class"].split()[-1] for c in comments] == ["depth-0", "depth-1"]
    assert text.index("Erster") < text.index("Antwort")
    feeds = {
        a["type"]: a["href"]
        for tag, a, _ in page.elements
        if tag == "link" and a.get("rel") == "alternate"
    }
    assert feeds["application/rss+xml"] == ctx.urls.post_comments_feed(
        "talkabout", thread.post.slug, "rss"
    )
    assert feeds["application/atom+xml"].endswith("/comments.atom")
    faces = [
        a["alt"] for tag, a, _ in page.elements if tag == "img" and "avatar-small" in a["class"]
    ]
    assert {"Fan 0", "Fan 1", "Fan 2", "Jens Nirschl"} <= set(faces)

    # Servers asking for JSON are sent to the object.
    status, _, location = await get(http, page_url, AS_JSON)
    assert (status, location) == (302, thread.object_id)
    # The object id still sends browsers to the blog post.
    status, _, location = await get(http, local(ctx, base, thread.object_id))
    assert (status, location) == (302, POST_URL)

    await ctx.store.mark_entry_deleted(thread.blog.id, thread.post.entry_id, clock())
    assert (await get(http, page_url))[0] == 410
    assert (await get(http, base + thread.page("comments", first.slug)))[0] == 410


async def test_profile_links_post_pages_and_comment_feeds(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    status, text, _ = await get(http, f"{base}/@talkabout")
    assert status == 200
    page = Page(text)
    hrefs = {a.get("href") for _, a, _ in page.elements}
    assert f"{ctx.urls.post_page('talkabout', thread.post.slug)}#comments" in hrefs
    alternates = {
        (a["type"], a["href"])
        for tag, a, _ in page.elements
        if tag == "link" and a.get("rel") == "alternate"
    }
    assert ("application/rss+xml", ctx.urls.blog_comments_feed("talkabout", "rss")) in alternates
    assert ("application/atom+xml", ctx.urls.blog_comments_feed("talkabout", "atom")) in alternates
    assert ctx.urls.blog_comments_feed("talkabout", "rss") in hrefs


async def json_of(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url, headers={"Accept": AS_JSON}) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == AS_JSON
        return await response.json(content_type=None)


async def test_collections(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    size = ctx.config.limits.page_size
    for number in range(size + 2):
        await thread.comment(
            f"https://m.example/notes/{number}", TIMO, f"<p>{number}</p>", published=at(number)
        )
    await thread.comment(
        "https://m.example/notes/held", TIMO, "<p>x</p>", published=at(99), state="held"
    )
    likes = [
        await thread.react(
            "like",
            f"https://h{n}.example/likes/1",
            person(f"h{n}.example", "u", "U"),
            published=at(n),
        )
        for n in range(3)
    ]
    boost = await thread.react("boost", "https://mastodon.example/a/1", JENS, published=at(1))
    await ctx.store.withdraw_reaction(likes[0].activity_id, likes[0].actor.actor_id, clock())

    article = await json_of(http, local(ctx, base, thread.object_id))
    assert article["replies"] == ctx.urls.replies("talkabout", thread.post.slug)
    assert article["likes"] == ctx.urls.likes("talkabout", thread.post.slug)
    assert article["shares"] == ctx.urls.shares("talkabout", thread.post.slug)

    replies = await json_of(http, local(ctx, base, article["replies"]))
    assert replies["type"] == "OrderedCollection"
    assert replies["totalItems"] == size + 2
    first = replies["first"]
    assert first["type"] == "OrderedCollectionPage"
    assert first["partOf"] == article["replies"]
    assert first["orderedItems"][:2] == ["https://m.example/notes/0", "https://m.example/notes/1"]
    assert len(first["orderedItems"]) == size
    second = await json_of(http, local(ctx, base, first["next"]))
    assert second["orderedItems"] == [
        f"https://m.example/notes/{size}",
        f"https://m.example/notes/{size + 1}",
    ]
    assert "next" not in second

    liked = await json_of(http, local(ctx, base, article["likes"]))
    assert liked["totalItems"] == 2
    assert liked["first"]["orderedItems"] == [likes[1].activity_id, likes[2].activity_id]
    shared = await json_of(http, local(ctx, base, article["shares"]))
    assert shared["totalItems"] == 1
    assert shared["first"]["orderedItems"] == [boost.activity_id]

    # Browsers are sent to the post page; a bad page number is refused.
    status, _, location = await get(http, local(ctx, base, article["likes"]))
    assert (status, location) == (302, ctx.urls.post_page("talkabout", thread.post.slug))
    status, _, _ = await get(http, local(ctx, base, article["likes"]) + "?page=0", AS_JSON)
    assert status == 400
