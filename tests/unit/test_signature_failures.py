"""Every way an HTTP signature can fail raises its own SignatureError, and only that."""

from __future__ import annotations

import base64
import contextlib
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from bridge.activitypub.signatures import (
    SignedRequest,
    cavage_signature,
    content_digest_header,
    digest_header,
    key_id_of,
    parse_cavage_signature,
    parse_rfc9421,
    rfc9421_signature,
    sign_cavage,
    sign_rfc9421,
    verify,
)
from bridge.activitypub.signed_requests import MAX_SIGNATURE_HEADER
from bridge.errors import (
    DigestMismatch,
    HostMismatch,
    InsufficientCoverage,
    MalformedSignature,
    MissingSignature,
    SignatureError,
    SignatureMismatch,
    StaleSignature,
    UnsupportedAlgorithm,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
URL = "https://bridge.example/users/talkabout/inbox"
HOST = "bridge.example"
BODY = b'{"type": "Follow", "actor": "https://remote.example/users/alice"}'
TYPE = {"Content-Type": "application/activity+json"}
Signer = Callable[..., dict[str, str]]
SCHEMES: dict[str, Signer] = {"cavage": sign_cavage, "rfc9421": sign_rfc9421}


@pytest.fixture(scope="module")
def key() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode(),
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode(),
    )


def arrived(headers: dict[str, str], body: bytes | None, method: str = "POST") -> SignedRequest:
    """The request as our inbox receives it."""
    return SignedRequest(
        method=method,
        path="/users/talkabout/inbox",
        headers={"Host": HOST, **headers},
        body=body,
    )


def signed(
    scheme: str, private: str, *, body: bytes | None = BODY, now: datetime = NOW
) -> dict[str, str]:
    method = "POST" if body is not None else "GET"
    added = SCHEMES[scheme](method, URL, TYPE, body, key_id="k", private_key_pem=private, now=now)
    return {**TYPE, **added}


def check(request: SignedRequest, public: str, **kwargs: object) -> None:
    options: dict[str, object] = {"now": NOW, "max_skew": SKEW, "expected_host": HOST}
    options.update(kwargs)
    verify(request, public, **options)  # type: ignore[arg-type]


both = pytest.mark.parametrize("scheme", sorted(SCHEMES))


@both
def test_valid_signature_passes(scheme: str, key: tuple[str, str]) -> None:
    private, public = key
    check(arrived(signed(scheme, private), BODY), public)


