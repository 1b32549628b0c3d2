"""The Fedify peer harness on its own, against an ActivityPub actor written in this test.

The actor ``bob`` (its own RSA key, served by a real aiohttp server on 127.0.0.1) is followed by
the peer's ``alice``; bob's inbox checks alice's draft-cavage signature with ``cryptography``
alone (nothing from ``bridge/``), then bob POSTs a signed ``Accept`` that Fedify must verify
before it records it. Forged and unsigned deliveries must be refused, proving the record means
"verified by Fedify".
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.fedify_peer import (
    PEER_DIR,
    FedifyPeer,
    FedifyPeerError,
    fedify_unavailable,
    require_fedify,
)

pytestmark = pytest.mark.fedify

AS_CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"]
AS_TYPE = "application/activity+json"
CLOCK_SKEW = timedelta(hours=1)

Serve = Callable[[web.Application], Awaitable[str]]


class SignatureRejected(Exception):
    """The test's own verifier refused a signature."""


def parse_signature(header: str) -> dict[str, str]:
    """The parameters of a draft-cavage ``Signature`` header."""
    params: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not (value.startswith('"') and value.endswith('"')):
            raise SignatureRejected(f"malformed Signature parameter {part!r}")
        params[name] = value[1:-1]
    return params


def signing_string(
    method: str, path: str, names: list[str], headers: dict[str, str], host: str
) -> str:
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {path}")
        elif name == "host":
            lines.append(f"host: {host}")
        else:
            lines.append(f"{name}: {headers[name]}")
    return "\n".join(lines)


def sha256_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


