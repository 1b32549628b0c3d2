"""HTTP signatures for the fakes, written independently of ``bridge/`` (pure, no I/O).

The fake fediverse instances check what the bridge sends with this code; checking the bridge
with its own signature code would prove nothing. It is minimal but correct for what a bridge
sends and what Mastodon demands:

- draft-cavage-http-signatures-12: ``rsa-sha256`` and ``hs2019`` (RSASSA-PKCS1-v1_5 with
  SHA-256), headers in any order, ``(request-target)``, ``host`` and ``date`` covered, and for
  a request with a body ``digest`` covered and equal to ``SHA-256`` of the body (RFC 3230).
- RFC 9421: ``rsa-v1_5-sha256`` and ``rsa-pss-sha512``, components without parameters,
  ``@method`` and the target (``@target-uri``, or ``@authority`` with ``@path``) covered,
  ``created`` fresh, ``expires`` not passed, and for a body ``content-digest`` covered and
  matching (RFC 9530, ``sha-256``/``sha-512``). Structured fields (RFC 8941) are parsed as far
  as ``Signature-Input``, ``Signature`` and ``Content-Digest`` need.
"""

from __future__ import annotations

import base64
import email.utils
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from yarl import URL

from tests.fakes.httpsig_fields import Params as Params
from tests.fakes.httpsig_fields import SignatureRejected as SignatureRejected
from tests.fakes.httpsig_fields import (
    Token,
    check_content_digest,
    check_digest,
    parse_dictionary,
    serialize_item,
    serialize_params,
)

MAX_HEADER = 8 * 1024
CAVAGE_ALGORITHMS = ("rsa-sha256", "hs2019")
RFC9421_ALGORITHMS = ("rsa-v1_5-sha256", "rsa-pss-sha512")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FOLD = re.compile(r"\r?\n[ \t]+")
_AUTH_PARAM = re.compile(
    r'[ \t]*([A-Za-z][A-Za-z0-9_-]*)[ \t]*=[ \t]*(?:"([^"]*)"|([^",\s]+))[ \t]*'
)


@dataclass(frozen=True)
class Request:
    """A request as a verifier sees it; ``target`` is the path and query exactly as sent."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""
    scheme: str = "http"

    @classmethod
    def for_url(cls, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Request:
        """The request a client will send to ``url`` (``headers`` should carry ``Host``)."""
        parsed = URL(url)
        return cls(method.upper(), parsed.raw_path_qs, headers, body, parsed.scheme)

    def field(self, name: str) -> str | None:
        """Every line of field ``name`` trimmed, unfolded and joined by ``", "``; None if absent."""
        wanted = name.lower()
        values = [_FOLD.sub(" ", v).strip() for k, v in self.headers.items() if k.lower() == wanted]
        return ", ".join(values) if values else None

    @property
    def authority(self) -> str:
        """The ``Host`` the request was sent to, lower case, a default port dropped."""
        host = (self.field("host") or "").lower()
        default = {"http": ":80", "https": ":443"}.get(self.scheme.lower(), "")
        if not host:
            raise SignatureRejected("the request has no Host")
        return host[: -len(default)] if default and host.endswith(default) else host

    @property
    def has_body(self) -> bool:
        """Whether a digest must bind the body."""
        return bool(self.body) or self.method.upper() in _BODY_METHODS


@dataclass(frozen=True)
class PendingSignature:
    """A signature whose policy checks passed; only the cryptography is left (needs the key)."""

    scheme: str  # "cavage" or "rfc9421"
    key_id: str
    algorithms: tuple[str, ...]
    data: bytes
    signature: bytes

    def holds(self, public_key: rsa.RSAPublicKey) -> str:
        """The algorithm under which the signature verifies; else :class:`SignatureRejected`."""
        for algorithm in self.algorithms:
            if rsa_verify(public_key, self.signature, self.data, algorithm):
                return algorithm
        raise SignatureRejected(f"{self.scheme} signature does not verify with {self.key_id}")


# keys, dates, digests


def new_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The public half as SubjectPublicKeyInfo PEM (what Mastodon publishes)."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def load_public(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from SubjectPublicKeyInfo or PKCS#1 PEM."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as error:
        raise SignatureRejected(f"unreadable public key: {error}") from error
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRejected("the public key is not RSA")
    return key


def load_private(pem: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8, unencrypted)."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("not an RSA private key")
    return key


def rsa_sign(key: rsa.RSAPrivateKey, data: bytes, algorithm: str = "rsa-v1_5-sha256") -> bytes:
    """Sign with PKCS#1 v1.5/SHA-256 or, for ``rsa-pss-sha512``, PSS/SHA-512."""
    if algorithm == "rsa-pss-sha512":
        return key.sign(data, _PSS, hashes.SHA512())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def rsa_verify(key: rsa.RSAPublicKey, signature: bytes, data: bytes, algorithm: str) -> bool:
    """Whether ``signature`` over ``data`` holds under ``algorithm``."""
    try:
        if algorithm == "rsa-pss-sha512":
            key.verify(signature, data, _PSS, hashes.SHA512())
        else:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)


