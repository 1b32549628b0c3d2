"""Reading the domain blocklists operators share: Mastodon exports, IFTAS DNI, plain lists."""

from __future__ import annotations

import time

import pytest

from bridge.backfeed.blocklists import (
    MAX_RULES,
    Blocklist,
    BlockRule,
    Problem,
    normalize_domain,
    parse_blocklist,
)
from tests.conftest import DATA

LISTS = DATA / "blocklists"


def rules(blocklist: Blocklist) -> list[tuple[str, str, str | None]]:
    return [(rule.domain, rule.action, rule.reason) for rule in blocklist.rules]


def test_a_mastodon_export() -> None:
    blocklist = parse_blocklist((LISTS / "mastodon_export.csv").read_bytes())
    assert blocklist.rules == (
        BlockRule("spam-farm.example", "block", "Spam and automated abuse", 2, "suspend"),
        BlockRule("harassment.example", "block", "Harassment, unmoderated", 3, "suspend"),
        BlockRule("noisy.example", "hold", "Unsolicited mass mentions", 4, "silence"),
        BlockRule("quiet.example", "hold", None, 6, "silence"),
    )
    assert blocklist.problems == (
        Problem(5, "warning", "media-only.example: severity noop, nothing to do"),
    )
    assert blocklist.errors == ()


def test_the_iftas_dni_list() -> None:
    blocklist = parse_blocklist((LISTS / "iftas_dni.csv").read_text(encoding="utf-8"))
    assert rules(blocklist) == [
        ("csam-host.example", "block", "IFTAS:CSE-CSAM"),
        ("hate-speech.example", "block", "IFTAS:Hate-Speech;Harassment"),
        ("proxy-abuse.example", "block", "IFTAS:Network-Service-Abuse"),
        ("troll-farm.example", "block", None),
    ]
    assert blocklist.problems == ()


def test_headerless_rows_with_bom_crlf_case_trailing_dot_and_unicode() -> None:
    data = (LISTS / "headerless_crlf.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    blocklist = parse_blocklist(data)
    assert rules(blocklist) == [
        ("spam-farm.example", "block", None),
        ("silenced.example", "hold", None),
        ("plain.example", "block", None),
        ("xn--bcher-kva.example", "block", None),
    ]
    assert [rule.line for rule in blocklist.rules] == [1, 2, 3, 5]
    assert blocklist.problems == ()


def test_a_plain_list_of_domains_with_comments_and_wildcards() -> None:
    blocklist = parse_blocklist((LISTS / "plain_domains.txt").read_text(encoding="utf-8"))
    assert rules(blocklist) == [
        ("spam-farm.example", "block", None),
        ("sub.spam-farm.example", "block", None),
        ("wildcard.example", "block", None),
    ]
    assert blocklist.problems == ()


def test_a_messy_list_reports_each_bad_row_by_line_and_keeps_the_rest() -> None:
    blocklist = parse_blocklist((LISTS / "messy.csv").read_text(encoding="utf-8"))
    assert rules(blocklist) == [
        ("good.example", "block", "fine"),
        ("held-first.example", "block", "stricter later"),
        ("url.example", "block", None),
        ("203.0.113.7", "block", "an address"),
        ("second-export.example", "hold", "from the second, merged export"),
    ]
    assert blocklist.problems == (
        Problem(4, "warning", "ex***le.example is obfuscated and cannot be matched"),
        Problem(5, "warning", "good.example listed before on line 3; ignored"),
        Problem(7, "error", "'not a domain' is not a domain name"),
        Problem(8, "error", "@spammer@users.example is an account, not a domain"),
        Problem(9, "error", "'-bad-.example' is not a domain name"),
        Problem(10, "error", "unknown severity 'supsend' for typo.example"),
        Problem(11, "warning", "https://url.example/about/more is a URL; its host is used"),
        Problem(12, "warning", "held-first.example listed before on line 6; the stricter applies"),
        Problem(13, "error", "'localhost' is not a domain name"),
    )
    assert [problem.line for problem in blocklist.errors] == [7, 8, 9, 10, 13]


def test_invalid_utf8_is_reported_with_its_line_and_the_rest_is_read() -> None:
    blocklist = parse_blocklist(b"ok.example\nbad\xff.example\nalso-ok.example\n")
    assert rules(blocklist) == [("ok.example", "block", None), ("also-ok.example", "block", None)]
    assert blocklist.problems == (
        Problem(2, "error", "not UTF-8: undecodable bytes were replaced"),
        Problem(2, "error", "'bad\ufffd.example' is not a domain name"),
    )


def test_unreadable_csv_rows_do_not_stop_the_import() -> None:
    huge = "x" * 200_000
    blocklist = parse_blocklist(f"a.example\nb.example,suspend,{huge}\nc.example\n")
    assert rules(blocklist) == [("a.example", "block", None), ("c.example", "block", None)]
    (problem,) = blocklist.problems
    assert problem.line == 2 and problem.level == "error"
    assert problem.message.startswith("unreadable CSV")


def test_hostile_cells_are_shown_as_safe_text() -> None:
    blocklist = parse_blocklist('"evil\u202e.example\x00<script>",suspend\n')
    (problem,) = blocklist.problems
    assert "\u202e" not in problem.message and "\x00" not in problem.message


def test_empty_and_comment_only_lists() -> None:
    assert parse_blocklist("") == Blocklist((), ())
    assert parse_blocklist(b"\xef\xbb\xbf# nothing\n\n   \n,,,\n") == Blocklist((), ())


def test_the_row_limit_is_mastodons() -> None:
    data = "\n".join(f"d{i}.example" for i in range(MAX_RULES + 5))
    started = time.perf_counter()
    blocklist = parse_blocklist(data)
    assert time.perf_counter() - started < 1.0
    assert len(blocklist.rules) == MAX_RULES
    assert blocklist.problems == (
        Problem(MAX_RULES + 1, "error", f"more than {MAX_RULES} rows, rest ignored"),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("  spaced.example  ", "spaced.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("198.51.100.1", "198.51.100.1"),
        ("localhost", None),
        ("under_score.example", None),
        ("-lead.example", None),
        ("trail-.example", None),
        ("a..b", None),
        ("1.2.3", None),
        ("with space.example", None),
        ("x" * 64 + ".example", None),
        ("", None),
        ("example.123", None),
    ],
)
def test_normalize_domain(raw: str, expected: str | None) -> None:
    assert normalize_domain(raw) == expected
