"""Building a blog's sink from its settings.

``kind`` picks the way in: ``wordpress`` (REST API comments; likes, boosts and mentions as
pingbacks, or as marked comments with ``linkbacks_as_comments``), ``pingback``, ``webmention``
or ``feed`` (nothing pushed). The blog's own hosts (of its site and feed URLs, and of the API)
are the only ones linkbacks may target.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import aiohttp

from bridge.context import BridgeContext
from bridge.errors import ConfigError, Rejected
from bridge.sinks.access import BlogAccess, hosts_of
from bridge.sinks.base import Sink
from bridge.sinks.feedonly import FeedOnlySink
from bridge.sinks.pingback import PingbackSink
from bridge.sinks.webmention import WebmentionSink
from bridge.sinks.wordpress import WordPressSink
from bridge.store.records import Blog

SinkKind = Literal["wordpress", "pingback", "webmention", "feed"]
SINK_KINDS: tuple[SinkKind, ...] = ("wordpress", "pingback", "webmention", "feed")


@dataclass(frozen=True)
class SinkSettings:
    """How the bridge writes into one blog.

    ``site_urls`` are the blog's own URLs (its home page and feed URL, at least): their hosts
    are the only targets of linkbacks. ``wordpress_api_url`` is the REST root
    (``https://blog.example/wp-json``; ``…/index.php?rest_route=`` is not supported).
    """

    kind: SinkKind = "feed"
    site_urls: tuple[str, ...] = ()
    wordpress_api_url: str | None = None
    wordpress_user: str | None = None
    wordpress_application_password: str | None = None
    linkbacks_as_comments: bool = False


def build_sink(
    settings: SinkSettings,
    session: aiohttp.ClientSession,
    *,
    user_agent: str,
    timeout: float,
    clock: Callable[[], datetime],
) -> Sink:
    """The sink ``settings`` describe; :class:`ConfigError` when a WordPress value is missing."""
    if settings.kind not in SINK_KINDS:
        raise ConfigError("sink", f"unknown kind {settings.kind!r}; one of {', '.join(SINK_KINDS)}")
    if settings.kind == "feed":
        return FeedOnlySink()
    hosts = hosts_of(*settings.site_urls, settings.wordpress_api_url or "")
    access = BlogAccess(session, hosts, user_agent=user_agent, timeout=timeout, clock=clock)
    if settings.kind == "pingback":
        return PingbackSink(access)
    if settings.kind == "webmention":
        return WebmentionSink(access)
    for key, value in (
        ("wordpress_api_url", settings.wordpress_api_url),
        ("wordpress_user", settings.wordpress_user),
        ("wordpress_application_password", settings.wordpress_application_password),
    ):
        if not value:
            raise ConfigError(key, "required for the wordpress sink")
    assert settings.wordpress_api_url and settings.wordpress_user
    assert settings.wordpress_application_password
    return WordPressSink(
        access,
        settings.wordpress_api_url,
        settings.wordpress_user,
        settings.wordpress_application_password,
        linkbacks_as_comments=settings.linkbacks_as_comments,
        pingback=PingbackSink(access),
    )


def sink_for(ctx: BridgeContext, blog: Blog) -> Sink:
    """The sink a blog's settings name, writing through the operator-trusted session.

    The WordPress application password comes from the environment variable the settings
    name (never from the config file). A missing one makes every push of that blog
    ``Rejected`` with the reason, so ``feedfed deliveries status`` shows it; once set, ``feedfed
    deliveries retry --kind push`` sends what waited.
    """
    settings = blog.settings
    password = None
    if settings.wordpress_password_env:
        password = os.environ.get(settings.wordpress_password_env) or None
    root = settings.wordpress_url.rstrip("/") if settings.wordpress_url else None
    wanted = SinkSettings(
        kind=settings.sink,
        site_urls=tuple(u for u in (blog.meta.home_url, blog.feed_url, root) if u),
        wordpress_api_url=f"{root}/wp-json" if root else None,
        wordpress_user=settings.wordpress_user,
        wordpress_application_password=password,
        linkbacks_as_comments=settings.likes_as_comments,
    )
    try:
        return build_sink(
            wanted,
            ctx.http,
            user_agent=ctx.config.user_agent,
            timeout=ctx.config.limits.fetch_timeout,
            clock=ctx.clock,
        )
    except ConfigError as exc:
        raise Rejected(f"blog {blog.handle}: {exc}") from exc
