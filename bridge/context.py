"""The running bridge's shared resources, handed to every edge that does I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp

from bridge.activitypub.urls import Urls
from bridge.config import Config
from bridge.store.base import Store

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class BridgeContext:
    """Config, store, the one HTTP client session, URL builder and clock of a process."""

    config: Config
    store: Store
    http: aiohttp.ClientSession
    urls: Urls
    clock: Clock = field(default=utc_now)
