"""Dispatch of stored inbound activities, and the pure readers and builders around it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.activitypub.urls import Urls
from bridge.context import BridgeContext
from bridge.entries import FeedMeta
from bridge.errors import (
    ActivityIgnored,
    AddressNotAllowed,
    IdMismatch,
    InvalidActor,
    MalformedActivity,
    Rejected,
    RemoteConnectionError,
    RemoteFetchError,
    RemoteHTTPError,
    RemoteTimeout,
    RetryLater,
)
from bridge.federation import dispatch, follows
from bridge.federation.inbox import activity_shape, is_self_delete
from bridge.federation.remote_actors import actor_keys, find_key, id_of, parse_actor
from bridge.jobs import INBOUND
from bridge.store.base import (
    Blog,
    BlogSettings,
    FeedState,
    Follower,
    InboundActivity,
    Job,
    NewBlog,
    NewInbound,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ALICE = "https://mastodon.example/users/alice"


def job(payload: dict[str, Any]) -> Job:
    return Job(1, INBOUND, payload, None, None, "running", 0, NOW, None, "t", None, None, NOW, NOW)


async def store_inbound(ctx: BridgeContext, activity: dict[str, Any]) -> InboundActivity:
    inbound_id = await ctx.store.record_inbound(
        NewInbound(
            "mastodon.example", activity["id"], activity["actor"], activity["type"], activity
        ),
        NOW,
    )
    assert inbound_id is not None
    stored = await ctx.store.get_inbound(inbound_id)
    assert stored is not None
    return stored


# process_inbound


@pytest.mark.parametrize(
    "payload", [{}, {"inbound_id": "1"}, {"inbound_id": True}, {"inbound_id": 99}]
)
async def test_a_job_without_a_stored_activity_is_rejected(
    ctx: BridgeContext, payload: dict[str, Any]
) -> None:
    with pytest.raises(Rejected):
        await dispatch.process_inbound(ctx, job(payload))


async def test_types_without_a_handler_are_marked_ignored(ctx: BridgeContext) -> None:
    stored = await store_inbound(
        ctx, {"id": ALICE + "#flags/1", "type": "Flag", "actor": ALICE, "object": "x"}
    )
    await dispatch.process_inbound(ctx, job({"inbound_id": stored.id}))
    after = await ctx.store.get_inbound(stored.id)
    assert after is not None and after.state == "ignored"
    assert after.error == "Flag is not handled"


async def test_adding_a_handler_is_one_registration(
    ctx: BridgeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    async def on_like(ctx: BridgeContext, inbound: InboundActivity) -> str:
        seen.append(inbound.activity_id)
        return "liked"

    monkeypatch.setitem(dispatch.HANDLERS, "Like", on_like)
    stored = await store_inbound(
        ctx, {"id": ALICE + "#likes/2", "type": "Like", "actor": ALICE, "object": "x"}
    )
    await dispatch.process_inbound(ctx, job({"inbound_id": stored.id}))
    after = await ctx.store.get_inbound(stored.id)
    assert after is not None and (after.state, after.error) == ("processed", None)
    assert seen == [ALICE + "#likes/2"]
    # Processed rows are not processed again when the job runs twice.
    await dispatch.process_inbound(ctx, job({"inbound_id": stored.id}))
    assert len(seen) == 1


async def test_undo_is_routed_by_the_type_it_undoes(
    ctx: BridgeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    async def undo_like(ctx: BridgeContext, inbound: InboundActivity) -> str:
        calls.append("like")
        return "unliked"

    monkeypatch.setitem(dispatch.UNDO_HANDLERS, "Like", undo_like)
    undo = {
        "id": ALICE + "#undo/1",
        "type": "Undo",
        "actor": ALICE,
        "object": {"id": ALICE + "#likes/1", "type": "Like", "actor": ALICE},
    }
    stored = await store_inbound(ctx, undo)
    await dispatch.process_inbound(ctx, job({"inbound_id": stored.id}))
    assert calls == ["like"]
    # By id only: each handler is asked; none knows it, so the reasons of all are kept.
    calls.clear()
    monkeypatch.setitem(dispatch.UNDO_HANDLERS, "Like", _ignoring)
    by_id = await store_inbound(ctx, {**undo, "id": ALICE + "#undo/2", "object": ALICE + "#x"})
    await dispatch.process_inbound(ctx, job({"inbound_id": by_id.id}))
    after = await ctx.store.get_inbound(by_id.id)
    assert after is not None and after.state == "ignored"
    assert after.error is not None and "Follow:" in after.error and "Like:" in after.error


async def _ignoring(ctx: BridgeContext, inbound: InboundActivity) -> str:
    raise ActivityIgnored("never liked")


async def test_an_actor_delete_is_processed_without_the_network(ctx: BridgeContext) -> None:
    blog = await ctx.store.add_blog(NewBlog("talkabout", "https://blog.example/feed"), NOW)
    follower = Follower(blog.id, ALICE, ALICE + "/inbox", None, "accepted", NOW, "f1")
    await ctx.store.put_follower(follower)
    stored = await store_inbound(
        ctx, {"id": ALICE + "#delete", "type": "Delete", "actor": ALICE, "object": ALICE}
    )
    await dispatch.process_inbound(ctx, job({"inbound_id": stored.id}))
    assert await ctx.store.get_follower(blog.id, ALICE) is None


@pytest.mark.parametrize(
    ("error", "verdict", "status"),
    [
        (RemoteTimeout(ALICE, "slow"), RetryLater, None),
        (RemoteConnectionError(ALICE, "reset"), RetryLater, None),
        (RemoteHTTPError(ALICE, 503), RetryLater, 503),
        (RemoteHTTPError(ALICE, 429), RetryLater, 429),
        (RemoteHTTPError(ALICE, 408), RetryLater, 408),
        (RemoteHTTPError(ALICE, 404), Rejected, 404),
        (RemoteHTTPError(ALICE, 410), Rejected, 410),
        (AddressNotAllowed(ALICE, "loopback"), Rejected, None),
        (IdMismatch(ALICE, "other id"), Rejected, None),
        (InvalidActor(ALICE, "no inbox"), Rejected, None),
    ],
)
def test_fetch_failures_are_retried_only_when_transient(
    error: RemoteFetchError, verdict: type[Exception], status: int | None
) -> None:
    judged = dispatch.job_verdict(error)
    assert type(judged) is verdict
    assert judged.status == status


# reading activities


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Follow", "actor": ALICE},
        {"id": "", "type": "Follow", "actor": ALICE},
        {"id": "x" * 3000, "type": "Follow", "actor": ALICE},
        {"id": "x", "type": "", "actor": ALICE},
        {"id": "x", "type": "F" * 101, "actor": ALICE},
        {"id": "x", "type": "Follow", "actor": "javascript:alert(1)"},
        {"id": "x", "type": "Follow", "actor": {"id": 5}},
    ],
)
def test_activity_shape_refuses(data: dict[str, Any]) -> None:
    with pytest.raises(MalformedActivity):
        activity_shape(data)


def test_activity_shape_reads_an_embedded_actor() -> None:
    data = {"id": "urn:uuid:1", "type": "Follow", "actor": {"id": ALICE}}
    assert activity_shape(data) == ("urn:uuid:1", "Follow", ALICE)
    assert is_self_delete({"type": "Delete", "object": {"id": ALICE}}, ALICE)
    assert not is_self_delete({"type": "Delete", "object": ALICE + "/statuses/1"}, ALICE)


def test_id_of() -> None:
    assert id_of(ALICE) == ALICE
    assert id_of({"id": ALICE}) == ALICE
    assert id_of({"href": ALICE}) is None
    assert id_of("") is None and id_of(None) is None and id_of(["x"]) is None


# actors and keys


def actor_document(**changes: Any) -> dict[str, Any]:
    document = {
        "id": ALICE,
        "type": "Person",
        "inbox": ALICE + "/inbox",
        "endpoints": {"sharedInbox": "https://mastodon.example/inbox"},
        "preferredUsername": "alice",
        "name": "Alice",
        "url": "https://mastodon.example/@alice",
        "alsoKnownAs": ["https://old.example/users/alice"],
        "movedTo": {"id": "https://new.example/users/alice"},
        "publicKey": {"id": ALICE + "#main-key", "owner": ALICE, "publicKeyPem": "-----BEGIN x"},
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


def test_parse_actor_reads_what_the_bridge_uses() -> None:
    actor = parse_actor(actor_document(), ALICE, NOW)
    assert actor.inbox == ALICE + "/inbox"
    assert actor.shared_inbox == "https://mastodon.example/inbox"
    assert actor.key_id == ALICE + "#main-key"
    assert (actor.preferred_username, actor.name) == ("alice", "Alice")
    assert actor.url == "https://mastodon.example/@alice"
    assert actor.also_known_as == ("https://old.example/users/alice",)
    assert actor.moved_to == "https://new.example/users/alice"


def test_parse_actor_tolerates_odd_optional_fields() -> None:
    actor = parse_actor(
        actor_document(
            type=["Service", "Other"],
            endpoints={"sharedInbox": "not a url"},
            url=[{"type": "Link", "href": "https://mastodon.example/@alice"}],
            alsoKnownAs="https://old.example/users/alice",
            name=42,
            publicKey=None,
        ),
        ALICE,
        NOW,
    )
    assert actor.shared_inbox is None and actor.name is None and actor.key_id is None
    assert actor.url == "https://mastodon.example/@alice"
    assert actor.also_known_as == ("https://old.example/users/alice",)


@pytest.mark.parametrize(
    "changes", [{"type": "Note"}, {"type": None}, {"inbox": None}, {"inbox": "mailto:x@y"}]
)
def test_parse_actor_refuses_what_cannot_be_followed(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidActor):
        parse_actor(actor_document(**changes), ALICE, NOW)


def test_only_keys_on_the_actors_origin_and_owned_by_it_are_vouched_for() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----"
    document = actor_document(
        publicKey=[
            {"id": ALICE + "#main-key", "owner": ALICE, "publicKeyPem": pem},
            {
                "id": "https://victim.example/users/bob#main-key",
                "owner": ALICE,
                "publicKeyPem": pem,
            },
            {
                "id": ALICE + "#other",
                "owner": "https://mastodon.example/users/eve",
                "publicKeyPem": pem,
            },
            {"id": ALICE + "#nopem", "owner": ALICE},
            ALICE + "#by-reference",
        ]
    )
    assert [key.key_id for key in actor_keys(document, ALICE, NOW)] == [ALICE + "#main-key"]
    assert find_key(document, ALICE + "#by-reference") == {"id": ALICE + "#by-reference"}
    assert find_key(document, ALICE + "#missing") is None
    standalone = {"id": "https://k.example/key", "owner": ALICE, "publicKeyPem": pem}
    assert find_key(standalone, "https://k.example/key") is standalone


# what the blog answers


def test_accept_and_reject_repeat_the_follow() -> None:
    urls = Urls("https://bridge.example")
    blog = Blog(
        1,
        "talkabout",
        "https://blog.example/feed",
        BlogSettings(),
        False,
        NOW,
        FeedMeta(),
        FeedState(),
    )
    follower = Follower(1, ALICE, ALICE + "/inbox", None, "accepted", NOW, "https://m.example/f/1")
    accept = follows.answer("Accept", urls, blog, follower, "abc")
    assert accept["id"] == "https://bridge.example/users/talkabout/activities/abc"
    assert accept["type"] == "Accept"
    assert accept["actor"] == "https://bridge.example/users/talkabout"
    assert accept["to"] == [ALICE]
    assert accept["object"] == {
        "id": "https://m.example/f/1",
        "type": "Follow",
        "actor": ALICE,
        "object": "https://bridge.example/users/talkabout",
    }
    assert accept["@context"][0] == "https://www.w3.org/ns/activitystreams"
    without_id = Follower(1, ALICE, ALICE + "/inbox", None, "pending", NOW, None)
    assert "id" not in follows.answer("Reject", urls, blog, without_id, "d")["object"]
