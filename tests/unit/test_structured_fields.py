"""RFC 8941 structured fields: the RFC's own examples parse and serialise back, garbage fails."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.activitypub.structured_fields import (
    InnerList,
    Item,
    Token,
    parse_dictionary,
    parse_item,
    parse_list,
    serialize_bare_item,
    serialize_dictionary,
    serialize_list,
    serialize_member,
)
from bridge.errors import MalformedStructuredField


def test_dictionary_examples() -> None:
    parsed = parse_dictionary('en="Applepie", da=:w4ZibGV0w6ZydGU=:')
    assert parsed == {"en": Item("Applepie"), "da": Item("Æbletærte".encode())}
    flags = parse_dictionary("a=?0, b, c; foo=bar")
    assert flags == {"a": Item(False), "b": Item(True), "c": Item(True, {"foo": Token("bar")})}
    assert isinstance(flags["c"].params["foo"], Token)
    assert serialize_dictionary(flags) == "a=?0, b, c;foo=bar"
    mixed = parse_dictionary("rating=1.5, feelings=(joy sadness)")
    assert mixed["rating"] == Item(Decimal("1.5"))
    assert mixed["feelings"] == InnerList((Item(Token("joy")), Item(Token("sadness"))))
    assert serialize_dictionary(mixed) == "rating=1.5, feelings=(joy sadness)"


def test_later_duplicate_keys_win() -> None:
    assert parse_dictionary("a=1, a=2") == {"a": Item(2)}


def test_list_examples() -> None:
    assert parse_list("sugar, tea, rum") == [Item(Token(t)) for t in ("sugar", "tea", "rum")]
    inner = '("foo" "bar"), ("baz"), ("bat" "one"), ()'
    assert serialize_list(parse_list(inner)) == inner
    params = 'abc;a=1;b=2; cde_456, (ghi;jk=4 l);q="9";r=w'
    parsed = parse_list(params)
    assert parsed[1] == InnerList(
        (Item(Token("ghi"), {"jk": 4}), Item(Token("l"))), {"q": "9", "r": Token("w")}
    )
    assert serialize_list(parsed) == 'abc;a=1;b=2;cde_456, (ghi;jk=4 l);q="9";r=w'
    assert parse_list("") == []


@pytest.mark.parametrize(
    ("text", "value", "canonical"),
    [
        ("5; foo=bar", 5, "5;foo=bar"),
        ("-42", -42, "-42"),
        ("4.5", Decimal("4.5"), "4.5"),
        ('"hello \\"world\\""', 'hello "world"', '"hello \\"world\\""'),
        ("?1", True, "?1"),
        (
            ":cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:",
            b"pretend this is binary content.",
            None,
        ),
        (":YWI:", b"ab", ":YWI=:"),
        ("foo123/456", Token("foo123/456"), "foo123/456"),
        ("*/*", Token("*/*"), "*/*"),
        ("  12  ", 12, "12"),
    ],
)
def test_items(text: str, value: object, canonical: str | None) -> None:
    item = parse_item(text)
    assert item.value == value
    assert serialize_member(item) == (canonical or text)


@pytest.mark.parametrize(
    "text",
    [
        "a, ",
        "a=1,",
        "a=1 b=2",
        "A=1",
        "a =1",
        "a=1234567890123456",
        "a=1.2345",
        "a=1234567890123.1",
        "a=1.",
        "a=-",
        'a="\\a"',
        'a="unterminated',
        'a="tab\tinside"',
        "a=:abc$:",
        "a=:abcde",
        "a=:a:",
        "a=?2",
        "a=(b c",
        "a=(b,c)",
        "a=é",
        "a=1;B=2",
    ],
)
def test_malformed_dictionaries(text: str) -> None:
    with pytest.raises(MalformedStructuredField):
        parse_dictionary(text)


def test_item_with_trailing_garbage_fails() -> None:
    with pytest.raises(MalformedStructuredField, match="trailing"):
        parse_item("1 2")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1.0005"), "1.0"),
        (Decimal("1.0015"), "1.002"),
        (Decimal("2"), "2.0"),
        (Decimal("-0.25"), "-0.25"),
        (b"", "::"),
        (False, "?0"),
        ("", '""'),
    ],
)
def test_serialize_bare_items(value: Decimal | bytes | bool | str, text: str) -> None:
    assert serialize_bare_item(value) == text


@pytest.mark.parametrize(
    "value",
    [10**15, Decimal("1234567890123.5"), "line\nbreak", "ünïcode", Token("1abc"), Token("a b")],
)
def test_serializer_refuses_what_cannot_be_a_structured_field(
    value: int | Decimal | str,
) -> None:
    with pytest.raises(MalformedStructuredField):
        serialize_bare_item(value)


def test_serializer_refuses_bad_keys() -> None:
    with pytest.raises(MalformedStructuredField, match="key"):
        serialize_dictionary({"Upper": Item(1)})
