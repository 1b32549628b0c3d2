"""Walking reply threads across servers: up a chain of ``inReplyTo``, down ``replies``
collections and through FEP-7888 ``context`` collections; bounded and cycle-safe.

A reply reaches the bridge only if its author's server delivers it here: a reply to a reply
usually goes to the parent's author and the replier's followers, not to the blog. So the
bridge fetches what is missing: when a note answers an unknown remote note, :func:`walk_up`
fetches each parent until it meets something known (one of our posts, a stored comment);
``feedfed threads refresh`` walks down from what is known with :func:`walk_down`.

The walks do no I/O of their own: they are given a ``fetch`` (the guarded client, signed as
the instance actor, in the bridge) and an ``is_known`` test, so they are tested with plain
dictionaries. Fetch errors are not caught in :func:`walk_up` (the caller decides whether a
broken chain is worth a retry); :func:`walk_down` records them per source and goes on with
the others, since every source is optional.

Trust: a fetched document's id is the URL it came from (the guarded client checks it). An
object embedded in a collection page is used as it is only when it lives on the page's own
origin; an object of another origin is fetched from that origin by its id.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from yarl import URL

from bridge.backfeed.comments import NOTE_TYPES
from bridge.errors import RemoteFetchError

Fetch = Callable[[str], Awaitable[Mapping[str, Any]]]
"""GET an ActivityStreams document by its id (raises ``RemoteFetchError``)."""

IsKnown = Callable[[str], Awaitable[bool]]
"""Whether an object id is already in the thread (one of our posts, a stored comment)."""

COLLECTION_TYPES: Final = frozenset(
    {"Collection", "OrderedCollection", "CollectionPage", "OrderedCollectionPage"}
)


@dataclass(frozen=True)
class WalkLimits:
    """Bounds of one walk."""

    max_depth: int = 20
    """Parents fetched going up; reply levels followed going down."""
    max_items: int = 200
    """Documents fetched or notes taken in all, per walk."""
    max_pages: int = 10
    """Pages read per collection."""


@dataclass(frozen=True)
class Chain:
    """The result of :func:`walk_up`.

    ``anchor`` is the known object the chain ends on (None when it reached none);
    ``notes`` are the fetched notes between it and the start, the one nearest the anchor
    first, so storing them in order threads each under its parent.
    """

    anchor: str | None
    notes: tuple[Mapping[str, Any], ...]
    reason: str


@dataclass
class ThreadWalk:
    """The result of :func:`walk_down`: notes found (parents before their replies) and the
    sources that could not be read, each with why."""

    notes: list[Mapping[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def walk_up(
    parent_id: str, fetch: Fetch, is_known: IsKnown, limits: WalkLimits = WalkLimits()
) -> Chain:
    """Fetch the chain of parents from ``parent_id`` up to the first known object.

    Stops at a known object (``anchor`` set), at a note that answers nothing, at an object
    that is no note, at a cycle, or after ``limits.max_depth`` fetches.
    """
    chain: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    current: str | None = parent_id
    while current is not None:
        if await is_known(current):
            return Chain(current, tuple(reversed(chain)), "reached a known object")
        if current in seen:
            return Chain(None, (), f"the chain loops at {current[:200]}")
        if len(chain) >= min(limits.max_depth, limits.max_items):
            return Chain(None, (), f"no known object within {len(chain)} parents")
        seen.add(current)
        document = await fetch(current)
        if not is_note(document):
            return Chain(None, (), f"{current[:200]} is no note")
        chain.append(document)
        current = first_id(document.get("inReplyTo"))
    return Chain(None, (), "the chain's top answers nothing of ours")


async def walk_down(
    notes: Iterable[Mapping[str, Any]],
    fetch: Fetch,
    limits: WalkLimits = WalkLimits(),
    *,
    contexts: Iterable[str] = (),
) -> ThreadWalk:
    """The replies below ``notes`` (breadth first, so parents come before their replies),
    through each note's ``replies`` collection and the FEP-7888 ``contexts`` given.

    Notes already in ``notes`` are not returned again. At most ``limits.max_items``
    documents are fetched in all, replies are followed ``limits.max_depth`` levels down.
    """
    walk = ThreadWalk()
    seen: set[str] = set()
    budget = _Budget(limits.max_items)
    queue: deque[tuple[Mapping[str, Any], int]] = deque()
    for note in notes:
        note_id = first_id(note)
        if note_id is not None and note_id not in seen:
            seen.add(note_id)
            queue.append((note, 0))

    def take(found: Mapping[str, Any], level: int) -> None:
        found_id = first_id(found)
        if found_id is None or found_id in seen or not is_note(found):
            return
        seen.add(found_id)
        walk.notes.append(found)
        queue.append((found, level))

    for context in contexts:
        if not _is_http(context):
            continue  # Mastodon's ``tag:`` conversation URIs name no collection
        async for item in _resolved_items(context, fetch, limits, budget, walk.problems):
            take(item, 1)
    while queue:
        note, level = queue.popleft()
        replies = note.get("replies")
        if level >= limits.max_depth or replies is None:
            continue
        async for item in _resolved_items(replies, fetch, limits, budget, walk.problems):
            take(item, level + 1)
    return walk


def is_note(document: Mapping[str, Any]) -> bool:
    """Whether a document is of a type that becomes a comment."""
    kinds = document.get("type")
    return any(kind in NOTE_TYPES for kind in (kinds if isinstance(kinds, list) else [kinds]))


def first_id(value: Any) -> str | None:
    """The id of a reference (a string, an object with ``id``, or a list of them)."""
    for item in value if isinstance(value, list) else [value]:
        found = item.get("id") if isinstance(item, Mapping) else item
        if isinstance(found, str) and _is_http(found):
            return found
    return None


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port."""
    try:
        first, second = URL(a), URL(b)
    except (TypeError, ValueError):
        return False
    return (first.scheme, (first.raw_host or "").lower(), first.port) == (
        second.scheme,
        (second.raw_host or "").lower(),
        second.port,
    )


