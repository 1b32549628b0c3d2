"""Waiting for another process's write lock on the SQLite file, in short steps.

One writer at a time: while a web process and a worker process share the file, each of
them often finds the other holding the write lock, for the ~0.1 ms a statement or a small
transaction takes. SQLite's own busy handler (``PRAGMA busy_timeout``) sleeps 1, 2, 5, 10 …
ms between its tries, so every such collision would stall the database thread for a
millisecond or more, ten times what it waited for. The writing connection therefore runs with
``busy_timeout=0`` and waits here instead: 50 us, doubling up to 2 ms, for at most
:data:`WAIT_SECONDS` in all (what the busy timeout allowed before), then raises SQLite's
"database is locked".

Only what is safe to try again is tried again: a statement outside a transaction (it failed
as a whole, having changed nothing) and ``BEGIN`` (nothing is held yet). Inside a transaction
opened with ``BEGIN IMMEDIATE`` the lock is held already, so WAL gives no ``SQLITE_BUSY``
there; should one come, it is raised as it is.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import Any

WAIT_SECONDS = 5.0
"""How long a write waits for another process's lock before it fails."""

_FIRST_PAUSE = 50e-6
_LONGEST_PAUSE = 2e-3
_SQLITE_BUSY = 5  # the primary result code; extended codes keep it in the low byte


class WaitingWriter(sqlite3.Connection):
    """The writing connection (``sqlite3.connect(..., factory=WaitingWriter)``)."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        """``sqlite3.Connection.execute``, waiting for the write lock where that is safe."""
        retry = not self.in_transaction or sql.lstrip()[:5].upper() == "BEGIN"
        if not retry:
            return super().execute(sql, parameters)
        pause, deadline = _FIRST_PAUSE, time.monotonic() + WAIT_SECONDS
        while True:
            try:
                return super().execute(sql, parameters)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != _SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def executemany(self, sql: str, rows: Iterable[Any], /) -> sqlite3.Cursor:
        """``sqlite3.Connection.executemany``; outside a transaction it runs in one of its
        own, so that waiting for the lock (at its ``BEGIN``) never repeats a row."""
        if self.in_transaction:
            return super().executemany(sql, rows)
        self.execute("BEGIN IMMEDIATE")
        try:
            cursor = super().executemany(sql, rows)
            super().execute("COMMIT")
        except BaseException:
            if self.in_transaction:
                super().execute("ROLLBACK")
            raise
        return cursor