def http_date(moment: datetime) -> str:
    """IMF-fixdate, e.g. ``Sun, 05 Jan 2014 21:31:40 GMT``."""
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def authority_of(url: str) -> str:
    """The ``Host`` header a client sends for ``url``: host, and port unless the default."""
    parsed = URL(url)
    host = parsed.raw_host or ""
    return host if parsed.is_default_port() else f"{host}:{parsed.port}"


# draft-cavage-12


def parse_params(value: str) -> dict[str, str]:
    """``a="x", b=y`` parameters (a cavage ``Signature``, ``Collection-Synchronization``)."""
    params: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = _AUTH_PARAM.match(value, position)
        if match is None:
            raise SignatureRejected(f"malformed parameters at {value[position : position + 20]!r}")
        name = match.group(1)
        if name in params:
            raise SignatureRejected(f"parameter {name} given twice")
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        position = match.end()
        if position < len(value):
            if value[position] != ",":
                raise SignatureRejected(f"expected ',' at {value[position : position + 20]!r}")
            position += 1
    return params


def cavage_signing_string(request: Request, covered: Sequence[str]) -> str:
    """The signing string over ``covered`` (lower-case names, ``(request-target)`` allowed)."""
    lines = []
    for name in covered:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.target}")
            continue
        if name.startswith("("):
            raise SignatureRejected(f"unsupported pseudo-header {name}")
        value = request.field(name)
        if value is None:
            raise SignatureRejected(f"signed header {name} is not in the request")
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def sign_cavage(
    request: Request,
    covered: Sequence[str],
    *,
    key: rsa.RSAPrivateKey,
    key_id: str,
    algorithm: str = "rsa-sha256",
) -> str:
    """A ``Signature`` header value; ``algorithm`` is only the label (RSA-SHA256 is used)."""
    data = cavage_signing_string(request, covered).encode("utf-8")
    signature = base64.b64encode(rsa_sign(key, data)).decode()
    return (
        f'keyId="{key_id}",algorithm="{algorithm}",headers="{" ".join(covered)}",'
        f'signature="{signature}"'
    )


def _cavage_pending(request: Request, now: datetime, max_skew: timedelta) -> PendingSignature:
    header = request.field("signature") or ""
    if len(header) > MAX_HEADER:
        raise SignatureRejected("oversized Signature header")
    params = parse_params(header)
    key_id, encoded = params.get("keyId"), params.get("signature")
    if not key_id or not encoded:
        raise SignatureRejected("Signature lacks keyId or signature")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in CAVAGE_ALGORITHMS:
        raise SignatureRejected(f"unknown algorithm {algorithm}")
    covered = params.get("headers", "date").lower().split()
    for required in ("(request-target)", "host", "date"):
        if required not in covered:
            raise SignatureRejected(f"{required} is not signed")
    if request.has_body:
        if "digest" not in covered:
            raise SignatureRejected("digest is not signed")
        check_digest(request.field("digest"), request.body)
    _check_fresh(_parse_date(request.field("date")), now, max_skew, "Date")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except ValueError as error:
        raise SignatureRejected("signature is not base64") from error
    data = cavage_signing_string(request, covered).encode("utf-8")
    return PendingSignature("cavage", key_id, ("rsa-v1_5-sha256",), data, signature)


# RFC 9421


def rfc9421_base(request: Request, components: Sequence[str], params: Params) -> str:
    """The signature base over parameterless ``components`` with signature ``params``."""
    lines = [f"{serialize_item(name)}: {_component(request, name)}" for name in components]
    lines.append(f'"@signature-params": {serialize_signature_params(components, params)}')
    return "\n".join(lines)


def serialize_signature_params(components: Sequence[str], params: Params) -> str:
    """The inner list ``("@method" …);created=…;keyid="…"`` as RFC 8941 serialises it."""
    inner = " ".join(serialize_item(name) for name in components)
    return f"({inner}){serialize_params(params)}"


def sign_rfc9421(
    request: Request,
    components: Sequence[str],
    params: Params,
    *,
    key: rsa.RSAPrivateKey,
    label: str = "sig1",
) -> tuple[str, str]:
    """``Signature-Input`` and ``Signature`` values; ``params["alg"]`` picks the padding."""
    algorithm = params.get("alg", "rsa-v1_5-sha256")
    data = rfc9421_base(request, components, params).encode("ascii")
    signature = rsa_sign(key, data, algorithm if isinstance(algorithm, str) else "")
    encoded = base64.b64encode(signature).decode()
    return f"{label}={serialize_signature_params(components, params)}", f"{label}=:{encoded}:"


