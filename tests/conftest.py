"""Shared fixtures: real SQLite files, real aiohttp servers on 127.0.0.1, loopback-only HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.activitypub.addresses import AddressPolicy, open_remote_session
from bridge.activitypub.urls import Urls
from bridge.config import Config, build_config
from bridge.context import BridgeContext
from bridge.store.sqlite import SQLiteStore
from tests.fakes.resolver import MappingResolver

DATA = Path(__file__).resolve().parent / "data"
# A copy of shared/fixtures/talkabout, so the suite runs from any clone.
TALKABOUT = DATA / "talkabout"


@pytest.fixture
def resolver() -> MappingResolver:
    """Maps test host names to loopback and refuses every other name.

    Fake instances add their names (``resolver.names["alice.test"] = ("127.0.0.1",)``); a
    test that tries to reach the internet fails instead.
    """
    return MappingResolver({"localhost": "127.0.0.1"})


@pytest.fixture
async def http(resolver: MappingResolver) -> AsyncIterator[aiohttp.ClientSession]:
    """The operator-trusted client session, able to reach loopback only."""
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


@pytest.fixture
async def remote(resolver: MappingResolver) -> AsyncIterator[aiohttp.ClientSession]:
    """The guarded session for remote parties; loopback allowed, names only via ``resolver``."""
    async with open_remote_session(
        AddressPolicy(allow_private=True), user_agent="feedfed-test", resolver=resolver
    ) as session:
        yield session


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """Start an aiohttp app on 127.0.0.1 (ephemeral port); returns its base URL."""
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """A migrated SQLite store in a fresh file."""
    store = await SQLiteStore.open(str(tmp_path / "feedfed.db"))
    await store.migrate()
    yield store
    await store.close()


def make_config(base_url: str = "http://127.0.0.1:8080", **raw: Any) -> Config:
    """A validated config for tests (``raw`` holds TOML-shaped tables)."""
    raw.setdefault("server", {})
    raw["server"] = {"base_url": base_url, **raw["server"]}
    return build_config(raw, env={})


class FakeClock:
    """A settable UTC clock."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def ctx(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    remote: aiohttp.ClientSession,
    clock: FakeClock,
) -> BridgeContext:
    """A bridge context on a fresh SQLite store, loopback-only HTTP and a fake clock."""
    config = make_config()
    return BridgeContext(
        config=config,
        store=sqlite_store,
        http=http,
        remote=remote,
        urls=Urls(config.base_url),
        clock=clock,
    )
