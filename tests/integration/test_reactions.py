"""Likes, emoji reactions and boosts of a post, and their withdrawal, through the real inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge
from tests.fakes.note_instances import NoteWorld, add_post, note, note_fediverse
from tests.fakes.resolver import MappingResolver


@pytest.fixture
async def world(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[NoteWorld]:
    async with note_fediverse(resolver, clock) as fediverse:
        yield fediverse


async def counts(bridge: InboxBridge, entry_id: str) -> tuple[int, int, int]:
    blog = bridge.blogs["talkabout"]
    return (
        await bridge.store.count_reactions(blog.id, entry_id, "like"),
        await bridge.store.count_reactions(blog.id, entry_id, "boost"),
        await bridge.store.count_reactions(blog.id, entry_id, "mention"),
    )


async def test_likes_count_once_per_actor_and_undo_withdraws_the_own_like(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, article = await add_post(bridge)
    alice_like = world.alice.activity("Like", article)
    await world.send(world.alice, bridge, alice_like)
    await world.send(world.alice, bridge, world.alice.activity("Like", article))
    await world.send(world.bob, bridge, world.bob.activity("Like", article))
    assert await counts(bridge, stored.entry_id) == (2, 0, 0)
    await world.send(world.alice, bridge, world.alice.undo(alice_like))
    assert await counts(bridge, stored.entry_id) == (1, 0, 0)
    withdrawn = await bridge.store.get_reaction(alice_like["id"])
    assert withdrawn is not None and withdrawn.withdrawn_at is not None


async def test_an_undo_naming_the_like_only_by_id_withdraws_it(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, article = await add_post(bridge)
    like = world.alice.activity("Like", article)
    await world.send(world.alice, bridge, like)
    await world.send(world.alice, bridge, world.alice.activity("Undo", like["id"]))
    assert await counts(bridge, stored.entry_id) == (0, 0, 0)


async def test_misskey_and_pleroma_emoji_reactions_are_likes_with_their_emoji(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, article = await add_post(bridge)
    misskey = world.alice.activity("Like", article, content="⭐", _misskey_reaction="⭐")
    await world.send(world.alice, bridge, misskey)
    pleroma = world.bob.activity("EmojiReact", article, content="<b>🔥</b>")
    await world.send(world.bob, bridge, pleroma)
    blog = bridge.blogs["talkabout"]
    likes = await bridge.store.list_reactions(blog.id, stored.entry_id, "like")
    assert sorted(r.content_html or "" for r in likes) == ["&lt;b&gt;🔥&lt;/b&gt;", "⭐"]
    await world.send(world.bob, bridge, world.bob.undo(pleroma))
    assert await counts(bridge, stored.entry_id) == (1, 0, 0)


async def test_a_boost_of_the_post_is_recorded_and_withdrawn_by_undo(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, article = await add_post(bridge)
    boost = world.carol.activity("Announce", article, to=[world.carol.followers])
    await world.send(world.carol, bridge, boost)
    found = await bridge.store.get_reaction(boost["id"])
    assert found is not None
    assert (found.kind, found.actor.name, found.actor.handle) == (
        "boost",
        "Carol",
        "@carol@third.test",
    )
    await world.send(world.carol, bridge, world.carol.undo(boost))
    assert await counts(bridge, stored.entry_id) == (0, 0, 0)


async def test_a_like_of_something_not_ours_is_ignored(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    await add_post(bridge)
    await world.send(world.alice, bridge, world.alice.activity("Like", world.bob.id + "/x"))
    assert await bridge.count("reactions") == 0
    assert (await bridge.last_state())[0] == "ignored"


async def test_a_boost_of_a_remote_reply_brings_the_reply_in(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    reply = world.social.publish(note(world.bob, "<p>Bobs Antwort</p>", in_reply_to=article))
    boost = world.alice.activity("Announce", reply["id"])
    await world.send(world.alice, bridge, boost)
    found = await bridge.store.get_comment(reply["id"])
    assert found is not None and found.parent_id == article
    assert found.author.actor_id == world.bob.id
