"""Entries → ActivityStreams objects, tombstones and activities (pure translation).

Golden file pairs, granary style, in ``tests/data/golden/``: ``<name>.entry.json`` holds the
input (``entry``: a ``FeedEntry.to_json()``; ``blog``: handle, settings, feed meta; ``stored``:
the store's ``first_seen_at``/``changed_at``) and ``<name>.as2.json`` the expected object.
The talkabout inputs were written by hand from ``tests/data/talkabout/feed.rss``
(HTML as a feed parser hands it over: character references kept).

To rewrite every expected file after an intended change, run

    FEEDFED_REGEN_GOLDEN=1 pytest tests/unit/test_articles.py

and review the diff (``git diff tests/data/golden``) before committing it: the explicit
tests below pin the facts that a careless regeneration must not lose.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.activitypub.activities import create_activity, delete_activity, update_activity
from bridge.activitypub.articles import (
    build_object,
    build_tombstone,
    content_language,
    image_media_type,
    iso_time,
    note_content,
    object_type,
    updated_time,
)
from bridge.activitypub.excerpts import (
    decode_character_references,
    excerpt,
    html_to_text,
)
from bridge.activitypub.hashtags import hashtag_key, hashtag_name, hashtag_names
from bridge.activitypub.jsonld import AS_CONTEXT, PUBLIC, with_context, without_context
from bridge.activitypub.urls import Urls, entry_slug, recreated_slug
from bridge.config import DEFAULT_NOTE_TEMPLATE
from bridge.entries import FeedEntry, FeedMeta
from bridge.errors import ConfigError
from bridge.store.base import Blog, BlogSettings, FeedState, StoredEntry

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
REGENERATE = os.environ.get("FEEDFED_REGEN_GOLDEN") == "1"
URLS = Urls("https://bridge.example")
CREATED = datetime(2026, 11, 1, tzinfo=UTC)
SEEN = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GOLDEN_NAMES = sorted(path.name.removesuffix(".entry.json") for path in GOLDEN.glob("*.entry.json"))


def load_case(name: str) -> tuple[Blog, StoredEntry]:
    """The blog and stored entry described by ``<name>.entry.json``."""
    data = json.loads((GOLDEN / f"{name}.entry.json").read_text(encoding="utf-8"))
    entry = FeedEntry.from_json(data["entry"])
    blog = make_blog(
        handle=data["blog"]["handle"],
        settings=BlogSettings(**data["blog"]["settings"]),
        meta=FeedMeta.from_json(data["blog"]["meta"]),
    )
    stored = make_stored(
        entry,
        first_seen_at=datetime.fromisoformat(data["stored"]["first_seen_at"]),
        changed_at=datetime.fromisoformat(data["stored"]["changed_at"]),
    )
    return blog, stored


def make_blog(
    handle: str = "testblog",
    settings: BlogSettings | None = None,
    meta: FeedMeta | None = None,
) -> Blog:
    return Blog(
        id=1,
        handle=handle,
        feed_url=f"https://{handle}.example.org/feed/",
        settings=settings or BlogSettings(),
        from_config=False,
        created_at=CREATED,
        meta=meta or FeedMeta(language="de"),
        feed=FeedState(),
    )


def make_stored(
    entry: FeedEntry,
    first_seen_at: datetime = SEEN,
    changed_at: datetime | None = None,
    deleted_at: datetime | None = None,
) -> StoredEntry:
    return StoredEntry(
        blog_id=1,
        slug=entry_slug(entry.id),
        entry=entry,
        content_hash=entry.content_hash(),
        first_seen_at=first_seen_at,
        changed_at=changed_at or first_seen_at,
        in_feed=deleted_at is None,
        deleted_at=deleted_at,
    )


def talkabout(object_kind: str = "Article", which: str = "plaedoyer") -> dict[str, Any]:
    blog, stored = load_case(f"talkabout-{which}-{object_kind.lower()}")
    return build_object(blog, stored, URLS)


# --- golden files ----------------------------------------------------------------------------


def test_golden_inputs_cover_the_required_cases() -> None:
    assert {
        "talkabout-plaedoyer-article",
        "talkabout-plaedoyer-note",
        "talkabout-dialog-article",
        "talkabout-dialog-note",
        "six-images",
        "untitled",
        "summary-only",
        "no-language",
        "hostile-title-note",
        "rtl-article",
        "category-duplicates",
        "edited-entry",
    } <= set(GOLDEN_NAMES)


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden(name: str) -> None:
    blog, stored = load_case(name)
    built = build_object(blog, stored, URLS)
    expected_path = GOLDEN / f"{name}.as2.json"
    if REGENERATE:
        text = json.dumps(built, indent=2, ensure_ascii=False) + "\n"
        expected_path.write_text(text, encoding="utf-8")
    assert expected_path.exists(), f"no {expected_path.name}: run with FEEDFED_REGEN_GOLDEN=1"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert built == expected
    # What the server sends: the JSON round-trips and keeps non-ASCII text as text.
    assert json.loads(json.dumps(built, ensure_ascii=False)) == built


def test_no_orphan_expected_files() -> None:
    expected = {path.name.removesuffix(".as2.json") for path in GOLDEN.glob("*.as2.json")}
    assert expected <= set(GOLDEN_NAMES)


# --- the talkabout fixture, explicitly --------------------------------------------------------


def test_talkabout_article() -> None:
    article = talkabout("Article")
    entry_id = "http://www.talkabout.de/?p=1234"
    assert article["type"] == "Article"
    assert article["id"] == URLS.article("talkabout", entry_slug(entry_id))
    assert article["attributedTo"] == "https://bridge.example/users/talkabout"
    assert article["url"] == "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"
    assert article["to"] == [PUBLIC]
    assert article["cc"] == ["https://bridge.example/users/talkabout/followers"]
    assert article["published"] == "2010-02-21T16:53:00Z"
    assert "updated" not in article
    assert article["sensitive"] is False
    assert article["name"].startswith("Ein Plädoyer für die Mitteilung")
    assert article["nameMap"] == {"de": article["name"]}
    assert list(article["contentMap"]) == ["de"]
    assert article["contentMap"]["de"] == article["content"]
    assert [tag["name"] for tag in article["tag"]] == ["#SocialMedia", "#PR", "#Dialog"]
    assert article["tag"][0] == {
        "type": "Hashtag",
        "href": "https://bridge.example/tags/SocialMedia",
        "name": "#SocialMedia",
    }
    assert article["attachment"] == [
        {
            "type": "Image",
            "mediaType": "image/jpeg",
            "url": "http://www.talkabout.de/wp-content/uploads/2010/02/handwerk.jpg",
            "name": "cc gholzer, Flickr",
            "width": 300,
            "height": 200,
        }
    ]


def test_talkabout_article_keeps_german_text_and_typographic_quotes() -> None:
    article = talkabout("Article")
    content = article["content"]
    for text in ("regelmäßig", "Gespräch über Telefon", "Worüber", "Die Kür: Dialog"):
        assert text in content
    assert "“Mittagstisch”" in content
    assert "“Social Media PReview”" in content
    assert "&#8220;" not in content and "&#8221;" not in content
    # Markup itself is untouched: the link and the image survive as they were.
    assert '<a href="http://www.talkabout.de/es-braucht-keinen-dialog/">' in content
    assert 'alt="cc gholzer, Flickr"' in content


def test_talkabout_article_summary_is_plain_text_excerpt_not_a_warning() -> None:
    article = talkabout("Article")
    # Mastodon shows name + summary + url of an Article as plain text: no markup, no entities.
    assert article["summary"] == (
        "Letzten Freitag hatte mich Timo Lommatzsch von Molthan van Lohn in Hamburg gefragt, "
        "ob ich am aktuellen “Mittagstisch” teilnehmen wolle…"
    )
    preview = article["preview"]
    assert preview["type"] == "Note"
    assert preview["attributedTo"] == article["attributedTo"]
    assert preview["content"].startswith(f"<p><strong>{article['name']}</strong></p>")
    assert f"<p>{article['summary']}</p>" in preview["content"]
    assert "hashtag" not in preview["content"]


def test_talkabout_note() -> None:
    note = talkabout("Note")
    assert note["type"] == "Note"
    # A Note's summary would be a content warning in Mastodon, its name is never shown.
    assert "summary" not in note and "name" not in note and "preview" not in note
    content = note["content"]
    assert content.startswith(
        "<p><strong>Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen. Oder: "
        "Teilhaben lassen als Kern von Social Media.</strong></p>"
        "<p>Letzten Freitag hatte mich"
    )
    link = "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"
    assert f'<p><a href="{link}">{link}</a></p>' in content
    assert content.endswith(
        '<p><a href="https://bridge.example/tags/SocialMedia" class="mention hashtag" '
        'rel="tag">#<span>SocialMedia</span></a> '
        '<a href="https://bridge.example/tags/PR" class="mention hashtag" rel="tag">'
        "#<span>PR</span></a> "
        '<a href="https://bridge.example/tags/Dialog" class="mention hashtag" rel="tag">'
        "#<span>Dialog</span></a></p>"
    )
    assert note["contentMap"] == {"de": content}
    assert note["attachment"][0]["name"] == "cc gholzer, Flickr"


def test_talkabout_dialog_title_quotes() -> None:
    article = talkabout("Article", "dialog")
    assert article["name"] == "Es braucht keinen “Dialog” für erfolgreiche Social Media"
    assert article["summary"] == "Der Kern von Social Media ist nicht der Dialog. …"
    note = talkabout("Note", "dialog")
    assert (
        "<strong>Es braucht keinen “Dialog” für erfolgreiche Social Media</strong>"
        in (note["content"])
    )


# --- the other golden cases, explicitly ------------------------------------------------------


def test_six_images_attach_four_distinct_ones_and_keep_all_in_content() -> None:
    blog, stored = load_case("six-images")
    article = build_object(blog, stored, URLS)
    attached = article["attachment"]
    assert [image["url"] for image in attached] == [
        "https://photos.example.org/2026/harbour.jpg",
        "https://photos.example.org/2026/crane.PNG",
        "https://photos.example.org/2026/gull.webp?w=800&h=600",
        "https://photos.example.org/media/4711",
    ]
    assert [image.get("mediaType") for image in attached] == [
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/jpeg",
    ]
    assert "name" not in attached[2]  # empty alt text is no description
    assert attached[3]["name"] == "Möwe im Flug"
    assert article["content"].count("<img ") == 6


def test_untitled_entry_is_a_note_without_empty_title_markup() -> None:
    blog, stored = load_case("untitled")
    assert blog.settings.object_type == "Article"
    note = build_object(blog, stored, URLS)
    assert note["type"] == "Note"
    assert "name" not in note and "summary" not in note
    assert note["content"].startswith(
        "<p>Nur ein kurzer Gedanke zum Wochenende: weniger ist mehr.</p>"
    )
    assert "<strong></strong>" not in note["content"]


def test_summary_only_article_uses_the_summary_as_content() -> None:
    blog, stored = load_case("summary-only")
    article = build_object(blog, stored, URLS)
    assert article["content"] == (
        "<p>Dieser Feed liefert nur eine Zusammenfassung – den Rest gibt es im Blog.</p>"
    )
    assert article["summary"] == (
        "Dieser Feed liefert nur eine Zusammenfassung – den Rest gibt es im Blog."
    )


def test_no_language_means_no_language_maps() -> None:
    blog, stored = load_case("no-language")
    article = build_object(blog, stored, URLS)
    for key in ("contentMap", "nameMap"):
        assert key not in article
    assert "contentMap" not in article["preview"]


def test_hostile_title_is_escaped_in_note_content() -> None:
    blog, stored = load_case("hostile-title-note")
    note = build_object(blog, stored, URLS)
    content = note["content"]
    assert "<script>" not in content and "<b>" not in content
    assert (
        "<p><strong>&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; Tom &amp; Jerry’s "
        "&quot;best&quot; &lt;b&gt;bits&lt;/b&gt;</strong></p>"
    ) in content
    # The summary's own script is dropped; its entities become text, then are escaped again.
    assert "<p>Fish &amp; chips &lt;3 — &quot;quoted&quot;</p>" in content
    assert "alert(2)" not in content
    link = "https://hostile.example.org/?p=1&amp;x=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f'<a href="{link}">{link}</a>' in content
    assert note["url"] == 'https://hostile.example.org/?p=1&x="><script>alert(1)</script>'
    assert [tag["name"] for tag in note["tag"]] == ["#TomJerry", "#script"]


def test_right_to_left_text_is_kept() -> None:
    blog, stored = load_case("rtl-article")
    article = build_object(blog, stored, URLS)
    assert article["name"] == "وسائل التواصل الاجتماعي والحوار"
    assert article["contentMap"] == {"ar": article["content"]}
    assert 'dir="rtl"' in article["content"]
    assert [tag["name"] for tag in article["tag"]] == ["#وسائلالتواصل", "#حوار"]


def test_categories_normalised_and_deduplicated() -> None:
    blog, stored = load_case("category-duplicates")
    article = build_object(blog, stored, URLS)
    assert [tag["name"] for tag in article["tag"]] == [
        "#SocialMedia",
        "#PR",
        "#Öffentlichkeit",
        "#C",
        "#rockNRoll",
        "#Web20",
        "#fediverse",
    ]
    assert article["tag"][2]["href"] == "https://bridge.example/tags/%C3%96ffentlichkeit"


def test_edited_entry_carries_updated() -> None:
    blog, stored = load_case("edited-entry")
    article = build_object(blog, stored, URLS)
    # Recorded at 14:05 after the feed's 13:55: the later one, to the second.
    assert article["updated"] == "2026-11-28T14:05:00Z"
    assert article["contentMap"] == {"de": article["content"]}  # "de-DE" → "de"


# --- rules behind the objects ----------------------------------------------------------------


def entry_at(
    published: datetime | None = None, updated: datetime | None = None, **fields: Any
) -> FeedEntry:
    return FeedEntry(
        id="https://example.org/p/1",
        link="https://example.org/p/1",
        title=fields.pop("title", "Titel"),
        content_html="<p>Text</p>",
        published=published,
        updated=updated,
        **fields,
    )


def test_updated_absent_for_a_post_never_edited() -> None:
    published = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert updated_time(make_stored(entry_at(published))) is None
    same = entry_at(published, published.replace(microsecond=500))
    assert updated_time(make_stored(same)) is None


def test_updated_from_feed_when_later_than_published() -> None:
    published = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    later = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    assert updated_time(make_stored(entry_at(published, later))) == later


def test_updated_after_an_edit_the_bridge_recorded() -> None:
    published = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    changed = SEEN.replace(hour=15)
    # RSS 2.0 gives no updated date: the time of recording stands in for it.
    stored = make_stored(entry_at(published), changed_at=changed)
    assert updated_time(stored) == changed
    future = changed.replace(hour=16)
    stored = make_stored(entry_at(published, future), changed_at=changed)
    assert updated_time(stored) == future


def test_published_falls_back_to_first_seen_and_naive_times_are_utc() -> None:
    built = build_object(make_blog(), make_stored(entry_at()), URLS)
    assert built["published"] == "2026-11-28T12:00:00Z"
    assert iso_time(datetime(2026, 1, 2, 3, 4, 5, 678)) == "2026-01-02T03:04:05Z"


def test_object_type_follows_blog_unless_untitled() -> None:
    notes = BlogSettings(object_type="Note")
    assert object_type(BlogSettings(), entry_at()) == "Article"
    assert object_type(notes, entry_at()) == "Note"
    assert object_type(BlogSettings(), entry_at(title="  ")) == "Note"


@pytest.mark.parametrize(
    ("entry_language", "feed_language", "expected"),
    [
        (None, "de", "de"),
        ("en", "de", "en"),
        (None, "de-DE", "de"),
        (None, "de_AT", "de"),
        ("EN-us", None, "en"),
        ("zh-tw", None, "zh-TW"),
        ("zh-hant-HK", None, "zh-Hant"),
        ("German", "fr", "fr"),
        (None, None, None),
        ("", "  ", None),
    ],
)
def test_content_language(
    entry_language: str | None, feed_language: str | None, expected: str | None
) -> None:
    entry = entry_at(language=entry_language)
    assert content_language(entry, FeedMeta(language=feed_language)) == expected


def test_note_template_is_checked() -> None:
    assert note_content("<p>{title}</p>{summary}{url}", "A & B", "x", "https://e.org/?a=1&b=2") == (
        "<p>A &amp; B</p><p>x</p>https://e.org/?a=1&amp;b=2"
    )
    assert note_content("{{literal}} {url}", None, "", "u") == "{literal} u"
    for bad in ("{url} {author}", "{url!r}", "{url:>10}", "{0} {url}", "{url", "{url.real}"):
        with pytest.raises(ConfigError) as caught:
            note_content(bad, "t", "s", "u")
        assert caught.value.key == "note_template"


def test_default_template_with_everything_empty_but_the_link() -> None:
    assert note_content(DEFAULT_NOTE_TEMPLATE, None, "", "https://e.org/") == (
        '<p><a href="https://e.org/">https://e.org/</a></p>'
    )


def test_image_media_type() -> None:
    assert image_media_type("https://e.org/a/b.JPG?x=1.png") == "image/jpeg"
    assert image_media_type("https://e.org/a.svg#frag") == "image/svg+xml"
    assert image_media_type("https://e.org/a.tar.gz") is None
    assert image_media_type("https://e.org/v1.2/image") is None


def test_tombstone() -> None:
    blog, stored = load_case("talkabout-plaedoyer-article")
    deleted = datetime(2026, 11, 29, 8, 0, 0, 123, tzinfo=UTC)
    gone = make_stored(stored.entry, deleted_at=deleted)
    tombstone = build_tombstone(blog, gone, URLS)
    assert tombstone == {
        "id": URLS.article("talkabout", stored.slug),
        "type": "Tombstone",
        "formerType": "Article",
        "deleted": "2026-11-29T08:00:00Z",
    }
    with pytest.raises(ValueError, match="not marked deleted"):
        build_tombstone(blog, stored, URLS)


# --- activities ------------------------------------------------------------------------------


def test_create_activity() -> None:
    blog, stored = load_case("talkabout-plaedoyer-article")
    article = build_object(blog, stored, URLS)
    activity_id = URLS.activity("talkabout", "6f1c2d8e-0000-4000-8000-000000000001")
    create = create_activity(blog, with_context(article), activity_id, URLS)
    assert next(iter(create)) == "@context"
    assert create["@context"] == AS_CONTEXT
    assert create["id"] == activity_id
    assert create["type"] == "Create"
    assert create["actor"] == article["attributedTo"]
    assert create["published"] == article["published"]
    assert create["to"] == article["to"] and create["cc"] == article["cc"]
    assert create["object"] == article  # embedded whole, without a context of its own


def test_update_activity_is_dated_by_the_edit() -> None:
    blog, stored = load_case("edited-entry")
    article = build_object(blog, stored, URLS)
    update = update_activity(blog, article, URLS.activity("testblog", "u1"), URLS)
    assert update["type"] == "Update"
    assert update["published"] == "2026-11-28T14:05:00Z"
    assert update["object"]["updated"] == update["published"]
    never_edited = talkabout("Article")
    update = update_activity(blog, never_edited, URLS.activity("testblog", "u2"), URLS)
    assert update["published"] == never_edited["published"]


def test_delete_activity_wraps_a_tombstone() -> None:
    blog, stored = load_case("talkabout-plaedoyer-note")
    gone = make_stored(stored.entry, deleted_at=datetime(2026, 11, 29, 8, 0, tzinfo=UTC))
    tombstone = build_tombstone(blog, gone, URLS)
    delete = delete_activity(blog, tombstone, URLS.activity("talkabout", "d1"), URLS)
    assert delete["@context"] == AS_CONTEXT
    assert delete["type"] == "Delete"
    assert delete["actor"] == "https://bridge.example/users/talkabout"
    assert delete["to"] == [PUBLIC]
    assert delete["cc"] == ["https://bridge.example/users/talkabout/followers"]
    assert delete["published"] == "2026-11-29T08:00:00Z"
    assert delete["object"] == tombstone
    assert delete["object"]["type"] == "Tombstone"
    assert delete["object"]["formerType"] == "Note"


def test_activities_do_not_share_lists_with_their_object() -> None:
    blog, stored = load_case("talkabout-dialog-article")
    article = build_object(blog, stored, URLS)
    create = create_activity(blog, article, URLS.activity("talkabout", "c1"), URLS)
    create["to"].append("https://elsewhere.example/users/x")
    create["@context"].append("https://example.org/ns")
    assert article["to"] == [PUBLIC]
    assert "https://example.org/ns" not in AS_CONTEXT


# --- JSON-LD context -------------------------------------------------------------------------


def test_context_declares_what_receivers_need() -> None:
    assert AS_CONTEXT[0] == "https://www.w3.org/ns/activitystreams"
    assert "https://w3id.org/security/v1" in AS_CONTEXT
    extensions = AS_CONTEXT[2]
    assert extensions["Hashtag"] == "as:Hashtag"
    assert extensions["sensitive"] == "as:sensitive"
    assert extensions["toot"] == "http://joinmastodon.org/ns#"
    assert extensions["featured"] == {"@id": "toot:featured", "@type": "@id"}
    assert extensions["manuallyApprovesFollowers"] == "as:manuallyApprovesFollowers"


def test_with_context_puts_it_first_and_copies() -> None:
    doc = {"id": "x", "type": "Note", "@context": "old"}
    wrapped = with_context(doc)
    assert list(wrapped) == ["@context", "id", "type"]
    assert wrapped["@context"] == AS_CONTEXT
    assert doc["@context"] == "old"
    wrapped["@context"][2]["injected"] = "yes"
    assert "injected" not in AS_CONTEXT[2]
    assert without_context(wrapped) == {"id": "x", "type": "Note"}


# --- excerpts and hashtags -------------------------------------------------------------------


def test_html_to_text() -> None:
    assert html_to_text("<p>Ende.</p><p>Anfang<br>neu</p>") == "Ende. Anfang neu"
    assert html_to_text("a<script>x()</script>b<style>p{}</style>c") == "abc"
    assert html_to_text("Fish &amp; chips&nbsp;&#8211;\n\t ok") == "Fish & chips – ok"
    assert html_to_text("<p>unclosed <b>bold") == "unclosed bold"


def test_excerpt_cuts_whole_words_within_the_limit() -> None:
    words = " ".join(f"Wort{i}," for i in range(200))
    short = excerpt(f"<p>{words}</p>", limit=60)
    assert len(short) <= 60
    assert short.endswith("…") and not short.endswith(",…")
    assert short.removesuffix("…").split()[-1].startswith("Wort")
    assert words.startswith(short.removesuffix("…"))
    assert excerpt("<p>Kurz.</p>") == "Kurz."
    assert excerpt("x" * 30, limit=10) == "x" * 8 + "…"
    assert excerpt("") == ""


def test_excerpt_turns_publisher_truncation_marks_into_an_ellipsis() -> None:
    assert excerpt("teilnehmen wolle [&#8230;]") == "teilnehmen wolle…"
    assert excerpt("der Dialog. [...]") == "der Dialog. …"
    assert excerpt("[&#8230;]") == ""


def test_decode_character_references_keeps_markup_meaning() -> None:
    source = (
        '<a title="&quot;x&quot;">&#8220;Kern&#8221; &auml; &lt;b&gt; &amp; &#38; &#0; &bogus;</a>'
    )
    assert decode_character_references(source) == (
        '<a title="&quot;x&quot;">“Kern” ä &lt;b&gt; &amp; &#38; &#0; &bogus;</a>'
    )


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("Social Media", "SocialMedia"),
        ("PR", "PR"),
        ("Dialog", "Dialog"),
        ("Öffentlichkeit", "Öffentlichkeit"),
        ("O\u0308ffentlichkeit", "Öffentlichkeit"),
        ("social-media", "socialMedia"),
        ("iPhone tips", "iPhoneTips"),
        ("snake_case", "snake_case"),
        ("l·l", "l·l"),
        ("·edge·", "edge"),
        ("2010", None),
        ("!!!", None),
        ("", None),
    ],
)
def test_hashtag_name(category: str, expected: str | None) -> None:
    assert hashtag_name(category) == expected


def test_hashtag_names_deduplicate_case_insensitively() -> None:
    assert hashtag_names(["Social Media", "social-media", "SOCIAL MEDIA", "PR", "2010"]) == [
        "SocialMedia",
        "PR",
    ]
    assert hashtag_key("#Öffentlichkeit") == hashtag_key("ÖFFENTLICHKEIT")


def test_an_entry_back_from_its_deletion_gets_a_new_slug_each_time() -> None:
    first = entry_slug("https://www.talkabout.de/?p=1")
    second = recreated_slug("https://www.talkabout.de/?p=1", first)
    third = recreated_slug("https://www.talkabout.de/?p=1", second)
    assert len({first, second, third}) == 3
    assert recreated_slug("https://www.talkabout.de/?p=1", first) == second
    assert recreated_slug("https://www.talkabout.de/?p=2", first) != second
    assert all(len(slug) == 20 and slug.isalnum() for slug in (second, third))