def _rfc9421_pending(
    request: Request, now: datetime, max_skew: timedelta, label: str | None
) -> PendingSignature:
    inputs_header, signatures_header = request.field("signature-input"), request.field("signature")
    if not inputs_header or not signatures_header:
        raise SignatureRejected("Signature-Input without Signature")
    if max(len(inputs_header), len(signatures_header)) > MAX_HEADER:
        raise SignatureRejected("oversized signature headers")
    inputs, signatures = parse_dictionary(inputs_header), parse_dictionary(signatures_header)
    if not inputs:
        raise SignatureRejected("Signature-Input names no signature")
    label = label or next(iter(inputs))
    if label not in inputs:
        raise SignatureRejected(f"no signature labelled {label}")
    members, params = inputs[label]
    signature = signatures.get(label, (None, {}))[0]
    if not isinstance(members, list) or not isinstance(signature, bytes):
        raise SignatureRejected(f"signature {label} is malformed")
    components = []
    for value, item_params in members:
        if not isinstance(value, str) or isinstance(value, Token) or item_params:
            raise SignatureRejected(f"unsupported component {value!r}")
        components.append(value)
    key_id, created, expires = params.get("keyid"), params.get("created"), params.get("expires")
    if not isinstance(key_id, str) or type(created) is not int:
        raise SignatureRejected("signature lacks keyid or created")
    names = set(components)
    if "@method" not in names:
        raise SignatureRejected("@method is not signed")
    if "@target-uri" not in names and not {"@authority", "@path"} <= names:
        raise SignatureRejected("the target URI is not signed")
    if request.has_body:
        if "content-digest" not in names:
            raise SignatureRejected("content-digest is not signed")
        check_content_digest(request.field("content-digest"), request.body)
    _check_fresh(_moment(created), now, max_skew, "created")
    if type(expires) is int and now > _moment(expires):
        raise SignatureRejected("the signature has expired")
    algorithm = params.get("alg")
    if algorithm is not None and algorithm not in RFC9421_ALGORITHMS:
        raise SignatureRejected(f"unknown algorithm {algorithm!r}")
    algorithms = (str(algorithm),) if algorithm is not None else RFC9421_ALGORITHMS
    try:
        data = rfc9421_base(request, components, params).encode("ascii")
    except UnicodeEncodeError as error:
        raise SignatureRejected("a covered component is not ASCII") from error
    return PendingSignature("rfc9421", key_id, algorithms, data, signature)


def _component(request: Request, name: str) -> str:
    path, _, query = request.target.partition("?")
    derived = {
        "@method": request.method.upper(),
        "@target-uri": f"{request.scheme.lower()}://{request.authority}{request.target}",
        "@authority": request.authority,
        "@scheme": request.scheme.lower(),
        "@request-target": request.target,
        "@path": path or "/",
        "@query": "?" + query,
    }
    if name.startswith("@"):
        if name not in derived:
            raise SignatureRejected(f"unsupported derived component {name}")
        return derived[name]
    value = request.field(name)
    if value is None:
        raise SignatureRejected(f"covered field {name} is not in the request")
    return value


# both schemes


def signature_scheme(request: Request) -> str | None:
    """``"rfc9421"`` when ``Signature-Input`` is present, ``"cavage"`` for a bare
    ``Signature``, None for an unsigned request."""
    if request.field("signature-input") is not None:
        return "rfc9421"
    if request.field("signature") is not None:
        return "cavage"
    return None


def check_request(
    request: Request,
    *,
    now: datetime,
    max_skew: timedelta = timedelta(hours=1),
    label: str | None = None,
) -> PendingSignature:
    """Apply every policy check of the request's scheme; raise :class:`SignatureRejected`."""
    scheme = signature_scheme(request)
    if scheme is None:
        raise SignatureRejected("unsigned")
    if scheme == "rfc9421":
        return _rfc9421_pending(request, now, max_skew, label)
    return _cavage_pending(request, now, max_skew)


def _parse_date(value: str | None) -> datetime:
    if value is None:
        raise SignatureRejected("no Date header")
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError) as error:
        raise SignatureRejected(f"unreadable Date {value!r}") from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _moment(timestamp: int) -> datetime:
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise SignatureRejected(f"timestamp {timestamp} out of range") from error


def _check_fresh(moment: datetime, now: datetime, max_skew: timedelta, what: str) -> None:
    if moment > now + max_skew:
        raise SignatureRejected(f"{what} lies in the future")
    if moment < now - max_skew:
        raise SignatureRejected(f"{what} is too old")
