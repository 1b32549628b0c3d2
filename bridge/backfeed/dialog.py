"""The dialog, read from the blog: its own comments, matched to the fediverse threads.

A ``dialog`` job polls one blog's comments on its newest posts (:data:`POSTS_PER_POLL`):

* through the WordPress REST API where the blog has ``wordpress_url`` (``GET
  /wp-json/wp/v2/comments?post=ID&orderby=date``, every page, with the application password
  when one is configured; the post id comes from the entry's ``?p=ID`` guid);
* else through the post's comment feed (``wfw:commentRss`` or the Atom replies link, kept
  as the entry's ``comments_feed``), with conditional GET: the ``ETag``/``Last-Modified`` it
  answered are kept per post (:class:`~bridge.store.roles_dialog.DialogSourceStore`) and sent
  back; a 304 means the post's comments are unchanged, so nothing is parsed or reconciled.

Each comment the blog shows is then matched (:func:`reconcile`):

* one the bridge itself put there (its WordPress meta names a fediverse comment, the
  WordPress sink recorded its id, or its author URL is the remote actor's and its text is
  the comment's) is never echoed back; it is the fediverse comment a blog answer may name;
* a new one is federated (:mod:`bridge.federation.dialog_out`): as a reply to the
  fediverse comment it answers (a WordPress ``parent``, an Atom ``thr:in-reply-to``, or a
  link to that comment's page on the bridge), else as a reply to the article;
* a changed one is federated as an ``Update``; one that is gone from the blog as a
  ``Delete``. A complete listing (the REST API) proves a comment gone; a comment feed only
  shows the newest comments, so there only comments newer than its oldest one count as gone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bridge.backfeed.blog_comments import (
    BlogComment,
    parse_comment_feed,
    parse_rest_comments,
    wordpress_comment_id,
)
from bridge.backfeed.sanitize import html_to_text
from bridge.context import BridgeContext
from bridge.errors import (
    FeedParseError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    Rejected,
    RetryLater,
)
from bridge.federation import dialog_out
from bridge.ingest.fetch import fetch_feed
from bridge.store.base import Blog, Comment, Job, NewJob, StoredEntry

log = logging.getLogger(__name__)

DIALOG = "dialog"
"""Job kind: read one blog's own comments and federate its answers (payload ``blog_id``)."""

POSTS_PER_POLL = 20
PER_PAGE = 100
MAX_PAGES = 20
_NEVER = datetime.min.replace(tzinfo=UTC)
_POST_ID = re.compile(r"[?&]p=(\d+)(?:&|$)")


def dialog_job(blog_id: int, now: datetime) -> NewJob:
    """The dialog poll of one blog, at most one per blog and minute."""
    minute = now.strftime("%Y%m%dT%H%M")
    return NewJob(DIALOG, {"blog_id": blog_id}, dedupe_key=f"{DIALOG}:{blog_id}:{minute}")


@dataclass
class DialogReport:
    """What one dialog poll did."""

    posts: int = 0
    published: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    own: int = 0


async def run_dialog(ctx: BridgeContext, job: Job) -> int | None:
    """The ``dialog`` job handler: poll one blog's comments (see the module docstring)."""
    blog_id = job.payload.get("blog_id")
    if not isinstance(blog_id, int):
        raise Rejected("a dialog job needs blog_id")
    blog = await ctx.store.get_blog_by_id(blog_id)
    if blog is None:
        raise Rejected(f"blog {blog_id} no longer exists")
    try:
        await poll_dialog(ctx, blog)
    except (FetchError, HTTPStatusError) as exc:
        raise RetryLater(str(exc), getattr(exc, "status", None)) from exc
    return None


async def poll_dialog(
    ctx: BridgeContext, blog: Blog, *, posts: int = POSTS_PER_POLL
) -> DialogReport:
    """Read the comments of the blog's newest ``posts`` posts and reconcile each post's."""
    report = DialogReport()
    for stored in await ctx.store.list_entries(blog.id, posts):
        listing = await read_comments(ctx, blog, stored)
        if listing is None:
            continue
        report.posts += 1
        await reconcile(ctx, blog, stored, listing, report)
        if listing.source is not None:
            # Only once reconciled: a poll that failed half-way must read the feed again,
            # not be told 304 about comments it never federated.
            source = listing.source
            await ctx.store.put_dialog_source(
                blog.id,
                stored.entry_id,
                source.url,
                etag=source.etag,
                last_modified=source.last_modified,
                now=ctx.clock(),
            )
    return report


