"""HTTP Signatures as the fediverse speaks them: draft-cavage-http-signatures-12, pure.

Signing follows Mastodon: ``rsa-sha256`` over ``(request-target) host date`` plus ``digest``
(and ``content-type`` when present) for requests with a body. Verification follows
Mastodon's rules too: ``rsa-sha256`` and ``hs2019`` (RSASSA-PKCS1-v1_5 with SHA-256 for RSA
keys), any header order, ``(request-target)``, ``host`` and ``date`` or ``(created)``
covered, ``digest`` covered and checked whenever there is a body.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from bridge.activitypub.digests import check_digest_header, digest_header
from bridge.activitypub.signed_requests import (
    MAX_SIGNATURE_HEADER,
    SignedRequest,
    VerifiedSignature,
    check_fresh,
    check_host,
    check_not_expired,
    format_http_date,
    load_private_key,
    load_public_key,
    parse_http_date,
    rsa_sign,
    rsa_verify,
    timestamp,
)
from bridge.errors import (
    InsufficientCoverage,
    MalformedSignature,
    MissingSignature,
    SignatureMismatch,
    UnsupportedAlgorithm,
)

SUPPORTED_ALGORITHMS = ("rsa-sha256", "hs2019")
REQUEST_TARGET = "(request-target)"

# RFC 9110 token characters, optional white space, and the list separators, matched in C.
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]*")
_SPACE = re.compile(r"[ \t]*")
_SEPARATORS = re.compile(r"[ \t,]*")
# The common case of a quoted value (no escapes, no control characters but tab) in one C-level
# match: a signature's 344 base64 characters cost ~100 us walked one by one in Python.
_PLAIN_QUOTED = re.compile(r'"([^"\\\x00-\x08\x0a-\x1f\x7f]*)"')
_INTEGER = re.compile(r"[0-9]{1,15}")
_DECIMAL = re.compile(r"[0-9]{1,15}(\.[0-9]{1,9})?")
# Section 2.3 items 2 and 3: these algorithms may not sign (created) or (expires).
_NO_PSEUDO_TIMES = ("rsa", "hmac", "ecdsa")


@dataclass(frozen=True)
class CavageSignature:
    """A parsed ``Signature`` header (or ``Authorization: Signature`` parameters)."""

    key_id: str
    algorithm: str
    headers: tuple[str, ...]
    signature: bytes
    created: int | None = None
    expires: Decimal | None = None


def find_cavage_header(request: SignedRequest) -> str:
    """The ``Signature`` header, else the parameters of ``Authorization: Signature …``."""
    value = request.header("signature")
    if value is not None:
        return value
    authorization = request.header("authorization")
    if authorization is not None:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() == "signature":
            return params
    raise MissingSignature("the request carries no HTTP signature")


@functools.lru_cache(maxsize=256)
def parse_cavage_signature(value: str) -> CavageSignature:
    """Parse the parameters; anything unparsable raises :class:`MalformedSignature`.

    Missing ``algorithm`` means ``hs2019``; missing ``headers`` means ``(created)`` for
    hs2019 and ``date`` for the older algorithms (what Mastodon does). Memoised (the result
    is immutable): the inbox asks for the key id before it verifies, so each header is parsed
    twice otherwise.
    """
    if len(value) > MAX_SIGNATURE_HEADER:
        raise MalformedSignature(f"signature header longer than {MAX_SIGNATURE_HEADER} bytes")
    params = _parse_params(value)
    key_id = params.get("keyid", "")
    encoded = params.get("signature", "")
    if not key_id or not encoded:
        raise MalformedSignature("keyId and signature are required")
    algorithm = params.get("algorithm", "hs2019").lower()
    default = "(created)" if algorithm == "hs2019" else "date"
    headers = tuple(params.get("headers", default).lower().split())
    if not headers:
        raise MalformedSignature("an empty headers list signs nothing")
    if len(set(headers)) != len(headers):
        raise MalformedSignature("headers lists a field twice")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except ValueError as error:  # binascii.Error, or non-ASCII text
        raise MalformedSignature("signature is not base64") from error
    created = _timestamp_text(params, "created", _INTEGER)
    expires = _timestamp_text(params, "expires", _DECIMAL)
    return CavageSignature(
        key_id=key_id,
        algorithm=algorithm,
        headers=headers,
        signature=signature,
        created=None if created is None else int(created),
        expires=None if expires is None else Decimal(expires),
    )


def cavage_signing_string(request: SignedRequest, signature: CavageSignature) -> str:
    """The signing string of Section 2.3 for the covered ``headers``, in their order."""
    lines = []
    for name in signature.headers:
        if name == REQUEST_TARGET:
            lines.append(f"{REQUEST_TARGET}: {request.method.lower()} {request.origin_form}")
        elif name in ("(created)", "(expires)"):
            value = signature.created if name == "(created)" else signature.expires
            if signature.algorithm.startswith(_NO_PSEUDO_TIMES):
                raise MalformedSignature(f"{name} cannot be signed with {signature.algorithm}")
            if value is None:
                raise MalformedSignature(f"{name} is signed but its parameter is missing")
            lines.append(f"{name}: {value}")
        else:
            header = request.header(name)
            if header is None:
                raise MalformedSignature(f"signed header {name!r} is not in the request")
            lines.append(f"{name}: {header}")
    return "\n".join(lines)


def check_cavage_signature(
    request: SignedRequest, signature: CavageSignature, public_key_pem: str
) -> None:
    """Raise :class:`SignatureMismatch` unless the signature holds over the request.

    Only the cryptography: :func:`verify_cavage` adds the policy around it.
    """
    data = cavage_signing_string(request, signature).encode("utf-8", "surrogateescape")
    key = load_public_key(public_key_pem)
    if not rsa_verify(key, signature.signature, data, "rsa-v1_5-sha256"):
        raise SignatureMismatch(f"signature of {signature.key_id} does not verify")


def cavage_signature(
    request: SignedRequest,
    *,
    covered: Sequence[str],
    key_id: str,
    private_key_pem: str,
    algorithm: str = "rsa-sha256",
    created: int | None = None,
    expires: int | None = None,
) -> str:
    """The ``Signature`` header value signing ``covered`` of ``request`` (RSA, SHA-256)."""
    unsigned = CavageSignature(
        key_id=key_id,
        algorithm=algorithm,
        headers=tuple(name.lower() for name in covered),
        signature=b"",
        created=created,
        expires=None if expires is None else Decimal(expires),
    )
    data = cavage_signing_string(request, unsigned).encode("utf-8", "surrogateescape")
    signed = rsa_sign(load_private_key(private_key_pem), data, "rsa-v1_5-sha256")
    parts = [f"keyId={_quote(key_id)}", f"algorithm={_quote(algorithm)}"]
    if created is not None:
        parts.append(f"created={created}")
    if expires is not None:
        parts.append(f"expires={expires}")
    parts.append(f"headers={_quote(' '.join(unsigned.headers))}")
    parts.append(f"signature={_quote(base64.b64encode(signed).decode('ascii'))}")
    return ",".join(parts)


def sign_cavage(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    key_id: str,
    private_key_pem: str,
    now: datetime,
) -> dict[str, str]:
    """Headers to add to (and replace in) a request so Mastodon & co. accept its signature.

    ``Host``, ``Date``, for requests with a body ``Digest``, and ``Signature`` covering
    ``(request-target) host date`` plus ``digest`` and ``content-type`` when present.
    """
    request = SignedRequest.for_url(method, url, headers, body)
    added = {"Host": request.target_authority, "Date": format_http_date(now)}
    covered = [REQUEST_TARGET, "host", "date"]
    if request.carries_body:
        added["Digest"] = digest_header(body or b"")
        covered.append("digest")
        if request.header("content-type") is not None:
            covered.append("content-type")
    added["Signature"] = cavage_signature(
        request.with_headers(added),
        covered=covered,
        key_id=key_id,
        private_key_pem=private_key_pem,
    )
    return added


def verify_cavage(
    request: SignedRequest,
    public_key_pem: str,
    *,
    now: datetime,
    max_skew: timedelta,
    expected_host: str | None = None,
) -> VerifiedSignature:
    """Verify a draft-cavage signature under Mastodon's rules; raise a SignatureError."""
    signature = parse_cavage_signature(find_cavage_header(request))
    if signature.algorithm not in SUPPORTED_ALGORITHMS:
        raise UnsupportedAlgorithm(f"algorithm {signature.algorithm!r} is not supported")
    covered = set(signature.headers)
    _require(REQUEST_TARGET in covered, "(request-target) is not signed")
    _require("host" in covered, "host is not signed")
    _require(bool(covered & {"date", "(created)"}), "neither date nor (created) is signed")
    _require("digest" in covered or not request.carries_body, "digest is not signed")
    created = None
    if "date" in covered:
        date = request.header("date")
        if date is None:
            raise MalformedSignature("date is signed but the Date header is missing")
        created = parse_http_date(date)
        check_fresh(created, now, max_skew, "Date")
    if signature.created is not None:
        created = timestamp(signature.created)
        check_fresh(created, now, max_skew, "created")
    if signature.expires is not None:
        check_not_expired(timestamp(float(signature.expires)), now)
    check_host(request.header("host") or "", expected_host, request.scheme)
    if "digest" in covered:
        digest = request.header("digest")
        if digest is None:
            raise MalformedSignature("digest is signed but the Digest header is missing")
        check_digest_header(digest, request.body or b"")
    check_cavage_signature(request, signature, public_key_pem)
    return VerifiedSignature(
        key_id=signature.key_id,
        scheme="cavage",
        covered=signature.headers,
        algorithm=signature.algorithm,
        created=created,
    )


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise InsufficientCoverage(problem)


