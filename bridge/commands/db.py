"""``feedfed db``: database maintenance; ``db copy SRC DST`` moves a bridge between stores."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from bridge.errors import StoreError
from bridge.store import open_store
from bridge.store.copy import TextProgress, copy_store, format_report

SQLITE_PREFIX = "sqlite:///"


def register(sub: Any) -> None:
    """Add ``db copy SRC DST`` to the ``feedfed`` subcommands (``sub``: argparse's
    subparsers action).

    The action ignores the bridge context and sets ``needs_context=False``: opening the
    configured store first would migrate it and write the config file's blogs into it,
    which must not happen to a copy's target.
    """
    db = sub.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True
    )
    copy = db.add_parser(
        "copy",
        help="copy every row of one database into another (e.g. SQLite to PostgreSQL)",
        description=(
            "Copy all tables from SRC to DST, keeping ids. Rerun after an interruption: rows "
            "already in DST are skipped. Stop the bridge first. Exits 1 when the row counts "
            "differ at the end."
        ),
    )
    copy.add_argument("source", metavar="SRC", help="sqlite:///path, a file path, or postgresql://")
    copy.add_argument("target", metavar="DST", help="sqlite:///path, a file path, or postgresql://")
    copy.add_argument("--batch-size", type=int, default=1000, help="rows per batch (default: 1000)")
    copy.set_defaults(
        action=lambda a: lambda _ctx: copy_databases(a.source, a.target, a.batch_size),
        needs_context=False,
    )


def store_url(text: str) -> str:
    """A store URL from the command line: a URL as given, a bare path as SQLite."""
    return text if "://" in text else SQLITE_PREFIX + text


async def copy_databases(
    source: str,
    target: str,
    batch_size: int = 1000,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Copy ``source`` into ``target`` with a progress bar on ``err``, print the per-table
    counts on ``out``; 0 when every count matches, else 1."""
    out = out or sys.stdout
    err = err or sys.stderr
    source_url, target_url = store_url(source), store_url(target)
    if source_url == target_url:
        raise StoreError("source and target are the same database")
    if batch_size < 1:
        raise StoreError("--batch-size must be at least 1")
    if source_url.startswith(SQLITE_PREFIX):
        # Opening a missing SQLite file would create an empty one: a typo must not look
        # like an empty bridge.
        path = Path(source_url.removeprefix(SQLITE_PREFIX))
        if not await asyncio.to_thread(path.is_file):
            raise StoreError(f"no SQLite database at {path}")
    src = await open_store(source_url)
    try:
        dst = await open_store(target_url)
        try:
            reports = await copy_store(src, dst, batch_size=batch_size, progress=TextProgress(err))
        finally:
            await dst.close()
    finally:
        await src.close()
    print(format_report(reports), file=out)
    mismatched = [r.table for r in reports if not r.matches]
    if mismatched:
        print(
            f"counts differ in {', '.join(mismatched)}: was the bridge running? "
            "Stop it and run the copy again",
            file=out,
        )
        return 1
    print(f"copied {sum(r.copied for r in reports)} rows; all counts match", file=out)
    return 0
