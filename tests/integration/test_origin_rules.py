"""Each origin rule with the attack it stops: the activity is refused and nothing changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridge.store.base import Comment
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge
from tests.fakes.note_instances import NoteWorld, add_post, create, note, note_fediverse
from tests.fakes.resolver import MappingResolver


@pytest.fixture
async def world(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[NoteWorld]:
    async with note_fediverse(resolver, clock) as fediverse:
        yield fediverse


async def alice_replied(bridge: InboxBridge, world: NoteWorld) -> tuple[dict[str, object], str]:
    _, article = await add_post(bridge)
    reply = note(world.alice, "<p>Original</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, reply))
    return reply, article


async def unchanged(bridge: InboxBridge, object_id: str) -> Comment:
    found = await bridge.store.get_comment(object_id)
    assert found is not None
    assert (found.state, found.content_html, found.updated) == (
        "published",
        "<p>Original</p>",
        None,
    )
    return found


async def refused(bridge: InboxBridge, *words: str) -> None:
    state, reason = await bridge.last_state()
    assert state == "ignored", reason
    assert reason is not None and all(word in reason for word in words), reason


async def test_a_delete_of_someone_elses_note_is_refused(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    reply, _ = await alice_replied(bridge, world)
    attack = world.mallory.activity("Delete", {"id": reply["id"], "type": "Tombstone"})
    # Refused by the inbox at once (403): nothing is stored, no handler runs.
    assert await world.send(world.mallory, bridge, attack) == 403
    await unchanged(bridge, str(reply["id"]))


async def test_a_delete_by_another_actor_on_the_same_server_is_refused(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    reply, _ = await alice_replied(bridge, world)
    eve = world.mastodon.add_actor("eve")
    attack = eve.activity("Delete", reply["id"])
    status, text = await world.mastodon.send(eve, bridge.inbox(None), attack)
    assert status == 403 and "was written by" in text, text
    await bridge.run_inbound()
    await unchanged(bridge, str(reply["id"]))


async def test_an_update_of_someone_elses_note_is_refused(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    reply, _ = await alice_replied(bridge, world)
    forged = {**reply, "content": "<p>Gefälscht</p>", "attributedTo": world.mallory.id}
    update = world.mallory.activity("Update", forged)
    assert await world.send(world.mallory, bridge, update) == 403
    await unchanged(bridge, str(reply["id"]))


async def test_an_undo_of_someone_elses_like_is_refused(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, article = await add_post(bridge)
    like = world.alice.activity("Like", article)
    await world.send(world.alice, bridge, like)
    await world.send(world.mallory, bridge, world.mallory.activity("Undo", like))
    await refused(bridge, "not the signer's")
    await world.send(world.mallory, bridge, world.mallory.activity("Undo", like["id"]))
    await refused(bridge, "belongs to")
    blog = bridge.blogs["talkabout"]
    assert await bridge.store.count_reactions(blog.id, stored.entry_id, "like") == 1


async def test_a_create_whose_object_is_attributed_to_another_host_is_refused(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    forged = {**note(world.mallory, "<p>Ich bin Alice</p>", in_reply_to=article)}
    forged["attributedTo"] = world.alice.id
    await world.send(world.mallory, bridge, create(world.mallory, forged))
    await refused(bridge, "author", "not on the signer's origin")
    assert await bridge.count("comments") == 0


async def test_a_create_of_a_note_claiming_another_hosts_id_is_refused(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    forged = note(world.mallory, "<p>x</p>", in_reply_to=article)
    forged["id"] = f"{world.alice.id}/statuses/777"
    activity = {**create(world.mallory, forged), "id": world.mallory.new_id()}
    await world.send(world.mallory, bridge, activity)
    await refused(bridge, "object", "not on the signer's origin")
    assert await bridge.count("comments") == 0


async def test_an_announce_embedding_a_forged_object_uses_the_one_fetched_from_its_origin(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    real = world.mastodon.publish(note(world.alice, "<p>Echt</p>", in_reply_to=article))
    embedded = {**real, "content": "<p>Kauft Pillen</p>"}
    await world.send(world.mallory, bridge, world.mallory.activity("Announce", embedded))
    found = await bridge.store.get_comment(str(real["id"]))
    assert found is not None and found.content_html == "<p>Echt</p>"


async def test_an_announce_of_an_object_whose_origin_disowns_its_author_is_refused(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    # evil.test serves a note that claims alice (on mastodon.test) wrote it.
    lie = note(world.mallory, "<p>Alice sagt Unsinn</p>", in_reply_to=article)
    world.evil.publish({**lie, "attributedTo": world.alice.id})
    await world.send(world.bob, bridge, world.bob.activity("Announce", lie["id"]))
    await refused(bridge, "another origin")
    assert await bridge.count("comments") == 0


async def test_an_activity_claiming_one_of_our_objects_is_refused(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    ours = note(world.mallory, "<p>Ich bin der Blog</p>", in_reply_to=article)
    ours["id"] = article + "/fake"
    activity = {**create(world.mallory, ours), "id": world.mallory.new_id()}
    await world.send(world.mallory, bridge, activity)
    await refused(bridge, "claims to be one of this bridge's")
    assert await bridge.count("comments") == 0
    update = world.mallory.activity("Update", {"id": article, "type": "Article"})
    await world.send(world.mallory, bridge, update)
    await refused(bridge, "claims to be one of this bridge's")


async def test_a_forged_id_on_another_host_cannot_suppress_the_genuine_activity(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    genuine = note(world.alice, "<p>Echt</p>", in_reply_to=article)
    activity = create(world.alice, genuine)
    # mallory sends first, under alice's activity id, a note of her own
    squatter = note(world.mallory, "<p>zuerst</p>", in_reply_to=article)
    await world.send(
        world.mallory, bridge, {**create(world.mallory, squatter), "id": activity["id"]}
    )
    await refused(bridge, "activity", "not on the signer's origin")
    await world.send(world.alice, bridge, activity)
    found = await bridge.store.get_comment(str(genuine["id"]))
    assert found is not None and found.content_html == "<p>Echt</p>"
    assert await bridge.store.get_comment(str(squatter["id"])) is None