def _parse_params(value: str) -> dict[str, str]:
    """auth-param list (RFC 9110 Section 11.2): ``name=token`` or ``name="quoted"``, commas."""
    params: dict[str, str] = {}
    pos, end = 0, len(value)
    while True:
        pos = _end(_SEPARATORS, value, pos)
        if pos == end:
            break
        start = pos
        pos = _end(_TOKEN, value, pos)
        name = value[start:pos].lower()
        pos = _end(_SPACE, value, pos)
        if not name or pos == end or value[pos] != "=":
            raise MalformedSignature(f"expected name=value at offset {start}")
        pos = _end(_SPACE, value, pos + 1)
        if pos < end and value[pos] == '"':
            text, pos = _quoted(value, pos)
        else:
            start = pos
            pos = _end(_TOKEN, value, pos)
            text = value[start:pos]
            if not text:
                raise MalformedSignature(f"parameter {name!r} has no value")
        if name in params:
            raise MalformedSignature(f"parameter {name!r} appears twice")
        params[name] = text
        pos = _end(_SPACE, value, pos)
        if pos < end and value[pos] != ",":
            raise MalformedSignature(f"expected ',' at offset {pos}")
    if not params:
        raise MalformedSignature("the signature header is empty")
    return params


def _end(pattern: re.Pattern[str], value: str, pos: int) -> int:
    """Where ``pattern`` stops matching from ``pos`` (these patterns also match nothing)."""
    match = pattern.match(value, pos)
    return pos if match is None else match.end()


def _quoted(value: str, pos: int) -> tuple[str, int]:
    """A quoted-string starting at ``pos``; returns its text and the position after it."""
    plain = _PLAIN_QUOTED.match(value, pos)
    if plain is not None:
        return plain.group(1), plain.end()
    out: list[str] = []
    pos += 1
    while pos < len(value):
        char = value[pos]
        if char == "\\" and pos + 1 < len(value):
            out.append(value[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        elif (char < " " and char != "\t") or char == "\x7f":
            raise MalformedSignature("control character in a quoted parameter")
        else:
            out.append(char)
            pos += 1
    raise MalformedSignature("unterminated quoted parameter")


def _timestamp_text(params: dict[str, str], name: str, pattern: re.Pattern[str]) -> str | None:
    text = params.get(name)
    if text is not None and not pattern.fullmatch(text):
        raise MalformedSignature(f"{name} is not a Unix timestamp: {text[:20]!r}")
    return text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
