"""Fake instances that also serve their actors' notes, and a blog post for them to answer.

:class:`NoteInstance` is a :class:`~tests.fakes.instance.FakeInstance` that publishes notes
at their ids (as Mastodon serves ``/users/x/statuses/1``) and collections at theirs, so the
bridge can fetch what was never delivered to it. :func:`note_fediverse` starts four of them
on one server (alice on mastodon.test, bob on social.test, carol on third.test, mallory on
evil.test) and :func:`add_post` gives a running bridge the talkabout post to talk about.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bridge.activitypub.urls import entry_slug
from bridge.entries import FeedEntry
from bridge.store.base import StoredEntry
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, fake_key
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_actors import ACTIVITY_JSON, AS_CONTEXT, PUBLIC, FakeActor
from tests.fakes.instance_server import FakeServer
from tests.fakes.resolver import MappingResolver

POST_ID = "http://www.talkabout.de/?p=1234"
POST_LINK = "http://www.talkabout.de/ein-pladoyer-fur-die-mitteilung/"
_numbers = itertools.count(1)


class NoteInstance(FakeInstance):
    """A fake instance that serves the documents in ``published`` at their paths."""

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self.published: dict[str, dict[str, Any]] = {}
        self.served: list[str] = []

    def publish(self, document: dict[str, Any]) -> dict[str, Any]:
        """Serve ``document`` at its id from now on."""
        path = document["id"].removeprefix(self.base)
        self.published[path] = document
        return document

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Published documents first, the rest as a FakeInstance answers."""
        document = self.published.get(request.path_qs) or self.published.get(request.path)
        if request.method == "GET" and document is not None:
            self.served.append(request.path_qs)
            return web.json_response(
                {"@context": AS_CONTEXT, **document}, content_type=ACTIVITY_JSON
            )
        return await super().handle(request)


def note(
    actor: FakeActor,
    content: str,
    *,
    in_reply_to: str | None,
    public: bool = True,
    tags: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Mastodon-shaped note by ``actor`` with a fresh status id."""
    number = next(_numbers)
    object_id = f"{actor.id}/statuses/{number}"
    return {
        "id": object_id,
        "type": "Note",
        "attributedTo": actor.id,
        "inReplyTo": in_reply_to,
        "content": content,
        "published": "2026-11-28T11:00:00Z",
        "url": f"{actor.site.base}/@{actor.username}/{number}",
        "to": [PUBLIC] if public else [actor.followers],
        "cc": [actor.followers] if public else [],
        "tag": tags or [],
        **extra,
    }


def create(actor: FakeActor, obj: dict[str, Any]) -> dict[str, Any]:
    """The Create of ``obj`` by ``actor``, addressed as the object is."""
    return {
        "@context": AS_CONTEXT,
        "id": f"{obj['id']}/activity",
        "type": "Create",
        "actor": actor.id,
        "to": obj.get("to", []),
        "cc": obj.get("cc", []),
        "object": obj,
    }


@dataclass
class NoteWorld:
    """Four instances with one actor each, all on one server."""

    server: FakeServer
    mastodon: NoteInstance
    social: NoteInstance
    third: NoteInstance
    evil: NoteInstance
    alice: FakeActor
    bob: FakeActor
    carol: FakeActor
    mallory: FakeActor

    def site_of(self, actor: FakeActor) -> NoteInstance:
        """The instance ``actor`` lives on."""
        sites = (self.mastodon, self.social, self.third, self.evil)
        return next(site for site in sites if actor.site is site)

    async def send(self, actor: FakeActor, bridge: InboxBridge, activity: Any) -> int:
        """POST ``activity`` as ``actor`` to the shared inbox; run the inbound jobs; the status."""
        status, text = await self.site_of(actor).send(actor, bridge.inbox(None), activity)
        assert status in (202, 401, 403), text
        await bridge.run_inbound()
        return status


@asynccontextmanager
async def note_fediverse(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[NoteWorld]:
    """Start the four instances; their names resolve to 127.0.0.1 for the bridge."""
    async with FakeServer() as server:
        sites = [
            server.add(NoteInstance(name, clock=clock, key=fake_key(20 + n)))
            for n, name in enumerate(("mastodon.test", "social.test", "third.test", "evil.test"))
        ]
        assert all(isinstance(site, NoteInstance) for site in sites)
        mastodon, social, third, evil = (site for site in sites if isinstance(site, NoteInstance))
        alice = mastodon.add_actor("alice", key=fake_key(0))
        bob = social.add_actor("bob", key=fake_key(1))
        carol = third.add_actor("carol", key=fake_key(3))
        mallory = evil.add_actor("mallory", key=fake_key(2))
        for name in server.names:
            resolver.names[name] = ("127.0.0.1",)
        yield NoteWorld(server, mastodon, social, third, evil, alice, bob, carol, mallory)


async def add_post(bridge: InboxBridge, handle: str = "talkabout") -> tuple[StoredEntry, str]:
    """Store the talkabout post for ``handle``'s blog; the entry and its article id."""
    blog = bridge.blogs[handle]
    entry = FeedEntry(
        id=POST_ID,
        link=POST_LINK,
        title="Ein Plädoyer für die Mitteilung",
        content_html="<p>teilhaben lassen, teilnehmen lassen</p>",
        published=datetime(2010, 2, 21, 17, 0, tzinfo=UTC),
    )
    stored = await bridge.store.save_entry(blog.id, entry, entry_slug(POST_ID), bridge.ctx.clock())
    return stored, bridge.ctx.urls.article(blog.handle, stored.slug)
