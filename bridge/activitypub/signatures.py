"""HTTP signatures in both directions, both generations: the one entry point, pure.

Outgoing requests are signed with :func:`sign_cavage` (draft-cavage-12, what every fediverse
server verifies) or :func:`sign_rfc9421` (RFC 9421, accepted by Mastodon 4.4+ and Fedify).
Incoming requests are checked with :func:`key_id_of` (which key to fetch) and :func:`verify`
(with that key's PEM). An RFC 9421 signature (``Signature-Input``) is preferred over a cavage
``Signature`` when a request carries both. Key fetching and caching live elsewhere.

Every failure is a :class:`~bridge.errors.SignatureError`:

- ``MissingSignature``: no signature at all;
- ``MalformedSignature``: garbage, oversized headers, a signed component that is absent;
  its ``InsufficientCoverage`` names a required component left unsigned (request target,
  host, date/created, or the body digest of a request with a body);
- ``UnsupportedAlgorithm``: an algorithm or key type other than RSA with rsa-sha256/hs2019
  (cavage) or rsa-v1_5-sha256/rsa-pss-sha512 (RFC 9421);
- ``StaleSignature``: Date or created more than ``max_skew`` away from now, or expired;
- ``HostMismatch``: signed for another host than ``expected_host``;
- ``DigestMismatch``: the body does not match the signed digest;
- ``SignatureMismatch``: the signature itself does not verify.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge.activitypub.cavage import (
    CavageSignature,
    cavage_signature,
    cavage_signing_string,
    check_cavage_signature,
    find_cavage_header,
    parse_cavage_signature,
    sign_cavage,
    verify_cavage,
)
from bridge.activitypub.digests import content_digest_header, digest_header
from bridge.activitypub.message_signatures import (
    Component,
    Rfc9421Signature,
    check_rfc9421_signature,
    parse_rfc9421,
    rfc9421_signature,
    select_rfc9421,
    sign_rfc9421,
    signature_base,
    verify_rfc9421,
)
from bridge.activitypub.signed_requests import SignedRequest, VerifiedSignature
from bridge.errors import MalformedSignature

__all__ = [
    "CavageSignature",
    "Component",
    "Rfc9421Signature",
    "SignedRequest",
    "VerifiedSignature",
    "cavage_signature",
    "cavage_signing_string",
    "check_cavage_signature",
    "check_rfc9421_signature",
    "content_digest_header",
    "digest_header",
    "key_id_of",
    "parse_cavage_signature",
    "parse_rfc9421",
    "rfc9421_signature",
    "sign_cavage",
    "sign_rfc9421",
    "signature_base",
    "verify",
]


def key_id_of(request: SignedRequest, *, label: str | None = None) -> str:
    """The key id the request claims to be signed with (RFC 9421 first, then cavage)."""
    if request.header("signature-input") is not None:
        key_id = select_rfc9421(request, label).key_id
        if key_id is None:
            raise MalformedSignature("the signature names no keyid")
        return key_id
    return parse_cavage_signature(find_cavage_header(request)).key_id


def verify(
    request: SignedRequest,
    public_key_pem: str,
    *,
    now: datetime,
    max_skew: timedelta,
    expected_host: str | None = None,
    label: str | None = None,
) -> VerifiedSignature:
    """Verify the request's signature with ``public_key_pem`` or raise a SignatureError.

    ``now`` comes from the context clock; ``max_skew`` bounds how far Date/created may lie
    in the past or the future; ``expected_host`` (our host, as clients address it) is
    compared with the signed host when given; ``label`` picks one of several RFC 9421
    signatures (default: the first).
    """
    if request.header("signature-input") is not None:
        return verify_rfc9421(
            request,
            public_key_pem,
            now=now,
            max_skew=max_skew,
            expected_host=expected_host,
            label=label,
        )
    return verify_cavage(
        request, public_key_pem, now=now, max_skew=max_skew, expected_host=expected_host
    )
