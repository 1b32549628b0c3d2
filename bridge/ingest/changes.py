"""What a feed document changed, compared with what the store holds. Pure.

Entries are matched by their stable id. A change is a difference in
:meth:`~bridge.entries.FeedEntry.content_hash` (what a reader sees), so a feed that merely
reorders its items, repeats one, or bumps a timestamp produces no change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.entries import FeedEntry
from bridge.store.base import StoredEntry

_NO_DATE = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FeedChanges:
    """The outcome of comparing a parsed feed with the stored entries.

    ``new`` holds entries never seen before and entries the publisher had deleted that are back
    (their ids are also in ``recreated``), oldest first so activities are recorded in reading
    order. ``edited`` pairs each stored entry with its new version. ``unchanged`` entries need
    nothing, except those in ``returned``: they had dropped out of the feed and are listed again.
    ``vanished`` entries were in the feed last time and are absent now: deleted by the publisher,
    or just pushed out of the feed's window (the caller asks the web which).
    """

    new: tuple[FeedEntry, ...] = ()
    recreated: frozenset[str] = frozenset()
    edited: tuple[tuple[StoredEntry, FeedEntry], ...] = ()
    unchanged: tuple[FeedEntry, ...] = ()
    returned: tuple[str, ...] = ()
    vanished: tuple[StoredEntry, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing needs to be written."""
        return not (self.new or self.edited or self.returned or self.vanished)


def unique_entries(entries: Iterable[FeedEntry]) -> list[FeedEntry]:
    """One entry per id, in first-seen order.

    When a feed lists an id twice, the version with the latest date wins and, among equals, the
    one with the greater content hash: the choice never depends on the order of the items, so
    shuffling a feed cannot flip an entry between two versions.
    """
    chosen: dict[str, FeedEntry] = {}
    for entry in entries:
        current = chosen.get(entry.id)
        if current is None or _rank(entry) > _rank(current):
            chosen[entry.id] = entry
    return list(chosen.values())


def diff_entries(
    stored: Mapping[str, StoredEntry], parsed: Sequence[FeedEntry], *, detect_vanished: bool = True
) -> FeedChanges:
    """Compare a feed's entries with the stored ones.

    ``stored`` must hold, keyed by entry id, every stored entry whose id is in ``parsed`` and
    every entry that was in the feed at the last poll (deleted ones included); extra stored
    entries are harmless. With ``detect_vanished=False`` (a partial document, such as a WebSub
    push that carries only new items) nothing counts as vanished.
    """
    entries = unique_entries(parsed)
    new: list[FeedEntry] = []
    recreated: set[str] = set()
    edited: list[tuple[StoredEntry, FeedEntry]] = []
    unchanged: list[FeedEntry] = []
    returned: list[str] = []
    for entry in entries:
        known = stored.get(entry.id)
        if known is None:
            new.append(entry)
        elif known.deleted_at is not None:
            new.append(entry)
            recreated.add(entry.id)
        elif known.content_hash != entry.content_hash():
            edited.append((known, entry))
        else:
            unchanged.append(entry)
            if not known.in_feed:
                returned.append(entry.id)
    present = {entry.id for entry in entries}
    vanished = (
        [
            known
            for entry_id, known in stored.items()
            if known.in_feed and known.deleted_at is None and entry_id not in present
        ]
        if detect_vanished
        else []
    )
    return FeedChanges(
        new=tuple(_oldest_first(new)),
        recreated=frozenset(recreated),
        edited=tuple(edited),
        unchanged=tuple(unchanged),
        returned=tuple(returned),
        vanished=tuple(sorted(vanished, key=lambda s: s.entry_id)),
    )


def _oldest_first(entries: list[FeedEntry]) -> list[FeedEntry]:
    # Feeds list newest first; reversing keeps undated entries in reading order, and the
    # stable sort then puts dated ones by date.
    return sorted(reversed(entries), key=lambda e: _aware(e.published) or _NO_DATE)


def _rank(entry: FeedEntry) -> tuple[datetime, str]:
    date = _aware(entry.updated) or _aware(entry.published) or _NO_DATE
    return date, entry.content_hash()


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
