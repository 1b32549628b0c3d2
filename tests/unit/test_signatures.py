"""HTTP signatures against the published vectors, fresh-key round trips and a real server.

Vectors: draft-cavage-http-signatures-12 Appendix C (RSA PKCS#1 v1.5, deterministic: signed
and compared exactly) and RFC 9421 (B.2.1-B.2.3 with rsa-pss-sha512, randomised: the
published signatures are verified; Section 4.3 with test-key-rsa and rsa-v1_5-sha256:
signed and compared exactly). Failure kinds are in test_signature_failures.py.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from multidict import CIMultiDict

from bridge.activitypub.signatures import (
    SignedRequest,
    cavage_signature,
    cavage_signing_string,
    check_cavage_signature,
    check_rfc9421_signature,
    content_digest_header,
    digest_header,
    key_id_of,
    parse_cavage_signature,
    parse_rfc9421,
    rfc9421_signature,
    sign_cavage,
    sign_rfc9421,
    signature_base,
    verify,
)
from bridge.errors import (
    InsufficientCoverage,
    MalformedSignature,
    SignatureMismatch,
    StaleSignature,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "signatures"
CAVAGE = json.loads((DATA / "draft-cavage-12-appendix-c.json").read_text())
RFC9421 = json.loads((DATA / "rfc9421-vectors.json").read_text())
SKEW = timedelta(minutes=5)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
INBOX = "https://remote.example/users/alice/inbox"
ACTIVITY = b'{"type": "Create", "object": {"content": "Gr\xc3\xbc\xc3\x9fe"}}'


def pem(name: str) -> str:
    return (DATA / name).read_text()


def request_from(vector: dict[str, Any], *extra: tuple[str, str]) -> SignedRequest:
    """A received request as the vector describes it (headers keep their repeats and order)."""
    return SignedRequest(
        method=vector["method"],
        path=vector["path"],
        headers=CIMultiDict([*map(tuple, vector["headers"]), *extra]),
        body=vector["body"].encode(),
        scheme=vector.get("scheme", "https"),
    )


def received(url: str, method: str, headers: dict[str, str], body: bytes | None) -> SignedRequest:
    """What the receiving server sees of a request we signed for ``url`` (aiohttp adds Host)."""
    target = SignedRequest.for_url(method, url, headers, body)
    return replace(target, authority=None, headers={"Host": target.target_authority, **headers})


@pytest.fixture(scope="module")
def fresh_key() -> tuple[str, str]:
    """A new RSA-2048 key pair (private PEM, public PEM), as our actors have."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


# draft-cavage-http-signatures-12, Appendix C


def cavage_request(*extra: tuple[str, str]) -> SignedRequest:
    return request_from(CAVAGE["request"], *extra)


CAVAGE_DATE = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)


def test_cavage_c1_default_test_signs_and_verifies() -> None:
    case = CAVAGE["cases"]["C.1"]
    request = cavage_request(("Signature", case["signature_header"]))
    parsed = parse_cavage_signature(case["signature_header"])
    # No headers parameter with rsa-sha256: only Date is signed.
    assert parsed.headers == ("date",)
    assert cavage_signing_string(request, parsed) == case["signing_string"]
    check_cavage_signature(request, parsed, pem(CAVAGE["public_key"]))
    ours = cavage_signature(
        cavage_request(),
        covered=["date"],
        key_id="Test",
        private_key_pem=pem(CAVAGE["private_key"]),
    )
    assert parse_cavage_signature(ours).signature == parsed.signature


def test_cavage_c2_basic_test_signs_exactly_and_verifies() -> None:
    case = CAVAGE["cases"]["C.2"]
    request = cavage_request(("Authorization", case["authorization"]))
    parsed = parse_cavage_signature(case["authorization"].removeprefix("Signature "))
    assert cavage_signing_string(request, parsed) == case["signing_string"]
    check_cavage_signature(request, parsed, pem(CAVAGE["public_key"]))
    ours = cavage_signature(
        cavage_request(),
        covered=["(request-target)", "host", "date"],
        key_id="Test",
        private_key_pem=pem(CAVAGE["private_key"]),
    )
    assert "Signature " + ours == case["authorization"]
    assert key_id_of(request) == "Test"


