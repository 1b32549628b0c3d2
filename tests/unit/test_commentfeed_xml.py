"""Comment feeds stay valid XML whatever commenters send (pure: records in, bytes out).

Each feed is parsed twice: by xml.etree (a strict XML parser: any invalid character or
broken markup raises) and by feedparser (which flags anything it had to recover from as
``bozo``).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest

from bridge.backfeed.commentfeeds import (
    THREAD_NS,
    CommentFeed,
    FeedKind,
    PostRef,
    build_feed,
    comment_item,
    entity_tag,
    feed_updated,
    http_date,
    is_not_modified,
    items_for,
)
from bridge.backfeed.sanitize import isolate
from bridge.store.roles_backfeed import Comment, Person, item_slug

ATOM = "{http://www.w3.org/2005/Atom}"
POST = PostRef("https://bridge.example/users/t/posts/abc", "Ein Plädoyer", "http://blog.example/p/")
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
KINDS: tuple[FeedKind, ...] = ("rss", "atom")

CONTROLS = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r") + "\x7f\x85\x9f"
HOSTILE_NAME = f"Mal\u202elory{CONTROLS} ]]> <b>&amp; \ud800 \ufffe"
HOSTILE_HTML = (
    f"<p>cdata end ]]> here, controls {CONTROLS}, right-to-left \u200f\u202b\u2067, "
    "a lone surrogate \udc00, <![CDATA[ inner ]]>, &#1; &#xFFFE; &#0;</p>"
    "<script>alert(1)</script><p onclick='x()'>ok</p>"
)


def comment(number: int, **fields: Any) -> Comment:
    object_id = fields.pop("object_id", f"https://m.example/notes/{number}")
    values: dict[str, Any] = {
        "id": number,
        "slug": item_slug(object_id),
        "blog_id": 1,
        "entry_id": "e1",
        "object_id": object_id,
        "parent_id": POST.object_id,
        "author": Person(
            "https://m.example/users/a", f"Author {number}", "@a@m.example", "https://m.example/@a"
        ),
        "content_html": f"<p>comment {number}</p>",
        "published": T0 + timedelta(minutes=number),
        "state": "published",
        "summary": None,
        "url": None,
        "language": None,
        "score": 0.0,
        "reasons": (),
        "origin": "fediverse",
        "source": {},
        "received_at": T0 + timedelta(minutes=number),
    }
    values.update(fields)
    return Comment(**values)


def feed_of(comments: list[Comment], *, blog_wide: bool = False) -> CommentFeed:
    pages = {c.object_id: f"https://bridge.example/c/{c.slug}" for c in comments}
    return CommentFeed(
        self_url="https://bridge.example/@t/abc/comments.rss",
        alternate_url="https://bridge.example/@t/abc/comments.atom",
        title="Comments on: Ein Plädoyer",
        home_url="https://bridge.example/@t/abc",
        description="Replies",
        language="de",
        updated=feed_updated([c.received_at for c in comments], T0),
        items=items_for(comments, {"e1": POST}, pages, blog_wide=blog_wide),
    )


def parse_both(body: bytes) -> tuple[ET.Element, Any]:
    root = ET.fromstring(body)
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return root, parsed


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_comment_gives_valid_xml(kind: FeedKind) -> None:
    hostile = comment(
        1,
        content_html=HOSTILE_HTML,
        author=Person(
            "https://evil.example/u\x00x",
            HOSTILE_NAME,
            "@m\x01@evil",
            "https://evil.example/@m\x02",
        ),
        object_id="https://evil.example/notes/1\x0b]]>",
    )
    body = build_feed(feed_of([hostile]), kind)
    _, parsed = parse_both(body)
    entry = parsed.entries[0]
    content = entry.content[0].value if kind == "atom" else entry.summary
    assert "cdata end ]]&gt; here" in content  # text in the HTML: not the end of anything
    assert "<script" not in content and "onclick" not in content and "alert" not in content
    assert "\u200f" in content  # a right-to-left mark inside the text is text
    for character in CONTROLS + "\ud800\udc00\ufffe":
        assert character not in body.decode("utf-8", "surrogatepass")
    # The name is plain text without directional overrides, isolated inside the title.
    assert entry.author == "Mallory ]]> &"
    assert entry.title == f"By: {isolate(entry.author)}"


def test_hostile_name_is_plain_and_whole() -> None:
    hostile = comment(1, author=Person("https://e/u", HOSTILE_NAME, "@m@e", "https://e/@m"))
    item = comment_item(hostile, POST, "https://b/c", parents={}, blog_wide=False)
    # Markup in a name is no markup: plain_name reads its text, "<b>" goes.
    assert item.author_name == "Mallory ]]> &"
    assert item.title == f"By: {isolate('Mallory ]]> &')}"


@pytest.mark.parametrize("kind", KINDS)
def test_megabyte_comment(kind: FeedKind) -> None:
    paragraph = "<p>" + ("Teilhaben lassen ]]> & teilnehmen lassen. " * 40) + "</p>"
    huge = paragraph * (1024 * 1024 // len(paragraph) + 1)
    assert len(huge) > 1024 * 1024
    started = time.perf_counter()
    body = build_feed(feed_of([comment(1, content_html=huge), comment(2)]), kind)
    elapsed = time.perf_counter() - started
    _, parsed = parse_both(body)
    assert len(body) > 1024 * 1024
    assert [e.id for e in parsed.entries] == [
        "https://m.example/notes/1",
        "https://m.example/notes/2",
    ]
    assert elapsed < 2.0


@pytest.mark.parametrize("kind", KINDS)
def test_threading_and_order(kind: FeedKind) -> None:
    first = comment(1)
    reply = comment(2, parent_id=first.object_id)
    stray = comment(3, parent_id="https://elsewhere.example/notes/9")
    newest_first = [stray, reply, first]
    body = build_feed(feed_of(newest_first), kind)
    root, parsed = parse_both(body)
    assert [e.id for e in parsed.entries] == [c.object_id for c in newest_first]
    replies = root.iter(f"{{{THREAD_NS}}}in-reply-to")
    got = [(el.get("ref"), el.get("href"), el.get("type")) for el in replies]
    assert got == [
        ("https://elsewhere.example/notes/9", "https://elsewhere.example/notes/9", "text/html"),
        (first.object_id, f"https://bridge.example/c/{first.slug}", "text/html"),
        (POST.object_id, POST.url, "text/html"),
    ]
    assert parsed.entries[1]["thr_in-reply-to"]["ref"] == first.object_id


def test_atom_shape() -> None:
    body = build_feed(feed_of([comment(1, updated=T0 + timedelta(hours=5))]), "atom")
    root = ET.fromstring(body)
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}id") == "https://bridge.example/@t/abc/comments.rss"
    links = {(el.get("rel"), el.get("type")): el.get("href") for el in root.findall(f"{ATOM}link")}
    assert links[("self", "application/atom+xml")].endswith("comments.rss")
    assert links[("alternate", "text/html")] == "https://bridge.example/@t/abc"
    assert links[("alternate", "application/rss+xml")].endswith("comments.atom")
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}published") == "2026-01-01T12:01:00+00:00"
    assert entry.findtext(f"{ATOM}updated") == "2026-01-01T17:00:00+00:00"
    assert entry.findtext(f"{ATOM}author/{ATOM}uri") == "https://m.example/@a"
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"


def test_rss_shape() -> None:
    body = build_feed(feed_of([comment(1)], blog_wide=True), "rss")
    root = ET.fromstring(body)
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("link") == "https://bridge.example/@t/abc"
    assert channel.findtext("lastBuildDate") == "Thu, 01 Jan 2026 12:01:00 +0000"
    item = channel.find("item")
    assert item is not None
    assert item.findtext("{http://purl.org/dc/elements/1.1/}creator") == "Author 1"
    assert (
        item.findtext("title") == f"Comment on „{isolate('Ein Plädoyer')}“ by {isolate('Author 1')}"
    )
    assert item.findtext("guid") == "https://m.example/notes/1"
    assert item.findtext("pubDate") == "Thu, 01 Jan 2026 12:01:00 +0000"


def test_the_same_comments_give_the_same_bytes() -> None:
    comments = [comment(2), comment(1)]
    assert build_feed(feed_of(comments), "rss") == build_feed(feed_of(comments), "rss")
    assert build_feed(feed_of(comments), "rss") != build_feed(feed_of(comments[:1]), "rss")


def test_conditional_requests() -> None:
    etag = entity_tag(b"feed")
    modified = datetime(2026, 1, 1, 12, 0, 30, 500, tzinfo=UTC)
    assert is_not_modified(etag, None, etag, modified)
    assert is_not_modified(f'"other", W/{etag}', None, etag, modified)
    assert is_not_modified("*", None, etag, modified)
    assert not is_not_modified('"other"', None, etag, modified)
    # If-None-Match decides alone when present.
    assert not is_not_modified('"other"', http_date(modified), etag, modified)
    assert is_not_modified(None, http_date(modified), etag, modified)
    assert is_not_modified(None, http_date(modified + timedelta(hours=1)), etag, modified)
    assert not is_not_modified(None, http_date(modified - timedelta(seconds=1)), etag, modified)
    assert not is_not_modified(None, "yesterday", etag, modified)
    assert not is_not_modified(None, None, etag, modified)
    assert http_date(modified) == "Thu, 01 Jan 2026 12:00:30 GMT"
