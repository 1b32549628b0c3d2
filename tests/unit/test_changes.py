"""Change detection between stored and parsed entries."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bridge.entries import FeedEntry, Image
from bridge.ingest.changes import diff_entries, unique_entries
from bridge.store.base import StoredEntry

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def entry(n: int, **changes: object) -> FeedEntry:
    base = FeedEntry(
        id=f"https://blog.test/?p={n}",
        link=f"https://blog.test/post-{n}/",
        title=f"Post {n}",
        content_html=f"<p>Text {n}</p>",
        published=T0 - timedelta(days=n),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def stored(e: FeedEntry, *, in_feed: bool = True, deleted: bool = False) -> StoredEntry:
    return StoredEntry(
        blog_id=1,
        slug=f"slug{e.id[-1]}",
        entry=e,
        content_hash=e.content_hash(),
        first_seen_at=T0,
        changed_at=T0,
        in_feed=in_feed,
        deleted_at=T0 if deleted else None,
    )


def by_id(*items: StoredEntry) -> dict[str, StoredEntry]:
    return {s.entry_id: s for s in items}


def test_first_poll_everything_is_new_oldest_first() -> None:
    changes = diff_entries({}, [entry(1), entry(3), entry(2)])
    assert [e.id for e in changes.new] == [entry(3).id, entry(2).id, entry(1).id]
    assert not changes.edited and not changes.vanished and not changes.recreated


def test_undated_entries_keep_reading_order() -> None:
    items = [entry(n, published=None) for n in (1, 2, 3)]  # feed order: newest first
    changes = diff_entries({}, items)
    assert [e.id for e in changes.new] == [entry(3).id, entry(2).id, entry(1).id]


def test_unchanged_feed_is_empty() -> None:
    items = [entry(1), entry(2)]
    changes = diff_entries(by_id(*map(stored, items)), items)
    assert changes.is_empty
    assert [e.id for e in changes.unchanged] == [e.id for e in items]


def test_new_entry_among_known_ones() -> None:
    known = by_id(stored(entry(2)), stored(entry(3)))
    changes = diff_entries(known, [entry(1), entry(2), entry(3)])
    assert [e.id for e in changes.new] == [entry(1).id]
    assert not changes.edited and not changes.vanished


def test_content_edit_is_detected() -> None:
    known = by_id(stored(entry(1)), stored(entry(2)))
    edited = entry(1, content_html="<p>Corrected text</p>")
    changes = diff_entries(known, [edited, entry(2)])
    assert [(old.entry_id, new.content_html) for old, new in changes.edited] == [
        (entry(1).id, "<p>Corrected text</p>")
    ]
    assert not changes.new


def test_title_category_and_image_edits_count() -> None:
    for change in (
        {"title": "New title"},
        {"categories": ("PR",)},
        {"images": (Image(url="https://blog.test/a.jpg"),)},
    ):
        changes = diff_entries(by_id(stored(entry(1))), [entry(1, **change)])
        assert len(changes.edited) == 1, change


def test_timestamp_only_changes_are_not_edits() -> None:
    bumped = entry(1, updated=T0 + timedelta(hours=3), published=T0 + timedelta(hours=1))
    changes = diff_entries(by_id(stored(entry(1))), [bumped])
    assert changes.is_empty


def test_reordered_feed_produces_no_change() -> None:
    items = [entry(n) for n in range(1, 8)]
    known = by_id(*map(stored, items))
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    assert diff_entries(known, shuffled).is_empty


def test_repeated_entry_counts_once() -> None:
    changes = diff_entries({}, [entry(1), entry(2), entry(1)])
    assert sorted(e.id for e in changes.new) == sorted([entry(1).id, entry(2).id])
    known = by_id(stored(entry(1)), stored(entry(2)))
    assert diff_entries(known, [entry(1), entry(1), entry(2)]).is_empty


def test_duplicate_versions_resolve_independently_of_order() -> None:
    older = entry(1, content_html="<p>first</p>", updated=T0)
    newer = entry(1, content_html="<p>second</p>", updated=T0 + timedelta(minutes=5))
    assert unique_entries([older, newer]) == [newer]
    assert unique_entries([newer, older]) == [newer]
    same_date_a = entry(1, content_html="<p>a</p>")
    same_date_b = entry(1, content_html="<p>b</p>")
    assert unique_entries([same_date_a, same_date_b]) == unique_entries([same_date_b, same_date_a])
    known = by_id(stored(newer))
    assert diff_entries(known, [older, newer]).is_empty
    assert diff_entries(known, [newer, older]).is_empty


def test_vanished_entries_are_those_that_were_in_the_feed() -> None:
    known = by_id(
        stored(entry(1)),
        stored(entry(2)),
        stored(entry(3), in_feed=False),  # left the window earlier: not vanished again
        stored(entry(4), deleted=True),  # already deleted
    )
    changes = diff_entries(known, [entry(1)])
    assert [s.entry_id for s in changes.vanished] == [entry(2).id]


def test_vanishing_can_be_switched_off_for_partial_documents() -> None:
    known = by_id(stored(entry(1)), stored(entry(2)))
    changes = diff_entries(known, [entry(0)], detect_vanished=False)
    assert not changes.vanished
    assert [e.id for e in changes.new] == [entry(0).id]


def test_deleted_entry_that_reappears_is_recreated() -> None:
    known = by_id(stored(entry(1), deleted=True), stored(entry(2)))
    changes = diff_entries(known, [entry(1), entry(2)])
    assert [e.id for e in changes.new] == [entry(1).id]
    assert changes.recreated == frozenset({entry(1).id})
    assert not changes.edited


def test_entry_back_in_the_feed_is_returned_not_new() -> None:
    known = by_id(stored(entry(1), in_feed=False))
    changes = diff_entries(known, [entry(1)])
    assert changes.returned == (entry(1).id,)
    assert not changes.new and not changes.edited
    assert not changes.is_empty


def test_edited_entry_back_in_the_feed_is_an_edit() -> None:
    known = by_id(stored(entry(1), in_feed=False))
    changes = diff_entries(known, [entry(1, title="Changed")])
    assert len(changes.edited) == 1
    assert not changes.returned


def test_empty_feed_makes_every_listed_entry_vanish() -> None:
    known = by_id(stored(entry(1)), stored(entry(2)))
    changes = diff_entries(known, [])
    assert {s.entry_id for s in changes.vanished} == {entry(1).id, entry(2).id}
