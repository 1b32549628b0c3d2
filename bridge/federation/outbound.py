"""Signing what the bridge sends: POSTs to inboxes, GETs of remote documents.

The signature formats are :mod:`bridge.activitypub.cavage` and
:mod:`bridge.activitypub.message_signatures`; this module adds what sending many requests
needs:

* private keys are parsed once (:func:`signing_key`): loading an RSA key from PEM validates it,
  which costs ~40 ms, a hundred times the signature itself;
* :class:`OutboundSigner` signs on a few threads, one per core: RSA signing releases the
  GIL, so signatures run beside the event loop instead of stalling it; results come back
  to the loop in batches (one wake-up for all that finished meanwhile);
* :class:`HostMemory` keeps what is known of each host, among it the "double-knock" memory:
  which scheme it accepted (RFC 9421 is tried first where nothing is known; a host that
  refuses it gets draft-cavage).

POSTs are signed as Mastodon signs them: draft-cavage over ``(request-target) host date
digest content-type``, RFC 9421 over ``"@method" "@target-uri" "content-digest"
"content-type"``; a ``Collection-Synchronization`` header (FEP-8fcf) is covered too when sent,
as Mastodon covers every header it sets. GETs cover ``(request-target) host date``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from bridge.activitypub.cavage import REQUEST_TARGET
from bridge.activitypub.digests import content_digest_header, digest_header
from bridge.activitypub.remote import Signer
from bridge.activitypub.signed_requests import (
    SignedRequest,
    format_http_date,
    load_private_key,
    normalize_authority,
    rsa_sign,
)
from bridge.context import Clock
from bridge.errors import MalformedSignature, UnsupportedURL
from bridge.store.base import HostStatus, HostStore

SignatureScheme = Literal["rfc9421", "cavage"]
SCHEMES: tuple[SignatureScheme, ...] = ("rfc9421", "cavage")
SYNC_HEADER = "Collection-Synchronization"
_SIGNED_WHEN_PRESENT = ("content-type", SYNC_HEADER.lower())


def host_of(url: str) -> str:
    """The host a URL talks to, as jobs and host health key it: ``name[:port]``, lower case.

    The default port of the scheme is left out (``https://A.example:443/x`` → ``a.example``).
    """
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise UnsupportedURL(url, f"unreadable URL ({exc})") from None
    authority = parsed.host_port_subcomponent if parsed.absolute else None
    if not authority or parsed.scheme not in ("http", "https"):
        raise UnsupportedURL(url, "not an absolute http(s) URL with a host")
    return normalize_authority(authority, parsed.scheme)


@functools.lru_cache(maxsize=256)
def signing_key(private_pem: str) -> rsa.RSAPrivateKey:
    """The private key of a PEM, parsed (and validated) once per process."""
    return load_private_key(private_pem)


def signed_headers(
    scheme: SignatureScheme,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    key_id: str,
    key: rsa.RSAPrivateKey,
    now: datetime,
) -> dict[str, str]:
    """Headers to add to (and replace in) a request so that it carries a signature.

    Always ``Host`` and ``Date``; with a body its digest (``Digest`` or ``Content-Digest``);
    then ``Signature`` (and ``Signature-Input`` for RFC 9421). Pure: CPU only.
    """
    request = SignedRequest.for_url(method, url, headers, body)
    added = {"Host": request.target_authority, "Date": format_http_date(now)}
    if scheme == "cavage":
        added.update(_cavage(request, added, key_id, key))
    elif scheme == "rfc9421":
        added.update(_rfc9421(request, key_id, key, now))
    else:
        raise ValueError(f"unknown signature scheme {scheme!r}")
    return added


def _optional(request: SignedRequest) -> list[tuple[str, str]]:
    """Name and canonical value of the headers signed when the request has them."""
    found = []
    for name in _SIGNED_WHEN_PRESENT:
        value = request.header(name)
        if value is not None:
            found.append((name, value))
    return found


# The signing strings are written out here rather than built by the general signature code:
# for the few fixed components we sign, that general code (structured-field serialisation
# character by character) costs several times the RSA signature itself. The tests check
# that both give the very same bytes.


def _cavage(
    request: SignedRequest, added: dict[str, str], key_id: str, key: rsa.RSAPrivateKey
) -> dict[str, str]:
    fields = [
        (REQUEST_TARGET, f"{request.method.lower()} {request.origin_form}"),
        ("host", added["Host"]),
        ("date", added["Date"]),
    ]
    more: dict[str, str] = {}
    if request.carries_body:
        more["Digest"] = _digest(request.body or b"")
        fields += [("digest", more["Digest"]), *_optional(request)]
    data = "\n".join(f"{name}: {value}" for name, value in fields)
    signed = rsa_sign(key, data.encode("utf-8", "surrogateescape"), "rsa-v1_5-sha256")
    more["Signature"] = ",".join(
        (
            f"keyId={_quote(key_id)}",
            'algorithm="rsa-sha256"',
            f"headers={_quote(' '.join(name for name, _ in fields))}",
            f'signature="{base64.b64encode(signed).decode("ascii")}"',
        )
    )
    return more


def _rfc9421(
    request: SignedRequest, key_id: str, key: rsa.RSAPrivateKey, now: datetime
) -> dict[str, str]:
    components = [("@method", request.method), ("@target-uri", request.target_uri)]
    more: dict[str, str] = {}
    if request.carries_body:
        more["Content-Digest"] = _content_digest(request.body or b"")
        components += [("content-digest", more["Content-Digest"]), *_optional(request)]
    if not key_id.isascii() or not key_id.isprintable():
        raise MalformedSignature(f"key id {key_id!r} cannot be a structured-field string")
    inner = "(" + " ".join(f'"{name}"' for name, _ in components) + ")"
    params = f';created={int(now.timestamp())};keyid={_quote(key_id)};alg="rsa-v1_5-sha256"'
    lines = []
    for name, value in components:
        if "\n" in value or "\r" in value or not value.isascii():
            raise MalformedSignature(f"component {name} is not one line of ASCII")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {inner}{params}')
    signed = rsa_sign(key, "\n".join(lines).encode("ascii"), "rsa-v1_5-sha256")
    more["Signature-Input"] = f"sig1={inner}{params}"
    more["Signature"] = f"sig1=:{base64.b64encode(signed).decode('ascii')}:"
    return more


# A fan-out sends one body to every inbox: its digests are computed once, not per inbox (a
# bytes object keeps its hash, so looking the same body up again costs next to nothing).
_digest = functools.lru_cache(maxsize=64)(digest_header)
_content_digest = functools.lru_cache(maxsize=64)(content_digest_header)


def _quote(text: str) -> str:
    """A quoted string, as both a cavage parameter and an RFC 8941 string write it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def get_signer(private_pem: str, key_id: str, clock: Clock) -> Signer:
    """A signer for :func:`bridge.activitypub.remote.fetch_activity_json` (draft-cavage GETs,
    which every authorized-fetch server accepts), signing on the calling thread."""
    key = signing_key(private_pem)

    def sign(method: str, url: str, headers: Mapping[str, str]) -> Mapping[str, str]:
        return signed_headers(
            "cavage", method, url, headers, None, key_id=key_id, key=key, now=clock()
        )

    return sign


class OutboundSigner:
    """Signs requests on a few threads beside the event loop (RSA releases the GIL).

    Requests go to the threads through one queue, and finished signatures come back to the
    event loop in batches: a thread that finishes one while the loop has not yet collected
    the previous ones adds it to those instead of waking the loop again. Under load that is
    one wake-up (a pipe write, a read, a callback) for many signatures instead of one each,
    and without holding any signature back to fill a batch.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        # Finished work per event loop, waiting for that loop to collect it.
        self._done: dict[asyncio.AbstractEventLoop, list[tuple[_Work, _Result]]] = {}

    async def sign(
        self,
        scheme: SignatureScheme,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        key_id: str,
        private_pem: str,
        now: datetime,
    ) -> dict[str, str]:
        """:func:`signed_headers` off the event loop, with the key parsed once."""

        def sign() -> dict[str, str]:
            # The key is parsed here too: the first use of a key costs ~40 ms of CPU.
            key = signing_key(private_pem)
            return signed_headers(
                scheme, method, url, headers, body, key_id=key_id, key=key, now=now
            )

        loop = asyncio.get_running_loop()
        work = _Work(loop, loop.create_future(), sign)
        if not self._workers:
            self._start()
        self._queue.put(work)
        return await work.future

    def _start(self) -> None:
        for n in range(self.threads):
            thread = threading.Thread(target=self._serve, name=f"feedfed-sign_{n}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def _serve(self) -> None:
        while (work := self._queue.get()) is not None:
            if work.future.cancelled():
                continue  # its delivery gave up while it waited
            try:
                result: _Result = (work.call(), None)
            except Exception as exc:  # noqa: BLE001 - not swallowed: raised in the awaiting delivery
                result = (None, exc)
            with self._lock:
                waiting = self._done.setdefault(work.loop, [])
                waiting.append((work, result))
                wake = len(waiting) == 1
            if wake:
                try:
                    work.loop.call_soon_threadsafe(self._collect, work.loop)
                except RuntimeError:
                    # The loop closed while we signed: nobody is left to await the result.
                    with self._lock:
                        self._done.pop(work.loop, None)

    def _collect(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            finished = self._done.pop(loop, [])
        for work, (value, error) in finished:
            if work.future.cancelled():
                continue
            if error is not None:
                work.future.set_exception(error)
            else:
                assert value is not None
                work.future.set_result(value)

    def close(self) -> None:
        """Stop the threads (waiting for signatures under way)."""
        workers, self._workers = self._workers, []
        for _ in workers:
            self._queue.put(None)
        for thread in workers:
            thread.join()


_Result = tuple[dict[str, str] | None, Exception | None]


@dataclass(frozen=True)
class _Work:
    """One signature to make, and where its result goes."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[dict[str, str]]
    call: Callable[[], dict[str, str]]


class HostMemory:
    """What the store knows of every host (signature scheme, failures), read at most once
    every ``ttl`` seconds.

    With shared inboxes a host gets about one delivery per post, so anything read or written
    per host would be paid per delivery. Instead the whole host table is read once (one query,
    its size bounded by the number of servers, not of followers) and kept up to date with
    what this process writes; writes happen only when something changes: a scheme learnt,
    failures to clear, a new failure. Read again after ``ttl`` seconds, so that what other
    processes wrote is seen.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self._ttl = timedelta(seconds=ttl)
        self._known: dict[str, HostStatus] = {}
        self._read_at: datetime | None = None
        self._reading = asyncio.Lock()

    async def status(self, store: HostStore, host: str, now: datetime) -> HostStatus:
        """The host's status (an empty one for a host never seen)."""
        if self._stale(now):
            async with self._reading:  # concurrent deliveries share one read
                if self._stale(now):
                    hosts = await store.list_hosts(failing_only=False)
                    self._known = {status.host: status for status in hosts}
                    self._read_at = now
        return self._known.get(host) or HostStatus(host)

    def _stale(self, now: datetime) -> bool:
        return self._read_at is None or not timedelta(0) <= now - self._read_at < self._ttl

    async def remember_scheme(
        self, store: HostStore, host: str, scheme: SignatureScheme, now: datetime
    ) -> None:
        """Note that ``host`` accepted ``scheme`` (written when it is news)."""
        status = await self.status(store, host, now)
        if status.signature_scheme != scheme:
            # Noted before the write, so concurrent deliveries to the host write it once.
            self._note(replace(status, signature_scheme=scheme))
            await store.set_signature_scheme(host, scheme)

    async def succeeded(self, store: HostStore, host: str, now: datetime) -> None:
        """The host answered: clear its failures, if it has any."""
        status = await self.status(store, host, now)
        if status.failures or status.unavailable or status.first_failure_at is not None:
            self._note(
                replace(
                    status,
                    failures=0,
                    first_failure_at=None,
                    unavailable=False,
                    last_success_at=now,
                )
            )
            await store.record_host_success(host, now)

    async def failed(self, store: HostStore, host: str, now: datetime) -> HostStatus:
        """Count a failure; returns the host's status after it."""
        status = await store.record_host_failure(host, now)
        self._note(status)
        return status

    async def marked_unavailable(self, store: HostStore, host: str, now: datetime) -> None:
        """Mark the host unavailable (its jobs wait until it is heard from)."""
        status = await self.status(store, host, now)
        self._note(replace(status, unavailable=True))
        await store.mark_host_unavailable(host, now)

    def _note(self, status: HostStatus) -> None:
        self._known[status.host] = status
