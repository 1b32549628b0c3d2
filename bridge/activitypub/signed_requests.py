"""What both HTTP signature schemes share: the request as seen by signer and verifier, RSA, time.

Pure: no network, no store. A :class:`SignedRequest` is built either from the URL a signer is
about to request (:meth:`SignedRequest.for_url`, mirroring exactly what aiohttp puts on the
wire) or from an incoming aiohttp request (:meth:`SignedRequest.from_aiohttp`).
"""

from __future__ import annotations

import email.utils
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as CryptoUnsupported
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from multidict import CIMultiDict
from yarl import URL

from bridge.errors import (
    HostMismatch,
    MalformedSignature,
    StaleSignature,
    UnsupportedAlgorithm,
    UnsupportedURL,
)

MAX_SIGNATURE_HEADER = 8 * 1024
"""Signature headers longer than this are refused unparsed (a real one is ~700 bytes)."""

RsaAlgorithm = Literal["rsa-v1_5-sha256", "rsa-pss-sha512"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_OBS_FOLD = re.compile(r"\r?\n[ \t]+")
_DEFAULT_PORTS = {"https": ":443", "http": ":80"}


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as a signature covers it.

    ``path`` is the request target as sent (path and query, still percent-encoded, or the
    absolute form a proxy may send); ``headers`` is any mapping, a case-insensitive
    multidict included (repeated fields are combined as both specs prescribe);
    ``authority`` is the host the request was addressed to, taken from the ``Host`` header
    when not given.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None = None
    authority: str | None = None
    scheme: str = "https"

    @classmethod
    def for_url(
        cls, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> SignedRequest:
        """The request aiohttp will send for ``url``: same Host, same encoded target."""
        parsed = URL(url)
        authority = parsed.host_port_subcomponent
        if not parsed.absolute or authority is None:
            raise UnsupportedURL(url, "cannot sign a request to a relative URL")
        return cls(
            method=method.upper(),
            path=parsed.raw_path_qs,
            headers=headers,
            body=body,
            authority=authority,
            scheme=parsed.scheme,
        )

    @classmethod
    def from_aiohttp(
        cls, request: web.BaseRequest, body: bytes | None, *, scheme: str | None = None
    ) -> SignedRequest:
        """An incoming request; ``scheme`` overrides the transport's (behind a TLS proxy)."""
        return cls(
            method=request.method,
            path=request.raw_path,
            headers=request.headers,
            body=body,
            scheme=scheme or request.scheme,
        )

    def with_headers(self, added: Mapping[str, str]) -> SignedRequest:
        """A copy whose headers are ours plus ``added`` (replacing same-named fields)."""
        replaced = {name.lower() for name in added}
        merged = [(k, v) for k, v in self.headers.items() if k.lower() not in replaced]
        return replace(self, headers=CIMultiDict([*merged, *added.items()]))

    def header_values(self, name: str) -> list[str] | None:
        """Every field line named ``name`` (any case), in message order; None if absent."""
        wanted = name.lower()
        values = [value for key, value in self.headers.items() if key.lower() == wanted]
        return values or None

    def header(self, name: str) -> str | None:
        """The canonical value both specs sign: lines trimmed, unfolded, joined by ``", "``."""
        values = self.header_values(name)
        if values is None:
            return None
        return ", ".join(_OBS_FOLD.sub(" ", value).strip() for value in values)

    @property
    def carries_body(self) -> bool:
        """Whether a digest must bind the body: any body, or a method that always has one."""
        return bool(self.body) or self.method.upper() in _BODY_METHODS

    @property
    def target_authority(self) -> str:
        """Host and non-default port the request was addressed to, normalised (lower case)."""
        authority = self.authority if self.authority is not None else self.header("host")
        if not authority:
            raise MalformedSignature("the request names no authority (no Host header)")
        return normalize_authority(authority, self.scheme)

    @property
    def target_uri(self) -> str:
        """The absolute target URI (RFC 9110 Section 7.1) as RFC 9421 ``@target-uri``."""
        if self._absolute_form:
            return self.path
        return f"{self.scheme.lower()}://{self.target_authority}{self.path}"

    @property
    def origin_form(self) -> str:
        """Path and query of the target, also when a proxy sent it in absolute form."""
        if self._absolute_form:
            return URL(self.path, encoded=True).raw_path_qs
        return self.path

    @property
    def _absolute_form(self) -> bool:
        return "://" in self.path.split("?", 1)[0]


@dataclass(frozen=True)
class VerifiedSignature:
    """What a successful verification established."""

    key_id: str
    scheme: Literal["cavage", "rfc9421"]
    covered: tuple[str, ...]
    algorithm: str
    created: datetime | None


def normalize_authority(authority: str, scheme: str) -> str:
    """Lower-case host, default port dropped: ``Example.COM:443`` → ``example.com``."""
    lowered = authority.strip().lower()
    default = _DEFAULT_PORTS.get(scheme.lower())
    if default and lowered.endswith(default):
        return lowered[: -len(default)]
    return lowered


def check_host(signed_authority: str, expected_host: str | None, scheme: str) -> None:
    """Raise :class:`HostMismatch` when the signed authority is not ``expected_host``."""
    if expected_host is None:
        return
    if normalize_authority(signed_authority, scheme) != normalize_authority(expected_host, scheme):
        raise HostMismatch(f"signed for {signed_authority!r}, received as {expected_host!r}")


def parse_http_date(value: str) -> datetime:
    """An HTTP ``Date`` (IMF-fixdate or an obsolete form) as aware UTC."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as error:
        raise MalformedSignature(f"unreadable Date header {value[:60]!r}") from error
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_http_date(moment: datetime) -> str:
    """IMF-fixdate (RFC 9110 Section 5.6.7): ``Sun, 05 Jan 2014 21:31:40 GMT``."""
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def check_fresh(moment: datetime, now: datetime, max_skew: timedelta, what: str) -> None:
    """Raise :class:`StaleSignature` when ``moment`` is more than ``max_skew`` from ``now``."""
    if moment > now + max_skew:
        raise StaleSignature(f"{what} {moment.isoformat()} lies in the future (now {now})")
    if moment < now - max_skew:
        raise StaleSignature(f"{what} {moment.isoformat()} is too old (now {now})")


def check_not_expired(expires: datetime, now: datetime) -> None:
    """Raise :class:`StaleSignature` once the signer's ``expires`` has passed."""
    if now > expires:
        raise StaleSignature(f"signature expired at {expires.isoformat()} (now {now})")


def timestamp(value: float) -> datetime:
    """A signature parameter's Unix time as aware UTC."""
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise MalformedSignature(f"timestamp out of range: {value}") from error


@functools.lru_cache(maxsize=1024)
def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """An RSA public key from SubjectPublicKeyInfo or PKCS#1 PEM.

    Memoised: a busy inbox verifies the same few hundred senders' keys again and again, and
    reading one costs as much as the verification itself (the key objects are immutable)."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, CryptoUnsupported) as error:
        raise UnsupportedAlgorithm(f"public key cannot be read: {error}") from error
    if not isinstance(key, rsa.RSAPublicKey):
        raise UnsupportedAlgorithm(f"public key is {type(key).__name__}, only RSA is verified")
    return key


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Our RSA private key from PEM (PKCS#8 or PKCS#1)."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UnsupportedAlgorithm(f"signing key is {type(key).__name__}, only RSA is supported")
    return key


def rsa_sign(key: rsa.RSAPrivateKey, data: bytes, algorithm: RsaAlgorithm) -> bytes:
    """Sign with RSASSA-PKCS1-v1_5/SHA-256 or RSASSA-PSS/SHA-512 (RFC 9421 Section 3.3)."""
    if algorithm == "rsa-pss-sha512":
        return key.sign(data, _PSS, hashes.SHA512())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def rsa_verify(
    key: rsa.RSAPublicKey, signature: bytes, data: bytes, algorithm: RsaAlgorithm
) -> bool:
    """Whether ``signature`` over ``data`` holds for ``key`` under ``algorithm``."""
    try:
        if algorithm == "rsa-pss-sha512":
            key.verify(signature, data, _PSS, hashes.SHA512())
        else:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# RFC 9421 Section 3.3.1: MGF1 with SHA-512 and a 64-byte salt.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)
