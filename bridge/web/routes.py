"""The ActivityPub face of each blog: actor, posts, activities and collections.

Every URL that names an account or a post negotiates (see :mod:`bridge.activitypub.negotiation`):
fediverse servers get ActivityStreams JSON, browsers are sent to the page people read (the
profile page, or the blog post itself). Documents are built from the store on each request,
so a change in the translation reaches old posts; recorded activities are served as frozen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from bridge.activitypub import activities, articles, collections, keys
from bridge.activitypub.actors import build_actor, build_instance_actor, safe_http_url
from bridge.activitypub.jsonld import with_context, without_context
from bridge.activitypub.negotiation import activity_response, json_bytes, wants_activity_json
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.errors import InvalidPage
from bridge.store.base import Blog, StoredEntry
from bridge.web import pages

routes = web.RouteTableDef()

# How long others may cache what we serve: actors and posts change rarely and are refetched
# on Update anyway; collection pages move with every new post.
ACTOR_CACHE_SECONDS = 180
OBJECT_CACHE_SECONDS = 180
COLLECTION_CACHE_SECONDS = 60
ACTIVITY_CACHE_SECONDS = 3600


def page_number(request: web.Request) -> int | None:
    """The ``page`` query parameter (1-based), ``None`` when absent; raise :class:`InvalidPage`."""
    raw = request.query.get("page")
    if raw is None:
        return None
    # Nine digits are a billion pages: anything longer is no page but an overflow attempt.
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise InvalidPage(f"page must be a positive whole number, got {raw!r}")
    return int(raw)


def _json_error(status: int, message: str) -> web.Response:
    response = web.Response(
        status=status,
        body=json_bytes({"error": message}),
        content_type="application/json",
        charset="utf-8",
    )
    response.headers["Vary"] = "Accept"
    return response


async def not_found(request: web.Request, message: str = "Not found") -> web.Response:
    """A negotiated 404: JSON for servers, the error page for people."""
    if wants_activity_json(request.headers.get("Accept")):
        return _json_error(404, message)
    response = await pages.error_page(
        404, "Not found", message, domain=request.app[CONTEXT].config.domain
    )
    response.headers["Vary"] = "Accept"
    return response


async def bad_request(request: web.Request, message: str) -> web.Response:
    """A negotiated 400."""
    if wants_activity_json(request.headers.get("Accept")):
        return _json_error(400, message)
    response = await pages.error_page(
        400, "Bad request", message, domain=request.app[CONTEXT].config.domain
    )
    response.headers["Vary"] = "Accept"
    return response


def redirect(location: str) -> web.Response:
    """A 302 that caches apart from the JSON answer of the same URL."""
    return web.Response(status=302, headers={"Location": location, "Vary": "Accept"})


async def actor_response(ctx: BridgeContext, blog: Blog) -> web.Response:
    """The blog's actor document (its key pair is made on first use)."""
    keypair = await keys.ensure_keypair(ctx.store, blog.handle, ctx.clock())
    document = build_actor(blog, keypair.public_pem, ctx.urls)
    return activity_response(document, cache_seconds=ACTOR_CACHE_SECONDS)


def create_for(blog: Blog, stored: StoredEntry, ctx: BridgeContext) -> dict[str, Any]:
    """The ``Create`` of a live entry, built fresh, at its stable id ``{object}/activity``."""
    obj = articles.build_object(blog, stored, ctx.urls)
    return activities.create_activity(blog, obj, f"{obj['id']}/activity", ctx.urls)


async def _blog(request: web.Request) -> Blog | None:
    ctx = request.app[CONTEXT]
    return await ctx.store.get_blog(request.match_info["handle"])


@routes.get("/users/{handle}")
async def actor(request: web.Request) -> web.Response:
    """The blog's actor: JSON for servers, the profile page for people."""
    blog = await _blog(request)
    if blog is None:
        return await not_found(request, "no such account")
    ctx = request.app[CONTEXT]
    if wants_activity_json(request.headers.get("Accept")):
        return await actor_response(ctx, blog)
    return redirect(ctx.urls.profile(blog.handle))


