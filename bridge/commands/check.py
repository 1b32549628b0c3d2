"""``feedfed blogs check BLOG``: what the bridge finds at a blog, and which sink would work.

It reads what the bridge itself would read, through the operator-trusted session
(``ctx.http``), and writes nothing: the feed (format, entries), the comment feed its newest
entry names (``wfw:commentRss`` or the Atom replies link), the WordPress REST API
(``GET /wp-json/wp/v2/users/me?context=edit`` with the application password from the
environment variable the config names), and the webmention and pingback endpoints the newest
post announces (:func:`bridge.sinks.discovery.discover_endpoints`). The last line advises a
sink; the exit status is 0 when the configured one can work, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp

from bridge.backfeed.blog_comments import parse_comment_feed
from bridge.commands.blog_handle import blog_named
from bridge.context import BridgeContext
from bridge.entries import FeedEntry, ParsedFeed
from bridge.errors import FeedError, JobError
from bridge.ingest.fetch import fetch_feed
from bridge.ingest.parse import parse_feed_async
from bridge.sinks.access import hosts_of
from bridge.sinks.discovery import Endpoints, discover_endpoints
from bridge.store.base import Blog

# WordPress answers users/me in a few hundred bytes; a page this big is not its REST API.
MAX_API_BYTES = 256 * 1024
# Sinks in the order they serve a blog best: native threaded comments first.
PREFERENCE = ("wordpress", "webmention", "pingback", "feed")
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``ok`` True (works), False (fails) or None (nothing to check)."""

    topic: str
    ok: bool | None
    text: str


@dataclass
class CheckReport:
    """What ``blogs check`` found: its lines, the sinks that can work, and the verdict."""

    handle: str
    sink: str
    findings: list[Finding] = field(default_factory=list)
    usable: list[str] = field(default_factory=list)

    @property
    def works(self) -> bool:
        """Whether the configured sink can work (the feed is read, the sink's way in is open)."""
        return self.sink in self.usable

    def add(self, topic: str, ok: bool | None, text: str) -> None:
        """Append one line."""
        self.findings.append(Finding(topic, ok, text))


