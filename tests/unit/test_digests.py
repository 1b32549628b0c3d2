"""Digest (RFC 3230) and Content-Digest (RFC 9530): made right, checked strictly."""

from __future__ import annotations

import pytest

from bridge.activitypub.digests import (
    check_content_digest,
    check_digest_header,
    content_digest_header,
    digest_header,
)
from bridge.errors import DigestMismatch

BODY = b'{"hello": "world"}'
SHA256 = "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
SHA512 = "WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew=="


def test_headers_are_made_in_each_syntax() -> None:
    assert digest_header(BODY) == f"SHA-256={SHA256}"
    assert digest_header(BODY, "sha-512") == f"SHA-512={SHA512}"
    assert content_digest_header(BODY) == f"sha-256=:{SHA256}:"
    assert content_digest_header(b"") == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


@pytest.mark.parametrize(
    "value",
    [
        f"SHA-256={SHA256}",
        f"sha-256={SHA256}",
        f"SHA-256={SHA256}, SHA-512={SHA512}",
        f"MD5=Sd/dVLAcvNLSq16eXua5uQ==,SHA-256={SHA256}",
    ],
)
def test_matching_digest_passes(value: str) -> None:
    check_digest_header(value, BODY)


@pytest.mark.parametrize(
    ("value", "body", "problem"),
    [
        (f"SHA-256={SHA256}", b"tampered", "sha-256 does not match"),
        (f"SHA-256={SHA256}, SHA-512={SHA256}", BODY, "sha-512 does not match"),
        ("MD5=Sd/dVLAcvNLSq16eXua5uQ==", BODY, "neither"),
        ("SHA-256=not base64!", BODY, "not base64"),
        ("SHA-256=ä", BODY, "not base64"),
        ("SHA-256", BODY, "without '='"),
        ("", BODY, "without '='"),
    ],
)
def test_wrong_digest_fails(value: str, body: bytes, problem: str) -> None:
    with pytest.raises(DigestMismatch, match=problem):
        check_digest_header(value, body)


@pytest.mark.parametrize(
    "value",
    [
        f"sha-256=:{SHA256}:",
        f"sha-512=:{SHA512}:",
        f"sha-256=:{SHA256}:, unixsum=30637",
        f"unixsum=30637, sha-512=:{SHA512}:",
    ],
)
def test_matching_content_digest_passes(value: str) -> None:
    check_content_digest(value, BODY)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"sha-256=:{SHA512}:", "sha-256 does not match"),
        (f"sha-256=:{SHA256}:, sha-512=:{SHA256}:", "sha-512 does not match"),
        ("unixsum=30637", "neither"),
        ("", "neither"),
        (f'sha-256="{SHA256}"', "not a byte sequence"),
        (f"sha-256=(:{SHA256}:)", "not a byte sequence"),
        (f"sha-256=:{SHA256}", "no structured dictionary"),
        (f"SHA-256=:{SHA256}:", "no structured dictionary"),
    ],
)
def test_wrong_content_digest_fails(value: str, problem: str) -> None:
    with pytest.raises(DigestMismatch, match=problem):
        check_content_digest(value, BODY)