@routes.get("/@{handle}")
async def profile(request: web.Request) -> web.Response:
    """The profile page; servers asking for JSON get the actor, as Mastodon answers."""
    ctx = request.app[CONTEXT]
    requested = request.match_info["handle"]
    blog = await ctx.store.get_blog(requested.lower())
    if blog is None:
        return await not_found(request, "no such account")
    if wants_activity_json(request.headers.get("Accept")):
        return await actor_response(ctx, blog)
    if requested != blog.handle:
        return web.Response(
            status=301, headers={"Location": ctx.urls.profile(blog.handle), "Vary": "Accept"}
        )
    try:
        page = page_number(request) or 1
    except InvalidPage as exc:
        return await bad_request(request, str(exc))
    response = await pages.profile_page(ctx, blog, page)
    response.headers["Vary"] = "Accept"
    return response


async def _post(request: web.Request) -> tuple[Blog, StoredEntry] | web.Response:
    """The blog and entry a post URL names, or the 404 to answer."""
    blog = await _blog(request)
    if blog is None:
        return await not_found(request, "no such account")
    ctx = request.app[CONTEXT]
    stored = await ctx.store.get_entry_by_slug(blog.id, request.match_info["slug"])
    if stored is None:
        return await not_found(request, "no such post")
    return blog, stored


async def _post_response(
    request: web.Request,
    build: Callable[[Blog, StoredEntry], dict[str, Any]],
    gone: Callable[[Blog, StoredEntry], dict[str, Any]],
) -> web.Response:
    """Negotiate a post URL: JSON from ``build`` (410 with ``gone`` once deleted), else the
    blog post itself for browsers."""
    found = await _post(request)
    if isinstance(found, web.Response):
        return found
    blog, stored = found
    ctx = request.app[CONTEXT]
    as_json = wants_activity_json(request.headers.get("Accept"))
    if stored.deleted_at is not None:
        if as_json:
            return activity_response(with_context(gone(blog, stored)), status=410)
        response = await pages.error_page(
            410, "Gone", "The blog removed this post.", domain=ctx.config.domain
        )
        response.headers["Vary"] = "Accept"
        return response
    if as_json:
        return activity_response(build(blog, stored), cache_seconds=OBJECT_CACHE_SECONDS)
    return redirect(safe_http_url(stored.entry.link) or ctx.urls.profile(blog.handle))


@routes.get("/users/{handle}/posts/{slug}")
async def article(request: web.Request) -> web.Response:
    """One post: the Article/Note (410 with a Tombstone once deleted), or the blog post."""
    urls = request.app[CONTEXT].urls
    return await _post_response(
        request,
        lambda blog, stored: with_context(articles.build_object(blog, stored, urls)),
        lambda blog, stored: articles.build_tombstone(blog, stored, urls),
    )


@routes.get("/users/{handle}/posts/{slug}/activity")
async def article_create(request: web.Request) -> web.Response:
    """The ``Create`` of one post as the outbox lists it (410 once the post is deleted)."""
    ctx = request.app[CONTEXT]
    return await _post_response(
        request,
        lambda blog, stored: create_for(blog, stored, ctx),
        lambda blog, stored: {
            "id": ctx.urls.article(blog.handle, stored.slug) + "/activity",
            "type": "Tombstone",
        },
    )


@routes.get("/users/{handle}/activities/{uuid}")
async def recorded_activity(request: web.Request) -> web.Response:
    """An outgoing activity exactly as it was recorded (and delivered)."""
    blog = await _blog(request)
    if blog is None:
        return await not_found(request, "no such account")
    ctx = request.app[CONTEXT]
    activity_id = ctx.urls.activity(blog.handle, request.match_info["uuid"])
    stored = await ctx.store.get_activity(activity_id)
    if stored is None or stored.blog_id != blog.id:
        return await not_found(request, "no such activity")
    if not wants_activity_json(request.headers.get("Accept")):
        return redirect(ctx.urls.profile(blog.handle))
    payload = stored.payload if "@context" in stored.payload else with_context(stored.payload)
    return activity_response(payload, cache_seconds=ACTIVITY_CACHE_SECONDS)


