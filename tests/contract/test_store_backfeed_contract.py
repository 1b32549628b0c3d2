"""Store contract, backfeed roles: comments, reactions, actor blocks; domain block severity and
first contact with an origin (federation roles extended for the backfeed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.store.base import (
    Blog,
    Comment,
    NewBlog,
    NewComment,
    NewInbound,
    NewReaction,
    Person,
    Reaction,
    Store,
    item_slug,
)
from bridge.store.roles_backfeed import AuthorStanding
from tests.contract.conftest import T0

POST = "https://blog.example/2026/01/hallo-welt/"
OTHER_POST = "https://blog.example/2026/01/zweiter-beitrag/"
ANNA = "https://m.example/users/anna"
BEN = "https://gts.example/users/ben"

# Everything a remote Note can carry that JSON can: the source must come back as it went in.
SOURCE: dict[str, Any] = {
    "id": "https://m.example/users/anna/statuses/1",
    "type": "Note",
    "content": "<p>Schöner Beitrag – „danke“! 👍</p>",
    "contentMap": {"de": "<p>Schöner Beitrag</p>"},
    "tag": [{"type": "Mention", "href": "https://bridge.example/users/talk"}],
    "sensitive": False,
    "attachment": [],
    "summary": None,
    "n": [1, 2.5, -0.0001, 10**15],
    "nested": {"deep": {"deeper": ["x", {"y": True}]}},
}


def person(actor_id: str, **changes: Any) -> Person:
    user = actor_id.rsplit("/", 1)[-1]
    host = actor_id.split("/")[2]
    base = Person(
        actor_id=actor_id,
        name=user.capitalize(),
        handle=f"@{user}@{host}",
        profile_url=f"https://{host}/@{user}",
        avatar_url=f"https://{host}/avatars/{user}.png",
    )
    return replace(base, **changes)


def comment(blog: Blog, n: int, **changes: Any) -> NewComment:
    base = NewComment(
        blog_id=blog.id,
        entry_id=POST,
        object_id=f"{ANNA}/statuses/{n}",
        parent_id=POST,
        author=person(ANNA),
        content_html=f"<p>Kommentar {n}</p>",
        published=T0 + timedelta(minutes=n),
        state="published",
    )
    return replace(base, **changes)


def reaction(blog: Blog, activity_id: str, actor_id: str = ANNA, **changes: Any) -> NewReaction:
    base = NewReaction(
        blog_id=blog.id,
        entry_id=POST,
        kind="like",
        activity_id=activity_id,
        actor=person(actor_id),
        published=T0,
    )
    return replace(base, **changes)


async def blog_pair(store: Store) -> tuple[Blog, Blog]:
    talk = await store.add_blog(NewBlog("talk", "https://blog.example/feed/"), T0)
    other = await store.add_blog(NewBlog("other", "https://other.example/feed/"), T0)
    return talk, other


async def added(store: Store, new: NewComment, now: Any = T0) -> Comment:
    stored = await store.add_comment(new, now)
    assert stored is not None
    return stored


async def reacted(store: Store, new: NewReaction, now: Any = T0) -> Reaction:
    stored = await store.add_reaction(new, now)
    assert stored is not None
    return stored


# -- comments ---------------------------------------------------------------------------


async def test_comment_round_trip(store: Store) -> None:
    talk, _ = await blog_pair(store)
    new = comment(
        talk,
        1,
        summary="Spoiler ⚠",
        url="https://m.example/@anna/1",
        language="de",
        score=0.25,
        reasons=("new-server", "link"),
        state="held",
        source=SOURCE,
    )
    received = T0 + timedelta(hours=1, microseconds=7)
    stored = await added(store, new, received)

    assert stored.slug == item_slug(new.object_id)
    assert stored.received_at == received
    assert (stored.updated, stored.deleted_at) == (None, None)
    assert stored.source == SOURCE
    assert stored.reasons == ("new-server", "link")
    assert stored == Comment(
        id=stored.id,
        slug=stored.slug,
        received_at=received,
        **new.__dict__,
    )
    assert await store.get_comment(new.object_id) == stored
    assert await store.get_comment_by_slug(talk.id, stored.slug) == stored
    assert await store.comment_exists(new.object_id)


async def test_an_added_comment_is_what_the_store_reads_back(store: Store) -> None:
    talk, _ = await blog_pair(store)
    # Times in another zone and a whole-number score come back as the store keeps them.
    berlin = timezone(timedelta(hours=1))
    new = comment(talk, 1, published=T0.astimezone(berlin), score=1, reasons=["link"])
    stored = await added(store, new, (T0 + timedelta(hours=1)).astimezone(berlin))
    read = await store.get_comment(new.object_id)
    assert stored == read
    assert read is not None
    assert (stored.published.utcoffset(), stored.received_at.utcoffset()) == (
        read.published.utcoffset(),
        read.received_at.utcoffset(),
    )
    assert (type(stored.score), type(stored.reasons)) == (float, tuple)


async def test_comment_optional_fields_stay_empty(store: Store) -> None:
    talk, _ = await blog_pair(store)
    new = comment(talk, 1, parent_id=None, author=person(BEN, avatar_url=None), origin="blog")
    stored = await added(store, new)
    again = await store.get_comment(new.object_id)
    assert again == stored
    assert (again.parent_id, again.summary, again.url, again.language) == (None,) * 4
    assert again.author.avatar_url is None and again.origin == "blog"
    assert (again.source, again.reasons, again.score) == ({}, (), 0.0)


async def test_unknown_comments(store: Store) -> None:
    talk, other = await blog_pair(store)
    stored = await added(store, comment(talk, 1))
    assert await store.get_comment("https://m.example/users/anna/statuses/404") is None
    assert not await store.comment_exists("https://m.example/users/anna/statuses/404")
    assert await store.get_comment_by_slug(talk.id, item_slug("nothing")) is None
    # A slug names a comment of one blog only.
    assert await store.get_comment_by_slug(other.id, stored.slug) is None


async def test_duplicate_object_id_is_refused(store: Store) -> None:
    talk, other = await blog_pair(store)
    first = await added(store, comment(talk, 1))
    # Redelivered, or claimed again on another blog or in another state: the first one stays.
    assert await store.add_comment(comment(talk, 1, content_html="<p>anders</p>"), T0) is None
    assert await store.add_comment(comment(other, 1, state="spam"), T0) is None
    await store.delete_comment(first.object_id, T0)
    assert await store.add_comment(comment(talk, 1), T0) is None
    assert await store.count_comments(talk.id, states=["published", "deleted"]) == 1
    assert await store.count_comments(other.id, states=["published", "spam"]) == 0


async def test_edit_comment(store: Store) -> None:
    talk, _ = await blog_pair(store)
    stored = await added(store, comment(talk, 1, summary="alt"))
    later = T0 + timedelta(hours=2)
    new_source = {**SOURCE, "content": "<p>bearbeitet</p>", "updated": "2026-01-01T14:00:00Z"}

    edited = await store.edit_comment(
        stored.object_id, "<p>bearbeitet</p>", None, later, new_source
    )
    assert edited is not None
    assert (edited.content_html, edited.summary, edited.updated) == (
        "<p>bearbeitet</p>",
        None,
        later,
    )
    assert edited.source == new_source
    # What an edit leaves alone.
    assert (
        replace(
            edited,
            content_html=stored.content_html,
            summary="alt",
            updated=None,
            source=stored.source,
        )
        == stored
    )
    assert await store.get_comment(stored.object_id) == edited

    # An Update older than (or as old as) the one applied arrives late: it changes nothing.
    for stale in (later - timedelta(minutes=1), later):
        kept = await store.edit_comment(stored.object_id, "<p>alt</p>", "x", stale, {})
        assert kept == edited
    newer = await store.edit_comment(
        stored.object_id, "<p>neu</p>", None, later + timedelta(microseconds=1), {}
    )
    assert newer is not None and newer.content_html == "<p>neu</p>" and newer.source == {}

    assert await store.edit_comment(f"{ANNA}/statuses/404", "<p>x</p>", None, later, {}) is None


async def test_edit_of_deleted_comment(store: Store) -> None:
    talk, _ = await blog_pair(store)
    stored = await added(store, comment(talk, 1))
    deleted = await store.delete_comment(stored.object_id, T0 + timedelta(hours=1))
    later = T0 + timedelta(hours=2)
    assert await store.edit_comment(stored.object_id, "<p>zurück</p>", None, later, {}) is None
    assert await store.get_comment(stored.object_id) == deleted
    # A deleted comment still holds its id: the same note is not taken again.
    assert await store.comment_exists(stored.object_id)


async def test_set_comment_state(store: Store) -> None:
    talk, _ = await blog_pair(store)
    held = await added(store, comment(talk, 1, state="held", reasons=("first-contact",)))
    approved = await store.set_comment_state(held.object_id, "published", ())
    assert approved == replace(held, state="published", reasons=())
    assert await store.get_comment(held.object_id) == approved

    spam = await store.set_comment_state(held.object_id, "spam", ("links", "new-account"))
    assert spam is not None and spam.reasons == ("links", "new-account")
    # No reasons given: the old ones stay.
    rejected = await store.set_comment_state(held.object_id, "rejected")
    assert rejected is not None
    assert (rejected.state, rejected.reasons) == ("rejected", ("links", "new-account"))

    assert await store.set_comment_state(f"{ANNA}/statuses/404", "published") is None
    with pytest.raises(ValueError, match="delete_comment"):
        await store.set_comment_state(held.object_id, "deleted")
    deleted = await store.delete_comment(held.object_id, T0)
    # A deleted comment cannot be approved back into the thread.
    assert await store.set_comment_state(held.object_id, "published") is None
    assert await store.get_comment(held.object_id) == deleted


async def test_delete_comment(store: Store) -> None:
    talk, _ = await blog_pair(store)
    first = await added(store, comment(talk, 1))
    second = await added(store, comment(talk, 2))
    when = T0 + timedelta(days=1)

    deleted = await store.delete_comment(first.object_id, when)
    assert deleted == replace(first, state="deleted", deleted_at=when)
    assert await store.get_comment(first.object_id) == deleted
    # Its page still resolves, to answer 410.
    assert await store.get_comment_by_slug(talk.id, first.slug) == deleted
    assert await store.delete_comment(first.object_id, when + timedelta(1)) is None
    assert await store.delete_comment(f"{ANNA}/statuses/404", when) is None

    assert await store.count_comments(talk.id) == 1
    assert await store.count_comments(talk.id, entry_id=POST) == 1
    assert await store.list_comments(talk.id) == [second]
    assert await store.list_comments(talk.id, states=["deleted"]) == [deleted]


async def test_delete_comments_by_author(store: Store) -> None:
    talk, other = await blog_pair(store)
    a1 = await added(store, comment(talk, 1))
    a2 = await added(store, comment(other, 2, state="held"))
    a3 = await added(store, comment(talk, 3))
    bens = await added(store, comment(talk, 4, object_id=f"{BEN}/statuses/4", author=person(BEN)))
    gone = await store.delete_comment(a3.object_id, T0)
    when = T0 + timedelta(days=2)

    removed = await store.delete_comments_by_author(ANNA, when)
    assert removed == [
        replace(a1, state="deleted", deleted_at=when),
        replace(a2, state="deleted", deleted_at=when),
    ]
    # The comment deleted before keeps its own time of deletion.
    assert await store.get_comment(a3.object_id) == gone
    assert await store.get_comment(bens.object_id) == bens
    assert await store.delete_comments_by_author(ANNA, when) == []
    assert await store.list_comments(talk.id) == [bens]


async def test_list_and_count_comments(store: Store) -> None:
    talk, other = await blog_pair(store)
    c1 = await added(store, comment(talk, 1))
    c2 = await added(store, comment(talk, 2, entry_id=OTHER_POST, parent_id=OTHER_POST))
    c3 = await added(store, comment(talk, 3, state="held"))
    # Published at the same moment as c1: ties fall back to the order received.
    c4 = await added(store, comment(talk, 4, published=c1.published))
    c5 = await added(store, comment(talk, 5, parent_id=c1.object_id))
    c6 = await added(store, comment(other, 6))

    assert await store.list_comments(talk.id) == [c5, c2, c4, c1]
    assert await store.list_comments(talk.id, newest_first=False) == [c1, c4, c2, c5]
    assert await store.list_comments(talk.id, entry_id=POST) == [c5, c4, c1]
    assert await store.list_comments(talk.id, entry_id=POST, newest_first=False) == [c1, c4, c5]
    assert await store.list_comments(talk.id, states=("held",)) == [c3]
    assert await store.list_comments(talk.id, states={"held", "published"}, limit=2) == [c5, c3]
    assert await store.list_comments(talk.id, limit=2, offset=2) == [c4, c1]
    assert await store.list_comments(talk.id, offset=10) == []
    assert await store.list_comments(talk.id, states=()) == []
    assert await store.list_comments(talk.id, entry_id="https://blog.example/none/") == []
    assert await store.list_comments(other.id) == [c6]

    assert await store.count_comments(talk.id) == 4
    assert await store.count_comments(talk.id, entry_id=POST) == 3
    assert await store.count_comments(talk.id, entry_id=OTHER_POST) == 1
    assert await store.count_comments(talk.id, states=["held", "published"]) == 5
    assert await store.count_comments(talk.id, entry_id=POST, states=["spam"]) == 0
    assert await store.count_comments(talk.id, states=[]) == 0
    assert await store.count_comments(other.id) == 1


async def test_comments_by_author_since(store: Store) -> None:
    talk, other = await blog_pair(store)
    early = await added(store, comment(talk, 1), T0)
    spam = await added(store, comment(other, 2, state="spam"), T0 + timedelta(minutes=5))
    later = await added(store, comment(talk, 3, state="held"), T0 + timedelta(minutes=10))
    await added(store, comment(talk, 4, object_id=f"{BEN}/s/4", author=person(BEN)), T0)
    gone = await store.delete_comment(later.object_id, T0 + timedelta(minutes=11))

    # Any state, any blog, in the order received; ``since`` itself counts.
    assert await store.comments_by_author_since(ANNA, T0) == [early, spam, gone]
    assert await store.comments_by_author_since(ANNA, T0 + timedelta(minutes=5)) == [spam, gone]
    assert await store.comments_by_author_since(ANNA, T0 + timedelta(hours=1)) == []
    assert await store.comments_by_author_since("https://x.example/u/nobody", T0) == []


async def test_author_standing(store: Store) -> None:
    talk, other = await blog_pair(store)
    window = (T0 - timedelta(hours=1), T0 + timedelta(hours=1))

    def standing(text_hash: str | None, since: Any = T0, blog: Any = talk) -> Any:
        return store.author_standing(
            ANNA,
            blog.id,
            POST,
            text_hash,
            since,
            *window,
            host="m.example",
            origin="m.example",
            origin_before=T0,
        )

    nobody = await standing("h1")
    assert nobody == AuthorStanding(False, False, 0, False, (), None, False)

    first = await added(store, comment(talk, 1, text_hash="h1"), T0)
    await added(
        store,
        comment(other, 2, state="spam", text_hash="h2", entry_id=OTHER_POST),
        T0 + timedelta(minutes=5),
    )
    await added(store, comment(talk, 3, text_hash="h1", entry_id=OTHER_POST), T0)
    await added(store, comment(talk, 4, author=person(BEN), object_id=f"{BEN}/s/4"), T0)
    late = T0 + timedelta(hours=2)
    await added(store, comment(talk, 5, state="held", text_hash="h5"), late)

    found = await standing("h1")
    assert (found.blocked, found.published_before, found.duplicate) == (False, True, True)
    # Every state and blog counts for the rate; ``since`` itself counts.
    assert found.recent_count == 4  # T0, T0, T0 + 5 minutes, late
    assert found.unhashed == ()
    since_later = await standing("h1", since=T0 + timedelta(minutes=1))
    assert since_later.recent_count == 2  # T0 + 5 minutes, late
    # Another text, another post's text, one outside the window, none: no duplicate.
    assert not (await standing("h2")).duplicate
    assert not (await standing("h5")).duplicate
    assert not (await standing(None)).duplicate
    assert not (await standing("h1", blog=other)).published_before

    # A deleted comment is no duplicate any more.
    await store.delete_comment(first.object_id, T0 + timedelta(minutes=30))
    assert not (await standing("h1")).duplicate

    # Comments stored without a hash come back as text, for the caller to compare.
    await added(store, comment(talk, 6, content_html="<p>alt</p>"), T0 + timedelta(minutes=1))
    assert (await standing("h1")).unhashed == ("<p>alt</p>",)

    # An edit replaces the hash; a block shows.
    await store.edit_comment(
        comment(talk, 6).object_id, "<p>neu</p>", None, T0 + timedelta(minutes=2), {}, "h6"
    )
    assert (await standing("h6")).duplicate
    assert (await standing("h1")).unhashed == ()
    await store.block_actor(ANNA, "spam", T0)
    assert (await standing("h1")).blocked


async def test_author_has_published(store: Store) -> None:
    talk, other = await blog_pair(store)
    held = await added(store, comment(talk, 1, state="held"))
    assert not await store.author_has_published(talk.id, ANNA)
    await store.set_comment_state(held.object_id, "published")
    assert await store.author_has_published(talk.id, ANNA)
    # Known on one blog is not known on another.
    assert not await store.author_has_published(other.id, ANNA)
    assert not await store.author_has_published(talk.id, BEN)
    await store.delete_comment(held.object_id, T0)
    assert not await store.author_has_published(talk.id, ANNA)


async def test_removing_a_blog_removes_its_comments_and_reactions(store: Store) -> None:
    talk, other = await blog_pair(store)
    c = await added(store, comment(talk, 1))
    r = await reacted(store, reaction(talk, f"{ANNA}#likes/1"))
    kept = await added(store, comment(other, 2))
    await store.remove_blog("talk")
    assert await store.get_comment(c.object_id) is None
    assert await store.get_reaction(r.activity_id) is None
    assert await store.get_comment(kept.object_id) == kept


# -- reactions --------------------------------------------------------------------------


async def test_reaction_round_trip(store: Store) -> None:
    talk, other = await blog_pair(store)
    new = reaction(
        talk,
        "https://m.example/users/anna/statuses/9",
        kind="mention",
        content_html="<p>Lest das: <a href='https://blog.example/'>Beitrag</a> ✨</p>",
        url="https://m.example/@anna/9",
        published=T0 - timedelta(minutes=3),
    )
    received = T0 + timedelta(seconds=1, microseconds=3)
    stored = await reacted(store, new, received)
    assert stored == Reaction(
        id=stored.id,
        slug=item_slug(new.activity_id),
        received_at=received,
        withdrawn_at=None,
        **new.__dict__,
    )
    assert await store.get_reaction(new.activity_id) == stored
    assert await store.get_reaction_by_slug(talk.id, stored.slug) == stored
    assert await store.get_reaction_by_slug(other.id, stored.slug) is None
    assert await store.get_reaction("https://m.example/likes/404") is None

    plain = await reacted(store, reaction(talk, f"{BEN}#likes/1", BEN, actor=person(BEN)))
    assert (plain.content_html, plain.url) == (None, None)


async def test_a_like_counts_once(store: Store) -> None:
    talk, other = await blog_pair(store)
    like = await reacted(store, reaction(talk, f"{ANNA}#likes/1"))
    # The same activity again, or a second Like of the same post by the same actor.
    assert await store.add_reaction(reaction(talk, f"{ANNA}#likes/1"), T0) is None
    assert await store.add_reaction(reaction(talk, f"{ANNA}#likes/2"), T0) is None
    # The same activity id claimed for another post or kind is still the same activity.
    dup = reaction(other, f"{ANNA}#likes/1", entry_id=OTHER_POST, kind="boost")
    assert await store.add_reaction(dup, T0) is None

    # A boost, a like of another post, a like on another blog, another actor's like: all count.
    await reacted(store, reaction(talk, f"{ANNA}/statuses/1/activity", kind="boost"))
    await reacted(store, reaction(talk, f"{ANNA}#likes/3", entry_id=OTHER_POST))
    await reacted(store, reaction(other, f"{ANNA}#likes/4"))
    await reacted(store, reaction(talk, f"{BEN}#likes/1", BEN))
    # Mentions are posts of their own: one actor may mention a post many times.
    await reacted(store, reaction(talk, f"{ANNA}/statuses/7", kind="mention"))
    await reacted(store, reaction(talk, f"{ANNA}/statuses/8", kind="mention"))

    assert await store.count_reactions(talk.id, POST, "like") == 2
    assert await store.count_reactions(talk.id, POST, "boost") == 1
    assert await store.count_reactions(talk.id, POST, "mention") == 2
    assert await store.count_reactions(talk.id, OTHER_POST, "like") == 1
    assert await store.count_reactions(other.id, POST, "like") == 1
    assert (await store.list_reactions(talk.id, POST, "like"))[0] == like


async def test_withdraw_reaction(store: Store) -> None:
    talk, _ = await blog_pair(store)
    like = await reacted(store, reaction(talk, f"{ANNA}#likes/1"))
    when = T0 + timedelta(hours=1)

    # Only the actor who liked can take the like back; nothing changes otherwise.
    assert await store.withdraw_reaction(like.activity_id, BEN, when) is None
    assert await store.get_reaction(like.activity_id) == like
    assert await store.withdraw_reaction(f"{ANNA}#likes/404", ANNA, when) is None

    withdrawn = await store.withdraw_reaction(like.activity_id, ANNA, when)
    assert withdrawn == replace(like, withdrawn_at=when)
    assert await store.get_reaction(like.activity_id) == withdrawn
    assert await store.get_reaction_by_slug(talk.id, like.slug) == withdrawn
    assert await store.withdraw_reaction(like.activity_id, ANNA, when + timedelta(1)) is None
    assert await store.count_reactions(talk.id, POST, "like") == 0
    assert await store.list_reactions(talk.id, POST, "like") == []

    # Liked again after the Undo: a new like that counts.
    again = await reacted(store, reaction(talk, f"{ANNA}#likes/2"), when + timedelta(1))
    assert await store.list_reactions(talk.id, POST, "like") == [again]
    assert await store.add_reaction(reaction(talk, f"{ANNA}#likes/3"), when) is None
    assert await store.get_reaction(like.activity_id) == withdrawn


async def test_withdraw_reactions_by_actor(store: Store) -> None:
    talk, other = await blog_pair(store)
    like = await reacted(store, reaction(talk, f"{ANNA}#likes/1"))
    boost = await reacted(store, reaction(other, f"{ANNA}/s/1/activity", kind="boost"))
    mention = await reacted(store, reaction(talk, f"{ANNA}/s/2", kind="mention"))
    bens = await reacted(store, reaction(talk, f"{BEN}#likes/1", BEN))
    old = await store.withdraw_reaction(mention.activity_id, ANNA, T0)
    when = T0 + timedelta(days=1)

    assert await store.withdraw_reactions_by_actor(ANNA, when) == [
        replace(like, withdrawn_at=when),
        replace(boost, withdrawn_at=when),
    ]
    assert await store.get_reaction(mention.activity_id) == old
    assert await store.get_reaction(bens.activity_id) == bens
    assert await store.withdraw_reactions_by_actor(ANNA, when) == []
    assert await store.list_reactions(talk.id, POST, "like") == [bens]


async def test_list_reactions_oldest_first(store: Store) -> None:
    talk, _ = await blog_pair(store)
    actors = [f"https://m.example/users/u{n}" for n in range(5)]
    times = [3, 1, 4, 1, 5]
    likes = [
        await reacted(store, reaction(talk, f"{a}#like", a, published=T0 + timedelta(minutes=t)))
        for a, t in zip(actors, times, strict=True)
    ]
    await reacted(store, reaction(talk, f"{ANNA}/boost", kind="boost"))
    order = [likes[1], likes[3], likes[0], likes[2], likes[4]]
    assert await store.list_reactions(talk.id, POST, "like") == order
    assert await store.list_reactions(talk.id, POST, "like", limit=2) == order[:2]
    assert await store.list_reactions(talk.id, POST, "like", limit=2, offset=3) == order[3:]
    assert await store.list_reactions(talk.id, OTHER_POST, "like") == []
    assert [r.kind for r in await store.list_reactions(talk.id, POST, "boost")] == ["boost"]


# -- actor blocks -----------------------------------------------------------------------


async def test_actor_blocks(store: Store) -> None:
    assert await store.list_actor_blocks() == []
    assert not await store.is_actor_blocked(BEN)
    await store.block_actor(BEN, "Beleidigungen", T0)
    await store.block_actor(ANNA, None, T0 + timedelta(1))
    # Blocking again replaces the reason and keeps when the block began.
    await store.block_actor(BEN, "Spam", T0 + timedelta(2))

    blocks = await store.list_actor_blocks()
    assert [(b.actor_id, b.reason, b.created_at) for b in blocks] == [
        (BEN, "Spam", T0),
        (ANNA, None, T0 + timedelta(1)),
    ]
    assert await store.is_actor_blocked(BEN)
    # Actor ids are URLs and compared exactly.
    assert not await store.is_actor_blocked(BEN.upper())
    assert not await store.is_actor_blocked(f"{BEN}/")
    assert await store.unblock_actor(BEN)
    assert not await store.unblock_actor(BEN)
    assert not await store.is_actor_blocked(BEN)
    assert [b.actor_id for b in await store.list_actor_blocks()] == [ANNA]


# -- domain block severity, first contact ---------------------------------------------------


@pytest.mark.parametrize(
    ("host", "severity"),
    [
        ("example", None),
        ("bad.example", "block"),
        ("sub.bad.example", "block"),
        ("BAD.example:443", "block"),
        ("soft.example", "limit"),
        ("a.soft.example", "limit"),
        # The most specific rule wins: a limited host under a blocked domain is only limited.
        ("ok.bad.example", "limit"),
        ("x.ok.bad.example", "limit"),
        ("notbad.example", None),
    ],
)
async def test_domain_block_severity(store: Store, host: str, severity: str | None) -> None:
    await store.block_domain("bad.example", "Hetze", T0)
    await store.block_domain("soft.example", None, T0, severity="limit")
    await store.block_domain("ok.bad.example", "Ausnahme", T0, severity="limit")
    assert await store.domain_block_severity(host) == severity
    assert await store.is_domain_blocked(host) is (severity == "block")
    # Moderation asks the same with the author's standing, in one query.
    standing = await server_standing(store, host=host)
    assert standing.domain_severity == severity


async def test_domain_block_severity_changes(store: Store) -> None:
    await store.block_domain("spam.example", "erst", T0)
    await store.block_domain("Spam.Example.", "dann", T0 + timedelta(1), severity="limit")
    blocks = await store.list_domain_blocks()
    assert [(b.domain, b.reason, b.severity, b.created_at) for b in blocks] == [
        ("spam.example", "dann", "limit", T0)
    ]
    assert not await store.is_domain_blocked("spam.example")
    await store.block_domain("spam.example", "wieder", T0)
    assert (await store.list_domain_blocks())[0].severity == "block"
    assert await store.is_domain_blocked("spam.example")
    assert await store.unblock_domain("spam.example")
    assert await store.domain_block_severity("spam.example") is None


async def test_origin_seen_before(store: Store) -> None:
    like = {"id": "https://m.example/likes/1", "type": "Like"}
    assert not await store.origin_seen_before("m.example", T0)
    await store.record_inbound(NewInbound("m.example", like["id"], ANNA, "Like", like), T0)

    assert not await store.origin_seen_before("m.example", T0)
    assert await store.origin_seen_before("m.example", T0 + timedelta(microseconds=1))
    assert await store.origin_seen_before("m.example", T0 + timedelta(days=30))
    assert not await store.origin_seen_before("gts.example", T0 + timedelta(days=30))
    assert not await store.origin_seen_before("example", T0 + timedelta(days=30))
    # Moderation asks the same with the author's standing, in one query.
    for origin, before, known in [
        ("m.example", T0, False),
        ("m.example", T0 + timedelta(microseconds=1), True),
        ("gts.example", T0 + timedelta(days=30), False),
    ]:
        standing = await server_standing(store, origin=origin, origin_before=before)
        assert standing.origin_known is known, (origin, before)


async def server_standing(
    store: Store,
    host: str = "m.example",
    origin: str = "m.example",
    origin_before: datetime = T0,
) -> AuthorStanding:
    """``author_standing`` of an author without comments, for its server's answers."""
    window = (T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    return await store.author_standing(
        ANNA,
        0,
        POST,
        None,
        T0,
        *window,
        host=host,
        origin=origin,
        origin_before=origin_before,
    )