def test_cavage_c2_is_refused_by_policy_because_the_body_digest_is_unsigned() -> None:
    request = cavage_request(("Authorization", CAVAGE["cases"]["C.2"]["authorization"]))
    with pytest.raises(InsufficientCoverage, match="digest"):
        verify(request, pem(CAVAGE["public_key"]), now=CAVAGE_DATE, max_skew=SKEW)


def test_cavage_c3_as_published_contradicts_the_draft() -> None:
    """Draft-12's C.3 header lists (created) and (expires) with rsa-sha256.

    Section 2.3 forbids both pseudo-headers for rsa-* algorithms, and the published
    signature was computed over the signing string the draft prints for C.3, which lacks
    the (created) and (expires) lines: over draft-10's header list.
    """
    case = CAVAGE["cases"]["C.3"]
    request = cavage_request(("Signature", case["signature_header"]))
    published = parse_cavage_signature(case["signature_header"])
    assert (published.created, str(published.expires)) == (1402170695, "1402170699")
    with pytest.raises(MalformedSignature, match=r"\(created\) cannot be signed with rsa-sha256"):
        cavage_signing_string(request, published)
    # Read as hs2019 (which may sign them), the pseudo-header lines make it fail...
    as_hs2019 = replace(published, algorithm="hs2019")
    assert "(created): 1402170695\n(expires): 1402170699" in cavage_signing_string(
        request, as_hs2019
    )
    with pytest.raises(SignatureMismatch):
        check_cavage_signature(request, as_hs2019, pem(CAVAGE["public_key"]))
    # ...while it holds over the signing string the draft prints (draft-10's header list).
    draft10 = replace(
        published, headers=tuple(line.split(":")[0] for line in case["signing_string"].split("\n"))
    )
    assert cavage_signing_string(request, draft10) == case["signing_string"]
    check_cavage_signature(request, draft10, pem(CAVAGE["public_key"]))


def test_cavage_c3_with_draft10_headers_signs_exactly_and_passes_policy() -> None:
    published = parse_cavage_signature(CAVAGE["cases"]["C.3"]["signature_header"])
    ours = cavage_signature(
        cavage_request(),
        covered=["(request-target)", "host", "date", "content-type", "digest", "content-length"],
        key_id="Test",
        private_key_pem=pem(CAVAGE["private_key"]),
    )
    assert parse_cavage_signature(ours).signature == published.signature
    verified = verify(
        cavage_request(("Signature", ours)),
        pem(CAVAGE["public_key"]),
        now=CAVAGE_DATE,
        max_skew=SKEW,
        expected_host="example.com",
    )
    assert verified.key_id == "Test"
    assert verified.scheme == "cavage"
    assert verified.created == CAVAGE_DATE
    assert "digest" in verified.covered


def test_cavage_test_key_is_1024_bits_not_2048_as_the_draft_says() -> None:
    key = serialization.load_pem_public_key(pem(CAVAGE["public_key"]).encode())
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 1024


# RFC 9421


def rfc_request(*extra: tuple[str, str]) -> SignedRequest:
    return request_from(RFC9421["test_request"], *extra)