def test_unsigned_request_is_missing_a_signature(key: tuple[str, str]) -> None:
    request = arrived({"Date": "Sat, 28 Nov 2026 12:00:00 GMT", **TYPE}, BODY)
    with pytest.raises(MissingSignature):
        check(request, key[1])
    with pytest.raises(MissingSignature):
        key_id_of(request)
    basic = arrived({"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, None, "GET")
    with pytest.raises(MissingSignature):
        check(basic, key[1])


def test_cavage_in_authorization_header_is_accepted(key: tuple[str, str]) -> None:
    headers = signed("cavage", key[0])
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    check(arrived(headers, BODY), key[1])


def test_wrong_digest_is_a_digest_mismatch(key: tuple[str, str]) -> None:
    private, public = key
    other = b'{"type": "Undo"}'
    request = arrived({**TYPE, "Date": "Sat, 28 Nov 2026 12:00:00 GMT"}, BODY)
    with_digest = request.with_headers({"Digest": digest_header(other)})
    header = cavage_signature(
        with_digest,
        covered=["(request-target)", "host", "date", "digest"],
        key_id="k",
        private_key_pem=private,
    )
    with pytest.raises(DigestMismatch):
        check(with_digest.with_headers({"Signature": header}), public)
    with_content_digest = request.with_headers({"Content-Digest": content_digest_header(other)})
    signature_input, signature = rfc9421_signature(
        with_content_digest,
        components=["@method", "@target-uri", "content-digest"],
        params={"created": int(NOW.timestamp()), "keyid": "k"},
        private_key_pem=private,
    )
    with pytest.raises(DigestMismatch):
        check(
            with_content_digest.with_headers(
                {"Signature-Input": signature_input, "Signature": signature}
            ),
            public,
        )


def test_unsigned_digest_is_insufficient_coverage(key: tuple[str, str]) -> None:
    private, public = key
    request = arrived(
        {**TYPE, "Date": "Sat, 28 Nov 2026 12:00:00 GMT", "Digest": digest_header(BODY)}, BODY
    )
    header = cavage_signature(
        request, covered=["(request-target)", "host", "date"], key_id="k", private_key_pem=private
    )
    with pytest.raises(InsufficientCoverage, match="digest is not signed") as caught:
        check(request.with_headers({"Signature": header}), public)
    assert isinstance(caught.value, MalformedSignature)
    signature_input, signature = rfc9421_signature(
        request,
        components=["@method", "@target-uri"],
        params={"created": int(NOW.timestamp()), "keyid": "k"},
        private_key_pem=private,
    )
    with pytest.raises(InsufficientCoverage, match="content-digest is not signed"):
        check(
            request.with_headers({"Signature-Input": signature_input, "Signature": signature}),
            public,
        )


@both
@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_date_outside_the_window_is_stale(
    scheme: str, offset: timedelta, key: tuple[str, str]
) -> None:
    """Signed six minutes before (stale) or after (from the future) our clock."""
    private, public = key
    request = arrived(signed(scheme, private, now=NOW + offset), BODY)
    with pytest.raises(StaleSignature, match="future" if offset > timedelta(0) else "too old"):
        check(request, public)
    check(request, public, max_skew=timedelta(minutes=7))


def test_cavage_expires_in_the_past_is_stale(key: tuple[str, str]) -> None:
    private, public = key
    request = arrived({**TYPE, "Digest": digest_header(BODY)}, BODY)
    created = int(NOW.timestamp()) - 60
    header = cavage_signature(
        request,
        covered=["(request-target)", "(created)", "(expires)", "host", "digest"],
        key_id="k",
        private_key_pem=private,
        algorithm="hs2019",
        created=created,
        expires=created + 30,
    )
    with pytest.raises(StaleSignature, match="expired"):
        check(request.with_headers({"Signature": header}), public)


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "rsa-sha512", "ed25519"])
def test_unknown_cavage_algorithm_is_unsupported(algorithm: str, key: tuple[str, str]) -> None:
    headers = signed("cavage", key[0])
    headers["Signature"] = headers["Signature"].replace('"rsa-sha256"', f'"{algorithm}"')
    with pytest.raises(UnsupportedAlgorithm):
        check(arrived(headers, BODY), key[1])


def test_unknown_rfc9421_alg_is_unsupported(key: tuple[str, str]) -> None:
    headers = signed("rfc9421", key[0])
    headers["Signature-Input"] = headers["Signature-Input"].replace("rsa-v1_5-sha256", "ed25519")
    with pytest.raises(UnsupportedAlgorithm):
        check(arrived(headers, BODY), key[1])


@both
def test_a_non_rsa_key_is_unsupported(scheme: str, key: tuple[str, str]) -> None:
    other = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(UnsupportedAlgorithm, match="only RSA"):
        check(arrived(signed(scheme, key[0]), BODY), other)
    with pytest.raises(UnsupportedAlgorithm, match="cannot be read"):
        check(arrived(signed(scheme, key[0]), BODY), "-----BEGIN PUBLIC KEY-----\nnope\n")


@both
def test_tampered_body_is_a_digest_mismatch(scheme: str, key: tuple[str, str]) -> None:
    tampered = BODY.replace(b"Follow", b"Delete")
    with pytest.raises(DigestMismatch):
        check(arrived(signed(scheme, key[0]), tampered), key[1])


@pytest.mark.parametrize(
    ("scheme", "name", "value"),
    [
        ("cavage", "Content-Type", "text/plain"),
        ("cavage", "Host", "evil.example"),
        ("cavage", "Date", "Sat, 28 Nov 2026 12:01:00 GMT"),
        ("rfc9421", "Content-Type", "text/plain"),
        # @target-uri is derived from the Host the request arrived with.
        ("rfc9421", "Host", "evil.example"),
    ],
)
def test_tampered_header_is_a_signature_mismatch(
    scheme: str, name: str, value: str, key: tuple[str, str]
) -> None:
    headers = signed(scheme, key[0])
    request = arrived(headers, BODY).with_headers({name: value})
    with pytest.raises(SignatureMismatch):
        check(request, key[1], expected_host=None)


