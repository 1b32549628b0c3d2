"""Query plans of the SQLite store's reads on the moderation path (they run on the loop).

Each statement the store runs is explained with its own parameters: an index that grows with
the blog, where one that grows with the author would do, costs milliseconds per reply on a
busy blog and shows in no functional test.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.store.base import NewBlog, NewComment, Person
from bridge.store.sqlite import SQLiteStore

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ANNA = "https://social.example/users/anna"


class Recorder:
    """Stands in for the loop's read-only connection and keeps every statement it runs."""

    def __init__(self, reader: sqlite3.Connection) -> None:
        self.reader = reader
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        self.statements.append((sql, params))
        return self.reader.execute(sql, params)

    def plans(self) -> list[str]:
        """Every step of every recorded statement's plan."""
        return [
            str(step["detail"])
            for sql, params in self.statements
            for step in self.reader.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        ]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(str(tmp_path / "plans.db"))
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


async def _comments(store: SQLiteStore, count: int) -> int:
    """``count`` published comments by others on one blog; the blog's id."""
    blog = await store.add_blog(NewBlog("b", "https://blog.example/feed"), NOW)
    for n in range(count):
        author = f"https://other.example/users/u{n % 7}"
        await store.add_comment(
            NewComment(
                blog_id=blog.id,
                entry_id="https://blog.example/p/1",
                object_id=f"{author}/statuses/{n}",
                parent_id=None,
                author=Person(author, "U", "@u@other.example", author),
                content_html=f"<p>{n}</p>",
                published=NOW,
                state="published",
            ),
            NOW - timedelta(minutes=n),
        )
    return blog.id


async def test_a_first_time_authors_standing_is_looked_up_by_author(store: SQLiteStore) -> None:
    blog_id = await _comments(store, 20)
    assert store._reader is not None
    recorder = Recorder(store._reader)
    store._reader = recorder  # type: ignore[assignment]
    try:
        standing = await store.author_standing(
            ANNA,
            blog_id,
            "https://blog.example/p/1",
            "hash",
            NOW - timedelta(hours=1),
            NOW - timedelta(days=1),
            NOW + timedelta(days=1),
            host="social.example",
            origin="social.example",
            origin_before=NOW,
        )
        assert not await store.author_has_published(blog_id, ANNA)
    finally:
        store._reader = recorder.reader
    assert not standing.published_before
    plans = recorder.plans()
    assert len(recorder.statements) == 2
    # Never the blog's comments (comments_by_blog) to learn about one author.
    assert not [step for step in plans if "comments_by_blog" in step or "SCAN comments" in step]
