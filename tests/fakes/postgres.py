"""A throwaway PostgreSQL schema per test, on the server named by FEEDFED_TEST_POSTGRES_URL.

Outside CI the PostgreSQL tests skip when the variable is unset; with ``CI=true`` they fail
instead, so a CI run can never pass without having exercised the PostgreSQL backend.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from bridge.store.postgres import PostgresStore

ENV = "FEEDFED_TEST_POSTGRES_URL"
EXAMPLE = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The test server's URL; skips the test when unset (fails it under ``CI=true``)."""
    url = os.environ.get(ENV, "").strip()
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{ENV} is unset but CI=true: the PostgreSQL tests must run in CI")
    pytest.skip(f"PostgreSQL tests need {ENV} (e.g. {EXAMPLE})")


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``search_path`` set to ``schema`` (asyncpg passes it as a setting)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """Create ``feedfed_test_<random>``, yield a URL whose search_path is it, drop it after."""
    schema = f"feedfed_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield with_search_path(url, schema)
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[PostgresStore]:
    """A PostgreSQL store on ``url`` (a :func:`fresh_schema` URL), migrated, closed after."""
    store = await PostgresStore.open(url)
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()