class _Budget:
    """Fetches left for one walk."""

    def __init__(self, left: int) -> None:
        self.left = left

    def spend(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def _resolved_items(
    source: Any,
    fetch: Fetch,
    limits: WalkLimits,
    budget: _Budget,
    problems: list[str],
) -> AsyncIterator[Mapping[str, Any]]:
    """The notes of a collection (given by URL or embedded), each resolved to a document
    its own origin vouches for. Activities wrapping a note (FEP-7888 allows ``Create``) are
    unwrapped."""
    async for item, page_url in _items(source, fetch, limits, budget, problems):
        if isinstance(item, Mapping) and item.get("type") == "Create":
            item = item.get("object")
        item_id = first_id(item)
        if item_id is None:
            continue
        if isinstance(item, Mapping) and page_url and same_origin(item_id, page_url):
            yield item
            continue
        if not budget.spend():
            problems.append(f"fetch budget spent before {item_id[:200]}")
            return
        try:
            yield await fetch(item_id)
        except RemoteFetchError as error:
            problems.append(f"{item_id[:200]}: {error}")


async def _items(
    source: Any,
    fetch: Fetch,
    limits: WalkLimits,
    budget: _Budget,
    problems: list[str],
) -> AsyncIterator[tuple[Any, str | None]]:
    """Every item of a collection and the URL of the page it was on (None: embedded in a
    document we hold, which vouches for it only when the item shares the note's origin)."""
    page: Any = source
    page_url: str | None = None
    seen_pages: set[str] = set()
    for _ in range(limits.max_pages + 1):
        if isinstance(page, str):
            if page in seen_pages or not budget.spend():
                return
            seen_pages.add(page)
            try:
                page = await fetch(page)
            except RemoteFetchError as error:
                problems.append(f"{str(page)[:200]}: {error}")
                return
            page_url = first_id(page)
        if not isinstance(page, Mapping):
            return
        kinds = page.get("type")
        if not any(k in COLLECTION_TYPES for k in (kinds if isinstance(kinds, list) else [kinds])):
            return
        for key in ("orderedItems", "items"):
            values = page.get(key)
            for item in values if isinstance(values, list) else [values] if values else []:
                yield item, page_url
        following = page.get("next") if "first" not in page else page.get("first")
        if isinstance(following, Mapping):
            # An embedded page (Mastodon embeds ``first``) is the holder's own word.
            page = following
            continue
        page = first_id(following)
        if page is None:
            return


def _is_http(value: str) -> bool:
    return value.startswith(("https://", "http://"))