@dataclass(frozen=True)
class Validators:
    """What a comment feed answered to come back with (``If-None-Match``/``-Modified-Since``)."""

    url: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class Listing:
    """A post's comments as the blog listed them; ``complete`` when it listed all;
    ``source`` the comment feed's validators, to store once the listing is reconciled."""

    comments: tuple[BlogComment, ...]
    complete: bool
    source: Validators | None = None


async def read_comments(ctx: BridgeContext, blog: Blog, stored: StoredEntry) -> Listing | None:
    """The post's comments from the REST API or its comment feed; None when it has neither,
    or when the comment feed answered 304 to the validators it gave last (nothing changed)."""
    settings = blog.settings
    post_id = wordpress_post_id(stored)
    if settings.wordpress_url and post_id:
        return Listing(await _rest_comments(ctx, blog, post_id), complete=True)
    feed = stored.entry.comments_feed
    if not feed:
        return None
    known = await ctx.store.get_dialog_source(blog.id, stored.entry_id)
    # Validators belong to the URL that gave them: a post whose comment feed moved starts afresh.
    same = known is not None and known.url == feed
    fetched = await fetch_feed(
        ctx.http,
        feed,
        etag=known.etag if known is not None and same else None,
        last_modified=known.last_modified if known is not None and same else None,
        max_bytes=ctx.config.limits.max_feed_bytes,
        timeout=ctx.config.limits.fetch_timeout,
        user_agent=ctx.config.user_agent,
    )
    if fetched.status == 304:
        return None
    comments = await asyncio.to_thread(parse_comment_feed, fetched.body, url=fetched.url)
    return Listing(
        comments, complete=False, source=Validators(feed, fetched.etag, fetched.last_modified)
    )


def wordpress_post_id(stored: StoredEntry) -> str | None:
    """The WordPress post id an entry's guid or link names (``?p=1234``)."""
    for ref in (stored.entry_id, stored.entry.link or ""):
        found = _POST_ID.search(ref)
        if found:
            return found.group(1)
    return None


async def _rest_comments(ctx: BridgeContext, blog: Blog, post_id: str) -> tuple[BlogComment, ...]:
    base = (blog.settings.wordpress_url or "").rstrip("/")
    url = f"{base}/wp-json/wp/v2/comments"
    headers = {"Accept": "application/json", "User-Agent": ctx.config.user_agent}
    authorization = _basic_auth(blog)
    if authorization:
        headers["Authorization"] = authorization
    found: list[BlogComment] = []
    for page in range(1, MAX_PAGES + 1):
        params = {
            "post": post_id,
            "orderby": "date",
            "order": "asc",
            "per_page": str(PER_PAGE),
            "page": str(page),
        }
        if authorization:
            params["context"] = "edit"  # status and meta are shown to the authorised only
        data, pages = await _get_json(ctx, url, params, headers)
        found.extend(parse_rest_comments(data, base_url=base + "/"))
        if page >= pages:
            break
    return tuple(found)


def _basic_auth(blog: Blog) -> str | None:
    user, env = blog.settings.wordpress_user, blog.settings.wordpress_password_env
    if not user or not env:
        return None
    password = os.environ.get(env)
    if not password:
        raise Rejected(f"environment variable {env} (the WordPress application password) is unset")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


async def _get_json(
    ctx: BridgeContext, url: str, params: dict[str, str], headers: dict[str, str]
) -> tuple[Any, int]:
    limits = ctx.config.limits
    try:
        async with ctx.http.get(
            url,
            params=params,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=limits.fetch_timeout),
        ) as response:
            if response.status in (401, 403):
                raise Rejected(f"WordPress refused the comments of {url}", response.status)
            if response.status >= 400 or response.status < 200:
                raise HTTPStatusError(response.status, url)
            body = await response.content.read(limits.max_feed_bytes + 1)
            if len(body) > limits.max_feed_bytes:
                raise FeedParseError(f"WordPress comments answer over the size cap: {url}")
            pages = response.headers.get("X-WP-TotalPages", "1")
    except TimeoutError as exc:
        raise FetchTimeout(f"timed out reading {url}") from exc
    except aiohttp.ClientError as exc:
        raise FetchError(f"{url}: {exc}") from exc
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise FeedParseError(f"WordPress comments answer is no JSON: {url}") from exc
    return data, int(pages) if pages.isdigit() else 1


@dataclass
class _Known:
    """What the bridge knows of one post's thread, for matching the blog's comments."""

    fediverse: list[Comment]
    by_remote_id: dict[str, Comment]
    ours: dict[str, Comment]


