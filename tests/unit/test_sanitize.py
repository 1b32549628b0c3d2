"""Sanitising what the fediverse sends: comment HTML, plain text, display names, isolation."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from bridge.backfeed.sanitize import (
    LINK_REL,
    NAME_LIMIT,
    html_to_text,
    isolate,
    plain_line,
    plain_name,
    sanitize_html,
    strip_controls,
)
from tests.fakes.remote_notes import mastodon_link, mastodon_mention

ALLOWED_ATTRIBUTES = {
    "a": {"href", "class", "rel"},
    "span": {"class"},
}
ALLOWED_TAGS = {"a", "p", "br", "span", "ul", "ol", "li", "blockquote", "code", "pre"} | {
    "em",
    "strong",
    "b",
    "i",
    "del",
    "s",
}
ALLOWED_CLASSES = {"mention", "hashtag", "u-url", "h-card", "invisible", "ellipsis"}

FSI, PDI = "\u2068", "\u2069"
RLO, PDF, RLI, LRM, RLM = "\u202e", "\u202c", "\u2067", "\u200e", "\u200f"


class _Inspector(HTMLParser):
    """Collects every tag and attribute of sanitiser output, as a browser would read them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"comment survived: {data!r}")

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(f"declaration survived: {decl!r}")

    def handle_pi(self, data: str) -> None:
        raise AssertionError(f"processing instruction survived: {data!r}")


def assert_safe(output: str) -> _Inspector:
    """Every element and attribute is on the allow-list, every href http(s), rel forced."""
    inspector = _Inspector()
    inspector.feed(output)
    inspector.close()
    for tag, attributes in inspector.tags:
        assert tag in ALLOWED_TAGS, (tag, output)
        assert set(attributes) <= ALLOWED_ATTRIBUTES.get(tag, set()), (tag, attributes)
        assert set((attributes.get("class") or "").split()) <= ALLOWED_CLASSES, attributes
        if tag == "a":
            href = attributes["href"] or ""
            assert href.startswith(("http://", "https://")), href
            assert attributes["rel"] == LINK_REL
    lowered = output.lower()
    for marker in ("javascript:", "vbscript:", "data:", "<script", "<style", "onerror", "onclick"):
        assert marker not in lowered, (marker, output)
    return inspector


def test_a_mastodon_reply_keeps_mentions_hashtags_links_and_paragraphs() -> None:
    content = (
        f"<p>{mastodon_mention('https://bridge.example/@talkabout', 'talkabout')} Siehe "
        f"{mastodon_link('https://www.example.com/ein/sehr/langer/pfad/zum/artikel')} "
        '<a href="https://m.example/tags/SocialMedia" class="mention hashtag" rel="tag">'
        "#<span>SocialMedia</span></a></p><p>Zweiter Absatz<br />neue Zeile</p>"
    )
    assert sanitize_html(content) == (
        '<p><span class="h-card"><a href="https://bridge.example/@talkabout" '
        f'class="u-url mention" rel="{LINK_REL}">@<span>talkabout</span></a></span> Siehe '
        f'<a href="https://www.example.com/ein/sehr/langer/pfad/zum/artikel" rel="{LINK_REL}">'
        '<span class="invisible">https://</span><span class="ellipsis">www.example.com/ein/sehr'
        '/lange</span><span class="invisible">r/pfad/zum/artikel</span></a> '
        f'<a href="https://m.example/tags/SocialMedia" class="mention hashtag" rel="{LINK_REL}">'
        "#<span>SocialMedia</span></a></p><p>Zweiter Absatz<br>neue Zeile</p>"
    )


def test_lists_quotes_code_and_emphasis_are_kept() -> None:
    content = (
        "<ul><li>eins</li></ul><ol><li>zwei</li></ol><blockquote><p>Zitat</p></blockquote>"
        "<pre><code>x = 1</code></pre><em>e</em><strong>s</strong><b>b</b><i>i</i>"
        "<del>d</del><s>s</s>"
    )
    assert sanitize_html(content) == content


def test_headings_become_bold_paragraphs() -> None:
    assert sanitize_html('<h2 id="x">Titel</h2>Text') == "<p><strong>Titel</strong></p>Text"


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href="jav\tascript:alert(1)">x</a>',
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;:alert(1)">x</a>',
        '<a href=" javascript:alert(1)">x</a>',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<p onclick="alert(1)" style="color:red">x</p>',
        '<a href="https://ok.example/" onmouseover="alert(1)" style="x">x</a>',
        "<img src=x onerror=alert(1)>",
        '<svg onload="alert(1)"><a href="https://x.example">in svg</a></svg>',
        "<math><mi xlink:href='javascript:alert(1)'>x</mi></math>",
        "<iframe src='https://evil.example'></iframe>",
        "<object data='javascript:alert(1)'></object><embed src='x'>",
        "<form action='https://evil.example'><input name=a><button>go</button></form>",
        "<style>body{display:none}</style><p>x</p>",
        "<!-- <script>alert(1)</script> --><p>x</p>",
        "<![CDATA[<script>alert(1)</script>]]>",
        "<base href='https://evil.example/'><meta http-equiv='refresh' content='0;url=x'>",
        "<a href='https://ok.example/' rel='opener' target='_self'>x</a>",
        '<p><a href="https://ok.example/"><a href="javascript:alert(1)">nested</a></a></p>',
        "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript>",
        "<template><script>alert(1)</script></template>",
        "<xmp><script>alert(1)</script></xmp>",
        '<span class="invisible evil-class" style="display:block">x</span>',
        "<div><div><div><p>deep</p></div></div></div>",
        '<a href="https://x.example/"<script>alert(1)</script>>x</a>',
    ],
)
def test_hostile_markup_leaves_nothing_active(hostile: str) -> None:
    assert_safe(sanitize_html(hostile))
    assert_safe(sanitize_html(hostile, base_url="https://m.example/@a/1"))


