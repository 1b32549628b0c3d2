"""HTTP Message Signatures (RFC 9421) for requests, pure.

Signing covers ``"@method" "@target-uri"`` plus ``"content-digest"`` (RFC 9530) and
``"content-type"`` for requests with a body, with ``created``, ``keyid`` and
``alg="rsa-v1_5-sha256"``, which Mastodon 4.4+ and Fedify accept. Verification handles
``rsa-v1_5-sha256`` and ``rsa-pss-sha512`` (named by ``alg`` or, without it, tried for an
RSA key), and requires ``@method``, the target (``@target-uri``, or ``@authority`` with
``@path`` or ``@request-target``), ``created`` within the allowed skew, an unexpired
``expires``, and ``content-digest`` signed and matching whenever there is a body.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bridge.activitypub.digests import check_content_digest, content_digest_header
from bridge.activitypub.signed_requests import (
    MAX_SIGNATURE_HEADER,
    RsaAlgorithm,
    SignedRequest,
    VerifiedSignature,
    check_fresh,
    check_host,
    check_not_expired,
    load_private_key,
    load_public_key,
    rsa_sign,
    rsa_verify,
    timestamp,
)
from bridge.activitypub.structured_fields import (
    BareItem,
    InnerList,
    Item,
    Member,
    Params,
    Token,
    canonical_field,
    dictionary_member,
    parse_dictionary,
    serialize_dictionary,
    serialize_member,
)
from bridge.errors import (
    InsufficientCoverage,
    MalformedSignature,
    MalformedStructuredField,
    MissingSignature,
    SignatureMismatch,
    UnsupportedAlgorithm,
)

SUPPORTED_ALGORITHMS: tuple[RsaAlgorithm, ...] = ("rsa-v1_5-sha256", "rsa-pss-sha512")

_PARAM_TYPES: dict[str, type] = {
    "created": int,
    "expires": int,
    "keyid": str,
    "alg": str,
    "nonce": str,
    "tag": str,
}


@dataclass(frozen=True)
class Component:
    """One covered component: a lower-case field name or an ``@``-derived one, with params."""

    name: str
    params: Params = field(default_factory=dict)

    @property
    def identifier(self) -> str:
        """The identifier as a signature base shows it: ``"@query-param";name="a"``."""
        return serialize_member(Item(self.name, self.params))


@dataclass(frozen=True)
class Rfc9421Signature:
    """One labelled signature: its ``Signature-Input`` member and its ``Signature`` bytes."""

    label: str
    components: tuple[Component, ...]
    params: Params
    signature: bytes

    @property
    def key_id(self) -> str | None:
        """The ``keyid`` parameter."""
        value = self.params.get("keyid")
        return value if isinstance(value, str) else None

    @property
    def created(self) -> int | None:
        """The ``created`` parameter (Unix time)."""
        return self._unix_time("created")

    @property
    def expires(self) -> int | None:
        """The ``expires`` parameter (Unix time)."""
        return self._unix_time("expires")

    @property
    def alg(self) -> str | None:
        """The ``alg`` parameter, when the signer named one."""
        value = self.params.get("alg")
        return value if isinstance(value, str) else None

    def _unix_time(self, name: str) -> int | None:
        value = self.params.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def signature_params(self) -> str:
        """The ``@signature-params`` value: the covered components and the parameters."""
        items = tuple(Item(component.name, component.params) for component in self.components)
        return serialize_member(InnerList(items, self.params))


def parse_rfc9421(signature_input: str, signature: str) -> list[Rfc9421Signature]:
    """Every signature labelled in ``Signature-Input``, in its order, joined to its bytes."""
    for header in (signature_input, signature):
        if len(header) > MAX_SIGNATURE_HEADER:
            raise MalformedSignature(f"signature header longer than {MAX_SIGNATURE_HEADER} bytes")
    try:
        inputs = parse_dictionary(signature_input)
        values = parse_dictionary(signature)
    except MalformedStructuredField as error:
        raise MalformedSignature(f"signature headers are not structured fields: {error}") from error
    signatures = []
    for label, member in inputs.items():
        value = values.get(label)
        if not isinstance(value, Item) or not isinstance(value.value, bytes) or not value.value:
            raise MalformedSignature(f"no signature bytes for label {label!r}")
        signatures.append(
            Rfc9421Signature(label, _components(label, member), member.params, value.value)
        )
    if not signatures:
        raise MalformedSignature("Signature-Input labels no signature")
    return signatures


def select_rfc9421(request: SignedRequest, label: str | None = None) -> Rfc9421Signature:
    """The signature named ``label``, else the first one of the request."""
    signature_input = request.header("signature-input")
    if signature_input is None:
        raise MissingSignature("the request carries no Signature-Input")
    signature = request.header("signature")
    if signature is None:
        raise MalformedSignature("Signature-Input without Signature")
    signatures = parse_rfc9421(signature_input, signature)
    if label is None:
        return signatures[0]
    for candidate in signatures:
        if candidate.label == label:
            return candidate
    raise MissingSignature(f"no signature labelled {label!r}")


def signature_base(request: SignedRequest, signature: Rfc9421Signature) -> str:
    """The signature base (RFC 9421 Section 2.5) of ``signature`` over ``request``."""
    lines = [f"{c.identifier}: {component_value(request, c)}" for c in signature.components]
    lines.append(f'"@signature-params": {signature.signature_params}')
    base = "\n".join(lines)
    if not base.isascii():
        raise MalformedSignature("a covered component is not ASCII")
    return base


def component_value(request: SignedRequest, component: Component) -> str:
    """The canonical value of one component (RFC 9421 Sections 2.1 and 2.2)."""
    name, params = component.name, component.params
    if name.startswith("@"):
        if set(params) - ({"name"} if name == "@query-param" else set()):
            raise MalformedSignature(f"unsupported parameters on {name}: {sorted(params)}")
        value = _derived(request, name, params)
    else:
        value = _field(request, name, params)
    if "\n" in value or "\r" in value:
        raise MalformedSignature(f"component {name} contains a line break")
    return value


def check_rfc9421_signature(
    request: SignedRequest, signature: Rfc9421Signature, public_key_pem: str
) -> RsaAlgorithm:
    """The algorithm under which ``signature`` holds; else :class:`SignatureMismatch`.

    Only the cryptography: :func:`verify_rfc9421` adds the policy around it.
    """
    algorithms = SUPPORTED_ALGORITHMS
    if signature.alg is not None:
        matching = [alg for alg in SUPPORTED_ALGORITHMS if alg == signature.alg]
        if not matching:
            raise UnsupportedAlgorithm(f"alg {signature.alg!r} is not supported")
        algorithms = tuple(matching)
    data = signature_base(request, signature).encode("ascii")
    key = load_public_key(public_key_pem)
    for algorithm in algorithms:
        if rsa_verify(key, signature.signature, data, algorithm):
            return algorithm
    raise SignatureMismatch(f"signature {signature.label!r} does not verify")


def rfc9421_signature(
    request: SignedRequest,
    *,
    components: Sequence[str],
    params: Mapping[str, BareItem],
    private_key_pem: str,
    label: str = "sig1",
    algorithm: RsaAlgorithm = "rsa-v1_5-sha256",
) -> tuple[str, str]:
    """``Signature-Input`` and ``Signature`` values for ``components`` of ``request``."""
    unsigned = Rfc9421Signature(
        label, tuple(Component(name) for name in components), dict(params), b""
    )
    data = signature_base(request, unsigned).encode("ascii")
    signed = rsa_sign(load_private_key(private_key_pem), data, algorithm)
    return f"{label}={unsigned.signature_params}", serialize_dictionary({label: Item(signed)})


def sign_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    key_id: str,
    private_key_pem: str,
    now: datetime,
    label: str = "sig1",
) -> dict[str, str]:
    """Headers to add: ``Signature-Input``, ``Signature`` and, with a body, ``Content-Digest``."""
    request = SignedRequest.for_url(method, url, headers, body)
    added: dict[str, str] = {}
    components = ["@method", "@target-uri"]
    if request.carries_body:
        added["Content-Digest"] = content_digest_header(body or b"")
        components.append("content-digest")
        if request.header("content-type") is not None:
            components.append("content-type")
    params: dict[str, BareItem] = {
        "created": int(now.timestamp()),
        "keyid": key_id,
        "alg": "rsa-v1_5-sha256",
    }
    added["Signature-Input"], added["Signature"] = rfc9421_signature(
        request.with_headers(added),
        components=components,
        params=params,
        private_key_pem=private_key_pem,
        label=label,
    )
    return added


def verify_rfc9421(
    request: SignedRequest,
    public_key_pem: str,
    *,
    now: datetime,
    max_skew: timedelta,
    expected_host: str | None = None,
    label: str | None = None,
) -> VerifiedSignature:
    """Verify an RFC 9421 signature under the policy above; raise a SignatureError."""
    signature = select_rfc9421(request, label)
    if signature.key_id is None:
        raise MalformedSignature("the signature names no keyid")
    if signature.created is None:
        raise MalformedSignature("the signature has no created time")
    names = {component.name for component in signature.components}
    if "@method" not in names:
        raise InsufficientCoverage("@method is not signed")
    if "@target-uri" not in names and not (
        "@authority" in names and names & {"@path", "@request-target"}
    ):
        raise InsufficientCoverage("neither @target-uri nor @authority with @path is signed")
    if request.carries_body and "content-digest" not in names:
        raise InsufficientCoverage("content-digest is not signed")
    created = timestamp(signature.created)
    check_fresh(created, now, max_skew, "created")
    if signature.expires is not None:
        check_not_expired(timestamp(signature.expires), now)
    check_host(request.target_authority, expected_host, request.scheme)
    if "content-digest" in names:
        digest = request.header("content-digest")
        if digest is None:
            raise MalformedSignature("content-digest is signed but the header is missing")
        check_content_digest(digest, request.body or b"")
    algorithm = check_rfc9421_signature(request, signature, public_key_pem)
    return VerifiedSignature(
        key_id=signature.key_id,
        scheme="rfc9421",
        covered=tuple(component.name for component in signature.components),
        algorithm=algorithm,
        created=created,
    )


def _components(label: str, member: Member) -> tuple[Component, ...]:
    if not isinstance(member, InnerList):
        raise MalformedSignature(f"Signature-Input {label!r} is not an inner list")
    for key, expected in _PARAM_TYPES.items():
        value = member.params.get(key)
        if value is not None and (type(value) is not expected):
            raise MalformedSignature(f"signature parameter {key} has the wrong type")
    components = []
    for item in member.items:
        if isinstance(item.value, Token) or not isinstance(item.value, str):
            raise MalformedSignature(f"component {item.value!r} is not a string")
        if item.value != item.value.lower() or not item.value:
            raise MalformedSignature(f"component name {item.value!r} is not lower case")
        components.append(Component(item.value, item.params))
    if len(set(map(serialize_member, member.items))) != len(components):
        raise MalformedSignature(f"Signature-Input {label!r} covers a component twice")
    if any(component.name == "@signature-params" for component in components):
        raise MalformedSignature("@signature-params cannot be a covered component")
    return tuple(components)


def _derived(request: SignedRequest, name: str, params: Params) -> str:
    path, _, query = request.origin_form.partition("?")
    match name:
        case "@method":
            return request.method
        case "@target-uri":
            return request.target_uri
        case "@authority":
            return request.target_authority
        case "@scheme":
            return request.scheme.lower()
        case "@request-target":
            return request.path
        case "@path":
            return path or "/"
        case "@query":
            return "?" + query
        case "@query-param":
            return _query_param(query, params.get("name"))
    raise MalformedSignature(f"derived component {name} does not apply to a request")


def _query_param(query: str, wanted: BareItem | None) -> str:
    """RFC 9421 Section 2.2.8: form-decode, then re-encode name and value the same way."""
    if not isinstance(wanted, str) or isinstance(wanted, Token):
        raise MalformedSignature("@query-param needs a name string")
    matches = [
        _form_encode(value)
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True)
        if _form_encode(key) == wanted
    ]
    if len(matches) != 1:
        raise MalformedSignature(f"query parameter {wanted!r} occurs {len(matches)} times")
    return matches[0]


def _form_encode(text: str) -> str:
    # The application/x-www-form-urlencoded percent-encode set leaves only alphanumerics
    # and *-._ alone; Python's quote also spares "~".
    return urllib.parse.quote(text, safe="*").replace("~", "%7E")


def _field(request: SignedRequest, name: str, params: Params) -> str:
    unknown = set(params) - {"sf", "key", "bs"}
    if unknown:
        raise MalformedSignature(f"unsupported parameters on {name}: {sorted(unknown)}")
    if "bs" in params and params.keys() & {"sf", "key"}:
        raise MalformedSignature(f"bs cannot be combined with sf or key on {name}")
    lines = request.header_values(name)
    if lines is None:
        raise MalformedSignature(f"covered field {name!r} is not in the request")
    if "bs" in params:
        return ", ".join(serialize_member(Item(line.strip().encode())) for line in lines)
    value = request.header(name) or ""
    if "key" not in params and "sf" not in params:
        return value
    key = params.get("key")
    if key is not None and (not isinstance(key, str) or isinstance(key, Token)):
        raise MalformedSignature(f"key parameter on {name} is not a string")
    try:
        return dictionary_member(value, key) if key is not None else canonical_field(name, value)
    except MalformedStructuredField as error:
        raise MalformedSignature(f"field {name}: {error}") from error