def rfc_time(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@pytest.mark.parametrize("case", ["B.2.1", "B.2.2", "B.2.3"])
def test_rfc9421_pss_vectors_verify(case: str) -> None:
    vector = RFC9421["cases"][case]
    request = rfc_request(
        ("Signature-Input", vector["signature_input"]), ("Signature", vector["signature"])
    )
    (signature,) = parse_rfc9421(vector["signature_input"], vector["signature"])
    assert signature.label == vector["label"]
    assert signature.key_id == "test-key-rsa-pss"
    assert signature_base(request, signature) == "\n".join(vector["signature_base"])
    # No alg parameter: the algorithm is inferred from the RSA key by trying both.
    public = pem(RFC9421["keys"]["test-key-rsa-pss"]["public"])
    assert check_rfc9421_signature(request, signature, public) == "rsa-pss-sha512"
    with pytest.raises(SignatureMismatch):
        check_rfc9421_signature(request, signature, pem(RFC9421["keys"]["test-key-rsa"]["public"]))


def test_rfc9421_full_coverage_vector_passes_policy() -> None:
    vector = RFC9421["cases"]["B.2.3"]
    request = rfc_request(
        ("Signature-Input", vector["signature_input"]), ("Signature", vector["signature"])
    )
    verified = verify(
        request,
        pem(RFC9421["keys"]["test-key-rsa-pss"]["public"]),
        now=rfc_time(1618884473),
        max_skew=SKEW,
        expected_host="example.com",
    )
    assert (verified.key_id, verified.scheme, verified.algorithm) == (
        "test-key-rsa-pss",
        "rfc9421",
        "rsa-pss-sha512",
    )
    assert verified.covered[:3] == ("date", "@method", "@path")


@pytest.mark.parametrize("case", ["B.2.1", "B.2.2"])
def test_rfc9421_vectors_without_method_fail_policy(case: str) -> None:
    vector = RFC9421["cases"][case]
    request = rfc_request(
        ("Signature-Input", vector["signature_input"]), ("Signature", vector["signature"])
    )
    with pytest.raises(InsufficientCoverage, match="@method"):
        verify(
            request,
            pem(RFC9421["keys"]["test-key-rsa-pss"]["public"]),
            now=rfc_time(1618884473),
            max_skew=SKEW,
        )


def test_rfc9421_proxy_signature_with_test_key_rsa_signs_exactly() -> None:
    proxied = RFC9421["proxied_request"]
    expected = proxied["proxy_sig"]
    published = request_from(proxied)
    unsigned = replace(
        published,
        headers={k: v for k, v in proxied["headers"] if k not in ("Signature-Input", "Signature")},
    )
    signature_input, signature = rfc9421_signature(
        unsigned,
        components=expected["components"],
        params=dict(expected["params"]),
        private_key_pem=pem(RFC9421["keys"]["test-key-rsa"]["private"]),
        label="proxy_sig",
    )
    published_input = published.header("signature-input") or ""
    published_signature = published.header("signature") or ""
    assert signature_input == published_input.split(", ", 1)[1]
    assert signature == published_signature.split(", ", 1)[1]
    parsed = parse_rfc9421(published_input, published_signature)
    assert [s.label for s in parsed] == ["sig1", "proxy_sig"]
    assert signature_base(published, parsed[1]) == "\n".join(expected["signature_base"])


def test_rfc9421_proxy_signature_verifies_by_label_until_it_expires() -> None:
    request = request_from(RFC9421["proxied_request"])
    public = pem(RFC9421["keys"]["test-key-rsa"]["public"])
    assert key_id_of(request) == "test-key-ecc-p256"
    assert key_id_of(request, label="proxy_sig") == "test-key-rsa"
    verified = verify(
        request,
        public,
        now=rfc_time(1618884480),
        max_skew=SKEW,
        expected_host="origin.host.internal.example",
        label="proxy_sig",
    )
    assert verified.algorithm == "rsa-v1_5-sha256"
    assert verified.created == rfc_time(1618884480)
    with pytest.raises(StaleSignature, match="expired"):
        verify(request, public, now=rfc_time(1618884541), max_skew=SKEW, label="proxy_sig")
    # The first signature is the client's ECDSA one: the RSA key cannot verify it.
    with pytest.raises(SignatureMismatch):
        verify(request, public, now=rfc_time(1618884480), max_skew=SKEW)


def test_digest_headers_match_the_rfc_examples() -> None:
    vector = RFC9421["content_digest"]
    body = vector["body"].encode()
    assert content_digest_header(body) == vector["sha-256"]
    assert content_digest_header(body, "sha-512") == vector["sha-512"]
    assert digest_header(body) == CAVAGE["request"]["headers"][3][1]


# Round trips with a fresh RSA-2048 key


def test_cavage_post_round_trip(fresh_key: tuple[str, str]) -> None:
    private, public = fresh_key
    headers = {"Content-Type": "application/activity+json", "Accept": "application/json"}
    added = sign_cavage(
        "POST",
        INBOX,
        headers,
        ACTIVITY,
        key_id=f"{INBOX}#main-key",
        private_key_pem=private,
        now=NOW,
    )
    assert set(added) == {"Host", "Date", "Digest", "Signature"}
    assert added["Host"] == "remote.example"
    assert added["Date"] == "Sat, 28 Nov 2026 12:00:00 GMT"
    assert 'headers="(request-target) host date digest content-type"' in added["Signature"]
    request = received(INBOX, "POST", {**headers, **added}, ACTIVITY)
    verified = verify(request, public, now=NOW, max_skew=SKEW, expected_host="remote.example")
    assert verified.key_id == f"{INBOX}#main-key"
    assert verified.covered == ("(request-target)", "host", "date", "digest", "content-type")
    assert key_id_of(request) == f"{INBOX}#main-key"


def test_cavage_get_round_trip(fresh_key: tuple[str, str]) -> None:
    private, public = fresh_key
    url = "https://remote.example/users/alice/outbox?page=2"
    added = sign_cavage("GET", url, {}, None, key_id="k", private_key_pem=private, now=NOW)
    assert "Digest" not in added
    assert 'headers="(request-target) host date"' in added["Signature"]
    request = received(url, "GET", added, None)
    assert cavage_signing_string(request, parse_cavage_signature(added["Signature"])).startswith(
        "(request-target): get /users/alice/outbox?page=2\nhost: remote.example\n"
    )
    assert verify(request, public, now=NOW, max_skew=SKEW).covered == (
        "(request-target)",
        "host",
        "date",
    )


def test_rfc9421_post_round_trip(fresh_key: tuple[str, str]) -> None:
    private, public = fresh_key
    headers = {"Content-Type": "application/activity+json"}
    added = sign_rfc9421(
        "POST",
        INBOX,
        headers,
        ACTIVITY,
        key_id="https://bridge.example/actor#main-key",
        private_key_pem=private,
        now=NOW,
    )
    assert added["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest" "content-type")'
        f';created={int(NOW.timestamp())};keyid="https://bridge.example/actor#main-key"'
        ';alg="rsa-v1_5-sha256"'
    )
    assert added["Content-Digest"] == content_digest_header(ACTIVITY)
    request = received(INBOX, "POST", {**headers, **added}, ACTIVITY)
    verified = verify(request, public, now=NOW, max_skew=SKEW, expected_host="remote.example")
    assert (verified.scheme, verified.algorithm) == ("rfc9421", "rsa-v1_5-sha256")
    assert verified.covered == ("@method", "@target-uri", "content-digest", "content-type")