def test_nested_script_tricks_leave_only_text() -> None:
    out = sanitize_html("<scr<script>ipt>alert(1)</script>")
    assert "<" not in out.replace("&lt;", "")
    assert "script" not in out


def test_text_of_a_script_is_dropped_not_shown() -> None:
    assert sanitize_html("<p>a<script>alert(1)</script>b<style>p{}</style>c</p>") == "<p>abc</p>"


def test_relative_links_resolve_against_the_base_or_lose_their_href() -> None:
    content = '<a href="/tags/x">rel</a> <a href="//other.example/p">proto</a>'
    assert sanitize_html(content, base_url="https://m.example/@a/1") == (
        f'<a href="https://m.example/tags/x" rel="{LINK_REL}">rel</a> '
        f'<a href="https://other.example/p" rel="{LINK_REL}">proto</a>'
    )
    assert sanitize_html(content) == "<span>rel</span> <span>proto</span>"
    # Each call resolves against its own base only (one cleaner serves them all).
    assert sanitize_html(content, base_url="https://gts.example/u/b/s/2").startswith(
        f'<a href="https://gts.example/tags/x" rel="{LINK_REL}">rel</a>'
    )


def test_a_link_that_loses_its_href_keeps_its_text_and_span_classes() -> None:
    out = sanitize_html('<a href="javascript:x" class="u-url mention" rel="me">@a</a> danach')
    assert out == '<span class="mention">@a</span> danach'


def test_rel_is_forced_on_every_link() -> None:
    out = sanitize_html('<a href="https://a.example" rel="me author" target="_blank">a</a>')
    assert out == f'<a href="https://a.example" rel="{LINK_REL}">a</a>'


def test_control_characters_go_newlines_and_tabs_stay() -> None:
    raw = "<p>a\x00b\x01c\x08d\x0be\x1bf\x7fg\x85h\ud800i\ufffej&#1;k&#x1b;l\tm\r\nn\ro</p>"
    out = sanitize_html(raw)
    assert out == "<p>abcdefghijkl\tm\nn\no</p>"
    assert html_to_text(raw) == "abcdefghijkl m n o"


def test_output_is_valid_xml_text_for_any_character() -> None:
    every = "".join(chr(c) for c in range(0x0, 0x250)) + "\ud800\udfff\ufffe\uffff]]>"
    references = "".join(f"&#{c};" for c in range(0x0, 0x250))
    for markup in (f"<p>{every}</p>", f"<p>{references}</p>", every):
        for out in (sanitize_html(markup), html_to_text(markup), strip_controls(markup)):
            content = ET.Element("content")
            content.text = out
            # ElementTree writes any character; parsing the result back is the real test.
            assert ET.fromstring(ET.tostring(content, encoding="unicode")).text == out


@pytest.mark.parametrize(
    "hostile",
    [
        "<p>Ein Absatz mit <a href='https://x.example/a'>Link</a> &amp; Text.</p>\n" * 14_000,
        "<a " * 350_000,
        "<" * 1_000_000,
        "<b>" * 334_000,
        "&" * 1_000_000,
        "<a href='" + "x" * 1_000_000,
        "<p>" + "\u202e" * 1_000_000 + "</p>",
        "&a" * 500_000,
        "&zz;" * 250_000,
        "&amp;" * 200_000,
        '<a href="https://x.example/?' + "&a=1" * 250_000 + '">x</a>',
        "&#" * 500_000,
        "&#38" * 250_000,
        ("&" + "a" * 40 + ";") * 24_000,
    ],
    ids=[
        "paragraphs",
        "open-anchors",
        "angles",
        "nesting",
        "ampersands",
        "endless-href",
        "rlo",
        "bare-references",
        "unknown-references",
        "amp-references",
        "query-ampersands",
        "hash-ampersands",
        "numeric-ampersands",
        "long-names",
    ],
)
def test_one_megabyte_of_input_is_handled_in_linear_time(hostile: str) -> None:
    assert len(hostile) >= 999_000
    started = time.perf_counter()
    out = sanitize_html(hostile)
    assert time.perf_counter() - started < 1.0
    assert {tag.lower() for tag in re.findall(r"</?([a-zA-Z]+)", out)} <= ALLOWED_TAGS
    started = time.perf_counter()
    assert "<a " not in html_to_text(hostile)
    assert time.perf_counter() - started < 1.0


