"""What the bridge's pages show of a post's comments and reactions (pure views).

Three kinds of page (templates ``post.html``, ``comment.html``, ``linkback.html``):

- the **post page**: the post's title and link, its comments threaded, its boosts and likes
  with counts and faces, its mentions, and links to its comment feeds;
- one page per **comment** and one per **linkback** (boost, mention, like), marked up with
  microformats2 (``h-entry``, ``p-author h-card``, ``u-in-reply-to`` / ``u-repost-of`` /
  ``u-like-of``, ``dt-published``). They are the sources of the pingbacks and webmentions
  sent to the blog, so their ``<title>`` is the line the blog shows ("Jens Nirschl boosted
  „Ein Plädoyer für die Mitteilung…“"), and the exact URL of the blog post comes first in
  the body: WordPress reads only the first 150 KB of a pingback's source for the link.

Views are frozen dataclasses built here without I/O; names and text are plain and safe,
comment HTML is sanitised again on the way out (so a stricter allow-list reaches old
comments), and every remote name in our own sentences is isolated (U+2068 … U+2069) so a
right-to-left name cannot reorder the sentence around it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from bridge.activitypub.actors import safe_http_url
from bridge.backfeed.sanitize import isolate, plain_line, plain_name, sanitize_html
from bridge.store.roles_backfeed import Comment, Person, Reaction, ReactionKind

__all__ = [
    "MAX_DEPTH",
    "TITLE_LIMIT",
    "CommentView",
    "ItemPage",
    "PersonView",
    "PostPage",
    "ReactionView",
    "comment_page",
    "flatten",
    "item_title",
    "linkback_page",
    "person_view",
    "reaction_view",
    "short_title",
    "thread",
]

TITLE_LIMIT: Final = 35
"""Characters of a post title quoted in a page title: enough to recognise the post in the
blog's list of pingbacks, short enough to leave room for the name."""

MAX_DEPTH: Final = 6
"""Nesting shown on the post page; deeper replies are shown at this depth (as WordPress's
``thread_comments_depth`` does), still naming what they answer."""

Property = Literal["u-in-reply-to", "u-repost-of", "u-like-of", "u-mention-of"]

_VERBS: Final[dict[str, str]] = {
    "comment": "commented on",
    "boost": "boosted",
    "like": "liked",
    "mention": "mentioned",
}
_PROPERTIES: Final[dict[str, Property]] = {
    "comment": "u-in-reply-to",
    "boost": "u-repost-of",
    "like": "u-like-of",
    "mention": "u-mention-of",
}
_TRAILING: Final = " \t:;,.-–—"


@dataclass(frozen=True)
class PersonView:
    """Someone who commented or reacted, as the pages show them."""

    name: str
    handle: str
    profile_url: str
    avatar_url: str | None
    initial: str


@dataclass
class CommentView:
    """A comment in the thread of the post page (``replies`` filled by :func:`thread`)."""

    slug: str
    page_url: str
    object_id: str
    author: PersonView
    content_html: str
    published: datetime
    updated: datetime | None
    original_url: str | None
    depth: int = 0
    parent_page_url: str | None = None
    replies: list[CommentView] = field(default_factory=list)


@dataclass(frozen=True)
class ReactionView:
    """A boost, like or mention on the post page."""

    kind: ReactionKind
    person: PersonView
    page_url: str
    published: datetime
    content_html: str | None
    original_url: str | None


@dataclass(frozen=True)
class PostPage:
    """Everything the post page shows."""

    title: str
    url: str
    """The blog post itself."""
    page_url: str
    object_id: str
    published: datetime
    excerpt: str
    lang: str | None
    blog_name: str
    blog_address: str
    profile_url: str
    comments: tuple[CommentView, ...]
    comment_count: int
    like_count: int
    boost_count: int
    mention_count: int
    likes: tuple[ReactionView, ...]
    boosts: tuple[ReactionView, ...]
    mentions: tuple[ReactionView, ...]
    rss_url: str
    atom_url: str


@dataclass(frozen=True)
class ItemPage:
    """A comment's or linkback's own page."""

    title: str
    """The ``<title>``: who did what to which post."""
    kind: Literal["comment", "boost", "like", "mention"]
    property: Property
    verb: str
    target_url: str
    """The blog post's URL, exactly as the blog knows it (the pingback's target)."""
    post_title: str
    post_page_url: str
    page_url: str
    person: PersonView
    content_html: str | None
    published: datetime
    updated: datetime | None
    original_url: str | None
    parent_url: str | None = None
    """For a nested comment: what it answers (the parent's original URL or its page)."""


def short_title(title: str, limit: int = TITLE_LIMIT) -> str:
    """A post title shortened for a page title, cut at a word with an ellipsis.

    "Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen. …" becomes
    "Ein Plädoyer für die Mitteilung…".
    """
    text = plain_line(title, limit * 10)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(_TRAILING) + "…"


