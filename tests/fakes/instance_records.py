"""What the fake instances record: each request answered, the verdict on its signature, counts.

Counters are kept as requests arrive, so a test waiting for 2,000 deliveries does not rescan
them all on every arrival; waits fail with an :class:`AssertionError` naming what did come.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict

from tests.fakes.httpsig import parse_params


def id_of(value: Any) -> str | None:
    """The id of a reference that is either a URL string or an embedded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one request's signature."""

    ok: bool
    reason: str
    scheme: str | None = None  # "cavage" or "rfc9421"
    key_id: str | None = None


UNCHECKED = Verdict(False, "not checked")


@dataclass(frozen=True)
class Received:
    """One request an instance answered: what came, the verdict on it, our status."""

    host: str
    method: str
    url: str  # base + path: for a POST, the inbox URL
    headers: CIMultiDict[str]
    body: bytes
    document: Any  # the parsed JSON body; None when there was none or it was no JSON
    verdict: Verdict
    status: int

    @property
    def delivered(self) -> bool:
        """Whether the instance took it (2xx)."""
        return 200 <= self.status < 300

    @property
    def activity(self) -> dict[str, Any]:
        """The JSON object received ({} when the body was no object)."""
        return self.document if isinstance(self.document, dict) else {}

    @property
    def activity_id(self) -> str | None:
        """The activity's ``id``."""
        return id_of(self.activity)

    @property
    def type(self) -> str | None:
        """The activity's ``type``."""
        kind = self.activity.get("type")
        return kind if isinstance(kind, str) else None

    @property
    def sync(self) -> dict[str, str] | None:
        """The FEP-8fcf ``Collection-Synchronization`` parameters, if sent."""
        value = self.headers.get("Collection-Synchronization")
        return parse_params(value) if value is not None else None


class Log:
    """Requests answered, counted as they arrive, with waits on them."""

    def __init__(self) -> None:
        self.entries: list[Received] = []
        self.by_inbox: Counter[str] = Counter()  # inbox URL -> POSTs taken
        self.by_host: Counter[str] = Counter()  # host name -> POSTs taken
        self.copies: Counter[tuple[str, str]] = Counter()  # (inbox URL, activity id) -> taken
        self._waiters: list[asyncio.Future[None]] = []

    def add(self, entry: Received) -> None:
        """Record ``entry`` and wake whoever waits."""
        self.entries.append(entry)
        if entry.delivered:
            self.by_inbox[entry.url] += 1
            self.by_host[entry.host] += 1
            if entry.activity_id is not None:
                self.copies[(entry.url, entry.activity_id)] += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def deliveries(self) -> list[Received]:
        """The POSTs that were taken (2xx)."""
        return [entry for entry in self.entries if entry.delivered]

    def activities_of_type(self, kind: str) -> list[dict[str, Any]]:
        """The activities of type ``kind`` that were taken."""
        return [entry.activity for entry in self.entries if entry.delivered and entry.type == kind]

    def duplicates(self) -> dict[tuple[str, str], int]:
        """(inbox URL, activity id) pairs taken more than once, with their counts."""
        return {pair: count for pair, count in self.copies.items() if count > 1}

    async def wait_for(
        self, predicate: Callable[[Received], bool], timeout: float = 10
    ) -> Received:
        """The first entry matching ``predicate``: one already there, or the next to come."""
        seen = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for entry in self.entries[seen:]:
                        if predicate(entry):
                            return entry
                    seen = len(self.entries)
                    await self._changed()
        except TimeoutError:
            raise AssertionError(f"nothing matched in {timeout}s; {self.summary()}") from None

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        """Return once ``condition()`` holds, checked again after each new entry."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    await self._changed()
        except TimeoutError:
            raise AssertionError(f"condition unmet in {timeout}s; {self.summary()}") from None

    def summary(self) -> str:
        """How many requests came, and the last few (for failure messages)."""
        last = [(e.url, e.type, e.status, e.verdict.reason) for e in self.entries[-5:]]
        return f"{len(self.entries)} requests came, the last {last}"

    async def _changed(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter
