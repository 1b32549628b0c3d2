"""Accounts of the fake instances, shaped as Mastodon serves them, and what they send.

URLs follow Mastodon: ``/users/{username}`` with ``#main-key``, ``/inbox`` shared, and the
instance actor at ``/actor`` (an ``Application`` that signs the instance's own fetches).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.httpsig import public_pem

ACTIVITY_JSON = "application/activity+json"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
PUBLIC = f"{AS_CONTEXT}#Public"
MASTODON_CONTEXT = [
    AS_CONTEXT,
    "https://w3id.org/security/v1",
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
        "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    },
]


class Site(Protocol):
    """Where an actor lives: the instance's host name and base URL."""

    name: str

    @property
    def base(self) -> str: ...


@dataclass(eq=False)
class FakeActor:
    """One account of a fake instance."""

    site: Site
    username: str
    key: rsa.RSAPrivateKey
    path: str  # "/users/{username}", or "/actor" for the instance actor
    name: str
    type: str = "Person"
    has_shared_inbox: bool = True
    also_known_as: list[str] = field(default_factory=list)
    moved_to: str | None = None
    manually_approves_followers: bool = False
    gone: bool = False  # a deleted account: its document and inbox answer 410
    _pem: str = ""

    @property
    def id(self) -> str:
        """The actor's URL."""
        return self.site.base + self.path

    @property
    def inbox(self) -> str:
        """Its own inbox."""
        return self.id + "/inbox"

    @property
    def outbox(self) -> str:
        """Its outbox (empty)."""
        return self.id + "/outbox"

    @property
    def followers(self) -> str:
        """Its followers collection (empty)."""
        return self.id + "/followers"

    @property
    def following(self) -> str:
        """Its following collection (empty)."""
        return self.id + "/following"

    @property
    def key_id(self) -> str:
        """Its key, a fragment of the actor (GET without the fragment returns the actor)."""
        return self.id + "#main-key"

    @property
    def handle(self) -> str:
        """``username@host`` as WebFinger knows it."""
        return f"{self.username}@{self.site.name}"

    @property
    def shared_inbox(self) -> str | None:
        """The instance's shared inbox, when this actor advertises it."""
        return self.site.base + "/inbox" if self.has_shared_inbox else None

    @property
    def public_pem(self) -> str:
        """The public key as published."""
        if not self._pem:
            self._pem = public_pem(self.key)
        return self._pem

    def document(self) -> dict[str, Any]:
        """The actor as Mastodon serves it."""
        document: dict[str, Any] = {
            "@context": MASTODON_CONTEXT,
            "id": self.id,
            "type": self.type,
            "preferredUsername": self.username,
            "name": self.name,
            "summary": "",
            "url": f"{self.site.base}/@{self.username}",
            "inbox": self.inbox,
            "outbox": self.outbox,
            "followers": self.followers,
            "following": self.following,
            "manuallyApprovesFollowers": self.manually_approves_followers,
            "discoverable": True,
            "publicKey": {"id": self.key_id, "owner": self.id, "publicKeyPem": self.public_pem},
        }
        if self.shared_inbox:
            document["endpoints"] = {"sharedInbox": self.shared_inbox}
        if self.also_known_as:
            document["alsoKnownAs"] = list(self.also_known_as)
        if self.moved_to:
            document["movedTo"] = self.moved_to
        return document

    def collection(self, url: str) -> dict[str, Any]:
        """One of its (empty) collections."""
        return {
            "@context": AS_CONTEXT,
            "id": url,
            "type": "OrderedCollection",
            "totalItems": 0,
            "orderedItems": [],
        }

    def new_id(self) -> str:
        """A fresh activity id on its instance, as Mastodon mints them."""
        return f"{self.site.base}/{uuid.uuid4()}"

    def activity(self, kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
        """An activity of ``kind`` by this actor with a fresh id."""
        return {
            "@context": AS_CONTEXT,
            "id": self.new_id(),
            "type": kind,
            "actor": self.id,
            "object": obj,
            **extra,
        }

    def undo(self, activity: dict[str, Any]) -> dict[str, Any]:
        """An Undo of ``activity``, embedded as Mastodon sends it."""
        inner = {key: value for key, value in activity.items() if key != "@context"}
        return {**self.activity("Undo", inner), "id": f"{activity['id']}/undo"}

    def delete(self) -> dict[str, Any]:
        """Mastodon's account deletion: a Delete whose object is the actor itself."""
        deletion = self.activity("Delete", self.id, to=[PUBLIC])
        return {**deletion, "id": f"{self.id}#delete"}

    def move(self, target: str) -> dict[str, Any]:
        """A Move to ``target`` (which should name this actor in ``alsoKnownAs``)."""
        return self.activity("Move", self.id, target=target)
