"""parse_feed: bytes in, ParsedFeed out, for every format a blog may publish."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.entries import FeedEntry, Image, ParsedFeed
from bridge.errors import FeedParseError
from bridge.ingest.normalize import HASH_ID_PREFIX
from bridge.ingest.parse import looks_like_html, parse_feed, parse_feed_async

TESTS = Path(__file__).resolve().parents[1]
FEEDS = TESTS / "data" / "feeds"
TALKABOUT = TESTS / "data" / "talkabout" / "feed.rss"
TALKABOUT_URL = "http://www.talkabout.de/feed/"


def load(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def by_id(feed: ParsedFeed) -> dict[str, FeedEntry]:
    return {entry.id: entry for entry in feed.entries}


@pytest.fixture(scope="module")
def talkabout() -> ParsedFeed:
    return parse_feed(TALKABOUT.read_bytes(), url=TALKABOUT_URL, content_type="application/rss+xml")


# --- the talkabout fixture (German WordPress RSS 2.0) ---------------------------------------


def test_talkabout_entries_and_ids(talkabout: ParsedFeed) -> None:
    assert talkabout.format == "rss20"
    assert [e.id for e in talkabout.entries] == [
        "http://www.talkabout.de/?p=1234",
        "http://www.talkabout.de/?p=1201",
    ]


def test_talkabout_first_entry(talkabout: ParsedFeed) -> None:
    entry = talkabout.entries[0]
    assert entry.title == (
        "Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen. Oder: "
        "Teilhaben lassen als Kern von Social Media."
    )
    assert entry.link == "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"
    assert entry.published == datetime(2010, 2, 21, 16, 53, tzinfo=UTC)
    assert entry.published.tzinfo is UTC
    assert entry.updated is None
    assert entry.author == "Mirko Lange"
    assert entry.categories == ("Social Media", "PR", "Dialog")
    assert entry.language == "de"
    assert entry.comments_feed == "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/feed/"
    assert entry.images == (
        Image(
            url="http://www.talkabout.de/wp-content/uploads/2010/02/handwerk.jpg",
            alt="cc gholzer, Flickr",
            width=300,
            height=200,
        ),
    )
    assert entry.content_html is not None
    assert entry.content_html.startswith("<p>Letzten Freitag hatte mich Timo Lommatzsch")
    assert "<h3>Die Kür: Dialog</h3>" in entry.content_html
    assert "regelmäßig stattfindenes, halbstündiges Gespräch" in entry.content_html
    assert 'href="http://www.talkabout.de/es-braucht-keinen-dialog/"' in entry.content_html
    assert entry.summary_html is not None
    assert entry.summary_html.startswith("Letzten Freitag")
    assert entry.summary_html != entry.content_html


def test_talkabout_title_entities_become_typographic_quotes(talkabout: ParsedFeed) -> None:
    second = talkabout.entries[1]
    assert second.title == "Es braucht keinen “Dialog” für erfolgreiche Social Media"
    assert second.categories == ("Social Media",)
    assert second.images == ()
    assert second.published == datetime(2010, 2, 14, 10, 12, tzinfo=UTC)


def test_talkabout_meta(talkabout: ParsedFeed) -> None:
    meta = talkabout.meta
    assert meta.title == "talkabout"
    assert meta.description == "Kommunikation, PR und Social Media"
    assert meta.home_url == "http://www.talkabout.de"
    assert meta.icon_url == "http://www.talkabout.de/wp-content/uploads/talkabout-logo.png"
    assert meta.language == "de"
    assert meta.self_url == "http://www.talkabout.de/feed/"
    assert meta.hub_url is None


def test_talkabout_parses_the_same_with_any_content_type() -> None:
    body = TALKABOUT.read_bytes()
    reference = parse_feed(body, url=TALKABOUT_URL, content_type="application/rss+xml")
    # text/xml without charset makes feedparser assume us-ascii (RFC 3023): still fine.
    for content_type in (None, "text/xml", "text/html", "application/xml; charset=utf-8"):
        assert parse_feed(body, url=TALKABOUT_URL, content_type=content_type) == reference


def test_entries_survive_the_store_round_trip(talkabout: ParsedFeed) -> None:
    for entry in talkabout.entries:
        assert FeedEntry.from_json(json.loads(json.dumps(entry.to_json()))) == entry


def test_parsing_is_deterministic(talkabout: ParsedFeed) -> None:
    again = parse_feed(TALKABOUT.read_bytes(), url=TALKABOUT_URL)
    assert [e.content_hash() for e in again.entries] == [
        e.content_hash() for e in talkabout.entries
    ]


async def test_parse_feed_async_matches(talkabout: ParsedFeed) -> None:
    body = TALKABOUT.read_bytes()
    assert await parse_feed_async(body, url=TALKABOUT_URL, content_type="application/rss+xml") == (
        talkabout
    )


# --- other RSS dialects ----------------------------------------------------------------------


def test_rss_091_in_latin1() -> None:
    feed = parse_feed(load("rss091.xml"), url="http://tagebuch.example/rss.xml")
    assert feed.format == "rss091n"
    assert feed.meta.title == "Kleines Tagebuch"
    assert feed.meta.description == "Notizen aus München"
    assert feed.meta.icon_url == "http://tagebuch.example/logo.gif"
    assert feed.meta.language == "de-de"
    first, second = feed.entries
    assert first.id == "http://tagebuch.example/2001/06/strassenfest.html"
    assert first.title == "Straßenfest & Regen"
    # No content:encoded in RSS 0.91: the description is the summary, its link made absolute
    # against the item's own page.
    assert first.content_html is None
    assert first.summary_html == (
        'Es regnete. <a href="http://tagebuch.example/2001/06/fotos.html">Fotos</a>'
    )
    assert second.summary_html == "Hallo und schöne Grüße."
    assert first.published is None


def test_rss_10_rdf() -> None:
    feed = parse_feed(load("rss10.rdf"), url="https://rdf.example/index.rdf")
    assert feed.format == "rss10"
    assert feed.meta.title == "RDF Site"
    assert feed.meta.language == "en-GB"
    newer, older = feed.entries
    assert newer.id == "https://rdf.example/entries/2"
    assert newer.author == "Rita Dee"
    assert newer.categories == ("rdf",)
    assert newer.content_html == "<p>The <em>second</em> one, in full.</p>"
    assert newer.summary_html == "The second one."
    # dc:date is the only date RSS 1.0 has; it serves as publication date.
    assert newer.published == datetime(2003, 12, 13, 18, 30, 2, tzinfo=UTC)
    assert older.published == datetime(2003, 12, 12, 8, 0, tzinfo=UTC)


def test_rss_media_enclosures_and_author_email() -> None:
    feed = parse_feed(load("rss20_media.xml"), url="https://photos.example/feed.xml")
    (entry,) = feed.entries
    assert entry.author == "Ana Fotografin"  # from "ana@photos.example (Ana Fotografin)"
    assert entry.images == (
        # The inline image comes first and keeps its alt; its enclosure is the same URL.
        Image("https://photos.example/img/harbour.jpg", "The harbour", None, 1200, 800),
        Image("https://photos.example/img/harbour-wide.jpg", "", "image/jpeg", 2400, 1000),
        Image("https://photos.example/img/harbour-thumb.jpg", "", "image/jpeg", 150, 100),
    )
    assert entry.summary_html == "Boats <b>before</b> sunrise."
    assert entry.published == datetime(2024, 3, 5, 5, 15, tzinfo=UTC)


def test_hub_and_self_from_rss_atom_link() -> None:
    meta = parse_feed(load("rss20_media.xml"), url="https://photos.example/feed.xml").meta
    assert meta.hub_url == "https://pubsubhubbub.example/"
    assert meta.self_url == "https://photos.example/feed.xml"
    assert meta.title == "Photo & Film"


# --- Atom ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def atom() -> ParsedFeed:
    return parse_feed(
        load("atom10_xmlbase.xml"),
        url="https://blog.example/feed.atom",
        content_type="application/atom+xml",
    )


def test_atom_meta_relative_links_and_hub(atom: ParsedFeed) -> None:
    assert atom.format == "atom10"
    assert atom.meta.title == "Notes & Essays"  # type="html" title, entity decoded once
    assert atom.meta.description == "Writing about the <web>"
    assert atom.meta.home_url == "https://blog.example/"
    assert atom.meta.icon_url == "https://blog.example/favicon.png"
    assert atom.meta.self_url == "https://blog.example/feed.atom"
    assert atom.meta.hub_url == "https://hub.example/"
    assert atom.meta.language == "en"


def test_atom_entry_with_nested_xml_base(atom: ParsedFeed) -> None:
    entry = atom.entries[0]
    # tag: ids are not URLs: the link is the stable id.
    assert entry.id == "https://blog.example/posts/2024/second/"
    assert entry.link == "https://blog.example/posts/2024/second/"
    assert entry.title == "Tom & Jerry again"
    assert entry.content_html is not None
    assert 'href="https://blog.example/posts/first/"' in entry.content_html
    assert 'src="https://blog.example/posts/2024/second/chart.png"' in entry.content_html
    assert "<script" not in entry.content_html and "alert" not in entry.content_html
    assert entry.summary_html == "<p>Short &amp; plain.</p>"
    assert entry.categories == ("essays", "web")
    assert entry.comments_feed == "https://blog.example/posts/2024/second/comments.atom"
    assert entry.author == "Ada Example"  # inherited from the feed
    assert entry.language == "en"
    assert entry.published == datetime(2024, 3, 2, 8, 30, tzinfo=UTC)
    assert entry.updated == datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    assert entry.images == (
        Image("https://blog.example/posts/2024/second/chart.png", "A chart", None, 640, None),
        Image("https://blog.example/shared/cover.png", "Cover"),
        Image("https://blog.example/posts/2024/second/cover.png", "", "image/png"),
    )


def test_atom_xhtml_content_and_entry_language(atom: ParsedFeed) -> None:
    entry = atom.entries[1]
    assert entry.id == "https://blog.example/posts/2024/first/"
    assert entry.language == "de"
    assert entry.content_html == (
        '<p>Grüße, <a href="https://blog.example/about">über mich</a>.</p>'
        '<p><img alt="Foto" src="https://blog.example/posts/2024/first/photo.jpg" /></p>'
    )
    assert entry.summary_html is None  # feedparser's copy of the content is not a summary
    assert entry.images == (Image("https://blog.example/posts/2024/first/photo.jpg", "Foto"),)
    assert entry.published == entry.updated == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


# --- JSON Feed -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def json_feed() -> ParsedFeed:
    return parse_feed(
        load("jsonfeed11.json"),
        url="https://micro.example/feed.json",
        content_type="application/feed+json",
    )


def test_json_feed_meta(json_feed: ParsedFeed) -> None:
    assert json_feed.format == "json11"
    meta = json_feed.meta
    assert meta.title == "Micro & Macro"
    assert meta.description == "Short notes"
    assert meta.home_url == "https://micro.example/"
    assert meta.icon_url == "https://micro.example/icon-512.png"
    assert meta.language == "fr-CA"
    assert meta.self_url == "https://micro.example/feed.json"
    assert meta.hub_url == "https://websub.example/hub"


def test_json_feed_item_with_relative_urls(json_feed: ParsedFeed) -> None:
    entry = json_feed.entries[0]
    assert entry.id == "https://micro.example/2024/05/hello"
    assert entry.link == "https://micro.example/2024/05/hello"
    assert entry.title == "Bonjour “monde”"
    assert entry.content_html is not None
    assert 'href="https://micro.example/2024/04/older"' in entry.content_html
    assert 'src="https://micro.example/2024/05/pics/sun.jpg"' in entry.content_html
    # The same sanitizing as RSS/Atom: no script, no event handlers.
    assert "<script" not in entry.content_html and "alert" not in entry.content_html
    assert "onclick" not in entry.content_html and "<p>fin</p>" in entry.content_html
    assert entry.summary_html == "<p>Un résumé</p>"
    assert entry.published == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert entry.updated == datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    assert entry.categories == ("Notes", "Québec")
    assert entry.language == "fr"
    assert entry.author == "Jo Micro"
    assert entry.images == (
        Image("https://micro.example/2024/05/pics/sun.jpg", "Soleil", None, 800, 600),
        Image("https://micro.example/2024/05/hello/cover.jpg"),
        Image("https://micro.example/2024/05/hello/photo.png", "Une photo", "image/png"),
    )


def test_json_feed_text_items_and_ids(json_feed: ParsedFeed) -> None:
    _, older, note = json_feed.entries
    assert older.id == "https://micro.example/2024/04/older"  # numeric id 42: the URL wins
    assert older.title is None
    assert older.content_html == (
        "<p>Line one<br />line two</p><p>Second paragraph with &lt;angle&gt; &amp; ampersand</p>"
    )
    assert older.author == "Guest Writer"
    assert older.language == "fr-CA"
    assert note.id == "note-7" and note.link is None


def test_json_feed_1_0() -> None:
    feed = parse_feed(load("jsonfeed10.json"), url="https://old.example/feed.json")
    assert feed.format == "json10"
    (entry,) = feed.entries
    assert entry.author == "Old Author"
    assert entry.published == datetime(2017, 5, 17, 15, 2, 12, tzinfo=UTC)


def test_json_feed_sniffed_without_content_type() -> None:
    body = load("jsonfeed11.json")
    assert parse_feed(body, url="https://micro.example/feed.json").format == "json11"
    assert parse_feed(b"\xef\xbb\xbf" + body, url="https://micro.example/feed.json").entries


# --- identity --------------------------------------------------------------------------------


def test_repeated_and_reordered_entries_keep_the_first_in_feed_order() -> None:
    feed = parse_feed(load("rss20_repeated.xml"), url="https://repeat.example/feed")
    assert [e.id for e in feed.entries] == [
        "https://repeat.example/?p=5",
        "https://repeat.example/?p=9",
        "https://repeat.example/?p=1",
        "https://repeat.example/?p=7",
    ]
    assert feed.entries[0].title == "Sticky post"
    assert feed.entries[0].summary_html == "I am pinned."


def test_guid_that_is_not_a_url_falls_back_to_the_link() -> None:
    feed = parse_feed(load("rss20_ids.xml"), url="https://ids.example/feed/")
    tagged, only_guid, *_ = feed.entries
    assert tagged.id == "https://ids.example/posts/tagged"
    # RSS content without xml:base resolves against the item's page, not the feed URL.
    assert tagged.images == (Image("https://ids.example/posts/images/pic.png", "Pic"),)
    assert only_guid.id == "a1b2c3d4"
    assert only_guid.link is None


def test_entries_without_guid_or_link_get_a_content_hash() -> None:
    body = load("rss20_ids.xml")
    first = parse_feed(body, url="https://ids.example/feed/").entries
    again = parse_feed(body, url="https://ids.example/feed/").entries
    hashed = [e.id for e in first if e.id.startswith(HASH_ID_PREFIX)]
    assert len(hashed) == 2 and hashed[0] != hashed[1]
    assert hashed == [e.id for e in again if e.id.startswith(HASH_ID_PREFIX)]
    assert all(len(h) == len(HASH_ID_PREFIX) + 64 for h in hashed)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_wide_encodings(encoding: str) -> None:
    text = TALKABOUT.read_text(encoding="utf-8").replace(
        'encoding="UTF-8"', f'encoding="{encoding}"'
    )
    feed = parse_feed(text.encode(encoding), url=TALKABOUT_URL)
    assert feed.entries[1].title == "Es braucht keinen “Dialog” für erfolgreiche Social Media"


def test_category_entities_are_decoded() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        b"<title>x</title><link>http://a.example/1</link>"
        b"<category><![CDATA[PR &amp; Marketing]]></category>"
        b"<category><![CDATA[pr & marketing]]></category><category> </category>"
        b"</item></channel></rss>"
    )
    (entry,) = parse_feed(body, url="http://a.example/feed").entries
    assert entry.categories == ("PR & Marketing",)


def test_double_encoded_title_is_decoded() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        b"<title>Es braucht keinen &amp;#8220;Dialog&amp;#8221;</title>"
        b"<link>http://a.example/1</link></item></channel></rss>"
    )
    (entry,) = parse_feed(body, url="http://a.example/feed").entries
    assert entry.title == "Es braucht keinen “Dialog”"


# --- documents that are not (usable) feeds ---------------------------------------------------


def test_slightly_broken_feed_with_entries_is_accepted() -> None:
    feed = parse_feed(load("broken_but_usable.xml"), url="https://careless.example/feed")
    assert [e.id for e in feed.entries] == ["https://careless.example/readable"]


def test_php_warning_before_the_feed_is_accepted() -> None:
    body = b"<br />\n<b>Warning</b>: Cannot modify header information<br />\n" + (
        TALKABOUT.read_bytes()
    )
    feed = parse_feed(body, url=TALKABOUT_URL)
    assert [e.id for e in feed.entries][:1] == ["http://www.talkabout.de/?p=1234"]


def test_malformed_xml() -> None:
    with pytest.raises(FeedParseError) as info:
        parse_feed(load("malformed.xml"), url="https://x.example/feed")
    assert str(info.value).startswith("not a feed: malformed XML at line 4: ")


@pytest.mark.parametrize("keep", [20, 300, 2000, -30])
def test_feed_cut_off_inside_an_entry_is_refused(keep: int) -> None:
    body = TALKABOUT.read_bytes()
    cut = body[: body.index(b"<item>") + keep] if keep > 0 else body[:keep]
    with pytest.raises(FeedParseError, match=r"^not a feed: the document is cut off \(malformed"):
        parse_feed(cut, url=TALKABOUT_URL)


def test_feed_cut_off_after_a_complete_entry_is_accepted() -> None:
    body = TALKABOUT.read_bytes()
    cut = body[: body.index(b"</item>") + len(b"</item>")]
    assert [e.id for e in parse_feed(cut, url=TALKABOUT_URL).entries] == [
        "http://www.talkabout.de/?p=1234"
    ]


def test_html_page() -> None:
    with pytest.raises(FeedParseError, match=r"^not a feed: looks like an HTML page$"):
        parse_feed(load("page.html"), url="https://x.example/", content_type="text/html")
    assert looks_like_html(load("page.html"))
    assert not looks_like_html(TALKABOUT.read_bytes(), "text/html")


def test_xhtml_page() -> None:
    body = (
        b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
        b"<title>T</title></head><body><p>x</p></body></html>"
    )
    with pytest.raises(FeedParseError, match="HTML page"):
        parse_feed(body, url="https://x.example/")


@pytest.mark.parametrize("body", [b"", b"   \n\t", b"\xef\xbb\xbf"])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(FeedParseError, match="empty"):
        parse_feed(body, url="https://x.example/feed")


def test_invalid_json() -> None:
    with pytest.raises(FeedParseError, match=r"^not a feed: invalid JSON at line 3 column 1"):
        parse_feed(load("invalid.json"), url="https://x.example/feed.json")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"title": "an API answer"}', None),
        (b"[1, 2, 3]", "application/json"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', None),
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes, content_type: str | None) -> None:
    with pytest.raises(FeedParseError, match="not a JSON Feed"):
        parse_feed(body, url="https://x.example/feed.json", content_type=content_type)


def test_json_content_type_with_garbage() -> None:
    with pytest.raises(FeedParseError, match="invalid JSON"):
        parse_feed(b"nope", url="https://x.example/feed.json", content_type="application/json")


def test_deeply_nested_json() -> None:
    with pytest.raises(FeedParseError, match="nested too deeply"):
        parse_feed(b"[" * 100_000 + b"]" * 100_000, url="https://x.example/feed.json")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (bytes(range(256)) * 4, "binary data"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip-compressed"),
        ("Grüße äöü ".encode("latin-1") * 20, "malformed XML at line 1"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "binary data"),
        (b'<?xml version="1.0"?><catalog><book/></catalog>', "no RSS, Atom or RDF"),
    ],
)
def test_garbage(body: bytes, message: str) -> None:
    with pytest.raises(FeedParseError, match=message):
        parse_feed(body, url="https://x.example/feed")


@pytest.mark.parametrize(
    "body", [str(TALKABOUT).encode(), b"/etc/hostname", TALKABOUT_URL.encode()]
)
def test_bytes_are_never_taken_for_a_path_or_url(body: bytes) -> None:
    # feedparser.parse(b"/some/path") would read that file; a body is only ever a document.
    with pytest.raises(FeedParseError):
        parse_feed(body, url="https://x.example/feed")
