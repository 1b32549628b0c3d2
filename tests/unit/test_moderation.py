"""Moderation decisions, on the talkabout comments as the fediverse would send them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.backfeed.comments import author_from_actor, comment_html, note_text, parse_note
from bridge.backfeed.moderation import (
    AuthorFacts,
    Policy,
    Verdict,
    account_age_days,
    is_duplicate,
    moderate,
    normalize_text,
    spam_score,
)
from tests.fakes.remote_notes import (
    DAVID,
    MAURICE,
    MAURICE_LINK,
    SEAN,
    SEBASTIAN,
    SPAM,
    SPAM_LINKS,
    TIMO,
    TIMO_LINK,
    mastodon_actor,
    mastodon_link,
    mastodon_mention,
    talkabout_reply,
)

NOW = datetime(2010, 2, 21, 18, 0, tzinfo=UTC)
DEFAULT = Policy()
# An ordinary person: an account for years, followers, posts; the bridge never saw the server.
ESTABLISHED = AuthorFacts(
    account_age_days=2000, followers_count=120, statuses_count=800, known_domain=False
)
# What a handler knows when the actor document says nothing about age or counts.
UNKNOWN = AuthorFacts()
# Row 3: registered this morning, nobody follows it, this is its first post.
FRESH = AuthorFacts(account_age_days=0.3, followers_count=0, statuses_count=1, known_domain=False)


def reply(host: str, username: str, text: str, *, extra: str = "") -> tuple[str, str]:
    """The plain text and sanitised HTML of a reply, as the inbox handler will have them."""
    note = parse_note(talkabout_reply(host, username, "1", text, extra=extra)["object"])
    return note_text(note), comment_html(note)


ROWS = {
    "row 1 sebastiankeil": reply("social.keil.example", "sebastiankeil", SEBASTIAN),
    "row 2 seankollak": reply("kollak.example", "seankollak", SEAN),
    "row 4 timo": reply("timo.example", "timo", TIMO, extra=f" {mastodon_link(TIMO_LINK)}"),
    "row 5 mauricemorell": reply(
        "morell.example", "mauricemorell", MAURICE, extra=f" {mastodon_link(MAURICE_LINK)}"
    ),
    "row 6 david_philippe": reply("gts.example", "david_philippe", DAVID),
}
SPAM_REPLY = reply(
    "spam.example",
    "cellphonelookup",
    SPAM,
    extra=" ".join(["", *(mastodon_link(link) for link in SPAM_LINKS)]),
)


@pytest.mark.parametrize("row", list(ROWS))
@pytest.mark.parametrize("facts", [ESTABLISHED, UNKNOWN], ids=["established", "unknown"])
def test_people_replying_are_published_under_the_default_policy(
    row: str, facts: AuthorFacts
) -> None:
    text, html = ROWS[row]
    verdict = moderate(text, html, facts, DEFAULT, blocked=False, duplicate=False, now=NOW)
    assert verdict.state == "published", verdict
    assert verdict.score < DEFAULT.hold_threshold


def test_row_1_is_a_first_time_author_and_still_published() -> None:
    text, html = ROWS["row 1 sebastiankeil"]
    assert not ESTABLISHED.previously_approved
    verdict = moderate(text, html, ESTABLISHED, DEFAULT, blocked=False, duplicate=False, now=NOW)
    assert verdict == Verdict("published", 0.15, ("first contact with this server",))


def test_row_3_fresh_account_with_two_off_topic_links_is_spam() -> None:
    text, html = SPAM_REPLY
    assert "cell phone" not in text  # nothing in the words gives it away: the signals do
    verdict = moderate(text, html, FRESH, DEFAULT, blocked=False, duplicate=False, now=NOW)
    assert verdict.state == "spam"
    assert verdict.score >= DEFAULT.spam_threshold
    assert verdict.reasons == (
        "account less than a day old",
        "no followers",
        "no earlier posts",
        "first contact with this server",
        "2 links",
    )


def test_row_3_from_a_few_days_old_account_is_still_held() -> None:
    text, html = SPAM_REPLY
    facts = AuthorFacts(account_age_days=3, followers_count=0, statuses_count=1)
    verdict = moderate(text, html, facts, DEFAULT, blocked=False, duplicate=False, now=NOW)
    assert verdict.state == "held"
    assert verdict.reasons[0] == f"spam score {verdict.score:g}"


def test_row_2_the_same_text_again_40_seconds_later_is_a_duplicate() -> None:
    text, html = ROWS["row 2 seankollak"]
    first_at = NOW - timedelta(seconds=40)
    duplicate = is_duplicate(text, [(text, first_at)], NOW, DEFAULT.duplicate_window)
    assert duplicate
    verdict = moderate(
        text, html, ESTABLISHED, DEFAULT, blocked=False, duplicate=duplicate, now=NOW
    )
    assert verdict.state == "duplicate"
    assert verdict.reasons[0] == "same text by the same author"


def test_duplicates_compare_normalised_text_within_the_window() -> None:
    earlier = "Sehr guter Artikel.  Habe gerade …"
    recent = [(earlier, NOW - timedelta(hours=2))]
    assert is_duplicate("sehr guter artikel habe gerade", recent, NOW, 86_400)
    assert is_duplicate("ＳＥＨＲ guter Artikel!! Habe\u200b gerade", recent, NOW, 86_400)
    assert not is_duplicate("Sehr guter Artikel. Habe gerade gelesen", recent, NOW, 86_400)
    assert not is_duplicate(earlier, recent, NOW, 3_600)
    assert not is_duplicate(earlier, [], NOW, 86_400)
    # Image-only replies have no words to compare.
    assert not is_duplicate("", [("", NOW)], NOW, 86_400)
    assert normalize_text("  Schön, wärs!  ") == "schön wärs"


def test_blocked_authors_are_rejected_before_anything_else() -> None:
    text, html = ROWS["row 1 sebastiankeil"]
    verdict = moderate(text, html, ESTABLISHED, DEFAULT, blocked=True, duplicate=True, now=NOW)
    assert verdict == Verdict("rejected", 0.0, ("author or server blocked",))


def test_hold_first_time_holds_newcomers_and_publishes_known_authors() -> None:
    text, html = ROWS["row 1 sebastiankeil"]
    policy = Policy(mode="hold_first_time")
    first = moderate(text, html, ESTABLISHED, policy, blocked=False, duplicate=False, now=NOW)
    assert first.state == "held"
    assert first.reasons[0] == "first comment by this author"
    known = AuthorFacts(account_age_days=2000, previously_approved=True, known_domain=True)
    again = moderate(text, html, known, policy, blocked=False, duplicate=False, now=NOW)
    assert again.state == "published"


def test_hold_all_holds_even_known_authors() -> None:
    text, html = ROWS["row 6 david_philippe"]
    known = AuthorFacts(previously_approved=True, known_domain=True)
    verdict = moderate(
        text, html, known, Policy(mode="hold_all"), blocked=False, duplicate=False, now=NOW
    )
    assert verdict.state == "held"
    assert verdict.reasons[0] == "the blog holds all comments"


def test_a_limited_server_holds_its_comments() -> None:
    text, html = ROWS["row 6 david_philippe"]
    verdict = moderate(
        text, html, ESTABLISHED, DEFAULT, blocked=False, duplicate=False, now=NOW, limited=True
    )
    assert verdict.state == "held"
    assert "server limited by the operator" in verdict.reasons


def test_account_signals_alone_never_make_spam() -> None:
    text, html = ROWS["row 6 david_philippe"]  # no links
    verdict = moderate(text, html, FRESH, DEFAULT, blocked=False, duplicate=False, now=NOW)
    assert verdict.state == "held"
    assert DEFAULT.hold_threshold <= verdict.score < DEFAULT.spam_threshold


def test_an_author_approved_before_is_trusted_with_links() -> None:
    text, html = SPAM_REPLY
    facts = AuthorFacts(account_age_days=3, followers_count=0, previously_approved=True)
    verdict = moderate(text, html, facts, DEFAULT, blocked=False, duplicate=False, now=NOW)
    assert verdict.state == "published"
    assert "comments approved before" in verdict.reasons


def test_too_many_links_and_link_heavy_text() -> None:
    links = " ".join(mastodon_link(f"https://shop{i}.example/") for i in range(4))
    score, reasons = spam_score("kaufen", f"<p>kaufen {links}</p>", ESTABLISHED, DEFAULT, now=NOW)
    assert reasons == [
        "first contact with this server",
        "4 links (more than 3)",
        "1 words for 4 links",
    ]
    assert score == pytest.approx(0.15 + 0.6 + 0.2)


def test_mentions_and_hashtags_are_not_links_but_mass_mentions_count() -> None:
    mentions = " ".join(mastodon_mention(f"https://m{i}.example/@u", f"u{i}") for i in range(6))
    hashtag = '<a href="https://m.example/tags/x" class="mention hashtag">#x</a>'
    score, reasons = spam_score(
        "hallo zusammen", f"<p>{mentions} {hashtag} hallo</p>", ESTABLISHED, DEFAULT, now=NOW
    )
    assert reasons == ["first contact with this server", "6 accounts mentioned"]
    assert score == pytest.approx(0.15 + 0.4)


def test_keywords_match_whole_words_ignoring_case_and_width() -> None:
    policy = Policy(keywords=("casino", "cell phone lookup"))
    facts = AuthorFacts(known_domain=True)
    for text, expected in [
        ("Best CASINO bonus", ["keyword 'casino'"]),
        ("ｃａｓｉｎｏ night", ["keyword 'casino'"]),
        ("Free Cell Phone LOOKUP here", ["keyword 'cell phone lookup'"]),
        ("free cell\n phone  lookup", ["keyword 'cell phone lookup'"]),
        ("casinos and occasional", []),
    ]:
        score, reasons = spam_score(text, f"<p>{text}</p>", facts, policy, now=NOW)
        assert reasons == expected, text
        assert score == pytest.approx(0.6 if expected else 0.0)
    text = "Best casino"
    verdict = moderate(text, text, facts, policy, blocked=False, duplicate=False, now=NOW)
    assert verdict.state == "held"


def test_flooding_from_the_rate_limit_on() -> None:
    # Which comments fall in the last hour is the store's count (the backfeed contract).
    policy = Policy(rate_limit=3)
    facts = AuthorFacts(recent_comments=3, known_domain=True)
    score, reasons = spam_score("hallo", "<p>hallo</p>", facts, policy, now=NOW)
    assert reasons == ["3 comments in the last hour (limit 3)"]
    assert score == pytest.approx(0.6)
    quiet = AuthorFacts(recent_comments=2, known_domain=True)
    assert spam_score("hallo", "<p>hallo</p>", quiet, policy, now=NOW) == (0.0, [])


def test_account_age_from_the_actor_document() -> None:
    author = author_from_actor(
        mastodon_actor("m.example", "a", "A", published="2010-02-21T00:00:00Z")
    )
    assert account_age_days(author.published, NOW) == pytest.approx(0.75)
    assert account_age_days(None, NOW) is None
    assert account_age_days(NOW + timedelta(days=3), NOW) == 0.0
