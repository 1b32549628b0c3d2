"""The ``feedfed`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from bridge import logs
from bridge.activitypub import keys
from bridge.app import create_app
from bridge.commands import backfill, check, db, deliveries, followers, moderation, worker
from bridge.commands.blog_handle import blog_named
from bridge.config import Config, load_config, validate_feed_url, validate_handle
from bridge.context import BridgeContext, open_context
from bridge.errors import BridgeError
from bridge.ingest import websub
from bridge.ingest.discovery import resolve_feed_url
from bridge.ingest.fetch import fetch_feed
from bridge.ingest.parse import parse_feed_async
from bridge.ingest.poller import PollReport, poll_blog
from bridge.store.base import Blog, BlogSettings, NewBlog
from bridge.web.server import serve

log = logging.getLogger("bridge")

# Each module adds its subcommands to the parser (``register(subparsers)``).
COMMAND_MODULES = (followers, moderation, deliveries, db, worker)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``feedfed`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logs.setup_logging(args.log_level, args.log_format)
    try:
        config = load_config(args.config)
        if args.command == "serve":
            return _serve(config, workers=not args.no_workers)
        if not getattr(args, "needs_context", True):
            # e.g. `db copy`: opening the configured store would migrate and fill it first.
            return int(asyncio.run(args.action(args)(None)))
        action: Callable[[BridgeContext], Awaitable[int]] = args.action(args)
        return asyncio.run(_with_context(config, action))
    except BridgeError as exc:
        print(f"feedfed: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # asyncio.run has cancelled the command and let it close what it opened.
        print("feedfed: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feedfed", description="Bridge blog feeds to the fediverse and back."
    )
    parser.add_argument("--config", help="config file (default: $FEEDFED_CONFIG, else built-in)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument(
        "--log-format",
        default="plain",
        choices=logs.LOG_FORMATS,
        help="one line per event, as plain text or JSON (default: plain)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web server and the workers")
    serve.add_argument("--no-workers", action="store_true", help="serve HTTP only")

    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(action=lambda a: _migrate)

    blogs = sub.add_parser("blogs", help="manage bridged blogs").add_subparsers(
        dest="blogs_command", required=True
    )
    add = blogs.add_parser("add", help="bridge a blog (feed URL or home page)")
    add.add_argument("url")
    add.add_argument("--handle", help="account name (default: from the feed title)")
    add.add_argument("--note", action="store_true", help="publish posts as Notes, not Articles")
    add.set_defaults(action=lambda a: lambda ctx: _blogs_add(ctx, a.url, a.handle, a.note))
    listing = blogs.add_parser("list", help="list bridged blogs")
    listing.set_defaults(action=lambda a: _blogs_list)
    show = blogs.add_parser("show", help="show one blog and its feed's state")
    show.add_argument("handle")
    show.set_defaults(action=lambda a: lambda ctx: _blogs_show(ctx, a.handle))
    remove = blogs.add_parser("remove", help="stop bridging a blog and forget it")
    remove.add_argument("handle")
    remove.set_defaults(action=lambda a: lambda ctx: _blogs_remove(ctx, a.handle))
    check.add_check(blogs)
    backfill.add_backfill(blogs)

    poll = sub.add_parser("poll", help="poll one blog's feed now")
    poll.add_argument("handle")
    poll.set_defaults(action=lambda a: lambda ctx: _poll(ctx, a.handle))

    for commands in COMMAND_MODULES:
        commands.register(sub)
    return parser


def _serve(config: Config, *, workers: bool) -> int:
    if config.base_url.startswith("http://"):
        log.warning("serving plain http at %s: for local trials only", config.base_url)
    app = create_app(config, run_workers=workers)
    asyncio.run(serve(app, config.listen_host, config.listen_port))
    return 0


async def _with_context(config: Config, action: Callable[[BridgeContext], Awaitable[int]]) -> int:
    # Every command migrates first: one process, one schema, no surprise at run time.
    async with open_context(config, migrate=True) as ctx:
        return await action(ctx)


async def _migrate(ctx: BridgeContext) -> int:
    pending = await ctx.store.pending_migrations()
    print("database schema is up to date" if not pending else f"still pending: {pending}")
    return 0 if not pending else 1


async def _blogs_add(ctx: BridgeContext, url: str, handle: str | None, note: bool) -> int:
    limits = ctx.config.limits
    validate_feed_url(url, "URL")
    if handle is not None:
        validate_handle(handle, "--handle")
    feed_url = await resolve_feed_url(
        ctx.http,
        url,
        max_bytes=limits.max_feed_bytes,
        timeout=limits.fetch_timeout,
        user_agent=ctx.config.user_agent,
    )
    if handle is None:
        fetched = await fetch_feed(
            ctx.http,
            feed_url,
            max_bytes=limits.max_feed_bytes,
            timeout=limits.fetch_timeout,
            user_agent=ctx.config.user_agent,
        )
        parsed = await parse_feed_async(fetched.body, url=fetched.url, content_type=None)
        handle = handle_from(parsed.meta.title, feed_url)
    validate_handle(handle, "--handle")
    settings = BlogSettings(object_type="Note" if note else "Article")
    blog = await ctx.store.add_blog(NewBlog(handle, feed_url, settings), ctx.clock())
    await keys.ensure_keypair(ctx.store, blog.handle, ctx.clock())
    print(f"added @{blog.handle}@{ctx.config.domain} for {feed_url}")
    report = await poll_blog(ctx, blog)
    _print_report(report)
    return 0 if report.error is None else 1


def handle_from(title: str | None, feed_url: str) -> str:
    """An account name from the feed title (ASCII, lowercase), else from the host name."""
    for source in (title or "", (urlsplit(feed_url).hostname or "").removeprefix("www.")):
        ascii_text = unicodedata.normalize("NFKD", source).encode("ascii", "ignore").decode()
        candidate = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:30].strip("_")
        if candidate:
            return candidate
    return "blog"


async def _blogs_list(ctx: BridgeContext) -> int:
    blogs = await ctx.store.list_blogs()
    if not blogs:
        print("no blogs yet: feedfed blogs add URL")
    for blog in blogs:
        print(f"@{blog.handle}@{ctx.config.domain}\t{blog.feed.status}\t{blog.feed_url}")
    return 0


async def _blogs_show(ctx: BridgeContext, handle: str) -> int:
    blog = await blog_named(ctx, handle)
    sub = await ctx.store.get_websub(blog.id)
    rows = [
        ("account", f"@{blog.handle}@{ctx.config.domain}"),
        ("actor", ctx.urls.actor(blog.handle)),
        ("profile", ctx.urls.profile(blog.handle)),
        ("title", blog.meta.title or "-"),
        ("home page", blog.meta.home_url or "-"),
        ("feed", blog.feed_url),
        ("posts as", blog.settings.object_type),
        ("declared in", "config file" if blog.from_config else "database (feedfed blogs add)"),
        ("status", _status_text(blog)),
        ("last polled", _when(blog.feed.last_polled_at)),
        ("last success", _when(blog.feed.last_success_at)),
        (
            "next poll",
            "never (feed is gone)" if blog.feed.status == "gone" else _when(blog.feed.next_poll_at),
        ),
        ("poll interval", f"{blog.feed.poll_interval} s" if blog.feed.poll_interval else "-"),
        ("failures in a row", str(blog.feed.failures)),
        ("last error", blog.feed.last_error or "-"),
        ("posts", str(await ctx.store.count_entries(blog.id))),
        ("followers", str(await ctx.store.count_followers(blog.id))),
        (
            "websub",
            f"{sub.status} at {sub.hub_url}" + (f" ({sub.last_error})" if sub.last_error else "")
            if sub
            else "-",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def _status_text(blog: Blog) -> str:
    return {
        "new": "new (not polled yet)",
        "ok": "ok",
        "failing": "failing (retrying with backoff)",
        "gone": "gone: the feed answered 410, polling stopped",
    }[blog.feed.status]


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


async def _blogs_remove(ctx: BridgeContext, handle: str) -> int:
    blog = await blog_named(ctx, handle)
    # Tell the hub first: once the row is gone its verification request would find nothing.
    await websub.unsubscribe(ctx, blog)
    await ctx.store.remove_blog(blog.handle)
    print(f"removed @{handle}@{ctx.config.domain}")
    if blog.from_config:
        print("note: it is declared in the config file and returns at the next start", end="")
        print(" unless removed there")
    return 0


async def _poll(ctx: BridgeContext, handle: str) -> int:
    report = await poll_blog(ctx, await blog_named(ctx, handle))
    _print_report(report)
    return 0 if report.error is None else 1


def _print_report(report: PollReport) -> None:
    if report.error is not None:
        print(f"poll of @{report.handle}: {report.outcome}: {report.error}")
        return
    print(
        f"poll of @{report.handle}: {report.outcome}: {report.created} new, "
        f"{report.updated} edited, {report.deleted} deleted"
    )