def test_another_key_is_a_signature_mismatch(key: tuple[str, str]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for scheme in SCHEMES:
        with pytest.raises(SignatureMismatch):
            check(arrived(signed(scheme, key[0]), BODY), pem.decode())


def test_shuffled_headers_list_and_fields_still_verify(key: tuple[str, str]) -> None:
    private, public = key
    fields = {"Digest": digest_header(BODY), "Date": "Sat, 28 Nov 2026 12:00:00 GMT", **TYPE}
    request = arrived(fields, BODY)
    header = cavage_signature(
        request,
        covered=["digest", "content-type", "date", "host", "(request-target)"],
        key_id="k",
        private_key_pem=private,
    )
    shuffled = dict(reversed(list({**fields, "Signature": header}.items())))
    verified = verify(arrived(shuffled, BODY), public, now=NOW, max_skew=SKEW, expected_host=HOST)
    assert verified.covered == ("digest", "content-type", "date", "host", "(request-target)")


def test_hs2019_is_accepted_with_date_or_created(key: tuple[str, str]) -> None:
    private, public = key
    request = arrived(
        {"Digest": digest_header(BODY), "Date": "Sat, 28 Nov 2026 12:00:00 GMT"}, BODY
    )
    for covered, created in (
        (["(request-target)", "host", "date", "digest"], None),
        (["(request-target)", "(created)", "host", "digest"], int(NOW.timestamp())),
    ):
        header = cavage_signature(
            request,
            covered=covered,
            key_id="k",
            private_key_pem=private,
            algorithm="hs2019",
            created=created,
        )
        verified = verify(
            request.with_headers({"Signature": header}), public, now=NOW, max_skew=SKEW
        )
        assert verified.algorithm == "hs2019"
        assert verified.created == NOW


def test_missing_date_and_created_is_insufficient_coverage(key: tuple[str, str]) -> None:
    private, public = key
    request = arrived({"Digest": digest_header(BODY)}, BODY)
    header = cavage_signature(
        request, covered=["(request-target)", "host", "digest"], key_id="k", private_key_pem=private
    )
    with pytest.raises(InsufficientCoverage, match="date"):
        check(request.with_headers({"Signature": header}), public)


@both
def test_oversize_header_is_malformed(scheme: str, key: tuple[str, str]) -> None:
    headers = signed(scheme, key[0])
    name = "Signature-Input" if scheme == "rfc9421" else "Signature"
    headers[name] += ", " + "x" * MAX_SIGNATURE_HEADER
    with pytest.raises(MalformedSignature, match="longer than"):
        check(arrived(headers, BODY), key[1])


@both
def test_signed_for_another_host_is_a_host_mismatch(scheme: str, key: tuple[str, str]) -> None:
    request = arrived(signed(scheme, key[0]), BODY)
    with pytest.raises(HostMismatch):
        check(request, key[1], expected_host="other.example")
    check(request, key[1], expected_host="Bridge.Example:443")


def test_rfc9421_without_created_or_target_is_refused(key: tuple[str, str]) -> None:
    private, public = key
    request = arrived({"Content-Digest": content_digest_header(BODY)}, BODY)
    for components, params, error in (
        (["@method", "@target-uri", "content-digest"], {"keyid": "k"}, MalformedSignature),
        (
            ["@method", "@path", "content-digest"],
            {"keyid": "k", "created": 1},
            InsufficientCoverage,
        ),
        (["@method", "@target-uri", "content-digest"], {"created": 1}, MalformedSignature),
    ):
        signature_input, signature = rfc9421_signature(
            request, components=components, params=params, private_key_pem=private
        )
        with pytest.raises(error):
            check(
                request.with_headers({"Signature-Input": signature_input, "Signature": signature}),
                public,
            )


def test_rfc9421_covered_header_that_is_absent_is_malformed(key: tuple[str, str]) -> None:
    private, public = key
    request = arrived({"Content-Digest": content_digest_header(BODY), "X-Note": "1"}, BODY)
    signature_input, signature = rfc9421_signature(
        request,
        components=["@method", "@target-uri", "content-digest", "x-note"],
        params={"created": int(NOW.timestamp()), "keyid": "k"},
        private_key_pem=private,
    )
    stripped = replace(
        request,
        headers={
            "Host": HOST,
            "Content-Digest": content_digest_header(BODY),
            "Signature-Input": signature_input,
            "Signature": signature,
        },
    )
    with pytest.raises(MalformedSignature, match="x-note"):
        check(stripped, public)


def test_rfc9421_is_preferred_when_both_schemes_are_present(key: tuple[str, str]) -> None:
    private, public = key
    cavage = sign_cavage(
        "POST", URL, TYPE, BODY, key_id="cavage-key", private_key_pem=private, now=NOW
    )
    message = sign_rfc9421(
        "POST", URL, TYPE, BODY, key_id="rfc-key", private_key_pem=private, now=NOW
    )
    headers = {**TYPE, **cavage, **message}
    assert headers["Signature"] == message["Signature"]
    request = arrived(headers, BODY)
    assert key_id_of(request) == "rfc-key"
    assert verify(request, public, now=NOW, max_skew=SKEW).scheme == "rfc9421"


# Garbage in: MalformedSignature out, never another exception type

VALID_CAVAGE = (
    'keyId="https://remote.example/users/alice#main-key",algorithm="rsa-sha256",'
    'headers="(request-target) host date digest",signature="'
    + base64.b64encode(b"x" * 256).decode()
    + '"'
)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ,  ,",
        'keyId="k",algorithm="rsa-sha256",headers="date"',
        'algorithm="rsa-sha256",headers="date",signature="AAAA"',
        'keyId="k",signature="AAAA",signature="AAAA"',
        'keyId="k",keyid="j",signature="AAAA"',
        'keyId="k,signature="AAAA"',
        'keyId="k",signature="AAAA',
        'keyId="k" signature="AAAA"',
        'keyId=,signature="AAAA"',
        '="k",signature="AAAA"',
        'keyId="k",signature="not base64!"',
        'keyId="k",signature="AAA"',
        'keyId="k",signature="AAAA",headers=""',
        'keyId="k",signature="AAAA",headers="date date"',
        'keyId="k",signature="AAAA",created="yesterday"',
        'keyId="k",signature="AAAA",expires=1.2.3',
        'keyId="k\x00",signature="AAAA"',
        "keyId",
        "\x00\xff\ufffd",
        "x" * (MAX_SIGNATURE_HEADER + 1),
    ],
)
def test_cavage_garbage_is_malformed(value: str) -> None:
    with pytest.raises(MalformedSignature):
        parse_cavage_signature(value)