def item_title(kind: str, name: str, post_title: str) -> str:
    """``⁨Jens Nirschl⁩ boosted „Ein Plädoyer für die Mitteilung…“``."""
    if not post_title:
        return f"{isolate(name)} {_VERBS[kind]} a post"
    # The blog's own title is not isolated: the quotation marks already delimit it, and
    # the blog's pingback list shows it as it stands.
    return f"{isolate(name)} {_VERBS[kind]} „{short_title(post_title)}“"


def person_view(person: Person) -> PersonView:
    """What the pages show of an author or reactor (names cleaned again on the way out)."""
    handle = plain_line(person.handle, 200)
    name = plain_name(person.name, handle or person.actor_id)
    return PersonView(
        name=name,
        handle=handle,
        profile_url=_http(person.profile_url) or _http(person.actor_id) or "",
        avatar_url=_http(person.avatar_url),
        initial=name[:1].upper() or "?",
    )


def thread(
    comments: Iterable[Comment],
    post_object_id: str,
    page_of: Callable[[Comment], str],
) -> tuple[CommentView, ...]:
    """Published comments as a thread: top-level comments oldest first, replies under
    their parents. A reply whose parent is not shown (held, deleted) stands at the top."""
    ordered = sorted(comments, key=lambda c: (c.published, c.id))
    views = {c.object_id: _comment_view(c, page_of(c)) for c in ordered}
    roots: list[CommentView] = []
    for comment in ordered:
        view = views[comment.object_id]
        parent = views.get(comment.parent_id or "")
        if comment.parent_id == post_object_id or parent is None or parent is view:
            roots.append(view)
            continue
        view.parent_page_url = parent.page_url
        parent.replies.append(view)
    # Depths are set from the roots down, so a cycle in hostile parent ids (A answers B,
    # B answers A) cannot loop: such comments were placed under each other only once.
    seen: set[str] = set()
    stack = [(view, 0) for view in reversed(roots)]
    while stack:
        view, depth = stack.pop()
        if view.object_id in seen:
            continue
        seen.add(view.object_id)
        view.depth = min(depth, MAX_DEPTH)
        stack.extend((reply, depth + 1) for reply in reversed(view.replies))
    orphans = [views[c.object_id] for c in ordered if c.object_id not in seen]
    for view in orphans:
        view.depth = 0
        roots.append(view)
    return tuple(roots)


def flatten(roots: Sequence[CommentView]) -> list[CommentView]:
    """The thread in reading order (a comment, then its replies), for the template."""
    out: list[CommentView] = []
    seen: set[str] = set()
    stack = list(reversed(roots))
    while stack:
        view = stack.pop()
        if view.object_id in seen:
            continue
        seen.add(view.object_id)
        out.append(view)
        stack.extend(reversed(view.replies))
    return out


def reaction_view(reaction: Reaction, page_url: str) -> ReactionView:
    """A reaction as the post page lists it."""
    return ReactionView(
        kind=reaction.kind,
        person=person_view(reaction.actor),
        page_url=page_url,
        published=reaction.published,
        content_html=sanitize_html(reaction.content_html) if reaction.content_html else None,
        original_url=_http(reaction.url),
    )


def comment_page(
    comment: Comment,
    *,
    target_url: str,
    post_title: str,
    post_page_url: str,
    page_url: str,
    parent_url: str | None,
) -> ItemPage:
    """The page of one comment."""
    person = person_view(comment.author)
    return ItemPage(
        title=item_title("comment", person.name, post_title),
        kind="comment",
        property=_PROPERTIES["comment"],
        verb=_VERBS["comment"],
        target_url=target_url,
        post_title=plain_line(post_title, 500),
        post_page_url=post_page_url,
        page_url=page_url,
        person=person,
        content_html=sanitize_html(comment.content_html),
        published=comment.published,
        updated=comment.updated,
        original_url=_http(comment.url) or _http(comment.object_id),
        parent_url=parent_url,
    )


def linkback_page(
    reaction: Reaction,
    *,
    target_url: str,
    post_title: str,
    post_page_url: str,
    page_url: str,
) -> ItemPage:
    """The page of one boost, like or mention."""
    person = person_view(reaction.actor)
    return ItemPage(
        title=item_title(reaction.kind, person.name, post_title),
        kind=reaction.kind,
        property=_PROPERTIES[reaction.kind],
        verb=_VERBS[reaction.kind],
        target_url=target_url,
        post_title=plain_line(post_title, 500),
        post_page_url=post_page_url,
        page_url=page_url,
        person=person,
        content_html=sanitize_html(reaction.content_html) if reaction.content_html else None,
        published=reaction.published,
        updated=None,
        original_url=_http(reaction.url) or _http(reaction.activity_id),
    )


def _comment_view(comment: Comment, page_url: str) -> CommentView:
    return CommentView(
        slug=comment.slug,
        page_url=page_url,
        object_id=comment.object_id,
        author=person_view(comment.author),
        content_html=sanitize_html(comment.content_html),
        published=comment.published,
        updated=comment.updated,
        original_url=_http(comment.url) or _http(comment.object_id),
    )


def _http(url: str | None) -> str | None:
    return safe_http_url(url)