async def _paged(
    request: web.Request,
    collection_id: str,
    total: int,
    fetch_page: Callable[[int, int], Awaitable[Sequence[Any]]],
) -> web.Response:
    """Serve a paged OrderedCollection: the summary, or page ``?page=N``.

    ``fetch_page(limit, offset)`` returns the items of one page.
    """
    ctx = request.app[CONTEXT]
    size = ctx.config.limits.page_size
    try:
        page = page_number(request)
    except InvalidPage as exc:
        return _json_error(400, str(exc))
    if page is None:
        pages = collections.page_count(total, size)
        summary = collections.ordered_collection(
            collection_id,
            total,
            first=collections.page_url(collection_id, 1) if pages else None,
            last=collections.page_url(collection_id, pages) if pages else None,
        )
        return activity_response(with_context(summary), cache_seconds=COLLECTION_CACHE_SECONDS)
    # A page past the end is served empty (linking back), as Mastodon serves it: a client
    # walking `next` while posts are deleted meets an empty page, not an error.
    offset = collections.page_offset(page, size)
    items = await fetch_page(size, offset)
    next_id, prev_id = collections.page_links(collection_id, page, total, size)
    document = collections.ordered_collection_page(
        collections.page_url(collection_id, page),
        collection_id,
        list(items),
        next_id=next_id,
        prev_id=prev_id,
        start_index=offset,
    )
    return activity_response(with_context(document), cache_seconds=COLLECTION_CACHE_SECONDS)


async def _collection_owner(request: web.Request) -> tuple[BridgeContext, Blog] | web.Response:
    """The blog whose collection is asked for, or the answer: 404 for an unknown handle, the
    profile page for browsers (collections are for servers)."""
    blog = await _blog(request)
    if blog is None:
        return await not_found(request, "no such account")
    ctx = request.app[CONTEXT]
    if not wants_activity_json(request.headers.get("Accept")):
        return redirect(ctx.urls.profile(blog.handle))
    return ctx, blog


@routes.get("/users/{handle}/outbox")
async def outbox(request: web.Request) -> web.Response:
    """The ``Create`` of every live post, newest first."""
    found = await _collection_owner(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog = found
    total = await ctx.store.count_entries(blog.id)

    async def fetch(limit: int, offset: int) -> list[dict[str, Any]]:
        entries = await ctx.store.list_entries(blog.id, limit, offset)
        return [without_context(create_for(blog, stored, ctx)) for stored in entries]

    return await _paged(request, ctx.urls.outbox(blog.handle), total, fetch)


@routes.get("/users/{handle}/followers")
async def followers(request: web.Request) -> web.Response:
    """The accepted followers' actor ids, oldest first."""
    found = await _collection_owner(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog = found
    total = await ctx.store.count_followers(blog.id)

    async def fetch(limit: int, offset: int) -> list[str]:
        return [f.actor_id for f in await ctx.store.list_followers(blog.id, limit, offset)]

    return await _paged(request, ctx.urls.followers(blog.handle), total, fetch)


@routes.get("/users/{handle}/following")
async def following(request: web.Request) -> web.Response:
    """Whom the blog follows: nobody, ever (a bridged feed does not follow)."""
    found = await _collection_owner(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog = found

    async def fetch(limit: int, offset: int) -> list[str]:
        return []

    return await _paged(request, ctx.urls.following(blog.handle), 0, fetch)


@routes.get("/users/{handle}/featured")
async def featured(request: web.Request) -> web.Response:
    """The newest posts as full objects: Mastodon shows these as the account's pinned posts."""
    found = await _collection_owner(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog = found
    entries = await ctx.store.list_entries(blog.id, ctx.config.limits.featured_count)
    items = [without_context(articles.build_object(blog, stored, ctx.urls)) for stored in entries]
    document = {
        "id": ctx.urls.featured(blog.handle),
        "type": "OrderedCollection",
        "totalItems": len(items),
        "orderedItems": items,
    }
    return activity_response(with_context(document), cache_seconds=COLLECTION_CACHE_SECONDS)


@routes.get("/actor")
async def instance_actor(request: web.Request) -> web.Response:
    """The instance actor; people are sent to the front page."""
    ctx = request.app[CONTEXT]
    if not wants_activity_json(request.headers.get("Accept")):
        return redirect(f"{ctx.urls.base}/")
    keypair = await keys.ensure_keypair(ctx.store, keys.INSTANCE_OWNER, ctx.clock())
    document = build_instance_actor(ctx.config.domain, keypair.public_pem, ctx.urls)
    return activity_response(document, cache_seconds=ACTOR_CACHE_SECONDS)


@routes.get("/actor/outbox")
async def instance_outbox(request: web.Request) -> web.Response:
    """The instance actor publishes nothing."""
    ctx = request.app[CONTEXT]

    async def fetch(limit: int, offset: int) -> list[str]:
        return []

    return await _paged(request, ctx.urls.instance_outbox(), 0, fetch)
