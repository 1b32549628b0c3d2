"""The HTML face of the bridge: the front page, each blog's profile page, error pages.

Templates are Jinja2 with autoescaping on (feed titles and descriptions are hostile input);
views are plain dataclasses built by pure functions, so templates never touch the store.
Pages send a strict Content-Security-Policy: no scripts at all, styles from our own origin.
"""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bridge.activitypub.actors import display_name, link_label, safe_http_url
from bridge.activitypub.excerpts import excerpt
from bridge.activitypub.urls import Urls
from bridge.activitypub.webfinger import resolve_resource
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.errors import MalformedResource
from bridge.store.base import Blog, StoredEntry

routes = web.RouteTableDef()

STATIC_DIR = Path(__file__).resolve().parent / "static"
EXCERPT_CHARS = 280
UNTITLED = "Untitled post"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src http: https: data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")


@dataclass(frozen=True)
class PostView:
    """One post as the profile page lists it."""

    title: str
    url: str
    published: datetime
    excerpt: str
    lang: str | None
    page_url: str
    """The post's page on the bridge (its comments, boosts and likes)."""


@dataclass(frozen=True)
class BlogView:
    """A blog as its pages show it."""

    handle: str
    name: str
    address: str
    profile_url: str
    actor_url: str
    avatar: str | None
    paragraphs: tuple[str, ...]
    home_url: str | None
    home_label: str | None
    feed_url: str | None
    lang: str | None
    post_count: int
    follower_count: int
    comments_rss: str
    comments_atom: str


def language_tag(value: str | None) -> str | None:
    """``value`` if it looks like a BCP 47 tag (for a ``lang`` attribute), else ``None``."""
    if value and _LANGUAGE_TAG.match(value.strip()):
        return value.strip()
    return None


def blog_view(
    blog: Blog, domain: str, urls: Urls, *, post_count: int, follower_count: int
) -> BlogView:
    """What the pages show of a blog."""
    described = blog.settings.summary or blog.meta.description or ""
    home = safe_http_url(blog.meta.home_url)
    return BlogView(
        handle=blog.handle,
        name=display_name(blog),
        address=f"@{blog.handle}@{domain}",
        profile_url=urls.profile(blog.handle),
        actor_url=urls.actor(blog.handle),
        avatar=safe_http_url(blog.meta.icon_url),
        paragraphs=tuple(
            " ".join(part.split()) for part in described.replace("\r\n", "\n").split("\n\n")
        )
        if described.strip()
        else (),
        home_url=home,
        home_label=link_label(home) if home else None,
        feed_url=safe_http_url(blog.feed_url),
        lang=language_tag(blog.meta.language),
        post_count=post_count,
        follower_count=follower_count,
        comments_rss=urls.blog_comments_feed(blog.handle, "rss"),
        comments_atom=urls.blog_comments_feed(blog.handle, "atom"),
    )


def post_view(blog: Blog, stored: StoredEntry, urls: Urls) -> PostView:
    """What the profile page shows of a post; the link goes to the blog itself."""
    entry = stored.entry
    body = entry.summary_html or entry.content_html or ""
    text = excerpt(body, EXCERPT_CHARS) if body else ""
    title = " ".join((entry.title or "").split())
    return PostView(
        title=title or UNTITLED,
        url=safe_http_url(entry.link) or urls.article(blog.handle, stored.slug),
        published=stored.sort_time,
        excerpt=text,
        lang=language_tag(entry.language) or language_tag(blog.meta.language),
        page_url=urls.post_page(blog.handle, stored.slug),
    )


def _long_date(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment (built once; templates are read on first use)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bridge.web", "templates"),
        autoescape=True,
        auto_reload=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["long_date"] = _long_date
    return env


async def render(template: str, *, status: int = 200, **values: Any) -> web.Response:
    """Render a template into an HTML response with the security headers."""
    # Loading reads the file the first time (later calls hit Jinja's cache): off the loop.
    compiled = await asyncio.to_thread(environment().get_template, template)
    return web.Response(
        text=compiled.render(**values),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


async def error_page(status: int, title: str, message: str, *, domain: str) -> web.Response:
    """An error page (404, 410, 400) in the site's layout."""
    return await render("error.html", status=status, title=title, message=message, domain=domain)


async def profile_page(ctx: BridgeContext, blog: Blog, page: int) -> web.Response:
    """The profile page: who the blog is, how to follow it, its posts (paged, newest first)."""
    size = ctx.config.limits.page_size
    post_count = await ctx.store.count_entries(blog.id)
    last = max(1, -(-post_count // size))
    if page > last:
        return await error_page(
            404, "Not found", f"{display_name(blog)} has {last} page(s).", domain=ctx.config.domain
        )
    entries = await ctx.store.list_entries(blog.id, size, (page - 1) * size)
    view = blog_view(
        blog,
        ctx.config.domain,
        ctx.urls,
        post_count=post_count,
        follower_count=await ctx.store.count_followers(blog.id),
    )
    profile = ctx.urls.profile(blog.handle)
    return await render(
        "profile.html",
        domain=ctx.config.domain,
        blog=view,
        posts=[post_view(blog, stored, ctx.urls) for stored in entries],
        page=page,
        newer_url=(f"{profile}?page={page - 1}" if page > 2 else profile) if page > 1 else None,
        older_url=f"{profile}?page={page + 1}" if page < last else None,
    )


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    """The front page: every bridged blog."""
    ctx = request.app[CONTEXT]
    views = []
    for blog in await ctx.store.list_blogs():
        views.append(
            blog_view(
                blog,
                ctx.config.domain,
                ctx.urls,
                post_count=await ctx.store.count_entries(blog.id),
                follower_count=await ctx.store.count_followers(blog.id),
            )
        )
    return await render("index.html", domain=ctx.config.domain, blogs=views)


@routes.get("/authorize_interaction")
async def authorize_interaction(request: web.Request) -> web.Response:
    """Where WebFinger's subscribe template lands.

    Accounts here are feeds and cannot follow or answer anyone, so the page can only show
    what the bridge itself holds: one of our accounts or posts is shown, anything else is
    explained.
    """
    ctx = request.app[CONTEXT]
    uri = request.query.get("uri", "").strip()
    if not uri:
        return await error_page(
            400, "Bad request", "The uri parameter is missing.", domain=ctx.config.domain
        )
    if uri.startswith(f"{ctx.urls.base}/users/"):
        raise web.HTTPFound(uri)
    try:
        target = resolve_resource(uri, domain=ctx.config.domain, urls=ctx.urls)
    except MalformedResource as exc:
        return await error_page(400, "Bad request", str(exc), domain=ctx.config.domain)
    if target is not None:
        if target.handle is None:
            raise web.HTTPFound(f"{ctx.urls.base}/")
        blog = await ctx.store.get_blog(target.handle)
        if blog is not None:
            raise web.HTTPFound(ctx.urls.profile(blog.handle))
    return await error_page(
        404,
        "Nothing to do here",
        "The accounts on this bridge are blogs' feeds: they cannot follow, like or answer. "
        "To follow one of them, search for its address in your own fediverse app.",
        domain=ctx.config.domain,
    )


routes.static("/static", STATIC_DIR)