def test_cavage_fuzz_raises_only_malformed(key: tuple[str, str]) -> None:
    rng = random.Random(20261128)
    alphabet = 'keyIdalgorithmheaderssignature="(),; \t\\=+/AZaz09\x00\x7f\xe4'
    candidates = [VALID_CAVAGE[:cut] for cut in range(len(VALID_CAVAGE))]
    for _ in range(600):
        chars = list(VALID_CAVAGE)
        for _ in range(rng.randint(1, 4)):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(alphabet))
        candidates.append("".join(chars))
        candidates.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
        candidates.append(bytes(rng.randrange(256) for _ in range(40)).decode("latin-1"))
    parsed = 0
    for value in candidates:
        try:
            parse_cavage_signature(value)
            parsed += 1
        except MalformedSignature:
            pass
        with pytest.raises(SignatureError):
            check(
                arrived({"Signature": value, "Date": "Sat, 28 Nov 2026 12:00:00 GMT"}, BODY), key[1]
            )
    assert 0 < parsed < len(candidates)


def test_rfc9421_fuzz_raises_only_malformed(key: tuple[str, str]) -> None:
    headers = signed("rfc9421", key[0])
    valid_input, valid_signature = headers["Signature-Input"], headers["Signature"]
    rng = random.Random(9421)
    alphabet = 'sig1=();"@method"keyid:created=1,?0*\\ \t\x00\xe4'
    cases = [(valid_input[:cut], valid_signature) for cut in range(len(valid_input))]
    cases += [(valid_input, valid_signature[:cut]) for cut in range(0, len(valid_signature), 7)]
    for _ in range(400):
        chars = list(valid_input)
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(alphabet))
        cases.append(("".join(chars), valid_signature))
        cases.append(
            ("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50))), valid_signature)
        )
    for signature_input, signature in cases:
        with contextlib.suppress(MalformedSignature):
            parse_rfc9421(signature_input, signature)
        request = arrived(
            {**headers, "Signature-Input": signature_input, "Signature": signature}, BODY
        )
        with pytest.raises(SignatureError):
            check(request, key[1], now=NOW + timedelta(hours=1))


def test_unreadable_signed_date_is_malformed(key: tuple[str, str]) -> None:
    headers = signed("cavage", key[0])
    headers["Date"] = "yesterday, at noon"
    with pytest.raises(MalformedSignature, match="unreadable Date"):
        check(arrived(headers, BODY), key[1])
