"""The blog's own comments: WordPress REST JSON and comment feeds → BlogComment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.backfeed.blog_comments import (
    BlogComment,
    links_in,
    parse_comment_feed,
    parse_rest_comments,
    wordpress_comment_id,
)
from bridge.errors import FeedParseError

BRIDGE_PAGE = "https://bridge.example/users/talkabout/posts/0123456789abcdef0123/comments/abcdef0123456789abcd"

REST = [
    {
        "id": 4711,
        "post": 1234,
        "parent": 4710,
        "author": 1,
        "author_name": "Kai &amp; Co",
        "author_url": "https://www.talkabout.de/",
        "date": "2010-03-02T11:05:00",
        "date_gmt": "2010-03-02T10:05:00",
        "content": {
            "rendered": '<p>Jawoll! Danke! <a href="' + BRIDGE_PAGE + '">dein Kommentar</a></p>'
            '<script>alert(1)</script><p onclick="x()">Gru&szlig;</p>'
        },
        "link": "https://www.talkabout.de/ein-pladoyer/#comment-4711",
        "status": "approved",
        "type": "comment",
        "meta": {"feedfed_object_id": "https://social.example/notes/1", "other": ["", 3]},
    },
    {
        "id": 4712,
        "post": 1234,
        "parent": 0,
        "author_name": "",
        "author_url": "javascript:alert(1)",
        "date_gmt": "2010-03-03T09:00:00",
        "content": {"rendered": "<p>top level</p>"},
        "link": "https://www.talkabout.de/ein-pladoyer/#comment-4712",
        "status": "hold",
        "type": "comment",
        "meta": [],
    },
    {"id": "not a number", "content": {"rendered": "x"}},
    "garbage",
]


def test_rest_comment_fields() -> None:
    first, second = parse_rest_comments(REST, base_url="https://www.talkabout.de/")
    assert first.id == "4711"
    assert first.post == "1234"
    assert first.parent == "4710"
    assert first.author_name == "Kai & Co"
    assert first.author_url == "https://www.talkabout.de/"
    assert first.published == datetime(2010, 3, 2, 10, 5, tzinfo=UTC)
    assert first.url == "https://www.talkabout.de/ein-pladoyer/#comment-4711"
    assert "Jawoll! Danke!" in first.content_html
    assert "<script" not in first.content_html and "onclick" not in first.content_html
    assert "Gruß" in first.content_html
    assert first.links == (BRIDGE_PAGE,)
    assert first.meta == ("https://social.example/notes/1",)
    assert first.is_visible
    assert second.parent is None  # 0 is WordPress' "no parent"
    assert second.author_name == "Anonymous"
    assert second.author_url is None  # only http(s) author URLs are kept
    assert second.meta == ()
    assert not second.is_visible  # held for moderation on the blog


def test_rest_answer_must_be_an_array() -> None:
    with pytest.raises(FeedParseError):
        parse_rest_comments({"code": "rest_forbidden"}, base_url="https://b.example/")


def test_content_hash_changes_with_the_text_only() -> None:
    (first,) = parse_rest_comments(REST[:1], base_url="https://b.example/")
    edited = BlogComment(**{**first.__dict__, "content_html": "<p>Jawoll! Danke sehr!</p>"})
    moved = BlogComment(**{**first.__dict__, "published": datetime(2011, 1, 1, tzinfo=UTC)})
    assert edited.content_hash() != first.content_hash()
    assert moved.content_hash() == first.content_hash()


ATOM = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
  <title>Kommentare zu: Ein Pl\xc3\xa4doyer</title>
  <id>http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/feed/atom/</id>
  <updated>2010-03-02T10:05:00Z</updated>
  <entry>
    <title>Von: Kai</title>
    <link rel="alternate" href="http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/#comment-4711"/>
    <author><name>Kai</name><uri>http://www.talkabout.de</uri></author>
    <id>http://www.talkabout.de/?p=1234#comment-4711</id>
    <published>2010-03-02T10:05:00Z</published>
    <updated>2010-03-02T12:00:00Z</updated>
    <thr:in-reply-to ref="http://www.talkabout.de/?p=1234#comment-4710"
      href="http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/#comment-4710"/>
    <content type="html">&lt;p&gt;Jawoll! Danke!&lt;/p&gt;
      &lt;img src=x onerror=alert(1)&gt;</content>
  </entry>
</feed>
"""

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
  xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Kommentare zu: Ein Pl\xc3\xa4doyer</title>
  <link>http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/</link>
  <item>
    <title>Von: Maurice</title>
    <link>http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/#comment-4710</link>
    <dc:creator>Maurice Morell</dc:creator>
    <pubDate>Tue, 02 Mar 2010 09:00:00 +0000</pubDate>
    <guid isPermaLink="false">http://www.talkabout.de/?p=1234#comment-4710</guid>
    <description>Sehr gut</description>
    <content:encoded><![CDATA[<p>Sehr <a href="/relativ">gut</a></p>]]></content:encoded>
  </item>
</channel>
</rss>
"""


def test_atom_comment_feed_threading() -> None:
    (comment,) = parse_comment_feed(ATOM, url="http://www.talkabout.de/x/feed/atom/")
    assert comment.id == "http://www.talkabout.de/?p=1234#comment-4711"
    assert comment.post == "http://www.talkabout.de/?p=1234"
    assert comment.parent == "http://www.talkabout.de/?p=1234#comment-4710"
    assert wordpress_comment_id(comment.parent) == "4710"
    assert comment.author_name == "Kai"
    assert comment.author_url == "http://www.talkabout.de"
    assert comment.published == datetime(2010, 3, 2, 10, 5, tzinfo=UTC)
    assert comment.modified == datetime(2010, 3, 2, 12, 0, tzinfo=UTC)
    assert "Jawoll! Danke!" in comment.content_html
    assert "onerror" not in comment.content_html and "<img" not in comment.content_html


def test_rss_comment_feed() -> None:
    (comment,) = parse_comment_feed(RSS, url="http://www.talkabout.de/x/feed/")
    assert comment.id == "http://www.talkabout.de/?p=1234#comment-4710"
    assert comment.parent is None  # RSS comment feeds do not say what a comment answers
    assert comment.author_name == "Maurice Morell"
    assert comment.published == datetime(2010, 3, 2, 9, 0, tzinfo=UTC)
    assert comment.url == "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/#comment-4710"
    # relative links resolve against the comment's own URL
    assert comment.links == ("http://www.talkabout.de/relativ",)


def test_not_a_feed() -> None:
    with pytest.raises(FeedParseError):
        parse_comment_feed(b"\x00\x01 nothing", url="http://b.example/feed/")


def test_links_in() -> None:
    markup = '<a href="https://a.example/1">a</a><a href="mailto:x@y">m</a><a href="https://a.example/1">again</a>'
    assert links_in(markup) == ("https://a.example/1",)
    assert wordpress_comment_id("https://b/?p=1") is None
