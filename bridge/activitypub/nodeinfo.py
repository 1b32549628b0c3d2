"""NodeInfo 2.0 and 2.1: what software runs here and how much it holds.

Fediverse crawlers and servers (Mastodon, Misskey, FediDB) read ``/.well-known/nodeinfo`` to
learn the software and its protocols. A bridge has no sign-ins, so a blog counts as active in
a period when it published within it; users are blogs and local posts are live entries.
Inbound services are what the bridge reads (RSS 2.0, Atom); it publishes nothing but
ActivityPub, so the outbound list is empty.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any, Literal, Protocol

from aiohttp import web

from bridge.activitypub.negotiation import json_bytes
from bridge.activitypub.urls import Urls
from bridge.appkeys import CONTEXT
from bridge.store.base import BlogStore, EntryStore

routes = web.RouteTableDef()

NodeInfoVersion = Literal["2.0", "2.1"]
SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/"
SOFTWARE_NAME = "feedfed"
DISTRIBUTION = "feedfed"
FALLBACK_VERSION = "0.1.0"
INBOUND_SERVICES = ("atom1.0", "rss2.0")
OUTBOUND_SERVICES: tuple[str, ...] = ()
ACTIVE_MONTH = timedelta(days=30)
ACTIVE_HALFYEAR = timedelta(days=180)
CORS = {"Access-Control-Allow-Origin": "*"}


@dataclass(frozen=True)
class Software:
    """Name, version and links of the running software."""

    version: str
    homepage: str | None = None
    repository: str | None = None


@dataclass(frozen=True)
class Usage:
    """The counts NodeInfo publishes."""

    users_total: int
    active_month: int
    active_halfyear: int
    local_posts: int


class UsageStore(BlogStore, EntryStore, Protocol):
    """What :func:`collect_usage` reads."""


@functools.cache
def installed_software() -> Software:
    """Version and project URLs from the installed package's metadata (reads files: call it
    off the event loop the first time)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return Software(version=FALLBACK_VERSION)
    urls: dict[str, str] = {}
    for entry in dist.metadata.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        urls[label.strip().lower()] = url.strip()
    declared: list[str] = dist.metadata.get_all("Home-page") or []
    homepage = (declared[0] if declared else None) or urls.get("homepage")
    repository = urls.get("repository") or urls.get("source")
    return Software(
        version=dist.version or FALLBACK_VERSION, homepage=homepage, repository=repository
    )


async def collect_usage(store: UsageStore, now: datetime) -> Usage:
    """Count blogs, active blogs and live entries."""
    blogs = await store.list_blogs()
    month = halfyear = posts = 0
    for blog in blogs:
        posts += await store.count_entries(blog.id)
        newest = await store.list_entries(blog.id, limit=1)
        if not newest:
            continue
        age = now - newest[0].sort_time
        month += age <= ACTIVE_MONTH
        halfyear += age <= ACTIVE_HALFYEAR
    return Usage(
        users_total=len(blogs), active_month=month, active_halfyear=halfyear, local_posts=posts
    )


def discovery_document(urls: Urls) -> dict[str, Any]:
    """``/.well-known/nodeinfo``: links to the documents, newest schema first."""
    return {
        "links": [
            {"rel": f"{SCHEMA}2.1", "href": f"{urls.base}/nodeinfo/2.1"},
            {"rel": f"{SCHEMA}2.0", "href": f"{urls.base}/nodeinfo/2.0"},
        ]
    }


def nodeinfo_document(
    version: NodeInfoVersion, software: Software, usage: Usage, node_name: str
) -> dict[str, Any]:
    """The NodeInfo document of the given schema version."""
    software_doc: dict[str, str] = {"name": SOFTWARE_NAME, "version": software.version}
    if version == "2.1":
        if software.repository:
            software_doc["repository"] = software.repository
        if software.homepage:
            software_doc["homepage"] = software.homepage
    return {
        "version": version,
        "software": software_doc,
        "protocols": ["activitypub"],
        "services": {"inbound": list(INBOUND_SERVICES), "outbound": list(OUTBOUND_SERVICES)},
        "openRegistrations": False,
        "usage": {
            "users": {
                "total": usage.users_total,
                "activeMonth": usage.active_month,
                "activeHalfyear": usage.active_halfyear,
            },
            "localPosts": usage.local_posts,
        },
        "metadata": {"nodeName": node_name},
    }


def content_type(version: NodeInfoVersion) -> str:
    """The media type with the schema profile, as the NodeInfo protocol asks."""
    return f'application/json; profile="{SCHEMA}{version}#"'


@routes.get("/.well-known/nodeinfo")
async def nodeinfo_discovery(request: web.Request) -> web.Response:
    """Where the NodeInfo documents are."""
    ctx = request.app[CONTEXT]
    return web.Response(
        body=json_bytes(discovery_document(ctx.urls)),
        content_type="application/json",
        charset="utf-8",
        headers={**CORS, "Cache-Control": "max-age=259200, public"},
    )


async def _document(request: web.Request, version: NodeInfoVersion) -> web.Response:
    ctx = request.app[CONTEXT]
    software = await asyncio.to_thread(installed_software)
    usage = await collect_usage(ctx.store, ctx.clock())
    body = json_bytes(nodeinfo_document(version, software, usage, ctx.config.domain))
    response = web.Response(body=body, headers={**CORS, "Cache-Control": "max-age=1800, public"})
    # Set whole: aiohttp's content_type argument would drop the profile parameter.
    response.headers["Content-Type"] = f"{content_type(version)}; charset=utf-8"
    return response


@routes.get("/nodeinfo/2.1")
async def nodeinfo_21(request: web.Request) -> web.Response:
    """The NodeInfo 2.1 document."""
    return await _document(request, "2.1")


@routes.get("/nodeinfo/2.0")
async def nodeinfo_20(request: web.Request) -> web.Response:
    """The NodeInfo 2.0 document."""
    return await _document(request, "2.0")