@dataclass
class Bob:
    """An ActivityPub actor with its own key, written here, independent of ``bridge/``."""

    http: aiohttp.ClientSession
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    base: str = ""
    inbox: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.base}/users/bob"

    @property
    def key_id(self) -> str:
        return f"{self.id}#main-key"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/users/bob", self.actor)
        app.router.add_post("/users/bob/inbox", self.receive)
        return app

    async def actor(self, request: web.Request) -> web.Response:
        pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        document = {
            "@context": AS_CONTEXT,
            "id": self.id,
            "type": "Person",
            "preferredUsername": "bob",
            "inbox": f"{self.id}/inbox",
            "publicKey": {"id": self.key_id, "owner": self.id, "publicKeyPem": pem.decode()},
        }
        return web.json_response(document, content_type=AS_TYPE)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            activity = json.loads(body)
            signer = await self.verify(request, body)
            if activity.get("actor") != signer:
                raise SignatureRejected(f"signed by {signer}, actor {activity.get('actor')}")
        except (SignatureRejected, ValueError, KeyError) as error:
            self.refused.append(str(error))
            return web.Response(status=401, text=str(error))
        self.inbox.append({"activity": activity, "signature": request.headers["Signature"]})
        return web.Response(status=202)

    async def verify(self, request: web.Request, body: bytes) -> str:
        """Check the draft-cavage signature of a POST; return the owner of the signing key."""
        params = parse_signature(request.headers.get("Signature", ""))
        if params.get("algorithm", "hs2019") not in ("rsa-sha256", "hs2019"):
            raise SignatureRejected(f"algorithm {params['algorithm']}")
        names = params["headers"].split()
        for required in ("(request-target)", "host", "date", "digest"):
            if required not in names:
                raise SignatureRejected(f"{required} is not signed: {names}")
        if request.headers["Digest"] != sha256_digest(body):
            raise SignatureRejected("digest does not match the body")
        date = parsedate_to_datetime(request.headers["Date"])
        if abs(datetime.now(UTC) - date) > CLOCK_SKEW:
            raise SignatureRejected(f"stale date {request.headers['Date']}")
        headers = {name.lower(): value for name, value in request.headers.items()}
        message = signing_string(request.method, request.path, names, headers, request.host)
        async with self.http.get(params["keyId"], headers={"Accept": AS_TYPE}) as resp:
            resp.raise_for_status()
            owner_document = await resp.json(content_type=None)
        key = owner_document["publicKey"]
        if key["id"] != params["keyId"] or key["owner"] != owner_document["id"]:
            raise SignatureRejected(f"{params['keyId']} is not the key of {owner_document['id']}")
        public_key = serialization.load_pem_public_key(key["publicKeyPem"].encode())
        assert isinstance(public_key, rsa.RSAPublicKey)
        try:
            public_key.verify(
                base64.b64decode(params["signature"]),
                message.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature as error:
            raise SignatureRejected("signature does not verify") from error
        return str(owner_document["id"])

    async def post(
        self,
        inbox: str,
        activity: dict[str, Any],
        *,
        key: rsa.RSAPrivateKey | None = None,
        body: bytes | None = None,
        signed: bool = True,
    ) -> tuple[int, str]:
        """POST ``activity`` to ``inbox``, signed (cavage, rsa-sha256) over
        ``(request-target) host date digest``; ``body`` replaces what is sent after signing."""
        payload = json.dumps(activity).encode()
        url = urlsplit(inbox)
        headers = {
            "Content-Type": AS_TYPE,
            "Date": format_datetime(datetime.now(UTC), usegmt=True),
            "Digest": sha256_digest(payload),
        }
        if signed:
            names = ["(request-target)", "host", "date", "digest"]
            lowered = {name.lower(): value for name, value in headers.items()}
            message = signing_string("POST", url.path, names, lowered, url.netloc)
            signature = (key or self.key).sign(
                message.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            headers["Signature"] = (
                f'keyId="{self.key_id}",algorithm="rsa-sha256",headers="{" ".join(names)}",'
                f'signature="{base64.b64encode(signature).decode()}"'
            )
        async with self.http.post(inbox, data=body or payload, headers=headers) as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def peer() -> AsyncIterator[FedifyPeer]:
    require_fedify()
    async with FedifyPeer() as started:
        yield started


@pytest.fixture
async def bob(http: aiohttp.ClientSession, serve: Serve) -> Bob:
    actor = Bob(http)
    actor.base = await serve(actor.app())
    return actor


async def test_follow_accept_and_unfollow_with_verified_signatures(
    peer: FedifyPeer, bob: Bob
) -> None:
    followed = await peer.follow(bob.id)

    assert followed.actor == bob.id
    assert followed.inbox == f"{bob.id}/inbox"
    assert bob.refused == []
    [delivered] = bob.inbox
    follow = delivered["activity"]
    assert follow["type"] == "Follow"
    assert follow["id"] == followed.id
    assert follow["actor"] == peer.actor_id
    assert follow["object"] == bob.id
    assert parse_signature(delivered["signature"])["keyId"] == f"{peer.actor_id}#main-key"

    accept = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{bob.id}/accepts/{uuid.uuid4()}",
        "type": "Accept",
        "actor": bob.id,
        "object": {
            "id": follow["id"],
            "type": "Follow",
            "actor": follow["actor"],
            "object": bob.id,
        },
    }
    status, answer = await bob.post(f"{peer.actor_id}/inbox", accept)
    assert status == 202, answer

    received = await peer.wait_for("Accept", timeout=5)
    assert received.id == accept["id"]
    assert received.actor == bob.id
    assert received.object == followed.id
    assert received.recipient == "alice"
    assert received.verified is True
    assert received.verified_by == "http-signatures"
    assert received.key_id == bob.key_id
    assert received.signed_headers == ("(request-target)", "host", "date", "digest")

    undo_id = await peer.unfollow(bob.id)
    assert bob.refused == []
    undo = bob.inbox[-1]["activity"]
    assert (undo["type"], undo["id"], undo["actor"]) == ("Undo", undo_id, peer.actor_id)
    assert undo["object"]["id"] == followed.id


async def test_peer_refuses_forged_and_unsigned_deliveries(peer: FedifyPeer, bob: Bob) -> None:
    def accept(n: int) -> dict[str, Any]:
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{bob.id}/accepts/{n}",
            "type": "Accept",
            "actor": bob.id,
            "object": f"{peer.actor_id}/follows/{n}",
        }

    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tampered = json.dumps({**accept(2), "object": f"{peer.actor_id}/follows/other"}).encode()
    attempts = [
        await bob.post(f"{peer.actor_id}/inbox", accept(1), signed=False),
        await bob.post(f"{peer.actor_id}/inbox", accept(2), body=tampered),
        await bob.post(peer.shared_inbox, accept(3), key=impostor),
    ]

    refused = "Failed to verify the request signature."
    assert attempts == [(401, refused)] * 3
    deliveries = await peer.deliveries()
    assert [(d.path, d.status, d.activity_id) for d in deliveries] == [
        ("/users/alice/inbox", 401, accept(1)["id"]),
        ("/users/alice/inbox", 401, accept(2)["id"]),
        ("/inbox", 401, accept(3)["id"]),
    ]
    # A correctly signed one still passes, so the refusals above are about the signatures.
    status, answer = await bob.post(peer.shared_inbox, accept(4))
    assert status == 202, answer
    assert [(r.type, r.id, r.recipient) for r in await peer.received()] == [
        ("Accept", accept(4)["id"], None)
    ]


async def test_peer_never_leaves_loopback(peer: FedifyPeer) -> None:
    with pytest.raises(FedifyPeerError, match="did not resolve"):
        await peer.follow("http://www.talkabout.de/users/blog")

    await peer.wait_for_output("refuses to connect to www.talkabout.de")


def test_missing_node_or_modules_skips_here_and_fails_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "package.json").write_text((PEER_DIR / "package.json").read_text())
    assert "no-such-node is not installed" in str(fedify_unavailable(tmp_path, "no-such-node"))
    if fedify_unavailable() is None:  # node itself is here: only the modules are missing
        assert "npm ci --prefix tests/fedify" in str(fedify_unavailable(tmp_path))

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Fedify peer unavailable"):
        require_fedify(tmp_path, "no-such-node")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="unavailable in CI"):
        require_fedify(tmp_path, "no-such-node")
