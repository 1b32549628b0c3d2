"""Body digests that bind a signature to a request body, pure.

Two generations are in use on the fediverse: ``Digest: SHA-256=<base64>`` (RFC 3230, what
draft-cavage signers send, Mastodon's only accepted algorithm) and
``Content-Digest: sha-256=:<base64>:`` (RFC 9530, a structured dictionary, what RFC 9421
signers cover). Both checks accept SHA-256 and SHA-512 and demand that every supported digest
offered matches, so a correct SHA-256 cannot vouch for a forged SHA-512 next to it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal

from bridge.activitypub.structured_fields import Item, parse_dictionary
from bridge.errors import DigestMismatch, MalformedStructuredField

DigestAlgorithm = Literal["sha-256", "sha-512"]
_ALGORITHMS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def body_digest(body: bytes, algorithm: DigestAlgorithm = "sha-256") -> bytes:
    """The raw digest of ``body``."""
    return _ALGORITHMS[algorithm](body).digest()


def digest_header(body: bytes, algorithm: DigestAlgorithm = "sha-256") -> str:
    """An RFC 3230 ``Digest`` value, e.g. ``SHA-256=X48E9q…DBPE=``."""
    encoded = base64.b64encode(body_digest(body, algorithm)).decode("ascii")
    return f"{algorithm.upper()}={encoded}"


def content_digest_header(body: bytes, algorithm: DigestAlgorithm = "sha-256") -> str:
    """An RFC 9530 ``Content-Digest`` value, e.g. ``sha-256=:X48E9q…DBPE=:``."""
    encoded = base64.b64encode(body_digest(body, algorithm)).decode("ascii")
    return f"{algorithm}=:{encoded}:"


def check_digest_header(value: str, body: bytes) -> None:
    """Raise :class:`DigestMismatch` unless the RFC 3230 ``Digest`` value matches ``body``."""
    offered: list[tuple[DigestAlgorithm, bytes]] = []
    for part in value.split(","):
        name, equals, encoded = part.strip().partition("=")
        if not equals:
            raise DigestMismatch(f"Digest entry without '=': {part.strip()[:40]!r}")
        algorithm = _known(name.lower())
        if algorithm is None:
            continue
        try:
            offered.append((algorithm, base64.b64decode(encoded.strip(), validate=True)))
        except ValueError:  # binascii.Error, or non-ASCII text
            raise DigestMismatch(f"Digest {name} is not base64") from None
    _compare(offered, body, "Digest")


def check_content_digest(value: str, body: bytes) -> None:
    """Raise :class:`DigestMismatch` unless the RFC 9530 ``Content-Digest`` matches ``body``."""
    try:
        members = parse_dictionary(value)
    except MalformedStructuredField as error:
        raise DigestMismatch(f"Content-Digest is no structured dictionary: {error}") from error
    offered: list[tuple[DigestAlgorithm, bytes]] = []
    for name, member in members.items():
        algorithm = _known(name)
        if algorithm is None:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise DigestMismatch(f"Content-Digest {name} is not a byte sequence")
        offered.append((algorithm, member.value))
    _compare(offered, body, "Content-Digest")


def _known(name: str) -> DigestAlgorithm | None:
    if name == "sha-256":
        return "sha-256"
    if name == "sha-512":
        return "sha-512"
    return None


def _compare(offered: list[tuple[DigestAlgorithm, bytes]], body: bytes, header: str) -> None:
    if not offered:
        raise DigestMismatch(f"{header} offers neither sha-256 nor sha-512")
    for algorithm, expected in offered:
        if not hmac.compare_digest(body_digest(body, algorithm), expected):
            raise DigestMismatch(f"{header} {algorithm} does not match the body")
