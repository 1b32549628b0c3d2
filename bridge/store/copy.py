"""Copy a whole bridge from one store to another (``feedfed db copy SRC DST``).

Mainly SQLite → PostgreSQL when a bridge outgrows one machine, but either direction works.
Tables are copied in dependency order, in batches read by primary key (keyset pagination,
so memory stays flat whatever the size), ids preserved. Each batch is inserted as a whole
with ``ON CONFLICT (primary key) DO NOTHING``: a rerun after an interruption skips what
already arrived and finishes the job. PostgreSQL identity sequences are then moved past the
copied ids, and the copy ends by comparing row counts, table by table.

The bridge must be stopped while it copies: rows changed in the source after they were
copied are not copied again, and rows added meanwhile show up as a count mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TextIO

from bridge.errors import StoreError
from bridge.store.base import Store
from bridge.store.table_rows import Tables, tables_of
from bridge.store.tables import OWN_TABLES, TABLES, RowValues, Table


@dataclass(frozen=True)
class TableReport:
    """Rows of one table in the source and in the target after the copy."""

    table: str
    source: int
    target: int
    copied: int

    @property
    def matches(self) -> bool:
        """Whether both sides hold as many rows."""
        return self.source == self.target


class Progress(Protocol):
    """Told how far the copy of each table has come."""

    def update(self, table: str, done: int, total: int) -> None:
        """``done`` of ``total`` rows of ``table`` are through (``done == total``: finished)."""
        ...


class TextProgress:
    """A plain-text progress bar, e.g. ``entries 1200/5000 [#####...............] 24%``.

    On a terminal the line of the running table is redrawn in place; elsewhere (a log file)
    a line is written at every tenth of the table and when it is complete.
    """

    def __init__(self, stream: TextIO, width: int = 20) -> None:
        self._stream = stream
        self._width = width
        self._tty = stream.isatty()
        self._last_step: dict[str, int] = {}

    def update(self, table: str, done: int, total: int) -> None:
        """Draw the table's progress."""
        fraction = min(done / total, 1.0) if total else 1.0
        filled = int(fraction * self._width)
        line = (
            f"{table} {done}/{total} [{'#' * filled}{'.' * (self._width - filled)}] "
            f"{int(fraction * 100)}%"
        )
        finished = done >= total
        if self._tty:
            self._stream.write(f"\r{line}\x1b[K" + ("\n" if finished else ""))
        else:
            step = int(fraction * 10)
            if not finished and self._last_step.get(table) == step:
                return
            self._last_step[table] = step
            self._stream.write(line + "\n")
        self._stream.flush()


async def copy_store(
    source: Store,
    target: Store,
    *,
    batch_size: int = 1000,
    progress: Progress | None = None,
) -> list[TableReport]:
    """Copy every row of ``source`` into ``target`` (migrated first); report the counts.

    Rows whose primary key the target holds already are skipped, so the copy can be rerun
    until it completes. Raises ``StoreError`` when the source is not fully migrated, when
    either side has tables or columns this copy does not know, or when target rows collide
    with source rows on another unique key.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if pending := await source.pending_migrations():
        raise StoreError(
            f"the source database needs migrations {pending}: "
            "run `feedfed migrate` with it before copying"
        )
    await target.migrate()
    src, dst = tables_of(source), tables_of(target)
    await _check_layout(src, "source")
    await _check_layout(dst, "target")
    copied: dict[str, int] = {}
    for table in TABLES:
        copied[table.name] = await _copy_table(src, dst, table, batch_size, progress)
    reports = []
    for table in TABLES:
        reports.append(
            TableReport(
                table.name, await src.count(table), await dst.count(table), copied[table.name]
            )
        )
    return reports


async def _copy_table(
    src: Tables, dst: Tables, table: Table, batch_size: int, progress: Progress | None
) -> int:
    total = await src.count(table)
    key_at = [table.columns.index(name) for name in table.key]
    done = copied = 0
    if progress is not None:
        progress.update(table.name, 0, total)
    after: RowValues | None = None
    while rows := await src.read(table, after, batch_size):
        inserted = await dst.insert(table, rows)
        if inserted < len(rows):
            await _check_skipped(dst, table, rows, key_at)
        copied += inserted
        done += len(rows)
        after = tuple(rows[-1][i] for i in key_at)
        if progress is not None:
            progress.update(table.name, min(done, total), total)
    await dst.finish(table)
    if progress is not None and done < total:
        # Rows vanished from the source meanwhile: close the bar, the counts will tell.
        progress.update(table.name, total, total)
    return copied


async def _check_skipped(
    dst: Tables, table: Table, rows: list[RowValues], key_at: list[int]
) -> None:
    # A key the target holds already is only skippable when the row is the one copied
    # before: anything else means the target holds other data, or the source changed since
    # the interrupted run, and skipping would lose it silently.
    keyed = {tuple(row[i] for i in key_at): row for row in rows}
    present = {tuple(row[i] for i in key_at): row for row in await dst.fetch(table, list(keyed))}
    for key, row in keyed.items():
        if present.get(key) != row:
            raise StoreError(
                f"cannot copy {table.name}: the target's row {key} differs from the source's "
                "(the target holds other data, or the source changed since an interrupted "
                "copy); copy into an empty database"
            )


async def _check_layout(side: Tables, role: str) -> None:
    layout = {name: cols for name, cols in (await side.layout()).items() if name not in OWN_TABLES}
    known = {table.name: table for table in TABLES}
    if unknown := sorted(set(layout) - set(known)):
        raise StoreError(f"the {role} database has tables db copy does not know: {unknown}")
    if missing := sorted(set(known) - set(layout)):
        raise StoreError(f"the {role} database lacks the tables {missing}")
    for name, table in known.items():
        actual = set(layout[name])
        if actual != set(table.columns):
            raise StoreError(
                f"table {name} of the {role} database has columns "
                f"{sorted(actual - set(table.columns))} db copy does not know "
                f"and lacks {sorted(set(table.columns) - actual)}"
            )


def format_report(reports: list[TableReport]) -> str:
    """The per-table counts as an aligned text table, mismatches marked."""
    width = max(len("table"), *(len(r.table) for r in reports))
    lines = [f"{'table':<{width}}  {'source':>8}  {'target':>8}  {'copied':>8}"]
    for r in reports:
        verdict = "ok" if r.matches else "MISMATCH"
        lines.append(f"{r.table:<{width}}  {r.source:>8}  {r.target:>8}  {r.copied:>8}  {verdict}")
    return "\n".join(lines)
