"""``feedfed db copy``: a filled SQLite bridge moves to PostgreSQL (and back) whole.

Real stores on both sides: a SQLite file holding the talkabout feed's entries and a row in
every table, and a fresh PostgreSQL schema per test (FEEDFED_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.activitypub.urls import entry_slug
from bridge.commands import db
from bridge.entries import FeedEntry
from bridge.errors import StoreError
from bridge.ingest.parse import parse_feed
from bridge.store import open_store
from bridge.store.base import (
    BlogSettings,
    FeedState,
    Follower,
    KeyPair,
    NewActivity,
    NewBlog,
    NewComment,
    NewInbound,
    NewJob,
    NewReaction,
    Person,
    RemoteActor,
    RemoteKey,
    Store,
    WebSubSubscription,
)
from bridge.store.copy import TableReport, TextProgress, copy_store
from bridge.store.roles_sinks import SinkItemUpdate
from bridge.store.schema import MIGRATIONS
from bridge.store.sqlite import SQLiteStore
from bridge.store.tables import TABLES
from tests.conftest import TALKABOUT
from tests.fakes.postgres import fresh_schema, postgres_url

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


async def fill(store: Store) -> None:
    """A bridge with history: every table holds rows, values of every kind."""
    parsed = parse_feed((TALKABOUT / "feed.rss").read_bytes(), url="https://www.talkabout.de/feed/")
    settings = BlogSettings(object_type="Note", display_name="talkabout – Grüße", summary="PR")
    talk = await store.add_blog(
        NewBlog("talkabout", "https://www.talkabout.de/feed/", settings), T0
    )
    other = await store.add_blog(NewBlog("zweit", "https://z.example/feed", from_config=True), T0)
    await store.update_blog_meta(talk.id, parsed.meta)
    await store.update_feed_state(
        talk.id,
        FeedState("ok", '"e1"', "Sun, 21 Feb 2010 16:53:00 GMT", T0, T0, T0, 600, 0, None, True),
    )
    for n, entry in enumerate(parsed.entries):
        await store.save_entry(talk.id, entry, entry_slug(entry.id), T0 + timedelta(minutes=n))
        await store.add_activity(
            NewActivity(talk.id, f"https://b.test/a/{n}", "Create", entry.id, {"n": n}, n % 2 == 1),
            T0,
        )
    for n in range(9):
        published = None if n % 3 == 0 else T0 - timedelta(days=n)
        entry = FeedEntry(f"https://z.example/?p={n}", title=f"Nr. {n} – „Ä“", published=published)
        await store.save_entry(other.id, entry, entry_slug(entry.id), T0)
    first = parsed.entries[0]
    await store.mark_entry_deleted(talk.id, first.id, T0 + timedelta(days=1))
    await store.set_in_feed(talk.id, [parsed.entries[1].id], False)
    for blog in (talk, other):
        await store.put_keypair_if_absent(KeyPair(blog.handle, "PRIV", "PUB", T0))
        for name in ("anna", "björn", "carl"):
            actor = f"https://m{len(name)}.example/users/{name}"
            await store.put_follower(
                Follower(blog.id, actor, f"{actor}/inbox", None, "accepted", T0, f"{actor}#f")
            )
    await store.put_follower(
        Follower(talk.id, "https://p.example/u/d", "https://p.example/i", None, "pending", T0)
    )
    await store.put_websub(
        WebSubSubscription(
            talk.id, "https://hub.example/", talk.feed_url, "s", "active", T0, None, T0
        )
    )
    await store.enqueue(
        [
            NewJob(
                "deliver", {"to": f"https://h{n}.example/inbox", "ä": "ö"}, f"d{n}", f"h{n}.example"
            )
            for n in range(7)
        ]
        + [NewJob("fanout", {"seq": 1})],
        T0,
    )
    running = await store.claim_jobs(["deliver"], T0, 3, 300, "worker-1")
    await store.finish_job(running[0].id, T0, 202)
    await store.bury_job(running[1].id, T0, 410, "Gone")
    await store.retry_job(running[2].id, T0, T0 + timedelta(hours=1), 503, "busy")
    await store.claim_jobs(["deliver"], T0, 1, 300, "worker-2")
    await store.record_host_failure("h1.example", T0)
    await store.mark_host_unavailable("h4.example", T0)
    await store.set_signature_scheme("m4.example", "rfc9421")
    await store.put_remote_key(
        RemoteKey(
            "https://m4.example/users/anna#main-key", "https://m4.example/users/anna", "PEM", T0
        )
    )
    await store.put_remote_actor(
        RemoteActor(
            "https://m4.example/users/anna",
            "https://m4.example/users/anna/inbox",
            None,
            "https://m4.example/users/anna#main-key",
            {"id": "x", "name": "Änna", "n": [1, 2.5, None]},
            T0,
            "anna",
            "Änna",
            None,
            ("https://old.example/anna",),
        )
    )
    for n in range(3):
        activity = {"id": f"https://m4.example/a/{n}", "type": "Like", "content": "„gut“"}
        await store.record_inbound(
            NewInbound(
                "m4.example",
                activity["id"],
                "https://m4.example/users/anna",
                "Like",
                activity,
                talk.id,
            ),
            T0,
        )
    await store.mark_inbound(1, "processed")
    await store.block_domain("spam.example", "Spam", T0, severity="limit")
    await store.block_actor("https://m4.example/users/troll", "Beleidigungen", T0)
    anna = Person(
        "https://m4.example/users/anna", "Änna", "@anna@m4.example", "https://m4.example/@anna"
    )
    post = parsed.entries[0].id
    for n in range(3):
        note = {"id": f"https://m4.example/notes/{n}", "content": "<p>„Danke“ 👍</p>", "x": 2.5}
        await store.add_comment(
            NewComment(
                talk.id,
                post,
                note["id"],
                post if n == 0 else "https://m4.example/notes/0",
                anna,
                "<p>„Danke“ 👍</p>",
                T0 + timedelta(minutes=n),
                "held" if n == 2 else "published",
                summary="CW" if n == 1 else None,
                language="de",
                score=0.75,
                reasons=("first-contact",) if n == 2 else (),
                source=note,
            ),
            T0,
        )
    await store.edit_comment("https://m4.example/notes/1", "<p>neu</p>", None, T0, {"v": 2})
    await store.delete_comment("https://m4.example/notes/0", T0 + timedelta(hours=1))
    for n, kind in enumerate(("like", "boost", "mention")):
        await store.add_reaction(
            NewReaction(
                talk.id,
                post,
                kind,
                f"https://m4.example/activities/{n}",
                anna,
                T0,
                content_html="<p>Lest das</p>" if kind == "mention" else None,
            ),
            T0,
        )
    await store.withdraw_reaction("https://m4.example/activities/0", anna.actor_id, T0)
    await store.put_sink_item(
        SinkItemUpdate(
            talk.id,
            "comment",
            "https://m4.example/notes/1",
            "wordpress",
            "published",
            remote_id="17",
            live=True,
        ),
        T0,
    )
    await store.put_sink_item(
        SinkItemUpdate(
            talk.id,
            "linkback",
            "https://m4.example/activities/1",
            "pingback",
            "failed",
            error="fault 33: target not pingable",
        ),
        T0,
    )
    await store.put_dialog_source(
        talk.id,
        first.id,
        "https://www.talkabout.de/2010/02/21/post/feed/",
        etag='W/"c-ä1"',
        last_modified="Sun, 21 Feb 2010 17:00:00 GMT",
        now=T0,
    )
    await store.put_dialog_source(
        other.id,
        "https://z.example/?p=1",
        "https://z.example/?p=1&feed=rss2",
        etag=None,
        last_modified=None,
        now=T0 + timedelta(seconds=1),
    )


async def snapshot(store: Store) -> dict[str, Any]:
    """Everything the store API tells about the bridge (ids included)."""
    blogs = await store.list_blogs()
    shot: dict[str, Any] = {"blogs": blogs}
    for blog in blogs:
        entries = await store.list_entries(blog.id, limit=1000)
        shot[f"entries {blog.handle}"] = entries
        shot[f"in feed {blog.handle}"] = await store.entries_in_feed(blog.id)
        shot[f"outbox {blog.handle}"] = await store.list_activities(blog.id, limit=1000)
        shot[f"followers {blog.handle}"] = [
            await store.list_followers(blog.id, 100, state=state)
            for state in ("accepted", "pending")
        ]
        shot[f"websub {blog.handle}"] = await store.get_websub(blog.id)
        shot[f"key {blog.handle}"] = await store.get_keypair(blog.handle)
    # Deleted entries too: every entry has activities in the outbox.
    entry_ids = [a.entry_id for blog in blogs for a in shot[f"outbox {blog.handle}"]]
    shot["all entries"] = [await store.get_entries(b.id, entry_ids) for b in blogs]
    shot["jobs"] = [await store.get_job(job_id) for job_id in range(1, 12)]
    shot["job counts"] = await store.job_counts()
    shot["hosts"] = await store.list_hosts(failing_only=False)
    shot["remote key"] = await store.get_remote_key("https://m4.example/users/anna#main-key")
    shot["remote actor"] = await store.get_remote_actor("https://m4.example/users/anna")
    shot["inbound"] = [await store.get_inbound(n) for n in range(1, 5)]
    shot["blocks"] = await store.list_domain_blocks()
    shot["actor blocks"] = await store.list_actor_blocks()
    shot["sink items"] = [
        await store.get_sink_item(
            blogs[0].id, "comment", "https://m4.example/notes/1", "wordpress"
        ),
        await store.list_sink_items(states=("failed",)),
    ]
    shot["dialog sources"] = [
        await store.get_dialog_source(blog.id, entry_id)
        for blog in blogs
        for entry_id in (*entry_ids, "https://z.example/?p=1")
    ]
    shot["comments"] = [await store.get_comment(f"https://m4.example/notes/{n}") for n in range(3)]
    shot["reactions"] = [
        await store.get_reaction(f"https://m4.example/activities/{n}") for n in range(3)
    ]
    return shot


@pytest.fixture
async def sqlite_path(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "feedfed.db"
    store = await SQLiteStore.open(str(path))
    await store.migrate()
    await fill(store)
    await store.close()
    yield path


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_schema(postgres_url()) as url:
        yield url


class Interrupt(Exception):
    """Stands for Ctrl-C or a lost connection in the middle of the copy."""


class StopIn:
    """Progress that records every update and interrupts at the n-th update of a table."""

    def __init__(self, table: str | None = None, after: int = 0) -> None:
        self.updates: list[tuple[str, int, int]] = []
        self._table, self._after = table, after

    def update(self, table: str, done: int, total: int) -> None:
        self.updates.append((table, done, total))
        if table == self._table and sum(u[0] == table for u in self.updates) > self._after:
            raise Interrupt(f"stopped in {table} at {done}/{total}")


async def copy(src_url: str, dst_url: str, **kwargs: Any) -> list[TableReport]:
    src, dst = await open_store(src_url), await open_store(dst_url)
    try:
        return await copy_store(src, dst, **kwargs)
    finally:
        await src.close()
        await dst.close()


async def snapshot_of(url: str) -> dict[str, Any]:
    store = await open_store(url)
    try:
        return await snapshot(store)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_sqlite_to_postgres_and_back_is_lossless(
    sqlite_path: Path, pg_url: str, tmp_path: Path
) -> None:
    src_url = f"sqlite:///{sqlite_path}"
    progress = StopIn()
    reports = await copy(src_url, pg_url, batch_size=4, progress=progress)
    assert all(r.matches and r.copied == r.source for r in reports)
    assert {r.table for r in reports} == {t.name for t in TABLES}
    assert all(r.source > 0 for r in reports), "the fixture fills every table"
    entries = next(r for r in reports if r.table == "entries")
    assert entries.source > 4, "several batches, keyset pagination over (blog_id, entry_id)"
    assert ("entries", entries.source, entries.source) in progress.updates

    original = await snapshot_of(src_url)
    assert original["entries talkabout"], "the talkabout feed's entries are in"
    assert await snapshot_of(pg_url) == original

    back_url = f"sqlite:///{tmp_path / 'back.db'}"
    await copy(pg_url, back_url, batch_size=3)
    assert await snapshot_of(back_url) == original

    # Rerunning finds every row present and identical, each way, value kinds included.
    for again in (await copy(src_url, pg_url, batch_size=5), await copy(pg_url, back_url)):
        assert [(r.matches, r.copied) for r in again] == [(True, 0)] * len(TABLES)


@pytest.mark.postgres
async def test_ids_continue_after_the_copied_ones(sqlite_path: Path, pg_url: str) -> None:
    await copy(f"sqlite:///{sqlite_path}", pg_url)
    store = await open_store(pg_url)
    try:
        blog = await store.add_blog(NewBlog("neu", "https://n.example/feed"), T0)
        assert blog.id == 3
        activity = await store.add_activity(
            NewActivity(blog.id, "https://b.test/new", "Create", "e", {}, True), T0
        )
        outbox = (await store.list_activities(1, limit=1000))[-1]
        assert activity.seq == outbox.seq + 1
        assert await store.enqueue([NewJob("fanout", {})], T0) == 1
        assert await store.get_job(9) is not None
        inbound = await store.record_inbound(NewInbound("x.example", "i", "a", "Like", {}), T0)
        assert inbound == 4
    finally:
        await store.close()


@pytest.mark.postgres
async def test_interrupted_copy_resumes_without_duplicates(sqlite_path: Path, pg_url: str) -> None:
    src_url = f"sqlite:///{sqlite_path}"
    with pytest.raises(Interrupt):
        await copy(src_url, pg_url, batch_size=2, progress=StopIn("entries", after=2))
    assert 0 < await live_entries(pg_url) < await live_entries(src_url)
    assert len((await snapshot_of(pg_url))["blogs"]) == 2, "tables before entries are complete"

    reports = await copy(src_url, pg_url, batch_size=2)
    assert all(r.matches for r in reports)
    by_table = {r.table: r for r in reports}
    assert by_table["blogs"].copied == 0, "rows already copied are skipped"
    assert 0 < by_table["entries"].copied < by_table["entries"].source
    assert by_table["jobs"].copied == by_table["jobs"].source
    assert await snapshot_of(pg_url) == await snapshot_of(src_url)


async def live_entries(url: str) -> int:
    store = await open_store(url)
    try:
        return sum([await store.count_entries(blog.id) for blog in await store.list_blogs()])
    finally:
        await store.close()


@pytest.mark.postgres
async def test_command_prints_progress_and_counts(sqlite_path: Path, pg_url: str) -> None:
    parser = argparse.ArgumentParser()
    db.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["db", "copy", str(sqlite_path), pg_url, "--batch-size", "5"])
    assert args.needs_context is False
    out, err = io.StringIO(), io.StringIO()
    status = await db.copy_databases(args.source, args.target, args.batch_size, out=out, err=err)
    assert status == 0
    assert "blogs 2/2 [####################] 100%" in err.getvalue()
    assert "entries 0/" in err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["table", "source", "target", "copied"]
    assert lines[1].split() == ["blogs", "2", "2", "2", "ok"]
    assert lines[-1].endswith("all counts match")
    # The parsed action runs the same copy (the bridge context is not needed).
    assert await args.action(args)(None) == 0


@pytest.mark.postgres
async def test_count_mismatch_exits_1(sqlite_path: Path, pg_url: str) -> None:
    target = await open_store(pg_url)
    await target.migrate()
    await target.block_domain("only-in-target.example", None, T0)
    await target.close()
    out = io.StringIO()
    assert await db.copy_databases(str(sqlite_path), pg_url, out=out, err=io.StringIO()) == 1
    rows = {line.split()[0]: line.split()[1:] for line in out.getvalue().splitlines()}
    assert rows["domain_blocks"] == ["1", "2", "1", "MISMATCH"]
    assert rows["blogs"] == ["2", "2", "2", "ok"]
    assert "counts differ in domain_blocks" in out.getvalue()


@pytest.mark.postgres
async def test_target_holding_other_rows_under_copied_ids_is_refused(
    sqlite_path: Path, pg_url: str
) -> None:
    target = await open_store(pg_url)
    await target.migrate()
    await target.add_blog(NewBlog("placeholder", "https://p.example/feed"), T0)
    await target.close()
    with pytest.raises(StoreError, match=r"cannot copy blogs: the target's row \(1,\) differs"):
        await copy(f"sqlite:///{sqlite_path}", pg_url)


@pytest.mark.postgres
async def test_target_colliding_on_another_unique_key_is_refused(
    sqlite_path: Path, pg_url: str
) -> None:
    target = await open_store(pg_url)
    await target.migrate()
    for n in range(4):
        await target.add_blog(NewBlog(f"tmp{n}", "https://p.example/feed"), T0)
    await target.add_blog(NewBlog("zweit", "https://elsewhere.example/feed"), T0)
    for n in range(4):
        await target.remove_blog(f"tmp{n}")
    await target.close()
    with pytest.raises(StoreError, match="cannot copy blogs: the target holds other rows"):
        await copy(f"sqlite:///{sqlite_path}", pg_url)


@pytest.mark.postgres
async def test_missing_or_unmigrated_source_is_refused(tmp_path: Path, pg_url: str) -> None:
    with pytest.raises(StoreError, match="no SQLite database at"):
        await db.copy_databases(str(tmp_path / "typo.db"), pg_url)
    assert not (tmp_path / "typo.db").exists()
    empty = await SQLiteStore.open(str(tmp_path / "empty.db"))
    await empty.close()
    every = ", ".join(str(m.version) for m in MIGRATIONS)
    with pytest.raises(StoreError, match=rf"needs migrations \[{every}\]"):
        await copy(f"sqlite:///{tmp_path / 'empty.db'}", pg_url)
    with pytest.raises(StoreError, match="same database"):
        await db.copy_databases(pg_url, pg_url)


def test_text_progress_without_a_terminal() -> None:
    stream = io.StringIO()
    bar = TextProgress(stream, width=10)
    for done in range(0, 5001, 100):
        bar.update("entries", done, 5000)
    bar.update("keys", 0, 0)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "entries 0/5000 [..........] 0%"
    assert "entries 1200/5000 [##........] 24%" not in lines, "one line per tenth, not per batch"
    assert len(lines) == 12
    assert lines[-2] == "entries 5000/5000 [##########] 100%"
    assert lines[-1] == "keys 0/0 [##########] 100%"