def test_html_to_text_reads_like_the_page() -> None:
    assert html_to_text("<p>Ende.</p><p>Anfang<br>neu</p>") == "Ende. Anfang neu"
    assert html_to_text("a<script>x()</script>b<style>p{}</style>c") == "abc"
    assert html_to_text("Fish &amp; chips&nbsp;&#8211;\n\t ok") == "Fish & chips – ok"
    assert html_to_text("<ul><li>eins</li><li>zwei</li></ul>") == "eins zwei"
    assert html_to_text("<p>unclosed <b>bold") == "unclosed bold"
    assert html_to_text("I <3 cats & a < b") == "I <3 cats & a < b"
    assert html_to_text("") == ""


def test_plain_name_decodes_markup_and_references() -> None:
    assert plain_name("Tom &amp; <b>Jerry</b>", "x") == "Tom & Jerry"
    assert plain_name("Sebastian Keil", "sebastiankeil") == "Sebastian Keil"
    assert plain_name("Maurice :blobcat: :verified:", "m") == "Maurice :blobcat: :verified:"
    assert plain_name("  Jens\n\tNirschl  ", "j") == "Jens Nirschl"


def test_plain_name_removes_directional_controls_and_invisible_padding() -> None:
    assert plain_name(f"{RLO}lirpa{PDF} Jens{LRM}{RLM}", "j") == "lirpa Jens"
    assert plain_name(f"{RLI}Mirko{PDI}\u200b\ufeff", "m") == "Mirko"
    assert plain_name("\u3164", "@blank@host.example") == "@blank@host.example"
    assert plain_name("\u2800\u200b ", "fallback") == "fallback"
    assert plain_name(None, "sean") == "sean"
    assert plain_name("", "") == "?"


def test_plain_name_keeps_joined_emoji_and_right_to_left_letters() -> None:
    assert plain_name("Ada 👩\u200d💻", "a") == "Ada 👩\u200d💻"
    assert plain_name("محمد", "m") == "محمد"


def test_plain_name_is_capped() -> None:
    name = plain_name("x" * 500, "f")
    assert len(name) == NAME_LIMIT and name.endswith("…")
    assert plain_name("<b>" * 3_000 + "Real", "fallback") == "Real"
    started = time.perf_counter()
    assert len(plain_name("<b>" * 400_000 + "Real", "fallback")) <= NAME_LIMIT
    assert time.perf_counter() - started < 1.0


def test_plain_line_caps_and_cleans() -> None:
    assert plain_line("a\x00b\u202ec  d", 10) == "abc d"
    assert plain_line("abcdefghijk", 5) == "abcd…"


def test_isolate_wraps_user_text_in_first_strong_isolate() -> None:
    title = f"{isolate('Jens Nirschl')} boosted „Ein Plädoyer für die Mitteilung…“"
    assert title == f"{FSI}Jens Nirschl{PDI} boosted „Ein Plädoyer für die Mitteilung…“"
    arabic = isolate("محمد")
    assert arabic == f"{FSI}محمد{PDI}"


def test_isolate_balances_isolates_inside_the_text() -> None:
    # A stray PDI would close our isolate early; it is dropped.
    assert isolate(f"evil{PDI} text") == f"{FSI}evil text{PDI}"
    # An unclosed initiator is closed before ours, so what follows is not swallowed.
    assert isolate(f"{RLI}open") == f"{FSI}{RLI}open{PDI}{PDI}"
    assert isolate(f"{RLI}a{PDI}b") == f"{FSI}{RLI}a{PDI}b{PDI}"


def test_ampersands_and_references_mean_what_they_meant() -> None:
    markup = "<p>Tom &amp; Jerry & Co &copy; &#38; &#x26; &AMP; &zz; &lt;b&gt;</p>"
    assert sanitize_html(markup) == (
        "<p>Tom &amp; Jerry &amp; Co © &amp; &amp; &amp; &amp;zz; &lt;b&gt;</p>"
    )
    assert html_to_text(markup) == "Tom & Jerry & Co © & & & &zz; <b>"
    link = '<a href="https://x.example/?a=1&b=2&amp;c=3&#38;d=4">q</a>'
    assert sanitize_html(link) == (
        f'<a href="https://x.example/?a=1&amp;b=2&amp;c=3&amp;d=4" rel="{LINK_REL}">q</a>'
    )
    legacy = sanitize_html("<p>&#38 &#x26 &#169 &amp a&b &copy 2010</p>")
    assert legacy == "<p>&amp; &amp; © &amp;amp a&amp;b &amp;copy 2010</p>"
    relative = sanitize_html('<a href="/p?a=1&b=2">r</a>', base_url="https://m.example/n/1")
    assert relative == f'<a href="https://m.example/p?a=1&amp;b=2" rel="{LINK_REL}">r</a>'


def test_the_internal_placeholder_cannot_be_smuggled_in() -> None:
    assert sanitize_html("<p>a\ufdd0b%EF%B7%90</p>") == "<p>ab%EF%B7%90</p>"
    assert html_to_text("a\ufdd0b") == "ab"
