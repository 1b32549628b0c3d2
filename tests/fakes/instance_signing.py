"""How the fake instances sign what they send and check what they receive, as Mastodon does.

Outgoing: draft-cavage (``(request-target) host date`` plus ``digest content-type`` with a
body) or RFC 9421 (``@method @target-uri`` plus ``content-digest content-type``), with
:class:`Tamper` to break a signature on purpose. Incoming: the signer's key is fetched over
HTTP (signed by the instance actor, no redirects, the document's ``id`` must be the URL asked
for, key and actor must name each other), cached, and refetched once when a signature fails,
since actors rotate keys; for an activity the key's owner must be the activity's actor.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from tests.fakes import httpsig
from tests.fakes.httpsig_fields import content_digest_header, digest_header
from tests.fakes.instance_actors import ACTIVITY_JSON, FakeActor
from tests.fakes.instance_records import Verdict, id_of
from tests.fakes.resolver import LOOPBACK, TripwireError

Fetch = Callable[[str], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class Tamper:
    """Ways to break a signature on purpose: ``send(..., tamper=Tamper(date=...))``."""

    unsigned: bool = False  # no signature at all
    date: datetime | None = None  # sign at this time (stale, future) instead of now
    digest: str | None = None  # send this Digest / Content-Digest value
    omit: tuple[str, ...] = ()  # leave these out of the signed headers / components
    key_of: FakeActor | None = None  # sign with another actor's key and key id
    key_id: str | None = None  # claim this key id (the signature still uses the actor's key)
    algorithm: str | None = None  # claim this algorithm
    body: bytes | None = None  # send these bytes instead of the signed ones
    headers: Mapping[str, str | None] = field(default_factory=dict)  # after signing; None drops


def sign_request(
    method: str,
    url: str,
    body: bytes,
    *,
    key: rsa.RSAPrivateKey,
    key_id: str,
    now: datetime,
    scheme: str = "cavage",
    tamper: Tamper | None = None,
    content_type: str = ACTIVITY_JSON,
) -> tuple[dict[str, str], bytes]:
    """Headers of a request signed with ``key``, and the body to send (see :class:`Tamper`)."""
    spoil = tamper or Tamper()
    if spoil.key_of is not None:
        key, key_id = spoil.key_of.key, spoil.key_of.key_id
    now = spoil.date or now
    headers = {"Host": httpsig.authority_of(url), "Date": httpsig.http_date(now)}
    with_body = method.upper() not in ("GET", "HEAD")
    if with_body:
        headers["Content-Type"] = content_type
        if scheme == "rfc9421":
            headers["Content-Digest"] = spoil.digest or content_digest_header(body)
        else:
            headers["Digest"] = spoil.digest or digest_header(body)
    if not spoil.unsigned:
        request = httpsig.Request.for_url(method, url, headers, body)
        key_id = spoil.key_id or key_id
        if scheme == "rfc9421":
            covered = ["@method", "@target-uri", "content-digest", "content-type"]
            params: httpsig.Params = {"created": int(now.timestamp()), "keyid": key_id}
            params["alg"] = spoil.algorithm or "rsa-v1_5-sha256"
            signed = [name for name in covered[: 4 if with_body else 2] if name not in spoil.omit]
            headers["Signature-Input"], headers["Signature"] = httpsig.sign_rfc9421(
                request, signed, params, key=key
            )
        else:
            covered = ["(request-target)", "host", "date", "digest", "content-type"]
            signed = [name for name in covered[: 5 if with_body else 3] if name not in spoil.omit]
            algorithm = spoil.algorithm or "rsa-sha256"
            headers["Signature"] = httpsig.sign_cavage(
                request, signed, key=key, key_id=key_id, algorithm=algorithm
            )
    for name, value in spoil.headers.items():
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        if value is not None:
            headers[name] = value
    return headers, spoil.body if spoil.body is not None else body


def refuse_beyond_loopback(url: str) -> None:
    """The fakes talk to loopback only: an IP literal must be 127.0.0.1 (names go through the
    session's resolver, which knows only loopback names)."""
    host = URL(url).raw_host or ""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if str(address) != LOOPBACK:
        raise TripwireError(f"a fake instance was about to contact {host}")


@dataclass(frozen=True)
class RemoteKey:
    """A signer's key as fetched: the actor owning it and the key itself."""

    key_id: str
    owner: str
    public: rsa.RSAPublicKey


class KeyRing:
    """Signers' keys, fetched with ``fetch`` and cached; the check of incoming signatures."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._keys: dict[str, asyncio.Future[RemoteKey]] = {}
        self.fetched: list[str] = []  # key ids fetched, in order

    async def verify(
        self,
        request: httpsig.Request,
        *,
        authority: str,
        now: datetime,
        max_skew: timedelta,
        activity_actor: str | None = None,
        accept_rfc9421: bool = True,
    ) -> Verdict:
        """The verdict on ``request`` received as ``authority`` (``host:port``)."""
        scheme, key_id = httpsig.signature_scheme(request), None
        if scheme is None:
            return Verdict(False, "unsigned")
        try:
            if scheme == "rfc9421" and not accept_rfc9421:
                raise httpsig.SignatureRejected("RFC 9421 signatures are not accepted here")
            if request.authority != authority:
                raise httpsig.SignatureRejected(f"addressed to {request.authority}, not to us")
            pending = httpsig.check_request(request, now=now, max_skew=max_skew)
            key_id = pending.key_id
            key = await self.key(key_id)
            try:
                pending.holds(key.public)
            except httpsig.SignatureRejected:
                # The signer may have rotated its key since we cached it: refetch once.
                key = await self.key(key_id, refresh=True)
                pending.holds(key.public)
            if activity_actor is not None and key.owner != activity_actor:
                raise httpsig.SignatureRejected(f"signed by {key.owner}, not the activity's actor")
        except httpsig.SignatureRejected as error:
            return Verdict(False, error.reason, scheme, key_id)
        return Verdict(True, "ok", scheme, key_id)

    async def key(self, key_id: str, *, refresh: bool = False) -> RemoteKey:
        """The key ``key_id``, from the cache unless ``refresh`` (a failed fetch is retried)."""
        task = self._keys.get(key_id)
        if refresh or task is None or (task.done() and (task.cancelled() or task.exception())):
            task = asyncio.ensure_future(self._fetch_key(key_id))
            # Retrieved here so a failure nobody awaits any more is not reported as lost.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._keys[key_id] = task
        # Shielded: one waiter giving up must not cancel the fetch the others share.
        return await asyncio.shield(task)

    async def _fetch_key(self, key_id: str) -> RemoteKey:
        self.fetched.append(key_id)
        url = str(URL(key_id).with_fragment(None))
        document = await self._document(url, f"key {key_id}")
        key = _key_in(document, key_id)
        owner = id_of(key.get("owner")) or ""
        if key is document:  # a standalone key document: its owner must publish it too
            _key_in(await self._document(owner, f"owner of {key_id}"), key_id)
        elif owner != document.get("id"):
            raise httpsig.SignatureRejected(f"key {key_id} is owned by {owner}, not its actor")
        return RemoteKey(key_id, owner, httpsig.load_public(str(key.get("publicKeyPem", ""))))

    async def _document(self, url: str, what: str) -> dict[str, Any]:
        try:
            status, document = await self._fetch(url)
        except (aiohttp.ClientError, TimeoutError, TripwireError) as error:
            raise httpsig.SignatureRejected(f"{what} unreachable: {error!r}") from error
        if status != 200 or not isinstance(document, dict):
            raise httpsig.SignatureRejected(f"{what}: HTTP {status}")
        if document.get("id") != url:
            raise httpsig.SignatureRejected(f"{what}: {url} calls itself {document.get('id')}")
        return document


def _key_in(document: dict[str, Any], key_id: str) -> dict[str, Any]:
    """The key ``key_id`` in an actor's ``publicKey`` (or the document, if it is the key)."""
    if document.get("id") == key_id and "publicKeyPem" in document:
        return document
    keys = document.get("publicKey")
    for key in keys if isinstance(keys, list) else [keys]:
        if isinstance(key, dict) and key.get("id") == key_id:
            return key
    raise httpsig.SignatureRejected(f"{document.get('id')} does not publish key {key_id}")
