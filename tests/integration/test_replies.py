"""Replies become comments: through the real inbox (signed by fake instances' own code),
processed by the ``inbound`` job, threaded, walked up to where they belong, edited, deleted,
moderated; mentions of a post; ``feedfed threads refresh``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge.store.base import BlogSettings, Comment
from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, running_bridge
from tests.fakes.instance_actors import PUBLIC
from tests.fakes.note_instances import POST_LINK, NoteWorld, add_post, create, note, note_fediverse
from tests.fakes.resolver import MappingResolver


@pytest.fixture
async def world(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[NoteWorld]:
    async with note_fediverse(resolver, clock) as fediverse:
        yield fediverse


@pytest.fixture
async def bridge(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
) -> AsyncIterator[InboxBridge]:
    blogs = {"talkabout": BlogSettings(), "strict": BlogSettings(moderation="hold_all")}
    async with running_bridge(sqlite_store, http, resolver, clock, blogs=blogs) as running:
        yield running


async def comment(bridge: InboxBridge, object_id: str) -> Comment:
    found = await bridge.store.get_comment(object_id)
    assert found is not None, f"no comment {object_id}"
    return found


async def test_a_reply_to_the_post_becomes_a_published_comment(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, article = await add_post(bridge)
    reply = note(world.alice, "<p>Sehr guter Artikel.</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, reply))
    found = await comment(bridge, reply["id"])
    assert (found.state, found.parent_id, found.entry_id) == ("published", article, stored.entry_id)
    assert found.author.name == "Alice"
    assert found.author.handle == "@alice@mastodon.test"
    assert found.author.profile_url == f"{world.mastodon.base}/@alice"
    assert found.content_html == "<p>Sehr guter Artikel.</p>"
    assert await bridge.last_state() == ("processed", None)


async def test_a_reply_naming_the_posts_own_url_is_threaded_under_the_article(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    reply = note(world.alice, "<p>Von der Website aus.</p>", in_reply_to=POST_LINK)
    await world.send(world.alice, bridge, create(world.alice, reply))
    assert (await comment(bridge, reply["id"])).parent_id == article


async def test_a_reply_to_a_comment_is_nested_in_the_same_thread(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, article = await add_post(bridge)
    first = note(world.alice, "<p>Erster.</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, first))
    second = note(world.bob, "<p>Antwort an Alice.</p>", in_reply_to=first["id"])
    await world.send(world.bob, bridge, create(world.bob, second))
    nested = await comment(bridge, second["id"])
    assert (nested.parent_id, nested.entry_id) == (first["id"], stored.entry_id)


async def test_a_reply_whose_middle_note_only_reached_followers_still_lands_threaded(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    a = note(world.alice, "<p>A: zum Beitrag.</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, a))
    # B answers A; its server delivers it to B's followers only, never to the bridge.
    b = world.social.publish(note(world.bob, "<p>B: an A.</p>", in_reply_to=a["id"]))
    c = note(world.carol, "<p>C: an B.</p>", in_reply_to=b["id"])
    await world.send(world.carol, bridge, create(world.carol, c))
    middle, last = await comment(bridge, b["id"]), await comment(bridge, c["id"])
    assert (middle.parent_id, last.parent_id) == (a["id"], b["id"])
    assert (middle.state, last.state) == ("published", "published")
    assert middle.author.handle == "@bob@social.test"
    assert world.social.served == [b["id"].removeprefix(world.social.base)]
    state, _ = await bridge.last_state()
    assert state == "processed"


async def test_walking_up_stops_at_a_cycle_and_stores_nothing(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    await add_post(bridge)
    x_id = f"{world.bob.id}/statuses/9001"
    y = world.social.publish(note(world.bob, "<p>y</p>", in_reply_to=x_id))
    world.social.publish({**note(world.bob, "<p>x</p>", in_reply_to=y["id"]), "id": x_id})
    c = note(world.carol, "<p>c</p>", in_reply_to=y["id"])
    await world.send(world.carol, bridge, create(world.carol, c))
    assert await bridge.count("comments") == 0
    assert (await bridge.last_state())[0] == "ignored"
    assert len(world.social.served) == 2  # each note fetched once, then the loop was seen


async def test_walking_up_is_bounded_by_the_configured_depth(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
    world: NoteWorld,
) -> None:
    limits = {"thread_max_depth": 3}
    async with running_bridge(sqlite_store, http, resolver, clock, limits=limits) as bridge:
        _, article = await add_post(bridge)
        parent = article
        for _ in range(5):
            parent = world.social.publish(note(world.bob, "<p>..</p>", in_reply_to=parent))["id"]
        c = note(world.carol, "<p>tief unten</p>", in_reply_to=parent)
        await world.send(world.carol, bridge, create(world.carol, c))
        assert await bridge.count("comments") == 0
        assert len(world.social.served) == 3


async def test_followers_only_replies_are_not_stored(bridge: InboxBridge, world: NoteWorld) -> None:
    _, article = await add_post(bridge)
    reply = note(world.alice, "<p>nur für Follower</p>", in_reply_to=article, public=False)
    await world.send(world.alice, bridge, create(world.alice, reply))
    assert await bridge.count("comments") == 0
    state, reason = await bridge.last_state()
    assert state == "ignored" and reason is not None and "not public" in reason


async def test_update_edits_and_delete_removes_a_comment(
    bridge: InboxBridge, world: NoteWorld, clock: FakeClock
) -> None:
    _, article = await add_post(bridge)
    reply = note(world.alice, "<p>Erste Fassung</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, reply))
    clock.advance(60)
    edited = {
        **reply,
        "content": "<p>Zweite Fassung <script>x()</script></p>",
        "updated": "2026-11-28T12:01:00Z",
    }
    update = world.alice.activity("Update", edited)
    await world.send(world.alice, bridge, update)
    found = await comment(bridge, reply["id"])
    assert (found.content_html, found.state) == ("<p>Zweite Fassung </p>", "published")
    assert found.updated is not None
    tombstone = {"id": reply["id"], "type": "Tombstone"}
    await world.send(world.alice, bridge, world.alice.activity("Delete", tombstone))
    gone = await comment(bridge, reply["id"])
    assert gone.state == "deleted" and gone.deleted_at is not None


async def test_an_actor_deleting_itself_takes_its_comments_and_reactions(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    reply = note(world.alice, "<p>bald weg</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, reply))
    await world.send(world.alice, bridge, world.alice.activity("Like", article))
    await world.send(world.alice, bridge, world.alice.delete())
    assert (await comment(bridge, reply["id"])).state == "deleted"
    stored = bridge.blogs["talkabout"]
    entry = (await add_post(bridge))[0]
    assert await bridge.store.count_reactions(stored.id, entry.entry_id, "like") == 0


async def test_a_note_linking_the_post_without_replying_is_a_mention(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, _ = await add_post(bridge)
    text = f'<p>Lesenswert: <a href="{POST_LINK}">talkabout</a></p>'
    mention = note(world.bob, text, in_reply_to=None)
    await world.send(world.bob, bridge, create(world.bob, mention))
    blog = bridge.blogs["talkabout"]
    [found] = await bridge.store.list_reactions(blog.id, stored.entry_id, "mention")
    assert (found.activity_id, found.actor.actor_id) == (mention["id"], world.bob.id)
    assert await bridge.count("comments") == 0


async def test_a_mention_of_the_blog_alone_is_not_attached_to_any_post(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    await add_post(bridge)
    tag = {"type": "Mention", "href": bridge.actor(), "name": "@talkabout"}
    mention = note(world.bob, "<p>Hallo @talkabout</p>", in_reply_to=None, tags=[tag])
    await world.send(world.bob, bridge, create(world.bob, mention))
    assert await bridge.count("reactions") == 0
    state, reason = await bridge.last_state()
    assert state == "ignored" and reason is not None and "without replying" in reason


async def test_the_same_text_again_is_held_as_a_duplicate(
    bridge: InboxBridge, world: NoteWorld, clock: FakeClock
) -> None:
    _, article = await add_post(bridge)
    first = note(world.alice, "<p>Sehr guter Artikel!</p>", in_reply_to=article)
    activity = create(world.alice, first)
    await world.send(world.alice, bridge, activity)
    await world.send(world.alice, bridge, activity)  # the very same activity: dropped
    clock.advance(40)
    again = note(world.alice, "<p>Sehr guter Artikel</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, again))
    assert await bridge.count("comments") == 2
    assert (await comment(bridge, first["id"])).state == "published"
    assert (await comment(bridge, again["id"])).state == "duplicate"


async def test_a_blog_that_holds_all_comments_holds_them(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge, "strict")
    reply = note(world.alice, "<p>Hallo</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, reply))
    found = await comment(bridge, reply["id"])
    assert found.state == "held"
    assert "the blog holds all comments" in found.reasons


async def test_a_link_heavy_reply_from_an_unknown_server_is_filed_as_spam(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    links = "".join(f'<a href="http://spam.example/{n}">x</a> ' for n in range(5))
    reply = note(world.mallory, f"<p>Great post {links}</p>", in_reply_to=article)
    await world.send(world.mallory, bridge, create(world.mallory, reply))
    found = await comment(bridge, reply["id"])
    assert found.state == "spam" and found.score >= 1.0


async def test_replies_from_a_limited_domain_are_held_and_blocked_actors_not_stored(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    now = bridge.ctx.clock()
    await bridge.store.block_domain("mastodon.test", "silenced", now, "limit")
    await bridge.store.block_actor(world.bob.id, "troll", now)
    held = note(world.alice, "<p>limitiert</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, held))
    assert (await comment(bridge, held["id"])).state == "held"
    refused = note(world.bob, "<p>blockiert</p>", in_reply_to=article)
    await world.send(world.bob, bridge, create(world.bob, refused))
    assert await bridge.store.get_comment(refused["id"]) is None
    assert (await bridge.last_state())[0] == "ignored"


async def test_threads_refresh_fetches_replies_that_never_reached_the_bridge(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    from bridge.federation.targets import target_of
    from bridge.federation.thread_refresh import refresh_thread

    _, article = await add_post(bridge)
    replies_url = f"{world.alice.id}/statuses/replies-of-a"
    a = note(world.alice, "<p>A</p>", in_reply_to=article, replies=replies_url)
    await world.send(world.alice, bridge, create(world.alice, a))
    b = world.social.publish(note(world.bob, "<p>B an A</p>", in_reply_to=a["id"]))
    world.mastodon.publish(
        {
            "id": replies_url,
            "type": "OrderedCollection",
            "totalItems": 1,
            "orderedItems": [{**b, "content": "<p>gefälscht</p>"}],
        }
    )
    target = await target_of(bridge.ctx, article)
    assert target is not None
    result = await refresh_thread(bridge.ctx, target)
    assert result.stored == [b["id"]]
    found = await comment(bridge, b["id"])
    # The item came from another origin's collection: fetched from its own, not copied.
    assert (found.parent_id, found.content_html) == (a["id"], "<p>B an A</p>")
    assert (await refresh_thread(bridge.ctx, target)).stored == []


async def test_public_addressing_as_a_compact_iri_counts_as_public(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    _, article = await add_post(bridge)
    reply = {**note(world.alice, "<p>as:Public</p>", in_reply_to=article), "to": ["as:Public"]}
    await world.send(world.alice, bridge, create(world.alice, reply))
    assert (await comment(bridge, reply["id"])).state == "published"
    assert PUBLIC not in reply["to"]