def add_check(blogs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check`` to the ``blogs`` subcommands."""
    check = blogs.add_parser(
        "check", help="check a blog's feed, comment feed, WordPress API and linkback endpoints"
    )
    check.add_argument("handle")
    check.set_defaults(action=lambda a: lambda ctx: run_check(ctx, a.handle))


async def run_check(ctx: BridgeContext, handle: str) -> int:
    """Check the blog named ``handle``, print the report; 0 when its sink can work, else 1."""
    report = await check_blog(ctx, await blog_named(ctx, handle))
    print(format_report(report))
    return 0 if report.works else 1


async def check_blog(
    ctx: BridgeContext, blog: Blog, env: Mapping[str, str] | None = None
) -> CheckReport:
    """Look at everything the blog's sinks need; ``env`` holds the password variable."""
    env = os.environ if env is None else env
    report = CheckReport(blog.handle, blog.settings.sink)
    parsed = await _check_feed(ctx, blog, report)
    newest = newest_entry(parsed.entries) if parsed is not None else None
    if parsed is not None and newest is None:
        report.add("newest post", False, "the feed has no entries to look at")
    elif newest is not None:
        report.add("newest post", True, newest.link or newest.id)
        await _check_comment_feed(ctx, newest, report)
    report.add("sink", None, f"{blog.settings.sink} (configured)")
    wordpress = await _check_wordpress(ctx, blog, env, report)
    endpoints = await _check_endpoints(ctx, blog, newest, report)
    if parsed is not None:
        if wordpress:
            report.usable.append("wordpress")
        if endpoints is not None and endpoints.webmention:
            report.usable.append("webmention")
        if endpoints is not None and endpoints.pingback:
            report.usable.append("pingback")
        report.usable.append("feed")
    report.add(
        "advice",
        report.works,
        advice(report, blog, pingback=bool(endpoints and endpoints.pingback)),
    )
    return report


def newest_entry(entries: tuple[FeedEntry, ...]) -> FeedEntry | None:
    """The entry with the latest date; the feed's first one when none (or all alike) is dated."""
    if not entries:
        return None
    return max(entries, key=lambda e: e.published or e.updated or _NEVER)


def advice(report: CheckReport, blog: Blog, *, pingback: bool) -> str:
    """The advice line: does the configured sink work, and which one serves the blog best."""
    if not report.usable:
        return "nothing can work while the feed cannot be read: fix the feed first"
    best = next(sink for sink in PREFERENCE if sink in report.usable)
    if report.works:
        text = f'sink = "{report.sink}" can work'
        if best != report.sink:
            text += f'; sink = "{best}" would bring comments closer to the blog'
        if report.sink == "wordpress" and not pingback and not blog.settings.likes_as_comments:
            text += "; likes and boosts need pingback (or likes_as_comments = true)"
        return text
    return f'sink = "{report.sink}" cannot work here; use sink = "{best}"'


def format_report(report: CheckReport) -> str:
    """The report as aligned lines: topic, verdict (ok / FAIL / -), what was found."""
    width = max(len(f.topic) for f in report.findings)
    marks = {True: "ok", False: "FAIL", None: "-"}
    lines = [f"checking @{report.handle}"]
    lines += [f"{f.topic:<{width}}  {marks[f.ok]:<4}  {f.text}" for f in report.findings]
    return "\n".join(lines)


async def _check_feed(ctx: BridgeContext, blog: Blog, report: CheckReport) -> ParsedFeed | None:
    limits = ctx.config.limits
    try:
        fetched = await fetch_feed(
            ctx.http,
            blog.feed_url,
            max_bytes=limits.max_feed_bytes,
            timeout=limits.fetch_timeout,
            user_agent=ctx.config.user_agent,
        )
        parsed = await parse_feed_async(
            fetched.body, url=fetched.url, content_type=fetched.content_type
        )
    except FeedError as exc:
        report.add("feed", False, f"{blog.feed_url}: {exc}")
        return None
    kind = parsed.format or "unknown format"
    report.add("feed", True, f"{blog.feed_url}: {kind}, {len(parsed.entries)} entries")
    return parsed


async def _check_comment_feed(ctx: BridgeContext, newest: FeedEntry, report: CheckReport) -> None:
    url = newest.comments_feed
    if not url:
        report.add("comment feed", None, "the newest entry names none (wfw:commentRss, replies)")
        return
    limits = ctx.config.limits
    try:
        fetched = await fetch_feed(
            ctx.http,
            url,
            max_bytes=limits.max_feed_bytes,
            timeout=limits.fetch_timeout,
            user_agent=ctx.config.user_agent,
        )
        comments = await asyncio.to_thread(parse_comment_feed, fetched.body, url=fetched.url)
    except FeedError as exc:
        report.add("comment feed", False, f"{url}: {exc}")
        return
    report.add("comment feed", True, f"{url}: {len(comments)} comments")


async def _check_wordpress(
    ctx: BridgeContext, blog: Blog, env: Mapping[str, str], report: CheckReport
) -> bool:
    topic = "WordPress REST API"
    settings = blog.settings
    if not settings.wordpress_url:
        report.add(topic, None, "not configured (wordpress_url)")
        return False
    if not settings.wordpress_user or not settings.wordpress_password_env:
        # Without credentials the dialog still reads the public comments; only the sink needs them.
        needed = False if settings.sink == "wordpress" else None
        report.add(topic, needed, "wordpress_user and wordpress_password_env are not configured")
        return False
    password = env.get(settings.wordpress_password_env)
    if not password:
        name = settings.wordpress_password_env
        report.add(topic, False, f"environment variable {name} (the application password) is unset")
        return False
    url = settings.wordpress_url.rstrip("/") + "/wp-json/wp/v2/users/me?context=edit"
    token = base64.b64encode(f"{settings.wordpress_user}:{password}".encode()).decode("ascii")
    headers = {
        "Accept": "application/json",
        "Authorization": f"Basic {token}",
        "User-Agent": ctx.config.user_agent,
    }
    try:
        # No redirects: the credentials would not follow them, and the address is wrong anyway.
        async with ctx.http.get(
            url,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=ctx.config.limits.fetch_timeout),
        ) as response:
            status, location = response.status, response.headers.get("Location")
            body = await response.content.read(MAX_API_BYTES)
    except (aiohttp.ClientError, TimeoutError) as exc:
        report.add(topic, False, f"{url}: unreachable ({str(exc) or type(exc).__name__})")
        return False
    data = _json_object(body)
    if status == 200 and data is not None and "id" in data:
        who = data.get("username") or data.get("slug") or data.get("id")
        report.add(topic, True, f"authorised as user {who} ({data.get('name', '')})")
        return True
    if status in (401, 403):
        problem = f"{data.get('code', '')}: {data.get('message', '')}" if data else "no reason"
        report.add(topic, False, f"refused the application password ({status} {problem})")
    elif 300 <= status < 400:
        report.add(topic, False, f"{url} redirects to {location}: set wordpress_url to the site")
    elif status == 404:
        report.add(topic, False, f"{url}: 404, no WordPress REST API there")
    else:
        report.add(topic, False, f"{url}: unexpected answer {status}")
    return False


async def _check_endpoints(
    ctx: BridgeContext, blog: Blog, newest: FeedEntry | None, report: CheckReport
) -> Endpoints | None:
    if newest is None or not newest.link:
        report.add("linkback endpoints", False, "no post to look at")
        return None
    own = hosts_of(blog.meta.home_url or "", blog.feed_url, blog.settings.wordpress_url or "")
    host = (urlsplit(newest.link).hostname or "").lower()
    if host not in own:
        report.add(
            "linkback endpoints",
            False,
            f"the newest post lives on {host}, not on the blog's own hosts: no linkbacks go there",
        )
        return None
    try:
        endpoints = await discover_endpoints(
            ctx.http,
            newest.link,
            timeout=ctx.config.limits.fetch_timeout,
            user_agent=ctx.config.user_agent,
        )
    except JobError as exc:
        report.add("linkback endpoints", False, f"{newest.link}: {exc}")
        return None
    for topic, found in (("webmention", endpoints.webmention), ("pingback", endpoints.pingback)):
        report.add(topic, found is not None, found or f"no endpoint announced by {endpoints.url}")
    return endpoints


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