async def _known(ctx: BridgeContext, blog: Blog, stored: StoredEntry) -> _Known:
    comments = await ctx.store.list_comments(
        blog.id,
        entry_id=stored.entry_id,
        states=("published", "held", "duplicate", "spam", "deleted"),
        limit=10_000,
        newest_first=False,
    )
    fediverse = [c for c in comments if c.origin == "fediverse"]
    by_remote_id: dict[str, Comment] = {}
    for comment in fediverse:
        item = await ctx.store.get_sink_item(blog.id, "comment", comment.object_id, "wordpress")
        if item is not None and item.remote_id:
            by_remote_id[item.remote_id] = comment
    ours = {
        key: c
        for c in comments
        if c.origin == "blog" and c.state != "deleted" and (key := dialog_out.blog_comment_id(c))
    }
    return _Known(fediverse, by_remote_id, ours)


async def pushed_by_us(ctx: BridgeContext, known: _Known, comment: BlogComment) -> Comment | None:
    """The fediverse comment a blog comment stands for when the bridge put it there."""
    for value in comment.meta:
        found = await ctx.store.get_comment(value)
        if found is not None and found.origin == "fediverse":
            return found
    pushed = known.by_remote_id.get(comment.id) or known.by_remote_id.get(
        wordpress_comment_id(comment.id) or ""
    )
    if pushed is not None:
        return pushed
    text = html_to_text(comment.content_html)
    for candidate in known.fediverse:
        names = {candidate.author.actor_id, candidate.author.profile_url}
        if comment.author_url in names and html_to_text(candidate.content_html) == text:
            return candidate
    return None


async def reconcile(
    ctx: BridgeContext,
    blog: Blog,
    stored: StoredEntry,
    listing: Listing,
    report: DialogReport | None = None,
) -> DialogReport:
    """Federate what is new, changed or gone among one post's blog comments."""
    report = report or DialogReport()
    known = await _known(ctx, blog, stored)
    visible = [c for c in listing.comments if c.is_visible]
    by_id = {c.id: c for c in visible}
    stands_for: dict[str, Comment] = {}
    for comment in _oldest_first(visible):
        own = await pushed_by_us(ctx, known, comment)
        if own is not None:
            stands_for[comment.id] = own
            report.own += 1
            continue
        existing = known.ours.get(comment.id)
        if existing is not None:
            if await dialog_out.update_blog_comment(ctx, blog, stored, existing, comment):
                report.updated.append(comment.id)
            continue
        parent = await _answered(ctx, blog, stored, comment, by_id, stands_for, known)
        saved = await dialog_out.publish_blog_comment(ctx, blog, stored, comment, parent)
        if saved is not None:
            known.ours[comment.id] = saved
            report.published.append(comment.id)
    await _withdraw_gone(ctx, blog, stored, listing, known, report)
    return report


async def _answered(
    ctx: BridgeContext,
    blog: Blog,
    stored: StoredEntry,
    comment: BlogComment,
    by_id: dict[str, BlogComment],
    stands_for: dict[str, Comment],
    known: _Known,
) -> Comment | None:
    """The stored comment a blog comment answers: named by its parent, else linked."""
    parent = comment.parent
    if parent is not None:
        if parent in stands_for:
            return stands_for[parent]
        if parent in known.ours:
            return known.ours[parent]
        remote = known.by_remote_id.get(parent) or known.by_remote_id.get(
            wordpress_comment_id(parent) or ""
        )
        if remote is not None:
            return remote
        if parent in by_id:
            return None  # a comment the bridge does not carry (held, or not yet federated)
    pages = ctx.urls.article(blog.handle, stored.slug) + "/comments/"
    for link in comment.links:
        if link.startswith(pages):
            slug = link.removeprefix(pages).split("?", 1)[0].split("#", 1)[0].strip("/")
            found = await ctx.store.get_comment_by_slug(blog.id, slug)
            if found is not None and found.entry_id == stored.entry_id:
                return found
    return None


async def _withdraw_gone(
    ctx: BridgeContext,
    blog: Blog,
    stored: StoredEntry,
    listing: Listing,
    known: _Known,
    report: DialogReport,
) -> None:
    listed = {c.id for c in listing.comments if c.is_visible}
    oldest = _oldest(listing.comments)
    for blog_id, existing in list(known.ours.items()):
        if blog_id in listed:
            continue
        if not listing.complete and (oldest is None or existing.published < oldest):
            continue  # older than the feed's window: it may just have scrolled out
        if await dialog_out.withdraw_blog_comment(ctx, blog, stored, existing):
            report.deleted.append(blog_id)


def _oldest(comments: Iterable[BlogComment]) -> datetime | None:
    dates = [c.published for c in comments if c.published is not None]
    return min(dates) if dates else None


def _oldest_first(comments: Sequence[BlogComment]) -> list[BlogComment]:
    # Parents before their answers: an answer can only name a parent already federated.
    return sorted(comments, key=lambda c: (c.published is None, c.published or _NEVER, c.id))
