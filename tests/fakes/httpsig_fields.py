"""The header fields HTTP signatures bind, for the fakes (pure, independent of ``bridge/``).

Structured fields (RFC 8941) as far as ``Signature-Input``, ``Signature`` and
``Content-Digest`` need them (no decimals), and body digests: RFC 3230 ``Digest`` (what
draft-cavage signers send) and RFC 9530 ``Content-Digest`` (what RFC 9421 signers cover).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_SF_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
_SF_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+.^_`|~:/-]*")
_SF_INTEGER = re.compile(r"-?[0-9]{1,15}")


class SignatureRejected(Exception):
    """The signature does not hold; ``reason`` is what the fakes record and answer 401 with."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Token(str):
    """A structured-field token (serialised bare), as opposed to a string (serialised quoted)."""


BareItem = int | str | bool | bytes
Params = dict[str, BareItem]


# digests


def digest_header(body: bytes) -> str:
    """RFC 3230 ``Digest: SHA-256=…``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def content_digest_header(body: bytes) -> str:
    """RFC 9530 ``Content-Digest: sha-256=:…:``."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def check_digest(value: str | None, body: bytes) -> None:
    """Mastodon's rule: a ``SHA-256`` entry must be present and equal the body's digest."""
    if value is None:
        raise SignatureRejected("digest is signed but there is no Digest header")
    for part in value.split(","):
        name, _, encoded = part.strip().partition("=")
        if name.upper() == "SHA-256":
            if not hmac.compare_digest(encoded.strip(), digest_header(body)[8:]):
                raise SignatureRejected("Digest does not match the body")
            return
    raise SignatureRejected("Digest has no SHA-256 entry")


def check_content_digest(value: str | None, body: bytes) -> None:
    """Every ``sha-256``/``sha-512`` member must match; at least one must be offered."""
    if value is None:
        raise SignatureRejected("content-digest is signed but there is no Content-Digest")
    functions = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    checked = 0
    for name, (offered, _) in parse_dictionary(value).items():
        if name not in functions:
            continue
        if not isinstance(offered, bytes):
            raise SignatureRejected(f"Content-Digest {name} is not a byte sequence")
        if not hmac.compare_digest(offered, functions[name](body).digest()):
            raise SignatureRejected(f"Content-Digest {name} does not match the body")
        checked += 1
    if not checked:
        raise SignatureRejected("Content-Digest offers neither sha-256 nor sha-512")


# structured fields

Member = tuple[BareItem | list[tuple[BareItem, Params]], Params]


def parse_dictionary(text: str) -> dict[str, Member]:
    """An RFC 8941 dictionary; decimals are refused (nothing here uses them)."""
    return _Parser(text).dictionary()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text.strip(" ")
        self.pos = 0

    def fail(self, what: str) -> SignatureRejected:
        return SignatureRejected(f"malformed structured field ({what} at {self.pos})")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def dictionary(self) -> dict[str, Member]:
        members: dict[str, Member] = {}
        while self.pos < len(self.text):
            key = self.match(_SF_KEY, "key")
            if self.peek() == "=":
                self.pos += 1
                value: BareItem | list[tuple[BareItem, Params]]
                value = self.inner_list() if self.peek() == "(" else self.bare_item()
            else:
                value = True
            members[key] = (value, self.params())
            self.skip(" \t")
            if self.pos == len(self.text):
                break
            if self.peek() != ",":
                raise self.fail("expected ','")
            self.pos += 1
            self.skip(" \t")
            if self.pos == len(self.text):
                raise self.fail("trailing comma")
        return members

    def inner_list(self) -> list[tuple[BareItem, Params]]:
        self.pos += 1
        items: list[tuple[BareItem, Params]] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return items
            items.append((self.bare_item(), self.params()))
            if self.peek() not in (" ", ")"):
                raise self.fail("expected ' ' or ')'")

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.match(_SF_KEY, "parameter key")
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[key] = value
        return params

    def bare_item(self) -> BareItem:
        first = self.peek()
        if first == '"':
            return self.string()
        if first == ":":
            end = self.text.find(":", self.pos + 1)
            if end < 0:
                raise self.fail("unterminated byte sequence")
            encoded, self.pos = self.text[self.pos + 1 : end], end + 1
            try:
                return base64.b64decode(encoded, validate=True)
            except ValueError as error:
                raise self.fail("bad base64") from error
        if first == "?":
            value = self.text[self.pos + 1 : self.pos + 2]
            if value not in ("0", "1"):
                raise self.fail("bad boolean")
            self.pos += 2
            return value == "1"
        if first == "-" or first.isdigit():
            number = self.match(_SF_INTEGER, "integer")
            if self.peek() == ".":
                raise self.fail("decimals are not supported")
            return int(number)
        return Token(self.match(_SF_TOKEN, "item"))

    def string(self) -> str:
        self.pos += 1
        chars = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                escaped = self.text[self.pos : self.pos + 1]
                if escaped not in ('"', "\\"):
                    raise self.fail("bad escape")
                chars.append(escaped)
                self.pos += 1
            elif char == '"':
                return "".join(chars)
            elif not " " <= char <= "~":
                raise self.fail("non-printable character in string")
            else:
                chars.append(char)
        raise self.fail("unterminated string")

    def match(self, pattern: re.Pattern[str], what: str) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None:
            raise self.fail(f"expected {what}")
        self.pos = found.end()
        return found.group(0)

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.pos += 1


def serialize_item(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    if isinstance(value, Token):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_params(params: Params) -> str:
    return "".join(
        f";{key}" if value is True else f";{key}={serialize_item(value)}"
        for key, value in params.items()
    )
