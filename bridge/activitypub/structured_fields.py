"""Structured Field Values for HTTP (RFC 8941): parsing and serialising, pure.

HTTP Message Signatures (RFC 9421) carry their metadata in structured fields
(``Signature-Input``, ``Signature``) and RFC 9530 digests are dictionaries too. The parser
follows RFC 8941 Section 4.2 step by step and rejects anything else with
:class:`MalformedStructuredField`; the serialiser (Section 4.1) produces the canonical text
that signature bases are built from.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass, field
from decimal import Decimal

from bridge.errors import MalformedStructuredField


class Token(str):
    """An sf-token (``foo``, ``*/*``), kept apart from an sf-string (``"foo"``)."""

    __slots__ = ()


BareItem = int | Decimal | str | Token | bytes | bool
Params = dict[str, BareItem]


@dataclass(frozen=True)
class Item:
    """A bare item with its parameters."""

    value: BareItem
    params: Params = field(default_factory=dict)


@dataclass(frozen=True)
class InnerList:
    """A parenthesised list of items with the list's own parameters."""

    items: tuple[Item, ...]
    params: Params = field(default_factory=dict)


Member = Item | InnerList

# HTTP fields whose structured type is defined, so that they can be re-serialised.
FIELD_TYPES = {
    "signature-input": "dictionary",
    "signature": "dictionary",
    "accept-signature": "dictionary",
    "content-digest": "dictionary",
    "repr-digest": "dictionary",
    "want-content-digest": "dictionary",
    "want-repr-digest": "dictionary",
    "priority": "dictionary",
    "cache-status": "list",
    "proxy-status": "list",
    "client-cert": "item",
}
_KEY_START = set(string.ascii_lowercase + "*")
_KEY_CHARS = _KEY_START | set(string.digits + "_-.")
_TCHAR = set(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
_TOKEN_CHARS = _TCHAR | {":", "/"}
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_MAX_INTEGER = 999_999_999_999_999


class _Reader:
    """A cursor over the field value; every parse step consumes from it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip(self, chars: str) -> None:
        while not self.at_end() and self.text[self.pos] in chars:
            self.pos += 1

    def fail(self, what: str) -> MalformedStructuredField:
        return MalformedStructuredField(f"{what} at offset {self.pos} of {self.text[:80]!r}")


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse a Dictionary field value (RFC 8941 Section 4.2.2)."""
    reader = _Reader(text)
    reader.skip(" ")
    members: dict[str, Member] = {}
    while not reader.at_end():
        key = _parse_key(reader)
        if reader.peek() == "=":
            reader.take()
            members[key] = _parse_member(reader)
        else:
            members[key] = Item(True, _parse_params(reader))
        _after_member(reader)
    return members


def parse_list(text: str) -> list[Member]:
    """Parse a List field value (RFC 8941 Section 4.2.1)."""
    reader = _Reader(text)
    reader.skip(" ")
    members: list[Member] = []
    while not reader.at_end():
        members.append(_parse_member(reader))
        _after_member(reader)
    return members


def parse_item(text: str) -> Item:
    """Parse an Item field value (RFC 8941 Section 4.2.3)."""
    reader = _Reader(text)
    reader.skip(" ")
    item = _parse_item(reader)
    reader.skip(" ")
    if not reader.at_end():
        raise reader.fail("trailing characters after item")
    return item


def _after_member(reader: _Reader) -> None:
    reader.skip(" \t")
    if reader.at_end():
        return
    if reader.take() != ",":
        raise reader.fail("expected ','")
    reader.skip(" \t")
    if reader.at_end():
        raise reader.fail("trailing comma")


def _parse_member(reader: _Reader) -> Member:
    if reader.peek() == "(":
        return _parse_inner_list(reader)
    return _parse_item(reader)


def _parse_inner_list(reader: _Reader) -> InnerList:
    reader.take()
    items: list[Item] = []
    while not reader.at_end():
        reader.skip(" ")
        if reader.peek() == ")":
            reader.take()
            return InnerList(tuple(items), _parse_params(reader))
        items.append(_parse_item(reader))
        if reader.peek() not in (" ", ")"):
            raise reader.fail("expected ' ' or ')' in inner list")
    raise reader.fail("unterminated inner list")


def _parse_item(reader: _Reader) -> Item:
    value = _parse_bare_item(reader)
    return Item(value, _parse_params(reader))


def _parse_params(reader: _Reader) -> Params:
    params: Params = {}
    while reader.peek() == ";":
        reader.take()
        reader.skip(" ")
        key = _parse_key(reader)
        value: BareItem = True
        if reader.peek() == "=":
            reader.take()
            value = _parse_bare_item(reader)
        params[key] = value
    return params


def _parse_key(reader: _Reader) -> str:
    if reader.peek() not in _KEY_START or reader.at_end():
        raise reader.fail("expected a key")
    start = reader.pos
    while not reader.at_end() and reader.peek() in _KEY_CHARS:
        reader.take()
    return reader.text[start : reader.pos]


def _parse_bare_item(reader: _Reader) -> BareItem:
    char = reader.peek()
    if char == "-" or (char.isdigit() and char.isascii()):
        return _parse_number(reader)
    if char == '"':
        return _parse_string(reader)
    if char == ":":
        return _parse_bytes(reader)
    if char == "?":
        return _parse_boolean(reader)
    if char == "*" or (char.isascii() and char.isalpha()):
        return _parse_token(reader)
    raise reader.fail("expected an item")


def _parse_number(reader: _Reader) -> int | Decimal:
    start = reader.pos
    if reader.peek() == "-":
        reader.take()
    digits_start = reader.pos
    while not reader.at_end() and reader.peek() in string.digits + ".":
        reader.take()
    text = reader.text[digits_start : reader.pos]
    if not text or not text[0].isdigit():
        raise reader.fail("expected a digit")
    whole, dot, fraction = text.partition(".")
    if not dot:
        if len(whole) > 15:
            raise reader.fail("integer too long")
        return int(reader.text[start : reader.pos])
    if "." in fraction or len(whole) > 12 or not 1 <= len(fraction) <= 3:
        raise reader.fail("malformed decimal")
    return Decimal(reader.text[start : reader.pos])


def _parse_string(reader: _Reader) -> str:
    reader.take()
    out: list[str] = []
    while not reader.at_end():
        char = reader.take()
        if char == "\\":
            escaped = reader.take()
            if escaped not in ('"', "\\"):
                raise reader.fail("bad escape in string")
            out.append(escaped)
        elif char == '"':
            return "".join(out)
        elif not " " <= char <= "~":
            raise reader.fail("non-printable character in string")
        else:
            out.append(char)
    raise reader.fail("unterminated string")


def _parse_token(reader: _Reader) -> Token:
    start = reader.pos
    reader.take()
    while not reader.at_end() and reader.peek() in _TOKEN_CHARS:
        reader.take()
    return Token(reader.text[start : reader.pos])


def _parse_bytes(reader: _Reader) -> bytes:
    reader.take()
    end = reader.text.find(":", reader.pos)
    if end < 0:
        raise reader.fail("unterminated byte sequence")
    encoded = reader.text[reader.pos : end]
    if not _BASE64_RE.fullmatch(encoded):
        raise reader.fail("invalid base64 in byte sequence")
    reader.pos = end + 1
    # RFC 8941 4.2.7: parsers SHOULD NOT fail on missing "=" padding.
    padded = encoded.rstrip("=") + "=" * (-len(encoded.rstrip("=")) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error as error:
        raise reader.fail("invalid base64 in byte sequence") from error


def _parse_boolean(reader: _Reader) -> bool:
    reader.take()
    char = reader.take()
    if char not in ("0", "1"):
        raise reader.fail("expected ?0 or ?1")
    return char == "1"


def serialize_dictionary(members: dict[str, Member]) -> str:
    """Serialise a Dictionary (RFC 8941 Section 4.1.2)."""
    parts = []
    for key, member in members.items():
        if isinstance(member, Item) and member.value is True:
            parts.append(_serialize_key(key) + serialize_params(member.params))
        else:
            parts.append(f"{_serialize_key(key)}={serialize_member(member)}")
    return ", ".join(parts)


def serialize_list(members: list[Member]) -> str:
    """Serialise a List (RFC 8941 Section 4.1.1)."""
    return ", ".join(serialize_member(member) for member in members)


def serialize_member(member: Member) -> str:
    """Serialise an Item or an Inner List with its parameters."""
    if isinstance(member, InnerList):
        inner = " ".join(serialize_member(item) for item in member.items)
        return f"({inner}){serialize_params(member.params)}"
    return serialize_bare_item(member.value) + serialize_params(member.params)


def serialize_params(params: Params) -> str:
    """Serialise parameters (RFC 8941 Section 4.1.1.2): ``;key`` for true, ``;key=value``."""
    out = []
    for key, value in params.items():
        out.append(";" + _serialize_key(key))
        if value is not True:
            out.append("=" + serialize_bare_item(value))
    return "".join(out)


def serialize_bare_item(value: BareItem) -> str:
    """Serialise one bare item (RFC 8941 Section 4.1.3)."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > _MAX_INTEGER:
            raise MalformedStructuredField(f"integer out of range: {value}")
        return str(value)
    if isinstance(value, Decimal):
        return _serialize_decimal(value)
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        if (
            not value
            or value[0] not in _KEY_START | set(string.ascii_uppercase)
            or any(char not in _TOKEN_CHARS for char in value)
        ):
            raise MalformedStructuredField(f"not a token: {value!r}")
        return str(value)
    if any(not " " <= char <= "~" for char in value):
        raise MalformedStructuredField(f"string with non-printable characters: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _serialize_decimal(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.001"))
    if abs(rounded) >= Decimal(10) ** 12:
        raise MalformedStructuredField(f"decimal out of range: {value}")
    text = format(rounded, "f").rstrip("0")
    return text + "0" if text.endswith(".") else text


def _serialize_key(key: str) -> str:
    if not key or key[0] not in _KEY_START or any(char not in _KEY_CHARS for char in key):
        raise MalformedStructuredField(f"not a key: {key!r}")
    return key


def canonical_field(name: str, value: str) -> str:
    """A known structured field re-serialised (RFC 9421 ``sf``): ``a=1,   b`` → ``a=1, b``."""
    kind = FIELD_TYPES.get(name.lower())
    if kind == "dictionary":
        return serialize_dictionary(parse_dictionary(value))
    if kind == "list":
        return serialize_list(parse_list(value))
    if kind == "item":
        return serialize_member(parse_item(value))
    raise MalformedStructuredField(f"the structured type of field {name} is unknown")


def dictionary_member(value: str, key: str) -> str:
    """One member of a Dictionary field, serialised (RFC 9421 ``key``)."""
    members = parse_dictionary(value)
    if key not in members:
        raise MalformedStructuredField(f"the dictionary has no member {key!r}")
    return serialize_member(members[key])
