"""Domain blocklists in the shapes operators share them, read into block rules (pure).

Understood:

- Mastodon's domain-block export (Moderation → Federation → Export), also used by the IFTAS
  DNI list and most community lists: a ``#domain,#severity,#reject_media,#reject_reports,
  #public_comment,#obfuscate`` header, then one row per domain;
- the same columns without a header, or fewer of them (``domain,severity``), or just one
  domain per line (older exports, Misskey's and plain lists): a missing severity is
  ``suspend``, as in Mastodon's import;
- headers without ``#``, ``comment``/``reason`` columns, a byte-order mark, CRLF, ``#``
  comment lines, blank lines, domains in any case, with a trailing dot, in Unicode (stored
  IDNA-encoded), ``*.example.com`` wildcards (a block covers subdomains anyway).

Severities: ``suspend`` (and Pleroma's ``reject``) → ``block``: the server's activities
are refused; ``silence``/``limit`` → ``hold``: its comments wait for a moderator; ``noop``
→ nothing. Rows that cannot be used do not stop the import: each is reported as a
:class:`Problem` with its line number. Obfuscated entries (``ex**ple.com``, as published
on Mastodon's ``/about`` page) name no domain that could be matched, so they are skipped
with a warning.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from bridge.backfeed.sanitize import plain_line

BlockAction = Literal["block", "hold"]
ProblemLevel = Literal["error", "warning"]

MAX_RULES: Final = 20_000
"""Rows read at most (Mastodon's ``ROWS_PROCESSING_LIMIT``)."""
REASON_LIMIT: Final = 500

SEVERITIES: Final[dict[str, BlockAction | None]] = {
    "suspend": "block",
    "reject": "block",
    "block": "block",
    "silence": "hold",
    "limit": "hold",
    "noop": None,
}
"""Severity names (Mastodon's, GoToSocial's, Pleroma's) → what the bridge does."""

# Mastodon's export column order, used for rows without a header.
_DEFAULT_COLUMNS: Final = {
    "domain": 0,
    "severity": 1,
    "reject_media": 2,
    "reject_reports": 3,
    "public_comment": 4,
    "obfuscate": 5,
}
_REASON_COLUMNS: Final = ("public_comment", "comment", "reason", "private_comment")
_LABEL: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_STRICTNESS: Final[dict[BlockAction, int]] = {"hold": 1, "block": 2}


@dataclass(frozen=True)
class BlockRule:
    """One usable row: block or hold ``domain`` and its subdomains."""

    domain: str
    action: BlockAction
    reason: str | None
    line: int
    severity: str
    """The severity as the list wrote it (``suspend``, ``silence`` …)."""


@dataclass(frozen=True)
class Problem:
    """A row that was skipped (``error``) or read with a caveat (``warning``)."""

    line: int
    level: ProblemLevel
    message: str


@dataclass(frozen=True)
class Blocklist:
    """The rules of a list, each domain once, in the order they first appeared."""

    rules: tuple[BlockRule, ...]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The rows that were skipped because they are unusable."""
        return tuple(p for p in self.problems if p.level == "error")


def parse_blocklist(data: str | bytes) -> Blocklist:
    """Read a CSV blocklist (see the module docstring for the shapes understood)."""
    problems: list[Problem] = []
    text = _decode(data, problems)
    rules: dict[str, BlockRule] = {}
    for line, cells, columns in _rows(text, problems):
        if len(rules) >= MAX_RULES:
            problems.append(Problem(line, "error", f"more than {MAX_RULES} rows, rest ignored"))
            break
        rule = _rule(line, cells, columns, problems)
        if rule is None:
            continue
        earlier = rules.get(rule.domain)
        if earlier is None:
            rules[rule.domain] = rule
        elif _STRICTNESS[rule.action] > _STRICTNESS[earlier.action]:
            rules[rule.domain] = rule
            message = f"{rule.domain} listed before on line {earlier.line}; the stricter applies"
            problems.append(Problem(line, "warning", message))
        else:
            message = f"{rule.domain} listed before on line {earlier.line}; ignored"
            problems.append(Problem(line, "warning", message))
    return Blocklist(tuple(rules.values()), tuple(problems))


def normalize_domain(value: str) -> str | None:
    """``value`` as a domain the bridge can match (lower case, IDNA, no trailing dot), or
    ``None`` when it is no domain name (an IPv4 address is accepted too)."""
    domain = value.strip().rstrip(".").lower()
    if not domain or len(domain) > 253 or any(c.isspace() for c in domain):
        return None
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    try:
        ipaddress.IPv4Address(domain)
    except ValueError:
        labels = domain.split(".")
        valid = len(labels) >= 2 and not labels[-1].isdigit()
        return domain if valid and all(_LABEL.match(label) for label in labels) else None
    return domain


def _decode(data: str | bytes, problems: list[Problem]) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problems.append(Problem(line, "error", "not UTF-8: undecodable bytes were replaced"))
        return data.decode("utf-8-sig", errors="replace")


def _rows(text: str, problems: list[Problem]) -> Iterator[tuple[int, list[str], dict[str, int]]]:
    """Data rows with their first line number and the column map in force for them."""
    reader = csv.reader(io.StringIO(text, newline=""))
    columns = _DEFAULT_COLUMNS
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problems.append(Problem(line, "error", f"unreadable CSV: {error}"))
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if cells[0].lstrip("#").strip().lower() == "domain":
            # A header; lists concatenated from several exports repeat it.
            columns = {name.lstrip("#").strip().lower(): index for index, name in enumerate(cells)}
            continue
        if cells[0].startswith("#"):
            continue
        yield start, cells, columns


def _rule(
    line: int, cells: list[str], columns: dict[str, int], problems: list[Problem]
) -> BlockRule | None:
    def cell(name: str) -> str:
        index = columns.get(name)
        return cells[index] if index is not None and index < len(cells) else ""

    raw = cell("domain")
    shown = plain_line(raw, 80)
    if "*" in raw.removeprefix("*."):
        problems.append(Problem(line, "warning", f"{shown} is obfuscated and cannot be matched"))
        return None
    raw = raw.removeprefix("*.")
    if "://" in raw:
        try:
            host = urlsplit(raw).hostname
        except ValueError:
            host = None
        problems.append(Problem(line, "warning", f"{shown} is a URL; its host is used"))
        raw = host or ""
    if "@" in raw:
        problems.append(Problem(line, "error", f"{shown} is an account, not a domain"))
        return None
    domain = normalize_domain(raw)
    if domain is None:
        problems.append(Problem(line, "error", f"{shown!r} is not a domain name"))
        return None
    severity = cell("severity").lower() or "suspend"
    if severity not in SEVERITIES:
        message = f"unknown severity {plain_line(severity, 40)!r} for {domain}"
        problems.append(Problem(line, "error", message))
        return None
    action = SEVERITIES[severity]
    if action is None:
        problems.append(Problem(line, "warning", f"{domain}: severity {severity}, nothing to do"))
        return None
    reason = next((cell(name) for name in _REASON_COLUMNS if cell(name)), "")
    return BlockRule(domain, action, plain_line(reason, REASON_LIMIT) or None, line, severity)
