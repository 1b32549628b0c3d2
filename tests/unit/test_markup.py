"""The HTML operations feed parsing relies on: URL resolution, images, text conversion."""

from __future__ import annotations

import pytest

from bridge.entries import Image
from bridge.ingest.markup import (
    clean_text,
    extract_images,
    html_to_text,
    http_url,
    is_http_url,
    resolve_urls,
    text_to_html,
)

BASE = "https://blog.example/2024/05/post/"


def test_resolve_urls_rewrites_only_relative_url_attributes() -> None:
    html = (
        '<p class="x">See <a href="../other/" title="../not-a-url">this</a> &amp; '
        '<a href="https://elsewhere.example/">that</a>.</p>'
        '<img src="pic.jpg" srcset="pic-2x.jpg 2x, /pic-3x.jpg 3x" alt="A &quot;pic&quot;">'
        '<video poster="poster.png" src="/v.mp4"></video><blockquote cite="src.html">q</blockquote>'
        '<a href="mailto:me@example.org">mail</a><a href="#top">top</a>'
    )
    assert resolve_urls(html, BASE) == (
        '<p class="x">See <a href="https://blog.example/2024/05/other/" title="../not-a-url">'
        'this</a> &amp; <a href="https://elsewhere.example/">that</a>.</p>'
        '<img src="https://blog.example/2024/05/post/pic.jpg" '
        'srcset="https://blog.example/2024/05/post/pic-2x.jpg 2x, '
        'https://blog.example/pic-3x.jpg 3x"'
        ' alt="A &quot;pic&quot;" />'
        '<video poster="https://blog.example/2024/05/post/poster.png" '
        'src="https://blog.example/v.mp4"></video>'
        '<blockquote cite="https://blog.example/2024/05/post/src.html">q</blockquote>'
        '<a href="mailto:me@example.org">mail</a>'
        '<a href="https://blog.example/2024/05/post/#top">top</a>'
    )


def test_resolve_urls_keeps_absolute_markup_byte_for_byte() -> None:
    html = (
        "<p>Grüße &#8220;x&#8221; &auml; <!-- note --><br/>"
        "<A HREF='https://a.example/'>a</A><img src=\"https://a.example/i.png\"></p>"
    )
    assert resolve_urls(html, BASE) == html.replace("</A>", "</a>")
    once = resolve_urls('<img src="a.png">', BASE)
    assert resolve_urls(once, BASE) == once


def test_extract_images_in_order_with_alt_and_numeric_sizes() -> None:
    html = (
        '<img src="https://a.example/1.jpg" alt=" first\n image " width="300" height="200">'
        '<img src="data:image/png;base64,AAAA" alt="inline data">'
        '<img alt="no src"><img src="/relative.png">'
        '<img src="https://a.example/2.png" width="50%" height="auto"/>'
    )
    assert extract_images(html) == [
        Image("https://a.example/1.jpg", "first image", None, 300, 200),
        Image("https://a.example/2.png", "", None, None, None),
    ]
    assert extract_images(None) == []


def test_html_to_text() -> None:
    assert html_to_text("Tom &amp; Jerry <em>again</em>") == "Tom & Jerry again"
    assert html_to_text("<p>one</p><p>two<br>three</p>") == "one two three"
    assert html_to_text("<script>alert(1)</script>ok") == "ok"
    assert html_to_text("  ") is None


def test_text_to_html_escapes_and_makes_paragraphs() -> None:
    assert text_to_html("a < b\nand c\n\n  second & last ") == (
        "<p>a &lt; b<br />and c</p><p>second &amp; last</p>"
    )
    assert text_to_html(" \n ") is None


def test_clean_text_decodes_entities_and_whitespace() -> None:
    assert clean_text("  &#8220;Dialog&#8221;\n  für  alle ") == "“Dialog” für alle"
    assert clean_text("") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://a.example/x", True),
        ("http://a.example", True),
        ("tag:a.example,2024:1", False),
        ("/relative", False),
        ("http://[::1", False),
        (None, False),
    ],
)
def test_is_http_url(value: str | None, expected: bool) -> None:
    assert is_http_url(value) is expected


def test_http_url_resolves_and_filters() -> None:
    assert http_url("/feed", "https://a.example/blog/") == "https://a.example/feed"
    assert http_url("javascript:alert(1)", "https://a.example/") is None
    assert http_url(42, "https://a.example/") is None
