"""WebFinger (RFC 7033) and host-meta (RFC 6415): how ``@handle@domain`` finds its actor.

Mastodon resolves a mention by asking ``/.well-known/webfinger?resource=acct:handle@domain``
and following the ``self`` link of type ``application/activity+json``; it also looks the
account up by actor URL and expects the answer's subject to map back to the same ``acct:``.
The instance actor answers as ``acct:{domain}@{domain}``, as Mastodon's does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from bridge.activitypub.actors import safe_http_url
from bridge.activitypub.articles import image_media_type
from bridge.activitypub.negotiation import json_bytes
from bridge.activitypub.urls import Urls
from bridge.appkeys import CONTEXT
from bridge.config import HANDLE_RE
from bridge.errors import MalformedResource

routes = web.RouteTableDef()

JRD_TYPE = "application/jrd+json"
XRD_TYPE = "application/xrd+xml"
REL_SELF = "self"
REL_PROFILE = "http://webfinger.net/rel/profile-page"
REL_SUBSCRIBE = "http://ostatus.org/schema/1.0/subscribe"
REL_AVATAR = "http://webfinger.net/rel/avatar"
CORS = {"Access-Control-Allow-Origin": "*"}
# Discovery answers change rarely; Mastodon lets them be cached for three days.
CACHE_CONTROL = "max-age=259200, public"

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


@dataclass(frozen=True)
class Target:
    """What a resource names: a blog's account (``handle``) or the instance actor (``None``)."""

    handle: str | None


def resolve_resource(resource: str, *, domain: str, urls: Urls) -> Target | None:
    """The account a WebFinger ``resource`` names, or ``None`` when it is not one of ours.

    Accepts ``acct:handle@domain`` (handle case-insensitive, a leading ``@`` tolerated, the
    scheme optional as Mastodon allows), the actor URL and the profile URL. Raises
    :class:`MalformedResource` for text that is no URI at all.
    """
    text = resource.strip()
    if not text:
        raise MalformedResource("the resource parameter is empty")
    scheme_match = _SCHEME_RE.match(text)
    scheme = scheme_match.group(1).lower() if scheme_match else None
    if scheme in ("http", "https"):
        return _resolve_url(text, urls)
    if scheme == "acct":
        return _resolve_acct(text[len("acct:") :], domain)
    if scheme is None:
        # "handle@domain" without a scheme (an "@" ends the scheme match, so a port is safe).
        if "@" not in text:
            raise MalformedResource(f"not an acct: or http(s) URI: {resource!r}")
        return _resolve_acct(text, domain)
    return None


def _resolve_acct(address: str, domain: str) -> Target | None:
    address = unquote(address).strip()
    if address.startswith("@"):
        address = address[1:]
    user, sep, host = address.rpartition("@")
    if not sep or not user or not host or "/" in host:
        raise MalformedResource(f"an acct: URI looks like acct:name@domain, got {address!r}")
    if host.lower() != domain.lower():
        return None
    name = user.lower()
    if name == domain.lower():
        return Target(handle=None)
    return Target(handle=name) if HANDLE_RE.match(name) else None