def test_rfc9421_get_round_trip(fresh_key: tuple[str, str]) -> None:
    private, public = fresh_key
    url = "https://remote.example/users/alice?x=%C3%BC"
    added = sign_rfc9421("GET", url, {}, None, key_id="k", private_key_pem=private, now=NOW)
    assert set(added) == {"Signature-Input", "Signature"}
    assert added["Signature-Input"].startswith('sig1=("@method" "@target-uri");')
    request = received(url, "GET", added, None)
    (parsed,) = parse_rfc9421(added["Signature-Input"], added["Signature"])
    assert signature_base(request, parsed).startswith(
        '"@method": GET\n"@target-uri": https://remote.example/users/alice?x=%C3%BC\n'
    )
    assert verify(request, public, now=NOW, max_skew=SKEW).key_id == "k"


@pytest.mark.parametrize(
    "date",
    [
        "Sat, 28 Nov 2026 12:00:00 GMT",
        "Saturday, 28-Nov-26 12:00:00 GMT",
        "Sat Nov 28 12:00:00 2026",
        "Sat, 28 Nov 2026 13:00:00 +0100",
    ],
)
def test_every_http_date_form_is_read(date: str, fresh_key: tuple[str, str]) -> None:
    private, public = fresh_key
    request = received(INBOX, "GET", {"Date": date}, None)
    header = cavage_signature(
        request, covered=["(request-target)", "host", "date"], key_id="k", private_key_pem=private
    )
    verified = verify(request.with_headers({"Signature": header}), public, now=NOW, max_skew=SKEW)
    assert verified.created == NOW


# Over the wire: what aiohttp sends is what the receiving side reconstructs


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
async def test_signed_request_verifies_on_a_real_server(
    scheme: str,
    fresh_key: tuple[str, str],
    serve: Callable[[web.Application], Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    private, public = fresh_key
    seen: list[str] = []

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        signed = SignedRequest.from_aiohttp(request, body)
        verified = verify(signed, public, now=NOW, max_skew=SKEW, expected_host=request.host)
        seen.append(verified.scheme)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/users/{name}/inbox", inbox)
    base = await serve(app)
    url = f"{base}/users/bl%C3%B6g/inbox?from=a b&x=%7e"
    sign = sign_cavage if scheme == "cavage" else sign_rfc9421
    headers = {"Content-Type": "application/activity+json"}
    added = sign("POST", url, headers, ACTIVITY, key_id="k", private_key_pem=private, now=NOW)
    async with http.post(url, data=ACTIVITY, headers={**headers, **added}) as response:
        assert response.status == 202, await response.text()
    assert seen == [scheme]
