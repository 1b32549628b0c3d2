"""Numbered schema migrations, one module per number.

Each migration runs once, in order, inside a transaction, and is recorded in
``schema_migrations``. Never edit a released migration: add the next number.
Every migration carries the same step twice: ``sqlite`` (timestamps as ISO 8601 UTC text with
microseconds, so they sort as text; JSON as text) and ``postgres`` (TIMESTAMPTZ, JSONB,
BOOLEAN, identity columns). Text that is sorted or compared is declared ``COLLATE "C"`` on
PostgreSQL, so both backends order it by code point whatever the database's locale.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    version: int
    name: str
    sqlite: str
    postgres: str