def _resolve_url(url: str, urls: Urls) -> Target | None:
    parts = urlsplit(url)
    base = urlsplit(urls.base)
    if not parts.hostname:
        raise MalformedResource(f"a URL resource needs a host, got {url!r}")
    if (parts.scheme.lower(), parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
        return None
    path = unquote(parts.path).rstrip("/")
    if path == urlsplit(urls.instance_actor()).path:
        return Target(handle=None)
    for prefix in ("/users/", "/@"):
        if path.startswith(prefix):
            name = path[len(prefix) :]
            if HANDLE_RE.match(name):
                return Target(handle=name)
    return None


def subscribe_template(urls: Urls) -> str:
    """Where a remote-interaction (``{uri}``) lands on this bridge."""
    return f"{urls.base}/authorize_interaction?uri={{uri}}"


def blog_jrd(handle: str, domain: str, urls: Urls, avatar_url: str | None = None) -> dict[str, Any]:
    """The JRD of a blog's account."""
    actor = urls.actor(handle)
    profile = urls.profile(handle)
    links: list[dict[str, str]] = [
        {"rel": REL_PROFILE, "type": "text/html", "href": profile},
        {"rel": REL_SELF, "type": "application/activity+json", "href": actor},
        {"rel": REL_SUBSCRIBE, "template": subscribe_template(urls)},
    ]
    avatar = safe_http_url(avatar_url)
    if avatar is not None:
        link = {"rel": REL_AVATAR, "href": avatar}
        media_type = image_media_type(avatar)
        if media_type is not None:
            link["type"] = media_type
        links.append(link)
    return {"subject": f"acct:{handle}@{domain}", "aliases": [profile, actor], "links": links}


def instance_jrd(domain: str, urls: Urls) -> dict[str, Any]:
    """The JRD of the instance actor."""
    actor = urls.instance_actor()
    return {
        "subject": f"acct:{domain}@{domain}",
        "aliases": [actor],
        "links": [
            {"rel": REL_PROFILE, "type": "text/html", "href": f"{urls.base}/"},
            {"rel": REL_SELF, "type": "application/activity+json", "href": actor},
        ],
    }


def filter_links(jrd: dict[str, Any], rels: list[str]) -> dict[str, Any]:
    """Keep only the links whose ``rel`` was asked for (RFC 7033 §4.3); none asked: all."""
    if not rels:
        return jrd
    wanted = set(rels)
    return {**jrd, "links": [link for link in jrd["links"] if link["rel"] in wanted]}


def host_meta_xml(urls: Urls) -> str:
    """The XRD host-meta document pointing at the WebFinger endpoint (the lrdd template)."""
    template = _lrdd_template(urls).replace("&", "&amp;").replace('"', "&quot;")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" type="{XRD_TYPE}" template="{template}"/>\n'
        "</XRD>\n"
    )


def host_meta_json(urls: Urls) -> dict[str, Any]:
    """The JSON host-meta document (RFC 6415 appendix A)."""
    return {"links": [{"rel": "lrdd", "type": JRD_TYPE, "template": _lrdd_template(urls)}]}


def _lrdd_template(urls: Urls) -> str:
    return f"{urls.base}/.well-known/webfinger?resource={{uri}}"


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=json_bytes({"error": message}),
        content_type="application/json",
        charset="utf-8",
        headers=CORS,
    )


@routes.get("/.well-known/webfinger")
async def webfinger(request: web.Request) -> web.Response:
    """Answer a WebFinger query with the JRD of one of our accounts."""
    ctx = request.app[CONTEXT]
    resource = request.query.get("resource")
    if resource is None:
        return _error(400, "the resource parameter is required")
    try:
        target = resolve_resource(resource, domain=ctx.config.domain, urls=ctx.urls)
    except MalformedResource as exc:
        return _error(400, str(exc))
    if target is None:
        return _error(404, "no such account here")
    if target.handle is None:
        jrd = instance_jrd(ctx.config.domain, ctx.urls)
    else:
        blog = await ctx.store.get_blog(target.handle)
        if blog is None:
            return _error(404, "no such account here")
        jrd = blog_jrd(blog.handle, ctx.config.domain, ctx.urls, blog.meta.icon_url)
    jrd = filter_links(jrd, request.query.getall("rel", []))
    return web.Response(
        body=json_bytes(jrd),
        content_type=JRD_TYPE,
        charset="utf-8",
        headers={**CORS, "Cache-Control": CACHE_CONTROL},
    )


@routes.get("/.well-known/host-meta")
async def host_meta(request: web.Request) -> web.Response:
    """The XRD host-meta (older software finds WebFinger through it)."""
    ctx = request.app[CONTEXT]
    return web.Response(
        text=host_meta_xml(ctx.urls),
        content_type=XRD_TYPE,
        charset="utf-8",
        headers={**CORS, "Cache-Control": CACHE_CONTROL},
    )


@routes.get("/.well-known/host-meta.json")
async def host_meta_json_view(request: web.Request) -> web.Response:
    """The JSON host-meta."""
    ctx = request.app[CONTEXT]
    return web.Response(
        body=json_bytes(host_meta_json(ctx.urls)),
        content_type=JRD_TYPE,
        charset="utf-8",
        headers={**CORS, "Cache-Control": CACHE_CONTROL},
    )
